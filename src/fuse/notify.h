/* notify: a thread of its own that tells the kernel what a refresh changed
 * and pushes listed files' bytes into its page cache.  Never from a request
 * handler: there, either can deadlock. */
#ifndef OMIKEYFS_NOTIFY_H
#define OMIKEYFS_NOTIFY_H

#include <fuse_lowlevel.h>

#include "cache.h"
#include "snapshot.h"

struct notify;

/* cache is what a SIGHUP refreshes. */
struct notify *notify_new(struct cache *cache);
/* Stops the thread if it runs and drops whatever is still queued. */
void notify_free(struct notify *n);

/* Start the thread; call once the session is mounted (and after
 * daemonizing).  Returns 0 or -errno. */
int notify_start(struct notify *n, struct fuse_session *se);
/* The first half of stopping: no more notifications from here on (the
 * session's fd is about to close), without waiting for the thread. */
void notify_stopping(struct notify *n);
void notify_stop(struct notify *n);

/* SIGHUP: refresh now and push the changes.  Async-signal-safe. */
void notify_request_refresh(struct notify *n);

/* A refresh replaced old by new: drop the kernel's entries that changed. */
void notify_swapped(struct notify *n, struct snapshot *old, struct snapshot *new);

/* A READ was answered: for a while, listings push file bytes. */
void notify_read(struct notify *n);

/* A readdirplus of key's directory reached its end, so the kernel knows its
 * files' inodes: push their bytes, if files are being read. */
void notify_store_key(struct notify *n, const struct snap_key *key);

#endif
