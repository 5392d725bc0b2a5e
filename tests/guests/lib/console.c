/*
 * Console on COM1 (16550 UART, polled) and a small printf: integers, strings, characters and
 * pointers, no floating point. Output goes out one byte at a time once the transmitter
 * holding register is empty (LSR bit 5).
 */
#include "internal.h"

#define COM1 0x3f8
#define UART_THR 0		/* transmit holding register (write, DLAB = 0) */
#define UART_DLL 0		/* divisor latch low (DLAB = 1) */
#define UART_IER 1
#define UART_DLM 1		/* divisor latch high (DLAB = 1) */
#define UART_FCR 2
#define UART_LCR 3
#define UART_MCR 4
#define UART_LSR 5
#define LCR_8N1 0x03
#define LCR_DLAB 0x80
#define LSR_THRE 0x20
/* Give up waiting after this many polls, so a missing UART does not hang the kernel. */
#define THRE_POLL_LIMIT 1000000

void console_init(void)
{
	outb(COM1 + UART_IER, 0);		/* polled: no UART interrupts */
	outb(COM1 + UART_LCR, LCR_DLAB);
	outb(COM1 + UART_DLL, 1);		/* 115200 baud */
	outb(COM1 + UART_DLM, 0);
	outb(COM1 + UART_LCR, LCR_8N1);
	outb(COM1 + UART_FCR, 0x07);		/* enable and clear the FIFOs */
	outb(COM1 + UART_MCR, 0x03);		/* DTR, RTS */
}

void putchar_serial(char c)
{
	for (int i = 0; i < THRE_POLL_LIMIT; i++)
		if (inb(COM1 + UART_LSR) & LSR_THRE)
			break;
	outb(COM1 + UART_THR, c);
}

void puts_serial(const char *s)
{
	while (*s)
		putchar_serial(*s++);
}

struct fmt_spec {
	bool zero_pad;
	bool alt;		/* '#': 0x prefix for %x */
	int width;
	int longs;		/* number of 'l' */
};

/* Right-aligned string field (%s, %c). */
static int print_padded(const char *s, int len, const struct fmt_spec *spec)
{
	int n = 0;

	for (; n + len < spec->width; n++)
		putchar_serial(' ');
	for (int i = 0; i < len; i++)
		putchar_serial(s[i]);
	return n + len;
}

static int print_number(u64 v, u32 base, bool negative, bool prefix, const struct fmt_spec *spec)
{
	char buf[24];
	int i = sizeof(buf);
	u32 digit;

	do {
		v = udiv64(v, base, &digit);
		buf[--i] = "0123456789abcdef"[digit];
	} while (v);

	int digits = sizeof(buf) - i;
	int len = digits + (negative ? 1 : 0) + (prefix ? 2 : 0);
	int pad = spec->width > len ? spec->width - len : 0;

	/* Spaces go before the sign/prefix, zeros after it: "   -42" but "-00042". */
	for (int k = 0; !spec->zero_pad && k < pad; k++)
		putchar_serial(' ');
	if (negative)
		putchar_serial('-');
	if (prefix)
		puts_serial("0x");
	for (int k = 0; spec->zero_pad && k < pad; k++)
		putchar_serial('0');
	for (; i < (int)sizeof(buf); i++)
		putchar_serial(buf[i]);
	return len + pad;
}

static u64 fetch_unsigned(va_list *ap, int longs)
{
	if (longs >= 2)
		return va_arg(*ap, unsigned long long);
	if (longs == 1)
		return va_arg(*ap, unsigned long);
	return va_arg(*ap, unsigned int);
}

static s64 fetch_signed(va_list *ap, int longs)
{
	if (longs >= 2)
		return va_arg(*ap, long long);
	if (longs == 1)
		return va_arg(*ap, long);
	return va_arg(*ap, int);
}

int vprintf(const char *fmt, va_list ap)
{
	va_list args;
	int n = 0;

	va_copy(args, ap);
	for (; *fmt; fmt++) {
		if (*fmt != '%') {
			putchar_serial(*fmt);
			n++;
			continue;
		}
		struct fmt_spec spec = { 0 };

		for (fmt++; *fmt == '0' || *fmt == '#'; fmt++) {
			if (*fmt == '0')
				spec.zero_pad = true;
			else
				spec.alt = true;
		}
		for (; *fmt >= '0' && *fmt <= '9'; fmt++)
			spec.width = spec.width * 10 + (*fmt - '0');
		for (; *fmt == 'l'; fmt++)
			spec.longs++;

		switch (*fmt) {
		case 'd':
		case 'i': {
			s64 v = fetch_signed(&args, spec.longs);

			n += print_number(v < 0 ? -(u64)v : (u64)v, 10, v < 0, false, &spec);
			break;
		}
		case 'u':
			n += print_number(fetch_unsigned(&args, spec.longs), 10, false, false,
					  &spec);
			break;
		case 'x':
		case 'X':
			n += print_number(fetch_unsigned(&args, spec.longs), 16, false, spec.alt,
					  &spec);
			break;
		case 'p':
			n += print_number((unsigned long)va_arg(args, void *), 16, false, true,
					  &spec);
			break;
		case 's': {
			const char *s = va_arg(args, const char *);

			if (!s)
				s = "(null)";
			n += print_padded(s, strlen(s), &spec);
			break;
		}
		case 'c': {
			char c = va_arg(args, int);

			n += print_padded(&c, 1, &spec);
			break;
		}
		case '%':
			putchar_serial('%');
			n++;
			break;
		case '\0':
			fmt--;		/* a lone '%' at the end: stop at the terminator */
			break;
		default:		/* unknown conversion: print it as is */
			putchar_serial('%');
			putchar_serial(*fmt);
			n += 2;
			break;
		}
	}
	va_end(args);
	return n;
}

/*
 * Several CPUs (lib/smp.c) print whole lines: printf() and report() hold this lock, which
 * the holder's own nested calls (an exception or interrupt handler printing) take again.
 */
static volatile u32 console_taken;
static volatile int console_owner = -1;
static unsigned int console_depth;

void console_lock(void)
{
	int me = (int)smp_id();

	if (__atomic_load_n(&console_owner, __ATOMIC_RELAXED) == me) {
		console_depth++;
		return;
	}
	while (__atomic_exchange_n(&console_taken, 1, __ATOMIC_ACQUIRE))
		pause();
	console_owner = me;
	console_depth = 1;
}

void console_unlock(void)
{
	if (--console_depth)
		return;
	console_owner = -1;
	__atomic_store_n(&console_taken, 0, __ATOMIC_RELEASE);
}

int printf(const char *fmt, ...)
{
	va_list ap;
	int n;

	va_start(ap, fmt);
	console_lock();
	n = vprintf(fmt, ap);
	console_unlock();
	va_end(ap);
	return n;
}
