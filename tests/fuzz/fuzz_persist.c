/*
 * libFuzzer target: a kept list's bytes, as omikeyfs reads them back from
 * disk at mount time.  Each input is parsed as it stands, and again with a
 * correct checksum line appended, so the fuzzer gets past the checksum into
 * the header, the body and the seeds.  What parses must restore into a
 * snapshot, and writing that snapshot back must parse to the same times.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fnv1a.h"
#include "keptfile.h"

#define URL "http://127.0.0.1:8000/v1/dev/keys"
#define CRED "token-sha256:00"
/* max_size at its largest: no input is refused for its size. */
#define MAX_BODY ((size_t)2 << 30)

#define check(expr)                                                                                \
	do {                                                                                       \
		if (!(expr))                                                                       \
			__builtin_trap();                                                          \
	} while (0)

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static void round_trip(const struct kept_list *kept)
{
	struct snapshot *snap = snapshot_restore(&kept->list, kept->seeds, kept->nseeds,
						 kept->members_changed),
			*back;
	struct kept_list again;
	char err[256];
	size_t len;
	char *buf;

	check(snap && snap->count == kept->list.count);
	for (size_t i = 1; i < kept->nseeds; i++)
		check(kept->seeds[i].ino > kept->seeds[i - 1].ino);
	for (size_t i = 0; i < snap->count; i++)
		check(snapshot_find(snap, snap->keys[i].dir->name) == &snap->keys[i]);
	buf = keptfile_format(snap, kept->body, kept->body_len, URL, CRED, kept->fetched_at, &len);
	/* What is written is never more than the reader takes for its body. */
	check(!buf || len <= keptfile_max_len(kept->body_len, strlen(URL), strlen(CRED)));
	check(buf);
	check(keptfile_parse(buf, len, URL, CRED, MAX_BODY, &again, err, sizeof(err)) == 0);
	check(same_time(again.fetched_at, kept->fetched_at));
	back = snapshot_restore(&again.list, again.seeds, again.nseeds, again.members_changed);
	check(back && back->count == snap->count && same_time(back->mtime, snap->mtime));
	for (size_t i = 0; i < snap->count; i++)
		for (int f = 0; f < FIELD_COUNT; f++)
			check(same_time(back->keys[i].file[f]->mtime,
					snap->keys[i].file[f]->mtime));
	snapshot_unref(back);
	keptfile_free(&again);
	snapshot_unref(snap);
	free(buf);
}

static void one(const char *data, size_t size)
{
	struct kept_list kept;
	char err[256];

	if (keptfile_parse(data, size, URL, CRED, MAX_BODY, &kept, err, sizeof(err)) < 0) {
		check(kept.list.count == 0 && kept.seeds == NULL);
		check(memchr(err, '\0', sizeof(err)) != NULL && err[0] != '\0');
		return;
	}
	check(kept.body >= data && kept.body + kept.body_len <= data + size);
	round_trip(&kept);
	keptfile_free(&kept);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *signed_copy = malloc(size + 24);
	int n;

	one((const char *)data, size);
	if (!signed_copy)
		return 0;
	memcpy(signed_copy, data, size);
	n = snprintf(signed_copy + size, 24, "check %016" PRIx64 "\n", fnv1a64(data, size));
	one(signed_copy, size + (size_t)n);
	free(signed_copy);
	return 0;
}
