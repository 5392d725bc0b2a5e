/*
 * VM entry and exit. vmx_enter(struct guest_regs *regs, int launched):
 * saves the host's callee-saved registers, points HOST_RSP at this stack,
 * loads the guest GPRs and CR2, and executes VMLAUNCH or VMRESUME.
 *  - On a VM exit the CPU continues at vmx_exit_entry (HOST_RIP) with
 *    RSP = HOST_RSP; guest GPRs and CR2 are stored back and 0 returned.
 *  - If the instruction itself fails (VMfail, SDM 31.2), it returns
 *    1 (VMfailInvalid) or 2 (VMfailValid) with the host state intact.
 * Offsets of struct guest_regs and HOST_RSP: vmx/entry.h, checked there.
 */
#include "vmx/entry.h"

	.text
	.global vmx_enter
vmx_enter:
	push	%rbp
	push	%rbx
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	push	%rdi			/* regs pointer, found again at exit */

	mov	$ENTRY_HOST_RSP, %rax
	vmwrite	%rsp, %rax
	jbe	vmwrite_failed

	mov	R_CR2(%rdi), %rax
	mov	%rax, %cr2
	cmp	$0, %esi		/* flags survive the MOVs below */
	mov	R_RAX(%rdi), %rax
	mov	R_RCX(%rdi), %rcx
	mov	R_RDX(%rdi), %rdx
	mov	R_RBX(%rdi), %rbx
	mov	R_RBP(%rdi), %rbp
	mov	R_RSI(%rdi), %rsi
	mov	R_R8(%rdi), %r8
	mov	R_R9(%rdi), %r9
	mov	R_R10(%rdi), %r10
	mov	R_R11(%rdi), %r11
	mov	R_R12(%rdi), %r12
	mov	R_R13(%rdi), %r13
	mov	R_R14(%rdi), %r14
	mov	R_R15(%rdi), %r15
	mov	R_RDI(%rdi), %rdi
	jne	1f
	vmlaunch
	jmp	entry_failed
1:	vmresume
entry_failed:
	/* CF=1: VMfailInvalid, ZF=1: VMfailValid */
	mov	$1, %eax
	jc	2f
	mov	$2, %eax
2:	pop	%rdi
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbx
	pop	%rbp
	ret

vmwrite_failed:
	mov	$1, %eax
	jc	2b
	mov	$2, %eax
	jmp	2b

	.global vmx_exit_entry
vmx_exit_entry:
	push	%rdi			/* guest RDI */
	mov	8(%rsp), %rdi		/* regs pointer */
	mov	%rax, R_RAX(%rdi)
	mov	%rcx, R_RCX(%rdi)
	mov	%rdx, R_RDX(%rdi)
	mov	%rbx, R_RBX(%rdi)
	mov	%rbp, R_RBP(%rdi)
	mov	%rsi, R_RSI(%rdi)
	mov	%r8, R_R8(%rdi)
	mov	%r9, R_R9(%rdi)
	mov	%r10, R_R10(%rdi)
	mov	%r11, R_R11(%rdi)
	mov	%r12, R_R12(%rdi)
	mov	%r13, R_R13(%rdi)
	mov	%r14, R_R14(%rdi)
	mov	%r15, R_R15(%rdi)
	pop	%rax
	mov	%rax, R_RDI(%rdi)
	mov	%cr2, %rax
	mov	%rax, R_CR2(%rdi)
	xor	%eax, %eax
	jmp	2b
