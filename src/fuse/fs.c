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

#include "fs.h"
#include "fsops.h"
#include "notify.h"

/* Nodes never change, so the kernel may keep their attributes for good. */
#define NODE_ATTR_TIMEOUT 86400.0

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
