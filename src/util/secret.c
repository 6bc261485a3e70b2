/* secret: the one place a secret string is wiped and freed. */
#include <stdlib.h>
#include <string.h>

#include "secret.h"

void secret_free(char *s)
{
	if (s) {
		explicit_bzero(s, strlen(s));
		free(s);
	}
}
