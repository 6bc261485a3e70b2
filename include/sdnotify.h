/* sdnotify: tell systemd (or any service manager speaking sd_notify's
 * protocol) how the service is doing, without linking libsystemd. */
#ifndef OMIKEYFS_SDNOTIFY_H
#define OMIKEYFS_SDNOTIFY_H

/* Send state ("READY=1", "STOPPING=1", "STATUS=...", several separated by
 * '\n') as one datagram to the socket named by NOTIFY_SOCKET (a path, or an
 * abstract name when it starts with '@').  Returns 0 when sent or when there
 * is no socket to send to, -errno on failure; never waits for the receiver.
 * Text from outside must go through text_sanitize first: a '\n' in it would
 * start another assignment. */
int sdnotify_send(const char *state);
/* Keep NOTIFY_SOCKET for sdnotify_send but remove it from the environment,
 * so children (fusermount3) do not inherit it.  Call while single-threaded:
 * it uses unsetenv. */
void sdnotify_forget(void);

#endif
