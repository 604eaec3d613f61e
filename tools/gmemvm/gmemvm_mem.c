// SPDX-License-Identifier: MIT
/*
 * gmemvm's memory policy: conversions, guest locks and memory faults.
 * See gmemvm_mem.h.
 */
#include <errno.h>
#include <inttypes.h>
#include <linux/falloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>

#include <gmem/hypercall.h>

#include "gmemvm_mem.h"

#define PAGE GMEM_PAGE_SIZE
#define LOCK_BITS                                            \
	(KVM_MEMORY_ATTRIBUTE_NR | KVM_MEMORY_ATTRIBUTE_NW | \
	 KVM_MEMORY_ATTRIBUTE_NX)

/* The uAPI and the hypercall ABI name the same bits. */
_Static_assert(GMEM_PROTECT_NR == KVM_MEMORY_ATTRIBUTE_NR, "NR");
_Static_assert(GMEM_PROTECT_NW == KVM_MEMORY_ATTRIBUTE_NW, "NW");
_Static_assert(GMEM_PROTECT_NX == KVM_MEMORY_ATTRIBUTE_NX, "NX");

void gmemvm_mem_init(struct gmemvm_mem *m, struct gmem_vm *vm, uint64_t size,
		     void *shared, int gmem_fd)
{
	memset(m, 0, sizeof(*m));
	m->vm = vm;
	m->size = size;
	m->shared = shared;
	m->gmem_fd = gmem_fd;
	if (gmem_fd >= 0) {
		struct stat st;

		if (!gmem_file_stat(gmem_fd, &st))
			m->gmem_size = (uint64_t)st.st_size;
	}
	pthread_mutex_init(&m->lock, NULL);
}

void gmemvm_mem_destroy(struct gmemvm_mem *m)
{
	free(m->locks);
	m->locks = NULL;
	m->nr_locks = m->cap_locks = 0;
	pthread_mutex_destroy(&m->lock);
}

/*
 * A guest-supplied range: page aligned, not empty, inside RAM.  The
 * checks are written so that no sum can overflow.  Returns the end.
 */
static int check_range(const struct gmemvm_mem *m, uint64_t gpa,
		       uint64_t npages, uint64_t *end)
{
	if (gpa & (PAGE - 1) || !npages || gpa >= m->size ||
	    npages > (m->size - gpa) / PAGE)
		return -EINVAL;
	*end = gpa + npages * PAGE;
	return 0;
}

static uint64_t locked_in(const struct gmemvm_mem *m, uint64_t start,
			  uint64_t end)
{
	uint64_t prot = 0;

	for (size_t i = 0; i < m->nr_locks; i++)
		if (m->locks[i].start < end && start < m->locks[i].end)
			prot |= m->locks[i].prot;
	return prot;
}

uint64_t gmemvm_locked(struct gmemvm_mem *m, uint64_t gpa)
{
	uint64_t prot;

	gpa &= ~(PAGE - 1);
	pthread_mutex_lock(&m->lock);
	prot = locked_in(m, gpa, gpa + PAGE);
	pthread_mutex_unlock(&m->lock);
	return prot;
}

/* Convert [gpa, end) to private or shared; m->lock held. */
static int convert(struct gmemvm_mem *m, uint64_t gpa, uint64_t end,
		   bool to_private)
{
	struct kvm_memory_attributes a = {
		.address = gpa,
		.size = end - gpa,
		.attributes = to_private ? KVM_MEMORY_ATTRIBUTE_PRIVATE : 0,
	};
	int r;

	if (m->gmem_fd < 0)
		return -EINVAL;
	/*
	 * Attributes first: once the call returns no vCPU maps the old
	 * backing, so releasing it cannot pull a page from under a running
	 * guest.  The release is what makes the other side read zeros when
	 * the guest converts back, and gives the memory back to the host.
	 */
	r = gmem_vm_set_memory_attributes(m->vm, &a);
	if (r)
		return r;
	if (to_private) {
		if (madvise(m->shared + gpa, end - gpa, MADV_DONTNEED))
			return -errno;
		m->stats.to_private++;
		m->stats.pages_to_private += (end - gpa) / PAGE;
	} else {
		/* Only the part the guest_memfd backs has pages to free. */
		uint64_t punch_end = end < m->gmem_size ? end : m->gmem_size;

		r = gpa >= punch_end
			    ? 0
			    : gmem_file_fallocate(m->gmem_fd,
						  FALLOC_FL_KEEP_SIZE |
							  FALLOC_FL_PUNCH_HOLE,
						  (int64_t)gpa,
						  (int64_t)(punch_end - gpa));
		if (r)
			return r;
		m->stats.to_shared++;
		m->stats.pages_to_shared += (end - gpa) / PAGE;
	}
	return 0;
}

int64_t gmemvm_map_gpa_range(struct gmemvm_mem *m, uint64_t gpa,
			     uint64_t npages, uint64_t attrs)
{
	/* The page-size bits are a hint; the encryption status decides. */
	const uint64_t known = KVM_MAP_GPA_RANGE_ENCRYPTED |
			       KVM_MAP_GPA_RANGE_PAGE_SZ_2M |
			       KVM_MAP_GPA_RANGE_PAGE_SZ_1G;
	uint64_t end;
	int r;

	if ((attrs & ~known) || check_range(m, gpa, npages, &end)) {
		pthread_mutex_lock(&m->lock);
		m->stats.map_errors++;
		pthread_mutex_unlock(&m->lock);
		return -EINVAL;
	}
	pthread_mutex_lock(&m->lock);
	/* Converting would drop the guest's locks (PRIVATE excludes them). */
	if (locked_in(m, gpa, end))
		r = -EPERM;
	else
		r = convert(m, gpa, end, attrs & KVM_MAP_GPA_RANGE_ENCRYPTED);
	if (r)
		m->stats.map_errors++;
	pthread_mutex_unlock(&m->lock);
	return r;
}

/* A snapshot of the attribute map over [start, end), grown as needed. */
static int snapshot(struct gmemvm_mem *m, uint64_t start, uint64_t end,
		    struct gmem_attr_range **out)
{
	struct gmem_attr_range *r = NULL;
	size_t nr = 16;
	int n;

	for (;;) {
		struct gmem_attr_range *p = realloc(r, nr * sizeof(*r));

		if (!p) {
			free(r);
			return -ENOMEM;
		}
		r = p;
		n = gmem_vm_get_memory_attributes(m->vm, start, end - start, r,
						  nr, NULL);
		if (n < 0 || (size_t)n <= nr)
			break;
		nr = (size_t)n;
	}
	if (n < 0)
		free(r);
	else
		*out = r;
	return n;
}

/* Add @prot to every page of [start, end); none is private. */
static int add_prot(struct gmemvm_mem *m, uint64_t start, uint64_t end,
		    uint64_t old, uint64_t prot)
{
	struct kvm_memory_attributes a = {
		.address = start,
		.size = end - start,
		.attributes = old | prot,
	};

	if (start == end || (old | prot) == old)
		return 0;
	return gmem_vm_set_memory_attributes(m->vm, &a);
}

int64_t gmemvm_protect(struct gmemvm_mem *m, uint64_t gpa, uint64_t npages,
		       uint64_t prot)
{
	struct gmem_attr_range *ranges = NULL;
	struct gmemvm_lock *l;
	uint64_t end, at;
	int n, r = 0;

	if ((prot & ~GMEM_PROTECT_ALL) || check_range(m, gpa, npages, &end)) {
		r = -EINVAL;
		goto count;
	}
	/* Nothing readable can be written or run: keeps the value valid. */
	if (prot & GMEM_PROTECT_NR)
		prot = GMEM_PROTECT_ALL;

	pthread_mutex_lock(&m->lock);
	/* Reserve the record first, so nothing can fail after the change. */
	if (m->nr_locks == m->cap_locks) {
		size_t cap = m->cap_locks ? 2 * m->cap_locks : 16;

		l = realloc(m->locks, cap * sizeof(*l));
		if (!l) {
			r = -ENOMEM;
			goto unlock;
		}
		m->locks = l;
		m->cap_locks = cap;
	}
	n = snapshot(m, gpa, end, &ranges);
	if (n < 0) {
		r = n;
		goto unlock;
	}
	for (int i = 0; i < n; i++)
		if (ranges[i].attributes & KVM_MEMORY_ATTRIBUTE_PRIVATE) {
			r = -EINVAL;
			goto unlock;
		}
	/*
	 * Widen each run of equal attributes, gaps (attributes 0)
	 * included.  The snapshot cannot go stale: only this file changes
	 * attributes, under m->lock.
	 */
	at = gpa;
	for (int i = 0; i <= n && !r; i++) {
		uint64_t next = i < n ? ranges[i].address : end;

		r = add_prot(m, at, next, 0, prot);
		if (!r && i < n) {
			r = add_prot(m, ranges[i].address,
				     ranges[i].address + ranges[i].size,
				     ranges[i].attributes, prot);
			at = ranges[i].address + ranges[i].size;
		}
	}
	if (prot) {
		/*
		 * Recorded even if the library failed halfway: what was
		 * applied stays applied, so the record may only be wider.
		 */
		m->locks[m->nr_locks++] = (struct gmemvm_lock){gpa, end, prot};
	}
	if (!r)
		m->stats.pages_protected += npages;
unlock:
	free(ranges);
	if (!r)
		m->stats.protects++;
	pthread_mutex_unlock(&m->lock);
	if (!r)
		return 0;
count:
	pthread_mutex_lock(&m->lock);
	m->stats.protect_errors++;
	pthread_mutex_unlock(&m->lock);
	return r;
}

const char *gmemvm_access_name(uint64_t flags)
{
	switch (flags & LOCK_BITS) {
	case KVM_MEMORY_EXIT_FLAG_READ:
		return "read";
	case KVM_MEMORY_EXIT_FLAG_WRITE:
		return "write";
	case KVM_MEMORY_EXIT_FLAG_EXEC:
		return "exec";
	case 0:
		return "access";
	default:
		return "access";
	}
}

static const char *prot_name(uint64_t prot)
{
	if ((prot & GMEM_PROTECT_ALL) == GMEM_PROTECT_ALL)
		return "no-access";
	if ((prot & (GMEM_PROTECT_NW | GMEM_PROTECT_NX)) ==
	    (GMEM_PROTECT_NW | GMEM_PROTECT_NX))
		return "read-only";
	if (prot & GMEM_PROTECT_NW)
		return "no-write";
	if (prot & GMEM_PROTECT_NX)
		return "no-exec";
	return "unlocked";
}

/* The attributes of the page at @gpa. */
static uint64_t page_attrs(struct gmemvm_mem *m, uint64_t gpa)
{
	struct gmem_attr_range r;

	if (gmem_vm_get_memory_attributes(m->vm, gpa, PAGE, &r, 1, NULL) != 1)
		return 0;
	return r.attributes;
}

int gmemvm_memory_fault(struct gmemvm_mem *m, int err, uint64_t flags,
			uint64_t gpa, enum gmemvm_policy policy, char *why,
			size_t len, bool *violation)
{
	uint64_t access = flags & LOCK_BITS;
	uint64_t attrs = page_attrs(m, gpa);
	uint64_t locks;
	int r;

	if (violation)
		*violation = false;
	if (err == -EHWPOISON) {
		snprintf(why, len,
			 "memory error: %s of poisoned page at GPA %#" PRIx64,
			 gmemvm_access_name(flags), gpa);
		return -1;
	}
	/* The attribute bit that denies an access is the access's bit. */
	if (attrs & access & LOCK_BITS) {
		locks = gmemvm_locked(m, gpa);
		if (violation)
			*violation = true;
		snprintf(why, len,
			 "%s to the page at GPA %#" PRIx64
			 " denied: it is %s%s",
			 gmemvm_access_name(flags), gpa, prot_name(attrs),
			 locks ? " (locked by the guest)" : "");
		return -1;
	}
	if (flags & KVM_MEMORY_EXIT_FLAG_PRIVATE) {
		uint64_t page = gpa & ~(PAGE - 1);
		struct kvm_memory_attributes a = {
			.address = page,
			.size = PAGE,
			.attributes = 0,
		};

		if (policy == GMEMVM_POLICY_REFUSE) {
			snprintf(why, len,
				 "%s of private GPA %#" PRIx64
				 " that has no guest_memfd: implicit "
				 "conversion to shared refused "
				 "(--policy=refuse)",
				 gmemvm_access_name(flags), gpa);
			return -1;
		}
		/*
		 * There is no private backing to punch, and private pages
		 * carry no locks: clearing the attribute is the conversion.
		 */
		pthread_mutex_lock(&m->lock);
		r = gmem_vm_set_memory_attributes(m->vm, &a);
		if (!r)
			m->stats.implicit++;
		pthread_mutex_unlock(&m->lock);
		if (r) {
			snprintf(why, len,
				 "implicit conversion of GPA %#" PRIx64
				 " to shared failed: %s",
				 gpa, strerror(-r));
			return -1;
		}
		return 0;
	}
	snprintf(why, len,
		 "%s to GPA %#" PRIx64 " faulted (flags %#" PRIx64
		 ", attributes %#" PRIx64 "): %s",
		 gmemvm_access_name(flags), gpa, flags, attrs, strerror(-err));
	return -1;
}
