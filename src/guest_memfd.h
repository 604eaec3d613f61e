/* SPDX-License-Identifier: MIT */
/*
 * guest_memfd files: fixed-size RAM files that only the guest reaches.
 *
 * A file reserves its whole size of address space at creation (never
 * populated until allocated or faulted); punching a hole gives the pages
 * back to the kernel, so the next access sees fresh zeroes.  The host
 * pointer never leaves the library.
 */
#ifndef GMEM_GUEST_MEMFD_H
#define GMEM_GUEST_MEMFD_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "attr.h"

struct gmem_vm;
struct gmem_memslot;

struct gmem_binding {
	struct gmem_memslot *slot;
	uint64_t pgoff, npages;
};

struct gmem_file {
	atomic_int refcount;
	struct gmem_vm *vm;
	uint64_t size;
	uint64_t ino;
	uint64_t flags; /* GUEST_MEMFD_FLAG_* */
	int memfd;	/* GUEST_MEMFD_FLAG_MMAP: the memory's file, else -1 */
	uint8_t *mem;	/* 2 MiB aligned, 1 GiB from 1 GiB on */
	void *map;	/* the reservation, for munmap */
	size_t map_size;

	/* Under vm->lock (writers) and vm->state_lock. */
	struct gmem_ranges poison;
	struct gmem_binding *bindings;
	size_t nr_bindings, cap_bindings;
};

/* Look up an open guest_memfd handle; takes a reference. */
int gmem_file_from_handle(int fd, struct gmem_file **filep);
void gmem_file_put(struct gmem_file *file);

/*
 * mmap() of the file by the host, as 6.18's kvm_gmem_mmap(): ENODEV
 * without GUEST_MEMFD_FLAG_MMAP, EINVAL unless shared; MAP_FAILED and
 * errno on failure, as mmap().
 */
void *gmem_file_mmap(struct gmem_file *file, void *addr, size_t len, int prot,
		     int flags, off_t off);

/* Handle-table release: unbind every slot, then drop the handle's ref. */
void gmem_file_release(struct gmem_file *file);

/*
 * Binding, under vm->lock.  gmem_file_bind_check() validates @slot's range
 * against the file and reserves room; gmem_file_bind() then cannot fail.
 */
int gmem_file_bind_check(struct gmem_file *file, uint64_t pgoff,
			 uint64_t npages);
void gmem_file_bind(struct gmem_file *file, struct gmem_memslot *slot);
void gmem_file_unbind(struct gmem_file *file, struct gmem_memslot *slot);

#endif /* GMEM_GUEST_MEMFD_H */
