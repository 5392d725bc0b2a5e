/*
 * A guest's life and clock, the parts every layer may use: ending it (a
 * device model, an exit handler or the scheduler may find it must stop) and
 * reading its TSC (its timers count on it).
 */
#include <stdarg.h>
#include <stdio.h>
#include "guest/guest.h"
#include "arch/x86/cpu.h"

void guest_end(struct guest *g, u32 exit_status, const char *fmt, ...)
{
	va_list ap;

	/* Once, whichever of its vCPUs (or the scheduler) gets here first. */
	if (__atomic_exchange_n(&g->ending, true, __ATOMIC_ACQ_REL))
		return;
	va_start(ap, fmt);
	vsnprintf(g->end_reason, sizeof(g->end_reason), fmt, ap);
	va_end(ap);
	g->guest_tsc_end = guest_tsc(g);
	g->state = GUEST_DONE;
	g->exit_status = exit_status;
	if (g->on_end)
		g->on_end(g);
	/* Its other vCPUs stop at their next exit: now, if they run elsewhere. */
	for (int i = 0; g->kick && i < g->nr_vcpus; i++)
		g->kick(&g->vcpu[i]);
}

u64 guest_tsc(const struct guest *g)
{
	return rdtsc() + g->tsc_offset;
}
