/*
 * COM1 console, polled (no interrupts: the hypervisor runs with IF=0).
 * The UART is probed with its scratch register rather than assumed, and
 * output is mirrored to port 0xe9 when an emulator answers there (Bochs and
 * QEMU's debugcon read back 0xe9), which costs no emulated baud time.
 */
#include "arch/x86/serial.h"
#include "arch/x86/cpu.h"

#define COM1 0x3f8
#define UART_THR 0
#define UART_IER 1
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define UART_SCR 7
#define LSR_THR_EMPTY 0x20
#define E9_PORT 0xe9

static bool com1_present;
static bool e9_present;

void serial_init(void)
{
	outb(COM1 + UART_SCR, 0x5a);
	com1_present = inb(COM1 + UART_SCR) == 0x5a;
	e9_present = inb(E9_PORT) == E9_PORT;
	if (!com1_present)
		return;
	outb(COM1 + UART_IER, 0x00);
	outb(COM1 + UART_LCR, 0x80);   /* DLAB: divisor 1 = 115200 baud */
	outb(COM1 + 0, 0x01);
	outb(COM1 + 1, 0x00);
	outb(COM1 + UART_LCR, 0x03);   /* 8N1 */
	outb(COM1 + UART_FCR, 0x07);   /* FIFO on, cleared */
	outb(COM1 + UART_MCR, 0x03);
}

bool serial_present(void)
{
	return com1_present;
}

static void com1_putc(char c)
{
	/* Bounded wait: a wedged UART must not hang a panic path forever. */
	for (int i = 0; i < 1000000 && !(inb(COM1 + UART_LSR) & LSR_THR_EMPTY); i++)
		pause();
	outb(COM1 + UART_THR, (u8)c);
}

void serial_write(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (s[i] == '\n' && com1_present)
			com1_putc('\r');
		if (com1_present)
			com1_putc(s[i]);
		if (e9_present)
			outb(E9_PORT, (u8)s[i]);
	}
}
