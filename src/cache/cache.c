/*
 * cache: one snapshot answers everything until the TTL runs out; then the
 * next caller fetches while the others wait for that one fetch.  A failed
 * fetch never replaces the list: the last good snapshot keeps being served
 * and the next try waits for an exponential, jittered backoff (or the API's
 * Retry-After), so an outage costs a handful of requests, not one per
 * operation.
 */
#include <errno.h>
#include <stdint.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "errmsg.h"
#include "fnv1a.h"
#include "keylist.h"
#include "log.h"
#include "text.h"

/* Retry-After is honoured up to a day; past that it is taken as a day. */
#define RETRY_AFTER_MAX 86400.0

struct cache {
	struct cache_ops ops;
	void (*swapped)(void *ctx, struct snapshot *old, struct snapshot *new);
	void *swapped_ctx;
	void (*rejected)(void *ctx);
	void *rejected_ctx;
	void (*accepted)(void *ctx, struct snapshot *snap, char *body, size_t len,
			 struct timespec fetched_at, const struct fetch_owner *owner);
	void *accepted_ctx;
	void (*removed)(void *ctx, struct snapshot *snap, const char *id, size_t id_len);
	void *removed_ctx;
	struct snapshot *seed; /* a kept list, until the first fetch is done */
	double ttl;
	pthread_mutex_t lock;
	pthread_cond_t refreshed;
	struct snapshot *current;
	bool refreshing;
	uint64_t refresh_seq;       /* completed refreshes, for waiters */
	atomic_bool force;          /* SIGHUP: refresh on the next operation */
	double fetched_mono;        /* monotonic time of the last success */
	struct timespec fetched_at; /* wall time of the last success */
	double next_attempt;        /* monotonic; no fetch before this */
	unsigned failures;
	char last_error[512];
	uint64_t body_hash; /* of the last body parsed */
	size_t body_len;
};

struct cache *cache_new(const struct cache_ops *ops, double ttl)
{
	struct cache *cache = calloc(1, sizeof(*cache));

	if (!cache)
		return NULL;
	cache->ops = *ops;
	cache->ttl = ttl;
	pthread_mutex_init(&cache->lock, NULL);
	pthread_cond_init(&cache->refreshed, NULL);
	atomic_init(&cache->force, false);
	return cache;
}

void cache_free(struct cache *cache)
{
	if (!cache)
		return;
	snapshot_unref(cache->current);
	snapshot_unref(cache->seed);
	pthread_cond_destroy(&cache->refreshed);
	pthread_mutex_destroy(&cache->lock);
	free(cache);
}

void cache_on_swapped(struct cache *cache,
		      void (*swapped)(void *ctx, struct snapshot *old, struct snapshot *new),
		      void *ctx)
{
	cache->swapped = swapped;
	cache->swapped_ctx = ctx;
}

void cache_on_rejected(struct cache *cache, void (*rejected)(void *ctx), void *ctx)
{
	cache->rejected = rejected;
	cache->rejected_ctx = ctx;
}

void cache_on_accepted(struct cache *cache,
		       void (*accepted)(void *ctx, struct snapshot *snap, char *body, size_t len,
					struct timespec fetched_at,
					const struct fetch_owner *owner),
		       void *ctx)
{
	cache->accepted = accepted;
	cache->accepted_ctx = ctx;
}

void cache_on_removed(struct cache *cache,
		      void (*removed)(void *ctx, struct snapshot *snap, const char *id,
				      size_t id_len),
		      void *ctx)
{
	cache->removed = removed;
	cache->removed_ctx = ctx;
}

void cache_seed(struct cache *cache, struct snapshot *kept, const char *body, size_t len,
		struct timespec fetched_at)
{
	snapshot_unref(cache->seed);
	cache->seed = kept;
	cache->body_hash = fnv1a64(body, len);
	cache->body_len = len;
	cache->fetched_at = fetched_at;
}

/* Whether a first fetch's failure may pass by itself, so that serving a
 * kept list beats not mounting.  A refused credential (-EACCES) is not: a
 * kept list would hide that it is gone.  Nor is a wrong URL (404), an
 * oversized list or a TLS failure, which need the user. */
static bool may_pass(int err)
{
	switch (-err) {
	case ETIMEDOUT:
	case ECONNREFUSED:
	case ECONNRESET:
	case EHOSTUNREACH:
	case ENETUNREACH:
	case EIO:     /* 5xx, a dropped connection, no HTTP answer */
	case EAGAIN:  /* 429 */
	case EBADMSG: /* malformed body */
		return true;
	default:
		return false;
	}
}

/* Skipped entries are logged one by one up to this many per parse, then
 * counted: a broken list must not flood the log on every retry. */
#define PARSE_WARNINGS_MAX 10

struct parse_log {
	size_t warnings;
};

static void parse_warning(void *ctx, const char *message)
{
	struct parse_log *pl = ctx;

	log_msg(pl->warnings++ < PARSE_WARNINGS_MAX ? LOG_WARNING : LOG_DEBUG, "%s", message);
}

/* Turn a fetch result into the next snapshot.  Returns 0 with *next set (or
 * left NULL when the list is unchanged), or -errno with res->message set. */
static int digest(struct cache *cache, struct fetch_result *res, struct snapshot *prev,
		  struct snapshot **next)
{
	struct keylist list;
	struct parse_log pl = { 0 };
	unsigned long long hash;
	char err[256];
	int rc;

	*next = NULL;
	if (res->not_modified) {
		if (prev)
			return 0;
		errmsg_set(res->message, sizeof(res->message),
			   "HTTP 304 before any list was fetched");
		return -EBADMSG;
	}
	hash = fnv1a64(res->body, res->len);
	if (prev && hash == cache->body_hash && res->len == cache->body_len)
		return 0; /* byte for byte the list we have */
	rc = keylist_parse(res->body, res->len, &list, parse_warning, &pl, err, sizeof(err));
	if (pl.warnings > PARSE_WARNINGS_MAX)
		log_warn("... and %zu more entries skipped (-d shows them)",
			 pl.warnings - PARSE_WARNINGS_MAX);
	if (rc < 0) {
		errmsg_set(res->message, sizeof(res->message), "malformed response: %s", err);
		return rc;
	}
	/* Entries there, none usable: a changed or broken API, not a list
	 * that is really empty (that is "[]").  Emptying the tree would let
	 * rsync --delete wipe backups. */
	if (list.count == 0 && list.skipped > 0) {
		errmsg_set(res->message, sizeof(res->message),
			   "malformed response: none of its %zu entries is a usable key",
			   list.skipped);
		keylist_free(&list);
		return -EBADMSG;
	}
	/* An empty or short list may be real (keys revoked), so it is served;
	 * but an API answering wrongly looks the same, and a mirror kept with
	 * rsync --delete would follow it: say so. */
	if (prev && list.count < prev->count - prev->count / 2)
		log_warn("the key list shrank from %zu to %zu keys in one refresh", prev->count,
			 list.count);
	*next = snapshot_build(prev, &list, cache->ops.realtime(cache->ops.ctx));
	keylist_free(&list);
	if (!*next) {
		errmsg_set(res->message, sizeof(res->message), "out of memory building the tree");
		return -ENOMEM;
	}
	cache->body_hash = hash;
	cache->body_len = res->len;
	return 0;
}

static double backoff_delay(struct cache *cache, double retry_after)
{
	double delay = CACHE_BACKOFF_FIRST;

	for (unsigned i = 1; i < cache->failures && delay < CACHE_BACKOFF_CAP; i++)
		delay *= 2;
	if (delay > CACHE_BACKOFF_CAP)
		delay = CACHE_BACKOFF_CAP;
	/* Up to half taken off at random, so many mounts don't retry in step. */
	delay *= 1.0 - 0.5 * cache->ops.random(cache->ops.ctx);
	if (retry_after > RETRY_AFTER_MAX)
		retry_after = RETRY_AFTER_MAX;
	if (retry_after > delay)
		delay = retry_after;
	return delay;
}

/* One fetch and its digest, without the lock: fills *res (its body freed
 * unless it is handed to accepted with *next), *next and *fetched_at. */
static int fetch_unlocked(struct cache *cache, struct snapshot *prev, struct fetch_result *res,
			  struct snapshot **next, struct timespec *fetched_at)
{
	int rc;

	memset(res, 0, sizeof(*res));
	res->retry_after = -1;
	cache->ops.fetch(cache->ops.ctx, res);
	rc = res->err;
	if (rc == 0) {
		rc = digest(cache, res, prev, next);
		if (rc < 0 && cache->rejected)
			cache->rejected(cache->rejected_ctx);
		*fetched_at = cache->ops.realtime(cache->ops.ctx);
	}
	if (!*next || !cache->accepted)
		free(res->body);
	return rc;
}

/* A first fetch failed in a way that may pass: the kept list is served. */
static void serve_kept_locked(struct cache *cache, const struct fetch_result *res)
{
	char when[32];
	struct tm tm;

	gmtime_r(&cache->fetched_at.tv_sec, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	log_warn("cannot fetch the key list: %s; serving the list kept from %s "
		 "(stale) until the API answers",
		 res->message, when);
	cache->current = cache->seed;
	cache->seed = NULL;
}

/* The fetch failed with rc: back off, log, keep the reason.  Returns rc, or
 * 0 when a kept list is served instead. */
static int failed_locked(struct cache *cache, int rc, const struct fetch_result *res, bool serving,
			 double now, char *msg, size_t msglen)
{
	double delay;

	cache->failures++;
	delay = backoff_delay(cache, res->retry_after);
	cache->next_attempt = now + delay;
	/* Logged when a failure starts or changes, not on every retry; the
	 * first fetch's failure is the caller's to report. */
	if (serving && strcmp(cache->last_error, res->message) != 0)
		log_err("fetching the key list failed: %s; serving the last good list",
			res->message);
	else if (serving)
		log_debug("fetching the key list failed again: %s; next try in %.1f s",
			  res->message, delay);
	/* Shown as user.omikeyfs.last_error: made safe once, here. */
	text_sanitize(cache->last_error, sizeof(cache->last_error), res->message,
		      strnlen(res->message, sizeof(res->message)));
	errmsg_set(msg, msglen, "%s", res->message);
	if (!serving && cache->seed && may_pass(rc)) {
		serve_kept_locked(cache, res);
		return 0;
	}
	return rc;
}

/* The fetch worked: next (NULL when the list is unchanged) is served. */
static void succeeded_locked(struct cache *cache, struct snapshot *next,
			     const struct fetch_result *res, double now, struct timespec fetched_at)
{
	if (cache->failures)
		log_info("fetching the key list works again after %u failed tries",
			 cache->failures);
	cache->failures = 0;
	cache->last_error[0] = '\0';
	cache->next_attempt = 0;
	cache->fetched_mono = now;
	cache->fetched_at = fetched_at;
	if (next) {
		struct snapshot *old = cache->current;

		cache->current = next;
		/* swapped only queues work, so it may run under the lock, which
		 * keeps the swaps it sees in order. */
		if (old && cache->swapped)
			cache->swapped(cache->swapped_ctx, old, next);
		if (cache->accepted)
			cache->accepted(cache->accepted_ctx, next, res->body, res->len, fetched_at,
					&res->owner);
		snapshot_unref(old);
	} else if (!cache->current) {
		/* Byte for byte the kept list: it is the list. */
		cache->current = cache->seed;
		cache->seed = NULL;
	}
}

/* Called and returns with the lock held; drops it while fetching. */
static int refresh_locked(struct cache *cache, char *msg, size_t msglen)
{
	/* Before the first list, a kept one stands in as the previous list. */
	struct snapshot *prev = cache->current ? snapshot_ref(cache->current)
				: cache->seed  ? snapshot_ref(cache->seed)
					       : NULL;
	bool serving = cache->current != NULL;
	struct fetch_result res;
	struct snapshot *next = NULL;
	struct timespec fetched_at = { 0 };
	double now;
	int rc;

	cache->refreshing = true;
	atomic_store(&cache->force, false);
	pthread_mutex_unlock(&cache->lock);
	rc = fetch_unlocked(cache, prev, &res, &next, &fetched_at);
	pthread_mutex_lock(&cache->lock);

	now = cache->ops.monotonic(cache->ops.ctx);
	/* Stopping (-ECANCELED) is no failure of the API's: nothing to log or
	 * back off from; waiters get the last good list. */
	if (rc == -ECANCELED)
		errmsg_set(msg, msglen, "%s", res.message);
	else if (rc < 0)
		rc = failed_locked(cache, rc, &res, serving, now, msg, msglen);
	else
		succeeded_locked(cache, next, &res, now, fetched_at);
	/* Only ever the first fetch's previous list. */
	snapshot_unref(cache->seed);
	cache->seed = NULL;
	cache->refreshing = false;
	cache->refresh_seq++;
	pthread_cond_broadcast(&cache->refreshed);
	snapshot_unref(prev);
	return rc;
}

int cache_prime(struct cache *cache, char *msg, size_t msglen)
{
	int rc;

	pthread_mutex_lock(&cache->lock);
	rc = refresh_locked(cache, msg, msglen);
	pthread_mutex_unlock(&cache->lock);
	return rc;
}

/* Seconds until the next refresh may be tried; called with the lock held. */
static double valid_for_locked(struct cache *cache, double now)
{
	double until = cache->fetched_mono + cache->ttl;

	if (atomic_load(&cache->force))
		return 0;
	if (cache->failures && cache->next_attempt > until)
		until = cache->next_attempt;
	return until > now ? until - now : 0;
}

struct snapshot *cache_get(struct cache *cache, double *valid_for)
{
	struct snapshot *snap = NULL;
	double now;

	pthread_mutex_lock(&cache->lock);
	now = cache->ops.monotonic(cache->ops.ctx);
	if (atomic_load(&cache->force) || now >= cache->fetched_mono + cache->ttl) {
		if (cache->refreshing) {
			/* Wait for the fetch under way, not for another one. */
			uint64_t seq = cache->refresh_seq;

			while (cache->refreshing && seq == cache->refresh_seq)
				pthread_cond_wait(&cache->refreshed, &cache->lock);
		} else if (atomic_load(&cache->force) || now >= cache->next_attempt) {
			refresh_locked(cache, NULL, 0);
		}
		now = cache->ops.monotonic(cache->ops.ctx);
	}
	if (cache->current)
		snap = snapshot_ref(cache->current);
	/* Under the same lock as the snapshot: what the kernel is told about
	 * this snapshot never outlives it. */
	if (valid_for)
		*valid_for = valid_for_locked(cache, now);
	pthread_mutex_unlock(&cache->lock);
	return snap;
}

int cache_remove(struct cache *cache, const char *name)
{
	const struct snap_key *key;
	struct snapshot *old, *next;

	pthread_mutex_lock(&cache->lock);
	/* A fetch under way may have started before the key was revoked: its
	 * list goes first, and the key is taken out of that. */
	while (cache->refreshing)
		pthread_cond_wait(&cache->refreshed, &cache->lock);
	old = cache->current;
	key = old ? snapshot_find(old, name) : NULL;
	if (!key) {
		pthread_mutex_unlock(&cache->lock);
		return -ENOENT;
	}
	next = snapshot_without(old, key, cache->ops.realtime(cache->ops.ctx));
	if (!next) {
		pthread_mutex_unlock(&cache->lock);
		return -ENOMEM;
	}
	cache->current = next;
	/* The next body is parsed whatever it holds, even the one that still
	 * listed the key; a validator kept for that body must not answer 304. */
	cache->body_hash = 0;
	cache->body_len = 0;
	if (cache->rejected)
		cache->rejected(cache->rejected_ctx);
	if (cache->swapped)
		cache->swapped(cache->swapped_ctx, old, next);
	if (cache->removed)
		cache->removed(cache->removed_ctx, next, key->dir->id, key->dir->id_len);
	snapshot_unref(old);
	pthread_mutex_unlock(&cache->lock);
	return 0;
}

void cache_note_error(struct cache *cache, const char *message)
{
	pthread_mutex_lock(&cache->lock);
	text_sanitize(cache->last_error, sizeof(cache->last_error), message, strlen(message));
	pthread_mutex_unlock(&cache->lock);
}

void cache_request_refresh(struct cache *cache)
{
	atomic_store(&cache->force, true);
}

bool cache_refresh_requested(struct cache *cache)
{
	return atomic_load(&cache->force);
}

void cache_status(struct cache *cache, struct cache_status *out)
{
	pthread_mutex_lock(&cache->lock);
	out->fetched_at = cache->fetched_at;
	out->stale = cache->failures > 0;
	snprintf(out->last_error, sizeof(out->last_error), "%s", cache->last_error);
	out->generation = cache->current ? cache->current->generation : 0;
	out->failures = cache->failures;
	pthread_mutex_unlock(&cache->lock);
}
