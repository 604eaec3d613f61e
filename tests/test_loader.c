// SPDX-License-Identifier: MIT
/*
 * The guest ELF loader: validation of hand-made good and corrupt images
 * (every check, with its errno), a mutation pass that must never crash,
 * and a real load into a VM whose memory, page tables, GDT, TSS, boot
 * info and registers are then read back and checked; and reading an
 * image from a file.
 */
#include <elf.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#include <gmem/gmem.h>
#include <gmem/loader.h>

#include "tap.h"

#define MEM (8ULL << 20)
#define TEXT_GPA 0x200000ULL
#define DATA_GPA 0x201000ULL

/*
 * A two-segment image: text (R X, 16 bytes at file offset 0x1000) and
 * data (R W, 8 bytes of file data, 0x2000 bytes in memory).
 */
struct image {
	uint8_t b[0x1100];
	size_t size;
};

static Elf64_Ehdr *ehdr(struct image *im)
{
	return (Elf64_Ehdr *)im->b;
}

static Elf64_Phdr *phdr(struct image *im, int i)
{
	return (Elf64_Phdr *)(im->b + sizeof(Elf64_Ehdr)) + i;
}

static void make_image(struct image *im)
{
	Elf64_Ehdr *eh = ehdr(im);
	Elf64_Phdr *ph;

	memset(im, 0, sizeof(*im));
	im->size = sizeof(im->b);
	memcpy(eh->e_ident, ELFMAG, SELFMAG);
	eh->e_ident[EI_CLASS] = ELFCLASS64;
	eh->e_ident[EI_DATA] = ELFDATA2LSB;
	eh->e_ident[EI_VERSION] = EV_CURRENT;
	eh->e_type = ET_EXEC;
	eh->e_machine = EM_X86_64;
	eh->e_version = EV_CURRENT;
	eh->e_entry = TEXT_GPA + 4;
	eh->e_phoff = sizeof(*eh);
	eh->e_ehsize = sizeof(*eh);
	eh->e_phentsize = sizeof(Elf64_Phdr);
	eh->e_phnum = 3;

	ph = phdr(im, 0);
	ph->p_type = PT_LOAD;
	ph->p_flags = PF_R | PF_X;
	ph->p_offset = 0x1000;
	ph->p_vaddr = ph->p_paddr = TEXT_GPA;
	ph->p_filesz = ph->p_memsz = 16;

	ph = phdr(im, 1);
	ph->p_type = PT_LOAD;
	ph->p_flags = PF_R | PF_W;
	ph->p_offset = 0x1010;
	ph->p_vaddr = ph->p_paddr = DATA_GPA;
	ph->p_filesz = 8;
	ph->p_memsz = 0x2000;

	ph = phdr(im, 2);
	ph->p_type = PT_NOTE;

	for (int i = 0; i < 16; i++)
		im->b[0x1000 + i] = 0x90 + i;
	for (int i = 0; i < 8; i++)
		im->b[0x1010 + i] = 0xa0 + i;
}

static struct gmem_load_opts default_opts(void)
{
	struct gmem_load_opts o = {.mem_size = MEM};

	return o;
}

static int check(struct image *im, const struct gmem_load_opts *o)
{
	struct gmem_load_info info;

	return gmem_load_check(im->b, im->size, o, &info);
}

static void test_good(void)
{
	struct gmem_load_opts o = default_opts();
	struct gmem_load_info info;
	struct image im;

	make_image(&im);
	CHECK_EQ(gmem_load_check(im.b, im.size, &o, &info), 0);
	CHECK_EQ(info.entry, TEXT_GPA + 4);
	CHECK_EQ(info.image_start, TEXT_GPA);
	CHECK_EQ(info.image_end, DATA_GPA + 0x2000);
	CHECK_EQ(info.boot_info, DATA_GPA + 0x2000);
	CHECK_EQ(info.cr3 & 0xfff, 0);
	CHECK(info.cr3 >= info.boot_info + 3 * 4096);
	/* PML4, PDPT, one PD, PTs for region 0 and nothing else (8 MiB). */
	CHECK_EQ(info.nr_table_pages, 4);
	CHECK_EQ(info.opts.nr_cpus, 1);
	CHECK_EQ(info.opts.stack_size, GMEM_LOAD_DEFAULT_STACK);
	CHECK_EQ(info.free_start, info.stacks + GMEM_LOAD_DEFAULT_STACK);
	CHECK_EQ(info.free_end, MEM);

	/* 4 KiB pages: one PT per 2 MiB region. */
	o.flags = GMEM_LOAD_4K;
	CHECK_EQ(gmem_load_check(im.b, im.size, &o, &info), 0);
	CHECK_EQ(info.nr_table_pages, 2 + 1 + 4);

	/* A partial last region needs its own page table. */
	o.flags = 0;
	o.mem_size = MEM + 4096;
	CHECK_EQ(gmem_load_check(im.b, im.size, &o, &info), 0);
	CHECK_EQ(info.nr_table_pages, 2 + 1 + 2);

	/* More than 1 GiB: a second page directory. */
	o.mem_size = (1ULL << 30) + (2ULL << 20);
	CHECK_EQ(gmem_load_check(im.b, im.size, &o, &info), 0);
	CHECK_EQ(info.nr_table_pages, 2 + 2 + 1);

	/* Explicit free_start below the image. */
	o = default_opts();
	o.free_start = 0x100000;
	o.nr_cpus = 4;
	o.stack_size = 0x4000;
	CHECK_EQ(gmem_load_check(im.b, im.size, &o, &info), 0);
	CHECK_EQ(info.boot_info, 0x100000);
	CHECK_EQ(info.gdt_limit, GMEM_BOOT_TSS(4) - 1);
	CHECK_EQ(info.free_start, info.stacks + 4 * 0x4000);
	tap_result("good image: layout");
}

/* Each case: mutate a fresh good image, expect an error. */
static void test_corrupt(void)
{
	struct gmem_load_opts o = default_opts();
	struct image im;

#define CORRUPT(expect, stmt)                                           \
	do {                                                            \
		make_image(&im);                                        \
		stmt;                                                   \
		int _r = check(&im, &o);                                \
		if (_r != (expect)) {                                   \
			tap_case_failed = 1;                            \
			printf("# %s:%d: after %s: %d, expected %s\n",  \
			       __FILE__, __LINE__, #stmt, _r, #expect); \
		}                                                       \
	} while (0)

	CORRUPT(-ENOEXEC, im.b[0] = 0);
	CORRUPT(-ENOEXEC, im.b[3] = 'g');
	CORRUPT(-ENOEXEC, im.size = 0);
	CORRUPT(-ENOEXEC, im.size = 3);
	CORRUPT(-EINVAL, im.size = 20);
	CORRUPT(-EINVAL, im.size = sizeof(Elf64_Ehdr) - 1);
	CORRUPT(-ENOEXEC, ehdr(&im)->e_ident[EI_CLASS] = ELFCLASS32);
	CORRUPT(-ENOEXEC, ehdr(&im)->e_ident[EI_DATA] = ELFDATA2MSB);
	CORRUPT(-ENOEXEC, ehdr(&im)->e_ident[EI_VERSION] = 0);
	CORRUPT(-ENOEXEC, ehdr(&im)->e_ident[EI_OSABI] = ELFOSABI_FREEBSD);
	CORRUPT(-ENOEXEC, ehdr(&im)->e_version = 2);
	CORRUPT(-ENOEXEC, ehdr(&im)->e_machine = EM_AARCH64);
	CORRUPT(-ENOEXEC, ehdr(&im)->e_machine = EM_386);
	CORRUPT(-ENOEXEC, ehdr(&im)->e_type = ET_DYN);
	CORRUPT(-ENOEXEC, ehdr(&im)->e_type = ET_REL);
	CORRUPT(-ENOEXEC, ehdr(&im)->e_phnum = 0);
	CORRUPT(-ENOEXEC, ehdr(&im)->e_phnum = PN_XNUM);
	CORRUPT(-EINVAL, ehdr(&im)->e_phnum = 65);
	CORRUPT(-EINVAL, ehdr(&im)->e_ehsize = 52);
	CORRUPT(-EINVAL, ehdr(&im)->e_phentsize = 32);
	CORRUPT(-EINVAL, ehdr(&im)->e_phoff = im.size);
	CORRUPT(-EINVAL, ehdr(&im)->e_phoff = ~0ULL - 8);
	CORRUPT(-EINVAL, ehdr(&im)->e_phoff = im.size - 100);
	/* Program headers cut off by the end of the image. */
	CORRUPT(-EINVAL, im.size = sizeof(Elf64_Ehdr) + 2 * sizeof(Elf64_Phdr));
	/* Segment contents. */
	CORRUPT(-EINVAL, phdr(&im, 0)->p_filesz = 17);
	CORRUPT(-EINVAL, phdr(&im, 1)->p_offset = im.size - 4);
	CORRUPT(-EINVAL, phdr(&im, 1)->p_offset = ~0ULL - 2);
	CORRUPT(-EINVAL, phdr(&im, 1)->p_offset = im.size + 1);
	CORRUPT(-EINVAL,
		(phdr(&im, 1)->p_filesz = phdr(&im, 1)->p_memsz = ~0ULL - 2,
		 phdr(&im, 1)->p_offset = 0));
	CORRUPT(-EINVAL, phdr(&im, 1)->p_memsz = ~0ULL);
	CORRUPT(-EINVAL, phdr(&im, 1)->p_vaddr = 0xffffffff80000000ULL);
	/* Overlaps, either order, and full containment. */
	CORRUPT(-EINVAL,
		phdr(&im, 1)->p_vaddr = phdr(&im, 1)->p_paddr = TEXT_GPA + 8);
	CORRUPT(-EINVAL, phdr(&im, 0)->p_memsz = 0x1001);
	CORRUPT(-EINVAL, (phdr(&im, 1)->p_vaddr = phdr(&im, 1)->p_paddr =
				  TEXT_GPA - 0x1000,
			  phdr(&im, 1)->p_memsz = 0x4000));
	/* Outside guest RAM. */
	CORRUPT(-E2BIG, phdr(&im, 1)->p_vaddr = phdr(&im, 1)->p_paddr = MEM);
	CORRUPT(-E2BIG, phdr(&im, 1)->p_memsz = MEM);
	CORRUPT(-E2BIG,
		phdr(&im, 1)->p_vaddr = phdr(&im, 1)->p_paddr = MEM - 0x1000);
	/* Entry point not in executable memory. */
	CORRUPT(-EINVAL, ehdr(&im)->e_entry = DATA_GPA);
	CORRUPT(-EINVAL, ehdr(&im)->e_entry = TEXT_GPA + 16);
	CORRUPT(-EINVAL, ehdr(&im)->e_entry = 0);
	CORRUPT(-EINVAL, phdr(&im, 0)->p_flags = PF_R);
	/* Dynamic images, and images with nothing to load. */
	CORRUPT(-ENOEXEC, phdr(&im, 2)->p_type = PT_INTERP);
	CORRUPT(-ENOEXEC, phdr(&im, 2)->p_type = PT_DYNAMIC);
	CORRUPT(-ENOEXEC,
		phdr(&im, 0)->p_type = phdr(&im, 1)->p_type = PT_NULL);
	/* A zero-sized PT_LOAD is ignored, even somewhere odd. */
	CORRUPT(0, (phdr(&im, 2)->p_type = PT_LOAD,
		    phdr(&im, 2)->p_vaddr = phdr(&im, 2)->p_paddr = TEXT_GPA));
	tap_result("corrupt images: each check with its errno");

	/* Options. */
	make_image(&im);
	CHECK_EQ(gmem_load_check(im.b, im.size, NULL,
				 &(struct gmem_load_info){0}),
		 -EINVAL);
	CHECK_EQ(gmem_load_check(NULL, 0, &o, &(struct gmem_load_info){0}),
		 -EINVAL);
	CHECK_EQ(gmem_load_check(im.b, im.size, &o, NULL), -EINVAL);
#define BADOPT(expect, stmt)                                            \
	do {                                                            \
		o = default_opts();                                     \
		stmt;                                                   \
		int _r = check(&im, &o);                                \
		if (_r != (expect)) {                                   \
			tap_case_failed = 1;                            \
			printf("# %s:%d: after %s: %d, expected %s\n",  \
			       __FILE__, __LINE__, #stmt, _r, #expect); \
		}                                                       \
	} while (0)
	BADOPT(-EINVAL, o.mem_size = 0);
	BADOPT(-EINVAL, o.mem_size = MEM + 1);
	BADOPT(-E2BIG, o.mem_size = GMEM_LOAD_MAX_MEM + 4096);
	BADOPT(-EINVAL, o.flags = 1U << 31);
	BADOPT(-EINVAL, o.nr_cpus = GMEM_LOAD_MAX_CPUS + 1);
	BADOPT(-EINVAL, o.stack_size = 100);
	BADOPT(-EINVAL, o.free_start = 0x100001);
	BADOPT(-E2BIG, o.stack_size = MEM);
	BADOPT(-E2BIG, o.stack_size = ~0ULL & ~0xfffULL);
	BADOPT(-E2BIG, o.free_start = MEM);
	BADOPT(-E2BIG, o.free_start = MEM - 0x4000);
	BADOPT(-E2BIG, o.mem_size = DATA_GPA + 0x3000);
	/* The loader's block may not overlap the image. */
	BADOPT(-EINVAL, o.free_start = DATA_GPA);
	BADOPT(-EINVAL, o.free_start = TEXT_GPA - 0x2000);
	BADOPT(0, o.nr_cpus = GMEM_LOAD_MAX_CPUS);
	/* IDT entries must all lie in executable memory. */
	BADOPT(0, o.idt_entry = TEXT_GPA);
	BADOPT(0, (o.idt_entry = TEXT_GPA, o.idt_stride = 0));
	BADOPT(-EINVAL, o.idt_entry = DATA_GPA);
	BADOPT(-EINVAL, o.idt_entry = TEXT_GPA + 16);
	BADOPT(-EINVAL, (o.idt_entry = TEXT_GPA, o.idt_stride = 1));
	BADOPT(-EINVAL, (o.idt_entry = ~0ULL - 16, o.idt_stride = 1 << 20));
	BADOPT(-EINVAL, o.reserved = 1);
	tap_result("bad options");
}

/* Random mutations: any result is fine as long as it is one we document. */
static void test_mutations(void)
{
	struct gmem_load_opts o = default_opts();
	struct image im;
	unsigned seed = 12345;
	int bad = 0;

	for (int n = 0; n < 200000; n++) {
		make_image(&im);
		int flips = 1 + n % 4;

		for (int k = 0; k < flips; k++) {
			seed = seed * 1103515245 + 12345;
			/* Mostly the headers, where the checks are. */
			size_t at = (seed >> 8) % (sizeof(Elf64_Ehdr) +
						   3 * sizeof(Elf64_Phdr));
			seed = seed * 1103515245 + 12345;
			im.b[at] = seed >> 16;
		}
		if (n % 7 == 0)
			im.size = (seed >> 4) % sizeof(im.b);
		int r = check(&im, &o);
		if (r != 0 && r != -EINVAL && r != -ENOEXEC && r != -E2BIG) {
			if (!bad++)
				printf("# mutation %d gave %d\n", n, r);
		}
	}
	CHECK_EQ(bad, 0);
	tap_result("200000 mutated images: no crash, documented errors only");
}

/* ---- a real load ------------------------------------------------------- */

static int rd(struct gmem_vcpu *vcpu, uint64_t gpa, void *buf, size_t len)
{
	return gmem_vcpu_access(vcpu, gpa, buf, len, GMEM_ACCESS_READ);
}

static uint64_t rd64(struct gmem_vcpu *vcpu, uint64_t gpa)
{
	uint64_t v = 0xdeadbeefdeadbeefULL;

	rd(vcpu, gpa, &v, 8);
	return v;
}

/*
 * Walk the guest's 4-level tables as the CPU would: the physical address
 * of @va and the AND of the W and U bits, or -1 if not present.
 */
static int64_t walk(struct gmem_vcpu *vcpu, uint64_t cr3, uint64_t va,
		    uint64_t *wu)
{
	uint64_t table = cr3 & ~0xfffULL, e = 0, perm = 6;

	for (int level = 3; level >= 0; level--) {
		e = rd64(vcpu, table + ((va >> (12 + 9 * level)) & 511) * 8);
		if (!(e & 1))
			return -1;
		perm &= e & 6;
		if (level > 0 && (e & 0x80)) {
			uint64_t mask = (1ULL << (12 + 9 * level)) - 1;

			*wu = perm;
			return (e & 0x000ffffffffff000ULL & ~mask) |
			       (va & mask);
		}
		table = e & 0x000ffffffffff000ULL;
	}
	*wu = perm;
	return table | (va & 0xfff);
}

static void load_and_check(unsigned long type, int private_mem, uint32_t flags,
			   const char *name)
{
	struct gmem_load_opts o = default_opts();
	struct kvm_userspace_memory_region2 r = {0};
	struct gmem_load_info info;
	struct gmem_boot_info bi;
	struct gmem_vcpu *vcpu = NULL, *vcpu1 = NULL;
	struct gmem_vm *vm = NULL;
	struct kvm_sregs s;
	struct kvm_regs regs;
	struct image im;
	uint8_t buf[16];
	uint64_t wu;
	void *mem;
	int gfd = -1, ret;

	mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE,
		   MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	REQUIRE(mem != MAP_FAILED);
	REQUIRE(gmem_vm_create(type, &vm) == 0);
	r.memory_size = MEM;
	r.userspace_addr = (uintptr_t)mem;
	if (private_mem) {
		struct kvm_create_guest_memfd cg = {.size = MEM};
		struct kvm_memory_attributes a = {
			.size = MEM,
			.attributes = KVM_MEMORY_ATTRIBUTE_PRIVATE};

		gfd = gmem_create_guest_memfd(vm, &cg);
		REQUIRE(gfd >= 0);
		r.flags = KVM_MEM_GUEST_MEMFD;
		r.guest_memfd = gfd;
		REQUIRE(gmem_vm_set_memory_region2(vm, &r) == 0);
		REQUIRE(gmem_vm_set_memory_attributes(vm, &a) == 0);
	} else {
		REQUIRE(gmem_vm_set_memory_region2(vm, &r) == 0);
	}
	ret = gmem_vcpu_create(vm, 0, &vcpu);
	CHECK_EQ(ret, 0);
	if (ret) {
		tap_result(name);
		goto out;
	}
	REQUIRE(gmem_vcpu_create(vm, 1, &vcpu1) == 0);

	/* A corrupt image writes nothing. */
	make_image(&im);
	phdr(&im, 1)->p_memsz = MEM;
	CHECK_EQ(gmem_load_elf(vcpu, im.b, im.size, &o, &info), -E2BIG);
	CHECK_EQ(rd64(vcpu, TEXT_GPA), 0);

	make_image(&im);
	o.nr_cpus = 2;
	o.rdi = 0x1111;
	o.rsi = 0x2222;
	o.flags = flags;
	/* One variant also asks for an IDT: every vector to the entry. */
	if (flags & GMEM_LOAD_NX)
		o.idt_entry = TEXT_GPA + 4;
	ret = gmem_load_elf(vcpu, im.b, im.size, &o, &info);
	CHECK_EQ(ret, 0);
	if (ret) {
		tap_result(name);
		goto out;
	}
	CHECK_EQ(gmem_load_vcpu(vcpu1, &info, 1), 0);
	CHECK_EQ(gmem_load_vcpu(vcpu1, &info, 2), -EINVAL);

	/* Segments and bss. */
	CHECK_EQ(rd(vcpu, TEXT_GPA, buf, 16), 0);
	CHECK(memcmp(buf, im.b + 0x1000, 16) == 0);
	CHECK_EQ(rd(vcpu, DATA_GPA, buf, 16), 0);
	CHECK(memcmp(buf, im.b + 0x1010, 8) == 0);
	CHECK_EQ(rd64(vcpu, DATA_GPA + 8), 0);
	CHECK_EQ(rd64(vcpu, DATA_GPA + 0x1ff8), 0);
	/* Private memory: nothing went to the shared backing. */
	if (private_mem)
		CHECK_EQ(((uint8_t *)mem)[TEXT_GPA], 0);
	else
		CHECK_EQ(((uint8_t *)mem)[TEXT_GPA], 0x90);

	/* Identity map, page 0 absent, U as asked. */
	CHECK_EQ(walk(vcpu, info.cr3, 0, &wu), -1);
	CHECK_EQ(walk(vcpu, info.cr3, 0x1234, &wu), 0x1234);
	CHECK_EQ(walk(vcpu, info.cr3, TEXT_GPA + 5, &wu), TEXT_GPA + 5);
	CHECK_EQ(wu, (flags & GMEM_LOAD_SUPERVISOR) ? 2 : 6);
	CHECK_EQ(walk(vcpu, info.cr3, MEM - 1, &wu), MEM - 1);
	CHECK_EQ(walk(vcpu, info.cr3, MEM, &wu), -1);
	CHECK_EQ(walk(vcpu, info.cr3, 1ULL << 39, &wu), -1);

	/* Boot info of vCPU 1. */
	CHECK_EQ(rd(vcpu, info.boot_info + 128, &bi, sizeof(bi)), 0);
	CHECK_EQ(bi.magic, GMEM_BOOT_MAGIC);
	CHECK_EQ(bi.cpu, 1);
	CHECK_EQ(bi.nr_cpus, 2);
	CHECK_EQ(bi.mem_size, MEM);
	CHECK_EQ(bi.cr3, info.cr3);
	CHECK_EQ(bi.tss, info.tss + 128);
	CHECK_EQ(bi.stack_top, info.stacks + 2 * GMEM_LOAD_DEFAULT_STACK);
	CHECK_EQ(bi.free_start, info.free_start);

	/* GDT: the descriptors as SYSCALL/SYSRET need them. */
	CHECK_EQ(rd64(vcpu, info.gdt), 0);
	CHECK_EQ(rd64(vcpu, info.gdt + 0x08), 0x00af9b000000ffffULL);
	CHECK_EQ(rd64(vcpu, info.gdt + 0x10), 0x00cf93000000ffffULL);
	CHECK_EQ(rd64(vcpu, info.gdt + 0x18), 0x00cff3000000ffffULL);
	CHECK_EQ(rd64(vcpu, info.gdt + 0x20), 0x00affb000000ffffULL);
	CHECK_EQ((rd64(vcpu, info.gdt + 0x38) >> 40) & 0x9f, 0x89);
	/* TSS RSP0 of vCPU 1, and its I/O map base (no bitmap). */
	CHECK_EQ(rd64(vcpu, info.tss + 128 + 4), bi.stack_top);
	CHECK_EQ(rd64(vcpu, info.tss + 128 + 96) >> 48, 104);

	/* vCPU 1's registers. */
	CHECK_EQ(gmem_vcpu_get_regs(vcpu1, &regs), 0);
	CHECK_EQ(regs.rip, TEXT_GPA + 4);
	CHECK_EQ(regs.rsp, bi.stack_top);
	CHECK_EQ(regs.rdi, 0x1111);
	CHECK_EQ(regs.rsi, 0x2222);
	CHECK_EQ(regs.rdx, info.boot_info + 128);
	CHECK_EQ(regs.rflags & ~0x0ULL, 2);
	CHECK_EQ(gmem_vcpu_get_sregs(vcpu1, &s), 0);
	CHECK_EQ(s.cs.selector, 8);
	CHECK_EQ(s.cs.l, 1);
	CHECK_EQ(s.ss.selector, 0x10);
	CHECK_EQ(s.tr.selector, 0x38);
	CHECK_EQ(s.tr.base, info.tss + 128);
	CHECK_EQ(s.gdt.base, info.gdt);
	CHECK_EQ(s.gdt.limit, GMEM_BOOT_TSS(2) - 1);
	CHECK_EQ(s.cr3, info.cr3);
	if (o.idt_entry) {
		CHECK(info.idt != 0);
		CHECK_EQ(s.idt.base, info.idt);
		CHECK_EQ(s.idt.limit, 4095);
		/* Gate 3: offset, selector 8, type 0xe, DPL 3, present. */
		CHECK_EQ(rd64(vcpu, info.idt + 3 * 16), 0x0020ee0000080004ULL);
		CHECK_EQ(rd64(vcpu, info.idt + 3 * 16 + 8), 0);
		CHECK_EQ(rd64(vcpu, info.idt + 255 * 16),
			 0x00208e0000080004ULL);
	} else {
		CHECK_EQ(info.idt, 0);
		CHECK_EQ(s.idt.limit, 0);
	}
	CHECK_EQ(s.cr0 & 0x80010011ULL, 0x80010011ULL);
	CHECK_EQ(s.cr4 & 0x20, 0x20);
	CHECK_EQ(s.efer & 0xd01, (flags & GMEM_LOAD_NX) ? 0xd01 : 0x501);
	tap_result(name);
out:
	if (vcpu1)
		gmem_vcpu_destroy(vcpu1);
	if (vcpu)
		gmem_vcpu_destroy(vcpu);
	if (gfd >= 0)
		gmem_handle_close(gfd);
	gmem_vm_put(vm);
	munmap(mem, MEM);
}

/* gmem_load_read_file(): the bytes, or the documented errors. */
static void test_read_file(void)
{
	char path[] = "/tmp/gmem-test-loader-XXXXXX";
	struct image im;
	size_t size = 0;
	void *buf = NULL;
	int fd;

	make_image(&im);
	fd = mkstemp(path);
	REQUIRE(fd >= 0);
	REQUIRE(write(fd, im.b, im.size) == (ssize_t)im.size);
	close(fd);
	CHECK_EQ(gmem_load_read_file(path, &buf, &size), 0);
	CHECK_EQ(size, im.size);
	CHECK(buf && !memcmp(buf, im.b, im.size));
	free(buf);

	gmem_test_fail_alloc(1);
	CHECK_EQ(gmem_load_read_file(path, &buf, &size), -ENOMEM);
	gmem_test_fail_alloc(0);
	unlink(path);
	CHECK_EQ(gmem_load_read_file(path, &buf, &size), -ENOENT);
	CHECK_EQ(gmem_load_read_file("/tmp", &buf, &size), -ENOEXEC);
	CHECK_EQ(gmem_load_read_file(NULL, &buf, &size), -EINVAL);
	tap_result("read an image file: its bytes; -ENOMEM, -ENOENT, "
		   "-ENOEXEC for a directory");
}

int main(void)
{
	tap_plan(9, 60);
	test_read_file();
	test_good();
	test_corrupt();
	test_mutations();
	load_and_check(KVM_X86_DEFAULT_VM, 0, 0, "load into shared memory");
	load_and_check(KVM_X86_DEFAULT_VM, 0, GMEM_LOAD_4K | GMEM_LOAD_NX,
		       "load with 4 KiB pages and NXE");
	load_and_check(KVM_X86_DEFAULT_VM, 0, GMEM_LOAD_SUPERVISOR,
		       "load with supervisor-only pages");
	load_and_check(KVM_X86_SW_PROTECTED_VM, 1, 0,
		       "load into private guest_memfd memory");
	return tap_done();
}
