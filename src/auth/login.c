/*
 * login: `omikeyfs --login`.  The flow is Omi's own CLI's (RFC 8252
 * loopback redirect with PKCE), ending where a mount begins: a session file
 * holding a Firebase refresh token.  Every step either succeeds or leaves
 * the session file as it was; the code, the verifier and every token are
 * wiped when done.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#include "apierror.h"
#include "clock.h"
#include "errmsg.h"
#include "firebase.h"
#include "jsonstrict.h"
#include "log.h"
#include "login.h"
#include "loopback.h"
#include "pkce.h"
#include "secret.h"
#include "session.h"
#include "urlenc.h"

#define PAGE_SIGNED_IN "Signed in to omikeyfs; you may close this tab.\n"
#define PAGE_FAILED "The sign-in to omikeyfs failed; see the terminal for why.\n"
#define PAGE_NOT_THIS                                                                              \
	"This is not the sign-in omikeyfs is waiting for (no or another state); "                  \
	"it goes on waiting.\n"

static int fail(struct login_error *err, int e, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct login_error *err, int e, const char *fmt, ...)
{
	va_list ap;

	err->err = e;
	va_start(ap, fmt);
	errmsg_vset(err->message, sizeof(err->message), fmt, ap);
	va_end(ap);
	return e;
}

int login_parse_token_answer(const char *body, size_t len, char **custom_token, char *err,
			     size_t errlen)
{
	char why[200];
	struct json_object *obj = jsonstrict_parse(body, len, why, sizeof(why));
	int r;

	*custom_token = NULL;
	if (!obj) {
		errmsg_set(err, errlen, "the Omi API's answer is %s", why);
		return -EBADMSG;
	}
	r = jsonstrict_string(obj, "custom_token", FIREBASE_TOKEN_MAX, JSONSTRICT_TOKEN,
			      custom_token, why, sizeof(why));
	jsonstrict_put(obj);
	if (r < 0) {
		errmsg_set(err, errlen, "the Omi API's answer is malformed: %s", why);
		return r == -ENOMEM ? r : -EBADMSG;
	}
	return 0;
}

/* FastAPI's {"detail": "..."} of an error, cleaned; "" when there is none. */
static void omi_detail(const struct post_result *res, char *out, size_t outlen)
{
	struct apierror e;

	out[0] = '\0';
	if (apierror_parse(res->body, res->len, &e) == 0 && e.shape == APIERROR_STRING)
		jsonstrict_clean(e.text, e.len, out, outlen);
	apierror_free(&e);
}

/* Start the browser without waiting for it: the child forks the opener
 * and exits at once, so nothing is left to reap and nothing waits.  What
 * it is given is a file name, never the sign-in URL: argv is readable by
 * every local user in /proc/PID/cmdline. */
static void open_browser(const char *opener, const char *file)
{
	char *argv[] = { (char *)opener, (char *)file, NULL };
	pid_t pid = fork();

	if (pid == 0) {
		if (fork() == 0) {
			int null = open("/dev/null", O_RDWR);

			if (null >= 0) {
				dup2(null, 0);
				dup2(null, 1);
				dup2(null, 2);
				if (null > 2)
					close(null);
			}
			setsid();
			execvp(opener, argv);
			_exit(127);
		}
		_exit(0);
	}
	if (pid > 0)
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR)
			;
}

/* The page that sends the browser on: a private directory and file. */
struct redirect_page {
	char *dir;  /* made 0700 by mkdtemp, or NULL */
	char *file; /* DIR/sign-in.html, 0600, or NULL */
};

static void redirect_page_remove(struct redirect_page *p)
{
	if (p->file)
		unlink(p->file);
	if (p->dir)
		rmdir(p->dir);
	free(p->file);
	free(p->dir);
	p->file = p->dir = NULL;
}

/* text with &, <, >, " and ' as HTML entities, malloc'd. */
static char *html_escape(const char *text)
{
	size_t n = 1;
	char *out, *o;

	for (const char *t = text; *t; t++)
		n += strchr("&<>\"'", *t) ? 6 : 1;
	if (!(o = out = malloc(n)))
		return NULL;
	for (const char *t = text; *t; t++) {
		const char *e = *t == '&'    ? "&amp;"
				: *t == '<'  ? "&lt;"
				: *t == '>'  ? "&gt;"
				: *t == '"'  ? "&quot;"
				: *t == '\'' ? "&#39;"
					     : NULL;

		if (e) {
			strcpy(o, e);
			o += strlen(e);
		} else {
			*o++ = *t;
		}
	}
	*o = '\0';
	return out;
}

/* Where the page's directory goes: $XDG_RUNTIME_DIR when it is the user's
 * own private directory, else /tmp (mkdtemp makes the directory 0700 and
 * no other user can enter it either way). */
static const char *private_base(void)
{
	const char *xdg = getenv("XDG_RUNTIME_DIR");
	struct stat st;

	if (xdg && xdg[0] == '/' && lstat(xdg, &st) == 0 && S_ISDIR(st.st_mode) &&
	    st.st_uid == geteuid() && !(st.st_mode & 077))
		return xdg;
	return "/tmp";
}

/* Write the page that sends the browser on to url (a meta refresh, and a
 * link for a browser that ignores it). */
static int redirect_page_write(struct redirect_page *p, const char *url)
{
	char *shown = html_escape(url), *page = NULL;
	int fd = -1, r = 0, n = 0;

	memset(p, 0, sizeof(*p));
	if (!shown || asprintf(&p->dir, "%s/omikeyfs-login-XXXXXX", private_base()) < 0) {
		p->dir = NULL;
		r = -ENOMEM;
		goto out;
	}
	if (!mkdtemp(p->dir)) {
		r = -errno;
		free(p->dir);
		p->dir = NULL;
		goto out;
	}
	if (asprintf(&p->file, "%s/sign-in.html", p->dir) < 0) {
		p->file = NULL;
		r = -ENOMEM;
		goto out;
	}
	n = asprintf(&page,
		     "<!DOCTYPE html>\n<html><head><meta charset=\"utf-8\">\n"
		     "<meta name=\"referrer\" content=\"no-referrer\">\n"
		     "<meta http-equiv=\"refresh\" content=\"0;url=%s\">\n"
		     "<title>omikeyfs sign-in</title></head>\n"
		     "<body><p><a href=\"%s\">Continue to the sign-in</a></p></body></html>\n",
		     shown, shown);
	if (n < 0) {
		page = NULL;
		r = -ENOMEM;
		goto out;
	}
	fd = open(p->file, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		r = -errno;
		free(p->file);
		p->file = NULL;
		goto out;
	}
	for (size_t done = 0; done < (size_t)n;) {
		ssize_t w = write(fd, page + done, (size_t)n - done);

		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0) {
			r = -errno;
			goto out;
		}
		done += (size_t)w;
	}
out:
	if (fd >= 0 && close(fd) < 0 && r == 0)
		r = -errno;
	if (page) {
		explicit_bzero(page, (size_t)n);
		free(page);
	}
	if (shown) {
		explicit_bzero(shown, strlen(shown));
		free(shown);
	}
	if (r < 0)
		redirect_page_remove(p);
	return r;
}

/* Open the browser on a page that sends it to url; without one, the
 * user opens the printed URL. */
static void start_browser(const struct login_config *cfg, const char *url,
			  struct redirect_page *page)
{
	int r = redirect_page_write(page, url);

	if (r < 0)
		log_warn("cannot write the page that opens the browser (%s); open the URL above "
			 "yourself",
			 strerror(-r));
	else
		open_browser(cfg->opener ? cfg->opener : "xdg-open", page->file);
}

static char *sign_in_url(const char *api_url, const char *provider, const char *redirect,
			 const char *state, const char *challenge)
{
	size_t n = strlen(api_url);
	char *p = url_escape(provider), *r = url_escape(redirect), *s = url_escape(state);
	char *c = url_escape(challenge), *url = NULL;

	while (n > 0 && api_url[n - 1] == '/')
		n--;
	if (p && r && s && c &&
	    asprintf(&url,
		     "%.*s/v1/auth/authorize?provider=%s&redirect_uri=%s&state=%s"
		     "&code_challenge=%s&code_challenge_method=S256",
		     (int)n, api_url, p, r, s, c) < 0)
		url = NULL;
	free(p);
	free(r);
	free(s);
	free(c);
	return url;
}

/* The callback's code -> Omi's custom token. */
static int exchange_code(const struct login_config *cfg, const char *code, const char *redirect,
			 const char *verifier, char **custom, struct login_error *err)
{
	struct post_result res = { 0 };
	char *ecode = url_escape(code), *eredirect = url_escape(redirect), *body = NULL;
	char why[256];
	int r;

	*custom = NULL;
	if (ecode && eredirect &&
	    asprintf(&body,
		     "grant_type=authorization_code&code=%s&redirect_uri=%s"
		     "&use_custom_token=true&code_verifier=%s",
		     ecode, eredirect, verifier) < 0)
		body = NULL;
	secret_free(ecode);
	free(eredirect);
	if (!body)
		return fail(err, -ENOMEM, "out of memory");
	cfg->omi_token.post(cfg->omi_token.ctx, "application/x-www-form-urlencoded", body,
			    strlen(body), &res);
	secret_free(body);
	if (res.err || res.status == 0) {
		jsonstrict_clean(res.message, strnlen(res.message, sizeof(res.message)), why,
				 sizeof(why));
		r = fail(err, res.err ? res.err : -EIO, "cannot reach the Omi API: %s",
			 why[0] ? why : "no answer");
	} else if (res.status >= 500) {
		omi_detail(&res, why, sizeof(why));
		r = fail(err, -EIO,
			 "the Omi API could not finish the sign-in (HTTP %ld%s%s); try again",
			 res.status, why[0] ? ": " : "", why);
	} else if (res.status != 200) {
		omi_detail(&res, why, sizeof(why));
		r = fail(err, -EACCES, "the Omi API refused the sign-in code (HTTP %ld%s%s)",
			 res.status, why[0] ? ": " : "", why);
	} else if ((r = login_parse_token_answer(res.body ? res.body : "", res.len, custom, why,
						 sizeof(why))) < 0) {
		fail(err, -EPROTO, "%s", why);
		r = -EPROTO;
	}
	post_result_clear(&res);
	return r;
}

/* Omi's custom token -> Firebase's refresh token and user id. */
static int firebase_sign_in(const struct login_config *cfg, const char *custom,
			    struct firebase_tokens *t, struct login_error *err)
{
	struct post_result res = { 0 };
	struct firebase_error fe;
	char *body = firebase_sign_in_body(custom), why[256];
	int r;

	memset(t, 0, sizeof(*t));
	if (!body)
		return fail(err, -ENOMEM, "out of memory");
	cfg->firebase_sign_in.post(cfg->firebase_sign_in.ctx, FIREBASE_SIGN_IN_TYPE, body,
				   strlen(body), &res);
	secret_free(body);
	if ((r = firebase_check(&res, &fe)) < 0) {
		if (fe.kind == FIREBASE_TRANSIENT) {
			fail(err, r, "cannot sign in at Firebase: %s", fe.message);
		} else {
			firebase_refusal_text(&fe, FIREBASE_SIGN_IN, why, sizeof(why));
			fail(err, r, "%s", why);
		}
	} else if ((r = firebase_parse_sign_in(res.body ? res.body : "", res.len, t, why,
					       sizeof(why))) < 0) {
		r = fail(err, -EPROTO, "%s", why);
	}
	post_result_clear(&res);
	return r;
}

/* Whether the callback carries this sign-in's state, compared without
 * leaking where it differs (the length is no secret). */
static bool state_matches(const struct loopback_request *req, const char *state)
{
	unsigned char diff = 0;

	if (!req->state || strlen(req->state) != strlen(state))
		return false;
	for (size_t i = 0; state[i]; i++)
		diff |= (unsigned char)(state[i] ^ req->state[i]);
	return diff == 0;
}

/* Check a callback with the right state: an error or no code ends the
 * sign-in. */
static int check_callback(const struct loopback_request *req, struct login_error *err)
{
	char shown[128];

	if (req->error) {
		jsonstrict_clean(req->error, strlen(req->error), shown, sizeof(shown));
		return fail(err, -EACCES, "the sign-in failed: %s", shown);
	}
	if (!req->code || !req->code[0])
		return fail(err, -EPROTO, "the sign-in callback carried no code");
	return 0;
}

/*
 * Wait for the callback of this sign-in, or its pasted address.  One
 * without its state (none, a wrong one, an ?error= without it) may come
 * from any local process or any web page: it gets a 400 page and the wait
 * goes on, so nobody but the browser that has the URL can end or steer
 * the sign-in.  A pasted address without the state is refused with a
 * line, and the wait goes on too.
 */
static int wait_callback(struct loopback *lb, const struct loopback_inputs *in, const char *state,
			 int64_t deadline, struct loopback_request *req)
{
	bool told = false;

	for (;;) {
		int r = loopback_wait(lb, deadline, in, req);

		if (r < 0 || state_matches(req, state))
			return r;
		if (req->pasted) {
			loopback_request_free(req);
			if (in->refused)
				in->refused(in->ctx, "that address is not this sign-in's (no or "
						     "another state: an older sign-in's?)");
			continue;
		}
		loopback_answer(lb, 400, PAGE_NOT_THIS, deadline);
		loopback_request_free(req);
		if (!told)
			log_warn("a callback without this sign-in's state was refused (an old "
				 "browser tab, or another program); still waiting");
		told = true;
	}
}

/* How the wait for the callback ended without one, worded. */
static int wait_failed(int r, long timeout, struct login_error *err)
{
	if (r == -ETIMEDOUT)
		return fail(err, r, "timed out waiting for the sign-in (%g s)", timeout / 1000.0);
	if (r == -ECANCELED)
		return fail(err, r, "the sign-in was cancelled; nothing was saved");
	return fail(err, r, "waiting for the sign-in: %s", strerror(-r));
}

/* The session Firebase's answer makes, saved where cfg says. */
static int save_signed_in(const struct login_config *cfg, const struct firebase_tokens *tokens,
			  struct login_error *err)
{
	struct session s = {
		.refresh_token = tokens->refresh_token,
		.api_url = (char *)cfg->api_url,
		.firebase_api_key = (char *)cfg->firebase_api_key,
		.user_id = tokens->user_id,
		.created = (long long)time(NULL),
		.email = tokens->email,
	};
	char why[256];
	int r = session_save(cfg->session_path, &s, why, sizeof(why));

	return r < 0 ? fail(err, r, "%s", why) : 0;
}

int login_run(const struct login_config *cfg, struct login_error *err)
{
	char verifier[PKCE_STRING_LEN + 1], challenge[PKCE_STRING_LEN + 1];
	char state[PKCE_STRING_LEN + 1], redirect[64], why[256];
	long timeout = cfg->timeout_ms > 0 ? cfg->timeout_ms : LOGIN_TIMEOUT_MS;
	int64_t deadline = clock_monotonic_ms() + timeout;
	struct loopback_request req = { 0 };
	struct firebase_tokens tokens = { 0 };
	struct loopback *lb = NULL;
	struct redirect_page page = { 0 };
	char *url = NULL, *custom = NULL;
	unsigned short port;
	int r;

	memset(err, 0, sizeof(*err));
	if (!cfg->provider || (strcmp(cfg->provider, "google") && strcmp(cfg->provider, "apple")))
		return fail(err, -EINVAL, "the sign-in provider must be google or apple");
	if (!cfg->api_url || !cfg->firebase_api_key || !cfg->session_path || !cfg->out)
		return fail(err, -EINVAL, "the sign-in is not fully configured");
	if ((r = pkce_verifier(verifier)) < 0 || (r = pkce_state(state)) < 0)
		return fail(err, r, "no random bytes: %s", strerror(-r));
	pkce_challenge(verifier, challenge);

	if ((r = loopback_open(cfg->port, &lb, &port, why, sizeof(why))) < 0) {
		fail(err, r, "%s", why);
		goto out;
	}
	snprintf(redirect, sizeof(redirect), "http://127.0.0.1:%u/callback", port);
	url = sign_in_url(cfg->api_url, cfg->provider, redirect, state, challenge);
	if (!url) {
		r = fail(err, -ENOMEM, "out of memory");
		goto out;
	}
	fprintf(cfg->out, "%s\n", url);
	fflush(cfg->out);
	if (cfg->open_browser)
		start_browser(cfg, url, &page);
	if (cfg->waiting)
		cfg->waiting(cfg->ctx, port);

	struct loopback_inputs in = {
		.paste_fd = cfg->paste ? cfg->paste_fd : -1,
		.cancel_fd = cfg->cancel_fd > 0 ? cfg->cancel_fd : -1,
		.refused = cfg->refused,
		.ctx = cfg->ctx,
	};
	r = wait_callback(lb, &in, state, deadline, &req);
	redirect_page_remove(&page);
	if (r < 0) {
		wait_failed(r, timeout, err);
		goto out;
	}
	r = check_callback(&req, err);
	/* A pasted address held no connection: loopback_answer has none. */
	loopback_answer(lb, r < 0 ? 400 : 200, r < 0 ? PAGE_FAILED : PAGE_SIGNED_IN, deadline);
	loopback_close(lb);
	lb = NULL;
	if (r < 0)
		goto out;

	if ((r = exchange_code(cfg, req.code, redirect, verifier, &custom, err)) < 0 ||
	    (r = firebase_sign_in(cfg, custom, &tokens, err)) < 0)
		goto out;
	r = save_signed_in(cfg, &tokens, err);
out:
	redirect_page_remove(&page);
	loopback_close(lb);
	loopback_request_free(&req);
	firebase_tokens_free(&tokens);
	secret_free(custom);
	free(url);
	explicit_bzero(verifier, sizeof(verifier));
	explicit_bzero(state, sizeof(state));
	return r;
}
