/* A small harness: test_assert prints file:line and the failed expression,
 * then aborts, so a failing unit test names its line. */
#ifndef OMIKEYFS_TEST_H
#define OMIKEYFS_TEST_H

#include <stdio.h>
#include <stdlib.h>

#define test_assert(expr)                                                                          \
	do {                                                                                       \
		if (!(expr)) {                                                                     \
			fprintf(stderr, "%s:%d: %s: assertion failed: %s\n", __FILE__, __LINE__,   \
				__func__, #expr);                                                  \
			abort();                                                                   \
		}                                                                                  \
	} while (0)

#define test_run(fn)                                                                               \
	do {                                                                                       \
		fn();                                                                              \
		fprintf(stderr, "ok %s\n", #fn);                                                   \
	} while (0)

#endif
