/* SPDX-License-Identifier: MIT */
/*
 * vCPU objects: the kvm_run page, the software TLB over stage 2, and the
 * guest-mode handshake that makes TLB shootdown synchronous.
 *
 * Shootdown.  A vCPU thread is "in guest mode" while it may use TLB
 * entries.  An invalidation zaps stage 2, bumps mmu->flush_gen and the VM
 * layer (gmem_vm_invalidate_begin(), over struct gmem_vm_vcpu) waits
 * until every vCPU in guest mode has acknowledged that generation (stored
 * it in seen_gen after dropping its entries for the logged ranges).  A
 * vCPU checks flush_gen at every instruction boundary and at every access,
 * so the wait is short, and it enters guest mode with a full barrier
 * before reading flush_gen, so a flusher that saw it outside guest mode
 * cannot miss it later.  This is KVM's kvm_make_all_cpus_request() with
 * the IPI replaced by polling.
 *
 * Polling is slow to answer (the CPU model looks every 1024 instructions),
 * so a shootdown waits only for the vCPUs whose footprint (below) says
 * they may cache something in the range.  Dekker's pattern keeps that
 * safe: the vCPU publishes a footprint bit, then a full fence, then walks
 * stage 2; the flusher zaps, then a full fence, then reads the footprint.
 * Either the flusher sees the bit and waits, or the walk sees the zap.
 */
#ifndef GMEM_VCPU_H
#define GMEM_VCPU_H

#include <stdint.h>

#include <gmem/gmem.h>

#include "mmu.h"
#include "util.h"
#include "mce.h"
#include "vm.h"

/*
 * The vCPU's stage-2 TLB: GPA page -> host page and permissions, in front
 * of gmem_mmu_translate().  (The CPU model keeps its own, linear-address
 * TLB, x86_cpu.tlb.)
 */
#define GMEM_S2TLB_SIZE 512

/*
 * As KVM x86's KVM_GET_VCPU_MMAP_SIZE: kvm_run, the I/O data page that
 * io.data_offset points into, and the coalesced-MMIO ring's page.
 */
#define GMEM_VCPU_MMAP_SIZE (3 * PAGE_SIZE)

struct gmem_s2tlb_entry {
	uint64_t tag; /* guest frame number + 1; 0 = empty */
	uint8_t *page;
	unsigned int perm;
};

enum {
	GMEM_PEND_NONE,
	GMEM_PEND_IN,
	GMEM_PEND_MMIO,
	GMEM_PEND_HYPERCALL,
	GMEM_PEND_MSR,
};

struct x86_cpu;

/*
 * One stage-2 stop, recorded once on its way from the MMU's result to the
 * exit (DESIGN §3.4): bus_map(), gmem_vcpu_access() and host_fault() fill
 * it, fault_exit() writes kvm_run and KVM_RUN's return value from it, and
 * gmem_vcpu_get_fault_linear() reads the guest's side after the exit.
 */
enum gmem_fault_kind {
	GMEM_FAULT_NONE,
	GMEM_FAULT_MEMORY,    /* KVM_EXIT_MEMORY_FAULT with @error */
	GMEM_FAULT_RETRY,     /* raced a flush: acknowledge, run again */
	GMEM_FAULT_NOMEM,     /* the MMU could not allocate a table */
	GMEM_FAULT_RING_FULL, /* the write's page filled the dirty ring */
};

struct gmem_vcpu_fault {
	enum gmem_fault_kind kind;
	int error;	     /* MEMORY: -EFAULT or -EHWPOISON */
	uint64_t gpa, flags; /* MEMORY: memory_fault.gpa and .flags */
	bool lin_valid;	     /* the guest access is known (CPU model) */
	uint64_t lin;	     /* its linear address */
	uint32_t pfec;	     /* and the #PF error code it would give */
};

struct gmem_vcpu {
	struct gmem_vm *vm;
	int refs; /* the creator's, and gmem_vcpu_from_handle()'s */
	struct kvm_run *run;
	int run_fd; /* a memfd, so gmem_mmap() can map the page again */

	/* The id and the shootdown handshake, which the VM layer reads. */
	struct gmem_vm_vcpu vmv;
	/*
	 * KVM_MP_STATE_*, the vCPU thread's: RUNNABLE, HALTED (a HLT with
	 * the in-kernel irqchip), and with the APIC UNINITIALIZED (an AP
	 * before its INIT), INIT_RECEIVED (waiting for SIPI), AP_RESET_HOLD
	 * (as HALTED).  Anything but RUNNABLE blocks in KVM_RUN (block()).
	 */
	unsigned int mp_state;
	/*
	 * HALTED by a HLT that KVM_X86_DISABLE_EXITS_HLT keeps in the guest:
	 * KVM's mp_state does not see such a halt, so it reads RUNNABLE.
	 */
	bool hw_halted;
	/* KVM_NMI and NMI IPIs (any thread, atomic), then process_nmi()'s. */
	int nmi_queued;
	unsigned int nmi_pending;

	struct x86_cpu *cpu;
	/* The local APIC, with an irqchip (KVM_CREATE_IRQCHIP before us). */
	struct gmem_lapic *apic;
	struct gmem_mce mce;   /* machine-check banks */
	bool shutdown_pending; /* KVM_REQ_TRIPLE_FAULT from KVM_X86_SET_MCE */
	/* KVM_INTERRUPT's vector while an exception holds the event slot. */
	int user_irq;
	/*
	 * Steal time: the run delay last recorded (KVM's st.last_steal), and
	 * the schedstat file of the thread that last ran the vCPU.
	 */
	uint64_t steal_last;
	int schedstat_fd;
	pid_t schedstat_tid;
	int pending; /* what the next run completes first: GMEM_PEND_* */
	struct gmem_vcpu_fault fault; /* the last stage-2 stop */
	bool has_run;	/* x86_run() was entered: the CPUID table is fixed */
	bool cpuid_set; /* KVM_SET_CPUID2 replaced the model's default table */

	/* KVM_SET_SIGNAL_MASK: the mask KVM_RUN runs with (kernel layout). */
	bool sigmask_active;
	uint64_t sigmask;
	/*
	 * During a KVM_RUN with that mask, the signals it lets through but
	 * the thread blocks: they stay blocked and gmem_vcpu_run() polls
	 * for them (kernel layout too).
	 */
	uint64_t sig_poll;

	struct gmem_s2tlb_entry s2tlb[GMEM_S2TLB_SIZE];
	struct gmem_vcpu_stats stats;
};

/* Counters that only the vCPU's thread writes but others may read. */
#define VCPU_STAT_INC(v, field)                                           \
	__atomic_store_n(                                                 \
		&(v)->stats.field,                                        \
		__atomic_load_n(&(v)->stats.field, __ATOMIC_RELAXED) + 1, \
		__ATOMIC_RELAXED)

void gmem_vcpu_sync_flush(struct gmem_vcpu *vcpu);
int gmem_vcpu_copy_guest(struct gmem_vcpu *vcpu, uint64_t gpa, void *buf,
			 size_t len, bool write);

static inline void gmem_vcpu_check_flush(struct gmem_vcpu *vcpu)
{
	if (unlikely(__atomic_load_n(&vcpu->vm->mmu.flush_gen,
				     __ATOMIC_RELAXED) != vcpu->vmv.seen_gen))
		gmem_vcpu_sync_flush(vcpu);
}

/* Enter or leave guest mode (see above).  enter checks for flushes. */
static inline void gmem_vcpu_enter_guest(struct gmem_vcpu *vcpu)
{
	__atomic_store_n(&vcpu->vmv.mode, GMEM_VCPU_IN_GUEST, __ATOMIC_SEQ_CST);
	gmem_vcpu_check_flush(vcpu);
}

static inline void gmem_vcpu_exit_guest(struct gmem_vcpu *vcpu)
{
	__atomic_store_n(&vcpu->vmv.mode, GMEM_VCPU_OUTSIDE, __ATOMIC_RELEASE);
	gmem_vm_vcpu_acked(&vcpu->vmv);
}

/*
 * Withdraw a gmem_vcpu_kick() that no run has consumed (the drop-in's
 * signal kicks that came too late for the run they were meant for).
 */
static inline void gmem_vcpu_cancel_kick(struct gmem_vcpu *vcpu)
{
	__atomic_fetch_and(&vcpu->vmv.kick, ~GMEM_KICK_USER, __ATOMIC_RELAXED);
}

#endif /* GMEM_VCPU_H */
