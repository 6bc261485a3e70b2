/* persist: the last accepted key list on disk, one file per API URL and
 * credential, so that a mount can start while the API is down and files
 * keep their mtimes across remounts.  Files are written on a thread of its
 * own, never on a request's path. */
#ifndef OMIKEYFS_PERSIST_H
#define OMIKEYFS_PERSIST_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "cache.h"
#include "keylist.h"
#include "snapshot.h"

/* The format a kept list is written in; a file of another is ignored. */
#define PERSIST_VERSION 1

struct persist;

/*
 * Opens dir (made 0700, with missing parents, when it does not exist) to
 * keep the list of url as seen by one credential: credential, a stable
 * identity that is no secret (a signed-in user's id), or, when it is NULL,
 * token, of which only a salted SHA-256 is used (the salt is kept in dir).
 * A kept list there seeds cache (cache_seed), and every list the cache
 * accepts from now on is written back (cache_on_accepted).
 * Returns NULL with a one-line reason in err when dir or a file in it may
 * be read or written by others or cannot be made or read; but when dir is
 * a default (fallback), one that cannot be made or that another user owns
 * is logged and NULL returned with err empty: mount, keeping nothing.
 * A kept list that
 * is damaged, foreign or of another format is no error: it is ignored with
 * one log line and replaced at the next accepted list.
 */
struct persist *persist_open(const char *dir, bool fallback, const char *url,
			     const char *credential, const char *token, struct cache *cache,
			     char *err, size_t errlen);

/* Start the writing thread; call once after daemonizing.  0 or -errno. */
int persist_start(struct persist *p);

/* Writes what is still queued, stops the thread, frees; NULL is fine. */
void persist_free(struct persist *p);

/* ---- the file format, for the tests and the fuzzer ---------------------- */

/* A kept list as read back: what persist_parse fills. */
struct persist_kept {
	struct keylist list;
	struct snapshot_seed *seeds; /* sorted by ino */
	size_t nseeds;
	struct timespec fetched_at;
	struct timespec members_changed;
	const char *body;            /* inside the parsed buffer */
	size_t body_len;
};

/*
 * Parses a kept list as written for url and credential (the identity as
 * stored: persist_open's credential, or the token's salted hash).  Returns
 * 0 and fills *out (persist_kept_free it), or -EBADMSG (damaged, truncated,
 * a body the API parser refuses), -EPROTONOSUPPORT (another format) or
 * -EXDEV (another URL's or credential's) with a one-line reason in err.
 */
int persist_parse(const char *buf, size_t len, const char *url, const char *credential,
		  struct persist_kept *out, char *err, size_t errlen);
void persist_kept_free(struct persist_kept *kept);

/* The file persist_parse reads back, for snap (built from body), in one
 * malloc'd buffer; NULL when out of memory. */
char *persist_format(const struct snapshot *snap, const char *body, size_t body_len,
		     const char *url, const char *credential, struct timespec fetched_at,
		     size_t *len);

#endif
