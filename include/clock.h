/* clock: the monotonic clock every interval, deadline and timing is read
 * from, and the one comparison of two timespecs. */
#ifndef OMIKEYFS_CLOCK_H
#define OMIKEYFS_CLOCK_H

#include <stdbool.h>
#include <stdint.h>
#include <time.h>

/* CLOCK_MONOTONIC in nanoseconds: for intervals, never for dates. */
int64_t clock_monotonic_ns(void);

/* The same in milliseconds. */
int64_t clock_monotonic_ms(void);

/* Whether a and b are the same instant, to the nanosecond. */
bool timespec_equal(struct timespec a, struct timespec b);

#endif
