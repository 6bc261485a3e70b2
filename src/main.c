/*
 * omikeyfs: mount the Omi developer API's key list as a read-only tree.
 *
 *   $ OMI_API_KEY=... omikeyfs /mnt/omi-keys
 *   $ grep -rl memories:write /mnt/omi-keys --include=scopes
 *   $ fusermount3 -u /mnt/omi-keys
 *
 * main: wiring and signals.  Mounting waits for the first successful fetch,
 * so a bad token or URL never leaves a mount behind.
 */
#include <errno.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <time.h>

#include "cache.h"
#include "fs.h"
#include "http.h"
#include "keylist.h"
#include "log.h"
#include "mountpoint.h"
#include "options.h"
#include "sdnotify.h"
#include "stop.h"
#include "token.h"

/* Exit statuses, as documented in omikeyfs(1). */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 1,    /* bad option, URL, key file or missing token */
	EXIT_REFUSED = 2,  /* the API refused the token (401/403) */
	EXIT_FETCH = 3,    /* the first fetch failed otherwise */
	EXIT_MOUNT = 4,    /* mounting or the FUSE session failed; the mountpoint
			    * is an omikeyfs mount already, or a dead one */
};

/* Room for one message naming a path and what is wrong with it. */
#define ERR_MAX (PATH_MAX + 512)

/* What cache_ops.fetch needs. */
struct fetcher {
	struct http_client *http;
	char *token;           /* token_free'd */
	const char *key_file;  /* read again after a 401, or NULL */
};

static struct fs *signal_fs;

/* ---- the fetcher the cache calls -------------------------------------- */

static void fetch_keys(void *ctx, struct fetch_result *res)
{
	struct fetcher *f = ctx;
	struct http_response resp;
	char *detail;
	int rc;

	/* Stopping: no new request, whoever asks (a SIGHUP, an operation). */
	if (stop_requested(NULL)) {
		res->err = -ECANCELED;
		snprintf(res->message, sizeof(res->message), "omikeyfs is stopping");
		return;
	}
	rc = http_get(f->http, f->token, &resp);

	/* Session tokens expire: after a 401, a key file may hold a new one. */
	if (rc == -EACCES && resp.status == 401 && f->key_file) {
		char err[256];
		char *fresh = token_read_file(f->key_file, err, sizeof(err));

		if (!fresh) {
			log_warn("%s", err);
		} else if (strcmp(fresh, f->token) != 0) {
			log_info("the API refused the token; retrying with the new one in %s",
				 f->key_file);
			token_free(f->token);
			f->token = fresh;
			fresh = NULL;
			http_response_free(&resp);
			rc = http_get(f->http, f->token, &resp);
		}
		token_free(fresh);
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

/* http_forget_validators takes its client typed, and calling it through a
 * void * hook would be undefined behaviour. */
static void forget_validators(void *http)
{
	http_forget_validators(http);
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
__attribute__((format(printf, 2, 0)))
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

/* The cache, fetching through f, on the real clocks. */
static struct cache *new_cache(struct fetcher *f, double ttl)
{
	const struct cache_ops ops = {
		.fetch = fetch_keys,
		.monotonic = clock_monotonic,
		.realtime = clock_realtime,
		.random = random_unit,
		.ctx = f,
	};

	return cache_new(&ops, ttl);
}

/* A failed step's one line, unless libfuse has already given its own. */
static int fail(int status, const char *err)
{
	if (*err)
		log_err("%s", err);
	return status;
}

static struct http_client *http_from_options(const struct options *opts)
{
	struct http_config config = {
		.url = opts->list_url,
		.timeout = (long)ceil(opts->timeout),
		.max_size = opts->max_size,
		.cafile = opts->cafile,
		.cancelled = stop_requested,
	};

	config.connect_timeout = config.timeout < 10 ? config.timeout : 10;
	return http_new(&config);
}

static int run_loop(struct fuse_session *se, const struct fuse_cmdline_opts *cmd)
{
	struct fuse_loop_config *config;
	int rc;

	if (cmd->singlethread)
		return fuse_session_loop(se);
	config = fuse_loop_cfg_create();
	fuse_loop_cfg_set_clone_fd(config, (unsigned int)cmd->clone_fd);
	fuse_loop_cfg_set_max_threads(config, cmd->max_threads);
	rc = fuse_session_loop_mt(se, config);
	fuse_loop_cfg_destroy(config);
	return rc;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options opts = { 0 };
	struct fetcher fetcher = { 0 };
	struct cache *cache;
	struct fs *fs;
	struct fuse_session *se;
	char err[ERR_MAX];
	int status = EXIT_USAGE, rc;

	/* The token must not end up in a core dump. */
	prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
	signal(SIGPIPE, SIG_IGN);
	fuse_set_log_func(fuse_log_to_ours);
	/* Out of the environment while single-threaded, before fusermount3
	 * or anything else is started that would inherit it. */
	sdnotify_forget();

	if ((rc = options_parse(&args, &opts, err, sizeof(err))) != 0) {
		status = rc > 0 ? EXIT_OK : fail(EXIT_USAGE, err);
		goto out;
	}
	/* Before options_fuse_args, which a dead mount would fail with a bare
	 * "Transport endpoint is not connected". */
	if (!opts.fd_mountpoint && mountpoint_check(opts.mountpoint, err, sizeof(err)) < 0) {
		status = fail(EXIT_MOUNT, err);
		goto out;
	}
	fetcher.key_file = opts.key_file;
	if (!(fetcher.token = token_load(opts.key_file, err, sizeof(err))) ||
	    options_fuse_args(&args, &opts, err, sizeof(err)) < 0) {
		status = fail(EXIT_USAGE, err);
		goto out;
	}
	log_set_level(opts.log_level);
	log_set_debug(opts.fuse.debug);

	if (http_global_init() < 0) {
		status = fail(EXIT_USAGE, "cannot initialise libcurl");
		goto out;
	}
	fetcher.http = http_from_options(&opts);
	cache = fetcher.http ? new_cache(&fetcher, opts.ttl) : NULL;
	fs = cache ? fs_new(cache) : NULL;
	if (!fs) {
		status = fail(EXIT_USAGE, "out of memory");
		goto out_fs;
	}
	fs_set_owner(fs, opts.uid, opts.gid, opts.umask);
	cache_on_swapped(cache, fs_snapshot_swapped, fs);
	cache_on_rejected(cache, forget_validators, fetcher.http);

	/* Options are checked before the first request, and the first request
	 * before the mount: a failure leaves nothing mounted. */
	if (!(se = fuse_session_new(&args, fs_ops(), sizeof(*fs_ops()), fs)))
		goto out_fs;
	rc = cache_prime(cache, err, sizeof(err));
	if (rc < 0) {
		log_err("cannot fetch the key list from %s: %s", opts.url, err);
		status = rc == -EACCES ? EXIT_REFUSED : EXIT_FETCH;
		goto out_session;
	}
	status = EXIT_MOUNT;
	if (fuse_set_signal_handlers(se) != 0)
		goto out_session;
	signal_fs = fs;
	signal(SIGHUP, on_sighup);
	if (fuse_session_mount(se, opts.fuse.mountpoint) != 0) {
		log_err("cannot mount on %s", opts.fuse.mountpoint);
		goto out_signals;
	}
	if (fuse_daemonize(opts.fuse.foreground) != 0)
		goto out_unmount;
	if (!opts.fuse.foreground)
		log_to_syslog();
	if (stop_install(se) < 0) {
		log_err("cannot set up SIGTERM and SIGINT");
		goto out_unmount;
	}
	if (fs_start_notifier(fs, se) < 0) {
		log_err("cannot start the notifier thread");
		goto out_unmount;
	}
	log_info("mounted %s on %s (ttl %g s, timeout %g s)", opts.url, opts.fuse.mountpoint,
		 opts.ttl, opts.timeout);
	/* Fetched, mounted and (without -f) detached: the tree answers now. */
	sdnotify_send("READY=1");

	/* A positive result is the signal that ended the loop: a clean exit. */
	status = run_loop(se, &opts.fuse) < 0 ? EXIT_MOUNT : EXIT_OK;
	sdnotify_send("STOPPING=1");
out_unmount:
	/* However the loop ended, a fetch still under way (the notifier's)
	 * is aborted and none starts. */
	stop_request();
	/* Unmounting closes the session's fd, which aborts whatever the
	 * notifier may still be waiting on in the kernel; only then join it. */
	fs_notifier_stopping(fs);
	fuse_session_unmount(se);
	fs_stop_notifier(fs);
out_signals:
	signal(SIGHUP, SIG_DFL);
	signal_fs = NULL;
	stop_remove();
	fuse_remove_signal_handlers(se);
out_session:
	fuse_session_destroy(se);
out_fs:
	fs_free(fs);
	cache_free(cache);
	http_free(fetcher.http);
	http_global_cleanup();
out:
	token_free(fetcher.token);
	options_free(&opts);
	fuse_opt_free_args(&args);
	return status;
}
