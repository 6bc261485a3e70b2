/* Unit tests for apierror: the "detail" of an API error body, parsed into
 * its shape and made one line of text, from FastAPI's shapes and from what
 * is not JSON. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "apierror.h"
#include "test.h"

#define LIT(s) (s), sizeof(s) - 1

/* The detail of body (a C string), compared with want (NULL: none). */
static void expect(const char *body, const char *want)
{
	char *got = apierror_detail(body, strlen(body));

	if (want ? !got || strcmp(got, want) != 0 : got != NULL) {
		fprintf(stderr, "detail of %s: got %s, want %s\n", body, got ? got : "(none)",
			want ? want : "(none)");
		test_assert(!"apierror_detail");
	}
	free(got);
}

static void test_shapes(void)
{
	expect("{\"detail\":\"Invalid authentication credentials\"}",
	       "Invalid authentication credentials");
	expect("{\"detail\": \"Not authenticated\"}\n  \r\n\t", "Not authenticated");
	/* FastAPI's validation errors: the list as compact JSON, escapes kept. */
	expect("{\"detail\":[{\"loc\":[\"query\"],\"msg\":\"bad\\nthing\"}]}  ",
	       "[{\"loc\":[\"query\"],\"msg\":\"bad\\nthing\"}]");
	expect("{\"detail\":{\"code\":7,\"url\":\"a/b\"}}", "{\"code\":7,\"url\":\"a/b\"}");
	expect("{\"detail\":\"\"}", "");
	expect("{\"other\":1,\"detail\":\"second\"}", "second");
}

static void test_no_detail(void)
{
	expect("{\"detail\":42}", NULL);
	expect("{\"detail\":null}", NULL);
	expect("{\"detail\":true}", NULL);
	expect("{\"message\":\"x\"}", NULL);
	expect("[\"detail\"]", NULL);
	expect("\"detail\"", NULL);
	expect("<html></html>", NULL);
	expect("{\"detail\":\"x\"", NULL);
	expect("{\"detail\":\"x\"} trailing", NULL);
	expect("{\"detail\":\"x\"}{}", NULL);
	expect("{\"detail\":\"\xff\xfe\"}", NULL); /* not UTF-8 */
	expect("", NULL);
	test_assert(apierror_detail(NULL, 10) == NULL);
	/* Only len bytes are read. */
	test_assert(apierror_detail("{\"detail\":\"x\"}", 5) == NULL);
}

static void test_one_line(void)
{
	char *d;

	/* Control characters, escaped or raw, come out as spaces. */
	expect("{\"detail\":\"bad\\r\\nInjected: yes\\tand\\u001b[31mred\\u007f\"}",
	       "bad  Injected: yes and [31mred ");
	d = apierror_detail("{\"detail\":\"a\\u0000b\"}", 21);
	test_assert(d && strcmp(d, "a b") == 0);
	free(d);
}

static void test_terminal_controls(void)
{
	/* C1 controls (CSI, U+009B), bidi overrides and isolates: replaced,
	 * escaped or raw; other characters kept. */
	expect("{\"detail\":\"a\\u009b31mb\\u202ec\\u2066d\\u2069e\\u00e9\"}",
	       "a?31mb?c?d?e\xc3\xa9");
	expect("{\"detail\":\"x\xc2\x9by\xe2\x80\xaez\"}", "x?y?z");
}

static void test_cut(void)
{
	char body[1200], want[400];
	int n;

	/* 400 'x': cut to 300 bytes ending in "..." */
	n = snprintf(body, sizeof(body), "{\"detail\":\"%0400d\"}", 0);
	test_assert(n > 0);
	snprintf(want, sizeof(want), "%0297d...", 0);
	expect(body, want);
	/* exactly 300 bytes: kept whole */
	snprintf(body, sizeof(body), "{\"detail\":\"%0300d\"}", 0);
	snprintf(want, sizeof(want), "%0300d", 0);
	expect(body, want);
	/* 150 two-byte characters and one more: never cut inside one */
	strcpy(body, "{\"detail\":\"");
	for (int i = 0; i < 151; i++)
		strcat(body, "\xc3\xa9");
	strcat(body, "\"}");
	{
		char *d = apierror_detail(body, strlen(body));
		size_t len;

		test_assert(d != NULL);
		len = strlen(d);
		test_assert(len <= 300 && strcmp(d + len - 3, "...") == 0);
		test_assert((len - 3) % 2 == 0);
		test_assert(strncmp(d, "\xc3\xa9\xc3\xa9", 4) == 0);
		free(d);
	}
}

/* The parse under the line: the detail's shape and its bytes as sent. */
static void test_parse(void)
{
	static const char *const none[] = { "{\"detail\":42}", "{\"detail\":\"x\"} y",
					    "{\"message\":\"x\"}", "[\"detail\"]", "" };
	static const char list[] = "{\"detail\":[{\"msg\":\"x\"}]}";
	static const char nul[] = "{\"detail\":\"a\\u0000\\u001bb\"}";
	struct apierror e;

	test_assert(apierror_parse(nul, strlen(nul), &e) == 0);
	test_assert(e.shape == APIERROR_STRING && e.len == 4);
	test_assert(memcmp(e.text, "a\0\033b", 5) == 0);
	apierror_free(&e);
	test_assert(e.shape == APIERROR_NONE && !e.text && e.len == 0);

	test_assert(apierror_parse(list, strlen(list), &e) == 0);
	test_assert(e.shape == APIERROR_LIST && strcmp(e.text, "[{\"msg\":\"x\"}]") == 0);
	test_assert(e.len == strlen(e.text));
	apierror_free(&e);

	/* Omi's account gates: an object, kept whole for whoever reads it. */
	static const char gate[] = "{\"detail\": {\"code\": \"migration_maintenance\", "
				   "\"message\": \"back soon\", \"retryable\": true}}";
	test_assert(apierror_parse(gate, strlen(gate), &e) == 0);
	test_assert(e.shape == APIERROR_OBJECT);
	test_assert(strcmp(e.text, "{\"code\":\"migration_maintenance\",\"message\":\"back "
				   "soon\",\"retryable\":true}") == 0);
	apierror_free(&e);

	for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
		test_assert(apierror_parse(none[i], strlen(none[i]), &e) == 0);
		test_assert(e.shape == APIERROR_NONE && !e.text && e.len == 0);
	}
	test_assert(apierror_parse(NULL, 0, &e) == 0 && e.shape == APIERROR_NONE);
	apierror_free(&e);
}

/* An account gate's detail object: its message and code, not the JSON. */
static void test_gate(void)
{
	struct apierror_view e;

	apierror_view(LIT("{\"detail\": {\"code\": \"migration_maintenance\", \"message\": "
			  "\"Down \\u001b[31mfor a bit\", \"retryable\": true}}"),
		      &e);
	test_assert(e.gate && e.retryable == 1 && strcmp(e.code, "migration_maintenance") == 0);
	test_assert(strcmp(e.line, "Down  [31mfor a bit (migration_maintenance)") == 0);
	apierror_view_free(&e);
	/* A code that is no plain word is left out; retryable absent is -1. */
	apierror_view(LIT("{\"detail\": {\"code\": \"a b\", \"message\": \"m\"}}"), &e);
	test_assert(e.gate && e.retryable == -1 && e.code[0] == '\0' && strcmp(e.line, "m") == 0);
	apierror_view_free(&e);
	/* A string detail, and an object without a message, are no gate. */
	apierror_view(LIT("{\"detail\": \"Invalid authentication credentials\"}"), &e);
	test_assert(!e.gate && strcmp(e.line, "Invalid authentication credentials") == 0);
	apierror_view_free(&e);
	apierror_view(LIT("{\"detail\": {\"code\": \"x\"}}"), &e);
	test_assert(!e.gate && strcmp(e.line, "{\"code\":\"x\"}") == 0);
	apierror_view_free(&e);
	apierror_view(LIT("not json"), &e);
	test_assert(!e.gate && !e.line);
	apierror_view_free(&e);
}

int main(void)
{
	test_run(test_shapes);
	test_run(test_no_detail);
	test_run(test_one_line);
	test_run(test_terminal_controls);
	test_run(test_cut);
	test_run(test_parse);
	test_run(test_gate);
	return 0;
}
