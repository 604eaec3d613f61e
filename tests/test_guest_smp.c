// SPDX-License-Identifier: MIT
/*
 * Several vCPUs of one VM, each on its own host thread: the loader's
 * per-vCPU stacks, TSSs and boot info, and guest memory shared between
 * vCPUs that run at the same time.  Every vCPU checks its boot info,
 * adds to shared counters with LOCK-prefixed instructions many times,
 * then waits for the others (lost updates show as a wrong total), and
 * then all of them run ring-3 code with system calls and faults at once.
 *
 * Not in TSAN_TESTS: the vCPUs share guest memory on purpose, and the CPU
 * model's plain loads and stores of guest memory are host data races to
 * ThreadSanitizer, however the guest synchronises.
 */
#include <stdint.h>

#define NR_CPUS 4
#define ADDS 20000

#ifdef GUEST

#include "guest.h"

static volatile uint64_t counter, arrived;
static volatile uint64_t stack_of[NR_CPUS];
static uint8_t user_stacks[NR_CPUS][8192] __aligned(16);

/*
 * At CPL 3 on every vCPU at once: per-vCPU TSS, syscall stack and probe
 * state (guest_percpu) keep them apart.
 */
static uint64_t user_fn(uint64_t cpu)
{
	for (int i = 0; i < 100; i++) {
		if (guest_probe_read((void *)0x8000000000000000ULL) != VEC_GP)
			return 1000;
		if (guest_syscall(GUEST_SYS_GETCPU, 0) != cpu)
			return 2000;
	}
	return 2 * cpu + 1;
}

static void work(uint64_t cpu)
{
	uint64_t here = (uint64_t)&here;
	uint64_t spins = 0;

	GUEST_ASSERT_EQ(guest_boot->cpu, cpu);
	GUEST_ASSERT_EQ(guest_boot->nr_cpus, NR_CPUS);
	/* On this vCPU's own stack. */
	GUEST_ASSERT(here < guest_boot->stack_top &&
		     here > guest_boot->stack_top - 65536);
	stack_of[cpu] = guest_boot->stack_top;

	for (int i = 0; i < ADDS; i++)
		__atomic_fetch_add(&counter, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&arrived, 1, __ATOMIC_SEQ_CST);

	/* Bounded wait: a vCPU that never runs must not hang the test. */
	while (__atomic_load_n(&arrived, __ATOMIC_SEQ_CST) < NR_CPUS) {
		asm volatile("pause");
		GUEST_ASSERT(++spins < 200000000ULL);
	}
	GUEST_ASSERT_EQ(counter, (uint64_t)NR_CPUS * ADDS);
	GUEST_ASSERT_EQ(guest_this_cpu()->cpu, cpu);
	GUEST_ASSERT_EQ(guest_run_user(user_fn, cpu, user_stacks[cpu] + 8192),
			2 * cpu + 1);
	for (int i = 0; i < NR_CPUS; i++)
		GUEST_ASSERT(i == (int)cpu || stack_of[i] != stack_of[cpu]);
	GUEST_DONE(cpu);
}

void guest_main(uint64_t arg0, uint64_t arg1)
{
	work(0);
}

void guest_ap_main(uint64_t cpu)
{
	work(cpu);
}

#else

#include <pthread.h>

#include "tap.h"
#include "guest_util.h"

#define MEM (16ULL << 20)

struct result {
	struct guest_vcpu *v;
	int ret;
	uint64_t status;
};

static void *vcpu_thread(void *arg)
{
	struct result *r = arg;

	r->ret = guest_vcpu_run_to_done(r->v, &r->status);
	return NULL;
}

int main(void)
{
	struct result res[NR_CPUS];
	pthread_t th[NR_CPUS];
	struct guest_vm *gvm;

	tap_plan(2, 120);
	REQUIRE(guest_vm_create(KVM_X86_DEFAULT_VM, MEM, 0, &gvm) == 0);
	for (int i = 0; i < NR_CPUS; i++)
		REQUIRE(guest_vcpu_add(gvm, &res[i].v) == 0);
	REQUIRE(guest_vm_load(gvm, "smp", NULL) == 0);
	CHECK_EQ(gvm->load.opts.nr_cpus, NR_CPUS);
	tap_result("load one image for four vCPUs");

	for (int i = 0; i < NR_CPUS; i++)
		REQUIRE(pthread_create(&th[i], NULL, vcpu_thread, &res[i]) ==
			0);
	for (int i = 0; i < NR_CPUS; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(res[i].ret, 0);
		CHECK_EQ(res[i].status, i);
	}
	tap_result("four vCPUs on four threads: atomic adds, each DONE");
	guest_vm_destroy(gvm);
	return tap_done();
}

#endif
