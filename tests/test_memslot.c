// SPDX-License-Identifier: MIT
/*
 * Memslots (DESIGN §3.3, and §3.2 for binding a guest_memfd): the checks of
 * KVM_SET_USER_MEMORY_REGION2 in their order, delete, move and flag
 * changes by KVM's rules, overlap, binding, the v1 call, gmem's EXECONLY
 * flag only once enabled, and that a failed call changes no slot.
 */
#include <fcntl.h>
#include <linux/falloc.h>

#include "gmem_test.h"

#define AREA (64 * MIB) /* userspace memory behind the slots */
#define MAX_ID 32764	/* ids 0 .. MAX_ID - 1 are valid */
#define MAX_PAGES ((1ULL << 31) - 1)

static uint8_t *area;

static uint64_t ua(uint64_t off)
{
	return (uintptr_t)area + off;
}

/* A plain slot at @gpa backed by area + @gpa (so distinct slots differ). */
static struct kvm_userspace_memory_region2 plain(uint32_t slot, uint32_t flags,
						 uint64_t gpa, uint64_t size)
{
	return region2(slot, flags, gpa, size, ua(gpa % AREA));
}

static struct kvm_userspace_memory_region2
bound(uint32_t slot, uint64_t gpa, uint64_t size, int fd, uint64_t off)
{
	return gregion2(slot, gpa, size, ua(gpa % AREA), fd, off);
}

/*
 * Set @r and expect @err (0: success).  On the typed side, read the slot
 * back: after a failure it is as before, after a success it is @r (or gone
 * if @r deleted it).
 */
static void expect_region(struct tvm *t,
			  const struct kvm_userspace_memory_region2 *r, int err,
			  int line)
{
	struct kvm_userspace_memory_region2 before, after;
	int rb = 0, ra;
	long ret;

	memset(&before, 0, sizeof(before));
	memset(&after, 0, sizeof(after));
	if (!t->ioctl)
		rb = gmem_vm_get_memory_region2(t->vm, r->slot, &before);
	ret = tvm_region2(t, r);
	if (ret != -err) {
		tap_case_failed = 1;
		tap_diag("line %d (%s, %s VM): got %ld, expected %d", line,
			 tvm_layer(t), t->type ? "SW_PROTECTED" : "DEFAULT",
			 ret, -err);
		region2_print("call", r);
	}
	if (t->ioctl)
		return;
	ra = gmem_vm_get_memory_region2(t->vm, r->slot, &after);
	if (err) {
		if (ra != rb || (ra == 0 && !region2_equal(&before, &after))) {
			tap_case_failed = 1;
			tap_diag("line %d: the failed call changed slot %#x "
				 "(read-back %d, was %d)",
				 line, r->slot, ra, rb);
			if (rb == 0)
				region2_print("before", &before);
			if (ra == 0)
				region2_print("after ", &after);
		}
	} else if (r->memory_size) {
		if (!tvm_slot_is(t, r->slot, r)) {
			tap_case_failed = 1;
			tap_diag("line %d: slot does not read back as set",
				 line);
		}
	} else if (!tvm_slot_is(t, r->slot, NULL)) {
		tap_case_failed = 1;
		tap_diag("line %d: deleted slot still reads back", line);
	}
}

#define EXPECT(t, r, err)                                     \
	do {                                                  \
		struct kvm_userspace_memory_region2 _r = (r); \
		expect_region(t, &_r, err, __LINE__);         \
	} while (0)

static struct kvm_userspace_memory_region2 deleted(uint32_t slot)
{
	return region2(slot, 0, 0, 0, 0);
}

/* A guest_memfd handle that was open once and is closed now. */
static int closed_file(struct tvm *t)
{
	int fd = tvm_file(t, PAGE);

	REQUIRE(file_close(t->ioctl, fd) == 0);
	return fd;
}

/*
 * Each static check fails with EINVAL, and comes first: every bad call
 * below would otherwise overlap slot 0 (EEXIST) or bind a closed file
 * (EBADF).
 */
static void case_flags(struct tvm *t)
{
	EXPECT(t, plain(0, 0, 0x100000, 0x100000), 0);
	for (int bit = 4; bit < 32; bit++) {
		EXPECT(t, plain(1, 1U << bit, 0x100000, PAGE), EINVAL);
		EXPECT(t, plain(1, 1U << bit, 0x300000, PAGE), EINVAL);
		EXPECT(t, plain(0, 1U << bit, 0x100000, 0x100000), EINVAL);
	}
	EXPECT(t, plain(1, ~0U, 0x300000, PAGE), EINVAL);
	/* a failed create left nothing behind */
	EXPECT(t, deleted(1), EINVAL);
	EXPECT(t,
	       plain(1, KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY, 0x300000,
		     PAGE),
	       0);
	/* bit 3 is unknown to KVM: gmem's EXECONLY only once asked for */
	EXPECT(t, plain(2, KVM_MEM_EXECONLY, 0x400000, PAGE), EINVAL);
	EXPECT(t, plain(0, KVM_MEM_EXECONLY, 0x100000, 0x100000), EINVAL);
	CHECK_EQ(tvm_enable_cap(t, GMEM_CAP_EXEC_ONLY, 0, 0), 0);
	EXPECT(t, plain(2, KVM_MEM_EXECONLY, 0x400000, PAGE), 0);
}

/* GMEM_CAP_XO_ALIAS makes EXECONLY valid too. */
static void case_execonly_xo(struct tvm *t)
{
	EXPECT(t, plain(2, KVM_MEM_EXECONLY, 0x400000, PAGE), EINVAL);
	CHECK_EQ(tvm_enable_cap(t, GMEM_CAP_XO_ALIAS, 0, 40), 0);
	EXPECT(t, plain(2, KVM_MEM_EXECONLY, 0x400000, PAGE), 0);
	EXPECT(t, plain(3, KVM_MEM_EXECONLY | KVM_MEM_READONLY, 0x500000, PAGE),
	       0);
}

static void case_gmem_default_vm(struct tvm *t)
{
	int fd;

	fd = tvm_file(t, 16 * PAGE);
	EXPECT(t, bound(0, 0, 16 * PAGE, fd, 0), EINVAL);
	EXPECT(t, bound(0, 0, PAGE, closed_file(t), 0), EINVAL);
	/* the file was not consumed: a plain slot there is fine */
	EXPECT(t, plain(0, 0, 0, 16 * PAGE), 0);
	CHECK_EQ(file_close(t->ioctl, fd), 0);
}

static void case_gmem_flags(struct tvm *t)
{
	static const uint32_t bad[] = {
		KVM_MEM_LOG_DIRTY_PAGES,
		KVM_MEM_READONLY,
		KVM_MEM_EXECONLY,
		KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY,
	};
	int fd = tvm_file(t, 16 * PAGE);
	int gone = closed_file(t);

	EXPECT(t, plain(0, 0, 0x100000, PAGE), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kvm_userspace_memory_region2 r =
			bound(1, 0, 16 * PAGE, fd, 0);

		r.flags |= bad[i];
		EXPECT(t, r, EINVAL);
		r = bound(1, 0x100000, PAGE, gone, 0);
		r.flags |= bad[i];
		EXPECT(t, r, EINVAL);
	}
	EXPECT(t, bound(1, 0, 16 * PAGE, fd, 0),
	       t->type == KVM_X86_SW_PROTECTED_VM ? 0 : EINVAL);
	CHECK_EQ(file_close(t->ioctl, fd), 0);
}

static void case_alignment(struct tvm *t)
{
	static const uint64_t bad[] = {1, 8, 2048, 4095};
	bool sw = t->type == KVM_X86_SW_PROTECTED_VM;
	int fd = tvm_file(t, 64 * PAGE);
	int gone = closed_file(t); /* after fd, or fd would reuse it */

	EXPECT(t, plain(0, 0, 0x100000, 0x100000), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct kvm_userspace_memory_region2 r;

		/* memory_size */
		EXPECT(t, plain(1, 0, 0x100000, PAGE + bad[i]), EINVAL);
		EXPECT(t, plain(1, 0, 0x100000, bad[i]), EINVAL);
		/* guest_phys_addr */
		EXPECT(t, plain(1, 0, 0x100000 + bad[i], PAGE), EINVAL);
		/* userspace_addr */
		r = plain(1, 0, 0x100000, PAGE);
		r.userspace_addr += bad[i];
		EXPECT(t, r, EINVAL);
		r = plain(1, 0, 0x300000, PAGE);
		r.userspace_addr += bad[i];
		EXPECT(t, r, EINVAL);
		if (!sw)
			continue;
		r = bound(1, 0x100000, PAGE, gone, 0);
		r.userspace_addr += bad[i];
		EXPECT(t, r, EINVAL);
		/* guest_memfd_offset, with GUEST_MEMFD only */
		EXPECT(t, bound(1, 0x100000, PAGE, gone, bad[i]), EINVAL);
		EXPECT(t, bound(1, 0x300000, PAGE, fd, PAGE + bad[i]), EINVAL);
		r = plain(1, 0, 0x300000, PAGE);
		r.guest_memfd_offset = bad[i];
		EXPECT(t, r, 0);
		EXPECT(t, deleted(1), 0);
	}
	/* a delete is checked too */
	EXPECT(t, plain(0, 0, 0x100000 + 1, 0), EINVAL);
	EXPECT(t, plain(0, 0, 0x100000, 1), EINVAL);
	CHECK(tvm_slot_is(t, 0,
			  &(struct kvm_userspace_memory_region2){
				  .slot = 0,
				  .guest_phys_addr = 0x100000,
				  .memory_size = 0x100000,
				  .userspace_addr = ua(0x100000)}));
	CHECK_EQ(file_close(t->ioctl, fd), 0);
}

static void case_user_range(struct tvm *t)
{
	struct kvm_userspace_memory_region2 r;

	EXPECT(t, plain(0, 0, 0x100000, 0x100000), 0);
	/* ends exactly at the top of user space: fine */
	r = region2(1, 0, 0x300000, PAGE, USER_TOP - PAGE);
	EXPECT(t, r, 0);
	EXPECT(t, deleted(1), 0);
	r = region2(1, 0, 0x300000, 2 * PAGE, USER_TOP - PAGE);
	EXPECT(t, r, EINVAL);
	r = region2(1, 0, 0x300000, PAGE, USER_TOP);
	EXPECT(t, r, EINVAL);
	r = region2(1, 0, 0x100000, PAGE, 1ULL << 47);
	EXPECT(t, r, EINVAL);
	r = region2(1, 0, 0x100000, PAGE, -PAGE);
	EXPECT(t, r, EINVAL);
	r = region2(1, 0, 0x100000, 2 * PAGE, -PAGE);
	EXPECT(t, r, EINVAL);
	r = region2(1, 0, 0x100000, 4 * PAGE, -2 * PAGE);
	EXPECT(t, r, EINVAL);
	EXPECT(t, deleted(1), EINVAL);
}

static void case_gmem_offset_overflow(struct tvm *t)
{
	int gone;

	gone = closed_file(t);
	EXPECT(t, plain(0, 0, 0x100000, 0x100000), 0);
	EXPECT(t, bound(1, 0x100000, PAGE, gone, -PAGE), EINVAL);
	EXPECT(t, bound(1, 0x100000, 2 * PAGE, gone, -PAGE), EINVAL);
	EXPECT(t, bound(1, 0x100000, 0x10000, gone, -2 * PAGE), EINVAL);
	EXPECT(t, bound(1, 0x300000, 2 * PAGE, gone, -PAGE), EINVAL);
}

static void case_slot_id(struct tvm *t)
{
	static const uint32_t bad[] = {1U << 16,   (1U << 16) | 1, 0xffff0000,
				       0xffffffff, MAX_ID,	   MAX_ID + 1,
				       0xffff};

	EXPECT(t, plain(0, 0, 0x100000, 0x100000), 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT(t, plain(bad[i], 0, 0x100000, PAGE), EINVAL);
		EXPECT(t, plain(bad[i], 0, 0x300000, PAGE), EINVAL);
		EXPECT(t, deleted(bad[i]), EINVAL);
	}
	EXPECT(t, plain(MAX_ID - 1, 0, 0x300000, PAGE), 0);
	EXPECT(t, plain(1, 0, 0x400000, PAGE), 0);
	EXPECT(t, deleted(MAX_ID - 1), 0);
}

static void case_gpa_overflow(struct tvm *t)
{
	EXPECT(t, plain(0, 0, 0x100000, 0x100000), 0);
	EXPECT(t, plain(1, 0, -PAGE, PAGE), EINVAL);
	EXPECT(t, plain(1, 0, -PAGE, 2 * PAGE), EINVAL);
	EXPECT(t, plain(1, 0, -2 * PAGE, 0x200000), EINVAL);
	/* the GPA wraps onto slot 0: still EINVAL, not EEXIST */
	EXPECT(t, plain(1, 0, -PAGE, 0x101000 + PAGE), EINVAL);
	EXPECT(t, deleted(1), EINVAL);
}

static void case_max_size(struct tvm *t)
{
	uint64_t big = (MAX_PAGES + 1) * PAGE;
	void *mem = mmap(NULL, big, PROT_NONE,
			 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	uint64_t base = mem == MAP_FAILED ? TIB : (uintptr_t)mem;

	EXPECT(t, plain(0, 0, 0x100000, 0x100000), 0);
	EXPECT(t, region2(1, 0, 1ULL << 44, big, base), EINVAL);
	EXPECT(t, region2(1, 0, 0, big, base), EINVAL);
	EXPECT(t, region2(1, 0, 1ULL << 44, big + PAGE, base), EINVAL);
	EXPECT(t, region2(1, 0, 1ULL << 44, MAX_PAGES * PAGE, base), 0);
	EXPECT(t, deleted(1), 0);
	if (mem != MAP_FAILED)
		munmap(mem, big);
}

static void case_delete(struct tvm *t)
{
	EXPECT(t, deleted(0), EINVAL);
	EXPECT(t, deleted(5), EINVAL);
	EXPECT(t, plain(5, 0, 0x100000, 0x10000), 0);
	EXPECT(t, deleted(4), EINVAL);
	EXPECT(t, deleted(6), EINVAL);
	/* size 0 deletes whatever the other fields say */
	EXPECT(t, plain(5, 0, 0x100000, 0), 0);
	EXPECT(t, deleted(5), EINVAL);
	/* the range is free again, for any id */
	EXPECT(t, plain(7, 0, 0x100000, 0x10000), 0);
	EXPECT(t, plain(5, 0, 0x100000, 0x10000), EEXIST);
	EXPECT(t, deleted(7), 0);
	EXPECT(t, plain(5, 0, 0x100000, 0x10000), 0);
}

/* KVM_MR_MOVE and KVM_MR_FLAGS_ONLY, by __kvm_set_memory_region()'s rules. */
static void case_modify(struct tvm *t)
{
	const uint32_t ld = KVM_MEM_LOG_DIRTY_PAGES, ro = KVM_MEM_READONLY;
	struct kvm_userspace_memory_region2 r = plain(3, 0, 0x200000, 0x10000);
	struct kvm_userspace_memory_region2 x;

	EXPECT(t, r, 0);
	EXPECT(t, r, 0);
	x = r;
	x.userspace_addr += PAGE;
	EXPECT(t, x, EINVAL);
	x = r;
	x.memory_size += PAGE;
	EXPECT(t, x, EINVAL);
	x = r;
	x.memory_size -= PAGE;
	EXPECT(t, x, EINVAL);
	/* a new GPA moves the slot, over its own old range too */
	x = r;
	x.guest_phys_addr += 0x100000;
	EXPECT(t, x, 0);
	x.guest_phys_addr -= PAGE;
	EXPECT(t, x, 0);
	x.guest_phys_addr = r.guest_phys_addr;
	EXPECT(t, x, 0);
	/* the old range is free for others at once */
	EXPECT(t, plain(4, 0, 0x2ff000, PAGE), 0);
	/* not onto another slot, partly or whole */
	x.guest_phys_addr = 0x2f8000;
	EXPECT(t, x, EEXIST);
	x.guest_phys_addr = 0x2ff000;
	EXPECT(t, x, EEXIST);
	/* nor past the GPA space (the static check) */
	x.guest_phys_addr = -PAGE;
	EXPECT(t, x, EINVAL);
	EXPECT(t, deleted(4), 0);
	/* flags: only LOG_DIRTY_PAGES may change, alone or with a move */
	x = r;
	x.flags = ld;
	EXPECT(t, x, 0);
	x.flags = ld | ro;
	EXPECT(t, x, EINVAL);
	x.flags = ro;
	EXPECT(t, x, EINVAL);
	x.flags = 0;
	x.guest_phys_addr = 0x600000;
	EXPECT(t, x, 0);
	x.flags = ld;
	x.guest_phys_addr = r.guest_phys_addr;
	EXPECT(t, x, 0);
	/* nor GUEST_MEMFD, nor an unknown or un-enabled bit */
	x.flags = ld | KVM_MEM_GUEST_MEMFD;
	EXPECT(t, x, EINVAL);
	x.flags = ld | KVM_MEM_EXECONLY;
	EXPECT(t, x, EINVAL);
	/* and a move with another change is refused whole */
	x.flags = ld;
	x.guest_phys_addr = 0x600000;
	x.memory_size = 2 * r.memory_size;
	EXPECT(t, x, EINVAL);
	x = r;
	EXPECT(t, x, 0);

	/* a READONLY slot stays READONLY, and moves as one */
	r = plain(5, ro, 0x800000, 0x10000);
	EXPECT(t, r, 0);
	x = r;
	x.flags = 0;
	EXPECT(t, x, EINVAL);
	x.flags = ro | ld;
	x.guest_phys_addr = 0x900000;
	EXPECT(t, x, 0);

	/* an EXECONLY slot cannot lose it either */
	CHECK_EQ(tvm_enable_cap(t, GMEM_CAP_EXEC_ONLY, 0, 0), 0);
	r = plain(6, KVM_MEM_EXECONLY, 0x400000, 0x10000);
	EXPECT(t, r, 0);
	x = r;
	x.flags = 0;
	EXPECT(t, x, EINVAL);
	x.flags = KVM_MEM_EXECONLY | ld;
	EXPECT(t, x, 0);
	x.guest_phys_addr = 0xa00000;
	EXPECT(t, x, 0);
}

static void case_gmem_immutable(struct tvm *t)
{
	struct kvm_userspace_memory_region2 r, x;
	int fd;

	fd = tvm_file(t, 0x20000);
	r = bound(2, 0x200000, 0x10000, fd, 0x10000);
	EXPECT(t, r, 0);
	EXPECT(t, r, EINVAL);
	x = r;
	x.flags = 0;
	EXPECT(t, x, EINVAL);
	x = r;
	x.guest_memfd_offset = 0;
	EXPECT(t, x, EINVAL);
	x = r;
	x.flags |= KVM_MEM_LOG_DIRTY_PAGES;
	EXPECT(t, x, EINVAL);
	/* nor moved, with or without GUEST_MEMFD in the call */
	x = r;
	x.guest_phys_addr += 0x100000;
	EXPECT(t, x, EINVAL);
	x.flags = 0;
	EXPECT(t, x, EINVAL);
	/* it can only be deleted, after which the range binds again */
	EXPECT(t, deleted(2), 0);
	EXPECT(t, r, 0);
	CHECK_EQ(file_close(t->ioctl, fd), 0);
}

static void case_overlap(struct tvm *t)
{
	/* slot 0 covers [1 MiB, 2 MiB) */
	EXPECT(t, plain(0, 0, 0x100000, 0x100000), 0);
	EXPECT(t, plain(1, 0, 0x100000, 0x100000), EEXIST);
	EXPECT(t, plain(1, 0, 0x180000, PAGE), EEXIST);
	EXPECT(t, plain(1, 0, 0xff000, 2 * PAGE), EEXIST);
	EXPECT(t, plain(1, 0, 0x1ff000, 2 * PAGE), EEXIST);
	EXPECT(t, plain(1, 0, 0x1ff000, PAGE), EEXIST);
	EXPECT(t, plain(1, 0, 0, 0x400000), EEXIST);
	EXPECT(t, plain(1, KVM_MEM_READONLY, 0x100000, PAGE), EEXIST);
	EXPECT(t, deleted(1), EINVAL);
	/* touching is not overlapping */
	EXPECT(t, plain(1, 0, 0xff000, PAGE), 0);
	EXPECT(t, plain(2, 0, 0x200000, PAGE), 0);
	EXPECT(t, plain(3, 0, 0, 0xff000), 0);
	EXPECT(t, plain(4, 0, 0x201000, 0x100000), 0);
	EXPECT(t, plain(5, 0, 0xff000, PAGE), EEXIST);
}

/* Binding a guest_memfd: which handles, which ranges. */
static void case_bind(struct tvm *t)
{
	struct tvm other;
	int fd, ofd, gone, vmh, sys;

	fd = tvm_file(t, 32 * PAGE);
	tvm_open(&other, t->ioctl, KVM_X86_SW_PROTECTED_VM);
	ofd = tvm_file(&other, 32 * PAGE);
	sys = gmem_open();
	REQUIRE(sys >= 0);
	vmh = gmem_ioctl(sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	REQUIRE(vmh >= 0);
	/* last, so that no handle above reuses its number */
	gone = closed_file(t);

	/* not a handle at all, or closed */
	EXPECT(t, bound(0, 0, PAGE, 100000, 0), EBADF);
	EXPECT(t, bound(0, 0, PAGE, -1, 0), EBADF);
	EXPECT(t, bound(0, 0, PAGE, gone, 0), EBADF);
	/* a handle, but no guest_memfd */
	EXPECT(t, bound(0, 0, PAGE, sys, 0), EINVAL);
	EXPECT(t, bound(0, 0, PAGE, vmh, 0), EINVAL);
	if (t->ioctl)
		EXPECT(t, bound(0, 0, PAGE, t->fd, 0), EINVAL);
	{
		int vcpu = gmem_ioctl(vmh, KVM_CREATE_VCPU, 0);

		if (vcpu >= 0) {
			EXPECT(t, bound(0, 0, PAGE, vcpu, 0), EINVAL);
			CHECK_EQ(gmem_close(vcpu), 0);
		}
	}
	/* another VM's file */
	EXPECT(t, bound(0, 0, PAGE, ofd, 0), EINVAL);
	/* beyond the file */
	EXPECT(t, bound(0, 0, 33 * PAGE, fd, 0), EINVAL);
	EXPECT(t, bound(0, 0, 2 * PAGE, fd, 31 * PAGE), EINVAL);
	EXPECT(t, bound(0, 0, PAGE, fd, 32 * PAGE), EINVAL);
	EXPECT(t, bound(0, 0, PAGE, fd, 1ULL << 40), EINVAL);
	EXPECT(t, deleted(0), EINVAL);

	/* [8, 16) pages of the file at GPA 0 */
	EXPECT(t, bound(0, 0, 8 * PAGE, fd, 8 * PAGE), 0);
	/* the same file range again, or any overlap, elsewhere */
	EXPECT(t, bound(1, 0x100000, 8 * PAGE, fd, 8 * PAGE), EINVAL);
	EXPECT(t, bound(1, 0x100000, 2 * PAGE, fd, 7 * PAGE), EINVAL);
	EXPECT(t, bound(1, 0x100000, 2 * PAGE, fd, 15 * PAGE), EINVAL);
	EXPECT(t, bound(1, 0x100000, PAGE, fd, 10 * PAGE), EINVAL);
	EXPECT(t, bound(1, 0x100000, 32 * PAGE, fd, 0), EINVAL);
	EXPECT(t, deleted(1), EINVAL);
	/* touching ranges of the file are fine */
	EXPECT(t, bound(1, 0x100000, 8 * PAGE, fd, 0), 0);
	EXPECT(t, bound(2, 0x200000, 16 * PAGE, fd, 16 * PAGE), 0);
	/* and other VMs bind their own files independently */
	{
		struct kvm_userspace_memory_region2 r =
			bound(0, 0, 32 * PAGE, ofd, 0);

		CHECK_EQ(tvm_region2(&other, &r), 0);
	}
	/* delete, then the range binds again, under another id and GPA */
	EXPECT(t, deleted(0), 0);
	EXPECT(t, bound(3, 0x300000, 8 * PAGE, fd, 8 * PAGE), 0);
	EXPECT(t, bound(0, 0, 8 * PAGE, fd, 8 * PAGE), EINVAL);

	gmem_close(vmh);
	gmem_close(sys);
	file_close(t->ioctl, ofd);
	tvm_close(&other);
	CHECK_EQ(file_close(t->ioctl, fd), 0);
}

/* A slot survives its file being closed, and can then be deleted. */
static void case_file_closed(struct tvm *t)
{
	int fd;

	fd = tvm_file(t, 16 * PAGE);
	EXPECT(t, bound(0, 0, 16 * PAGE, fd, 0), 0);
	CHECK_EQ(file_close(t->ioctl, fd), 0);
	EXPECT(t, plain(1, 0, 0, PAGE), EEXIST);
	EXPECT(t, deleted(0), 0);
	EXPECT(t, plain(1, 0, 0, PAGE), 0);
}

static long set_v1(struct tvm *t, uint32_t slot, uint32_t flags, uint64_t gpa,
		   uint64_t size)
{
	struct kvm_userspace_memory_region r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = size,
		.userspace_addr = ua(gpa % AREA),
	};

	return tvm_region(t, &r);
}

static void case_v1(struct tvm *t)
{
	const uint32_t ok =
		KVM_MEM_LOG_DIRTY_PAGES | KVM_MEM_READONLY | KVM_MEM_EXECONLY;

	CHECK_EQ(set_v1(t, 0, KVM_MEM_GUEST_MEMFD, 0, PAGE), -EINVAL);
	for (int bit = 4; bit < 32; bit++)
		CHECK_EQ(set_v1(t, 0, 1U << bit, 0, PAGE), -EINVAL);
	CHECK_EQ(set_v1(t, 0, ok | KVM_MEM_GUEST_MEMFD, 0, PAGE), -EINVAL);
	CHECK(tvm_slot_is(t, 0, NULL));
	CHECK_EQ(set_v1(t, 0, KVM_MEM_LOG_DIRTY_PAGES, 0, 0x10000), 0);
	CHECK_EQ(set_v1(t, 1, KVM_MEM_READONLY, 0x10000, 0x10000), 0);
	CHECK_EQ(set_v1(t, 2, KVM_MEM_EXECONLY, 0x20000, 0x10000), -EINVAL);
	CHECK_EQ(tvm_enable_cap(t, GMEM_CAP_EXEC_ONLY, 0, 0), 0);
	CHECK_EQ(set_v1(t, 2, KVM_MEM_EXECONLY, 0x20000, 0x10000), 0);
	CHECK_EQ(set_v1(t, 3, 0, 0x28000, 0x10000), -EEXIST);
	CHECK_EQ(set_v1(t, 3, 0, 0x30000, PAGE + 1), -EINVAL);
	CHECK(tvm_slot_is(t, 1,
			  &(struct kvm_userspace_memory_region2){
				  .slot = 1,
				  .flags = KVM_MEM_READONLY,
				  .guest_phys_addr = 0x10000,
				  .memory_size = 0x10000,
				  .userspace_addr = ua(0x10000)}));
	/* v1 and v2 name the same slots */
	EXPECT(t, plain(1, KVM_MEM_READONLY, 0x10000, 0x10000), 0);
	{
		/* a v1 move: the same memory at a new GPA */
		struct kvm_userspace_memory_region m = {
			.slot = 1,
			.flags = KVM_MEM_READONLY,
			.guest_phys_addr = 0x40000,
			.memory_size = 0x10000,
			.userspace_addr = ua(0x10000),
		};

		CHECK_EQ(tvm_region(t, &m), 0);
	}
	CHECK_EQ(set_v1(t, 2, 0, 0x20000, 0), 0);
	EXPECT(t, deleted(2), EINVAL);
}

static void case_readback(struct tvm *t)
{
	struct kvm_userspace_memory_region2 out;
	int fd;

	CHECK_EQ(gmem_vm_get_memory_region2(t->vm, 0, &out), -ENOENT);
	CHECK_EQ(gmem_vm_get_memory_region2(t->vm, MAX_ID - 1, &out), -ENOENT);
	EXPECT(t, plain(9, KVM_MEM_READONLY, 0x900000, 0x30000), 0);
	CHECK_EQ(gmem_vm_get_memory_region2(t->vm, 8, &out), -ENOENT);
	CHECK_EQ(gmem_vm_get_memory_region2(t->vm, 10, &out), -ENOENT);
	if (t->type != KVM_X86_SW_PROTECTED_VM)
		return;
	fd = tvm_file(t, 0x40000);
	EXPECT(t, bound(10, 0xa00000, 0x10000, fd, 0x30000), 0);
	CHECK_EQ(gmem_vm_get_memory_region2(t->vm, 10, &out), 0);
	CHECK_EQ(out.guest_memfd, fd);
	CHECK_EQ(out.guest_memfd_offset, 0x30000);
	CHECK_EQ(out.flags, KVM_MEM_GUEST_MEMFD);
	CHECK_EQ(file_close(t->ioctl, fd), 0);
}

#define ONLY_DEFAULT 1 /* the rule is about DEFAULT VMs */
#define ONLY_SW 2      /* the rule needs guest_memfd slots */
#define ONLY_TYPED 4   /* read-back has no façade */

struct layer_case {
	const char *name;
	void (*fn)(struct tvm *t);
	unsigned only;
};

/* KVM_GET/CLEAR_DIRTY_LOG's errnos, in KVM's order. */
static void case_dirty_log(struct tvm *t)
{
	struct kvm_userspace_memory_region2 r = region2(
		1, KVM_MEM_LOG_DIRTY_PAGES, 0, 100 * PAGE, (uintptr_t)area);
	uint64_t bits[2] = {0};

	CHECK_EQ(tvm_check_extension(t, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2),
		 KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
			 KVM_DIRTY_LOG_INITIALLY_SET);
	CHECK_RET(tvm_get_dirty_log(t, 1, bits), ENOENT);
	CHECK_RET(tvm_region2(t, &r), 0);
	CHECK_RET(tvm_get_dirty_log(t, 1, bits), 0);
	CHECK_EQ(bits[0] | bits[1], 0);
	CHECK_RET(tvm_get_dirty_log(t, 1 | 1U << 16, bits), EINVAL);
	CHECK_RET(tvm_get_dirty_log(t, 32764, bits), EINVAL);
	CHECK_RET(tvm_get_dirty_log(t, 2, bits), ENOENT);
	CHECK_RET(tvm_get_dirty_log(t, 1, (void *)8), EFAULT);
	/* CLEAR: the id, then the alignment, then the slot, then the range. */
	CHECK_RET(tvm_clear_dirty_log(t, 1 | 1U << 16, 1, 64, bits), EINVAL);
	CHECK_RET(tvm_clear_dirty_log(t, 2, 1, 64, bits), EINVAL);
	CHECK_RET(tvm_clear_dirty_log(t, 2, 0, 64, bits), ENOENT);
	CHECK_RET(tvm_clear_dirty_log(t, 1, 0, 64, bits), 0);
	CHECK_RET(tvm_clear_dirty_log(t, 1, 0, 100, bits), 0);
	CHECK_RET(tvm_clear_dirty_log(t, 1, 64, 36, bits), 0);
	CHECK_RET(tvm_clear_dirty_log(t, 1, 0, 63, bits), EINVAL);
	CHECK_RET(tvm_clear_dirty_log(t, 1, 64, 37, bits), EINVAL);
	CHECK_RET(tvm_clear_dirty_log(t, 1, 128, 0, bits), EINVAL);
	CHECK_RET(tvm_clear_dirty_log(t, 1, 0, 64, (void *)8), EFAULT);
	/* Without logging the slot has no bitmap. */
	r.flags = 0;
	CHECK_RET(tvm_region2(t, &r), 0);
	CHECK_RET(tvm_get_dirty_log(t, 1, bits), ENOENT);
	CHECK_RET(tvm_clear_dirty_log(t, 1, 0, 64, bits), ENOENT);
	CHECK_RET(tvm_reset_dirty_rings(t), EINVAL);
	r.memory_size = 0;
	CHECK_RET(tvm_region2(t, &r), 0);
}

static void case_manual_protect(struct tvm *t)
{
	struct kvm_userspace_memory_region2 r = region2(
		1, KVM_MEM_LOG_DIRTY_PAGES, 0, 100 * PAGE, (uintptr_t)area);
	uint64_t bits[2];

	CHECK_RET(tvm_enable_cap(t, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 0,
				 KVM_DIRTY_LOG_INITIALLY_SET),
		  EINVAL);
	CHECK_RET(tvm_enable_cap(t, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 0, 4),
		  EINVAL);
	CHECK_RET(tvm_enable_cap(t, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 1,
				 KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE),
		  EINVAL);
	CHECK_RET(tvm_enable_cap(t, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 0,
				 KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
					 KVM_DIRTY_LOG_INITIALLY_SET),
		  0);
	/* A bitmap made now starts set, 100 bits of it. */
	CHECK_RET(tvm_region2(t, &r), 0);
	CHECK_RET(tvm_get_dirty_log(t, 1, bits), 0);
	CHECK_EQ(bits[0], ~0ULL);
	CHECK_EQ(bits[1], (1ULL << 36) - 1);
	bits[0] = 0xff;
	CHECK_RET(tvm_clear_dirty_log(t, 1, 0, 64, bits), 0);
	CHECK_RET(tvm_get_dirty_log(t, 1, bits), 0);
	CHECK_EQ(bits[0], ~0xffULL);
	/* Off again: GET collects (and clears) what is left. */
	CHECK_RET(tvm_enable_cap(t, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2, 0, 0),
		  0);
	CHECK_RET(tvm_get_dirty_log(t, 1, bits), 0);
	CHECK_EQ(bits[0], ~0xffULL);
	CHECK_RET(tvm_get_dirty_log(t, 1, bits), 0);
	CHECK_EQ(bits[0] | bits[1], 0);
	r.memory_size = 0;
	CHECK_RET(tvm_region2(t, &r), 0);
}

static void case_dirty_ring(struct tvm *t)
{
	const long max = 65536 * (long)sizeof(struct kvm_dirty_gfn);
	struct kvm_userspace_memory_region2 r = region2(
		1, KVM_MEM_LOG_DIRTY_PAGES, 0, 100 * PAGE, (uintptr_t)area);
	struct tvm_vcpu v;
	uint64_t bits[2];

	CHECK_EQ(tvm_check_extension(t, KVM_CAP_DIRTY_LOG_RING), max);
	CHECK_EQ(tvm_check_extension(t, KVM_CAP_DIRTY_LOG_RING_ACQ_REL), max);
	CHECK_RET(tvm_reset_dirty_rings(t), EINVAL);
	CHECK_RET(tvm_enable_cap(t, KVM_CAP_DIRTY_LOG_RING, 0, 0), EINVAL);
	CHECK_RET(tvm_enable_cap(t, KVM_CAP_DIRTY_LOG_RING, 0, 3 * 4096),
		  EINVAL);
	CHECK_RET(tvm_enable_cap(t, KVM_CAP_DIRTY_LOG_RING, 0, 2048), EINVAL);
	CHECK_RET(tvm_enable_cap(t, KVM_CAP_DIRTY_LOG_RING, 0, 2 * max), E2BIG);
	/* The size is a u32 in KVM: the high half is not looked at. */
	CHECK_RET(tvm_enable_cap(t, KVM_CAP_DIRTY_LOG_RING_ACQ_REL, 0,
				 1ULL << 32 | 8192),
		  0);
	CHECK_RET(tvm_enable_cap(t, KVM_CAP_DIRTY_LOG_RING, 0, 8192), EINVAL);
	CHECK_RET(tvm_region2(t, &r), 0);
	CHECK_RET(tvm_get_dirty_log(t, 1, bits), ENXIO);
	CHECK_RET(tvm_clear_dirty_log(t, 1, 0, 64, bits), ENXIO);
	CHECK_RET(tvm_clear_dirty_log(t, 1, 1, 64, bits), ENXIO);
	CHECK_RET(tvm_reset_dirty_rings(t), 0);

	REQUIRE(tvm_vcpu_create(t, 0, &v) == 0);
	if (t->ioctl) {
		const off_t off = KVM_DIRTY_LOG_PAGE_OFFSET * PAGE;
		uint8_t *p;

		/* Shared and not executable, as KVM's vCPU mmap wants. */
		p = gmem_mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_PRIVATE,
			      v.fd, off);
		CHECK(p == MAP_FAILED && errno == EINVAL);
		p = gmem_mmap(NULL, 8192, PROT_READ | PROT_EXEC, MAP_SHARED,
			      v.fd, off);
		CHECK(p == MAP_FAILED && errno == EINVAL);
		p = gmem_mmap(NULL, 3 * 4096, PROT_READ, MAP_SHARED, v.fd, off);
		CHECK(p == MAP_FAILED && errno == EINVAL);
		p = gmem_mmap(NULL, 8192, PROT_READ | PROT_WRITE, MAP_SHARED,
			      v.fd, off);
		CHECK(p != MAP_FAILED);
		if (p != MAP_FAILED) {
			struct gmem_vcpu *vcpu = NULL;

			REQUIRE(gmem_vcpu_from_handle(v.fd, &vcpu) == 0);
			/* The ring the vCPU writes, and empty. */
			CHECK_EQ(memcmp(p, gmem_vcpu_dirty_ring(vcpu), 8192),
				 0);
			CHECK_EQ(((struct kvm_dirty_gfn *)p)->flags, 0);
			gmem_vcpu_put(vcpu);
			gmem_munmap(p, 8192);
		}
	} else {
		CHECK(gmem_vcpu_dirty_ring(v.vcpu) != NULL);
	}
	/* Not once a vCPU exists. */
	CHECK_RET(tvm_enable_cap(t, KVM_CAP_DIRTY_LOG_RING, 0, 4096), EINVAL);
	tvm_vcpu_put(&v);
	r.memory_size = 0;
	CHECK_RET(tvm_region2(t, &r), 0);
}

static const struct layer_case layer_cases[] = {
	{"unknown flags -> EINVAL, first", case_flags, 0},
	{"GUEST_MEMFD on a DEFAULT VM -> EINVAL", case_gmem_default_vm,
	 ONLY_DEFAULT},
	{"GUEST_MEMFD with LOG_DIRTY/READONLY/EXECONLY -> EINVAL",
	 case_gmem_flags, 0},
	{"unaligned size, GPA, uaddr, gmem offset -> EINVAL", case_alignment,
	 0},
	{"userspace_addr + size beyond user space -> EINVAL", case_user_range,
	 0},
	{"guest_memfd_offset + size overflow -> EINVAL",
	 case_gmem_offset_overflow, ONLY_SW},
	{"as_id != 0 or id >= 32764 -> EINVAL", case_slot_id, 0},
	{"GPA + size overflow -> EINVAL", case_gpa_overflow, 0},
	{"more than 2^31 - 1 pages -> EINVAL", case_max_size, 0},
	{"size 0 deletes; no such slot -> EINVAL", case_delete, 0},
	{"EXECONLY is valid with GMEM_CAP_XO_ALIAS", case_execonly_xo, 0},
	{"modify: a new GPA moves; only LOG_DIRTY_PAGES may change",
	 case_modify, 0},
	{"a GUEST_MEMFD slot is immutable", case_gmem_immutable, ONLY_SW},
	{"overlapping another slot -> EEXIST", case_overlap, 0},
	{"bind: handle kinds, VM, range, overlapping bindings", case_bind,
	 ONLY_SW},
	{"a slot outlives its closed file", case_file_closed, ONLY_SW},
	{"v1 KVM_SET_USER_MEMORY_REGION", case_v1, 0},
	{"KVM_GET/CLEAR_DIRTY_LOG: ids, alignment, ranges, EFAULT",
	 case_dirty_log, 0},
	{"KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: flags, INITIALLY_SET",
	 case_manual_protect, 0},
	{"KVM_CAP_DIRTY_LOG_RING: sizes, once, before vCPUs; ENXIO; mmap",
	 case_dirty_ring, 0},
	{"read-back returns what was set, -ENOENT if none", case_readback,
	 ONLY_TYPED},
};

#define NR_LAYER_CASES (int)(sizeof(layer_cases) / sizeof(layer_cases[0]))

int main(void)
{
	static const unsigned long types[] = {KVM_X86_DEFAULT_VM,
					      KVM_X86_SW_PROTECTED_VM};
	char name[160];

	tap_plan(NR_LAYER_CASES * 4, 60);
	area = test_mem(AREA);
	for (int i = 0; i < NR_LAYER_CASES; i++)
		for (int ty = 0; ty < 2; ty++)
			for (int io = 0; io < 2; io++) {
				const struct layer_case *c = &layer_cases[i];
				struct tvm t;

				snprintf(name, sizeof(name), "%s (%s VM, %s)",
					 c->name,
					 ty ? "SW_PROTECTED" : "DEFAULT",
					 io ? "ioctl" : "typed");
				if ((c->only & ONLY_DEFAULT && ty) ||
				    (c->only & ONLY_SW && !ty) ||
				    (c->only & ONLY_TYPED && io)) {
					tap_skip(name, "not applicable");
					continue;
				}
				tvm_open(&t, io, types[ty]);
				c->fn(&t);
				tvm_close(&t);
				tap_result(name);
			}
	return tap_done();
}
