/*
 * A guest's time limit counts everything it costs the CPU: its time in VMX
 * non-root operation and the hypervisor's time on its behalf (exits, device
 * models, emulation), so neither an interrupt storm nor a loop of exits
 * escapes it. When the time is over, the end message says what the guest
 * was doing over its last window of that time: an interrupt storm and its
 * source, running without exits (interrupts on or off), or its busiest exit.
 */
#include <stdio.h>
#include "vmx/watchdog.h"
#include "vmx/exit.h"
#include "vmx/vmcs.h"
#include "devices/devices.h"
#include "arch/x86/cpu.h"
#include "arch/x86/machine.h"
#include "lib/config.h"

#define WINDOW_MS 250   /* what "lately" means */

static u64 ms_to_tsc(u64 ms)
{
	return ms * machine_timing_khz();
}

static u64 tsc_to_ms(u64 tsc)
{
	return tsc / machine_timing_khz();
}

static u64 limit_ms(const struct guest *g)
{
	return g->cfg.timeout_ms ? g->cfg.timeout_ms : hv_config.guest_timeout_ms;
}

static void snapshot(const struct guest *g, struct guest_window *w)
{
	w->used_tsc = g->used_tsc;
	w->run_tsc = g->run_tsc;
	w->irqs = g->injected_irqs;
	for (int r = 0; r < EXIT_REASON_COUNT; r++)
		w->exits[r] = g->exit_count[r];
}

/* What happened since the window began. */
static void window_delta(const struct guest *g, struct guest_window *d)
{
	const struct guest_window *s = &g->window_start;

	snapshot(g, d);
	d->used_tsc -= s->used_tsc;
	d->run_tsc -= s->run_tsc;
	d->irqs -= s->irqs;
	for (int r = 0; r < EXIT_REASON_COUNT; r++)
		d->exits[r] -= s->exits[r];
}

void watchdog_account(struct guest *g, u64 ticks)
{
	/* The window moves under stat_lock: vCPUs may account at once. */
	if (guest_stat_add(&g->used_tsc, ticks) + ticks - g->window_start.used_tsc <
	    ms_to_tsc(WINDOW_MS))
		return;
	spin_lock(&g->stat_lock);
	if (g->used_tsc - g->window_start.used_tsc >= ms_to_tsc(WINDOW_MS)) {
		window_delta(g, &g->last_window);
		snapshot(g, &g->window_start);
	}
	spin_unlock(&g->stat_lock);
}

/* The guest's doings in the last window (a young current one is too short to say). */
static void describe(struct vcpu *v, char *buf, size_t len)
{
	struct guest *g = v->g;
	struct guest_window w;
	u64 exits = 0, top = 0, ms, hv_pct;
	int top_reason = 0;
	u64 rip = vmcs_readn(GUEST_RIP);
	bool intr_on = vmcs_readn(GUEST_RFLAGS) & RFLAGS_IF;

	window_delta(g, &w);
	if (w.used_tsc < ms_to_tsc(WINDOW_MS / 2) && g->last_window.used_tsc)
		w = g->last_window;
	for (int r = 0; r < EXIT_REASON_COUNT; r++) {
		exits += w.exits[r];
		if (w.exits[r] > top) {
			top = w.exits[r];
			top_reason = r;
		}
	}
	ms = tsc_to_ms(w.used_tsc);
	hv_pct = w.used_tsc ? 100 * (w.used_tsc - w.run_tsc) / w.used_tsc : 0;
	/* Interrupts arriving as fast as the hypervisor can deliver them. */
	if (w.irqs >= 100 && w.irqs * 4 >= exits && hv_pct >= 50) {
		snprintf(buf, len, "interrupt storm: %llu %s interrupts (vector %#x) in %llu ms, "
			 "taken at RIP %#llx; %llu%% of its time went to delivering them",
			 (unsigned long long)w.irqs, devices_vector_source(v, v->last_irq_vector),
			 v->last_irq_vector, (unsigned long long)ms,
			 (unsigned long long)v->last_irq_rip, (unsigned long long)hv_pct);
	} else if (top_reason == EXIT_REASON_PREEMPTION_TIMER || !exits) {
		snprintf(buf, len, "running without exits at RIP %#llx with interrupts %s "
			 "(%llu exits in %llu ms, all time-slice ends)", (unsigned long long)rip,
			 intr_on ? "on" : "off", (unsigned long long)exits, (unsigned long long)ms);
	} else {
		snprintf(buf, len, "%llu exits in %llu ms, %llu%% of them %s, the last at RIP %#llx; "
			 "%llu%% of its time in the hypervisor", (unsigned long long)exits,
			 (unsigned long long)ms, (unsigned long long)(100 * top / exits),
			 vmx_exit_reason_name((u32)top_reason), (unsigned long long)rip,
			 (unsigned long long)hv_pct);
	}
}

bool watchdog_expired(struct vcpu *v)
{
	struct guest *g = v->g;
	char what[160];

	if (g->used_tsc <= ms_to_tsc(limit_ms(g)))
		return false;
	describe(v, what, sizeof(what));
	guest_end(g, 0, "still running after %llu ms (%s; %llu ms of it in the hypervisor on its "
		  "behalf): %s", (unsigned long long)limit_ms(g),
		  g->cfg.timeout_ms ? "its timeout_ms" : "guest_timeout_ms",
		  (unsigned long long)tsc_to_ms(g->used_tsc - g->run_tsc), what);
	return true;
}
