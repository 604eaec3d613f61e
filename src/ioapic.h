/* SPDX-License-Identifier: MIT */
/*
 * The in-kernel IOAPIC of KVM_CREATE_IRQCHIP (KVM's virt/kvm/ioapic.c):
 * 24 pins, the MMIO window at 0xfec00000 (IOREGSEL at 0x00, IOWIN at
 * 0x10), version 0x11, and the redirection table whose entries turn a pin
 * into an interrupt message for the local APICs.
 *
 * A pin's level is the OR of its sources' (KVM_IRQ_LINE and plain
 * irqfds are GMEM_IOAPIC_SRC_USER, resampling irqfds _RESAMPLE; GSI n is
 * pin n).  An edge entry
 * sends its message on a rising level; a level entry sends it while the
 * line is high and Remote IRR is clear, sets Remote IRR when a local APIC
 * took it, and clears it at the EOI of its vector, sending again if the
 * line is still high.  Messages go out through the bus the VM gives
 * (struct gmem_ioapic_bus), with the IOAPIC's lock held: the bus must not
 * call back into the IOAPIC.
 */
#ifndef GMEM_IOAPIC_H
#define GMEM_IOAPIC_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#define GMEM_IOAPIC_PINS 24
#define GMEM_IOAPIC_BASE 0xfec00000ull
#define GMEM_IOAPIC_SIZE 0x100

struct gmem_ioapic_bus {
	/*
	 * Send one message (@lo in the ICR low-word layout, @dest the 8-bit
	 * destination): how many local APICs accepted it.
	 */
	int (*deliver)(void *ctx, uint32_t dest, uint32_t lo);
	/*
	 * The EOI of level pin @pin, before Remote IRR clears (KVM's ack
	 * notifiers: a resampling irqfd lowers its line here).  Called
	 * without the IOAPIC's lock, so it may call gmem_ioapic_set_irq().
	 */
	void (*ack)(void *ctx, unsigned int pin);
	void *ctx;
};

#define GMEM_IOAPIC_SRC_USER 0
#define GMEM_IOAPIC_SRC_RESAMPLE 1

struct gmem_ioapic {
	pthread_mutex_t lock;
	struct gmem_ioapic_bus bus;
	uint32_t ioregsel, id;
	uint32_t irr;			   /* the pins' levels */
	uint8_t sources[GMEM_IOAPIC_PINS]; /* bit s: source s holds it high */
	uint64_t redir[GMEM_IOAPIC_PINS];
};

/* kvm_ioapic_reset(): every entry masked, ID 0.  0 or -errno. */
int gmem_ioapic_init(struct gmem_ioapic *io, const struct gmem_ioapic_bus *bus);
void gmem_ioapic_destroy(struct gmem_ioapic *io);

/*
 * KVM_IRQ_LINE on pin @pin (< GMEM_IOAPIC_PINS): KVM's status, 1 when a
 * message went out (or a low level), 0 for an edge line that was already
 * high, -1 when the entry is masked, Remote IRR blocks it, or no APIC
 * took it.
 */
int gmem_ioapic_set_irq(struct gmem_ioapic *io, unsigned int pin,
			unsigned int source, bool level);

/* The EOI of @vector by a local APIC whose TMR had it (level-triggered). */
void gmem_ioapic_eoi(struct gmem_ioapic *io, unsigned int vector);

/*
 * A guest access at @gpa: false if it is not the IOAPIC's window.  Any
 * size; only IOREGSEL and IOWIN act, as in KVM.
 */
bool gmem_ioapic_mmio(struct gmem_ioapic *io, uint64_t gpa, bool write,
		      void *data, unsigned int len);

#endif /* GMEM_IOAPIC_H */
