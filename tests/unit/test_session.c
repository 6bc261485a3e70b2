/* Unit test of session: strict parsing, the file checks, atomic saving. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "session.h"
#include "test.h"

#define LIT(s) (s), (sizeof(s) - 1)

#define GOOD                                                                                       \
	"{\"version\": 1, \"api_url\": \"https://api.omi.me\", "                                   \
	"\"firebase_api_key\": \"AIzaKEY\", \"user_id\": \"uid-1\", "                              \
	"\"refresh_token\": \"AMf-vBx_refresh\", \"created\": 1767225600}"

#define WITH(member)                                                                               \
	"{\"version\": 1, \"api_url\": \"https://api.omi.me\", "                                   \
	"\"firebase_api_key\": \"k\", \"user_id\": \"u\", " member "}"

static char tmpdir[64];

static void write_file(const char *path, const char *data, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);

	test_assert(fd >= 0);
	test_assert(fchmod(fd, mode) == 0);
	test_assert(write(fd, data, strlen(data)) == (ssize_t)strlen(data));
	close(fd);
}

static void test_parse_good(void)
{
	struct session s;
	char err[256] = "x";

	test_assert(session_parse(LIT(GOOD), &s, err, sizeof(err)) == 0);
	test_assert(strcmp(s.refresh_token, "AMf-vBx_refresh") == 0);
	test_assert(strcmp(s.api_url, "https://api.omi.me") == 0);
	test_assert(strcmp(s.firebase_api_key, "AIzaKEY") == 0);
	test_assert(strcmp(s.user_id, "uid-1") == 0);
	test_assert(s.created == 1767225600);
	session_free(&s);
	test_assert(s.refresh_token == NULL);

	/* Unknown members are ignored; white space around is fine. */
	test_assert(session_parse(LIT("\n " WITH("\"extra\": [1, {}], \"refresh_token\": \"r\", "
						 "\"created\": 0") "\n"),
				  &s, err, sizeof(err)) == 0);
	session_free(&s);
}

static void bad(const char *buf, size_t len, const char *reason)
{
	struct session s;
	char err[256] = "";

	memset(&s, 0xa5, sizeof(s));
	if (session_parse(buf, len, &s, err, sizeof(err)) != -EBADMSG)
		fprintf(stderr, "accepted: %.*s\n", (int)(len < 200 ? len : 200), buf);
	test_assert(s.refresh_token == NULL || err[0]);
	test_assert(err[0] != '\0');
	test_assert(s.refresh_token == NULL && s.api_url == NULL && s.user_id == NULL);
	if (!strstr(err, reason))
		fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, reason);
	test_assert(strstr(err, reason));
	test_assert(!strstr(err, "secret"));
	test_assert(strchr(err, '\n') == NULL);
}

#define BAD(lit, reason) bad(LIT(lit), reason)

static void test_parse_bad(void)
{
	BAD("", "empty");
	BAD("[]", "not a JSON object");
	BAD("{\"version\": 1", "ends too early");
	BAD(GOOD "x", "unexpected data");
	BAD(GOOD "\0", "NUL");
	BAD("{\"a\": [[[[[[[[[[1]]]]]]]]]]}", "nested");
	BAD("{\"version\": 2}", "version 2 is not 1");
	BAD("{\"version\": \"1\"}", "\"version\" is not an integer");
	BAD("{\"version\": 1.0}", "\"version\" is not an integer");
	BAD("{}", "no \"version\"");
	BAD(WITH("\"created\": 1"), "no \"refresh_token\"");
	BAD(WITH("\"refresh_token\": 5, \"created\": 1"), "\"refresh_token\" is not a string");
	BAD(WITH("\"refresh_token\": \"\", \"created\": 1"), "\"refresh_token\" is empty");
	BAD(WITH("\"refresh_token\": \"a secret\", \"created\": 1"), "not allowed");
	BAD(WITH("\"refresh_token\": \"secret\\n\", \"created\": 1"), "not allowed");
	BAD(WITH("\"refresh_token\": \"secret\\u00e9\", \"created\": 1"), "not allowed");
	BAD(WITH("\"refresh_token\": \"secret\\u0000x\", \"created\": 1"), "not allowed");
	BAD(WITH("\"refresh_token\": \"secret\", \"created\": -1"), "negative");
	BAD(WITH("\"refresh_token\": \"secret\", \"created\": 99999999999999999999"), "created");
	BAD(WITH("\"refresh_token\": \"secret\""), "no \"created\"");
	BAD(WITH("\"refresh_token\": \"secret\", \"created\": null"), "not an integer");
	BAD("{\"version\": 1, \"refresh_token\": \"s\", \"firebase_api_key\": \"k\", "
	    "\"user_id\": \"u\", \"created\": 1}",
	    "no \"api_url\"");
	BAD("{\"v\xff\": 1}", "not valid JSON");

	/* Over the size cap, whatever it holds. */
	size_t n = SESSION_MAX_SIZE + 1;
	char *big = malloc(n);

	memset(big, ' ', n);
	memcpy(big, GOOD, strlen(GOOD));
	bad(big, n, "larger than");
	free(big);

	/* A token one byte over its cap. */
	char *tok = malloc(SESSION_TOKEN_MAX + 2), *doc;

	memset(tok, 'A', SESSION_TOKEN_MAX + 1);
	tok[SESSION_TOKEN_MAX + 1] = '\0';
	test_assert(asprintf(&doc, WITH("\"refresh_token\": \"%s\", \"created\": 1"), tok) > 0);
	bad(doc, strlen(doc), "longer than");
	free(doc);
	tok[SESSION_TOKEN_MAX] = '\0';
	test_assert(asprintf(&doc, WITH("\"refresh_token\": \"%s\", \"created\": 1"), tok) > 0);
	struct session s;

	test_assert(session_parse(doc, strlen(doc), &s, NULL, 0) == 0);
	test_assert(strlen(s.refresh_token) == SESSION_TOKEN_MAX);
	session_free(&s);
	free(doc);
	free(tok);
}

static void test_roundtrip(void)
{
	struct session s = {
		.refresh_token = "tok\"with\\quote",
		.api_url = "http://127.0.0.1:8080",
		.firebase_api_key = "AIzaKEY",
		.user_id = "uid",
		.created = 42,
	}, back;
	size_t len;
	char *data = session_serialize(&s, &len);

	test_assert(data && strlen(data) == len && data[len - 1] == '\n');
	test_assert(session_parse(data, len, &back, NULL, 0) == 0);
	test_assert(strcmp(back.refresh_token, s.refresh_token) == 0);
	test_assert(strcmp(back.api_url, s.api_url) == 0);
	test_assert(strcmp(back.firebase_api_key, s.firebase_api_key) == 0);
	test_assert(strcmp(back.user_id, s.user_id) == 0);
	test_assert(back.created == 42);
	session_free(&back);
	free(data);
}

static void load_fails(const char *path, int want, const char *reason)
{
	struct session s;
	char err[512] = "";

	test_assert(session_load(path, &s, err, sizeof(err)) == want);
	test_assert(s.refresh_token == NULL);
	if (!strstr(err, reason))
		fprintf(stderr, "error \"%s\" lacks \"%s\"\n", err, reason);
	test_assert(strstr(err, reason));
}

static void test_load(void)
{
	char path[128], want[512];
	struct session s;

	snprintf(path, sizeof(path), "%s/load.json", tmpdir);
	snprintf(want, sizeof(want), "no session file %s; sign in with omikeyfs --login", path);
	load_fails(path, -ENOENT, want);

	write_file(path, GOOD, 0600);
	test_assert(session_load(path, &s, NULL, 0) == 0);
	test_assert(strcmp(s.user_id, "uid-1") == 0);
	session_free(&s);
	/* Read-only for its owner is fine. */
	test_assert(chmod(path, 0400) == 0);
	test_assert(session_load(path, &s, NULL, 0) == 0);
	session_free(&s);

	test_assert(chmod(path, 0644) == 0);
	snprintf(want, sizeof(want),
		 "session file %s is accessible by group or others "
		 "(mode 644); run: chmod 600 %s",
		 path, path);
	load_fails(path, -EACCES, want);
	test_assert(chmod(path, 0601) == 0);
	load_fails(path, -EACCES, "(mode 601)");
	test_assert(chmod(path, 0610) == 0);
	load_fails(path, -EACCES, "(mode 610)");

	write_file(path, "{\"version\": 7}", 0600);
	load_fails(path, -EBADMSG, "load.json: format version 7");

	/* A FIFO with no writer: refused at once, never waited on. */
	snprintf(path, sizeof(path), "%s/fifo.json", tmpdir);
	test_assert(mkfifo(path, 0600) == 0);
	load_fails(path, -EINVAL, "is not a regular file");
	snprintf(path, sizeof(path), "%s/adir", tmpdir);
	test_assert(mkdir(path, 0700) == 0);
	load_fails(path, -EINVAL, "is not a regular file");
	test_assert(rmdir(path) == 0);
	/* Its directory is held to cache_dir's rules. */
	load_fails("/tmp/x.json", -EPERM, "session file /tmp/x.json: its directory /tmp is ");

	snprintf(path, sizeof(path), "%s/big.json", tmpdir);
	test_assert(truncate(path, 0) < 0);
	int fd = open(path, O_WRONLY | O_CREAT, 0600);

	test_assert(fd >= 0 && ftruncate(fd, SESSION_MAX_SIZE + 1) == 0);
	close(fd);
	load_fails(path, -EFBIG, "larger than");
}

static int count_entries(const char *dir)
{
	DIR *d = opendir(dir);
	struct dirent *e;
	int n = 0;

	test_assert(d);
	while ((e = readdir(d)))
		if (strcmp(e->d_name, ".") && strcmp(e->d_name, ".."))
			n++;
	closedir(d);
	return n;
}

static void test_save(void)
{
	struct session s = {
		.refresh_token = "refresh-1",
		.api_url = "https://api.omi.me",
		.firebase_api_key = "AIzaKEY",
		.user_id = "uid",
		.created = 7,
	}, back;
	char dir[128], path[160], err[512] = "";
	struct stat st;
	mode_t old = umask(0);

	/* Missing parents are made 0700, the file 0600, even with umask 0. */
	snprintf(dir, sizeof(dir), "%s/cfg/omikeyfs", tmpdir);
	snprintf(path, sizeof(path), "%s/session.json", dir);
	test_assert(session_save(path, &s, err, sizeof(err)) == 0);
	test_assert(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	snprintf(dir, sizeof(dir), "%s/cfg", tmpdir);
	test_assert(stat(dir, &st) == 0 && (st.st_mode & 0777) == 0700);
	test_assert(stat(path, &st) == 0 && (st.st_mode & 0777) == 0600);
	test_assert(session_load(path, &back, err, sizeof(err)) == 0);
	test_assert(strcmp(back.refresh_token, "refresh-1") == 0 && back.created == 7);
	session_free(&back);

	/* Replacing leaves one file, no temporary one. */
	s.refresh_token = "refresh-2";
	test_assert(session_save(path, &s, err, sizeof(err)) == 0);
	snprintf(dir, sizeof(dir), "%s/cfg/omikeyfs", tmpdir);
	test_assert(count_entries(dir) == 1);
	test_assert(session_load(path, &back, err, sizeof(err)) == 0);
	test_assert(strcmp(back.refresh_token, "refresh-2") == 0);
	session_free(&back);

	/* A rename that fails (a directory in the way) leaves no temporary. */
	snprintf(path, sizeof(path), "%s/cfg/omikeyfs/in-the-way", tmpdir);
	test_assert(mkdir(path, 0700) == 0);
	test_assert(session_save(path, &s, err, sizeof(err)) == -EISDIR);
	test_assert(strstr(err, "cannot save session file"));
	test_assert(count_entries(dir) == 2);
	test_assert(rmdir(path) == 0);

	/* Every field is needed. */
	s.user_id = NULL;
	test_assert(session_save(path, &s, err, sizeof(err)) == -EINVAL);
	s.user_id = "uid";
	/* A parent that is a file. */
	snprintf(path, sizeof(path), "%s/cfg/omikeyfs/session.json/x", tmpdir);
	test_assert(session_save(path, &s, err, sizeof(err)) == -ENOTDIR);
	test_assert(strstr(err, "is not a directory"));
	test_assert(count_entries(dir) == 1);
	umask(old);
}

static void test_remove(void)
{
	char path[128], err[256];

	snprintf(path, sizeof(path), "%s/gone.json", tmpdir);
	write_file(path, GOOD, 0600);
	test_assert(session_remove(path, err, sizeof(err)) == 0);
	test_assert(access(path, F_OK) < 0 && errno == ENOENT);
	test_assert(session_remove(path, err, sizeof(err)) == -ENOENT);
	test_assert(strstr(err, "not signed in"));
}

static void test_default_path(void)
{
	char *p, err[256];

	setenv("XDG_CONFIG_HOME", "/x/cfg", 1);
	setenv("HOME", "/home/u", 1);
	test_assert(session_default_path(&p, err, sizeof(err)) == 0);
	test_assert(strcmp(p, "/x/cfg/omikeyfs/session.json") == 0);
	free(p);
	setenv("XDG_CONFIG_HOME", "relative", 1);
	test_assert(session_default_path(&p, err, sizeof(err)) == 0);
	test_assert(strcmp(p, "/home/u/.config/omikeyfs/session.json") == 0);
	free(p);
	unsetenv("XDG_CONFIG_HOME");
	test_assert(session_default_path(&p, err, sizeof(err)) == 0);
	test_assert(strcmp(p, "/home/u/.config/omikeyfs/session.json") == 0);
	free(p);
	unsetenv("HOME");
	test_assert(session_default_path(&p, err, sizeof(err)) == -ENOENT);
	test_assert(p == NULL && strstr(err, "HOME"));
}

static void test_copy(void)
{
	struct session a, b;

	test_assert(session_parse(LIT(GOOD), &a, NULL, 0) == 0);
	test_assert(session_copy(&b, &a) == 0);
	test_assert(b.refresh_token != a.refresh_token);
	test_assert(strcmp(b.refresh_token, a.refresh_token) == 0 && b.created == a.created);
	session_free(&a);
	session_free(&b);
}

/* Who signed in: kept when given, optional when read. */
static void test_email(void)
{
	struct session s = {
		.refresh_token = "R",
		.api_url = "https://api.omi.me",
		.firebase_api_key = "K",
		.user_id = "uid",
		.created = 1,
		.email = "a@example.com",
	}, back;
	size_t len;
	char *data = session_serialize(&s, &len);

	test_assert(data && strstr(data, "\"email\": \"a@example.com\""));
	test_assert(session_parse(data, len, &back, NULL, 0) == 0);
	test_assert(strcmp(back.email, "a@example.com") == 0);
	test_assert(strcmp(session_identity(&back), "a@example.com") == 0);
	session_free(&back);
	free(data);
	test_assert(session_parse(LIT(GOOD), &back, NULL, 0) == 0);
	test_assert(back.email == NULL && strcmp(session_identity(&back), "uid-1") == 0);
	session_free(&back);
	test_assert(session_parse(LIT(WITH("\"email\": \"a b\", \"refresh_token\": \"r\", "
					   "\"created\": 1")),
				  &back, NULL, 0) == -EBADMSG);
}

/* A rotated token is written only over the one it replaces. */
static void test_rotate(void)
{
	struct session s = {
		.refresh_token = "old",
		.api_url = "https://api.omi.me",
		.firebase_api_key = "K",
		.user_id = "uid",
		.created = 3,
		.email = "a@example.com",
	}, back;
	char path[160], err[512];

	snprintf(path, sizeof(path), "%s/rotate.json", tmpdir);
	test_assert(session_rotate(path, "old", "new", err, sizeof(err)) == -ENOENT);
	test_assert(session_save(path, &s, err, sizeof(err)) == 0);
	test_assert(session_rotate(path, "other", "new", err, sizeof(err)) == -ESTALE);
	test_assert(session_load(path, &back, NULL, 0) == 0);
	test_assert(strcmp(back.refresh_token, "old") == 0);
	session_free(&back);
	test_assert(session_rotate(path, "old", "new", err, sizeof(err)) == 0);
	test_assert(session_load(path, &back, NULL, 0) == 0);
	test_assert(strcmp(back.refresh_token, "new") == 0 && back.created == 3);
	test_assert(strcmp(back.email, "a@example.com") == 0);
	session_free(&back);
	test_assert(unlink(path) == 0);
}

/* --logout removes a session and nothing else. */
static void test_remove_refusals(void)
{
	char path[160], target[160], err[512];

	snprintf(path, sizeof(path), "%s/not-a-session", tmpdir);
	write_file(path, "ssh-ed25519 AAAA\n", 0600);
	test_assert(session_remove(path, err, sizeof(err)) == -EPERM);
	test_assert(strstr(err, "; nothing was removed") && access(path, F_OK) == 0);
	snprintf(target, sizeof(target), "%s/real.json", tmpdir);
	write_file(target, GOOD, 0600);
	test_assert(unlink(path) == 0 && symlink(target, path) == 0);
	test_assert(session_remove(path, err, sizeof(err)) == -EPERM);
	test_assert(strstr(err, "is a symbolic link") && access(target, F_OK) == 0);
	test_assert(unlink(path) == 0 && unlink(target) == 0);
}

int main(void)
{
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/omikeyfs-session-XXXXXX");
	test_assert(mkdtemp(tmpdir));
	test_run(test_parse_good);
	test_run(test_parse_bad);
	test_run(test_roundtrip);
	test_run(test_load);
	test_run(test_save);
	test_run(test_remove);
	test_run(test_default_path);
	test_run(test_copy);
	test_run(test_email);
	test_run(test_rotate);
	test_run(test_remove_refusals);
	/* Leave nothing behind. */
	char cmd[128];

	snprintf(cmd, sizeof(cmd), "rm -rf %s", tmpdir);
	test_assert(system(cmd) == 0);
	return 0;
}
