/* jsonstrict: reading small JSON objects from untrusted bytes (the session
 * file, Firebase's and Omi's sign-in answers) strictly, writing JSON
 * strings, and making server text safe to show. */
#ifndef OMIKEYFS_JSONSTRICT_H
#define OMIKEYFS_JSONSTRICT_H

#include <stddef.h>

struct json_object;

/* How deep a sign-in document may nest (Firebase's error bodies need 4). */
#define JSONSTRICT_MAX_DEPTH 8

/*
 * Parse the whole of buf as one JSON object: valid JSON (UTF-8 checked), no
 * NUL byte, nested at most JSONSTRICT_MAX_DEPTH, nothing but white space
 * after it.  Returns the object (give it back with jsonstrict_put) or NULL
 * with a one-line reason in err ("not valid JSON: ...", "not a JSON
 * object").  Parser buffers are wiped: the bytes may hold tokens.
 */
struct json_object *jsonstrict_parse(const char *buf, size_t len, char *err, size_t errlen);

/* Wipe every string in the tree, then drop the reference. NULL is fine. */
void jsonstrict_put(struct json_object *obj);

enum jsonstrict_chars {
	JSONSTRICT_TOKEN, /* 0x21..0x7e only: tokens, ids, URLs */
	JSONSTRICT_TEXT,  /* anything but control characters */
};

/*
 * obj[key] as a string of 1..max bytes made of the given characters.
 * Returns 0 with a malloc'd copy in *out; -ENOENT when key is absent (err
 * says "no KEY"); -EBADMSG when it is not a string, empty, too long or
 * holds other characters (err names the key, never the value); -ENOMEM.
 */
int jsonstrict_string(struct json_object *obj, const char *key, size_t max,
		      enum jsonstrict_chars chars, char **out, char *err, size_t errlen);

/* s as a quoted JSON string (", \ and control bytes escaped), malloc'd;
 * NULL when out of memory. */
char *jsonstrict_quote(const char *s);

/*
 * Copy len bytes of text that came from a server into out (outlen > 0) for
 * showing to a user, as text_sanitize makes it (controls, C1, bidi overrides
 * and invalid UTF-8 become '?'), cut to fit with "..." at the end.  Always
 * NUL-terminates.
 */
void jsonstrict_clean(const char *text, size_t len, char *out, size_t outlen);

#endif
