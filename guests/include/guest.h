/* SPDX-License-Identifier: MIT */
/*
 * The freestanding guest runtime: what a guest program (a test's -DGUEST
 * half) may use.  Built with gcc -ffreestanding -march=x86-64-v2
 * -mno-red-zone (SSE and floating point allowed: crt0.S sets CR4.OSFXSR,
 * and the exception and syscall entries keep the interrupted code's XMM
 * registers), linked by guests/guest.ld at 0x200000, started by
 * gmem's loader (<gmem/boot.h>) in long mode at CPL 0 with GVA == GPA.
 *
 * A program defines
 *	void guest_main(uint64_t arg0, uint64_t arg1);
 * (arg0/arg1 are the loader's opts.rdi/rsi).  Returning from it reports
 * GUEST_DONE(0).  On a vCPU other than 0, guest_ap_main(cpu) runs instead;
 * the default reports GUEST_DONE(0) at once.
 */
#ifndef GMEM_GUEST_H
#define GMEM_GUEST_H

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <gmem/boot.h>
#include <gmem/hypercall.h>

#include "percpu.h"
#include "ucall.h"

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define __noreturn __attribute__((noreturn))
#define __aligned(n) __attribute__((aligned(n)))
#define __printf(a, b) __attribute__((format(printf, a, b)))

#define PAGE_SIZE 4096ULL

void guest_main(uint64_t arg0, uint64_t arg1);
void guest_ap_main(uint64_t cpu);

/*
 * Details of the last fault a probe caught (see the probes below).
 */
struct guest_fault {
	uint64_t vector, error_code, cr2, rip, cs;
};

/*
 * Per-vCPU state, at this vCPU's GS base (layout: percpu.h).  Globals are
 * shared by all vCPUs of the guest; what differs per vCPU lives here.
 */
struct guest_percpu {
	struct guest_percpu *self;
	uint64_t cpu;
	const struct gmem_boot_info *boot;
	uint64_t tss;
	uint64_t fixup_rip, fixup_rsp; /* an armed probe */
	uint64_t kernel_rsp;	       /* ring 3: stack for traps/syscalls */
	uint64_t user_rsp;	       /* ring 3: saved at SYSCALL entry */
	uint64_t user_return_rsp;      /* ring 3: guest_run_user's frame */
	uint64_t syscalls_ready;       /* STAR/LSTAR/SFMASK written */
	volatile struct guest_fault fault;
};

static inline struct guest_percpu *guest_this_cpu(void)
{
	struct guest_percpu *p;

	asm volatile("mov %%gs:0, %0" : "=r"(p));
	return p;
}

/* This vCPU's boot information, from the loader. */
#define guest_boot (guest_this_cpu()->boot)

/* ---- libc subset ------------------------------------------------------- */

void *memcpy(void *dst, const void *src, size_t n);
void *memmove(void *dst, const void *src, size_t n);
void *memset(void *dst, int c, size_t n);
int memcmp(const void *a, const void *b, size_t n);
size_t strlen(const char *s);
int strcmp(const char *a, const char *b);

int vsnprintf(char *buf, size_t size, const char *fmt, va_list ap);
int snprintf(char *buf, size_t size, const char *fmt, ...) __printf(3, 4);

/* Console output through GUEST_PORT_CONSOLE. */
void guest_puts(const char *s);
int guest_printf(const char *fmt, ...) __printf(1, 2);

/* ---- ucalls ------------------------------------------------------------ */

/* Send one ucall; returns when the host resumes the vCPU. */
void guest_ucall(struct guest_ucall *uc);
uint64_t guest_sync(uint64_t arg);
void guest_ucall_printf(const char *fmt, ...) __printf(1, 2);
__noreturn void guest_done(uint64_t status);
__noreturn void guest_assert_fail(const char *file, int line, const char *expr,
				  uint64_t a, uint64_t b, const char *fmt, ...)
	__printf(6, 7);

/* SYNC returns what the host left in args[1] (0 unless it answered). */
#define GUEST_SYNC(arg) guest_sync((uint64_t)(arg))
#define GUEST_DONE(status) guest_done((uint64_t)(status))
#define GUEST_PRINTF(...) guest_ucall_printf(__VA_ARGS__)

#define GUEST_ASSERT(cond)                                                 \
	do {                                                               \
		if (!(cond))                                               \
			guest_assert_fail(__FILE__, __LINE__, #cond, 0, 0, \
					  NULL);                           \
	} while (0)

/* With a message. */
#define GUEST_ASSERT_MSG(cond, ...)                                        \
	do {                                                               \
		if (!(cond))                                               \
			guest_assert_fail(__FILE__, __LINE__, #cond, 0, 0, \
					  __VA_ARGS__);                    \
	} while (0)

/* Both values are reported (args[1], args[2]) and printed in hex. */
#define GUEST_ASSERT_EQ(a, b)                                               \
	do {                                                                \
		uint64_t __a = (uint64_t)(a), __b = (uint64_t)(b);          \
		if (__a != __b)                                             \
			guest_assert_fail(__FILE__, __LINE__, #a " == " #b, \
					  __a, __b, "%#llx != %#llx",       \
					  (unsigned long long)__a,          \
					  (unsigned long long)__b);         \
	} while (0)

/* ---- CPU access -------------------------------------------------------- */

static inline void outb(uint16_t port, uint8_t v)
{
	asm volatile("outb %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline void outl(uint16_t port, uint32_t v)
{
	asm volatile("outl %0, %1" : : "a"(v), "Nd"(port) : "memory");
}

static inline uint64_t read_cr0(void)
{
	uint64_t v;
	asm volatile("mov %%cr0, %0" : "=r"(v));
	return v;
}

static inline uint64_t read_cr2(void)
{
	uint64_t v;
	asm volatile("mov %%cr2, %0" : "=r"(v));
	return v;
}

static inline uint64_t read_cr3(void)
{
	uint64_t v;
	asm volatile("mov %%cr3, %0" : "=r"(v));
	return v;
}

static inline void write_cr3(uint64_t v)
{
	asm volatile("mov %0, %%cr3" : : "r"(v) : "memory");
}

static inline uint64_t read_cr4(void)
{
	uint64_t v;
	asm volatile("mov %%cr4, %0" : "=r"(v));
	return v;
}

static inline uint64_t rdmsr(uint32_t msr)
{
	uint32_t lo, hi;
	asm volatile("rdmsr" : "=a"(lo), "=d"(hi) : "c"(msr));
	return lo | ((uint64_t)hi << 32);
}

static inline void wrmsr(uint32_t msr, uint64_t v)
{
	asm volatile("wrmsr"
		     :
		     : "c"(msr), "a"((uint32_t)v), "d"((uint32_t)(v >> 32))
		     : "memory");
}

static inline void invlpg(const volatile void *va)
{
	asm volatile("invlpg (%0)" : : "r"(va) : "memory");
}

static inline void cpuid(uint32_t leaf, uint32_t sub, uint32_t *a, uint32_t *b,
			 uint32_t *c, uint32_t *d)
{
	asm volatile("cpuid"
		     : "=a"(*a), "=b"(*b), "=c"(*c), "=d"(*d)
		     : "a"(leaf), "c"(sub));
}

static inline void halt(void)
{
	asm volatile("hlt" ::: "memory");
}

#define MSR_EFER 0xc0000080
#define MSR_STAR 0xc0000081
#define MSR_LSTAR 0xc0000082
#define MSR_SFMASK 0xc0000084
#define MSR_FS_BASE 0xc0000100
#define MSR_GS_BASE 0xc0000101

#define EFER_SCE (1ULL << 0)
#define EFER_NXE (1ULL << 11)

/* ---- hypercalls (VMCALL, KVM convention) ------------------------------- */

#define KVM_HC_MAP_GPA_RANGE 12
#define KVM_MAP_GPA_RANGE_ENCRYPTED (1ULL << 4)
#define KVM_MAP_GPA_RANGE_DECRYPTED 0ULL
#define KVM_ENOSYS 1000

/* RAX = nr, RBX, RCX, RDX, RSI = arguments; the result comes in RAX. */
static inline uint64_t guest_hypercall(uint64_t nr, uint64_t a0, uint64_t a1,
				       uint64_t a2, uint64_t a3)
{
	uint64_t ret;

	asm volatile("vmcall"
		     : "=a"(ret)
		     : "a"(nr), "b"(a0), "c"(a1), "d"(a2), "S"(a3)
		     : "memory");
	return ret;
}

/* Ask the host to convert [gpa, gpa + npages * 4K) to private or shared. */
static inline uint64_t guest_map_gpa_range(uint64_t gpa, uint64_t npages,
					   uint64_t attrs)
{
	return guest_hypercall(KVM_HC_MAP_GPA_RANGE, gpa, npages, attrs, 0);
}

/*
 * gmem's own hypercalls (<gmem/hypercall.h>: numbers, arguments, results).
 * GMEM_HC_PROTECT locks [gpa, gpa + npages * 4K) against the accesses in
 * @prot (GMEM_PROTECT_NR/NW/NX), for good: a later access it denies is a
 * memory-fault exit that the VMM reports.
 */
static inline uint64_t guest_protect(uint64_t gpa, uint64_t npages,
				     uint64_t prot)
{
	return guest_hypercall(GMEM_HC_PROTECT, gpa, npages, prot, 0);
}

/* ---- exceptions -------------------------------------------------------- */

/*
 * The frame every vector's stub builds, lowest address first: the
 * general registers it pushed, the vector and error code (0 for vectors
 * without one), then what the CPU pushed.  A handler may change any of
 * it; the stub restores the registers and IRETQs to regs->rip.
 */
struct ex_regs {
	uint64_t r15, r14, r13, r12, r11, r10, r9, r8;
	uint64_t rbp, rdi, rsi, rdx, rcx, rbx, rax;
	uint64_t vector, error_code;
	uint64_t rip, cs, rflags, rsp, ss;
};

typedef void (*guest_handler_t)(struct ex_regs *regs);

/* Install the C handler for @vector (0-255); NULL removes it. */
void guest_set_handler(unsigned vector, guest_handler_t fn);

/* #PF error-code bits. */
#define PF_P (1U << 0)
#define PF_W (1U << 1)
#define PF_U (1U << 2)
#define PF_RSVD (1U << 3)
#define PF_I (1U << 4)

enum {
	VEC_DE = 0,
	VEC_DB = 1,
	VEC_BP = 3,
	VEC_UD = 6,
	VEC_DF = 8,
	VEC_GP = 13,
	VEC_PF = 14,
};

/*
 * Probes: run one instruction that may fault.  Each returns -1 if it did
 * not fault, else the vector, with the details in guest_last_fault.  The
 * fault is caught by a fixup (no handler needed; a registered handler for
 * the vector is not called); execution continues after the probe with the
 * stack as it was.  They work at CPL 3 too.
 */
#define guest_last_fault (guest_this_cpu()->fault)

int guest_probe_read(const volatile void *addr);	  /* movq (addr) */
int guest_probe_write(volatile void *addr, uint64_t val); /* movq val, (addr) */
int guest_probe_exec(const void *addr); /* call addr; it must RET */
int guest_probe_div(uint64_t dividend, uint64_t divisor); /* divq */
int guest_probe_ud2(void);
int guest_probe_hlt(void);
int guest_probe_int3(void);

/* ---- paging (identity map from the loader; 4 KiB granularity) ---------- */

#define PTE_P (1ULL << 0)
#define PTE_W (1ULL << 1)
#define PTE_U (1ULL << 2)
#define PTE_A (1ULL << 5)
#define PTE_D (1ULL << 6)
#define PTE_PS (1ULL << 7)
#define PTE_NX (1ULL << 63)
#define PTE_ADDR_MASK 0x000ffffffffff000ULL

/*
 * The 4 KiB PTE for @va in the current tables, splitting a 2 MiB mapping
 * and creating missing tables as needed; NULL when out of table pages.
 */
uint64_t *guest_pte(uint64_t va);

/* Map @va to @pa with @flags (PTE_P added), unmap it, or change flags. */
void guest_map_page(uint64_t va, uint64_t pa, uint64_t flags);
void guest_unmap_page(uint64_t va);
void guest_protect_page(uint64_t va, uint64_t set, uint64_t clear);

/* ---- ring 3 ------------------------------------------------------------ */

/*
 * Run fn(arg) at CPL 3 on @user_stack_top (16-byte aligned) and return the
 * value it returns or passes to guest_sys_exit().  Exceptions at CPL 3 go
 * to the handlers as usual, on the kernel stack below this call's frame
 * (guest_this_cpu()->kernel_rsp, also TSS.RSP0).  Each vCPU may do this
 * on its own user stack.
 */
uint64_t guest_run_user(uint64_t (*fn)(uint64_t), uint64_t arg,
			void *user_stack_top);

/*
 * System calls, Linux register convention: RAX = number, RDI, RSI, RDX,
 * R10, R8, R9 = arguments, result in RAX; RCX and R11 are clobbered.
 */
#define GUEST_SYS_EXIT 0
#define GUEST_SYS_PUTS 1 /* (const char *) */
#define GUEST_SYS_GETCPU 2
/* Numbers >= GUEST_SYS_USER go to the handler set below. */
#define GUEST_SYS_USER 16

struct syscall_regs {
	uint64_t nr, a0, a1, a2, a3, a4, a5;
	uint64_t user_rip, user_rflags, user_rsp;
};
typedef uint64_t (*guest_syscall_t)(struct syscall_regs *regs);
void guest_set_syscall_handler(guest_syscall_t fn);

static inline uint64_t guest_syscall6(uint64_t nr, uint64_t a0, uint64_t a1,
				      uint64_t a2, uint64_t a3, uint64_t a4,
				      uint64_t a5)
{
	register uint64_t r10 asm("r10") = a3;
	register uint64_t r8 asm("r8") = a4;
	register uint64_t r9 asm("r9") = a5;
	uint64_t ret;

	asm volatile("syscall"
		     : "=a"(ret)
		     : "a"(nr), "D"(a0), "S"(a1), "d"(a2), "r"(r10), "r"(r8),
		       "r"(r9)
		     : "rcx", "r11", "memory");
	return ret;
}

static inline uint64_t guest_syscall(uint64_t nr, uint64_t a0)
{
	return guest_syscall6(nr, a0, 0, 0, 0, 0, 0);
}

__noreturn void guest_sys_exit(uint64_t value);

/* STAR/LSTAR/SFMASK and EFER.SCE; guest_run_user() does it on first use. */
void guest_syscall_init(void);

#endif /* GMEM_GUEST_H */
