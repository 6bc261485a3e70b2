/*
 * usage: what --help and --version print.
 *
 * Kept apart from options.c, which parses and checks the command line: the
 * help text is long and changes with every option, the parser does not.
 * Every option, file, xattr, signal, variable and exit status a user can
 * meet is named here (and in omikeyfs(1)).
 */
#include <curl/curl.h>
#include <fuse_lowlevel.h>
#include <json-c/json_c_version.h>
#include <stdio.h>

#include "firebase.h"
#include "options.h"
#include "usage.h"

/* The synopsis, what omikeyfs is, and signing in. */
static void print_usage(const char *progname)
{
	printf("usage: %s --login [--no-browser] [--port=N] [--provider=google|apple] [API_URL]\n"
	       "       %s [options] [API_URL] MOUNTPOINT\n"
	       "       %s --logout\n\n",
	       progname, progname, progname);
	printf("Mounts the Omi developer API key list (GET API_URL" OPTIONS_LIST_PATH ") as a\n"
	       "read-only tree: one directory per key holding name, key_prefix,\n"
	       "created_at, last_used_at and scopes.  API_URL defaults to " OPTIONS_DEFAULT_URL
	       ";\n"
	       "only https:// is accepted, or http:// to a loopback host.\n\n"
	       "Sign in once with --login (a browser sign-in, as Omi's own CLI does); the\n"
	       "mount then uses and renews that session.  The key list takes a signed-in\n"
	       "session: an omi_dev_ key cannot list keys.\n\n"
	       "Signing in:\n"
	       "    --login                sign in: print the sign-in URL, open it with\n"
	       "                           xdg-open (through a private page, never the URL\n"
	       "                           in argv), wait for the browser's callback on\n"
	       "                           127.0.0.1 (one without this sign-in's state: 400,\n"
	       "                           the wait goes on), save the session file and\n"
	       "                           name who signed in\n"
	       "    --no-browser           only print the URL (open it anywhere), and also\n"
	       "                           read stdin: paste the http://127.0.0.1:PORT/\n"
	       "                           callback?... address the browser ended on;\n"
	       "                           the callback or the paste, whichever is first\n"
	       "                           (a pasted one without the state: refused, the\n"
	       "                           wait goes on)\n"
	       "    --port=N               the loopback port (default: any free one); on a\n"
	       "                           server: ssh -L N:127.0.0.1:N server, then open\n"
	       "                           the URL in the laptop's browser\n"
	       "    --provider=NAME        google (default) or apple\n"
	       "    -o login_timeout=SECONDS  how long to wait for the sign-in (default 300)\n"
	       "    -o firebase_api_key=KEY   Firebase Web API key to sign in with (default\n"
	       "                           Omi's, " FIREBASE_DEFAULT_API_KEY ")\n"
	       "    --logout               remove the session file (only a session file\n"
	       "                           that passes the checks below)\n"
	       "While --login waits, SIGINT (Ctrl-C) or SIGTERM ends it at once (exit 5,\n"
	       "nothing saved); a sign-in cancelled in the browser never reaches omikeyfs.\n\n");
}

/* Credentials, then the mount's options, then libfuse's. */
static void print_mount_options(void)
{
	printf("Credentials of a mount, the first that is given:\n"
	       "    -o session_file=PATH   the session --login saved (also for --login and\n"
	       "                           --logout: where it is saved or removed)\n"
	       "    -o key_file=PATH       a bearer token on the first line of PATH (a\n"
	       "                           regular file; group and others no permission)\n"
	       "    OMI_API_KEY            a bearer token in the environment\n"
	       "    $CREDENTIALS_DIRECTORY/token, else $CREDENTIALS_DIRECTORY/session\n"
	       "                           what systemd's LoadCredential= passed\n"
	       "    (none)                 the default session file, when it exists:\n"
	       "                           $XDG_CONFIG_HOME/omikeyfs/session.json, else\n"
	       "                           ~/.config/omikeyfs/session.json\n\n"
	       "Mount options:\n"
	       "    -o ttl=SECONDS         how long a fetched list is served (default 60)\n"
	       "    -o timeout=SECONDS     limit for one HTTP request (default 30);\n"
	       "                           ttl and timeout: at most 31536000 (365 days)\n"
	       "    -o max_size=BYTES      largest response accepted (default 67108864),\n"
	       "                           1024 to under 2G, with an optional K, M or G\n"
	       "    -o cafile=PATH         also trust the CA certificates in PATH\n"
	       "    -o log_level=LEVEL     error, warning, info (default) or debug: what\n"
	       "                           omikeyfs logs (-d also traces FUSE requests)\n"
	       "    -o uid=N,gid=N         owner and group of the tree (default: the\n"
	       "                           mounting user's); numbers only\n"
	       "    -o umask=OCTAL         taken off the modes dr-xr-xr-x and -r--r--r--\n"
	       "                           (default 0; umask=027: dr-xr-x---, -r--r-----)\n"
	       "    -o fsname=NAME         source shown in /proc/mounts (default API_URL)\n");
	/* In two: ISO C guarantees string literals of 4095 bytes only. */
	printf("    -o cache_dir=DIR       keep the last good list in DIR (made 0700), to\n"
	       "                           start while the API is down and keep mtimes\n"
	       "                           across remounts (default $XDG_CACHE_HOME/omikeyfs,\n"
	       "                           ~/.cache/omikeyfs, for root without HOME\n"
	       "                           /var/cache/omikeyfs; a default that cannot be\n"
	       "                           used is only warned about); each list is kept\n"
	       "                           as the credential's that fetched it, and one\n"
	       "                           whose body passes max_size is not read\n"
	       "    -o no_cache            keep nothing on disk\n");
	printf("    -o allow_revoke        rmdir MOUNTPOINT/DIR revokes that key at the API\n"
	       "                           (DELETE /v1/dev/keys/ID; cannot be undone), for\n"
	       "                           the mounting user only; needs a signed-in\n"
	       "                           session; the mount is then rw,noatime, and every\n"
	       "                           other change still fails with EROFS.  rm -r\n"
	       "                           revokes nothing; rmdir and find -delete do.\n"
	       "    -h, --help             print this help and exit\n"
	       "    -V, --version          print versions and exit\n"
	       "    _netdev,noauto,auto,nofail,user,users,nouser,rw,defaults,x-*,comment=\n"
	       "                           (fstab words) are accepted and ignored\n\n"
	       "FUSE options:\n"
	       "    -f                     foreground: log to stderr (the journal's, under\n"
	       "                           systemd, with priorities)\n"
	       "    -d, -o debug           log_level=debug and libfuse's request trace\n"
	       "                           (implies -f)\n"
	       "    -s                     single-threaded\n"
	       "    -o clone_fd            one /dev/fuse descriptor per thread\n"
	       "    -o max_idle_threads=N  idle worker threads kept (default -1: all)\n"
	       "    -o max_threads=N       worker threads at most (default 10)\n");
}

static void print_notes(void)
{
	printf("\nOption values: ',' ends an option and '\\' escapes the next character:\n"
	       "write \\, for a comma and \\\\ for a backslash (\\NNN: the octal byte NNN).\n"
	       "The mount is ro,noatime (rw,noatime with allow_revoke); allow_other implies\n"
	       "default_permissions.\n"
	       "MOUNTPOINT may be /dev/fd/N, a /dev/fuse already mounted (mount.fuse3 -o\n"
	       "drop_privileges), with only the options mount.fuse3 was given: add\n"
	       "ro,noatime,auto_unmount there (auto_unmount: a failure leaves no mount).\n"
	       "statfs reports no blocks: df lists the mount only with -a.\n"
	       "Status xattrs on the root: user.omikeyfs.fetched_at, user.omikeyfs.stale,\n"
	       "user.omikeyfs.last_error, user.omikeyfs.pid; each key directory has\n"
	       "user.omikeyfs.id and user.omikeyfs.legacy (1: the API sent null scopes).\n"
	       "SIGHUP refreshes the list now; SIGTERM and SIGINT unmount within about a\n"
	       "second, aborting a request under way; an unmount ends the daemon even\n"
	       "while another mount namespace holds a copy.\n"
	       "Environment: OMI_API_KEY, the token when no key_file is given;\n"
	       "FIREBASE_AUTH_EMULATOR_HOST=HOST:PORT (loopback only): Firebase calls go to\n"
	       "that Auth Emulator; XDG_CONFIG_HOME, XDG_CACHE_HOME, HOME: where the default\n"
	       "session file and cache_dir are; CREDENTIALS_DIRECTORY (systemd): its token or\n"
	       "session credential when no other is given; CACHE_DIRECTORY (systemd): the\n"
	       "cache_dir when none is given;\n"
	       "NOTIFY_SOCKET (systemd Type=notify): READY=1 once mounted, STOPPING=1;\n"
	       "JOURNAL_STREAM: log lines carry <N> priorities.  SIGPIPE is ignored.\n"
	       "Files: the session file (0600, no symlink, yours, in a 0700 directory of\n"
	       "yours that is no symlink, else refused; writers lock that directory);\n"
	       "while --login waits, $XDG_RUNTIME_DIR (else /tmp)/omikeyfs-login-XXXXXX/\n"
	       "sign-in.html (0600); in cache_dir a salt and one list-HASH file\n"
	       "per API URL and credential (0600); /usr/sbin/mount.omikeyfs (fstab type\n"
	       "omikeyfs); units omikeyfs@.service (/etc/omikeyfs/MOUNTPOINT.token and\n"
	       "MOUNTPOINT.env, e.g. /etc/omikeyfs/mnt/omi-keys.token), omikeyfs.service\n"
	       "(user; ~/.config/omikeyfs/env),\n"
	       "omikeyfs-backup.service and .timer (/etc/omikeyfs/backup.env) running\n"
	       "/usr/libexec/omikeyfs/omikeyfs-backup.\n"
	       "Exit status: 0 ok (--logout when not signed in too), 1 usage, credentials\n"
	       "or a cache_dir given (--login, --logout: a session file or directory\n"
	       "refused), 2 token or session refused by the API, or renewed as another\n"
	       "user (--login: sign-in refused or failed), 3 first fetch failed\n"
	       "(--login: Omi or Firebase unreachable, or timed out), 4 mount failed (or\n"
	       "MOUNTPOINT is an omikeyfs mount already, or a dead one: fusermount3 -u\n"
	       "MOUNTPOINT clears it), 5 --login cancelled by SIGINT or SIGTERM.\n");
}

void usage_print_version(void)
{
	const curl_version_info_data *cv = curl_version_info(CURLVERSION_NOW);

	printf("omikeyfs %s\n", OMIKEYFS_VERSION);
	printf("libfuse %s\n", fuse_pkgversion());
	printf("libcurl %s\n", cv->version);
	printf("json-c %s\n", json_c_version());
}

void usage_print_help(const char *progname)
{
	/* Not fuse_cmdline_help(): it repeats -h and -V. */
	print_usage(progname);
	print_mount_options();
	fuse_lowlevel_help();
	print_notes();
}
