/*
 * panic(): the hypervisor itself is broken; stop the machine. Re-entrant:
 * a fault while printing the first panic still ends the run, printing less.
 */
#include <stdio.h>
#include "arch/x86/log.h"
#include "arch/x86/cpu.h"
#include "arch/x86/machine.h"
#include "arch/x86/panic.h"

static int panic_depth;

static void print_backtrace(void)
{
	u64 *frame = __builtin_frame_address(0);

	console_printf("backtrace:");
	for (int i = 0; i < 16 && frame && ((u64)frame & 7) == 0 && (u64)frame > 0x1000; i++) {
		console_printf(" %#llx", (unsigned long long)frame[1]);
		frame = (u64 *)frame[0];
	}
	console_printf("\n");
}

void NORETURN panic(const char *fmt, ...)
{
	va_list ap;

	int depth;

	cli();
	depth = __atomic_add_fetch(&panic_depth, 1, __ATOMIC_SEQ_CST);  /* CPUs may panic at once */
	if (depth == 1) {
		char msg[256];

		va_start(ap, fmt);
		vsnprintf(msg, sizeof(msg), fmt, ap);
		va_end(ap);
		log_printf("hv", "PANIC: %s", msg);
		print_backtrace();
		log_printf("hv", "run ended: HV-ERROR (panic)");
	} else if (depth == 2) {
		static const char nested[] =
			"\nPANIC while panicking; stopping\nhv: run ended: HV-ERROR (nested panic)\n";

		console_write(nested, sizeof(nested) - 1);
	}
	machine_exit(RUN_HV_ERROR);
}
