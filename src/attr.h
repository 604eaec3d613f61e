/* SPDX-License-Identifier: MIT */
/*
 * The range map (struct gmem_ranges): the attribute store.
 *
 * A map from page frame numbers to 32-bit values (attributes and poison
 * flags fit), kept as maximal runs of equal non-zero values [start, end) in
 * a treap ordered by start.  Pages not covered read as 0.  Every update
 * costs O(log n) in the number of runs, whatever the size of the range,
 * where Linux's xarray stores one entry per 4 KiB page.
 *
 * Updates follow KVM's "reserve, then commit": gmem_ranges_reserve() sets
 * aside every node a store can need, so gmem_ranges_store() cannot fail and
 * can run inside an invalidate-begin/end section.  The map does no locking;
 * its owner serialises writers against readers.
 *
 * Nodes (32 bytes, with value and priority beside them) come from a
 * per-map slab of 4 KiB chunks, so a run costs about 41 bytes (DESIGN §6:
 * <= 64) and a lookup walks nodes packed two to a cache line.  Dropped
 * nodes go back to the map's free list; chunks are freed with the map.
 *
 * The same structure records guest_memfd allocation and poison state.
 */
#ifndef GMEM_ATTR_H
#define GMEM_ATTR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gmem_ranges_node;
struct gmem_ranges_chunk;

/* A store splits at most two runs and adds one. */
#define GMEM_RANGES_RESERVE 3

struct gmem_ranges {
	struct gmem_ranges_node *root;
	struct gmem_ranges_node *free; /* free nodes, linked through child[0] */
	size_t nr_free;
	struct gmem_ranges_chunk *chunks; /* the slab, freed by destroy */
	uint32_t seed;			  /* treap priorities */
	size_t nr_runs;			  /* distinct runs stored */
	uint64_t nr_set;		  /* pages with a non-zero value */
};

void gmem_ranges_init(struct gmem_ranges *m);
void gmem_ranges_destroy(struct gmem_ranges *m);

/* Make the next gmem_ranges_store() infallible.  -ENOMEM changes nothing. */
int gmem_ranges_reserve(struct gmem_ranges *m);

/*
 * Set [start, end) to @val (0 clears); @val must fit in 32 bits.  Needs a
 * prior reserve.
 */
void gmem_ranges_store(struct gmem_ranges *m, uint64_t start, uint64_t end,
		       uint64_t val);

/*
 * Value at @pfn, and the maximal run [*rstart, *rend) around it that has
 * the same value (a gap between runs, for 0).  Either pointer may be NULL.
 */
uint64_t gmem_ranges_lookup(const struct gmem_ranges *m, uint64_t pfn,
			    uint64_t *rstart, uint64_t *rend);

/* True if every page of [start, end) holds @val. */
bool gmem_ranges_is_uniform(const struct gmem_ranges *m, uint64_t start,
			    uint64_t end, uint64_t val);

/*
 * Call @fn for each non-zero run overlapping [start, end), clipped to it, in
 * order.  Returns the number of runs.
 */
size_t gmem_ranges_for_each(const struct gmem_ranges *m, uint64_t start,
			    uint64_t end,
			    void (*fn)(void *arg, uint64_t start, uint64_t end,
				       uint64_t val),
			    void *arg);

/*
 * Memory-attribute rules (DESIGN §3.1): is @attrs a valid value given the
 * @supported mask, with exec-only allowed or not?
 */
bool gmem_attr_valid(uint64_t attrs, uint64_t supported, bool exec_only);

#endif /* GMEM_ATTR_H */
