/* Unit tests for clock.c: the monotonic clock never goes back, its two
 * units agree, and timespec_equal looks at both fields. */
#include <time.h>

#include "clock.h"
#include "test.h"

static void test_monotonic(void)
{
	int64_t ns = clock_monotonic_ns(), ms = clock_monotonic_ms(), again;
	struct timespec ts;

	test_assert(ns > 0 && ms >= ns / 1000000);
	again = clock_monotonic_ns();
	test_assert(again >= ns);
	/* The same clock as CLOCK_MONOTONIC, not CLOCK_REALTIME. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	test_assert(ts.tv_sec * INT64_C(1000000000) + ts.tv_nsec >= again);
	test_assert(clock_monotonic_ns() >= ts.tv_sec * INT64_C(1000000000) + ts.tv_nsec);
}

static void test_equal(void)
{
	struct timespec a = { 5, 7 }, b = { 5, 7 }, c = { 5, 8 }, d = { 6, 7 };

	test_assert(timespec_equal(a, b));
	test_assert(!timespec_equal(a, c));
	test_assert(!timespec_equal(a, d));
}

int main(void)
{
	test_run(test_monotonic);
	test_run(test_equal);
	return 0;
}
