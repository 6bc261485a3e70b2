/* Unit tests for persist: the file format's round trip, damaged, foreign and
 * newer files, the modes it writes and refuses, and a cache seeded with a
 * kept list (offline start, refused credential, mtimes carried over). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cache.h"
#include "keptfile.h"
#include "persist.h"
#include "test.h"

#define URL "https://api.example/v1/dev/keys"
#define CRED "user:u1"
#define MAX_BODY ((size_t)64 << 20)

static const char body_a[] =
	"[{\"id\":\"k1\",\"name\":\"one\",\"key_prefix\":\"omi_dev_aaaa...aaaa\","
	"\"created_at\":\"2025-01-15T10:30:00.123456Z\",\"last_used_at\":null,\"scopes\":null},"
	"{\"id\":\"k2\",\"name\":\"two\",\"key_prefix\":\"omi_dev_bbbb...bbbb\","
	"\"created_at\":\"2025-02-01T00:00:00Z\",\"last_used_at\":null,\"scopes\":[\"a:read\"]}]";
static const char body_b[] =
	"[{\"id\":\"k1\",\"name\":\"uno\",\"key_prefix\":\"omi_dev_aaaa...aaaa\","
	"\"created_at\":\"2025-01-15T10:30:00.123456Z\",\"last_used_at\":null,\"scopes\":null},"
	"{\"id\":\"k2\",\"name\":\"two\",\"key_prefix\":\"omi_dev_bbbb...bbbb\","
	"\"created_at\":\"2025-02-01T00:00:00Z\",\"last_used_at\":null,\"scopes\":[\"a:read\"]}]";

static const struct timespec t1 = { 1800000000, 123456789 };
static const struct timespec t2 = { 1800000100, 5 };

static struct snapshot *build(const char *body, const struct snapshot *prev, struct timespec now)
{
	struct keylist list;
	char err[256];
	struct snapshot *snap;

	test_assert(keylist_parse(body, strlen(body), &list, NULL, NULL, err, sizeof(err)) == 0);
	snap = snapshot_build(prev, &list, now);
	keylist_free(&list);
	test_assert(snap);
	return snap;
}

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static void assert_same_times(const struct snapshot *a, const struct snapshot *b)
{
	test_assert(a->count == b->count);
	test_assert(same_time(a->mtime, b->mtime));
	test_assert(same_time(a->members_changed, b->members_changed));
	for (size_t i = 0; i < a->count; i++) {
		test_assert(a->keys[i].dir->ino == b->keys[i].dir->ino);
		test_assert(same_time(a->keys[i].dir->mtime, b->keys[i].dir->mtime));
		for (int f = 0; f < FIELD_COUNT; f++)
			test_assert(
				same_time(a->keys[i].file[f]->mtime, b->keys[i].file[f]->mtime));
	}
}

/* A snapshot where k1's name changed at t2, as a mount would have seen. */
static struct snapshot *watched(void)
{
	struct snapshot *first = build(body_a, NULL, t1);
	struct snapshot *second = build(body_b, first, t2);

	snapshot_unref(first);
	return second;
}

static void test_round_trip(void)
{
	struct snapshot *snap = watched(), *back;
	struct kept_list kept;
	char err[256];
	size_t len;
	char *buf = keptfile_format(snap, body_b, strlen(body_b), URL, CRED, t1, &len);

	test_assert(buf);
	test_assert(keptfile_parse(buf, len, URL, CRED, MAX_BODY, &kept, err, sizeof(err)) == 0);
	test_assert(same_time(kept.fetched_at, t1));
	test_assert(kept.body_len == strlen(body_b) &&
		    memcmp(kept.body, body_b, kept.body_len) == 0);
	test_assert(kept.list.count == 2);
	test_assert(kept.nseeds == 1); /* only k1 changed while watched */
	back = snapshot_restore(&kept.list, kept.seeds, kept.nseeds, kept.members_changed);
	assert_same_times(snap, back);
	{
		const struct snap_key *k1 = snapshot_find(back, "k1");

		test_assert(same_time(k1->file[FIELD_NAME]->mtime, t2));
		test_assert(k1->file[FIELD_KEY_PREFIX]->mtime.tv_sec == k1->dir->mtime.tv_sec);
	}
	/* Built on the restored one, the same body changes nothing. */
	{
		struct snapshot *again = build(body_b, back, (struct timespec){ 1900000000, 0 });

		assert_same_times(snap, again);
		for (size_t i = 0; i < again->count; i++)
			test_assert(again->keys[i].file[FIELD_NAME] ==
				    back->keys[i].file[FIELD_NAME]);
		snapshot_unref(again);
	}
	keptfile_free(&kept);
	snapshot_unref(back);
	snapshot_unref(snap);
	free(buf);
}

/* A key appearing sets the root's mtime; a restore keeps it. */
static void test_root_mtime_restored(void)
{
	static const char one[] =
		"[{\"id\":\"k1\",\"name\":\"one\",\"key_prefix\":null,"
		"\"created_at\":\"2025-01-15T10:30:00Z\",\"last_used_at\":null,\"scopes\":null}]";
	struct snapshot *first = build(one, NULL, t1), *snap = build(body_a, first, t2), *back;
	struct kept_list kept;
	char err[256];
	size_t len;
	char *buf = keptfile_format(snap, body_a, strlen(body_a), URL, CRED, t2, &len);

	test_assert(same_time(snap->mtime, t2));
	test_assert(keptfile_parse(buf, len, URL, CRED, MAX_BODY, &kept, err, sizeof(err)) == 0);
	back = snapshot_restore(&kept.list, kept.seeds, kept.nseeds, kept.members_changed);
	assert_same_times(snap, back);
	keptfile_free(&kept);
	snapshot_unref(back);
	snapshot_unref(snap);
	snapshot_unref(first);
	free(buf);
}

static void test_damaged(void)
{
	struct snapshot *snap = watched();
	struct kept_list kept;
	char err[256];
	size_t len;
	char *buf = keptfile_format(snap, body_b, strlen(body_b), URL, CRED, t1, &len);

	/* Every truncation and every flipped byte is refused. */
	for (size_t cut = 0; cut < len; cut++) {
		test_assert(keptfile_parse(buf, cut, URL, CRED, MAX_BODY, &kept, err, sizeof(err)) <
			    0);
		test_assert(kept.list.count == 0 && err[0]);
	}
	for (size_t i = 0; i < len; i++) {
		int rc;

		buf[i] ^= 0x20;
		rc = keptfile_parse(buf, len, URL, CRED, MAX_BODY, &kept, err, sizeof(err));
		test_assert(rc < 0 && kept.list.count == 0);
		buf[i] ^= 0x20;
	}
	test_assert(keptfile_parse(buf, len, URL, CRED, MAX_BODY, &kept, err, sizeof(err)) == 0);
	keptfile_free(&kept);
	snapshot_unref(snap);
	free(buf);
}

static void test_foreign_and_version(void)
{
	struct snapshot *snap = watched();
	struct kept_list kept;
	char err[256];
	size_t len;
	char *buf = keptfile_format(snap, body_b, strlen(body_b), URL, CRED, t1, &len);

	test_assert(keptfile_parse(buf, len, URL "x", CRED, MAX_BODY, &kept, err, sizeof(err)) ==
		    -EXDEV);
	test_assert(strstr(err, "URL"));
	test_assert(keptfile_parse(buf, len, URL, "user:u2", MAX_BODY, &kept, err, sizeof(err)) ==
		    -EXDEV);
	test_assert(strstr(err, "credential"));
	/* A newer format is refused as such, whatever follows. */
	buf[strlen("omikeyfs kept list ")] = '2';
	test_assert(keptfile_parse(buf, len, URL, CRED, MAX_BODY, &kept, err, sizeof(err)) ==
		    -EPROTONOSUPPORT);
	test_assert(kept.list.count == 0);
	snapshot_unref(snap);
	free(buf);
}

/* A body larger than max_size is refused as a response of that size would
 * be; what is written for a body within it is within keptfile_max_len. */
static void test_size_rule(void)
{
	struct snapshot *snap = watched();
	struct kept_list kept;
	char err[256];
	size_t len;
	char *buf = keptfile_format(snap, body_b, strlen(body_b), URL, CRED, t1, &len);

	test_assert(len <= keptfile_max_len(strlen(body_b), strlen(URL), strlen(CRED)));
	test_assert(keptfile_parse(buf, len, URL, CRED, strlen(body_b), &kept, err, sizeof(err)) ==
		    0);
	keptfile_free(&kept);
	test_assert(keptfile_parse(buf, len, URL, CRED, strlen(body_b) - 1, &kept, err,
				   sizeof(err)) == -EFBIG);
	test_assert(strstr(err, "max_size") && kept.list.count == 0);
	/* The bound grows with max_size, and no faster than its keys' seeds. */
	test_assert(keptfile_max_len(1024, 40, 20) < 1024 + 40 + 20 + 1024 / 9 * 120 + 512);
	test_assert(keptfile_max_len((size_t)64 << 20, 40, 20) < ((size_t)64 << 20) + (25u << 20));
	snapshot_unref(snap);
	free(buf);
}

/* ---- on disk, through a cache ------------------------------------------ */

struct fake {
	int err;
	const char *body;
	const char *token; /* whose list the fetch brings */
	struct timespec now;
	int fetches;
};

static void fake_fetch(void *ctx, struct fetch_result *res)
{
	struct fake *f = ctx;

	f->fetches++;
	res->err = f->err;
	if (f->err) {
		snprintf(res->message, sizeof(res->message), "HTTP 503: down");
		return;
	}
	res->len = strlen(f->body);
	res->body = strdup(f->body);
	res->owner.token = f->token;
}

static double fake_monotonic(void *ctx)
{
	return 100.0;
}

static struct timespec fake_realtime(void *ctx)
{
	return ((struct fake *)ctx)->now;
}

static double fake_random(void *ctx)
{
	return 0;
}

static struct cache *new_cache(struct fake *f)
{
	const struct cache_ops ops = { fake_fetch, fake_monotonic, fake_realtime, fake_random, f };

	return cache_new(&ops, 60);
}

static char *temp_dir(void)
{
	char tmpl[] = "/tmp/omikeyfs-persist-XXXXXX";
	char *dir = mkdtemp(tmpl);

	test_assert(dir);
	return strdup(dir);
}

static mode_t mode_of(const char *path)
{
	struct stat st;

	test_assert(stat(path, &st) == 0);
	return st.st_mode & 07777;
}

/* Mounts once: a persist over a cache whose first fetch answers f. */
static struct persist *open_kept(const char *dir, bool fallback, const char *token,
				 struct cache *cache, char *err, size_t errlen)
{
	const struct persist_config cfg = {
		.dir = dir,
		.fallback = fallback,
		.url = URL,
		.max_size = MAX_BODY,
		.owner = { NULL, token },
	};

	return persist_open(&cfg, cache, err, errlen);
}

static int mount_once(const char *dir, const char *token, struct fake *f,
		      struct cache_status *status, struct snapshot **snap)
{
	char err[512], msg[512];
	struct cache *cache = new_cache(f);
	struct persist *p = open_kept(dir, false, token, cache, err, sizeof(err));
	int rc;

	f->token = token;
	test_assert(p);
	rc = cache_prime(cache, msg, sizeof(msg));
	cache_status(cache, status);
	*snap = rc == 0 ? cache_get(cache, NULL) : NULL;
	persist_free(p); /* never started: writes what is queued */
	cache_free(cache);
	return rc;
}

static void test_on_disk(void)
{
	char *base = temp_dir(), *dir, path[1200], err[512];
	struct fake f = { .body = body_a, .now = t1 };
	struct cache_status status;
	struct snapshot *snap, *first;
	int n = 0;

	test_assert(asprintf(&dir, "%s/a/omikeyfs", base) > 0);
	test_assert(mount_once(dir, "tok-1", &f, &status, &first) == 0);
	test_assert(mode_of(dir) == 0700);
	snprintf(path, sizeof(path), "%s/a", base);
	test_assert(mode_of(path) == 0700);
	snprintf(path, sizeof(path), "%s/salt", dir);
	test_assert(mode_of(path) == 0600);
	{
		char cmd[600];
		FILE *ls;

		snprintf(cmd, sizeof(cmd), "ls -A %s", dir);
		ls = popen(cmd, "r");
		while (fgets(err, sizeof(err), ls)) {
			err[strcspn(err, "\n")] = '\0';
			n++;
			if (strncmp(err, "list-", 5) == 0) {
				snprintf(path, sizeof(path), "%s/%s", dir, err);
				test_assert(mode_of(path) == 0600);
			} else {
				test_assert(strcmp(err, "salt") == 0);
			}
		}
		pclose(ls);
		test_assert(n == 2);
	}

	/* API down: the kept list, stale, with the kept time. */
	f.err = -EIO;
	f.now = t2;
	test_assert(mount_once(dir, "tok-1", &f, &status, &snap) == 0);
	test_assert(status.stale && strstr(status.last_error, "503"));
	test_assert(same_time(status.fetched_at, t1));
	assert_same_times(first, snap);
	snapshot_unref(snap);

	/* A refused credential is not hidden by a kept list. */
	f.err = -EACCES;
	test_assert(mount_once(dir, "tok-1", &f, &status, &snap) == -EACCES);
	/* Another token's is not this one's. */
	f.err = -EIO;
	test_assert(mount_once(dir, "tok-2", &f, &status, &snap) == -EIO);

	/* Others may read it: refused, whichever it is. */
	snprintf(path, sizeof(path), "%s/salt", dir);
	test_assert(chmod(path, 0644) == 0);
	{
		struct cache *cache = new_cache(&f);

		test_assert(!open_kept(dir, false, "tok-1", cache, err, sizeof(err)));
		test_assert(strstr(err, "group or others"));
		test_assert(chmod(path, 0600) == 0);
		test_assert(chmod(dir, 0750) == 0);
		test_assert(!open_kept(dir, false, "tok-1", cache, err, sizeof(err)));
		test_assert(strstr(err, "cache_dir") && strstr(err, "group or others"));
		/* A default that cannot be made, or that others may read:
		 * mount, keeping nothing. */
		snprintf(path, sizeof(path), "%s/salt/sub", dir);
		test_assert(!open_kept(path, true, "tok-1", cache, err, sizeof(err)));
		test_assert(err[0] == '\0');
		test_assert(!open_kept(path, false, "tok-1", cache, err, sizeof(err)));
		test_assert(err[0] != '\0');
		test_assert(chmod(dir, 0755) == 0);
		test_assert(!open_kept(dir, true, "tok-1", cache, err, sizeof(err)));
		test_assert(err[0] == '\0');
		test_assert(chmod(dir, 0700) == 0);
		cache_free(cache);
	}

	snapshot_unref(first);
	snprintf(path, sizeof(path), "rm -rf %s", base);
	test_assert(system(path) == 0);
	free(dir);
	free(base);
}

/* A list is kept under the credential that fetched it, not the mount's
 * first: a key file rotated to another account's token. */
static void test_kept_under_the_fetch_credential(void)
{
	static const char body_c[] = "[{\"id\":\"c1\",\"name\":\"mallory's\","
				     "\"created_at\":\"2025-03-01T00:00:00Z\"}]";
	char *dir = temp_dir(), err[512], msg[512], cmd[600];
	struct fake f = { .body = body_a, .now = t1 };
	struct cache_status status;
	struct snapshot *snap;
	struct cache *cache;
	struct persist *p;

	test_assert(mount_once(dir, "tok-1", &f, &status, &snap) == 0);
	snapshot_unref(snap);
	/* Opened for tok-1, whose list seeds it; the fetch carries tok-2. */
	cache = new_cache(&f);
	p = open_kept(dir, false, "tok-1", cache, err, sizeof(err));
	test_assert(p);
	f.token = "tok-2";
	f.body = body_c;
	test_assert(cache_prime(cache, msg, sizeof(msg)) == 0);
	persist_free(p);
	cache_free(cache);

	f.err = -EIO;
	test_assert(mount_once(dir, "tok-1", &f, &status, &snap) == 0);
	test_assert(snap->count == 2 && snapshot_find(snap, "k1"));
	snapshot_unref(snap);
	test_assert(mount_once(dir, "tok-2", &f, &status, &snap) == 0);
	test_assert(snap->count == 1 && snapshot_find(snap, "c1"));
	snapshot_unref(snap);
	/* No credential to name: nothing is kept, rather than under another's. */
	f.err = 0;
	cache = new_cache(&f);
	p = open_kept(dir, false, "tok-3", cache, err, sizeof(err));
	f.token = NULL;
	test_assert(p && cache_prime(cache, msg, sizeof(msg)) == 0);
	persist_free(p);
	cache_free(cache);
	f.err = -EIO;
	test_assert(mount_once(dir, "tok-3", &f, &status, &snap) == -EIO);

	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	test_assert(system(cmd) == 0);
	free(dir);
}

int main(void)
{
	test_run(test_round_trip);
	test_run(test_root_mtime_restored);
	test_run(test_damaged);
	test_run(test_foreign_and_version);
	test_run(test_size_rule);
	test_run(test_on_disk);
	test_run(test_kept_under_the_fetch_credential);
	return 0;
}
