// SPDX-License-Identifier: MIT
/*
 * AVX: the VEX encodings.  VEX.128 forms of the SSE..SSE4.2 instructions
 * run on sse.c's handlers (P_VEX records: a separate first source, bits
 * 255:128 of the destination cleared); the VEX.256 forms of the
 * floating-point ones, the VEX compares with their 32 predicates and the
 * instructions new with AVX (VBROADCASTSS/SD/F128, VINSERTF128,
 * VEXTRACTF128, VPERM2F128, VPERMILPS/PD, VMASKMOVPS/PD, VTESTPS/PD,
 * VZEROUPPER, VZEROALL) are here.  Nothing of AVX2, FMA or F16C: those
 * stay #UD.
 *
 * Every VEX instruction is #UD unless CR4.OSXSAVE is set and XCR0 has SSE
 * and YMM, then #NM for CR0.TS (SDM vol. 1, 14.3); CR0.EM and CR4.OSFXSR
 * do not matter.  A LOCK, 66, F2, F3 or REX prefix before VEX is #UD
 * (Zydis refuses to decode it).  Only VMOVAPS/APD, VMOVDQA and the
 * non-temporal moves check alignment (of the operand's size); no other
 * VEX memory operand faults for misalignment.
 *
 * Records (after x86_bind_avx()): r[0] the destination (XMM_F | n, a GPR
 * or memory in k[0]), r[2] the first source (VEX.vvvv's register, or the
 * destination where there is none), r[1]/k[1] the second source
 * (register or memory of ssz bytes; K_IMM for none), imm the immediate
 * (or IS4's register in bits 7:4), op the lane operation, imm2 the flags
 * below.  YMM n is xmm[n] (bits 127:0) and ymmh[n] (bits 255:128).
 */
#include <errno.h>
#include <pthread.h>
#include <string.h>

#include <Zydis/Zydis.h>

#include "x86/internal.h"

#define A_256 2	     /* a 256-bit operation */
#define A_HI_SHIFT 4 /* imm2[7:4]: imm8 shift for the upper lane */
#define A_VAR 0x100  /* VPERMILPS/PD with a register control */

static inline int advance(struct x86_cpu *c, const struct x86_insn *i)
{
	c->rip += i->len;
	return X86_OK;
}

int x86_avx_avail(struct x86_cpu *c)
{
	const uint64_t need = X86_XFEATURE_SSE | X86_XFEATURE_YMM;

	if (!(c->cr4 & X86_CR4_OSXSAVE) || (c->xcr0 & need) != need)
		return x86_ud(c);
	if (c->cr0 & X86_CR0_TS)
		return x86_raise(c, X86_NM, false, 0);
	return X86_OK;
}

/* A 256-bit value: lane 0 is bits 127:0. */
struct ymm {
	union x86_xmm l[2];
};

static inline struct ymm yget(const struct x86_cpu *c, unsigned r)
{
	struct ymm v = {{c->xmm[r & 15], c->ymmh[r & 15]}};

	return v;
}

static inline void yset(struct x86_cpu *c, unsigned r, const struct ymm *v)
{
	c->xmm[r & 15] = v->l[0];
	c->ymmh[r & 15] = v->l[1];
}

/* An XMM destination of a VEX instruction: bits 255:128 cleared. */
static inline void xset(struct x86_cpu *c, unsigned r, const union x86_xmm *v)
{
	c->xmm[r & 15] = *v;
	memset(&c->ymmh[r & 15], 0, sizeof(c->ymmh[0]));
}

/* ---- Memory --------------------------------------------------------- */

/* Translate @len bytes at @a, #GP(0) if @align and misaligned. */
static int vprep(struct x86_cpu *c, uint64_t a, unsigned len, unsigned acc,
		 bool align, struct x86_mref *m)
{
	int r;

	if (align && (a & (len - 1)))
		return x86_gp0(c);
	r = x86_mem_prep(c, a, len, acc, m);
	if (r)
		return r;
	if (m->mmio)
		return x86_stop_internal(c, "VEX access to MMIO");
	return X86_OK;
}

/* Byte k of a translated operand. */
static inline uint8_t *mbyte(const struct x86_mref *m, unsigned k)
{
	return k < m->n0 ? m->p[0] + k : m->p[1] + (k - m->n0);
}

/* 8-byte pieces where one page holds them, as sse.c's rd16/wr16. */
static void mread(const struct x86_mref *m, void *dst, unsigned len)
{
	uint8_t *d = dst;

	for (unsigned k = 0; k < len; k += 8) {
		uint64_t v = 0;

		if (len - k >= 8 && (k + 8 <= m->n0 || k >= m->n0)) {
			v = ld_le(mbyte(m, k), 8);
			memcpy(d + k, &v, 8);
			continue;
		}
		for (unsigned j = k; j < len && j < k + 8; j++)
			d[j] = ld_le(mbyte(m, j), 1);
	}
}

static void mwrite(const struct x86_mref *m, const void *src, unsigned len)
{
	const uint8_t *s = src;

	for (unsigned k = 0; k < len; k += 8) {
		uint64_t v;

		if (len - k >= 8 && (k + 8 <= m->n0 || k >= m->n0)) {
			memcpy(&v, s + k, 8);
			st_le(mbyte(m, k), 8, v);
			continue;
		}
		for (unsigned j = k; j < len && j < k + 8; j++)
			st_le(mbyte(m, j), 1, s[j]);
	}
}

/* The second source: a register (all 256 bits) or ssz bytes of memory. */
static int vsrc(struct x86_cpu *c, const struct x86_insn *i, struct ymm *s)
{
	struct x86_mref m;
	int r;

	memset(s, 0, sizeof(*s));
	if (i->k[1] == K_REG) {
		*s = yget(c, i->r[1]);
		return X86_OK;
	}
	if (i->k[1] != K_MEM)
		return X86_OK;
	r = vprep(c, x86_ea(c, i), i->ssz, X86_ACC_READ, i->imm2 & SSE_A16, &m);
	if (r)
		return r;
	mread(&m, s, i->ssz);
	return X86_OK;
}

/* ---- Lane-wise 256-bit operations ----------------------------------- */

static inline unsigned lane_imm(const struct x86_insn *i, unsigned l)
{
	return (uint8_t)(i->imm >> (l ? (i->imm2 >> A_HI_SHIFT & 15) : 0));
}

/* Integer-unit operations (logic, unpacks, shuffles, blends, moves). */
static int h_lane(struct x86_cpu *c, const struct x86_insn *i)
{
	struct ymm s, d;
	int r = x86_avx_avail(c);

	if (!r)
		r = vsrc(c, i, &s);
	if (r)
		return r;
	d = yget(c, i->r[2]);
	for (unsigned l = 0; l < 2; l++)
		x86_sse_lane(i->op, &d.l[l], &s.l[l], lane_imm(i, l));
	yset(c, i->r[0], &d);
	return advance(c, i);
}

/* Floating point, each lane on the host; flags of both lanes. */
static int h_fplane(struct x86_cpu *c, const struct x86_insn *i)
{
	struct ymm s, d, in;
	unsigned f = 0;
	int r = x86_avx_avail(c);

	if (!r)
		r = vsrc(c, i, &s);
	if (r)
		return r;
	d = yget(c, i->r[2]);
	in = d;
	for (unsigned l = 0; l < 2; l++)
		f |= x86_fp_lane(c, i->op, &d.l[l], &s.l[l], lane_imm(i, l));
	f = x86_fp_merge(c, f);
	/* VDPPS stops at the first step with an unmasked exception. */
	if (i->mnem == ZYDIS_MNEMONIC_VDPPS && (~c->mxcsr >> 7 & 0x3f))
		f = x86_fp_dpps2(c, in.l, s.l, (uint8_t)i->imm);
	r = x86_fp_commit(c, f);
	if (r)
		return r;
	yset(c, i->r[0], &d);
	return advance(c, i);
}

/*
 * The conversions between 128 and 256 bits: VCVTDQ2PD and VCVTPS2PD
 * ymm, xmm/m128 widen (op is the 128-bit form, run on each half of the
 * source), VCVTPD2PS, VCVTPD2DQ and VCVTTPD2DQ xmm, ymm/m256 narrow (each
 * lane gives 64 bits).
 */
static int h_cvt256(struct x86_cpu *c, const struct x86_insn *i)
{
	bool widen = i->imm2 & A_VAR;
	struct ymm s, d = {0};
	unsigned f = 0;
	int r = x86_avx_avail(c);

	if (!r)
		r = vsrc(c, i, &s);
	if (r)
		return r;
	for (unsigned l = 0; l < 2; l++) {
		union x86_xmm in = s.l[l], out = {0};

		if (widen) {
			in.q[0] = s.l[0].q[l];
			in.q[1] = 0;
		}
		f |= x86_fp_lane(c, i->op, &out, &in, 0);
		if (widen)
			d.l[l] = out;
		else
			d.l[0].q[l] = out.q[0];
	}
	r = x86_fp_commit(c, x86_fp_merge(c, f));
	if (r)
		return r;
	yset(c, i->r[0], &d);
	return advance(c, i);
}

/* ---- Compares: VCMPPS/PD/SS/SD with imm8[4:0] ------------------------ */

typedef long long v128 __attribute__((vector_size(16)));

#define VC_ASM(insn, base, n)                                                \
	case (base) + (n):                                                   \
		__asm__ volatile("stmxcsr %[sv]\n\tldmxcsr %[mx]\n\t" insn   \
				 " %[i], %[y], %[x], %[x]\n\t"               \
				 "stmxcsr %[mx]\n\tldmxcsr %[sv]"            \
				 : [x] "+x"(x), [sv] "=m"(sv), [mx] "+m"(mx) \
				 : [y] "x"(y), [i] "i"(n));                  \
		break;
#define VC4(f, b) f(b) f((b) + 1) f((b) + 2) f((b) + 3)
#define VC16(f, b) VC4(f, b) VC4(f, (b) + 4) VC4(f, (b) + 8) VC4(f, (b) + 12)
#define VC32(f) VC16(f, 0) VC16(f, 16)
#define C_PS(n) VC_ASM("vcmpps", 0, n)
#define C_PD(n) VC_ASM("vcmppd", 32, n)
#define C_SS(n) VC_ASM("vcmpss", 64, n)
#define C_SD(n) VC_ASM("vcmpsd", 96, n)

/* One lane of compare @op (0 PS, 1 PD, 2 SS, 3 SD): MXCSR flags raised. */
static unsigned vcmp_lane(const struct x86_cpu *c, unsigned op,
			  union x86_xmm *d, const union x86_xmm *s,
			  unsigned imm)
{
	uint32_t sv, mx = (c->mxcsr & ~0x3fu) | 0x1f80;
	v128 x, y;

	memcpy(&x, d, 16);
	memcpy(&y, s, 16);
	switch (op << 5 | (imm & 31)) {
		VC32(C_PS)
		VC32(C_PD)
		VC32(C_SS)
		VC32(C_SD)
	}
	memcpy(d, &x, 16);
	return mx & 0x3f;
}

static int h_vcmp(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned n = i->imm2 & A_256 ? 2 : 1, f = 0;
	struct ymm s, d;
	int r = x86_avx_avail(c);

	if (!r)
		r = vsrc(c, i, &s);
	if (r)
		return r;
	d = yget(c, i->r[2]);
	for (unsigned l = 0; l < n; l++)
		f |= vcmp_lane(c, i->op, &d.l[l], &s.l[l], (uint8_t)i->imm);
	/* Compares raise only IE and DE: the masked flags are the answer. */
	r = x86_fp_commit(c, x86_fp_merge(c, f));
	if (r)
		return r;
	if (n == 1)
		memset(&d.l[1], 0, 16);
	yset(c, i->r[0], &d);
	return advance(c, i);
}

/* ---- Moves, masks, tests -------------------------------------------- */

/* VMOVAPS/.../VLDDQU ymm: load, store or copy 32 bytes. */
static int h_vmov256(struct x86_cpu *c, const struct x86_insn *i)
{
	struct x86_mref m;
	struct ymm v;
	int r = x86_avx_avail(c);

	if (r)
		return r;
	if (i->k[0] == K_MEM) {
		r = vprep(c, x86_ea(c, i), 32, X86_ACC_WRITE, i->imm2 & SSE_A16,
			  &m);
		if (r)
			return r;
		v = yget(c, i->r[1]);
		mwrite(&m, &v, 32);
		return advance(c, i);
	}
	r = vsrc(c, i, &v);
	if (r)
		return r;
	yset(c, i->r[0], &v);
	return advance(c, i);
}

/* VMOVMSKPS/PD ymm: the sign bits of the lanes of ssz bytes (op). */
static int h_vmovmsk(struct x86_cpu *c, const struct x86_insn *i)
{
	struct ymm v = yget(c, i->r[1]);
	const uint8_t *b = (const uint8_t *)&v;
	uint64_t m = 0;
	int r = x86_avx_avail(c);

	if (r)
		return r;
	for (unsigned k = 0; k < 32 / i->op; k++)
		m |= (uint64_t)(b[k * i->op + i->op - 1] >> 7) << k;
	c->gpr[i->r[0]] = m;
	return advance(c, i);
}

/*
 * VPTEST (op 1: all bits), VTESTPS (4), VTESTPD (8): ZF = !(d & s), CF =
 * !(~d & s) over the bits tested; the other arithmetic flags 0.
 */
static int h_vtest(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned n = i->imm2 & A_256 ? 4 : 2;
	struct ymm s, d = yget(c, i->r[0]);
	uint64_t sel = i->op == 1   ? ~0ull
		       : i->op == 4 ? 0x8000000080000000ull
				    : 0x8000000000000000ull;
	uint64_t z = 0, cf = 0, f;
	int r = x86_avx_avail(c);

	if (!r)
		r = vsrc(c, i, &s);
	if (r)
		return r;
	for (unsigned k = 0; k < n; k++) {
		z |= d.l[k / 2].q[k % 2] & s.l[k / 2].q[k % 2] & sel;
		cf |= ~d.l[k / 2].q[k % 2] & s.l[k / 2].q[k % 2] & sel;
	}
	f = x86_flags(c) & ~(uint64_t)X86_ARITH;
	f |= (z ? 0 : X86_ZF) | (cf ? 0 : X86_CF);
	x86_set_flags(c, f);
	return advance(c, i);
}

/* VBLENDVPS/PD ymm: the sign bits of IS4's register pick s. */
static int h_vblendv(struct x86_cpu *c, const struct x86_insn *i)
{
	struct ymm s, d, mask;
	uint8_t *db = (uint8_t *)&d, *sb = (uint8_t *)&s, *mb;
	int r = x86_avx_avail(c);

	if (!r)
		r = vsrc(c, i, &s);
	if (r)
		return r;
	d = yget(c, i->r[2]);
	mask = yget(c, (i->imm >> 4) & 15);
	mb = (uint8_t *)&mask;
	for (unsigned k = 0; k < 32; k += i->op)
		if (mb[k + i->op - 1] & 0x80)
			memcpy(db + k, sb + k, i->op);
	yset(c, i->r[0], &d);
	return advance(c, i);
}

/* ---- New with AVX --------------------------------------------------- */

enum {
	N_ZEROUPPER,
	N_ZEROALL,
	N_BCAST,   /* VBROADCASTSS/SD/F128: ssz bytes repeated */
	N_INSERT,  /* VINSERTF128 */
	N_EXTRACT, /* VEXTRACTF128 */
	N_PERM2,   /* VPERM2F128 */
	N_PERMILPS,
	N_PERMILPD,
};

static int h_avx(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned n = i->imm2 & A_256 ? 2 : 1, imm = (uint8_t)i->imm;
	struct ymm s, d, t;
	struct x86_mref m;
	int r = x86_avx_avail(c);

	if (r)
		return r;
	switch (i->op) {
	case N_ZEROUPPER:
		memset(c->ymmh, 0, sizeof(c->ymmh));
		return advance(c, i);
	case N_ZEROALL:
		memset(c->ymmh, 0, sizeof(c->ymmh));
		memset(c->xmm, 0, sizeof(c->xmm));
		return advance(c, i);
	case N_EXTRACT:
		s = yget(c, i->r[1]);
		if (i->k[0] == K_REG) {
			xset(c, i->r[0], &s.l[imm & 1]);
			return advance(c, i);
		}
		r = vprep(c, x86_ea(c, i), 16, X86_ACC_WRITE, false, &m);
		if (r)
			return r;
		mwrite(&m, &s.l[imm & 1], 16);
		return advance(c, i);
	default:
		break;
	}
	r = vsrc(c, i, &s);
	if (r)
		return r;
	memset(&d, 0, sizeof(d));
	switch (i->op) {
	case N_BCAST:
		for (unsigned k = 0; k < 16 * n; k += i->ssz)
			memcpy((uint8_t *)&d + k, &s, i->ssz);
		break;
	case N_INSERT:
		d = yget(c, i->r[2]);
		d.l[imm & 1] = s.l[0];
		break;
	case N_PERM2:
		t = yget(c, i->r[2]);
		for (unsigned l = 0; l < 2; l++) {
			unsigned sel = imm >> (4 * l);

			if (sel & 8)
				continue;
			d.l[l] = sel & 2 ? s.l[sel & 1] : t.l[sel & 1];
		}
		break;
	case N_PERMILPS:
	case N_PERMILPD:
		/* Data and control: the first source and s, or s and imm8. */
		t = i->imm2 & A_VAR ? yget(c, i->r[2]) : s;
		for (unsigned l = 0; l < n; l++) {
			const union x86_xmm *x = &t.l[l];

			if (i->op == N_PERMILPS) {
				for (unsigned k = 0; k < 4; k++) {
					unsigned sel =
						i->imm2 & A_VAR
							? s.l[l].d[k] & 3
							: imm >> (2 * k) & 3;

					d.l[l].d[k] = x->d[sel];
				}
			} else {
				for (unsigned k = 0; k < 2; k++) {
					unsigned sel =
						i->imm2 & A_VAR
							? s.l[l].q[k] >> 1 & 1
							: imm >> (2 * l + k) &
								  1;

					d.l[l].q[k] = x->q[sel];
				}
			}
		}
		break;
	}
	yset(c, i->r[0], &d);
	return advance(c, i);
}

/*
 * VMASKMOVPS/PD (op = element size): a load (k[0] a register) of the
 * elements whose mask (r[2]) sign bit is set, the others 0; a store of
 * those elements only.  Only the selected elements are translated, so a
 * masked-out element never faults (SDM vol. 2, VMASKMOV).
 */
static int h_vmaskmov(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned sz = i->op, n = (i->imm2 & A_256 ? 32 : 16) / sz;
	bool st = i->k[0] == K_MEM;
	struct ymm mask = yget(c, i->r[2]), v = {0}, src;
	const uint8_t *mb = (const uint8_t *)&mask;
	uint8_t *vb = (uint8_t *)&v;
	struct x86_mref m[8];
	uint64_t a = x86_ea(c, i);
	int r = x86_avx_avail(c);

	if (r)
		return r;
	for (unsigned k = 0; k < n; k++) {
		if (!(mb[k * sz + sz - 1] & 0x80))
			continue;
		r = vprep(c, a + k * sz, sz, st ? X86_ACC_WRITE : X86_ACC_READ,
			  false, &m[k]);
		if (r)
			return r;
	}
	src = yget(c, i->r[1]);
	for (unsigned k = 0; k < n; k++) {
		if (!(mb[k * sz + sz - 1] & 0x80))
			continue;
		if (st)
			mwrite(&m[k], (uint8_t *)&src + k * sz, sz);
		else
			mread(&m[k], vb + k * sz, sz);
	}
	if (!st)
		yset(c, i->r[0], &v);
	return advance(c, i);
}

/* ---- Binding -------------------------------------------------------- */

/* ZydisMnemonic of each V-prefixed mnemonic's legacy form (0: none). */
static uint16_t legacy_of[ZYDIS_MNEMONIC_MAX_VALUE + 1];
static pthread_once_t legacy_once = PTHREAD_ONCE_INIT;

static void legacy_init(void)
{
	for (unsigned v = 0; v <= ZYDIS_MNEMONIC_MAX_VALUE; v++) {
		const char *s = ZydisMnemonicGetString(v);

		if (!s || s[0] != 'v')
			continue;
		for (unsigned l = 0; l <= ZYDIS_MNEMONIC_MAX_VALUE; l++) {
			const char *t = ZydisMnemonicGetString(l);

			if (t && !strcmp(t, s + 1)) {
				legacy_of[v] = l;
				break;
			}
		}
	}
}

/* What a VEX.256 form does, for the mnemonics that have one in AVX. */
enum { W_NONE, W_LANE, W_FP, W_MOV, W_WIDEN, W_NARROW, W_MSK, W_TEST };

#define V(x) ZYDIS_MNEMONIC_V##x
static const struct {
	uint16_t mnem;
	uint8_t how, hi_shift; /* imm8 bits of the upper lane */
} wide[] = {
	{V(MOVAPS), W_MOV, 0},	    {V(MOVAPD), W_MOV, 0},
	{V(MOVUPS), W_MOV, 0},	    {V(MOVUPD), W_MOV, 0},
	{V(MOVDQA), W_MOV, 0},	    {V(MOVDQU), W_MOV, 0},
	{V(MOVNTPS), W_MOV, 0},	    {V(MOVNTPD), W_MOV, 0},
	{V(MOVNTDQ), W_MOV, 0},	    {V(LDDQU), W_MOV, 0},
	{V(ANDPS), W_LANE, 0},	    {V(ANDPD), W_LANE, 0},
	{V(ANDNPS), W_LANE, 0},	    {V(ANDNPD), W_LANE, 0},
	{V(ORPS), W_LANE, 0},	    {V(ORPD), W_LANE, 0},
	{V(XORPS), W_LANE, 0},	    {V(XORPD), W_LANE, 0},
	{V(UNPCKLPS), W_LANE, 0},   {V(UNPCKHPS), W_LANE, 0},
	{V(UNPCKLPD), W_LANE, 0},   {V(UNPCKHPD), W_LANE, 0},
	{V(SHUFPS), W_LANE, 0},	    {V(SHUFPD), W_LANE, 2},
	{V(BLENDPS), W_LANE, 4},    {V(BLENDPD), W_LANE, 2},
	{V(MOVDDUP), W_LANE, 0},    {V(MOVSLDUP), W_LANE, 0},
	{V(MOVSHDUP), W_LANE, 0},   {V(ADDPS), W_FP, 0},
	{V(ADDPD), W_FP, 0},	    {V(SUBPS), W_FP, 0},
	{V(SUBPD), W_FP, 0},	    {V(MULPS), W_FP, 0},
	{V(MULPD), W_FP, 0},	    {V(DIVPS), W_FP, 0},
	{V(DIVPD), W_FP, 0},	    {V(MINPS), W_FP, 0},
	{V(MINPD), W_FP, 0},	    {V(MAXPS), W_FP, 0},
	{V(MAXPD), W_FP, 0},	    {V(SQRTPS), W_FP, 0},
	{V(SQRTPD), W_FP, 0},	    {V(RCPPS), W_FP, 0},
	{V(RSQRTPS), W_FP, 0},	    {V(HADDPS), W_FP, 0},
	{V(HADDPD), W_FP, 0},	    {V(HSUBPS), W_FP, 0},
	{V(HSUBPD), W_FP, 0},	    {V(ADDSUBPS), W_FP, 0},
	{V(ADDSUBPD), W_FP, 0},	    {V(CVTDQ2PS), W_FP, 0},
	{V(CVTPS2DQ), W_FP, 0},	    {V(CVTTPS2DQ), W_FP, 0},
	{V(ROUNDPS), W_FP, 0},	    {V(ROUNDPD), W_FP, 0},
	{V(DPPS), W_FP, 0},	    {V(CVTDQ2PD), W_WIDEN, 0},
	{V(CVTPS2PD), W_WIDEN, 0},  {V(CVTPD2PS), W_NARROW, 0},
	{V(CVTPD2DQ), W_NARROW, 0}, {V(CVTTPD2DQ), W_NARROW, 0},
	{V(MOVMSKPS), W_MSK, 0},    {V(MOVMSKPD), W_MSK, 0},
	{V(PTEST), W_TEST, 0},	    {V(BLENDVPS), W_NONE, 0},
	{V(BLENDVPD), W_NONE, 0},
};

static unsigned wide_of(unsigned mnem, unsigned *hi_shift)
{
	for (unsigned k = 0; k < ARRAY_SIZE(wide); k++)
		if (wide[k].mnem == mnem) {
			*hi_shift = wide[k].hi_shift;
			return wide[k].how;
		}
	return W_NONE;
}

static bool is_vec(const ZydisDecodedOperand *o)
{
	ZydisRegisterClass cl;

	if (o->type != ZYDIS_OPERAND_TYPE_REGISTER)
		return false;
	cl = ZydisRegisterGetClass(o->reg.value);
	return cl == ZYDIS_REGCLASS_XMM || cl == ZYDIS_REGCLASS_YMM;
}

static bool is_ymm(const ZydisDecodedOperand *o)
{
	return (o->type == ZYDIS_OPERAND_TYPE_REGISTER &&
		ZydisRegisterGetClass(o->reg.value) == ZYDIS_REGCLASS_YMM) ||
	       (o->type == ZYDIS_OPERAND_TYPE_MEMORY && o->size == 256);
}

static bool is_gpr(const ZydisDecodedOperand *o)
{
	ZydisRegisterClass cl;

	if (o->type != ZYDIS_OPERAND_TYPE_REGISTER)
		return false;
	cl = ZydisRegisterGetClass(o->reg.value);
	return cl == ZYDIS_REGCLASS_GPR32 || cl == ZYDIS_REGCLASS_GPR64;
}

/* A vector register as XMM_F | n; a GPR as decode.c numbered it. */
static uint8_t vreg(const ZydisDecodedOperand *o, uint8_t gpr)
{
	if (!is_vec(o))
		return gpr;
	return XMM_F | (ZydisRegisterGetId(o->reg.value) & 15);
}

/* The FP compares, by mnemonic: op 0-3 for h_vcmp. */
static int vcmp_op(unsigned mnem)
{
	switch (mnem) {
	case V(CMPPS):
		return 0;
	case V(CMPPD):
		return 1;
	case V(CMPSS):
		return 2;
	case V(CMPSD):
		return 3;
	}
	return -1;
}

/* The instructions new with AVX; 1 if @mnem is not one. */
static int bind_new(struct x86_insn *i, const ZydisDecodedInstruction *z,
		    const ZydisDecodedOperand *o, bool y)
{
	switch (z->mnemonic) {
	case V(ZEROUPPER):
	case V(ZEROALL):
		i->op = z->mnemonic == V(ZEROALL) ? N_ZEROALL : N_ZEROUPPER;
		break;
	case V(BROADCASTSS):
	case V(BROADCASTSD):
	case V(BROADCASTF128):
		/* The register forms are AVX2. */
		if (i->k[1] != K_MEM)
			return -1;
		i->op = N_BCAST;
		break;
	case V(INSERTF128):
		i->op = N_INSERT;
		break;
	case V(EXTRACTF128):
		i->op = N_EXTRACT;
		break;
	case V(PERM2F128):
		i->op = N_PERM2;
		break;
	case V(PERMILPS):
	case V(PERMILPD):
		i->op = z->mnemonic == V(PERMILPS) ? N_PERMILPS : N_PERMILPD;
		if (o[z->operand_count_visible - 1].type !=
		    ZYDIS_OPERAND_TYPE_IMMEDIATE)
			i->imm2 |= A_VAR;
		break;
	case V(MASKMOVPS):
	case V(MASKMOVPD):
		i->op = z->mnemonic == V(MASKMOVPS) ? 4 : 8;
		i->fn = h_vmaskmov;
		return 0;
	case V(TESTPS):
	case V(TESTPD):
		i->op = z->mnemonic == V(TESTPS) ? 4 : 8;
		i->fn = h_vtest;
		return 0;
	default:
		return 1;
	}
	(void)y;
	i->fn = h_avx;
	return 0;
}

int x86_bind_avx(struct x86_insn *i, const void *zi, const void *zo)
{
	const ZydisDecodedInstruction *z = zi;
	const ZydisDecodedOperand *o = zo;
	unsigned nv = z->operand_count_visible, hs = 0, how;
	int vv = -1, is4 = -1, rm = -1, imm = -1, r;
	/* decode.c's numbers for GPR operands (the first three only). */
	uint8_t g[4] = {i->r[0], i->r[1], i->r[2], NO_REG};
	uint8_t kind, op, op2, fl;
	bool simd = false, y = false, aligned;

	if (z->encoding != ZYDIS_INSTRUCTION_ENCODING_VEX)
		return 1;
	for (unsigned n = 0; n < nv; n++) {
		simd |= is_vec(&o[n]);
		y |= is_ymm(&o[n]);
	}
	switch (z->mnemonic) {
	case V(ZEROUPPER):
	case V(ZEROALL):
	case V(LDMXCSR):
	case V(STMXCSR):
	case V(CVTSS2SI): /* from memory: no vector register */
	case V(CVTTSS2SI):
	case V(CVTSD2SI):
	case V(CVTTSD2SI):
		simd = true;
		break;
	default:
		break;
	}
	if (!simd)
		return 1; /* BMI and the like: integer.c's */
	if ((z->attributes & ZYDIS_ATTRIB_HAS_LOCK) || nv > 4)
		return -1;
	for (unsigned n = 0; n < nv; n++) {
		if (o[n].encoding == ZYDIS_OPERAND_ENCODING_NDSNDD)
			vv = n;
		else if (o[n].encoding == ZYDIS_OPERAND_ENCODING_IS4)
			is4 = n;
		else if (o[n].type == ZYDIS_OPERAND_TYPE_IMMEDIATE)
			imm = n;
		else if (n > 0 && rm < 0)
			rm = n;
	}
	/* decode.c's view of the first three operands, recast. */
	i->k[0] = nv && o[0].type == ZYDIS_OPERAND_TYPE_MEMORY ? K_MEM : K_REG;
	i->r[0] = nv ? vreg(&o[0], g[0]) : NO_REG;
	i->imm = imm >= 0 ? o[imm].imm.value.u & 0xff : 0;
	if (is4 >= 0)
		i->imm = (ZydisRegisterGetId(o[is4].reg.value) & 15) << 4;
	i->imm2 = y ? A_256 : 0;
	i->ssz = 0;
	if (vv == 0) { /* NDD: the shifts by an immediate */
		i->r[2] = rm >= 0 ? vreg(&o[rm], g[rm]) : NO_REG;
		i->k[1] = K_IMM;
		i->r[1] = NO_REG;
	} else {
		i->r[2] = vv >= 0 ? vreg(&o[vv], g[vv]) : i->r[0];
		i->k[1] = rm < 0				    ? K_IMM
			  : o[rm].type == ZYDIS_OPERAND_TYPE_MEMORY ? K_MEM
								    : K_REG;
		i->r[1] = rm >= 0 && rm < 3 ? vreg(&o[rm], g[rm]) : NO_REG;
		if (rm >= 0)
			i->ssz = o[rm].size / 8;
	}
	if (nv && (i->k[0] == K_MEM || is_gpr(&o[0])) && i->r[1] != NO_REG &&
	    (i->r[1] & XMM_F))
		i->ssz = o[0].size / 8; /* a store: its size */

	if (z->mnemonic == V(LDMXCSR) || z->mnemonic == V(STMXCSR)) {
		i->op = z->mnemonic == V(STMXCSR);
		return x86_sse_bind_form(i, B_MXCSR);
	}
	if (vcmp_op(z->mnemonic) >= 0) {
		i->op = vcmp_op(z->mnemonic);
		i->fn = h_vcmp;
		return 0;
	}
	r = bind_new(i, z, o, y);
	if (r <= 0)
		return r;
	if (z->mnemonic == V(MASKMOVDQU)) {
		if (y)
			return -1;
		i->r[0] = vreg(&o[0], 0);
		i->r[1] = vreg(&o[1], 0);
		i->base = X86_RDI; /* the implicit destination */
		i->index = NO_REG;
		i->disp = 0;
		return x86_sse_bind_form(i, B_MASKMOV);
	}

	pthread_once(&legacy_once, legacy_init);
	if (!legacy_of[z->mnemonic] ||
	    x86_sse_form(legacy_of[z->mnemonic], &kind, &op, &op2, &fl))
		return -1;
	/* Only the aligned moves check alignment in VEX forms. */
	aligned = kind == B_MOVE && !(fl & BF_UNALIGNED) &&
		  z->mnemonic != V(MOVSS) && z->mnemonic != V(MOVSD);
	if (aligned && (i->k[0] == K_MEM || i->k[1] == K_MEM) && i->ssz >= 16)
		i->imm2 |= SSE_A16;

	if (y) {
		how = wide_of(z->mnemonic, &hs);
		i->imm2 |= hs << A_HI_SHIFT;
		switch (how) {
		case W_MOV:
			i->fn = h_vmov256;
			return 0;
		case W_LANE:
			i->op = op;
			i->fn = h_lane;
			return 0;
		case W_FP:
			i->op = op;
			i->fn = h_fplane;
			return 0;
		case W_WIDEN:
		case W_NARROW:
			i->op = op;
			if (how == W_WIDEN)
				i->imm2 |= A_VAR;
			i->fn = h_cvt256;
			return 0;
		case W_MSK:
			i->op = op2;
			i->fn = h_vmovmsk;
			return 0;
		case W_TEST:
			i->op = 1;
			i->fn = h_vtest;
			return 0;
		}
		if (kind == B_BLENDV && z->mnemonic != V(PBLENDVB)) {
			i->op = op2;
			i->fn = h_vblendv;
			return 0;
		}
		return -1; /* AVX2 */
	}

	switch (kind) {
	case B_MOVE:
		if (i->k[0] == K_MEM || is_gpr(&o[0])) {
			/* A store of the low (or high) ssz bytes; 16 = all. */
			i->op = (fl & BF_HIGH) ? 1 : 0;
			if (!(i->r[1] & XMM_F))
				return -1;
			return x86_sse_bind_form(i, B_STORE);
		}
		i->op = i->k[1] == K_REG && (i->r[1] & XMM_F) ? op2 : op;
		break;
	case B_OP:
		i->op = op2 && i->k[1] != K_IMM ? op2 : op;
		break;
	case B_INSERT:
		i->op = op;
		i->ssz = op2;
		break;
	case B_EXTRACT:
		i->ssz = op2;
		i->op = (uint8_t)i->imm & (16 / op2 - 1);
		break;
	case B_MOVMSK:
		i->ssz = op2;
		break;
	case B_BLENDV:
		i->op = op2;
		break;
	default:
		i->op = op;
		break;
	}
	if (kind == B_FPTOI)
		i->osz = o[0].size / 8;
	return x86_sse_bind_form(i, kind);
}
