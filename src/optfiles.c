/*
 * optfiles: the files and directories the options name.  Relative paths
 * are made absolute (the daemon runs in "/"), and what is not given is
 * found where the environment says: systemd's credentials and cache
 * directory, then XDG's or the home's cache.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "errmsg.h"
#include "optfiles.h"
#include "options.h"

/*
 * Replaces a relative *path by the working directory joined with it; false
 * (errno set) when that cannot be had.  Links are not resolved, nor "." or
 * ".." dropped (either changes what a path names when links are on the
 * way): the file is opened again by this name, so a key file that is a
 * symlink swapped to rotate it (Kubernetes: token -> ..data/token,
 * ..data -> a dated directory) is read at its new target.
 */
static bool make_absolute(char **path)
{
	char *cwd, *abs;
	const char *rel = *path;

	if (rel[0] == '/')
		return true;
	if (!(cwd = getcwd(NULL, 0)))
		return false;
	/* "./" in front adds nothing but noise to messages. */
	while (rel[0] == '.' && rel[1] == '/') {
		rel += 2;
		while (*rel == '/')
			rel++;
	}
	if (asprintf(&abs, "%s%s%s", cwd, strcmp(cwd, "/") == 0 ? "" : "/", rel) < 0) {
		free(cwd);
		errno = ENOMEM;
		return false;
	}
	free(cwd);
	free(*path);
	*path = abs;
	return true;
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

/* dir/name, when something is there (or cannot be told: opening it will
 * say why); NULL with errno 0 when nothing is, or ENOMEM. */
static char *credential_at(const char *dir, const char *name)
{
	struct stat st;
	char *path;

	if (asprintf(&path, "%s/%s", dir, name) < 0) {
		errno = ENOMEM;
		return NULL;
	}
	if (lstat(path, &st) < 0 && errno == ENOENT) {
		free(path);
		path = NULL;
	}
	errno = 0;
	return path;
}

/*
 * What systemd hands a service: LoadCredential=token:... or session:...
 * in $CREDENTIALS_DIRECTORY, when no other credential is given, and
 * CacheDirectory= in $CACHE_DIRECTORY (the first of a ':' list), when no
 * cache_dir is.  Paths taken from the environment never pass through
 * fuse_opt, which would read a '\' in them (a unit's \x2d) as an escape.
 * false (errno ENOMEM) when out of memory.
 */
bool optfiles_systemd_defaults(struct options *o)
{
	const char *creds = getenv("CREDENTIALS_DIRECTORY");
	const char *cache = getenv("CACHE_DIRECTORY");

	if (!o->login && !o->logout && !o->key_file && !o->session_file && !getenv("OMI_API_KEY") &&
	    creds && creds[0] == '/') {
		if (!(o->key_file = credential_at(creds, "token")) && errno)
			return false;
		if (!o->key_file) {
			if (!(o->session_file = credential_at(creds, "session")) && errno)
				return false;
			o->session_copy = o->session_file != NULL;
		}
	}
	if (!o->no_cache && !o->cache_dir && cache && cache[0] == '/' &&
	    !(o->cache_dir = strndup(cache, strcspn(cache, ":"))))
		return false;
	return true;
}

/* The files named: cafile, key_file and session_file made absolute (the
 * daemon runs in "/", and libcurl may load the CA file again, as omikeyfs
 * reads the key file again after a 401), cache_dir chosen. */
int optfiles_check(struct options *o, char *err, size_t errlen)
{
	if (o->cafile && (!make_absolute(&o->cafile) || access(o->cafile, R_OK) < 0)) {
		errmsg_set(err, errlen, "cafile %s: %s", o->cafile, strerror(errno));
		return -1;
	}
	if (o->key_file && !make_absolute(&o->key_file)) {
		errmsg_set(err, errlen, "key_file %s: %s", o->key_file, strerror(errno));
		return -1;
	}
	if (o->no_cache) {
		free(o->cache_dir);
		o->cache_dir = NULL;
	} else if (!o->cache_dir) {
		if (!(o->cache_dir = default_cache_dir()) && errno) {
			errmsg_set(err, errlen, "out of memory");
			return -1;
		}
		o->cache_dir_default = true;
	} else if (o->cache_dir && !o->cache_dir[0]) {
		errmsg_set(err, errlen, "invalid cache_dir= (expected a directory)");
		return -1;
	}
	if (o->session_file && !*o->session_file) {
		errmsg_set(err, errlen, "invalid session_file= (expected a path)");
		return -1;
	}
	if (o->session_file && !make_absolute(&o->session_file)) {
		errmsg_set(err, errlen, "session_file %s: %s", o->session_file, strerror(errno));
		return -1;
	}
	return 0;
}
