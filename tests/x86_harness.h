/* SPDX-License-Identifier: MIT */
/*
 * A flat-memory backend for the CPU model and a minimal long-mode guest
 * setup (page tables, GDT, IDT, TSS), shared by the x86 tests and the
 * benchmark.  Guest code is written in assembly inside the test files
 * (GUEST_CODE) and copied into guest memory.
 *
 * Guest-physical layout:
 *   0x1000 PML4, 0x2000 PDPT, 0x3000 PD (1 GiB of 2 MiB pages),
 *   0x4000 PT (the first 2 MiB in 4 KiB pages), 0x5000 GDT, 0x6000 IDT,
 *   0x7000 TSS, 0x8000 exception handlers (16 bytes per vector: HLT),
 *   0x10000 code, 0x20000+ data, stack top 0x80000, RSP0 0x90000,
 *   IST1 0xa0000.  Everything below mem_size is RAM, the rest MMIO.
 */
#ifndef GMEM_X86_HARNESS_H
#define GMEM_X86_HARNESS_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "x86/x86.h"

#define GUEST_CODE(name, text)                                          \
	__asm__(".pushsection .rodata\n"                                \
		".globl " #name "\n" #name ":\n" text "\n"              \
		".globl " #name "_end\n" #name "_end:\n.popsection\n"); \
	extern const uint8_t name[], name##_end[]

#define H_PML4 0x1000ull
#define H_PDPT 0x2000ull
#define H_PD 0x3000ull
#define H_PT 0x4000ull
#define H_GDT 0x5000ull
#define H_IDT 0x6000ull
#define H_TSS 0x7000ull
#define H_HANDLERS 0x8000ull
#define H_CODE 0x10000ull
#define H_DATA 0x20000ull
#define H_STACK 0x80000ull
#define H_RSP0 0x90000ull
#define H_IST1 0xa0000ull

#define SEL_KCODE 0x08
#define SEL_KDATA 0x10
#define SEL_UDATA 0x20
#define SEL_UCODE 0x28
#define SEL_TSS 0x30

struct hvm {
	uint8_t *mem;
	uint64_t mem_size;
	/* stage-2 permissions per 4 KiB page (X86_ACC_*), 0 = all */
	uint8_t *s2deny;
	uint64_t exit_gpa; /* page that gives X86_S2_EXIT, or ~0 */
	unsigned maps;	   /* map() calls */
	struct x86_cpu cpu;
	struct x86_stop stop;
};

static inline int hvm_map(void *ctx, uint64_t gpa, unsigned acc, uint8_t **page,
			  unsigned *perm)
{
	struct hvm *vm = ctx;
	uint64_t xo = vm->cpu.xo_bit;
	unsigned p = X86_ACC_READ | X86_ACC_WRITE | X86_ACC_FETCH;

	__atomic_fetch_add(&vm->maps, 1, __ATOMIC_RELAXED);
	if (xo && (gpa & xo)) {
		if (acc != X86_ACC_FETCH)
			return X86_S2_XO_PF;
		gpa &= ~xo;
		p = X86_ACC_FETCH;
	}
	gpa &= ~0xfffull;
	if (gpa == vm->exit_gpa)
		return X86_S2_EXIT;
	if (gpa >= vm->mem_size)
		return X86_S2_MMIO;
	p &= ~vm->s2deny[gpa >> 12];
	if (!(p & acc))
		return X86_S2_EXIT;
	*page = vm->mem + gpa;
	*perm = p;
	return X86_S2_OK;
}

static const struct x86_bus hvm_bus = {.map = hvm_map};

static inline uint64_t *hvm_q(struct hvm *vm, uint64_t gpa)
{
	return (uint64_t *)(vm->mem + gpa);
}

/* 4 KiB PTE of an address in the first 2 MiB. */
static inline uint64_t *hvm_pte(struct hvm *vm, uint64_t addr)
{
	return hvm_q(vm, H_PT + (addr >> 12) * 8);
}

static inline void hvm_set_gate(struct hvm *vm, unsigned vec, uint64_t off,
				unsigned type, unsigned dpl, unsigned ist)
{
	uint64_t *g = hvm_q(vm, H_IDT + vec * 16);

	g[0] = (off & 0xffff) | (uint64_t)SEL_KCODE << 16 |
	       (uint64_t)ist << 32 | (uint64_t)type << 40 |
	       (uint64_t)dpl << 45 | 1ull << 47 | ((off >> 16) & 0xffff) << 48;
	g[1] = off >> 32;
}

static inline void hvm_seg(struct kvm_segment *s, uint16_t sel, bool code,
			   unsigned dpl)
{
	memset(s, 0, sizeof(*s));
	s->selector = sel;
	s->limit = 0xffffffff;
	s->type = code ? 0xb : 0x3;
	s->present = 1;
	s->dpl = dpl;
	s->db = !code;
	s->s = 1;
	s->l = code;
	s->g = 1;
}

/* Put the CPU at CPL 0 or 3 with flat segments. */
static inline void hvm_set_cpl(struct hvm *vm, unsigned cpl)
{
	struct kvm_sregs s;

	x86_get_sregs(&vm->cpu, &s);
	hvm_seg(&s.cs, cpl ? SEL_UCODE | 3 : SEL_KCODE, true, cpl);
	hvm_seg(&s.ss, cpl ? SEL_UDATA | 3 : SEL_KDATA, false, cpl);
	x86_set_sregs(&vm->cpu, &s);
}

static inline int hvm_init(struct hvm *vm, uint64_t mem_size)
{
	struct kvm_sregs s;
	struct kvm_regs r;

	memset(vm, 0, sizeof(*vm));
	vm->mem_size = mem_size;
	vm->mem = aligned_alloc(4096, mem_size);
	vm->s2deny = calloc(mem_size >> 12, 1);
	vm->exit_gpa = ~0ull;
	if (!vm->mem || !vm->s2deny)
		return -1;
	memset(vm->mem, 0, mem_size);
	if (x86_cpu_init(&vm->cpu, &hvm_bus, vm))
		return -1;

	/* Identity map of 1 GiB, user-accessible, writable. */
	*hvm_q(vm, H_PML4) = H_PDPT | 7;
	*hvm_q(vm, H_PDPT) = H_PD | 7;
	*hvm_q(vm, H_PD) = H_PT | 7;
	for (unsigned i = 1; i < 512; i++)
		*hvm_q(vm, H_PD + i * 8) = ((uint64_t)i << 21) | 0x87;
	for (unsigned i = 0; i < 512; i++)
		*hvm_q(vm, H_PT + i * 8) = ((uint64_t)i << 12) | 7;

	uint64_t *gdt = hvm_q(vm, H_GDT);

	gdt[1] = 0x00af9b000000ffffull; /* kernel code */
	gdt[2] = 0x00cf93000000ffffull; /* kernel data */
	gdt[4] = 0x00cff3000000ffffull; /* user data */
	gdt[5] = 0x00affb000000ffffull; /* user code */
	gdt[6] = 0x67 | (H_TSS & 0xffffff) << 16 | 0x89ull << 40;
	gdt[7] = 0;
	/* TSS fields are 4-byte aligned only. */
	memcpy(vm->mem + H_TSS + 4, &(uint64_t){H_RSP0}, 8);
	memcpy(vm->mem + H_TSS + 0x24, &(uint64_t){H_IST1}, 8);
	for (unsigned v = 0; v < 256; v++) {
		vm->mem[H_HANDLERS + v * 16] = 0xf4;	 /* hlt */
		vm->mem[H_HANDLERS + v * 16 + 1] = 0xeb; /* jmp . -3 */
		vm->mem[H_HANDLERS + v * 16 + 2] = 0xfd;
		hvm_set_gate(vm, v, H_HANDLERS + v * 16, 0xe, 3, 0);
	}

	x86_get_sregs(&vm->cpu, &s);
	hvm_seg(&s.cs, SEL_KCODE, true, 0);
	hvm_seg(&s.ss, SEL_KDATA, false, 0);
	hvm_seg(&s.ds, SEL_KDATA, false, 0);
	hvm_seg(&s.es, SEL_KDATA, false, 0);
	hvm_seg(&s.fs, 0, false, 0);
	hvm_seg(&s.gs, 0, false, 0);
	memset(&s.tr, 0, sizeof(s.tr));
	s.tr.selector = SEL_TSS;
	s.tr.base = H_TSS;
	s.tr.limit = 0x67;
	s.tr.type = 0xb;
	s.tr.present = 1;
	s.gdt.base = H_GDT;
	s.gdt.limit = 8 * 8 - 1;
	s.idt.base = H_IDT;
	s.idt.limit = 256 * 16 - 1;
	s.cr0 = X86_CR0_PE | X86_CR0_PG | X86_CR0_WP | X86_CR0_ET | X86_CR0_NE;
	s.cr3 = H_PML4;
	s.cr4 = X86_CR4_PAE;
	s.efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_NXE | X86_EFER_SCE;
	x86_set_sregs(&vm->cpu, &s);
	memset(&r, 0, sizeof(r));
	r.rip = H_CODE;
	r.rsp = H_STACK;
	r.rflags = 2;
	x86_set_regs(&vm->cpu, &r);
	return 0;
}

static inline void hvm_destroy(struct hvm *vm)
{
	x86_cpu_destroy(&vm->cpu);
	free(vm->mem);
	free(vm->s2deny);
}

static inline void hvm_load(struct hvm *vm, uint64_t gpa, const uint8_t *b,
			    const uint8_t *e)
{
	memcpy(vm->mem + gpa, b, e - b);
	x86_cpu_invalidate_gpa(&vm->cpu, gpa, gpa + (e - b));
}

static inline int hvm_run(struct hvm *vm, uint64_t budget)
{
	return x86_run(&vm->cpu, budget, &vm->stop);
}

/* Vector of the handler a HLT stop is in, or -1. */
static inline int hvm_vector(struct hvm *vm)
{
	uint64_t rip = vm->cpu.rip;

	if (vm->stop.reason != X86_STOP_HLT || rip < H_HANDLERS + 1 ||
	    rip >= H_HANDLERS + 256 * 16)
		return -1;
	return (rip - H_HANDLERS - 1) / 16;
}

#endif /* GMEM_X86_HARNESS_H */
