/* SPDX-License-Identifier: MIT */
/*
 * gmem's own hypercalls: the ABI between a guest and a VMM built on gmem
 * (gmemvm), beside KVM's KVM_HC_MAP_GPA_RANGE.  Freestanding (only
 * <stdint.h>), so guests include it as is, as they do <gmem/boot.h>.
 *
 * Calling convention: KVM's.  VMCALL at CPL 0 with RAX = number, RBX, RCX,
 * RDX, RSI = arguments; the result comes back in RAX (0, or a negative
 * errno value such as -EINVAL = -22, -EPERM = -1).  The numbers sit above
 * KVM's (which are below 64), from GMEM_HC_BASE on.
 *
 * The library does not interpret them: a VMM lets number GMEM_HC_BASE + i
 * exit to it as KVM_EXIT_HYPERCALL by enabling GMEM_CAP_EXIT_HYPERCALL
 * with bit i set in args[0]; without that the guest gets -KVM_ENOSYS
 * (-1000), as for any unknown hypercall.
 */
#ifndef GMEM_HYPERCALL_H
#define GMEM_HYPERCALL_H

#include <stdint.h>

#define GMEM_HC_BASE 0x10000

/*
 * GMEM_HC_PROTECT (gpa, npages, prot): the guest asks the VMM to lock
 * [gpa, gpa + npages * 4 KiB) against the accesses in @prot, a set of
 * GMEM_PROTECT_* bits (the values of KVM_MEMORY_ATTRIBUTE_NR/NW/NX) -- a
 * hardening request in the manner of Hyper-V VSM and HEKI: a kernel locks
 * its text no-write and its data no-exec once it has booted, so that a
 * later compromise cannot undo it.
 *
 * The VMM only ever adds restrictions: there is no call that removes one,
 * and a range once locked cannot be converted (KVM_HC_MAP_GPA_RANGE gives
 * -EPERM).  NR implies NW and NX (what cannot be read cannot be written or
 * executed).  Private memory cannot be locked (-EINVAL).  A later access
 * that a lock denies is a KVM_EXIT_MEMORY_FAULT that the VMM reports.
 *
 * Returns 0, -EINVAL (bad bits, misaligned or empty range, outside guest
 * RAM, private pages) or -EPERM (not at CPL 0, as every hypercall).
 */
#define GMEM_HC_PROTECT (GMEM_HC_BASE + 1)

#define GMEM_PROTECT_NR (1ULL << 0)
#define GMEM_PROTECT_NW (1ULL << 1)
#define GMEM_PROTECT_NX (1ULL << 2)
#define GMEM_PROTECT_ALL (GMEM_PROTECT_NR | GMEM_PROTECT_NW | GMEM_PROTECT_NX)

#endif /* GMEM_HYPERCALL_H */
