// SPDX-License-Identifier: MIT
/*
 * Guest code for test_x86_gcc: ordinary C compiled the way gmem guests
 * are (-O2 -ffreestanding -march=x86-64-v2 -mno-red-zone), run both
 * natively and in the interpreter.  Only arguments and memory reached
 * through them; no libc.
 */
#include <stddef.h>
#include <stdint.h>

#include "x86_gcc_guest.h"

uint32_t gg_crc32(const uint8_t *p, size_t n)
{
	uint32_t c = ~0u;

	while (n--) {
		c ^= *p++;
		for (int k = 0; k < 8; k++)
			c = (c >> 1) ^ (0xedb88320u & -(c & 1));
	}
	return ~c;
}

static void swap(int64_t *a, int64_t *b)
{
	int64_t t = *a;

	*a = *b;
	*b = t;
}

void gg_qsort(int64_t *a, long lo, long hi)
{
	while (lo < hi) {
		int64_t piv = a[(lo + hi) / 2];
		long i = lo, j = hi;

		while (i <= j) {
			while (a[i] < piv)
				i++;
			while (a[j] > piv)
				j--;
			if (i <= j)
				swap(&a[i++], &a[j--]);
		}
		if (j - lo < hi - i) {
			gg_qsort(a, lo, j);
			lo = i;
		} else {
			gg_qsort(a, i, hi);
			hi = j;
		}
	}
}

size_t gg_sieve(uint8_t *buf, size_t n)
{
	size_t count = 0;

	for (size_t i = 0; i < n; i++)
		buf[i] = i >= 2;
	for (size_t i = 2; i * i < n; i++)
		if (buf[i])
			for (size_t j = i * i; j < n; j += i)
				buf[j] = 0;
	for (size_t i = 0; i < n; i++)
		count += buf[i];
	return count;
}

static int classify(unsigned x)
{
	switch (x % 11) { /* a jump table */
	case 0:
		return 17;
	case 1:
		return -3;
	case 2:
		return 5;
	case 3:
		return 99;
	case 4:
		return -40;
	case 5:
		return 12;
	case 6:
		return 0;
	case 7:
		return 71;
	case 8:
		return 8;
	default:
		return -1;
	}
}

uint64_t gg_mix(uint64_t a, uint64_t b)
{
	unsigned __int128 p = (unsigned __int128)a * (b | 1);
	__int128 s = (__int128)(int64_t)a * (int64_t)b;
	uint64_t r = (uint64_t)(p >> 64) ^ (uint64_t)p;

	r += __builtin_ctzll(a | 1) + __builtin_clzll(b | 1);
	r ^= __builtin_popcountll(a ^ b);
	r += (uint64_t)(s >> 3);
	r += a / (b % 1000 + 1) + (int64_t)a % -7 + (int32_t)b / 13;
	r += (uint64_t)(p / ((b >> 3) | 1));
	for (unsigned i = 0; i < 64; i++)
		r += classify((unsigned)(a >> i) + i) * (int)i;
	r = (r << 13) | (r >> 51);
	r ^= (uint16_t)(a >> 7) * (uint8_t)b;
	r += (int8_t)a < (int8_t)b ? 1 : 2;
	return r;
}

long gg_fib(long n)
{
	return n < 2 ? n : gg_fib(n - 1) + gg_fib(n - 2);
}

size_t gg_strops(char *dst, const char *src, size_t n)
{
	size_t len = 0, words = 0;

	while (src[len] && len < n - 1)
		len++;
	for (size_t i = 0; i < len; i++) {
		char c = src[len - 1 - i];

		dst[i] = c >= 'a' && c <= 'z' ? c - 32 : c;
		words += c == ' ';
	}
	dst[len] = 0;
	return len * 1000 + words;
}

struct gg_node {
	struct gg_node *next;
	uint64_t key;
	uint32_t hits;
	uint16_t tag;
	int8_t s8;
	uint8_t u8;
};

uint64_t gg_list(struct gg_node *pool, unsigned n, uint64_t seed)
{
	struct gg_node *head = 0;
	uint64_t acc = 0;

	for (unsigned i = 0; i < n; i++) {
		struct gg_node *e = &pool[i];

		seed = seed * 6364136223846793005ull + 1442695040888963407ull;
		e->key = seed >> 17;
		e->hits = (uint32_t)seed;
		e->tag = (uint16_t)(seed >> 40);
		e->s8 = (int8_t)(seed >> 3);
		e->u8 = (uint8_t)(seed >> 51);
		/* sorted insert */
		struct gg_node **pp = &head;

		while (*pp && (*pp)->key < e->key)
			pp = &(*pp)->next;
		e->next = *pp;
		*pp = e;
	}
	for (struct gg_node *e = head; e; e = e->next)
		acc = acc * 31 + e->key + e->hits + e->tag + e->s8 + e->u8;
	return acc;
}
