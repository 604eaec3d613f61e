// SPDX-License-Identifier: MIT
/*
 * The integer instructions: their semantics, the lazy arithmetic flags,
 * and x86_bind(), which picks a decoded instruction's handler (here for
 * the general-purpose instructions, in sse.c, avx.c, x87.c and system.c
 * for the others).
 *
 * Every handler follows one order so that a fault or a stop leaves no
 * side effect: translate every memory operand, read the sources, compute,
 * write memory (an MMIO write may stop here, still with nothing
 * committed), then write registers, flags and RIP.
 *
 * Arithmetic flags are lazy: the last flag-setting ALU op leaves its
 * operands and result in cpu->lf, and x86_flags() computes RFLAGS when
 * someone reads them.  Conditions on a CMP/SUB or logic result are
 * evaluated straight from the operands.
 */
#include <Zydis/Zydis.h>

#include "x86/internal.h"

/*
 * What the last flag-setting instruction was: x86_flags() rebuilds the
 * arithmetic flags from lf.a, lf.b and lf.res by this.
 */
enum x86_lf {
	LF_NONE,
	LF_ADD,
	LF_ADC,
	LF_SUB,
	LF_SBB,
	LF_LOGIC,
	LF_INC,
	LF_DEC,
	LF_ROT
};

/*
 * The ALU group in opcode order (00-38 rows and 80 /reg), so op < OP_CMP
 * are exactly the ops that write their destination; TEST is ours.
 */
enum { OP_ADD, OP_OR, OP_ADC, OP_SBB, OP_AND, OP_SUB, OP_XOR, OP_CMP, OP_TEST };

/* PF looks at the low byte of the result only: set for an even bit count. */
static inline unsigned parity_flag(uint64_t v)
{
	return __builtin_parity(v & 0xff) ? 0 : X86_PF;
}

/* The arithmetic flags a lazy record stands for (op != LF_NONE, LF_ROT). */
static uint64_t lazy_arith(const struct x86_lazy *l)
{
	unsigned msb = l->size * 8 - 1;
	uint64_t m = szmask(l->size);
	uint64_t res = l->res & m, a = l->a & m, b = l->b & m;
	uint64_t f = 0, cf = 0, of = 0;

	switch (l->op) {
	case LF_ADD:
	case LF_ADC:
	case LF_INC:
		/*
		 * Carry and overflow out of the operand's top bit, from its
		 * sign bits.
		 */
		cf = ((a & b) | ((a | b) & ~res)) >> msb & 1;
		of = ((a ^ res) & (b ^ res)) >> msb & 1;
		break;
	case LF_SUB:
	case LF_SBB:
	case LF_DEC:
		cf = ((~a & b) | ((~a | b) & res)) >> msb & 1;
		of = ((a ^ b) & (a ^ res)) >> msb & 1;
		break;
	case LF_LOGIC:
		break;
	}
	/*
	 * INC and DEC do not touch CF; the one before them was saved in l->cf.
	 */
	if (l->op == LF_INC || l->op == LF_DEC)
		cf = l->cf;
	/*
	 * AF is the carry out of bit 3; it is undefined after a logic op
	 * (zero).
	 */
	if (l->op != LF_LOGIC)
		f |= (a ^ b ^ res) & X86_AF;
	/* OF is RFLAGS bit 11. */
	f |= cf | of << 11;
	f |= res == 0 ? X86_ZF : 0;
	f |= (res >> msb & 1) ? X86_SF : 0;
	f |= parity_flag(res);
	return f;
}

/*
 * LF_ROT: a ROL/ROR replaced CF and OF (kept in lf.res) and left the other
 * arithmetic flags as lf_rot says, so a rotate between an ALU op and the
 * next costs no flag computation.
 */
uint64_t x86_flags(struct x86_cpu *c)
{
	struct x86_lazy *l = &c->lf;
	uint64_t f;

	/* Nothing pending: rflags is already exact. */
	if (l->op == LF_NONE)
		return c->rflags;
	if (l->op == LF_ROT) {
		f = c->lf_rot.op == LF_NONE ? c->rflags
					    : lazy_arith(&c->lf_rot);
		f = (f & ~(uint64_t)(X86_CF | X86_OF)) | l->res;
	} else {
		f = lazy_arith(l);
	}
	/*
	 * Fold the record into rflags and drop it, so a second read costs
	 * nothing.
	 */
	c->rflags = (c->rflags & ~(uint64_t)X86_ARITH) | (f & X86_ARITH);
	l->op = LF_NONE;
	return c->rflags;
}

void x86_set_flags(struct x86_cpu *c, uint64_t f)
{
	/*
	 * All of RFLAGS is replaced (POPF, IRET, state set): a pending lazy
	 * record would overwrite it later.  Bit 1 always reads as one.
	 */
	c->lf.op = LF_NONE;
	c->rflags = f | 2;
}

/* Replace the arithmetic flags in @mask by @f. */
static inline void set_arith(struct x86_cpu *c, uint64_t mask, uint64_t f)
{
	uint64_t old;

	/* Every arithmetic flag replaced: the old ones need not be computed. */
	if (mask == X86_ARITH) {
		c->lf.op = LF_NONE;
		c->rflags = (c->rflags & ~mask) | (f & mask);
		return;
	}
	old = x86_flags(c);
	c->rflags = (old & ~mask) | (f & mask);
}

/* CF alone, without materializing RFLAGS, for ADC, SBB, INC and DEC. */
static inline unsigned get_cf(struct x86_cpu *c)
{
	struct x86_lazy *l = &c->lf;
	uint64_t m = szmask(l->size);

	if (l->op == LF_SUB)
		return (l->a & m) < (l->b & m);
	if (l->op == LF_LOGIC)
		return 0;
	if (l->op == LF_ROT)
		return l->res & X86_CF;
	return x86_flags(c) & X86_CF;
}

/* Record the CF/OF of a ROL/ROR (see x86_flags). */
static inline void set_rot_flags(struct x86_cpu *c, uint64_t f)
{
	/*
	 * Only the first rotate saves the record it covers; a run of rotates
	 * keeps that one and replaces nothing but CF and OF.
	 */
	if (c->lf.op != LF_ROT) {
		c->lf_rot = c->lf;
		c->lf.op = LF_ROT;
	}
	c->lf.res = f & (X86_CF | X86_OF);
}

/* SZP flags of a result, for the eagerly computed ops. */
static inline uint64_t szp(uint64_t res, unsigned sz)
{
	unsigned msb = sz * 8 - 1;

	res &= szmask(sz);
	return (res == 0 ? X86_ZF : 0) | ((res >> msb & 1) ? X86_SF : 0) |
	       parity_flag(res);
}

/*
 * The condition @cc of Jcc/SETcc/CMOVcc (the opcode's low nibble): bits
 * 3:1 pick the test and bit 0 negates it, SDM Vol. 1 appendix B.
 */
static bool cond(struct x86_cpu *c, unsigned cc)
{
	struct x86_lazy *l = &c->lf;
	unsigned sh = 64 - l->size * 8;
	uint64_t f;
	bool r;

	/*
	 * After CMP or SUB the tests are comparisons of the operands; the shift
	 * puts the operand size's sign bit at bit 63.
	 */
	if (likely(l->op == LF_SUB)) {
		uint64_t a = l->a << sh, b = l->b << sh;

		switch (cc >> 1) {
		case 1:
			r = a < b;
			break;
		case 2:
			r = a == b;
			break;
		case 3:
			r = a <= b;
			break;
		case 6:
			r = (int64_t)a < (int64_t)b;
			break;
		case 7:
			r = (int64_t)a <= (int64_t)b;
			break;
		default:
			goto slow;
		}
		return r ^ (cc & 1);
	}
	/*
	 * After a logic op CF = OF = 0: BE is E, and L is S, and LE is S or Z.
	 */
	if (l->op == LF_LOGIC) {
		int64_t v = (int64_t)(l->res << sh);

		switch (cc >> 1) {
		case 2:
		case 3:
			r = v == 0;
			break;
		case 4:
		case 6:
			r = v < 0;
			break;
		case 7:
			r = v <= 0;
			break;
		default:
			goto slow;
		}
		return r ^ (cc & 1);
	}
slow:
	/* Anything else (O, P, or another record) needs RFLAGS itself. */
	f = x86_flags(c);
	switch (cc >> 1) {
	case 0:
		r = f & X86_OF;
		break;
	case 1:
		r = f & X86_CF;
		break;
	case 2:
		r = f & X86_ZF;
		break;
	case 3:
		r = f & (X86_CF | X86_ZF);
		break;
	case 4:
		r = f & X86_SF;
		break;
	case 5:
		r = f & X86_PF;
		break;
	case 6:
		r = !(f & X86_SF) != !(f & X86_OF);
		break;
	default:
		r = (f & X86_ZF) || (!(f & X86_SF) != !(f & X86_OF));
		break;
	}
	return r ^ (cc & 1);
}

/*
 * Compare-and-swap on host memory for LOCKed read-modify-writes; on
 * failure *old is the value seen.
 */
#define CAS_T(T)                                          \
	do {                                              \
		T o = *old;                               \
		bool ok = GUEST_CAS((T *)p, &o, (T) new); \
		*old = o;                                 \
		return ok;                                \
	} while (0)

static bool cas_v(uint8_t *p, unsigned sz, uint64_t *old, uint64_t new)
{
	switch (sz) {
	case 1:
		CAS_T(uint8_t);
	case 2:
		CAS_T(uint16_t);
	case 4:
		CAS_T(uint32_t);
	default:
		CAS_T(uint64_t);
	}
}

static inline bool cas(uint8_t *p, unsigned sz, uint64_t old, uint64_t new)
{
	return cas_v(p, sz, &old, new);
}

/* A LOCKed RMW can be done atomically on the host. */
static inline bool lockable(const struct x86_insn *i, const struct x86_mref *m)
{
	/*
	 * Atomic on the host only for RAM in one page, naturally aligned; MMIO
	 * and split operands fall back to a separate read and write.
	 */
	return (i->pfx & P_LOCK) && !m->mmio && m->n0 == m->len &&
	       ((uintptr_t)m->p[0] & (m->len - 1)) == 0;
}

/* Retiring: the last step of a handler, after everything that can fault. */
static inline int next(struct x86_cpu *c, const struct x86_insn *i)
{
	c->rip += i->len;
	return X86_OK;
}

/* Source operand 1 (reg, imm or memory). */
static inline __attribute__((always_inline)) int
src1(struct x86_cpu *c, const struct x86_insn *i, unsigned sz, uint64_t *v)
{
	struct x86_mref m;
	int r;

	switch (i->k[1]) {
	case K_REG:
		*v = rreg(c, i->r[1], sz);
		return X86_OK;
	case K_IMM:
		*v = i->imm & szmask(sz);
		return X86_OK;
	default:
		r = x86_mem_prep(c, x86_ea(c, i), sz, X86_ACC_READ, &m);
		if (r)
			return r;
		return x86_mem_rd(c, &m, v);
	}
}

/* ---- ALU ------------------------------------------------------------ */

/*
 * The result of @op; its flags go to @l, not cpu->lf, so that a handler
 * that faults after computing leaves the old flags in place.
 */
static inline uint64_t alu(struct x86_cpu *c, unsigned op, uint64_t a,
			   uint64_t b, unsigned sz, struct x86_lazy *l)
{
	uint64_t res, cin = 0;

	/* The carry in comes from the flags @l may be about to replace. */
	if (op == OP_ADC || op == OP_SBB)
		cin = get_cf(c);
	l->a = a;
	l->b = b;
	l->size = sz;
	switch (op) {
	case OP_ADD:
		res = a + b;
		l->op = LF_ADD;
		break;
	case OP_ADC:
		res = a + b + cin;
		l->op = LF_ADC;
		break;
	case OP_SBB:
		res = a - b - cin;
		l->op = LF_SBB;
		break;
	case OP_SUB:
	case OP_CMP:
		res = a - b;
		l->op = LF_SUB;
		break;
	case OP_OR:
		res = a | b;
		l->op = LF_LOGIC;
		break;
	case OP_XOR:
		res = a ^ b;
		l->op = LF_LOGIC;
		break;
	default:
		res = a & b;
		l->op = LF_LOGIC;
		break;
	}
	l->res = res;
	return res;
}

static int h_alu(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	struct x86_lazy l;
	struct x86_mref m;
	uint64_t a, b, res;
	int r;

	/* Register destination: only the source can fault, so read it first. */
	if (i->k[0] == K_REG) {
		r = src1(c, i, sz, &b);
		if (r)
			return r;
		a = rreg(c, i->r[0], sz);
		res = alu(c, i->op, a, b, sz, &l);
		if (i->op < OP_CMP)
			wreg(c, i->r[0], sz, res);
		c->lf = l;
		return next(c, i);
	}
	/*
	 * Prepared for writing too when the result is written back, so that a
	 * read-only page faults before anything is read.
	 */
	r = x86_mem_prep(c, x86_ea(c, i), sz,
			 i->op < OP_CMP ? X86_ACC_READ | X86_ACC_WRITE
					: X86_ACC_READ,
			 &m);
	if (r)
		return r;
	b = i->k[1] == K_IMM ? (uint64_t)i->imm & szmask(sz)
			     : rreg(c, i->r[1], sz);
	/* LOCK: retry until the CAS meets the value the result came from. */
	if (i->op < OP_CMP && lockable(i, &m)) {
		do {
			a = ld_le(m.p[0], sz);
			res = alu(c, i->op, a, b, sz, &l);
		} while (!cas(m.p[0], sz, a, res));
		c->lf = l;
		return next(c, i);
	}
	r = x86_mem_rd(c, &m, &a);
	if (r)
		return r;
	res = alu(c, i->op, a, b, sz, &l);
	if (i->op < OP_CMP) {
		r = x86_mem_wr(c, &m, res);
		if (r)
			return r;
	}
	c->lf = l;
	return next(c, i);
}

/*
 * Fast paths for the 32/64-bit register and immediate forms, specialized
 * by operation and size (32/64) so that the ALU's
 * switch and the size masks fold away: these are most of the instructions
 * compiled code runs.  The lazy record goes straight into cpu->lf:
 * register operands cannot fault, so nothing waits for a commit.
 */
#define ALU_SPECIAL(name, OP, SZ)                                             \
	static int h_##name##_rr##SZ(struct x86_cpu *c,                       \
				     const struct x86_insn *i)                \
	{                                                                     \
		uint64_t res = alu(c, OP, rreg(c, i->r[0], SZ / 8),           \
				   rreg(c, i->r[1], SZ / 8), SZ / 8, &c->lf); \
                                                                              \
		if (OP < OP_CMP)                                              \
			wreg(c, i->r[0], SZ / 8, res);                        \
		c->rip += i->len;                                             \
		return X86_OK;                                                \
	}                                                                     \
	static int h_##name##_ri##SZ(struct x86_cpu *c,                       \
				     const struct x86_insn *i)                \
	{                                                                     \
		uint64_t res = alu(c, OP, rreg(c, i->r[0], SZ / 8),           \
				   i->imm & szmask(SZ / 8), SZ / 8, &c->lf);  \
                                                                              \
		if (OP < OP_CMP)                                              \
			wreg(c, i->r[0], SZ / 8, res);                        \
		c->rip += i->len;                                             \
		return X86_OK;                                                \
	}

#define ALU_SIZES(name, OP)       \
	ALU_SPECIAL(name, OP, 32) \
	ALU_SPECIAL(name, OP, 64)

ALU_SIZES(add, OP_ADD)
ALU_SIZES(or, OP_OR)
ALU_SIZES(adc, OP_ADC)
ALU_SIZES(sbb, OP_SBB)
ALU_SIZES(and, OP_AND)
ALU_SIZES(sub, OP_SUB)
ALU_SIZES(xor, OP_XOR)
ALU_SIZES(cmp, OP_CMP)
ALU_SIZES(test, OP_TEST)

/* [op][size == 8][imm] */
#define ALU_ROW(name)                                    \
	{                                                \
		{h_##name##_rr32, h_##name##_ri32},      \
		{                                        \
			h_##name##_rr64, h_##name##_ri64 \
		}                                        \
	}
static const x86_handler alu_h[9][2][2] = {
	ALU_ROW(add), ALU_ROW(or),  ALU_ROW(adc), ALU_ROW(sbb),	 ALU_ROW(and),
	ALU_ROW(sub), ALU_ROW(xor), ALU_ROW(cmp), ALU_ROW(test),
};

enum { U_INC, U_DEC, U_NEG, U_NOT };

static inline uint64_t unary(struct x86_cpu *c, unsigned op, uint64_t a,
			     unsigned sz, struct x86_lazy *l)
{
	switch (op) {
	case U_INC:
		l->size = sz;
		/*
		 * INC and DEC keep CF: save the current one for lazy_arith().
		 */
		l->cf = get_cf(c);
		l->op = LF_INC;
		l->a = a;
		l->b = 1;
		return l->res = a + 1;
	case U_DEC:
		l->size = sz;
		l->cf = get_cf(c);
		l->op = LF_DEC;
		l->a = a;
		l->b = 1;
		return l->res = a - 1;
	case U_NEG:
		/* NEG is 0 - a for the flags: CF is set unless a was zero. */
		l->size = sz;
		l->op = LF_SUB;
		l->a = 0;
		l->b = a;
		return l->res = -a;
	default:
		/* NOT sets no flags: @l stays what the caller copied in. */
		return ~a;
	}
}

static int h_unary(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	/* Start from the current record, which NOT leaves as it is. */
	struct x86_lazy l = c->lf;
	struct x86_mref m;
	uint64_t a, res;
	int r;

	if (i->k[0] == K_REG) {
		res = unary(c, i->op, rreg(c, i->r[0], sz), sz, &l);
		wreg(c, i->r[0], sz, res);
		c->lf = l;
		return next(c, i);
	}
	r = x86_mem_prep(c, x86_ea(c, i), sz, X86_ACC_READ | X86_ACC_WRITE, &m);
	if (r)
		return r;
	if (lockable(i, &m)) {
		do {
			a = ld_le(m.p[0], sz);
			/*
			 * Reset each try: NOT leaves @l as it is, and so must
			 * leave cpu->lf.
			 */
			l = c->lf;
			res = unary(c, i->op, a, sz, &l);
		} while (!cas(m.p[0], sz, a, res));
		c->lf = l;
		return next(c, i);
	}
	r = x86_mem_rd(c, &m, &a);
	if (r)
		return r;
	res = unary(c, i->op, a, sz, &l);
	r = x86_mem_wr(c, &m, res);
	if (r)
		return r;
	c->lf = l;
	return next(c, i);
}

/* ---- Moves ---------------------------------------------------------- */

static int h_mov(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	struct x86_mref m;
	uint64_t v;
	int r;

	if (i->k[0] == K_REG) {
		r = src1(c, i, sz, &v);
		if (r)
			return r;
		wreg(c, i->r[0], sz, v);
		return next(c, i);
	}
	r = x86_mem_prep(c, x86_ea(c, i), sz, X86_ACC_WRITE, &m);
	if (r)
		return r;
	/*
	 * An immediate is already sign-extended to 64 bits; the write
	 * truncates.
	 */
	v = i->k[1] == K_IMM ? (uint64_t)i->imm : rreg(c, i->r[1], sz);
	r = x86_mem_wr(c, &m, v);
	if (r)
		return r;
	return next(c, i);
}

static int h_mov_rr64(struct x86_cpu *c, const struct x86_insn *i)
{
	/* A 64-bit register copy: no size mask and no flags, the hot MOV. */
	c->gpr[i->r[0]] = c->gpr[i->r[1]];
	c->rip += i->len;
	return X86_OK;
}

static int h_mov_rr32(struct x86_cpu *c, const struct x86_insn *i)
{
	/* A 32-bit destination clears bits 63:32 (SDM Vol. 1 3.4.1.1). */
	c->gpr[i->r[0]] = (uint32_t)c->gpr[i->r[1]];
	c->rip += i->len;
	return X86_OK;
}

static int h_mov_ri(struct x86_cpu *c, const struct x86_insn *i)
{
	wreg(c, i->r[0], i->osz, i->imm);
	c->rip += i->len;
	return X86_OK;
}

/*
 * Loads and stores with a base register (and maybe an index), no segment
 * override, 64-bit addressing: the common memory MOVs of compiled code.
 */
static inline uint64_t ea_b(const struct x86_cpu *c, const struct x86_insn *i)
{
	return c->gpr[i->base] + i->disp;
}

static inline uint64_t ea_bi(const struct x86_cpu *c, const struct x86_insn *i)
{
	return c->gpr[i->base] + (c->gpr[i->index] << i->scale) + i->disp;
}

/* No base: disp + index * scale (arrays at absolute addresses). */
static inline uint64_t ea_i(const struct x86_cpu *c, const struct x86_insn *i)
{
	return (c->gpr[i->index] << i->scale) + i->disp;
}

static inline uint64_t ea_rip(const struct x86_cpu *c, const struct x86_insn *i)
{
	return c->rip + i->len + i->disp;
}

#define MOV_LS(name, EA)                                                       \
	static int h_load_##name(struct x86_cpu *c, const struct x86_insn *i)  \
	{                                                                      \
		struct x86_mref m;                                             \
		uint64_t v;                                                    \
		int r = x86_mem_prep(c, EA(c, i), i->osz, X86_ACC_READ, &m);   \
                                                                               \
		if (unlikely(r))                                               \
			return r;                                              \
		r = x86_mem_rd(c, &m, &v);                                     \
		if (unlikely(r))                                               \
			return r;                                              \
		wreg(c, i->r[0], i->osz, v);                                   \
		c->rip += i->len;                                              \
		return X86_OK;                                                 \
	}                                                                      \
	static int h_store_##name(struct x86_cpu *c, const struct x86_insn *i) \
	{                                                                      \
		struct x86_mref m;                                             \
		int r = x86_mem_prep(c, EA(c, i), i->osz, X86_ACC_WRITE, &m);  \
                                                                               \
		if (unlikely(r))                                               \
			return r;                                              \
		r = x86_mem_wr(c, &m, c->gpr[i->r[1]]);                        \
		if (unlikely(r))                                               \
			return r;                                              \
		c->rip += i->len;                                              \
		return X86_OK;                                                 \
	}

/* MOVZX/MOVSX from memory. */
#define MOVX_L(name, EA)                                                      \
	static int h_movx_##name(struct x86_cpu *c, const struct x86_insn *i) \
	{                                                                     \
		struct x86_mref m;                                            \
		unsigned ss = i->ssz, sh = 64 - ss * 8;                       \
		uint64_t v;                                                   \
		int r = x86_mem_prep(c, EA(c, i), ss, X86_ACC_READ, &m);      \
                                                                              \
		if (unlikely(r))                                              \
			return r;                                             \
		r = x86_mem_rd(c, &m, &v);                                    \
		if (unlikely(r))                                              \
			return r;                                             \
		if (i->op)                                                    \
			v = (uint64_t)((int64_t)(v << sh) >> sh);             \
		wreg(c, i->r[0], i->osz, v);                                  \
		c->rip += i->len;                                             \
		return X86_OK;                                                \
	}

MOV_LS(b, ea_b)
MOV_LS(bi, ea_bi)
MOV_LS(i, ea_i)
MOV_LS(rip, ea_rip)
MOVX_L(b, ea_b)
MOVX_L(bi, ea_bi)
MOVX_L(i, ea_i)
MOVX_L(rip, ea_rip)

/* Which of the forms above a memory operand has, or -1. */
static int ea_form(const struct x86_insn *i)
{
	/* A segment override or a 32-bit address needs the slow x86_ea(). */
	if (i->seg || i->asz != 8)
		return -1;
	if (i->base < 16)
		return i->index < 16 ? 1 : 0;
	if (i->base == NO_REG && i->index < 16)
		return 2;
	if (i->base == RIP_REG && i->index == NO_REG)
		return 3;
	return -1;
}

static const x86_handler load_h[] = {h_load_b, h_load_bi, h_load_i, h_load_rip};
static const x86_handler store_h[] = {h_store_b, h_store_bi, h_store_i,
				      h_store_rip};
static const x86_handler movx_h[] = {h_movx_b, h_movx_bi, h_movx_i, h_movx_rip};

/* MOVZX, MOVSX, MOVSXD: source of size ssz, op = 1 for sign. */
static int h_movx(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned ss = i->ssz;
	uint64_t v;
	int r = src1(c, i, ss, &v);

	if (r)
		return r;
	if (i->op && ss < 8) {
		unsigned sh = 64 - ss * 8;

		v = (uint64_t)((int64_t)(v << sh) >> sh);
	}
	wreg(c, i->r[0], i->osz, v);
	return next(c, i);
}

static int h_movx_r(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned ss = i->ssz, sh = 64 - ss * 8;
	uint64_t v = rreg(c, i->r[1], ss);

	if (i->op)
		v = (uint64_t)((int64_t)(v << sh) >> sh);
	wreg(c, i->r[0], i->osz, v);
	c->rip += i->len;
	return X86_OK;
}

static int h_lea(struct x86_cpu *c, const struct x86_insn *i)
{
	/* LEA ignores segments, overrides included. */
	wreg(c, i->r[0], i->osz, x86_ea_offset(c, i));
	return next(c, i);
}

static int h_xchg(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	struct x86_mref m;
	uint64_t a, b;
	int r;

	if (i->k[0] == K_REG && i->k[1] == K_REG) {
		a = rreg(c, i->r[0], sz);
		b = rreg(c, i->r[1], sz);
		wreg(c, i->r[0], sz, b);
		wreg(c, i->r[1], sz, a);
		return next(c, i);
	}
	/* XCHG with memory is always locked. */
	unsigned reg = i->k[0] == K_REG ? i->r[0] : i->r[1];

	r = x86_mem_prep(c, x86_ea(c, i), sz, X86_ACC_READ | X86_ACC_WRITE, &m);
	if (r)
		return r;
	b = rreg(c, reg, sz);
	/* Atomic as lockable() is, but LOCK is implied (SDM XCHG). */
	if (!m.mmio && m.n0 == m.len && ((uintptr_t)m.p[0] & (sz - 1)) == 0) {
		do
			a = ld_le(m.p[0], sz);
		while (!cas(m.p[0], sz, a, b));
	} else {
		r = x86_mem_rd(c, &m, &a);
		if (r)
			return r;
		r = x86_mem_wr(c, &m, b);
		if (r)
			return r;
	}
	wreg(c, reg, sz, a);
	return next(c, i);
}

static int h_xadd(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	struct x86_lazy l;
	struct x86_mref m;
	uint64_t a, b, res;
	int r;

	b = rreg(c, i->r[1], sz);
	/*
	 * The source register gets the old destination, the destination the
	 * sum.
	 */
	if (i->k[0] == K_REG) {
		a = rreg(c, i->r[0], sz);
		res = alu(c, OP_ADD, a, b, sz, &l);
		wreg(c, i->r[1], sz, a);
		wreg(c, i->r[0], sz, res);
		c->lf = l;
		return next(c, i);
	}
	r = x86_mem_prep(c, x86_ea(c, i), sz, X86_ACC_READ | X86_ACC_WRITE, &m);
	if (r)
		return r;
	if (lockable(i, &m)) {
		do {
			a = ld_le(m.p[0], sz);
			res = alu(c, OP_ADD, a, b, sz, &l);
		} while (!cas(m.p[0], sz, a, res));
	} else {
		r = x86_mem_rd(c, &m, &a);
		if (r)
			return r;
		res = alu(c, OP_ADD, a, b, sz, &l);
		r = x86_mem_wr(c, &m, res);
		if (r)
			return r;
	}
	/* Memory is written before the source register is replaced. */
	wreg(c, i->r[1], sz, a);
	c->lf = l;
	return next(c, i);
}

static int h_cmpxchg(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	struct x86_lazy l;
	struct x86_mref m;
	uint64_t acc = rreg(c, X86_RAX, sz), src = rreg(c, i->r[1], sz);
	uint64_t d;
	int r;

	if (i->k[0] == K_REG) {
		d = rreg(c, i->r[0], sz);
		/*
		 * The flags are those of CMP rAX, dest whichever way it goes.
		 */
		alu(c, OP_CMP, acc, d, sz, &l);
		if (d == acc)
			wreg(c, i->r[0], sz, src);
		else
			wreg(c, X86_RAX, sz, d);
		c->lf = l;
		return next(c, i);
	}
	r = x86_mem_prep(c, x86_ea(c, i), sz, X86_ACC_READ | X86_ACC_WRITE, &m);
	if (r)
		return r;
	if (lockable(i, &m)) {
		d = acc;
		cas_v(m.p[0], sz, &d, src); /* d: the value seen */
	} else {
		r = x86_mem_rd(c, &m, &d);
		if (r)
			return r;
		/* The destination is written back either way. */
		r = x86_mem_wr(c, &m, d == acc ? src : d);
		if (r)
			return r;
	}
	/* Same flags from either path; rAX is loaded only on a mismatch. */
	alu(c, OP_CMP, acc, d, sz, &l);
	if (d != acc)
		wreg(c, X86_RAX, sz, d);
	c->lf = l;
	return next(c, i);
}

/* ---- Shifts and rotates --------------------------------------------- */

enum { S_ROL, S_ROR, S_RCL, S_RCR, S_SHL, S_SHR, S_SAL, S_SAR };

/*
 * Compute a shift/rotate of @a by the masked count @cnt (non-zero).
 * Returns the result; *f gets the new arithmetic flags and *fm the mask
 * of flags the op writes.
 */
static inline uint64_t shift(struct x86_cpu *c, unsigned op, uint64_t a,
			     unsigned cnt, unsigned sz, uint64_t *f,
			     uint64_t *fm)
{
	unsigned bits = sz * 8, msb = bits - 1;
	uint64_t m = szmask(sz), res, cf, of = 0;

	a &= m;
	switch (op) {
	case S_ROL:
	case S_ROR: {
		/*
		 * The masked count is taken modulo the width; with none left
		 * the result is the operand, but CF and OF are still set from
		 * it.
		 */
		unsigned n = cnt % bits;

		if (op == S_ROL) {
			res = n ? ((a << n) | (a >> (bits - n))) & m : a;
			cf = res & 1;
			/*
			 * OF is defined only for a count of 1; this is its
			 * 1-bit rule.
			 */
			of = ((res >> msb) ^ cf) & 1;
		} else {
			res = n ? ((a >> n) | (a << (bits - n))) & m : a;
			cf = res >> msb & 1;
			of = ((res >> msb) ^ (res >> (msb - 1))) & 1;
		}
		*fm = X86_CF | X86_OF;
		*f = cf | of << 11;
		return res;
	}
	case S_RCL:
	case S_RCR: {
		/*
		 * RCL/RCR rotate through CF, 9 or 17 bits for bytes and words,
		 * so their count is reduced modulo that; wider counts are
		 * already smaller.
		 */
		unsigned n = sz < 4 ? cnt % (bits + 1) : cnt;
		uint64_t c0 = x86_flags(c) & X86_CF, top;

		cf = c0;
		res = a;
		if (op == S_RCR)
			of = ((res >> msb) ^ cf) & 1;
		/* Bit by bit: rare, and at most 63 steps. */
		for (unsigned k = 0; k < n; k++) {
			if (op == S_RCL) {
				top = res >> msb & 1;
				res = ((res << 1) | cf) & m;
				cf = top;
			} else {
				top = res & 1;
				res = (res >> 1) | (cf << msb);
				cf = top;
			}
		}
		if (op == S_RCL)
			of = ((res >> msb) ^ cf) & 1;
		*fm = X86_CF | X86_OF;
		*f = cf | of << 11;
		return res;
	}
	case S_SHL:
	case S_SAL:
		/*
		 * A byte or word can be shifted by up to 31: past the width
		 * gives 0, and CF is the last bit shifted out (0 once none is
		 * left).
		 */
		res = cnt < 64 ? (a << cnt) & m : 0;
		cf = cnt <= bits ? (a >> (bits - cnt)) & 1 : 0;
		of = ((res >> msb) ^ cf) & 1;
		break;
	case S_SHR:
		res = a >> cnt;
		cf = cnt <= bits ? (a >> (cnt - 1)) & 1 : 0;
		/* For a count of 1 OF is the operand's old sign bit. */
		of = a >> msb & 1;
		break;
	default: {
		int64_t sa = (int64_t)(a << (64 - bits)) >> (64 - bits);

		res = (uint64_t)(sa >> cnt) & m;
		cf = (uint64_t)(sa >> (cnt - 1)) & 1;
		/* SAR of a count of 1 clears OF (the sign cannot change). */
		of = 0;
		break;
	}
	}
	*fm = X86_ARITH;
	*f = cf | of << 11 | szp(res, sz);
	return res;
}

static inline void shift_flags(struct x86_cpu *c, unsigned op, uint64_t fm,
			       uint64_t f)
{
	if (op == S_ROL || op == S_ROR)
		set_rot_flags(c, f);
	else
		set_arith(c, fm, f);
}

static int h_shift(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	unsigned cnt =
		i->k[1] == K_IMM ? (unsigned)i->imm : (unsigned)c->gpr[X86_RCX];
	struct x86_mref m;
	uint64_t a, res, f, fm;
	int r;

	/* SDM: the count is masked to 5 bits, 6 with REX.W, before anything. */
	cnt &= sz == 8 ? 63 : 31;
	if (i->k[0] == K_REG) {
		a = rreg(c, i->r[0], sz);
		/* A zero count changes no flags (SDM SAL/SAR/SHL/SHR). */
		if (!cnt) {
			wreg(c, i->r[0], sz, a); /* 32-bit: zero-extends */
			return next(c, i);
		}
		res = shift(c, i->op, a, cnt, sz, &f, &fm);
		wreg(c, i->r[0], sz, res);
		shift_flags(c, i->op, fm, f);
		return next(c, i);
	}
	r = x86_mem_prep(c, x86_ea(c, i), sz, X86_ACC_READ | X86_ACC_WRITE, &m);
	if (r)
		return r;
	r = x86_mem_rd(c, &m, &a);
	if (r)
		return r;
	/* The operand is still accessed (and can fault) with a zero count. */
	if (!cnt)
		return next(c, i);
	res = shift(c, i->op, a, cnt, sz, &f, &fm);
	r = x86_mem_wr(c, &m, res);
	if (r)
		return r;
	shift_flags(c, i->op, fm, f);
	return next(c, i);
}

/* Shifts and rotates of a 32/64-bit register by an immediate. */
#define SHIFT_SPECIAL(name, OP, SZ)                                     \
	static int h_##name##_ri##SZ(struct x86_cpu *c,                 \
				     const struct x86_insn *i)          \
	{                                                               \
		unsigned cnt = (unsigned)i->imm & (SZ == 64 ? 63 : 31); \
		uint64_t a = rreg(c, i->r[0], SZ / 8), res, f, fm;      \
                                                                        \
		if (cnt) {                                              \
			res = shift(c, OP, a, cnt, SZ / 8, &f, &fm);    \
			wreg(c, i->r[0], SZ / 8, res);                  \
			shift_flags(c, OP, fm, f);                      \
		} else {                                                \
			wreg(c, i->r[0], SZ / 8, a); /* zero-extends */ \
		}                                                       \
		c->rip += i->len;                                       \
		return X86_OK;                                          \
	}

#define SHIFT_SIZES(name, OP)       \
	SHIFT_SPECIAL(name, OP, 32) \
	SHIFT_SPECIAL(name, OP, 64)

SHIFT_SIZES(rol, S_ROL)
SHIFT_SIZES(ror, S_ROR)
SHIFT_SIZES(shl, S_SHL)
SHIFT_SIZES(shr, S_SHR)
SHIFT_SIZES(sar, S_SAR)

/* [op][size == 8]; RCL/RCR (and SAL, decoded as SHL) use h_shift. */
static const x86_handler shift_h[8][2] = {
	[S_ROL] = {h_rol_ri32, h_rol_ri64}, [S_ROR] = {h_ror_ri32, h_ror_ri64},
	[S_SHL] = {h_shl_ri32, h_shl_ri64}, [S_SHR] = {h_shr_ri32, h_shr_ri64},
	[S_SAR] = {h_sar_ri32, h_sar_ri64},
};

/* SHLD (op 0) / SHRD (op 1) dst, src, count. */
static int h_shd(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz, bits = sz * 8, msb = bits - 1;
	unsigned cnt =
		i->k[2] == K_IMM ? (unsigned)i->imm : (unsigned)c->gpr[X86_RCX];
	uint64_t m = szmask(sz), a, b = rreg(c, i->r[1], sz), res, cf, of;
	struct x86_mref mr;
	int r;

	cnt &= sz == 8 ? 63 : 31;
	if (i->k[0] == K_REG) {
		a = rreg(c, i->r[0], sz);
	} else {
		r = x86_mem_prep(c, x86_ea(c, i), sz,
				 X86_ACC_READ | X86_ACC_WRITE, &mr);
		if (r)
			return r;
		r = x86_mem_rd(c, &mr, &a);
		if (r)
			return r;
	}
	if (!cnt) {
		if (i->k[0] == K_REG)
			wreg(c, i->r[0], sz, a); /* zero-extends */
		return next(c, i);
	}
	if (sz == 2) {
		/* 16-bit counts above 16 are undefined; shift a 48-bit mix. */
		uint64_t w = i->op == 0 ? (a << 32) | (b << 16) | b
					: (b << 32) | (b << 16) | a;

		if (i->op == 0) {
			res = (w << cnt) >> 32 & m;
			cf = (w >> (48 - cnt)) & 1;
		} else {
			res = (w >> cnt) & m;
			cf = (w >> (cnt - 1)) & 1;
		}
	} else if (i->op == 0) {
		res = ((a << cnt) | (b >> (bits - cnt))) & m;
		cf = (a >> (bits - cnt)) & 1;
	} else {
		res = ((a >> cnt) | (b << (bits - cnt))) & m;
		cf = (a >> (cnt - 1)) & 1;
	}
	/* OF (defined for a count of 1): whether the sign bit changed. */
	of = ((res ^ a) >> msb) & 1;
	if (i->k[0] == K_REG) {
		wreg(c, i->r[0], sz, res);
	} else {
		r = x86_mem_wr(c, &mr, res);
		if (r)
			return r;
	}
	set_arith(c, X86_ARITH, cf | of << 11 | szp(res, sz));
	return next(c, i);
}

/* ---- Multiply and divide -------------------------------------------- */

enum { M_MUL, M_IMUL, M_DIV, M_IDIV };

static inline int64_t sext(uint64_t v, unsigned sz)
{
	unsigned sh = 64 - sz * 8;

	return (int64_t)(v << sh) >> sh;
}

/* One-operand MUL/IMUL/DIV/IDIV with rDX:rAX. */
static int h_muldiv(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz, bits = sz * 8;
	uint64_t m = szmask(sz), s, lo, hi, ax = c->gpr[X86_RAX];
	/* Byte operands use AH:AL instead of rDX:rAX. */
	uint64_t dx = sz == 1 ? (ax >> 8) & 0xff : c->gpr[X86_RDX] & m;
	int r;

	/* The operand is r/m: reuse src1 by viewing it as operand 1. */
	struct x86_insn t = *i;

	t.k[1] = i->k[0];
	t.r[1] = i->r[0];
	r = src1(c, &t, sz, &s);
	if (r)
		return r;
	ax &= m;
	switch (i->op) {
	case M_MUL: {
		unsigned __int128 p = (unsigned __int128)ax * s;

		lo = (uint64_t)p & m;
		hi = sz == 8 ? (uint64_t)(p >> 64) : (uint64_t)(p >> bits) & m;
		set_arith(c, X86_ARITH,
			  (hi ? X86_CF | X86_OF : 0) | szp(lo, sz));
		break;
	}
	case M_IMUL: {
		__int128 p = (__int128)sext(ax, sz) * sext(s, sz);

		lo = (uint64_t)p & m;
		hi = sz == 8 ? (uint64_t)(p >> 64) : (uint64_t)(p >> bits) & m;
		set_arith(c, X86_ARITH,
			  (p != sext(lo, sz) ? X86_CF | X86_OF : 0) |
				  szp(lo, sz));
		break;
	}
	case M_DIV: {
		unsigned __int128 n = ((unsigned __int128)dx << bits) | ax;
		unsigned __int128 q;

		/*
		 * SDM: #DE for a zero divisor and for a quotient that does not
		 * fit, raised before any register is written.
		 */
		if (!s)
			return x86_raise(c, X86_DE, false, 0);
		q = n / s;
		if (q > m)
			return x86_raise(c, X86_DE, false, 0);
		lo = (uint64_t)q;
		hi = (uint64_t)(n % s);
		break;
	}
	default: {
		__int128 n = (__int128)(((unsigned __int128)dx << bits) | ax);
		__int128 d = sext(s, sz), q;

		if (sz < 8)
			n = sext((uint64_t)n, sz * 2); /* from 2*bits */
		if (!d)
			return x86_raise(c, X86_DE, false, 0);
		if (d == -1) {
			/* -n overflows only where the quotient would. */
			if (sz == 8 &&
			    (uint64_t)(n >> 64) == 0x8000000000000000ull &&
			    (uint64_t)n == 0)
				return x86_raise(c, X86_DE, false, 0);
			q = -n;
		} else {
			q = n / d;
		}
		/*
		 * The signed quotient must fit the operand size, else #DE as
		 * well.
		 */
		if (q > (__int128)(m >> 1) || q < -(__int128)(m >> 1) - 1)
			return x86_raise(c, X86_DE, false, 0);
		lo = (uint64_t)q & m;
		hi = (uint64_t)(d == -1 ? 0 : n % d) & m;
		break;
	}
	}
	/*
	 * Byte forms: AL gets the low half (product or quotient), AH the
	 * high half (or the remainder).
	 */
	if (sz == 1) {
		wreg(c, X86_RAX, 2, (lo & 0xff) | (hi & 0xff) << 8);
	} else {
		wreg(c, X86_RAX, sz, lo);
		wreg(c, X86_RDX, sz, hi);
	}
	return next(c, i);
}

/* IMUL r, r/m [, imm]. */
static int h_imul(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	uint64_t a, b, lo;
	__int128 p;
	int r = src1(c, i, sz, &b);

	if (r)
		return r;
	a = i->k[2] == K_IMM ? (uint64_t)i->imm : rreg(c, i->r[0], sz);
	if (i->k[2] == K_IMM) {
		uint64_t t = a;

		a = b;
		b = t;
	}
	p = (__int128)sext(a, sz) * sext(b, sz);
	lo = (uint64_t)p & szmask(sz);
	wreg(c, i->r[0], sz, lo);
	set_arith(c, X86_ARITH,
		  (p != sext(lo, sz) ? X86_CF | X86_OF : 0) | szp(lo, sz));
	return next(c, i);
}

/* CBW/CWDE/CDQE (op 0) and CWD/CDQ/CQO (op 1). */
static int h_cext(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	uint64_t ax = c->gpr[X86_RAX];

	if (i->op == 0)
		wreg(c, X86_RAX, sz, (uint64_t)sext(ax, sz / 2));
	else
		wreg(c, X86_RDX, sz, sext(ax, sz) < 0 ? ~0ull : 0);
	return next(c, i);
}

/* ---- Bit operations ------------------------------------------------- */

enum { B_BT, B_BTS, B_BTR, B_BTC };

static int h_bt(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz, bits = sz * 8;
	uint64_t off, a, res, bit;
	struct x86_mref m;
	int r;

	if (i->k[1] == K_IMM)
		off = (uint64_t)i->imm & (bits - 1);
	else
		off = rreg(c, i->r[1], sz);
	/* A register operand takes the offset modulo its width. */
	if (i->k[0] == K_REG) {
		off &= bits - 1;
		a = rreg(c, i->r[0], sz);
	} else {
		/* A register bit offset reaches outside the operand. */
		uint64_t addr = x86_ea(c, i);

		/*
		 * A register offset is signed: it moves the address by whole
		 * operands, and only its low bits pick the bit within one.
		 */
		if (i->k[1] == K_REG) {
			addr += (uint64_t)(sext(off, sz) >>
					   __builtin_ctz(bits)) *
				sz;
			off &= bits - 1;
		}
		r = x86_mem_prep(c, addr, sz,
				 i->op == B_BT ? X86_ACC_READ
					       : X86_ACC_READ | X86_ACC_WRITE,
				 &m);
		if (r)
			return r;
		r = x86_mem_rd(c, &m, &a);
		if (r)
			return r;
	}
	bit = 1ull << off;
	res = i->op == B_BTS   ? a | bit
	      : i->op == B_BTR ? a & ~bit
	      : i->op == B_BTC ? a ^ bit
			       : a;
	if (i->op != B_BT) {
		if (i->k[0] == K_REG) {
			wreg(c, i->r[0], sz, res);
		} else if (lockable(i, &m)) {
			uint64_t seen = a;

			/*
			 * LOCK: flip the bit in whatever the CAS last saw, and
			 * take CF from that.
			 */
			while (!cas_v(m.p[0], sz, &seen,
				      i->op == B_BTS   ? seen | bit
				      : i->op == B_BTR ? seen & ~bit
						       : seen ^ bit))
				;
			a = seen;
		} else {
			r = x86_mem_wr(c, &m, res);
			if (r)
				return r;
		}
	}
	/*
	 * BT* set CF from the bit's old value; other flags are left as they
	 * were.
	 */
	set_arith(c, X86_CF, (a & bit) ? X86_CF : 0);
	return next(c, i);
}

enum { Q_BSF, Q_BSR, Q_TZCNT, Q_LZCNT, Q_POPCNT };

static int h_bitscan(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz, bits = sz * 8;
	uint64_t s, res;
	int r = src1(c, i, sz, &s);

	if (r)
		return r;
	switch (i->op) {
	case Q_BSF:
	case Q_BSR:
		if (!s) {
			/* Destination unchanged, as AMD documents. */
			set_arith(c, X86_ZF, X86_ZF);
			return next(c, i);
		}
		res = i->op == Q_BSF ? (uint64_t)__builtin_ctzll(s)
				     : (uint64_t)(63 - __builtin_clzll(s));
		wreg(c, i->r[0], sz, res);
		/*
		 * ZF clear, as a bit was found; the rest are undefined (SF and
		 * PF from the result, CF, OF and AF clear).
		 */
		set_arith(c, X86_ARITH, szp(res, sz) & ~X86_ZF);
		return next(c, i);
	case Q_TZCNT:
		/*
		 * TZCNT and LZCNT give the operand width for zero, with CF set.
		 */
		res = s ? (uint64_t)__builtin_ctzll(s) : bits;
		wreg(c, i->r[0], sz, res);
		set_arith(c, X86_CF | X86_ZF,
			  (s ? 0 : X86_CF) | (res ? 0 : X86_ZF));
		return next(c, i);
	case Q_LZCNT:
		res = s ? (uint64_t)(__builtin_clzll(s) - (64 - bits)) : bits;
		wreg(c, i->r[0], sz, res);
		set_arith(c, X86_CF | X86_ZF,
			  (s ? 0 : X86_CF) | (res ? 0 : X86_ZF));
		return next(c, i);
	default:
		res = __builtin_popcountll(s);
		wreg(c, i->r[0], sz, res);
		/* POPCNT clears every flag but ZF. */
		set_arith(c, X86_ARITH, s ? 0 : X86_ZF);
		return next(c, i);
	}
}

static int h_bswap(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t v = c->gpr[i->r[0]];

	if (i->osz == 8)
		c->gpr[i->r[0]] = __builtin_bswap64(v);
	else if (i->osz == 4)
		c->gpr[i->r[0]] = __builtin_bswap32((uint32_t)v);
	else
		wreg(c, i->r[0], 2, 0); /* undefined; zero as hardware does */
	return next(c, i);
}

/* MOVBE r, m / m, r. */
static int h_movbe(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	struct x86_mref m;
	uint64_t v;
	int r;

	r = x86_mem_prep(c, x86_ea(c, i), sz,
			 i->k[0] == K_MEM ? X86_ACC_WRITE : X86_ACC_READ, &m);
	if (r)
		return r;
	if (i->k[0] == K_MEM) {
		v = rreg(c, i->r[1], sz);
		v = sz == 8   ? __builtin_bswap64(v)
		    : sz == 4 ? __builtin_bswap32(v)
			      : __builtin_bswap16(v);
		r = x86_mem_wr(c, &m, v);
		if (r)
			return r;
		return next(c, i);
	}
	r = x86_mem_rd(c, &m, &v);
	if (r)
		return r;
	v = sz == 8   ? __builtin_bswap64(v)
	    : sz == 4 ? __builtin_bswap32(v)
		      : __builtin_bswap16(v);
	wreg(c, i->r[0], sz, v);
	return next(c, i);
}

/* BMI1: ANDN, BEXTR, BLSI, BLSMSK, BLSR (VEX, 3 operands). */
enum { V_ANDN, V_BEXTR, V_BLSI, V_BLSMSK, V_BLSR };

static int h_bmi(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz, bits = sz * 8;
	uint64_t m = szmask(sz), s, res, f = 0;
	int r;

	if (i->op == V_ANDN || i->op == V_BEXTR) {
		/* ANDN d, s1, s2/m; BEXTR d, s/m, ctl */
		struct x86_insn t = *i;

		t.k[1] = i->op == V_ANDN ? i->k[2] : i->k[1];
		t.r[1] = i->op == V_ANDN ? i->r[2] : i->r[1];
		r = src1(c, &t, sz, &s);
		if (r)
			return r;
		if (i->op == V_ANDN) {
			res = ~rreg(c, i->r[1], sz) & s & m;
		} else {
			uint64_t ctl = rreg(c, i->r[2], sz);
			unsigned st = ctl & 0xff, ln = (ctl >> 8) & 0xff;

			/*
			 * BEXTR: a start past the width gives 0, a length of 64
			 * or more is all.
			 */
			res = st < bits ? s >> st : 0;
			if (ln < 64)
				res &= (1ull << ln) - 1;
			res &= m;
		}
		/*
		 * SF of BEXTR is undefined (zero); ANDN sets it from the
		 * result.
		 */
		f = res ? 0 : X86_ZF;
		f |= (res >> (bits - 1) & 1) && i->op == V_ANDN ? X86_SF : 0;
	} else {
		/* BLS* d(vvvv), s/m */
		struct x86_insn t = *i;

		r = src1(c, &t, sz, &s);
		if (r)
			return r;
		if (i->op == V_BLSI)
			res = (-s) & s & m;
		else if (i->op == V_BLSMSK)
			res = (s ^ (s - 1)) & m;
		else
			res = (s & (s - 1)) & m;
		f = (res == 0 ? X86_ZF : 0) |
		    (res >> (bits - 1) & 1 ? X86_SF : 0);
		/*
		 * BLSI sets CF for a non-zero source, BLSMSK and BLSR for a
		 * zero one.
		 */
		if (i->op == V_BLSI)
			f |= s ? X86_CF : 0;
		else
			f |= s ? 0 : X86_CF;
	}
	wreg(c, i->r[0], sz, res);
	set_arith(c, X86_ARITH, f);
	return next(c, i);
}

/* ---- Control flow and the stack ------------------------------------- */

static int h_jcc(struct x86_cpu *c, const struct x86_insn *i)
{
	if (cond(c, i->op))
		c->rip += i->len + i->imm;
	else
		c->rip += i->len;
	return X86_OK;
}

static int h_setcc(struct x86_cpu *c, const struct x86_insn *i)
{
	struct x86_mref m;
	int r;

	if (i->k[0] == K_REG) {
		wreg(c, i->r[0], 1, cond(c, i->op));
		return next(c, i);
	}
	r = x86_mem_prep(c, x86_ea(c, i), 1, X86_ACC_WRITE, &m);
	if (r)
		return r;
	r = x86_mem_wr(c, &m, cond(c, i->op));
	if (r)
		return r;
	return next(c, i);
}

static int h_cmov(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t v;
	int r = src1(c, i, i->osz, &v); /* the source is always read */

	if (r)
		return r;
	/* A false condition with a 32-bit destination still zero-extends it. */
	if (cond(c, i->op))
		wreg(c, i->r[0], i->osz, v);
	else if (i->osz == 4)
		wreg(c, i->r[0], 4, c->gpr[i->r[0]]); /* zero-extends */
	return next(c, i);
}

/* JRCXZ (op 0), LOOP (1), LOOPE (2), LOOPNE (3). */
static int h_loop(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned asz = i->asz;
	uint64_t cx = rreg(c, X86_RCX, asz);
	bool take;

	if (i->op == 0) {
		take = cx == 0;
	} else {
		/*
		 * The counter is rCX at the address size, not the operand size.
		 */
		cx = (cx - 1) & szmask(asz);
		take = cx != 0;
		/* LOOPE also needs ZF set, LOOPNE ZF clear. */
		if (i->op == 2)
			take = take && cond(c, 4);
		else if (i->op == 3)
			take = take && cond(c, 5);
		wreg(c, X86_RCX, asz, cx);
	}
	c->rip += i->len + (take ? i->imm : 0);
	return X86_OK;
}

static inline int branch(struct x86_cpu *c, uint64_t target)
{
	/* SDM: a non-canonical target faults with RIP still at the branch. */
	if (unlikely(!x86_canonical(target)))
		return x86_gp0(c);
	c->rip = target;
	return X86_OK;
}

/* Target of a JMP/CALL: relative, register or memory. */
static inline int target(struct x86_cpu *c, const struct x86_insn *i,
			 uint64_t *t)
{
	if (i->k[0] == K_IMM) {
		*t = c->rip + i->len + i->imm;
		return X86_OK;
	}
	struct x86_insn s = *i;

	s.k[1] = i->k[0];
	s.r[1] = i->r[0];
	return src1(c, &s, 8, t);
}

static int h_jmp(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t t;
	int r = target(c, i, &t);

	if (r)
		return r;
	return branch(c, t);
}

static int h_jmp_rel(struct x86_cpu *c, const struct x86_insn *i)
{
	c->rip += i->len + i->imm;
	return X86_OK;
}

/*
 * Push @v of @sz bytes.  RSP moves only once the store has succeeded,
 * so a faulting push leaves it as it was.
 */
int x86_push(struct x86_cpu *c, uint64_t v, unsigned sz)
{
	struct x86_mref m;
	uint64_t sp = c->gpr[X86_RSP] - sz;
	int r = x86_mem_prep(c, sp, sz, X86_ACC_WRITE, &m);

	if (r)
		return r;
	r = x86_mem_wr(c, &m, v);
	if (r)
		return r;
	c->gpr[X86_RSP] = sp;
	return X86_OK;
}

static int h_call(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t t;
	int r = target(c, i, &t);

	if (r)
		return r;
	/* Checked before the push so that the #GP leaves RSP alone. */
	if (!x86_canonical(t))
		return x86_gp0(c);
	r = x86_push(c, c->rip + i->len, 8);
	if (r)
		return r;
	c->rip = t;
	return X86_OK;
}

static int h_ret(struct x86_cpu *c, const struct x86_insn *i)
{
	struct x86_mref m;
	uint64_t t;
	int r = x86_mem_prep(c, c->gpr[X86_RSP], 8, X86_ACC_READ, &m);

	if (r)
		return r;
	r = x86_mem_rd(c, &m, &t);
	if (r)
		return r;
	/* The return address is validated before RSP or RIP change. */
	if (!x86_canonical(t))
		return x86_gp0(c);
	/* RET imm16 also releases imm16 bytes of arguments. */
	c->gpr[X86_RSP] += 8 + (i->k[0] == K_IMM ? (uint16_t)i->imm : 0);
	c->rip = t;
	return X86_OK;
}

static int h_push(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	uint64_t v;
	int r;

	if (i->k[0] == K_REG && i->r[0] < 16)
		v = rreg(c, i->r[0], sz);
	else if (i->k[0] == K_IMM)
		v = i->imm;
	else if (i->k[0] == K_REG)
		return x86_ud(c);
	else {
		struct x86_insn s = *i;

		s.k[1] = K_MEM;
		r = src1(c, &s, sz, &v);
		if (r)
			return r;
	}
	r = x86_push(c, v, sz);
	if (r)
		return r;
	return next(c, i);
}

static int h_pop(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	uint64_t v, sp = c->gpr[X86_RSP];
	struct x86_mref m, d;
	int r;

	r = x86_mem_prep(c, sp, sz, X86_ACC_READ, &m);
	if (r)
		return r;
	if (i->k[0] == K_REG) {
		r = x86_mem_rd(c, &m, &v);
		if (r)
			return r;
		/* RSP first: for POP RSP the popped value must win. */
		c->gpr[X86_RSP] = sp + sz;
		wreg(c, i->r[0], sz, v);
		return next(c, i);
	}
	/* POP m: the address is computed with RSP already incremented. */
	c->gpr[X86_RSP] = sp + sz;
	r = x86_mem_prep(c, x86_ea(c, i), sz, X86_ACC_WRITE, &d);
	/*
	 * Restored until the copy has been made, so a fault leaves RSP intact.
	 */
	c->gpr[X86_RSP] = sp;
	if (r)
		return r;
	r = x86_mem_rd(c, &m, &v);
	if (r)
		return r;
	r = x86_mem_wr(c, &d, v);
	if (r)
		return r;
	c->gpr[X86_RSP] = sp + sz;
	return next(c, i);
}

static int h_leave(struct x86_cpu *c, const struct x86_insn *i)
{
	struct x86_mref m;
	uint64_t v, bp = c->gpr[X86_RBP];
	int r = x86_mem_prep(c, bp, 8, X86_ACC_READ, &m);

	if (r)
		return r;
	r = x86_mem_rd(c, &m, &v);
	if (r)
		return r;
	/* LEAVE is MOV RSP, RBP; POP RBP, with the read before either write. */
	c->gpr[X86_RSP] = bp + 8;
	c->gpr[X86_RBP] = v;
	return next(c, i);
}

static int h_pushf(struct x86_cpu *c, const struct x86_insn *i)
{
	/* SDM PUSHF: the image has RF and VM clear. */
	uint64_t f = x86_flags(c) & ~(uint64_t)(X86_RF | X86_VM);
	int r = x86_push(c, f, i->osz);

	if (r)
		return r;
	return next(c, i);
}

/* Flags POPF/IRET may change at the current privilege. */
uint64_t x86_popf_mask(const struct x86_cpu *c)
{
	/*
	 * SDM POPF: IOPL changes only at CPL 0 and IF only at CPL <= IOPL;
	 * VIP, VIF and VM are outside the mask, so POPF leaves them.
	 */
	uint64_t mask = X86_ARITH | X86_TF | X86_DF | X86_NT | X86_AC | X86_ID;
	unsigned iopl = (c->rflags & X86_IOPL) >> 12;

	if (c->cpl == 0)
		mask |= X86_IOPL;
	if (c->cpl <= iopl)
		mask |= X86_IF;
	return mask;
}

static int h_popf(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz;
	struct x86_mref m;
	uint64_t v, mask = x86_popf_mask(c);
	int r = x86_mem_prep(c, c->gpr[X86_RSP], sz, X86_ACC_READ, &m);

	if (r)
		return r;
	r = x86_mem_rd(c, &m, &v);
	if (r)
		return r;
	/* A 16-bit POPF changes only FLAGS, the low word. */
	if (sz == 2)
		mask &= 0xffff;
	c->gpr[X86_RSP] += sz;
	/* IF going up is what a waiting interrupt window needs to know. */
	if (unlikely(c->irq_window) && (v & mask & X86_IF))
		c->pending |= X86_PEND_EVENT;
	x86_set_flags(c, (x86_flags(c) & ~mask) | (v & mask));
	/* TF may have changed: re-check whether single-stepping applies. */
	x86_dbg_recheck(c);
	return next(c, i);
}

static int h_lahf(struct x86_cpu *c, const struct x86_insn *i)
{
	/* SF, ZF, AF, PF, CF into AH, with bit 1 set as it always reads. */
	wreg(c, 16 + X86_RAX, 1, (x86_flags(c) & 0xd5) | 2);
	return next(c, i);
}

static int h_sahf(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t ah = (c->gpr[X86_RAX] >> 8) & 0xd5;

	set_arith(c, X86_CF | X86_PF | X86_AF | X86_ZF | X86_SF, ah);
	return next(c, i);
}

/* CLC, STC, CMC, CLD, STD. */
enum { F_CLC, F_STC, F_CMC, F_CLD, F_STD };

static int h_flagop(struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t f = x86_flags(c);

	switch (i->op) {
	case F_CLC:
		f &= ~(uint64_t)X86_CF;
		break;
	case F_STC:
		f |= X86_CF;
		break;
	case F_CMC:
		f ^= X86_CF;
		break;
	case F_CLD:
		f &= ~(uint64_t)X86_DF;
		break;
	default:
		f |= X86_DF;
		break;
	}
	/* x86_flags() dropped the lazy record: rflags may be written as is. */
	c->rflags = f;
	return next(c, i);
}

static int h_nop(struct x86_cpu *c, const struct x86_insn *i)
{
	return next(c, i);
}

/*
 * MFENCE orders the guest's earlier stores before its later loads, which
 * the host's store buffer does not by itself (a Dekker-style handshake
 * between vCPUs needs it): the host's own MFENCE.  LFENCE and SFENCE need
 * nothing, as the model's plain loads and stores keep x86's load-load and
 * store-store order, and it has no non-temporal stores.
 */
static int h_mfence(struct x86_cpu *c, const struct x86_insn *i)
{
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	return next(c, i);
}

/* ---- String instructions -------------------------------------------- */

enum { STR_MOVS, STR_STOS, STR_LODS, STR_CMPS, STR_SCAS };

/*
 * Iterations of a REP string instruction done per dispatch: a long copy
 * is split so that the run loop can take interrupts, kicks and signals.
 */
#define REP_CHUNK 1024

static int h_string(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->osz, asz = i->asz;
	uint64_t am = szmask(asz);
	bool rep = i->pfx & (P_REP | P_REPNE);
	int64_t d = (x86_flags(c) & X86_DF) ? -(int64_t)sz : sz;
	/*
	 * Only the source has a segment: ES:rDI cannot be overridden, and
	 * ES is flat in long mode.
	 */
	uint64_t sbase = i->seg ? c->seg[i->seg].base : 0;
	unsigned n;
	int r;

	for (n = 0; n < REP_CHUNK; n++) {
		uint64_t si = c->gpr[X86_RSI] & am, di = c->gpr[X86_RDI] & am;
		struct x86_mref ms, md;
		uint64_t v, w;
		struct x86_lazy l;

		/*
		 * SDM: a count of 0 at the start does nothing, not even an
		 * access.
		 */
		if (rep && (c->gpr[X86_RCX] & am) == 0)
			break;
		switch (i->op) {
		case STR_MOVS:
			/*
			 * Both operands are translated before either is
			 * touched, so a fault on the destination leaves the
			 * source unread (an MMIO read unasked).
			 */
			r = x86_mem_prep(c, sbase + si, sz, X86_ACC_READ, &ms);
			if (!r)
				r = x86_mem_prep(c, di, sz, X86_ACC_WRITE, &md);
			if (!r)
				r = x86_mem_rd(c, &ms, &v);
			if (!r)
				r = x86_mem_wr(c, &md, v);
			if (r)
				return r;
			/*
			 * Registers advance per element: a fault or an MMIO
			 * stop part way leaves them at the next element, and
			 * running the instruction again resumes there, as an
			 * interrupted REP does on hardware.
			 */
			wreg(c, X86_RSI, asz, si + d);
			wreg(c, X86_RDI, asz, di + d);
			break;
		case STR_STOS:
			r = x86_mem_prep(c, di, sz, X86_ACC_WRITE, &md);
			if (!r)
				r = x86_mem_wr(c, &md, c->gpr[X86_RAX]);
			if (r)
				return r;
			wreg(c, X86_RDI, asz, di + d);
			break;
		case STR_LODS:
			r = x86_mem_prep(c, sbase + si, sz, X86_ACC_READ, &ms);
			if (!r)
				r = x86_mem_rd(c, &ms, &v);
			if (r)
				return r;
			wreg(c, X86_RAX, sz, v);
			wreg(c, X86_RSI, asz, si + d);
			break;
		case STR_CMPS:
			r = x86_mem_prep(c, sbase + si, sz, X86_ACC_READ, &ms);
			if (!r)
				r = x86_mem_prep(c, di, sz, X86_ACC_READ, &md);
			if (!r)
				r = x86_mem_rd(c, &ms, &v);
			if (!r)
				r = x86_mem_rd(c, &md, &w);
			if (r)
				return r;
			alu(c, OP_CMP, v, w, sz, &l);
			c->lf = l;
			wreg(c, X86_RSI, asz, si + d);
			wreg(c, X86_RDI, asz, di + d);
			break;
		default:
			r = x86_mem_prep(c, di, sz, X86_ACC_READ, &md);
			if (!r)
				r = x86_mem_rd(c, &md, &w);
			if (r)
				return r;
			alu(c, OP_CMP, rreg(c, X86_RAX, sz), w, sz, &l);
			c->lf = l;
			wreg(c, X86_RDI, asz, di + d);
			break;
		}
		if (!rep)
			return next(c, i);
		wreg(c, X86_RCX, asz, c->gpr[X86_RCX] - 1);
		/* REPE ends on a mismatch, REPNE on a match. */
		if (i->op == STR_CMPS || i->op == STR_SCAS) {
			bool zf = cond(c, 4);

			if ((i->pfx & P_REPNE) ? zf : !zf)
				return next(c, i);
		}
	}
	if (n < REP_CHUNK)
		return next(c, i);
	return X86_OK; /* more to do: RIP stays, run it again */
}

/* ---- Binding decoded instructions to handlers ----------------------- */

static bool gpr_operand(const ZydisDecodedOperand *o)
{
	ZydisRegisterClass cl = ZydisRegisterGetClass(o->reg.value);

	return cl == ZYDIS_REGCLASS_GPR8 || cl == ZYDIS_REGCLASS_GPR16 ||
	       cl == ZYDIS_REGCLASS_GPR32 || cl == ZYDIS_REGCLASS_GPR64;
}

/*
 * Pick the handler for a decoded instruction; returns non-zero for
 * anything the model does not implement (#UD).  Instructions with an XMM
 * operand, and the memory-only SSE ones, go to sse.c; other register
 * operands than GPRs to system.c, which refuses what it does not expect.
 */
int x86_bind(struct x86_insn *i, const void *zi, const void *zo)
{
	const ZydisDecodedInstruction *z = zi;
	const ZydisDecodedOperand *o = zo;
	bool rr, ri;
	int r;

	/*
	 * x87 escapes (D8-DF) and FWAIT go first: their operands are not GPRs.
	 */
	if (z->opcode_map == ZYDIS_OPCODE_MAP_DEFAULT &&
	    ((z->opcode & 0xf8) == 0xd8 || z->opcode == 0x9b))
		return x86_bind_x87(i, z, o);
	/* VEX with vector registers is avx.c's; BMI stays below. */
	if (z->encoding == ZYDIS_INSTRUCTION_ENCODING_VEX &&
	    (r = x86_bind_avx(i, z, o)) <= 0)
		return r;
	/*
	 * Visible operands only: hidden ones (RFLAGS, implicit registers)
	 * say nothing about which handler fits.
	 */
	for (unsigned n = 0; n < z->operand_count_visible && n < 3; n++) {
		if (o[n].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    ZydisRegisterGetClass(o[n].reg.value) == ZYDIS_REGCLASS_XMM)
			return x86_bind_sse(i, z, o);
		if (o[n].type == ZYDIS_OPERAND_TYPE_REGISTER &&
		    !gpr_operand(&o[n]))
			return x86_bind_system(i, z, o);
		/* Far pointers (JMP/CALL ptr16:xx) are not in 64-bit mode. */
		if (o[n].type == ZYDIS_OPERAND_TYPE_POINTER)
			return -1;
	}
	if (z->attributes & ZYDIS_ATTRIB_HAS_LOCK) {
		/* LOCK needs a memory destination (Zydis checks the op). */
		if (i->k[0] != K_MEM)
			return -1;
	}
	/*
	 * The fast handlers take only GPRs 0-15 (not AH-BH) of 32 or 64 bits,
	 * where the write is a plain store or a zero-extension.
	 */
	rr = i->k[0] == K_REG && i->k[1] == K_REG && i->r[0] < 16 &&
	     i->r[1] < 16 && i->osz >= 4;
	ri = i->k[0] == K_REG && i->k[1] == K_IMM && i->r[0] < 16 &&
	     i->osz >= 4;

	switch (z->mnemonic) {
	case ZYDIS_MNEMONIC_ADD:
		i->op = OP_ADD;
		goto alu;
	case ZYDIS_MNEMONIC_OR:
		i->op = OP_OR;
		goto alu;
	case ZYDIS_MNEMONIC_ADC:
		i->op = OP_ADC;
		goto alu;
	case ZYDIS_MNEMONIC_SBB:
		i->op = OP_SBB;
		goto alu;
	case ZYDIS_MNEMONIC_AND:
		i->op = OP_AND;
		goto alu;
	case ZYDIS_MNEMONIC_SUB:
		i->op = OP_SUB;
		goto alu;
	case ZYDIS_MNEMONIC_XOR:
		i->op = OP_XOR;
		goto alu;
	case ZYDIS_MNEMONIC_CMP:
		i->op = OP_CMP;
		goto alu;
	case ZYDIS_MNEMONIC_TEST:
		i->op = OP_TEST;
		if (i->k[1] == K_MEM) {
			/* TEST r, m is TEST m, r: flags do not care. */
			i->k[1] = i->k[0];
			i->r[1] = i->r[0];
			i->k[0] = K_MEM;
		}
	alu:
		if (rr || ri)
			i->fn = alu_h[i->op][i->osz == 8][ri];
		else
			i->fn = h_alu;
		return 0;
	case ZYDIS_MNEMONIC_INC:
		i->op = U_INC;
		goto unary;
	case ZYDIS_MNEMONIC_DEC:
		i->op = U_DEC;
		goto unary;
	case ZYDIS_MNEMONIC_NEG:
		i->op = U_NEG;
		goto unary;
	case ZYDIS_MNEMONIC_NOT:
		i->op = U_NOT;
	unary:
		i->fn = h_unary;
		return 0;
	case ZYDIS_MNEMONIC_MOV:
		if (rr && i->osz == 8)
			i->fn = h_mov_rr64;
		else if (rr)
			i->fn = h_mov_rr32;
		else if (i->k[0] == K_REG && i->k[1] == K_IMM)
			i->fn = h_mov_ri;
		else if (i->k[0] == K_REG && i->k[1] == K_MEM && i->r[0] < 16 &&
			 ea_form(i) >= 0)
			i->fn = load_h[ea_form(i)];
		else if (i->k[0] == K_MEM && i->k[1] == K_REG && i->r[1] < 16 &&
			 ea_form(i) >= 0)
			i->fn = store_h[ea_form(i)];
		else
			i->fn = h_mov;
		return 0;
	case ZYDIS_MNEMONIC_MOVZX:
	case ZYDIS_MNEMONIC_MOVSX:
	case ZYDIS_MNEMONIC_MOVSXD:
		/* i->op is 1 for the sign-extending forms. */
		i->op = z->mnemonic != ZYDIS_MNEMONIC_MOVZX;
		i->fn = h_movx;
		if (i->k[1] == K_MEM && ea_form(i) >= 0)
			i->fn = movx_h[ea_form(i)];
		else if (i->k[1] == K_REG)
			i->fn = h_movx_r;
		return 0;
	case ZYDIS_MNEMONIC_LEA:
		i->fn = h_lea;
		return 0;
	case ZYDIS_MNEMONIC_XCHG:
		i->fn = h_xchg;
		return 0;
	case ZYDIS_MNEMONIC_XADD:
		i->fn = h_xadd;
		return 0;
	case ZYDIS_MNEMONIC_CMPXCHG:
		i->fn = h_cmpxchg;
		return 0;
	case ZYDIS_MNEMONIC_ROL:
		i->op = S_ROL;
		goto shift;
	case ZYDIS_MNEMONIC_ROR:
		i->op = S_ROR;
		goto shift;
	case ZYDIS_MNEMONIC_RCL:
		i->op = S_RCL;
		goto shift;
	case ZYDIS_MNEMONIC_RCR:
		i->op = S_RCR;
		goto shift;
	case ZYDIS_MNEMONIC_SHL:
		i->op = S_SHL;
		goto shift;
	case ZYDIS_MNEMONIC_SHR:
		i->op = S_SHR;
		goto shift;
	case ZYDIS_MNEMONIC_SAR:
		i->op = S_SAR;
	shift:
		i->fn = h_shift;
		if (i->k[0] == K_REG && i->r[0] < 16 && i->k[1] == K_IMM &&
		    i->osz >= 4 && shift_h[i->op][i->osz == 8])
			i->fn = shift_h[i->op][i->osz == 8];
		return 0;
	case ZYDIS_MNEMONIC_SHLD:
		i->op = 0;
		i->fn = h_shd;
		return 0;
	case ZYDIS_MNEMONIC_SHRD:
		i->op = 1;
		i->fn = h_shd;
		return 0;
	case ZYDIS_MNEMONIC_MUL:
		i->op = M_MUL;
		goto muldiv;
	case ZYDIS_MNEMONIC_DIV:
		i->op = M_DIV;
		goto muldiv;
	case ZYDIS_MNEMONIC_IDIV:
		i->op = M_IDIV;
		goto muldiv;
	case ZYDIS_MNEMONIC_IMUL:
		/*
		 * The two- and three-operand forms write a single destination.
		 */
		if (z->operand_count_visible >= 2) {
			i->fn = h_imul;
			return 0;
		}
		i->op = M_IMUL;
	muldiv:
		i->fn = h_muldiv;
		return 0;
	case ZYDIS_MNEMONIC_CBW:
	case ZYDIS_MNEMONIC_CWDE:
	case ZYDIS_MNEMONIC_CDQE:
		i->op = 0;
		i->fn = h_cext;
		return 0;
	case ZYDIS_MNEMONIC_CWD:
	case ZYDIS_MNEMONIC_CDQ:
	case ZYDIS_MNEMONIC_CQO:
		i->op = 1;
		i->fn = h_cext;
		return 0;
	case ZYDIS_MNEMONIC_BT:
		i->op = B_BT;
		goto bt;
	case ZYDIS_MNEMONIC_BTS:
		i->op = B_BTS;
		goto bt;
	case ZYDIS_MNEMONIC_BTR:
		i->op = B_BTR;
		goto bt;
	case ZYDIS_MNEMONIC_BTC:
		i->op = B_BTC;
	bt:
		i->fn = h_bt;
		return 0;
	case ZYDIS_MNEMONIC_BSF:
		i->op = Q_BSF;
		goto scan;
	case ZYDIS_MNEMONIC_BSR:
		i->op = Q_BSR;
		goto scan;
	case ZYDIS_MNEMONIC_TZCNT:
		i->op = Q_TZCNT;
		goto scan;
	case ZYDIS_MNEMONIC_LZCNT:
		i->op = Q_LZCNT;
		goto scan;
	case ZYDIS_MNEMONIC_POPCNT:
		i->op = Q_POPCNT;
	scan:
		i->fn = h_bitscan;
		return 0;
	case ZYDIS_MNEMONIC_BSWAP:
		i->fn = h_bswap;
		return 0;
	case ZYDIS_MNEMONIC_MOVBE:
		i->fn = h_movbe;
		return 0;
	case ZYDIS_MNEMONIC_ANDN:
		i->op = V_ANDN;
		goto bmi;
	case ZYDIS_MNEMONIC_BEXTR:
		i->op = V_BEXTR;
		goto bmi;
	case ZYDIS_MNEMONIC_BLSI:
		i->op = V_BLSI;
		goto bmi;
	case ZYDIS_MNEMONIC_BLSMSK:
		i->op = V_BLSMSK;
		goto bmi;
	case ZYDIS_MNEMONIC_BLSR:
		i->op = V_BLSR;
	bmi:
		i->fn = h_bmi;
		return 0;
	case ZYDIS_MNEMONIC_JO:
	case ZYDIS_MNEMONIC_JNO:
	case ZYDIS_MNEMONIC_JB:
	case ZYDIS_MNEMONIC_JNB:
	case ZYDIS_MNEMONIC_JZ:
	case ZYDIS_MNEMONIC_JNZ:
	case ZYDIS_MNEMONIC_JBE:
	case ZYDIS_MNEMONIC_JNBE:
	case ZYDIS_MNEMONIC_JS:
	case ZYDIS_MNEMONIC_JNS:
	case ZYDIS_MNEMONIC_JP:
	case ZYDIS_MNEMONIC_JNP:
	case ZYDIS_MNEMONIC_JL:
	case ZYDIS_MNEMONIC_JNL:
	case ZYDIS_MNEMONIC_JLE:
	case ZYDIS_MNEMONIC_JNLE:
		/*
		 * The low nibble is the condition code in every
		 * Jcc/SETcc/CMOVcc form.
		 */
		i->op = z->opcode & 0xf;
		i->fn = h_jcc;
		return 0;
	case ZYDIS_MNEMONIC_SETO:
	case ZYDIS_MNEMONIC_SETNO:
	case ZYDIS_MNEMONIC_SETB:
	case ZYDIS_MNEMONIC_SETNB:
	case ZYDIS_MNEMONIC_SETZ:
	case ZYDIS_MNEMONIC_SETNZ:
	case ZYDIS_MNEMONIC_SETBE:
	case ZYDIS_MNEMONIC_SETNBE:
	case ZYDIS_MNEMONIC_SETS:
	case ZYDIS_MNEMONIC_SETNS:
	case ZYDIS_MNEMONIC_SETP:
	case ZYDIS_MNEMONIC_SETNP:
	case ZYDIS_MNEMONIC_SETL:
	case ZYDIS_MNEMONIC_SETNL:
	case ZYDIS_MNEMONIC_SETLE:
	case ZYDIS_MNEMONIC_SETNLE:
		i->op = z->opcode & 0xf;
		i->fn = h_setcc;
		return 0;
	case ZYDIS_MNEMONIC_CMOVO:
	case ZYDIS_MNEMONIC_CMOVNO:
	case ZYDIS_MNEMONIC_CMOVB:
	case ZYDIS_MNEMONIC_CMOVNB:
	case ZYDIS_MNEMONIC_CMOVZ:
	case ZYDIS_MNEMONIC_CMOVNZ:
	case ZYDIS_MNEMONIC_CMOVBE:
	case ZYDIS_MNEMONIC_CMOVNBE:
	case ZYDIS_MNEMONIC_CMOVS:
	case ZYDIS_MNEMONIC_CMOVNS:
	case ZYDIS_MNEMONIC_CMOVP:
	case ZYDIS_MNEMONIC_CMOVNP:
	case ZYDIS_MNEMONIC_CMOVL:
	case ZYDIS_MNEMONIC_CMOVNL:
	case ZYDIS_MNEMONIC_CMOVLE:
	case ZYDIS_MNEMONIC_CMOVNLE:
		i->op = z->opcode & 0xf;
		i->fn = h_cmov;
		return 0;
	case ZYDIS_MNEMONIC_JRCXZ:
	case ZYDIS_MNEMONIC_JECXZ:
		i->op = 0;
		i->fn = h_loop;
		return 0;
	case ZYDIS_MNEMONIC_LOOP:
		i->op = 1;
		i->fn = h_loop;
		return 0;
	case ZYDIS_MNEMONIC_LOOPE:
		i->op = 2;
		i->fn = h_loop;
		return 0;
	case ZYDIS_MNEMONIC_LOOPNE:
		i->op = 3;
		i->fn = h_loop;
		return 0;
	case ZYDIS_MNEMONIC_JMP:
		/*
		 * An indirect branch with a 16-bit operand (66h) is not
		 * modelled; 64-bit mode has no 32-bit one.
		 */
		if (i->osz != 8 && i->k[0] != K_IMM)
			return -1;
		i->fn = i->k[0] == K_IMM ? h_jmp_rel : h_jmp;
		return 0;
	case ZYDIS_MNEMONIC_CALL:
		if (i->osz != 8 && i->k[0] != K_IMM)
			return -1;
		i->fn = h_call;
		return 0;
	case ZYDIS_MNEMONIC_RET:
		/* Far RET switches CS: not modelled. */
		if (z->meta.branch_type == ZYDIS_BRANCH_TYPE_FAR)
			return -1;
		i->fn = h_ret;
		return 0;
	case ZYDIS_MNEMONIC_PUSH:
		i->fn = h_push;
		return 0;
	case ZYDIS_MNEMONIC_POP:
		i->fn = h_pop;
		return 0;
	case ZYDIS_MNEMONIC_LEAVE:
		i->fn = h_leave;
		return 0;
	case ZYDIS_MNEMONIC_PUSHF:
	case ZYDIS_MNEMONIC_PUSHFQ:
		i->fn = h_pushf;
		return 0;
	case ZYDIS_MNEMONIC_POPF:
	case ZYDIS_MNEMONIC_POPFQ:
		i->fn = h_popf;
		return 0;
	case ZYDIS_MNEMONIC_LAHF:
		i->fn = h_lahf;
		return 0;
	case ZYDIS_MNEMONIC_SAHF:
		i->fn = h_sahf;
		return 0;
	case ZYDIS_MNEMONIC_CLC:
		i->op = F_CLC;
		goto flagop;
	case ZYDIS_MNEMONIC_STC:
		i->op = F_STC;
		goto flagop;
	case ZYDIS_MNEMONIC_CMC:
		i->op = F_CMC;
		goto flagop;
	case ZYDIS_MNEMONIC_CLD:
		i->op = F_CLD;
		goto flagop;
	case ZYDIS_MNEMONIC_STD:
		i->op = F_STD;
	flagop:
		i->fn = h_flagop;
		return 0;
	case ZYDIS_MNEMONIC_MFENCE:
		i->fn = h_mfence;
		return 0;
	/*
	 * Hints and cache control change nothing architectural here, nor do
	 * LFENCE and SFENCE (see h_mfence()).
	 */
	case ZYDIS_MNEMONIC_NOP:
	case ZYDIS_MNEMONIC_ENDBR64:
	case ZYDIS_MNEMONIC_PAUSE:
	case ZYDIS_MNEMONIC_LFENCE:
	case ZYDIS_MNEMONIC_SFENCE:
	case ZYDIS_MNEMONIC_PREFETCH:
	case ZYDIS_MNEMONIC_PREFETCHW:
	case ZYDIS_MNEMONIC_PREFETCHNTA:
	case ZYDIS_MNEMONIC_PREFETCHT0:
	case ZYDIS_MNEMONIC_PREFETCHT1:
	case ZYDIS_MNEMONIC_PREFETCHT2:
	case ZYDIS_MNEMONIC_CLFLUSH:
	case ZYDIS_MNEMONIC_CLFLUSHOPT:
		i->fn = h_nop;
		return 0;
	case ZYDIS_MNEMONIC_MOVSB:
	case ZYDIS_MNEMONIC_MOVSW:
	case ZYDIS_MNEMONIC_MOVSD:
	case ZYDIS_MNEMONIC_MOVSQ:
		if (z->operand_count_visible) /* SSE MOVSD */
			return -1;
		i->op = STR_MOVS;
		goto string;
	case ZYDIS_MNEMONIC_STOSB:
	case ZYDIS_MNEMONIC_STOSW:
	case ZYDIS_MNEMONIC_STOSD:
	case ZYDIS_MNEMONIC_STOSQ:
		i->op = STR_STOS;
		goto string;
	case ZYDIS_MNEMONIC_LODSB:
	case ZYDIS_MNEMONIC_LODSW:
	case ZYDIS_MNEMONIC_LODSD:
	case ZYDIS_MNEMONIC_LODSQ:
		i->op = STR_LODS;
		goto string;
	case ZYDIS_MNEMONIC_CMPSB:
	case ZYDIS_MNEMONIC_CMPSW:
	case ZYDIS_MNEMONIC_CMPSD:
	case ZYDIS_MNEMONIC_CMPSQ:
		if (z->operand_count_visible) /* SSE CMPSD */
			return -1;
		i->op = STR_CMPS;
		goto string;
	case ZYDIS_MNEMONIC_SCASB:
	case ZYDIS_MNEMONIC_SCASW:
	case ZYDIS_MNEMONIC_SCASD:
	case ZYDIS_MNEMONIC_SCASQ:
		i->op = STR_SCAS;
	string:
		i->fn = h_string;
		return 0;
	case ZYDIS_MNEMONIC_CRC32:
	case ZYDIS_MNEMONIC_MOVNTI:
	case ZYDIS_MNEMONIC_CVTSS2SI: /* from memory: no XMM operand */
	case ZYDIS_MNEMONIC_CVTTSS2SI:
	case ZYDIS_MNEMONIC_CVTSD2SI:
	case ZYDIS_MNEMONIC_CVTTSD2SI:
	case ZYDIS_MNEMONIC_LDMXCSR:
	case ZYDIS_MNEMONIC_STMXCSR:
	case ZYDIS_MNEMONIC_FXSAVE:
	case ZYDIS_MNEMONIC_FXSAVE64:
	case ZYDIS_MNEMONIC_FXRSTOR:
	case ZYDIS_MNEMONIC_FXRSTOR64:
		return x86_bind_sse(i, z, o);
	default:
		return x86_bind_system(i, z, o);
	}
}
