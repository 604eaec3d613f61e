// SPDX-License-Identifier: MIT
/*
 * make bench, conversion family (DESIGN §6): the round trip of a 4 KiB
 * private<->shared conversion driven by a real guest - KVM_HC_MAP_GPA_RANGE
 * from the guest, the exit, the VMM setting the attribute and punching (or
 * discarding) the side left, the guest resuming and touching the page -
 * against the same loop whose hypercalls the VMM answers without doing
 * anything (the bare exit round trip), measured in the same run.
 *
 * Built like a guest test: -DGUEST is the guest, loaded from
 * ../guests/bench_convert.elf.  GMEM_BENCH_QUICK=1 shrinks the loop.
 */
#include <stdint.h>

#ifdef GUEST

#include "guest.h"

static uint8_t page[4096] __aligned(4096);

static void loop(uint64_t n)
{
	volatile uint64_t *w = (volatile uint64_t *)page;

	for (uint64_t i = 0; i < n; i++) {
		uint64_t to = (i & 1) ? KVM_MAP_GPA_RANGE_ENCRYPTED
				      : KVM_MAP_GPA_RANGE_DECRYPTED;

		GUEST_ASSERT_EQ(guest_map_gpa_range((uint64_t)page, 1, to), 0);
		w[i & 511] = i; /* fault the page in on its new side */
	}
}

/* arg0: iterations.  SYNC(1) starts the anchor, SYNC(2) the real run. */
void guest_main(uint64_t n, uint64_t arg1)
{
	GUEST_SYNC(1);
	loop(n);
	GUEST_SYNC(2);
	loop(n);
	GUEST_SYNC(3);
}

#else

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "guest_util.h"

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

/*
 * Run to the next SYNC; with @convert clear, answer each MAP_GPA_RANGE
 * with success and change nothing.  Returns the SYNC value or -1.
 */
static int64_t run_to_sync(struct guest_vcpu *v, int convert, uint64_t *exits)
{
	struct guest_ucall uc;
	char msg[768];
	int ret;

	v->convert = convert;
	for (;;) {
		ret = guest_vcpu_run(v, &uc);
		if (ret == GUEST_EXIT &&
		    v->run->exit_reason == KVM_EXIT_HYPERCALL &&
		    v->run->hypercall.nr == KVM_HC_MAP_GPA_RANGE) {
			v->run->hypercall.ret = 0;
			(*exits)++;
			continue;
		}
		if (ret == UCALL_SYNC)
			return (int64_t)uc.args[0];
		fprintf(stderr, "bench_convert: %s\n",
			guest_describe(v, ret, &uc, msg, sizeof(msg)));
		return -1;
	}
}

int main(int argc, char **argv)
{
	uint64_t n = getenv("GMEM_BENCH_QUICK") ? 2000 : 100000;
	struct gmem_load_opts opts = {.rdi = n};
	uint64_t bare_exits = 0, conv_before, dummy = 0;
	double t0, bare, conv;
	struct guest_vm *gvm;
	struct guest_vcpu *v;
	FILE *csv;

	if (guest_vm_create(KVM_X86_SW_PROTECTED_VM, 16ULL << 20,
			    GUEST_VM_PRIVATE, &gvm) ||
	    guest_vcpu_add(gvm, &v) ||
	    guest_vm_load(gvm, "bench_convert", &opts)) {
		fprintf(stderr, "bench_convert: cannot set up the guest\n");
		return 1;
	}
	if (run_to_sync(v, 0, &dummy) != 1)
		return 1;

	t0 = now();
	if (run_to_sync(v, 0, &bare_exits) != 2 || bare_exits != n)
		return 1;
	bare = (now() - t0) / n * 1e6;

	conv_before = v->conversions;
	t0 = now();
	if (run_to_sync(v, 1, &dummy) != 3 || v->conversions - conv_before != n)
		return 1;
	conv = (now() - t0) / n * 1e6;

	printf("%-38s %12.3f %-6s %12.3f %-20s %8.3f  %s\n",
	       "conversion round trip 4 KiB", conv, "us", bare,
	       "bare hypercall exit", conv / bare, "<= 3 us");
	csv = fopen(argc > 1 ? argv[1] : "bench/results.csv", "a");
	if (csv) {
		fprintf(csv, "\"%s\",%.3f,%.3f,%.4f,\"%s\"\n",
			"conversion round trip 4 KiB (us)", conv, bare,
			conv / bare, "<= 3 us");
		fclose(csv);
	}
	guest_vm_destroy(gvm);
	return 0;
}

#endif
