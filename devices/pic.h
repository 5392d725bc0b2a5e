/* The 8259A master/slave PIC pair (devices/pic.c). */
#ifndef DEVICES_PIC_H
#define DEVICES_PIC_H

#include "guest/guest.h"
#include "devices/types.h"

void pic_reset(struct guest *g);
void pic_raise_irq(struct guest *g, int irq);
/* An edge on irq now would change nothing the CPU is offered: the request is
 * already latched in IRR (edges coalesce), or the line is masked. */
bool pic_edge_coalesces(struct guest *g, int irq);
/* The vector to deliver, or -1; pic_ack() marks it in service. */
int pic_pending_vector(struct guest *g);
void pic_ack(struct guest *g, int vector);
/* The IRQ (0-15) vector stands for with the vector bases programmed, or -1. */
int pic_irq_of_vector(struct guest *g, int vector);
bool pic_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);

#endif
