/* SPDX-License-Identifier: MIT */
/*
 * The in-kernel local APIC that KVM_CREATE_IRQCHIP gives each vCPU, as
 * Linux 6.12's arch/x86/kvm/lapic.c models it: the register page (xAPIC
 * MMIO at IA32_APIC_BASE, x2APIC MSRs 0x800-0x8ff), the ID rules of both
 * modes, TPR/PPR/ISR/IRR priority, EOI, IPIs (fixed and lowest-priority,
 * physical and logical destinations, shorthands, broadcast), the timer in
 * one-shot, periodic and TSC-deadline modes, NMI, INIT and SIPI IPIs
 * (held for the vCPU, which acts on them), and KVM_GET/SET_LAPIC.
 *
 * Not modelled (dropped as an interrupt nobody accepts): SMI and ExtINT
 * delivery, and LVT entries in NMI mode; the error status register reads
 * 0 (KVM's does too); no PIC or IOAPIC behind LINT0/LINT1.
 *
 * Threads: the owning vCPU's thread does everything but one thing: any
 * thread may deliver an interrupt (gmem_apic_map_send()), which sets an
 * IRR bit (or counts an NMI, or latches INIT/SIPI) atomically and kicks
 * the owner.  So every register word is read and written with atomics;
 * the timer is the owner's alone.
 *
 * Times are host CLOCK_MONOTONIC nanoseconds (x86_host_ns()).
 */
#ifndef GMEM_LAPIC_H
#define GMEM_LAPIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gmem/uapi.h>

struct gmem_lapic;

/* IA32_APIC_BASE bits. */
#define GMEM_APIC_BASE_BSP (1ULL << 8)
#define GMEM_APIC_BASE_X2APIC (1ULL << 10)
#define GMEM_APIC_BASE_ENABLE (1ULL << 11)
#define GMEM_APIC_DEFAULT_BASE 0xfee00000ULL

/* The x2APIC MSR range and the TSC-deadline MSR. */
#define GMEM_MSR_X2APIC_FIRST 0x800u
#define GMEM_MSR_X2APIC_LAST 0x8ffu
#define GMEM_MSR_TSC_DEADLINE 0x6e0u

/*
 * A new APIC for vCPU @id, whose thread sleeps on *@kick: delivering an
 * interrupt ORs @kick_bit into it and wakes it (a futex).  An NMI IPI
 * adds one to *@nmi (atomic; the vCPU's queue, which KVM_NMI shares).
 * -ENOMEM.
 */
int gmem_lapic_create(uint32_t id, int *kick, int kick_bit, int *nmi,
		      uint64_t bus_cycle_ns, struct gmem_lapic **out);
void gmem_lapic_destroy(struct gmem_lapic *a);

/*
 * kvm_lapic_reset(): RESET state for IA32_APIC_BASE @base; @lint0_extint
 * (the BSP with KVM_X86_QUIRK_LINT0_REENABLED) leaves LVT0 unmasked in
 * ExtINT mode, as a BIOS would.
 */
void gmem_lapic_reset(struct gmem_lapic *a, uint64_t base, bool lint0_extint);
/* kvm_lapic_reset(init_event): the same at INIT, base and xAPIC ID kept. */
void gmem_lapic_init(struct gmem_lapic *a, bool lint0_extint);

/*
 * INIT and SIPI IPIs, latched as KVM's pending_events until the vCPU
 * takes them: an INIT replaces whatever was latched, a SIPI adds itself
 * and its vector.  take: the GMEM_LAPIC_INIT/SIPI bits, cleared, and the
 * SIPI's vector.  KVM_SET_VCPU_EVENTS' latched_init and sipi_vector and
 * KVM_SET_MP_STATE's SIPI_RECEIVED set them directly.
 */
#define GMEM_LAPIC_INIT 1u
#define GMEM_LAPIC_SIPI 2u
unsigned int gmem_lapic_init_sipi(const struct gmem_lapic *a);
unsigned int gmem_lapic_take_init_sipi(struct gmem_lapic *a, uint8_t *vector);
void gmem_lapic_latch(struct gmem_lapic *a, unsigned int bits, bool on);
void gmem_lapic_set_sipi_vector(struct gmem_lapic *a, uint8_t vector);
/*
 * A remote-read IPI (delivery mode 3, which KVM_HC_KICK_CPU sends) sets
 * KVM's pv_unhalted: it wakes the vCPU from HLT, or keeps its next HLT
 * from halting; the vCPU clears it when it leaves HALTED.
 */
bool gmem_lapic_unhalted(const struct gmem_lapic *a);
void gmem_lapic_clear_unhalt(struct gmem_lapic *a);

/*
 * IA32_APIC_BASE changed to @base (the caller checked it: reserved bits
 * and, for the guest, the mode transitions).  The ID follows the mode.
 */
void gmem_lapic_set_base(struct gmem_lapic *a, uint64_t base);

/*
 * MCG_CAP.MCG_CMCI_P: the seventh LVT entry, LVTCMCI, exists (LVR says
 * so).  Its interrupt, for a UCNA (KVM_X86_SET_MCE): delivered through
 * that entry unless masked.
 */
void gmem_lapic_set_cmci(struct gmem_lapic *a, bool on);
void gmem_lapic_deliver_cmci(struct gmem_lapic *a);

/* CPUID.1:ECX.TSC_DEADLINE: whether LVTT may select that mode. */
void gmem_lapic_set_tsc_deadline_cap(struct gmem_lapic *a, bool on);

/*
 * What a register write asks of the caller: an interrupt may have become
 * deliverable (EOI, TPR, a self-IPI, SPIV), so look again before the
 * next instruction.
 */
#define GMEM_LAPIC_EVENT 2

/*
 * After a register write that returned GMEM_LAPIC_EVENT: the vector whose
 * EOI it was if TMR marked it level-triggered (for the IOAPIC's Remote
 * IRR, KVM's kvm_ioapic_send_eoi()), else -1.  Owner only.
 */
int gmem_lapic_take_level_eoi(struct gmem_lapic *a);

/*
 * An x2APIC MSR (@msr in 0x800-0x8ff): 0, or 1 for #GP as KVM gives it
 * (not in x2APIC mode, a reserved register, reserved bits).  @now for
 * the timer.  A write returns 0 or GMEM_LAPIC_EVENT, or 1.
 */
int gmem_lapic_rdmsr(struct gmem_lapic *a, uint32_t msr, uint64_t *v,
		     uint64_t now);
int gmem_lapic_wrmsr(struct gmem_lapic *a, uint32_t msr, uint64_t v,
		     uint64_t now);

/*
 * A guest access to guest-physical @gpa: false if it is not the APIC's
 * page (then it is ordinary MMIO).  In x2APIC mode or with the APIC
 * disabled the page reads as all ones and ignores writes with @hole
 * (KVM_X86_QUIRK_LAPIC_MMIO_HOLE on), else it is not the APIC's;
 * otherwise only aligned 32-bit accesses to a register act, as in KVM.
 * *@event as for gmem_lapic_wrmsr().
 */
bool gmem_lapic_mmio(struct gmem_lapic *a, uint64_t gpa, bool write, void *data,
		     unsigned int len, bool hole, uint64_t now, int *event);

/* The TSC-deadline MSR: 0 unless LVTT is in TSC-deadline mode. */
uint64_t gmem_lapic_get_tsc_deadline(const struct gmem_lapic *a);
/* @tsc is the guest's value, @at_ns the host time the TSC reaches it. */
void gmem_lapic_set_tsc_deadline(struct gmem_lapic *a, uint64_t tsc,
				 uint64_t at_ns);

/*
 * The owner, before the next instruction: the timer fired into IRR if
 * it is due; then the vector to deliver (IRR above PPR), or -1.
 */
int gmem_lapic_pending(struct gmem_lapic *a, uint64_t now);
/* Delivery of @vector to the CPU: IRR to ISR, PPR raised. */
void gmem_lapic_ack(struct gmem_lapic *a, int vector);
/* When the timer next fires (for a halted vCPU's sleep), or UINT64_MAX. */
uint64_t gmem_lapic_next_timer(const struct gmem_lapic *a);

/* CR8 is TPR[7:4]. */
unsigned int gmem_lapic_get_cr8(const struct gmem_lapic *a);
void gmem_lapic_set_cr8(struct gmem_lapic *a, unsigned int cr8);

/*
 * KVM_GET_LAPIC / KVM_SET_LAPIC with kvm_apic_state_fixup()'s x2APIC ID
 * rules: @x2apic_format is KVM_X2APIC_API_USE_32BIT_IDS.  Set: -EINVAL
 * for a mismatched x2APIC ID in that format, nothing changed.
 */
void gmem_lapic_get_state(struct gmem_lapic *a, struct kvm_lapic_state *s,
			  bool x2apic_format, uint64_t now);
int gmem_lapic_set_state(struct gmem_lapic *a, const struct kvm_lapic_state *s,
			 bool x2apic_format, uint64_t now);

/*
 * The VM's APICs, for interrupt delivery.  Its own lock, never held while
 * waiting for a vCPU: a vCPU sends IPIs from guest mode, where a TLB
 * shootdown (which holds the VM's vCPU lock) may be waiting for it.
 */
struct gmem_apic_map {
	pthread_rwlock_t lock;
	struct gmem_lapic **apics;
	size_t nr, cap;
};

int gmem_apic_map_init(struct gmem_apic_map *m);
void gmem_apic_map_destroy(struct gmem_apic_map *m);
int gmem_apic_map_add(struct gmem_apic_map *m, struct gmem_lapic *a);
void gmem_apic_map_remove(struct gmem_apic_map *m, struct gmem_lapic *a);

/*
 * An IPI from @src with ICR @icr (low word: vector, mode, shorthand;
 * high word: the destination, bits 31:24 in xAPIC mode): every APIC it
 * reaches gets the interrupt and its vCPU is kicked, except @src itself,
 * whose caller looks again anyway (GMEM_LAPIC_EVENT).
 */
void gmem_apic_map_send(struct gmem_apic_map *m, struct gmem_lapic *src,
			uint64_t icr);
/*
 * A device's interrupt message (an MSI, kvm_set_msi_irq()): @lo in the
 * ICR low-word layout (vector, delivery mode, logical, trigger), @dest the
 * destination ID (8-bit, or 32-bit with KVM_X2APIC_API_USE_32BIT_IDS).
 * How many APICs accepted it.
 */
int gmem_apic_map_send_msi(struct gmem_apic_map *m, uint32_t dest, uint32_t lo);
/*
 * KVM_HC_SEND_IPI (__pv_send_ipi()): ICR low word @lo to the APIC IDs
 * min + i for the bits i of the 128-bit @bitmap; how many accepted it.
 */
int gmem_apic_map_send_pv(struct gmem_apic_map *m, uint64_t bitmap[2],
			  uint32_t min, uint32_t lo);

#endif /* GMEM_LAPIC_H */
