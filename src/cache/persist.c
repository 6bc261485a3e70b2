/*
 * persist: the last good list, kept across mounts.
 *
 * One file per API URL and credential (keptfile.h gives its format), named
 * by a hash of both, in a directory only the user may use (keptdir.h).
 * The credential is the one each list was fetched with, so a session
 * healed by another account's sign-in, or a key file rotated to another
 * account's token, files its lists under that account.  The file is
 * replaced atomically (a temporary file, fsync, rename), so a crash leaves
 * the old list or the new one, and only by a thread of its own: the cache
 * accepts a list on whatever thread refreshed, often a request's.
 */
#include <errno.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "clock.h"
#include "errmsg.h"
#include "keptdir.h"
#include "keptfile.h"
#include "keylist.h"
#include "log.h"
#include "persist.h"
#include "sha256.h"

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
	unsigned char salt[KEPTDIR_SALT_LEN];
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

/* ---- the kept list's name, and reading it ------------------------------- */

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
	int fd = keptdir_open_file(p->dirfd, p->dir, p->name, &st, err, errlen);
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
	if (keptdir_read(fd, (size_t)st.st_size, &buf) < 0) {
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
	if (keptdir_write(p->dirfd, name, buf, len, false) < 0)
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
	if ((p->dirfd = keptdir_open(p->dir, err, errlen)) < 0)
		goto fail;
	/* A token's lists are named with the salt; a session's never. */
	if (!cfg->owner.user_id) {
		if (keptdir_salt(p->dirfd, p->dir, p->salt, err, errlen) < 0)
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
