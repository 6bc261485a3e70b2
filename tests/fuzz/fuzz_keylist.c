/*
 * libFuzzer target: response bytes -> keylist -> snapshot -> every lookup a
 * filesystem operation would make.  Checks the invariants omikeyfs relies
 * on: names are valid, unique and found again; inode numbers are ordered,
 * unique and leave room for the files; sizes match the bytes.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "keylist.h"
#include "keyname.h"
#include "name_is_of.h"
#include "snapshot.h"

#define check(expr)                                                                                \
	do {                                                                                       \
		if (!(expr))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

static void check_snapshot(const struct snapshot *snap)
{
	for (size_t i = 0; i < snap->count; i++) {
		const struct snap_key *key = &snap->keys[i];
		const char *name = key->dir->name;
		size_t len = strlen(name);

		check(len > 0 && len <= KEYNAME_MAX);
		check(strchr(name, '/') == NULL);
		check(strcmp(name, ".") != 0 && strcmp(name, "..") != 0);
		check(snapshot_find(snap, name) == key);
		check(snapshot_seek(snap, key->dir->ino) == i + 1);
		check(key->dir->ino >= 16 && key->dir->ino % 8 == 0);
		if (i)
			check(key->dir->ino > snap->keys[i - 1].dir->ino);
		/* An uncut name maps back to its id. */
		if (!strstr(name, "%~"))
			check(name_is_of(name, key->dir->id, key->dir->id_len));
		for (int f = 0; f < FIELD_COUNT; f++) {
			const struct node *file = key->file[f];

			check(file->ino == key->dir->ino + 1 + (uint64_t)f);
			check(file->type == NODE_FILE);
			check(file->size == 0 || file->data[file->size - 1] == '\n');
		}
	}
}

/* A revoke cuts the first key out of the body kept on disk: what is left
 * must parse, without that id. */
static void check_without(const uint8_t *data, size_t size, const struct parsed_key *gone)
{
	struct keylist rest;
	char err[256], *out;
	size_t len;

	check(keylist_without((const char *)data, size, gone->id, gone->id_len, &out, &len) == 0);
	check(keylist_parse(out, len, &rest, NULL, NULL, err, sizeof(err)) == 0);
	for (size_t i = 0; i < rest.count; i++)
		check(rest.keys[i].id_len != gone->id_len ||
		      memcmp(rest.keys[i].id, gone->id, gone->id_len) != 0);
	keylist_free(&rest);
	free(out);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static struct snapshot *prev;
	struct keylist list;
	struct snapshot *snap;
	char err[256];

	if (keylist_parse((const char *)data, size, &list, NULL, NULL, err, sizeof(err)) < 0) {
		check(list.count == 0 && list.keys == NULL);
		check(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
		return 0;
	}
	for (size_t i = 0; i < list.count; i++)
		for (size_t j = 0; j < i && j < 64; j++)
			check(strcmp(list.keys[i].name, list.keys[j].name) != 0);
	/* Built on the previous input's snapshot too, as a refresh would. */
	snap = snapshot_build(prev, &list, (struct timespec){ 1800000000, 0 });
	check(snap != NULL);
	check(snap->count == list.count);
	check_snapshot(snap);
	if (list.count) {
		struct snapshot *less =
			snapshot_without(snap, snapshot_find(snap, list.keys[0].name),
					 (struct timespec){ 1800000001, 0 });

		check(less && less->count == snap->count - 1);
		check(!snapshot_find(less, list.keys[0].name));
		check_snapshot(less);
		snapshot_unref(less);
		check_without(data, size, &list.keys[0]);
	}
	keylist_free(&list);
	snapshot_unref(prev);
	prev = snap;
	return 0;
}
