/* log: one place every message goes through: stderr in the foreground (with
 * syslog priority prefixes when stderr is the systemd journal), syslog as
 * "omikeyfs" otherwise.  Callers never pass the token here. */
#ifndef OMIKEYFS_LOG_H
#define OMIKEYFS_LOG_H

#include <stdbool.h>
#include <syslog.h>

/* LOG_ERR, LOG_WARNING, LOG_INFO or LOG_DEBUG for "error", "warning", "info"
 * or "debug" (the values of -o log_level=); -1 for anything else. */
int log_level_parse(const char *name);
/* Drop messages less severe than priority (default LOG_INFO). */
void log_set_level(int priority);
/* -d: true sets the level to LOG_DEBUG; false leaves the level as it is. */
void log_set_debug(bool debug);
/* Until log_to_syslog() is called, messages go to stderr as "omikeyfs: ...",
 * or as "<N>..." when stderr is the journal (JOURNAL_STREAM matches fd 2). */
void log_to_syslog(void);
/* Thread-safe; each message is one line, written with one write(2), with
 * control, invalid and bidi characters replaced as text_sanitize does. */
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_err(...) log_msg(LOG_ERR, __VA_ARGS__)
#define log_warn(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_info(...) log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...) log_msg(LOG_DEBUG, __VA_ARGS__)

#endif
