/* SPDX-License-Identifier: MIT */
/*
 * KVM_IOEVENTFD (KVM's virt/kvm/eventfd.c): a guest write to an MMIO
 * address or I/O port signals an eventfd instead of exiting, optionally
 * only for one value (DATAMATCH), and the write is done: what virtio's
 * queue notifications use.  Reads still exit.
 */
#ifndef GMEM_IOEVENTFD_H
#define GMEM_IOEVENTFD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gmem/uapi.h>

struct gmem_ioeventfd; /* private to ioeventfd.c */

struct gmem_ioeventfds {
	pthread_rwlock_t lock; /* writers: the ioctl; readers: vCPUs */
	struct gmem_ioeventfd *items;
	size_t nr, cap;
};

int gmem_ioeventfds_init(struct gmem_ioeventfds *q);
void gmem_ioeventfds_destroy(struct gmem_ioeventfds *q);

/*
 * KVM_IOEVENTFD, as kvm_ioeventfd(): -EINVAL for a length other than
 * 0/1/2/4/8, an address range that wraps, unknown flags, DATAMATCH with
 * length 0 or a non-eventfd; -EBADF; -EEXIST for a colliding one; -ENOSPC
 * past KVM's 1000 per bus; DEASSIGN of none is -ENOENT.
 */
int gmem_ioeventfds_ioctl(struct gmem_ioeventfds *q,
			  const struct kvm_ioeventfd *args);

/*
 * A guest write of @len bytes of @data at @addr (a port with @pio): true
 * if an ioeventfd took it (its eventfd signalled).
 */
bool gmem_ioeventfds_write(struct gmem_ioeventfds *q, bool pio, uint64_t addr,
			   unsigned int len, const void *data);

#endif /* GMEM_IOEVENTFD_H */
