/* SPDX-License-Identifier: MIT */
/*
 * The handle table: what a process's fd table is to the kernel's files.
 *
 * A handle number names an open handle (struct gmem_handle, like a struct
 * file): the object behind it (system, VM, vCPU or guest_memfd) and a
 * count of the numbers and in-flight calls that hold it.  Closing a
 * number drops its hold; the object's release (unbinding a guest_memfd,
 * destroying a vCPU, dropping a VM) runs when the last hold goes, so a
 * close racing an ioctl on the same handle never frees what the ioctl
 * uses.  Several numbers may share one handle (gmem_handle_dup()).
 *
 * Numbering.  By default numbers are the lowest free from
 * GMEM_HANDLE_BASE in a table of the library's own, never confused with
 * the process's fds by the façade.  The drop-in (libgmem-kvm.so) instead
 * registers numbering ops that reserve a real kernel fd for each handle,
 * so that handle numbers are the program's fd numbers.
 */
#ifndef GMEM_HANDLE_H
#define GMEM_HANDLE_H

#include <stdbool.h>

enum gmem_handle_kind {
	GMEM_H_FREE,
	GMEM_H_SYSTEM,
	GMEM_H_VM,
	GMEM_H_VCPU,
	GMEM_H_FILE,
	GMEM_H_STATS, /* a KVM_GET_STATS_FD file (stats.c) */
};

#define GMEM_HANDLE_BASE 3

struct gmem_handle;

/*
 * A looked-up handle: the kind and object, valid until gmem_handle_put().
 * The object's own refcount is not taken; the handle's hold keeps it.
 */
struct gmem_handle_ref {
	enum gmem_handle_kind kind;
	void *obj;
	struct gmem_handle *h;
};

/*
 * Number allocation for a new handle.  reserve() returns a number that
 * is not in use in the table's sense (a real fd the kernel just gave out)
 * or -errno; release() gives it back once the table no longer maps it.
 * A number reserve() returns that the table still maps (its fd was closed
 * behind the table's back) is taken over: the stale hold is dropped.
 */
struct gmem_handle_numbering {
	int (*reserve)(enum gmem_handle_kind kind);
	void (*release)(int number);
	/* Whether @number is in use outside the table (an fd of the program).
	 */
	bool (*in_use)(int number);
};

/* Set once, before the first handle exists (NULL: the library's own). */
void gmem_handle_set_numbering(const struct gmem_handle_numbering *ops);

/*
 * Install @obj; returns the number or -errno.  The handle takes @obj's
 * ref and calls @release(@obj) (if not NULL) when its last hold goes; on
 * failure @obj is still the caller's.
 */
int gmem_handle_alloc(enum gmem_handle_kind kind, void *obj,
		      void (*release)(void *obj));

/*
 * Look up @fd.  0 and @ref filled, -EBADF if no such number, -EIO if the
 * handle belongs to the process this one was forked from (as KVM refuses
 * a VM to another mm).
 */
int gmem_handle_get(int fd, struct gmem_handle_ref *ref);
void gmem_handle_put(struct gmem_handle_ref *ref);

/*
 * Map number @newfd (already reserved by the caller, e.g. from dup(2)) to
 * the handle @oldfd names.  -EBADF if @oldfd is not a handle.
 */
int gmem_handle_dup(int oldfd, int newfd);

/*
 * Unmap @fd without giving its number back to the numbering ops (the
 * caller's dup2() or close_range() closes the fd itself).  -EBADF if @fd
 * is not mapped.
 */
int gmem_handle_forget(int fd);

/*
 * The errno for a number that is no handle: -EBADF, or -EINVAL where the
 * numbering says it is some other open file (as KVM's fget() finds a file
 * that is not KVM's).
 */
int gmem_handle_absent_errno(int fd);

/* True if @fd is mapped (a hint: another thread may close it next). */
bool gmem_handle_is_mapped(int fd);

/* The lowest mapped number >= @from, or -1. */
int gmem_handle_next(int from);

/*
 * In a forked child: every VM, vCPU and guest_memfd handle inherited from
 * the parent answers -EIO from now on and is never released (its memory
 * and threads are the parent's).  System handles keep working.
 */
void gmem_handle_fork_child(void);

/* Serialise against fork(): hold the table across it (pthread_atfork). */
void gmem_handle_lock_all(void);
void gmem_handle_unlock_all(void);

#endif /* GMEM_HANDLE_H */
