/*
 * keylist: the body of GET /v1/dev/keys -> keys with every file rendered.
 *
 * Each file's bytes are built once here, so the filesystem answers stat with
 * an exact size and read with a memcpy.  Nothing in this file keeps state or
 * reads the clock: it is fed bytes and returns a list, which is what lets the
 * unit test and the fuzzer drive it alone.
 */
#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "errmsg.h"
#include "fnv1a.h"
#include "jsonscan.h"
#include "keyfield.h"
#include "keylist.h"
#include "keyname.h"
#include "text.h"
#include "timestamp.h"

const char *const key_field_names[FIELD_COUNT] = {
	[FIELD_NAME] = "name",
	[FIELD_KEY_PREFIX] = "key_prefix",
	[FIELD_CREATED_AT] = "created_at",
	[FIELD_LAST_USED_AT] = "last_used_at",
	[FIELD_SCOPES] = "scopes",
};

/* Ids in warnings: at most this many bytes shown, each up to 4 characters. */
#define LOG_ID_MAX 64
#define LOG_ID_BUF (LOG_ID_MAX * 4 + sizeof("..."))

#define WARN_BUF 640

struct parser {
	keylist_warn_fn warn;
	void *ctx;
};

static void warnf(const struct parser *p, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void warnf(const struct parser *p, const char *fmt, ...)
{
	char msg[WARN_BUF];
	va_list ap;

	if (!p->warn)
		return;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* Whatever of the body a warning quotes stays one safe line. */
	text_sanitize(msg, sizeof(msg), msg, strlen(msg));
	p->warn(p->ctx, msg);
}

/* An id as a log can show it: one line, printable ASCII, bounded. */
static const char *log_id(const char *id, size_t len, char buf[LOG_ID_BUF])
{
	static const char hex[] = "0123456789abcdef";
	size_t n = len < LOG_ID_MAX ? len : LOG_ID_MAX, o = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)id[i];

		if (c >= 0x20 && c < 0x7f && c != '"' && c != '\\') {
			buf[o++] = (char)c;
		} else {
			buf[o++] = '\\';
			buf[o++] = 'x';
			buf[o++] = hex[c >> 4];
			buf[o++] = hex[c & 0xf];
		}
	}
	if (n < len) {
		memcpy(buf + o, "...", 3);
		o += 3;
	}
	buf[o] = '\0';
	return buf;
}

static void key_free(struct parsed_key *key)
{
	free(key->id);
	for (int f = 0; f < FIELD_COUNT; f++)
		free(key->file[f].data);
	memset(key, 0, sizeof(*key));
}

/*
 * Append entry number index to list, whose keys[] has room for one more.
 * Returns 1 when taken, 0 when skipped with a warning, or -ENOMEM.
 */
static int take_key(const struct parser *p, size_t index, struct json_object *entry,
		    struct keylist *list)
{
	struct json_object *value[FIELD_COUNT], *idv = NULL;
	bool present[FIELD_COUNT];
	char why[160], idbuf[LOG_ID_BUF];
	struct parsed_key *key;
	const char *id;
	size_t id_len;
	int r = 0;

	if (!json_object_is_type(entry, json_type_object)) {
		warnf(p, "skipping key #%zu: it is %s, not an object", index,
		      keyfield_type_desc(json_object_get_type(entry)));
		return 0;
	}
	if (!json_object_object_get_ex(entry, "id", &idv)) {
		warnf(p, "skipping key #%zu: it has no \"id\"", index);
		return 0;
	}
	if (!json_object_is_type(idv, json_type_string)) {
		warnf(p, "skipping key #%zu: \"id\" is %s, not a string", index,
		      keyfield_type_desc(json_object_get_type(idv)));
		return 0;
	}
	id = json_object_get_string(idv);
	id_len = (size_t)json_object_get_string_len(idv);

	/* Check every field before allocating, so a skip frees nothing. */
	for (int f = 0; f < FIELD_COUNT; f++) {
		value[f] = NULL;
		present[f] = json_object_object_get_ex(entry, key_field_names[f], &value[f]);
		if (keyfield_is_bad((enum key_field)f, value[f], why, sizeof(why))) {
			warnf(p, "skipping key #%zu (id \"%s\"): %s", index,
			      log_id(id, id_len, idbuf), why);
			return 0;
		}
	}

	/* Zeroed one at a time: the table only grows as far as it is used. */
	key = &list->keys[list->count];
	memset(key, 0, sizeof(*key));
	key->id = malloc(id_len + 1);
	if (!key->id)
		return -ENOMEM;
	memcpy(key->id, id, id_len);
	key->id[id_len] = '\0';
	key->id_len = id_len;
	keyname_escape(id, id_len, key->name);
	/* The API sends null scopes for legacy keys only, [] for a key with
	 * none: both give an empty file, so the difference is kept here. */
	key->legacy = present[FIELD_SCOPES] && !value[FIELD_SCOPES];

	for (int f = 0; f < FIELD_COUNT && r == 0; f++)
		r = f == FIELD_SCOPES ? keyfield_render_scopes(value[f], &key->file[f])
				      : keyfield_render_string(value[f], &key->file[f]);
	if (r < 0) {
		key_free(key);
		return r;
	}

	if (value[FIELD_CREATED_AT])
		timestamp_parse(json_object_get_string(value[FIELD_CREATED_AT]),
				(size_t)json_object_get_string_len(value[FIELD_CREATED_AT]),
				&key->created);
	if (!value[FIELD_LAST_USED_AT] ||
	    !timestamp_parse(json_object_get_string(value[FIELD_LAST_USED_AT]),
			     (size_t)json_object_get_string_len(value[FIELD_LAST_USED_AT]),
			     &key->last_used))
		key->last_used = key->created;
	list->count++;
	return 1;
}

struct name_ref {
	uint64_t hash;
	size_t pos; /* in keys[], which is in API order */
	const char *name;
};

/* What drop_duplicates learns of keys[pos]. */
struct dup_info {
	size_t first; /* position of the key that owns the name */
	bool same_id; /* the owner has the very same id (not just the name) */
};

static int name_ref_cmp(const void *a, const void *b)
{
	const struct name_ref *x = a, *y = b;
	int c;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->pos < y->pos ? -1 : x->pos > y->pos;
}

/*
 * Drop keys whose name an earlier key already has.  Sorting by (hash, name,
 * position) puts each name's first holder at the head of its run: O(n log n)
 * whatever the input, where a hash set could be driven quadratic.
 */
static int drop_duplicates(const struct parser *p, struct keylist *list, const size_t *api_index)
{
	char idbuf[LOG_ID_BUF];
	struct name_ref *refs;
	struct dup_info *dup;
	size_t n = list->count, w = 0;

	if (n < 2)
		return 0;
	refs = malloc(n * sizeof(*refs));
	dup = malloc(n * sizeof(*dup));
	if (!refs || !dup) {
		free(refs);
		free(dup);
		return -ENOMEM;
	}
	for (size_t i = 0; i < n; i++) {
		const char *name = list->keys[i].name;

		refs[i].hash = fnv1a64(name, strlen(name));
		refs[i].pos = i;
		refs[i].name = name;
		dup[i].first = i;
		dup[i].same_id = false;
	}
	qsort(refs, n, sizeof(*refs), name_ref_cmp);
	for (size_t i = 1; i < n; i++) {
		const struct name_ref *a = &refs[i - 1], *b = &refs[i];
		const struct parsed_key *owner, *key = &list->keys[b->pos];

		if (a->hash != b->hash || strcmp(a->name, b->name) != 0)
			continue;
		dup[b->pos].first = dup[a->pos].first;
		owner = &list->keys[dup[b->pos].first];
		dup[b->pos].same_id = owner->id_len == key->id_len &&
				      memcmp(owner->id, key->id, key->id_len) == 0;
	}
	free(refs);

	/* Warn and compact in API order. */
	for (size_t i = 0; i < n; i++) {
		struct parsed_key *key = &list->keys[i];

		if (dup[i].first == i) {
			if (w != i)
				list->keys[w] = *key;
			w++;
			continue;
		}
		warnf(p, "skipping key #%zu (id \"%s\"): %s key #%zu", api_index[i],
		      log_id(key->id, key->id_len, idbuf),
		      dup[i].same_id ? "duplicate id, first seen as"
				     : "its directory name is already that of",
		      api_index[dup[i].first]);
		key_free(key);
		list->skipped++;
	}
	list->count = w;
	free(dup);
	return 0;
}

/*
 * Why a body that does not start with '[' is refused: parsed whole, it is
 * either not JSON at all or JSON of another type.
 */
static void explain_not_array(const char *body, size_t len, char *err, size_t errlen)
{
	struct json_tokener *tok;
	struct json_object *obj;
	enum json_tokener_error jerr;
	size_t end;

	tok = json_tokener_new_ex(KEYLIST_MAX_DEPTH);
	if (!tok) {
		errmsg_set(err, errlen, "response is not a JSON array");
		return;
	}
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	obj = json_tokener_parse_ex(tok, body, (int)len);
	jerr = json_tokener_get_error(tok);
	end = json_tokener_get_parse_end(tok);
	if (jerr == json_tokener_continue) {
		/* A NUL is json-c's end of input: it ends a bare number. */
		obj = json_tokener_parse_ex(tok, "", 1);
		jerr = json_tokener_get_error(tok);
		end = len;
	}
	json_tokener_free(tok);

	while (end < len && jsonscan_is_space(body[end]))
		end++;
	if (jerr == json_tokener_error_depth)
		errmsg_set(err, errlen, "response is nested deeper than %d levels",
			   KEYLIST_MAX_DEPTH);
	else if (jerr != json_tokener_success)
		errmsg_set(err, errlen, "response is not valid JSON: %s at byte %zu",
			   json_tokener_error_desc(jerr), end);
	else if (end < len)
		errmsg_set(err, errlen, "response is not valid JSON: unexpected data at byte %zu",
			   end);
	else
		errmsg_set(err, errlen, "response is not a JSON array (it is %s)",
			   keyfield_type_desc(json_object_get_type(obj)));
	json_object_put(obj);
}

/* Make room for one more key. */
static int grow(struct keylist *list, size_t **api_index, size_t *cap)
{
	struct parsed_key *keys;
	size_t *index, n;

	if (list->count < *cap)
		return 0;
	n = *cap ? *cap * 2 : 64;
	keys = realloc(list->keys, n * sizeof(*keys));
	if (!keys)
		return -ENOMEM;
	list->keys = keys;
	index = realloc(*api_index, n * sizeof(*index));
	if (!index)
		return -ENOMEM;
	*api_index = index;
	*cap = n;
	return 0;
}

/* The walk over the top-level array, one element at a time. */
struct walk {
	const struct parser *p;
	const char *body;
	size_t len;
	size_t pos;   /* where the element, or what follows it, starts */
	size_t index; /* the element's place in the array, from 0 */
	size_t cap;   /* room in list->keys and *api_index */
	struct json_tokener *tok;
	struct keylist *list;
	size_t **api_index;
	char *err;
	size_t errlen;
};

static int walk_fail(struct walk *w, int r, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int walk_fail(struct walk *w, int r, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	errmsg_vset(w->err, w->errlen, fmt, ap);
	va_end(ap);
	return r;
}

/*
 * An element nested deeper than json-c was let go: skipped whole.  Unknown
 * fields are ignored, however deep: one such entry is skipped, the others
 * are served.  Only an element that never ends refuses the body.
 */
static int skip_deep(struct walk *w)
{
	size_t end = jsonscan_skip_element(w->body, w->pos, w->len);

	if (!end)
		return walk_fail(w, -EBADMSG, "response is nested deeper than %d levels",
				 KEYLIST_MAX_DEPTH);
	if (w->index >= KEYLIST_MAX_ENTRIES)
		return walk_fail(w, -EBADMSG, "response has more than %d entries",
				 KEYLIST_MAX_ENTRIES);
	warnf(w->p, "skipping key #%zu: nested deeper than %d levels", w->index, KEYLIST_MAX_DEPTH);
	w->list->skipped++;
	w->pos = end;
	return 0;
}

/* entry, parsed from the size bytes at pos, taken into the list or skipped
 * with a warning.  0 or -ENOMEM. */
static int add_entry(struct walk *w, struct json_object *entry, size_t size)
{
	int r = grow(w->list, w->api_index, &w->cap);

	if (r == 0 && jsonscan_has_nul_name(w->body + w->pos, size))
		warnf(w->p, "skipping key #%zu: a field name holds a NUL byte", w->index);
	else if (r == 0)
		r = take_key(w->p, w->index, entry, w->list);
	if (r < 0)
		return walk_fail(w, r, "out of memory");
	if (r == 0)
		w->list->skipped++;
	else
		(*w->api_index)[w->list->count - 1] = w->index;
	return 0;
}

/* The element at pos, parsed and added (or skipped); pos moves past it. */
static int parse_element(struct walk *w)
{
	struct json_object *entry;
	enum json_tokener_error jerr;
	size_t size;
	int r;

	json_tokener_reset(w->tok);
	entry = json_tokener_parse_ex(w->tok, w->body + w->pos, (int)(w->len - w->pos));
	jerr = json_tokener_get_error(w->tok);
	if (jerr == json_tokener_error_depth)
		return skip_deep(w);
	size = json_tokener_get_parse_end(w->tok);
	if (jerr == json_tokener_continue) /* the body ended inside this element */
		return walk_fail(w, -EBADMSG,
				 "response is not valid JSON: unexpected end of data at byte %zu",
				 w->len);
	if (jerr != json_tokener_success)
		return walk_fail(w, -EBADMSG, "response is not valid JSON: %s at byte %zu",
				 json_tokener_error_desc(jerr), w->pos + size);
	/* Checked on a whole element, so a trailing comma still reads as bad
	 * JSON; nothing past it is parsed. */
	if (w->index >= KEYLIST_MAX_ENTRIES)
		r = walk_fail(w, -EBADMSG, "response has more than %d entries",
			      KEYLIST_MAX_ENTRIES);
	else
		r = add_entry(w, entry, size);
	w->pos += size;
	json_object_put(entry);
	return r;
}

/* After an element: a ',' and another element (*more), or the ']'. */
static int next_element(struct walk *w, bool *more)
{
	w->pos = jsonscan_skip_space(w->body, w->pos, w->len);
	*more = w->pos < w->len && w->body[w->pos] == ',';
	if (*more) {
		w->pos = jsonscan_skip_space(w->body, w->pos + 1, w->len);
		w->index++;
		return 0;
	}
	if (w->pos < w->len && w->body[w->pos] == ']')
		return 0;
	return walk_fail(w, -EBADMSG, "response is not valid JSON: unexpected %s at byte %zu",
			 w->pos == w->len ? "end of data" : "character", w->pos);
}

/*
 * Walk the top-level array here and hand each element to json-c alone.  A
 * whole-body tree of 100 000 keys costs more in malloc and free than the
 * parsing itself; one element's tree is freed while still in cache.  json-c
 * gets the depth left under the array, so a flood of '[' stops at 16 (and
 * an entry nested deeper is skipped by jsonscan_skip_element).
 */
static int parse_elements(const struct parser *p, const char *body, size_t len, size_t open,
			  struct keylist *list, size_t **api_index, char *err, size_t errlen)
{
	struct walk w = { .p = p,
			  .body = body,
			  .len = len,
			  .list = list,
			  .api_index = api_index,
			  .err = err,
			  .errlen = errlen };
	bool more;
	int r = 0;

	w.tok = json_tokener_new_ex(KEYLIST_MAX_DEPTH - 1);
	if (!w.tok)
		return walk_fail(&w, -ENOMEM, "out of memory");
	json_tokener_set_flags(w.tok, JSON_TOKENER_STRICT | JSON_TOKENER_ALLOW_TRAILING_CHARS);
	w.pos = jsonscan_skip_space(body, open + 1, len);
	more = w.pos >= len || body[w.pos] != ']';
	while (more && r == 0) {
		r = parse_element(&w);
		if (r == 0)
			r = next_element(&w, &more);
	}
	json_tokener_free(w.tok);
	if (r < 0)
		return r;
	/* At the ']': white space may follow the array; a NUL or anything
	 * else may not. */
	w.pos = jsonscan_skip_space(body, w.pos + 1, len);
	if (w.pos < len)
		return walk_fail(
			&w, -EBADMSG,
			"response is not valid JSON: unexpected data at byte %zu after the array",
			w.pos);
	return 0;
}

int keylist_parse(const char *body, size_t len, struct keylist *out, keylist_warn_fn warn,
		  void *ctx, char *err, size_t errlen)
{
	const struct parser p = { .warn = warn, .ctx = ctx };
	struct keylist list = { 0 };
	size_t *api_index = NULL, start;
	int r;

	memset(out, 0, sizeof(*out));
	if (err && errlen)
		err[0] = '\0';

	start = len ? jsonscan_skip_space(body, 0, len) : 0;
	if (start == len) {
		errmsg_set(err, errlen, "response is empty");
		return -EBADMSG;
	}
	if (len > INT_MAX) {
		errmsg_set(err, errlen, "response is too large (%zu bytes)", len);
		return -EBADMSG;
	}
	if (body[start] != '[') {
		explain_not_array(body, len, err, errlen);
		return -EBADMSG;
	}

	r = parse_elements(&p, body, len, start, &list, &api_index, err, errlen);
	if (r == 0) {
		r = drop_duplicates(&p, &list, api_index);
		if (r < 0)
			errmsg_set(err, errlen, "out of memory");
	}
	free(api_index);
	if (r < 0) {
		keylist_free(&list);
		return r;
	}
	*out = list;
	return 0;
}

void keylist_free(struct keylist *list)
{
	for (size_t i = 0; i < list->count; i++)
		key_free(&list->keys[i]);
	free(list->keys);
	memset(list, 0, sizeof(*list));
}
