// SPDX-License-Identifier: MIT
/*
 * ioeventfds (see ioeventfd.h), after kvm_assign_ioeventfd(),
 * ioeventfd_check_collision() and ioeventfd_in_range().  Each keeps its
 * own duplicate of the program's eventfd.
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "ioeventfd.h"
#include "util.h"

/* KVM's NR_IOBUS_DEVS: devices per bus (MMIO and PIO each). */
#define MAX_PER_BUS 1000

#define VALID_FLAGS                                              \
	(KVM_IOEVENTFD_FLAG_DATAMATCH | KVM_IOEVENTFD_FLAG_PIO | \
	 KVM_IOEVENTFD_FLAG_DEASSIGN | KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY)

/* The buses: KVM_MMIO_BUS, KVM_PIO_BUS, KVM_VIRTIO_CCW_NOTIFY_BUS. */
enum { BUS_MMIO, BUS_PIO, BUS_CCW };

struct gmem_ioeventfd {
	uint64_t addr, datamatch;
	uint32_t len; /* 0: any length */
	int bus;
	bool wildcard;
	int fd, user_fd; /* ours, and the program's number */
};

int gmem_ioeventfds_init(struct gmem_ioeventfds *q)
{
	memset(q, 0, sizeof(*q));
	return pthread_rwlock_init(&q->lock, NULL) ? -ENOMEM : 0;
}

void gmem_ioeventfds_destroy(struct gmem_ioeventfds *q)
{
	for (size_t i = 0; i < q->nr; i++)
		close(q->items[i].fd);
	gmem_free(q->items);
	pthread_rwlock_destroy(&q->lock);
}

/*
 * ioeventfd_bus_from_flags().  Nothing on x86 writes s390's CCW notify
 * bus: such an ioeventfd is taken and never fires, as in KVM.
 */
static int bus_of(uint32_t flags)
{
	if (flags & KVM_IOEVENTFD_FLAG_PIO)
		return BUS_PIO;
	return flags & KVM_IOEVENTFD_FLAG_VIRTIO_CCW_NOTIFY ? BUS_CCW
							    : BUS_MMIO;
}

/* ioeventfd_check_collision() */
static bool collides(const struct gmem_ioeventfd *a,
		     const struct gmem_ioeventfd *b)
{
	return a->bus == b->bus && a->addr == b->addr &&
	       (!a->len || !b->len ||
		(a->len == b->len &&
		 (a->wildcard || b->wildcard || a->datamatch == b->datamatch)));
}

static int assign(struct gmem_ioeventfds *q, const struct kvm_ioeventfd *args,
		  int bus)
{
	struct gmem_ioeventfd e = {
		.addr = args->addr,
		.datamatch = args->datamatch,
		.len = args->len,
		.bus = bus,
		.wildcard = !(args->flags & KVM_IOEVENTFD_FLAG_DATAMATCH),
		.user_fd = args->fd};
	size_t on_bus = 0;
	int r;

	switch (args->len) {
	case 0:
	case 1:
	case 2:
	case 4:
	case 8:
		break;
	default:
		return -EINVAL;
	}
	if (args->addr + args->len < args->addr ||
	    (args->flags & ~VALID_FLAGS) ||
	    (!args->len && (args->flags & KVM_IOEVENTFD_FLAG_DATAMATCH)))
		return -EINVAL;
	r = gmem_eventfd_check(args->fd);
	if (r)
		return r;
	if (e.wildcard)
		e.datamatch = 0;
	for (size_t i = 0; i < q->nr; i++) {
		if (collides(&q->items[i], &e))
			return -EEXIST;
		on_bus += q->items[i].bus == bus;
	}
	if (on_bus >= MAX_PER_BUS)
		return -ENOSPC;
	r = gmem_grow_array(&q->items, q->nr, &q->cap, 4, sizeof(*q->items));
	if (r)
		return r;
	e.fd = fcntl(args->fd, F_DUPFD_CLOEXEC, 0);
	if (e.fd < 0)
		return -ENOMEM;
	q->items[q->nr++] = e;
	return 0;
}

/* kvm_deassign_ioeventfd_idx(): the first exact match, else -ENOENT. */
static int deassign(struct gmem_ioeventfds *q, const struct kvm_ioeventfd *args,
		    int bus)
{
	bool wildcard = !(args->flags & KVM_IOEVENTFD_FLAG_DATAMATCH);
	int r = gmem_eventfd_check(args->fd);

	if (r)
		return r;
	for (size_t i = 0; i < q->nr; i++) {
		struct gmem_ioeventfd *e = &q->items[i];

		if (e->bus != bus || e->addr != args->addr ||
		    e->len != args->len || e->wildcard != wildcard ||
		    (!wildcard && e->datamatch != args->datamatch) ||
		    !gmem_same_file(e->fd, e->user_fd, args->fd))
			continue;
		close(e->fd);
		q->items[i] = q->items[--q->nr];
		return 0;
	}
	return -ENOENT;
}

int gmem_ioeventfds_ioctl(struct gmem_ioeventfds *q,
			  const struct kvm_ioeventfd *args)
{
	int bus = bus_of(args->flags), r;

	pthread_rwlock_wrlock(&q->lock);
	if (args->flags & KVM_IOEVENTFD_FLAG_DEASSIGN)
		r = deassign(q, args, bus);
	else
		r = assign(q, args, bus);
	pthread_rwlock_unlock(&q->lock);
	return r;
}

bool gmem_ioeventfds_write(struct gmem_ioeventfds *q, bool pio, uint64_t addr,
			   unsigned int len, const void *data)
{
	int bus = pio ? BUS_PIO : BUS_MMIO;
	uint64_t v = 0, one = 1;
	bool hit = false;

	memcpy(&v, data, len < 8 ? len : 8);
	pthread_rwlock_rdlock(&q->lock);
	for (size_t i = 0; i < q->nr && !hit; i++) {
		const struct gmem_ioeventfd *e = &q->items[i];

		/* ioeventfd_in_range() */
		if (e->bus != bus || e->addr != addr ||
		    (e->len &&
		     (e->len != len || (!e->wildcard && e->datamatch != v))))
			continue;
		/* eventfd_signal(): a full counter cannot take more. */
		hit = true;
		if (write(e->fd, &one, sizeof(one)) != sizeof(one))
			break;
	}
	pthread_rwlock_unlock(&q->lock);
	return hit;
}
