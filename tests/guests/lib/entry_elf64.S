/*
 * Entry of plain ELF64 guest kernels (no multiboot header). Per tests/guests/PLATFORM.md the
 * loader enters _start in 64-bit mode, paging on (identity map of the first 4 GiB), with
 * RDI = the multiboot info address and no stack. The loader's state is left as it is (tests
 * inspect it); only the GDT is replaced so the IDT's code selector means what we want.
 */
#include "boot.h"

	.text
	.code64
	.global _start
_start:
	cli
	cld
	mov	$guest_stack_top, %rsp
	mov	%rdi, %rbx
	lgdt	guest_gdt_desc
	/* There is no far JMP with an immediate in 64-bit mode: reload CS with a far return. */
	push	$SEL_CODE64
	lea	1f(%rip), %rax
	push	%rax
	lretq
1:	mov	$SEL_DATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %fs
	mov	%eax, %gs
	mov	%eax, %ss
	/* This entry carries no magic in EAX; the contract guarantees RDI instead. */
	mov	$MB_BOOTLOADER_MAGIC, %edi
	mov	%rbx, %rsi
	call	guest_start
2:	cli
	hlt
	jmp	2b

	.section .note.GNU-stack, "", @progbits
