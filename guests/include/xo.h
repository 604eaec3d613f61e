/* SPDX-License-Identifier: MIT */
/*
 * Execute-only memory in the guest kernel (DESIGN §3.5).
 *
 * x86 page tables cannot say "execute but not read".  A hypervisor with
 * gmem's XO alias borrows physical-address bit M for it: CPUID 0x80000008
 * reports MAXPHYADDR = M, so bit M of a PTE looks reserved to a guest that
 * knows nothing of it, and the hypervisor leaf 0x40000001 (EAX bit 0)
 * tells a guest that knows that a leaf PTE with bit M set maps the same
 * memory execute-only.  guest_mprotect() is the kernel side of
 * mprotect(2) built on it: PROT_EXEC alone sets bit M where XO is
 * advertised and falls back to readable-executable where it is not, as
 * Linux does on x86 without protection keys.
 */
#ifndef GMEM_GUEST_XO_H
#define GMEM_GUEST_XO_H

#include <stddef.h>
#include <stdint.h>

#define PROT_NONE 0
#define PROT_READ 1
#define PROT_WRITE 2
#define PROT_EXEC 4

/* MAXPHYADDR as CPUID 0x80000008 EAX[7:0] reports it. */
unsigned int guest_maxphyaddr(void);

/*
 * The XO alias bit (1 << M) when the hypervisor advertises it ("gmemgmem
 * gmem" in leaf 0x40000000, bit 0 of 0x40000001 EAX), else 0.
 */
uint64_t guest_xo_bit(void);

/*
 * Change the protection of the user pages [addr, addr + len) of the
 * current address space: PROT_* bits, @addr page aligned, @len rounded up
 * to pages.  The pages keep their physical address; they become user
 * pages.  PROT_NONE makes them not present (the address is kept for a
 * later call).  Without PROT_EXEC they are NX if EFER.NXE is on.  Returns
 * 0, -EINVAL (22) for bad arguments, or -ENOMEM (12) if a page of the
 * range was never mapped; nothing changes on failure.
 */
int guest_mprotect(void *addr, size_t len, int prot);

#endif /* GMEM_GUEST_XO_H */
