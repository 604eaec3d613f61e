// SPDX-License-Identifier: MIT
/*
 * The in-kernel IOAPIC (see ioapic.h), after KVM's ioapic_set_irq(),
 * ioapic_service(), kvm_ioapic_update_eoi_one() and the indirect register
 * accessors.
 */
#include <errno.h>
#include <string.h>

#include "ioapic.h"

/* Redirection entry fields (82093AA datasheet, 3.2.4). */
#define RE_VECTOR(e) ((uint32_t)(e)&0xff)
#define RE_DM(e) (((uint32_t)(e) >> 8) & 7)
#define RE_LOGICAL (1ull << 11)
#define RE_DELIVS (1ull << 12)
#define RE_REMOTE_IRR (1ull << 14)
#define RE_LEVEL (1ull << 15)
#define RE_MASK (1ull << 16)
#define RE_DEST(e) ((uint32_t)((e) >> 56))

#define REG_ID 0x00
#define REG_VERSION 0x01
#define REG_ARB 0x02
#define REG_REDIR 0x10
/* IOAPIC_VERSION_ID 0x11 with the highest entry's index in bits 23:16. */
#define VERSION (0x11u | (GMEM_IOAPIC_PINS - 1) << 16)

int gmem_ioapic_init(struct gmem_ioapic *io, const struct gmem_ioapic_bus *bus)
{
	memset(io, 0, sizeof(*io));
	if (pthread_mutex_init(&io->lock, NULL))
		return -ENOMEM;
	io->bus = *bus;
	for (unsigned int i = 0; i < GMEM_IOAPIC_PINS; i++)
		io->redir[i] = RE_MASK;
	return 0;
}

void gmem_ioapic_destroy(struct gmem_ioapic *io)
{
	pthread_mutex_destroy(&io->lock);
}

/*
 * ioapic_service(): pin @pin's message, unless masked or (level) waiting
 * for its EOI.  An accepted level message sets Remote IRR.  Under lock.
 */
static int service(struct gmem_ioapic *io, unsigned int pin)
{
	uint64_t *e = &io->redir[pin];
	uint32_t lo;
	int n;

	if ((*e & RE_MASK) || ((*e & RE_LEVEL) && (*e & RE_REMOTE_IRR)))
		return -1;
	/* The ICR layout: vector, mode, logical, asserted, trigger. */
	lo = RE_VECTOR(*e) | RE_DM(*e) << 8 | (*e & RE_LOGICAL ? 1u << 11 : 0) |
	     1u << 14 | (*e & RE_LEVEL ? 1u << 15 : 0);
	n = io->bus.deliver(io->bus.ctx, RE_DEST(*e), lo);
	if (n && (*e & RE_LEVEL))
		*e |= RE_REMOTE_IRR;
	/* kvm_irq_delivery_to_apic()'s -1: nobody took it. */
	return n ? n : -1;
}

int gmem_ioapic_set_irq(struct gmem_ioapic *io, unsigned int pin,
			unsigned int source, bool level)
{
	uint32_t bit = 1u << pin, old;
	int r;

	pthread_mutex_lock(&io->lock);
	/* __kvm_irq_line_state(): the line is high while any source is. */
	if (level)
		io->sources[pin] |= (uint8_t)(1u << source);
	else
		io->sources[pin] &= (uint8_t) ~(1u << source);
	level = io->sources[pin] != 0;
	old = io->irr;
	if (!level) {
		io->irr &= ~bit;
		r = 1;
	} else {
		io->irr |= bit;
		/* An edge line that was already high makes no new edge. */
		if (!(io->redir[pin] & RE_LEVEL) && (old & bit))
			r = 0;
		else
			r = service(io, pin);
	}
	pthread_mutex_unlock(&io->lock);
	return r;
}

void gmem_ioapic_eoi(struct gmem_ioapic *io, unsigned int vector)
{
	pthread_mutex_lock(&io->lock);
	for (unsigned int i = 0; i < GMEM_IOAPIC_PINS; i++) {
		uint64_t *e = &io->redir[i];

		if (RE_VECTOR(*e) != vector || !(*e & RE_LEVEL))
			continue;
		if (io->bus.ack) {
			pthread_mutex_unlock(&io->lock);
			io->bus.ack(io->bus.ctx, i);
			pthread_mutex_lock(&io->lock);
		}
		*e &= ~RE_REMOTE_IRR;
		/* Still asserted: the line interrupts again. */
		if (!(*e & RE_MASK) && (io->irr & (1u << i)))
			service(io, i);
	}
	pthread_mutex_unlock(&io->lock);
}

static uint32_t read_indirect(const struct gmem_ioapic *io)
{
	unsigned int index;

	switch (io->ioregsel) {
	case REG_VERSION:
		return VERSION;
	case REG_ID:
	case REG_ARB:
		return (io->id & 0xf) << 24;
	default:
		/* Past the table (or below it, unsigned): all ones. */
		index = (io->ioregsel - REG_REDIR) >> 1;
		if (io->ioregsel < REG_REDIR || index >= GMEM_IOAPIC_PINS)
			return ~0u;
		return io->ioregsel & 1 ? (uint32_t)(io->redir[index] >> 32)
					: (uint32_t)io->redir[index];
	}
}

static void write_indirect(struct gmem_ioapic *io, uint32_t v)
{
	uint64_t *e, keep;
	unsigned int index;

	switch (io->ioregsel) {
	case REG_VERSION:
	case REG_ARB:
		return; /* read-only */
	case REG_ID:
		io->id = (v >> 24) & 0xf;
		return;
	default:
		index = (io->ioregsel - REG_REDIR) >> 1;
		if (io->ioregsel < REG_REDIR || index >= GMEM_IOAPIC_PINS)
			return;
		e = &io->redir[index];
		/* Remote IRR and the delivery status are read-only. */
		keep = *e & (RE_REMOTE_IRR | RE_DELIVS);
		if (io->ioregsel & 1)
			*e = (*e & 0xffffffffull) | (uint64_t)v << 32;
		else
			*e = (*e & ~0xffffffffull) | v;
		*e = (*e & ~(RE_REMOTE_IRR | RE_DELIVS)) | keep;
		/*
		 * Guests (Linux, Xen) count on an edge entry's Remote IRR
		 * reading clear, as KVM clears it.
		 */
		if (!(*e & RE_LEVEL))
			*e &= ~RE_REMOTE_IRR;
		/* A level line that waited behind the mask goes out now. */
		if ((*e & RE_LEVEL) && (io->irr & (1u << index)))
			service(io, index);
	}
}

bool gmem_ioapic_mmio(struct gmem_ioapic *io, uint64_t gpa, bool write,
		      void *data, unsigned int len)
{
	uint64_t off = gpa - GMEM_IOAPIC_BASE;
	uint64_t v = 0;

	if (gpa < GMEM_IOAPIC_BASE || off >= GMEM_IOAPIC_SIZE || !len ||
	    len > 8)
		return false;
	pthread_mutex_lock(&io->lock);
	if (write) {
		/* ioapic_mmio_write(): the low 32 bits of an 8-byte write. */
		memcpy(&v, data, len < 4 ? len : 4);
		if (off == 0x00)
			io->ioregsel = (uint32_t)v & 0xff;
		else if (off == 0x10)
			write_indirect(io, (uint32_t)v);
	} else {
		if (off == 0x00)
			v = io->ioregsel;
		else if (off == 0x10)
			v = read_indirect(io);
		memcpy(data, &v, len);
	}
	pthread_mutex_unlock(&io->lock);
	return true;
}
