/* Unit tests for file.c: what file_open_private refuses (kind, owner,
 * mode, links), mkdir -p, and that file_replace puts the whole new bytes
 * in place and leaves no temporary file. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "test.h"

static char dir[] = "/tmp/test_file.XXXXXX";

static const char *in_dir(const char *name)
{
	static char path[sizeof(dir) + 64];

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	return path;
}

static void make_file(const char *name, const char *text, mode_t mode)
{
	int fd = open(in_dir(name), O_WRONLY | O_CREAT | O_TRUNC, 0600);

	test_assert(fd >= 0);
	test_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
	test_assert(fchmod(fd, mode) == 0);
	close(fd);
}

/* The refusal file_open_private gives name (PRIVATE_OK: none). */
#define PRIVATE_OK (-1)
static int refusal_of(const char *name, int flags)
{
	enum file_refusal refused = FILE_OPEN_FAILED;
	struct stat st;
	int fd = file_open_private(AT_FDCWD, in_dir(name), flags, &st, &refused);

	if (fd < 0)
		return (int)refused;
	test_assert(fcntl(fd, F_GETFD) & FD_CLOEXEC);
	close(fd);
	return PRIVATE_OK;
}

static void test_modes(void)
{
	make_file("f", "x", 0600);
	test_assert(refusal_of("f", FILE_OWNED) == PRIVATE_OK);
	make_file("f", "x", 0400);
	test_assert(refusal_of("f", FILE_OWNED) == PRIVATE_OK);
	/* Any bit for group or others is refused, read, write or execute. */
	for (mode_t m = 1; m <= 077; m++) {
		make_file("f", "x", 0600 | m);
		test_assert(refusal_of("f", 0) == FILE_SHARED);
	}
	make_file("f", "x", 0600);
}

static void test_kind(void)
{
	test_assert(mkdir(in_dir("d"), 0700) == 0);
	test_assert(refusal_of("d", 0) == FILE_WRONG_TYPE);
	test_assert(refusal_of("d", FILE_DIRECTORY | FILE_OWNED) == PRIVATE_OK);
	test_assert(chmod(in_dir("d"), 0750) == 0);
	test_assert(refusal_of("d", FILE_DIRECTORY) == FILE_SHARED);
	/* O_DIRECTORY: a file where a directory is wanted fails the open. */
	test_assert(refusal_of("f", FILE_DIRECTORY) == FILE_OPEN_FAILED);
	test_assert(rmdir(in_dir("d")) == 0);
	/* A FIFO neither hangs the open nor passes. */
	test_assert(mkfifo(in_dir("fifo"), 0600) == 0);
	test_assert(refusal_of("fifo", 0) == FILE_WRONG_TYPE);
	test_assert(unlink(in_dir("fifo")) == 0);
	errno = 0;
	test_assert(refusal_of("none", 0) == FILE_OPEN_FAILED && errno == ENOENT);
}

static void test_owner(void)
{
	const char *foreign = "/etc/passwd"; /* root's, when we are not root */
	enum file_refusal refused;
	struct stat st;

	if (geteuid() == 0) {
		make_file("other", "x", 0600);
		test_assert(chown(in_dir("other"), 12345, 12345) == 0);
		foreign = in_dir("other");
	}
	test_assert(file_open_private(AT_FDCWD, foreign, FILE_OWNED, &st, &refused) < 0);
	test_assert(refused == FILE_NOT_OWNED && st.st_uid != geteuid());
	/* Without FILE_OWNED the owner is not asked about. */
	if (geteuid() == 0) {
		test_assert(refusal_of("other", 0) == PRIVATE_OK);
		unlink(foreign);
	}
}

static void test_symlink(void)
{
	test_assert(symlink("f", in_dir("link")) == 0);
	errno = 0;
	test_assert(refusal_of("link", FILE_NOFOLLOW) == FILE_OPEN_FAILED && errno == ELOOP);
	test_assert(refusal_of("link", 0) == PRIVATE_OK);
	test_assert(unlink(in_dir("link")) == 0);
}

static void test_make_dirs(void)
{
	struct stat st;
	size_t failed_len = 0;
	mode_t old = umask(0);

	test_assert(file_make_dirs(in_dir("a/b/c"), &failed_len) == 0);
	test_assert(stat(in_dir("a/b/c"), &st) == 0 && S_ISDIR(st.st_mode));
	test_assert((st.st_mode & 0777) == 0700);
	test_assert(stat(in_dir("a"), &st) == 0 && (st.st_mode & 0777) == 0700);
	/* Existing directories are kept as they are. */
	test_assert(chmod(in_dir("a"), 0755) == 0);
	test_assert(file_make_dirs(in_dir("a/b/c/"), &failed_len) == 0);
	test_assert(stat(in_dir("a"), &st) == 0 && (st.st_mode & 0777) == 0755);
	/* A file in the way. */
	test_assert(file_make_dirs(in_dir("f"), &failed_len) == -ENOTDIR);
	test_assert(file_make_dirs(in_dir("f/x/y"), &failed_len) == -ENOTDIR);
	test_assert(failed_len == strlen(in_dir("f/x")));
	umask(old);
	test_assert(rmdir(in_dir("a/b/c")) == 0 && rmdir(in_dir("a/b")) == 0);
	test_assert(rmdir(in_dir("a")) == 0);
}

static size_t count_entries(void)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	size_t n = 0;

	test_assert(d);
	while ((e = readdir(d)))
		n += e->d_name[0] != '.' || (e->d_name[1] && strcmp(e->d_name, "..") != 0);
	closedir(d);
	return n;
}

static void read_back(const char *name, const char *want)
{
	char buf[64] = { 0 };
	struct stat st;
	int fd = open(in_dir(name), O_RDONLY);

	test_assert(fd >= 0 && fstat(fd, &st) == 0);
	test_assert((st.st_mode & 0777) == 0600);
	test_assert(read(fd, buf, sizeof(buf)) == (ssize_t)strlen(want));
	test_assert(strcmp(buf, want) == 0);
	close(fd);
}

static void test_replace(void)
{
	int dfd = open(dir, O_RDONLY | O_DIRECTORY);
	enum file_step step;
	size_t before;

	test_assert(dfd >= 0);
	before = count_entries();
	test_assert(file_replace(dfd, "r", "first", 5, false, &step) == 0);
	read_back("r", "first");
	test_assert(file_replace(dfd, "r", "second", 6, false, &step) == 0);
	read_back("r", "second");
	test_assert(count_entries() == before + 1);
	/* exclusive: only when the name is free, and then nothing is left. */
	test_assert(file_replace(dfd, "r", "third", 5, true, &step) == -EEXIST);
	test_assert(step == FILE_STEP_RENAME);
	read_back("r", "second");
	test_assert(count_entries() == before + 1);
	test_assert(file_replace(dfd, "x", "new", 3, true, &step) == 0);
	read_back("x", "new");
	test_assert(count_entries() == before + 2);
	/* A name that is a directory: the rename fails, nothing is left. */
	test_assert(mkdir(in_dir("sub"), 0700) == 0);
	test_assert(file_replace(dfd, "sub", "y", 1, false, &step) == -EISDIR);
	test_assert(step == FILE_STEP_RENAME && count_entries() == before + 3);
	test_assert(rmdir(in_dir("sub")) == 0);
	unlink(in_dir("r"));
	unlink(in_dir("x"));
	close(dfd);
}

static void test_write_all(void)
{
	int fds[2];
	char buf[8] = { 0 };

	test_assert(pipe(fds) == 0);
	test_assert(file_write_all(fds[1], "abcdef", 6) == 0);
	test_assert(read(fds[0], buf, sizeof(buf)) == 6 && strcmp(buf, "abcdef") == 0);
	close(fds[0]);
	test_assert(file_write_all(fds[1], "x", 1) == -EPIPE);
	close(fds[1]);
}

int main(void)
{
	signal(SIGPIPE, SIG_IGN);
	test_assert(mkdtemp(dir));
	test_run(test_modes);
	test_run(test_kind);
	test_run(test_owner);
	test_run(test_symlink);
	test_run(test_make_dirs);
	test_run(test_replace);
	test_run(test_write_all);
	unlink(in_dir("f"));
	test_assert(rmdir(dir) == 0);
	return 0;
}
