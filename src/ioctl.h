/* SPDX-License-Identifier: MIT */
/*
 * The handle table behind the façade (and behind guest_memfd numbers in
 * memslots).  Handles are small integers, lowest free first from
 * GMEM_HANDLE_BASE, like a process's fd table but separate from it.
 */
#ifndef GMEM_IOCTL_H
#define GMEM_IOCTL_H

enum gmem_handle_kind {
	GMEM_H_FREE,
	GMEM_H_SYSTEM,
	GMEM_H_VM,
	GMEM_H_VCPU,
	GMEM_H_FILE,
};

#define GMEM_HANDLE_BASE 3

/* Install @obj; returns the handle or -ENOMEM.  The table takes its ref. */
int gmem_handle_alloc(enum gmem_handle_kind kind, void *obj);

/*
 * Look up @fd.  Returns its kind (GMEM_H_FREE if there is no such handle)
 * and, via @objp, the object with a reference taken for the caller.
 */
enum gmem_handle_kind gmem_handle_get(int fd, void **objp);

/* Drop the reference gmem_handle_get() took. */
void gmem_handle_put(enum gmem_handle_kind kind, void *obj);

#endif /* GMEM_IOCTL_H */
