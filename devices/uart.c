/*
 * Console devices: a COM1 16550 subset and port 0xe9. Output is collected
 * per line and printed with the guest's name.
 */
#include <string.h>
#include "devices/uart.h"
#include "devices/pic.h"
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

/*
 * COM1 at 0x3f8 on IRQ 4, a 16550A as its data sheet describes it (and as
 * Linux's 8250 driver probes it: scratch register, FIFO bits in IIR,
 * loopback through MSR, THRE interrupt re-asserted when IER enables it).
 * Transmission is instant, so THR is always empty again when read. There
 * is no outside input: the receiver only sees what loopback mode sends.
 * IRQ 4 follows IIR, gated by MCR's OUT2 as on a PC, and reaches the PIC on
 * its rising edge (ISA interrupts are edge-triggered).
 */
#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFOS_ON 0xc0
#define FCR_ENABLE 0x01
#define MCR_OUT2 0x08
#define MCR_LOOP 0x10
#define LSR_DR 0x01
#define MSR_IDLE 0xb0   /* CTS, DSR, DCD: a terminal is there */
#define COM1_IRQ 4

static u8 uart_iir_source(const struct uart_state *u)
{
	if ((u->ier & IER_RDI) && u->rx_full)
		return IIR_RDI;
	if ((u->ier & IER_THRI) && u->thre_pending)
		return IIR_THRI;
	return IIR_NO_INT;
}

static void uart_update_irq(struct guest *g)
{
	struct uart_state *u = &g->dev->uart;
	bool line = (u->mcr & MCR_OUT2) && uart_iir_source(u) != IIR_NO_INT;

	if (line && !u->irq_line)
		pic_raise_irq(g, COM1_IRQ);
	u->irq_line = line;
}

/* Loopback: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD (16550 data sheet, MCR bit 4). */
static u8 uart_msr(const struct uart_state *u)
{
	if (!(u->mcr & MCR_LOOP))
		return MSR_IDLE;
	return (u8)(((u->mcr & 0x02) << 3) | ((u->mcr & 0x01) << 5) | ((u->mcr & 0x04) << 4) |
		    ((u->mcr & 0x08) << 4));
}

static u8 uart_read(struct uart_state *u, u16 offset)
{
	bool dlab = u->lcr & 0x80;
	u8 v;

	switch (offset) {
	case 0:
		if (dlab)
			return u->dll;
		u->rx_full = false;
		return u->rbr;
	case 1: return dlab ? u->dlm : u->ier;
	case 2:
		v = uart_iir_source(u);
		if (v == IIR_THRI)
			u->thre_pending = false;  /* reading IIR clears a THRE interrupt */
		return (u8)(v | ((u->fcr & FCR_ENABLE) ? IIR_FIFOS_ON : 0));
	case 3: return u->lcr;
	case 4: return u->mcr;
	case 5: return (u8)(UART_LSR_THRE_TEMT | (u->rx_full ? LSR_DR : 0));
	case 6: return uart_msr(u);
	default: return u->scr;
	}
}

static void uart_write(struct guest *g, struct uart_state *u, u16 offset, u8 v)
{
	bool dlab = u->lcr & 0x80;

	switch (offset) {
	case 0:
		if (dlab) {
			u->dll = v;
			break;
		}
		if (u->mcr & MCR_LOOP) {
			u->rbr = v;
			u->rx_full = true;
		} else {
			console_guest_putc(g, (char)v);
		}
		u->thre_pending = true;  /* sent at once: THR is empty again */
		break;
	case 1:
		if (dlab) {
			u->dlm = v;
			break;
		}
		/* Enabling the THRE interrupt while THR is empty raises it. */
		if ((u->ier ^ v) & IER_THRI)
			u->thre_pending = v & IER_THRI;
		u->ier = v & 0x0f;
		break;
	case 2:
		u->fcr = v & 0xc9;  /* enable, DMA mode, trigger level; clear bits self-reset */
		if (v & 0x02)
			u->rx_full = false;
		break;
	case 3: u->lcr = v; break;
	case 4: u->mcr = v & 0x1f; break;
	case 7: u->scr = v; break;
	default: break;  /* LSR and MSR are read-only */
	}
}

bool uart_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	struct uart_state *u = &g->dev->uart;

	(void)size;
	if (in)
		*value = uart_read(u, port & 7);
	else
		uart_write(g, u, port & 7, (u8)*value);
	uart_update_irq(g);
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
