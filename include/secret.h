/* secret: free a string that holds a secret (a token, a code, a state)
 * only after wiping it, so no copy lingers in freed memory. */
#ifndef OMIKEYFS_SECRET_H
#define OMIKEYFS_SECRET_H

/* Wipes the NUL-terminated s with explicit_bzero and frees it; NULL is fine. */
void secret_free(char *s);

#endif
