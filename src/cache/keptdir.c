/*
 * keptdir: the directory the kept lists live in, and the files in it.
 *
 * The lists name keys, so the directory and every file in it must be the
 * user's own and closed to group and others; a file is replaced atomically
 * (file_replace), so a crash leaves the old one or the new one.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "file.h"
#include "keptdir.h"
#include "log.h"
#include "secret.h"

#define SALT_NAME "salt"

/* The cache directory and its files are refused when another user could
 * read or replace them: the list names keys.  Words why in err and returns
 * -EACCES when group or others may use it, -ENOTDIR (or -EISDIR) for the
 * wrong kind of file, -EPERM when another user owns it. */
static int refused_private(enum file_refusal refused, const struct stat *st, const char *what,
			   const char *path, bool dir, char *err, size_t errlen)
{
	if (refused == FILE_NOT_OWNED) {
		snprintf(err, errlen, "%s %s: owned by uid %u, not by the mounting user", what,
			 path, (unsigned)st->st_uid);
		return -EPERM;
	}
	if (refused == FILE_SHARED) {
		snprintf(err, errlen,
			 "%s %s: group or others may read or write it (mode %03o); "
			 "chmod %s it",
			 what, path, (unsigned)(st->st_mode & 0777), dir ? "700" : "600");
		return -EACCES;
	}
	snprintf(err, errlen, "%s %s: not a %s", what, path, dir ? "directory" : "file");
	return dir ? -ENOTDIR : -EISDIR;
}

int keptdir_open(const char *dir, char *err, size_t errlen)
{
	const int flags = FILE_DIRECTORY | FILE_OWNED; /* the path may be a link */
	enum file_refusal refused;
	struct stat st;
	size_t failed_len;
	int fd, rc;

	fd = file_open_private(AT_FDCWD, dir, flags, &st, &refused);
	if (fd < 0 && refused == FILE_OPEN_FAILED && errno == ENOENT) {
		rc = file_make_dirs(dir, &failed_len);
		if (rc == 0)
			fd = file_open_private(AT_FDCWD, dir, flags, &st, &refused);
		else
			errno = -rc;
	}
	if (fd >= 0)
		return fd;
	if (refused == FILE_OPEN_FAILED) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir %s: %s", dir, strerror(-rc));
		return rc;
	}
	return refused_private(refused, &st, "cache_dir", dir, true, err, errlen);
}

int keptdir_open_file(int dirfd, const char *dir, const char *name, struct stat *st, char *err,
		      size_t errlen)
{
	enum file_refusal refused;
	int fd = file_open_private(dirfd, name, FILE_NOFOLLOW | FILE_OWNED, st, &refused);
	int saved = errno;
	char path[PATH_MAX];

	err[0] = '\0';
	if (fd >= 0)
		return fd;
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (refused == FILE_OPEN_FAILED) {
		if (saved != ENOENT)
			snprintf(err, errlen, "%s: %s", path, strerror(saved));
		errno = saved;
		return -1;
	}
	refused_private(refused, st, "cache file", path, false, err, errlen);
	errno = EPERM;
	return -1;
}

int keptdir_write(int dirfd, const char *name, const void *data, size_t len, bool exclusive)
{
	enum file_step step;
	int rc = file_replace(dirfd, name, data, len, exclusive, &step);

	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return 0;
}

int keptdir_read(int fd, size_t size, char **out)
{
	char *buf = malloc(size ? size : 1);
	size_t got = 0;

	if (!buf)
		return -1;
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != size) {
		free(buf);
		errno = EIO;
		return -1;
	}
	*out = buf;
	return 0;
}

/* The salt of token hashes: KEPTDIR_SALT_LEN random bytes made once per
 * directory, so the same token names the same file, and the file name says
 * nothing of the token to whoever lacks the salt. */
int keptdir_salt(int dirfd, const char *dir, unsigned char salt[KEPTDIR_SALT_LEN], char *err,
		 size_t errlen)
{
	for (int tries = 0; tries < 3; tries++) {
		struct stat st;
		char *buf;
		int fd = keptdir_open_file(dirfd, dir, SALT_NAME, &st, err, errlen);

		if (fd >= 0) {
			int rc = st.st_size == KEPTDIR_SALT_LEN
					 ? keptdir_read(fd, KEPTDIR_SALT_LEN, &buf)
					 : -1;

			close(fd);
			if (rc == 0) {
				memcpy(salt, buf, KEPTDIR_SALT_LEN);
				secret_free_len(buf, KEPTDIR_SALT_LEN);
				return 0;
			}
			/* A damaged salt only orphans the lists it named. */
			log_warn("%s/" SALT_NAME " is damaged; making a new one", dir);
			if (getrandom(salt, KEPTDIR_SALT_LEN, 0) != KEPTDIR_SALT_LEN ||
			    keptdir_write(dirfd, SALT_NAME, salt, KEPTDIR_SALT_LEN, false) < 0)
				break;
			return 0;
		}
		if (err[0])
			return -1;
		if (getrandom(salt, KEPTDIR_SALT_LEN, 0) != KEPTDIR_SALT_LEN)
			break;
		if (keptdir_write(dirfd, SALT_NAME, salt, KEPTDIR_SALT_LEN, true) == 0)
			return 0;
		if (errno != EEXIST) /* else another mount made it first: read it */
			break;
	}
	errmsg_set(err, errlen, "cache_dir %s: cannot make its salt: %s", dir, strerror(errno));
	return -1;
}
