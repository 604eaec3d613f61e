// SPDX-License-Identifier: MIT
/*
 * Exceptions, checked from inside the guest: #PF for each cause with its
 * exact error code, CR2 and faulting RIP, at CPL 0 and CPL 3; #UD, #DE,
 * #GP and #BP, caught either by a probe's fixup or by a registered C
 * handler that inspects the frame and moves RIP on.  Each case is a step
 * between two GUEST_SYNCs, so the host reports them one by one.
 */
#include <stdint.h>

/* The cases, in order; both halves use the names. */
static const char *const case_names[] = {
	"#PF read of a not-present page: error 0x0, CR2, RIP",
	"#PF write to a not-present page: error 0x2",
	"#PF write to a read-only page (CR0.WP): error 0x3, no write",
	"#PF user read/write of a supervisor page: error 0x5 / 0x7",
	"#PF fetch from an NX page: error 0x11; not present: 0x10",
	"#UD from ud2, by probe and by a handler that skips it",
	"#DE from div by zero, no side effect",
	"#GP(0) from a non-canonical address",
	"#GP(0) from hlt at CPL 3",
	"#BP from int3 is a trap: RIP after it",
	"fault in a 2 MiB-split page, then resume by fixing the PTE",
};

#define NR_CASES (sizeof(case_names) / sizeof(case_names[0]))

#ifdef GUEST

#include "guest.h"

static uint8_t pages[8][4096] __aligned(4096);
static uint8_t user_stack[16384] __aligned(16);

/* The probe's faulting instruction lies within its first few bytes. */
static void check_rip_in(uint64_t start)
{
	GUEST_ASSERT(guest_last_fault.rip >= start &&
		     guest_last_fault.rip < start + 64);
}

/* A macro, so that a failure names the case's line. */
#define expect_pf(vec, err, addr)                                        \
	do {                                                             \
		GUEST_ASSERT_EQ((vec), VEC_PF);                          \
		GUEST_ASSERT_EQ(guest_last_fault.vector, VEC_PF);        \
		GUEST_ASSERT_EQ(guest_last_fault.error_code, (err));     \
		GUEST_ASSERT_EQ(guest_last_fault.cr2, (uint64_t)(addr)); \
	} while (0)

static void identity(void *page, uint64_t flags)
{
	guest_map_page((uint64_t)page, (uint64_t)page, flags);
}

static void case_pf_read_not_present(void)
{
	volatile uint64_t *p = (volatile uint64_t *)(pages[0] + 0x128);

	*p = 0x1122334455667788ULL;
	guest_unmap_page((uint64_t)pages[0]);
	expect_pf(guest_probe_read(p), 0, p);
	GUEST_ASSERT_EQ(read_cr2(), (uint64_t)p);
	check_rip_in((uint64_t)guest_probe_read);
	identity(pages[0], PTE_W | PTE_U);
	GUEST_ASSERT_EQ(guest_probe_read(p), -1);
	GUEST_ASSERT_EQ(*p, 0x1122334455667788ULL);
}

static void case_pf_write_not_present(void)
{
	volatile uint64_t *p = (volatile uint64_t *)(pages[0] + 0xff8);

	guest_unmap_page((uint64_t)pages[0]);
	expect_pf(guest_probe_write(p, 7), PF_W, p);
	check_rip_in((uint64_t)guest_probe_write);
	identity(pages[0], PTE_W | PTE_U);
	GUEST_ASSERT_EQ(*p, 0);
	GUEST_ASSERT_EQ(guest_probe_write(p, 7), -1);
	GUEST_ASSERT_EQ(*p, 7);
}

static void case_pf_write_read_only(void)
{
	volatile uint64_t *p = (volatile uint64_t *)(pages[1] + 0x40);

	GUEST_ASSERT(read_cr0() & (1ULL << 16)); /* WP, from the loader */
	*p = 0x55;
	guest_protect_page((uint64_t)pages[1], 0, PTE_W);
	GUEST_ASSERT_EQ(guest_probe_read(p), -1); /* reads still work */
	expect_pf(guest_probe_write(p, 0xaa), PF_P | PF_W, p);
	GUEST_ASSERT_EQ(*p, 0x55);
	guest_protect_page((uint64_t)pages[1], PTE_W, 0);
	GUEST_ASSERT_EQ(guest_probe_write(p, 0xaa), -1);
	GUEST_ASSERT_EQ(*p, 0xaa);
}

static uint64_t user_read(uint64_t addr)
{
	return (uint64_t)guest_probe_read((const volatile void *)addr);
}

static uint64_t user_write(uint64_t addr)
{
	return (uint64_t)guest_probe_write((volatile void *)addr, 1);
}

static void case_pf_user_supervisor(void)
{
	uint8_t *p = pages[2] + 0x10;
	uint64_t vec;

	/* While the page is user-accessible, ring 3 can use it. */
	vec = guest_run_user(user_read, (uint64_t)p,
			     user_stack + sizeof(user_stack));
	GUEST_ASSERT_EQ(vec, (uint64_t)-1);

	guest_protect_page((uint64_t)pages[2], 0, PTE_U);
	vec = guest_run_user(user_read, (uint64_t)p,
			     user_stack + sizeof(user_stack));
	expect_pf((int)vec, PF_P | PF_U, p);
	GUEST_ASSERT_EQ(guest_last_fault.cs & 3, 3);
	vec = guest_run_user(user_write, (uint64_t)p,
			     user_stack + sizeof(user_stack));
	expect_pf((int)vec, PF_P | PF_W | PF_U, p);
	GUEST_ASSERT_EQ(*p, 0);
	/* Ring 0 may still use a supervisor page. */
	GUEST_ASSERT_EQ(guest_probe_write(p, 9), -1);
	guest_protect_page((uint64_t)pages[2], PTE_U, 0);
}

static void case_pf_nx(void)
{
	uint8_t *code = pages[3];

	GUEST_ASSERT(rdmsr(MSR_EFER) & EFER_NXE);
	code[0] = 0xc3; /* ret */
	GUEST_ASSERT_EQ(guest_probe_exec(code), -1);

	guest_protect_page((uint64_t)code, PTE_NX, 0);
	expect_pf(guest_probe_exec(code), PF_P | PF_I, code);
	GUEST_ASSERT_EQ(guest_last_fault.rip, (uint64_t)code);
	/* Data accesses to an NX page are fine. */
	GUEST_ASSERT_EQ(guest_probe_read(code), -1);

	guest_unmap_page((uint64_t)code);
	expect_pf(guest_probe_exec(code), PF_I, code);

	identity(code, PTE_W | PTE_U);
	GUEST_ASSERT_EQ(guest_probe_exec(code), -1);
}

static volatile uint64_t handler_hits, handler_rip, handler_rax, handler_rdx;

static void skip_ud2(struct ex_regs *regs)
{
	handler_hits++;
	handler_rip = regs->rip;
	GUEST_ASSERT_EQ(regs->vector, VEC_UD);
	GUEST_ASSERT_EQ(regs->error_code, 0);
	GUEST_ASSERT_EQ(regs->cs, GMEM_BOOT_KERNEL_CS);
	regs->rip += 2;
}

static void case_ud(void)
{
	uint64_t at;

	GUEST_ASSERT_EQ(guest_probe_ud2(), VEC_UD);
	GUEST_ASSERT_EQ(guest_last_fault.error_code, 0);

	handler_hits = 0;
	guest_set_handler(VEC_UD, skip_ud2);
	asm volatile("lea 1f(%%rip), %0\n\t"
		     "1: ud2"
		     : "=r"(at)
		     :
		     : "memory");
	guest_set_handler(VEC_UD, 0);
	GUEST_ASSERT_EQ(handler_hits, 1);
	GUEST_ASSERT_EQ(handler_rip, at);
}

/*
 * The handler sees the registers as they were before the divide: a
 * faulting instruction has no side effect.  divq r64 is 3 bytes.
 */
static void skip_div(struct ex_regs *regs)
{
	handler_hits++;
	handler_rip = regs->rip;
	handler_rax = regs->rax;
	handler_rdx = regs->rdx;
	regs->rip += 3;
}

static void case_de(void)
{
	uint64_t at, rax = 1234, rdx = 0, zero = 0;

	GUEST_ASSERT_EQ(guest_probe_div(10, 0), VEC_DE);
	GUEST_ASSERT_EQ(guest_probe_div(10, 3), -1);

	handler_hits = 0;
	guest_set_handler(VEC_DE, skip_div);
	asm volatile("lea 1f(%%rip), %0\n\t"
		     "1: divq %3"
		     : "=&r"(at), "+a"(rax), "+d"(rdx)
		     : "r"(zero)
		     : "memory");
	guest_set_handler(VEC_DE, 0);
	GUEST_ASSERT_EQ(handler_hits, 1);
	GUEST_ASSERT_EQ(handler_rip, at);
	GUEST_ASSERT_EQ(handler_rax, 1234);
	GUEST_ASSERT_EQ(handler_rdx, 0);
	GUEST_ASSERT_EQ(rax, 1234);
}

static void case_gp_noncanonical(void)
{
	volatile uint64_t *bad = (volatile uint64_t *)0x8000000000000000ULL;
	uint64_t cr2 = read_cr2();

	GUEST_ASSERT_EQ(guest_probe_read(bad), VEC_GP);
	GUEST_ASSERT_EQ(guest_last_fault.error_code, 0);
	GUEST_ASSERT_EQ(guest_probe_write(bad, 1), VEC_GP);
	GUEST_ASSERT_EQ(guest_last_fault.error_code, 0);
	bad = (volatile uint64_t *)0x0000800000000000ULL;
	GUEST_ASSERT_EQ(guest_probe_read(bad), VEC_GP);
	/* #GP does not touch CR2. */
	GUEST_ASSERT_EQ(read_cr2(), cr2);
}

static uint64_t user_hlt(uint64_t unused)
{
	(void)unused;
	return (uint64_t)guest_probe_hlt();
}

static void case_gp_cpl3(void)
{
	uint64_t vec =
		guest_run_user(user_hlt, 0, user_stack + sizeof(user_stack));

	GUEST_ASSERT_EQ(vec, VEC_GP);
	GUEST_ASSERT_EQ(guest_last_fault.error_code, 0);
	GUEST_ASSERT_EQ(guest_last_fault.cs, GMEM_BOOT_USER_CS);
}

static void bp_handler(struct ex_regs *regs)
{
	handler_hits++;
	handler_rip = regs->rip;
}

static void case_bp(void)
{
	uint64_t after;

	handler_hits = 0;
	guest_set_handler(VEC_BP, bp_handler);
	asm volatile("lea 1f(%%rip), %0\n\t"
		     "int3\n"
		     "1:"
		     : "=r"(after)
		     :
		     : "memory");
	guest_set_handler(VEC_BP, 0);
	GUEST_ASSERT_EQ(handler_hits, 1);
	GUEST_ASSERT_EQ(handler_rip, after);
	GUEST_ASSERT_EQ(guest_probe_int3(), VEC_BP);
}

/*
 * A handler that fixes the cause and returns: the instruction runs again
 * and completes.  The page sits in the image's 2 MiB mapping, which the
 * first guest_pte() split into 4 KiB pages.
 */
static volatile uint64_t *fix_target;

static void fix_pf(struct ex_regs *regs)
{
	handler_hits++;
	GUEST_ASSERT_EQ(regs->error_code, PF_W);
	GUEST_ASSERT_EQ(read_cr2(), (uint64_t)fix_target);
	identity((void *)((uint64_t)fix_target & ~0xfffULL), PTE_W | PTE_U);
}

static void case_fix_and_resume(void)
{
	fix_target = (volatile uint64_t *)(pages[4] + 0x800);
	handler_hits = 0;
	guest_unmap_page((uint64_t)pages[4]);
	guest_set_handler(VEC_PF, fix_pf);
	*fix_target = 0xfeedULL;
	guest_set_handler(VEC_PF, 0);
	GUEST_ASSERT_EQ(handler_hits, 1);
	GUEST_ASSERT_EQ(*fix_target, 0xfeedULL);
}

static void (*const cases[])(void) = {
	case_pf_read_not_present,
	case_pf_write_not_present,
	case_pf_write_read_only,
	case_pf_user_supervisor,
	case_pf_nx,
	case_ud,
	case_de,
	case_gp_noncanonical,
	case_gp_cpl3,
	case_bp,
	case_fix_and_resume,
};

_Static_assert(sizeof(cases) / sizeof(cases[0]) == NR_CASES, "case table");

void guest_main(uint64_t arg0, uint64_t arg1)
{
	for (unsigned i = 0; i < NR_CASES; i++) {
		GUEST_SYNC(i);
		guest_printf("case %u: %s\n", i, case_names[i]);
		cases[i]();
	}
	GUEST_SYNC(NR_CASES);
	GUEST_DONE(0);
}

#else

#include "tap.h"
#include "guest_util.h"

#define MEM (16ULL << 20)

int main(void)
{
	struct gmem_load_opts opts = {.flags = GMEM_LOAD_NX};
	struct guest_vm *gvm;
	struct guest_vcpu *v;

	tap_plan(NR_CASES + 1, 60);
	REQUIRE(guest_vm_create(KVM_X86_DEFAULT_VM, MEM, 0, &gvm) == 0);
	REQUIRE(guest_vcpu_add(gvm, &v) == 0);
	REQUIRE(guest_vm_load(gvm, "exceptions", &opts) == 0);
	v->echo = 0; /* the case names are printed here */

	guest_run_steps(v, case_names, NR_CASES, NULL);
	guest_vm_destroy(gvm);
	return tap_done();
}

#endif
