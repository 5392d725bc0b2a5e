/*
 * The TSC rate, measured against PIT channel 2 the way Linux calibrates it without HPET:
 * gate the channel on through port 0x61 bit 0, count down 10 ms in mode 0 and poll the output
 * (port 0x61 bit 5) until it rises at terminal count (8254 datasheet, mode 0). Three times.
 */
#include "platform.h"

#define PORT61 0x61
#define PORT61_GATE2 BIT(0)
#define PORT61_SPEAKER BIT(1)
#define PORT61_OUT2 BIT(5)
#define PIT_CH2 0x42
#define PIT_CMD 0x43
#define PIT_CH2_LOHI_MODE0 0xb0	/* channel 2, lobyte then hibyte, mode 0, binary */
#define CALIBRATE_MS 10
#define MAX_POLLS 2000000u

static u64 measured_hz;

/* TSC ticks in one 10 ms PIT count, or 0 if the PIT output never rose. */
static u64 measure_once(void)
{
	u32 count = PIT_HZ / (1000 / CALIBRATE_MS);
	u64 start, end;
	u32 polls = 0;

	outb(PORT61, (inb(PORT61) & ~PORT61_SPEAKER) | PORT61_GATE2);
	outb(PIT_CMD, PIT_CH2_LOHI_MODE0);
	outb(PIT_CH2, count & 0xff);
	outb(PIT_CH2, count >> 8);
	/* Counting starts with the hibyte write; OUT is low until the count reaches 0. */
	start = rdtsc();
	while (!(inb(PORT61) & PORT61_OUT2) && ++polls < MAX_POLLS)
		pause();
	end = rdtsc();
	outb(PORT61, inb(PORT61) & ~PORT61_GATE2);
	return polls < MAX_POLLS ? end - start : 0;
}

u64 tsc_hz(void)
{
	u64 best = 0;

	if (measured_hz)
		return measured_hz;
	/* The smallest of three: a host that deschedules an emulated CPU only adds ticks. */
	for (int i = 0; i < 3; i++) {
		u64 ticks = measure_once();

		if (!ticks)
			return 0;
		if (!best || ticks < best)
			best = ticks;
	}
	measured_hz = best * (1000 / CALIBRATE_MS);
	return measured_hz;
}

void tsc_recalibrate(void)
{
	measured_hz = 0;
}

u64 tsc_us(u32 us)
{
	return udiv64(tsc_hz() * us, 1000000, NULL);
}

u64 tsc_to_us(u64 ticks)
{
	u32 khz = (u32)udiv64(tsc_hz(), 1000, NULL);

	return khz ? udiv64(ticks * 1000, khz, NULL) : 0;
}
