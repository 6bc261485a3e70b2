/* log: one place every message goes through: stderr in the foreground,
 * syslog as "omikeyfs" otherwise.  Callers never pass the token here. */
#ifndef OMIKEYFS_LOG_H
#define OMIKEYFS_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* Until log_to_syslog() is called, messages go to stderr as "omikeyfs: ...". */
void log_set_debug(bool debug);
void log_to_syslog(void);
void log_msg(int priority, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
