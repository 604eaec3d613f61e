// SPDX-License-Identifier: MIT
/*
 * Instruction decoding with Zydis and the decode cache.
 *
 * Decoded records live in a per-guest-physical-page cache entry (struct
 * x86_dpage), found through the TLB entry of the code page, so that the
 * hot path of fetching is a TLB hit and an array index.  A page's entry
 * dies when the interpreter writes a byte of a decoded instruction, on
 * x86_cpu_flush() and on x86_cpu_invalidate_gpa().  Dropped entries go
 * to a dead list, freed between instructions, because the instruction
 * that wrote its own page still holds a pointer into it.
 */
#include <stdlib.h>

#include <Zydis/Zydis.h>

#include "x86/internal.h"

/* Keep the cache bounded: beyond this many pages start afresh. */
#define DC_MAX_PAGES 4096

/* Code pages hash by page number; the XO alias is folded in by dc_key(). */
static unsigned dc_hash(uint64_t gpa)
{
	return (gpa >> 12) % X86_DC_BUCKETS;
}

/*
 * The execute-only alias (xo_bit) maps the same bytes, so it shares one
 * entry; the key is the guest-physical page without it.
 */
static uint64_t dc_key(const struct x86_cpu *c, uint64_t gpa)
{
	return gpa & ~c->xo_bit & ~0xfffull;
}

struct x86_dpage *x86_dc_lookup(struct x86_cpu *c, uint64_t gpa)
{
	uint64_t key = dc_key(c, gpa);
	struct x86_dpage *dp;

	for (dp = c->dc[dc_hash(key)]; dp; dp = dp->next)
		if (dp->gpa == key)
			return dp;
	return NULL;
}

/* Unlink @dp, give back the TLB write bits it took, queue it for free. */
void x86_dc_drop_page(struct x86_cpu *c, struct x86_dpage *dp)
{
	struct x86_dpage **pp;

	/*
	 * A new generation: every link the run loop made may point into @dp,
	 * which is about to go, so all of them stop being followed.
	 */
	c->gen++;
	for (pp = &c->dc[dc_hash(dp->gpa)]; *pp; pp = &(*pp)->next) {
		if (*pp == dp) {
			*pp = dp->next;
			break;
		}
	}
	/*
	 * Every TLB alias of the page had its write bits parked in wok; with
	 * no decodes left to protect, writes may take the fast path again.
	 */
	for (unsigned i = 0; i < X86_TLB_SIZE; i++) {
		struct x86_tlbe *e = &c->tlb[i];

		if (e->code == dp) {
			/* Data breakpoints may still keep bits out. */
			unsigned k =
				c->dbg_data ? x86_dbg_keepout(c, e->tag) : 0;

			e->code = NULL;
			e->allow |= e->wok & ~k;
			e->wok &= k;
		}
	}
	/*
	 * Not freed yet: the instruction that wrote its own code may still be
	 * running from a record in @dp.  X86_PEND_STATE gets the free done.
	 */
	dp->next = c->dead;
	c->dead = dp;
	c->pending |= X86_PEND_STATE;
	c->dc_pages--;
}

/* Between instructions only, when no record of a dead page is in use. */
void x86_dc_free_dead(struct x86_cpu *c)
{
	while (c->dead) {
		struct x86_dpage *dp = c->dead;

		c->dead = dp->next;
		for (unsigned i = 0; i < DP_MAXCHUNKS; i++)
			free(dp->chunk[i]);
		free(dp);
	}
}

/* x86_dc_drop_page() unlinks from the bucket head, so this terminates. */
void x86_dc_flush(struct x86_cpu *c)
{
	for (unsigned b = 0; b < X86_DC_BUCKETS; b++)
		while (c->dc[b])
			x86_dc_drop_page(c, c->dc[b]);
}

static struct x86_dpage *dc_create(struct x86_cpu *c, uint64_t gpa)
{
	uint64_t key = dc_key(c, gpa);
	struct x86_dpage *dp;

	/*
	 * A wholesale flush bounds memory for guests that touch much code,
	 * at the cost of decoding again.
	 */
	if (c->dc_pages >= DC_MAX_PAGES)
		x86_dc_flush(c);
	dp = calloc(1, sizeof(*dp));
	if (!dp)
		return NULL;
	dp->gpa = key;
	dp->next = c->dc[dc_hash(key)];
	c->dc[dc_hash(key)] = dp;
	c->dc_pages++;
	/* Every TLB alias of the page now sends writes to the slow path. */
	for (unsigned i = 0; i < X86_TLB_SIZE; i++) {
		struct x86_tlbe *e = &c->tlb[i];

		/* wok keeps the write bits to give back on the drop. */
		if (e->tag != ~0ull && dc_key(c, e->gpa) == key) {
			e->code = dp;
			e->wok |=
				e->allow & (X86_ACC_WRITE | X86_ACC_WRITE << 3);
			e->allow &= ~e->wok;
		}
	}
	return dp;
}

/*
 * Zydis registers to our numbering: GPRs by encoding number, with
 * AH-BH at 16-19 because rreg()/wreg() treat those apart.
 */
static uint8_t zreg(ZydisRegister r)
{
	if (r >= ZYDIS_REGISTER_AL && r <= ZYDIS_REGISTER_BL)
		return r - ZYDIS_REGISTER_AL;
	if (r >= ZYDIS_REGISTER_AH && r <= ZYDIS_REGISTER_BH)
		return 16 + r - ZYDIS_REGISTER_AH;
	/* SPL-R15B need REX and are the low byte of registers 4-15. */
	if (r >= ZYDIS_REGISTER_SPL && r <= ZYDIS_REGISTER_R15B)
		return 4 + r - ZYDIS_REGISTER_SPL;
	if (r >= ZYDIS_REGISTER_AX && r <= ZYDIS_REGISTER_R15W)
		return r - ZYDIS_REGISTER_AX;
	if (r >= ZYDIS_REGISTER_EAX && r <= ZYDIS_REGISTER_R15D)
		return r - ZYDIS_REGISTER_EAX;
	if (r >= ZYDIS_REGISTER_RAX && r <= ZYDIS_REGISTER_R15)
		return r - ZYDIS_REGISTER_RAX;
	if (r >= ZYDIS_REGISTER_ES && r <= ZYDIS_REGISTER_GS)
		return r - ZYDIS_REGISTER_ES;
	if (r >= ZYDIS_REGISTER_CR0 && r <= ZYDIS_REGISTER_CR15)
		return r - ZYDIS_REGISTER_CR0;
	if (r >= ZYDIS_REGISTER_DR0 && r <= ZYDIS_REGISTER_DR15)
		return r - ZYDIS_REGISTER_DR0;
	if (r == ZYDIS_REGISTER_RIP)
		return RIP_REG;
	return NO_REG;
}

/* Bytes Zydis refuses: a one-byte record, cached, that raises #UD. */
static int h_undef(struct x86_cpu *c, const struct x86_insn *i)
{
	return x86_ud(c);
}

/*
 * A valid instruction the model does not implement (or an x87 one with
 * an operand that is not RAM, x87.c).  Like a
 * CPU without the feature it is #UD, unless the VM asked for emulation
 * failures (KVM_CAP_EXIT_ON_EMULATION_FAILURE): then, as KVM's emulator
 * does with what it cannot emulate, stop with the bytes, RIP at them.
 * They were just fetched, so both pages translate.
 */
int x86_unimpl(struct x86_cpu *c, const struct x86_insn *i)
{
	unsigned off = c->rip & 0xfff, n0 = 4096 - off;
	struct x86_tlbe *e;
	int r;

	if (!c->exit_on_emulation_failure ||
	    !__atomic_load_n(c->exit_on_emulation_failure, __ATOMIC_RELAXED))
		return x86_ud(c);
	if (n0 > i->len)
		n0 = i->len;
	r = x86_xlate(c, c->rip, X86_ACC_FETCH, &e);
	if (r)
		return r;
	memcpy(c->stop->internal.insn, e->host + off, n0);
	if (n0 < i->len) {
		r = x86_xlate(c, c->rip + n0, X86_ACC_FETCH, &e);
		if (r)
			return r;
		memcpy(c->stop->internal.insn + n0, e->host, i->len - n0);
	}
	x86_stop_internal(c, "instruction not emulated");
	c->stop->internal.insn_len = i->len;
	return X86_STOPPED;
}

/*
 * Fill @i from a Zydis decode: the generic operand fields, then the
 * handler (x86_bind).  Anything the model does not know is h_unimpl.
 */
static void convert(struct x86_insn *i, const ZydisDecodedInstruction *z,
		    const ZydisDecodedOperand *ops)
{
	memset(i, 0, sizeof(*i));
	i->len = z->length;
	i->mnem = z->mnemonic;
	i->osz = z->operand_width / 8;
	i->asz = z->address_width / 8;
	i->base = i->index = NO_REG;
	i->r[0] = i->r[1] = i->r[2] = NO_REG;
	/*
	 * Zydis reports REP and REPE apart; for the string handlers they are
	 * the same F3 prefix.
	 */
	if (z->attributes & (ZYDIS_ATTRIB_HAS_REP | ZYDIS_ATTRIB_HAS_REPE))
		i->pfx |= P_REP;
	if (z->attributes & ZYDIS_ATTRIB_HAS_REPNE)
		i->pfx |= P_REPNE;
	if (z->attributes & ZYDIS_ATTRIB_HAS_LOCK)
		i->pfx |= P_LOCK;
	if (z->raw.rex.W)
		i->pfx |= P_REXW;
	if (z->attributes & ZYDIS_ATTRIB_HAS_SEGMENT_FS)
		i->seg = X86_FS;
	if (z->attributes & ZYDIS_ATTRIB_HAS_SEGMENT_GS)
		i->seg = X86_GS;
	/*
	 * As in x86_bind(), only the visible operands, three at most; one
	 * memory operand per instruction, so base/index/disp are shared.
	 */
	for (unsigned n = 0; n < z->operand_count_visible && n < 3; n++) {
		const ZydisDecodedOperand *o = &ops[n];

		switch (o->type) {
		case ZYDIS_OPERAND_TYPE_REGISTER:
			i->k[n] = K_REG;
			i->r[n] = zreg(o->reg.value);
			break;
		case ZYDIS_OPERAND_TYPE_MEMORY:
			i->k[n] = K_MEM;
			i->base = zreg(o->mem.base);
			i->index = zreg(o->mem.index);
			i->scale = o->mem.scale == 8   ? 3
				   : o->mem.scale == 4 ? 2
				   : o->mem.scale == 2 ? 1
						       : 0;
			i->disp = o->mem.disp.value;
			/*
			 * The other segment overrides are no-ops in 64-bit
			 * mode.
			 */
			if (o->mem.segment == ZYDIS_REGISTER_FS)
				i->seg = X86_FS;
			else if (o->mem.segment == ZYDIS_REGISTER_GS)
				i->seg = X86_GS;
			else
				i->seg = 0;
			/*
			 * MOVZX/MOVSX from memory: the source size differs from
			 * osz.
			 */
			if (n == 1 && i->k[0] != K_MEM)
				i->ssz = o->size / 8;
			break;
		case ZYDIS_OPERAND_TYPE_IMMEDIATE:
			if (i->k[n - (n > 0)] == K_IMM && n > 0) {
				/* second immediate: ENTER */
				i->imm2 = o->imm.value.u;
				i->k[n] = K_IMM;
				break;
			}
			i->k[n] = K_IMM;
			i->imm = o->imm.value.s;
			break;
		default:
			i->k[n] = K_NONE;
			break;
		}
		if (n == 1 && o->type == ZYDIS_OPERAND_TYPE_REGISTER)
			i->ssz = o->size / 8;
	}
	if (x86_bind(i, z, ops))
		i->fn = x86_unimpl;
}

static int decode(struct x86_cpu *c, const uint8_t *p, unsigned avail,
		  struct x86_insn *i)
{
	ZydisDecodedInstruction z;
	ZydisDecodedOperand ops[ZYDIS_MAX_OPERAND_COUNT];
	ZyanStatus s;

	s = ZydisDecoderDecodeFull(c->decoder, p, avail, &z, ops);
	/*
	 * Only a decode that ran off the end of the page is retried across
	 * it; with 15 bytes, Zydis has all an instruction can take.
	 */
	if (s == ZYDIS_STATUS_NO_MORE_DATA && avail < 15)
		return -1;
	if (!ZYAN_SUCCESS(s)) {
		memset(i, 0, sizeof(*i));
		/*
		 * An invalid instruction is cached too: it raises #UD each
		 * time.
		 */
		i->len = 1;
		i->fn = h_undef;
		return 0;
	}
	convert(i, &z, ops);
	return 0;
}

/*
 * Find or decode the instruction at RIP.  Faults on the fetch (including
 * the second page of an instruction that crosses one) are raised as for
 * any access.
 */
int x86_fetch(struct x86_cpu *c, const struct x86_insn **ip)
{
	struct x86_tlbe *e;
	struct x86_dpage *dp;
	struct x86_insn *i;
	uint64_t rip = c->rip;
	unsigned off = rip & 0xfff;
	int r;

	r = x86_xlate(c, rip, X86_ACC_FETCH, &e);
	if (r)
		return r;
	dp = e->code;
	if (!dp) {
		dp = dc_create(c, e->gpa);
		if (!dp)
			return x86_stop_internal(c, "out of memory");
	}
	/*
	 * idx[] is per start offset, so overlapping decodes (a jump into the
	 * middle of an instruction) each get their own record.
	 */
	if (dp->idx[off]) {
		*ip = dp_rec(dp, dp->idx[off] - 1);
		return X86_OK;
	}
	/*
	 * Chunks never move once allocated, which keeps record pointers
	 * (the links, *ip) stable while the page lives.
	 */
	if (!dp->chunk[dp->n / DP_CHUNK]) {
		dp->chunk[dp->n / DP_CHUNK] =
			calloc(DP_CHUNK, sizeof(struct x86_insn));
		if (!dp->chunk[dp->n / DP_CHUNK])
			return x86_stop_internal(c, "out of memory");
	}
	i = dp_rec(dp, dp->n);
	if (decode(c, e->host + off, 4096 - off, i) == 0) {
		/*
		 * Mark the bytes covered so that only writes to them drop the
		 * page.
		 */
		for (unsigned b = off; b < off + i->len; b++)
			dp->bytes[b / 64] |= 1ull << (b % 64);
		dp->idx[off] = ++dp->n;
		*ip = i;
		return X86_OK;
	}

	/* Crosses into the next page: decode from a copy, do not cache. */
	/*
	 * Not cached: the second page has its own entry and a write to it
	 * would not drop this one.  nolink keeps the run loop from linking to
	 * or from a record that the next crossing overwrites.
	 */
	uint8_t buf[15];
	unsigned n0 = 4096 - off;
	struct x86_tlbe *e2;

	memcpy(buf, e->host + off, n0);
	r = x86_xlate(c, rip + n0, X86_ACC_FETCH, &e2);
	if (r)
		return r;
	memcpy(buf + n0, e2->host, 15 - n0);
	decode(c, buf, 15, c->scratch);
	c->scratch->nolink = 1;
	*ip = c->scratch;
	return X86_OK;
}

int x86_decoder_init(struct x86_cpu *c)
{
	ZydisDecoder *d = malloc(sizeof(*d));

	c->scratch = calloc(1, sizeof(struct x86_insn));
	if (!d || !c->scratch) {
		free(d);
		free(c->scratch);
		return -1;
	}
	if (!ZYAN_SUCCESS(ZydisDecoderInit(d, ZYDIS_MACHINE_MODE_LONG_64,
					   ZYDIS_STACK_WIDTH_64))) {
		free(d);
		free(c->scratch);
		return -1;
	}
	c->decoder = d;
	return 0;
}

void x86_decoder_fini(struct x86_cpu *c)
{
	x86_dc_flush(c);
	x86_dc_free_dead(c);
	free(c->decoder);
	free(c->scratch);
	c->decoder = NULL;
	c->scratch = NULL;
}
