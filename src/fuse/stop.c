/*
 * stop: a signal may reach any thread, and libfuse's own handler only marks
 * the session as ended; the loop's thread sees that only when its wait is
 * interrupted, which it is not when the signal reached another thread (one
 * stuck in a transfer, say), nor when the signal came just before the wait
 * or together with SIGHUP (whose handler restarts it).  So the handler
 * here also raises a flag that transfers poll (http_config.cancelled) and
 * wakes a thread of ours that keeps interrupting the loop's thread until
 * the loop has returned.
 *
 * That thread also watches this mount namespace's mount table.  An unmount
 * ends the kernel's connection only once no mount of it is left anywhere:
 * a mount namespace made while it was mounted (unshare -m, a service with
 * PrivateTmp=) holds a copy that kept the daemon serving, unseen, long
 * after `fusermount3 -u`.  Once the mount is gone from here, the daemon
 * ends as after any unmount, and the copies elsewhere with it.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "log.h"
#include "mountpoint.h"
#include "stop.h"

/* How often the loop's thread is interrupted until its loop returns. */
#define NUDGE_NS 50000000L
/* How long a plain unmount may take to end the kernel's connection once
 * the mount has left the table, before a copy elsewhere is assumed. */
#define ABORT_GRACE_MS 2000

static atomic_bool stopping;
static atomic_bool loop_done;
static atomic_bool mount_gone;
static struct fuse_session *_Atomic stop_se;
static pthread_t loop_thread, nudger;
static bool nudger_running;
/* Written by the signal handler and stop_remove (write(2) is
 * async-signal-safe); read by the nudger. */
static int wake[2] = { -1, -1 };
static int mountinfo = -1;
static char mount_dev[32];

static void on_stop_signal(int sig)
{
	struct fuse_session *se = atomic_load(&stop_se);
	int saved = errno;
	ssize_t n;

	atomic_store(&stopping, true);
	if (se)
		fuse_session_exit(se);
	n = write(wake[1], "", 1);
	(void)n; /* full: the nudger is awake already */
	errno = saved;
}

/* Until a signal (or stop_remove) wakes it, or the mount is gone from this
 * namespace: each change to the table is a POLLPRI on mountinfo. */
static void wait_for_stop(void)
{
	struct pollfd fds[2] = { { .fd = wake[0], .events = POLLIN },
				 { .fd = mountinfo, .events = POLLPRI } };

	for (;;) {
		int n = poll(fds, mountinfo >= 0 ? 2 : 1, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 || fds[0].revents)
			return;
		if ((fds[1].revents & (POLLPRI | POLLERR)) &&
		    !mountpoint_device_mounted(mount_dev)) {
			struct fuse_session *se = atomic_load(&stop_se);
			struct pollfd conn = { .fd = se ? fuse_session_fd(se) : -1 };

			/* A plain unmount ends the connection (POLLERR) and the
			 * loop by itself, which may have closed the fd already
			 * (POLLNVAL). */
			if (!se || atomic_load(&loop_done) ||
			    (poll(&conn, 1, ABORT_GRACE_MS) > 0 &&
			     (conn.revents & (POLLERR | POLLHUP | POLLNVAL))) ||
			    atomic_load(&loop_done)) {
				fds[1].fd = -1; /* nothing more to watch */
				continue;
			}
			log_info("unmounted here while a copy of the mount lives on in another "
				 "mount namespace; ending it");
			atomic_store(&mount_gone, true);
			atomic_store(&stopping, true);
			fuse_session_exit(se);
			return;
		}
	}
}

static void *nudge_main(void *arg)
{
	const struct timespec pause = { 0, NUDGE_NS };

	wait_for_stop();
	/* Each interruption makes the loop look at the session again. */
	while (!atomic_load(&loop_done)) {
		pthread_kill(loop_thread, SIGTERM);
		nanosleep(&pause, NULL);
	}
	return arg;
}

static int set_handler(int sig, void (*handler)(int))
{
	struct sigaction sa, old;

	/* A signal ignored from the start (nohup, a shell's background job)
	 * stays ignored, as libfuse leaves it. */
	if (sigaction(sig, NULL, &old) < 0)
		return -errno;
	if (old.sa_handler == SIG_IGN)
		return 0;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = handler;
	sigemptyset(&sa.sa_mask);
	/* No SA_RESTART: the loop's blocking wait must return to look. */
	sa.sa_flags = 0;
	return sigaction(sig, &sa, NULL) < 0 ? -errno : 0;
}

int stop_install(struct fuse_session *se, const char *mountpoint)
{
	sigset_t all, old;
	int rc;

	loop_thread = pthread_self();
	atomic_store(&stop_se, se);
	if (pipe2(wake, O_CLOEXEC | O_NONBLOCK) < 0)
		return -errno;
	/* No mount of ours to watch (a /dev/fd/N mount point): signals only. */
	if (mountpoint && mountpoint_device(mountpoint, mount_dev, sizeof(mount_dev)) == 0)
		mountinfo = open("/proc/self/mountinfo", O_RDONLY | O_CLOEXEC);
	/* The nudger never takes a signal itself: they are for the others. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&nudger, NULL, nudge_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc < 0)
		return rc;
	nudger_running = true;
	if ((rc = set_handler(SIGTERM, on_stop_signal)) < 0 ||
	    (rc = set_handler(SIGINT, on_stop_signal)) < 0)
		return rc;
	return 0;
}

void stop_remove(void)
{
	/* The nudger first: none of its signals may find the default action. */
	atomic_store(&loop_done, true);
	if (nudger_running) {
		ssize_t n = write(wake[1], "", 1);

		(void)n;
		pthread_join(nudger, NULL);
		nudger_running = false;
	}
	set_handler(SIGTERM, SIG_DFL);
	set_handler(SIGINT, SIG_DFL);
	atomic_store(&stop_se, NULL);
	for (int i = 0; i < 2; i++) {
		if (wake[i] >= 0)
			close(wake[i]);
		wake[i] = -1;
	}
	if (mountinfo >= 0)
		close(mountinfo);
	mountinfo = -1;
}

void stop_request(void)
{
	atomic_store(&stopping, true);
	atomic_store(&loop_done, true);
}

bool stop_requested(void *ctx)
{
	struct fuse_session *se = atomic_load(&stop_se);

	(void)ctx;
	return atomic_load(&stopping) || (se && fuse_session_exited(se));
}

bool stop_mount_gone(void)
{
	return atomic_load(&mount_gone);
}

int stop_let_go(struct fuse_session *se)
{
	int fd = fuse_session_fd(se), pipefd[2], rc = 0;

	/* The mount is gone from here and the path may hold another one now,
	 * which unmounting by path would take down.  libfuse unmounts only
	 * when its fd does not report POLLERR ("already unmounted"): the
	 * write end of a pipe without a reader, put in its place, does.  The
	 * last reference to the kernel's connection goes with it, which ends
	 * the copies elsewhere. */
	if (pipe2(pipefd, O_CLOEXEC) < 0)
		return -errno;
	close(pipefd[0]);
	if (dup3(pipefd[1], fd, O_CLOEXEC) < 0)
		rc = -errno;
	close(pipefd[1]);
	return rc;
}
