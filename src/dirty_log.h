/* SPDX-License-Identifier: MIT */
/*
 * Dirty logging (KVM_MEM_LOG_DIRTY_PAGES): which pages of a logged slot
 * the guest wrote, told to the VMM as KVM tells it, through the slot's
 * bitmap (KVM_GET_DIRTY_LOG, KVM_CLEAR_DIRTY_LOG) or, once the VM enabled
 * KVM_CAP_DIRTY_LOG_RING, through a ring per vCPU.
 *
 * Write tracking.  Stage 2 maps a page of a logged slot in 4 KiB pieces,
 * and writable only by a write fault, which records the page first (its
 * bit, or an entry in the faulting vCPU's ring).  Invariant: a writable
 * stage-2 leaf in a logged slot is a page recorded dirty and not yet
 * collected.  Collecting (GET without manual protect, CLEAR, a ring
 * reset) takes the record and write-protects the page in one step under
 * mmu->lock, bumping the MMU sequence so that a fault which recorded the
 * page before and installs after retries; then the TLBs are shot down.
 * A write after that faults and is recorded again: none is lost.  A write
 * that a vCPU makes through a translation it held before the shootdown
 * lands before the collecting call returns, on a page that call reports.
 *
 * The bitmap of a slot holds 2 * words: the live bits, then the buffer
 * GET and CLEAR stage the VMM's copy in, so neither allocates.
 */
#ifndef GMEM_DIRTY_LOG_H
#define GMEM_DIRTY_LOG_H

#include <stdbool.h>
#include <stdint.h>

#include <gmem/gmem.h>

struct gmem_memslot;
struct gmem_vm;

/* KVM's: entries kept free for what one exit may still push. */
#define GMEM_DIRTY_RING_RSVD 64
#define GMEM_DIRTY_RING_MAX 65536 /* entries */

/*
 * One vCPU's ring, in the VMM-visible memory of struct kvm_dirty_gfn.
 * dirty_index is written by the vCPU's thread only, reset_index by
 * gmem_vm_reset_dirty_rings() under vm->lock; each reads the other's.
 */
struct gmem_dirty_ring {
	struct kvm_dirty_gfn *gfns;
	uint32_t size; /* entries, a power of 2; 0 without a ring */
	uint32_t soft_limit;
	uint32_t dirty_index;
	uint32_t reset_index;
};

static inline uint64_t gmem_dirty_words(uint64_t npages)
{
	return (npages + 63) / 64;
}

/* A bitmap for a slot of @npages: all set if @set, else clear. */
uint64_t *gmem_dirty_bitmap_alloc(uint64_t npages, bool set);

/* Record page @off of @slot in its bitmap.  Under state_lock (read). */
static inline void gmem_dirty_mark(uint64_t *bitmap, uint64_t off)
{
	uint64_t *w = &bitmap[off / 64], bit = 1ULL << (off % 64);

	/* Most faults find the bit set: don't take the line for writing. */
	if (!(__atomic_load_n(w, __ATOMIC_RELAXED) & bit))
		__atomic_fetch_or(w, bit, __ATOMIC_RELAXED);
}

/*
 * Publish (slot, offset) in @ring.  True when the ring is now soft-full:
 * the vCPU must exit with KVM_EXIT_DIRTY_RING_FULL before it runs on.
 */
bool gmem_dirty_ring_push(struct gmem_dirty_ring *ring, uint32_t slot,
			  uint64_t offset);

static inline bool gmem_dirty_ring_soft_full(const struct gmem_dirty_ring *ring)
{
	return ring->size &&
	       ring->dirty_index - __atomic_load_n(&ring->reset_index,
						   __ATOMIC_ACQUIRE) >=
		       ring->soft_limit;
}

/* KVM_CAP_DIRTY_LOG_RING(_ACQ_REL): @bytes of ring per vCPU. */
int gmem_vm_enable_dirty_ring(struct gmem_vm *vm, uint32_t bytes);

#endif /* GMEM_DIRTY_LOG_H */
