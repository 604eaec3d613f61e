// SPDX-License-Identifier: MIT
/*
 * The attribute map as it was before the B+tree (src/attr.c): a treap of
 * maximal runs, kept only so that `make bench` can measure the two side by
 * side.  The code is the library's treap, names aside.
 *
 * Invariants, after every store:
 *  - runs are disjoint, sorted by start, and each has start < end;
 *  - no run holds 0;
 *  - two adjacent runs (a.end == b.start) never hold the same value.
 * The last one makes lookups return maximal runs, which is what the
 * huge-mapping test and the snapshot query need.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "treap_ref.h"
#include "util.h"

/*
 * A node is 32 bytes, two to a cache line and never straddling one: a
 * lookup touches start and the children at every level and end once, so
 * those are all a node holds.  child[0] is the left subtree (runs before),
 * child[1] the right one, so a descent indexes instead of branching.  The
 * value and the treap priority, needed once per lookup and by updates,
 * live in arrays beside the nodes in the node's chunk.
 */
struct treap_ranges_node {
	uint64_t start, end;
	struct treap_ranges_node *child[2];
};

/*
 * The slab: 4 KiB chunks aligned to their size, so a node finds its chunk
 * by masking its address.  101 runs per chunk: 40.6 bytes per run.
 */
#define CHUNK_SIZE 4096
#define CHUNK_NODES 101

struct treap_ranges_chunk {
	struct treap_ranges_chunk *next;
	uint32_t val[CHUNK_NODES];
	uint32_t prio[CHUNK_NODES];
	struct treap_ranges_node nodes[CHUNK_NODES]
		__attribute__((aligned(32)));
};

_Static_assert(sizeof(struct treap_ranges_node) == 32, "range map node layout");
_Static_assert(sizeof(struct treap_ranges_chunk) <= CHUNK_SIZE,
	       "range map chunk");

static inline struct treap_ranges_chunk *
chunk_of(const struct treap_ranges_node *n)
{
	uintptr_t base = (uintptr_t)n & ~(uintptr_t)(CHUNK_SIZE - 1);

	return (struct treap_ranges_chunk *)base;
}

static inline uint32_t *val_of(const struct treap_ranges_node *n)
{
	struct treap_ranges_chunk *c = chunk_of(n);

	return &c->val[n - c->nodes];
}

static inline uint32_t prio_of(const struct treap_ranges_node *n)
{
	struct treap_ranges_chunk *c = chunk_of(n);

	return c->prio[n - c->nodes];
}

void treap_ranges_init(struct treap_ranges *m)
{
	*m = (struct treap_ranges){.seed = 0x9e3779b9u};
}

void treap_ranges_destroy(struct treap_ranges *m)
{
	/* Every node lives in a chunk: freeing those frees the tree. */
	while (m->chunks) {
		struct treap_ranges_chunk *c = m->chunks;

		m->chunks = c->next;
		gmem_free(c);
	}
	m->root = m->free = NULL;
	m->nr_free = 0;
}

static void push_free(struct treap_ranges *m, struct treap_ranges_node *n)
{
	n->child[0] = m->free;
	m->free = n;
	m->nr_free++;
}

int treap_ranges_reserve(struct treap_ranges *m)
{
	struct treap_ranges_chunk *c;

	if (m->nr_free >= TREAP_RANGES_RESERVE)
		return 0;
	/* gmem_zalloc() cannot align; take its failure hook by hand. */
	c = gmem_alloc_should_fail() ? NULL
				     : aligned_alloc(CHUNK_SIZE, CHUNK_SIZE);
	if (!c)
		return -ENOMEM;
	memset(c, 0, sizeof(*c));
	c->next = m->chunks;
	m->chunks = c;
	/* Last first, so that nodes are handed out in address order. */
	for (size_t i = CHUNK_NODES; i-- > 0;)
		push_free(m, &c->nodes[i]);
	return 0;
}

static struct treap_ranges_node *
take_node(struct treap_ranges *m, uint64_t start, uint64_t end, uint64_t val)
{
	struct treap_ranges_node *n = m->free;
	struct treap_ranges_chunk *c = chunk_of(n);

	m->free = n->child[0];
	m->nr_free--;
	/* xorshift32: priorities only need to look random. */
	m->seed ^= m->seed << 13;
	m->seed ^= m->seed >> 17;
	m->seed ^= m->seed << 5;
	*n = (struct treap_ranges_node){.start = start, .end = end};
	c->val[n - c->nodes] = (uint32_t)val;
	c->prio[n - c->nodes] = m->seed;
	m->nr_runs++;
	m->nr_set += end - start;
	return n;
}

static void drop_node(struct treap_ranges *m, struct treap_ranges_node *n)
{
	m->nr_runs--;
	m->nr_set -= n->end - n->start;
	push_free(m, n);
}

static void drop_tree(struct treap_ranges *m, struct treap_ranges_node *n)
{
	while (n) {
		struct treap_ranges_node *r = n->child[1];

		drop_tree(m, n->child[0]);
		drop_node(m, n);
		n = r;
	}
}

/* Split @t into runs starting before @key and runs starting at/after it. */
static void split(struct treap_ranges_node *t, uint64_t key,
		  struct treap_ranges_node **l, struct treap_ranges_node **r)
{
	if (!t) {
		*l = *r = NULL;
	} else if (t->start < key) {
		split(t->child[1], key, &t->child[1], r);
		*l = t;
	} else {
		split(t->child[0], key, l, &t->child[0]);
		*r = t;
	}
}

/* Join two treaps where every run of @a lies before every run of @b. */
static struct treap_ranges_node *merge(struct treap_ranges_node *a,
				       struct treap_ranges_node *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (prio_of(a) > prio_of(b)) {
		a->child[1] = merge(a->child[1], b);
		return a;
	}
	b->child[0] = merge(a, b->child[0]);
	return b;
}

static struct treap_ranges_node *last(struct treap_ranges_node *t)
{
	while (t && t->child[1])
		t = t->child[1];
	return t;
}

static struct treap_ranges_node *first(struct treap_ranges_node *t)
{
	while (t && t->child[0])
		t = t->child[0];
	return t;
}

/* Unlink the first run of @t, which must not be empty. */
static struct treap_ranges_node *pop_first(struct treap_ranges_node *t,
					   struct treap_ranges_node **out)
{
	if (!t->child[0]) {
		*out = t;
		return t->child[1];
	}
	t->child[0] = pop_first(t->child[0], out);
	return t;
}

void treap_ranges_store(struct treap_ranges *m, uint64_t start, uint64_t end,
			uint64_t val)
{
	struct treap_ranges_node *l, *mid, *r, *n;

	/* l: runs starting before start; mid+r: the rest. */
	split(m->root, start, &l, &r);
	n = last(l);
	if (n && n->end > start) {
		/* The run straddling start keeps its head in l. */
		struct treap_ranges_node *tail =
			take_node(m, start, n->end, *val_of(n));

		m->nr_set -= n->end - start;
		n->end = start;
		r = merge(tail, r);
	}
	split(r, end, &mid, &r);
	n = last(mid);
	if (n && n->end > end) {
		struct treap_ranges_node *tail =
			take_node(m, end, n->end, *val_of(n));

		m->nr_set -= n->end - end;
		n->end = end;
		r = merge(tail, r);
	}
	drop_tree(m, mid);

	if (val) {
		struct treap_ranges_node *prev = last(l), *next = first(r);

		if (prev && prev->end == start && *val_of(prev) == val) {
			prev->end = end;
			m->nr_set += end - start;
			n = NULL;
		} else {
			n = take_node(m, start, end, val);
			prev = n;
		}
		if (next && next->start == end && *val_of(next) == val) {
			r = pop_first(r, &next);
			prev->end = next->end;
			/* Its pages stay set; drop_node() takes them off. */
			m->nr_set += next->end - next->start;
			drop_node(m, next);
		}
		if (n)
			l = merge(l, n);
	}
	m->root = merge(l, r);
}

uint64_t treap_ranges_lookup(const struct treap_ranges *m, uint64_t pfn,
			     uint64_t *rstart, uint64_t *rend)
{
	const struct treap_ranges_node *n = m->root, *pred = NULL, *succ = NULL;

	/*
	 * The fault path's hot loop; its cost is one dependent load per level.
	 * (A branch-free descent measured slower: with branches, the CPU
	 * runs ahead down the predicted side.)  pred/succ end as the nearest
	 * runs before and after @pfn, which bound a gap.
	 */
	while (n) {
		if (pfn < n->start) {
			succ = n;
			n = n->child[0];
		} else if (pfn >= n->end) {
			pred = n;
			n = n->child[1];
		} else {
			break;
		}
	}
	if (n) {
		if (rstart)
			*rstart = n->start;
		if (rend)
			*rend = n->end;
		return *val_of(n);
	}
	if (rstart)
		*rstart = pred ? pred->end : 0;
	if (rend)
		*rend = succ ? succ->start : UINT64_MAX;
	return 0;
}

bool treap_ranges_is_uniform(const struct treap_ranges *m, uint64_t start,
			     uint64_t end, uint64_t val)
{
	uint64_t rend;

	return treap_ranges_lookup(m, start, NULL, &rend) == val && rend >= end;
}

static size_t walk(const struct treap_ranges_node *n, uint64_t start,
		   uint64_t end,
		   void (*fn)(void *, uint64_t, uint64_t, uint64_t), void *arg)
{
	size_t count = 0;

	while (n) {
		if (start < n->start)
			count += walk(n->child[0], start, end, fn, arg);
		if (n->start < end && n->end > start) {
			if (fn)
				fn(arg, MAX(n->start, start), MIN(n->end, end),
				   *val_of(n));
			count++;
		}
		if (end <= n->end)
			break;
		n = n->child[1];
	}
	return count;
}

size_t treap_ranges_for_each(const struct treap_ranges *m, uint64_t start,
			     uint64_t end,
			     void (*fn)(void *arg, uint64_t start, uint64_t end,
					uint64_t val),
			     void *arg)
{
	return walk(m->root, start, end, fn, arg);
}
