/* SPDX-License-Identifier: MIT */
/*
 * Debug registers and breakpoints: the guest's own (DR0-DR3, DR6, DR7,
 * MOV DRn, RFLAGS.TF and RF, ICEBP) and the VMM's debugger
 * (KVM_SET_GUEST_DEBUG), as KVM on VMX gives them.
 *
 * The effective breakpoints are the VMM's with KVM_GUESTDBG_USE_HW_BP,
 * else the guest's (KVM's eff_db and guest_debug_dr7).  A #DB belongs to
 * the VMM when it single-steps or uses hardware breakpoints (VMX then
 * intercepts #DB): KVM_EXIT_DEBUG, the guest untouched.  Otherwise it is
 * the guest's, with DR6 updated as KVM delivers an exception payload.
 *
 * Nothing here costs the run loop anything while cpu->dbg is 0 and
 * RFLAGS has neither TF nor RF: then instructions run through their
 * handlers directly.  Otherwise each goes through x86_dbg_exec().  Data
 * breakpoints keep the pages they watch out of the soft TLB's fast path
 * (their read and write bits wait in tlbe.wok, as code pages' write bits
 * do), so that every access to such a page reaches xlate_piece(), which
 * reports it here.
 */
#include <errno.h>

#include <Zydis/Zydis.h>

#include "x86/internal.h"

#define DR6_BD (1u << 13)
#define DR6_BS (1u << 14)
#define DR6_RTM (1ull << 16)
#define DR6_BUS_LOCK (1ull << 11)
#define DR6_ACTIVE_LOW 0xffff0ff0ull
#define DR6_VOLATILE 0x0001e80full
#define DR6_FIXED_1 (DR6_ACTIVE_LOW & ~DR6_VOLATILE)
#define DR7_GD (1ull << 13)
#define DR7_VOLATILE 0xffff2bffull
#define DR7_FIXED_1 0x400ull

/* cpu->dbg_trap: a trap is due (its DR6 bits may be none: a VMM step). */
#define TRAP_DUE (1u << 31)
/* cpu->dbg beyond the breakpoint masks: the VMM single-steps. */
#define DBG_STEP 0x100u

static bool vmm_bps(const struct x86_cpu *c)
{
	return c->gdbg & KVM_GUESTDBG_USE_HW_BP;
}

static uint64_t eff_dr7(const struct x86_cpu *c)
{
	return vmm_bps(c) ? c->gdb_dr7 : c->dr7;
}

static uint64_t eff_db(const struct x86_cpu *c, unsigned n)
{
	return vmm_bps(c) ? c->gdb_db[n] : c->db[n];
}

/* VMX intercepts #DB: the exception goes to the VMM, not the guest. */
static bool vmm_owns_db(const struct x86_cpu *c)
{
	return c->gdbg & (KVM_GUESTDBG_SINGLESTEP | KVM_GUESTDBG_USE_HW_BP);
}

/* Data breakpoint @n's bytes: LEN 1, 2, 8 or 4, aligned down to it. */
static uint64_t bp_start(const struct x86_cpu *c, unsigned n, unsigned *len)
{
	static const uint8_t lens[4] = {1, 2, 8, 4};

	*len = lens[(eff_dr7(c) >> (18 + 4 * n)) & 3];
	return eff_db(c, n) & ~(uint64_t)(*len - 1);
}

void x86_dbg_update(struct x86_cpu *c)
{
	uint64_t dr7 = eff_dr7(c);
	uint8_t exec = 0, data = 0, had = c->dbg_data;

	for (unsigned n = 0; n < 4; n++) {
		unsigned rw = (dr7 >> (16 + 4 * n)) & 3;

		if (!((dr7 >> (2 * n)) & 3))
			continue;
		/* RW 2 is an I/O breakpoint (CR4.DE): not modelled. */
		if (rw == 0)
			exec |= 1u << n;
		else if (rw != 2)
			data |= 1u << n;
	}
	c->dbg_exec = exec;
	c->dbg_data = data;
	c->dbg = exec | (unsigned)data << 4 |
		 (c->gdbg & KVM_GUESTDBG_SINGLESTEP ? DBG_STEP : 0);
	/* The watched pages leave (or rejoin) the TLB's fast path. */
	if (data || had)
		x86_tlb_flush(c);
}

unsigned x86_dbg_keepout(const struct x86_cpu *c, uint64_t page)
{
	for (unsigned n = 0; n < 4; n++) {
		unsigned len;
		uint64_t a;

		if (!(c->dbg_data & (1u << n)))
			continue;
		a = bp_start(c, n, &len);
		if (a >> 12 == page || (a + len - 1) >> 12 == page)
			return (X86_ACC_READ | X86_ACC_WRITE) |
			       (X86_ACC_READ | X86_ACC_WRITE) << 3;
	}
	return 0;
}

void x86_dbg_access(struct x86_cpu *c, uint64_t lin, unsigned len, unsigned a)
{
	uint64_t dr7 = eff_dr7(c);

	for (unsigned n = 0; n < 4; n++) {
		unsigned blen;
		uint64_t s;

		if (!(c->dbg_data & (1u << n)))
			continue;
		/* RW 1: writes only; RW 3: reads and writes. */
		if (((dr7 >> (16 + 4 * n)) & 3) == 1 && !(a & X86_ACC_WRITE))
			continue;
		s = bp_start(c, n, &blen);
		if (lin < s + blen && s < lin + len)
			c->dbg_hits |= 1u << n;
	}
}

/* KVM_EXIT_DEBUG for @vector at RIP; @dr6 (payload bits) for #DB only. */
static int vmm_stop(struct x86_cpu *c, unsigned vector, uint32_t dr6)
{
	struct x86_stop *s = c->stop;

	s->reason = X86_STOP_DEBUG;
	s->debug.exception = vector;
	s->debug.pc = c->rip + c->seg[X86_CS].base;
	s->debug.dr6 = dr6 | DR6_ACTIVE_LOW;
	s->debug.dr7 = eff_dr7(c);
	return X86_STOPPED;
}

/*
 * The guest's #DB with @payload, as kvm_deliver_exception_payload() puts
 * it in DR6 (B0-B3 replaced, the rest sticky) and inject_pending_event()
 * clears DR7.GD, so that the handler may touch the debug registers.
 */
static void guest_dr6(struct x86_cpu *c, uint32_t payload)
{
	c->dr6 &= ~0xfull;
	c->dr6 |= DR6_ACTIVE_LOW | payload;
	c->dr6 &= ~(1ull << 12);
	c->dr7 &= ~DR7_GD;
}

static int guest_db(struct x86_cpu *c, uint32_t payload)
{
	guest_dr6(c, payload);
	return x86_raise(c, X86_DB, false, 0);
}

int x86_dbg_trap(struct x86_cpu *c)
{
	uint32_t dr6 = c->dbg_trap & ~TRAP_DUE;

	c->dbg_trap = 0;
	if (c->gdbg & KVM_GUESTDBG_SINGLESTEP)
		dr6 |= DR6_BS;
	if (!dr6)
		return X86_OK;
	if (vmm_owns_db(c))
		return vmm_stop(c, X86_DB, dr6);
	return guest_db(c, dr6);
}

int x86_dbg_step_stop(struct x86_cpu *c)
{
	return vmm_stop(c, X86_DB, DR6_BS);
}

int x86_dbg_exec(struct x86_cpu *c, const struct x86_insn *ins)
{
	uint64_t fl = c->rflags;
	uint32_t dr6;
	int r;

	/* Instruction breakpoints fault before it, unless RF says done. */
	if (c->dbg_exec && !(fl & X86_RF)) {
		uint64_t lin = c->rip + c->seg[X86_CS].base;
		uint32_t hit = 0;

		for (unsigned n = 0; n < 4; n++)
			if ((c->dbg_exec & (1u << n)) && eff_db(c, n) == lin)
				hit |= 1u << n;
		if (hit)
			return vmm_owns_db(c) ? vmm_stop(c, X86_DB, hit)
					      : guest_db(c, hit);
	}
	/* RF lasts one instruction; IRET may set it again. */
	c->rflags &= ~(uint64_t)X86_RF;
	c->dbg_hits = 0;
	c->dbg_delivered = false;
	r = ins->fn(c, ins);
	if (r == X86_EXC || (r == X86_STOPPED && !x86_stop_retired(c->stop))) {
		c->rflags |= fl & X86_RF;
		return r;
	}
	/* TF at its start traps after it, unless it delivered an event. */
	dr6 = c->dbg_hits;
	if ((fl & X86_TF) && !c->dbg_delivered)
		dr6 |= DR6_BS;
	if (!dr6 && !(c->gdbg & KVM_GUESTDBG_SINGLESTEP))
		return r;
	if (r == X86_OK) {
		c->dbg_trap = dr6 | TRAP_DUE;
		c->pending |= X86_PEND_DEBUG;
		return r;
	}
	/*
	 * It retired at a stop (OUT, HLT, VMCALL): the VMM's trap waits for
	 * the next run; the guest's is queued now, as KVM queues it when it
	 * skips the emulated instruction, so that nothing else goes in first.
	 */
	if (vmm_owns_db(c)) {
		c->dbg_trap = dr6 | TRAP_DUE;
	} else {
		guest_dr6(c, dr6);
		x86_inject(c, X86_DB, false, 0);
	}
	return r;
}

int x86_set_guest_debug(struct x86_cpu *c, uint32_t control,
			const uint64_t debugreg[8])
{
	if (control & (KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP)) {
		if (x86_exception_queued(c))
			return -EBUSY;
		if (control & KVM_GUESTDBG_INJECT_DB) {
			x86_inject(c, X86_DB, false, 0);
		} else {
			/*
			 * A software exception, with the length of the INT3
			 * that last stopped (VMX's event_exit_inst_len): the
			 * VMM hands its INT3 back to the guest.
			 */
			x86_inject(c, X86_BP, false, 0);
			c->pend.soft = true;
			c->pend.soft_len = c->bp_len;
		}
	}
	c->gdbg = (control & KVM_GUESTDBG_ENABLE) ? control : 0;
	if (vmm_bps(c)) {
		for (unsigned n = 0; n < 4; n++)
			c->gdb_db[n] = debugreg[n];
		c->gdb_dr7 = debugreg[7];
	}
	c->dbg_trap = 0;
	x86_dbg_update(c);
	return 0;
}

int x86_dbg_int3(struct x86_cpu *c, const struct x86_insn *i)
{
	c->bp_len = i->len;
	return vmm_stop(c, X86_BP, 0);
}

/* kvm_dr6_fixed(): RTM and BUS_LOCK read as 1 unless CPUID has them. */
static uint64_t dr6_fixed(const struct x86_cpu *c)
{
	uint64_t fixed = DR6_FIXED_1;
	uint32_t o[4];

	x86_cpuid(c, 7, 0, o);
	if (!(o[1] & (1u << 11)))
		fixed |= DR6_RTM;
	if (!(o[2] & (1u << 24)))
		fixed |= DR6_BUS_LOCK;
	return fixed;
}

/*
 * MOV DRn, r (op 0) / MOV r, DRn (op 1), i->r[] holding the DR number:
 * handle_dr()'s order: #UD for DR4/5 with CR4.DE (and DR8-15), #GP above
 * CPL 0, then DR7.GD's #DB (fault-like, DR6.BD), then kvm_set_dr() or
 * kvm_get_dr(), whose bad DR6/DR7 values #GP.
 */
static int h_movdr(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned dr = i->op == 0 ? i->r[0] : i->r[1];
	unsigned g = i->op == 0 ? i->r[1] : i->r[0];
	uint64_t v;

	if (dr > 7 || ((dr == 4 || dr == 5) && (c->cr4 & X86_CR4_DE)))
		return x86_ud(c);
	if (c->cpl)
		return x86_gp0(c);
	if (eff_dr7(c) & DR7_GD)
		return vmm_owns_db(c) ? vmm_stop(c, X86_DB, DR6_BD)
				      : guest_db(c, DR6_BD);
	if (i->op == 1) {
		if (dr < 4)
			v = c->db[dr];
		else if (dr == 4 || dr == 6)
			v = c->dr6;
		else
			v = c->dr7;
		c->gpr[g] = v;
		c->rip += i->len;
		return X86_OK;
	}
	v = c->gpr[g];
	if (dr < 4) {
		c->db[dr] = v;
	} else if (v >> 32) {
		return x86_gp0(c);
	} else if (dr == 4 || dr == 6) {
		c->dr6 = (v & DR6_VOLATILE) | dr6_fixed(c);
	} else {
		c->dr7 = (v & DR7_VOLATILE) | DR7_FIXED_1;
	}
	x86_dbg_update(c);
	x86_dbg_recheck(c);
	c->rip += i->len;
	return X86_OK;
}

/*
 * ICEBP (F1): a #DB trap after it with no breakpoint bit in DR6, as KVM
 * reflects it; the VMM's when it owns #DB (RIP at the ICEBP).
 */
static int h_icebp(struct x86_cpu *c, const struct x86_insn *i)
{
	if (vmm_owns_db(c))
		return vmm_stop(c, X86_DB, 0);
	c->rip += i->len;
	guest_dr6(c, 0);
	x86_inject(c, X86_DB, false, 0);
	return x86_deliver(c);
}

int x86_bind_debug(struct x86_insn *i, const void *zinsn, const void *zops)
{
	const ZydisDecodedInstruction *z = zinsn;
	const ZydisDecodedOperand *o = zops;

	if (z->mnemonic == ZYDIS_MNEMONIC_INT1) {
		i->fn = h_icebp;
		return 0;
	}
	if (z->mnemonic != ZYDIS_MNEMONIC_MOV ||
	    o[0].type != ZYDIS_OPERAND_TYPE_REGISTER ||
	    o[1].type != ZYDIS_OPERAND_TYPE_REGISTER)
		return -1;
	i->op = ZydisRegisterGetClass(o[1].reg.value) == ZYDIS_REGCLASS_DEBUG;
	i->fn = h_movdr;
	return 0;
}
