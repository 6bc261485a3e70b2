/*
 * keptfile: the file a kept list is written as, and read back from.
 *
 * The body the API sent (read back through the same parser as a response),
 * when it was fetched, and for each key whose name, key_prefix or scopes
 * changed while omikeyfs watched, when it saw the current bytes appear.
 * Text lines around the body, a format number first and a checksum last:
 *
 *   omikeyfs kept list 1
 *   url http://127.0.0.1:8000/v1/dev/keys
 *   credential token-sha256:3b1f...
 *   fetched_at 1767225600.123456789
 *   members_changed 1767225600.123456789
 *   body 1234
 *   [{"id": ...}]
 *   seeds 1
 *   2937405762016 1767225600.123456789 1736937000.000000000 1736937000.000000000
 *   check 0123456789abcdef
 *
 * A seed line gives a key directory's inode number and the times of name,
 * key_prefix and scopes; keys without one never changed (created_at).  The
 * checksum (64-bit FNV-1a of everything before it) catches damage and
 * truncation before anything else is read.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "errmsg.h"
#include "fnv1a.h"
#include "keptfile.h"

#define MAGIC "omikeyfs kept list "
/* "check " + 16 hex digits + "\n" */
#define CHECK_LEN 23
/* Every line but url, credential, the body and the seeds, at their longest
 * (20-digit numbers, 19-digit seconds), with room to spare. */
#define HEADER_MAX 512
/* A seed line at its longest: an inode number and three times. */
#define SEED_LINE_MAX (20 + 3 * (1 + 19 + 1 + 9) + 1)
/* The shortest key a body can hold, {"id":""}: no more seeds than keys. */
#define KEY_MIN_LEN 9

/* The fields of a seed line, after the inode number. */
static const enum key_field seeded[] = { FIELD_NAME, FIELD_KEY_PREFIX, FIELD_SCOPES };
#define NSEEDED (sizeof(seeded) / sizeof(seeded[0]))

static bool needs_seed(const struct snap_key *key)
{
	for (size_t i = 0; i < NSEEDED; i++)
		if (!timespec_equal(key->file[seeded[i]]->mtime, key->dir->mtime))
			return true;
	return false;
}

char *keptfile_format(const struct snapshot *snap, const char *body, size_t body_len,
		      const char *url, const char *credential, struct timespec fetched_at,
		      size_t *len)
{
	char *buf = NULL;
	size_t size = 0, nseeds = 0;
	FILE *f = open_memstream(&buf, &size);
	bool ok;

	if (!f)
		return NULL;
	for (size_t i = 0; i < snap->count; i++)
		nseeds += needs_seed(&snap->keys[i]);
	fprintf(f, MAGIC "%d\nurl %s\ncredential %s\n", KEPTFILE_VERSION, url, credential);
	fprintf(f, "fetched_at %lld.%09ld\nmembers_changed %lld.%09ld\nbody %zu\n",
		(long long)fetched_at.tv_sec, fetched_at.tv_nsec,
		(long long)snap->members_changed.tv_sec, snap->members_changed.tv_nsec, body_len);
	fwrite(body, 1, body_len, f);
	fprintf(f, "\nseeds %zu\n", nseeds);
	for (size_t i = 0; i < snap->count; i++) {
		const struct snap_key *key = &snap->keys[i];

		if (!needs_seed(key))
			continue;
		fprintf(f, "%" PRIu64, key->dir->ino);
		for (size_t s = 0; s < NSEEDED; s++) {
			struct timespec t = key->file[seeded[s]]->mtime;

			fprintf(f, " %lld.%09ld", (long long)t.tv_sec, t.tv_nsec);
		}
		fputc('\n', f);
	}
	/* fflush sets buf and size to what was written so far. */
	ok = fflush(f) == 0 && !ferror(f);
	if (ok)
		fprintf(f, "check %016" PRIx64 "\n", fnv1a64(buf, size));
	ok = !ferror(f) && ok;
	if (fclose(f) != 0 || !ok) {
		free(buf);
		return NULL;
	}
	*len = size;
	return buf;
}

size_t keptfile_max_len(size_t max_body, size_t url_len, size_t credential_len)
{
	size_t keys = max_body / KEY_MIN_LEN;

	if (keys > KEYLIST_MAX_ENTRIES)
		keys = KEYLIST_MAX_ENTRIES;
	return HEADER_MAX + url_len + credential_len + max_body + keys * SEED_LINE_MAX;
}

/* A cursor over the file; every reader fails once the input does not fit. */
struct in {
	const char *p, *end;
};

/* The rest of the line after word and a space, up to (not with) the newline. */
static bool in_line(struct in *in, const char *word, const char **text, size_t *len)
{
	size_t wl = strlen(word);
	const char *nl;

	if ((size_t)(in->end - in->p) <= wl || memcmp(in->p, word, wl) != 0 || in->p[wl] != ' ')
		return false;
	in->p += wl + 1;
	if (!(nl = memchr(in->p, '\n', (size_t)(in->end - in->p))))
		return false;
	*text = in->p;
	*len = (size_t)(nl - in->p);
	in->p = nl + 1;
	return true;
}

/* Decimal digits only, no sign, no overflow, up to max. */
static bool parse_u64(const char **s, const char *end, uint64_t max, uint64_t *out)
{
	const char *p = *s;
	uint64_t v = 0;

	if (p == end || *p < '0' || *p > '9')
		return false;
	for (; p < end && *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (d > max || v > (max - d) / 10)
			return false;
		v = v * 10 + d;
	}
	*s = p;
	*out = v;
	return true;
}

/* "SECONDS.NNNNNNNNN", seconds not negative. */
static bool parse_time(const char **s, const char *end, struct timespec *out)
{
	const char *p = *s;
	uint64_t sec, nsec;

	if (!parse_u64(&p, end, INT64_MAX, &sec) || p == end || *p++ != '.' || end - p < 9)
		return false;
	{
		const char *frac = p;

		if (!parse_u64(&p, frac + 9, 999999999, &nsec) || p != frac + 9)
			return false;
	}
	out->tv_sec = (time_t)sec;
	out->tv_nsec = (long)nsec;
	*s = p;
	return true;
}

static bool in_time(struct in *in, const char *word, struct timespec *out)
{
	const char *text;
	size_t len;

	return in_line(in, word, &text, &len) && parse_time(&text, text + len, out) && len &&
	       text == in->p - 1;
}

static bool in_count(struct in *in, const char *word, uint64_t max, uint64_t *out)
{
	const char *text;
	size_t len;

	return in_line(in, word, &text, &len) && parse_u64(&text, text + len, max, out) &&
	       text == in->p - 1;
}

static bool line_is(const char *text, size_t len, const char *want)
{
	return len == strlen(want) && memcmp(text, want, len) == 0;
}

static int bad(char *err, size_t errlen, int rc, const char *why)
{
	errmsg_set(err, errlen, "%s", why);
	return rc;
}

static bool parse_seeds(struct in *in, struct kept_list *out)
{
	uint64_t n, prev_ino = 0;

	/* A seed line takes more than 16 bytes, which bounds the allocation. */
	if (!in_count(in, "seeds", (uint64_t)(in->end - in->p) / 16, &n))
		return false;
	if (n && !(out->seeds = calloc(n, sizeof(*out->seeds))))
		return false;
	for (uint64_t i = 0; i < n; i++) {
		struct snapshot_seed *seed = &out->seeds[i];
		const char *nl = memchr(in->p, '\n', (size_t)(in->end - in->p));
		const char *p = in->p;

		if (!nl || !parse_u64(&p, nl, UINT64_MAX, &seed->ino) ||
		    (i && seed->ino <= prev_ino))
			return false;
		for (size_t f = 0; f < NSEEDED; f++)
			if (p == nl || *p++ != ' ' || !parse_time(&p, nl, &seed->mtime[seeded[f]]))
				return false;
		if (p != nl)
			return false;
		prev_ino = seed->ino;
		out->nseeds++;
		in->p = nl + 1;
	}
	return true;
}

int keptfile_parse(const char *buf, size_t len, const char *url, const char *credential,
		   size_t max_body, struct kept_list *out, char *err, size_t errlen)
{
	struct in in = { buf, buf + len };
	const char *text;
	size_t tlen;
	uint64_t version, body_len, check;
	char kerr[256];
	int rc;

	memset(out, 0, sizeof(*out));
	if (len < strlen(MAGIC) || memcmp(buf, MAGIC, strlen(MAGIC)) != 0)
		return bad(err, errlen, -EBADMSG, "not a kept list");
	in.p += strlen(MAGIC);
	{
		const char *nl = memchr(in.p, '\n', (size_t)(in.end - in.p));

		if (!nl || !parse_u64(&in.p, nl, UINT32_MAX, &version) || in.p != nl)
			return bad(err, errlen, -EBADMSG, "damaged format line");
		in.p = nl + 1;
	}
	if (version != KEPTFILE_VERSION) {
		errmsg_set(err, errlen, "format %" PRIu64 ", this omikeyfs reads %d", version,
			   KEPTFILE_VERSION);
		return -EPROTONOSUPPORT;
	}
	/* The checksum first: nothing else is read from a damaged file. */
	{
		const char *tail = len > CHECK_LEN ? buf + len - CHECK_LEN : buf, *p = tail + 6;
		uint64_t want = 0;

		if (tail <= in.p || tail[-1] != '\n' || memcmp(tail, "check ", 6) != 0 ||
		    buf[len - 1] != '\n')
			return bad(err, errlen, -EBADMSG, "truncated (no checksum)");
		for (; p < buf + len - 1; p++) {
			int d = *p >= '0' && *p <= '9'   ? *p - '0'
				: *p >= 'a' && *p <= 'f' ? *p - 'a' + 10
							 : -1;

			if (d < 0)
				return bad(err, errlen, -EBADMSG, "damaged checksum");
			want = want << 4 | (uint64_t)d;
		}
		check = fnv1a64(buf, (size_t)(tail - buf));
		if (check != want)
			return bad(err, errlen, -EBADMSG, "damaged (checksum mismatch)");
		in.end = tail;
	}
	if (!in_line(&in, "url", &text, &tlen))
		return bad(err, errlen, -EBADMSG, "damaged url line");
	if (!line_is(text, tlen, url))
		return bad(err, errlen, -EXDEV, "kept for another URL");
	if (!in_line(&in, "credential", &text, &tlen))
		return bad(err, errlen, -EBADMSG, "damaged credential line");
	if (!line_is(text, tlen, credential))
		return bad(err, errlen, -EXDEV, "kept for another credential");
	if (!in_time(&in, "fetched_at", &out->fetched_at) ||
	    !in_time(&in, "members_changed", &out->members_changed) ||
	    !in_count(&in, "body", (uint64_t)(in.end - in.p), &body_len) ||
	    (uint64_t)(in.end - in.p) < body_len + 1 || in.p[body_len] != '\n')
		return bad(err, errlen, -EBADMSG, "damaged header");
	if (body_len > max_body)
		return bad(err, errlen, -EFBIG, "its body is larger than max_size");
	out->body = in.p;
	out->body_len = (size_t)body_len;
	in.p += body_len + 1;
	if (!parse_seeds(&in, out) || in.p != in.end) {
		keptfile_free(out);
		return bad(err, errlen, -EBADMSG, "damaged seeds");
	}
	/* As the cache would take it from the API, warnings aside: they were
	 * logged when it was fetched. */
	rc = keylist_parse(out->body, out->body_len, &out->list, NULL, NULL, kerr, sizeof(kerr));
	if (rc < 0) {
		keptfile_free(out);
		errmsg_set(err, errlen, "its body does not parse: %s", kerr);
		return -EBADMSG;
	}
	if (out->list.count == 0 && out->list.skipped > 0) {
		keptfile_free(out);
		return bad(err, errlen, -EBADMSG, "its body holds no usable key");
	}
	return 0;
}

void keptfile_free(struct kept_list *kept)
{
	keylist_free(&kept->list);
	free(kept->seeds);
	memset(kept, 0, sizeof(*kept));
}
