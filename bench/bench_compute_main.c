// SPDX-License-Identifier: MIT
/*
 * bench_compute() (or, given a second argument, bench_sse()) as a static
 * Linux program, for qemu-x86_64 (see bench_compute.c).  Prints
 * "nanoseconds result" for `argv[1]` iterations;
 * the time is the process's CPU time, as gmem's side measures its own.
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t bench_compute(uint64_t n);
uint64_t bench_sse(uint64_t n);

int main(int argc, char **argv)
{
	struct timespec a, b;
	uint64_t n = argc > 1 ? strtoull(argv[1], NULL, 0) : 1000000;
	uint64_t r;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &a);
	r = argc > 2 ? bench_sse(n) : bench_compute(n);
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &b);
	printf("%" PRIu64 " %" PRIu64 "\n",
	       (uint64_t)(b.tv_sec - a.tv_sec) * 1000000000 +
		       (uint64_t)(b.tv_nsec - a.tv_nsec),
	       r);
	return 0;
}
