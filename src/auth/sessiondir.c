/*
 * sessiondir: where a session file lives.  Every check is made on the
 * open directory, and every file in it is then reached with openat and
 * renameat from that descriptor, so what was checked is what is used.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "errmsg.h"
#include "session.h"
#include "sessiondir.h"

void sessiondir_close(struct sessiondir *w)
{
	if (w->lockfd >= 0)
		close(w->lockfd); /* drops the lock */
	if (w->dirfd >= 0)
		close(w->dirfd);
	free(w->dir);
	w->dir = NULL;
	w->dirfd = w->lockfd = -1;
}

int sessiondir_split(struct sessiondir *w, const char *path, char *err, size_t errlen)
{
	const char *slash = strrchr(path, '/');

	memset(w, 0, sizeof(*w));
	w->path = path;
	w->dirfd = w->lockfd = -1;
	if (!slash)
		w->dir = strdup(".");
	else if (slash == path)
		w->dir = strdup("/");
	else
		w->dir = strndup(path, (size_t)(slash - path));
	w->base = slash ? slash + 1 : path;
	if (!w->dir) {
		errmsg_set(err, errlen, "out of memory");
		return -ENOMEM;
	}
	if (!w->base[0] || strcmp(w->base, ".") == 0 || strcmp(w->base, "..") == 0) {
		errmsg_set(err, errlen, "session file %s names a directory, not a file", path);
		return -EISDIR;
	}
	return 0;
}

/*
 * Open the directory and hold it to the rules of cache_dir: the directory
 * itself (never a symbolic link to one), the caller's, and closed to group
 * and others, so no other user can swap, plant or read what is in it.
 * -ENOENT when it is missing; -ENOTDIR; -EPERM for every refusal.
 */
int sessiondir_open(struct sessiondir *w, char *err, size_t errlen)
{
	struct stat lst, st;
	int r;

	if (lstat(w->dir, &lst) < 0) {
		r = -errno;
		if (r == -ENOENT)
			errmsg_set(err, errlen, "no session file %s; sign in with omikeyfs --login",
				   w->path);
		else
			errmsg_set(err, errlen, "session file %s: cannot use its directory %s: %s",
				   w->path, w->dir, strerror(-r));
		return r;
	}
	if (S_ISLNK(lst.st_mode)) {
		errmsg_set(err, errlen,
			   "session file %s: its directory %s is a symbolic link; "
			   "it must be a directory of your own",
			   w->path, w->dir);
		return -EPERM;
	}
	if (!S_ISDIR(lst.st_mode)) {
		errmsg_set(err, errlen, "session file %s: %s is not a directory", w->path, w->dir);
		return -ENOTDIR;
	}
	w->dirfd = open(w->dir, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
	if (w->dirfd < 0 || fstat(w->dirfd, &st) < 0) {
		r = -errno;
		errmsg_set(err, errlen, "session file %s: cannot open its directory %s: %s",
			   w->path, w->dir, strerror(-r));
		return r == -ELOOP ? -EPERM : r;
	}
	if (st.st_dev != lst.st_dev || st.st_ino != lst.st_ino) {
		errmsg_set(err, errlen, "session file %s: its directory %s changed while opened",
			   w->path, w->dir);
		return -EPERM;
	}
	if (st.st_uid != geteuid()) {
		errmsg_set(err, errlen,
			   "session file %s: its directory %s is owned by uid %u, not by uid %u "
			   "(you)",
			   w->path, w->dir, (unsigned)st.st_uid, (unsigned)geteuid());
		return -EPERM;
	}
	if (st.st_mode & 077) {
		errmsg_set(err, errlen,
			   "session file %s: its directory %s is open to group or others "
			   "(mode %03o); run: chmod 700 %s",
			   w->path, w->dir, (unsigned)(st.st_mode & 0777), w->dir);
		return -EPERM;
	}
	return 0;
}

/*
 * Take the directory's lock (flock on a second descriptor of it), which
 * every writer of a session file holds from reading to renaming: a mount
 * saving a rotated refresh token, --login and --logout.  Each holds it for
 * a few milliseconds; a holder stopped for longer makes this one give up.
 */
int sessiondir_lock(struct sessiondir *w, char *err, size_t errlen)
{
	struct timespec pause = { 0, 10 * 1000 * 1000 };
	int r;

	w->lockfd = openat(w->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (w->lockfd < 0) {
		r = -errno;
		errmsg_set(err, errlen, "session file %s: cannot open its directory %s: %s",
			   w->path, w->dir, strerror(-r));
		return r;
	}
	for (int i = 0; i < SESSION_LOCK_WAIT_MS / 10; i++) {
		if (flock(w->lockfd, LOCK_EX | LOCK_NB) == 0)
			return 0;
		if (errno != EWOULDBLOCK && errno != EINTR) {
			r = -errno;
			errmsg_set(err, errlen, "session file %s: cannot lock %s: %s", w->path,
				   w->dir, strerror(-r));
			return r;
		}
		nanosleep(&pause, NULL);
	}
	errmsg_set(err, errlen,
		   "session file %s: another omikeyfs has held the lock on %s for over %d s",
		   w->path, w->dir, SESSION_LOCK_WAIT_MS / 1000);
	return -EAGAIN;
}
