/*
 * Guest memory isolation (tests/guests/PLATFORM.md, "Guest RAM"): all RAM this kernel does
 * not occupy starts out zero (nothing left by the hypervisor or an earlier guest), then holds
 * a guest-specific pattern that must survive a while of other guests running; finally, with
 * "probe_oob", a read just past RAM must end the guest.
 *
 * Command line: pattern=0xNN (default 0x5a; give each guest its own), wait=TICKS (10 ms
 * timer ticks between filling and re-checking, default 50), probe_oob.
 * 64-bit, so the identity map reaches all of RAM whatever its size.
 */
#include "libguest.h"

#define DEFAULT_PATTERN 0x5a
#define DEFAULT_WAIT_TICKS 50
#define TICK_HZ 100

/* Never touched by the code: the loader must have zeroed it with the rest of .bss. */
static u8 untouched_bss[4096];

struct ram_scan {
	u64 xor;
	u64 bytes, bad;
};

static void zero_range(u64 start, u64 end, void *ctx)
{
	struct ram_scan *s = ctx;

	s->bytes += end - start;
	s->bad += zero_check(start, end);
}

static void fill_range(u64 start, u64 end, void *ctx)
{
	struct ram_scan *s = ctx;

	s->bytes += pattern_fill(start, end, s->xor);
}

static void check_range(u64 start, u64 end, void *ctx)
{
	struct ram_scan *s = ctx;

	s->bytes += end - start;
	s->bad += pattern_check(start, end, s->xor);
}

/*
 * The RAM checked: everything above 1 MiB, and below 1 MiB only under umbra, whose RAM is
 * zeroed. On a PC the firmware owns low memory (IVT, BIOS data, EBDA), so it is left alone.
 */
static void for_each_checked_range(void (*fn)(u64, u64, void *), struct ram_scan *s)
{
	if (is_umbra())
		for_each_free_ram(0, MIB, fn, s);
	for_each_free_ram(MIB, ram_end(), fn, s);
}

static volatile unsigned int ticks;

static void on_tick(unsigned int irq)
{
	(void)irq;
	ticks++;
}

/* Lets the other guests run for a while: HLT with the PIT as the only wake-up. */
static void sleep_ticks(unsigned int n)
{
	pic_init();
	irq_set_handler(0, on_tick);
	pit_periodic(TICK_HZ);
	pic_unmask(0);
	while (ticks < n)
		safe_halt();
	cli();
	pic_mask(0);
}

static void probe_past_ram(void)
{
	u64 addr = ram_end();

	printf("PROBE: reading past RAM at %#llx\n", addr);
	u64 v = *(volatile u64 *)(unsigned long)addr;

	report(false, "read past RAM at %#llx ends the guest (it returned %#llx)", addr, v);
}

int main(void)
{
	u64 pattern = DEFAULT_PATTERN, wait = DEFAULT_WAIT_TICKS;
	struct ram_scan zero = { 0 }, fill = { 0 }, check = { 0 };

	if (!ram_end()) {
		report(false, "multiboot info gives the RAM size");
		return report_summary();
	}
	cmdline_get_u64("pattern", &pattern);
	cmdline_get_u64("wait", &wait);
	pattern &= 0xff;

	report(!memcmp(untouched_bss, (u8[sizeof(untouched_bss)]){ 0 }, sizeof(untouched_bss)),
	       "the loader zeroed .bss");

	for_each_checked_range(zero_range, &zero);
	/* Only umbra promises fresh RAM: a PC firmware leaves tables and ROM copies behind. */
	report_umbra(zero.bad == 0,
		     "%llu KiB of RAM outside the image read zero (%llu nonzero words)",
		     zero.bytes >> 10, zero.bad);
	if (!is_umbra())
		report_skip("RAM below 1 MiB reads zero: the firmware owns it outside umbra");

	/* pattern 0xA5 -> each word is its address ^ 0xa5a5a5a5a5a5a5a5 */
	fill.xor = check.xor = pattern * 0x0101010101010101ull;
	for_each_checked_range(fill_range, &fill);
	printf("isolation: filled %llu KiB with address ^ %#llx, sleeping %llu ticks\n",
	       fill.bytes >> 10, fill.xor, wait);
	sleep_ticks(wait);
	for_each_checked_range(check_range, &check);
	report(check.bad == 0 && check.bytes == fill.bytes,
	       "pattern %#llx intact in %llu KiB after %llu ticks (%llu mismatches)", pattern,
	       check.bytes >> 10, wait, check.bad);

	if (cmdline_has("probe_oob"))
		probe_past_ram();
	return report_summary();
}
