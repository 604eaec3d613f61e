// SPDX-License-Identifier: MIT
/*
 * KVM_X86_SET_MSR_FILTER's filter (see msr_filter.h): built whole from
 * the VMM's ranges, then swapped in under the write lock, so that a vCPU
 * sees the old filter or the new one, never a mix.
 */
#include <errno.h>
#include <string.h>

#include "msr_filter.h"
#include "uaccess.h"
#include "util.h"

void gmem_msr_filter_init(struct gmem_msr_filter *f)
{
	memset(f, 0, sizeof(*f));
	pthread_rwlock_init(&f->lock, NULL);
}

static void free_ranges(struct gmem_msr_range *r, unsigned n)
{
	for (unsigned k = 0; k < n; k++)
		gmem_free(r[k].bitmap);
}

void gmem_msr_filter_destroy(struct gmem_msr_filter *f)
{
	free_ranges(f->ranges, f->count);
	pthread_rwlock_destroy(&f->lock);
}

/*
 * kvm_add_msr_filter(): a range without MSRs is skipped (its flags
 * unchecked); the bitmap is copied in whole longs, as KVM copies it.
 */
static int add_range(struct gmem_msr_range *out, unsigned *n,
		     const struct kvm_msr_filter_range *ur)
{
	size_t size = (ur->nmsrs + 63ull) / 64 * 8;
	uint8_t *bm;

	if (!ur->nmsrs)
		return 0;
	if ((ur->flags & ~KVM_MSR_FILTER_RANGE_VALID_MASK) || !ur->flags)
		return -EINVAL;
	if (size > KVM_MSR_FILTER_MAX_BITMAP_SIZE)
		return -EINVAL;
	bm = gmem_zalloc(size);
	if (!bm)
		return -ENOMEM;
	/* NULL faults as any unmapped address would (memcpy may not see it). */
	if (!ur->bitmap || gmem_uaccess_copy(bm, ur->bitmap, size)) {
		gmem_free(bm);
		return -EFAULT;
	}
	out[*n] = (struct gmem_msr_range){
		.flags = ur->flags,
		.base = ur->base,
		.nmsrs = ur->nmsrs,
		.bitmap = bm,
	};
	(*n)++;
	return 0;
}

int gmem_msr_filter_set(struct gmem_msr_filter *f,
			const struct kvm_msr_filter *uf)
{
	struct gmem_msr_range ranges[KVM_MSR_FILTER_MAX_RANGES],
		old[KVM_MSR_FILTER_MAX_RANGES];
	bool empty = true, allow;
	unsigned n = 0, nold;
	int r;

	if (uf->flags & ~KVM_MSR_FILTER_VALID_MASK)
		return -EINVAL;
	for (unsigned k = 0; k < KVM_MSR_FILTER_MAX_RANGES; k++)
		empty &= !uf->ranges[k].nmsrs;
	allow = !(uf->flags & KVM_MSR_FILTER_DEFAULT_DENY);
	if (empty && !allow)
		return -EINVAL;
	for (unsigned k = 0; k < KVM_MSR_FILTER_MAX_RANGES; k++) {
		r = add_range(ranges, &n, &uf->ranges[k]);
		if (r) {
			free_ranges(ranges, n);
			return r;
		}
	}
	pthread_rwlock_wrlock(&f->lock);
	nold = f->count;
	memcpy(old, f->ranges, nold * sizeof(old[0]));
	memcpy(f->ranges, ranges, n * sizeof(ranges[0]));
	f->count = n;
	f->default_allow = allow;
	f->set = true;
	pthread_rwlock_unlock(&f->lock);
	free_ranges(old, nold);
	return 0;
}

bool gmem_msr_filter_allows(struct gmem_msr_filter *f, uint32_t index,
			    bool write)
{
	uint32_t type = write ? KVM_MSR_FILTER_WRITE : KVM_MSR_FILTER_READ;
	bool allowed = true;

	if (index >= 0x800 && index <= 0x8ff)
		return true;
	pthread_rwlock_rdlock(&f->lock);
	if (f->set) {
		allowed = f->default_allow;
		for (unsigned k = 0; k < f->count; k++) {
			const struct gmem_msr_range *g = &f->ranges[k];
			uint32_t end = g->base + g->nmsrs; /* wraps, as KVM's */
			uint32_t off = index - g->base;

			if (index < g->base || index >= end ||
			    !(g->flags & type))
				continue;
			allowed = g->bitmap[off / 8] >> (off % 8) & 1;
			break;
		}
	}
	pthread_rwlock_unlock(&f->lock);
	return allowed;
}
