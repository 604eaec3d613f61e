// SPDX-License-Identifier: MIT
/*
 * Exceptions, interrupts and NMIs through the 64-bit IDT: KVM's order of
 * double and triple faults, the stack switch (IST or RSP0), and what the
 * vCPU injects.
 */
#include "x86/internal.h"

/*
 * Read @len (<= 8) bytes of a system structure (supervisor access).
 * MMIO is refused: the IDT, GDT and TSS are read in the middle of an
 * event, where there is no instruction to stop and resume.
 */
int x86_sys_read(struct x86_cpu *c, uint64_t lin, unsigned len, uint64_t *v)
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
int x86_gdt_read(struct x86_cpu *c, uint16_t sel, uint32_t ext, uint64_t *d)
{
	/*
	 * A TI selector (LDT) is not supported: long-mode guests do not use it.
	 */
	if ((sel & 4) || (uint32_t)(sel | 7) > c->gdt.limit)
		return x86_raise(c, X86_GP, true, (sel & ~3u) | ext);
	return x86_sys_read(c, c->gdt.base + (sel & ~7u), 8, d);
}

/* SDM Table 6-4: #DE, #TS, #NP, #SS and #GP; #PF is its own class. */
static bool contributory(unsigned v)
{
	return v == X86_DE || (v >= X86_TS && v <= X86_GP);
}

static int deliver_one(struct x86_cpu *c)
{
	/*
	 * The error code of a fault on the IDT entry itself: the vector's index
	 * with IDT set (bit 1), and EXT set unless INT n caused the event.
	 */
	unsigned vec = c->pend.vector, ext = !c->pend.soft;
	uint32_t ierr = vec * 8 + 2 + ext;
	uint64_t lo, hi, desc, rsp, off, ret, fl;
	unsigned type, dpl, ist, ncpl, nq;
	uint16_t sel;
	struct x86_mref m[6];
	uint64_t frame[6];
	int r;

	/*
	 * A 64-bit IDT entry is 16 bytes; the whole of it must be in the limit.
	 */
	if (vec * 16 + 15 > c->idt.limit)
		return x86_raise(c, X86_GP, true, ierr);
	r = x86_sys_read(c, c->idt.base + vec * 16, 8, &lo);
	if (!r)
		r = x86_sys_read(c, c->idt.base + vec * 16 + 8, 8, &hi);
	if (r)
		return r;
	type = (lo >> 40) & 0xf;
	dpl = (lo >> 45) & 3;
	ist = (lo >> 32) & 7;
	sel = (lo >> 16) & 0xffff;
	off = (lo & 0xffff) | ((lo >> 48) & 0xffff) << 16 | hi << 32;
	/*
	 * Only 64-bit interrupt (0xe) and trap (0xf) gates exist in long mode.
	 */
	if (type != 0xe && type != 0xf)
		return x86_raise(c, X86_GP, true, ierr);
	/*
	 * SDM: INT n, INT3 and INTO check the gate's DPL against CPL;
	 * exceptions and external interrupts do not.
	 */
	if (c->pend.soft && c->cpl > dpl)
		return x86_raise(c, X86_GP, true, ierr);
	if (!(lo >> 47 & 1))
		return x86_raise(c, X86_NP, true, ierr);
	/* A null code selector in the gate: #GP with the EXT bit only. */
	if ((sel & ~3u) == 0)
		return x86_raise(c, X86_GP, true, ext);
	r = x86_gdt_read(c, sel, ext, &desc);
	if (r)
		return r;
	/* A present 64-bit code segment at or below the current level. */
	if (!(desc >> 44 & 1) || !(desc >> 43 & 1) || !(desc >> 53 & 1) ||
	    ((desc >> 45) & 3) > c->cpl)
		return x86_raise(c, X86_GP, true, (sel & ~3u) | ext);
	if (!(desc >> 47 & 1))
		return x86_raise(c, X86_NP, true, (sel & ~3u) | ext);
	/*
	 * A conforming segment runs at the current CPL; otherwise CPL becomes
	 * the segment's DPL.
	 */
	ncpl = (desc >> 42 & 1) ? c->cpl : (desc >> 45) & 3;

	/*
	 * SDM 6.14.4/6.14.5: a non-zero IST always switches stacks, else RSP0-2
	 * of the TSS is loaded only on a privilege change.
	 */
	rsp = c->gpr[X86_RSP];
	if (ist || ncpl < c->cpl) {
		uint64_t toff = ist ? 0x24 + (ist - 1) * 8 : 4 + ncpl * 8;

		if (toff + 7 > c->tr.limit)
			return x86_raise(c, X86_TS, true,
					 (c->tr.selector & ~3u) | ext);
		r = x86_sys_read(c, c->tr.base + toff, 8, &rsp);
		if (r)
			return r;
	}
	/*
	 * The target is checked after the stack switch is known, before any
	 * push, so that a #GP here leaves the old stack untouched.
	 */
	if (!x86_canonical(off))
		return x86_raise(c, X86_GP, true, ext);
	/* 64-bit mode aligns the new stack on 16 bytes before pushing. */
	rsp &= ~15ull;

	/*
	 * The frame, lowest address first.  INT n returns after itself;
	 * faults and interrupts return to the instruction.
	 */
	ret = c->rip + (c->pend.soft ? c->pend.soft_len : 0);
	fl = x86_flags(c);
	nq = 0;
	if (c->pend.has_err)
		frame[nq++] = c->pend.err;
	frame[nq++] = ret;
	frame[nq++] = c->seg[X86_CS].selector;
	frame[nq++] = fl;
	/* 64-bit mode pushes SS:RSP even without a privilege change. */
	frame[nq++] = c->gpr[X86_RSP];
	frame[nq++] = c->seg[X86_SS].selector;
	unsigned saved = c->cpl;

	/* Frame writes are made at the handler's privilege. */
	x86_set_cpl(c, ncpl);
	/*
	 * Translate the whole frame before writing a byte of it: a fault on
	 * the stack must leave memory as it was, and becomes the second event
	 * x86_deliver() combines with the first.
	 */
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

	/*
	 * SDM 6.14.4: the new SS is a null selector whose RPL is the new CPL.
	 */
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
	/*
	 * The handler starts with TF, NT, RF and VM clear; an interrupt gate
	 * also clears IF, a trap gate leaves it.
	 */
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

		/*
		 * CR2 takes the fault address as the #PF is delivered, not when
		 * it was raised.
		 */
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
		/*
		 * A fault while delivering #DF shuts the vCPU down
		 * (KVM_EXIT_SHUTDOWN).
		 */
		if (first == X86_DF_VEC && !soft) {
			c->pend.valid = false;
			c->stop->reason = X86_STOP_SHUTDOWN;
			return X86_STOPPED;
		}
		/*
		 * A software interrupt is no exception class: what faults while
		 * delivering it is delivered on its own.
		 */
		df = !soft && ((contributory(first) && contributory(second)) ||
			       (first == X86_PF_VEC && (second == X86_PF_VEC ||
							contributory(second))));
		c->pend.soft = false;
		if (df) {
			c->pend.vector = X86_DF_VEC;
			c->pend.has_err = true;
			/* #DF always has an error code of 0. */
			c->pend.err = 0;
		} else {
			/*
			 * Benign combinations: the second event replaces the
			 * first.
			 */
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
	/* An injected #PF takes CR2 as it stands; userspace set it first. */
	c->pend.cr2 = c->cr2;
}

void x86_inject_nmi(struct x86_cpu *c)
{
	x86_inject(c, 2, false, 0);
	/* SDM: an NMI blocks further NMIs until the next IRET. */
	c->nmi_masked = true;
}
