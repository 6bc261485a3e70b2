/*
 * snapshot: the key list as immutable nodes.
 *
 * Inode numbers come from a hash of the key's id, so the same key gets the
 * same numbers after a refresh and after a remount.  Two ids whose hashes
 * collide are told apart deterministically: keys are sorted by (hash, API
 * position) and each takes the next free multiple of 8, so the numbers
 * depend only on the data, and hostile ids cannot make the build quadratic.
 */
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "fnv1a.h"
#include "snapshot.h"

struct ino_slot {
	uint64_t ino;
	size_t index; /* position in the keylist */
};

static int compare_slots(const void *a, const void *b)
{
	const struct ino_slot *x = a, *y = b;

	if (x->ino != y->ino)
		return x->ino < y->ino ? -1 : 1;
	return x->index < y->index ? -1 : x->index > y->index;
}

static uint64_t name_prefix(const char *name)
{
	uint64_t prefix = 0;

	for (int i = 0; i < 8; i++) {
		prefix = prefix << 8 | (unsigned char)*name;
		if (*name)
			name++;
	}
	return prefix;
}

/* Orders as strcmp does: a prefix is the name's first bytes, unsigned. */
static int compare_refs(const struct snapshot *snap, const struct name_ref *a, uint64_t b_prefix,
			const char *b_name)
{
	if (a->prefix != b_prefix)
		return a->prefix < b_prefix ? -1 : 1;
	return strcmp(snap->keys[a->index].dir->name, b_name);
}

static int compare_names(const void *a, const void *b, void *ctx)
{
	const struct snapshot *snap = ctx;
	const struct name_ref *y = b;

	return compare_refs(snap, a, y->prefix, snap->keys[y->index].dir->name);
}

static bool time_after(struct timespec a, struct timespec b)
{
	return a.tv_sec > b.tv_sec || (a.tv_sec == b.tv_sec && a.tv_nsec > b.tv_nsec);
}

void node_ref(struct node *node)
{
	atomic_fetch_add_explicit(&node->refs, 1, memory_order_relaxed);
}

void node_unref(struct node *node)
{
	if (node && atomic_fetch_sub_explicit(&node->refs, 1, memory_order_acq_rel) == 1)
		free(node);
}

static struct node *dir_node_new(const struct parsed_key *key, uint64_t ino)
{
	size_t name_len = strlen(key->name);
	struct node *node = malloc(sizeof(*node) + name_len + 1 + key->id_len + 1);

	if (!node)
		return NULL;
	memset(node, 0, sizeof(*node));
	atomic_init(&node->refs, 1);
	node->type = NODE_DIR;
	node->ino = ino;
	node->mtime = key->created;
	node->size = FIELD_COUNT;
	memcpy(node->data, key->name, name_len + 1);
	memcpy(node->data + name_len + 1, key->id, key->id_len);
	node->data[name_len + 1 + key->id_len] = '\0';
	node->name = node->data;
	node->id = node->data + name_len + 1;
	node->id_len = key->id_len;
	node->legacy = key->legacy;
	return node;
}

static struct node *file_node_new(const struct key_text *text, enum key_field field, uint64_t ino,
				  struct timespec mtime)
{
	struct node *node = malloc(sizeof(*node) + text->len);

	if (!node)
		return NULL;
	memset(node, 0, sizeof(*node));
	atomic_init(&node->refs, 1);
	node->type = NODE_FILE;
	node->field = field;
	node->ino = ino;
	node->mtime = mtime;
	node->size = text->len;
	node->name = key_field_names[field];
	if (text->len)
		memcpy(node->data, text->data, text->len);
	return node;
}

static bool same_bytes(const struct node *node, const struct key_text *text)
{
	return node->size == text->len &&
	       (text->len == 0 || memcmp(node->data, text->data, text->len) == 0);
}

/* The time a file is stamped with: its own value for the two timestamps;
 * for the others, created_at until omikeyfs sees the bytes change (or the
 * time a kept list says it saw them change: seed). */
static struct timespec file_mtime(const struct parsed_key *key, enum key_field field,
				  const struct snap_key *old, const struct snapshot_seed *seed,
				  struct timespec now)
{
	if (field == FIELD_CREATED_AT)
		return key->created;
	if (field == FIELD_LAST_USED_AT)
		return key->last_used;
	if (!old)
		return seed ? seed->mtime[field] : key->created;
	if (same_bytes(old->file[field], &key->file[field]))
		return old->file[field]->mtime;
	return now;
}

static int build_key(struct snap_key *out, const struct parsed_key *key, uint64_t ino,
		     const struct snap_key *old, const struct snapshot_seed *seed,
		     struct timespec now)
{
	if (old && old->dir->ino == ino && timespec_equal(old->dir->mtime, key->created) &&
	    old->dir->legacy == key->legacy && old->dir->id_len == key->id_len &&
	    memcmp(old->dir->id, key->id, key->id_len) == 0) {
		node_ref(old->dir);
		out->dir = old->dir;
	} else if (!(out->dir = dir_node_new(key, ino))) {
		return -1;
	}
	for (int f = 0; f < FIELD_COUNT; f++) {
		struct timespec mtime = file_mtime(key, f, old, seed, now);
		struct node *prev = old ? old->file[f] : NULL;

		if (prev && prev->ino == ino + 1 + f && timespec_equal(prev->mtime, mtime) &&
		    same_bytes(prev, &key->file[f])) {
			node_ref(prev);
			out->file[f] = prev;
		} else if (!(out->file[f] = file_node_new(&key->file[f], f, ino + 1 + f, mtime))) {
			return -1;
		}
	}
	return 0;
}

/*
 * Each key's inode number, in inode order (malloc'd; NULL without memory
 * or keys).  59 bits of hash, times 8: room for the five files, and far
 * enough below the top of off_t (readdir hands inode numbers out as
 * offsets) that collision steps cannot overflow it.
 */
static struct ino_slot *number_keys(const struct keylist *list)
{
	size_t n = list->count;
	struct ino_slot *slots = n ? malloc(n * sizeof(*slots)) : NULL;

	if (!slots)
		return NULL;
	for (size_t i = 0; i < n; i++) {
		const struct parsed_key *key = &list->keys[i];
		uint64_t ino = (fnv1a64(key->id, key->id_len) >> 5) << 3;

		slots[i].ino = ino < 16 ? 16 : ino;
		slots[i].index = i;
	}
	qsort(slots, n, sizeof(*slots), compare_slots);
	for (size_t i = 1; i < n; i++)
		if (slots[i].ino <= slots[i - 1].ino)
			slots[i].ino = slots[i - 1].ino + 8;
	return slots;
}

/* The previous version of the key numbered ino and named name, or NULL.
 * Both lists are in inode order and a key keeps its number, so a merge
 * (*j walks prev) finds it; a search covers a number that moved (a hash
 * collision that came or went). */
static const struct snap_key *previous_key(const struct snapshot *prev, size_t *j, uint64_t ino,
					   const char *name)
{
	while (*j < prev->count && prev->keys[*j].dir->ino < ino)
		(*j)++;
	if (*j < prev->count && prev->keys[*j].dir->ino == ino &&
	    strcmp(prev->keys[*j].dir->name, name) == 0)
		return &prev->keys[*j];
	return snapshot_find(prev, name);
}

/* The seed numbered ino, or NULL; *s walks seeds, sorted by ino. */
static const struct snapshot_seed *seed_of(const struct snapshot_seed *seeds, size_t nseeds,
					   size_t *s, uint64_t ino)
{
	while (*s < nseeds && seeds[*s].ino < ino)
		(*s)++;
	return *s < nseeds && seeds[*s].ino == ino ? &seeds[*s] : NULL;
}

/* The tree's own times, once its keys are in: kept is how many of them
 * prev had. */
static void stamp_tree(struct snapshot *snap, const struct snapshot *prev, size_t kept,
		       struct timespec now)
{
	if (prev && (kept != prev->count || kept != snap->count))
		snap->members_changed = now;
	else if (prev)
		snap->members_changed = prev->members_changed;
	if (time_after(snap->members_changed, snap->mtime))
		snap->mtime = snap->members_changed;
}

/* snapshot_build, or with seeds (sorted by ino) and no prev, a kept list's. */
static struct snapshot *build(const struct snapshot *prev, const struct keylist *list,
			      const struct snapshot_seed *seeds, size_t nseeds, struct timespec now)
{
	size_t n = list->count, kept = 0, s = 0, j = 0;
	struct ino_slot *slots = NULL;
	struct snapshot *snap = calloc(1, sizeof(*snap));

	if (!snap)
		return NULL;
	atomic_init(&snap->refs, 1);
	snap->generation = prev ? prev->generation + 1 : 1;
	if (n) {
		slots = number_keys(list);
		snap->keys = calloc(n, sizeof(*snap->keys));
		snap->by_name = malloc(n * sizeof(*snap->by_name));
		if (!slots || !snap->keys || !snap->by_name)
			goto fail;
	}
	for (size_t i = 0; i < n; i++) {
		const struct parsed_key *key = &list->keys[slots[i].index];
		const struct snap_key *old =
			prev ? previous_key(prev, &j, slots[i].ino, key->name) : NULL;
		const struct snapshot_seed *seed = seed_of(seeds, nseeds, &s, slots[i].ino);

		snap->count = i + 1; /* what was built is freed on failure */
		if (build_key(&snap->keys[i], key, slots[i].ino, old, seed, now) < 0)
			goto fail;
		snap->by_name[i].index = (uint32_t)i;
		snap->by_name[i].prefix = name_prefix(key->name);
		if (old)
			kept++;
		if (time_after(key->created, snap->mtime))
			snap->mtime = key->created;
	}
	if (n)
		qsort_r(snap->by_name, n, sizeof(*snap->by_name), compare_names, snap);
	stamp_tree(snap, prev, kept, now);
	free(slots);
	return snap;

fail:
	free(slots);
	snapshot_unref(snap);
	return NULL;
}

struct snapshot *snapshot_build(const struct snapshot *prev, const struct keylist *list,
				struct timespec now)
{
	return build(prev, list, NULL, 0, now);
}

struct snapshot *snapshot_restore(const struct keylist *list, const struct snapshot_seed *seeds,
				  size_t nseeds, struct timespec members_changed)
{
	struct snapshot *snap = build(NULL, list, seeds, nseeds, members_changed);

	/* As build left it, but members_changed as the kept list says: the
	 * root's mtime rule then carries over a remount too. */
	if (snap) {
		snap->members_changed = members_changed;
		if (time_after(members_changed, snap->mtime))
			snap->mtime = members_changed;
	}
	return snap;
}

struct snapshot *snapshot_without(const struct snapshot *prev, const struct snap_key *gone,
				  struct timespec now)
{
	size_t at = (size_t)(gone - prev->keys), n = prev->count - 1, w = 0;
	struct snapshot *snap = calloc(1, sizeof(*snap));

	if (!snap)
		return NULL;
	atomic_init(&snap->refs, 1);
	snap->generation = prev->generation + 1;
	if (n) {
		snap->keys = malloc(n * sizeof(*snap->keys));
		snap->by_name = malloc(n * sizeof(*snap->by_name));
		if (!snap->keys || !snap->by_name) {
			snapshot_unref(snap);
			return NULL;
		}
	}
	/* Every other key's nodes are shared, in the same order. */
	for (size_t i = 0; i < prev->count; i++) {
		if (i == at)
			continue;
		snap->keys[w] = prev->keys[i];
		node_ref(snap->keys[w].dir);
		for (int f = 0; f < FIELD_COUNT; f++)
			node_ref(snap->keys[w].file[f]);
		if (time_after(snap->keys[w].dir->mtime, snap->mtime))
			snap->mtime = snap->keys[w].dir->mtime;
		snap->count = ++w;
	}
	/* The name index minus one entry stays sorted; later keys moved down. */
	w = 0;
	for (size_t i = 0; i < prev->count; i++) {
		struct name_ref ref = prev->by_name[i];

		if (ref.index == at)
			continue;
		if (ref.index > at)
			ref.index--;
		snap->by_name[w++] = ref;
	}
	snap->members_changed = now;
	if (time_after(now, snap->mtime))
		snap->mtime = now;
	return snap;
}

struct snapshot *snapshot_ref(struct snapshot *snap)
{
	atomic_fetch_add_explicit(&snap->refs, 1, memory_order_relaxed);
	return snap;
}

void snapshot_unref(struct snapshot *snap)
{
	if (!snap || atomic_fetch_sub_explicit(&snap->refs, 1, memory_order_acq_rel) != 1)
		return;
	for (size_t i = 0; i < snap->count; i++) {
		node_unref(snap->keys[i].dir);
		for (int f = 0; f < FIELD_COUNT; f++)
			node_unref(snap->keys[i].file[f]);
	}
	free(snap->keys);
	free(snap->by_name);
	free(snap);
}

const struct snap_key *snapshot_find(const struct snapshot *snap, const char *name)
{
	size_t lo = 0, hi = snap->count;
	uint64_t prefix = name_prefix(name);

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		int cmp = compare_refs(snap, &snap->by_name[mid], prefix, name);

		if (cmp == 0)
			return &snap->keys[snap->by_name[mid].index];
		if (cmp > 0)
			hi = mid;
		else
			lo = mid + 1;
	}
	return NULL;
}

size_t snapshot_seek(const struct snapshot *snap, uint64_t after)
{
	size_t lo = 0, hi = snap->count;

	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (snap->keys[mid].dir->ino <= after)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo;
}

int field_by_name(const char *name)
{
	for (int f = 0; f < FIELD_COUNT; f++)
		if (strcmp(name, key_field_names[f]) == 0)
			return f;
	return -1;
}
