/* SPDX-License-Identifier: MIT */
/*
 * GSI routing (KVM's virt/kvm/irqchip.c with x86's irq_comm.c): what each
 * GSI drives, an IOAPIC pin, a PIC pin or an MSI.  KVM_CREATE_IRQCHIP's
 * default table sends GSI n to IOAPIC pin n (0-23) and, below 16, to the
 * PIC; KVM_SET_GSI_ROUTING replaces it whole.  The PIC is not modelled:
 * its routes are kept (the table reads as KVM's) and reach nothing.
 */
#ifndef GMEM_IRQ_ROUTE_H
#define GMEM_IRQ_ROUTE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gmem/uapi.h>

#include "ioapic.h"

struct gmem_irq_route {
	uint32_t gsi, type;    /* KVM_IRQ_ROUTING_IRQCHIP or _MSI */
	uint32_t chip, pin;    /* IRQCHIP; a PIC slave pin counts from 8 */
	uint32_t lo, hi, data; /* MSI: address_lo/hi and data */
};

/* At most one route per irqchip, or a single other one, for a GSI. */
#define GMEM_IRQ_ROUTES_PER_GSI 3

struct gmem_irq_routes {
	pthread_rwlock_t lock;
	struct gmem_irq_route *r; /* sorted by GSI */
	size_t nr;
	int pin_gsi[GMEM_IOAPIC_PINS]; /* the GSI an IOAPIC pin acks, or -1 */
};

/* The default table.  0 or -ENOMEM. */
int gmem_irq_routes_init(struct gmem_irq_routes *t);
void gmem_irq_routes_destroy(struct gmem_irq_routes *t);

/*
 * KVM_SET_GSI_ROUTING's table of @nr entries, checked as
 * kvm_set_irq_routing() does (-EINVAL: a GSI at or above
 * KVM_MAX_IRQ_ROUTES, flags other than an MSI's KVM_MSI_VALID_DEVID, a
 * second route to one irqchip or beside a non-irqchip one, a bad chip or
 * pin, another type, an MSI with address_hi bits 7:0 under @x2apic_format),
 * then put in place; -ENOMEM changes nothing.
 */
int gmem_irq_routes_set(struct gmem_irq_routes *t,
			const struct kvm_irq_routing_entry *ue, uint32_t nr,
			bool x2apic_format);

/* The routes of @gsi, copied into @out: how many. */
size_t gmem_irq_routes_get(struct gmem_irq_routes *t, uint32_t gsi,
			   struct gmem_irq_route out[GMEM_IRQ_ROUTES_PER_GSI]);

/* The GSI whose route is IOAPIC pin @pin (the last one), or -1. */
int gmem_irq_routes_pin_gsi(struct gmem_irq_routes *t, unsigned int pin);

#endif /* GMEM_IRQ_ROUTE_H */
