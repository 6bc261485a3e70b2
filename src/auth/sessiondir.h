/* sessiondir: the session file's directory, opened and held to the rules
 * of cache_dir, and its lock (flock), for session.c. */
#ifndef OMIKEYFS_SESSIONDIR_H
#define OMIKEYFS_SESSIONDIR_H

#include <stddef.h>

/* The directory part of path ("." when there is none) and the name in it. */
struct sessiondir {
	const char *path;
	char *dir;
	const char *base;
	int dirfd;
	int lockfd; /* the directory locked (flock), or -1 */
};

/* Split path into w (dir "." when it has no slash); -EISDIR when it names
 * no file, -ENOMEM.  w must be closed either way. */
int sessiondir_split(struct sessiondir *w, const char *path, char *err, size_t errlen);

/*
 * Open the directory and hold it to the rules of cache_dir: the directory
 * itself (never a symbolic link to one), the caller's, and closed to group
 * and others, so no other user can swap, plant or read what is in it.
 * -ENOENT when it is missing; -ENOTDIR; -EPERM for every refusal.
 */
int sessiondir_open(struct sessiondir *w, char *err, size_t errlen);

/* Take the directory's lock, waiting at most SESSION_LOCK_WAIT_MS
 * (-EAGAIN after that); dropped by sessiondir_close. */
int sessiondir_lock(struct sessiondir *w, char *err, size_t errlen);

/* Close what is open, drop the lock, free. */
void sessiondir_close(struct sessiondir *w);

#endif
