/* endpoint: a transport endpoint (one POST to one fixed URL) made of an
 * http client of its own, so that each secret posted reaches only its
 * own host. */
#ifndef OMIKEYFS_ENDPOINT_H
#define OMIKEYFS_ENDPOINT_H

#include <stddef.h>

#include "http.h"
#include "transport.h"

/*
 * An endpoint that POSTs to config->url (checked by url_check_endpoint:
 * a refused URL gives -EINVAL with the reason in err, before any
 * traffic).  Returns 0, -EINVAL or -ENOMEM.
 */
int endpoint_open(struct endpoint *ep, const struct http_config *config, char *err, size_t errlen);

/* Free what endpoint_open made; a zeroed endpoint is fine. */
void endpoint_close(struct endpoint *ep);

#endif
