/* fs: the FUSE low-level operations, each answered from one snapshot. */
#ifndef OMIKEYFS_FS_H
#define OMIKEYFS_FS_H

#include <fuse_lowlevel.h>
#include <stdbool.h>

#include "cache.h"
#include "snapshot.h"

struct fs;

struct fs *fs_new(struct cache *cache);
void fs_free(struct fs *fs);
const struct fuse_lowlevel_ops *fs_ops(void);

/* fs owns the notifier (notify.h); these reach it.  Start the thread that
 * tells the kernel what a refresh changed; call once the session is mounted
 * (and after daemonizing). */
int fs_start_notifier(struct fs *fs, struct fuse_session *se);
void fs_stop_notifier(struct fs *fs);
/* The first half of stopping: no more notifications from here on (the
 * session's fd is about to close), without waiting for the thread. */
void fs_notifier_stopping(struct fs *fs);

/* SIGHUP: refresh now and push the changes to the kernel.
 * Async-signal-safe. */
void fs_request_refresh(struct fs *fs);

/* cache_ops.swapped, to be wired by main. */
void fs_snapshot_swapped(void *fs, struct snapshot *old, struct snapshot *new);

#endif
