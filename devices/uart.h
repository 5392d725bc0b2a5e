/* The guest console: COM1 (a 16550 subset) and port 0xe9, printed a line at a time (devices/uart.c). */
#ifndef DEVICES_UART_H
#define DEVICES_UART_H

#include "guest/guest.h"
#include "devices/types.h"

/* Emit any buffered console output (at guest end). */
void uart_flush(struct guest *g);
/* One character of the guest's console output (UART, port 0xe9, HC_PUTS). */
void console_guest_putc(struct guest *g, char c);
bool uart_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool e9_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);

#endif
