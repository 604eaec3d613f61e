/* SPDX-License-Identifier: MIT */
/*
 * Guest runtime entry points in assembly: the 256 exception/interrupt
 * stubs, the SYSCALL entry, the switch to ring 3 and the fault probes.
 */
#include <gmem/boot.h>

#include "percpu.h"

#define GUEST_SYS_EXIT 0

	.text

/*
 * Vector stubs, one per vector, 16 bytes apart from guest_idt_stubs so
 * that runtime.c computes their addresses.  Each makes the frame uniform
 * (a dummy error code where the CPU pushes none), pushes its vector and
 * jumps to the common path.  Vectors with an error code: 8, 10-14, 17,
 * 21, 29, 30.
 */
	.balign 16
	.globl guest_idt_stubs
guest_idt_stubs:
	vec = 0
	.rept 256
	.balign 16
	.if !(vec == 8 || (vec >= 10 && vec <= 14) || vec == 17 || vec == 21 || vec == 29 || vec == 30)
	pushq	$0
	.endif
	pushq	$vec
	jmp	ex_common
	vec = vec + 1
	.endr

/*
 * The frame is struct ex_regs (guest.h): the registers pushed here, then
 * vector and error code, then the CPU's RIP, CS, RFLAGS, RSP, SS.  The
 * CPU aligned RSP to 16 before its five pushes, so after these 17 more
 * (and the 512-byte FXSAVE image) the call below sees the ABI's alignment.
 */
ex_common:
	pushq	%rax
	pushq	%rbx
	pushq	%rcx
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rbp
	pushq	%r8
	pushq	%r9
	pushq	%r10
	pushq	%r11
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, %rdi
	/* The C handlers may use XMM registers: keep the interrupted code's. */
	subq	$512, %rsp
	fxsave64 (%rsp)
	call	guest_exception_dispatch
	fxrstor64 (%rsp)
	addq	$512, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%r11
	popq	%r10
	popq	%r9
	popq	%r8
	popq	%rbp
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%rcx
	popq	%rbx
	popq	%rax
	addq	$16, %rsp		/* vector, error code */
	iretq

/*
 * uint64_t __guest_run_user(fn, arg, user_stack_top)
 *
 * Saves the callee-saved registers and this RSP (guest_sys_exit comes
 * back to it), points TSS.RSP0 and the syscall stack just below, and
 * IRETQs to fn(arg) at CPL 3 with a return address that exits.
 */
	.globl __guest_run_user
	.type __guest_run_user, @function
__guest_run_user:
	pushq	%rbp
	pushq	%rbx
	pushq	%r12
	pushq	%r13
	pushq	%r14
	pushq	%r15
	movq	%rsp, %gs:PERCPU_USER_RETURN_RSP
	movq	%rsp, %rax
	andq	$-16, %rax
	movq	%rax, %gs:PERCPU_KERNEL_RSP
	movq	%gs:PERCPU_TSS, %rcx
	movq	%rax, 4(%rcx)			/* TSS.RSP0 */
	subq	$8, %rdx
	leaq	user_exit_trampoline(%rip), %rcx
	movq	%rcx, (%rdx)
	pushq	$GMEM_BOOT_USER_DS		/* SS */
	pushq	%rdx				/* RSP */
	pushq	$0x2				/* RFLAGS: IF off */
	pushq	$GMEM_BOOT_USER_CS		/* CS */
	pushq	%rdi				/* RIP */
	movq	%rsi, %rdi
	/* No kernel values in what the user sees. */
	xorl	%eax, %eax
	xorl	%ebx, %ebx
	xorl	%ecx, %ecx
	xorl	%edx, %edx
	xorl	%esi, %esi
	xorl	%ebp, %ebp
	xorl	%r8d, %r8d
	xorl	%r9d, %r9d
	xorl	%r10d, %r10d
	xorl	%r11d, %r11d
	xorl	%r12d, %r12d
	xorl	%r13d, %r13d
	xorl	%r14d, %r14d
	xorl	%r15d, %r15d
	iretq
	.size __guest_run_user, . - __guest_run_user

/* Where fn returns to, at CPL 3. */
user_exit_trampoline:
	movq	%rax, %rdi
	movl	$GUEST_SYS_EXIT, %eax
	syscall
	ud2

	.globl guest_sys_exit
	.type guest_sys_exit, @function
guest_sys_exit:
	movl	$GUEST_SYS_EXIT, %eax
	syscall
	ud2
	.size guest_sys_exit, . - guest_sys_exit

/*
 * SYSCALL lands here at CPL 0 with the user's RSP, RIP in RCX and RFLAGS
 * in R11 (SFMASK cleared IF, TF, DF, AC).  The frame is struct
 * syscall_regs, built on the stack __guest_run_user chose.
 */
	.globl guest_syscall_entry
	.type guest_syscall_entry, @function
guest_syscall_entry:
	movq	%rsp, %gs:PERCPU_USER_RSP
	movq	%gs:PERCPU_KERNEL_RSP, %rsp
	cmpq	$GUEST_SYS_EXIT, %rax
	je	sys_exit
	pushq	%gs:PERCPU_USER_RSP
	pushq	%r11
	pushq	%rcx
	pushq	%r9
	pushq	%r8
	pushq	%r10
	pushq	%rdx
	pushq	%rsi
	pushq	%rdi
	pushq	%rax
	movq	%rsp, %rdi
	subq	$512, %rsp			/* XMM, as for exceptions */
	fxsave64 (%rsp)
	call	guest_syscall_dispatch
	fxrstor64 (%rsp)
	addq	$512, %rsp
	addq	$8, %rsp			/* nr */
	popq	%rdi
	popq	%rsi
	popq	%rdx
	popq	%r10
	popq	%r8
	popq	%r9
	popq	%rcx
	popq	%r11
	popq	%rsp
	sysretq
sys_exit:
	movq	%rdi, %rax
	movq	%gs:PERCPU_USER_RETURN_RSP, %rsp
	popq	%r15
	popq	%r14
	popq	%r13
	popq	%r12
	popq	%rbx
	popq	%rbp
	ret
	.size guest_syscall_entry, . - guest_syscall_entry

/*
 * Fault probes.  ARM records where to resume (label 9 of the probe) and
 * the stack to resume with; guest_exception_dispatch, seeing it armed,
 * stores the fault in this vCPU's guest_percpu.fault (vector first) and
 * resumes there.
 * R11 is the scratch register: caller-saved and not an argument.
 */
.macro ARM
	leaq	9f(%rip), %r11
	movq	%r11, %gs:PERCPU_FIXUP_RIP
	movq	%rsp, %gs:PERCPU_FIXUP_RSP
.endm

.macro PROBE_END
	movl	$-1, %eax
	jmp	8f
9:	movl	%gs:PERCPU_FAULT, %eax	/* fault.vector */
8:	movq	$0, %gs:PERCPU_FIXUP_RIP
	ret
.endm

	.globl guest_probe_read
guest_probe_read:
	ARM
	movq	(%rdi), %rax
	PROBE_END

	.globl guest_probe_write
guest_probe_write:
	ARM
	movq	%rsi, (%rdi)
	PROBE_END

	.globl guest_probe_exec
guest_probe_exec:
	ARM
	call	*%rdi
	PROBE_END

	.globl guest_probe_div
guest_probe_div:
	ARM
	movq	%rdi, %rax
	xorl	%edx, %edx
	divq	%rsi
	PROBE_END

	.globl guest_probe_ud2
guest_probe_ud2:
	ARM
	ud2
	PROBE_END

	.globl guest_probe_hlt
guest_probe_hlt:
	ARM
	hlt
	PROBE_END

	.globl guest_probe_int3
guest_probe_int3:
	ARM
	int3
	PROBE_END

	.section .note.GNU-stack, "", @progbits
