/* firebase: the Firebase Auth REST calls of signing in and renewing: their
 * URLs, request bodies, strict answer parsers, and what an error means. */
#ifndef OMIKEYFS_FIREBASE_H
#define OMIKEYFS_FIREBASE_H

#include <stddef.h>

#include "endpoint.h"

/*
 * The Web API key of Omi's Firebase project (based-hardware), the one
 * Omi's own CLI uses.  A public project identifier, not a secret; its
 * referrer-restricted sibling (the web app's) answers 403 to a command-line
 * client.  An option may override it.
 */
#define FIREBASE_DEFAULT_API_KEY "AIzaSyA88gHcmiAxjN_aE23tHRWXOgFfapyO6dk"

/* The environment variable Firebase's SDKs use for the Auth Emulator. */
#define FIREBASE_EMULATOR_ENV "FIREBASE_AUTH_EMULATOR_HOST"

/* Longest token accepted in an answer (ID tokens are about 1 KiB). */
#define FIREBASE_TOKEN_MAX 16384
/* Longest user id (Firebase allows 128). */
#define FIREBASE_USER_MAX 256

enum firebase_call {
	FIREBASE_SIGN_IN, /* accounts:signInWithCustomToken at identitytoolkit */
	FIREBASE_RENEW,   /* v1/token at securetoken */
};

/*
 * The URL of a call, with ?key=API_KEY (URL-escaped), malloc'd in *url:
 *   https://identitytoolkit.googleapis.com/v1/accounts:signInWithCustomToken?key=K
 *   https://securetoken.googleapis.com/v1/token?key=K
 * With emulator_host (pass getenv(FIREBASE_EMULATOR_ENV); NULL or "" for
 * none) of the form HOST:PORT, the Auth Emulator's:
 *   http://HOST:PORT/identitytoolkit.googleapis.com/v1/accounts:signInWithCustomToken?key=K
 *   http://HOST:PORT/securetoken.googleapis.com/v1/token?key=K
 * HOST must be loopback (127.0.0.0/8, [::1] or ::1, localhost): plain http
 * carries the refresh token.  Returns 0, or -EINVAL (bad or non-loopback
 * host, empty key) or -ENOMEM with one line in err.
 */
int firebase_url(enum firebase_call call, const char *api_key, const char *emulator_host,
		 char **url, char *err, size_t errlen);

/* Request bodies, malloc'd (NULL: no memory); they hold the secret, so the
 * caller wipes them.  Content types: FIREBASE_SIGN_IN_TYPE / _RENEW_TYPE. */
#define FIREBASE_SIGN_IN_TYPE "application/json"
#define FIREBASE_RENEW_TYPE "application/x-www-form-urlencoded"
/* {"token": CUSTOM_TOKEN, "returnSecureToken": true} */
char *firebase_sign_in_body(const char *custom_token);
/* grant_type=refresh_token&refresh_token=R */
char *firebase_renew_body(const char *refresh_token);

struct firebase_tokens {
	char *id_token;      /* secret: for the Omi API only */
	char *refresh_token; /* secret: for securetoken only */
	long expires_in;     /* seconds the ID token lives, 1..86400 */
	char *user_id;       /* Firebase uid */
	char *email;         /* sign-in only: the ID token's email claim, or NULL */
};

/*
 * Parse a 2xx answer strictly.  Sign-in: {"idToken", "refreshToken",
 * "expiresIn": "3600"}, the uid from "localId" when present, else from the
 * ID token's "sub" claim (signInWithCustomToken sends no localId), and the
 * ID token's "email" claim when it is a clean one (else email is NULL);
 * renewal: {"id_token", "refresh_token", "expires_in": "3600", "user_id"}.  Tokens and the uid are
 * 0x21..0x7e, expiresIn a string of digits.  Other members are ignored.  Returns 0, or -EBADMSG (or
 * -ENOMEM) with one line in err that holds no value; *out is zeroed on failure.
 */
int firebase_parse_sign_in(const char *body, size_t len, struct firebase_tokens *out, char *err,
			   size_t errlen);
int firebase_parse_renew(const char *body, size_t len, struct firebase_tokens *out, char *err,
			 size_t errlen);
/* Wipe the tokens, free everything, zero *t. */
void firebase_tokens_free(struct firebase_tokens *t);

enum firebase_failure {
	FIREBASE_OK,
	FIREBASE_ENDED,     /* the token was refused (TOKEN_EXPIRED, USER_DISABLED, any
			     * other 4xx): only a new sign-in helps */
	FIREBASE_BAD_KEY,   /* 403, or "API key not valid": the Firebase API key is
			     * wrong or restricted; as final as ENDED */
	FIREBASE_TRANSIENT, /* no answer, 408, 429, 5xx, 1xx/3xx: try again later */
};

struct firebase_error {
	enum firebase_failure kind;
	int err;           /* 0, -EACCES (ended, bad key), -EAGAIN (429), -ETIMEDOUT
			    * (408), -EIO (5xx and others), or the transport's */
	char reason[64];   /* Firebase's code, "TOKEN_EXPIRED" of "TOKEN_EXPIRED : x",
			    * controls replaced; "" when the body had none */
	char message[256]; /* one line: "HTTP 400: TOKEN_EXPIRED : x", or the
			    * transport's message; controls replaced */
};

/* Classify an answer: 0 and kind FIREBASE_OK for 2xx, else err->err.
 * reason is the message's first word when it is a code, else the first
 * error.details[].reason ("API key not valid..." comes with API_KEY_INVALID). */
int firebase_check(const struct post_result *res, struct firebase_error *err);

/*
 * One line for a refusal (kind FIREBASE_ENDED or FIREBASE_BAD_KEY) of
 * call: what it means and its cure.  The key ones (API_KEY_*, "API key not
 * valid", CREDENTIAL_MISMATCH, INVALID_CUSTOM_TOKEN, any other 403) name
 * -o firebase_api_key=KEY; the session ones (TOKEN_EXPIRED, USER_DISABLED,
 * USER_NOT_FOUND, INVALID_REFRESH_TOKEN) omikeyfs --login.  Another code
 * is shown as Firebase gave it ("HTTP 400: SOME_CODE : words").
 */
void firebase_refusal_text(const struct firebase_error *fe, enum firebase_call call, char *out,
			   size_t outlen);

#endif
