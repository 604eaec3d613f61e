// SPDX-License-Identifier: MIT
/*
 * Exceptions and interrupts through the 64-bit IDT, the system
 * instructions, MSRs, CPUID, and the register-access API in KVM layouts.
 */
#include <errno.h>
#include <stdlib.h>
#include <time.h>

#include <Zydis/Zydis.h>

#include "x86/internal.h"

/* ---- Event delivery ------------------------------------------------- */

/* Read @len (<= 8) bytes of a system structure (supervisor access). */
static int sys_read(struct x86_cpu *c, uint64_t lin, unsigned len, uint64_t *v)
{
	struct x86_mref m;
	int r = x86_mem_prep(c, lin, len, X86_ACC_READ | X86_ACC_SUP, &m);

	if (r)
		return r;
	if (m.mmio)
		return x86_stop_internal(c, "system structure in MMIO");
	return x86_mem_rd(c, &m, v);
}

/* Read the 8-byte GDT descriptor of @sel; #GP(sel) beyond the limit. */
static int gdt_read(struct x86_cpu *c, uint16_t sel, uint32_t ext, uint64_t *d)
{
	if ((sel & 4) || (uint32_t)(sel | 7) > c->gdt.limit)
		return x86_raise(c, X86_GP, true, (sel & ~3u) | ext);
	return sys_read(c, c->gdt.base + (sel & ~7u), 8, d);
}

static bool contributory(unsigned v)
{
	return v == X86_DE || (v >= X86_TS && v <= X86_GP);
}

static int deliver_one(struct x86_cpu *c)
{
	unsigned vec = c->pend.vector, ext = !c->pend.soft;
	uint32_t ierr = vec * 8 + 2 + ext;
	uint64_t lo, hi, desc, rsp, off, ret, fl;
	unsigned type, dpl, ist, ncpl, nq;
	uint16_t sel;
	struct x86_mref m[6];
	uint64_t frame[6];
	int r;

	if (vec * 16 + 15 > c->idt.limit)
		return x86_raise(c, X86_GP, true, ierr);
	r = sys_read(c, c->idt.base + vec * 16, 8, &lo);
	if (!r)
		r = sys_read(c, c->idt.base + vec * 16 + 8, 8, &hi);
	if (r)
		return r;
	type = (lo >> 40) & 0xf;
	dpl = (lo >> 45) & 3;
	ist = (lo >> 32) & 7;
	sel = (lo >> 16) & 0xffff;
	off = (lo & 0xffff) | ((lo >> 48) & 0xffff) << 16 | hi << 32;
	if (type != 0xe && type != 0xf)
		return x86_raise(c, X86_GP, true, ierr);
	if (c->pend.soft && c->cpl > dpl)
		return x86_raise(c, X86_GP, true, ierr);
	if (!(lo >> 47 & 1))
		return x86_raise(c, X86_NP, true, ierr);
	if ((sel & ~3u) == 0)
		return x86_raise(c, X86_GP, true, ext);
	r = gdt_read(c, sel, ext, &desc);
	if (r)
		return r;
	/* A present 64-bit code segment at or below the current level. */
	if (!(desc >> 44 & 1) || !(desc >> 43 & 1) || !(desc >> 53 & 1) ||
	    ((desc >> 45) & 3) > c->cpl)
		return x86_raise(c, X86_GP, true, (sel & ~3u) | ext);
	if (!(desc >> 47 & 1))
		return x86_raise(c, X86_NP, true, (sel & ~3u) | ext);
	ncpl = (desc >> 42 & 1) ? c->cpl : (desc >> 45) & 3;

	rsp = c->gpr[X86_RSP];
	if (ist || ncpl < c->cpl) {
		uint64_t toff = ist ? 0x24 + (ist - 1) * 8 : 4 + ncpl * 8;

		if (toff + 7 > c->tr.limit)
			return x86_raise(c, X86_TS, true,
					 (c->tr.selector & ~3u) | ext);
		r = sys_read(c, c->tr.base + toff, 8, &rsp);
		if (r)
			return r;
	}
	if (!x86_canonical(off))
		return x86_raise(c, X86_GP, true, ext);
	rsp &= ~15ull;

	/* The frame, lowest address first. */
	ret = c->rip + (c->pend.soft ? c->pend.soft_len : 0);
	fl = x86_flags(c);
	nq = 0;
	if (c->pend.has_err)
		frame[nq++] = c->pend.err;
	frame[nq++] = ret;
	frame[nq++] = c->seg[X86_CS].selector;
	frame[nq++] = fl;
	frame[nq++] = c->gpr[X86_RSP];
	frame[nq++] = c->seg[X86_SS].selector;
	unsigned saved = c->cpl;

	/* Frame writes are made at the handler's privilege. */
	x86_set_cpl(c, ncpl);
	for (unsigned k = 0; k < nq && !r; k++) {
		r = x86_mem_prep(c, rsp - 8 * (nq - k), 8,
				 X86_ACC_WRITE | (ncpl < 3 ? X86_ACC_SUP : 0),
				 &m[k]);
		if (!r && m[k].mmio)
			r = x86_stop_internal(c, "exception frame in MMIO");
	}
	if (r) {
		x86_set_cpl(c, saved);
		if (r == X86_EXC && c->exc.vector == X86_PF_VEC)
			c->exc.err &= ~X86_PFEC_U; /* implicit: supervisor */
		return r;
	}
	for (unsigned k = 0; k < nq; k++)
		x86_mem_wr(c, &m[k], frame[k]);

	if (ncpl != saved) {
		struct kvm_segment *ss = &c->seg[X86_SS];

		ss->selector = ncpl;
		ss->base = 0;
		ss->dpl = ncpl;
		ss->unusable = 1;
	}
	struct kvm_segment *cs = &c->seg[X86_CS];

	cs->selector = (sel & ~3u) | ncpl;
	cs->dpl = ncpl;
	cs->l = 1;
	cs->db = 0;
	cs->s = 1;
	cs->present = 1;
	cs->type = (desc >> 40) & 0xf;
	fl &= ~(uint64_t)(X86_TF | X86_NT | X86_RF | X86_VM);
	if (type == 0xe)
		fl &= ~(uint64_t)X86_IF;
	x86_set_flags(c, fl);
	c->gpr[X86_RSP] = rsp - 8 * nq;
	c->rip = off;
	return X86_OK;
}

/*
 * Deliver cpu->pend.  A fault while delivering combines with the event as
 * SDM Table 6-5 says (#DF for contributory+contributory and #PF+#PF or
 * #PF+contributory); a fault while delivering #DF is a triple fault.
 */
int x86_deliver(struct x86_cpu *c)
{
	for (;;) {
		unsigned first = c->pend.vector;
		bool soft = c->pend.soft;
		unsigned second;
		bool df;
		int r;

		if (first == X86_PF_VEC && !soft)
			c->cr2 = c->pend.cr2;
		r = deliver_one(c);
		if (r == X86_OK) {
			c->pend.valid = false;
			c->dbg_delivered = true; /* no TF trap after INT n */
			return X86_OK;
		}
		if (r == X86_STOPPED)
			return r; /* retried on the next run */
		second = c->exc.vector;
		if (first == X86_DF_VEC && !soft) {
			c->pend.valid = false;
			c->stop->reason = X86_STOP_SHUTDOWN;
			return X86_STOPPED;
		}
		df = !soft && ((contributory(first) && contributory(second)) ||
			       (first == X86_PF_VEC && (second == X86_PF_VEC ||
							contributory(second))));
		c->pend.soft = false;
		if (df) {
			c->pend.vector = X86_DF_VEC;
			c->pend.has_err = true;
			c->pend.err = 0;
		} else {
			c->pend.vector = second;
			c->pend.has_err = c->exc.has_err;
			c->pend.err = c->exc.err;
			c->pend.cr2 = c->exc.cr2;
		}
	}
}

void x86_inject(struct x86_cpu *c, uint8_t vector, bool has_err, uint32_t err)
{
	c->pend.valid = true;
	c->pend.vector = vector;
	c->pend.has_err = has_err;
	c->pend.err = err;
	c->pend.soft = false;
	c->pend.queued = false;
	c->pend.cr2 = c->cr2;
}

void x86_inject_nmi(struct x86_cpu *c)
{
	x86_inject(c, 2, false, 0);
	c->nmi_masked = true;
}

/* ---- System instructions -------------------------------------------- */

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
	if (c->cpl)
		return x86_gp0(c);
	c->rip += i->len;
	c->stop->reason = X86_STOP_HLT;
	return X86_STOPPED;
}

/* AMD's vendor strings (EBX, EDX, ECX of leaf 0), as KVM lists them. */
bool x86_host_amd(void)
{
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
	if (i->op == 3 && (c->gdbg & KVM_GUESTDBG_USE_SW_BP))
		return x86_dbg_int3(c, i);
	c->pend.valid = true;
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

	c->tsc_base = x86_tsc_at(c, now);
	c->tsc_ns = now;
	c->tsc_khz = khz;
}

/* RDTSC (op 0) and RDTSCP (op 1), at the vCPU's TSC frequency. */
static int h_rdtsc(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t t;

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
		adj = v - x86_tsc(c);
		x86_set_msr(c, X86_MSR_TSC, v);
		c->tsc_adjust += adj;
		return true;
	}
	if (idx != X86_MSR_TSC_ADJUST)
		return false;
	x86_cpuid(c, 7, 0, leaf7);
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

	if (!(mask & why))
		return x86_gp0(c);
	c->stop->reason = X86_STOP_MSR;
	c->stop->msr.index = idx;
	c->stop->msr.reason = why;
	c->stop->msr.data = i->op ? v : 0;
	c->stop->msr.is_write = i->op;
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
	if (c->msr_allowed && !c->msr_allowed(c->bus_ctx, idx, i->op))
		return msr_refused(c, i, idx, v, KVM_MSR_EXIT_REASON_FILTER);
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
		if (idx == X86_MSR_KVM_SYSTEM_TIME)
			c->pv_req |= X86_PV_OLD;
		else if (idx == X86_MSR_KVM_SYSTEM_TIME_NEW)
			c->pv_req |= X86_PV_NEW;
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
	if (!c->umsr.valid || c->rip != c->umsr.rip)
		return;
	c->umsr.valid = false;
	if (error) {
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
static void set_cr4(struct x86_cpu *c, uint64_t v)
{
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
		if (v >> 32 || !(v & X86_CR0_PG) || !(v & X86_CR0_PE) ||
		    ((v & X86_CR0_NW) && !(v & X86_CR0_CD)))
			return x86_gp0(c);
		if ((v ^ c->cr0) & (X86_CR0_WP | X86_CR0_PG))
			x86_tlb_flush(c);
		c->cr0 = v | X86_CR0_ET;
		return X86_OK;
	case 2:
		c->cr2 = v;
		return X86_OK;
	case 3:
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
		set_cr4(c, v);
		x86_tlb_flush(c);
		return X86_OK;
	}
	case 8:
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
		r = x86_mem_prep(c, a, 2, X86_ACC_READ, &m0);
		if (!r)
			r = x86_mem_prep(c, a + 2, 8, X86_ACC_READ, &m1);
		if (!r)
			r = x86_mem_rd(c, &m0, &lim);
		if (!r)
			r = x86_mem_rd(c, &m1, &base);
		if (r)
			return r;
		if (!x86_canonical(base))
			return x86_gp0(c);
		t->limit = lim;
		t->base = base;
		return advance(c, i);
	}
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
	if ((sel & ~3u) == 0)
		return x86_gp0(c);
	if ((sel & 4) || (uint32_t)(sel | 7) + 8 > c->gdt.limit)
		return x86_raise(c, X86_GP, true, sel & ~3u);
	r = sys_read(c, c->gdt.base + (sel & ~7u), 8, &lo);
	if (!r)
		r = sys_read(c, c->gdt.base + (sel & ~7u) + 8, 8, &hi);
	if (r)
		return r;
	if (((lo >> 40) & 0x1f) != 0x9) /* available 64-bit TSS */
		return x86_raise(c, X86_GP, true, sel & ~3u);
	if (!(lo >> 47 & 1))
		return x86_raise(c, X86_NP, true, sel & ~3u);
	/* Mark it busy in the GDT. */
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

	if (s == X86_CS || s >= X86_NSEG)
		return x86_ud(c);
	r = sel_operand(c, i, 1, &sel);
	if (r)
		return r;
	if ((sel & ~3u) == 0) {
		if (s == X86_SS && c->cpl == 3)
			return x86_gp0(c);
	} else {
		r = gdt_read(c, sel, 0, &d);
		if (r)
			return r;
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

	if (c->cpl > iopl(c))
		return x86_gp0(c);
	s->reason = X86_STOP_IO;
	s->io.port = port;
	s->io.size = i->osz;
	s->io.is_write = i->op;
	s->io.count = 1;
	if (i->op) {
		s->io.data = rreg(c, X86_RAX, i->osz);
		c->rip += i->len;
	} else {
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
	unsigned off = c->gpr[X86_RDI] & 0xfff;
	uint64_t n = (c->rflags & X86_DF) ? off : 4096 - off;

	if (n > sizeof(c->sio.data) / i->osz)
		n = sizeof(c->sio.data) / i->osz;
	if (rep && n > (c->gpr[X86_RCX] & szmask(i->asz)))
		n = c->gpr[X86_RCX] & szmask(i->asz);
	else if (!rep)
		n = 1;
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
	if (rep && !(c->gpr[X86_RCX] & szmask(asz)))
		return rep_done(c, i);
	s->io.port = (uint16_t)c->gpr[X86_RDX];
	s->io.size = sz;
	if (i->op) {
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
	if (c->sio.state == 1) {
		c->sio.pos = 0;
		c->sio.end = ins_batch(c, i, rep);
		c->sio.state = 2;
	}
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

	for (unsigned k = 0; k < 5 && !r; k++)
		r = x86_mem_prep(c, sp + 8 * k, 8, X86_ACC_READ, &m[k]);
	for (unsigned k = 0; k < 5 && !r; k++)
		r = x86_mem_rd(c, &m[k], &v[k]);
	if (r)
		return r;
	rpl = v[1] & 3;
	if ((v[1] & ~3ull) == 0 || rpl < c->cpl)
		return x86_raise(c, X86_GP, true, v[1] & 0xfffc);
	r = gdt_read(c, v[1], 0, &d);
	if (r)
		return r;
	if (!(d >> 43 & 1) || !(d >> 47 & 1))
		return x86_raise(c, X86_GP, true, v[1] & 0xfffc);
	if (!(d >> 53 & 1))
		return x86_stop_internal(c, "IRET to compatibility mode");
	if (!x86_canonical(v[0]))
		return x86_gp0(c);
	if (rpl == 3 && (v[4] & ~3ull) == 0)
		return x86_gp0(c);
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
	x86_set_cpl(c, rpl);
	c->gpr[X86_RSP] = v[3];
	c->rip = v[0];
	return X86_OK;
}

static void load_flat(struct kvm_segment *s, uint16_t sel, unsigned dpl,
		      bool code)
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

	if (!(c->efer & X86_EFER_SCE))
		return x86_ud(c);
	c->gpr[X86_RCX] = c->rip + i->len;
	f = x86_flags(c);
	c->gpr[X86_R11] = f & ~(uint64_t)X86_RF;
	x86_set_flags(c, f & ~c->sfmask & ~(uint64_t)X86_RF);
	load_flat(&c->seg[X86_CS], (c->star >> 32) & 0xfffc, 0, true);
	load_flat(&c->seg[X86_SS], ((c->star >> 32) + 8) & 0xfffc, 0, false);
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
	if (!(i->pfx & P_REXW))
		return x86_stop_internal(c, "SYSRET to compatibility mode");
	if (!x86_canonical(c->gpr[X86_RCX]))
		return x86_gp0(c);
	x86_set_flags(c, (c->gpr[X86_R11] & 0x3c7fd7) | 2);
	x86_dbg_recheck(c);
	load_flat(&c->seg[X86_CS], (base + 16) | 3, 3, true);
	load_flat(&c->seg[X86_SS], (base + 8) | 3, 3, false);
	x86_set_cpl(c, 3);
	c->rip = c->gpr[X86_RCX];
	return X86_OK;
}

static int h_swapgs(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t t;

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

/* ---- MSRs and CPUID ------------------------------------------------- */

/* kvmclock's MSRs, each pair as its KVM_CPUID_FEATURES bit allows. */
static bool pv_clock_msr(const struct x86_cpu *c, uint32_t idx)
{
	return x86_pv_has(c, idx == X86_MSR_KVM_SYSTEM_TIME_NEW ||
					     idx == X86_MSR_KVM_WALL_CLOCK_NEW
				     ? X86_KVM_FEATURE_CLOCKSOURCE2
				     : X86_KVM_FEATURE_CLOCKSOURCE);
}

int x86_get_msr(const struct x86_cpu *c, uint32_t idx, uint64_t *v)
{
	switch (idx) {
	case X86_MSR_TSC:
		*v = x86_tsc(c);
		return 0;
	case X86_MSR_APIC_BASE:
		*v = c->apic_base;
		return 0;
	case X86_MSR_EFER:
		*v = c->efer;
		return 0;
	case X86_MSR_STAR:
		*v = c->star;
		return 0;
	case X86_MSR_LSTAR:
		*v = c->lstar;
		return 0;
	case X86_MSR_CSTAR:
		*v = c->cstar;
		return 0;
	case X86_MSR_SFMASK:
		*v = c->sfmask;
		return 0;
	case X86_MSR_FS_BASE:
		*v = c->seg[X86_FS].base;
		return 0;
	case X86_MSR_GS_BASE:
		*v = c->seg[X86_GS].base;
		return 0;
	case X86_MSR_KERNEL_GS_BASE:
		*v = c->kernel_gs_base;
		return 0;
	case X86_MSR_TSC_AUX:
		*v = c->tsc_aux;
		return 0;
	case X86_MSR_TSC_ADJUST:
		*v = c->tsc_adjust;
		return 0;
	case X86_MSR_K7_HWCR:
		*v = c->hwcr;
		return 0;
	case X86_MSR_UCODE_REV:
		*v = c->ucode_rev;
		return 0;
	case X86_MSR_PLATFORM_INFO:
		*v = c->platform_info;
		return 0;
	case X86_MSR_POWER_CTL:
		*v = c->power_ctl;
		return 0;
	case X86_MSR_MISC_ENABLE:
		*v = c->misc_enable;
		return 0;
	case X86_MSR_KVM_SYSTEM_TIME:
	case X86_MSR_KVM_SYSTEM_TIME_NEW:
		if (!pv_clock_msr(c, idx))
			return -EOPNOTSUPP;
		/* KVM keeps one value for both (vcpu->arch.time). */
		*v = c->kvm_system_time;
		return 0;
	case X86_MSR_KVM_STEAL_TIME:
		if (!x86_pv_has(c, X86_KVM_FEATURE_STEAL_TIME))
			return -EOPNOTSUPP;
		*v = c->kvm_steal_time;
		return 0;
	case X86_MSR_KVM_POLL_CONTROL:
		if (!x86_pv_has(c, X86_KVM_FEATURE_POLL_CONTROL))
			return -EOPNOTSUPP;
		*v = c->kvm_poll_control;
		return 0;
	case X86_MSR_KVM_WALL_CLOCK:
	case X86_MSR_KVM_WALL_CLOCK_NEW:
		if (!pv_clock_msr(c, idx))
			return -EOPNOTSUPP;
		*v = c->kvm_wall_clock ? __atomic_load_n(c->kvm_wall_clock,
							 __ATOMIC_RELAXED)
				       : c->kvm_wall_clock_own;
		return 0;
	}
	return -EINVAL;
}

int x86_set_msr(struct x86_cpu *c, uint32_t idx, uint64_t v)
{
	switch (idx) {
	case X86_MSR_TSC:
		c->tsc_base = v;
		c->tsc_ns = x86_host_ns();
		return 0;
	case X86_MSR_APIC_BASE:
		c->apic_base = v;
		return 0;
	case X86_MSR_EFER:
		/* SCE, LME, LMA, NXE; long mode cannot be left. */
		if (v & ~(X86_EFER_SCE | X86_EFER_LME | X86_EFER_LMA |
			  X86_EFER_NXE))
			return -EINVAL;
		if ((c->cr0 & X86_CR0_PG) &&
		    (v ^ c->efer) & (X86_EFER_LME | X86_EFER_LMA))
			return -EINVAL;
		if ((v ^ c->efer) & X86_EFER_NXE) {
			c->efer = v;
			x86_paging_update(c);
		}
		c->efer = v;
		return 0;
	case X86_MSR_STAR:
		c->star = v;
		return 0;
	case X86_MSR_LSTAR:
	case X86_MSR_CSTAR:
	case X86_MSR_FS_BASE:
	case X86_MSR_GS_BASE:
	case X86_MSR_KERNEL_GS_BASE:
		if (!x86_canonical(v))
			return -EINVAL;
		if (idx == X86_MSR_LSTAR)
			c->lstar = v;
		else if (idx == X86_MSR_CSTAR)
			c->cstar = v;
		else if (idx == X86_MSR_FS_BASE)
			c->seg[X86_FS].base = v;
		else if (idx == X86_MSR_GS_BASE)
			c->seg[X86_GS].base = v;
		else
			c->kernel_gs_base = v;
		return 0;
	case X86_MSR_SFMASK:
		c->sfmask = v & 0xffffffff;
		return 0;
	case X86_MSR_TSC_AUX:
		c->tsc_aux = v & 0xffffffff;
		return 0;
	case X86_MSR_TSC_ADJUST:
		c->tsc_adjust = v;
		return 0;
	case X86_MSR_K7_HWCR:
		/*
		 * KVM drops the flush-filter, IGNNE and TLB-cache bits and
		 * keeps McStatusWrEn and TscFreqSel; anything else fails.
		 */
		v &= ~(1ULL << 3 | 1ULL << 6 | 1ULL << 8);
		if (v & ~(1ULL << 18 | 1ULL << 24))
			return -EINVAL;
		c->hwcr = v;
		return 0;
	case X86_MSR_UCODE_REV:
		c->ucode_rev = v; /* the VMM's; guest writes do not get here */
		return 0;
	case X86_MSR_POWER_CTL:
		c->power_ctl = v; /* any value, from either side */
		return 0;
	case X86_MSR_PLATFORM_INFO:
		/*
		 * The VMM's alone (the guest's #GP in h_msr).  KVM refuses to
		 * clear CPUID_FAULT while the guest has CPUID faulting on;
		 * gmem has no CPUID faulting (MSR_MISC_FEATURES_ENABLES).
		 */
		c->platform_info = v;
		return 0;
	case X86_MSR_MISC_ENABLE:
		/*
		 * With KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT off, the MWAIT bit
		 * is CPUID.1:ECX.MONITOR's, and needs SSE3 in CPUID to change.
		 */
		if (!x86_quirk(c, KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT) &&
		    ((v ^ c->misc_enable) & X86_MISC_ENABLE_MWAIT)) {
			uint32_t leaf1[4];

			x86_cpuid(c, 1, 0, leaf1);
			if (!(leaf1[2] & 1u))
				return -EINVAL;
			c->misc_enable = v;
			x86_cpuid_runtime(c, c->cpuid, c->ncpuid);
			return 0;
		}
		c->misc_enable = v;
		return 0;
	case X86_MSR_KVM_SYSTEM_TIME:
	case X86_MSR_KVM_SYSTEM_TIME_NEW:
		if (!pv_clock_msr(c, idx))
			return -EOPNOTSUPP;
		/*
		 * Any value, as KVM (bit 0 enables; a GPA without memory
		 * just leaves the structure unwritten); the vCPU layer
		 * writes it before the guest runs on.
		 */
		c->kvm_system_time = v;
		c->pv_req |= X86_PV_CLOCK;
		return 0;
	case X86_MSR_KVM_STEAL_TIME:
		/* 64-byte aligned: bits 1-5 are reserved. */
		if (!x86_pv_has(c, X86_KVM_FEATURE_STEAL_TIME))
			return -EOPNOTSUPP;
		if (v & 0x3e)
			return -EINVAL;
		c->kvm_steal_time = v;
		if (v & 1)
			c->pv_req |= X86_PV_STEAL;
		return 0;
	case X86_MSR_KVM_POLL_CONTROL:
		if (!x86_pv_has(c, X86_KVM_FEATURE_POLL_CONTROL))
			return -EOPNOTSUPP;
		if (v & ~1ull)
			return -EINVAL;
		c->kvm_poll_control = v;
		return 0;
	case X86_MSR_KVM_WALL_CLOCK:
	case X86_MSR_KVM_WALL_CLOCK_NEW:
		if (!pv_clock_msr(c, idx))
			return -EOPNOTSUPP;
		if (c->kvm_wall_clock)
			__atomic_store_n(c->kvm_wall_clock, v,
					 __ATOMIC_RELAXED);
		else
			c->kvm_wall_clock_own = v;
		c->pv_req |= X86_PV_WALL;
		return 0;
	}
	return -EINVAL;
}

/*
 * KVM's order: msrs_to_save first, then emulated_msrs.  The TSC deadline
 * (0x6e0) and MCG_STATUS/MCG_CTL (0x17a, 0x17b) are the vCPU layer's
 * (its APIC and machine-check banks), which KVM_GET/SET_MSRS ask first.
 */
static const uint32_t msr_list[] = {
	X86_MSR_STAR,
	X86_MSR_CSTAR,
	X86_MSR_KERNEL_GS_BASE,
	X86_MSR_SFMASK,
	X86_MSR_LSTAR,
	X86_MSR_TSC,
	X86_MSR_TSC_AUX,
	X86_MSR_KVM_SYSTEM_TIME,
	X86_MSR_KVM_WALL_CLOCK,
	X86_MSR_KVM_SYSTEM_TIME_NEW,
	X86_MSR_KVM_WALL_CLOCK_NEW,
	X86_MSR_KVM_STEAL_TIME,
	X86_MSR_KVM_POLL_CONTROL,
	X86_MSR_TSC_ADJUST,
	0x6e0,
	X86_MSR_MISC_ENABLE,
	0x17a,
	0x17b,
	X86_MSR_PLATFORM_INFO,
	X86_MSR_UCODE_REV,
	X86_MSR_K7_HWCR,
	X86_MSR_POWER_CTL,
};

const uint32_t *x86_msr_list(unsigned *n)
{
	*n = sizeof(msr_list) / sizeof(msr_list[0]);
	return msr_list;
}

/*
 * The one feature MSR: the microcode revision, which a VMM reads from
 * /dev/kvm to give its vCPUs.  The "host" has none loaded, so it reads
 * as KVM's vCPU default.
 */
#define X86_UCODE_REV_DEFAULT 0x100000000ull

static const uint32_t feature_msr_list[] = {X86_MSR_UCODE_REV};

const uint32_t *x86_feature_msr_list(unsigned *n)
{
	*n = sizeof(feature_msr_list) / sizeof(feature_msr_list[0]);
	return feature_msr_list;
}

int x86_get_feature_msr(uint32_t idx, uint64_t *v)
{
	if (idx != X86_MSR_UCODE_REV)
		return -EINVAL;
	*v = X86_UCODE_REV_DEFAULT;
	return 0;
}

/* What the model implements, as a default CPUID table. */
static const struct kvm_cpuid_entry2 default_cpuid[] = {
	/* max basic leaf 0xd, "GenuineIntel" */
	{.function = 0,
	 .eax = 0xd,
	 .ebx = 0x756e6547,
	 .ecx = 0x6c65746e,
	 .edx = 0x49656e69},
	/*
	 * family 6; ECX: SSE3(0) SSSE3(9) SSE4.1(19) SSE4.2(20) x2APIC(21,
	 * as KVM always reports it; the APIC is the irqchip's) MOVBE(22)
	 * POPCNT(23) XSAVE(26) AVX(28, with X86_AVX) hypervisor(31), and
	 * OSXSAVE(27) following CR4 (x86_cpuid_runtime()); EDX: FPU(0) TSC(4)
	 * MSR(5) PAE(6) MCE(7) CX8(8) MCA(14, the vCPU layer's banks) CMOV(15)
	 * FXSR(24) SSE(25) SSE2(26).  No MMX(23): the MMX-register forms of
	 * SSE instructions stay #UD.
	 */
	{.function = 1,
	 .eax = 0x000606a0,
	 .ecx = (1u << 0) | (1u << 9) | (1u << 19) | (1u << 20) | (1u << 21) |
		(1u << 22) | (1u << 23) | (1u << 26) |
		(X86_AVX ? 1u << 28 : 0) | (1u << 31),
	 .edx = (1u << 0) | (1u << 4) | (1u << 5) | (1u << 6) | (1u << 7) |
		(1u << 8) | (1u << 14) | (1u << 15) | (1u << 24) | (1u << 25) |
		(1u << 26)},
	/* EBX: BMI1(3) SMEP(7) SMAP(20) */
	{.function = 7,
	 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	 .ebx = (1u << 1) | (1u << 3) | (1u << 7) | (1u << 20)},
	/*
	 * XSAVE (sse.c): x87, SSE and, with X86_AVX, YMM (sub-leaf 2: 256
	 * bytes at 576); the same size in either format (EBX follows
	 * XCR0); XSAVEOPT, XSAVEC, XGETBV with ECX = 1, no XSAVES (no
	 * IA32_XSS, no supervisor components).
	 */
	{.function = 0xd,
	 .index = 0,
	 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	 .eax = X86_XCR0_SUPPORTED,
	 .ebx = X86_XSAVE_SUPPORTED_SIZE,
	 .ecx = X86_XSAVE_SUPPORTED_SIZE},
	{.function = 0xd,
	 .index = 1,
	 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	 .eax = X86_XSAVE_XSAVEOPT | X86_XSAVE_XSAVEC | X86_XSAVE_XGETBV1,
	 .ebx = X86_XSAVE_SUPPORTED_SIZE},
#if X86_AVX
	{.function = 0xd,
	 .index = 2,
	 .flags = KVM_CPUID_FLAG_SIGNIFCANT_INDEX,
	 .eax = X86_XSAVE_YMM_SIZE,
	 .ebx = X86_XSAVE_YMM_OFF},
#endif
	/*
	 * KVM's paravirtual leaves: the signature "KVMKVMKVM\0\0\0", and of
	 * KVM's features those gmem has: CLOCKSOURCE(0) and CLOCKSOURCE2(3)
	 * (kvmclock through either MSR pair), NOP_IO_DELAY(1) (port I/O
	 * needs no delay), STEAL_TIME(5) (the vCPU thread's run delay, as
	 * KVM's), PV_UNHALT(7) (KVM_HC_KICK_CPU), PV_SEND_IPI(11),
	 * POLL_CONTROL(12) (its MSR, a hint), PV_SCHED_YIELD(13) (the
	 * hypercall, which returns 0) and CLOCKSOURCE_STABLE_BIT(24)
	 * (PVCLOCK_TSC_STABLE_BIT is set when the clock is stable).  No async
	 * PF, PV EOI or PV TLB flush.
	 */
	{.function = 0x40000000,
	 .eax = 0x40000001,
	 .ebx = 0x4b4d564b,
	 .ecx = 0x564b4d56,
	 .edx = 0x0000004d},
	{.function = 0x40000001,
	 .eax = (1u << 0) | (1u << 1) | (1u << 3) | (1u << 5) | (1u << 7) |
		(1u << 11) | (1u << 12) | (1u << 13) | (1u << 24)},
	{.function = 0x80000000, .eax = 0x80000008},
	/* ECX: LAHF(0) ABM/LZCNT(5); EDX: SYSCALL(11) NX(20) 1G(26)
	 * RDTSCP(27) LM(29) */
	{.function = 0x80000001,
	 .ecx = (1u << 0) | (1u << 5),
	 .edx = (1u << 11) | (1u << 20) | (1u << 26) | (1u << 27) | (1u << 29)},
	{.function = 0x80000008, .eax = 0x3030},
};

uint64_t x86_get_rflags(struct x86_cpu *c)
{
	return x86_flags(c);
}

static const struct kvm_cpuid_entry2 *cpuid_find(const struct x86_cpu *c,
						 uint32_t leaf, uint32_t sub);

/* KVM's cpuid_query_maxphyaddr(): 0x80000008 EAX[7:0], else 36. */
static unsigned table_maxphyaddr(const struct x86_cpu *c)
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(c, 0x80000000, 0);

	if (!e || e->eax < 0x80000008 || !(e = cpuid_find(c, 0x80000008, 0)))
		return 36;
	return e->eax & 0xff;
}

/* KVM's cpuid_entry2_find(): the first entry of @fn that @idx matches. */
static struct kvm_cpuid_entry2 *
entry_find(struct kvm_cpuid_entry2 *e, unsigned n, uint32_t fn, uint32_t idx)
{
	for (unsigned k = 0; k < n; k++)
		if (e[k].function == fn &&
		    (!(e[k].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) ||
		     e[k].index == idx))
			return &e[k];
	return NULL;
}

/*
 * KVM_CPUID_FEATURES: the leaf after the first 0x40000x00 leaf with KVM's
 * signature (whatever that leaf's EAX says, as in KVM).
 */
static struct kvm_cpuid_entry2 *kvm_features(struct kvm_cpuid_entry2 *e,
					     unsigned n)
{
	for (uint32_t base = 0x40000000; base < 0x50000000; base += 0x100) {
		const struct kvm_cpuid_entry2 *s = entry_find(e, n, base, 0);

		if (s && s->ebx == 0x4b4d564b && s->ecx == 0x564b4d56 &&
		    s->edx == 0x4d)
			return entry_find(e, n, base + 1, 0);
	}
	return NULL;
}

/* KVM's cpuid_get_supported_xcr0(): leaf 0xD's EDX:EAX, of what we have. */
static uint64_t table_xcr0(struct kvm_cpuid_entry2 *e, unsigned n)
{
	const struct kvm_cpuid_entry2 *d = entry_find(e, n, 0xd, 0);

	if (!d)
		return 0;
	return (d->eax | (uint64_t)d->edx << 32) & X86_XCR0_SUPPORTED;
}

void x86_cpuid_runtime(const struct x86_cpu *c, struct kvm_cpuid_entry2 *e,
		       unsigned n)
{
	struct kvm_cpuid_entry2 *b = entry_find(e, n, 1, 0);

	if (b) {
		b->ecx &= ~(1u << 27);
		if (c->cr4 & X86_CR4_OSXSAVE)
			b->ecx |= 1u << 27;
		/* Without the quirk, MONITOR follows MISC_ENABLE.MWAIT. */
		if (!x86_quirk(c, KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT)) {
			b->ecx &= ~(1u << 3);
			if (c->misc_enable & X86_MISC_ENABLE_MWAIT)
				b->ecx |= 1u << 3;
		}
	}
	/* Both formats have the same size with the components the model has. */
	if ((b = entry_find(e, n, 0xd, 0)))
		b->ebx = x86_xsave_size(c->xcr0);
	if ((b = entry_find(e, n, 0xd, 1)) &&
	    (b->eax & (X86_XSAVE_XSAVEC | X86_XSAVE_XSAVES)))
		b->ebx = x86_xsave_size(c->xcr0);
	/* A guest whose HLT does not exit has no use for PV unhalt. */
	if (c->hlt_in_guest && (b = kvm_features(e, n)))
		b->eax &= ~(1u << X86_KVM_FEATURE_PV_UNHALT);
}

bool x86_pv_has(const struct x86_cpu *c, unsigned int feature)
{
	const struct kvm_cpuid_entry2 *f;

	if (!c->pv_enforce)
		return true;
	f = kvm_features((struct kvm_cpuid_entry2 *)c->cpuid, c->ncpuid);
	return f && (f->eax & (1u << feature));
}

/*
 * __kvm_set_xcr(): XCR0 only, x87 always, AVX only with SSE, MPX's two
 * and AVX-512's three components together, AMX's two together, nothing
 * beyond what the guest's leaf 0xD offers (x87 is always allowed).
 */
int x86_set_xcr(struct x86_cpu *c, uint32_t idx, uint64_t v)
{
	const uint64_t mpx = 3ull << 3, avx512 = 7ull << 5, amx = 3ull << 17;

	if (idx != 0 || !(v & X86_XFEATURE_FP))
		return -EINVAL;
	if ((v & X86_XFEATURE_YMM) && !(v & X86_XFEATURE_SSE))
		return -EINVAL;
	if (v & ~(c->guest_xcr0 | X86_XFEATURE_FP))
		return -EINVAL;
	if ((v & mpx) && (v & mpx) != mpx)
		return -EINVAL;
	if ((v & avx512) && (!(v & X86_XFEATURE_YMM) || (v & avx512) != avx512))
		return -EINVAL;
	if ((v & amx) && (v & amx) != amx)
		return -EINVAL;
	c->xcr0 = v;
	/* Leaf 0xD's sizes follow XCR0, as kvm_set_xcr() updates them. */
	x86_cpuid_runtime(c, c->cpuid, c->ncpuid);
	return 0;
}

/*
 * The CR4 bits a CPUID table allows (KVM's __cr4_reserved_bits()): the
 * always-there ones, and each feature's bit only where CPUID has it.
 */
uint64_t x86_cr4_allowed(const struct kvm_cpuid_entry2 *t, unsigned n)
{
	static const struct {
		uint32_t fn;
		uint8_t reg, bit;
		uint64_t cr4;
	} feat[] = {
		{7, 2, 2, 1ULL << 11},	/* UMIP */
		{7, 2, 16, 1ULL << 12}, /* LA57 */
		{1, 2, 5, 1ULL << 13},	/* VMXE */
		{1, 2, 6, 1ULL << 14},	/* SMXE */
		{7, 1, 0, 1ULL << 16},	/* FSGSBASE */
		{1, 2, 17, 1ULL << 17}, /* PCIDE */
		{1, 2, 26, 1ULL << 18}, /* OSXSAVE */
		{7, 1, 7, 1ULL << 20},	/* SMEP */
		{7, 1, 20, 1ULL << 21}, /* SMAP */
		{7, 2, 3, 1ULL << 22},	/* PKE */
	};
	/* VME PVI TSD DE PSE PAE MCE PGE PCE OSFXSR OSXMMEXCPT */
	uint64_t ok = 0x7ff;

	for (unsigned f = 0; f < ARRAY_SIZE(feat); f++) {
		for (unsigned k = 0; k < n; k++) {
			const uint32_t r[4] = {t[k].eax, t[k].ebx, t[k].ecx,
					       t[k].edx};

			if (t[k].function != feat[f].fn ||
			    ((t[k].flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) &&
			     t[k].index))
				continue;
			if (r[feat[f].reg] >> feat[f].bit & 1)
				ok |= feat[f].cr4;
			break;
		}
	}
	return ok;
}

int x86_set_cpuid(struct x86_cpu *c, const struct kvm_cpuid_entry2 *e,
		  unsigned n)
{
	uint32_t o[4];

	if (n > X86_MAX_CPUID)
		return -E2BIG;
	memcpy(c->cpuid, e, n * sizeof(*e));
	c->ncpuid = n;
	c->guest_xcr0 = table_xcr0(c->cpuid, n);
	x86_cpuid_runtime(c, c->cpuid, n);
	x86_cpuid(c, 7, 0, o);
	c->x87_ptr_exc_only = o[1] >> 6 & 1;
	c->x87_zero_sel = o[1] >> 13 & 1;
	/* The guest's physical-address width is the table's, unless XO. */
	if (!c->xo_bit) {
		c->maxphyaddr = table_maxphyaddr(c);
		x86_paging_update(c);
		x86_cpu_flush(c);
	}
	return 0;
}

void x86_set_maxphyaddr(struct x86_cpu *c, unsigned m, bool xo)
{
	c->maxphyaddr = m;
	c->xo_bit = xo ? 1ull << m : 0;
	x86_paging_update(c);
	x86_cpu_flush(c);
}

/*
 * The table, then, once the XO alias is on, what the model enforces
 * regardless of KVM_SET_CPUID2: MAXPHYADDR in 0x80000008 and the gmem
 * hypervisor leaves (DESIGN 3.5).  Without it the table alone answers, as
 * in KVM.
 */
static const struct kvm_cpuid_entry2 *cpuid_find(const struct x86_cpu *c,
						 uint32_t leaf, uint32_t sub)
{
	for (unsigned k = 0; k < c->ncpuid; k++) {
		const struct kvm_cpuid_entry2 *e = &c->cpuid[k];

		if (e->function != leaf)
			continue;
		if ((e->flags & KVM_CPUID_FLAG_SIGNIFCANT_INDEX) &&
		    e->index != sub)
			continue;
		return e;
	}
	return NULL;
}

/*
 * A leaf the table lacks, as KVM's get_out_of_range_cpuid_entry(): on an
 * Intel guest a leaf above the maximum of its class (basic, 0x4xxxxx00,
 * extended, 0xc0000000), or of a class the table lacks, reads as the
 * highest basic leaf, as Intel processors do; an AMD guest reads zeros.
 */
static const struct kvm_cpuid_entry2 *
cpuid_out_of_range(const struct x86_cpu *c, uint32_t leaf, uint32_t sub)
{
	static const char *const amd[] = {"AuthenticAMD", "AMDisbetter!",
					  "HygonGenuine"};
	const struct kvm_cpuid_entry2 *basic = cpuid_find(c, 0, 0);
	const struct kvm_cpuid_entry2 *class;
	uint32_t base, vendor[3];

	if (!basic)
		return NULL;
	/* The vendor string is EBX, EDX, ECX. */
	vendor[0] = basic->ebx;
	vendor[1] = basic->edx;
	vendor[2] = basic->ecx;
	for (unsigned k = 0; k < 3; k++)
		if (!memcmp(vendor, amd[k], 12))
			return NULL;
	if (leaf >= 0x40000000 && leaf <= 0x4fffffff)
		base = leaf & 0xffffff00;
	else if (leaf >= 0xc0000000)
		base = 0xc0000000;
	else
		base = leaf & 0x80000000;
	class = cpuid_find(c, base, 0);
	if (class && leaf <= class->eax)
		return NULL;
	return cpuid_find(c, basic->eax, sub);
}

void x86_cpuid(const struct x86_cpu *c, uint32_t leaf, uint32_t sub,
	       uint32_t out[4])
{
	const struct kvm_cpuid_entry2 *e = cpuid_find(c, leaf, sub);

	if (!e)
		e = cpuid_out_of_range(c, leaf, sub);
	out[0] = e ? e->eax : 0;
	out[1] = e ? e->ebx : 0;
	out[2] = e ? e->ecx : 0;
	out[3] = e ? e->edx : 0;
	if (!c->xo_bit)
		return;
	if (leaf == 0x80000008)
		out[0] = (out[0] & ~0xffu) | c->maxphyaddr;
	if (leaf == 0x40000000) {
		out[0] = 0x40000001;
		out[1] = out[2] = out[3] = 0x6d656d67; /* "gmem" */
	}
	if (leaf == 0x40000001) {
		out[0] = 1;
		out[1] = out[2] = out[3] = 0;
	}
}

/* ---- State API ------------------------------------------------------ */

int x86_cpu_init(struct x86_cpu *c, const struct x86_bus *bus, void *ctx)
{
	memset(c, 0, sizeof(*c));
	c->bus = bus;
	c->bus_ctx = ctx;
	if (x86_decoder_init(c))
		return -ENOMEM;
	x86_tlb_flush(c);
	/*
	 * A flat 64-bit supervisor state: the model runs long mode only, so
	 * the VMM must give page tables (CR3) and descriptor tables anyway.
	 */
	for (unsigned s = 0; s < X86_NSEG; s++)
		load_flat(&c->seg[s], 0, 0, s == X86_CS);
	c->tr.type = 0xb;
	c->tr.present = 1;
	c->tr.limit = 0xffff;
	c->ldt.unusable = 1;
	c->gdt.limit = 0xffff;
	c->idt.limit = 0xffff;
	c->cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_ET | X86_CR0_NE | X86_CR0_WP;
	c->cr4 = X86_CR4_PAE;
	c->efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE | X86_EFER_SCE;
	c->rflags = 2;
	c->apic_base = 0xfee00000 | (1u << 11) | (1u << 8);
	c->maxphyaddr = 48;
	x86_paging_update(c);
	/* Base 0 at ns 0: at 1 GHz the TSC reads host monotonic ns. */
	c->tsc_khz = X86_TSC_KHZ;
	/* What KVM's vCPU reset (fpstate_init) leaves: XMM zero. */
	c->mxcsr = X86_MXCSR_DEFAULT;
	c->xcr0 = X86_XFEATURE_FP; /* kvm_vcpu_reset(): x87 only */
	c->x87.fcw = X86_FCW_DEFAULT;
	c->dr6 = X86_DR6_INIT;
	c->dr7 = X86_DR7_INIT;
	c->ucode_rev = X86_UCODE_REV_DEFAULT;
	c->kvm_poll_control = 1; /* kvm_arch_vcpu_postcreate() */
	/* kvm_vcpu_reset(): no BTS, no PEBS (and no MWAIT enable). */
	c->misc_enable =
		X86_MISC_ENABLE_PEBS_UNAVAIL | X86_MISC_ENABLE_BTS_UNAVAIL;
	x86_set_cpuid(c, default_cpuid,
		      sizeof(default_cpuid) / sizeof(default_cpuid[0]));
	return 0;
}

void x86_cpu_destroy(struct x86_cpu *c)
{
	x86_decoder_fini(c);
}

void x86_cpu_flush(struct x86_cpu *c)
{
	x86_tlb_flush(c);
	x86_dc_flush(c);
}

void x86_cpu_abandon(struct x86_cpu *c)
{
	x86_cpu_flush(c);
	x86_dc_free_dead(c);
	c->stop = NULL;
}

void x86_cpu_invalidate_gpa(struct x86_cpu *c, uint64_t start, uint64_t end)
{
	uint64_t s = start & ~c->xo_bit & ~0xfffull;
	uint64_t e = end & ~c->xo_bit;

	c->gen++;
	for (unsigned k = 0; k < X86_TLB_SIZE; k++) {
		uint64_t g = c->tlb[k].gpa & ~c->xo_bit;

		if (c->tlb[k].tag != ~0ull && g >= s && g < e)
			c->tlb[k].tag = ~0ull;
	}
	for (unsigned b = 0; b < X86_DC_BUCKETS; b++) {
		struct x86_dpage *dp = c->dc[b], *nx;

		for (; dp; dp = nx) {
			nx = dp->next;
			if (dp->gpa >= s && dp->gpa < e)
				x86_dc_drop_page(c, dp);
		}
	}
}

void x86_get_regs(const struct x86_cpu *c, struct kvm_regs *r)
{
	struct x86_cpu *m = (struct x86_cpu *)c; /* flags materialize */

	r->rax = c->gpr[X86_RAX];
	r->rbx = c->gpr[X86_RBX];
	r->rcx = c->gpr[X86_RCX];
	r->rdx = c->gpr[X86_RDX];
	r->rsi = c->gpr[X86_RSI];
	r->rdi = c->gpr[X86_RDI];
	r->rsp = c->gpr[X86_RSP];
	r->rbp = c->gpr[X86_RBP];
	r->r8 = c->gpr[X86_R8];
	r->r9 = c->gpr[X86_R9];
	r->r10 = c->gpr[X86_R10];
	r->r11 = c->gpr[X86_R11];
	r->r12 = c->gpr[X86_R12];
	r->r13 = c->gpr[X86_R13];
	r->r14 = c->gpr[X86_R14];
	r->r15 = c->gpr[X86_R15];
	r->rip = c->rip;
	r->rflags = x86_flags(m);
}

void x86_set_regs(struct x86_cpu *c, const struct kvm_regs *r)
{
	c->gpr[X86_RAX] = r->rax;
	c->gpr[X86_RBX] = r->rbx;
	c->gpr[X86_RCX] = r->rcx;
	c->gpr[X86_RDX] = r->rdx;
	c->gpr[X86_RSI] = r->rsi;
	c->gpr[X86_RDI] = r->rdi;
	c->gpr[X86_RSP] = r->rsp;
	c->gpr[X86_RBP] = r->rbp;
	c->gpr[X86_R8] = r->r8;
	c->gpr[X86_R9] = r->r9;
	c->gpr[X86_R10] = r->r10;
	c->gpr[X86_R11] = r->r11;
	c->gpr[X86_R12] = r->r12;
	c->gpr[X86_R13] = r->r13;
	c->gpr[X86_R14] = r->r14;
	c->gpr[X86_R15] = r->r15;
	c->rip = r->rip;
	x86_set_flags(c, r->rflags);
}

void x86_get_sregs(const struct x86_cpu *c, struct kvm_sregs *s)
{
	memset(s, 0, sizeof(*s));
	s->es = c->seg[X86_ES];
	s->cs = c->seg[X86_CS];
	s->ss = c->seg[X86_SS];
	s->ds = c->seg[X86_DS];
	s->fs = c->seg[X86_FS];
	s->gs = c->seg[X86_GS];
	s->tr = c->tr;
	s->ldt = c->ldt;
	s->gdt = c->gdt;
	s->idt = c->idt;
	s->cr0 = c->cr0;
	s->cr2 = c->cr2;
	s->cr3 = c->cr3;
	s->cr4 = c->cr4;
	s->cr8 = c->cr8;
	s->efer = c->efer;
	s->apic_base = c->apic_base;
}

/*
 * Accepts any state, as KVM does; x86_run() refuses to run outside
 * 64-bit mode (INTERNAL stop).  CPL is CS.DPL.
 */
int x86_set_sregs(struct x86_cpu *c, const struct kvm_sregs *s)
{
	c->seg[X86_ES] = s->es;
	c->seg[X86_CS] = s->cs;
	c->seg[X86_SS] = s->ss;
	c->seg[X86_DS] = s->ds;
	c->seg[X86_FS] = s->fs;
	c->seg[X86_GS] = s->gs;
	c->tr = s->tr;
	c->ldt = s->ldt;
	c->gdt = s->gdt;
	c->idt = s->idt;
	c->cr0 = s->cr0;
	c->cr2 = s->cr2;
	c->cr3 = s->cr3;
	c->cr8 = s->cr8;
	c->efer = s->efer;
	c->apic_base = s->apic_base;
	set_cr4(c, s->cr4);
	x86_set_cpl(c, s->cs.dpl & 3);
	x86_paging_update(c);
	return 0;
}

/* KVM_GET_SUPPORTED_CPUID: the default table is what the model supports. */
const struct kvm_cpuid_entry2 *x86_supported_cpuid(unsigned *n)
{
	*n = sizeof(default_cpuid) / sizeof(default_cpuid[0]);
	return default_cpuid;
}
