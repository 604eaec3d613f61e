// SPDX-License-Identifier: MIT
/*
 * make bench, memory family: every figure next to an anchor measured in
 * the same run, as a ratio (DESIGN §6).
 *
 *   attributes   set+clear over 4 KiB .. 1 TiB, against a per-page radix
 *                store that does what Linux's xarray does (reserve every
 *                node, then one entry per 4 KiB page); the map alone
 *                against the treap it replaced (bench/treap_ref.c); lookup
 *                median and bytes per run with 2,000 and 200,000 runs,
 *                against the treap and the per-page store
 *   guest_memfd  allocate and punch 1 GiB, against memset of 1 GiB and a
 *                Linux memfd fallocate of 1 GiB
 *   fault-in     first touch of 1 GiB of private memory through stage 2,
 *                with 4 KiB and with huge mappings, against memset
 *
 * Output: rows on stdout and appended to bench/results.csv (bench.h).
 * GMEM_BENCH_QUICK=1 shrinks sizes.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <malloc.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gmem/gmem.h>
#include <gmem/kvm.h>

#include "attr.h"
#include "bench.h"
#include "treap_ref.h"

/* ---- the anchor store: one entry per page, radix of 64-slot nodes ---- */

struct rnode {
	void *slot[64];
};

struct radix {
	struct rnode *root;
	int height; /* levels below the root */
	struct rnode **spare;
	size_t nr_spare;
};

static struct rnode *rnode_take(struct radix *r)
{
	return r->nr_spare ? r->spare[--r->nr_spare]
			   : calloc(1, sizeof(struct rnode));
}

/* Reserve the nodes a store of [first, last] may need, like xa_reserve. */
static int radix_reserve(struct radix *r, uint64_t first, uint64_t last)
{
	size_t need = 2 + (last - first) / 64 + 6;

	r->spare = realloc(r->spare, (r->nr_spare + need) * sizeof(void *));
	if (!r->spare)
		return -ENOMEM;
	for (size_t i = 0; i < need; i++) {
		r->spare[r->nr_spare] = calloc(1, sizeof(struct rnode));
		if (!r->spare[r->nr_spare])
			return -ENOMEM;
		r->nr_spare++;
	}
	return 0;
}

static void radix_store(struct radix *r, uint64_t index, void *val)
{
	struct rnode *n;

	while (r->height < 11 && (index >> (6 * (r->height + 1)))) {
		struct rnode *top = rnode_take(r);

		top->slot[0] = r->root;
		r->root = top;
		r->height++;
	}
	if (!r->root)
		r->root = rnode_take(r);
	n = r->root;
	for (int h = r->height; h > 0; h--) {
		void **s = &n->slot[(index >> (6 * h)) & 63];

		if (!*s)
			*s = rnode_take(r);
		n = *s;
	}
	n->slot[index & 63] = val;
}

static void radix_free(struct rnode *n, int h)
{
	if (!n)
		return;
	for (int i = 0; h > 0 && i < 64; i++)
		radix_free(n->slot[i], h - 1);
	free(n);
}

static double bench_radix(uint64_t pages)
{
	struct radix r = {0};
	double t0 = now();

	/* Set, then clear: two passes of one store per page. */
	for (int pass = 0; pass < 2; pass++) {
		if (radix_reserve(&r, 0x1000, 0x1000 + pages - 1))
			abort();
		for (uint64_t i = 0; i < pages; i++)
			radix_store(&r, 0x1000 + i, pass ? NULL : (void *)8);
	}
	t0 = now() - t0;
	radix_free(r.root, r.height);
	while (r.nr_spare)
		free(r.spare[--r.nr_spare]);
	free(r.spare);
	return t0;
}

static double bench_attr_setclear(struct gmem_vm *vm, uint64_t size, int reps)
{
	struct kvm_memory_attributes set = {
		.address = 4 * GiB,
		.size = size,
		.attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE};
	struct kvm_memory_attributes clr = set;
	double t0;

	clr.attributes = 0;
	t0 = now();
	for (int i = 0; i < reps; i++) {
		if (gmem_vm_set_memory_attributes(vm, &set) ||
		    gmem_vm_set_memory_attributes(vm, &clr))
			abort();
	}
	return (now() - t0) / reps;
}

/* The anchor's lookup: one entry per page, so a walk down its levels. */
static void *radix_load(const struct radix *r, uint64_t index)
{
	const struct rnode *n = r->root;

	if (index >> (6 * (r->height + 1)))
		return NULL;
	for (int h = r->height; n && h > 0; h--)
		n = n->slot[(index >> (6 * h)) & 63];
	return n ? n->slot[index & 63] : NULL;
}

/*
 * The maps the lookup and memory rows use: @n runs [8i, 8i+3) of values
 * 1..4, stored in ascending order, as a VMM converts memory.  Each filler
 * returns the heap it grew by, malloc's overhead in.
 */
static size_t fill_map(struct gmem_ranges *m, uint64_t n)
{
	size_t heap0 = mallinfo2().uordblks;

	gmem_ranges_init(m);
	for (uint64_t i = 0; i < n; i++) {
		if (gmem_ranges_reserve(m))
			abort();
		gmem_ranges_store(m, i * 8, i * 8 + 3, 1 + (i & 3));
	}
	return mallinfo2().uordblks - heap0;
}

static size_t fill_treap(struct treap_ranges *t, uint64_t n)
{
	size_t heap0 = mallinfo2().uordblks;

	treap_ranges_init(t);
	for (uint64_t i = 0; i < n; i++) {
		if (treap_ranges_reserve(t))
			abort();
		treap_ranges_store(t, i * 8, i * 8 + 3, 1 + (i & 3));
	}
	return mallinfo2().uordblks - heap0;
}

static size_t fill_radix(struct radix *r, uint64_t n)
{
	size_t heap0 = mallinfo2().uordblks;

	for (uint64_t i = 0; i < n; i++) {
		if (radix_reserve(r, i * 8, i * 8 + 2))
			abort();
		for (uint64_t p = i * 8; p < i * 8 + 3; p++)
			radix_store(r, p, (void *)(uintptr_t)(1 + (i & 3)));
	}
	/* The spares a reserve keeps are the anchor's overhead, not its map. */
	while (r->nr_spare)
		free(r->spare[--r->nr_spare]);
	return mallinfo2().uordblks - heap0;
}

/*
 * Random pages (3 in 8 fall in a run), drawn before the clock starts so
 * that only lookups are timed, and never repeated, so that the branch
 * predictor cannot learn the sequence.  Median of 101 batches of 1000.
 */
enum { LK_BATCHES = 101, LK_BATCH = 1000 };
static uint32_t lk_keys[LK_BATCHES][LK_BATCH];

static void draw_keys(uint64_t runs)
{
	uint32_t rng = 1;

	for (int s = 0; s < LK_BATCHES; s++)
		for (int k = 0; k < LK_BATCH; k++) {
			rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
			lk_keys[s][k] = rng % (runs * 8);
		}
}

/* One timing loop per store, so that each is inlined code, not a call. */
#define LOOKUP_MEDIAN(expr)                                      \
	({                                                       \
		double samples_[LK_BATCHES];                     \
		volatile uint64_t sink_ = 0;                     \
                                                                 \
		for (int s_ = 0; s_ < LK_BATCHES; s_++) {        \
			double t0_ = now();                      \
			uint64_t acc_ = 0;                       \
                                                                 \
			for (int k_ = 0; k_ < LK_BATCH; k_++) {  \
				uint64_t key = lk_keys[s_][k_];  \
				acc_ += (expr);                  \
			}                                        \
			samples_[s_] = (now() - t0_) / LK_BATCH; \
			sink_ += acc_;                           \
		}                                                \
		(void)sink_;                                     \
		median(samples_, LK_BATCHES) * 1e9;              \
	})

/*
 * Lookup medians and memory per run of the B+tree, the treap it replaced
 * and the per-page anchor, for maps of @runs runs, all in this run.
 */
static void bench_attr_map(uint64_t runs, const char *label, double target)
{
	struct gmem_ranges m;
	struct treap_ranges t;
	struct radix r = {0};
	double mem_m, mem_t, mem_r, ns_m, ns_t, ns_r;
	char name[96], tgt[32];

	mem_m = (double)fill_map(&m, runs) / m.nr_runs;
	mem_t = (double)fill_treap(&t, runs) / t.nr_runs;
	mem_r = (double)fill_radix(&r, runs) / runs;
	draw_keys(runs);
	/*
	 * Each store twice in a row, the first pass to bring it into the
	 * caches (the last store measured pushed it out), the second timed.
	 */
	for (int pass = 0; pass < 2; pass++)
		ns_m = LOOKUP_MEDIAN(gmem_ranges_lookup(&m, key, NULL, NULL));
	for (int pass = 0; pass < 2; pass++)
		ns_t = LOOKUP_MEDIAN(treap_ranges_lookup(&t, key, NULL, NULL));
	for (int pass = 0; pass < 2; pass++)
		ns_r = LOOKUP_MEDIAN((uintptr_t)radix_load(&r, key));

	snprintf(name, sizeof(name), "attr lookup median (%s runs)", label);
	snprintf(tgt, sizeof(tgt), "<= %.0f ns", target);
	row(name, ns_m, "ns", ns_t, "treap (before)", tgt,
	    ns_m <= target ? MET_YES : MET_NO);
	snprintf(name, sizeof(name), "attr lookup median (%s runs), page store",
		 label);
	row(name, ns_m, "ns", ns_r, "per-page store", "-", MET_NA);
	snprintf(name, sizeof(name), "attr memory per run (%s runs)", label);
	row(name, mem_m, "B", mem_t, "treap (before)", "<= 46 B",
	    mem_m <= 46 ? MET_YES : MET_NO);
	snprintf(name, sizeof(name), "attr memory per run (%s), page store",
		 label);
	row(name, mem_m, "B", mem_r, "per-page store", "-", MET_NA);

	gmem_ranges_destroy(&m);
	treap_ranges_destroy(&t);
	radix_free(r.root, r.height);
	free(r.spare);
}

/* Set+clear of one range on the maps themselves, no VM around them. */
static double map_setclear(struct gmem_ranges *m, uint64_t pages, int reps)
{
	double t0 = now();

	for (int i = 0; i < reps; i++) {
		if (gmem_ranges_reserve(m))
			abort();
		gmem_ranges_store(m, 1 << 20, (1 << 20) + pages, 8);
		if (gmem_ranges_reserve(m))
			abort();
		gmem_ranges_store(m, 1 << 20, (1 << 20) + pages, 0);
	}
	return (now() - t0) / reps;
}

static double treap_setclear(struct treap_ranges *t, uint64_t pages, int reps)
{
	double t0 = now();

	for (int i = 0; i < reps; i++) {
		if (treap_ranges_reserve(t))
			abort();
		treap_ranges_store(t, 1 << 20, (1 << 20) + pages, 8);
		if (treap_ranges_reserve(t))
			abort();
		treap_ranges_store(t, 1 << 20, (1 << 20) + pages, 0);
	}
	return (now() - t0) / reps;
}

static void bench_map_setclear(void)
{
	struct gmem_ranges m;
	struct treap_ranges t;
	double nm[2], nt[2];
	const uint64_t pages[2] = {1, TiB / (4 * KiB)};

	/* The same 1000 other runs as the VM rows, below and above. */
	fill_map(&m, 1000);
	fill_treap(&t, 1000);
	for (int i = 0; i < 1000; i++) {
		if (gmem_ranges_reserve(&m) || treap_ranges_reserve(&t))
			abort();
		gmem_ranges_store(&m, (1ULL << 40) + 8 * i,
				  (1ULL << 40) + 8 * i + 3, 2);
		treap_ranges_store(&t, (1ULL << 40) + 8 * i,
				   (1ULL << 40) + 8 * i + 3, 2);
	}
	for (int i = 0; i < 2; i++) {
		double vm[5], vt[5];

		for (int k = 0; k < 5; k++) {
			vm[k] = map_setclear(&m, pages[i], 20000);
			vt[k] = treap_setclear(&t, pages[i], 20000);
		}
		nm[i] = median(vm, 5);
		nt[i] = median(vt, 5);
	}
	row("attr map set+clear 4 KiB", nm[0] * 1e9, "ns", nt[0] * 1e9,
	    "treap (before)", "O(log n)", MET_NA);
	row("attr map set+clear 1 TiB", nm[1] * 1e9, "ns", nt[1] * 1e9,
	    "treap (before)", "O(log n): ~4 KiB's", MET_NA);
	row("attr map set+clear 1 TiB / 4 KiB", nm[1] / nm[0], "x",
	    nt[1] / nt[0], "treap (before)", "<= ~1 (size-free)",
	    nm[1] / nm[0] < 1.5 ? MET_YES : MET_NO);
	gmem_ranges_destroy(&m);
	treap_ranges_destroy(&t);
}

static void bench_attributes(bool quick)
{
	static const struct {
		uint64_t size;
		const char *name;
	} sizes[] = {{4 * KiB, "4 KiB"},
		     {2 * MiB, "2 MiB"},
		     {1 * GiB, "1 GiB"},
		     {64 * GiB, "64 GiB"},
		     {1 * TiB, "1 TiB"}};
	struct gmem_vm *vm;
	char name[64];
	double per_page_anchor = 0, t4k = 0;

	if (gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &vm))
		abort();
	/* Some other ranges, so that the tree is not trivial. */
	for (uint64_t i = 0; i < 1000; i++) {
		struct kvm_memory_attributes a = {
			.address = 2 * TiB + i * 8 * KiB,
			.size = 4 * KiB,
			.attributes = KVM_MEMORY_ATTRIBUTE_NX};
		gmem_vm_set_memory_attributes(vm, &a);
	}
	/* The per-page anchor, measured up to 1 GiB, per page. */
	uint64_t anchor_pages = quick ? 16384 : 262144;
	per_page_anchor = bench_radix(anchor_pages) / anchor_pages;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t pages = sizes[i].size / (4 * KiB);
		double t, anchor, v[5];

		for (int k = 0; k < 5; k++)
			v[k] = bench_attr_setclear(vm, sizes[i].size, 4000);
		t = median(v, 5);
		if (pages <= anchor_pages)
			anchor = bench_radix(pages);
		else
			anchor = per_page_anchor * pages; /* linear */
		if (!i)
			t4k = t;
		snprintf(name, sizeof(name), "attr set+clear %s",
			 sizes[i].name);
		row(name, t * 1e9, "ns", anchor * 1e9,
		    pages > anchor_pages ? "per-page store (extrap.)"
					 : "per-page store",
		    i ? "O(log n): ~4 KiB's" : "O(log n)", MET_NA);
		if (i == 4)
			row("attr set+clear 1 TiB / 4 KiB", t / t4k, "x", 1.0,
			    "4 KiB", "<= ~1 (size-free)",
			    t / t4k < 1.5 ? MET_YES : MET_NO);
	}
	gmem_vm_put(vm);

	bench_map_setclear();
	bench_attr_map(2000, "2000", 25);
	bench_attr_map(quick ? 20000 : 200000, quick ? "20000" : "200000", 40);
}

/*
 * This machine is a VM whose balloon reports free memory back to the
 * hypervisor after a couple of seconds: memory freed and touched again
 * later costs the hypervisor's faults too (0.3 GB/s instead of 10+).
 * Each measurement below therefore runs right after the same amount of
 * memory was freed (the kernel hands it back at once), is repeated, and
 * the median is reported.
 */
static uint8_t *warm_buf;

static double time_memset(uint64_t size)
{
	double t;

	if (!warm_buf) {
		warm_buf =
			mmap(NULL, size, PROT_READ | PROT_WRITE,
			     MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
		if (warm_buf == MAP_FAILED)
			abort();
		memset(warm_buf, 1, size);
	}
	t = now();
	memset(warm_buf, 0, size);
	return now() - t;
}

static void drop_warm_buf(uint64_t size)
{
	if (warm_buf)
		munmap(warm_buf, size);
	warm_buf = NULL;
}

/* memset of freshly mapped memory: the kernel's faults and zeroing too. */
static double time_memset_fresh(uint64_t size)
{
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	double t;

	if (p == MAP_FAILED)
		abort();
	madvise(p, size, MADV_HUGEPAGE);
	t = now();
	memset(p, 0, size);
	t = now() - t;
	munmap(p, size);
	return t;
}

static void bench_guest_memfd(uint64_t size)
{
	enum { REPS = 7 };
	struct gmem_vm *vm;
	struct kvm_create_guest_memfd cg = {.size = size};
	double alloc[REPS], punch[REPS], ms[REPS], mf[REPS], mfp[REPS];
	int fd, mfd;

	if (gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &vm))
		abort();
	fd = gmem_create_guest_memfd(vm, &cg);
	mfd = memfd_create("anchor", 0);
	if (fd < 0 || mfd < 0 || ftruncate(mfd, size))
		abort();
	/*
	 * Three phases, each on its own warm pages: round 0 of each is a
	 * warm-up whose numbers are dropped, and every later round reuses
	 * the memory the previous one freed.  Interleaving them is unfair
	 * to whoever allocates huge pages: memfd's 4 KiB allocations break
	 * up the freshly freed 2 MiB blocks, the next THP allocation gets
	 * blocks the balloon already gave back, and runs at the
	 * hypervisor's fault rate (0.55 GB/s measured here).
	 */
	for (int i = -1; i < REPS; i++) {
		double t = time_memset(size);

		if (i >= 0)
			ms[i] = t;
	}
	drop_warm_buf(size);
	for (int i = -1; i < REPS; i++) {
		double t, t_alloc;

		progress("guest_memfd: round %d/%d", i + 1, REPS);
		t = now();
		if (gmem_file_fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size))
			abort();
		t_alloc = now() - t;
		t = now();
		if (gmem_file_fallocate(
			    fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE, 0,
			    size))
			abort();
		t = now() - t;
		if (i >= 0)
			alloc[i] = t_alloc, punch[i] = t;
	}
	for (int i = -1; i < REPS; i++) {
		double t, t_alloc;

		t = now();
		if (fallocate(mfd, 0, 0, size))
			abort();
		t_alloc = now() - t;
		t = now();
		if (fallocate(mfd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
			      0, size))
			abort();
		t = now() - t;
		if (i >= 0)
			mf[i] = t_alloc, mfp[i] = t;
	}
	double a = size / median(alloc, REPS) / 1e9;
	double m = size / median(ms, REPS) / 1e9;
	double f = size / median(mf, REPS) / 1e9;
	row("guest_memfd allocate 1 GiB", a, "GB/s", m, "memset 1 GiB",
	    "ratio >= 0.9", a >= 0.9 * m ? MET_YES : MET_NO);
	row("guest_memfd allocate 1 GiB", a, "GB/s", f, "memfd fallocate 1 GiB",
	    "ratio >= 1.0", a >= f ? MET_YES : MET_NO);
	row("guest_memfd punch 1 GiB", median(punch, REPS) * 1e3, "ms",
	    median(mfp, REPS) * 1e3, "memfd punch 1 GiB", "-", MET_NA);
	close(mfd);
	gmem_handle_close(fd);
	gmem_vm_put(vm);
}

/*
 * First touch of every 4 KiB page of @size private bytes through stage 2,
 * one 8-byte write per page.  @prealloc: the file was allocated first
 * (what a VMM that preallocates gets: stage-2 cost only); otherwise the
 * host allocates and zeroes on the way too.
 */
static double fault_in_once(uint64_t size, bool huge, bool prealloc,
			    bool prefault, struct gmem_vm_stats *st)
{
	struct gmem_vm *vm;
	struct gmem_vcpu *vcpu;
	struct kvm_create_guest_memfd cg = {.size = size + 2 * MiB};
	uint64_t v = 0;
	double t;
	int fd;

	if (gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &vm))
		abort();
	fd = gmem_create_guest_memfd(vm, &cg);
	/* A slot whose file offset is not 2 MiB aligned maps 4 KiB only. */
	struct kvm_userspace_memory_region2 r = {
		.flags = KVM_MEM_GUEST_MEMFD,
		.memory_size = size,
		.guest_memfd = (uint32_t)fd,
		.guest_memfd_offset = huge ? 0 : 4 * KiB,
	};
	struct kvm_memory_attributes a = {
		.size = size, .attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE};
	if (gmem_vm_set_memory_region2(vm, &r) ||
	    gmem_vm_set_memory_attributes(vm, &a) ||
	    gmem_vcpu_create(vm, 0, &vcpu))
		abort();
	if (prealloc &&
	    gmem_file_fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, cg.size))
		abort();
	t = now();
	if (prefault) {
		struct kvm_pre_fault_memory pf = {.size = size};

		/* One call maps it all, or stops early for a signal. */
		while (pf.size) {
			int e = gmem_vcpu_pre_fault_memory(vcpu, &pf);

			if (e < 0 && e != -EINTR && e != -EAGAIN)
				abort();
		}
	} else {
		for (uint64_t gpa = 0; gpa < size; gpa += 4 * KiB)
			if (gmem_vcpu_access(vcpu, gpa, &v, 8,
					     GMEM_ACCESS_WRITE))
				abort();
	}
	t = now() - t;
	gmem_vm_get_stats(vm, st);
	gmem_vcpu_destroy(vcpu);
	gmem_handle_close(fd);
	gmem_vm_put(vm);
	return t;
}

static void bench_fault_in(uint64_t size, bool huge, bool prealloc)
{
	enum { REPS = 3 };
	struct gmem_vm_stats st;
	double t[REPS], m[REPS], pages = size / (4 * KiB);
	char name[80];

	/* Round 0: warm-up, dropped (see above). */
	for (int i = -1; i < REPS; i++) {
		double tm, tg;

		progress("fault-in %s %s: round %d/%d", huge ? "huge" : "4K",
			 prealloc ? "allocated" : "first touch", i + 1, REPS);
		/* The anchor, then gmem on the memory it just freed. */
		if (prealloc) {
			tm = time_memset(size);
			drop_warm_buf(size);
		} else {
			tm = time_memset_fresh(size);
		}
		tg = fault_in_once(size, huge, prealloc, false, &st);
		if (i >= 0)
			m[i] = tm, t[i] = tg;
	}
	double ns = median(t, REPS) / pages * 1e9;
	snprintf(name, sizeof(name), "fault-in 1 GiB %s (%s)",
		 huge ? "huge maps" : "4K maps",
		 prealloc ? "allocated" : "first touch");
	row(name, ns, "ns/page", median(m, REPS) / pages * 1e9,
	    prealloc ? "memset/page (warm)" : "memset/page (fresh)",
	    "<= 300 ns/page", ns <= 300 ? MET_YES : MET_NO);
	printf("%-44s (%llu faults: %llu 4K, %llu 2M, %llu 1G leaves)\n", "",
	       (unsigned long long)st.faults, (unsigned long long)st.map_4k,
	       (unsigned long long)st.map_2m, (unsigned long long)st.map_1g);
}

/*
 * KVM_PRE_FAULT_MEMORY of a whole private slot against the guest's own
 * first touches of it, each on memory the other just freed.
 */
static void bench_pre_fault(uint64_t size)
{
	enum { REPS = 3 };
	struct gmem_vm_stats st;
	double t[REPS], a[REPS], pages = size / (4 * KiB);

	for (int i = -1; i < REPS; i++) {
		double tp, ta;

		progress("pre-fault: round %d/%d", i + 1, REPS);
		ta = fault_in_once(size, true, false, false, &st);
		tp = fault_in_once(size, true, false, true, &st);
		if (i >= 0)
			t[i] = tp, a[i] = ta;
	}
	double ns = median(t, REPS) / pages * 1e9;
	double an = median(a, REPS) / pages * 1e9;

	row("KVM_PRE_FAULT_MEMORY 1 GiB (huge maps)", ns, "ns/page", an,
	    "first touch/page", "<= 1.2x", ns <= 1.2 * an ? MET_YES : MET_NO);
}

/*
 * First touch of a guest_memfd the host mapped (GUEST_MEMFD_FLAG_MMAP |
 * INIT_SHARED) against the same of a plain memfd's mapping.
 */
static double touch_mapping(uint64_t size, bool gmem)
{
	struct kvm_create_guest_memfd cg = {
		.size = size,
		.flags = GUEST_MEMFD_FLAG_MMAP | GUEST_MEMFD_FLAG_INIT_SHARED,
	};
	struct kvm_enable_cap cap = {.cap = GMEM_CAP_GUEST_MEMFD_MMAP};
	struct gmem_vm *vm = NULL;
	uint8_t *p;
	double t;
	int fd;

	if (gmem) {
		if (gmem_vm_create(KVM_X86_DEFAULT_VM, &vm) ||
		    gmem_vm_enable_cap(vm, &cap))
			abort();
		fd = gmem_create_guest_memfd(vm, &cg);
		p = gmem_mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED,
			      fd, 0);
	} else {
		fd = memfd_create("anchor", 0);
		if (fd < 0 || ftruncate(fd, (off_t)size))
			abort();
		p = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	}
	if (fd < 0 || p == MAP_FAILED)
		abort();
	t = now();
	for (uint64_t o = 0; o < size; o += 4 * KiB)
		p[o] = 1;
	t = now() - t;
	munmap(p, size);
	if (gmem) {
		gmem_handle_close(fd);
		gmem_vm_put(vm);
	} else {
		close(fd);
	}
	return t;
}

static void bench_gmem_mmap(uint64_t size)
{
	enum { REPS = 5 };
	double g[REPS], m[REPS], pages = size / (4 * KiB);

	progress("guest_memfd mmap first touch");
	for (int i = -1; i < REPS; i++) {
		double tm = touch_mapping(size, false);
		double tg = touch_mapping(size, true);

		if (i >= 0)
			g[i] = tg, m[i] = tm;
	}
	double gn = median(g, REPS) / pages * 1e9;
	double mn = median(m, REPS) / pages * 1e9;

	row("mmap'd guest_memfd first touch", gn, "ns/page", mn,
	    "memfd mapping first touch", "<= 1.2x",
	    gn <= 1.2 * mn ? MET_YES : MET_NO);
}

/*
 * KVM_GET_DIRTY_LOG + KVM_CLEAR_DIRTY_LOG (manual protection, as QEMU
 * migrates) of a big slot with a fraction of its pages written through a
 * vCPU since the last round.  The cost should follow the dirty pages, not
 * the slot: the anchor is a scan that tests every page's bit of the same
 * bitmap once, which is what O(pages) costs at least.
 */
static void bench_dirty_log(bool quick)
{
	enum { REPS = 5 };
	const uint64_t size = quick ? 1 * GiB : 64 * GiB;
	const uint64_t pages = size / 4096, words = (pages + 63) / 64;
	struct kvm_enable_cap cap = {
		.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
		.args = {KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE},
	};
	struct kvm_userspace_memory_region r = {
		.slot = 1,
		.flags = KVM_MEM_LOG_DIRTY_PAGES,
		.guest_phys_addr = 0,
		.memory_size = size,
	};
	uint64_t *bits = calloc(words, sizeof(*bits)), *gpas;
	static const int permille[] = {10, 1};
	struct gmem_vcpu *vcpu;
	struct gmem_vm *vm;
	double scan[REPS];
	void *mem;

	mem = mmap(NULL, size, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	gpas = calloc(pages / 100 + 1, sizeof(*gpas));
	if (mem == MAP_FAILED || !bits || !gpas ||
	    gmem_vm_create(KVM_X86_DEFAULT_VM, &vm) ||
	    gmem_vm_enable_cap(vm, &cap))
		abort();
	r.userspace_addr = (uint64_t)(uintptr_t)mem;
	if (gmem_vm_set_memory_region(vm, &r) || gmem_vcpu_create(vm, 0, &vcpu))
		abort();
	/* The anchor: every page's bit tested, of a bitmap 1% set. */
	for (uint64_t p = 0; p < pages; p += 100)
		bits[p / 64] |= 1ULL << (p % 64);
	for (int i = 0; i < REPS; i++) {
		volatile uint64_t count = 0;
		double t = now();

		for (uint64_t p = 0; p < pages; p++)
			count += (bits[p / 64] >> (p % 64)) & 1;
		scan[i] = now() - t;
	}
	double anchor = median(scan, REPS);

	for (unsigned int k = 0; k < 2; k++) {
		uint64_t n = pages * permille[k] / 1000,
			 rng = 88172645463325252ULL;
		double t[REPS];
		char name[96];

		/* Distinct random pages: one in every 1000 / permille. */
		for (uint64_t i = 0; i < n; i++) {
			uint64_t stride = 1000 / permille[k];

			rng ^= rng << 13, rng ^= rng >> 7, rng ^= rng << 17;
			gpas[i] = (i * stride + rng % stride) * 4096;
		}
		progress("dirty log: %u per mille of %llu GiB", permille[k],
			 (unsigned long long)(size / GiB));
		for (int i = -1; i < REPS; i++) {
			struct kvm_dirty_log get = {.slot = 1,
						    .dirty_bitmap = bits};
			struct kvm_clear_dirty_log clr = {
				.slot = 1,
				.num_pages = (uint32_t)pages,
				.dirty_bitmap = bits,
			};
			uint64_t v = 1;
			double t0;

			for (uint64_t j = 0; j < n; j++)
				if (gmem_vcpu_access(vcpu, gpas[j], &v,
						     sizeof(v),
						     GMEM_ACCESS_WRITE))
					abort();
			t0 = now();
			if (gmem_vm_get_dirty_log(vm, &get) ||
			    gmem_vm_clear_dirty_log(vm, &clr))
				abort();
			if (i >= 0)
				t[i] = now() - t0;
		}
		snprintf(name, sizeof(name),
			 "dirty GET+CLEAR %llu GiB, %.1f%% dirty",
			 (unsigned long long)(size / GiB), permille[k] / 10.0);
		double med = median(t, REPS);

		row(name, med * 1e3, "ms", anchor * 1e3, "per-page bitmap scan",
		    "< 1x (O(dirty))", med < anchor ? MET_YES : MET_NO);
	}
	gmem_vcpu_destroy(vcpu);
	gmem_vm_put(vm);
	munmap(mem, size);
	free(bits);
	free(gpas);
}

int main(int argc, char **argv)
{
	bool quick = bench_quick();
	uint64_t big = quick ? 64 * MiB : 1 * GiB;

	bench_open("mem", argc, argv);
	progress("attributes");
	bench_attributes(quick);
	/* GMEM_BENCH_ATTR_ONLY=1: the attribute rows alone, for tuning. */
	if (getenv("GMEM_BENCH_ATTR_ONLY")) {
		bench_close();
		return 0;
	}
	progress("guest_memfd");
	bench_guest_memfd(big);
	bench_fault_in(big, false, true);
	bench_fault_in(big, true, true);
	bench_fault_in(big, false, false);
	bench_fault_in(big, true, false);
	bench_pre_fault(big);
	bench_gmem_mmap(big);
	progress("dirty logging");
	bench_dirty_log(quick);
	bench_close();
	return 0;
}
