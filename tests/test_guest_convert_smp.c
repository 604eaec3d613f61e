// SPDX-License-Identifier: MIT
/*
 * Private/shared conversions end to end, on several vCPUs at once: every
 * vCPU converts ranges of 4 KiB to 2 MiB of its own 2 MiB window back and
 * forth with KVM_HC_MAP_GPA_RANGE and checks the data at each step:
 *   - memory converted to shared reads zeros (the private pages were
 *     punched, the shared ones released when it last went private);
 *   - what the guest writes to shared memory is what the host sees in the
 *     slot's userspace memory (the guest asks with GUEST_SYNC);
 *   - a private page that is never converted keeps its data through all
 *     of it (one sentinel page per vCPU, beside the window).
 * The host half runs one thread per vCPU and answers the hypercalls with
 * gmemvm's own conversion code (tools/gmemvm/gmemvm_mem.c).  The same
 * guest also runs under gmemvm (tests/test_gmemvm.c); there GUEST_SYNC
 * returns 0, so each vCPU first asks with SYNC(0) whether the host checks.
 */
#include <stdint.h>

#define SZ_4K 4096ULL
#define SZ_2M (2ULL << 20)
#define ITERATIONS 24

/* A word of the pattern for @seed at @gpa; 0 is never a pattern word. */
static inline uint64_t pattern(uint64_t seed, uint64_t gpa)
{
	return (seed * 0x9e3779b97f4a7c15ULL) ^ gpa ^ 0x8000000000000000ULL;
}

/*
 * A SYNC that asks the host to check shared data: GPA in bits 0-31 (RAM
 * is below 4 GiB), pages in 32-43, the seed in 44-63.
 */
#define SYNC_CHECK(gpa, pages, seed) \
	((gpa) | ((uint64_t)(pages) << 32) | ((uint64_t)(seed) << 44))

#ifdef GUEST

#include "guest.h"

static uint64_t window(uint64_t cpu)
{
	uint64_t base = (guest_boot->free_start + SZ_2M - 1) & ~(SZ_2M - 1);

	/* 4 MiB per vCPU: the 2 MiB window, then the sentinel page. */
	return base + cpu * 2 * SZ_2M;
}

/* One word per 512 bytes: enough to catch a page that is wrong. */
static void fill(uint64_t gpa, uint64_t size, uint64_t seed)
{
	for (uint64_t a = gpa; a < gpa + size; a += 512)
		*(volatile uint64_t *)a = pattern(seed, a);
}

static uint64_t check(uint64_t gpa, uint64_t size, uint64_t seed)
{
	for (uint64_t a = gpa; a < gpa + size; a += 512) {
		uint64_t want = seed ? pattern(seed, a) : 0;

		if (*(volatile uint64_t *)a != want)
			return a;
	}
	return 0;
}

static void convert(uint64_t gpa, uint64_t size, int to_private)
{
	uint64_t r =
		guest_map_gpa_range(gpa, size / SZ_4K,
				    to_private ? KVM_MAP_GPA_RANGE_ENCRYPTED
					       : KVM_MAP_GPA_RANGE_DECRYPTED);

	GUEST_ASSERT_EQ(r, 0);
}

static void run(uint64_t cpu, uint64_t host_checks)
{
	static const uint64_t sizes[] = {SZ_4K, 16 * SZ_4K, 256 * SZ_4K, SZ_2M,
					 3 * SZ_4K};
	uint64_t win = window(cpu), sentinel = win + SZ_2M;
	uint64_t bad;

	GUEST_ASSERT(sentinel + SZ_4K <= guest_boot->free_end);
	/* RAM starts private: the sentinel never leaves it. */
	fill(sentinel, SZ_4K, 1000 + cpu);

	for (uint64_t i = 0; i < ITERATIONS; i++) {
		uint64_t size = sizes[i % ARRAY_SIZE(sizes)];
		uint64_t slots = SZ_2M / size;
		uint64_t gpa = win + ((i * 37 + cpu) % slots) * size;
		uint64_t seed = (cpu << 8 | i) + 1;

		/* Private with our data... */
		convert(gpa, size, 1);
		fill(gpa, size, seed);
		bad = check(gpa, size, seed);
		GUEST_ASSERT_EQ(bad, 0);

		/* ...shared: zeros, not the private data... */
		convert(gpa, size, 0);
		bad = check(gpa, size, 0);
		GUEST_ASSERT_EQ(bad, 0);

		/* ...what we write there, the host sees... */
		fill(gpa, size, seed + 0x10000);
		if (host_checks)
			GUEST_ASSERT_EQ(GUEST_SYNC(SYNC_CHECK(gpa, size / SZ_4K,
							      seed + 0x10000)),
					1);

		/* ...and back to private: zeros again. */
		convert(gpa, size, 1);
		bad = check(gpa, size, 0);
		GUEST_ASSERT_EQ(bad, 0);

		bad = check(sentinel, SZ_4K, 1000 + cpu);
		GUEST_ASSERT_EQ(bad, 0);
	}
	/* Leave the window shared and zero, as it was never touched. */
	convert(win, SZ_2M, 0);
	bad = check(win, SZ_2M, 0);
	GUEST_ASSERT_EQ(bad, 0);
}

/* SYNC(0) asks whether the host checks shared data: gmemvm says 0. */
void guest_ap_main(uint64_t cpu)
{
	run(cpu, GUEST_SYNC(0));
}

void guest_main(uint64_t arg0, uint64_t arg1)
{
	(void)arg0;
	(void)arg1;
	run(0, GUEST_SYNC(0));
}

#else /* host */

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "gmemvm_mem.h"
#include "guest_util.h"
#include "tap.h"

#define MEM (64ULL << 20)
#define NR_VCPUS 4

struct worker {
	struct guest_vcpu *v;
	struct gmemvm_mem *mem;
	pthread_t thread;
	int failed;
	unsigned long host_checks, hypercalls;
	char why[768];
};

/* The host's view of shared memory: the slot's userspace mapping. */
static int host_sees(struct worker *w, uint64_t arg)
{
	uint64_t gpa = arg & 0xffffffffULL;
	uint64_t size = ((arg >> 32) & 0xfff) * SZ_4K;
	uint64_t seed = arg >> 44;
	const uint8_t *mem = w->v->gvm->mem;

	if (!size || gpa + size > MEM)
		return 0;
	for (uint64_t a = gpa; a < gpa + size; a += 512) {
		uint64_t word;

		memcpy(&word, mem + a, sizeof(word));
		if (word != pattern(seed, a))
			return 0;
	}
	return 1;
}

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	struct kvm_run *run = w->v->run;
	struct guest_ucall uc;

	for (;;) {
		int r = guest_vcpu_run(w->v, &uc);

		if (r == UCALL_DONE && uc.args[0] == 0)
			return NULL;
		if (r == UCALL_SYNC && uc.args[0] == 0) {
			guest_vcpu_reply(w->v, 1); /* yes, we check */
			continue;
		}
		if (r == UCALL_SYNC) {
			int ok = host_sees(w, uc.args[0]);

			w->host_checks += ok;
			guest_vcpu_reply(w->v, ok);
			continue;
		}
		if (r == GUEST_EXIT && run->exit_reason == KVM_EXIT_HYPERCALL &&
		    run->hypercall.nr == KVM_HC_MAP_GPA_RANGE) {
			run->hypercall.ret = (uint64_t)gmemvm_map_gpa_range(
				w->mem, run->hypercall.args[0],
				run->hypercall.args[1], run->hypercall.args[2]);
			w->hypercalls++;
			continue;
		}
		guest_describe(w->v, r, &uc, w->why, sizeof(w->why));
		w->failed = 1;
		return NULL;
	}
}

int main(void)
{
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_EXIT_HYPERCALL,
		.args[0] = 1ULL << KVM_HC_MAP_GPA_RANGE,
	};
	struct worker w[NR_VCPUS] = {0};
	struct gmemvm_mem mem;
	struct guest_vm *gvm;
	int ret;

	tap_plan(2, 120);
	ret = guest_vm_create(KVM_X86_SW_PROTECTED_VM, MEM, GUEST_VM_PRIVATE,
			      &gvm);
	REQUIRE(ret == 0);
	for (int i = 0; i < NR_VCPUS; i++) {
		REQUIRE(guest_vcpu_add(gvm, &w[i].v) == 0);
		/* gmemvm's handler answers, not the harness's own. */
		w[i].v->convert = 0;
	}
	REQUIRE(gmem_vm_enable_cap(gvm->vm, &cap) == 0);
	REQUIRE(guest_vm_load(gvm, "convert_smp", NULL) == 0);
	gmemvm_mem_init(&mem, gvm->vm, gvm->mem_size, gvm->mem, gvm->gmem_fd);

	for (int i = 0; i < NR_VCPUS; i++) {
		w[i].mem = &mem;
		REQUIRE(pthread_create(&w[i].thread, NULL, worker_main,
				       &w[i]) == 0);
	}
	for (int i = 0; i < NR_VCPUS; i++) {
		pthread_join(w[i].thread, NULL);
		if (w[i].failed)
			printf("# %s\n", w[i].why);
		CHECK_EQ(w[i].failed, 0);
		/* Each iteration: three conversions and one host check. */
		CHECK_EQ(w[i].hypercalls, 3 * ITERATIONS + 1);
		CHECK_EQ(w[i].host_checks, ITERATIONS);
	}
	tap_result("4 vCPUs convert 4 KiB..2 MiB back and forth; data checked "
		   "by guest and host");

	CHECK(mem.stats.pages_to_private > 0);
	CHECK_EQ(mem.stats.to_private + mem.stats.to_shared,
		 NR_VCPUS * (3 * ITERATIONS + 1));
	CHECK_EQ(mem.stats.map_errors, 0);
	tap_result("every conversion was done by gmemvm's handler");

	gmemvm_mem_destroy(&mem);
	guest_vm_destroy(gvm);
	return tap_done();
}

#endif
