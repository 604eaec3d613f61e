// SPDX-License-Identifier: MIT
/*
 * Guest MIPS of the interpreter on compute loops, flat-memory backend.
 * Not a test: prints one line per loop.  Times are CPU time of this
 * process, so that a loaded machine skews them less.  DESIGN.md §6 wants >= 100 M
 * guest instructions/s on a compute loop.
 */
#include <stdio.h>
#include <time.h>

#include "x86_harness.h"

/* Register-only arithmetic: the kind of loop a hash or PRNG is. */
GUEST_CODE(b_alu,
	"mov $50000000, %ecx\n"
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
GUEST_CODE(b_mem,
	"mov $0x100000, %ebx\n"
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
GUEST_CODE(b_call,
	"mov $10000000, %ecx\n"
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

static double now(void)
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
	t = now();
	do {
		st = hvm_run(&vm, 1ull << 40);
		n += vm.stop.executed;
	} while (st == X86_STOP_BUDGET);
	t = now() - t;
	printf("%-28s %12llu insns %8.3f s %8.1f MIPS%s\n", name,
	       (unsigned long long)n, t, n / t / 1e6,
	       st == X86_STOP_HLT ? "" : " (did not finish)");
	hvm_destroy(&vm);
}

int main(void)
{
	bench("x86 alu loop", b_alu, b_alu_end);
	bench("x86 load/store loop", b_mem, b_mem_end);
	bench("x86 call/ret loop", b_call, b_call_end);
	return 0;
}
