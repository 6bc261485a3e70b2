/* snapshot: an immutable, reference-counted view of one key list, built from
 * a keylist and the previous snapshot.  Pure: no FUSE, no HTTP, no clock. */
#ifndef OMIKEYFS_SNAPSHOT_H
#define OMIKEYFS_SNAPSHOT_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "keylist.h"

enum node_type { NODE_DIR = 1, NODE_FILE = 2 };

/*
 * A key directory or one of its files.  Everything but refs and kernel is
 * immutable once built: when a file's bytes or times change, the new
 * snapshot holds a new node, so a node's size and bytes always agree and an
 * open file keeps reading the version it opened.  A node whose attributes
 * are unchanged is shared with the previous snapshot.
 */
struct node {
	atomic_long refs; /* snapshots holding it, plus holders outside */
	/*
	 * fs's, under fs's lock; snapshot only zeroes it.  The kernel's lookup
	 * count of this node and its place in the list of nodes the kernel
	 * holds (dropped at unmount).  It lives here because the kernel's id
	 * of a node is the node's address: kept in fs, it would need a table
	 * from address to count, one more lookup under the lock on every
	 * LOOKUP, FORGET and readdirplus entry and one allocation per node
	 * the kernel holds (600 000 at 100 000 keys), to save 24 bytes here.
	 */
	struct {
		uint64_t refs;
		struct node *prev, *next;
	} kernel;
	uint64_t ino; /* st_ino: stable for the same key and field */
	struct timespec mtime;
	size_t size; /* file: bytes; directory: FIELD_COUNT */
	enum node_type type;
	enum key_field field; /* files only */
	const char *name;     /* directory: escaped key name; file: field name */
	const char *id;       /* directory: raw id (may hold NULs) */
	size_t id_len;
	bool legacy; /* directory: the API sent null scopes */
	char data[]; /* file: its bytes; directory: name and id */
};

struct snap_key {
	struct node *dir;
	struct node *file[FIELD_COUNT];
};

/* The name index: the first 8 bytes of a name, big-endian, settle most
 * comparisons without leaving the array. */
struct name_ref {
	uint64_t prefix;
	uint32_t index; /* into keys */
};

struct snapshot {
	atomic_long refs;
	uint64_t generation; /* 1 for the first snapshot, +1 per build */
	size_t count;
	struct snap_key *keys;           /* sorted by dir->ino: the readdir order */
	struct name_ref *by_name;        /* sorted by name */
	struct timespec mtime;           /* the root's mtime */
	struct timespec members_changed; /* when a key last appeared or vanished */
};

/* Inode numbers: the root is 1; a key directory's is a multiple of 8, >= 16;
 * its files are the directory's + 1 + field. */
#define SNAPSHOT_ROOT_INO 1

/*
 * Build the next snapshot.  prev may be NULL (first fetch).  now is the time
 * a changed file or a changed set of keys is stamped with.  Nodes whose
 * content and times equal prev's are shared.  Returns NULL only when out of
 * memory.
 */
struct snapshot *snapshot_build(const struct snapshot *prev, const struct keylist *list,
				struct timespec now);

/* What a kept list (persist.h) remembers of one key: when omikeyfs saw the
 * current bytes of its name, key_prefix and scopes appear (the entries for
 * created_at and last_used_at are not used: those follow their own values). */
struct snapshot_seed {
	uint64_t ino; /* the key directory's */
	struct timespec mtime[FIELD_COUNT];
};

/*
 * The snapshot a kept list stood for, to build the first fetch's on: as
 * snapshot_build with no prev, except that a key with a seed (seeds sorted
 * by ino, one per key at most) takes its files' times from it, and the root
 * members_changed.  NULL only when out of memory.
 */
struct snapshot *snapshot_restore(const struct keylist *list, const struct snapshot_seed *seeds,
				  size_t nseeds, struct timespec members_changed);

/*
 * prev without the key gone (one of prev's), as if a refresh had found it
 * gone at now: every other node shared, the root's times as snapshot_build
 * would set them.  NULL only when out of memory.
 */
struct snapshot *snapshot_without(const struct snapshot *prev, const struct snap_key *gone,
				  struct timespec now);

struct snapshot *snapshot_ref(struct snapshot *snap);
void snapshot_unref(struct snapshot *snap);
void node_ref(struct node *node);
void node_unref(struct node *node);

/* The key directory named name, or NULL.  O(log n). */
const struct snap_key *snapshot_find(const struct snapshot *snap, const char *name);

/* Index of the first key whose dir->ino is greater than after (readdir
 * resumes there), or snap->count.  O(log n). */
size_t snapshot_seek(const struct snapshot *snap, uint64_t after);

/* The field named name, or -1. */
int field_by_name(const char *name);

#endif
