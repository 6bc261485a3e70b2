/* fetch: the cache's fetcher: one GET of the key list with the mount's
 * credentials (a plain bearer token, or a session renewed as it runs
 * out), retried once with another token after a 401. */
#ifndef OMIKEYFS_FETCH_H
#define OMIKEYFS_FETCH_H

#include <stddef.h>

#include "cache.h"
#include "credentials.h"
#include "options.h"

struct fetcher;

/*
 * The credentials opts call for, the first given of: session_file,
 * key_file, OMI_API_KEY, the default session file when it exists (the
 * environment variable is scrubbed either way), and the clients that
 * carry them: one for the list (the bearer or ID token) and, for a
 * session, one for Firebase's token service (the refresh token).  No
 * traffic yet.  Returns 0, -EACCES when the session is refused (made for
 * another API URL), or another -errno (no or bad credentials, a refused
 * FIREBASE_AUTH_EMULATOR_HOST, no memory) with one line in err.
 */
int fetcher_new(const struct options *opts, struct fetcher **out, char *err, size_t errlen);

/* cache_ops.fetch: ctx is the fetcher. */
void fetcher_fetch(void *ctx, struct fetch_result *res);

/*
 * Revoke one key: DELETE API_URL/v1/dev/keys/ID (the id_len bytes of id,
 * percent-encoded) with the same credentials, renewal and retry after a 401
 * as the list, waiting for the answer.  Returns 0 (2xx: the API answers 204,
 * also for an id it does not know), or -EAGAIN (5xx, 429, a failure of the
 * network or of a renewal that may pass), -EACCES (refused, the session
 * ended), -ETIMEDOUT, -ECANCELED (stopping: the key may or may not be
 * revoked), -EINVAL (empty id), -ENOMEM or -EIO (any other answer), with one
 * line in msg that never holds a token.  Safe to call beside the cache's
 * refresh; opts must outlive f.  The shape of fs_revoke_fn: f is the
 * fetcher.
 */
int fetcher_revoke(void *f, const char *id, size_t id_len, char *msg, size_t msglen);

/* For cache_on_rejected: ctx is the fetcher. */
void fetcher_forget_validators(void *ctx);

/* The credentials in use (credentials_user_id for whoever keys data by
 * the signed-in user). */
const struct credentials *fetcher_credentials(const struct fetcher *f);

/* Wipe every token and free f (NULL is fine). */
void fetcher_free(struct fetcher *f);

#endif
