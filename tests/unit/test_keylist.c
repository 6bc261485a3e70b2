/* Unit test of keylist: JSON body -> rendered keys, names, times. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "keylist.h"
#include "test.h"

/* A body given as a literal, NUL bytes and all. */
#define LIT(s) (s), (sizeof(s) - 1)

struct warnings {
	size_t count;
	char last[1024];
};

/* Every warning must be one printable line: it goes to syslog as is. */
static void record_warning(void *ctx, const char *message)
{
	struct warnings *w = ctx;

	for (const char *c = message; *c; c++)
		test_assert(*c >= 0x20 && *c < 0x7f);
	test_assert(strlen(message) < 512);
	w->count++;
	snprintf(w->last, sizeof(w->last), "%s", message);
}

static void parse_ok(const char *body, size_t len, struct keylist *list, struct warnings *w)
{
	char err[256] = "untouched";

	memset(w, 0, sizeof(*w));
	test_assert(keylist_parse(body, len, list, record_warning, w, err, sizeof(err)) == 0);
	test_assert(err[0] == '\0');
}

/* Parse must fail with -EBADMSG, a one-line reason and *out zeroed. */
static void parse_bad(const char *body, size_t len, const char *reason)
{
	struct keylist list;
	char err[256] = "";

	memset(&list, 0xa5, sizeof(list));
	test_assert(keylist_parse(body, len, &list, NULL, NULL, err, sizeof(err)) == -EBADMSG);
	test_assert(list.count == 0 && list.keys == NULL && list.skipped == 0);
	test_assert(err[0] != '\0');
	test_assert(strchr(err, '\n') == NULL);
	if (reason && !strstr(err, reason))
		fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, reason);
	test_assert(!reason || strstr(err, reason));
	keylist_free(&list);
	/* No err buffer at all is fine too. */
	test_assert(keylist_parse(body, len, &list, NULL, NULL, NULL, 0) == -EBADMSG);
	keylist_free(&list);
}

static bool text_is(const struct key_text *t, const char *s, size_t len)
{
	if (len == 0)
		return t->len == 0 && t->data == NULL;
	return t->len == len && memcmp(t->data, s, len) == 0;
}

#define TEXT_IS(t, s) text_is((t), LIT(s))

static bool ts_is(struct timespec ts, time_t sec, long nsec)
{
	return ts.tv_sec == sec && ts.tv_nsec == nsec;
}

static void test_field_names(void)
{
	test_assert(strcmp(key_field_names[FIELD_NAME], "name") == 0);
	test_assert(strcmp(key_field_names[FIELD_KEY_PREFIX], "key_prefix") == 0);
	test_assert(strcmp(key_field_names[FIELD_CREATED_AT], "created_at") == 0);
	test_assert(strcmp(key_field_names[FIELD_LAST_USED_AT], "last_used_at") == 0);
	test_assert(strcmp(key_field_names[FIELD_SCOPES], "scopes") == 0);
}

/* The layout example of CONTRACT.md, plus null and [] scopes. */
static void test_contract_example(void)
{
	static const char body[] = "[{\"id\":\"3f2b1c9e-8a7d-4e6f-b5a4-0c1d2e3f4a5b\","
				   "\"name\":\"My Analytics Dashboard\","
				   "\"key_prefix\":\"omi_dev_abcd...wxyz\","
				   "\"created_at\":\"2025-01-15T10:30:00.123456Z\","
				   "\"last_used_at\":null,"
				   "\"scopes\":[\"conversations:read\",\"memories:read\"],"
				   "\"future_field\":{\"nested\":[1,2,{\"x\":null}]}},"
				   " {\"id\":\"0b6e3c52-8f4d-4a8e-9d7a-3f1c2b5e6a70\","
				   "\"name\":\"Legacy Developer API key\","
				   "\"key_prefix\":\"omi_dev_legacy\","
				   "\"created_at\":\"2025-01-15T10:30:00Z\","
				   "\"last_used_at\":\"2025-01-20T14:22:00Z\","
				   "\"scopes\":null},\n"
				   " {\"id\":\"k3\",\"name\":\"\",\"scopes\":[]},"
				   " {\"id\":\"k4\"}]\n";
	struct warnings w;
	struct keylist list;
	const struct parsed_key *k;

	parse_ok(LIT(body), &list, &w);
	test_assert(list.count == 4);
	test_assert(list.skipped == 0 && w.count == 0);

	k = &list.keys[0];
	test_assert(k->id_len == 36 && strcmp(k->id, "3f2b1c9e-8a7d-4e6f-b5a4-0c1d2e3f4a5b") == 0);
	test_assert(strcmp(k->name, k->id) == 0);
	test_assert(TEXT_IS(&k->file[FIELD_NAME], "My Analytics Dashboard\n"));
	test_assert(TEXT_IS(&k->file[FIELD_KEY_PREFIX], "omi_dev_abcd...wxyz\n"));
	test_assert(TEXT_IS(&k->file[FIELD_CREATED_AT], "2025-01-15T10:30:00.123456Z\n"));
	test_assert(TEXT_IS(&k->file[FIELD_LAST_USED_AT], ""));
	test_assert(TEXT_IS(&k->file[FIELD_SCOPES], "conversations:read\nmemories:read\n"));
	test_assert(!k->legacy);
	test_assert(ts_is(k->created, 1736937000, 123456000));
	test_assert(ts_is(k->last_used, 1736937000, 123456000));

	k = &list.keys[1];
	test_assert(strcmp(k->name, "0b6e3c52-8f4d-4a8e-9d7a-3f1c2b5e6a70") == 0);
	test_assert(TEXT_IS(&k->file[FIELD_NAME], "Legacy Developer API key\n"));
	test_assert(TEXT_IS(&k->file[FIELD_KEY_PREFIX], "omi_dev_legacy\n"));
	test_assert(TEXT_IS(&k->file[FIELD_CREATED_AT], "2025-01-15T10:30:00Z\n"));
	test_assert(TEXT_IS(&k->file[FIELD_LAST_USED_AT], "2025-01-20T14:22:00Z\n"));
	test_assert(TEXT_IS(&k->file[FIELD_SCOPES], ""));
	test_assert(k->legacy); /* null scopes, and only that, is a legacy key */
	test_assert(ts_is(k->created, 1736937000, 0));
	test_assert(ts_is(k->last_used, 1737382920, 0));

	/* An empty string is still a value: one newline. */
	k = &list.keys[2];
	test_assert(TEXT_IS(&k->file[FIELD_NAME], "\n"));
	test_assert(TEXT_IS(&k->file[FIELD_SCOPES], ""));
	test_assert(!k->legacy && !list.keys[3].legacy); /* [] and no scopes at all */

	/* Missing fields give empty files and zero times. */
	k = &list.keys[3];
	for (int f = 0; f < FIELD_COUNT; f++)
		test_assert(TEXT_IS(&k->file[f], ""));
	test_assert(ts_is(k->created, 0, 0) && ts_is(k->last_used, 0, 0));

	keylist_free(&list);
	test_assert(list.count == 0 && list.keys == NULL);
}

/* Values are shown byte for byte: NULs, newlines, invalid UTF-8. */
static void test_raw_bytes(void)
{
	static const char body[] = "[{\"id\":\"x\\u0000y\",\"name\":\"a\\u0000b\","
				   "\"key_prefix\":\"line1\\nline2\\ttab\","
				   "\"created_at\":\"\xff\xfe"
				   "bad\","
				   "\"scopes\":[\"a\\u0000\",\"\",\"\\u00e9\\ud83d\\ude00\"]}]";
	struct warnings w;
	struct keylist list;
	const struct parsed_key *k;

	parse_ok(LIT(body), &list, &w);
	test_assert(list.count == 1);
	k = &list.keys[0];
	test_assert(k->id_len == 3 && memcmp(k->id, "x\0y", 4) == 0);
	test_assert(strcmp(k->name, "%x%00y") == 0);
	test_assert(TEXT_IS(&k->file[FIELD_NAME], "a\0b\n"));
	test_assert(TEXT_IS(&k->file[FIELD_KEY_PREFIX], "line1\nline2\ttab\n"));
	test_assert(TEXT_IS(&k->file[FIELD_CREATED_AT], "\xff\xfe"
							"bad\n"));
	test_assert(TEXT_IS(&k->file[FIELD_SCOPES], "a\0\n\n\xc3\xa9\xf0\x9f\x98\x80\n"));
	/* Not a time: zero, and last_used follows. */
	test_assert(ts_is(k->created, 0, 0) && ts_is(k->last_used, 0, 0));
	keylist_free(&list);
}

/* Each entry alone: skipped with one warning naming index and field. */
static void check_skipped(const char *entry, const char *mention)
{
	char body[512];
	struct warnings w;
	struct keylist list;
	int n;

	n = snprintf(body, sizeof(body), "[{\"id\":\"good\"},%s,{\"id\":\"good2\"}]", entry);
	test_assert(n > 0 && (size_t)n < sizeof(body));
	parse_ok(body, (size_t)n, &list, &w);
	test_assert(list.count == 2);
	test_assert(strcmp(list.keys[0].name, "good") == 0);
	test_assert(strcmp(list.keys[1].name, "good2") == 0);
	test_assert(list.skipped == 1);
	test_assert(w.count == 1);
	test_assert(strstr(w.last, "#1") != NULL);
	if (!strstr(w.last, mention))
		fprintf(stderr, "warning \"%s\" lacks \"%s\"\n", w.last, mention);
	test_assert(strstr(w.last, mention) != NULL);
	keylist_free(&list);
}

static void test_wrong_types(void)
{
	check_skipped("{\"id\":\"k\",\"name\":5}", "\"name\"");
	check_skipped("{\"id\":\"k\",\"name\":true}", "\"name\"");
	check_skipped("{\"id\":\"k\",\"name\":[\"x\"]}", "\"name\"");
	check_skipped("{\"id\":\"k\",\"key_prefix\":{}}", "\"key_prefix\"");
	check_skipped("{\"id\":\"k\",\"created_at\":1736937000}", "\"created_at\"");
	check_skipped("{\"id\":\"k\",\"last_used_at\":false}", "\"last_used_at\"");
	check_skipped("{\"id\":\"k\",\"scopes\":\"x\"}", "\"scopes\"");
	check_skipped("{\"id\":\"k\",\"scopes\":{}}", "\"scopes\"");
	check_skipped("{\"id\":\"k\",\"scopes\":[1]}", "\"scopes\"[0]");
	check_skipped("{\"id\":\"k\",\"scopes\":[\"a\",null]}", "\"scopes\"[1]");
	check_skipped("{\"id\":\"k\",\"scopes\":[[\"a\"]]}", "\"scopes\"[0]");
	/* The id is named too. */
	check_skipped("{\"id\":\"the-id\",\"name\":5}", "the-id");
}

static void test_bad_entries(void)
{
	check_skipped("1", "not an object");
	check_skipped("\"id\"", "not an object");
	check_skipped("null", "not an object");
	check_skipped("[{\"id\":\"k\"}]", "not an object");
	check_skipped("true", "not an object");
	check_skipped("{}", "\"id\"");
	check_skipped("{\"name\":\"no id\"}", "\"id\"");
	check_skipped("{\"id\":null}", "\"id\"");
	check_skipped("{\"id\":42}", "\"id\"");
	check_skipped("{\"id\":4.2}", "\"id\"");
	check_skipped("{\"id\":[\"k\"]}", "\"id\"");
	check_skipped("{\"id\":{\"v\":\"k\"}}", "\"id\"");
	/* json-c cuts field names at NUL: "id\u0000" must not pass for "id". */
	check_skipped("{\"id\":\"k\",\"id\\u0000\":\"forged\"}", "NUL");
	check_skipped("{\"id\":\"k\",\"name\\u0000x\" : \"forged\"}", "NUL");
}

/* \u0000 in values, or escaped quotes before it, is no field name. */
static void test_nul_in_values(void)
{
	static const char body[] =
		"[{\"id\":\"a\\u0000b\",\"name\":\"x\\\"\\u0000\\\":\",\"extra\":[\"\\u0000\"]}]";
	struct warnings w;
	struct keylist list;

	parse_ok(body, sizeof(body) - 1, &list, &w);
	test_assert(list.count == 1 && list.skipped == 0 && w.count == 0);
	test_assert(list.keys[0].id_len == 3 && memcmp(list.keys[0].id, "a\0b", 3) == 0);
	keylist_free(&list);
}

/* Several bad entries at once; unknown fields never matter. */
static void test_mixed_entries(void)
{
	static const char body[] =
		"[1,{\"id\":\"a\",\"name\":5},{\"id\":\"b\",\"extra\":5,\"Name\":7},"
		"null,{\"id\":7},{\"id\":\"c\",\"scopes\":[\"x\",2]},{\"id\":\"d\"}]";
	struct warnings w;
	struct keylist list;

	parse_ok(LIT(body), &list, &w);
	test_assert(list.count == 2);
	test_assert(strcmp(list.keys[0].id, "b") == 0);
	test_assert(strcmp(list.keys[1].id, "d") == 0);
	test_assert(list.skipped == 5 && w.count == 5);
	keylist_free(&list);

	/* warn may be NULL. */
	test_assert(keylist_parse(LIT(body), &list, NULL, NULL, NULL, 0) == 0);
	test_assert(list.count == 2 && list.skipped == 5);
	keylist_free(&list);
}

/* Ids in warnings: printable, quoted safely, cut short. */
static void test_warning_ids(void)
{
	char body[4096];
	struct warnings w;
	struct keylist list;
	size_t n = 0;

	n += (size_t)snprintf(body + n, sizeof(body) - n,
			      "[{\"id\":\"evil\\n\\u0000\\u001b[31m\\\"\\\\\xff");
	for (int i = 0; i < 1000; i++)
		body[n++] = 'z';
	n += (size_t)snprintf(body + n, sizeof(body) - n, "\",\"name\":1}]");
	parse_ok(body, n, &list, &w);
	test_assert(list.count == 0 && list.skipped == 1 && w.count == 1);
	test_assert(strstr(w.last, "evil\\x0a\\x00\\x1b[31m\\x22\\x5c\\xffzz") != NULL);
	test_assert(strstr(w.last, "...") != NULL);
	test_assert(strstr(w.last, "\"name\"") != NULL);
	keylist_free(&list);
}

static void test_duplicates(void)
{
	static const char body[] = "[{\"id\":\"a\",\"name\":\"first a\"},"
				   "{\"id\":\"b\",\"name\":\"first b\"},"
				   "{\"id\":\"a\",\"name\":\"second a\"},"
				   "{\"id\":\"c\"},"
				   "{\"id\":\"b\",\"name\":\"second b\"},"
				   "{\"id\":\"a\",\"name\":\"third a\"}]";
	struct warnings w;
	struct keylist list;

	parse_ok(LIT(body), &list, &w);
	test_assert(list.count == 3);
	test_assert(strcmp(list.keys[0].id, "a") == 0);
	test_assert(TEXT_IS(&list.keys[0].file[FIELD_NAME], "first a\n"));
	test_assert(strcmp(list.keys[1].id, "b") == 0);
	test_assert(TEXT_IS(&list.keys[1].file[FIELD_NAME], "first b\n"));
	test_assert(strcmp(list.keys[2].id, "c") == 0);
	test_assert(list.skipped == 3 && w.count == 3);
	/* The last warning is about entry 5, a copy of entry 0. */
	test_assert(strstr(w.last, "#5") != NULL && strstr(w.last, "#0") != NULL);
	keylist_free(&list);

	/* A skipped entry does not claim its id. */
	parse_ok(LIT("[{\"id\":\"a\",\"name\":1},{\"id\":\"a\",\"name\":\"ok\"}]"), &list, &w);
	test_assert(list.count == 1 && list.skipped == 1);
	test_assert(TEXT_IS(&list.keys[0].file[FIELD_NAME], "ok\n"));
	keylist_free(&list);

	/* Ids differing after a NUL are different keys. */
	parse_ok(LIT("[{\"id\":\"a\\u0000b\"},{\"id\":\"a\\u0000c\"},{\"id\":\"a\"}]"), &list, &w);
	test_assert(list.count == 3 && list.skipped == 0);
	keylist_free(&list);
}

static void test_bad_bodies(void)
{
	char *deep;
	size_t n = 200000;
	struct keylist list;
	clock_t start;

	parse_bad(LIT(""), "empty");
	parse_bad(NULL, 0, "empty");
	parse_bad(LIT(" \n\t"), "empty");
	parse_bad(LIT("hello"), "not valid JSON");
	parse_bad(LIT("<html>502 Bad Gateway</html>"), "not valid JSON");
	parse_bad(LIT("[{\"id\":\"a\""), "not valid JSON");
	parse_bad(LIT("[{\"id\":\"a\"},"), "not valid JSON");
	parse_bad(LIT("[\"abc"), "not valid JSON");
	parse_bad(LIT("["), "not valid JSON");
	parse_bad(LIT("{}"), "not a JSON array");
	parse_bad(LIT("{\"detail\":\"Invalid authentication credentials\"}"), "not a JSON array");
	parse_bad(LIT("null"), "not a JSON array");
	parse_bad(LIT("1"), "not a JSON array");
	parse_bad(LIT("12"), "not a JSON array");
	parse_bad(LIT("\"[]\""), "not a JSON array");
	parse_bad(LIT("true"), "not a JSON array");
	parse_bad(LIT("[]x"), "JSON");
	parse_bad(LIT("[] ]"), "JSON");
	parse_bad(LIT("[][]"), "JSON");
	parse_bad(LIT("[],"), "JSON");
	parse_bad(LIT("[]\0"), "JSON");
	parse_bad(LIT("[]\n\0garbage"), "JSON");
	parse_bad(LIT("[\"a\0b\"]"), "JSON");
	parse_bad(LIT("[1,]"), "JSON");
	parse_bad(LIT("['a']"), "JSON");
	parse_bad(LIT("[/* c */]"), "JSON");

	/* Too deep, even in an ignored field (json-c counts an object member
	 * as a level of its own, so the exact limit is its business): that
	 * entry is skipped, the others are kept. */
	test_assert(keylist_parse(LIT("[{\"id\":\"a\",\"x\":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]},"
				      "{\"id\":\"b\",\"s\":\"]}[{\\\"\"}]"),
				  &list, NULL, NULL, NULL, 0) == 0);
	test_assert(list.count == 1 && list.skipped == 1 && strcmp(list.keys[0].id, "b") == 0);
	keylist_free(&list);
	test_assert(keylist_parse(LIT("[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]"), &list, NULL, NULL,
				  NULL, 0) == 0);
	test_assert(list.count == 0 && list.skipped == 1);
	keylist_free(&list);
	/* One that never ends refuses the body. */
	parse_bad(LIT("[{\"id\":\"a\",\"x\":[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]}]"), NULL);
	parse_bad(LIT("[{\"id\":\"a\",\"x\":[[[[[[[[[[[[[[[[[\"]]]]]]]]]]]]]]]]]}]"), "deep");
	test_assert(keylist_parse(LIT("[{\"id\":\"a\",\"x\":[[[[[[[[[[1]]]]]]]]]]}]"), &list, NULL,
				  NULL, NULL, 0) == 0);
	test_assert(list.count == 1);
	keylist_free(&list);

	/* A flood of '[' fails fast instead of recursing. */
	deep = malloc(n);
	test_assert(deep != NULL);
	memset(deep, '[', n);
	start = clock();
	parse_bad(deep, n, "deep");
	memset(deep, '{', n);
	parse_bad(deep, n, NULL);
	test_assert((double)(clock() - start) / CLOCKS_PER_SEC < 2.0);
	free(deep);

	/* Not errors. */
	test_assert(keylist_parse(LIT("[]"), &list, NULL, NULL, NULL, 0) == 0);
	test_assert(list.count == 0 && list.skipped == 0);
	keylist_free(&list);
	test_assert(keylist_parse(LIT(" \r\n[ ]\r\n\t "), &list, NULL, NULL, NULL, 0) == 0);
	test_assert(list.count == 0);
	keylist_free(&list);
}

/* created falls back to 0, last_used to created. */
static void test_key_times(void)
{
	static const char body[] =
		"[{\"id\":\"a\",\"created_at\":\"yesterday\",\"last_used_at\":\"2025-01-20T14:22:"
		"00Z\"},"
		"{\"id\":\"b\",\"created_at\":\"2025-01-15T10:30:00Z\",\"last_used_at\":\"soon\"},"
		"{\"id\":\"c\",\"created_at\":\"2025-01-15T10:30:00+01:00\"},"
		"{\"id\":\"d\",\"created_at\":null,\"last_used_at\":null}]";
	struct warnings w;
	struct keylist list;

	parse_ok(LIT(body), &list, &w);
	test_assert(list.count == 4);
	test_assert(ts_is(list.keys[0].created, 0, 0));
	test_assert(ts_is(list.keys[0].last_used, 1737382920, 0));
	test_assert(TEXT_IS(&list.keys[0].file[FIELD_CREATED_AT], "yesterday\n"));
	test_assert(ts_is(list.keys[1].created, 1736937000, 0));
	test_assert(ts_is(list.keys[1].last_used, 1736937000, 0));
	test_assert(TEXT_IS(&list.keys[1].file[FIELD_LAST_USED_AT], "soon\n"));
	test_assert(ts_is(list.keys[2].created, 1736933400, 0));
	test_assert(ts_is(list.keys[2].last_used, 1736933400, 0));
	test_assert(ts_is(list.keys[3].created, 0, 0));
	test_assert(ts_is(list.keys[3].last_used, 0, 0));
	keylist_free(&list);
}

static void test_free_zeroed(void)
{
	struct keylist list = { 0 };

	keylist_free(&list);
	keylist_free(&list);
	test_assert(list.count == 0 && list.keys == NULL);
}

static double seconds_since(const struct timespec *start)
{
	struct timespec now;

	clock_gettime(CLOCK_MONOTONIC, &now);
	return (double)(now.tv_sec - start->tv_sec) + (double)(now.tv_nsec - start->tv_nsec) / 1e9;
}

/* A list of n keys as the API would send it; dup_every > 0 repeats ids. */
static char *big_body(size_t n, size_t dup_every, size_t *len)
{
	size_t cap = n * 300 + 16, o = 0;
	char *body = malloc(cap);

	test_assert(body != NULL);
	body[o++] = '[';
	for (size_t i = 0; i < n; i++) {
		size_t id = dup_every ? i % dup_every : i;

		o += (size_t)snprintf(
			body + o, cap - o,
			"%s{\"id\":\"%08zx-8f4d-4a8e-9d7a-3f1c2b5e6a70\","
			"\"name\":\"Key number %zu\",\"key_prefix\":\"omi_dev_3fa9...c21e\","
			"\"created_at\":\"2025-01-15T10:30:%02zu.123456Z\","
			"\"last_used_at\":%s,"
			"\"scopes\":[\"conversations:read\",\"memories:read\",\"goals:write\"]}",
			i ? "," : "", id, i, i % 60, i % 2 ? "null" : "\"2025-01-20T14:22:00Z\"");
		test_assert(o < cap);
	}
	body[o++] = ']';
	*len = o;
	return body;
}

/* Timings are printed, not asserted: valgrind runs this too. */
static void test_many_keys(void)
{
	size_t n = 100000, len;
	char *body = big_body(n, 0, &len);
	struct keylist list;
	struct warnings w;
	struct timespec start;
	double took;

	clock_gettime(CLOCK_MONOTONIC, &start);
	parse_ok(body, len, &list, &w);
	took = seconds_since(&start);
	fprintf(stderr, "  %zu keys (%zu bytes) in %.3f s\n", n, len, took);
	test_assert(list.count == n && list.skipped == 0 && w.count == 0);
	test_assert(strcmp(list.keys[12345].id, "00003039-8f4d-4a8e-9d7a-3f1c2b5e6a70") == 0);
	test_assert(TEXT_IS(&list.keys[12345].file[FIELD_NAME], "Key number 12345\n"));
	test_assert(TEXT_IS(&list.keys[12345].file[FIELD_SCOPES],
			    "conversations:read\nmemories:read\ngoals:write\n"));
	test_assert(ts_is(list.keys[12345].created, 1736937000 + 12345 % 60, 123456000));
	test_assert(ts_is(list.keys[12345].last_used, 1736937000 + 12345 % 60, 123456000));
	test_assert(ts_is(list.keys[12344].last_used, 1737382920, 0));
	keylist_free(&list);
	free(body);

	/* Mostly duplicates: still n log n, first of each id kept. */
	body = big_body(n, 1000, &len);
	clock_gettime(CLOCK_MONOTONIC, &start);
	test_assert(keylist_parse(body, len, &list, NULL, NULL, NULL, 0) == 0);
	took = seconds_since(&start);
	fprintf(stderr, "  %zu keys, 1000 distinct, in %.3f s\n", n, took);
	test_assert(list.count == 1000 && list.skipped == n - 1000);
	for (size_t i = 0; i < 1000; i++) {
		char want[64];

		snprintf(want, sizeof(want), "Key number %zu\n", i);
		test_assert(text_is(&list.keys[i].file[FIELD_NAME], want, strlen(want)));
	}
	keylist_free(&list);
	free(body);
}

/* "[{},{},...]" with n empty objects: each is skipped (no "id"). */
static char *empty_entries(size_t n, size_t *len)
{
	char *body = malloc(n * 3 + 2);
	size_t o = 0;

	test_assert(body != NULL);
	body[o++] = '[';
	for (size_t i = 0; i < n; i++) {
		if (i)
			body[o++] = ',';
		body[o++] = '{';
		body[o++] = '}';
	}
	body[o++] = ']';
	*len = o;
	return body;
}

static void test_entry_cap(void)
{
	struct keylist list;
	char err[256], want[64];
	size_t len;
	char *body;

	/* At the cap: parsed, every entry skipped. */
	body = empty_entries(KEYLIST_MAX_ENTRIES, &len);
	test_assert(keylist_parse(body, len, &list, NULL, NULL, err, sizeof(err)) == 0);
	test_assert(list.count == 0 && list.skipped == KEYLIST_MAX_ENTRIES);
	keylist_free(&list);
	free(body);

	/* One more: refused, skipped entries included in the count. */
	body = empty_entries(KEYLIST_MAX_ENTRIES + 1, &len);
	snprintf(want, sizeof(want), "response has more than %d entries", KEYLIST_MAX_ENTRIES);
	test_assert(strcmp(want, "response has more than 200000 entries") == 0);
	parse_bad(body, len, want);
	test_assert(keylist_parse(body, len, &list, NULL, NULL, err, sizeof(err)) == -EBADMSG);
	test_assert(strcmp(err, want) == 0);

	/* A trailing comma after the last allowed entry is bad JSON, not
	 * one entry too many. */
	test_assert(memcmp(body + len - 4, ",{}]", 4) == 0);
	memcpy(body + len - 3, "]  ", 3);
	test_assert(keylist_parse(body, len, &list, NULL, NULL, err, sizeof(err)) == -EBADMSG);
	test_assert(strstr(err, "not valid JSON") != NULL);
	free(body);
}

/* A revoked key cut out of a body: the rest parse as they did. */
static void test_without(void)
{
	static const char body[] = " [ {\"id\":\"a\",\"name\":\"A\"} ,\n"
				   "{\"id\":\"b\\u0000x\",\"name\":\"B\"}, 7,"
				   "{\"id\":\"c\",\"x\":[[[[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]]]]},"
				   "{\"id\":\"a\",\"name\":\"dup\"} ] ";
	struct keylist list;
	char err[256], *out;
	size_t len;

	test_assert(keylist_without(body, strlen(body), "a", 1, &out, &len) == 0);
	test_assert(strlen(out) == len && out[0] == '[' && out[len - 1] == ']');
	test_assert(keylist_parse(out, len, &list, NULL, NULL, err, sizeof(err)) == 0);
	test_assert(list.count == 1 && list.keys[0].id_len == 3);
	test_assert(memcmp(list.keys[0].id, "b\0x", 3) == 0);
	test_assert(list.skipped == 2); /* 7, and the entry nested too deep */
	keylist_free(&list);
	test_assert(strstr(out, "[[[[") != NULL);

	/* An id with a NUL byte, the last key, an id not there. */
	char *out2;
	size_t len2;

	test_assert(keylist_without(out, len, "b\0x", 3, &out2, &len2) == 0);
	free(out);
	test_assert(keylist_parse(out2, len2, &list, NULL, NULL, err, sizeof(err)) == 0);
	test_assert(list.count == 0);
	keylist_free(&list);
	test_assert(keylist_without(out2, len2, "b", 1, &out, &len) == -ENOENT && !out);
	free(out2);
	test_assert(keylist_without("[]", 2, "a", 1, &out, &len) == -ENOENT);
	test_assert(keylist_without("{}", 2, "a", 1, &out, &len) == -EBADMSG && !out);
	test_assert(keylist_without("[{\"id\":\"a\"}", 12, "a", 1, &out, &len) == -EBADMSG);
}

int main(void)
{
	test_run(test_without);
	test_run(test_field_names);
	test_run(test_contract_example);
	test_run(test_raw_bytes);
	test_run(test_wrong_types);
	test_run(test_bad_entries);
	test_run(test_nul_in_values);
	test_run(test_mixed_entries);
	test_run(test_warning_ids);
	test_run(test_duplicates);
	test_run(test_bad_bodies);
	test_run(test_key_times);
	test_run(test_free_zeroed);
	test_run(test_many_keys);
	test_run(test_entry_cap);
	return 0;
}
