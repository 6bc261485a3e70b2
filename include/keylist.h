/* keylist: the body of GET /v1/dev/keys -> a list of keys with every file's
 * bytes rendered.  Pure: knows nothing of HTTP, FUSE or time of day. */
#ifndef OMIKEYFS_KEYLIST_H
#define OMIKEYFS_KEYLIST_H

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

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

/* Longest directory name omikeyfs produces (NAME_MAX). */
#define KEYNAME_MAX 255

/* JSON nesting deeper than this is a malformed body, not a stack overflow. */
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
 * one-line reason in err (body not JSON, truncated, not an array, nested too
 * deep, more than KEYLIST_MAX_ENTRIES entries).  Entries that are not
 * objects, lack a string "id" or carry a wrong type in a known field are
 * skipped with a warning; duplicate ids (after escaping) keep the first in
 * API order.  warn may be NULL.
 */
int keylist_parse(const char *body, size_t len, struct keylist *out,
		  keylist_warn_fn warn, void *ctx, char *err, size_t errlen);
void keylist_free(struct keylist *list);

/*
 * The directory name of an id.  An id is used as it stands unless it is
 * empty, longer than KEYNAME_MAX bytes, holds '/' or NUL, or starts with '.'
 * (which covers "." and "..", and keeps keys out of hiding) or '%'.  Such an id is shown as '%' followed by the id with every '%',
 * '/' and NUL byte written as %25, %2F, %00.  If that is longer than
 * KEYNAME_MAX, it is cut (never inside a %XX) and ends in "%~" and 16 hex
 * digits of a hash of the whole id.  out must hold KEYNAME_MAX + 1 bytes.
 */
void keyname_escape(const char *id, size_t id_len, char *out);

/*
 * The inverse for names that were not cut: writes the id to out (at most
 * outlen bytes) and returns its length, or -1 for a cut ("%~") or invalid
 * name.
 */
long keyname_unescape(const char *name, char *out, size_t outlen);

/*
 * RFC 3339 time: "YYYY-MM-DDTHH:MM:SS", optional fraction (any number of
 * digits, nanoseconds kept), then "Z", "+HH:MM", "-HH:MM" or nothing (UTC).
 * 't', 'z' and ' ' as separator are accepted.  Returns false when s is not
 * such a time.  s need not be NUL-terminated.
 */
bool timestamp_parse(const char *s, size_t len, struct timespec *out);

/* 64-bit FNV-1a, the hash behind stable inode numbers and cut names. */
unsigned long long keylist_hash(const void *data, size_t len);

/*
 * The "detail" of an API error body ({"detail": "..."}, FastAPI's style) as
 * one line of at most 300 bytes: a string as it is, a list or object as
 * compact JSON, control bytes as spaces.  Returns malloc'd text, or NULL
 * when the body is no such JSON.
 */
char *keylist_error_detail(const char *body, size_t len);

#endif
