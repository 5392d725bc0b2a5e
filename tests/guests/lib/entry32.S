/*
 * Multiboot v1 header and entry of the 32-bit guest kernels. The loader (QEMU -kernel, or
 * umbra per tests/guests/PLATFORM.md) enters _start in 32-bit protected mode with paging off,
 * EAX = 0x2BADB002 and EBX = the multiboot info address, without a usable stack.
 */
#include "boot.h"

	.section .multiboot, "a"
	.balign 4
	.long MB_HEADER_MAGIC
	.long MB_HEADER_FLAG_MEMINFO
	.long -(MB_HEADER_MAGIC + MB_HEADER_FLAG_MEMINFO)

	.text
	.code32
	.global _start
_start:
	cli
	cld
	mov	$guest_stack_top, %esp
	/* Our own GDT: the loader's one may be anywhere, even in memory the test overwrites. */
	lgdt	guest_gdt_desc
	ljmp	$SEL_CODE32, $1f
1:	mov	$SEL_DATA, %ecx
	mov	%ecx, %ds
	mov	%ecx, %es
	mov	%ecx, %fs
	mov	%ecx, %gs
	mov	%ecx, %ss
	push	%ebx			/* guest_start(magic, info) */
	push	%eax
	call	guest_start
2:	cli
	hlt
	jmp	2b

	.section .note.GNU-stack, "", @progbits
