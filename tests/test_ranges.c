// SPDX-License-Identifier: MIT
/*
 * The range store (src/attr.c) against a plain array, op by op: value of
 * every page, maximal-run bounds from lookup, the run count, the number of
 * set pages, and the for_each walk over random windows; and that a store
 * after a reserve allocates nothing, so it cannot fail.
 */
#include <gmem/gmem.h>

#include "tap.h"

#include "attr.h"

#define NPAGES 300

static uint64_t model[NPAGES];
static uint32_t rng = 12345;

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

static int compare(struct gmem_ranges *m)
{
	size_t runs = 0;
	uint64_t set = 0;

	for (uint64_t p = 0; p < NPAGES; p++) {
		uint64_t s, e, v = gmem_ranges_lookup(m, p, &s, &e);
		uint64_t ms = p, me = p + 1;

		while (ms > 0 && model[ms - 1] == model[p])
			ms--;
		while (me < NPAGES && model[me] == model[p])
			me++;
		if (v != model[p] || s != ms || (me < NPAGES && e != me) ||
		    (me == NPAGES && model[p] && e != me))
			return 0;
		if (model[p]) {
			set++;
			if (p == 0 || model[p - 1] != model[p])
				runs++;
		}
	}
	if (runs != m->nr_runs || set != m->nr_set)
		return 0;

	uint64_t a = rnd() % NPAGES, b = a + 1 + rnd() % (NPAGES - a);
	struct walk w = {.expect_start = a};
	size_t n = gmem_ranges_for_each(m, a, b, check_run, &w);
	return !w.bad && n == w.n;
}

int main(void)
{
	struct gmem_ranges m;
	int ok = 1;

	tap_plan(5, 60);

	gmem_ranges_init(&m);
	for (int i = 0; i < 200000 && ok; i++) {
		uint64_t s = rnd() % NPAGES, e = s + 1 + rnd() % 40;
		uint64_t v = rnd() % 4;

		if (e > NPAGES)
			e = NPAGES;
		REQUIRE(gmem_ranges_reserve(&m) == 0);
		gmem_ranges_store(&m, s, e, v);
		for (uint64_t p = s; p < e; p++)
			model[p] = v;
		if (!compare(&m)) {
			tap_diag("mismatch after op %d: [%llu,%llu)=%llu", i,
				 (unsigned long long)s, (unsigned long long)e,
				 (unsigned long long)v);
			ok = 0;
		}
	}
	CHECK(ok);
	tap_result("random stores match a per-page array");

	/* Huge ranges cost one node each, whatever their size. */
	gmem_ranges_destroy(&m);
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

	/*
	 * Use up a reserve's chunk until exactly GMEM_RANGES_RESERVE nodes are
	 * free, make the next allocation fail, then store the worst case:
	 * two runs split and one added.  It must succeed, correctly, without
	 * asking for memory.
	 */
	gmem_ranges_init(&m);
	memset(model, 0, sizeof(model));
	REQUIRE(gmem_ranges_reserve(&m) == 0);
	/* Runs of three pages, each differing from the last: a node each. */
	for (uint64_t k = 0; m.nr_free > GMEM_RANGES_RESERVE; k++) {
		REQUIRE(3 * k + 3 <= NPAGES);
		gmem_ranges_store(&m, 3 * k, 3 * k + 3, 1 + k % 3);
		for (uint64_t p = 3 * k; p < 3 * k + 3; p++)
			model[p] = 1 + k % 3;
	}
	CHECK_EQ(m.nr_free, GMEM_RANGES_RESERVE);
	{
		const struct gmem_ranges_chunk *chunks = m.chunks;
		size_t runs = m.nr_runs;
		long before = gmem_test_fail_alloc(1), after;

		/* [1, 5) cuts into [0, 3) and [3, 6): two tails, one run. */
		gmem_ranges_store(&m, 1, 5, 7);
		for (uint64_t p = 1; p < 5; p++)
			model[p] = 7;
		after = gmem_test_fail_alloc(0);
		CHECK_EQ(after, before);
		CHECK(m.chunks == chunks);
		CHECK_EQ(m.nr_runs, runs + 1);
		CHECK(compare(&m));
	}
	tap_result("a store after a reserve allocates nothing, even with "
		   "an allocation failure pending");

	/* And the reserve is where the failure lands, changing nothing. */
	REQUIRE(m.nr_free < GMEM_RANGES_RESERVE);
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
		CHECK(m.nr_free >= GMEM_RANGES_RESERVE);
	}
	tap_result("reserve fails with -ENOMEM when the allocation fails, "
		   "and changes nothing");
	gmem_ranges_destroy(&m);
	return tap_done();
}
