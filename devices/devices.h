/*
 * A guest's devices as one (devices/devices.c): creation, the port and
 * MMIO maps that route accesses to the models, and every timer and
 * interrupt source combined (LAPIC first, then the 8259 through LINT0).
 */
#ifndef DEVICES_DEVICES_H
#define DEVICES_DEVICES_H

#include "guest/guest.h"
#include "devices/types.h"

/* Create the devices of g (false: out of memory); devices_free() at the end. */
bool devices_init(struct guest *g);
void devices_free(struct guest *g);

/* All pending timers and interrupt sources, as one. Timer ticks that would
 * change nothing now (masked, or coalescing with a request not yet taken)
 * are not events; port and MMIO accesses bring every timer up to date. */
void devices_update(struct vcpu *v, u64 now);
u64 devices_next_event(struct vcpu *v);
int devices_pending_vector(struct vcpu *v);
void devices_ack(struct vcpu *v, int vector);
/* The guest wrote SLP_EN for S3 (devices/acpi_pm.c): true once, and from
 * then on the platform sleeps, no interrupt is offered, until a wake event. */
bool devices_enter_sleep(struct guest *g);
/* A halted (or sleeping) vCPU resumes: an interrupt is pending, or a wake
 * event has just ended a sleep (consumed by this call). */
bool devices_wakes_cpu(struct vcpu *v);
/* Which source raises vector, for messages ("APIC timer", "PIT", ...). */
const char *devices_vector_source(struct vcpu *v, int vector);
/* An NMI waiting for the CPU; devices_nmi_ack() when it is delivered. */
bool devices_nmi_pending(struct vcpu *val);
void devices_nmi_ack(struct vcpu *v);

/* A port access of size 1, 2 or 4 bytes; value holds the written value or
 * receives the read one. false: no device there. */
bool devices_port_io(struct vcpu *v, u16 port, unsigned size, bool in, u32 *value);
/* Guest-physical MMIO: false = nothing there. */
bool devices_mmio(struct vcpu *v, u64 gpa, void *buf, unsigned len, bool write);
bool devices_mmio_claimed(u64 gpa);

#endif
