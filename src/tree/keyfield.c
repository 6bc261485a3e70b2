/* keyfield: the type check and the file bytes of one known field of a key
 * object (keylist.c's entries are made of these). */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "errmsg.h"
#include "keyfield.h"

const char *keyfield_type_desc(enum json_type type)
{
	switch (type) {
	case json_type_null:
		return "null";
	case json_type_boolean:
		return "a boolean";
	case json_type_double:
	case json_type_int:
		return "a number";
	case json_type_object:
		return "an object";
	case json_type_array:
		return "an array";
	case json_type_string:
		return "a string";
	}
	return "of unknown type";
}

bool keyfield_is_bad(enum key_field f, struct json_object *value, char *why, size_t whylen)
{
	size_t n;

	if (!value)
		return false;
	if (f != FIELD_SCOPES) {
		if (json_object_is_type(value, json_type_string))
			return false;
		errmsg_set(why, whylen, "\"%s\" is %s, not a string", key_field_names[f],
			   keyfield_type_desc(json_object_get_type(value)));
		return true;
	}
	if (!json_object_is_type(value, json_type_array)) {
		errmsg_set(why, whylen, "\"scopes\" is %s, not an array",
			   keyfield_type_desc(json_object_get_type(value)));
		return true;
	}
	n = json_object_array_length(value);
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(value, i);

		if (!json_object_is_type(s, json_type_string)) {
			errmsg_set(why, whylen, "\"scopes\"[%zu] is %s, not a string", i,
				   keyfield_type_desc(json_object_get_type(s)));
			return true;
		}
	}
	return false;
}

int keyfield_render_string(struct json_object *value, struct key_text *text)
{
	size_t n;

	if (!value)
		return 0;
	n = (size_t)json_object_get_string_len(value);
	text->data = malloc(n + 1);
	if (!text->data)
		return -ENOMEM;
	memcpy(text->data, json_object_get_string(value), n);
	text->data[n] = '\n';
	text->len = n + 1;
	return 0;
}

int keyfield_render_scopes(struct json_object *value, struct key_text *text)
{
	size_t n, total = 0, o = 0;

	if (!value)
		return 0;
	n = json_object_array_length(value);
	for (size_t i = 0; i < n; i++)
		total +=
			(size_t)json_object_get_string_len(json_object_array_get_idx(value, i)) + 1;
	if (total == 0)
		return 0;
	text->data = malloc(total);
	if (!text->data)
		return -ENOMEM;
	for (size_t i = 0; i < n; i++) {
		struct json_object *s = json_object_array_get_idx(value, i);
		size_t len = (size_t)json_object_get_string_len(s);

		memcpy(text->data + o, json_object_get_string(s), len);
		o += len;
		text->data[o++] = '\n';
	}
	text->len = total;
	return 0;
}
