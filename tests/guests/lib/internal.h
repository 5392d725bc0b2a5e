/* Functions the library's own files call on each other; tests use libguest.h only. */
#ifndef GUEST_INTERNAL_H
#define GUEST_INTERNAL_H

#include "libguest.h"

void guest_start(u32 magic, unsigned long info) __attribute__((noreturn));
void console_init(void);
/* Whole lines from several CPUs (lib/console.c); nests on the holding CPU. */
void console_lock(void);
void console_unlock(void);
/* This CPU's index (lib/smp.c; 0 in 32-bit builds). */
unsigned int smp_id(void);
void trap_init(void);
void interrupt_dispatch(struct intr_frame *frame);
void irq_dispatch(unsigned int irq);
void multiboot_init(u32 magic, unsigned long info);

#endif
