/* SPDX-License-Identifier: MIT */
/*
 * The boot ABI between gmem's ELF loader and a guest: what the loader
 * leaves in registers and in guest memory when the guest's entry point
 * runs.  Freestanding (only <stdint.h>), so the guest runtime includes it
 * as is.
 *
 * At the entry point, on every vCPU the loader set up:
 *   long mode, CPL 0, paging on with an identity map of guest RAM
 *   (GVA == GPA, page 0 not present), interrupts off, IDTR limit 0 (the
 *   guest installs its own IDT) unless gmem_load_opts.idt_entry asked
 *   for one;
 *   RSP   top of this vCPU's stack (16-byte aligned);
 *   RDI, RSI  the two arguments given in struct gmem_load_opts;
 *   RDX   GPA of this vCPU's struct gmem_boot_info.
 *
 * GDT layout.  SYSCALL loads CS from STAR[47:32] and SS = that + 8;
 * SYSRET to 64-bit mode loads CS = STAR[63:48] + 16 and SS = STAR[63:48]
 * + 8, both with RPL 3.  Hence kernel code, kernel data, then user data
 * before user code, and STAR = (GMEM_BOOT_KERNEL_DS << 48) |
 * (GMEM_BOOT_KERNEL_CS << 32):
 *
 *   0x00 null
 *   0x08 kernel code, 64-bit, DPL 0
 *   0x10 kernel data, DPL 0
 *   0x18 user data, DPL 3      (selector 0x1b)
 *   0x20 user code, 64-bit, DPL 3  (selector 0x23)
 *   0x28 + 16 * n  64-bit TSS of vCPU n (two slots each)
 */
#ifndef GMEM_BOOT_H
#define GMEM_BOOT_H

#ifndef __ASSEMBLER__
#include <stdint.h>
#endif

#define GMEM_BOOT_KERNEL_CS 0x08
#define GMEM_BOOT_KERNEL_DS 0x10
#define GMEM_BOOT_USER_DS (0x18 | 3)
#define GMEM_BOOT_USER_CS (0x20 | 3)
#define GMEM_BOOT_TSS(n) (0x28 + 16 * (n))

#define GMEM_BOOT_MAGIC 0x746f6f626d656d67ULL /* "gmemboot" */

/* The layouts, for C only (entry.S uses the selectors above). */
#ifndef __ASSEMBLER__

/* One per vCPU; all fields are guest-physical (== virtual) addresses. */
struct gmem_boot_info {
	uint64_t magic;	     /* GMEM_BOOT_MAGIC */
	uint64_t cpu;	     /* index of this vCPU, 0 .. nr_cpus - 1 */
	uint64_t nr_cpus;    /* vCPUs the loader prepared */
	uint64_t mem_size;   /* guest RAM is [0, mem_size) */
	uint64_t image_end;  /* end of the highest ELF segment */
	uint64_t free_start; /* first byte the loader did not use ... */
	uint64_t free_end;   /* ... and the end of free RAM */
	uint64_t cr3;	     /* the PML4 */
	uint64_t gdt;	     /* GDT base */
	uint64_t tss;	     /* this vCPU's TSS (RSP0 at offset 4) */
	uint64_t stack_top;  /* this vCPU's initial RSP */
	uint64_t reserved[5];
};

/* The 64-bit TSS (Intel SDM vol. 3, 8.7); packed: RSP0 sits at offset 4. */
struct gmem_boot_tss {
	uint32_t reserved0;
	uint64_t rsp[3];
	uint64_t reserved1;
	uint64_t ist[7];
	uint64_t reserved2;
	uint16_t reserved3;
	uint16_t iomap_base;
} __attribute__((packed));

_Static_assert(sizeof(struct gmem_boot_info) == 128, "boot info size");
_Static_assert(sizeof(struct gmem_boot_tss) == 104, "TSS size");

#endif /* !__ASSEMBLER__ */

#endif /* GMEM_BOOT_H */
