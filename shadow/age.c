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

/* Test and clear A in every leaf spte of one gfn. */
static bool gfn_accessed(struct shadow_mmu *mmu, struct rmap_head *head,
			 struct shadow_age_stats *st)
{
	bool young = false;

	for (struct spte_list_node *n = head->list.head; n; n = n->next) {
		for (u32 i = 0; i < n->count; i++) {
			st->sptes_visited++;
			young |= sp_test_clear_a(mmu, n->spte[i]);
		}
	}
	return young;
}

void shadow_age_scan(struct shadow_mmu *mmu, struct shadow_age *s, struct shadow_age_stats *st)
{
	memset(st, 0, sizeof(*st));
	/* Every page is one scan older: the counts shift, the oldest merge. */
	s->scans++;
	s->count[AGE_MAX] += s->count[AGE_MAX - 1];
	memmove(&s->count[1], &s->count[0], (AGE_MAX - 1) * sizeof(s->count[0]));
	s->count[0] = 0;
	/* Then the pages found accessed become young again. */
	for (u32 b = 0; b < SHADOW_RMAP_HASH; b++) {
		for (struct rmap_head *h = mmu->rmap_hash[b]; h; h = h->next) {
			u8 age;

			if (h->gfn >= s->pages || !gfn_accessed(mmu, h, st))
				continue;
			age = shadow_age_page(s, h->gfn);
			if (age == 0)
				continue;  /* another rmap entry of this scan saw it */
			s->count[age]--;
			s->count[0]++;
			s->last_young[h->gfn] = s->scans;
			st->pages_young++;
		}
	}
	/* One flush for the pass: a translation cached before it would set no A. */
	st->flushed = mmu->flush_pending;
	sp_commit_zap(mmu);
}
