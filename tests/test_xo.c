// SPDX-License-Identifier: MIT
/*
 * Execute-only memory at the library level (DESIGN §3.5, §3.4 step 1),
 * through gmem_vcpu_access() with gpa | xo_bit, where a guest would be
 * overkill: enabling GMEM_CAP_XO_ALIAS (typed API and façade), the fault
 * order on the alias, the alias over shared and private memory, attribute
 * denials seen through it, invalidation of alias translations by every
 * kind of update, the EXECONLY slot flag and the exec-only attribute
 * (GMEM_CAP_EXEC_ONLY).  tests/test_guest_xo.c does the same from inside
 * a guest.
 */
#include <linux/falloc.h>
#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include <gmem/gmem.h>
#include <gmem/kvm.h>

#include "tap.h"

#define NR KVM_MEMORY_ATTRIBUTE_NR
#define NW KVM_MEMORY_ATTRIBUTE_NW
#define NX KVM_MEMORY_ATTRIBUTE_NX
#define PRIV KVM_MEMORY_ATTRIBUTE_PRIVATE
#define RD GMEM_ACCESS_READ
#define WR GMEM_ACCESS_WRITE
#define EX GMEM_ACCESS_FETCH

#define PG 4096ULL
#define SIZE (4ULL << 20)
#define M 40
#define XO (1ULL << M)

struct env {
	struct gmem_vm *vm;
	struct gmem_vcpu *vcpu;
	struct kvm_run *run;
	int memfd;
	uint8_t *shared;
};

static int enable_xo(struct gmem_vm *vm, uint64_t m)
{
	struct kvm_enable_cap cap = {.cap = GMEM_CAP_XO_ALIAS, .args = {m}};

	return gmem_vm_enable_cap(vm, &cap);
}

/*
 * A SW_PROTECTED VM with XO at bit M (unless @m is 0), one slot at GPA 0
 * with shared memory and a guest_memfd behind it, and one vCPU.
 */
static void env_init(struct env *e, uint64_t m)
{
	struct kvm_enable_cap cap;
	struct kvm_create_guest_memfd cg = {.size = SIZE};
	struct kvm_userspace_memory_region2 r = {
		.slot = 0,
		.flags = KVM_MEM_GUEST_MEMFD,
		.memory_size = SIZE,
	};

	*e = (struct env){0};
	REQUIRE(gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &e->vm) == 0);
	/* Exits say which access an attribute denied. */
	cap = (struct kvm_enable_cap){.cap = GMEM_CAP_FAULT_ACCESS_FLAGS};
	REQUIRE(gmem_vm_enable_cap(e->vm, &cap) == 0);
	if (m)
		REQUIRE(enable_xo(e->vm, m) == 0);
	e->memfd = gmem_create_guest_memfd(e->vm, &cg);
	REQUIRE(e->memfd >= 0);
	e->shared = mmap(NULL, SIZE, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	REQUIRE(e->shared != MAP_FAILED);
	r.userspace_addr = (uintptr_t)e->shared;
	r.guest_memfd = (uint32_t)e->memfd;
	REQUIRE(gmem_vm_set_memory_region2(e->vm, &r) == 0);
	REQUIRE(gmem_vcpu_create(e->vm, 0, &e->vcpu) == 0);
	e->run = gmem_vcpu_kvm_run(e->vcpu);
}

static void env_fini(struct env *e)
{
	gmem_vcpu_destroy(e->vcpu);
	gmem_handle_close(e->memfd);
	gmem_vm_put(e->vm);
	munmap(e->shared, SIZE);
}

static int set_attr(struct env *e, uint64_t gpa, uint64_t size, uint64_t attrs)
{
	struct kvm_memory_attributes a = {
		.address = gpa, .size = size, .attributes = attrs};

	return gmem_vm_set_memory_attributes(e->vm, &a);
}

static int acc(struct env *e, uint64_t gpa, void *buf, size_t len,
	       unsigned int how)
{
	memset(e->run, 0, sizeof(*e->run));
	return gmem_vcpu_access(e->vcpu, gpa, buf, len, how);
}

static uint64_t xo_faults(struct env *e)
{
	struct gmem_vcpu_stats st;

	REQUIRE(gmem_vcpu_get_stats(e->vcpu, &st) == 0);
	return st.xo_faults;
}

static void check_fault(struct env *e, uint64_t flags, uint64_t gpa)
{
	CHECK_EQ(e->run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	CHECK_EQ(e->run->memory_fault.flags, flags);
	CHECK_EQ(e->run->memory_fault.gpa, gpa);
	CHECK_EQ(e->run->memory_fault.size, PG);
}

static void t_enable(void)
{
	struct gmem_vm *vm;
	struct gmem_vcpu *vcpu;
	struct kvm_enable_cap cap = {.cap = GMEM_CAP_XO_ALIAS, .args = {M}};

	CHECK_EQ(gmem_check_extension(NULL, GMEM_CAP_XO_ALIAS), 1);
	CHECK_EQ(gmem_check_extension(NULL, GMEM_CAP_EXEC_ONLY), 1);
	REQUIRE(gmem_vm_create(KVM_X86_DEFAULT_VM, &vm) == 0);
	CHECK_EQ(gmem_check_extension(vm, GMEM_CAP_XO_ALIAS), 1);
	/* M is a physical-address width a guest can believe. */
	CHECK_EQ(enable_xo(vm, 31), -EINVAL);
	CHECK_EQ(enable_xo(vm, 52), -EINVAL);
	CHECK_EQ(enable_xo(vm, 0), -EINVAL);
	cap.flags = 1;
	CHECK_EQ(gmem_vm_enable_cap(vm, &cap), -EINVAL);
	cap.flags = 0;
	cap.args[1] = 1;
	CHECK_EQ(gmem_vm_enable_cap(vm, &cap), -EINVAL);
	CHECK_EQ(enable_xo(vm, 32), 0);
	CHECK_EQ(enable_xo(vm, 51), 0);
	CHECK_EQ(enable_xo(vm, M), 0);
	/* vCPUs read it at creation: too late once one exists. */
	REQUIRE(gmem_vcpu_create(vm, 0, &vcpu) == 0);
	CHECK_EQ(enable_xo(vm, M), -EINVAL);
	gmem_vcpu_destroy(vcpu);
	gmem_vm_put(vm);
	tap_result("GMEM_CAP_XO_ALIAS: M in 32..51, before the first vCPU");
}

static void t_facade(void)
{
	int sys = gmem_open(), vm, vcpu;
	struct kvm_enable_cap cap = {.cap = GMEM_CAP_XO_ALIAS, .args = {52}};

	REQUIRE(sys >= 0);
	CHECK_EQ(gmem_ioctl(sys, KVM_CHECK_EXTENSION, GMEM_CAP_XO_ALIAS), 1);
	vm = gmem_ioctl(sys, KVM_CREATE_VM, KVM_X86_DEFAULT_VM);
	REQUIRE(vm >= 0);
	CHECK_EQ(gmem_ioctl(vm, KVM_CHECK_EXTENSION, GMEM_CAP_XO_ALIAS), 1);
	CHECK_ERRNO(gmem_ioctl(vm, KVM_ENABLE_CAP, &cap), EINVAL);
	cap.args[0] = M;
	CHECK_EQ(gmem_ioctl(vm, KVM_ENABLE_CAP, &cap), 0);
	vcpu = gmem_ioctl(vm, KVM_CREATE_VCPU, 0);
	CHECK(vcpu >= 0);
	CHECK_ERRNO(gmem_ioctl(vm, KVM_ENABLE_CAP, &cap), EINVAL);
	gmem_close(vcpu);
	gmem_close(vm);
	gmem_close(sys);
	tap_result("KVM_ENABLE_CAP/KVM_CHECK_EXTENSION through the façade");
}

static void t_alias_rw(void)
{
	struct env e;
	uint64_t v = 0x1122334455667788ULL, w = 0, before;

	env_init(&e, M);
	CHECK_EQ(acc(&e, 0x3000, &v, 8, WR), 0);
	/* Fetch through the alias sees the same memory. */
	CHECK_EQ(acc(&e, 0x3000 | XO, &w, 8, EX), 0);
	CHECK_EQ(w, v);
	/* Read and write are #PF for the CPU model: no exit, no effect. */
	before = xo_faults(&e);
	w = 0;
	CHECK_EQ(acc(&e, 0x3000 | XO, &w, 8, RD), GMEM_VCPU_ACCESS_XO);
	CHECK_EQ(w, 0);
	CHECK_EQ(e.run->exit_reason, 0);
	w = 0xdead;
	CHECK_EQ(acc(&e, 0x3000 | XO, &w, 8, WR), GMEM_VCPU_ACCESS_XO);
	CHECK_EQ(e.run->exit_reason, 0);
	CHECK_EQ(acc(&e, 0x3000, &w, 8, RD), 0);
	CHECK_EQ(w, v);
	CHECK_EQ(xo_faults(&e) - before, 2);
	/* Twice: a cached fetch translation must not serve a read. */
	CHECK_EQ(acc(&e, 0x3000 | XO, &w, 8, EX), 0);
	CHECK_EQ(acc(&e, 0x3000 | XO, &w, 8, RD), GMEM_VCPU_ACCESS_XO);
	/* An access across two alias pages faults as a whole. */
	CHECK_EQ(acc(&e, (0x4000 | XO) - 4, &w, 8, RD), GMEM_VCPU_ACCESS_XO);
	env_fini(&e);
	tap_result("alias: fetch sees the page, read/write give "
		   "GMEM_VCPU_ACCESS_XO");
}

static void t_order(void)
{
	struct env e;
	uint64_t w = 0;

	env_init(&e, M);
	/* Step 1 comes before step 2: no slot, still #PF, not MMIO. */
	CHECK_EQ(acc(&e, (64ULL << 20) | XO, &w, 8, RD), GMEM_VCPU_ACCESS_XO);
	CHECK_EQ(acc(&e, (64ULL << 20) | XO, &w, 8, WR), GMEM_VCPU_ACCESS_XO);
	/* And before attributes: NR on the base page changes nothing. */
	CHECK_EQ(set_attr(&e, 0x5000, PG, NR | NW | NX), 0);
	CHECK_EQ(acc(&e, 0x5000 | XO, &w, 8, RD), GMEM_VCPU_ACCESS_XO);
	/* A fetch with no slot behind is MMIO, like the base address. */
	CHECK_EQ(acc(&e, (64ULL << 20) | XO, &w, 8, EX), GMEM_VCPU_ACCESS_EXIT);
	CHECK_EQ(e.run->exit_reason, KVM_EXIT_MMIO);
	env_fini(&e);
	tap_result("fault order: the alias check precedes MMIO and attributes");
}

static void t_attrs(void)
{
	struct env e;
	uint64_t w = 0;

	env_init(&e, M);
	/* Warm the alias, then deny exec on the base page. */
	CHECK_EQ(acc(&e, 0x6000 | XO, &w, 8, EX), 0);
	CHECK_EQ(set_attr(&e, 0x6000, PG, NX), 0);
	CHECK_EQ(acc(&e, 0x6000 | XO, &w, 8, EX), -EFAULT);
	check_fault(&e, KVM_MEMORY_EXIT_FLAG_EXEC, 0x6000);
	/* NW alone leaves fetches alone. */
	CHECK_EQ(set_attr(&e, 0x6000, PG, NW), 0);
	CHECK_EQ(acc(&e, 0x6000 | XO, &w, 8, EX), 0);
	/* Private without the file behind it: the PRIVATE flag shows. */
	CHECK_EQ(set_attr(&e, 0x6000, PG, PRIV), 0);
	CHECK_EQ(acc(&e, 0x6000 | XO, &w, 8, EX), 0);
	gmem_handle_close(e.memfd);
	CHECK_EQ(acc(&e, 0x6000 | XO, &w, 8, EX), -EFAULT);
	check_fault(&e, KVM_MEMORY_EXIT_FLAG_PRIVATE, 0x6000);
	e.memfd = -1;
	gmem_vcpu_destroy(e.vcpu);
	gmem_vm_put(e.vm);
	munmap(e.shared, SIZE);
	tap_result("base-page attributes apply through the alias (EXEC flag, "
		   "base GPA)");
}

static void t_private(void)
{
	struct env e;
	uint64_t v = 0xabcdefULL, w = 0;

	env_init(&e, M);
	e.shared[0x7000] = 0x5a;
	CHECK_EQ(acc(&e, 0x7000 | XO, &w, 1, EX), 0);
	CHECK_EQ(w, 0x5a);
	/* Conversion: the alias follows the page to guest_memfd. */
	CHECK_EQ(set_attr(&e, 0x7000, PG, PRIV), 0);
	CHECK_EQ(acc(&e, 0x7000, &v, 8, WR), 0);
	CHECK_EQ(acc(&e, 0x7000 | XO, &w, 8, EX), 0);
	CHECK_EQ(w, v);
	CHECK_EQ(acc(&e, 0x7000 | XO, &w, 8, RD), GMEM_VCPU_ACCESS_XO);
	/* And back to the shared page. */
	CHECK_EQ(set_attr(&e, 0x7000, PG, 0), 0);
	w = 0;
	CHECK_EQ(acc(&e, 0x7000 | XO, &w, 1, EX), 0);
	CHECK_EQ(w, 0x5a);
	/* Punch: the next fetch through the alias gets a zeroed page. */
	CHECK_EQ(set_attr(&e, 0x7000, PG, PRIV), 0);
	CHECK_EQ(acc(&e, 0x7000 | XO, &w, 8, EX), 0);
	CHECK_EQ(w, v);
	CHECK_EQ(gmem_file_fallocate(e.memfd,
				     FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
				     0x7000, PG),
		 0);
	CHECK_EQ(acc(&e, 0x7000 | XO, &w, 8, EX), 0);
	CHECK_EQ(w, 0);
	/* Poison reaches the alias too. */
	CHECK_EQ(gmem_file_poison(e.memfd, 0x7000), 0);
	CHECK_EQ(acc(&e, 0x7000 | XO, &w, 8, EX), -EHWPOISON);
	check_fault(&e, KVM_MEMORY_EXIT_FLAG_PRIVATE, 0x7000);
	env_fini(&e);
	tap_result("alias over guest_memfd: conversions, punch, poison");
}

static void t_slots(void)
{
	struct env e;
	uint8_t *mem[2];
	uint64_t w = 0;
	struct kvm_userspace_memory_region2 r = {
		.slot = 1,
		.guest_phys_addr = 32ULL << 20,
		.memory_size = PG,
	};

	env_init(&e, M);
	for (int i = 0; i < 2; i++) {
		mem[i] = mmap(NULL, PG, PROT_READ | PROT_WRITE,
			      MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		REQUIRE(mem[i] != MAP_FAILED);
		mem[i][0] = 0x10 + i;
	}
	r.userspace_addr = (uintptr_t)mem[0];
	CHECK_EQ(gmem_vm_set_memory_region2(e.vm, &r), 0);
	CHECK_EQ(acc(&e, r.guest_phys_addr | XO, &w, 1, EX), 0);
	CHECK_EQ(w, 0x10);
	/* Delete: the alias goes with the slot. */
	r.memory_size = 0;
	CHECK_EQ(gmem_vm_set_memory_region2(e.vm, &r), 0);
	CHECK_EQ(acc(&e, r.guest_phys_addr | XO, &w, 1, EX),
		 GMEM_VCPU_ACCESS_EXIT);
	CHECK_EQ(e.run->exit_reason, KVM_EXIT_MMIO);
	/* Recreated on other memory: the alias sees the new memory. */
	r.memory_size = PG;
	r.userspace_addr = (uintptr_t)mem[1];
	CHECK_EQ(gmem_vm_set_memory_region2(e.vm, &r), 0);
	CHECK_EQ(acc(&e, r.guest_phys_addr | XO, &w, 1, EX), 0);
	CHECK_EQ(w, 0x11);
	/* Moved: the alias of the old GPA is gone, the new one works. */
	r.guest_phys_addr += 2 * PG;
	CHECK_EQ(gmem_vm_set_memory_region2(e.vm, &r), 0);
	CHECK_EQ(acc(&e, (r.guest_phys_addr - 2 * PG) | XO, &w, 1, EX),
		 GMEM_VCPU_ACCESS_EXIT);
	w = 0;
	CHECK_EQ(acc(&e, r.guest_phys_addr | XO, &w, 1, EX), 0);
	CHECK_EQ(w, 0x11);
	/* READONLY drops W, which the alias never had: fetch still works. */
	r.memory_size = 0;
	CHECK_EQ(gmem_vm_set_memory_region2(e.vm, &r), 0);
	r.memory_size = PG;
	r.flags = KVM_MEM_READONLY;
	CHECK_EQ(gmem_vm_set_memory_region2(e.vm, &r), 0);
	CHECK_EQ(acc(&e, r.guest_phys_addr | XO, &w, 1, EX), 0);
	CHECK_EQ(acc(&e, r.guest_phys_addr | XO, &w, 1, WR),
		 GMEM_VCPU_ACCESS_XO);
	env_fini(&e);
	for (int i = 0; i < 2; i++)
		munmap(mem[i], PG);
	tap_result("slot deletion, moves and READONLY slots invalidate or "
		   "limit the alias");
}

static void t_no_cap(void)
{
	struct env e;
	uint64_t w = 0;

	/* Without the capability bit M is an ordinary address bit. */
	env_init(&e, 0);
	CHECK_EQ(acc(&e, 0x3000 | XO, &w, 8, RD), GMEM_VCPU_ACCESS_EXIT);
	CHECK_EQ(e.run->exit_reason, KVM_EXIT_MMIO);
	CHECK_EQ(e.run->mmio.phys_addr, 0x3000 | XO);
	env_fini(&e);
	tap_result("without the capability there is no alias");
}

static void t_wide(void)
{
	struct env e;
	uint64_t v = 0x77, w = 0;

	/* M = 51: alias addresses far beyond the stage-2 table's reach. */
	env_init(&e, 51);
	CHECK_EQ(acc(&e, 0x8000, &v, 1, WR), 0);
	CHECK_EQ(acc(&e, 0x8000 | 1ULL << 51, &w, 1, EX), 0);
	CHECK_EQ(w, 0x77);
	CHECK_EQ(acc(&e, 0x8000 | 1ULL << 51, &w, 1, RD), GMEM_VCPU_ACCESS_XO);
	env_fini(&e);
	env_init(&e, 32);
	CHECK_EQ(acc(&e, 0x8000, &v, 1, WR), 0);
	CHECK_EQ(acc(&e, 0x8000 | 1ULL << 32, &w, 1, EX), 0);
	CHECK_EQ(w, 0x77);
	CHECK_EQ(acc(&e, 0x8000 | 1ULL << 32, &w, 1, WR), GMEM_VCPU_ACCESS_XO);
	env_fini(&e);
	tap_result("M = 32 and M = 51");
}

static void t_execonly_slot(void)
{
	struct gmem_vm *vm;
	struct gmem_vcpu *vcpu;
	struct kvm_run *run;
	uint8_t *mem;
	uint64_t w = 0;
	int memfd;
	struct kvm_create_guest_memfd cg = {.size = PG};
	struct kvm_enable_cap eo = {.cap = GMEM_CAP_EXEC_ONLY};
	struct kvm_userspace_memory_region2 r = {
		.slot = 0,
		.flags = KVM_MEM_EXECONLY,
		.memory_size = PG,
	};

	REQUIRE(gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &vm) == 0);
	mem = mmap(NULL, PG, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(mem != MAP_FAILED);
	mem[8] = 0xc3;
	r.userspace_addr = (uintptr_t)mem;
	/* Userspace memory only: private memory has the alias instead. */
	memfd = gmem_create_guest_memfd(vm, &cg);
	REQUIRE(memfd >= 0);
	r.flags |= KVM_MEM_GUEST_MEMFD;
	r.guest_memfd = (uint32_t)memfd;
	CHECK_EQ(gmem_vm_set_memory_region2(vm, &r), -EINVAL);
	/* Bit 3 is KVM's unknown flag until the VM asks for exec-only. */
	r.flags = KVM_MEM_EXECONLY;
	CHECK_EQ(gmem_vm_set_memory_region2(vm, &r), -EINVAL);
	REQUIRE(gmem_vm_enable_cap(vm, &eo) == 0);
	r.flags |= KVM_MEM_GUEST_MEMFD;
	CHECK_EQ(gmem_vm_set_memory_region2(vm, &r), -EINVAL);
	r.flags = KVM_MEM_EXECONLY;
	CHECK_EQ(gmem_vm_set_memory_region2(vm, &r), 0);
	REQUIRE(gmem_vcpu_create(vm, 0, &vcpu) == 0);
	run = gmem_vcpu_kvm_run(vcpu);
	CHECK_EQ(gmem_vcpu_access(vcpu, 8, &w, 1, EX), 0);
	CHECK_EQ(w, 0xc3);
	memset(run, 0, sizeof(*run));
	CHECK_EQ(gmem_vcpu_access(vcpu, 8, &w, 1, RD), GMEM_VCPU_ACCESS_XO);
	CHECK_EQ(gmem_vcpu_access(vcpu, 8, &w, 1, WR), GMEM_VCPU_ACCESS_XO);
	CHECK_EQ(run->exit_reason, 0);
	CHECK_EQ(mem[8], 0xc3);
	/* EXECONLY cannot be toggled on a live slot, like READONLY. */
	r.flags = 0;
	CHECK_EQ(gmem_vm_set_memory_region2(vm, &r), -EINVAL);
	/* but the slot moves like any other */
	r.flags = KVM_MEM_EXECONLY;
	r.guest_phys_addr = PG;
	CHECK_EQ(gmem_vm_set_memory_region2(vm, &r), 0);
	CHECK_EQ(gmem_vcpu_access(vcpu, 8, &w, 1, EX), GMEM_VCPU_ACCESS_EXIT);
	CHECK_EQ(gmem_vcpu_access(vcpu, PG + 8, &w, 1, EX), 0);
	CHECK_EQ(gmem_vcpu_access(vcpu, PG + 8, &w, 1, RD),
		 GMEM_VCPU_ACCESS_XO);
	gmem_vcpu_destroy(vcpu);
	gmem_handle_close(memfd);
	gmem_vm_put(vm);
	munmap(mem, PG);
	tap_result("EXECONLY slot: only with exec-only enabled; fetch works, "
		   "read and write are XO faults");
}

static void t_exec_only_attr(void)
{
	struct env e;
	struct kvm_enable_cap cap = {.cap = GMEM_CAP_EXEC_ONLY};
	uint64_t v = 0x42, w = 0;

	env_init(&e, M);
	CHECK_EQ(acc(&e, 0x9000, &v, 8, WR), 0);
	/* Invalid until the VM asks for it. */
	CHECK_EQ(set_attr(&e, 0x9000, PG, NR | NW), -EINVAL);
	cap.args[0] = 1;
	CHECK_EQ(gmem_vm_enable_cap(e.vm, &cap), -EINVAL);
	cap.args[0] = 0;
	CHECK_EQ(gmem_vm_enable_cap(e.vm, &cap), 0);
	CHECK_EQ(set_attr(&e, 0x9000, PG, NR | NW), 0);
	/* Still invalid: write or exec without read, or with PRIVATE. */
	CHECK_EQ(set_attr(&e, 0x9000, PG, NR), -EINVAL);
	CHECK_EQ(set_attr(&e, 0x9000, PG, NR | NX), -EINVAL);
	CHECK_EQ(set_attr(&e, 0x9000, PG, NR | NW | PRIV), -EINVAL);
	/* Enforced: fetch goes through, read and write exit. */
	CHECK_EQ(acc(&e, 0x9000, &w, 8, EX), 0);
	CHECK_EQ(w, v);
	CHECK_EQ(acc(&e, 0x9000, &w, 8, RD), -EFAULT);
	check_fault(&e, KVM_MEMORY_EXIT_FLAG_READ, 0x9000);
	CHECK_EQ(acc(&e, 0x9000, &w, 8, WR), -EFAULT);
	check_fault(&e, KVM_MEMORY_EXIT_FLAG_WRITE, 0x9000);
	/* Through the alias: fetch works, read is the guest's #PF. */
	CHECK_EQ(acc(&e, 0x9000 | XO, &w, 8, EX), 0);
	CHECK_EQ(acc(&e, 0x9000 | XO, &w, 8, RD), GMEM_VCPU_ACCESS_XO);
	/* Lifted: everything works again at once. */
	CHECK_EQ(set_attr(&e, 0x9000, PG, 0), 0);
	CHECK_EQ(acc(&e, 0x9000, &w, 8, RD), 0);
	env_fini(&e);
	tap_result("GMEM_CAP_EXEC_ONLY: NR|NW valid and enforced");
}

/*
 * Another thread toggles NX on the base page while this one fetches
 * through the alias.  A fetch that both began and ended within one phase
 * must see that phase's answer: a change is visible to every vCPU once
 * the call that made it returned (DESIGN §3.4), alias or not.
 */
#define TOGGLES 500

struct toggler {
	struct env *e;
	uint64_t phase;	  /* see toggle() */
	uint64_t fetches; /* by the vCPU thread */
	int errors;
};

/* Let the vCPU make a few fetches in this phase (or give up waiting). */
static void linger(struct toggler *t)
{
	uint64_t f = __atomic_load_n(&t->fetches, __ATOMIC_SEQ_CST);

	for (int i = 0; i < 100000; i++) {
		if (__atomic_load_n(&t->fetches, __ATOMIC_SEQ_CST) >= f + 3)
			return;
		sched_yield();
	}
}

static void *toggle(void *arg)
{
	struct toggler *t = arg;

	/*
	 * Phases: 4i + 1 and 4i + 3 while a change is under way (the new
	 * value may or may not be seen), 4i + 2 while NX is set, 4i + 4
	 * while it is clear.
	 */
	for (uint64_t i = 0; i < TOGGLES; i++) {
		__atomic_store_n(&t->phase, 4 * i + 1, __ATOMIC_SEQ_CST);
		if (set_attr(t->e, 0xa000, PG, NX))
			t->errors++;
		__atomic_store_n(&t->phase, 4 * i + 2, __ATOMIC_SEQ_CST);
		linger(t);
		__atomic_store_n(&t->phase, 4 * i + 3, __ATOMIC_SEQ_CST);
		if (set_attr(t->e, 0xa000, PG, 0))
			t->errors++;
		__atomic_store_n(&t->phase, 4 * i + 4, __ATOMIC_SEQ_CST);
		linger(t);
	}
	return NULL;
}

static void t_concurrent(void)
{
	struct env e;
	struct toggler t = {.e = &e};
	pthread_t th;
	uint64_t w, p1, p2, checked[2] = {0}, wrong = 0;
	int r;

	env_init(&e, M);
	REQUIRE(pthread_create(&th, NULL, toggle, &t) == 0);
	do {
		p1 = __atomic_load_n(&t.phase, __ATOMIC_SEQ_CST);
		r = acc(&e, 0xa000 | XO, &w, 8, EX);
		p2 = __atomic_load_n(&t.phase, __ATOMIC_SEQ_CST);
		__atomic_fetch_add(&t.fetches, 1, __ATOMIC_SEQ_CST);
		if (p1 != p2 || (p1 & 1))
			continue;
		checked[p1 % 4 == 2]++;
		if (p1 % 4 == 2)
			wrong += r != -EFAULT ||
				 e.run->memory_fault.flags !=
					 KVM_MEMORY_EXIT_FLAG_EXEC;
		else
			wrong += r != 0;
	} while (p2 < 4 * TOGGLES);
	pthread_join(th, NULL);
	CHECK_EQ(t.errors, 0);
	CHECK_EQ(wrong, 0);
	/* Both phases were seen whole many times. */
	CHECK(checked[0] >= TOGGLES / 2 && checked[1] >= TOGGLES / 2);
	env_fini(&e);
	tap_result("attribute changes racing alias fetches: no stale answer");
}

int main(void)
{
	tap_plan(12, 120);
	t_enable();
	t_facade();
	t_alias_rw();
	t_order();
	t_attrs();
	t_private();
	t_slots();
	t_no_cap();
	t_wide();
	t_execonly_slot();
	t_exec_only_attr();
	t_concurrent();
	return tap_done();
}
