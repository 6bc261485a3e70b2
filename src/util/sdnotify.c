/* sdnotify: sd_notify(3)'s datagram protocol, which is small enough to speak
 * directly: one AF_UNIX datagram of "VARIABLE=value" lines.
 *
 * sd_notify's unset_environment drops NOTIFY_SOCKET for good, so a later
 * STOPPING=1 would go nowhere; sdnotify_forget keeps a private copy instead,
 * so the environment children inherit is clean and omikeyfs can still report
 * until it exits. */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "sdnotify.h"

static bool forgotten;
static char saved_socket[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];

void sdnotify_forget(void)
{
	const char *env = getenv("NOTIFY_SOCKET");

	if (forgotten)
		return;
	forgotten = true;
	/* A name too long for sun_path is dropped: it could not be used anyway. */
	if (env && strlen(env) < sizeof(saved_socket))
		strcpy(saved_socket, env);
	unsetenv("NOTIFY_SOCKET");
}

/* Fill addr from a NOTIFY_SOCKET value; returns the address length or -errno. */
static int sdnotify_address(const char *name, struct sockaddr_un *addr)
{
	size_t len = strlen(name);

	if (name[0] != '/' && name[0] != '@')
		return -EAFNOSUPPORT;
	/* A path takes its NUL; an abstract name has none and no '@'. */
	if (len > sizeof(addr->sun_path) || (name[0] == '/' && len == sizeof(addr->sun_path)))
		return -ENAMETOOLONG;
	memset(addr, 0, sizeof(*addr));
	addr->sun_family = AF_UNIX;
	memcpy(addr->sun_path, name, len);
	if (name[0] == '@') {
		addr->sun_path[0] = '\0';
		return (int)(offsetof(struct sockaddr_un, sun_path) + len);
	}
	return (int)(offsetof(struct sockaddr_un, sun_path) + len + 1);
}

int sdnotify_send(const char *state)
{
	const char *name = forgotten ? saved_socket : getenv("NOTIFY_SOCKET");
	struct sockaddr_un addr;
	size_t len;
	ssize_t n;
	int fd, alen, err = 0;

	if (!name || !*name)
		return 0;
	if (!state || !*state)
		return -EINVAL;
	alen = sdnotify_address(name, &addr);
	if (alen < 0)
		return alen;
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	len = strlen(state);
	do
		n = sendto(fd, state, len, MSG_DONTWAIT | MSG_NOSIGNAL, (struct sockaddr *)&addr,
			   (socklen_t)alen);
	while (n < 0 && errno == EINTR);
	if (n < 0)
		err = -errno;
	else if ((size_t)n != len)
		err = -EMSGSIZE;
	close(fd);
	return err;
}
