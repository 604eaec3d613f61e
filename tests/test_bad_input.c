// SPDX-License-Identifier: MIT
/*
 * Bad input from a VMM, where KVM would have copy_from_user() and size
 * limits to stop it: counts that claim more than the buffer holds, stale
 * and foreign handles, out-of-range vCPU ids, and hostile guest_memfd
 * offsets.  Each must be refused with KVM's errno, never read past the
 * caller's buffer (the asan build puts every buffer on the heap at its
 * exact size) and never crash.
 */
#include <fcntl.h>
#include <linux/falloc.h>

#include "gmem_test.h"

/* A kvm_msrs on the heap with room for exactly @n entries. */
static struct kvm_msrs *msrs_alloc(uint32_t n)
{
	struct kvm_msrs *m =
		calloc(1, sizeof(*m) + n * sizeof(struct kvm_msr_entry));

	REQUIRE(m);
	for (uint32_t i = 0; i < n; i++)
		m->entries[i].index = 0xc0000100; /* FS_BASE: always valid */
	return m;
}

static void test_msr_counts(void)
{
	struct gmem_vm *vm = test_vm(KVM_X86_DEFAULT_VM);
	struct gmem_vcpu *vcpu;
	struct kvm_msrs *m = msrs_alloc(4);

	REQUIRE(gmem_vcpu_create(vm, 0, &vcpu) == 0);
	m->nmsrs = 4;
	CHECK_EQ(gmem_vcpu_get_msrs(vcpu, m), 4);
	CHECK_EQ(gmem_vcpu_set_msrs(vcpu, m), 4);
	/* the count lies: KVM's MAX_IO_MSRS stops it before the buffer */
	m->nmsrs = 1u << 20;
	CHECK_EQ(gmem_vcpu_get_msrs(vcpu, m), -E2BIG);
	CHECK_EQ(gmem_vcpu_set_msrs(vcpu, m), -E2BIG);
	m->nmsrs = 256;
	CHECK_EQ(gmem_vcpu_set_msrs(vcpu, m), -E2BIG);
	free(m);
	gmem_vcpu_destroy(vcpu);
	gmem_vm_put(vm);
	tap_result("KVM_GET/SET_MSRS: nmsrs >= 256 is E2BIG, the buffer is "
		   "not walked");
}

static void test_cpuid_counts(void)
{
	struct gmem_vm *vm = test_vm(KVM_X86_DEFAULT_VM);
	struct gmem_vcpu *vcpu;
	struct kvm_cpuid2 *c =
		calloc(1, sizeof(*c) + 4 * sizeof(struct kvm_cpuid_entry2));

	REQUIRE(c);
	REQUIRE(gmem_vcpu_create(vm, 0, &vcpu) == 0);
	c->nent = 1u << 30;
	CHECK_EQ(gmem_vcpu_set_cpuid(vcpu, c), -E2BIG);
	/* too small a buffer for the supported list: E2BIG, not overrun */
	c->nent = 1;
	CHECK_EQ(gmem_get_supported_cpuid(c), -E2BIG);
	c->nent = 4;
	CHECK(gmem_get_supported_cpuid(c) == -E2BIG ||
	      (c->nent >= 1 && c->nent <= 4));
	free(c);
	gmem_vcpu_destroy(vcpu);
	gmem_vm_put(vm);
	tap_result("KVM_SET_CPUID2 / GET_SUPPORTED_CPUID: absurd nent is "
		   "E2BIG");
}

static void test_handles(void)
{
	int sys = gmem_open(), vm, vcpu, file;
	struct kvm_create_guest_memfd g = {.size = 16 * PAGE};

	REQUIRE(sys >= 0);
	vm = gmem_ioctl(sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	REQUIRE(vm >= 0);
	vcpu = gmem_ioctl(vm, KVM_CREATE_VCPU, 0);
	REQUIRE(vcpu >= 0);
	file = gmem_ioctl(vm, KVM_CREATE_GUEST_MEMFD, &g);
	REQUIRE(file >= 0);

	/* vCPU ids KVM refuses; the same id twice */
	CHECK_ERRNO(gmem_ioctl(vm, KVM_CREATE_VCPU, 1UL << 40), EINVAL);
	CHECK_ERRNO(gmem_ioctl(vm, KVM_CREATE_VCPU, 0), EEXIST);
	/* every call on a number that is no handle */
	CHECK_ERRNO(gmem_ioctl(-1, KVM_CREATE_VM, 0), EBADF);
	CHECK_ERRNO(gmem_ioctl(1 << 30, KVM_RUN, 0), EBADF);
	CHECK_ERRNO(gmem_fallocate(INT32_MAX, FALLOC_FL_KEEP_SIZE, 0, PAGE),
		    EBADF);
	CHECK_ERRNO(gmem_close(-5), EBADF);
	/* file calls on handles of other kinds */
	CHECK(gmem_fallocate(vcpu, FALLOC_FL_KEEP_SIZE, 0, PAGE) == -1);
	CHECK(gmem_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, file, 0) ==
	      MAP_FAILED);
	/* guest_memfd offsets at the edges of off_t */
	CHECK_ERRNO(gmem_fallocate(file, FALLOC_FL_KEEP_SIZE, INT64_MAX - PAGE,
				   2 * PAGE),
		    EFBIG);
	CHECK_ERRNO(gmem_fallocate(file,
				   FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
				   -PAGE, PAGE),
		    EINVAL);
	CHECK_ERRNO(gmem_fallocate(file, FALLOC_FL_KEEP_SIZE, 0, -PAGE),
		    EINVAL);
	CHECK_EQ(gmem_file_poison(file, INT64_MIN), -EINVAL);

	CHECK_EQ(gmem_close(file), 0);
	CHECK_EQ(gmem_close(vcpu), 0);
	CHECK_EQ(gmem_close(vm), 0);
	CHECK_EQ(gmem_close(sys), 0);
	/* everything is gone: the same numbers are now stale */
	CHECK_ERRNO(gmem_ioctl(vm, KVM_CREATE_VCPU, 1), EBADF);
	CHECK_ERRNO(gmem_ioctl(vcpu, KVM_RUN, 0), EBADF);
	CHECK_ERRNO(gmem_fallocate(file, FALLOC_FL_KEEP_SIZE, 0, PAGE), EBADF);
	tap_result("stale, foreign and absurd handles, ids and offsets are "
		   "refused");
}

int main(void)
{
	tap_plan(3, 60);
	test_msr_counts();
	test_cpuid_counts();
	test_handles();
	return tap_done();
}
