/* SPDX-License-Identifier: MIT */
/*
 * Host accesses to the VMM's own memory on a guest's behalf: a memslot's
 * userspace_addr pages, and ioctl argument buffers.  KVM reaches them with
 * get_user_pages()/copy_from_user(), which fail with -EFAULT where the VMM
 * mapped nothing, mapped PROT_NONE, or mapped read-only and a write is
 * due.  gmem reaches them with plain loads and stores, so the same
 * mistakes raise SIGSEGV (or SIGBUS past the end of a file) in the thread
 * that made the access.  This module turns such a fault into -EFAULT:
 *
 *   struct gmem_uaccess g;
 *
 *   if (gmem_uaccess_try(&g))
 *           return -EFAULT;    faulted: g.addr, g.write say where and how
 *   ...accesses...
 *   gmem_uaccess_end(&g);
 *
 * Between try and end, a SIGSEGV or SIGBUS the kernel raises for this
 * thread's access returns from gmem_uaccess_try() a second time, with
 * non-zero.  Nothing in that span may hold a lock or own memory that the
 * jump would leak; the span must not return without gmem_uaccess_end().
 * Spans nest (the innermost one catches).
 *
 * Every other SIGSEGV/SIGBUS goes to the program's own action, which gmem
 * keeps as the chain (gmem_sigaction()): a fault that is not gmem's is
 * handled exactly as if gmem were not there.
 */
#ifndef GMEM_UACCESS_H
#define GMEM_UACCESS_H

#include <setjmp.h>
#include <signal.h>
#include <stdbool.h>
#include <stddef.h>

struct gmem_uaccess {
	sigjmp_buf env;
	struct gmem_uaccess *prev;
	void *addr; /* the faulting address (after a fault) */
	int sig;    /* SIGSEGV or SIGBUS (after a fault) */
	bool write; /* the faulting access was a write (after a fault) */
};

/* Installs gmem's SIGSEGV/SIGBUS handlers once; 0 or -errno. */
int gmem_uaccess_init(void);

/*
 * The sigaction gmem installs its handlers with: libc's, unless the drop-in
 * (which stands in for libc's) points it at libc's own before any VM.
 */
void gmem_uaccess_set_sigaction(int (*fn)(int, const struct sigaction *,
					  struct sigaction *));

void gmem_uaccess_begin(struct gmem_uaccess *g);
void gmem_uaccess_end(struct gmem_uaccess *g);

/* The mask is not saved: the handler unblocks the signal itself. */
#define gmem_uaccess_try(g) (gmem_uaccess_begin(g), sigsetjmp((g)->env, 0))

/*
 * Touch one byte at @p as a read or (an atomic no-op) write would: 0, or
 * -EFAULT where that access faults.  A write probe changes nothing, even
 * against a concurrent store to the same byte.
 */
int gmem_uaccess_probe(const void *p, bool write);

/* Probe every page of [p, p + len). */
int gmem_uaccess_probe_range(const void *p, size_t len, bool write);

/* memcpy(), or -EFAULT where either side faults (part may be copied). */
int gmem_uaccess_copy(void *dst, const void *src, size_t n);

#endif /* GMEM_UACCESS_H */
