// SPDX-License-Identifier: MIT
/*
 * Guest ELF loader.  See <gmem/loader.h> for the contract and <gmem/boot.h>
 * for the state the guest starts in.
 *
 * Everything is checked and laid out by gmem_load_check() first; the load
 * itself only writes.  The loader's own structures go in one block after
 * the image (or at opts->free_start):
 *
 *   +0        boot info, 128 bytes per vCPU        (one page)
 *   +4 KiB    GDT                                  (one page)
 *   +8 KiB    TSSs, 128 bytes apart                (one page)
 *   +12 KiB   IDT, if asked for                    (one page)
 *   +16 KiB   PML4, PDPT, page directories, page tables
 *   then      one stack per vCPU
 *
 * The identity map uses 2 MiB pages except where a 2 MiB region is not
 * all RAM, and in the first region, whose page 0 is left out so that a
 * guest NULL dereference faults.  GMEM_LOAD_4K asks for 4 KiB pages
 * throughout, for guests that want to split and protect freely.
 */
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <gmem/loader.h>

#include "util.h"
#include "x86/x86.h"

#define MAX_PHDRS 64
#define SZ_2M (2ULL << 20)
#define SZ_1G (1ULL << 30)

#define LAYOUT_BOOT 0
#define LAYOUT_GDT (1 * PAGE_SIZE)
#define LAYOUT_TSS (2 * PAGE_SIZE)
#define LAYOUT_IDT (3 * PAGE_SIZE)
#define LAYOUT_TABLES (4 * PAGE_SIZE)
#define BOOT_STRIDE 128
#define TSS_STRIDE 128

static inline uint64_t round_up(uint64_t x, uint64_t a)
{
	return (x + a - 1) & ~(a - 1);
}

static inline uint64_t div_round_up(uint64_t x, uint64_t d)
{
	return (x + d - 1) / d;
}

/* Does [a, a + alen) intersect [b, b + blen)?  Neither wraps. */
static inline int ranges_overlap(uint64_t a, uint64_t alen, uint64_t b,
				 uint64_t blen)
{
	return alen && blen && a < b + blen && b < a + alen;
}

/* ---- layout of the identity map ----------------------------------------- */

/*
 * A 2 MiB region needs a page table when 4 KiB pages were asked for, when
 * it is the first one (page 0 stays unmapped) or when RAM ends inside it.
 * Page tables are numbered in region order.
 */
static int region_needs_pt(const struct gmem_load_info *info, uint64_t r)
{
	uint64_t mem = info->opts.mem_size;

	if (info->opts.flags & GMEM_LOAD_4K)
		return 1;
	return r == 0 || (r + 1) * SZ_2M > mem;
}

static uint64_t nr_regions(const struct gmem_load_info *info)
{
	return div_round_up(info->opts.mem_size, SZ_2M);
}

/* Index of region @r's page table among all page tables. */
static uint64_t region_pt_index(const struct gmem_load_info *info, uint64_t r)
{
	if (info->opts.flags & GMEM_LOAD_4K)
		return r;
	/* Only region 0 and the last (partial) region can have one. */
	return r == 0 ? 0 : 1;
}

static uint64_t nr_pds(const struct gmem_load_info *info)
{
	return div_round_up(info->opts.mem_size, SZ_1G);
}

static uint64_t nr_pts(const struct gmem_load_info *info)
{
	uint64_t n = nr_regions(info);

	if (info->opts.flags & GMEM_LOAD_4K)
		return n;
	return (n > 1 && region_needs_pt(info, n - 1)) ? 2 : 1;
}

/* Table pages: PML4, PDPT, page directories, page tables, in that order. */
static uint64_t pdpt_gpa(const struct gmem_load_info *info)
{
	return info->cr3 + PAGE_SIZE;
}

static uint64_t pd_gpa(const struct gmem_load_info *info, uint64_t i)
{
	return info->cr3 + (2 + i) * PAGE_SIZE;
}

static uint64_t pt_gpa(const struct gmem_load_info *info, uint64_t k)
{
	return info->cr3 + (2 + nr_pds(info) + k) * PAGE_SIZE;
}

/* ---- validation -------------------------------------------------------- */

static int check_opts(const struct gmem_load_opts *in,
		      struct gmem_load_opts *out)
{
	if (!in)
		return -EINVAL;
	*out = *in;
	if (!out->nr_cpus)
		out->nr_cpus = 1;
	if (!out->stack_size)
		out->stack_size = GMEM_LOAD_DEFAULT_STACK;
	if ((out->flags & ~GMEM_LOAD_FLAGS_ALL) || out->reserved)
		return -EINVAL;
	if (!out->mem_size || !PAGE_ALIGNED(out->mem_size) ||
	    !PAGE_ALIGNED(out->stack_size) || !PAGE_ALIGNED(out->free_start))
		return -EINVAL;
	if (out->nr_cpus > GMEM_LOAD_MAX_CPUS)
		return -EINVAL;
	/* Bound the stack so the layout arithmetic below cannot overflow. */
	if (out->mem_size > GMEM_LOAD_MAX_MEM ||
	    out->stack_size > GMEM_LOAD_MAX_MEM)
		return -E2BIG;
	return 0;
}

static int check_ehdr(const Elf64_Ehdr *eh, size_t size)
{
	if (size < EI_NIDENT || memcmp(eh->e_ident, ELFMAG, SELFMAG))
		return -ENOEXEC;
	if (size < sizeof(*eh))
		return -EINVAL;
	if (eh->e_ident[EI_CLASS] != ELFCLASS64 ||
	    eh->e_ident[EI_DATA] != ELFDATA2LSB ||
	    eh->e_ident[EI_VERSION] != EV_CURRENT ||
	    eh->e_version != EV_CURRENT)
		return -ENOEXEC;
	if (eh->e_ident[EI_OSABI] != ELFOSABI_SYSV &&
	    eh->e_ident[EI_OSABI] != ELFOSABI_GNU)
		return -ENOEXEC;
	if (eh->e_machine != EM_X86_64 || eh->e_type != ET_EXEC)
		return -ENOEXEC;
	if (eh->e_ehsize != sizeof(*eh) ||
	    eh->e_phentsize != sizeof(Elf64_Phdr))
		return -EINVAL;
	if (eh->e_phnum == 0 || eh->e_phnum == PN_XNUM)
		return -ENOEXEC;
	if (eh->e_phnum > MAX_PHDRS)
		return -EINVAL;
	/* e_phnum <= 64, so the product cannot overflow. */
	if (eh->e_phoff > size ||
	    size - eh->e_phoff < (uint64_t)eh->e_phnum * sizeof(Elf64_Phdr))
		return -EINVAL;
	return 0;
}

/*
 * Program headers are read with memcpy: the image is only byte-aligned
 * as far as the caller promised.
 */
static void get_phdr(const void *image, const Elf64_Ehdr *eh, unsigned i,
		     Elf64_Phdr *ph)
{
	memcpy(ph, (const char *)image + eh->e_phoff + i * sizeof(*ph),
	       sizeof(*ph));
}

static int check_segments(const void *image, size_t size, const Elf64_Ehdr *eh,
			  struct gmem_load_info *info)
{
	uint64_t lo = UINT64_MAX, hi = 0, mem = info->opts.mem_size;
	uint64_t idt_first = info->opts.idt_entry;
	uint64_t idt_last = idt_first + 255ULL * info->opts.idt_stride;
	int nr_load = 0, entry_ok = 0, idt_ok = !idt_first;
	Elf64_Phdr ph, other;

	for (unsigned i = 0; i < eh->e_phnum; i++) {
		get_phdr(image, eh, i, &ph);
		if (ph.p_type == PT_INTERP || ph.p_type == PT_DYNAMIC)
			return -ENOEXEC;
		if (ph.p_type != PT_LOAD)
			continue;
		nr_load++;
		if (ph.p_filesz > ph.p_memsz)
			return -EINVAL;
		if (ph.p_offset > size || size - ph.p_offset < ph.p_filesz)
			return -EINVAL;
		if (ph.p_paddr + ph.p_memsz < ph.p_paddr)
			return -EINVAL;
		/* Identity map: the addresses the code uses are physical. */
		if (ph.p_vaddr != ph.p_paddr)
			return -EINVAL;
		if (!ph.p_memsz)
			continue;
		if (ph.p_paddr >= mem || mem - ph.p_paddr < ph.p_memsz)
			return -E2BIG;
		for (unsigned j = 0; j < i; j++) {
			get_phdr(image, eh, j, &other);
			if (other.p_type == PT_LOAD &&
			    ranges_overlap(ph.p_paddr, ph.p_memsz,
					   other.p_paddr, other.p_memsz))
				return -EINVAL;
		}
		if ((ph.p_flags & PF_X) && eh->e_entry >= ph.p_paddr &&
		    eh->e_entry - ph.p_paddr < ph.p_memsz)
			entry_ok = 1;
		if ((ph.p_flags & PF_X) && idt_first >= ph.p_paddr &&
		    idt_last < ph.p_paddr + ph.p_memsz)
			idt_ok = 1;
		lo = MIN(lo, ph.p_paddr);
		hi = MAX(hi, ph.p_paddr + ph.p_memsz);
	}
	if (!nr_load)
		return -ENOEXEC;
	/* idt_last cannot wrap: the stride is 32 bits. */
	if (!entry_ok || !idt_ok || idt_last < idt_first)
		return -EINVAL;
	info->entry = eh->e_entry;
	info->image_start = lo;
	info->image_end = hi;
	return 0;
}

/* Place the loader's block and check that it fits beside the image. */
static int layout(struct gmem_load_info *info)
{
	const struct gmem_load_opts *o = &info->opts;
	uint64_t base, tables, need, mem = o->mem_size;

	base = o->free_start ? o->free_start
			     : round_up(info->image_end, PAGE_SIZE);
	info->boot_info = base + LAYOUT_BOOT;
	info->gdt = base + LAYOUT_GDT;
	info->gdt_limit = GMEM_BOOT_TSS(o->nr_cpus) - 1;
	info->tss = base + LAYOUT_TSS;
	info->idt = o->idt_entry ? base + LAYOUT_IDT : 0;
	info->cr3 = base + LAYOUT_TABLES;
	info->nr_table_pages = 2 + nr_pds(info) + nr_pts(info);
	tables = info->nr_table_pages * PAGE_SIZE;
	/* Everything is bounded by GMEM_LOAD_MAX_MEM: no overflow here. */
	need = LAYOUT_TABLES + tables + o->nr_cpus * o->stack_size;
	if (base >= mem || mem - base < need)
		return -E2BIG;
	info->stacks = info->cr3 + tables;
	info->free_start = base + need;
	info->free_end = mem;
	if (ranges_overlap(base, need, info->image_start,
			   info->image_end - info->image_start))
		return -EINVAL;
	return 0;
}

int gmem_load_check(const void *image, size_t size,
		    const struct gmem_load_opts *opts,
		    struct gmem_load_info *info)
{
	const Elf64_Ehdr *eh = image;
	Elf64_Ehdr ehdr;
	int ret;

	if (!image || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	ret = check_opts(opts, &info->opts);
	if (ret)
		return ret;
	if (size >= sizeof(ehdr)) {
		memcpy(&ehdr, image, sizeof(ehdr));
		eh = &ehdr;
		ret = check_ehdr(eh, size);
	} else {
		/* Too short for a header: only look at what is there. */
		ret = size < SELFMAG || memcmp(image, ELFMAG, SELFMAG)
			      ? -ENOEXEC
			      : -EINVAL;
	}
	if (ret)
		return ret;
	ret = check_segments(image, size, eh, info);
	if (ret)
		return ret;
	return layout(info);
}

/* ---- writing guest memory ---------------------------------------------- */

/*
 * Write through the vCPU's stage 2 one page at a time, so that every chunk
 * is one stage-2 lookup.  Anything but plain memory is an error here: the
 * loader has no device to hand an MMIO write to.
 */
static int write_guest(struct gmem_vcpu *vcpu, uint64_t gpa, const void *buf,
		       uint64_t len)
{
	static const uint8_t zero[PAGE_SIZE];
	const uint8_t *p = buf;

	while (len) {
		uint64_t n = MIN(len, PAGE_SIZE - (gpa & (PAGE_SIZE - 1)));
		int ret = gmem_vcpu_access(vcpu, gpa, (void *)(p ? p : zero), n,
					   GMEM_ACCESS_WRITE);

		if (ret > 0)
			return -EFAULT;
		if (ret < 0)
			return ret;
		gpa += n;
		len -= n;
		if (p)
			p += n;
	}
	return 0;
}

static int write_segments(struct gmem_vcpu *vcpu, const void *image,
			  const Elf64_Ehdr *eh)
{
	Elf64_Phdr ph;
	int ret;

	for (unsigned i = 0; i < eh->e_phnum; i++) {
		get_phdr(image, eh, i, &ph);
		if (ph.p_type != PT_LOAD || !ph.p_memsz)
			continue;
		ret = write_guest(vcpu, ph.p_paddr,
				  (const char *)image + ph.p_offset,
				  ph.p_filesz);
		if (ret)
			return ret;
		/* The bss part: RAM may not be fresh (a reload). */
		ret = write_guest(vcpu, ph.p_paddr + ph.p_filesz, NULL,
				  ph.p_memsz - ph.p_filesz);
		if (ret)
			return ret;
	}
	return 0;
}

static int write_tables(struct gmem_vcpu *vcpu,
			const struct gmem_load_info *info)
{
	uint64_t leaf_u =
		(info->opts.flags & GMEM_LOAD_SUPERVISOR) ? 0 : X86_PTE_U;
	uint64_t mem = info->opts.mem_size, *t;
	uint64_t i, j, r, k;
	int ret;

	t = gmem_zalloc(PAGE_SIZE);
	if (!t)
		return -ENOMEM;

	/*
	 * Non-leaf entries always allow user access: the leaf decides, as
	 * the effective permission is the AND of all levels.
	 */
	t[0] = pdpt_gpa(info) | X86_PTE_P | X86_PTE_W | X86_PTE_U;
	ret = write_guest(vcpu, info->cr3, t, PAGE_SIZE);
	if (ret)
		goto out;

	memset(t, 0, PAGE_SIZE);
	for (i = 0; i < nr_pds(info); i++)
		t[i] = pd_gpa(info, i) | X86_PTE_P | X86_PTE_W | X86_PTE_U;
	ret = write_guest(vcpu, pdpt_gpa(info), t, PAGE_SIZE);
	if (ret)
		goto out;

	for (i = 0; i < nr_pds(info); i++) {
		memset(t, 0, PAGE_SIZE);
		for (j = 0; j < 512; j++) {
			r = i * 512 + j;
			if (r * SZ_2M >= mem)
				break;
			if (region_needs_pt(info, r))
				t[j] = pt_gpa(info, region_pt_index(info, r)) |
				       X86_PTE_P | X86_PTE_W | X86_PTE_U;
			else
				t[j] = r * SZ_2M | X86_PTE_P | X86_PTE_W |
				       X86_PTE_PS | leaf_u;
		}
		ret = write_guest(vcpu, pd_gpa(info, i), t, PAGE_SIZE);
		if (ret)
			goto out;
	}

	for (r = 0; r < nr_regions(info); r++) {
		if (!region_needs_pt(info, r))
			continue;
		k = region_pt_index(info, r);
		memset(t, 0, PAGE_SIZE);
		for (j = 0; j < 512; j++) {
			uint64_t gpa = r * SZ_2M + j * PAGE_SIZE;

			if (gpa >= mem)
				break;
			if (gpa)
				t[j] = gpa | X86_PTE_P | X86_PTE_W | leaf_u;
		}
		ret = write_guest(vcpu, pt_gpa(info, k), t, PAGE_SIZE);
		if (ret)
			goto out;
	}
out:
	gmem_free(t);
	return ret;
}

/*
 * A GDT code/data descriptor.  In long mode base and limit are ignored
 * for CS/DS/ES/SS; they are set flat anyway for readers of the table.
 *
 *   63    56 55 54 53 52 51  48 47 46 45 44 43  40 39     16 15      0
 *  | base   | G|DB| L|AV|limit | P| DPL |S | type  | base     | limit   |
 */
static uint64_t seg_desc(unsigned type, unsigned dpl, int l, int db)
{
	return 0xffffULL | (0xfULL << 48) | ((uint64_t)type << 40) |
	       (1ULL << 44) | ((uint64_t)dpl << 45) | (1ULL << 47) |
	       ((uint64_t)l << 53) | ((uint64_t)db << 54) | (1ULL << 55);
}

/* The low half of a 16-byte system descriptor; the high half is base[63:32]. */
static uint64_t tss_desc_lo(uint64_t base, uint32_t limit, unsigned type)
{
	return (limit & 0xffffULL) | ((base & 0xffffffULL) << 16) |
	       ((uint64_t)type << 40) | (1ULL << 47) |
	       ((uint64_t)((limit >> 16) & 0xf) << 48) |
	       (((base >> 24) & 0xffULL) << 56);
}

/*
 * The low half of a 64-bit interrupt gate (type 0xe, present, IST 0,
 * kernel code selector); the high half is offset[63:32].
 *
 *   63      48 47 46 45 44 40 39   32 31     16 15       0
 *  | off 31:16| P| DPL |0|type|0 |IST| selector | off 15:0 |
 */
static uint64_t idt_gate_lo(uint64_t a, unsigned dpl)
{
	return (a & 0xffffULL) | ((uint64_t)GMEM_BOOT_KERNEL_CS << 16) |
	       (0xeULL << 40) | ((uint64_t)dpl << 45) | (1ULL << 47) |
	       (((a >> 16) & 0xffffULL) << 48);
}

#define SEG_CODE 0xb /* execute/read, accessed */
#define SEG_DATA 0x3 /* read/write, accessed */
#define SEG_TSS_AVAIL 0x9
#define SEG_TSS_BUSY 0xb

static int write_system(struct gmem_vcpu *vcpu,
			const struct gmem_load_info *info)
{
	const struct gmem_load_opts *o = &info->opts;
	uint8_t *page;
	uint64_t *gdt;
	int ret;

	page = gmem_zalloc(PAGE_SIZE);
	if (!page)
		return -ENOMEM;

	/* Boot info. */
	for (unsigned n = 0; n < o->nr_cpus; n++) {
		struct gmem_boot_info bi = {
			.magic = GMEM_BOOT_MAGIC,
			.cpu = n,
			.nr_cpus = o->nr_cpus,
			.mem_size = o->mem_size,
			.image_end = info->image_end,
			.free_start = info->free_start,
			.free_end = info->free_end,
			.cr3 = info->cr3,
			.gdt = info->gdt,
			.tss = info->tss + n * TSS_STRIDE,
			.stack_top = info->stacks + (n + 1) * o->stack_size,
		};
		memcpy(page + n * BOOT_STRIDE, &bi, sizeof(bi));
	}
	ret = write_guest(vcpu, info->boot_info, page, PAGE_SIZE);
	if (ret)
		goto out;

	/*
	 * GDT.  The TSS descriptors are written available: the busy bit is
	 * what LTR would set, and here the TR cache in sregs says busy.
	 */
	memset(page, 0, PAGE_SIZE);
	gdt = (uint64_t *)page;
	gdt[GMEM_BOOT_KERNEL_CS / 8] = seg_desc(SEG_CODE, 0, 1, 0);
	gdt[GMEM_BOOT_KERNEL_DS / 8] = seg_desc(SEG_DATA, 0, 0, 1);
	gdt[GMEM_BOOT_USER_DS / 8] = seg_desc(SEG_DATA, 3, 0, 1);
	gdt[GMEM_BOOT_USER_CS / 8] = seg_desc(SEG_CODE, 3, 1, 0);
	for (unsigned n = 0; n < o->nr_cpus; n++) {
		uint64_t base = info->tss + n * TSS_STRIDE;

		gdt[GMEM_BOOT_TSS(n) / 8] = tss_desc_lo(
			base, sizeof(struct gmem_boot_tss) - 1, SEG_TSS_AVAIL);
		gdt[GMEM_BOOT_TSS(n) / 8 + 1] = base >> 32;
	}
	ret = write_guest(vcpu, info->gdt, page, PAGE_SIZE);
	if (ret)
		goto out;

	/* TSSs: RSP0 is the vCPU's stack top until the guest changes it. */
	memset(page, 0, PAGE_SIZE);
	for (unsigned n = 0; n < o->nr_cpus; n++) {
		struct gmem_boot_tss tss = {
			.iomap_base = sizeof(tss), /* no I/O bitmap */
		};
		tss.rsp[0] = info->stacks + (n + 1) * o->stack_size;
		memcpy(page + n * TSS_STRIDE, &tss, sizeof(tss));
	}
	ret = write_guest(vcpu, info->tss, page, PAGE_SIZE);
	if (ret)
		goto out;

	if (info->idt) {
		memset(page, 0, PAGE_SIZE);
		for (unsigned v = 0; v < 256; v++) {
			uint64_t a = o->idt_entry + (uint64_t)v * o->idt_stride;
			unsigned dpl = (v == 3 || v == 4 || v == 0x80) ? 3 : 0;
			uint64_t *gate = (uint64_t *)page + 2 * v;

			gate[0] = idt_gate_lo(a, dpl);
			gate[1] = a >> 32;
		}
		ret = write_guest(vcpu, info->idt, page, PAGE_SIZE);
		if (ret)
			goto out;
	}

	ret = write_tables(vcpu, info);
	if (ret)
		goto out;

	/* Stacks start zeroed, so a reload behaves like a first load. */
	ret = write_guest(vcpu, info->stacks, NULL,
			  (uint64_t)o->nr_cpus * o->stack_size);
out:
	gmem_free(page);
	return ret;
}

/* ---- registers --------------------------------------------------------- */

static void flat_seg(struct kvm_segment *s, uint16_t sel, unsigned type, int l,
		     int db)
{
	memset(s, 0, sizeof(*s));
	s->base = 0;
	s->limit = 0xffffffff;
	s->selector = sel;
	s->type = type;
	s->present = 1;
	s->dpl = sel & 3;
	s->db = db;
	s->s = 1;
	s->l = l;
	s->g = 1;
}

int gmem_load_vcpu(struct gmem_vcpu *vcpu, const struct gmem_load_info *info,
		   unsigned int cpu)
{
	const struct gmem_load_opts *o;
	struct kvm_sregs sregs;
	struct kvm_regs regs;
	int ret;

	if (!vcpu || !info || cpu >= info->opts.nr_cpus)
		return -EINVAL;
	o = &info->opts;

	/* Start from the vCPU's state so fields we do not own survive. */
	ret = gmem_vcpu_get_sregs(vcpu, &sregs);
	if (ret)
		return ret;
	flat_seg(&sregs.cs, GMEM_BOOT_KERNEL_CS, SEG_CODE, 1, 0);
	flat_seg(&sregs.ds, GMEM_BOOT_KERNEL_DS, SEG_DATA, 0, 1);
	sregs.es = sregs.fs = sregs.gs = sregs.ss = sregs.ds;

	memset(&sregs.tr, 0, sizeof(sregs.tr));
	sregs.tr.base = info->tss + (uint64_t)cpu * TSS_STRIDE;
	sregs.tr.limit = sizeof(struct gmem_boot_tss) - 1;
	sregs.tr.selector = GMEM_BOOT_TSS(cpu);
	sregs.tr.type = SEG_TSS_BUSY;
	sregs.tr.present = 1;

	memset(&sregs.ldt, 0, sizeof(sregs.ldt));
	sregs.ldt.unusable = 1;

	memset(&sregs.gdt, 0, sizeof(sregs.gdt));
	sregs.gdt.base = info->gdt;
	sregs.gdt.limit = info->gdt_limit;
	/* Without an IDT the guest installs its own before it can fault. */
	memset(&sregs.idt, 0, sizeof(sregs.idt));
	if (info->idt) {
		sregs.idt.base = info->idt;
		sregs.idt.limit = 256 * 16 - 1;
	}

	sregs.cr0 = X86_CR0_PE | X86_CR0_ET | X86_CR0_WP | X86_CR0_PG;
	sregs.cr2 = 0;
	sregs.cr3 = info->cr3;
	sregs.cr4 = X86_CR4_PAE;
	sregs.efer = X86_EFER_LME | X86_EFER_LMA | X86_EFER_SCE |
		     ((o->flags & GMEM_LOAD_NX) ? X86_EFER_NXE : 0);
	memset(sregs.interrupt_bitmap, 0, sizeof(sregs.interrupt_bitmap));
	ret = gmem_vcpu_set_sregs(vcpu, &sregs);
	if (ret)
		return ret;

	memset(&regs, 0, sizeof(regs));
	regs.rip = info->entry;
	regs.rflags = 0x2; /* bit 1 is always set; IF off */
	regs.rsp = info->stacks + (uint64_t)(cpu + 1) * o->stack_size;
	regs.rdi = o->rdi;
	regs.rsi = o->rsi;
	regs.rdx = info->boot_info + (uint64_t)cpu * BOOT_STRIDE;
	return gmem_vcpu_set_regs(vcpu, &regs);
}

int gmem_load_elf(struct gmem_vcpu *vcpu, const void *image, size_t size,
		  const struct gmem_load_opts *opts,
		  struct gmem_load_info *info)
{
	struct gmem_load_info local;
	Elf64_Ehdr eh;
	int ret;

	if (!vcpu)
		return -EINVAL;
	if (!info)
		info = &local;
	ret = gmem_load_check(image, size, opts, info);
	if (ret)
		return ret;
	memcpy(&eh, image, sizeof(eh));
	ret = write_segments(vcpu, image, &eh);
	if (ret)
		return ret;
	ret = write_system(vcpu, info);
	if (ret)
		return ret;
	return gmem_load_vcpu(vcpu, info, 0);
}

int gmem_load_read_file(const char *path, void **imagep, size_t *sizep)
{
	struct stat st;
	size_t done = 0;
	void *buf = NULL;
	int fd, ret = 0;

	if (!path)
		return -EINVAL;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (fstat(fd, &st)) {
		ret = -errno;
		goto out;
	}
	if (!S_ISREG(st.st_mode)) {
		ret = -ENOEXEC;
		goto out;
	}
	/* A guest image larger than the biggest guest RAM cannot fit. */
	if ((uint64_t)st.st_size > GMEM_LOAD_MAX_MEM) {
		ret = -E2BIG;
		goto out;
	}
	buf = gmem_zalloc(st.st_size ? st.st_size : 1);
	if (!buf) {
		ret = -ENOMEM;
		goto out;
	}
	while (done < (size_t)st.st_size) {
		ssize_t n = read(fd, (char *)buf + done, st.st_size - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			ret = n < 0 ? -errno : -EIO;
			gmem_free(buf);
			goto out;
		}
		done += n;
	}
	*imagep = buf;
	*sizep = done;
out:
	close(fd);
	return ret;
}

int gmem_load_elf_file(struct gmem_vcpu *vcpu, const char *path,
		       const struct gmem_load_opts *opts,
		       struct gmem_load_info *info)
{
	size_t size;
	void *buf;
	int ret;

	ret = gmem_load_read_file(path, &buf, &size);
	if (ret)
		return ret;
	ret = gmem_load_elf(vcpu, buf, size, opts, info);
	gmem_free(buf);
	return ret;
}
