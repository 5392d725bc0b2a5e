/*
 * Console log lines with timestamp and source prefix (see log.h), written to
 * every console sink: the serial port (and port 0xe9) when probed present,
 * and the framebuffer console once boot_main has started it.
 */
#include <stdio.h>
#include <string.h>
#include "arch/x86/log.h"
#include "arch/x86/serial.h"
#include "arch/x86/fbcon.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/spinlock.h"

static u64 tsc_khz;
static u64 tsc_at_boot;

void log_set_tsc_khz(u64 khz)
{
	tsc_khz = khz;
}

/*
 * One writer at a time, so lines from several CPUs never interleave. A CPU
 * that faults while it writes comes back here with its panic message: it
 * owns the lock already and writes on (the panic ends the run anyway).
 */
static spinlock_t console_lock;
static u32 console_owner = ~0u;

void console_write(const char *s, size_t n)
{
	static bool in_fbcon;
	u32 me = this_cpu_index();
	bool nested = __atomic_load_n(&console_owner, __ATOMIC_RELAXED) == me;

	if (!nested) {
		spin_lock(&console_lock);
		console_owner = me;
	}
	serial_write(s, n);
	/*
	 * A fault while drawing (say, a framebuffer the page tables lost) panics,
	 * and the panic message comes back here: serial only, then.
	 */
	if (fbcon_active() && !in_fbcon) {
		in_fbcon = true;
		fbcon_write(s, n);
		in_fbcon = false;
	}
	if (!nested) {
		console_owner = ~0u;
		spin_unlock(&console_lock);
	}
}

void console_printf(const char *fmt, ...)
{
	char buf[256];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	if (n > 0)
		console_write(buf, (size_t)n < sizeof(buf) ? (size_t)n : sizeof(buf) - 1);
}

void log_vprintf(const char *source, const char *fmt, va_list ap)
{
	char buf[320];
	size_t len;
	int n;

	if (!tsc_at_boot)
		tsc_at_boot = rdtsc();
	if (tsc_khz) {
		u64 us = (rdtsc() - tsc_at_boot) * 1000 / tsc_khz;

		n = snprintf(buf, sizeof(buf), "[%4llu.%06llu] %s: ",
			     (unsigned long long)(us / 1000000), (unsigned long long)(us % 1000000),
			     source);
	} else {
		n = snprintf(buf, sizeof(buf), "[   0.000000] %s: ", source);
	}
	len = (size_t)n;
	n = vsnprintf(buf + len, sizeof(buf) - len - 1, fmt, ap);
	len += n < 0 ? 0 : ((size_t)n < sizeof(buf) - len - 1 ? (size_t)n : sizeof(buf) - len - 2);
	if (len == 0 || buf[len - 1] != '\n')
		buf[len++] = '\n';
	console_write(buf, len);
}

void log_printf(const char *source, const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	log_vprintf(source, fmt, ap);
	va_end(ap);
}
