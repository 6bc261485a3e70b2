/* file: one way to open, make and replace the files that hold a user's
 * secrets or key list, so every one is held to the same rules. */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>

#include "file.h"

int file_open_private(int dirfd, const char *path, int flags, struct stat *st,
		      enum file_refusal *refused)
{
	int oflags = O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK;
	bool dir = flags & FILE_DIRECTORY;
	int fd, saved;

	if (flags & FILE_NOFOLLOW)
		oflags |= O_NOFOLLOW;
	if (dir)
		oflags |= O_DIRECTORY;
	*refused = FILE_OPEN_FAILED;
	fd = openat(dirfd, path, oflags);
	if (fd < 0)
		return -1;
	if (fstat(fd, st) < 0) {
		saved = errno;
		close(fd);
		errno = saved;
		return -1;
	}
	if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode))
		*refused = FILE_WRONG_TYPE;
	else if ((flags & FILE_OWNED) && st->st_uid != geteuid())
		*refused = FILE_NOT_OWNED;
	else if (st->st_mode & (S_IRWXG | S_IRWXO))
		*refused = FILE_SHARED;
	else
		return fd;
	close(fd);
	return -1;
}

int file_make_dirs(const char *path, size_t *failed_len)
{
	char *copy;
	struct stat st;
	int r = 0;

	if (stat(path, &st) == 0)
		return S_ISDIR(st.st_mode) ? 0 : -ENOTDIR;
	if (!(copy = strdup(path)))
		return -ENOMEM;
	for (char *p = copy + 1;; p++) {
		char c = *p;

		if (c != '/' && c != '\0')
			continue;
		*p = '\0';
		if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
			r = -errno;
			*failed_len = (size_t)(p - copy);
			break;
		}
		*p = c;
		if (c == '\0')
			break;
	}
	free(copy);
	return r;
}

int file_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len > 0) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			return -EIO;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* A temporary file for name in dirfd: hidden, random, created O_EXCL. */
static int create_temp(int dirfd, const char *name, char *tmp, size_t tmplen)
{
	for (int tries = 0; tries < 10; tries++) {
		uint64_t r;
		int fd;

		if (getrandom(&r, sizeof(r), 0) != sizeof(r))
			return -1;
		if ((size_t)snprintf(tmp, tmplen, ".%s.%016" PRIx64 ".tmp", name, r) >= tmplen) {
			errno = ENAMETOOLONG;
			return -1;
		}
		fd = openat(dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
		if (fd >= 0 || errno != EEXIST)
			return fd;
	}
	return -1;
}

int file_replace(int dirfd, const char *name, const void *data, size_t len, bool exclusive,
		 enum file_step *failed)
{
	char tmp[NAME_MAX + 1];
	int fd = create_temp(dirfd, name, tmp, sizeof(tmp)), r;

	*failed = FILE_STEP_CREATE;
	if (fd < 0)
		return -errno;
	*failed = FILE_STEP_WRITE;
	r = file_write_all(fd, data, len);
	if (r == 0 && fsync(fd) < 0)
		r = -errno;
	if (r == 0) {
		*failed = FILE_STEP_RENAME;
		if (close(fd) < 0 || (exclusive ? linkat(dirfd, tmp, dirfd, name, 0)
						: renameat(dirfd, tmp, dirfd, name)) < 0)
			r = -errno;
		fd = -1;
	}
	if (fd >= 0)
		close(fd);
	if (r < 0 || exclusive)
		unlinkat(dirfd, tmp, 0);
	if (r == 0) {
		/* The rename is durable once the directory is. */
		fsync(dirfd);
	}
	return r;
}
