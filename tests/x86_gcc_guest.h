/* SPDX-License-Identifier: MIT */
#ifndef GMEM_X86_GCC_GUEST_H
#define GMEM_X86_GCC_GUEST_H

#include <stddef.h>
#include <stdint.h>

struct gg_node;

uint32_t gg_crc32(const uint8_t *p, size_t n);
void gg_qsort(int64_t *a, long lo, long hi);
size_t gg_sieve(uint8_t *buf, size_t n);
uint64_t gg_mix(uint64_t a, uint64_t b);
long gg_fib(long n);
size_t gg_strops(char *dst, const char *src, size_t n);
uint64_t gg_list(struct gg_node *pool, unsigned n, uint64_t seed);

#define GG_NODE_SIZE 32

#endif /* GMEM_X86_GCC_GUEST_H */
