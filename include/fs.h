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

/* Revoke the key with id (id_len bytes), waiting for the API's answer:
 * 0, or -errno with one line in msg (fetcher_revoke). */
typedef int fs_revoke_fn(void *ctx, const char *id, size_t id_len, char *msg, size_t msglen);

/*
 * -o allow_revoke: rmdir MOUNTPOINT/DIR by the mounting user revokes that
 * key through revoke, and the root gets the owner's w (default_permissions
 * asks for it).  The mount must then be rw (the kernel refuses rmdir on a
 * ro one), so every open is answered, to refuse writers.  Call before
 * fs_set_owner and before mounting.
 */
void fs_set_revoke(struct fs *fs, fs_revoke_fn *revoke, void *ctx);

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
