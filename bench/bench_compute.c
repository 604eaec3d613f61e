// SPDX-License-Identifier: MIT
/*
 * The compute loop behind the guest-MIPS figure.  One object file, built
 * with the guest's flags, is linked both into the guest image (run by
 * gmem's vCPU) and into a static Linux program (run by qemu-x86_64), so
 * the two run the very same instructions and gmem's instruction count
 * holds for both.  Freestanding: no calls, no library.
 *
 * Per iteration: an xorshift step, a table-driven CRC-32 step, a short
 * Collatz walk (data-dependent branches) and a division by a constant.
 * bench_sse() below is the SSE row's loop, built the same way.
 */
#include <stdint.h>

uint64_t bench_compute(uint64_t n);
uint64_t bench_sse(uint64_t n);

uint64_t bench_compute(uint64_t n)
{
	uint32_t table[256];
	uint64_t x = 88172645463325252ULL, sum = 0;
	uint32_t crc = ~0U;

	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = (c & 1) ? 0xedb88320U ^ (c >> 1) : c >> 1;
		table[i] = c;
	}
	for (uint64_t i = 0; i < n; i++) {
		uint64_t c;
		unsigned int steps = 0;

		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		crc = table[(crc ^ (uint32_t)x) & 0xff] ^ (crc >> 8);
		for (c = (x >> 40) | 1; c != 1 && steps < 16; steps++)
			c = (c & 1) ? 3 * c + 1 : c >> 1;
		sum += crc + steps + x % 7;
	}
	return sum ^ crc;
}

/*
 * The SSE row's loop: packed double multiply-adds over a small table (two
 * lanes per instruction: MULPD, ADDPD, and MOVAPD loads), then a sum of
 * the lanes converted to an integer.  IEEE arithmetic is exact in both
 * runs, so the results must agree to the bit.
 */
typedef double v2df __attribute__((vector_size(16)));

uint64_t bench_sse(uint64_t n)
{
	v2df t[32], acc = {0.0, 0.0}, k = {0.999999, 1.000001};
	union {
		v2df v;
		double d[2];
	} out;

	for (int j = 0; j < 32; j++)
		t[j] = (v2df){j * 0.25, j * -0.125};
	for (uint64_t i = 0; i < n; i++)
		for (int j = 0; j < 32; j++)
			acc = acc * k + t[j];
	out.v = acc;
	return (uint64_t)(int64_t)((out.d[0] + out.d[1]) * 1024.0);
}
