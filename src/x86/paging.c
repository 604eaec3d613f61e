// SPDX-License-Identifier: MIT
/*
 * Guest page walk (4-level long-mode paging), the soft TLB, and the slow
 * paths of memory access: page-crossing accesses, MMIO, writes to pages
 * holding decoded code.
 *
 * A walk returns a guest-level fault (#PF/#GP recorded in cpu->exc) or a
 * stage-2 stop; it commits nothing but the A/D bits of a translation that
 * succeeded, as hardware does.
 */
#include <errno.h>
#include <stdlib.h>

#include "x86/internal.h"

void x86_tlb_flush(struct x86_cpu *c)
{
	c->gen++;
	for (unsigned i = 0; i < X86_TLB_SIZE; i++)
		c->tlb[i].tag = ~0ull;
}

void x86_tlb_flush_page(struct x86_cpu *c, uint64_t lin)
{
	/*
	 * Entries are 4 KiB even for large pages, and INVLPG must drop the
	 * whole large page: flush everything, the TLB is small.
	 */
	(void)lin;
	x86_tlb_flush(c);
}

/*
 * One mask per level and leafness: the address bits above the guest's
 * MAXPHYADDR (CPUID 0x80000008, or the XO alias's M, whose bit a leaf may
 * carry), PS at level 4, the large pages' bits below their alignment, and
 * NX without EFER.NXE.  KVM's reset_guest_rsvds_bits_mask() does the same
 * from the guest's CPUID: with KVM_CAP_SMALLER_MAXPHYADDR a guest M below
 * the host's makes those bits reserved too.
 */
void x86_paging_update(struct x86_cpu *c)
{
	uint64_t addr = X86_PTE_ADDR & x86_pa_rsvd(c);
	uint64_t nx = (c->efer & X86_EFER_NXE) ? 0 : X86_PTE_NX;

	for (unsigned lvl = 1; lvl <= 4; lvl++) {
		c->pte_rsvd[0][lvl] = addr | nx;
		c->pte_rsvd[1][lvl] = (addr & ~c->xo_bit) | nx;
	}
	c->pte_rsvd[0][4] |= X86_PTE_PS;
	c->pte_rsvd[1][3] |= 0x3fffe000ull; /* 1 GiB: bits 29:13 */
	c->pte_rsvd[1][2] |= 0x1fe000ull;   /* 2 MiB: bits 20:13 */
	x86_tlb_flush(c);
}

int x86_stop_internal(struct x86_cpu *c, const char *why)
{
	c->stop->reason = X86_STOP_INTERNAL;
	c->stop->internal.rip = c->rip;
	c->stop->internal.why = why;
	c->stop->internal.insn_len = 0;
	return X86_STOPPED;
}

/* Resolve a page-table page; stops on anything but memory. */
static int map_table(struct x86_cpu *c, uint64_t gpa, unsigned acc,
		     uint64_t **pte, unsigned *permp)
{
	uint8_t *page;
	unsigned perm = 0;
	int r = c->bus->map(c->bus_ctx, gpa & ~0xfffull, acc, &page, &perm);

	if (r == X86_S2_EXIT) {
		c->stop->reason = X86_STOP_S2_EXIT;
		return X86_STOPPED;
	}
	if (r != X86_S2_OK || !(perm & acc))
		return x86_stop_internal(c, "page table not in RAM");
	*pte = (uint64_t *)(page + (gpa & 0xff8));
	*permp = perm;
	return X86_OK;
}

/*
 * The #PF error code's access bits for @a (X86_ACC_*) by a CPL-3 access
 * or not: W, U, and I for a fetch when @with_i (the walk reports I only
 * with NX or SMEP enabled, SDM 4.7).  The caller adds P and RSVD.
 */
static uint32_t pfec(unsigned a, bool user, bool with_i)
{
	return ((a & X86_ACC_WRITE) ? X86_PFEC_W : 0) |
	       (user ? X86_PFEC_U : 0) |
	       (with_i && (a & X86_ACC_FETCH) ? X86_PFEC_I : 0);
}

static int pf(struct x86_cpu *c, uint64_t lin, uint32_t err)
{
	c->exc.cr2 = lin;
	return x86_raise(c, X86_PF_VEC, true, err);
}

/*
 * Walk the guest tables for @lin.  On success *gpa is the guest-physical
 * page (XO bit kept), and *allow the X86_ACC_* bits for CPL<3 (bits 0-2)
 * and CPL 3 (bits 3-5) that the guest tables grant, with write bits only
 * when the D bit is set (or was set now).  The reserved bits are
 * c->pte_rsvd (x86_paging_update(): the guest's MAXPHYADDR from CPUID
 * 0x80000008, less the XO alias bit in a leaf):
 * X86_WALK_ILLEGAL (*gpa the address hardware would use) for an entry
 * only the guest's smaller MAXPHYADDR reserves, under X86_ACC_NOEMUL.
 */
#define X86_WALK_ILLEGAL 3
static int walk(struct x86_cpu *c, uint64_t lin, unsigned acc, bool user,
		uint64_t *gpa, unsigned *allow, bool *large)
{
	uint64_t keep = X86_PTE_ADDR & ~x86_pa_rsvd(c);
	uint64_t table = c->cr3 & keep;
	uint64_t *ptes[4], pgpas[4];
	unsigned perms[4];
	uint64_t pte = 0;
	bool w = true, u = true, nx = false;
	bool nxe = c->efer & X86_EFER_NXE;
	unsigned a = acc & 7, lvl, n = 0;
	uint32_t err = pfec(a, user, nxe || (c->cr4 & X86_CR4_SMEP));
	int r;

	*large = false;
	for (lvl = 4; lvl >= 1; lvl--) {
		unsigned shift = 12 + 9 * (lvl - 1);
		uint64_t pgpa = table + ((lin >> shift) & 511) * 8;
		uint64_t bad;
		bool leaf;

		r = map_table(c, pgpa, X86_ACC_READ, &ptes[n], &perms[n]);
		if (r)
			return r;
		pgpas[n] = pgpa;
		pte = __atomic_load_n(ptes[n], __ATOMIC_RELAXED);
		n++;
		if (!(pte & X86_PTE_P))
			return pf(c, lin, err);
		leaf = lvl == 1 || (lvl < 4 && (pte & X86_PTE_PS));
		bad = c->pte_rsvd[leaf][lvl];
		if (pte & bad) {
			uint64_t host_ok =
				((1ull << x86_host_maxphyaddr()) - 1) &
				x86_pa_rsvd(c);

			if ((acc & X86_ACC_NOEMUL) && !(pte & bad & ~host_ok)) {
				/* What hardware walks to: an illegal GPA. */
				uint64_t in =
					leaf ? lin & ((1ull << shift) - 1) : 0;

				*gpa = ((pte & X86_PTE_ADDR &
					 ~((1ull << shift) - 1)) |
					in) &
				       ~0xfffull;
				return X86_WALK_ILLEGAL;
			}
			return pf(c, lin, err | X86_PFEC_P | X86_PFEC_RSVD);
		}
		w &= !!(pte & X86_PTE_W);
		u &= !!(pte & X86_PTE_U);
		nx |= nxe && (pte & X86_PTE_NX);
		if (leaf) {
			uint64_t off = lin & ((1ull << shift) - 1);

			*gpa = ((pte & X86_PTE_ADDR & ~((1ull << shift) - 1)) |
				off) &
			       ~0xfffull;
			*large = lvl > 1;
			break;
		}
		table = pte & keep;
	}

	/* Permission checks (SDM 4.6). */
	bool wp = c->cr0 & X86_CR0_WP;
	bool smep = c->cr4 & X86_CR4_SMEP;
	bool smap = c->cr4 & X86_CR4_SMAP;
	bool ac_ok = (c->rflags & X86_AC) && !(acc & X86_ACC_SUP);
	bool ok;

	if (user) {
		ok = u && (!(a & X86_ACC_WRITE) || w) &&
		     (!(a & X86_ACC_FETCH) || !nx);
	} else if (a & X86_ACC_FETCH) {
		ok = !nx && !(smep && u);
	} else {
		ok = (!(a & X86_ACC_WRITE) || w || !wp) &&
		     !(smap && u && !ac_ok);
	}
	if (!ok)
		return pf(c, lin, err | X86_PFEC_P);

	/* Accessed on every level, dirty on the leaf for a write. */
	for (unsigned k = 0; k < n; k++) {
		uint64_t set = X86_PTE_A;

		if (k == n - 1 && (a & X86_ACC_WRITE))
			set |= X86_PTE_D;
		if ((__atomic_load_n(ptes[k], __ATOMIC_RELAXED) & set) == set)
			continue;
		if (!(perms[k] & X86_ACC_WRITE)) {
			/* The table is read-only at stage 2: ask for write. */
			r = map_table(c, pgpas[k], X86_ACC_WRITE, &ptes[k],
				      &perms[k]);
			if (r)
				return r;
		}
		__atomic_fetch_or(ptes[k], set, __ATOMIC_RELAXED);
	}
	pte = __atomic_load_n(ptes[n - 1], __ATOMIC_RELAXED);

	unsigned sup = X86_ACC_READ | X86_ACC_FETCH, usr = 0;
	bool dirty = pte & X86_PTE_D;

	if ((w || !wp) && dirty)
		sup |= X86_ACC_WRITE;
	if (nx || (smep && u))
		sup &= ~X86_ACC_FETCH;
	if (smap && u) /* depends on RFLAGS.AC: never cache */
		sup &= ~(X86_ACC_READ | X86_ACC_WRITE);
	if (u) {
		usr = X86_ACC_READ;
		if (w && dirty)
			usr |= X86_ACC_WRITE;
		if (!nx)
			usr |= X86_ACC_FETCH;
	}
	*allow = sup | usr << 3;
	return X86_OK;
}

/*
 * Translate one page piece: [lin, lin+len) lies in one page.  *host is
 * the host address of lin, or NULL for MMIO (then *gpa is the address).
 */
static int xlate_piece(struct x86_cpu *c, uint64_t lin, unsigned len,
		       unsigned acc, uint8_t **host, uint64_t *gpa)
{
	struct x86_tlbe *e = &c->tlb[(lin >> 12) % X86_TLB_SIZE];
	unsigned a = acc & 7;
	unsigned sh = (acc & X86_ACC_SUP) ? 0 : c->ushift;
	bool user = !(acc & X86_ACC_SUP) && c->cpl == 3;
	unsigned off = lin & 0xfff;
	uint64_t g = 0;
	unsigned allow, perm = 0;
	bool large;
	uint8_t *page;
	int r;

	if (unlikely(!x86_canonical(lin)))
		return x86_gp0(c);
	if (unlikely(c->dbg_data) && !(a & X86_ACC_FETCH))
		x86_dbg_access(c, lin, len, a);
	if (e->tag == lin >> 12 && (((e->allow | e->wok) >> sh) & a) == a)
		goto hit;

	r = walk(c, lin, acc, user, &g, &allow, &large);
	if (r == X86_WALK_ILLEGAL) {
		*host = NULL;
		*gpa = g | off;
		return X86_OK;
	}
	if (r)
		return r;
	r = c->bus->map(c->bus_ctx, g, a, &page, &perm);
	switch (r) {
	case X86_S2_OK:
		break;
	case X86_S2_MMIO:
		*host = NULL;
		*gpa = g | off;
		return X86_OK;
	case X86_S2_EXIT:
		c->stop->reason = X86_STOP_S2_EXIT;
		c->stop->s2_lin = lin;
		c->stop->s2_pfec = X86_PFEC_P | pfec(a, user, true);
		return X86_STOPPED;
	case X86_S2_XO_PF:
		return pf(c, lin, X86_PFEC_P | pfec(a, user, false));
	default:
		return x86_stop_internal(c, "bad stage-2 result");
	}
	if (!(perm & a))
		return x86_stop_internal(c, "stage-2 denied a granted access");
	perm &= 7;
	allow &= perm | perm << 3;
	e->tag = lin >> 12;
	e->host = page;
	e->gpa = g;
	e->code = x86_dc_lookup(c, g);
	e->wok = 0;
	e->allow = allow;
	if (e->code) {
		e->wok = allow & (X86_ACC_WRITE | X86_ACC_WRITE << 3);
		e->allow &= ~e->wok;
	}
	if (unlikely(c->dbg_data)) {
		e->wok |= e->allow & x86_dbg_keepout(c, lin >> 12);
		e->allow &= ~e->wok;
	}
	if (!(((e->allow | e->wok) >> sh) & a)) {
		/* Granted for this access only (e.g. SMAP with AC=1). */
		e->tag = ~0ull;
		*host = page + off;
		*gpa = g | off;
		return X86_OK;
	}
hit:
	if ((a & X86_ACC_WRITE) && e->code) {
		/* Self-modifying code: drop the decodes this write hits. */
		struct x86_dpage *dp = e->code;
		bool hitcode = false;

		for (unsigned b = off; b < off + len; b++)
			hitcode |= (dp->bytes[b / 64] >> (b % 64)) & 1;
		if (hitcode)
			x86_dc_drop_page(c, dp);
	}
	*host = e->host + off;
	*gpa = e->gpa | off;
	return X86_OK;
}

int x86_xlate(struct x86_cpu *c, uint64_t lin, unsigned acc,
	      struct x86_tlbe **ep)
{
	uint8_t *host;
	uint64_t gpa;
	int r = xlate_piece(c, lin, 1, acc, &host, &gpa);

	if (r)
		return r;
	if (!host)
		return x86_stop_internal(c, "instruction fetch from MMIO");
	*ep = &c->tlb[(lin >> 12) % X86_TLB_SIZE];
	if ((*ep)->tag != lin >> 12)
		return x86_stop_internal(c, "uncacheable fetch");
	return X86_OK;
}

int x86_mem_prep_slow(struct x86_cpu *c, uint64_t lin, unsigned len,
		      unsigned acc, struct x86_mref *m)
{
	unsigned off = lin & 0xfff;
	unsigned n0 = len < 4096 - off ? len : 4096 - off;
	uint64_t gpa, gpa1;
	uint8_t *h1;
	int r;

	r = xlate_piece(c, lin, n0, acc, &m->p[0], &gpa);
	if (r)
		return r;
	m->len = len;
	m->n0 = n0;
	m->mmio = !m->p[0];
	m->gpa = gpa;
	m->p[1] = NULL;
	if (n0 == len)
		return X86_OK;
	r = xlate_piece(c, lin + n0, len - n0, acc, &h1, &gpa1);
	if (r)
		return r;
	if (m->mmio || !h1)
		return x86_stop_internal(c, "page-crossing MMIO access");
	m->p[1] = h1;
	return X86_OK;
}

/* Stop the instruction for an MMIO access of @m (data zeroed). */
static int mmio_stop(struct x86_cpu *c, const struct x86_mref *m, bool is_write)
{
	c->pending |= X86_PEND_STATE;
	c->stop->reason = X86_STOP_MMIO;
	c->stop->mmio.gpa = m->gpa;
	c->stop->mmio.len = m->len;
	c->stop->mmio.is_write = is_write;
	memset(c->stop->mmio.data, 0, 8);
	return X86_STOPPED;
}

int x86_mem_rd_slow(struct x86_cpu *c, const struct x86_mref *m, uint64_t *v)
{
	uint8_t buf[8];

	if (m->mmio) {
		if (c->mmio.rd == 2 && c->mmio.rgpa == m->gpa &&
		    c->mmio.rlen == m->len) {
			*v = c->mmio.rdata & szmask(m->len);
			return X86_OK;
		}
		c->mmio.rd = 1;
		c->mmio.rgpa = m->gpa;
		c->mmio.rlen = m->len;
		return mmio_stop(c, m, false);
	}
	memcpy(buf, m->p[0], m->n0);
	memcpy(buf + m->n0, m->p[1], m->len - m->n0);
	*v = ld_le(buf, m->len);
	return X86_OK;
}

int x86_mem_wr_slow(struct x86_cpu *c, const struct x86_mref *m, uint64_t v)
{
	uint8_t buf[8];

	if (m->mmio) {
		if (c->mmio.wr && c->mmio.wgpa == m->gpa &&
		    c->mmio.wlen == m->len)
			return X86_OK; /* delivered before the stop */
		c->mmio.wr = 1;
		c->mmio.wgpa = m->gpa;
		c->mmio.wlen = m->len;
		mmio_stop(c, m, true);
		st_le(c->stop->mmio.data, m->len, v);
		return X86_STOPPED;
	}
	st_le(buf, m->len, v);
	memcpy(m->p[0], buf, m->n0);
	memcpy(m->p[1], buf + m->n0, m->len - m->n0);
	return X86_OK;
}
