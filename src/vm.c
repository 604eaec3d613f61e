// SPDX-License-Identifier: MIT
/*
 * VMs: lifetime, capabilities and memory attributes.
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <sched.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <gmem/gmem.h>

#include "attr.h"
#include "mce.h"
#include "mmu.h"
#include "uaccess.h"
#include "util.h"
#include "vm.h"
#include "x86/x86.h"

#define CAP_SYS_BOOT_ 22 /* <linux/capability.h> */

#define ATTR_RWX                                             \
	(KVM_MEMORY_ATTRIBUTE_NR | KVM_MEMORY_ATTRIBUTE_NW | \
	 KVM_MEMORY_ATTRIBUTE_NX)

/* The IOAPIC's messages go to the local APICs as MSIs do. */
static int ioapic_deliver(void *vm, uint32_t dest, uint32_t lo)
{
	return gmem_apic_map_send_msi(&((struct gmem_vm *)vm)->apics, dest, lo);
}

/* A level pin's EOI: the irqfds that resample the GSI routed to it. */
static void ioapic_ack(void *opaque, unsigned int pin)
{
	struct gmem_vm *vm = opaque;
	int gsi = gmem_irq_routes_pin_gsi(&vm->routes, pin);

	if (gsi >= 0)
		gmem_irqfds_ack(&vm->irqfds, (uint32_t)gsi);
}

static int msi_deliver(struct gmem_vm *vm, uint32_t address_lo,
		       uint32_t address_hi, uint32_t data);

/*
 * kvm_set_irq(): GSI @gsi of @source to @level on each of its routes;
 * KVM's status: -1 when no route took it, else the sum of what took it.
 */
static int set_gsi(struct gmem_vm *vm, uint32_t gsi, unsigned int source,
		   bool level)
{
	struct gmem_irq_route r[GMEM_IRQ_ROUTES_PER_GSI];
	size_t n = gmem_irq_routes_get(&vm->routes, gsi, r);
	int ret = -1;

	for (size_t i = 0; i < n; i++) {
		int s = -1;

		if (r[i].type == KVM_IRQ_ROUTING_MSI)
			/* kvm_set_msi(): only a rising level sends. */
			s = level ? msi_deliver(vm, r[i].lo, r[i].hi, r[i].data)
				  : -1;
		else if (r[i].chip == KVM_IRQCHIP_IOAPIC)
			s = gmem_ioapic_set_irq(&vm->ioapic, r[i].pin, source,
						level);
		/* A PIC route reaches nothing: the PIC is not modelled. */
		if (s >= 0)
			ret = s + (ret < 0 ? 0 : ret);
	}
	return ret;
}

static void irqfd_set_gsi(void *vm, uint32_t gsi, unsigned int source,
			  bool level)
{
	set_gsi(vm, gsi, source, level);
}

int gmem_vm_create(unsigned long type, struct gmem_vm **vmp)
{
	struct gmem_vm *vm;
	int r;

	if (type != KVM_X86_DEFAULT_VM && type != KVM_X86_SW_PROTECTED_VM)
		return -EINVAL;
	/* A bad userspace_addr must end a run with -EFAULT, not SIGSEGV. */
	r = gmem_uaccess_init();
	if (r)
		return r;
	vm = gmem_zalloc(sizeof(*vm));
	if (!vm)
		return -ENOMEM;
	atomic_init(&vm->refcount, 1);
	vm->type = type;
	vm->default_tsc_khz = GMEM_TSC_KHZ;
	vm->guest_platform_info = true;
	/* kvm_arch_init_vm(): the VM's kvmclock starts at 0. */
	vm->kvmclock_offset = -x86_host_ns();
	vm->supported_attrs = ATTR_RWX;
	if (gmem_vm_has_private_mem(vm))
		vm->supported_attrs |= KVM_MEMORY_ATTRIBUTE_PRIVATE;
	if (gmem_mmu_init(&vm->mmu)) {
		gmem_free(vm);
		return -ENOMEM;
	}
	if (gmem_coalesced_init(&vm->coalesced)) {
		gmem_mmu_destroy(&vm->mmu);
		gmem_free(vm);
		return -ENOMEM;
	}
	if (gmem_irq_routes_init(&vm->routes)) {
		gmem_coalesced_destroy(&vm->coalesced);
		gmem_mmu_destroy(&vm->mmu);
		gmem_free(vm);
		return -ENOMEM;
	}
	if (gmem_ioeventfds_init(&vm->ioeventfds)) {
		gmem_irq_routes_destroy(&vm->routes);
		gmem_coalesced_destroy(&vm->coalesced);
		gmem_mmu_destroy(&vm->mmu);
		gmem_free(vm);
		return -ENOMEM;
	}
	gmem_msr_filter_init(&vm->msr);
	gmem_apic_map_init(&vm->apics);
	gmem_ioapic_init(&vm->ioapic,
			 &(struct gmem_ioapic_bus){.deliver = ioapic_deliver,
						   .ack = ioapic_ack,
						   .ctx = vm});
	gmem_irqfds_init(&vm->irqfds, irqfd_set_gsi, vm);
	vm->apic_bus_cycle_ns = 1; /* KVM's APIC_BUS_CYCLE_NS_DEFAULT */
	pthread_mutex_init(&vm->lock, NULL);
	pthread_mutex_init(&vm->vcpus_lock, NULL);
	/*
	 * Writers first: faults retrying against an update in progress
	 * must not starve the update they wait for.
	 */
	pthread_rwlockattr_t ra;
	pthread_rwlockattr_init(&ra);
	pthread_rwlockattr_setkind_np(
		&ra, PTHREAD_RWLOCK_PREFER_WRITER_NONRECURSIVE_NP);
	pthread_rwlock_init(&vm->state_lock, &ra);
	pthread_rwlockattr_destroy(&ra);
	gmem_ranges_init(&vm->attrs);
	*vmp = vm;
	return 0;
}

void gmem_vm_get(struct gmem_vm *vm)
{
	atomic_fetch_add(&vm->refcount, 1);
}

void gmem_vm_put(struct gmem_vm *vm)
{
	if (!vm || atomic_fetch_sub(&vm->refcount, 1) != 1)
		return;
	gmem_mmu_destroy(&vm->mmu);
	gmem_coalesced_destroy(&vm->coalesced);
	gmem_msr_filter_destroy(&vm->msr);
	gmem_irqfds_destroy(&vm->irqfds);
	gmem_ioapic_destroy(&vm->ioapic);
	gmem_irq_routes_destroy(&vm->routes);
	gmem_ioeventfds_destroy(&vm->ioeventfds);
	gmem_apic_map_destroy(&vm->apics);
	gmem_memslots_destroy(&vm->slots);
	gmem_ranges_destroy(&vm->attrs);
	gmem_free(vm->vcpus);
	pthread_rwlock_destroy(&vm->state_lock);
	pthread_mutex_destroy(&vm->vcpus_lock);
	pthread_mutex_destroy(&vm->lock);
	gmem_free(vm);
}

uint64_t gmem_vm_supported_attrs(const struct gmem_vm *vm)
{
	/* The system handle answers for the most capable VM type. */
	return vm ? vm->supported_attrs
		  : ATTR_RWX | KVM_MEMORY_ATTRIBUTE_PRIVATE;
}

int gmem_check_extension(struct gmem_vm *vm, long cap)
{
	switch (cap) {
	case KVM_CAP_IRQCHIP:
	case KVM_CAP_SIGNAL_MSI:
	case KVM_CAP_IRQ_INJECT_STATUS:
	case KVM_CAP_IRQFD:
	case KVM_CAP_IOEVENTFD:
	case KVM_CAP_IOEVENTFD_NO_LENGTH:
	case KVM_CAP_IRQFD_RESAMPLE:
	case KVM_CAP_TSC_DEADLINE_TIMER:
	case KVM_CAP_BINARY_STATS_FD:
	case KVM_CAP_PRE_FAULT_MEMORY:
	case KVM_CAP_COALESCED_PIO:
	case KVM_CAP_USER_MEMORY:
	case KVM_CAP_USER_MEMORY2:
	case KVM_CAP_READONLY_MEM:
	case KVM_CAP_MEMORY_FAULT_INFO:
	case KVM_CAP_VM_DISABLE_NX_HUGE_PAGES:
	case KVM_CAP_IMMEDIATE_EXIT:
	case GMEM_CAP_EXEC_ONLY:
	case GMEM_CAP_XO_ALIAS:
	case GMEM_CAP_EXIT_HYPERCALL:
	case GMEM_CAP_FAULT_ACCESS_FLAGS:
	case GMEM_CAP_GUEST_MEMFD_MMAP:
	case KVM_CAP_CHECK_EXTENSION_VM:
	case KVM_CAP_ENABLE_CAP_VM:
	case KVM_CAP_GET_TSC_KHZ:
	case KVM_CAP_MP_STATE:
	case KVM_CAP_USER_NMI:
	case KVM_CAP_SET_TSS_ADDR:
	case KVM_CAP_SET_IDENTITY_MAP_ADDR:
	case KVM_CAP_SET_BOOT_CPU_ID:
	case KVM_CAP_MSR_PLATFORM_INFO:
	case KVM_CAP_EXIT_ON_EMULATION_FAILURE:
	case KVM_CAP_X86_USER_SPACE_MSR:
	case KVM_CAP_X86_MSR_FILTER:
	case KVM_CAP_MMU_SHADOW_CACHE_CONTROL:
	case KVM_CAP_EXT_CPUID: /* KVM_GET_SUPPORTED_CPUID, KVM_SET_CPUID2 */
	case KVM_CAP_XSAVE:	/* KVM_GET/SET_XSAVE */
	case KVM_CAP_XCRS:	/* as on a host with XSAVE */
	case KVM_CAP_VCPU_EVENTS:
	case KVM_CAP_DEBUGREGS:
	case KVM_CAP_SET_GUEST_DEBUG:  /* single-step, HW and SW breakpoints */
	case KVM_CAP_GET_MSR_FEATURES: /* KVM_GET_MSRS on /dev/kvm */
	case KVM_CAP_DISABLE_QUIRKS:
	case KVM_CAP_ENFORCE_PV_FEATURE_CPUID:
	case KVM_CAP_KVMCLOCK_CTRL:
	/* As with TDP: guest MAXPHYADDR below the host's (paging.c). */
	case KVM_CAP_SMALLER_MAXPHYADDR:
		return 1;
	case KVM_CAP_DISABLE_QUIRKS2:
		return (int)GMEM_QUIRKS;
	case KVM_CAP_SET_GUEST_DEBUG2:
		return (int)KVM_GUESTDBG_VALID_MASK;
	case KVM_CAP_X86_DISABLE_EXITS:
		/*
		 * The CPU model never exits for PAUSE; HLT can stay in the
		 * guest.  MWAIT (no host MWAIT in the guest) and CSTATE (no
		 * residency MSRs to pass through) are not offered.
		 */
		return KVM_X86_DISABLE_EXITS_HLT | KVM_X86_DISABLE_EXITS_PAUSE;
	case KVM_CAP_ADJUST_CLOCK:
		return KVM_CLOCK_TSC_STABLE | KVM_CLOCK_REALTIME |
		       KVM_CLOCK_HOST_TSC;
	case KVM_CAP_XSAVE2:
		/* x87, SSE and YMM need 832 bytes; KVM never answers below
		 * 4096. */
		return (int)sizeof(struct kvm_xsave);
	case KVM_CAP_TSC_CONTROL:
	case KVM_CAP_VM_TSC_CONTROL:
		return 1; /* as on a host with TSC scaling */
	case KVM_CAP_COALESCED_MMIO:
		return KVM_COALESCED_MMIO_PAGE_OFFSET;
	case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2:
		return KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
		       KVM_DIRTY_LOG_INITIALLY_SET;
	case KVM_CAP_DIRTY_LOG_RING:
	case KVM_CAP_DIRTY_LOG_RING_ACQ_REL:
		/* x86 has both: the ring's bytes at most. */
		return GMEM_DIRTY_RING_MAX * (int)sizeof(struct kvm_dirty_gfn);
	case KVM_CAP_MCE:
		return GMEM_MCE_MAX_BANKS;
	case KVM_CAP_IRQ_ROUTING:
		return KVM_MAX_IRQ_ROUTES;
	case KVM_CAP_X2APIC_API:
		return (int)(KVM_X2APIC_API_USE_32BIT_IDS |
			     KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK);
	case KVM_CAP_X86_APIC_BUS_CYCLES_NS:
		return 1; /* the default: a 1 GHz bus */
	case KVM_CAP_SYNC_REGS:
		/* Both VM types: neither has protected state. */
		return KVM_SYNC_X86_VALID_FIELDS;
	case KVM_CAP_NR_MEMSLOTS:
		return 32764;
	case KVM_CAP_NR_VCPUS: {
		/* The recommended maximum: one vCPU per host CPU. */
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		return n < 1 ? 1 : n > GMEM_MAX_VCPUS ? GMEM_MAX_VCPUS : (int)n;
	}
	case KVM_CAP_MAX_VCPUS:
		return GMEM_MAX_VCPUS;
	case KVM_CAP_MAX_VCPU_ID:
		/* x86 answers the global limit, whatever the VM enabled. */
		return GMEM_MAX_VCPU_IDS;
	case KVM_CAP_MEMORY_ATTRIBUTES:
		return (int)gmem_vm_supported_attrs(vm);
	case KVM_CAP_GUEST_MEMFD:
		return !vm || gmem_vm_has_gmem(vm);
	case KVM_CAP_GUEST_MEMFD_FLAGS:
		return (int)gmem_vm_gmem_flags(vm);
	case KVM_CAP_EXIT_HYPERCALL:
		return 1 << KVM_HC_MAP_GPA_RANGE;
	case KVM_CAP_VM_TYPES:
		return 1 << KVM_X86_DEFAULT_VM | 1 << KVM_X86_SW_PROTECTED_VM;
	default:
		return 0;
	}
}

/* capable(CAP_SYS_BOOT): in the effective set of this process. */
static bool has_sys_boot(void)
{
	struct {
		uint32_t version;
		int pid;
	} hdr = {0x20080522, 0}; /* _LINUX_CAPABILITY_VERSION_3 */
	struct {
		uint32_t effective, permitted, inheritable;
	} data[2] = {{0}};

	if (syscall(SYS_capget, &hdr, data))
		return false;
	return data[CAP_SYS_BOOT_ / 32].effective &
	       (1U << (CAP_SYS_BOOT_ % 32));
}

int gmem_vm_enable_cap(struct gmem_vm *vm, const struct kvm_enable_cap *cap)
{
	int r = -EINVAL;

	switch (cap->cap) {
	case KVM_CAP_DISABLE_QUIRKS2:
		if (cap->flags || (cap->args[0] & ~(uint64_t)GMEM_QUIRKS))
			return -EINVAL;
		__atomic_fetch_or(&vm->disabled_quirks, cap->args[0],
				  __ATOMIC_RELAXED);
		return 0;
	case KVM_CAP_DISABLE_QUIRKS:
		/* The old one ignores what it does not know. */
		if (cap->flags)
			return -EINVAL;
		__atomic_fetch_or(&vm->disabled_quirks,
				  cap->args[0] & (uint64_t)GMEM_QUIRKS,
				  __ATOMIC_RELAXED);
		return 0;
	case GMEM_CAP_EXEC_ONLY:
		if (cap->flags || cap->args[0] || cap->args[1] ||
		    cap->args[2] || cap->args[3])
			return -EINVAL;
		pthread_mutex_lock(&vm->lock);
		vm->exec_only = true;
		pthread_mutex_unlock(&vm->lock);
		__atomic_store_n(&vm->execonly_slots, true, __ATOMIC_RELAXED);
		return 0;
	case GMEM_CAP_XO_ALIAS:
		/*
		 * args[0] is the MAXPHYADDR M the guest is told; bit M of its
		 * PTEs then selects the execute-only alias.  vCPUs read it at
		 * creation, so, as for many KVM capabilities, it must come
		 * before the first one.
		 */
		if (cap->flags || cap->args[0] < 32 || cap->args[0] > 51 ||
		    cap->args[1] || cap->args[2] || cap->args[3])
			return -EINVAL;
		pthread_mutex_lock(&vm->vcpus_lock);
		if (vm->nr_vcpus) {
			pthread_mutex_unlock(&vm->vcpus_lock);
			return -EINVAL;
		}
		vm->maxphyaddr = (unsigned int)cap->args[0];
		vm->xo_bit = 1ULL << cap->args[0];
		pthread_mutex_unlock(&vm->vcpus_lock);
		__atomic_store_n(&vm->execonly_slots, true, __ATOMIC_RELAXED);
		return 0;
	case KVM_CAP_X2APIC_API:
		if (cap->args[0] & ~(KVM_X2APIC_API_USE_32BIT_IDS |
				     KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK))
			return -EINVAL;
		if (cap->args[0] & KVM_X2APIC_API_USE_32BIT_IDS)
			__atomic_store_n(&vm->x2apic_format, true,
					 __ATOMIC_RELAXED);
		return 0;
	case KVM_CAP_X86_APIC_BUS_CYCLES_NS:
		/* tmict_to_ns() must not overflow at TMICT ~0 and divide 128.
		 */
		if (!cap->args[0] ||
		    cap->args[0] > UINT64_MAX / (128ULL * UINT32_MAX))
			return -EINVAL;
		pthread_mutex_lock(&vm->vcpus_lock);
		if (!vm->irqchip)
			r = -ENXIO;
		else if (vm->nr_vcpus)
			r = -EINVAL;
		else {
			vm->apic_bus_cycle_ns = cap->args[0];
			r = 0;
		}
		pthread_mutex_unlock(&vm->vcpus_lock);
		return r;
	case KVM_CAP_EXIT_HYPERCALL:
		if (cap->flags ||
		    (cap->args[0] & ~(1ULL << KVM_HC_MAP_GPA_RANGE)))
			return -EINVAL;
		__atomic_store_n(&vm->hypercall_exits, cap->args[0],
				 __ATOMIC_RELAXED);
		return 0;
	case KVM_CAP_VM_DISABLE_NX_HUGE_PAGES:
		/*
		 * As x86.c: CAP_SYS_BOOT (the risk is the host's), no
		 * argument, before the first vCPU.  Flags are not looked at.
		 */
		if (!has_sys_boot())
			return -EPERM;
		if (cap->args[0])
			return -EINVAL;
		pthread_mutex_lock(&vm->vcpus_lock);
		if (!vm->nr_vcpus) {
			vm->disable_nx_huge_pages = true;
			r = 0;
		}
		pthread_mutex_unlock(&vm->vcpus_lock);
		return r;
	case KVM_CAP_X86_DISABLE_EXITS:
		/*
		 * As 6.12's x86.c: any time, only the valid bits; what the
		 * host cannot do (MWAIT, CSTATE here) is left out quietly.
		 */
		if (cap->flags || (cap->args[0] & ~KVM_X86_DISABLE_VALID_EXITS))
			return -EINVAL;
		if (cap->args[0] & KVM_X86_DISABLE_EXITS_HLT)
			__atomic_store_n(&vm->hlt_in_guest, true,
					 __ATOMIC_RELAXED);
		return 0;
	case KVM_CAP_MSR_PLATFORM_INFO:
		/* args[0]: may the guest read MSR_PLATFORM_INFO.  Any time. */
		if (cap->flags)
			return -EINVAL;
		__atomic_store_n(&vm->guest_platform_info, cap->args[0] != 0,
				 __ATOMIC_RELAXED);
		return 0;
	case KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2: {
		/* INITIALLY_SET only with the protection it qualifies. */
		uint64_t allowed = KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE;

		if (cap->args[0] & KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE)
			allowed |= KVM_DIRTY_LOG_INITIALLY_SET;
		if (cap->flags || (cap->args[0] & ~allowed))
			return -EINVAL;
		pthread_mutex_lock(&vm->lock);
		vm->manual_dirty_log_protect = cap->args[0];
		pthread_mutex_unlock(&vm->lock);
		return 0;
	}
	case KVM_CAP_DIRTY_LOG_RING:
	case KVM_CAP_DIRTY_LOG_RING_ACQ_REL:
		/* KVM takes the size as a u32. */
		return gmem_vm_enable_dirty_ring(vm, (uint32_t)cap->args[0]);
	case KVM_CAP_EXIT_ON_EMULATION_FAILURE:
		if (cap->flags || (cap->args[0] & ~1ULL))
			return -EINVAL;
		__atomic_store_n(&vm->exit_on_emulation_failure,
				 cap->args[0] != 0, __ATOMIC_RELAXED);
		return 0;
	case KVM_CAP_X86_USER_SPACE_MSR:
		/* Which refused RDMSR/WRMSR exit, any time (KVM's rule). */
		if (cap->flags ||
		    (cap->args[0] & ~(uint64_t)KVM_MSR_EXIT_REASON_VALID_MASK))
			return -EINVAL;
		__atomic_store_n(&vm->msr.exit_mask, cap->args[0],
				 __ATOMIC_RELAXED);
		return 0;
	case GMEM_CAP_FAULT_ACCESS_FLAGS:
	case GMEM_CAP_GUEST_MEMFD_MMAP:
		if (cap->flags || cap->args[0] || cap->args[1] ||
		    cap->args[2] || cap->args[3])
			return -EINVAL;
		__atomic_store_n(cap->cap == GMEM_CAP_GUEST_MEMFD_MMAP
					 ? &vm->gmem_mmap
					 : &vm->fault_access_flags,
				 true, __ATOMIC_RELAXED);
		return 0;
	case KVM_CAP_MAX_VCPU_ID:
		/*
		 * As x86.c: only lowers the limit before the first vCPU
		 * (which fixes it), and setting the same value again is
		 * fine.  It may not go below the BSP's id
		 * (KVM_SET_BOOT_CPU_ID), as KVM checks it against the limit.
		 */
		if (cap->flags || cap->args[0] > GMEM_MAX_VCPU_IDS)
			return -EINVAL;
		pthread_mutex_lock(&vm->vcpus_lock);
		if (vm->bsp_vcpu_id > cap->args[0]) {
			/* -EINVAL */
		} else if (vm->max_vcpu_ids == cap->args[0]) {
			r = 0;
		} else if (!vm->max_vcpu_ids) {
			vm->max_vcpu_ids = (uint32_t)cap->args[0];
			r = 0;
		}
		pthread_mutex_unlock(&vm->vcpus_lock);
		return r;
	case GMEM_CAP_EXIT_HYPERCALL:
		/* Any of the 64 numbers: the library does not interpret them.
		 */
		if (cap->flags || cap->args[1] || cap->args[2] || cap->args[3])
			return -EINVAL;
		__atomic_store_n(&vm->gmem_hypercall_exits, cap->args[0],
				 __ATOMIC_RELAXED);
		return 0;
	default:
		return -EINVAL;
	}
}

int gmem_vm_register_coalesced_mmio(struct gmem_vm *vm,
				    const struct kvm_coalesced_mmio_zone *zone)
{
	return gmem_coalesced_register(&vm->coalesced, zone);
}

int gmem_vm_unregister_coalesced_mmio(
	struct gmem_vm *vm, const struct kvm_coalesced_mmio_zone *zone)
{
	return gmem_coalesced_unregister(&vm->coalesced, zone);
}

int gmem_vm_create_irqchip(struct gmem_vm *vm)
{
	int r = 0;

	/* vcpus_lock orders this against gmem_vcpu_create(), as kvm->lock. */
	pthread_mutex_lock(&vm->vcpus_lock);
	if (vm->irqchip)
		r = -EEXIST;
	else if (vm->nr_vcpus)
		r = -EINVAL;
	else
		__atomic_store_n(&vm->irqchip, true, __ATOMIC_RELAXED);
	pthread_mutex_unlock(&vm->vcpus_lock);
	return r;
}

int gmem_vm_irq_line(struct gmem_vm *vm, struct kvm_irq_level *irq)
{
	if (!__atomic_load_n(&vm->irqchip, __ATOMIC_RELAXED))
		return -ENXIO;
	irq->status =
		set_gsi(vm, irq->irq, GMEM_IOAPIC_SRC_USER, irq->level != 0);
	return 0;
}

int gmem_vm_ioeventfd(struct gmem_vm *vm, const struct kvm_ioeventfd *args)
{
	return gmem_ioeventfds_ioctl(&vm->ioeventfds, args);
}

int gmem_vm_irqfd(struct gmem_vm *vm, const struct kvm_irqfd *args)
{
	return gmem_irqfds_ioctl(
		&vm->irqfds, args,
		__atomic_load_n(&vm->irqchip, __ATOMIC_RELAXED));
}

/* kvm_set_msi_irq() and the delivery: how many APICs took it. */
static int msi_deliver(struct gmem_vm *vm, uint32_t address_lo,
		       uint32_t address_hi, uint32_t data)
{
	uint32_t dest = (address_lo >> 12) & 0xff, lo;

	/* The 32-bit format carries destination bits 31:8 in address_hi. */
	if (__atomic_load_n(&vm->x2apic_format, __ATOMIC_RELAXED))
		dest |= address_hi & 0xffffff00u;
	/* The data word is the ICR's, asserted. */
	lo = (data & 0xff) | (data & 0x700) | ((address_lo & 4) << 9) |
	     (1u << 14) | (data & 0x8000);
	return gmem_apic_map_send_msi(&vm->apics, dest, lo);
}

int gmem_vm_signal_msi(struct gmem_vm *vm, const struct kvm_msi *msi)
{
	bool x2 = __atomic_load_n(&vm->x2apic_format, __ATOMIC_RELAXED);

	/* kvm_send_userspace_msi(), then kvm_msi_route_invalid(). */
	if (!__atomic_load_n(&vm->irqchip, __ATOMIC_RELAXED) ||
	    (msi->flags & ~KVM_MSI_VALID_DEVID))
		return -EINVAL;
	if (x2 && (msi->address_hi & 0xff))
		return -EINVAL;
	return msi_deliver(vm, msi->address_lo, msi->address_hi, msi->data);
}

int gmem_vm_set_gsi_routing(struct gmem_vm *vm,
			    const struct kvm_irq_routing *routing)
{
	/* kvm_arch_can_set_irq_routing(), then the header's checks. */
	if (!__atomic_load_n(&vm->irqchip, __ATOMIC_RELAXED) ||
	    routing->nr > KVM_MAX_IRQ_ROUTES || routing->flags)
		return -EINVAL;
	return gmem_irq_routes_set(
		&vm->routes, routing->entries, routing->nr,
		__atomic_load_n(&vm->x2apic_format, __ATOMIC_RELAXED));
}

/* The VM-wide default for vCPUs created from now on. */
int gmem_vm_set_tsc_khz(struct gmem_vm *vm, uint32_t khz)
{
	if (khz >= GMEM_MAX_GUEST_TSC_KHZ)
		return -EINVAL;
	__atomic_store_n(&vm->default_tsc_khz, khz ? khz : GMEM_TSC_KHZ,
			 __ATOMIC_RELAXED);
	return 0;
}

int gmem_vm_get_tsc_khz(struct gmem_vm *vm)
{
	return (int)__atomic_load_n(&vm->default_tsc_khz, __ATOMIC_RELAXED);
}

/*
 * The x86 setup calls with nothing behind them here, as in KVM with
 * TDP: the shadow-page limit binds only shadow paging, and with
 * unrestricted guest VMX needs no real-mode TSS or identity map.  Their
 * checks are KVM's.
 */
int gmem_vm_set_nr_mmu_pages(struct gmem_vm *vm, unsigned long n)
{
	if (n < 64) /* KVM_MIN_ALLOC_MMU_PAGES */
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	vm->nr_mmu_pages = n;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int gmem_vm_set_tss_addr(struct gmem_vm *vm, unsigned long addr)
{
	/* The TSS takes three pages below 4 GiB. */
	if (addr > 0xffffd000UL)
		return -EINVAL;
	pthread_mutex_lock(&vm->lock);
	vm->tss_addr = addr;
	pthread_mutex_unlock(&vm->lock);
	return 0;
}

int gmem_vm_set_boot_cpu_id(struct gmem_vm *vm, unsigned long id)
{
	int r = 0;

	/*
	 * As KVM: an id equal to the limit passes, though no vCPU can have
	 * it (the VM then has no BSP).
	 */
	pthread_mutex_lock(&vm->vcpus_lock);
	if (vm->nr_vcpus)
		r = -EBUSY;
	else if (id > GMEM_MAX_VCPU_IDS ||
		 (vm->max_vcpu_ids && id > vm->max_vcpu_ids))
		r = -EINVAL;
	else
		vm->bsp_vcpu_id = (uint32_t)id;
	pthread_mutex_unlock(&vm->vcpus_lock);
	return r;
}

int gmem_vm_set_identity_map_addr(struct gmem_vm *vm, const uint64_t *addr)
{
	int r = 0;

	/* Refused once a vCPU exists, before the argument is read. */
	pthread_mutex_lock(&vm->vcpus_lock);
	if (vm->nr_vcpus)
		r = -EINVAL;
	else if (!addr)
		r = -EFAULT;
	else
		vm->identity_map_addr = *addr;
	pthread_mutex_unlock(&vm->vcpus_lock);
	return r;
}

/* Spins before a shootdown sleeps: a running vCPU answers within this. */
#define ACK_SPINS 2000

static bool acked(struct gmem_vm_vcpu *v, uint64_t gen)
{
	return __atomic_load_n(&v->mode, __ATOMIC_SEQ_CST) !=
		       GMEM_VCPU_IN_GUEST ||
	       __atomic_load_n(&v->seen_gen, __ATOMIC_SEQ_CST) >= gen;
}

void gmem_vm_vcpu_wake(struct gmem_vm_vcpu *v)
{
	syscall(SYS_futex, &v->acks, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL,
		0);
}

/*
 * Wait for @v to acknowledge flush @gen or leave guest mode: a short spin
 * (it is polling for the kick), then sleep on its acks.  Reading acks
 * before the check and sleeping only while it is unchanged closes the
 * window with gmem_vm_vcpu_acked(), which bumps it after its store.
 */
static void wait_ack(struct gmem_vm_vcpu *v, uint64_t gen)
{
	for (int i = 0; i < ACK_SPINS; i++) {
		if (acked(v, gen))
			return;
		__builtin_ia32_pause();
	}
	for (;;) {
		unsigned int a = __atomic_load_n(&v->acks, __ATOMIC_SEQ_CST);

		__atomic_fetch_add(&v->waiters, 1, __ATOMIC_SEQ_CST);
		if (!acked(v, gen))
			syscall(SYS_futex, &v->acks, FUTEX_WAIT_PRIVATE, a,
				NULL, NULL, 0);
		__atomic_fetch_sub(&v->waiters, 1, __ATOMIC_SEQ_CST);
		if (acked(v, gen))
			return;
	}
}

/*
 * The shootdown (KVM's kvm_flush_remote_tlbs()): wait until every vCPU in
 * guest mode whose footprint meets @mask has acknowledged flush
 * generation @gen.  Stage 2 is already zapped.
 */
static void flush_tlbs(struct gmem_vm *vm, uint64_t gen, uint64_t mask)
{
	/* Dekker, flusher's side: the zap before the footprints (vcpu.h). */
	__atomic_thread_fence(__ATOMIC_SEQ_CST);
	pthread_mutex_lock(&vm->vcpus_lock);
	for (size_t i = 0; i < vm->nr_vcpus; i++) {
		struct gmem_vm_vcpu *v = vm->vcpus[i];

		/*
		 * Every vCPU behind is asked to catch up (the CPU model polls
		 * this between instructions), so that none falls so far
		 * behind the flush log that it must drop everything.
		 */
		if (__atomic_load_n(&v->mode, __ATOMIC_SEQ_CST) ==
			    GMEM_VCPU_IN_GUEST &&
		    __atomic_load_n(&v->seen_gen, __ATOMIC_ACQUIRE) < gen)
			__atomic_fetch_or(&v->kick, GMEM_KICK_FLUSH,
					  __ATOMIC_SEQ_CST);
		/* But one that caches nothing of the range is not waited for.
		 */
		if (!(__atomic_load_n(&v->footprint, __ATOMIC_SEQ_CST) & mask))
			continue;
		wait_ack(v, gen);
	}
	pthread_mutex_unlock(&vm->vcpus_lock);
}

void gmem_vm_flush_tlbs(struct gmem_vm *vm, struct gmem_mmu_flush f)
{
	if (!f.gen)
		return;
	flush_tlbs(vm, f.gen, f.mask);
	gmem_mmu_reclaim(vm, f.retired);
}

void gmem_vm_invalidate_begin(struct gmem_vm *vm, uint64_t start, uint64_t end)
{
	gmem_vm_flush_tlbs(vm, gmem_mmu_invalidate_begin(vm, start, end));
}

void gmem_vm_invalidate_end(struct gmem_vm *vm, uint64_t start, uint64_t end)
{
	gmem_mmu_invalidate_end(vm, start, end);
}

void gmem_vm_invalidate_slot_begin(struct gmem_vm *vm,
				   const struct gmem_memslot *s)
{
	gmem_vm_invalidate_begin(vm, s->base_gfn, s->base_gfn + s->npages);
}

void gmem_vm_invalidate_slot_end(struct gmem_vm *vm,
				 const struct gmem_memslot *s)
{
	gmem_vm_invalidate_end(vm, s->base_gfn, s->base_gfn + s->npages);
}

/* KVM's range checks, shared by set and the snapshot query. */
static int check_range(uint64_t address, uint64_t size)
{
	if (size == 0 || address + size < address)
		return -EINVAL;
	if (!PAGE_ALIGNED(address) || !PAGE_ALIGNED(size))
		return -EINVAL;
	return 0;
}

int gmem_vm_set_memory_attributes(struct gmem_vm *vm,
				  const struct kvm_memory_attributes *attrs)
{
	uint64_t start = attrs->address >> PAGE_SHIFT;
	uint64_t end = start + (attrs->size >> PAGE_SHIFT);
	int r;

	if (attrs->flags)
		return -EINVAL;
	if (attrs->attributes & ~vm->supported_attrs)
		return -EINVAL;
	r = check_range(attrs->address, attrs->size);
	if (r)
		return r;

	pthread_mutex_lock(&vm->lock);
	if (!gmem_attr_valid(attrs->attributes, vm->supported_attrs,
			     vm->exec_only)) {
		r = -EINVAL;
		goto out;
	}
	/* Setting what is already there changes and invalidates nothing. */
	if (gmem_ranges_is_uniform(&vm->attrs, start, end, attrs->attributes))
		goto out;
	r = gmem_ranges_reserve(&vm->attrs);
	if (r)
		goto out;

	gmem_vm_invalidate_begin(vm, start, end);
	pthread_rwlock_wrlock(&vm->state_lock);
	gmem_ranges_store(&vm->attrs, start, end, attrs->attributes);
	vm->attrs_seq++;
	pthread_rwlock_unlock(&vm->state_lock);
	gmem_vm_invalidate_end(vm, start, end);
out:
	pthread_mutex_unlock(&vm->lock);
	return r;
}

struct snapshot {
	struct gmem_attr_range *ranges;
	size_t nr, count;
};

static void snapshot_one(void *arg, uint64_t start, uint64_t end, uint64_t val)
{
	struct snapshot *s = arg;

	if (s->count < s->nr)
		s->ranges[s->count] = (struct gmem_attr_range){
			.address = start << PAGE_SHIFT,
			.size = (end - start) << PAGE_SHIFT,
			.attributes = val,
		};
	s->count++;
}

int gmem_vm_get_memory_attributes(struct gmem_vm *vm, uint64_t address,
				  uint64_t size, struct gmem_attr_range *ranges,
				  size_t nr, uint64_t *seq)
{
	struct snapshot s = {.ranges = ranges, .nr = nr};
	uint64_t start = address >> PAGE_SHIFT;
	int r = check_range(address, size);

	if (r)
		return r;
	pthread_rwlock_rdlock(&vm->state_lock);
	gmem_ranges_for_each(&vm->attrs, start, start + (size >> PAGE_SHIFT),
			     snapshot_one, &s);
	if (seq)
		*seq = vm->attrs_seq;
	pthread_rwlock_unlock(&vm->state_lock);
	return s.count > INT32_MAX ? INT32_MAX : (int)s.count;
}

int gmem_vm_hva_to_gpa(struct gmem_vm *vm, uint64_t hva, uint64_t *gpa)
{
	struct gmem_memslot *slot;
	int r = -ENOENT;

	pthread_rwlock_rdlock(&vm->state_lock);
	slot = gmem_memslots_find_hva(&vm->slots, hva);
	if (slot) {
		*gpa = (slot->base_gfn << PAGE_SHIFT) +
		       (hva - slot->userspace_addr);
		r = 0;
	}
	pthread_rwlock_unlock(&vm->state_lock);
	return r;
}

int gmem_vm_set_msr_filter(struct gmem_vm *vm,
			   const struct kvm_msr_filter *filter)
{
	return gmem_msr_filter_set(&vm->msr, filter);
}
