/* SPDX-License-Identifier: MIT */
/*
 * The treap that held memory attributes before the B+tree of src/attr.c,
 * with the same interface under treap_ranges_* names: the comparison row
 * of the attribute benchmarks (bench_mem.c), built only into the bench.
 */
#ifndef GMEM_TREAP_REF_H
#define GMEM_TREAP_REF_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct treap_ranges_node;
struct treap_ranges_chunk;

/* A store splits at most two runs and adds one. */
#define TREAP_RANGES_RESERVE 3

struct treap_ranges {
	struct treap_ranges_node *root;
	struct treap_ranges_node
		*free; /* free nodes, linked through child[0] */
	size_t nr_free;
	struct treap_ranges_chunk *chunks; /* the slab, freed by destroy */
	uint32_t seed;			   /* treap priorities */
	size_t nr_runs;			   /* distinct runs stored */
	uint64_t nr_set;		   /* pages with a non-zero value */
};

void treap_ranges_init(struct treap_ranges *m);
void treap_ranges_destroy(struct treap_ranges *m);

/* Make the next treap_ranges_store() infallible.  -ENOMEM changes nothing. */
int treap_ranges_reserve(struct treap_ranges *m);

/*
 * Set [start, end) to @val (0 clears); @val must fit in 32 bits.  Needs a
 * prior reserve.
 */
void treap_ranges_store(struct treap_ranges *m, uint64_t start, uint64_t end,
			uint64_t val);

/*
 * Value at @pfn, and the maximal run [*rstart, *rend) around it that has
 * the same value (a gap between runs, for 0).  Either pointer may be NULL.
 */
uint64_t treap_ranges_lookup(const struct treap_ranges *m, uint64_t pfn,
			     uint64_t *rstart, uint64_t *rend);

/* True if every page of [start, end) holds @val. */
bool treap_ranges_is_uniform(const struct treap_ranges *m, uint64_t start,
			     uint64_t end, uint64_t val);

/*
 * Call @fn for each non-zero run overlapping [start, end), clipped to it, in
 * order.  Returns the number of runs.
 */
size_t treap_ranges_for_each(const struct treap_ranges *m, uint64_t start,
			     uint64_t end,
			     void (*fn)(void *arg, uint64_t start, uint64_t end,
					uint64_t val),
			     void *arg);

#endif /* GMEM_TREAP_REF_H */
