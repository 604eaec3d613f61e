// SPDX-License-Identifier: MIT
/*
 * Memory-fault scenarios from inside a guest, each judged by gmemvm's own
 * policy code (tools/gmemvm/gmemvm_mem.c):
 *   1 lock and violate: the guest locks pages with GMEM_HC_PROTECT
 *     (no-write, no-exec, no-read), bad requests are refused, a locked
 *     page cannot be converted, and each access a lock denies is a
 *     memory-fault exit with the access flag and the page's GPA, which the
 *     VMM reports as a violation;
 *   2 the same hypercall without GMEM_CAP_EXIT_HYPERCALL: -KVM_ENOSYS;
 *   3 a private page in a slot without guest_memfd: a memory-fault exit
 *     with PRIVATE, refused or converted to shared per --policy;
 *   4 poison: the next access to a poisoned guest_memfd page is an
 *     -EHWPOISON exit; punching the page clears it and it reads zeros;
 *   5 a triple fault: KVM_EXIT_SHUTDOWN;
 *   6 (gmemvm only) the guest converts a page that has no guest_memfd
 *     to private and touches it: gmemvm --policy decides;
 *   7 (gmemvm --on-violation=inject) the guest locks a page no-write and
 *     writes it: the VMM reflects the denied write as #PF, which the
 *     guest catches with the exact error code and CR2.
 * The scenario is the guest's arg0.  tests/test_gmemvm.c runs 1, 5, 6 and
 * 7 under gmemvm.
 */
#include <stdint.h>

enum { LOCK = 1, NOCAP, NO_GMEMFD, POISON, TRIPLE, IMPLICIT, INJECT };

#ifdef GUEST

#include "guest.h"

static volatile uint64_t wpage[512] __aligned(4096);
static volatile uint64_t rpage[512] __aligned(4096);
static volatile uint8_t xpage[4096] __aligned(4096);
static volatile uint64_t ppage[512] __aligned(4096);

static void lock_and_violate(void)
{
	uint64_t w = (uint64_t)wpage, x = (uint64_t)xpage, r = (uint64_t)rpage;
	uint64_t v;

	wpage[0] = 1;
	rpage[0] = 7;
	xpage[0] = 0xc3; /* ret */
	GUEST_ASSERT_EQ(guest_protect(w, 1, GMEM_PROTECT_NW), 0);
	/* Refused: misaligned, empty, unknown bits, beyond RAM. */
	GUEST_ASSERT_EQ(guest_protect(w + 8, 1, GMEM_PROTECT_NW), -22);
	GUEST_ASSERT_EQ(guest_protect(w, 0, GMEM_PROTECT_NW), -22);
	GUEST_ASSERT_EQ(guest_protect(w, 1, 1 << 3), -22);
	GUEST_ASSERT_EQ(guest_protect(guest_boot->mem_size, 1, GMEM_PROTECT_NW),
			-22);
	/* A locked page cannot be converted: PRIVATE would drop the lock. */
	GUEST_ASSERT_EQ(guest_map_gpa_range(w, 1, KVM_MAP_GPA_RANGE_ENCRYPTED),
			-1);
	GUEST_ASSERT_EQ(guest_map_gpa_range(w, 1, KVM_MAP_GPA_RANGE_DECRYPTED),
			-1);
	/* Reads still work. */
	GUEST_ASSERT_EQ(wpage[0], 1);

	GUEST_SYNC(LOCK);
	wpage[0] = 2; /* the host reports it, lifts the lock, resumes */
	GUEST_ASSERT_EQ(wpage[0], 2);

	GUEST_ASSERT_EQ(guest_protect(x, 1, GMEM_PROTECT_NX), 0);
	v = xpage[0]; /* readable */
	GUEST_ASSERT_EQ(v, 0xc3);
	((void (*)(void))x)(); /* exec fault, then runs once lifted */

	/* NR: nothing readable may be written or run. */
	GUEST_ASSERT_EQ(guest_protect(r, 1, GMEM_PROTECT_NR), 0);
	v = rpage[0];
	GUEST_ASSERT_EQ(v, 7);
}

void guest_main(uint64_t scenario, uint64_t arg1)
{
	uint64_t p = (uint64_t)ppage;
	volatile uint64_t *probe;
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) no_idt = {0, 0};

	(void)arg1;
	switch (scenario) {
	case LOCK:
		lock_and_violate();
		break;
	case NOCAP:
		GUEST_ASSERT_EQ(guest_protect(p, 1, GMEM_PROTECT_NW),
				-KVM_ENOSYS);
		ppage[0] = 3; /* nothing was locked */
		break;
	case NO_GMEMFD:
		/* The host makes the page PRIVATE, with no guest_memfd. */
		ppage[0] = 0;
		GUEST_SYNC(p);
		probe = (volatile uint64_t *)p;
		GUEST_ASSERT_EQ(*probe, 0x1234); /* what the host wrote */
		break;
	case POISON:
		ppage[0] = 0x5555;
		GUEST_SYNC(p); /* the host poisons it */
		probe = (volatile uint64_t *)p;
		GUEST_ASSERT_EQ(*probe, 0); /* punched: a fresh page */
		break;
	case TRIPLE:
		/* No IDT: #UD cannot be delivered, nor #DF: shutdown. */
		asm volatile("lidt %0; ud2" : : "m"(no_idt));
		break;
	case IMPLICIT:
		/*
		 * Under gmemvm --gmem-size smaller than RAM: the top page has
		 * no guest_memfd.  Converting it succeeds (attributes are
		 * independent of slots), touching it is the memory fault
		 * that --policy decides.
		 */
		p = guest_boot->free_end - PAGE_SIZE;
		GUEST_ASSERT_EQ(
			guest_map_gpa_range(p, 1, KVM_MAP_GPA_RANGE_ENCRYPTED),
			0);
		probe = (volatile uint64_t *)p;
		*probe = 0x77;
		GUEST_ASSERT_EQ(*probe, 0x77);
		break;
	case INJECT:
		ppage[0] = 5;
		GUEST_ASSERT_EQ(guest_protect(p, 1, GMEM_PROTECT_NW), 0);
		/* CPL 0 write, page present: P|W = 0x3, CR2 = the address. */
		GUEST_ASSERT_EQ(guest_probe_write(&ppage[1], 9), 14);
		GUEST_ASSERT_EQ(guest_last_fault.error_code, 0x3);
		GUEST_ASSERT_EQ(guest_last_fault.cr2, p + 8);
		GUEST_ASSERT_EQ(ppage[1], 0); /* the write did not land */
		GUEST_ASSERT_EQ(ppage[0], 5);
		break;
	default:
		GUEST_ASSERT_MSG(0, "unknown scenario %llu",
				 (unsigned long long)scenario);
	}
}

#else /* host */

#include <linux/falloc.h>
#include <stdio.h>
#include <string.h>

#include <gmem/hypercall.h>

#include "gmemvm_mem.h"
#include "guest_util.h"
#include "tap.h"

#define MEM (32ULL << 20)

struct vm {
	struct guest_vm *gvm;
	struct guest_vcpu *v;
	struct gmemvm_mem mem;
};

static int setup(struct vm *t, unsigned long type, unsigned int flags,
		 uint64_t scenario, int gmem_cap)
{
	struct gmem_load_opts opts = {.rdi = scenario};
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_EXIT_HYPERCALL,
		.args[0] = 1ULL << KVM_HC_MAP_GPA_RANGE,
	};

	if (guest_vm_create(type, MEM, flags, &t->gvm) ||
	    guest_vcpu_add(t->gvm, &t->v))
		return -1;
	if (type == KVM_X86_SW_PROTECTED_VM &&
	    gmem_vm_enable_cap(t->gvm->vm, &cap))
		return -1;
	cap = (struct kvm_enable_cap){
		.cap = GMEM_CAP_EXIT_HYPERCALL,
		.args[0] = 1ULL << (GMEM_HC_PROTECT - GMEM_HC_BASE),
	};
	if (gmem_cap && gmem_vm_enable_cap(t->gvm->vm, &cap))
		return -1;
	t->v->convert = 0; /* hypercalls go to gmemvm's handlers below */
	if (guest_vm_load(t->gvm, "faults", &opts))
		return -1;
	gmemvm_mem_init(&t->mem, t->gvm->vm, MEM, t->gvm->mem, t->gvm->gmem_fd);
	return 0;
}

static void teardown(struct vm *t)
{
	gmemvm_mem_destroy(&t->mem);
	guest_vm_destroy(t->gvm);
}

/*
 * Run, answering hypercalls the way gmemvm does, until something else
 * happens: a ucall (its command), or a memory fault or other exit.
 */
static int run_vm(struct vm *t, struct guest_ucall *uc)
{
	struct kvm_run *run = t->v->run;

	for (;;) {
		int r = guest_vcpu_run(t->v, uc);
		uint64_t *a = run->hypercall.args;

		if (r != GUEST_EXIT || run->exit_reason != KVM_EXIT_HYPERCALL)
			return r;
		if (run->hypercall.nr == KVM_HC_MAP_GPA_RANGE)
			run->hypercall.ret = (uint64_t)gmemvm_map_gpa_range(
				&t->mem, a[0], a[1], a[2]);
		else if (run->hypercall.nr == GMEM_HC_PROTECT)
			run->hypercall.ret = (uint64_t)gmemvm_protect(
				&t->mem, a[0], a[1], a[2]);
		else
			return r;
	}
}

static void describe(struct vm *t, int r, struct guest_ucall *uc)
{
	char msg[768];

	printf("# %s\n", guest_describe(t->v, r, uc, msg, sizeof(msg)));
}

/*
 * Expect a memory fault that gmemvm's policy reports as a violation of a
 * guest lock on the page at @gpa; then lift the attribute (as a test
 * only may) so the guest goes on.
 */
static void expect_violation(struct vm *t, uint64_t flags, uint64_t gpa)
{
	struct kvm_run *run = t->v->run;
	struct kvm_memory_attributes lift = {.address = gpa, .size = 4096};
	struct guest_ucall uc;
	bool violation = false;
	char why[256] = "";
	int r = run_vm(t, &uc);

	if (r != -EFAULT)
		describe(t, r, &uc);
	CHECK_EQ(r, -EFAULT);
	CHECK_EQ(run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	CHECK_EQ(run->memory_fault.flags, flags);
	CHECK_EQ(run->memory_fault.gpa, gpa);
	CHECK_EQ(run->memory_fault.size, 4096);
	CHECK_EQ(gmemvm_memory_fault(&t->mem, r, run->memory_fault.flags,
				     run->memory_fault.gpa,
				     GMEMVM_POLICY_CONVERT, why, sizeof(why),
				     &violation),
		 -1);
	CHECK(violation);
	CHECK(strstr(why, "locked by the guest"));
	printf("# gmemvm would say: %s\n", why);
	CHECK_EQ(gmem_vm_set_memory_attributes(t->gvm->vm, &lift), 0);
}

static void test_lock(void)
{
	struct guest_ucall uc;
	struct vm t;
	uint64_t wpage, xpage;
	int r;

	REQUIRE(setup(&t, KVM_X86_SW_PROTECTED_VM, 0, LOCK, 1) == 0);
	r = run_vm(&t, &uc);
	if (r != UCALL_SYNC)
		describe(&t, r, &uc);
	CHECK_EQ(r, UCALL_SYNC);
	CHECK_EQ(uc.args[0], LOCK);
	CHECK_EQ(t.mem.nr_locks, 1);
	wpage = t.mem.locks[0].start;
	CHECK_EQ(gmemvm_locked(&t.mem, wpage), GMEM_PROTECT_NW);
	CHECK_EQ(t.mem.stats.protect_errors, 4);
	CHECK_EQ(t.mem.stats.map_errors, 2);
	expect_violation(&t, KVM_MEMORY_EXIT_FLAG_WRITE, wpage);
	tap_result("lock no-write, bad requests refused, conversion refused, "
		   "write is a reported violation");

	/* The record stays: the guest can never unlock. */
	CHECK_EQ(gmemvm_locked(&t.mem, wpage), GMEM_PROTECT_NW);
	r = run_vm(&t, &uc);
	CHECK_EQ(r, -EFAULT);
	xpage = t.mem.nr_locks == 2 ? t.mem.locks[1].start : 0;
	CHECK_EQ(t.v->run->memory_fault.flags, KVM_MEMORY_EXIT_FLAG_EXEC);
	CHECK_EQ(t.v->run->memory_fault.gpa, xpage);
	{
		bool violation = false;
		char why[256];

		CHECK_EQ(gmemvm_memory_fault(&t.mem, r,
					     t.v->run->memory_fault.flags,
					     xpage, GMEMVM_POLICY_REFUSE, why,
					     sizeof(why), &violation),
			 -1);
		CHECK(violation && strstr(why, "exec"));
		struct kvm_memory_attributes lift = {.address = xpage,
						     .size = 4096};
		CHECK_EQ(gmem_vm_set_memory_attributes(t.gvm->vm, &lift), 0);
	}
	tap_result("lock no-exec: a fetch is a reported violation");

	REQUIRE(t.mem.nr_locks >= 2);
	{
		uint64_t rpage = 0;

		/* NR was widened to NR|NW|NX; find its page. */
		r = run_vm(&t, &uc);
		CHECK_EQ(r, -EFAULT);
		if (r == -EFAULT)
			rpage = t.v->run->memory_fault.gpa;
		CHECK_EQ(t.v->run->memory_fault.flags,
			 KVM_MEMORY_EXIT_FLAG_READ);
		CHECK_EQ(t.mem.nr_locks, 3);
		CHECK_EQ(t.mem.locks[2].start, rpage);
		CHECK_EQ(t.mem.locks[2].prot, GMEM_PROTECT_ALL);
		struct kvm_memory_attributes lift = {.address = rpage,
						     .size = 4096};
		CHECK_EQ(gmem_vm_set_memory_attributes(t.gvm->vm, &lift), 0);
	}
	r = run_vm(&t, &uc);
	if (r != UCALL_DONE)
		describe(&t, r, &uc);
	CHECK_EQ(r, UCALL_DONE);
	CHECK_EQ(uc.args[0], 0);
	tap_result("lock no-read (widened to no-access): a read is reported; "
		   "guest finishes once lifted");
	teardown(&t);
}

static void test_nocap(void)
{
	struct guest_ucall uc;
	struct vm t;
	int r;

	struct kvm_enable_cap bad = {
		.cap = GMEM_CAP_EXIT_HYPERCALL,
		.flags = 1,
	};

	CHECK_EQ(gmem_check_extension(NULL, GMEM_CAP_EXIT_HYPERCALL), 1);
	REQUIRE(setup(&t, KVM_X86_SW_PROTECTED_VM, 0, NOCAP, 0) == 0);
	CHECK_EQ(gmem_check_extension(t.gvm->vm, GMEM_CAP_EXIT_HYPERCALL), 1);
	CHECK_EQ(gmem_vm_enable_cap(t.gvm->vm, &bad), -EINVAL);
	bad.flags = 0;
	bad.args[1] = 1;
	CHECK_EQ(gmem_vm_enable_cap(t.gvm->vm, &bad), -EINVAL);
	r = run_vm(&t, &uc);
	if (r != UCALL_DONE)
		describe(&t, r, &uc);
	CHECK_EQ(r, UCALL_DONE);
	CHECK_EQ(t.mem.stats.protects, 0);
	tap_result("GMEM_CAP_EXIT_HYPERCALL: offered, bad flags and args "
		   "refused; without it GMEM_HC_PROTECT gets -KVM_ENOSYS");
	teardown(&t);
}

static void test_no_gmemfd(void)
{
	struct kvm_memory_attributes priv = {
		.size = 4096,
		.attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE,
	};
	struct guest_ucall uc;
	struct vm t;
	uint64_t gpa, v = 0x1234;
	bool violation = true;
	char why[256] = "";
	int r;

	/* Shared RAM in a slot without guest_memfd, on a VM that allows
	 * PRIVATE: one page is made private behind the guest's back. */
	REQUIRE(setup(&t, KVM_X86_SW_PROTECTED_VM, 0, NO_GMEMFD, 1) == 0);
	REQUIRE(t.gvm->gmem_fd < 0);
	r = run_vm(&t, &uc);
	CHECK_EQ(r, UCALL_SYNC);
	gpa = uc.args[0];
	REQUIRE(gpa && gpa < MEM);
	memcpy((uint8_t *)t.gvm->mem + gpa, &v, sizeof(v));
	priv.address = gpa;
	CHECK_EQ(gmem_vm_set_memory_attributes(t.gvm->vm, &priv), 0);

	r = run_vm(&t, &uc);
	CHECK_EQ(r, -EFAULT);
	CHECK_EQ(t.v->run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	/* private: PRIVATE alone, as in KVM 6.12 */
	CHECK_EQ(t.v->run->memory_fault.flags, KVM_MEMORY_EXIT_FLAG_PRIVATE);
	CHECK_EQ(t.v->run->memory_fault.gpa, gpa);
	CHECK_EQ(gmemvm_memory_fault(&t.mem, r, t.v->run->memory_fault.flags,
				     gpa, GMEMVM_POLICY_REFUSE, why,
				     sizeof(why), &violation),
		 -1);
	CHECK(!violation);
	CHECK(strstr(why, "refused"));
	printf("# refuse: %s\n", why);
	tap_result("private page without guest_memfd: PRIVATE memory fault, "
		   "refused by policy");

	CHECK_EQ(gmemvm_memory_fault(&t.mem, r, t.v->run->memory_fault.flags,
				     gpa, GMEMVM_POLICY_CONVERT, why,
				     sizeof(why), &violation),
		 0);
	CHECK_EQ(t.mem.stats.implicit, 1);
	r = run_vm(&t, &uc);
	if (r != UCALL_DONE)
		describe(&t, r, &uc);
	CHECK_EQ(r, UCALL_DONE);
	CHECK_EQ(uc.args[0], 0);
	tap_result("... converted to shared by policy: the guest reads the "
		   "host's data");
	teardown(&t);
}

static void test_poison(void)
{
	struct guest_ucall uc;
	struct vm t;
	uint64_t gpa;
	char why[256] = "";
	int r;

	REQUIRE(setup(&t, KVM_X86_SW_PROTECTED_VM, GUEST_VM_PRIVATE, POISON,
		      1) == 0);
	r = run_vm(&t, &uc);
	CHECK_EQ(r, UCALL_SYNC);
	gpa = uc.args[0];
	REQUIRE(gpa && gpa < MEM);
	CHECK_EQ(gmem_file_poison(t.gvm->gmem_fd, (int64_t)gpa), 0);

	r = run_vm(&t, &uc);
	CHECK_EQ(r, -EHWPOISON);
	CHECK_EQ(t.v->run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	/* private: PRIVATE alone, as in KVM 6.12 */
	CHECK_EQ(t.v->run->memory_fault.flags, KVM_MEMORY_EXIT_FLAG_PRIVATE);
	CHECK_EQ(t.v->run->memory_fault.gpa, gpa);
	CHECK_EQ(gmemvm_memory_fault(&t.mem, r, t.v->run->memory_fault.flags,
				     gpa, GMEMVM_POLICY_CONVERT, why,
				     sizeof(why), NULL),
		 -1);
	CHECK(strstr(why, "poisoned"));
	printf("# %s\n", why);

	/* Punching the page clears the poison; it reads as a new page. */
	CHECK_EQ(gmem_file_fallocate(t.gvm->gmem_fd,
				     FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
				     (int64_t)gpa, 4096),
		 0);
	r = run_vm(&t, &uc);
	if (r != UCALL_DONE)
		describe(&t, r, &uc);
	CHECK_EQ(r, UCALL_DONE);
	CHECK_EQ(uc.args[0], 0);
	tap_result("poisoned guest_memfd page: EHWPOISON exit, never "
		   "resolved; punched, it reads zeros");
	teardown(&t);
}

static void test_triple(void)
{
	struct guest_ucall uc;
	struct vm t;
	int r;

	REQUIRE(setup(&t, KVM_X86_DEFAULT_VM, 0, TRIPLE, 1) == 0);
	r = run_vm(&t, &uc);
	CHECK_EQ(r, GUEST_EXIT);
	CHECK_EQ(t.v->run->exit_reason, KVM_EXIT_SHUTDOWN);
	tap_result("triple fault: KVM_EXIT_SHUTDOWN");
	teardown(&t);
}

int main(void)
{
	tap_plan(8, 60);
	test_lock();
	test_nocap();
	test_no_gmemfd();
	test_poison();
	test_triple();
	return tap_done();
}

#endif
