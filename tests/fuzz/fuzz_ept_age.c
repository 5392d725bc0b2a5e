/*
 * libFuzzer target for EPT page ageing (ept/age.c). The input picks the
 * mode, the tracking cap, a 32 MiB guest layout (per 2 MiB region: hole,
 * 2 MiB leaf, or a table of 4 KiB leaves with some holes, with varied
 * rights) and a list of operations: guest accesses (the simulated CPU sets A
 * at every level, or takes a tracking fault), scans and flattens.
 *
 * Oracle, from the definitions rather than a second implementation: after a
 * scan every page is 0 (its leaf was used), its old age + 1 (saturating; it
 * cannot have been used), or unchanged (tracking mode, nobody watched it);
 * count[] matches the pages' ages; flattening changes no age; giving rights
 * back restores every leaf bit for bit.
 */
#include <stdlib.h>
#include <string.h>

#include "ept/age.h"
#include "mm/pt.h"
#include "mm/pte.h"

#define REGIONS 16
#define PAGES (REGIONS * 512 - 13)  /* a partial last region on purpose */
#define MAX_TABLES (REGIONS + 3)

static u64 tables[MAX_TABLES][512] __attribute__((aligned(4096)));
static int ntables;
static u8 buf[PAGES + REGIONS + 2];
static u8 before[PAGES];
static bool tracked_before[PAGES];
static bool used[PAGES];        /* leaf used since the last scan */
static u64 orig[PAGES];         /* each page's leaf entry as mapped */

static void *alloc_table(void *ctx)
{
	(void)ctx;
	if (ntables == MAX_TABLES)
		return NULL;
	memset(tables[ntables], 0, 4096);
	return tables[ntables++];
}

/* The leaf for gfn (tracked or not) and its first page and size. */
static u64 *leaf_of(u64 gfn, u64 *first, u64 *n)
{
	u64 *t = tables[0];

	for (int level = 4; level >= 1; level--) {
		u64 e = t[PT_INDEX(gfn << 12, level)];

		*n = 1ull << (9 * (level - 1));
		*first = gfn & ~(*n - 1);
		if (!(e & (EPT_RWX | EPT_AGE_SAVED_RWX)))
			return NULL;
		if (level == 1 || (e & EPT_LARGE))
			return &t[PT_INDEX(gfn << 12, level)];
		t = (u64 *)(uintptr_t)(e & PTE_ADDR_MASK52);
	}
	return NULL;
}

/* The guest accesses gfn. */
static void access(struct ept_age *s, u64 gfn)
{
	u64 first, n, *t = tables[0];
	u64 *leaf = leaf_of(gfn, &first, &n);

	if (!leaf)
		return;
	if (s->mode == EPT_AGE_TRACK) {
		bool tracked = !(*leaf & EPT_RWX);

		if (ept_age_fault(s, tables[0], gfn << 12) != tracked)
			abort();
		if (*leaf != orig[gfn] || (tracked && ept_age_page(s, gfn) != 0))
			abort();
		return;
	}
	for (int level = 4; level >= 1; level--) {
		u64 *e = &t[PT_INDEX(gfn << 12, level)];

		*e |= EPT_A;
		if (level == 1 || (*e & EPT_LARGE))
			break;
		t = (u64 *)(uintptr_t)(*e & PTE_ADDR_MASK52);
	}
	for (u64 p = first; p < first + n && p < PAGES; p++)
		used[p] = true;
}

static void check_counts(const struct ept_age *s)
{
	u64 count[EPT_AGE_MAX + 1] = { 0 };

	for (u64 p = 0; p < PAGES; p++)
		count[ept_age_page(s, p)]++;
	if (memcmp(count, s->count, sizeof(count)))
		abort();
}

static void scan(struct ept_age *s)
{
	u64 first, n;

	for (u64 p = 0; p < PAGES; p++) {
		u64 *leaf = leaf_of(p, &first, &n);

		before[p] = ept_age_page(s, p);
		tracked_before[p] = leaf && !(*leaf & EPT_RWX);
	}
	ept_age_scan(s, tables[0], NULL);  /* no TLB here: INVEPT is a no-op */
	for (u64 p = 0; p < PAGES; p++) {
		u8 age = ept_age_page(s, p), older = before[p] < EPT_AGE_MAX ? before[p] + 1 :
						    EPT_AGE_MAX;
		bool watched = !leaf_of(p, &first, &n) || tracked_before[p];

		if (s->mode == EPT_AGE_AD && age != (used[p] ? 0 : older))
			abort();
		if (s->mode == EPT_AGE_TRACK && age != (watched ? older : before[p]))
			abort();
		used[p] = false;
	}
	check_counts(s);
}

static void map_layout(const u8 *layout)
{
	static const u64 rights[4] = { EPT_R, EPT_R | EPT_W, EPT_R | EPT_X, EPT_RWX };

	for (u64 r = 0; r < REGIONS; r++) {
		u64 gpa = r << 21, flags = rights[(layout[r] >> 2) & 3] | EPT_MT_WB << EPT_MT_SHIFT;

		if ((layout[r] & 3) == 1) {
			pt_map(&ept_format, tables[0], gpa, gpa, 2ull << 20, flags, PT_LEVEL_2M,
			       alloc_table, NULL);
		} else if ((layout[r] & 3) >= 2) {
			for (u64 i = 0; i < 512; i++)
				if ((layout[r] & 3) == 3 || (i * 7 + layout[r]) % 5)
					pt_map(&ept_format, tables[0], gpa + (i << 12), gpa + (i << 12),
					       4096, flags, PT_LEVEL_4K, alloc_table, NULL);
		}
	}
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct ept_age s;
	u64 first, n, *leaf;

	if (size < 2 + REGIONS || ept_age_buffer_size(PAGES) > sizeof(buf))
		return 0;
	ntables = 0;
	alloc_table(NULL);  /* the root */
	memset(used, 0, sizeof(used));
	map_layout(data + 2);
	for (u64 p = 0; p < PAGES; p++)
		orig[p] = (leaf = leaf_of(p, &first, &n)) ? *leaf : 0;
	ept_age_init(&s, buf, PAGES, data[0] & 1 ? EPT_AGE_TRACK : EPT_AGE_AD,
		     data[1] ? data[1] : EPT_AGE_NO_LIMIT);
	for (size_t i = 2 + REGIONS; i + 2 < size; i += 3) {
		u64 gfn = (data[i + 1] | (u64)data[i + 2] << 8) % PAGES;

		switch (data[i] & 3) {
		case 0:
		case 1:
			access(&s, gfn);
			break;
		case 2:
			scan(&s);
			break;
		case 3:
			for (u64 p = 0; p < PAGES; p++)
				before[p] = ept_age_page(&s, p);
			ept_age_flatten(&s);
			for (u64 p = 0; p < PAGES; p++)
				if (s.age[p] != before[p] || ept_age_page(&s, p) != before[p])
					abort();
			break;
		}
	}
	check_counts(&s);
	ept_age_untrack_all(tables[0]);
	for (u64 p = 0; p < PAGES; p++)
		if ((leaf = leaf_of(p, &first, &n)) && (*leaf & ~EPT_A) != orig[p])
			abort();
	return 0;
}
