/* SPDX-License-Identifier: MIT */
/*
 * Internals shared by the interpreter's files: the decoded-instruction
 * record, the decode cache page, memory references and the fast paths of
 * translation and register access.
 */
#ifndef GMEM_X86_INTERNAL_H
#define GMEM_X86_INTERNAL_H

#include <string.h>

#include "util.h" /* likely(), unlikely(), MIN(), MAX() */
#include "x86/x86.h"

/*
 * Handler and translation status.  X86_EXC: cpu->exc holds a fault to
 * deliver, nothing committed.  X86_STOPPED: cpu->stop is filled, nothing
 * of the instruction committed unless the stop says so (OUT, HLT, ...).
 */
enum { X86_OK = 0, X86_EXC = 1, X86_STOPPED = 2 };

/* Operand kinds in struct x86_insn. */
enum { K_NONE = 0, K_REG, K_MEM, K_IMM };

/* Prefix bits. */
#define P_REP 1
#define P_REPNE 2
#define P_LOCK 4
#define P_REXW 8
#define P_VEX 16 /* an SSE record of avx.c's: a VEX.128 form (sse.c) */

#define NO_REG 0xff
#define RIP_REG 16

/*
 * One decoded instruction.  Register numbers are encodings 0-15, with
 * 16-19 for AH, CH, DH, BH (8-bit operands only).  At most one explicit
 * memory operand exists in the general-purpose set; its address is
 * seg base + base + (index << scale) + disp, truncated to asz bytes
 * before the segment base is added.  imm2 is ENTER's second immediate,
 * or sse.c's flags; sse.c's records use r[], ssz and op its own way.
 */
struct x86_insn;
typedef int (*x86_handler)(struct x86_cpu *c, const struct x86_insn *i);

struct x86_insn {
	x86_handler fn;
	int64_t imm;
	int64_t disp;
	uint16_t imm2;
	uint16_t mnem;			 /* ZydisMnemonic */
	uint8_t len;			 /* bytes */
	uint8_t osz;			 /* operand size, bytes */
	uint8_t ssz;			 /* source size for MOVZX/MOVSX/... */
	uint8_t asz;			 /* address size: 4 or 8 */
	uint8_t op;			 /* handler sub-operation */
	uint8_t k[3];			 /* operand kinds */
	uint8_t r[3];			 /* register operands */
	uint8_t base, index, scale, seg; /* seg: 0, X86_FS or X86_GS */
	uint8_t pfx;
	uint8_t nolink; /* the page-crossing scratch record */
	/*
	 * Links the run loop follows instead of looking the next RIP up:
	 * the record at RIP + len, and the last branch target.  Valid while
	 * link_gen == cpu->gen.
	 */
	uint64_t link_gen;
	struct x86_insn *next, *tgt;
	uint64_t tgt_rip;
};

/* Records are allocated in chunks so that they never move. */
#define DP_CHUNK 64
#define DP_MAXCHUNKS (4096 / DP_CHUNK)

/*
 * Decoded instructions of one guest-physical page (XO bit stripped: both
 * aliases hold the same bytes).  idx[off] is record number + 1, 0 when
 * no instruction starting at off was decoded.  bytes[] marks the bytes
 * decoded instructions cover, so that a write elsewhere in the page keeps
 * the cache.
 */
struct x86_dpage {
	struct x86_dpage *next;
	uint64_t gpa;
	unsigned n;
	uint16_t idx[4096];
	uint64_t bytes[4096 / 64];
	struct x86_insn *chunk[DP_MAXCHUNKS];
};

static inline struct x86_insn *dp_rec(struct x86_dpage *dp, unsigned n)
{
	return &dp->chunk[n / DP_CHUNK][n % DP_CHUNK];
}

/* A translated memory operand: up to two host pieces, or MMIO. */
struct x86_mref {
	uint8_t *p[2];
	uint64_t gpa;	 /* of the first byte (MMIO) */
	uint8_t len, n0; /* total, bytes in p[0] */
	uint8_t mmio;
};

/* Access flag for implicit supervisor accesses (IDT, GDT, TSS, frames). */
#define X86_ACC_SUP 8
/*
 * Access flag of an instruction KVM's emulator cannot emulate (x87
 * arithmetic): a guest page-table entry whose only reserved bits are
 * above the guest's MAXPHYADDR but below the host's (KVM's
 * allow_smaller_maxphyaddr) makes no #PF(RSVD), since hardware under
 * TDP takes such an address and KVM must emulate; the access comes back
 * as MMIO at that address, which such an instruction turns into an
 * emulation failure.  Other instructions get the #PF(RSVD) that KVM's
 * emulator, walking the guest's tables, injects.
 */
#define X86_ACC_NOEMUL 16
/* The host's MAXPHYADDR: KVM_GET_SUPPORTED_CPUID's 0x80000008 EAX[7:0]. */
unsigned x86_host_maxphyaddr(void);

int x86_mem_prep_slow(struct x86_cpu *c, uint64_t lin, unsigned len,
		      unsigned acc, struct x86_mref *m);
int x86_mem_rd_slow(struct x86_cpu *c, const struct x86_mref *m, uint64_t *v);
int x86_mem_wr_slow(struct x86_cpu *c, const struct x86_mref *m, uint64_t v);

/* Translate [lin, lin+len) for acc; len <= 8 (16 for descriptor reads). */
static inline int x86_mem_prep(struct x86_cpu *c, uint64_t lin, unsigned len,
			       unsigned acc, struct x86_mref *m)
{
	struct x86_tlbe *e = &c->tlb[(lin >> 12) % X86_TLB_SIZE];
	unsigned off = lin & 0xfff;

	unsigned a = acc & ~X86_ACC_NOEMUL; /* a hit reserves no bit */

	if (likely(e->tag == lin >> 12 && ((e->allow >> c->ushift) & a) == a &&
		   off + len <= 4096)) {
		m->p[0] = e->host + off;
		m->len = len;
		m->n0 = len;
		m->mmio = 0;
		return X86_OK;
	}
	return x86_mem_prep_slow(c, lin, len, acc, m);
}

/*
 * Guest memory is shared with other vCPUs as RAM is between processors:
 * a racy guest is the guest's business, not undefined behaviour of ours.
 * Aligned accesses are atomic, acquire loads and release stores, which is
 * x86's own ordering (TSO) and compiles to plain moves on an x86 host;
 * unaligned ones are byte copies.
 */
#if defined(__SANITIZE_THREAD__)
#define X86_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define X86_TSAN 1
#endif
#endif

/*
 * Under TSan an acquire or release atomic runs inside the runtime's locks,
 * which a host fault there (gmem_vcpu_run() recovers by longjmp) would
 * leave held: the access is relaxed and TSan is told the ordering.
 */
#ifdef X86_TSAN
#include <sanitizer/tsan_interface.h>
#define GUEST_LD(p)                                                           \
	({                                                                    \
		__typeof__(*(p)) v_ = __atomic_load_n((p), __ATOMIC_RELAXED); \
		__tsan_acquire((void *)(p));                                  \
		v_;                                                           \
	})
#define GUEST_ST(p, v)                                        \
	do {                                                  \
		__tsan_release((void *)(p));                  \
		__atomic_store_n((p), (v), __ATOMIC_RELAXED); \
	} while (0)
#define GUEST_CAS(p, o, n)                                                   \
	({                                                                   \
		__tsan_release((void *)(p));                                 \
		bool ok_ = __atomic_compare_exchange_n((p), (o), (n), false, \
						       __ATOMIC_RELAXED,     \
						       __ATOMIC_RELAXED);    \
		__tsan_acquire((void *)(p));                                 \
		ok_;                                                         \
	})
#else
#define GUEST_LD(p) __atomic_load_n((p), __ATOMIC_ACQUIRE)
#define GUEST_ST(p, v) __atomic_store_n((p), (v), __ATOMIC_RELEASE)
#define GUEST_CAS(p, o, n)                                                  \
	__atomic_compare_exchange_n((p), (o), (n), false, __ATOMIC_SEQ_CST, \
				    __ATOMIC_SEQ_CST)
#endif

#define LD_T(T)                                     \
	((uintptr_t)p % sizeof(T) == 0              \
		 ? (uint64_t)GUEST_LD((const T *)p) \
		 : (memcpy(&t.T##_v, p, sizeof(T)), (uint64_t)t.T##_v))

static inline uint64_t ld_le(const uint8_t *p, unsigned len)
{
	union {
		uint16_t uint16_t_v;
		uint32_t uint32_t_v;
		uint64_t uint64_t_v;
	} t;

	switch (len) {
	case 1:
		return GUEST_LD(p);
	case 2:
		return LD_T(uint16_t);
	case 4:
		return LD_T(uint32_t);
	default:
		return LD_T(uint64_t);
	}
}

#define ST_T(T)                                    \
	do {                                       \
		T x = (T)v;                        \
                                                   \
		if ((uintptr_t)p % sizeof(T) == 0) \
			GUEST_ST((T *)p, x);       \
		else                               \
			memcpy(p, &x, sizeof(T));  \
	} while (0)

static inline void st_le(uint8_t *p, unsigned len, uint64_t v)
{
	switch (len) {
	case 1:
		GUEST_ST(p, (uint8_t)v);
		break;
	case 2:
		ST_T(uint16_t);
		break;
	case 4:
		ST_T(uint32_t);
		break;
	default:
		ST_T(uint64_t);
		break;
	}
}

static inline int x86_mem_rd(struct x86_cpu *c, const struct x86_mref *m,
			     uint64_t *v)
{
	if (likely(!m->mmio && m->n0 == m->len)) {
		*v = ld_le(m->p[0], m->len);
		return X86_OK;
	}
	return x86_mem_rd_slow(c, m, v);
}

static inline int x86_mem_wr(struct x86_cpu *c, const struct x86_mref *m,
			     uint64_t v)
{
	if (likely(!m->mmio && m->n0 == m->len)) {
		st_le(m->p[0], m->len, v);
		return X86_OK;
	}
	return x86_mem_wr_slow(c, m, v);
}

/* Register access by operand size, with the AH..BH encodings. */
static inline uint64_t rreg(const struct x86_cpu *c, unsigned r, unsigned sz)
{
	uint64_t v;

	if (unlikely(r >= 16))
		return (c->gpr[r - 16] >> 8) & 0xff;
	v = c->gpr[r];
	switch (sz) {
	case 1:
		return v & 0xff;
	case 2:
		return v & 0xffff;
	case 4:
		return (uint32_t)v;
	default:
		return v;
	}
}

static inline void wreg(struct x86_cpu *c, unsigned r, unsigned sz, uint64_t v)
{
	if (unlikely(r >= 16)) {
		c->gpr[r - 16] =
			(c->gpr[r - 16] & ~0xff00ull) | ((v & 0xff) << 8);
		return;
	}
	switch (sz) {
	case 1:
		c->gpr[r] = (c->gpr[r] & ~0xffull) | (v & 0xff);
		break;
	case 2:
		c->gpr[r] = (c->gpr[r] & ~0xffffull) | (v & 0xffff);
		break;
	case 4:
		c->gpr[r] = (uint32_t)v;
		break;
	default:
		c->gpr[r] = v;
		break;
	}
}

static inline uint64_t szmask(unsigned sz)
{
	return sz == 8 ? ~0ull : (1ull << (sz * 8)) - 1;
}

static inline int x86_raise(struct x86_cpu *c, unsigned vec, bool has_err,
			    uint32_t err)
{
	c->exc.vector = vec;
	c->exc.has_err = has_err;
	c->exc.err = err;
	return X86_EXC;
}

static inline int x86_ud(struct x86_cpu *c)
{
	return x86_raise(c, X86_UD, false, 0);
}

static inline int x86_gp0(struct x86_cpu *c)
{
	return x86_raise(c, X86_GP, true, 0);
}

/* kvm_check_has_quirk(): on unless the VM disabled it. */
static inline bool x86_quirk(const struct x86_cpu *c, uint64_t quirk)
{
	return !c->disabled_quirks ||
	       !(__atomic_load_n(c->disabled_quirks, __ATOMIC_RELAXED) & quirk);
}

static inline bool x86_canonical(uint64_t a)
{
	return (uint64_t)((int64_t)(a << 16) >> 16) == a;
}

static inline void x86_set_cpl(struct x86_cpu *c, unsigned cpl)
{
	c->gen++;
	c->cpl = cpl;
	c->ushift = cpl == 3 ? 3 : 0;
}

/* Fill a stop record; returns X86_STOPPED. */
int x86_stop_internal(struct x86_cpu *c, const char *why);

/* integer.c */
uint64_t x86_flags(struct x86_cpu *c); /* materialize RFLAGS */
void x86_set_flags(struct x86_cpu *c, uint64_t f);
int x86_bind(struct x86_insn *i, const void *zinsn, const void *zops);
int x86_push(struct x86_cpu *c, uint64_t v, unsigned sz);
uint64_t x86_popf_mask(const struct x86_cpu *c);

/* decode.c */
/* An emulation failure (KVM_CAP_EXIT_ON_EMULATION_FAILURE), else #UD. */
int x86_unimpl(struct x86_cpu *c, const struct x86_insn *i);
int x86_fetch(struct x86_cpu *c, const struct x86_insn **ip);
int x86_decoder_init(struct x86_cpu *c);
void x86_decoder_fini(struct x86_cpu *c);
void x86_dc_drop_page(struct x86_cpu *c, struct x86_dpage *dp);
struct x86_dpage *x86_dc_lookup(struct x86_cpu *c, uint64_t gpa);
void x86_dc_free_dead(struct x86_cpu *c);
void x86_dc_flush(struct x86_cpu *c);

/* paging.c */
void x86_tlb_flush(struct x86_cpu *c);
/* Recompute the reserved-bit masks after M, XO or EFER.NXE change. */
void x86_paging_update(struct x86_cpu *c);
/* The physical-address bits above the guest's MAXPHYADDR (to bit 63). */
static inline uint64_t x86_pa_rsvd(const struct x86_cpu *c)
{
	return ~0ull << c->maxphyaddr;
}
void x86_tlb_flush_page(struct x86_cpu *c, uint64_t lin);
int x86_xlate(struct x86_cpu *c, uint64_t lin, unsigned acc,
	      struct x86_tlbe **ep);

/* Offset of the memory operand in its segment (what LEA computes). */
static inline __attribute__((always_inline)) uint64_t
x86_ea_offset(const struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t a = i->disp;

	if (i->base < 16)
		a += c->gpr[i->base];
	else if (i->base == RIP_REG)
		a += c->rip + i->len;
	if (i->index < 16)
		a += c->gpr[i->index] << i->scale;
	if (i->asz == 4)
		a = (uint32_t)a;
	return a;
}

/* Effective address of the memory operand (with FS/GS base). */
static inline __attribute__((always_inline)) uint64_t
x86_ea(const struct x86_cpu *c, const struct x86_insn *i)
{
	uint64_t a = x86_ea_offset(c, i);

	if (i->seg)
		a += c->seg[i->seg].base;
	return a;
}

/* A stop at which the instruction retired: HLT, OUT, VMCALL, PV work. */
static inline bool x86_stop_retired(const struct x86_stop *s)
{
	return s->reason == X86_STOP_HLT || s->reason == X86_STOP_VMCALL ||
	       s->reason == X86_STOP_PV ||
	       (s->reason == X86_STOP_IO && s->io.is_write);
}

/*
 * debug.c.  x86_dbg_exec() runs one instruction when cpu->dbg, TF or RF
 * asks for it: instruction breakpoints before it, the #DB trap it owes
 * after it (X86_PEND_DEBUG: x86_dbg_trap() turns cpu->dbg_trap into a
 * stop for the VMM or the guest's #DB).  x86_dbg_step_stop(): the VMM's
 * single step stops at an exception handler's entry.
 */
int x86_dbg_exec(struct x86_cpu *c, const struct x86_insn *ins);
/* Whether the next instruction must go through x86_dbg_exec(). */
static inline bool x86_dbg_path(const struct x86_cpu *c)
{
	return c->dbg | (c->rflags & (X86_TF | X86_RF));
}
/*
 * The run loop decides on the debug path only after an instruction that
 * asks for a look (X86_PEND_STATE): one that may set TF or RF (POPF,
 * IRET, SYSRET) or arm a breakpoint (MOV DRn) asks here.
 */
static inline void x86_dbg_recheck(struct x86_cpu *c)
{
	if (unlikely(x86_dbg_path(c)))
		c->pending |= X86_PEND_STATE;
}
int x86_dbg_trap(struct x86_cpu *c);
int x86_dbg_step_stop(struct x86_cpu *c);
/* INT3 under KVM_GUESTDBG_USE_SW_BP: the VMM's, RIP at it. */
int x86_dbg_int3(struct x86_cpu *c, const struct x86_insn *i);
/* Data breakpoints: an access of [lin, lin+len); the TLB bits to keep out. */
void x86_dbg_access(struct x86_cpu *c, uint64_t lin, unsigned len, unsigned a);
unsigned x86_dbg_keepout(const struct x86_cpu *c, uint64_t page);
/* MOV DRn and ICEBP (from x86_bind_system()). */
int x86_bind_debug(struct x86_insn *i, const void *zinsn, const void *zops);

/* event.c */
int x86_deliver(struct x86_cpu *c);
/* A system structure's bytes (supervisor read; not from MMIO). */
int x86_sys_read(struct x86_cpu *c, uint64_t lin, unsigned len, uint64_t *v);
/* The GDT descriptor of @sel; #GP(sel | @ext) beyond the limit. */
int x86_gdt_read(struct x86_cpu *c, uint16_t sel, uint32_t ext, uint64_t *d);

/* system.c */
int x86_bind_system(struct x86_insn *i, const void *zinsn, const void *zops);
void x86_set_cr4(struct x86_cpu *c, uint64_t v);
/* A flat 64-bit code or data segment, as SYSCALL/SYSRET load them. */
void x86_load_flat(struct kvm_segment *s, uint16_t sel, unsigned dpl,
		   bool code);

/* msr.c: IA32_UCODE_REV at reset and as the feature MSR. */
#define X86_UCODE_REV_DEFAULT 0x100000000ull

/* sse.c */
int x86_bind_sse(struct x86_insn *i, const void *zinsn, const void *zops);
/* XSAVE, XSAVEOPT, XSAVEC and XRSTOR (from x86_bind_system()). */
int x86_bind_xsave(struct x86_insn *i, const void *zinsn, const void *zops);

/*
 * What avx.c shares with sse.c.  Records: an XMM register in r[] is
 * XMM_F | n; imm2 has SSE_A16 for an aligned 16-byte operand.  A record
 * with P_VEX is a VEX.128 form run by sse.c's handler: r[2] is its first
 * source (VEX.vvvv, or the destination where VEX.vvvv is unused), and
 * the handler clears bits 255:128 of an XMM destination.
 */
#define XMM_F 0x20
#define SSE_A16 1
/* #UD unless CR4.OSXSAVE and XCR0 has SSE and YMM; #NM for CR0.TS. */
int x86_avx_avail(struct x86_cpu *c);
/* The legacy SSE form of mnemonic @mnem: 0 and its binding, or -1. */
int x86_sse_form(unsigned mnem, uint8_t *kind, uint8_t *op, uint8_t *op2,
		 uint8_t *flags);
/*
 * Give the record avx.c set up (i->op included) the handler of kind
 * @kind, as a VEX.128 form (P_VEX); -1 for none.
 */
int x86_sse_bind_form(struct x86_insn *i, unsigned kind);
/* One 128-bit lane of an integer/logic/shuffle operation (enum sse_op). */
void x86_sse_lane(unsigned op, union x86_xmm *d, const union x86_xmm *s,
		  unsigned imm);
/*
 * One 128-bit lane of a floating-point operation (enum fp_op) on the host:
 * *d = op(*d, *s, imm); returns the MXCSR flags it raises (those of the
 * unmasked response where one is unmasked); *d is the masked result.
 */
unsigned x86_fp_lane(const struct x86_cpu *c, unsigned op, union x86_xmm *d,
		     const union x86_xmm *s, unsigned imm);
/* Set MXCSR flags @f, or #XM (#UD without CR4.OSXMMEXCPT) if unmasked. */
int x86_fp_commit(struct x86_cpu *c, unsigned f);
/*
 * The flags of VDPPS ymm (two lanes, step by step) with an unmasked
 * exception possible; d[] and s[] are its sources.
 */
unsigned x86_fp_dpps2(const struct x86_cpu *c, const union x86_xmm d[2],
		      const union x86_xmm s[2], unsigned imm);
/* Flags of lanes computed apart: pre-computation ones alone if unmasked. */
unsigned x86_fp_merge(const struct x86_cpu *c, unsigned f);
/* The bind kinds of x86_sse_form() (sse.c's B_*). */
enum {
	B_OP,	   /* h_sse with op */
	B_MOVE,	   /* op for a memory/GPR source, op2 between registers */
	B_INSERT,  /* h_sse, op2 = element size */
	B_EXTRACT, /* h_sse_store, op2 = element size, index imm8 */
	B_MOVMSK,  /* op2 = lane size */
	B_PTEST,
	B_BLENDV, /* op2 = lane size */
	B_INSERTPS,
	B_FP,	   /* h_fp with op (enum fp_op) */
	B_FPTOI,   /* h_fp_to_int, op 0-3 */
	B_ITOFP,   /* h_int_to_fp, op 0-1 */
	B_COMI,	   /* h_comi, op 0-3 */
	B_PCMPSTR, /* h_pcmpstr, op 0-3 */
	B_STORE,   /* h_sse_store (x86_sse_bind_form() only) */
	B_MASKMOV, /* h_maskmov (likewise) */
	B_MXCSR,   /* h_mxcsr, op 0-1 (likewise) */
};
/* Binding flags. */
#define BF_UNALIGNED 1 /* 16-byte memory operands need no alignment */
#define BF_HIGH 2      /* a store takes the high quadword (MOVHPS) */

/* avx.c: VEX-encoded SSE/AVX; 1 for a VEX instruction without XMM/YMM. */
int x86_bind_avx(struct x86_insn *i, const void *zinsn, const void *zops);

/* x87.c: D8-DF and FWAIT. */
int x86_bind_x87(struct x86_insn *i, const void *zinsn, const void *zops);

#endif /* GMEM_X86_INTERNAL_H */
