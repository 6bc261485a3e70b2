/* Unit test of login and loopback: the test plays the browser on a real
 * loopback socket; Omi's /v1/auth/token and Firebase are fakes. */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include "login.h"
#include "loopback.h"
#include "pkce.h"
#include "session.h"
#include "test.h"

#define LIT(s) (s), (sizeof(s) - 1)

struct fake {
	long status;
	const char *answer;
	int calls;
	char type[64];
	char body[1024];
};

static void fake_post(void *ctx, const char *type, const char *body, size_t len,
		      struct post_result *out)
{
	struct fake *f = ctx;

	f->calls++;
	snprintf(f->type, sizeof(f->type), "%s", type);
	test_assert(len == strlen(body) && len < sizeof(f->body));
	memcpy(f->body, body, len + 1);
	out->status = f->status;
	if (f->answer) {
		out->body = strdup(f->answer);
		out->len = strlen(f->answer);
	}
}

struct run {
	struct login_config cfg;
	struct fake omi, fb;
	struct login_error err;
	int rc;
	FILE *urls; /* read end of cfg.out */
	pthread_t thread;
	unsigned port;
	char state[128], challenge[128], url[1024];
};

static char dir[64], path[128];
static const char *opener; /* for the next start() */

static void *run_login(void *arg)
{
	struct run *r = arg;

	r->rc = login_run(&r->cfg, &r->err);
	fclose(r->cfg.out);
	return NULL;
}

/* Between "name=" and the next '&' of the printed URL. */
static void param(const char *url, const char *name, char *out, size_t outlen)
{
	const char *p = strstr(url, name), *end;

	test_assert(p);
	p += strlen(name);
	end = strchr(p, '&');
	if (!end)
		end = p + strlen(p);
	test_assert((size_t)(end - p) < outlen);
	memcpy(out, p, (size_t)(end - p));
	out[end - p] = '\0';
}

static void start(struct run *r, long timeout_ms)
{
	int fds[2];
	char port[64];

	memset(r, 0, sizeof(*r));
	r->omi.status = 200;
	r->omi.answer = "{\"custom_token\": \"CUSTOM-1\", \"provider\": \"google\", "
			"\"token_type\": \"Bearer\", \"expires_in\": 3600}";
	r->fb.status = 200;
	r->fb.answer = "{\"idToken\": \"ID-1\", \"refreshToken\": \"REFRESH-1\", "
		       "\"expiresIn\": \"3600\", \"localId\": \"uid-7\"}";
	test_assert(pipe(fds) == 0);
	r->urls = fdopen(fds[0], "r");
	r->cfg = (struct login_config){
		.api_url = "https://api.omi.test/",
		.provider = "google",
		.timeout_ms = timeout_ms,
		.session_path = path,
		.firebase_api_key = "AIzaKEY",
		.omi_token = { fake_post, &r->omi },
		.firebase_sign_in = { fake_post, &r->fb },
		.out = fdopen(fds[1], "w"),
		.open_browser = opener != NULL,
		.opener = opener,
	};
	test_assert(pthread_create(&r->thread, NULL, run_login, r) == 0);
	/* The URL line tells the browser where to go, as it tells the user. */
	test_assert(fgets(r->url, sizeof(r->url), r->urls));
	test_assert(strchr(r->url, '\n'));
	*strchr(r->url, '\n') = '\0';
	test_assert(strncmp(r->url,
			    "https://api.omi.test/v1/auth/authorize?provider=google&"
			    "redirect_uri=http%3A%2F%2F127.0.0.1%3A",
			    84) == 0);
	test_assert(strstr(r->url, "%2Fcallback&state="));
	test_assert(strstr(r->url, "&code_challenge_method=S256"));
	param(r->url, "127.0.0.1%3A", port, sizeof(port));
	r->port = (unsigned)atoi(port);
	test_assert(r->port > 0);
	param(r->url, "state=", r->state, sizeof(r->state));
	param(r->url, "code_challenge=", r->challenge, sizeof(r->challenge));
	test_assert(strlen(r->state) == PKCE_STRING_LEN && strlen(r->challenge) == PKCE_STRING_LEN);
}

static int finish(struct run *r)
{
	test_assert(pthread_join(r->thread, NULL) == 0);
	test_assert(fgetc(r->urls) == EOF);
	fclose(r->urls);
	return r->rc;
}

static int connect_to(unsigned port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	test_assert(fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0);
	return fd;
}

/* One request; the whole answer, read to EOF. */
static void browse(unsigned port, const char *request, char *answer, size_t len)
{
	int fd = connect_to(port);
	size_t got = 0;
	ssize_t n;

	test_assert(write(fd, request, strlen(request)) == (ssize_t)strlen(request));
	while (got < len - 1 && (n = read(fd, answer + got, len - 1 - got)) > 0)
		got += (size_t)n;
	answer[got] = '\0';
	close(fd);
}

static void callback(struct run *r, const char *query, char *answer, size_t len)
{
	char req[1024];

	snprintf(req, sizeof(req),
		 "GET /callback?%s HTTP/1.1\r\nHost: 127.0.0.1:%u\r\n"
		 "User-Agent: test\r\n\r\n",
		 query, r->port);
	browse(r->port, req, answer, len);
}

static void test_success(void)
{
	struct run r;
	char q[256], page[1024], want[512], challenge[PKCE_STRING_LEN + 1];
	struct session s;
	struct stat st;

	unlink(path);
	start(&r, 0);
	/* Another path first: 404, and the wait goes on. */
	browse(r.port, "GET /favicon.ico HTTP/1.1\r\n\r\n", page, sizeof(page));
	test_assert(strncmp(page, "HTTP/1.1 404 ", 13) == 0);
	/* A client that connects and sends half a request holds nothing up. */
	int slow = connect_to(r.port);

	test_assert(write(slow, "GET /callback?co", 16) == 16);
	snprintf(q, sizeof(q), "code=CODE%%2F1&state=%s&scope=x", r.state);
	callback(&r, q, page, sizeof(page));
	test_assert(strncmp(page, "HTTP/1.1 200 OK\r\n", 17) == 0);
	test_assert(strstr(page, "\r\n\r\nSigned in to omikeyfs; you may close this tab.\n"));
	test_assert(!strstr(page, "CODE"));
	test_assert(finish(&r) == 0);
	close(slow);

	/* The code went to Omi with the verifier of the challenge. */
	test_assert(r.omi.calls == 1);
	test_assert(strcmp(r.omi.type, "application/x-www-form-urlencoded") == 0);
	snprintf(want, sizeof(want),
		 "grant_type=authorization_code&code=CODE%%2F1&redirect_uri="
		 "http%%3A%%2F%%2F127.0.0.1%%3A%u%%2Fcallback&use_custom_token=true&code_verifier=",
		 r.port);
	test_assert(strncmp(r.omi.body, want, strlen(want)) == 0);
	const char *verifier = r.omi.body + strlen(want);

	test_assert(strlen(verifier) == PKCE_STRING_LEN);
	pkce_challenge(verifier, challenge);
	test_assert(strcmp(challenge, r.challenge) == 0);
	/* The custom token went to Firebase. */
	test_assert(r.fb.calls == 1 && strcmp(r.fb.type, "application/json") == 0);
	test_assert(strcmp(r.fb.body, "{\"token\":\"CUSTOM-1\",\"returnSecureToken\":true}") == 0);

	test_assert(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	test_assert(session_load(path, &s, NULL, 0) == 0);
	test_assert(strcmp(s.refresh_token, "REFRESH-1") == 0);
	test_assert(strcmp(s.api_url, "https://api.omi.test/") == 0);
	test_assert(strcmp(s.firebase_api_key, "AIzaKEY") == 0);
	test_assert(strcmp(s.user_id, "uid-7") == 0 && s.created > 0);
	session_free(&s);
}

/* The session file as it was before a failed sign-in. */
static const char *before = "{\"version\": 1, \"api_url\": \"https://api.omi.test\", "
			    "\"firebase_api_key\": \"K\", \"user_id\": \"u\", "
			    "\"refresh_token\": \"OLD\", \"created\": 5}";

static void prepare_file(void)
{
	FILE *f = fopen(path, "w");

	test_assert(f && fputs(before, f) >= 0 && fclose(f) == 0);
	test_assert(chmod(path, 0600) == 0);
}

static void file_unchanged(void)
{
	char buf[512];
	FILE *f = fopen(path, "r");
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);

	fclose(f);
	buf[n] = '\0';
	test_assert(strcmp(buf, before) == 0);
}

static void fails(struct run *r, int e, const char *words)
{
	test_assert(finish(r) == e);
	test_assert(r->err.err == e);
	if (!strstr(r->err.message, words))
		fprintf(stderr, "message \"%s\" lacks \"%s\"\n", r->err.message, words);
	test_assert(strstr(r->err.message, words));
	test_assert(!strchr(r->err.message, '\n'));
	test_assert(!strstr(r->err.message, "CODE") && !strstr(r->err.message, "CUSTOM-"));
	file_unchanged();
}

/* A callback without this sign-in's state, from anyone: a 400 page and
 * the wait goes on; the browser's own callback still signs in. */
static void test_wrong_state(void)
{
	static const char *const forged[] = {
		"code=CODE1&state=forged",          "code=CODE1", "error=access_denied",
		"error=access_denied&state=forged", "state=",     "",
	};
	struct run r;
	char page[1024], q[256];

	prepare_file();
	start(&r, 0);
	for (size_t i = 0; i < sizeof(forged) / sizeof(forged[0]); i++) {
		callback(&r, forged[i], page, sizeof(page));
		test_assert(strncmp(page, "HTTP/1.1 400 ", 13) == 0);
		test_assert(strstr(page, "not the sign-in omikeyfs is waiting for"));
		test_assert(!strstr(page, "CODE"));
	}
	/* The state with one byte changed is as wrong. */
	snprintf(q, sizeof(q), "code=CODE1&state=%s", r.state);
	q[strlen(q) - 1] ^= 1;
	callback(&r, q, page, sizeof(page));
	test_assert(strncmp(page, "HTTP/1.1 400 ", 13) == 0);
	test_assert(r.omi.calls == 0 && r.fb.calls == 0);
	snprintf(q, sizeof(q), "code=CODE2&state=%s", r.state);
	callback(&r, q, page, sizeof(page));
	test_assert(strncmp(page, "HTTP/1.1 200 OK\r\n", 17) == 0);
	test_assert(finish(&r) == 0);
	test_assert(r.omi.calls == 1 && strstr(r.omi.body, "code=CODE2&"));
}

static void test_error(void)
{
	struct run r;
	char page[1024], q[256];

	prepare_file();
	start(&r, 0);
	snprintf(q, sizeof(q), "error=access_denied%%0A%%1B&state=%s", r.state);
	callback(&r, q, page, sizeof(page));
	test_assert(strncmp(page, "HTTP/1.1 400 ", 13) == 0);
	test_assert(!strstr(page, "access_denied"));
	fails(&r, -EACCES, "the sign-in failed: access_denied??");
	test_assert(r.omi.calls == 0);

	/* Right state, no code. */
	start(&r, 0);
	snprintf(q, sizeof(q), "state=%s", r.state);
	callback(&r, q, page, sizeof(page));
	fails(&r, -EPROTO, "carried no code");
}

static void test_refused_code(void)
{
	struct run r;
	char page[1024], q[256];

	prepare_file();
	start(&r, 0);
	r.omi.status = 400;
	r.omi.answer = "{\"detail\": \"Invalid or expired code\\u001b[0m\"}";
	snprintf(q, sizeof(q), "code=CODE1&state=%s", r.state);
	callback(&r, q, page, sizeof(page));
	fails(&r, -EACCES,
	      "the Omi API refused the sign-in code (HTTP 400: Invalid or expired code?[0m)");
	test_assert(r.omi.calls == 1 && r.fb.calls == 0);

	/* A detail that is no string (FastAPI's validation errors): the
	 * status alone. */
	start(&r, 0);
	r.omi.status = 422;
	r.omi.answer = "{\"detail\": [{\"loc\": [\"body\", \"code\"], \"msg\": \"missing\"}]}";
	snprintf(q, sizeof(q), "code=CODE1&state=%s", r.state);
	callback(&r, q, page, sizeof(page));
	fails(&r, -EACCES, "the Omi API refused the sign-in code (HTTP 422)");

	/* A 200 without a custom token. */
	start(&r, 0);
	r.omi.answer = "{\"id_token\": \"x\"}";
	snprintf(q, sizeof(q), "code=CODE1&state=%s", r.state);
	callback(&r, q, page, sizeof(page));
	fails(&r, -EPROTO, "the Omi API's answer is malformed: no \"custom_token\"");

	/* Firebase refuses the custom token. */
	start(&r, 0);
	r.fb.status = 400;
	r.fb.answer = "{\"error\": {\"code\": 400, \"message\": \"INVALID_CUSTOM_TOKEN\"}}";
	snprintf(q, sizeof(q), "code=CODE1&state=%s", r.state);
	callback(&r, q, page, sizeof(page));
	fails(&r, -EACCES,
	      "Firebase refused Omi's sign-in token: the Web API key may be of another Firebase "
	      "project than Omi's (INVALID_CUSTOM_TOKEN); give the right key with -o "
	      "firebase_api_key=KEY");
	test_assert(r.fb.calls == 1);

	/* Omi cannot mint the custom token: its 502 is no refusal. */
	start(&r, 0);
	r.omi.status = 502;
	r.omi.answer = "{\"detail\": \"Failed to generate authentication token\"}";
	snprintf(q, sizeof(q), "code=CODE1&state=%s", r.state);
	callback(&r, q, page, sizeof(page));
	fails(&r, -EIO,
	      "the Omi API could not finish the sign-in (HTTP 502: Failed to generate "
	      "authentication token); try again");
	test_assert(r.fb.calls == 0);
}

static void test_timeout(void)
{
	struct run r;
	int silent;

	prepare_file();
	start(&r, 300);
	/* A connected client that never speaks does not stop the deadline. */
	silent = connect_to(r.port);
	fails(&r, -ETIMEDOUT, "timed out waiting for the sign-in (0.3 s)");
	close(silent);
	test_assert(r.omi.calls == 0);
}

static void test_bad_provider(void)
{
	struct login_config cfg = { .provider = "github" };
	struct login_error err;

	test_assert(login_run(&cfg, &err) == -EINVAL);
	test_assert(strstr(err.message, "google or apple"));
}

static enum loopback_kind parse(const char *buf, size_t len, struct loopback_request *req)
{
	return loopback_parse(buf, len, req);
}

static void test_parse(void)
{
	struct loopback_request q;

	test_assert(parse(LIT("GET /callback?code=a HTTP/1.1\r\nHost: x\r\n"), &q) ==
		    LOOPBACK_INCOMPLETE);
	test_assert(parse(LIT("GET /callback?code=a+b%2f&state=s&error=e HTTP/1.1\r\n\r\n"), &q) ==
		    LOOPBACK_CALLBACK);
	test_assert(strcmp(q.code, "a b/") == 0 && strcmp(q.state, "s") == 0);
	test_assert(strcmp(q.error, "e") == 0);
	loopback_request_free(&q);
	test_assert(parse(LIT("GET /callback HTTP/1.0\n\n"), &q) == LOOPBACK_CALLBACK);
	test_assert(!q.code && !q.state && !q.error);
	test_assert(parse(LIT("GET /callback?code=a&code=b HTTP/1.1\r\n\r\n"), &q) == LOOPBACK_BAD);
	test_assert(!q.code);
	test_assert(parse(LIT("GET /callback?state=%zz HTTP/1.1\r\n\r\n"), &q) == LOOPBACK_BAD);
	test_assert(parse(LIT("GET /callback?state=%00 HTTP/1.1\r\n\r\n"), &q) == LOOPBACK_BAD);
	test_assert(parse(LIT("GET /callbackx?code=1 HTTP/1.1\r\n\r\n"), &q) == LOOPBACK_OTHER);
	test_assert(parse(LIT("GET /callback/?code=1 HTTP/1.1\r\n\r\n"), &q) == LOOPBACK_OTHER);
	test_assert(parse(LIT("POST /callback?code=1 HTTP/1.1\r\n\r\n"), &q) == LOOPBACK_OTHER);
	test_assert(parse(LIT("GET / HTTP/1.1\r\n\r\n"), &q) == LOOPBACK_OTHER);
	test_assert(parse(LIT("GET /callback\r\n\r\n"), &q) == LOOPBACK_BAD);
	test_assert(parse(LIT("garbage\r\n\r\n"), &q) == LOOPBACK_BAD);
	test_assert(parse(LIT("GET /callback?code=1 SMTP/1.1\r\n\r\n"), &q) == LOOPBACK_BAD);
}

/* An oversized request is answered 400 and the wait goes on. */
static void test_too_large(void)
{
	struct run r;
	char page[1024], q[256];
	char *big = malloc(LOOPBACK_REQUEST_MAX + 1);

	prepare_file();
	start(&r, 0);
	/* Exactly the cap, so that the server reads it all and its close is
	 * no reset that could discard the answer. */
	memset(big, 'a', LOOPBACK_REQUEST_MAX);
	memcpy(big, "GET /x?", 7);
	big[LOOPBACK_REQUEST_MAX] = '\0';
	browse(r.port, big, page, sizeof(page));
	test_assert(strncmp(page, "HTTP/1.1 400 ", 13) == 0);
	free(big);
	snprintf(q, sizeof(q), "error=cancelled&state=%s", r.state);
	callback(&r, q, page, sizeof(page));
	fails(&r, -EACCES, "the sign-in failed: cancelled");
}

/* The browser opener gets a private page that sends the browser to the
 * URL, never the URL itself, and none of the listener's sockets. */
static void test_opener(void)
{
	char script[160], fifo[160], line[1024], page[1024], q[256], file[1024];
	struct run r;
	FILE *f;

	snprintf(script, sizeof(script), "%s/opener.sh", dir);
	snprintf(fifo, sizeof(fifo), "%s/opener.fifo", dir);
	test_assert(mkfifo(fifo, 0600) == 0);
	f = fopen(script, "w");
	test_assert(f);
	fprintf(f,
		"#!/bin/sh\nexec >%s\necho \"$1\"\n"
		"ls -l /proc/$$/fd/ | grep -c socket\n"
		"stat -c %%a \"$1\"; stat -c %%a \"${1%%/*}\"; cat \"$1\"\n",
		fifo);
	test_assert(fclose(f) == 0 && chmod(script, 0700) == 0);

	prepare_file();
	opener = script;
	start(&r, 0);
	opener = NULL;
	f = fopen(fifo, "r");
	test_assert(f && fgets(line, sizeof(line), f));
	test_assert(!strstr(line, r.state) && strstr(line, "/omikeyfs-login-"));
	test_assert(strlen(line) > 14 && strcmp(line + strlen(line) - 14, "/sign-in.html\n") == 0);
	*strchr(line, '\n') = '\0';
	snprintf(file, sizeof(file), "%s", line);
	test_assert(fgets(line, sizeof(line), f) && strcmp(line, "0\n") == 0);
	test_assert(fgets(line, sizeof(line), f) && strcmp(line, "600\n") == 0);
	test_assert(fgets(line, sizeof(line), f) && strcmp(line, "700\n") == 0);
	/* The page holds the URL, & as &amp;. */
	bool refresh = false;

	while (fgets(line, sizeof(line), f))
		if (strstr(line, "http-equiv=\"refresh\"") && strstr(line, r.state) &&
		    strstr(line, "provider=google&amp;redirect_uri="))
			refresh = true;
	test_assert(refresh);
	fclose(f);
	snprintf(q, sizeof(q), "error=x&state=%s", r.state);
	callback(&r, q, page, sizeof(page));
	fails(&r, -EACCES, "the sign-in failed: x");
	/* Gone once the sign-in is over, directory and all. */
	test_assert(access(file, F_OK) < 0 && errno == ENOENT);
	*strrchr(file, '/') = '\0';
	test_assert(access(file, F_OK) < 0 && errno == ENOENT);
	unlink(fifo);
	unlink(script);

	/* A missing opener is no error. */
	opener = "/nonexistent/xdg-open";
	start(&r, 0);
	opener = NULL;
	snprintf(q, sizeof(q), "error=y&state=%s", r.state);
	callback(&r, q, page, sizeof(page));
	fails(&r, -EACCES, "the sign-in failed: y");
}

int main(void)
{
	snprintf(dir, sizeof(dir), "/tmp/omikeyfs-login-XXXXXX");
	test_assert(mkdtemp(dir));
	snprintf(path, sizeof(path), "%s/session.json", dir);
	test_run(test_parse);
	test_run(test_bad_provider);
	test_run(test_success);
	test_run(test_wrong_state);
	test_run(test_error);
	test_run(test_refused_code);
	test_run(test_timeout);
	test_run(test_too_large);
	test_run(test_opener);
	unlink(path);
	test_assert(rmdir(dir) == 0);
	return 0;
}
