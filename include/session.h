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

/*
 * The file is one JSON object, mode 0600:
 *   {"version": 1, "api_url": "https://api.omi.me",
 *    "firebase_api_key": "AIza...", "user_id": "UID",
 *    "refresh_token": "SECRET", "created": 1767225600}
 * Every string is 1..max bytes of 0x21..0x7e.  Unknown members are
 * ignored (and not written back); an unknown version is refused.
 */
struct session {
	char *refresh_token;    /* the secret; only ever sent to Firebase */
	char *api_url;          /* the Omi API base URL it was made for */
	char *firebase_api_key; /* the (public) Firebase Web API key it was made with */
	char *user_id;          /* Firebase uid (localId) */
	long long created;      /* when it was made, seconds since the epoch */
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
 * omikeyfs --login"), anything but a regular file (a FIFO never blocks),
 * a file group or others may access at all (-EACCES, "session file PATH is
 * accessible by group or others (mode 644); run: chmod 600 PATH"), one
 * larger than SESSION_MAX_SIZE (-EFBIG), and bad contents (-EBADMSG).
 */
int session_load(const char *path, struct session *out, char *err, size_t errlen);

/*
 * Write s to path atomically: a temporary file in the same directory
 * (created 0600, O_EXCL), written and fsync'd, renamed over path, then the
 * directory fsync'd.  Missing parent directories are created 0700.  On
 * failure path is untouched and the temporary file is gone.  Every string
 * field must be set (else -EINVAL).  Returns 0 or -errno with one line in err.
 */
int session_save(const char *path, const struct session *s, char *err, size_t errlen);

/* Delete the session file (omikeyfs --logout).  -ENOENT when there was none;
 * other -errno with one line in err. */
int session_remove(const char *path, char *err, size_t errlen);

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
