// SPDX-License-Identifier: MIT
/*
 * The range store behind memory attributes: a B+tree of run boundaries.
 *
 * The map is a step function.  A boundary (key k, value v) says "from page
 * k on, the value is v", up to the next boundary; before the first one the
 * value is 0.  Invariants, after every store:
 *  - keys are distinct, sorted, and below UINT64_MAX (the empty-slot mark);
 *  - two consecutive boundaries never hold the same value, and the first
 *    never holds 0 (so runs are maximal, as the huge-mapping test and the
 *    snapshot query need);
 *  - every separator in an inner node is exactly the smallest key of the
 *    subtree on its right, so the descent that finds a page also learns
 *    where the next leaf starts, which ends a segment at a leaf's end;
 *  - no node is empty; the root's leaves all sit at depth m->height.
 * A non-zero boundary is a run (nr_runs counts them); a run that reaches
 * UINT64_MAX has no closing boundary.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include <gmem/uapi.h>

#include "attr.h"
#include "util.h"

/* An empty key slot; no page number is this large in a boundary. */
#define NONE UINT64_MAX

/*
 * One node size for leaves and inner nodes, two cache lines, so that one
 * free list serves both.  A leaf holds LEAF_N boundaries: keys, then the
 * values (the key array has one more slot, always NONE, so that "the next
 * key" needs no bounds check).  An inner node holds INNER_N children and
 * INNER_N - 1 separators, key[i] being the smallest key under child[i + 1];
 * key[INNER_N - 1] is always NONE for the same reason.  Unused keys are
 * NONE, so a search counts keys <= the page without reading a count.
 */
#define NODE_SIZE 128
#define LEAF_N 10
#define INNER_N 8
#define LEAF_MIN (LEAF_N / 2)
#define INNER_MIN (INNER_N / 2)

/* No tree gets deeper: each level multiplies the leaves at least by 2. */
#define MAX_HEIGHT 64

struct gmem_ranges_node {
	union {
		struct {
			uint64_t key[LEAF_N + 1];
			uint32_t val[LEAF_N];
		} leaf;
		struct {
			uint64_t key[INNER_N];
			struct gmem_ranges_node *child[INNER_N];
		} inner;
		struct gmem_ranges_node *next_free;
	};
} __attribute__((aligned(NODE_SIZE)));

_Static_assert(sizeof(struct gmem_ranges_node) == NODE_SIZE,
	       "range map node layout");

/*
 * The slab: 4 KiB chunks of 31 nodes behind a one-node header, so that a
 * map costs about NODE_SIZE * 32 / 31 bytes per node with malloc's
 * overhead spread over a chunk.
 */
#define CHUNK_SIZE 4096
#define CHUNK_NODES (CHUNK_SIZE / NODE_SIZE - 1)

struct gmem_ranges_chunk {
	struct gmem_ranges_chunk *next;
	struct gmem_ranges_node nodes[CHUNK_NODES];
};

_Static_assert(sizeof(struct gmem_ranges_chunk) == CHUNK_SIZE,
	       "range map chunk");

/* The route to one leaf, kept by updates that walk back up. */
struct path {
	/* node[0] is the leaf, node[m->height] the root. */
	struct gmem_ranges_node *node[MAX_HEIGHT + 1];
	/* slot[l]: the index of node[l] among node[l + 1]'s children. */
	unsigned slot[MAX_HEIGHT];
	/* The first key of the next leaf (NONE after the last leaf). */
	uint64_t hi;
};

/* Branch-free counts: the CPU can run the next lookup's search alongside. */
static inline unsigned leaf_rank(const struct gmem_ranges_node *n, uint64_t k)
{
	unsigned i = 0;

#pragma GCC unroll 32
	for (unsigned j = 0; j < LEAF_N; j++)
		i += n->leaf.key[j] <= k;
	return i;
}

static inline unsigned inner_rank(const struct gmem_ranges_node *n, uint64_t k)
{
	unsigned i = 0;

#pragma GCC unroll 32
	for (unsigned j = 0; j < INNER_N - 1; j++)
		i += n->inner.key[j] <= k;
	return i;
}

static unsigned leaf_count(const struct gmem_ranges_node *n)
{
	return leaf_rank(n, NONE - 1);
}

static unsigned inner_count(const struct gmem_ranges_node *n)
{
	return inner_rank(n, NONE - 1) + 1;
}

static unsigned node_count(const struct gmem_ranges_node *n, unsigned level)
{
	return level ? inner_count(n) : leaf_count(n);
}

static void leaf_clear(struct gmem_ranges_node *n)
{
	memset(n->leaf.key, 0xff, sizeof(n->leaf.key));
	memset(n->leaf.val, 0, sizeof(n->leaf.val));
}

static void inner_clear(struct gmem_ranges_node *n)
{
	memset(n->inner.key, 0xff, sizeof(n->inner.key));
	memset(n->inner.child, 0, sizeof(n->inner.child));
}

void gmem_ranges_init(struct gmem_ranges *m)
{
	*m = (struct gmem_ranges){0};
}

void gmem_ranges_destroy(struct gmem_ranges *m)
{
	/* Every node lives in a chunk: freeing those frees the tree. */
	while (m->chunks) {
		struct gmem_ranges_chunk *c = m->chunks;

		m->chunks = c->next;
		gmem_free(c);
	}
	gmem_ranges_init(m);
}

int gmem_ranges_reserve(struct gmem_ranges *m)
{
	size_t need = GMEM_RANGES_RESERVE(m->height), have = m->nr_free;
	struct gmem_ranges_chunk *list = NULL, *c;

	/* All chunks first, so that a failure leaves the map as it was. */
	while (have < need) {
		/* gmem_zalloc() cannot align; take its failure hook by hand. */
		c = gmem_alloc_should_fail()
			    ? NULL
			    : aligned_alloc(NODE_SIZE, sizeof(*c));
		if (!c) {
			while (list) {
				c = list;
				list = c->next;
				gmem_free(c);
			}
			return -ENOMEM;
		}
		c->next = list;
		list = c;
		have += CHUNK_NODES;
	}
	while (list) {
		c = list;
		list = c->next;
		c->next = m->chunks;
		m->chunks = c;
		/* Last first, so that nodes are handed out in address order. */
		for (size_t i = CHUNK_NODES; i-- > 0;) {
			c->nodes[i].next_free = m->free;
			m->free = &c->nodes[i];
		}
		m->nr_free += CHUNK_NODES;
	}
	return 0;
}

static struct gmem_ranges_node *take_node(struct gmem_ranges *m)
{
	struct gmem_ranges_node *n = m->free;

	/* A store without a reserve is a caller's bug, not an -ENOMEM. */
	if (!n)
		abort();
	m->free = n->next_free;
	m->nr_free--;
	return n;
}

static void free_node(struct gmem_ranges *m, struct gmem_ranges_node *n)
{
	n->next_free = m->free;
	m->free = n;
	m->nr_free++;
}

static void descend(const struct gmem_ranges *m, uint64_t k, struct path *p)
{
	struct gmem_ranges_node *n = m->root;
	uint64_t hi = NONE;

	for (unsigned l = m->height; l > 0; l--) {
		unsigned i = inner_rank(n, k);

		/* A valid key[i] is below hi: it lies inside this subtree. */
		hi = MIN(hi, n->inner.key[i]);
		p->node[l] = n;
		p->slot[l - 1] = i;
		n = n->inner.child[i];
	}
	p->node[0] = n;
	p->hi = hi;
}

uint64_t gmem_ranges_lookup(const struct gmem_ranges *m, uint64_t pfn,
			    uint64_t *rstart, uint64_t *rend)
{
	const struct gmem_ranges_node *n = m->root;
	uint64_t hi = NONE, lo = 0, v = 0;
	unsigned i;

	if (unlikely(!n || pfn == NONE)) {
		/* UINT64_MAX is past every run: a run ends there at most. */
		if (n) {
			uint64_t s, e;

			v = gmem_ranges_lookup(m, pfn - 1, &s, &e);
			lo = v ? e : s;
			v = 0;
		}
		goto out;
	}
	/*
	 * The fault path's hot loop: a fixed number of levels, each a count
	 * without branches, so nothing mispredicts and independent lookups
	 * overlap in the CPU.
	 */
	for (unsigned l = m->height; l > 0; l--) {
		__builtin_prefetch(&n->inner.child[0]);
		i = inner_rank(n, pfn);
		hi = MIN(hi, n->inner.key[i]);
		n = n->inner.child[i];
	}
	__builtin_prefetch(&n->leaf.val[0]);
	i = leaf_rank(n, pfn);
	if (unlikely(i == 0)) {
		/* Before the first boundary, which only the first leaf has. */
		hi = n->leaf.key[0];
		goto out;
	}
	v = n->leaf.val[i - 1];
	lo = n->leaf.key[i - 1];
	hi = MIN(hi, n->leaf.key[i]);
out:
	if (rstart)
		*rstart = lo;
	if (rend)
		*rend = hi;
	return v;
}

bool gmem_ranges_is_uniform(const struct gmem_ranges *m, uint64_t start,
			    uint64_t end, uint64_t val)
{
	uint64_t rend;

	return gmem_ranges_lookup(m, start, NULL, &rend) == val && rend >= end;
}

/*
 * Visit the non-zero segments overlapping [start, end), clipped; add
 * their pages to *@pages where given.  One descent per leaf.
 */
static size_t walk(const struct gmem_ranges *m, uint64_t start, uint64_t end,
		   void (*fn)(void *, uint64_t, uint64_t, uint64_t), void *arg,
		   uint64_t *pages)
{
	size_t count = 0;
	uint64_t k = start;
	struct path p;

	if (!m->root || start >= end)
		return 0;
	for (;;) {
		const struct gmem_ranges_node *n;
		unsigned i, cnt;

		descend(m, k, &p);
		n = p.node[0];
		i = leaf_rank(n, k);
		/* The segment holding k, or the first one after it. */
		if (i)
			i--;
		cnt = leaf_count(n);
		for (; i < cnt; i++) {
			uint64_t s = n->leaf.key[i];
			uint64_t e = MIN(n->leaf.key[i + 1], p.hi);

			if (s >= end)
				return count;
			if (!n->leaf.val[i])
				continue;
			s = MAX(s, start);
			e = MIN(e, end);
			if (fn)
				fn(arg, s, e, n->leaf.val[i]);
			if (pages)
				*pages += e - s;
			count++;
		}
		if (p.hi >= end)
			return count;
		k = p.hi;
	}
}

size_t gmem_ranges_for_each(const struct gmem_ranges *m, uint64_t start,
			    uint64_t end,
			    void (*fn)(void *arg, uint64_t start, uint64_t end,
				       uint64_t val),
			    void *arg)
{
	return walk(m, start, end, fn, arg, NULL);
}

/*
 * A node's smallest key became @min (by an insert or removal at its front,
 * or a merge into it): fix the one separator that names it, in the lowest
 * ancestor where the path does not come down the first child.
 */
static void fix_min(const struct gmem_ranges *m, struct path *p, unsigned l,
		    uint64_t min)
{
	for (; l < m->height; l++) {
		unsigned s = p->slot[l];

		if (s) {
			p->node[l + 1]->inner.key[s - 1] = min;
			return;
		}
	}
}

/*
 * Two adjacent nodes of one level, and the separator between them, as one
 * sequence (key[i], ent[i]); splits, merges and rebalancing all gather, then
 * scatter.  For a leaf ent is the value; for an inner node it is the child
 * and key[i] the smallest key under it (key[0] is not known, and unused).
 */
#define SEQ_MAX (2 * MAX(LEAF_N, INNER_N) + 1)

struct seq {
	uint64_t key[SEQ_MAX];
	uintptr_t ent[SEQ_MAX];
	unsigned n;
};

static void gather(struct seq *q, const struct gmem_ranges_node *a,
		   unsigned level, uint64_t sep)
{
	unsigned cnt = node_count(a, level);

	for (unsigned i = 0; i < cnt; i++, q->n++) {
		if (level) {
			q->key[q->n] = i ? a->inner.key[i - 1] : sep;
			q->ent[q->n] = (uintptr_t)a->inner.child[i];
		} else {
			q->key[q->n] = a->leaf.key[i];
			q->ent[q->n] = a->leaf.val[i];
		}
	}
}

static void scatter(struct gmem_ranges_node *a, unsigned level,
		    const struct seq *q, unsigned from, unsigned to)
{
	if (level) {
		inner_clear(a);
		for (unsigned i = from; i < to; i++) {
			a->inner.child[i - from] =
				(struct gmem_ranges_node *)q->ent[i];
			if (i > from)
				a->inner.key[i - from - 1] = q->key[i];
		}
	} else {
		leaf_clear(a);
		for (unsigned i = from; i < to; i++) {
			a->leaf.key[i - from] = q->key[i];
			a->leaf.val[i - from] = (uint32_t)q->ent[i];
		}
	}
}

static void seq_insert(struct seq *q, unsigned pos, uint64_t key, uintptr_t ent)
{
	memmove(&q->key[pos + 1], &q->key[pos],
		(q->n - pos) * sizeof(q->key[0]));
	memmove(&q->ent[pos + 1], &q->ent[pos],
		(q->n - pos) * sizeof(q->ent[0]));
	q->key[pos] = key;
	q->ent[pos] = ent;
	q->n++;
}

/*
 * Add (@key, @ent) at position @pos of p->node[l], splitting full nodes up
 * to the root.  A split usually halves the entries; at the right edge of
 * the tree, where ascending stores append, it leaves the left node full
 * so that such maps stay dense.  Takes at most one node per level, plus a
 * new root: m->height + 2 in all.
 */
static void insert_at(struct gmem_ranges *m, struct path *p, unsigned l,
		      unsigned pos, uint64_t key, uintptr_t ent)
{
	for (;;) {
		struct gmem_ranges_node *n = p->node[l], *r;
		unsigned max = l ? INNER_N : LEAF_N, cnt = node_count(n, l);
		unsigned left;
		struct seq q;

		q.n = 0;
		if (cnt < max) {
			gather(&q, n, l, 0);
			seq_insert(&q, pos, key, ent);
			scatter(n, l, &q, 0, q.n);
			/* Only the first leaf sees a new smallest key. */
			if (!pos && !l)
				fix_min(m, p, 0, key);
			return;
		}
		gather(&q, n, l, 0);
		seq_insert(&q, pos, key, ent);
		/* An inner node keeps two children: rebalancing needs a
		 * sibling. */
		if (p->hi == NONE && pos == max)
			left = l ? max - 1 : max;
		else
			left = (max + 1) / 2;
		r = take_node(m);
		scatter(n, l, &q, 0, left);
		scatter(r, l, &q, left, q.n);
		if (!pos && !l)
			fix_min(m, p, 0, key);
		if (l == m->height) {
			struct gmem_ranges_node *root = take_node(m);

			if (m->height + 1 > MAX_HEIGHT)
				abort();
			inner_clear(root);
			root->inner.child[0] = n;
			root->inner.child[1] = r;
			root->inner.key[0] = q.key[left];
			m->root = root;
			m->height++;
			return;
		}
		/* The new node goes right after n in the parent. */
		pos = p->slot[l] + 1;
		key = q.key[left];
		ent = (uintptr_t)r;
		l++;
	}
}

static void insert(struct gmem_ranges *m, uint64_t key, uint32_t val)
{
	struct path p;

	if (val)
		m->nr_runs++;
	if (!m->root) {
		struct gmem_ranges_node *n = take_node(m);

		leaf_clear(n);
		n->leaf.key[0] = key;
		n->leaf.val[0] = val;
		m->root = n;
		m->height = 0;
		return;
	}
	descend(m, key, &p);
	insert_at(m, &p, 0, leaf_rank(p.node[0], key), key, val);
}

/*
 * p->node[l] has fewer entries than a node should: merge it with a
 * sibling, or even the two out if they do not fit in one, and carry an
 * underflow of the parent up.  Frees nodes, never takes one.
 */
static void rebalance(struct gmem_ranges *m, struct path *p, unsigned l)
{
	while (l < m->height) {
		struct gmem_ranges_node *parent = p->node[l + 1];
		unsigned t = p->slot[l] ? p->slot[l] - 1 : 0;
		struct gmem_ranges_node *a = parent->inner.child[t];
		struct gmem_ranges_node *b = parent->inner.child[t + 1];
		unsigned max = l ? INNER_N : LEAF_N;
		uint64_t sep = parent->inner.key[t];
		bool a_empty = node_count(a, l) == 0;
		struct seq q;
		unsigned pc;

		q.n = 0;
		gather(&q, a, l, 0);
		gather(&q, b, l, sep);
		if (q.n > max) {
			/* Both keep at least half; b's first key moves. */
			scatter(a, l, &q, 0, q.n / 2);
			scatter(b, l, &q, q.n / 2, q.n);
			parent->inner.key[t] = q.key[q.n / 2];
			return;
		}
		scatter(a, l, &q, 0, q.n);
		free_node(m, b);
		/* An emptied first leaf now starts where b did. */
		if (a_empty)
			fix_min(m, p, l, sep);
		pc = inner_count(parent);
		memmove(&parent->inner.key[t], &parent->inner.key[t + 1],
			(INNER_N - 2 - t) * sizeof(parent->inner.key[0]));
		parent->inner.key[INNER_N - 2] = NONE;
		memmove(&parent->inner.child[t + 1],
			&parent->inner.child[t + 2],
			(INNER_N - 2 - t) * sizeof(parent->inner.child[0]));
		parent->inner.child[INNER_N - 1] = NULL;
		pc--;
		if (l + 1 == m->height) {
			/* A root with one child gives the tree up to it. */
			if (pc == 1) {
				m->root = a;
				m->height--;
				free_node(m, parent);
			}
			return;
		}
		if (pc >= INNER_MIN)
			return;
		l++;
	}
}

/* Remove every boundary with a key in [lo, last]. */
static void delete_range(struct gmem_ranges *m, uint64_t lo, uint64_t last)
{
	struct path p;

	while (m->root) {
		struct gmem_ranges_node *n;
		unsigned a, b, cnt;

		descend(m, lo, &p);
		n = p.node[0];
		a = lo ? leaf_rank(n, lo - 1) : 0;
		cnt = leaf_count(n);
		if (a == cnt) {
			/* Nothing here at or after lo: the next leaf, then. */
			if (p.hi > last)
				return;
			descend(m, p.hi, &p);
			n = p.node[0];
			a = 0;
			cnt = leaf_count(n);
		}
		b = leaf_rank(n, last);
		if (a == b)
			return;
		for (unsigned j = a; j < b; j++)
			m->nr_runs -= n->leaf.val[j] != 0;
		memmove(&n->leaf.key[a], &n->leaf.key[b],
			(LEAF_N - b) * sizeof(n->leaf.key[0]));
		memmove(&n->leaf.val[a], &n->leaf.val[b],
			(LEAF_N - b) * sizeof(n->leaf.val[0]));
		cnt -= b - a;
		for (unsigned j = cnt; j < LEAF_N; j++) {
			n->leaf.key[j] = NONE;
			n->leaf.val[j] = 0;
		}
		if (!m->height) {
			if (!cnt) {
				free_node(m, n);
				m->root = NULL;
			}
			continue;
		}
		if (!a && cnt)
			fix_min(m, &p, 0, n->leaf.key[0]);
		if (cnt < LEAF_MIN)
			rebalance(m, &p, 0);
	}
}

/*
 * The common store, inside one leaf that keeps its first key and neither
 * overflows nor underflows: one descent and an edit in place, where the
 * general path below looks the range up several times.  False if the
 * store is not of that kind; then nothing changed.
 */
static bool store_in_leaf(struct gmem_ranges *m, uint64_t start, uint64_t end,
			  uint32_t val)
{
	struct gmem_ranges_node *n;
	unsigned a, b, cnt, add, nr;
	uint32_t before, after;
	uint64_t old = 0;
	struct path p;

	if (!m->root || end == NONE)
		return false;
	descend(m, start, &p);
	n = p.node[0];
	/* start - 1 and end both fall in this leaf's segments. */
	if (start <= n->leaf.key[0] || end >= p.hi)
		return false;
	a = leaf_rank(n, start - 1); /* the first key >= start, >= 1 */
	b = leaf_rank(n, end);	     /* the first key > end */
	before = n->leaf.val[a - 1];
	after = n->leaf.val[b - 1];
	cnt = leaf_count(n);
	add = (val != before) + (after != val);
	nr = cnt - (b - a) + add;
	if (nr > LEAF_N || (nr < LEAF_MIN && m->height))
		return false;

	for (unsigned i = a - 1; i < b; i++) {
		uint64_t s = MAX(n->leaf.key[i], start);
		uint64_t e = MIN(n->leaf.key[i + 1], end);

		if (n->leaf.val[i])
			old += e - s;
		if (i >= a)
			m->nr_runs -= n->leaf.val[i] != 0;
	}
	memmove(&n->leaf.key[a + add], &n->leaf.key[b],
		(cnt - b) * sizeof(n->leaf.key[0]));
	memmove(&n->leaf.val[a + add], &n->leaf.val[b],
		(cnt - b) * sizeof(n->leaf.val[0]));
	for (unsigned j = nr; j < cnt; j++) {
		n->leaf.key[j] = NONE;
		n->leaf.val[j] = 0;
	}
	if (val != before) {
		n->leaf.key[a] = start;
		n->leaf.val[a++] = val;
		m->nr_runs += val != 0;
	}
	if (after != val) {
		n->leaf.key[a] = end;
		n->leaf.val[a] = after;
		m->nr_runs += after != 0;
	}
	m->nr_set = m->nr_set - old + (val ? end - start : 0);
	return true;
}

/*
 * Deletes come first and only free nodes; then at most two boundaries go
 * in, at start and at end, which is what GMEM_RANGES_RESERVE() counts.
 */
void gmem_ranges_store(struct gmem_ranges *m, uint64_t start, uint64_t end,
		       uint64_t val)
{
	uint64_t before = 0, after = 0, old = 0;

	if (start >= end)
		return;
	val = (uint32_t)val;
	if (store_in_leaf(m, start, end, (uint32_t)val))
		return;
	if (start)
		before = gmem_ranges_lookup(m, start - 1, NULL, NULL);
	if (end != NONE)
		after = gmem_ranges_lookup(m, end, NULL, NULL);
	walk(m, start, end, NULL, NULL, &old);
	/* A run that reaches UINT64_MAX needs no boundary to close it. */
	delete_range(m, start, end == NONE ? NONE - 1 : end);
	if (val != before)
		insert(m, start, (uint32_t)val);
	if (end != NONE && after != val)
		insert(m, end, (uint32_t)after);
	m->nr_set = m->nr_set - old + (val ? end - start : 0);
}

bool gmem_attr_valid(uint64_t attrs, uint64_t supported, bool exec_only)
{
	const uint64_t nr = KVM_MEMORY_ATTRIBUTE_NR;
	const uint64_t nw = KVM_MEMORY_ATTRIBUTE_NW;
	const uint64_t nx = KVM_MEMORY_ATTRIBUTE_NX;

	if (attrs & ~supported)
		return false;
	/* Private memory's protections belong to the guest, not to us. */
	if (attrs & KVM_MEMORY_ATTRIBUTE_PRIVATE)
		return attrs == KVM_MEMORY_ATTRIBUTE_PRIVATE;
	/* Without read, nothing else may be allowed, bar exec-only. */
	if (attrs & nr) {
		if (attrs == (nr | nw | nx))
			return true;
		return exec_only && attrs == (nr | nw);
	}
	return true;
}
