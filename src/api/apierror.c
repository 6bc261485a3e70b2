/*
 * apierror: the "detail" of an API error body, made into one safe line.
 *
 * The API answers a refused request with FastAPI's {"detail": ...}; that text
 * ends up in the error a user reads (stderr, the journal, an xattr), so it
 * is bounded and sanitized here.  Pure: fed bytes, returns text.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "apierror.h"
#include "text.h"

#define DETAIL_MAX 300 /* bytes of "detail" kept for a message */

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* The whole of body as one JSON value, or NULL. */
static struct json_object *parse_whole(const char *body, size_t len)
{
	struct json_tokener *tok;
	struct json_object *root;

	if (!body || len == 0 || len > INT_MAX)
		return NULL;
	tok = json_tokener_new();
	if (!tok)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_VALIDATE_UTF8);
	root = json_tokener_parse_ex(tok, body, (int)len);
	if (root && json_tokener_get_error(tok) == json_tokener_success) {
		/* Only JSON white space may follow the value. */
		for (size_t i = json_tokener_get_parse_end(tok); i < len; i++)
			if (!is_space(body[i])) {
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

int apierror_parse(const char *body, size_t len, struct apierror *out)
{
	struct json_object *root = parse_whole(body, len), *detail;
	enum apierror_shape shape = APIERROR_NONE;
	const char *text = NULL;
	size_t n = 0;
	int r = 0;

	memset(out, 0, sizeof(*out));
	if (!root || !json_object_is_type(root, json_type_object) ||
	    !json_object_object_get_ex(root, "detail", &detail))
		goto out;
	switch (json_object_get_type(detail)) {
	case json_type_string:
		shape = APIERROR_STRING;
		text = json_object_get_string(detail);
		n = (size_t)json_object_get_string_len(detail);
		break;
	case json_type_array:
	case json_type_object:
		shape = json_object_is_type(detail, json_type_array) ? APIERROR_LIST
								     : APIERROR_OBJECT;
		text = json_object_to_json_string_ext(
			detail, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
		n = text ? strlen(text) : 0;
		break;
	default:
		goto out;
	}
	/* A string may hold "\u0000": copied by length. */
	if (!text || !(out->text = malloc(n + 1))) {
		r = -ENOMEM;
		goto out;
	}
	memcpy(out->text, text, n);
	out->text[n] = '\0';
	out->len = n;
	out->shape = shape;
out:
	if (root)
		json_object_put(root);
	return r;
}

void apierror_free(struct apierror *out)
{
	free(out->text);
	memset(out, 0, sizeof(*out));
}

/* len bytes of text as one line of at most DETAIL_MAX bytes, malloc'd. */
static char *one_line(const char *text, size_t len)
{
	char *out = calloc(1, len + 1);
	size_t n;

	if (!out)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		unsigned char ch = (unsigned char)text[i];

		out[i] = (ch < 0x20 || ch == 0x7f) ? ' ' : (char)ch;
	}
	/* It reaches terminals, the journal and an xattr: no C1 control, no
	 * bidi override, no broken UTF-8; sanitized whole, so that a cut is
	 * known for what it is and gets its dots. */
	n = text_sanitize(out, len + 1, out, len);
	text_cut(out, n, DETAIL_MAX);
	return out;
}

char *apierror_detail(const char *body, size_t len)
{
	struct apierror e;
	char *line = NULL;

	if (apierror_parse(body, len, &e) == 0 && e.shape != APIERROR_NONE)
		line = one_line(e.text, e.len);
	apierror_free(&e);
	return line;
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

/* An account gate's {"code", "message", "retryable"} into *out; false when
 * the object has no string message. */
static bool read_gate(const struct apierror *e, struct apierror_view *out)
{
	struct json_object *detail = parse_whole(e->text, e->len), *m, *c, *r;
	const char *code = "";
	size_t clen = 0;
	char *line;

	if (!detail || !json_object_object_get_ex(detail, "message", &m) ||
	    !json_object_is_type(m, json_type_string)) {
		if (detail)
			json_object_put(detail);
		return false;
	}
	if (json_object_object_get_ex(detail, "code", &c) &&
	    json_object_is_type(c, json_type_string) &&
	    plain_word(json_object_get_string(c), (size_t)json_object_get_string_len(c))) {
		code = json_object_get_string(c);
		clen = (size_t)json_object_get_string_len(c);
	}
	out->gate = true;
	memcpy(out->code, code, clen);
	out->code[clen] = '\0';
	if (json_object_object_get_ex(detail, "retryable", &r) &&
	    json_object_is_type(r, json_type_boolean))
		out->retryable = json_object_get_boolean(r) ? 1 : 0;
	line = one_line(json_object_get_string(m), (size_t)json_object_get_string_len(m));
	if (line && clen && asprintf(&out->line, "%s (%s)", line, out->code) >= 0)
		free(line);
	else
		out->line = line;
	json_object_put(detail);
	return true;
}

void apierror_view(const char *body, size_t len, struct apierror_view *out)
{
	struct apierror e;

	memset(out, 0, sizeof(*out));
	out->retryable = -1;
	if (apierror_parse(body, len, &e) < 0 || e.shape == APIERROR_NONE)
		return;
	if (e.shape != APIERROR_OBJECT || !read_gate(&e, out))
		out->line = one_line(e.text, e.len);
	apierror_free(&e);
}

void apierror_view_free(struct apierror_view *v)
{
	free(v->line);
	memset(v, 0, sizeof(*v));
	v->retryable = -1;
}
