// SPDX-License-Identifier: MIT
/*
 * The range store behind memory attributes: a treap of maximal runs.
 *
 * Invariants, after every store:
 *  - runs are disjoint, sorted by start, and each has start < end;
 *  - no run holds 0;
 *  - two adjacent runs (a.end == b.start) never hold the same value.
 * The last one makes lookups return maximal runs, which is what the
 * huge-mapping test and the snapshot query need.
 */
#include <errno.h>

#include <gmem/uapi.h>

#include "attr.h"
#include "util.h"

struct gmem_rmap_node {
	uint64_t start, end, val;
	struct gmem_rmap_node *left, *right;
	uint32_t prio;
};

void gmem_rmap_init(struct gmem_rmap *m)
{
	*m = (struct gmem_rmap){ .seed = 0x9e3779b9u };
}

static void free_tree(struct gmem_rmap_node *n)
{
	while (n) {
		struct gmem_rmap_node *r = n->right;

		free_tree(n->left);
		gmem_free(n);
		n = r;
	}
}

void gmem_rmap_destroy(struct gmem_rmap *m)
{
	free_tree(m->root);
	while (m->nr_spare)
		gmem_free(m->spare[--m->nr_spare]);
	m->root = NULL;
}

int gmem_rmap_reserve(struct gmem_rmap *m)
{
	while (m->nr_spare < GMEM_RMAP_RESERVE) {
		struct gmem_rmap_node *n = gmem_zalloc(sizeof(*n));

		if (!n)
			return -ENOMEM;
		m->spare[m->nr_spare++] = n;
	}
	return 0;
}

static struct gmem_rmap_node *take_node(struct gmem_rmap *m, uint64_t start,
					uint64_t end, uint64_t val)
{
	struct gmem_rmap_node *n = m->spare[--m->nr_spare];

	/* xorshift32: priorities only need to look random. */
	m->seed ^= m->seed << 13;
	m->seed ^= m->seed >> 17;
	m->seed ^= m->seed << 5;
	*n = (struct gmem_rmap_node){
		.start = start, .end = end, .val = val, .prio = m->seed
	};
	m->nr_runs++;
	m->nr_set += end - start;
	return n;
}

static void drop_node(struct gmem_rmap *m, struct gmem_rmap_node *n)
{
	m->nr_runs--;
	m->nr_set -= n->end - n->start;
	if (m->nr_spare < GMEM_RMAP_RESERVE)
		m->spare[m->nr_spare++] = n;
	else
		gmem_free(n);
}

static void drop_tree(struct gmem_rmap *m, struct gmem_rmap_node *n)
{
	while (n) {
		struct gmem_rmap_node *r = n->right;

		drop_tree(m, n->left);
		drop_node(m, n);
		n = r;
	}
}

/* Split @t into runs starting before @key and runs starting at/after it. */
static void split(struct gmem_rmap_node *t, uint64_t key,
		  struct gmem_rmap_node **l, struct gmem_rmap_node **r)
{
	if (!t) {
		*l = *r = NULL;
	} else if (t->start < key) {
		split(t->right, key, &t->right, r);
		*l = t;
	} else {
		split(t->left, key, l, &t->left);
		*r = t;
	}
}

/* Join two treaps where every run of @a lies before every run of @b. */
static struct gmem_rmap_node *merge(struct gmem_rmap_node *a,
				    struct gmem_rmap_node *b)
{
	if (!a)
		return b;
	if (!b)
		return a;
	if (a->prio > b->prio) {
		a->right = merge(a->right, b);
		return a;
	}
	b->left = merge(a, b->left);
	return b;
}

static struct gmem_rmap_node *last(struct gmem_rmap_node *t)
{
	while (t && t->right)
		t = t->right;
	return t;
}

static struct gmem_rmap_node *first(struct gmem_rmap_node *t)
{
	while (t && t->left)
		t = t->left;
	return t;
}

/* Unlink the first run of @t, which must not be empty. */
static struct gmem_rmap_node *pop_first(struct gmem_rmap_node *t,
					struct gmem_rmap_node **out)
{
	if (!t->left) {
		*out = t;
		return t->right;
	}
	t->left = pop_first(t->left, out);
	return t;
}

void gmem_rmap_store(struct gmem_rmap *m, uint64_t start, uint64_t end,
		     uint64_t val)
{
	struct gmem_rmap_node *l, *mid, *r, *n;

	/* l: runs starting before start; mid+r: the rest. */
	split(m->root, start, &l, &r);
	n = last(l);
	if (n && n->end > start) {
		/* The run straddling start keeps its head in l. */
		struct gmem_rmap_node *tail = take_node(m, start, n->end,
							n->val);

		m->nr_set -= n->end - start;
		n->end = start;
		r = merge(tail, r);
	}
	split(r, end, &mid, &r);
	n = last(mid);
	if (n && n->end > end) {
		struct gmem_rmap_node *tail = take_node(m, end, n->end, n->val);

		m->nr_set -= n->end - end;
		n->end = end;
		r = merge(tail, r);
	}
	drop_tree(m, mid);

	if (val) {
		struct gmem_rmap_node *prev = last(l), *next = first(r);

		if (prev && prev->end == start && prev->val == val) {
			prev->end = end;
			m->nr_set += end - start;
			n = NULL;
		} else {
			n = take_node(m, start, end, val);
			prev = n;
		}
		if (next && next->start == end && next->val == val) {
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

uint64_t gmem_rmap_lookup(const struct gmem_rmap *m, uint64_t pfn,
			  uint64_t *rstart, uint64_t *rend)
{
	const struct gmem_rmap_node *n = m->root;
	uint64_t lo = 0, hi = UINT64_MAX;

	while (n) {
		if (pfn < n->start) {
			hi = n->start;
			n = n->left;
		} else if (pfn >= n->end) {
			lo = n->end;
			n = n->right;
		} else {
			lo = n->start;
			hi = n->end;
			break;
		}
	}
	if (rstart)
		*rstart = lo;
	if (rend)
		*rend = hi;
	return n ? n->val : 0;
}

bool gmem_rmap_is_uniform(const struct gmem_rmap *m, uint64_t start,
			  uint64_t end, uint64_t val)
{
	uint64_t rend;

	return gmem_rmap_lookup(m, start, NULL, &rend) == val && rend >= end;
}

static size_t walk(const struct gmem_rmap_node *n, uint64_t start,
		   uint64_t end,
		   void (*fn)(void *, uint64_t, uint64_t, uint64_t), void *arg)
{
	size_t count = 0;

	while (n) {
		if (start < n->start)
			count += walk(n->left, start, end, fn, arg);
		if (n->start < end && n->end > start) {
			if (fn)
				fn(arg, MAX(n->start, start), MIN(n->end, end),
				   n->val);
			count++;
		}
		if (end <= n->end)
			break;
		n = n->right;
	}
	return count;
}

size_t gmem_rmap_for_each(const struct gmem_rmap *m, uint64_t start,
			  uint64_t end,
			  void (*fn)(void *arg, uint64_t start, uint64_t end,
				     uint64_t val),
			  void *arg)
{
	return walk(m->root, start, end, fn, arg);
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
