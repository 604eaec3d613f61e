// SPDX-License-Identifier: MIT
/*
 * Stage-2 MMU.  For now the invalidation protocol only; the EPT-format
 * table and the fault path hang off these hooks.
 */
#include <stdatomic.h>

#include "mmu.h"
#include "util.h"
#include "vm.h"

int gmem_mmu_init(struct gmem_mmu *mmu)
{
	*mmu = (struct gmem_mmu){ 0 };
	return -pthread_mutex_init(&mmu->lock, NULL);
}

void gmem_mmu_destroy(struct gmem_mmu *mmu)
{
	pthread_mutex_destroy(&mmu->lock);
}

void gmem_mmu_invalidate_begin(struct gmem_vm *vm, uint64_t start,
			       uint64_t end)
{
	struct gmem_mmu *mmu = &vm->mmu;

	pthread_mutex_lock(&mmu->lock);
	if (!mmu->in_progress++) {
		mmu->inv_start = start;
		mmu->inv_end = end;
	} else {
		mmu->inv_start = MIN(mmu->inv_start, start);
		mmu->inv_end = MAX(mmu->inv_end, end);
	}
	pthread_mutex_unlock(&mmu->lock);
}

void gmem_mmu_invalidate_end(struct gmem_vm *vm, uint64_t start, uint64_t end)
{
	struct gmem_mmu *mmu = &vm->mmu;

	pthread_mutex_lock(&mmu->lock);
	/* Readers that sampled the old value must see a change. */
	__atomic_store_n(&mmu->seq, mmu->seq + 1, __ATOMIC_RELEASE);
	mmu->in_progress--;
	pthread_mutex_unlock(&mmu->lock);
}

uint64_t gmem_mmu_invalidate_seq(struct gmem_vm *vm)
{
	return __atomic_load_n(&vm->mmu.seq, __ATOMIC_ACQUIRE);
}

bool gmem_mmu_invalidate_retry(struct gmem_vm *vm, uint64_t seq, uint64_t gfn)
{
	struct gmem_mmu *mmu = &vm->mmu;

	if (mmu->in_progress && gfn >= mmu->inv_start && gfn < mmu->inv_end)
		return true;
	return mmu->seq != seq;
}
