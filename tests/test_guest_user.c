// SPDX-License-Identifier: MIT
/*
 * Ring 3: IRETQ to CPL 3, SYSCALL into the kernel and SYSRET back (STAR,
 * LSTAR, SFMASK, EFER.SCE), the registers the system-call convention
 * preserves, exceptions taken at CPL 3 on the TSS's RSP0 stack, and INT n
 * gate privilege.  Each case is a step between two GUEST_SYNCs.
 */
#include <stdint.h>

static const char *const case_names[] = {
	"SYSCALL/SYSRET round trip: six arguments, result, CPL",
	"registers preserved across a system call",
	"console output from ring 3 through a system call",
	"exit from a nested function returns to the kernel",
	"exception at CPL 3 runs on the TSS.RSP0 stack and IRETQs back",
	"int $0x80 through a DPL 3 gate; int $0x81 is #GP(0x40a)",
	"1000 system calls",
};

#define NR_CASES (sizeof(case_names) / sizeof(case_names[0]))

#ifdef GUEST

#include "guest.h"

#define SYS_MIX (GUEST_SYS_USER + 1)
#define SYS_CHECK_KERNEL (GUEST_SYS_USER + 2)
#define SYS_COUNT (GUEST_SYS_USER + 3)

static uint8_t user_stack[16384] __aligned(16);
static void *const user_top = user_stack + sizeof(user_stack);

static volatile uint64_t kernel_seen_rip, kernel_seen_rsp, count;

static int on_user_stack(uint64_t sp)
{
	return sp > (uint64_t)user_stack && sp <= (uint64_t)user_top;
}

/*
 * Kernel side of the test's system calls.  Reading CR3 proves CPL 0: at
 * CPL 3 it would be #GP.
 */
static uint64_t sys_handler(struct syscall_regs *r)
{
	switch (r->nr) {
	case SYS_MIX:
		GUEST_ASSERT_EQ(read_cr3(), guest_boot->cr3);
		kernel_seen_rip = r->user_rip;
		kernel_seen_rsp = r->user_rsp;
		/* Weighted so that swapped arguments show. */
		return r->a0 + 2 * r->a1 + 3 * r->a2 + 4 * r->a3 + 5 * r->a4 +
		       6 * r->a5;
	case SYS_CHECK_KERNEL: {
		uint64_t here = (uint64_t)&here;

		/* On the kernel stack guest_run_user() chose. */
		GUEST_ASSERT(here < guest_this_cpu()->kernel_rsp &&
			     here > guest_this_cpu()->kernel_rsp - 8192);
		return 1;
	}
	case SYS_COUNT:
		return ++count;
	}
	return (uint64_t)-38; /* -ENOSYS, as the runtime's own default */
}

static uint64_t user_mix(uint64_t arg)
{
	uint64_t r = guest_syscall6(SYS_MIX, 1, 10, 100, 1000, 10000, 100000);
	uint64_t sp;

	asm volatile("mov %%rsp, %0" : "=r"(sp));
	if (!on_user_stack(sp))
		return 1;
	if (r != 1 + 20 + 300 + 4000 + 50000 + 600000)
		return 2;
	if (guest_syscall(GUEST_SYS_GETCPU, 0) != 0)
		return 3;
	if (guest_syscall(12345, 0) != (uint64_t)-38)
		return 4;
	return arg + 1;
}

static void case_round_trip(void)
{
	GUEST_ASSERT_EQ(guest_run_user(user_mix, 41, user_top), 42);
	GUEST_ASSERT(on_user_stack(kernel_seen_rsp));
	GUEST_ASSERT(kernel_seen_rip >= (uint64_t)user_mix &&
		     kernel_seen_rip < (uint64_t)user_mix + 256);
	/* Back at CPL 0: privileged instructions work again. */
	GUEST_ASSERT_EQ(read_cr3(), guest_boot->cr3);
}

/*
 * Load known values into every register the convention preserves, make
 * a system call, and store them back: RBX, RBP, RDI, RSI, RDX, R8-R10 and
 * R12-R15 must come back unchanged (RCX and R11 belong to SYSCALL).
 */
static uint64_t preserved[12];

static uint64_t user_preserve(uint64_t unused)
{
	uint64_t ret;

	(void)unused;
	/* The stores use RIP-relative operands: no register is needed. */
	asm volatile(
		"push %%rbp\n\t"
		"mov $0x1111, %%rbx\n\t"
		"mov $0x2222, %%rbp\n\t"
		"mov $0x3333, %%rdi\n\t"
		"mov $0x4444, %%rsi\n\t"
		"mov $0x5555, %%rdx\n\t"
		"mov $0x6666, %%r8\n\t"
		"mov $0x7777, %%r9\n\t"
		"mov $0x8888, %%r10\n\t"
		"mov $0x9999, %%r12\n\t"
		"mov $0xaaaa, %%r13\n\t"
		"mov $0xbbbb, %%r14\n\t"
		"mov $0xcccc, %%r15\n\t"
		"mov %[nr], %%eax\n\t"
		"syscall\n\t"
		"mov %%rbx, %[o0]\n\t"
		"mov %%rbp, %[o1]\n\t"
		"mov %%rdi, %[o2]\n\t"
		"mov %%rsi, %[o3]\n\t"
		"mov %%rdx, %[o4]\n\t"
		"mov %%r8, %[o5]\n\t"
		"mov %%r9, %[o6]\n\t"
		"mov %%r10, %[o7]\n\t"
		"mov %%r12, %[o8]\n\t"
		"mov %%r13, %[o9]\n\t"
		"mov %%r14, %[o10]\n\t"
		"mov %%r15, %[o11]\n\t"
		"pop %%rbp"
		: "=a"(ret), [o0] "=m"(preserved[0]), [o1] "=m"(preserved[1]),
		  [o2] "=m"(preserved[2]), [o3] "=m"(preserved[3]),
		  [o4] "=m"(preserved[4]), [o5] "=m"(preserved[5]),
		  [o6] "=m"(preserved[6]), [o7] "=m"(preserved[7]),
		  [o8] "=m"(preserved[8]), [o9] "=m"(preserved[9]),
		  [o10] "=m"(preserved[10]), [o11] "=m"(preserved[11])
		: [nr] "i"(SYS_CHECK_KERNEL)
		: "rbx", "rcx", "rdi", "rsi", "rdx", "r8", "r9", "r10", "r11",
		  "r12", "r13", "r14", "r15", "memory");
	return ret;
}

static void case_preserve(void)
{
	static const uint64_t want[12] = {
		0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666,
		0x7777, 0x8888, 0x9999, 0xaaaa, 0xbbbb, 0xcccc,
	};
	GUEST_ASSERT_EQ(guest_run_user(user_preserve, 0, user_top), 1);
	for (int i = 0; i < 12; i++)
		GUEST_ASSERT_EQ(preserved[i], want[i]);
}

static uint64_t user_puts(uint64_t unused)
{
	(void)unused;
	return guest_syscall(GUEST_SYS_PUTS, (uint64_t) "hello from ring 3\n");
}

static void case_puts(void)
{
	GUEST_ASSERT_EQ(guest_run_user(user_puts, 0, user_top), 0);
}

static __attribute__((noinline)) uint64_t deep(uint64_t depth)
{
	if (depth > 100)
		return 0;
	if (!depth)
		guest_sys_exit(0xdead);
	return deep(depth - 1) + 1; /* not a tail call: frames pile up */
}

static uint64_t user_deep(uint64_t unused)
{
	(void)unused;
	return deep(20);
}

static void case_exit_nested(void)
{
	uint64_t rbx_before, rbx_after;

	/* Callee-saved registers of the kernel survive the excursion. */
	asm volatile("mov %%rbx, %0" : "=r"(rbx_before));
	GUEST_ASSERT_EQ(guest_run_user(user_deep, 0, user_top), 0xdead);
	asm volatile("mov %%rbx, %0" : "=r"(rbx_after));
	GUEST_ASSERT_EQ(rbx_before, rbx_after);
}

static volatile uint64_t ud_cs, ud_ss, ud_rsp, ud_stack;

static void user_ud_handler(struct ex_regs *regs)
{
	uint64_t here = (uint64_t)&here;

	ud_cs = regs->cs;
	ud_ss = regs->ss;
	ud_rsp = regs->rsp;
	ud_stack = here;
	regs->rip += 2;
}

static uint64_t user_ud(uint64_t unused)
{
	(void)unused;
	asm volatile("ud2" ::: "memory");
	return 7;
}

static void case_user_exception(void)
{
	guest_set_handler(VEC_UD, user_ud_handler);
	GUEST_ASSERT_EQ(guest_run_user(user_ud, 0, user_top), 7);
	guest_set_handler(VEC_UD, 0);
	GUEST_ASSERT_EQ(ud_cs, GMEM_BOOT_USER_CS);
	GUEST_ASSERT_EQ(ud_ss, GMEM_BOOT_USER_DS);
	GUEST_ASSERT(on_user_stack(ud_rsp));
	/* The handler ran on the stack TSS.RSP0 names, below the kernel's. */
	GUEST_ASSERT(ud_stack < guest_this_cpu()->kernel_rsp &&
		     ud_stack > guest_this_cpu()->kernel_rsp - 8192);
	GUEST_ASSERT_EQ(*(volatile uint64_t *)(guest_boot->tss + 4),
			guest_this_cpu()->kernel_rsp);
}

static volatile uint64_t int80_hits, int80_cs;

static void int80_handler(struct ex_regs *regs)
{
	int80_hits++;
	int80_cs = regs->cs;
	regs->rax = 0x80; /* a result, as an old-style system call */
}

static volatile uint64_t gp_err, gp_hits;

static void gp_handler(struct ex_regs *regs)
{
	gp_hits++;
	gp_err = regs->error_code;
	regs->rip += 2; /* int imm8 is two bytes */
}

static uint64_t user_int(uint64_t unused)
{
	uint64_t rax = 0;

	(void)unused;
	asm volatile("int $0x80" : "+a"(rax) : : "memory");
	if (rax != 0x80)
		return 1;
	asm volatile("int $0x81" ::: "memory");
	return 2;
}

static void case_int_gates(void)
{
	guest_set_handler(0x80, int80_handler);
	guest_set_handler(0x81, int80_handler);
	guest_set_handler(VEC_GP, gp_handler);
	GUEST_ASSERT_EQ(guest_run_user(user_int, 0, user_top), 2);
	guest_set_handler(VEC_GP, 0);
	guest_set_handler(0x80, 0);
	guest_set_handler(0x81, 0);
	GUEST_ASSERT_EQ(int80_hits, 1);
	GUEST_ASSERT_EQ(int80_cs, GMEM_BOOT_USER_CS);
	GUEST_ASSERT_EQ(gp_hits, 1);
	/* Selector error code: IDT bit (1 << 1), index 0x81. */
	GUEST_ASSERT_EQ(gp_err, (0x81 << 3) | 2);
}

static uint64_t user_count(uint64_t n)
{
	uint64_t last = 0;

	for (uint64_t i = 0; i < n; i++)
		last = guest_syscall(SYS_COUNT, 0);
	return last;
}

static void case_many(void)
{
	count = 0;
	GUEST_ASSERT_EQ(guest_run_user(user_count, 1000, user_top), 1000);
}

static void (*const cases[])(void) = {
	case_round_trip,     case_preserve,  case_puts, case_exit_nested,
	case_user_exception, case_int_gates, case_many,
};

_Static_assert(sizeof(cases) / sizeof(cases[0]) == NR_CASES, "case table");

void guest_main(uint64_t arg0, uint64_t arg1)
{
	guest_set_syscall_handler(sys_handler);
	for (unsigned i = 0; i < NR_CASES; i++) {
		GUEST_SYNC(i);
		cases[i]();
	}
	GUEST_SYNC(NR_CASES);
	GUEST_DONE(0);
}

#else

#include <string.h>

#include "tap.h"
#include "guest_util.h"

#define MEM (16ULL << 20)

int main(void)
{
	struct guest_vm *gvm;
	struct guest_vcpu *v;

	tap_plan(NR_CASES + 2, 60);
	REQUIRE(guest_vm_create(KVM_X86_DEFAULT_VM, MEM, 0, &gvm) == 0);
	REQUIRE(guest_vcpu_add(gvm, &v) == 0);
	REQUIRE(guest_vm_load(gvm, "user", NULL) == 0);

	guest_run_steps(v, case_names, NR_CASES, NULL);
	CHECK(v->console && strstr(v->console, "hello from ring 3\n"));
	tap_result("the ring-3 console line reached the host");
	guest_vm_destroy(gvm);
	return tap_done();
}

#endif
