/*
 * persist: the last good list, kept across mounts.
 *
 * One file per API URL and credential (keptfile.h gives its format), named
 * by a hash of both, in a directory only the user may use.  The credential
 * is the one each list was fetched with, so a session healed by another
 * account's sign-in, or a key file rotated to another account's token,
 * files its lists under that account.  The file is
 * replaced atomically (a temporary file, fsync, rename), so a crash leaves
 * the old list or the new one, and only by a thread of its own: the cache
 * accepts a list on whatever thread refreshed, often a request's.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "errmsg.h"
#include "file.h"
#include "keptfile.h"
#include "keylist.h"
#include "log.h"
#include "persist.h"
#include "secret.h"
#include "sha256.h"

#define SALT_NAME "salt"
#define SALT_LEN 32
/* "user:" and a user id, or "token-sha256:" and 64 hex digits. */
#define CREDENTIAL_MAX 320
/* "list-" and 32 hex digits. */
#define NAME_MAX_LEN 40

/* A key revoked since the newest body was fetched, still to be cut out
 * of it before it is written. */
struct revoked {
	struct revoked *next;
	size_t len;
	char id[];
};

struct persist {
	int dirfd;
	char *dir;
	char *url;
	size_t max_size; /* of a response, and so of a kept list's body */
	unsigned char salt[SALT_LEN];
	bool have_salt;
	char credential[CREDENTIAL_MAX]; /* the mount's, as stored: never a token */
	char name[NAME_MAX_LEN];         /* its kept list's file name in dir */
	pthread_t thread;
	bool running;
	bool stopping;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	/*
	 * The newest list: snap, NULL once written, and the body it was built
	 * from, fetched at fetched_at for list_credential, less the keys in
	 * revoked (oldest first), which the writing thread cuts out.  The body
	 * is kept after writing, for the next revoke; it is NULL while the
	 * thread has it, and a list accepted meanwhile (body_gen) makes the
	 * thread drop its copy.
	 */
	struct snapshot *snap;
	char *body;
	size_t len;
	struct timespec fetched_at;
	char list_credential[CREDENTIAL_MAX]; /* whose list, as stored */
	unsigned long body_gen;
	struct revoked *revoked, **revoked_tail;
};

/* ---- the directory ----------------------------------------------------- */

/* The cache directory and its files are refused when another user could
 * read or replace them: the list names keys.  Words why in err and returns
 * -EACCES when group or others may use it, -ENOTDIR (or -EISDIR) for the
 * wrong kind of file, -EPERM when another user owns it. */
static int refused_private(enum file_refusal refused, const struct stat *st, const char *what,
			   const char *path, bool dir, char *err, size_t errlen)
{
	if (refused == FILE_NOT_OWNED) {
		snprintf(err, errlen, "%s %s: owned by uid %u, not by the mounting user", what,
			 path, (unsigned)st->st_uid);
		return -EPERM;
	}
	if (refused == FILE_SHARED) {
		snprintf(err, errlen,
			 "%s %s: group or others may read or write it (mode %03o); "
			 "chmod %s it",
			 what, path, (unsigned)(st->st_mode & 0777), dir ? "700" : "600");
		return -EACCES;
	}
	snprintf(err, errlen, "%s %s: not a %s", what, path, dir ? "directory" : "file");
	return dir ? -ENOTDIR : -EISDIR;
}

/* 0, or -errno as refused_private, or the -errno of making or opening it. */
static int open_dir(struct persist *p, char *err, size_t errlen)
{
	const int flags = FILE_DIRECTORY | FILE_OWNED; /* the path may be a link */
	enum file_refusal refused;
	struct stat st;
	size_t failed_len;
	int rc;

	p->dirfd = file_open_private(AT_FDCWD, p->dir, flags, &st, &refused);
	if (p->dirfd < 0 && refused == FILE_OPEN_FAILED && errno == ENOENT) {
		rc = file_make_dirs(p->dir, &failed_len);
		if (rc == 0)
			p->dirfd = file_open_private(AT_FDCWD, p->dir, flags, &st, &refused);
		else
			errno = -rc;
	}
	if (p->dirfd >= 0)
		return 0;
	if (refused == FILE_OPEN_FAILED) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir %s: %s", p->dir, strerror(-rc));
		return rc;
	}
	return refused_private(refused, &st, "cache_dir", p->dir, true, err, errlen);
}

/* A file in the directory, checked, or -1: with errno ENOENT when there is
 * none (err empty), otherwise with err set. */
static int open_private(struct persist *p, const char *name, struct stat *st, char *err,
			size_t errlen)
{
	enum file_refusal refused;
	int fd = file_open_private(p->dirfd, name, FILE_NOFOLLOW | FILE_OWNED, st, &refused);
	int saved = errno;
	char path[PATH_MAX];

	err[0] = '\0';
	if (fd >= 0)
		return fd;
	snprintf(path, sizeof(path), "%s/%s", p->dir, name);
	if (refused == FILE_OPEN_FAILED) {
		if (saved != ENOENT)
			snprintf(err, errlen, "%s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	refused_private(refused, st, "cache file", path, false, err, errlen);
	errno = EPERM;
	return -1;
}

/* Writes data as name, atomically; exclusive: only if name does not exist
 * yet.  0, or -1 with errno set. */
static int write_file(struct persist *p, const char *name, const void *data, size_t len,
		      bool exclusive)
{
	enum file_step step;
	int rc = file_replace(p->dirfd, name, data, len, exclusive, &step);

	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return 0;
}

static int read_fd(int fd, size_t size, char **out)
{
	char *buf = malloc(size ? size : 1);
	size_t got = 0;

	if (!buf)
		return -1;
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != size) {
		free(buf);
		errno = EIO;
		return -1;
	}
	*out = buf;
	return 0;
}

/* The salt of token hashes: SALT_LEN random bytes made once per directory,
 * so the same token names the same file, and the file name says nothing
 * of the token to whoever lacks the salt. */
static int read_salt(struct persist *p, unsigned char salt[SALT_LEN], char *err, size_t errlen)
{
	for (int tries = 0; tries < 3; tries++) {
		struct stat st;
		char *buf;
		int fd = open_private(p, SALT_NAME, &st, err, errlen);

		if (fd >= 0) {
			int rc = st.st_size == SALT_LEN ? read_fd(fd, SALT_LEN, &buf) : -1;

			close(fd);
			if (rc == 0) {
				memcpy(salt, buf, SALT_LEN);
				secret_free_len(buf, SALT_LEN);
				return 0;
			}
			/* A damaged salt only orphans the lists it named. */
			log_warn("%s/" SALT_NAME " is damaged; making a new one", p->dir);
			if (getrandom(salt, SALT_LEN, 0) != SALT_LEN ||
			    write_file(p, SALT_NAME, salt, SALT_LEN, false) < 0)
				break;
			return 0;
		}
		if (err[0])
			return -1;
		if (getrandom(salt, SALT_LEN, 0) != SALT_LEN)
			break;
		if (write_file(p, SALT_NAME, salt, SALT_LEN, true) == 0)
			return 0;
		if (errno != EEXIST) /* else another mount made it first: read it */
			break;
	}
	errmsg_set(err, errlen, "cache_dir %s: cannot make its salt: %s", p->dir, strerror(errno));
	return -1;
}

static void hex(const unsigned char *bytes, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", bytes[i]);
}

static bool one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

/* owner as the kept file stores it: "user:ID", or "token-sha256:" and the
 * salted hash of the token.  -1 when there is none to say, or no salt. */
static int credential_of(const struct persist *p, const struct fetch_owner *owner, char *out)
{
	unsigned char digest[SHA256_DIGEST_LEN];
	char digest_hex[2 * SHA256_DIGEST_LEN + 1];
	struct sha256 ctx;
	int n;

	if (owner->user_id) {
		if (!*owner->user_id || !one_line(owner->user_id))
			return -1;
		n = snprintf(out, CREDENTIAL_MAX, "user:%s", owner->user_id);
		return n > 0 && n < CREDENTIAL_MAX ? 0 : -1;
	}
	if (!owner->token || !p->have_salt)
		return -1;
	sha256_init(&ctx);
	sha256_update(&ctx, p->salt, sizeof(p->salt));
	sha256_update(&ctx, owner->token, strlen(owner->token));
	sha256_final(&ctx, digest);
	hex(digest, sizeof(digest), digest_hex);
	snprintf(out, CREDENTIAL_MAX, "token-sha256:%s", digest_hex);
	return 0;
}

/* The kept file of url and credential: "list-" and 128 bits of a hash. */
static void name_of(const char *url, const char *credential, char name[NAME_MAX_LEN])
{
	unsigned char digest[SHA256_DIGEST_LEN];
	struct sha256 ctx;

	sha256_init(&ctx);
	sha256_update(&ctx, url, strlen(url));
	sha256_update(&ctx, "\n", 1);
	sha256_update(&ctx, credential, strlen(credential));
	sha256_final(&ctx, digest);
	memcpy(name, "list-", 5);
	hex(digest, 16, name + 5);
}

/* The kept list, if any, as the cache's seed.  Only an unsafe file is an
 * error; one that does not parse is logged and left to be replaced. */
static int load_kept(struct persist *p, struct cache *cache, char *err, size_t errlen)
{
	struct kept_list kept;
	struct snapshot *snap;
	struct stat st;
	char why[256], *buf = NULL;
	int64_t start = clock_monotonic_ns();
	int fd = open_private(p, p->name, &st, err, errlen);
	size_t max = keptfile_max_len(p->max_size, strlen(p->url), strlen(p->credential));

	if (fd < 0)
		return err[0] ? -1 : 0;
	/* The response's size rule, before anything is read: a list that
	 * max_size would refuse from the API is not taken from a file. */
	if ((uint64_t)st.st_size > max) {
		log_warn("ignoring the kept list %s/%s: %lld bytes, more than a list of max_size "
			 "(%zu) takes",
			 p->dir, p->name, (long long)st.st_size, p->max_size);
		close(fd);
		return 0;
	}
	if (read_fd(fd, (size_t)st.st_size, &buf) < 0) {
		log_warn("ignoring the kept list %s/%s: %s", p->dir, p->name, strerror(errno));
		close(fd);
		return 0;
	}
	close(fd);
	if (keptfile_parse(buf, (size_t)st.st_size, p->url, p->credential, p->max_size, &kept, why,
			   sizeof(why)) < 0) {
		log_warn("ignoring the kept list %s/%s: %s", p->dir, p->name, why);
		free(buf);
		return 0;
	}
	snap = snapshot_restore(&kept.list, kept.seeds, kept.nseeds, kept.members_changed);
	/* Its body, for a revoke made while it is served. */
	if (snap && (p->body = malloc(kept.body_len + 1))) {
		memcpy(p->body, kept.body, kept.body_len);
		p->body[kept.body_len] = '\0';
		p->len = kept.body_len;
		p->fetched_at = kept.fetched_at;
		memcpy(p->list_credential, p->credential, sizeof(p->credential));
	}
	if (snap) {
		cache_seed(cache, snap, kept.body, kept.body_len, kept.fetched_at);
		log_debug("read the kept list (%zu keys, %lld bytes) in %.1f ms", snap->count,
			  (long long)st.st_size, (clock_monotonic_ns() - start) / 1e6);
	}
	keptfile_free(&kept);
	free(buf);
	return 0;
}

/* ---- writing ------------------------------------------------------------ */

static void revoked_free(struct revoked *r)
{
	while (r) {
		struct revoked *next = r->next;

		free(r);
		r = next;
	}
}

static void write_kept(struct persist *p, const struct snapshot *snap, const char *body,
		       size_t body_len, const char *credential, struct timespec fetched_at)
{
	int64_t start = clock_monotonic_ns();
	char name[NAME_MAX_LEN];
	size_t len;
	char *buf = keptfile_format(snap, body, body_len, p->url, credential, fetched_at, &len);

	if (!buf) {
		log_warn("cannot keep the key list: out of memory");
		return;
	}
	name_of(p->url, credential, name);
	if (write_file(p, name, buf, len, false) < 0)
		log_warn("cannot keep the key list in %s: %s", p->dir, strerror(errno));
	else
		log_debug("kept the key list (%zu keys, %zu bytes) in %.1f ms", snap->count, len,
			  (clock_monotonic_ns() - start) / 1e6);
	free(buf);
}

/* body less the keys in revoked; NULL when one cannot be cut out (body is
 * taken either way). */
static char *cut_revoked(char *body, size_t *len, const struct revoked *revoked)
{
	for (const struct revoked *r = revoked; r && body; r = r->next) {
		char *cut;
		size_t cut_len;
		int rc = keylist_without(body, *len, r->id, r->len, &cut, &cut_len);

		if (rc == 0) {
			free(body);
			body = cut;
			*len = cut_len;
		} else if (rc != -ENOENT) {
			log_warn("cannot keep the key list: taking a revoked key out: %s",
				 strerror(-rc));
			free(body);
			body = NULL;
		}
	}
	return body;
}

/* Called and returns with the lock held, p->snap set; drops the lock while
 * cutting revoked keys out of the body and writing. */
static void write_newest(struct persist *p)
{
	struct snapshot *snap = p->snap;
	struct revoked *revoked = p->revoked;
	unsigned long gen = p->body_gen;
	struct timespec fetched_at = p->fetched_at;
	char credential[CREDENTIAL_MAX], name[NAME_MAX_LEN];
	char *body = p->body;
	size_t len = p->len;

	memcpy(credential, p->list_credential, sizeof(credential));
	p->snap = NULL;
	p->body = NULL;
	p->revoked = NULL;
	p->revoked_tail = &p->revoked;
	pthread_mutex_unlock(&p->lock);

	body = cut_revoked(body, &len, revoked);
	revoked_free(revoked);
	/* Without a body that matches it, the list is better not kept at all
	 * than kept with a revoked key, which a remount would show again. */
	if (body) {
		write_kept(p, snap, body, len, credential, fetched_at);
	} else if (credential[0]) {
		name_of(p->url, credential, name);
		if (unlinkat(p->dirfd, name, 0) == 0 || errno == ENOENT)
			log_warn("keeping no list in %s until the next refresh", p->dir);
	}
	snapshot_unref(snap);

	pthread_mutex_lock(&p->lock);
	if (p->body_gen == gen && !p->body) {
		p->body = body;
		p->len = len;
	} else {
		free(body);
	}
}

/* cache_on_accepted: only the newest list matters, so it replaces any
 * that is still waiting, and the keys revoked from the one before.  Its
 * credential is named now, while the fetch's token still exists (a hash,
 * and only on this thread). */
static void persist_accepted(void *ctx, struct snapshot *snap, char *body, size_t len,
			     struct timespec fetched_at, const struct fetch_owner *owner)
{
	struct persist *p = ctx;
	char credential[CREDENTIAL_MAX];

	if (credential_of(p, owner, credential) < 0) {
		log_debug("not keeping the key list: its credential names no one");
		free(body);
		return;
	}
	pthread_mutex_lock(&p->lock);
	snapshot_unref(p->snap);
	p->snap = snapshot_ref(snap);
	free(p->body);
	p->body = body;
	p->len = len;
	p->fetched_at = fetched_at;
	memcpy(p->list_credential, credential, sizeof(credential));
	p->body_gen++;
	revoked_free(p->revoked);
	p->revoked = NULL;
	p->revoked_tail = &p->revoked;
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

/* cache_on_removed: snap is written, and the body with the key cut out. */
static void persist_removed(void *ctx, struct snapshot *snap, const char *id, size_t id_len)
{
	struct persist *p = ctx;
	struct revoked *r = malloc(sizeof(*r) + id_len);

	pthread_mutex_lock(&p->lock);
	snapshot_unref(p->snap);
	p->snap = snapshot_ref(snap);
	if (r) {
		r->next = NULL;
		r->len = id_len;
		memcpy(r->id, id, id_len);
		*p->revoked_tail = r;
		p->revoked_tail = &r->next;
	} else {
		/* No list kept beats one that would bring the key back. */
		free(p->body);
		p->body = NULL;
		p->body_gen++;
	}
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

static void *persist_main(void *arg)
{
	struct persist *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		while (!p->snap && !p->stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		if (!p->snap)
			break;
		write_newest(p);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* ---- the interface ------------------------------------------------------ */

struct persist *persist_open(const struct persist_config *cfg, struct cache *cache, char *err,
			     size_t errlen)
{
	struct persist *p = calloc(1, sizeof(*p));

	err[0] = '\0';
	if (!p) {
		errmsg_set(err, errlen, "out of memory");
		return NULL;
	}
	p->dirfd = -1;
	p->revoked_tail = &p->revoked;
	p->max_size = cfg->max_size;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	if (!(p->dir = strdup(cfg->dir)) || !(p->url = strdup(cfg->url))) {
		errmsg_set(err, errlen, "out of memory");
		goto fail;
	}
	if (!one_line(cfg->url) ||
	    (cfg->owner.user_id && (!*cfg->owner.user_id || !one_line(cfg->owner.user_id)))) {
		errmsg_set(err, errlen,
			   "cannot keep the list: the URL or the user id holds "
			   "control characters");
		goto fail;
	}
	if (open_dir(p, err, errlen) < 0)
		goto fail;
	/* A token's lists are named with the salt; a session's never. */
	if (!cfg->owner.user_id) {
		if (read_salt(p, p->salt, err, errlen) < 0)
			goto fail;
		p->have_salt = true;
	}
	if (credential_of(p, &cfg->owner, p->credential) < 0) {
		errmsg_set(err, errlen, "cannot keep the list: the user id is too long");
		goto fail;
	}
	name_of(p->url, p->credential, p->name);
	if (load_kept(p, cache, err, errlen) < 0)
		goto fail;
	cache_on_accepted(cache, persist_accepted, p);
	cache_on_removed(cache, persist_removed, p);
	return p;
fail:
	/* A default the user never chose is no reason not to mount, whatever
	 * is wrong with it: not theirs (sudo keeps HOME), open to others, a
	 * full disk.  Warn and keep nothing; only a cache_dir given is the
	 * user's to fix first. */
	if (cfg->fallback && err[0]) {
		log_warn("%s; keeping no list (set -o cache_dir= or no_cache)", err);
		err[0] = '\0';
	}
	persist_free(p);
	return NULL;
}

int persist_start(struct persist *p)
{
	int rc = pthread_create(&p->thread, NULL, persist_main, p);

	if (rc)
		return -rc;
	p->running = true;
	return 0;
}

void persist_free(struct persist *p)
{
	if (!p)
		return;
	if (p->running) {
		pthread_mutex_lock(&p->lock);
		p->stopping = true;
		pthread_cond_signal(&p->wake);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
	} else if (p->snap) {
		pthread_mutex_lock(&p->lock);
		write_newest(p); /* the thread never ran */
		pthread_mutex_unlock(&p->lock);
	}
	snapshot_unref(p->snap);
	free(p->body);
	revoked_free(p->revoked);
	if (p->dirfd >= 0)
		close(p->dirfd);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p->dir);
	free(p->url);
	explicit_bzero(p->salt, sizeof(p->salt));
	free(p);
}
