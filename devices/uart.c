/*
 * Console devices: a COM1 16550 subset and port 0xe9. Output is collected
 * per line and printed with the guest's name.
 */
#include <string.h>
#include "devices/uart.h"
#include "arch/x86/log.h"

#define UART_LSR_THRE_TEMT 0x60
#define E9_PORT 0xe9

void uart_flush(struct guest *g)
{
	struct uart_state *u = &g->dev->uart;

	if (!u->line_len)
		return;
	log_printf(g->cfg.name, "%.*s", (int)u->line_len, u->line);
	u->line_len = 0;
}

void console_guest_putc(struct guest *g, char c)
{
	struct uart_state *u = &g->dev->uart;

	if (c == '\r')
		return;
	if (c == '\n' || u->line_len == sizeof(u->line)) {
		uart_flush(g);
		if (c == '\n')
			return;
	}
	u->line[u->line_len++] = c;
}

/* COM1 at 0x3f8: registers by offset, DLAB (LCR bit 7) selects divisor. */
bool uart_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	u16 offset = port & 7;

	(void)size;
	struct uart_state *u = &g->dev->uart;
	bool dlab = u->lcr & 0x80;
	u8 v = (u8)*value;

	if (in) {
		switch (offset) {
		case 0: *value = dlab ? u->dll : 0; break;   /* RBR: never any input */
		case 1: *value = dlab ? u->dlm : u->ier; break;
		case 2: *value = 0x01; break;                /* IIR: no interrupt pending */
		case 3: *value = u->lcr; break;
		case 4: *value = u->mcr; break;
		case 5: *value = UART_LSR_THRE_TEMT; break;
		case 6: *value = 0xb0; break;                /* MSR: CTS, DSR, DCD */
		case 7: *value = u->scr; break;
		}
		return true;
	}
	switch (offset) {
	case 0:
		if (dlab)
			u->dll = v;
		else
			console_guest_putc(g, (char)v);
		break;
	case 1:
		if (dlab)
			u->dlm = v;
		else
			u->ier = v & 0x0f;
		break;
	case 3: u->lcr = v; break;
	case 4: u->mcr = v & 0x1f; break;
	case 7: u->scr = v; break;
	default: break;  /* FCR and read-only registers */
	}
	return true;
}

/* Port 0xe9 (Bochs and QEMU's debug console): writes print, reads return 0xe9. */
bool e9_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	(void)port, (void)size;
	if (in)
		*value = E9_PORT;
	else
		console_guest_putc(g, (char)*value);
	return true;
}
