/*
 * Multiboot v1 header and entry of the 64-bit guest kernels. They are linked as ELF64 and
 * converted to ELF32 (objcopy -O elf32-i386) so a multiboot loader accepts them, like the
 * kvm-unit-tests x86_64 tests. _start runs in 32-bit protected mode (see entry32.S), builds an
 * identity map of the first 4 GiB with 2 MiB pages and enters long mode (SDM Vol. 3A 10.8.5).
 */
#include "boot.h"

#define CR0_PE		(1 << 0)
#define CR0_PG		(1 << 31)
#define CR4_PAE		(1 << 5)
#define MSR_EFER	0xc0000080
#define EFER_LME	(1 << 8)
#define PTE_P_W		0x3		/* present, writable */
#define PTE_PS		0x80		/* 2 MiB page in a page directory */
#define COM1		0x3f8
#define DEBUG_EXIT	0xf4

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
	mov	%eax, %ebp		/* magic and info survive in EBP/ESI */
	mov	%ebx, %esi
	lgdt	guest_gdt_desc
	ljmp	$SEL_CODE32, $1f
1:	mov	$SEL_DATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %fs
	mov	%eax, %gs
	mov	%eax, %ss

	/* CPUID.80000001h:EDX bit 29 = long mode; say so instead of triple-faulting. */
	mov	$0x80000000, %eax
	cpuid
	cmp	$0x80000001, %eax
	jb	no_long_mode
	mov	$0x80000001, %eax
	cpuid
	bt	$29, %edx
	jnc	no_long_mode

	/* PML4[0] -> PDPT; PDPT[0..3] -> the 4 page directories. Upper halves are written too. */
	movl	$(guest_pdpt + PTE_P_W), guest_pml4
	movl	$0, guest_pml4 + 4
	mov	$guest_pdpt, %edi
	mov	$(guest_pd + PTE_P_W), %eax
	mov	$4, %ecx
2:	mov	%eax, (%edi)
	movl	$0, 4(%edi)
	add	$4096, %eax
	add	$8, %edi
	loop	2b
	/* 2048 PD entries of 2 MiB each: physical address = index << 21. */
	mov	$guest_pd, %edi
	mov	$(PTE_P_W | PTE_PS), %eax
	mov	$2048, %ecx
3:	mov	%eax, (%edi)
	movl	$0, 4(%edi)
	add	$(1 << 21), %eax
	add	$8, %edi
	loop	3b

	mov	%cr4, %eax
	or	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	$guest_pml4, %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$EFER_LME, %eax
	wrmsr
	mov	%cr0, %eax
	or	$(CR0_PG | CR0_PE), %eax
	mov	%eax, %cr0		/* now in compatibility mode, EFER.LMA = 1 */
	ljmp	$SEL_CODE64, $long_mode

	.code64
long_mode:
	/* Upper halves of general registers are undefined after the switch (SDM Vol. 1 3.4.1.1). */
	mov	%ebp, %edi
	mov	%esi, %esi
	mov	$guest_stack_top, %rsp
	call	guest_start		/* guest_start(magic, info) */
4:	cli
	hlt
	jmp	4b

	.code32
no_long_mode:
	mov	$no_lm_msg, %esi
5:	lodsb
	test	%al, %al
	jz	6f
	mov	$COM1, %dx
	out	%al, %dx
	jmp	5b
6:	mov	$1, %eax		/* exit(1) through isa-debug-exit */
	out	%eax, $DEBUG_EXIT
7:	cli
	hlt
	jmp	7b

	.section .rodata
no_lm_msg:
	.asciz "FAIL: CPU has no long mode (CPUID.80000001h:EDX.LM = 0)\n"

	.section .bss
	.balign 4096
guest_pml4:
	.skip 4096
guest_pdpt:
	.skip 4096
guest_pd:
	.skip 4 * 4096

	.section .note.GNU-stack, "", @progbits
