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
 * Call from that thread once daemonized (a thread does not survive fork),
 * after fuse_set_signal_handlers, whose handlers for the two it replaces.
 * Returns 0 or -errno.
 */
int stop_install(struct fuse_session *se);
/* Stop that thread, back to the default actions; se is forgotten.  Fine
 * without stop_install. */
void stop_remove(void);

/* The loop has returned: raise the flag, stop interrupting. */
void stop_request(void);

/* Whether the flag is up or se's loop has ended (unmounted).  ctx is
 * unused: the shape of http_config.cancelled. */
bool stop_requested(void *ctx);

#endif
