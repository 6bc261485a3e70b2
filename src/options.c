/*
 * options: omikeyfs's command line.  Every -o NAME=VALUE option is one line
 * of value_options: the field it fills, the function that checks it, and
 * its default.  Values are checked once parsing is done, in table order,
 * so the last one given wins and --help still works next to a bad one.
 * Words without a value are fuse_opt entries in fuse_options; a plain
 * flag is FLAG("name", field) there.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "firebase.h"
#include "http.h"
#include "log.h"
#include "optfiles.h"
#include "options.h"
#include "url.h"
#include "usage.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Each checks text, the value of option name, into *field; -1 with err. */
typedef int value_parser(const char *name, const char *text, void *field, char *err, size_t errlen);

static int parse_string(const char *name, const char *text, void *field, char *err, size_t errlen)
{
	char **out = field;

	free(*out);
	if (!(*out = strdup(text))) {
		errmsg_set(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* The longest ttl or timeout: a year (365 days). */
#define SECONDS_MAX (86400 * 365)

/* A finite number of seconds up to SECONDS_MAX; 0 only when zero_ok. */
static int parse_secs(const char *name, const char *text, bool zero_ok, double *out, char *err,
		      size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v) || v < 0 || (!zero_ok && v == 0) ||
	    v > SECONDS_MAX) {
		errmsg_set(err, errlen,
			   "invalid %s=%s (expected %s number of seconds, at most "
			   "%d: 365 days)",
			   name, text, zero_ok ? "a non-negative" : "a positive", SECONDS_MAX);
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_seconds(const char *name, const char *text, void *field, char *err, size_t errlen)
{
	return parse_secs(name, text, false, field, err, errlen);
}

static int parse_seconds_or_zero(const char *name, const char *text, void *field, char *err,
				 size_t errlen)
{
	return parse_secs(name, text, true, field, err, errlen);
}

/* Bytes from 1024 to under 2G, with an optional K, M or G. */
static int parse_size(const char *name, const char *text, void *field, char *err, size_t errlen)
{
	char *end;
	unsigned long long v;
	unsigned shift = 0;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text || *text == '-')
		goto bad;
	if (*end == 'k' || *end == 'K')
		shift = 10, end++;
	else if (*end == 'm' || *end == 'M')
		shift = 20, end++;
	else if (*end == 'g' || *end == 'G')
		shift = 30, end++;
	/* Checked before shifting: 17179869185G would wrap to 1G. */
	if (*end || v > ((1ULL << 31) - 1) >> shift)
		goto bad;
	v <<= shift;
	if (v < 1024)
		goto bad;
	*(size_t *)field = (size_t)v;
	return 0;
bad:
	errmsg_set(err, errlen,
		   "invalid %s=%s (expected bytes from 1024 to under 2G, "
		   "with an optional K, M or G)",
		   name, text);
	return -1;
}

/* A uid or gid as sshfs and s3fs take them: decimal, 0 to 4294967294
 * ((uid_t)-1 means "no change" to chown(2), so it is no owner). */
static int parse_id(const char *name, const char *text, void *field, char *err, size_t errlen)
{
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(text, &end, 10);
	if (errno || end == text || *text < '0' || *text > '9' || *end || v > 4294967294ULL) {
		errmsg_set(err, errlen, "invalid %s=%s (expected a number from 0 to 4294967294)",
			   name, text);
		return -1;
	}
	*(uint32_t *)field = (uint32_t)v;
	return 0;
}

_Static_assert(sizeof(uid_t) == sizeof(uint32_t) && sizeof(gid_t) == sizeof(uint32_t),
	       "parse_id fills 32-bit ids");

static int parse_umask(const char *name, const char *text, void *field, char *err, size_t errlen)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 8);
	if (errno || end == text || *text < '0' || *text > '7' || *end || v > 0777) {
		errmsg_set(err, errlen, "invalid %s=%s (expected an octal mode from 0 to 0777)",
			   name, text);
		return -1;
	}
	*(mode_t *)field = (mode_t)v;
	return 0;
}

static int parse_log_level(const char *name, const char *text, void *field, char *err,
			   size_t errlen)
{
	int level = log_level_parse(text);

	if (level < 0) {
		errmsg_set(err, errlen, "invalid %s=%s (expected error, warning, info or debug)",
			   name, text);
		return -1;
	}
	*(int *)field = level;
	return 0;
}

/* --port=N: a TCP port, 0 for any free one. */
static int parse_port(const char *name, const char *text, void *field, char *err, size_t errlen)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(text, &end, 10);
	if (errno || end == text || *text < '0' || *text > '9' || *end || v > 65535) {
		errmsg_set(err, errlen, "invalid %s=%s (expected a port from 0 to 65535)", name,
			   text);
		return -1;
	}
	*(int *)field = (int)v;
	return 0;
}

static int parse_provider(const char *name, const char *text, void *field, char *err, size_t errlen)
{
	if (strcmp(text, "google") != 0 && strcmp(text, "apple") != 0) {
		errmsg_set(err, errlen, "invalid %s=%s (expected google or apple)", name, text);
		return -1;
	}
	return parse_string(name, text, field, err, errlen);
}

struct value_option {
	const char *name;
	size_t offset; /* of the field in struct options */
	value_parser *parse;
	const char *fallback; /* parsed when the option is not given, or NULL */
};

#define VALUE(n, field, parse, fallback)                                                           \
	{                                                                                          \
		n, offsetof(struct options, field), parse, fallback                                \
	}

static const struct value_option value_options[] = {
	VALUE("key_file", key_file, parse_string, NULL),
	VALUE("ttl", ttl, parse_seconds_or_zero, "60"),
	VALUE("timeout", timeout, parse_seconds, "30"),
	VALUE("max_size", max_size, parse_size, "67108864"),
	VALUE("cafile", cafile, parse_string, NULL),
	VALUE("log_level", log_level, parse_log_level, "info"),
	VALUE("uid", uid, parse_id, NULL),
	VALUE("gid", gid, parse_id, NULL),
	VALUE("umask", umask, parse_umask, "0"),
	VALUE("cache_dir", cache_dir, parse_string, NULL),
	VALUE("session_file", session_file, parse_string, NULL),
	VALUE("firebase_api_key", firebase_api_key, parse_string, FIREBASE_DEFAULT_API_KEY),
	VALUE("login_timeout", login_timeout, parse_seconds, "300"),
	VALUE("--port", port, parse_port, "0"),
	VALUE("--provider", provider, parse_provider, "google"),
};

struct parse_state {
	struct options o;
	char *text[ARRAY_SIZE(value_options)]; /* the last value given, unchecked */
	char *positional[2];
	int npositional;
	bool too_many;
	bool show_help;
	bool show_version;
	bool default_permissions;
	bool ro;
	bool no_memory;
};

#define FLAG(t, field)                                                                             \
	{                                                                                          \
		t, offsetof(struct parse_state, o.field), 1                                        \
	}

enum { KEY_HELP, KEY_VERSION, KEY_ALLOW_OTHER, KEY_DEFAULT_PERMISSIONS, KEY_RO };

static const struct fuse_opt fuse_options[] = {
	FUSE_OPT_KEY("-h", KEY_HELP), FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION), FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FUSE_OPT_KEY("default_permissions", KEY_DEFAULT_PERMISSIONS), FLAG("no_cache", no_cache),
	FLAG("allow_revoke", allow_revoke), FUSE_OPT_KEY("ro", KEY_RO), FLAG("--login", login),
	FLAG("--logout", logout), FLAG("--no-browser", no_browser),
	/* Words fstab and mount(8) pass that mean nothing here. */
	FUSE_OPT_KEY("_netdev", FUSE_OPT_KEY_DISCARD), FUSE_OPT_KEY("noauto", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("auto", FUSE_OPT_KEY_DISCARD), FUSE_OPT_KEY("nofail", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("user", FUSE_OPT_KEY_DISCARD), FUSE_OPT_KEY("users", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("nouser", FUSE_OPT_KEY_DISCARD), FUSE_OPT_KEY("rw", FUSE_OPT_KEY_DISCARD),
	FUSE_OPT_KEY("defaults", FUSE_OPT_KEY_DISCARD), FUSE_OPT_END
};

/* Keeps the text of a NAME=VALUE option of ours; 1 when arg is not one. */
static int take_value(struct parse_state *st, const char *arg)
{
	for (size_t i = 0; i < ARRAY_SIZE(value_options); i++) {
		size_t len = strlen(value_options[i].name);

		if (strncmp(arg, value_options[i].name, len) != 0 || arg[len] != '=')
			continue;
		free(st->text[i]);
		if (!(st->text[i] = strdup(arg + len + 1))) {
			st->no_memory = true;
			return -1;
		}
		return 0;
	}
	return 1;
}

static int option_proc(void *data, const char *arg, int key, struct fuse_args *outargs)
{
	struct parse_state *st = data;

	switch (key) {
	case KEY_HELP:
		st->show_help = true;
		return 0;
	case KEY_VERSION:
		st->show_version = true;
		return 0;
	case KEY_ALLOW_OTHER:
		st->o.allow_other = 1;
		return 1;
	case KEY_DEFAULT_PERMISSIONS:
		st->default_permissions = true;
		return 1;
	case KEY_RO:
		st->ro = true;
		return 1;
	case FUSE_OPT_KEY_OPT:
		/* x-systemd.automount, x-gvfs-show, comment=...: for other
		 * programs reading fstab, not for us. */
		if (strncmp(arg, "x-", 2) == 0 || strncmp(arg, "comment=", 8) == 0)
			return 0;
		return take_value(st, arg);
	case FUSE_OPT_KEY_NONOPT:
		if (st->npositional == 2) {
			st->too_many = true;
			return 0;
		}
		if (!(st->positional[st->npositional++] = strdup(arg))) {
			st->no_memory = true;
			return -1;
		}
		return 0;
	default:
		return 1;
	}
}

/* The N of a mountpoint "/dev/fd/N" (how mount.fuse3 -o drop_privileges
 * hands over a /dev/fuse it has already mounted), or -1. */
static int mountpoint_fd(const char *path)
{
	const char *digits = path + strlen("/dev/fd/");
	char *end;
	long fd;

	if (strncmp(path, "/dev/fd/", strlen("/dev/fd/")) != 0 || *digits < '0' || *digits > '9')
		return -1;
	errno = 0;
	fd = strtol(digits, &end, 10);
	return errno || *end || fd > INT_MAX ? -1 : (int)fd;
}

/* What to do, and where: --login or --logout (at most an API_URL), or a
 * mount (API_URL and MOUNTPOINT); fills o->url and o->mountpoint. */
static int check_command(struct parse_state *st, const char *progname, char *err, size_t errlen)
{
	struct options *o = &st->o;

	if (o->login && o->logout) {
		errmsg_set(err, errlen, "--login and --logout exclude each other");
		return -1;
	}
	if (o->login || o->logout) {
		/* Signing in mounts nothing: at most the API_URL. */
		if (st->too_many || st->npositional > 1) {
			errmsg_set(err, errlen, "usage: %s %s [options] [API_URL] (see --help)",
				   progname, o->login ? "--login" : "--logout");
			return -1;
		}
	} else if (st->too_many || st->npositional == 0) {
		errmsg_set(err, errlen, "usage: %s [options] [API_URL] MOUNTPOINT (see --help)",
			   progname);
		return -1;
	} else {
		o->mountpoint = st->positional[--st->npositional];
	}
	o->url = st->npositional ? st->positional[--st->npositional] : strdup(OPTIONS_DEFAULT_URL);
	if (!o->url) {
		errmsg_set(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* allow_revoke: rmdir reaches omikeyfs only on a rw mount, and only the
 * mounting user may revoke: a tree shown as another user's would invite
 * them. */
static int check_revoke(const struct parse_state *st, char *err, size_t errlen)
{
	const struct options *o = &st->o;

	if (o->allow_revoke && st->ro) {
		errmsg_set(err, errlen,
			   "allow_revoke needs a read-write mount: drop ro (every change but "
			   "rmdir still fails with EROFS)");
		return -1;
	}
	if (o->allow_revoke && o->uid != (uid_t)-1 && o->uid != getuid()) {
		errmsg_set(err, errlen,
			   "allow_revoke with uid=%u: only the mounting user (uid %u) may revoke, "
			   "so the tree must be theirs; mount as uid %u instead",
			   (unsigned)o->uid, (unsigned)getuid(), (unsigned)o->uid);
		return -1;
	}
	return 0;
}

/* Everything options_parse checks once fuse_opt is done with argv. */
static int check(struct parse_state *st, const char *progname, char *err, size_t errlen)
{
	struct options *o = &st->o;

	if (check_command(st, progname, err, errlen) < 0)
		return -1;
	o->fd_mountpoint = o->mountpoint && mountpoint_fd(o->mountpoint) >= 0;
	/* Not given: the mounting user's, as today (fs keeps getuid()). */
	o->uid = (uid_t)-1;
	o->gid = (gid_t)-1;

	for (size_t i = 0; i < ARRAY_SIZE(value_options); i++) {
		const struct value_option *v = &value_options[i];
		const char *text = st->text[i] ? st->text[i] : v->fallback;

		if (text && v->parse(v->name, text, (char *)o + v->offset, err, errlen) < 0)
			return -1;
	}
	if (url_check(o->url, err, errlen) < 0)
		return -1;
	if (!optfiles_systemd_defaults(o)) {
		errmsg_set(err, errlen, "out of memory");
		return -1;
	}
	/* A mount made before omikeyfs ran has the options mount.fuse3 was
	 * given, which are the ones we see: default_permissions added here
	 * would not reach the kernel, and without it allow_other lets every
	 * user past the modes. */
	if (o->fd_mountpoint && o->allow_other && !st->default_permissions) {
		errmsg_set(err, errlen,
			   "mountpoint %s: allow_other needs default_permissions among "
			   "the options the mount was made with",
			   o->mountpoint);
		return -1;
	}
	if (check_revoke(st, err, errlen) < 0 || optfiles_check(o, err, errlen) < 0)
		return -1;
	if (!(o->list_url = url_join(o->url, OPTIONS_LIST_PATH))) {
		errmsg_set(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

int options_parse(struct fuse_args *args, struct options *opts, char *err, size_t errlen)
{
	struct parse_state st = { 0 };
	const char *progname = args->argv[0];
	int rc = -1;

	err[0] = '\0';
	if (fuse_opt_parse(args, &st, fuse_options, option_proc) < 0) {
		if (st.no_memory)
			errmsg_set(err, errlen, "out of memory");
	} else if (st.show_help) {
		usage_print_help(progname);
		rc = 1;
	} else if (st.show_version) {
		usage_print_version();
		rc = 1;
	} else {
		rc = check(&st, progname, err, errlen);
	}
	for (size_t i = 0; i < ARRAY_SIZE(value_options); i++)
		free(st.text[i]);
	for (int i = 0; i < st.npositional; i++)
		free(st.positional[i]);
	*opts = st.o;
	return rc;
}

/* fsname=URL, first, so that a -o fsname= given on the command line wins.
 * Escaped: fuse_opt splits on ',' and takes '\' as an escape. */
static int add_fsname(struct fuse_args *args, const char *url)
{
	char *text, *opt = NULL;
	int rc = -1;

	if (asprintf(&text, "fsname=%s", url) < 0)
		return -1;
	if (fuse_opt_add_opt_escaped(&opt, text) == 0 && fuse_opt_insert_arg(args, 1, "-o") == 0)
		rc = fuse_opt_insert_arg(args, 2, opt);
	free(text);
	free(opt);
	return rc;
}

int options_fuse_args(struct fuse_args *args, struct options *opts, char *err, size_t errlen)
{
	struct stat st;

	err[0] = '\0';
	if (opts->fd_mountpoint) {
		/* libfuse takes the descriptor as the session's fd. */
		if (fcntl(mountpoint_fd(opts->mountpoint), F_GETFD) < 0) {
			errmsg_set(err, errlen, "mountpoint %s: %s", opts->mountpoint,
				   strerror(errno));
			return -1;
		}
	} else if (stat(opts->mountpoint, &st) < 0) {
		errmsg_set(err, errlen, "mountpoint %s: %s", opts->mountpoint, strerror(errno));
		return -1;
	} else if (!S_ISDIR(st.st_mode)) {
		errmsg_set(err, errlen, "mountpoint %s: not a directory", opts->mountpoint);
		return -1;
	}
	/* Read-only, no atime: every read would otherwise cost a round trip
	 * to update atime, and the kernel refuses writes before they get here.
	 * allow_revoke needs rw for rmdir to get here; fs.c refuses the rest. */
	if (fuse_opt_add_arg(args, opts->allow_revoke ? "-orw,noatime,subtype=omikeyfs"
						      : "-oro,noatime,subtype=omikeyfs") < 0 ||
	    add_fsname(args, opts->url) < 0 ||
	    (opts->allow_other && fuse_opt_add_arg(args, "-odefault_permissions") < 0) ||
	    fuse_opt_add_arg(args, opts->mountpoint) < 0) {
		errmsg_set(err, errlen, "out of memory");
		return -1;
	}
	return fuse_parse_cmdline(args, &opts->fuse) != 0 ? -1 : 0;
}

void options_http_config(const struct options *opts, const char *url, size_t max_size,
			 struct http_config *config)
{
	memset(config, 0, sizeof(*config));
	config->url = url;
	config->timeout = (long)ceil(opts->timeout);
	config->connect_timeout = config->timeout < 10 ? config->timeout : 10;
	config->max_size = max_size;
	config->cafile = opts->cafile;
}

void options_free(struct options *opts)
{
	free(opts->url);
	free(opts->list_url);
	free(opts->mountpoint);
	free(opts->key_file);
	free(opts->cafile);
	free(opts->cache_dir);
	free(opts->provider);
	free(opts->session_file);
	free(opts->firebase_api_key);
	free(opts->fuse.mountpoint);
}
