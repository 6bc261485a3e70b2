/* mountpoint: what already sits where omikeyfs is to mount: a live
 * omikeyfs (mounting again would stack a second daemon on it) or a dead
 * FUSE mount (its daemon killed), each refused with what to do. */
#ifndef OMIKEYFS_MOUNTPOINT_H
#define OMIKEYFS_MOUNTPOINT_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Check path (a directory to mount on, not /dev/fd/N) before anything is
 * fetched.  Returns 0 to go on (other problems with path are left to
 * whoever mounts), or with one line in err:
 *   -EBUSY:    "mountpoint P is already an omikeyfs mount (pid N); unmount
 *              it first: fusermount3 -u P" (the pid from its
 *              user.omikeyfs.pid, left out when it does not answer);
 *   -ENOTCONN: "mountpoint P: a previous mount died (Transport endpoint is
 *              not connected); fusermount3 -u P clears it".
 */
int mountpoint_check(const char *path, char *err, size_t errlen);

/* The device ("MAJ:MIN", as /proc/self/mountinfo says) of the omikeyfs
 * mount that abs (a canonical path: libfuse's mount point) shows, into
 * dev: 0, or -ENOENT when it shows none.  Read from the mount table only:
 * nothing is asked of the mount itself, whose loop may not run yet. */
int mountpoint_device(const char *abs, char *dev, size_t devlen);

/* Whether a mount of dev is left in this process's mount namespace (true
 * when the table cannot be read). */
bool mountpoint_device_mounted(const char *dev);

#endif
