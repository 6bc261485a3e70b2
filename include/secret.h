/* secret: free memory that holds a secret (a token, a code, a state, a
 * body that may carry one) only after wiping it, so no copy lingers in
 * freed memory. */
#ifndef OMIKEYFS_SECRET_H
#define OMIKEYFS_SECRET_H

#include <stddef.h>

/* Wipes the NUL-terminated s with explicit_bzero and frees it; NULL is fine. */
void secret_free(char *s);

/* Wipes the len bytes at p and frees it; NULL is fine. */
void secret_free_len(void *p, size_t len);

#endif
