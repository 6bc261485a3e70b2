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

struct persist_config {
	const char *dir; /* made 0700, with missing parents, when missing */
	bool fallback;   /* dir is a default the user never chose */
	const char *url; /* the list's URL */
	size_t max_size; /* the largest response: no kept list of a larger one is read */
	/* The mount's credential, whose kept list seeds the cache: a user id
	 * (no secret), or a token, of which only a salted SHA-256 is used
	 * (the salt is kept in dir). */
	struct fetch_owner owner;
};

/*
 * Opens cfg->dir to keep the lists of cfg->url, one file per credential.
 * The list kept for cfg->owner, if any, seeds cache (cache_seed), and
 * every list the cache accepts from now on is written back under the
 * credential it was fetched with (cache_on_accepted): after a session
 * healed by another account's sign-in, or a rotated key file, under that
 * account's.
 * Returns NULL with a one-line reason in err when dir or a file in it may
 * be read or written by others or cannot be made or read; but when dir is
 * a default (fallback), any such failure is logged as a warning and NULL
 * returned with err empty: mount, keeping nothing.
 * A kept list that is damaged, foreign, of another format or larger than
 * a list of max_size is no error: it is ignored with one log line and
 * replaced at the next accepted list.
 */
struct persist *persist_open(const struct persist_config *cfg, struct cache *cache, char *err,
			     size_t errlen);

/* Start the writing thread; call once after daemonizing.  0 or -errno. */
int persist_start(struct persist *p);

/* Writes what is still queued, stops the thread, frees; NULL is fine. */
void persist_free(struct persist *p);

#endif
