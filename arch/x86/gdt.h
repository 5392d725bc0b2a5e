/* The hypervisor's GDT and TSS (arch/x86/gdt.c). */
#ifndef ARCH_X86_GDT_H
#define ARCH_X86_GDT_H

#include "arch/x86/desc.h"

void gdt_init(void);
/* Base of the TSS, for the VMCS host-state area. */
u64 tss_base(void);

#endif
