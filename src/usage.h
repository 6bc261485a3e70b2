/* usage: the text of --help and --version. */
#ifndef OMIKEYFS_USAGE_H
#define OMIKEYFS_USAGE_H

/* omikeyfs's help, libfuse's low-level options, then the notes (xattrs,
 * signals, environment, exit status), on stdout. */
void usage_print_help(const char *progname);

/* The versions of omikeyfs, libfuse, libcurl and json-c, on stdout. */
void usage_print_version(void);

#endif
