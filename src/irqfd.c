// SPDX-License-Identifier: MIT
/*
 * irqfds (see irqfd.h).  Each irqfd keeps its own duplicates of the
 * program's eventfds, so the program may close its copies; the poller
 * thread finds irqfds by tag under the lock, so an irqfd removed while an
 * event for it was in flight is simply not found.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include "ioapic.h"
#include "irqfd.h"
#include "util.h"

struct gmem_irqfd {
	uint64_t tag;
	int fd, resamplefd; /* ours; resamplefd -1 without RESAMPLE */
	int user_fd;	    /* the program's number, for a kcmp()-less check */
	uint32_t gsi;
};

void gmem_irqfds_init(struct gmem_irqfds *q,
		      void (*set_gsi)(void *, uint32_t, unsigned int, bool),
		      void *ctx)
{
	memset(q, 0, sizeof(*q));
	pthread_mutex_init(&q->lock, NULL);
	q->epfd = q->stopfd = -1;
	q->next_id = 1;
	q->set_gsi = set_gsi;
	q->ctx = ctx;
}

static void drop(struct gmem_irqfds *q, size_t i)
{
	struct gmem_irqfd *f = &q->items[i];

	epoll_ctl(q->epfd, EPOLL_CTL_DEL, f->fd, NULL);
	close(f->fd);
	if (f->resamplefd >= 0) {
		/* A resampler's line goes down with it
		 * (irqfd_resampler_shutdown). */
		q->set_gsi(q->ctx, f->gsi, GMEM_IOAPIC_SRC_RESAMPLE, false);
		close(f->resamplefd);
	}
	q->items[i] = q->items[--q->nr];
}

void gmem_irqfds_destroy(struct gmem_irqfds *q)
{
	if (q->running) {
		uint64_t one = 1;

		if (write(q->stopfd, &one, sizeof(one)) == sizeof(one))
			pthread_join(q->thread, NULL);
	}
	pthread_mutex_lock(&q->lock);
	while (q->nr)
		drop(q, q->nr - 1);
	pthread_mutex_unlock(&q->lock);
	if (q->epfd >= 0)
		close(q->epfd);
	if (q->stopfd >= 0)
		close(q->stopfd);
	gmem_free(q->items);
	pthread_mutex_destroy(&q->lock);
}

/* irqfd_inject(): a plain irqfd pulses, a resampler holds the line. */
static void fire(struct gmem_irqfds *q, const struct gmem_irqfd *f)
{
	if (f->resamplefd >= 0) {
		q->set_gsi(q->ctx, f->gsi, GMEM_IOAPIC_SRC_RESAMPLE, true);
		return;
	}
	q->set_gsi(q->ctx, f->gsi, GMEM_IOAPIC_SRC_USER, true);
	q->set_gsi(q->ctx, f->gsi, GMEM_IOAPIC_SRC_USER, false);
}

static void *poller(void *arg)
{
	struct gmem_irqfds *q = arg;
	struct epoll_event ev[16];

	for (;;) {
		int n = epoll_wait(q->epfd, ev, 16, -1);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return NULL;
		pthread_mutex_lock(&q->lock);
		for (int i = 0; i < n; i++) {
			if (!ev[i].data.u64) {
				pthread_mutex_unlock(&q->lock);
				return NULL;
			}
			for (size_t k = 0; k < q->nr; k++) {
				struct gmem_irqfd *f = &q->items[k];
				uint64_t cnt;

				if (f->tag != ev[i].data.u64)
					continue;
				/* Readable: the count is there to consume. */
				if (read(f->fd, &cnt, sizeof(cnt)) ==
				    sizeof(cnt))
					fire(q, f);
				break;
			}
		}
		pthread_mutex_unlock(&q->lock);
	}
}

/* The thread, its epoll set and stop event, at the first irqfd. */
static int start(struct gmem_irqfds *q)
{
	struct epoll_event ev = {.events = EPOLLIN, .data.u64 = 0};
	sigset_t all, old;
	int r;

	if (q->running)
		return 0;
	q->epfd = epoll_create1(EPOLL_CLOEXEC);
	q->stopfd = eventfd(0, EFD_CLOEXEC);
	if (q->epfd < 0 || q->stopfd < 0 ||
	    epoll_ctl(q->epfd, EPOLL_CTL_ADD, q->stopfd, &ev))
		goto fail;
	/* The program's signals are for its own threads, not this one. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	r = pthread_create(&q->thread, NULL, poller, q);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (r)
		goto fail;
	q->running = true;
	return 0;
fail:
	if (q->epfd >= 0)
		close(q->epfd);
	if (q->stopfd >= 0)
		close(q->stopfd);
	q->epfd = q->stopfd = -1;
	return -ENOMEM;
}

static int assign(struct gmem_irqfds *q, const struct kvm_irqfd *args)
{
	bool resample = args->flags & KVM_IRQFD_FLAG_RESAMPLE;
	struct gmem_irqfd f = {
		.resamplefd = -1, .user_fd = (int)args->fd, .gsi = args->gsi};
	struct epoll_event ev = {.events = EPOLLIN};
	int r;

	r = gmem_eventfd_check((int)args->fd);
	if (!r && resample)
		r = gmem_eventfd_check((int)args->resamplefd);
	if (r)
		return r;
	for (size_t i = 0; i < q->nr; i++)
		if (gmem_same_file(q->items[i].fd, q->items[i].user_fd,
				   (int)args->fd))
			return -EBUSY;
	r = start(q);
	if (!r)
		r = gmem_grow_array(&q->items, q->nr, &q->cap, 4,
				    sizeof(*q->items));
	if (r)
		return r;
	f.fd = fcntl((int)args->fd, F_DUPFD_CLOEXEC, 0);
	if (resample)
		f.resamplefd = fcntl((int)args->resamplefd, F_DUPFD_CLOEXEC, 0);
	f.tag = q->next_id++;
	ev.data.u64 = f.tag;
	/* Already signalled: the level-triggered set reports it at once. */
	if (f.fd < 0 || (resample && f.resamplefd < 0) ||
	    epoll_ctl(q->epfd, EPOLL_CTL_ADD, f.fd, &ev)) {
		if (f.fd >= 0)
			close(f.fd);
		if (f.resamplefd >= 0)
			close(f.resamplefd);
		return -ENOMEM;
	}
	q->items[q->nr++] = f;
	return 0;
}

int gmem_irqfds_ioctl(struct gmem_irqfds *q, const struct kvm_irqfd *args,
		      bool irqchip)
{
	int r;

	if (args->flags & ~(KVM_IRQFD_FLAG_DEASSIGN | KVM_IRQFD_FLAG_RESAMPLE))
		return -EINVAL;
	pthread_mutex_lock(&q->lock);
	if (args->flags & KVM_IRQFD_FLAG_DEASSIGN) {
		r = gmem_eventfd_check((int)args->fd);
		for (size_t i = q->nr; !r && i-- > 0;)
			if (q->items[i].gsi == args->gsi &&
			    gmem_same_file(q->items[i].fd, q->items[i].user_fd,
					   (int)args->fd))
				drop(q, i);
	} else if (!irqchip) {
		/* kvm_arch_intc_initialized(): no in-kernel irqchip yet. */
		r = -EAGAIN;
	} else {
		r = assign(q, args);
	}
	pthread_mutex_unlock(&q->lock);
	return r;
}

void gmem_irqfds_ack(struct gmem_irqfds *q, uint32_t gsi)
{
	pthread_mutex_lock(&q->lock);
	for (size_t i = 0; i < q->nr; i++) {
		struct gmem_irqfd *f = &q->items[i];
		uint64_t one = 1;

		if (f->gsi != gsi || f->resamplefd < 0)
			continue;
		/* irqfd_resampler_ack(): lower the line, tell the device. */
		q->set_gsi(q->ctx, gsi, GMEM_IOAPIC_SRC_RESAMPLE, false);
		/* A full counter already tells it as much. */
		ssize_t w = write(f->resamplefd, &one, sizeof(one));

		(void)w;
	}
	pthread_mutex_unlock(&q->lock);
}
