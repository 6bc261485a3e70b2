/* jsonscan: byte-level steps over JSON text (white space, a whole nested
 * element, a field name holding \u0000), without building any tree. */
#ifndef OMIKEYFS_JSONSCAN_H
#define OMIKEYFS_JSONSCAN_H

#include <stdbool.h>
#include <stddef.h>

/* JSON's four white space characters. */
bool jsonscan_is_space(char c);

/* The first index from i on (below len) that is not JSON white space. */
size_t jsonscan_skip_space(const char *body, size_t i, size_t len);

/* Whether the n bytes at s hold a field name with \u0000 in it (json-c keeps
 * names as C strings, so such a name would read as a shorter one). */
bool jsonscan_has_nul_name(const char *s, size_t n);

/* One past the end of the array or object starting at body[start], or 0
 * when it does not end within len.  Any depth, no recursion. */
size_t jsonscan_skip_element(const char *body, size_t start, size_t len);

#endif
