// SPDX-License-Identifier: MIT
/*
 * make bench, memory family: every figure next to an anchor measured in
 * the same run, as a ratio (DESIGN §6).
 *
 *   attributes   set+clear over 4 KiB .. 1 TiB, against a per-page radix
 *                store that does what Linux's xarray does (reserve every
 *                node, then one entry per 4 KiB page); lookup median;
 *                bytes per distinct range
 *   guest_memfd  allocate and punch 1 GiB, against memset of 1 GiB and a
 *                Linux memfd fallocate of 1 GiB
 *   fault-in     first touch of 1 GiB of private memory through stage 2,
 *                with 4 KiB and with huge mappings, against memset
 *
 * Output: a table on stdout and rows appended to bench/results.csv
 * (figure,gmem,anchor,ratio,target).  GMEM_BENCH_QUICK=1 shrinks sizes.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/falloc.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <gmem/gmem.h>

#include "attr.h"

#define KiB 1024ULL
#define MiB (1024 * KiB)
#define GiB (1024 * MiB)
#define TiB (1024 * GiB)

static FILE *csv;

static double now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec * 1e-9;
}

static void row(const char *figure, double gmem, double anchor,
		const char *unit, const char *anchor_name, const char *target)
{
	double ratio = anchor > 0 ? gmem / anchor : 0;

	printf("%-38s %12.1f %-6s %12.1f %-20s %8.3f  %s\n", figure, gmem,
	       unit, anchor, anchor_name, ratio, target);
	if (csv)
		fprintf(csv, "\"%s\",%.3f,%.3f,%.4f,\"%s\"\n", figure, gmem,
			anchor, ratio, target);
}

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
	return r->nr_spare ? r->spare[--r->nr_spare] :
			     calloc(1, sizeof(struct rnode));
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
	struct radix r = { 0 };
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
		.address = 4 * GiB, .size = size,
		.attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE
	};
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

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void bench_attributes(bool quick)
{
	static const struct {
		uint64_t size;
		const char *name;
	} sizes[] = { { 4 * KiB, "4 KiB" }, { 2 * MiB, "2 MiB" },
		      { 1 * GiB, "1 GiB" }, { 64 * GiB, "64 GiB" },
		      { 1 * TiB, "1 TiB" } };
	struct gmem_vm *vm;
	char name[64];
	double per_page_anchor = 0, t4k = 0;

	if (gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &vm))
		abort();
	/* Some other ranges, so that the tree is not trivial. */
	for (uint64_t i = 0; i < 1000; i++) {
		struct kvm_memory_attributes a = {
			.address = 2 * TiB + i * 8 * KiB, .size = 4 * KiB,
			.attributes = KVM_MEMORY_ATTRIBUTE_NX
		};
		gmem_vm_set_memory_attributes(vm, &a);
	}
	/* The per-page anchor, measured up to 1 GiB, per page. */
	uint64_t anchor_pages = quick ? 16384 : 262144;
	per_page_anchor = bench_radix(anchor_pages) / anchor_pages;

	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		uint64_t pages = sizes[i].size / (4 * KiB);
		double t = bench_attr_setclear(vm, sizes[i].size, 20000);
		double anchor;

		if (pages <= anchor_pages)
			anchor = bench_radix(pages);
		else
			anchor = per_page_anchor * pages; /* linear */
		if (!i)
			t4k = t;
		snprintf(name, sizeof(name), "attr set+clear %s%s",
			 sizes[i].name, pages > anchor_pages ? " (anchor x)" : "");
		row(name, t * 1e9, anchor * 1e9, "ns", "per-page store",
		    i ? "same as 4 KiB" : "O(log n)");
		if (i == 4) {
			snprintf(name, sizeof(name), "attr 1 TiB / 4 KiB cost");
			row(name, t / t4k, 1.0, "x", "4 KiB", "<= ~1");
		}
	}

	/* Lookups in a map of ~2000 runs: median over batches. */
	struct gmem_rmap m;
	double samples[101];
	volatile uint64_t sink = 0;
	size_t heap0 = mallinfo2().uordblks;

	gmem_rmap_init(&m);
	for (uint64_t i = 0; i < 2000; i++) {
		gmem_rmap_reserve(&m);
		gmem_rmap_store(&m, i * 8, i * 8 + 3, 1 + (i & 3));
	}
	/* Memory per range: what the heap grew by, malloc overhead in. */
	double per_range = (double)(mallinfo2().uordblks - heap0) / m.nr_runs;
	uint32_t rng = 1;
	for (int s = 0; s < 101; s++) {
		double t0 = now();

		for (int k = 0; k < 1000; k++) {
			rng ^= rng << 13, rng ^= rng >> 17, rng ^= rng << 5;
			sink += gmem_rmap_lookup(&m, rng % 16000, NULL, NULL);
		}
		samples[s] = (now() - t0) / 1000;
	}
	qsort(samples, 101, sizeof(double), cmp_double);
	row("attr lookup median (2000 ranges)", samples[50] * 1e9, 50, "ns",
	    "target 50 ns", "<= 50 ns");
	row("attr memory per distinct range", per_range, 64, "B",
	    "target 64 B", "<= 64 B");
	gmem_rmap_destroy(&m);
	gmem_vm_put(vm);
	(void)sink;
}

static double time_memset(uint64_t size)
{
	uint8_t *p = mmap(NULL, size, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS | MAP_POPULATE, -1, 0);
	double t;

	if (p == MAP_FAILED)
		abort();
	memset(p, 1, size); /* warm */
	t = now();
	memset(p, 0, size);
	t = now() - t;
	munmap(p, size);
	return t;
}

static double time_memfd_fallocate(uint64_t size)
{
	int fd = memfd_create("anchor", 0);
	double t;

	if (fd < 0 || ftruncate(fd, size))
		abort();
	t = now();
	if (fallocate(fd, 0, 0, size))
		abort();
	t = now() - t;
	close(fd);
	return t;
}

static void bench_guest_memfd(uint64_t size)
{
	struct gmem_vm *vm;
	struct kvm_create_guest_memfd cg = { .size = size };
	double t_alloc, t_punch, t_memset, t_memfd;
	int fd;

	if (gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &vm))
		abort();
	fd = gmem_create_guest_memfd(vm, &cg);
	t_memset = time_memset(size);
	t_memfd = time_memfd_fallocate(size);
	t_alloc = now();
	if (gmem_file_fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, size))
		abort();
	t_alloc = now() - t_alloc;
	t_punch = now();
	if (gmem_file_fallocate(fd, FALLOC_FL_KEEP_SIZE | FALLOC_FL_PUNCH_HOLE,
				0, size))
		abort();
	t_punch = now() - t_punch;
	row("guest_memfd allocate 1 GiB (GB/s)", size / t_alloc / 1e9,
	    size / t_memset / 1e9, "GB/s", "memset", ">= 0.9");
	row("guest_memfd allocate 1 GiB (GB/s)", size / t_alloc / 1e9,
	    size / t_memfd / 1e9, "GB/s", "memfd fallocate", ">= 1.0");
	row("guest_memfd punch 1 GiB", t_punch * 1e3, t_memfd * 1e3, "ms",
	    "memfd fallocate", "-");
	gmem_handle_close(fd);
	gmem_vm_put(vm);
}

/* First touch of every 4 KiB page of @size private bytes. */
static void bench_fault_in(uint64_t size, bool huge, bool prealloc)
{
	struct gmem_vm *vm;
	struct gmem_vcpu *vcpu;
	struct kvm_create_guest_memfd cg = { .size = size + 2 * MiB };
	struct gmem_vm_stats st;
	char name[80];
	uint64_t v = 0;
	int fd;

	if (gmem_vm_create(KVM_X86_SW_PROTECTED_VM, &vm))
		abort();
	fd = gmem_create_guest_memfd(vm, &cg);
	/* A slot whose file offset is not 2 MiB aligned maps 4 KiB only. */
	struct kvm_userspace_memory_region2 r = {
		.flags = KVM_MEM_GUEST_MEMFD, .memory_size = size,
		.guest_memfd = (uint32_t)fd,
		.guest_memfd_offset = huge ? 0 : 4 * KiB,
	};
	struct kvm_memory_attributes a = {
		.size = size, .attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE
	};
	if (gmem_vm_set_memory_region2(vm, &r) ||
	    gmem_vm_set_memory_attributes(vm, &a) ||
	    gmem_vcpu_create(vm, 0, &vcpu))
		abort();
	if (prealloc &&
	    gmem_file_fallocate(fd, FALLOC_FL_KEEP_SIZE, 0, cg.size))
		abort();
	double t = now();
	for (uint64_t gpa = 0; gpa < size; gpa += 4 * KiB)
		if (gmem_vcpu_access(vcpu, gpa, &v, 8, GMEM_ACCESS_WRITE))
			abort();
	t = now() - t;
	gmem_vm_get_stats(vm, &st);
	double memset_t = time_memset(size);
	snprintf(name, sizeof(name), "fault-in %s, %s (ns/page)",
		 huge ? "2M maps" : "4K maps",
		 prealloc ? "allocated" : "first touch");
	row(name, t / (size / (4 * KiB)) * 1e9,
	    memset_t / (size / (4 * KiB)) * 1e9, "ns", "memset/page",
	    "<= 300 ns");
	printf("%-38s   (%llu faults: %llu 4K, %llu 2M, %llu 1G leaves)\n", "",
	       (unsigned long long)st.faults,
	       (unsigned long long)st.map_4k, (unsigned long long)st.map_2m,
	       (unsigned long long)st.map_1g);
	gmem_vcpu_destroy(vcpu);
	gmem_handle_close(fd);
	gmem_vm_put(vm);
}

int main(int argc, char **argv)
{
	bool quick = getenv("GMEM_BENCH_QUICK") != NULL;
	uint64_t big = quick ? 64 * MiB : 1 * GiB;

	csv = fopen(argc > 1 ? argv[1] : "bench/results.csv", "a");
	/*
	 * Warm up: on a virtual machine the first touch of host memory costs
	 * the hypervisor's faults too, which would land on whichever figure
	 * runs first.
	 */
	time_memset(2 * big);
	printf("%-38s %19s %33s %8s  %s\n", "figure", "gmem", "anchor",
	       "ratio", "target");
	fprintf(stderr, "[bench] attributes...\n");
	bench_attributes(quick);
	fprintf(stderr, "[bench] guest_memfd...\n");
	bench_guest_memfd(big);
	fprintf(stderr, "[bench] fault-in...\n");
	bench_fault_in(big, false, true);
	bench_fault_in(big, true, true);
	bench_fault_in(big, false, false);
	bench_fault_in(big, true, false);
	if (csv)
		fclose(csv);
	return 0;
}
