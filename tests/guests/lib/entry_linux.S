/*
 * Entry of guest kernels booted as Linux (linuxboot): a "Linux" ELF note makes the loader
 * treat the image as a vmlinux and enter _start by the x86 64-bit boot protocol. The state
 * it promises (CS, DS, SS, RFLAGS, GDTR, RSI = zero page) is saved before anything changes
 * it, for the test to check; then the library's GDT, stack and C entry as for plain ELF64.
 */
#include "boot.h"

	.section .linux_note, "a"
	.balign 4
	.long 6, 4, 0x100		/* namesz, descsz, LINUX_ELFNOTE_BUILD_SALT */
	.asciz "Linux"
	.balign 4
	.asciz "tst"

	.data
	.global boot_rsi, boot_rflags, boot_cs, boot_ds, boot_ss, boot_gdtr
	.balign 8
boot_rsi:	.quad 0
boot_rflags:	.quad 0
boot_cs:	.word 0
boot_ds:	.word 0
boot_ss:	.word 0
boot_gdtr:	.skip 10

	.text
	.code64
	.global _start
_start:
	mov	%rsi, boot_rsi(%rip)
	mov	%cs, %ax
	mov	%ax, boot_cs(%rip)
	mov	%ds, %ax
	mov	%ax, boot_ds(%rip)
	mov	%ss, %ax
	mov	%ax, boot_ss(%rip)
	sgdt	boot_gdtr(%rip)
	mov	$guest_stack_top, %rsp
	pushfq
	pop	%rax
	mov	%rax, boot_rflags(%rip)
	cli
	cld
	lgdt	guest_gdt_desc
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
	xor	%edi, %edi		/* no multiboot magic: the zero page is the information */
	xor	%esi, %esi
	call	guest_start
2:	cli
	hlt
	jmp	2b

	.section .note.GNU-stack, "", @progbits
