/*
 * apierror: the "detail" of an API error body, made into one safe line.
 *
 * The API answers a refused request with FastAPI's {"detail": ...}; that text
 * ends up in the error a user reads (stderr, the journal, an xattr), so it
 * is bounded and sanitized here.  Pure: fed bytes, returns text.
 */
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "apierror.h"
#include "text.h"

#define DETAIL_MAX 300 /* bytes of "detail" kept for a message */

/* text[0..n) made one bounded, sanitized line, or NULL (no memory). */
static char *one_line(const char *text, size_t n)
{
	bool cut = n > DETAIL_MAX;
	char *out;

	if (cut)
		n = DETAIL_MAX;
	out = calloc(1, n + 4);
	if (!out)
		return NULL;
	/* A string may hold "\u0000": copied by length, made one line. */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)text[i];

		out[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	/* It reaches terminals, the journal and an xattr: no C1 control, no
	 * bidi override, no broken UTF-8 (the cut above may have made one). */
	n = text_sanitize(out, n + 1, out, n);
	/* Cut: never inside a UTF-8 sequence, and marked with "...". */
	if (cut) {
		if (n > DETAIL_MAX - 3)
			n = DETAIL_MAX - 3;
		while (n > 0 && ((unsigned char)out[n] & 0xc0) == 0x80)
			n--;
		memcpy(out + n, "...", 4);
	}
	return out;
}

static bool plain_word(const char *s, size_t n)
{
	if (n == 0 || n >= 64)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= 'A' && s[i] <= 'Z') ||
		      (s[i] >= '0' && s[i] <= '9') || s[i] == '_' || s[i] == '-' || s[i] == '.'))
			return false;
	return true;
}

/* An account gate's {"code", "message", "retryable"}: its message and code. */
static bool read_gate(struct json_object *detail, struct apierror *out)
{
	struct json_object *m, *c, *r;
	const char *code = "";
	size_t clen = 0;
	char *line;

	if (!json_object_is_type(detail, json_type_object) ||
	    !json_object_object_get_ex(detail, "message", &m) ||
	    !json_object_is_type(m, json_type_string))
		return false;
	if (json_object_object_get_ex(detail, "code", &c) &&
	    json_object_is_type(c, json_type_string) &&
	    plain_word(json_object_get_string(c), (size_t)json_object_get_string_len(c))) {
		code = json_object_get_string(c);
		clen = (size_t)json_object_get_string_len(c);
	}
	out->gate = true;
	memcpy(out->code, code, clen);
	out->code[clen] = '\0';
	out->retryable = -1;
	if (json_object_object_get_ex(detail, "retryable", &r) &&
	    json_object_is_type(r, json_type_boolean))
		out->retryable = json_object_get_boolean(r) ? 1 : 0;
	line = one_line(json_object_get_string(m), (size_t)json_object_get_string_len(m));
	if (line && clen && asprintf(&out->text, "%s (%s)", line, code) >= 0)
		free(line);
	else
		out->text = line;
	return true;
}

static struct json_object *parse_body(const char *body, size_t len)
{
	struct json_tokener *tok;
	struct json_object *root = NULL;

	if (!body || len == 0 || len > INT_MAX)
		return NULL;
	if (!(tok = json_tokener_new()))
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, body, (int)len);
	if (root && json_tokener_get_error(tok) == json_tokener_success) {
		/* Only JSON white space may follow the value. */
		for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
			if (body[i] != ' ' && body[i] != '\t' && body[i] != '\n' && body[i] != '\r') {
				json_object_put(root);
				root = NULL;
				break;
			}
	} else if (root) {
		json_object_put(root);
		root = NULL;
	}
	json_tokener_free(tok);
	return root;
}

void apierror_read(const char *body, size_t len, struct apierror *out)
{
	struct json_object *root, *detail;

	memset(out, 0, sizeof(*out));
	out->retryable = -1;
	root = parse_body(body, len);
	if (root && json_object_is_type(root, json_type_object) &&
	    json_object_object_get_ex(root, "detail", &detail) && !read_gate(detail, out))
		out->text = apierror_detail(body, len);
	if (root)
		json_object_put(root);
}

void apierror_clear(struct apierror *e)
{
	free(e->text);
	memset(e, 0, sizeof(*e));
}

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
	if (text)
		out = one_line(text, n);
out:
	if (root)
		json_object_put(root);
	json_tokener_free(tok);
	return out;
}
