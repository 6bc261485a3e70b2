/* token: the API token: what a usable one is and where it comes from (a key
 * file or OMI_API_KEY); secret_free (secret.h) wipes it when done.  Nothing
 * here logs. */
#ifndef OMIKEYFS_TOKEN_H
#define OMIKEYFS_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

/* The longest first line of a key file that is read as a token. */
#define TOKEN_MAX 16384

/* Non-empty and only printable ASCII without space (0x21..0x7e): it goes
 * into an HTTP header as it is. */
bool token_ok(const char *token);

/*
 * The first line of the key file at path, white space trimmed.  The file
 * must be a regular file that group and others cannot access.  Returns a
 * malloc'd token (secret_free it), or NULL with a one-line reason in err.
 */
char *token_read_file(const char *path, char *err, size_t errlen);

/* The token in OMI_API_KEY, trimmed; the variable is scrubbed either way.
 * Returns a malloc'd token, or NULL with a one-line reason in err. */
char *token_from_env(char *err, size_t errlen);

/* Wipes OMI_API_KEY in place and removes it, so neither /proc/PID/environ
 * nor a child (fusermount3) sees it. */
void token_scrub_env(void);

/* The token to use: from key_file when given (OMI_API_KEY is then scrubbed,
 * never a fallback), otherwise from OMI_API_KEY. */
char *token_load(const char *key_file, char *err, size_t errlen);

#endif
