// SPDX-License-Identifier: MIT
/*
 * Random bytes as guest code, at CPL 0 and CPL 3: the interpreter must
 * neither crash nor hang, whatever the guest does to its own page tables,
 * descriptor tables and MSRs.  Every stop is answered the way a VMM would
 * (MMIO and IN completed with junk) until the budget for the page is
 * spent or the guest shuts down.
 *
 *   test_x86_fuzz [seed [pages]]   (or X86_FUZZ_SEED / X86_FUZZ_N)
 */
#include <time.h>

#include "tap.h"
#include "x86_harness.h"

static uint64_t rng;

static uint64_t rnd(void)
{
	rng ^= rng >> 12;
	rng ^= rng << 25;
	rng ^= rng >> 27;
	return rng * 2685821657736338717ull;
}

int main(int argc, char **argv)
{
	uint64_t seed = time(NULL);
	unsigned pages = 20000, stops[16] = {0};
	uint64_t insns = 0;
	struct kvm_sregs s0;
	struct kvm_regs r0;
	static struct hvm vm;
	uint8_t *snap;
	const char *e;

	if ((e = getenv("X86_FUZZ_SEED")))
		seed = strtoull(e, NULL, 0);
	if ((e = getenv("X86_FUZZ_N")))
		pages = strtoul(e, NULL, 0);
	if (argc > 1)
		seed = strtoull(argv[1], NULL, 0);
	if (argc > 2)
		pages = strtoul(argv[2], NULL, 0);
	tap_plan(1, 600);
	printf("# seed %llu, %u pages\n", (unsigned long long)seed, pages);
	rng = seed * 0x9e3779b97f4a7c15ull + 1;

	REQUIRE(hvm_init(&vm, 1 << 20) == 0);
	x86_get_sregs(&vm.cpu, &s0);
	x86_get_regs(&vm.cpu, &r0);
	snap = malloc(H_CODE);
	REQUIRE(snap);
	memcpy(snap, vm.mem, H_CODE);

	for (unsigned p = 0; p < pages; p++) {
		/* Fresh tables and state; random code and registers. */
		memcpy(vm.mem, snap, H_CODE);
		for (unsigned k = 0; k < 4096; k += 8) {
			uint64_t v = rnd();

			memcpy(vm.mem + H_CODE + k, &v, 8);
		}
		struct kvm_sregs s = s0;

		/* Half the pages with SSE on: its handlers, not only #UD. */
		if (p & 2)
			s.cr4 |= X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT;
		x86_set_sregs(&vm.cpu, &s);
		x86_set_maxphyaddr(&vm.cpu, p % 3 ? 48 : 40, p % 3 == 0);
		x86_set_msr(&vm.cpu, X86_MSR_LSTAR, H_CODE + (rnd() & 0xfff));
		x86_set_msr(&vm.cpu, X86_MSR_STAR, 0x0018000800000000ull);
		x86_set_msr(&vm.cpu, X86_MSR_FS_BASE, rnd() & 0xfffff);
		x86_set_msr(&vm.cpu, X86_MSR_GS_BASE, rnd() & 0xfffff);
		r0.rip = H_CODE + (rnd() & 0xfff);
		r0.rsp = H_STACK;
		r0.rax = rnd();
		r0.rbx = rnd() & 0xfffff;
		r0.rcx = rnd() & 0xff;
		r0.rdx = rnd();
		r0.rsi = rnd() & 0xfffff;
		r0.rdi = rnd() & 0xfffff;
		r0.rbp = rnd() & 0xfffff;
		r0.r8 = rnd();
		r0.rflags = 2;
		x86_set_regs(&vm.cpu, &r0);
		if (p & 1)
			hvm_set_cpl(&vm, 3);
		vm.cpu.pend.valid = false;

		uint64_t left = 2000;

		for (unsigned n = 0; n < 64 && left; n++) {
			int st = hvm_run(&vm, left);

			insns += vm.stop.executed;
			left -= vm.stop.executed < left ? vm.stop.executed
							: left;
			stops[st & 15]++;
			if (st == X86_STOP_INTERNAL &&
			    getenv("X86_FUZZ_VERBOSE"))
				printf("# internal: %s\n",
				       vm.stop.internal.why);
			if (st == X86_STOP_SHUTDOWN ||
			    st == X86_STOP_INTERNAL || st == X86_STOP_BUDGET ||
			    st == X86_STOP_S2_EXIT)
				break;
			if (st == X86_STOP_MMIO && !vm.stop.mmio.is_write)
				x86_complete_mmio(&vm.cpu, rnd());
			if (st == X86_STOP_IO && !vm.stop.io.is_write)
				x86_complete_in(&vm.cpu, rnd());
			if (hvm_vector(&vm) >= 0) {
				/* Back from the handler into the random code.
				 */
				vm.cpu.rip = H_CODE + (rnd() & 0xfff);
				vm.cpu.gpr[X86_RSP] = H_STACK;
			}
			if (st == X86_STOP_VMCALL)
				vm.cpu.gpr[X86_RAX] = -1000;
			if (!vm.stop.executed)
				left--; /* a stop that retired nothing */
		}
	}
	printf("# %llu instructions; stops: budget %u hlt %u io %u "
	       "vmcall %u mmio %u s2 %u shutdown %u internal %u\n",
	       (unsigned long long)insns, stops[X86_STOP_BUDGET],
	       stops[X86_STOP_HLT], stops[X86_STOP_IO], stops[X86_STOP_VMCALL],
	       stops[X86_STOP_MMIO], stops[X86_STOP_S2_EXIT],
	       stops[X86_STOP_SHUTDOWN], stops[X86_STOP_INTERNAL]);
	CHECK(insns > 0);
	tap_result("random code neither crashes nor hangs the interpreter");
	free(snap);
	hvm_destroy(&vm);
	return tap_done();
}
