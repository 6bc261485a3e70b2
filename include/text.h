/* text: make untrusted text (from the API, files, peers) safe to show on one
 * line of a terminal, the journal or an xattr value. */
#ifndef OMIKEYFS_TEXT_H
#define OMIKEYFS_TEXT_H

#include <stddef.h>

/* Copy srclen bytes of src (NULs included) to dst as valid UTF-8 with every
 * C0 control (tab and newline too), DEL, C1 control (U+0080-U+009F), bidi
 * override or isolate (U+202A-U+202E, U+2066-U+2069), line or paragraph
 * separator (U+2028, U+2029), and every byte that is not part of a valid
 * UTF-8 sequence replaced by one '?'.  At most dstlen - 1 bytes are written,
 * cut only between characters, then a NUL.  Returns the bytes written, NUL
 * excluded.  The output is never longer than the input, so dst may be src. */
size_t text_sanitize(char *dst, size_t dstlen, const char *src, size_t srclen);

/* Cut s to at most max bytes (max >= 3) when len, its length, is more:
 * between two UTF-8 characters, marked with "...", NUL-terminated.  Only
 * the first max - 3 bytes are read, so len may be the length s would have
 * had (vsnprintf's return value); s must hold max + 1 bytes.  Returns the
 * length left. */
size_t text_cut(char *s, size_t len, size_t max);

/* A message of our own (a URL, a libcurl error) on one line: C0 controls
 * and DEL become spaces, in place. */
void text_one_line(char *s);

#endif
