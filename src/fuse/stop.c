/*
 * stop: a signal may reach any thread, and libfuse's own handler only marks
 * the session as ended; the loop's thread sees that only when its wait is
 * interrupted, which it is not when the signal reached another thread (one
 * stuck in a transfer, say), nor when the signal came just before the wait
 * or together with SIGHUP (whose handler restarts it).  So the handler
 * here also raises a flag that transfers poll (http_config.cancelled) and
 * wakes a thread of ours that keeps interrupting the loop's thread until
 * the loop has returned.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdatomic.h>
#include <stddef.h>
#include <string.h>
#include <time.h>

#include "stop.h"

/* How often the loop's thread is interrupted until its loop returns. */
#define NUDGE_NS 50000000L

static atomic_bool stopping;
static atomic_bool loop_done;
static struct fuse_session *_Atomic stop_se;
static pthread_t loop_thread, nudger;
static bool nudger_running;
static sem_t wake;

static void on_stop_signal(int sig)
{
	struct fuse_session *se = atomic_load(&stop_se);
	int saved = errno;

	atomic_store(&stopping, true);
	if (se)
		fuse_session_exit(se);
	sem_post(&wake);
	errno = saved;
}

static void *nudge_main(void *arg)
{
	const struct timespec pause = { 0, NUDGE_NS };

	while (sem_wait(&wake) < 0 && errno == EINTR)
		;
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

int stop_install(struct fuse_session *se)
{
	sigset_t all, old;
	int rc;

	loop_thread = pthread_self();
	atomic_store(&stop_se, se);
	if (sem_init(&wake, 0, 0) < 0)
		return -errno;
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
		sem_post(&wake);
		pthread_join(nudger, NULL);
		nudger_running = false;
		sem_destroy(&wake);
	}
	set_handler(SIGTERM, SIG_DFL);
	set_handler(SIGINT, SIG_DFL);
	atomic_store(&stop_se, NULL);
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
