/*
 * Entry stubs for interrupt vectors 48-255 (lib/lapic.c): each is 16 bytes, pushes its vector
 * and jumps to a common part that saves the registers the C calling convention lets a callee
 * clobber, calls apic_vector_dispatch(vector) and returns with IRET. No error code: nothing in
 * this range is an exception.
 */
#define FIRST_VECTOR 48		/* APIC_FIRST_VECTOR in lib/platform.h */

	.text
	.balign 16
	.global apic_isr_stubs
apic_isr_stubs:
	.set vec, FIRST_VECTOR
	.rept 256 - FIRST_VECTOR
	.balign 16
	push	$vec			/* push + jmp <= 10 bytes: .balign keeps them 16 apart */
	jmp	apic_isr_common
	.set vec, vec + 1
	.endr

#ifdef __x86_64__
apic_isr_common:
	push	%rax
	push	%rcx
	push	%rdx
	push	%rsi
	push	%rdi
	push	%r8
	push	%r9
	push	%r10
	push	%r11
	mov	72(%rsp), %rdi		/* the vector, above the nine saved registers */
	/* The CPU aligned RSP to 16 before its 5-word frame; +vector +9 registers = 8 off. */
	sub	$8, %rsp
	cld
	call	apic_vector_dispatch
	add	$8, %rsp
	pop	%r11
	pop	%r10
	pop	%r9
	pop	%r8
	pop	%rdi
	pop	%rsi
	pop	%rdx
	pop	%rcx
	pop	%rax
	add	$8, %rsp		/* the vector */
	iretq
#else
apic_isr_common:
	push	%eax
	push	%ecx
	push	%edx
	mov	12(%esp), %eax		/* the vector, above the three saved registers */
	cld
	push	%eax
	call	apic_vector_dispatch
	add	$4, %esp
	pop	%edx
	pop	%ecx
	pop	%eax
	add	$4, %esp		/* the vector */
	iret
#endif
