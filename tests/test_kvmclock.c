// SPDX-License-Identifier: MIT
/*
 * KVM's paravirtual platform pieces through the façade: kvmclock
 * (KVM_GET/SET_CLOCK and their errnos, the pvclock structure the
 * MSR_KVM_SYSTEM_TIME_NEW write makes the vCPU keep in guest memory, its
 * contents checked against the guest's TSC, and the clock read from it
 * between two KVM_GET_CLOCKs, the wall clock, KVM_KVMCLOCK_CTRL), steal
 * time, KVM_CAP_DISABLE_QUIRKS2 with MONITOR/MWAIT and IA32_MISC_ENABLE,
 * and the fix-hypercall quirk (the other vendor's instruction patched to
 * the host's, or #UD).
 */
#include <sched.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

#include <gmem/gmem.h>
#include <gmem/kvm.h>

#include "long_mode.h"
#include "tap.h"

#define MEM (4ULL << 20)
#define CODE 0x10000ULL
#define PVTI 0x30000ULL /* the pvclock structure */
#define WALL 0x31000ULL /* the wall clock */
#define IDT 0x32000ULL	/* #UD handler at UD_HANDLER */
#define UD_HANDLER 0x33000ULL
#define STACK 0x20000ULL

#define MSR_KVM_WALL_CLOCK_NEW 0x4b564d00
#define MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01
#define MSR_KVM_SYSTEM_TIME 0x12
#define MSR_KVM_STEAL_TIME 0x4b564d03
#define STEAL 0x34000ULL /* struct kvm_steal_time */
#define PVCLOCK_GUEST_STOPPED 2
#define MSR_IA32_MISC_ENABLE 0x1a0

struct pvti {
	uint32_t version, pad0;
	uint64_t tsc_timestamp, system_time;
	uint32_t mul;
	int8_t shift;
	uint8_t flags, pad[2];
};

/* ioctl arguments with room for their entries (clang: no VLA members). */
union msrs {
	struct kvm_msrs h;
	uint8_t b[sizeof(struct kvm_msrs) + 2 * sizeof(struct kvm_msr_entry)];
};

union cpuid {
	struct kvm_cpuid2 h;
	uint8_t b[sizeof(struct kvm_cpuid2) +
		  64 * sizeof(struct kvm_cpuid_entry2)];
};

union msr_list {
	struct kvm_msr_list l;
	uint8_t b[sizeof(struct kvm_msr_list) + 64 * sizeof(uint32_t)];
};

static int sys, vmfd, vcpufd;
static struct kvm_run *run;
static uint8_t *mem;

static void setup(void)
{
	struct kvm_sregs sregs;
	uint64_t *pml4 = NULL, *pdpt, *idt;
	int size;

	sys = gmem_open();
	vmfd = gmem_ioctl(sys, KVM_CREATE_VM, 0);
	REQUIRE(vmfd >= 0);
	mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(mem != MAP_FAILED);
	struct kvm_userspace_memory_region region = {
		.memory_size = MEM, .userspace_addr = (uintptr_t)mem};
	REQUIRE(gmem_ioctl(vmfd, KVM_SET_USER_MEMORY_REGION, &region) == 0);
	pml4 = (uint64_t *)(mem + 0x1000);
	pdpt = (uint64_t *)(mem + 0x2000);
	pml4[0] = 0x2000 | 3;
	pdpt[0] = 0x83;
	/* GDT at 0x3000: null, code 8, data 16. */
	((uint64_t *)(mem + 0x3000))[1] = 0x00af9b000000ffffull;
	((uint64_t *)(mem + 0x3000))[2] = 0x00cf93000000ffffull;
	/* IDT vector 6 (#UD): interrupt gate to UD_HANDLER. */
	idt = (uint64_t *)(mem + IDT + 6 * 16);
	idt[0] = (UD_HANDLER & 0xffff) | 8ull << 16 | 0x8eull << 40 |
		 ((UD_HANDLER >> 16) & 0xffff) << 48;
	idt[1] = 0;
	/* The handler: report RIP of the fault on port 0x66, then halt. */
	static const uint8_t ud[] = {
		0x48, 0x8b, 0x04, 0x24, /* mov rax, [rsp] */
		0xe7, 0x66,		/* out 0x66, eax */
		0xf4,			/* hlt */
	};
	memcpy(mem + UD_HANDLER, ud, sizeof(ud));

	vcpufd = gmem_ioctl(vmfd, KVM_CREATE_VCPU, 0);
	REQUIRE(vcpufd >= 0);
	size = gmem_ioctl(sys, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = gmem_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpufd,
			0);
	REQUIRE(run != MAP_FAILED);
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_SREGS, &sregs) == 0);
	long_mode_sregs(&sregs, 0x80050033, 0x1000);
	sregs.gdt.base = 0x3000;
	sregs.gdt.limit = 23;
	sregs.idt.base = IDT;
	sregs.idt.limit = 0xfff;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_SREGS, &sregs) == 0);
}

static void teardown(void)
{
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	munmap(mem, MEM);
}

/*
 * Run @code from @at with a fresh stack.  Code the VMM writes where the
 * vCPU already ran other code needs a new address: the CPU model keeps
 * its decodes until the guest itself writes the page.
 */
static void start_at(uint64_t at, const uint8_t *code, size_t len)
{
	struct kvm_regs regs = {.rip = at, .rsp = STACK, .rflags = 2};

	memcpy(mem + at, code, len);
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);
}

static void start(const uint8_t *code, size_t len)
{
	start_at(CODE, code, len);
}

static uint32_t io_data(void)
{
	return *(uint32_t *)((uint8_t *)run + run->io.data_offset);
}

/* The guest's clock from its structure at TSC @tsc (the ABI's formula). */
static uint64_t pvclock_at(const struct pvti *p, uint64_t tsc)
{
	uint64_t d = tsc - p->tsc_timestamp;

	d = p->shift < 0 ? d >> -p->shift : d << p->shift;
	return p->system_time +
	       (uint64_t)(((unsigned __int128)d * p->mul) >> 32);
}

static void test_clock_ioctls(void)
{
	struct kvm_clock_data d = {0}, e;

	setup();
	CHECK_EQ(gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_ADJUST_CLOCK),
		 KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME |
			 KVM_CLOCK_HOST_TSC);
	d.flags = 1; /* not one of KVM_CLOCK_VALID_FLAGS */
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_SET_CLOCK, &d), EINVAL);
	d.flags = 1u << 4;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_SET_CLOCK, &d), EINVAL);
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_SET_CLOCK, NULL), EFAULT);
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_GET_CLOCK, NULL), EFAULT);
	/* GET's result goes back to SET as it is. */
	CHECK_EQ(gmem_ioctl(vmfd, KVM_GET_CLOCK, &d), 0);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_SET_CLOCK, &d), 0);
	d.clock = 1000000000000ull;
	d.flags = 0;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_SET_CLOCK, &d), 0);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_GET_CLOCK, &e), 0);
	CHECK(e.clock >= d.clock && e.clock - d.clock < 10000000000ull);
	/* One vCPU: the master clock, with the host TSC and wall time. */
	CHECK_EQ(e.flags, KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME |
				  KVM_CLOCK_HOST_TSC);
	CHECK(e.realtime != 0 && e.host_tsc != 0);
	/* REALTIME: the time since d.realtime is added (60 s here). */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	d.clock = 0;
	d.flags = KVM_CLOCK_REALTIME;
	d.realtime = (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec -
		     60000000000ull;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_SET_CLOCK, &d), 0);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_GET_CLOCK, &e), 0);
	CHECK(e.clock >= 60000000000ull && e.clock < 70000000000ull);
	teardown();

	/* No vCPU yet: no master clock, flags 0. */
	sys = gmem_open();
	vmfd = gmem_ioctl(sys, KVM_CREATE_VM, 0);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_GET_CLOCK, &e), 0);
	CHECK_EQ(e.flags, 0);
	CHECK_EQ(e.host_tsc, 0);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_GET/SET_CLOCK: flags, errnos, REALTIME adjustment");
}

static void test_pvclock(void)
{
	/*
	 * Enable kvmclock at PVTI, read the TSC, report it; then the wall
	 * clock at WALL; then (after the VMM set the clock) report again.
	 */
	static const uint8_t code[] = {
		0xb9, 0x01, 0x4d, 0x56, 0x4b, /* mov ecx, SYSTEM_TIME_NEW */
		0xb8, 0x01, 0x00, 0x03, 0x00, /* mov eax, PVTI | 1 */
		0x31, 0xd2,		      /* xor edx, edx */
		0x0f, 0x30,		      /* wrmsr */
		0x0f, 0x31,		      /* rdtsc */
		0xe7, 0x10,		      /* out 0x10, eax (low TSC) */
		0x89, 0xd0,		      /* mov eax, edx */
		0xe7, 0x11,		      /* out 0x11, eax (high) */
		0xb9, 0x00, 0x4d, 0x56, 0x4b, /* mov ecx, WALL_CLOCK_NEW */
		0xb8, 0x00, 0x10, 0x03, 0x00, /* mov eax, WALL */
		0x31, 0xd2,		      /* xor edx, edx */
		0x0f, 0x30,		      /* wrmsr */
		0x8b, 0x04, 0x25, 0x00, 0x10, 0x03, 0x00, /* mov eax,[WALL] */
		0xe7, 0x12,				  /* out 0x12, eax */
		0x0f, 0x31,				  /* rdtsc */
		0xe7, 0x10,				  /* out 0x10, eax */
		0x89, 0xd0,				  /* mov eax, edx */
		0xe7, 0x11,				  /* out 0x11, eax */
		0xf4,					  /* hlt */
	};
	struct kvm_clock_data c0, c1;
	struct pvti p, q;
	uint64_t tsc, clk;
	uint32_t lo;

	setup();
	/* Odd junk in the guest's versions: made even, then bumped. */
	((struct pvti *)(mem + PVTI))->version = 7;
	*(uint32_t *)(mem + WALL) = 3;
	start(code, sizeof(code));
	CHECK_EQ(gmem_ioctl(vmfd, KVM_GET_CLOCK, &c0), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(run->io.port, 0x10);
	lo = io_data();
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(run->io.port, 0x11);
	tsc = lo | (uint64_t)io_data() << 32;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_GET_CLOCK, &c1), 0);
	memcpy(&p, mem + PVTI, sizeof(p));
	/* (7 + 1) | 1 = 9 while written, 10 after. */
	CHECK_EQ(p.version, 10);
	CHECK_EQ(p.flags, 1); /* PVCLOCK_TSC_STABLE_BIT */
	/* 1 GHz: KVM's scale for 10^9 Hz is shift 1, mul 2^31. */
	CHECK_EQ(p.shift, 1);
	CHECK_EQ(p.mul, 0x80000000u);
	CHECK(p.tsc_timestamp <= tsc);
	clk = pvclock_at(&p, tsc);
	CHECK(c0.clock <= clk && clk <= c1.clock);
	tap_result("MSR_KVM_SYSTEM_TIME_NEW: the pvclock structure, its clock "
		   "between two KVM_GET_CLOCKs");

	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(run->io.port, 0x12);
	CHECK_EQ(io_data(), 6); /* 3 made even (4), then 5 and 6 */
	/* The epoch: wall time minus kvmclock, to within a few seconds. */
	struct timespec ts;
	clock_gettime(CLOCK_REALTIME, &ts);
	uint32_t sec = *(uint32_t *)(mem + WALL + 4);
	CHECK((uint64_t)ts.tv_sec - sec - c1.clock / 1000000000ull < 5);
	CHECK(*(uint32_t *)(mem + WALL + 8) < 1000000000u);
	union msrs m = {.h.nmsrs = 2};

	m.h.entries[0].index = MSR_KVM_SYSTEM_TIME_NEW;
	m.h.entries[1].index = MSR_KVM_WALL_CLOCK_NEW;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_MSRS, &m), 2);
	CHECK_EQ(m.h.entries[0].data, PVTI | 1);
	CHECK_EQ(m.h.entries[1].data, WALL);
	tap_result("MSR_KVM_WALL_CLOCK_NEW: the epoch, versions; the MSRs "
		   "read back");

	/* KVM_SET_CLOCK: the structure is rewritten before the guest runs. */
	struct kvm_clock_data d = {.clock = 500000000000ull};
	CHECK_EQ(gmem_ioctl(vmfd, KVM_SET_CLOCK, &d), 0);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_GET_CLOCK, &c0), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	lo = io_data();
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	tsc = lo | (uint64_t)io_data() << 32;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_GET_CLOCK, &c1), 0);
	memcpy(&q, mem + PVTI, sizeof(q));
	CHECK_EQ(q.version, 12);
	CHECK(q.tsc_timestamp >= p.tsc_timestamp);
	clk = pvclock_at(&q, tsc);
	CHECK(c0.clock <= clk && clk <= c1.clock);
	CHECK(clk >= d.clock);
	tap_result("KVM_SET_CLOCK: the structure follows, monotonic from the "
		   "new value");
	teardown();
}

/*
 * The old MSR on vCPU 0 (boot_vcpu_runs_old_kvmclock): no master clock,
 * so no TSC_STABLE in the structure and flags 0 from KVM_GET_CLOCK.
 */
static void test_old_msr(void)
{
	static const uint8_t code[] = {
		0xb9, 0x12, 0x00, 0x00, 0x00, /* mov ecx, SYSTEM_TIME */
		0xb8, 0x01, 0x00, 0x03, 0x00, /* mov eax, PVTI | 1 */
		0x31, 0xd2, 0x0f, 0x30,	      /* xor edx, edx; wrmsr */
		0xf4,
	};
	struct kvm_clock_data c;

	setup();
	start(code, sizeof(code));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_HLT);
	CHECK_EQ(((struct pvti *)(mem + PVTI))->flags, 0);
	CHECK_EQ(((struct pvti *)(mem + PVTI))->version, 2);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_GET_CLOCK, &c), 0);
	CHECK_EQ(c.flags, 0);
	teardown();
	tap_result("the old MSR on vCPU 0: unstable clock, as KVM's");
}

static void disable_quirks(uint64_t q, int expect)
{
	struct kvm_enable_cap cap = {.cap = KVM_CAP_DISABLE_QUIRKS2,
				     .args[0] = q};

	if (expect)
		CHECK_ERRNO(gmem_ioctl(vmfd, KVM_ENABLE_CAP, &cap), expect);
	else
		CHECK_EQ(gmem_ioctl(vmfd, KVM_ENABLE_CAP, &cap), 0);
}

static void set_msr(uint32_t idx, uint64_t v, int expect)
{
	union msrs m = {.h.nmsrs = 1};

	m.h.entries[0].index = idx;
	m.h.entries[0].data = v;

	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_MSRS, &m), expect);
}

/* The guest's CPUID with leaf 1 ECX bit 3 (MONITOR) as @on. */
static void set_monitor_cpuid(bool on)
{
	union cpuid c = {.h.nent = 64};

	REQUIRE(gmem_ioctl(sys, KVM_GET_SUPPORTED_CPUID, &c) == 0);
	for (unsigned i = 0; i < c.h.nent; i++)
		if (c.h.entries[i].function == 1) {
			c.h.entries[i].ecx &= ~(1u << 3);
			if (on)
				c.h.entries[i].ecx |= 1u << 3;
		}
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_CPUID2, &c) == 0);
}

/* MONITOR, MWAIT, OUT 0x10 (done): a #UD reports its RIP on 0x66. */
static const uint8_t mwait_code[] = {
	0xb8, 0x00, 0x00, 0x01, 0x00, /* mov eax, CODE */
	0x31, 0xc9, 0x31, 0xd2,	      /* xor ecx, ecx; xor edx, edx */
	0x0f, 0x01, 0xc8,	      /* monitor (at CODE + 9) */
	0x0f, 0x01, 0xc9,	      /* mwait (at CODE + 12) */
	0xe6, 0x10,		      /* out 0x10, al */
	0xf4,
};

/* 0: MONITOR and MWAIT ran as NOPs; else the RIP of the #UD. */
static uint64_t run_mwait(void)
{
	start(mwait_code, sizeof(mwait_code));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	if (run->io.port == 0x10)
		return 0;
	CHECK_EQ(run->io.port, 0x66);
	return io_data();
}

static void test_quirks(void)
{
	setup();
	CHECK_EQ(gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_DISABLE_QUIRKS2),
		 0x7ff);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_DISABLE_QUIRKS),
		 1);
	disable_quirks(1ull << 11, EINVAL);
	struct kvm_enable_cap cap = {.cap = KVM_CAP_DISABLE_QUIRKS2,
				     .flags = 1};
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_ENABLE_CAP, &cap), EINVAL);
	/* The old capability drops bits it does not know. */
	cap = (struct kvm_enable_cap){.cap = KVM_CAP_DISABLE_QUIRKS,
				      .args[0] = ~0ull & ~0x7ffull};
	CHECK_EQ(gmem_ioctl(vmfd, KVM_ENABLE_CAP, &cap), 0);
	tap_result("KVM_CAP_DISABLE_QUIRKS2: KVM_X86_VALID_QUIRKS, errnos");

	/* Quirks on: MONITOR/MWAIT are NOPs even without CPUID's bit. */
	set_monitor_cpuid(false);
	CHECK_EQ(run_mwait(), 0);
	/* MISC_ENABLE's MWAIT bit is kept, CPUID unchanged (the quirk). */
	set_msr(MSR_IA32_MISC_ENABLE, 1ull << 18, 1);
	tap_result("MONITOR/MWAIT with the quirks on: NOPs");

	/* MWAIT_NEVER_UD_FAULTS off, no CPUID bit: #UD at MONITOR. */
	disable_quirks(KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS, 0);
	CHECK_EQ(run_mwait(), CODE + 9);
	/* As 6.12's x86.c: disabling adds to the set, nothing comes back. */
	disable_quirks(0, 0);
	CHECK_EQ(run_mwait(), CODE + 9);
	tap_result("MWAIT_NEVER_UD_FAULTS disabled: #UD without CPUID.MONITOR");

	/*
	 * MISC_ENABLE_NO_MWAIT off too: the MSR's bit drives CPUID.  It is
	 * set already, so clear and set it for CPUID to follow.
	 */
	disable_quirks(KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT, 0);
	set_msr(MSR_IA32_MISC_ENABLE, 0, 1);
	CHECK_EQ(run_mwait(), CODE + 9);
	set_msr(MSR_IA32_MISC_ENABLE, 1ull << 18, 1);
	CHECK_EQ(run_mwait(), 0);
	union cpuid c = {.h.nent = 64};
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_CPUID2, &c), 0);
	for (unsigned i = 0; i < c.h.nent; i++)
		if (c.h.entries[i].function == 1)
			CHECK(c.h.entries[i].ecx & (1u << 3));
	set_msr(MSR_IA32_MISC_ENABLE, 0, 1);
	CHECK_EQ(run_mwait(), CODE + 9);
	tap_result("MISC_ENABLE_NO_MWAIT disabled: CPUID.MONITOR follows "
		   "IA32_MISC_ENABLE.MWAIT");

	/* The guest's MISC_ENABLE: PEBS/BTS unavailable are read-only. */
	static const uint8_t wr[] = {
		0xb9, 0xa0, 0x01, 0x00, 0x00, /* mov ecx, MISC_ENABLE */
		0x0f, 0x32,		      /* rdmsr */
		0xe7, 0x10,		      /* out 0x10, eax */
		0x35, 0x00, 0x10, 0x00, 0x00, /* xor eax, PEBS_UNAVAIL */
		0x0f, 0x30,		      /* wrmsr: #GP */
		0xf4,
	};
	set_msr(MSR_IA32_MISC_ENABLE, (1ull << 11) | (1ull << 12), 1);
	start_at(CODE + 0x800, wr, sizeof(wr));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(io_data(), (1u << 11) | (1u << 12));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	/* #GP with no handler: the IDT has none, so a shutdown. */
	CHECK_EQ(run->exit_reason, KVM_EXIT_SHUTDOWN);
	teardown();
	tap_result("IA32_MISC_ENABLE from the guest: read-only PMU bits #GP");

	/* Above CPL 0 MONITOR is #UD whatever the quirks; bad ECX #GP. */
	setup();
	static const uint8_t gp[] = {
		0xb8, 0x00, 0x00, 0x01, 0x00, /* mov eax, CODE */
		0xb9, 0x02, 0x00, 0x00, 0x00, /* mov ecx, 2 */
		0x0f, 0x01, 0xc9,	      /* mwait: #GP (no handler) */
		0xf4,
	};
	start(gp, sizeof(gp));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_SHUTDOWN);
	teardown();
	tap_result("MWAIT with reserved ECX bits: #GP before KVM's rules");
}

/*
 * The other vendor's hypercall instruction (VMMCALL on an Intel host,
 * VMCALL on an AMD one: the native one is the host's, as KVM's vendor
 * module's), with KVM_HC_SCHED_YIELD: with the quirk on it is overwritten
 * with the native one, which then runs (RAX 0); with it off the guest
 * takes #UD and the code is unchanged.  The guest's CPUID vendor does
 * not matter.
 */
static uint8_t hc_code[] = {
	0xb8, 0x0b, 0x00, 0x00, 0x00, /* mov eax, KVM_HC_SCHED_YIELD */
	0x31, 0xdb,		      /* xor ebx, ebx */
	0x0f, 0x01, 0xd9,	      /* the other one (CODE + 7) */
	0xe7, 0x10,		      /* out 0x10, eax */
	0xb8, 0x01, 0x00, 0x00, 0x00, /* mov eax, VAPIC_POLL_IRQ */
	0x0f, 0x01, 0xc1,	      /* the native one (CODE + 17) */
	0xe7, 0x11,		      /* out 0x11, eax */
	0xf4,
};

static bool host_is_amd(void)
{
	uint32_t a = 0, b, c, d;

	__asm__("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
	return b == 0x68747541 || b == 0x6f677948;
}

static void test_fix_hypercall(void)
{
	const char *native = host_is_amd() ? "\x0f\x01\xd9" : "\x0f\x01\xc1";
	const char *other = host_is_amd() ? "\x0f\x01\xc1" : "\x0f\x01\xd9";

	memcpy(hc_code + 7, other, 3);
	memcpy(hc_code + 17, native, 3);
	setup();
	start(hc_code, sizeof(hc_code));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(run->io.port, 0x10);
	CHECK_EQ(io_data(), 0);
	CHECK_EQ(memcmp(mem + CODE + 7, native, 3), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(run->io.port, 0x11);
	CHECK_EQ(io_data(), 0);
	teardown();
	tap_result("FIX_HYPERCALL_INSN on: the other vendor's instruction "
		   "patched to the host's, SCHED_YIELD and VAPIC_POLL_IRQ "
		   "return 0");

	setup();
	disable_quirks(KVM_X86_QUIRK_FIX_HYPERCALL_INSN, 0);
	start(hc_code, sizeof(hc_code));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(run->io.port, 0x66);
	CHECK_EQ(io_data(), CODE + 7);
	CHECK_EQ(memcmp(mem + CODE + 7, other, 3), 0);
	teardown();
	tap_result("FIX_HYPERCALL_INSN off: #UD, the instruction unchanged");

	/* The guest's CPUID vendor changes nothing: the host's is native. */
	setup();
	union cpuid c = {.h.nent = 64};
	REQUIRE(gmem_ioctl(sys, KVM_GET_SUPPORTED_CPUID, &c) == 0);
	c.h.entries[0].ebx = 0x68747541; /* "AuthenticAMD" */
	c.h.entries[0].edx = 0x69746e65;
	c.h.entries[0].ecx = 0x444d4163;
	REQUIRE(c.h.entries[0].function == 0);
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_CPUID2, &c) == 0);
	start(hc_code, sizeof(hc_code));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(memcmp(mem + CODE + 7, native, 3), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(run->io.port, 0x11);
	CHECK_EQ(memcmp(mem + CODE + 17, native, 3), 0);
	teardown();
	tap_result("an AMD guest CPUID: the host's instruction stays native");
}

static void test_cpuid_msrs(void)
{
	union cpuid c = {.h.nent = 64};
	union msr_list l = {.l.nmsrs = 64};
	unsigned found = 0;

	sys = gmem_open();
	CHECK_EQ(gmem_ioctl(sys, KVM_GET_SUPPORTED_CPUID, &c), 0);
	for (unsigned i = 0; i < c.h.nent; i++) {
		if (c.h.entries[i].function == 0x40000000) {
			CHECK_EQ(c.h.entries[i].eax, 0x40000001);
			CHECK_EQ(memcmp(&c.h.entries[i].ebx, "KVMKVMKVM\0\0\0",
					12),
				 0);
			found |= 1;
		}
		if (c.h.entries[i].function == 0x40000001) {
			/* CLOCKSOURCE, NOP_IO_DELAY, CLOCKSOURCE2,
			 * STEAL_TIME, PV_UNHALT, PV_SEND_IPI,
			 * POLL_CONTROL, PV_SCHED_YIELD,
			 * CLOCKSOURCE_STABLE_BIT */
			CHECK_EQ(c.h.entries[i].eax, 0x010038abu);
			found |= 2;
		}
		if (c.h.entries[i].function == 1)
			CHECK(!(c.h.entries[i].ecx &
				(1u << 3))); /* no MONITOR */
	}
	CHECK_EQ(found, 3);
	CHECK_EQ(gmem_ioctl(sys, KVM_GET_MSR_INDEX_LIST, &l), 0);
	found = 0;
	for (unsigned i = 0; i < l.l.nmsrs; i++)
		found |= (l.l.indices[i] == 0x11) |
			 (l.l.indices[i] == 0x12) << 1 |
			 (l.l.indices[i] == 0x4b564d00) << 2 |
			 (l.l.indices[i] == 0x4b564d01) << 3 |
			 (l.l.indices[i] == MSR_IA32_MISC_ENABLE) << 4 |
			 (l.l.indices[i] == MSR_KVM_STEAL_TIME) << 5 |
			 (l.l.indices[i] == 0x4b564d05) << 6; /* POLL_CONTROL */
	CHECK_EQ(found, 0x7f);
	gmem_close(sys);
	tap_result("CPUID 0x40000000/1 and the MSR index list");
}

/* The calling thread's run delay, as the steal time counts it. */
static uint64_t thread_run_delay(void)
{
	unsigned long long exec = 0, delay = 0;
	FILE *f = fopen("/proc/thread-self/schedstat", "r");

	REQUIRE(f);
	REQUIRE(fscanf(f, "%llu %llu", &exec, &delay) == 2);
	fclose(f);
	return delay;
}

struct steal {
	uint64_t steal;
	uint32_t version, flags;
	uint8_t preempted, pad[47];
};

/*
 * MSR_KVM_STEAL_TIME: reserved bits refused, the value read back; each
 * KVM_RUN then records the run delay the vCPU's thread gathered since
 * the last one, between two version bumps (junk made even), preempted
 * cleared; the guest's own WRMSR records at once.
 */
static void test_steal_time(void)
{
	static const uint8_t code[] = {
		0xe6, 0x10, /* 1: out 0x10, al */
		0xeb, 0xfc, /* jmp 1b */
	};
	static const uint8_t wrmsr[] = {
		0xb9, 0x03, 0x4d, 0x56, 0x4b, /* mov ecx, STEAL_TIME */
		0xb8, 0x01, 0x40, 0x03, 0x00, /* mov eax, STEAL | 1 */
		0x31, 0xd2, 0x0f, 0x30,	      /* xor edx, edx; wrmsr */
		0xe6, 0x11,		      /* out 0x11, al */
	};
	volatile struct steal *st = (struct steal *)(mem + STEAL);
	union msrs m = {.h.nmsrs = 1};
	uint64_t before, after, d0, d1;

	setup();
	set_msr(MSR_KVM_STEAL_TIME, STEAL | 2, 0); /* reserved bit 1 */
	set_msr(MSR_KVM_STEAL_TIME, STEAL | 0x20, 0);
	set_msr(MSR_KVM_STEAL_TIME, STEAL | 1, 1);
	m.h.entries[0].index = MSR_KVM_STEAL_TIME;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_MSRS, &m), 1);
	CHECK_EQ(m.h.entries[0].data, STEAL | 1);

	start(code, sizeof(code));
	st->version = 7; /* junk, odd */
	st->preempted = 1;
	d0 = thread_run_delay();
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	d1 = thread_run_delay();
	CHECK_EQ(run->io.port, 0x10);
	CHECK_EQ(st->version, 10);
	CHECK_EQ(st->preempted, 0);
	/*
	 * From here the steal is the delay between the first record and the
	 * last: at most what the thread gathered around both, at least what
	 * it gathered between them.
	 */
	st->steal = 0;
	for (int k = 0; k < 3; k++) {
		before = st->steal;
		sched_yield();
		after = thread_run_delay();
		CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
		CHECK_EQ(st->version, 12 + 2 * (unsigned)k);
		CHECK(st->steal >= before);
	}
	CHECK(st->steal <= thread_run_delay() - d0);
	CHECK(st->steal >= after - d1);
	/* Off: nothing more is written. */
	set_msr(MSR_KVM_STEAL_TIME, STEAL, 1);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(st->version, 16);

	/* The guest's WRMSR records before its next instruction. */
	start_at(CODE + 0x100, wrmsr, sizeof(wrmsr));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(run->io.port, 0x11);
	CHECK_EQ(st->version, 18); /* off at KVM_RUN: the WRMSR's record */
	teardown();
	tap_result("MSR_KVM_STEAL_TIME: the thread's run delay recorded at "
		   "each KVM_RUN, between version bumps");
}

/*
 * KVM_KVMCLOCK_CTRL: EINVAL while kvmclock is off; then the next entry's
 * update sets PVCLOCK_GUEST_STOPPED, which stays until the guest clears
 * it, and a later update does not set it again on its own.
 */
static void test_kvmclock_ctrl(void)
{
	static const uint8_t code[] = {
		0xe6, 0x10, /* 1: out 0x10, al */
		0xeb, 0xfc, /* jmp 1b */
	};
	volatile struct pvti *p = (struct pvti *)(mem + PVTI);
	struct kvm_clock_data c = {0};
	struct gmem_vcpu *vcpu;

	setup();
	REQUIRE(gmem_vcpu_from_handle(vcpufd, &vcpu) == 0);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_KVMCLOCK_CTRL),
		 1);
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_KVMCLOCK_CTRL, 0), EINVAL);
	start(code, sizeof(code));
	set_msr(MSR_KVM_SYSTEM_TIME_NEW, PVTI | 1, 1);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(p->flags & PVCLOCK_GUEST_STOPPED, 0);
	CHECK_EQ(gmem_vcpu_kvmclock_ctrl(vcpu), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(p->flags & PVCLOCK_GUEST_STOPPED, PVCLOCK_GUEST_STOPPED);
	/* A clock update keeps it while the guest has not cleared it. */
	CHECK_EQ(gmem_ioctl(vmfd, KVM_SET_CLOCK, &c), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(p->flags & PVCLOCK_GUEST_STOPPED, PVCLOCK_GUEST_STOPPED);
	p->flags &= (uint8_t)~PVCLOCK_GUEST_STOPPED;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_SET_CLOCK, &c), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_RUN, 0), 0);
	CHECK_EQ(p->flags & PVCLOCK_GUEST_STOPPED, 0);
	gmem_vcpu_put(vcpu);
	teardown();
	tap_result("KVM_KVMCLOCK_CTRL: PVCLOCK_GUEST_STOPPED at the next "
		   "clock update");
}

int main(void)
{
	tap_plan(17, 60);
	test_clock_ioctls();
	test_pvclock();
	test_old_msr();
	test_quirks();
	test_fix_hypercall();
	test_cpuid_msrs();
	test_steal_time();
	test_kvmclock_ctrl();
	return tap_done();
}
