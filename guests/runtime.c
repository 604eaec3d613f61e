// SPDX-License-Identifier: MIT
/*
 * Guest runtime: start-up, the IDT and exception dispatch, ucalls, system
 * calls.  Single address space, identity-mapped; the loader's boot info
 * says where things are.
 */
#include "guest.h"

#include <stddef.h>

#define MAX_CPUS 32 /* GMEM_LOAD_MAX_CPUS */

static struct guest_percpu percpu[MAX_CPUS];
static struct gmem_boot_info no_boot; /* if started by something else */

_Static_assert(offsetof(struct guest_percpu, cpu) == PERCPU_CPU, "cpu");
_Static_assert(offsetof(struct guest_percpu, boot) == PERCPU_BOOT, "boot");
_Static_assert(offsetof(struct guest_percpu, tss) == PERCPU_TSS, "tss");
_Static_assert(offsetof(struct guest_percpu, fixup_rip) == PERCPU_FIXUP_RIP,
	       "fixup_rip");
_Static_assert(offsetof(struct guest_percpu, fixup_rsp) == PERCPU_FIXUP_RSP,
	       "fixup_rsp");
_Static_assert(offsetof(struct guest_percpu, kernel_rsp) == PERCPU_KERNEL_RSP,
	       "kernel_rsp");
_Static_assert(offsetof(struct guest_percpu, user_rsp) == PERCPU_USER_RSP,
	       "user_rsp");
_Static_assert(offsetof(struct guest_percpu, user_return_rsp) ==
		       PERCPU_USER_RETURN_RSP,
	       "user_return_rsp");
_Static_assert(offsetof(struct guest_percpu, syscalls_ready) ==
		       PERCPU_SYSCALLS_READY,
	       "syscalls_ready");
_Static_assert(offsetof(struct guest_percpu, fault) == PERCPU_FAULT, "fault");

/* ---- IDT --------------------------------------------------------------- */

/* A 64-bit interrupt gate (Intel SDM vol. 3, 6.14.1). */
struct idt_gate {
	uint16_t offset0;
	uint16_t selector;
	uint8_t ist;
	uint8_t type_attr; /* P | DPL | 0 | type (0xe: interrupt gate) */
	uint16_t offset1;
	uint32_t offset2;
	uint32_t zero;
};

struct desc_ptr {
	uint16_t limit;
	uint64_t base;
} __attribute__((packed));

static struct idt_gate idt[256] __aligned(16);
static guest_handler_t handlers[256];
static guest_syscall_t syscall_handler;

extern const char guest_idt_stubs[];
extern void guest_syscall_entry(void);

/*
 * Every vCPU fills the same table with the same values and loads it, so
 * no vCPU waits for another to have done it.
 */
static void idt_init(void)
{
	struct desc_ptr d;

	for (unsigned v = 0; v < 256; v++) {
		uint64_t a = (uint64_t)guest_idt_stubs + 16 * v;
		/* int3, into and int $0x80 may be raised from ring 3. */
		unsigned dpl = (v == 3 || v == 4 || v == 0x80) ? 3 : 0;

		idt[v] = (struct idt_gate){
			.offset0 = a & 0xffff,
			.selector = GMEM_BOOT_KERNEL_CS,
			.type_attr = 0x80 | (dpl << 5) | 0xe,
			.offset1 = (a >> 16) & 0xffff,
			.offset2 = a >> 32,
		};
	}
	d.limit = sizeof(idt) - 1;
	d.base = (uint64_t)idt;
	asm volatile("lidt %0" : : "m"(d) : "memory");
}

void guest_set_handler(unsigned vector, guest_handler_t fn)
{
	if (vector < 256)
		handlers[vector] = fn;
}

static __noreturn void report_unhandled(struct ex_regs *regs)
{
	struct guest_ucall uc = {.cmd = UCALL_UNHANDLED};

	uc.args[UCALL_UNHANDLED_VECTOR] = regs->vector;
	uc.args[UCALL_UNHANDLED_ERROR] = regs->error_code;
	uc.args[UCALL_UNHANDLED_RIP] = regs->rip;
	uc.args[UCALL_UNHANDLED_CR2] = regs->vector == VEC_PF ? read_cr2() : 0;
	uc.args[UCALL_UNHANDLED_CS] = regs->cs;
	uc.args[UCALL_UNHANDLED_RSP] = regs->rsp;
	snprintf(uc.buf, sizeof(uc.buf),
		 "unexpected exception %llu error %#llx at rip %#llx cs %#llx",
		 (unsigned long long)regs->vector,
		 (unsigned long long)regs->error_code,
		 (unsigned long long)regs->rip, (unsigned long long)regs->cs);
	for (;;) {
		guest_ucall(&uc);
		halt();
	}
}

/* Called by ex_common in entry.S for every vector. */
void guest_exception_dispatch(struct ex_regs *regs)
{
	guest_handler_t fn = handlers[regs->vector & 255];
	struct guest_percpu *pc = guest_this_cpu();

	/* An armed probe takes the fault, whatever is registered. */
	if (pc->fixup_rip) {
		pc->fault.error_code = regs->error_code;
		pc->fault.cr2 = regs->vector == VEC_PF ? read_cr2() : 0;
		pc->fault.rip = regs->rip;
		pc->fault.cs = regs->cs;
		pc->fault.vector = regs->vector;
		regs->rip = pc->fixup_rip;
		regs->rsp = pc->fixup_rsp;
		pc->fixup_rip = 0;
		return;
	}
	if (fn) {
		fn(regs);
		return;
	}
	report_unhandled(regs);
}

/* ---- system calls ------------------------------------------------------ */

void guest_set_syscall_handler(guest_syscall_t fn)
{
	syscall_handler = fn;
}

uint64_t guest_syscall_dispatch(struct syscall_regs *regs)
{
	switch (regs->nr) {
	case GUEST_SYS_PUTS:
		guest_puts((const char *)regs->a0);
		return 0;
	case GUEST_SYS_GETCPU:
		return guest_boot->cpu;
	}
	if (regs->nr >= GUEST_SYS_USER && syscall_handler)
		return syscall_handler(regs);
	return (uint64_t)-38; /* -ENOSYS, as Linux */
}

/*
 * SYSCALL/SYSRET set-up (per-vCPU MSRs), done on first use on each vCPU.
 */
void guest_syscall_init(void)
{
	struct guest_percpu *pc = guest_this_cpu();

	if (pc->syscalls_ready)
		return;
	wrmsr(MSR_STAR, ((uint64_t)GMEM_BOOT_KERNEL_DS << 48) |
				((uint64_t)GMEM_BOOT_KERNEL_CS << 32));
	wrmsr(MSR_LSTAR, (uint64_t)guest_syscall_entry);
	/* IF, TF, DF, NT, AC cleared on entry. */
	wrmsr(MSR_SFMASK, 0x200 | 0x100 | 0x400 | 0x4000 | 0x40000);
	wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_SCE);
	pc->syscalls_ready = 1;
}

/* ---- start-up ---------------------------------------------------------- */

/* Called by _start; returns the vCPU index. */
uint64_t guest_runtime_init(const struct gmem_boot_info *boot)
{
	struct guest_percpu *pc;

	if (!boot || boot->magic != GMEM_BOOT_MAGIC || boot->cpu >= MAX_CPUS)
		boot = &no_boot;
	pc = &percpu[boot->cpu];
	pc->self = pc;
	pc->cpu = boot->cpu;
	pc->boot = boot;
	pc->tss = boot->tss;
	wrmsr(MSR_GS_BASE, (uint64_t)pc);
	idt_init();
	return boot->cpu;
}

__attribute__((weak)) void guest_ap_main(uint64_t cpu)
{
	(void)cpu;
}

/* ---- ucalls ------------------------------------------------------------ */

/*
 * The OUT carries the low 32 bits of the struct's address (guest RAM is
 * below 4 GiB); RDI carries all of it for a host that reads registers.
 */
void guest_ucall(struct guest_ucall *uc)
{
	uint64_t gpa = (uint64_t)uc;

	asm volatile("outl %%eax, %w1"
		     :
		     : "a"((uint32_t)gpa), "Nd"((uint16_t)GUEST_PORT_UCALL),
		       "D"(gpa)
		     : "memory");
}

uint64_t guest_sync(uint64_t arg)
{
	struct guest_ucall uc = {.cmd = UCALL_SYNC};

	uc.args[0] = arg;
	guest_ucall(&uc);
	return uc.args[1];
}

void guest_ucall_printf(const char *fmt, ...)
{
	struct guest_ucall uc = {.cmd = UCALL_PRINTF};
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(uc.buf, sizeof(uc.buf), fmt, ap);
	va_end(ap);
	guest_ucall(&uc);
}

/* DONE and ASSERT are final: a host that resumes anyway gets them again. */
void guest_done(uint64_t status)
{
	struct guest_ucall uc = {.cmd = UCALL_DONE};

	uc.args[0] = status;
	for (;;) {
		guest_ucall(&uc);
		halt();
	}
}

void guest_assert_fail(const char *file, int line, const char *expr, uint64_t a,
		       uint64_t b, const char *fmt, ...)
{
	struct guest_ucall uc = {.cmd = UCALL_ASSERT};
	int n;

	uc.args[0] = line;
	uc.args[1] = a;
	uc.args[2] = b;
	n = snprintf(uc.buf, sizeof(uc.buf), "%s:%d: %s", file, line, expr);
	if (fmt && n >= 0 && (size_t)n < sizeof(uc.buf) - 3) {
		va_list ap;

		uc.buf[n++] = ':';
		uc.buf[n++] = ' ';
		va_start(ap, fmt);
		vsnprintf(uc.buf + n, sizeof(uc.buf) - n, fmt, ap);
		va_end(ap);
	}
	for (;;) {
		guest_ucall(&uc);
		halt();
	}
}

/* ---- ring 3 ------------------------------------------------------------ */

extern uint64_t __guest_run_user(uint64_t (*fn)(uint64_t), uint64_t arg,
				 void *user_stack_top);

uint64_t guest_run_user(uint64_t (*fn)(uint64_t), uint64_t arg,
			void *user_stack_top)
{
	guest_syscall_init();
	return __guest_run_user(fn, arg, user_stack_top);
}
