/*
 * 8259A PIC pair and 8254 PIT channel 0, programmed the way a PC BIOS-less kernel does it
 * (8259A datasheet ICW1-ICW4/OCW1/OCW2; 8254 datasheet control word). IRQ handlers are hooks
 * set by the test; the library sends the non-specific EOI after they return.
 */
#include "internal.h"

#define PIC1_CMD 0x20
#define PIC1_DATA 0x21
#define PIC2_CMD 0xa0
#define PIC2_DATA 0xa1
#define ICW1_INIT_ICW4 0x11	/* edge triggered, cascade, ICW4 follows */
#define ICW4_8086 0x01
#define OCW2_EOI 0x20		/* non-specific EOI */
#define PIC_CASCADE_IRQ 2

#define PIT_CH0 0x40
#define PIT_CMD 0x43
#define PIT_CH0_LOHI 0x30	/* channel 0, access lobyte then hibyte, binary */
#define PIT_MODE0 (0 << 1)	/* interrupt on terminal count */
#define PIT_MODE2 (2 << 1)	/* rate generator */

static void (*irq_handlers[16])(unsigned int irq);
/* The mask registers are kept here rather than read back: the contract only promises writes. */
static u16 irq_mask = 0xffff;

static void write_masks(void)
{
	outb(PIC1_DATA, irq_mask & 0xff);
	outb(PIC2_DATA, irq_mask >> 8);
}

void pic_init(void)
{
	outb(PIC1_CMD, ICW1_INIT_ICW4);
	outb(PIC2_CMD, ICW1_INIT_ICW4);
	outb(PIC1_DATA, IRQ_VECTOR_BASE);		/* ICW2: vector of IRQ0 */
	outb(PIC2_DATA, IRQ_VECTOR_BASE + 8);
	outb(PIC1_DATA, 1 << PIC_CASCADE_IRQ);		/* ICW3: slave on IRQ2 */
	outb(PIC2_DATA, PIC_CASCADE_IRQ);		/* ICW3: slave identity */
	outb(PIC1_DATA, ICW4_8086);
	outb(PIC2_DATA, ICW4_8086);
	/* Everything masked except the cascade, which slave IRQs need. */
	irq_mask = 0xffff & ~(1 << PIC_CASCADE_IRQ);
	write_masks();
}

void pic_mask(unsigned int irq)
{
	irq_mask |= 1 << irq;
	write_masks();
}

void pic_unmask(unsigned int irq)
{
	irq_mask &= ~(1 << irq);
	write_masks();
}

void irq_set_handler(unsigned int irq, void (*handler)(unsigned int irq))
{
	irq_handlers[irq] = handler;
}

void irq_dispatch(unsigned int irq)
{
	if (irq_handlers[irq])
		irq_handlers[irq](irq);
	else
		printf("unhandled IRQ %u\n", irq);
	if (irq >= 8)
		outb(PIC2_CMD, OCW2_EOI);
	outb(PIC1_CMD, OCW2_EOI);
}

static void pit_program(u8 mode, u32 count)
{
	/* A count of 0 means 65536 to the 8254. */
	outb(PIT_CMD, PIT_CH0_LOHI | mode);
	outb(PIT_CH0, count & 0xff);
	outb(PIT_CH0, (count >> 8) & 0xff);
}

void pit_periodic(u32 hz)
{
	u32 count = PIT_HZ / hz;

	if (count < 2)
		count = 2;	/* mode 2 does not allow 1 */
	if (count > 0xffff)
		count = 0;
	pit_program(PIT_MODE2, count);
}

void pit_oneshot(u16 count)
{
	pit_program(PIT_MODE0, count);
}
