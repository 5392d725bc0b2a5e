/* The 8254 PIT: channel 0 on IRQ0, channel 2 gated by port 0x61 (devices/pit.c). Times are guest TSC. */
#ifndef DEVICES_PIT_H
#define DEVICES_PIT_H

#include "guest/guest.h"
#include "devices/types.h"

/* Raise IRQ0 if its time has come (now: guest TSC). */
void pit_update(struct guest *g, u64 now);
/* The guest TSC of the next IRQ0 edge that matters (see pic_edge_coalesces()), or 0. */
u64 pit_next_event(struct guest *g);
bool pit_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);
bool port61_io(struct guest *g, u16 port, unsigned size, bool in, u32 *value);

#endif
