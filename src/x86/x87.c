// SPDX-License-Identifier: MIT
/*
 * x87: every D8-DF instruction and FWAIT.  Each one runs on the host's
 * x87 unit, as the same opcode and ModRM reg (a memory operand becomes a
 * bounce buffer at [RAX]), with the guest's x87 state loaded by FXRSTOR
 * and taken back by FXSAVE inside one assembly routine that saves and
 * restores the host's state around it.  So the 80-bit arithmetic,
 * precision and rounding control, denormal, NaN and unnormal handling,
 * the transcendentals' results, the condition codes, the stack (TOP, the
 * tag word, stack faults) and the masked and unmasked exception
 * responses are those of real hardware, which is what a guest under KVM
 * gets too.
 *
 * What the host cannot give is done here:
 *  - #NM when CR0.EM or CR0.TS is set (FWAIT: CR0.MP and CR0.TS);
 *  - #MF at a waiting instruction while FSW.ES says an unmasked exception
 *    is pending (the host would take it itself).  CR0.NE=0 (FERR# to an
 *    external interrupt) is not modelled: under KVM hardware runs with
 *    CR0.NE set whatever the guest's value, and #MF is what it gets;
 *  - the last-instruction pointers (FIP, FCS, FOP, FDP, FDS) that FXSAVE,
 *    FNSTENV and FNSAVE store: FIP set by every non-control instruction;
 *    FOP, and FDP/FDS for a memory operand, by every one too, or with
 *    CPUID's FDP_EXCPTN_ONLY only by one that raised an unmasked
 *    exception (with FOP compatibility off, as on the CPUs that have
 *    it); FCS and FDS stored as 0 with ZERO_FCS_FDS.  The default CPUID
 *    has neither bit: the older rules.  The VMM may set them, to match
 *    the host a guest migrates from, say;
 *  - FNSTSW AX, FNSTSW/FNSTCW to memory and FNCLEX; with FNINIT those
 *    are what KVM's emulator handles: FNSTSW/FNSTCW work on MMIO.  Any
 *    other x87 instruction with an operand that is not RAM is an
 *    emulation failure (decode.c's x86_unimpl()), as under KVM, whose
 *    emulator does not do x87 arithmetic.
 *
 * Records: imm2 the host stub (index into x86_x87_stubs), imm the X87_*
 * flags, ssz the memory operand's length, op the ModRM byte.
 */
#include <Zydis/Zydis.h>

#include "x86/internal.h"

#define X87_RD 1	/* reads its memory operand */
#define X87_WR 2	/* writes it */
#define X87_NOWAIT 4	/* no #MF check */
#define X87_CTRL 8	/* control instruction: pointers unchanged */
#define X87_FL_IN 16	/* FCMOVcc: reads EFLAGS */
#define X87_FL_OUT 32	/* FCOMI and friends: write EFLAGS */
#define X87_ENV 64	/* FNSTENV/FLDENV/FNSAVE/FRSTOR */
#define X87_LDENV 128	/* FLDENV/FRSTOR: pointers from memory */
#define X87_INIT 256	/* FNINIT and FNSAVE: pointers cleared */
#define X87_STSW 512	/* FNSTSW AX (in C) */
#define X87_NSTORE 1024 /* FNSTSW/FNSTCW m16 (in C) */
#define X87_CLEX 2048	/* FNCLEX (in C) */

/* The stubs of 66-prefixed FLDENV, FNSTENV, FRSTOR, FNSAVE. */
#define STUB16 2048

#define FSW_ES 0x0080
#define FSW_B 0x8000
#define ARITH 0x8d5 /* CF PF AF ZF SF OF */

/*
 * x86_x87_host(guest, host, mem, stub, flags): FXSAVE the host's state to
 * @host, FXRSTOR @guest, run the stub (the instruction, then RET) with
 * RAX = @mem and the arithmetic flags from *@flags, store the flags back,
 * FXSAVE to @guest and FXRSTOR @host.  FXSAVE and FXRSTOR take no pending
 * x87 exception, so an unmasked one the instruction raised stays in the
 * guest's image.
 */
__attribute__((visibility("hidden"))) void
x86_x87_host(uint8_t *guest, uint8_t *host, uint8_t *mem, const uint8_t *stub,
	     uint64_t *flags);
__attribute__((visibility("hidden"))) extern const uint8_t x86_x87_stubs[];

__asm__(".text\n"
	".p2align 4\n"
	".globl x86_x87_host\n"
	".hidden x86_x87_host\n"
	".type x86_x87_host, @function\n"
	"x86_x87_host:\n"
	"fxsave64 (%rsi)\n"
	"fxrstor64 (%rdi)\n"
	"mov %rdx, %rax\n"
	"pushfq\n"
	"pop %r9\n"
	"and $~0x8d5, %r9\n"
	"mov (%r8), %r10\n"
	"and $0x8d5, %r10\n"
	"or %r10, %r9\n"
	"push %r9\n"
	"popfq\n"
	"call *%rcx\n"
	"pushfq\n"
	"popq (%r8)\n"
	"fxsave64 (%rdi)\n"
	"fxrstor64 (%rsi)\n"
	"ret\n"
	".size x86_x87_host, .-x86_x87_host\n"
	".p2align 4\n"
	".globl x86_x87_stubs\n"
	".hidden x86_x87_stubs\n"
	"x86_x87_stubs:\n"
	".set x87_i, 0\n"
	".rept 2048\n"
	".byte 0xd8 + (x87_i >> 8), x87_i & 0xff, 0xc3, 0xcc\n"
	".set x87_i, x87_i + 1\n"
	".endr\n"
	".byte 0x66, 0xd9, 0x20, 0xc3, 0x66, 0xd9, 0x30, 0xc3\n"
	".byte 0x66, 0xdd, 0x20, 0xc3, 0x66, 0xdd, 0x30, 0xc3\n");

/* CR0.EM or CR0.TS: #NM; a pending unmasked exception: #MF. */
static inline int x87_avail(struct x86_cpu *c, const struct x86_insn *i)
{
	if (unlikely(c->cr0 & (X86_CR0_EM | X86_CR0_TS)))
		return x86_raise(c, X86_NM, false, 0);
	if (unlikely((c->x87.fsw & FSW_ES) && !(i->imm & X87_NOWAIT)))
		return x86_raise(c, X86_MF, false, 0);
	return X86_OK;
}

/* The data pointer's segment selector: the operand's segment. */
static uint16_t data_sel(const struct x86_cpu *c, const struct x86_insn *i)
{
	if (i->seg)
		return c->seg[i->seg].selector;
	if (i->base == X86_RSP || i->base == X86_RBP)
		return c->seg[X86_SS].selector;
	return c->seg[X86_DS].selector;
}

/* The pointers a non-control instruction leaves; @exc: it raised one. */
static void x87_pointers(struct x86_cpu *c, const struct x86_insn *i, bool exc)
{
	struct x86_x87 *x = &c->x87;

	x->fip = c->rip;
	x->fcs = c->x87_zero_sel ? 0 : c->seg[X86_CS].selector;
	if (c->x87_ptr_exc_only && !exc)
		return;
	x->fop = ((i->imm2 >> 8 & 7) << 8) | i->op;
	if ((i->op >> 6) != 3) {
		x->fdp = x86_ea_offset(c, i);
		x->fds = c->x87_zero_sel ? 0 : data_sel(c, i);
	}
}

/* Environment layouts (SDM vol. 1, 8.1.10), in 64-bit mode's sense. */
static void env_put_pointers(const struct x86_x87 *x, uint8_t *b, bool e16)
{
	uint32_t v;

	if (e16) {
		memcpy(b + 6, &x->fip, 2);
		memcpy(b + 8, &x->fcs, 2);
		memcpy(b + 10, &x->fdp, 2);
		memcpy(b + 12, &x->fds, 2);
		return;
	}
	memcpy(b + 12, &x->fip, 4);
	v = x->fcs | (uint32_t)(x->fop & 0x7ff) << 16;
	memcpy(b + 16, &v, 4);
	memcpy(b + 20, &x->fdp, 4);
	v = x->fds | 0xffff0000u; /* reserved: ones, as hardware stores */
	memcpy(b + 24, &v, 4);
}

static void env_get_pointers(struct x86_x87 *x, const uint8_t *b, bool e16)
{
	uint32_t v = 0;

	if (e16) {
		memcpy(&v, b + 6, 2);
		x->fip = v;
		memcpy(&x->fcs, b + 8, 2);
		memcpy(&v, b + 10, 2);
		x->fdp = v;
		memcpy(&x->fds, b + 12, 2);
		x->fop = 0;
		return;
	}
	memcpy(&v, b + 12, 4);
	x->fip = v;
	memcpy(&v, b + 16, 4);
	x->fcs = v;
	x->fop = v >> 16 & 0x7ff;
	memcpy(&v, b + 20, 4);
	x->fdp = v;
	memcpy(&x->fds, b + 24, 2);
}

/* FNSTSW AX, FNSTSW/FNSTCW m16 (to MMIO too, as KVM's emulator), FNCLEX. */
static int h_x87_ctl(struct x86_cpu *c, const struct x86_insn *i)
{
	struct x86_x87 *x = &c->x87;
	struct x86_mref m;
	int r;

	if (unlikely(c->cr0 & (X86_CR0_EM | X86_CR0_TS)))
		return x86_raise(c, X86_NM, false, 0);
	if (i->imm & X87_STSW) {
		wreg(c, X86_RAX, 2, x->fsw);
	} else if (i->imm & X87_NSTORE) {
		r = x86_mem_prep(c, x86_ea(c, i), 2, X86_ACC_WRITE, &m);
		if (r)
			return r;
		/* FNSTCW is D9 /7, FNSTSW DD /7. */
		r = x86_mem_wr(c, &m, (i->imm2 >> 8) == 1 ? x->fcw : x->fsw);
		if (r)
			return r;
	} else {
		x->fsw &= ~(FSW_B | FSW_ES | 0x7f); /* FNCLEX */
	}
	c->rip += i->len;
	return X86_OK;
}

/* The largest operand: FNSAVE/FRSTOR's 108 bytes. */
#define X87_MAXMEM 108
#define NPIECE ((X87_MAXMEM + 7) / 8)

static void piece_rd(const struct x86_mref *m, uint8_t *b)
{
	memcpy(b, m->p[0], m->n0);
	if (m->n0 < m->len)
		memcpy(b + m->n0, m->p[1], m->len - m->n0);
}

static void piece_wr(const struct x86_mref *m, const uint8_t *b)
{
	memcpy(m->p[0], b, m->n0);
	if (m->n0 < m->len)
		memcpy(m->p[1], b + m->n0, m->len - m->n0);
}

static int h_x87(struct x86_cpu *c, const struct x86_insn *i)
{
	struct x86_x87 *x = &c->x87;
	_Alignas(64) uint8_t g[512], h[512];
	_Alignas(16) uint8_t buf[X87_MAXMEM + 4], pre[X87_MAXMEM];
	struct x86_mref m[NPIECE];
	struct x86_x87 old = c->x87;
	unsigned len = i->ssz, np = 0;
	uint64_t fl = 0;
	uint32_t mx = X86_MXCSR_DEFAULT;
	int r;

	r = x87_avail(c, i);
	if (r)
		return r;
	if (len) {
		uint64_t a = x86_ea(c, i);
		/* KVM's emulator has none of these: see X86_ACC_NOEMUL. */
		unsigned acc =
			((i->imm & X87_WR) ? X86_ACC_WRITE : X86_ACC_READ) |
			X86_ACC_NOEMUL;
		bool mmio = false;

		for (unsigned o = 0; o < len; o += 8, np++) {
			r = x86_mem_prep(c, a + o, MIN(8u, len - o), acc,
					 &m[np]);
			if (r)
				return r;
			mmio |= m[np].mmio;
		}
		if (mmio)
			return x86_unimpl(c, i);
		for (unsigned k = 0; k < np; k++)
			piece_rd(&m[k], buf + 8 * k);
		memcpy(pre, buf, len);
	}
	if (i->imm & X87_FL_IN)
		fl = x86_flags(c);

	memcpy(g + 0, &x->fcw, 2);
	memcpy(g + 2, &x->fsw, 2);
	g[4] = x->ftw;
	g[5] = 0;
	memcpy(g + 6, &x->fop, 2);
	memcpy(g + 8, &x->fip, 8);
	memcpy(g + 16, &x->fdp, 8);
	memcpy(g + 24, &mx, 4);
	memset(g + 28, 0, 4);
	for (unsigned k = 0; k < 8; k++) {
		memcpy(g + 32 + 16 * k, x->st[k], 10);
		memset(g + 42 + 16 * k, 0, 6);
	}
	x86_x87_host(g, h, buf, x86_x87_stubs + 4 * i->imm2, &fl);
	memcpy(&x->fcw, g + 0, 2);
	memcpy(&x->fsw, g + 2, 2);
	x->ftw = g[4];
	for (unsigned k = 0; k < 8; k++)
		memcpy(x->st[k], g + 32 + 16 * k, 10);

	if (i->imm & X87_FL_OUT) {
		uint64_t f = x86_flags(c);

		x86_set_flags(c, (f & ~(uint64_t)ARITH) | (fl & ARITH));
	}
	if (i->imm & X87_INIT) {
		x->fop = 0;
		x->fip = x->fdp = 0;
		x->fcs = x->fds = 0;
	}
	if (i->imm & X87_LDENV) {
		env_get_pointers(x, buf, i->imm2 >= STUB16);
		/* ZERO_FCS_FDS: the selectors are not kept at all. */
		if (c->x87_zero_sel)
			x->fcs = x->fds = 0;
	} else if (!(i->imm & X87_CTRL))
		x87_pointers(c, i, !(old.fsw & FSW_ES) && (x->fsw & FSW_ES));
	if (i->imm & X87_WR) {
		/* FNSTENV/FNSAVE stored the host's pointers: the guest's. */
		if (i->imm & X87_ENV)
			env_put_pointers(&old, buf, i->imm2 >= STUB16);
		/* An unmasked exception suppresses the store. */
		if (memcmp(buf, pre, len))
			for (unsigned k = 0; k < np; k++)
				piece_wr(&m[k], buf + 8 * k);
	}
	c->rip += i->len;
	return X86_OK;
}

/* FWAIT: #NM with CR0.MP and CR0.TS, #MF if an exception is pending. */
static int h_fwait(struct x86_cpu *c, const struct x86_insn *i)
{
	if ((c->cr0 & (X86_CR0_MP | X86_CR0_TS)) == (X86_CR0_MP | X86_CR0_TS))
		return x86_raise(c, X86_NM, false, 0);
	if (c->x87.fsw & FSW_ES)
		return x86_raise(c, X86_MF, false, 0);
	c->rip += i->len;
	return X86_OK;
}

/* Memory operand length and direction of D8-DF /reg (SDM vol. 2). */
static unsigned mem_form(unsigned op, unsigned reg, bool o16, unsigned *fl)
{
	static const uint8_t sz[8][8] = {
		{4, 4, 4, 4, 4, 4, 4, 4},     /* D8: m32real */
		{4, 0, 4, 4, 28, 2, 28, 2},   /* D9 */
		{4, 4, 4, 4, 4, 4, 4, 4},     /* DA: m32int */
		{4, 4, 4, 4, 0, 10, 0, 10},   /* DB */
		{8, 8, 8, 8, 8, 8, 8, 8},     /* DC: m64real */
		{8, 8, 8, 8, 108, 0, 108, 2}, /* DD */
		{2, 2, 2, 2, 2, 2, 2, 2},     /* DE: m16int */
		{2, 2, 2, 2, 10, 8, 10, 8},   /* DF */
	};
	/* Bit reg set: a store. */
	static const uint8_t st[8] = {0, 0xcc, 0, 0x8e, 0, 0x4e, 0, 0xce};
	unsigned n = sz[op][reg];

	*fl = (st[op] >> reg & 1) ? X87_WR : X87_RD;
	if (op == 1 && reg >= 4) {
		*fl |= X87_CTRL;
		if (reg == 4 || reg == 6) {
			*fl |= X87_ENV;
			if (reg == 4)
				*fl |= X87_LDENV;
			else
				*fl |= X87_NOWAIT;
			if (o16)
				n = 14;
		}
	}
	if (op == 5 && (reg == 4 || reg == 6)) {
		*fl |= X87_CTRL | X87_ENV;
		*fl |= reg == 4 ? X87_LDENV : X87_NOWAIT | X87_INIT;
		if (o16)
			n = 94;
	}
	return n;
}

/*
 * Bind D8-DF and FWAIT (from x86_bind(), before its operand checks: the
 * ST registers are no GPRs).  What Zydis decodes is a valid opcode.
 */
int x86_bind_x87(struct x86_insn *i, const void *zi, const void *zo)
{
	const ZydisDecodedInstruction *z = zi;
	unsigned op = z->opcode & 7, modrm, reg, fl = 0;
	bool o16;

	(void)zo;
	if (z->opcode == 0x9b) {
		i->fn = h_fwait;
		return 0;
	}
	modrm = (unsigned)z->raw.modrm.mod << 6 | z->raw.modrm.reg << 3 |
		z->raw.modrm.rm;
	reg = z->raw.modrm.reg;
	o16 = z->attributes & ZYDIS_ATTRIB_HAS_OPERANDSIZE;
	i->op = modrm;
	i->imm2 = op << 8 | modrm;
	i->ssz = 0; /* convert() put ST(i)'s size there */
	if (z->raw.modrm.mod != 3) {
		i->imm2 = op << 8 | reg << 3; /* [rax] */
		i->ssz = mem_form(op, reg, o16, &fl);
		if (!i->ssz)
			return -1;
		if ((fl & X87_ENV) && o16)
			i->imm2 = STUB16 + (op == 5) * 2 + (reg == 6);
		if ((op == 1 || op == 5) && reg == 7) {
			i->imm = X87_NSTORE | X87_NOWAIT;
			i->fn = h_x87_ctl;
			return 0;
		}
		if (op == 1 && reg == 5)
			fl |= X87_CTRL; /* FLDCW */
	} else if (op == 7 && modrm == 0xe0) {
		i->imm = X87_STSW;
		i->fn = h_x87_ctl;
		return 0;
	} else if (op == 3 && modrm == 0xe2) {
		i->imm = X87_CLEX;
		i->fn = h_x87_ctl;
		return 0;
	} else if (op == 3 && modrm == 0xe3) {
		/* FNINIT: TOP = 0 turns the stack-ordered registers round */
		fl = X87_NOWAIT | X87_CTRL | X87_INIT;
	} else if (op == 3 && modrm >= 0xe0 && modrm <= 0xe4) {
		/* FNENI, FNDISI, FNSETPM: no-ops since the 387 */
		fl = X87_NOWAIT | X87_CTRL;
	} else if ((op == 2 || op == 3) && modrm < 0xe0) {
		fl = X87_FL_IN; /* FCMOVcc */
	} else if ((op == 3 || op == 7) && modrm >= 0xe8 && modrm < 0xf8) {
		fl = X87_FL_OUT; /* F(U)COMI(P) */
	}
	i->imm = fl;
	i->fn = h_x87;
	return 0;
}
