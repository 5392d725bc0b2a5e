/*
 * The hypercall interface (tests/guests/PLATFORM.md, "VMCALL hypercalls"): PING, PUTS, STAT
 * exit counters and -ENOSYS for unknown functions. Outside umbra only checks that VMCALL
 * raises #UD (as the contract says it does on QEMU TCG) and skips the rest. Built 32-bit
 * (vmcall, low register halves) and 64-bit (vmcall64). With "hc_exit" on the command line
 * it ends through HC_EXIT instead of the debug-exit port.
 */
#include "libguest.h"

#define UMBRA_INTERFACE_VERSION 1
#define UNKNOWN_FUNCTION 0x7777
#define NR_CPUIDS 5

static void check_ping(void)
{
	struct vmcall_regs r = { .ax = HC_PING, .bx = 0, .cx = 0, .dx = 0 };
	bool faulted = vmcall_safe(&r);

	report(!faulted && r.ax == HC_PING_MAGIC && r.bx == UMBRA_INTERFACE_VERSION,
	       "PING returns 'UMBR' (%#lx) and version %lu", r.ax, r.bx);
}

static void check_puts(void)
{
	static const char msg[] = "vmcall: hello from HC_PUTS\n";

	report(vmcall(HC_PUTS, (unsigned long)msg, sizeof(msg) - 1, 0) == 0,
	       "PUTS returns 0 (the line above/below should read \"vmcall: hello from HC_PUTS\")");
}

static u64 stat(unsigned long counter)
{
	return (unsigned long)vmcall(HC_STAT, counter, 0, 0);
}

/* STAT itself is a VMCALL exit, never a CPUID one, so the count must be exact. */
static void check_stat(void)
{
	u64 cpuid_before = stat(HC_STAT_EXITS(EXIT_REASON_CPUID));

	for (int i = 0; i < NR_CPUIDS; i++)
		cpuid(0, 0);
	u64 cpuid_after = stat(HC_STAT_EXITS(EXIT_REASON_CPUID));

	report(cpuid_after - cpuid_before == NR_CPUIDS,
	       "STAT: CPUID exits went up by %llu after %d CPUIDs (%llu -> %llu)",
	       cpuid_after - cpuid_before, NR_CPUIDS, cpuid_before, cpuid_after);

	u64 vmcall_before = stat(HC_STAT_EXITS(EXIT_REASON_VMCALL));
	u64 vmcall_after = stat(HC_STAT_EXITS(EXIT_REASON_VMCALL));

	/* Whether or not a STAT counts its own exit, two STATs in a row differ by exactly 1. */
	report(vmcall_after - vmcall_before == 1,
	       "STAT: VMCALL exits went up by %llu between two STATs",
	       vmcall_after - vmcall_before);
}

/* HC_CAPS: the VMX capability report; the preemption timer is always required. */
static void check_caps(void)
{
	struct vmcall_regs r = { .ax = HC_CAPS, .bx = 0, .cx = 0, .dx = 0 };
	bool ud = vmcall_safe(&r);

	report(!ud && (long)r.ax >= 0 && (r.ax & (1u << 5)),
	       "CAPS: features %#lx include the preemption timer", r.ax);
	report(!ud && (r.bx & 1), "CAPS: pin-based controls %#lx have external-interrupt exiting",
	       r.bx);
	printf("vmcall: CAPS %#lx (%s for this guest)\n", r.ax, r.ax & (1u << 6) ? "EPT" : "shadow");
}

static void check_unknown(void)
{
	long ret = vmcall(UNKNOWN_FUNCTION, 1, 2, 3);

	report(ret == HC_ENOSYS, "unknown function %#x returns %ld (-ENOSYS)", UNKNOWN_FUNCTION,
	       ret);
}

int main(void)
{
	if (!is_umbra()) {
		struct vmcall_regs r = { .ax = HC_PING, .bx = 0, .cx = 0, .dx = 0 };

		report(vmcall_safe(&r) && last_exception.vector == UD_VECTOR,
		       "outside umbra VMCALL raises #UD");
		report_skip("PING, PUTS, STAT, unknown function: not under umbra");
		return report_summary();
	}
	check_ping();
	check_puts();
	check_stat();
	check_caps();
	check_unknown();
	if (cmdline_has("hc_exit")) {
		int code = report_summary();

		printf("vmcall: exiting with HC_EXIT(%d)\n", code);
		vmcall(HC_EXIT, code, 0, 0);
		report(false, "HC_EXIT ends the guest (it returned)");
		return report_summary();
	}
	return report_summary();
}
