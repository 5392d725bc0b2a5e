/* Shadow page ageing through the reverse map (see age.h). */
#include <string.h>
#include "shadow/age.h"
#include "shadow/spage.h"

u64 shadow_age_buffer_size(u64 pages)
{
	return pages * sizeof(u32);
}

void shadow_age_init(struct shadow_age *s, void *buf, u64 pages)
{
	memset(s, 0, sizeof(*s));
	s->pages = pages;
	s->last_young = buf;
	memset(buf, 0, shadow_age_buffer_size(pages));
	s->count[0] = pages;  /* every page starts young, as in the EPT scanner */
}

u8 shadow_age_page(const struct shadow_age *s, u64 gfn)
{
	u32 age = s->scans - s->last_young[gfn];

	return age < AGE_MAX ? (u8)age : AGE_MAX;
}

/* A guest page found accessed in this scan: age 0 (once, whatever the number of sptes). */
static void young(struct shadow_age *s, u64 gfn, struct shadow_age_stats *st)
{
	u8 age;

	if (gfn >= s->pages)
		return;
	age = shadow_age_page(s, gfn);
	if (age == 0)
		return;	/* another spte of this scan saw it */
	s->count[age]--;
	s->count[0]++;
	s->last_young[gfn] = s->scans;
	st->pages_young++;
}

/* Test and clear A in the present sptes of one leaf table. */
static void scan_table(struct shadow_mmu *mmu, struct shadow_page *sp, struct shadow_age *s,
		       struct shadow_age_stats *st)
{
	for (int w = 0; w < PT_ENTRIES / 64; w++) {
		for (u64 bits = sp->present[w]; bits; bits &= bits - 1) {
			int i = w * 64 + __builtin_ctzll(bits);

			st->sptes_visited++;
			if (sp_test_clear_a(mmu, &sp->spt[i]))
				young(s, sp->aux[i], st);
		}
	}
}

void shadow_age_scan(struct shadow_mmu *mmu, struct shadow_age *s, struct shadow_age_stats *st)
{
	memset(st, 0, sizeof(*st));
	/* Every page is one scan older: the counts shift, the oldest merge. */
	s->scans++;
	s->count[AGE_MAX] += s->count[AGE_MAX - 1];
	memmove(&s->count[1], &s->count[0], (AGE_MAX - 1) * sizeof(s->count[0]));
	s->count[0] = 0;
	/*
	 * Then the pages found accessed become young again. A leaf table the CPU
	 * has not walked through since the last scan (its parent sptes' A bits
	 * clear, that scan's flush having emptied the paging-structure caches)
	 * can have no leaf A bit set since: it is skipped unread.
	 */
	for (struct shadow_page *sp = mmu->oldest; sp; sp = sp->newer) {
		if (!sp_is_leaf_table(sp))
			continue;
		st->tables++;
		sp_collect_parent_a(mmu, sp);
		if (!sp->age_used)
			continue;
		sp->age_used = false;
		st->tables_scanned++;
		scan_table(mmu, sp, s, st);
	}
	/* One flush for the pass: a translation cached before it would set no A. */
	st->flushed = mmu->flush_pending;
	sp_commit_zap(mmu);
}
