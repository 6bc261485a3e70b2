/*
 * omikeyfs: mount the Omi developer API's key list as a read-only tree.
 *
 *   $ OMI_API_KEY=... omikeyfs /mnt/omi-keys
 *   $ grep -rl memories:write /mnt/omi-keys --include=scopes
 *   $ fusermount3 -u /mnt/omi-keys
 *
 * main: options, credentials, wiring and signals.  Mounting waits for the
 * first successful fetch, so a bad token or URL never leaves a mount behind.
 */
#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <json-c/json_c_version.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "cache.h"
#include "fs.h"
#include "http.h"
#include "keylist.h"
#include "log.h"
#include "url.h"

#define DEFAULT_URL "https://api.omi.me"
#define LIST_PATH "/v1/dev/keys"
#define DEFAULT_TTL 60.0
#define DEFAULT_TIMEOUT 30.0
#define DEFAULT_MAX_SIZE (64UL << 20)
#define TOKEN_MAX 16384

/* Exit statuses, as documented in omikeyfs(1). */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 1,    /* bad option, URL, key file or missing token */
	EXIT_REFUSED = 2,  /* the API refused the token (401/403) */
	EXIT_FETCH = 3,    /* the first fetch failed otherwise */
	EXIT_MOUNT = 4,    /* mounting or the FUSE session failed */
};

struct options {
	char *key_file;
	char *ttl;
	char *timeout;
	char *max_size;
	char *cafile;
	char *positional[2];
	int npositional;
	int too_many;
	int show_help;
	int show_version;
	int allow_other;
};

#define OPTION(t, p) { t, offsetof(struct options, p), 1 }

enum { KEY_HELP, KEY_VERSION, KEY_DISCARD, KEY_ALLOW_OTHER };

static const struct fuse_opt option_spec[] = {
	OPTION("key_file=%s", key_file),
	OPTION("ttl=%s", ttl),
	OPTION("timeout=%s", timeout),
	OPTION("max_size=%s", max_size),
	OPTION("cafile=%s", cafile),
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	/* Words fstab and mount(8) pass that mean nothing here. */
	FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("users", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nouser", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("rw", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("defaults", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_END
};

struct app {
	struct options opts;
	char *url;           /* base URL + LIST_PATH */
	char *token;         /* wiped before it is freed */
	struct http_client *http;
	struct cache *cache;
	struct fs *fs;
};

static struct fs *signal_fs;

static int option_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct options *opts = data;

	switch (key) {
	case KEY_HELP:
		opts->show_help = 1;
		return 0;
	case KEY_VERSION:
		opts->show_version = 1;
		return 0;
	case KEY_ALLOW_OTHER:
		opts->allow_other = 1;
		return 1;
	case FUSE_OPT_KEY_OPT:
		/* x-systemd.automount, x-gvfs-show, comment=...: for other
		 * programs reading fstab, not for us. */
		if (strncmp(arg, "x-", 2) == 0 || strncmp(arg, "comment=", 8) == 0)
			return 0;
		return 1;
	case FUSE_OPT_KEY_NONOPT:
		if (opts->npositional < 2)
			opts->positional[opts->npositional++] = strdup(arg);
		else
			opts->too_many = 1;
		return 0;
	default:
		return 1;
	}
}

static void print_usage(const char *progname)
{
	printf("usage: %s [options] [API_URL] MOUNTPOINT\n\n", progname);
	printf("Mounts the Omi developer API key list (GET API_URL" LIST_PATH ") as a\n"
	       "read-only tree: one directory per key holding name, key_prefix,\n"
	       "created_at, last_used_at and scopes.  API_URL defaults to " DEFAULT_URL ";\n"
	       "only https:// is accepted, or http:// to a loopback host.\n\n"
	       "omikeyfs options:\n"
	       "    -o key_file=PATH       read the API token from the first line of PATH\n"
	       "                           (must not be readable by group or others);\n"
	       "                           otherwise OMI_API_KEY is used\n"
	       "    -o ttl=SECONDS         how long a fetched list is served (default 60)\n"
	       "    -o timeout=SECONDS     limit for one HTTP request (default 30)\n"
	       "    -o max_size=BYTES      largest response accepted (default 67108864)\n"
	       "    -o cafile=PATH         also trust the CA certificates in PATH\n"
	       "    -h, --help             print this help and exit\n"
	       "    -V, --version          print versions and exit\n"
	       "    _netdev,noauto,nofail,user,... (fstab words) are accepted and ignored\n\n"
	       "The mount is always ro,noatime; allow_other implies default_permissions.\n"
	       "Status xattrs on the root: user.omikeyfs.fetched_at, user.omikeyfs.stale,\n"
	       "user.omikeyfs.last_error, user.omikeyfs.pid; each key directory has\n"
	       "user.omikeyfs.id.  SIGHUP refreshes the list now; SIGTERM and SIGINT\n"
	       "unmount.  Environment: OMI_API_KEY, the token when no key_file is given.\n"
	       "Exit status: 0 ok, 1 usage or credentials, 2 token refused by the API,\n"
	       "3 first fetch failed, 4 mount failed.\n\n");
}

static void print_version(void)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	printf("omikeyfs %s\n", OMIKEYFS_VERSION);
	printf("libfuse %s\n", fuse_pkgversion());
	printf("libcurl %s\n", cv->version);
	printf("json-c %s\n", json_c_version());
}

/* A positive (or, with zero_ok, non-negative) finite number of seconds. */
static int parse_seconds(const char *name, const char *text, bool zero_ok, double *out)
{
	char *end;
	double v;

	if (!text)
		return 0;
	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v) || v < 0 || (!zero_ok && v == 0) ||
	    v > 86400 * 365.0) {
		fprintf(stderr, "omikeyfs: invalid %s=%s (expected %s number of seconds)\n",
			name, text, zero_ok ? "a non-negative" : "a positive");
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_size(const char *text, size_t *out)
{
	char *end;
	unsigned long long v;

	if (!text)
		return 0;
	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text || *text == '-')
		goto bad;
	if (*end == 'k' || *end == 'K')
		v <<= 10, end++;
	else if (*end == 'm' || *end == 'M')
		v <<= 20, end++;
	else if (*end == 'g' || *end == 'G')
		v <<= 30, end++;
	if (*end || v < 1024 || v > (1ULL << 31) - 1)
		goto bad;
	*out = (size_t)v;
	return 0;
bad:
	fprintf(stderr, "omikeyfs: invalid max_size=%s (expected bytes from 1024 to under 2G, "
		"with an optional K, M or G)\n", text);
	return -1;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Replaces *path by its absolute form; false (errno set) when it has none. */
static bool make_absolute(char **path)
{
	char *abs = realpath(*path, NULL);

	if (!abs)
		return false;
	free(*path);
	*path = abs;
	return true;
}

static void wipe_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}

/* A token is sent in a header: no control characters, no spaces. */
static bool token_ok(const char *token)
{
	for (const unsigned char *p = (const unsigned char *)token; *p; p++)
		if (*p <= ' ' || *p == 0x7f)
			return false;
	return *token != '\0';
}

/* Reads the first line of the key file.  Returns a malloc'd token or NULL
 * with a one-line reason in err. */
static char *read_key_file(const char *path, char *err, size_t errlen)
{
	char buf[TOKEN_MAX + 2];
	struct stat st;
	ssize_t n;
	char *token = NULL, *nl;
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);

	if (fd < 0) {
		snprintf(err, errlen, "cannot open key file %s: %s", path, strerror(errno));
		return NULL;
	}
	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode)) {
		snprintf(err, errlen, "key file %s is not a regular file", path);
		goto out;
	}
	if (st.st_mode & (S_IRWXG | S_IRWXO)) {
		snprintf(err, errlen, "key file %s is accessible by group or others "
			 "(mode %03o); run: chmod 600 %s", path,
			 (unsigned)(st.st_mode & 0777), path);
		goto out;
	}
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0) {
		snprintf(err, errlen, "cannot read key file %s: %s", path, strerror(errno));
		goto out;
	}
	buf[n] = '\0';
	if ((nl = strchr(buf, '\n')))
		*nl = '\0';
	else if (n > TOKEN_MAX) {
		snprintf(err, errlen, "key file %s: first line longer than %d bytes", path, TOKEN_MAX);
		goto out;
	}
	char *line = trim(buf);

	if (!*line)
		snprintf(err, errlen, "key file %s has no token on its first line", path);
	else if (!token_ok(line))
		snprintf(err, errlen, "key file %s: the token holds spaces or control characters", path);
	else if (!(token = strdup(line)))
		snprintf(err, errlen, "out of memory");
out:
	explicit_bzero(buf, sizeof(buf));
	close(fd);
	return token;
}

/* Wipes OMI_API_KEY in place and removes it, so neither /proc/PID/environ
 * nor any child (fusermount3) sees it. */
static void scrub_env_token(void)
{
	char *value = getenv("OMI_API_KEY");

	if (value)
		explicit_bzero(value, strlen(value));
	unsetenv("OMI_API_KEY");
}

/* Takes the token from OMI_API_KEY (and scrubs it). */
static char *take_env_token(char *err, size_t errlen)
{
	char *value = getenv("OMI_API_KEY");
	char *token;

	if (!value) {
		snprintf(err, errlen, "no API token: set OMI_API_KEY or use -o key_file=PATH");
		return NULL;
	}
	token = strdup(trim(value));
	scrub_env_token();
	if (!token) {
		snprintf(err, errlen, "out of memory");
	} else if (!token_ok(token)) {
		snprintf(err, errlen, "OMI_API_KEY is empty or holds spaces or control characters");
		wipe_free(token);
		token = NULL;
	}
	return token;
}

/* ---- the fetcher the cache calls -------------------------------------- */

static void fetch_keys(void *ctx, struct fetch_result *res)
{
	struct app *app = ctx;
	struct http_response resp;
	char *detail;
	int rc = http_get(app->http, app->token, &resp);

	/* Session tokens expire: after a 401, a key file may hold a new one. */
	if (rc == -EACCES && resp.status == 401 && app->opts.key_file) {
		char err[256];
		char *fresh = read_key_file(app->opts.key_file, err, sizeof(err));

		if (!fresh) {
			log_warn("%s", err);
		} else if (strcmp(fresh, app->token) != 0) {
			log_info("the API refused the token; retrying with the new one in %s",
				 app->opts.key_file);
			wipe_free(app->token);
			app->token = fresh;
			fresh = NULL;
			http_response_free(&resp);
			rc = http_get(app->http, app->token, &resp);
		}
		wipe_free(fresh);
	}
	/* An error status: the API's "detail" says why. */
	detail = resp.error.kind == HTTP_ERR_STATUS ? keylist_error_detail(resp.body, resp.len)
						     : NULL;
	http_message(&resp, detail, res->message, sizeof(res->message));
	free(detail);
	res->err = rc;
	res->retry_after = resp.retry_after;
	if (res->err == 0) {
		if (resp.status == 304) {
			res->not_modified = true;
		} else {
			res->body = resp.body;
			res->len = resp.len;
			resp.body = NULL;
		}
	}
	http_response_free(&resp);
}

static void snapshot_swapped(void *ctx, struct snapshot *old, struct snapshot *new)
{
	struct app *app = ctx;

	fs_snapshot_swapped(app->fs, old, new);
}

static void body_rejected(void *ctx)
{
	struct app *app = ctx;

	http_forget_validators(app->http);
}

static double clock_monotonic(void *ctx)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + ts.tv_nsec / 1e9;
}

static struct timespec clock_realtime(void *ctx)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return ts;
}

static double random_unit(void *ctx)
{
	unsigned int r = 0;

	if (getrandom(&r, sizeof(r), GRND_NONBLOCK) != sizeof(r))
		r = (unsigned int)clock_realtime(NULL).tv_nsec;
	return r / 4294967296.0;
}

/* libfuse's own messages, as ours: "omikeyfs: ...", to syslog once detached.
 * libfuse builds some lines in several calls, so pieces are gathered until
 * the newline. */
static void fuse_log_to_ours(enum fuse_log_level level, const char *fmt, va_list ap)
{
	static __thread char line[512];
	static __thread size_t len;
	const char *text = line;

	if (level == FUSE_LOG_DEBUG) {
		/* -d: libfuse's request trace goes to stderr as it is. */
		vfprintf(stderr, fmt, ap);
		return;
	}
	if (len < sizeof(line) - 1) {
		int n = vsnprintf(line + len, sizeof(line) - len, fmt, ap);

		if (n > 0)
			len = len + (size_t)n < sizeof(line) ? len + (size_t)n : sizeof(line) - 1;
	}
	if (len == 0 || (line[len - 1] != '\n' && len < sizeof(line) - 1))
		return;
	while (len && line[len - 1] == '\n')
		line[--len] = '\0';
	if (strncmp(text, "fuse: ", 6) == 0)
		text += 6;
	if (*text)
		log_msg(level <= FUSE_LOG_ERR ? LOG_ERR : level == FUSE_LOG_WARNING ? LOG_WARNING
						: LOG_INFO, "%s", text);
	len = 0;
}

static void on_sighup(int sig)
{
	if (signal_fs)
		fs_request_refresh(signal_fs);
}

static void free_options(struct options *opts)
{
	free(opts->key_file);
	free(opts->ttl);
	free(opts->timeout);
	free(opts->max_size);
	free(opts->cafile);
	free(opts->positional[0]);
	free(opts->positional[1]);
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct fuse_cmdline_opts cmd = { 0 };
	struct fuse_session *se = NULL;
	struct fuse_loop_config *loop_config = NULL;
	struct app app = { 0 };
	struct cache_ops ops = {
		.fetch = fetch_keys,
		.swapped = snapshot_swapped,
		.rejected = body_rejected,
		.monotonic = clock_monotonic,
		.realtime = clock_realtime,
		.random = random_unit,
	};
	struct http_config http_config = { 0 };
	const char *base_url, *mountpoint;
	double ttl = DEFAULT_TTL, timeout = DEFAULT_TIMEOUT;
	size_t max_size = DEFAULT_MAX_SIZE;
	char err[600];
	struct stat st;
	int status = EXIT_USAGE, rc;

	/* The token must not end up in a core dump. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	fuse_set_log_func(fuse_log_to_ours);

	if (fuse_opt_parse(&args, &app.opts, option_spec, option_proc) < 0)
		goto out;
	if (app.opts.show_help) {
		print_usage(argv[0]);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		status = EXIT_OK;
		goto out;
	}
	if (app.opts.show_version) {
		print_version();
		status = EXIT_OK;
		goto out;
	}
	if (app.opts.too_many || app.opts.npositional == 0) {
		fprintf(stderr, "omikeyfs: usage: %s [options] [API_URL] MOUNTPOINT "
			"(see --help)\n", argv[0]);
		goto out;
	}
	base_url = app.opts.npositional == 2 ? app.opts.positional[0] : DEFAULT_URL;
	mountpoint = app.opts.positional[app.opts.npositional - 1];

	if (parse_seconds("ttl", app.opts.ttl, true, &ttl) < 0 ||
	    parse_seconds("timeout", app.opts.timeout, false, &timeout) < 0 ||
	    parse_size(app.opts.max_size, &max_size) < 0)
		goto out;
	if (url_check(base_url, err, sizeof(err)) < 0) {
		fprintf(stderr, "omikeyfs: %s\n", err);
		goto out;
	}
	/* Paths made absolute: the daemon runs in "/", and libcurl may load
	 * the CA file again, as omikeyfs reads the key file again after a 401. */
	if (app.opts.cafile &&
	    (!make_absolute(&app.opts.cafile) || access(app.opts.cafile, R_OK) < 0)) {
		fprintf(stderr, "omikeyfs: cafile %s: %s\n", app.opts.cafile, strerror(errno));
		goto out;
	}
	if (app.opts.key_file) {
		make_absolute(&app.opts.key_file); /* read_key_file says why if not */
		app.token = read_key_file(app.opts.key_file, err, sizeof(err));
		scrub_env_token();
	} else {
		app.token = take_env_token(err, sizeof(err));
	}
	if (!app.token) {
		fprintf(stderr, "omikeyfs: %s\n", err);
		goto out;
	}
	if (stat(mountpoint, &st) < 0) {
		fprintf(stderr, "omikeyfs: mountpoint %s: %s\n", mountpoint, strerror(errno));
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		fprintf(stderr, "omikeyfs: mountpoint %s: not a directory\n", mountpoint);
		goto out;
	}

	/* Read-only, no atime: every read would otherwise cost a round trip
	 * to update atime, and the kernel refuses writes before they get here. */
	if (fuse_opt_add_arg(&args, "-oro,noatime,subtype=omikeyfs") < 0 ||
	    fuse_opt_add_arg(&args, "-ofsname=omikeyfs") < 0 ||
	    (app.opts.allow_other && fuse_opt_add_arg(&args, "-odefault_permissions") < 0) ||
	    fuse_opt_add_arg(&args, mountpoint) < 0) {
		fprintf(stderr, "omikeyfs: out of memory\n");
		goto out;
	}
	if (fuse_parse_cmdline(&args, &cmd) != 0)
		goto out;
	log_set_debug(cmd.debug);

	if (!(app.url = url_join(base_url, LIST_PATH)) || http_global_init() < 0) {
		fprintf(stderr, "omikeyfs: cannot initialise libcurl\n");
		goto out;
	}
	http_config.url = app.url;
	http_config.timeout = (long)ceil(timeout);
	http_config.connect_timeout = http_config.timeout < 10 ? http_config.timeout : 10;
	http_config.max_size = max_size;
	http_config.cafile = app.opts.cafile;
	app.http = http_new(&http_config);
	ops.ctx = &app;
	app.cache = app.http ? cache_new(&ops, ttl) : NULL;
	app.fs = app.cache ? fs_new(app.cache) : NULL;
	if (!app.fs) {
		fprintf(stderr, "omikeyfs: out of memory\n");
		goto out_http;
	}

	/* Options are checked before the first request, and the first request
	 * before the mount: a failure leaves nothing mounted. */
	se = fuse_session_new(&args, fs_ops(), sizeof(*fs_ops()), app.fs);
	if (!se) {
		status = EXIT_USAGE;
		goto out_http;
	}
	rc = cache_prime(app.cache, err, sizeof(err));
	if (rc < 0) {
		fprintf(stderr, "omikeyfs: cannot fetch the key list from %s: %s\n", base_url, err);
		status = rc == -EACCES ? EXIT_REFUSED : EXIT_FETCH;
		goto out_session;
	}
	if (fuse_set_signal_handlers(se) != 0) {
		status = EXIT_MOUNT;
		goto out_session;
	}
	signal_fs = app.fs;
	signal(SIGHUP, on_sighup);
	if (fuse_session_mount(se, cmd.mountpoint) != 0) {
		fprintf(stderr, "omikeyfs: cannot mount on %s\n", cmd.mountpoint);
		status = EXIT_MOUNT;
		goto out_signals;
	}
	if (fuse_daemonize(cmd.foreground) != 0) {
		status = EXIT_MOUNT;
		goto out_unmount;
	}
	if (!cmd.foreground)
		log_to_syslog();
	if (fs_start_notifier(app.fs, se) < 0) {
		log_err("cannot start the notifier thread");
		status = EXIT_MOUNT;
		goto out_unmount;
	}
	log_info("mounted %s on %s (ttl %g s, timeout %g s)", base_url, cmd.mountpoint, ttl, timeout);

	if (cmd.singlethread) {
		rc = fuse_session_loop(se);
	} else {
		loop_config = fuse_loop_cfg_create();
		fuse_loop_cfg_set_clone_fd(loop_config, (unsigned int)cmd.clone_fd);
		fuse_loop_cfg_set_max_threads(loop_config, cmd.max_threads);
		rc = fuse_session_loop_mt(se, loop_config);
		fuse_loop_cfg_destroy(loop_config);
	}
	/* A positive result is the signal that ended the loop: a clean exit. */
	status = rc < 0 ? EXIT_MOUNT : EXIT_OK;
out_unmount:
	/* Unmounting closes the session's fd, which aborts whatever the
	 * notifier may still be waiting on in the kernel; only then join it. */
	fs_notifier_stopping(app.fs);
	fuse_session_unmount(se);
	fs_stop_notifier(app.fs);
out_signals:
	signal(SIGHUP, SIG_DFL);
	signal_fs = NULL;
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_http:
	fs_free(app.fs);
	cache_free(app.cache);
	http_free(app.http);
	http_global_cleanup();
out:
	wipe_free(app.token);
	free(app.url);
	free(cmd.mountpoint);
	free_options(&app.opts);
	fuse_opt_free_args(&args);
	return status;
}
