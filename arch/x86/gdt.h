/* The hypervisor's GDT and TSS (arch/x86/gdt.c). */
#ifndef ARCH_X86_GDT_H
#define ARCH_X86_GDT_H

#include "arch/x86/desc.h"

/* Build and load CPU cpu's GDT and TSS (index as in percpu.h). */
void gdt_init(u32 cpu);
/* This CPU's TSS and GDT bases, for the VMCS host-state area. */
u64 tss_base(void);
u64 gdt_base(void);

#endif
