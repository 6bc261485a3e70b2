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
 * that (SIGHUP), and file bytes worth pushing into the page cache, go to the
 * kernel from notify.c's thread, never from a handler here.
 */
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errmsg.h"
#include "fs.h"
#include "log.h"
#include "notify.h"
#include "text.h"

/* Nodes never change, so the kernel may keep their attributes for good. */
#define NODE_ATTR_TIMEOUT 86400.0

#define XATTR_FETCHED_AT "user.omikeyfs.fetched_at"
#define XATTR_STALE "user.omikeyfs.stale"
#define XATTR_LAST_ERROR "user.omikeyfs.last_error"
#define XATTR_PID "user.omikeyfs.pid"
#define XATTR_ID "user.omikeyfs.id"
#define XATTR_LEGACY "user.omikeyfs.legacy"

static const char root_xattrs[] =
	XATTR_FETCHED_AT "\0" XATTR_STALE "\0" XATTR_LAST_ERROR "\0" XATTR_PID;
static const char dir_xattrs[] = XATTR_ID "\0" XATTR_LEGACY;

struct fs {
	struct cache *cache;
	struct notify *notify;
	uid_t uid;
	gid_t gid;
	mode_t dir_mode; /* 0555 and 0444 with the umask taken off */
	mode_t file_mode;
	mode_t root_mode; /* dir_mode, and the owner's w when keys can be revoked */

	/* -o allow_revoke: rmdir of a key directory revokes the key, for the
	 * mounting user only; one revoke at a time. */
	fs_revoke_fn *revoke;
	void *revoke_ctx;
	uid_t mounter;
	pthread_mutex_t revoke_lock;

	pthread_mutex_t lock; /* node->kernel of every node, and known */
	struct node *known;   /* the nodes the kernel holds */
};

struct fs *fs_new(struct cache *cache)
{
	struct fs *fs = calloc(1, sizeof(*fs));

	if (!fs)
		return NULL;
	fs->notify = notify_new(cache);
	if (!fs->notify) {
		free(fs);
		return NULL;
	}
	fs->cache = cache;
	fs->uid = getuid();
	fs->gid = getgid();
	fs->mounter = getuid();
	fs->dir_mode = fs->root_mode = 0555;
	fs->file_mode = 0444;
	pthread_mutex_init(&fs->lock, NULL);
	pthread_mutex_init(&fs->revoke_lock, NULL);
	return fs;
}

void fs_free(struct fs *fs)
{
	if (!fs)
		return;
	notify_free(fs->notify);
	/* The kernel does not forget every node at unmount. */
	while (fs->known) {
		struct node *node = fs->known;

		fs->known = node->kernel.next;
		node_unref(node);
	}
	pthread_mutex_destroy(&fs->lock);
	pthread_mutex_destroy(&fs->revoke_lock);
	free(fs);
}

void fs_set_owner(struct fs *fs, uid_t uid, gid_t gid, mode_t umask)
{
	if (uid != (uid_t)-1)
		fs->uid = uid;
	if (gid != (gid_t)-1)
		fs->gid = gid;
	fs->dir_mode = 0555 & ~umask;
	fs->file_mode = 0444 & ~umask;
	fs->root_mode = (fs->revoke ? 0755 : 0555) & ~umask;
}

void fs_set_revoke(struct fs *fs, fs_revoke_fn *revoke, void *ctx)
{
	fs->revoke = revoke;
	fs->revoke_ctx = ctx;
	/* Under default_permissions the kernel asks for w on the parent. */
	fs->root_mode = fs->dir_mode | 0200;
}

/* The notifier belongs to fs so that main wires one object. */
int fs_start_notifier(struct fs *fs, struct fuse_session *se)
{
	return notify_start(fs->notify, se);
}

void fs_stop_notifier(struct fs *fs)
{
	notify_stop(fs->notify);
}

void fs_notifier_stopping(struct fs *fs)
{
	notify_stopping(fs->notify);
}

void fs_request_refresh(struct fs *fs)
{
	notify_request_refresh(fs->notify);
}

void fs_snapshot_swapped(void *ctx, struct snapshot *old, struct snapshot *new)
{
	struct fs *fs = ctx;

	notify_swapped(fs->notify, old, new);
}

/* ---- nodes the kernel knows ------------------------------------------- */

static void kernel_ref(struct fs *fs, struct node *node)
{
	pthread_mutex_lock(&fs->lock);
	if (node->kernel.refs++ == 0) {
		node_ref(node);
		node->kernel.prev = NULL;
		node->kernel.next = fs->known;
		if (fs->known)
			fs->known->kernel.prev = node;
		fs->known = node;
	}
	pthread_mutex_unlock(&fs->lock);
}

static void kernel_forget(struct fs *fs, struct node *node, uint64_t nlookup)
{
	bool gone = false;

	pthread_mutex_lock(&fs->lock);
	if (node->kernel.refs <= nlookup) {
		node->kernel.refs = 0;
		if (node->kernel.prev)
			node->kernel.prev->kernel.next = node->kernel.next;
		else
			fs->known = node->kernel.next;
		if (node->kernel.next)
			node->kernel.next->kernel.prev = node->kernel.prev;
		gone = true;
	} else {
		node->kernel.refs -= nlookup;
	}
	pthread_mutex_unlock(&fs->lock);
	if (gone)
		node_unref(node);
}

/* The kernel's node id of a node is its address, as passthrough_ll does
 * with its inodes: no table to keep, and a node stays alive (kernel_ref)
 * while the kernel holds the id.  That needs an id as wide as a pointer. */
_Static_assert(sizeof(fuse_ino_t) >= sizeof(uintptr_t),
	       "fuse_ino_t too small to hold a node pointer");

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
		st->st_mode = S_IFDIR | fs->dir_mode;
		st->st_nlink = 2;
	} else {
		st->st_mode = S_IFREG | fs->file_mode;
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
	st->st_mode = S_IFDIR | fs->root_mode;
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
	struct fs *fs = userdata;

	/* Every file is read whole from memory: no open, no opendir, and
	 * readdirplus always, so a walk is one round trip per directory. */
	if (conn->capable & FUSE_CAP_READDIRPLUS)
		conn->want |= FUSE_CAP_READDIRPLUS;
	conn->want &= ~FUSE_CAP_READDIRPLUS_AUTO;
	/* Not with allow_revoke: the mount is rw then, and only an open the
	 * kernel sends can refuse writing (EROFS). */
	if ((conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) && !fs->revoke)
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
		      const char *name, const struct node *node, const struct stat *st, off_t next,
		      double valid)
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

static void do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, bool plus)
{
	struct fs *fs = fuse_req_userdata(req);
	double valid;
	struct snapshot *snap = cache_get(fs->cache, &valid);
	const struct node *dir = ino == FUSE_ROOT_ID ? NULL : node_of(ino);
	struct stat dot = { .st_mode = S_IFDIR },
		    dotdot = { .st_ino = SNAPSHOT_ROOT_INO, .st_mode = S_IFDIR };
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
		for (size_t i = snapshot_seek(snap, off < 0 ? 0 : (uint64_t)off); i < snap->count;
		     i++) {
			const struct node *node = snap->keys[i].dir;

			if (!add_entry(req, fs, &out, plus, node->name, node, NULL,
				       (off_t)node->ino, valid))
				break;
		}
	} else {
		const struct snap_key *key = snapshot_find(snap, dir->name);
		size_t first = off <= 2                           ? 0
			       : (uint64_t)off - 2 >= FIELD_COUNT ? FIELD_COUNT
								  : (size_t)(off - 2);

		for (size_t f = first; key && f < FIELD_COUNT; f++) {
			const struct node *node = key->file[f];

			if (!add_entry(req, fs, &out, plus, node->name, node, NULL, (off_t)(3 + f),
				       valid))
				break;
		}
		/* The call that finds the end comes after the kernel took in
		 * the entries, so it knows the inodes the files' bytes go to. */
		if (plus && key && first == FIELD_COUNT)
			notify_store_key(fs->notify, key);
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
 * get here on a read-only mount.  With allow_revoke the mount is rw, and an
 * open for writing must be refused here, so every open is answered: a
 * reader keeps the cache and sends no FLUSH. */
static void okfs_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct fs *fs = fuse_req_userdata(req);

	if ((fi->flags & O_ACCMODE) != O_RDONLY || (fi->flags & O_TRUNC)) {
		fuse_reply_err(req, EROFS);
	} else if (ino == FUSE_ROOT_ID || node_of(ino)->type == NODE_DIR) {
		fuse_reply_err(req, EISDIR);
	} else if (fs->revoke) {
		fi->keep_cache = 1;
		fi->noflush = 1;
		fuse_reply_open(req, fi);
	} else {
		fuse_reply_err(req, ENOSYS);
	}
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

	notify_read(fs->notify);
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

/* No blocks at all, as proc and sysfs: the tree takes no disk space, and
 * df leaves such filesystems out unless asked with -a. */
static void okfs_statfs(fuse_req_t req, fuse_ino_t ino)
{
	struct fs *fs = fuse_req_userdata(req);
	struct snapshot *snap = cache_get(fs->cache, NULL);
	struct statvfs sv = { .f_bsize = 4096, .f_frsize = 4096, .f_namemax = KEYNAME_MAX };

	if (snap) {
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
		else if (node->type == NODE_DIR && strcmp(name, XATTR_LEGACY) == 0)
			reply_xattr_value(req, node->legacy ? "1" : "0", 1, size);
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
		reply_xattr_value(req, dir_xattrs, sizeof(dir_xattrs), size);
	else
		reply_xattr_value(req, "", 0, size);
}

/* ---- revoking, and every other change refused ---------------------------- */

/* The key's id as a log line can show it (it may hold any byte). */
static const char *shown_id(const struct node *dir, char *buf, size_t len)
{
	text_sanitize(buf, len, dir->id, dir->id_len);
	return buf;
}

/* The key's name as its file holds it, without the newline. */
static const char *shown_name(const struct snap_key *key, char *buf, size_t len)
{
	const struct node *name = key->file[FIELD_NAME];
	size_t n = name->size && name->data[name->size - 1] == '\n' ? name->size - 1 : name->size;

	text_sanitize(buf, len, name->data, n);
	return buf;
}

/*
 * rmdir of a key directory: revoke the key (allow_revoke).  Only for the
 * mounting user; the API is asked once, and the answer awaited.  Revokes
 * are one at a time (the kernel also locks the root for each rmdir), so a
 * second rmdir of the key finds it gone (ENOENT) instead of asking again.
 * On success the key leaves the list served at once (cache_remove), and the
 * notifier tells the kernel, never this handler.  One log line per attempt.
 */
static void okfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fs *fs = fuse_req_userdata(req);
	uid_t caller = fuse_req_ctx(req)->uid;
	const struct snap_key *key;
	struct snapshot *snap;
	char id[160], kname[160], msg[512];
	int rc;

	if (!fs->revoke || parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, EROFS);
		return;
	}
	pthread_mutex_lock(&fs->revoke_lock);
	snap = cache_get(fs->cache, NULL);
	key = snap ? snapshot_find(snap, name) : NULL;
	if (!key) {
		log_warn("not revoking %.255s for uid %u: no such key in the list", name,
			 (unsigned)caller);
		rc = -ENOENT;
	} else if (caller != fs->mounter) {
		log_warn("not revoking key %s (name \"%s\") for uid %u: only the mounting user "
			 "(uid %u) may revoke",
			 shown_id(key->dir, id, sizeof(id)), shown_name(key, kname, sizeof(kname)),
			 (unsigned)caller, (unsigned)fs->mounter);
		rc = -EACCES;
	} else {
		rc = fs->revoke(fs->revoke_ctx, key->dir->id, key->dir->id_len, msg, sizeof(msg));
		shown_id(key->dir, id, sizeof(id));
		shown_name(key, kname, sizeof(kname));
		if (rc == 0) {
			/* -ENOENT: a refresh took it out first, which is as good. */
			int gone = cache_remove(fs->cache, name);

			log_info("revoked key %s (name \"%s\") for uid %u%s", id, kname,
				 (unsigned)caller,
				 gone == -ENOMEM ? "; out of memory: it stays listed until "
						   "the next refresh"
						 : "");
		} else {
			log_warn("revoking key %s (name \"%s\") for uid %u failed (%s): %s", id,
				 kname, (unsigned)caller, strerror(-rc), msg);
			/* An ended session is the mount's problem, not only this
			 * key's: shown where the status is. */
			if (rc == -EACCES) {
				char status[700];

				errmsg_set(status, sizeof(status), "revoking key %s: %s", id, msg);
				cache_note_error(fs->cache, status);
			}
		}
	}
	snapshot_unref(snap);
	pthread_mutex_unlock(&fs->revoke_lock);
	fuse_reply_err(req, -rc);
}

/*
 * access(2) and chdir without default_permissions.  On a read-only mount the
 * kernel answers W_OK itself, and ENOSYS tells it never to ask again; on an
 * allow_revoke mount (rw) only the root may change, by rmdir, and only for
 * the mounting user.
 */
static void okfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
{
	struct fs *fs = fuse_req_userdata(req);

	if (!fs->revoke)
		fuse_reply_err(req, ENOSYS);
	else if (!(mask & W_OK))
		fuse_reply_err(req, 0);
	else if (ino != FUSE_ROOT_ID)
		fuse_reply_err(req, EROFS);
	else
		fuse_reply_err(req, fuse_req_ctx(req)->uid == fs->mounter ? 0 : EACCES);
}

/* Every other change fails as on a read-only mount.  The kernel refuses
 * them itself when the mount is ro; these answer on an allow_revoke mount,
 * which is rw so that rmdir gets here (and on a /dev/fd/N mount made rw). */
static void refuse(fuse_req_t req)
{
	fuse_reply_err(req, EROFS);
}

static void okfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			 struct fuse_file_info *fi)
{
	refuse(req);
}

static void okfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	refuse(req);
}

static void okfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	refuse(req);
}

static void okfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	refuse(req);
}

static void okfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	refuse(req);
}

static void okfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
			const char *newname, unsigned int flags)
{
	refuse(req);
}

static void okfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	refuse(req);
}

static void okfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	refuse(req);
}

static void okfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
			struct fuse_file_info *fi)
{
	refuse(req);
}

static void okfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value,
			  size_t size, int flags)
{
	refuse(req);
}

static void okfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	refuse(req);
}

static void okfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
			   struct fuse_file_info *fi)
{
	refuse(req);
}

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
	.rmdir = okfs_rmdir,
	.access = okfs_access,
	.setattr = okfs_setattr,
	.mknod = okfs_mknod,
	.mkdir = okfs_mkdir,
	.unlink = okfs_unlink,
	.symlink = okfs_symlink,
	.rename = okfs_rename,
	.link = okfs_link,
	.write = okfs_write,
	.create = okfs_create,
	.setxattr = okfs_setxattr,
	.removexattr = okfs_removexattr,
	.fallocate = okfs_fallocate,
};

const struct fuse_lowlevel_ops *fs_ops(void)
{
	return &okfs_ops;
}
