// SPDX-License-Identifier: MIT
/*
 * The system instructions: HLT, VMCALL, CPUID, XGETBV/XSETBV, RDTSC, MSR
 * access, control registers, descriptor tables and segments, port I/O
 * (string I/O in KVM's batches), IRETQ, SYSCALL/SYSRET, and their binding.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <Zydis/Zydis.h>

#include "x86/internal.h"

static inline int advance(struct x86_cpu *c, const struct x86_insn *i)
{
	c->rip += i->len;
	return X86_OK;
}

static inline unsigned iopl(const struct x86_cpu *c)
{
	return (c->rflags >> 12) & 3;
}

static int h_hlt(struct x86_cpu *c, const struct x86_insn *i)
{
	/*
	 * HLT is privileged; RIP moves past it first, as an interrupt that
	 * wakes the vCPU returns to the next instruction.
	 */
	if (c->cpl)
		return x86_gp0(c);
	c->rip += i->len;
	c->stop->reason = X86_STOP_HLT;
	return X86_STOPPED;
}

/* AMD's vendor strings (EBX, EDX, ECX of leaf 0), as KVM lists them. */
bool x86_host_amd(void)
{
	/*
	 * Asked once: the host's vendor does not change under a running
	 * process.
	 */
	static int amd = -1;
	int v = __atomic_load_n(&amd, __ATOMIC_RELAXED);

	if (v < 0) {
		uint32_t a = 0, b, c, d;

		__asm__("cpuid" : "+a"(a), "=b"(b), "=c"(c), "=d"(d));
		v = b == 0x68747541 /* "Auth" */ ||
		    b == 0x6f677948 /* "Hygo" */;
		__atomic_store_n(&amd, v, __ATOMIC_RELAXED);
	}
	return v;
}

bool x86_vmx_invalid_state(const struct x86_cpu *c)
{
	const struct kvm_segment *tr = &c->tr, *ldt = &c->ldt;

	/* Only VMX refuses such state; real mode (PE clear) has no TR rules. */
	if (x86_host_amd() || !(c->cr0 & X86_CR0_PE))
		return false;
	if (tr->unusable || (tr->selector & 4) ||
	    (tr->type != 3 && tr->type != 11) || !tr->present)
		return true;
	return !ldt->unusable &&
	       ((ldt->selector & 4) || ldt->type != 2 || !ldt->present);
}

/*
 * VMCALL (op 0) and VMMCALL (op 1).  The native one is the host vendor's
 * (VMMCALL on AMD and Hygon, VMCALL otherwise), as KVM's is its vendor
 * module's; the selftests pick theirs the same way.  The other one faults on
 * hardware; KVM catches the #UD and, with KVM_X86_QUIRK_FIX_HYPERCALL_INSN
 * on, writes the native instruction over it (a guest write at the current
 * CPL, which may fault) and lets the guest execute that; with the quirk
 * off the guest gets the #UD (emulator_fix_hypercall()).
 */
static const uint8_t hypercall_insn[2][3] = {{0x0f, 0x01, 0xc1},
					     {0x0f, 0x01, 0xd9}};

static int h_vmcall(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned native = x86_host_amd();
	unsigned acc = X86_ACC_WRITE | (c->cpl < 3 ? X86_ACC_SUP : 0);
	struct x86_mref m[2];
	int r;

	if (i->op != native) {
		if (!x86_quirk(c, KVM_X86_QUIRK_FIX_HYPERCALL_INSN))
			return x86_ud(c);
		/* Both pieces translated before either is written. */
		r = x86_mem_prep(c, c->rip, 2, acc, &m[0]);
		if (!r)
			r = x86_mem_prep(c, c->rip + 2, 1, acc, &m[1]);
		if (r)
			return r;
		if (m[0].mmio || m[1].mmio)
			return x86_stop_internal(c, "hypercall patch in MMIO");
		x86_mem_wr(c, &m[0],
			   hypercall_insn[native][0] | hypercall_insn[native][1]
							       << 8);
		x86_mem_wr(c, &m[1], hypercall_insn[native][2]);
		return X86_OK; /* RIP unchanged: the native one runs next */
	}
	/*
	 * The native hypercall: the VMM (or the vCPU layer) answers it with RIP
	 * already past it.
	 */
	c->rip += i->len;
	c->stop->reason = X86_STOP_VMCALL;
	return X86_STOPPED;
}

/*
 * MONITOR (op 0) and MWAIT (op 1), which KVM intercepts and runs as NOPs
 * (kvm_emulate_monitor_mwait()).  What hardware checks before the
 * intercept comes first: #UD above CPL 0, #GP(0) for a non-canonical
 * MONITOR address or extensions (MONITOR takes none in ECX, MWAIT only
 * bit 0, interrupts as break events).  Then KVM's rule: #UD when the
 * VM disabled KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS and the guest's CPUID
 * has no MONITOR/MWAIT (leaf 1 ECX bit 3).
 */
static int h_monitor_mwait(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t addr = c->gpr[X86_RAX];
	uint32_t ecx = c->gpr[X86_RCX], leaf1[4];

	if (c->cpl)
		return x86_ud(c);
	if (i->asz == 4)
		addr = (uint32_t)addr;
	if (i->op == 0 ? (ecx || !x86_canonical(addr)) : (ecx & ~1u))
		return x86_gp0(c);
	x86_cpuid(c, 1, 0, leaf1);
	if (!x86_quirk(c, KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS) &&
	    !(leaf1[2] & (1u << 3)))
		return x86_ud(c);
	return advance(c, i);
}

static int h_ud(struct x86_cpu *c, const struct x86_insn *i)
{
	return x86_ud(c);
}

static int h_int(struct x86_cpu *c, const struct x86_insn *i)
{
	/*
	 * With KVM_GUESTDBG_USE_SW_BP, INT3 is the debugger's, not the guest's.
	 */
	if (i->op == 3 && (c->gdbg & KVM_GUESTDBG_USE_SW_BP))
		return x86_dbg_int3(c, i);
	c->pend.valid = true;
	/*
	 * Delivered now, as a software interrupt: DPL is checked against CPL
	 * and the return address is past the instruction (soft_len).
	 */
	c->pend.vector = i->op == 3 ? X86_BP : (uint8_t)i->imm;
	c->pend.has_err = false;
	c->pend.soft = true;
	c->pend.queued = false;
	c->pend.soft_len = i->len;
	return x86_deliver(c);
}

static int h_cpuid(struct x86_cpu *c, const struct x86_insn *i)
{
	uint32_t o[4];

	x86_cpuid(c, c->gpr[X86_RAX], c->gpr[X86_RCX], o);
	c->gpr[X86_RAX] = o[0];
	c->gpr[X86_RBX] = o[1];
	c->gpr[X86_RCX] = o[2];
	c->gpr[X86_RDX] = o[3];
	/*
	 * CPUID is the serializing instruction the SDM (vol. 3, 9.1.3)
	 * tells a processor to execute before running code another one
	 * wrote.  Writes by other vCPUs do not reach this vCPU's decode
	 * cache, so forget it here; this instruction's record survives
	 * until it retires (dropped pages are freed between instructions).
	 */
	x86_dc_flush(c);
	return advance(c, i);
}

/*
 * XGETBV: XCR0, or with ECX = 1 (CPUID.(0xd, 1):EAX.XG1) XCR0 & XINUSE,
 * whose SSE bit is also set while MXCSR is not 1F80H (SDM vol. 1, 13.6).
 * Any CPL; hardware runs it under KVM, so no exit and no CPUID check.
 */
static int h_xgetbv(struct x86_cpu *c, const struct x86_insn *i)
{
	uint32_t idx = c->gpr[X86_RCX];
	uint64_t v;

	if (!(c->cr4 & X86_CR4_OSXSAVE))
		return x86_ud(c);
	if (idx == 0) {
		v = c->xcr0;
	} else if (idx == 1) {
		v = x86_xinuse(c);
		if (c->mxcsr != X86_MXCSR_DEFAULT)
			v |= X86_XFEATURE_SSE;
		v &= c->xcr0;
	} else {
		return x86_gp0(c);
	}
	c->gpr[X86_RAX] = (uint32_t)v;
	c->gpr[X86_RDX] = v >> 32;
	return advance(c, i);
}

/*
 * XSETBV: #UD first, as hardware checks CR4.OSXSAVE before KVM's
 * intercept; then kvm_emulate_xsetbv()'s #GP for CPL > 0 or a bad XCR0.
 */
static int h_xsetbv(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t v = (uint32_t)c->gpr[X86_RAX] | c->gpr[X86_RDX] << 32;

	if (!(c->cr4 & X86_CR4_OSXSAVE))
		return x86_ud(c);
	if (c->cpl || x86_set_xcr(c, (uint32_t)c->gpr[X86_RCX], v))
		return x86_gp0(c);
	return advance(c, i);
}

uint64_t x86_host_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

uint64_t x86_tsc_at(const struct x86_cpu *c, uint64_t ns)
{
	/*
	 * TSC = base + elapsed ns * kHz / 10^6, with (base, ns) moved whenever
	 * the frequency or the value is set, so the TSC never jumps.
	 */
	uint64_t d = ns - c->tsc_ns;

	/* Split so that neither product overflows for centuries. */
	return c->tsc_base + d / 1000000 * c->tsc_khz +
	       d % 1000000 * c->tsc_khz / 1000000;
}

uint64_t x86_tsc(const struct x86_cpu *c)
{
	return x86_tsc_at(c, x86_host_ns());
}

void x86_tsc_set_ref(struct x86_cpu *c, uint64_t base, uint64_t ns)
{
	c->tsc_base = base;
	c->tsc_ns = ns;
}

void x86_tsc_get_ref(const struct x86_cpu *c, uint64_t *base, uint64_t *ns)
{
	*base = c->tsc_base;
	*ns = c->tsc_ns;
}

void x86_set_tsc_khz(struct x86_cpu *c, uint32_t khz)
{
	uint64_t now = x86_host_ns();

	/* Rebase at the old frequency first so the TSC stays continuous. */
	c->tsc_base = x86_tsc_at(c, now);
	c->tsc_ns = now;
	c->tsc_khz = khz;
}

/* RDTSC (op 0) and RDTSCP (op 1), at the vCPU's TSC frequency. */
static int h_rdtsc(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t t;

	/* CR4.TSD makes RDTSC/RDTSCP privileged (#GP at CPL > 0). */
	if ((c->cr4 & X86_CR4_TSD) && c->cpl)
		return x86_gp0(c);
	t = x86_tsc(c);
	c->gpr[X86_RAX] = (uint32_t)t;
	c->gpr[X86_RDX] = t >> 32;
	if (i->op)
		c->gpr[X86_RCX] = (uint32_t)c->tsc_aux;
	return advance(c, i);
}

/*
 * The guest's writes to the TSC MSRs, as KVM's (the host's through
 * KVM_SET_MSRS set the value alone): writing IA32_TSC moves
 * IA32_TSC_ADJUST by the same step, and writing IA32_TSC_ADJUST moves the
 * TSC, when CPUID has TSC_ADJUST (else the write is dropped).  True if
 * @idx was one of them.
 */
static bool guest_tsc_write(struct x86_cpu *c, uint32_t idx, uint64_t v)
{
	uint32_t leaf7[4];
	uint64_t adj;

	if (idx == X86_MSR_TSC) {
		/*
		 * The step between old and new TSC goes into TSC_ADJUST too, as
		 * the SDM's IA32_TSC_ADJUST rules say: the two move together.
		 */
		adj = v - x86_tsc(c);
		x86_set_msr(c, X86_MSR_TSC, v);
		c->tsc_adjust += adj;
		return true;
	}
	if (idx != X86_MSR_TSC_ADJUST)
		return false;
	x86_cpuid(c, 7, 0, leaf7);
	/* CPUID.(7,0):EBX[1] is TSC_ADJUST. */
	if (leaf7[1] & (1u << 1)) {
		adj = v - c->tsc_adjust;
		x86_set_msr(c, X86_MSR_TSC, x86_tsc(c) + adj);
		c->tsc_adjust = v;
	}
	return true;
}

/*
 * A refused RDMSR/WRMSR: #GP, or, when the VMM asked for accesses refused
 * for @why (kvm_msr_user_space()), a stop with RIP at the instruction.
 */
static int msr_refused(struct x86_cpu *c, const struct x86_insn *i,
		       uint32_t idx, uint64_t v, uint32_t why)
{
	uint64_t mask = c->user_msr_exits ? __atomic_load_n(c->user_msr_exits,
							    __ATOMIC_RELAXED)
					  : 0;

	/* Not one the VMM asked to see: the guest gets #GP. */
	if (!(mask & why))
		return x86_gp0(c);
	c->stop->reason = X86_STOP_MSR;
	c->stop->msr.index = idx;
	c->stop->msr.reason = why;
	c->stop->msr.data = i->op ? v : 0;
	c->stop->msr.is_write = i->op;
	/*
	 * Kept to finish the instruction when the VMM answers
	 * (x86_complete_msr).
	 */
	c->umsr.valid = true;
	c->umsr.write = i->op;
	c->umsr.len = i->len;
	c->umsr.rip = c->rip;
	return X86_STOPPED;
}

/*
 * RDMSR (op 0) / WRMSR (op 1) as kvm_emulate_rdmsr/wrmsr(): #GP at CPL >
 * 0 (hardware's, before any intercept), then the filter (FILTER), then
 * the MSR: one the model lacks is UNKNOWN, a refused value or access to
 * one it has INVAL.
 */
static int h_msr(struct x86_cpu *c, const struct x86_insn *i)
{
	uint32_t idx = c->gpr[X86_RCX];
	uint64_t v = (uint32_t)c->gpr[X86_RAX] | c->gpr[X86_RDX] << 32, old;

	if (c->cpl)
		return x86_gp0(c);
	/* The VMM's MSR filter comes before anything the MSR itself does. */
	if (c->msr_allowed && !c->msr_allowed(c->bus_ctx, idx, i->op))
		return msr_refused(c, i, idx, v, KVM_MSR_EXIT_REASON_FILTER);
	/*
	 * The vCPU layer's own MSRs: > 0 refused, 0 handled, < 0 not one
	 * of its own.
	 */
	if (c->msr_hook) {
		int r = c->msr_hook(c->bus_ctx, idx, &v, i->op);

		if (r > 0)
			return msr_refused(c, i, idx, v,
					   KVM_MSR_EXIT_REASON_INVAL);
		if (r == 0) {
			if (i->op == 0) {
				c->gpr[X86_RAX] = (uint32_t)v;
				c->gpr[X86_RDX] = v >> 32;
			}
			return advance(c, i);
		}
	}
	if (i->op == 0) {
		/*
		 * MSR_PLATFORM_INFO reads are refused unless the VMM enabled
		 * them (KVM_CAP_MSR_PLATFORM_INFO).
		 */
		if (idx == X86_MSR_PLATFORM_INFO && c->platform_info_readable &&
		    !__atomic_load_n(c->platform_info_readable,
				     __ATOMIC_RELAXED))
			return msr_refused(c, i, idx, v,
					   KVM_MSR_EXIT_REASON_INVAL);
		if (x86_get_msr(c, idx, &v))
			return msr_refused(c, i, idx, v,
					   KVM_MSR_EXIT_REASON_UNKNOWN);
		c->gpr[X86_RAX] = (uint32_t)v;
		c->gpr[X86_RDX] = v >> 32;
	} else {
		if (guest_tsc_write(c, idx, v))
			return advance(c, i);
		/* KVM ignores the guest's (a BIOS writes 0 before CPUID). */
		if (idx == X86_MSR_UCODE_REV)
			return advance(c, i);
		/* MSR_PLATFORM_INFO is read-only for the guest. */
		if (idx == X86_MSR_PLATFORM_INFO)
			return msr_refused(c, i, idx, v,
					   KVM_MSR_EXIT_REASON_INVAL);
		if (idx == X86_MSR_MISC_ENABLE) {
			/* The guest may not change the PMU's read-only bits,
			 * and its EMON writes are dropped. */
			if ((v ^ c->misc_enable) &
			    (X86_MISC_ENABLE_PEBS_UNAVAIL |
			     X86_MISC_ENABLE_BTS_UNAVAIL))
				return msr_refused(c, i, idx, v,
						   KVM_MSR_EXIT_REASON_INVAL);
			v = (v & ~X86_MISC_ENABLE_EMON) |
			    (c->misc_enable & X86_MISC_ENABLE_EMON);
		}
		/*
		 * kvmclock's system-time MSRs need the vCPU layer to publish
		 * the page.
		 */
		if (idx == X86_MSR_KVM_SYSTEM_TIME)
			c->pv_req |= X86_PV_OLD;
		else if (idx == X86_MSR_KVM_SYSTEM_TIME_NEW)
			c->pv_req |= X86_PV_NEW;
		/*
		 * UNKNOWN for an MSR the model lacks, INVAL for a value it
		 * refuses.
		 */
		if (x86_set_msr(c, idx, v))
			return msr_refused(c, i, idx, v,
					   x86_get_msr(c, idx, &old)
						   ? KVM_MSR_EXIT_REASON_UNKNOWN
						   : KVM_MSR_EXIT_REASON_INVAL);
		/* kvmclock's guest memory is the vCPU layer's to write. */
		if (c->pv_req) {
			advance(c, i);
			c->stop->reason = X86_STOP_PV;
			return X86_STOPPED;
		}
	}
	return advance(c, i);
}

unsigned x86_take_pv(struct x86_cpu *c)
{
	unsigned r = c->pv_req;

	c->pv_req = 0;
	return r;
}

void x86_complete_msr(struct x86_cpu *c, bool error, uint64_t data)
{
	/*
	 * Only the instruction that stopped: a VMM that moved RIP (or answered
	 * twice) completes nothing.
	 */
	if (!c->umsr.valid || c->rip != c->umsr.rip)
		return;
	c->umsr.valid = false;
	if (error) {
		/*
		 * KVM's "error" answer to a userspace MSR exit is a #GP for the
		 * guest.
		 */
		x86_inject(c, X86_GP, true, 0);
		return;
	}
	if (!c->umsr.write) {
		c->gpr[X86_RAX] = (uint32_t)data;
		c->gpr[X86_RDX] = data >> 32;
	}
	c->rip += c->umsr.len;
}

/* A CR4 write: CPUID's OSXSAVE follows it, as kvm_set_cr4() updates it. */
void x86_set_cr4(struct x86_cpu *c, uint64_t v)
{
	/* OSXSAVE in CPUID leaf 1 mirrors CR4.OSXSAVE (SDM CPUID). */
	bool sync = (v ^ c->cr4) & X86_CR4_OSXSAVE;

	c->cr4 = v;
	if (sync)
		x86_cpuid_runtime(c, c->cpuid, c->ncpuid);
}

static int write_cr(struct x86_cpu *c, unsigned n, uint64_t v)
{
	uint64_t pa_rsvd = x86_pa_rsvd(c);

	switch (n) {
	case 0:
		/*
		 * Long mode needs PG and PE; NW without CD is invalid (SDM MOV
		 * CR0).
		 */
		if (v >> 32 || !(v & X86_CR0_PG) || !(v & X86_CR0_PE) ||
		    ((v & X86_CR0_NW) && !(v & X86_CR0_CD)))
			return x86_gp0(c);
		/* WP and PG change what the cached translations allow. */
		if ((v ^ c->cr0) & (X86_CR0_WP | X86_CR0_PG))
			x86_tlb_flush(c);
		/* ET is hardwired to 1 on P6 and later processors. */
		c->cr0 = v | X86_CR0_ET;
		return X86_OK;
	case 2:
		c->cr2 = v;
		return X86_OK;
	case 3:
		/*
		 * Bit 63 is the no-flush hint, never part of CR3; the model
		 * flushes regardless.
		 */
		if (v & pa_rsvd & ~(1ull << 63))
			return x86_gp0(c);
		c->cr3 = v & ~(1ull << 63);
		x86_tlb_flush(c);
		return X86_OK;
	case 4: {
		/* kvm_is_valid_cr4(): what the model has and CPUID allows. */
		unsigned nsup;
		const struct kvm_cpuid_entry2 *sup = x86_supported_cpuid(&nsup);

		if ((v & ~x86_cr4_allowed(sup, nsup)) ||
		    (v & ~x86_cr4_allowed(c->cpuid, c->ncpuid)) ||
		    !(v & X86_CR4_PAE))
			return x86_gp0(c);
		x86_set_cr4(c, v);
		x86_tlb_flush(c);
		return X86_OK;
	}
	case 8:
		/*
		 * CR8 holds only TPR[7:4] (SDM 10.8.6.1); higher bits are
		 * reserved.
		 */
		if (v >> 4)
			return x86_gp0(c);
		/* A lower TPR may let a waiting interrupt in. */
		if (v < c->cr8)
			c->pending |= X86_PEND_EVENT;
		c->cr8 = v;
		return X86_OK;
	}
	return x86_ud(c);
}

/* MOV CRn, r (op 0) / MOV r, CRn (op 1); i->r[] holds the CR number. */
static int h_movcr(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned cr = i->op == 0 ? i->r[0] : i->r[1];
	int r;

	/* CR access is privileged; the CR number is checked after CPL. */
	if (c->cpl)
		return x86_gp0(c);
	if (i->op == 0) {
		r = write_cr(c, cr, c->gpr[i->r[1]]);
		if (r)
			return r;
		return advance(c, i);
	}
	uint64_t v;

	switch (cr) {
	case 0:
		v = c->cr0;
		break;
	case 2:
		v = c->cr2;
		break;
	case 3:
		v = c->cr3;
		break;
	case 4:
		v = c->cr4;
		break;
	case 8:
		v = c->cr8;
		break;
	default:
		return x86_ud(c);
	}
	c->gpr[i->r[0]] = v;
	return advance(c, i);
}

/* LGDT (0), LIDT (1), SGDT (2), SIDT (3). */
static int h_dtable(struct x86_cpu *c, const struct x86_insn *i)
{
	struct kvm_dtable *t = (i->op & 1) ? &c->idt : &c->gdt;
	uint64_t a = x86_ea(c, i), lim, base;
	struct x86_mref m0, m1;
	int r;

	if (i->op < 2) {
		if (c->cpl)
			return x86_gp0(c);
		/*
		 * Both parts translated and read before the table changes: a
		 * 10-byte operand, limit (16 bits) then base (64).
		 */
		r = x86_mem_prep(c, a, 2, X86_ACC_READ, &m0);
		if (!r)
			r = x86_mem_prep(c, a + 2, 8, X86_ACC_READ, &m1);
		if (!r)
			r = x86_mem_rd(c, &m0, &lim);
		if (!r)
			r = x86_mem_rd(c, &m1, &base);
		if (r)
			return r;
		/*
		 * A non-canonical base is #GP in 64-bit mode (SDM LGDT/LIDT).
		 */
		if (!x86_canonical(base))
			return x86_gp0(c);
		t->limit = lim;
		t->base = base;
		return advance(c, i);
	}
	/* SGDT/SIDT are not privileged without UMIP (not offered). */
	r = x86_mem_prep(c, a, 2, X86_ACC_WRITE, &m0);
	if (!r)
		r = x86_mem_prep(c, a + 2, 8, X86_ACC_WRITE, &m1);
	if (!r)
		r = x86_mem_wr(c, &m0, t->limit);
	if (!r)
		r = x86_mem_wr(c, &m1, t->base);
	if (r)
		return r;
	return advance(c, i);
}

/* Selector operand of LTR/MOV Sreg: register or 16-bit memory. */
static int sel_operand(struct x86_cpu *c, const struct x86_insn *i, unsigned n,
		       uint16_t *sel)
{
	struct x86_mref m;
	uint64_t v = 0;
	int r;

	if (i->k[n] == K_REG) {
		*sel = c->gpr[i->r[n]];
		return X86_OK;
	}
	/* A memory selector is 16 bits whatever the operand size. */
	r = x86_mem_prep(c, x86_ea(c, i), 2, X86_ACC_READ, &m);
	if (!r)
		r = x86_mem_rd(c, &m, &v);
	*sel = v;
	return r;
}

static int h_ltr(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t lo, hi;
	struct x86_mref m;
	uint16_t sel;
	int r;

	if (c->cpl)
		return x86_gp0(c);
	r = sel_operand(c, i, 0, &sel);
	if (r)
		return r;
	/* A null selector cannot be loaded into TR (SDM LTR). */
	if ((sel & ~3u) == 0)
		return x86_gp0(c);
	/*
	 * A 64-bit TSS descriptor is 16 bytes: both halves must be in the
	 * limit.
	 */
	if ((sel & 4) || (uint32_t)(sel | 7) + 8 > c->gdt.limit)
		return x86_raise(c, X86_GP, true, sel & ~3u);
	r = x86_sys_read(c, c->gdt.base + (sel & ~7u), 8, &lo);
	if (!r)
		r = x86_sys_read(c, c->gdt.base + (sel & ~7u) + 8, 8, &hi);
	if (r)
		return r;
	if (((lo >> 40) & 0x1f) != 0x9) /* available 64-bit TSS */
		return x86_raise(c, X86_GP, true, sel & ~3u);
	if (!(lo >> 47 & 1))
		return x86_raise(c, X86_NP, true, sel & ~3u);
	/*
	 * Mark it busy in the GDT, before TR changes, so that a fault on the
	 * write leaves TR as it was.
	 */
	r = x86_mem_prep(c, c->gdt.base + (sel & ~7u), 8,
			 X86_ACC_WRITE | X86_ACC_SUP, &m);
	if (!r)
		r = x86_mem_wr(c, &m, lo | 2ull << 40);
	if (r)
		return r;
	c->tr.selector = sel;
	c->tr.base = ((lo >> 16) & 0xffffff) | ((lo >> 56) & 0xff) << 24 |
		     (hi & 0xffffffff) << 32;
	c->tr.limit = (lo & 0xffff) | ((lo >> 48) & 0xf) << 16;
	/* G set: the limit counts 4 KiB pages. */
	if (lo >> 55 & 1)
		c->tr.limit = c->tr.limit << 12 | 0xfff;
	c->tr.type = 0xb;
	c->tr.present = 1;
	c->tr.s = 0;
	c->tr.dpl = (lo >> 45) & 3;
	c->tr.g = lo >> 55 & 1;
	c->tr.unusable = 0;
	return advance(c, i);
}

/* MOV Sreg, r/m (op 0) and MOV r/m, Sreg (op 1). */
static int h_movseg(struct x86_cpu *c, const struct x86_insn *i)
{
	uint16_t sel;
	uint64_t d = 0;
	int r;

	if (i->op == 1) {
		/*
		 * A segment register read: zero-extended into a 32/64-bit
		 * register, 16 bits to memory.
		 */
		uint16_t v = c->seg[i->r[1]].selector;

		if (i->k[0] == K_REG) {
			wreg(c, i->r[0], i->osz > 2 ? i->osz : 2, v);
		} else {
			struct x86_mref m;

			r = x86_mem_prep(c, x86_ea(c, i), 2, X86_ACC_WRITE, &m);
			if (!r)
				r = x86_mem_wr(c, &m, v);
			if (r)
				return r;
		}
		return advance(c, i);
	}
	unsigned s = i->r[0];

	/* MOV to CS is #UD (SDM MOV). */
	if (s == X86_CS || s >= X86_NSEG)
		return x86_ud(c);
	r = sel_operand(c, i, 1, &sel);
	if (r)
		return r;
	/*
	 * A null selector is fine for DS, ES, FS, GS, and for SS below CPL 3.
	 */
	if ((sel & ~3u) == 0) {
		if (s == X86_SS && c->cpl == 3)
			return x86_gp0(c);
	} else {
		r = x86_gdt_read(c, sel, 0, &d);
		if (r)
			return r;
		/* A not-present SS is #SS, any other segment #NP. */
		if (!(d >> 47 & 1))
			return x86_raise(c, s == X86_SS ? X86_SS_VEC : X86_NP,
					 true, sel & ~3u);
	}
	struct kvm_segment *sg = &c->seg[s];

	sg->selector = sel;
	if ((sel & ~3u) == 0) {
		sg->unusable = 1;
	} else {
		sg->unusable = 0;
		sg->type = (d >> 40) & 0xf;
		sg->dpl = (d >> 45) & 3;
		sg->present = 1;
		sg->s = d >> 44 & 1;
		sg->db = d >> 54 & 1;
		/*
		 * In 64-bit mode only FS and GS have a base from the
		 * descriptor; a MOV loads bits 31:0 of it (the rest is
		 * MSR_FS_BASE/GS_BASE's).
		 */
		if (s == X86_FS || s == X86_GS)
			sg->base = ((d >> 16) & 0xffffff) | ((d >> 56) & 0xff)
								    << 24;
	}
	return advance(c, i);
}

static int h_invlpg(struct x86_cpu *c, const struct x86_insn *i)
{
	if (c->cpl)
		return x86_gp0(c);
	x86_tlb_flush_page(c, x86_ea(c, i));
	return advance(c, i);
}

/* CLTS: what an OS's #NM handler does to let SSE run again. */
static int h_clts(struct x86_cpu *c, const struct x86_insn *i)
{
	if (c->cpl)
		return x86_gp0(c);
	c->cr0 &= ~X86_CR0_TS;
	return advance(c, i);
}

static int h_priv_nop(struct x86_cpu *c, const struct x86_insn *i)
{
	if (c->cpl)
		return x86_gp0(c);
	return advance(c, i);
}

/* CLI (op 0), STI (op 1). */
static int h_cli(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t f;

	if (c->cpl > iopl(c))
		return x86_gp0(c);
	f = x86_flags(c);
	/* STI that sets IF blocks interrupts for one more instruction. */
	if (i->op && !(f & X86_IF)) {
		c->int_shadow = true;
		c->pending |= X86_PEND_STI;
	}
	f = i->op ? f | X86_IF : f & ~(uint64_t)X86_IF;
	x86_set_flags(c, f);
	return advance(c, i);
}

/* IN (op 0) / OUT (op 1); osz is the data size, imm the port or -1. */
static int h_io(struct x86_cpu *c, const struct x86_insn *i)
{
	uint16_t port =
		i->imm >= 0 ? (uint16_t)i->imm : (uint16_t)c->gpr[X86_RDX];
	struct x86_stop *s = c->stop;

	/* IN and OUT are IOPL-sensitive; the TSS I/O bitmap is not modelled. */
	if (c->cpl > iopl(c))
		return x86_gp0(c);
	s->reason = X86_STOP_IO;
	s->io.port = port;
	s->io.size = i->osz;
	s->io.is_write = i->op;
	s->io.count = 1;
	if (i->op) {
		/* OUT completes at the exit: the VMM only takes the data. */
		s->io.data = rreg(c, X86_RAX, i->osz);
		c->rip += i->len;
	} else {
		/*
		 * IN finishes when the VMM answers (x86_complete_pio_in), at
		 * this RIP.
		 */
		c->in.valid = true;
		c->in.str = false;
		c->in.size = i->osz;
		c->in.count = 1;
		c->in.len = i->len;
		c->in.rip = c->rip;
	}
	return X86_STOPPED;
}

/*
 * String I/O.  KVM emulates every INS/OUTS in software (VMX and SVM exit
 * on them and hand them to the instruction emulator), so what a VMM sees
 * is the emulator's behaviour, which this follows:
 *
 *  - OUTS reads one element from seg:RSI (DS or an FS/GS override) and
 *    exits with count 1, RSI advanced and, with REP, RCX decremented.
 *    With REP, RIP stays at the instruction even after the last
 *    iteration: the re-executed OUTS finds RCX 0 and retires quietly.
 *  - INS exits first, asking for min(bytes left in RDI's page (below it
 *    with DF set), 1024 / size, RCX) elements at once (at least one):
 *    a byte count against an element count, KVM's own arithmetic.  The
 *    memory writes to ES:RDI happen when the VMM has answered and the
 *    instruction is re-executed, with the count taken again from the
 *    registers of that time (a VMM may lower RCX).  With REP, RIP stays
 *    at the instruction after every batch, the last one too.
 *  - RSI/RDI/RCX advance within the address size and keep the bits
 *    above it, as the emulator's register_address_increment() does;
 *    RCX 0 with a 32-bit address size on an Intel guest clears RCX
 *    (its string_registers_quirk()).
 *
 *  - RFLAGS.RF is set while a REP instruction is under way (the guest
 *    and the VMM see it between iterations) and cleared when it
 *    retires, as the emulator writes it back; the exit of an INS
 *    writes nothing back, so it leaves RF as it was.
 *
 * Unlike KVM, each element of a forward batch is committed as it is
 * written (RDI, RCX; KVM commits the batch at once, and a DF batch
 * element by element as here), so a fault in the middle of one leaves
 * the registers at the faulting element, and an element written to MMIO
 * is an MMIO exit of its own.
 */
static void rep_rf(struct x86_cpu *c, bool rep)
{
	if (rep)
		c->rflags |= X86_RF;
	else
		c->rflags &= ~(uint64_t)X86_RF;
}

static void sreg_add(struct x86_cpu *c, unsigned r, unsigned asz, int64_t inc)
{
	/* The address-size part of the register wraps; bits above it stay. */
	uint64_t m = szmask(asz);

	c->gpr[r] = (c->gpr[r] & ~m) | ((c->gpr[r] + (uint64_t)inc) & m);
}

static bool guest_intel(const struct x86_cpu *c)
{
	uint32_t v[4];

	x86_cpuid(c, 0, 0, v);
	/* "GenuineIntel" in EBX, EDX, ECX */
	return v[1] == 0x756e6547 && v[3] == 0x49656e69 && v[2] == 0x6c65746e;
}

/* REP with RCX 0: nothing done, the instruction retires. */
static int rep_done(struct x86_cpu *c, const struct x86_insn *i)
{
	/* KVM's string_registers_quirk(): Intel parts clear RCX[63:32] here. */
	if (i->asz == 4 && guest_intel(c))
		c->gpr[X86_RCX] = 0;
	c->sio.state = 0;
	rep_rf(c, false);
	return advance(c, i);
}

/* emulate.c's pio_in_emulated(): the elements one INS exit asks for. */
static unsigned ins_batch(const struct x86_cpu *c, const struct x86_insn *i,
			  bool rep)
{
	/* A batch never crosses RDI's page, and fits in sio.data. */
	unsigned off = c->gpr[X86_RDI] & 0xfff;
	uint64_t n = (c->rflags & X86_DF) ? off : 4096 - off;

	if (n > sizeof(c->sio.data) / i->osz)
		n = sizeof(c->sio.data) / i->osz;
	if (rep && n > (c->gpr[X86_RCX] & szmask(i->asz)))
		n = c->gpr[X86_RCX] & szmask(i->asz);
	else if (!rep)
		n = 1;
	/* At least one element: a batch of 0 would never make progress. */
	return n ? (unsigned)n : 1;
}

/* INS (op 0) / OUTS (op 1); osz is the element size. */
static int h_sio(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz, asz = i->asz;
	bool rep = i->pfx & (P_REP | P_REPNE);
	int64_t d = (c->rflags & X86_DF) ? -(int64_t)sz : sz;
	struct x86_stop *s = c->stop;
	struct x86_mref m;
	uint64_t v = 0;
	int r;

	if (c->cpl > iopl(c))
		return x86_gp0(c);
	/* REP with a zero count retires without any I/O or memory access. */
	if (rep && !(c->gpr[X86_RCX] & szmask(asz)))
		return rep_done(c, i);
	s->io.port = (uint16_t)c->gpr[X86_RDX];
	s->io.size = sz;
	if (i->op) {
		/*
		 * OUTS reads DS:RSI (or the override); INS writes ES:RDI,
		 * always flat.
		 */
		uint64_t seg = i->seg ? c->seg[i->seg].base : 0;

		r = x86_mem_prep(c, seg + (c->gpr[X86_RSI] & szmask(asz)), sz,
				 X86_ACC_READ, &m);
		if (!r)
			r = x86_mem_rd(c, &m, &v);
		if (r)
			return r;
		s->reason = X86_STOP_IO;
		s->io.is_write = 1;
		s->io.count = 1;
		s->io.data = (uint32_t)v;
		rep_rf(c, rep);
		sreg_add(c, X86_RSI, asz, d);
		if (rep)
			sreg_add(c, X86_RCX, asz, -1);
		else
			c->rip += i->len;
		return X86_STOPPED;
	}
	/*
	 * State 1: the VMM answered; the batch is sized again from the
	 * registers as they are now.
	 */
	if (c->sio.state == 1) {
		c->sio.pos = 0;
		c->sio.end = ins_batch(c, i, rep);
		c->sio.state = 2;
	}
	/* No answer yet: exit for one batch, written on the re-execution. */
	if (c->sio.state != 2) {
		s->reason = X86_STOP_IO;
		s->io.is_write = 0;
		s->io.count = ins_batch(c, i, rep);
		c->in.valid = true;
		c->in.str = true;
		c->in.size = sz;
		c->in.count = s->io.count;
		c->in.len = i->len;
		c->in.rip = c->rip;
		return X86_STOPPED;
	}
	rep_rf(c, rep);
	while (c->sio.pos < c->sio.end) {
		r = x86_mem_prep(c, c->gpr[X86_RDI] & szmask(asz), sz,
				 X86_ACC_WRITE, &m);
		if (!r) {
			memcpy(&v, c->sio.data + c->sio.pos * sz, sz);
			r = x86_mem_wr(c, &m, v);
		}
		if (r)
			return r;
		c->sio.pos++;
		sreg_add(c, X86_RDI, asz, d);
		if (!rep)
			break;
		sreg_add(c, X86_RCX, asz, -1);
		if (!(c->gpr[X86_RCX] & szmask(asz)))
			break;
	}
	c->sio.state = 0;
	/*
	 * With REP the guest runs the instruction again, for the next batch
	 * or to find RCX 0 and retire, as in KVM: a VMM that completes the
	 * last batch with immediate_exit set sees RIP at the INS, RCX 0.
	 */
	return rep ? X86_OK : advance(c, i);
}

void x86_complete_pio_in(struct x86_cpu *c, const void *data, unsigned len)
{
	unsigned want;

	if (!c->in.valid)
		return;
	c->in.valid = false;
	want = c->in.size * c->in.count;
	if (!c->in.str) {
		uint32_t v = 0;

		/* KVM completes a plain IN only at the same RIP. */
		if (c->rip != c->in.rip)
			return;
		memcpy(&v, data, len < c->in.size ? len : c->in.size);
		wreg(c, X86_RAX, c->in.size, v);
		c->rip += c->in.len;
		return;
	}
	/* A short answer leaves the rest of the batch zero. */
	memset(c->sio.data, 0, want);
	memcpy(c->sio.data, data, len < want ? len : want);
	c->sio.state = 1;
	c->pending |= X86_PEND_STATE;
}

void x86_complete_in(struct x86_cpu *c, uint32_t data)
{
	x86_complete_pio_in(c, &data, sizeof(data));
}

void x86_complete_mmio(struct x86_cpu *c, uint64_t data)
{
	/*
	 * Only an MMIO read that is waiting (1) takes data; 2 marks it answered
	 * for the re-executed instruction to pick up.
	 */
	if (c->mmio.rd != 1)
		return;
	c->mmio.rd = 2;
	c->mmio.rdata = data;
}

static int h_iretq(struct x86_cpu *c, const struct x86_insn *i)
{
	struct x86_mref m[5];
	uint64_t v[5], d, mask;
	uint64_t sp = c->gpr[X86_RSP];
	unsigned rpl;
	int r = 0;

	/*
	 * Read the whole frame (RIP, CS, RFLAGS, RSP, SS) before changing
	 * anything, so a fault leaves the handler's state intact.
	 */
	for (unsigned k = 0; k < 5 && !r; k++)
		r = x86_mem_prep(c, sp + 8 * k, 8, X86_ACC_READ, &m[k]);
	for (unsigned k = 0; k < 5 && !r; k++)
		r = x86_mem_rd(c, &m[k], &v[k]);
	if (r)
		return r;
	rpl = v[1] & 3;
	/*
	 * SDM IRET: the return CS may not be null or more privileged than CPL.
	 */
	if ((v[1] & ~3ull) == 0 || rpl < c->cpl)
		return x86_raise(c, X86_GP, true, v[1] & 0xfffc);
	r = x86_gdt_read(c, v[1], 0, &d);
	if (r)
		return r;
	/* Must be a present code segment. */
	if (!(d >> 43 & 1) || !(d >> 47 & 1))
		return x86_raise(c, X86_GP, true, v[1] & 0xfffc);
	/*
	 * L clear means a return to compatibility mode, which is not modelled.
	 */
	if (!(d >> 53 & 1))
		return x86_stop_internal(c, "IRET to compatibility mode");
	if (!x86_canonical(v[0]))
		return x86_gp0(c);
	/* A return to CPL 3 needs a usable stack segment. */
	if (rpl == 3 && (v[4] & ~3ull) == 0)
		return x86_gp0(c);
	/* IRET may write RF as well as what POPF may. */
	mask = x86_popf_mask(c) | X86_RF;
	if (c->irq_window && (v[2] & mask & X86_IF))
		c->pending |= X86_PEND_EVENT;
	/* IRET ends NMI blocking (SDM 6.7.1): a waiting NMI comes next. */
	if (c->nmi_masked) {
		c->nmi_masked = false;
		if (c->nmi_window)
			c->pending |= X86_PEND_EVENT;
	}
	x86_set_flags(c, (x86_flags(c) & ~mask) | (v[2] & mask));
	x86_dbg_recheck(c);
	struct kvm_segment *cs = &c->seg[X86_CS], *ss = &c->seg[X86_SS];

	cs->selector = v[1];
	cs->dpl = rpl;
	cs->l = 1;
	cs->db = 0;
	cs->type = (d >> 40) & 0xf;
	cs->present = 1;
	cs->s = 1;
	ss->selector = v[4];
	ss->dpl = rpl;
	ss->unusable = (v[4] & ~3ull) == 0;
	if (!ss->unusable) {
		ss->type = 3;
		ss->present = 1;
		ss->s = 1;
	}
	/*
	 * CPL changes last: x86_set_cpl() also starts a new decode generation.
	 */
	x86_set_cpl(c, rpl);
	c->gpr[X86_RSP] = v[3];
	c->rip = v[0];
	return X86_OK;
}

void x86_load_flat(struct kvm_segment *s, uint16_t sel, unsigned dpl, bool code)
{
	s->selector = sel;
	s->base = 0;
	s->limit = 0xffffffff;
	s->type = code ? 0xb : 0x3;
	s->present = 1;
	s->dpl = dpl;
	s->db = !code;
	s->s = 1;
	s->l = code;
	s->g = 1;
	s->unusable = 0;
}

static int h_syscall(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t f;

	/* SYSCALL/SYSRET are #UD while EFER.SCE is clear. */
	if (!(c->efer & X86_EFER_SCE))
		return x86_ud(c);
	c->gpr[X86_RCX] = c->rip + i->len;
	f = x86_flags(c);
	/*
	 * RF is cleared in the saved copy (R11) and in RFLAGS; FMASK
	 * clears the rest.
	 */
	c->gpr[X86_R11] = f & ~(uint64_t)X86_RF;
	x86_set_flags(c, f & ~c->sfmask & ~(uint64_t)X86_RF);
	/* STAR[47:32] is the kernel CS; SS is the next descriptor. */
	x86_load_flat(&c->seg[X86_CS], (c->star >> 32) & 0xfffc, 0, true);
	x86_load_flat(&c->seg[X86_SS], ((c->star >> 32) + 8) & 0xfffc, 0,
		      false);
	x86_set_cpl(c, 0);
	c->rip = c->lstar;
	return X86_OK;
}

static int h_sysret(struct x86_cpu *c, const struct x86_insn *i)
{
	uint16_t base = c->star >> 48;

	if (!(c->efer & X86_EFER_SCE))
		return x86_ud(c);
	if (c->cpl)
		return x86_gp0(c);
	/* SYSRET without REX.W returns to 32-bit code: not modelled. */
	if (!(i->pfx & P_REXW))
		return x86_stop_internal(c, "SYSRET to compatibility mode");
	/*
	 * A non-canonical RCX faults at CPL 0, before the switch (Intel's
	 * behaviour).
	 */
	if (!x86_canonical(c->gpr[X86_RCX]))
		return x86_gp0(c);
	/*
	 * RFLAGS from R11, with RF, VM and the reserved bits cleared and bit 1
	 * set.
	 */
	x86_set_flags(c, (c->gpr[X86_R11] & 0x3c7fd7) | 2);
	x86_dbg_recheck(c);
	/* STAR[63:48] + 16 is the 64-bit user CS, + 8 the user SS. */
	x86_load_flat(&c->seg[X86_CS], (base + 16) | 3, 3, true);
	x86_load_flat(&c->seg[X86_SS], (base + 8) | 3, 3, false);
	x86_set_cpl(c, 3);
	c->rip = c->gpr[X86_RCX];
	return X86_OK;
}

static int h_swapgs(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t t;

	/*
	 * SWAPGS is privileged: user code must not reach the kernel's GS base.
	 */
	if (c->cpl)
		return x86_gp0(c);
	t = c->seg[X86_GS].base;
	c->seg[X86_GS].base = c->kernel_gs_base;
	c->kernel_gs_base = t;
	return advance(c, i);
}

/* RDFSBASE etc. are not offered (CR4.FSGSBASE stays clear). */

int x86_bind_system(struct x86_insn *i, const void *zi, const void *zo)
{
	const ZydisDecodedInstruction *z = zi;
	const ZydisDecodedOperand *o = zo;

	switch (z->mnemonic) {
	case ZYDIS_MNEMONIC_HLT:
		i->fn = h_hlt;
		return 0;
	case ZYDIS_MNEMONIC_VMCALL:
	case ZYDIS_MNEMONIC_VMMCALL:
		/* Both vendors' hypercall instructions: see h_vmcall(). */
		i->op = z->mnemonic == ZYDIS_MNEMONIC_VMMCALL;
		i->fn = h_vmcall;
		return 0;
	case ZYDIS_MNEMONIC_MONITOR:
	case ZYDIS_MNEMONIC_MWAIT:
		i->op = z->mnemonic == ZYDIS_MNEMONIC_MWAIT;
		i->fn = h_monitor_mwait;
		return 0;
	case ZYDIS_MNEMONIC_UD0:
	case ZYDIS_MNEMONIC_UD1:
	case ZYDIS_MNEMONIC_UD2:
		i->fn = h_ud;
		return 0;
	case ZYDIS_MNEMONIC_INT:
		i->op = 0;
		i->fn = h_int;
		return 0;
	case ZYDIS_MNEMONIC_INT3:
		i->op = 3;
		i->fn = h_int;
		return 0;
	case ZYDIS_MNEMONIC_CPUID:
		i->fn = h_cpuid;
		return 0;
	case ZYDIS_MNEMONIC_XGETBV:
		i->fn = h_xgetbv;
		return 0;
	case ZYDIS_MNEMONIC_XSETBV:
		i->fn = h_xsetbv;
		return 0;
	case ZYDIS_MNEMONIC_XSAVE:
	case ZYDIS_MNEMONIC_XSAVE64:
	case ZYDIS_MNEMONIC_XSAVEOPT:
	case ZYDIS_MNEMONIC_XSAVEOPT64:
	case ZYDIS_MNEMONIC_XSAVEC:
	case ZYDIS_MNEMONIC_XSAVEC64:
	case ZYDIS_MNEMONIC_XRSTOR:
	case ZYDIS_MNEMONIC_XRSTOR64:
		return x86_bind_xsave(i, z, o);
	case ZYDIS_MNEMONIC_RDTSC:
		i->op = 0;
		i->fn = h_rdtsc;
		return 0;
	case ZYDIS_MNEMONIC_RDTSCP:
		i->op = 1;
		i->fn = h_rdtsc;
		return 0;
	case ZYDIS_MNEMONIC_RDMSR:
		i->op = 0;
		i->fn = h_msr;
		return 0;
	case ZYDIS_MNEMONIC_WRMSR:
		i->op = 1;
		i->fn = h_msr;
		return 0;
	case ZYDIS_MNEMONIC_INT1:
		return x86_bind_debug(i, z, o);
	case ZYDIS_MNEMONIC_MOV:
		if ((o[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		     ZydisRegisterGetClass(o[0].reg.value) ==
			     ZYDIS_REGCLASS_DEBUG) ||
		    (o[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		     ZydisRegisterGetClass(o[1].reg.value) ==
			     ZYDIS_REGCLASS_DEBUG))
			return x86_bind_debug(i, z, o);
		if (ZydisRegisterGetClass(o[0].reg.value) ==
			    ZYDIS_REGCLASS_CONTROL &&
		    o[0].type == ZYDIS_OPERAND_TYPE_REGISTER) {
			i->op = 0;
			i->fn = h_movcr;
			return 0;
		}
		if (o[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(o[1].reg.value) ==
			    ZYDIS_REGCLASS_CONTROL) {
			i->op = 1;
			i->fn = h_movcr;
			return 0;
		}
		if (o[0].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(o[0].reg.value) ==
			    ZYDIS_REGCLASS_SEGMENT) {
			i->op = 0;
			i->fn = h_movseg;
			return 0;
		}
		if (o[1].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(o[1].reg.value) ==
			    ZYDIS_REGCLASS_SEGMENT) {
			i->op = 1;
			i->fn = h_movseg;
			return 0;
		}
		return -1;
	case ZYDIS_MNEMONIC_LGDT:
		i->op = 0;
		goto dt;
	case ZYDIS_MNEMONIC_LIDT:
		i->op = 1;
		goto dt;
	case ZYDIS_MNEMONIC_SGDT:
		i->op = 2;
		goto dt;
	case ZYDIS_MNEMONIC_SIDT:
		i->op = 3;
	dt:
		i->fn = h_dtable;
		return 0;
	case ZYDIS_MNEMONIC_LTR:
		i->fn = h_ltr;
		return 0;
	case ZYDIS_MNEMONIC_INVLPG:
		i->fn = h_invlpg;
		return 0;
	case ZYDIS_MNEMONIC_CLTS:
		i->fn = h_clts;
		return 0;
	/* No caches to write back: privileged no-ops. */
	case ZYDIS_MNEMONIC_WBINVD:
	case ZYDIS_MNEMONIC_INVD:
		i->fn = h_priv_nop;
		return 0;
	case ZYDIS_MNEMONIC_CLI:
		i->op = 0;
		i->fn = h_cli;
		return 0;
	case ZYDIS_MNEMONIC_STI:
		i->op = 1;
		i->fn = h_cli;
		return 0;
	case ZYDIS_MNEMONIC_IN:
	case ZYDIS_MNEMONIC_OUT: {
		bool out = z->mnemonic == ZYDIS_MNEMONIC_OUT;
		const ZydisDecodedOperand *port = out ? &o[0] : &o[1];
		const ZydisDecodedOperand *data = out ? &o[1] : &o[0];

		i->op = out;
		/* IN/OUT's data operand gives the size; AL, AX or EAX. */
		i->osz = data->size / 8;
		i->imm = port->type == ZYDIS_OPERAND_TYPE_IMMEDIATE
				 ? (int64_t)port->imm.value.u
				 : -1;
		i->fn = h_io;
		return 0;
	}
	case ZYDIS_MNEMONIC_INSB:
	case ZYDIS_MNEMONIC_INSW:
	case ZYDIS_MNEMONIC_INSD:
		i->op = 0;
		i->fn = h_sio;
		return 0;
	case ZYDIS_MNEMONIC_OUTSB:
	case ZYDIS_MNEMONIC_OUTSW:
	case ZYDIS_MNEMONIC_OUTSD:
		i->op = 1;
		i->fn = h_sio;
		return 0;
	case ZYDIS_MNEMONIC_IRETQ:
		i->fn = h_iretq;
		return 0;
	case ZYDIS_MNEMONIC_SYSCALL:
		i->fn = h_syscall;
		return 0;
	case ZYDIS_MNEMONIC_SYSRET:
		i->fn = h_sysret;
		return 0;
	case ZYDIS_MNEMONIC_SWAPGS:
		i->fn = h_swapgs;
		return 0;
	default:
		return -1;
	}
}
