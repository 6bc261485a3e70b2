/* Unit tests for url.c: which URLs are accepted, and how they are joined
 * and shown.  No network: libcurl's URL parser only. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "test.h"
#include "url.h"

static int check(const char *url)
{
	char err[256] = "unset";
	int r = url_check(url, err, sizeof(err));

	if (r == 0)
		test_assert(err[0] == '\0');
	else
		test_assert(err[0] != '\0' && strchr(err, '\n') == NULL);
	return r;
}

static void test_check_url_accepts(void)
{
	test_assert(check("https://api.omi.me") == 0);
	test_assert(check("https://api.omi.me/") == 0);
	test_assert(check("https://api.omi.me:8443/base/path") == 0);
	test_assert(check("HTTPS://API.OMI.ME") == 0);
	test_assert(check("https://[2001:db8::1]:443") == 0);
	test_assert(check("http://127.0.0.1") == 0);
	test_assert(check("http://127.0.0.1:8080") == 0);
	test_assert(check("http://127.0.0.1:8080/") == 0);
	test_assert(check("http://127.1.2.3:9/x") == 0);
	test_assert(check("http://127.255.255.255") == 0);
	test_assert(check("http://[::1]:8080") == 0);
	test_assert(check("http://[::1]") == 0);
	test_assert(check("http://localhost:1234") == 0);
	test_assert(check("http://LOCALHOST") == 0);
	test_assert(check("HTTP://LocalHost:80/api") == 0);
	/* curl reads these as 127.0.0.1 and connects there */
	test_assert(check("http://127.0.0.01") == 0);
	test_assert(check("http://127.1") == 0);
	test_assert(check("http://[0:0:0:0:0:0:0:1]:9") == 0);
}

static void test_check_url_refuses(void)
{
	char err[256];

	test_assert(url_check("http://example.com", err, sizeof(err)) == -EINVAL);
	test_assert(strstr(err, "http://") && strstr(err, "https://"));
	test_assert(check("http://example.com:80/") == -EINVAL);
	test_assert(check("http://127.0.0.1.evil.com") == -EINVAL);
	test_assert(check("http://127.0.0.1.evil.com:8080/") == -EINVAL);
	test_assert(check("http://localhost.evil") == -EINVAL);
	test_assert(check("http://localhost.") == -EINVAL);
	test_assert(check("http://evil-localhost") == -EINVAL);
	test_assert(check("http://128.0.0.1") == -EINVAL);
	test_assert(check("http://10.0.0.1") == -EINVAL);
	test_assert(check("http://127.0.0.08") == -EINVAL);
	test_assert(check("http://127.0.0.1.") == -EINVAL);
	test_assert(check("http://[::ffff:127.0.0.1]") == -EINVAL);
	test_assert(check("http://127.0.0.256") == -EINVAL);
	test_assert(check("http://[::2]") == -EINVAL);
	test_assert(check("http://[::ffff:8.8.8.8]") == -EINVAL);
	test_assert(check("http://0.0.0.0") == -EINVAL);
	test_assert(check("ftp://127.0.0.1") == -EINVAL);
	test_assert(check("file:///etc/passwd") == -EINVAL);
	test_assert(check("gopher://api.omi.me") == -EINVAL);
	test_assert(check("api.omi.me") == -EINVAL);
	test_assert(check("https://user:pass@api.omi.me") == -EINVAL);
	test_assert(check("https://user@api.omi.me") == -EINVAL);
	test_assert(check("http://user:pass@127.0.0.1") == -EINVAL);
	test_assert(check("http://evil.com@127.0.0.1") == -EINVAL);
	test_assert(check("http://127.0.0.1@evil.com") == -EINVAL);
	test_assert(check("http://127.0.0.1:80@evil.com/") == -EINVAL);
	test_assert(check("https://") == -EINVAL);
	test_assert(check("https:///path") == -EINVAL);
	test_assert(check("http://:8080") == -EINVAL);
	test_assert(check("https://api.omi.me/a b") == -EINVAL);
	test_assert(check("https://api.omi.me\r\nX: y") == -EINVAL);
	test_assert(check("https://api.omi.me\t") == -EINVAL);
	test_assert(check("https://api.omi.me:99999") == -EINVAL);
	test_assert(check("https://api.omi.me?x=1") == -EINVAL);
	test_assert(check("https://api.omi.me#frag") == -EINVAL);
	test_assert(check("http://127.0.0.1\\@evil.com") == -EINVAL);
	test_assert(check("") == -EINVAL);
	test_assert(check("not a url") == -EINVAL);
	test_assert(check("://") == -EINVAL);
	test_assert(url_check(NULL, err, sizeof(err)) == -EINVAL);
	test_assert(url_check("ftp://x", NULL, 0) == -EINVAL);
}

static void test_check_messages(void)
{
	char err[256];

	test_assert(url_check("http://example.com:80/x", err, sizeof(err)) == -EINVAL);
	test_assert(strcmp(err, "refusing http:// to a non-loopback host example.com "
				"(use https://)") == 0);
	test_assert(url_check("gopher://api.omi.me", err, sizeof(err)) == -EINVAL);
	test_assert(strcmp(err, "unsupported URL scheme gopher:// (use https://)") == 0);
	test_assert(url_check("api.omi.me", err, sizeof(err)) == -EINVAL);
	test_assert(strcmp(err, "URL must start with https://") == 0);
	test_assert(url_check("https://u:p@api.omi.me", err, sizeof(err)) == -EINVAL);
	test_assert(strcmp(err, "URL must not contain user:password@") == 0);
	test_assert(strstr(err, "u:p") == NULL);
	test_assert(url_check("https://api.omi.me/?x", err, sizeof(err)) == -EINVAL);
	test_assert(strcmp(err, "API URL must not have a query or fragment") == 0);
	test_assert(url_check("https://", err, sizeof(err)) == -EINVAL);
	test_assert(strcmp(err, "URL has no host") == 0);
	/* A short buffer still gets a terminated piece of the line. */
	test_assert(url_check("http://example.com", err, 10) == -EINVAL);
	test_assert(strcmp(err, "refusing ") == 0);
}

static void test_check_endpoint(void)
{
	char err[256];

	/* Firebase's REST endpoints carry the project's key as a query. */
	test_assert(url_check_endpoint("https://securetoken.googleapis.com/v1/token?key=AIza", err,
				       sizeof(err)) == 0);
	test_assert(err[0] == '\0');
	test_assert(url_check_endpoint("http://127.0.0.1:9099/securetoken.googleapis.com/v1/"
				       "token?key=x",
				       err, sizeof(err)) == 0);
	test_assert(url_check_endpoint("https://api.omi.me/v1/dev/keys", err, sizeof(err)) == 0);
	/* The rest of the policy is the same. */
	test_assert(url_check_endpoint("http://example.com/v1/token?key=x", err, sizeof(err)) ==
		    -EINVAL);
	test_assert(strstr(err, "non-loopback") != NULL);
	test_assert(url_check_endpoint("https://api.omi.me/v1#x", err, sizeof(err)) == -EINVAL);
	test_assert(url_check_endpoint("https://u:p@api.omi.me/?a", err, sizeof(err)) == -EINVAL);
	test_assert(url_check_endpoint("https://api.omi.me/?a b", err, sizeof(err)) == -EINVAL);
	test_assert(url_check_endpoint("http://127.0.0.1@evil.com/?a", err, sizeof(err)) ==
		    -EINVAL);
}

static void test_join(void)
{
	struct {
		const char *base, *path, *want;
	} cases[] = {
		{ "https://api.omi.me", "/v1/dev/keys", "https://api.omi.me/v1/dev/keys" },
		{ "https://api.omi.me/", "/v1/dev/keys", "https://api.omi.me/v1/dev/keys" },
		{ "HTTP://127.0.0.1:8/", "/v1/dev/keys", "HTTP://127.0.0.1:8/v1/dev/keys" },
		{ "http://127.0.0.1:8//", "/v1/auth/token", "http://127.0.0.1:8/v1/auth/token" },
		{ "https://x.example/base", "/v1/auth/authorize",
		  "https://x.example/base/v1/auth/authorize" },
		{ "https://x.example/base/", "v1/token?key=k",
		  "https://x.example/base/v1/token?key=k" },
		{ "https://x.example", "", "https://x.example/" },
	};

	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		char *url = url_join(cases[i].base, cases[i].path);

		test_assert(url != NULL);
		if (strcmp(url, cases[i].want) != 0) {
			fprintf(stderr, "url_join(%s, %s) = %s\n", cases[i].base, cases[i].path,
				url);
			test_assert(!"url_join");
		}
		free(url);
	}
}

static void test_authority(void)
{
	char out[160];
	char long_url[400];

	url_authority("https://api.omi.me/v1/dev/keys?x=1", out, sizeof(out));
	test_assert(strcmp(out, "api.omi.me:443") == 0);
	url_authority("http://127.0.0.1/v1", out, sizeof(out));
	test_assert(strcmp(out, "127.0.0.1:80") == 0);
	url_authority("http://[::1]:8080/", out, sizeof(out));
	test_assert(strcmp(out, "[::1]:8080") == 0);
	/* Never the credentials, path or query. */
	url_authority("http://user:pw@evil.example:8080/steal?token=1", out, sizeof(out));
	test_assert(strcmp(out, "evil.example:8080") == 0);
	url_authority("/relative/path", out, sizeof(out));
	test_assert(out[0] == '\0');
	url_authority("", out, sizeof(out));
	test_assert(out[0] == '\0');
	url_authority(NULL, out, sizeof(out));
	test_assert(out[0] == '\0');
	/* A long host is cut, marked, and kept to one line. */
	snprintf(long_url, sizeof(long_url), "https://%0250d.example/", 0);
	url_authority(long_url, out, sizeof(out));
	test_assert(strlen(out) == 100 && strcmp(out + 97, "...") == 0);
	url_authority("https://api.omi.me:8443", out, 8);
	test_assert(strcmp(out, "api.omi") == 0);
}

int main(void)
{
	test_run(test_check_url_accepts);
	test_run(test_check_url_refuses);
	test_run(test_check_messages);
	test_run(test_check_endpoint);
	test_run(test_join);
	test_run(test_authority);
	return 0;
}
