/*
 * Console logging. Every line starts with a timestamp (seconds since boot,
 * from the TSC once calibrated) and the source ("hv" or a guest's name).
 */
#ifndef ARCH_X86_LOG_H
#define ARCH_X86_LOG_H

#include <stdarg.h>
#include "lib/types.h"

#define PRINTF_LIKE(f, a) __attribute__((format(printf, f, a)))

void log_printf(const char *source, const char *fmt, ...) PRINTF_LIKE(2, 3);
void log_vprintf(const char *source, const char *fmt, va_list ap);
/* Raw write with no prefix: for multi-part lines and panic paths. */
void console_write(const char *s, size_t n);
void console_printf(const char *fmt, ...) PRINTF_LIKE(1, 2);

/* TSC ticks per microsecond for timestamps; 0 until calibrated. */
void log_set_tsc_khz(u64 khz);

#define pr_info(...) log_printf("hv", __VA_ARGS__)
#define pr_err(...) log_printf("hv", "error: " __VA_ARGS__)
#define pr_warn(...) log_printf("hv", "warning: " __VA_ARGS__)

#endif
