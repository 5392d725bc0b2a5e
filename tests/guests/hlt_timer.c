/*
 * Timer interrupts (tests/guests/PLATFORM.md, "Timer"): PIT channel 0 through the 8259A to
 * vector ICW2 + 0. Counts periodic ticks at two rates while halting with IF=1, compares the
 * two periods measured with the TSC (loosely: a functional test, not a timing one), checks
 * that a masked IRQ0 stays quiet and resumes when unmasked, and that mode 0 fires once.
 */
#include "libguest.h"

#define SLOW_HZ 100
#define FAST_HZ 250
#define SLOW_TICKS 20
#define FAST_TICKS 25
/* Each HLT ends with an interrupt, and IRQ0 is the only one unmasked: few are wasted. */
#define HLTS_PER_TICK 4
#define ONESHOT_MS 10

static volatile unsigned int ticks, stray_irqs;

static void on_irq(unsigned int irq)
{
	if (irq == 0)
		ticks++;
	else
		stray_irqs++;
}

/* HLTs (with IF=1) until `n` more ticks arrived or the HLT budget is spent. */
static unsigned int halt_for_ticks(unsigned int n)
{
	unsigned int start = ticks;

	for (unsigned int i = 0; i < n * HLTS_PER_TICK + 2 && ticks - start < n; i++)
		safe_halt();
	return ticks - start;
}

static void busy_wait_tsc(u64 cycles)
{
	u64 start = rdtsc();

	while (rdtsc() - start < cycles)
		pause();
}

/* Runs the PIT at hz and returns the TSC cycles per tick over n ticks (0 if too few came). */
static u64 measure_period(u32 hz, unsigned int n)
{
	unsigned int got;
	u64 t0, t1;

	pit_periodic(hz);
	halt_for_ticks(1);		/* start measuring on a tick edge */
	t0 = rdtsc();
	got = halt_for_ticks(n);
	t1 = rdtsc();
	report(got == n, "%u Hz: %u of %u ticks within %u HLTs", hz, got, n,
	       n * HLTS_PER_TICK + 2);
	if (got != n)
		return 0;
	u64 period = udiv64(t1 - t0, n, NULL);

	printf("%u Hz: %llu TSC cycles per tick (TSC about %llu MHz)\n", hz, period,
	       udiv64(period * hz, 1000000, NULL));
	return period;
}

static void check_periodic(u64 *slow_period)
{
	u64 slow = measure_period(SLOW_HZ, SLOW_TICKS);
	u64 fast = measure_period(FAST_HZ, FAST_TICKS);

	*slow_period = slow;
	if (!slow || !fast) {
		report(false, "period ratio: no measurement");
		return;
	}
	/* Expected ratio FAST_HZ / SLOW_HZ = 2.5; accept 1.5 .. 4. */
	u64 ratio_x100 = udiv64(slow * 100, (u32)fast, NULL);

	report(ratio_x100 >= 150 && ratio_x100 <= 400,
	       "period at %u Hz / period at %u Hz = %llu/100 (expected about 250/100)",
	       SLOW_HZ, FAST_HZ, ratio_x100);
}

/*
 * Absolute check where the CPU states its base frequency (CPUID leaf 0x16, SDM Vol. 2A
 * CPUID): the TSC usually runs at about that rate, so the PIT period in TSC cycles tells
 * whether the virtual PIT runs at 1.193182 MHz. Loose: within a factor of 1.5.
 */
static void check_against_base_frequency(u64 period)
{
	u32 base_mhz = cpuid(0, 0).eax >= 0x16 ? cpuid(0x16, 0).eax & 0xffff : 0;
	u64 tsc_mhz = udiv64(period * SLOW_HZ, 1000000, NULL);

	if (!base_mhz) {
		report_skip("PIT period vs CPUID 0x16 base frequency: leaf absent");
		return;
	}
	report(tsc_mhz * 3 >= base_mhz * 2ull && tsc_mhz * 2 <= base_mhz * 3ull,
	       "TSC rate from the PIT period, %llu MHz, within 1.5x of the %u MHz base",
	       tsc_mhz, base_mhz);
}

static void check_mask(u64 period)
{
	unsigned int before;

	pit_periodic(SLOW_HZ);
	halt_for_ticks(1);
	pic_mask(0);
	before = ticks;
	busy_wait_tsc(5 * period);	/* IF=1 all along: only the mask keeps IRQ0 out */
	report(ticks == before, "masked IRQ0: %u ticks in 5 periods (expected 0)",
	       ticks - before);
	pic_unmask(0);
	report(halt_for_ticks(3) == 3, "unmasked IRQ0: ticks resume");
}

static void check_oneshot(u64 period)
{
	const u16 count = PIT_HZ / 1000 * ONESHOT_MS;
	u64 start, fired_after = 0;

	/* Stop the periodic output first and let an IRQ already latched in the PIC drain. */
	cli();
	pit_oneshot(0xffff);
	sti();
	busy_wait_tsc(udiv64(period, 10, NULL));
	cli();
	ticks = 0;
	pit_oneshot(count);		/* restarts the count: the 0xffff one never fires */
	start = rdtsc();
	sti();
	while (!ticks && rdtsc() - start < 20 * period)
		pause();
	if (ticks)
		fired_after = rdtsc() - start;
	busy_wait_tsc(5 * period);
	cli();
	report(ticks == 1, "mode 0: exactly one interrupt (got %u)", ticks);
	/* The slow period is 10 ms, like the one-shot: accept a quarter to three times that. */
	report(fired_after > udiv64(period, 4, NULL) && fired_after < 3 * period,
	       "mode 0: it came after %llu TSC cycles (about %u ms expected)", fired_after,
	       ONESHOT_MS);
}

int main(void)
{
	u64 period;

	pic_init();
	for (unsigned int irq = 0; irq < 16; irq++)
		irq_set_handler(irq, on_irq);
	pic_unmask(0);

	check_periodic(&period);
	if (!period)
		return report_summary();
	check_against_base_frequency(period);
	check_mask(period);
	check_oneshot(period);

	pic_mask(0);
	cli();
	report(stray_irqs == 0, "no interrupt other than IRQ0 (%u others)", stray_irqs);
	return report_summary();
}
