/* SPDX-License-Identifier: MIT */
/*
 * KVM-compatible values and structures.
 *
 * Everything here is binary-identical to Linux's include/uapi/linux/kvm.h
 * (6.12+) and arch/x86/include/uapi/asm/kvm.h, so that code written for
 * /dev/kvm compiles against gmem with a header of macros.  gmem's own
 * additions (EXECONLY, the access flags of a memory-fault exit and the
 * GMEM_CAP_* capabilities) live in ranges Linux does not use.
 *
 * The file deliberately does not include <linux/kvm.h> (a Debian host may
 * ship an older one without guest_memfd); do not include both.
 */
#ifndef GMEM_UAPI_H
#define GMEM_UAPI_H

#include <stddef.h>
#include <stdint.h>
#include <sys/ioctl.h>

#define KVM_API_VERSION 12

/* VM types (KVM_CREATE_VM's argument). */
#define KVM_X86_DEFAULT_VM 0
#define KVM_X86_SW_PROTECTED_VM 1

/* Memory attributes: the negated protections and PRIVATE. */
#define KVM_MEMORY_ATTRIBUTE_NR (1ULL << 0)
#define KVM_MEMORY_ATTRIBUTE_NW (1ULL << 1)
#define KVM_MEMORY_ATTRIBUTE_NX (1ULL << 2)
#define KVM_MEMORY_ATTRIBUTE_PRIVATE (1ULL << 3)

struct kvm_memory_attributes {
	uint64_t address;
	uint64_t size;
	uint64_t attributes;
	uint64_t flags;
};

struct kvm_create_guest_memfd {
	uint64_t size;
	uint64_t flags;
	uint64_t reserved[6];
};

/*
 * guest_memfd flags of Linux 6.18 (KVM_CAP_GUEST_MEMFD_FLAGS says which a
 * VM takes), offered once the VM enabled GMEM_CAP_GUEST_MEMFD_MMAP.  MMAP:
 * the file can be mapped MAP_SHARED by the host, and a memslot bound to it
 * takes all its memory from it (userspace_addr is not used).
 * INIT_SHARED: its memory is shared (default VMs only), which a host
 * mapping may access; without it every access there is SIGBUS.
 */
#define GUEST_MEMFD_FLAG_MMAP (1ULL << 0)
#define GUEST_MEMFD_FLAG_INIT_SHARED (1ULL << 1)
/*
 * The posted series "Direct Map Removal Support for guest_memfd" (Patrick
 * Roy, Nikita Kalyazin; v7 of 2025 on, the same value): the file's memory,
 * shared and private alike, is not in the kernel's direct map, as
 * memfd_secret(2)'s.  gmem takes it from memfd_secret, so no other process
 * (process_vm_readv, ptrace, /proc/PID/mem) and no kernel path on this
 * one's behalf (O_DIRECT, vmsplice) reaches it; offered only where the
 * kernel has memfd_secret (CONFIG_SECRETMEM), with GMEM_CAP_GUEST_MEMFD_MMAP.
 */
#define GUEST_MEMFD_FLAG_NO_DIRECT_MAP (1ULL << 2)

/* Memslot flags. */
#define KVM_MEM_LOG_DIRTY_PAGES (1U << 0)
#define KVM_MEM_READONLY (1U << 1)
#define KVM_MEM_GUEST_MEMFD (1U << 2)
#define KVM_MEM_EXECONLY (1U << 3) /* gmem: the XOM proposal's flag */

struct kvm_userspace_memory_region {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
};

struct kvm_userspace_memory_region2 {
	uint32_t slot;
	uint32_t flags;
	uint64_t guest_phys_addr;
	uint64_t memory_size;
	uint64_t userspace_addr;
	uint64_t guest_memfd_offset;
	uint32_t guest_memfd;
	uint32_t pad1;
	uint64_t pad2[14];
};

/* Coalesced MMIO/PIO: zones, and the ring at page 2 of the vCPU mmap. */
#define KVM_COALESCED_MMIO_PAGE_OFFSET 2

struct kvm_coalesced_mmio_zone {
	uint64_t addr;
	uint32_t size;
	union {
		uint32_t pad;
		uint32_t pio;
	};
};

struct kvm_coalesced_mmio {
	uint64_t phys_addr;
	uint32_t len;
	union {
		uint32_t pad;
		uint32_t pio;
	};
	uint8_t data[8];
};

struct kvm_coalesced_mmio_ring {
	uint32_t first, last;
	struct kvm_coalesced_mmio coalesced_mmio[];
};

#define KVM_COALESCED_MMIO_MAX                             \
	((4096 - sizeof(struct kvm_coalesced_mmio_ring)) / \
	 sizeof(struct kvm_coalesced_mmio))

/*
 * Dirty logging.  KVM_GET_DIRTY_LOG fills @dirty_bitmap with one bit per
 * page of the slot (rounded up to 64); KVM_CLEAR_DIRTY_LOG
 * (KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) clears the bits set in its bitmap,
 * which starts at page @first_page of the slot.
 */
struct kvm_dirty_log {
	uint32_t slot;
	uint32_t padding1;
	union {
		void *dirty_bitmap;
		uint64_t padding2;
	};
};

struct kvm_clear_dirty_log {
	uint32_t slot;
	uint32_t num_pages;
	uint64_t first_page;
	union {
		void *dirty_bitmap;
		uint64_t padding2;
	};
};

#define KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE (1 << 0)
#define KVM_DIRTY_LOG_INITIALLY_SET (1 << 1)

/*
 * The dirty ring (KVM_CAP_DIRTY_LOG_RING): per vCPU, mapped from the vCPU
 * file at page KVM_DIRTY_LOG_PAGE_OFFSET.  The vCPU publishes an entry
 * with F_DIRTY; the VMM, having read it, sets F_RESET; KVM_RESET_DIRTY_RINGS
 * then write-protects the page again and frees the entry.
 */
#define KVM_DIRTY_LOG_PAGE_OFFSET 64
#define KVM_DIRTY_GFN_F_DIRTY (1U << 0)
#define KVM_DIRTY_GFN_F_RESET (1U << 1)
#define KVM_DIRTY_GFN_F_MASK 0x3

struct kvm_dirty_gfn {
	uint32_t flags;
	uint32_t slot;	 /* as_id << 16 | id */
	uint64_t offset; /* page in the slot */
};

/* KVM_PRE_FAULT_MEMORY: in/out range, updated to what is left. */
struct kvm_pre_fault_memory {
	uint64_t gpa;
	uint64_t size;
	uint64_t flags;
	uint64_t padding[5];
};

/* KVM_GET_STATS_FD: the binary statistics format (api.rst 4.133). */
#define KVM_STATS_NAME_SIZE 48

#define KVM_STATS_TYPE_SHIFT 0
#define KVM_STATS_TYPE_MASK (0xF << KVM_STATS_TYPE_SHIFT)
#define KVM_STATS_TYPE_CUMULATIVE (0x0 << KVM_STATS_TYPE_SHIFT)
#define KVM_STATS_TYPE_INSTANT (0x1 << KVM_STATS_TYPE_SHIFT)
#define KVM_STATS_TYPE_PEAK (0x2 << KVM_STATS_TYPE_SHIFT)
#define KVM_STATS_TYPE_LINEAR_HIST (0x3 << KVM_STATS_TYPE_SHIFT)
#define KVM_STATS_TYPE_LOG_HIST (0x4 << KVM_STATS_TYPE_SHIFT)
#define KVM_STATS_TYPE_MAX KVM_STATS_TYPE_LOG_HIST

#define KVM_STATS_UNIT_SHIFT 4
#define KVM_STATS_UNIT_MASK (0xF << KVM_STATS_UNIT_SHIFT)
#define KVM_STATS_UNIT_NONE (0x0 << KVM_STATS_UNIT_SHIFT)
#define KVM_STATS_UNIT_BYTES (0x1 << KVM_STATS_UNIT_SHIFT)
#define KVM_STATS_UNIT_SECONDS (0x2 << KVM_STATS_UNIT_SHIFT)
#define KVM_STATS_UNIT_CYCLES (0x3 << KVM_STATS_UNIT_SHIFT)
#define KVM_STATS_UNIT_BOOLEAN (0x4 << KVM_STATS_UNIT_SHIFT)
#define KVM_STATS_UNIT_MAX KVM_STATS_UNIT_BOOLEAN

#define KVM_STATS_BASE_SHIFT 8
#define KVM_STATS_BASE_MASK (0xF << KVM_STATS_BASE_SHIFT)
#define KVM_STATS_BASE_POW10 (0x0 << KVM_STATS_BASE_SHIFT)
#define KVM_STATS_BASE_POW2 (0x1 << KVM_STATS_BASE_SHIFT)
#define KVM_STATS_BASE_MAX KVM_STATS_BASE_POW2

struct kvm_stats_header {
	uint32_t flags;
	uint32_t name_size;
	uint32_t num_desc;
	uint32_t id_offset;
	uint32_t desc_offset;
	uint32_t data_offset;
};

struct kvm_stats_desc {
	uint32_t flags;
	int16_t exponent;
	uint16_t size;
	uint32_t offset;
	uint32_t bucket_size;
	char name[];
};

/* KVM_SET_SIGNAL_MASK: len is the kernel's sigset_t size, 8 on x86-64. */
struct kvm_signal_mask {
	uint32_t len;
	uint8_t sigset[];
};

/*
 * KVM_CAP_X86_USER_SPACE_MSR: the MSR accesses that exit to the VMM, by
 * why the kernel would refuse them (args[0]).
 */
#define KVM_MSR_EXIT_REASON_INVAL (1 << 0)
#define KVM_MSR_EXIT_REASON_UNKNOWN (1 << 1)
#define KVM_MSR_EXIT_REASON_FILTER (1 << 2)
#define KVM_MSR_EXIT_REASON_VALID_MASK                             \
	(KVM_MSR_EXIT_REASON_INVAL | KVM_MSR_EXIT_REASON_UNKNOWN | \
	 KVM_MSR_EXIT_REASON_FILTER)

/* KVM_X86_SET_MSR_FILTER: up to 16 ranges of per-MSR allow bits. */
#define KVM_MSR_FILTER_MAX_BITMAP_SIZE 0x600
#define KVM_MSR_FILTER_READ (1 << 0)
#define KVM_MSR_FILTER_WRITE (1 << 1)
#define KVM_MSR_FILTER_RANGE_VALID_MASK \
	(KVM_MSR_FILTER_READ | KVM_MSR_FILTER_WRITE)
#define KVM_MSR_FILTER_MAX_RANGES 16
#define KVM_MSR_FILTER_DEFAULT_ALLOW (0 << 0)
#define KVM_MSR_FILTER_DEFAULT_DENY (1 << 0)
#define KVM_MSR_FILTER_VALID_MASK (KVM_MSR_FILTER_DEFAULT_DENY)

struct kvm_msr_filter_range {
	uint32_t flags;
	uint32_t nmsrs;	 /* MSRs the bitmap covers */
	uint32_t base;	 /* the first one */
	uint8_t *bitmap; /* 1 allows the accesses of flags, 0 denies */
};

struct kvm_msr_filter {
	uint32_t flags;
	struct kvm_msr_filter_range ranges[KVM_MSR_FILTER_MAX_RANGES];
};

/*
 * KVM_SIGNAL_MSI: one message-signalled interrupt, as a device writes it:
 * address (0xfeeXXXXX: destination ID bits 19:12, logical bit 2) and data
 * (vector 7:0, delivery mode 10:8, trigger 15).  x86 ignores devid.
 */
#define KVM_MSI_VALID_DEVID (1U << 0)

struct kvm_msi {
	uint32_t address_lo;
	uint32_t address_hi;
	uint32_t data;
	uint32_t flags;
	uint32_t devid;
	uint8_t pad[12];
};

/* KVM_SET_GSI_ROUTING: what each GSI drives (see gmem_vm_set_gsi_routing()). */
#define KVM_MAX_IRQ_ROUTES 4096
#define KVM_IRQ_ROUTING_IRQCHIP 1
#define KVM_IRQ_ROUTING_MSI 2
#define KVM_IRQCHIP_PIC_MASTER 0
#define KVM_IRQCHIP_PIC_SLAVE 1
#define KVM_IRQCHIP_IOAPIC 2

struct kvm_irq_routing_irqchip {
	uint32_t irqchip;
	uint32_t pin;
};

struct kvm_irq_routing_msi {
	uint32_t address_lo;
	uint32_t address_hi;
	uint32_t data;
	uint32_t devid;
};

struct kvm_irq_routing_entry {
	uint32_t gsi;
	uint32_t type;
	uint32_t flags;
	uint32_t pad;
	union {
		struct kvm_irq_routing_irqchip irqchip;
		struct kvm_irq_routing_msi msi;
		uint32_t pad[8];
	} u;
};

struct kvm_irq_routing {
	uint32_t nr;
	uint32_t flags;
	struct kvm_irq_routing_entry entries[];
};

/* KVM_IOEVENTFD: a guest write signals eventfd @fd (gmem_vm_ioeventfd()). */
#define KVM_IOEVENTFD_FLAG_DATAMATCH (1U << 0)
#define KVM_IOEVENTFD_FLAG_PIO (1U << 1)
#define KVM_IOEVENTFD_FLAG_DEASSIGN (1U << 2)
#define KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY (1U << 3)

struct kvm_ioeventfd {
	uint64_t datamatch;
	uint64_t addr; /* a guest-physical address, or a port with PIO */
	uint32_t len;  /* 1, 2, 4, 8, or 0 for any */
	int32_t fd;
	uint32_t flags;
	uint8_t pad[36];
};

/* KVM_IRQFD: eventfd @fd raises GSI @gsi (see gmem_vm_irqfd()). */
#define KVM_IRQFD_FLAG_DEASSIGN (1U << 0)
#define KVM_IRQFD_FLAG_RESAMPLE (1U << 1)

struct kvm_irqfd {
	uint32_t fd;
	uint32_t gsi;
	uint32_t flags;
	uint32_t resamplefd;
	uint8_t pad[16];
};

/* KVM_IRQ_LINE(_STATUS): a GSI's new level; _STATUS writes status. */
struct kvm_irq_level {
	union {
		uint32_t irq;
		int32_t status;
	};
	uint32_t level;
};

struct kvm_enable_cap {
	uint32_t cap;
	uint32_t flags;
	uint64_t args[4];
	uint8_t pad[64];
};

/* Capabilities (KVM_CHECK_EXTENSION). */
#define KVM_CAP_IRQCHIP 0
#define KVM_CAP_MMU_SHADOW_CACHE_CONTROL 2
#define KVM_CAP_USER_MEMORY 3
#define KVM_CAP_SET_TSS_ADDR 4
#define KVM_CAP_EXT_CPUID 7
#define KVM_CAP_NR_VCPUS 9
#define KVM_CAP_NR_MEMSLOTS 10
#define KVM_CAP_MP_STATE 14
#define KVM_CAP_USER_NMI 22
#define KVM_CAP_KVMCLOCK_CTRL 76
#define KVM_CAP_SET_BOOT_CPU_ID 34
#define KVM_CAP_SET_IDENTITY_MAP_ADDR 37
#define KVM_CAP_TSC_CONTROL 60
#define KVM_CAP_GET_TSC_KHZ 61
#define KVM_CAP_MAX_VCPUS 66
#define KVM_CAP_READONLY_MEM 81
#define KVM_CAP_ENABLE_CAP_VM 98
#define KVM_CAP_CHECK_EXTENSION_VM 105
#define KVM_CAP_MAX_VCPU_ID 128
#define KVM_CAP_IMMEDIATE_EXIT 136
#define KVM_CAP_VM_TSC_CONTROL 214
#define KVM_CAP_EXIT_HYPERCALL 201
#define KVM_CAP_USER_MEMORY2 231
#define KVM_CAP_MEMORY_FAULT_INFO 232
#define KVM_CAP_MEMORY_ATTRIBUTES 233
#define KVM_CAP_GUEST_MEMFD 234
#define KVM_CAP_GUEST_MEMFD_FLAGS 244 /* 6.18 */
#define KVM_CAP_VM_TYPES 235
#define KVM_CAP_BINARY_STATS_FD 203
#define KVM_CAP_PRE_FAULT_MEMORY 236
#define KVM_CAP_COALESCED_MMIO 15
#define KVM_CAP_COALESCED_PIO 162
#define KVM_CAP_XSAVE 55
#define KVM_CAP_XCRS 56
#define KVM_CAP_XSAVE2 208
#define KVM_CAP_VCPU_EVENTS 41
#define KVM_CAP_DEBUGREGS 50
#define KVM_CAP_SET_GUEST_DEBUG 23
#define KVM_CAP_SET_GUEST_DEBUG2 195
#define KVM_CAP_GET_MSR_FEATURES 153
#define KVM_CAP_MSR_PLATFORM_INFO 159
#define KVM_CAP_EXIT_ON_EMULATION_FAILURE 204
#define KVM_CAP_X86_USER_SPACE_MSR 188
#define KVM_CAP_X86_MSR_FILTER 189
#define KVM_CAP_ENFORCE_PV_FEATURE_CPUID 190 /* a vCPU's */
#define KVM_CAP_X86_DISABLE_EXITS 143
#define KVM_CAP_SMALLER_MAXPHYADDR 185
#define KVM_X86_DISABLE_EXITS_MWAIT (1 << 0)
#define KVM_X86_DISABLE_EXITS_HLT (1 << 1)
#define KVM_X86_DISABLE_EXITS_PAUSE (1 << 2)
#define KVM_X86_DISABLE_EXITS_CSTATE (1 << 3)
#define KVM_X86_DISABLE_VALID_EXITS 0xf
#define KVM_CAP_NESTED_STATE 157
#define KVM_CAP_EXCEPTION_PAYLOAD 164
#define KVM_CAP_SYNC_REGS 74
#define KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 168
#define KVM_CAP_VM_DISABLE_NX_HUGE_PAGES 220
#define KVM_CAP_DIRTY_LOG_RING 192
#define KVM_CAP_DIRTY_LOG_RING_ACQ_REL 223
#define KVM_CAP_TSC_DEADLINE_TIMER 72
#define KVM_CAP_MCE 31
#define KVM_CAP_X2APIC_API 129
#define KVM_CAP_SIGNAL_MSI 77
#define KVM_CAP_IRQ_ROUTING 25
#define KVM_CAP_IRQ_INJECT_STATUS 26
#define KVM_CAP_IRQFD 32
#define KVM_CAP_IOEVENTFD 36
#define KVM_CAP_IOEVENTFD_NO_LENGTH 121
#define KVM_CAP_IRQFD_RESAMPLE 82
#define KVM_CAP_X86_APIC_BUS_CYCLES_NS 237
#define KVM_CAP_ADJUST_CLOCK 39
#define KVM_CAP_DISABLE_QUIRKS 116
#define KVM_CAP_DISABLE_QUIRKS2 213

/* Exit reasons (kvm_run.exit_reason). */
#define KVM_EXIT_UNKNOWN 0
#define KVM_EXIT_EXCEPTION 1
#define KVM_EXIT_IO 2
#define KVM_EXIT_HYPERCALL 3
#define KVM_EXIT_DEBUG 4
#define KVM_EXIT_HLT 5
#define KVM_EXIT_IRQ_WINDOW_OPEN 7
#define KVM_EXIT_MMIO 6
#define KVM_EXIT_SHUTDOWN 8
#define KVM_EXIT_FAIL_ENTRY 9
#define KVM_EXIT_INTR 10
#define KVM_EXIT_INTERNAL_ERROR 17
#define KVM_EXIT_X86_RDMSR 29
#define KVM_EXIT_X86_WRMSR 30
#define KVM_EXIT_DIRTY_RING_FULL 31
#define KVM_EXIT_MEMORY_FAULT 39

#define KVM_EXIT_IO_IN 0
#define KVM_EXIT_IO_OUT 1

#define KVM_INTERNAL_ERROR_EMULATION 1
#define KVM_INTERNAL_ERROR_EMULATION_FLAG_INSTRUCTION_BYTES (1ULL << 0)

#define KVM_MEMORY_EXIT_FLAG_PRIVATE (1ULL << 3)

/* Hypercalls. */
#define KVM_HC_VAPIC_POLL_IRQ 1
#define KVM_HC_SCHED_YIELD 11
#define KVM_HC_KICK_CPU 5
#define KVM_HC_SEND_IPI 10
#define KVM_HC_MAP_GPA_RANGE 12
#define KVM_MAP_GPA_RANGE_PAGE_SZ_4K 0
#define KVM_MAP_GPA_RANGE_PAGE_SZ_2M (1 << 0)
#define KVM_MAP_GPA_RANGE_PAGE_SZ_1G (1 << 1)
#define KVM_MAP_GPA_RANGE_ENC_STAT(n) ((n) << 4)
#define KVM_MAP_GPA_RANGE_ENCRYPTED KVM_MAP_GPA_RANGE_ENC_STAT(1)
#define KVM_MAP_GPA_RANGE_DECRYPTED KVM_MAP_GPA_RANGE_ENC_STAT(0)
#define KVM_ENOSYS 1000

/* x86 register state. */
struct kvm_regs {
	uint64_t rax, rbx, rcx, rdx;
	uint64_t rsi, rdi, rsp, rbp;
	uint64_t r8, r9, r10, r11;
	uint64_t r12, r13, r14, r15;
	uint64_t rip, rflags;
};

struct kvm_segment {
	uint64_t base;
	uint32_t limit;
	uint16_t selector;
	uint8_t type;
	uint8_t present, dpl, db, s, l, g, avl;
	uint8_t unusable;
	uint8_t padding;
};

struct kvm_dtable {
	uint64_t base;
	uint16_t limit;
	uint16_t padding[3];
};

#define KVM_NR_INTERRUPTS 256

struct kvm_sregs {
	struct kvm_segment cs, ds, es, fs, gs, ss;
	struct kvm_segment tr, ldt;
	struct kvm_dtable gdt, idt;
	uint64_t cr0, cr2, cr3, cr4, cr8;
	uint64_t efer;
	uint64_t apic_base;
	uint64_t interrupt_bitmap[(KVM_NR_INTERRUPTS + 63) / 64];
};

struct kvm_msr_entry {
	uint32_t index;
	uint32_t reserved;
	uint64_t data;
};

struct kvm_msrs {
	uint32_t nmsrs;
	uint32_t pad;
	struct kvm_msr_entry entries[];
};

/* KVM_GET_MSR_INDEX_LIST, KVM_GET_MSR_FEATURE_INDEX_LIST */
struct kvm_msr_list {
	uint32_t nmsrs;
	uint32_t indices[];
};

struct kvm_cpuid_entry2 {
	uint32_t function;
	uint32_t index;
	uint32_t flags;
	uint32_t eax;
	uint32_t ebx;
	uint32_t ecx;
	uint32_t edx;
	uint32_t padding[3];
};

#define KVM_CPUID_FLAG_SIGNIFCANT_INDEX (1 << 0)

struct kvm_cpuid2 {
	uint32_t nent;
	uint32_t padding;
	struct kvm_cpuid_entry2 entries[];
};

/*
 * KVM_GET/SET_LAPIC: the local APIC's register page up to 0x3f0, each
 * register a 32-bit word at its xAPIC offset (ICR split in two words in
 * x2APIC mode too).
 */
#define KVM_APIC_REG_SIZE 0x400
struct kvm_lapic_state {
	char regs[KVM_APIC_REG_SIZE];
};

/* KVM_X86_SET_MCE: an error to log in bank @bank (KVM_CAP_MCE). */
struct kvm_x86_mce {
	uint64_t status;
	uint64_t addr;
	uint64_t misc;
	uint64_t mcg_status;
	uint8_t bank;
	uint8_t pad1[7];
	uint64_t pad2[3];
};

/* KVM_INTERRUPT: an external interrupt vector, without an irqchip. */
struct kvm_interrupt {
	uint32_t irq;
};

/* KVM_ENABLE_CAP(KVM_CAP_X2APIC_API) flags. */
#define KVM_X2APIC_API_USE_32BIT_IDS (1ULL << 0)
#define KVM_X2APIC_API_DISABLE_BROADCAST_QUIRK (1ULL << 1)

/* KVM_GET/SET_FPU: the FXSAVE image's fields, unpacked. */
struct kvm_fpu {
	uint8_t fpr[8][16];
	uint16_t fcw;
	uint16_t fsw;
	uint8_t ftwx; /* the abridged tag word of FXSAVE */
	uint8_t pad1;
	uint16_t last_opcode;
	uint64_t last_ip;
	uint64_t last_dp;
	uint8_t xmm[16][16];
	uint32_t mxcsr;
	uint32_t pad2;
};

/*
 * KVM_GET/SET_XSAVE, KVM_GET_XSAVE2: an XSAVE image in the standard
 * (uncompacted) format, KVM_CHECK_EXTENSION(KVM_CAP_XSAVE2) bytes long.
 */
struct kvm_xsave {
	uint32_t region[1024];
	uint32_t extra[];
};

#define KVM_MAX_XCRS 16

struct kvm_xcr {
	uint32_t xcr;
	uint32_t reserved;
	uint64_t value;
};

struct kvm_xcrs {
	uint32_t nr_xcrs;
	uint32_t flags;
	struct kvm_xcr xcrs[KVM_MAX_XCRS];
	uint64_t padding[16];
};

/* KVM_GET/SET_VCPU_EVENTS */
#define KVM_VCPUEVENT_VALID_NMI_PENDING 0x00000001
#define KVM_VCPUEVENT_VALID_SIPI_VECTOR 0x00000002
#define KVM_VCPUEVENT_VALID_SHADOW 0x00000004
#define KVM_VCPUEVENT_VALID_SMM 0x00000008
#define KVM_VCPUEVENT_VALID_PAYLOAD 0x00000010
#define KVM_VCPUEVENT_VALID_TRIPLE_FAULT 0x00000020

#define KVM_X86_SHADOW_INT_MOV_SS 0x01
#define KVM_X86_SHADOW_INT_STI 0x02

struct kvm_vcpu_events {
	struct {
		uint8_t injected;
		uint8_t nr;
		uint8_t has_error_code;
		uint8_t pending;
		uint32_t error_code;
	} exception;
	struct {
		uint8_t injected;
		uint8_t nr;
		uint8_t soft;
		uint8_t shadow;
	} interrupt;
	struct {
		uint8_t injected;
		uint8_t pending;
		uint8_t masked;
		uint8_t pad;
	} nmi;
	uint32_t sipi_vector;
	uint32_t flags;
	struct {
		uint8_t smm;
		uint8_t pending;
		uint8_t smm_inside_nmi;
		uint8_t latched_init;
	} smi;
	struct {
		uint8_t pending;
	} triple_fault;
	uint8_t reserved[26];
	uint8_t exception_has_payload;
	uint64_t exception_payload;
};

/* KVM_GET/SET_DEBUGREGS */
struct kvm_debugregs {
	uint64_t db[4];
	uint64_t dr6;
	uint64_t dr7;
	uint64_t flags;
	uint64_t reserved[9];
};

/*
 * KVM_SET_GUEST_DEBUG: the VMM's debugger.  debugreg[0..3] and [7] are
 * the breakpoints of KVM_GUESTDBG_USE_HW_BP (DR7's layout); a hit, a
 * single step or an INT3 under KVM_GUESTDBG_USE_SW_BP is KVM_EXIT_DEBUG.
 */
#define KVM_GUESTDBG_ENABLE 0x00000001
#define KVM_GUESTDBG_SINGLESTEP 0x00000002
#define KVM_GUESTDBG_USE_SW_BP 0x00010000
#define KVM_GUESTDBG_USE_HW_BP 0x00020000
#define KVM_GUESTDBG_INJECT_DB 0x00040000
#define KVM_GUESTDBG_INJECT_BP 0x00080000
#define KVM_GUESTDBG_BLOCKIRQ 0x00100000
#define KVM_GUESTDBG_VALID_MASK                            \
	(KVM_GUESTDBG_ENABLE | KVM_GUESTDBG_SINGLESTEP |   \
	 KVM_GUESTDBG_USE_SW_BP | KVM_GUESTDBG_USE_HW_BP | \
	 KVM_GUESTDBG_INJECT_DB | KVM_GUESTDBG_INJECT_BP | \
	 KVM_GUESTDBG_BLOCKIRQ)

struct kvm_guest_debug_arch {
	uint64_t debugreg[8];
};

struct kvm_guest_debug {
	uint32_t control;
	uint32_t pad;
	struct kvm_guest_debug_arch arch;
};

/* kvm_run.debug (KVM_EXIT_DEBUG): the vector (1 or 3) and where. */
struct kvm_debug_exit_arch {
	uint32_t exception;
	uint32_t pad;
	uint64_t pc;
	uint64_t dr6;
	uint64_t dr7;
};

/* KVM_GET/SET_MP_STATE */
#define KVM_MP_STATE_RUNNABLE 0
#define KVM_MP_STATE_UNINITIALIZED 1
#define KVM_MP_STATE_INIT_RECEIVED 2
#define KVM_MP_STATE_HALTED 3
#define KVM_MP_STATE_SIPI_RECEIVED 4
#define KVM_MP_STATE_STOPPED 5
#define KVM_MP_STATE_CHECK_STOP 6
#define KVM_MP_STATE_OPERATING 7
#define KVM_MP_STATE_LOAD 8
#define KVM_MP_STATE_AP_RESET_HOLD 9
#define KVM_MP_STATE_SUSPENDED 10

struct kvm_mp_state {
	uint32_t mp_state;
};

/*
 * KVM_CAP_SYNC_REGS: kvm_run.kvm_valid_regs asks KVM_RUN to store these
 * register sets into kvm_run.s.regs at every exit; kvm_run.kvm_dirty_regs
 * has it load them from there (and clear the bit) before the guest runs.
 */
#define KVM_SYNC_X86_REGS (1UL << 0)
#define KVM_SYNC_X86_SREGS (1UL << 1)
#define KVM_SYNC_X86_EVENTS (1UL << 2)
#define KVM_SYNC_X86_VALID_FIELDS \
	(KVM_SYNC_X86_REGS | KVM_SYNC_X86_SREGS | KVM_SYNC_X86_EVENTS)

struct kvm_sync_regs {
	struct kvm_regs regs;
	struct kvm_sregs sregs;
	struct kvm_vcpu_events events;
};

/*
 * The shared vCPU page.  Only the exits gmem produces are spelled out; the
 * union is padded to Linux's 256 bytes and the sync-regs area to 2048, so
 * every field sits at Linux's offset.
 */
struct kvm_run {
	uint8_t request_interrupt_window;
	uint8_t immediate_exit;
	uint8_t padding1[6];
	uint32_t exit_reason;
	uint8_t ready_for_interrupt_injection;
	uint8_t if_flag;
	uint16_t flags;
	uint64_t cr8;
	uint64_t apic_base;
	union {
		struct {
			uint64_t hardware_exit_reason;
		} hw;
		struct {
			uint64_t hardware_entry_failure_reason;
			uint32_t cpu;
		} fail_entry;
		struct {
			uint32_t exception;
			uint32_t error_code;
		} ex;
		struct {
			uint8_t direction;
			uint8_t size;
			uint16_t port;
			uint32_t count;
			uint64_t data_offset;
		} io;
		struct {
			struct kvm_debug_exit_arch arch;
		} debug;
		struct {
			uint64_t phys_addr;
			uint8_t data[8];
			uint32_t len;
			uint8_t is_write;
		} mmio;
		struct {
			uint64_t nr;
			uint64_t args[6];
			uint64_t ret;
			union {
				uint32_t longmode;
				uint64_t flags;
			};
		} hypercall;
		struct {
			uint32_t suberror;
			uint32_t ndata;
			uint64_t data[16];
		} internal;
		/* internal with KVM_INTERNAL_ERROR_EMULATION: an overlay */
		struct {
			uint32_t suberror;
			uint32_t ndata;
			uint64_t flags;
			uint8_t insn_size;
			uint8_t insn_bytes[15];
		} emulation_failure;
		struct {
			uint64_t flags;
			uint64_t gpa;
			uint64_t size;
		} memory_fault;
		/* KVM_EXIT_X86_RDMSR/WRMSR; error is the VMM's answer */
		struct {
			uint8_t error;
			uint8_t pad[7];
			uint32_t reason; /* KVM_MSR_EXIT_REASON_* */
			uint32_t index;
			uint64_t data;
		} msr;
		char padding[256];
	};
	uint64_t kvm_valid_regs;
	uint64_t kvm_dirty_regs;
	union {
		struct kvm_sync_regs regs;
		char padding[2048];
	} s;
};

/*
 * x86 quirks (KVM_CAP_DISABLE_QUIRKS2 answers the ones a VM may turn off;
 * a set bit in its args[0] disables that quirk).
 */
#define KVM_X86_QUIRK_LINT0_REENABLED (1 << 0)
#define KVM_X86_QUIRK_CD_NW_CLEARED (1 << 1)
#define KVM_X86_QUIRK_LAPIC_MMIO_HOLE (1 << 2)
#define KVM_X86_QUIRK_OUT_7E_INC_RIP (1 << 3)
#define KVM_X86_QUIRK_MISC_ENABLE_NO_MWAIT (1 << 4)
#define KVM_X86_QUIRK_FIX_HYPERCALL_INSN (1 << 5)
#define KVM_X86_QUIRK_MWAIT_NEVER_UD_FAULTS (1 << 6)
#define KVM_X86_QUIRK_SLOT_ZAP_ALL (1 << 7)
#define KVM_X86_QUIRK_STUFF_FEATURE_MSRS (1 << 8)
#define KVM_X86_QUIRK_IGNORE_GUEST_PAT (1 << 9)
#define KVM_X86_QUIRK_VMCS12_ALLOW_FREEZE_IN_SMM (1 << 10)

/* KVM_GET_CLOCK / KVM_SET_CLOCK (KVM_CAP_ADJUST_CLOCK says which flags). */
#define KVM_CLOCK_TSC_STABLE 2
#define KVM_CLOCK_REALTIME (1 << 2)
#define KVM_CLOCK_HOST_TSC (1 << 3)

struct kvm_clock_data {
	uint64_t clock;
	uint32_t flags;
	uint32_t pad0;
	uint64_t realtime;
	uint64_t host_tsc;
	uint32_t pad[4];
};

/* ioctl numbers. */
#define KVMIO 0xAE

#define KVM_GET_API_VERSION _IO(KVMIO, 0x00)
#define KVM_CREATE_VM _IO(KVMIO, 0x01)
#define KVM_CHECK_EXTENSION _IO(KVMIO, 0x03)
#define KVM_GET_VCPU_MMAP_SIZE _IO(KVMIO, 0x04)
#define KVM_GET_SUPPORTED_CPUID _IOWR(KVMIO, 0x05, struct kvm_cpuid2)
#define KVM_GET_MSR_INDEX_LIST _IOWR(KVMIO, 0x02, struct kvm_msr_list)
#define KVM_GET_MSR_FEATURE_INDEX_LIST _IOWR(KVMIO, 0x0a, struct kvm_msr_list)

#define KVM_CREATE_VCPU _IO(KVMIO, 0x41)
#define KVM_CREATE_IRQCHIP _IO(KVMIO, 0x60)
#define KVM_SIGNAL_MSI _IOW(KVMIO, 0xa5, struct kvm_msi)
#define KVM_IRQ_LINE _IOW(KVMIO, 0x61, struct kvm_irq_level)
#define KVM_IRQFD _IOW(KVMIO, 0x76, struct kvm_irqfd)
#define KVM_IOEVENTFD _IOW(KVMIO, 0x79, struct kvm_ioeventfd)
#define KVM_SET_GSI_ROUTING _IOW(KVMIO, 0x6a, struct kvm_irq_routing)
#define KVM_IRQ_LINE_STATUS _IOWR(KVMIO, 0x67, struct kvm_irq_level)
#define KVM_REGISTER_COALESCED_MMIO \
	_IOW(KVMIO, 0x67, struct kvm_coalesced_mmio_zone)
#define KVM_UNREGISTER_COALESCED_MMIO \
	_IOW(KVMIO, 0x68, struct kvm_coalesced_mmio_zone)
#define KVM_SET_NR_MMU_PAGES _IO(KVMIO, 0x44)
#define KVM_GET_NR_MMU_PAGES _IO(KVMIO, 0x45) /* gone from x86 (ENOTTY) */
#define KVM_SET_USER_MEMORY_REGION \
	_IOW(KVMIO, 0x46, struct kvm_userspace_memory_region)
#define KVM_SET_TSS_ADDR _IO(KVMIO, 0x47)
#define KVM_SET_IDENTITY_MAP_ADDR _IOW(KVMIO, 0x48, uint64_t)
#define KVM_SET_BOOT_CPU_ID _IO(KVMIO, 0x78)
#define KVM_SET_CLOCK _IOW(KVMIO, 0x7b, struct kvm_clock_data)
#define KVM_GET_CLOCK _IOR(KVMIO, 0x7c, struct kvm_clock_data)
#define KVM_X86_SET_MSR_FILTER _IOW(KVMIO, 0xc6, struct kvm_msr_filter)
#define KVM_SET_USER_MEMORY_REGION2 \
	_IOW(KVMIO, 0x49, struct kvm_userspace_memory_region2)
#define KVM_SET_TSC_KHZ _IO(KVMIO, 0xa2)
#define KVM_GET_TSC_KHZ _IO(KVMIO, 0xa3)
#define KVM_ENABLE_CAP _IOW(KVMIO, 0xa3, struct kvm_enable_cap)
#define KVM_SET_MEMORY_ATTRIBUTES \
	_IOW(KVMIO, 0xd2, struct kvm_memory_attributes)
#define KVM_CREATE_GUEST_MEMFD _IOWR(KVMIO, 0xd4, struct kvm_create_guest_memfd)
#define KVM_GET_STATS_FD _IO(KVMIO, 0xce)
#define KVM_PRE_FAULT_MEMORY _IOWR(KVMIO, 0xd5, struct kvm_pre_fault_memory)
#define KVM_GET_DIRTY_LOG _IOW(KVMIO, 0x42, struct kvm_dirty_log)
#define KVM_CLEAR_DIRTY_LOG _IOWR(KVMIO, 0xc0, struct kvm_clear_dirty_log)
#define KVM_RESET_DIRTY_RINGS _IO(KVMIO, 0xc7)

#define KVM_RUN _IO(KVMIO, 0x80)
#define KVM_GET_REGS _IOR(KVMIO, 0x81, struct kvm_regs)
#define KVM_SET_REGS _IOW(KVMIO, 0x82, struct kvm_regs)
#define KVM_GET_SREGS _IOR(KVMIO, 0x83, struct kvm_sregs)
#define KVM_SET_SREGS _IOW(KVMIO, 0x84, struct kvm_sregs)
#define KVM_GET_MSRS _IOWR(KVMIO, 0x88, struct kvm_msrs)
#define KVM_SET_MSRS _IOW(KVMIO, 0x89, struct kvm_msrs)
#define KVM_SET_CPUID2 _IOW(KVMIO, 0x90, struct kvm_cpuid2)
#define KVM_SET_SIGNAL_MASK _IOW(KVMIO, 0x8b, struct kvm_signal_mask)
#define KVM_GET_CPUID2 _IOWR(KVMIO, 0x91, struct kvm_cpuid2)
#define KVM_GET_MP_STATE _IOR(KVMIO, 0x98, struct kvm_mp_state)
#define KVM_SET_MP_STATE _IOW(KVMIO, 0x99, struct kvm_mp_state)
#define KVM_GET_FPU _IOR(KVMIO, 0x8c, struct kvm_fpu)
#define KVM_INTERRUPT _IOW(KVMIO, 0x86, struct kvm_interrupt)
#define KVM_NMI _IO(KVMIO, 0x9a)
#define KVM_KVMCLOCK_CTRL _IO(KVMIO, 0xad)
#define KVM_GET_LAPIC _IOR(KVMIO, 0x8e, struct kvm_lapic_state)
#define KVM_X86_SETUP_MCE _IOW(KVMIO, 0x9c, uint64_t)
#define KVM_X86_GET_MCE_CAP_SUPPORTED _IOR(KVMIO, 0x9d, uint64_t)
#define KVM_X86_SET_MCE _IOW(KVMIO, 0x9e, struct kvm_x86_mce)
#define KVM_SET_LAPIC _IOW(KVMIO, 0x8f, struct kvm_lapic_state)
#define KVM_SET_FPU _IOW(KVMIO, 0x8d, struct kvm_fpu)
#define KVM_GET_XSAVE _IOR(KVMIO, 0xa4, struct kvm_xsave)
#define KVM_SET_XSAVE _IOW(KVMIO, 0xa5, struct kvm_xsave)
#define KVM_GET_XCRS _IOR(KVMIO, 0xa6, struct kvm_xcrs)
#define KVM_SET_XCRS _IOW(KVMIO, 0xa7, struct kvm_xcrs)
#define KVM_GET_XSAVE2 _IOR(KVMIO, 0xcf, struct kvm_xsave)
#define KVM_GET_VCPU_EVENTS _IOR(KVMIO, 0x9f, struct kvm_vcpu_events)
#define KVM_SET_VCPU_EVENTS _IOW(KVMIO, 0xa0, struct kvm_vcpu_events)
#define KVM_GET_DEBUGREGS _IOR(KVMIO, 0xa1, struct kvm_debugregs)
#define KVM_SET_DEBUGREGS _IOW(KVMIO, 0xa2, struct kvm_debugregs)
#define KVM_SET_GUEST_DEBUG _IOW(KVMIO, 0x9b, struct kvm_guest_debug)

/* gmem's additions, in ranges Linux does not use. */
#define KVM_MEMORY_EXIT_FLAG_READ (1ULL << 0)
#define KVM_MEMORY_EXIT_FLAG_WRITE (1ULL << 1)
#define KVM_MEMORY_EXIT_FLAG_EXEC (1ULL << 2)

#define GMEM_CAP_EXEC_ONLY 0x10001
#define GMEM_CAP_XO_ALIAS 0x10002
/*
 * No arguments: a memory-fault exit caused by an NR, NW or NX attribute
 * carries the denied access in memory_fault.flags (READ, WRITE or EXEC,
 * the RWX series' layout).  Without it the flags are KVM 6.12's: PRIVATE
 * or nothing.
 */
#define GMEM_CAP_FAULT_ACCESS_FLAGS 0x10003
/*
 * No arguments: Linux 6.18's guest_memfd mmap on this VM.
 * KVM_CAP_GUEST_MEMFD_FLAGS answers GUEST_MEMFD_FLAG_MMAP,
 * GUEST_MEMFD_FLAG_INIT_SHARED on a VM without private memory, and
 * GUEST_MEMFD_FLAG_NO_DIRECT_MAP where the kernel has memfd_secret;
 * KVM_CREATE_GUEST_MEMFD takes them, and a default VM then has guest_memfd
 * (KVM_CAP_GUEST_MEMFD 1, KVM_MEM_GUEST_MEMFD slots).  Without it the VM
 * is 6.12's: no flag is valid and KVM_CAP_GUEST_MEMFD_FLAGS is 0.
 */
#define GMEM_CAP_GUEST_MEMFD_MMAP 0x10004
/*
 * KVM_CAP_EXIT_HYPERCALL for gmem's hypercall numbers, which do not fit
 * KVM's 64-bit mask: args[0] bit i lets VMCALL with RAX = GMEM_HC_BASE + i
 * exit as KVM_EXIT_HYPERCALL (see <gmem/hypercall.h>).  Replaces the
 * previous mask; 0 turns them all off.  (0x10005-0x1000f are left for
 * memory capabilities.)
 */
#define GMEM_CAP_EXIT_HYPERCALL 0x10010

/* Layout checks: these must match Linux or the façade is a lie. */
_Static_assert(sizeof(struct kvm_memory_attributes) == 32, "attrs size");
_Static_assert(sizeof(struct kvm_lapic_state) == 1024, "lapic size");
_Static_assert(sizeof(struct kvm_x86_mce) == 64, "mce size");
_Static_assert(sizeof(struct kvm_interrupt) == 4, "interrupt size");
_Static_assert(sizeof(struct kvm_msi) == 32, "msi size");
_Static_assert(sizeof(struct kvm_irq_level) == 8, "irq_level size");
_Static_assert(sizeof(struct kvm_irqfd) == 32, "irqfd size");
_Static_assert(sizeof(struct kvm_ioeventfd) == 64, "ioeventfd size");
_Static_assert(sizeof(struct kvm_irq_routing_entry) == 48, "route size");
_Static_assert(sizeof(struct kvm_irq_routing) == 8, "routing size");
_Static_assert(sizeof(struct kvm_create_guest_memfd) == 64, "gmemfd size");
_Static_assert(sizeof(struct kvm_userspace_memory_region) == 32, "region size");
_Static_assert(sizeof(struct kvm_userspace_memory_region2) == 160,
	       "region2 size");
_Static_assert(offsetof(struct kvm_userspace_memory_region2,
			guest_memfd_offset) == 32,
	       "region2 guest_memfd_offset");
_Static_assert(offsetof(struct kvm_userspace_memory_region2, guest_memfd) == 40,
	       "region2 guest_memfd");
_Static_assert(sizeof(struct kvm_enable_cap) == 104, "enable_cap size");
_Static_assert(sizeof(struct kvm_signal_mask) == 4, "signal_mask size");
_Static_assert(sizeof(struct kvm_stats_header) == 24, "stats header size");
_Static_assert(sizeof(struct kvm_pre_fault_memory) == 64, "pre_fault size");
_Static_assert(sizeof(struct kvm_dirty_log) == 16, "dirty_log size");
_Static_assert(sizeof(struct kvm_clear_dirty_log) == 24,
	       "clear_dirty_log size");
_Static_assert(offsetof(struct kvm_clear_dirty_log, dirty_bitmap) == 16,
	       "clear_dirty_log bitmap");
_Static_assert(sizeof(struct kvm_dirty_gfn) == 16, "dirty_gfn size");
_Static_assert(sizeof(struct kvm_coalesced_mmio_zone) == 16, "zone size");
_Static_assert(sizeof(struct kvm_coalesced_mmio) == 24, "coalesced size");
_Static_assert(KVM_COALESCED_MMIO_MAX == 170, "coalesced ring entries");
_Static_assert(sizeof(struct kvm_stats_desc) == 16, "stats desc size");
_Static_assert(sizeof(struct kvm_regs) == 144, "regs size");
_Static_assert(sizeof(struct kvm_segment) == 24, "segment size");
_Static_assert(sizeof(struct kvm_sregs) == 312, "sregs size");
_Static_assert(sizeof(struct kvm_cpuid_entry2) == 40, "cpuid entry size");
_Static_assert(sizeof(struct kvm_mp_state) == 4, "mp_state size");
_Static_assert(sizeof(struct kvm_vcpu_events) == 64, "vcpu_events size");
_Static_assert(offsetof(struct kvm_vcpu_events, exception_payload) == 56,
	       "vcpu_events payload");
_Static_assert(sizeof(struct kvm_debugregs) == 128, "debugregs size");
_Static_assert(sizeof(struct kvm_guest_debug) == 72, "guest debug size");
_Static_assert(sizeof(struct kvm_debug_exit_arch) == 32, "debug exit size");
_Static_assert(sizeof(struct kvm_msr_list) == 4, "msr_list size");
_Static_assert(sizeof(struct kvm_clock_data) == 48, "clock_data size");
_Static_assert(offsetof(struct kvm_run, exit_reason) == 8, "exit_reason");
_Static_assert(offsetof(struct kvm_run, io) == 32, "run union offset");
_Static_assert(offsetof(struct kvm_run, memory_fault) == 32, "memory_fault");
_Static_assert(offsetof(struct kvm_run, msr.data) == 48, "msr.data");
_Static_assert(offsetof(struct kvm_run, memory_fault.size) == 48,
	       "memory_fault.size");
_Static_assert(offsetof(struct kvm_run, hypercall.ret) == 88, "hypercall.ret");
_Static_assert(offsetof(struct kvm_run, kvm_valid_regs) == 288, "valid_regs");
_Static_assert(offsetof(struct kvm_run, s) == 304, "sync regs area");
_Static_assert(offsetof(struct kvm_run, s.regs.sregs) == 448, "sync sregs");
_Static_assert(offsetof(struct kvm_run, s.regs.events) == 760, "sync events");
_Static_assert(sizeof(struct kvm_sync_regs) == 520, "sync_regs size");
_Static_assert(sizeof(struct kvm_run) == 2352, "kvm_run size");

#endif /* GMEM_UAPI_H */
