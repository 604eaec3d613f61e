// SPDX-License-Identifier: MIT
/*
 * Dirty logging from inside a guest.  Slot 1 is NPAGES pages at SLOT_GPA
 * (not a multiple of 64, so the bitmap's last word is partial), logged
 * with KVM_MEM_LOG_DIRTY_PAGES; the guest writes or reads the pages the
 * host names, and the host checks what each collection reports:
 *   - the bitmap (KVM_GET_DIRTY_LOG): exactly the pages written, once;
 *     reads dirty nothing; a page collected is write-protected again, so
 *     its next write is reported again; enabling logging write-protects
 *     pages that were writable before it
 *   - manual protection (KVM_CLEAR_DIRTY_LOG): GET reports without
 *     clearing, CLEAR re-arms only what it names; KVM_DIRTY_LOG_INITIALLY_SET
 *   - the dirty ring: one entry per page written, the soft-full exit (and
 *     again at the next KVM_RUN until a reset), the reset's count, pages
 *     re-reported after it
 *   - four vCPUs writing random pages while the host collects, for the
 *     bitmap and the rings: every write is reported by a collection after
 *     it (the page reads, after the last report of it, what it holds at
 *     the end)
 */
#include <stdint.h>

#define SLOT_GPA (64ULL << 20)
#define NPAGES (3 * 64 + 5)
#define NR_CPUS 4
#define WRITES 1000000 /* per vCPU, in the concurrent case */

/* What the host answers a SYNC with: an op and a page range. */
#define OP(kind, first, count) \
	((uint64_t)(kind) << 60 | (uint64_t)(count) << 30 | (first))
#define OP_KIND(op) ((op) >> 60)
#define OP_FIRST(op) ((op) & ((1ULL << 30) - 1))
#define OP_COUNT(op) (((op) >> 30) & ((1ULL << 30) - 1))
enum { OP_WRITE = 1, OP_READ, OP_RANDOM, OP_QUIT };

#ifdef GUEST

#include "guest.h"

static uint64_t page_qw(uint64_t page, uint64_t i)
{
	return *(volatile uint64_t *)(SLOT_GPA + page * 4096 + i * 8);
}

/* WRITES random pages, this vCPU's quadword of each: cpu << 56 | n. */
static void random_writes(uint64_t cpu)
{
	uint64_t x = 0x9e3779b97f4a7c15ULL * (cpu + 1);

	for (uint64_t n = 1; n <= WRITES; n++) {
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		*(volatile uint64_t *)(SLOT_GPA + (x % NPAGES) * 4096 +
				       cpu * 8) = cpu << 56 | n;
	}
}

static void serve(uint64_t cpu)
{
	uint64_t seq = 0, sum = 0;

	for (;;) {
		uint64_t op = GUEST_SYNC(seq);

		switch (OP_KIND(op)) {
		case OP_WRITE:
			for (uint64_t p = OP_FIRST(op);
			     p < OP_FIRST(op) + OP_COUNT(op); p++)
				*(volatile uint64_t *)(SLOT_GPA + p * 4096) =
					++seq;
			break;
		case OP_READ:
			for (uint64_t p = OP_FIRST(op);
			     p < OP_FIRST(op) + OP_COUNT(op); p++)
				sum += page_qw(p, 0);
			break;
		case OP_RANDOM:
			random_writes(cpu);
			break;
		case OP_QUIT:
			GUEST_DONE(sum & 0);
		default:
			GUEST_ASSERT_EQ(op, 0);
		}
	}
}

void guest_main(uint64_t arg0, uint64_t arg1)
{
	(void)arg0;
	(void)arg1;
	serve(0);
}

void guest_ap_main(uint64_t cpu)
{
	serve(cpu);
}

#else /* host */

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>

#include "guest_util.h"
#include "tap.h"

#define PG 4096UL
#define MEM (16ULL << 20)
#define WORDS ((NPAGES + 63) / 64)
#define SLOT_ID 1

static uint8_t *slot_mem;

enum mode { BITMAP, MANUAL, INIT_SET, RING };

static struct guest_vm *setup(enum mode mode, unsigned int cpus, uint32_t flags,
			      uint32_t ring_bytes)
{
	struct gmem_load_opts opts = {.mem_size = SLOT_GPA + NPAGES * PG};
	struct kvm_userspace_memory_region r = {
		.slot = SLOT_ID,
		.flags = flags,
		.guest_phys_addr = SLOT_GPA,
		.memory_size = NPAGES * PG,
	};
	struct kvm_enable_cap cap = {0};
	struct guest_vm *gvm;
	struct guest_vcpu *v;

	REQUIRE(guest_vm_create(KVM_X86_DEFAULT_VM, MEM, 0, &gvm) == 0);
	if (mode == MANUAL || mode == INIT_SET) {
		cap.cap = KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2;
		cap.args[0] =
			KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
			(mode == INIT_SET ? KVM_DIRTY_LOG_INITIALLY_SET : 0);
		REQUIRE(gmem_vm_enable_cap(gvm->vm, &cap) == 0);
	} else if (mode == RING) {
		cap.cap = KVM_CAP_DIRTY_LOG_RING;
		cap.args[0] = ring_bytes;
		REQUIRE(gmem_vm_enable_cap(gvm->vm, &cap) == 0);
	}
	slot_mem = mmap(NULL, NPAGES * PG, PROT_READ | PROT_WRITE,
			MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(slot_mem != MAP_FAILED);
	r.userspace_addr = (uint64_t)(uintptr_t)slot_mem;
	REQUIRE(gmem_vm_set_memory_region(gvm->vm, &r) == 0);
	for (unsigned int i = 0; i < cpus; i++)
		REQUIRE(guest_vcpu_add(gvm, &v) == 0);
	REQUIRE(guest_vm_load(gvm, "dirty", &opts) == 0);
	return gvm;
}

static void teardown(struct guest_vm *gvm)
{
	guest_vm_destroy(gvm);
	munmap(slot_mem, NPAGES * PG);
}

/* Run to the next SYNC, then answer it with @op (0: just run to it). */
static int sync_op(struct guest_vcpu *v, uint64_t op)
{
	struct guest_ucall uc;
	char msg[512];
	int r;

	if (op && guest_vcpu_reply(v, op))
		return -1;
	r = guest_vcpu_run(v, &uc);
	if (r != UCALL_SYNC) {
		printf("# %s\n", guest_describe(v, r, &uc, msg, sizeof(msg)));
		return -1;
	}
	return 0;
}

static void quit(struct guest_vcpu *v)
{
	CHECK_EQ(guest_vcpu_reply(v, OP(OP_QUIT, 0, 0)), 0);
	CHECK_EQ(guest_vcpu_run_to_done(v, NULL), 0);
}

static int get_log(struct guest_vm *gvm, uint64_t *bits)
{
	struct kvm_dirty_log log = {.slot = SLOT_ID, .dirty_bitmap = bits};

	return gmem_vm_get_dirty_log(gvm->vm, &log);
}

static int clear_log(struct guest_vm *gvm, uint64_t first, uint32_t n,
		     uint64_t *bits)
{
	struct kvm_clear_dirty_log log = {
		.slot = SLOT_ID,
		.first_page = first,
		.num_pages = n,
		.dirty_bitmap = bits,
	};

	return gmem_vm_clear_dirty_log(gvm->vm, &log);
}

/* The bitmap of a list of pages, ended by -1. */
static void pages(uint64_t *bits, const int *list)
{
	memset(bits, 0, WORDS * 8);
	for (; *list >= 0; list++)
		bits[*list / 64] |= 1ULL << (*list % 64);
}

/* GET reports exactly @list. */
static void expect_log(struct guest_vm *gvm, const int *list, const char *what)
{
	uint64_t got[WORDS], want[WORDS];

	memset(got, 0xa5, sizeof(got));
	CHECK_EQ(get_log(gvm, got), 0);
	pages(want, list);
	for (int i = 0; i < WORDS; i++)
		if (got[i] != want[i]) {
			printf("# %s: word %d is %#llx, not %#llx\n", what, i,
			       (unsigned long long)got[i],
			       (unsigned long long)want[i]);
			tap_case_failed = 1;
		}
}

static void write_pages(struct guest_vcpu *v, const int *list)
{
	for (; *list >= 0; list++)
		CHECK_EQ(sync_op(v, OP(OP_WRITE, *list, 1)), 0);
}

static void test_bitmap(void)
{
	struct guest_vm *gvm = setup(BITMAP, 1, 0, 0);
	struct guest_vcpu *v = gvm->vcpus[0];
	struct kvm_userspace_memory_region r = {
		.slot = SLOT_ID,
		.guest_phys_addr = SLOT_GPA,
		.memory_size = NPAGES * PG,
		.userspace_addr = (uint64_t)(uintptr_t)slot_mem,
	};
	const int none[] = {-1};

	REQUIRE(sync_op(v, 0) == 0);
	/* Not logged yet: every page written, so writable in stage 2. */
	CHECK_EQ(sync_op(v, OP(OP_WRITE, 0, NPAGES)), 0);
	CHECK_EQ(get_log(gvm, (uint64_t[WORDS]){0}), -ENOENT);
	r.flags = KVM_MEM_LOG_DIRTY_PAGES;
	CHECK_EQ(gmem_vm_set_memory_region(gvm->vm, &r), 0);
	expect_log(gvm, none, "logging just enabled");
	write_pages(v, (const int[]){7, -1});
	expect_log(gvm, (const int[]){7, -1}, "a page writable before logging");
	tap_result("enabling logging write-protects what was writable");

	write_pages(v, (const int[]){0, 5, 63, 64, NPAGES - 1, -1});
	expect_log(gvm, (const int[]){0, 5, 63, 64, NPAGES - 1, -1},
		   "five pages written");
	expect_log(gvm, none, "collected again");
	CHECK_EQ(sync_op(v, OP(OP_READ, 0, NPAGES)), 0);
	expect_log(gvm, none, "every page read");
	tap_result("KVM_GET_DIRTY_LOG: the pages written, once; reads nothing");

	write_pages(v, (const int[]){5, 100, 5, -1});
	expect_log(gvm, (const int[]){5, 100, -1}, "written again");
	CHECK_EQ(memcmp(slot_mem + 100 * PG, &(uint64_t){NPAGES + 8}, 8), 0);
	tap_result("a collected page is write-protected: its next write shows");

	r.flags = 0;
	CHECK_EQ(gmem_vm_set_memory_region(gvm->vm, &r), 0);
	CHECK_EQ(get_log(gvm, (uint64_t[WORDS]){0}), -ENOENT);
	CHECK_EQ(get_log(gvm, (void *)8), -ENOENT);
	r.flags = KVM_MEM_LOG_DIRTY_PAGES;
	CHECK_EQ(gmem_vm_set_memory_region(gvm->vm, &r), 0);
	/* A bitmap it cannot write: -EFAULT, the bits collected, as KVM. */
	write_pages(v, (const int[]){9, -1});
	CHECK_EQ(get_log(gvm, (void *)8), -EFAULT);
	expect_log(gvm, none, "after the -EFAULT");
	tap_result("logging off: -ENOENT; on again: a fresh bitmap; -EFAULT");

	quit(v);
	teardown(gvm);
}

static void test_manual(void)
{
	struct guest_vm *gvm = setup(MANUAL, 1, KVM_MEM_LOG_DIRTY_PAGES, 0);
	struct guest_vcpu *v = gvm->vcpus[0];
	uint64_t bits[WORDS];

	REQUIRE(sync_op(v, 0) == 0);
	write_pages(v, (const int[]){1, 2, 3, 130, -1});
	expect_log(gvm, (const int[]){1, 2, 3, 130, -1}, "written");
	expect_log(gvm, (const int[]){1, 2, 3, 130, -1}, "not cleared by GET");
	pages(bits, (const int[]){2, -1});
	CHECK_EQ(clear_log(gvm, 0, 64, bits), 0);
	expect_log(gvm, (const int[]){1, 3, 130, -1}, "page 2 cleared");
	write_pages(v, (const int[]){2, 3, -1});
	expect_log(gvm, (const int[]){1, 2, 3, 130, -1}, "page 2 rewritten");
	/* From page 128, to the slot's end (a partial last word is fine). */
	pages(bits, (const int[]){2, -1});
	CHECK_EQ(clear_log(gvm, 128, NPAGES - 128, bits), 0);
	expect_log(gvm, (const int[]){1, 2, 3, -1}, "page 130 cleared");
	tap_result(
		"KVM_CLEAR_DIRTY_LOG: GET keeps, CLEAR re-arms what it names");

	pages(bits, (const int[]){0, -1});
	CHECK_EQ(clear_log(gvm, 1, 64, bits), -EINVAL);
	CHECK_EQ(clear_log(gvm, 0, 65, bits), -EINVAL);
	CHECK_EQ(clear_log(gvm, 192, 64, bits), -EINVAL);
	CHECK_EQ(clear_log(gvm, 256, 0, bits), -EINVAL);
	CHECK_EQ(clear_log(gvm, 0, 64, (void *)8), -EFAULT);
	expect_log(gvm, (const int[]){1, 2, 3, -1}, "after the errors");
	tap_result("KVM_CLEAR_DIRTY_LOG: misaligned or past the end: -EINVAL");

	quit(v);
	teardown(gvm);

	gvm = setup(INIT_SET, 1, KVM_MEM_LOG_DIRTY_PAGES, 0);
	v = gvm->vcpus[0];
	REQUIRE(sync_op(v, 0) == 0);
	CHECK_EQ(get_log(gvm, bits), 0);
	for (int i = 0; i < WORDS; i++)
		CHECK_EQ(bits[i],
			 i < WORDS - 1 ? ~0ULL : (1ULL << (NPAGES % 64)) - 1);
	memset(bits, 0xff, sizeof(bits));
	CHECK_EQ(clear_log(gvm, 0, NPAGES, bits), 0);
	write_pages(v, (const int[]){150, -1});
	expect_log(gvm, (const int[]){150, -1}, "all cleared, one written");
	tap_result("KVM_DIRTY_LOG_INITIALLY_SET: a new slot starts all dirty");
	quit(v);
	teardown(gvm);
}

/* Harvest @ring from *@idx: each entry's offset into @bits; the count. */
static unsigned int harvest(struct kvm_dirty_gfn *ring, uint32_t size,
			    uint32_t *idx, uint64_t *bits, bool *bad)
{
	unsigned int n = 0;

	for (;; (*idx)++, n++) {
		struct kvm_dirty_gfn *e = &ring[*idx & (size - 1)];

		if (__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) !=
		    KVM_DIRTY_GFN_F_DIRTY)
			break;
		if (e->slot != SLOT_ID || e->offset >= NPAGES)
			*bad = true;
		else if (bits)
			bits[e->offset / 64] |= 1ULL << (e->offset % 64);
		__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_RESET,
				 __ATOMIC_RELEASE);
	}
	return n;
}

static void test_ring(void)
{
	/* 256 entries: soft-full at 192. */
	struct guest_vm *gvm = setup(RING, 1, KVM_MEM_LOG_DIRTY_PAGES, 4096);
	struct guest_vcpu *v = gvm->vcpus[0];
	struct kvm_dirty_gfn *ring = gmem_vcpu_dirty_ring(v->vcpu);
	uint64_t bits[WORDS] = {0};
	unsigned int fulls = 0, total = 0, n;
	uint32_t idx = 0;
	struct guest_ucall uc;
	bool bad = false;
	int r;

	REQUIRE(ring != NULL);
	REQUIRE(sync_op(v, 0) == 0);
	CHECK_EQ(get_log(gvm, bits), -ENXIO);
	REQUIRE(guest_vcpu_reply(v, OP(OP_WRITE, 0, NPAGES)) == 0);
	while ((r = guest_vcpu_run(v, &uc)) == GUEST_EXIT &&
	       v->run->exit_reason == KVM_EXIT_DIRTY_RING_FULL) {
		/* Still full: the next run exits at once. */
		CHECK_EQ(guest_vcpu_run(v, &uc), GUEST_EXIT);
		CHECK_EQ(v->run->exit_reason, KVM_EXIT_DIRTY_RING_FULL);
		n = harvest(ring, 256, &idx, bits, &bad);
		CHECK(n >= 192 && n <= 256 - 64);
		CHECK_EQ(gmem_vm_reset_dirty_rings(gvm->vm), (int)n);
		CHECK_EQ(gmem_vm_reset_dirty_rings(gvm->vm), 0);
		total += n;
		fulls++;
	}
	CHECK_EQ(r, UCALL_SYNC);
	CHECK_EQ(fulls, 1);
	n = harvest(ring, 256, &idx, bits, &bad);
	CHECK_EQ(gmem_vm_reset_dirty_rings(gvm->vm), (int)n);
	total += n;
	CHECK(!bad);
	/*
	 * The write that filled the ring ran again after the reset, which
	 * had protected its page: that page is in the ring twice, as the
	 * last PFN before a full ring is in KVM's.
	 */
	CHECK_EQ(total, NPAGES + fulls);
	for (int i = 0; i < WORDS; i++)
		CHECK_EQ(bits[i],
			 i < WORDS - 1 ? ~0ULL : (1ULL << (NPAGES % 64)) - 1);
	tap_result(
		"dirty ring: an entry a page, the soft-full exit, the reset");

	memset(bits, 0, sizeof(bits));
	CHECK_EQ(sync_op(v, OP(OP_WRITE, 10, 3)), 0);
	CHECK_EQ(sync_op(v, OP(OP_READ, 0, NPAGES)), 0);
	CHECK_EQ(harvest(ring, 256, &idx, bits, &bad), 3);
	CHECK_EQ(bits[0], 7ULL << 10);
	CHECK_EQ(gmem_vm_reset_dirty_rings(gvm->vm), 3);
	tap_result("dirty ring: pages reset are reported again, reads never");

	quit(v);
	teardown(gvm);
}

/* ---- four vCPUs writing while the host collects ------------------------ */

struct racer {
	struct guest_vcpu *v;
	int ret;
	bool done; /* atomic */
};

static void *race_vcpu(void *arg)
{
	struct racer *rc = arg;
	struct guest_ucall uc;
	int r;

	r = guest_vcpu_reply(rc->v, OP(OP_RANDOM, 0, 0));
	/* A full ring waits for the collector's reset. */
	while (!r && (r = guest_vcpu_run(rc->v, &uc)) == GUEST_EXIT &&
	       rc->v->run->exit_reason == KVM_EXIT_DIRTY_RING_FULL)
		sched_yield();
	rc->ret = r;
	__atomic_store_n(&rc->done, true, __ATOMIC_RELEASE);
	return NULL;
}

/* The collector's view: what each page read after its last report. */
static uint64_t seen[NPAGES][NR_CPUS];

static void note_reported(const uint64_t *bits)
{
	for (int p = 0; p < NPAGES; p++)
		if (bits[p / 64] & (1ULL << (p % 64)))
			for (int c = 0; c < NR_CPUS; c++)
				seen[p][c] = __atomic_load_n(
					(uint64_t *)(slot_mem + p * PG + c * 8),
					__ATOMIC_RELAXED);
}

static unsigned int collect(struct guest_vm *gvm, bool ring, uint32_t *idx,
			    bool *bad)
{
	uint64_t bits[WORDS] = {0};
	unsigned int n = 0;

	if (!ring) {
		CHECK_EQ(get_log(gvm, bits), 0);
		for (int i = 0; i < WORDS; i++)
			n += (unsigned int)__builtin_popcountll(bits[i]);
	} else {
		for (int c = 0; c < NR_CPUS; c++)
			n += harvest(gmem_vcpu_dirty_ring(gvm->vcpus[c]->vcpu),
				     1024, &idx[c], bits, bad);
		CHECK_EQ(gmem_vm_reset_dirty_rings(gvm->vm), (int)n);
	}
	note_reported(bits);
	return n;
}

static void test_race(bool ring)
{
	struct guest_vm *gvm = setup(ring ? RING : BITMAP, NR_CPUS,
				     KVM_MEM_LOG_DIRTY_PAGES, 1024 * 16);
	struct racer rc[NR_CPUS];
	pthread_t th[NR_CPUS];
	uint32_t idx[NR_CPUS] = {0};
	unsigned int rounds = 0, lost = 0, running;
	bool bad = false;

	memset(seen, 0, sizeof(seen));
	for (int c = 0; c < NR_CPUS; c++) {
		rc[c] = (struct racer){.v = gvm->vcpus[c]};
		REQUIRE(sync_op(rc[c].v, 0) == 0);
	}
	for (int c = 0; c < NR_CPUS; c++)
		REQUIRE(pthread_create(&th[c], NULL, race_vcpu, &rc[c]) == 0);
	do {
		running = 0;
		for (int c = 0; c < NR_CPUS; c++)
			running +=
				!__atomic_load_n(&rc[c].done, __ATOMIC_ACQUIRE);
		collect(gvm, ring, idx, &bad);
		rounds++;
	} while (running);
	for (int c = 0; c < NR_CPUS; c++) {
		pthread_join(th[c], NULL);
		CHECK_EQ(rc[c].ret, UCALL_SYNC);
	}
	/* Quiescent now: what is left, then nothing more. */
	collect(gvm, ring, idx, &bad);
	CHECK_EQ(collect(gvm, ring, idx, &bad), 0);
	CHECK(!bad);
	for (int p = 0; p < NPAGES; p++)
		for (int c = 0; c < NR_CPUS; c++)
			lost += memcmp(slot_mem + p * PG + c * 8, &seen[p][c],
				       8) != 0;
	CHECK_EQ(lost, 0);
	/* Every vCPU's last write is in place, in some page. */
	for (int c = 0; c < NR_CPUS; c++) {
		bool found = false;

		for (int p = 0; p < NPAGES; p++)
			found |= seen[p][c] == ((uint64_t)c << 56 | WRITES);
		CHECK(found);
	}
	printf("# %u collections while %d vCPUs wrote %d pages each\n", rounds,
	       NR_CPUS, WRITES);
	tap_result(ring ? "four vCPUs, dirty rings: no write unreported"
			: "four vCPUs, the bitmap: no write unreported");
	for (int c = 0; c < NR_CPUS; c++)
		quit(rc[c].v);
	teardown(gvm);
}

int main(void)
{
	tap_plan(11, 300);
	test_bitmap();
	test_manual();
	test_ring();
	test_race(false);
	test_race(true);
	return tap_done();
}

#endif
