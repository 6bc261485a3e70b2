/*
 * mountpoint: a second omikeyfs on the same path would stack on the first
 * (both then run, the lower one hidden), and one started after the first
 * was killed stacks on a dead mount while the kernel still caches its
 * root.  /proc/self/mountinfo names what is mounted at the path; the
 * mount's own user.omikeyfs.pid tells a live one from a dead one.
 */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/xattr.h>

#include "errmsg.h"
#include "mountpoint.h"

#define FSTYPE "fuse.omikeyfs"

/* mountinfo's escapes (\040 space, \011 tab, \012 newline, \134
 * backslash), undone in place. */
static void unescape(char *s)
{
	char *o = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' && s[2] <= '7' &&
		    s[3] >= '0' && s[3] <= '7') {
			*o++ = (char)((s[1] - '0') << 6 | (s[2] - '0') << 3 | (s[3] - '0'));
			s += 3;
		} else {
			*o++ = *s;
		}
	}
	*o = '\0';
}

/* One mountinfo line's device ("MAJ:MIN"), mount point (unescaped) and
 * file system type, pointing into line; false for a line that has none. */
static bool parse_line(char *line, const char **dev, const char **point, const char **fstype)
{
	char *save = NULL, *field, *sep;
	int i = 0;

	/* ID PARENT MAJ:MIN ROOT POINT OPTIONS [TAGS...] - FSTYPE SOURCE ... */
	for (field = strtok_r(line, " ", &save); field && i < 4;
	     field = strtok_r(NULL, " ", &save)) {
		if (i == 2)
			*dev = field;
		i++;
	}
	if (!field || !(sep = strstr(save ? save : "", " - ")))
		return false;
	unescape(field);
	*point = field;
	*fstype = sep + 3;
	return true;
}

/* The device of the topmost omikeyfs at abs (a canonical path) into dev,
 * or "" when the topmost mount there is none. */
static void omikeyfs_at(const char *abs, char *dev, size_t devlen)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;

	dev[0] = '\0';
	if (!f)
		return;
	/* Later lines are mounted on top of earlier ones: the last match
	 * is what the path shows. */
	while (getline(&line, &cap, f) > 0) {
		const char *d = NULL, *point, *fstype;

		if (!parse_line(line, &d, &point, &fstype) || strcmp(point, abs) != 0)
			continue;
		if (strncmp(fstype, FSTYPE " ", sizeof(FSTYPE)) == 0)
			snprintf(dev, devlen, "%s", d);
		else
			dev[0] = '\0';
	}
	free(line);
	fclose(f);
}

static bool omikeyfs_mounted_at(const char *abs)
{
	char dev[32];

	omikeyfs_at(abs, dev, sizeof(dev));
	return dev[0] != '\0';
}

int mountpoint_device(const char *abs, char *dev, size_t devlen)
{
	omikeyfs_at(abs, dev, devlen);
	return dev[0] ? 0 : -ENOENT;
}

bool mountpoint_device_mounted(const char *dev)
{
	FILE *f = fopen("/proc/self/mountinfo", "re");
	char *line = NULL;
	size_t cap = 0;
	bool found = false;

	/* Not knowing is no reason to stop. */
	if (!f)
		return true;
	while (!found && getline(&line, &cap, f) > 0) {
		const char *d = NULL, *point, *fstype;

		found = parse_line(line, &d, &point, &fstype) && strcmp(d, dev) == 0;
	}
	free(line);
	fclose(f);
	return found;
}

static int dead(const char *path, char *err, size_t errlen)
{
	errmsg_set(err, errlen,
		   "mountpoint %s: a previous mount died (%s); fusermount3 -u %s "
		   "clears it",
		   path, strerror(ENOTCONN), path);
	return -ENOTCONN;
}

int mountpoint_check(const char *path, char *err, size_t errlen)
{
	struct stat st;
	char abs[PATH_MAX], pid[32];
	ssize_t n;

	/* The kernel's cached root may still answer stat for a while. */
	if (stat(path, &st) < 0)
		return errno == ENOTCONN ? dead(path, err, errlen) : 0;
	if (!realpath(path, abs))
		return errno == ENOTCONN ? dead(path, err, errlen) : 0;
	if (!omikeyfs_mounted_at(abs))
		return 0;
	n = getxattr(path, "user.omikeyfs.pid", pid, sizeof(pid) - 1);
	if (n < 0 && errno == ENOTCONN)
		return dead(path, err, errlen);
	if (n > 0) {
		pid[n] = '\0';
		n = strspn(pid, "0123456789") == (size_t)n ? n : 0;
	}
	if (n > 0) {
		errmsg_set(err, errlen,
			   "mountpoint %s is already an omikeyfs mount (pid %s); "
			   "unmount it first: fusermount3 -u %s",
			   path, pid, path);
	} else {
		errmsg_set(err, errlen,
			   "mountpoint %s is already an omikeyfs mount; unmount it "
			   "first: fusermount3 -u %s",
			   path, path);
	}
	return -EBUSY;
}
