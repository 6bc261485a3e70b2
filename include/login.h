/* login: `omikeyfs --login`, the RFC 8252 loopback + PKCE sign-in of Omi's
 * own CLI, which ends in a saved session file. */
#ifndef OMIKEYFS_LOGIN_H
#define OMIKEYFS_LOGIN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>

#include "endpoint.h"

/* Omi's CLI gives up after 5 minutes, and so does omikeyfs by default. */
#define LOGIN_TIMEOUT_MS 300000L

struct login_config {
	const char *api_url;              /* Omi API base URL, already checked (url_check) */
	const char *provider;             /* "google" or "apple" */
	unsigned short port;              /* port on 127.0.0.1; 0: any free one */
	bool open_browser;                /* run `xdg-open PAGE` (never waited for) */
	const char *opener;               /* NULL: "xdg-open"; its absence is no error */
	long timeout_ms;                  /* overall deadline; 0: LOGIN_TIMEOUT_MS */
	const char *session_path;         /* where the session is saved */
	const char *firebase_api_key;     /* used by firebase_sign_in's URL; saved in the session */
	struct endpoint omi_token;        /* POST API_URL/v1/auth/token */
	struct endpoint firebase_sign_in; /* POST firebase_url(FIREBASE_SIGN_IN, ...) */
	FILE *out;                        /* the sign-in URL, on a line of its own (stdout) */
	bool paste;                       /* also read paste_fd (stdin) for the callback address */
	int paste_fd;
	int cancel_fd; /* > 0: readable once the wait is to end (a signal's self-pipe); 0: none */
	/* Once the URL is out and the listener's port known, so the user can
	 * be told how to answer; and each pasted line refused (the wait goes
	 * on).  Either may be NULL. */
	void (*waiting)(void *ctx, unsigned short port);
	void (*refused)(void *ctx, const char *why);
	void *ctx;
};

struct login_error {
	int err;           /* -errno */
	char message[256]; /* one line without "omikeyfs: ", never a token or code */
};

/*
 * Sign in: listen on 127.0.0.1:port, write the sign-in URL
 *   API/v1/auth/authorize?provider=P&redirect_uri=http%3A%2F%2F127.0.0.1%3APORT%2Fcallback
 *   &state=S&code_challenge=C&code_challenge_method=S256
 * to cfg->out, start the browser on a private page that sends it to that
 * URL (never the URL in argv: /proc/PID/cmdline is readable by all), and
 * serve HTTP until the callback with this sign-in's state arrives (other
 * paths get 404, callbacks without the state 400, and the wait goes on),
 * or, with cfg->paste, a line on paste_fd that is this callback's address
 * (http://127.0.0.1:PORT/callback?code=...&state=..., checked as the
 * callback would be; one without the state is refused through
 * cfg->refused and the wait goes on): whichever comes first.  Then
 * exchange the code at Omi's /v1/auth/token for a Firebase custom token,
 * that at Firebase for a refresh token, and save the session.
 *
 * Returns 0, or -errno with err filled; on failure the session file is
 * neither written nor changed:
 *   -ETIMEDOUT  "timed out waiting for the sign-in (300 s)"
 *   -ECANCELED  cfg->cancel_fd became readable while waiting
 *   -EPROTO     the callback carried no code
 *   -EACCES     the callback carried ?error= (with the state), or Omi or
 *               Firebase refused
 *               ("the Omi API refused the sign-in code (HTTP 400: Invalid or
 *               expired code)")
 *   -EINVAL     bad provider; -EADDRINUSE etc. when the port cannot be had;
 *               the transport's -errno when Omi or Firebase cannot be reached
 */
int login_run(const struct login_config *cfg, struct login_error *err);

/* custom_token of Omi's /v1/auth/token answer: 0 with a malloc'd copy, or
 * -EBADMSG with one line in err (exposed for the fuzzer). */
int login_parse_token_answer(const char *body, size_t len, char **custom_token, char *err,
			     size_t errlen);

#endif
