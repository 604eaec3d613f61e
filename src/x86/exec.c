// SPDX-License-Identifier: MIT
/*
 * The run loop: fetch through the soft TLB and the decode cache, follow
 * the links between decoded records, run each handler, and turn what a
 * handler returns (a stop, an exception, a pending-state change) into
 * delivery or a stop record for the vCPU.
 */
#include "x86/internal.h"

/*
 * Both words are written by other threads (gmem_vcpu_kick(), a TLB
 * shootdown, a VMM's signal handler setting immediate_exit) while this one
 * runs: read them atomically, or the poll is a data race.  Relaxed is
 * enough; whoever acts on a stop synchronises through its own handshake.
 */
static inline bool kicked(const struct x86_cpu *c)
{
	return (c->kick && __atomic_load_n(c->kick, __ATOMIC_RELAXED)) ||
	       (c->immediate_exit &&
		__atomic_load_n(c->immediate_exit, __ATOMIC_RELAXED));
}

/* Look up the record at RIP: TLB hit and decode-cache index, or decode. */
static inline int lookup(struct x86_cpu *c, const struct x86_insn **ip)
{
	uint64_t rip = c->rip;
	struct x86_tlbe *e = &c->tlb[(rip >> 12) % X86_TLB_SIZE];
	unsigned k;

	if (likely(e->tag == rip >> 12 &&
		   ((e->allow >> c->ushift) & X86_ACC_FETCH) && e->code &&
		   (k = e->code->idx[rip & 0xfff]))) {
		*ip = dp_rec(e->code, k - 1);
		return X86_OK;
	}
	return x86_fetch(c, ip);
}

/* An exception in a state VMX cannot enter: KVM's emulation failure. */
static bool undeliverable(struct x86_cpu *c)
{
	if (!x86_vmx_invalid_state(c))
		return false;
	x86_stop_internal(c, "exception with invalid guest state");
	return true;
}

/*
 * @poll: x86_run(); without it (x86_finish_mmio()) no stop request is
 * looked at and no queued event is delivered before the instruction.
 * Cache-line aligned: the compute loop's speed moved by 10% with where
 * the linker happened to put it.
 */
static __attribute__((aligned(64))) int run(struct x86_cpu *c, uint64_t budget,
					    struct x86_stop *stop, bool poll)
{
	/* A record that links nowhere, in place of "no previous one". */
	static struct x86_insn none = {.link_gen = ~0ull, .nolink = 1};
	const struct x86_insn *ins = &none;
	uint64_t n = 0, at = 0;
	bool dbg;
	int r;

	memset(stop, 0, sizeof(*stop));
	c->stop = stop;
	if (!(c->efer & X86_EFER_LMA) || !(c->cr0 & X86_CR0_PG) ||
	    !c->seg[X86_CS].l) {
		x86_stop_internal(c, "not in 64-bit mode");
		goto out;
	}
	if (poll && kicked(c)) {
		stop->reason = X86_STOP_KICK;
		goto out;
	}
	c->in.valid = false;
	/* The VMM's #DB trap for an instruction that retired at a stop. */
	if (unlikely(c->dbg_trap) && poll && x86_dbg_trap(c))
		goto out;
	if (poll && c->pend.valid) {
		/* vmx_vcpu_pre_run(): an exception it cannot deliver. */
		if (unlikely(x86_exception_queued(c)) && undeliverable(c))
			goto out;
		r = x86_deliver(c);
		if (r)
			goto out;
	}
	dbg = x86_dbg_path(c);
	while (n < budget) {
		struct x86_insn *prev = (struct x86_insn *)ins;
		uint64_t rip = c->rip;

		/* Every 1024 instructions or events, however they ended. */
		if (unlikely((n & 1023) == 1023) && poll && kicked(c)) {
			stop->reason = X86_STOP_KICK;
			goto out;
		}

		/*
		 * Follow the previous instruction's link when it is still
		 * valid, else look up (and link for the next time).
		 */
		if (prev->link_gen == c->gen && rip == at + prev->len &&
		    prev->next) {
			ins = prev->next;
		} else if (prev->link_gen == c->gen && rip == prev->tgt_rip &&
			   prev->tgt) {
			ins = prev->tgt;
		} else {
			r = lookup(c, &ins);
			if (r)
				goto fault;
			if (!prev->nolink && !ins->nolink) {
				if (prev->link_gen != c->gen) {
					prev->link_gen = c->gen;
					prev->next = prev->tgt = NULL;
				}
				if (rip == at + prev->len)
					prev->next = (struct x86_insn *)ins;
				else {
					prev->tgt = (struct x86_insn *)ins;
					prev->tgt_rip = rip;
				}
			}
		}
		at = rip;
		/*
		 * Breakpoints, TF and RF take the debug path (debug.c), which
		 * is looked at again where it may have changed: after each
		 * instruction on it, after one that asks (x86_dbg_recheck()),
		 * after an exception.
		 */
		if (likely(!dbg)) {
			r = ins->fn(c, ins);
		} else {
			r = x86_dbg_exec(c, ins);
			dbg = x86_dbg_path(c);
		}
		if (likely(r == X86_OK)) {
			n++;
			if (unlikely(c->pending)) {
				uint32_t p = c->pending;

				/* I/O answers are used up; dead pages go. */
				c->pending = 0;
				c->mmio.rd = c->mmio.wr = 0;
				c->sio.state = 0;
				if (c->dead)
					x86_dc_free_dead(c);
				ins = &none;
				dbg = x86_dbg_path(c);
				/*
				 * After STI, one instruction more under its
				 * shadow; after that one, a waiting interrupt
				 * may come in.
				 */
				if (p & X86_PEND_STI) {
					c->pending = X86_PEND_SHADOW |
						     (p & X86_PEND_EVENT);
					p &= ~(uint32_t)X86_PEND_EVENT;
				} else if (p & X86_PEND_SHADOW) {
					c->int_shadow = false;
					if (c->irq_window || c->nmi_window)
						p |= X86_PEND_EVENT;
				}
				/* The #DB trap it owes, before any event. */
				if (p & X86_PEND_DEBUG) {
					r = x86_dbg_trap(c);
					if (r == X86_STOPPED)
						goto out;
					if (r == X86_EXC)
						goto exception;
				}
				if ((p & X86_PEND_EVENT) && poll) {
					stop->reason = X86_STOP_KICK;
					goto out;
				}
			}
			continue;
		}
	fault:
		ins = &none;
		if (c->dead)
			x86_dc_free_dead(c);
		if (r == X86_STOPPED) {
			/*
			 * HLT, OUT (an OUTS iteration), VMCALL and a WRMSR
			 * with paravirtual work retired, with what an MMIO
			 * read answered for them (OUTS from MMIO); the others
			 * did not.
			 */
			if (x86_stop_retired(stop)) {
				n++;
				/* A shadowed instruction retired: it is over.
				 */
				if (c->pending & X86_PEND_SHADOW)
					c->int_shadow = false;
				c->pending = 0;
				c->mmio.rd = c->mmio.wr = 0;
				c->sio.state = 0;
			}
			goto out;
		}
		n++;
		/*
		 * A fault pushes RF set, so that the handler's IRET does not
		 * hit an instruction breakpoint again; #DB (a code breakpoint
		 * or DR7.GD's) leaves it, as KVM's inject_pending_event().
		 */
		if (c->exc.vector != X86_DB && c->exc.vector != X86_DF_VEC &&
		    c->exc.vector != X86_MC)
			c->rflags |= X86_RF;
	exception:
		/*
		 * An exception ends an STI shadow, and the I/O answers the
		 * faulting instruction had: a REP INS that faults halfway
		 * must not hand its batch to the handler's next INS.
		 */
		c->int_shadow = false;
		c->mmio.rd = c->mmio.wr = 0;
		c->sio.state = 0;
		c->pending &= ~(uint32_t)(X86_PEND_STI | X86_PEND_SHADOW);
		c->pend.valid = true;
		c->pend.vector = c->exc.vector;
		c->pend.has_err = c->exc.has_err;
		c->pend.err = c->exc.err;
		c->pend.cr2 = c->exc.cr2;
		c->pend.soft = false;
		/*
		 * As KVM after an intercepted exception: queued, and the run
		 * ends first for a kick (KVM_GET_VCPU_EVENTS sees it pending)
		 * or, in a state VMX cannot enter, in an emulation failure.
		 */
		c->pend.queued = true;
		if (unlikely(undeliverable(c)))
			goto out;
		if (poll && kicked(c)) {
			stop->reason = X86_STOP_KICK;
			goto out;
		}
		r = x86_deliver(c);
		if (r)
			goto out;
		dbg = x86_dbg_path(c);
		/* The VMM single-steps into the handler: it stops there. */
		if (unlikely(c->gdbg & KVM_GUESTDBG_SINGLESTEP)) {
			x86_dbg_step_stop(c);
			goto out;
		}
	}
	stop->reason = X86_STOP_BUDGET;
out:
	if (c->dead)
		x86_dc_free_dead(c);
	stop->executed = n;
	c->icount += n;
	return stop->reason;
}

int x86_run(struct x86_cpu *c, uint64_t budget, struct x86_stop *stop)
{
	return run(c, budget, stop, true);
}

bool x86_mmio_pending(const struct x86_cpu *c)
{
	return c->mmio.rd == 2 || c->mmio.wr || c->sio.state;
}

int x86_finish_mmio(struct x86_cpu *c, struct x86_stop *stop)
{
	return run(c, 1, stop, false);
}
