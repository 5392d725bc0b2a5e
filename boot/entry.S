/*
 * Multiboot2 header and the 32-bit entry point. GRUB enters here in 32-bit
 * protected mode, paging off, EAX = multiboot2 magic, EBX = info address
 * (Multiboot2 spec 3.3). We zero .bss, identity-map the first 4 GiB with
 * 2 MiB pages, enable long mode (SDM Vol. 3A 10.8.5) and call boot_main().
 * mm/paging.c later replaces these tables with ones that protect the image.
 *
 * The same entry serves GRUB on UEFI: with no "EFI boot services" header
 * tag (Multiboot2 spec 3.1.12) GRUB leaves boot services itself and enters
 * here exactly as on a BIOS, passing the EFI memory map and system table
 * as information tags instead of relying on legacy devices.
 */
#define MB2_MAGIC        0xe85250d6
#define MB2_ARCH_I386    0
#define MB2_TAG_FRAMEBUFFER 5
#define MB2_TAG_OPTIONAL 1
#define MSR_EFER         0xc0000080
#define EFER_LME         (1 << 8)
#define EFER_NXE         (1 << 11)
#define COM1             0x3f8

	.section .multiboot2, "a"
	.balign 8
mb2_header:
	.long MB2_MAGIC
	.long MB2_ARCH_I386
	.long mb2_header_end - mb2_header
	.long -(MB2_MAGIC + MB2_ARCH_I386 + (mb2_header_end - mb2_header))
	/*
	 * Ask for a linear framebuffer, any mode (0 x 0 x 0: the loader's
	 * choice), for arch/x86/fbcon.c. Optional: a BIOS GRUB without video
	 * drivers keeps VGA text mode and boots us anyway.
	 */
	.balign 8
	.short MB2_TAG_FRAMEBUFFER
	.short MB2_TAG_OPTIONAL
	.long 20
	.long 0			/* width */
	.long 0			/* height */
	.long 0			/* depth */
	.balign 8
	/* end tag */
	.short 0
	.short 0
	.long 8
mb2_header_end:

	.section .text.boot, "ax"
	.code32
	.global _start
_start:
	cli
	cld
	mov	%eax, %esi		/* keep magic and info across the bss clear */
	mov	%ebx, %ebp

	mov	$__bss_start, %edi
	mov	$__bss_end, %ecx
	sub	%edi, %ecx
	shr	$2, %ecx
	xor	%eax, %eax
	rep stosl

	mov	%esi, boot_mb_magic
	mov	%ebp, boot_mb_info
	mov	$boot_stack_top, %esp

	/* Long mode is required; say so on COM1 instead of crashing. */
	mov	$0x80000000, %eax
	cpuid
	cmp	$0x80000001, %eax
	jb	no_long_mode
	mov	$0x80000001, %eax
	cpuid
	test	$(1 << 29), %edx
	jz	no_long_mode
	mov	%edx, %ebx		/* bit 20: NX available */

	/* PML4[0] -> PDPT, PDPT[0..3] -> PD[0..3], each PD entry a 2 MiB page. */
	mov	$boot_pdpt, %eax
	or	$0x3, %eax
	mov	%eax, boot_pml4
	mov	$boot_pd, %eax
	or	$0x3, %eax
	mov	$boot_pdpt, %edi
	mov	$4, %ecx
1:	mov	%eax, (%edi)
	add	$4096, %eax
	add	$8, %edi
	loop	1b
	mov	$boot_pd, %edi
	mov	$0x83, %eax		/* present, writable, 2 MiB */
	mov	$2048, %ecx
2:	mov	%eax, (%edi)
	add	$0x200000, %eax
	add	$8, %edi
	loop	2b

	mov	$boot_pml4, %eax
	mov	%eax, %cr3
	mov	%cr4, %eax
	or	$(1 << 5), %eax		/* PAE */
	mov	%eax, %cr4
	mov	$MSR_EFER, %ecx
	rdmsr
	or	$EFER_LME, %eax
	test	$(1 << 20), %ebx
	jz	3f
	or	$EFER_NXE, %eax
3:	wrmsr
	mov	%cr0, %eax
	or	$0x80010001, %eax	/* PG, WP, PE */
	mov	%eax, %cr0

	lgdt	boot_gdt_ptr
	ljmp	$0x08, $long_mode_entry

no_long_mode:
	mov	$no_lm_msg, %esi
4:	lodsb
	test	%al, %al
	jz	6f
	mov	%al, %ah
	mov	$(COM1 + 5), %dx
5:	in	%dx, %al
	test	$0x20, %al
	jz	5b
	mov	$COM1, %dx
	mov	%ah, %al
	out	%al, %dx
	jmp	4b
6:	hlt
	jmp	6b

	.code64
long_mode_entry:
	mov	$0x10, %ax
	mov	%ax, %ds
	mov	%ax, %es
	mov	%ax, %ss
	xor	%eax, %eax
	mov	%ax, %fs
	mov	%ax, %gs
	mov	$boot_stack_top, %rsp
	xor	%ebp, %ebp
	mov	boot_mb_magic(%rip), %edi
	mov	boot_mb_info(%rip), %esi
	call	boot_main
7:	cli
	hlt
	jmp	7b

	.section .rodata
no_lm_msg:
	.asciz "umbra: this CPU has no 64-bit long mode; cannot start\r\n"
	.balign 8
boot_gdt:
	.quad 0
	.quad 0x00af9a000000ffff	/* 0x08: 64-bit code */
	.quad 0x00cf92000000ffff	/* 0x10: data */
boot_gdt_ptr:
	.short boot_gdt_ptr - boot_gdt - 1
	.long boot_gdt

	.section .bss
	.balign 4096
	.global boot_pml4
boot_pml4:	.skip 4096
boot_pdpt:	.skip 4096
boot_pd:	.skip 4 * 4096
	.balign 16
	.global boot_stack_top
boot_stack:	.skip 32768
boot_stack_top:
	.balign 4
	.global boot_mb_magic, boot_mb_info
boot_mb_magic:	.long 0
boot_mb_info:	.long 0
