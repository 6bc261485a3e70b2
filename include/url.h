/* url: which URLs omikeyfs may send a secret to, and how they are built. */
#ifndef OMIKEYFS_URL_H
#define OMIKEYFS_URL_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Check an API base URL before any traffic: https://, or http:// to a
 * loopback host (127.0.0.0/8, [::1], localhost); no user:password@, no
 * query or fragment, no spaces, control bytes or backslashes.  Returns 0,
 * or -EINVAL with a one-line reason in err (err may be NULL).
 */
int url_check(const char *url, char *err, size_t errlen);

/* The same policy for a full endpoint URL, which may carry a query
 * (Firebase's "?key=" takes the project's public API key). */
int url_check_endpoint(const char *url, char *err, size_t errlen);

/* Whether host (as libcurl gives it, or a HOST of HOST:PORT) is loopback:
 * "localhost", a dotted quad in 127.0.0.0/8, or ::1 with or without
 * brackets.  Plain http:// is allowed only to such a host. */
bool url_host_is_loopback(const char *host);

/*
 * base without its trailing slashes, then path ("/v1/dev/keys"; a '/' is
 * put in front when path lacks one).  Returns a malloc'd string, or NULL.
 */
char *url_join(const char *base, const char *path);

/*
 * base without its trailing slashes, '/', then the len bytes of seg (any
 * bytes, NUL included) as one path segment: every byte but A-Z a-z 0-9 - _ ~
 * percent-encoded, '.' too, so that no segment reads as "." or "..", which
 * libcurl and servers would resolve away.  Returns a malloc'd string, or
 * NULL.
 */
char *url_join_segment(const char *base, const char *seg, size_t len);

/* "host:port" of an absolute URL, never its userinfo, path or query; one
 * line of at most 100 bytes, or "" when url has no host. */
void url_authority(const char *url, char *out, size_t outlen);

#endif
