/*
 * Application processors start here. A start-up IPI (SDM Vol. 3A 9.4.4)
 * starts an AP in real mode at CS:IP = page:0, page below 1 MiB: boot/smp.c
 * copies ap_trampoline..ap_trampoline_end there and fills ap_tr_cr3 and
 * ap_tr_efer. The AP enters protected mode, then long mode (paging must be
 * enabled from protected mode with PAE and EFER.LME set, SDM 10.8.5) on
 * entry.S's identity map of the low 4 GiB, which also maps the kernel, and
 * jumps to ap_entry64 in the kernel; that loads the hypervisor's own page
 * tables and stack (ap_boot_*) and calls ap_main(). One AP starts at a time.
 */
#define MSR_EFER 0xc0000080
#define CR0_PE 0x1
#define CR0_LONG 0x80010011	/* PG, WP, ET, PE; caches on (CD, NW clear) */
#define CR4_PAE 0x20
#define SEL_CODE64 0x08
#define SEL_DATA 0x10
#define SEL_CODE32 0x18
#define OFF(x) ((x) - ap_trampoline)

	.section .rodata
	.balign 16
	.global ap_trampoline, ap_trampoline_end, ap_tr_cr3, ap_tr_efer
	.code16
ap_trampoline:
	cli
	cld
	xor	%ebx, %ebx
	mov	%cs, %bx
	mov	%bx, %ds
	shl	$4, %ebx		/* the page's linear address */
	/* The copy is where the SIPI put it: patch in its linear addresses. */
	leal	OFF(tr_gdt)(%ebx), %eax
	movl	%eax, OFF(tr_gdtr) + 2
	leal	OFF(tr_pm32)(%ebx), %eax
	movl	%eax, OFF(tr_far32)
	lgdtl	OFF(tr_gdtr)
	mov	%cr0, %eax
	or	$CR0_PE, %eax
	mov	%eax, %cr0
	ljmpl	*OFF(tr_far32)

	.code32
tr_pm32:
	mov	$SEL_DATA, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	mov	$CR4_PAE, %eax
	mov	%eax, %cr4
	mov	OFF(ap_tr_cr3)(%ebx), %eax
	mov	%eax, %cr3
	mov	$MSR_EFER, %ecx
	mov	OFF(ap_tr_efer)(%ebx), %eax
	xor	%edx, %edx
	wrmsr
	mov	$CR0_LONG, %eax
	mov	%eax, %cr0
	ljmp	*OFF(tr_far64)(%ebx)

	.balign 8
tr_gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
	.quad 0x00cf9a000000ffff	/* 0x18: 32-bit code */
tr_gdtr:
	.short tr_gdtr - tr_gdt - 1
	.long 0
	.balign 4
tr_far32:
	.long 0
	.short SEL_CODE32
tr_far64:
	.long ap_entry64
	.short SEL_CODE64
	.balign 4
ap_tr_cr3:	.long 0		/* entry.S's boot_pml4 */
ap_tr_efer:	.long 0		/* LME, and NXE when the boot CPU has it */
ap_trampoline_end:

	.text
	.code64
ap_entry64:
	mov	$SEL_DATA, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	xor	%eax, %eax
	mov	%ax, %fs
	mov	%ax, %gs
	mov	ap_boot_cr3(%rip), %rax
	mov	%rax, %cr3
	mov	ap_boot_stack(%rip), %rsp
	xor	%ebp, %ebp
	mov	ap_boot_index(%rip), %edi
	call	ap_main
1:	cli
	hlt
	jmp	1b

	.data
	.balign 8
	.global ap_boot_cr3, ap_boot_stack, ap_boot_index
ap_boot_cr3:	.quad 0
ap_boot_stack:	.quad 0
ap_boot_index:	.quad 0
