/* stop: ending the daemon promptly.  SIGTERM, SIGINT or the session ending
 * (an unmount) raise one flag; transfers poll it and abort, and no fetch
 * starts once it is up, so the FUSE loop never waits on the network. */
#ifndef OMIKEYFS_STOP_H
#define OMIKEYFS_STOP_H

#include <fuse_lowlevel.h>
#include <stdbool.h>

/*
 * Handle SIGTERM and SIGINT for se: raise the flag, end se's loop, and
 * start a thread that interrupts the thread running the loop (the one
 * calling this) until the loop has returned, wherever the signal landed.
 * With mountpoint (NULL for a /dev/fd/N one), that thread also ends the
 * loop the same way once no mount of it is left in this mount namespace
 * (stop_mount_gone), though a copy in another keeps the kernel's
 * connection alive.
 * Call from that thread once daemonized (a thread does not survive fork),
 * after fuse_session_mount and fuse_set_signal_handlers, whose handlers
 * for the two it replaces.  Returns 0 or -errno.
 */
int stop_install(struct fuse_session *se, const char *mountpoint);
/* Stop that thread, back to the default actions; se is forgotten.  Fine
 * without stop_install. */
void stop_remove(void);

/* The loop has returned: raise the flag, stop interrupting. */
void stop_request(void);

/* Whether the flag is up or se's loop has ended (unmounted).  ctx is
 * unused: the shape of http_config.cancelled. */
bool stop_requested(void *ctx);

/* Whether the loop ended because the mount was gone from this namespace. */
bool stop_mount_gone(void);

/* Then, before fuse_session_unmount: have it close the session's fd without
 * unmounting the path (which may hold a new mount), ending the kernel's
 * connection.  0 or -errno. */
int stop_let_go(struct fuse_session *se);

#endif
