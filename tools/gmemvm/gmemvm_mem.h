/* SPDX-License-Identifier: MIT */
/*
 * gmemvm's memory policy: guest RAM as one memslot at GPA 0, conversions
 * between private and shared as the guest asks for them
 * (KVM_HC_MAP_GPA_RANGE), the guest's own hardening requests
 * (GMEM_HC_PROTECT, <gmem/hypercall.h>) with the record that keeps them
 * from being undone, and the verdict on a memory-fault exit.
 *
 * This is VMM policy on top of the library, which only enforces (DESIGN
 * §1).  It is a file of its own so that the scenario tests drive the very
 * code gmemvm runs from their own vCPU loops.
 *
 * Every entry point may be called from any vCPU thread; one mutex orders
 * conversions against the lock record, so a conversion cannot slip
 * between a lock's check and its commit.
 */
#ifndef GMEMVM_MEM_H
#define GMEMVM_MEM_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gmem/gmem.h>

/* A range the guest locked (GMEM_HC_PROTECT); never removed. */
struct gmemvm_lock {
	uint64_t start, end; /* GPA, page aligned, end exclusive */
	uint64_t prot;	     /* GMEM_PROTECT_*, NR already widened */
};

/* Counters of what the VMM did, for the statistics table. */
struct gmemvm_mem_stats {
	uint64_t to_private, to_shared; /* MAP_GPA_RANGE calls done */
	uint64_t pages_to_private, pages_to_shared;
	uint64_t map_errors; /* MAP_GPA_RANGE refused */
	uint64_t protects, pages_protected, protect_errors;
	uint64_t implicit; /* memory faults converted */
};

struct gmemvm_mem {
	struct gmem_vm *vm;
	uint64_t size;	    /* RAM is [0, size) */
	uint8_t *shared;    /* the slot's userspace memory */
	int gmem_fd;	    /* guest_memfd handle bound at offset 0, or -1 */
	uint64_t gmem_size; /* it backs GPAs [0, gmem_size) */

	pthread_mutex_t lock;
	struct gmemvm_lock *locks;
	size_t nr_locks, cap_locks;
	struct gmemvm_mem_stats stats;
};

/*
 * Take over RAM that the caller set up: @size bytes at GPA 0 backed by
 * @shared and, on a VM with private memory, the guest_memfd @gmem_fd
 * (else -1) from GPA 0 for as far as the file goes; RAM beyond it has
 * no private backing.  Nothing is allocated that gmemvm_mem_destroy() must free
 * besides the record.
 */
void gmemvm_mem_init(struct gmemvm_mem *m, struct gmem_vm *vm, uint64_t size,
		     void *shared, int gmem_fd);
void gmemvm_mem_destroy(struct gmemvm_mem *m);

/*
 * KVM_HC_MAP_GPA_RANGE (gpa, npages, attrs), as QEMU answers it for
 * guest_memfd: to private, set PRIVATE then drop the shared backing
 * (MADV_DONTNEED); to shared, clear the attributes then punch the
 * guest_memfd hole.  Either way the memory reads as zeros afterwards, as
 * on hardware.  Returns what goes into RAX: 0, -EINVAL for a bad range or
 * attribute bits or a VM without guest_memfd, -EPERM when the range holds
 * a page the guest locked, or the library's error.
 */
int64_t gmemvm_map_gpa_range(struct gmemvm_mem *m, uint64_t gpa,
			     uint64_t npages, uint64_t attrs);

/* GMEM_HC_PROTECT (gpa, npages, prot); see <gmem/hypercall.h>. */
int64_t gmemvm_protect(struct gmemvm_mem *m, uint64_t gpa, uint64_t npages,
		       uint64_t prot);

/* The guest's locks on the page at @gpa (GMEM_PROTECT_*), 0 if none. */
uint64_t gmemvm_locked(struct gmemvm_mem *m, uint64_t gpa);

/* What to do with a memory fault from an implicit conversion. */
enum gmemvm_policy {
	GMEMVM_POLICY_REFUSE,  /* stop the guest */
	GMEMVM_POLICY_CONVERT, /* convert the page the way the access needs */
};

/*
 * A KVM_EXIT_MEMORY_FAULT: @err is what gmem_vcpu_run() returned (-EFAULT
 * or -EHWPOISON), @flags/@gpa the exit's fields.  Resolves it when the
 * policy allows (returns 0: run the vCPU again) or returns -1 with one
 * line saying why not in @why:
 *   - poison: a memory error, never resolved;
 *   - an R/W/X attribute denies the access (a guest lock): a violation;
 *   - the page is private and the slot has no guest_memfd, or shared and
 *     the slot has no shared memory: an implicit conversion, done with
 *     GMEMVM_POLICY_CONVERT (unless the page is locked).
 * *@violation, if given, is set when the fault was an attribute violation.
 */
int gmemvm_memory_fault(struct gmemvm_mem *m, int err, uint64_t flags,
			uint64_t gpa, enum gmemvm_policy policy, char *why,
			size_t len, bool *violation);

/* "read", "write" or "exec" (or a combination) for an exit's flags. */
const char *gmemvm_access_name(uint64_t flags);

#endif /* GMEMVM_MEM_H */
