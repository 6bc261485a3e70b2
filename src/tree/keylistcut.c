/* keylistcut: a key list's body with one key cut out, for the kept file
 * after a revoke: the same bytes, but for that key's element. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "jsonscan.h"
#include "keylist.h"

/* Whether the array element element is an object whose "id" is the id_len
 * bytes of id. */
static bool has_id(struct json_object *element, const char *id, size_t id_len)
{
	struct json_object *v;

	return json_object_is_type(element, json_type_object) &&
	       json_object_object_get_ex(element, "id", &v) &&
	       json_object_is_type(v, json_type_string) &&
	       (size_t)json_object_get_string_len(v) == id_len &&
	       memcmp(json_object_get_string(v), id, id_len) == 0;
}

/*
 * The elements are walked as keylist_parse walks them, each given to json-c
 * alone; the output is "[" and the bytes of every element kept, joined by
 * ",", and "]", so it parses to the same keys but the ones removed.
 */
int keylist_without(const char *body, size_t len, const char *id, size_t id_len, char **out,
		    size_t *out_len)
{
	struct json_tokener *tok;
	size_t i, o = 1;
	bool found = false;
	char *buf;
	int r = -EBADMSG;

	*out = NULL;
	*out_len = 0;
	i = len ? jsonscan_skip_space(body, 0, len) : 0;
	if (i == len || body[i] != '[' || len > INT_MAX)
		return -EBADMSG;
	if (!(buf = malloc(len + 2)))
		return -ENOMEM;
	if (!(tok = json_tokener_new_ex(KEYLIST_MAX_DEPTH - 1))) {
		free(buf);
		return -ENOMEM;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	buf[0] = '[';
	i = jsonscan_skip_space(body, i + 1, len);
	if (i < len && body[i] == ']')
		goto end;
	for (;;) {
		struct json_object *element;
		size_t end;

		json_tokener_reset(tok);
		element = json_tokener_parse_ex(tok, body + i, (int)(len - i));
		if (json_tokener_get_error(tok) == json_tokener_error_depth)
			end = jsonscan_skip_element(body, i, len); /* kept: never a key */
		else if (json_tokener_get_error(tok) == json_tokener_success)
			end = i + json_tokener_get_parse_end(tok);
		else
			end = 0;
		if (!end)
			goto fail;
		if (element && has_id(element, id, id_len)) {
			found = true;
		} else {
			if (o > 1)
				buf[o++] = ',';
			memcpy(buf + o, body + i, end - i);
			o += end - i;
		}
		json_object_put(element);
		i = jsonscan_skip_space(body, end, len);
		if (i < len && body[i] == ',') {
			i = jsonscan_skip_space(body, i + 1, len);
			continue;
		}
		if (i < len && body[i] == ']')
			break;
		goto fail;
	}
end:
	buf[o++] = ']';
	buf[o] = '\0';
	json_tokener_free(tok);
	if (!found) {
		free(buf);
		return -ENOENT;
	}
	*out = buf;
	*out_len = o;
	return 0;
fail:
	json_tokener_free(tok);
	free(buf);
	return r;
}
