/* SPDX-License-Identifier: MIT */
/*
 * The x86-64 CPU model: an interpreter for long mode with 4-level paging,
 * behind a small stage-2 backend interface (struct x86_bus): the vCPU layer
 * plugs in gmem's stage 2, the tests a flat memory model.
 *
 * How the vCPU layer drives it:
 *
 *   x86_cpu_init(cpu, &bus, ctx);        once; then KVM_SET_* map onto
 *   x86_set_regs/sregs/msr/cpuid(...)    the setters (any state accepted;
 *                                        x86_run refuses non-64-bit mode
 *                                        with an INTERNAL stop)
 *   loop:
 *     x86_run(cpu, budget, &stop)  ->  stop.reason:
 *       BUDGET     run again (or check signals)
 *       HLT        KVM_EXIT_HLT; RIP is after the HLT
 *       IO         KVM_EXIT_IO; OUT has completed; for IN call
 *                  x86_complete_in() before the next x86_run (without it,
 *                  the IN is simply executed again); an answered INS is
 *                  re-executed first (x86_mmio_pending())
 *       VMCALL     RIP advanced.  KVM's rules are the caller's: CPL > 0
 *                  (cpu->cpl) gives RAX = -KVM_EPERM, unknown hypercalls
 *                  RAX = -KVM_ENOSYS, KVM_HC_MAP_GPA_RANGE an exit.
 *       MMIO       KVM_EXIT_MMIO; for a read call x86_complete_mmio()
 *                  with the data before the next x86_run
 *       S2_EXIT    the backend's own exit (memory fault); RIP at the
 *                  instruction, nothing done; run again after the fix
 *       SHUTDOWN   triple fault: KVM_EXIT_SHUTDOWN
 *       KICK       *kick or *immediate_exit was set (checked at entry and
 *                  every 1024 instructions): -EINTR
 *       MSR        RDMSR/WRMSR refused for a reason cpu->user_msr_exits
 *                  names (KVM_CAP_X86_USER_SPACE_MSR): RIP at it; call
 *                  x86_complete_msr() with the VMM's answer before the
 *                  next x86_run
 *       PV         a WRMSR of a kvmclock MSR retired and left work in
 *                  cpu->pv_req (x86_take_pv()): do it, run again
 *       INTERNAL   stop.internal.why: KVM_EXIT_INTERNAL_ERROR (fetch from
 *                  MMIO, exception frame in MMIO, page-crossing MMIO,
 *                  page tables outside RAM, compatibility mode; an
 *                  unimplemented instruction, with its bytes, under
 *                  cpu->exit_on_emulation_failure)
 *
 * Invalidation: the soft TLB caches host page pointers and the decode
 * cache caches decoded instructions per guest-physical page.  Whoever
 * changes stage 2 (zap, permission change) or writes guest memory other
 * than through this vCPU (the VMM, another vCPU's interpreter) must make
 * the vCPU call x86_cpu_invalidate_gpa() (or x86_cpu_flush()) before the
 * change is relied on.  These calls touch vCPU-private state: make them on
 * the vCPU thread, or while it is outside x86_run().  A shootdown from
 * another thread can set *kick, wait for the vCPU thread to see the KICK
 * stop (that happens between instructions, so no host pointer is held),
 * invalidate, and re-enter x86_run without returning to the VMM.
 * Writes through this vCPU's interpreter drop stale decodes themselves
 * (self-modifying code), including writes through another alias; CPUID,
 * the serializing instruction of the SDM's cross-modifying-code protocol,
 * drops the whole decode cache, so code another vCPU wrote is seen after
 * it.
 *
 * SSE (sse.c): XMM0-15 and MXCSR, SSE through SSE4.2 and POPCNT (the
 * floating-point ones on the host's unit under the guest's MXCSR, #XM
 * for an unmasked exception), LDMXCSR/STMXCSR,
 * FXSAVE/FXRSTOR; XSAVE of x87 and SSE state: XSAVE, XSAVEOPT (init
 * optimisation, no modified optimisation), XSAVEC, XRSTOR in both forms
 * and XGETBV/XSETBV (system.c), and the same images for the VMM
 * (x86_get/set_xsave); no XSAVES/XRSTORS.  16-byte accesses to MMIO
 * stop with INTERNAL.
 *
 * AVX (avx.c): the YMM upper halves (XSAVE component 2), the VEX.128
 * forms of the SSE instructions, the VEX.256 floating-point ones and
 * AVX's own (broadcasts, 128-bit inserts/extracts/permutes, VPERMILPS/PD,
 * VMASKMOV, VTEST, VZEROUPPER/VZEROALL), behind X86_AVX.
 *
 * x87 (x87.c): every D8-DF instruction and FWAIT, run on the host's x87
 * unit with the guest's state; #NM, #MF and the last-instruction
 * pointers are the model's.  Only RAM operands: an x87 instruction on
 * MMIO is an emulation failure as under KVM (FNSTSW/FNSTCW excepted).
 *
 * Interrupts come only from x86_inject(): the backend's interrupt
 * controller checks RFLAGS.IF and the STI shadow first (see irq_window).
 *
 * NMIs come from x86_inject_nmi(), blocked from delivery to the next IRET.
 *
 * Not modelled: TF/debug
 * registers (DR0-7 are VMM state only: no MOV DRn, no breakpoints),
 * the MOV SS interrupt shadow, SMM, the I/O permission bitmap (IN/OUT at
 * CPL > IOPL is #GP), FERR#/IGNNE# (CR0.NE=0 still gives #MF, as
 * under KVM), MMX, AVX2, FMA, XSAVES/XRSTORS (all #UD), XSAVE's
 * modified optimisation, PCID, LA57, 16/32-bit modes, task switches; #SS is
 * reported as #GP(0) for non-canonical stack addresses.
 */
#ifndef GMEM_X86_H
#define GMEM_X86_H

#include <stdbool.h>
#include <stdint.h>

#include "gmem/uapi.h"

/* Access kinds, also the permission bits a stage-2 mapping allows. */
#define X86_ACC_READ 1
#define X86_ACC_WRITE 2
#define X86_ACC_FETCH 4

enum x86_s2 {
	X86_S2_OK = 0,
	X86_S2_MMIO,  /* no memory there: the access becomes an MMIO stop */
	X86_S2_EXIT,  /* the backend filled its own exit record */
	X86_S2_XO_PF, /* read/write through the execute-only alias: #PF */
};

struct x86_bus {
	/*
	 * Resolve the guest-physical 4 KiB page containing @gpa for access
	 * @acc (one X86_ACC_* bit).  On X86_S2_OK, *page is the host address
	 * of the page (valid until the backend calls x86_cpu_flush() or
	 * x86_cpu_invalidate_gpa() for it) and *perm the X86_ACC_* bits the
	 * mapping allows, which the soft TLB caches.  Page-table walks call
	 * it with X86_ACC_READ (X86_ACC_WRITE to set A/D bits) on the
	 * table's GPA, never with the XO alias bit.
	 */
	int (*map)(void *ctx, uint64_t gpa, unsigned acc, uint8_t **page,
		   unsigned *perm);
};

enum x86_stop_reason {
	X86_STOP_BUDGET = 0, /* the instruction budget ran out */
	X86_STOP_HLT,	     /* HLT at CPL 0; RIP after it */
	X86_STOP_IO,	     /* IN/OUT; see struct x86_stop.io */
	X86_STOP_VMCALL,     /* RIP advanced; the caller sets RAX */
	X86_STOP_MMIO,	     /* see struct x86_stop.mmio */
	X86_STOP_S2_EXIT,    /* backend exit; RIP at the instruction */
	X86_STOP_SHUTDOWN,   /* triple fault */
	X86_STOP_KICK,	     /* *kick or *immediate_exit was set */
	X86_STOP_INTERNAL,   /* emulation failure not caused by the guest */
	X86_STOP_MSR,	     /* see struct x86_stop.msr */
	X86_STOP_PV,	     /* cpu->pv_req asks for work; RIP advanced */
	X86_STOP_DEBUG,	     /* for the VMM's debugger: struct x86_stop.debug */
};

struct x86_stop {
	int reason;
	union {
		/*
		 * OUT has completed (RIP advanced) and data holds the value
		 * written.  IN has not: RIP is still at the instruction and
		 * the caller must call x86_complete_in() before running on.
		 * count is the number of elements: 1, except for INS, which
		 * asks for up to 1024 bytes at once (KVM's PIO read-ahead).
		 * An OUTS iteration is an OUT of one element; with REP, RIP
		 * stays at the instruction until an iteration finds RCX 0.
		 */
		struct {
			uint16_t port;
			uint8_t size; /* 1, 2 or 4 */
			uint8_t is_write;
			uint32_t data;
			uint16_t count;
		} io;
		/*
		 * Nothing of the instruction is committed; RIP is at it.
		 * A read: call x86_complete_mmio() with the value, then run
		 * again; the re-executed read returns it.  A write: data
		 * holds the bytes; the re-executed instruction treats the
		 * write to the same gpa/len as already delivered.
		 */
		struct {
			uint64_t gpa;
			uint8_t len;
			uint8_t is_write;
			uint8_t data[8];
		} mmio;
		/* A refused RDMSR/WRMSR, nothing done: KVM_MSR_EXIT_REASON_*.
		 */
		struct {
			uint32_t index;
			uint32_t reason;
			uint64_t data; /* WRMSR's EDX:EAX */
			uint8_t is_write;
		} msr;
		/*
		 * KVM_EXIT_DEBUG: vector 1 (a breakpoint of the VMM's, a
		 * single step: RIP at the next instruction, or at the one an
		 * instruction breakpoint or DR7.GD stopped) or 3 (INT3, RIP
		 * at it); pc is linear.  dr6 (with its fixed ones) and dr7
		 * are valid for vector 1 only, as KVM writes them.
		 */
		struct {
			uint32_t exception;
			uint64_t pc, dr6, dr7;
		} debug;
		struct {
			uint64_t rip;
			const char *why;
			/* an instruction the model lacks: its bytes, else 0 */
			uint8_t insn_len;
			uint8_t insn[15];
		} internal;
	};
	uint64_t executed; /* instructions retired by this call */
	/*
	 * X86_STOP_S2_EXIT: the linear address whose access stage 2 refused
	 * and the #PF error code that access would carry (P=1, W/R, U/S,
	 * I/D), so that a VMM can reflect the fault into the guest.
	 */
	uint64_t s2_lin;
	uint32_t s2_pfec;
};

/* Segment register order = the ModRM encoding of Sreg. */
enum { X86_ES, X86_CS, X86_SS, X86_DS, X86_FS, X86_GS, X86_NSEG };

enum {
	X86_RAX,
	X86_RCX,
	X86_RDX,
	X86_RBX,
	X86_RSP,
	X86_RBP,
	X86_RSI,
	X86_RDI,
	X86_R8,
	X86_R9,
	X86_R10,
	X86_R11,
	X86_R12,
	X86_R13,
	X86_R14,
	X86_R15,
};

/* RFLAGS bits. */
#define X86_CF (1u << 0)
#define X86_PF (1u << 2)
#define X86_AF (1u << 4)
#define X86_ZF (1u << 6)
#define X86_SF (1u << 7)
#define X86_TF (1u << 8)
#define X86_IF (1u << 9)
#define X86_DF (1u << 10)
#define X86_OF (1u << 11)
#define X86_IOPL (3u << 12)
#define X86_NT (1u << 14)
#define X86_RF (1u << 16)
#define X86_VM (1u << 17)
#define X86_AC (1u << 18)
#define X86_ID (1u << 21)
#define X86_ARITH (X86_CF | X86_PF | X86_AF | X86_ZF | X86_SF | X86_OF)

/* Control registers and EFER. */
#define X86_CR0_PE (1ull << 0)
#define X86_CR0_MP (1ull << 1)
#define X86_CR0_EM (1ull << 2)
#define X86_CR0_TS (1ull << 3)
#define X86_CR0_ET (1ull << 4)
#define X86_CR0_NE (1ull << 5)
#define X86_CR0_WP (1ull << 16)
#define X86_CR0_AM (1ull << 18)
#define X86_CR0_NW (1ull << 29)
#define X86_CR0_CD (1ull << 30)
#define X86_CR0_PG (1ull << 31)
#define X86_CR4_DE (1ull << 3)
#define X86_CR4_PSE (1ull << 4)
#define X86_CR4_PAE (1ull << 5)
#define X86_CR4_MCE (1ull << 6)
#define X86_CR4_PGE (1ull << 7)
#define X86_CR4_TSD (1ull << 2)
#define X86_CR4_OSFXSR (1ull << 9)
#define X86_CR4_OSXMMEXCPT (1ull << 10)
#define X86_CR4_FSGSBASE (1ull << 16)
#define X86_CR4_SMEP (1ull << 20)
#define X86_CR4_OSXSAVE (1ull << 18)
#define X86_CR4_SMAP (1ull << 21)
#define X86_EFER_SCE (1ull << 0)
#define X86_EFER_LME (1ull << 8)
#define X86_EFER_LMA (1ull << 10)
#define X86_EFER_NXE (1ull << 11)

/* Page-table entry bits (SDM vol. 3, 4.5), for the walk and the loader. */
#define X86_PTE_P (1ull << 0)
#define X86_PTE_W (1ull << 1)
#define X86_PTE_U (1ull << 2)
#define X86_PTE_A (1ull << 5)
#define X86_PTE_D (1ull << 6)
#define X86_PTE_PS (1ull << 7)
#define X86_PTE_NX (1ull << 63)
#define X86_PTE_ADDR 0x000ffffffffff000ull

/* MSRs the model knows. */
#define X86_MSR_TSC 0x10
#define X86_MSR_TSC_ADJUST 0x3b
#define X86_MSR_K7_HWCR 0xc0010015
#define X86_MSR_APIC_BASE 0x1b
#define X86_MSR_EFER 0xc0000080
#define X86_MSR_STAR 0xc0000081
#define X86_MSR_LSTAR 0xc0000082
#define X86_MSR_CSTAR 0xc0000083
#define X86_MSR_SFMASK 0xc0000084
#define X86_MSR_FS_BASE 0xc0000100
#define X86_MSR_GS_BASE 0xc0000101
#define X86_MSR_KERNEL_GS_BASE 0xc0000102
#define X86_MSR_TSC_AUX 0xc0000103
#define X86_MSR_UCODE_REV 0x8b
#define X86_MSR_PLATFORM_INFO 0xce
#define X86_MSR_POWER_CTL 0x1fc
#define X86_MSR_MISC_ENABLE 0x1a0
/* KVM's paravirtual clock MSRs (the old pair and the _NEW pair). */
#define X86_MSR_KVM_WALL_CLOCK 0x11
#define X86_MSR_KVM_SYSTEM_TIME 0x12
#define X86_MSR_KVM_WALL_CLOCK_NEW 0x4b564d00
#define X86_MSR_KVM_STEAL_TIME 0x4b564d03
#define X86_MSR_KVM_POLL_CONTROL 0x4b564d05
#define X86_MSR_KVM_SYSTEM_TIME_NEW 0x4b564d01

/* IA32_MISC_ENABLE bits KVM looks at. */
#define X86_MISC_ENABLE_EMON (1ull << 7)
#define X86_MISC_ENABLE_BTS_UNAVAIL (1ull << 11)
#define X86_MISC_ENABLE_PEBS_UNAVAIL (1ull << 12)
#define X86_MISC_ENABLE_MWAIT (1ull << 18)

/* Requests a WRMSR leaves for the vCPU layer (x86_cpu.pv_req). */
#define X86_PV_CLOCK 1	/* (re)write this vCPU's kvmclock structure */
#define X86_PV_WALL 2	/* write the wall clock at the MSR's GPA */
#define X86_PV_OLD 4	/* the guest wrote the old MSR_KVM_SYSTEM_TIME */
#define X86_PV_NEW 8	/* ... or MSR_KVM_SYSTEM_TIME_NEW */
#define X86_PV_STEAL 16 /* steal time enabled: record it */

/* DR6 and DR7 at reset (all breakpoints off), KVM's DR6_ACTIVE_LOW etc. */
#define X86_DR6_INIT 0xffff0ff0ull
#define X86_DR7_INIT 0x400ull

/* MXCSR: reset value and the bits LDMXCSR/FXRSTOR accept (DAZ, no MM). */
#define X86_MXCSR_DEFAULT 0x1f80u
#define X86_MXCSR_MASK 0xffffu
#define X86_FCW_DEFAULT 0x37fu

/* Exception vectors. */
enum {
	X86_DE = 0,
	X86_DB = 1,
	X86_BP = 3,
	X86_OF_VEC = 4,
	X86_UD = 6,
	X86_NM = 7,
	X86_DF_VEC = 8,
	X86_TS = 10,
	X86_NP = 11,
	X86_SS_VEC = 12,
	X86_GP = 13,
	X86_PF_VEC = 14,
	X86_MF = 16,
	X86_AC_VEC = 17,
	X86_MC = 18,
	X86_XM = 19,
};

/* #PF error code bits. */
#define X86_PFEC_P (1u << 0)
#define X86_PFEC_W (1u << 1)
#define X86_PFEC_U (1u << 2)
#define X86_PFEC_RSVD (1u << 3)
#define X86_PFEC_I (1u << 4)

#define X86_TLB_SIZE 256
#define X86_DC_BUCKETS 512
#define X86_MAX_CPUID 256 /* KVM_MAX_CPUID_ENTRIES */

struct x86_dpage;
struct x86_insn;

/*
 * Soft TLB entry: one linear 4 KiB page.  allow holds X86_ACC_* bits for
 * CPL 0-2 in bits 0-2 and for CPL 3 in bits 3-5, already intersected with
 * the stage-2 permissions and with "D already set" for writes.  A page
 * that holds decoded code has its write bits cleared (wok keeps them) so
 * that writes take the slow path and drop stale decodes.
 */
struct x86_tlbe {
	uint64_t tag;		/* linear page number, or ~0 when empty */
	uint8_t *host;		/* host address of the page */
	uint64_t gpa;		/* guest-physical page (with the XO bit) */
	struct x86_dpage *code; /* decoded instructions of that page */
	uint8_t allow;
	uint8_t wok; /* write bits before the code page cleared them */
};

/* An XMM register, viewed as lanes of each width (little-endian host). */
union x86_xmm {
	uint8_t b[16];
	uint16_t w[8];
	uint32_t d[4];
	uint64_t q[2];
	int8_t sb[16];
	int16_t sw[8];
	int32_t sd[4];
	int64_t sq[2];
};

/*
 * The x87 state (x87.c executes it), as FXSAVE stores it: st[] in stack
 * order (ST(0) first), ftw the abridged tag of the physical registers.
 */
struct x86_x87 {
	uint16_t fcw, fsw, fop, fcs, fds;
	uint8_t ftw; /* abridged tag: bit i set = register i valid */
	uint64_t fip, fdp;
	uint8_t st[8][10]; /* 80-bit registers, ST(0) first */
};

/* Lazy arithmetic flags: the last flag-setting op and its operands. */
struct x86_lazy {
	uint64_t res, a, b;
	uint8_t op;   /* enum x86_lf, internal */
	uint8_t size; /* operand size in bytes */
	uint8_t cf;   /* carry kept by INC/DEC */
};

struct x86_cpu {
	/* Register file. */
	uint64_t gpr[16];
	uint64_t rip;
	uint64_t rflags; /* arithmetic bits valid only after flags */
	struct x86_lazy lf;
	struct x86_lazy lf_rot; /* under a ROL/ROR (lf.op == LF_ROT) */
	struct kvm_segment seg[X86_NSEG];
	struct kvm_segment tr, ldt;
	struct kvm_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer;
	uint64_t kernel_gs_base, star, lstar, cstar, sfmask;
	uint64_t apic_base, tsc_aux;
	/* TSC = tsc_base + (host ns - tsc_ns) * tsc_khz / 10^6 */
	uint64_t tsc_base, tsc_ns;
	uint64_t tsc_adjust; /* IA32_TSC_ADJUST */
	uint64_t hwcr;	     /* AMD's MSR_K7_HWCR, as KVM keeps it */
	uint32_t tsc_khz;
	unsigned cpl;
	unsigned ushift; /* 3 at CPL 3, else 0: selects tlbe.allow bits */

	/* CPUID table (KVM_SET_CPUID2 layout). */
	struct kvm_cpuid_entry2 cpuid[X86_MAX_CPUID];
	unsigned ncpuid;
	unsigned maxphyaddr; /* reported in CPUID 0x80000008 EAX[7:0] */
	/* CPUID 7.0 EBX's x87 pointer rules: FDP_EXCPTN_ONLY, ZERO_FCS_FDS. */
	bool x87_ptr_exc_only, x87_zero_sel;
	uint64_t xo_bit; /* 1 << M when the XO alias is on, else 0 */
	/*
	 * The guest PTEs' reserved bits, [leaf][level], from M, the XO alias
	 * and EFER.NXE: x86_paging_update() is their one source.
	 */
	uint64_t pte_rsvd[2][5];

	/* Stops: polled at run entry and every ~1000 instructions. */
	volatile int *kick;
	volatile uint8_t *immediate_exit;

	/* Backend. */
	const struct x86_bus *bus;
	void *bus_ctx;

	/*
	 * An event waiting for delivery (set by x86_inject / a failed one).
	 * queued: an exception the guest raised, left undelivered by a kick
	 * (KVM's exception.pending, as against injected).
	 */
	struct {
		bool valid, has_err, soft, queued;
		uint8_t soft_len; /* INT n: length, RIP pushed = RIP + len */
		uint8_t vector;
		uint32_t err;
		uint64_t cr2;
	} pend;

	/* Exception raised by the current instruction (internal). */
	struct {
		uint8_t vector;
		bool has_err;
		uint32_t err;
		uint64_t cr2;
	} exc;

	/*
	 * MMIO completion across a stop (see struct x86_stop.mmio): a read
	 * that was answered and a write that was delivered, both matched by
	 * gpa and length on re-execution and forgotten when an instruction
	 * retires.
	 */
	struct {
		uint8_t rd; /* 0 none, 1 waiting, 2 data ready */
		uint8_t wr; /* 0 none, 1 delivered */
		uint8_t rlen, wlen;
		uint64_t rgpa, wgpa;
		uint64_t rdata;
	} mmio;

	/*
	 * IN or INS waiting for x86_complete_in(): RIP of the instruction
	 * (an IN completes only there, as KVM's complete_fast_pio_in()
	 * checks), element size and count, and whether it was an INS.
	 */
	struct {
		bool valid, str;
		uint8_t size;
		uint8_t len;
		uint16_t count;
		uint64_t rip;
	} in;

	struct x86_stop *stop; /* the current run's stop record */
	/* X86_PEND_*: what the loop must look at after this instruction. */
	uint32_t pending;
	/* Nonzero: breakpoints armed or the VMM single-steps (debug.c). */
	uint32_t dbg;

	/* Soft TLB and decode cache. */
	struct x86_tlbe tlb[X86_TLB_SIZE];
	struct x86_dpage *dc[X86_DC_BUCKETS];
	unsigned dc_pages;
	struct x86_dpage *dead;	  /* dropped while an insn may use them */
	void *decoder;		  /* ZydisDecoder */
	struct x86_insn *scratch; /* page-crossing instructions */

	uint64_t icount; /* instructions retired since init */
	/*
	 * Bumped whenever a translation, a decode or the CPL changes: the
	 * run loop's links between decoded instructions are valid only for
	 * the generation they were made in.
	 */
	uint64_t gen;

	/*
	 * SSE and x87 state (reset: XMM 0, MXCSR 0x1f80, FCW 0x37f), last:
	 * the integer path's fields keep their cache lines.
	 */
	union x86_xmm xmm[16];
	union x86_xmm ymmh[16]; /* YMM0-15 bits 255:128 (XSAVE component 2) */
	uint32_t mxcsr;
	struct x86_x87 x87;
	uint64_t xcr0; /* XCR0 */
	/*
	 * What XSETBV may set beyond x87: leaf 0xD of the CPUID table, of
	 * what the model has (KVM's guest_supported_xcr0).  The vCPU layer
	 * clears it until KVM_SET_CPUID2, as KVM's starts empty.
	 */
	uint64_t guest_xcr0;
	/*
	 * XINUSE bits that values alone do not show: set by an XRSTOR (or
	 * KVM_SET_XSAVE) that loaded the component, cleared by one that
	 * initialised it (see x86_xinuse()).
	 */
	uint8_t xinuse;

	/*
	 * INS data across its exit, KVM's PIO read-ahead cache: state 1
	 * once x86_complete_in() stored the VMM's bytes (the re-executed
	 * INS then takes [0, end) elements from the registers of the
	 * time, as KVM does), 2 while it consumes data[pos..end).  The
	 * bytes outlive the state, as in KVM: a VMM that raises RCX during
	 * the exit gets stale bytes, never a read past the buffer.
	 */
	struct {
		uint8_t state;
		uint16_t pos, end;
		uint8_t data[1024];
	} sio;

	/*
	 * The guest's debug registers (MOV DRn, KVM_GET/SET_DEBUGREGS) and
	 * the VMM's debugger (KVM_SET_GUEST_DEBUG: gdbg is its control, 0
	 * without KVM_GUESTDBG_ENABLE; gdb_db/gdb_dr7 its breakpoints).
	 * debug.c owns them; x86_dbg_update() derives dbg, which makes the
	 * run loop take x86_dbg_exec() (see there).  The microcode revision
	 * the VMM may set (MSR_IA32_UCODE_REV).
	 */
	uint64_t db[4], dr6, dr7;
	uint32_t gdbg;
	uint64_t gdb_db[4], gdb_dr7;
	uint32_t dbg_trap; /* DR6 bits of a trap due before the next one */
	uint8_t dbg_exec, dbg_data; /* armed breakpoints: bit i for DRi */
	uint8_t dbg_hits;	    /* data breakpoints the instruction hit */
	bool dbg_delivered;	    /* the instruction delivered an event */
	uint8_t bp_len;		    /* the last INT3 stopped for the VMM */
	uint64_t ucode_rev;

	/*
	 * MSR_PLATFORM_INFO: the VMM's value (any, as KVM's host writes),
	 * and whether the guest may read it: the VM's
	 * KVM_CAP_MSR_PLATFORM_INFO, read atomically; NULL reads as yes.
	 * The guest's writes always #GP.
	 */
	uint64_t platform_info;
	const bool *platform_info_readable;

	/*
	 * The VM's KVM_CAP_EXIT_ON_EMULATION_FAILURE (atomic; NULL is off):
	 * an instruction that decodes but that the model does not implement
	 * stops INTERNAL with its bytes, RIP at it, instead of raising #UD.
	 */
	const bool *exit_on_emulation_failure;

	/*
	 * RDMSR/WRMSR the VMM handles: the KVM_MSR_EXIT_REASON_* bits that
	 * stop (atomic; NULL is none), and the MSR filter (NULL allows
	 * everything; false: refused for reason FILTER).  umsr is the stop
	 * waiting for x86_complete_msr().
	 */
	const uint64_t *user_msr_exits;
	bool (*msr_allowed)(void *ctx, uint32_t index, bool write);
	/*
	 * MSRs that a device of the backend owns (the local APIC's): 0 done
	 * (*v read or written), 1 refused (#GP, or the user-space exit for
	 * reason INVAL), -1 not its MSR.  NULL: none.  Called after the
	 * filter, at CPL 0.
	 */
	int (*msr_hook)(void *ctx, uint32_t index, uint64_t *v, bool write);

	/*
	 * Interrupts from the backend's interrupt controller, which injects
	 * them with x86_inject() between runs when RFLAGS.IF is set and no
	 * STI shadow is on (int_shadow: STI set IF and the next instruction
	 * has not retired).  irq_window: one waits for IF, so STI (after its
	 * shadow), POPF and IRET that set IF stop the run (X86_STOP_KICK) to
	 * let it in; so does a MOV to CR8 that lowers it.
	 */
	bool irq_window;
	bool int_shadow;
	/*
	 * NMIs, which the backend injects with x86_inject_nmi() when
	 * x86_nmi_allowed(): delivering one blocks the next until an IRET
	 * (nmi_masked).  nmi_window: one waits, so the IRET that unblocks
	 * and the end of an STI shadow stop the run (X86_STOP_KICK).
	 */
	bool nmi_masked;
	bool nmi_window;
	struct {
		bool valid, write;
		uint8_t len;
		uint64_t rip;
	} umsr;
	uint64_t power_ctl; /* MSR_IA32_POWER_CTL, kept as KVM keeps it */

	/*
	 * The VM's disabled quirks (KVM_X86_QUIRK_*, atomic; NULL: all on),
	 * and what the model does with them: MISC_ENABLE_NO_MWAIT (off:
	 * CPUID.1:ECX.MONITOR follows IA32_MISC_ENABLE.MWAIT),
	 * MWAIT_NEVER_UD_FAULTS (off: MONITOR/MWAIT #UD without that CPUID
	 * bit) and FIX_HYPERCALL_INSN (off: the other vendor's hypercall
	 * instruction is #UD instead of being patched).
	 */
	const uint64_t *disabled_quirks;
	uint64_t misc_enable; /* IA32_MISC_ENABLE */
	/*
	 * kvmclock: MSR_KVM_SYSTEM_TIME(_NEW)'s value (GPA | enable bit 0),
	 * the VM's MSR_KVM_WALL_CLOCK(_NEW) (shared by its vCPUs; NULL:
	 * this vCPU's own kvm_wall_clock_own), and the X86_PV_* work that
	 * writes leave for the vCPU layer, which owns the clock and writes
	 * the guest structures (x86_take_pv()).
	 */
	uint64_t kvm_system_time;
	uint64_t *kvm_wall_clock;
	uint64_t kvm_wall_clock_own;
	unsigned pv_req;
	uint64_t kvm_steal_time; /* MSR_KVM_STEAL_TIME: GPA | enable bit 0 */
	/* MSR_KVM_POLL_CONTROL: a hint (gmem does no halt polling). */
	uint64_t kvm_poll_control;
	/*
	 * KVM_CAP_ENFORCE_PV_FEATURE_CPUID: KVM's PV MSRs and hypercalls
	 * only as far as the guest's KVM_CPUID_FEATURES leaf offers them
	 * (x86_pv_has()).  hlt_in_guest: the VM's KVM_X86_DISABLE_EXITS_HLT,
	 * which takes PV_UNHALT out of that leaf at KVM_SET_CPUID2.
	 */
	bool pv_enforce;
	bool hlt_in_guest;
};

/* Bits of x86_cpu.pending. */
#define X86_PEND_STATE 1  /* MMIO state or dead decode pages */
#define X86_PEND_STI 2	  /* STI opened a shadow over the next instruction */
#define X86_PEND_SHADOW 4 /* this instruction was under it */
#define X86_PEND_EVENT 8  /* stop after it: the backend looks for interrupts */
#define X86_PEND_DEBUG 16 /* a #DB trap after it (cpu->dbg_trap) */

/* From a backend hook during an instruction: stop after it retires. */
static inline void x86_request_event(struct x86_cpu *cpu)
{
	cpu->pending |= X86_PEND_EVENT;
}

/* Set up @cpu in the state KVM gives a new vCPU, with backend @bus. */
int x86_cpu_init(struct x86_cpu *cpu, const struct x86_bus *bus, void *ctx);
void x86_cpu_destroy(struct x86_cpu *cpu);

/* Run until a stop; returns stop->reason. */
int x86_run(struct x86_cpu *cpu, uint64_t budget, struct x86_stop *stop);

/*
 * Complete an IN (writes AL/AX/EAX, advances RIP; nothing if RIP has
 * moved since the stop) or an INS (@len bytes of the size * count the
 * stop asked for; the INS writes them to memory when it is re-executed,
 * which x86_mmio_pending() then asks for), or an MMIO read.
 */
void x86_complete_in(struct x86_cpu *cpu, uint32_t data);
void x86_complete_pio_in(struct x86_cpu *cpu, const void *data, unsigned len);
void x86_complete_mmio(struct x86_cpu *cpu, uint64_t data);
/*
 * Complete an MSR stop as KVM completes its exit: @error injects #GP at
 * the instruction, else RDMSR takes @data into EDX:EAX and the
 * instruction retires.  Nothing if RIP moved since the stop.
 */
void x86_complete_msr(struct x86_cpu *cpu, bool error, uint64_t data);

/*
 * Whether an MMIO stop left its instruction to be re-executed (a read
 * answered by x86_complete_mmio(), or a delivered write), or an INS its
 * answered data (x86_complete_pio_in()), and that
 * re-execution alone: the one instruction, with no stop request polled
 * and no queued event delivered first, as KVM completes userspace I/O at
 * the next KVM_RUN before anything else.  X86_STOP_BUDGET when it
 * retired; any other stop as x86_run() reports it.
 */
bool x86_mmio_pending(const struct x86_cpu *cpu);
int x86_finish_mmio(struct x86_cpu *cpu, struct x86_stop *stop);

/*
 * Queue an exception or external interrupt for delivery at the next
 * x86_run() (KVM_INTERRUPT / exception injection).
 */
void x86_inject(struct x86_cpu *cpu, uint8_t vector, bool has_err,
		uint32_t err);

/*
 * An NMI may go in: no event queued, NMIs not blocked, no STI shadow (it
 * blocks NMIs too, as KVM's VMX and SVM code treat it).
 */
static inline bool x86_nmi_allowed(const struct x86_cpu *cpu)
{
	return !cpu->pend.valid && !cpu->nmi_masked && !cpu->int_shadow;
}

/* Queue an NMI (vector 2) and block NMIs until the handler's IRET. */
void x86_inject_nmi(struct x86_cpu *cpu);

/* The queued event is an NMI (exceptions never use vector 2). */
static inline bool x86_nmi_injected(const struct x86_cpu *cpu)
{
	return cpu->pend.valid && cpu->pend.vector == 2 && !cpu->pend.soft;
}

/*
 * The event slot holds an exception or an injected NMI (a vector below
 * 32), not an interrupt: an interrupt must wait behind it.
 */
static inline bool x86_event_slot_taken(const struct x86_cpu *cpu)
{
	return cpu->pend.valid && cpu->pend.vector < 32;
}

/* The queued event is an exception (KVM's kvm_is_exception_pending()). */
static inline bool x86_exception_queued(const struct x86_cpu *cpu)
{
	return x86_event_slot_taken(cpu) && !x86_nmi_injected(cpu);
}

/*
 * KVM_SET_GUEST_DEBUG's control and debugreg[] (KVM's
 * kvm_arch_vcpu_ioctl_set_guest_debug()): -EBUSY when INJECT_DB/BP finds
 * an exception queued, else 0.  x86_dbg_update() after the guest's own
 * debug registers change (KVM_SET_DEBUGREGS).
 */
int x86_set_guest_debug(struct x86_cpu *cpu, uint32_t control,
			const uint64_t debugreg[8]);
void x86_dbg_update(struct x86_cpu *cpu);
/* KVM_GUESTDBG_BLOCKIRQ: the backend injects no NMI or interrupt. */
static inline bool x86_irqs_blocked(const struct x86_cpu *cpu)
{
	return cpu->gdbg & KVM_GUESTDBG_BLOCKIRQ;
}

/*
 * The host's vendor is AMD (or Hygon): gmem stands in for the host's KVM
 * vendor module (the drop-in answers kvm_intel's or kvm_amd's parameters
 * the same way), whose rules (the native hypercall instruction, VMX's
 * guest-state checks) are the host's whatever the guest's CPUID says.
 */
bool x86_host_amd(void);

/*
 * VMX's invalid guest state without unrestricted guest (kvm_intel's
 * unrestricted_guest N, as the drop-in says on an Intel host): TR or
 * LDTR that VM entry refuses, KVM's tr_valid() and ldtr_valid().  KVM
 * emulates such a guest and cannot deliver an exception in it: the run
 * ends in an emulation failure (handle_invalid_guest_state(),
 * vmx_vcpu_pre_run()).  Always false on AMD hosts (SVM has no such rule).
 */
bool x86_vmx_invalid_state(const struct x86_cpu *cpu);

/* Forget every cached translation and decode (CR3 load, stage-2 zap). */
void x86_cpu_flush(struct x86_cpu *cpu);
/* Forget what was derived from guest-physical [start, end). */
void x86_cpu_invalidate_gpa(struct x86_cpu *cpu, uint64_t start, uint64_t end);
/*
 * The backend left x86_run() from inside an instruction (a host fault on
 * a page it had mapped, caught by longjmp): forget every cached
 * translation and decode, which that instruction may have been changing.
 * Registers are as the instruction found them, since every handler
 * commits them after its memory accesses; x86_run() restarts it.
 */
void x86_cpu_abandon(struct x86_cpu *cpu);

void x86_get_regs(const struct x86_cpu *cpu, struct kvm_regs *regs);
/* RFLAGS alone (the arithmetic flags are kept lazily in cpu->lf). */
uint64_t x86_get_rflags(struct x86_cpu *cpu);
void x86_set_regs(struct x86_cpu *cpu, const struct kvm_regs *regs);
void x86_get_sregs(const struct x86_cpu *cpu, struct kvm_sregs *sregs);
int x86_set_sregs(struct x86_cpu *cpu, const struct kvm_sregs *sregs);
/*
 * 0, or -EINVAL for an MSR the model does not have or a bad value, or
 * -EOPNOTSUPP for one the guest's CPUID does not offer (KVM's
 * KVM_MSR_RET_UNSUPPORTED: the VMM may still read it as 0 and write 0).
 */
int x86_get_msr(const struct x86_cpu *cpu, uint32_t index, uint64_t *data);
int x86_set_msr(struct x86_cpu *cpu, uint32_t index, uint64_t data);
/*
 * The MSRs a VMM saves and restores (KVM_GET_MSR_INDEX_LIST: those of
 * KVM's msrs_to_save and emulated_msrs lists that the model has; EFER,
 * FS/GS base and the APIC base travel in sregs, as in KVM), and the
 * feature MSRs (KVM_GET_MSR_FEATURE_INDEX_LIST) with their values.
 */
const uint32_t *x86_msr_list(unsigned *n);
const uint32_t *x86_feature_msr_list(unsigned *n);
int x86_get_feature_msr(uint32_t index, uint64_t *data);
int x86_set_cpuid(struct x86_cpu *cpu, const struct kvm_cpuid_entry2 *e,
		  unsigned n);
/*
 * The TSC runs at X86_TSC_KHZ, the "host" frequency, until
 * x86_set_tsc_khz() scales it (KVM_SET_TSC_KHZ); the count goes on from
 * where it was.  @khz must not be 0.
 */
#define X86_TSC_KHZ 1000000u
void x86_set_tsc_khz(struct x86_cpu *cpu, uint32_t khz);
/* The TSC at host time @ns (x86_host_ns()'s clock). */
uint64_t x86_tsc_at(const struct x86_cpu *cpu, uint64_t ns);
/* The X86_PV_* requests left since the last call, cleared. */
unsigned x86_take_pv(struct x86_cpu *cpu);
/*
 * The TSC's reference point: it reads @base at host time @ns
 * (CLOCK_MONOTONIC, x86_host_ns()) and counts at the vCPU's rate.
 */
void x86_tsc_set_ref(struct x86_cpu *cpu, uint64_t base, uint64_t ns);
void x86_tsc_get_ref(const struct x86_cpu *cpu, uint64_t *base, uint64_t *ns);
uint64_t x86_host_ns(void);
uint64_t x86_tsc(const struct x86_cpu *cpu);

/* Physical-address width for CPUID and RSVD checks; xo = enable alias. */
void x86_set_maxphyaddr(struct x86_cpu *cpu, unsigned m, bool xo);

/*
 * The x87/SSE state as a 512-byte FXSAVE image in the 64-bit format
 * (FXSAVE64: 64-bit FIP/FDP, MXCSR_MASK filled, bytes 416-511 zero): the
 * legacy region of KVM_GET_XSAVE, and what KVM_GET_FPU repacks.
 */
void x86_get_fxsave(const struct x86_cpu *cpu, uint8_t area[512]);
/* Load such an image; -EINVAL (nothing loaded) if MXCSR has reserved bits. */
int x86_set_fxsave(struct x86_cpu *cpu, const uint8_t area[512]);

/*
 * XSAVE state components the model holds (XCR0 bits): x87, SSE and AVX's
 * YMM upper halves, the last at offset 576 in both formats (it is the
 * first extended component), 256 bytes.  X86_AVX is the one switch for
 * AVX: while it is 0, CPUID has neither AVX nor XCR0.YMM, so no guest
 * can enable YMM and every VEX instruction of avx.c stays #UD
 * (X86_XCR0_SUPPORTED is then x87 and SSE, and every size follows it).
 */
#define X86_AVX 1
#define X86_XFEATURE_FP 1ull
#define X86_XFEATURE_SSE 2ull
#define X86_XFEATURE_YMM 4ull
#define X86_XCR0_SUPPORTED \
	(X86_XFEATURE_FP | X86_XFEATURE_SSE | (X86_AVX ? X86_XFEATURE_YMM : 0))
#define X86_XSAVE_YMM_OFF 576
#define X86_XSAVE_YMM_SIZE 256
/* The largest image: buffers hold it, whatever X86_AVX says. */
#define X86_XSAVE_SIZE (X86_XSAVE_YMM_OFF + X86_XSAVE_YMM_SIZE)
/* The image of the supported components (CPUID.(0xd, 0):ECX). */
#define X86_XSAVE_SUPPORTED_SIZE (X86_AVX ? X86_XSAVE_SIZE : X86_XSAVE_YMM_OFF)
/* The size of an image (either format) holding components @xfeatures. */
static inline unsigned x86_xsave_size(uint64_t xfeatures)
{
	return xfeatures & X86_XFEATURE_YMM ? X86_XSAVE_SIZE
					    : X86_XSAVE_YMM_OFF;
}
/* CPUID.(0xd, 1):EAX */
#define X86_XSAVE_XSAVEOPT (1u << 0)
#define X86_XSAVE_XSAVEC (1u << 1)
#define X86_XSAVE_XGETBV1 (1u << 2)
#define X86_XSAVE_XSAVES (1u << 3)

/*
 * XINUSE (SDM vol. 1, 13.6): the components that may not be in their
 * initial configuration: x87 or XMM registers not initial, or loaded by
 * the last XRSTOR of them.  XINUSE[1] is about the XMM registers only.
 */
uint64_t x86_xinuse(const struct x86_cpu *cpu);

/*
 * Set XCR @idx as XSETBV (and KVM_SET_XCRS) does: 0, or -EINVAL (#GP)
 * for an index other than 0 or a value __kvm_set_xcr() refuses.
 */
int x86_set_xcr(struct x86_cpu *cpu, uint32_t idx, uint64_t value);

/*
 * The CR4 bits a CPUID table allows (KVM's __cr4_reserved_bits()).  CR4
 * writes take the intersection of the supported table's and the guest's.
 */
uint64_t x86_cr4_allowed(const struct kvm_cpuid_entry2 *t, unsigned n);

/*
 * KVM's runtime CPUID update (__kvm_update_cpuid_runtime()) of table @e:
 * CPUID.1:ECX.OSXSAVE from CR4, leaf 0xD's sizes from XCR0, no PV_UNHALT
 * with hlt_in_guest.  The model
 * applies it to its own table on every change; a caller comparing a new
 * table with it (KVM_SET_CPUID2 after KVM_RUN) applies it to that first.
 */
void x86_cpuid_runtime(const struct x86_cpu *cpu, struct kvm_cpuid_entry2 *e,
		       unsigned n);

/* KVM_CPUID_FEATURES (leaf 0x40000001 at KVM's signature) bits used. */
#define X86_KVM_FEATURE_CLOCKSOURCE 0
#define X86_KVM_FEATURE_CLOCKSOURCE2 3
#define X86_KVM_FEATURE_STEAL_TIME 5
#define X86_KVM_FEATURE_PV_UNHALT 7
#define X86_KVM_FEATURE_PV_SEND_IPI 11
#define X86_KVM_FEATURE_POLL_CONTROL 12
#define X86_KVM_FEATURE_PV_SCHED_YIELD 13

/*
 * KVM's guest_pv_has(): true unless the PV features are enforced and the
 * guest's KVM leaf (found by its signature, as kvm_get_hypervisor_cpuid()
 * finds it) lacks @feature.
 */
bool x86_pv_has(const struct x86_cpu *cpu, unsigned int feature);

/*
 * The image the kernel's KVM_GET_XSAVE gives, the supported components
 * requested: the FXSAVE64 legacy region, YMM at 576 with X86_AVX, and
 * XSTATE_BV naming the components in use
 * (x86_xinuse(), SSE's also while MXCSR != 0x1f80, as XSAVES reports
 * it), the rest of the header and bytes 416-511 zero.
 */
void x86_get_xsave(const struct x86_cpu *cpu, uint8_t area[X86_XSAVE_SIZE]);
/*
 * Load such an image as the kernel's XRSTORS would: a component whose
 * XSTATE_BV bit is clear takes its initial configuration (x87: FCW
 * 0x37f, the rest 0; SSE: XMM 0, MXCSR 0x1f80), one whose bit is set is
 * in use afterwards.  -EINVAL, nothing loaded, for XSTATE_BV
 * bits beyond X86_XCR0_SUPPORTED, a non-zero XCOMP_BV or reserved header
 * bytes, or reserved MXCSR bits when x87 or SSE is loaded.
 */
int x86_set_xsave(struct x86_cpu *cpu, const uint8_t area[X86_XSAVE_SIZE]);

/* The CPUID leaves the model implements (KVM_GET_SUPPORTED_CPUID). */
const struct kvm_cpuid_entry2 *x86_supported_cpuid(unsigned *n);

/* CPUID as the guest sees it (table + the model's overrides). */
void x86_cpuid(const struct x86_cpu *cpu, uint32_t leaf, uint32_t sub,
	       uint32_t out[4]);

#endif /* GMEM_X86_H */
