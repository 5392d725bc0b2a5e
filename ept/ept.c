/* EPT construction over guest RAM (see ept.h). */
#include "ept/ept.h"
#include "mm/pt.h"
#include "mm/pte.h"

#define PAGES_PER_2M 512

static u64 ept_leaf(u8 type)
{
	return EPT_RWX | ((u64)type << EPT_MT_SHIFT);
}

/* A 2 MiB block is one run when its frames follow each other from an aligned start. */
static bool block_contiguous(const u64 *hpa)
{
	if (hpa[0] & (LARGE_PAGE_SIZE - 1))
		return false;
	for (u64 i = 1; i < PAGES_PER_2M; i++)
		if (hpa[i] != hpa[0] + i * PAGE_SIZE)
			return false;
	return true;
}

bool ept_build(struct ept *e, const u64 *page_hpa, u64 pages, const struct mtrr_state *mtrrs,
	       bool small_only, bool ad)
{
	e->small_blocks = e->large_blocks = 0;
	e->root = e->alloc_table(e->ctx);
	if (!e->root)
		return false;
	for (u64 p = 0; p < pages; p += PAGES_PER_2M) {
		u64 gpa = p * PAGE_SIZE;
		/* One 2 MiB page when the host block is contiguous and of one
		 * memory type; else 4 KiB pages, each with its frame's type. */
		u8 type = !small_only && block_contiguous(&page_hpa[p]) ?
				  mtrr_range_type(mtrrs, page_hpa[p], LARGE_PAGE_SIZE) : MT_MIXED;
		bool ok = true;

		if (type != MT_MIXED) {
			e->large_blocks++;
			ok = pt_map(&ept_format, e->root, gpa, page_hpa[p], LARGE_PAGE_SIZE,
				    ept_leaf(type), PT_LEVEL_2M, e->alloc_table, e->ctx);
		} else {
			e->small_blocks++;
			for (u64 i = 0; i < PAGES_PER_2M && ok; i++)
				ok = pt_map(&ept_format, e->root, gpa + i * PAGE_SIZE,
					    page_hpa[p + i], PAGE_SIZE,
					    ept_leaf(mtrr_type(mtrrs, page_hpa[p + i])),
					    PT_LEVEL_4K, e->alloc_table, e->ctx);
		}
		if (!ok)
			return false;
	}
	/* EPTP (SDM 25.6.11): WB paging structures, 4-level walk, A/D if kept. */
	e->eptp = (u64)e->root | EPT_MT_WB | (3ull << 3) | (ad ? BIT(6) : 0);
	return true;
}

void ept_destroy(struct ept *e)
{
	if (!e->root)
		return;
	pt_free_tables(&ept_format, e->root, e->free_table, e->ctx);
	e->free_table(e->root, e->ctx);
	e->root = NULL;
}
