// SPDX-License-Identifier: MIT
/*
 * Execute-only memory from inside the guest (DESIGN §3.5): the XO alias
 * bit in guest PTEs, the #PF a read or write through it gets (error code
 * and CR2 exactly), ring-3 code running from XO text set up by the guest
 * kernel's mprotect(PROT_EXEC), XO over private guest_memfd memory,
 * coherence of the alias with self-modifying code, punch hole,
 * conversions, attribute changes and slot deletion, the EXECONLY slot
 * flag, the exec-only attribute, and a guest without the capability.
 *
 * Each case runs in a fresh VM (so one failure does not hide the rest):
 * the guest gets the case number in arg0 and M in arg1.  Where the host
 * has to act (set an attribute, punch, replace a slot) the guest asks with
 * a SYNC that carries a step number and a GPA, and the host checks the
 * exits that follow.
 */
#include <stdint.h>

#define XO_M 40 /* the physical-address width given to GMEM_CAP_XO_ALIAS */

/* Extra memslots of some cases, above guest RAM. */
#define SLOT1_GPA 0x10000000ULL
#define SLOT2_GPA 0x10200000ULL

/* Host steps, asked for by the guest with sync2(step, gpa). */
enum {
	STEP_SET_NX = 100,  /* NX on the page; expect an EXEC fault */
	STEP_PUNCH,	    /* punch the page, write a new snippet */
	STEP_TO_SHARED,	    /* convert to shared, snippet in shared memory */
	STEP_TO_PRIVATE,    /* convert back, new snippet in guest_memfd */
	STEP_REPLACE_SLOT,  /* slot 1: delete, create on other memory */
	STEP_DELETE_SLOT,   /* slot 1: delete; expect a failed fetch */
	STEP_SET_EXEC_ONLY, /* NR|NW; expect a read and a write exit */
};

/* Snippets: "mov $imm32, %eax; ret". */
#define SNIPPET_LEN 6

enum {
	C_CPUID,
	C_USER_RUNS,
	C_USER_READ,
	C_USER_WRITE,
	C_KERNEL,
	C_PRIVATE,
	C_SMC,
	C_NX,
	C_PUNCH,
	C_CONVERT,
	C_SLOT_DELETE,
	C_EXECONLY_SLOT,
	C_EXEC_ONLY_ATTR,
	C_NOCAP,
	C_RESERVED,
	C_CMC,
	C_LARGE,
	NR_CASES
};

#ifdef GUEST

#include "guest.h"
#include "xo.h"

extern char __image_start[], __text_end[];

/* Window addresses for alias mappings, outside the identity map. */
#define WIN_XO 0x40000000ULL	    /* code[0] through the XO alias */
#define WIN_RW 0x40001000ULL	    /* a text page, readable and writable */
#define WIN_SLOT1 0x40002000ULL	    /* slot 1 through the XO alias */
#define WIN_SLOT2 0x40003000ULL	    /* the EXECONLY slot, no alias bit */
#define WIN_BAD 0x40004000ULL	    /* a leaf with a reserved bit */
#define WIN_BAD_TABLE 0x80000000ULL /* under a table with bit M set */

static uint64_t xo, m;

static uint8_t code[2][PAGE_SIZE] __aligned(PAGE_SIZE);
static uint8_t user_stack[16384] __aligned(16);
#define USER_TOP ((void *)(user_stack + sizeof(user_stack)))

/* What a probe saw, stored where user code can write it. */
struct probe {
	uint64_t vector, error_code, cr2;
};
static volatile struct probe seen[4];

static void record(int slot, int vector)
{
	seen[slot].vector = (uint64_t)vector;
	seen[slot].error_code = guest_last_fault.error_code;
	seen[slot].cr2 = guest_last_fault.cr2;
}

#define ASSERT_PF(slot, err, addr)                                 \
	do {                                                       \
		GUEST_ASSERT_EQ(seen[slot].vector, VEC_PF);        \
		GUEST_ASSERT_EQ(seen[slot].error_code, (err));     \
		GUEST_ASSERT_EQ(seen[slot].cr2, (uint64_t)(addr)); \
	} while (0)

static void put_snippet(void *where, uint32_t v)
{
	volatile uint8_t *p = where;

	p[0] = 0xb8;
	p[1] = v & 0xff;
	p[2] = (v >> 8) & 0xff;
	p[3] = (v >> 16) & 0xff;
	p[4] = v >> 24;
	p[5] = 0xc3;
}

static uint32_t call(uint64_t va)
{
	return ((uint32_t(*)(void))va)();
}

/* A SYNC with a second argument, for the host steps. */
static uint64_t sync2(uint64_t step, uint64_t gpa)
{
	struct guest_ucall uc = {.cmd = UCALL_SYNC};

	uc.args[0] = step;
	uc.args[2] = gpa;
	guest_ucall(&uc);
	return uc.args[1];
}

/* ---- the user program ---------------------------------------------- */

static __attribute__((noinline)) uint64_t fib(uint64_t n)
{
	return n < 2 ? n : fib(n - 1) + fib(n - 2);
}

/* Runs at CPL 3 from XO text: calls, a loop, a system call. */
static uint64_t user_work(uint64_t arg)
{
	uint64_t sum = 0;

	for (uint64_t i = 0; i < arg; i++)
		sum += fib(i);
	guest_syscall(GUEST_SYS_PUTS, (uint64_t) "ring 3 runs from XO text\n");
	return sum;
}

/* An address inside XO text that is not the start of a page. */
static uint64_t text_addr(void)
{
	return ((uint64_t)user_work & ~(PAGE_SIZE - 1)) + 0x123;
}

static uint64_t user_read(uint64_t addr)
{
	record(0, guest_probe_read((void *)addr));
	return 0;
}

static uint64_t user_write(uint64_t addr)
{
	record(0, guest_probe_write((void *)addr, 0x0badc0de));
	return 0;
}

static void make_text_xo(void)
{
	uint64_t s = (uint64_t)__image_start, e = (uint64_t)__text_end;

	GUEST_ASSERT(xo);
	GUEST_ASSERT_EQ(guest_mprotect(__image_start, e - s, PROT_EXEC), 0);
	GUEST_ASSERT(*guest_pte(s) & xo);
	GUEST_ASSERT(*guest_pte((uint64_t)user_work) & xo);
	GUEST_ASSERT(*guest_pte(e - 1) & xo);
}

/* ---- cases ----------------------------------------------------------- */

static void case_cpuid(void)
{
	uint32_t a, b, c, d;

	cpuid(0x40000000, 0, &a, &b, &c, &d);
	GUEST_ASSERT_EQ(a, 0x40000001);
	GUEST_ASSERT_EQ(b, 0x6d656d67);
	GUEST_ASSERT_EQ(c, 0x6d656d67);
	GUEST_ASSERT_EQ(d, 0x6d656d67);
	cpuid(0x40000001, 0, &a, &b, &c, &d);
	GUEST_ASSERT_EQ(a & 1, 1);
	GUEST_ASSERT_EQ(guest_maxphyaddr(), m);
	GUEST_ASSERT_EQ(xo, 1ULL << m);
}

static void case_user_runs(void)
{
	make_text_xo();
	/* fib(0) + ... + fib(19) = fib(21) - 1 */
	GUEST_ASSERT_EQ(guest_run_user(user_work, 20, USER_TOP), 10945);
	/* The kernel runs from the same XO pages. */
	GUEST_ASSERT_EQ(fib(10), 55);
}

static void case_user_read(void)
{
	uint64_t addr = text_addr();

	make_text_xo();
	guest_run_user(user_read, addr, USER_TOP);
	ASSERT_PF(0, PF_P | PF_U, addr);
	/* The same again, now that the alias is in every TLB. */
	GUEST_ASSERT_EQ(guest_run_user(user_work, 5, USER_TOP), 7);
	guest_run_user(user_read, addr, USER_TOP);
	ASSERT_PF(0, PF_P | PF_U, addr);
}

static void case_user_write(void)
{
	uint64_t addr = text_addr();
	uint64_t page = addr & ~(PAGE_SIZE - 1);
	volatile uint64_t *rw = (volatile uint64_t *)(WIN_RW + 0x123);
	uint64_t before;

	make_text_xo();
	guest_map_page(WIN_RW, page, PTE_W);
	before = *rw;
	guest_run_user(user_write, addr, USER_TOP);
	ASSERT_PF(0, PF_P | PF_W | PF_U, addr);
	/* Nothing was written, and the code still runs. */
	GUEST_ASSERT_EQ(*rw, before);
	GUEST_ASSERT_EQ(guest_run_user(user_work, 5, USER_TOP), 7);
}

static void case_kernel(void)
{
	uint64_t addr = text_addr();

	make_text_xo();
	record(0, guest_probe_read((void *)addr));
	ASSERT_PF(0, PF_P, addr);
	record(1, guest_probe_write((void *)addr, 1));
	ASSERT_PF(1, PF_P | PF_W, addr);
	/*
	 * A read that starts in the readable page below the image and ends
	 * in XO text faults at the first XO byte.
	 */
	record(2, guest_probe_read((void *)((uint64_t)__image_start - 4)));
	ASSERT_PF(2, PF_P, __image_start);
}

static void case_private(void)
{
	case_user_runs();
	case_user_read();
	case_user_write();
	case_kernel();
}

/* Code written through the identity map runs through the alias. */
static void map_code_xo(uint32_t first)
{
	put_snippet(code[0], first);
	guest_map_page(WIN_XO, (uint64_t)code[0] | xo, PTE_U);
	GUEST_ASSERT(*guest_pte(WIN_XO) & xo);
}

static uint64_t user_call_xo(uint64_t va)
{
	return call(va);
}

static void case_smc(void)
{
	map_code_xo(1);
	GUEST_ASSERT_EQ(call(WIN_XO), 1);
	put_snippet(code[0], 2);
	GUEST_ASSERT_EQ(call(WIN_XO), 2);
	/* One byte of the immediate only. */
	((volatile uint8_t *)code[0])[1] = 3;
	GUEST_ASSERT_EQ(call(WIN_XO), 3);
	/* Elsewhere in the page, while the first snippet stays decoded. */
	put_snippet(code[0] + 0x800, 4);
	GUEST_ASSERT_EQ(call(WIN_XO + 0x800), 4);
	GUEST_ASSERT_EQ(call(WIN_XO), 3);
	for (uint32_t i = 0; i < 100; i++) {
		put_snippet(code[0] + (i % 2) * 0x800, 1000 + i);
		GUEST_ASSERT_EQ(guest_run_user(user_call_xo,
					       WIN_XO + (i % 2) * 0x800,
					       USER_TOP),
				1000 + i);
	}
	/* The alias stays unreadable throughout. */
	record(0, guest_probe_read((void *)WIN_XO));
	ASSERT_PF(0, PF_P, WIN_XO);
}

static void case_nx(void)
{
	map_code_xo(0x77);
	/* Warm: the alias is mapped at stage 2 and decoded. */
	GUEST_ASSERT_EQ(call(WIN_XO), 0x77);
	sync2(STEP_SET_NX, (uint64_t)code[0]);
	/* The host saw the fetch exit, lifted NX and let it run again. */
	GUEST_ASSERT_EQ(call(WIN_XO), 0x77);
}

static void case_punch(void)
{
	map_code_xo(0x11);
	put_snippet(code[0] + 0x100, 0x12);
	GUEST_ASSERT_EQ(call(WIN_XO), 0x11);
	GUEST_ASSERT_EQ(call(WIN_XO + 0x100), 0x12);
	/* The host punches the page and writes 0x22 at offset 0. */
	sync2(STEP_PUNCH, (uint64_t)code[0]);
	GUEST_ASSERT_EQ(call(WIN_XO), 0x22);
	for (unsigned i = SNIPPET_LEN; i < PAGE_SIZE; i++)
		GUEST_ASSERT_EQ(((volatile uint8_t *)code[0])[i], 0);
}

static void case_convert(void)
{
	map_code_xo(0x31);
	GUEST_ASSERT_EQ(call(WIN_XO), 0x31);
	/* Shared now, with 0x32 in the shared page. */
	sync2(STEP_TO_SHARED, (uint64_t)code[0]);
	GUEST_ASSERT_EQ(call(WIN_XO), 0x32);
	GUEST_ASSERT_EQ(guest_run_user(user_call_xo, WIN_XO, USER_TOP), 0x32);
	/* Private again, and the host wrote 0x33 into guest_memfd. */
	sync2(STEP_TO_PRIVATE, (uint64_t)code[0]);
	GUEST_ASSERT_EQ(call(WIN_XO), 0x33);
}

static void case_slot_delete(void)
{
	guest_map_page(WIN_SLOT1, SLOT1_GPA | xo, PTE_U);
	GUEST_ASSERT_EQ(call(WIN_SLOT1), 0x51);
	sync2(STEP_REPLACE_SLOT, SLOT1_GPA);
	GUEST_ASSERT_EQ(call(WIN_SLOT1), 0x52);
	/* Deleted: the host sees the fetch fail, then restores the first. */
	sync2(STEP_DELETE_SLOT, SLOT1_GPA);
	GUEST_ASSERT_EQ(call(WIN_SLOT1), 0x51);
}

static uint64_t user_execonly(uint64_t va)
{
	if (call(va) != 0xe0)
		return 1;
	record(0, guest_probe_read((void *)(va + 8)));
	record(1, guest_probe_write((void *)(va + 16), 5));
	return 0;
}

static void case_execonly_slot(void)
{
	/* No alias bit: the slot itself is execute-only. */
	guest_map_page(WIN_SLOT2, SLOT2_GPA, PTE_U | PTE_W);
	GUEST_ASSERT_EQ(call(WIN_SLOT2), 0xe0);
	GUEST_ASSERT_EQ(guest_run_user(user_execonly, WIN_SLOT2, USER_TOP), 0);
	ASSERT_PF(0, PF_P | PF_U, WIN_SLOT2 + 8);
	ASSERT_PF(1, PF_P | PF_W | PF_U, WIN_SLOT2 + 16);
	record(2, guest_probe_read((void *)WIN_SLOT2));
	ASSERT_PF(2, PF_P, WIN_SLOT2);
	record(3, guest_probe_write((void *)WIN_SLOT2, 0));
	ASSERT_PF(3, PF_P | PF_W, WIN_SLOT2);
	GUEST_ASSERT_EQ(call(WIN_SLOT2), 0xe0);
}

static void case_exec_only_attr(void)
{
	volatile uint64_t *p = (volatile uint64_t *)code[1];
	uint64_t v;

	put_snippet(code[1], 0x99);
	p[0x100 / 8] = 0;
	/* The host makes the page exec-only (NR|NW). */
	sync2(STEP_SET_EXEC_ONLY, (uint64_t)code[1]);
	GUEST_ASSERT_EQ(call((uint64_t)code[1]), 0x99);
	/* Exits READ; the host allows reads (NW) and resumes. */
	v = p[0];
	GUEST_ASSERT_EQ(v & 0xffffffffffffULL, 0xc300000099b8ULL);
	/* Exits WRITE; the host allows everything and resumes. */
	p[0x100 / 8] = 0x1122334455667788ULL;
	GUEST_ASSERT_EQ(p[0x100 / 8], 0x1122334455667788ULL);
	GUEST_ASSERT_EQ(call((uint64_t)code[1]), 0x99);
}

static uint64_t user_read_text(uint64_t addr)
{
	return (uint64_t)guest_probe_read((void *)addr);
}

static void case_nocap(void)
{
	uint64_t s = (uint64_t)__image_start, e = (uint64_t)__text_end;
	uint64_t bit, addr = text_addr();
	uint32_t a, b, c, d;

	/*
	 * KVM's leaves, not gmem's: 0x40000001 EAX bit 0 is kvmclock under
	 * that signature, so XO is only ever read under "gmem".
	 */
	cpuid(0x40000000, 0, &a, &b, &c, &d);
	GUEST_ASSERT_EQ(b, 0x4b4d564b); /* "KVMK" */
	GUEST_ASSERT_EQ(xo, 0);
	bit = 1ULL << guest_maxphyaddr();

	/* PROT_EXEC falls back to readable and executable. */
	GUEST_ASSERT_EQ(guest_mprotect(__image_start, e - s, PROT_EXEC), 0);
	GUEST_ASSERT_EQ(*guest_pte(addr) & bit, 0);
	GUEST_ASSERT_EQ(guest_run_user(user_work, 5, USER_TOP), 7);
	GUEST_ASSERT_EQ(guest_run_user(user_read_text, addr, USER_TOP),
			(uint64_t)-1);

	/* Bit M set by hand is reserved. */
	put_snippet(code[0], 1);
	guest_map_page(WIN_BAD, (uint64_t)code[0] | bit, PTE_U);
	record(0, guest_probe_read((void *)(WIN_BAD + 8)));
	ASSERT_PF(0, PF_P | PF_RSVD, WIN_BAD + 8);
	guest_run_user(user_read, WIN_BAD + 16, USER_TOP);
	ASSERT_PF(0, PF_P | PF_RSVD | PF_U, WIN_BAD + 16);
	/* A fetch too (I/D set: EFER.NXE is on). */
	record(1, guest_probe_exec((void *)WIN_BAD));
	ASSERT_PF(1, PF_P | PF_RSVD | PF_I, WIN_BAD);
}

static volatile uint64_t gp_hits, gp_err;

/* Skips the 3-byte "mov %rax, %cr3" below. */
static void gp_skip(struct ex_regs *regs)
{
	gp_hits++;
	gp_err = regs->error_code;
	regs->rip += 3;
}

static void case_reserved(void)
{
	uint64_t *pml4, *pdpt, *pd;

	/* Bits above M stay reserved. */
	put_snippet(code[0], 1);
	guest_map_page(WIN_BAD, (uint64_t)code[0] | xo << 1, PTE_U);
	record(0, guest_probe_read((void *)WIN_BAD));
	ASSERT_PF(0, PF_P | PF_RSVD, WIN_BAD);
	guest_map_page(WIN_BAD, (uint64_t)code[0] | xo | xo << 1, PTE_U);
	record(0, guest_probe_exec((void *)WIN_BAD));
	ASSERT_PF(0, PF_P | PF_RSVD | PF_I, WIN_BAD);

	/* Page tables are never walked through the alias. */
	guest_map_page(WIN_BAD_TABLE, (uint64_t)code[0], PTE_U);
	GUEST_ASSERT_EQ(call(WIN_BAD_TABLE), 1);
	pml4 = (uint64_t *)(read_cr3() & PTE_ADDR_MASK);
	pdpt = (uint64_t *)(pml4[(WIN_BAD_TABLE >> 39) & 511] & PTE_ADDR_MASK);
	pd = (uint64_t *)(pdpt[(WIN_BAD_TABLE >> 30) & 511] & PTE_ADDR_MASK);
	pd[(WIN_BAD_TABLE >> 21) & 511] |= xo;
	invlpg((void *)WIN_BAD_TABLE);
	record(1, guest_probe_read((void *)WIN_BAD_TABLE));
	ASSERT_PF(1, PF_P | PF_RSVD, WIN_BAD_TABLE);
	pd[(WIN_BAD_TABLE >> 21) & 511] &= ~xo;
	invlpg((void *)WIN_BAD_TABLE);
	GUEST_ASSERT_EQ(call(WIN_BAD_TABLE), 1);

	/* Nor is the PML4: CR3 with bit M is #GP(0), as any bit >= M. */
	guest_set_handler(VEC_GP, gp_skip);
	asm volatile("mov %0, %%cr3" : : "a"(read_cr3() | xo) : "memory");
	guest_set_handler(VEC_GP, 0);
	GUEST_ASSERT_EQ(gp_hits, 1);
	GUEST_ASSERT_EQ(gp_err, 0);
	GUEST_ASSERT_EQ(read_cr3(), guest_boot->cr3);
}

/*
 * Cross-modifying code (Intel SDM vol. 3, 9.1.3): vCPU 1 writes new code
 * through the RW identity map while vCPU 0 runs it through the XO alias;
 * vCPU 0 waits for the flag, serializes with CPUID, then jumps.
 */
static volatile uint64_t cmc_state;

void guest_ap_main(uint64_t cpu)
{
	uint64_t done = 0;

	(void)cpu;
	for (;;) {
		uint64_t st = cmc_state;

		if (st == ~0ULL)
			return;
		if (st == done || (st & 1) == 0) {
			asm volatile("pause");
			continue;
		}
		/* Odd: vCPU 0 ran value st; make it st + 1. */
		put_snippet(code[0], (uint32_t)st + 1);
		done = st + 1;
		cmc_state = done;
	}
}

static void case_cmc(void)
{
	uint32_t a, b, c, d;

	map_code_xo(1);
	for (uint64_t v = 1; v < 200; v += 2) {
		GUEST_ASSERT_EQ(call(WIN_XO), v);
		cmc_state = v;
		while (cmc_state != v + 1)
			asm volatile("pause");
		cpuid(0, 0, &a, &b, &c, &d);
		GUEST_ASSERT_EQ(call(WIN_XO), v + 1);
		put_snippet(code[0], (uint32_t)v + 2);
	}
	cmc_state = ~0ULL;
}

/*
 * Large leaves take the alias bit too: a 1 GiB page over GPA 0 and a
 * 2 MiB page over the image, both execute-only, in PDPT slots the
 * identity map does not use.
 */
#define WIN_1G 0xc0000000ULL
#define WIN_2M 0x100000000ULL

static uint64_t pd_2m[512] __aligned(PAGE_SIZE);

static uint64_t user_call_and_read(uint64_t va)
{
	uint64_t r = call(va);

	record(0, guest_probe_read((void *)(va + 1)));
	return r;
}

static void case_large(void)
{
	uint64_t *pml4 = (uint64_t *)(read_cr3() & PTE_ADDR_MASK);
	uint64_t *pdpt = (uint64_t *)(pml4[0] & PTE_ADDR_MASK);
	uint64_t off = (uint64_t)code[0] - (uint64_t)__image_start;
	uint64_t va1g = WIN_1G + (uint64_t)code[0], va2m = WIN_2M + off;

	GUEST_ASSERT(((uint64_t)__image_start & ((2ULL << 20) - 1)) == 0);
	GUEST_ASSERT(off < (2ULL << 20));
	GUEST_ASSERT(!(pdpt[WIN_1G >> 30] & PTE_P));
	GUEST_ASSERT(!(pdpt[WIN_2M >> 30] & PTE_P));
	put_snippet(code[0], 0x1e);
	pdpt[WIN_1G >> 30] = 0 | xo | PTE_PS | PTE_U | PTE_P;
	pd_2m[0] = (uint64_t)__image_start | xo | PTE_PS | PTE_U | PTE_P;
	pdpt[WIN_2M >> 30] = (uint64_t)pd_2m | PTE_W | PTE_U | PTE_P;
	write_cr3(read_cr3());

	GUEST_ASSERT_EQ(call(va1g), 0x1e);
	GUEST_ASSERT_EQ(call(va2m), 0x1e);
	record(1, guest_probe_read((void *)va1g));
	ASSERT_PF(1, PF_P, va1g);
	record(1, guest_probe_write((void *)va2m, 0));
	ASSERT_PF(1, PF_P | PF_W, va2m);
	GUEST_ASSERT_EQ(guest_run_user(user_call_and_read, va2m, USER_TOP),
			0x1e);
	ASSERT_PF(0, PF_P | PF_U, va2m + 1);
	/* And code written through the identity map shows through both. */
	put_snippet(code[0], 0x2e);
	GUEST_ASSERT_EQ(call(va1g), 0x2e);
	GUEST_ASSERT_EQ(call(va2m), 0x2e);
}

static void (*const cases[NR_CASES])(void) = {
	[C_CPUID] = case_cpuid,
	[C_USER_RUNS] = case_user_runs,
	[C_USER_READ] = case_user_read,
	[C_USER_WRITE] = case_user_write,
	[C_KERNEL] = case_kernel,
	[C_PRIVATE] = case_private,
	[C_SMC] = case_smc,
	[C_NX] = case_nx,
	[C_PUNCH] = case_punch,
	[C_CONVERT] = case_convert,
	[C_SLOT_DELETE] = case_slot_delete,
	[C_EXECONLY_SLOT] = case_execonly_slot,
	[C_EXEC_ONLY_ATTR] = case_exec_only_attr,
	[C_NOCAP] = case_nocap,
	[C_RESERVED] = case_reserved,
	[C_CMC] = case_cmc,
	[C_LARGE] = case_large,
};

void guest_main(uint64_t which, uint64_t maxphyaddr)
{
	xo = guest_xo_bit();
	m = maxphyaddr;
	/* The host loads us with EFER.NXE on: fetch #PFs report I/D. */
	GUEST_ASSERT(rdmsr(MSR_EFER) & EFER_NXE);
	GUEST_ASSERT(which < NR_CASES);
	cases[which]();
	GUEST_DONE(0);
}

#else /* host */

#include <linux/falloc.h>
#include <pthread.h>
#include <string.h>
#include <sys/mman.h>

#include "guest_util.h"
#include "tap.h"

#define MEM (32ULL << 20)
#define PG 4096ULL

/* How each case's VM is made. */
#define F_PRIVATE (1U << 0)   /* RAM private in a guest_memfd */
#define F_NOCAP (1U << 1)     /* no GMEM_CAP_XO_ALIAS */
#define F_SLOT1 (1U << 2)     /* slot 1 at SLOT1_GPA, snippet 0x51 */
#define F_SLOT2 (1U << 3)     /* EXECONLY slot 2 at SLOT2_GPA, 0xe0 */
#define F_EXEC_ONLY (1U << 4) /* GMEM_CAP_EXEC_ONLY */
#define F_TWO_CPUS (1U << 5)  /* vCPU 1 runs on a thread of its own */

static const struct {
	const char *name;
	unsigned int flags;
} cases[NR_CASES] = {
	[C_CPUID] = {"CPUID: gmem leaves advertise XO, 0x80000008 gives M", 0},
	[C_USER_RUNS] = {"ring-3 code runs from XO text "
			 "(guest mprotect PROT_EXEC)",
			 0},
	[C_USER_READ] = {"user read of its own code: #PF P=1 U/S=1 W/R=0 "
			 "RSVD=0 I/D=0, CR2 = address",
			 0},
	[C_USER_WRITE] = {"user write of its own code: #PF with W/R=1, "
			  "nothing written",
			  0},
	[C_KERNEL] = {"kernel read and write of XO text: #PF with U/S=0", 0},
	[C_PRIVATE] = {"XO over private guest_memfd memory: the above",
		       F_PRIVATE},
	[C_SMC] = {"code written through the RW alias is seen by the XO "
		   "alias at the next fetch",
		   0},
	[C_NX] = {"NX on the base page: alias fetch exits MEMORY_FAULT "
		  "with EXEC",
		  0},
	[C_PUNCH] = {"punch hole invalidates the XO alias", F_PRIVATE},
	[C_CONVERT] = {"conversions invalidate the XO alias", F_PRIVATE},
	[C_SLOT_DELETE] = {"slot deletion invalidates the XO alias", F_SLOT1},
	[C_EXECONLY_SLOT] = {"EXECONLY slot: fetch works, read and write "
			     "#PF as through the alias",
			     F_SLOT2 | F_NOCAP | F_EXEC_ONLY},
	[C_EXEC_ONLY_ATTR] = {"GMEM_CAP_EXEC_ONLY: NR|NW lets fetches "
			      "through, reads and writes exit",
			      F_EXEC_ONLY | F_NOCAP},
	[C_NOCAP] = {"without the capability: no XO, mprotect falls back "
		     "to R-X, bit M is reserved",
		     F_NOCAP},
	[C_RESERVED] = {"bits above M, and bit M in a table entry or CR3, "
			"are reserved",
			0},
	[C_CMC] = {"cross-modifying code: vCPU 1 writes through the RW "
		   "alias, vCPU 0 serializes and fetches through the XO alias",
		   F_TWO_CPUS},
	[C_LARGE] = {"XO through 1 GiB and 2 MiB guest pages", 0},
};

#define FAIL(...)                                        \
	do {                                             \
		tap_case_failed = 1;                     \
		printf("# %s:%d: ", __FILE__, __LINE__); \
		printf(__VA_ARGS__);                     \
		printf("\n");                            \
	} while (0)

struct ctx {
	struct guest_vm *gvm;
	struct guest_vcpu *v, *ap;
	pthread_t ap_thread;
	bool ap_running;
	int ap_ret;
	uint8_t *slot_mem[2]; /* slot 1's two backings */
	uint8_t *slot2_mem;
};

static void put_snippet(uint8_t *p, uint32_t v)
{
	p[0] = 0xb8;
	memcpy(p + 1, &v, 4);
	p[5] = 0xc3;
}

static uint8_t *page_with_snippet(uint32_t v)
{
	uint8_t *p = mmap(NULL, PG, PROT_READ | PROT_WRITE,
			  MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);

	REQUIRE(p != MAP_FAILED);
	put_snippet(p, v);
	return p;
}

static int set_slot(struct guest_vm *gvm, uint32_t slot, uint32_t flags,
		    uint64_t gpa, void *mem)
{
	struct kvm_userspace_memory_region2 r = {
		.slot = slot,
		.flags = flags,
		.guest_phys_addr = gpa,
		.memory_size = mem ? PG : 0,
		.userspace_addr = (uintptr_t)mem,
	};

	return gmem_vm_set_memory_region2(gvm->vm, &r);
}

static int set_attr(struct guest_vm *gvm, uint64_t gpa, uint64_t attrs)
{
	struct kvm_memory_attributes a = {
		.address = gpa,
		.size = PG,
		.attributes = attrs,
	};

	return gmem_vm_set_memory_attributes(gvm->vm, &a);
}

/* Run expecting a memory-fault exit for @flags at @gpa. */
static void expect_fault(struct ctx *c, uint64_t flags, uint64_t gpa)
{
	struct kvm_run *run = c->v->run;
	struct guest_ucall uc;
	char msg[768];
	int ret = guest_vcpu_run(c->v, &uc);

	if (ret != -EFAULT || run->exit_reason != KVM_EXIT_MEMORY_FAULT)
		printf("# %s\n",
		       guest_describe(c->v, ret, &uc, msg, sizeof(msg)));
	CHECK_EQ(ret, -EFAULT);
	CHECK_EQ(run->exit_reason, KVM_EXIT_MEMORY_FAULT);
	CHECK_EQ(run->memory_fault.flags, flags);
	CHECK_EQ(run->memory_fault.gpa, gpa);
	CHECK_EQ(run->memory_fault.size, PG);
}

/* The host half of a step; then the main loop runs the guest on. */
static void host_step(struct ctx *c, uint64_t step, uint64_t gpa)
{
	struct guest_vm *gvm = c->gvm;
	struct kvm_run *run = c->v->run;
	struct kvm_regs regs;
	struct guest_ucall uc;
	uint8_t buf[SNIPPET_LEN];
	int ret;

	CHECK_EQ(guest_vcpu_reply(c->v, 0), 0);
	switch (step) {
	case STEP_SET_NX:
		CHECK_EQ(set_attr(gvm, gpa, KVM_MEMORY_ATTRIBUTE_NX), 0);
		expect_fault(c, KVM_MEMORY_EXIT_FLAG_EXEC, gpa);
		/* RIP is at the fetch: the call into the alias window. */
		CHECK_EQ(gmem_vcpu_get_regs(c->v->vcpu, &regs), 0);
		CHECK_EQ(regs.rip, 0x40000000);
		/* Again: the fault is not cached anywhere. */
		expect_fault(c, KVM_MEMORY_EXIT_FLAG_EXEC, gpa);
		CHECK_EQ(set_attr(gvm, gpa, 0), 0);
		break;
	case STEP_PUNCH:
		CHECK_EQ(gmem_file_fallocate(gvm->gmem_fd,
					     FALLOC_FL_KEEP_SIZE |
						     FALLOC_FL_PUNCH_HOLE,
					     (int64_t)gpa, PG),
			 0);
		put_snippet(buf, 0x22);
		CHECK_EQ(guest_write(c->v, gpa, buf, sizeof(buf)), 0);
		break;
	case STEP_TO_SHARED:
		CHECK_EQ(set_attr(gvm, gpa, 0), 0);
		put_snippet((uint8_t *)gvm->mem + gpa, 0x32);
		break;
	case STEP_TO_PRIVATE:
		CHECK_EQ(set_attr(gvm, gpa, KVM_MEMORY_ATTRIBUTE_PRIVATE), 0);
		put_snippet(buf, 0x33);
		CHECK_EQ(guest_write(c->v, gpa, buf, sizeof(buf)), 0);
		break;
	case STEP_REPLACE_SLOT:
		CHECK_EQ(set_slot(gvm, 1, 0, gpa, NULL), 0);
		CHECK_EQ(set_slot(gvm, 1, 0, gpa, c->slot_mem[1]), 0);
		break;
	case STEP_DELETE_SLOT:
		CHECK_EQ(set_slot(gvm, 1, 0, gpa, NULL), 0);
		/*
		 * Nothing there to fetch from: an emulation failure at the
		 * first byte, as KVM reports a fetch from MMIO.
		 */
		ret = guest_vcpu_run(c->v, &uc);
		CHECK_EQ(ret, GUEST_EXIT);
		CHECK_EQ(run->exit_reason, KVM_EXIT_INTERNAL_ERROR);
		CHECK_EQ(gmem_vcpu_get_regs(c->v->vcpu, &regs), 0);
		CHECK_EQ(regs.rip, 0x40002000);
		CHECK_EQ(set_slot(gvm, 1, 0, gpa, c->slot_mem[0]), 0);
		break;
	case STEP_SET_EXEC_ONLY:
		CHECK_EQ(set_attr(gvm, gpa,
				  KVM_MEMORY_ATTRIBUTE_NR |
					  KVM_MEMORY_ATTRIBUTE_NW),
			 0);
		expect_fault(c, KVM_MEMORY_EXIT_FLAG_READ, gpa);
		CHECK_EQ(set_attr(gvm, gpa, KVM_MEMORY_ATTRIBUTE_NW), 0);
		expect_fault(c, KVM_MEMORY_EXIT_FLAG_WRITE, gpa);
		CHECK_EQ(set_attr(gvm, gpa, 0), 0);
		break;
	default:
		FAIL("unknown step %llu", (unsigned long long)step);
	}
}

static int setup(struct ctx *c, unsigned int which)
{
	unsigned int f = cases[which].flags;
	unsigned long type =
		(f & F_PRIVATE) ? KVM_X86_SW_PROTECTED_VM : KVM_X86_DEFAULT_VM;
	struct gmem_load_opts opts = {
		.rdi = which,
		.rsi = XO_M,
		.flags = GMEM_LOAD_NX,
	};
	struct kvm_enable_cap cap = {.cap = GMEM_CAP_XO_ALIAS, .args = {XO_M}};
	int ret;

	ret = guest_vm_create(type, MEM, (f & F_PRIVATE) ? GUEST_VM_PRIVATE : 0,
			      &c->gvm);
	if (ret)
		return ret;
	if (!(f & F_NOCAP)) {
		ret = gmem_vm_enable_cap(c->gvm->vm, &cap);
		if (ret)
			return ret;
	}
	if (f & F_EXEC_ONLY) {
		struct kvm_enable_cap eo = {.cap = GMEM_CAP_EXEC_ONLY};

		ret = gmem_vm_enable_cap(c->gvm->vm, &eo);
		if (ret)
			return ret;
	}
	if (f & F_SLOT1) {
		c->slot_mem[0] = page_with_snippet(0x51);
		c->slot_mem[1] = page_with_snippet(0x52);
		ret = set_slot(c->gvm, 1, 0, SLOT1_GPA, c->slot_mem[0]);
		if (ret)
			return ret;
	}
	if (f & F_SLOT2) {
		c->slot2_mem = page_with_snippet(0xe0);
		ret = set_slot(c->gvm, 2, KVM_MEM_EXECONLY, SLOT2_GPA,
			       c->slot2_mem);
		if (ret)
			return ret;
	}
	ret = guest_vcpu_add(c->gvm, &c->v);
	if (!ret && (f & F_TWO_CPUS))
		ret = guest_vcpu_add(c->gvm, &c->ap);
	if (ret)
		return ret;
	return guest_vm_load(c->gvm, "xo", &opts);
}

static void *run_ap(void *arg)
{
	struct ctx *c = arg;
	uint64_t status = 1;

	c->ap_ret = guest_vcpu_run_to_done(c->ap, &status) ? -1 : (int)status;
	return NULL;
}

static void run_case(unsigned int which)
{
	struct ctx c = {0};
	struct guest_ucall uc;
	struct gmem_vcpu_stats st;
	char msg[768];
	int ret = setup(&c, which);

	CHECK_EQ(ret, 0);
	if (!ret && c.ap) {
		ret = pthread_create(&c.ap_thread, NULL, run_ap, &c);
		CHECK_EQ(ret, 0);
		c.ap_running = !ret;
	}
	while (!ret) {
		ret = guest_vcpu_run(c.v, &uc);
		if (ret == UCALL_SYNC) {
			host_step(&c, uc.args[0], uc.args[2]);
			ret = 0;
			continue;
		}
		if (ret != UCALL_DONE || uc.args[0]) {
			printf("# %s\n",
			       guest_describe(c.v, ret, &uc, msg, sizeof(msg)));
			if (ret != UCALL_ASSERT)
				guest_dump_regs(c.v);
			FAIL("the guest did not finish");
		}
		break;
	}
	if (c.ap_running) {
		/* A vCPU 0 that failed leaves vCPU 1 waiting for it. */
		if (tap_case_failed)
			gmem_vcpu_kick(c.ap->vcpu);
		pthread_join(c.ap_thread, NULL);
		if (!tap_case_failed)
			CHECK_EQ(c.ap_ret, 0);
	}
	if (which == C_USER_RUNS)
		CHECK(c.v && c.v->console &&
		      strstr(c.v->console, "ring 3 runs from XO text\n"));
	if (which == C_USER_READ && c.v) {
		/* The #PFs were the library's XO faults, not the walk's. */
		CHECK_EQ(gmem_vcpu_get_stats(c.v->vcpu, &st), 0);
		CHECK(st.xo_faults >= 2);
	}
	guest_vm_destroy(c.gvm);
	for (int i = 0; i < 2; i++)
		if (c.slot_mem[i])
			munmap(c.slot_mem[i], PG);
	if (c.slot2_mem)
		munmap(c.slot2_mem, PG);
	tap_result(cases[which].name);
}

int main(void)
{
	tap_plan(NR_CASES, 120);
	for (unsigned int i = 0; i < NR_CASES; i++)
		run_case(i);
	return tap_done();
}

#endif
