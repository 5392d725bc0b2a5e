/* The hypervisor's IDT: every exception is fatal and printed (arch/x86/idt.c). */
#ifndef ARCH_X86_IDT_H
#define ARCH_X86_IDT_H

#include "arch/x86/desc.h"

void idt_init(void);
/* Load the IDT built by idt_init() on this CPU. */
void idt_load(void);

#endif
