/*
 * fs: the FUSE low-level operations of omikeyfs.
 *
 *   $ OMI_API_KEY=... omikeyfs /mnt/keys
 *   $ ls /mnt/keys
 *   0b6e3c52-8f4d-4a8e-9d7a-3f1c2b5e6a70  7d1f0a9e-2c44-4d71-b0a3-5e9c1f2d8b64
 *   $ cat /mnt/keys/0b6e3c52-8f4d-4a8e-9d7a-3f1c2b5e6a70/scopes
 *   memories:read
 *   memories:write
 *
 * The node ids the kernel holds are pointers to immutable nodes (see
 * snapshot.h).  A refresh that changes a file makes a new node under the
 * same name; the kernel's old inode keeps its own bytes and size, so a read
 * is never torn and a cached size never disagrees with the bytes it covers.
 * That is what lets the kernel cache everything: files have no open, their
 * attributes never expire, and entries expire when the TTL runs out, which
 * is what brings the next walk back here to refresh.  A refresh made before
 * that (SIGHUP) is pushed to the kernel by a notifier thread: invalidations
 * must never be sent from inside a request handler, as they can deadlock.
 */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "fs.h"
#include "log.h"

/* Nodes never change, so the kernel may keep their attributes for good. */
#define NODE_ATTR_TIMEOUT 86400.0

#define XATTR_FETCHED_AT "user.omikeyfs.fetched_at"
#define XATTR_STALE "user.omikeyfs.stale"
#define XATTR_LAST_ERROR "user.omikeyfs.last_error"
#define XATTR_PID "user.omikeyfs.pid"
#define XATTR_ID "user.omikeyfs.id"

static const char root_xattrs[] =
	XATTR_FETCHED_AT "\0" XATTR_STALE "\0" XATTR_LAST_ERROR "\0" XATTR_PID;

/* Work for the notifier thread: what a refresh changed (old -> new), or the
 * files of a key directory just listed, whose bytes it pushes into the
 * kernel's page cache so that reading them costs no round trip. */
struct job {
	struct snapshot *old, *new;  /* a swap, or NULL */
	struct node *files[FIELD_COUNT]; /* to store, referenced, or NULL */
	struct job *next;
};

struct fs {
	struct cache *cache;
	uid_t uid;
	gid_t gid;

	pthread_mutex_t lock; /* kernel_refs and the list of known nodes */
	struct node *known;

	struct fuse_session *se;
	pthread_t notifier;
	bool notifier_running;
	sem_t wake;              /* posted by swaps, SIGHUP and stop */
	pthread_mutex_t queue_lock;
	struct job *queue, **queue_tail;
	atomic_int pending_stores; /* a bound: stores are only a shortcut */
	atomic_llong last_read;    /* coarse monotonic ns of the last READ */
	atomic_bool stopping;
	atomic_bool hup;
};

/* Past this many queued store jobs, listings stop queueing more. */
#define MAX_PENDING_STORES 4096
/* Listings push file bytes for this long after the last READ. */
#define STORE_AFTER_READ_NS 1000000000LL

struct fs *fs_new(struct cache *cache)
{
	struct fs *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return NULL;
	fs->cache = cache;
	fs->uid = getuid();
	fs->gid = getgid();
	pthread_mutex_init(&fs->lock, NULL);
	pthread_mutex_init(&fs->queue_lock, NULL);
	sem_init(&fs->wake, 0, 0);
	fs->queue_tail = &fs->queue;
	return fs;
}

static void job_free(struct job *job)
{
	snapshot_unref(job->old);
	snapshot_unref(job->new);
	for (int f = 0; f < FIELD_COUNT; f++)
		node_unref(job->files[f]);
	free(job);
}

static void queue_job(struct fs *fs, struct job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&fs->queue_lock);
	*fs->queue_tail = job;
	fs->queue_tail = &job->next;
	pthread_mutex_unlock(&fs->queue_lock);
	sem_post(&fs->wake);
}

static struct job *next_job(struct fs *fs)
{
	struct job *job;

	pthread_mutex_lock(&fs->queue_lock);
	job = fs->queue;
	if (job && !(fs->queue = job->next))
		fs->queue_tail = &fs->queue;
	pthread_mutex_unlock(&fs->queue_lock);
	return job;
}

static void drain_queue(struct fs *fs)
{
	struct job *job;

	while ((job = next_job(fs)))
		job_free(job);
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	fs_stop_notifier(fs);
	drain_queue(fs);
	/* The kernel does not forget every node at unmount. */
	while (fs->known) {
		struct node *node = fs->known;

		fs->known = node->kernel_next;
		node_unref(node);
	}
	sem_destroy(&fs->wake);
	pthread_mutex_destroy(&fs->queue_lock);
	pthread_mutex_destroy(&fs->lock);
	free(fs);
}

/* ---- nodes the kernel knows ------------------------------------------- */

static void kernel_ref(struct fs *fs, struct node *node)
{
	pthread_mutex_lock(&fs->lock);
	if (node->kernel_refs++ == 0) {
		node_ref(node);
		node->kernel_prev = NULL;
		node->kernel_next = fs->known;
		if (fs->known)
			fs->known->kernel_prev = node;
		fs->known = node;
	}
	pthread_mutex_unlock(&fs->lock);
}

static void kernel_forget(struct fs *fs, struct node *node, uint64_t nlookup)
{
	bool gone = false;

	pthread_mutex_lock(&fs->lock);
	if (node->kernel_refs <= nlookup) {
		node->kernel_refs = 0;
		if (node->kernel_prev)
			node->kernel_prev->kernel_next = node->kernel_next;
		else
			fs->known = node->kernel_next;
		if (node->kernel_next)
			node->kernel_next->kernel_prev = node->kernel_prev;
		gone = true;
	} else {
		node->kernel_refs -= nlookup;
	}
	pthread_mutex_unlock(&fs->lock);
	if (gone)
		node_unref(node);
}

static inline struct node *node_of(fuse_ino_t ino)
{
	return (struct node *)(uintptr_t)ino;
}

static inline fuse_ino_t ino_of(const struct node *node)
{
	return (fuse_ino_t)(uintptr_t)node;
}

/* ---- attributes -------------------------------------------------------- */

static void node_attr(const struct fs *fs, const struct node *node, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = node->ino;
	if (node->type == NODE_DIR) {
		st->st_mode = S_IFDIR | 0555;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | 0444;
		st->st_nlink = 1;
	}
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)node->size;
	st->st_blksize = 4096;
	st->st_blocks = (blkcnt_t)((node->size + 511) / 512);
	st->st_atim = st->st_mtim = st->st_ctim = node->mtime;
}

static void root_attr(const struct fs *fs, const struct snapshot *snap, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = SNAPSHOT_ROOT_INO;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2 + snap->count;
	st->st_uid = fs->uid;
	st->st_gid = fs->gid;
	st->st_size = (off_t)snap->count;
	st->st_blksize = 4096;
	st->st_atim = st->st_mtim = st->st_ctim = snap->mtime;
}

static void fill_entry(struct fs *fs, struct fuse_entry_param *e, const struct node *node,
		       double entry_timeout)
{
	memset(e, 0, sizeof(*e));
	e->ino = ino_of(node);
	e->generation = 1;
	node_attr(fs, node, &e->attr);
	e->attr_timeout = NODE_ATTR_TIMEOUT;
	e->entry_timeout = entry_timeout;
}

/* ---- operations ---------------------------------------------------------- */

static void okfs_init(void *userdata, struct fuse_conn_info *conn)
{
	/* Every file is read whole from memory: no open, no opendir, and
	 * readdirplus always, so a walk is one round trip per directory. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT)
		conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
	if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT)
		conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
	if (conn->capable & FUSE_CAP_AUTO_INVAL_DATA)
		conn->want |= FUSE_CAP_AUTO_INVAL_DATA;
	if (conn->capable & FUSE_CAP_PARALLEL_DIROPS)
		conn->want |= FUSE_CAP_PARALLEL_DIROPS;
}

static void okfs_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	double valid;
	struct snapshot *snap = cache_get(fs->cache, &valid);
	const struct snap_key *key;
	const struct node *dir = parent == FUSE_ROOT_ID ? NULL : node_of(parent);
	struct node *found = NULL;
	struct fuse_entry_param e;

	if (!snap) {
		fuse_reply_err(req, EIO);
		return;
	}
	if (!dir) {
		key = snapshot_find(snap, name);
		found = key ? key->dir : NULL;
	} else if (dir->type == NODE_DIR) {
		int field = field_by_name(name);

		key = snapshot_find(snap, dir->name);
		found = key && field >= 0 ? key->file[field] : NULL;
	}
	if (found) {
		fill_entry(fs, &e, found, valid);
		kernel_ref(fs, found);
		if (fuse_reply_entry(req, &e) != 0)
			kernel_forget(fs, found, 1);
	} else if (dir && dir->type != NODE_DIR) {
		fuse_reply_err(req, ENOTDIR);
	} else {
		/* A negative entry, cached until the next refresh. */
		memset(&e, 0, sizeof(e));
		e.entry_timeout = valid;
		fuse_reply_entry(req, &e);
	}
	snapshot_unref(snap);
}

static void okfs_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
	struct fs *fs = fuse_req_userdata(req);

	if (ino != FUSE_ROOT_ID)
		kernel_forget(fs, node_of(ino), nlookup);
	fuse_reply_none(req);
}

static void okfs_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
	struct fs *fs = fuse_req_userdata(req);

	for (size_t i = 0; i < count; i++)
		if (forgets[i].ino != FUSE_ROOT_ID)
			kernel_forget(fs, node_of(forgets[i].ino), forgets[i].nlookup);
	fuse_reply_none(req);
}

static void okfs_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	struct stat st;

	if (ino != FUSE_ROOT_ID) {
		node_attr(fs, node_of(ino), &st);
		fuse_reply_attr(req, &st, NODE_ATTR_TIMEOUT);
		return;
	}
	double valid;
	struct snapshot *snap = cache_get(fs->cache, &valid);

	if (!snap) {
		fuse_reply_err(req, EIO);
		return;
	}
	root_attr(fs, snap, &st);
	fuse_reply_attr(req, &st, valid);
	snapshot_unref(snap);
}

/* A directory listing being built, and the nodes it gives the kernel. */
struct listing {
	char *buf;
	size_t size, used;
	struct node **refs;
	size_t nrefs;
};

/* Adds one entry; returns false when the buffer is full. */
static bool add_entry(fuse_req_t req, struct fs *fs, struct listing *out, bool plus,
		      const char *name, const struct node *node, const struct stat *st,
		      off_t next, double valid)
{
	char *at = out->buf + out->used;
	size_t room = out->size - out->used, len;

	if (plus) {
		struct fuse_entry_param e;

		if (node) {
			fill_entry(fs, &e, node, valid);
		} else { /* "." and "..": the kernel takes no reference */
			memset(&e, 0, sizeof(e));
			e.attr = *st;
		}
		len = fuse_add_direntry_plus(req, at, room, name, &e, next);
	} else {
		struct stat only = { 0 };

		if (node) {
			only.st_ino = node->ino;
			only.st_mode = node->type == NODE_DIR ? S_IFDIR : S_IFREG;
			st = &only;
		}
		len = fuse_add_direntry(req, at, room, name, st, next);
	}
	if (len > room)
		return false;
	if (plus && node) {
		kernel_ref(fs, (struct node *)node);
		out->refs[out->nrefs++] = (struct node *)node;
	}
	out->used += len;
	return true;
}

static long long coarse_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC_COARSE, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/*
 * Has the notifier push a key's file bytes into the page cache, so that a
 * reader going on to read them finds them cached.  Never from a request
 * handler: a store waits for any page a pending READ has locked, which
 * only a worker can release, and at exit libfuse joins its workers before
 * the connection closes.  Only while something reads files (grep -r, tar,
 * rsync): a walk that only lists (find, ls -lR) would fill the page cache
 * for nothing.  Queued stores are bounded: they are only a shortcut.
 */
static void store_key(struct fs *fs, const struct snap_key *key)
{
	struct job *job;

	if (coarse_ns() - atomic_load(&fs->last_read) > STORE_AFTER_READ_NS || !fs->se ||
	    atomic_load(&fs->pending_stores) >= MAX_PENDING_STORES ||
	    !(job = calloc(1, sizeof(*job))))
		return;
	atomic_fetch_add(&fs->pending_stores, 1);
	for (int f = 0; f < FIELD_COUNT; f++) {
		if (key->file[f]->size) {
			node_ref(key->file[f]);
			job->files[f] = key->file[f];
		}
	}
	queue_job(fs, job);
}

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct fs *fs = fuse_req_userdata(req);
	double valid;
	struct snapshot *snap = cache_get(fs->cache, &valid);
	const struct node *dir = ino == FUSE_ROOT_ID ? NULL : node_of(ino);
	struct stat dot = { .st_mode = S_IFDIR }, dotdot = { .st_ino = SNAPSHOT_ROOT_INO, .st_mode = S_IFDIR };
	struct listing out = { .size = size };

	if (!snap) {
		fuse_reply_err(req, EIO);
		return;
	}
	if (dir && dir->type != NODE_DIR) {
		fuse_reply_err(req, ENOTDIR);
		snapshot_unref(snap);
		return;
	}
	/* A readdirplus entry is at least this big, which bounds how many
	 * nodes one reply can hand the kernel. */
	out.buf = malloc(size);
	out.refs = plus ? malloc((size / 64 + 1) * sizeof(*out.refs)) : NULL;
	if (!out.buf || (plus && !out.refs)) {
		fuse_reply_err(req, ENOMEM);
		goto out;
	}
	dot.st_ino = dir ? dir->ino : SNAPSHOT_ROOT_INO;
	/* Offsets: "." 1, ".." 2, then a key directory's inode number (root)
	 * or 3 + field (key directory), so a listing resumed after a refresh
	 * neither repeats nor skips a key that is in both lists.  Any other
	 * offset (lseek can ask for anything) resumes at the next of these. */
	if (off < 1 && !add_entry(req, fs, &out, plus, ".", NULL, &dot, 1, valid))
		goto reply;
	if (off < 2 && !add_entry(req, fs, &out, plus, "..", NULL, &dotdot, 2, valid))
		goto reply;
	if (!dir) {
		for (size_t i = snapshot_seek(snap, off < 0 ? 0 : (uint64_t)off); i < snap->count; i++) {
			const struct node *node = snap->keys[i].dir;

			if (!add_entry(req, fs, &out, plus, node->name, node, NULL,
				       (off_t)node->ino, valid))
				break;
		}
	} else {
		const struct snap_key *key = snapshot_find(snap, dir->name);
		size_t first = off <= 2 ? 0
			       : (uint64_t)off - 2 >= FIELD_COUNT ? FIELD_COUNT
								   : (size_t)(off - 2);

		for (size_t f = first; key && f < FIELD_COUNT; f++) {
			const struct node *node = key->file[f];

			if (!add_entry(req, fs, &out, plus, node->name, node, NULL,
				       (off_t)(3 + f), valid))
				break;
		}
		/* The call that finds the end comes after the kernel took in
		 * the entries, so it knows the inodes the files' bytes go to. */
		if (plus && key && first == FIELD_COUNT)
			store_key(fs, key);
	}
reply:
	/* A reply that never reached the kernel gave it no references. */
	if (fuse_reply_buf(req, out.buf, out.used) != 0)
		for (size_t i = 0; i < out.nrefs; i++)
			kernel_forget(fs, out.refs[i], 1);
out:
	free(out.buf);
	free(out.refs);
	snapshot_unref(snap);
}

static void okfs_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			 struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, false);
}

static void okfs_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			     struct fuse_file_info *fi)
{
	do_readdir(req, ino, size, off, true);
}

/* No open and no opendir: the kernel then stops asking (FUSE_CAP_NO_OPEN_
 * SUPPORT) and keeps pages and listings cached across opens.  Writers never
 * get here: the mount is read-only. */
static void okfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC))
		fuse_reply_err(req, EROFS);
	else if (ino == FUSE_ROOT_ID || node_of(ino)->type == NODE_DIR)
		fuse_reply_err(req, EISDIR);
	else
		fuse_reply_err(req, ENOSYS);
}

static void okfs_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FUSE_ROOT_ID && node_of(ino)->type != NODE_DIR)
		fuse_reply_err(req, ENOTDIR);
	else
		fuse_reply_err(req, ENOSYS);
}

static void okfs_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);
	const struct node *node = node_of(ino);

	atomic_store(&fs->last_read, coarse_ns());
	if (ino == FUSE_ROOT_ID || node->type != NODE_FILE) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (off < 0 || (size_t)off >= node->size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	if (size > node->size - (size_t)off)
		size = node->size - (size_t)off;
	fuse_reply_buf(req, node->data + off, size);
}

static void okfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	struct snapshot *snap = cache_get(fs->cache, NULL);
	struct statvfs sv = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = KEYNAME_MAX };

	if (snap) {
		fsblkcnt_t blocks = 0;

		for (size_t i = 0; i < snap->count; i++)
			for (int f = 0; f < FIELD_COUNT; f++)
				blocks += (snap->keys[i].file[f]->size + 4095) / 4096;
		sv.f_blocks = blocks;
		sv.f_files = 1 + snap->count * (1 + FIELD_COUNT);
		snapshot_unref(snap);
	}
	fuse_reply_statfs(req, &sv);
}

/* ---- extended attributes ------------------------------------------------- */

static void reply_xattr_value(fuse_req_t req, const char *value, size_t len, size_t size)
{
	if (size == 0)
		fuse_reply_xattr(req, len);
	else if (size < len)
		fuse_reply_err(req, ERANGE);
	else
		fuse_reply_buf(req, value, len);
}

static void okfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
{
	struct fs *fs = fuse_req_userdata(req);
	char value[600];
	int len = -1;

	/* Only user.* attributes exist here.  ENOTSUP for the rest (SELinux
	 * labels, POSIX ACLs) lets ls -l note that this filesystem has none,
	 * instead of asking twice for every file it lists. */
	if (strncmp(name, "user.", 5) != 0) {
		fuse_reply_err(req, ENOTSUP);
		return;
	}
	if (ino != FUSE_ROOT_ID) {
		const struct node *node = node_of(ino);

		if (node->type == NODE_DIR && strcmp(name, XATTR_ID) == 0)
			reply_xattr_value(req, node->id, node->id_len, size);
		else
			fuse_reply_err(req, ENODATA);
		return;
	}

	/* Status as of now: an expired list is refreshed (or the backoff
	 * consulted) first, as any other operation would. */
	struct snapshot *snap = cache_get(fs->cache, NULL);
	struct cache_status status;

	snapshot_unref(snap);
	cache_status(fs->cache, &status);
	if (strcmp(name, XATTR_FETCHED_AT) == 0) {
		struct tm tm;

		gmtime_r(&status.fetched_at.tv_sec, &tm);
		len = (int)strftime(value, sizeof(value), "%Y-%m-%dT%H:%M:%SZ", &tm);
	} else if (strcmp(name, XATTR_STALE) == 0) {
		len = snprintf(value, sizeof(value), "%d", status.stale ? 1 : 0);
	} else if (strcmp(name, XATTR_LAST_ERROR) == 0) {
		len = snprintf(value, sizeof(value), "%s", status.last_error);
	} else if (strcmp(name, XATTR_PID) == 0) {
		len = snprintf(value, sizeof(value), "%ld", (long)getpid());
	}
	if (len < 0)
		fuse_reply_err(req, ENODATA);
	else
		reply_xattr_value(req, value, (size_t)len, size);
}

static void okfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	if (ino == FUSE_ROOT_ID)
		reply_xattr_value(req, root_xattrs, sizeof(root_xattrs), size);
	else if (node_of(ino)->type == NODE_DIR)
		reply_xattr_value(req, XATTR_ID, sizeof(XATTR_ID), size);
	else
		reply_xattr_value(req, "", 0, size);
}

/* No write operations: the mount is always ro, so the kernel refuses every
 * write, create, remove, rename, chmod and xattr change with EROFS before it
 * gets here. */
static const struct fuse_lowlevel_ops okfs_ops = {
	.init = okfs_init,
	.lookup = okfs_lookup,
	.forget = okfs_forget,
	.forget_multi = okfs_forget_multi,
	.getattr = okfs_getattr,
	.open = okfs_open,
	.read = okfs_read,
	.opendir = okfs_opendir,
	.readdir = okfs_readdir,
	.readdirplus = okfs_readdirplus,
	.statfs = okfs_statfs,
	.getxattr = okfs_getxattr,
	.listxattr = okfs_listxattr,
};

const struct fuse_lowlevel_ops *fs_ops(void)
{
	return &okfs_ops;
}

/* ---- telling the kernel what a refresh changed ----------------------------- */

void fs_snapshot_swapped(void *ctx, struct snapshot *old, struct snapshot *new)
{
	struct fs *fs = ctx;
	struct job *job = calloc(1, sizeof(*job));

	if (!job)
		return; /* entries still expire with the TTL */
	job->old = snapshot_ref(old);
	job->new = snapshot_ref(new);
	queue_job(fs, job);
}

/* The node is referenced by the job, so its address cannot have been
 * reused for another inode: at worst the kernel forgot it (-ENOENT). */
static void store_pages(struct fs *fs, const struct node *node)
{
	struct fuse_bufvec bufv = FUSE_BUFVEC_INIT(node->size);
	int rc;

	bufv.buf[0].mem = (void *)node->data;
	rc = fuse_lowlevel_notify_store(fs->se, ino_of(node), 0, &bufv, 0);
	if (rc < 0 && rc != -ENOENT)
		log_debug("storing %s: %s", node->name, strerror(-rc));
}

static void inval_entry(struct fs *fs, fuse_ino_t parent, const char *name)
{
	int rc = fuse_lowlevel_notify_inval_entry(fs->se, parent, name, strlen(name));

	if (rc < 0 && rc != -ENOENT)
		log_debug("invalidating %s: %s", name, strerror(-rc));
}

/* Both snapshots are in inode order, so one merge pairs each key with its
 * previous version.  A key on one side only (or whose number moved) has
 * its root entry dropped: a vanished one goes, a new one loses any cached
 * "no such entry", a moved one is looked up again. */
static void push_changes(struct fs *fs, const struct snapshot *old, const struct snapshot *new)
{
	size_t i = 0, j = 0;

	while (i < old->count || j < new->count) {
		const struct snap_key *was = i < old->count ? &old->keys[i] : NULL;
		const struct snap_key *now = j < new->count ? &new->keys[j] : NULL;

		if (was && now && was->dir->ino == now->dir->ino &&
		    strcmp(was->dir->name, now->dir->name) == 0) {
			if (now->dir != was->dir) {
				inval_entry(fs, FUSE_ROOT_ID, now->dir->name);
			} else {
				for (int f = 0; f < FIELD_COUNT; f++)
					if (now->file[f] != was->file[f])
						inval_entry(fs, ino_of(now->dir), key_field_names[f]);
			}
			i++;
			j++;
		} else if (was && (!now || was->dir->ino <= now->dir->ino)) {
			inval_entry(fs, FUSE_ROOT_ID, was->dir->name);
			i++;
		} else {
			inval_entry(fs, FUSE_ROOT_ID, now->dir->name);
			j++;
		}
	}
	if (old->count != new->count || old->mtime.tv_sec != new->mtime.tv_sec ||
	    old->mtime.tv_nsec != new->mtime.tv_nsec)
		fuse_lowlevel_notify_inval_inode(fs->se, FUSE_ROOT_ID, 0, 0);
}

static void *notifier_main(void *arg)
{
	struct fs *fs = arg;

	for (;;) {
		struct job *job;

		while (sem_wait(&fs->wake) < 0 && errno == EINTR)
			;
		if (atomic_load(&fs->stopping))
			break;
		if (atomic_exchange(&fs->hup, false)) {
			/* SIGHUP: refresh now, so the kernel hears of changes
			 * without waiting for its entries to expire.  A fetch
			 * already under way when the signal came may have
			 * started before the change: then fetch again. */
			log_info("SIGHUP: refreshing the key list");
			for (int i = 0; i < 3; i++) {
				snapshot_unref(cache_get(fs->cache, NULL));
				if (!cache_refresh_requested(fs->cache))
					break;
			}
		}
		/* Once stopping, the session's fd may be closed: no more
		 * notifications, only the references to drop. */
		while ((job = next_job(fs)) && !atomic_load(&fs->stopping)) {
			if (job->old) {
				push_changes(fs, job->old, job->new);
			} else {
				for (int f = 0; f < FIELD_COUNT; f++)
					if (job->files[f])
						store_pages(fs, job->files[f]);
				atomic_fetch_sub(&fs->pending_stores, 1);
			}
			job_free(job);
		}
		if (job)
			job_free(job);
	}
	return NULL;
}

int fs_start_notifier(struct fs *fs, struct fuse_session *se)
{
	int rc;

	fs->se = se;
	rc = pthread_create(&fs->notifier, NULL, notifier_main, fs);
	if (rc)
		return -rc;
	fs->notifier_running = true;
	return 0;
}

void fs_stop_notifier(struct fs *fs)
{
	atomic_store(&fs->stopping, true);
	if (!fs->notifier_running)
		return;
	sem_post(&fs->wake);
	pthread_join(fs->notifier, NULL);
	fs->notifier_running = false;
}

void fs_notifier_stopping(struct fs *fs)
{
	atomic_store(&fs->stopping, true);
	sem_post(&fs->wake);
}

void fs_request_refresh(struct fs *fs)
{
	cache_request_refresh(fs->cache);
	atomic_store(&fs->hup, true);
	sem_post(&fs->wake);
}
