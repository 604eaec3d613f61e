/* SPDX-License-Identifier: MIT */
/*
 * The guest ELF loader: what KVM selftests' vm_create_with_one_vcpu() does
 * for a test, as a library call.  Given a static x86-64 ELF executable in
 * host memory, it writes the PT_LOAD segments into guest memory through the
 * vCPU's stage 2 (so the bytes land where each page's attributes say:
 * shared userspace memory or a guest_memfd), builds an identity map of
 * guest RAM, a GDT and one TSS and stack per vCPU, and sets the vCPU's
 * registers so that the next gmem_vcpu_run() starts at the entry point in
 * long mode, and optionally an IDT.  The state at entry is described in
 * <gmem/boot.h>.
 *
 * Errors, all before the first write to guest memory:
 *   -ENOEXEC  not something this loader runs: bad magic, not ELF64 LSB,
 *             not x86-64, not ET_EXEC, wrong version, dynamic (PT_INTERP or
 *             PT_DYNAMIC), or no PT_LOAD segment;
 *   -EINVAL   a malformed image (header or program headers outside the
 *             image, wrong entry sizes, p_filesz > p_memsz, file data
 *             outside the image, overlapping segments, p_vaddr != p_paddr,
 *             address overflow, entry point outside executable memory) or
 *             bad options;
 *   -E2BIG    it does not fit: a segment outside guest RAM, or no room for
 *             the page tables, GDT, TSSs and stacks.
 * Later errors (from gmem_vcpu_access or the register setters; -EFAULT for
 * memory that is not plain RAM) leave guest memory partly written.
 */
#ifndef GMEM_LOADER_H
#define GMEM_LOADER_H

#include <stddef.h>
#include <stdint.h>

#include <gmem/boot.h>
#include <gmem/gmem.h>

#ifdef __cplusplus
extern "C" {
#endif

#define GMEM_LOAD_NX (1U << 0)	       /* set EFER.NXE (mappings stay X) */
#define GMEM_LOAD_4K (1U << 1)	       /* map RAM with 4 KiB pages only */
#define GMEM_LOAD_SUPERVISOR (1U << 2) /* leaves without U/S (no ring 3) */
#define GMEM_LOAD_FLAGS_ALL (GMEM_LOAD_NX | GMEM_LOAD_4K | GMEM_LOAD_SUPERVISOR)

#define GMEM_LOAD_MAX_CPUS 32
#define GMEM_LOAD_MAX_MEM (512ULL << 30) /* one PML4 entry */
#define GMEM_LOAD_DEFAULT_STACK (64ULL << 10)

struct gmem_load_opts {
	uint64_t mem_size;   /* guest RAM is [0, mem_size); page aligned */
	uint64_t free_start; /* loader structures go here; 0: after the image */
	uint64_t stack_size; /* per vCPU, page aligned; 0: 64 KiB */
	uint32_t nr_cpus;    /* vCPUs to prepare; 0 means 1 */
	uint32_t flags;	     /* GMEM_LOAD_* */
	uint64_t rdi, rsi;   /* the entry point's two arguments */
	/*
	 * An IDT, if idt_entry != 0: vector v's interrupt gate points at
	 * idt_entry + v * idt_stride (stride 0: one handler for all), in
	 * an executable segment.  Vectors 3, 4 and 0x80 may be raised from
	 * ring 3 (DPL 3).  0 leaves IDTR empty for a guest that installs
	 * its own (as the runtime in guests/ does).
	 */
	uint64_t idt_entry;
	uint32_t idt_stride;
	uint32_t reserved; /* must be 0 */
};

/* Where everything went; filled by gmem_load_check(). */
struct gmem_load_info {
	uint64_t entry;
	uint64_t image_start, image_end; /* lowest and highest segment bytes */
	uint64_t boot_info;		 /* vCPU n's at boot_info + n * 128 */
	uint64_t gdt;
	uint16_t gdt_limit;
	uint64_t tss; /* vCPU n's at tss + n * 128 */
	uint64_t idt; /* 256 gates, if opts.idt_entry; else 0 */
	uint64_t cr3;
	uint64_t nr_table_pages;
	uint64_t stacks; /* vCPU n's stack top: stacks + (n+1) * size */
	uint64_t free_start, free_end; /* left for the guest */
	struct gmem_load_opts opts;    /* normalised copy */
};

/*
 * Validate @image and @opts and compute the layout, without touching any
 * VM: the same checks and errors as gmem_load_elf().
 */
int gmem_load_check(const void *image, size_t size,
		    const struct gmem_load_opts *opts,
		    struct gmem_load_info *info);

/*
 * Load @image into @vcpu's VM and point @vcpu (as vCPU 0) at its entry.
 * @info, if not NULL, receives the layout.
 */
int gmem_load_elf(struct gmem_vcpu *vcpu, const void *image, size_t size,
		  const struct gmem_load_opts *opts,
		  struct gmem_load_info *info);

/* The same, reading the image from the file at @path. */
int gmem_load_elf_file(struct gmem_vcpu *vcpu, const char *path,
		       const struct gmem_load_opts *opts,
		       struct gmem_load_info *info);

/*
 * Read the file at @path whole, as gmem_load_elf_file() does, for a VMM
 * that checks the image (gmem_load_check()) before it creates the VM:
 * *@imagep (release it with free()) and *@sizep.  0, or -errno of open,
 * fstat or read, -ENOEXEC if @path is not a regular file, -E2BIG if it is
 * larger than GMEM_LOAD_MAX_MEM, -EIO on a short read, -ENOMEM.
 */
int gmem_load_read_file(const char *path, void **imagep, size_t *sizep);

/*
 * Set the registers of another vCPU of the same VM as vCPU @cpu of a
 * loaded image (its own stack, TSS and boot info).  -EINVAL if @cpu is not
 * below the nr_cpus the image was loaded for.
 */
int gmem_load_vcpu(struct gmem_vcpu *vcpu, const struct gmem_load_info *info,
		   unsigned int cpu);

#ifdef __cplusplus
}
#endif

#endif /* GMEM_LOADER_H */
