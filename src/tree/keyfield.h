/* keyfield: one known field of a key object: whether its JSON type is the
 * one the API documents, and its file's bytes.  Private to the tree layer. */
#ifndef OMIKEYFS_KEYFIELD_H
#define OMIKEYFS_KEYFIELD_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "keylist.h"

/* "a string", "null", "an array", ...: a JSON type as a warning names it. */
const char *keyfield_type_desc(enum json_type type);

/* Why value (field f of a key, NULL when null or missing) has the wrong
 * type, written to why; false when it is fine. */
bool keyfield_is_bad(enum key_field f, struct json_object *value, char *why, size_t whylen);

/* The value's bytes and one newline; nothing for null.  0 or -ENOMEM. */
int keyfield_render_string(struct json_object *value, struct key_text *text);

/* One scope a line; nothing for null or [].  0 or -ENOMEM. */
int keyfield_render_scopes(struct json_object *value, struct key_text *text);

#endif
