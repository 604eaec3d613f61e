// SPDX-License-Identifier: MIT
/*
 * GSI routing (see irq_route.h).  A table is built whole, then swapped in
 * under the write lock, so a lookup sees the old table or the new one.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "irq_route.h"
#include "util.h"

/* PIC_NUM_PINS: two 8259s of eight pins each. */
#define PIC_PINS 16

static int cmp_gsi(const void *a, const void *b)
{
	const struct gmem_irq_route *x = a, *y = b;

	return x->gsi < y->gsi ? -1 : x->gsi > y->gsi;
}

/* Sort @r and point each IOAPIC pin at the GSI that routes to it. */
static void finish(struct gmem_irq_route *r, size_t nr,
		   int pin_gsi[GMEM_IOAPIC_PINS])
{
	qsort(r, nr, sizeof(*r), cmp_gsi);
	for (unsigned int i = 0; i < GMEM_IOAPIC_PINS; i++)
		pin_gsi[i] = -1;
	for (size_t i = 0; i < nr; i++)
		if (r[i].type == KVM_IRQ_ROUTING_IRQCHIP &&
		    r[i].chip == KVM_IRQCHIP_IOAPIC)
			pin_gsi[r[i].pin] = (int)r[i].gsi;
}

int gmem_irq_routes_init(struct gmem_irq_routes *t)
{
	size_t n = 0;

	memset(t, 0, sizeof(*t));
	/* kvm_setup_default_irq_routing(): 24 IOAPIC routes, 16 PIC ones. */
	t->r = gmem_zalloc((GMEM_IOAPIC_PINS + PIC_PINS) * sizeof(*t->r));
	if (!t->r || pthread_rwlock_init(&t->lock, NULL)) {
		gmem_free(t->r);
		return -ENOMEM;
	}
	for (uint32_t i = 0; i < GMEM_IOAPIC_PINS; i++) {
		t->r[n++] =
			(struct gmem_irq_route){.gsi = i,
						.type = KVM_IRQ_ROUTING_IRQCHIP,
						.chip = KVM_IRQCHIP_IOAPIC,
						.pin = i};
		if (i < PIC_PINS)
			t->r[n++] = (struct gmem_irq_route){
				.gsi = i,
				.type = KVM_IRQ_ROUTING_IRQCHIP,
				.chip = i < 8 ? KVM_IRQCHIP_PIC_MASTER
					      : KVM_IRQCHIP_PIC_SLAVE,
				.pin = i};
	}
	t->nr = n;
	finish(t->r, t->nr, t->pin_gsi);
	return 0;
}

void gmem_irq_routes_destroy(struct gmem_irq_routes *t)
{
	pthread_rwlock_destroy(&t->lock);
	gmem_free(t->r);
}

/* kvm_set_routing_entry() for x86, after setup_routing_entry()'s rule. */
static int convert(const struct kvm_irq_routing_entry *ue,
		   struct gmem_irq_route *e, bool x2apic_format)
{
	*e = (struct gmem_irq_route){.gsi = ue->gsi, .type = ue->type};
	switch (ue->type) {
	case KVM_IRQ_ROUTING_IRQCHIP:
		if (ue->flags)
			return -EINVAL;
		e->chip = ue->u.irqchip.irqchip;
		e->pin = ue->u.irqchip.pin;
		switch (e->chip) {
		case KVM_IRQCHIP_PIC_SLAVE:
		case KVM_IRQCHIP_PIC_MASTER:
			if (e->pin >= PIC_PINS / 2)
				return -EINVAL;
			if (e->chip == KVM_IRQCHIP_PIC_SLAVE)
				e->pin += PIC_PINS / 2;
			return 0;
		case KVM_IRQCHIP_IOAPIC:
			return e->pin < GMEM_IOAPIC_PINS ? 0 : -EINVAL;
		default:
			return -EINVAL;
		}
	case KVM_IRQ_ROUTING_MSI:
		if (ue->flags & ~KVM_MSI_VALID_DEVID)
			return -EINVAL;
		e->lo = ue->u.msi.address_lo;
		e->hi = ue->u.msi.address_hi;
		e->data = ue->u.msi.data;
		/* kvm_msi_route_invalid() */
		return x2apic_format && (e->hi & 0xff) ? -EINVAL : 0;
	default:
		/* S390 adapters, Hyper-V SynIC, Xen event channels: none. */
		return -EINVAL;
	}
}

int gmem_irq_routes_set(struct gmem_irq_routes *t,
			const struct kvm_irq_routing_entry *ue, uint32_t nr,
			bool x2apic_format)
{
	struct gmem_irq_route *r, *old;
	int pin_gsi[GMEM_IOAPIC_PINS];
	int err = 0;

	for (uint32_t i = 0; i < nr; i++)
		if (ue[i].gsi >= KVM_MAX_IRQ_ROUTES)
			return -EINVAL;
	r = gmem_zalloc((nr ? nr : 1) * sizeof(*r));
	if (!r)
		return -ENOMEM;
	for (uint32_t i = 0; i < nr && !err; i++)
		err = convert(&ue[i], &r[i], x2apic_format);
	if (!err)
		finish(r, nr, pin_gsi);
	/*
	 * One route per irqchip for a GSI, and a non-irqchip route stands
	 * alone: sorted, a GSI's routes are neighbours (and a group that
	 * breaks the rule does so by its fourth member at the latest).
	 */
	for (size_t i = 1; i < nr && !err; i++)
		for (size_t k = i; k-- > 0 && r[k].gsi == r[i].gsi && !err;)
			if (r[k].type != KVM_IRQ_ROUTING_IRQCHIP ||
			    r[i].type != KVM_IRQ_ROUTING_IRQCHIP ||
			    r[k].chip == r[i].chip)
				err = -EINVAL;
	if (err) {
		gmem_free(r);
		return err;
	}
	pthread_rwlock_wrlock(&t->lock);
	old = t->r;
	t->r = r;
	t->nr = nr;
	memcpy(t->pin_gsi, pin_gsi, sizeof(pin_gsi));
	pthread_rwlock_unlock(&t->lock);
	gmem_free(old);
	return 0;
}

size_t gmem_irq_routes_get(struct gmem_irq_routes *t, uint32_t gsi,
			   struct gmem_irq_route out[GMEM_IRQ_ROUTES_PER_GSI])
{
	size_t lo = 0, hi, n = 0;

	pthread_rwlock_rdlock(&t->lock);
	/* The first route of @gsi, by bisection over the sorted table. */
	hi = t->nr;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (t->r[mid].gsi < gsi)
			lo = mid + 1;
		else
			hi = mid;
	}
	for (; lo < t->nr && t->r[lo].gsi == gsi && n < GMEM_IRQ_ROUTES_PER_GSI;
	     lo++)
		out[n++] = t->r[lo];
	pthread_rwlock_unlock(&t->lock);
	return n;
}

int gmem_irq_routes_pin_gsi(struct gmem_irq_routes *t, unsigned int pin)
{
	int g;

	pthread_rwlock_rdlock(&t->lock);
	g = t->pin_gsi[pin];
	pthread_rwlock_unlock(&t->lock);
	return g;
}
