// SPDX-License-Identifier: MIT
/*
 * The handle table (see handle.h).  One mutex serialises the table; a
 * handle's hold count is atomic so that gmem_handle_put() needs no lock.
 */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

#include "handle.h"
#include "util.h"

struct gmem_handle {
	enum gmem_handle_kind kind;
	void *obj;
	void (*release)(void *obj);
	atomic_int holds; /* numbers mapping it + in-flight lookups */
	bool foreign;	  /* inherited across fork(): -EIO, never released */
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct gmem_handle **table; /* indexed by number */
static size_t table_cap;
static const struct gmem_handle_numbering *numbering;

void gmem_handle_set_numbering(const struct gmem_handle_numbering *ops)
{
	numbering = ops;
}

static void handle_put(struct gmem_handle *h)
{
	if (atomic_fetch_sub(&h->holds, 1) != 1)
		return;
	if (h->release)
		h->release(h->obj);
	gmem_free(h);
}

/* Under table_lock: make room for number @n. */
static int grow(size_t n)
{
	size_t cap = table_cap ? table_cap : 64;
	struct gmem_handle **t;

	if (n < table_cap)
		return 0;
	while (cap <= n)
		cap *= 2;
	t = gmem_zalloc_array(cap, sizeof(*t));
	if (!t)
		return -ENOMEM;
	if (table_cap)
		memcpy(t, table, table_cap * sizeof(*t));
	gmem_free(table);
	table = t;
	table_cap = cap;
	return 0;
}

/* Under table_lock: the lowest free number of the library's own. */
static int own_number(void)
{
	size_t i;
	int r;

	for (i = GMEM_HANDLE_BASE; i < table_cap; i++)
		if (!table[i])
			return (int)i;
	r = grow(i);
	return r ? r : (int)i;
}

int gmem_handle_alloc(enum gmem_handle_kind kind, void *obj,
		      void (*release)(void *obj))
{
	struct gmem_handle *h, *stale = NULL;
	int n = -1, r;

	h = gmem_zalloc(sizeof(*h));
	if (!h)
		return -ENOMEM;
	*h = (struct gmem_handle){.kind = kind, .obj = obj, .release = release};
	atomic_init(&h->holds, 1);
	if (numbering) {
		n = numbering->reserve(kind);
		if (n < 0) {
			gmem_free(h);
			return n;
		}
	}
	pthread_mutex_lock(&table_lock);
	r = numbering ? grow((size_t)n) : (n = own_number()) < 0 ? n : 0;
	if (!r) {
		stale = table[n];
		table[n] = h;
	}
	pthread_mutex_unlock(&table_lock);
	if (r) {
		if (numbering)
			numbering->release(n);
		gmem_free(h);
		return r;
	}
	if (stale)
		handle_put(stale);
	return n;
}

/* Under table_lock: the handle number @fd maps, or NULL. */
static struct gmem_handle *lookup(int fd)
{
	if (fd < 0 || (size_t)fd >= table_cap)
		return NULL;
	return table[fd];
}

int gmem_handle_get(int fd, struct gmem_handle_ref *ref)
{
	struct gmem_handle *h;
	int r = 0;

	pthread_mutex_lock(&table_lock);
	h = lookup(fd);
	if (!h)
		r = -EBADF;
	else if (h->foreign)
		r = -EIO;
	else
		atomic_fetch_add(&h->holds, 1);
	pthread_mutex_unlock(&table_lock);
	if (r) {
		*ref = (struct gmem_handle_ref){GMEM_H_FREE, NULL, NULL};
		return r;
	}
	*ref = (struct gmem_handle_ref){h->kind, h->obj, h};
	return 0;
}

void gmem_handle_put(struct gmem_handle_ref *ref)
{
	if (ref->h)
		handle_put(ref->h);
	ref->h = NULL;
}

int gmem_handle_dup(int oldfd, int newfd)
{
	struct gmem_handle *h, *stale = NULL;
	int r;

	pthread_mutex_lock(&table_lock);
	h = lookup(oldfd);
	r = !h ? -EBADF : newfd < 0 ? -EBADF : grow((size_t)newfd);
	if (!r) {
		atomic_fetch_add(&h->holds, 1);
		stale = table[newfd];
		table[newfd] = h;
	}
	pthread_mutex_unlock(&table_lock);
	if (stale)
		handle_put(stale);
	return r;
}

/* Unmap @fd; the number's hold is the caller's to drop. */
static struct gmem_handle *unmap(int fd)
{
	struct gmem_handle *h;

	pthread_mutex_lock(&table_lock);
	h = lookup(fd);
	if (h)
		table[fd] = NULL;
	pthread_mutex_unlock(&table_lock);
	return h;
}

int gmem_handle_forget(int fd)
{
	struct gmem_handle *h = unmap(fd);

	if (!h)
		return -EBADF;
	handle_put(h);
	return 0;
}

int gmem_handle_close(int fd)
{
	struct gmem_handle *h = unmap(fd);

	if (!h)
		return -EBADF;
	/* The number goes back only once nothing maps it. */
	if (numbering)
		numbering->release(fd);
	handle_put(h);
	return 0;
}

bool gmem_handle_is_mapped(int fd)
{
	bool mapped;

	pthread_mutex_lock(&table_lock);
	mapped = lookup(fd) != NULL;
	pthread_mutex_unlock(&table_lock);
	return mapped;
}

int gmem_handle_next(int from)
{
	int n = -1;

	pthread_mutex_lock(&table_lock);
	for (size_t i = from < 0 ? 0 : (size_t)from; i < table_cap; i++)
		if (table[i]) {
			n = (int)i;
			break;
		}
	pthread_mutex_unlock(&table_lock);
	return n;
}

void gmem_handle_lock_all(void)
{
	pthread_mutex_lock(&table_lock);
}

void gmem_handle_unlock_all(void)
{
	pthread_mutex_unlock(&table_lock);
}

void gmem_handle_fork_child(void)
{
	pthread_mutex_lock(&table_lock);
	for (size_t i = 0; i < table_cap; i++) {
		struct gmem_handle *h = table[i];

		if (!h || h->kind == GMEM_H_SYSTEM || h->foreign)
			continue;
		h->foreign = true;
		/* A hold no one drops: the parent's objects are not ours. */
		atomic_fetch_add(&h->holds, 1);
	}
	pthread_mutex_unlock(&table_lock);
}
