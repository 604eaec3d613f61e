// SPDX-License-Identifier: MIT
/*
 * Private/shared conversion driven by the guest, in a SW_PROTECTED VM whose
 * RAM is a guest_memfd: KVM_HC_MAP_GPA_RANGE to shared and back (the
 * harness sets the attribute and punches or discards the side left), what
 * each side sees afterwards, a memory-fault exit the host resolves, and
 * the hypercall ABI's error returns, and a poisoned guest_memfd page.  Each
 * case is a step between two GUEST_SYNCs; some steps let the host look at or
 * change memory.
 */
#include <stdint.h>

static const char *const case_names[] = {
	"private memory: guest writes and reads back",
	"to shared: old private data gone, host sees guest writes and v.v.",
	"NW on a shared page: write is a memory-fault exit, host clears it",
	"back to private: punched, so it reads as zero",
	"bad MAP_GPA_RANGE arguments and unknown hypercalls",
	"poisoned page: -EHWPOISON memory-fault exit; punching clears it",
};

#define NR_CASES (sizeof(case_names) / sizeof(case_names[0]))

/* SYNC values above 0x100 ask the host for an action in the middle. */
#define SYNC_CHECK_SHARED 0x101
#define SYNC_SET_NW 0x102
#define SYNC_POISON 0x103

#ifdef GUEST

#include "guest.h"

/* The host finds the second page right after the first. */
static uint8_t pages[2][4096] __aligned(4096);
static uint8_t *const page = pages[0];

static volatile uint64_t *const word = (volatile uint64_t *)page;

static void case_private(void)
{
	word[0] = 0xaaaaaaaaaaaaaaaaULL;
	word[511] = 0x5555;
	GUEST_ASSERT_EQ(word[0], 0xaaaaaaaaaaaaaaaaULL);
	GUEST_ASSERT_EQ(word[511], 0x5555);
}

static void case_to_shared(void)
{
	uint64_t r = guest_map_gpa_range((uint64_t)page, 1,
					 KVM_MAP_GPA_RANGE_DECRYPTED);

	GUEST_ASSERT_EQ(r, 0);
	/* The shared backing never held the private data. */
	GUEST_ASSERT_EQ(word[0], 0);
	GUEST_ASSERT_EQ(word[511], 0);
	word[0] = 0x1234;
	/* The host checks word 0 in its memory and writes word 1. */
	GUEST_SYNC(SYNC_CHECK_SHARED);
	GUEST_ASSERT_EQ(word[1], 0x777);
}

static void case_nw(void)
{
	GUEST_SYNC(SYNC_SET_NW);
	/* The host made the page NW: this write exits until it clears it. */
	word[2] = 0xbeef;
	GUEST_ASSERT_EQ(word[2], 0xbeef);
	GUEST_ASSERT_EQ(word[0], 0x1234);
}

static void case_to_private(void)
{
	uint64_t r = guest_map_gpa_range((uint64_t)page, 1,
					 KVM_MAP_GPA_RANGE_ENCRYPTED);

	GUEST_ASSERT_EQ(r, 0);
	/* The private page was punched when it went shared. */
	for (int i = 0; i < 512; i++)
		GUEST_ASSERT_EQ(word[i], 0);
	word[3] = 3;
	GUEST_ASSERT_EQ(word[3], 3);
}

static void case_errors(void)
{
	/* Misaligned, empty, and past the end of RAM. */
	GUEST_ASSERT_EQ(guest_map_gpa_range((uint64_t)page + 8, 1, 0),
			(uint64_t)-22);
	GUEST_ASSERT_EQ(guest_map_gpa_range((uint64_t)page, 0, 0),
			(uint64_t)-22);
	GUEST_ASSERT_EQ(guest_map_gpa_range(guest_boot->mem_size, 1, 0),
			(uint64_t)-22);
	/* A hypercall KVM does not know: -KVM_ENOSYS, no exit. */
	GUEST_ASSERT_EQ(guest_hypercall(99, 1, 2, 3, 4), (uint64_t)-KVM_ENOSYS);
	/* The page is still private and intact. */
	GUEST_ASSERT_EQ(word[3], 3);
}

static void case_poison(void)
{
	volatile uint64_t *w = (volatile uint64_t *)pages[1];

	w[0] = 5;
	GUEST_ASSERT_EQ(w[0], 5);
	/* The host poisons the page; the next access exits, then reads 0. */
	GUEST_SYNC(SYNC_POISON);
	GUEST_ASSERT_EQ(w[0], 0);
	w[1] = 6;
	GUEST_ASSERT_EQ(w[1], 6);
}

static void (*const cases[])(void) = {
	case_private,	 case_to_shared, case_nw,
	case_to_private, case_errors,	 case_poison,
};

_Static_assert(sizeof(cases) / sizeof(cases[0]) == NR_CASES, "case table");

void guest_main(uint64_t arg0, uint64_t arg1)
{
	GUEST_SYNC((uint64_t)page);
	for (unsigned i = 0; i < NR_CASES; i++) {
		GUEST_SYNC(i);
		cases[i]();
	}
	GUEST_SYNC(NR_CASES);
	GUEST_DONE(0);
}

#else

#include <errno.h>
#include <fcntl.h>

#include "tap.h"
#include "guest_util.h"

#define MEM (16ULL << 20)

static struct guest_vm *gvm;
static uint64_t page_gpa;
static int poison_exits;

/* Run on, doing what the guest asks in the middle of a case. */
static int run(struct guest_vcpu *v, struct guest_ucall *uc)
{
	for (;;) {
		int ret = guest_vcpu_run(v, uc);
		uint64_t *shared = (uint64_t *)((uint8_t *)gvm->mem + page_gpa);

		if (ret == -EHWPOISON &&
		    v->run->exit_reason == KVM_EXIT_MEMORY_FAULT) {
			/* Expected once, in the poison case: the read. */
			CHECK_EQ(v->run->memory_fault.gpa, page_gpa + 4096);
			CHECK_EQ(v->run->memory_fault.size, 4096);
			/* private: PRIVATE alone, as in KVM 6.12 */
			CHECK_EQ(v->run->memory_fault.flags,
				 KVM_MEMORY_EXIT_FLAG_PRIVATE);
			poison_exits++;
			REQUIRE(gmem_file_fallocate(
					gvm->gmem_fd,
					FALLOC_FL_KEEP_SIZE |
						FALLOC_FL_PUNCH_HOLE,
					page_gpa + 4096, 4096) == 0);
			continue;
		}
		if (ret == -EFAULT &&
		    v->run->exit_reason == KVM_EXIT_MEMORY_FAULT) {
			/* Expected once, in the NW case: the write to word 2.
			 */
			CHECK_EQ(v->run->memory_fault.gpa, page_gpa);
			CHECK_EQ(v->run->memory_fault.size, 4096);
			CHECK_EQ(v->run->memory_fault.flags,
				 KVM_MEMORY_EXIT_FLAG_WRITE);
			CHECK_EQ(shared[2], 0);
			REQUIRE(guest_vm_set_attributes(gvm, page_gpa, 4096,
							0) == 0);
			continue;
		}
		if (ret != UCALL_SYNC)
			return ret;
		if (uc->args[0] == SYNC_CHECK_SHARED) {
			CHECK_EQ(shared[0], 0x1234);
			shared[1] = 0x777;
			continue;
		}
		if (uc->args[0] == SYNC_POISON) {
			REQUIRE(gmem_file_poison(gvm->gmem_fd,
						 page_gpa + 4096) == 0);
			continue;
		}
		if (uc->args[0] == SYNC_SET_NW) {
			REQUIRE(guest_vm_set_attributes(
					gvm, page_gpa, 4096,
					KVM_MEMORY_ATTRIBUTE_NW) == 0);
			continue;
		}
		return ret;
	}
}

int main(void)
{
	struct guest_vcpu *v;
	struct guest_ucall uc;
	int ret;

	tap_plan(NR_CASES + 2, 60);
	REQUIRE(guest_vm_create(KVM_X86_SW_PROTECTED_VM, MEM, GUEST_VM_PRIVATE,
				&gvm) == 0);
	REQUIRE(guest_vcpu_add(gvm, &v) == 0);
	REQUIRE(guest_vm_load(gvm, "convert", NULL) == 0);

	ret = run(v, &uc);
	REQUIRE(ret == UCALL_SYNC);
	page_gpa = uc.args[0];
	guest_run_steps(v, case_names, NR_CASES, run);
	CHECK_EQ(v->conversions, 5);
	CHECK_EQ(poison_exits, 1);
	tap_result("five MAP_GPA_RANGE calls and one poison exit seen");
	guest_vm_destroy(gvm);
	return tap_done();
}

#endif
