/*
 * persist: the last good list, kept across mounts.
 *
 * One file per API URL and credential, named by a hash of both, holding the
 * body the API sent (read back through the same parser as a response), when
 * it was fetched, and for each key whose name, key_prefix or scopes changed
 * while omikeyfs watched, when it saw the current bytes appear.  Text lines
 * around the body, a format number first and a checksum last:
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
 * file is replaced atomically (a temporary file, fsync, rename), so a crash
 * leaves the old list or the new one.
 */
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <unistd.h>

#include "keyname.h"
#include "log.h"
#include "persist.h"
#include "sha256.h"

#define MAGIC "omikeyfs kept list "
#define SALT_NAME "salt"
#define SALT_LEN 32
/* "check " + 16 hex digits + "\n" */
#define CHECK_LEN 23
/* Larger than any list max_size lets through, with its seeds. */
#define KEPT_MAX ((size_t)4 << 30)

/* The fields of a seed line, after the inode number. */
static const enum key_field seeded[] = { FIELD_NAME, FIELD_KEY_PREFIX, FIELD_SCOPES };
#define NSEEDED (sizeof(seeded) / sizeof(seeded[0]))

struct pending {
	struct snapshot *snap;
	char *body;
	size_t len;
	struct timespec fetched_at;
};

struct persist {
	int dirfd;
	char *dir;
	char *url;
	char *credential;   /* as stored: never a token */
	char name[64];      /* the kept list's file name in dir */
	pthread_t thread;
	bool running;
	bool stopping;
	pthread_mutex_t lock;
	pthread_cond_t wake;
	struct pending pending; /* the newest list not written yet */
};

static double now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static uint64_t fnv1a(const void *data, size_t len)
{
	return keyname_hash(data, len);
}

/* ---- the format -------------------------------------------------------- */

struct out {
	char *buf;
	size_t len, cap;
	bool failed;
};

static void out_grow(struct out *o, size_t more)
{
	char *buf;
	size_t cap = o->cap ? o->cap : 4096;

	if (o->failed || o->len + more <= o->cap)
		return;
	while (cap < o->len + more)
		cap *= 2;
	if (!(buf = realloc(o->buf, cap))) {
		o->failed = true;
		return;
	}
	o->buf = buf;
	o->cap = cap;
}

static void out_bytes(struct out *o, const void *data, size_t len)
{
	out_grow(o, len);
	if (o->failed)
		return;
	memcpy(o->buf + o->len, data, len);
	o->len += len;
}

__attribute__((format(printf, 2, 3)))
static void out_printf(struct out *o, const char *fmt, ...)
{
	va_list ap;
	char line[512];
	int n;

	va_start(ap, fmt);
	n = vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= sizeof(line))
		o->failed = true;
	else
		out_bytes(o, line, (size_t)n);
}

static bool same_time(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}

static bool needs_seed(const struct snap_key *key)
{
	for (size_t i = 0; i < NSEEDED; i++)
		if (!same_time(key->file[seeded[i]]->mtime, key->dir->mtime))
			return true;
	return false;
}

char *persist_format(const struct snapshot *snap, const char *body, size_t body_len,
		     const char *url, const char *credential, struct timespec fetched_at,
		     size_t *len)
{
	struct out o = { 0 };
	size_t nseeds = 0;

	for (size_t i = 0; i < snap->count; i++)
		nseeds += needs_seed(&snap->keys[i]);
	out_grow(&o, body_len + 512 + nseeds * 96);
	out_printf(&o, MAGIC "%d\nurl %s\ncredential %s\n", PERSIST_VERSION, url, credential);
	out_printf(&o, "fetched_at %lld.%09ld\nmembers_changed %lld.%09ld\nbody %zu\n",
		   (long long)fetched_at.tv_sec, fetched_at.tv_nsec,
		   (long long)snap->members_changed.tv_sec, snap->members_changed.tv_nsec,
		   body_len);
	out_bytes(&o, body, body_len);
	out_printf(&o, "\nseeds %zu\n", nseeds);
	for (size_t i = 0; i < snap->count; i++) {
		const struct snap_key *key = &snap->keys[i];

		if (!needs_seed(key))
			continue;
		out_printf(&o, "%" PRIu64, key->dir->ino);
		for (size_t f = 0; f < NSEEDED; f++) {
			struct timespec t = key->file[seeded[f]]->mtime;

			out_printf(&o, " %lld.%09ld", (long long)t.tv_sec, t.tv_nsec);
		}
		out_bytes(&o, "\n", 1);
	}
	if (!o.failed)
		out_printf(&o, "check %016" PRIx64 "\n", fnv1a(o.buf, o.len));
	if (o.failed) {
		free(o.buf);
		return NULL;
	}
	*len = o.len;
	return o.buf;
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

	if (!parse_u64(&p, end, INT64_MAX, &sec) || p == end || *p++ != '.' ||
	    end - p < 9)
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

	return in_line(in, word, &text, &len) && parse_time(&text, text + len, out) &&
	       len && text == in->p - 1;
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
	snprintf(err, errlen, "%s", why);
	return rc;
}

static bool parse_seeds(struct in *in, struct persist_kept *out)
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

		if (!nl || !parse_u64(&p, nl, UINT64_MAX, &seed->ino) || (i && seed->ino <= prev_ino))
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

int persist_parse(const char *buf, size_t len, const char *url, const char *credential,
		  struct persist_kept *out, char *err, size_t errlen)
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
	if (version != PERSIST_VERSION) {
		snprintf(err, errlen, "format %" PRIu64 ", this omikeyfs reads %d", version,
			 PERSIST_VERSION);
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
			int d = *p >= '0' && *p <= '9' ? *p - '0'
				: *p >= 'a' && *p <= 'f' ? *p - 'a' + 10 : -1;

			if (d < 0)
				return bad(err, errlen, -EBADMSG, "damaged checksum");
			want = want << 4 | (uint64_t)d;
		}
		check = fnv1a(buf, (size_t)(tail - buf));
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
	out->body = in.p;
	out->body_len = (size_t)body_len;
	in.p += body_len + 1;
	if (!parse_seeds(&in, out) || in.p != in.end) {
		persist_kept_free(out);
		return bad(err, errlen, -EBADMSG, "damaged seeds");
	}
	/* As the cache would take it from the API, warnings aside: they were
	 * logged when it was fetched. */
	rc = keylist_parse(out->body, out->body_len, &out->list, NULL, NULL, kerr, sizeof(kerr));
	if (rc < 0) {
		persist_kept_free(out);
		snprintf(err, errlen, "its body does not parse: %s", kerr);
		return -EBADMSG;
	}
	if (out->list.count == 0 && out->list.skipped > 0) {
		persist_kept_free(out);
		return bad(err, errlen, -EBADMSG, "its body holds no usable key");
	}
	return 0;
}

void persist_kept_free(struct persist_kept *kept)
{
	keylist_free(&kept->list);
	free(kept->seeds);
	memset(kept, 0, sizeof(*kept));
}

/* ---- the directory ----------------------------------------------------- */

/* Refuses what another user could read or replace: the list names keys.
 * -EACCES when group or others may, -ENOTDIR (or -EISDIR) for the wrong
 * kind of file, -EPERM when another user owns it. */
static int check_private(const struct stat *st, const char *what, const char *path, bool dir,
			 char *err, size_t errlen)
{
	if (dir ? !S_ISDIR(st->st_mode) : !S_ISREG(st->st_mode)) {
		snprintf(err, errlen, "%s %s: not a %s", what, path, dir ? "directory" : "file");
		return dir ? -ENOTDIR : -EISDIR;
	}
	if (st->st_uid != geteuid()) {
		snprintf(err, errlen, "%s %s: owned by uid %u, not by the mounting user", what,
			 path, (unsigned)st->st_uid);
		return -EPERM;
	}
	if (st->st_mode & 077) {
		snprintf(err, errlen, "%s %s: group or others may read or write it (mode %03o); "
			 "chmod %s it", what, path, (unsigned)(st->st_mode & 0777),
			 dir ? "700" : "600");
		return -EACCES;
	}
	return 0;
}

/* mkdir -p, each missing directory 0700. */
static int make_dirs(const char *path)
{
	char *copy = strdup(path);
	int rc = 0;

	if (!copy)
		return -1;
	for (char *p = copy + 1; ; p++) {
		if (*p == '/' || *p == '\0') {
			char c = *p;

			*p = '\0';
			if (mkdir(copy, 0700) < 0 && errno != EEXIST) {
				rc = -1;
				break;
			}
			*p = c;
			if (!c)
				break;
		}
	}
	free(copy);
	return rc;
}

/* 0, or -errno as check_private (-EACCES: others may use it, and only
 * then *unsafe), or the -errno of making or opening it. */
static int open_dir(struct persist *p, bool *unsafe, char *err, size_t errlen)
{
	int rc;

	struct stat st;

	p->dirfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0 && errno == ENOENT && make_dirs(p->dir) == 0)
		p->dirfd = open(p->dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (p->dirfd < 0 || fstat(p->dirfd, &st) < 0) {
		rc = -errno;
		snprintf(err, errlen, "cache_dir %s: %s", p->dir, strerror(errno));
		return rc;
	}
	rc = check_private(&st, "cache_dir", p->dir, true, err, errlen);
	*unsafe = rc == -EACCES;
	return rc;
}

/* A file in the directory, checked, or -1: with errno ENOENT when there is
 * none (err empty), otherwise with err set. */
static int open_private(struct persist *p, const char *name, struct stat *st, char *err,
			size_t errlen)
{
	int fd = openat(p->dirfd, name, O_RDONLY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK);
	char path[PATH_MAX];

	err[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", p->dir, name);
	if (fd < 0) {
		if (errno != ENOENT)
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		return -1;
	}
	if (fstat(fd, st) < 0 || check_private(st, "cache file", path, false, err, errlen) < 0) {
		if (!err[0])
			snprintf(err, errlen, "%s: %s", path, strerror(errno));
		close(fd);
		errno = EPERM;
		return -1;
	}
	return fd;
}

static int write_all(int fd, const void *data, size_t len)
{
	const char *p = data;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return -1;
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

/* Writes data as name: a temporary file, fsync, then link (only when name
 * does not exist yet: exclusive) or rename, and fsync of the directory. */
static int write_file(struct persist *p, const char *name, const void *data, size_t len,
		      bool exclusive)
{
	char tmp[128];
	int fd, rc = -1, saved;

	snprintf(tmp, sizeof(tmp), ".%s.%ld.tmp", name, (long)getpid());
	unlinkat(p->dirfd, tmp, 0); /* left by a crash of this pid's namesake */
	fd = openat(p->dirfd, tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0)
		return -1;
	if (write_all(fd, data, len) == 0 && fsync(fd) == 0 && close(fd) == 0) {
		fd = -1;
		rc = exclusive ? linkat(p->dirfd, tmp, p->dirfd, name, 0)
			       : renameat(p->dirfd, tmp, p->dirfd, name);
	}
	saved = errno;
	if (fd >= 0)
		close(fd);
	if (rc < 0 || exclusive)
		unlinkat(p->dirfd, tmp, 0);
	if (rc == 0)
		fsync(p->dirfd);
	errno = saved;
	return rc;
}

static int read_fd(int fd, size_t size, char **out)
{
	char *buf = malloc(size ? size : 1);
	size_t got = 0;

	if (!buf)
		return -1;
	while (got < size) {
		ssize_t n = read(fd, buf + got, size - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			break;
		got += (size_t)n;
	}
	if (got != size) {
		free(buf);
		errno = EIO;
		return -1;
	}
	*out = buf;
	return 0;
}

/* The salt of token hashes: SALT_LEN random bytes made once per directory,
 * so the same token names the same file, and the file name says nothing
 * of the token to whoever lacks the salt. */
static int read_salt(struct persist *p, unsigned char salt[SALT_LEN], char *err, size_t errlen)
{
	for (int tries = 0; tries < 3; tries++) {
		struct stat st;
		char *buf;
		int fd = open_private(p, SALT_NAME, &st, err, errlen);

		if (fd >= 0) {
			int rc = st.st_size == SALT_LEN ? read_fd(fd, SALT_LEN, &buf) : -1;

			close(fd);
			if (rc == 0) {
				memcpy(salt, buf, SALT_LEN);
				explicit_bzero(buf, SALT_LEN);
				free(buf);
				return 0;
			}
			/* A damaged salt only orphans the lists it named. */
			log_warn("%s/" SALT_NAME " is damaged; making a new one", p->dir);
			if (getrandom(salt, SALT_LEN, 0) != SALT_LEN ||
			    write_file(p, SALT_NAME, salt, SALT_LEN, false) < 0)
				break;
			return 0;
		}
		if (err[0])
			return -1;
		if (getrandom(salt, SALT_LEN, 0) != SALT_LEN)
			break;
		if (write_file(p, SALT_NAME, salt, SALT_LEN, true) == 0)
			return 0;
		if (errno != EEXIST) /* else another mount made it first: read it */
			break;
	}
	snprintf(err, errlen, "cache_dir %s: cannot make its salt: %s", p->dir, strerror(errno));
	return -1;
}

static void hex(const unsigned char *bytes, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		sprintf(out + 2 * i, "%02x", bytes[i]);
}

static int set_identity(struct persist *p, const char *credential, const char *token,
			char *err, size_t errlen)
{
	unsigned char digest[SHA256_DIGEST_LEN];
	char digest_hex[2 * SHA256_DIGEST_LEN + 1];
	struct sha256 ctx;

	if (credential) {
		if (asprintf(&p->credential, "user:%s", credential) < 0)
			p->credential = NULL;
	} else {
		unsigned char salt[SALT_LEN];

		if (read_salt(p, salt, err, errlen) < 0)
			return -1;
		sha256_init(&ctx);
		sha256_update(&ctx, salt, sizeof(salt));
		sha256_update(&ctx, token ? token : "", token ? strlen(token) : 0);
		sha256_final(&ctx, digest);
		explicit_bzero(salt, sizeof(salt));
		hex(digest, sizeof(digest), digest_hex);
		if (asprintf(&p->credential, "token-sha256:%s", digest_hex) < 0)
			p->credential = NULL;
	}
	if (!p->credential) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	sha256_init(&ctx);
	sha256_update(&ctx, p->url, strlen(p->url));
	sha256_update(&ctx, "\n", 1);
	sha256_update(&ctx, p->credential, strlen(p->credential));
	sha256_final(&ctx, digest);
	memcpy(p->name, "list-", 5);
	hex(digest, 16, p->name + 5);
	return 0;
}

/* The kept list, if any, as the cache's seed.  Only an unsafe file is an
 * error; one that does not parse is logged and left to be replaced. */
static int load_kept(struct persist *p, struct cache *cache, char *err, size_t errlen)
{
	struct persist_kept kept;
	struct snapshot *snap;
	struct stat st;
	char why[256], *buf = NULL;
	double start = now_ms();
	int fd = open_private(p, p->name, &st, err, errlen);

	if (fd < 0)
		return err[0] ? -1 : 0;
	if ((size_t)st.st_size > KEPT_MAX || read_fd(fd, (size_t)st.st_size, &buf) < 0) {
		log_warn("ignoring the kept list %s/%s: %s", p->dir, p->name,
			 (size_t)st.st_size > KEPT_MAX ? "too large" : strerror(errno));
		close(fd);
		return 0;
	}
	close(fd);
	if (persist_parse(buf, (size_t)st.st_size, p->url, p->credential, &kept, why,
			  sizeof(why)) < 0) {
		log_warn("ignoring the kept list %s/%s: %s", p->dir, p->name, why);
		free(buf);
		return 0;
	}
	snap = snapshot_restore(&kept.list, kept.seeds, kept.nseeds, kept.members_changed);
	if (snap) {
		cache_seed(cache, snap, kept.body, kept.body_len, kept.fetched_at);
		log_debug("read the kept list (%zu keys, %lld bytes) in %.1f ms", snap->count,
			  (long long)st.st_size, now_ms() - start);
	}
	persist_kept_free(&kept);
	free(buf);
	return 0;
}

/* ---- writing ------------------------------------------------------------ */

static void pending_clear(struct pending *pd)
{
	snapshot_unref(pd->snap);
	free(pd->body);
	memset(pd, 0, sizeof(*pd));
}

static void write_kept(struct persist *p, const struct pending *pd)
{
	double start = now_ms();
	size_t len;
	char *buf = persist_format(pd->snap, pd->body, pd->len, p->url, p->credential,
				   pd->fetched_at, &len);

	if (!buf) {
		log_warn("cannot keep the key list: out of memory");
		return;
	}
	if (write_file(p, p->name, buf, len, false) < 0)
		log_warn("cannot keep the key list in %s: %s", p->dir, strerror(errno));
	else
		log_debug("kept the key list (%zu keys, %zu bytes) in %.1f ms", pd->snap->count,
			  len, now_ms() - start);
	free(buf);
}

/* cache_on_accepted: only the newest list matters, so it replaces any
 * that is still waiting. */
static void persist_accepted(void *ctx, struct snapshot *snap, char *body, size_t len,
			     struct timespec fetched_at)
{
	struct persist *p = ctx;

	pthread_mutex_lock(&p->lock);
	pending_clear(&p->pending);
	p->pending = (struct pending){ snapshot_ref(snap), body, len, fetched_at };
	pthread_cond_signal(&p->wake);
	pthread_mutex_unlock(&p->lock);
}

static void *persist_main(void *arg)
{
	struct persist *p = arg;

	pthread_mutex_lock(&p->lock);
	for (;;) {
		struct pending pd;

		while (!p->pending.snap && !p->stopping)
			pthread_cond_wait(&p->wake, &p->lock);
		if (!p->pending.snap)
			break;
		pd = p->pending;
		memset(&p->pending, 0, sizeof(p->pending));
		pthread_mutex_unlock(&p->lock);
		write_kept(p, &pd);
		pending_clear(&pd);
		pthread_mutex_lock(&p->lock);
	}
	pthread_mutex_unlock(&p->lock);
	return NULL;
}

/* ---- the interface ------------------------------------------------------ */

static bool one_line(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x20 || *s == 0x7f)
			return false;
	return true;
}

struct persist *persist_open(const char *dir, bool fallback, const char *url,
			     const char *credential, const char *token, struct cache *cache,
			     char *err, size_t errlen)
{
	struct persist *p = calloc(1, sizeof(*p));
	bool unsafe = false;
	int rc;

	if (!p) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	p->dirfd = -1;
	pthread_mutex_init(&p->lock, NULL);
	pthread_cond_init(&p->wake, NULL);
	if (!(p->dir = strdup(dir)) || !(p->url = strdup(url))) {
		snprintf(err, errlen, "out of memory");
		goto fail;
	}
	if (!one_line(url) || (credential && (!*credential || !one_line(credential)))) {
		snprintf(err, errlen, "cannot keep the list: the URL or the user id holds "
			 "control characters");
		goto fail;
	}
	rc = open_dir(p, &unsafe, err, errlen);
	/* A default the user never chose, that cannot be made or is not
	 * theirs (sudo keeps HOME), is no reason not to mount; one that
	 * others may read is. */
	if (rc < 0 && !unsafe && fallback) {
		log_warn("%s; keeping no list (set -o cache_dir= or no_cache)", err);
		err[0] = '\0';
		goto fail;
	}
	if (rc < 0 || set_identity(p, credential, token, err, errlen) < 0 ||
	    load_kept(p, cache, err, errlen) < 0)
		goto fail;
	cache_on_accepted(cache, persist_accepted, p);
	return p;
fail:
	persist_free(p);
	return NULL;
}

int persist_start(struct persist *p)
{
	int rc = pthread_create(&p->thread, NULL, persist_main, p);

	if (rc)
		return -rc;
	p->running = true;
	return 0;
}

void persist_free(struct persist *p)
{
	if (!p)
		return;
	if (p->running) {
		pthread_mutex_lock(&p->lock);
		p->stopping = true;
		pthread_cond_signal(&p->wake);
		pthread_mutex_unlock(&p->lock);
		pthread_join(p->thread, NULL);
	} else if (p->pending.snap) {
		write_kept(p, &p->pending); /* the thread never ran */
	}
	pending_clear(&p->pending);
	if (p->dirfd >= 0)
		close(p->dirfd);
	pthread_cond_destroy(&p->wake);
	pthread_mutex_destroy(&p->lock);
	free(p->dir);
	free(p->url);
	free(p->credential);
	free(p);
}
