/* SPDX-License-Identifier: MIT */
/*
 * gmem: guest-first VM memory in userspace.
 *
 * The typed API.  Every function that can fail returns 0 (or a
 * non-negative value) on success and a negative errno on failure, and a
 * failing call changes nothing.  The KVM-style façade in <gmem/kvm.h> is a
 * thin layer over these functions.
 *
 * Objects: a VM (struct gmem_vm, reference counted) owns memslots and the
 * memory-attribute map.  guest_memfd files are named by small integer
 * handles from the library's handle table, because memslots refer to them
 * by number exactly as KVM's struct kvm_userspace_memory_region2 does.
 */
#ifndef GMEM_GMEM_H
#define GMEM_GMEM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

#include <gmem/uapi.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GMEM_PAGE_SHIFT 12
#define GMEM_PAGE_SIZE (1ULL << GMEM_PAGE_SHIFT)

struct gmem_vm;

/* ---- system ------------------------------------------------------------ */

/*
 * KVM_CHECK_EXTENSION.  @vm may be NULL for the system-wide answer (what the
 * most capable VM type supports).  Returns the capability's value, 0 when
 * it is not supported.
 */
int gmem_check_extension(struct gmem_vm *vm, long cap);

/* ---- VMs --------------------------------------------------------------- */

/* Create a VM of @type (KVM_X86_DEFAULT_VM or KVM_X86_SW_PROTECTED_VM). */
int gmem_vm_create(unsigned long type, struct gmem_vm **vmp);

/*
 * Drop the caller's reference.  The VM lives on while guest_memfd files
 * created for it are open, as in Linux.
 */
void gmem_vm_put(struct gmem_vm *vm);

/*
 * KVM_ENABLE_CAP on a VM: KVM_CAP_EXIT_HYPERCALL, KVM_CAP_MAX_VCPU_ID (as
 * x86 KVM: args[0] <= 16384, before the first vCPU, or its value again),
 * KVM_CAP_MSR_PLATFORM_INFO (args[0] nonzero: the guest may read
 * MSR_PLATFORM_INFO, as at creation; zero: its RDMSR #GPs),
 * KVM_CAP_EXIT_ON_EMULATION_FAILURE (args[0] 0 or 1: an instruction the
 * CPU model does not implement exits KVM_EXIT_INTERNAL_ERROR with its
 * bytes instead of raising #UD) and gmem's own:
 *   GMEM_CAP_EXEC_ONLY  no arguments: the attribute value NR|NW (exec-only)
 *                       becomes valid, and so does the KVM_MEM_EXECONLY
 *                       slot flag.
 *   GMEM_CAP_XO_ALIAS   args[0] = M, 32..51, before the first vCPU (else
 *                       -EINVAL): vCPUs report MAXPHYADDR M and gpa | 1 << M
 *                       is the execute-only alias of gpa (DESIGN §3.5);
 *                       KVM_MEM_EXECONLY becomes valid.
 *   GMEM_CAP_FAULT_ACCESS_FLAGS  no arguments: memory-fault exits caused
 *                       by an NR/NW/NX attribute carry the denied access
 *                       (KVM_MEMORY_EXIT_FLAG_READ/WRITE/EXEC).
 */
int gmem_vm_enable_cap(struct gmem_vm *vm, const struct kvm_enable_cap *cap);
/*
 * KVM_X86_SET_MSR_FILTER: replace the VM's MSR filter (KVM's checks,
 * -EINVAL/-EFAULT/-ENOMEM with nothing changed); the bitmaps are copied.
 */
int gmem_vm_set_msr_filter(struct gmem_vm *vm,
			   const struct kvm_msr_filter *filter);

/*
 * KVM_CREATE_IRQCHIP: the VM's interrupt controllers are in the library:
 * each vCPU created after it has a local APIC, and HLT is handled inside
 * gmem_vcpu_run() (the vCPU halts until an interrupt, a kick or a signal)
 * instead of exiting with KVM_EXIT_HLT.  The PIC and IOAPIC are not
 * modelled.  -EEXIST the second time, -EINVAL once a vCPU exists.
 */
int gmem_vm_create_irqchip(struct gmem_vm *vm);

/*
 * KVM_IRQ_LINE(_STATUS): GSI @irq->irq to @irq->level on each of its
 * routes (the default table sends GSI n to IOAPIC pin n, 0-23); an MSI
 * route sends on a high level.  @irq->status becomes KVM's: -1 when no
 * route took it (masked, blocked by Remote IRR, taken by no APIC, no
 * route), else the sum over the routes (an IOAPIC pin gives 1, or 0 for
 * an edge line already high; an MSI the APICs that took it).  -ENXIO
 * without an irqchip.
 */
int gmem_vm_irq_line(struct gmem_vm *vm, struct kvm_irq_level *irq);

/*
 * KVM_SET_GSI_ROUTING: the VM's GSI table replaced whole (KVM's
 * kvm_set_irq_routing(), x86's entries: IOAPIC and PIC pins, MSIs).
 * -EINVAL without an irqchip, for flags, more than KVM_MAX_IRQ_ROUTES
 * entries or any entry KVM refuses; PIC routes are kept and reach
 * nothing (the PIC is not modelled).  KVM_IRQ_LINE and irqfds follow it.
 */
int gmem_vm_set_gsi_routing(struct gmem_vm *vm,
			    const struct kvm_irq_routing *routing);

/*
 * KVM_IOEVENTFD: a guest write to args->addr (a port with
 * KVM_IOEVENTFD_FLAG_PIO) of args->len bytes (0: any), with
 * KVM_IOEVENTFD_FLAG_DATAMATCH only of args->datamatch, signals eventfd
 * args->fd instead of exiting.  As KVM: -EINVAL for a length other than
 * 0/1/2/4/8, a wrapping range, unknown flags, DATAMATCH with length 0, a
 * file that is not an eventfd; -EBADF; -EEXIST for one that collides;
 * -ENOSPC past 1000 per bus; DEASSIGN of none is -ENOENT.
 */
int gmem_vm_ioeventfd(struct gmem_vm *vm, const struct kvm_ioeventfd *args);

/*
 * KVM_IRQFD: eventfd args->fd raises GSI args->gsi when signalled (a pulse;
 * with KVM_IRQFD_FLAG_RESAMPLE held high until the guest's EOI of that
 * pin, which then signals args->resamplefd); DEASSIGN removes it.  As KVM:
 * -EAGAIN without an irqchip, -EBADF for a closed fd, -EINVAL for unknown
 * flags or a file that is not an eventfd, -EBUSY for an eventfd already
 * assigned.  A thread of gmem's, started by the first irqfd, waits on
 * them.
 */
int gmem_vm_irqfd(struct gmem_vm *vm, const struct kvm_irqfd *args);

/*
 * KVM_SIGNAL_MSI: deliver one MSI to the local APICs, as KVM's
 * kvm_set_msi(): how many accepted it (0 if none did).  -EINVAL without
 * an irqchip, for flags other than KVM_MSI_VALID_DEVID, or for
 * address_hi bits 7:0 set once KVM_X2APIC_API_USE_32BIT_IDS is on.
 */
int gmem_vm_signal_msi(struct gmem_vm *vm, const struct kvm_msi *msi);

/*
 * KVM_(UN)REGISTER_COALESCED_MMIO: guest writes inside a zone (MMIO, or
 * port I/O with pio = 1) go to the VM's ring, page
 * KVM_COALESCED_MMIO_PAGE_OFFSET of each vCPU's kvm_run mapping, without
 * an exit while it has room.  -EINVAL for pio other than 0 or 1, -ENOSPC
 * past 1000 zones a bus; unregister removes the zones containing the
 * range.
 */
int gmem_vm_register_coalesced_mmio(struct gmem_vm *vm,
				    const struct kvm_coalesced_mmio_zone *zone);
int gmem_vm_unregister_coalesced_mmio(
	struct gmem_vm *vm, const struct kvm_coalesced_mmio_zone *zone);

/*
 * KVM_SET_TSC_KHZ / KVM_GET_TSC_KHZ on the VM: the TSC rate of vCPUs
 * created from now on (0 sets the host's, 1 GHz); -EINVAL at or above
 * 0x7fffffff.  get returns the rate.
 */
int gmem_vm_set_tsc_khz(struct gmem_vm *vm, uint32_t khz);
int gmem_vm_get_tsc_khz(struct gmem_vm *vm);

/*
 * KVM_GET_CLOCK / KVM_SET_CLOCK: the VM's kvmclock in ns.  get fills
 * @data (flags REALTIME | HOST_TSC | TSC_STABLE, with the wall time and
 * host TSC of the reading, while the clock is stable: a vCPU exists and
 * vCPU 0 did not enable kvmclock through the old MSR; else the clock
 * alone).  set takes data->clock, plus the time since data->realtime
 * with KVM_CLOCK_REALTIME; flags beyond those three are -EINVAL.  vCPUs
 * rewrite their kvmclock structure before they next run.
 */
int gmem_vm_get_clock(struct gmem_vm *vm, struct kvm_clock_data *data);
int gmem_vm_set_clock(struct gmem_vm *vm, const struct kvm_clock_data *data);

/*
 * KVM_SET_NR_MMU_PAGES (>= 64, else -EINVAL), KVM_SET_TSS_ADDR (at most
 * 0xffffd000, else -EINVAL) and KVM_SET_IDENTITY_MAP_ADDR (@addr points
 * to it, as the ioctl's argument does: -EINVAL once a vCPU exists, then
 * -EFAULT if NULL).  Accepted with no effect, as KVM does with TDP and
 * unrestricted guest.  KVM_GET_NR_MMU_PAGES is gone from x86 KVM.
 */
int gmem_vm_set_nr_mmu_pages(struct gmem_vm *vm, unsigned long n);
int gmem_vm_set_tss_addr(struct gmem_vm *vm, unsigned long addr);
int gmem_vm_set_identity_map_addr(struct gmem_vm *vm, const uint64_t *addr);

/*
 * KVM_SET_BOOT_CPU_ID: the vCPU id whose IA32_APIC_BASE has the BSP flag
 * (0 by default).  -EBUSY once a vCPU exists; -EINVAL above
 * KVM_CAP_MAX_VCPU_ID's limit (the VM's, once set, else 16384).
 */
int gmem_vm_set_boot_cpu_id(struct gmem_vm *vm, unsigned long id);

/* KVM_SET_USER_MEMORY_REGION (v1 flags only) and ..._REGION2. */
int gmem_vm_set_memory_region(struct gmem_vm *vm,
			      const struct kvm_userspace_memory_region *mem);
int gmem_vm_set_memory_region2(struct gmem_vm *vm,
			       const struct kvm_userspace_memory_region2 *mem);

/*
 * Read back memslot @slot (as_id << 16 | id) as it was set (not a KVM API;
 * for debugging and tests).  -ENOENT if there is no such slot.
 */
int gmem_vm_get_memory_region2(struct gmem_vm *vm, uint32_t slot,
			       struct kvm_userspace_memory_region2 *mem);

/*
 * KVM_SET_MEMORY_ATTRIBUTES.  All-or-nothing; the cost does not depend on
 * the size of the range.  Setting what is already there invalidates nothing.
 */
int gmem_vm_set_memory_attributes(struct gmem_vm *vm,
				  const struct kvm_memory_attributes *attrs);

/* One maximal run of pages with the same non-zero attributes. */
struct gmem_attr_range {
	uint64_t address;
	uint64_t size;
	uint64_t attributes;
};

/*
 * Snapshot of the attribute map over [address, address + size) (not a KVM
 * API; for debugging and tests).  Ranges are clipped to the query, sorted,
 * maximal, and pages whose attributes are 0 are not listed.  Fills at most
 * @nr entries and returns how many there are in all, so a caller whose
 * buffer was too small can retry.  *@seq, if given, receives the change
 * sequence number the snapshot was read at: two snapshots with the same
 * number saw the same map.  Only the range checks of the set call apply
 * (size 0, misalignment or overflow give -EINVAL).
 */
int gmem_vm_get_memory_attributes(struct gmem_vm *vm, uint64_t address,
				  uint64_t size, struct gmem_attr_range *ranges,
				  size_t nr, uint64_t *seq);

/*
 * Dirty logging of KVM_MEM_LOG_DIRTY_PAGES slots, as KVM's ioctls:
 * KVM_GET_DIRTY_LOG copies the slot's bitmap to log->dirty_bitmap and,
 * unless KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 is on, clears it and
 * write-protects the pages it reported; KVM_CLEAR_DIRTY_LOG does that for
 * the pages set in its bitmap.  -ENXIO with dirty rings, -ENOENT for a
 * slot that is not logged, -EFAULT for a bitmap that cannot be copied.
 * KVM_RESET_DIRTY_RINGS frees the entries the VMM marked F_RESET in every
 * vCPU's ring and write-protects their pages: the count freed.
 */
int gmem_vm_get_dirty_log(struct gmem_vm *vm, const struct kvm_dirty_log *log);
int gmem_vm_clear_dirty_log(struct gmem_vm *vm,
			    const struct kvm_clear_dirty_log *log);
int gmem_vm_reset_dirty_rings(struct gmem_vm *vm);

/* ---- guest_memfd ------------------------------------------------------- */

/*
 * KVM_CREATE_GUEST_MEMFD.  Returns a new handle (>= 0).  The file holds a
 * reference to @vm.
 */
int gmem_create_guest_memfd(struct gmem_vm *vm,
			    const struct kvm_create_guest_memfd *args);

/* fallocate(2) on a guest_memfd handle: allocate or punch a hole. */
int gmem_file_fallocate(int fd, int mode, int64_t offset, int64_t len);

/* fstat(2): size, st_blksize 4096, a distinct st_ino per file. */
int gmem_file_stat(int fd, struct stat *st);

/*
 * Test hook: the next guest access to the page at @offset gives a
 * memory-fault exit with -EHWPOISON.  Punching the page clears it.
 */
int gmem_file_poison(int fd, int64_t offset);

/* ---- vCPUs ------------------------------------------------------------ */

struct gmem_vcpu;

/*
 * KVM_CREATE_VCPU.  The vCPU holds a reference to @vm.  As x86 KVM: -EINVAL
 * for an id at or above KVM_CAP_MAX_VCPU_ID's limit or with 4096 vCPUs
 * already, -EEXIST for an id in use.
 */
int gmem_vcpu_create(struct gmem_vm *vm, unsigned long id,
		     struct gmem_vcpu **vcpup);

/*
 * References: gmem_vcpu_create() and gmem_vcpu_from_handle() give the
 * caller one; the vCPU leaves its VM (its id free again) and is freed with
 * the last.  gmem_vcpu_destroy() drops the creator's, as gmem_vcpu_put().
 */
void gmem_vcpu_get(struct gmem_vcpu *vcpu);
void gmem_vcpu_put(struct gmem_vcpu *vcpu);
void gmem_vcpu_destroy(struct gmem_vcpu *vcpu);

/* The vCPU's struct kvm_run, which exits are reported in. */
struct kvm_run *gmem_vcpu_kvm_run(struct gmem_vcpu *vcpu);

/*
 * The vCPU's dirty ring (KVM_CAP_DIRTY_LOG_RING): the entries the drop-in
 * maps at KVM_DIRTY_LOG_PAGE_OFFSET of the vCPU file; NULL if the VM has
 * no rings.  The VMM harvests them as on KVM (F_DIRTY, then F_RESET and
 * gmem_vm_reset_dirty_rings()).
 */
struct kvm_dirty_gfn *gmem_vcpu_dirty_ring(struct gmem_vcpu *vcpu);

/*
 * KVM_RUN: run until an exit.  0 with kvm_run->exit_reason set; -EFAULT or
 * -EHWPOISON with KVM_EXIT_MEMORY_FAULT; -EINTR with KVM_EXIT_INTR when
 * kicked or when kvm_run->immediate_exit becomes set while the guest
 * runs.  Entered with immediate_exit set, it completes what the last exit
 * left pending (IN data, an MMIO access, a hypercall's return value) and
 * returns -EINTR with exit_reason untouched, as KVM does.  As with a
 * userspace LAPIC, kvm_run.cr8 sets CR8 on entry (-EINVAL above 15) and
 * every return leaves cr8, if_flag, apic_base and
 * ready_for_interrupt_injection there.  KVM_CAP_SYNC_REGS as KVM's: the
 * sets kvm_run->kvm_dirty_regs names are loaded from kvm_run->s.regs
 * first (-EINVAL, with that set's bit left set, where KVM_SET_SREGS or
 * KVM_SET_VCPU_EVENTS would refuse it), and every return stores those
 * kvm_valid_regs names there; a bit beyond REGS|SREGS|EVENTS in either
 * word is -EINVAL.
 */
int gmem_vcpu_run(struct gmem_vcpu *vcpu);

/*
 * The guest side of the last memory-fault exit of gmem_vcpu_run(): the
 * linear address the guest accessed and the #PF error code that access
 * would carry (P, W/R, U/S, I/D).  -ENOENT when unknown (the fault came
 * from a guest page-table walk, or no run ended in a memory fault since
 * the last one).  Not a KVM API: it lets a VMM reflect a denied access
 * into the guest as #PF.
 */
int gmem_vcpu_get_fault_linear(struct gmem_vcpu *vcpu, uint64_t *lin,
			       uint32_t *pfec);

/*
 * Queue exception @vector (0-31, not NMI or reserved vectors) for delivery
 * through the guest's IDT at the next gmem_vcpu_run(), like the exception
 * part of KVM_SET_VCPU_EVENTS; for #PF (14), @cr2 becomes CR2.
 */
int gmem_vcpu_inject_exception(struct gmem_vcpu *vcpu, unsigned int vector,
			       bool has_error, uint32_t error, uint64_t cr2);

/* The name of a KVM_EXIT_* reason ("MMIO", ...), or NULL if unknown. */
const char *gmem_exit_name(uint32_t reason);

/* Make a run in progress on another thread return -EINTR promptly. */
void gmem_vcpu_kick(struct gmem_vcpu *vcpu);

/*
 * KVM_PRE_FAULT_MEMORY: map [gpa, gpa + size) in stage 2 as a read fault
 * would, updating @range to what is left.  0 once at least one page is
 * mapped; else -EINVAL (flags, alignment, overflow), -ENOENT (no memslot),
 * -EFAULT/-EHWPOISON with the memory-fault exit in kvm_run (as a fault
 * would give), -EINTR (a kick is pending) or -ENOMEM.
 */
int gmem_vcpu_pre_fault_memory(struct gmem_vcpu *vcpu,
			       struct kvm_pre_fault_memory *range);

/*
 * KVM_GET/SET_REGS, KVM_GET/SET_SREGS, KVM_SET_CPUID2, KVM_GET/SET_MSRS
 * (the latter two return the number of MSRs processed).  KVM_SET_CPUID2
 * after the first KVM_RUN takes only the table already set (else
 * -EINVAL); until a VMM sets one, the CPU model's default table is in
 * effect.
 */
int gmem_vcpu_get_regs(struct gmem_vcpu *vcpu, struct kvm_regs *regs);
int gmem_vcpu_set_regs(struct gmem_vcpu *vcpu, const struct kvm_regs *regs);
int gmem_vcpu_get_sregs(struct gmem_vcpu *vcpu, struct kvm_sregs *sregs);
int gmem_vcpu_set_sregs(struct gmem_vcpu *vcpu, const struct kvm_sregs *sregs);
int gmem_vcpu_set_cpuid(struct gmem_vcpu *vcpu, const struct kvm_cpuid2 *cpuid);
/* KVM_GET_SUPPORTED_CPUID: -E2BIG if cpuid->nent is too small. */
int gmem_get_supported_cpuid(struct kvm_cpuid2 *cpuid);
/*
 * KVM_GET_CPUID2: the table KVM_SET_CPUID2 set (none before that);
 * -E2BIG, nent untouched, if cpuid->nent is too small.
 */
int gmem_vcpu_get_cpuid(struct gmem_vcpu *vcpu, struct kvm_cpuid2 *cpuid);
/*
 * KVM_GET/SET_MP_STATE.  Without the in-kernel irqchip a vCPU is always
 * RUNNABLE, the one state that can be set; with it a HLT makes it HALTED,
 * an AP starts UNINITIALIZED (its KVM_RUN waits for INIT and returns
 * -EAGAIN), and INIT/SIPI IPIs move it through INIT_RECEIVED, as in KVM.
 */
int gmem_vcpu_get_mp_state(struct gmem_vcpu *vcpu, struct kvm_mp_state *mp);
int gmem_vcpu_set_mp_state(struct gmem_vcpu *vcpu,
			   const struct kvm_mp_state *mp);
/*
 * KVM_GET/SET_FPU: x87 and SSE registers, without MXCSR (KVM's layout
 * has the field but neither ioctl uses it).  KVM_GET/SET_XSAVE (and
 * KVM_GET_XSAVE2, the same 4096 bytes): the standard XSAVE image of x87
 * and SSE state; a set is -EINVAL for XSTATE_BV bits beyond x87|SSE, a
 * non-zero XCOMP_BV or reserved header bytes, or reserved MXCSR bits, and
 * a component whose XSTATE_BV bit is clear takes its initial state.
 * KVM_GET/SET_XCRS: XCR0 only, reset to 1 (x87); a set is -EINVAL for
 * flags, more than KVM_MAX_XCRS entries, an XCR0 without x87 or with bits
 * the guest's CPUID leaf 0xD does not allow.
 */
int gmem_vcpu_get_fpu(struct gmem_vcpu *vcpu, struct kvm_fpu *fpu);
int gmem_vcpu_set_fpu(struct gmem_vcpu *vcpu, const struct kvm_fpu *fpu);
int gmem_vcpu_get_xsave(struct gmem_vcpu *vcpu, struct kvm_xsave *xsave);
int gmem_vcpu_set_xsave(struct gmem_vcpu *vcpu, const struct kvm_xsave *xsave);
int gmem_vcpu_get_xcrs(struct gmem_vcpu *vcpu, struct kvm_xcrs *xcrs);
int gmem_vcpu_set_xcrs(struct gmem_vcpu *vcpu, const struct kvm_xcrs *xcrs);
/*
 * KVM_GET/SET_LAPIC: the local APIC's registers (-EINVAL without an
 * irqchip).  In x2APIC mode the ID is the vCPU id, in xAPIC format
 * (shifted left 24) unless KVM_CAP_X2APIC_API's USE_32BIT_IDS is on, in
 * which case a set with another ID is -EINVAL; the TMCCT word is the
 * current count.
 */
int gmem_vcpu_get_lapic(struct gmem_vcpu *vcpu, struct kvm_lapic_state *s);
/*
 * KVM_X86_SETUP_MCE (MCG_CAP: 1-32 banks, KVM_X86_GET_MCE_CAP_SUPPORTED's
 * bits, else -EINVAL) and KVM_X86_SET_MCE (-EINVAL for a bank beyond
 * them or a status without VAL): the error is logged, a UCNA signalled by
 * CMCI, another uncorrected one by #MC, or the vCPU shuts down at its
 * next run when it cannot take #MC (CR4.MCE clear, MCIP set).
 */
int gmem_vcpu_setup_mce(struct gmem_vcpu *vcpu, uint64_t mcg_cap);
/*
 * KVM_INTERRUPT without an irqchip: @irq (-EINVAL from 256) goes in at the
 * next KVM_RUN whatever RFLAGS.IF says; -ENXIO with the in-kernel irqchip.
 * kvm_run.request_interrupt_window then asks for KVM_EXIT_IRQ_WINDOW_OPEN
 * as soon as the guest can take the next one.
 */
int gmem_vcpu_interrupt(struct gmem_vcpu *vcpu, uint32_t irq);
/*
 * KVM_NMI: an NMI for the vCPU, with or without an irqchip, delivered
 * when NMIs are not blocked (the handler's IRET ends the blocking); two
 * can wait, as in KVM.
 */
int gmem_vcpu_nmi(struct gmem_vcpu *vcpu);
/*
 * KVM_KVMCLOCK_CTRL: the VMM paused the guest; the next kvmclock update
 * sets PVCLOCK_GUEST_STOPPED.  -EINVAL while kvmclock is off.
 */
int gmem_vcpu_kvmclock_ctrl(struct gmem_vcpu *vcpu);
/*
 * KVM_ENABLE_CAP on a vCPU: KVM_CAP_ENFORCE_PV_FEATURE_CPUID (args[0]
 * non-zero: the PV MSRs and hypercalls only as the guest's
 * KVM_CPUID_FEATURES leaf offers them, else #GP / -KVM_ENOSYS).
 */
int gmem_vcpu_enable_cap(struct gmem_vcpu *vcpu,
			 const struct kvm_enable_cap *cap);
int gmem_vcpu_set_mce(struct gmem_vcpu *vcpu, const struct kvm_x86_mce *mce);
int gmem_vcpu_set_lapic(struct gmem_vcpu *vcpu,
			const struct kvm_lapic_state *s);
/*
 * KVM_SET_TSC_KHZ / KVM_GET_TSC_KHZ on a vCPU: RDTSC and the TSC MSR
 * count at this rate from now on (0 sets the host's, 1 GHz); -EINVAL at
 * or above 0x7fffffff.
 */
int gmem_vcpu_set_tsc_khz(struct gmem_vcpu *vcpu, uint32_t khz);
int gmem_vcpu_get_tsc_khz(struct gmem_vcpu *vcpu);
int gmem_vcpu_get_msrs(struct gmem_vcpu *vcpu, struct kvm_msrs *msrs);
int gmem_vcpu_set_msrs(struct gmem_vcpu *vcpu, const struct kvm_msrs *msrs);
/*
 * KVM_GET_MSR_INDEX_LIST / KVM_GET_MSR_FEATURE_INDEX_LIST: the MSRs a
 * VMM saves and restores through KVM_GET/SET_MSRS, and the feature MSRs
 * KVM_GET_MSRS reads on /dev/kvm (gmem_get_feature_msrs()).  list->nmsrs
 * is set to the count either way; -E2BIG if it was smaller.
 */
int gmem_get_msr_index_list(struct kvm_msr_list *list);
int gmem_get_msr_feature_index_list(struct kvm_msr_list *list);
int gmem_get_feature_msrs(struct kvm_msrs *msrs);
/*
 * KVM_GET/SET_VCPU_EVENTS: the injected exception or interrupt (the
 * model holds one event).  A set is -EINVAL, changing nothing, where KVM
 * refuses (unknown flags, VALID_PAYLOAD or VALID_TRIPLE_FAULT whose caps
 * are off, an exception vector above 31 or 2, SMM state) and where KVM
 * would keep what gmem does not model: NMI state, an interrupt shadow,
 * an exception and an interrupt at once, a latched INIT with an irqchip.
 * KVM_GET/SET_DEBUGREGS: the guest's DR0-3, DR6, DR7 (its breakpoints
 * work); a set is -EINVAL for flags or DR6/DR7 bits above 31.
 * KVM_SET_GUEST_DEBUG: the VMM's debugger (KVM_GUESTDBG_*: single step,
 * INT3 and hardware breakpoints as KVM_EXIT_DEBUG, #DB/#BP injection,
 * BLOCKIRQ); -EBUSY when an injection finds an exception queued.
 */
int gmem_vcpu_get_vcpu_events(struct gmem_vcpu *vcpu,
			      struct kvm_vcpu_events *events);
int gmem_vcpu_set_vcpu_events(struct gmem_vcpu *vcpu,
			      const struct kvm_vcpu_events *events);
int gmem_vcpu_get_debugregs(struct gmem_vcpu *vcpu, struct kvm_debugregs *dr);
int gmem_vcpu_set_debugregs(struct gmem_vcpu *vcpu,
			    const struct kvm_debugregs *dr);
int gmem_vcpu_set_guest_debug(struct gmem_vcpu *vcpu,
			      const struct kvm_guest_debug *dbg);

/*
 * Guest-physical access through the vCPU's stage 2, as a CPU model makes
 * it: @access is one of GMEM_ACCESS_*, @len bytes at @gpa, any alignment.
 * The whole access is checked before any byte is written.
 *   0                 done (a read filled @buf);
 *   GMEM_VCPU_ACCESS_EXIT  kvm_run describes a KVM_EXIT_MMIO (at most 8 bytes,
 *                     the part of the access in the MMIO page);
 *   GMEM_VCPU_ACCESS_XO    the access read or wrote execute-only memory: the
 *                     CPU model injects #PF (DESIGN §3.5);
 *   -EFAULT/-EHWPOISON kvm_run describes a KVM_EXIT_MEMORY_FAULT.
 * Nothing was read or written unless 0 is returned.
 */
#define GMEM_ACCESS_READ 1
#define GMEM_ACCESS_WRITE 2
#define GMEM_ACCESS_FETCH 4
/* Its results other than 0 and -errno (not access bits). */
#define GMEM_VCPU_ACCESS_EXIT 1
#define GMEM_VCPU_ACCESS_XO 2
int gmem_vcpu_access(struct gmem_vcpu *vcpu, uint64_t gpa, void *buf,
		     size_t len, unsigned int access);

/* Counters, cumulative since creation. */
struct gmem_vm_stats {
	uint64_t faults;	/* stage-2 misses that ran the fault path */
	uint64_t fault_retries; /* faults that raced an invalidation */
	uint64_t map_4k, map_2m, map_1g; /* leaves installed, by size */
	uint64_t invalidations;		 /* invalidate-begin/end sections */
	uint64_t zapped_4k, zapped_2m, zapped_1g; /* leaves removed */
	uint64_t tlb_flush_requests; /* cross-vCPU flushes requested */
};

struct gmem_vcpu_stats {
	uint64_t accesses;
	uint64_t tlb_hits;
	uint64_t tlb_flushes;
	uint64_t faults;
	uint64_t exits_mmio;
	uint64_t exits_memory_fault;
	uint64_t xo_faults;
	uint64_t halts;	      /* HLTs handled in the library (irqchip VMs) */
	uint64_t exits[64];   /* by KVM_EXIT_* reason, for gmem_vcpu_run */
	uint64_t host_faults; /* VMM memory that faulted: -EFAULT */
};

int gmem_vm_get_stats(struct gmem_vm *vm, struct gmem_vm_stats *st);
int gmem_vcpu_get_stats(struct gmem_vcpu *vcpu, struct gmem_vcpu_stats *st);

/* ---- handles ----------------------------------------------------------- */

/*
 * The VM behind a façade VM handle, with a reference taken for the caller
 * (drop it with gmem_vm_put()), so one program can mix both layers.
 * -EBADF if @fd is not open, -EINVAL if it is not a VM.
 */
int gmem_vm_from_handle(int fd, struct gmem_vm **vmp);

/*
 * The vCPU behind a façade vCPU handle, with a reference taken for the
 * caller (drop it with gmem_vcpu_put()), as gmem_vm_from_handle().
 * -EBADF if @fd is not open, -EINVAL if it is not a vCPU.
 */
int gmem_vcpu_from_handle(int fd, struct gmem_vcpu **vcpup);

/* Close any gmem handle (system, VM, vCPU or guest_memfd). */
int gmem_handle_close(int fd);

/* ---- the VMM's own memory ---------------------------------------------- */

/*
 * A memslot's userspace_addr memory is the VMM's: where it is not mapped,
 * is PROT_NONE, or is read-only and the guest writes, the guest's access
 * ends gmem_vcpu_run() (and KVM_RUN) with -EFAULT and a memory-fault exit
 * for the page, as in KVM, instead of a SIGSEGV or SIGBUS in the VMM.  The
 * VMM may repair the mapping and run again: the instruction restarts.
 * gmem catches those faults with process-wide SIGSEGV/SIGBUS handlers,
 * installed at the first gmem_vm_create().  A program that sets its own
 * action for SIGSEGV or SIGBUS after that sets it with gmem_sigaction(),
 * which keeps gmem's handler in front and calls the program's action for
 * every fault that is not gmem's, exactly as the kernel would; other
 * signals pass to sigaction().  Under gmem-run, sigaction() itself does
 * this.  Same arguments and return as sigaction(2).
 */
struct sigaction;
int gmem_sigaction(int sig, const struct sigaction *act,
		   struct sigaction *oact);

/* ---- test hooks -------------------------------------------------------- */

/*
 * Allocation-failure injection: make the @nth allocation from now on (1 is
 * the next one) fail as if memory were exhausted; 0 turns it off.  Returns
 * the number of allocations the library has attempted so far, so a test can
 * count what a call allocates and then fail each of them in turn.
 */
long gmem_test_fail_alloc(long nth);

#ifdef __cplusplus
}
#endif

#endif /* GMEM_GMEM_H */
