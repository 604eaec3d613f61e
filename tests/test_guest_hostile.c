// SPDX-License-Identifier: MIT
/*
 * Hostile guests (DESIGN §3.4, §3.5, §4): a guest that tries to get at
 * what is not its own, or to take the host down with it.  Each case runs
 * in a VM of its own and must end the documented way, with the host and
 * its memory unaffected:
 *
 *   outside   reads and writes GPAs no slot covers (1 GiB, 32 TiB): each is
 *             a KVM_EXIT_MMIO that the VMM answers; no host byte changes;
 *   private   writes a secret into private memory, has the page converted
 *             to shared and reads it: it sees the shared page, never the
 *             secret; back to private it reads zeros; the VMM's shared
 *             memory never held the secret;
 *   xo        with GMEM_CAP_XO_ALIAS, maps its own code through the XO
 *             alias: fetches work, reads and writes raise #PF (P=1, W as
 *             the access, CR2 the address), the code is unchanged;
 *   loop      spins forever: gmem_vcpu_kick() and kvm_run.immediate_exit
 *             each bring the run back with -EINTR (KVM_EXIT_INTR), again
 *             and again;
 *   shutdown  loads an empty IDT and faults: KVM_EXIT_SHUTDOWN.
 *
 * Both halves are here: -DGUEST is the guest (arg0 picks the case).
 */
#define MEM (16ULL << 20)
#define FAR1 (1ULL << 30)  /* no slot here ... */
#define FAR2 (32ULL << 40) /* ... nor here */
#define MMIO_VALUE 0x1122334455667788ULL
#define SECRET 0x5ec7e75ec7e75ec7ULL
#define XO_M 40
#define ALIAS_VA (3ULL << 30) /* where the guest maps the XO alias */

enum { CASE_OUTSIDE = 1, CASE_PRIVATE, CASE_XO, CASE_LOOP, CASE_SHUTDOWN };

#ifdef GUEST

#include "guest.h"

static uint64_t victim[512] __aligned(4096);

static void outside(void)
{
	volatile uint64_t *p = (volatile uint64_t *)FAR1;
	volatile uint64_t *q = (volatile uint64_t *)(FAR1 + 2 * PAGE_SIZE);

	guest_map_page(FAR1, FAR1, PTE_W);
	guest_map_page(FAR1 + 2 * PAGE_SIZE, FAR2, PTE_W);
	GUEST_ASSERT_EQ(*p, MMIO_VALUE);
	*p = 0xdeadbeef;
	GUEST_ASSERT_EQ(*q, MMIO_VALUE);
	*q = 0xfeedface;
}

static void convert_secret(void)
{
	volatile uint64_t *v = victim;
	uint64_t r;

	v[0] = SECRET;
	v[1] = SECRET;
	GUEST_ASSERT_EQ(v[0], SECRET);
	r = guest_map_gpa_range((uint64_t)victim, 1,
				KVM_MAP_GPA_RANGE_DECRYPTED);
	GUEST_ASSERT_EQ(r, 0);
	/* the shared page is the VMM's, filled with 0x5a */
	GUEST_ASSERT_EQ(v[0], 0x5a5a5a5a5a5a5a5aULL);
	GUEST_ASSERT_EQ(v[1], 0x5a5a5a5a5a5a5a5aULL);
	v[2] = 0x5a5a;
	r = guest_map_gpa_range((uint64_t)victim, 1,
				KVM_MAP_GPA_RANGE_ENCRYPTED);
	GUEST_ASSERT_EQ(r, 0);
	/* the secret was discarded on the way out: a fresh page */
	GUEST_ASSERT_EQ(v[0], 0);
	GUEST_ASSERT_EQ(v[1], 0);
	GUEST_ASSERT_EQ(v[2], 0);
}

/* A function to run through the alias: it only returns. */
__attribute__((noinline, aligned(4096))) static void xo_target(void)
{
	asm volatile("");
}

static void xo(void)
{
	uint64_t pa = (uint64_t)xo_target & ~(PAGE_SIZE - 1);
	uint64_t off = (uint64_t)xo_target & (PAGE_SIZE - 1);
	volatile uint64_t *alias = (volatile uint64_t *)(ALIAS_VA + off);
	uint64_t before = *(volatile uint64_t *)xo_target;

	/* Writable at the guest level, so only stage 2 can refuse. */
	guest_map_page(ALIAS_VA, pa | (1ULL << XO_M), PTE_W);
	GUEST_ASSERT_EQ(guest_probe_exec((const void *)alias), -1);
	GUEST_ASSERT_EQ(guest_probe_read(alias), VEC_PF);
	GUEST_ASSERT_EQ(guest_last_fault.error_code, PF_P);
	GUEST_ASSERT_EQ(guest_last_fault.cr2, (uint64_t)alias);
	GUEST_ASSERT_EQ(guest_probe_write(alias, 0xcc), VEC_PF);
	GUEST_ASSERT_EQ(guest_last_fault.error_code, PF_P | PF_W);
	GUEST_ASSERT_EQ(guest_last_fault.cr2, (uint64_t)alias);
	GUEST_ASSERT_EQ(*(volatile uint64_t *)xo_target, before);
}

/* Endless, but it counts: the host kicks once it sees the count move. */
static volatile uint64_t spins;

static void loop(void)
{
	GUEST_SYNC(&spins);
	for (;;)
		spins++;
}

static void shutdown(void)
{
	struct {
		uint16_t limit;
		uint64_t base;
	} __attribute__((packed)) idtr = {0, 0};

	asm volatile("lidt %0\n\tud2" : : "m"(idtr));
	GUEST_ASSERT(0);
}

void guest_main(uint64_t arg0, uint64_t arg1)
{
	switch (arg0) {
	case CASE_OUTSIDE:
		outside();
		break;
	case CASE_PRIVATE:
		convert_secret();
		break;
	case CASE_XO:
		xo();
		break;
	case CASE_LOOP:
		loop();
		break;
	case CASE_SHUTDOWN:
		shutdown();
		break;
	}
	GUEST_DONE(0);
}

#else

#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>

#include "guest_util.h"
#include "tap.h"

/* A VM of @type with the guest loaded for case @c; NULL on failure. */
static struct guest_vm *start(unsigned long type, unsigned int flags, int c,
			      const struct kvm_enable_cap *cap,
			      struct guest_vcpu **v)
{
	struct gmem_load_opts o = {.rdi = (uint64_t)c};
	struct guest_vm *gvm;

	if (guest_vm_create(type, MEM, flags, &gvm))
		return NULL;
	if ((cap && gmem_vm_enable_cap(gvm->vm, cap)) ||
	    guest_vcpu_add(gvm, v) || guest_vm_load(gvm, "hostile", &o)) {
		guest_vm_destroy(gvm);
		return NULL;
	}
	/* This test is the VMM: conversions come back to it. */
	(*v)->convert = 0;
	return gvm;
}

/* Run to DONE, reporting anything else; 0 on DONE(0). */
static int finish(struct guest_vcpu *v)
{
	return guest_vcpu_run_to_done(v, NULL);
}

static void test_outside(void)
{
	struct guest_vcpu *v;
	struct guest_vm *gvm =
		start(KVM_X86_DEFAULT_VM, 0, CASE_OUTSIDE, NULL, &v);
	uint64_t want[4] = {FAR1, FAR1, FAR2, FAR2};
	unsigned int n = 0;
	bool landed = false;
	char msg[768];
	int r;

	REQUIRE(gvm);
	for (;;) {
		struct kvm_run *run = v->run;

		r = guest_vcpu_run(v, NULL);
		if (r != GUEST_EXIT || run->exit_reason != KVM_EXIT_MMIO)
			break;
		if (n < 4 &&
		    (run->mmio.phys_addr != want[n] || run->mmio.len != 8 ||
		     run->mmio.is_write != (n & 1))) {
			tap_diag("MMIO exit %u: gpa %#llx len %u write %u", n,
				 (unsigned long long)run->mmio.phys_addr,
				 run->mmio.len, run->mmio.is_write);
			tap_case_failed = 1;
		}
		if (run->mmio.is_write) {
			uint64_t d;

			memcpy(&d, run->mmio.data, 8);
			CHECK_EQ(d, n == 1 ? 0xdeadbeef : 0xfeedface);
		} else {
			uint64_t d = MMIO_VALUE;

			memcpy(run->mmio.data, &d, 8);
		}
		n++;
	}
	CHECK_EQ(n, 4);
	if (r != UCALL_DONE)
		tap_diag("%s", guest_describe(v, r, NULL, msg, sizeof(msg)));
	CHECK_EQ(r, UCALL_DONE);
	/* the writes went to the VMM only, not into guest RAM */
	for (uint64_t *p = gvm->mem; p < (uint64_t *)gvm->mem + MEM / 8; p++)
		landed |= *p == 0xdeadbeef || *p == 0xfeedface;
	CHECK(!landed);
	guest_vm_destroy(gvm);
	tap_result("outside the slots: every access is an MMIO exit the VMM "
		   "answers; RAM unchanged");
}

static void test_private(void)
{
	struct kvm_enable_cap hc = {.cap = KVM_CAP_EXIT_HYPERCALL};
	struct guest_vcpu *v;
	struct guest_vm *gvm;
	unsigned int conversions = 0;
	bool leaked = false;
	char msg[768];
	int r;

	hc.args[0] = 1ULL << KVM_HC_MAP_GPA_RANGE;
	gvm = start(KVM_X86_SW_PROTECTED_VM, GUEST_VM_PRIVATE, CASE_PRIVATE,
		    &hc, &v);
	REQUIRE(gvm);
	/* the VMM's copy of every page: what a shared view would show */
	memset(gvm->mem, 0x5a, MEM);
	for (;;) {
		struct kvm_run *run = v->run;
		struct kvm_memory_attributes a = {0};

		r = guest_vcpu_run(v, NULL);
		if (r != GUEST_EXIT || run->exit_reason != KVM_EXIT_HYPERCALL)
			break;
		/* A VMM's MAP_GPA_RANGE: set the attributes; discard the
		 * private copy when a page goes shared. */
		a.address = run->hypercall.args[0];
		a.size = run->hypercall.args[1] << 12;
		a.attributes =
			run->hypercall.args[2] & KVM_MAP_GPA_RANGE_ENCRYPTED
				? KVM_MEMORY_ATTRIBUTE_PRIVATE
				: 0;
		run->hypercall.ret =
			(uint64_t)gmem_vm_set_memory_attributes(gvm->vm, &a);
		if (!a.attributes)
			CHECK_EQ(gmem_file_fallocate(
					 gvm->gmem_fd,
					 FALLOC_FL_KEEP_SIZE |
						 FALLOC_FL_PUNCH_HOLE,
					 (int64_t)a.address, (int64_t)a.size),
				 0);
		conversions++;
	}
	if (r != UCALL_DONE)
		tap_diag("%s", guest_describe(v, r, NULL, msg, sizeof(msg)));
	CHECK_EQ(r, UCALL_DONE);
	CHECK_EQ(conversions, 2);
	for (uint64_t *p = gvm->mem; p < (uint64_t *)gvm->mem + MEM / 8; p++)
		leaked |= *p == SECRET;
	CHECK(!leaked);
	guest_vm_destroy(gvm);
	tap_result("private memory: the shared view never shows the secret; "
		   "reconverted it is zero");
}

static void test_xo(void)
{
	struct kvm_enable_cap xo = {.cap = GMEM_CAP_XO_ALIAS};
	struct guest_vcpu *v;
	struct guest_vm *gvm;

	if (gmem_check_extension(NULL, GMEM_CAP_XO_ALIAS) <= 0) {
		tap_skip("XO alias", "GMEM_CAP_XO_ALIAS not supported");
		return;
	}
	xo.args[0] = XO_M;
	gvm = start(KVM_X86_DEFAULT_VM, 0, CASE_XO, &xo, &v);
	REQUIRE(gvm);
	CHECK_EQ(finish(v), 0);
	guest_vm_destroy(gvm);
	tap_result("XO alias: fetch works, read and write #PF with P=1 and "
		   "CR2, code unchanged");
}

struct kicker {
	struct guest_vcpu *v;
	const uint64_t *spins; /* the guest's counter, in the VMM's mapping */
	bool immediate;	       /* set immediate_exit instead of kicking */
};

/*
 * Stop the run once the guest is surely inside it: its counter moves only
 * while the vCPU executes the loop.
 */
static void *kick_running(void *arg)
{
	struct kicker *k = arg;
	uint64_t c0 = __atomic_load_n(k->spins, __ATOMIC_RELAXED);

	while (__atomic_load_n(k->spins, __ATOMIC_RELAXED) == c0)
		sched_yield();
	if (k->immediate)
		__atomic_store_n(&k->v->run->immediate_exit, 1,
				 __ATOMIC_RELAXED);
	else
		gmem_vcpu_kick(k->v->vcpu);
	return NULL;
}

static void test_loop(void)
{
	struct guest_vcpu *v;
	struct guest_vm *gvm =
		start(KVM_X86_DEFAULT_VM, 0, CASE_LOOP, NULL, &v);
	struct guest_ucall uc;

	REQUIRE(gvm);
	REQUIRE(guest_vcpu_run(v, &uc) == UCALL_SYNC);
	REQUIRE(uc.args[0] % 8 == 0 && uc.args[0] + 8 <= MEM);
	for (int i = 0; i < 6; i++) {
		struct kicker k = {
			v, (const uint64_t *)((uint8_t *)gvm->mem + uc.args[0]),
			i & 1};
		pthread_t t;

		REQUIRE(pthread_create(&t, NULL, kick_running, &k) == 0);
		CHECK_EQ(gmem_vcpu_run(v->vcpu), -EINTR);
		CHECK_EQ(v->run->exit_reason, KVM_EXIT_INTR);
		pthread_join(t, NULL);
		v->run->immediate_exit = 0;
	}
	/* set before the run: it returns at once */
	v->run->immediate_exit = 1;
	CHECK_EQ(gmem_vcpu_run(v->vcpu), -EINTR);
	v->run->immediate_exit = 0;
	guest_vm_destroy(gvm);
	tap_result("an endless loop: each kick and immediate_exit returns "
		   "-EINTR");
}

static void test_shutdown(void)
{
	struct guest_vcpu *v;
	struct guest_vm *gvm =
		start(KVM_X86_DEFAULT_VM, 0, CASE_SHUTDOWN, NULL, &v);
	char msg[768];
	int r;

	REQUIRE(gvm);
	r = guest_vcpu_run(v, NULL);
	if (r != GUEST_EXIT || v->run->exit_reason != KVM_EXIT_SHUTDOWN)
		tap_diag("%s", guest_describe(v, r, NULL, msg, sizeof(msg)));
	CHECK_EQ(r, GUEST_EXIT);
	CHECK_EQ(v->run->exit_reason, KVM_EXIT_SHUTDOWN);
	guest_vm_destroy(gvm);
	tap_result("a triple fault: KVM_EXIT_SHUTDOWN");
}

int main(void)
{
	tap_plan(6, 120);
	test_outside();
	test_private();
	test_xo();
	test_loop();
	test_shutdown();
	/* and the host still runs guests */
	CHECK_EQ(guest_run_program("hostile", KVM_X86_DEFAULT_VM, MEM, 0, NULL),
		 0);
	tap_result("after all that, a VM still runs to DONE");
	return tap_done();
}

#endif
