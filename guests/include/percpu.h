/* SPDX-License-Identifier: MIT */
/*
 * Per-vCPU runtime state, reached through the GS base (set once per vCPU
 * at start-up; the runtime never runs SWAPGS, so it holds in ring 3 and
 * at SYSCALL entry too).  The offsets are for entry.S; runtime.c checks
 * them against struct guest_percpu in guest.h.
 */
#ifndef GMEM_GUEST_PERCPU_H
#define GMEM_GUEST_PERCPU_H

#define PERCPU_SELF 0
#define PERCPU_CPU 8
#define PERCPU_BOOT 16
#define PERCPU_TSS 24
#define PERCPU_FIXUP_RIP 32
#define PERCPU_FIXUP_RSP 40
#define PERCPU_KERNEL_RSP 48
#define PERCPU_USER_RSP 56
#define PERCPU_USER_RETURN_RSP 64
#define PERCPU_SYSCALLS_READY 72
#define PERCPU_FAULT 80 /* struct guest_fault, vector first */

#endif /* GMEM_GUEST_PERCPU_H */
