/*
 * apierror: the "detail" of an API error body, made into one safe line.
 *
 * The API answers a refused request with FastAPI's {"detail": ...}; that text
 * ends up in the error a user reads (stderr, the journal, an xattr), so it
 * is bounded and sanitized here.  Pure: fed bytes, returns text.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "apierror.h"
#include "text.h"

#define DETAIL_MAX 300 /* bytes of "detail" kept for a message */

char *apierror_detail(const char *body, size_t len)
{
	struct json_tokener *tok;
	struct json_object *root = NULL, *detail;
	const char *text = NULL;
	size_t n = 0;
	char *out = NULL;

	if (!body || len == 0 || len > INT_MAX)
		return NULL;
	tok = json_tokener_new();
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, body, (int)len);
	if (!root || json_tokener_get_error(tok) != json_tokener_success)
		goto out;
	/* Only JSON white space may follow the value. */
	for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
		if (body[i] != ' ' && body[i] != '\t' && body[i] != '\n' && body[i] != '\r')
			goto out;
	if (!json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "detail", &detail))
		goto out;
	if (json_object_is_type(detail, json_type_string)) {
		text = json_object_get_string(detail);
		n = (size_t)json_object_get_string_len(detail);
	} else if (json_object_is_type(detail, json_type_object) ||
		   json_object_is_type(detail, json_type_array)) {
		/* FastAPI's validation errors: a list of objects, shown as JSON. */
		text = json_object_to_json_string_ext(
			detail, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		n = text ? strlen(text) : 0;
	}
	if (!text)
		goto out;
	out = malloc(n + 1);
	if (!out)
		goto out;
	/* A string may hold "\u0000": copied by length, made one line. */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)text[i];

		out[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	/* It reaches terminals, the journal and an xattr: no C1 control, no
	 * bidi override, no broken UTF-8; sanitized whole, so that a cut is
	 * known for what it is and gets its dots. */
	n = text_sanitize(out, n + 1, out, n);
	text_cut(out, n, DETAIL_MAX);
out:
	if (root)
		json_object_put(root);
	json_tokener_free(tok);
	return out;
}
