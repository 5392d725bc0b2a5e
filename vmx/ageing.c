/*
 * Host-side page ageing, VMX side: every scan_ms of a guest's own time,
 * read and clear the accessed information of its memory and keep an age
 * per guest page (the guest's struct mmu_ops: ept/age.c for EPT guests, A/D
 * bits or access tracking when the CPU has no EPT A/D; shadow/age.c through
 * the reverse map for shadow guests). Each scan prints an "age" line; the guest can read its
 * working set with HC_STAT (vmx/hypercall.c). Scanning (and its log line)
 * is hidden from the guest's clock, so ageing does not slow the guest's time.
 */
#include "vmx/ageing.h"
#include "vmx/mmu.h"
#include "mm/age_count.h"
#include "mm/mm.h"
#include "arch/x86/cpu.h"
#include "arch/x86/machine.h"
#include "arch/x86/log.h"

static const unsigned ws_k[AGEING_WS_COUNT] = { 1, 2, 4, 8 };

struct guest_ageing {
	void *buf;
	u64 buf_pages;
	u64 period;            /* guest TSC ticks between scans */
	u64 next;              /* guest TSC of the next scan */
	u64 scans;
	u64 ws[AGEING_WS_COUNT];
	u64 ticks_total;       /* host ticks spent scanning */
	u64 visited_total;     /* EPT entries or sptes read by all scans */
	u64 faults_total;      /* access-tracking faults taken */
	u64 splits_total;      /* EPT: 2 MiB pages split where used */
	u64 merges_total;      /* EPT: split blocks merged back when cold */
	u64 large;             /* EPT: 2 MiB pages after the last scan */
};

bool ageing_init(struct guest *g)
{
	struct guest_ageing *a;
	u64 pages = g->mem.size / PAGE_SIZE;
	u64 bytes = g->mmu->age_buffer_size(pages);

	if (!g->cfg.scan_ms)
		return true;
	a = alloc_zeroed_pages(ALIGN_UP(sizeof(*a), PAGE_SIZE) / PAGE_SIZE);
	if (!a)
		return false;
	a->buf_pages = ALIGN_UP(bytes, PAGE_SIZE) / PAGE_SIZE;
	a->buf = alloc_zeroed_pages(a->buf_pages);
	if (!a->buf)
		return false;
	g->mmu->age_init(g, a->buf, pages);
	a->period = g->cfg.scan_ms * machine_timing_khz();
	g->ageing = a;
	return true;
}

void ageing_destroy(struct guest *g)
{
	struct guest_ageing *a = g->ageing;

	if (!a)
		return;
	g->mmu->age_destroy(g);
	free_pages(a->buf, a->buf_pages);
	free_pages(a, ALIGN_UP(sizeof(*a), PAGE_SIZE) / PAGE_SIZE);
	g->ageing = NULL;
}

u64 ageing_next_event(struct guest *g, u64 now)
{
	if (!g->ageing)
		return 0;
	if (!g->ageing->next)
		g->ageing->next = now + g->ageing->period;
	return g->ageing->next;
}

u64 ageing_maybe_scan(struct vcpu *v, u64 now, bool *flush)
{
	struct guest *g = v->g;
	struct guest_ageing *a = g->ageing;
	struct mmu_age_scan scan = { 0 };
	u64 hist[AGE_BUCKETS], t0;

	if (!a || now < ageing_next_event(g, now))
		return 0;
	t0 = rdtsc();
	g->mmu->age_scan(g, &scan);
	*flush = scan.flush;  /* one flush per pass, not per page, by the caller */
	a->ticks_total += rdtsc() - t0;
	a->visited_total += scan.visited;
	a->faults_total += scan.faults;
	a->splits_total += scan.splits;
	a->merges_total += scan.merges;
	a->large = scan.large;
	a->scans++;
	for (int i = 0; i < AGEING_WS_COUNT; i++)
		a->ws[i] = age_working_set(scan.count, ws_k[i]);
	age_histogram(scan.count, hist);
	log_printf("hv", "age %s scan=%llu t_ms=%llu ws1=%llu ws2=%llu ws4=%llu ws8=%llu "
		   "hist=%llu,%llu,%llu,%llu,%llu,%llu visited=%llu skipped=%llu young=%llu "
		   "faults=%llu ticks=%llu sp=%llu large=%llu split=%llu merged=%llu", g->cfg.name, (unsigned long long)a->scans,
		   (unsigned long long)(now - g->guest_tsc_start) /
			   machine_timing_khz(),
		   (unsigned long long)a->ws[0], (unsigned long long)a->ws[1],
		   (unsigned long long)a->ws[2], (unsigned long long)a->ws[3],
		   (unsigned long long)hist[0], (unsigned long long)hist[1],
		   (unsigned long long)hist[2], (unsigned long long)hist[3],
		   (unsigned long long)hist[4], (unsigned long long)hist[5],
		   (unsigned long long)scan.visited, (unsigned long long)scan.skipped,
		   (unsigned long long)scan.young, (unsigned long long)scan.faults,
		   (unsigned long long)(rdtsc() - t0), (unsigned long long)g->mmu->pages(g),
		   (unsigned long long)scan.large, (unsigned long long)scan.splits,
		   (unsigned long long)scan.merges);
	/* Missed periods (the guest was halted) are not made up for. */
	a->next += a->period;
	if (a->next <= now)
		a->next = now + a->period;
	return rdtsc() - t0;
}

bool ageing_stat(struct guest *g, u64 id, s64 *value)
{
	struct guest_ageing *a = g->ageing;

	if (!a)
		return false;
	for (int i = 0; i < AGEING_WS_COUNT; i++) {
		if (id == AGEING_STAT_WS + ws_k[i]) {
			*value = (s64)a->ws[i];
			return true;
		}
	}
	if (id == AGEING_STAT_SCANS || id == AGEING_STAT_PERIOD) {
		*value = (s64)(id == AGEING_STAT_SCANS ? a->scans : a->period);
		return true;
	}
	return false;
}

void ageing_report(struct guest *g)
{
	struct guest_ageing *a = g->ageing;

	if (!a)
		return;
	log_printf("hv", "stats %s ageing scans=%llu ticks=%llu ticks_per_scan=%llu "
		   "visited_per_scan=%llu tracking_faults=%llu large_pages=%llu splits=%llu "
		   "merges=%llu", g->cfg.name,
		   (unsigned long long)a->scans, (unsigned long long)a->ticks_total,
		   (unsigned long long)(a->scans ? a->ticks_total / a->scans : 0),
		   (unsigned long long)(a->scans ? a->visited_total / a->scans : 0),
		   (unsigned long long)a->faults_total, (unsigned long long)a->large,
		   (unsigned long long)a->splits_total, (unsigned long long)a->merges_total);
}
