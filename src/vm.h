/* SPDX-License-Identifier: MIT */
/*
 * The VM object, shared by every subsystem.
 *
 * Locking, outermost first:
 *   vm->lock        serialises VMM-side changes (slots, attributes,
 *                   guest_memfd bindings, punch, close): validation and
 *                   reservation happen under it, so a change either fails
 *                   before its first side effect or cannot fail.
 *   mmu->lock       the invalidation protocol and the stage-2 tables.
 *   vm->state_lock  rwlock: writers hold it only for the commit step of a
 *                   change; the fault path reads slots, attributes and
 *                   guest_memfd state under the read side.
 */
#ifndef GMEM_VM_H
#define GMEM_VM_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include <gmem/gmem.h>

#include "attr.h"
#include "guest_memfd.h"
#include "coalesced.h"
#include "dirty_log.h"
#include "msr_filter.h"
#include "memslot.h"
#include "ioapic.h"
#include "ioeventfd.h"
#include "irq_route.h"
#include "irqfd.h"
#include "lapic.h"
#include "mmu.h"

/*
 * The VM's view of one of its vCPUs: its id and the guest-mode handshake
 * that a TLB shootdown reads (vcpu.h describes the protocol).  The vCPU
 * embeds it; the VM waits on it and never touches the vCPU itself, so
 * the shootdown lives in the VM layer, as kvm_flush_remote_tlbs() does.
 */
enum { GMEM_VCPU_OUTSIDE, GMEM_VCPU_IN_GUEST };

/* Bits of gmem_vm_vcpu.kick. */
#define GMEM_KICK_USER 1  /* gmem_vcpu_kick(): return -EINTR */
#define GMEM_KICK_FLUSH 2 /* a TLB shootdown waits for this vCPU */
#define GMEM_KICK_APIC 4  /* an interrupt came into its local APIC */

struct gmem_vm_vcpu {
	unsigned long id;
	int mode;	   /* atomic: GMEM_VCPU_* */
	uint64_t seen_gen; /* atomic: last flush generation acted on */
	/*
	 * atomic: the 2 MiB guest-physical blocks (hashed to 64 bits, see
	 * gmem_vm_footprint()) the vCPU may hold translations of, in its
	 * TLB or the CPU model's caches.  Set before each stage-2 lookup
	 * that may fill them; cleared only with a full flush.  A shootdown
	 * skips vCPUs whose footprint misses its range.
	 */
	uint64_t footprint;
	int kick; /* atomic: GMEM_KICK_* requests; the CPU polls it */
	/*
	 * A shootdown that spun too long sleeps on @acks (a futex), which
	 * the vCPU bumps, waking @waiters, each time it acknowledges a flush
	 * or leaves guest mode (gmem_vm_vcpu_acked()).
	 */
	unsigned int acks, waiters;
	/* Its dirty ring, which gmem_vm_reset_dirty_rings() resets. */
	struct gmem_dirty_ring ring;
	/* atomic: KVM_REQ_CLOCK_UPDATE, rewrite kvmclock before running */
	int clock_req;
	/* atomic: KVM_KVMCLOCK_CTRL, PVCLOCK_GUEST_STOPPED at that rewrite */
	int clock_stopped_req;
};

/*
 * x86 KVM's vCPU limits with Debian's 6.12 configuration (MAXSMP, so
 * CONFIG_KVM_MAX_NR_VCPUS=4096); ids go up to four times that, since on
 * x86 an id is an APIC id and those are sparse (KVM_VCPU_ID_RATIO).
 */
#define GMEM_MAX_VCPUS 4096
#define GMEM_MAX_VCPU_IDS (4 * GMEM_MAX_VCPUS)

/*
 * The host TSC rate (the CPU model's, X86_TSC_KHZ), and KVM's limit on a
 * guest's with TSC scaling (values must fit a signed int).
 */
#define GMEM_TSC_KHZ 1000000u
#define GMEM_MAX_GUEST_TSC_KHZ 0x7fffffffu

/*
 * The x86 quirks a VM may disable: KVM_X86_VALID_QUIRKS of 6.12 (with
 * TDP, so IGNORE_GUEST_PAT too).  What each is in gmem, quirk on / off:
 *
 *   MISC_ENABLE_NO_MWAIT   on: CPUID.1:ECX.MONITOR is the table's; off:
 *                          it follows IA32_MISC_ENABLE.MWAIT (bit 18),
 *                          whose change then needs SSE3 in CPUID
 *   MWAIT_NEVER_UD_FAULTS  on: MONITOR/MWAIT are NOPs at CPL 0; off:
 *                          #UD without CPUID.1:ECX.MONITOR
 *   FIX_HYPERCALL_INSN     on: the other vendor's VMCALL/VMMCALL is
 *                          overwritten with the native one; off: #UD
 *   OUT_7E_INC_RIP         gmem's RIP is past every OUT during its exit
 *                          (a known difference): as with the quirk on
 *   LINT0_REENABLED        on: the BSP's LVT0 is unmasked ExtINT after
 *                          RESET; off: masked, as the other LVTs
 *   LAPIC_MMIO_HOLE        on: the APIC page of a disabled or x2APIC-mode
 *                          APIC reads all ones and ignores writes; off:
 *                          accesses to it are ordinary MMIO exits
 *   CD_NW_CLEARED, IGNORE_GUEST_PAT
 *                          caching and memory types, which the CPU model
 *                          does not have: no guest-visible effect
 *   SLOT_ZAP_ALL           which stage-2 mappings a slot deletion zaps:
 *                          no guest-visible effect
 *   STUFF_FEATURE_MSRS     the feature MSRs KVM stuffs at vCPU creation
 *                          (ARCH_CAPABILITIES, PERF_CAPABILITIES,
 *                          PLATFORM_INFO's CPUID_FAULT): gmem has none of
 *                          them, and MSR_PLATFORM_INFO reads 0 either way
 *   VMCS12_ALLOW_FREEZE_IN_SMM
 *                          nested VMX, which gmem does not have
 */
#define GMEM_QUIRKS 0x7ffull

struct gmem_vm {
	atomic_int refcount;
	unsigned long type;
	uint64_t supported_attrs;
	bool exec_only;	   /* GMEM_CAP_EXEC_ONLY enabled */
	bool irqchip;	   /* KVM_CREATE_IRQCHIP done; read by vCPUs at HLT */
	bool hlt_in_guest; /* KVM_X86_DISABLE_EXITS_HLT: HLT never exits */
	/* atomic: EXEC_ONLY or XO_ALIAS on, so KVM_MEM_EXECONLY is valid */
	bool execonly_slots;

	pthread_mutex_t lock;
	pthread_rwlock_t state_lock;

	struct gmem_memslots slots;
	struct gmem_ranges attrs;
	uint64_t attrs_seq; /* bumped by every effective attribute change */

	struct gmem_mmu mmu;
	struct gmem_coalesced coalesced; /* the zones and the ring */
	/*
	 * The VM's TSC reference (the TSC reads tsc_ref_base at host time
	 * tsc_ref_ns), under vcpus_lock: 0 at the first vCPU's creation,
	 * moved by a VMM's write of IA32_TSC.  New vCPUs start from it, so
	 * vCPUs created together agree, as KVM's kvm_synchronize_tsc()
	 * matches them.
	 */
	uint64_t tsc_ref_base, tsc_ref_ns;

	/* vCPUs, for TLB shootdown; vcpus_lock nests inside vm->lock. */
	pthread_mutex_t vcpus_lock;
	struct gmem_vm_vcpu **vcpus;
	size_t nr_vcpus, cap_vcpus;
	/* KVM_CAP_MAX_VCPU_ID: 0 until enabled or the first vCPU is made. */
	uint32_t max_vcpu_ids;
	uint32_t bsp_vcpu_id;	  /* KVM_SET_BOOT_CPU_ID, under vcpus_lock */
	uint32_t default_tsc_khz; /* atomic: KVM_SET_TSC_KHZ on the VM */
	/* Accepted and kept, as KVM with TDP and unrestricted guest does. */
	unsigned long nr_mmu_pages;
	uint64_t tss_addr, identity_map_addr;
	bool fault_access_flags; /* atomic: GMEM_CAP_FAULT_ACCESS_FLAGS */
	bool gmem_mmap;		 /* atomic: GMEM_CAP_GUEST_MEMFD_MMAP */
	/*
	 * KVM_CAP_VM_DISABLE_NX_HUGE_PAGES, under vcpus_lock.  gmem has no
	 * iTLB-multihit mitigation (kvm.nx_huge_pages reads N), so executable
	 * huge mappings are never split either way: as in KVM with the
	 * parameter off, the flag changes nothing.
	 */
	bool disable_nx_huge_pages;
	uint64_t xo_bit;	  /* GMEM_CAP_XO_ALIAS: 1 << M, or 0 */
	unsigned int maxphyaddr;  /* M, what CPUID reports, once XO is on */
	uint64_t hypercall_exits; /* KVM_CAP_EXIT_HYPERCALL mask */
	uint64_t gmem_hypercall_exits; /* GMEM_CAP_EXIT_HYPERCALL mask */
	/* atomic: KVM_CAP_MSR_PLATFORM_INFO, true at creation, as KVM */
	bool guest_platform_info;
	bool exit_on_emulation_failure; /* atomic: that capability */
	/* KVM_CAP_DIRTY_LOG_RING: bytes per vCPU, 0 for bitmaps; fixed
	 * before the first vCPU (under vcpus_lock). */
	uint32_t dirty_ring_size;
	/* KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2's flags, under vm->lock. */
	uint64_t manual_dirty_log_protect;
	/* KVM_CAP_X86_USER_SPACE_MSR and KVM_X86_SET_MSR_FILTER */
	struct gmem_msr_filter msr;
	/* The vCPUs' local APICs (with an irqchip), for IPIs. */
	struct gmem_apic_map apics;
	/* KVM_CREATE_IRQCHIP's IOAPIC (used only once irqchip is set). */
	struct gmem_ioapic ioapic;
	/* KVM_IOEVENTFD's addresses and ports. */
	struct gmem_ioeventfds ioeventfds;
	/* KVM_IRQFD's eventfds and their thread. */
	struct gmem_irqfds irqfds;
	/* GSI routing: KVM's default table, or KVM_SET_GSI_ROUTING's. */
	struct gmem_irq_routes routes;
	/* KVM_CAP_X86_APIC_BUS_CYCLES_NS, before the first vCPU. */
	uint64_t apic_bus_cycle_ns;
	/* atomic: KVM_CAP_X2APIC_API's USE_32BIT_IDS */
	bool x2apic_format;
	/* atomic: KVM_CAP_DISABLE_QUIRKS(2), KVM_X86_QUIRK_* turned off */
	uint64_t disabled_quirks;
	/*
	 * kvmclock (kvmclock.c), under vcpus_lock: the clock reads host
	 * monotonic ns + kvmclock_offset (mod 2^64); whether the boot vCPU
	 * (id 0) last enabled it through the old MSR, which makes the clock
	 * unstable, as in KVM.  wall_clock is MSR_KVM_WALL_CLOCK(_NEW),
	 * atomic, one for the VM as KVM keeps it.
	 */
	uint64_t kvmclock_offset;
	bool boot_vcpu_old_kvmclock;
	uint64_t wall_clock;
};

static inline bool gmem_vm_has_private_mem(const struct gmem_vm *vm)
{
	return vm->type == KVM_X86_SW_PROTECTED_VM;
}

/*
 * The guest_memfd flags the VM takes (KVM_CAP_GUEST_MEMFD_FLAGS): 6.18's
 * kvm_gmem_get_supported_flags() once GMEM_CAP_GUEST_MEMFD_MMAP is on;
 * INIT_SHARED only where no memory is private (x86's
 * kvm_arch_supports_gmem_init_shared()).
 */
static inline uint64_t gmem_vm_gmem_flags(const struct gmem_vm *vm)
{
	if (!vm || !__atomic_load_n(&vm->gmem_mmap, __ATOMIC_RELAXED))
		return 0;
	return GUEST_MEMFD_FLAG_MMAP |
	       (gmem_vm_has_private_mem(vm) ? 0
					    : GUEST_MEMFD_FLAG_INIT_SHARED) |
	       (gmem_secretmem_supported() ? GUEST_MEMFD_FLAG_NO_DIRECT_MAP
					   : 0);
}

/* May the VM have guest_memfd (and KVM_MEM_GUEST_MEMFD slots)? */
static inline bool gmem_vm_has_gmem(const struct gmem_vm *vm)
{
	return gmem_vm_has_private_mem(vm) || gmem_vm_gmem_flags(vm);
}

void gmem_vm_get(struct gmem_vm *vm);

/* Wake a shootdown that sleeps on this vCPU (see gmem_vm_vcpu.acks). */
void gmem_vm_vcpu_wake(struct gmem_vm_vcpu *v);

static inline void gmem_vm_vcpu_acked(struct gmem_vm_vcpu *v)
{
	__atomic_fetch_add(&v->acks, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&v->waiters, __ATOMIC_SEQ_CST))
		gmem_vm_vcpu_wake(v);
}

/* The footprint bits of the GFN range [start, end). */
static inline uint64_t gmem_vm_footprint(uint64_t start, uint64_t end)
{
	uint64_t mask = 0;

	if (end - start >= 64ULL << 9)
		return ~0ULL;
	for (uint64_t b = start >> 9; b <= (end - 1) >> 9; b++)
		mask |= 1ULL << (b % 64);
	return mask;
}

/*
 * Bracket an update of the GFN range [start, end) (attributes, a slot, a
 * guest_memfd range): begin zaps stage 2 and shoots down every vCPU TLB
 * that may cache the range before it returns; end lets faults install
 * again.  Cannot fail.  No lock a vCPU needs may be held.
 */
void gmem_vm_invalidate_begin(struct gmem_vm *vm, uint64_t start, uint64_t end);
void gmem_vm_invalidate_end(struct gmem_vm *vm, uint64_t start, uint64_t end);
/* The same bracket over a memslot's whole GFN range. */
void gmem_vm_invalidate_slot_begin(struct gmem_vm *vm,
				   const struct gmem_memslot *s);
void gmem_vm_invalidate_slot_end(struct gmem_vm *vm,
				 const struct gmem_memslot *s);

/*
 * The shootdown (KVM's kvm_flush_remote_tlbs()) of a flush the MMU
 * returned; nothing when @f.gen is 0.  No lock a vCPU needs may be held.
 */
void gmem_vm_flush_tlbs(struct gmem_vm *vm, struct gmem_mmu_flush f);

/* The memory attributes the VM supports (KVM_CAP_MEMORY_ATTRIBUTES). */
uint64_t gmem_vm_supported_attrs(const struct gmem_vm *vm);

/* The GPA that memslot memory at @hva backs: 0, or -ENOENT. */
int gmem_vm_hva_to_gpa(struct gmem_vm *vm, uint64_t hva, uint64_t *gpa);

#endif /* GMEM_VM_H */
