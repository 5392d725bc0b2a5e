/*
 * Debug trace of shadow flood detection (see flood_trace.h).
 */
#include "vmx/flood_trace.h"
#include "arch/x86/percpu.h"
#include "vmx/mmu.h"
#include "vmx/vmcs.h"
#include "shadow/flood.h"
#include "mm/mm.h"
#include "arch/x86/log.h"

#define TRACE_EVENTS (1u << 17)	/* 7 MiB: a whole Linux run (about 60,000 events) */
#define TRACE_GUESTS 4
#define TRACE_LIVE 16		/* live frames whose events are logged */

struct trace_entry {
	struct shadow_flood_event ev;
	u64 rip, cr3, exit_reason, qual;
};

static struct flood_trace {
	struct shadow_mmu *mmu;
	struct guest *g;
	struct trace_entry *e;
	u64 n;			/* events seen; the buffer keeps the first TRACE_EVENTS */
} traces[TRACE_GUESTS];

#define TRACE_PAGES (ALIGN_UP((u64)TRACE_EVENTS * sizeof(struct trace_entry), PAGE_SIZE) / PAGE_SIZE)

static struct flood_trace *trace_of(const struct shadow_mmu *mmu)
{
	for (int i = 0; i < TRACE_GUESTS; i++)
		if (traces[i].mmu == mmu)
			return &traces[i];
	return NULL;
}

/* Called inside the guest's exit handling: its VMCS is the current one. */
static void record(struct shadow_mmu *mmu, const struct shadow_flood_event *ev)
{
	struct flood_trace *t = trace_of(mmu);
	struct trace_entry *e;

	if (!t || t->n++ >= TRACE_EVENTS)
		return;
	e = &t->e[t->n - 1];
	e->ev = *ev;
	e->rip = vmcs_readn(GUEST_RIP);
	e->cr3 = t->g->mmu->guest_cr3(this_cpu()->current_vmcs);  /* the vCPU exiting */
	e->exit_reason = vmcs_read32(VM_EXIT_REASON);
	e->qual = vmcs_readn(EXIT_QUALIFICATION);
}

bool flood_trace_start(struct guest *g, struct shadow_mmu *mmu)
{
	struct flood_trace *t = trace_of(NULL);

	if (!t || !(t->e = alloc_zeroed_pages(TRACE_PAGES))) {
		pr_warn("%s: flood_trace: no memory, not traced", g->cfg.name);
		return false;
	}
	t->mmu = mmu;
	t->g = g;
	t->n = 0;
	shadow_flood_trace(mmu, record);
	return true;
}

static const char *const what_names[] = { "write", "check", "unshadow", "link", "reshadow" };
static const char *const detail_names[][4] = {
	{ "upkeep", "zero", "other", "?" },
	{ "used", "unused", "no-chance-yet", "emptied" },
	{ "count", "zero-run", "?", "?" },
	{ "", "", "", "" },
	{ "live", "reused", "late", "?" },
};

static void log_entry(const struct guest *g, u64 i, const struct trace_entry *e)
{
	const struct shadow_flood_event *ev = &e->ev;

	pr_info("%s: flood_trace #%llu gfn %#llx %s %s count %u off %#x len %u faults %llu "
		"events %llu rip %#llx cr3 %#llx exit %llu qual %#llx", g->cfg.name,
		(unsigned long long)i, (unsigned long long)ev->gfn, what_names[ev->what],
		detail_names[ev->what][ev->detail & 3], ev->count, ev->off, ev->len,
		(unsigned long long)ev->faults, (unsigned long long)ev->events,
		(unsigned long long)e->rip, (unsigned long long)e->cr3,
		(unsigned long long)e->exit_reason & 0xffff, (unsigned long long)e->qual);
}

void flood_trace_stop(struct guest *g, struct shadow_mmu *mmu)
{
	struct flood_trace *t = trace_of(mmu);
	u64 kept, live[TRACE_LIVE], nlive = 0, count[5][4] = { { 0 } };

	if (!mmu || !t)
		return;
	shadow_flood_trace(mmu, NULL);
	kept = t->n < TRACE_EVENTS ? t->n : TRACE_EVENTS;
	for (u64 i = 0; i < kept; i++) {
		const struct shadow_flood_event *ev = &t->e[i].ev;

		count[ev->what][ev->detail & 3]++;
		if (ev->what == SHADOW_FLOOD_EV_RESHADOW && ev->detail == SHADOW_FLOOD_LIVE &&
		    nlive < TRACE_LIVE)
			live[nlive++] = ev->gfn;
	}
	for (u64 i = 0; i < kept; i++)
		for (u64 l = 0; l < nlive; l++)
			if (t->e[i].ev.gfn == live[l]) {
				log_entry(g, i, &t->e[i]);
				break;
			}
	for (int w = 0; w < 5; w++)
		for (int d = 0; d < 4; d++)
			if (count[w][d])
				pr_info("%s: flood_trace %s %s: %llu", g->cfg.name, what_names[w],
					detail_names[w][d], (unsigned long long)count[w][d]);
	pr_info("%s: flood_trace: %llu events, %llu kept, %llu live frames", g->cfg.name,
		(unsigned long long)t->n, (unsigned long long)kept, (unsigned long long)nlive);
	free_pages(t->e, TRACE_PAGES);
	t->e = NULL;
	t->mmu = NULL;
	t->g = NULL;
}
