/* SPDX-License-Identifier: MIT */
/*
 * The guest <-> host test ABI, shared by the guest runtime (guests/) and
 * the host harness (tests/guest_util.c).  Freestanding: only <stdint.h>.
 *
 * Ports (all I/O is OUT; the host never needs to answer an IN):
 *
 *   GUEST_PORT_CONSOLE  0xe9   OUT byte: one character of console output
 *                              (the port Bochs and QEMU use for debug
 *                              output, so a guest also prints there).
 *   GUEST_PORT_UCALL    0xe0   OUT dword: GPA of a struct guest_ucall
 *                              (low 32 bits); the guest also leaves the
 *                              full GPA in RDI, which the host prefers
 *                              when its low half matches.
 *
 * A ucall is synchronous: the vCPU stops on the OUT, the host reads the
 * struct from guest memory (through the vCPU, so private memory works
 * too), may write answers back into it (args[] of a SYNC), and resumes.
 */
#ifndef GMEM_GUEST_UCALL_H
#define GMEM_GUEST_UCALL_H

#include <stdint.h>

#define GUEST_PORT_UCALL 0xe0
#define GUEST_PORT_CONSOLE 0xe9

enum guest_ucall_cmd {
	UCALL_NONE = 0,
	UCALL_SYNC = 1,	     /* args[0]: the value; the host may answer */
	UCALL_ASSERT = 2,    /* args[0]: line, args[1..2]: values; buf */
	UCALL_DONE = 3,	     /* args[0]: status (0: success) */
	UCALL_PRINTF = 4,    /* buf: the formatted text */
	UCALL_UNHANDLED = 5, /* unexpected exception: args as below */
};

/* args[] of UCALL_UNHANDLED. */
#define UCALL_UNHANDLED_VECTOR 0
#define UCALL_UNHANDLED_ERROR 1
#define UCALL_UNHANDLED_RIP 2
#define UCALL_UNHANDLED_CR2 3
#define UCALL_UNHANDLED_CS 4
#define UCALL_UNHANDLED_RSP 5

#define GUEST_UCALL_BUF 512
#define GUEST_UCALL_ARGS 6

struct guest_ucall {
	uint64_t cmd;
	uint64_t args[GUEST_UCALL_ARGS];
	char buf[GUEST_UCALL_BUF]; /* NUL-terminated */
};

_Static_assert(sizeof(struct guest_ucall) == 568, "ucall layout");

#endif /* GMEM_GUEST_UCALL_H */
