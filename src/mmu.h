/* SPDX-License-Identifier: MIT */
/*
 * Stage-2 MMU: an EPT-format table built lazily by the fault path, and the
 * invalidation protocol every state change goes through.
 *
 * Table format (Intel EPT, 4 levels, 512 entries of 64 bits each):
 *
 *   63      52 51                      12 11    8 7  6   3 2 1 0
 *  +----------+--------------------------+-------+--+-----+-+-+-+
 *  | ignored  | address (host page/table)| ign.  |PS| ign.|X|W|R|
 *  +----------+--------------------------+-------+--+-----+-+-+-+
 *
 * "Host physical" is a host virtual address here: the userspace page that
 * backs the guest page.  PS marks a 2 MiB (level 1) or 1 GiB (level 2)
 * leaf.  A zero entry is not present.  Tables are never freed before the
 * VM is, so a lock-free walker never reads a freed table; zapping clears
 * leaves.  Guest-physical addresses of 48 bits or more are not cached in
 * the table: every access there takes the fault path.
 *
 * Invalidation (KVM's scheme).  A writer brackets its update with
 * invalidate_begin/end over the GFN range it affects.  begin marks the
 * range in progress, zaps its leaves, and does not return before every vCPU
 * running guest code has dropped its TLB entries for it; end bumps the
 * sequence number.  The fault path samples the sequence, resolves the
 * backing under the read side of vm->state_lock, then under mmu->lock
 * installs the leaf only if no invalidation covering its GFN started or
 * finished in between.
 */
#ifndef GMEM_MMU_H
#define GMEM_MMU_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include <gmem/gmem.h>

struct gmem_vm;
struct gmem_vcpu;

#define S2_R (1ULL << 0)
#define S2_W (1ULL << 1)
#define S2_X (1ULL << 2)
#define S2_RWX (S2_R | S2_W | S2_X)
#define S2_PS (1ULL << 7)
#define S2_ADDR_MASK 0x000ffffffffff000ULL
#define S2_GFN_BITS 36 /* 48-bit guest-physical addresses */

/* Flushes remembered per VM, so a vCPU can drop just what changed. */
#define S2_FLUSH_LOG 64

struct gmem_flush_rec {
	uint64_t gen; /* written last: a reader re-checks it */
	uint64_t start, end;
};

struct gmem_mmu {
	pthread_mutex_t lock;
	uint64_t seq;		     /* bumped by every invalidate_end */
	unsigned long in_progress;   /* open invalidate_begin sections */
	uint64_t inv_start, inv_end; /* union of their GFN ranges */

	uint64_t *root; /* PML4-level table */
	void **tables;	/* every table page, freed with the VM */
	size_t nr_tables, cap_tables;
	/*
	 * Tables replaced by a huge leaf wait in @retired until a TLB
	 * shootdown has passed (no walker can still be inside them), then
	 * go to @pool for reuse.  Both have room for every table.
	 */
	void **retired, **pool;
	size_t nr_retired, nr_pool;

	/* TLB shootdown: see gmem_vcpu_sync_flush(). */
	uint64_t flush_gen;
	struct gmem_flush_rec flush_log[S2_FLUSH_LOG];

	/* Between gmem_mmu_protect_begin() and _end: what lost S2_W. */
	bool wp_changed;
	uint64_t wp_start, wp_end;
	uint64_t *wp_table, wp_table_gfn; /* the last page table walked to */

	struct gmem_vm_stats stats;
};

int gmem_mmu_init(struct gmem_mmu *mmu);
void gmem_mmu_destroy(struct gmem_mmu *mmu);

/*
 * What an invalidation needs of the VM's vCPUs before its caller may go
 * on: that every vCPU in guest mode whose footprint meets @mask has
 * acknowledged flush generation @gen; then @retired tables go back to the
 * pool (gmem_mmu_reclaim()).  The MMU returns it; the VM layer waits.
 */
struct gmem_mmu_flush {
	uint64_t gen;
	uint64_t mask;
	size_t retired;
};

/*
 * The MMU's half of invalidate-begin/end for [start, end) (GFNs): begin
 * marks the range in progress, zaps it and bumps the flush generation;
 * end bumps the sequence.  gmem_vm_invalidate_begin/end wrap them.
 */
struct gmem_mmu_flush gmem_mmu_invalidate_begin(struct gmem_vm *vm,
						uint64_t start, uint64_t end);
void gmem_mmu_reclaim(struct gmem_vm *vm, size_t retired);
void gmem_mmu_invalidate_end(struct gmem_vm *vm, uint64_t start, uint64_t end);

/*
 * Write-protect pages of logged slots (dirty_log.h).  begin takes
 * mmu->lock; each words call takes S2_W from the leaves of the pages set
 * in @bits (@n words, bit 0 of the first for @gfn; a huge leaf goes whole); end
 * bumps the sequence if
 * @collected (a fault that recorded one of these pages before must not
 * install a writable leaf after), logs the flush of what changed, and
 * unlocks.  The VM layer waits on the flush end returns.
 */
void gmem_mmu_protect_begin(struct gmem_vm *vm);
void gmem_mmu_protect_words(struct gmem_vm *vm, uint64_t gfn,
			    const uint64_t *bits, uint64_t n);
struct gmem_mmu_flush gmem_mmu_protect_end(struct gmem_vm *vm, bool collected);

/* Outcome of a stage-2 translation. */
enum gmem_s2 {
	GMEM_S2_OK,
	GMEM_S2_MMIO,  /* no memory: an MMIO exit for the CPU model */
	GMEM_S2_FAULT, /* a memory-fault exit: fault_gpa, fault_flags, error */
	GMEM_S2_XO,    /* read/write of execute-only memory: #PF */
	GMEM_S2_NOMEM, /* could not allocate a table page */
	GMEM_S2_RETRY, /* raced an invalidation: acknowledge, restart */
};

/*
 * The one record of a stage-2 translation, filled by the MMU and acted on
 * by the caller (the vCPU turns FAULT into KVM_EXIT_MEMORY_FAULT): the MMU
 * never writes kvm_run or vCPU state.  The caller zeroes it.
 */
struct gmem_s2_result {
	uint8_t *page;	      /* host address of the 4 KiB page (OK) */
	unsigned int perm;    /* S2_R/W/X of the mapping (OK) */
	unsigned int level;   /* its size: 0 4 KiB, 1 2 MiB, 2 1 GiB (OK) */
	int error;	      /* -EFAULT or -EHWPOISON (FAULT) */
	uint64_t fault_gpa;   /* the page of the memory fault (FAULT) */
	uint64_t fault_flags; /* its memory_fault.flags (FAULT) */
	bool faulted;	      /* the fault path ran (a stage-2 miss) */
	/*
	 * A write to a logged slot made its page writable (OK): the caller
	 * records it in its dirty ring, where the VM has rings (without,
	 * the MMU set the slot's bit).
	 */
	bool dirty;
	uint32_t dirty_slot;   /* as_id << 16 | id */
	uint64_t dirty_offset; /* page in the slot */
};

/*
 * Translate @gpa for @access (GMEM_ACCESS_*) in @vm: the stage-2 table
 * first, then the fault path (DESIGN §3.4).  The caller is a vCPU in guest
 * mode.
 * On GMEM_S2_RETRY the caller must drop every translation its current
 * access or instruction holds, acknowledge pending flushes
 * (gmem_vcpu_check_flush) and start over: the invalidation it raced may be
 * waiting for exactly that.
 */
enum gmem_s2 gmem_mmu_translate(struct gmem_vm *vm, uint64_t gpa,
				unsigned int access,
				struct gmem_s2_result *res);

#endif /* GMEM_MMU_H */
