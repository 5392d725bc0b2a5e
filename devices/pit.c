/*
 * An 8254 PIT (channel 0 on IRQ0, channel 2 gated by port 0x61). Time is
 * the guest's TSC: a PIT count of N is N / 1.193182 MHz of TSC ticks. Only
 * what guests use is modelled: modes 0, 2 and 3, lobyte/hibyte access,
 * counter latch.
 */
#include "devices/pit.h"
#include "devices/pic.h"
#include "arch/x86/machine.h"

#define PIT_HZ 1193182ull

static u64 pit_ticks_to_tsc(u64 ticks)
{
	u64 khz = machine_timing_khz();

	return ticks * khz * 1000 / PIT_HZ;
}

static u32 reload_count(const struct pit_channel *c)
{
	return c->reload ? c->reload : 0x10000;
}

static void pit_start(struct guest *g, int ch)
{
	struct pit_channel *c = &g->dev->pit[ch];
	u64 now = guest_tsc(g);

	c->start_tsc = now;
	c->period_tsc = pit_ticks_to_tsc(reload_count(c));
	if (c->period_tsc == 0)
		c->period_tsc = 1;
	c->armed = true;
	c->next_irq_tsc = ch == 0 ? now + c->period_tsc : 0;
}

/* Current count (counts down from the reload value, SDM-like 8254 data sheet). */
static u16 pit_read_count(struct guest *g, const struct pit_channel *c)
{
	u64 khz = machine_timing_khz();
	u64 elapsed, ticks;

	if (!c->armed)
		return c->reload;
	elapsed = guest_tsc(g) - c->start_tsc;
	ticks = elapsed * PIT_HZ / (khz * 1000);
	if (c->mode == 0)
		return ticks >= reload_count(c) ? 0 : (u16)(reload_count(c) - ticks);
	return (u16)(reload_count(c) - ticks % reload_count(c));
}

void pit_update(struct guest *g, u64 now)
{
	struct pit_channel *c = &g->dev->pit[0];

	if (!c->armed || !c->next_irq_tsc || now < c->next_irq_tsc)
		return;
	pic_raise_irq(g, 0);
	if (c->mode == 2 || c->mode == 3) {
		/* Periodic: missed periods collapse into one edge, like a real PIC. */
		u64 missed = (now - c->next_irq_tsc) / c->period_tsc;

		c->next_irq_tsc += (missed + 1) * c->period_tsc;
	} else {
		c->next_irq_tsc = 0;  /* one-shot: out stays high */
	}
}

u64 pit_next_event(struct guest *g)
{
	/* An edge that would coalesce is not an event: pit_update() folds it in
	 * when the guest next looks. */
	if (!g->dev->pit[0].armed || pic_edge_coalesces(g, 0))
		return 0;
	return g->dev->pit[0].next_irq_tsc;
}

bool pit_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	(void)size;
	u8 v = (u8)*value;

	if (port == 0x43) {
		if (in) {
			*value = 0xff;
			return true;
		}
		int ch = v >> 6;

		if (ch == 3)
			return true;  /* read-back command: not modelled */
		struct pit_channel *c = &g->dev->pit[ch];

		if ((v & 0x30) == 0) {  /* counter latch */
			c->latch = pit_read_count(g, c);
			c->latched = true;
			return true;
		}
		c->access = (v >> 4) & 3;
		c->mode = (v >> 1) & 7;
		if (c->mode > 5)
			c->mode -= 4;  /* 6, 7 alias 2, 3 */
		c->rw_state = 0;
		c->armed = false;
		c->next_irq_tsc = 0;
		return true;
	}

	struct pit_channel *c = &g->dev->pit[port - 0x40];

	if (in) {
		u16 count = c->latched ? c->latch : pit_read_count(g, c);
		bool high = c->access == 2 || (c->access == 3 && c->rw_state);

		*value = high ? count >> 8 : count & 0xff;
		if (c->access == 3)
			c->rw_state ^= 1;
		if (!c->rw_state || c->access != 3)
			c->latched = false;
		return true;
	}
	switch (c->access) {
	case 1:
		c->reload = v;
		pit_start(g, port - 0x40);
		break;
	case 2:
		c->reload = (u16)(v << 8);
		pit_start(g, port - 0x40);
		break;
	default:
		if (c->rw_state == 0) {
			c->reload = (c->reload & 0xff00) | v;
			c->rw_state = 1;
		} else {
			c->reload = (u16)((c->reload & 0x00ff) | (v << 8));
			c->rw_state = 0;
			pit_start(g, port - 0x40);
		}
		break;
	}
	return true;
}

/* Port 0x61: bit 0 gates PIT channel 2, bit 5 reads its output. */
bool port61_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	struct pit_channel *c = &g->dev->pit[2];

	(void)port, (void)size;
	if (!in) {
		g->dev->port61 = (u8)*value & 0x0f;
		return true;
	}
	*value = g->dev->port61;
	if ((g->dev->port61 & 1) && c->armed && pit_read_count(g, c) == 0)
		*value |= 0x20;
	return true;
}
