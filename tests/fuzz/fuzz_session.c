/*
 * libFuzzer target: untrusted sign-in bytes -> the session file parser,
 * Firebase's answer and error parsers (with the refusal line they make),
 * Omi's /v1/auth/token answer, the "detail" of either API's error body
 * (an account gate's too), a request to the loopback listener, and a line
 * pasted as its address.  Checks that a failure leaves nothing allocated
 * and one line of reason, that what is accepted holds only the characters
 * promised, and that a parsed session survives being written and read back.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "apierror.h"
#include "firebase.h"
#include "login.h"
#include "loopback.h"
#include "session.h"

#define check(expr)                                                                                \
	do {                                                                                       \
		if (!(expr))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

static void check_line(const char *s, size_t size)
{
	check(memchr(s, '\0', size) != NULL);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		check(*p >= 0x20 && *p != 0x7f);
}

static void check_token(const char *s)
{
	check(s && *s);
	for (const unsigned char *p = (const unsigned char *)s; *p; p++)
		check(*p >= 0x21 && *p <= 0x7e);
}

static void fuzz_session(const char *data, size_t size)
{
	struct session s, back;
	char err[256];
	size_t len;
	char *out;

	if (session_parse(data, size, &s, err, sizeof(err)) < 0) {
		check(!s.refresh_token && !s.api_url && !s.firebase_api_key && !s.user_id &&
		      !s.email);
		check(err[0]);
		check_line(err, sizeof(err));
		return;
	}
	check_token(s.refresh_token);
	check_token(s.api_url);
	check_token(s.firebase_api_key);
	check_token(s.user_id);
	if (s.email)
		check_token(s.email);
	check(s.created >= 0);
	out = session_serialize(&s, &len);
	check(out && strlen(out) == len);
	check(session_parse(out, len, &back, err, sizeof(err)) == 0);
	check(strcmp(back.refresh_token, s.refresh_token) == 0);
	check(strcmp(back.api_url, s.api_url) == 0);
	check(strcmp(back.firebase_api_key, s.firebase_api_key) == 0);
	check(strcmp(back.user_id, s.user_id) == 0);
	check(back.created == s.created);
	check(!back.email == !s.email && (!s.email || strcmp(back.email, s.email) == 0));
	free(out);
	session_free(&back);
	session_free(&s);
}

static void fuzz_tokens(const char *data, size_t size, bool renew)
{
	struct firebase_tokens t;
	char err[256];
	int r = renew ? firebase_parse_renew(data, size, &t, err, sizeof(err))
		      : firebase_parse_sign_in(data, size, &t, err, sizeof(err));

	if (r < 0) {
		check(!t.id_token && !t.refresh_token && !t.user_id && !t.email);
		check_line(err, sizeof(err));
		return;
	}
	check_token(t.id_token);
	check_token(t.refresh_token);
	check_token(t.user_id);
	check(!t.email || !renew);
	if (t.email)
		check_token(t.email);
	check(t.expires_in >= 1 && t.expires_in <= 86400);
	firebase_tokens_free(&t);
}

static void fuzz_error(char *data, size_t size, long status)
{
	struct post_result res = { .status = status, .body = data, .len = size };
	struct firebase_error e;
	int r = firebase_check(&res, &e);

	check(r == e.err);
	check((r == 0) == (e.kind == FIREBASE_OK));
	check_line(e.message, sizeof(e.message));
	check_line(e.reason, sizeof(e.reason));
	check(strspn(e.reason, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") == strlen(e.reason));
	if (e.kind == FIREBASE_ENDED || e.kind == FIREBASE_BAD_KEY) {
		char line[300];

		firebase_refusal_text(&e, FIREBASE_RENEW, line, sizeof(line));
		check_line(line, sizeof(line));
		firebase_refusal_text(&e, FIREBASE_SIGN_IN, line, sizeof(line));
		check_line(line, sizeof(line));
	}
}

static void fuzz_gate(const char *data, size_t size)
{
	struct apierror_view v;

	apierror_view(data, size, &v);
	if (v.line)
		check_line(v.line, strlen(v.line) + 1);
	check(v.retryable >= -1 && v.retryable <= 1);
	check(strlen(v.code) < sizeof(v.code));
	check(v.gate || (!v.code[0] && v.retryable == -1));
	apierror_view_free(&v);
}

static void fuzz_pasted(const char *data, size_t size)
{
	struct loopback_request req;
	enum loopback_kind kind = loopback_parse_pasted(data, size, 8765, &req);

	if (kind != LOOPBACK_CALLBACK) {
		check(!req.code && !req.state && !req.error && !req.pasted);
		return;
	}
	check(req.pasted);
	check(!req.code || strlen(req.code) <= size);
	check(!req.state || strlen(req.state) <= size);
	loopback_request_free(&req);
}

static void fuzz_omi(const char *data, size_t size)
{
	char *custom, err[256];

	if (login_parse_token_answer(data, size, &custom, err, sizeof(err)) < 0) {
		check(custom == NULL);
		check_line(err, sizeof(err));
		return;
	}
	check_token(custom);
	free(custom);
}

/* An error body of either API (the key list's, Omi's token exchange's):
 * FastAPI's "detail", parsed and made one line. */
static void fuzz_detail(const char *data, size_t size)
{
	struct apierror e;
	char *line;

	if (apierror_parse(data, size, &e) == 0 && e.shape != APIERROR_NONE) {
		check(e.text && e.text[e.len] == '\0');
		/* A string as sent (between quotes); a list or object re-encoded. */
		check(e.shape == APIERROR_STRING ? e.len < size : strlen(e.text) == e.len);
	} else
		check(e.shape == APIERROR_NONE && !e.text && e.len == 0);
	line = apierror_detail(data, size);
	check(!line == (e.shape == APIERROR_NONE));
	if (line) {
		check(strlen(line) <= 300);
		check_line(line, strlen(line) + 1);
	}
	free(line);
	apierror_free(&e);
}

static void fuzz_request(const char *data, size_t size)
{
	struct loopback_request req;
	enum loopback_kind kind = loopback_parse(data, size, &req);

	if (kind != LOOPBACK_CALLBACK) {
		check(!req.code && !req.state && !req.error);
		return;
	}
	/* Decoded values are C strings: a %00 is refused. */
	check(!req.code || strlen(req.code) <= size);
	check(!req.state || strlen(req.state) <= size);
	loopback_request_free(&req);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A NUL-terminated copy, as transport hands bodies over. */
	char *buf = malloc(size + 1);

	check(buf);
	memcpy(buf, data, size);
	buf[size] = '\0';
	fuzz_session(buf, size);
	fuzz_tokens(buf, size, false);
	fuzz_tokens(buf, size, true);
	fuzz_error(buf, size, 400);
	fuzz_error(buf, size, 403);
	fuzz_omi(buf, size);
	fuzz_detail(buf, size);
	fuzz_request(buf, size);
	fuzz_pasted(buf, size);
	fuzz_gate(buf, size);
	free(buf);
	return 0;
}
