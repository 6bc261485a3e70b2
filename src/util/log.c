/* log: stderr ("omikeyfs: message") until the daemon detaches, then syslog.
 *
 * Under systemd, stderr is usually a stream to journald, which announces it
 * in JOURNAL_STREAM ("DEVICE:INODE" of that socket, see systemd.exec(5)).
 * Then each line starts with "<N>" (sd-daemon(3)) so journald records its
 * priority instead of the unit's default, and "omikeyfs: " is left out:
 * journald already labels the line with the process name ("omikeyfs[PID]:
 * ..." in journalctl), so keeping it would print the name twice. */
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "file.h"
#include "log.h"
#include "text.h"

#define LOG_LINE_MAX 1024

static bool use_syslog;
static int log_level = LOG_INFO;

static pthread_once_t journal_once = PTHREAD_ONCE_INIT;
static bool journal_known;
static dev_t journal_dev;
static ino_t journal_ino;

int log_level_parse(const char *name)
{
	static const struct {
		const char *name;
		int priority;
	} levels[] = {
		{ "error", LOG_ERR },
		{ "warning", LOG_WARNING },
		{ "info", LOG_INFO },
		{ "debug", LOG_DEBUG },
	};

	for (size_t i = 0; name && i < sizeof(levels) / sizeof(levels[0]); i++)
		if (strcmp(name, levels[i].name) == 0)
			return levels[i].priority;
	return -1;
}

void log_set_level(int priority)
{
	__atomic_store_n(&log_level, priority, __ATOMIC_RELAXED);
}

void log_set_debug(bool debug)
{
	if (debug)
		log_set_level(LOG_DEBUG);
}

void log_to_syslog(void)
{
	openlog("omikeyfs", LOG_PID, LOG_DAEMON);
	use_syslog = true;
}

/* Read once: getenv may race with setenv/unsetenv elsewhere, fd 2 may not. */
static void journal_read_env(void)
{
	const char *env = getenv("JOURNAL_STREAM");
	uintmax_t dev, ino;
	char *end;

	if (!env || *env < '0' || *env > '9')
		return;
	errno = 0;
	dev = strtoumax(env, &end, 10);
	if (errno || *end != ':' || end[1] < '0' || end[1] > '9')
		return;
	ino = strtoumax(end + 1, &end, 10);
	if (errno || *end)
		return;
	journal_dev = (dev_t)dev;
	journal_ino = (ino_t)ino;
	journal_known = journal_dev == dev && journal_ino == ino;
}

/* fd 2 is checked on every line: it may have been redirected since start. */
static bool stderr_is_journal(void)
{
	struct stat st;

	pthread_once(&journal_once, journal_read_env);
	return journal_known && fstat(STDERR_FILENO, &st) == 0 && st.st_dev == journal_dev &&
	       st.st_ino == journal_ino;
}

void log_msg(int priority, const char *fmt, ...)
{
	char raw[LOG_LINE_MAX], line[LOG_LINE_MAX + 16];
	size_t len, pos;
	va_list ap;
	int n;

	if (priority > __atomic_load_n(&log_level, __ATOMIC_RELAXED))
		return;
	va_start(ap, fmt);
	n = vsnprintf(raw, sizeof(raw), fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	/* vsnprintf may have cut a UTF-8 sequence: cut before it, with "...". */
	len = text_cut(raw, (size_t)n, sizeof(raw) - 1);
	/* A trailing newline is a caller's habit, not part of the message. */
	while (len && (raw[len - 1] == '\n' || raw[len - 1] == '\r'))
		len--;
	if (use_syslog) {
		text_sanitize(raw, sizeof(raw), raw, len);
		syslog(priority, "%s", raw);
		return;
	}
	if (stderr_is_journal())
		pos = (size_t)snprintf(line, sizeof(line), "<%d>", priority & LOG_PRIMASK);
	else
		pos = (size_t)snprintf(line, sizeof(line), "omikeyfs: ");
	pos += text_sanitize(line + pos, sizeof(line) - pos - 1, raw, len);
	line[pos++] = '\n';
	/* One write(2) per line, so lines from several threads never mix. */
	(void)file_write_all(STDERR_FILENO, line, pos);
}
