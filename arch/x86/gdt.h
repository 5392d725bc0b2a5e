/* The hypervisor's GDT and TSS (arch/x86/gdt.c). */
#ifndef ARCH_X86_GDT_H
#define ARCH_X86_GDT_H

#include "arch/x86/desc.h"

#define IST_STACK_SIZE 8192
#define IST_STACKS_BYTES (3 * IST_STACK_SIZE)

/* Build and load CPU cpu's GDT and TSS (index as in percpu.h), with its
 * three IST stacks in ist_stacks (16-byte aligned; NULL: the boot CPU's). */
void gdt_init(u32 cpu, u8 (*ist_stacks)[IST_STACK_SIZE]);
/* This CPU's TSS and GDT bases, for the VMCS host-state area. */
u64 tss_base(void);
u64 gdt_base(void);

#endif
