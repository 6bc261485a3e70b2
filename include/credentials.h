/* credentials: the bearer token the fetch path sends to the Omi API, either
 * a plain token (key_file, OMI_API_KEY) or the Firebase ID token of a
 * signed-in session, renewed from its refresh token as it runs out. */
#ifndef OMIKEYFS_CREDENTIALS_H
#define OMIKEYFS_CREDENTIALS_H

#include <stdbool.h>
#include <stdint.h>

#include "session.h"
#include "endpoint.h"

/* Renew an ID token this long before it expires, as Omi's own CLI does. */
#define CRED_RENEW_EARLY_MS 60000

enum cred_error_kind {
	CRED_OK,
	CRED_ENDED,     /* the session is over (refused renewal, no usable session
			 * file): only `omikeyfs --login` helps; err is -EACCES */
	CRED_TRANSIENT, /* renewing failed for now (network, 5xx, 429, bad answer);
			 * nothing is lost, a later call tries again */
	CRED_NO_TOKEN,  /* a plain token that cannot be had; err is -EACCES */
};

struct cred_error {
	enum cred_error_kind kind;
	int err;           /* 0 or -errno: -EACCES, -EIO, -ETIMEDOUT, -EAGAIN, ... */
	char message[256]; /* one line without "omikeyfs: ", never a token */
};

/* Returns a fresh malloc'd token (say, the key file read again) or NULL. */
typedef char *(*cred_reread_fn)(void *ctx);
/* Monotonic milliseconds. */
typedef int64_t (*cred_clock_fn)(void *ctx);
/* A one-line warning that is no error of the call (e.g. a rotated refresh
 * token could not be saved). */
typedef void (*cred_warn_fn)(void *ctx, const char *message);

struct credentials;

/*
 * A plain bearer token (copied).  reread (may be NULL) is asked for the
 * token again after the API refused it, so an edited key file takes
 * effect.  Returns NULL when out of memory.
 */
struct credentials *credentials_bearer(const char *token, cred_reread_fn reread, void *ctx);

struct cred_session_config {
	const char *session_path; /* the file the session came from */
	/* The file is a read-only copy (systemd's LoadCredential=): a rotated
	 * refresh token is kept in memory only, never written back. */
	bool copy;
	const struct session *session; /* as session_load read it; copied */
	/* The mount's API base URL: a session made for another is refused, so
	 * an ID token only goes where the user signed in.  NULL: not checked. */
	const char *api_url;
	/* POST to firebase_url(FIREBASE_RENEW, session->firebase_api_key,
	 * getenv(FIREBASE_EMULATOR_ENV)). */
	struct endpoint renew;
	cred_clock_fn clock; /* NULL: CLOCK_MONOTONIC */
	void *clock_ctx;
	cred_warn_fn warn; /* NULL: warnings are dropped */
	void *warn_ctx;
};

/*
 * Credentials from a session.  No traffic yet: the first credentials_token
 * renews.  Returns 0, or -EACCES (kind CRED_ENDED: session made for another
 * API URL) or -ENOMEM with *err filled.
 */
int credentials_session(const struct cred_session_config *cfg, struct credentials **out,
			struct cred_error *err);

/*
 * The token for the next request, valid until the next call on c.  A
 * session's ID token lives in memory only; it is renewed when it expires
 * within CRED_RENEW_EARLY_MS (by the expires_in of the renewal, on the
 * injected clock) or after credentials_refused.  A renewal that returns a
 * different refresh token saves it to the session file (atomically, the
 * rest of the file kept) unless the file meanwhile holds another sign-in
 * or is gone (--logout).  A failed renewal while the old ID token has not
 * yet expired still gives the old token.
 *
 * A refused renewal ends the session (CRED_ENDED, -EACCES, "the session has
 * ended (TOKEN_EXPIRED); sign in again with omikeyfs --login"); from then
 * on each call first reads the session file again and, when it holds a
 * new sign-in (a different refresh token, or a different "created": a new
 * --login) for the same API URL and Firebase API key, continues with that
 * one; otherwise it fails the same way without any traffic.
 *
 * Returns 0 with *token set, or err->err with *err filled and *token NULL.
 * Not thread-safe: one caller at a time (the cache's single refresh).
 */
int credentials_token(struct credentials *c, const char **token, struct cred_error *err);

/*
 * The API answered 401 to the token last given: returns whether a retry
 * with another token is worth it.  A session drops its ID token (the next
 * credentials_token renews) and returns true unless it has ended; a plain
 * token is reread and true means the reread one differs.  The caller
 * retries the request once at most.
 */
bool credentials_refused(struct credentials *c);

/* Whether c is a session's (for status and messages). */
bool credentials_is_session(const struct credentials *c);

/* The session's Firebase user id (what a copy of its list is kept under),
 * or NULL for a plain token.  Valid until the next call on c. */
const char *credentials_user_id(const struct credentials *c);

/* A plain token as it is (for a salted hash that names its kept list), or
 * NULL for a session.  Valid until the next call on c. */
const char *credentials_plain_token(const struct credentials *c);

/* Wipe every token and free c (NULL is fine). */
void credentials_free(struct credentials *c);

#endif
