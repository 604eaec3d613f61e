// SPDX-License-Identifier: MIT
/*
 * The handle table (see handle.h).  One mutex serialises the writers;
 * lookups and gmem_handle_put() take no lock (see struct table).
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
	struct gmem_handle *next_free;
};

/*
 * Lookups take no lock: every libc call of a drop-in program asks "is
 * this fd gmem's?", from any thread.  Writers (alloc, dup, close) hold
 * table_lock.  Two rules make the lock-free side safe:
 *  - a table is never freed once published: growth copies it and keeps
 *    the old one on a retired list, so a reader's pointer stays valid;
 *  - a handle struct is never freed either, only recycled through a free
 *    list, so a reader may always touch it.  A lookup takes a hold only
 *    while the count is non-zero, then checks that the slot still maps
 *    the same struct; a recycled struct fails that check (or is the very
 *    handle the slot maps now, which is as good).
 */
struct table {
	size_t cap;
	struct table *retired;
	struct gmem_handle *_Atomic slot[];
};

static pthread_mutex_t table_lock = PTHREAD_MUTEX_INITIALIZER;
static struct table *_Atomic table;
static struct gmem_handle *free_handles;
static const struct gmem_handle_numbering *numbering;

void gmem_handle_set_numbering(const struct gmem_handle_numbering *ops)
{
	numbering = ops;
}

/*
 * The last hold gone: release the object outside the lock (it may
 * close host fds or take other locks), then recycle the struct.
 */
static void handle_put(struct gmem_handle *h)
{
	if (atomic_fetch_sub(&h->holds, 1) != 1)
		return;
	if (h->release)
		h->release(h->obj);
	/*
	 * Recycled, never freed: a lock-free reader may still be looking at it.
	 */
	pthread_mutex_lock(&table_lock);
	h->next_free = free_handles;
	free_handles = h;
	pthread_mutex_unlock(&table_lock);
}

/* Under table_lock. */
static struct table *cur(void)
{
	/* Relaxed is enough under the lock: only writers change the pointer. */
	return atomic_load_explicit(&table, memory_order_relaxed);
}

static size_t cap(void)
{
	return cur() ? cur()->cap : 0;
}

static struct gmem_handle *slot_get(size_t n)
{
	return atomic_load_explicit(&cur()->slot[n], memory_order_relaxed);
}

static void slot_set(size_t n, struct gmem_handle *h)
{
	/* Release: a reader that finds @h in the slot sees it initialized. */
	atomic_store_explicit(&cur()->slot[n], h, memory_order_release);
}

/* Under table_lock: make room for number @n. */
static int grow(size_t n)
{
	struct table *old = cur(), *t;
	size_t c = old ? old->cap : 64;

	if (n < cap())
		return 0;
	while (c <= n)
		c *= 2;
	t = gmem_zalloc(sizeof(*t) + c * sizeof(t->slot[0]));
	if (!t)
		return -ENOMEM;
	t->cap = c;
	/*
	 * The new table starts as a copy; the old one stays readable for
	 * lookups that loaded it before the swap.
	 */
	for (size_t i = 0; old && i < old->cap; i++)
		atomic_init(&t->slot[i], atomic_load(&old->slot[i]));
	t->retired = old;
	/* Published only once complete: lookup()'s acquire pairs with this. */
	atomic_store_explicit(&table, t, memory_order_release);
	return 0;
}

/* Under table_lock: the lowest free number of the library's own. */
static int own_number(void)
{
	size_t i;
	int r;

	for (i = GMEM_HANDLE_BASE; i < cap(); i++)
		if (!slot_get(i))
			return (int)i;
	r = grow(i);
	return r ? r : (int)i;
}

/* Under table_lock: a handle struct, recycled if one is free. */
static struct gmem_handle *new_handle(void)
{
	struct gmem_handle *h = free_handles;

	if (h) {
		free_handles = h->next_free;
		return h;
	}
	return gmem_zalloc(sizeof(*h));
}

int gmem_handle_alloc(enum gmem_handle_kind kind, void *obj,
		      void (*release)(void *obj))
{
	struct gmem_handle *h, *stale = NULL;
	int n = -1, r;

	/*
	 * The drop-in layer reserves a real fd number first (outside the
	 * lock, as it may call into the host), so the number cannot clash.
	 */
	if (numbering) {
		n = numbering->reserve(kind);
		if (n < 0)
			return n;
	}
	pthread_mutex_lock(&table_lock);
	h = new_handle();
	r = !h			     ? -ENOMEM
	    : numbering		     ? grow((size_t)n)
	    : (n = own_number()) < 0 ? n
				     : 0;
	if (!r) {
		h->kind = kind;
		h->obj = obj;
		h->release = release;
		h->foreign = false;
		/* The number's own hold; the slot store below publishes it. */
		atomic_store_explicit(&h->holds, 1, memory_order_relaxed);
		/*
		 * A number whose fd was closed behind our back is taken over;
		 * its old handle loses the number's hold after unlocking.
		 */
		stale = slot_get((size_t)n);
		slot_set((size_t)n, h);
	} else if (h) {
		h->next_free = free_handles;
		free_handles = h;
	}
	pthread_mutex_unlock(&table_lock);
	if (r) {
		if (numbering)
			numbering->release(n);
		return r;
	}
	/* Dropped after unlocking: its release may call back into the table. */
	if (stale)
		handle_put(stale);
	return n;
}

/* Lock-free: what number @fd maps now, or NULL. */
static struct gmem_handle *lookup(int fd)
{
	struct table *t = atomic_load_explicit(&table, memory_order_acquire);

	/*
	 * Not the current table's cap after a concurrent grow, but an old table
	 * is still a valid (if stale) view: hold() checks the slot again.
	 */
	if (fd < 0 || !t || (size_t)fd >= t->cap)
		return NULL;
	return atomic_load_explicit(&t->slot[fd], memory_order_acquire);
}

/* Lock-free: a hold on what @fd maps, or NULL (see the table's rules). */
static struct gmem_handle *hold(int fd)
{
	for (;;) {
		struct gmem_handle *h = lookup(fd);
		int n;

		if (!h)
			return NULL;
		/*
		 * Take a hold only while the count is non-zero: a zero count
		 * means the last put is releasing the object, and the struct
		 * may be recycled.
		 */
		n = atomic_load_explicit(&h->holds, memory_order_relaxed);
		do {
			if (n == 0)
				break;
		} while (!atomic_compare_exchange_weak(&h->holds, &n, n + 1));
		if (n == 0)
			continue; /* being released: look again */
		/*
		 * Recheck: the struct may have been recycled for another number
		 * between the load and the hold; if the slot still maps it, the
		 * hold is good.
		 */
		if (lookup(fd) == h)
			return h;
		handle_put(h);
	}
}

int gmem_handle_get(int fd, struct gmem_handle_ref *ref)
{
	struct gmem_handle *h = hold(fd);

	*ref = (struct gmem_handle_ref){GMEM_H_FREE, NULL, NULL};
	if (!h)
		return -EBADF;
	/*
	 * After fork() the parent's VMs are not the child's: any use is -EIO.
	 */
	if (h->foreign) {
		handle_put(h);
		return -EIO;
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
	/* As dup2(): @newfd is replaced, and what it mapped loses a hold. */
	r = !h ? -EBADF : newfd < 0 ? -EBADF : grow((size_t)newfd);
	if (!r) {
		/* A mapped handle has the mapping's hold: never 0 here. */
		atomic_fetch_add(&h->holds, 1);
		stale = slot_get((size_t)newfd);
		slot_set((size_t)newfd, h);
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
		slot_set((size_t)fd, NULL);
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

int gmem_handle_absent_errno(int fd)
{
	/*
	 * The host has the number but it is not one of ours: KVM would say
	 * -EINVAL for a non-gmem fd where it expects one.
	 */
	if (numbering && numbering->in_use && numbering->in_use(fd))
		return -EINVAL;
	return -EBADF;
}

bool gmem_handle_is_mapped(int fd)
{
	return lookup(fd) != NULL;
}

int gmem_handle_next(int from)
{
	int n = -1;

	pthread_mutex_lock(&table_lock);
	for (size_t i = from < 0 ? 0 : (size_t)from; i < cap(); i++)
		if (slot_get(i)) {
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
	/*
	 * Run in the child after fork(), which has one thread; the lock was
	 * held across the fork (gmem_handle_lock_all) so no writer was mid-way.
	 */
	pthread_mutex_lock(&table_lock);
	for (size_t i = 0; i < cap(); i++) {
		struct gmem_handle *h = slot_get(i);

		/*
		 * System handles (/dev/kvm) hold no VM state: the child may use
		 * them.
		 */
		if (!h || h->kind == GMEM_H_SYSTEM || h->foreign)
			continue;
		h->foreign = true;
		/* A hold no one drops: the parent's objects are not ours. */
		atomic_fetch_add(&h->holds, 1);
	}
	pthread_mutex_unlock(&table_lock);
}
