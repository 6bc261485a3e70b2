/* session: the file that keeps an `omikeyfs --login` sign-in (a Firebase
 * refresh token and what it was made for): strict parsing, atomic saving. */
#ifndef OMIKEYFS_SESSION_H
#define OMIKEYFS_SESSION_H

#include <stddef.h>

/* The only format version this omikeyfs reads and writes. */
#define SESSION_VERSION 1
/* A larger session file is refused unread. */
#define SESSION_MAX_SIZE 65536
/* Longest refresh token accepted (Firebase's are about 200 bytes). */
#define SESSION_TOKEN_MAX 8192
/* Longest API URL, Firebase API key and user id accepted. */
#define SESSION_URL_MAX 2048
#define SESSION_KEY_MAX 256
#define SESSION_USER_MAX 256
/* How long a writer waits for another to finish with the file. */
#define SESSION_LOCK_WAIT_MS 10000

/*
 * The file is one JSON object, mode 0600:
 *   {"version": 1, "api_url": "https://api.omi.me",
 *    "firebase_api_key": "AIza...", "user_id": "UID",
 *    "email": "alice@example.com", "refresh_token": "SECRET",
 *    "created": 1767225600}
 * Every string is 1..max bytes of 0x21..0x7e.  "email" (who signed in,
 * from the ID token) is optional: files written before it are read.
 * Unknown members are ignored (and not written back); an unknown version
 * is refused.
 *
 * The file and its directory follow cache_dir's rules: the directory is
 * no symbolic link and both are the caller's (euid) and closed to group
 * and others (0700, 0600).  Every writer (session_save, session_rotate,
 * session_remove) holds flock on the directory from reading to renaming.
 */
struct session {
	char *refresh_token;    /* the secret; only ever sent to Firebase */
	char *api_url;          /* the Omi API base URL it was made for */
	char *firebase_api_key; /* the (public) Firebase Web API key it was made with */
	char *user_id;          /* Firebase uid (localId) */
	long long created;      /* when it was made, seconds since the epoch */
	char *email;            /* the ID token's email claim, or NULL */
};

/*
 * Parse len bytes (untrusted) into *out, which is zeroed first.  Returns
 * 0, or -EBADMSG (or -ENOMEM) with a one-line reason in err that never
 * holds a value from the file.
 */
int session_parse(const char *buf, size_t len, struct session *out, char *err, size_t errlen);

/* The file's bytes for s (every string field must be set), malloc'd and
 * NUL-terminated, length in *len; NULL when out of memory.  The caller
 * wipes and frees them. */
char *session_serialize(const struct session *s, size_t *len);

/*
 * Read and parse the session file.  Refuses, with -errno and one line in
 * err: a missing file (-ENOENT, "no session file PATH; sign in with
 * omikeyfs --login"), a directory that breaks the rules above or a file
 * another user owns or a symbolic link (-EPERM), anything but a regular
 * file (-EINVAL; a FIFO never blocks),
 * a file group or others may access at all (-EACCES, "session file PATH is
 * accessible by group or others (mode 644); run: chmod 600 PATH"), one
 * larger than SESSION_MAX_SIZE (-EFBIG), and bad contents (-EBADMSG).
 */
int session_load(const char *path, struct session *out, char *err, size_t errlen);

/*
 * Write s to path atomically: a temporary file in the same directory
 * (created 0600, O_EXCL), written and fsync'd, renamed over path, then the
 * directory fsync'd, all under the directory's lock.  Missing parent
 * directories are created 0700; an existing directory that breaks the
 * rules is refused (-EPERM).  On failure path is untouched and the
 * temporary file is gone.  Every string field but email must be set (else
 * -EINVAL).  Returns 0 or -errno with one line in err.
 */
int session_save(const char *path, const struct session *s, char *err, size_t errlen);

/*
 * Save a rotated refresh token: under the lock, read the file and, when it
 * still holds old_token, write it back with new_token.  0 when saved,
 * -ESTALE when it holds another sign-in (left alone), -ENOENT when it is
 * gone, other -errno with one line in err.
 */
int session_rotate(const char *path, const char *old_token, const char *new_token, char *err,
		   size_t errlen);

/* 0 when path's directory exists and keeps the rules above, else -errno
 * (-ENOENT: missing) with one line in err. */
int session_check_dir(const char *path, char *err, size_t errlen);

/*
 * Delete the session file (omikeyfs --logout), under the lock, only when
 * it passes session_load's checks and parses as a session.  -ENOENT when
 * there was none; -EPERM when it was refused ("...; nothing was removed");
 * other -errno with one line in err.
 */
int session_remove(const char *path, char *err, size_t errlen);

/* Who signed in, for people: the email, else the user id. */
const char *session_identity(const struct session *s);

/*
 * The default session file: $XDG_CONFIG_HOME/omikeyfs/session.json when
 * XDG_CONFIG_HOME is an absolute path, else $HOME/.config/omikeyfs/session.json.
 * Returns 0 with a malloc'd path in *out, or -ENOENT (neither is set) or
 * -ENOMEM with one line in err.
 */
int session_default_path(char **out, char *err, size_t errlen);

/* Deep copy; 0 or -ENOMEM (then *dst is zeroed). */
int session_copy(struct session *dst, const struct session *src);

/* Wipe the refresh token, free every field, zero *s. */
void session_free(struct session *s);

#endif
