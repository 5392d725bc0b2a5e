/*
 * Ring-3 entry and exit for lib/usermode.c, and the access stubs of probe() (lib/paging.h).
 * The stubs exist twice: in the kernel text for CPL0 probes (supervisor pages, so SMEP lets
 * the kernel run them) and in a page-aligned section of their own, .text.user, that the
 * paging library maps user-accessible for CPL3 probes.
 */
#include "boot.h"
#include "usermode.h"

#ifdef __x86_64__
#define AX %rax
#define BX %rbx
#define CX %rcx
#else
#define AX %eax
#define BX %ebx
#define CX %ecx
#endif

/*
 * AX = address, CX = value to write; a read returns the word in AX. A probed #PF resumes at
 * PREFIX_ret, which returns to the caller from every stub: from read and write directly, and
 * for a faulting fetch first to the instruction after the call in PREFIX_exec (the call's
 * return address is still on the stack).
 */
.macro probe_stubs prefix
	.global \prefix\()_read, \prefix\()_write, \prefix\()_exec, \prefix\()_ret
\prefix\()_read:
	mov	(AX), AX
	ret
\prefix\()_write:
	mov	CX, (AX)
	ret
\prefix\()_exec:
	call	*AX
\prefix\()_ret:
	ret
.endm

	.text
	probe_stubs kprobe

	.section .text.user, "ax"
	.balign 4096
	.global __user_text_begin, __user_text_end
__user_text_begin:
	probe_stubs uprobe
/* Entered by IRET from user_enter with BX = stub; back to the kernel with `int`. */
user_trampoline:
	call	*BX
	int	$USER_RETURN_VECTOR
	.balign 4096
__user_text_end:

	.text
#ifdef __x86_64__
/* unsigned long user_enter(stub, ax, cx, user_sp): rdi, rsi, rdx, rcx. */
	.global user_enter
user_enter:
	push	%rbp
	push	%rbx
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	mov	%rsp, user_kernel_sp(%rip)
	mov	%rdi, %rbx
	mov	%rsi, %rax
	mov	%rcx, %r8
	mov	%rdx, %rcx
	/* IRET frame to CPL3 (SDM Vol. 3A 6.14.3); EFLAGS: IF=0, reserved bit 1. */
	push	$(SEL_UDATA | 3)
	push	%r8
	push	$2
	push	$(SEL_UCODE64 | 3)
	lea	user_trampoline(%rip), %r9
	push	%r9
	iretq

/* void user_leave(unsigned long result): from the return vector's handler, never returns. */
	.global user_leave
user_leave:
	mov	%rdi, %rax
	mov	$SEL_DATA, %edx
	mov	%edx, %ss		/* the CPL3 -> CPL0 switch loaded a null SS */
	mov	%edx, %ds
	mov	%edx, %es
	mov	user_kernel_sp(%rip), %rsp
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%rbx
	pop	%rbp
	ret
#else
/* unsigned long user_enter(stub, ax, cx, user_sp), cdecl. */
	.global user_enter
user_enter:
	push	%ebp
	push	%ebx
	push	%esi
	push	%edi
	mov	%esp, user_kernel_sp
	mov	20(%esp), %ebx
	mov	24(%esp), %eax
	mov	28(%esp), %ecx
	mov	32(%esp), %edx
	push	$(SEL_UDATA | 3)
	push	%edx
	push	$2
	push	$(SEL_UCODE32 | 3)
	push	$user_trampoline
	/* IRET to CPL3 would null DPL0 data segments; give ring 3 its own (SDM Vol. 2A IRET). */
	mov	$(SEL_UDATA | 3), %edx
	mov	%edx, %ds
	mov	%edx, %es
	mov	%edx, %fs
	mov	%edx, %gs
	iret

	.global user_leave
user_leave:
	mov	4(%esp), %eax
	mov	$SEL_DATA, %edx
	mov	%edx, %ds
	mov	%edx, %es
	mov	%edx, %fs
	mov	%edx, %gs
	mov	%edx, %ss
	mov	user_kernel_sp, %esp
	pop	%edi
	pop	%esi
	pop	%ebx
	pop	%ebp
	ret
#endif

	.section .bss
	.balign 8
user_kernel_sp:
	.skip 8

	.section .note.GNU-stack, "", @progbits
