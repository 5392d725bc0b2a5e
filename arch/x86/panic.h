/* panic(): the hypervisor itself is broken; stop the machine (arch/x86/panic.c). */
#ifndef ARCH_X86_PANIC_H
#define ARCH_X86_PANIC_H

#include "lib/types.h"

void NORETURN panic(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

#endif
