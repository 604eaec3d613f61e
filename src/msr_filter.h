/* SPDX-License-Identifier: MIT */
/*
 * MSR accesses the VMM handles: KVM_CAP_X86_USER_SPACE_MSR (which refused
 * accesses exit as KVM_EXIT_X86_RDMSR/WRMSR instead of #GP) and
 * KVM_X86_SET_MSR_FILTER (ranges of allow bits; an access a filter
 * denies is refused for reason FILTER).  Per VM, read by every vCPU at
 * each RDMSR/WRMSR; a new filter replaces the old one whole.
 */
#ifndef GMEM_MSR_FILTER_H
#define GMEM_MSR_FILTER_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <gmem/uapi.h>

struct gmem_msr_range {
	uint32_t flags, base, nmsrs;
	uint8_t *bitmap; /* a copy, (nmsrs + 63) / 64 * 8 bytes */
};

struct gmem_msr_filter {
	pthread_rwlock_t lock; /* the filter below; vCPUs read it */
	bool set;	       /* a filter is installed */
	bool default_allow;
	unsigned count;
	struct gmem_msr_range ranges[KVM_MSR_FILTER_MAX_RANGES];
	uint64_t exit_mask; /* atomic: KVM_CAP_X86_USER_SPACE_MSR's args[0] */
};

void gmem_msr_filter_init(struct gmem_msr_filter *f);
void gmem_msr_filter_destroy(struct gmem_msr_filter *f);

/*
 * KVM_X86_SET_MSR_FILTER as kvm_vm_ioctl_set_msr_filter(): -EINVAL for
 * unknown flags, a default-deny filter without ranges, a range (with
 * MSRs) whose flags are unknown or none, or whose bitmap exceeds
 * KVM_MSR_FILTER_MAX_BITMAP_SIZE; -EFAULT for a bitmap that cannot be
 * read, -ENOMEM.  Nothing changes on failure.
 */
int gmem_msr_filter_set(struct gmem_msr_filter *f,
			const struct kvm_msr_filter *uf);

/* kvm_msr_allowed(): x2APIC MSRs are never filtered. */
bool gmem_msr_filter_allows(struct gmem_msr_filter *f, uint32_t index,
			    bool write);

#endif /* GMEM_MSR_FILTER_H */
