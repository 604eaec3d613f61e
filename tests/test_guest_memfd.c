// SPDX-License-Identifier: MIT
/*
 * guest_memfd files (DESIGN §3.2): creation checks, the file calls that
 * must fail, fstat, the fallocate checks in their order, the poison hook,
 * and that a closed file is EBADF everywhere.  Each rule that exists in
 * both layers runs in both.
 */
#include <fcntl.h>
#include <linux/falloc.h>
#include <setjmp.h>
#include <signal.h>
#include <stdint.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

#include "gmem_test.h"

/* <numaif.h>'s values, without libnuma. */
#define MPOL_DEFAULT_ 0
#define MPOL_BIND_ 2
#define MPOL_F_NODE_ (1 << 0)
#define MPOL_F_ADDR_ (1 << 1)

#define KEEP FALLOC_FL_KEEP_SIZE
#define PUNCH (FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE)
#define FILE_PAGES 16
#define FILE_SIZE (FILE_PAGES * PAGE)

static void expect_create(struct tvm *t, uint64_t size, uint64_t flags, int err,
			  int line)
{
	long r = tvm_create_file_flags(t, size, flags);

	if (err ? r == -err : r >= 3) {
		if (r >= 0)
			file_close(t->ioctl, (int)r);
		return;
	}
	tap_case_failed = 1;
	tap_diag("line %d: create size %#" PRIx64 " flags %#" PRIx64
		 " (%s): got %ld, expected %s%d",
		 line, size, flags, tvm_layer(t), r,
		 err ? "" : "a handle >= ", err ? -err : 3);
	if (r >= 0)
		file_close(t->ioctl, (int)r);
}

#define EXPECT_CREATE(t, size, flags, err) \
	expect_create(t, size, flags, err, __LINE__)

static void expect_falloc(bool ioctl, int fd, int mode, int64_t off,
			  int64_t len, int err, int line)
{
	long r = file_fallocate(ioctl, fd, mode, off, len);

	if (r == -err)
		return;
	tap_case_failed = 1;
	tap_diag("line %d: fallocate(mode %#x, off %#" PRIx64 ", len %#" PRIx64
		 ") (%s): got %ld, expected %d",
		 line, mode, (uint64_t)off, (uint64_t)len,
		 ioctl ? "ioctl" : "typed", r, -err);
}

#define EXPECT_FALLOC(io, fd, mode, off, len, err) \
	expect_falloc(io, fd, mode, off, len, err, __LINE__)

/* ---- cases run in both layers ----------------------------------------- */

static void case_create_flags(struct tvm *t)
{
	for (int bit = 0; bit < 64; bit++)
		EXPECT_CREATE(t, FILE_SIZE, 1ULL << bit, EINVAL);
	EXPECT_CREATE(t, FILE_SIZE, ~0ULL, EINVAL);
	EXPECT_CREATE(t, FILE_SIZE, 0, 0);
}

static void case_create_size(struct tvm *t)
{
	EXPECT_CREATE(t, 0, 0, EINVAL);
	for (uint64_t s = 1; s < PAGE; s++)
		EXPECT_CREATE(t, s, 0, EINVAL);
	EXPECT_CREATE(t, PAGE + 1, 0, EINVAL);
	EXPECT_CREATE(t, 2 * PAGE - 1, 0, EINVAL);
	EXPECT_CREATE(t, 1ULL << 63, 0, EINVAL);
	EXPECT_CREATE(t, (1ULL << 63) + PAGE, 0, EINVAL);
	EXPECT_CREATE(t, -PAGE, 0, EINVAL);
	EXPECT_CREATE(t, PAGE, 0, 0);
	EXPECT_CREATE(t, 2 * MIB, 0, 0);
	EXPECT_CREATE(t, 2 * MIB + PAGE, 0, 0);
	/* the file starts as holes: a big one costs nothing */
	EXPECT_CREATE(t, TIB, 0, 0);
}

/* Two files of any VM type: distinct handles, sizes and inodes. */
static void case_stat(struct tvm *t)
{
	struct stat st1, st2;
	int f1 = tvm_file(t, FILE_SIZE);
	int f2 = tvm_file(t, 3 * PAGE);

	CHECK(f1 >= 3);
	CHECK(f2 >= 3);
	CHECK(f1 != f2);
	memset(&st1, 0, sizeof(st1));
	memset(&st2, 0, sizeof(st2));
	CHECK_EQ(file_stat(t->ioctl, f1, &st1), 0);
	CHECK_EQ(file_stat(t->ioctl, f2, &st2), 0);
	CHECK_EQ(st1.st_size, FILE_SIZE);
	CHECK_EQ(st2.st_size, 3 * PAGE);
	CHECK_EQ(st1.st_blksize, 4096);
	CHECK_EQ(st2.st_blksize, 4096);
	CHECK(st1.st_ino != st2.st_ino);
	/* the size does not change with allocation */
	CHECK_EQ(file_fallocate(t->ioctl, f2, KEEP, 0, 3 * PAGE), 0);
	CHECK_EQ(file_stat(t->ioctl, f2, &st2), 0);
	CHECK_EQ(st2.st_size, 3 * PAGE);
	CHECK_EQ(file_close(t->ioctl, f1), 0);
	CHECK_EQ(file_close(t->ioctl, f2), 0);
}

static void case_falloc_args(struct tvm *t)
{
	bool io = t->ioctl;
	int fd = tvm_file(t, FILE_SIZE);

	/* offset < 0 or len <= 0, before anything else */
	EXPECT_FALLOC(io, fd, KEEP, -1, PAGE, EINVAL);
	EXPECT_FALLOC(io, fd, KEEP, -(int64_t)PAGE, PAGE, EINVAL);
	EXPECT_FALLOC(io, fd, KEEP, INT64_MIN, PAGE, EINVAL);
	EXPECT_FALLOC(io, fd, KEEP, 0, 0, EINVAL);
	EXPECT_FALLOC(io, fd, KEEP, 0, -(int64_t)PAGE, EINVAL);
	EXPECT_FALLOC(io, fd, PUNCH, 0, 0, EINVAL);
	EXPECT_FALLOC(io, fd, 0, -1, PAGE, EINVAL);
	EXPECT_FALLOC(io, fd, 0, 0, 0, EINVAL);
	EXPECT_FALLOC(io, fd, FALLOC_FL_ZERO_RANGE, 0, -1, EINVAL);
	CHECK_EQ(file_close(io, fd), 0);
}

static void case_falloc_mode(struct tvm *t)
{
	bool io = t->ioctl;
	int fd = tvm_file(t, FILE_SIZE);

	/* KEEP_SIZE is required */
	EXPECT_FALLOC(io, fd, 0, 0, PAGE, EOPNOTSUPP);
	EXPECT_FALLOC(io, fd, FALLOC_FL_PUNCH_HOLE, 0, PAGE, EOPNOTSUPP);
	/* ... and checked before alignment, overflow and size */
	EXPECT_FALLOC(io, fd, 0, 1, 1, EOPNOTSUPP);
	EXPECT_FALLOC(io, fd, 0, INT64_MAX, PAGE, EOPNOTSUPP);
	EXPECT_FALLOC(io, fd, 0, 64 * FILE_SIZE, PAGE, EOPNOTSUPP);
	/* every other mode bit, with and without PUNCH_HOLE */
	for (int bit = 2; bit < 32; bit++) {
		int m = (int)(1U << bit);

		EXPECT_FALLOC(io, fd, KEEP | m, 0, PAGE, EOPNOTSUPP);
		EXPECT_FALLOC(io, fd, PUNCH | m, 0, PAGE, EOPNOTSUPP);
		EXPECT_FALLOC(io, fd, KEEP | m, 1, 1, EOPNOTSUPP);
		EXPECT_FALLOC(io, fd, m, 0, PAGE, EOPNOTSUPP);
	}
	EXPECT_FALLOC(io, fd, KEEP | FALLOC_FL_ZERO_RANGE, 0, PAGE, EOPNOTSUPP);
	EXPECT_FALLOC(io, fd, KEEP | FALLOC_FL_COLLAPSE_RANGE, 0, PAGE,
		      EOPNOTSUPP);
	EXPECT_FALLOC(io, fd, KEEP | FALLOC_FL_INSERT_RANGE, 0, PAGE,
		      EOPNOTSUPP);
	CHECK_EQ(file_close(io, fd), 0);
}

static void case_falloc_efbig(struct tvm *t)
{
	bool io = t->ioctl;
	int fd = tvm_file(t, FILE_SIZE);
	int64_t top = INT64_MAX & ~(int64_t)(PAGE - 1);

	EXPECT_FALLOC(io, fd, KEEP, top, PAGE, EFBIG);
	EXPECT_FALLOC(io, fd, KEEP, top, 2 * PAGE, EFBIG);
	EXPECT_FALLOC(io, fd, KEEP, PAGE, INT64_MAX, EFBIG);
	EXPECT_FALLOC(io, fd, PUNCH, top, PAGE, EFBIG);
	EXPECT_FALLOC(io, fd, PUNCH, PAGE, top, EFBIG);
	/* overflow is checked before alignment */
	EXPECT_FALLOC(io, fd, KEEP, INT64_MAX - 100, 1000, EFBIG);
	EXPECT_FALLOC(io, fd, PUNCH, 1, INT64_MAX, EFBIG);
	/* ending exactly at INT64_MAX + 1 - PAGE is no overflow */
	EXPECT_FALLOC(io, fd, KEEP, top - PAGE, PAGE, EINVAL);
	EXPECT_FALLOC(io, fd, PUNCH, top - PAGE, PAGE, 0);
	CHECK_EQ(file_close(io, fd), 0);
}

static void case_falloc_align(struct tvm *t)
{
	static const int64_t bad[] = {1, 512, 2048, 4095, PAGE + 1};
	bool io = t->ioctl;
	int fd = tvm_file(t, FILE_SIZE);

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		EXPECT_FALLOC(io, fd, KEEP, bad[i], PAGE, EINVAL);
		EXPECT_FALLOC(io, fd, KEEP, 0, bad[i], EINVAL);
		EXPECT_FALLOC(io, fd, PUNCH, bad[i], PAGE, EINVAL);
		EXPECT_FALLOC(io, fd, PUNCH, 0, bad[i], EINVAL);
		/* unaligned and past the size: alignment decides */
		EXPECT_FALLOC(io, fd, PUNCH, FILE_SIZE + bad[i], PAGE, EINVAL);
	}
	CHECK_EQ(file_close(io, fd), 0);
}

static void case_falloc_range(struct tvm *t)
{
	bool io = t->ioctl;
	int fd = tvm_file(t, FILE_SIZE);

	/* allocation must stay inside the file */
	EXPECT_FALLOC(io, fd, KEEP, FILE_SIZE - PAGE, 2 * PAGE, EINVAL);
	EXPECT_FALLOC(io, fd, KEEP, FILE_SIZE, PAGE, EINVAL);
	EXPECT_FALLOC(io, fd, KEEP, 0, FILE_SIZE + PAGE, EINVAL);
	EXPECT_FALLOC(io, fd, KEEP, 100 * FILE_SIZE, PAGE, EINVAL);
	EXPECT_FALLOC(io, fd, KEEP, 3 * PAGE, 2 * PAGE, 0);
	EXPECT_FALLOC(io, fd, KEEP, 0, FILE_SIZE, 0);
	EXPECT_FALLOC(io, fd, KEEP, 0, FILE_SIZE, 0);
	EXPECT_FALLOC(io, fd, KEEP, FILE_SIZE - PAGE, PAGE, 0);
	/* holes anywhere: inside, straddling, at and past the size */
	EXPECT_FALLOC(io, fd, PUNCH, 3 * PAGE, PAGE, 0);
	EXPECT_FALLOC(io, fd, PUNCH, 3 * PAGE, PAGE, 0);
	EXPECT_FALLOC(io, fd, PUNCH, FILE_SIZE - PAGE, 4 * PAGE, 0);
	EXPECT_FALLOC(io, fd, PUNCH, FILE_SIZE, PAGE, 0);
	EXPECT_FALLOC(io, fd, PUNCH, 1000 * FILE_SIZE, 8 * PAGE, 0);
	EXPECT_FALLOC(io, fd, PUNCH, 0, FILE_SIZE, 0);
	/* and allocating again after punching */
	EXPECT_FALLOC(io, fd, KEEP, 0, FILE_SIZE, 0);
	CHECK_EQ(file_close(io, fd), 0);
}

/* Every call on a closed file, and on handles never opened. */
static void expect_ebadf_file(bool io, int fd)
{
	struct stat st;

	EXPECT_FALLOC(io, fd, KEEP, 0, PAGE, EBADF);
	EXPECT_FALLOC(io, fd, PUNCH, 0, PAGE, EBADF);
	CHECK_EQ(file_stat(io, fd, &st), -EBADF);
	CHECK_EQ(file_close(io, fd), -EBADF);
	if (!io) {
		CHECK_RET(gmem_file_poison(fd, 0), EBADF);
		return;
	}
	{
		char buf[16];

		CHECK_ERRNO(gmem_ftruncate(fd, FILE_SIZE), EBADF);
		CHECK_ERRNO(gmem_read(fd, buf, sizeof(buf)), EBADF);
		CHECK_ERRNO(gmem_write(fd, buf, sizeof(buf)), EBADF);
		CHECK_ERRNO(gmem_pread(fd, buf, sizeof(buf), 0), EBADF);
		CHECK_ERRNO(gmem_pwrite(fd, buf, sizeof(buf), 0), EBADF);
		errno = 0;
		CHECK(gmem_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0) ==
		      MAP_FAILED);
		CHECK_EQ(errno, EBADF);
		CHECK_ERRNO(gmem_ioctl(fd, KVM_CHECK_EXTENSION,
				       KVM_CAP_USER_MEMORY),
			    EBADF);
	}
}

static void case_close(struct tvm *t)
{
	int fd = tvm_file(t, FILE_SIZE);

	CHECK_EQ(file_fallocate(t->ioctl, fd, KEEP, 0, PAGE), 0);
	CHECK_EQ(file_close(t->ioctl, fd), 0);
	expect_ebadf_file(t->ioctl, fd);
	expect_ebadf_file(t->ioctl, 100000);
	expect_ebadf_file(t->ioctl, -1);
	expect_ebadf_file(t->ioctl, INT32_MAX);
}

/* The file holds its VM: it keeps working after the VM is dropped. */
static void case_outlives_vm(struct tvm *t)
{
	struct stat st;
	int fd = tvm_file(t, FILE_SIZE);

	tvm_close(t);
	CHECK_EQ(file_fallocate(t->ioctl, fd, KEEP, 0, FILE_SIZE), 0);
	CHECK_EQ(file_fallocate(t->ioctl, fd, PUNCH, PAGE, PAGE), 0);
	CHECK_EQ(file_stat(t->ioctl, fd, &st), 0);
	CHECK_EQ(st.st_size, FILE_SIZE);
	CHECK_EQ(file_close(t->ioctl, fd), 0);
}

struct layer_case {
	const char *name;
	void (*fn)(struct tvm *t);
};

/* memfd_secret(2) in this kernel (the test's own probe). */
static bool have_secretmem(void)
{
	int fd = (int)syscall(447, 0);

	if (fd < 0)
		return false;
	close(fd);
	return true;
}

/* GMEM_CAP_GUEST_MEMFD_MMAP: 6.18's flags, only once it is on. */
static void case_mmap_flags(struct tvm *t)
{
	uint64_t want = GUEST_MEMFD_FLAG_MMAP;

	if (t->type == KVM_X86_DEFAULT_VM)
		want |= GUEST_MEMFD_FLAG_INIT_SHARED;
	if (have_secretmem())
		want |= GUEST_MEMFD_FLAG_NO_DIRECT_MAP;
	CHECK_EQ(tvm_check_extension(t, KVM_CAP_GUEST_MEMFD_FLAGS), 0);
	EXPECT_CREATE(t, FILE_SIZE, GUEST_MEMFD_FLAG_MMAP, EINVAL);
	CHECK_RET(tvm_enable_cap(t, GMEM_CAP_GUEST_MEMFD_MMAP, 0, 1), EINVAL);
	CHECK_RET(tvm_enable_cap(t, GMEM_CAP_GUEST_MEMFD_MMAP, 1, 0), EINVAL);
	CHECK_RET(tvm_enable_cap(t, GMEM_CAP_GUEST_MEMFD_MMAP, 0, 0), 0);
	CHECK_EQ(tvm_check_extension(t, KVM_CAP_GUEST_MEMFD_FLAGS), want);
	CHECK_EQ(tvm_check_extension(t, KVM_CAP_GUEST_MEMFD), 1);
	for (int bit = 0; bit < 64; bit++)
		EXPECT_CREATE(t, FILE_SIZE, 1ULL << bit,
			      (want >> bit) & 1 ? 0 : EINVAL);
	EXPECT_CREATE(t, FILE_SIZE, want, 0);
	EXPECT_CREATE(t, FILE_SIZE, want | 8, EINVAL);
}

static const struct layer_case layer_cases[] = {
	{"create: any flag bit -> EINVAL", case_create_flags},
	{"create: size 0, unaligned or > INT64_MAX -> EINVAL",
	 case_create_size},
	{"fstat: size, blksize 4096, distinct inodes", case_stat},
	{"fallocate: offset < 0 or len <= 0 -> EINVAL", case_falloc_args},
	{"fallocate: no KEEP_SIZE or other mode bits -> EOPNOTSUPP",
	 case_falloc_mode},
	{"fallocate: offset + len overflow -> EFBIG", case_falloc_efbig},
	{"fallocate: unaligned offset or len -> EINVAL", case_falloc_align},
	{"fallocate: allocate inside only, punch anywhere", case_falloc_range},
	{"close, then every call -> EBADF", case_close},
	{"a file outlives its VM", case_outlives_vm},
	{"GMEM_CAP_GUEST_MEMFD_MMAP: KVM_CAP_GUEST_MEMFD_FLAGS, the flags",
	 case_mmap_flags},
};

#define NR_LAYER_CASES (int)(sizeof(layer_cases) / sizeof(layer_cases[0]))

static void run_layer_cases(void)
{
	static const unsigned long types[] = {KVM_X86_DEFAULT_VM,
					      KVM_X86_SW_PROTECTED_VM};
	char name[160];

	for (int i = 0; i < NR_LAYER_CASES; i++)
		for (int ty = 0; ty < 2; ty++)
			for (int io = 0; io < 2; io++) {
				struct tvm t;

				tvm_open(&t, io, types[ty]);
				layer_cases[i].fn(&t);
				tvm_close(&t);
				snprintf(name, sizeof(name), "%s (%s VM, %s)",
					 layer_cases[i].name,
					 ty ? "SW_PROTECTED" : "DEFAULT",
					 io ? "ioctl" : "typed");
				tap_result(name);
			}
}

/* ---- façade-only file calls -------------------------------------------- */

static void test_io_fails(void)
{
	struct tvm t;
	char buf[PAGE];
	int fd;

	tvm_open(&t, true, KVM_X86_SW_PROTECTED_VM);
	fd = tvm_file(&t, FILE_SIZE);
	REQUIRE(gmem_fallocate(fd, KEEP, 0, FILE_SIZE) == 0);
	memset(buf, 0x5a, sizeof(buf));
	CHECK_ERRNO(gmem_read(fd, buf, sizeof(buf)), EINVAL);
	CHECK_ERRNO(gmem_write(fd, buf, sizeof(buf)), EINVAL);
	CHECK_ERRNO(gmem_pread(fd, buf, sizeof(buf), 0), EINVAL);
	CHECK_ERRNO(gmem_pwrite(fd, buf, sizeof(buf), 0), EINVAL);
	CHECK_ERRNO(gmem_pread(fd, buf, 1, PAGE), EINVAL);
	CHECK_ERRNO(gmem_pwrite(fd, buf, 1, PAGE), EINVAL);
	/* the buffer was not touched */
	CHECK_EQ(buf[0], 0x5a);
	CHECK_EQ(buf[PAGE - 1], 0x5a);
	CHECK_EQ(gmem_close(fd), 0);
	tvm_close(&t);
	tap_result("read, write, pread, pwrite -> EINVAL");
}

static void test_mmap_fails(void)
{
	static const int prots[] = {PROT_READ, PROT_READ | PROT_WRITE,
				    PROT_NONE, PROT_EXEC};
	struct tvm t;
	int fd;

	tvm_open(&t, true, KVM_X86_SW_PROTECTED_VM);
	fd = tvm_file(&t, FILE_SIZE);
	for (size_t i = 0; i < sizeof(prots) / sizeof(prots[0]); i++) {
		errno = 0;
		CHECK(gmem_mmap(NULL, FILE_SIZE, prots[i], MAP_SHARED, fd, 0) ==
		      MAP_FAILED);
		CHECK_EQ(errno, ENODEV);
		errno = 0;
		CHECK(gmem_mmap(NULL, PAGE, prots[i], MAP_PRIVATE, fd, PAGE) ==
		      MAP_FAILED);
		CHECK_EQ(errno, ENODEV);
	}
	CHECK_EQ(gmem_close(fd), 0);
	tvm_close(&t);
	tap_result("mmap -> MAP_FAILED, ENODEV");
}

static void test_ftruncate_fails(void)
{
	struct stat st;
	struct tvm t;
	int fd;

	tvm_open(&t, true, KVM_X86_SW_PROTECTED_VM);
	fd = tvm_file(&t, FILE_SIZE);
	CHECK_ERRNO(gmem_ftruncate(fd, 0), EINVAL);
	CHECK_ERRNO(gmem_ftruncate(fd, FILE_SIZE), EINVAL);
	CHECK_ERRNO(gmem_ftruncate(fd, 2 * FILE_SIZE), EINVAL);
	CHECK_ERRNO(gmem_ftruncate(fd, PAGE), EINVAL);
	CHECK_EQ(gmem_fstat(fd, &st), 0);
	CHECK_EQ(st.st_size, FILE_SIZE);
	CHECK_EQ(gmem_close(fd), 0);
	tvm_close(&t);
	tap_result("ftruncate -> EINVAL, size unchanged");
}

static void test_poison(void)
{
	struct gmem_vm *vm = test_vm(KVM_X86_SW_PROTECTED_VM);
	struct kvm_create_guest_memfd g = {.size = FILE_SIZE};
	int fd = gmem_create_guest_memfd(vm, &g);

	REQUIRE(fd >= 0);
	CHECK_RET(gmem_file_poison(fd, 1), EINVAL);
	CHECK_RET(gmem_file_poison(fd, 2048), EINVAL);
	CHECK_RET(gmem_file_poison(fd, PAGE - 1), EINVAL);
	CHECK_RET(gmem_file_poison(fd, FILE_SIZE), EINVAL);
	CHECK_RET(gmem_file_poison(fd, FILE_SIZE + PAGE), EINVAL);
	CHECK_RET(gmem_file_poison(fd, INT64_MAX & ~(int64_t)(PAGE - 1)),
		  EINVAL);
	CHECK_RET(gmem_file_poison(fd, -(int64_t)PAGE), EINVAL);
	/* holes and allocated pages alike, and twice */
	CHECK_RET(gmem_file_poison(fd, 0), 0);
	CHECK_RET(gmem_file_poison(fd, FILE_SIZE - PAGE), 0);
	CHECK_RET(gmem_file_fallocate(fd, KEEP, PAGE, PAGE), 0);
	CHECK_RET(gmem_file_poison(fd, PAGE), 0);
	CHECK_RET(gmem_file_poison(fd, PAGE), 0);
	/* punching clears it; the page can be poisoned again */
	CHECK_RET(gmem_file_fallocate(fd, PUNCH, PAGE, PAGE), 0);
	CHECK_RET(gmem_file_poison(fd, PAGE), 0);
	CHECK_RET(gmem_handle_close(fd), 0);
	CHECK_RET(gmem_file_poison(fd, 0), EBADF);
	gmem_vm_put(vm);
	tap_result("poison: unaligned or >= size -> EINVAL, else 0");
}

/*
 * fallocate on a handle that is no guest_memfd: what Linux's vfs_fallocate
 * gives for /dev/kvm or a VM's anonymous inode, ENODEV, after its argument
 * and mode checks.
 */
static void test_fallocate_not_file(void)
{
	int sys = gmem_open();
	int vm = gmem_ioctl(sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);

	REQUIRE(sys >= 0 && vm >= 0);
	CHECK_ERRNO(gmem_fallocate(sys, KEEP, 0, PAGE), ENODEV);
	CHECK_ERRNO(gmem_fallocate(vm, KEEP, 0, PAGE), ENODEV);
	CHECK_ERRNO(gmem_fallocate(vm, PUNCH, 0, PAGE), ENODEV);
	CHECK_RET(gmem_file_fallocate(vm, KEEP, 0, PAGE), ENODEV);
	/* vfs_fallocate checks offset/len and the mode before the file type */
	CHECK_ERRNO(gmem_fallocate(vm, KEEP, -1, PAGE), EINVAL);
	CHECK_ERRNO(gmem_fallocate(vm, KEEP, 0, 0), EINVAL);
	CHECK_EQ(gmem_close(vm), 0);
	CHECK_EQ(gmem_close(sys), 0);
	tap_result("fallocate on a system or VM handle -> ENODEV");
}

/* A typed file is an ordinary handle for the façade, and vice versa. */
static void test_layers_share_handles(void)
{
	struct tvm t;
	struct stat st;
	int fd;

	tvm_open(&t, false, KVM_X86_SW_PROTECTED_VM);
	fd = tvm_file(&t, FILE_SIZE);
	CHECK_EQ(gmem_fallocate(fd, KEEP, 0, PAGE), 0);
	CHECK_EQ(gmem_fstat(fd, &st), 0);
	CHECK_EQ(st.st_size, FILE_SIZE);
	CHECK_EQ(gmem_close(fd), 0);
	CHECK_RET(gmem_file_fallocate(fd, KEEP, 0, PAGE), EBADF);
	tvm_close(&t);
	tap_result("typed files are façade handles");
}

/* ---- 6.18's mmap of a guest_memfd --------------------------------------- */

static sigjmp_buf bus_jmp;
static volatile sig_atomic_t bus_hits;

static void on_sigbus(int sig)
{
	(void)sig;
	bus_hits++;
	siglongjmp(bus_jmp, 1);
}

/* Does reading @p raise SIGBUS? */
static bool read_sigbus(volatile uint8_t *p)
{
	sig_atomic_t before = bus_hits;

	if (!sigsetjmp(bus_jmp, 1))
		(void)*p;
	return bus_hits != before;
}

static struct gmem_vcpu *mmap_vm(struct tvm *t, unsigned long type,
				 uint64_t flags, int *fd)
{
	struct gmem_vcpu *vcpu = NULL;
	/* No userspace_addr: the slot's memory is the file's alone. */
	struct kvm_userspace_memory_region2 r;

	tvm_open(t, false, type);
	REQUIRE(tvm_enable_cap(t, GMEM_CAP_GUEST_MEMFD_MMAP, 0, 0) == 0);
	REQUIRE((*fd = (int)tvm_create_file_flags(t, FILE_SIZE, flags)) >= 0);
	r = gregion2(0, 0, FILE_SIZE, 0, *fd, 0);
	REQUIRE(tvm_region2(t, &r) == 0);
	REQUIRE(gmem_vcpu_create(t->vm, 0, &vcpu) == 0);
	return vcpu;
}

/*
 * 6.19's NUMA policy: mbind() on a mapping of the file is the file's
 * policy, which its other mappings (and the guest's allocations) follow.
 * The mapping is a real shmem one, so the kernel does this itself; on a
 * one-node machine node 0 is all there is.
 */
static void check_mempolicy(int fd, uint8_t *m, struct gmem_vcpu *vcpu)
{
	unsigned long node0 = 1, mask = 0;
	int mode = -1, node = -1;
	uint8_t *m2;

	errno = 0;
	if (syscall(SYS_mbind, m + 8 * PAGE, 4 * PAGE, MPOL_BIND_, &node0,
		    sizeof(node0) * 8, 0) &&
	    errno == ENOSYS) {
		tap_diag("no NUMA in this kernel: mbind() not checked");
		return;
	}
	m2 = gmem_mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	REQUIRE(m2 != MAP_FAILED);
	CHECK_EQ(syscall(SYS_get_mempolicy, &mode, &mask, sizeof(mask) * 8,
			 m2 + 9 * PAGE, MPOL_F_ADDR_),
		 0);
	CHECK_EQ(mode, MPOL_BIND_);
	CHECK_EQ(mask, 1);
	/* The guest's first touch allocates under it. */
	CHECK_EQ(gmem_vcpu_access(vcpu, 9 * PAGE, "n", 1, GMEM_ACCESS_WRITE),
		 0);
	CHECK_EQ(syscall(SYS_get_mempolicy, &node, NULL, 0, m2 + 9 * PAGE,
			 MPOL_F_ADDR_ | MPOL_F_NODE_),
		 0);
	CHECK_EQ(node, 0);
	CHECK_EQ(syscall(SYS_get_mempolicy, &mode, &mask, sizeof(mask) * 8,
			 m2 + 2 * PAGE, MPOL_F_ADDR_),
		 0);
	CHECK_EQ(mode, MPOL_DEFAULT_);
	gmem_munmap(m2, FILE_SIZE);
}

static void test_mmap_shared(void)
{
	struct sigaction sa = {.sa_handler = on_sigbus}, old;
	uint64_t v = 0;
	struct gmem_vcpu *vcpu;
	uint8_t *m;
	struct tvm t;
	int fd;

	sigemptyset(&sa.sa_mask);
	vcpu = mmap_vm(&t, KVM_X86_DEFAULT_VM,
		       GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
		       &fd);
	REQUIRE(gmem_sigaction(SIGBUS, &sa, &old) == 0);
	errno = 0;
	CHECK(gmem_mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_PRIVATE,
			fd, 0) == MAP_FAILED &&
	      errno == EINVAL);
	/* One page more than the file: that page is past its end. */
	m = gmem_mmap(NULL, FILE_SIZE + PAGE, PROT_READ | PROT_WRITE,
		      MAP_SHARED, fd, 0);
	REQUIRE(m != MAP_FAILED);
	/* The host's writes are the guest's memory, and the other way. */
	memcpy(m + 3 * PAGE, "host", 4);
	CHECK_EQ(gmem_vcpu_access(vcpu, 3 * PAGE, &v, 4, GMEM_ACCESS_READ), 0);
	CHECK_EQ(memcmp(&v, "host", 4), 0);
	CHECK_EQ(gmem_vcpu_access(vcpu, 5 * PAGE + 8, "guest", 5,
				  GMEM_ACCESS_WRITE),
		 0);
	CHECK_EQ(memcmp(m + 5 * PAGE + 8, "guest", 5), 0);
	/* A hole reads zero through both. */
	CHECK_EQ(gmem_fallocate(fd, PUNCH, 3 * PAGE, 3 * PAGE), 0);
	CHECK_EQ(m[5 * PAGE + 8], 0);
	CHECK_EQ(m[3 * PAGE], 0);
	v = 1;
	CHECK_EQ(gmem_vcpu_access(vcpu, 3 * PAGE, &v, 8, GMEM_ACCESS_READ), 0);
	CHECK_EQ(v, 0);
	CHECK(!read_sigbus(m + FILE_SIZE - 1));
	CHECK(read_sigbus(m + FILE_SIZE));
	check_mempolicy(fd, m, vcpu);
	/* The mapping holds the memory after the file is closed. */
	m[7 * PAGE] = 0x77;
	CHECK_EQ(gmem_close(fd), 0);
	CHECK_EQ(m[7 * PAGE], 0x77);
	CHECK_EQ(gmem_munmap(m, FILE_SIZE + PAGE), 0);
	gmem_vcpu_destroy(vcpu);
	tvm_close(&t);
	gmem_sigaction(SIGBUS, &old, NULL);
	tap_result("GUEST_MEMFD_FLAG_MMAP|INIT_SHARED: the host's mapping is "
		   "the guest's memory; holes; SIGBUS past the end; mbind()");
}

static void test_mmap_private(void)
{
	struct sigaction sa = {.sa_handler = on_sigbus}, old;
	uint64_t v = 0x1234;
	struct gmem_vcpu *vcpu;
	uint8_t *m;
	struct tvm t;
	int fd;

	sigemptyset(&sa.sa_mask);
	vcpu = mmap_vm(&t, KVM_X86_SW_PROTECTED_VM, GUEST_MEMFD_FLAG_MMAP, &fd);
	REQUIRE(gmem_sigaction(SIGBUS, &sa, &old) == 0);
	m = gmem_mmap(NULL, FILE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	REQUIRE(m != MAP_FAILED);
	/* Shared or private, the slot's pages are the file's. */
	CHECK_EQ(gmem_vcpu_access(vcpu, 2 * PAGE, &v, 8, GMEM_ACCESS_WRITE), 0);
	v = 0;
	CHECK_EQ(gmem_vcpu_access(vcpu, 2 * PAGE, &v, 8, GMEM_ACCESS_READ), 0);
	CHECK_EQ(v, 0x1234);
	CHECK_EQ(tvm_set_attr(&t, 2 * PAGE, PAGE, PRIV), 0);
	v = 0;
	CHECK_EQ(gmem_vcpu_access(vcpu, 2 * PAGE, &v, 8, GMEM_ACCESS_READ), 0);
	CHECK_EQ(v, 0x1234);
	/* Not INIT_SHARED: the host may map it, never touch it. */
	CHECK(read_sigbus(m));
	CHECK(read_sigbus(m + 2 * PAGE));
	CHECK_EQ(gmem_munmap(m, FILE_SIZE), 0);
	gmem_vcpu_destroy(vcpu);
	CHECK_EQ(gmem_close(fd), 0);
	tvm_close(&t);
	gmem_sigaction(SIGBUS, &old, NULL);
	tap_result("GUEST_MEMFD_FLAG_MMAP alone: one memory for shared and "
		   "private; the host's accesses SIGBUS");
}

/* Population by write() (posted series v6), for mappable files only. */
static void test_write(void)
{
	char page[PAGE], back[16];
	struct gmem_vcpu *vcpu;
	uint64_t v = 0;
	struct tvm t;
	int fd, plain;

	vcpu = mmap_vm(&t, KVM_X86_DEFAULT_VM,
		       GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
		       &fd);
	memset(page, 0x5a, sizeof(page));
	CHECK_EQ(gmem_pwrite(fd, page, PAGE, 2 * PAGE), PAGE);
	CHECK_EQ(gmem_vcpu_access(vcpu, 2 * PAGE + 8, &v, 8, GMEM_ACCESS_READ),
		 0);
	CHECK_EQ(v, 0x5a5a5a5a5a5a5a5aULL);
	/* write() at the file position, which lseek() moves. */
	CHECK_EQ(gmem_lseek(fd, 4 * PAGE + 100, SEEK_SET), 4 * PAGE + 100);
	CHECK_EQ(gmem_write(fd, "abc", 3), 3);
	CHECK_EQ(gmem_lseek(fd, 0, SEEK_CUR), 4 * PAGE + 103);
	CHECK_EQ(gmem_lseek(fd, -PAGE, SEEK_END), FILE_SIZE - PAGE);
	CHECK_ERRNO(gmem_lseek(fd, -1, SEEK_SET), EINVAL);
	CHECK_EQ(gmem_vcpu_access(vcpu, 4 * PAGE + 96, back, 10,
				  GMEM_ACCESS_READ),
		 0);
	CHECK_EQ(memcmp(back, "\0\0\0\0abc\0\0\0", 10), 0);
	/* Within the file only; a bad buffer is EFAULT. */
	CHECK_ERRNO(gmem_pwrite(fd, page, 2, FILE_SIZE - 1), EINVAL);
	CHECK_ERRNO(gmem_pwrite(fd, page, 1, -1), EINVAL);
	CHECK_EQ(gmem_pwrite(fd, page, 0, FILE_SIZE + PAGE), 0);
	CHECK_ERRNO(gmem_pwrite(fd, (void *)8, 16, 0), EFAULT);
	CHECK_ERRNO(gmem_read(fd, back, 1), EINVAL);
	/* A file that cannot be mapped has no write(), as in 6.12. */
	plain = (int)tvm_create_file(&t, FILE_SIZE);
	REQUIRE(plain >= 0);
	CHECK_ERRNO(gmem_pwrite(plain, page, PAGE, 0), EINVAL);
	CHECK_ERRNO(gmem_lseek(plain, 0, SEEK_SET), ESPIPE);
	CHECK_EQ(gmem_close(plain), 0);
	gmem_vcpu_destroy(vcpu);
	CHECK_EQ(gmem_close(fd), 0);
	tvm_close(&t);
	tap_result("write()/pwrite()/lseek() populate a GUEST_MEMFD_FLAG_MMAP "
		   "file; EINVAL past its end or on another file");
}

/*
 * GUEST_MEMFD_FLAG_NO_DIRECT_MAP (posted series): memfd_secret memory.  The
 * guest and the host's mapping share it as for any mappable file, and no
 * path around the mapping reaches it: process_vm_readv(), which reads an
 * ordinary file's mapping, fails on it.  A hole reads zero; write() works.
 */
static void test_no_direct_map(void)
{
	struct sigaction sa = {.sa_handler = on_sigbus}, old;
	char buf[8] = {0}, page[PAGE];
	struct iovec local = {buf, 4}, remote;
	struct gmem_vcpu *vcpu;
	uint64_t v = 0;
	uint8_t *m, *m2;
	struct tvm t;
	int fd, plain;

	if (!have_secretmem()) {
		tap_skip("GUEST_MEMFD_FLAG_NO_DIRECT_MAP",
			 "no memfd_secret in this kernel: the flag is not "
			 "offered (case_mmap_flags checks that)");
		return;
	}
	sigemptyset(&sa.sa_mask);
	vcpu = mmap_vm(&t, KVM_X86_DEFAULT_VM,
		       GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED |
			       GUEST_MEMFD_FLAG_NO_DIRECT_MAP,
		       &fd);
	REQUIRE(gmem_sigaction(SIGBUS, &sa, &old) == 0);
	m = gmem_mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd,
		      0);
	REQUIRE(m != MAP_FAILED);
	memcpy(m + 3 * PAGE, "host", 4);
	CHECK_EQ(gmem_vcpu_access(vcpu, 3 * PAGE, &v, 4, GMEM_ACCESS_READ), 0);
	CHECK_EQ(memcmp(&v, "host", 4), 0);
	CHECK_EQ(
		gmem_vcpu_access(vcpu, 5 * PAGE, "guest", 5, GMEM_ACCESS_WRITE),
		0);
	CHECK_EQ(memcmp(m + 5 * PAGE, "guest", 5), 0);
	remote = (struct iovec){m + 3 * PAGE, 4};
	CHECK_EQ(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), -1);
	/* An ordinary mappable file's pages are readable that way. */
	plain = (int)tvm_create_file_flags(
		&t, FILE_SIZE,
		GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED);
	REQUIRE(plain >= 0);
	m2 = gmem_mmap(NULL, FILE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       plain, 0);
	REQUIRE(m2 != MAP_FAILED);
	memcpy(m2, "open", 4);
	remote = (struct iovec){m2, 4};
	CHECK_EQ(process_vm_readv(getpid(), &local, 1, &remote, 1, 0), 4);
	CHECK_EQ(memcmp(buf, "open", 4), 0);
	gmem_munmap(m2, FILE_SIZE);
	CHECK_EQ(gmem_close(plain), 0);
	/* A hole reads zero through both views; write() populates. */
	CHECK_EQ(gmem_fallocate(fd, PUNCH, 3 * PAGE, 3 * PAGE), 0);
	CHECK_EQ(m[3 * PAGE], 0);
	CHECK_EQ(m[5 * PAGE], 0);
	v = 1;
	CHECK_EQ(gmem_vcpu_access(vcpu, 5 * PAGE, &v, 8, GMEM_ACCESS_READ), 0);
	CHECK_EQ(v, 0);
	memset(page, 0x5a, sizeof(page));
	CHECK_EQ(gmem_pwrite(fd, page, PAGE, 7 * PAGE), PAGE);
	CHECK_EQ(m[7 * PAGE + 100], 0x5a);
	CHECK_ERRNO(gmem_pwrite(fd, (void *)8, 16, 0), EFAULT);
	CHECK_EQ(gmem_fallocate(fd, KEEP, 0, FILE_SIZE), 0);
	CHECK_EQ(m[7 * PAGE + 100], 0x5a);
	CHECK(read_sigbus(m + FILE_SIZE - 1) == false);
	CHECK_EQ(gmem_munmap(m, FILE_SIZE), 0);
	gmem_vcpu_destroy(vcpu);
	CHECK_EQ(gmem_close(fd), 0);
	tvm_close(&t);
	gmem_sigaction(SIGBUS, &old, NULL);
	tap_result(
		"GUEST_MEMFD_FLAG_NO_DIRECT_MAP: memfd_secret memory, the "
		"guest's and the mapping's, unreachable by process_vm_readv");
}

int main(void)
{
	tap_plan(NR_LAYER_CASES * 4 + 10, 60);
	run_layer_cases();
	test_io_fails();
	test_mmap_fails();
	test_ftruncate_fails();
	test_poison();
	test_layers_share_handles();
	test_fallocate_not_file();
	test_mmap_shared();
	test_mmap_private();
	test_write();
	test_no_direct_map();
	return tap_done();
}
