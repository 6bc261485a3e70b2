/*
 * token: the one place a token is read and checked (secret_free wipes it).
 * A key file is held to ssh's rule (no access for group or others), and
 * only its first line counts, so a comment or a second token below it is
 * never sent.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "file.h"
#include "secret.h"
#include "token.h"

#define ENV_NAME "OMI_API_KEY"

bool token_ok(const char *token)
{
	const unsigned char *p = (const unsigned char *)token;

	if (!p || !*p)
		return false;
	for (; *p; p++)
		if (*p < 0x21 || *p > 0x7e)
			return false;
	return true;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

char *token_read_file(const char *path, char *err, size_t errlen)
{
	char buf[TOKEN_MAX + 2];
	struct stat st;
	ssize_t n;
	char *token = NULL, *nl, *line;
	enum file_refusal refused;
	/* A link is followed: the user named this path. */
	int fd = file_open_private(AT_FDCWD, path, 0, &st, &refused);

	if (fd < 0) {
		if (refused == FILE_OPEN_FAILED)
			snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
		else if (refused == FILE_WRONG_TYPE)
			snprintf(err, errlen, "key file %s is not a regular file", path);
		else
			snprintf(err, errlen,
				 "key file %s is accessible by group or others "
				 "(mode %03o); run: chmod 600 %s",
				 path, (unsigned)(st.st_mode & 0777), path);
		return NULL;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		errmsg_set(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	/* By length, not as a string: a NUL would silently cut the token. */
	nl = memchr(buf, '\n', (size_t)n);
	if (memchr(buf, '\0', nl ? (size_t)(nl - buf) : (size_t)n)) {
		errmsg_set(err, errlen,
			   "key file %s: the token holds control characters "
			   "(a NUL byte)",
			   path);
		goto out;
	}
	if (nl) {
		*nl = '\0';
	} else if (n > TOKEN_MAX) {
		errmsg_set(err, errlen, "key file %s: first line longer than %d bytes", path,
			   TOKEN_MAX);
		goto out;
	}
	line = trim(buf);
	if (!*line)
		errmsg_set(err, errlen, "key file %s has no token on its first line", path);
	else if (!token_ok(line))
		errmsg_set(err, errlen,
			   "key file %s: the token holds spaces, control characters "
			   "or non-ASCII bytes",
			   path);
	else if (!(token = strdup(line)))
		errmsg_set(err, errlen, "out of memory");
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return token;
}

void token_scrub_env(void)
{
	char *value = getenv(ENV_NAME);

	if (value)
		explicit_bzero(value, strlen(value));
	unsetenv(ENV_NAME);
}

char *token_from_env(char *err, size_t errlen)
{
	char *value = getenv(ENV_NAME);
	char *token;

	if (!value) {
		errmsg_set(err, errlen, "no API token: set " ENV_NAME " or use -o key_file=PATH");
		return NULL;
	}
	token = strdup(trim(value));
	token_scrub_env();
	if (!token) {
		errmsg_set(err, errlen, "out of memory");
	} else if (!token_ok(token)) {
		errmsg_set(err, errlen,
			   ENV_NAME " is empty or holds spaces, control characters "
				    "or non-ASCII bytes");
		secret_free(token);
		token = NULL;
	}
	return token;
}

char *token_load(const char *key_file, char *err, size_t errlen)
{
	char *token;

	if (!key_file)
		return token_from_env(err, errlen);
	token = token_read_file(key_file, err, errlen);
	token_scrub_env();
	return token;
}
