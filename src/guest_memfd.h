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

/* A guest_memfd file; private to guest_memfd.c. */
struct gmem_file;

/*
 * Whether this kernel has memfd_secret(2), which GUEST_MEMFD_FLAG_NO_DIRECT_MAP
 * files take their memory from (probed once).
 */
bool gmem_secretmem_supported(void);

/* Look up an open guest_memfd handle; takes a reference. */
int gmem_file_from_handle(int fd, struct gmem_file **filep);
void gmem_file_put(struct gmem_file *file);

/*
 * The MMU's view of a file (KVM's kvm_gmem_get_pfn()): the host address of
 * file page @pgoff, or -EHWPOISON; [*run0, *run1) is the poison-free run
 * of file pages around it, for the mapping size.  Under state_lock (read).
 */
int gmem_file_get_page(struct gmem_file *file, uint64_t pgoff, uint8_t **page,
		       uint64_t *run0, uint64_t *run1);

/*
 * Population by write() (the posted series "KVM: guest_memfd: add generic
 * population via write", v6): a GUEST_MEMFD_FLAG_MMAP file takes write()
 * and pwrite() within its size (-EINVAL past it, or for another file, as
 * 6.12 has no write) and lseek() (-ESPIPE for another file).  @off NULL:
 * at the file position.  The count written, or -errno.
 */
ssize_t gmem_file_write(struct gmem_file *file, const void *buf, size_t n,
			const off_t *off);
off_t gmem_file_seek(struct gmem_file *file, off_t off, int whence);

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
 * against the file (which must be @vm's: -EINVAL) and reserves room;
 * gmem_file_bind() then cannot fail.
 */
int gmem_file_bind_check(struct gmem_file *file, const struct gmem_vm *vm,
			 uint64_t pgoff, uint64_t npages);
void gmem_file_bind(struct gmem_file *file, struct gmem_memslot *slot);
void gmem_file_unbind(struct gmem_file *file, struct gmem_memslot *slot);

#endif /* GMEM_GUEST_MEMFD_H */
