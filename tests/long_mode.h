/* SPDX-License-Identifier: MIT */
/*
 * The tests' long-mode vCPU state, in KVM's layouts only (no gmem call),
 * so that the drop-in's KVM programs share it with the API tests.
 */
#ifndef GMEM_TESTS_LONG_MODE_H
#define GMEM_TESTS_LONG_MODE_H

#include <gmem/uapi.h>

/*
 * Flat 4 GiB segments with a 64-bit code segment at selector 8 and data
 * at 16, as every test GDT lays them out, then paging from @cr3 with
 * CR0 @cr0 (PG and PE at least), CR4.PAE and EFER.LME|LMA.
 */
static inline void long_mode_sregs(struct kvm_sregs *s, uint64_t cr0,
				   uint64_t cr3)
{
	struct kvm_segment cs = {.limit = 0xffffffff,
				 .selector = 8,
				 .type = 11,
				 .present = 1,
				 .s = 1,
				 .l = 1,
				 .g = 1};
	struct kvm_segment ds = {.limit = 0xffffffff,
				 .selector = 16,
				 .type = 3,
				 .present = 1,
				 .s = 1,
				 .db = 1,
				 .g = 1};

	s->cs = cs;
	s->ds = s->es = s->ss = s->fs = s->gs = ds;
	s->cr0 = cr0;
	s->cr3 = cr3;
	s->cr4 = 0x20;	 /* PAE */
	s->efer = 0x500; /* LMA, LME */
}

#endif /* GMEM_TESTS_LONG_MODE_H */
