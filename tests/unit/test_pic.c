/*
 * The 8259A PIC pair (devices/pic.c) on the host: the device layer linked
 * with guest/ only, no VMX code. Programmed through its ports as a guest
 * kernel does (ICW1-ICW4, OCW1-OCW3), checked against the 8259A data sheet.
 */
#include <string.h>
#include "unit.h"
#include "devices/pic.h"
#include "devices/pc_testdev.h"

static struct guest_devices devs;
static struct guest g;

static void reset(void)
{
	memset(&devs, 0, sizeof(devs));
	memset(&g, 0, sizeof(g));
	g.dev = &devs;
	pic_reset(&g);
}

static void out(u16 port, u8 v)
{
	u32 value = v;

	CHECK(pic_io(&g, port, 1, false, &value));
}

static u8 in(u16 port)
{
	u32 value = 0;

	CHECK(pic_io(&g, port, 1, true, &value));
	return (u8)value;
}

/* Linux's and kvm-unit-tests' sequence: vectors 0x20 and 0x28, cascade on IRQ2. */
static void program(u8 master_mask, u8 slave_mask)
{
	out(0x20, 0x11), out(0x21, 0x20), out(0x21, 0x04), out(0x21, 0x01);
	out(0xa0, 0x11), out(0xa1, 0x28), out(0xa1, 0x02), out(0xa1, 0x01);
	out(0x21, master_mask);
	out(0xa1, slave_mask);
}

TEST(reset_masks_nothing)
{
	reset();
	CHECK_EQ(in(0x21), 0x00);
	CHECK_EQ(in(0xa1), 0x00);
	pic_raise_irq(&g, 0);
	CHECK_EQ(pic_pending_vector(&g), 0x08);  /* the BIOS vector bases */
}

static void testdev_out(u16 port, u32 v)
{
	CHECK(pc_testdev_irq_io(&g, port, 1, false, &v));
}

/* realmode's sti_inhibit: IRQ 11 raised and lowered with interrupts off is
 * still delivered (edge-triggered: the rising edge latched it). */
TEST(testdev_irq_line_edge_latches)
{
	reset();
	testdev_out(0x200b, 1);
	testdev_out(0x200b, 0);
	CHECK_EQ(pic_pending_vector(&g), 0x73);
	pic_ack(&g, 0x73);
	CHECK_EQ(pic_pending_vector(&g), (u64)-1);
	out(0xa0, 0x20), out(0x20, 0x20);        /* EOI both */
	testdev_out(0x200b, 0);                  /* no edge: nothing */
	CHECK_EQ(pic_pending_vector(&g), (u64)-1);
	testdev_out(0x200b, 1);
	testdev_out(0x200b, 2);                  /* still high: no second edge */
	pic_ack(&g, 0x73);
	out(0xa0, 0x20), out(0x20, 0x20);
	CHECK_EQ(pic_pending_vector(&g), (u64)-1);
	testdev_out(0x2010, 1);                  /* an I/O APIC-only line: no 8259 input */
	CHECK_EQ(pic_pending_vector(&g), (u64)-1);
}

TEST(icw_sequence_sets_vector_base)
{
	reset();
	program(0x00, 0x00);
	pic_raise_irq(&g, 1);
	CHECK_EQ(pic_pending_vector(&g), 0x21);
	pic_ack(&g, 0x21);
	CHECK_EQ(pic_pending_vector(&g), (u64)-1);  /* in service: no more until EOI */
	out(0x20, 0x0b);                            /* OCW3: read ISR */
	CHECK_EQ(in(0x20), 0x02);
	out(0x20, 0x20);                            /* non-specific EOI */
	CHECK_EQ(in(0x20), 0x00);
}

TEST(masked_irq_waits_for_unmask)
{
	reset();
	program(0x01, 0xff);
	pic_raise_irq(&g, 0);
	CHECK_EQ(pic_pending_vector(&g), (u64)-1);
	out(0x21, 0x00);
	CHECK_EQ(pic_pending_vector(&g), 0x20);
}

TEST(lower_irq_wins_and_higher_in_service_blocks)
{
	reset();
	program(0x00, 0x00);
	pic_raise_irq(&g, 4);
	pic_raise_irq(&g, 3);
	CHECK_EQ(pic_pending_vector(&g), 0x23);
	pic_ack(&g, 0x23);
	CHECK_EQ(pic_pending_vector(&g), (u64)-1);  /* IRQ3 in service blocks IRQ4 */
	out(0x20, 0x63);                            /* specific EOI for IRQ3 */
	CHECK_EQ(pic_pending_vector(&g), 0x24);
}

TEST(slave_irq_goes_through_cascade)
{
	reset();
	program(0x00, 0x00);
	pic_raise_irq(&g, 12);
	CHECK_EQ(pic_pending_vector(&g), 0x2c);
	pic_ack(&g, 0x2c);
	out(0x20, 0x0b);
	CHECK_EQ(in(0x20), 0x04);                   /* master: IRQ2 in service */
	out(0xa0, 0x0b);
	CHECK_EQ(in(0xa0), 0x10);                   /* slave: IRQ4 in service */
}

TEST(auto_eoi_leaves_nothing_in_service)
{
	reset();
	out(0x20, 0x11), out(0x21, 0x20), out(0x21, 0x04), out(0x21, 0x03);  /* ICW4: AEOI */
	out(0x21, 0x00);
	pic_raise_irq(&g, 0);
	pic_ack(&g, 0x20);
	out(0x20, 0x0b);
	CHECK_EQ(in(0x20), 0x00);
	pic_raise_irq(&g, 0);
	CHECK_EQ(pic_pending_vector(&g), 0x20);
}

UNIT_MAIN()
