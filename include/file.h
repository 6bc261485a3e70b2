/* file: the files omikeyfs keeps for the user (session, key file, kept
 * lists): opened only when private, written whole, replaced atomically. */
#ifndef OMIKEYFS_FILE_H
#define OMIKEYFS_FILE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

/* What file_open_private also asks of the file. */
enum {
	FILE_NOFOLLOW = 1 << 0,  /* a symbolic link is not followed (ELOOP) */
	FILE_DIRECTORY = 1 << 1, /* a directory is wanted, not a regular file */
	FILE_OWNED = 1 << 2,     /* owned by the effective uid */
};

/* Why an opened file was refused. */
enum file_refusal {
	FILE_OPEN_FAILED, /* open or fstat failed: see errno */
	FILE_WRONG_TYPE,  /* not a regular file (or not a directory) */
	FILE_NOT_OWNED,   /* FILE_OWNED, and another uid owns it */
	FILE_SHARED,      /* group or others have some access (mode & 077) */
};

/*
 * Opens path (relative to dirfd, or AT_FDCWD) read-only with O_CLOEXEC,
 * O_NOCTTY and O_NONBLOCK (a FIFO planted there must not hang the reader;
 * for a regular file the flag changes nothing), fstats it into *st and
 * checks it as flags say.  Returns the fd, or -1 with *refused saying why
 * (and errno set when FILE_OPEN_FAILED; *st filled otherwise, so that the
 * caller can word the refusal).
 */
int file_open_private(int dirfd, const char *path, int flags, struct stat *st,
		      enum file_refusal *refused);

/*
 * mkdir -p: every missing directory of path is made 0700; existing ones
 * are kept as they are.  0, -ENOTDIR when path itself exists and is not a
 * directory, or the -errno of the mkdir that failed, with *failed_len set
 * to the length of the prefix of path it was given.
 */
int file_make_dirs(const char *path, size_t *failed_len);

/* Writes all of buf, again after EINTR and short writes: 0 or -errno. */
int file_write_all(int fd, const void *buf, size_t len);

/* The step of file_replace that failed. */
enum file_step {
	FILE_STEP_CREATE, /* making the temporary file */
	FILE_STEP_WRITE,  /* writing or fsync'ing it */
	FILE_STEP_RENAME, /* closing it, or putting it in place */
};

/*
 * Makes name in the directory dirfd hold exactly data, or leaves it as it
 * was: a temporary file beside it (mode 0600, O_EXCL, a name nobody else
 * holds) is written, fsync'd and renamed over name, then the directory is
 * fsync'd.  exclusive: linked instead, so that it fails with -EEXIST when
 * name exists.  No temporary file is left behind.  0, or -errno with
 * *failed saying where.
 */
int file_replace(int dirfd, const char *name, const void *data, size_t len, bool exclusive,
		 enum file_step *failed);

#endif
