/*
 * notify: what the kernel is told outside of any request.
 *
 * Two kinds of work reach this thread.  A refresh made before the TTL ran
 * out (SIGHUP) must reach the kernel, whose entries would otherwise stay
 * valid: the changed entries are invalidated.  A key directory just listed
 * has its files' bytes pushed into the page cache, so that a reader going on
 * to read them (grep -r, tar) costs no round trip.  Both are sent from here
 * and never from a request handler: an invalidation or a store waits for
 * the kernel, which may be waiting for that very handler.
 */
#include <errno.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "clock.h"
#include "log.h"
#include "notify.h"

/* Past this many queued store jobs, listings stop queueing more. */
#define MAX_PENDING_STORES 4096
/* Listings push file bytes for this long after the last READ. */
#define STORE_AFTER_READ_NS 1000000000LL

/* What a refresh changed (old -> new), or the files of a key directory just
 * listed, whose bytes go to the page cache. */
struct job {
	struct snapshot *old, *new;      /* a swap, or NULL */
	struct node *files[FIELD_COUNT]; /* to store, referenced, or NULL */
	struct job *next;
};

struct notify {
	struct cache *cache;
	struct fuse_session *se;
	pthread_t thread;
	bool running;
	sem_t wake; /* posted by swaps, SIGHUP and stop */
	pthread_mutex_t queue_lock;
	struct job *queue, **queue_tail;
	atomic_int pending_stores; /* a bound: stores are only a shortcut */
	atomic_llong last_read;    /* monotonic ns of the last READ */
	atomic_bool stopping;
	atomic_bool hup;
};

/* The kernel's node id of a node is its address (see fs.c); fs.c turns ids
 * back into pointers, so they must not lose bits on the way. */
_Static_assert(sizeof(fuse_ino_t) >= sizeof(uintptr_t),
	       "fuse_ino_t too small to hold a node pointer");

static inline fuse_ino_t ino_of(const struct node *node)
{
	return (fuse_ino_t)(uintptr_t)node;
}

struct notify *notify_new(struct cache *cache)
{
	struct notify *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->cache = cache;
	pthread_mutex_init(&n->queue_lock, NULL);
	sem_init(&n->wake, 0, 0);
	n->queue_tail = &n->queue;
	return n;
}

static void job_free(struct job *job)
{
	snapshot_unref(job->old);
	snapshot_unref(job->new);
	for (int f = 0; f < FIELD_COUNT; f++)
		node_unref(job->files[f]);
	free(job);
}

static void queue_job(struct notify *n, struct job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&n->queue_lock);
	*n->queue_tail = job;
	n->queue_tail = &job->next;
	pthread_mutex_unlock(&n->queue_lock);
	sem_post(&n->wake);
}

static struct job *next_job(struct notify *n)
{
	struct job *job;

	pthread_mutex_lock(&n->queue_lock);
	job = n->queue;
	if (job && !(n->queue = job->next))
		n->queue_tail = &n->queue;
	pthread_mutex_unlock(&n->queue_lock);
	return job;
}

void notify_free(struct notify *n)
{
	struct job *job;

	if (!n)
		return;
	notify_stop(n);
	while ((job = next_job(n)))
		job_free(job);
	sem_destroy(&n->wake);
	pthread_mutex_destroy(&n->queue_lock);
	free(n);
}

/* ---- page-cache pushes ------------------------------------------------- */

void notify_read(struct notify *n)
{
	atomic_store(&n->last_read, clock_monotonic_ns());
}

/*
 * Never from a request handler: a store waits for any page a pending READ
 * has locked, which only a worker can release, and at exit libfuse joins
 * its workers before the connection closes.  Only while something reads
 * files (grep -r, tar, rsync): a walk that only lists (find, ls -lR) would
 * fill the page cache for nothing.
 */
void notify_store_key(struct notify *n, const struct snap_key *key)
{
	struct job *job;

	if (clock_monotonic_ns() - atomic_load(&n->last_read) > STORE_AFTER_READ_NS || !n->se ||
	    atomic_load(&n->pending_stores) >= MAX_PENDING_STORES ||
	    !(job = calloc(1, sizeof(*job))))
		return;
	atomic_fetch_add(&n->pending_stores, 1);
	for (int f = 0; f < FIELD_COUNT; f++) {
		if (key->file[f]->size) {
			node_ref(key->file[f]);
			job->files[f] = key->file[f];
		}
	}
	queue_job(n, job);
}

/* The node is referenced by the job, so its address cannot have been
 * reused for another inode: at worst the kernel forgot it (-ENOENT). */
static void store_pages(struct notify *n, const struct node *node)
{
	struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(node->size);
	int rc;

	bufv.buf[0].mem = (void *)node->data;
	rc = fuse_lowlevel_notify_store(n->se, ino_of(node), 0, &bufv, 0);
	if (rc < 0 && rc != -ENOENT)
		log_debug("storing %s: %s", node->name, strerror(-rc));
}

/* ---- invalidation ------------------------------------------------------ */

void notify_swapped(struct notify *n, struct snapshot *old, struct snapshot *new)
{
	struct job *job = calloc(1, sizeof(*job));

	if (!job)
		return; /* entries still expire with the TTL */
	job->old = snapshot_ref(old);
	job->new = snapshot_ref(new);
	queue_job(n, job);
}

static void inval_entry(struct notify *n, fuse_ino_t parent, const char *name)
{
	int rc = fuse_lowlevel_notify_inval_entry(n->se, parent, name, strlen(name));

	if (rc < 0 && rc != -ENOENT)
		log_debug("invalidating %s: %s", name, strerror(-rc));
}

/* Both snapshots are in inode order, so one merge pairs each key with its
 * previous version.  A key on one side only (or whose number moved) has
 * its root entry dropped: a vanished one goes, a new one loses any cached
 * "no such entry", a moved one is looked up again. */
static void push_changes(struct notify *n, const struct snapshot *old, const struct snapshot *new)
{
	size_t i = 0, j = 0;

	while (i < old->count || j < new->count) {
		const struct snap_key *was = i < old->count ? &old->keys[i] : NULL;
		const struct snap_key *now = j < new->count ? &new->keys[j] : NULL;

		if (was && now && was->dir->ino == now->dir->ino &&
		    strcmp(was->dir->name, now->dir->name) == 0) {
			if (now->dir != was->dir) {
				inval_entry(n, FUSE_ROOT_ID, now->dir->name);
			} else {
				for (int f = 0; f < FIELD_COUNT; f++)
					if (now->file[f] != was->file[f])
						inval_entry(n, ino_of(now->dir),
							    key_field_names[f]);
			}
			i++;
			j++;
		} else if (was && (!now || was->dir->ino <= now->dir->ino)) {
			inval_entry(n, FUSE_ROOT_ID, was->dir->name);
			i++;
		} else {
			inval_entry(n, FUSE_ROOT_ID, now->dir->name);
			j++;
		}
	}
	if (old->count != new->count || old->mtime.tv_sec != new->mtime.tv_sec ||
	    old->mtime.tv_nsec != new->mtime.tv_nsec)
		fuse_lowlevel_notify_inval_inode(n->se, FUSE_ROOT_ID, 0, 0);
}

/* ---- the thread -------------------------------------------------------- */

static void *notify_main(void *arg)
{
	struct notify *n = arg;

	for (;;) {
		struct job *job;

		while (sem_wait(&n->wake) < 0 && errno == EINTR)
			;
		if (atomic_load(&n->stopping))
			break;
		if (atomic_exchange(&n->hup, false)) {
			/* SIGHUP: refresh now, so the kernel hears of changes
			 * without waiting for its entries to expire.  A fetch
			 * already under way when the signal came may have
			 * started before the change: then fetch again. */
			log_info("SIGHUP: refreshing the key list");
			for (int i = 0; i < 3; i++) {
				snapshot_unref(cache_get(n->cache, NULL));
				if (!cache_refresh_requested(n->cache))
					break;
			}
		}
		/* Once stopping, the session's fd may be closed: no more
		 * notifications, only the references to drop. */
		while ((job = next_job(n)) && !atomic_load(&n->stopping)) {
			if (job->old) {
				push_changes(n, job->old, job->new);
			} else {
				for (int f = 0; f < FIELD_COUNT; f++)
					if (job->files[f])
						store_pages(n, job->files[f]);
				atomic_fetch_sub(&n->pending_stores, 1);
			}
			job_free(job);
		}
		if (job)
			job_free(job);
	}
	return NULL;
}

int notify_start(struct notify *n, struct fuse_session *se)
{
	int rc;

	n->se = se;
	rc = pthread_create(&n->thread, NULL, notify_main, n);
	if (rc)
		return -rc;
	n->running = true;
	return 0;
}

void notify_stop(struct notify *n)
{
	atomic_store(&n->stopping, true);
	if (!n->running)
		return;
	sem_post(&n->wake);
	pthread_join(n->thread, NULL);
	n->running = false;
}

void notify_stopping(struct notify *n)
{
	atomic_store(&n->stopping, true);
	sem_post(&n->wake);
}

void notify_request_refresh(struct notify *n)
{
	cache_request_refresh(n->cache);
	atomic_store(&n->hup, true);
	sem_post(&n->wake);
}
