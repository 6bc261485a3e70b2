/* keptdir: the directory persist.h keeps its lists in (-o cache_dir):
 * only the user's own and 0700, its files opened checked and replaced
 * atomically, and the salt of token hashes made once in it. */
#ifndef OMIKEYFS_KEPTDIR_H
#define OMIKEYFS_KEPTDIR_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/stat.h>

#define KEPTDIR_SALT_LEN 32

/* Opens dir, made 0700 with missing parents when missing: its fd, or
 * -EACCES when group or others may use it, -ENOTDIR for another kind of
 * file, -EPERM when another user owns it, or the -errno of making or
 * opening it, with a one-line reason in err. */
int keptdir_open(const char *dir, char *err, size_t errlen);

/* The file name in dirfd (dir, its path, for messages), checked: the fd,
 * or -1 with errno ENOENT when there is none (err empty), otherwise with
 * err set. */
int keptdir_open_file(int dirfd, const char *dir, const char *name, struct stat *st, char *err,
		      size_t errlen);

/* Writes data as name, atomically; exclusive: only if name does not exist
 * yet.  0, or -1 with errno set. */
int keptdir_write(int dirfd, const char *name, const void *data, size_t len, bool exclusive);

/* Reads exactly size bytes of fd into *out (malloc'd): 0, or -1 with
 * errno set (EIO when the file is shorter). */
int keptdir_read(int fd, size_t size, char **out);

/* The salt of token hashes, read, or made when missing or damaged: 0, or
 * -1 with err set. */
int keptdir_salt(int dirfd, const char *dir, unsigned char salt[KEPTDIR_SALT_LEN], char *err,
		 size_t errlen);

#endif
