/* keptfile: a kept list's file (persist.h keeps it): the body last
 * accepted, when it was fetched and when files changed, checksummed.
 * Pure: no I/O. */
#ifndef OMIKEYFS_KEPTFILE_H
#define OMIKEYFS_KEPTFILE_H

#include <stddef.h>
#include <time.h>

#include "keylist.h"
#include "snapshot.h"

/* The format written; a file of another is ignored. */
#define KEPTFILE_VERSION 1

/* A kept list as read back: what keptfile_parse fills. */
struct kept_list {
	struct keylist list;
	struct snapshot_seed *seeds; /* sorted by ino */
	size_t nseeds;
	struct timespec fetched_at;
	struct timespec members_changed;
	const char *body; /* inside the parsed buffer */
	size_t body_len;
};

/*
 * Parses a kept list as written for url and credential (the identity as
 * stored: "user:ID", or the token's salted hash), whose body may be at most
 * max_body bytes (max_size, as a response).  Returns 0 and fills *out
 * (keptfile_free it), or -EBADMSG (damaged, truncated, a body the API
 * parser refuses), -EPROTONOSUPPORT (another format), -EXDEV (another
 * URL's or credential's) or -EFBIG (a body larger than max_body) with a
 * one-line reason in err.
 */
int keptfile_parse(const char *buf, size_t len, const char *url, const char *credential,
		   size_t max_body, struct kept_list *out, char *err, size_t errlen);

/* The largest file keptfile_format writes for a body of at most max_body
 * bytes, a URL and a credential of these lengths: a larger file is not
 * worth reading. */
size_t keptfile_max_len(size_t max_body, size_t url_len, size_t credential_len);
void keptfile_free(struct kept_list *kept);

/* The file keptfile_parse reads back, for snap (built from body), in one
 * malloc'd buffer; NULL when out of memory. */
char *keptfile_format(const struct snapshot *snap, const char *body, size_t body_len,
		      const char *url, const char *credential, struct timespec fetched_at,
		      size_t *len);

#endif
