/* transport: what every user of a post_result needs to give it back. */
#include <stdlib.h>
#include <string.h>

#include "transport.h"

void post_result_clear(struct post_result *out)
{
	/* A body can hold a token: wipe it before it goes back to malloc. */
	if (out->body) {
		explicit_bzero(out->body, out->len);
		free(out->body);
	}
	memset(out, 0, sizeof(*out));
}
