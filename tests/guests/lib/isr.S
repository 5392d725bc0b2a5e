/*
 * Interrupt entry stubs for vectors 0..NR_IDT_VECTORS-1 (exceptions and PIC IRQs). Each stub
 * makes the stack look the same (a dummy error code where the CPU pushes none, SDM Vol. 3A
 * 6.13), pushes its vector, saves the general registers as struct intr_frame and calls
 * interrupt_dispatch(frame) in lib/trap.c, which may change the saved IP (exception recovery).
 */
#include "boot.h"

#ifdef __x86_64__
#define PTR .quad
#else
#define PTR .long
#endif

	.section .rodata
	.balign 8
	.global isr_stub_table
isr_stub_table:			/* filled in by the stubs below, in vector order */

	.text
.macro isr_stub vec
	.balign 16
isr_stub_\vec:
	/* #DF, #TS, #NP, #SS, #GP, #PF, #AC, #CP, #VC, #SX push an error code. */
	.if !((\vec == 8) || (\vec >= 10 && \vec <= 14) || (\vec == 17) || (\vec == 21) || \
	      (\vec == 29) || (\vec == 30))
	push	$0
	.endif
	push	$\vec
	jmp	isr_common
	.pushsection .rodata
	PTR	isr_stub_\vec
	.popsection
.endm

	.irp vec, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, \
		16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28, 29, 30, 31, \
		32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 45, 46, 47
	isr_stub \vec
	.endr
	.if NR_IDT_VECTORS != 48
	.error "isr.S: the stub list above must cover NR_IDT_VECTORS vectors"
	.endif

#ifdef __x86_64__
isr_common:
	push	%rax
	push	%rcx
	push	%rdx
	push	%rbx
	push	%rbp
	push	%rsi
	push	%rdi
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	push	%r12
	push	%r13
	push	%r14
	push	%r15
	cld
	mov	%rsp, %rdi
	call	interrupt_dispatch
	pop	%r15
	pop	%r14
	pop	%r13
	pop	%r12
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rdi
	pop	%rsi
	pop	%rbp
	pop	%rbx
	pop	%rdx
	pop	%rcx
	pop	%rax
	add	$16, %rsp		/* vector and error code */
	iretq
#else
isr_common:
	pusha
	cld
	push	%esp			/* interrupt_dispatch(frame) */
	call	interrupt_dispatch
	add	$4, %esp
	popa
	add	$8, %esp		/* vector and error code */
	iret
#endif

	.section .note.GNU-stack, "", @progbits
