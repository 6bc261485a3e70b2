/*
 * jsonstrict: the sign-in documents are small, flat and untrusted: a
 * session file anyone might have edited, answers from servers.  Parse
 * them whole and strictly, look fields up with their types checked, and
 * never leave a token behind in freed memory.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>
#include <json-c/printbuf.h>

#include "errmsg.h"
#include "jsonstrict.h"
#include "text.h"

static bool is_space(char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/* json-c keeps string pieces in its printbuf; wipe it before it is freed. */
static void tokener_free_wiped(struct json_tokener *tok)
{
	if (tok->pb && tok->pb->buf)
		explicit_bzero(tok->pb->buf, (size_t)tok->pb->size);
	json_tokener_free(tok);
}

struct json_object *jsonstrict_parse(const char *buf, size_t len, char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end;

	errmsg_set(err, errlen, "%s", "");
	if (len == 0 || len > 0x7fffffff) {
		errmsg_set(err, errlen, len ? "too large" : "empty");
		return NULL;
	}
	if (memchr(buf, '\0', len)) {
		errmsg_set(err, errlen, "not valid JSON: a NUL byte at byte %zu",
			   (size_t)((const char *)memchr(buf, '\0', len) - buf));
		return NULL;
	}
	tok = json_tokener_new_ex(JSONSTRICT_MAX_DEPTH);
	if (!tok) {
		errmsg_set(err, errlen, "out of memory");
		return NULL;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS |
					    JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, buf, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	tokener_free_wiped(tok);
	while (end < len && is_space(buf[end]))
		end++;
	if (jerr == json_tokener_continue) {
		/* Only an object is wanted, and a whole one always ends in '}'. */
		errmsg_set(err, errlen, "not valid JSON: it ends too early");
	} else if (jerr == json_tokener_error_depth) {
		errmsg_set(err, errlen, "not valid JSON: nested deeper than %d levels",
			   JSONSTRICT_MAX_DEPTH);
	} else if (jerr != json_tokener_success) {
		errmsg_set(err, errlen, "not valid JSON: %s at byte %zu",
			   json_tokener_error_desc(jerr), end);
	} else if (end < len) {
		errmsg_set(err, errlen, "not valid JSON: unexpected data at byte %zu", end);
	} else if (!json_object_is_type(obj, json_type_object)) {
		errmsg_set(err, errlen, "not a JSON object");
	} else {
		return obj;
	}
	jsonstrict_put(obj);
	return NULL;
}

static void wipe_tree(struct json_object *obj)
{
	switch (json_object_get_type(obj)) {
	case json_type_string:
		/* The object owns its copy; const only keeps callers honest. */
		explicit_bzero((char *)json_object_get_string(obj),
			       (size_t)json_object_get_string_len(obj));
		break;
	case json_type_object: {
		struct json_object_iterator it = json_object_iter_begin(obj);
		struct json_object_iterator end = json_object_iter_end(obj);

		for (; !json_object_iter_equal(&it, &end); json_object_iter_next(&it))
			wipe_tree(json_object_iter_peek_value(&it));
		break;
	}
	case json_type_array:
		for (size_t i = 0; i < json_object_array_length(obj); i++)
			wipe_tree(json_object_array_get_idx(obj, i));
		break;
	default:
		break;
	}
}

void jsonstrict_put(struct json_object *obj)
{
	if (!obj)
		return;
	wipe_tree(obj);
	json_object_put(obj);
}

int jsonstrict_string(struct json_object *obj, const char *key, size_t max,
		      enum jsonstrict_chars chars, char **out, char *err, size_t errlen)
{
	struct json_object *val;
	const unsigned char *s;
	size_t len;

	*out = NULL;
	if (!json_object_object_get_ex(obj, key, &val)) {
		errmsg_set(err, errlen, "no \"%s\"", key);
		return -ENOENT;
	}
	if (!json_object_is_type(val, json_type_string)) {
		errmsg_set(err, errlen, "\"%s\" is not a string", key);
		return -EBADMSG;
	}
	s = (const unsigned char *)json_object_get_string(val);
	len = (size_t)json_object_get_string_len(val);
	if (len == 0) {
		errmsg_set(err, errlen, "\"%s\" is empty", key);
		return -EBADMSG;
	}
	if (len > max) {
		errmsg_set(err, errlen, "\"%s\" is longer than %zu bytes", key, max);
		return -EBADMSG;
	}
	for (size_t i = 0; i < len; i++) {
		bool ok = chars == JSONSTRICT_TOKEN ? s[i] >= 0x21 && s[i] <= 0x7e
						    : s[i] >= 0x20 && s[i] != 0x7f;
		if (!ok) {
			errmsg_set(err, errlen, "\"%s\" holds a character not allowed there", key);
			return -EBADMSG;
		}
	}
	*out = malloc(len + 1);
	if (!*out) {
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	memcpy(*out, s, len + 1);
	return 0;
}

char *jsonstrict_quote(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(6 * n + 3), *o = out;

	if (!out)
		return NULL;
	*o++ = '"';
	for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
		if (*p == '"' || *p == '\\') {
			*o++ = '\\';
			*o++ = (char)*p;
		} else if (*p < 0x20 || *p == 0x7f) {
			o += sprintf(o, "\\u%04x", *p);
		} else {
			*o++ = (char)*p;
		}
	}
	*o++ = '"';
	*o = '\0';
	return out;
}

void jsonstrict_clean(const char *text, size_t len, char *out, size_t outlen)
{
	/* Sanitized whole first (never longer than the text), so that a cut
	 * is known for what it is and gets its dots. */
	char *clean = outlen > 4 ? malloc(len + 1) : NULL;
	size_t n;

	if (!clean) {
		text_sanitize(out, outlen, text, len);
		return;
	}
	n = text_sanitize(clean, len + 1, text, len);
	n = text_cut(clean, n, outlen - 1);
	memcpy(out, clean, n + 1);
	free(clean);
}
