/* optfiles: the files and directories options.c's options name, made
 * absolute and checked, or defaulted from the environment. */
#ifndef OMIKEYFS_OPTFILES_H
#define OMIKEYFS_OPTFILES_H

#include <stdbool.h>
#include <stddef.h>

struct options;

/* Takes the key file or session and the cache directory systemd hands a
 * service ($CREDENTIALS_DIRECTORY, $CACHE_DIRECTORY) for those not given;
 * false (errno ENOMEM) when out of memory. */
bool optfiles_systemd_defaults(struct options *o);

/* cafile (readable), key_file and session_file made absolute; cache_dir
 * chosen (none with no_cache, else the default when not given).  0, or -1
 * with a one-line reason in err. */
int optfiles_check(struct options *o, char *err, size_t errlen);

#endif
