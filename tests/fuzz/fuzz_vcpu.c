// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: the x86-64 interpreter on arbitrary instruction bytes
 * and arbitrary register state, with an instruction budget.
 *
 * Input: a header (struct fz_head) with every general register, RIP,
 * RFLAGS, flips of CR0/CR4/EFER bits (CR4.OSFXSR and OSXSAVE start set,
 * with XCR0 all the model supports, so SSE and AVX instructions run unless
 * a flip clears them), the CPL, MAXPHYADDR with or
 * without the XO alias, and a page that stage 2 denies or turns into an exit;
 * then the code, copied to H_CODE of the flat harness guest
 * (tests/x86_harness.h: identity map, GDT, IDT, TSS in 1 MiB of RAM).
 * Each stop is answered as a VMM would (MMIO and IN with input-derived
 * data) until WORK_BUDGET instructions or MAX_STOPS stops.
 *
 * What must hold: no crash, no sanitizer report, no hang (libFuzzer's
 * -timeout), and no host access outside guest memory.  Guest RAM is one
 * heap block, so ASan's redzones catch a read or write past it; any
 * address the harness's map() hands out lies inside it by construction.
 */
#include "x86_harness.h"

#define MEM_SIZE (1u << 20)
#define WORK_BUDGET 4000
#define MAX_STOPS 64

struct fz_head {
	uint64_t gpr[16]; /* kvm_regs order: rax rbx rcx rdx rsi rdi rsp rbp
			     r8.. */
	uint64_t rip, rflags;
	uint64_t cr0_flip, cr4_flip, efer_flip;
	uint8_t ctl, deny_page, deny_acc, exit_page;
	uint32_t answer; /* data for MMIO reads and IN */
};

/* ctl bits */
#define CTL_CPL3 (1u << 0)
#define CTL_RAW_RIP (1u << 1) /* RIP as given, not inside the code page */
#define CTL_XO (1u << 2)      /* MAXPHYADDR 40 with the XO alias */
#define CTL_RAW_RSP (1u << 3) /* RSP as given, not the harness stack */
#define CTL_SREGS (1u << 4)   /* apply the CR/EFER flips */
#define CTL_DENY (1u << 5)    /* stage 2 denies deny_acc on deny_page */
#define CTL_EXIT (1u << 6)    /* exit_page gives a backend exit */

/* The bits a guest (or a careless VMM) could plausibly flip. */
#define CR0_FLIPS                                                         \
	(X86_CR0_WP | X86_CR0_NE | X86_CR0_ET | X86_CR0_TS | X86_CR0_EM | \
	 X86_CR0_MP)
#define CR4_FLIPS 0x3ffffull
#define EFER_FLIPS (X86_EFER_NXE | X86_EFER_SCE)

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct hvm vm;
static uint8_t *mem0;	    /* RAM as hvm_init() left it */
static struct kvm_sregs s0; /* and the registers */
static struct kvm_regs r0;
static uint8_t xs0[X86_XSAVE_SIZE]; /* x87/SSE/YMM state, as XSAVE */

/*
 * One machine for the whole run, reset to the same state before each
 * input (RAM, registers, MSRs, caches), so an input reproduces alone.
 */
static void reset(void)
{
	if (!mem0) {
		if (hvm_init(&vm, MEM_SIZE) || !(mem0 = malloc(MEM_SIZE)))
			abort();
		memcpy(mem0, vm.mem, MEM_SIZE);
		x86_get_sregs(&vm.cpu, &s0);
		x86_get_regs(&vm.cpu, &r0);
		x86_get_xsave(&vm.cpu, xs0);
		/* SSE and AVX on, as guests run (a CR4 flip turns it off). */
		s0.cr4 |= X86_CR4_OSFXSR | X86_CR4_OSXMMEXCPT | X86_CR4_OSXSAVE;
	}
	memcpy(vm.mem, mem0, MEM_SIZE);
	memset(vm.s2deny, 0, MEM_SIZE >> 12);
	vm.exit_gpa = ~0ull;
	x86_set_maxphyaddr(&vm.cpu, 48, false);
	if (x86_set_sregs(&vm.cpu, &s0))
		abort();
	x86_set_regs(&vm.cpu, &r0);
	if (x86_set_xsave(&vm.cpu, xs0) ||
	    x86_set_xcr(&vm.cpu, 0, X86_XCR0_SUPPORTED))
		abort();
	x86_set_msr(&vm.cpu, X86_MSR_FS_BASE, 0);
	x86_set_msr(&vm.cpu, X86_MSR_GS_BASE, 0);
	x86_set_msr(&vm.cpu, X86_MSR_SFMASK, 0);
	vm.cpu.pend.valid = false;
	x86_cpu_flush(&vm.cpu);
	x86_cpu_invalidate_gpa(&vm.cpu, 0, MEM_SIZE);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fz_head h;
	struct kvm_sregs s;
	struct kvm_regs r;
	uint64_t left = WORK_BUDGET;

	memset(&h, 0, sizeof(h));
	memcpy(&h, data, size < sizeof(h) ? size : sizeof(h));
	data += size < sizeof(h) ? size : sizeof(h);
	size -= size < sizeof(h) ? size : sizeof(h);

	reset();
	memcpy(vm.mem + H_CODE, data,
	       size < H_DATA - H_CODE ? size : H_DATA - H_CODE);
	x86_set_maxphyaddr(&vm.cpu, h.ctl & CTL_XO ? 40 : 48, h.ctl & CTL_XO);
	if (h.ctl & CTL_DENY)
		vm.s2deny[h.deny_page % (MEM_SIZE >> 12)] = h.deny_acc & 7;
	if (h.ctl & CTL_EXIT)
		vm.exit_gpa = (uint64_t)(h.exit_page % (MEM_SIZE >> 12)) << 12;
	if (h.ctl & CTL_CPL3)
		hvm_set_cpl(&vm, 3);
	if (h.ctl & CTL_SREGS) {
		x86_get_sregs(&vm.cpu, &s);
		s.cr0 ^= h.cr0_flip & CR0_FLIPS;
		s.cr4 ^= h.cr4_flip & CR4_FLIPS;
		s.efer ^= h.efer_flip & EFER_FLIPS;
		/* Refused state is a VMM error, not a guest's: keep the old. */
		(void)x86_set_sregs(&vm.cpu, &s);
	}
	x86_set_msr(&vm.cpu, X86_MSR_LSTAR, H_CODE + (h.gpr[0] & 0xfff));
	x86_set_msr(&vm.cpu, X86_MSR_STAR, 0x0018000800000000ull);

	memcpy(&r, h.gpr, sizeof(h.gpr));
	r.rip = h.ctl & CTL_RAW_RIP ? h.rip : H_CODE + (h.rip & 0xfff);
	if (!(h.ctl & CTL_RAW_RSP))
		r.rsp = H_STACK - (h.gpr[6] & 0xff8);
	r.rflags = h.rflags | 2;
	x86_set_regs(&vm.cpu, &r);

	for (unsigned n = 0; n < MAX_STOPS && left; n++) {
		int st = hvm_run(&vm, left);

		left -= vm.stop.executed < left ? vm.stop.executed : left;
		if (st == X86_STOP_SHUTDOWN || st == X86_STOP_INTERNAL ||
		    st == X86_STOP_BUDGET || st == X86_STOP_S2_EXIT)
			break;
		if (st == X86_STOP_MMIO && !vm.stop.mmio.is_write)
			x86_complete_mmio(&vm.cpu, h.answer);
		if (st == X86_STOP_IO && !vm.stop.io.is_write)
			x86_complete_in(&vm.cpu, h.answer);
		if (st == X86_STOP_VMCALL)
			vm.cpu.gpr[X86_RAX] = -1000;
		if (!vm.stop.executed)
			left--; /* a stop that retired nothing */
	}
	return 0;
}
