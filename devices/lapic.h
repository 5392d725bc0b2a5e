/* The local xAPIC (devices/lapic.c). Times are guest TSC. */
#ifndef DEVICES_LAPIC_H
#define DEVICES_LAPIC_H

#include "guest/guest.h"
#include "devices/types.h"

void lapic_reset(struct vcpu *v);
void lapic_update(struct vcpu *v, u64 now);
/* When the timer next changes something the guest can see (guest TSC), or 0. */
u64 lapic_next_event(struct vcpu *v);
int lapic_pending_vector(struct vcpu *v);
void lapic_ack(struct vcpu *v, int vector);
/* An NMI sent to this CPU (ICR delivery mode NMI) and not yet delivered. */
bool lapic_nmi_pending(struct vcpu *v);
void lapic_nmi_ack(struct vcpu *v);
bool lapic_accepts_pic(struct vcpu *v);
/* The vector the timer's LVT entry names. */
int lapic_timer_vector(struct vcpu *v);
u64 lapic_read_tsc_deadline(struct vcpu *v);
void lapic_write_tsc_deadline(struct vcpu *v, u64 val);
u8 lapic_get_tpr(struct vcpu *v);
void lapic_set_tpr(struct vcpu *v, u8 cr8);
/* INIT and start-up IPIs: an INIT received resets the APIC and is taken
 * once (true); a SIPI's vector for a vCPU waiting for one (-1: none);
 * either one waiting (a sleeping vCPU has something to do). */
bool lapic_take_init(struct vcpu *v);
int lapic_take_sipi(struct vcpu *v);
bool lapic_start_pending(const struct vcpu *v);
/* IA32_APIC_BASE[11], the global enable (SDM 11.4.3). */
bool lapic_enabled(const struct vcpu *v);
void lapic_set_enabled(struct vcpu *v, bool on);
bool lapic_mmio(struct vcpu *v, u64 offset, void *buf, unsigned len, bool write);

#endif
