// SPDX-License-Identifier: MIT
/*
 * The core interface from several threads at once: a set of attributes is
 * seen whole or not at all, snapshots with the same sequence number agree,
 * updates to disjoint ranges are not lost, the handle table never hands
 * one number to two owners, and slot creation and binding stay exclusive.
 * Each thread does a fixed number of rounds (GMEM_THREADS_ROUNDS scales
 * them, default 1000); no clock decides anything.
 */
#include <pthread.h>
#include <stdatomic.h>

#include "gmem_test.h"

#define NTHREADS 4

static long rounds = 1000;

/* Failures from worker threads; reported by the main thread. */
static atomic_int thread_failures;

#define TCHECK(cond)                                                      \
	do {                                                              \
		if (!(cond) && atomic_fetch_add(&thread_failures, 1) < 8) \
			printf("# %s:%d: CHECK(%s) failed in a thread\n", \
			       __FILE__, __LINE__, #cond);                \
	} while (0)

static void join_and_report(pthread_t *th, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
	if (atomic_exchange(&thread_failures, 0))
		tap_case_failed = 1;
	tap_result(name);
}

/* ---- a set is atomic; equal sequence numbers mean equal maps ----------- */

#define SPAN (256 * PAGE)

static struct gmem_vm *atom_vm;
static atomic_bool atom_stop;
static atomic_long atom_writes; /* the writer's rounds so far */

/* The three maps the writer moves between, one call per move. */
static const struct gmem_attr_range state_a[] = {{0, SPAN, NW}};
static const struct gmem_attr_range state_b[] = {
	{0, 64 * PAGE, NW},
	{64 * PAGE, 128 * PAGE, PRIV},
	{192 * PAGE, 64 * PAGE, NW},
};
static const struct gmem_attr_range state_c[] = {{0, SPAN, NR | NW | NX}};

/* seq -> state seen, shared by the readers */
#define SEQ_SLOTS 4096
static pthread_mutex_t seq_lock = PTHREAD_MUTEX_INITIALIZER;
static uint64_t seq_key[SEQ_SLOTS];
static int seq_state[SEQ_SLOTS];

static int classify(const struct gmem_attr_range *r, int n)
{
	static const struct {
		const struct gmem_attr_range *r;
		int n;
	} states[] = {{state_a, 1}, {state_b, 3}, {state_c, 1}};

	for (int s = 0; s < 3; s++) {
		if (n != states[s].n)
			continue;
		if (!memcmp(r, states[s].r, (size_t)n * sizeof(*r)))
			return s + 1;
	}
	return 0;
}

static void *atom_writer(void *arg)
{
	struct kvm_memory_attributes a = {0};

	(void)arg;
	while (!atomic_load(&atom_stop)) {
		a = (struct kvm_memory_attributes){64 * PAGE, 128 * PAGE, PRIV,
						   0};
		TCHECK(gmem_vm_set_memory_attributes(atom_vm, &a) == 0);
		a = (struct kvm_memory_attributes){0, SPAN, NR | NW | NX, 0};
		TCHECK(gmem_vm_set_memory_attributes(atom_vm, &a) == 0);
		a = (struct kvm_memory_attributes){0, SPAN, NW, 0};
		TCHECK(gmem_vm_set_memory_attributes(atom_vm, &a) == 0);
		atomic_fetch_add(&atom_writes, 1);
	}
	return NULL;
}

static void *atom_reader(void *arg)
{
	struct gmem_attr_range r[8];
	uint64_t seq;
	long seen = 0;

	(void)arg;
	/* Enough snapshots, taken while the writer is busy. */
	while (seen < 4 * rounds || atomic_load(&atom_writes) < rounds) {
		int n = gmem_vm_get_memory_attributes(atom_vm, 0, SPAN, r, 8,
						      &seq);
		int st = n >= 0 && n <= 8 ? classify(r, n) : 0;

		TCHECK(st != 0);
		if (!st)
			continue;
		pthread_mutex_lock(&seq_lock);
		if (seq_key[seq % SEQ_SLOTS] == seq + 1)
			TCHECK(seq_state[seq % SEQ_SLOTS] == st);
		seq_key[seq % SEQ_SLOTS] = seq + 1;
		seq_state[seq % SEQ_SLOTS] = st;
		pthread_mutex_unlock(&seq_lock);
		seen++;
	}
	return NULL;
}

static void test_atomic_sets(void)
{
	struct kvm_memory_attributes a = {0, SPAN, NW, 0};
	pthread_t th[NTHREADS];

	atom_vm = test_vm(KVM_X86_SW_PROTECTED_VM);
	REQUIRE(gmem_vm_set_memory_attributes(atom_vm, &a) == 0);
	atomic_store(&atom_stop, false);
	atomic_store(&atom_writes, 0);
	pthread_create(&th[0], NULL, atom_writer, NULL);
	for (int i = 1; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, atom_reader, NULL);
	/* The readers end when they have seen enough; then the writer. */
	for (int i = 1; i < NTHREADS; i++)
		pthread_join(th[i], NULL);
	atomic_store(&atom_stop, true);
	join_and_report(th, 1, "snapshots see whole sets; same seq, same map");
	gmem_vm_put(atom_vm);
}

/* ---- disjoint updates are not lost ------------------------------------- */

#define REGION_PAGES 128

static struct gmem_vm *lost_vm;

static void *lost_worker(void *arg)
{
	static const uint64_t values[] = {0,	   NW,		 NX,
					  NW | NX, NR | NW | NX, PRIV};
	long id = (long)arg;
	uint64_t base = (uint64_t)id * 2 * REGION_PAGES * PAGE;
	uint64_t model[REGION_PAGES] = {0};
	uint64_t rng = 0x9e3779b97f4a7c15ULL * (uint64_t)(id + 1);
	struct gmem_attr_range r[REGION_PAGES + 1];

	for (long round = 0; round < rounds / 10; round++) {
		for (int k = 0; k < 64; k++) {
			uint64_t p, n, v;
			struct kvm_memory_attributes a = {0};

			rng ^= rng << 13;
			rng ^= rng >> 7;
			rng ^= rng << 17;
			p = rng % REGION_PAGES;
			n = 1 + (rng >> 20) % (REGION_PAGES - p);
			v = values[(rng >> 40) % 6];
			a.address = base + p * PAGE;
			a.size = n * PAGE;
			a.attributes = v;
			TCHECK(gmem_vm_set_memory_attributes(lost_vm, &a) == 0);
			for (uint64_t i = p; i < p + n; i++)
				model[i] = v;
		}
	}
	/* compare the region with the thread's own model */
	{
		int n = gmem_vm_get_memory_attributes(lost_vm, base,
						      REGION_PAGES * PAGE, r,
						      REGION_PAGES + 1, NULL);
		uint64_t got[REGION_PAGES] = {0};

		TCHECK(n >= 0 && n <= REGION_PAGES);
		for (int i = 0; i < n && i <= REGION_PAGES; i++)
			for (uint64_t a = r[i].address;
			     a < r[i].address + r[i].size; a += PAGE)
				got[(a - base) / PAGE] = r[i].attributes;
		TCHECK(!memcmp(got, model, sizeof(got)));
	}
	return NULL;
}

static void test_no_lost_update(void)
{
	pthread_t th[NTHREADS];

	lost_vm = test_vm(KVM_X86_SW_PROTECTED_VM);
	for (long i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, lost_worker, (void *)i);
	join_and_report(th, NTHREADS,
			"threads setting disjoint ranges lose no update");
	gmem_vm_put(lost_vm);
}

/* ---- the handle table -------------------------------------------------- */

#define MAX_HANDLE 65536

static atomic_int owner[MAX_HANDLE];
static struct gmem_vm *table_vm;

static bool take(long h, int me)
{
	int zero = 0;

	if (h < 3 || h >= MAX_HANDLE)
		return false;
	return atomic_compare_exchange_strong(&owner[h], &zero, me);
}

static void *table_worker(void *arg)
{
	int me = (int)(long)arg + 1;
	uint64_t size = (uint64_t)me * PAGE; /* tells our files apart */
	struct kvm_create_guest_memfd g = {.size = size};
	int held[16];

	/* The slowest case by far (32 calls a round), under TSan above all. */
	for (long round = 0; round < rounds / 20; round++) {
		for (int i = 0; i < 16; i++) {
			long h = i & 1 ? gmem_create_guest_memfd(table_vm, &g)
				       : gmem_open();

			TCHECK(take(h, me));
			held[i] = (int)h;
		}
		for (int i = 0; i < 16; i++) {
			struct stat st;

			if (i & 1) {
				TCHECK(gmem_fstat(held[i], &st) == 0 &&
				       (uint64_t)st.st_size == size);
			} else {
				TCHECK(gmem_ioctl(held[i], KVM_GET_API_VERSION,
						  0) == 12);
			}
			if (held[i] >= 3 && held[i] < MAX_HANDLE)
				atomic_store(&owner[held[i]], 0);
			TCHECK(gmem_close(held[i]) == 0);
		}
	}
	return NULL;
}

static void test_handle_table(void)
{
	pthread_t th[NTHREADS];

	table_vm = test_vm(KVM_X86_SW_PROTECTED_VM);
	for (long i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, table_worker, (void *)i);
	join_and_report(th, NTHREADS,
			"concurrent open/close never shares a handle number");
	gmem_vm_put(table_vm);
}

/* ---- slots: exclusive creation and binding ----------------------------- */

static struct gmem_vm *slot_vm;
static int slot_file;
static uint8_t *slot_mem;
static atomic_int gpa_holder, file_holder;

static void *slot_worker(void *arg)
{
	int me = (int)(long)arg + 1;
	uint32_t own = (uint32_t)me * 4;
	uint64_t own_gpa = (uint64_t)me * 0x10000000ULL;
	struct kvm_userspace_memory_region2 r;

	for (long round = 0; round < 4 * rounds; round++) {
		int zero = 0;
		long ret;

		/* our own slot: always works */
		r = region2(own, 0, own_gpa, 16 * PAGE, (uintptr_t)slot_mem);
		TCHECK(gmem_vm_set_memory_region2(slot_vm, &r) == 0);
		r.flags = KVM_MEM_LOG_DIRTY_PAGES;
		TCHECK(gmem_vm_set_memory_region2(slot_vm, &r) == 0);
		r.guest_phys_addr = own_gpa + 0x100000; /* a move */
		TCHECK(gmem_vm_set_memory_region2(slot_vm, &r) == 0);
		r.memory_size = 0;
		TCHECK(gmem_vm_set_memory_region2(slot_vm, &r) == 0);

		/* the contested GPA range: one holder at a time */
		r = region2(own + 1, 0, 0, 16 * PAGE, (uintptr_t)slot_mem);
		ret = gmem_vm_set_memory_region2(slot_vm, &r);
		TCHECK(ret == 0 || ret == -EEXIST);
		if (ret == 0) {
			TCHECK(atomic_compare_exchange_strong(&gpa_holder,
							      &zero, me));
			atomic_store(&gpa_holder, 0);
			r.memory_size = 0;
			TCHECK(gmem_vm_set_memory_region2(slot_vm, &r) == 0);
		}

		/* the contested file range, each at its own GPA */
		zero = 0;
		r = gregion2(own + 2, own_gpa + 0x1000000, 16 * PAGE,
			     (uintptr_t)slot_mem, slot_file, 0);
		ret = gmem_vm_set_memory_region2(slot_vm, &r);
		TCHECK(ret == 0 || ret == -EINVAL);
		if (ret == 0) {
			TCHECK(atomic_compare_exchange_strong(&file_holder,
							      &zero, me));
			atomic_store(&file_holder, 0);
			r.memory_size = 0;
			TCHECK(gmem_vm_set_memory_region2(slot_vm, &r) == 0);
		}
	}
	return NULL;
}

static void test_slots(void)
{
	pthread_t th[NTHREADS];
	struct kvm_create_guest_memfd g = {.size = 16 * PAGE};

	slot_vm = test_vm(KVM_X86_SW_PROTECTED_VM);
	slot_mem = test_mem(16 * PAGE);
	slot_file = gmem_create_guest_memfd(slot_vm, &g);
	REQUIRE(slot_file >= 0);
	for (long i = 0; i < NTHREADS; i++)
		pthread_create(&th[i], NULL, slot_worker, (void *)i);
	join_and_report(th, NTHREADS,
			"slot overlap and binding overlap stay exclusive");
	/* nothing is left: every id reads back as absent */
	for (uint32_t id = 0; id < 4 * (NTHREADS + 1); id++) {
		struct kvm_userspace_memory_region2 out;

		CHECK_EQ(gmem_vm_get_memory_region2(slot_vm, id, &out),
			 -ENOENT);
	}
	tap_result("all slots gone afterwards");
	CHECK_EQ(gmem_close(slot_file), 0);
	gmem_vm_put(slot_vm);
	munmap(slot_mem, 16 * PAGE);
}

int main(void)
{
	const char *n = getenv("GMEM_THREADS_ROUNDS");

	if (n && atol(n) > 0)
		rounds = atol(n);
	tap_plan(5, 60);
	test_atomic_sets();
	test_no_lost_update();
	test_handle_table();
	test_slots();
	return tap_done();
}
