/* secret: the one place a secret is wiped and freed. */
#include <stdlib.h>
#include <string.h>

#include "secret.h"

void secret_free_len(void *p, size_t len)
{
	if (p) {
		explicit_bzero(p, len);
		free(p);
	}
}

void secret_free(char *s)
{
	if (s)
		secret_free_len(s, strlen(s));
}
