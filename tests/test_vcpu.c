// SPDX-License-Identifier: MIT
/*
 * The vCPU through the façade only, set up the way the kernel's KVM
 * selftests set up long mode (page tables and segments written by the VMM,
 * KVM_SET_SREGS/KVM_SET_REGS, then KVM_RUN on the mmap'ed kvm_run): port
 * I/O both ways, an MMIO read completed by the VMM, a MAP_GPA_RANGE
 * hypercall exit and its return value, a memory-fault exit re-executed
 * after the VMM fixes the attribute, HLT, a kick from another thread,
 * immediate_exit, string I/O (REP INS/OUTS) as KVM batches it, the
 * x87/SSE state ioctls (FPU, XSAVE, XCRS), and the rest of what a VMM
 * saves and restores: the MSR index lists, vCPU events, debug registers;
 * KVM_NMI delivered in a guest, and INIT-SIPI from one vCPU to another;
 * KVM_CAP_ENFORCE_PV_FEATURE_CPUID and KVM_X86_DISABLE_EXITS_HLT.
 */
#include <pthread.h>
#include <sched.h>
#include <sys/eventfd.h>
#include <sys/mman.h>

#include <gmem/gmem.h>
#include <gmem/kvm.h>

#include "long_mode.h"
#include "tap.h"

#define MEM (4ULL << 20)
#define CODE 0x10000ULL
#define MMIO_GPA 0x100000000ULL /* 4 GiB: no slot there */

static int sys, vmfd, vcpufd;
static struct kvm_run *run;
static uint8_t *mem;

static const uint8_t code[] = {
	0xb0, 0x2a, /* mov al, 42 */
	0xe6, 0x10, /* out 0x10, al */
	0xe4, 0x11, /* in al, 0x11 */
	0xe6, 0x12, /* out 0x12, al */
	0x48, 0xa1, 0x08, 0,	0,    0, 1, 0,
	0,    0,		   /* mov rax, [4 GiB + 8] */
	0xe7, 0x13,		   /* out 0x13, eax */
	0xb8, 12,   0,	  0,	0, /* mov eax, 12 (MAP_GPA_RANGE) */
	0xbb, 0,    0x30, 0,	0, /* mov ebx, 0x3000 */
	0xb9, 1,    0,	  0,	0, /* mov ecx, 1 */
	0xba, 0x10, 0,	  0,	0, /* mov edx, 0x10 (encrypted) */
	0x0f, 0x01, 0xc1,	   /* vmcall */
	0xe7, 0x14,		   /* out 0x14, eax */
	0xc6, 0x04, 0x25, 0x00, 0x50, 0, 0, 0x77, /* mov byte [0x5000], 0x77 */
	0xb0, 0x01,				  /* mov al, 1 */
	0xe6, 0x15,				  /* out 0x15, al */
	0xf4,					  /* hlt */
	0x48, 0xff, 0x04, 0x25,			  /* 1: inc qword [SPINS] */
	0x00, 0x60, 0x00, 0x00,			  /* (SPINS) */
	0xeb, 0xf6,				  /* jmp 1b */
};

/* The spin loop's counter: it moves only while the vCPU runs. */
#define SPINS 0x6000

static void setup(bool irqchip)
{
	struct kvm_sregs sregs;
	struct kvm_regs regs = {0};
	uint64_t *pml4, *pdpt;
	int size;

	sys = gmem_open();
	vmfd = gmem_ioctl(sys, KVM_CREATE_VM, KVM_X86_SW_PROTECTED_VM);
	REQUIRE(vmfd >= 0);
	mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(mem != MAP_FAILED);
	struct kvm_userspace_memory_region region = {.slot = 0,
						     .memory_size = MEM,
						     .userspace_addr =
							     (uintptr_t)mem};
	REQUIRE(gmem_ioctl(vmfd, KVM_SET_USER_MEMORY_REGION, &region) == 0);

	/* Identity map: 1 GiB pages for [0, 1G) and [4G, 5G). */
	pml4 = (uint64_t *)(mem + 0x1000);
	pdpt = (uint64_t *)(mem + 0x2000);
	pml4[0] = 0x2000 | 3;
	pdpt[0] = 0 | 0x83;
	pdpt[4] = MMIO_GPA | 0x83;
	memcpy(mem + CODE, code, sizeof(code));

	if (irqchip)
		REQUIRE(gmem_ioctl(vmfd, KVM_CREATE_IRQCHIP, 0) == 0);
	vcpufd = gmem_ioctl(vmfd, KVM_CREATE_VCPU, 0);
	REQUIRE(vcpufd >= 0);
	size = gmem_ioctl(sys, KVM_GET_VCPU_MMAP_SIZE, 0);
	run = gmem_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, vcpufd,
			0);
	REQUIRE(run != MAP_FAILED);

	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_SREGS, &sregs) == 0);
	/* CR0: PG WP AM NE ET MP PE */
	long_mode_sregs(&sregs, 0x80050033, 0x1000);
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_SREGS, &sregs) == 0);
	regs.rip = CODE;
	regs.rsp = 0x20000;
	regs.rflags = 2;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);
}

static int vcpu_run(void)
{
	return gmem_ioctl(vcpufd, KVM_RUN, 0);
}

static uint64_t halts(struct gmem_vcpu *vcpu)
{
	struct gmem_vcpu_stats st;

	gmem_vcpu_get_stats(vcpu, &st);
	return st.halts;
}

static void *run_thread(void *arg)
{
	*(int *)arg = vcpu_run() == -1 ? errno : 0;
	return NULL;
}

/* Kick once the vCPU has halted (its halt counter says so), then join. */
static int kick_halted(struct gmem_vcpu *vcpu, uint64_t n)
{
	pthread_t t;
	int err = -1;

	pthread_create(&t, NULL, run_thread, &err);
	while (halts(vcpu) < n)
		sched_yield();
	gmem_vcpu_kick(vcpu);
	pthread_join(t, NULL);
	return err;
}

/*
 * With an irqchip, HLT does not exit: the vCPU blocks until a kick, and
 * stays halted across runs, as KVM's vCPU does in kvm_vcpu_block().
 */
/* The bit for @vector in a 256-bit APIC register at @reg of @st. */
static bool apic_bit(const struct kvm_lapic_state *st, unsigned int reg,
		     unsigned int vector)
{
	uint32_t w;

	memcpy(&w, st->regs + reg + (vector >> 5) * 0x10, 4);
	return w >> (vector & 31) & 1;
}

/* The APIC of vCPU @fd software-enabled (SPIV 0x1ff), as a guest would. */
static void apic_sw_enable(int fd)
{
	struct kvm_lapic_state st;

	REQUIRE(gmem_ioctl(fd, KVM_GET_LAPIC, &st) == 0);
	st.regs[0xf0] = (char)0xff;
	st.regs[0xf1] = 0x01;
	REQUIRE(gmem_ioctl(fd, KVM_SET_LAPIC, &st) == 0);
}

static long signal_msi(int fd, uint32_t lo, uint32_t hi, uint32_t data,
		       uint32_t flags)
{
	struct kvm_msi msi = {.address_lo = 0xfee00000u | lo,
			      .address_hi = hi,
			      .data = data,
			      .flags = flags};

	return gmem_ioctl(fd, KVM_SIGNAL_MSI, &msi);
}

/*
 * KVM_SIGNAL_MSI (kvm_set_msi()): the address's destination and mode and
 * the data's vector, delivery mode and trigger reach the local APICs; the
 * count of APICs that took it is returned.
 */
static void test_signal_msi(void)
{
	struct kvm_enable_cap x2api = {.cap = KVM_CAP_X2APIC_API,
				       .args = {KVM_X2APIC_API_USE_32BIT_IDS}};
	struct kvm_lapic_state st;
	struct kvm_vcpu_events ev;
	int kvm = gmem_open(), vm, cpu[2];

	vm = gmem_ioctl(kvm, KVM_CREATE_VM, 0);
	REQUIRE(vm >= 0);
	CHECK_EQ(gmem_ioctl(vm, KVM_CHECK_EXTENSION, KVM_CAP_SIGNAL_MSI), 1);
	CHECK_ERRNO(signal_msi(vm, 0, 0, 0x40, 0), EINVAL); /* no irqchip */
	REQUIRE(gmem_ioctl(vm, KVM_CREATE_IRQCHIP, 0) == 0);
	for (int i = 0; i < 2; i++) {
		cpu[i] = gmem_ioctl(vm, KVM_CREATE_VCPU, i);
		REQUIRE(cpu[i] >= 0);
		apic_sw_enable(cpu[i]);
	}
	/* Physical destination 1, fixed, edge. */
	CHECK_EQ(signal_msi(vm, 1u << 12, 0, 0x40, 0), 1);
	REQUIRE(gmem_ioctl(cpu[1], KVM_GET_LAPIC, &st) == 0);
	CHECK(apic_bit(&st, 0x200, 0x40));
	CHECK(!apic_bit(&st, 0x180, 0x40));
	REQUIRE(gmem_ioctl(cpu[0], KVM_GET_LAPIC, &st) == 0);
	CHECK(!apic_bit(&st, 0x200, 0x40));
	/* Broadcast, level-triggered (TMR set); devid is ignored on x86. */
	CHECK_EQ(signal_msi(vm, 0xffu << 12, 0, 0xc041, KVM_MSI_VALID_DEVID),
		 2);
	REQUIRE(gmem_ioctl(cpu[0], KVM_GET_LAPIC, &st) == 0);
	CHECK(apic_bit(&st, 0x200, 0x41));
	CHECK(apic_bit(&st, 0x180, 0x41));
	/* NMI delivery mode to APIC 0: its vCPU's NMI, not IRR. */
	CHECK_EQ(signal_msi(vm, 0, 0, 0x400, 0), 1);
	REQUIRE(gmem_ioctl(cpu[0], KVM_GET_VCPU_EVENTS, &ev) == 0);
	CHECK_EQ(ev.nmi.pending, 1);
	/* No such APIC, and address_hi ignored in the 8-bit format. */
	CHECK_EQ(signal_msi(vm, 5u << 12, 0, 0x42, 0), 0);
	CHECK_EQ(signal_msi(vm, 1u << 12, 0x100, 0x43, 0), 1);
	CHECK_ERRNO(signal_msi(vm, 1u << 12, 0, 0x44, 2), EINVAL);
	/* 32-bit IDs: bits 31:8 in address_hi, whose bits 7:0 must be 0. */
	REQUIRE(gmem_ioctl(vm, KVM_ENABLE_CAP, &x2api) == 0);
	CHECK_ERRNO(signal_msi(vm, 1u << 12, 1, 0x45, 0), EINVAL);
	CHECK_EQ(signal_msi(vm, 1u << 12, 0x100, 0x46, 0), 0);
	CHECK_EQ(signal_msi(vm, 1u << 12, 0, 0x47, 0), 1);
	REQUIRE(gmem_ioctl(cpu[1], KVM_GET_LAPIC, &st) == 0);
	CHECK(apic_bit(&st, 0x200, 0x43));
	CHECK(!apic_bit(&st, 0x200, 0x46));
	CHECK(apic_bit(&st, 0x200, 0x47));
	for (int i = 0; i < 2; i++)
		gmem_close(cpu[i]);
	gmem_close(vm);
	gmem_close(kvm);
	tap_result("KVM_SIGNAL_MSI: destination, mode, trigger, NMI, errors");
}

/*
 * gmem_vcpu_from_handle() takes a reference, as gmem_vm_from_handle():
 * the vCPU outlives its closed handle (its id still taken) until the put.
 */
static void test_handle_ref(void)
{
	struct gmem_vcpu *vcpu;
	struct kvm_regs regs;
	int fd;

	setup(false);
	CHECK_EQ(gmem_vcpu_from_handle(vmfd, &vcpu), -EINVAL);
	REQUIRE(gmem_vcpu_from_handle(vcpufd, &vcpu) == 0);
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	regs.rbx = 0x1234;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);
	CHECK_EQ(gmem_close(vcpufd), 0);
	memset(&regs, 0, sizeof(regs));
	CHECK_EQ(gmem_vcpu_get_regs(vcpu, &regs), 0);
	CHECK_EQ(regs.rbx, 0x1234);
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_CREATE_VCPU, 0), EEXIST);
	gmem_vcpu_put(vcpu);
	fd = gmem_ioctl(vmfd, KVM_CREATE_VCPU, 0);
	CHECK(fd >= 0);
	gmem_close(fd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("gmem_vcpu_from_handle: a reference past the handle");
}

static void test_irqchip_halt(void)
{
	static const uint8_t hlt[] = {0xf4, 0xeb, 0xfe}; /* hlt; jmp $ */
	struct gmem_vcpu *vcpu;
	struct kvm_regs regs;

	setup(true);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_IRQCHIP), 1);
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_CREATE_IRQCHIP, 0), EEXIST);
	memcpy(mem + CODE + 0x800, hlt, sizeof(hlt));
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	regs.rip = CODE + 0x800;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);
	REQUIRE(gmem_vcpu_from_handle(vcpufd, &vcpu) == 0);
	CHECK_EQ(kick_halted(vcpu, 1), EINTR);
	CHECK_EQ(run->exit_reason, KVM_EXIT_INTR);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs), 0);
	CHECK_EQ(regs.rip, CODE + 0x801);
	/* Still halted: the next run blocks again instead of spinning. */
	CHECK_EQ(kick_halted(vcpu, 2), EINTR);
	CHECK_EQ(run->exit_reason, KVM_EXIT_INTR);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs), 0);
	CHECK_EQ(regs.rip, CODE + 0x801);
	struct kvm_mp_state mp;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_MP_STATE, &mp), 0);
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_HALTED);
	mp.mp_state = KVM_MP_STATE_RUNNABLE;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_MP_STATE, &mp), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_MP_STATE, &mp), 0);
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_RUNNABLE);
	gmem_vcpu_put(vcpu);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("irqchip: HLT blocks until a kick, and stays halted");
}

/*
 * A VMM's own interrupt controller: KVM_INTERRUPT's checks and queued
 * vector, and request_interrupt_window exiting only once the guest's IF
 * is set and STI's shadow is over.
 */
static void test_user_irq(void)
{
	static const uint8_t g[] = {
		0xfa,	    /* cli */
		0xe6, 0x20, /* out 0x20, al */
		0xfb,	    /* sti */
		0x90,	    /* nop (under STI's shadow) */
		0x90,	    /* nop */
		0xf4,	    /* hlt */
	};
	struct kvm_interrupt irq = {.irq = 256};
	struct kvm_vcpu_events ev;
	struct kvm_regs regs;

	setup(false);
	memcpy(mem + CODE + 0x800, g, sizeof(g));
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	regs.rip = CODE + 0x800;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_INTERRUPT, &irq), EINVAL);
	run->request_interrupt_window = 1;
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->ready_for_interrupt_injection, 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IRQ_WINDOW_OPEN);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs), 0);
	CHECK_EQ(regs.rip, CODE + 0x805); /* after the nop STI covers */
	CHECK_EQ(run->ready_for_interrupt_injection, 1);
	CHECK_EQ(run->if_flag, 1);
	/* Queued: events show it, and the window is no longer open. */
	irq.irq = 0x30;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_INTERRUPT, &irq), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(ev.interrupt.injected, 1);
	CHECK_EQ(ev.interrupt.nr, 0x30);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	/* With the in-kernel irqchip KVM_INTERRUPT is refused. */
	setup(true);
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_INTERRUPT, &irq), ENXIO);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_INTERRUPT and request_interrupt_window");
}

/*
 * String I/O through the façade, as KVM reports it: REP INSB exits with
 * count > 1 and the VMM's bytes at data_offset reach guest memory on the
 * next KVM_RUN (with immediate_exit set too, as a VMM saving state does),
 * a VMM may lower RCX during the exit, and REP OUTSB exits once per byte
 * with RIP at the instruction.
 */
static void test_string_io(void)
{
	static const uint8_t sio[] = {
		0xbf, 0x00, 0x60, 0x00, 0x00, /* mov edi, 0x6000 */
		0xba, 0x80, 0x00, 0x00, 0x00, /* mov edx, 0x80 */
		0xb9, 0xd0, 0x07, 0x00, 0x00, /* mov ecx, 2000 */
		0xf3, 0x6c,		      /* rep insb (+15) */
		0xb9, 0x05, 0x00, 0x00, 0x00, /* mov ecx, 5 */
		0xf3, 0x6c,		      /* rep insb (+22) */
		0xbe, 0x00, 0x60, 0x00, 0x00, /* mov esi, 0x6000 */
		0xb9, 0x03, 0x00, 0x00, 0x00, /* mov ecx, 3 */
		0xf3, 0x6e,		      /* rep outsb (+34) */
		0xf4,			      /* hlt */
	};
	uint8_t *data;
	struct kvm_regs regs;
	bool ok = true;

	setup(false);
	memcpy(mem + CODE + 0x800, sio, sizeof(sio));
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	regs.rip = CODE + 0x800;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);

	/* 1024 bytes (KVM's batch), then the 976 left. */
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.direction, KVM_EXIT_IO_IN);
	CHECK_EQ(run->io.port, 0x80);
	CHECK_EQ(run->io.size, 1);
	CHECK_EQ(run->io.count, 1024);
	CHECK_EQ(run->io.data_offset, 4096);
	data = (uint8_t *)run + run->io.data_offset;
	for (unsigned k = 0; k < 1024; k++)
		data[k] = (uint8_t)(k ^ 0x5a);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.count, 976);
	for (unsigned k = 0; k < 1024; k++)
		ok &= mem[0x6000 + k] == (uint8_t)(k ^ 0x5a);
	CHECK(ok);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs), 0);
	CHECK_EQ(regs.rip, CODE + 0x800 + 15);
	CHECK_EQ(regs.rcx, 976);
	CHECK_EQ(regs.rdi, 0x6400);
	memset(data, 0xaa, 976);
	/* immediate_exit: the I/O completes, then EINTR, RIP at the INS. */
	run->immediate_exit = 1;
	CHECK_ERRNO(vcpu_run(), EINTR);
	run->immediate_exit = 0;
	CHECK_EQ(mem[0x6400], 0xaa);
	CHECK_EQ(mem[0x6400 + 975], 0xaa);
	CHECK_EQ(mem[0x6400 + 976], 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs), 0);
	CHECK_EQ(regs.rip, CODE + 0x800 + 15);
	CHECK_EQ(regs.rcx, 0);
	CHECK_EQ(regs.rdi, 0x6000 + 2000);
	tap_result("REP INSB: count > 1 at data_offset, completed next run");

	/* The VMM lowers RCX 5 -> 2: two bytes land, the INS retires. */
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.count, 5);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs), 0);
	regs.rcx = 2;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs), 0);
	memset(data, 0x33, 5);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(mem[0x6000 + 2000], 0x33);
	CHECK_EQ(mem[0x6000 + 2001], 0x33);
	CHECK_EQ(mem[0x6000 + 2002], 0);
	tap_result("REP INSB: a VMM that lowers RCX gets that many bytes");

	/* REP OUTSB: one byte per exit, RIP at the instruction. */
	for (unsigned k = 0; k < 3; k++) {
		if (k)
			CHECK_EQ(vcpu_run(), 0);
		CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
		CHECK_EQ(run->io.direction, KVM_EXIT_IO_OUT);
		CHECK_EQ(run->io.count, 1);
		CHECK_EQ(*((uint8_t *)run + run->io.data_offset),
			 (uint8_t)(k ^ 0x5a));
		CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs), 0);
		CHECK_EQ(regs.rip, CODE + 0x800 + 34);
		CHECK_EQ(regs.rcx, 2 - k);
		CHECK(regs.rflags & (1 << 16)); /* RF, as KVM leaves it */
	}
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_HLT);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs), 0);
	CHECK(!(regs.rflags & (1 << 16)));
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("REP OUTSB: an exit per byte, then HLT");
}

/*
 * x87/SSE state through the façade and the typed API: the capabilities,
 * KVM_GET/SET_XSAVE (and XSAVE2) against the state a guest uses,
 * KVM_GET/SET_FPU, KVM_GET/SET_XCRS with KVM's checks, and refused
 * input changing nothing.
 */
static void test_fpu_state(void)
{
	static const uint8_t sse[] = {
		0x66, 0x48, 0x0f, 0x7e, 0xc8, /* movq rax, xmm1 */
		0xe7, 0x20,		      /* out 0x20, eax */
		0x66, 0x48, 0x0f, 0x6e, 0xd0, /* movq xmm2, rax */
		0xf4,			      /* hlt */
	};
	static struct kvm_xsave xs, xs2;
	uint8_t *a = (uint8_t *)xs.region;
	uint64_t q = 0x1122334455667788ULL, bv;
	struct gmem_vcpu *vcpu;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	struct kvm_fpu fpu;
	struct kvm_xcrs xcrs;

	setup(false);
	REQUIRE(gmem_vcpu_from_handle(vcpufd, &vcpu) == 0);
	CHECK_EQ(gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE), 1);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_XCRS), 1);
	CHECK_EQ(gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2), 4096);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_XSAVE2), 4096);

	/* A new vCPU: all initial; KVM's bytes at 464: x87|SSE|YMM. */
	memset(&xs, 0xcc, sizeof(xs));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_XSAVE, &xs), 0);
	memcpy(&bv, a + 512, 8);
	CHECK_EQ(bv, 0);
	CHECK_EQ(a[0] | a[1] << 8, 0x37f);
	CHECK_EQ(a[24] | a[25] << 8, 0x1f80);
	CHECK_EQ(a[464], 7);
	CHECK_EQ(a[4095], 0);
	memset(&xs2, 0xcc, sizeof(xs2));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_XSAVE2, &xs2), 0);
	CHECK(memcmp(&xs, &xs2, sizeof(xs)) == 0);
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_GET_XSAVE, NULL), EFAULT);

	/* XMM1 in, the guest reads it and writes XMM2, which comes out. */
	memcpy(a + 160 + 16, &q, 8);
	a[512] = 2; /* SSE */
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_XSAVE, &xs), 0);
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_SREGS, &sregs) == 0);
	sregs.cr4 |= 0x200; /* OSFXSR */
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_SREGS, &sregs) == 0);
	memcpy(mem + CODE + 0xa00, sse, sizeof(sse));
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	regs.rip = CODE + 0xa00;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(*(uint32_t *)((uint8_t *)run + run->io.data_offset),
		 0x55667788);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_HLT);
	CHECK_EQ(gmem_vcpu_get_xsave(vcpu, &xs2), 0);
	CHECK(memcmp((uint8_t *)xs2.region + 160 + 32, &q, 8) == 0);
	memcpy(&bv, (uint8_t *)xs2.region + 512, 8);
	CHECK_EQ(bv, 2);
	tap_result("KVM_GET/SET_XSAVE(2): the guest's SSE state, both ways");

	/* KVM_GET/SET_FPU: no MXCSR either way. */
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_FPU, &fpu), 0);
	CHECK(memcmp(fpu.xmm[2], &q, 8) == 0);
	CHECK_EQ(fpu.fcw, 0x37f);
	CHECK_EQ(fpu.mxcsr, 0);
	fpu.fcw = 0x27f;
	fpu.ftwx = 0x80;
	fpu.fpr[7][9] = 0x40;
	fpu.xmm[0][0] = 0x5a;
	fpu.mxcsr = 0xffffffff;
	fpu.last_ip = 0x1234;
	CHECK_EQ(gmem_vcpu_set_fpu(vcpu, &fpu), 0);
	memset(&fpu, 0, sizeof(fpu));
	CHECK_EQ(gmem_vcpu_get_fpu(vcpu, &fpu), 0);
	CHECK_EQ(fpu.fcw, 0x27f);
	CHECK_EQ(fpu.ftwx, 0x80);
	CHECK_EQ(fpu.fpr[7][9], 0x40);
	CHECK_EQ(fpu.xmm[0][0], 0x5a);
	CHECK_EQ(fpu.last_ip, 0x1234);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_XSAVE, &xs), 0);
	CHECK_EQ(a[24] | a[25] << 8, 0x1f80); /* MXCSR untouched */
	CHECK_EQ(a[512], 3);
	tap_result("KVM_GET/SET_FPU: x87 and XMM, MXCSR not part of it");

	/* Refused images: EINVAL, the state unchanged. */
	memcpy(&xs2, &xs, sizeof(xs));
	a[512] |= 8; /* MPX's BNDREGS: not supported */
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_SET_XSAVE, &xs), EINVAL);
	a[512] &= 3;
	a[27] = 0x80; /* reserved MXCSR bit */
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_SET_XSAVE, &xs), EINVAL);
	a[27] = 0;
	a[520] = 1; /* XCOMP_BV */
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_SET_XSAVE, &xs), EINVAL);
	a[520] = 0;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_XSAVE, &xs), 0);
	CHECK(memcmp(&xs, &xs2, sizeof(xs)) == 0);
	/* YMM (AVX) goes both ways, and back to its initial state. */
	a[512] |= 4;
	a[576] = 0x77;
	a[831] = 0x88;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_XSAVE, &xs), 0);
	memset(&xs2, 0, sizeof(xs2));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_XSAVE, &xs2), 0);
	CHECK(memcmp(&xs, &xs2, sizeof(xs)) == 0);
	a[512] &= 3;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_XSAVE, &xs), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_XSAVE, &xs2), 0);
	CHECK(((uint8_t *)xs2.region)[576] == 0 &&
	      ((uint8_t *)xs2.region)[831] == 0);
	tap_result("KVM_SET_XSAVE refuses what KVM refuses, changing nothing; "
		   "YMM both ways");

	/* XCR0: 1 at reset; the guest's CPUID leaf 0xD says what may be set. */
	memset(&xcrs, 0xcc, sizeof(xcrs));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_XCRS, &xcrs), 0);
	CHECK_EQ(xcrs.nr_xcrs, 1);
	CHECK_EQ(xcrs.flags, 0);
	CHECK_EQ(xcrs.xcrs[0].xcr, 0);
	CHECK_EQ(xcrs.xcrs[0].value, 1);
	CHECK_EQ(xcrs.xcrs[1].value, 0);
	xcrs.xcrs[0].value = 3;
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_SET_XCRS, &xcrs), EINVAL);
	xcrs.xcrs[0].value = 2;
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_SET_XCRS, &xcrs), EINVAL);
	xcrs.xcrs[0].value = 1;
	xcrs.flags = 1;
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_SET_XCRS, &xcrs), EINVAL);
	xcrs.flags = 0;
	xcrs.nr_xcrs = KVM_MAX_XCRS + 1;
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_SET_XCRS, &xcrs), EINVAL);
	union {
		struct kvm_cpuid2 c;
		uint8_t buf[sizeof(struct kvm_cpuid2) +
			    sizeof(struct kvm_cpuid_entry2)];
	} cpuid = {.c.nent = 1};

	cpuid.c.entries[0] = (struct kvm_cpuid_entry2){
		.function = 0xd,
		.flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
		.eax = 7};
	/* A vCPU that has not run yet takes a table with leaf 0xD. */
	int fd2 = gmem_ioctl(vmfd, KVM_CREATE_VCPU, 1);
	REQUIRE(fd2 >= 0);
	gmem_vcpu_put(vcpu);
	REQUIRE(gmem_vcpu_from_handle(fd2, &vcpu) == 0);
	CHECK_EQ(gmem_ioctl(fd2, KVM_SET_CPUID2, &cpuid), 0);
	/* Other indices are skipped; the first XCR0 entry is taken. */
	xcrs.nr_xcrs = 2;
	xcrs.xcrs[0] = (struct kvm_xcr){.xcr = 1, .value = 0};
	xcrs.xcrs[1] = (struct kvm_xcr){.xcr = 0, .value = 3};
	CHECK_EQ(gmem_vcpu_set_xcrs(vcpu, &xcrs), 0);
	CHECK_EQ(gmem_vcpu_get_xcrs(vcpu, &xcrs), 0);
	CHECK_EQ(xcrs.xcrs[0].value, 3);
	xcrs.xcrs[0].value = 5; /* YMM without SSE */
	CHECK_ERRNO(gmem_ioctl(fd2, KVM_SET_XCRS, &xcrs), EINVAL);
	xcrs.xcrs[0].value = 0x207; /* PKRU: beyond what gmem supports */
	CHECK_ERRNO(gmem_ioctl(fd2, KVM_SET_XCRS, &xcrs), EINVAL);
	xcrs.xcrs[0].value = 7; /* AVX */
	CHECK_EQ(gmem_ioctl(fd2, KVM_SET_XCRS, &xcrs), 0);
	xcrs.xcrs[0].value = 3;
	CHECK_EQ(gmem_ioctl(fd2, KVM_SET_XCRS, &xcrs), 0);
	xcrs.nr_xcrs = 0;
	CHECK_EQ(gmem_ioctl(fd2, KVM_SET_XCRS, &xcrs), 0);
	CHECK_EQ(gmem_ioctl(fd2, KVM_GET_XCRS, &xcrs), 0);
	CHECK_EQ(xcrs.xcrs[0].value, 3);
	/* That table has no XSAVE: CR4.OSXSAVE is refused. */
	REQUIRE(gmem_ioctl(fd2, KVM_GET_SREGS, &sregs) == 0);
	sregs.cr4 |= 1 << 18;
	CHECK_ERRNO(gmem_ioctl(fd2, KVM_SET_SREGS, &sregs), EINVAL);
	gmem_vcpu_put(vcpu);
	gmem_close(fd2);

	/*
	 * With the supported table, it is taken, and KVM_GET_CPUID2 shows
	 * CPUID.1:ECX.OSXSAVE following it.
	 */
	static union {
		struct kvm_cpuid2 c;
		uint8_t buf[sizeof(struct kvm_cpuid2) +
			    256 * sizeof(struct kvm_cpuid_entry2)];
	} sup;
	struct kvm_cpuid_entry2 *l1 = NULL;

	fd2 = gmem_ioctl(vmfd, KVM_CREATE_VCPU, 2);
	REQUIRE(fd2 >= 0);
	sup.c.nent = 256;
	REQUIRE(gmem_ioctl(sys, KVM_GET_SUPPORTED_CPUID, &sup) == 0);
	for (unsigned int k = 0; k < sup.c.nent; k++)
		if (sup.c.entries[k].function == 1)
			l1 = &sup.c.entries[k];
	REQUIRE(l1);
	CHECK_EQ(l1->ecx >> 26 & 3, 1); /* XSAVE, OSXSAVE clear */
	CHECK_EQ(gmem_ioctl(fd2, KVM_SET_CPUID2, &sup), 0);
	REQUIRE(gmem_ioctl(fd2, KVM_GET_SREGS, &sregs) == 0);
	sregs.cr4 |= 1 << 18;
	CHECK_EQ(gmem_ioctl(fd2, KVM_SET_SREGS, &sregs), 0);
	CHECK_EQ(gmem_ioctl(fd2, KVM_GET_CPUID2, &sup), 0);
	CHECK_EQ(l1->ecx >> 26 & 3, 3);
	gmem_close(fd2);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_GET/SET_XCRS: XCR0 under __kvm_set_xcr()'s rules; "
		   "CR4.OSXSAVE and CPUID's OSXSAVE");
}

/* A kvm_msr_list with room for @n indices. */
union msr_list {
	struct kvm_msr_list l;
	uint8_t buf[sizeof(struct kvm_msr_list) + 64 * sizeof(uint32_t)];
};

union msrs {
	struct kvm_msrs m;
	uint8_t buf[sizeof(struct kvm_msrs) +
		    64 * sizeof(struct kvm_msr_entry)];
};

/*
 * KVM_GET_MSR_INDEX_LIST and KVM_GET_MSR_FEATURE_INDEX_LIST as the
 * selftests' library calls them (E2BIG with the count first), every
 * listed MSR round-tripping through KVM_GET/SET_MSRS, and the feature
 * MSRs read on /dev/kvm.
 */
static void test_msr_lists(void)
{
	static union msr_list list, feat;
	static union msrs msrs, again;
	struct kvm_msr_list empty = {.nmsrs = 0};
	struct gmem_vcpu *vcpu;
	uint32_t n;
	uint8_t *page;

	setup(false);
	REQUIRE(gmem_vcpu_from_handle(vcpufd, &vcpu) == 0);
	CHECK_EQ(gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_GET_MSR_FEATURES),
		 1);
	CHECK_ERRNO(gmem_ioctl(sys, KVM_GET_MSR_INDEX_LIST, &empty), E2BIG);
	n = empty.nmsrs;
	CHECK(n > 0 && n <= 64);
	list.l.nmsrs = n - 1;
	CHECK_EQ(gmem_get_msr_index_list(&list.l), -E2BIG);
	CHECK_EQ(list.l.nmsrs, n);
	list.l.nmsrs = 64;
	CHECK_EQ(gmem_ioctl(sys, KVM_GET_MSR_INDEX_LIST, &list), 0);
	CHECK_EQ(list.l.nmsrs, n);
	CHECK_ERRNO(gmem_ioctl(sys, KVM_GET_MSR_INDEX_LIST, NULL), EFAULT);
	/* Indices that would run into an unmapped page: EFAULT. */
	page = mmap(NULL, 8192, PROT_READ | PROT_WRITE,
		    MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(page != MAP_FAILED);
	REQUIRE(mprotect(page + 4096, 4096, PROT_NONE) == 0);
	struct kvm_msr_list *edge = (void *)(page + 4096 - 4);

	edge->nmsrs = 64;
	CHECK_ERRNO(gmem_ioctl(sys, KVM_GET_MSR_INDEX_LIST, edge), EFAULT);
	edge->nmsrs = 0;
	CHECK_ERRNO(gmem_ioctl(sys, KVM_GET_MSR_INDEX_LIST, edge), E2BIG);
	CHECK_EQ(edge->nmsrs, n);
	munmap(page, 8192);

	/* Every listed MSR reads, and takes back what it read. */
	msrs.m.nmsrs = n;
	for (uint32_t i = 0; i < n; i++)
		msrs.m.entries[i].index = list.l.indices[i];
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_MSRS, &msrs), (int)n);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_MSRS, &msrs), (int)n);
	memcpy(&again, &msrs, sizeof(again));
	CHECK_EQ(gmem_vcpu_get_msrs(vcpu, &again.m), (int)n);
	for (uint32_t i = 0; i < n; i++)
		if (msrs.m.entries[i].index != 0x10) /* the TSC moves on */
			CHECK_EQ(again.m.entries[i].data,
				 msrs.m.entries[i].data);
	tap_result("KVM_GET_MSR_INDEX_LIST: E2BIG with the count, then the "
		   "list, each MSR round-trips");

	/* The feature list: IA32_UCODE_REV, read on /dev/kvm. */
	feat.l.nmsrs = 0;
	CHECK_ERRNO(gmem_ioctl(sys, KVM_GET_MSR_FEATURE_INDEX_LIST, &feat),
		    E2BIG);
	CHECK_EQ(feat.l.nmsrs, 1);
	CHECK_EQ(gmem_get_msr_feature_index_list(&feat.l), 0);
	CHECK_EQ(feat.l.indices[0], 0x8b);
	memset(&msrs, 0, sizeof(msrs));
	msrs.m.nmsrs = 3;
	msrs.m.entries[0].index = 0x8b;
	msrs.m.entries[1].index = 0xc0000081; /* STAR: listed, reads 0 */
	msrs.m.entries[1].data = 5;
	msrs.m.entries[2].index = 0x1234; /* unknown: stops there, reads 0 */
	msrs.m.entries[2].data = 7;
	CHECK_EQ(gmem_ioctl(sys, KVM_GET_MSRS, &msrs), 2);
	CHECK_EQ(msrs.m.entries[0].data, 0x100000000ULL);
	CHECK_EQ(msrs.m.entries[1].data, 0);
	CHECK_EQ(msrs.m.entries[2].data, 0);
	msrs.m.entries[2].data = 7;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_MSRS, &msrs), 2);
	CHECK_EQ(msrs.m.entries[2].data, 0);
	msrs.m.nmsrs = 256;
	CHECK_EQ(gmem_get_feature_msrs(&msrs.m), -E2BIG);
	/* The vCPU's revision: the VMM sets it, the guest cannot. */
	msrs.m.nmsrs = 1;
	msrs.m.entries[0].data = 0x4200000000ULL;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_MSRS, &msrs), 1);
	msrs.m.entries[0].data = 0;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_MSRS, &msrs), 1);
	CHECK_EQ(msrs.m.entries[0].data, 0x4200000000ULL);
	gmem_vcpu_put(vcpu);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_GET_MSR_FEATURE_INDEX_LIST and KVM_GET_MSRS on "
		   "/dev/kvm");
}

/*
 * KVM_GET/SET_VCPU_EVENTS over the model's event slot: an exception the
 * typed API queued shows up, moves to another vCPU, and is delivered
 * there at KVM_RUN (no IDT here: a triple fault); KVM's refusals and
 * what gmem refuses for lack of a model change nothing.
 */
static void test_vcpu_events(void)
{
	struct kvm_vcpu_events ev, ev2, bad;
	struct gmem_vcpu *vcpu, *vcpu2;
	int fd2;

	setup(false);
	REQUIRE(gmem_vcpu_from_handle(vcpufd, &vcpu) == 0);
	CHECK_EQ(gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_VCPU_EVENTS), 1);
	CHECK_EQ(gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_NESTED_STATE), 0);
	CHECK_EQ(
		gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_EXCEPTION_PAYLOAD),
		0);
	memset(&ev, 0xcc, sizeof(ev));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(ev.exception.injected, 0);
	CHECK_EQ(ev.interrupt.injected, 0);
	CHECK_EQ(ev.nmi.pending, 0);
	CHECK_EQ(ev.flags, KVM_VCPUEVENT_VALID_NMI_PENDING |
				   KVM_VCPUEVENT_VALID_SHADOW |
				   KVM_VCPUEVENT_VALID_SMM);
	CHECK_EQ(ev.reserved[25], 0);
	CHECK_EQ(ev.exception_payload, 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_VCPU_EVENTS, &ev), 0);
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, NULL), EFAULT);

	CHECK_EQ(gmem_vcpu_inject_exception(vcpu, 13, true, 0x18, 0), 0);
	CHECK_EQ(gmem_vcpu_get_vcpu_events(vcpu, &ev), 0);
	CHECK_EQ(ev.exception.injected, 1);
	CHECK_EQ(ev.exception.nr, 13);
	CHECK_EQ(ev.exception.has_error_code, 1);
	CHECK_EQ(ev.exception.error_code, 0x18);
	CHECK_EQ(ev.exception.pending, 0);
	fd2 = gmem_ioctl(vmfd, KVM_CREATE_VCPU, 1);
	REQUIRE(fd2 >= 0);
	REQUIRE(gmem_vcpu_from_handle(fd2, &vcpu2) == 0);
	CHECK_EQ(gmem_ioctl(fd2, KVM_SET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(gmem_ioctl(fd2, KVM_GET_VCPU_EVENTS, &ev2), 0);
	CHECK(memcmp(&ev, &ev2, sizeof(ev)) == 0);
	gmem_vcpu_put(vcpu2);
	gmem_close(fd2);
	tap_result("KVM_GET/SET_VCPU_EVENTS: an injected exception, moved "
		   "to another vCPU");

	/* An interrupt, then none: a set replaces the slot. */
	memset(&ev2, 0, sizeof(ev2));
	ev2.interrupt.injected = 1;
	ev2.interrupt.nr = 0x40;
	CHECK_EQ(gmem_vcpu_set_vcpu_events(vcpu, &ev2), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev2), 0);
	CHECK_EQ(ev2.interrupt.injected, 1);
	CHECK_EQ(ev2.interrupt.nr, 0x40);
	CHECK_EQ(ev2.exception.injected, 0);
	CHECK_EQ(run->ready_for_interrupt_injection, 0);

	/* Refused, each changing nothing: the interrupt stays. */
	static const struct {
		uint32_t flags;
		uint8_t exc, exc_nr, irq, nmi_inj, nmi_pend, masked, shadow;
		uint8_t smm, smi, init;
	} refused[] = {
		{.flags = 0x40},			/* unknown flag */
		{.flags = KVM_VCPUEVENT_VALID_PAYLOAD}, /* cap off */
		{.flags = KVM_VCPUEVENT_VALID_TRIPLE_FAULT},
		{.exc = 1, .exc_nr = 32},
		{.exc = 1, .exc_nr = 2}, /* NMI */
		{.flags = KVM_VCPUEVENT_VALID_SMM, .smm = 1},
		{.flags = KVM_VCPUEVENT_VALID_SMM, .smi = 1},
		/* Not modelled: MOV SS's shadow, two events at once. */
		{.flags = KVM_VCPUEVENT_VALID_SHADOW,
		 .shadow = KVM_X86_SHADOW_INT_MOV_SS},
		{.exc = 1, .exc_nr = 6, .irq = 1},
		{.exc = 1, .exc_nr = 6, .nmi_inj = 1},
		{.irq = 1, .nmi_inj = 1},
	};
	for (size_t k = 0; k < sizeof(refused) / sizeof(refused[0]); k++) {
		memset(&bad, 0, sizeof(bad));
		bad.flags = refused[k].flags;
		bad.exception.injected = refused[k].exc;
		bad.exception.nr = refused[k].exc_nr;
		bad.interrupt.injected = refused[k].irq;
		bad.interrupt.nr = 0x50;
		bad.nmi.injected = refused[k].nmi_inj;
		bad.nmi.pending = refused[k].nmi_pend;
		bad.nmi.masked = refused[k].masked;
		bad.interrupt.shadow = refused[k].shadow;
		bad.smi.smm = refused[k].smm;
		bad.smi.pending = refused[k].smi;
		bad.smi.latched_init = refused[k].init;
		CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_SET_VCPU_EVENTS, &bad),
			    EINVAL);
		CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
		CHECK(memcmp(&ev, &ev2, sizeof(ev)) == 0);
	}
	/* STI's shadow is kept, and reads back. */
	memset(&bad, 0, sizeof(bad));
	bad.flags = KVM_VCPUEVENT_VALID_SHADOW;
	bad.interrupt.shadow = KVM_X86_SHADOW_INT_STI;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_VCPU_EVENTS, &bad), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(ev.interrupt.shadow, KVM_X86_SHADOW_INT_STI);
	bad.interrupt.shadow = 0;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_VCPU_EVENTS, &bad), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(ev.interrupt.shadow, 0);
	/* Ignored as KVM ignores them: pending without VALID_*, no irqchip. */
	memset(&bad, 0, sizeof(bad));
	bad.nmi.pending = 1;
	bad.exception.pending = 1;
	bad.exception.nr = 77;
	bad.flags = KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	bad.smi.latched_init = 1;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_VCPU_EVENTS, &bad), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(ev.exception.injected | ev.interrupt.injected, 0);
	CHECK_EQ(ev.nmi.pending, 0);
	CHECK_EQ(ev.smi.latched_init, 0);
	/* NMI state: injected, pending and masked each read back. */
	memset(&bad, 0, sizeof(bad));
	bad.flags = KVM_VCPUEVENT_VALID_NMI_PENDING;
	bad.nmi.injected = 1;
	bad.nmi.pending = 1;
	bad.nmi.masked = 1;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_VCPU_EVENTS, &bad), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(ev.nmi.injected, 1);
	CHECK_EQ(ev.nmi.pending, 1);
	CHECK_EQ(ev.nmi.masked, 1);
	CHECK(ev.flags & KVM_VCPUEVENT_VALID_NMI_PENDING);
	memset(&bad, 0, sizeof(bad));
	bad.flags = KVM_VCPUEVENT_VALID_NMI_PENDING;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_VCPU_EVENTS, &bad), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(ev.nmi.injected | ev.nmi.pending | ev.nmi.masked, 0);
	tap_result("KVM_SET_VCPU_EVENTS refuses what KVM refuses and what "
		   "gmem cannot hold, changing nothing");

	/* An injected #UD is delivered: with no IDT it ends in shutdown. */
	memset(&ev, 0, sizeof(ev));
	ev.exception.injected = 1;
	ev.exception.nr = 6;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_SHUTDOWN);
	gmem_vcpu_put(vcpu);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_SET_VCPU_EVENTS: the exception is delivered at "
		   "KVM_RUN");

	/* With an irqchip the INIT latch and SIPI vector are the APIC's. */
	setup(true);
	memset(&bad, 0, sizeof(bad));
	bad.flags = KVM_VCPUEVENT_VALID_SMM | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
	bad.smi.latched_init = 1;
	bad.sipi_vector = 0x12;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_VCPU_EVENTS, &bad), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(ev.smi.latched_init, 1);
	CHECK_EQ(ev.sipi_vector, 0); /* KVM never reports it */
	bad.smi.latched_init = 0;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_VCPU_EVENTS, &bad), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(ev.smi.latched_init, 0);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_SET_VCPU_EVENTS: the latched INIT and SIPI vector "
		   "with an irqchip");
}

/* KVM_GET/SET_DEBUGREGS: reset values, KVM's checks, no breakpoints. */
static void test_debugregs(void)
{
	struct kvm_debugregs dr, dr2, bad;
	struct gmem_vcpu *vcpu;

	setup(false);
	REQUIRE(gmem_vcpu_from_handle(vcpufd, &vcpu) == 0);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_DEBUGREGS), 1);
	memset(&dr, 0xcc, sizeof(dr));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_DEBUGREGS, &dr), 0);
	CHECK_EQ(dr.db[0] | dr.db[3], 0);
	CHECK_EQ(dr.dr6, 0xffff0ff0);
	CHECK_EQ(dr.dr7, 0x400);
	CHECK_EQ(dr.flags | dr.reserved[8], 0);
	dr.db[0] = 0x1000;
	dr.db[3] = 0xffffffff12345678ULL;
	dr.dr6 = 0xffff4ff1;
	dr.dr7 = 0x400 | (3u << 16); /* R/W0 set, breakpoint 0 off */
	CHECK_EQ(gmem_vcpu_set_debugregs(vcpu, &dr), 0);
	memset(&dr2, 0, sizeof(dr2));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_DEBUGREGS, &dr2), 0);
	CHECK(memcmp(&dr, &dr2, sizeof(dr)) == 0);

	static const struct kvm_debugregs refused[] = {
		{.flags = 1},
		{.dr6 = 1ULL << 32},
		{.dr7 = 1ULL << 32},
	};
	for (size_t k = 0; k < sizeof(refused) / sizeof(refused[0]); k++) {
		bad = refused[k];
		CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_SET_DEBUGREGS, &bad),
			    EINVAL);
		CHECK_EQ(gmem_vcpu_get_debugregs(vcpu, &dr2), 0);
		CHECK(memcmp(&dr, &dr2, sizeof(dr)) == 0);
	}
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_SET_DEBUGREGS, NULL), EFAULT);
	/* Enabled breakpoints and GD are kept (debug.c models them). */
	dr.dr7 = 0x400 | 1u << 13 | 0x81;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_DEBUGREGS, &dr), 0);
	CHECK_EQ(gmem_vcpu_get_debugregs(vcpu, &dr2), 0);
	CHECK_EQ(dr2.dr7, dr.dr7);
	gmem_vcpu_put(vcpu);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_GET/SET_DEBUGREGS: state, KVM's checks, enabled "
		   "breakpoints kept, EINVAL changes nothing");
}

/*
 * KVM_SET_GUEST_DEBUG through the ioctl: a single step across OUT (the
 * step's exit comes at the next KVM_RUN, after the I/O exit), then a
 * hardware breakpoint of the VMM's, KVM_EXIT_DEBUG's fields as KVM's.
 */
static void test_guest_debug(void)
{
	struct kvm_guest_debug dbg = {
		.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP,
	};

	setup(false);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_SET_GUEST_DEBUG),
		 1);
	CHECK_EQ(
		gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_SET_GUEST_DEBUG2),
		KVM_GUESTDBG_VALID_MASK);
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_SET_GUEST_DEBUG, NULL), EFAULT);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_GUEST_DEBUG, &dbg), 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_DEBUG);
	CHECK_EQ(run->debug.arch.exception, 1);
	CHECK_EQ(run->debug.arch.pc, CODE + 2);
	CHECK_EQ(run->debug.arch.dr6, 0xffff4ff0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.port, 0x10);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_DEBUG);
	CHECK_EQ(run->debug.arch.pc, CODE + 4);

	/* A breakpoint at OUT 0x12: IN's exit first, then the stop at it. */
	dbg.control = KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_USE_HW_BP;
	dbg.arch.debugreg[0] = CODE + 6;
	dbg.arch.debugreg[7] = 0x401;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_GUEST_DEBUG, &dbg), 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.port, 0x11);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_DEBUG);
	CHECK_EQ(run->debug.arch.exception, 1);
	CHECK_EQ(run->debug.arch.pc, CODE + 6);
	CHECK_EQ(run->debug.arch.dr6, 0xffff0ff1);
	CHECK_EQ(run->debug.arch.dr7, 0x401);
	/* Off again: OUT 0x12 runs. */
	memset(&dbg, 0, sizeof(dbg));
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_GUEST_DEBUG, &dbg), 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.port, 0x12);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_SET_GUEST_DEBUG: single step across an I/O exit, a "
		   "hardware breakpoint, KVM_EXIT_DEBUG's fields");
}

/* Kick once the spin loop is surely running (its counter moved). */
static void *kicker(void *arg)
{
	struct gmem_vcpu *vcpu = arg;
	const uint64_t *spins = (const uint64_t *)(mem + SPINS);
	uint64_t c0 = __atomic_load_n(spins, __ATOMIC_RELAXED);

	while (__atomic_load_n(spins, __ATOMIC_RELAXED) == c0)
		sched_yield();
	gmem_vcpu_kick(vcpu);
	return NULL;
}

/*
 * KVM_CAP_X86_USER_SPACE_MSR and KVM_X86_SET_MSR_FILTER: the flags KVM
 * refuses, then a guest's unknown, filtered and refused accesses exiting
 * and completed by the VMM's answer (data, or #GP, which with no IDT here
 * ends in a shutdown).
 */
static void test_user_msr(void)
{
	static const uint8_t guest[] = {
		0xb9, 0x00, 0x4f, 0x4f, 0x47, /* mov ecx, 0x474f4f00 */
		0x0f, 0x32,		      /* rdmsr: unknown */
		0x89, 0xc3,		      /* mov ebx, eax */
		0xb9, 0x81, 0x00, 0x00, 0xc0, /* mov ecx, STAR */
		0xb8, 0x78, 0x56, 0x34, 0x12, /* mov eax, 0x12345678 */
		0x31, 0xd2,		      /* xor edx, edx */
		0x0f, 0x30,		      /* wrmsr: filtered, allowed */
		0x0f, 0x32,		      /* rdmsr: not filtered */
		0xb9, 0xce, 0x00, 0x00, 0x00, /* mov ecx, PLATFORM_INFO */
		0x0f, 0x30,		      /* wrmsr: refused, #GP */
		0xf4,
	};
	uint64_t deny = 0, allow = 1;
	struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_USER_SPACE_MSR};
	struct kvm_msr_filter f = {.flags = KVM_MSR_FILTER_DEFAULT_ALLOW};
	struct kvm_regs regs;

	setup(false);
	CHECK_EQ(gmem_ioctl(sys, KVM_CHECK_EXTENSION,
			    KVM_CAP_X86_USER_SPACE_MSR),
		 1);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_X86_MSR_FILTER),
		 1);
	cap.args[0] = 8;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_ENABLE_CAP, &cap), EINVAL);
	f.flags = 2;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_X86_SET_MSR_FILTER, &f), EINVAL);
	f.flags = KVM_MSR_FILTER_DEFAULT_DENY; /* and no range */
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_X86_SET_MSR_FILTER, &f), EINVAL);
	f.flags = KVM_MSR_FILTER_DEFAULT_ALLOW;
	f.ranges[0] = (struct kvm_msr_filter_range){
		.nmsrs = 1, .base = 0xc0000081, .bitmap = (uint8_t *)&deny};
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_X86_SET_MSR_FILTER, &f), EINVAL);
	f.ranges[0].flags = 4;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_X86_SET_MSR_FILTER, &f), EINVAL);
	f.ranges[0].flags = KVM_MSR_FILTER_WRITE;
	f.ranges[0].nmsrs = KVM_MSR_FILTER_MAX_BITMAP_SIZE * 8 + 1;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_X86_SET_MSR_FILTER, &f), EINVAL);
	f.ranges[0].nmsrs = 1;
	f.ranges[0].bitmap = NULL;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_X86_SET_MSR_FILTER, &f), EFAULT);
	f.ranges[0].bitmap = (uint8_t *)&deny;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_X86_SET_MSR_FILTER, &f), 0);
	deny = ~0ull; /* the filter keeps its own copy */
	cap.args[0] = KVM_MSR_EXIT_REASON_UNKNOWN | KVM_MSR_EXIT_REASON_FILTER |
		      KVM_MSR_EXIT_REASON_INVAL;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_ENABLE_CAP, &cap), 0);
	tap_result("KVM_CAP_X86_USER_SPACE_MSR, KVM_X86_SET_MSR_FILTER: "
		   "KVM's refusals");

	memcpy(mem + CODE + 0xc00, guest, sizeof(guest));
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	regs.rip = CODE + 0xc00;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_X86_RDMSR);
	CHECK_EQ(run->msr.reason, KVM_MSR_EXIT_REASON_UNKNOWN);
	CHECK_EQ(run->msr.index, 0x474f4f00);
	CHECK_EQ(run->msr.error, 0);
	run->msr.data = 0x1122334455667788ull;
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_X86_WRMSR);
	CHECK_EQ(run->msr.reason, KVM_MSR_EXIT_REASON_FILTER);
	CHECK_EQ(run->msr.index, 0xc0000081);
	CHECK_EQ(run->msr.data, 0x12345678);
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	CHECK_EQ(regs.rbx, 0x55667788);	       /* the VMM's RDMSR data */
	CHECK_EQ(regs.rip, CODE + 0xc00 + 21); /* at the WRMSR */
	/* Allowed by the VMM; the read goes to the CPU, STAR still 0. */
	f.ranges[0].bitmap = (uint8_t *)&allow;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_X86_SET_MSR_FILTER, &f), 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_X86_WRMSR);
	CHECK_EQ(run->msr.reason, KVM_MSR_EXIT_REASON_INVAL);
	CHECK_EQ(run->msr.index, 0xce);
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	CHECK_EQ(regs.rax, 0);
	run->msr.error = 1;
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_SHUTDOWN);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("MSR exits: unknown, filtered and refused accesses, "
		   "completed with data or #GP");
}

/* A GDT (64-bit code at 8, data at 16) and an IDT whose gate 2 is NMI_H. */
#define NMI_H (CODE + 0x400)
#define NMI_MAIN (CODE + 0x800)

static void gdt_idt(void)
{
	struct kvm_sregs sregs;
	uint64_t *gdt = (uint64_t *)(mem + 0x3000);
	uint64_t *gate = (uint64_t *)(mem + 0x4000 + 2 * 16);

	gdt[1] = 0x00209b0000000000ULL;
	gdt[2] = 0x00cf93000000ffffULL;
	gate[0] = (NMI_H & 0xffff) | 8ULL << 16 | 0x8eULL << 40 |
		  (NMI_H >> 16 & 0xffff) << 48;
	gate[1] = NMI_H >> 32;
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_SREGS, &sregs) == 0);
	sregs.gdt.base = 0x3000;
	sregs.gdt.limit = 23;
	sregs.idt.base = 0x4000;
	sregs.idt.limit = 0xfff;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_SREGS, &sregs) == 0);
}

static uint64_t guest_u64(uint64_t gpa)
{
	uint64_t v;

	memcpy(&v, mem + gpa, 8);
	return v;
}

/*
 * KVM_NMI: delivered through gate 2 whatever IF says; at most two wait
 * (one more than the one in service), the second is held until IRETQ
 * ends the NMI blocking, and KVM_GET_VCPU_EVENTS follows each step.
 */
static void test_nmi(void)
{
	static const uint8_t main_code[] = {
		0xb0, 0x01, /* mov al, 1 */
		0xe6, 0x20, /* out 0x20, al */
		0xe6, 0x22, /* out 0x22, al */
		0xf4,	    /* hlt */
	};
	static const uint8_t handler[] = {
		0xe6, 0x21, /* out 0x21, al */
		0x48, 0xcf, /* iretq */
	};
	struct kvm_vcpu_events ev;
	struct kvm_regs regs;

	setup(false);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_USER_NMI), 1);
	gdt_idt();
	memcpy(mem + NMI_MAIN, main_code, sizeof(main_code));
	memcpy(mem + NMI_H, handler, sizeof(handler));
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	regs.rip = NMI_MAIN;
	regs.rflags = 2; /* IF clear: NMIs come anyway */
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);

	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x20);
	for (int k = 0; k < 3; k++)
		CHECK_EQ(gmem_ioctl(vcpufd, KVM_NMI, 0), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(ev.nmi.pending, 2);
	CHECK_EQ(ev.nmi.injected | ev.nmi.masked, 0);

	for (int k = 0; k < 2; k++) {
		CHECK_EQ(vcpu_run(), 0);
		CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
		CHECK_EQ(run->io.port, 0x21);
		CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs), 0);
		CHECK_EQ(regs.rip, NMI_H + 2);
		CHECK_EQ(guest_u64(regs.rsp), NMI_MAIN + 4);
		CHECK_EQ(guest_u64(regs.rsp + 8), 8);
		CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
		CHECK_EQ(ev.nmi.masked, 1);
		CHECK_EQ(ev.nmi.pending, 1 - k);
	}
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x22);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(ev.nmi.masked | ev.nmi.pending | ev.nmi.injected, 0);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_NMI: gate 2 with IF clear, one held until IRETQ, "
		   "at most two pending");
}

#define IRQ_H (CODE + 0x600)

/*
 * The interrupt tests' guest: @main at NMI_MAIN with IF clear, @handler
 * at IRQ_H behind gate 0x50, the GiB of the IOAPIC and APIC pages mapped
 * (no memslot there: MMIO), the APIC software-enabled.
 */
static void irq_guest(const uint8_t *main, size_t main_len,
		      const uint8_t *handler, size_t handler_len)
{
	uint64_t *gate = (uint64_t *)(mem + 0x4000 + 0x50 * 16);
	uint64_t *pdpt = (uint64_t *)(mem + 0x2000);
	struct kvm_regs regs;

	pdpt[3] = 0xc0000000ULL | 0x83;
	gdt_idt();
	gate[0] = (IRQ_H & 0xffff) | 8ULL << 16 | 0x8eULL << 40 |
		  (IRQ_H >> 16 & 0xffff) << 48;
	gate[1] = IRQ_H >> 32;
	memcpy(mem + NMI_MAIN, main, main_len);
	memcpy(mem + IRQ_H, handler, handler_len);
	apic_sw_enable(vcpufd);
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	regs.rip = NMI_MAIN;
	regs.rflags = 2;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);
}

/*
 * The IOAPIC through KVM_IRQ_LINE: the guest programs pin 5 (level,
 * vector 0x50) through the MMIO window; the VMM raises the line; the
 * handler's EOI sends it again while the line stays high, and not once
 * the VMM lowered it.
 */
static void test_irq_line(void)
{
	static const uint8_t main_code[] = {
		0xb8, 0x00, 0x00, 0xc0, 0xfe,		  /* mov eax, IOAPIC */
		0xc7, 0x00, 0x1a, 0x00, 0x00, 0x00,	  /* IOREGSEL: pin 5 */
		0xc7, 0x40, 0x10, 0x50, 0x80, 0x00, 0x00, /* IOWIN: level */
		0xe6, 0x20,				  /* out 0x20, al */
		0xfb,					  /* sti */
		0xf4,					  /* hlt */
		0xe6, 0x22,				  /* out 0x22, al */
		0xf4,					  /* hlt */
	};
	static const uint8_t handler[] = {
		0xe6, 0x21,			    /* out 0x21, al */
		0xb8, 0xb0, 0x00, 0xe0, 0xfe,	    /* mov eax, APIC EOI */
		0xc7, 0x00, 0x00, 0x00, 0x00, 0x00, /* mov dword [rax], 0 */
		0x48, 0xcf,			    /* iretq */
	};
	struct kvm_irq_level irq = {.irq = 5, .level = 1};

	setup(false);
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IRQ_LINE, &irq), ENXIO);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	setup(true);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION,
			    KVM_CAP_IRQ_INJECT_STATUS),
		 1);
	irq_guest(main_code, sizeof(main_code), handler, sizeof(handler));

	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x20);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQ_LINE_STATUS, &irq), 0);
	CHECK_EQ(irq.status, 1);
	/* Twice into the handler: its EOI finds the line still high. */
	for (int k = 0; k < 2; k++) {
		CHECK_EQ(vcpu_run(), 0);
		CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
		CHECK_EQ(run->io.port, 0x21);
	}
	/* Remote IRR is set: raising it again sends nothing. */
	irq = (struct kvm_irq_level){.irq = 5, .level = 1};
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQ_LINE_STATUS, &irq), 0);
	CHECK_EQ(irq.status, -1);
	irq = (struct kvm_irq_level){.irq = 5, .level = 0};
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQ_LINE, &irq), 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x22);
	/* No route beyond the 24 pins. */
	irq = (struct kvm_irq_level){.irq = 24, .level = 1};
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQ_LINE_STATUS, &irq), 0);
	CHECK_EQ(irq.status, -1);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_IRQ_LINE: the IOAPIC's level pin, Remote IRR, EOI");
}

/* KVM_SET_GSI_ROUTING with up to four entries. */
union routing4 {
	struct kvm_irq_routing r;
	uint8_t buf[sizeof(struct kvm_irq_routing) +
		    4 * sizeof(struct kvm_irq_routing_entry)];
};

static long set_routing(const union routing4 *rt)
{
	return gmem_ioctl(vmfd, KVM_SET_GSI_ROUTING, rt);
}

static struct kvm_irq_routing_entry route_chip(uint32_t gsi, uint32_t chip,
					       uint32_t pin)
{
	return (struct kvm_irq_routing_entry){
		.gsi = gsi,
		.type = KVM_IRQ_ROUTING_IRQCHIP,
		.u.irqchip = {.irqchip = chip, .pin = pin}};
}

static struct kvm_irq_routing_entry route_msi(uint32_t gsi, uint32_t dest,
					      uint32_t data)
{
	return (struct kvm_irq_routing_entry){
		.gsi = gsi,
		.type = KVM_IRQ_ROUTING_MSI,
		.u.msi = {.address_lo = 0xfee00000u | dest << 12,
			  .data = data}};
}

/*
 * KVM_IRQFD on the IOAPIC's level pin 5: a resampling irqfd holds the
 * line until the guest's EOI, which signals the resamplefd; a plain one
 * pulses it.  The guest's handler exits before (0x21) and after (0x23)
 * its EOI, so each step is a KVM_RUN of its own.
 */
static void test_irqfd(void)
{
	static const uint8_t main_code[] = {
		0xb8, 0x00, 0x00, 0xc0, 0xfe,		  /* mov eax, IOAPIC */
		0xc7, 0x00, 0x1a, 0x00, 0x00, 0x00,	  /* IOREGSEL: pin 5 */
		0xc7, 0x40, 0x10, 0x50, 0x80, 0x00, 0x00, /* IOWIN: level */
		0xe6, 0x20,				  /* out 0x20, al */
		0xfb,					  /* sti */
		0xf4,					  /* 1: hlt */
		0xeb, 0xfd,				  /* jmp 1b */
	};
	static const uint8_t handler[] = {
		0xe6, 0x21,			    /* out 0x21, al */
		0xb8, 0xb0, 0x00, 0xe0, 0xfe,	    /* mov eax, APIC EOI */
		0xc7, 0x00, 0x00, 0x00, 0x00, 0x00, /* mov dword [rax], 0 */
		0xe6, 0x23,			    /* out 0x23, al */
		0x48, 0xcf,			    /* iretq */
	};
	int efd = eventfd(0, EFD_CLOEXEC), rfd = eventfd(0, EFD_NONBLOCK);
	struct kvm_irqfd fd = {.fd = (uint32_t)efd,
			       .gsi = 5,
			       .flags = KVM_IRQFD_FLAG_RESAMPLE,
			       .resamplefd = (uint32_t)rfd};
	uint64_t v = 1;
	int pipefd[2];

	REQUIRE(efd >= 0 && rfd >= 0 && pipe(pipefd) == 0);
	setup(false);
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IRQFD, &fd), EAGAIN);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	setup(true);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD), 1);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_IRQFD_RESAMPLE),
		 1);
	irq_guest(main_code, sizeof(main_code), handler, sizeof(handler));

	/* kvm_irqfd()'s refusals. */
	fd.flags = 4;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IRQFD, &fd), EINVAL);
	fd.flags = KVM_IRQFD_FLAG_RESAMPLE;
	fd.fd = (uint32_t)pipefd[0];
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IRQFD, &fd), EINVAL);
	fd.fd = 1000;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IRQFD, &fd), EBADF);
	fd.fd = (uint32_t)efd;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQFD, &fd), 0);
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IRQFD, &fd), EBUSY);

	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x20);
	/* The signal raises the line: the halted vCPU takes it. */
	REQUIRE(write(efd, &v, 8) == 8);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x21);
	CHECK_ERRNO(read(rfd, &v, 8), EAGAIN);
	/* The EOI lowers it and signals the resamplefd: no second entry. */
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x23);
	CHECK_EQ(read(rfd, &v, 8), 8);
	CHECK_EQ(v, 1);

	/* A plain irqfd pulses the line: one entry, no resample. */
	fd.flags = KVM_IRQFD_FLAG_DEASSIGN;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQFD, &fd), 0);
	fd.flags = 0;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQFD, &fd), 0);
	REQUIRE(write(efd, &v, 8) == 8);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x21);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x23);
	CHECK_ERRNO(read(rfd, &v, 8), EAGAIN);
	/* Routed to an MSI (same vector): the irqfd follows the table. */
	{
		union routing4 rt = {.r.nr = 1};

		rt.r.entries[0] = route_msi(5, 0, 0x50);
		CHECK_EQ(set_routing(&rt), 0);
	}
	REQUIRE(write(efd, &v, 8) == 8);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x21);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x23);
	fd.flags = KVM_IRQFD_FLAG_DEASSIGN;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQFD, &fd), 0);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQFD, &fd), 0); /* none left: 0 */
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	close(efd);
	close(rfd);
	close(pipefd[0]);
	close(pipefd[1]);
	tap_result("KVM_IRQFD: resampling and plain irqfds on a level pin");
}

/*
 * KVM_SET_GSI_ROUTING (kvm_set_irq_routing()): its refusals, and a table
 * that KVM_IRQ_LINE follows: an MSI route, one GSI to two irqchips.
 */
static void test_gsi_routing(void)
{
	union routing4 rt = {.r.nr = 1};
	struct kvm_irq_level irq = {.irq = 40, .level = 1};
	struct kvm_lapic_state st;

	setup(false);
	rt.r.entries[0] = route_msi(40, 0, 0x60);
	CHECK_ERRNO(set_routing(&rt), EINVAL); /* no irqchip */
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	setup(true);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_IRQ_ROUTING),
		 KVM_MAX_IRQ_ROUTES);
	apic_sw_enable(vcpufd);
	/* The default table has no GSI 40. */
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQ_LINE_STATUS, &irq), 0);
	CHECK_EQ(irq.status, -1);
	/* Refusals, each leaving the table as it was. */
	rt.r.flags = 1;
	CHECK_ERRNO(set_routing(&rt), EINVAL);
	rt.r.flags = 0;
	rt.r.nr = KVM_MAX_IRQ_ROUTES + 1;
	CHECK_ERRNO(set_routing(&rt), EINVAL);
	rt.r.nr = 1;
	rt.r.entries[0] = route_msi(KVM_MAX_IRQ_ROUTES, 0, 0x60);
	CHECK_ERRNO(set_routing(&rt), EINVAL);
	rt.r.entries[0] = route_chip(40, KVM_IRQCHIP_IOAPIC, 24);
	CHECK_ERRNO(set_routing(&rt), EINVAL);
	rt.r.entries[0] = route_chip(40, KVM_IRQCHIP_PIC_SLAVE, 8);
	CHECK_ERRNO(set_routing(&rt), EINVAL);
	rt.r.entries[0] = route_chip(40, 3, 0);
	CHECK_ERRNO(set_routing(&rt), EINVAL);
	rt.r.entries[0] = route_chip(40, KVM_IRQCHIP_IOAPIC, 3);
	rt.r.entries[0].flags = 1;
	CHECK_ERRNO(set_routing(&rt), EINVAL);
	rt.r.entries[0] = route_msi(40, 0, 0x60);
	rt.r.entries[0].flags = 2;
	CHECK_ERRNO(set_routing(&rt), EINVAL);
	rt.r.entries[0].type = 3; /* an s390 adapter */
	rt.r.entries[0].flags = 0;
	CHECK_ERRNO(set_routing(&rt), EINVAL);
	rt.r.nr = 2;
	rt.r.entries[0] = route_chip(40, KVM_IRQCHIP_IOAPIC, 3);
	rt.r.entries[1] = route_chip(40, KVM_IRQCHIP_IOAPIC, 4);
	CHECK_ERRNO(set_routing(&rt), EINVAL);
	rt.r.entries[1] = route_msi(40, 0, 0x60);
	CHECK_ERRNO(set_routing(&rt), EINVAL);
	irq = (struct kvm_irq_level){.irq = 40, .level = 1};
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQ_LINE_STATUS, &irq), 0);
	CHECK_EQ(irq.status, -1);
	/* GSI 40 an MSI to APIC 0 (devid taken), GSI 41 two irqchips. */
	rt.r.nr = 3;
	rt.r.entries[0] = route_msi(40, 0, 0x60);
	rt.r.entries[0].flags = KVM_MSI_VALID_DEVID;
	rt.r.entries[1] = route_chip(41, KVM_IRQCHIP_IOAPIC, 3);
	rt.r.entries[2] = route_chip(41, KVM_IRQCHIP_PIC_MASTER, 3);
	CHECK_EQ(set_routing(&rt), 0);
	irq = (struct kvm_irq_level){.irq = 40, .level = 1};
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQ_LINE_STATUS, &irq), 0);
	CHECK_EQ(irq.status, 1);
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_LAPIC, &st) == 0);
	CHECK(apic_bit(&st, 0x200, 0x60));
	irq = (struct kvm_irq_level){.irq = 40, .level = 0};
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQ_LINE_STATUS, &irq), 0);
	CHECK_EQ(irq.status, -1); /* an MSI sends on a high level only */
	/* Pin 3 is masked at reset, and the PIC half reaches nothing. */
	irq = (struct kvm_irq_level){.irq = 41, .level = 1};
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQ_LINE_STATUS, &irq), 0);
	CHECK_EQ(irq.status, -1);
	/* The old GSI 3 is gone with the default table. */
	irq = (struct kvm_irq_level){.irq = 3, .level = 1};
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IRQ_LINE_STATUS, &irq), 0);
	CHECK_EQ(irq.status, -1);
	rt.r.nr = 0; /* an empty table is allowed */
	CHECK_EQ(set_routing(&rt), 0);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_SET_GSI_ROUTING: refusals, MSI and irqchip routes");
}

/*
 * KVM_IOEVENTFD: an MMIO write of the matching value and any write to a
 * registered port signal their eventfds instead of exiting; the other
 * writes exit as before.
 */
static void test_ioeventfd(void)
{
	static const uint8_t g[] = {
		0x48, 0xb8, 0,	  0,	0,    0,
		1,    0,    0,	  0,		    /* movabs rax, 4 GiB */
		0xc7, 0x00, 0x11, 0x00, 0x00, 0x00, /* mov dword [rax], 0x11 */
		0xc7, 0x00, 0x22, 0x00, 0x00, 0x00, /* mov dword [rax], 0x22 */
		0xe6, 0x70,			    /* out 0x70, al */
		0xe6, 0x71,			    /* out 0x71, al */
		0xf4,				    /* hlt */
	};
	int mfd = eventfd(0, EFD_NONBLOCK), pfd = eventfd(0, EFD_NONBLOCK);
	struct kvm_ioeventfd io = {.datamatch = 0x22,
				   .addr = MMIO_GPA,
				   .len = 4,
				   .fd = mfd,
				   .flags = KVM_IOEVENTFD_FLAG_DATAMATCH};
	struct kvm_ioeventfd port = {.addr = 0x70,
				     .len = 1,
				     .fd = pfd,
				     .flags = KVM_IOEVENTFD_FLAG_PIO};
	struct kvm_ioeventfd bad;
	struct kvm_regs regs;
	int pipefd[2];
	uint64_t v;

	REQUIRE(mfd >= 0 && pfd >= 0 && pipe(pipefd) == 0);
	setup(false);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION, KVM_CAP_IOEVENTFD), 1);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION,
			    KVM_CAP_IOEVENTFD_NO_LENGTH),
		 1);
	/* kvm_assign_ioeventfd()'s refusals. */
	bad = io;
	bad.len = 3;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IOEVENTFD, &bad), EINVAL);
	bad = io;
	bad.flags |= 1u << 4;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IOEVENTFD, &bad), EINVAL);
	bad = io;
	bad.len = 0;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IOEVENTFD, &bad), EINVAL);
	bad = io;
	bad.addr = ~0ull;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IOEVENTFD, &bad), EINVAL);
	bad = io;
	bad.fd = 1000;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IOEVENTFD, &bad), EBADF);
	bad.fd = pipefd[0];
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IOEVENTFD, &bad), EINVAL);
	bad = io;
	bad.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IOEVENTFD, &bad), ENOENT);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IOEVENTFD, &io), 0);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IOEVENTFD, &port), 0);
	/* Collisions: the same match, a wildcard, any length. */
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IOEVENTFD, &io), EEXIST);
	bad = io;
	bad.flags = 0;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IOEVENTFD, &bad), EEXIST);
	bad.len = 0;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IOEVENTFD, &bad), EEXIST);
	bad = io;
	bad.datamatch = 0x33; /* another value on the same address: fine */
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IOEVENTFD, &bad), 0);
	bad.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IOEVENTFD, &bad), 0);

	memcpy(mem + CODE + 0x800, g, sizeof(g));
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	regs.rip = CODE + 0x800;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);
	/* 0x11 does not match: an MMIO exit, nothing signalled. */
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_MMIO);
	CHECK_EQ(run->mmio.data[0], 0x11);
	CHECK_ERRNO(read(mfd, &v, 8), EAGAIN);
	/* 0x22 and port 0x70 signal; port 0x71 exits. */
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.port, 0x71);
	CHECK_EQ(read(mfd, &v, 8), 8);
	CHECK_EQ(v, 1);
	CHECK_EQ(read(pfd, &v, 8), 8);
	CHECK_EQ(v, 1);
	io.flags |= KVM_IOEVENTFD_FLAG_DEASSIGN;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_IOEVENTFD, &io), 0);
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_IOEVENTFD, &io), ENOENT);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	close(mfd);
	close(pfd);
	close(pipefd[0]);
	close(pipefd[1]);
	tap_result("KVM_IOEVENTFD: datamatch, PIO, collisions, refusals");
}

/* The AP's KVM_RUN: its errno, or 0. */
static void *ap_run(void *arg)
{
	int fd = *(int *)arg;

	*(int *)arg = gmem_ioctl(fd, KVM_RUN, 0) == -1 ? errno : 0;
	return NULL;
}

/*
 * INIT-SIPI from the BSP through the xAPIC ICR: the AP waits
 * UNINITIALIZED (its KVM_RUN blocks, and returns EAGAIN once INIT
 * arrives), INIT makes it INIT_RECEIVED, SIPI vector 8 starts it in real
 * mode at 0800:0000.  Without an irqchip only RUNNABLE may be set.
 */
static void test_init_sipi(void)
{
	static const uint8_t bsp[] = {
		0xb8, 0x00, 0x03, 0xe0, 0xfe, /* mov eax, 0xfee00300 (ICR) */
		0xc7, 0x40, 0x10, 0,	0,    0, 1, /* ICR2: APIC 1 */
		0xc7, 0x00, 0x00, 0x45, 0,    0,    /* INIT, assert */
		0xe6, 0x30,			    /* out 0x30, al */
		0xc7, 0x00, 0x08, 0x46, 0,    0,    /* SIPI, vector 8 */
		0xe6, 0x31,			    /* out 0x31, al */
		0xf4,				    /* hlt */
	};
	struct kvm_mp_state mp;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	pthread_t t;
	int ap, err;

	setup(false);
	mp.mp_state = KVM_MP_STATE_RUNNABLE;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_MP_STATE, &mp), 0);
	for (unsigned s = KVM_MP_STATE_UNINITIALIZED;
	     s <= KVM_MP_STATE_AP_RESET_HOLD; s++) {
		mp.mp_state = s;
		if (s != KVM_MP_STATE_RUNNABLE)
			CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_SET_MP_STATE, &mp),
				    EINVAL);
	}
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_MP_STATE, &mp), 0);
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_RUNNABLE);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);

	setup(true);
	((uint64_t *)(mem + 0x2000))[3] = 0xc0000000ULL | 0x83;
	memcpy(mem + CODE + 0x800, bsp, sizeof(bsp));
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	regs.rip = CODE + 0x800;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);
	ap = gmem_ioctl(vmfd, KVM_CREATE_VCPU, 1);
	REQUIRE(ap >= 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_MP_STATE, &mp), 0);
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_RUNNABLE);
	CHECK_EQ(gmem_ioctl(ap, KVM_GET_MP_STATE, &mp), 0);
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_UNINITIALIZED);

	/* The AP blocks until INIT arrives, whichever comes first. */
	err = ap;
	pthread_create(&t, NULL, ap_run, &err);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x30);
	pthread_join(t, NULL);
	CHECK_EQ(err, EAGAIN);
	CHECK_EQ(gmem_ioctl(ap, KVM_GET_MP_STATE, &mp), 0);
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_INIT_RECEIVED);

	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x31);
	CHECK_EQ(gmem_ioctl(ap, KVM_GET_MP_STATE, &mp), 0);
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_RUNNABLE);
	CHECK_EQ(gmem_ioctl(ap, KVM_GET_SREGS, &sregs), 0);
	CHECK_EQ(sregs.cs.selector, 0x800);
	CHECK_EQ(sregs.cs.base, 0x8000);
	CHECK_EQ(sregs.cr0 & 1, 0);
	CHECK_EQ(sregs.efer, 0);
	CHECK_EQ(gmem_ioctl(ap, KVM_GET_REGS, &regs), 0);
	CHECK_EQ(regs.rip, 0);
	/* Real mode, which the CPU model does not run: an internal error. */
	struct kvm_run *aprun =
		gmem_mmap(NULL, gmem_ioctl(sys, KVM_GET_VCPU_MMAP_SIZE, 0),
			  PROT_READ | PROT_WRITE, MAP_SHARED, ap, 0);
	REQUIRE(aprun != MAP_FAILED);
	CHECK_EQ(gmem_ioctl(ap, KVM_RUN, 0), 0);
	CHECK_EQ(aprun->exit_reason, KVM_EXIT_INTERNAL_ERROR);

	/* A second INIT's state can be set and read back as KVM's. */
	mp.mp_state = KVM_MP_STATE_INIT_RECEIVED;
	CHECK_EQ(gmem_ioctl(ap, KVM_SET_MP_STATE, &mp), 0);
	CHECK_EQ(gmem_ioctl(ap, KVM_GET_MP_STATE, &mp), 0);
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_INIT_RECEIVED);
	mp.mp_state = 5; /* s390's STOPPED */
	CHECK_ERRNO(gmem_ioctl(ap, KVM_SET_MP_STATE, &mp), EINVAL);
	gmem_close(ap);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("INIT-SIPI through the xAPIC ICR: UNINITIALIZED, "
		   "INIT_RECEIVED, then real mode at the SIPI vector");
}

/* The supported CPUID table, with its KVM_CPUID_FEATURES leaf's EAX. */
static union {
	struct kvm_cpuid2 c;
	uint8_t buf[sizeof(struct kvm_cpuid2) +
		    256 * sizeof(struct kvm_cpuid_entry2)];
} pv_table;

static uint32_t *pv_features(void)
{
	for (unsigned int k = 0; k < pv_table.c.nent; k++)
		if (pv_table.c.entries[k].function == 0x40000001)
			return &pv_table.c.entries[k].eax;
	return NULL;
}

static int msr_get(uint32_t idx, uint64_t *v)
{
	union {
		struct kvm_msrs m;
		uint8_t b[sizeof(struct kvm_msrs) +
			  sizeof(struct kvm_msr_entry)];
	} u = {.m.nmsrs = 1};
	int r;

	u.m.entries[0].index = idx;
	r = gmem_ioctl(vcpufd, KVM_GET_MSRS, &u);
	*v = u.m.entries[0].data;
	return r;
}

static int msr_set(uint32_t idx, uint64_t v)
{
	union {
		struct kvm_msrs m;
		uint8_t b[sizeof(struct kvm_msrs) +
			  sizeof(struct kvm_msr_entry)];
	} u = {.m.nmsrs = 1};

	u.m.entries[0].index = idx;
	u.m.entries[0].data = v;
	return gmem_ioctl(vcpufd, KVM_SET_MSRS, &u);
}

/*
 * KVM_CAP_ENFORCE_PV_FEATURE_CPUID: a vCPU cap; once on, kvmclock's MSR
 * pairs and SCHED_YIELD follow the guest's KVM_CPUID_FEATURES leaf, off
 * again everything is back.
 */
static void test_pv_enforce(void)
{
	static const uint8_t yield[] = {
		0xb8, 11,   0,	  0,	0,    /* mov eax, KVM_HC_SCHED_YIELD */
		0x31, 0xdb,		      /* xor ebx, ebx */
		0x0f, 0x01, 0xc1,	      /* vmcall */
		0xe7, 0x20,		      /* out 0x20, eax */
		0xb9, 0x01, 0x4d, 0x56, 0x4b, /* mov ecx, SYSTEM_TIME_NEW */
		0x0f, 0x32,		      /* rdmsr */
		0xe6, 0x21,		      /* out 0x21, al */
	};
	static const uint8_t gp_handler[] = {
		0xe6, 0x23, /* out 0x23, al */
	};
	uint64_t *gp_gate;
	struct kvm_enable_cap cap = {.cap = KVM_CAP_ENFORCE_PV_FEATURE_CPUID,
				     .args = {1}};
	struct kvm_regs regs;
	struct gmem_vcpu *vcpu;
	uint32_t *f;
	uint64_t v;

	setup(false);
	REQUIRE(gmem_vcpu_from_handle(vcpufd, &vcpu) == 0);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_CHECK_EXTENSION,
			    KVM_CAP_ENFORCE_PV_FEATURE_CPUID),
		 1);
	pv_table.c.nent = 256;
	REQUIRE(gmem_ioctl(sys, KVM_GET_SUPPORTED_CPUID, &pv_table) == 0);
	f = pv_features();
	REQUIRE(f);
	CHECK_EQ(*f & 9, 9); /* CLOCKSOURCE, CLOCKSOURCE2 */
	*f = 1;		     /* CLOCKSOURCE only */
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_CPUID2, &pv_table) == 0);
	memcpy(mem + CODE + 0x800, yield, sizeof(yield));
	gdt_idt();
	memcpy(mem + CODE + 0x480, gp_handler, sizeof(gp_handler));
	gp_gate = (uint64_t *)(mem + 0x4000 + 13 * 16);
	gp_gate[0] = ((CODE + 0x480) & 0xffff) | 8ULL << 16 | 0x8eULL << 40 |
		     ((CODE + 0x480) >> 16 & 0xffff) << 48;
	CHECK_EQ(msr_set(0x4b564d01, 0x5000), 1);

	/* Refused: flags, and a vCPU cap gmem does not have. */
	cap.flags = 1;
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_ENABLE_CAP, &cap), EINVAL);
	cap.flags = 0;
	cap.cap = 123; /* KVM_CAP_HYPERV_SYNIC */
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_ENABLE_CAP, &cap), EINVAL);
	CHECK_ERRNO(gmem_ioctl(vcpufd, KVM_ENABLE_CAP, NULL), EFAULT);
	cap.cap = KVM_CAP_ENFORCE_PV_FEATURE_CPUID;

	for (int on = 0; on < 2; on++) {
		if (on) {
			CHECK_EQ(gmem_vcpu_enable_cap(vcpu, &cap), 0);
		}
		CHECK_EQ(msr_get(0x12, &v), 1); /* SYSTEM_TIME */
		/*
		 * SYSTEM_TIME_NEW: the VMM reads 0 and may write 0 where
		 * the guest cannot touch it (an advertised MSR).
		 */
		CHECK_EQ(msr_get(0x4b564d01, &v), 1);
		CHECK_EQ(v, on ? 0 : 0x5000);
		CHECK_EQ(msr_set(0x4b564d01, on ? 0 : 0x5000), 1);
		CHECK_EQ(msr_set(0x4b564d01, 0x6000), !on);
		REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
		regs.rip = CODE + 0x800;
		regs.rsp = 0x20000;
		REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);
		CHECK_EQ(vcpu_run(), 0);
		CHECK_EQ(run->io.port, 0x20);
		CHECK_EQ(*(uint32_t *)((uint8_t *)run + run->io.data_offset),
			 on ? (uint32_t)-1000 : 0); /* -KVM_ENOSYS */
		CHECK_EQ(vcpu_run(), 0);
		CHECK_EQ(run->io.port, on ? 0x23 : 0x21); /* #GP when on */
	}
	cap.args[0] = 0;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_ENABLE_CAP, &cap), 0);
	CHECK_EQ(msr_get(0x4b564d01, &v), 1);
	CHECK_EQ(v, 0x6000);
	gmem_vcpu_put(vcpu);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_CAP_ENFORCE_PV_FEATURE_CPUID: kvmclock MSRs and "
		   "SCHED_YIELD as the KVM leaf offers them");
}

/*
 * KVM_X86_DISABLE_EXITS_HLT: no KVM_EXIT_HLT; the vCPU sleeps in the
 * guest (mp_state still RUNNABLE) until an event, here an NMI, and
 * KVM_SET_CPUID2 drops PV_UNHALT.
 */
static void test_disable_exits(void)
{
	static const uint8_t hlt[] = {
		0xf4,	    /* hlt */
		0xe6, 0x22, /* out 0x22, al */
	};
	static const uint8_t handler[] = {
		0xe6, 0x21, /* out 0x21, al */
		0x48, 0xcf, /* iretq */
	};
	struct kvm_enable_cap cap = {.cap = KVM_CAP_X86_DISABLE_EXITS};
	struct kvm_mp_state mp;
	struct kvm_regs regs;
	struct gmem_vcpu *vcpu;

	setup(false);
	REQUIRE(gmem_vcpu_from_handle(vcpufd, &vcpu) == 0);
	CHECK_EQ(
		gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_X86_DISABLE_EXITS),
		KVM_X86_DISABLE_EXITS_HLT | KVM_X86_DISABLE_EXITS_PAUSE);
	cap.args[0] = 0x10;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_ENABLE_CAP, &cap), EINVAL);
	cap.args[0] = KVM_X86_DISABLE_EXITS_HLT;
	cap.flags = 1;
	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_ENABLE_CAP, &cap), EINVAL);
	cap.flags = 0;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_ENABLE_CAP, &cap), 0);

	pv_table.c.nent = 256;
	REQUIRE(gmem_ioctl(sys, KVM_GET_SUPPORTED_CPUID, &pv_table) == 0);
	REQUIRE(pv_features());
	*pv_features() |= 1u << 7; /* PV_UNHALT */
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_CPUID2, &pv_table), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_CPUID2, &pv_table), 0);
	CHECK_EQ(*pv_features() >> 7 & 1, 0);

	gdt_idt();
	memcpy(mem + NMI_MAIN, hlt, sizeof(hlt));
	memcpy(mem + NMI_H, handler, sizeof(handler));
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	regs.rip = NMI_MAIN;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);
	CHECK_EQ(kick_halted(vcpu, 1), EINTR);
	CHECK_EQ(run->exit_reason, KVM_EXIT_INTR);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_MP_STATE, &mp), 0);
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_RUNNABLE);
	/* Still in HLT: it sleeps again, until the NMI. */
	CHECK_EQ(kick_halted(vcpu, 2), EINTR);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_NMI, 0), 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.port, 0x21);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs), 0);
	CHECK_EQ(guest_u64(regs.rsp), NMI_MAIN + 1);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x22);
	gmem_vcpu_put(vcpu);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_X86_DISABLE_EXITS_HLT: HLT sleeps in the guest until "
		   "an event; PV_UNHALT dropped");
}

/*
 * KVM_HC_KICK_CPU ends another vCPU's HLT (IF clear, no interrupt);
 * KVM_HC_SEND_IPI delivers by APIC-ID map and counts; POLL_CONTROL's
 * MSR resets to 1 and takes only bit 0.
 */
static void test_pv_kick(void)
{
	static const uint8_t bsp[] = {
		0xb8, 5,    0,	  0, 0, /* mov eax, KVM_HC_KICK_CPU */
		0x31, 0xdb,		/* xor ebx, ebx */
		0xb9, 1,    0,	  0, 0, /* mov ecx, 1 (APIC ID) */
		0x0f, 0x01, 0xc1,	/* vmcall */
		0xe7, 0x41,		/* out 0x41, eax */
		0xb8, 10,   0,	  0, 0, /* mov eax, KVM_HC_SEND_IPI */
		0xbb, 2,    0,	  0, 0, /* mov ebx, 2 (APIC 1) */
		0x31, 0xc9,		/* xor ecx, ecx */
		0x31, 0xd2,		/* xor edx, edx (min 0) */
		0xbe, 0,    4,	  0, 0, /* mov esi, 0x400 (NMI) */
		0x0f, 0x01, 0xc1,	/* vmcall */
		0xe7, 0x42,		/* out 0x42, eax */
		0xb8, 10,   0,	  0, 0, /* mov eax, KVM_HC_SEND_IPI */
		0xbe, 0,    0,	  4, 0, /* mov esi, 0x40000 (shorthand) */
		0x0f, 0x01, 0xc1,	/* vmcall */
		0xe7, 0x43,		/* out 0x43, eax */
	};
	static const uint8_t ap_code[] = {
		0xf4,	    /* hlt */
		0xe6, 0x40, /* out 0x40, al */
	};
	struct kvm_mp_state mp = {.mp_state = KVM_MP_STATE_RUNNABLE};
	struct kvm_vcpu_events ev;
	struct kvm_sregs sregs;
	struct kvm_regs regs = {.rip = CODE + 0xa00, .rflags = 2};
	struct gmem_vcpu *apv;
	struct kvm_run *aprun;
	pthread_t t;
	uint64_t v;
	int ap, err;

	setup(true);
	memcpy(mem + CODE + 0x800, bsp, sizeof(bsp));
	memcpy(mem + CODE + 0xa00, ap_code, sizeof(ap_code));
	ap = gmem_ioctl(vmfd, KVM_CREATE_VCPU, 1);
	REQUIRE(ap >= 0);
	REQUIRE(gmem_vcpu_from_handle(ap, &apv) == 0);
	aprun = gmem_mmap(NULL, gmem_ioctl(sys, KVM_GET_VCPU_MMAP_SIZE, 0),
			  PROT_READ | PROT_WRITE, MAP_SHARED, ap, 0);
	REQUIRE(aprun != MAP_FAILED);
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_SREGS, &sregs) == 0);
	REQUIRE(gmem_ioctl(ap, KVM_SET_SREGS, &sregs) == 0);
	REQUIRE(gmem_ioctl(ap, KVM_SET_REGS, &regs) == 0);
	REQUIRE(gmem_ioctl(ap, KVM_SET_MP_STATE, &mp) == 0);
	REQUIRE(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs) == 0);
	regs.rip = CODE + 0x800;
	REQUIRE(gmem_ioctl(vcpufd, KVM_SET_REGS, &regs) == 0);

	/* The AP halts (its halt count says so); the BSP kicks it. */
	err = ap;
	pthread_create(&t, NULL, ap_run, &err);
	while (halts(apv) < 1)
		sched_yield();
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x41);
	CHECK_EQ(*(uint32_t *)((uint8_t *)run + run->io.data_offset), 0);
	pthread_join(t, NULL);
	CHECK_EQ(err, 0);
	CHECK_EQ(aprun->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(aprun->io.port, 0x40);
	CHECK_EQ(gmem_ioctl(ap, KVM_GET_MP_STATE, &mp), 0);
	CHECK_EQ(mp.mp_state, KVM_MP_STATE_RUNNABLE);

	/* An NMI by the map: one taken; a shorthand is -KVM_EINVAL. */
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x42);
	CHECK_EQ(*(uint32_t *)((uint8_t *)run + run->io.data_offset), 1);
	CHECK_EQ(gmem_ioctl(ap, KVM_GET_VCPU_EVENTS, &ev), 0);
	CHECK_EQ(ev.nmi.pending, 1);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x43);
	CHECK_EQ(*(uint32_t *)((uint8_t *)run + run->io.data_offset),
		 (uint32_t)-22);

	REQUIRE(vcpufd != ap);
	CHECK_EQ(msr_get(0x4b564d05, &v), 1); /* POLL_CONTROL */
	CHECK_EQ(v, 1);
	CHECK_EQ(msr_set(0x4b564d05, 2), 0);
	CHECK_EQ(msr_set(0x4b564d05, 0), 1);
	CHECK_EQ(msr_get(0x4b564d05, &v), 1);
	CHECK_EQ(v, 0);
	gmem_vcpu_put(apv);
	gmem_close(ap);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_HC_KICK_CPU ends a HLT, KVM_HC_SEND_IPI by APIC ID, "
		   "MSR_KVM_POLL_CONTROL");
}

int main(void)
{
	struct kvm_regs regs;

	tap_plan(40, 60);
	setup(false);

	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.direction, KVM_EXIT_IO_OUT);
	CHECK_EQ(run->io.port, 0x10);
	CHECK_EQ(run->io.size, 1);
	CHECK_EQ(*((uint8_t *)run + run->io.data_offset), 42);
	tap_result("OUT: KVM_EXIT_IO with port, size and data");

	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.direction, KVM_EXIT_IO_IN);
	CHECK_EQ(run->io.port, 0x11);
	*((uint8_t *)run + run->io.data_offset) = 0x5c;
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x12);
	CHECK_EQ(*((uint8_t *)run + run->io.data_offset), 0x5c);
	tap_result("IN: the VMM's data reaches AL on the next KVM_RUN");

	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_MMIO);
	CHECK_EQ(run->mmio.phys_addr, MMIO_GPA + 8);
	CHECK_EQ(run->mmio.len, 8);
	CHECK_EQ(run->mmio.is_write, 0);
	uint64_t v = 0x1122334455667788ULL;
	memcpy(run->mmio.data, &v, 8);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.port, 0x13);
	CHECK_EQ(*(uint32_t *)((uint8_t *)run + run->io.data_offset),
		 0x55667788);
	tap_result("MMIO read: exit, then the VMM's data completes the load");

	/* Without KVM_CAP_EXIT_HYPERCALL the guest gets -KVM_ENOSYS... */
	struct kvm_regs saved;
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &saved), 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x14);
	CHECK_EQ(*(uint32_t *)((uint8_t *)run + run->io.data_offset),
		 (uint32_t)-1000);
	/* ...with it, an exit whose answer lands in RAX. */
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_EXIT_HYPERCALL,
		.args[0] = 1 << KVM_HC_MAP_GPA_RANGE,
	};
	CHECK_EQ(gmem_ioctl(sys, KVM_CHECK_EXTENSION, KVM_CAP_EXIT_HYPERCALL),
		 1 << KVM_HC_MAP_GPA_RANGE);
	CHECK_EQ(gmem_ioctl(vmfd, KVM_ENABLE_CAP, &cap), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_SET_REGS, &saved), 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_HYPERCALL);
	CHECK_EQ(run->hypercall.nr, KVM_HC_MAP_GPA_RANGE);
	CHECK_EQ(run->hypercall.args[0], 0x3000);
	CHECK_EQ(run->hypercall.args[1], 1);
	CHECK_EQ(run->hypercall.args[2], KVM_MAP_GPA_RANGE_ENCRYPTED);
	run->hypercall.ret = 0;
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->io.port, 0x14);
	CHECK_EQ(*(uint32_t *)((uint8_t *)run + run->io.data_offset), 0);
	tap_result(
		"VMCALL MAP_GPA_RANGE: -KVM_ENOSYS, or an exit once enabled");

	/* A write to a no-write page: memory fault, no side effect. */
	struct kvm_memory_attributes a = {
		.address = 0x5000,
		.size = 4096,
		.attributes = KVM_MEMORY_ATTRIBUTE_NW,
	};
	CHECK_EQ(gmem_ioctl(vmfd, KVM_SET_MEMORY_ATTRIBUTES, &a), 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &saved), 0);
	CHECK_ERRNO(vcpu_run(), EFAULT);
	CHECK_EQ(run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	CHECK_EQ(run->memory_fault.gpa, 0x5000);
	CHECK_EQ(run->memory_fault.size, 4096);
	/* 6.12's flags: nothing for a shared page (no access bits asked) */
	CHECK_EQ(run->memory_fault.flags, 0);
	CHECK_EQ(gmem_ioctl(vcpufd, KVM_GET_REGS, &regs), 0);
	CHECK_EQ(regs.rip, saved.rip);
	CHECK_EQ(mem[0x5000], 0);
	/* The guest side of the fault, for a VMM that reflects it as #PF. */
	struct gmem_vcpu *gv;
	uint64_t lin = 0;
	uint32_t pfec = 0;
	REQUIRE(gmem_vcpu_from_handle(vcpufd, &gv) == 0);
	CHECK_EQ(gmem_vcpu_get_fault_linear(gv, &lin, &pfec), 0);
	CHECK_EQ(lin, 0x5000);
	CHECK_EQ(pfec, 0x3); /* P | W, CPL 0 */
	CHECK_EQ(gmem_vcpu_inject_exception(gv, 32, false, 0, 0), -EINVAL);
	CHECK_EQ(gmem_vcpu_inject_exception(gv, 2, false, 0, 0), -EINVAL);
	tap_result("write to an NW page: memory-fault exit, RIP at the store");

	a.attributes = 0;
	CHECK_EQ(gmem_ioctl(vmfd, KVM_SET_MEMORY_ATTRIBUTES, &a), 0);
	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_IO);
	CHECK_EQ(run->io.port, 0x15);
	CHECK_EQ(mem[0x5000], 0x77);
	tap_result("after the VMM clears NW, KVM_RUN re-executes the store");

	CHECK_EQ(vcpu_run(), 0);
	CHECK_EQ(run->exit_reason, KVM_EXIT_HLT);
	CHECK_EQ(gmem_vcpu_get_fault_linear(gv, &lin, &pfec), -ENOENT);
	tap_result("HLT exits");

	/* The spin loop: a kick from another thread ends the run. */
	struct gmem_vcpu *vcpu;
	pthread_t t;

	REQUIRE(gmem_vcpu_from_handle(vcpufd, &vcpu) == 0);
	pthread_create(&t, NULL, kicker, vcpu);
	CHECK_ERRNO(vcpu_run(), EINTR);
	CHECK_EQ(run->exit_reason, KVM_EXIT_INTR);
	pthread_join(t, NULL);
	tap_result("gmem_vcpu_kick() from another thread: EINTR");

	run->immediate_exit = 1;
	CHECK_ERRNO(vcpu_run(), EINTR);
	run->immediate_exit = 0;
	tap_result("KVM_RUN with immediate_exit set: EINTR at once");

	CHECK_ERRNO(gmem_ioctl(vmfd, KVM_CREATE_IRQCHIP, 0), EINVAL);
	gmem_vcpu_put(gv);
	gmem_vcpu_put(vcpu);
	gmem_close(vcpufd);
	gmem_close(vmfd);
	gmem_close(sys);
	tap_result("KVM_CREATE_IRQCHIP after the first vCPU: EINVAL");

	test_handle_ref();
	test_signal_msi();
	test_irqchip_halt();
	test_user_irq();
	test_string_io();
	test_fpu_state();
	test_msr_lists();
	test_user_msr();
	test_vcpu_events();
	test_debugregs();
	test_guest_debug();
	test_nmi();
	test_irq_line();
	test_irqfd();
	test_gsi_routing();
	test_ioeventfd();
	test_init_sipi();
	test_pv_enforce();
	test_disable_exits();
	test_pv_kick();
	return tap_done();
}
