/* Unit tests for log: journal priority prefixes only when fd 2 is the
 * stream JOURNAL_STREAM names, the level threshold, sanitizing, and whole
 * lines from several threads. */
#include <fcntl.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "log.h"
#include "test.h"

static int saved_stderr;

/* A fresh temp file, now fd 2; returns its fd for reading back. */
static int capture(char *path, size_t pathlen)
{
	int fd;

	snprintf(path, pathlen, "/tmp/omikeyfs-test-log-XXXXXX");
	fd = mkstemp(path);
	test_assert(fd >= 0);
	unlink(path);
	test_assert(dup2(fd, STDERR_FILENO) == STDERR_FILENO);
	return fd;
}

/* Everything written to the captured fd; fd 2 goes back to the terminal. */
static char *captured(int fd)
{
	static char buf[1 << 16];
	ssize_t n;

	dup2(saved_stderr, STDERR_FILENO);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	test_assert(n >= 0);
	buf[n] = '\0';
	close(fd);
	return buf;
}

static void journal_env_for(int fd)
{
	struct stat st;
	char val[64];

	test_assert(fstat(fd, &st) == 0);
	snprintf(val, sizeof(val), "%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
	test_assert(setenv("JOURNAL_STREAM", val, 1) == 0);
}

static void test_level_parse(void)
{
	test_assert(log_level_parse("error") == LOG_ERR);
	test_assert(log_level_parse("warning") == LOG_WARNING);
	test_assert(log_level_parse("info") == LOG_INFO);
	test_assert(log_level_parse("debug") == LOG_DEBUG);
	test_assert(log_level_parse("") == -1);
	test_assert(log_level_parse("Info") == -1);
	test_assert(log_level_parse("notice") == -1);
	test_assert(log_level_parse(NULL) == -1);
}

/* What one line at LOG_ERR looks like in a child whose JOURNAL_STREAM is
 * "<pre>DEVICE<mid>INODE<post>" of its fd 2 (unset when pre is NULL).  The
 * variable is read once per process, so this runs before the parent logs. */
static char *child_line(const char *pre, const char *mid, const char *post)
{
	char path[64], val[128];
	int fd = capture(path, sizeof(path));
	struct stat st;
	pid_t pid;
	int status;

	test_assert(fstat(fd, &st) == 0);
	pid = fork();
	test_assert(pid >= 0);
	if (pid == 0) {
		if (pre) {
			snprintf(val, sizeof(val), "%s%ju%s%ju%s", pre, (uintmax_t)st.st_dev, mid,
				 (uintmax_t)st.st_ino, post);
			setenv("JOURNAL_STREAM", val, 1);
		} else {
			unsetenv("JOURNAL_STREAM");
		}
		log_err("x");
		_exit(0);
	}
	test_assert(waitpid(pid, &status, 0) == pid && WIFEXITED(status));
	return captured(fd);
}

static void test_journal_env(void)
{
	test_assert(strcmp(child_line(NULL, NULL, NULL), "omikeyfs: x\n") == 0);
	test_assert(strcmp(child_line("", ":", ""), "<3>x\n") == 0);
	/* Anything but exactly DEVICE:INODE in decimal is not the journal. */
	test_assert(strcmp(child_line("", ":", ":"), "omikeyfs: x\n") == 0);
	test_assert(strcmp(child_line("", ":", " "), "omikeyfs: x\n") == 0);
	test_assert(strcmp(child_line(" ", ":", ""), "omikeyfs: x\n") == 0);
	test_assert(strcmp(child_line("+", ":", ""), "omikeyfs: x\n") == 0);
	test_assert(strcmp(child_line("", ":1", ""), "omikeyfs: x\n") == 0);
	test_assert(strcmp(child_line("", "", ""), "omikeyfs: x\n") == 0);
}

static void test_journal_prefix(void)
{
	char path[64];
	int jfd = capture(path, sizeof(path));
	/* Kept open for good, so that no later temp file reuses its inode number
	 * and passes for the journal. */
	int keep = dup(jfd);
	int other;

	journal_env_for(jfd);
	log_err("e");
	log_warn("w");
	log_info("i %s", "x");
	log_set_debug(true);
	log_debug("d");
	log_set_level(LOG_INFO);
	test_assert(strcmp(captured(jfd), "<3>e\n<4>w\n<6>i x\n<7>d\n") == 0);

	/* Same JOURNAL_STREAM, but fd 2 is now another file: no prefix. */
	other = capture(path, sizeof(path));
	log_warn("redirected");
	test_assert(strcmp(captured(other), "omikeyfs: redirected\n") == 0);
	test_assert(keep >= 0);
}

static void test_threshold(void)
{
	char path[64];
	int fd = capture(path, sizeof(path));

	log_debug("hidden by default");
	log_set_level(LOG_WARNING);
	log_info("hidden");
	log_warn("shown");
	log_set_level(LOG_ERR);
	log_warn("hidden");
	log_err("error");
	log_set_debug(false); /* leaves the level alone */
	log_warn("hidden");
	log_set_level(log_level_parse("debug"));
	log_debug("debug");
	log_set_level(LOG_INFO);
	log_debug("hidden");
	test_assert(strcmp(captured(fd), "omikeyfs: shown\nomikeyfs: error\nomikeyfs: debug\n") ==
		    0);
}

static void test_sanitized(void)
{
	char path[64], long_msg[2000];
	int fd = capture(path, sizeof(path));
	char *out;

	log_info("name=%s", "a\x1b[2Jb\xe2\x80\xae"
			    "c\x9b"
			    "d\ne");
	log_info("trailing newline\n");
	/* Cut to 1023 bytes, between characters: 1019 x, no half euro, "...". */
	memset(long_msg, 'x', 1019);
	strcpy(long_msg + 1019, "\xe2\x82\xac tail");
	log_info("%s", long_msg);
	out = captured(fd);
	test_assert(strncmp(out, "omikeyfs: name=a?[2Jb?c?d?e\nomikeyfs: trailing newline\n", 55) ==
		    0);
	out += 55;
	test_assert(strncmp(out, "omikeyfs: ", 10) == 0);
	test_assert(strspn(out + 10, "x") == 1019);
	test_assert(strcmp(out + 10 + 1019, "...\n") == 0);
}

#define THREADS 4
#define LINES 500

static void *spam(void *arg)
{
	char msg[600];

	memset(msg, 'a' + (int)(long)arg, sizeof(msg) - 1);
	msg[sizeof(msg) - 1] = '\0';
	for (int i = 0; i < LINES; i++)
		log_info("%s", msg);
	return NULL;
}

/* Every line is whole: prefix, 599 copies of one letter, newline. */
static void test_threads(void)
{
	static char buf[THREADS * LINES * 700];
	pthread_t th[THREADS];
	char path[64];
	int fd = capture(path, sizeof(path));
	ssize_t n;
	char *p;
	int lines = 0;

	for (long i = 0; i < THREADS; i++)
		test_assert(pthread_create(&th[i], NULL, spam, (void *)i) == 0);
	for (int i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	dup2(saved_stderr, STDERR_FILENO);
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	test_assert(n > 0);
	buf[n] = '\0';
	close(fd);
	for (p = buf; *p; lines++) {
		test_assert(strncmp(p, "omikeyfs: ", 10) == 0);
		p += 10;
		test_assert(*p >= 'a' && *p < 'a' + THREADS);
		test_assert(strspn(p, (char[]){ *p, '\0' }) == 599);
		p += 599;
		test_assert(*p++ == '\n');
	}
	test_assert(lines == THREADS * LINES);
}

int main(void)
{
	saved_stderr = dup(STDERR_FILENO);
	test_assert(saved_stderr >= 0);
	test_run(test_level_parse);
	test_run(test_journal_env);
	test_run(test_journal_prefix);
	test_run(test_threshold);
	test_run(test_sanitized);
	test_run(test_threads);
	return 0;
}
