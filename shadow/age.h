/*
 * Page ageing for shadow-paged guests: a guest-physical page is young if
 * any leaf spte mapping it was accessed since the last scan. The CPU sets A
 * in the sptes it walks, at every level: a leaf table whose parent sptes
 * have A clear has not been walked since the last scan, so the scan reads
 * only the present sptes of the leaf tables walked since (and one parent
 * spte per table): entries read <= 512 x tables walked + tables. Ages are
 * kept as "scan when last seen young", so a pass never costs O(guest
 * pages). Pure logic (host unit-tested).
 */
#ifndef SHADOW_AGE_H
#define SHADOW_AGE_H

#include "shadow/types.h"
#include "mm/age_count.h"

struct shadow_age {
	u64 pages;               /* guest pages aged: gfn 0 .. pages-1 */
	u32 *last_young;         /* [pages] scan number when last seen accessed */
	u32 scans;
	u64 count[AGE_MAX + 1];  /* pages of each age, exact */
};

struct shadow_age_stats {
	u64 sptes_visited;	/* leaf sptes read */
	u64 tables;		/* leaf tables (each: its parent sptes read) */
	u64 tables_scanned;	/* ...walked since the last scan: their sptes read */
	u64 pages_young;
	bool flushed;		/* the pass asked the host for a guest-wide flush */
};

/* Bytes of buffer shadow_age_init needs for a guest of 'pages' pages. */
u64 shadow_age_buffer_size(u64 pages);
void shadow_age_init(struct shadow_age *s, void *buf, u64 pages);
/* Age of one page: scans since it was last seen accessed (saturating). */
u8 shadow_age_page(const struct shadow_age *s, u64 gfn);
/*
 * One pass: every page ages by one, except those with an accessed spte,
 * which become age 0; the A bits read are cleared, and if any was set the
 * pass ends with one guest-wide flush through shadow_host.flush_tlb (a
 * translation cached before it would never set A again).
 */
void shadow_age_scan(struct shadow_mmu *mmu, struct shadow_age *s, struct shadow_age_stats *st);

#endif
