// SPDX-License-Identifier: MIT
/*
 * A VM that enables none of gmem's capabilities behaves as Linux 6.12's
 * x86 KVM (DESIGN §0): the vCPU limits and their capabilities, the TSC
 * frequency calls and RDTSC at that rate, KVM_GET/SET_MP_STATE,
 * KVM_GET_CPUID2, the x86 setup calls KVM accepts with TDP, KVM_SET_CPUID2
 * after the first KVM_RUN, what KVM_RUN does on entry (immediate_exit
 * after completing pending I/O, kvm_run.cr8), KVM_CAP_SYNC_REGS, and the
 * exits and flags of memory faults.  Each case runs once through the typed
 * API and once through the façade.  Guests are a few instructions of
 * machine code, set up as in tests/test_vcpu.c.
 */
#include <linux/capability.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <time.h>

#include "gmem_test.h"
#include "long_mode.h"

#define MEM (4ULL << 20)
#define CODE 0x10000ULL
#define STACK 0x20000ULL
#define MMIO_GPA 0x100000000ULL /* 4 GiB: no slot there */
#define NOSLOT_GPA 0x800000ULL	/* 8 MiB, mapped by the guest, no slot */

#define MAX_VCPUS 4096
#define MAX_VCPU_IDS 16384

/* One VM with one vCPU and 4 MiB at GPA 0, through one of the layers. */
struct env {
	bool io;
	unsigned long type;
	int sys, vmfd, vcpufd;	/* façade */
	struct gmem_vm *vm;	/* typed, or the façade VM's object */
	struct gmem_vcpu *vcpu; /* typed, or the façade vCPU's object */
	struct kvm_run *run;
	uint8_t *mem;
};

static long e_create_vcpu(struct env *e, unsigned long id,
			  struct gmem_vcpu **vcpu, int *fd)
{
	long r;

	if (!e->io)
		return gmem_vcpu_create(e->vm, id, vcpu);
	r = fac_ret(gmem_ioctl(e->vmfd, KVM_CREATE_VCPU, id));
	if (r >= 0) {
		*fd = (int)r;
		REQUIRE(gmem_vcpu_from_handle(*fd, vcpu) == 0);
		r = 0;
	}
	return r;
}

static void e_destroy_vcpu(struct env *e, struct gmem_vcpu *vcpu, int fd)
{
	if (e->io)
		CHECK_EQ(gmem_close(fd), 0);
	gmem_vcpu_put(vcpu);
}

/* Just the VM (and its system handle). */
static void env_vm(struct env *e, bool io, unsigned long type)
{
	*e = (struct env){
		.io = io, .type = type, .sys = -1, .vmfd = -1, .vcpufd = -1};
	if (!io) {
		e->vm = test_vm(type);
		return;
	}
	e->sys = gmem_open();
	REQUIRE(e->sys >= 0);
	e->vmfd = gmem_ioctl(e->sys, KVM_CREATE_VM, type);
	REQUIRE(e->vmfd >= 0);
	REQUIRE(gmem_vm_from_handle(e->vmfd, &e->vm) == 0);
}

static void env_fini(struct env *e)
{
	if (e->vcpu)
		e_destroy_vcpu(e, e->vcpu, e->vcpufd);
	gmem_vm_put(e->vm); /* the typed VM, or the façade's reference */
	if (e->io) {
		CHECK_EQ(gmem_close(e->vmfd), 0);
		CHECK_EQ(gmem_close(e->sys), 0);
	}
	if (e->mem)
		munmap(e->mem, MEM);
}

static long e_region(struct env *e,
		     const struct kvm_userspace_memory_region2 *r)
{
	if (!e->io)
		return gmem_vm_set_memory_region2(e->vm, r);
	return fac_ret(gmem_ioctl(e->vmfd, KVM_SET_USER_MEMORY_REGION2, r));
}

static long e_attr(struct env *e, uint64_t gpa, uint64_t size, uint64_t attrs)
{
	struct kvm_memory_attributes a = {
		.address = gpa, .size = size, .attributes = attrs};

	if (!e->io)
		return gmem_vm_set_memory_attributes(e->vm, &a);
	return fac_ret(gmem_ioctl(e->vmfd, KVM_SET_MEMORY_ATTRIBUTES, &a));
}

static long e_cap(struct env *e, uint32_t cap, uint64_t arg0)
{
	struct kvm_enable_cap c = {.cap = cap, .args = {arg0}};

	if (!e->io)
		return gmem_vm_enable_cap(e->vm, &c);
	return fac_ret(gmem_ioctl(e->vmfd, KVM_ENABLE_CAP, &c));
}

static long e_check(struct env *e, long cap)
{
	if (!e->io)
		return gmem_check_extension(e->vm, cap);
	return fac_ret(gmem_ioctl(e->vmfd, KVM_CHECK_EXTENSION, cap));
}

static long e_run(struct env *e)
{
	if (!e->io)
		return gmem_vcpu_run(e->vcpu);
	return fac_ret(gmem_ioctl(e->vcpufd, KVM_RUN, 0));
}

static void e_get_regs(struct env *e, struct kvm_regs *r)
{
	if (!e->io)
		REQUIRE(gmem_vcpu_get_regs(e->vcpu, r) == 0);
	else
		REQUIRE(gmem_ioctl(e->vcpufd, KVM_GET_REGS, r) == 0);
}

static void e_set_regs(struct env *e, const struct kvm_regs *r)
{
	if (!e->io)
		REQUIRE(gmem_vcpu_set_regs(e->vcpu, r) == 0);
	else
		REQUIRE(gmem_ioctl(e->vcpufd, KVM_SET_REGS, r) == 0);
}

static void e_get_sregs(struct env *e, struct kvm_sregs *s)
{
	if (!e->io)
		REQUIRE(gmem_vcpu_get_sregs(e->vcpu, s) == 0);
	else
		REQUIRE(gmem_ioctl(e->vcpufd, KVM_GET_SREGS, s) == 0);
}

static void e_set_sregs(struct env *e, const struct kvm_sregs *s)
{
	if (!e->io)
		REQUIRE(gmem_vcpu_set_sregs(e->vcpu, s) == 0);
	else
		REQUIRE(gmem_ioctl(e->vcpufd, KVM_SET_SREGS, s) == 0);
}

static long e_set_cpuid(struct env *e, const struct kvm_cpuid2 *c)
{
	if (!e->io)
		return gmem_vcpu_set_cpuid(e->vcpu, c);
	return fac_ret(gmem_ioctl(e->vcpufd, KVM_SET_CPUID2, c));
}

static long e_get_cpuid(struct env *e, struct kvm_cpuid2 *c)
{
	if (!e->io)
		return gmem_vcpu_get_cpuid(e->vcpu, c);
	return fac_ret(gmem_ioctl(e->vcpufd, KVM_GET_CPUID2, c));
}

/* The one vCPU, in long mode over identity-mapped 1 GiB pages. */
static void env_vcpu(struct env *e)
{
	struct kvm_userspace_memory_region2 r = {
		.memory_size = MEM,
	};
	struct kvm_sregs sregs;
	uint64_t *pml4, *pdpt;

	e->mem = test_mem(MEM);
	r.userspace_addr = (uintptr_t)e->mem;
	REQUIRE(e_region(e, &r) == 0);
	pml4 = (uint64_t *)(e->mem + 0x1000);
	pdpt = (uint64_t *)(e->mem + 0x2000);
	pml4[0] = 0x2000 | 3;
	pdpt[0] = 0x83;
	pdpt[4] = MMIO_GPA | 0x83;
	REQUIRE(e_create_vcpu(e, 0, &e->vcpu, &e->vcpufd) == 0);
	if (e->io) {
		int size = gmem_ioctl(e->sys, KVM_GET_VCPU_MMAP_SIZE, 0);

		e->run = gmem_mmap(NULL, size, PROT_READ | PROT_WRITE,
				   MAP_SHARED, e->vcpufd, 0);
		REQUIRE(e->run != MAP_FAILED);
	} else {
		e->run = gmem_vcpu_kvm_run(e->vcpu);
	}
	e_get_sregs(e, &sregs);
	long_mode_sregs(&sregs, 0x80050033, 0x1000);
	e_set_sregs(e, &sregs);
}

static void env_init(struct env *e, bool io, unsigned long type)
{
	env_vm(e, io, type);
	env_vcpu(e);
}

/* Put @code at CODE and point the vCPU at it. */
static void e_code(struct env *e, const uint8_t *code, size_t len)
{
	struct kvm_regs regs = {.rip = CODE, .rsp = STACK, .rflags = 2};

	memcpy(e->mem + CODE, code, len);
	e_set_regs(e, &regs);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

#define FOR_LAYERS(io) for (int io = 0; io < 2; io++)

/* ---- 1. vCPU limits ---------------------------------------------------- */

static const struct {
	long cap, value;
} caps[] = {
	{KVM_CAP_MAX_VCPUS, MAX_VCPUS},
	{KVM_CAP_MAX_VCPU_ID, MAX_VCPU_IDS},
	{KVM_CAP_GET_TSC_KHZ, 1},
	{KVM_CAP_TSC_CONTROL, 1},
	{KVM_CAP_VM_TSC_CONTROL, 1},
	{KVM_CAP_MP_STATE, 1},
	{KVM_CAP_SET_TSS_ADDR, 1},
	{KVM_CAP_SET_IDENTITY_MAP_ADDR, 1},
	{KVM_CAP_MMU_SHADOW_CACHE_CONTROL, 1},
	{KVM_CAP_EXT_CPUID, 1},
	{KVM_CAP_CHECK_EXTENSION_VM, 1},
	{KVM_CAP_ENABLE_CAP_VM, 1},
	{KVM_CAP_IMMEDIATE_EXIT, 1},
	{KVM_CAP_SYNC_REGS, 7}, /* KVM_SYNC_X86_VALID_FIELDS */
};

static void test_caps(void)
{
	long online = sysconf(_SC_NPROCESSORS_ONLN);
	long nr = online > MAX_VCPUS ? MAX_VCPUS : online;
	int sys = gmem_open();

	REQUIRE(sys >= 0);
	for (size_t i = 0; i < ARRAY_LEN(caps); i++) {
		CHECK_EQ(gmem_check_extension(NULL, caps[i].cap),
			 caps[i].value);
		CHECK_EQ(gmem_ioctl(sys, KVM_CHECK_EXTENSION, caps[i].cap),
			 caps[i].value);
	}
	CHECK_EQ(gmem_check_extension(NULL, KVM_CAP_NR_VCPUS), nr);
	CHECK_EQ(gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_NR_VCPUS), nr);
	FOR_LAYERS(io)
	{
		struct env e;

		env_vm(&e, io, KVM_X86_DEFAULT_VM);
		for (size_t i = 0; i < ARRAY_LEN(caps); i++)
			CHECK_EQ(e_check(&e, caps[i].cap), caps[i].value);
		CHECK_EQ(e_check(&e, KVM_CAP_NR_VCPUS), nr);
		/* The VM's own lower limit does not change the answer. */
		CHECK_EQ(e_cap(&e, KVM_CAP_MAX_VCPU_ID, 8), 0);
		CHECK_EQ(e_check(&e, KVM_CAP_MAX_VCPU_ID), MAX_VCPU_IDS);
		env_fini(&e);
	}
	CHECK_EQ(gmem_close(sys), 0);
	tap_result("capabilities: MAX_VCPUS 4096, MAX_VCPU_ID 16384, NR_VCPUS "
		   "online CPUs, TSC, MP_STATE, TSS and MMU calls");
}

static void test_vcpu_ids(void)
{
	FOR_LAYERS(io)
	{
		struct gmem_vcpu *v, *w;
		int fd = -1, fd2 = -1;
		struct env e;

		env_vm(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e_create_vcpu(&e, MAX_VCPU_IDS, &v, &fd), -EINVAL);
		CHECK_EQ(e_create_vcpu(&e, 1UL << 32, &v, &fd), -EINVAL);
		CHECK_EQ(e_create_vcpu(&e, ~0UL, &v, &fd), -EINVAL);
		REQUIRE(e_create_vcpu(&e, MAX_VCPU_IDS - 1, &v, &fd) == 0);
		CHECK_EQ(e_create_vcpu(&e, MAX_VCPU_IDS - 1, &w, &fd2),
			 -EEXIST);
		REQUIRE(e_create_vcpu(&e, 0, &w, &fd2) == 0);
		CHECK_EQ(e_create_vcpu(&e, 0, &w, &fd2), -EEXIST);
		e_destroy_vcpu(&e, v, fd);
		e_destroy_vcpu(&e, w, fd2);
		env_fini(&e);
	}
	tap_result("KVM_CREATE_VCPU: id >= 16384 -> EINVAL, an id in use -> "
		   "EEXIST");
}

static void test_max_vcpu_id_cap(void)
{
	FOR_LAYERS(io)
	{
		struct gmem_vcpu *v;
		struct env e;
		int fd = -1;

		env_vm(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e_cap(&e, KVM_CAP_MAX_VCPU_ID, MAX_VCPU_IDS + 1),
			 -EINVAL);
		CHECK_EQ(tvm_enable_cap(&(struct tvm){.ioctl = io,
						      .vm = e.vm,
						      .fd = e.vmfd},
					KVM_CAP_MAX_VCPU_ID, 1, 4),
			 -EINVAL);
		CHECK_EQ(e_cap(&e, KVM_CAP_MAX_VCPU_ID, 4), 0);
		/* the same value again is fine, another one is not */
		CHECK_EQ(e_cap(&e, KVM_CAP_MAX_VCPU_ID, 4), 0);
		CHECK_EQ(e_cap(&e, KVM_CAP_MAX_VCPU_ID, 8), -EINVAL);
		CHECK_EQ(e_create_vcpu(&e, 4, &v, &fd), -EINVAL);
		REQUIRE(e_create_vcpu(&e, 3, &v, &fd) == 0);
		e_destroy_vcpu(&e, v, fd);
		env_fini(&e);

		/* The first vCPU fixes the limit at 16384. */
		env_vm(&e, io, KVM_X86_DEFAULT_VM);
		REQUIRE(e_create_vcpu(&e, 5, &v, &fd) == 0);
		CHECK_EQ(e_cap(&e, KVM_CAP_MAX_VCPU_ID, 100), -EINVAL);
		CHECK_EQ(e_cap(&e, KVM_CAP_MAX_VCPU_ID, MAX_VCPU_IDS), 0);
		e_destroy_vcpu(&e, v, fd);
		env_fini(&e);
	}
	tap_result("KVM_ENABLE_CAP(MAX_VCPU_ID): before the first vCPU, "
		   "<= 16384, then enforced");
}

/*
 * KVM_CAP_VM_DISABLE_NX_HUGE_PAGES: 1; enabling it needs CAP_SYS_BOOT
 * (EPERM otherwise, whatever the arguments), args[0] 0, no vCPU yet.
 */
static void test_disable_nx_huge_pages(void)
{
	struct __user_cap_header_struct hdr = {_LINUX_CAPABILITY_VERSION_3, 0};
	struct __user_cap_data_struct cap[2];
	bool boot;

	REQUIRE(syscall(SYS_capget, &hdr, cap) == 0);
	boot = cap[0].effective & (1U << CAP_SYS_BOOT);
	FOR_LAYERS(io)
	{
		struct gmem_vcpu *v;
		struct env e;
		int fd = -1;

		env_vm(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(tvm_check_extension(&(struct tvm){.ioctl = io,
							   .vm = e.vm,
							   .fd = e.vmfd},
					     KVM_CAP_VM_DISABLE_NX_HUGE_PAGES),
			 1);
		CHECK_EQ(e_cap(&e, KVM_CAP_VM_DISABLE_NX_HUGE_PAGES, 1),
			 boot ? -EINVAL : -EPERM);
		CHECK_EQ(e_cap(&e, KVM_CAP_VM_DISABLE_NX_HUGE_PAGES, 0),
			 boot ? 0 : -EPERM);
		REQUIRE(e_create_vcpu(&e, 0, &v, &fd) == 0);
		CHECK_EQ(e_cap(&e, KVM_CAP_VM_DISABLE_NX_HUGE_PAGES, 0),
			 boot ? -EINVAL : -EPERM);
		e_destroy_vcpu(&e, v, fd);
		env_fini(&e);
	}
	if (!boot)
		tap_diag("without CAP_SYS_BOOT: only the EPERM path ran");
	tap_result("KVM_CAP_VM_DISABLE_NX_HUGE_PAGES: CAP_SYS_BOOT, args[0] "
		   "0, before the first vCPU");
}

/* Room for 4096 vCPUs: each has a kvm_run memfd. */
static bool enough_fds(void)
{
	struct rlimit rl;

	if (getrlimit(RLIMIT_NOFILE, &rl))
		return false;
	if (rl.rlim_cur < 2 * MAX_VCPUS + 64 && rl.rlim_max > rl.rlim_cur) {
		rl.rlim_cur = rl.rlim_max;
		setrlimit(RLIMIT_NOFILE, &rl);
		getrlimit(RLIMIT_NOFILE, &rl);
	}
	return rl.rlim_cur >= 2 * MAX_VCPUS + 64;
}

static void test_max_vcpus(void)
{
	static struct gmem_vcpu *v[MAX_VCPUS];
	static int fd[MAX_VCPUS];
	const char *name = "KVM_CREATE_VCPU: the 4097th vCPU -> EINVAL";

	if (!enough_fds()) {
		tap_skip(name, "RLIMIT_NOFILE below 8256");
		return;
	}
	FOR_LAYERS(io)
	{
		struct gmem_vcpu *extra;
		struct env e;
		int efd = -1, n = 0;

		env_vm(&e, io, KVM_X86_DEFAULT_VM);
		/* sparse ids, as APIC ids are */
		while (n < MAX_VCPUS && e_create_vcpu(&e, (unsigned long)n * 4,
						      &v[n], &fd[n]) == 0)
			n++;
		CHECK_EQ(n, MAX_VCPUS);
		CHECK_EQ(e_create_vcpu(&e, 1, &extra, &efd), -EINVAL);
		CHECK_EQ(e_create_vcpu(&e, 0, &extra, &efd), -EINVAL);
		while (n > 0) {
			n--;
			e_destroy_vcpu(&e, v[n], fd[n]);
		}
		env_fini(&e);
	}
	tap_result(name);
}

/* ---- 2. TSC ------------------------------------------------------------ */

static long e_vm_tsc(struct env *e, bool set, unsigned long khz)
{
	if (!e->io)
		return set ? gmem_vm_set_tsc_khz(e->vm, (uint32_t)khz)
			   : gmem_vm_get_tsc_khz(e->vm);
	return fac_ret(gmem_ioctl(
		e->vmfd, set ? KVM_SET_TSC_KHZ : KVM_GET_TSC_KHZ, khz));
}

static long e_vcpu_tsc(struct env *e, bool set, unsigned long khz)
{
	if (!e->io)
		return set ? gmem_vcpu_set_tsc_khz(e->vcpu, (uint32_t)khz)
			   : gmem_vcpu_get_tsc_khz(e->vcpu);
	return fac_ret(gmem_ioctl(
		e->vcpufd, set ? KVM_SET_TSC_KHZ : KVM_GET_TSC_KHZ, khz));
}

static void test_tsc_khz(void)
{
	FOR_LAYERS(io)
	{
		struct gmem_vcpu *v2;
		struct env e;
		int fd2 = -1;

		env_init(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e_vm_tsc(&e, false, 0), 1000000);
		CHECK_EQ(e_vcpu_tsc(&e, false, 0), 1000000);
		CHECK_EQ(e_vcpu_tsc(&e, true, 0x7fffffff), -EINVAL);
		CHECK_EQ(e_vcpu_tsc(&e, true, 0xffffffff), -EINVAL);
		CHECK_EQ(e_vcpu_tsc(&e, false, 0), 1000000);
		CHECK_EQ(e_vcpu_tsc(&e, true, 0x7ffffffe), 0);
		CHECK_EQ(e_vcpu_tsc(&e, false, 0), 0x7ffffffe);
		CHECK_EQ(e_vcpu_tsc(&e, true, 1), 0);
		CHECK_EQ(e_vcpu_tsc(&e, false, 0), 1);
		/* 0 is the host's rate */
		CHECK_EQ(e_vcpu_tsc(&e, true, 0), 0);
		CHECK_EQ(e_vcpu_tsc(&e, false, 0), 1000000);
		if (io) {
			/* the ioctl argument is a u32: 2^32 + 5 sets 5 */
			CHECK_EQ(e_vcpu_tsc(&e, true, (1UL << 32) + 5), 0);
			CHECK_EQ(e_vcpu_tsc(&e, false, 0), 5);
		}
		/* the VM's rate is for vCPUs made after it */
		CHECK_EQ(e_vm_tsc(&e, true, 0x7fffffff), -EINVAL);
		CHECK_EQ(e_vm_tsc(&e, false, 0), 1000000);
		CHECK_EQ(e_vm_tsc(&e, true, 2500000), 0);
		CHECK_EQ(e_vm_tsc(&e, false, 0), 2500000);
		CHECK_EQ(e_vcpu_tsc(&e, true, 0), 0);
		CHECK_EQ(e_vcpu_tsc(&e, false, 0), 1000000);
		REQUIRE(e_create_vcpu(&e, 1, &v2, &fd2) == 0);
		CHECK_EQ(gmem_vcpu_get_tsc_khz(v2), 2500000);
		if (io)
			CHECK_EQ(gmem_ioctl(fd2, KVM_GET_TSC_KHZ, 0), 2500000);
		e_destroy_vcpu(&e, v2, fd2);
		CHECK_EQ(e_vm_tsc(&e, true, 0), 0);
		CHECK_EQ(e_vm_tsc(&e, false, 0), 1000000);
		env_fini(&e);
	}
	tap_result("KVM_GET/SET_TSC_KHZ on vCPUs and VMs: 1 GHz host rate, "
		   "limit 0x7fffffff, 0 = host");
}

static const uint8_t tsc_code[] = {
	0x0f, 0x31,		/* rdtsc */
	0x48, 0xc1, 0xe2, 0x20, /* shl rdx, 32 */
	0x48, 0x09, 0xd0,	/* or rax, rdx */
	0x48, 0x89, 0xc3,	/* mov rbx, rax */
	0xe6, 0x10,		/* out 0x10, al */
	0x0f, 0x31,		/* rdtsc */
	0x48, 0xc1, 0xe2, 0x20, /* shl rdx, 32 */
	0x48, 0x09, 0xd0,	/* or rax, rdx */
	0x48, 0x89, 0xc1,	/* mov rcx, rax */
	0xe6, 0x10,		/* out 0x10, al */
	0xf4,			/* hlt */
};

/*
 * The guest's two RDTSCs bracket a host sleep: their difference, at
 * @khz, lies between the time the VMM measured outside the guest and the
 * time it measured around both runs.
 */
static void check_rdtsc_rate(struct env *e, uint32_t khz)
{
	struct kvm_regs regs;
	uint64_t t0, t1, t2, t3, lo, hi, d;

	e_code(e, tsc_code, sizeof(tsc_code));
	t0 = now_ns();
	CHECK_EQ(e_run(e), 0);
	t1 = now_ns();
	CHECK_EQ(e->run->exit_reason, KVM_EXIT_IO);
	usleep(50000);
	t2 = now_ns();
	CHECK_EQ(e_run(e), 0);
	t3 = now_ns();
	e_get_regs(e, &regs);
	d = regs.rcx - regs.rbx;
	/* ns * khz / 10^6, with a cycle of rounding either way */
	lo = (t2 - t1) / 1000 * khz / 1000;
	hi = (t3 - t0) / 1000 * khz / 1000 + khz / 1000 + 2;
	if (d < lo || d > hi) {
		tap_case_failed = 1;
		tap_diag("%u kHz: TSC advanced %" PRIu64 ", expected %" PRIu64
			 "..%" PRIu64,
			 khz, d, lo, hi);
	}
}

static void test_rdtsc_rate(void)
{
	static const uint32_t rates[] = {1000000, 2000000, 3333333, 50000};

	FOR_LAYERS(io)
	{
		struct kvm_msrs *m =
			calloc(1, sizeof(*m) + sizeof(m->entries[0]));
		struct env e;
		uint64_t before;

		REQUIRE(m);
		env_init(&e, io, KVM_X86_DEFAULT_VM);
		for (size_t i = 0; i < ARRAY_LEN(rates); i++) {
			CHECK_EQ(e_vcpu_tsc(&e, true, rates[i]), 0);
			check_rdtsc_rate(&e, rates[i]);
		}
		/* A rate change goes on from the count, without a jump back. */
		m->nmsrs = 1;
		m->entries[0].index = 0x10; /* IA32_TIME_STAMP_COUNTER */
		CHECK_EQ(gmem_vcpu_get_msrs(e.vcpu, m), 1);
		before = m->entries[0].data;
		CHECK_EQ(e_vcpu_tsc(&e, true, 1000), 0);
		CHECK_EQ(gmem_vcpu_get_msrs(e.vcpu, m), 1);
		CHECK(m->entries[0].data >= before);
		CHECK(m->entries[0].data < before + 1000000);
		free(m);
		env_fini(&e);
	}
	tap_result("RDTSC counts at the rate KVM_GET_TSC_KHZ reports");
}

/* ---- 3. MP state, GET_CPUID2, the x86 setup calls -------------------- */

static long e_mp(struct env *e, bool set, struct kvm_mp_state *mp)
{
	if (!e->io)
		return set ? gmem_vcpu_set_mp_state(e->vcpu, mp)
			   : gmem_vcpu_get_mp_state(e->vcpu, mp);
	return fac_ret(gmem_ioctl(
		e->vcpufd, set ? KVM_SET_MP_STATE : KVM_GET_MP_STATE, mp));
}

static void test_mp_state(void)
{
	static const uint8_t hlt[] = {0xf4};

	FOR_LAYERS(io)
	{
		struct kvm_mp_state mp = {.mp_state = 77};
		struct env e;

		env_init(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e_mp(&e, false, &mp), 0);
		CHECK_EQ(mp.mp_state, KVM_MP_STATE_RUNNABLE);
		/* Without an in-kernel LAPIC only RUNNABLE can be set. */
		for (uint32_t s = 1; s <= 12; s++) {
			mp.mp_state = s;
			CHECK_EQ(e_mp(&e, true, &mp), -EINVAL);
		}
		mp.mp_state = ~0U;
		CHECK_EQ(e_mp(&e, true, &mp), -EINVAL);
		mp.mp_state = KVM_MP_STATE_RUNNABLE;
		CHECK_EQ(e_mp(&e, true, &mp), 0);
		/* HLT exits to the VMM; the vCPU stays RUNNABLE. */
		e_code(&e, hlt, sizeof(hlt));
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_HLT);
		mp.mp_state = 5;
		CHECK_EQ(e_mp(&e, false, &mp), 0);
		CHECK_EQ(mp.mp_state, KVM_MP_STATE_RUNNABLE);
		if (io) {
			CHECK_ERRNO(
				gmem_ioctl(e.vcpufd, KVM_GET_MP_STATE, NULL),
				EFAULT);
			CHECK_ERRNO(
				gmem_ioctl(e.vcpufd, KVM_SET_MP_STATE, NULL),
				EFAULT);
		}
		env_fini(&e);
	}
	tap_result("KVM_GET/SET_MP_STATE: RUNNABLE always, the only state "
		   "that can be set");
}

static struct kvm_cpuid2 *cpuid_alloc(uint32_t n)
{
	struct kvm_cpuid2 *c =
		calloc(1, sizeof(*c) + n * sizeof(struct kvm_cpuid_entry2));

	REQUIRE(c);
	c->nent = n;
	return c;
}

/* A small table: leaf 0, leaf 1 and 0x80000008 (48-bit addresses). */
static struct kvm_cpuid2 *cpuid_table(uint32_t tweak)
{
	struct kvm_cpuid2 *c = cpuid_alloc(3);

	c->entries[0] = (struct kvm_cpuid_entry2){.function = 0, .eax = 1};
	c->entries[1] = (struct kvm_cpuid_entry2){.function = 1,
						  .eax = 0x806a0 + tweak};
	c->entries[2] = (struct kvm_cpuid_entry2){.function = 0x80000008,
						  .eax = 0x3027};
	return c;
}

static void test_get_cpuid2(void)
{
	FOR_LAYERS(io)
	{
		struct kvm_cpuid2 *set = cpuid_table(0), *get = cpuid_alloc(8);
		struct env e;

		env_init(&e, io, KVM_X86_DEFAULT_VM);
		/* nothing set yet: no entries */
		CHECK_EQ(e_get_cpuid(&e, get), 0);
		CHECK_EQ(get->nent, 0);
		CHECK_EQ(e_set_cpuid(&e, set), 0);
		get->nent = 2;
		CHECK_EQ(e_get_cpuid(&e, get), -E2BIG);
		CHECK_EQ(get->nent, 2);
		get->nent = 8;
		CHECK_EQ(e_get_cpuid(&e, get), 0);
		CHECK_EQ(get->nent, 3);
		CHECK(!memcmp(get->entries, set->entries,
			      3 * sizeof(set->entries[0])));
		get->nent = 3;
		CHECK_EQ(e_get_cpuid(&e, get), 0);
		CHECK_EQ(get->nent, 3);
		/* KVM's check of the linear-address width */
		set->entries[2].eax = 0x2727;
		CHECK_EQ(e_set_cpuid(&e, set), -EINVAL);
		get->nent = 8;
		CHECK_EQ(e_get_cpuid(&e, get), 0);
		CHECK_EQ(get->entries[2].eax, 0x3027);
		set->nent = 0;
		CHECK_EQ(e_set_cpuid(&e, set), 0);
		CHECK_EQ(e_get_cpuid(&e, get), 0);
		CHECK_EQ(get->nent, 0);
		if (io)
			CHECK_ERRNO(gmem_ioctl(e.vcpufd, KVM_GET_CPUID2, NULL),
				    EFAULT);
		free(set);
		free(get);
		env_fini(&e);
	}
	tap_result("KVM_GET_CPUID2: the table set, E2BIG with nent untouched "
		   "when too small");
}

static long e_vm_call(struct env *e, unsigned long req, unsigned long arg)
{
	switch (e->io ? 0 : req) {
	case KVM_SET_NR_MMU_PAGES:
		return gmem_vm_set_nr_mmu_pages(e->vm, arg);
	case KVM_SET_TSS_ADDR:
		return gmem_vm_set_tss_addr(e->vm, arg);
	case KVM_SET_IDENTITY_MAP_ADDR:
		return gmem_vm_set_identity_map_addr(e->vm,
						     (const uint64_t *)arg);
	case KVM_SET_BOOT_CPU_ID:
		return gmem_vm_set_boot_cpu_id(e->vm, arg);
	}
	return fac_ret(gmem_ioctl(e->vmfd, req, arg));
}

static void test_setup_calls(void)
{
	FOR_LAYERS(io)
	{
		uint64_t ident = 0xfeffc000;
		struct gmem_vcpu *v;
		struct env e;
		int fd = -1;

		env_vm(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e_vm_call(&e, KVM_SET_NR_MMU_PAGES, 0), -EINVAL);
		CHECK_EQ(e_vm_call(&e, KVM_SET_NR_MMU_PAGES, 63), -EINVAL);
		CHECK_EQ(e_vm_call(&e, KVM_SET_NR_MMU_PAGES, 64), 0);
		CHECK_EQ(e_vm_call(&e, KVM_SET_NR_MMU_PAGES, ~0UL), 0);
		CHECK_EQ(e_vm_call(&e, KVM_SET_TSS_ADDR, 0xfffbd000), 0);
		CHECK_EQ(e_vm_call(&e, KVM_SET_TSS_ADDR, 0xffffd000), 0);
		CHECK_EQ(e_vm_call(&e, KVM_SET_TSS_ADDR, 0xffffd001), -EINVAL);
		CHECK_EQ(e_vm_call(&e, KVM_SET_TSS_ADDR, 1UL << 32), -EINVAL);
		CHECK_EQ(e_vm_call(&e, KVM_SET_TSS_ADDR, 0), 0);
		CHECK_EQ(e_vm_call(&e, KVM_SET_IDENTITY_MAP_ADDR, 0), -EFAULT);
		CHECK_EQ(e_vm_call(&e, KVM_SET_IDENTITY_MAP_ADDR,
				   (uintptr_t)&ident),
			 0);
		CHECK_EQ(e_vm_call(&e, KVM_SET_IDENTITY_MAP_ADDR,
				   (uintptr_t)&ident),
			 0);
		REQUIRE(e_create_vcpu(&e, 0, &v, &fd) == 0);
		/* with a vCPU: EINVAL, before the argument is looked at */
		CHECK_EQ(e_vm_call(&e, KVM_SET_IDENTITY_MAP_ADDR,
				   (uintptr_t)&ident),
			 -EINVAL);
		CHECK_EQ(e_vm_call(&e, KVM_SET_IDENTITY_MAP_ADDR, 0), -EINVAL);
		/* the others still work */
		CHECK_EQ(e_vm_call(&e, KVM_SET_TSS_ADDR, 0xfffbd000), 0);
		CHECK_EQ(e_vm_call(&e, KVM_SET_NR_MMU_PAGES, 1000), 0);
		/* x86 KVM has no KVM_GET_NR_MMU_PAGES any more */
		if (io)
			CHECK_ERRNO(gmem_ioctl(e.vmfd, KVM_GET_NR_MMU_PAGES, 0),
				    ENOTTY);
		e_destroy_vcpu(&e, v, fd);
		env_fini(&e);
	}
	tap_result("KVM_SET_NR_MMU_PAGES, KVM_SET_TSS_ADDR, "
		   "KVM_SET_IDENTITY_MAP_ADDR: KVM's checks, then accepted");
}

/* IA32_APIC_BASE's BSP flag (bit 8) of a new vCPU @id. */
static bool e_new_vcpu_is_bsp(struct env *e, unsigned long id)
{
	struct gmem_vcpu *v;
	struct kvm_sregs s;
	int fd = -1;

	REQUIRE(e_create_vcpu(e, id, &v, &fd) == 0);
	REQUIRE(gmem_vcpu_get_sregs(v, &s) == 0);
	e_destroy_vcpu(e, v, fd);
	return s.apic_base & (1u << 8);
}

static void test_boot_cpu_id(void)
{
	CHECK_EQ(gmem_check_extension(NULL, KVM_CAP_SET_BOOT_CPU_ID), 1);
	FOR_LAYERS(io)
	{
		struct gmem_vcpu *v;
		struct env e;
		int fd = -1;

		env_vm(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e_check(&e, KVM_CAP_SET_BOOT_CPU_ID), 1);
		/* vCPU 0 by default */
		CHECK(e_new_vcpu_is_bsp(&e, 0));
		CHECK(!e_new_vcpu_is_bsp(&e, 1));
		/* up to the limit itself, as KVM */
		CHECK_EQ(e_vm_call(&e, KVM_SET_BOOT_CPU_ID, MAX_VCPU_IDS + 1),
			 -EINVAL);
		CHECK_EQ(e_vm_call(&e, KVM_SET_BOOT_CPU_ID, 1UL << 32),
			 -EINVAL);
		CHECK_EQ(e_vm_call(&e, KVM_SET_BOOT_CPU_ID, MAX_VCPU_IDS), 0);
		CHECK_EQ(e_vm_call(&e, KVM_SET_BOOT_CPU_ID, 1), 0);
		CHECK(!e_new_vcpu_is_bsp(&e, 0));
		CHECK(e_new_vcpu_is_bsp(&e, 1));
		env_fini(&e);

		/* MAX_VCPU_ID may not drop below the BSP, nor BSP above it */
		env_vm(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e_vm_call(&e, KVM_SET_BOOT_CPU_ID, 3), 0);
		CHECK_EQ(e_cap(&e, KVM_CAP_MAX_VCPU_ID, 2), -EINVAL);
		CHECK_EQ(e_cap(&e, KVM_CAP_MAX_VCPU_ID, 3), 0);
		CHECK_EQ(e_vm_call(&e, KVM_SET_BOOT_CPU_ID, 4), -EINVAL);
		CHECK_EQ(e_vm_call(&e, KVM_SET_BOOT_CPU_ID, 3), 0);
		CHECK_EQ(e_vm_call(&e, KVM_SET_BOOT_CPU_ID, 0), 0);
		/* a vCPU exists: EBUSY, the id unchanged */
		REQUIRE(e_create_vcpu(&e, 0, &v, &fd) == 0);
		CHECK_EQ(e_vm_call(&e, KVM_SET_BOOT_CPU_ID, 0), -EBUSY);
		CHECK_EQ(e_vm_call(&e, KVM_SET_BOOT_CPU_ID, 5), -EBUSY);
		e_destroy_vcpu(&e, v, fd);
		CHECK(e_new_vcpu_is_bsp(&e, 0));
		env_fini(&e);
	}
	tap_result("KVM_SET_BOOT_CPU_ID: before any vCPU, <= the ID limit, "
		   "then the BSP flag of that vCPU");
}

static long e_msr(struct env *e, bool set, uint32_t idx, uint64_t *v)
{
	union {
		struct kvm_msrs m;
		uint8_t buf[sizeof(struct kvm_msrs) +
			    sizeof(struct kvm_msr_entry)];
	} msrs = {.m.nmsrs = 1};
	long r;

	msrs.m.entries[0].index = idx;
	msrs.m.entries[0].data = *v;
	if (!e->io)
		r = set ? gmem_vcpu_set_msrs(e->vcpu, &msrs.m)
			: gmem_vcpu_get_msrs(e->vcpu, &msrs.m);
	else
		r = fac_ret(gmem_ioctl(
			e->vcpufd, set ? KVM_SET_MSRS : KVM_GET_MSRS, &msrs));
	*v = msrs.m.entries[0].data;
	return r;
}

static void test_platform_info(void)
{
	/* mov $0xce, %ecx; rdmsr; hlt */
	static const uint8_t code[] = {0xb9, 0xce, 0, 0, 0, 0x0f, 0x32, 0xf4};

	CHECK_EQ(gmem_check_extension(NULL, KVM_CAP_MSR_PLATFORM_INFO), 1);
	FOR_LAYERS(io)
	{
		struct kvm_enable_cap bad = {.cap = KVM_CAP_MSR_PLATFORM_INFO,
					     .flags = 1};
		struct kvm_regs regs;
		uint64_t v = 0xff00;
		struct env e;

		env_init(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e_check(&e, KVM_CAP_MSR_PLATFORM_INFO), 1);
		CHECK_EQ(e_msr(&e, true, 0xce, &v), 1);
		v = 0;
		CHECK_EQ(e_msr(&e, false, 0xce, &v), 1);
		CHECK_EQ(v, 0xff00);
		/* readable by default */
		e_code(&e, code, sizeof(code));
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_HLT);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rax, 0xff00);
		/* flags refused, nothing changed */
		CHECK_EQ(io ? fac_ret(gmem_ioctl(e.vmfd, KVM_ENABLE_CAP, &bad))
			    : gmem_vm_enable_cap(e.vm, &bad),
			 -EINVAL);
		e_code(&e, code, sizeof(code));
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_HLT);
		/* off: the guest's RDMSR #GPs (no IDT: a triple fault) */
		CHECK_EQ(e_cap(&e, KVM_CAP_MSR_PLATFORM_INFO, 0), 0);
		e_code(&e, code, sizeof(code));
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_SHUTDOWN);
		/* the host still reads it */
		v = 0;
		CHECK_EQ(e_msr(&e, false, 0xce, &v), 1);
		CHECK_EQ(v, 0xff00);
		env_fini(&e);
	}
	tap_result("KVM_CAP_MSR_PLATFORM_INFO: the VMM's MSR_PLATFORM_INFO, "
		   "read by the guest until the VM turns it off");
}

static void test_emulation_failure(void)
{
	/*
	 * mov $0x3000, %eax; emms (MMX: not in the model); hlt.  (An x87
	 * instruction on MMIO fails too: exit_on_emulation_failure_test.)
	 */
	static const uint8_t code[] = {0xb8, 0x00, 0x30, 0,
				       0,    0x0f, 0x77, 0xf4};

	CHECK_EQ(gmem_check_extension(NULL, KVM_CAP_EXIT_ON_EMULATION_FAILURE),
		 1);
	FOR_LAYERS(io)
	{
		struct kvm_regs regs;
		struct env e;

		env_init(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e_check(&e, KVM_CAP_EXIT_ON_EMULATION_FAILURE), 1);
		/* what smaller_maxphyaddr_emulation_test pairs it with */
		CHECK_EQ(e_check(&e, KVM_CAP_SMALLER_MAXPHYADDR), 1);
		/* off: #UD, as a CPU without the instruction (no IDT here) */
		e_code(&e, code, sizeof(code));
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_SHUTDOWN);
		CHECK_EQ(e_cap(&e, KVM_CAP_EXIT_ON_EMULATION_FAILURE, 2),
			 -EINVAL);
		e_code(&e, code, sizeof(code));
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_SHUTDOWN);
		/* on: the emulation-failure exit with the bytes, RIP at them */
		CHECK_EQ(e_cap(&e, KVM_CAP_EXIT_ON_EMULATION_FAILURE, 1), 0);
		e_code(&e, code, sizeof(code));
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_INTERNAL_ERROR);
		CHECK_EQ(e.run->emulation_failure.suberror,
			 KVM_INTERNAL_ERROR_EMULATION);
		CHECK(e.run->emulation_failure.ndata >= 3);
		CHECK_EQ(e.run->emulation_failure.flags,
			 KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES);
		CHECK_EQ(e.run->emulation_failure.insn_size, 2);
		CHECK_EQ(e.run->emulation_failure.insn_bytes[0], 0x0f);
		CHECK_EQ(e.run->emulation_failure.insn_bytes[1], 0x77);
		CHECK_EQ(e.run->emulation_failure.insn_bytes[2], 0x90);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rip, CODE + 5);
		/* the VMM skips it */
		regs.rip += 2;
		e_set_regs(&e, &regs);
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_HLT);
		env_fini(&e);
	}
	tap_result("KVM_CAP_EXIT_ON_EMULATION_FAILURE: an unimplemented "
		   "instruction exits with its bytes instead of #UD");
}

/* ---- 8. KVM_SET_CPUID2 after KVM_RUN ----------------------------------- */

static void test_cpuid_after_run(void)
{
	static const uint8_t hlt[] = {0xf4};

	FOR_LAYERS(io)
	{
		struct kvm_cpuid2 *a = cpuid_table(0), *b = cpuid_table(1);
		struct kvm_cpuid2 *get = cpuid_alloc(8);
		struct env e;

		env_init(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e_set_cpuid(&e, b), 0);
		CHECK_EQ(e_set_cpuid(&e, a), 0);
		/* immediate_exit does not enter the guest: still free */
		e.run->immediate_exit = 1;
		CHECK_EQ(e_run(&e), -EINTR);
		e.run->immediate_exit = 0;
		CHECK_EQ(e_set_cpuid(&e, b), 0);
		CHECK_EQ(e_set_cpuid(&e, a), 0);
		e_code(&e, hlt, sizeof(hlt));
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_HLT);
		/* the same table: fine; another: EINVAL, nothing changed */
		CHECK_EQ(e_set_cpuid(&e, a), 0);
		CHECK_EQ(e_set_cpuid(&e, b), -EINVAL);
		a->nent = 2;
		CHECK_EQ(e_set_cpuid(&e, a), -EINVAL);
		a->nent = 3;
		a->entries[0].padding[0] = 1; /* padding is not compared */
		CHECK_EQ(e_set_cpuid(&e, a), 0);
		a->entries[0].padding[0] = 0;
		CHECK_EQ(e_get_cpuid(&e, get), 0);
		CHECK_EQ(get->nent, 3);
		CHECK(!memcmp(get->entries, a->entries,
			      3 * sizeof(a->entries[0])));
		free(a);
		free(b);
		free(get);
		env_fini(&e);
	}
	tap_result("KVM_SET_CPUID2 after KVM_RUN: the same table only, else "
		   "EINVAL");
}

/* The guest's CPUID @leaf, through a run. */
static void guest_cpuid(struct env *e, uint32_t leaf, uint32_t out[4])
{
	static const uint8_t code[] = {
		0x0f, 0xa2, /* cpuid */
		0xe6, 0x10, /* out 0x10, al */
		0xf4,	    /* hlt */
	};
	struct kvm_regs regs;

	e_code(e, code, sizeof(code));
	e_get_regs(e, &regs);
	regs.rax = leaf;
	regs.rcx = 0;
	e_set_regs(e, &regs);
	CHECK_EQ(e_run(e), 0);
	CHECK_EQ(e->run->exit_reason, KVM_EXIT_IO);
	e_get_regs(e, &regs);
	out[0] = (uint32_t)regs.rax;
	out[1] = (uint32_t)regs.rbx;
	out[2] = (uint32_t)regs.rcx;
	out[3] = (uint32_t)regs.rdx;
}

static void test_guest_cpuid(void)
{
	FOR_LAYERS(io)
	{
		struct kvm_cpuid2 *t = cpuid_alloc(4);
		uint32_t o[4];
		struct env e;

		/* The table alone: KVM's signature and a 39-bit MAXPHYADDR. */
		t->entries[0] = (struct kvm_cpuid_entry2){.function = 0,
							  .eax = 0,
							  .ebx = 0x756e6547,
							  .ecx = 0x6c65746e,
							  .edx = 0x49656e69};
		t->entries[1] =
			(struct kvm_cpuid_entry2){.function = 0x40000000,
						  .eax = 0x40000001,
						  .ebx = 0x4b4d564b,
						  .ecx = 0x564b4d56,
						  .edx = 0x4d};
		t->entries[2] = (struct kvm_cpuid_entry2){
			.function = 0x80000000, .eax = 0x80000008};
		t->entries[3] = (struct kvm_cpuid_entry2){
			.function = 0x80000008, .eax = 0x3027};
		env_init(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e_set_cpuid(&e, t), 0);
		guest_cpuid(&e, 0x40000000, o);
		CHECK_EQ(o[0], 0x40000001);
		CHECK_EQ(o[1], 0x4b4d564b);
		guest_cpuid(&e, 0x80000008, o);
		CHECK_EQ(o[0], 0x3027);
		/* a missing leaf on an Intel guest: the highest basic one */
		guest_cpuid(&e, 0x40000100, o);
		CHECK_EQ(o[0], 0);
		CHECK_EQ(o[1], 0x756e6547);
		CHECK_EQ(o[2], 0x6c65746e);
		env_fini(&e);

		/* gmem's leaves answer only on a VM with the XO alias. */
		env_vm(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e_cap(&e, GMEM_CAP_XO_ALIAS, 40), 0);
		env_vcpu(&e);
		CHECK_EQ(e_set_cpuid(&e, t), 0);
		guest_cpuid(&e, 0x40000000, o);
		CHECK_EQ(o[1], 0x6d656d67);
		guest_cpuid(&e, 0x80000008, o);
		CHECK_EQ(o[0], 0x3028);
		free(t);
		env_fini(&e);
	}
	tap_result("guest CPUID: the table set, hypervisor leaves and "
		   "MAXPHYADDR included, unless XO is enabled");
}

/* ---- 4. KVM_RUN's entry and immediate_exit ----------------------------- */

static const uint8_t io_code[] = {
	0xe4, 0x11,			       /* in al, 0x11 */
	0xe6, 0x12,			       /* out 0x12, al */
	0x48, 0xa1, 0x08, 0, 0, 0, 1, 0, 0, 0, /* mov rax, [4G + 8] */
	0xe6, 0x13,			       /* out 0x13, al */
	0xf4,				       /* hlt */
};

static void test_immediate_exit(void)
{
	FOR_LAYERS(io)
	{
		struct kvm_regs regs;
		struct env e;
		uint64_t v = 0x1122334455667788ULL;

		env_init(&e, io, KVM_X86_DEFAULT_VM);
		e_code(&e, io_code, sizeof(io_code));
		/* nothing pending: EINTR and kvm_run as it was */
		e.run->exit_reason = 0x5a5a;
		e.run->flags = 0xffff;
		e.run->immediate_exit = 1;
		CHECK_EQ(e_run(&e), -EINTR);
		CHECK_EQ(e.run->exit_reason, 0x5a5a);
		CHECK_EQ(e.run->flags, 0);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rip, CODE);
		e.run->immediate_exit = 0;

		/* IN: the data lands and RIP moves on, then EINTR */
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_IO);
		CHECK_EQ(e.run->io.direction, KVM_EXIT_IO_IN);
		*((uint8_t *)e.run + e.run->io.data_offset) = 0x5c;
		e.run->immediate_exit = 1;
		CHECK_EQ(e_run(&e), -EINTR);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_IO);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rip, CODE + 2);
		CHECK_EQ(regs.rax & 0xff, 0x5c);
		/* again: nothing more to complete, nothing changes */
		CHECK_EQ(e_run(&e), -EINTR);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rip, CODE + 2);
		e.run->immediate_exit = 0;
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->io.port, 0x12);
		CHECK_EQ(*((uint8_t *)e.run + e.run->io.data_offset), 0x5c);

		/* an MMIO read: the load retires with the VMM's data */
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_MMIO);
		CHECK_EQ(e.run->mmio.phys_addr, MMIO_GPA + 8);
		memcpy(e.run->mmio.data, &v, 8);
		e.run->immediate_exit = 1;
		CHECK_EQ(e_run(&e), -EINTR);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_MMIO);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rip, CODE + 14);
		CHECK_EQ(regs.rax, v);
		e.run->immediate_exit = 0;
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_IO);
		CHECK_EQ(e.run->io.port, 0x13);
		CHECK_EQ(*((uint8_t *)e.run + e.run->io.data_offset), 0x88);
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_HLT);
		env_fini(&e);
	}
	tap_result("immediate_exit: pending IN and MMIO complete first, then "
		   "EINTR with exit_reason untouched");
}

static const uint8_t mmio_write_code[] = {
	0xb0, 0x77,			 /* mov al, 0x77 */
	0xa2, 0x10, 0, 0, 0, 1, 0, 0, 0, /* mov [4G + 16], al */
	0xe6, 0x14,			 /* out 0x14, al */
	0xf4,				 /* hlt */
};

static void test_immediate_exit_mmio_write(void)
{
	FOR_LAYERS(io)
	{
		struct kvm_regs regs;
		struct env e;

		env_init(&e, io, KVM_X86_DEFAULT_VM);
		e_code(&e, mmio_write_code, sizeof(mmio_write_code));
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_MMIO);
		CHECK_EQ(e.run->mmio.is_write, 1);
		CHECK_EQ(e.run->mmio.data[0], 0x77);
		e.run->immediate_exit = 1;
		CHECK_EQ(e_run(&e), -EINTR);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_MMIO);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rip, CODE + 11);
		e.run->immediate_exit = 0;
		/* the store is not delivered twice */
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_IO);
		CHECK_EQ(e.run->io.port, 0x14);
		env_fini(&e);
	}
	tap_result("immediate_exit after an MMIO write: the store retires, "
		   "once");
}

static void test_run_entry(void)
{
	static const uint8_t code[] = {
		0x44, 0x0f, 0x20, 0xc0, /* mov rax, cr8 */
		0xe6, 0x10,		/* out 0x10, al */
		0xfb,			/* sti */
		0xf4,			/* hlt */
	};

	FOR_LAYERS(io)
	{
		struct kvm_sregs sregs;
		struct kvm_regs regs;
		struct env e;

		env_init(&e, io, KVM_X86_DEFAULT_VM);
		e_code(&e, code, sizeof(code));
		/* sync-regs bits outside REGS|SREGS|EVENTS */
		e.run->kvm_valid_regs = 8;
		CHECK_EQ(e_run(&e), -EINVAL);
		e.run->kvm_valid_regs = 0;
		e.run->kvm_dirty_regs = 1ULL << 63;
		CHECK_EQ(e_run(&e), -EINVAL);
		e.run->kvm_dirty_regs = 0;
		/* kvm_run.cr8 is the TPR going in: 4 bits */
		e.run->cr8 = 16;
		CHECK_EQ(e_run(&e), -EINVAL);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rip, CODE);
		e.run->cr8 = 9;
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_IO);
		CHECK_EQ(*((uint8_t *)e.run + e.run->io.data_offset), 9);
		CHECK_EQ(e.run->cr8, 9);
		CHECK_EQ(e.run->if_flag, 0);
		CHECK_EQ(e.run->ready_for_interrupt_injection, 0);
		e_get_sregs(&e, &sregs);
		CHECK_EQ(sregs.cr8, 9);
		CHECK_EQ(e.run->apic_base, sregs.apic_base);
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_HLT);
		CHECK_EQ(e.run->if_flag, 1);
		CHECK_EQ(e.run->ready_for_interrupt_injection, 1);
		env_fini(&e);
	}
	tap_result(
		"KVM_RUN entry: kvm_run.cr8 in (<= 15), no unknown sync bits; "
		"cr8, if_flag, apic_base out");
}

/* ---- 5. KVM_CAP_SYNC_REGS --------------------------------------------- */

#define SYNC_ALL KVM_SYNC_X86_VALID_FIELDS

/* An IN exit each run; RDX = TPR and RBX + 1 in between. */
static const uint8_t sync_code[] = {
	0xe4, 0x10,		/* 1: in al, 0x10 */
	0x44, 0x0f, 0x20, 0xc2, /* mov rdx, cr8 */
	0x48, 0xff, 0xc3,	/* inc rbx */
	0xeb, 0xf5,		/* jmp 1b */
};

static long e_events(struct env *e, bool set, struct kvm_vcpu_events *ev)
{
	if (!e->io)
		return set ? gmem_vcpu_set_vcpu_events(e->vcpu, ev)
			   : gmem_vcpu_get_vcpu_events(e->vcpu, ev);
	return fac_ret(gmem_ioctl(
		e->vcpufd, set ? KVM_SET_VCPU_EVENTS : KVM_GET_VCPU_EVENTS,
		ev));
}

/* kvm_run.s.regs holds what the GET ioctls answer, for the sets in @valid. */
static void check_synced(struct env *e, uint64_t valid)
{
	struct kvm_vcpu_events ev;
	struct kvm_sregs sregs;
	struct kvm_regs regs;

	e_get_regs(e, &regs);
	e_get_sregs(e, &sregs);
	REQUIRE(e_events(e, false, &ev) == 0);
	if (valid & KVM_SYNC_X86_REGS)
		CHECK(!memcmp(&regs, &e->run->s.regs.regs, sizeof(regs)));
	if (valid & KVM_SYNC_X86_SREGS)
		CHECK(!memcmp(&sregs, &e->run->s.regs.sregs, sizeof(sregs)));
	if (valid & KVM_SYNC_X86_EVENTS)
		CHECK(!memcmp(&ev, &e->run->s.regs.events, sizeof(ev)));
}

static void test_sync_regs_cap(void)
{
	FOR_LAYERS(io)
	{
		struct env e;

		env_vm(&e, io, KVM_X86_SW_PROTECTED_VM);
		CHECK_EQ(e_check(&e, KVM_CAP_SYNC_REGS), SYNC_ALL);
		env_fini(&e);
	}
	tap_result("KVM_CAP_SYNC_REGS: REGS|SREGS|EVENTS, on either VM type");
}

/*
 * Stored at every exit, loaded when dirty and the bit cleared, in
 * kvm_arch_vcpu_ioctl_run()'s order: before kvm_run.cr8 goes in, before
 * the pending IN completes, before immediate_exit.
 */
static void test_sync_regs_flow(void)
{
	FOR_LAYERS(io)
	{
		struct kvm_vcpu_events ev;
		struct kvm_regs regs;
		struct env e;
		uint8_t *data;

		env_init(&e, io, KVM_X86_DEFAULT_VM);
		e_code(&e, sync_code, sizeof(sync_code));
		e.run->kvm_valid_regs = SYNC_ALL;
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_IO);
		check_synced(&e, SYNC_ALL);
		CHECK_EQ(e.run->s.regs.regs.rip, CODE);
		CHECK_EQ(e.run->s.regs.sregs.cr3, 0x1000);

		/* REGS go in before the IN completes: AL is the IN's. */
		data = (uint8_t *)e.run + e.run->io.data_offset;
		*data = 0x42;
		e.run->s.regs.regs.rax = 0xabcd0000;
		e.run->s.regs.regs.rbx = 0x1000;
		/* SREGS' CR8, then kvm_run.cr8 over it. */
		e.run->s.regs.sregs.cr8 = 5;
		e.run->cr8 = 9;
		e.run->kvm_dirty_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_IO);
		CHECK_EQ(e.run->kvm_dirty_regs, 0);
		CHECK_EQ(e.run->s.regs.regs.rax, 0xabcd0042);
		CHECK_EQ(e.run->s.regs.regs.rbx, 0x1001);
		CHECK_EQ(e.run->s.regs.regs.rdx, 9);
		CHECK_EQ(e.run->s.regs.sregs.cr8, 9);
		check_synced(&e, SYNC_ALL);

		/* Neither word: kvm_run.s.regs and the vCPU stay apart. */
		e.run->kvm_valid_regs = 0;
		e.run->s.regs.regs.rbx = 0xaaaa;
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->s.regs.regs.rbx, 0xaaaa);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rbx, 0x1002);

		/* Dirty alone: loaded, not stored back. */
		e.run->s.regs.regs = regs;
		e.run->s.regs.regs.rbx = 0xbbbb;
		e.run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->kvm_dirty_regs, 0);
		CHECK_EQ(e.run->s.regs.regs.rbx, 0xbbbb);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rbx, 0xbbbc);

		/*
		 * Events go in before immediate_exit, and the -EINTR run
		 * stores them: the #UD is pending, not yet delivered.
		 */
		memset(&e.run->s.regs.events, 0, sizeof(e.run->s.regs.events));
		e.run->s.regs.events.exception.injected = 1;
		e.run->s.regs.events.exception.nr = 6;
		e.run->kvm_dirty_regs = KVM_SYNC_X86_EVENTS;
		e.run->kvm_valid_regs = SYNC_ALL;
		e.run->immediate_exit = 1;
		CHECK_EQ(e_run(&e), -EINTR);
		CHECK_EQ(e.run->kvm_dirty_regs, 0);
		REQUIRE(e_events(&e, false, &ev) == 0);
		CHECK_EQ(ev.exception.injected, 1);
		CHECK_EQ(ev.exception.nr, 6);
		check_synced(&e, SYNC_ALL);
		/* ... and taken back the same way. */
		memset(&e.run->s.regs.events, 0, sizeof(e.run->s.regs.events));
		e.run->kvm_dirty_regs = KVM_SYNC_X86_EVENTS;
		CHECK_EQ(e_run(&e), -EINTR);
		REQUIRE(e_events(&e, false, &ev) == 0);
		CHECK_EQ(ev.exception.injected, 0);
		e.run->immediate_exit = 0;
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_IO);
		CHECK_EQ(e.run->s.regs.regs.rbx, 0xbbbd);
		env_fini(&e);
	}
	tap_result("sync regs: stored at each exit, loaded when dirty, "
		   "before kvm_run.cr8, the IN's completion and "
		   "immediate_exit");
}

/* What KVM refuses, and what it has already loaded when it does. */
static void test_sync_regs_refused(void)
{
	FOR_LAYERS(io)
	{
		struct kvm_vcpu_events ev;
		struct kvm_sregs sregs;
		struct kvm_regs regs;
		struct env e;

		env_init(&e, io, KVM_X86_DEFAULT_VM);
		e_code(&e, sync_code, sizeof(sync_code));
		e_get_regs(&e, &regs);
		e_get_sregs(&e, &sregs);

		/*
		 * A bad bit in kvm_valid_regs fails the run before anything,
		 * yet the good bits are stored on the way out, as in KVM.
		 */
		e.run->kvm_valid_regs = KVM_SYNC_X86_REGS | 0x80000000;
		CHECK_EQ(e_run(&e), -EINVAL);
		CHECK(!memcmp(&e.run->s.regs.regs, &regs, sizeof(regs)));
		e.run->kvm_valid_regs = 0;
		/* In kvm_dirty_regs: nothing is loaded, no bit cleared. */
		e.run->s.regs.regs.rbx = 0x5555;
		e.run->kvm_dirty_regs = KVM_SYNC_X86_REGS | 8;
		CHECK_EQ(e_run(&e), -EINVAL);
		CHECK_EQ(e.run->kvm_dirty_regs, KVM_SYNC_X86_REGS | 8);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rbx, 0);
		CHECK_EQ(regs.rip, CODE);

		/*
		 * SREGS that KVM_SET_SREGS refuses (EFER.LME and CR0.PG
		 * without CR4.PAE): -EINVAL with its bit still set, the vCPU's
		 * sregs untouched; the REGS before them are in, bit cleared.
		 */
		e.run->s.regs.regs = regs;
		e.run->s.regs.regs.rbx = 0x2000;
		e.run->s.regs.sregs = sregs;
		e.run->s.regs.sregs.cr4 &= ~0x20ULL;
		e.run->kvm_dirty_regs = KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS;
		CHECK_EQ(e_run(&e), -EINVAL);
		CHECK_EQ(e.run->kvm_dirty_regs, KVM_SYNC_X86_SREGS);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rbx, 0x2000);
		CHECK_EQ(regs.rip, CODE);
		e_get_sregs(&e, &sregs);
		CHECK_EQ(sregs.cr4, 0x20);

		/* Events KVM_SET_VCPU_EVENTS refuses: NMI, vector 32. */
		memset(&e.run->s.regs.events, 0, sizeof(e.run->s.regs.events));
		e.run->s.regs.events.exception.injected = 1;
		e.run->s.regs.events.exception.nr = 2;
		e.run->kvm_dirty_regs = KVM_SYNC_X86_EVENTS;
		CHECK_EQ(e_run(&e), -EINVAL);
		e.run->s.regs.events.exception.nr = 32;
		CHECK_EQ(e_run(&e), -EINVAL);
		CHECK_EQ(e.run->kvm_dirty_regs, KVM_SYNC_X86_EVENTS);
		REQUIRE(e_events(&e, false, &ev) == 0);
		CHECK_EQ(ev.exception.injected, 0);

		/* A bad kvm_run.cr8 is checked after the sync: REGS are in. */
		e.run->s.regs.regs.rbx = 0x3000;
		e.run->kvm_dirty_regs = KVM_SYNC_X86_REGS;
		e.run->cr8 = 16;
		CHECK_EQ(e_run(&e), -EINVAL);
		CHECK_EQ(e.run->kvm_dirty_regs, 0);
		e_get_regs(&e, &regs);
		CHECK_EQ(regs.rbx, 0x3000);
		CHECK_EQ(regs.rip, CODE);

		/* Fixed, everything goes on from there. */
		e.run->cr8 = 0;
		e.run->s.regs.sregs.cr4 |= 0x20;
		e.run->kvm_dirty_regs = KVM_SYNC_X86_SREGS;
		e.run->kvm_valid_regs = KVM_SYNC_X86_REGS;
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_IO);
		CHECK_EQ(e.run->kvm_dirty_regs, 0);
		CHECK_EQ(e.run->s.regs.regs.rbx, 0x3000);
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->s.regs.regs.rbx, 0x3001);
		env_fini(&e);
	}
	tap_result("sync regs refused: bad bits before anything, bad SREGS "
		   "or EVENTS after the sets before them, kvm_run.cr8 after "
		   "all");
}

/*
 * A halted vCPU (irqchip) that a kick ends: -EINTR, and the run still
 * stores the sync regs and kvm_run's flags, as KVM's every return does.
 */
static void test_sync_regs_halted(void)
{
	FOR_LAYERS(io)
	{
		struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_HALTED};
		struct env e;

		env_vm(&e, io, KVM_X86_DEFAULT_VM);
		CHECK_EQ(e.io ? fac_ret(gmem_ioctl(e.vmfd, KVM_CREATE_IRQCHIP,
						   0))
			      : gmem_vm_create_irqchip(e.vm),
			 0);
		env_vcpu(&e);
		e_code(&e, sync_code, sizeof(sync_code));
		CHECK_EQ(e_mp(&e, true, &mp), 0);
		e.run->kvm_valid_regs = KVM_SYNC_X86_REGS;
		gmem_vcpu_kick(e.vcpu);
		CHECK_EQ(e_run(&e), -EINTR);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_INTR);
		CHECK_EQ(e.run->s.regs.regs.rip, CODE);
		CHECK_EQ(e.run->s.regs.regs.rsp, STACK);
		env_fini(&e);
	}
	tap_result("sync regs: stored when a kick ends a halted vCPU's run");
}

/* ---- 7. memory faults ------------------------------------------------- */

static const uint8_t read_noslot[] = {
	0x48, 0xa1, 0, 0, 0x80, 0, 0, 0, 0, 0, /* mov rax, [8 MiB] */
	0xe6, 0x10,			       /* out 0x10, al */
};

static const uint8_t write_5000[] = {
	0xc6, 0x04, 0x25, 0x00, 0x50, 0, 0, 0x77, /* mov byte [0x5000], 0x77 */
	0xe6, 0x11,				  /* out 0x11, al */
};

static void expect_fault(struct env *e, uint64_t gpa, uint64_t flags)
{
	struct kvm_regs regs;

	CHECK_EQ(e_run(e), -EFAULT);
	CHECK_EQ(e->run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	CHECK_EQ(e->run->memory_fault.gpa, gpa);
	CHECK_EQ(e->run->memory_fault.size, PAGE);
	CHECK_EQ(e->run->memory_fault.flags, flags);
	e_get_regs(e, &regs);
	CHECK_EQ(regs.rip, CODE);
}

static void test_private_noslot(void)
{
	FOR_LAYERS(io)
	{
		uint64_t v = 0xabcd;
		struct env e;

		env_init(&e, io, KVM_X86_SW_PROTECTED_VM);
		e_code(&e, read_noslot, sizeof(read_noslot));
		/* private where no slot is: a memory fault, not MMIO */
		CHECK_EQ(e_attr(&e, NOSLOT_GPA, PAGE, PRIV), 0);
		expect_fault(&e, NOSLOT_GPA, KVM_MEMORY_EXIT_FLAG_PRIVATE);
		CHECK_EQ(e_cap(&e, GMEM_CAP_FAULT_ACCESS_FLAGS, 0), 0);
		expect_fault(&e, NOSLOT_GPA, KVM_MEMORY_EXIT_FLAG_PRIVATE);
		/* shared again: MMIO */
		CHECK_EQ(e_attr(&e, NOSLOT_GPA, PAGE, 0), 0);
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_MMIO);
		CHECK_EQ(e.run->mmio.phys_addr, NOSLOT_GPA);
		memcpy(e.run->mmio.data, &v, 8);
		CHECK_EQ(e_run(&e), 0);
		CHECK_EQ(e.run->exit_reason, KVM_EXIT_IO);
		CHECK_EQ(*((uint8_t *)e.run + e.run->io.data_offset), 0xcd);
		env_fini(&e);
	}
	tap_result("a PRIVATE GPA with no memslot: memory fault with PRIVATE "
		   "(private_mem_kvm_exits_test)");
}

static void test_fault_flags(void)
{
	for (int ty = 0; ty < 2; ty++)
		FOR_LAYERS(io)
		{
			struct env e;
			uint64_t w = 0;

			env_init(&e, io, ty);
			e_code(&e, write_5000, sizeof(write_5000));
			/* an NW denial: no access bits unless asked for */
			CHECK_EQ(e_attr(&e, 0x5000, PAGE, NW), 0);
			expect_fault(&e, 0x5000, 0);
			CHECK_EQ(gmem_vcpu_access(e.vcpu, 0x5000, &w, 8,
						  GMEM_ACCESS_WRITE),
				 -EFAULT);
			CHECK_EQ(e.run->memory_fault.flags, 0);
			CHECK_EQ(e_check(&e, GMEM_CAP_FAULT_ACCESS_FLAGS), 1);
			CHECK_EQ(tvm_enable_cap(&(struct tvm){.ioctl = io,
							      .vm = e.vm,
							      .fd = e.vmfd},
						GMEM_CAP_FAULT_ACCESS_FLAGS, 0,
						1),
				 -EINVAL);
			CHECK_EQ(tvm_enable_cap(&(struct tvm){.ioctl = io,
							      .vm = e.vm,
							      .fd = e.vmfd},
						GMEM_CAP_FAULT_ACCESS_FLAGS, 1,
						0),
				 -EINVAL);
			expect_fault(&e, 0x5000, 0);
			CHECK_EQ(e_cap(&e, GMEM_CAP_FAULT_ACCESS_FLAGS, 0), 0);
			expect_fault(&e, 0x5000, KVM_MEMORY_EXIT_FLAG_WRITE);
			CHECK_EQ(e_attr(&e, 0x5000, PAGE, NR | NW | NX), 0);
			CHECK_EQ(gmem_vcpu_access(e.vcpu, 0x5008, &w, 8,
						  GMEM_ACCESS_READ),
				 -EFAULT);
			CHECK_EQ(e.run->memory_fault.flags,
				 KVM_MEMORY_EXIT_FLAG_READ);
			CHECK_EQ(gmem_vcpu_access(e.vcpu, 0x5008, &w, 8,
						  GMEM_ACCESS_FETCH),
				 -EFAULT);
			CHECK_EQ(e.run->memory_fault.flags,
				 KVM_MEMORY_EXIT_FLAG_EXEC);
			if (ty == KVM_X86_SW_PROTECTED_VM) {
				/* private, no guest_memfd: PRIVATE alone */
				CHECK_EQ(e_attr(&e, 0x5000, PAGE, PRIV), 0);
				expect_fault(&e, 0x5000,
					     KVM_MEMORY_EXIT_FLAG_PRIVATE);
			}
			CHECK_EQ(e_attr(&e, 0x5000, PAGE, 0), 0);
			CHECK_EQ(e_run(&e), 0);
			CHECK_EQ(e.run->exit_reason, KVM_EXIT_IO);
			CHECK_EQ(e.mem[0x5000], 0x77);
			env_fini(&e);
		}
	tap_result("memory_fault.flags: PRIVATE or nothing; R/W/X only with "
		   "GMEM_CAP_FAULT_ACCESS_FLAGS");
}

int main(void)
{
	tap_plan(24, 120);
	test_caps();
	test_vcpu_ids();
	test_max_vcpu_id_cap();
	test_disable_nx_huge_pages();
	test_max_vcpus();
	test_tsc_khz();
	test_rdtsc_rate();
	test_mp_state();
	test_get_cpuid2();
	test_setup_calls();
	test_boot_cpu_id();
	test_platform_info();
	test_emulation_failure();
	test_cpuid_after_run();
	test_guest_cpuid();
	test_immediate_exit();
	test_immediate_exit_mmio_write();
	test_run_entry();
	test_sync_regs_cap();
	test_sync_regs_flow();
	test_sync_regs_refused();
	test_sync_regs_halted();
	test_private_noslot();
	test_fault_flags();
	return tap_done();
}
