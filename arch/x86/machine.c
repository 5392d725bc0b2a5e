/*
 * Platform detection, TSC calibration and the end of a run. The exit path
 * must work from a panic, so it uses nothing but port I/O. Calibration uses
 * only timers the machine is known to have: legacy-free machines have no
 * PIT, so the ACPI PM timer named by the FADT is tried first.
 */
#include <string.h>
#include "arch/x86/machine.h"
#include "arch/x86/acpi.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"

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

/* ACPI tables are read through the boot-time identity map of the low 4 GiB. */
#define ACPI_REACHABLE (4ull << 30)
#define PM_TIMER_HZ 3579545u       /* ACPI spec 4.8.3.3 */
#define CALIBRATION_MS 10
#define SPIN_LIMIT 100000000u

static const char *tsc_source = "none";

/* ACPI tables are read where they are: the boot-time identity map covers the
 * low 4 GiB, and paging_init() keeps it. */
const u8 *machine_acpi_map(u64 phys, u64 len, void *ctx)
{
	(void)ctx;
	return phys && phys + len <= ACPI_REACHABLE && phys + len > phys ? (const u8 *)phys : NULL;
}

/*
 * The PM timer's I/O port and counter width from the FADT (ACPI spec 5.2.9:
 * PM_TMR_BLK at 76, flags at 112 with TMR_VAL_EXT bit 8, X_PM_TMR_BLK at
 * 208 as a generic address whose space 1 is system I/O). 0 if none.
 */
static u16 acpi_pm_timer_port(const u8 *fadt, u32 *mask)
{
	u32 port = 0, flags = 0;
	u64 xport = 0;

	if (acpi_table_length(fadt) >= 116) {
		memcpy(&port, fadt + 76, 4);
		memcpy(&flags, fadt + 112, 4);
	}
	if (!port && acpi_table_length(fadt) >= 220 && fadt[208] == 1) {
		memcpy(&xport, fadt + 212, 8);
		port = xport <= 0xffff ? (u32)xport : 0;
	}
	*mask = flags & (1u << 8) ? 0xffffffffu : 0xffffffu;
	return port <= 0xfffc ? (u16)port : 0;
}

/*
 * Count TSC ticks over 10 ms of the ACPI PM timer, a free-running 3.58 MHz
 * counter. A port that never changes (no timer behind it) gives 0.
 */
static u64 tsc_khz_from_pm_timer(u16 port, u32 mask)
{
	const u32 ticks = PM_TIMER_HZ / 1000 * CALIBRATION_MS;
	u32 start = inl(port) & mask, now, spins = 0;
	u64 tsc_start, tsc_end;

	/* Start on a tick edge so the count is exact to one tick. */
	while ((inl(port) & mask) == start)
		if (++spins == SPIN_LIMIT)
			return 0;
	start = inl(port) & mask;
	tsc_start = rdtsc();
	do
		now = inl(port) & mask;
	while (((now - start) & mask) < ticks && ++spins < SPIN_LIMIT);
	tsc_end = rdtsc();
	if (spins >= SPIN_LIMIT)
		return 0;
	return (tsc_end - tsc_start) * PM_TIMER_HZ / (((now - start) & mask) * 1000ull);
}

/*
 * Count TSC ticks over 10 ms of PIT channel 2 in one-shot mode, gated by
 * port 0x61 (the classic method; only when a PIT exists, i.e. not on
 * legacy-free machines: there port 0x61 reads all-ones).
 */
static u64 tsc_khz_from_pit(void)
{
	const u16 count = PIT_HZ / 1000 * CALIBRATION_MS;
	u8 gate = inb(PIT_GATE);
	u64 start, end;
	u32 spins = 0;

	if (gate == 0xff)
		return 0;
	outb(PIT_GATE, (gate & ~0x02) | 0x01);     /* speaker off, gate on */
	outb(PIT_CMD, 0xb0);                       /* ch2, lo/hi, mode 0 */
	outb(PIT_CH2, count & 0xff);
	outb(PIT_CH2, count >> 8);
	start = rdtsc();
	while (!(inb(PIT_GATE) & 0x20) && ++spins < SPIN_LIMIT)
		;
	end = rdtsc();
	outb(PIT_GATE, gate);
	return spins < SPIN_LIMIT ? (end - start) / CALIBRATION_MS : 0;
}

void machine_calibrate_tsc(u64 acpi_rsdp, u64 acpi_rsdp_v2)
{
	char err[128];
	const u8 *fadt = acpi_find_table(acpi_rsdp, acpi_rsdp_v2, "FACP", machine_acpi_map, NULL,
					 err, sizeof(err));
	u32 mask;
	u16 port = fadt ? acpi_pm_timer_port(fadt, &mask) : 0;

	if (port && (tsc_khz = tsc_khz_from_pm_timer(port, mask)))
		tsc_source = "ACPI PM timer";
	else if ((tsc_khz = tsc_khz_from_pit()))
		tsc_source = "PIT";
	else
		tsc_source = "none (no PM timer or PIT)";
	log_set_tsc_khz(tsc_khz);
}

const char *machine_tsc_source(void)
{
	return tsc_source;
}

u64 machine_tsc_khz(void)
{
	return tsc_khz;
}

u64 machine_timing_khz(void)
{
	return tsc_khz ? tsc_khz : 1000000;
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
