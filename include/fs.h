/* fs: the FUSE low-level operations, each answered from one snapshot. */
#ifndef OMIKEYFS_FS_H
#define OMIKEYFS_FS_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <sys/types.h>

#include "cache.h"
#include "snapshot.h"

struct fs;

struct fs *fs_new(struct cache *cache);
void fs_free(struct fs *fs);
const struct fuse_lowlevel_ops *fs_ops(void);

/* Owner, group and umask of every node (-o uid=,gid=,umask=); (uid_t)-1 and
 * (gid_t)-1 keep the mounting user's, as chown(2) does.  Call before
 * mounting. */
void fs_set_owner(struct fs *fs, uid_t uid, gid_t gid, mode_t umask);

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
