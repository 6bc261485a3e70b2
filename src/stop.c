/*
 * stop: a signal may reach any thread, and libfuse's own handler only marks
 * the session as ended: when the thread it reaches is stuck in a transfer
 * and the loop's thread sleeps, nothing ends.  Here the handler also raises
 * a flag that transfers poll (http_config.cancelled) and forwards the
 * signal to the loop's thread, whose interrupted wait then sees the end.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>

#include "stop.h"

static atomic_bool stopping;
static struct fuse_session *_Atomic stop_se;
static pthread_t loop_thread;

static void on_stop_signal(int sig)
{
	struct fuse_session *se = atomic_load(&stop_se);
	int saved = errno;

	atomic_store(&stopping, true);
	if (se) {
		fuse_session_exit(se);
		if (!pthread_equal(pthread_self(), loop_thread))
			pthread_kill(loop_thread, sig);
	}
	errno = saved;
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

int stop_install(struct fuse_session *se)
{
	int rc;

	loop_thread = pthread_self();
	atomic_store(&stop_se, se);
	if ((rc = set_handler(SIGTERM, on_stop_signal)) < 0 ||
	    (rc = set_handler(SIGINT, on_stop_signal)) < 0)
		return rc;
	return 0;
}

void stop_remove(void)
{
	set_handler(SIGTERM, SIG_DFL);
	set_handler(SIGINT, SIG_DFL);
	atomic_store(&stop_se, NULL);
}

void stop_request(void)
{
	atomic_store(&stopping, true);
}

bool stop_requested(void *ctx)
{
	struct fuse_session *se = atomic_load(&stop_se);

	(void)ctx;
	return atomic_load(&stopping) || (se && fuse_session_exited(se));
}
