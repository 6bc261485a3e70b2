/*
 * timestamp: RFC 3339 times -> struct timespec.
 *
 * Files' mtimes come from created_at and last_used_at, so that find -newer
 * and ls -lt see the API's times.  Strict: a time that does not parse is
 * refused whole (the caller falls back), never half read.
 */
#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "timestamp.h"

static bool parse_digits(const char *s, size_t n, int *value)
{
	int v = 0;

	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*value = v;
	return true;
}

static bool is_leap(int y)
{
	return y % 4 == 0 && (y % 100 != 0 || y % 400 == 0);
}

static int days_in_month(int y, int m)
{
	static const int days[12] = { 31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

	return m == 2 && is_leap(y) ? 29 : days[m - 1];
}

/*
 * Days since 0000-03-01 in a calendar shifted to start in March, plus 400
 * years so that January 0000 stays positive: the leap day then ends a year
 * and month lengths follow the (153 * m + 2) / 5 pattern.  Pure arithmetic,
 * unlike timegm(), which may consult the environment.
 */
static long long civil_days(int y, int m, int d)
{
	long long yy = (long long)y - (m <= 2) + 400;
	int mp = (m + 9) % 12;
	long long yday = (153 * mp + 2) / 5 + d - 1;

	return yy * 365 + yy / 4 - yy / 100 + yy / 400 + yday;
}

bool timestamp_parse(const char *s, size_t len, struct timespec *out)
{
	int year, mon, day, hour, min, sec;
	long nsec = 0, offset = 0;
	size_t i = 19;

	if (len < 19)
		return false;
	if (!parse_digits(s, 4, &year) || s[4] != '-' || !parse_digits(s + 5, 2, &mon) ||
	    s[7] != '-' || !parse_digits(s + 8, 2, &day) ||
	    (s[10] != 'T' && s[10] != 't' && s[10] != ' ') || !parse_digits(s + 11, 2, &hour) ||
	    s[13] != ':' || !parse_digits(s + 14, 2, &min) || s[16] != ':' ||
	    !parse_digits(s + 17, 2, &sec))
		return false;
	/* Second 60 is a leap second: it counts as the next minute's first,
	 * as timegm() would have it. */
	if (mon < 1 || mon > 12 || day < 1 || day > days_in_month(year, mon) || hour > 23 ||
	    min > 59 || sec > 60)
		return false;

	if (i < len && s[i] == '.') {
		size_t start = ++i;
		long scale = 100000000;

		/* Digits past nanoseconds still have to be digits; their
		 * value is dropped (scale has reached 0). */
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++) {
			nsec += (s[i] - '0') * scale;
			scale /= 10;
		}
		if (i == start)
			return false;
	}

	if (i < len && (s[i] == 'Z' || s[i] == 'z')) {
		i++;
	} else if (i < len && (s[i] == '+' || s[i] == '-')) {
		int sign = s[i] == '-' ? -1 : 1, oh, om;
		size_t rest = len - i - 1;

		if (rest == 5 && s[i + 3] == ':') {
			if (!parse_digits(s + i + 1, 2, &oh) || !parse_digits(s + i + 4, 2, &om))
				return false;
		} else if (rest == 4) {
			if (!parse_digits(s + i + 1, 2, &oh) || !parse_digits(s + i + 3, 2, &om))
				return false;
		} else {
			return false;
		}
		if (oh > 23 || om > 59)
			return false;
		offset = sign * (oh * 3600L + om * 60L);
		i = len;
	}
	if (i != len)
		return false;

	out->tv_sec = (time_t)((civil_days(year, mon, day) - civil_days(1970, 1, 1)) * 86400 +
			       hour * 3600L + min * 60L + sec - offset);
	out->tv_nsec = nsec;
	return true;
}
