/* SPDX-License-Identifier: MIT */
/*
 * Coalesced MMIO and PIO (KVM_REGISTER_COALESCED_MMIO): guest writes to a
 * registered zone are appended to a per-VM ring instead of exiting, and
 * the VMM drains the ring at its next exit.  The ring is one page, the
 * third page of every vCPU's kvm_run mapping (KVM_COALESCED_MMIO_PAGE_OFFSET),
 * shared by all of the VM's vCPUs as in KVM; it lives in a memfd so that
 * each vCPU mapping can map the same page.
 *
 * Invariant (KVM's): the ring always keeps one entry free, so first ==
 * last means empty; a write that would fill it exits as usual.
 */
#ifndef GMEM_COALESCED_H
#define GMEM_COALESCED_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gmem/uapi.h>

/* KVM's NR_IOBUS_DEVS: zones per bus (MMIO and PIO each). */
#define GMEM_COALESCED_MAX_ZONES 1000

struct gmem_coalesced {
	int fd; /* the ring page */
	struct kvm_coalesced_mmio_ring *ring;
	pthread_mutex_t lock; /* zones and ring appends */
	struct kvm_coalesced_mmio_zone *zones;
	size_t nr_zones, cap_zones;
};

int gmem_coalesced_init(struct gmem_coalesced *c);
void gmem_coalesced_destroy(struct gmem_coalesced *c);

/* KVM_(UN)REGISTER_COALESCED_MMIO: -EINVAL for a bad pio, -ENOSPC, -ENOMEM. */
int gmem_coalesced_register(struct gmem_coalesced *c,
			    const struct kvm_coalesced_mmio_zone *zone);
int gmem_coalesced_unregister(struct gmem_coalesced *c,
			      const struct kvm_coalesced_mmio_zone *zone);

/*
 * A guest write of @len bytes at @addr (a port if @pio): true if a zone
 * covers it and the ring had room, so that no exit is needed.
 */
bool gmem_coalesced_write(struct gmem_coalesced *c, uint64_t addr, uint32_t len,
			  const void *data, bool pio);

#endif /* GMEM_COALESCED_H */
