/* logincmd: the commands that mount nothing, `omikeyfs --login` and
 * `omikeyfs --logout`, from the parsed options to one line of outcome. */
#ifndef OMIKEYFS_LOGINCMD_H
#define OMIKEYFS_LOGINCMD_H

#include <stddef.h>

#include "options.h"

/*
 * Sign in against opts->url (login_run) and save the session in
 * opts->session_file or the default session file.  The sign-in URL goes
 * to stdout, progress to the log.  Returns 0, or -errno with one line in
 * err (login_run's: -EACCES and -EPROTO refusals, -ETIMEDOUT, the
 * transport's; -EINVAL for a refused FIREBASE_AUTH_EMULATOR_HOST, before
 * any traffic).
 */
int logincmd_login(const struct options *opts, char *err, size_t errlen);

/* Remove the session file.  Returns 0 (also when there was none: "not
 * signed in" is logged), or -errno with one line in err. */
int logincmd_logout(const struct options *opts, char *err, size_t errlen);

#endif
