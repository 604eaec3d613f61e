// SPDX-License-Identifier: MIT
/*
 * Stage-2 MMU: table, fault path and invalidation (see mmu.h).
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "dirty_log.h"
#include "guest_memfd.h"
#include "memslot.h"
#include "mmu.h"
#include "uaccess.h"
#include "util.h"
#include "vm.h"

#define ENTRIES 512
/* Retired tables that make a shootdown wait for every vCPU (see below). */
#define RETIRE_BATCH 64
#define LEVEL_PAGES(l) (1ULL << (9 * (l)))

#define STAT_ADD(mmu, field, n) \
	__atomic_fetch_add(&(mmu)->stats.field, (n), __ATOMIC_RELAXED)

static inline uint64_t load_entry(const uint64_t *e)
{
	return __atomic_load_n(e, __ATOMIC_ACQUIRE);
}

static inline void store_entry(uint64_t *e, uint64_t v)
{
	__atomic_store_n(e, v, __ATOMIC_RELEASE);
}

static uint64_t *alloc_table(struct gmem_mmu *mmu)
{
	uint64_t *t;

	if (mmu->nr_pool)
		return mmu->pool[--mmu->nr_pool];
	if (mmu->nr_tables == mmu->cap_tables) {
		size_t cap = mmu->cap_tables ? 2 * mmu->cap_tables : 64;
		void **a = gmem_zalloc_array(3 * cap, sizeof(*a));

		if (!a)
			return NULL;
		if (mmu->nr_tables) {
			memcpy(a, mmu->tables, mmu->nr_tables * sizeof(*a));
			memcpy(a + cap, mmu->retired,
			       mmu->nr_retired * sizeof(*a));
		}
		gmem_free(mmu->tables);
		mmu->tables = a;
		mmu->retired = a + cap;
		mmu->pool = a + 2 * cap;
		mmu->cap_tables = cap;
	}
	if (gmem_alloc_should_fail())
		return NULL;
	t = aligned_alloc(PAGE_SIZE, PAGE_SIZE);
	if (!t)
		return NULL;
	memset(t, 0, PAGE_SIZE);
	mmu->tables[mmu->nr_tables++] = t;
	return t;
}

/*
 * Detach-time cleanup of a table subtree replaced by a huge leaf.  Clearing
 * it is safe at once (a walker still inside sees "not present" and takes
 * the fault path); reusing it for other GFNs must wait for a shootdown.
 */
static void retire(struct gmem_mmu *mmu, uint64_t *table, int level)
{
	for (size_t i = 0; level > 0 && i < ENTRIES; i++) {
		uint64_t e = table[i];

		if (e && !(e & S2_PS))
			retire(mmu, (uint64_t *)(uintptr_t)(e & S2_ADDR_MASK),
			       level - 1);
	}
	for (size_t i = 0; i < ENTRIES; i++)
		store_entry(&table[i], 0);
	mmu->retired[mmu->nr_retired++] = table;
}

int gmem_mmu_init(struct gmem_mmu *mmu)
{
	*mmu = (struct gmem_mmu){0};
	pthread_mutex_init(&mmu->lock, NULL);
	mmu->root = alloc_table(mmu);
	if (!mmu->root) {
		gmem_mmu_destroy(mmu);
		return -ENOMEM;
	}
	return 0;
}

void gmem_mmu_destroy(struct gmem_mmu *mmu)
{
	for (size_t i = 0; i < mmu->nr_tables; i++)
		free(mmu->tables[i]);
	gmem_free(mmu->tables); /* retired and pool share the block */
	pthread_mutex_destroy(&mmu->lock);
}

/*
 * Lock-free walk to the entry that maps @gfn: a huge leaf, or the entry of
 * the 4 KiB table, present or not (*@val is what it held); NULL where no
 * table reaches.
 */
static uint64_t *leaf_entry(const struct gmem_mmu *mmu, uint64_t gfn,
			    int *level, uint64_t *val)
{
	uint64_t *table = mmu->root;

	if (gfn >> S2_GFN_BITS)
		return NULL;
	for (int l = 3; l >= 0; l--) {
		uint64_t *e = &table[(gfn >> (9 * l)) % ENTRIES];
		uint64_t v = load_entry(e);

		if (!v && l)
			return NULL;
		if (l == 0 || (v & S2_PS)) {
			*level = l;
			*val = v;
			return e;
		}
		table = (uint64_t *)(uintptr_t)(v & S2_ADDR_MASK);
	}
	return NULL;
}

/* The leaf mapping @gfn and its level, or 0. */
static inline uint64_t walk(const struct gmem_mmu *mmu, uint64_t gfn,
			    int *level)
{
	uint64_t v;

	return leaf_entry(mmu, gfn, level, &v) ? v : 0;
}

static void count_zap(struct gmem_mmu *mmu, int level)
{
	if (level == 0)
		STAT_ADD(mmu, zapped_4k, 1);
	else if (level == 1)
		STAT_ADD(mmu, zapped_2m, 1);
	else
		STAT_ADD(mmu, zapped_1g, 1);
}

/*
 * Clear the leaves of [start, end) under @table (at @level, covering GFNs
 * from @base).  A huge leaf that the range only partly covers goes whole:
 * the rest of it faults back in, in smaller pieces if it must.
 */
static void zap(struct gmem_mmu *mmu, uint64_t *table, int level, uint64_t base,
		uint64_t start, uint64_t end)
{
	uint64_t span = LEVEL_PAGES(level);
	size_t first = start > base ? (start - base) / span : 0;

	for (size_t i = first; i < ENTRIES; i++) {
		uint64_t lo = base + i * span, e;

		if (lo >= end)
			break;
		e = load_entry(&table[i]);
		if (!e)
			continue;
		if (level == 0 || (e & S2_PS)) {
			store_entry(&table[i], 0);
			count_zap(mmu, level);
		} else {
			zap(mmu, (uint64_t *)(uintptr_t)(e & S2_ADDR_MASK),
			    level - 1, lo, start, end);
		}
	}
}

/* Install a leaf for @gfn at @level.  Under mmu->lock. */
static int install(struct gmem_mmu *mmu, uint64_t gfn, int level, uint64_t leaf)
{
	uint64_t *table = mmu->root, *e, v;

	for (int l = 3; l > level; l--) {
		e = &table[(gfn >> (9 * l)) % ENTRIES];
		v = load_entry(e);
		if (!v || (v & S2_PS)) {
			/*
			 * A huge leaf here would have served this fault had it
			 * allowed the access; replace it with a table.  Its
			 * other pages fault back in.
			 */
			uint64_t *t = alloc_table(mmu);

			if (!t)
				return -ENOMEM;
			if (v)
				count_zap(mmu, l);
			store_entry(e, (uint64_t)(uintptr_t)t | S2_RWX);
			v = load_entry(e);
		}
		table = (uint64_t *)(uintptr_t)(v & S2_ADDR_MASK);
	}
	e = &table[(gfn >> (9 * level)) % ENTRIES];
	v = load_entry(e);
	store_entry(e, leaf);
	if (level && v && !(v & S2_PS))
		retire(mmu, (uint64_t *)(uintptr_t)(v & S2_ADDR_MASK),
		       level - 1);
	if (level == 0)
		STAT_ADD(mmu, map_4k, 1);
	else if (level == 1)
		STAT_ADD(mmu, map_2m, 1);
	else
		STAT_ADD(mmu, map_1g, 1);
	return 0;
}

static void log_flush(struct gmem_mmu *mmu, uint64_t gen, uint64_t start,
		      uint64_t end)
{
	struct gmem_flush_rec *rec = &mmu->flush_log[gen % S2_FLUSH_LOG];

	/* A seqlock: readers re-check gen after reading the range. */
	__atomic_store_n(&rec->gen, 0, __ATOMIC_RELAXED);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	__atomic_store_n(&rec->start, start, __ATOMIC_RELAXED);
	__atomic_store_n(&rec->end, end, __ATOMIC_RELAXED);
	__atomic_store_n(&rec->gen, gen, __ATOMIC_RELEASE);
}

struct gmem_mmu_flush gmem_mmu_invalidate_begin(struct gmem_vm *vm,
						uint64_t start, uint64_t end)
{
	struct gmem_mmu *mmu = &vm->mmu;
	uint64_t gen;
	size_t retired;

	pthread_mutex_lock(&mmu->lock);
	if (!mmu->in_progress) {
		__atomic_store_n(&mmu->inv_start, start, __ATOMIC_RELAXED);
		__atomic_store_n(&mmu->inv_end, end, __ATOMIC_RELAXED);
	} else {
		__atomic_store_n(&mmu->inv_start, MIN(mmu->inv_start, start),
				 __ATOMIC_RELAXED);
		__atomic_store_n(&mmu->inv_end, MAX(mmu->inv_end, end),
				 __ATOMIC_RELAXED);
	}
	__atomic_store_n(&mmu->in_progress, mmu->in_progress + 1,
			 __ATOMIC_RELEASE);
	STAT_ADD(mmu, invalidations, 1);
	if (start < (1ULL << S2_GFN_BITS))
		zap(mmu, mmu->root, 3, 0, start, end);
	gen = mmu->flush_gen + 1;
	log_flush(mmu, gen, start, end);
	__atomic_store_n(&mmu->flush_gen, gen, __ATOMIC_SEQ_CST);
	/*
	 * Retired tables are reused only after a shootdown that every vCPU
	 * in guest mode answered (none can still walk inside one).  Such a
	 * wait costs every vCPU's attention, so tables gather in batches.
	 */
	retired = mmu->nr_retired >= RETIRE_BATCH ? mmu->nr_retired : 0;
	pthread_mutex_unlock(&mmu->lock);
	if (unlikely(gmem_debug.invalidate_zapped != NULL))
		gmem_debug.invalidate_zapped(start, end);

	STAT_ADD(mmu, tlb_flush_requests, 1);
	/* Otherwise only vCPUs that may cache the range must answer. */
	return (struct gmem_mmu_flush){
		.gen = gen,
		.mask = retired ? ~0ULL : gmem_vm_footprint(start, end),
		.retired = retired,
	};
}

void gmem_mmu_reclaim(struct gmem_vm *vm, size_t retired)
{
	struct gmem_mmu *mmu = &vm->mmu;

	/* Tables retired before the shootdown are out of every walker. */
	if (retired) {
		pthread_mutex_lock(&mmu->lock);
		for (size_t i = 0; i < retired; i++)
			mmu->pool[mmu->nr_pool++] = mmu->retired[i];
		memmove(mmu->retired, mmu->retired + retired,
			(mmu->nr_retired - retired) * sizeof(void *));
		mmu->nr_retired -= retired;
		pthread_mutex_unlock(&mmu->lock);
	}
}

void gmem_mmu_invalidate_end(struct gmem_vm *vm, uint64_t start, uint64_t end)
{
	struct gmem_mmu *mmu = &vm->mmu;

	pthread_mutex_lock(&mmu->lock);
	/* Faults that sampled the old value must retry. */
	__atomic_store_n(&mmu->seq, mmu->seq + 1, __ATOMIC_RELEASE);
	__atomic_store_n(&mmu->in_progress, mmu->in_progress - 1,
			 __ATOMIC_RELEASE);
	pthread_mutex_unlock(&mmu->lock);
}

void gmem_mmu_protect_begin(struct gmem_vm *vm)
{
	struct gmem_mmu *mmu = &vm->mmu;

	pthread_mutex_lock(&mmu->lock);
	mmu->wp_table = NULL;
	mmu->wp_changed = false;
	mmu->wp_start = UINT64_MAX;
	mmu->wp_end = 0;
}

/* Pages whose entries are prefetched before the first is changed. */
#define WP_AHEAD 16

struct wp_slot {
	uint64_t *e;
	uint64_t gfn;
	int level;
};

/*
 * The entry of @gfn for a write-protect.  Pages collected together are
 * mostly near each other: the last page table serves until the walk
 * leaves it (no table is freed under mmu->lock, which the caller holds).
 */
static uint64_t *wp_entry(struct gmem_mmu *mmu, uint64_t gfn, int *level)
{
	uint64_t *e, v;

	*level = 0;
	if (mmu->wp_table && gfn >> 9 == mmu->wp_table_gfn)
		return &mmu->wp_table[gfn % ENTRIES];
	e = leaf_entry(mmu, gfn, level, &v);
	if (e && *level == 0) {
		mmu->wp_table = e - gfn % ENTRIES;
		mmu->wp_table_gfn = gfn >> 9;
	}
	return e;
}

static void wp_one(struct gmem_mmu *mmu, const struct wp_slot *s)
{
	uint64_t v = load_entry(s->e), span = LEVEL_PAGES(s->level);

	if (!(v & S2_W))
		return;
	/* A logged slot maps 4 KiB; a huge leaf predates logging. */
	if (s->level) {
		store_entry(s->e, 0);
		count_zap(mmu, s->level);
	} else {
		store_entry(s->e, v & ~S2_W);
	}
	mmu->wp_changed = true;
	mmu->wp_start = MIN(mmu->wp_start, s->gfn & ~(span - 1));
	mmu->wp_end = MAX(mmu->wp_end, (s->gfn | (span - 1)) + 1);
}

void gmem_mmu_protect_words(struct gmem_vm *vm, uint64_t gfn,
			    const uint64_t *bits, uint64_t n)
{
	struct gmem_mmu *mmu = &vm->mmu;
	struct wp_slot q[WP_AHEAD];
	unsigned int nq = 0, head = 0;

	/*
	 * A software pipeline: the entries are scattered over page tables
	 * bigger than the caches, so each is prefetched WP_AHEAD pages
	 * before it is changed, and the misses overlap.
	 */
	for (uint64_t i = 0; i < n; i++)
		for (uint64_t m = bits[i]; m; m &= m - 1) {
			struct wp_slot s;

			s.gfn = gfn + i * 64 + (uint64_t)__builtin_ctzll(m);
			s.e = wp_entry(mmu, s.gfn, &s.level);
			if (!s.e)
				continue;
			__builtin_prefetch(s.e, 1);
			if (nq < WP_AHEAD) {
				q[nq++] = s;
				continue;
			}
			wp_one(mmu, &q[head]);
			q[head] = s;
			head = (head + 1) % WP_AHEAD;
		}
	for (unsigned int k = 0; k < nq; k++)
		wp_one(mmu, &q[(head + k) % WP_AHEAD]);
}

struct gmem_mmu_flush gmem_mmu_protect_end(struct gmem_vm *vm, bool collected)
{
	struct gmem_mmu *mmu = &vm->mmu;
	struct gmem_mmu_flush f = {0};

	if (collected)
		__atomic_store_n(&mmu->seq, mmu->seq + 1, __ATOMIC_RELEASE);
	if (mmu->wp_changed) {
		f.gen = mmu->flush_gen + 1;
		f.mask = gmem_vm_footprint(mmu->wp_start, mmu->wp_end);
		log_flush(mmu, f.gen, mmu->wp_start, mmu->wp_end);
		__atomic_store_n(&mmu->flush_gen, f.gen, __ATOMIC_SEQ_CST);
		STAT_ADD(mmu, tlb_flush_requests, 1);
	}
	pthread_mutex_unlock(&mmu->lock);
	return f;
}

/* Under mmu->lock: must a fault on @gfn that sampled @seq retry? */
static bool invalidate_retry(const struct gmem_mmu *mmu, uint64_t seq,
			     uint64_t gfn)
{
	if (mmu->in_progress && gfn >= mmu->inv_start && gfn < mmu->inv_end)
		return true;
	return mmu->seq != seq;
}

/* What the fault path decided, before the install. */
struct resolved {
	enum gmem_s2 kind;
	uint64_t fault_flags;
	int error;
	uint8_t *page;
	unsigned int perm;
	int level;
	bool user;  /* @page is the VMM's memory (userspace_addr) */
	bool dirty; /* for the vCPU's dirty ring: see gmem_s2_result */
	uint32_t dirty_slot;
	uint64_t dirty_offset;
};

/* memory_fault.flags for a denied @access: R/W/X where the VM asked. */
static uint64_t access_flags(struct gmem_vm *vm, unsigned int access)
{
	return __atomic_load_n(&vm->fault_access_flags, __ATOMIC_RELAXED)
		       ? access
		       : 0;
}

static unsigned int attr_perm(uint64_t attrs)
{
	unsigned int p = S2_RWX;

	if (attrs & KVM_MEMORY_ATTRIBUTE_NR)
		p &= ~S2_R;
	if (attrs & KVM_MEMORY_ATTRIBUTE_NW)
		p &= ~S2_W;
	if (attrs & KVM_MEMORY_ATTRIBUTE_NX)
		p &= ~S2_X;
	return p;
}

/* GMEM_ACCESS_* and S2_* share bit positions with the exit flags. */
_Static_assert(GMEM_ACCESS_READ == S2_R && GMEM_ACCESS_WRITE == S2_W &&
		       GMEM_ACCESS_FETCH == S2_X,
	       "access bits");
_Static_assert(KVM_MEMORY_EXIT_FLAG_READ == S2_R &&
		       KVM_MEMORY_EXIT_FLAG_WRITE == S2_W &&
		       KVM_MEMORY_EXIT_FLAG_EXEC == S2_X,
	       "exit flags");

/*
 * The largest level (0, 1 or 2) at which the aligned block around @gfn is
 * one slot, one attribute value, contiguous and aligned in the backing,
 * and (for guest_memfd) free of poison.  [a0, a1) is the maximal run of
 * equal attributes around @gfn and [p0, p1) the maximal poison-free run
 * around its file page, both from the lookups the fault path made anyway:
 * because runs are maximal, a block is "mixed" exactly when it sticks out
 * of them, so each test here is O(1).
 */
struct runs {
	uint64_t a0, a1; /* attribute run, in GFNs */
	uint64_t p0, p1; /* poison-free run, in file pages */
};

static int max_level(struct gmem_memslot *slot, uint64_t gfn, uint8_t *page,
		     bool private, const struct runs *runs)
{
	for (int l = 2; l > 0; l--) {
		uint64_t n = LEVEL_PAGES(l), g0 = gfn & ~(n - 1);
		uintptr_t hva0 = (uintptr_t)page - ((gfn - g0) << PAGE_SHIFT);

		if (g0 < slot->base_gfn ||
		    g0 + n > slot->base_gfn + slot->npages)
			continue;
		if (hva0 & ((n << PAGE_SHIFT) - 1))
			continue;
		if (g0 < runs->a0 || g0 + n > runs->a1)
			continue;
		if (private) {
			uint64_t f0 = slot->gmem_pgoff + (g0 - slot->base_gfn);

			if (f0 < runs->p0 || f0 + n > runs->p1)
				continue;
		}
		return l;
	}
	return 0;
}

/* DESIGN §3.4 steps 2-7, under the read side of vm->state_lock. */
static void resolve(struct gmem_vm *vm, uint64_t gfn, unsigned int access,
		    struct resolved *r)
{
	struct gmem_memslot *slot = gmem_memslots_lookup(&vm->slots, gfn);
	struct runs runs = {0, 0, 0, UINT64_MAX};
	uint64_t attrs, off;
	bool private;
	unsigned int perm;

	if (!slot) {
		/*
		 * As kvm_faultin_pfn(): private memory is never MMIO, so a
		 * private GPA with no slot is a memory fault.
		 */
		if (gmem_ranges_lookup(&vm->attrs, gfn, &runs.a0, &runs.a1) &
		    KVM_MEMORY_ATTRIBUTE_PRIVATE) {
			r->kind = GMEM_S2_FAULT;
			r->fault_flags = KVM_MEMORY_EXIT_FLAG_PRIVATE;
			r->error = -EFAULT;
			return;
		}
		r->kind = GMEM_S2_MMIO;
		return;
	}
	/* The proposal's EXECONLY slots fault like the XO alias. */
	if ((slot->flags & KVM_MEM_EXECONLY) && access != GMEM_ACCESS_FETCH) {
		r->kind = GMEM_S2_XO;
		return;
	}
	attrs = gmem_ranges_lookup(&vm->attrs, gfn, &runs.a0, &runs.a1);
	private = attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE;
	perm = attr_perm(attrs);
	if (!(perm & access)) {
		/* The RWX series' access bits, where the VM asked for them. */
		r->kind = GMEM_S2_FAULT;
		r->fault_flags = access_flags(vm, access);
		r->error = -EFAULT;
		return;
	}
	off = gfn - slot->base_gfn;
	/*
	 * KVM 6.12 reports only PRIVATE on these: no access bits.  A
	 * gmem-only slot's shared pages are the file's as well.
	 */
	if (private || slot->gmem_only) {
		uint64_t pflag = private ? KVM_MEMORY_EXIT_FLAG_PRIVATE : 0;

		if (!slot->file) {
			r->kind = GMEM_S2_FAULT;
			r->fault_flags = pflag;
			r->error = -EFAULT;
			return;
		}
		r->error =
			gmem_file_get_page(slot->file, slot->gmem_pgoff + off,
					   &r->page, &runs.p0, &runs.p1);
		if (r->error) {
			r->kind = GMEM_S2_FAULT;
			r->fault_flags = pflag;
			return;
		}
	} else {
		/* A slot with no shared backing, as a VMM leaves it after
		 * converting everything private. */
		if (!slot->userspace_addr) {
			/* KVM's -EFAULT of a bad hva; the flags say nothing. */
			r->kind = GMEM_S2_FAULT;
			r->fault_flags = 0;
			r->error = -EFAULT;
			return;
		}
		r->page = (uint8_t *)(uintptr_t)(slot->userspace_addr +
						 (off << PAGE_SHIFT));
		r->user = true;
	}
	if (slot->flags & KVM_MEM_READONLY) {
		if (access == GMEM_ACCESS_WRITE) {
			r->kind = GMEM_S2_MMIO;
			return;
		}
		perm &= ~S2_W;
	}
	if (slot->flags & KVM_MEM_EXECONLY)
		perm &= S2_X;
	r->kind = GMEM_S2_OK;
	r->perm = perm;
	if (slot->flags & KVM_MEM_LOG_DIRTY_PAGES) {
		/*
		 * Writable only by a write, which is recorded first; and
		 * 4 KiB, so that recording is per page (dirty_log.h).
		 */
		r->level = 0;
		if (access != GMEM_ACCESS_WRITE) {
			r->perm &= ~S2_W;
		} else if (vm->dirty_ring_size) {
			r->dirty = true;
			r->dirty_slot = slot->slot;
			r->dirty_offset = off;
		} else if (slot->dirty_bitmap) {
			gmem_dirty_mark(slot->dirty_bitmap, off);
		}
		return;
	}
	r->level = max_level(slot, gfn, r->page, private || slot->gmem_only,
			     &runs);
}

static enum gmem_s2 fault(struct gmem_vm *vm, uint64_t gpa, unsigned int access,
			  struct gmem_s2_result *res)
{
	struct gmem_mmu *mmu = &vm->mmu;
	uint64_t gfn = gpa >> PAGE_SHIFT;
	struct resolved r = {0};
	uint64_t seq, mask, leaf;

	/*
	 * An update of this GFN in progress will zap whatever we install:
	 * don't bother (KVM's mmu_invalidate_retry_gfn_unsafe()).
	 */
	if (__atomic_load_n(&mmu->in_progress, __ATOMIC_ACQUIRE) &&
	    gfn >= __atomic_load_n(&mmu->inv_start, __ATOMIC_RELAXED) &&
	    gfn < __atomic_load_n(&mmu->inv_end, __ATOMIC_RELAXED))
		return GMEM_S2_RETRY;
	res->faulted = true;
	STAT_ADD(mmu, faults, 1);
	seq = __atomic_load_n(&mmu->seq, __ATOMIC_ACQUIRE);
	pthread_rwlock_rdlock(&vm->state_lock);
	resolve(vm, gfn, access, &r);
	pthread_rwlock_unlock(&vm->state_lock);

	/*
	 * The VMM's memory may not be there: touch it as this access will,
	 * with no lock held, so that a hole, PROT_NONE or (for a write) a
	 * read-only mapping ends here as a failed hva_to_pfn() does in KVM,
	 * -EFAULT, before the instruction has done anything.  What changes
	 * after this, gmem_vcpu_run() catches when the access faults.
	 */
	if (r.kind == GMEM_S2_OK && r.user &&
	    gmem_uaccess_probe(r.page, access == GMEM_ACCESS_WRITE)) {
		r.kind = GMEM_S2_FAULT;
		r.error = -EFAULT;
		r.fault_flags = access_flags(vm, access);
	}
	if (r.kind == GMEM_S2_OK) {
		if (unlikely(gmem_debug.fault_window != NULL))
			gmem_debug.fault_window(gfn);
		pthread_mutex_lock(&mmu->lock);
		if (invalidate_retry(mmu, seq, gfn) && !gmem_debug.no_retry) {
			pthread_mutex_unlock(&mmu->lock);
			STAT_ADD(mmu, fault_retries, 1);
			return GMEM_S2_RETRY;
		}
		/*
		 * From here until the caller acknowledges a flush, no
		 * invalidation can complete: the page stays valid.
		 * Addresses beyond the table are served uncached.
		 */
		if (gfn >> S2_GFN_BITS) {
			pthread_mutex_unlock(&mmu->lock);
			goto done;
		}
		mask = LEVEL_PAGES(r.level) - 1;
		leaf = (((uint64_t)(uintptr_t)r.page -
			 ((gfn & mask) << PAGE_SHIFT)) &
			S2_ADDR_MASK) |
		       r.perm | (r.level ? S2_PS : 0);
		if (install(mmu, gfn & ~mask, r.level, leaf))
			r.kind = GMEM_S2_NOMEM;
		pthread_mutex_unlock(&mmu->lock);
	}
done:
	switch (r.kind) {
	case GMEM_S2_OK:
		res->page = r.page;
		res->perm = r.perm;
		res->level = r.level;
		res->dirty = r.dirty;
		res->dirty_slot = r.dirty_slot;
		res->dirty_offset = r.dirty_offset;
		break;
	case GMEM_S2_FAULT:
		res->fault_gpa = gpa & ~(PAGE_SIZE - 1);
		res->fault_flags = r.fault_flags;
		res->error = r.error;
		break;
	default:
		break;
	}
	return r.kind;
}

enum gmem_s2 gmem_mmu_translate(struct gmem_vm *vm, uint64_t gpa,
				unsigned int access, struct gmem_s2_result *res)
{
	uint64_t xo = vm->xo_bit;
	uint64_t e;
	int level;

	/* Step 1: the execute-only alias is for instruction fetches. */
	if (xo && (gpa & xo)) {
		enum gmem_s2 k;

		if (access != GMEM_ACCESS_FETCH)
			return GMEM_S2_XO;
		k = gmem_mmu_translate(vm, gpa & ~xo, access, res);
		if (k == GMEM_S2_OK)
			res->perm &= S2_X;
		return k;
	}

	e = walk(&vm->mmu, gpa >> PAGE_SHIFT, &level);
	if (e && (e & access)) {
		uint64_t off = (gpa >> PAGE_SHIFT) & (LEVEL_PAGES(level) - 1);

		res->page = (uint8_t *)(uintptr_t)((e & S2_ADDR_MASK) +
						   (off << PAGE_SHIFT));
		res->perm = e & S2_RWX;
		res->level = (unsigned int)level;
		return GMEM_S2_OK;
	}
	return fault(vm, gpa, access, res);
}
