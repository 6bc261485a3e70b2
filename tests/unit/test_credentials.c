/* Unit test of credentials: renewal on a fake clock against a fake
 * securetoken endpoint, rotation into the file, refusals and healing. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "credentials.h"
#include "test.h"

#define MAX_ANSWERS 8

struct answer {
	long status;
	const char *body;
	int err;
};

struct fake {
	struct answer answers[MAX_ANSWERS]; /* given in turn; the last repeats */
	int count, calls;
	char last_body[512];
	int64_t now;
	int warnings;
};

static void fake_post(void *ctx, const char *type, const char *body, size_t len,
		      struct post_result *out)
{
	struct fake *f = ctx;
	const struct answer *a = &f->answers[f->calls < f->count ? f->calls : f->count - 1];

	test_assert(strcmp(type, "application/x-www-form-urlencoded") == 0);
	test_assert(len == strlen(body) && len < sizeof(f->last_body));
	memcpy(f->last_body, body, len + 1);
	f->calls++;
	out->status = a->status;
	out->err = a->err;
	if (a->err)
		snprintf(out->message, sizeof(out->message), "Connection timed out");
	if (a->body) {
		out->body = strdup(a->body);
		out->len = strlen(a->body);
	}
}

static int64_t fake_clock(void *ctx)
{
	return ((struct fake *)ctx)->now;
}

static void fake_warn(void *ctx, const char *message)
{
	((struct fake *)ctx)->warnings++;
	fprintf(stderr, "warning: %s\n", message);
}

static void script(struct fake *f, int n, const struct answer *a)
{
	memcpy(f->answers, a, sizeof(*a) * (size_t)n);
	f->count = n;
}

#define RENEWED_AS(id, refresh, expires, user)                                                     \
	"{\"id_token\": \"" id "\", \"refresh_token\": \"" refresh                                 \
	"\", \"expires_in\": \"" expires "\", \"user_id\": \"" user                                \
	"\", \"token_type\": \"Bearer\"}"
#define RENEWED(id, refresh, expires) RENEWED_AS(id, refresh, expires, "uid")
#define FB_ERROR(code, msg) "{\"error\": {\"code\": " #code ", \"message\": \"" msg "\"}}"

static char dir[64], path[128];

static void write_session_made(const char *refresh, const char *user, long long created)
{
	struct session s = {
		.refresh_token = (char *)refresh,
		.api_url = "https://api.omi.me",
		.firebase_api_key = "KEY",
		.user_id = (char *)user,
		.created = created,
	};

	test_assert(session_save(path, &s, NULL, 0) == 0);
}

static void write_session(const char *refresh, const char *api_url, const char *key)
{
	struct session s = {
		.refresh_token = (char *)refresh,
		.api_url = (char *)api_url,
		.firebase_api_key = (char *)key,
		.user_id = "uid",
		.created = 1000,
	};

	test_assert(session_save(path, &s, NULL, 0) == 0);
}

static struct credentials *start(struct fake *f, const char *refresh)
{
	struct session s;
	struct credentials *c;
	struct cred_error err;

	write_session(refresh, "https://api.omi.me", "KEY");
	test_assert(session_load(path, &s, NULL, 0) == 0);
	struct cred_session_config cfg = {
		.session_path = path,
		.session = &s,
		.api_url = "https://api.omi.me/",
		.renew = { fake_post, f },
		.clock = fake_clock,
		.clock_ctx = f,
		.warn = fake_warn,
		.warn_ctx = f,
	};
	test_assert(credentials_session(&cfg, &c, &err) == 0);
	session_free(&s);
	test_assert(credentials_is_session(c));
	return c;
}

static const char *token_ok(struct credentials *c)
{
	struct cred_error err;
	const char *token;

	test_assert(credentials_token(c, &token, &err) == 0);
	test_assert(err.kind == CRED_OK && token);
	return token;
}

static void token_fails(struct credentials *c, enum cred_error_kind kind, int e, const char *words)
{
	struct cred_error err;
	const char *token = "x";

	test_assert(credentials_token(c, &token, &err) == e);
	test_assert(token == NULL && err.kind == kind && err.err == e);
	if (!strstr(err.message, words))
		fprintf(stderr, "message \"%s\" lacks \"%s\"\n", err.message, words);
	test_assert(strstr(err.message, words));
	/* No token of any kind in a message. */
	test_assert(!strstr(err.message, "REFRESH-") && !strstr(err.message, "ID-"));
}

static void test_renews_before_expiry(void)
{
	struct fake f = { .now = 5000 };
	struct answer a[] = { { .status = 200, .body = RENEWED("ID-1", "REFRESH-1", "3600") },
			      { .status = 200, .body = RENEWED("ID-2", "REFRESH-1", "3600") } };
	struct credentials *c;

	script(&f, 2, a);
	c = start(&f, "REFRESH-1");
	test_assert(f.calls == 0);
	test_assert(strcmp(token_ok(c), "ID-1") == 0);
	test_assert(f.calls == 1);
	test_assert(strcmp(f.last_body, "grant_type=refresh_token&refresh_token=REFRESH-1") == 0);
	/* Not needed yet: up to 60 s before the hour is out. */
	f.now = 5000 + 3600 * 1000 - CRED_RENEW_EARLY_MS - 1;
	test_assert(strcmp(token_ok(c), "ID-1") == 0);
	test_assert(strcmp(token_ok(c), "ID-1") == 0);
	test_assert(f.calls == 1);
	f.now++;
	test_assert(strcmp(token_ok(c), "ID-2") == 0);
	test_assert(f.calls == 2);
	test_assert(f.warnings == 0);
	credentials_free(c);
}

static void test_refused_renews_once(void)
{
	struct fake f = { .now = 0 };
	struct answer a[] = { { .status = 200, .body = RENEWED("ID-1", "REFRESH-1", "3600") },
			      { .status = 200, .body = RENEWED("ID-2", "REFRESH-1", "3600") } };
	struct credentials *c;

	script(&f, 2, a);
	c = start(&f, "REFRESH-1");
	test_assert(strcmp(token_ok(c), "ID-1") == 0);
	test_assert(credentials_refused(c));
	test_assert(f.calls == 1);
	test_assert(strcmp(token_ok(c), "ID-2") == 0);
	test_assert(f.calls == 2);
	test_assert(strcmp(token_ok(c), "ID-2") == 0);
	test_assert(f.calls == 2);
	credentials_free(c);
}

static void check_file(const char *refresh)
{
	struct session s;
	struct stat st;

	test_assert(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	test_assert(session_load(path, &s, NULL, 0) == 0);
	if (strcmp(s.refresh_token, refresh))
		fprintf(stderr, "file holds %s, want %s\n", s.refresh_token, refresh);
	test_assert(strcmp(s.refresh_token, refresh) == 0);
	test_assert(strcmp(s.api_url, "https://api.omi.me") == 0);
	test_assert(strcmp(s.firebase_api_key, "KEY") == 0);
	test_assert(strcmp(s.user_id, "uid") == 0 && s.created == 1000);
	session_free(&s);
}

static void test_rotation_saved(void)
{
	struct fake f = { .now = 0 };
	struct answer a[] = { { .status = 200, .body = RENEWED("ID-1", "REFRESH-2", "3600") },
			      { .status = 200, .body = RENEWED("ID-2", "REFRESH-3", "3600") },
			      { .status = 200, .body = RENEWED("ID-3", "REFRESH-3", "3600") } };
	struct credentials *c;

	script(&f, 3, a);
	c = start(&f, "REFRESH-1");
	test_assert(strcmp(token_ok(c), "ID-1") == 0);
	check_file("REFRESH-2");
	/* The next renewal sends the rotated token. */
	test_assert(credentials_refused(c));
	test_assert(strcmp(token_ok(c), "ID-2") == 0);
	test_assert(strcmp(f.last_body, "grant_type=refresh_token&refresh_token=REFRESH-2") == 0);
	check_file("REFRESH-3");

	/* A newer sign-in in the file is not overwritten by a rotation. */
	write_session("REFRESH-NEW", "https://api.omi.me", "KEY");
	script(&f, 1,
	       (struct answer[]){
		       { .status = 200, .body = RENEWED("ID-4", "REFRESH-4", "3600") } });
	f.calls = 0;
	test_assert(credentials_refused(c));
	test_assert(strcmp(token_ok(c), "ID-4") == 0);
	test_assert(strcmp(f.last_body, "grant_type=refresh_token&refresh_token=REFRESH-3") == 0);
	check_file("REFRESH-NEW");
	/* A file that cannot be read is warned about, and left alone. */
	write_session("REFRESH-4", "https://api.omi.me", "KEY");
	test_assert(chmod(path, 0640) == 0);
	script(&f, 1,
	       (struct answer[]){
		       { .status = 200, .body = RENEWED("ID-6", "REFRESH-6", "3600") } });
	test_assert(credentials_refused(c));
	test_assert(strcmp(token_ok(c), "ID-6") == 0);
	test_assert(f.warnings == 1);
	test_assert(chmod(path, 0600) == 0);
	check_file("REFRESH-4");
	/* Nor is a file --logout removed brought back. */
	test_assert(session_remove(path, NULL, 0) == 0);
	script(&f, 1,
	       (struct answer[]){
		       { .status = 200, .body = RENEWED("ID-5", "REFRESH-5", "3600") } });
	test_assert(credentials_refused(c));
	test_assert(strcmp(token_ok(c), "ID-5") == 0);
	struct stat st;

	test_assert(stat(path, &st) < 0 && errno == ENOENT);
	test_assert(f.warnings == 1);
	credentials_free(c);
}

static void ends(const struct answer *a, const char *words)
{
	struct fake f = { .now = 0 };
	struct credentials *c;

	script(&f, 1, a);
	c = start(&f, "REFRESH-1");
	token_fails(c, CRED_ENDED, -EACCES, words);
	test_assert(f.calls == 1);
	/* Ended: no more traffic, the same answer; a 401 cannot help. */
	token_fails(c, CRED_ENDED, -EACCES, words);
	test_assert(!credentials_refused(c));
	test_assert(f.calls == 1);
	credentials_free(c);
}

static void test_refusals(void)
{
	/* Each refusal Firebase names, one line with its cure; others as given. */
	static const char *const codes[][2] = {
		{ "TOKEN_EXPIRED", "the session has expired (TOKEN_EXPIRED); sign in again with "
				   "omikeyfs --login" },
		{ "USER_DISABLED", "the Omi account is disabled (USER_DISABLED); sign in again "
				   "with omikeyfs --login" },
		{ "USER_NOT_FOUND", "the Omi account no longer exists (USER_NOT_FOUND); sign in "
				    "again with omikeyfs --login" },
		{ "INVALID_REFRESH_TOKEN", "the session's refresh token is not valid "
					   "(INVALID_REFRESH_TOKEN); sign in again with omikeyfs "
					   "--login" },
		{ "INVALID_GRANT_TYPE", "the session has ended (HTTP 400: INVALID_GRANT_TYPE : "
					"details); sign in again with omikeyfs --login" },
		{ "SOMETHING_ELSE", "the session has ended (HTTP 400: SOMETHING_ELSE : details); "
				    "sign in again with omikeyfs --login" },
	};

	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		char body[128];

		snprintf(body, sizeof(body), FB_ERROR(400, "%s : details"), codes[i][0]);
		ends((struct answer[]){ { .status = 400, .body = body } }, codes[i][1]);
	}
	ends((struct answer[]){ { .status = 400, .body = "not json" } },
	     "the session has ended (HTTP 400); sign in again with omikeyfs --login");
	ends((struct answer[]){ { .status = 403,
				  .body = FB_ERROR(403,
						   "The request is missing a valid API key.") } },
	     "Firebase refused the Web API key (HTTP 403: The request is missing a valid "
	     "API key.); sign in again with omikeyfs --login -o firebase_api_key=KEY");
	ends((struct answer[]){ { .status = 403,
				  .body = FB_ERROR(403, "API_KEY_HTTP_REFERRER_BLOCKED") } },
	     "Firebase refused the Web API key: it is restricted to web browsers "
	     "(API_KEY_HTTP_REFERRER_BLOCKED); sign in again with omikeyfs --login -o "
	     "firebase_api_key=KEY");
}

static void test_healing(void)
{
	struct fake f = { .now = 0 };
	struct answer a[] = { { .status = 400, .body = FB_ERROR(400, "TOKEN_EXPIRED") },
			      { .status = 200, .body = RENEWED("ID-9", "REFRESH-9", "3600") } };
	struct credentials *c;

	script(&f, 2, a);
	c = start(&f, "REFRESH-1");
	token_fails(c, CRED_ENDED, -EACCES, "TOKEN_EXPIRED");
	/* A sign-in for another API does not heal this mount. */
	write_session("REFRESH-OTHER", "https://other.example", "KEY");
	token_fails(c, CRED_ENDED, -EACCES, "another API URL");
	write_session("REFRESH-OTHER", "https://api.omi.me", "OTHER-KEY");
	token_fails(c, CRED_ENDED, -EACCES, "another API URL or Firebase API key");
	test_assert(f.calls == 1);
	/* A new --login does. */
	write_session("REFRESH-9", "https://api.omi.me", "KEY");
	test_assert(strcmp(token_ok(c), "ID-9") == 0);
	test_assert(f.calls == 2);
	test_assert(strcmp(f.last_body, "grant_type=refresh_token&refresh_token=REFRESH-9") == 0);
	credentials_free(c);
}

/* The same refresh token saved by a new --login (the Auth Emulator gives
 * a user the same one every time) heals as well; the old file does not. */
static void test_healing_with_the_same_token(void)
{
	struct fake f = { .now = 0 };
	struct answer a[] = { { .status = 400, .body = FB_ERROR(400, "USER_DISABLED") },
			      { .status = 200,
				.body = RENEWED_AS("ID-2", "REFRESH-1", "3600", "other-uid") } };
	struct credentials *c;

	script(&f, 2, a);
	c = start(&f, "REFRESH-1");
	test_assert(strcmp(credentials_user_id(c), "uid") == 0);
	token_fails(c, CRED_ENDED, -EACCES, "USER_DISABLED");
	write_session_made("REFRESH-1", "uid", 1000);
	token_fails(c, CRED_ENDED, -EACCES, "USER_DISABLED");
	test_assert(f.calls == 1);
	write_session_made("REFRESH-1", "other-uid", 2000);
	test_assert(strcmp(token_ok(c), "ID-2") == 0);
	test_assert(f.calls == 2);
	/* Whose list it is now. */
	test_assert(strcmp(credentials_user_id(c), "other-uid") == 0);
	credentials_free(c);
}

/* A renewal that answers for another user than the session file names is
 * no renewal of this session: refused for good, the rotated refresh token
 * not saved, no ID token given; a new --login heals it. */
static void test_renewal_for_another_user(void)
{
	struct fake f = { .now = 0 };
	struct answer a[] = { { .status = 200,
				.body = RENEWED_AS("ID-M", "REFRESH-M", "3600", "mallory") },
			      { .status = 200, .body = RENEWED("ID-2", "REFRESH-2", "3600") } };
	struct credentials *c;
	struct session s;

	script(&f, 2, a);
	c = start(&f, "REFRESH-1");
	token_fails(c, CRED_ENDED, -EACCES, "another user than the session file's (uid)");
	token_fails(c, CRED_ENDED, -EACCES, "another user");
	test_assert(f.calls == 1);
	test_assert(session_load(path, &s, NULL, 0) == 0);
	test_assert(strcmp(s.refresh_token, "REFRESH-1") == 0);
	session_free(&s);
	test_assert(strcmp(credentials_user_id(c), "uid") == 0);
	write_session_made("REFRESH-2", "uid", 2000);
	test_assert(strcmp(token_ok(c), "ID-2") == 0);
	credentials_free(c);
}

/* Renewals an hour with Firebase's 3600 s tokens, one fetch a minute (the
 * default TTL) for a day: each token serves 3540 s (renewed 60 s early). */
static void test_renewals_per_hour(void)
{
	struct fake f = { .now = 0 };
	struct answer a[] = { { .status = 200, .body = RENEWED("ID", "REFRESH-1", "3600") } };
	struct credentials *c;

	script(&f, 1, a);
	c = start(&f, "REFRESH-1");
	for (int minute = 0; minute < 24 * 60; minute++) {
		f.now = (int64_t)minute * 60000;
		test_assert(strcmp(token_ok(c), "ID") == 0);
	}
	/* Renewed at minutes 0, 59, 118, ...: every 59 minutes. */
	test_assert(f.calls == 25);
	fprintf(stderr, "renewals in 24 h of fetches every 60 s: %d (%.3f an hour)\n", f.calls,
		f.calls / 24.0);
	credentials_free(c);
}

static void test_transient(void)
{
	struct fake f = { .now = 0 };
	struct answer a[] = { { .status = 503, .body = FB_ERROR(503, "UNAVAILABLE") },
			      { .status = 0, .body = NULL, -ETIMEDOUT },
			      { .status = 429, .body = NULL },
			      { .status = 200, .body = "{\"id_token\": \"ID-1\"}" },
			      { .status = 200, .body = RENEWED("ID-1", "REFRESH-1", "3600") },
			      { .status = 500, .body = NULL } };
	struct credentials *c;

	script(&f, 6, a);
	c = start(&f, "REFRESH-1");
	token_fails(c, CRED_TRANSIENT, -EIO, "cannot renew the sign-in: HTTP 503: UNAVAILABLE");
	token_fails(c, CRED_TRANSIENT, -ETIMEDOUT,
		    "cannot renew the sign-in: Connection timed out");
	token_fails(c, CRED_TRANSIENT, -EAGAIN, "HTTP 429");
	token_fails(c, CRED_TRANSIENT, -EPROTO, "malformed");
	test_assert(f.calls == 4);
	/* Nothing ended: the next call tries again, and works. */
	test_assert(strcmp(token_ok(c), "ID-1") == 0);
	test_assert(f.calls == 5);
	/* Renewing early fails: the token has 30 s left, so it is still given. */
	f.now = 3600 * 1000 - 30000;
	test_assert(strcmp(token_ok(c), "ID-1") == 0);
	test_assert(f.calls == 6);
	/* Once it has expired, it is not. */
	f.now = 3600 * 1000;
	token_fails(c, CRED_TRANSIENT, -EIO, "HTTP 500");
	check_file("REFRESH-1");
	credentials_free(c);
}

static void test_wrong_api(void)
{
	struct fake f = { 0 };
	struct session s = { "R", "https://api.omi.me", "KEY", "uid", 1, NULL };
	struct cred_session_config cfg = {
		.session_path = path,
		.session = &s,
		.api_url = "http://127.0.0.1:8080",
		.renew = { fake_post, &f },
	};
	struct credentials *c = (struct credentials *)&f;
	struct cred_error err;

	test_assert(credentials_session(&cfg, &c, &err) == -EACCES);
	test_assert(c == NULL && err.kind == CRED_ENDED);
	test_assert(strstr(err.message, "was made for https://api.omi.me, not "
					"http://127.0.0.1:8080; sign in with omikeyfs --login"));
	/* Not checked when the mount gives no URL; the real clock then. */
	cfg.api_url = NULL;
	test_assert(credentials_session(&cfg, &c, &err) == 0);
	credentials_free(c);
}

static int rereads;
static const char *next_token;

static char *reread(void *ctx)
{
	rereads++;
	return next_token ? strdup(next_token) : NULL;
}

static void test_bearer(void)
{
	struct credentials *c = credentials_bearer("omi_dev_1", reread, NULL);
	struct cred_error err;
	const char *token;

	test_assert(credentials_user_id(c) == NULL);
	test_assert(!credentials_is_session(c));
	test_assert(strcmp(token_ok(c), "omi_dev_1") == 0);
	test_assert(rereads == 0);
	/* 401 with the key file unchanged: a retry is not worth it. */
	next_token = "omi_dev_1";
	test_assert(!credentials_refused(c));
	next_token = NULL;
	test_assert(!credentials_refused(c));
	test_assert(strcmp(token_ok(c), "omi_dev_1") == 0);
	/* Edited: it is. */
	next_token = "omi_dev_2";
	test_assert(credentials_refused(c));
	test_assert(strcmp(token_ok(c), "omi_dev_2") == 0);
	test_assert(rereads == 3);
	credentials_free(c);

	/* No token at all, and none to be read. */
	next_token = NULL;
	c = credentials_bearer(NULL, NULL, NULL);
	test_assert(credentials_token(c, &token, &err) == -EACCES);
	test_assert(err.kind == CRED_NO_TOKEN && token == NULL);
	credentials_free(c);
	credentials_free(NULL);
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/omikeyfs-cred-XXXXXX");
	test_assert(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/session.json", dir);
	test_run(test_renews_before_expiry);
	test_run(test_refused_renews_once);
	test_run(test_rotation_saved);
	test_run(test_refusals);
	test_run(test_healing);
	test_run(test_healing_with_the_same_token);
	test_run(test_renewal_for_another_user);
	test_run(test_renewals_per_hour);
	test_run(test_transient);
	test_run(test_wrong_api);
	test_run(test_bearer);
	remove(path);
	test_assert(rmdir(dir) == 0);
	return 0;
}
