/* log: stderr ("omikeyfs: message") until the daemon detaches, then syslog. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "log.h"

static bool use_syslog;
static bool debug_enabled;

void log_set_debug(bool debug)
{
	debug_enabled = debug;
}

void log_to_syslog(void)
{
	openlog("omikeyfs", LOG_PID, LOG_DAEMON);
	use_syslog = true;
}

void log_msg(int priority, const char *fmt, ...)
{
	char line[1024];
	va_list ap;

	if (priority == LOG_DEBUG && !debug_enabled)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	/* One message, one line, whatever a peer put in it. */
	for (char *p = line; *p; p++)
		if (*p == '\n' || *p == '\r')
			*p = ' ';
	if (use_syslog)
		syslog(priority, "%s", line);
	else
		fprintf(stderr, "omikeyfs: %s\n", line);
}
