/*
 * C entry of every guest kernel, called by lib/entry*.S on the boot stack with interrupts
 * off: set up the console and the IDT, find the multiboot info, run the test's main() and
 * exit with its result.
 */
#include "internal.h"

void guest_start(u32 magic, unsigned long info)
{
	console_init();
	trap_init();
	multiboot_init(magic, info);
	printf("guest: %s-bit, cmdline \"%s\", RAM end %#llx\n",
	       sizeof(long) == 8 ? "64" : "32", cmdline(), ram_end());
	exit(main());
}
