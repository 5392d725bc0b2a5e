/* Shadow page ageing through the reverse map (see age.h). */
#include <string.h>
#include "shadow/age.h"
#include "shadow/spage.h"

u64 shadow_age_buffer_size(u64 pages)
{
	return pages + (pages + 7) / 8;
}

void shadow_age_init(struct shadow_age *s, void *buf, u64 pages)
{
	memset(s, 0, sizeof(*s));
	s->pages = pages;
	s->age = buf;
	s->young = (u8 *)buf + pages;
	memset(buf, 0, shadow_age_buffer_size(pages));
	s->count[0] = pages;  /* every page starts young, as in the EPT scanner */
}

/* Test and clear A in every leaf spte of one gfn. */
static bool gfn_accessed(struct rmap_head *head, struct shadow_age_stats *st)
{
	bool young = false;

	for (struct spte_list_node *n = head->list.head; n; n = n->next) {
		for (u32 i = 0; i < n->count; i++) {
			u64 old = __atomic_fetch_and(n->spte[i], ~PTE_A, __ATOMIC_RELAXED);

			st->sptes_visited++;
			young |= (old & PTE_A) != 0;
		}
	}
	return young;
}

bool shadow_age_scan(struct shadow_mmu *mmu, struct shadow_age *s, struct shadow_age_stats *st)
{
	memset(st, 0, sizeof(*st));
	for (u32 b = 0; b < SHADOW_RMAP_HASH; b++) {
		for (struct rmap_head *h = mmu->rmap_hash[b]; h; h = h->next) {
			if (h->gfn < s->pages && gfn_accessed(h, st))
				s->young[h->gfn / 8] |= (u8)(1u << (h->gfn % 8));
		}
	}
	for (u64 gfn = 0; gfn < s->pages; gfn++) {
		u8 old = s->age[gfn];
		u8 new;

		if (s->young[gfn / 8] & (1u << (gfn % 8))) {
			new = 0;
			st->pages_young++;
		} else {
			new = old < AGE_MAX ? old + 1 : AGE_MAX;
		}
		s->count[old]--;
		s->count[new]++;
		s->age[gfn] = new;
		if (gfn % 8 == 7 || gfn + 1 == s->pages)
			s->young[gfn / 8] = 0;
	}
	s->scans++;
	return st->sptes_visited != 0;
}
