/* SPDX-License-Identifier: MIT */
/*
 * KVM_IRQFD (KVM's virt/kvm/eventfd.c): an eventfd whose signal raises a
 * GSI, so that a device thread interrupts the guest without an ioctl.
 * One thread per VM, started by the first irqfd, waits on every irqfd's
 * eventfd (epoll), consumes the count and injects: a plain irqfd pulses
 * its GSI (high, then low, as KVM's irqfd_inject()); a resampling one
 * raises it and holds it until the guest's EOI of that pin, then lowers
 * it and signals its resamplefd, so the device can raise it again if it
 * still needs service.
 */
#ifndef GMEM_IRQFD_H
#define GMEM_IRQFD_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <gmem/uapi.h>

struct gmem_irqfd; /* private to irqfd.c */

struct gmem_irqfds {
	pthread_mutex_t lock;
	struct gmem_irqfd *items;
	size_t nr, cap;
	uint64_t next_id; /* epoll tags; 0 is the stop event */
	int epfd, stopfd; /* -1 until the first irqfd */
	pthread_t thread;
	bool running;
	/* The VM's line: GSI @gsi of @source to @level. */
	void (*set_gsi)(void *ctx, uint32_t gsi, unsigned int source,
			bool level);
	void *ctx;
};

void gmem_irqfds_init(struct gmem_irqfds *q,
		      void (*set_gsi)(void *, uint32_t, unsigned int, bool),
		      void *ctx);
/* Stops the thread and closes every irqfd. */
void gmem_irqfds_destroy(struct gmem_irqfds *q);

/*
 * KVM_IRQFD, as kvm_irqfd(): -EINVAL for unknown flags, a file that is
 * not an eventfd, or RESAMPLE without @irqchip; -EAGAIN without
 * @irqchip; -EBADF for a closed fd; -EBUSY for an eventfd already in use;
 * -ENOMEM.  DEASSIGN removes the irqfds of that eventfd and GSI (0 even
 * if there were none).
 */
int gmem_irqfds_ioctl(struct gmem_irqfds *q, const struct kvm_irqfd *args,
		      bool irqchip);

/* The EOI of the level pin that GSI @gsi drives: resamplers let go. */
void gmem_irqfds_ack(struct gmem_irqfds *q, uint32_t gsi);

#endif /* GMEM_IRQFD_H */
