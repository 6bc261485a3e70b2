/* clock: one reading of CLOCK_MONOTONIC for the whole program. */
#include "clock.h"

int64_t clock_monotonic_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

int64_t clock_monotonic_ms(void)
{
	return clock_monotonic_ns() / 1000000;
}

bool timespec_equal(struct timespec a, struct timespec b)
{
	return a.tv_sec == b.tv_sec && a.tv_nsec == b.tv_nsec;
}
