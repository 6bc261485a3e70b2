/* Unit test of firebase: URLs, bodies, answer parsers, error classes. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "firebase.h"
#include "test.h"

#define LIT(s) (s), (sizeof(s) - 1)

static void url_is(enum firebase_call call, const char *key, const char *emu, const char *want)
{
	char *url, err[256] = "";

	test_assert(firebase_url(call, key, emu, &url, err, sizeof(err)) == 0);
	if (strcmp(url, want))
		fprintf(stderr, "got %s\nwant %s\n", url, want);
	test_assert(strcmp(url, want) == 0);
	free(url);
}

static void url_refused(const char *key, const char *emu, const char *reason)
{
	char *url = (char *)"x", err[256] = "";

	test_assert(firebase_url(FIREBASE_RENEW, key, emu, &url, err, sizeof(err)) == -EINVAL);
	test_assert(url == NULL);
	if (!strstr(err, reason))
		fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, reason);
	test_assert(strstr(err, reason) && !strchr(err, '\n'));
}

static void test_urls(void)
{
	url_is(FIREBASE_SIGN_IN, FIREBASE_DEFAULT_API_KEY, NULL,
	       "https://identitytoolkit.googleapis.com/v1/accounts:signInWithCustomToken"
	       "?key=AIzaSyA88gHcmiAxjN_aE23tHRWXOgFfapyO6dk");
	url_is(FIREBASE_RENEW, "k", "", "https://securetoken.googleapis.com/v1/token?key=k");
	url_is(FIREBASE_RENEW, "a b&c=d/é", NULL,
	       "https://securetoken.googleapis.com/v1/token?key=a%20b%26c%3Dd%2F%C3%A9");
	url_is(FIREBASE_SIGN_IN, "k", "127.0.0.1:9099",
	       "http://127.0.0.1:9099/identitytoolkit.googleapis.com/v1/"
	       "accounts:signInWithCustomToken?key=k");
	url_is(FIREBASE_RENEW, "k", "127.8.9.10:1",
	       "http://127.8.9.10:1/securetoken.googleapis.com/v1/token?key=k");
	url_is(FIREBASE_RENEW, "k", "LocalHost:65535",
	       "http://LocalHost:65535/securetoken.googleapis.com/v1/token?key=k");
	url_is(FIREBASE_RENEW, "k", "[::1]:9099",
	       "http://[::1]:9099/securetoken.googleapis.com/v1/token?key=k");
	url_is(FIREBASE_RENEW, "k", "::1:9099",
	       "http://[::1]:9099/securetoken.googleapis.com/v1/token?key=k");

	url_refused("", NULL, "API key is empty");
	url_refused(NULL, NULL, "API key is empty");
	url_refused("k", "10.0.0.1:9099",
		    "FIREBASE_AUTH_EMULATOR_HOST=10.0.0.1:9099 is not a loopback");
	url_refused("k", "example.com:9099", "not a loopback");
	url_refused("k", "127.0.0.1", "not a loopback");
	url_refused("k", "127.0.0.1:", "not a loopback");
	url_refused("k", "127.0.0.1:0", "not a loopback");
	url_refused("k", "127.0.0.1:65536", "not a loopback");
	url_refused("k", "127.0.0.1:99x", "not a loopback");
	url_refused("k", "127.1:9099", "not a loopback");
	url_refused("k", "localhost.evil.com:80", "not a loopback");
	url_refused("k", "[::2]:9099", "not a loopback");
	url_refused("k", "[::1:9099", "not a loopback");
	url_refused("k", "127.0.0.1@evil:80", "not a loopback");
	url_refused("k", "bad\x1b[2J:80", "bad?[2J:80");
}

static void test_bodies(void)
{
	char *b = firebase_sign_in_body("eyJ\"x\\");

	test_assert(strcmp(b, "{\"token\":\"eyJ\\\"x\\\\\",\"returnSecureToken\":true}") == 0);
	free(b);
	b = firebase_renew_body("AMf-v/B+x=");
	test_assert(strcmp(b, "grant_type=refresh_token&refresh_token=AMf-v%2FB%2Bx%3D") == 0);
	free(b);
}

static void test_parse(void)
{
	struct firebase_tokens t;
	char err[256];

	test_assert(
		firebase_parse_sign_in(LIT("{\"kind\": \"x\", \"idToken\": \"ID.T.K\", "
					   "\"refreshToken\": \"REF\", \"expiresIn\": \"3600\", "
					   "\"localId\": \"uid1\", \"isNewUser\": true}"),
				       &t, err, sizeof(err)) == 0);
	test_assert(strcmp(t.id_token, "ID.T.K") == 0 && strcmp(t.refresh_token, "REF") == 0);
	test_assert(t.expires_in == 3600 && strcmp(t.user_id, "uid1") == 0);
	firebase_tokens_free(&t);
	test_assert(t.id_token == NULL);

	/* signInWithCustomToken sends no localId: the ID token's sub is the uid. */
	test_assert(firebase_parse_sign_in(LIT("{\"idToken\": \"eyJhbGciOiJub25lIn0."
					       "eyJzdWIiOiAidXNlci05IiwgImlzcyI6ICJ4In0.\", "
					       "\"refreshToken\": \"R\", \"expiresIn\": \"3600\"}"),
					   &t, err, sizeof(err)) == 0);
	test_assert(strcmp(t.user_id, "user-9") == 0);
	firebase_tokens_free(&t);
	test_assert(firebase_parse_sign_in(LIT("{\"idToken\": \"eyJhbGciOiJub25lIn0."
					       "eyJpc3MiOiAieCJ9.\", \"refreshToken\": \"R\", "
					       "\"expiresIn\": \"3600\"}"),
					   &t, err, sizeof(err)) == -EBADMSG);
	test_assert(strstr(err, "the ID token names no user") && t.id_token == NULL);
	test_assert(firebase_parse_sign_in(LIT("{\"idToken\": \"eyJhbGciOiJub25lIn0."
					       "eyJzdWIiOiAiYSBiIn0.\", \"refreshToken\": \"R\", "
					       "\"expiresIn\": \"3600\"}"),
					   &t, err, sizeof(err)) == -EBADMSG);
	/* No ID token to take the uid from. */
	test_assert(firebase_parse_sign_in(LIT("{\"refreshToken\": \"R\", \"expiresIn\": \"1\"}"),
					   &t, err, sizeof(err)) == -EBADMSG);
	test_assert(strstr(err, "no \"idToken\""));
	test_assert(firebase_parse_sign_in(LIT("{\"idToken\": \"no-dots\", \"refreshToken\": "
					       "\"R\", \"expiresIn\": \"3600\"}"),
					   &t, err, sizeof(err)) == -EBADMSG);
	test_assert(strstr(err, "not a JWT"));
	test_assert(firebase_parse_sign_in(LIT("{\"idToken\": \"a.b!c.d\", \"refreshToken\": "
					       "\"R\", \"expiresIn\": \"3600\"}"),
					   &t, err, sizeof(err)) == -EBADMSG);

	test_assert(
		firebase_parse_renew(LIT("{\"access_token\": \"ID\", \"expires_in\": \"60\", "
					 "\"token_type\": \"Bearer\", \"refresh_token\": \"R2\", "
					 "\"id_token\": \"ID\", \"user_id\": \"u\", "
					 "\"project_id\": \"1\"}"),
				     &t, err, sizeof(err)) == 0);
	test_assert(strcmp(t.id_token, "ID") == 0 && strcmp(t.refresh_token, "R2") == 0);
	test_assert(t.expires_in == 60 && strcmp(t.user_id, "u") == 0);
	firebase_tokens_free(&t);
}

static void renew_bad(const char *body, size_t len, const char *reason)
{
	struct firebase_tokens t;
	char err[256] = "";

	memset(&t, 0x5a, sizeof(t));
	test_assert(firebase_parse_renew(body, len, &t, err, sizeof(err)) == -EBADMSG);
	test_assert(t.id_token == NULL && t.refresh_token == NULL && t.user_id == NULL);
	if (!strstr(err, reason))
		fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, reason);
	test_assert(strstr(err, reason));
	test_assert(!strstr(err, "SECRET"));
}

#define RENEW(extra)                                                                               \
	"{\"id_token\": \"SECRET\", \"refresh_token\": \"SECRET2\", "                              \
	"\"user_id\": \"u\"" extra "}"

static void test_parse_bad(void)
{
	renew_bad(LIT("not json"), "not valid JSON");
	renew_bad(LIT("[1]"), "not a JSON object");
	renew_bad(LIT(RENEW("")), "no \"expires_in\"");
	renew_bad(LIT(RENEW(", \"expires_in\": 3600")), "\"expires_in\" is not a string");
	renew_bad(LIT(RENEW(", \"expires_in\": \"0\"")), "not a number of seconds");
	renew_bad(LIT(RENEW(", \"expires_in\": \"-5\"")), "not a number of seconds");
	renew_bad(LIT(RENEW(", \"expires_in\": \" 5\"")), "not allowed");
	renew_bad(LIT(RENEW(", \"expires_in\": \"5s\"")), "not a number of seconds");
	renew_bad(LIT(RENEW(", \"expires_in\": \"86401\"")), "not a number of seconds");
	renew_bad(LIT(RENEW(", \"expires_in\": \"999999999\"")), "longer than");
	renew_bad(LIT("{\"id_token\": \"SECRET X\"}"), "\"id_token\" holds a character");
	renew_bad(LIT("{\"id_token\": \"S\", \"refresh_token\": null}"),
		  "\"refresh_token\" is not a string");
	renew_bad(LIT("{\"id_token\": \"S\", \"refresh_token\": \"R\", \"expires_in\": \"1\"}"),
		  "no \"user_id\"");
	/* The sign-in answer's names are not the renewal's. */
	renew_bad(LIT("{\"idToken\": \"S\", \"refreshToken\": \"R\", \"expiresIn\": \"1\", "
		      "\"localId\": \"u\"}"),
		  "no \"id_token\"");
}

static void check(long status, const char *body, int neg, enum firebase_failure kind, int want_err,
		  const char *reason, const char *message)
{
	struct post_result res = { .status = status, .err = neg };
	struct firebase_error e;

	if (body) {
		res.body = (char *)body;
		res.len = strlen(body);
	}
	if (neg)
		snprintf(res.message, sizeof(res.message), "connection refused\n");
	test_assert(firebase_check(&res, &e) == want_err);
	test_assert(e.kind == kind && e.err == want_err);
	if (strcmp(e.reason, reason) || strcmp(e.message, message))
		fprintf(stderr, "reason \"%s\" message \"%s\"\n", e.reason, e.message);
	test_assert(strcmp(e.reason, reason) == 0);
	test_assert(strcmp(e.message, message) == 0);
}

#define ERR(msg) "{\"error\": {\"code\": 400, \"message\": \"" msg "\", \"errors\": []}}"

static void test_check(void)
{
	check(200, "{}", 0, FIREBASE_OK, 0, "", "");
	check(400, ERR("TOKEN_EXPIRED"), 0, FIREBASE_ENDED, -EACCES, "TOKEN_EXPIRED",
	      "HTTP 400: TOKEN_EXPIRED");
	check(400, ERR("USER_DISABLED"), 0, FIREBASE_ENDED, -EACCES, "USER_DISABLED",
	      "HTTP 400: USER_DISABLED");
	check(400, ERR("USER_NOT_FOUND"), 0, FIREBASE_ENDED, -EACCES, "USER_NOT_FOUND",
	      "HTTP 400: USER_NOT_FOUND");
	check(400, ERR("INVALID_REFRESH_TOKEN : the token is bad"), 0, FIREBASE_ENDED, -EACCES,
	      "INVALID_REFRESH_TOKEN", "HTTP 400: INVALID_REFRESH_TOKEN : the token is bad");
	check(400, ERR("INVALID_GRANT_TYPE"), 0, FIREBASE_ENDED, -EACCES, "INVALID_GRANT_TYPE",
	      "HTTP 400: INVALID_GRANT_TYPE");
	check(400, ERR("MISSING_REFRESH_TOKEN"), 0, FIREBASE_ENDED, -EACCES,
	      "MISSING_REFRESH_TOKEN", "HTTP 400: MISSING_REFRESH_TOKEN");
	check(400, ERR("SOMETHING_NEW"), 0, FIREBASE_ENDED, -EACCES, "SOMETHING_NEW",
	      "HTTP 400: SOMETHING_NEW");
	check(400, "garbage", 0, FIREBASE_ENDED, -EACCES, "", "HTTP 400");
	check(400, NULL, 0, FIREBASE_ENDED, -EACCES, "", "HTTP 400");
	check(404, "{\"error\": \"x\"}", 0, FIREBASE_ENDED, -EACCES, "", "HTTP 404");
	check(400, ERR("API key not valid. Please pass a valid API key."), 0, FIREBASE_BAD_KEY,
	      -EACCES, "", "HTTP 400: API key not valid. Please pass a valid API key.");
	/* Google's details name the reason a sentence does not. */
	check(400,
	      "{\"error\": {\"code\": 400, \"message\": \"API key not valid. Please pass a valid "
	      "API key.\", \"details\": [{\"@type\": \"x\"}, {\"reason\": \"API_KEY_INVALID\"}]}}",
	      0, FIREBASE_BAD_KEY, -EACCES, "API_KEY_INVALID",
	      "HTTP 400: API key not valid. Please pass a valid API key.");
	check(400, ERR("CREDENTIAL_MISMATCH"), 0, FIREBASE_BAD_KEY, -EACCES, "CREDENTIAL_MISMATCH",
	      "HTTP 400: CREDENTIAL_MISMATCH");
	check(400, ERR("INVALID_CUSTOM_TOKEN : bad aud"), 0, FIREBASE_BAD_KEY, -EACCES,
	      "INVALID_CUSTOM_TOKEN", "HTTP 400: INVALID_CUSTOM_TOKEN : bad aud");
	check(403, ERR("The request is missing a valid API key."), 0, FIREBASE_BAD_KEY, -EACCES, "",
	      "HTTP 403: The request is missing a valid API key.");
	check(403, ERR("API_KEY_HTTP_REFERRER_BLOCKED"), 0, FIREBASE_BAD_KEY, -EACCES,
	      "API_KEY_HTTP_REFERRER_BLOCKED", "HTTP 403: API_KEY_HTTP_REFERRER_BLOCKED");
	check(429, ERR("QUOTA"), 0, FIREBASE_TRANSIENT, -EAGAIN, "QUOTA", "HTTP 429: QUOTA");
	check(408, NULL, 0, FIREBASE_TRANSIENT, -ETIMEDOUT, "", "HTTP 408");
	check(500, "oops", 0, FIREBASE_TRANSIENT, -EIO, "", "HTTP 500");
	check(503, ERR("UNAVAILABLE"), 0, FIREBASE_TRANSIENT, -EIO, "UNAVAILABLE",
	      "HTTP 503: UNAVAILABLE");
	check(302, NULL, 0, FIREBASE_TRANSIENT, -EIO, "", "HTTP 302");
	check(0, NULL, -ECONNREFUSED, FIREBASE_TRANSIENT, -ECONNREFUSED, "", "connection refused?");
	check(0, NULL, 0, FIREBASE_TRANSIENT, -EIO, "", "no answer from Firebase");
	/* Server text is shown cleaned; a code word with controls is no code. */
	check(400, ERR("BAD\\u001b[31m\\nx"), 0, FIREBASE_ENDED, -EACCES, "",
	      "HTTP 400: BAD?[31m?x");
	/* A C1 CSI and a bidi override, which a terminal would obey, too. */
	check(400, ERR("BAD\\u009b31mx\\u202e"), 0, FIREBASE_ENDED, -EACCES, "",
	      "HTTP 400: BAD?31mx?");
}

static void refusal(long status, const char *body, enum firebase_call call, const char *want)
{
	struct post_result res = { .status = status, .body = (char *)body, .len = strlen(body) };
	struct firebase_error e;
	char line[300];

	test_assert(firebase_check(&res, &e) < 0);
	firebase_refusal_text(&e, call, line, sizeof(line));
	if (strcmp(line, want))
		fprintf(stderr, "got  \"%s\"\nwant \"%s\"\n", line, want);
	test_assert(strcmp(line, want) == 0);
}

/* Every refusal Firebase names gets its meaning and its one cure. */
static void test_refusal_text(void)
{
	refusal(403,
		"{\"error\": {\"code\": 403, \"message\": \"Requests from referer <empty> are "
		"blocked.\", \"details\": [{\"reason\": \"API_KEY_HTTP_REFERRER_BLOCKED\"}]}}",
		FIREBASE_SIGN_IN,
		"Firebase refused the Web API key: it is restricted to web browsers "
		"(API_KEY_HTTP_REFERRER_BLOCKED); give the right key with -o firebase_api_key=KEY");
	refusal(400, ERR("API key not valid. Please pass a valid API key."), FIREBASE_SIGN_IN,
		"Firebase says the Web API key is not valid (API_KEY_INVALID); give the right key "
		"with -o firebase_api_key=KEY");
	refusal(400, ERR("API key not valid. Please pass a valid API key."), FIREBASE_RENEW,
		"Firebase says the Web API key is not valid (API_KEY_INVALID); sign in again with "
		"omikeyfs --login -o firebase_api_key=KEY");
	refusal(400, ERR("CREDENTIAL_MISMATCH"), FIREBASE_SIGN_IN,
		"Firebase refused Omi's sign-in token: the Web API key is of another Firebase "
		"project than Omi's (CREDENTIAL_MISMATCH); give the right key with -o "
		"firebase_api_key=KEY");
	refusal(400, ERR("TOKEN_EXPIRED"), FIREBASE_RENEW,
		"the session has expired (TOKEN_EXPIRED); sign in again with omikeyfs --login");
	refusal(400, ERR("USER_DISABLED"), FIREBASE_SIGN_IN,
		"the Omi account is disabled (USER_DISABLED); sign in again with omikeyfs --login");
	refusal(400, ERR("USER_NOT_FOUND"), FIREBASE_RENEW,
		"the Omi account no longer exists (USER_NOT_FOUND); sign in again with omikeyfs "
		"--login");
	refusal(400, ERR("INVALID_REFRESH_TOKEN"), FIREBASE_RENEW,
		"the session's refresh token is not valid (INVALID_REFRESH_TOKEN); sign in again "
		"with omikeyfs --login");
	/* Unknown codes as Firebase gave them. */
	refusal(400, ERR("BRAND_NEW : words"), FIREBASE_RENEW,
		"the session has ended (HTTP 400: BRAND_NEW : words); sign in again with omikeyfs "
		"--login");
	refusal(400, ERR("BRAND_NEW"), FIREBASE_SIGN_IN,
		"Firebase refused the sign-in (HTTP 400: BRAND_NEW)");
	refusal(403, ERR("PERMISSION_DENIED"), FIREBASE_SIGN_IN,
		"Firebase refused the Web API key (HTTP 403: PERMISSION_DENIED); give the right "
		"key "
		"with -o firebase_api_key=KEY");
}

int main(void)
{
	test_run(test_urls);
	test_run(test_bodies);
	test_run(test_parse);
	test_run(test_parse_bad);
	test_run(test_check);
	test_run(test_refusal_text);
	return 0;
}
