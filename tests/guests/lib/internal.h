/* Functions the library's own files call on each other; tests use libguest.h only. */
#ifndef GUEST_INTERNAL_H
#define GUEST_INTERNAL_H

#include "libguest.h"

void guest_start(u32 magic, unsigned long info) __attribute__((noreturn));
void console_init(void);
void trap_init(void);
void interrupt_dispatch(struct intr_frame *frame);
void irq_dispatch(unsigned int irq);
void multiboot_init(u32 magic, unsigned long info);

#endif
