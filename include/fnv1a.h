/* fnv1a: the 64-bit FNV-1a hash, behind stable inode numbers, cut key
 * names, the cache's "same body" test and the kept file's checksum.  Not
 * for anything an attacker could profit from colliding. */
#ifndef OMIKEYFS_FNV1A_H
#define OMIKEYFS_FNV1A_H

#include <stddef.h>
#include <stdint.h>

uint64_t fnv1a64(const void *data, size_t len);

#endif
