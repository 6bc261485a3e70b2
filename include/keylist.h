/* keylist: the body of GET /v1/dev/keys -> a list of keys with every file's
 * bytes rendered.  Pure: knows nothing of HTTP, FUSE or time of day. */
#ifndef OMIKEYFS_KEYLIST_H
#define OMIKEYFS_KEYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "keyname.h"

enum key_field {
	FIELD_NAME,
	FIELD_KEY_PREFIX,
	FIELD_CREATED_AT,
	FIELD_LAST_USED_AT,
	FIELD_SCOPES,
	FIELD_COUNT
};

/* "name", "key_prefix", "created_at", "last_used_at", "scopes" */
extern const char *const key_field_names[FIELD_COUNT];

/* JSON nesting deeper than this (the list counts as one level) is never
 * parsed: such an entry is skipped with a warning, the others are kept; an
 * element that never ends refuses the body.  No recursion either way. */
#define KEYLIST_MAX_DEPTH 16

/* A body with more array entries than this (skipped ones count too) is
 * refused, so a hostile list cannot grow the key table without bound. */
#define KEYLIST_MAX_ENTRIES 200000

struct key_text {
	char *data; /* malloc'd; NULL when len == 0 */
	size_t len;
};

struct parsed_key {
	char *id; /* raw id bytes, NUL-terminated, may hold NULs */
	size_t id_len;
	char name[KEYNAME_MAX + 1]; /* escaped directory name */
	struct key_text file[FIELD_COUNT];
	struct timespec created;   /* created_at, or 0 when unparsable */
	struct timespec last_used; /* last_used_at, or created when null/unparsable */
	bool legacy;               /* "scopes" is null: a legacy (read-only) key */
};

struct keylist {
	size_t count;
	struct parsed_key *keys; /* API order, duplicates removed */
	size_t skipped;          /* entries skipped (bad shape, duplicates) */
};

/* Called once per skipped entry with a one-line reason (no trailing newline). */
typedef void (*keylist_warn_fn)(void *ctx, const char *message);

/*
 * Parse a response body.  Returns 0 and fills *out, or -EBADMSG with a
 * one-line reason in err (body not JSON, truncated, not an array, more
 * than KEYLIST_MAX_ENTRIES entries).  Entries nested deeper than
 * KEYLIST_MAX_DEPTH, entries that are not objects, lack a string "id" or carry a wrong type in a
 * known field are skipped with a warning; duplicate ids (after escaping) keep the first in API
 * order.  warn may be NULL.
 */
int keylist_parse(const char *body, size_t len, struct keylist *out, keylist_warn_fn warn,
		  void *ctx, char *err, size_t errlen);
void keylist_free(struct keylist *list);

/*
 * body (a list keylist_parse took) without its entries whose "id" is the
 * id_len bytes of id: a key revoked since it was fetched.  Returns 0 with
 * *out (malloc'd, NUL-terminated, *out_len bytes, which keylist_parse reads
 * as body's keys but those), -ENOENT when no entry has that id, -EBADMSG
 * for a body that is no JSON array, or -ENOMEM; *out is NULL then.
 */
int keylist_without(const char *body, size_t len, const char *id, size_t id_len, char **out,
		    size_t *out_len);

/* How an id becomes parsed_key.name: keyname.h; which times parse: timestamp.h. */

#endif
