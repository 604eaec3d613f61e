/* SPDX-License-Identifier: MIT */
/*
 * Stage-2 MMU: the invalidation protocol every state change goes through.
 *
 * KVM's scheme.  A writer (attribute change, punch hole, slot change, file
 * close) brackets its update with invalidate_begin/end over the GFN range it
 * affects.  begin zaps the stage-2 mappings of the range and marks it in
 * progress; end bumps the sequence number.  The fault path samples the
 * sequence, resolves the backing without the MMU lock, then under the lock
 * installs the mapping only if gmem_mmu_invalidate_retry() says no
 * invalidation covering its GFN started or finished in between.
 */
#ifndef GMEM_MMU_H
#define GMEM_MMU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

struct gmem_vm;

struct gmem_mmu {
	pthread_mutex_t lock;
	uint64_t seq;		   /* bumped by every invalidate_end */
	unsigned long in_progress; /* open invalidate_begin sections */
	uint64_t inv_start, inv_end; /* union of their GFN ranges */
};

int gmem_mmu_init(struct gmem_mmu *mmu);
void gmem_mmu_destroy(struct gmem_mmu *mmu);

/* Bracket an update of [start, end) (GFNs).  Cannot fail. */
void gmem_mmu_invalidate_begin(struct gmem_vm *vm, uint64_t start,
			       uint64_t end);
void gmem_mmu_invalidate_end(struct gmem_vm *vm, uint64_t start, uint64_t end);

/* Sample the sequence before resolving a fault. */
uint64_t gmem_mmu_invalidate_seq(struct gmem_vm *vm);

/* Under mmu->lock: must a fault on @gfn that sampled @seq retry? */
bool gmem_mmu_invalidate_retry(struct gmem_vm *vm, uint64_t seq, uint64_t gfn);

#endif /* GMEM_MMU_H */
