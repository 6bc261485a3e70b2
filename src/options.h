/* options: the command line: omikeyfs's own -o options, checked, and the
 * FUSE options every mount gets (--help and --version print through usage.h). */
#ifndef OMIKEYFS_OPTIONS_H
#define OMIKEYFS_OPTIONS_H

#include <fuse_lowlevel.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

struct http_config;

/* The API a mount lists when no API_URL is given, and the list's path. */
#define OPTIONS_DEFAULT_URL "https://api.omi.me"
#define OPTIONS_LIST_PATH "/v1/dev/keys"

struct options {
	char *url;              /* API base URL, as url_check accepts it */
	char *list_url;         /* url + "/v1/dev/keys" */
	char *mountpoint;       /* as given; opts.fuse.mountpoint once resolved */
	char *key_file;         /* absolute (a relative one joined to the working
				 * directory, links kept), or NULL */
	char *cafile;           /* absolute and readable, or NULL */
	char *cache_dir;        /* where the last good list is kept; NULL: nowhere */
	int no_cache;           /* -o no_cache: keep nothing */
	bool cache_dir_default; /* cache_dir is the default, not given */
	double ttl;             /* seconds a fetched list is served, >= 0 */
	double timeout;         /* seconds for one HTTP request, > 0 */
	size_t max_size;        /* largest response in bytes */
	int allow_other;        /* also left for libfuse to see */
	int allow_revoke;       /* rmdir of a key directory revokes the key; rw */
	int log_level;          /* LOG_ERR .. LOG_DEBUG (log_level_parse) */
	uid_t uid;              /* owner of the tree, or (uid_t)-1: the mounting user */
	gid_t gid;              /* group of the tree, or (gid_t)-1: the mounting user's */
	mode_t umask;           /* taken off every mode, <= 0777 */
	bool fd_mountpoint;     /* /dev/fd/N: mount.fuse3 (drop_privileges) mounted it */
	/* Signing in (omikeyfs --login, --logout) and the session of a mount. */
	int login;                     /* --login: sign in instead of mounting */
	int logout;                    /* --logout: remove the session file */
	int no_browser;                /* --no-browser: only print the sign-in URL */
	int port;                      /* --port=N: the loopback port, 0: any free one */
	char *provider;                /* --provider=google|apple */
	char *session_file;            /* absolute, or NULL: the default (session_default_path) */
	bool session_copy;             /* session_file is systemd's read-only copy (a credential) */
	char *firebase_api_key;        /* the Firebase Web API key --login signs in with */
	double login_timeout;          /* seconds --login waits for the browser */
	struct fuse_cmdline_opts fuse; /* filled by options_fuse_args */
};

/*
 * Takes omikeyfs's options and the positional arguments out of args and
 * checks them; what is left is for libfuse.  With --login or --logout the
 * only positional argument is an optional API_URL and mountpoint is NULL.  Returns 0 to go on, 1
 * once
 * --help or --version has been printed (exit 0), or -1 with a one-line
 * reason in err (empty when libfuse has already said why).
 */
int options_parse(struct fuse_args *args, struct options *opts, char *err, size_t errlen);

/*
 * Checks the mountpoint (a directory, or /dev/fd/N: a /dev/fuse descriptor
 * whose mount is already made), adds the mount options omikeyfs always uses
 * (ro, noatime, ...) and lets libfuse parse what is left into opts->fuse.
 * Returns 0, or -1 with err set as for options_parse.
 */
int options_fuse_args(struct fuse_args *args, struct options *opts, char *err, size_t errlen);

/*
 * The settings of an HTTP client to url the options call for: timeout for
 * the whole request, at most 10 s of it to connect, cafile; responses up
 * to max_size.  Never cancelled: a caller that stops sets cancelled.
 */
void options_http_config(const struct options *opts, const char *url, size_t max_size,
			 struct http_config *config);

void options_free(struct options *opts);

#endif
