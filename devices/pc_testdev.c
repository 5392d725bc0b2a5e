/*
 * The IRQ lines of QEMU's pc-testdev (hw/misc/pc-testdev.c): a byte written
 * to port 0x2000+n sets ISA interrupt line n to the byte's truth value. The
 * ports are byte-wide (a wider access writes consecutive lines, as QEMU
 * splits it), write-only (reads float). Lines 0-15 are the 8259 pair's
 * inputs, which are edge-triggered here: a rising edge latches the request
 * in IRR, and lowering the line leaves a latched request alone (8259A data
 * sheet, edge-triggered mode). Lines 16-23 exist only on an I/O APIC, which
 * umbra does not model: they are kept and reach nothing.
 */
#include "devices/pc_testdev.h"
#include "devices/pic.h"

bool pc_testdev_irq_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value)
{
	unsigned line = port - PC_TESTDEV_IRQ_PORT;
	u32 bit = 1u << line;
	bool was = g->dev->testdev_irq_lines & bit;

	(void)size;
	if (in) {
		*value = 0xff;
		return true;
	}
	if (!(*value & 0xff)) {
		g->dev->testdev_irq_lines &= ~bit;
		return true;
	}
	g->dev->testdev_irq_lines |= bit;
	if (!was && line < 16)
		pic_raise_irq(g, (int)line);
	return true;
}
