/* Unit test of timestamp: RFC 3339 text -> struct timespec. */
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "test.h"
#include "timestamp.h"

/* A time given as a literal, NUL bytes and all. */
#define LIT(s) (s), (sizeof(s) - 1)

static bool ts_is(struct timespec ts, time_t sec, long nsec)
{
	return ts.tv_sec == sec && ts.tv_nsec == nsec;
}

static void check_time(const char *s, time_t sec, long nsec)
{
	struct timespec ts = { -1, -1 };
	bool ok = timestamp_parse(s, strlen(s), &ts) && ts_is(ts, sec, nsec);

	if (!ok)
		fprintf(stderr, "\"%s\" gave %lld.%09ld, want %lld.%09ld\n", s,
			(long long)ts.tv_sec, ts.tv_nsec, (long long)sec, nsec);
	test_assert(ok);
}

static void check_bad_time(const char *s, size_t len)
{
	struct timespec ts = { 12345, 678 };
	bool ok = timestamp_parse(s, len, &ts);

	if (ok)
		fprintf(stderr, "\"%.*s\" parsed\n", (int)len, s);
	test_assert(!ok);
	/* Untouched on failure. */
	test_assert(ts_is(ts, 12345, 678));
}

#define BAD_TIME(s) check_bad_time(LIT(s))

static void test_timestamps(void)
{
	check_time("2025-01-15T10:30:00.123456Z", 1736937000, 123456000);
	check_time("2025-01-15T10:30:00Z", 1736937000, 0);
	check_time("2025-01-15T10:30:00+00:00", 1736937000, 0);
	check_time("2025-01-15T10:30:00-00:00", 1736937000, 0);
	check_time("2025-01-15T10:30:00", 1736937000, 0);
	check_time("2025-01-15T16:00:00+05:30", 1736937000, 0);
	check_time("2025-01-15T02:30:00-08:00", 1736937000, 0);
	check_time("2025-01-15T02:30:00-0800", 1736937000, 0);
	check_time("2025-01-15t10:30:00z", 1736937000, 0);
	check_time("2025-01-15 10:30:00Z", 1736937000, 0);
	check_time("2025-01-15T10:30:00.1Z", 1736937000, 100000000);
	check_time("2025-01-15T10:30:00.000000001Z", 1736937000, 1);
	check_time("2025-01-15T10:30:00.9999999999999Z", 1736937000, 999999999);
	check_time("2025-01-15T10:30:00.123456+05:30", 1736937000 - 19800, 123456000);
	check_time("1970-01-01T00:00:00Z", 0, 0);
	check_time("1969-12-31T23:59:59Z", -1, 0);
	check_time("1970-01-01T00:00:00+01:00", -3600, 0);
	check_time("2000-02-29T00:00:00Z", 951782400, 0);
	check_time("2024-02-29T12:00:00Z", 1709208000, 0);
	check_time("2024-12-31T23:59:59Z", 1735689599, 0);
	check_time("2038-01-19T03:14:08Z", 2147483648LL, 0);
	check_time("2100-03-01T00:00:00Z", 4107542400LL, 0);
	check_time("0000-01-01T00:00:00Z", -62167219200LL, 0);
	check_time("9999-12-31T23:59:59Z", 253402300799LL, 0);
	/* A leap second is the next minute's first. */
	check_time("2016-12-31T23:59:60Z", 1483228800, 0);
	check_time("2016-12-31T23:59:60.5Z", 1483228800, 500000000);

	BAD_TIME("");
	BAD_TIME("2025-01-15");
	BAD_TIME("2025-01-15T10:30");
	BAD_TIME("2025-01-15T10:30:0");
	BAD_TIME("2025-13-15T10:30:00Z");
	BAD_TIME("2025-00-15T10:30:00Z");
	BAD_TIME("2025-02-30T10:30:00Z");
	BAD_TIME("2025-02-29T10:30:00Z");
	BAD_TIME("2100-02-29T10:30:00Z");
	BAD_TIME("2025-04-31T10:30:00Z");
	BAD_TIME("2025-01-00T10:30:00Z");
	BAD_TIME("2025-01-32T10:30:00Z");
	BAD_TIME("2025-01-15T24:00:00Z");
	BAD_TIME("2025-01-15T10:60:00Z");
	BAD_TIME("2025-01-15T10:30:61Z");
	BAD_TIME("2025-01-15T10:30:00.Z");
	BAD_TIME("2025-01-15T10:30:00.");
	BAD_TIME("2025-01-15T10:30:00ZZ");
	BAD_TIME("2025-01-15T10:30:00Z ");
	BAD_TIME(" 2025-01-15T10:30:00Z");
	BAD_TIME("2025-01-15T10:30:00Zgarbage");
	BAD_TIME("2025-01-15T10:30:00+05");
	BAD_TIME("2025-01-15T10:30:00+5:30");
	BAD_TIME("2025-01-15T10:30:00+05:3");
	BAD_TIME("2025-01-15T10:30:00+05:300");
	BAD_TIME("2025-01-15T10:30:00+24:00");
	BAD_TIME("2025-01-15T10:30:00+05:60");
	BAD_TIME("2025-01-15T10:30:00+05-30");
	BAD_TIME("2025-01-15T10:30:00UTC");
	BAD_TIME("2025-01-15X10:30:00Z");
	BAD_TIME("2025/01/15T10:30:00Z");
	BAD_TIME("+025-01-15T10:30:00Z");
	BAD_TIME("2025-1-15T10:30:00Z");
	BAD_TIME("garbage");
	BAD_TIME("2025-01-15T10:30:00\0Z");
	BAD_TIME("2025-01-15T10:30:00.12a");

	/* s need not be NUL-terminated: only len bytes are read. */
	{
		struct timespec ts;
		static const char buf[] = "2025-01-15T10:30:00Zjunk";

		test_assert(timestamp_parse(buf, 20, &ts) && ts_is(ts, 1736937000, 0));
		test_assert(!timestamp_parse(buf, 19 + 2, &ts));
	}
}

int main(void)
{
	test_run(test_timestamps);
	return 0;
}
