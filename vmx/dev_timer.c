/*
 * An 8254 PIT (channel 0 on IRQ0, channel 2 gated by port 0x61) and an
 * 8259A master/slave PIC pair. Time is the guest's TSC (vmx/guest.h): a
 * PIT count of N is N / 1.193182 MHz of TSC ticks. Only what guests use is modelled: modes 0,
 * 2 and 3, lobyte/hibyte access, counter latch; ICW1-ICW4, OCW1 mask,
 * non-specific and specific EOI, IRR/ISR reads.
 */
#include "vmx/guest.h"
#include "arch/x86/machine.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"

#define PIT_HZ 1193182ull

/* ---- PIC ---------------------------------------------------------------- */

static void pic_reset(struct pic_chip *p, u8 base)
{
	*p = (struct pic_chip){ .vector_base = base, .imr = 0xff };
}

void pic_raise_irq(struct guest *g, int irq)
{
	struct pic_chip *p = &g->dev.pic[irq >= 8];

	p->irr |= (u8)(1u << (irq & 7));
	if (irq >= 8)
		g->dev.pic[0].irr |= 1u << 2;  /* cascade on master IRQ2 */
}

/* Highest-priority (lowest-numbered) requested, unmasked IRQ not blocked by
 * one in service; -1 if none. */
static int pic_best_irq(const struct pic_chip *p)
{
	u8 pending = p->irr & ~p->imr;

	for (int i = 0; i < 8; i++) {
		if (p->isr & (1u << i))
			return -1;
		if (pending & (1u << i))
			return i;
	}
	return -1;
}

int pic_pending_vector(struct guest *g)
{
	int irq = pic_best_irq(&g->dev.pic[0]);

	if (irq < 0 || g->dev.pic[0].init_step)
		return -1;
	if (irq == 2) {
		int slave = pic_best_irq(&g->dev.pic[1]);

		return slave < 0 ? -1 : g->dev.pic[1].vector_base + slave;
	}
	return g->dev.pic[0].vector_base + irq;
}

void pic_ack(struct guest *g, int vector)
{
	for (int c = 0; c < 2; c++) {
		struct pic_chip *p = &g->dev.pic[c];
		int irq = vector - p->vector_base;

		if (irq < 0 || irq >= 8 || !(p->irr & (1u << irq)))
			continue;
		p->irr &= (u8)~(1u << irq);
		if (!p->auto_eoi)
			p->isr |= (u8)(1u << irq);
		if (c == 1) {
			g->dev.pic[0].irr &= (u8)~(1u << 2);
			if (!g->dev.pic[0].auto_eoi)
				g->dev.pic[0].isr |= 1u << 2;
		}
		return;
	}
}

static void pic_write(struct pic_chip *p, bool data_port, u8 v)
{
	if (!data_port) {
		if (v & 0x10) {  /* ICW1 */
			p->init_step = 1;
			p->icw4_needed = v & 1;
			p->single = v & 2;
			p->imr = 0;
			p->isr = p->irr = 0;
			p->auto_eoi = false;
		} else if ((v & 0x18) == 0) {  /* OCW2 */
			if (v & 0x20) {  /* EOI: specific if bit 6, else highest in service */
				for (int i = 0; i < 8; i++) {
					u8 bit = (u8)(1u << ((v & 0x40) ? (v & 7) : i));

					if (p->isr & bit) {
						p->isr &= (u8)~bit;
						break;
					}
				}
			}
		} else if ((v & 0x18) == 0x08) {  /* OCW3 */
			if (v & 2)
				p->read_isr = v & 1;
		}
		return;
	}
	switch (p->init_step) {
	case 1:
		p->vector_base = v & 0xf8;
		p->init_step = p->single ? (p->icw4_needed ? 3 : 0) : 2;
		break;
	case 2:
		p->init_step = p->icw4_needed ? 3 : 0;
		break;
	case 3:
		p->auto_eoi = v & 2;
		p->init_step = 0;
		break;
	default:
		p->imr = v;  /* OCW1 */
		break;
	}
}

bool pic_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	(void)size;
	struct pic_chip *p = &g->dev.pic[port >= 0xa0];
	bool data_port = port & 1;

	if (in)
		*value = data_port ? p->imr : p->read_isr ? p->isr : p->irr;
	else
		pic_write(p, data_port, (u8)*value);
	return true;
}

/* ---- PIT ---------------------------------------------------------------- */

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
	struct pit_channel *c = &g->dev.pit[ch];
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
	struct pit_channel *c = &g->dev.pit[0];

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
	return g->dev.pit[0].armed ? g->dev.pit[0].next_irq_tsc : 0;
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
		struct pit_channel *c = &g->dev.pit[ch];

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

	struct pit_channel *c = &g->dev.pit[port - 0x40];

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
	struct pit_channel *c = &g->dev.pit[2];

	(void)port, (void)size;
	if (!in) {
		g->dev.port61 = (u8)*value & 0x0f;
		return true;
	}
	*value = g->dev.port61;
	if ((g->dev.port61 & 1) && c->armed && pit_read_count(g, c) == 0)
		*value |= 0x20;
	return true;
}

void devices_init(struct guest *g)
{
	pic_reset(&g->dev.pic[0], 0x08);
	pic_reset(&g->dev.pic[1], 0x70);
	lapic_reset(g);
}
