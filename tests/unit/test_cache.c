/* Unit tests for cache: TTL, single flight, stale on error, backoff,
 * Retry-After, forced refresh and status, with a fake clock and fetcher. */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cache.h"
#include "test.h"

static const char list_a[] =
	"[{\"id\":\"k1\",\"name\":\"one\",\"key_prefix\":\"omi_dev_aaaa...aaaa\","
	"\"created_at\":\"2025-01-15T10:30:00.123456Z\",\"last_used_at\":null,\"scopes\":null}]";
static const char list_b[] =
	"[{\"id\":\"k1\",\"name\":\"one renamed\",\"key_prefix\":\"omi_dev_aaaa...aaaa\","
	"\"created_at\":\"2025-01-15T10:30:00.123456Z\",\"last_used_at\":null,\"scopes\":null},"
	"{\"id\":\"k2\",\"name\":\"two\",\"key_prefix\":\"omi_dev_bbbb...bbbb\","
	"\"created_at\":\"2025-02-01T00:00:00Z\",\"last_used_at\":null,\"scopes\":[]}]";

struct fake {
	double now;
	double rnd;
	int fetches;
	int swaps;
	int rejected;
	/* what the next fetch answers */
	int err;
	const char *body;
	bool not_modified;
	double retry_after;
	/* single flight: the fetch waits here until this many other callers
	 * have come in while it is under way (counted by the clock) */
	int block_for;
	pthread_mutex_t lock;
	pthread_cond_t cond;
	bool in_fetch;
	int arrived;
};

static void fake_fetch(void *ctx, struct fetch_result *res)
{
	struct fake *f = ctx;

	pthread_mutex_lock(&f->lock);
	f->fetches++;
	if (f->block_for) {
		f->in_fetch = true;
		while (f->arrived < f->block_for)
			pthread_cond_wait(&f->cond, &f->lock);
		f->in_fetch = false;
	}
	res->err = f->err;
	res->retry_after = f->retry_after;
	if (f->err)
		snprintf(res->message, sizeof(res->message), "HTTP 503: backend down");
	else if (f->not_modified)
		res->not_modified = true;
	else {
		res->len = strlen(f->body);
		res->body = strdup(f->body);
	}
	pthread_mutex_unlock(&f->lock);
}

static void fake_swapped(void *ctx, struct snapshot *old, struct snapshot *new)
{
	struct fake *f = ctx;

	test_assert(old && new &&new->generation == old->generation + 1);
	f->swaps++;
}

static void fake_rejected(void *ctx)
{
	((struct fake *)ctx)->rejected++;
}

/* cache_get reads the clock under the cache's lock before it decides to
 * wait, and keeps that lock until it waits: a caller counted here while the
 * fetch is under way is one that will wait for it (or, were single flight
 * broken, fetch again). */
static double fake_monotonic(void *ctx)
{
	struct fake *f = ctx;

	if (f->block_for) {
		pthread_mutex_lock(&f->lock);
		if (f->in_fetch) {
			f->arrived++;
			pthread_cond_broadcast(&f->cond);
		}
		pthread_mutex_unlock(&f->lock);
	}
	return f->now;
}

static struct timespec fake_realtime(void *ctx)
{
	return (struct timespec){ 1800000000 + (time_t)((struct fake *)ctx)->now, 0 };
}

static double fake_random(void *ctx)
{
	return ((struct fake *)ctx)->rnd;
}

static struct cache *new_cache(struct fake *f, double ttl)
{
	struct cache_ops ops = {
		.fetch = fake_fetch,
		.monotonic = fake_monotonic,
		.realtime = fake_realtime,
		.random = fake_random,
		.ctx = f,
	};
	struct cache *c;

	memset(f, 0, sizeof(*f));
	f->now = 1000;
	f->body = list_a;
	f->retry_after = -1;
	pthread_mutex_init(&f->lock, NULL);
	pthread_cond_init(&f->cond, NULL);
	c = cache_new(&ops, ttl);
	cache_on_swapped(c, fake_swapped, f);
	cache_on_rejected(c, fake_rejected, f);
	return c;
}

static size_t count_of(struct cache *c)
{
	struct snapshot *s = cache_get(c, NULL);
	size_t n = s->count;

	snapshot_unref(s);
	return n;
}

/* What cache_get tells the kernel it may keep entries for. */
static double valid_of(struct cache *c)
{
	double valid = -1;

	snapshot_unref(cache_get(c, &valid));
	return valid;
}

static void test_ttl(void)
{
	struct fake f;
	struct cache *c = new_cache(&f, 60);
	char msg[256];

	test_assert(cache_prime(c, msg, sizeof(msg)) == 0 && f.fetches == 1);
	for (int i = 0; i < 100; i++)
		test_assert(count_of(c) == 1);
	test_assert(f.fetches == 1);
	test_assert(valid_of(c) == 60);
	f.now += 59;
	test_assert(count_of(c) == 1 && f.fetches == 1);
	f.now += 1;
	f.body = list_b;
	test_assert(count_of(c) == 2 && f.fetches == 2 && f.swaps == 1);
	test_assert(valid_of(c) == 60);
	double valid = -1;
	struct snapshot *s = cache_get(c, &valid);
	test_assert(s && valid == 60);
	snapshot_unref(s);
	f.now += 60; /* expired: the refresh happens first, then 60 again */
	s = cache_get(c, &valid);
	test_assert(f.fetches == 3 && valid == 60);
	snapshot_unref(s);
	cache_free(c);
}

static void test_unchanged_body_keeps_snapshot(void)
{
	struct fake f;
	struct cache *c = new_cache(&f, 10);
	struct snapshot *a, *b;

	test_assert(cache_prime(c, NULL, 0) == 0);
	a = cache_get(c, NULL);
	f.now += 11;
	b = cache_get(c, NULL); /* the same bytes again */
	test_assert(f.fetches == 2 && a == b && f.swaps == 0);
	snapshot_unref(b);
	f.now += 11;
	f.not_modified = true;
	b = cache_get(c, NULL);
	test_assert(f.fetches == 3 && a == b && f.swaps == 0);
	snapshot_unref(a);
	snapshot_unref(b);
	cache_free(c);
}

static void test_prime_failure(void)
{
	struct fake f;
	struct cache *c = new_cache(&f, 60);
	char msg[256];

	f.err = -EACCES;
	test_assert(cache_prime(c, msg, sizeof(msg)) == -EACCES);
	test_assert(strstr(msg, "HTTP 503") != NULL);
	test_assert(cache_get(c, NULL) == NULL); /* nothing to serve yet */
	cache_free(c);

	/* A transport failure rejects no body; a malformed one is rejected. */
	test_assert(f.rejected == 0);
	c = new_cache(&f, 60);
	f.body = "<html>oops</html>";
	test_assert(cache_prime(c, msg, sizeof(msg)) == -EBADMSG);
	test_assert(strncmp(msg, "malformed response", 18) == 0);
	test_assert(f.rejected == 1);
	cache_free(c);

	/* Entries, none usable: never an empty tree. */
	c = new_cache(&f, 60);
	f.body = "[1, \"two\", null, {\"name\": \"no id\"}]";
	test_assert(cache_prime(c, msg, sizeof(msg)) == -EBADMSG);
	test_assert(strstr(msg, "none of its 4 entries") != NULL);
	cache_free(c);

	/* A list that is really empty is fine. */
	c = new_cache(&f, 60);
	f.body = "[]";
	test_assert(cache_prime(c, msg, sizeof(msg)) == 0 && count_of(c) == 0);
	cache_free(c);

	c = new_cache(&f, 60);
	f.not_modified = true;
	test_assert(cache_prime(c, msg, sizeof(msg)) == -EBADMSG);
	cache_free(c);
}

static void test_stale_and_backoff(void)
{
	struct fake f;
	struct cache *c = new_cache(&f, 1);
	struct cache_status st;

	test_assert(cache_prime(c, NULL, 0) == 0);
	cache_status(c, &st);
	test_assert(!st.stale && st.last_error[0] == '\0' && st.fetched_at.tv_sec == 1800001000);

	f.err = -EIO;
	f.rnd = 0; /* no jitter: delays are 1, 2, 4, ... */
	f.now += 1;
	test_assert(count_of(c) == 1 && f.fetches == 2); /* failed, last good list served */
	cache_status(c, &st);
	test_assert(st.stale && strcmp(st.last_error, "HTTP 503: backend down") == 0);
	test_assert(st.failures == 1 && st.fetched_at.tv_sec == 1800001000);
	/* Within the backoff: answered at once, no new request. */
	for (int i = 0; i < 50; i++)
		test_assert(count_of(c) == 1);
	test_assert(f.fetches == 2);
	test_assert(valid_of(c) == 1);

	/* Ten seconds of constant access make a handful of requests. */
	double end = f.now + 10;
	while (f.now < end) {
		f.now += 0.01;
		test_assert(count_of(c) == 1);
	}
	test_assert(f.fetches >= 4 && f.fetches <= 6);

	/* The cap. */
	for (int i = 0; i < 20; i++) {
		f.now += CACHE_BACKOFF_CAP;
		count_of(c);
	}
	int before = f.fetches;
	f.now += CACHE_BACKOFF_CAP - 1;
	count_of(c);
	test_assert(f.fetches == before);
	f.now += 1;
	count_of(c);
	test_assert(f.fetches == before + 1);

	/* Recovery: the next allowed try succeeds and the status clears. */
	f.err = 0;
	f.body = list_b;
	f.now += CACHE_BACKOFF_CAP;
	test_assert(count_of(c) == 2);
	cache_status(c, &st);
	test_assert(!st.stale && st.last_error[0] == '\0' && st.failures == 0);
	cache_free(c);
}

static void test_jitter_and_retry_after(void)
{
	struct fake f;
	struct cache *c = new_cache(&f, 1);

	test_assert(cache_prime(c, NULL, 0) == 0);
	/* Jitter takes up to half off: with rnd 0.99 the first delay is ~0.5 s. */
	f.err = -EIO;
	f.rnd = 0.99;
	f.now += 1;
	count_of(c);
	test_assert(f.fetches == 2);
	f.now += 0.49;
	count_of(c);
	test_assert(f.fetches == 2);
	f.now += 0.02;
	count_of(c);
	test_assert(f.fetches == 3);

	/* Retry-After: 30 s, whatever the backoff says. */
	f.err = -EAGAIN;
	f.retry_after = 30;
	f.now += 100;
	count_of(c);
	test_assert(f.fetches == 4);
	f.now += 29.9;
	count_of(c);
	test_assert(f.fetches == 4);
	double valid = valid_of(c);

	test_assert(valid > 0 && valid <= 0.11 && f.fetches == 4);
	f.now += 0.1;
	count_of(c);
	test_assert(f.fetches == 5);
	cache_free(c);
}

static void test_forced_refresh(void)
{
	struct fake f;
	struct cache *c = new_cache(&f, 3600);

	test_assert(cache_prime(c, NULL, 0) == 0);
	f.body = list_b;
	test_assert(count_of(c) == 1 && f.fetches == 1);
	cache_request_refresh(c);
	test_assert(cache_refresh_requested(c));
	test_assert(count_of(c) == 2 && f.fetches == 2);
	test_assert(!cache_refresh_requested(c));
	test_assert(count_of(c) == 2 && f.fetches == 2);
	/* Forced even inside a backoff. */
	f.err = -EIO;
	cache_request_refresh(c);
	count_of(c);
	test_assert(f.fetches == 3);
	cache_request_refresh(c);
	count_of(c);
	test_assert(f.fetches == 4);
	cache_free(c);
}

struct getter {
	struct cache *cache;
	size_t count;
};

static void *get_thread(void *arg)
{
	struct getter *g = arg;

	g->count = count_of(g->cache);
	return NULL;
}

static void test_single_flight(void)
{
	enum { THREADS = 8 };
	struct fake f;
	struct cache *c = new_cache(&f, 10);
	pthread_t threads[THREADS];
	struct getter getters[THREADS];

	test_assert(cache_prime(c, NULL, 0) == 0);
	f.now += 10;
	f.body = list_b;
	/* The fetch returns only once the seven others have come in behind it. */
	f.block_for = THREADS - 1;
	for (int i = 0; i < THREADS; i++) {
		getters[i].cache = c;
		pthread_create(&threads[i], NULL, get_thread, &getters[i]);
	}
	for (int i = 0; i < THREADS; i++) {
		pthread_join(threads[i], NULL);
		test_assert(getters[i].count == 2); /* all saw the new list */
	}
	test_assert(f.arrived == THREADS - 1);
	test_assert(f.fetches == 2);
	cache_free(c);
}

static int removals;

static void fake_removed(void *ctx, struct snapshot *snap, const char *id, size_t id_len)
{
	test_assert(snap->count == 1 && id_len == 2 && memcmp(id, "k1", 2) == 0);
	removals++;
}

/* A revoke: the key leaves the list served at once, validators go, and the
 * next fetch is parsed even when it brings the very bytes back. */
static void test_remove(void)
{
	struct fake f;
	struct cache *c = new_cache(&f, 10);
	struct cache_status st;

	cache_on_removed(c, fake_removed, &f);
	f.body = list_b;
	test_assert(cache_prime(c, NULL, 0) == 0 && count_of(c) == 2);
	test_assert(cache_remove(c, "nope") == -ENOENT && removals == 0);
	test_assert(cache_remove(c, "k1") == 0);
	test_assert(removals == 1 && f.swaps == 1 && f.rejected == 1);
	test_assert(count_of(c) == 1 && f.fetches == 1);
	test_assert(cache_remove(c, "k1") == -ENOENT);
	f.now += 11; /* the API still lists it: it is back */
	test_assert(count_of(c) == 2 && f.fetches == 2 && f.swaps == 2);

	cache_note_error(c, "revoking key k2: the session has ended\n");
	cache_status(c, &st);
	test_assert(strcmp(st.last_error, "revoking key k2: the session has ended?") == 0);
	test_assert(!st.stale);
	f.now += 11;
	test_assert(count_of(c) == 2);
	cache_status(c, &st);
	test_assert(st.last_error[0] == '\0');
	cache_free(c);
}

int main(void)
{
	test_run(test_remove);
	test_run(test_ttl);
	test_run(test_unchanged_body_keeps_snapshot);
	test_run(test_prime_failure);
	test_run(test_stale_and_backoff);
	test_run(test_jitter_and_retry_after);
	test_run(test_forced_refresh);
	test_run(test_single_flight);
	return 0;
}
