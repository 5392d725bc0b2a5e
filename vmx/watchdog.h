/* A guest's time limit and what it was doing when it ran out (vmx/watchdog.c). */
#ifndef VMX_WATCHDOG_H
#define VMX_WATCHDOG_H

#include "guest/guest.h"

/* ticks more host time spent on g, in the guest or in the hypervisor for it. */
void watchdog_account(struct guest *g, u64 ticks);
/* Past its limit (timeout_ms, else guest_timeout_ms)? Then it is ended with a
 * message naming what it did lately, and this returns true. g's VMCS must be
 * current. */
bool watchdog_expired(struct vcpu *v);

#endif
