/*
 * Platform detection, TSC calibration and the end of a run. The exit path
 * must work from a panic, so it uses nothing but port I/O.
 */
#include "arch/x86/machine.h"
#include "arch/x86/cpu.h"
#include "lib/log.h"

#define ISA_DEBUG_EXIT_PORT 0xf4
#define BOCHS_SHUTDOWN_PORT 0x8900
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PIT_GATE 0x61
#define PIT_HZ 1193182u

static enum platform platform;
static u64 tsc_khz;

/*
 * The hypervisor polls everything and takes no interrupts; mask the legacy
 * PIC the BIOS left running so its timer does not cause VM exits
 * (external-interrupt exiting is on while guests run).
 */
static void mask_legacy_pic(void)
{
	outb(0x21, 0xff);
	outb(0xa1, 0xff);
}

void machine_detect(void)
{
	mask_legacy_pic();
	if (cpuid(1, 0).ecx & (1u << 31))
		platform = PLATFORM_QEMU;
	else if (inb(0xe9) == 0xe9)
		platform = PLATFORM_BOCHS;
	else
		platform = PLATFORM_BARE;
}

void machine_force_platform(enum platform p)
{
	platform = p;
}

enum platform machine_platform(void)
{
	return platform;
}

const char *machine_platform_name(void)
{
	static const char *const names[] = {
		[PLATFORM_BARE] = "bare metal",
		[PLATFORM_BOCHS] = "Bochs",
		[PLATFORM_QEMU] = "QEMU/KVM or another hypervisor",
	};
	return names[platform];
}

/*
 * Count TSC ticks over 10 ms of PIT channel 2 in one-shot mode, gated by
 * port 0x61 (the classic method; only when a PIT exists, i.e. not on
 * legacy-free machines: there port 0x61 reads all-ones and we keep 0).
 */
void machine_calibrate_tsc(void)
{
	const u16 count = PIT_HZ / 100;
	u8 gate = inb(PIT_GATE);
	u64 start, end;
	u32 spins = 0;

	if (gate == 0xff)
		return;
	outb(PIT_GATE, (gate & ~0x02) | 0x01);     /* speaker off, gate on */
	outb(PIT_CMD, 0xb0);                       /* ch2, lo/hi, mode 0 */
	outb(PIT_CH2, count & 0xff);
	outb(PIT_CH2, count >> 8);
	start = rdtsc();
	while (!(inb(PIT_GATE) & 0x20) && ++spins < 100000000)
		;
	end = rdtsc();
	outb(PIT_GATE, gate);
	if (spins < 100000000)
		tsc_khz = (end - start) / 10;
	log_set_tsc_khz(tsc_khz);
}

u64 machine_tsc_khz(void)
{
	return tsc_khz;
}

void NORETURN machine_exit(enum run_status status)
{
	static const char shutdown[] = "Shutdown";

	cli();
	switch (platform) {
	case PLATFORM_QEMU:
		outl(ISA_DEBUG_EXIT_PORT, status);
		break;
	case PLATFORM_BOCHS:
		if (status == RUN_PASS)
			bochs_magic_break();  /* dbg.rc then says "quit": exit 0 */
		for (const char *p = shutdown; *p; p++)
			outb(BOCHS_SHUTDOWN_PORT, (u8)*p);  /* exit 1 */
		break;
	case PLATFORM_BARE:
		break;
	}
	for (;;)
		hlt();
}
