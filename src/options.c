/*
 * options: omikeyfs's command line.  Every -o NAME=VALUE option is one line
 * of value_options: the field it fills, the function that checks it, and
 * its default.  Values are checked once parsing is done, in table order,
 * so the last one given wins and --help still works next to a bad one.
 * Words without a value are fuse_opt entries in fuse_options; a plain
 * flag is FLAG("name", field) there.
 */
#include <curl/curl.h>
#include <errno.h>
#include <json-c/json_c_version.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "http.h"
#include "options.h"

#define DEFAULT_URL "https://api.omi.me"
#define LIST_PATH "/v1/dev/keys"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Each checks text, the value of option name, into *field; -1 with err. */
typedef int value_parser(const char *name, const char *text, void *field, char *err,
			 size_t errlen);

static int parse_string(const char *name, const char *text, void *field, char *err,
			size_t errlen)
{
	char **out = field;

	free(*out);
	if (!(*out = strdup(text))) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return 0;
}

/* A finite number of seconds up to a year; 0 only when zero_ok. */
static int parse_secs(const char *name, const char *text, bool zero_ok, double *out,
		      char *err, size_t errlen)
{
	char *end;
	double v;

	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || *end || !isfinite(v) || v < 0 || (!zero_ok && v == 0) ||
	    v > 86400 * 365.0) {
		snprintf(err, errlen, "invalid %s=%s (expected %s number of seconds)",
			 name, text, zero_ok ? "a non-negative" : "a positive");
		return -1;
	}
	*out = v;
	return 0;
}

static int parse_seconds(const char *name, const char *text, void *field, char *err,
			 size_t errlen)
{
	return parse_secs(name, text, false, field, err, errlen);
}

static int parse_seconds_or_zero(const char *name, const char *text, void *field, char *err,
				 size_t errlen)
{
	return parse_secs(name, text, true, field, err, errlen);
}

/* Bytes from 1024 to under 2G, with an optional K, M or G. */
static int parse_size(const char *name, const char *text, void *field, char *err,
		      size_t errlen)
{
	char *end;
	unsigned long long v;

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
	*(size_t *)field = (size_t)v;
	return 0;
bad:
	snprintf(err, errlen, "invalid %s=%s (expected bytes from 1024 to under 2G, "
		 "with an optional K, M or G)", name, text);
	return -1;
}

struct value_option {
	const char *name;
	size_t offset;          /* of the field in struct options */
	value_parser *parse;
	const char *fallback;   /* parsed when the option is not given, or NULL */
};

#define VALUE(n, field, parse, fallback) \
	{ n, offsetof(struct options, field), parse, fallback }

static const struct value_option value_options[] = {
	VALUE("key_file", key_file, parse_string, NULL),
	VALUE("ttl", ttl, parse_seconds_or_zero, "60"),
	VALUE("timeout", timeout, parse_seconds, "30"),
	VALUE("max_size", max_size, parse_size, "67108864"),
	VALUE("cafile", cafile, parse_string, NULL),
	VALUE("cache_dir", cache_dir, parse_string, NULL),
};

struct parse_state {
	struct options o;
	char *text[ARRAY_SIZE(value_options)]; /* the last value given, unchecked */
	char *positional[2];
	int npositional;
	bool too_many;
	bool show_help;
	bool show_version;
	bool no_memory;
};

#define FLAG(t, field) { t, offsetof(struct parse_state, o.field), 1 }

enum { KEY_HELP, KEY_VERSION, KEY_ALLOW_OTHER };

static const struct fuse_opt fuse_options[] = {
	FUSE_OPT_KEY("-h", KEY_HELP),
	FUSE_OPT_KEY("--help", KEY_HELP),
	FUSE_OPT_KEY("-V", KEY_VERSION),
	FUSE_OPT_KEY("--version", KEY_VERSION),
	FUSE_OPT_KEY("allow_other", KEY_ALLOW_OTHER),
	FLAG("no_cache", no_cache),
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
	       "    -o cache_dir=DIR       keep the last good list in DIR (made 0700), to\n"
	       "                           start while the API is down and keep mtimes\n"
	       "                           across remounts (default $XDG_CACHE_HOME/omikeyfs,\n"
	       "                           ~/.cache/omikeyfs, for root without HOME\n"
	       "                           /var/cache/omikeyfs)\n"
	       "    -o no_cache            keep nothing on disk\n"
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

static char *join_url(const char *base)
{
	size_t len = strlen(base);
	char *url;

	while (len && base[len - 1] == '/')
		len--;
	if (asprintf(&url, "%.*s%s", (int)len, base, LIST_PATH) < 0)
		return NULL;
	return url;
}

/* $XDG_CACHE_HOME/omikeyfs (absolute only), ~/.cache/omikeyfs, or for root
 * without a home (a mount unit) /var/cache/omikeyfs; NULL when none fits,
 * with errno 0, or ENOMEM. */
static char *default_cache_dir(void)
{
	const char *xdg = getenv("XDG_CACHE_HOME"), *home = getenv("HOME");
	char *dir = NULL;
	int rc = 0;

	errno = 0;
	if (xdg && xdg[0] == '/')
		rc = asprintf(&dir, "%s/omikeyfs", xdg);
	else if (home && home[0] == '/' && strcmp(home, "/") != 0)
		rc = asprintf(&dir, "%s/.cache/omikeyfs", home);
	else if (geteuid() == 0)
		dir = strdup("/var/cache/omikeyfs");
	if (rc < 0) {
		errno = ENOMEM;
		dir = NULL;
	}
	return dir;
}

/* Everything options_parse checks once fuse_opt is done with argv. */
static int check(struct parse_state *st, const char *progname, char *err, size_t errlen)
{
	struct options *o = &st->o;

	if (st->too_many || st->npositional == 0) {
		snprintf(err, errlen, "usage: %s [options] [API_URL] MOUNTPOINT (see --help)",
			 progname);
		return -1;
	}
	o->mountpoint = st->positional[--st->npositional];
	o->url = st->npositional ? st->positional[--st->npositional] : strdup(DEFAULT_URL);
	if (!o->url)
		goto no_memory;

	for (size_t i = 0; i < ARRAY_SIZE(value_options); i++) {
		const struct value_option *v = &value_options[i];
		const char *text = st->text[i] ? st->text[i] : v->fallback;

		if (text && v->parse(v->name, text, (char *)o + v->offset, err, errlen) < 0)
			return -1;
	}
	if (http_check_url(o->url, err, errlen) < 0)
		return -1;
	/* Paths made absolute: the daemon runs in "/", and libcurl may load
	 * the CA file again, as omikeyfs reads the key file again after a 401. */
	if (o->cafile && (!make_absolute(&o->cafile) || access(o->cafile, R_OK) < 0)) {
		snprintf(err, errlen, "cafile %s: %s", o->cafile, strerror(errno));
		return -1;
	}
	if (o->key_file)
		make_absolute(&o->key_file); /* reading it says why if not */
	if (o->no_cache) {
		free(o->cache_dir);
		o->cache_dir = NULL;
	} else if (!o->cache_dir) {
		if (!(o->cache_dir = default_cache_dir()) && errno)
			goto no_memory;
		o->cache_dir_default = true;
	} else if (o->cache_dir && !o->cache_dir[0]) {
		snprintf(err, errlen, "invalid cache_dir= (expected a directory)");
		return -1;
	}
	if (!(o->list_url = join_url(o->url)))
		goto no_memory;
	return 0;
no_memory:
	snprintf(err, errlen, "out of memory");
	return -1;
}

int options_parse(struct fuse_args *args, struct options *opts, char *err, size_t errlen)
{
	struct parse_state st = { 0 };
	const char *progname = args->argv[0];
	int rc = -1;

	err[0] = '\0';
	if (fuse_opt_parse(args, &st, fuse_options, option_proc) < 0) {
		if (st.no_memory)
			snprintf(err, errlen, "out of memory");
	} else if (st.show_help) {
		print_usage(progname);
		fuse_cmdline_help();
		fuse_lowlevel_help();
		rc = 1;
	} else if (st.show_version) {
		print_version();
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

int options_fuse_args(struct fuse_args *args, struct options *opts, char *err, size_t errlen)
{
	struct stat st;

	err[0] = '\0';
	if (stat(opts->mountpoint, &st) < 0) {
		snprintf(err, errlen, "mountpoint %s: %s", opts->mountpoint, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode)) {
		snprintf(err, errlen, "mountpoint %s: not a directory", opts->mountpoint);
		return -1;
	}
	/* Read-only, no atime: every read would otherwise cost a round trip
	 * to update atime, and the kernel refuses writes before they get here. */
	if (fuse_opt_add_arg(args, "-oro,noatime,subtype=omikeyfs") < 0 ||
	    fuse_opt_add_arg(args, "-ofsname=omikeyfs") < 0 ||
	    (opts->allow_other && fuse_opt_add_arg(args, "-odefault_permissions") < 0) ||
	    fuse_opt_add_arg(args, opts->mountpoint) < 0) {
		snprintf(err, errlen, "out of memory");
		return -1;
	}
	return fuse_parse_cmdline(args, &opts->fuse) != 0 ? -1 : 0;
}

void options_free(struct options *opts)
{
	free(opts->url);
	free(opts->list_url);
	free(opts->mountpoint);
	free(opts->key_file);
	free(opts->cafile);
	free(opts->cache_dir);
	free(opts->fuse.mountpoint);
}
