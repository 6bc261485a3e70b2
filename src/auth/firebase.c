/*
 * firebase: Firebase Auth's REST API as signing in uses it.  Pure: the
 * POST itself is the caller's (transport), so this is all unit-tested.
 * The answers are untrusted bytes; nothing from them reaches a message
 * but Firebase's own error text, cleaned of control characters.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <json-c/json.h>

#include "base64url.h"
#include "errmsg.h"
#include "firebase.h"
#include "jsonstrict.h"
#include "secret.h"
#include "url.h"
#include "urlenc.h"

/*
 * Split HOST:PORT and check HOST is loopback.  Writes the host as a URL
 * wants it (IPv6 in brackets) and the port.  Returns false for anything else.
 */
static bool emulator_split(const char *hp, char *host, size_t hostlen, unsigned *port)
{
	const char *colon = strrchr(hp, ':'), *p;
	size_t n;
	char inner[64];
	bool v6;

	if (!colon || !colon[1])
		return false;
	*port = 0;
	for (p = colon + 1; *p; p++) {
		if (*p < '0' || *p > '9' || *port > 6553)
			return false;
		*port = *port * 10 + (unsigned)(*p - '0');
	}
	if (*port == 0 || *port > 65535)
		return false;
	n = (size_t)(colon - hp);
	if (hp[0] == '[') {
		if (n < 3 || hp[n - 1] != ']')
			return false;
		hp++;
		n -= 2;
	}
	if (n == 0 || n >= sizeof(inner))
		return false;
	memcpy(inner, hp, n);
	inner[n] = '\0';
	v6 = memchr(inner, ':', n) != NULL;
	/* url.c's rule, the one every plain http:// URL is held to. */
	if (!url_host_is_loopback(inner))
		return false;
	snprintf(host, hostlen, v6 ? "[%s]" : "%s", inner);
	return true;
}

int firebase_url(enum firebase_call call, const char *api_key, const char *emulator_host,
		 char **url, char *err, size_t errlen)
{
	const char *host = call == FIREBASE_SIGN_IN ? "identitytoolkit.googleapis.com"
						    : "securetoken.googleapis.com";
	const char *path =
		call == FIREBASE_SIGN_IN ? "v1/accounts:signInWithCustomToken" : "v1/token";
	char *key;
	int n;

	*url = NULL;
	if (!api_key || !*api_key) {
		errmsg_set(err, errlen, "the Firebase API key is empty");
		return -EINVAL;
	}
	if (!(key = url_escape(api_key))) {
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (emulator_host && *emulator_host) {
		char shown[128], name[80];
		unsigned port;

		if (!emulator_split(emulator_host, name, sizeof(name), &port)) {
			jsonstrict_clean(emulator_host, strlen(emulator_host), shown,
					 sizeof(shown));
			errmsg_set(err, errlen,
				   "%s=%s is not a loopback HOST:PORT such as "
				   "127.0.0.1:9099, [::1]:9099 or localhost:9099",
				   FIREBASE_EMULATOR_ENV, shown);
			free(key);
			return -EINVAL;
		}
		n = asprintf(url, "http://%s:%u/%s/%s?key=%s", name, port, host, path, key);
	} else {
		n = asprintf(url, "https://%s/%s?key=%s", host, path, key);
	}
	free(key);
	if (n < 0) {
		*url = NULL;
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

char *firebase_sign_in_body(const char *custom_token)
{
	char *quoted = jsonstrict_quote(custom_token), *body = NULL;

	if (quoted && asprintf(&body, "{\"token\":%s,\"returnSecureToken\":true}", quoted) < 0)
		body = NULL;
	secret_free(quoted);
	return body;
}

char *firebase_renew_body(const char *refresh_token)
{
	char *escaped = url_escape(refresh_token), *body = NULL;

	if (escaped && asprintf(&body, "grant_type=refresh_token&refresh_token=%s", escaped) < 0)
		body = NULL;
	secret_free(escaped);
	return body;
}

void firebase_tokens_free(struct firebase_tokens *t)
{
	secret_free(t->id_token);
	secret_free(t->refresh_token);
	free(t->user_id);
	free(t->email);
	memset(t, 0, sizeof(*t));
}

/* Names of the four members in one of the two answers. */
struct names {
	const char *id_token, *refresh_token, *expires_in, *user_id;
	bool uid_in_token; /* no user_id member: the ID token's "sub" says it */
};

/*
 * The uid an ID token names (its "sub" claim, into *uid unless uid is
 * NULL) and its "email" claim when it has a clean one, read without
 * checking the signature: they only say whose session the file holds and
 * grant nothing.  Firebase's signInWithCustomToken answer carries no
 * localId (the Auth Emulator's neither), so this is where the uid comes
 * from.
 */
static int id_token_claims(const char *jwt, char **uid, char **email, char *why, size_t whylen)
{
	const char *start = strchr(jwt, '.'), *end;
	struct json_object *claims;
	unsigned char *buf;
	size_t n = 0;
	int r = -EBADMSG;

	if (uid)
		*uid = NULL;
	*email = NULL;
	if (!start || !(end = strchr(++start, '.'))) {
		errmsg_set(why, whylen, "the ID token is not a JWT");
		return -EBADMSG;
	}
	if (!(buf = malloc((size_t)(end - start) + 1)))
		return -ENOMEM;
	if (!base64url_decode(start, (size_t)(end - start), buf, &n))
		goto out;
	claims = jsonstrict_parse((const char *)buf, n, NULL, 0);
	if (claims) {
		r = uid ? jsonstrict_string(claims, "sub", FIREBASE_USER_MAX, JSONSTRICT_TOKEN, uid,
					    why, whylen)
			: 0;
		/* Shown to people only: one that is absent or odd is no email. */
		if (r == 0 && jsonstrict_string(claims, "email", FIREBASE_USER_MAX,
						JSONSTRICT_TOKEN, email, NULL, 0) == -ENOMEM)
			r = -ENOMEM;
		jsonstrict_put(claims);
	}
out:
	if (r == -EBADMSG || r == -ENOENT) {
		errmsg_set(why, whylen, "the ID token names no user");
		r = -EBADMSG;
	}
	secret_free_len(buf, (size_t)(end - start) + 1);
	return r;
}

static int parse_tokens(const char *body, size_t len, const struct names *names,
			struct firebase_tokens *out, char *err, size_t errlen)
{
	char why[200], *expires = NULL, *end;
	struct json_object *obj;
	int r;

	memset(out, 0, sizeof(*out));
	obj = jsonstrict_parse(body, len, why, sizeof(why));
	if (!obj) {
		errmsg_set(err, errlen, "Firebase's answer is %s", why);
		return -EBADMSG;
	}
	r = jsonstrict_string(obj, names->id_token, FIREBASE_TOKEN_MAX, JSONSTRICT_TOKEN,
			      &out->id_token, why, sizeof(why));
	if (r == 0)
		r = jsonstrict_string(obj, names->refresh_token, FIREBASE_TOKEN_MAX,
				      JSONSTRICT_TOKEN, &out->refresh_token, why, sizeof(why));
	if (r == 0) {
		r = jsonstrict_string(obj, names->user_id, FIREBASE_USER_MAX, JSONSTRICT_TOKEN,
				      &out->user_id, why, sizeof(why));
		if (r == -ENOENT && names->uid_in_token)
			r = id_token_claims(out->id_token, &out->user_id, &out->email, why,
					    sizeof(why));
		else if (r == 0 && names->uid_in_token &&
			 id_token_claims(out->id_token, NULL, &out->email, NULL, 0) == -ENOMEM)
			r = -ENOMEM;
	}
	if (r == 0)
		r = jsonstrict_string(obj, names->expires_in, 8, JSONSTRICT_TOKEN, &expires, why,
				      sizeof(why));
	if (r == 0) {
		/* A string of decimal digits, as Firebase sends it. */
		out->expires_in = strtol(expires, &end, 10);
		if (*end || expires[0] < '0' || expires[0] > '9' || out->expires_in < 1 ||
		    out->expires_in > 86400) {
			errmsg_set(why, sizeof(why),
				   "\"%s\" is not a number of seconds up to a day",
				   names->expires_in);
			r = -EBADMSG;
		}
	}
	free(expires);
	jsonstrict_put(obj);
	if (r < 0) {
		firebase_tokens_free(out);
		errmsg_set(err, errlen, "Firebase's answer is malformed: %s", why);
		return r == -ENOMEM ? r : -EBADMSG;
	}
	return 0;
}

int firebase_parse_sign_in(const char *body, size_t len, struct firebase_tokens *out, char *err,
			   size_t errlen)
{
	static const struct names names = { "idToken", "refreshToken", "expiresIn", "localId",
					    true };

	return parse_tokens(body, len, &names, out, err, errlen);
}

int firebase_parse_renew(const char *body, size_t len, struct firebase_tokens *out, char *err,
			 size_t errlen)
{
	static const struct names names = { "id_token", "refresh_token", "expires_in", "user_id",
					    false };

	return parse_tokens(body, len, &names, out, err, errlen);
}

static bool is_code(const char *text, size_t n)
{
	return n > 0 && strspn(text, "ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789") >= n;
}

/* error.message of {"error": {"code": 400, "message": "...", "details":
 * [{"reason": "..."}]}}, cleaned, and the first details[].reason that is
 * a code ("" when none). */
static void error_text(const struct post_result *res, char *out, size_t outlen, char *reason,
		       size_t reasonlen)
{
	struct json_object *obj, *e, *m, *d, *r;

	out[0] = reason[0] = '\0';
	if (!res->body || !(obj = jsonstrict_parse(res->body, res->len, NULL, 0)))
		return;
	if (json_object_object_get_ex(obj, "error", &e) &&
	    json_object_is_type(e, json_type_object)) {
		if (json_object_object_get_ex(e, "message", &m) &&
		    json_object_is_type(m, json_type_string))
			jsonstrict_clean(json_object_get_string(m),
					 (size_t)json_object_get_string_len(m), out, outlen);
		if (json_object_object_get_ex(e, "details", &d) &&
		    json_object_is_type(d, json_type_array)) {
			size_t n = json_object_array_length(d);

			for (size_t i = 0; i < n && !reason[0]; i++) {
				struct json_object *item = json_object_array_get_idx(d, i);
				const char *v;
				size_t len;

				if (!json_object_is_type(item, json_type_object) ||
				    !json_object_object_get_ex(item, "reason", &r) ||
				    !json_object_is_type(r, json_type_string))
					continue;
				v = json_object_get_string(r);
				len = (size_t)json_object_get_string_len(r);
				if (len < reasonlen && strlen(v) == len && is_code(v, len))
					memcpy(reason, v, len + 1);
			}
		}
	}
	jsonstrict_put(obj);
}

/* A refusal that a Web API key of another project (or a restricted one)
 * causes: signing in again with the same key cannot help. */
static bool is_key_refusal(const char *reason)
{
	return strcmp(reason, "CREDENTIAL_MISMATCH") == 0 ||
	       strcmp(reason, "INVALID_CUSTOM_TOKEN") == 0 || strncmp(reason, "API_KEY_", 8) == 0;
}

/* clang-format off */
static const struct {
	const char *reason;
	const char *meaning;
} refusals[] = {
	{ "API_KEY_HTTP_REFERRER_BLOCKED",
	  "Firebase refused the Web API key: it is restricted to web browsers" },
	{ "API_KEY_INVALID",		"Firebase says the Web API key is not valid" },
	{ "CREDENTIAL_MISMATCH",
	  "Firebase refused Omi's sign-in token: the Web API key is of another "
	  "Firebase project than Omi's" },
	{ "INVALID_CUSTOM_TOKEN",
	  "Firebase refused Omi's sign-in token: the Web API key may be of another "
	  "Firebase project than Omi's" },
	{ "TOKEN_EXPIRED",		"the session has expired" },
	{ "USER_DISABLED",		"the Omi account is disabled" },
	{ "USER_NOT_FOUND",		"the Omi account no longer exists" },
	{ "INVALID_REFRESH_TOKEN",	"the session's refresh token is not valid" },
};
/* clang-format on */

void firebase_refusal_text(const struct firebase_error *fe, enum firebase_call call, char *out,
			   size_t outlen)
{
	const char *reason = fe->reason;
	const char *key_cure =
		call == FIREBASE_RENEW
			? "sign in again with omikeyfs --login -o firebase_api_key=KEY"
			: "give the right key with -o firebase_api_key=KEY";
	const char *login_cure = "sign in again with omikeyfs --login";

	if (!reason[0] && strncmp(fe->message, "HTTP 400: API key not valid", 27) == 0)
		reason = "API_KEY_INVALID";
	for (size_t i = 0; i < sizeof(refusals) / sizeof(refusals[0]); i++) {
		if (strcmp(reason, refusals[i].reason) != 0)
			continue;
		errmsg_set(out, outlen, "%s (%s); %s", refusals[i].meaning, reason,
			   fe->kind == FIREBASE_BAD_KEY ? key_cure : login_cure);
		return;
	}
	if (fe->kind == FIREBASE_BAD_KEY)
		errmsg_set(out, outlen, "Firebase refused the Web API key (%s); %s", fe->message,
			   key_cure);
	else if (call == FIREBASE_RENEW)
		errmsg_set(out, outlen, "the session has ended (%s); %s", fe->message, login_cure);
	else
		errmsg_set(out, outlen, "Firebase refused the sign-in (%s)", fe->message);
}

int firebase_check(const struct post_result *res, struct firebase_error *err)
{
	char text[200], detail_reason[64];
	size_t n;

	memset(err, 0, sizeof(*err));
	if (res->err || res->status == 0) {
		err->kind = FIREBASE_TRANSIENT;
		err->err = res->err ? res->err : -EIO;
		jsonstrict_clean(res->message, strnlen(res->message, sizeof(res->message)),
				 err->message, sizeof(err->message));
		if (!err->message[0])
			errmsg_set(err->message, sizeof(err->message), "no answer from Firebase");
		return err->err;
	}
	if (res->status >= 200 && res->status < 300)
		return 0;

	error_text(res, text, sizeof(text), detail_reason, sizeof(detail_reason));
	n = strcspn(text, " ");
	/* The code is the first word: "INVALID_REFRESH_TOKEN : more words";
	 * else Google's details say it ("API key not valid. ..."). */
	if (n < sizeof(err->reason) && n > 0 && (!text[n] || strncmp(text + n, " :", 2) == 0) &&
	    is_code(text, n))
		errmsg_set(err->reason, sizeof(err->reason), "%.*s", (int)n, text);
	else
		errmsg_set(err->reason, sizeof(err->reason), "%s", detail_reason);
	if (text[0])
		errmsg_set(err->message, sizeof(err->message), "HTTP %ld: %s", res->status, text);
	else
		errmsg_set(err->message, sizeof(err->message), "HTTP %ld", res->status);

	if (res->status == 403 || strncmp(text, "API key not valid", 17) == 0 ||
	    strncmp(err->reason, "API_KEY_", 8) == 0 || is_key_refusal(err->reason)) {
		err->kind = FIREBASE_BAD_KEY;
		err->err = -EACCES;
	} else if (res->status == 429) {
		err->kind = FIREBASE_TRANSIENT;
		err->err = -EAGAIN;
	} else if (res->status == 408) {
		err->kind = FIREBASE_TRANSIENT;
		err->err = -ETIMEDOUT;
	} else if (res->status >= 400 && res->status < 500) {
		err->kind = FIREBASE_ENDED;
		err->err = -EACCES;
	} else {
		err->kind = FIREBASE_TRANSIENT;
		err->err = -EIO;
	}
	return err->err;
}
