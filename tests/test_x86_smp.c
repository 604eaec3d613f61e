// SPDX-License-Identifier: MIT
/*
 * Two vCPUs, one per thread, on shared guest memory: LOCK-prefixed
 * read-modify-writes and an XCHG spinlock must not lose updates, and the
 * interpreter's own accesses to shared guest memory must be race-free
 * (this test also runs under ThreadSanitizer).
 */
#include <pthread.h>

#include "tap.h"
#include "x86_harness.h"

#define ITERS 200000
#define COUNTER 0x20000
#define LOCK 0x20040
#define SHARED 0x20080
#define XADDV 0x200c0
#define CASV 0x20100

GUEST_CODE(g_smp, "mov $200000, %ecx\n"
		  "2: lock incl 0x20000\n"
		  /* spinlock around a plain increment */
		  "1: mov $1, %eax\n"
		  "xchg %eax, 0x20040\n"
		  "test %eax, %eax\n"
		  "jz 3f\n"
		  "pause\n"
		  "jmp 1b\n"
		  "3: mov 0x20080, %rdx\n"
		  "inc %rdx\n"
		  "mov %rdx, 0x20080\n"
		  "movl $0, 0x20040\n"
		  /* xadd and a cmpxchg retry loop */
		  "mov $2, %eax\n"
		  "lock xadd %eax, 0x200c0\n"
		  "mov 0x20100, %rax\n"
		  "4: lea 3(%rax), %rdx\n"
		  "lock cmpxchg %rdx, 0x20100\n"
		  "jnz 4b\n"
		  "dec %ecx\n"
		  "jnz 2b\n"
		  "hlt\n");

static struct hvm vm;

struct vcpu {
	struct x86_cpu *cpu;
	struct x86_stop stop;
	int result;
};

static void *vcpu_thread(void *arg)
{
	struct vcpu *v = arg;

	do
		v->result = x86_run(v->cpu, 1 << 20, &v->stop);
	while (v->result == X86_STOP_BUDGET);
	return NULL;
}

int main(void)
{
	static struct x86_cpu cpu1;
	struct vcpu v[2];
	pthread_t t[2];
	struct kvm_sregs s;
	struct kvm_regs r;

	tap_plan(1, 120);
	REQUIRE(hvm_init(&vm, 16 << 20) == 0);
	hvm_load(&vm, H_CODE, g_smp, g_smp_end);
	/* A second CPU with the same state and its own stack. */
	REQUIRE(x86_cpu_init(&cpu1, &hvm_bus, &vm) == 0);
	x86_get_sregs(&vm.cpu, &s);
	x86_set_sregs(&cpu1, &s);
	x86_get_regs(&vm.cpu, &r);
	r.rsp = H_STACK - 0x8000;
	x86_set_regs(&cpu1, &r);

	v[0].cpu = &vm.cpu;
	v[1].cpu = &cpu1;
	for (int k = 0; k < 2; k++)
		REQUIRE(pthread_create(&t[k], NULL, vcpu_thread, &v[k]) == 0);
	for (int k = 0; k < 2; k++)
		pthread_join(t[k], NULL);
	CHECK_EQ(v[0].result, X86_STOP_HLT);
	CHECK_EQ(v[1].result, X86_STOP_HLT);
	CHECK_EQ(*hvm_q(&vm, COUNTER) & 0xffffffff, 2 * ITERS);
	CHECK_EQ(*hvm_q(&vm, SHARED), 2 * ITERS);
	CHECK_EQ(*hvm_q(&vm, XADDV) & 0xffffffff, 4 * ITERS);
	CHECK_EQ(*hvm_q(&vm, CASV), 6 * ITERS);
	tap_result("LOCK RMW and an XCHG spinlock across two vCPU threads");
	x86_cpu_destroy(&cpu1);
	hvm_destroy(&vm);
	return tap_done();
}
