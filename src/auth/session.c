/*
 * session: the sign-in saved by `omikeyfs --login` and read by mounts.  The
 * refresh token in it is worth as much as the account, so the file is
 * treated like the key file (0600, regular file, checked on the open fd)
 * and replaced only whole, by rename, so a crash or a concurrent mount
 * never sees half a file.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <json-c/json.h>

#include "errmsg.h"
#include "file.h"
#include "jsonstrict.h"
#include "secret.h"
#include "session.h"
#include "sessiondir.h"

void session_free(struct session *s)
{
	secret_free(s->refresh_token);
	free(s->api_url);
	free(s->firebase_api_key);
	free(s->user_id);
	free(s->email);
	memset(s, 0, sizeof(*s));
}

static int get_int(struct json_object *obj, const char *key, long long *out, char *err,
		   size_t errlen)
{
	struct json_object *val;

	if (!json_object_object_get_ex(obj, key, &val)) {
		errmsg_set(err, errlen, "no \"%s\"", key);
		return -EBADMSG;
	}
	if (!json_object_is_type(val, json_type_int)) {
		errmsg_set(err, errlen, "\"%s\" is not an integer", key);
		return -EBADMSG;
	}
	*out = (long long)json_object_get_int64(val);
	/* json-c saturates what does not fit, silently. */
	if (*out == INT64_MAX || *out == INT64_MIN) {
		errmsg_set(err, errlen, "\"%s\" is out of range", key);
		return -EBADMSG;
	}
	return 0;
}

int session_parse(const char *buf, size_t len, struct session *out, char *err, size_t errlen)
{
	char why[200];
	struct json_object *obj;
	long long version;
	int r;

	memset(out, 0, sizeof(*out));
	if (len > SESSION_MAX_SIZE) {
		errmsg_set(err, errlen, "larger than %d bytes", SESSION_MAX_SIZE);
		return -EBADMSG;
	}
	obj = jsonstrict_parse(buf, len, why, sizeof(why));
	if (!obj) {
		errmsg_set(err, errlen, "%s", why);
		return -EBADMSG;
	}
	r = get_int(obj, "version", &version, why, sizeof(why));
	if (r == 0 && version != SESSION_VERSION) {
		/* The number is ours to show: it is an integer. */
		errmsg_set(why, sizeof(why),
			   "format version %lld is not %d; sign in again "
			   "with omikeyfs --login",
			   version, SESSION_VERSION);
		r = -EBADMSG;
	}
	if (r == 0)
		r = jsonstrict_string(obj, "refresh_token", SESSION_TOKEN_MAX, JSONSTRICT_TOKEN,
				      &out->refresh_token, why, sizeof(why));
	if (r == 0)
		r = jsonstrict_string(obj, "api_url", SESSION_URL_MAX, JSONSTRICT_TOKEN,
				      &out->api_url, why, sizeof(why));
	if (r == 0)
		r = jsonstrict_string(obj, "firebase_api_key", SESSION_KEY_MAX, JSONSTRICT_TOKEN,
				      &out->firebase_api_key, why, sizeof(why));
	if (r == 0)
		r = jsonstrict_string(obj, "user_id", SESSION_USER_MAX, JSONSTRICT_TOKEN,
				      &out->user_id, why, sizeof(why));
	if (r == 0) {
		/* Added later: a file without it is still a session. */
		r = jsonstrict_string(obj, "email", SESSION_USER_MAX, JSONSTRICT_TOKEN, &out->email,
				      why, sizeof(why));
		if (r == -ENOENT)
			r = 0;
	}
	if (r == 0)
		r = get_int(obj, "created", &out->created, why, sizeof(why));
	if (r == 0 && out->created < 0) {
		errmsg_set(why, sizeof(why), "\"created\" is negative");
		r = -EBADMSG;
	}
	jsonstrict_put(obj);
	if (r < 0) {
		session_free(out);
		errmsg_set(err, errlen, "%s", why);
		return r == -ENOMEM ? r : -EBADMSG;
	}
	return 0;
}

char *session_serialize(const struct session *s, size_t *len)
{
	char *tok = jsonstrict_quote(s->refresh_token);
	char *url = jsonstrict_quote(s->api_url);
	char *key = jsonstrict_quote(s->firebase_api_key);
	char *uid = jsonstrict_quote(s->user_id);
	char *email = s->email ? jsonstrict_quote(s->email) : NULL;
	char *out = NULL;
	int n = -1;

	if (tok && url && key && uid && (email || !s->email))
		n = asprintf(&out,
			     "{\n  \"version\": %d,\n  \"api_url\": %s,\n"
			     "  \"firebase_api_key\": %s,\n  \"user_id\": %s,\n%s%s%s"
			     "  \"refresh_token\": %s,\n  \"created\": %lld\n}\n",
			     SESSION_VERSION, url, key, uid, email ? "  \"email\": " : "",
			     email ? email : "", email ? ",\n" : "", tok, s->created);
	secret_free(tok);
	free(url);
	free(key);
	free(uid);
	free(email);
	if (n < 0)
		return NULL;
	*len = (size_t)n;
	return out;
}

/* ---- reading ----------------------------------------------------------- */

/* Up to SESSION_MAX_SIZE + 1 bytes of fd into buf; 0 or -errno. */
static int read_capped(int fd, char *buf, size_t *len)
{
	*len = 0;
	while (*len <= SESSION_MAX_SIZE) {
		ssize_t n = read(fd, buf + *len, SESSION_MAX_SIZE + 1 - *len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	return 0;
}

/* Read and parse w->base in the opened directory, checked on the open fd. */
static int load_at(struct sessiondir *w, struct session *out, char *err, size_t errlen)
{
	const char *path = w->path;
	char *buf = NULL, why[200];
	enum file_refusal refused;
	struct stat st;
	size_t len = 0;
	int r, fd;

	fd = file_open_private(w->dirfd, w->base, FILE_NOFOLLOW | FILE_OWNED, &st, &refused);
	if (fd < 0 && refused == FILE_OPEN_FAILED) {
		r = -errno;
		if (r == -ENOENT)
			errmsg_set(err, errlen, "no session file %s; sign in with omikeyfs --login",
				   path);
		else if (r == -ELOOP)
			errmsg_set(err, errlen,
				   "session file %s is a symbolic link; it must be the file itself",
				   path);
		else
			errmsg_set(err, errlen, "cannot open session file %s: %s", path,
				   strerror(-r));
		return r == -ELOOP ? -EPERM : r;
	}
	if (fd < 0 && refused == FILE_WRONG_TYPE) {
		errmsg_set(err, errlen, "session file %s is not a regular file", path);
		return -EINVAL;
	}
	if (fd < 0 && refused == FILE_NOT_OWNED) {
		errmsg_set(err, errlen, "session file %s is owned by uid %u, not by uid %u (you)",
			   path, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (fd < 0) {
		errmsg_set(err, errlen,
			   "session file %s is accessible by group or others "
			   "(mode %03o); run: chmod 600 %s",
			   path, (unsigned)(st.st_mode & 0777), path);
		return -EACCES;
	}
	if (st.st_size > SESSION_MAX_SIZE) {
		errmsg_set(err, errlen, "session file %s is larger than %d bytes", path,
			   SESSION_MAX_SIZE);
		r = -EFBIG;
		goto out;
	}
	/* One byte more than the cap tells a file that grew since fstat. */
	buf = malloc(SESSION_MAX_SIZE + 1);
	if (!buf) {
		errmsg_set(err, errlen, "out of memory");
		r = -ENOMEM;
		goto out;
	}
	if ((r = read_capped(fd, buf, &len)) < 0) {
		errmsg_set(err, errlen, "cannot read session file %s: %s", path, strerror(-r));
		goto out;
	}
	if (len > SESSION_MAX_SIZE) {
		errmsg_set(err, errlen, "session file %s is larger than %d bytes", path,
			   SESSION_MAX_SIZE);
		r = -EFBIG;
		goto out;
	}
	r = session_parse(buf, len, out, why, sizeof(why));
	if (r < 0)
		errmsg_set(err, errlen, "session file %s: %s", path, why);
out:
	if (buf)
		secret_free_len(buf, SESSION_MAX_SIZE + 1);
	close(fd);
	return r;
}

int session_load(const char *path, struct session *out, char *err, size_t errlen)
{
	struct sessiondir w;
	int r;

	memset(out, 0, sizeof(*out));
	if ((r = sessiondir_split(&w, path, err, errlen)) == 0 &&
	    (r = sessiondir_open(&w, err, errlen)) == 0)
		r = load_at(&w, out, err, errlen);
	sessiondir_close(&w);
	return r;
}

int session_check_dir(const char *path, char *err, size_t errlen)
{
	struct sessiondir w;
	int r;

	if ((r = sessiondir_split(&w, path, err, errlen)) == 0)
		r = sessiondir_open(&w, err, errlen);
	sessiondir_close(&w);
	return r;
}

/* ---- writing ----------------------------------------------------------- */

/* Write s over w->base by rename; the directory is open and locked. */
static int save_at(struct sessiondir *w, const struct session *s, char *err, size_t errlen)
{
	enum file_step step;
	size_t len = 0;
	char *data = session_serialize(s, &len);
	int r;

	if (!data) {
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	r = file_replace(w->dirfd, w->base, data, len, false, &step);
	if (r < 0 && step == FILE_STEP_CREATE)
		errmsg_set(err, errlen, "cannot create a file in %s: %s", w->dir, strerror(-r));
	else if (r < 0 && step == FILE_STEP_WRITE)
		errmsg_set(err, errlen, "cannot write session file %s: %s", w->path, strerror(-r));
	else if (r < 0)
		errmsg_set(err, errlen, "cannot save session file %s: %s", w->path, strerror(-r));
	secret_free_len(data, len);
	return r;
}

int session_save(const char *path, const struct session *s, char *err, size_t errlen)
{
	struct sessiondir w;
	size_t failed_len = 0;
	int r;

	if (!s->refresh_token || !s->api_url || !s->firebase_api_key || !s->user_id) {
		errmsg_set(err, errlen, "cannot save session file %s: a field is missing", path);
		return -EINVAL;
	}
	if ((r = sessiondir_split(&w, path, err, errlen)) < 0)
		goto out;
	r = file_make_dirs(w.dir, &failed_len);
	if (r == -ENOTDIR)
		errmsg_set(err, errlen, "cannot save session file %s: %s is not a directory", path,
			   w.dir);
	else if (r < 0)
		errmsg_set(err, errlen, "cannot create directory %.*s: %s", (int)failed_len, w.dir,
			   strerror(-r));
	if (r == 0 && (r = sessiondir_open(&w, err, errlen)) == 0 &&
	    (r = sessiondir_lock(&w, err, errlen)) == 0)
		r = save_at(&w, s, err, errlen);
out:
	sessiondir_close(&w);
	return r;
}

int session_rotate(const char *path, const char *old_token, const char *new_token, char *err,
		   size_t errlen)
{
	struct session disk;
	struct sessiondir w;
	char *keep;
	int r;

	memset(&disk, 0, sizeof(disk));
	if ((r = sessiondir_split(&w, path, err, errlen)) < 0 ||
	    (r = sessiondir_open(&w, err, errlen)) < 0 ||
	    (r = sessiondir_lock(&w, err, errlen)) < 0 || (r = load_at(&w, &disk, err, errlen)) < 0)
		goto out;
	/* Read under the lock: no --login can land between this and the rename. */
	if (strcmp(disk.refresh_token, old_token) != 0) {
		r = -ESTALE;
		goto out;
	}
	keep = disk.refresh_token;
	disk.refresh_token = (char *)new_token;
	r = save_at(&w, &disk, err, errlen);
	disk.refresh_token = keep;
out:
	session_free(&disk);
	sessiondir_close(&w);
	return r;
}

int session_remove(const char *path, char *err, size_t errlen)
{
	struct session s;
	struct sessiondir w;
	char why[512];
	int r;

	memset(&s, 0, sizeof(s));
	if ((r = sessiondir_split(&w, path, why, sizeof(why))) < 0 ||
	    (r = sessiondir_open(&w, why, sizeof(why))) < 0 ||
	    (r = sessiondir_lock(&w, why, sizeof(why))) < 0 ||
	    (r = load_at(&w, &s, why, sizeof(why))) < 0)
		goto out;
	/* Only what parses as a session, in a directory nobody else may
	 * change, under the lock: what was checked is what goes. */
	if (unlinkat(w.dirfd, w.base, 0) < 0) {
		r = -errno;
		snprintf(why, sizeof(why), "cannot remove session file %s: %s", path, strerror(-r));
	}
out:
	if (r == -ENOENT)
		errmsg_set(err, errlen, "no session file %s: not signed in", path);
	else if (r == -EBADMSG || r == -EINVAL || r == -EPERM || r == -EACCES || r == -EFBIG ||
		 r == -ENOTDIR || r == -EISDIR) {
		errmsg_set(err, errlen, "%s; nothing was removed", why);
		r = -EPERM;
	} else if (r < 0)
		errmsg_set(err, errlen, "%s", why);
	session_free(&s);
	sessiondir_close(&w);
	return r;
}

const char *session_identity(const struct session *s)
{
	return s->email ? s->email : s->user_id;
}

int session_default_path(char **out, char *err, size_t errlen)
{
	const char *xdg = getenv("XDG_CONFIG_HOME"), *home = getenv("HOME");
	int n;

	*out = NULL;
	/* The XDG spec says a relative XDG_CONFIG_HOME is to be ignored. */
	if (xdg && xdg[0] == '/')
		n = asprintf(out, "%s/omikeyfs/session.json", xdg);
	else if (home && home[0] == '/') /* the daemon runs in "/" */
		n = asprintf(out, "%s/.config/omikeyfs/session.json", home);
	else {
		errmsg_set(err, errlen,
			   "neither XDG_CONFIG_HOME nor HOME is set: "
			   "no place for the session file");
		return -ENOENT;
	}
	if (n < 0) {
		*out = NULL;
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int dup_field(char **dst, const char *src)
{
	*dst = src ? strdup(src) : NULL;
	return src && !*dst ? -ENOMEM : 0;
}

int session_copy(struct session *dst, const struct session *src)
{
	memset(dst, 0, sizeof(*dst));
	if (dup_field(&dst->refresh_token, src->refresh_token) < 0 ||
	    dup_field(&dst->api_url, src->api_url) < 0 ||
	    dup_field(&dst->firebase_api_key, src->firebase_api_key) < 0 ||
	    dup_field(&dst->user_id, src->user_id) < 0 || dup_field(&dst->email, src->email) < 0) {
		session_free(dst);
		return -ENOMEM;
	}
	dst->created = src->created;
	return 0;
}
