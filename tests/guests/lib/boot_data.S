/*
 * Data every entry path needs: the guest GDT (flat 32-bit code, data and 64-bit code
 * segments, SDM Vol. 3A 3.4.5) and the boot stack. Shared by the 32-bit and 64-bit builds.
 */
#include "boot.h"

	.section .rodata
	.balign 8
	.global guest_gdt_desc
guest_gdt:
	.quad 0				/* null descriptor */
	.quad 0x00cf9a000000ffff	/* SEL_CODE32: base 0, limit 4 GiB, D=1, execute/read */
	.quad 0x00cf92000000ffff	/* SEL_DATA: base 0, limit 4 GiB, read/write */
	.quad 0x00af9a000000ffff	/* SEL_CODE64: L=1 (SDM Vol. 3A 5.2.1) */
guest_gdt_end:

	.balign 8
	.word 0				/* so that the base below is 4-byte aligned */
guest_gdt_desc:
	.word guest_gdt_end - guest_gdt - 1
	/* LGDT reads a 32-bit base outside 64-bit mode and a 64-bit one inside it. */
	.long guest_gdt
	.long 0

	.section .bss
	.balign 16
	.global guest_stack_top
guest_stack:
	.skip GUEST_STACK_SIZE
guest_stack_top:

	.section .note.GNU-stack, "", @progbits
