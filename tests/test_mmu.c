// SPDX-License-Identifier: MIT
/*
 * Stage 2 through the access API (DESIGN §3.4): every exit case, every
 * permission combination (attribute value x slot flags x access), punch
 * hole, conversions in both directions, guest_memfd close and poison, the
 * XO-style EXECONLY slot, huge mappings and their splitting, and
 * atomicity of an access that spans an allowed and a denied page.
 */
#include <linux/falloc.h>
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
#define MiB (1ULL << 20)

struct env {
	struct gmem_vm *vm;
	struct gmem_vcpu *vcpu;
	struct kvm_run *run;
	int memfd;
	uint8_t *shared;
	uint64_t size;
};

static void *map_aligned(uint64_t size, uint64_t align)
{
	uint8_t *p = mmap(NULL, size + align, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	REQUIRE(p != MAP_FAILED);
	return (void *)(((uintptr_t)p + align - 1) & ~(uintptr_t)(align - 1));
}

/* A SW_PROTECTED VM with one guest_memfd slot at GPA 0 of @size bytes. */
static void env_init(struct env *e, uint64_t size, uint32_t extra_flags)
{
	struct kvm_create_guest_memfd cg = {.size = size};
	struct kvm_enable_cap acc_flags = {.cap = GMEM_CAP_FAULT_ACCESS_FLAGS};

	*e = (struct env){.size = size};
	REQUIRE(gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &e->vm) == 0);
	/* Exits say which access an attribute denied. */
	REQUIRE(gmem_vm_enable_cap(e->vm, &acc_flags) == 0);
	e->memfd = gmem_create_guest_memfd(e->vm, &cg);
	REQUIRE(e->memfd >= 0);
	e->shared = map_aligned(size, 2 * MiB);
	struct kvm_userspace_memory_region2 r = {
		.slot = 0,
		.flags = KVM_MEM_GUEST_MEMFD | extra_flags,
		.memory_size = size,
		.userspace_addr = (uintptr_t)e->shared,
		.guest_memfd = (uint32_t)e->memfd,
	};
	REQUIRE(gmem_vm_set_memory_region2(e->vm, &r) == 0);
	REQUIRE(gmem_vcpu_create(e->vm, 0, &e->vcpu) == 0);
	e->run = gmem_vcpu_kvm_run(e->vcpu);
}

static void env_fini(struct env *e)
{
	gmem_vcpu_destroy(e->vcpu);
	if (e->memfd >= 0)
		gmem_handle_close(e->memfd);
	gmem_vm_put(e->vm);
}

static int set_attr(struct gmem_vm *vm, uint64_t gpa, uint64_t size,
		    uint64_t attrs)
{
	struct kvm_memory_attributes a = {
		.address = gpa, .size = size, .attributes = attrs};

	return gmem_vm_set_memory_attributes(vm, &a);
}

static int acc(struct env *e, uint64_t gpa, void *buf, size_t len,
	       unsigned int how)
{
	memset(e->run, 0, sizeof(*e->run));
	return gmem_vcpu_access(e->vcpu, gpa, buf, len, how);
}

static int punch(struct env *e, uint64_t off, uint64_t len)
{
	return gmem_file_fallocate(
		e->memfd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, off, len);
}

/*
 * The expected outcome, from the design's rules and nothing else.  Returns
 * the access's return value and sets *flags to the memory-fault flags (or
 * KVM_EXIT_MMIO in *exit) as the case may be.
 */
enum outcome { O_OK, O_MMIO, O_FAULT, O_XO };

static enum outcome expect(uint64_t attrs, uint32_t slot_flags,
			   unsigned int how, bool has_file, uint64_t *flags)
{
	*flags = 0;
	if ((slot_flags & KVM_MEM_EXECONLY) && how != EX)
		return O_XO;
	if ((how == RD && (attrs & NR)) || (how == WR && (attrs & NW)) ||
	    (how == EX && (attrs & NX))) {
		*flags = how;
		return O_FAULT;
	}
	if ((attrs & PRIV) && !has_file) {
		*flags = KVM_MEMORY_EXIT_FLAG_PRIVATE;
		return O_FAULT;
	}
	if ((slot_flags & KVM_MEM_READONLY) && how == WR)
		return O_MMIO;
	return O_OK;
}

static void test_no_slot(void)
{
	struct env e;
	uint64_t v = 0x1122334455667788ULL;
	uint32_t w;

	env_init(&e, 4 * MiB, 0);
	CHECK_EQ(acc(&e, 64 * MiB + 8, &v, 8, WR), GMEM_VCPU_ACCESS_EXIT);
	CHECK_EQ(e.run->exit_reason, KVM_EXIT_MMIO);
	CHECK_EQ(e.run->mmio.phys_addr, 64 * MiB + 8);
	CHECK_EQ(e.run->mmio.len, 8);
	CHECK_EQ(e.run->mmio.is_write, 1);
	CHECK(!memcmp(e.run->mmio.data, &v, 8));
	CHECK_EQ(acc(&e, 64 * MiB + 4, &w, 4, RD), GMEM_VCPU_ACCESS_EXIT);
	CHECK_EQ(e.run->exit_reason, KVM_EXIT_MMIO);
	CHECK_EQ(e.run->mmio.len, 4);
	CHECK_EQ(e.run->mmio.is_write, 0);
	CHECK_EQ(acc(&e, 64 * MiB, &w, 4, EX), GMEM_VCPU_ACCESS_EXIT);
	env_fini(&e);
	tap_result("no memslot: KVM_EXIT_MMIO with address, size and data");
}

/* Every attribute value x slot flags x access type. */
static void test_matrix(void)
{
	static const uint64_t values[] = {
		0, NW, NX, NW | NX, NR | NW | NX, NR | NW, PRIV};
	static const uint32_t slot_flags[] = {
		0, KVM_MEM_READONLY, KVM_MEM_EXECONLY,
		KVM_MEM_READONLY | KVM_MEM_EXECONLY};
	static const unsigned int hows[] = {RD, WR, EX};
	int bad = 0, cases = 0;

	for (size_t f = 0; f < 4; f++) {
		struct gmem_vm *vm;
		struct gmem_vcpu *vcpu;
		uint8_t *mem = map_aligned(64 * PG, PG);
		struct kvm_enable_cap cap = {.cap = GMEM_CAP_EXEC_ONLY};
		struct kvm_enable_cap acc_flags = {
			.cap = GMEM_CAP_FAULT_ACCESS_FLAGS};
		struct kvm_userspace_memory_region2 r = {
			.slot = 1,
			.flags = slot_flags[f],
			.guest_phys_addr = 1 * MiB,
			.memory_size = 64 * PG,
			.userspace_addr = (uintptr_t)mem,
		};

		REQUIRE(gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &vm) == 0);
		REQUIRE(gmem_vm_enable_cap(vm, &cap) == 0);
		REQUIRE(gmem_vm_enable_cap(vm, &acc_flags) == 0);
		REQUIRE(gmem_vm_set_memory_region2(vm, &r) == 0);
		REQUIRE(gmem_vcpu_create(vm, 0, &vcpu) == 0);
		struct kvm_run *run = gmem_vcpu_kvm_run(vcpu);

		for (size_t v = 0; v < ARRAY_LEN(values); v++) {
			for (size_t h = 0; h < 3; h++) {
				uint64_t gpa = 1 * MiB + (v * 3 + h) * PG;
				uint64_t flags, word = 0xabcdef00 + v;
				enum outcome o;
				int rc, want;

				REQUIRE(set_attr(vm, gpa, PG, values[v]) == 0);
				mem[(v * 3 + h) * PG] = 0x5a;
				o = expect(values[v], slot_flags[f], hows[h],
					   false, &flags);
				memset(run, 0, sizeof(*run));
				rc = gmem_vcpu_access(vcpu, gpa, &word, 4,
						      hows[h]);
				want = o == O_OK     ? 0
				       : o == O_MMIO ? GMEM_VCPU_ACCESS_EXIT
				       : o == O_XO   ? GMEM_VCPU_ACCESS_XO
						     : -EFAULT;
				cases++;
				if (rc != want ||
				    (o == O_FAULT &&
				     (run->exit_reason !=
					      KVM_EXIT_MEMORY_FAULT ||
				      run->memory_fault.flags != flags ||
				      run->memory_fault.gpa != gpa ||
				      run->memory_fault.size != PG)) ||
				    (o == O_MMIO &&
				     (run->exit_reason != KVM_EXIT_MMIO ||
				      run->mmio.phys_addr != gpa ||
				      !run->mmio.is_write)) ||
				    (o == O_OK && hows[h] == WR &&
				     memcmp(&mem[(v * 3 + h) * PG], &word,
					    4)) ||
				    (o == O_OK && hows[h] != WR &&
				     (word & 0xff) != 0x5a) ||
				    (o != O_OK &&
				     mem[(v * 3 + h) * PG] != 0x5a)) {
					bad++;
					tap_diag("slot flags %#x attrs %#llx "
						 "access %u: rc %d want %d "
						 "exit %u flags %#llx",
						 slot_flags[f],
						 (unsigned long long)values[v],
						 hows[h], rc, want,
						 run->exit_reason,
						 (unsigned long long)run
							 ->memory_fault.flags);
				}
			}
		}
		gmem_vcpu_destroy(vcpu);
		gmem_vm_put(vm);
	}
	CHECK_EQ(bad, 0);
	CHECK_EQ(cases, 4 * 7 * 3);
	tap_result("permission matrix: attributes x slot flags x access");
}

static void test_private_paths(void)
{
	struct env e;
	uint64_t w = 0x1111, r = 0;

	env_init(&e, 4 * MiB, 0);
	memset(e.shared, 0x77, 4 * MiB);

	/* Shared: the VMM's memory. */
	CHECK_EQ(acc(&e, 0x1000, &r, 8, RD), 0);
	CHECK_EQ(r, 0x7777777777777777ULL);

	/* Private: the guest_memfd, zeroed, and the host side untouched. */
	CHECK_EQ(set_attr(e.vm, 0, 4 * MiB, PRIV), 0);
	CHECK_EQ(acc(&e, 0x1000, &r, 8, RD), 0);
	CHECK_EQ(r, 0);
	CHECK_EQ(acc(&e, 0x1000, &w, 8, WR), 0);
	CHECK_EQ(acc(&e, 0x1000, &r, 8, RD), 0);
	CHECK_EQ(r, 0x1111);
	CHECK_EQ(e.shared[0x1000], 0x77);
	tap_result(
		"private accesses reach the guest_memfd, not the VMM's memory");

	/* Back to shared: the VMM's bytes again, private data out of reach. */
	CHECK_EQ(set_attr(e.vm, 0, 4 * MiB, 0), 0);
	CHECK_EQ(acc(&e, 0x1000, &r, 8, RD), 0);
	CHECK_EQ(r, 0x7777777777777777ULL);
	/* And private again without a punch: the data survived. */
	CHECK_EQ(set_attr(e.vm, 0, 4 * MiB, PRIV), 0);
	CHECK_EQ(acc(&e, 0x1000, &r, 8, RD), 0);
	CHECK_EQ(r, 0x1111);
	tap_result("conversion to shared and back: each side keeps its data");

	/* Punch: the next access sees a fresh zeroed page. */
	CHECK_EQ(punch(&e, 0, 2 * MiB), 0);
	CHECK_EQ(acc(&e, 0x1000, &r, 8, RD), 0);
	CHECK_EQ(r, 0);
	tap_result("after a punch hole the next read is zeros");

	/* Poison: -EHWPOISON until the page is punched. */
	CHECK_EQ(acc(&e, 0x3000, &w, 8, WR), 0);
	CHECK_EQ(gmem_file_poison(e.memfd, 0x3000), 0);
	CHECK_EQ(acc(&e, 0x3000, &r, 8, RD), -EHWPOISON);
	CHECK_EQ(e.run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	CHECK_EQ(e.run->memory_fault.flags, KVM_MEMORY_EXIT_FLAG_PRIVATE);
	CHECK_EQ(e.run->memory_fault.gpa, 0x3000);
	CHECK_EQ(acc(&e, 0x4000, &r, 8, RD), 0);
	CHECK_EQ(punch(&e, 0x3000, PG), 0);
	CHECK_EQ(acc(&e, 0x3000, &r, 8, RD), 0);
	CHECK_EQ(r, 0);
	tap_result("poisoned page: EHWPOISON exit, cleared by punch hole");

	/* Close the file: private accesses fault, shared ones still work. */
	CHECK_EQ(acc(&e, 0x5000, &r, 8, RD), 0);
	CHECK_EQ(gmem_handle_close(e.memfd), 0);
	e.memfd = -1;
	CHECK_EQ(acc(&e, 0x5000, &r, 8, RD), -EFAULT);
	CHECK_EQ(e.run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	CHECK_EQ(e.run->memory_fault.flags, KVM_MEMORY_EXIT_FLAG_PRIVATE);
	CHECK_EQ(set_attr(e.vm, 0x5000, PG, 0), 0);
	CHECK_EQ(acc(&e, 0x5000, &r, 8, RD), 0);
	CHECK_EQ(r, 0x7777777777777777ULL);
	tap_result("closed guest_memfd: private access is a memory-fault exit");
	env_fini(&e);
}

static void test_no_file(void)
{
	struct gmem_vm *vm;
	struct gmem_vcpu *vcpu;
	uint8_t *mem = map_aligned(16 * PG, PG);
	uint64_t r;
	struct kvm_userspace_memory_region2 reg = {
		.slot = 3,
		.memory_size = 16 * PG,
		.userspace_addr = (uintptr_t)mem,
	};

	REQUIRE(gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &vm) == 0);
	REQUIRE(gmem_vm_set_memory_region2(vm, &reg) == 0);
	REQUIRE(gmem_vcpu_create(vm, 0, &vcpu) == 0);
	CHECK_EQ(set_attr(vm, 0, PG, PRIV), 0);
	CHECK_EQ(gmem_vcpu_access(vcpu, 0, &r, 8, WR), -EFAULT);
	/* KVM 6.12's flags: PRIVATE, not the access */
	CHECK_EQ(gmem_vcpu_kvm_run(vcpu)->memory_fault.flags,
		 KVM_MEMORY_EXIT_FLAG_PRIVATE);
	CHECK_EQ(gmem_vcpu_access(vcpu, PG, &r, 8, WR), 0);
	gmem_vcpu_destroy(vcpu);
	gmem_vm_put(vm);
	tap_result("private page in a slot without guest_memfd: PRIVATE exit");
}

static void test_invalidation(void)
{
	struct env e;
	uint64_t w = 42, r;
	struct kvm_userspace_memory_region2 reg;

	env_init(&e, 4 * MiB, 0);
	/* Mapped and in the TLB, then write-protected: the write must exit. */
	CHECK_EQ(acc(&e, 0x2000, &w, 8, WR), 0);
	CHECK_EQ(acc(&e, 0x2000, &w, 8, WR), 0);
	CHECK_EQ(set_attr(e.vm, 0x2000, PG, NW), 0);
	CHECK_EQ(acc(&e, 0x2000, &w, 8, WR), -EFAULT);
	CHECK_EQ(e.run->memory_fault.flags, WR);
	CHECK_EQ(acc(&e, 0x2000, &r, 8, RD), 0);
	CHECK_EQ(r, 42);
	tap_result("a cached mapping does not survive an attribute change");

	/* A write spanning an allowed and a denied page changes nothing. */
	uint8_t buf[16];
	memset(buf, 0xee, sizeof(buf));
	CHECK_EQ(acc(&e, 0x2000 - 8, buf, 16, WR), -EFAULT);
	CHECK_EQ(e.run->memory_fault.gpa, 0x2000);
	CHECK_EQ(e.shared[0x2000 - 8], 0);
	tap_result("a cross-page write is checked whole before any byte lands");

	/* Slot deletion: afterwards the GPA is MMIO. */
	CHECK_EQ(acc(&e, 0x10000, &r, 8, RD), 0);
	CHECK_EQ(gmem_vm_get_memory_region2(e.vm, 0, &reg), 0);
	reg.memory_size = 0;
	CHECK_EQ(gmem_vm_set_memory_region2(e.vm, &reg), 0);
	CHECK_EQ(acc(&e, 0x10000, &r, 8, RD), GMEM_VCPU_ACCESS_EXIT);
	tap_result("slot deletion drops its mappings");
	env_fini(&e);

	/*
	 * READONLY cannot change on a live slot (KVM: EINVAL); a move drops
	 * the old range's mappings and the new range maps the same memory.
	 */
	struct gmem_vm *vm;
	struct gmem_vcpu *vcpu;
	uint8_t *mem = map_aligned(16 * PG, PG);
	struct kvm_userspace_memory_region2 ro = {
		.slot = 2,
		.memory_size = 16 * PG,
		.userspace_addr = (uintptr_t)mem,
	};
	REQUIRE(gmem_vm_create(KVM_X86_DEFAULT_VM, &vm) == 0);
	REQUIRE(gmem_vm_set_memory_region2(vm, &ro) == 0);
	REQUIRE(gmem_vcpu_create(vm, 0, &vcpu) == 0);
	w = 0x5eed;
	CHECK_EQ(gmem_vcpu_access(vcpu, 0, &w, 8, WR), 0);
	ro.flags = KVM_MEM_READONLY;
	CHECK_EQ(gmem_vm_set_memory_region2(vm, &ro), -EINVAL);
	CHECK_EQ(gmem_vcpu_access(vcpu, 0, &w, 8, WR), 0);
	ro.flags = 0;
	ro.guest_phys_addr = 1 * MiB;
	CHECK_EQ(gmem_vm_set_memory_region2(vm, &ro), 0);
	CHECK_EQ(gmem_vcpu_access(vcpu, 0, &w, 8, RD), GMEM_VCPU_ACCESS_EXIT);
	CHECK_EQ(gmem_vcpu_kvm_run(vcpu)->exit_reason, KVM_EXIT_MMIO);
	w = 0;
	CHECK_EQ(gmem_vcpu_access(vcpu, 1 * MiB, &w, 8, RD), 0);
	CHECK_EQ(w, 0x5eed);
	/* and back, with LOG_DIRTY_PAGES changed in the same call */
	ro.flags = KVM_MEM_LOG_DIRTY_PAGES;
	ro.guest_phys_addr = 0;
	CHECK_EQ(gmem_vm_set_memory_region2(vm, &ro), 0);
	CHECK_EQ(gmem_vcpu_access(vcpu, 1 * MiB, &w, 8, RD),
		 GMEM_VCPU_ACCESS_EXIT);
	CHECK_EQ(gmem_vcpu_access(vcpu, 0, &w, 8, WR), 0);
	gmem_vcpu_destroy(vcpu);
	gmem_vm_put(vm);
	tap_result("a live slot keeps READONLY; a moved slot's old range is "
		   "unmapped");
}

static void test_huge(void)
{
	struct env e;
	struct gmem_vm_stats st0, st;
	uint64_t r;

	env_init(&e, 8 * MiB, 0);
	CHECK_EQ(set_attr(e.vm, 0, 8 * MiB, PRIV), 0);
	gmem_vm_get_stats(e.vm, &st0);
	for (uint64_t a = 0; a < 8 * MiB; a += PG)
		CHECK_EQ(acc(&e, a, &r, 8, RD), 0);
	gmem_vm_get_stats(e.vm, &st);
	CHECK_EQ(st.map_2m - st0.map_2m, 4);
	CHECK_EQ(st.map_4k - st0.map_4k, 0);
	tap_result("uniform private memory is mapped with 2 MiB leaves");

	/* One page changes: its 2 MiB leaf goes; the rest maps 4 KiB. */
	CHECK_EQ(set_attr(e.vm, 2 * MiB + 5 * PG, PG, 0), 0);
	gmem_vm_get_stats(e.vm, &st0);
	CHECK_EQ(st0.zapped_2m - st.zapped_2m, 1);
	for (uint64_t a = 2 * MiB; a < 4 * MiB; a += PG)
		CHECK_EQ(acc(&e, a, &r, 8, RD), 0);
	gmem_vm_get_stats(e.vm, &st);
	CHECK_EQ(st.map_4k - st0.map_4k, 512);
	CHECK_EQ(st.map_2m - st0.map_2m, 0);
	/*
	 * Uniform again: the next fault in the block maps it huge, replacing
	 * the table of 4 KiB leaves (which KVM would not do either until
	 * something faults there).
	 */
	CHECK_EQ(set_attr(e.vm, 2 * MiB + 5 * PG, PG, PRIV), 0);
	gmem_vm_get_stats(e.vm, &st0);
	CHECK_EQ(acc(&e, 2 * MiB + 5 * PG, &r, 8, RD), 0);
	CHECK_EQ(acc(&e, 2 * MiB + 9 * PG, &r, 8, RD), 0);
	gmem_vm_get_stats(e.vm, &st);
	CHECK_EQ(st.map_2m - st0.map_2m, 1);
	CHECK_EQ(st.faults - st0.faults, 1);
	/* Poison inside forbids the huge leaf. */
	CHECK_EQ(gmem_file_poison(e.memfd, 4 * MiB + PG), 0);
	gmem_vm_get_stats(e.vm, &st0);
	CHECK_EQ(acc(&e, 4 * MiB, &r, 8, RD), 0);
	gmem_vm_get_stats(e.vm, &st);
	CHECK_EQ(st.map_4k - st0.map_4k, 1);
	CHECK_EQ(st.map_2m - st0.map_2m, 0);
	tap_result(
		"a change inside a 2 MiB leaf splits it, and it merges back");
	env_fini(&e);

	/* 1 GiB of shared memory, 1 GiB aligned: one leaf. */
	struct gmem_vm *vm;
	struct gmem_vcpu *vcpu;
	uint8_t *mem = map_aligned(1ULL << 30, 1ULL << 30);
	struct kvm_userspace_memory_region2 reg = {
		.slot = 0,
		.guest_phys_addr = 1ULL << 30,
		.memory_size = 1ULL << 30,
		.userspace_addr = (uintptr_t)mem,
	};
	REQUIRE(gmem_vm_create(KVM_X86_DEFAULT_VM, &vm) == 0);
	REQUIRE(gmem_vm_set_memory_region2(vm, &reg) == 0);
	REQUIRE(gmem_vcpu_create(vm, 0, &vcpu) == 0);
	r = 99;
	CHECK_EQ(gmem_vcpu_access(vcpu, (1ULL << 30) + 12345 * PG, &r, 8, WR),
		 0);
	CHECK_EQ(gmem_vcpu_access(vcpu, (1ULL << 30) + 99999 * PG, &r, 8, RD),
		 0);
	gmem_vm_get_stats(vm, &st);
	CHECK_EQ(st.map_1g, 1);
	CHECK_EQ(st.faults, 1);
	CHECK_EQ(*(uint64_t *)(mem + 12345 * PG), 99);
	gmem_vcpu_destroy(vcpu);
	gmem_vm_put(vm);
	munmap(mem, 1ULL << 30);
	tap_result("a 1 GiB aligned slot is one 1 GiB leaf");
}

static void test_facade_run_page(void)
{
	int sys = gmem_open(), vmfd, vcpufd, size;
	struct kvm_run *run;
	struct gmem_vm *vm;

	REQUIRE(sys >= 0);
	vmfd = gmem_ioctl(sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	vcpufd = gmem_ioctl(vmfd, KVM_CREATE_VCPU, 0);
	CHECK(vcpufd >= 0);
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_CREATE_VCPU, 0), EEXIST);
	size = gmem_ioctl(sys, KVM_GET_VCPU_MMAP_SIZE, 0);
	CHECK(size >= (int)sizeof(struct kvm_run));
	run = gmem_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpufd,
			0);
	CHECK(run != MAP_FAILED);
	/* An MMIO exit from the access API lands in the mapped page. */
	REQUIRE(gmem_vm_from_handle(vmfd, &vm) == 0);
	gmem_vm_put(vm);
	CHECK_EQ(gmem_munmap(run, size), 0);
	CHECK_EQ(gmem_close(vcpufd), 0);
	CHECK_EQ(gmem_close(vmfd), 0);
	CHECK_EQ(gmem_close(sys), 0);
	tap_result("façade: KVM_CREATE_VCPU and the kvm_run mapping");
}

int main(void)
{
	tap_plan(16, 120);
	test_no_slot();
	test_matrix();
	test_private_paths();
	test_no_file();
	test_invalidation();
	test_huge();
	test_facade_run_page();
	return tap_done();
}
