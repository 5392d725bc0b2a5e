/*
 * Constants shared by the guest library's assembly entry code and its C code:
 * segment selectors of the guest GDT, multiboot v1 numbers, stack size.
 */
#ifndef GUEST_BOOT_H
#define GUEST_BOOT_H

/* Guest GDT (lib/gdt.S): one flat 32-bit code, one flat data, one 64-bit code segment. */
#define SEL_CODE32 0x08
#define SEL_DATA 0x10
#define SEL_CODE64 0x18

/* Multiboot v1 (Multiboot Specification 0.6.96, section 3.1.1 and 3.2). */
#define MB_HEADER_MAGIC 0x1badb002
#define MB_HEADER_FLAG_MEMINFO (1 << 1)
#define MB_BOOTLOADER_MAGIC 0x2badb002

#define GUEST_STACK_SIZE 16384

/* Interrupt vectors: exceptions 0-31, then the two PICs' IRQ 0-15 (lib/irq.c remaps them). */
#define IRQ_VECTOR_BASE 32
#define NR_IDT_VECTORS 48

#endif
