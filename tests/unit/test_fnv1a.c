/* Unit test of fnv1a64 against FNV-1a's published 64-bit values. */
#include "fnv1a.h"
#include "test.h"

static void test_reference(void)
{
	test_assert(fnv1a64("", 0) == UINT64_C(0xcbf29ce484222325));
	test_assert(fnv1a64("a", 1) == UINT64_C(0xaf63dc4c8601ec8c));
	test_assert(fnv1a64("foobar", 6) == UINT64_C(0x85944171f73967e8));
	/* Bytes, not a string: a NUL does not end the input. */
	test_assert(fnv1a64("a\0b", 3) != fnv1a64("a\0c", 3));
}

int main(void)
{
	test_run(test_reference);
	return 0;
}
