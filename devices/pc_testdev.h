/* QEMU's pc-testdev IRQ lines: ports 0x2000+n drive ISA IRQ n (devices/pc_testdev.c). */
#ifndef DEVICES_PC_TESTDEV_H
#define DEVICES_PC_TESTDEV_H

#include "guest/guest.h"
#include "devices/types.h"

#define PC_TESTDEV_IRQ_PORT 0x2000
#define PC_TESTDEV_IRQ_LINES 24

/* A byte written to port 0x2000+n sets line n to (byte != 0). */
bool pc_testdev_irq_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);

#endif
