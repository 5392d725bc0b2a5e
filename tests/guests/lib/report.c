/*
 * Test results in the kvm-unit-tests format that run scripts grep for: "PASS: ", "FAIL: ",
 * "SKIP: " lines, a final "SUMMARY: " line, and the exit code through isa-debug-exit.
 */
#include "internal.h"

#define DEBUG_EXIT_PORT 0xf4

static unsigned int nr_tests, nr_failures, nr_skipped;

static void report_line(const char *prefix, const char *fmt, va_list ap)
{
	puts_serial(prefix);
	vprintf(fmt, ap);
	putchar_serial('\n');
}

void report(bool pass, const char *fmt, ...)
{
	va_list ap;

	console_lock();		/* counts and line together, whichever CPU reports */
	nr_tests++;
	if (!pass)
		nr_failures++;
	va_start(ap, fmt);
	report_line(pass ? "PASS: " : "FAIL: ", fmt, ap);
	va_end(ap);
	console_unlock();
}

void report_skip(const char *fmt, ...)
{
	va_list ap;

	/* Skips count as tests, as in kvm-unit-tests. */
	console_lock();
	nr_tests++;
	nr_skipped++;
	va_start(ap, fmt);
	report_line("SKIP: ", fmt, ap);
	va_end(ap);
	console_unlock();
}

void report_umbra(bool pass, const char *fmt, ...)
{
	va_list ap;

	console_lock();
	va_start(ap, fmt);
	if (pass || is_umbra()) {
		nr_tests++;
		nr_failures += !pass;
		report_line(pass ? "PASS: " : "FAIL: ", fmt, ap);
	} else {
		nr_tests++;
		nr_skipped++;
		puts_serial("SKIP: ");
		vprintf(fmt, ap);
		puts_serial(" (not so here; only umbra promises it)\n");
	}
	va_end(ap);
	console_unlock();
}

int report_summary(void)
{
	printf("SUMMARY: %u tests, %u unexpected failures, %u skipped\n",
	       nr_tests, nr_failures, nr_skipped);
	return nr_failures ? 1 : 0;
}

void exit(int code)
{
	outl(DEBUG_EXIT_PORT, code);
	/* No debug-exit device (or it ignored us): stop here for good. */
	for (;;)
		asm volatile("cli; hlt");
}
