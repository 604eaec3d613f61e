/* SPDX-License-Identifier: MIT */
/*
 * Guest entry.  The loader (<gmem/boot.h>) enters here at CPL 0 with RSP
 * on this vCPU's stack, the program's arguments in RDI/RSI and the boot
 * info in RDX.  Nothing here needs more than plain moves and calls (and
 * CR4 for SSE), so a CPU model that gets this far can report what goes
 * wrong later.
 */
	.section .text.boot, "ax"
	.globl _start
	.type _start, @function
_start:
	/* A loader that gave no stack: use ours. */
	testq	%rsp, %rsp
	jnz	1f
	leaq	boot_stack_top(%rip), %rsp
1:	andq	$-16, %rsp
	/*
	 * The C code is built for x86-64-v2 and uses SSE: turn it on
	 * (CR4.OSFXSR, OSXMMEXCPT) before the first call, as Linux does.
	 */
	movq	%cr4, %rax
	orq	$0x600, %rax
	movq	%rax, %cr4
	movq	%rdi, %r12
	movq	%rsi, %r13
	movq	%rdx, %rdi
	call	guest_runtime_init	/* returns this vCPU's index */
	testq	%rax, %rax
	jnz	2f
	movq	%r12, %rdi
	movq	%r13, %rsi
	call	guest_main
	xorl	%edi, %edi
	call	guest_done
2:	movq	%rax, %rdi
	call	guest_ap_main
	xorl	%edi, %edi
	call	guest_done
	.size _start, . - _start

	.section .bss
	.balign 16
boot_stack:
	.skip	16384
boot_stack_top:

	.section .note.GNU-stack, "", @progbits
