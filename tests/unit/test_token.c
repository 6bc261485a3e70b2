/* Unit tests for token.c: what a usable token is, the key file's rules
 * (regular file, mode, first line, trimming, length) and OMI_API_KEY being
 * taken and scrubbed. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "secret.h"
#include "test.h"
#include "token.h"

static char dir[] = "/tmp/test_token.XXXXXX";
static char path[sizeof(dir) + 16];
static char err[512];

/* Writes len bytes of data to the key file with mode; returns its path. */
static const char *key_file(const void *data, size_t len, mode_t mode)
{
	int fd;

	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_EXCL, 0600);
	test_assert(fd >= 0);
	test_assert(write(fd, data, len) == (ssize_t)len);
	test_assert(fchmod(fd, mode) == 0);
	close(fd);
	return path;
}

static const char *key_text(const char *text, mode_t mode)
{
	return key_file(text, strlen(text), mode);
}

/* The token read from the file, or NULL with a one-line err naming it. */
static char *read_back(const char *file)
{
	char *token;

	strcpy(err, "unset");
	token = token_read_file(file, err, sizeof(err));
	if (token) {
		test_assert(strcmp(err, "unset") == 0);
	} else {
		test_assert(strstr(err, file) != NULL || strcmp(err, "out of memory") == 0);
		test_assert(strchr(err, '\n') == NULL);
	}
	return token;
}

static void expect_token(const char *file, const char *want)
{
	char *token = read_back(file);

	test_assert(token && strcmp(token, want) == 0);
	secret_free(token);
}

static void expect_refused(const char *file, const char *why)
{
	test_assert(read_back(file) == NULL);
	test_assert(strstr(err, why) != NULL);
}

static void test_ok(void)
{
	char all[0x7f - 0x21 + 1];
	char one[2] = { 0 };

	for (int c = 0x21; c <= 0x7e; c++)
		all[c - 0x21] = (char)c;
	all[sizeof(all) - 1] = '\0';
	test_assert(token_ok(all));
	test_assert(token_ok("omi_dev_0123456789abcdef"));
	test_assert(!token_ok(""));
	test_assert(!token_ok(NULL));
	for (int c = 1; c < 256; c++) {
		one[0] = (char)c;
		test_assert(token_ok(one) == (c >= 0x21 && c <= 0x7e));
	}
	test_assert(!token_ok("two words"));
	test_assert(!token_ok("tab\there"));
	test_assert(!token_ok("line\r\nbreak"));
	test_assert(!token_ok("caf\xc3\xa9"));
}

static void test_file_modes(void)
{
	static const mode_t refused[] = { 0644, 0640, 0604, 0660, 0601, 0610, 0602, 0620, 0607 };

	expect_token(key_text("secret\n", 0600), "secret");
	expect_token(key_text("secret\n", 0400), "secret");
	expect_token(key_text("secret\n", 0700), "secret");
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]); i++) {
		expect_refused(key_text("secret\n", refused[i]), "chmod 600");
		test_assert(strstr(err, "group or others") != NULL);
	}
}

static void test_file_not_regular(void)
{
	char missing[sizeof(path) + 8];

	snprintf(missing, sizeof(missing), "%s.none", path);
	expect_refused(missing, "cannot open key file");
	test_assert(strstr(err, strerror(ENOENT)) != NULL);
	expect_refused(dir, "not a regular file");
	expect_refused("/dev/null", "not a regular file");
}

/* A FIFO with no writer: refused at once, never waited on (blocked in
 * open(), the alarm ends the test). */
static void test_file_fifo(void)
{
	char fifo[sizeof(path) + 8];

	snprintf(fifo, sizeof(fifo), "%s.fifo", path);
	test_assert(mkfifo(fifo, 0600) == 0);
	alarm(30);
	expect_refused(fifo, "not a regular file");
	alarm(0);
	unlink(fifo);
}

static void test_file_first_line_trimmed(void)
{
	expect_token(key_text("secret", 0600), "secret");
	expect_token(key_text("  secret  \nsecond line\n", 0600), "secret");
	expect_token(key_text(" \t secret \t\r\nsecond\nthird\n", 0600), "secret");
	expect_token(key_text("secret\r\n", 0600), "secret");
	expect_token(key_text("first\nsecond\n", 0600), "first");
}

static void test_file_empty(void)
{
	expect_refused(key_text("", 0600), "no token on its first line");
	expect_refused(key_text("   \n", 0600), "no token on its first line");
	expect_refused(key_text(" \t\r\n\n", 0600), "no token on its first line");
	/* Only the first line counts, even when the token is on the second. */
	expect_refused(key_text("\nsecret\n", 0600), "no token on its first line");
}

static void test_file_bad_bytes(void)
{
	expect_refused(key_text("two words\n", 0600), "the token holds");
	expect_refused(key_text("tab\tinside\n", 0600), "the token holds");
	expect_refused(key_text("esc\x1b[0m\n", 0600), "the token holds");
	expect_refused(key_text("del\x7f\n", 0600), "the token holds");
	expect_refused(key_text("caf\xc3\xa9\n", 0600), "the token holds");
	expect_refused(key_text("cr\rinside\n", 0600), "the token holds");
	/* A NUL must not cut the token short (to "omi_dev"): refused. */
	expect_refused(key_file("omi_dev\0rest\n", 13, 0600), "NUL byte");
	expect_refused(key_file("omi_dev_token\0", 14, 0600), "NUL byte");
	expect_refused(key_file("\0omi_dev_token\n", 15, 0600), "NUL byte");
	/* Below the first line, nothing counts. */
	expect_token(key_file("omi_dev_token\n\0\n", 16, 0600), "omi_dev_token");
}

static void test_file_long_line(void)
{
	char *text = malloc(TOKEN_MAX + 2);

	test_assert(text);
	/* exactly TOKEN_MAX bytes, without and with a newline */
	memset(text, 'a', TOKEN_MAX);
	text[TOKEN_MAX] = '\0';
	expect_token(key_file(text, TOKEN_MAX, 0600), text);
	text[TOKEN_MAX] = '\n';
	key_file(text, TOKEN_MAX + 1, 0600);
	text[TOKEN_MAX] = '\0';
	expect_token(path, text);
	/* one byte more is refused, without and with a newline */
	memset(text, 'a', TOKEN_MAX + 1);
	expect_refused(key_file(text, TOKEN_MAX + 1, 0600), "longer than");
	text[TOKEN_MAX + 1] = '\n';
	expect_refused(key_file(text, TOKEN_MAX + 2, 0600), "longer than");
	free(text);
}

static void test_env(void)
{
	char *token;

	unsetenv("OMI_API_KEY");
	test_assert(token_from_env(err, sizeof(err)) == NULL);
	test_assert(strstr(err, "OMI_API_KEY") && strstr(err, "key_file"));

	setenv("OMI_API_KEY", "  secret \t", 1);
	token = token_from_env(err, sizeof(err));
	test_assert(token && strcmp(token, "secret") == 0);
	test_assert(getenv("OMI_API_KEY") == NULL);
	secret_free(token);

	setenv("OMI_API_KEY", "", 1);
	test_assert(token_from_env(err, sizeof(err)) == NULL);
	test_assert(strstr(err, "OMI_API_KEY is empty"));
	test_assert(getenv("OMI_API_KEY") == NULL);

	setenv("OMI_API_KEY", "two words", 1);
	test_assert(token_from_env(err, sizeof(err)) == NULL);
	test_assert(getenv("OMI_API_KEY") == NULL);
}

static void test_scrub_wipes_in_place(void)
{
	char entry[] = "OMI_API_KEY=secret";

	/* putenv shares entry, so the wipe can be seen after the unset. */
	test_assert(putenv(entry) == 0);
	token_scrub_env();
	test_assert(getenv("OMI_API_KEY") == NULL);
	test_assert(strncmp(entry, "OMI_API_KEY=", 12) == 0);
	for (size_t i = 12; i < sizeof(entry) - 1; i++)
		test_assert(entry[i] == '\0');
}

static void test_load(void)
{
	char *token;

	/* A key file wins, and the environment's token is scrubbed, never a
	 * fallback. */
	setenv("OMI_API_KEY", "from-env", 1);
	token = token_load(key_text("from-file\n", 0600), err, sizeof(err));
	test_assert(token && strcmp(token, "from-file") == 0);
	test_assert(getenv("OMI_API_KEY") == NULL);
	secret_free(token);

	setenv("OMI_API_KEY", "from-env", 1);
	test_assert(token_load(key_text("from-file\n", 0644), err, sizeof(err)) == NULL);
	test_assert(getenv("OMI_API_KEY") == NULL);

	setenv("OMI_API_KEY", "from-env", 1);
	token = token_load(NULL, err, sizeof(err));
	test_assert(token && strcmp(token, "from-env") == 0);
	test_assert(getenv("OMI_API_KEY") == NULL);
	secret_free(token);
	secret_free(NULL);
}

int main(void)
{
	test_assert(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/token", dir);
	test_run(test_ok);
	test_run(test_file_modes);
	test_run(test_file_not_regular);
	test_run(test_file_fifo);
	test_run(test_file_first_line_trimmed);
	test_run(test_file_empty);
	test_run(test_file_bad_bytes);
	test_run(test_file_long_line);
	test_run(test_env);
	test_run(test_scrub_wipes_in_place);
	test_run(test_load);
	unlink(path);
	rmdir(dir);
	return 0;
}
