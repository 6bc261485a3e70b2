/* persist: the last accepted key list on disk, one file per API URL and
 * credential, so that a mount can start while the API is down and files
 * keep their mtimes across remounts.  Files are written on a thread of its
 * own, never on a request's path. */
#ifndef OMIKEYFS_PERSIST_H
#define OMIKEYFS_PERSIST_H

#include <stdbool.h>
#include <stddef.h>

#include "cache.h"

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
 * A kept list that is damaged, foreign or of another format is no error:
 * it is ignored with one log line and replaced at the next accepted list.
 */
struct persist *persist_open(const char *dir, bool fallback, const char *url,
			     const char *credential, const char *token, struct cache *cache,
			     char *err, size_t errlen);

/* Start the writing thread; call once after daemonizing.  0 or -errno. */
int persist_start(struct persist *p);

/* Writes what is still queued, stops the thread, frees; NULL is fine. */
void persist_free(struct persist *p);

#endif
