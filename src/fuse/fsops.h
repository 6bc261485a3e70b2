/* fsops: what fs.c's operations share with the ones in fsxattr.c (the
 * status and key xattrs) and fschange.c (rmdir revoking, every other change
 * refused): the filesystem's state, node ids, and the handlers themselves.
 * Private to the fuse layer. */
#ifndef OMIKEYFS_FSOPS_H
#define OMIKEYFS_FSOPS_H

#include <pthread.h>
#include <stdint.h>
#include <sys/types.h>

#include "fs.h"

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

void okfs_getxattr(fuse_req_t req, fuse_ino_t ino, const char *name, size_t size);
void okfs_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size);

void okfs_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name);
void okfs_access(fuse_req_t req, fuse_ino_t ino, int mask);
void okfs_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
		  struct fuse_file_info *fi);
void okfs_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev);
void okfs_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode);
void okfs_unlink(fuse_req_t req, fuse_ino_t parent, const char *name);
void okfs_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name);
void okfs_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
		 const char *newname, unsigned int flags);
void okfs_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname);
void okfs_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		struct fuse_file_info *fi);
void okfs_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
		 struct fuse_file_info *fi);
void okfs_setxattr(fuse_req_t req, fuse_ino_t ino, const char *name, const char *value, size_t size,
		   int flags);
void okfs_removexattr(fuse_req_t req, fuse_ino_t ino, const char *name);
void okfs_fallocate(fuse_req_t req, fuse_ino_t ino, int mode, off_t offset, off_t length,
		    struct fuse_file_info *fi);

#endif
