/*
 * omikeyfs: mount the Omi developer API's key list as a read-only tree.
 *
 *   $ omikeyfs --login
 *   $ omikeyfs /mnt/omi-keys
 *   $ grep -rl memories:write /mnt/omi-keys --include=scopes
 *   $ fusermount3 -u /mnt/omi-keys
 *
 * main: wiring and signals.  Mounting waits for the first successful fetch,
 * so a bad token, an ended session or a bad URL never leaves a mount
 * behind.
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
#include "clock.h"
#include "fetch.h"
#include "fs.h"
#include "http.h"
#include "keylist.h"
#include "log.h"
#include "mountpoint.h"
#include "options.h"
#include "persist.h"
#include "sdnotify.h"
#include "logincmd.h"
#include "stop.h"
#include "token.h"

/* Exit statuses, as documented in omikeyfs(1). */
enum {
	EXIT_OK = 0,
	EXIT_USAGE = 1,     /* bad option, URL, key or session file, missing token */
	EXIT_REFUSED = 2,   /* the API refused the token or session (401/403, ended);
			     * --login: the sign-in was refused */
	EXIT_FETCH = 3,     /* the first fetch failed otherwise; --login: no answer
			     * from Omi or Firebase, or no sign-in in time */
	EXIT_MOUNT = 4,     /* mounting or the FUSE session failed; the mountpoint
			     * is an omikeyfs mount already, or a dead one */
	EXIT_CANCELLED = 5, /* --login: SIGINT or SIGTERM ended it; nothing saved */
};

/* Room for one message naming a path and what is wrong with it. */
#define ERR_MAX (PATH_MAX + 512)

static struct fs *signal_fs;

static double clock_monotonic(void *ctx)
{
	return clock_monotonic_ns() / 1e9;
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
__attribute__((format(printf, 2, 0))) static void fuse_log_to_ours(enum fuse_log_level level,
								   const char *fmt, va_list ap)
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
		log_msg(level <= FUSE_LOG_ERR       ? LOG_ERR
			: level == FUSE_LOG_WARNING ? LOG_WARNING
						    : LOG_INFO,
			"%s", text);
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
		.fetch = fetcher_fetch,
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

/* --login and --logout: refusals 2, no answer or no sign-in in time 3,
 * a signal 5. */
static int logincmd_status(int rc)
{
	switch (rc) {
	case 0:
		return EXIT_OK;
	case -EACCES:
	case -EPROTO:
	case -EBADMSG:
		return EXIT_REFUSED;
	case -ETIMEDOUT:
	case -ECONNREFUSED:
	case -ECONNRESET:
	case -EHOSTUNREACH:
	case -ENETUNREACH:
	case -EAGAIN:
	case -EIO:
		return EXIT_FETCH;
	case -ECANCELED:
		return EXIT_CANCELLED;
	default:
		return EXIT_USAGE;
	}
}

static int run_logincmd(struct fuse_args *args, const struct options *opts)
{
	char err[ERR_MAX];
	int rc;

	/* Nothing is left for libfuse to take: -f, -d and the like mean
	 * nothing here. */
	if (args->argc > 1)
		return fail(EXIT_USAGE, "--login and --logout take no FUSE options");
	if (opts->logout)
		rc = logincmd_logout(opts, err, sizeof(err));
	else if (http_global_init() < 0)
		return fail(EXIT_USAGE, "cannot initialise libcurl");
	else
		rc = logincmd_login(opts, err, sizeof(err));
	if (rc < 0)
		log_err("%s", err);
	if (opts->login)
		http_global_cleanup();
	return logincmd_status(rc);
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

/* What a mount is made of, built before any request and freed in reverse. */
struct parts {
	struct fetcher *fetcher;
	struct cache *cache;
	struct fs *fs;
	struct persist *persist;
};

/* Credentials, cache, tree and kept list for opts.  Returns EXIT_OK, or the
 * exit status of the one line logged. */
static int parts_build(struct parts *p, const struct options *opts)
{
	const struct credentials *cred;
	char err[ERR_MAX];
	int rc;

	/* A session made for another API is refused as the API would. */
	if ((rc = fetcher_new(opts, &p->fetcher, err, sizeof(err))) < 0)
		return fail(rc == -EACCES ? EXIT_REFUSED : EXIT_USAGE, err);
	p->cache = new_cache(p->fetcher, opts->ttl);
	p->fs = p->cache ? fs_new(p->cache) : NULL;
	if (!p->fs)
		return fail(EXIT_USAGE, "out of memory");
	/* The API revokes for a signed-in session only: a bearer token would
	 * be refused at the first rmdir, after mounting rw for nothing. */
	if (opts->allow_revoke) {
		if (!credentials_is_session(fetcher_credentials(p->fetcher)))
			return fail(
				EXIT_USAGE,
				"allow_revoke needs a signed-in session (omikeyfs --login): the "
				"API revokes keys for no key_file or OMI_API_KEY token");
		fs_set_revoke(p->fs, fetcher_revoke, p->fetcher);
	}
	fs_set_owner(p->fs, opts->uid, opts->gid, opts->umask);
	cache_on_swapped(p->cache, fs_snapshot_swapped, p->fs);
	cache_on_rejected(p->cache, fetcher_forget_validators, p->fetcher);
	/* The kept list is the signed-in user's, or the token's: only a salted
	 * hash of a token names it. */
	cred = fetcher_credentials(p->fetcher);
	if (opts->cache_dir) {
		const struct persist_config pc = {
			.dir = opts->cache_dir,
			.fallback = opts->cache_dir_default,
			.url = opts->list_url,
			.max_size = opts->max_size,
			.owner = { credentials_user_id(cred), credentials_plain_token(cred) },
		};

		if (!(p->persist = persist_open(&pc, p->cache, err, sizeof(err))) && err[0])
			return fail(EXIT_USAGE, err);
	}
	return EXIT_OK;
}

static void parts_free(struct parts *p)
{
	fs_free(p->fs);
	persist_free(p->persist);
	cache_free(p->cache);
	fetcher_free(p->fetcher);
}

/* Mount the primed tree, serve it until unmounted or signalled, unmount.
 * Returns the exit status. */
static int serve(struct fuse_session *se, struct parts *p, const struct options *opts)
{
	int status = EXIT_MOUNT, rc;

	if (fuse_set_signal_handlers(se) != 0)
		return EXIT_MOUNT;
	signal_fs = p->fs;
	signal(SIGHUP, on_sighup);
	if (fuse_session_mount(se, opts->fuse.mountpoint) != 0) {
		log_err("cannot mount on %s", opts->fuse.mountpoint);
		goto out_signals;
	}
	if (fuse_daemonize(opts->fuse.foreground) != 0)
		goto out_unmount;
	if (!opts->fuse.foreground)
		log_to_syslog();
	if (stop_install(se, opts->fd_mountpoint ? NULL : opts->fuse.mountpoint) < 0) {
		log_err("cannot set up SIGTERM and SIGINT");
		goto out_unmount;
	}
	if (fs_start_notifier(p->fs, se) < 0) {
		log_err("cannot start the notifier thread");
		goto out_unmount;
	}
	if (p->persist && persist_start(p->persist) < 0)
		log_warn("cannot start the thread that keeps the list; keeping it at unmount");
	log_info("mounted %s on %s (ttl %g s, timeout %g s%s)", opts->url, opts->fuse.mountpoint,
		 opts->ttl, opts->timeout, opts->allow_revoke ? ", rmdir revokes keys" : "");
	/* Fetched, mounted and (without -f) detached: the tree answers now. */
	sdnotify_send("READY=1");

	/* A positive result is the signal that ended the loop: a clean exit. */
	status = run_loop(se, &opts->fuse) < 0 ? EXIT_MOUNT : EXIT_OK;
	sdnotify_send("STOPPING=1");
out_unmount:
	/* However the loop ended, a fetch still under way (the notifier's)
	 * is aborted and none starts. */
	stop_request();
	/* Unmounting closes the session's fd, which aborts whatever the
	 * notifier may still be waiting on in the kernel; only then join it.
	 * A mount already gone from here is not unmounted by its path. */
	fs_notifier_stopping(p->fs);
	if (stop_mount_gone() && (rc = stop_let_go(se)) < 0)
		log_warn("cannot let go of the FUSE connection: %s", strerror(-rc));
	fuse_session_unmount(se);
	fs_stop_notifier(p->fs);
out_signals:
	signal(SIGHUP, SIG_DFL);
	signal_fs = NULL;
	stop_remove();
	fuse_remove_signal_handlers(se);
	return status;
}

int main(int argc, char *argv[])
{
	struct fuse_args args = FUSE_ARGS_INIT(argc, argv);
	struct options opts = { 0 };
	struct parts parts = { 0 };
	struct fuse_session *se;
	char err[ERR_MAX];
	int status = EXIT_USAGE, rc;

	/* No token, refresh token or code may end up in a core dump. */
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
	if (opts.login || opts.logout) {
		/* The browser that --login starts must not inherit a token. */
		token_scrub_env();
		status = run_logincmd(&args, &opts);
		goto out;
	}
	/* Before options_fuse_args, which a dead mount would fail with a bare
	 * "Transport endpoint is not connected". */
	if (!opts.fd_mountpoint && mountpoint_check(opts.mountpoint, err, sizeof(err)) < 0) {
		status = fail(EXIT_MOUNT, err);
		goto out;
	}
	if (options_fuse_args(&args, &opts, err, sizeof(err)) < 0) {
		status = fail(EXIT_USAGE, err);
		goto out;
	}
	log_set_level(opts.log_level);
	log_set_debug(opts.fuse.debug);

	if (http_global_init() < 0) {
		status = fail(EXIT_USAGE, "cannot initialise libcurl");
		goto out;
	}
	if ((status = parts_build(&parts, &opts)) != EXIT_OK)
		goto out_parts;
	/* Options are checked before the first request, and the first request
	 * before the mount: a failure leaves nothing mounted. */
	status = EXIT_USAGE;
	if (!(se = fuse_session_new(&args, fs_ops(), sizeof(*fs_ops()), parts.fs)))
		goto out_parts;
	rc = cache_prime(parts.cache, err, sizeof(err));
	if (rc < 0) {
		log_err("cannot fetch the key list from %s: %s", opts.url, err);
		status = rc == -EACCES ? EXIT_REFUSED : EXIT_FETCH;
	} else {
		status = serve(se, &parts, &opts);
	}
	fuse_session_destroy(se);
out_parts:
	parts_free(&parts);
	http_global_cleanup();
out:
	options_free(&opts);
	fuse_opt_free_args(&args);
	return status;
}
