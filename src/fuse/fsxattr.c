/* fsxattr: the status xattrs of the mount root (fetched_at, stale,
 * last_error, pid) and the key directories' id and legacy flag. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "fsops.h"

#define XATTR_FETCHED_AT "user.omikeyfs.fetched_at"
#define XATTR_STALE "user.omikeyfs.stale"
#define XATTR_LAST_ERROR "user.omikeyfs.last_error"
#define XATTR_PID "user.omikeyfs.pid"
#define XATTR_ID "user.omikeyfs.id"
#define XATTR_LEGACY "user.omikeyfs.legacy"

static const char root_xattrs[] =
	XATTR_FETCHED_AT "\0" XATTR_STALE "\0" XATTR_LAST_ERROR "\0" XATTR_PID;
static const char dir_xattrs[] = XATTR_ID "\0" XATTR_LEGACY;

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

void okfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size)
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

void okfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
	if (ino == FUSE_ROOT_ID)
		reply_xattr_value(req, root_xattrs, sizeof(root_xattrs), size);
	else if (node_of(ino)->type == NODE_DIR)
		reply_xattr_value(req, dir_xattrs, sizeof(dir_xattrs), size);
	else
		reply_xattr_value(req, "", 0, size);
}
