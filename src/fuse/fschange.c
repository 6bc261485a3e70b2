/* fschange: every change to the tree.  rmdir of a key directory revokes
 * the key on an allow_revoke mount; everything else fails with EROFS, as
 * the kernel itself answers on a read-only mount. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "errmsg.h"
#include "fsops.h"
#include "log.h"
#include "text.h"

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
void okfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
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
void okfs_access(fuse_req_t req, fuse_ino_t ino, int mask)
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

void okfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		  struct fuse_file_info *fi)
{
	refuse(req);
}

void okfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
	refuse(req);
}

void okfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
	refuse(req);
}

void okfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	refuse(req);
}

void okfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
	refuse(req);
}

void okfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		 const char *newname, unsigned int flags)
{
	refuse(req);
}

void okfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
	refuse(req);
}

void okfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		struct fuse_file_info *fi)
{
	refuse(req);
}

void okfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		 struct fuse_file_info *fi)
{
	refuse(req);
}

void okfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		   int flags)
{
	refuse(req);
}

void okfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name)
{
	refuse(req);
}

void okfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		    struct fuse_file_info *fi)
{
	refuse(req);
}
