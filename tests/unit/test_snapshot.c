/* Unit tests for snapshot: inode numbers, node sharing, mtimes, lookups. */
#include <stdlib.h>
#include <string.h>

#include "snapshot.h"
#include "test.h"

struct spec {
	const char *id, *name, *created, *last_used;
	long created_s, last_used_s; /* parsed forms; last_used_s 0 = null */
};

static void set_text(struct key_text *t, const char *s)
{
	if (!s) {
		t->data = NULL;
		t->len = 0;
		return;
	}
	t->len = strlen(s) + 1;
	t->data = malloc(t->len);
	memcpy(t->data, s, t->len - 1);
	t->data[t->len - 1] = '\n';
}

static struct keylist make_list(const struct spec *specs, size_t n)
{
	struct keylist list = { .count = n, .keys = calloc(n ? n : 1, sizeof(struct parsed_key)) };

	for (size_t i = 0; i < n; i++) {
		struct parsed_key *k = &list.keys[i];

		k->id = strdup(specs[i].id);
		k->id_len = strlen(specs[i].id);
		keyname_escape(k->id, k->id_len, k->name);
		set_text(&k->file[FIELD_NAME], specs[i].name);
		set_text(&k->file[FIELD_KEY_PREFIX], "omi_dev_abcd...wxyz");
		set_text(&k->file[FIELD_CREATED_AT], specs[i].created);
		set_text(&k->file[FIELD_LAST_USED_AT], specs[i].last_used);
		set_text(&k->file[FIELD_SCOPES], NULL);
		k->created.tv_sec = specs[i].created_s;
		k->last_used.tv_sec =
			specs[i].last_used ? specs[i].last_used_s : specs[i].created_s;
	}
	return list;
}

static const struct spec base[] = {
	{ "0b6e3c52-8f4d-4a8e-9d7a-3f1c2b5e6a70", "Dashboard", "2025-01-15T10:30:00Z", NULL,
	  1736937000, 0 },
	{ "7d1f0a9e-2c44-4d71-b0a3-5e9c1f2d8b64", "Backups", "2025-01-10T00:00:00Z",
	  "2025-01-20T14:22:00Z", 1736467200, 1737382920 },
	{ "c9a1e1f0-1111-4222-8333-944455556666", "CI", "2024-12-01T00:00:00Z", NULL, 1733011200,
	  0 },
};

static const struct timespec t1 = { 2000000000, 0 }, t2 = { 2000000100, 5 };

static void test_layout(void)
{
	struct keylist list = make_list(base, 3);
	struct snapshot *s = snapshot_build(NULL, &list, t1);

	test_assert(s && s->count == 3 && s->generation == 1);
	for (size_t i = 0; i < s->count; i++) {
		const struct snap_key *k = &s->keys[i];

		test_assert(k->dir->ino % 8 == 0 && k->dir->ino >= 16);
		test_assert(k->dir->ino < (1ULL << 62));
		if (i)
			test_assert(k->dir->ino > s->keys[i - 1].dir->ino);
		for (int f = 0; f < FIELD_COUNT; f++) {
			test_assert(k->file[f]->ino == k->dir->ino + 1 + (uint64_t)f);
			test_assert(strcmp(k->file[f]->name, key_field_names[f]) == 0);
		}
		test_assert(snapshot_find(s, k->dir->name) == k);
		test_assert(snapshot_seek(s, k->dir->ino) == i + 1);
		test_assert(snapshot_seek(s, k->dir->ino - 1) == i);
	}
	test_assert(snapshot_find(s, "nope") == NULL);
	test_assert(snapshot_seek(s, 0) == 0);
	test_assert(snapshot_seek(s, UINT64_MAX) == 3);

	const struct snap_key *k = snapshot_find(s, base[0].id);
	test_assert(k && k->file[FIELD_NAME]->size == strlen("Dashboard\n"));
	test_assert(memcmp(k->file[FIELD_NAME]->data, "Dashboard\n", 10) == 0);
	test_assert(k->file[FIELD_LAST_USED_AT]->size == 0);
	test_assert(k->dir->id_len == strlen(base[0].id));
	/* mtimes: directory, created_at and null last_used_at take created_at */
	test_assert(k->dir->mtime.tv_sec == 1736937000);
	test_assert(k->file[FIELD_CREATED_AT]->mtime.tv_sec == 1736937000);
	test_assert(k->file[FIELD_LAST_USED_AT]->mtime.tv_sec == 1736937000);
	test_assert(k->file[FIELD_NAME]->mtime.tv_sec == 1736937000);
	k = snapshot_find(s, base[1].id);
	test_assert(k->file[FIELD_LAST_USED_AT]->mtime.tv_sec == 1737382920);
	/* root: the newest created_at on the first fetch */
	test_assert(s->mtime.tv_sec == 1736937000);
	test_assert(field_by_name("scopes") == FIELD_SCOPES && field_by_name("x") == -1);
	snapshot_unref(s);
	keylist_free(&list);
}

static void test_stable_across_builds(void)
{
	struct keylist a = make_list(base, 3), b = make_list(base, 2);
	struct snapshot *s1 = snapshot_build(NULL, &a, t1);
	struct snapshot *s2 = snapshot_build(NULL, &b, t1);

	/* Same key, same numbers, whatever else is in the list (remounts). */
	for (size_t i = 0; i < 2; i++) {
		const struct snap_key *x = snapshot_find(s1, base[i].id);
		const struct snap_key *y = snapshot_find(s2, base[i].id);

		test_assert(x && y && x->dir->ino == y->dir->ino);
	}
	snapshot_unref(s1);
	snapshot_unref(s2);
	keylist_free(&a);
	keylist_free(&b);
}

static void test_sharing_and_change(void)
{
	struct keylist a = make_list(base, 3);
	struct snapshot *s1 = snapshot_build(NULL, &a, t1);
	struct snapshot *s2 = snapshot_build(s1, &a, t2);

	/* Nothing changed: every node is shared, the root keeps its time. */
	test_assert(s2->generation == 2);
	for (size_t i = 0; i < 3; i++) {
		test_assert(s1->keys[i].dir == s2->keys[i].dir);
		for (int f = 0; f < FIELD_COUNT; f++)
			test_assert(s1->keys[i].file[f] == s2->keys[i].file[f]);
	}
	test_assert(s2->mtime.tv_sec == s1->mtime.tv_sec);

	/* A longer name: a new node for name only, stamped with the time the
	 * change was seen; the directory and other files are shared. */
	struct spec changed[3];
	memcpy(changed, base, sizeof(changed));
	changed[0].name = "Dashboard (production, renamed)";
	struct keylist c = make_list(changed, 3);
	struct snapshot *s3 = snapshot_build(s2, &c, t2);
	const struct snap_key *old = snapshot_find(s2, base[0].id),
			      *now = snapshot_find(s3, base[0].id);

	test_assert(now->dir == old->dir);
	test_assert(now->file[FIELD_NAME] != old->file[FIELD_NAME]);
	test_assert(now->file[FIELD_NAME]->ino == old->file[FIELD_NAME]->ino);
	test_assert(now->file[FIELD_NAME]->size == strlen("Dashboard (production, renamed)\n"));
	test_assert(now->file[FIELD_NAME]->mtime.tv_sec == t2.tv_sec);
	test_assert(now->file[FIELD_NAME]->mtime.tv_nsec == t2.tv_nsec);
	test_assert(now->file[FIELD_SCOPES] == old->file[FIELD_SCOPES]);
	test_assert(s3->mtime.tv_sec == s2->mtime.tv_sec); /* same set of keys */
	/* The old snapshot still holds the old bytes. */
	test_assert(old->file[FIELD_NAME]->size == 10);

	/* Renamed back: bytes as before, but the change was seen at t2. */
	snapshot_unref(s1);
	snapshot_unref(s2);
	struct snapshot *s4 = snapshot_build(s3, &a, (struct timespec){ 2000000200, 0 });
	test_assert(snapshot_find(s4, base[0].id)->file[FIELD_NAME]->mtime.tv_sec == 2000000200);

	/* A key vanishes: the root's mtime becomes the time it was seen. */
	struct keylist d = make_list(base, 2);
	struct snapshot *s5 = snapshot_build(s4, &d, (struct timespec){ 2000000300, 0 });
	test_assert(s5->count == 2 && s5->mtime.tv_sec == 2000000300);
	test_assert(s5->members_changed.tv_sec == 2000000300);
	/* ... and appears again. */
	struct snapshot *s6 = snapshot_build(s5, &a, (struct timespec){ 2000000400, 0 });
	test_assert(s6->count == 3 && s6->mtime.tv_sec == 2000000400);
	const struct snap_key *back = snapshot_find(s6, base[2].id);
	test_assert(back && back->file[FIELD_NAME]->mtime.tv_sec == base[2].created_s);

	snapshot_unref(s3);
	snapshot_unref(s4);
	snapshot_unref(s5);
	snapshot_unref(s6);
	keylist_free(&a);
	keylist_free(&c);
	keylist_free(&d);
}

static void test_empty_and_escaped(void)
{
	struct keylist empty = { 0 };
	struct snapshot *s = snapshot_build(NULL, &empty, t1);

	test_assert(s && s->count == 0 && snapshot_seek(s, 0) == 0);
	test_assert(snapshot_find(s, "x") == NULL);
	snapshot_unref(s);

	static const struct spec odd[] = {
		{ "..", "dots", "2025-01-01T00:00:00Z", NULL, 1735689600, 0 },
		{ "a/b", "slash", "2025-01-01T00:00:00Z", NULL, 1735689600, 0 },
	};
	struct keylist list = make_list(odd, 2);
	s = snapshot_build(NULL, &list, t1);
	test_assert(s->count == 2);
	for (size_t i = 0; i < 2; i++) {
		test_assert(strchr(s->keys[i].dir->name, '/') == NULL);
		test_assert(strcmp(s->keys[i].dir->name, "..") != 0);
	}
	test_assert(snapshot_find(s, "%..") != NULL);
	test_assert(snapshot_find(s, "%a%2Fb") != NULL);
	snapshot_unref(s);
	keylist_free(&list);
}

static void test_many(void)
{
	enum { N = 20000 };
	struct spec *specs = calloc(N, sizeof(*specs));
	char(*ids)[40] = calloc(N, 40);

	for (size_t i = 0; i < N; i++) {
		snprintf(ids[i], 40, "id-%zu", i);
		specs[i] =
			(struct spec){ ids[i], "n", "2025-01-01T00:00:00Z", NULL, 1735689600, 0 };
	}
	struct keylist list = make_list(specs, N);
	struct snapshot *s = snapshot_build(NULL, &list, t1);

	test_assert(s->count == N);
	for (size_t i = 0; i < N; i++) {
		test_assert(snapshot_find(s, ids[i]) != NULL);
		if (i)
			test_assert(s->keys[i].dir->ino >= s->keys[i - 1].dir->ino + 8);
	}
	snapshot_unref(s);
	keylist_free(&list);
	free(specs);
	free(ids);
}

/* A key that becomes legacy (scopes null instead of []): both give an
 * empty scopes file, so only the directory's legacy flag tells, and a new
 * directory node carries it. */
static void test_legacy_flag(void)
{
	struct keylist a = make_list(base, 3), b = make_list(base, 3);
	struct snapshot *s1, *s2;

	b.keys[1].legacy = true;
	s1 = snapshot_build(NULL, &a, t1);
	s2 = snapshot_build(s1, &b, t2);
	test_assert(!snapshot_find(s1, base[1].id)->dir->legacy);
	test_assert(snapshot_find(s2, base[1].id)->dir->legacy);
	test_assert(snapshot_find(s2, base[1].id)->dir->ino ==
		    snapshot_find(s1, base[1].id)->dir->ino);
	test_assert(!snapshot_find(s2, base[0].id)->dir->legacy);
	test_assert(snapshot_find(s2, base[0].id)->dir == snapshot_find(s1, base[0].id)->dir);
	snapshot_unref(s1);
	snapshot_unref(s2);
	keylist_free(&a);
	keylist_free(&b);
}

/* A revoke: the key goes, every other node is shared, the root is stamped;
 * the list built next from the API's body (without it) keeps all that. */
static void test_without(void)
{
	struct keylist a = make_list(base, 3), b = make_list(base + 1, 2);
	struct snapshot *s1 = snapshot_build(NULL, &a, t1);
	const struct snap_key *gone = snapshot_find(s1, base[0].id);
	struct snapshot *s2 = snapshot_without(s1, gone, t2), *s3;

	test_assert(s2 && s2->count == 2 && s2->generation == 2);
	test_assert(!snapshot_find(s2, base[0].id));
	for (size_t i = 1; i < 3; i++) {
		const struct snap_key *was = snapshot_find(s1, base[i].id);
		const struct snap_key *now = snapshot_find(s2, base[i].id);

		test_assert(now && now->dir == was->dir);
		for (int f = 0; f < FIELD_COUNT; f++)
			test_assert(now->file[f] == was->file[f]);
	}
	test_assert(s2->keys[0].dir->ino < s2->keys[1].dir->ino);
	test_assert(s2->mtime.tv_sec == t2.tv_sec && s2->mtime.tv_nsec == t2.tv_nsec);
	test_assert(s2->members_changed.tv_sec == t2.tv_sec);

	s3 = snapshot_build(s2, &b, (struct timespec){ 2000000200, 0 });
	test_assert(s3->count == 2 && s3->mtime.tv_sec == t2.tv_sec);
	for (size_t i = 0; i < 2; i++)
		test_assert(s3->keys[i].dir == s2->keys[i].dir);

	/* The last key out: an empty list. */
	struct snapshot *s4 = snapshot_without(s3, &s3->keys[0], t2);
	struct snapshot *s5 = snapshot_without(s4, &s4->keys[0], t2);

	test_assert(s5->count == 0 && !snapshot_find(s5, base[1].id));
	snapshot_unref(s5);
	snapshot_unref(s4);
	snapshot_unref(s3);
	snapshot_unref(s2);
	snapshot_unref(s1);
	keylist_free(&a);
	keylist_free(&b);
}

int main(void)
{
	test_run(test_without);
	test_run(test_layout);
	test_run(test_stable_across_builds);
	test_run(test_sharing_and_change);
	test_run(test_empty_and_escaped);
	test_run(test_many);
	test_run(test_legacy_flag);
	return 0;
}
