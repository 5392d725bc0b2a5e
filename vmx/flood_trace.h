/*
 * Debug trace of shadow flood detection (guest option flood_trace=on, off by
 * default): every event of shadow/flood.c for one guest, with the guest's
 * RIP, CR3 and the exit's reason and qualification at the time, kept in
 * memory (no log line while the guest runs, so its timing barely moves) and
 * written to the log when the guest ends: every event of each frame that was
 * shadowed again as a live table (a false positive), then a count per kind.
 */
#ifndef VMX_FLOOD_TRACE_H
#define VMX_FLOOD_TRACE_H

#include "guest/guest.h"
#include "shadow/types.h"

/* Start tracing g's shadow MMU (false: no memory, g runs untraced). */
bool flood_trace_start(struct guest *g, struct shadow_mmu *mmu);
/* Stop, log what was found, free the buffer (nothing if g was not traced). */
void flood_trace_stop(struct guest *g, struct shadow_mmu *mmu);

#endif
