// SPDX-License-Identifier: MIT
/*
 * The range store (src/attr.c) against a plain array, op by op: value of
 * every page, maximal-run bounds from lookup, the run count, the number of
 * set pages, and the for_each walk over random windows; and the reserve
 * contract: a store after a reserve cannot run out of nodes, even with no
 * node to spare beyond what GMEM_RANGES_RESERVE() promises, and a failed
 * reserve changes nothing.  The B+tree's own edge cases get maps large
 * enough for several levels: splits at both ends of one store, stores that
 * empty whole nodes, a clear of everything.
 */
#include <gmem/gmem.h>

#include "tap.h"

#include "attr.h"

#define NPAGES 300
#define BIG 6000

static uint64_t model[BIG];
static uint32_t rng = 12345;

/* Runs and pages kept outside the model, far above it (drain()). */
static size_t extra_runs;
static uint64_t extra_pages, extra_next = 1ULL << 40;

static uint32_t rnd(void)
{
	rng ^= rng << 13;
	rng ^= rng >> 17;
	rng ^= rng << 5;
	return rng;
}

struct walk {
	uint64_t expect_start;
	int bad;
	size_t n;
};

static void check_run(void *arg, uint64_t s, uint64_t e, uint64_t v)
{
	struct walk *w = arg;

	for (uint64_t p = s; p < e; p++)
		if (model[p] != v || !v)
			w->bad = 1;
	if (s < w->expect_start)
		w->bad = 1;
	w->expect_start = e;
	w->n++;
}

/* Every page of [0, @npages) against the model, and the counters. */
static int compare_n(struct gmem_ranges *m, uint64_t npages)
{
	size_t runs = 0;
	uint64_t set = 0;

	for (uint64_t p = 0; p < npages; p++) {
		uint64_t s, e, v = gmem_ranges_lookup(m, p, &s, &e);
		uint64_t ms = p, me = p + 1;

		while (ms > 0 && model[ms - 1] == model[p])
			ms--;
		while (me < npages && model[me] == model[p])
			me++;
		if (v != model[p] || s != ms || (me < npages && e != me) ||
		    (me == npages && model[p] && e != me)) {
			tap_diag("page %llu: %llu [%llu,%llu), model %llu "
				 "[%llu,%llu)",
				 (unsigned long long)p, (unsigned long long)v,
				 (unsigned long long)s, (unsigned long long)e,
				 (unsigned long long)model[p],
				 (unsigned long long)ms,
				 (unsigned long long)me);
			return 0;
		}
		if (model[p]) {
			set++;
			if (p == 0 || model[p - 1] != model[p])
				runs++;
		}
	}
	if (runs + extra_runs != m->nr_runs || set + extra_pages != m->nr_set) {
		tap_diag("runs %zu (model %zu), set %llu (model %llu)",
			 m->nr_runs, runs + extra_runs,
			 (unsigned long long)m->nr_set,
			 (unsigned long long)(set + extra_pages));
		return 0;
	}

	uint64_t a = rnd() % npages, b = a + 1 + rnd() % (npages - a);
	struct walk w = {.expect_start = a};
	size_t n = gmem_ranges_for_each(m, a, b, check_run, &w);
	return !w.bad && n == w.n;
}

static int compare(struct gmem_ranges *m)
{
	return compare_n(m, NPAGES);
}

static void store(struct gmem_ranges *m, uint64_t s, uint64_t e, uint64_t v)
{
	gmem_ranges_store(m, s, e, v);
	for (uint64_t p = s; p < e && p < BIG; p++)
		model[p] = v;
}

/*
 * Leave exactly GMEM_RANGES_RESERVE() free nodes, by appending one-page
 * runs far above the model (each takes a node now and then), so that the
 * next store has nothing to spare: if it needs more, take_node() aborts.
 */
static void drain(struct gmem_ranges *m)
{
	for (int tries = 0; tries < 100000; tries++) {
		size_t want = GMEM_RANGES_RESERVE(m->height);

		if (m->nr_free == want)
			return;
		if (m->nr_free < want) {
			REQUIRE(gmem_ranges_reserve(m) == 0);
			continue;
		}
		gmem_ranges_store(m, extra_next, extra_next + 1, 9);
		extra_next += 2;
		extra_runs++;
		extra_pages++;
	}
	REQUIRE(!"drain() found no way down to the reserve");
}

/* Ascending one-page-gap runs over [0, npages): full nodes throughout. */
static void fill_ascending(struct gmem_ranges *m, uint64_t npages)
{
	for (uint64_t k = 0; 4 * k + 3 <= npages; k++) {
		REQUIRE(gmem_ranges_reserve(m) == 0);
		store(m, 4 * k, 4 * k + 3, 1 + k % 3);
	}
}

int main(void)
{
	struct gmem_ranges m;
	int ok = 1;

	tap_plan(10, 120);

	gmem_ranges_init(&m);
	for (int i = 0; i < 200000 && ok; i++) {
		uint64_t s = rnd() % NPAGES, e = s + 1 + rnd() % 40;
		uint64_t v = rnd() % 4;

		if (e > NPAGES)
			e = NPAGES;
		REQUIRE(gmem_ranges_reserve(&m) == 0);
		store(&m, s, e, v);
		if (!compare(&m)) {
			tap_diag("mismatch after op %d: [%llu,%llu)=%llu", i,
				 (unsigned long long)s, (unsigned long long)e,
				 (unsigned long long)v);
			ok = 0;
		}
	}
	CHECK(ok);
	tap_result("random stores match a per-page array");
	gmem_ranges_destroy(&m);

	/*
	 * A map of a few thousand short runs (a tree three or four levels
	 * deep), stores of every length up to whole-map, each with exactly
	 * the promised nodes free: splits, merges and evening-out at every
	 * level, and the reserve's worst case.
	 */
	gmem_ranges_init(&m);
	memset(model, 0, sizeof(model));
	fill_ascending(&m, BIG);
	CHECK(compare_n(&m, BIG));
	CHECK(m.height >= 3);
	ok = 1;
	for (int i = 0; i < 4000 && ok; i++) {
		uint32_t kind = rnd() % 8;
		uint64_t s = rnd() % BIG, len, v = rnd() % 4;

		/* Mostly short stores, some long, a few of everything. */
		len = kind < 5	 ? 1 + rnd() % 8
		      : kind < 7 ? 1 + rnd() % 400
				 : 1 + rnd() % BIG;
		if (s + len > BIG)
			len = BIG - s;
		REQUIRE(gmem_ranges_reserve(&m) == 0);
		drain(&m);
		store(&m, s, s + len, v);
		/* And put short runs back now and then, to keep it deep. */
		if (kind == 7 && (rnd() & 1)) {
			for (uint64_t p = s; p + 3 <= s + len; p += 4) {
				REQUIRE(gmem_ranges_reserve(&m) == 0);
				store(&m, p, p + 3, 1 + rnd() % 3);
			}
		}
		if ((i % 16 == 0 || kind == 7) && !compare_n(&m, BIG)) {
			tap_diag("mismatch after op %d: [%llu,+%llu)=%llu", i,
				 (unsigned long long)s, (unsigned long long)len,
				 (unsigned long long)v);
			ok = 0;
		}
	}
	CHECK(ok && compare_n(&m, BIG));
	tap_result("stores of every size on a deep tree, with only the "
		   "reserved nodes free");
	gmem_ranges_destroy(&m);

	/*
	 * Splits at both ends of one store: a full tree, then a store whose
	 * start and end each fall in a full leaf, far apart, so that both
	 * leaves split and everything between them is emptied and merged
	 * away in the same store.
	 */
	gmem_ranges_init(&m);
	memset(model, 0, sizeof(model));
	extra_runs = extra_pages = 0;
	fill_ascending(&m, BIG);
	for (uint64_t s = 1; s < 100; s += 7) {
		uint64_t e = BIG - 1 - 3 * s;

		REQUIRE(gmem_ranges_reserve(&m) == 0);
		drain(&m);
		/* Both ends mid-run: two boundaries added, none merged. */
		store(&m, 1000 + 4 * s + 1, e - 4 * s - 2, 3 + s % 2);
		CHECK(compare_n(&m, BIG));
		REQUIRE(gmem_ranges_reserve(&m) == 0);
		drain(&m);
		fill_ascending(&m, BIG);
	}
	CHECK(compare_n(&m, BIG));
	tap_result("a store that splits leaves at both ends and empties the "
		   "nodes between");
	gmem_ranges_destroy(&m);

	/* Huge ranges cost one node each, whatever their size. */
	extra_runs = extra_pages = 0;
	gmem_ranges_init(&m);
	REQUIRE(gmem_ranges_reserve(&m) == 0);
	gmem_ranges_store(&m, 1ULL << 28, 2ULL << 28, 5);
	REQUIRE(gmem_ranges_reserve(&m) == 0);
	gmem_ranges_store(&m, (1ULL << 28) + 7, (1ULL << 28) + 8, 6);
	CHECK_EQ(m.nr_runs, 3);
	CHECK_EQ(m.nr_set, 1ULL << 28);
	CHECK(gmem_ranges_is_uniform(&m, 1ULL << 28, (1ULL << 28) + 7, 5));
	CHECK(!gmem_ranges_is_uniform(&m, 1ULL << 28, (1ULL << 28) + 8, 5));
	CHECK(gmem_ranges_is_uniform(&m, 0, 1ULL << 28, 0));
	tap_result("a 1 TiB run is one node, split in three by one page");

	/* Reserve is the only step that can fail; store after it cannot. */
	REQUIRE(gmem_ranges_reserve(&m) == 0);
	gmem_ranges_store(&m, 0, UINT64_MAX, 0);
	CHECK_EQ(m.nr_runs, 0);
	CHECK_EQ(m.nr_set, 0);
	CHECK_EQ(gmem_ranges_lookup(&m, 12345, NULL, NULL), 0);
	tap_result("clearing everything empties the map");
	gmem_ranges_destroy(&m);

	/* The top of the page space: a run may end at UINT64_MAX. */
	{
		uint64_t s, e;

		gmem_ranges_init(&m);
		REQUIRE(gmem_ranges_reserve(&m) == 0);
		gmem_ranges_store(&m, UINT64_MAX - 10, UINT64_MAX, 4);
		CHECK_EQ(m.nr_runs, 1);
		CHECK_EQ(m.nr_set, 10);
		CHECK_EQ(gmem_ranges_lookup(&m, UINT64_MAX - 1, &s, &e), 4);
		CHECK_EQ(s, UINT64_MAX - 10);
		CHECK_EQ(e, UINT64_MAX);
		CHECK_EQ(gmem_ranges_lookup(&m, UINT64_MAX, &s, &e), 0);
		CHECK_EQ(s, UINT64_MAX);
		CHECK_EQ(gmem_ranges_lookup(&m, 5, &s, &e), 0);
		CHECK_EQ(s, 0);
		CHECK_EQ(e, UINT64_MAX - 10);
		REQUIRE(gmem_ranges_reserve(&m) == 0);
		gmem_ranges_store(&m, 0, UINT64_MAX - 10, 4);
		CHECK_EQ(m.nr_runs, 1);
		CHECK_EQ(gmem_ranges_lookup(&m, 0, &s, &e), 4);
		CHECK_EQ(s, 0);
		CHECK_EQ(e, UINT64_MAX);
		CHECK_EQ(gmem_ranges_for_each(&m, 3, UINT64_MAX, NULL, NULL),
			 1);
		REQUIRE(gmem_ranges_reserve(&m) == 0);
		gmem_ranges_store(&m, 100, UINT64_MAX, 0);
		CHECK_EQ(m.nr_set, 100);
		CHECK_EQ(gmem_ranges_lookup(&m, UINT64_MAX, &s, &e), 0);
		CHECK_EQ(s, 100);
		CHECK_EQ(e, UINT64_MAX);
		gmem_ranges_destroy(&m);
	}
	tap_result("runs up to UINT64_MAX, and the page UINT64_MAX itself");

	/*
	 * Many runs, then one clear of everything: every node goes back to
	 * the free list, and filling the map again takes no memory.
	 */
	{
		enum { N = 100000 };
		long before, after;
		size_t nodes;

		gmem_ranges_init(&m);
		for (uint64_t k = 0; k < N; k++) {
			REQUIRE(gmem_ranges_reserve(&m) == 0);
			gmem_ranges_store(&m, 2 * k, 2 * k + 1, 1 + k % 2 * 7);
		}
		CHECK_EQ(m.nr_runs, N);
		CHECK(m.height >= 4);
		REQUIRE(gmem_ranges_reserve(&m) == 0);
		gmem_ranges_store(&m, 0, UINT64_MAX, 0);
		CHECK(m.root == NULL);
		CHECK_EQ(m.height, 0);
		CHECK_EQ(m.nr_runs, 0);
		CHECK_EQ(m.nr_set, 0);
		nodes = m.nr_free;
		before = gmem_test_fail_alloc(0);
		for (uint64_t k = 0; k < N; k++) {
			REQUIRE(gmem_ranges_reserve(&m) == 0);
			gmem_ranges_store(&m, 2 * k, 2 * k + 1, 1 + k % 2 * 7);
		}
		after = gmem_test_fail_alloc(0);
		CHECK_EQ(after, before);
		CHECK_EQ(m.nr_runs, N);
		CHECK_EQ(m.nr_set, N);
		CHECK(nodes > m.nr_free);
		/* And a clear of everything but the two ends. */
		REQUIRE(gmem_ranges_reserve(&m) == 0);
		gmem_ranges_store(&m, 1, 2 * N - 2, 5);
		CHECK_EQ(m.nr_runs, 3);
		CHECK_EQ(m.height, 0);
		CHECK_EQ(m.nr_set, 2 * N - 1);
		gmem_ranges_destroy(&m);
	}
	tap_result("many runs, then one clear of everything");

	/*
	 * Use up the free nodes until exactly GMEM_RANGES_RESERVE() are left,
	 * make the next allocation fail, then store a worst case: a run cut
	 * in three.  It must succeed, correctly, without asking for memory.
	 */
	gmem_ranges_init(&m);
	memset(model, 0, sizeof(model));
	extra_runs = extra_pages = 0;
	fill_ascending(&m, NPAGES);
	REQUIRE(gmem_ranges_reserve(&m) == 0);
	drain(&m);
	{
		const struct gmem_ranges_chunk *chunks = m.chunks;
		size_t runs = m.nr_runs;
		long before = gmem_test_fail_alloc(1), after;

		/* [1, 2) cuts into [0, 3): three runs where there was one. */
		store(&m, 1, 2, 7);
		after = gmem_test_fail_alloc(0);
		CHECK_EQ(after, before);
		CHECK(m.chunks == chunks);
		CHECK_EQ(m.nr_runs, runs + 2);
		CHECK(compare(&m));
	}
	tap_result("a store after a reserve allocates nothing, even with "
		   "an allocation failure pending");

	/* And the reserve is where the failure lands, changing nothing. */
	while (m.nr_free >= GMEM_RANGES_RESERVE(m.height)) {
		gmem_ranges_store(&m, extra_next, extra_next + 1, 9);
		extra_next += 2;
		extra_runs++;
		extra_pages++;
	}
	{
		size_t runs = m.nr_runs, nr_free = m.nr_free;
		uint64_t set = m.nr_set;

		gmem_test_fail_alloc(1);
		CHECK_EQ(gmem_ranges_reserve(&m), -ENOMEM);
		gmem_test_fail_alloc(0);
		CHECK_EQ(m.nr_runs, runs);
		CHECK_EQ(m.nr_set, set);
		CHECK_EQ(m.nr_free, nr_free);
		CHECK(compare(&m));
		CHECK_EQ(gmem_ranges_reserve(&m), 0);
		CHECK(m.nr_free >= GMEM_RANGES_RESERVE(m.height));
	}
	tap_result("reserve fails with -ENOMEM when the allocation fails, "
		   "and changes nothing");
	gmem_ranges_destroy(&m);

	/*
	 * A workload in which every reserve that allocates is first made to
	 * fail at each of its allocations in turn: the map is as before each
	 * time, and the retry goes on as if nothing happened.
	 */
	gmem_ranges_init(&m);
	memset(model, 0, sizeof(model));
	extra_runs = extra_pages = 0;
	ok = 1;
	for (int i = 0; i < 3000 && ok; i++) {
		uint64_t s = rnd() % BIG, e = s + 1 + rnd() % 8;
		uint64_t v = 1 + rnd() % 3;
		size_t runs = m.nr_runs, nr_free = m.nr_free;
		uint64_t set = m.nr_set;
		int r;

		if (e > BIG)
			e = BIG;
		for (long n = 1;; n++) {
			gmem_test_fail_alloc(n);
			r = gmem_ranges_reserve(&m);
			gmem_test_fail_alloc(0);
			if (!r)
				break;
			if (r != -ENOMEM || m.nr_runs != runs ||
			    m.nr_set != set || m.nr_free != nr_free)
				ok = 0;
		}
		store(&m, s, e, i % 5 ? v : 0);
		if (i % 100 == 0 && !compare_n(&m, BIG))
			ok = 0;
	}
	CHECK(ok && compare_n(&m, BIG));
	tap_result("reserve failing at every allocation changes nothing");
	gmem_ranges_destroy(&m);
	return tap_done();
}
