/* Unit tests for sdnotify: datagrams reach a socket this test binds, by path
 * and by abstract name; unset is a no-op; errors come back as -errno;
 * sdnotify_forget cleans the environment but keeps sending. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"
#include "test.h"

static char dir[] = "/tmp/omikeyfs-test-notify-XXXXXX";
static char sock_path[sizeof(dir) + 16];

static int bind_dgram(const char *name)
{
	struct sockaddr_un addr = { .sun_family = AF_UNIX };
	size_t len = strlen(name);
	socklen_t alen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);

	test_assert(fd >= 0);
	memcpy(addr.sun_path, name, len);
	if (name[0] == '@')
		addr.sun_path[0] = '\0';
	else
		alen++;
	test_assert(bind(fd, (struct sockaddr *)&addr, alen) == 0);
	return fd;
}

/* The next datagram, already queued: sdnotify_send has returned. */
static char *received(int fd)
{
	static char buf[4096];
	ssize_t n = recv(fd, buf, sizeof(buf) - 1, MSG_DONTWAIT);

	test_assert(n >= 0);
	buf[n] = '\0';
	return buf;
}

static void test_unset(void)
{
	unsetenv("NOTIFY_SOCKET");
	test_assert(sdnotify_send("READY=1") == 0);
	setenv("NOTIFY_SOCKET", "", 1);
	test_assert(sdnotify_send("READY=1") == 0);
}

static void test_path(void)
{
	int fd = bind_dgram(sock_path);

	setenv("NOTIFY_SOCKET", sock_path, 1);
	test_assert(sdnotify_send("READY=1") == 0);
	test_assert(strcmp(received(fd), "READY=1") == 0);
	/* Several assignments travel as one datagram. */
	test_assert(sdnotify_send("STATUS=mounted\nREADY=1") == 0);
	test_assert(strcmp(received(fd), "STATUS=mounted\nREADY=1") == 0);
	test_assert(recv(fd, (char[1]){ 0 }, 1, MSG_DONTWAIT) < 0 && errno == EAGAIN);
	test_assert(sdnotify_send("") == -EINVAL);
	test_assert(sdnotify_send(NULL) == -EINVAL);
	close(fd);
	unlink(sock_path);
	/* Nobody listens any more. */
	test_assert(sdnotify_send("STOPPING=1") == -ENOENT);
}

static void test_abstract(void)
{
	char name[64];
	int fd;

	snprintf(name, sizeof(name), "@omikeyfs-test-notify-%ld", (long)getpid());
	fd = bind_dgram(name);
	setenv("NOTIFY_SOCKET", name, 1);
	test_assert(sdnotify_send("STATUS=abstract") == 0);
	test_assert(strcmp(received(fd), "STATUS=abstract") == 0);
	close(fd);
	test_assert(sdnotify_send("READY=1") == -ECONNREFUSED);
}

static void test_bad_names(void)
{
	char longname[200];

	setenv("NOTIFY_SOCKET", "relative/path", 1);
	test_assert(sdnotify_send("READY=1") == -EAFNOSUPPORT);
	memset(longname, 'a', sizeof(longname) - 1);
	longname[0] = '/';
	longname[sizeof(longname) - 1] = '\0';
	setenv("NOTIFY_SOCKET", longname, 1);
	test_assert(sdnotify_send("READY=1") == -ENAMETOOLONG);
}

/* A receiver that never reads: sends fail with -EAGAIN, they do not wait. */
static void test_never_blocks(void)
{
	int fd = bind_dgram(sock_path);
	int rc, i;

	setenv("NOTIFY_SOCKET", sock_path, 1);
	for (i = 0; i < 100000; i++) {
		rc = sdnotify_send("STATUS=filling the queue");
		if (rc < 0)
			break;
	}
	test_assert(rc == -EAGAIN);
	close(fd);
	unlink(sock_path);
}

/* Last: forget is once per process. */
static void test_forget(void)
{
	int fd = bind_dgram(sock_path);

	setenv("NOTIFY_SOCKET", sock_path, 1);
	sdnotify_forget();
	test_assert(getenv("NOTIFY_SOCKET") == NULL);
	test_assert(sdnotify_send("READY=1") == 0);
	test_assert(strcmp(received(fd), "READY=1") == 0);
	/* What is set afterwards is not used: the saved name is. */
	setenv("NOTIFY_SOCKET", "@elsewhere", 1);
	test_assert(sdnotify_send("STOPPING=1") == 0);
	test_assert(strcmp(received(fd), "STOPPING=1") == 0);
	close(fd);
	unlink(sock_path);
}

int main(void)
{
	test_assert(mkdtemp(dir));
	snprintf(sock_path, sizeof(sock_path), "%s/notify", dir);
	test_run(test_unset);
	test_run(test_path);
	test_run(test_abstract);
	test_run(test_bad_names);
	test_run(test_never_blocks);
	test_run(test_forget);
	rmdir(dir);
	return 0;
}
