/*
 * Host-side page ageing of a guest with scan_ms=N (vmx/ageing.c): scans of
 * its memory's accessed bits through its struct mmu_ops, working sets, and
 * the HC_STAT figures a guest can read.
 */
#ifndef VMX_AGEING_H
#define VMX_AGEING_H

#include "guest/guest.h"

#define AGEING_WS_COUNT 4          /* working sets over the last 1, 2, 4, 8 scans */
#define AGEING_STAT_WS 0x200       /* HC_STAT ids: 0x200 + k = pages used in the last k scans */
#define AGEING_STAT_SCANS 0x210    /* scans so far */
#define AGEING_STAT_PERIOD 0x211   /* scan period in guest TSC ticks */

bool ageing_init(struct guest *g);
void ageing_destroy(struct guest *g);
/* Guest TSC of the next scan (0: no ageing). */
u64 ageing_next_event(struct guest *g, u64 now);
/* Scan if it is due; returns the host ticks spent, which the caller hides
 * from the guest's clock (the scan is the host's work); *flush: accessed
 * bits were cleared, and every vCPU's TLB must forget them. */
u64 ageing_maybe_scan(struct vcpu *v, u64 now, bool *flush);
bool ageing_stat(struct guest *g, u64 id, s64 *value);
void ageing_report(struct guest *g);

#endif
