// SPDX-License-Identifier: MIT
/*
 * Coalesced MMIO and PIO (see coalesced.h), after virt/kvm/coalesced_mmio.c:
 * zones are a plain array (a VMM registers a handful), searched on the
 * exit path only.
 */
#include <errno.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "coalesced.h"
#include "util.h"

int gmem_coalesced_init(struct gmem_coalesced *c)
{
	memset(c, 0, sizeof(*c));
	c->fd = memfd_create("gmem-coalesced", MFD_CLOEXEC);
	if (c->fd < 0)
		return -ENOMEM;
	if (ftruncate(c->fd, PAGE_SIZE))
		goto fail;
	c->ring = mmap(NULL, PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED,
		       c->fd, 0);
	if (c->ring == MAP_FAILED)
		goto fail;
	pthread_mutex_init(&c->lock, NULL);
	return 0;
fail:
	close(c->fd);
	c->fd = -1;
	return -ENOMEM;
}

void gmem_coalesced_destroy(struct gmem_coalesced *c)
{
	if (c->fd < 0)
		return;
	munmap(c->ring, PAGE_SIZE);
	close(c->fd);
	pthread_mutex_destroy(&c->lock);
	gmem_free(c->zones);
}

/* (addr, len) lies wholly inside @z (coalesced_mmio_in_range()). */
static bool in_zone(const struct kvm_coalesced_mmio_zone *z, uint64_t addr,
		    uint64_t len)
{
	return addr + len >= addr && addr >= z->addr &&
	       addr + len <= z->addr + z->size;
}

int gmem_coalesced_register(struct gmem_coalesced *c,
			    const struct kvm_coalesced_mmio_zone *zone)
{
	size_t same_bus = 0;
	int r = 0;

	if (zone->pio != 0 && zone->pio != 1)
		return -EINVAL;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nr_zones; i++)
		same_bus += c->zones[i].pio == zone->pio;
	if (same_bus >= GMEM_COALESCED_MAX_ZONES) {
		r = -ENOSPC;
		goto out;
	}
	r = gmem_grow_array(&c->zones, c->nr_zones, &c->cap_zones, 8,
			    sizeof(*c->zones));
	if (r)
		goto out;
	c->zones[c->nr_zones] = *zone;
	__atomic_store_n(&c->nr_zones, c->nr_zones + 1, __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&c->lock);
	return r;
}

int gmem_coalesced_unregister(struct gmem_coalesced *c,
			      const struct kvm_coalesced_mmio_zone *zone)
{
	if (zone->pio != 0 && zone->pio != 1)
		return -EINVAL;
	/*
	 * Every zone of that bus that contains the range goes, as in KVM;
	 * finding none is not an error.
	 */
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nr_zones;) {
		const struct kvm_coalesced_mmio_zone *z = &c->zones[i];

		if (z->pio == zone->pio && in_zone(z, zone->addr, zone->size)) {
			c->zones[i] = c->zones[c->nr_zones - 1];
			__atomic_store_n(&c->nr_zones, c->nr_zones - 1,
					 __ATOMIC_RELEASE);
		} else
			i++;
	}
	pthread_mutex_unlock(&c->lock);
	return 0;
}

bool gmem_coalesced_write(struct gmem_coalesced *c, uint64_t addr, uint32_t len,
			  const void *data, bool pio)
{
	struct kvm_coalesced_mmio_ring *ring = c->ring;
	bool done = false;
	uint32_t insert;

	/* Every port or MMIO exit asks: without zones, answer without a lock.
	 */
	if (c->fd < 0 || len > 8 ||
	    !__atomic_load_n(&c->nr_zones, __ATOMIC_ACQUIRE))
		return false;
	pthread_mutex_lock(&c->lock);
	for (size_t i = 0; i < c->nr_zones && !done; i++)
		done = c->zones[i].pio == pio &&
		       in_zone(&c->zones[i], addr, len);
	if (!done)
		goto out;
	/* The VMM owns first (and may have written anything to last). */
	insert = __atomic_load_n(&ring->last, __ATOMIC_RELAXED);
	if (insert >= KVM_COALESCED_MMIO_MAX ||
	    (insert + 1) % KVM_COALESCED_MMIO_MAX ==
		    __atomic_load_n(&ring->first, __ATOMIC_ACQUIRE)) {
		done = false;
		goto out;
	}
	ring->coalesced_mmio[insert].phys_addr = addr;
	ring->coalesced_mmio[insert].len = len;
	ring->coalesced_mmio[insert].pio = pio;
	memcpy(ring->coalesced_mmio[insert].data, data, len);
	__atomic_store_n(&ring->last, (insert + 1) % KVM_COALESCED_MMIO_MAX,
			 __ATOMIC_RELEASE);
out:
	pthread_mutex_unlock(&c->lock);
	return done;
}
