// SPDX-License-Identifier: MIT
/*
 * SSE: the XMM registers and MXCSR, and SSE through SSE4.2 as CPUID
 * reports it (what -march=x86-64-v2 code runs): moves between XMM
 * registers, GPRs and memory, logic, integer arithmetic, compares, packs,
 * unpacks, shuffles, shifts, inserts and extracts; floating point, scalar
 * and packed, single and double (arithmetic, square roots, reciprocal
 * estimates, min/max, compares into masks and into EFLAGS, conversions,
 * rounding, dot products, horizontal and alternating add/subtract); the
 * SSE4.2 string compares, CRC32, MOVNTI and MASKMOVDQU; LDMXCSR, STMXCSR,
 * FXSAVE and FXRSTOR.  Floating point (and the string compares) run on
 * the host's SSE unit, see "Floating point" below.  x87 arithmetic and
 * MMX are not here and stay #UD; AVX's VEX forms are avx.c's, which runs
 * the VEX.128 ones on these handlers (P_VEX records).
 *
 * Records (struct x86_insn) of this file:
 *   r[n]  an XMM register as XMM_F | n, or a GPR 0-15 as elsewhere;
 *   ssz   size of the memory or GPR source (or destination of a store);
 *   op    the lane operation (enum sse_op; enum fp_op for h_fp; a
 *         sub-operation for the other floating-point handlers) or, for a
 *         store, the element;
 *   imm2  SSE_A16 when a 16-byte memory operand must be aligned.
 *
 * Every handler runs in integer.c's order, so that a fault leaves nothing
 * changed: #UD/#NM, then #GP(0) for a misaligned operand (checked on the
 * linear address before translation, as the SDM orders it), translation
 * of every byte (a 16-byte access may cross a page: both pages are
 * translated before anything is read or written), then the operation;
 * an unmasked SIMD floating-point exception it meets is #XM (#UD without
 * CR4.OSXMMEXCPT) with MXCSR's flags set and nothing else written, else
 * the results.
 */
#include <errno.h>

#include <Zydis/Zydis.h>

#include "x86/internal.h"

static inline int advance(struct x86_cpu *c, const struct x86_insn *i)
{
	c->rip += i->len;
	return X86_OK;
}

/*
 * CR0.EM or no CR4.OSFXSR: #UD; CR0.TS: #NM (SDM vol. 3, 13.4).  A VEX
 * form has AVX's rules instead.
 */
static inline int sse_avail(struct x86_cpu *c, const struct x86_insn *i)
{
	if (likely(!(c->cr0 & (X86_CR0_EM | X86_CR0_TS)) &&
		   (c->cr4 & X86_CR4_OSFXSR) && !(i->pfx & P_VEX)))
		return X86_OK;
	if (i->pfx & P_VEX)
		return x86_avx_avail(c);
	if ((c->cr0 & X86_CR0_EM) || !(c->cr4 & X86_CR4_OSFXSR))
		return x86_ud(c);
	return x86_raise(c, X86_NM, false, 0);
}

/* ---- Memory operands ------------------------------------------------ */

/* Translate @len bytes at @lin; 16-byte MMIO is not modelled. */
static int sse_prep(struct x86_cpu *c, uint64_t lin, unsigned len, unsigned acc,
		    struct x86_mref *m)
{
	int r = x86_mem_prep(c, lin, len, acc, m);

	if (r)
		return r;
	if (len == 16 && m->mmio)
		return x86_stop_internal(c, "16-byte SSE access to MMIO");
	return X86_OK;
}

/* The instruction's memory operand, with its alignment check. */
static int sse_mem(struct x86_cpu *c, const struct x86_insn *i, unsigned len,
		   unsigned acc, struct x86_mref *m)
{
	uint64_t a = x86_ea(c, i);

	if ((i->imm2 & SSE_A16) && (a & 15))
		return x86_gp0(c);
	return sse_prep(c, a, len, acc, m);
}

/*
 * 16 bytes as two 8-byte halves: each half of an aligned operand is an
 * atomic access like a GPR move's (see ld_le), which is as much as SSE
 * promises.
 */
static void rd16(const struct x86_mref *m, union x86_xmm *v)
{
	uint8_t buf[16];

	if (likely(m->n0 == 16)) {
		v->q[0] = ld_le(m->p[0], 8);
		v->q[1] = ld_le(m->p[0] + 8, 8);
		return;
	}
	memcpy(buf, m->p[0], m->n0);
	memcpy(buf + m->n0, m->p[1], 16 - m->n0);
	memcpy(v, buf, 16);
}

static void wr16(const struct x86_mref *m, const union x86_xmm *v)
{
	uint8_t buf[16];

	if (likely(m->n0 == 16)) {
		st_le(m->p[0], 8, v->q[0]);
		st_le(m->p[0] + 8, 8, v->q[1]);
		return;
	}
	memcpy(buf, v, 16);
	memcpy(m->p[0], buf, m->n0);
	memcpy(m->p[1], buf + m->n0, 16 - m->n0);
}

/* Source operand 1, zero-extended: XMM register, GPR or memory. */
static inline int sse_src(struct x86_cpu *c, const struct x86_insn *i,
			  union x86_xmm *s)
{
	struct x86_mref m;
	uint64_t v;
	int r;

	if (i->k[1] == K_REG) {
		if (i->r[1] & XMM_F) {
			*s = c->xmm[i->r[1] & 15];
			return X86_OK;
		}
		s->q[0] = rreg(c, i->r[1], i->ssz);
		s->q[1] = 0;
		return X86_OK;
	}
	if (i->k[1] != K_MEM) { /* shift by immediate */
		s->q[0] = s->q[1] = 0;
		return X86_OK;
	}
	r = sse_mem(c, i, i->ssz, X86_ACC_READ, &m);
	if (r)
		return r;
	if (i->ssz == 16) {
		rd16(&m, s);
		return X86_OK;
	}
	r = x86_mem_rd(c, &m, &v);
	if (r)
		return r;
	s->q[0] = v;
	s->q[1] = 0;
	return X86_OK;
}

/* ---- Lane operations: d = f(d, s, imm8) ----------------------------- */

typedef void sse_fn(union x86_xmm *d, const union x86_xmm *s, unsigned imm);

static inline int8_t sat_s8(int v)
{
	return v > 127 ? 127 : v < -128 ? -128 : v;
}

static inline uint8_t sat_u8(int v)
{
	return v > 255 ? 255 : v < 0 ? 0 : v;
}

static inline int16_t sat_s16(int v)
{
	return v > 32767 ? 32767 : v < -32768 ? -32768 : v;
}

static inline uint16_t sat_u16(int v)
{
	return v > 65535 ? 65535 : v < 0 ? 0 : v;
}

/* Lane by lane: d->f[k] = expr of A (d's lane) and B (s's lane). */
#define LANES(name, f, n, expr)                                         \
	static void op_##name(union x86_xmm *d, const union x86_xmm *s, \
			      unsigned imm)                             \
	{                                                               \
		for (unsigned k = 0; k < (n); k++)                      \
			d->f[k] = (expr);                               \
	}
#define A(f) (d->f[k])
#define B(f) (s->f[k])

static void op_mov(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	*d = *s;
}

static void op_merge32(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->d[0] = s->d[0];
}

static void op_merge64(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->q[0] = s->q[0];
}

static void op_zx64(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->q[0] = s->q[0];
	d->q[1] = 0;
}

/* MOVHPS/MOVHPD load, MOVLHPS. */
static void op_hi64(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->q[1] = s->q[0];
}

/* MOVHLPS. */
static void op_hilo(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->q[0] = s->q[1];
}

static void op_movddup(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->q[0] = d->q[1] = s->q[0];
}

static void op_movsldup(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->d[0] = d->d[1] = s->d[0];
	d->d[2] = d->d[3] = s->d[2];
}

static void op_movshdup(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->d[0] = d->d[1] = s->d[1];
	d->d[2] = d->d[3] = s->d[3];
}

LANES(and, q, 2, A(q) & B(q))
LANES(andn, q, 2, ~A(q) & B(q))
LANES(or, q, 2, A(q) | B(q))
LANES(xor, q, 2, A(q) ^ B(q))

LANES(paddb, b, 16, A(b) + B(b))
LANES(paddw, w, 8, A(w) + B(w))
LANES(paddd, d, 4, A(d) + B(d))
LANES(paddq, q, 2, A(q) + B(q))
LANES(psubb, b, 16, A(b) - B(b))
LANES(psubw, w, 8, A(w) - B(w))
LANES(psubd, d, 4, A(d) - B(d))
LANES(psubq, q, 2, A(q) - B(q))
LANES(paddsb, sb, 16, sat_s8(A(sb) + B(sb)))
LANES(paddsw, sw, 8, sat_s16(A(sw) + B(sw)))
LANES(paddusb, b, 16, sat_u8(A(b) + B(b)))
LANES(paddusw, w, 8, sat_u16(A(w) + B(w)))
LANES(psubsb, sb, 16, sat_s8(A(sb) - B(sb)))
LANES(psubsw, sw, 8, sat_s16(A(sw) - B(sw)))
LANES(psubusb, b, 16, sat_u8(A(b) - B(b)))
LANES(psubusw, w, 8, sat_u16(A(w) - B(w)))
LANES(pmullw, w, 8, (uint16_t)((int32_t)A(sw) * B(sw)))
LANES(pmulhw, w, 8, (uint16_t)(((int32_t)A(sw) * B(sw)) >> 16))
LANES(pmulhuw, w, 8, (uint16_t)(((uint32_t)A(w) * B(w)) >> 16))
LANES(pmulld, d, 4, (uint32_t)((int64_t)A(sd) * B(sd)))
LANES(pmulhrsw, w, 8, (uint16_t)(((((int32_t)A(sw) * B(sw)) >> 14) + 1) >> 1))
LANES(pavgb, b, 16, (A(b) + B(b) + 1) >> 1)
LANES(pavgw, w, 8, (A(w) + B(w) + 1) >> 1)

static void op_pmuludq(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->q[0] = (uint64_t)d->d[0] * s->d[0];
	d->q[1] = (uint64_t)d->d[2] * s->d[2];
}

static void op_pmuldq(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->sq[0] = (int64_t)d->sd[0] * s->sd[0];
	d->sq[1] = (int64_t)d->sd[2] * s->sd[2];
}

static void op_pmaddwd(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	/* Only -32768 * -32768 twice overflows: it wraps, as on hardware. */
	for (unsigned k = 0; k < 4; k++)
		d->d[k] = (uint32_t)((int64_t)d->sw[2 * k] * s->sw[2 * k] +
				     (int64_t)d->sw[2 * k + 1] *
					     s->sw[2 * k + 1]);
}

/* Unsigned bytes of the destination times signed bytes of the source. */
static void op_pmaddubsw(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	for (unsigned k = 0; k < 8; k++)
		d->sw[k] = sat_s16(d->b[2 * k] * s->sb[2 * k] +
				   d->b[2 * k + 1] * s->sb[2 * k + 1]);
}

static void op_psadbw(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	for (unsigned h = 0; h < 2; h++) {
		unsigned sum = 0;

		for (unsigned k = 8 * h; k < 8 * h + 8; k++)
			sum += d->b[k] > s->b[k] ? d->b[k] - s->b[k]
						 : s->b[k] - d->b[k];
		d->q[h] = sum;
	}
}

LANES(pcmpeqb, b, 16, A(b) == B(b) ? 0xff : 0)
LANES(pcmpeqw, w, 8, A(w) == B(w) ? 0xffff : 0)
LANES(pcmpeqd, d, 4, A(d) == B(d) ? ~0u : 0)
LANES(pcmpeqq, q, 2, A(q) == B(q) ? ~0ull : 0)
LANES(pcmpgtb, b, 16, A(sb) > B(sb) ? 0xff : 0)
LANES(pcmpgtw, w, 8, A(sw) > B(sw) ? 0xffff : 0)
LANES(pcmpgtd, d, 4, A(sd) > B(sd) ? ~0u : 0)
LANES(pcmpgtq, q, 2, A(sq) > B(sq) ? ~0ull : 0)

LANES(pminub, b, 16, MIN(A(b), B(b)))
LANES(pmaxub, b, 16, MAX(A(b), B(b)))
LANES(pminuw, w, 8, MIN(A(w), B(w)))
LANES(pmaxuw, w, 8, MAX(A(w), B(w)))
LANES(pminud, d, 4, MIN(A(d), B(d)))
LANES(pmaxud, d, 4, MAX(A(d), B(d)))
LANES(pminsb, sb, 16, MIN(A(sb), B(sb)))
LANES(pmaxsb, sb, 16, MAX(A(sb), B(sb)))
LANES(pminsw, sw, 8, MIN(A(sw), B(sw)))
LANES(pmaxsw, sw, 8, MAX(A(sw), B(sw)))
LANES(pminsd, sd, 4, MIN(A(sd), B(sd)))
LANES(pmaxsd, sd, 4, MAX(A(sd), B(sd)))

/* Absolute values as unsigned lanes: the most negative stays itself. */
LANES(pabsb, b, 16, B(sb) < 0 ? -(unsigned)B(sb) : (unsigned)B(sb))
LANES(pabsw, w, 8, B(sw) < 0 ? -(unsigned)B(sw) : (unsigned)B(sw))
LANES(pabsd, d, 4, B(sd) < 0 ? -(uint32_t)B(sd) : (uint32_t)B(sd))
LANES(psignb, b, 16, B(sb) < 0 ? -(unsigned)A(b) : B(sb) ? A(b) : 0)
LANES(psignw, w, 8, B(sw) < 0 ? -(unsigned)A(w) : B(sw) ? A(w) : 0)
LANES(psignd, d, 4, B(sd) < 0 ? -A(d) : B(sd) ? A(d) : 0)

/* Horizontal pairs: the low half of the result from d, the high from s. */
#define HORIZ(name, f, n, T, expr)                                      \
	static void op_##name(union x86_xmm *d, const union x86_xmm *s, \
			      unsigned imm)                             \
	{                                                               \
		union x86_xmm r;                                        \
                                                                        \
		for (unsigned k = 0; k < (n) / 2; k++) {                \
			T a = d->f[2 * k], b = d->f[2 * k + 1];         \
			r.f[k] = (expr);                                \
			a = s->f[2 * k];                                \
			b = s->f[2 * k + 1];                            \
			r.f[k + (n) / 2] = (expr);                      \
		}                                                       \
		*d = r;                                                 \
	}

HORIZ(phaddw, w, 8, uint16_t, a + b)
HORIZ(phaddd, d, 4, uint32_t, a + b)
HORIZ(phaddsw, sw, 8, int16_t, sat_s16(a + b))
HORIZ(phsubw, w, 8, uint16_t, a - b)
HORIZ(phsubd, d, 4, uint32_t, a - b)
HORIZ(phsubsw, sw, 8, int16_t, sat_s16(a - b))

static void op_phminposuw(union x86_xmm *d, const union x86_xmm *s,
			  unsigned imm)
{
	unsigned m = 0;

	for (unsigned k = 1; k < 8; k++)
		if (s->w[k] < s->w[m])
			m = k;
	d->q[0] = s->w[m] | (uint64_t)m << 16;
	d->q[1] = 0;
}

/*
 * MPSADBW: eight sums of absolute differences between the 4 bytes of s at
 * imm8[1:0] * 4 and the bytes of d from imm8[2] * 4 + k, k = 0..7.
 */
static void op_mpsadbw(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	unsigned a = (imm >> 2 & 1) * 4, b = (imm & 3) * 4;
	union x86_xmm r;

	for (unsigned k = 0; k < 8; k++) {
		unsigned sum = 0;

		for (unsigned t = 0; t < 4; t++)
			sum += d->b[a + k + t] > s->b[b + t]
				       ? d->b[a + k + t] - s->b[b + t]
				       : s->b[b + t] - d->b[a + k + t];
		r.w[k] = sum;
	}
	*d = r;
}

/* Packs: d's lanes narrowed into the low half, s's into the high. */
#define PACK(name, fi, fo, n, sat)                                      \
	static void op_##name(union x86_xmm *d, const union x86_xmm *s, \
			      unsigned imm)                             \
	{                                                               \
		union x86_xmm r;                                        \
                                                                        \
		for (unsigned k = 0; k < (n); k++) {                    \
			r.fo[k] = sat(d->fi[k]);                        \
			r.fo[k + (n)] = sat(s->fi[k]);                  \
		}                                                       \
		*d = r;                                                 \
	}

PACK(packsswb, sw, sb, 8, sat_s8)
PACK(packuswb, sw, b, 8, sat_u8)
PACK(packssdw, sd, sw, 4, sat_s16)
PACK(packusdw, sd, w, 4, sat_u16)

/* Interleave the low (or high) lanes of d and s, lane size @sz bytes. */
static inline void unpack(union x86_xmm *d, const union x86_xmm *s, unsigned sz,
			  bool hi)
{
	union x86_xmm r;
	unsigned n = 8 / sz, base = hi ? 8 : 0;

	for (unsigned k = 0; k < n; k++) {
		memcpy(&r.b[2 * k * sz], &d->b[base + k * sz], sz);
		memcpy(&r.b[(2 * k + 1) * sz], &s->b[base + k * sz], sz);
	}
	*d = r;
}

#define UNPACK(name, sz, hi)                                            \
	static void op_##name(union x86_xmm *d, const union x86_xmm *s, \
			      unsigned imm)                             \
	{                                                               \
		unpack(d, s, sz, hi);                                   \
	}

UNPACK(punpcklbw, 1, false)
UNPACK(punpcklwd, 2, false)
UNPACK(punpckldq, 4, false)
UNPACK(punpcklqdq, 8, false)
UNPACK(punpckhbw, 1, true)
UNPACK(punpckhwd, 2, true)
UNPACK(punpckhdq, 4, true)
UNPACK(punpckhqdq, 8, true)

static void op_pshufd(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	for (unsigned k = 0; k < 4; k++)
		d->d[k] = s->d[(imm >> 2 * k) & 3];
}

static void op_pshuflw(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	for (unsigned k = 0; k < 4; k++)
		d->w[k] = s->w[(imm >> 2 * k) & 3];
	d->q[1] = s->q[1];
}

static void op_pshufhw(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	for (unsigned k = 0; k < 4; k++)
		d->w[4 + k] = s->w[4 + ((imm >> 2 * k) & 3)];
	d->q[0] = s->q[0];
}

static void op_pshufb(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	union x86_xmm r;

	for (unsigned k = 0; k < 16; k++)
		r.b[k] = (s->b[k] & 0x80) ? 0 : d->b[s->b[k] & 15];
	*d = r;
}

/* (d:s) >> imm8 bytes, the low 16 bytes. */
static void op_palignr(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	uint8_t t[32];

	memcpy(t, s, 16);
	memcpy(t + 16, d, 16);
	for (unsigned k = 0; k < 16; k++)
		d->b[k] = k + imm < 32 ? t[k + imm] : 0;
}

static void op_shufps(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	union x86_xmm r;

	r.d[0] = d->d[imm & 3];
	r.d[1] = d->d[(imm >> 2) & 3];
	r.d[2] = s->d[(imm >> 4) & 3];
	r.d[3] = s->d[(imm >> 6) & 3];
	*d = r;
}

static void op_shufpd(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	union x86_xmm r;

	r.q[0] = d->q[imm & 1];
	r.q[1] = s->q[(imm >> 1) & 1];
	*d = r;
}

LANES(pblendw, w, 8, (imm >> k) & 1 ? B(w) : A(w))
LANES(blendps, d, 4, (imm >> k) & 1 ? B(d) : A(d))
LANES(blendpd, q, 2, (imm >> k) & 1 ? B(q) : A(q))

/* INSERTPS from a register (source lane in imm[7:6]) or from m32. */
static void insertps(union x86_xmm *d, uint32_t v, unsigned imm)
{
	d->d[(imm >> 4) & 3] = v;
	for (unsigned k = 0; k < 4; k++)
		if ((imm >> k) & 1)
			d->d[k] = 0;
}

static void op_insertps_r(union x86_xmm *d, const union x86_xmm *s,
			  unsigned imm)
{
	insertps(d, s->d[(imm >> 6) & 3], imm);
}

static void op_insertps_m(union x86_xmm *d, const union x86_xmm *s,
			  unsigned imm)
{
	insertps(d, s->d[0], imm);
}

/* PINSR*: the source is zero-extended in s's lane 0. */
static void op_pinsrb(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->b[imm & 15] = s->b[0];
}

static void op_pinsrw(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->w[imm & 7] = s->w[0];
}

static void op_pinsrd(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->d[imm & 3] = s->d[0];
}

static void op_pinsrq(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	d->q[imm & 1] = s->q[0];
}

/* PMOVZX/PMOVSX: widen the low lanes of s. */
#define PMOVX(name, fi, fo, n)                                          \
	static void op_##name(union x86_xmm *d, const union x86_xmm *s, \
			      unsigned imm)                             \
	{                                                               \
		union x86_xmm r;                                        \
                                                                        \
		for (unsigned k = 0; k < (n); k++)                      \
			r.fo[k] = s->fi[k];                             \
		*d = r;                                                 \
	}

PMOVX(pmovzxbw, b, w, 8)
PMOVX(pmovzxbd, b, d, 4)
PMOVX(pmovzxbq, b, q, 2)
PMOVX(pmovzxwd, w, d, 4)
PMOVX(pmovzxwq, w, q, 2)
PMOVX(pmovzxdq, d, q, 2)
PMOVX(pmovsxbw, sb, sw, 8)
PMOVX(pmovsxbd, sb, sd, 4)
PMOVX(pmovsxbq, sb, sq, 2)
PMOVX(pmovsxwd, sw, sd, 4)
PMOVX(pmovsxwq, sw, sq, 2)
PMOVX(pmovsxdq, sd, sq, 2)

/*
 * Shifts by an immediate (_i) or by the low quadword of s (_x): counts
 * beyond the lane width give 0, or the sign for arithmetic shifts.
 */
#define SHIFT(name, f, n, expr)                                             \
	static void name##_n(union x86_xmm *d, uint64_t c)                  \
	{                                                                   \
		for (unsigned k = 0; k < (n); k++)                          \
			d->f[k] = (expr);                                   \
	}                                                                   \
	static void op_##name##_i(union x86_xmm *d, const union x86_xmm *s, \
				  unsigned imm)                             \
	{                                                                   \
		name##_n(d, imm);                                           \
	}                                                                   \
	static void op_##name##_x(union x86_xmm *d, const union x86_xmm *s, \
				  unsigned imm)                             \
	{                                                                   \
		name##_n(d, s->q[0]);                                       \
	}

SHIFT(psllw, w, 8, c > 15 ? 0 : (uint16_t)(A(w) << c))
SHIFT(pslld, d, 4, c > 31 ? 0 : A(d) << c)
SHIFT(psllq, q, 2, c > 63 ? 0 : A(q) << c)
SHIFT(psrlw, w, 8, c > 15 ? 0 : A(w) >> c)
SHIFT(psrld, d, 4, c > 31 ? 0 : A(d) >> c)
SHIFT(psrlq, q, 2, c > 63 ? 0 : A(q) >> c)
SHIFT(psraw, sw, 8, A(sw) >> (c > 15 ? 15 : c))
SHIFT(psrad, sd, 4, A(sd) >> (c > 31 ? 31 : c))

static void op_pslldq(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	union x86_xmm r;

	for (unsigned k = 0; k < 16; k++)
		r.b[k] = k >= imm ? d->b[k - imm] : 0;
	*d = r;
}

static void op_psrldq(union x86_xmm *d, const union x86_xmm *s, unsigned imm)
{
	union x86_xmm r;

	for (unsigned k = 0; k < 16; k++)
		r.b[k] = k + imm < 16 ? d->b[k + imm] : 0;
	*d = r;
}

/* The operation table, indexed by x86_insn.op. */
/* clang-format off */
#define SSE_OPS(X)                                                           \
	X(mov) X(merge32) X(merge64) X(zx64) X(hi64) X(hilo) X(movddup)      \
	X(movsldup) X(movshdup) X(and) X(andn) X(or) X(xor) X(paddb)         \
	X(paddw) X(paddd) X(paddq) X(psubb) X(psubw) X(psubd) X(psubq)       \
	X(paddsb) X(paddsw) X(paddusb) X(paddusw) X(psubsb) X(psubsw)        \
	X(psubusb) X(psubusw) X(pmullw) X(pmulhw) X(pmulhuw) X(pmulld)       \
	X(pmulhrsw) X(pavgb) X(pavgw) X(pmuludq) X(pmuldq) X(pmaddwd)        \
	X(pmaddubsw) X(psadbw) X(pcmpeqb) X(pcmpeqw) X(pcmpeqd) X(pcmpeqq)   \
	X(pcmpgtb) X(pcmpgtw) X(pcmpgtd) X(pcmpgtq) X(pminub) X(pmaxub)      \
	X(pminuw) X(pmaxuw) X(pminud) X(pmaxud) X(pminsb) X(pmaxsb)          \
	X(pminsw) X(pmaxsw) X(pminsd) X(pmaxsd) X(pabsb) X(pabsw) X(pabsd)   \
	X(psignb) X(psignw) X(psignd) X(phaddw) X(phaddd) X(phaddsw)         \
	X(phsubw) X(phsubd) X(phsubsw) X(phminposuw) X(packsswb)             \
	X(packuswb) X(packssdw) X(packusdw) X(punpcklbw) X(punpcklwd)        \
	X(punpckldq) X(punpcklqdq) X(punpckhbw) X(punpckhwd) X(punpckhdq)    \
	X(punpckhqdq) X(pshufd) X(pshuflw) X(pshufhw) X(pshufb) X(palignr)   \
	X(shufps) X(shufpd) X(pblendw) X(blendps) X(blendpd) X(insertps_r)   \
	X(insertps_m) X(pinsrb) X(pinsrw) X(pinsrd) X(pinsrq) X(pmovzxbw)    \
	X(pmovzxbd) X(pmovzxbq) X(pmovzxwd) X(pmovzxwq) X(pmovzxdq)          \
	X(pmovsxbw) X(pmovsxbd) X(pmovsxbq) X(pmovsxwd) X(pmovsxwq)          \
	X(pmovsxdq) X(psllw_i) X(pslld_i) X(psllq_i) X(psrlw_i) X(psrld_i)   \
	X(psrlq_i) X(psraw_i) X(psrad_i) X(psllw_x) X(pslld_x) X(psllq_x)    \
	X(psrlw_x) X(psrld_x) X(psrlq_x) X(psraw_x) X(psrad_x) X(pslldq)     \
	X(psrldq) X(mpsadbw)
/* clang-format on */

#define SO_ENUM(n) SO_##n,
enum sse_op { SSE_OPS(SO_ENUM) SO_COUNT };
#define SO_FN(n) op_##n,
static sse_fn *const sse_ops[] = {SSE_OPS(SO_FN)};

_Static_assert(SO_COUNT <= 256, "x86_insn.op is 8 bits");

/* ---- Handlers ------------------------------------------------------- */

/* The first source: the destination, or VEX.vvvv's register. */
static inline unsigned src1(const struct x86_insn *i)
{
	return (i->pfx & P_VEX ? i->r[2] : i->r[0]) & 15;
}

/* A VEX.128 form clears bits 255:128 of its XMM destination. */
static inline void vex_zero(struct x86_cpu *c, const struct x86_insn *i,
			    unsigned r)
{
	if (unlikely(i->pfx & P_VEX))
		memset(&c->ymmh[r & 15], 0, sizeof(c->ymmh[0]));
}

/* XMM destination: d = op(d, source, imm8). */
static int h_sse(struct x86_cpu *c, const struct x86_insn *i)
{
	union x86_xmm s, d;
	int r = sse_avail(c, i);

	if (!r)
		r = sse_src(c, i, &s);
	if (r)
		return r;
	d = c->xmm[src1(i)];
	sse_ops[i->op](&d, &s, (uint8_t)i->imm);
	c->xmm[i->r[0] & 15] = d;
	vex_zero(c, i, i->r[0]);
	return advance(c, i);
}

/* Element op of size ssz from XMM r[1] to memory or a GPR (zero-extended). */
static int h_sse_store(struct x86_cpu *c, const struct x86_insn *i)
{
	const union x86_xmm *x = &c->xmm[i->r[1] & 15];
	unsigned sz = i->ssz;
	struct x86_mref m;
	uint64_t v;
	int r = sse_avail(c, i);

	if (r)
		return r;
	switch (sz) {
	case 1:
		v = x->b[i->op];
		break;
	case 2:
		v = x->w[i->op];
		break;
	case 4:
		v = x->d[i->op];
		break;
	case 8:
		v = x->q[i->op];
		break;
	default:
		r = sse_mem(c, i, 16, X86_ACC_WRITE, &m);
		if (r)
			return r;
		wr16(&m, x);
		return advance(c, i);
	}
	if (i->k[0] == K_REG) {
		c->gpr[i->r[0]] = v;
		return advance(c, i);
	}
	r = sse_mem(c, i, sz, X86_ACC_WRITE, &m);
	if (!r)
		r = x86_mem_wr(c, &m, v);
	if (r)
		return r;
	return advance(c, i);
}

/* PMOVMSKB, MOVMSKPS, MOVMSKPD: sign bits of lanes of ssz bytes. */
static int h_sse_movmsk(struct x86_cpu *c, const struct x86_insn *i)
{
	const union x86_xmm *x = &c->xmm[i->r[1] & 15];
	unsigned sz = i->ssz;
	uint64_t v = 0;
	int r = sse_avail(c, i);

	if (r)
		return r;
	for (unsigned k = 0; k < 16 / sz; k++)
		v |= (uint64_t)(x->b[k * sz + sz - 1] >> 7) << k;
	c->gpr[i->r[0]] = v;
	return advance(c, i);
}

/* PTEST: ZF = !(d & s), CF = !(~d & s), the other arithmetic flags 0. */
static int h_ptest(struct x86_cpu *c, const struct x86_insn *i)
{
	const union x86_xmm *d = &c->xmm[i->r[0] & 15];
	union x86_xmm s;
	uint64_t f;
	int r = sse_avail(c, i);

	if (!r)
		r = sse_src(c, i, &s);
	if (r)
		return r;
	f = x86_flags(c) & ~(uint64_t)X86_ARITH;
	if (!((d->q[0] & s.q[0]) | (d->q[1] & s.q[1])))
		f |= X86_ZF;
	if (!((~d->q[0] & s.q[0]) | (~d->q[1] & s.q[1])))
		f |= X86_CF;
	x86_set_flags(c, f);
	return advance(c, i);
}

/*
 * PBLENDVB, BLENDVPS, BLENDVPD: XMM0's lane sign bits pick s (the VEX
 * forms' mask is the register in imm8[7:4]).
 */
static int h_blendv(struct x86_cpu *c, const struct x86_insn *i)
{
	union x86_xmm s, d = c->xmm[src1(i)], mask;
	unsigned sz = i->op;
	int r = sse_avail(c, i);

	if (!r)
		r = sse_src(c, i, &s);
	if (r)
		return r;
	mask = c->xmm[i->pfx & P_VEX ? (i->imm >> 4) & 15 : 0];
	for (unsigned k = 0; k < 16; k += sz)
		if (mask.b[k + sz - 1] & 0x80)
			memcpy(&d.b[k], &s.b[k], sz);
	c->xmm[i->r[0] & 15] = d;
	vex_zero(c, i, i->r[0]);
	return advance(c, i);
}

/* ---- Floating point ------------------------------------------------- */

/*
 * Floating-point results come from the host processor: each operation
 * runs there as the same instruction, under the guest's MXCSR with every
 * exception masked, and the flags it raised are read back.  That makes
 * results, rounding, DAZ/FTZ, NaN propagation and the approximations of
 * RCPPS/RSQRTPS those of real hardware (the host's, which is what a guest
 * under KVM gets too).  Nothing but the instruction itself runs between
 * loading the guest's MXCSR and restoring the host's: both sit in the
 * same asm statement.
 *
 * An unmasked exception then follows the SDM's two steps (vol. 1,
 * 11.5.2): if a pre-computation exception (invalid, denormal, divide by
 * zero) is unmasked, only those flags are set, for every lane; otherwise
 * the post-computation flags are set too.  Either way the destination is
 * not written and #XM (or #UD without CR4.OSXMMEXCPT) is raised.  Where
 * the unmasked response differs from the masked one (overflow, underflow,
 * the steps of DPPS/DPPD), fp_exact_flags() works it out.
 */
#define MX_PRE 0x07 /* IE DE ZE */
#define MX_OE 0x08
#define MX_UE 0x10
#define MX_PE 0x20
#define MX_FLAGS 0x3f
#define MX_MASKS 0x1f80
#define MX_FTZ 0x8000

typedef long long v128 __attribute__((vector_size(16)));

static inline v128 ldv(const union x86_xmm *x)
{
	v128 v;

	memcpy(&v, x, 16);
	return v;
}

static inline void stv(union x86_xmm *x, v128 v)
{
	memcpy(x, &v, 16);
}

/* Load *mx, run the instruction, store the resulting MXCSR in *mx. */
#define FP_IN "stmxcsr %[sv]\n\tldmxcsr %[mx]\n\t"
#define FP_OUT "\n\tstmxcsr %[mx]\n\tldmxcsr %[sv]"
#define FP_MX [sv] "=m"(sv), [mx] "+m"(*mx)

typedef void fp_fn(union x86_xmm *d, const union x86_xmm *s, unsigned imm,
		   uint32_t *mx);

/* d = insn(d, s): arithmetic, conversions, horizontal ops. */
#define FP_XX(name)                                                     \
	static void fp_##name(union x86_xmm *d, const union x86_xmm *s, \
			      unsigned imm, uint32_t *mx)               \
	{                                                               \
		v128 x = ldv(d), y = ldv(s);                            \
		uint32_t sv;                                            \
                                                                        \
		__asm__ volatile(FP_IN #name " %[y], %[x]" FP_OUT       \
				 : [x] "+x"(x), FP_MX                   \
				 : [y] "x"(y));                         \
		stv(d, x);                                              \
	}

/* One case of an immediate form, the immediate as a constant. */
#define FP_CASE(insn, n)                                               \
	case (n):                                                      \
		__asm__ volatile(FP_IN insn " %[i], %[y], %[x]" FP_OUT \
				 : [x] "+x"(x), FP_MX                  \
				 : [y] "x"(y), [i] "i"(n));            \
		break;

#define R4(f, b) f(b) f((b) + 1) f((b) + 2) f((b) + 3)
#define R16(f, b) R4(f, b) R4(f, (b) + 4) R4(f, (b) + 8) R4(f, (b) + 12)
#define R64(f, b) R16(f, b) R16(f, (b) + 16) R16(f, (b) + 32) R16(f, (b) + 48)
#define R256(f) R64(f, 0) R64(f, 64) R64(f, 128) R64(f, 192)

/* d = insn(d, s, imm8 & mask), for every value of the used bits. */
#define FP_XXI(name, mask, reps)                                        \
	static void fp_##name(union x86_xmm *d, const union x86_xmm *s, \
			      unsigned imm, uint32_t *mx)               \
	{                                                               \
		v128 x = ldv(d), y = ldv(s);                            \
		uint32_t sv;                                            \
                                                                        \
		switch (imm & (mask)) {                                 \
			reps                                            \
		}                                                       \
		stv(d, x);                                              \
	}

/* CMPxx: predicates 0-7 (legacy SSE uses imm8[2:0]). */
#define C_CMPPS(n) FP_CASE("cmpps", n)
#define C_CMPPD(n) FP_CASE("cmppd", n)
#define C_CMPSS(n) FP_CASE("cmpss", n)
#define C_CMPSD(n) FP_CASE("cmpsd", n)
/* ROUNDxx: imm8[3:0]. */
#define C_ROUNDPS(n) FP_CASE("roundps", n)
#define C_ROUNDPD(n) FP_CASE("roundpd", n)
#define C_ROUNDSS(n) FP_CASE("roundss", n)
#define C_ROUNDSD(n) FP_CASE("roundsd", n)
/* DPPS: all eight bits; DPPD: imm8[5:4] and [1:0]. */
#define C_DPPS(n) FP_CASE("dpps", n)
#define C_DPPD(n) FP_CASE("dppd", ((n)&3) | ((n)&12) << 2)

FP_XX(addps)
FP_XX(addpd)
FP_XX(addss)
FP_XX(addsd)
FP_XX(subps)
FP_XX(subpd)
FP_XX(subss)
FP_XX(subsd)
FP_XX(mulps)
FP_XX(mulpd)
FP_XX(mulss)
FP_XX(mulsd)
FP_XX(divps)
FP_XX(divpd)
FP_XX(divss)
FP_XX(divsd)
FP_XX(minps)
FP_XX(minpd)
FP_XX(minss)
FP_XX(minsd)
FP_XX(maxps)
FP_XX(maxpd)
FP_XX(maxss)
FP_XX(maxsd)
FP_XX(sqrtps)
FP_XX(sqrtpd)
FP_XX(sqrtss)
FP_XX(sqrtsd)
FP_XX(rcpps)
FP_XX(rcpss)
FP_XX(rsqrtps)
FP_XX(rsqrtss)
FP_XX(haddps)
FP_XX(haddpd)
FP_XX(hsubps)
FP_XX(hsubpd)
FP_XX(addsubps)
FP_XX(addsubpd)
FP_XX(cvtss2sd)
FP_XX(cvtsd2ss)
FP_XX(cvtdq2ps)
FP_XX(cvtdq2pd)
FP_XX(cvtps2dq)
FP_XX(cvttps2dq)
FP_XX(cvtpd2dq)
FP_XX(cvttpd2dq)
FP_XX(cvtps2pd)
FP_XX(cvtpd2ps)
FP_XXI(cmpps, 7, R4(C_CMPPS, 0) R4(C_CMPPS, 4))
FP_XXI(cmppd, 7, R4(C_CMPPD, 0) R4(C_CMPPD, 4))
FP_XXI(cmpss, 7, R4(C_CMPSS, 0) R4(C_CMPSS, 4))
FP_XXI(cmpsd, 7, R4(C_CMPSD, 0) R4(C_CMPSD, 4))
FP_XXI(roundps, 15, R16(C_ROUNDPS, 0))
FP_XXI(roundpd, 15, R16(C_ROUNDPD, 0))
FP_XXI(roundss, 15, R16(C_ROUNDSS, 0))
FP_XXI(roundsd, 15, R16(C_ROUNDSD, 0))
FP_XXI(dpps, 255, R256(C_DPPS))
FP_XXI(dppd, 0x33, R16(C_DPPD, 0))

/* clang-format off */
#define FP_OPS(X)                                                            \
	X(addps) X(addpd) X(addss) X(addsd) X(subps) X(subpd) X(subss)       \
	X(subsd) X(mulps) X(mulpd) X(mulss) X(mulsd) X(divps) X(divpd)       \
	X(divss) X(divsd) X(minps) X(minpd) X(minss) X(minsd) X(maxps)       \
	X(maxpd) X(maxss) X(maxsd) X(sqrtps) X(sqrtpd) X(sqrtss) X(sqrtsd)   \
	X(rcpps) X(rcpss) X(rsqrtps) X(rsqrtss) X(haddps) X(haddpd)          \
	X(hsubps) X(hsubpd) X(addsubps) X(addsubpd) X(cvtss2sd) X(cvtsd2ss)  \
	X(cvtdq2ps) X(cvtdq2pd) X(cvtps2dq) X(cvttps2dq) X(cvtpd2dq)         \
	X(cvttpd2dq) X(cvtps2pd) X(cvtpd2ps) X(cmpps) X(cmppd) X(cmpss)      \
	X(cmpsd) X(roundps) X(roundpd) X(roundss) X(roundsd) X(dpps) X(dppd)
/* clang-format on */

#define FO_ENUM(n) FO_##n,
enum fp_op { FP_OPS(FO_ENUM) FO_COUNT };
#define FO_FN(n) fp_##n,
static fp_fn *const fp_ops[] = {FP_OPS(FO_FN)};

_Static_assert(FO_COUNT <= 256, "x86_insn.op is 8 bits");

/* The MXCSR an operation runs under: the guest's controls, all masked. */
static inline uint32_t fp_mx(const struct x86_cpu *c)
{
	uint32_t mx = (c->mxcsr & ~MX_FLAGS) | MX_MASKS;

	/* FTZ acts only on a masked underflow (SDM vol. 1, 10.2.3.3). */
	if (!(c->mxcsr & (MX_UE << 7)))
		mx &= ~MX_FTZ;
	return mx;
}

/*
 * Account for the flags @f an operation raises: set them and return
 * X86_OK, or, if one is unmasked, raise #XM (#UD without
 * CR4.OSXMMEXCPT).  @f is what hardware sets, for the unmasked response
 * too (see fp_single()).
 */
static int fp_commit(struct x86_cpu *c, unsigned f)
{
	unsigned um = ~(c->mxcsr >> 7) & MX_FLAGS;

	c->mxcsr |= f;
	if (likely(!(f & um)))
		return X86_OK;
	if (!(c->cr4 & X86_CR4_OSXMMEXCPT))
		return x86_ud(c);
	return x86_raise(c, X86_XM, false, 0);
}

/*
 * The flags of an operation that meets an unmasked exception, where the
 * masked response says too little.  An unmasked overflow or underflow
 * sets PE only if the result rounded with an unbounded exponent is
 * inexact (the masked response, infinity or a denormal, nearly always
 * is), and an unmasked underflow is raised for an exact tiny result too.
 * So such operations are redone lane by lane: each lane with the scalar
 * instruction (masked flags, and with FTZ, which flags every tiny
 * result), and a lane that overflows or underflows unmasked with the x87
 * unit, whose 15-bit exponent is unbounded for these formats, at the
 * lane's precision and MXCSR's rounding, for PE.  DPPS and DPPD are
 * three and two such steps (multiply, add, add), and stop at the first
 * step with an unmasked exception, with the flags of the steps so far.
 */
enum { L_ADD, L_SUB, L_MUL, L_DIV, L_CVT };

/* A lane: kind, double or float, operands as lane of d (0-3), of s (4-7). */
struct fp_lane {
	uint8_t kind, dbl, a, b;
};

static bool x87_inexact(unsigned kind, bool dbl, uint64_t a, uint64_t b,
			uint32_t mxcsr)
{
	/* all masked, PC = 24 or 53 bits, RC as MXCSR.RC */
	uint16_t cw = 0x3f | (dbl ? 0x200 : 0) | (mxcsr >> 13 & 3) << 10;
	uint8_t env[28]; /* the host's x87 environment, flags included */
	uint16_t sw;
	float fa, fb, one = 1;
	double da, db;

	memcpy(&da, &a, 8);
	memcpy(&db, &b, 8);
	fa = 0;
	fb = 0;
	if (!dbl) {
		uint32_t x = a, y = b;

		memcpy(&fa, &x, 4);
		memcpy(&fb, &y, 4);
	}
#define X87(ld, op, A_, B_)                                               \
	__asm__ volatile("fnstenv %[env]\n\tfldcw %[cw]\n\tfnclex\n\t" ld \
			 " %[x]\n\t" op " %[y]\n\tfnstsw %[sw]\n\t"       \
			 "fstp %%st(0)\n\tfldenv %[env]"                  \
			 : [env] "=m"(env), [sw] "=m"(sw)                 \
			 : [cw] "m"(cw), [x] "m"(A_), [y] "m"(B_))
	switch (kind * 2 + dbl) {
	case L_ADD * 2:
		X87("flds", "fadds", fa, fb);
		break;
	case L_ADD * 2 + 1:
		X87("fldl", "faddl", da, db);
		break;
	case L_SUB * 2:
		X87("flds", "fsubs", fa, fb);
		break;
	case L_SUB * 2 + 1:
		X87("fldl", "fsubl", da, db);
		break;
	case L_MUL * 2:
		X87("flds", "fmuls", fa, fb);
		break;
	case L_MUL * 2 + 1:
		X87("fldl", "fmull", da, db);
		break;
	case L_DIV * 2:
		X87("flds", "fdivs", fa, fb);
		break;
	case L_DIV * 2 + 1:
		X87("fldl", "fdivl", da, db);
		break;
	default: /* CVTSD2SS: a double rounded to 24 bits */
		cw &= ~0x300;
		X87("fldl", "fmuls", da, one);
		break;
	}
#undef X87
	return sw & 0x20;
}

/* DAZ as the SSE unit applies it to an input. */
static uint64_t daz(uint64_t v, bool dbl, uint32_t mxcsr)
{
	if (!(mxcsr & 0x40))
		return v;
	if (dbl && !(v & 0x7ff0000000000000ull))
		return v & 0x8000000000000000ull;
	if (!dbl && !(v & 0x7f800000))
		return v & 0x80000000;
	return v;
}

static const uint8_t scalar_op[5][2] = {
	[L_ADD] = {FO_addss, FO_addsd},	      [L_SUB] = {FO_subss, FO_subsd},
	[L_MUL] = {FO_mulss, FO_mulsd},	      [L_DIV] = {FO_divss, FO_divsd},
	[L_CVT] = {FO_cvtsd2ss, FO_cvtsd2ss},
};

/* One lane's flags under the unmasked response; its result in *res. */
static unsigned lane_flags(const struct x86_cpu *c, unsigned kind, bool dbl,
			   uint64_t a, uint64_t b, uint64_t *res)
{
	unsigned um = ~(c->mxcsr >> 7) & MX_FLAGS, f, op;
	union x86_xmm x = {0}, y = {0};
	uint32_t mx = fp_mx(c), mx2 = mx | MX_FTZ;
	bool tiny = false;

	op = scalar_op[kind][dbl];
	x.q[0] = a;
	y.q[0] = kind == L_CVT ? a : b;
	fp_ops[op](&x, &y, 0, &mx);
	f = mx & MX_FLAGS;
	*res = dbl && kind != L_CVT ? x.q[0] : x.d[0];
	if (um & MX_UE) {
		x.q[0] = a;
		fp_ops[op](&x, &y, 0, &mx2);
		tiny = mx2 & MX_UE;
	}
	if (((f & MX_OE) && (um & MX_OE)) || (tiny && (um & MX_UE))) {
		f = (f & MX_PRE) | (f & MX_OE ? MX_OE : MX_UE);
		if (x87_inexact(kind, dbl, daz(a, dbl, c->mxcsr),
				daz(b, dbl, c->mxcsr), c->mxcsr))
			f |= MX_PE;
	}
	return f;
}

static uint64_t lane_of(const union x86_xmm *d, const union x86_xmm *s,
			unsigned l, bool dbl)
{
	const union x86_xmm *v = l < 4 ? d : s;

	return dbl ? v->q[l & 3] : v->d[l & 3];
}

/* The lanes of the operations that can overflow or underflow. */
static unsigned fp_lanes(unsigned op, struct fp_lane *l)
{
	static const struct {
		uint8_t op, kind, dbl, n;
		uint8_t ab[4][2];
	} t[] = {
		{FO_addps, L_ADD, 0, 4, {{0, 4}, {1, 5}, {2, 6}, {3, 7}}},
		{FO_addpd, L_ADD, 1, 2, {{0, 4}, {1, 5}}},
		{FO_addss, L_ADD, 0, 1, {{0, 4}}},
		{FO_addsd, L_ADD, 1, 1, {{0, 4}}},
		{FO_subps, L_SUB, 0, 4, {{0, 4}, {1, 5}, {2, 6}, {3, 7}}},
		{FO_subpd, L_SUB, 1, 2, {{0, 4}, {1, 5}}},
		{FO_subss, L_SUB, 0, 1, {{0, 4}}},
		{FO_subsd, L_SUB, 1, 1, {{0, 4}}},
		{FO_mulps, L_MUL, 0, 4, {{0, 4}, {1, 5}, {2, 6}, {3, 7}}},
		{FO_mulpd, L_MUL, 1, 2, {{0, 4}, {1, 5}}},
		{FO_mulss, L_MUL, 0, 1, {{0, 4}}},
		{FO_mulsd, L_MUL, 1, 1, {{0, 4}}},
		{FO_divps, L_DIV, 0, 4, {{0, 4}, {1, 5}, {2, 6}, {3, 7}}},
		{FO_divpd, L_DIV, 1, 2, {{0, 4}, {1, 5}}},
		{FO_divss, L_DIV, 0, 1, {{0, 4}}},
		{FO_divsd, L_DIV, 1, 1, {{0, 4}}},
		{FO_haddps, L_ADD, 0, 4, {{0, 1}, {2, 3}, {4, 5}, {6, 7}}},
		{FO_haddpd, L_ADD, 1, 2, {{0, 1}, {4, 5}}},
		{FO_hsubps, L_SUB, 0, 4, {{0, 1}, {2, 3}, {4, 5}, {6, 7}}},
		{FO_hsubpd, L_SUB, 1, 2, {{0, 1}, {4, 5}}},
		{FO_cvtsd2ss, L_CVT, 1, 1, {{4, 4}}},
		{FO_cvtpd2ps, L_CVT, 1, 2, {{4, 4}, {5, 5}}},
	};

	if (op == FO_addsubps || op == FO_addsubpd) {
		unsigned n = op == FO_addsubps ? 4 : 2;

		for (unsigned k = 0; k < n; k++)
			l[k] = (struct fp_lane){k & 1 ? L_ADD : L_SUB,
						op == FO_addsubpd, k, 4 + k};
		return n;
	}
	for (unsigned k = 0; k < sizeof(t) / sizeof(t[0]); k++) {
		if (t[k].op != op)
			continue;
		for (unsigned j = 0; j < t[k].n; j++)
			l[j] = (struct fp_lane){t[k].kind, t[k].dbl,
						t[k].ab[j][0], t[k].ab[j][1]};
		return t[k].n;
	}
	return 0;
}

/*
 * A step's flags @sf on top of the flags @f of the steps before: true
 * (stop, *f final) if the step has an unmasked exception.
 */
static bool fp_step(const struct x86_cpu *c, unsigned *f, unsigned sf)
{
	unsigned um = ~(c->mxcsr >> 7) & MX_FLAGS;

	if (sf & um & MX_PRE) {
		*f |= sf & MX_PRE;
		return true;
	}
	*f |= sf;
	return sf & um;
}

/* DPPS (4 lanes) or DPPD (2). */
/*
 * @nl 128-bit lanes (VDPPS ymm has two) of d[] and s[]: each step runs
 * in every lane before the next, and one unmasked exception in a step
 * stops them all (as the host's VDPPS does).
 */
static unsigned fp_dp_flags(const struct x86_cpu *c, const union x86_xmm *d,
			    const union x86_xmm *s, unsigned nl, unsigned imm,
			    bool dbl)
{
	unsigned n = dbl ? 2 : 4, f = 0, sf = 0;
	uint64_t p[2][4] = {{0}}, t0[2], t1[2];

	for (unsigned l = 0; l < nl; l++)
		for (unsigned k = 0; k < n; k++)
			if (imm >> (4 + k) & 1)
				sf |= lane_flags(
					c, L_MUL, dbl,
					lane_of(&d[l], &s[l], k, dbl),
					lane_of(&d[l], &s[l], 4 + k, dbl),
					&p[l][k]);
	if (fp_step(c, &f, sf))
		return f;
	sf = 0;
	for (unsigned l = 0; l < nl; l++) {
		sf |= lane_flags(c, L_ADD, dbl, p[l][0], p[l][1], &t0[l]);
		if (!dbl)
			sf |= lane_flags(c, L_ADD, dbl, p[l][2], p[l][3],
					 &t1[l]);
	}
	if (fp_step(c, &f, sf) || dbl)
		return f;
	sf = 0;
	for (unsigned l = 0; l < nl; l++)
		sf |= lane_flags(c, L_ADD, dbl, t0[l], t1[l], &t0[l]);
	fp_step(c, &f, sf);
	return f;
}

unsigned x86_fp_dpps2(const struct x86_cpu *c, const union x86_xmm d[2],
		      const union x86_xmm s[2], unsigned imm)
{
	return fp_dp_flags(c, d, s, 2, imm, false);
}

/* The flags of h_fp's operation when an unmasked exception may be met. */
static unsigned fp_exact_flags(const struct x86_cpu *c, unsigned op,
			       unsigned imm, const union x86_xmm *d,
			       const union x86_xmm *s, unsigned f)
{
	unsigned um = ~(c->mxcsr >> 7) & MX_FLAGS, n, lf = 0;
	struct fp_lane l[4];
	uint64_t res;

	if (op == FO_dpps || op == FO_dppd)
		return fp_dp_flags(c, d, s, 1, imm, op == FO_dppd);
	if (f & um & MX_PRE)
		return f & MX_PRE;
	n = fp_lanes(op, l);
	if (!n)
		return f; /* no overflow or underflow possible */
	for (unsigned k = 0; k < n; k++)
		lf |= lane_flags(c, l[k].kind, l[k].dbl,
				 lane_of(d, s, l[k].a, l[k].dbl),
				 lane_of(d, s, l[k].b, l[k].dbl), &res);
	return lf;
}

/*
 * The flags of a one-step operation that cannot overflow or underflow,
 * from those it raised masked: with an unmasked pre-computation
 * exception, only the pre-computation flags (nothing was computed).
 */
static unsigned fp_single(const struct x86_cpu *c, unsigned f)
{
	unsigned um = ~(c->mxcsr >> 7) & MX_FLAGS;

	return f & um & MX_PRE ? f & MX_PRE : f;
}

/* XMM destination: d = op(d, source, imm8) on the host. */
static int h_fp(struct x86_cpu *c, const struct x86_insn *i)
{
	union x86_xmm s, d;
	unsigned f;
	int r = sse_avail(c, i);

	if (!r)
		r = sse_src(c, i, &s);
	if (r)
		return r;
	d = c->xmm[src1(i)];
	f = x86_fp_lane(c, i->op, &d, &s, (uint8_t)i->imm);
	r = fp_commit(c, f);
	if (r)
		return r;
	c->xmm[i->r[0] & 15] = d;
	vex_zero(c, i, i->r[0]);
	return advance(c, i);
}

unsigned x86_fp_lane(const struct x86_cpu *c, unsigned op, union x86_xmm *d,
		     const union x86_xmm *s, unsigned imm)
{
	union x86_xmm in = *d;
	uint32_t mx = fp_mx(c);
	unsigned f, um = ~(c->mxcsr >> 7) & MX_FLAGS;

	fp_ops[op](d, s, imm, &mx);
	f = mx & MX_FLAGS;
	/* Unmasked underflow needs a look at exact tiny results too. */
	if (unlikely((f & um) || (um & MX_UE)))
		f = fp_exact_flags(c, op, imm, &in, s, f);
	return f;
}

int x86_fp_commit(struct x86_cpu *c, unsigned f)
{
	return fp_commit(c, f);
}

unsigned x86_fp_merge(const struct x86_cpu *c, unsigned f)
{
	return fp_single(c, f);
}

void x86_sse_lane(unsigned op, union x86_xmm *d, const union x86_xmm *s,
		  unsigned imm)
{
	sse_ops[op](d, s, imm);
}

/*
 * CVTSS2SI, CVTTSS2SI, CVTSD2SI, CVTTSD2SI (op 0-3) to a GPR of osz
 * bytes, from an XMM register or memory.
 */
#define FP_GX(insn)                                                       \
	do {                                                              \
		if (w)                                                    \
			__asm__ volatile(FP_IN insn " %[y], %q[g]" FP_OUT \
					 : [g] "=r"(g), FP_MX             \
					 : [y] "x"(y));                   \
		else                                                      \
			__asm__ volatile(FP_IN insn " %[y], %k[g]" FP_OUT \
					 : [g] "=r"(g), FP_MX             \
					 : [y] "x"(y));                   \
	} while (0)

static int h_fp_to_int(struct x86_cpu *c, const struct x86_insn *i)
{
	union x86_xmm s;
	uint64_t g = 0;
	uint32_t sv, m, *mx = &m;
	bool w = i->osz == 8;
	v128 y;
	int r = sse_avail(c, i);

	if (!r)
		r = sse_src(c, i, &s);
	if (r)
		return r;
	y = ldv(&s);
	m = fp_mx(c);
	switch (i->op) {
	case 0:
		FP_GX("cvtss2si");
		break;
	case 1:
		FP_GX("cvttss2si");
		break;
	case 2:
		FP_GX("cvtsd2si");
		break;
	default:
		FP_GX("cvttsd2si");
		break;
	}
	r = fp_commit(c, fp_single(c, m & MX_FLAGS));
	if (r)
		return r;
	c->gpr[i->r[0]] = w ? g : (uint32_t)g;
	return advance(c, i);
}

/* CVTSI2SS (op 0), CVTSI2SD (op 1) from a GPR or memory of ssz bytes. */
#define FP_XG(insn)                                                        \
	do {                                                               \
		if (i->ssz == 8)                                           \
			__asm__ volatile(FP_IN insn "q %[g], %[x]" FP_OUT  \
					 : [x] "+x"(x), FP_MX              \
					 : [g] "r"(g));                    \
		else                                                       \
			__asm__ volatile(FP_IN insn "l %k[g], %[x]" FP_OUT \
					 : [x] "+x"(x), FP_MX              \
					 : [g] "r"(g));                    \
	} while (0)

static int h_int_to_fp(struct x86_cpu *c, const struct x86_insn *i)
{
	union x86_xmm s;
	uint32_t sv, m, *mx = &m;
	uint64_t g;
	v128 x;
	int r = sse_avail(c, i);

	if (!r)
		r = sse_src(c, i, &s);
	if (r)
		return r;
	g = s.q[0];
	x = ldv(&c->xmm[src1(i)]);
	m = fp_mx(c);
	if (i->op == 0)
		FP_XG("cvtsi2ss");
	else
		FP_XG("cvtsi2sd");
	r = fp_commit(c, fp_single(c, m & MX_FLAGS));
	if (r)
		return r;
	stv(&c->xmm[i->r[0] & 15], x);
	vex_zero(c, i, i->r[0]);
	return advance(c, i);
}

/*
 * COMISS, COMISD, UCOMISS, UCOMISD (op 0-3): ZF, PF, CF from the
 * compare, OF, SF and AF cleared.
 */
#define FP_COMI(insn)                                                          \
	__asm__ volatile(FP_IN insn " %[y], %[x]" FP_OUT                       \
				    "\n\tsetz %[z]\n\tsetp %[p]\n\tsetc %[cf]" \
			 : [z] "=q"(z), [p] "=q"(p), [cf] "=q"(cf), FP_MX      \
			 : [x] "x"(x), [y] "x"(y)                              \
			 : "cc")

static int h_comi(struct x86_cpu *c, const struct x86_insn *i)
{
	union x86_xmm s;
	uint32_t sv, m, *mx = &m;
	uint8_t z, p, cf;
	uint64_t fl;
	v128 x, y;
	int r = sse_avail(c, i);

	if (!r)
		r = sse_src(c, i, &s);
	if (r)
		return r;
	x = ldv(&c->xmm[i->r[0] & 15]);
	y = ldv(&s);
	m = fp_mx(c);
	switch (i->op) {
	case 0:
		FP_COMI("comiss");
		break;
	case 1:
		FP_COMI("comisd");
		break;
	case 2:
		FP_COMI("ucomiss");
		break;
	default:
		FP_COMI("ucomisd");
		break;
	}
	r = fp_commit(c, fp_single(c, m & MX_FLAGS));
	if (r)
		return r;
	fl = x86_flags(c) & ~(uint64_t)X86_ARITH;
	fl |= (z ? X86_ZF : 0) | (p ? X86_PF : 0) | (cf ? X86_CF : 0);
	x86_set_flags(c, fl);
	return advance(c, i);
}

/*
 * PCMPESTRI, PCMPESTRM, PCMPISTRI, PCMPISTRM (op 0-3), on the host too:
 * their aggregation and polarity modes are what the SDM's pseudo-code
 * takes pages for.  No MXCSR: they raise no floating-point exception.
 * The explicit lengths are passed as 32-bit values that saturate alike.
 */
#define STR_ASM(insn, n)                                                      \
	__asm__ volatile(insn " %[i], %[y], %[x]\n\t"                         \
			      "setc %[cf]\n\tsetz %[zf]\n\tsets %[sf]\n\t"    \
			      "seto %[of]\n\tmovdqa %%xmm0, %[m]"             \
			 : [cf] "=q"(f[0]), [zf] "=q"(f[1]), [sf] "=q"(f[2]), \
			   [of] "=q"(f[3]), [m] "=x"(m), "=c"(idx)            \
			 : [x] "x"(x), [y] "x"(y), "a"(la),                   \
			   "d"(ld), [i] "i"((n)&0x7f)                         \
			 : "xmm0", "cc")
#define C_ESTRI(n)                       \
	case (n):                        \
		STR_ASM("pcmpestri", n); \
		break;
#define C_ESTRM(n)                       \
	case (n):                        \
		STR_ASM("pcmpestrm", n); \
		break;
#define C_ISTRI(n)                       \
	case (n):                        \
		STR_ASM("pcmpistri", n); \
		break;
#define C_ISTRM(n)                       \
	case (n):                        \
		STR_ASM("pcmpistrm", n); \
		break;

/* A length register as a 32-bit value with the same saturated |value|. */
static int32_t str_len(uint64_t v, bool w)
{
	int64_t x = w ? (int64_t)v : (int32_t)v;

	return x > 17 ? 17 : x < -17 ? -17 : (int32_t)x;
}

static int h_pcmpstr(struct x86_cpu *c, const struct x86_insn *i)
{
	union x86_xmm s;
	bool w = i->pfx & P_REXW;
	int32_t la = str_len(c->gpr[X86_RAX], w),
		ld = str_len(c->gpr[X86_RDX], w);
	uint8_t f[4];
	uint32_t idx;
	uint64_t fl;
	v128 x, y, m;
	int r = sse_avail(c, i);

	if (!r)
		r = sse_src(c, i, &s);
	if (r)
		return r;
	x = ldv(&c->xmm[i->r[0] & 15]);
	y = ldv(&s);
	/* Bit 7 of imm8 is reserved and ignored. */
	switch (i->op << 7 | ((uint8_t)i->imm & 0x7f)) {
		R64(C_ESTRI, 0)
		R64(C_ESTRI, 64)
		R64(C_ESTRM, 128)
		R64(C_ESTRM, 192)
		R64(C_ISTRI, 256)
		R64(C_ISTRI, 320)
		R64(C_ISTRM, 384)
		R64(C_ISTRM, 448)
	}
	if (i->op & 1) {
		stv(&c->xmm[0], m);
		vex_zero(c, i, 0);
	} else
		c->gpr[X86_RCX] = idx;
	fl = x86_flags(c) & ~(uint64_t)X86_ARITH;
	fl |= (f[0] ? X86_CF : 0) | (f[1] ? X86_ZF : 0) | (f[2] ? X86_SF : 0) |
	      (f[3] ? X86_OF : 0);
	x86_set_flags(c, fl);
	return advance(c, i);
}

/* CRC32 r32/r64, r/m8/16/32/64: CRC-32C, bit-reflected, of ssz bytes. */
static int h_crc32(struct x86_cpu *c, const struct x86_insn *i)
{
	uint32_t crc = c->gpr[i->r[0]];
	struct x86_mref m;
	uint64_t v;
	int r;

	if (i->k[1] == K_REG) {
		v = rreg(c, i->r[1], i->ssz);
	} else {
		r = x86_mem_prep(c, x86_ea(c, i), i->ssz, X86_ACC_READ, &m);
		if (!r)
			r = x86_mem_rd(c, &m, &v);
		if (r)
			return r;
	}
	for (unsigned k = 0; k < 8 * i->ssz; k++) {
		crc ^= (v >> k) & 1;
		crc = crc >> 1 ^ (crc & 1 ? 0x82f63b78u : 0);
	}
	c->gpr[i->r[0]] = crc;
	return advance(c, i);
}

/*
 * MASKMOVDQU: the bytes of r[0] whose byte in r[1] has its top bit set,
 * to [RDI] (EDI with a 32-bit address size, DS or a segment override).
 * All 16 bytes are translated for writing first, whatever the mask: the
 * SDM lets a processor fault on masked bytes, and this one does.
 */
static int h_maskmov(struct x86_cpu *c, const struct x86_insn *i)
{
	const union x86_xmm *v = &c->xmm[i->r[0] & 15];
	const union x86_xmm *mask = &c->xmm[i->r[1] & 15];
	struct x86_mref m;
	int r = sse_avail(c, i);

	if (!r)
		r = sse_prep(c, x86_ea(c, i), 16, X86_ACC_WRITE, &m);
	if (r)
		return r;
	for (unsigned k = 0; k < 16; k++)
		if (mask->b[k] & 0x80)
			st_le(k < m.n0 ? m.p[0] + k : m.p[1] + (k - m.n0), 1,
			      v->b[k]);
	return advance(c, i);
}

/* MOVNTI m32/m64, r: a plain store (the hint is only about caches). */
static int h_movnti(struct x86_cpu *c, const struct x86_insn *i)
{
	struct x86_mref m;
	int r = x86_mem_prep(c, x86_ea(c, i), i->osz, X86_ACC_WRITE, &m);

	if (!r)
		r = x86_mem_wr(c, &m, rreg(c, i->r[1], i->osz));
	if (r)
		return r;
	return advance(c, i);
}

/* LDMXCSR (op 0), STMXCSR (op 1). */
static int h_mxcsr(struct x86_cpu *c, const struct x86_insn *i)
{
	struct x86_mref m;
	uint64_t v;
	int r = sse_avail(c, i);

	if (r)
		return r;
	r = sse_mem(c, i, 4, i->op ? X86_ACC_WRITE : X86_ACC_READ, &m);
	if (r)
		return r;
	if (i->op) {
		r = x86_mem_wr(c, &m, c->mxcsr);
		if (r)
			return r;
		return advance(c, i);
	}
	r = x86_mem_rd(c, &m, &v);
	if (r)
		return r;
	if (v & ~(uint64_t)X86_MXCSR_MASK)
		return x86_gp0(c);
	c->mxcsr = v;
	return advance(c, i);
}

/* ---- FXSAVE / FXRSTOR ----------------------------------------------- */

/*
 * The 512-byte image (SDM vol. 1, table 10-2):
 *
 *     0 FCW   2 FSW   4 FTW (abridged)   5 -   6 FOP
 *     8 FIP (64-bit format) | FIP[31:0], 12 FCS
 *    16 FDP (64-bit format) | FDP[31:0], 20 FDS
 *    24 MXCSR   28 MXCSR_MASK
 *    32 ST0-ST7, 16 bytes each (10 used)
 *   160 XMM0-XMM15
 *   416 reserved, 464 available to software: never written.
 */
#define FX_USED 416

static void fx_encode(const struct x86_cpu *c, uint8_t *a, bool w64, bool sse)
{
	const struct x86_x87 *x = &c->x87;
	uint32_t mask = X86_MXCSR_MASK;

	memset(a, 0, FX_USED);
	memcpy(a + 0, &x->fcw, 2);
	memcpy(a + 2, &x->fsw, 2);
	a[4] = x->ftw;
	memcpy(a + 6, &x->fop, 2);
	if (w64) {
		memcpy(a + 8, &x->fip, 8);
		memcpy(a + 16, &x->fdp, 8);
	} else {
		memcpy(a + 8, &x->fip, 4);
		memcpy(a + 12, &x->fcs, 2);
		memcpy(a + 16, &x->fdp, 4);
		memcpy(a + 20, &x->fds, 2);
	}
	for (unsigned k = 0; k < 8; k++)
		memcpy(a + 32 + 16 * k, x->st[k], 10);
	if (sse) {
		memcpy(a + 24, &c->mxcsr, 4);
		memcpy(a + 28, &mask, 4);
		memcpy(a + 160, c->xmm, 256);
	}
}

/*
 * As hardware loads them: FCW's reserved bits read as 0 except bit 6 (1),
 * FSW.ES and FSW.B summarise the unmasked exception flags, FOP has 11
 * bits.
 */
static void fx_decode(struct x86_cpu *c, const uint8_t *a, bool w64, bool sse)
{
	struct x86_x87 *x = &c->x87;
	uint16_t fcw, fsw, fop;

	memcpy(&fcw, a + 0, 2);
	memcpy(&fsw, a + 2, 2);
	memcpy(&fop, a + 6, 2);
	x->fcw = (fcw & 0x1f3f) | 0x40;
	x->fsw = fsw & ~0x8080;
	if (fsw & ~x->fcw & 0x3f)
		x->fsw |= 0x8080;
	x->ftw = a[4];
	x->fop = fop & 0x7ff;
	if (w64) {
		memcpy(&x->fip, a + 8, 8);
		memcpy(&x->fdp, a + 16, 8);
		x->fcs = x->fds = 0;
	} else {
		uint32_t ip, dp;

		memcpy(&ip, a + 8, 4);
		memcpy(&x->fcs, a + 12, 2);
		memcpy(&dp, a + 16, 4);
		memcpy(&x->fds, a + 20, 2);
		if (c->x87_zero_sel) /* not kept: FXSAVE stores 0 */
			x->fcs = x->fds = 0;
		x->fip = ip;
		x->fdp = dp;
	}
	for (unsigned k = 0; k < 8; k++)
		memcpy(x->st[k], a + 32 + 16 * k, 10);
	if (sse) {
		memcpy(&c->mxcsr, a + 24, 4);
		memcpy(c->xmm, a + 160, 256);
	}
}

static uint32_t fx_mxcsr(const uint8_t *a)
{
	uint32_t v;

	memcpy(&v, a + 24, 4);
	return v;
}

/*
 * FXSAVE/FXRSTOR (op 0/1), i->ssz = 8 for the 64-bit format.  The whole
 * 512 bytes are translated first, 16 at a time (an aligned image never
 * splits a piece across pages).  Without CR4.OSFXSR the XMM registers
 * and MXCSR are neither saved nor restored, as the SDM allows and AMD
 * documents.
 */
static int h_fx(struct x86_cpu *c, const struct x86_insn *i)
{
	struct x86_mref m[32];
	bool sse = c->cr4 & X86_CR4_OSFXSR;
	bool w64 = i->ssz == 8;
	uint64_t a = x86_ea(c, i);
	uint8_t img[FX_USED];
	int r;

	if (c->cr0 & (X86_CR0_EM | X86_CR0_TS))
		return x86_raise(c, X86_NM, false, 0);
	if (a & 15)
		return x86_gp0(c);
	for (unsigned k = 0; k < 32; k++) {
		r = sse_prep(c, a + 16 * k, 16,
			     i->op ? X86_ACC_READ : X86_ACC_WRITE, &m[k]);
		if (r)
			return r;
	}
	if (i->op == 0) {
		fx_encode(c, img, w64, sse);
		for (unsigned k = 0; k < FX_USED / 16; k++) {
			union x86_xmm v;

			/* Without OSFXSR, bytes 24-31 and 160- stay. */
			if (!sse && k >= 10)
				break;
			memcpy(&v, img + 16 * k, 16);
			if (!sse && k == 1) {
				st_le(m[k].p[0], 8, v.q[0]);
				continue;
			}
			wr16(&m[k], &v);
		}
		return advance(c, i);
	}
	for (unsigned k = 0; k < FX_USED / 16; k++) {
		union x86_xmm v;

		rd16(&m[k], &v);
		memcpy(img + 16 * k, &v, 16);
	}
	if (sse && (fx_mxcsr(img) & ~X86_MXCSR_MASK))
		return x86_gp0(c);
	fx_decode(c, img, w64, sse);
	return advance(c, i);
}

void x86_get_fxsave(const struct x86_cpu *c, uint8_t area[512])
{
	fx_encode(c, area, true, true);
	memset(area + FX_USED, 0, 512 - FX_USED);
}

int x86_set_fxsave(struct x86_cpu *c, const uint8_t area[512])
{
	if (fx_mxcsr(area) & ~X86_MXCSR_MASK)
		return -EINVAL;
	fx_decode(c, area, true, true);
	return 0;
}

/* ---- XSAVE (SDM vol. 1, chapter 13) --------------------------------- */

/*
 * The model's XSAVE area: the legacy region (FXSAVE's layout), the
 * 64-byte header and the YMM upper halves, at the same offsets in both
 * formats since YMM is the only extended component:
 *
 *     0 x87: FCW .. FDP (0-23)     24 MXCSR, MXCSR_MASK (SSE)
 *    32 x87: ST0-ST7               160 SSE: XMM0-XMM15
 *   416 not used by XSAVE          512 XSTATE_BV   520 XCOMP_BV
 *   528 reserved (48 bytes)        576 YMM: YMM0-15 bits 255:128
 */
#define XS_BV 512
#define XS_COMP 520
#define XS_WORDS (X86_XSAVE_SIZE / 8)
#define XS_COMPACT (1ull << 63)

static bool x87_is_init(const struct x86_cpu *c)
{
	static const uint8_t zero[sizeof(c->x87.st)];
	const struct x86_x87 *x = &c->x87;

	return x->fcw == X86_FCW_DEFAULT && !x->fsw && !x->ftw && !x->fop &&
	       !x->fip && !x->fdp && !x->fcs && !x->fds &&
	       !memcmp(x->st, zero, sizeof(zero));
}

static bool xmm_is_zero(const union x86_xmm *x)
{
	static const union x86_xmm zero[16];

	return !memcmp(x, zero, sizeof(zero));
}

/*
 * XINUSE[i] = 0 is a promise that component i is initial, so it is 0
 * only when the registers are; and XRSTOR's load of a component makes it
 * 1 whatever was loaded (13.8.3), which c->xinuse remembers.
 */
uint64_t x86_xinuse(const struct x86_cpu *c)
{
	uint64_t u = c->xinuse;

	if (!x87_is_init(c))
		u |= X86_XFEATURE_FP;
	if (!xmm_is_zero(c->xmm))
		u |= X86_XFEATURE_SSE;
	if (!xmm_is_zero(c->ymmh))
		u |= X86_XFEATURE_YMM;
	return u;
}

/* How a save behaves (13.7, 13.9, 13.10). */
#define XF_INITOPT 1 /* XSAVEOPT, XSAVEC: skip components not in use */
#define XF_COMPACT 2 /* XSAVEC: compacted header, MXCSR travels with SSE */
#define XF_MXUSE 4   /* MXCSR != 1F80H makes SSE in use (XSAVEC, XSAVES) */

static void xs_put(uint8_t *img, bool *wr, const uint8_t *src, unsigned off,
		   unsigned len)
{
	memcpy(img + off, src + off, len);
	for (unsigned k = off / 8; k < (off + len) / 8; k++)
		wr[k] = true;
}

/*
 * Store components @rfbm into @img, which holds what memory held (XSAVE
 * and XSAVEOPT keep XSTATE_BV's other bits); wr[] marks the 8-byte words
 * written, so that the rest of memory is not touched.
 */
static void xs_store(const struct x86_cpu *c, uint8_t *img, bool *wr,
		     uint64_t rfbm, unsigned flags, bool w64)
{
	uint8_t fx[FX_USED];
	uint64_t inuse = x86_xinuse(c), bv = 0, comp, save = rfbm;
	bool mx;

	if ((flags & (XF_COMPACT | XF_MXUSE)) && c->mxcsr != X86_MXCSR_DEFAULT)
		inuse |= X86_XFEATURE_SSE;
	if (!(flags & XF_COMPACT))
		memcpy(&bv, img + XS_BV, 8); /* XSAVEC does not read it */
	bv = (bv & ~rfbm) | (inuse & rfbm);
	if (flags & XF_INITOPT)
		save &= inuse;
	/* XSAVE and XSAVEOPT store MXCSR for SSE or AVX, used or not. */
	if (flags & XF_COMPACT)
		mx = save & X86_XFEATURE_SSE;
	else
		mx = rfbm & (X86_XFEATURE_SSE | X86_XFEATURE_YMM);
	fx_encode(c, fx, w64, true);
	if (save & X86_XFEATURE_FP) {
		xs_put(img, wr, fx, 0, 24);
		xs_put(img, wr, fx, 32, 128);
	}
	if (mx)
		xs_put(img, wr, fx, 24, 8);
	if (save & X86_XFEATURE_SSE)
		xs_put(img, wr, fx, 160, 256);
	if (save & X86_XFEATURE_YMM) {
		memcpy(img + X86_XSAVE_YMM_OFF, c->ymmh, X86_XSAVE_YMM_SIZE);
		for (unsigned k = 0; k < X86_XSAVE_YMM_SIZE / 8; k++)
			wr[X86_XSAVE_YMM_OFF / 8 + k] = true;
	}
	memcpy(img + XS_BV, &bv, 8);
	wr[XS_BV / 8] = true;
	if (flags & XF_COMPACT) {
		comp = rfbm | XS_COMPACT;
		memcpy(img + XS_COMP, &comp, 8);
		wr[XS_COMP / 8] = true;
	}
}

static bool xs_zero(const uint8_t *p, unsigned len)
{
	for (unsigned k = 0; k < len; k++)
		if (p[k])
			return false;
	return true;
}

/*
 * XRSTOR's checks of the header and MXCSR (13.8.1, 13.8.2): false for
 * #GP.  The standard form (XCOMP_BV[63] clear) wants XSTATE_BV within
 * XCR0 and header bytes 8-23 zero; the compacted one XCOMP_BV within
 * XCR0, XSTATE_BV within XCOMP_BV and bytes 16-63 zero.
 */
static bool xrstor_ok(const struct x86_cpu *c, const uint8_t *img,
		      uint64_t rfbm)
{
	uint64_t bv, comp;
	bool mx;

	memcpy(&bv, img + XS_BV, 8);
	memcpy(&comp, img + XS_COMP, 8);
	if (!(comp & XS_COMPACT)) {
		if ((bv & ~c->xcr0) || !xs_zero(img + XS_COMP, 16))
			return false;
		mx = rfbm & (X86_XFEATURE_SSE | X86_XFEATURE_YMM);
	} else {
		if ((comp & ~XS_COMPACT & ~c->xcr0) || (bv & ~comp) ||
		    !xs_zero(img + XS_COMP + 8, 48))
			return false;
		mx = rfbm & bv & X86_XFEATURE_SSE;
	}
	return !mx || !(fx_mxcsr(img) & ~X86_MXCSR_MASK);
}

/*
 * Load components @rfbm from a checked image: those whose XSTATE_BV bit
 * is clear take their initial configuration.  MXCSR comes from memory
 * for SSE or AVX in the standard form, and only with SSE loaded in the
 * compacted form (@cmx), which initialises it otherwise.
 */
static void xs_load(struct x86_cpu *c, const uint8_t *img, uint64_t rfbm,
		    bool w64, bool cmx)
{
	uint64_t bv;

	memcpy(&bv, img + XS_BV, 8);
	if (rfbm & X86_XFEATURE_FP) {
		uint8_t x[FX_USED] = {0};
		uint16_t fcw = X86_FCW_DEFAULT;

		memcpy(x, &fcw, 2);
		if (bv & X86_XFEATURE_FP) {
			memcpy(x, img, 24);
			memcpy(x + 32, img + 32, 128);
		}
		fx_decode(c, x, w64, false);
	}
	if (rfbm & X86_XFEATURE_SSE) {
		if (bv & X86_XFEATURE_SSE)
			memcpy(c->xmm, img + 160, sizeof(c->xmm));
		else
			memset(c->xmm, 0, sizeof(c->xmm));
	}
	if (rfbm & X86_XFEATURE_YMM) {
		if (bv & X86_XFEATURE_YMM)
			memcpy(c->ymmh, img + X86_XSAVE_YMM_OFF,
			       sizeof(c->ymmh));
		else
			memset(c->ymmh, 0, sizeof(c->ymmh));
	}
	if (cmx) {
		if (rfbm & X86_XFEATURE_SSE)
			c->mxcsr = (bv & X86_XFEATURE_SSE) ? fx_mxcsr(img)
							   : X86_MXCSR_DEFAULT;
	} else if (rfbm & (X86_XFEATURE_SSE | X86_XFEATURE_YMM)) {
		c->mxcsr = fx_mxcsr(img);
	}
	c->xinuse = (c->xinuse & ~rfbm) | (bv & rfbm);
}

/*
 * XSAVE (op 0), XSAVEOPT (1), XSAVEC (2), XRSTOR (3); i->ssz = 8 for the
 * 64-bit x87 format.  #UD without CR4.OSXSAVE, #NM for CR0.TS (CR0.EM
 * does not matter), #GP(0) unless 64-byte aligned; then the legacy
 * region, the header and, if requested, YMM are translated, 16 bytes at
 * a time (none crosses a page), before anything is read or written.
 */
static int h_xsave(struct x86_cpu *c, const struct x86_insn *i)
{
	static const uint8_t flags[3] = {0, XF_INITOPT,
					 XF_INITOPT | XF_COMPACT};
	struct x86_mref m[X86_XSAVE_SIZE / 16];
	uint8_t img[X86_XSAVE_SIZE];
	bool wr[XS_WORDS] = {false};
	bool rst = i->op == 3, w64 = i->ssz == 8;
	uint64_t a = x86_ea(c, i), comp, rfbm;
	unsigned n;
	int r;

	if (!(c->cr4 & X86_CR4_OSXSAVE))
		return x86_ud(c);
	if (c->cr0 & X86_CR0_TS)
		return x86_raise(c, X86_NM, false, 0);
	if (a & 63)
		return x86_gp0(c);
	rfbm = ((uint32_t)c->gpr[X86_RAX] | c->gpr[X86_RDX] << 32) & c->xcr0;
	/* Only the components requested: YMM's 256 bytes are not touched. */
	n = x86_xsave_size(rfbm) / 16;
	memset(img, 0, sizeof(img));
	for (unsigned k = 0; k < n; k++) {
		union x86_xmm v;

		r = sse_prep(c, a + 16 * k, 16,
			     rst ? X86_ACC_READ : X86_ACC_WRITE, &m[k]);
		if (r)
			return r;
		rd16(&m[k], &v);
		memcpy(img + 16 * k, &v, 16);
	}
	if (rst) {
		if (!xrstor_ok(c, img, rfbm))
			return x86_gp0(c);
		memcpy(&comp, img + XS_COMP, 8);
		xs_load(c, img, rfbm, w64, comp & XS_COMPACT);
		return advance(c, i);
	}
	xs_store(c, img, wr, rfbm, flags[i->op], w64);
	for (unsigned k = 0; k < XS_WORDS; k++) {
		uint64_t q;

		if (!wr[k])
			continue;
		memcpy(&q, img + 8 * k, 8);
		st_le(m[k / 2].p[0] + 8 * (k % 2), 8, q);
	}
	return advance(c, i);
}

int x86_bind_xsave(struct x86_insn *i, const void *zi, const void *zo)
{
	const ZydisDecodedInstruction *z = zi;
	const ZydisDecodedOperand *o = zo;

	/* The *64 forms (REX.W) store x87's FIP and FDP in 64 bits. */
	static const struct {
		uint16_t mnem;
		uint8_t op, ssz;
	} forms[] = {
		{ZYDIS_MNEMONIC_XSAVE, 0, 4},
		{ZYDIS_MNEMONIC_XSAVE64, 0, 8},
		{ZYDIS_MNEMONIC_XSAVEOPT, 1, 4},
		{ZYDIS_MNEMONIC_XSAVEOPT64, 1, 8},
		{ZYDIS_MNEMONIC_XSAVEC, 2, 4},
		{ZYDIS_MNEMONIC_XSAVEC64, 2, 8},
		{ZYDIS_MNEMONIC_XRSTOR, 3, 4},
		{ZYDIS_MNEMONIC_XRSTOR64, 3, 8},
	};

	if (z->operand_count_visible != 1 ||
	    o[0].type != ZYDIS_OPERAND_TYPE_MEMORY ||
	    (z->attributes & ZYDIS_ATTRIB_HAS_LOCK))
		return -1;
	for (unsigned k = 0; k < ARRAY_SIZE(forms); k++) {
		if (forms[k].mnem != z->mnemonic)
			continue;
		i->op = forms[k].op;
		i->ssz = forms[k].ssz;
		i->fn = h_xsave;
		return 0;
	}
	return -1;
}

/*
 * KVM_GET_XSAVE: XSAVE64 of the supported components into a zeroed image, with
 * the in-use rule of the XSAVES the kernel saves a guest with.
 */
void x86_get_xsave(const struct x86_cpu *c, uint8_t area[X86_XSAVE_SIZE])
{
	bool wr[XS_WORDS];

	memset(area, 0, X86_XSAVE_SIZE);
	xs_store(c, area, wr, X86_XCR0_SUPPORTED, XF_MXUSE, true);
}

/*
 * KVM_SET_XSAVE: the kernel's checks (copy_uabi_to_xstate()): XSTATE_BV
 * within what it supports, XCOMP_BV and the reserved header bytes zero,
 * a valid MXCSR when anything is loaded (checked even with x87 alone);
 * then what its XRSTORS does with the image, MXCSR following SSE.
 */
int x86_set_xsave(struct x86_cpu *c, const uint8_t area[X86_XSAVE_SIZE])
{
	uint64_t bv;

	memcpy(&bv, area + XS_BV, 8);
	if ((bv & ~X86_XCR0_SUPPORTED) || !xs_zero(area + XS_COMP, 56))
		return -EINVAL;
	if (bv && (fx_mxcsr(area) & ~X86_MXCSR_MASK))
		return -EINVAL;
	xs_load(c, area, X86_XCR0_SUPPORTED, true, true);
	return 0;
}

/* ---- Binding -------------------------------------------------------- */

/* The kinds B_* and flags BF_* are in internal.h, shared with avx.c. */
struct sse_bind {
	uint16_t mnem;
	uint8_t kind, op, op2, flags;
};

#define M(x) ZYDIS_MNEMONIC_##x
/* Table rows, braces added at the use: {OP(PAND, and)}. */
#define OP(mn, o) M(mn), B_OP, SO_##o, 0, 0
#define MV(mn, ld, rr, fl) M(mn), B_MOVE, SO_##ld, SO_##rr, fl
#define FP(mn, o) M(mn), B_FP, FO_##o, 0, 0

static const struct sse_bind sse_binds[] = {
	{MV(MOVAPS, mov, mov, 0)},
	{MV(MOVAPD, mov, mov, 0)},
	{MV(MOVDQA, mov, mov, 0)},
	{MV(MOVNTPS, mov, mov, 0)},
	{MV(MOVNTPD, mov, mov, 0)},
	{MV(MOVNTDQ, mov, mov, 0)},
	{MV(MOVNTDQA, mov, mov, 0)},
	{MV(MOVUPS, mov, mov, BF_UNALIGNED)},
	{MV(MOVUPD, mov, mov, BF_UNALIGNED)},
	{MV(MOVDQU, mov, mov, BF_UNALIGNED)},
	{MV(LDDQU, mov, mov, BF_UNALIGNED)},
	{MV(MOVSS, mov, merge32, 0)},
	{MV(MOVSD, mov, merge64, 0)},
	{MV(MOVD, mov, mov, 0)},
	{MV(MOVQ, mov, zx64, 0)},
	{MV(MOVLPS, merge64, merge64, 0)},
	{MV(MOVLPD, merge64, merge64, 0)},
	{MV(MOVHPS, hi64, hi64, BF_HIGH)},
	{MV(MOVHPD, hi64, hi64, BF_HIGH)},
	{OP(MOVLHPS, hi64)},
	{OP(MOVHLPS, hilo)},
	{OP(MOVDDUP, movddup)},
	{OP(MOVSLDUP, movsldup)},
	{OP(MOVSHDUP, movshdup)},
	{OP(PAND, and)},
	{OP(ANDPS, and)},
	{OP(ANDPD, and)},
	{OP(PANDN, andn)},
	{OP(ANDNPS, andn)},
	{OP(ANDNPD, andn)},
	{OP(POR, or)},
	{OP(ORPS, or)},
	{OP(ORPD, or)},
	{OP(PXOR, xor)},
	{OP(XORPS, xor)},
	{OP(XORPD, xor)},
	{OP(PADDB, paddb)},
	{OP(PADDW, paddw)},
	{OP(PADDD, paddd)},
	{OP(PADDQ, paddq)},
	{OP(PSUBB, psubb)},
	{OP(PSUBW, psubw)},
	{OP(PSUBD, psubd)},
	{OP(PSUBQ, psubq)},
	{OP(PADDSB, paddsb)},
	{OP(PADDSW, paddsw)},
	{OP(PADDUSB, paddusb)},
	{OP(PADDUSW, paddusw)},
	{OP(PSUBSB, psubsb)},
	{OP(PSUBSW, psubsw)},
	{OP(PSUBUSB, psubusb)},
	{OP(PSUBUSW, psubusw)},
	{OP(PMULLW, pmullw)},
	{OP(PMULHW, pmulhw)},
	{OP(PMULHUW, pmulhuw)},
	{OP(PMULLD, pmulld)},
	{OP(PMULHRSW, pmulhrsw)},
	{OP(PAVGB, pavgb)},
	{OP(PAVGW, pavgw)},
	{OP(PMULUDQ, pmuludq)},
	{OP(PMULDQ, pmuldq)},
	{OP(PMADDWD, pmaddwd)},
	{OP(PMADDUBSW, pmaddubsw)},
	{OP(PSADBW, psadbw)},
	{OP(PCMPEQB, pcmpeqb)},
	{OP(PCMPEQW, pcmpeqw)},
	{OP(PCMPEQD, pcmpeqd)},
	{OP(PCMPEQQ, pcmpeqq)},
	{OP(PCMPGTB, pcmpgtb)},
	{OP(PCMPGTW, pcmpgtw)},
	{OP(PCMPGTD, pcmpgtd)},
	{OP(PCMPGTQ, pcmpgtq)},
	{OP(PMINUB, pminub)},
	{OP(PMAXUB, pmaxub)},
	{OP(PMINUW, pminuw)},
	{OP(PMAXUW, pmaxuw)},
	{OP(PMINUD, pminud)},
	{OP(PMAXUD, pmaxud)},
	{OP(PMINSB, pminsb)},
	{OP(PMAXSB, pmaxsb)},
	{OP(PMINSW, pminsw)},
	{OP(PMAXSW, pmaxsw)},
	{OP(PMINSD, pminsd)},
	{OP(PMAXSD, pmaxsd)},
	{OP(PABSB, pabsb)},
	{OP(PABSW, pabsw)},
	{OP(PABSD, pabsd)},
	{OP(PSIGNB, psignb)},
	{OP(PSIGNW, psignw)},
	{OP(PSIGND, psignd)},
	{OP(PHADDW, phaddw)},
	{OP(PHADDD, phaddd)},
	{OP(PHADDSW, phaddsw)},
	{OP(PHSUBW, phsubw)},
	{OP(PHSUBD, phsubd)},
	{OP(PHSUBSW, phsubsw)},
	{OP(PHMINPOSUW, phminposuw)},
	{OP(PACKSSWB, packsswb)},
	{OP(PACKUSWB, packuswb)},
	{OP(PACKSSDW, packssdw)},
	{OP(PACKUSDW, packusdw)},
	{OP(PUNPCKLBW, punpcklbw)},
	{OP(PUNPCKLWD, punpcklwd)},
	{OP(PUNPCKLDQ, punpckldq)},
	{OP(PUNPCKLQDQ, punpcklqdq)},
	{OP(PUNPCKHBW, punpckhbw)},
	{OP(PUNPCKHWD, punpckhwd)},
	{OP(PUNPCKHDQ, punpckhdq)},
	{OP(PUNPCKHQDQ, punpckhqdq)},
	{OP(UNPCKLPS, punpckldq)},
	{OP(UNPCKHPS, punpckhdq)},
	{OP(UNPCKLPD, punpcklqdq)},
	{OP(UNPCKHPD, punpckhqdq)},
	{OP(PSHUFD, pshufd)},
	{OP(PSHUFLW, pshuflw)},
	{OP(PSHUFHW, pshufhw)},
	{OP(PSHUFB, pshufb)},
	{OP(PALIGNR, palignr)},
	{OP(SHUFPS, shufps)},
	{OP(SHUFPD, shufpd)},
	{OP(PBLENDW, pblendw)},
	{OP(BLENDPS, blendps)},
	{OP(BLENDPD, blendpd)},
	{OP(PMOVZXBW, pmovzxbw)},
	{OP(PMOVZXBD, pmovzxbd)},
	{OP(PMOVZXBQ, pmovzxbq)},
	{OP(PMOVZXWD, pmovzxwd)},
	{OP(PMOVZXWQ, pmovzxwq)},
	{OP(PMOVZXDQ, pmovzxdq)},
	{OP(PMOVSXBW, pmovsxbw)},
	{OP(PMOVSXBD, pmovsxbd)},
	{OP(PMOVSXBQ, pmovsxbq)},
	{OP(PMOVSXWD, pmovsxwd)},
	{OP(PMOVSXWQ, pmovsxwq)},
	{OP(PMOVSXDQ, pmovsxdq)},
	/* Shifts: op for an immediate count, op2 for an XMM/m128 count. */
	{M(PSLLW), B_OP, SO_psllw_i, SO_psllw_x, 0},
	{M(PSLLD), B_OP, SO_pslld_i, SO_pslld_x, 0},
	{M(PSLLQ), B_OP, SO_psllq_i, SO_psllq_x, 0},
	{M(PSRLW), B_OP, SO_psrlw_i, SO_psrlw_x, 0},
	{M(PSRLD), B_OP, SO_psrld_i, SO_psrld_x, 0},
	{M(PSRLQ), B_OP, SO_psrlq_i, SO_psrlq_x, 0},
	{M(PSRAW), B_OP, SO_psraw_i, SO_psraw_x, 0},
	{M(PSRAD), B_OP, SO_psrad_i, SO_psrad_x, 0},
	{OP(PSLLDQ, pslldq)},
	{OP(PSRLDQ, psrldq)},
	{M(PINSRB), B_INSERT, SO_pinsrb, 1, 0},
	{M(PINSRW), B_INSERT, SO_pinsrw, 2, 0},
	{M(PINSRD), B_INSERT, SO_pinsrd, 4, 0},
	{M(PINSRQ), B_INSERT, SO_pinsrq, 8, 0},
	{M(INSERTPS), B_INSERTPS, 0, 0, 0},
	{M(PEXTRB), B_EXTRACT, 0, 1, 0},
	{M(PEXTRW), B_EXTRACT, 0, 2, 0},
	{M(PEXTRD), B_EXTRACT, 0, 4, 0},
	{M(PEXTRQ), B_EXTRACT, 0, 8, 0},
	{M(EXTRACTPS), B_EXTRACT, 0, 4, 0},
	{M(PMOVMSKB), B_MOVMSK, 0, 1, 0},
	{M(MOVMSKPS), B_MOVMSK, 0, 4, 0},
	{M(MOVMSKPD), B_MOVMSK, 0, 8, 0},
	{M(PTEST), B_PTEST, 0, 0, 0},
	{M(PBLENDVB), B_BLENDV, 0, 1, 0},
	{M(BLENDVPS), B_BLENDV, 0, 4, 0},
	{M(BLENDVPD), B_BLENDV, 0, 8, 0},
	{FP(ADDPS, addps)},
	{FP(ADDPD, addpd)},
	{FP(ADDSS, addss)},
	{FP(ADDSD, addsd)},
	{FP(SUBPS, subps)},
	{FP(SUBPD, subpd)},
	{FP(SUBSS, subss)},
	{FP(SUBSD, subsd)},
	{FP(MULPS, mulps)},
	{FP(MULPD, mulpd)},
	{FP(MULSS, mulss)},
	{FP(MULSD, mulsd)},
	{FP(DIVPS, divps)},
	{FP(DIVPD, divpd)},
	{FP(DIVSS, divss)},
	{FP(DIVSD, divsd)},
	{FP(MINPS, minps)},
	{FP(MINPD, minpd)},
	{FP(MINSS, minss)},
	{FP(MINSD, minsd)},
	{FP(MAXPS, maxps)},
	{FP(MAXPD, maxpd)},
	{FP(MAXSS, maxss)},
	{FP(MAXSD, maxsd)},
	{FP(SQRTPS, sqrtps)},
	{FP(SQRTPD, sqrtpd)},
	{FP(SQRTSS, sqrtss)},
	{FP(SQRTSD, sqrtsd)},
	{FP(RCPPS, rcpps)},
	{FP(RCPSS, rcpss)},
	{FP(RSQRTPS, rsqrtps)},
	{FP(RSQRTSS, rsqrtss)},
	{FP(HADDPS, haddps)},
	{FP(HADDPD, haddpd)},
	{FP(HSUBPS, hsubps)},
	{FP(HSUBPD, hsubpd)},
	{FP(ADDSUBPS, addsubps)},
	{FP(ADDSUBPD, addsubpd)},
	{FP(CVTSS2SD, cvtss2sd)},
	{FP(CVTSD2SS, cvtsd2ss)},
	{FP(CVTDQ2PS, cvtdq2ps)},
	{FP(CVTDQ2PD, cvtdq2pd)},
	{FP(CVTPS2DQ, cvtps2dq)},
	{FP(CVTTPS2DQ, cvttps2dq)},
	{FP(CVTPD2DQ, cvtpd2dq)},
	{FP(CVTTPD2DQ, cvttpd2dq)},
	{FP(CVTPS2PD, cvtps2pd)},
	{FP(CVTPD2PS, cvtpd2ps)},
	{FP(CMPPS, cmpps)},
	{FP(CMPPD, cmppd)},
	{FP(CMPSS, cmpss)},
	{FP(CMPSD, cmpsd)},
	{FP(ROUNDPS, roundps)},
	{FP(ROUNDPD, roundpd)},
	{FP(ROUNDSS, roundss)},
	{FP(ROUNDSD, roundsd)},
	{FP(DPPS, dpps)},
	{FP(DPPD, dppd)},
	{M(CVTSS2SI), B_FPTOI, 0, 0, 0},
	{M(CVTTSS2SI), B_FPTOI, 1, 0, 0},
	{M(CVTSD2SI), B_FPTOI, 2, 0, 0},
	{M(CVTTSD2SI), B_FPTOI, 3, 0, 0},
	{M(CVTSI2SS), B_ITOFP, 0, 0, 0},
	{M(CVTSI2SD), B_ITOFP, 1, 0, 0},
	{M(COMISS), B_COMI, 0, 0, 0},
	{M(COMISD), B_COMI, 1, 0, 0},
	{M(UCOMISS), B_COMI, 2, 0, 0},
	{M(UCOMISD), B_COMI, 3, 0, 0},
	/* SSE4.2 string compares take unaligned m128. */
	{M(PCMPESTRI), B_PCMPSTR, 0, 0, BF_UNALIGNED},
	{M(PCMPESTRM), B_PCMPSTR, 1, 0, BF_UNALIGNED},
	{M(PCMPISTRI), B_PCMPSTR, 2, 0, BF_UNALIGNED},
	{M(PCMPISTRM), B_PCMPSTR, 3, 0, BF_UNALIGNED},
	{OP(MPSADBW, mpsadbw)},
};

static const struct sse_bind *sse_find(unsigned mnem)
{
	for (unsigned k = 0; k < sizeof(sse_binds) / sizeof(sse_binds[0]); k++)
		if (sse_binds[k].mnem == mnem)
			return &sse_binds[k];
	return NULL;
}

int x86_sse_form(unsigned mnem, uint8_t *kind, uint8_t *op, uint8_t *op2,
		 uint8_t *flags)
{
	const struct sse_bind *b = sse_find(mnem);

	if (!b)
		return -1;
	*kind = b->kind;
	*op = b->op;
	*op2 = b->op2;
	*flags = b->flags;
	return 0;
}

int x86_sse_bind_form(struct x86_insn *i, unsigned kind)
{
	static const x86_handler h[] = {
		[B_OP] = h_sse,
		[B_MOVE] = h_sse,
		[B_INSERT] = h_sse,
		[B_EXTRACT] = h_sse_store,
		[B_MOVMSK] = h_sse_movmsk,
		[B_PTEST] = h_ptest,
		[B_BLENDV] = h_blendv,
		[B_INSERTPS] = h_sse,
		[B_FP] = h_fp,
		[B_FPTOI] = h_fp_to_int,
		[B_ITOFP] = h_int_to_fp,
		[B_COMI] = h_comi,
		[B_PCMPSTR] = h_pcmpstr,
		[B_STORE] = h_sse_store,
		[B_MASKMOV] = h_maskmov,
		[B_MXCSR] = h_mxcsr,
	};

	if (kind >= ARRAY_SIZE(h) || !h[kind])
		return -1;
	if (kind == B_INSERTPS)
		i->op = i->k[1] == K_MEM ? SO_insertps_m : SO_insertps_r;
	i->pfx |= P_VEX;
	i->fn = h[kind];
	return 0;
}

static bool is_xmm(const ZydisDecodedOperand *o)
{
	return o->type == ZYDIS_OPERAND_TYPE_REGISTER &&
	       ZydisRegisterGetClass(o->reg.value) == ZYDIS_REGCLASS_XMM;
}

/* GPRs as zreg() numbers them; 8/16-bit or high-byte registers refused. */
static bool is_gpr(const ZydisDecodedOperand *o)
{
	ZydisRegisterClass cl;

	if (o->type != ZYDIS_OPERAND_TYPE_REGISTER)
		return false;
	cl = ZydisRegisterGetClass(o->reg.value);
	return cl == ZYDIS_REGCLASS_GPR32 || cl == ZYDIS_REGCLASS_GPR64;
}

static bool is_mem(const ZydisDecodedOperand *o)
{
	return o->type == ZYDIS_OPERAND_TYPE_MEMORY;
}

/*
 * Pick the handler of a legacy-encoded SSE instruction (an XMM operand,
 * or LDMXCSR/STMXCSR/FXSAVE/FXRSTOR); non-zero for what is not modelled
 * (#UD).  Legacy SSE requires 16-byte alignment of every 16-byte memory
 * operand except the unaligned moves.
 */
int x86_bind_sse(struct x86_insn *i, const void *zi, const void *zo)
{
	const ZydisDecodedInstruction *z = zi;
	const ZydisDecodedOperand *o = zo;
	const struct sse_bind *b;
	unsigned nv = z->operand_count_visible;
	bool w64;

	if (z->encoding != ZYDIS_INSTRUCTION_ENCODING_LEGACY ||
	    (z->attributes & ZYDIS_ATTRIB_HAS_LOCK))
		return -1;
	i->ssz = 0;
	i->imm2 = 0;
	for (unsigned n = 0; n < nv && n < 3; n++)
		if (is_xmm(&o[n]))
			i->r[n] =
				XMM_F | (o[n].reg.value - ZYDIS_REGISTER_XMM0);

	switch (z->mnemonic) {
	case ZYDIS_MNEMONIC_LDMXCSR:
	case ZYDIS_MNEMONIC_STMXCSR:
		i->op = z->mnemonic == ZYDIS_MNEMONIC_STMXCSR;
		i->fn = h_mxcsr;
		return 0;
	case ZYDIS_MNEMONIC_FXSAVE:
	case ZYDIS_MNEMONIC_FXSAVE64:
	case ZYDIS_MNEMONIC_FXRSTOR:
	case ZYDIS_MNEMONIC_FXRSTOR64:
		i->op = z->mnemonic == ZYDIS_MNEMONIC_FXRSTOR ||
			z->mnemonic == ZYDIS_MNEMONIC_FXRSTOR64;
		w64 = z->mnemonic == ZYDIS_MNEMONIC_FXSAVE64 ||
		      z->mnemonic == ZYDIS_MNEMONIC_FXRSTOR64;
		i->ssz = w64 ? 8 : 4;
		i->fn = h_fx;
		return 0;
	case ZYDIS_MNEMONIC_CRC32:
		/* GPRs only: not an SSE-state instruction (no #NM, no OSFXSR).
		 */
		if (!is_gpr(&o[0]) || nv != 2)
			return -1;
		i->osz = o[0].size / 8;
		i->ssz = o[1].size / 8;
		i->fn = h_crc32;
		return 0;
	case ZYDIS_MNEMONIC_MASKMOVDQU:
		if (nv != 2 || !is_xmm(&o[0]) || !is_xmm(&o[1]))
			return -1;
		i->base = X86_RDI; /* the implicit destination */
		i->index = NO_REG;
		i->disp = 0;
		i->fn = h_maskmov;
		return 0;
	case ZYDIS_MNEMONIC_MOVNTI:
		if (!is_mem(&o[0]) || !is_gpr(&o[1]))
			return -1;
		i->osz = o[1].size / 8;
		i->fn = h_movnti;
		return 0;
	default:
		break;
	}

	b = sse_find(z->mnemonic);
	if (!b || nv < 1)
		return -1;
	/* The memory or GPR operand, and its size. */
	for (unsigned n = 0; n < nv && n < 3; n++) {
		if (is_mem(&o[n]) || is_gpr(&o[n]))
			i->ssz = o[n].size / 8;
		else if (o[n].type == ZYDIS_OPERAND_TYPE_REGISTER &&
			 !is_xmm(&o[n]))
			return -1; /* MMX, 8/16-bit GPRs, ... */
	}
	if (i->ssz == 16 && !(b->flags & BF_UNALIGNED))
		i->imm2 = SSE_A16;

	switch (b->kind) {
	case B_MOVE:
		if (nv != 2)
			return -1;
		if (is_xmm(&o[0])) {
			i->op = is_xmm(&o[1]) ? b->op2 : b->op;
			i->fn = h_sse;
			return 0;
		}
		if (!is_xmm(&o[1]))
			return -1;
		/* A store of the low (or high) ssz bytes; 16 = all. */
		i->op = (b->flags & BF_HIGH) ? 1 : 0;
		i->fn = h_sse_store;
		return 0;
	case B_OP:
		if (!is_xmm(&o[0]) || nv < 2 || is_gpr(&o[1]))
			return -1;
		i->op = b->op;
		if (b->op2 && o[1].type != ZYDIS_OPERAND_TYPE_IMMEDIATE)
			i->op = b->op2; /* shift count in XMM/m128 */
		i->fn = h_sse;
		return 0;
	case B_INSERT:
		if (!is_xmm(&o[0]) || nv != 3)
			return -1;
		i->op = b->op;
		i->ssz = b->op2;
		i->fn = h_sse;
		return 0;
	case B_INSERTPS:
		if (!is_xmm(&o[0]) || nv != 3)
			return -1;
		i->op = is_mem(&o[1]) ? SO_insertps_m : SO_insertps_r;
		i->fn = h_sse;
		return 0;
	case B_EXTRACT:
		if (nv != 3 || !is_xmm(&o[1]))
			return -1;
		i->ssz = b->op2;
		i->op = (uint8_t)i->imm & (16 / b->op2 - 1);
		i->fn = h_sse_store;
		return 0;
	case B_MOVMSK:
		if (!is_gpr(&o[0]) || !is_xmm(&o[1]))
			return -1;
		i->ssz = b->op2;
		i->fn = h_sse_movmsk;
		return 0;
	case B_PTEST:
		if (!is_xmm(&o[0]))
			return -1;
		i->fn = h_ptest;
		return 0;
	case B_BLENDV:
		if (!is_xmm(&o[0]))
			return -1;
		i->op = b->op2;
		i->fn = h_blendv;
		return 0;
	case B_FP:
		if (!is_xmm(&o[0]) || nv < 2 ||
		    !(is_xmm(&o[1]) || is_mem(&o[1])))
			return -1;
		i->op = b->op;
		i->fn = h_fp;
		return 0;
	case B_FPTOI:
		if (!is_gpr(&o[0]) || is_gpr(&o[1]))
			return -1;
		i->op = b->op;
		i->osz = o[0].size / 8;
		i->fn = h_fp_to_int;
		return 0;
	case B_ITOFP:
		if (!is_xmm(&o[0]) || is_xmm(&o[1]))
			return -1;
		i->op = b->op;
		i->fn = h_int_to_fp;
		return 0;
	case B_COMI:
	case B_PCMPSTR:
		if (!is_xmm(&o[0]) || !(is_xmm(&o[1]) || is_mem(&o[1])))
			return -1;
		i->op = b->op;
		i->fn = b->kind == B_COMI ? h_comi : h_pcmpstr;
		return 0;
	}
	return -1;
}
