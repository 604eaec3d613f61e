/* SPDX-License-Identifier: MIT */
/*
 * Memslots: GPA ranges bound to userspace memory and/or a guest_memfd.
 *
 * The set is an array of slots sorted by base GFN, so a GFN lookup is a
 * binary search.  Slots never overlap.  Changes are reserved (array room,
 * the new slot) before the commit, which cannot fail.
 */
#ifndef GMEM_MEMSLOT_H
#define GMEM_MEMSLOT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

struct gmem_file;

/* Address spaces: one, as for a VM without SMM. */
#define GMEM_ADDRESS_SPACE_NUM 1
/* Slot ids per address space, as x86 KVM's. */
#define KVM_USER_MEM_SLOTS 32764

struct gmem_memslot {
	uint32_t slot; /* as_id << 16 | id */
	uint32_t flags;
	uint64_t base_gfn;
	uint64_t npages;
	uint64_t userspace_addr;

	/*
	 * GUEST_MEMFD binding.  @file goes NULL when the file is closed;
	 * the slot stays, and private accesses through it become
	 * memory-fault exits.
	 */
	struct gmem_file *file;
	uint64_t gmem_pgoff;
	uint32_t gmem_fd;
	/*
	 * Bound to a GUEST_MEMFD_FLAG_MMAP file: shared accesses take the
	 * file's memory too, not userspace_addr (6.18's
	 * KVM_MEMSLOT_GMEM_ONLY).  Fixed at creation.
	 */
	bool gmem_only;

	/*
	 * KVM_MEM_LOG_DIRTY_PAGES without dirty rings: the bitmap, 2 *
	 * gmem_dirty_words(npages) words (dirty_log.h).  Set and freed with
	 * the flag, under vm->lock and state_lock (write).
	 */
	uint64_t *dirty_bitmap;
};

struct gmem_memslots {
	struct gmem_memslot **by_gfn;
	size_t nr, cap;
};

void gmem_memslots_destroy(struct gmem_memslots *s);

/* The slot containing @gfn, or NULL.  O(log n). */
struct gmem_memslot *gmem_memslots_lookup(const struct gmem_memslots *s,
					  uint64_t gfn);

/* The slot with id @id (as_id << 16 | id), or NULL.  Under vm->lock. */
struct gmem_memslot *gmem_memslots_find_id(const struct gmem_memslots *s,
					   uint32_t id);

/*
 * The slot whose userspace_addr range holds @hva, or NULL; with several,
 * the lowest GFN's.  O(n): only a faulted host access asks.
 */
struct gmem_memslot *gmem_memslots_find_hva(const struct gmem_memslots *s,
					    uint64_t hva);

#endif /* GMEM_MEMSLOT_H */
