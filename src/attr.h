/* SPDX-License-Identifier: MIT */
/*
 * The range map (struct gmem_ranges): the attribute store.
 *
 * A map from page frame numbers to 32-bit values (attributes and poison
 * flags fit), kept as maximal runs of equal non-zero values.  Pages not
 * covered read as 0.  Every update costs O(log n) in the number of runs,
 * plus the runs it replaces, whatever the size of the range, where
 * Linux's xarray stores one entry per 4 KiB page.
 *
 * The structure is a B+tree of run boundaries: a boundary (k, v) means
 * "from page k on, the value is v", so a run is one boundary, and one more
 * (to 0) where a gap follows it.  Nodes are 128 bytes (two cache lines):
 * a leaf holds 10 boundaries, an inner node 8 children and the smallest
 * key under each but the first.  A lookup is a fixed number of levels
 * (3 for 2,000 runs, 6 for 200,000), each a branch-free count of the keys
 * <= the page in one node, so consecutive lookups overlap in the CPU
 * instead of waiting on a chain of mispredicted compares; the run's bounds
 * are the boundary found and the next one (in the next leaf, whose first
 * key the separators met on the way down give).  It replaced a treap of
 * runs whose lookups walked 20 to 40 dependent nodes (bench/treap_ref.c
 * keeps it, for comparison).
 *
 * Memory: 12 bytes per boundary in a leaf.  Nodes are at least half full
 * (splits halve, deletions merge or even out siblings); at the right edge,
 * where ascending stores append, a split leaves the left node full.  With
 * the inner nodes and the 4 KiB slab chunks that nodes come from, isolated
 * runs cost about 27 bytes each when stored in ascending order and up to
 * 53 (half-full nodes) otherwise; adjacent runs half that.  Dropped nodes
 * go back to the map's free list; chunks are freed with the map.
 *
 * Updates follow KVM's "reserve, then commit": gmem_ranges_reserve() sets
 * aside every node a store can need, so gmem_ranges_store() cannot fail and
 * can run inside an invalidate-begin/end section.  The map does no locking;
 * its owner serialises writers against readers.
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

/*
 * The nodes a store may take in a tree of @height inner levels: it first
 * deletes the boundaries inside the range (which only frees nodes), then
 * adds at most two; each addition splits at most one node per level, and
 * only the first can add a root.
 */
#define GMEM_RANGES_RESERVE(height) (2 * (size_t)(height) + 3)

struct gmem_ranges {
	struct gmem_ranges_node *root; /* NULL when the map is empty */
	unsigned height;	       /* inner levels above the leaves */
	struct gmem_ranges_node *free; /* free nodes */
	size_t nr_free;
	struct gmem_ranges_chunk *chunks; /* the slab, freed by destroy */
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
