/*
 * An 8259A master/slave PIC pair. Only what guests use is modelled:
 * ICW1-ICW4, OCW1 mask, non-specific and specific EOI, IRR/ISR reads.
 */
#include "devices/pic.h"

static void chip_reset(struct pic_chip *p, u8 base)
{
	*p = (struct pic_chip){ .vector_base = base };
}

/* Vector bases as a PC BIOS leaves them: 0x08 and 0x70. No line is masked:
 * initialization clears the IMR (8259A data sheet, ICW1), and which lines a
 * BIOS masks again belongs to its own drivers; umbra has no BIOS. QEMU's and
 * KVM's 8259 reset leave IMR 0 too. Nothing raises a line until the guest
 * programs a device (the PIT is idle, the UART's OUT2 is off). */
void pic_reset(struct guest *g)
{
	chip_reset(&g->dev->pic[0], 0x08);
	chip_reset(&g->dev->pic[1], 0x70);
}

void pic_raise_irq(struct guest *g, int irq)
{
	struct pic_chip *p = &g->dev->pic[irq >= 8];

	p->irr |= (u8)(1u << (irq & 7));
	if (irq >= 8)
		g->dev->pic[0].irr |= 1u << 2;  /* cascade on master IRQ2 */
}

int pic_irq_of_vector(struct guest *g, int vector)
{
	for (int c = 0; c < 2; c++) {
		int irq = vector - g->dev->pic[c].vector_base;

		if (irq >= 0 && irq < 8 && !(c == 0 && irq == 2))
			return c * 8 + irq;
	}
	return -1;
}

bool pic_edge_coalesces(struct guest *g, int irq)
{
	const struct pic_chip *p = &g->dev->pic[irq >= 8];
	u8 bit = (u8)(1u << (irq & 7));

	return (p->irr | p->imr) & bit;
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
	int irq = pic_best_irq(&g->dev->pic[0]);

	if (irq < 0 || g->dev->pic[0].init_step)
		return -1;
	if (irq == 2) {
		int slave = pic_best_irq(&g->dev->pic[1]);

		return slave < 0 ? -1 : g->dev->pic[1].vector_base + slave;
	}
	return g->dev->pic[0].vector_base + irq;
}

void pic_ack(struct guest *g, int vector)
{
	for (int c = 0; c < 2; c++) {
		struct pic_chip *p = &g->dev->pic[c];
		int irq = vector - p->vector_base;

		if (irq < 0 || irq >= 8 || !(p->irr & (1u << irq)))
			continue;
		p->irr &= (u8)~(1u << irq);
		if (!p->auto_eoi)
			p->isr |= (u8)(1u << irq);
		if (c == 1) {
			g->dev->pic[0].irr &= (u8)~(1u << 2);
			if (!g->dev->pic[0].auto_eoi)
				g->dev->pic[0].isr |= 1u << 2;
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
	struct pic_chip *p = &g->dev->pic[port >= 0xa0];
	bool data_port = port & 1;

	if (in)
		*value = data_port ? p->imr : p->read_isr ? p->isr : p->irr;
	else
		pic_write(p, data_port, (u8)*value);
	return true;
}
