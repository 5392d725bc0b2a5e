/* The local xAPIC (devices/lapic.c). Times are guest TSC. */
#ifndef DEVICES_LAPIC_H
#define DEVICES_LAPIC_H

#include "guest/guest.h"
#include "devices/types.h"

void lapic_reset(struct guest *g);
void lapic_update(struct guest *g, u64 now);
/* When the timer next changes something the guest can see (guest TSC), or 0. */
u64 lapic_next_event(struct guest *g);
int lapic_pending_vector(struct guest *g);
void lapic_ack(struct guest *g, int vector);
/* An NMI sent to this CPU (ICR delivery mode NMI) and not yet delivered. */
bool lapic_nmi_pending(struct guest *g);
void lapic_nmi_ack(struct guest *g);
bool lapic_accepts_pic(struct guest *g);
/* The vector the timer's LVT entry names. */
int lapic_timer_vector(struct guest *g);
u64 lapic_read_tsc_deadline(struct guest *g);
void lapic_write_tsc_deadline(struct guest *g, u64 v);
u8 lapic_get_tpr(struct guest *g);
void lapic_set_tpr(struct guest *g, u8 cr8);
bool lapic_mmio(struct guest *g, u64 offset, void *buf, unsigned len, bool write);

#endif
