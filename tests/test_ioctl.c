// SPDX-License-Identifier: MIT
/*
 * The KVM-style façade and the system-level API (DESIGN §2): handles,
 * KVM_GET_API_VERSION, KVM_CHECK_EXTENSION on the system and on VMs,
 * KVM_CREATE_VM, KVM_ENABLE_CAP, Linux x86's errno for ioctls a handle
 * does not have, EBADF for handles that are not open.
 */
#include <fcntl.h>
#include <linux/falloc.h>

#include "gmem_test.h"

/* Handles of each kind, opened through the façade. */
struct handles {
	int sys, vm, vm_default, file;
};

static void handles_open(struct handles *h)
{
	struct kvm_create_guest_memfd g = {.size = 16 * PAGE};

	h->sys = gmem_open();
	REQUIRE(h->sys >= 0);
	h->vm = gmem_ioctl(h->sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	REQUIRE(h->vm >= 0);
	h->vm_default = gmem_ioctl(h->sys, KVM_CREATE_VM, KVM_X86_DEFAULT_VM);
	REQUIRE(h->vm_default >= 0);
	h->file = gmem_ioctl(h->vm, KVM_CREATE_GUEST_MEMFD, &g);
	REQUIRE(h->file >= 0);
}

static void handles_close(struct handles *h)
{
	CHECK_EQ(gmem_close(h->file), 0);
	CHECK_EQ(gmem_close(h->vm_default), 0);
	CHECK_EQ(gmem_close(h->vm), 0);
	CHECK_EQ(gmem_close(h->sys), 0);
}

/* Runs first: no gmem handle exists yet, but a real fd 3 does. */
static void test_not_real_fds(void)
{
	struct stat st;
	char c = 0;
	int real = open("/dev/null", O_RDWR);
	int sys;

	REQUIRE(real >= 0);
	CHECK_ERRNO(gmem_close(real), EBADF);
	CHECK_ERRNO(gmem_fstat(real, &st), EBADF);
	CHECK_ERRNO(gmem_read(real, &c, 1), EBADF);
	CHECK_ERRNO(gmem_write(real, &c, 1), EBADF);
	CHECK_ERRNO(gmem_ioctl(real, KVM_GET_API_VERSION, 0), EBADF);
	CHECK(fcntl(real, F_GETFD) >= 0);
	/* the library's numbers start at 3, whatever the process has open */
	sys = gmem_open();
	CHECK_EQ(sys, 3);
	CHECK_EQ(gmem_close(sys), 0);
	CHECK(fcntl(real, F_GETFD) >= 0);
	CHECK_EQ(write(real, &c, 1), 1);
	close(real);
	tap_result("handles are not the process's fds, and start at 3");
}

static void test_open(void)
{
	int a = gmem_open(), b = gmem_open(), c = gmem_open();

	CHECK(a >= 3);
	CHECK(b >= 3);
	CHECK(c >= 3);
	CHECK(a != b && b != c && a != c);
	CHECK_EQ(gmem_ioctl(a, KVM_GET_API_VERSION, 0), 12);
	CHECK_EQ(gmem_close(b), 0);
	/* closing one system handle leaves the others working */
	CHECK_EQ(gmem_ioctl(a, KVM_GET_API_VERSION, 0), 12);
	CHECK_EQ(gmem_ioctl(c, KVM_GET_API_VERSION, 0), 12);
	CHECK_ERRNO(gmem_ioctl(b, KVM_GET_API_VERSION, 0), EBADF);
	CHECK_EQ(gmem_close(a), 0);
	CHECK_EQ(gmem_close(c), 0);
	tap_result("gmem_open gives a new system handle each call");
}

static void test_distinct_kinds(void)
{
	struct handles h;

	handles_open(&h);
	CHECK(h.sys >= 3 && h.vm >= 3 && h.vm_default >= 3 && h.file >= 3);
	CHECK(h.sys != h.vm && h.sys != h.file && h.vm != h.file);
	CHECK(h.vm != h.vm_default && h.vm_default != h.file);
	handles_close(&h);
	tap_result("system, VM and guest_memfd handles are distinct");
}

struct cap_value {
	long cap;
	long value;
};

static const struct cap_value sys_caps[] = {
	{KVM_CAP_USER_MEMORY2, 1},
	{KVM_CAP_MEMORY_ATTRIBUTES, NR | NW | NX | PRIV},
	{KVM_CAP_GUEST_MEMFD, 1},
	{KVM_CAP_VM_TYPES,
	 (1 << KVM_X86_DEFAULT_VM) | (1 << KVM_X86_SW_PROTECTED_VM)},
	{GMEM_CAP_EXEC_ONLY, 1},
	{KVM_CAP_READONLY_MEM, 1},
	{KVM_CAP_USER_MEMORY, 1},
	{KVM_CAP_NR_MEMSLOTS, 32764}, /* x86 KVM_USER_MEM_SLOTS */
	/* unknown ones */
	{0x7fff, 0},
	{100000, 0},
	{0x1ffff, 0},
	{0x10000, 0},
};

#define NR_SYS_CAPS (sizeof(sys_caps) / sizeof(sys_caps[0]))

static void test_system_caps(void)
{
	int sys = gmem_open();

	REQUIRE(sys >= 0);
	CHECK_EQ(gmem_ioctl(sys, KVM_GET_API_VERSION, 0), KVM_API_VERSION);
	CHECK_EQ(gmem_ioctl(sys, KVM_GET_API_VERSION, 0), 12);
	for (size_t i = 0; i < NR_SYS_CAPS; i++) {
		long c = sys_caps[i].cap, v = sys_caps[i].value;
		long r = gmem_ioctl(sys, KVM_CHECK_EXTENSION, c);

		if (r != v) {
			tap_case_failed = 1;
			tap_diag("KVM_CHECK_EXTENSION(%#lx) on the system "
				 "handle: %ld, expected %ld",
				 c, r, v);
		}
		r = gmem_check_extension(NULL, c);
		if (r != v) {
			tap_case_failed = 1;
			tap_diag("gmem_check_extension(NULL, %#lx): %ld, "
				 "expected %ld",
				 c, r, v);
		}
	}
	CHECK_EQ(gmem_close(sys), 0);
	tap_result("system handle: API version 12 and capabilities");
}

static void test_vm_caps(void)
{
	for (int ty = 0; ty < 2; ty++)
		for (int io = 0; io < 2; io++) {
			struct tvm t;

			tvm_open(&t, io, ty);
			CHECK_EQ(tvm_check_extension(&t,
						     KVM_CAP_MEMORY_ATTRIBUTES),
				 ty ? 0xf : 0x7);
			CHECK_EQ(tvm_check_extension(&t, KVM_CAP_GUEST_MEMFD),
				 ty ? 1 : 0);
			CHECK_EQ(tvm_check_extension(&t, 0x7fff), 0);
			tvm_close(&t);
		}
	tap_result("VM handles: MEMORY_ATTRIBUTES and GUEST_MEMFD by type");
}

static void test_create_vm_type(void)
{
	static const unsigned long bad[] = {2, 3, 4, 8, 0x100, 1UL << 31, ~0UL};
	struct gmem_vm *vm;
	int sys = gmem_open();

	REQUIRE(sys >= 0);
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CHECK_ERRNO(gmem_ioctl(sys, KVM_CREATE_VM, bad[i]), EINVAL);
		vm = (struct gmem_vm *)0x1;
		CHECK_RET(gmem_vm_create(bad[i], &vm), EINVAL);
		CHECK(vm == (struct gmem_vm *)0x1);
	}
	for (unsigned long ty = 0; ty < 2; ty++) {
		int fd = gmem_ioctl(sys, KVM_CREATE_VM, ty);

		CHECK(fd >= 3);
		if (fd >= 0)
			CHECK_EQ(gmem_close(fd), 0);
		vm = NULL;
		CHECK_RET(gmem_vm_create(ty, &vm), 0);
		CHECK(vm != NULL);
		if (vm)
			gmem_vm_put(vm);
	}
	CHECK_EQ(gmem_close(sys), 0);
	tap_result("KVM_CREATE_VM: types 0 and 1 only, else EINVAL");
}

static long enable_cap(struct tvm *t, const struct kvm_enable_cap *c)
{
	if (!t->ioctl)
		return gmem_vm_enable_cap(t->vm, c);
	return fac_ret(gmem_ioctl(t->fd, KVM_ENABLE_CAP, c));
}

static void test_enable_cap(void)
{
	static const uint32_t unknown[] = {
		0, KVM_CAP_USER_MEMORY, 0x7fff, 0x10000, 0x10005, 0xffffffff};

	for (int ty = 0; ty < 2; ty++)
		for (int io = 0; io < 2; io++) {
			struct kvm_enable_cap c;
			struct tvm t;

			tvm_open(&t, io, ty);
			memset(&c, 0, sizeof(c));
			c.cap = GMEM_CAP_EXEC_ONLY;
			for (int bit = 0; bit < 32; bit++) {
				c.flags = 1U << bit;
				CHECK_EQ(enable_cap(&t, &c), -EINVAL);
			}
			c.flags = 0;
			for (int i = 0; i < 4; i++) {
				c.args[i] = 1;
				CHECK_EQ(enable_cap(&t, &c), -EINVAL);
				c.args[i] = 1ULL << 63;
				CHECK_EQ(enable_cap(&t, &c), -EINVAL);
				c.args[i] = 0;
			}
			/* none of those enabled it */
			CHECK_EQ(tvm_set_attr(&t, 0, PAGE, NR | NW), -EINVAL);
			for (size_t i = 0;
			     i < sizeof(unknown) / sizeof(unknown[0]); i++) {
				c.cap = unknown[i];
				CHECK_EQ(enable_cap(&t, &c), -EINVAL);
			}
			c.cap = GMEM_CAP_EXEC_ONLY;
			CHECK_EQ(enable_cap(&t, &c), 0);
			CHECK_EQ(tvm_set_attr(&t, 0, PAGE, NR | NW), 0);
			tvm_close(&t);
		}
	tap_result("KVM_ENABLE_CAP: EXEC_ONLY with no arguments only");
}

static const unsigned long unknown_ioctls[] = {
	0,
	_IO(KVMIO, 0xff),
	_IO(KVMIO, 0x02),
	_IOW(KVMIO, 0x46, uint64_t), /* right number, wrong size */
	_IOW('x', 1, int),
	0xdeadbeef,
};

static void expect_errno(int fd, unsigned long req, const char *what, int e)
{
	char arg[512];

	memset(arg, 0, sizeof(arg));
	errno = 0;
	if (gmem_ioctl(fd, req, arg) != -1 || errno != e) {
		tap_case_failed = 1;
		tap_diag("ioctl %#lx on the %s handle: errno %d, expected %d",
			 req, what, errno, e);
	}
}

static void expect_enotty(int fd, unsigned long req, const char *what)
{
	expect_errno(fd, req, what, ENOTTY);
}

/*
 * What x86 Linux answers: kvm_arch_dev_ioctl() and kvm_arch_vcpu_ioctl()
 * say EINVAL, kvm_arch_vm_ioctl() ENOTTY, and guest_memfd, which has no
 * ioctl method, ENOTTY from the VFS.
 */
static void test_unknown_ioctl(void)
{
	struct handles h;
	int vcpu;

	handles_open(&h);
	vcpu = gmem_ioctl(h.vm, KVM_CREATE_VCPU, 0);
	if (vcpu < 0)
		tap_diag("no vCPU handle (errno %d); not checked", errno);
	for (size_t i = 0;
	     vcpu >= 0 && i < sizeof(unknown_ioctls) / sizeof(long); i++)
		expect_errno(vcpu, unknown_ioctls[i], "vCPU", EINVAL);
	if (vcpu >= 0)
		CHECK_EQ(gmem_close(vcpu), 0);
	for (size_t i = 0; i < sizeof(unknown_ioctls) / sizeof(long); i++) {
		expect_errno(h.sys, unknown_ioctls[i], "system", EINVAL);
		expect_enotty(h.vm, unknown_ioctls[i], "VM");
		expect_enotty(h.vm_default, unknown_ioctls[i], "DEFAULT VM");
		expect_enotty(h.file, unknown_ioctls[i], "guest_memfd");
	}
	handles_close(&h);
	tap_result("unknown ioctl: EINVAL on /dev/kvm and vCPUs, ENOTTY on VMs "
		   "and guest_memfd");
}

static const unsigned long vm_ioctls[] = {
	KVM_SET_USER_MEMORY_REGION,
	KVM_SET_USER_MEMORY_REGION2,
	KVM_SET_MEMORY_ATTRIBUTES,
	KVM_CREATE_GUEST_MEMFD,
	KVM_ENABLE_CAP,
	KVM_CREATE_VCPU,
};

static void test_vm_ioctl_elsewhere(void)
{
	struct handles h;

	handles_open(&h);
	for (size_t i = 0; i < sizeof(vm_ioctls) / sizeof(long); i++) {
		expect_errno(h.sys, vm_ioctls[i], "system", EINVAL);
		expect_enotty(h.file, vm_ioctls[i], "guest_memfd");
	}
	/* nor system ioctls on a VM (Linux: kvm_arch_vm_ioctl's ENOTTY) */
	expect_enotty(h.vm, KVM_GET_API_VERSION, "VM");
	expect_enotty(h.vm, KVM_CREATE_VM, "VM");
	expect_enotty(h.vm_default, KVM_GET_VCPU_MMAP_SIZE, "DEFAULT VM");
	/* a guest_memfd has no ioctls at all */
	expect_enotty(h.file, KVM_GET_API_VERSION, "guest_memfd");
	expect_enotty(h.file, KVM_CREATE_VM, "guest_memfd");
	expect_enotty(h.file, KVM_CHECK_EXTENSION, "guest_memfd");
	handles_close(&h);
	tap_result("ioctls of another handle kind: EINVAL on /dev/kvm, ENOTTY "
		   "elsewhere");
}

/* Every call on a handle that is not open says EBADF. */
static void expect_ebadf(int fd)
{
	struct kvm_userspace_memory_region2 r;
	struct kvm_memory_attributes a = {.size = PAGE};
	struct kvm_create_guest_memfd g = {.size = PAGE};
	struct stat st;
	char buf[8];

	memset(&r, 0, sizeof(r));
	CHECK_ERRNO(gmem_ioctl(fd, KVM_GET_API_VERSION, 0), EBADF);
	CHECK_ERRNO(gmem_ioctl(fd, KVM_CHECK_EXTENSION, KVM_CAP_USER_MEMORY),
		    EBADF);
	CHECK_ERRNO(gmem_ioctl(fd, KVM_CREATE_VM, 0), EBADF);
	CHECK_ERRNO(gmem_ioctl(fd, KVM_SET_USER_MEMORY_REGION2, &r), EBADF);
	CHECK_ERRNO(gmem_ioctl(fd, KVM_SET_MEMORY_ATTRIBUTES, &a), EBADF);
	CHECK_ERRNO(gmem_ioctl(fd, KVM_CREATE_GUEST_MEMFD, &g), EBADF);
	CHECK_ERRNO(gmem_ioctl(fd, _IO(KVMIO, 0xff), 0), EBADF);
	CHECK_ERRNO(gmem_fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, PAGE), EBADF);
	CHECK_ERRNO(gmem_fstat(fd, &st), EBADF);
	CHECK_ERRNO(gmem_ftruncate(fd, PAGE), EBADF);
	CHECK_ERRNO(gmem_read(fd, buf, sizeof(buf)), EBADF);
	CHECK_ERRNO(gmem_write(fd, buf, sizeof(buf)), EBADF);
	CHECK_ERRNO(gmem_pread(fd, buf, sizeof(buf), 0), EBADF);
	CHECK_ERRNO(gmem_pwrite(fd, buf, sizeof(buf), 0), EBADF);
	errno = 0;
	CHECK(gmem_mmap(NULL, PAGE, PROT_READ, MAP_SHARED, fd, 0) ==
	      MAP_FAILED);
	CHECK_EQ(errno, EBADF);
	CHECK_ERRNO(gmem_close(fd), EBADF);
	CHECK_RET(gmem_handle_close(fd), EBADF);
	CHECK_RET(gmem_file_fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, PAGE), EBADF);
	CHECK_RET(gmem_file_stat(fd, &st), EBADF);
	CHECK_RET(gmem_file_poison(fd, 0), EBADF);
}

static void test_ebadf(void)
{
	static const int never[] = {-1,	  0,	 1,	    2,
				    1000, 65536, INT32_MAX, INT32_MIN};
	struct handles h;

	for (size_t i = 0; i < sizeof(never) / sizeof(never[0]); i++)
		expect_ebadf(never[i]);
	handles_open(&h);
	handles_close(&h);
	expect_ebadf(h.sys);
	expect_ebadf(h.vm);
	expect_ebadf(h.vm_default);
	expect_ebadf(h.file);
	tap_result("closed or never-opened handles -> EBADF");
}

/* The typed close works on every kind, exactly once. */
static void test_typed_close(void)
{
	struct handles h;

	handles_open(&h);
	CHECK_RET(gmem_handle_close(h.file), 0);
	CHECK_RET(gmem_handle_close(h.vm), 0);
	CHECK_RET(gmem_handle_close(h.vm_default), 0);
	CHECK_RET(gmem_handle_close(h.sys), 0);
	CHECK_RET(gmem_handle_close(h.file), EBADF);
	CHECK_RET(gmem_handle_close(h.vm), EBADF);
	CHECK_RET(gmem_handle_close(h.sys), EBADF);
	tap_result("gmem_handle_close closes any kind once");
}

/*
 * Pointer arguments are copied in like copy_from_user: NULL, a kernel
 * address and a non-canonical one (a #GP, not a page fault) are EFAULT.
 */
static void test_efault(void)
{
	static const unsigned long ptr_ioctls[] = {
		KVM_SET_USER_MEMORY_REGION,
		KVM_SET_USER_MEMORY_REGION2,
		KVM_SET_MEMORY_ATTRIBUTES,
		KVM_CREATE_GUEST_MEMFD,
		KVM_ENABLE_CAP,
	};
	struct handles h;

	handles_open(&h);
	for (size_t i = 0; i < sizeof(ptr_ioctls) / sizeof(long); i++) {
		CHECK_ERRNO(gmem_ioctl(h.vm, ptr_ioctls[i], NULL), EFAULT);
		CHECK_ERRNO(gmem_ioctl(h.vm_default, ptr_ioctls[i], NULL),
			    EFAULT);
		CHECK_ERRNO(gmem_ioctl(h.vm, ptr_ioctls[i],
				       (void *)0xffff800000000000ull),
			    EFAULT);
		CHECK_ERRNO(gmem_ioctl(h.vm, ptr_ioctls[i],
				       (void *)0x8000000000000000ull),
			    EFAULT);
	}
	/*
	 * A pointer inside the struct (an MSR filter's bitmap), copied
	 * without a probe: unmapped low memory (ASan's shadow gap in its
	 * builds, where its memcpy would report it), non-canonical.
	 */
	{
		static const uint64_t bad[] = {0x401000040ull,
					       0x8000000000000000ull};
		struct kvm_msr_filter f = {0};

		f.ranges[0].flags = KVM_MSR_FILTER_READ;
		f.ranges[0].nmsrs = 1024;
		for (size_t i = 0; i < 2; i++) {
			f.ranges[0].bitmap = (uint8_t *)(uintptr_t)bad[i];
			CHECK_ERRNO(gmem_ioctl(h.vm_default,
					       KVM_X86_SET_MSR_FILTER, &f),
				    EFAULT);
		}
	}
	handles_close(&h);
	tap_result("NULL, kernel or non-canonical struct pointer -> EFAULT");
}

/* A VM outlives the system handle it came from, as in Linux. */
static void test_vm_outlives_system(void)
{
	struct kvm_create_guest_memfd g = {.size = PAGE};
	struct kvm_memory_attributes a = {.size = PAGE, .attributes = NW};
	int sys = gmem_open();
	int vm = gmem_ioctl(sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	int fd;

	REQUIRE(vm >= 0);
	CHECK_EQ(gmem_close(sys), 0);
	CHECK_EQ(gmem_ioctl(vm, KVM_SET_MEMORY_ATTRIBUTES, &a), 0);
	CHECK_EQ(gmem_ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_GUEST_MEMFD), 1);
	fd = gmem_ioctl(vm, KVM_CREATE_GUEST_MEMFD, &g);
	CHECK(fd >= 3);
	CHECK_EQ(gmem_close(vm), 0);
	if (fd >= 0) {
		CHECK_EQ(gmem_fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, PAGE), 0);
		CHECK_EQ(gmem_close(fd), 0);
	}
	tap_result("a VM handle outlives its system handle");
}

int main(void)
{
	tap_plan(14, 30);
	test_not_real_fds();
	test_open();
	test_distinct_kinds();
	test_system_caps();
	test_vm_caps();
	test_create_vm_type();
	test_enable_cap();
	test_unknown_ioctl();
	test_vm_ioctl_elsewhere();
	test_ebadf();
	test_typed_close();
	test_vm_outlives_system();
	test_efault();
	{
		/* after all that, the table is empty and starts at 3 again */
		int sys = gmem_open();

		CHECK_EQ(sys, 3);
		gmem_close(sys);
		tap_result("all closed: lowest free number (3) again, like "
			   "open(2)");
	}
	return tap_done();
}
