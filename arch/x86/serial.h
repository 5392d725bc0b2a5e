/* Polled 16550 UART (COM1) and the Bochs/QEMU port 0xe9 debug console. */
#ifndef ARCH_X86_SERIAL_H
#define ARCH_X86_SERIAL_H

#include "lib/types.h"

void serial_init(void);
void serial_write(const char *s, size_t n);
bool serial_present(void);

#endif
