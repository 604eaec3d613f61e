// SPDX-License-Identifier: MIT
/*
 * make bench, x86 family: guest MIPS of the interpreter on compute loops,
 * flat-memory backend (no stage 2, no gmem VM), one row per loop.  Times
 * are CPU time of this process, so that a loaded machine skews them less.
 * DESIGN.md §6 wants >= 100 M guest instructions/s on a compute loop.
 */
#include <stdio.h>

#include "bench.h"
#include "x86_harness.h"

/* Register-only arithmetic: the kind of loop a hash or PRNG is. */
GUEST_CODE(b_alu, "mov $50000000, %ecx\n"
		  "xor %eax, %eax\n"
		  "mov $0x9e3779b9, %edx\n"
		  "1: add %rcx, %rax\n"
		  "imul $31, %rax, %rsi\n"
		  "xor %rsi, %rdx\n"
		  "rol $5, %rdx\n"
		  "sub $1, %rcx\n"
		  "jnz 1b\n"
		  "hlt\n");

/* Loads, stores and a compare, as a C loop over an array compiles. */
GUEST_CODE(b_mem, "mov $0x100000, %ebx\n"
		  "mov $20000, %r8d\n"
		  "2: xor %ecx, %ecx\n"
		  "xor %eax, %eax\n"
		  "1: mov (%rbx,%rcx,8), %rdx\n"
		  "add %rdx, %rax\n"
		  "lea 1(%rax), %rdx\n"
		  "mov %rdx, 8(%rbx,%rcx,8)\n"
		  "add $1, %rcx\n"
		  "cmp $512, %rcx\n"
		  "jne 1b\n"
		  "sub $1, %r8d\n"
		  "jnz 2b\n"
		  "hlt\n");

/* Calls and the stack. */
GUEST_CODE(b_call, "mov $10000000, %ecx\n"
		   "1: mov %ecx, %edi\n"
		   "call 3f\n"
		   "add %rax, %r9\n"
		   "dec %ecx\n"
		   "jnz 1b\n"
		   "hlt\n"
		   "3: push %rbp\n"
		   "mov %rsp, %rbp\n"
		   "lea (%rdi,%rdi,2), %eax\n"
		   "pop %rbp\n"
		   "ret\n");

static double cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void bench(const char *name, const uint8_t *b, const uint8_t *e)
{
	static struct hvm vm;
	uint64_t n = 0;
	double t;
	int st;

	if (hvm_init(&vm, 32 << 20)) {
		printf("%s: setup failed\n", name);
		return;
	}
	hvm_load(&vm, H_CODE, b, e);
	t = cpu_now();
	do {
		st = hvm_run(&vm, 1ull << 40);
		n += vm.stop.executed;
	} while (st == X86_STOP_BUDGET);
	t = cpu_now() - t;
	if (st != X86_STOP_HLT)
		progress("%s did not finish", name);
	row(name, n / t / 1e6, "MIPS", 100, "target", ">= 100 MIPS",
	    n / t / 1e6 >= 100 ? MET_YES : MET_NO);
	hvm_destroy(&vm);
}

int main(int argc, char **argv)
{
	bench_open("x86", argc, argv);
	progress("interpreter loops (flat memory, no stage 2)");
	bench("x86 MIPS: alu loop (flat memory)", b_alu, b_alu_end);
	bench("x86 MIPS: load/store loop (flat memory)", b_mem, b_mem_end);
	bench("x86 MIPS: call/ret loop (flat memory)", b_call, b_call_end);
	bench_close();
	return 0;
}
