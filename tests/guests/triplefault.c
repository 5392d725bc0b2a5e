/*
 * Triple fault on purpose: with an empty IDT (limit 0) every exception is itself a #GP, then
 * a #DF, then a shutdown (SDM Vol. 3A 6.15, "Interrupt 8"). The hypervisor must end this
 * guest and report it; QEMU with -no-reboot just exits with status 0. Command line: "gp"
 * starts from a #GP (bad segment selector) instead of INT3; "realmode" clears CR0.PE
 * instead (32-bit build, paging off) while running 32-bit code, which a shadow-paging guest
 * (real mode as virtual-8086 mode, 16-bit only) cannot do: the hypervisor must end it saying so.
 */
#include "libguest.h"

/* Index 0x1fff: far past the 4-entry guest GDT, so loading it raises #GP(0xfff8). */
#define BAD_SELECTOR 0xfff8u

int main(void)
{
	struct descriptor_ptr empty_idt = { .limit = 0, .base = 0 };
	bool gp = cmdline_has("gp");

#ifndef __x86_64__
	if (cmdline_has("realmode")) {
		printf("TRIPLEFAULT: clearing CR0.PE: this guest should end now\n");
		asm volatile("mov %%cr0, %%eax; and $~1, %%eax; mov %%eax, %%cr0" ::: "eax", "memory");
		report(false, "real mode entered under this MMU (execution went on)");
		return report_summary();
	}
#endif

	printf("TRIPLEFAULT: empty IDT, then %s: this guest should end now\n",
	       gp ? "a #GP (bad selector in DS)" : "INT3");
	lidt(&empty_idt);
	if (gp)
		asm volatile("mov %0, %%ds" : : "r"(BAD_SELECTOR) : "memory");
	else
		asm volatile("int3" ::: "memory");
	report(false, "the CPU shut down on the triple fault (execution went on)");
	return report_summary();
}
