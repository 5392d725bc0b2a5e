/*
 * Real-mode start of the application processors (lib/smp.c): copied to SMP_TRAMP_ADDR, a
 * page below 1 MiB, whose number is the STARTUP IPI's vector (SDM Vol. 3A 9.4.4: an AP
 * starts in real mode at CS = vector << 8, IP = 0). It loads the BSP's GDT, enters protected
 * mode, then long mode on the BSP's page tables with its CR0/CR4/EFER (SDM Vol. 3A 10.8.5),
 * and jumps to smp_ap_entry on the stack the BSP set. The BSP fills the smp_tramp_* words
 * of the copy before each STARTUP IPI. 64-bit builds only.
 */
#include "boot.h"
#include "smp.h"

#ifdef __x86_64__
#define REL(x) ((x) - smp_tramp_start + SMP_TRAMP_ADDR)

	.section .rodata		/* never run here: only the copy runs */
	.global smp_tramp_start, smp_tramp_end
	.global smp_tramp_gdt, smp_tramp_cr0, smp_tramp_cr3, smp_tramp_cr4, smp_tramp_efer
	.global smp_tramp_stack, smp_tramp_entry
	.code16
smp_tramp_start:
	cli
	cld
	xor	%ax, %ax
	mov	%ax, %ds
	lgdtl	REL(smp_tramp_gdt)
	mov	%cr0, %eax
	or	$1, %eax		/* PE */
	mov	%eax, %cr0
	ljmpl	$SEL_CODE32, $REL(1f)

	.code32
1:	mov	$SEL_DATA, %eax
	mov	%eax, %ds
	mov	%eax, %es
	mov	%eax, %fs
	mov	%eax, %gs
	mov	%eax, %ss
	mov	REL(smp_tramp_cr4), %eax	/* PAE */
	mov	%eax, %cr4
	mov	REL(smp_tramp_cr3), %eax
	mov	%eax, %cr3
	mov	$0xc0000080, %ecx		/* EFER: LME, and NXE as the BSP has it */
	mov	REL(smp_tramp_efer), %eax
	xor	%edx, %edx
	wrmsr
	mov	REL(smp_tramp_cr0), %eax	/* PG, PE, WP */
	mov	%eax, %cr0
	ljmp	$SEL_CODE64, $REL(2f)

	.code64
2:	mov	REL(smp_tramp_stack), %rsp
	mov	REL(smp_tramp_entry), %rax
	call	*%rax				/* smp_ap_entry(): does not return */
3:	cli
	hlt
	jmp	3b

	.balign 8
smp_tramp_gdt:
	.word	0		/* limit, base (32 bits read by LGDT with operand size 32) */
	.long	0
	.word	0
smp_tramp_cr0:
	.long	0
smp_tramp_cr3:
	.long	0
smp_tramp_cr4:
	.long	0
smp_tramp_efer:
	.long	0
smp_tramp_stack:
	.quad	0
smp_tramp_entry:
	.quad	0
smp_tramp_end:
#endif

	.section .note.GNU-stack, "", @progbits
