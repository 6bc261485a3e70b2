/* cache: the current snapshot, its TTL, single-flight refresh, stale-on-error
 * with backoff, and the status shown as xattrs.  Knows nothing of FUSE;
 * time, randomness and fetching come in through cache_ops, so tests drive it
 * with a fake clock and a fake fetcher. */
#ifndef OMIKEYFS_CACHE_H
#define OMIKEYFS_CACHE_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "snapshot.h"

/* Failed refreshes are retried after 1 s, 2 s, 4 s ... up to this, each
 * with up to half of it taken off at random (jitter). */
#define CACHE_BACKOFF_FIRST 1.0
#define CACHE_BACKOFF_CAP 300.0

/* Whose list a fetch brought, for whoever keeps lists by credential: the
 * signed-in user's id, or else the bearer token itself, which may only be
 * hashed, never stored.  Both point into the fetcher's memory. */
struct fetch_owner {
	const char *user_id;
	const char *token;
};

struct fetch_result {
	int err;           /* 0, or -errno when the fetch failed; -ECANCELED:
			    * not tried (stopping), which is no failure */
	bool not_modified; /* 304: the list is as it was */
	char *body;        /* on success: malloc'd, taken over by the cache */
	size_t len;
	double retry_after;       /* seconds the API asked us to wait, or -1 */
	char message[512];        /* on failure: one line, never the token */
	struct fetch_owner owner; /* on success; valid until the next fetch */
};

/* What the cache cannot work without; all called with ctx. */
struct cache_ops {
	/* One GET.  Fill *res (already zeroed, retry_after = -1). */
	void (*fetch)(void *ctx, struct fetch_result *res);
	double (*monotonic)(void *ctx);         /* seconds, for TTL and backoff */
	struct timespec (*realtime)(void *ctx); /* stamps changes, fetched_at */
	double (*random)(void *ctx);            /* [0, 1), for jitter */
	void *ctx;
};

struct cache_status {
	struct timespec fetched_at; /* last successful fetch (0 before any) */
	bool stale;                 /* the last attempt failed */
	char last_error[512];       /* empty when the last attempt succeeded */
	uint64_t generation;
	unsigned failures; /* consecutive failed attempts */
};

struct cache;

struct cache *cache_new(const struct cache_ops *ops, double ttl);
void cache_free(struct cache *cache);

/*
 * Hooks for whoever must hear of an event, each with a context of its own
 * (what listens is often created after the cache).  Set before cache_prime.
 *
 * swapped: a new snapshot replaced old (never NULL here).  Called by the
 * refreshing thread right after the swap, under the cache's lock so the
 * swaps it sees stay in order: only queue work there; ref what you keep.
 * rejected: a fetched body was not accepted (malformed), or the list served
 * is no longer the last body's (cache_remove): whatever the fetcher
 * remembers of it (validators for a conditional request) must go.
 */
void cache_on_swapped(struct cache *cache,
		      void (*swapped)(void *ctx, struct snapshot *old, struct snapshot *new),
		      void *ctx);
void cache_on_rejected(struct cache *cache, void (*rejected)(void *ctx), void *ctx);

/*
 * accepted: a fetched body became the current list, snap (ref it to keep
 * it); body is the hook's to free.  fetched_at is when it was fetched,
 * owner the credential it was fetched with (the fetch's, valid during the
 * call only).  Called as swapped is, the first fetch included: only queue
 * work there.  Without this hook the cache frees the body itself.
 */
void cache_on_accepted(struct cache *cache,
		       void (*accepted)(void *ctx, struct snapshot *snap, char *body, size_t len,
					struct timespec fetched_at,
					const struct fetch_owner *owner),
		       void *ctx);

/*
 * removed: cache_remove took the key with id (id_len bytes) out; snap is
 * the list now served (ref it to keep it).  Called under the cache's lock
 * as swapped is, in order with it and accepted: only queue work there.
 */
void cache_on_removed(struct cache *cache,
		      void (*removed)(void *ctx, struct snapshot *snap, const char *id,
				      size_t id_len),
		      void *ctx);

/*
 * Before cache_prime: the list an earlier mount kept (persist.h), built
 * from body (only its hash is kept) and fetched at fetched_at.  The cache
 * takes over kept.  The first fetch builds on it, so unchanged files keep
 * their times; if that fetch fails for a reason that may pass (network,
 * timeout, 5xx, 429, malformed body: not a refused credential), cache_prime
 * serves kept instead, stale, logs one line and returns 0.
 */
void cache_seed(struct cache *cache, struct snapshot *kept, const char *body, size_t len,
		struct timespec fetched_at);

/*
 * The first fetch, made before mounting.  Returns 0 (a kept list may be
 * served: cache_seed), or the fetch's -errno (-EBADMSG for a body that does
 * not parse) with its message in msg.
 */
int cache_prime(struct cache *cache, char *msg, size_t msglen);

/*
 * The snapshot to answer one operation from, referenced (snapshot_unref it).
 * Refreshes first when the TTL has run out or a refresh was requested: one
 * caller fetches, the others wait for that fetch.  While failing, answers
 * at once from the last good snapshot until the backoff allows the next try.
 * Never NULL after a successful cache_prime.  valid_for (may be NULL) gets
 * the seconds until the next refresh may be tried (>= 0), as of the same
 * moment as the snapshot: how long the kernel may keep entries it is told
 * about.
 */
struct snapshot *cache_get(struct cache *cache, double *valid_for);

/*
 * The key directory named name is gone (revoked): serve the list without it
 * from now on, as the next fetch will, after any fetch under way.  Calls
 * swapped, removed, and rejected (the fetcher's validators stood for the
 * list that held the key); the next body is parsed whatever it holds, so a
 * list that still has the key brings it back.  Returns 0, or -ENOENT when
 * the list has no such key (gone meanwhile), or -ENOMEM.
 */
int cache_remove(struct cache *cache, const char *name);

/* A failure outside the fetch that the user must hear of (a revoke refused
 * because the session ended): shown as last_error until the next fetch
 * succeeds.  stale is left as it is. */
void cache_note_error(struct cache *cache, const char *message);

/* Make the next cache_get refresh, whatever the TTL and backoff say.
 * Async-signal-safe (SIGHUP). */
void cache_request_refresh(struct cache *cache);

/* Whether a requested refresh has not started yet. */
bool cache_refresh_requested(struct cache *cache);

void cache_status(struct cache *cache, struct cache_status *out);

#endif
