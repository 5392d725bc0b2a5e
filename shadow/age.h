/*
 * Page ageing for shadow-paged guests: a guest-physical page is young if
 * any leaf spte mapping it was accessed since the last scan. The CPU sets A
 * in the sptes it walks; the scan reads and clears them through the reverse
 * map (gfn -> sptes), so its cost follows the mapped pages, not the guest
 * size or the shadow tables. Pure logic (host unit-tested).
 */
#ifndef SHADOW_AGE_H
#define SHADOW_AGE_H

#include "shadow/shadow.h"
#include "mm/age_count.h"

struct shadow_age {
	u64 pages;               /* guest pages aged: gfn 0 .. pages-1 */
	u8 *age;                 /* [pages] scans since last access, saturating */
	u8 *young;               /* [pages / 8] scratch bitmap for one scan */
	u64 count[AGE_MAX + 1];  /* pages of each age, exact */
	u64 scans;
};

struct shadow_age_stats {
	u64 sptes_visited;
	u64 pages_young;
};

/* Bytes of buffer shadow_age_init needs for a guest of 'pages' pages. */
u64 shadow_age_buffer_size(u64 pages);
void shadow_age_init(struct shadow_age *s, void *buf, u64 pages);
/*
 * One pass: every page ages by one, except those with an accessed spte,
 * which become age 0; the A bits read are cleared. Returns true: the
 * guest's TLB must be flushed once before it runs again (a cached
 * translation would never set A again).
 */
bool shadow_age_scan(struct shadow_mmu *mmu, struct shadow_age *s, struct shadow_age_stats *st);

#endif
