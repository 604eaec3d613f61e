// SPDX-License-Identifier: MIT
/*
 * Dirty logging: the bitmap ioctls, the rings and their reset (see
 * dirty_log.h for the write-tracking protocol).
 */
#include <errno.h>
#include <string.h>

#include "dirty_log.h"
#include "memslot.h"
#include "mmu.h"
#include "uaccess.h"
#include "util.h"
#include "vm.h"

uint64_t *gmem_dirty_bitmap_alloc(uint64_t npages, bool set)
{
	uint64_t words = gmem_dirty_words(npages);
	uint64_t *b = gmem_zalloc_array(2 * words, sizeof(*b));

	if (b && set) {
		memset(b, 0xff, words * sizeof(*b));
		/* Bits past the slot's end stay clear, as KVM's bitmap_set. */
		if (npages % 64)
			b[words - 1] = (1ULL << (npages % 64)) - 1;
	}
	return b;
}

/* KVM's id checks, then the slot and its bitmap.  Under vm->lock. */
static int log_slot(struct gmem_vm *vm, uint32_t id,
		    struct gmem_memslot **slotp)
{
	struct gmem_memslot *slot;

	/* Dirty rings replace the bitmaps (no
	 * KVM_CAP_DIRTY_LOG_RING_WITH_BITMAP on x86). */
	if (vm->dirty_ring_size)
		return -ENXIO;
	if ((id >> 16) >= GMEM_ADDRESS_SPACE_NUM ||
	    (uint16_t)id >= KVM_USER_MEM_SLOTS)
		return -EINVAL;
	slot = gmem_memslots_find_id(&vm->slots, id);
	if (!slot || !slot->dirty_bitmap)
		return -ENOENT;
	*slotp = slot;
	return 0;
}

int gmem_vm_get_dirty_log(struct gmem_vm *vm, const struct kvm_dirty_log *log)
{
	struct gmem_memslot *slot;
	uint64_t words, *live, *out;
	int r;

	pthread_mutex_lock(&vm->lock);
	r = log_slot(vm, log->slot, &slot);
	if (r)
		goto out;
	words = gmem_dirty_words(slot->npages);
	live = slot->dirty_bitmap;
	out = live + words;
	if (vm->manual_dirty_log_protect) {
		/* A snapshot: KVM_CLEAR_DIRTY_LOG collects. */
		for (uint64_t i = 0; i < words; i++)
			out[i] = __atomic_load_n(&live[i], __ATOMIC_RELAXED);
	} else {
		bool collected = false;

		gmem_mmu_protect_begin(vm);
		for (uint64_t i = 0; i < words; i++) {
			uint64_t m = 0;

			if (__atomic_load_n(&live[i], __ATOMIC_RELAXED)) {
				m = __atomic_exchange_n(&live[i], 0,
							__ATOMIC_RELAXED);
				collected = true;
			}
			out[i] = m;
		}
		gmem_mmu_protect_words(vm, slot->base_gfn, out, words);
		gmem_vm_flush_tlbs(vm, gmem_mmu_protect_end(vm, collected));
	}
	r = gmem_uaccess_copy(log->dirty_bitmap, out, words * sizeof(*out));
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

int gmem_vm_clear_dirty_log(struct gmem_vm *vm,
			    const struct kvm_clear_dirty_log *log)
{
	struct gmem_memslot *slot;
	uint64_t words, first, n, *live, *in;
	bool collected = false;
	int r;

	pthread_mutex_lock(&vm->lock);
	r = log_slot(vm, log->slot, &slot);
	/* KVM checks the alignment between the id and the lookup. */
	if (r != -ENXIO && (log->first_page & 63))
		r = -EINVAL;
	if (r)
		goto out;
	if (log->first_page > slot->npages ||
	    log->num_pages > slot->npages - log->first_page ||
	    (log->num_pages < slot->npages - log->first_page &&
	     (log->num_pages & 63))) {
		r = -EINVAL;
		goto out;
	}
	words = gmem_dirty_words(slot->npages);
	first = log->first_page / 64;
	n = gmem_dirty_words(log->num_pages);
	live = slot->dirty_bitmap;
	in = live + words;
	r = gmem_uaccess_copy(in, log->dirty_bitmap, n * sizeof(*in));
	if (r)
		goto out;
	gmem_mmu_protect_begin(vm);
	for (uint64_t i = 0; i < n; i++) {
		/* Only what was set is cleared, and protected again. */
		if (in[i])
			in[i] &= __atomic_fetch_and(&live[first + i], ~in[i],
						    __ATOMIC_RELAXED);
		collected |= in[i] != 0;
	}
	/* After the locked updates: in one loop they keep the page-table
	 * loads from overlapping. */
	gmem_mmu_protect_words(vm, slot->base_gfn + first * 64, in, n);
	gmem_vm_flush_tlbs(vm, gmem_mmu_protect_end(vm, collected));
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

bool gmem_dirty_ring_push(struct gmem_dirty_ring *ring, uint32_t slot,
			  uint64_t offset)
{
	struct kvm_dirty_gfn *e =
		&ring->gfns[ring->dirty_index & (ring->size - 1)];

	/* The reserve keeps a soft-full ring from ever filling. */
	e->slot = slot;
	e->offset = offset;
	__atomic_store_n(&e->flags, KVM_DIRTY_GFN_F_DIRTY, __ATOMIC_RELEASE);
	__atomic_store_n(&ring->dirty_index, ring->dirty_index + 1,
			 __ATOMIC_RELAXED);
	return gmem_dirty_ring_soft_full(ring);
}

/*
 * Protect the @mask pages from @offset of slot @id, as a reset gathered
 * them; the VMM wrote the entries, so anything may be in them: what
 * names no page of a logged slot is dropped, as in KVM.
 */
static bool reset_pages(struct gmem_vm *vm, uint32_t id, uint64_t offset,
			uint64_t mask)
{
	struct gmem_memslot *slot;

	if (!mask || (id >> 16) >= GMEM_ADDRESS_SPACE_NUM ||
	    (uint16_t)id >= KVM_USER_MEM_SLOTS)
		return false;
	slot = gmem_memslots_find_id(&vm->slots, id);
	if (!slot || offset >= slot->npages ||
	    offset + (63 - __builtin_clzll(mask)) >= slot->npages)
		return false;
	gmem_mmu_protect_words(vm, slot->base_gfn + offset, &mask, 1);
	return true;
}

/*
 * Free the harvested entries at the ring's reset index, protecting their
 * pages; runs of nearby offsets in one slot go as one mask, as KVM
 * coalesces them.  The count of entries freed.
 */
static int ring_reset(struct gmem_vm *vm, struct gmem_dirty_ring *ring)
{
	uint32_t cur_slot = 0, next_slot;
	uint64_t cur_off = 0, next_off, mask = 0;
	uint32_t idx = ring->reset_index;
	int count = 0;

	for (;;) {
		struct kvm_dirty_gfn *e = &ring->gfns[idx & (ring->size - 1)];
		int64_t delta;

		if (!(__atomic_load_n(&e->flags, __ATOMIC_ACQUIRE) &
		      KVM_DIRTY_GFN_F_RESET))
			break;
		next_slot = __atomic_load_n(&e->slot, __ATOMIC_RELAXED);
		next_off = __atomic_load_n(&e->offset, __ATOMIC_RELAXED);
		__atomic_store_n(&e->flags, 0, __ATOMIC_RELEASE);
		idx++;
		count++;
		if (mask && next_slot == cur_slot) {
			delta = (int64_t)(next_off - cur_off);
			if (delta >= 0 && delta < 64) {
				mask |= 1ULL << delta;
				continue;
			}
			/* Backwards, while the mask still fits in 64 bits. */
			if (delta > -64 && delta < 0 &&
			    (mask << -delta >> -delta) == mask) {
				cur_off = next_off;
				mask = (mask << -delta) | 1;
				continue;
			}
		}
		reset_pages(vm, cur_slot, cur_off, mask);
		cur_slot = next_slot;
		cur_off = next_off;
		mask = 1;
	}
	reset_pages(vm, cur_slot, cur_off, mask);
	/* The vCPU reads it for soft-full after the entries are free. */
	__atomic_store_n(&ring->reset_index, idx, __ATOMIC_RELEASE);
	return count;
}

int gmem_vm_reset_dirty_rings(struct gmem_vm *vm)
{
	int cleared = 0;

	if (!vm->dirty_ring_size)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	pthread_mutex_lock(&vm->vcpus_lock);
	gmem_mmu_protect_begin(vm);
	for (size_t i = 0; i < vm->nr_vcpus; i++)
		cleared += ring_reset(vm, &vm->vcpus[i]->ring);
	pthread_mutex_unlock(&vm->vcpus_lock);
	gmem_vm_flush_tlbs(vm, gmem_mmu_protect_end(vm, cleared != 0));
	pthread_mutex_unlock(&vm->lock);
	return cleared;
}

int gmem_vm_enable_dirty_ring(struct gmem_vm *vm, uint32_t bytes)
{
	const uint64_t entry = sizeof(struct kvm_dirty_gfn);
	int r = -EINVAL;

	/* kvm_vm_ioctl_enable_dirty_log_ring()'s checks, in its order. */
	if (!bytes || (bytes & (bytes - 1)))
		return -EINVAL;
	if (bytes < GMEM_DIRTY_RING_RSVD * entry || bytes < PAGE_SIZE)
		return -EINVAL;
	if (bytes > GMEM_DIRTY_RING_MAX * entry)
		return -E2BIG;
	pthread_mutex_lock(&vm->vcpus_lock);
	if (!vm->dirty_ring_size && !vm->nr_vcpus) {
		__atomic_store_n(&vm->dirty_ring_size, bytes, __ATOMIC_RELAXED);
		r = 0;
	}
	pthread_mutex_unlock(&vm->vcpus_lock);
	return r;
}
