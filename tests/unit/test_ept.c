/*
 * EPT construction (ept/ept.c): 2 MiB leaves where a block of guest RAM is
 * one aligned host run of one memory type, 4 KiB leaves with each frame's
 * type otherwise, nothing mapped past the RAM, and every table freed.
 * Tables come from the host heap; "physical" addresses are their pointers.
 */
#include <string.h>
#include "unit.h"
#include "ept/age.h"
#include "ept/ept.h"
#include "mm/pt.h"
#include "mm/pte.h"

#define MiB (1ull << 20)
#define PAGES (8 * MiB / PAGE_SIZE)   /* 4 blocks of 2 MiB */

static int tables_live;

static void *alloc_table(void *ctx)
{
	void *p = aligned_alloc(PAGE_SIZE, PAGE_SIZE);

	(void)ctx;
	if (p) {
		memset(p, 0, PAGE_SIZE);
		tables_live++;
	}
	return p;
}

static void free_table(void *t, void *ctx)
{
	(void)ctx;
	free(t);
	tables_live--;
}

static u64 hpa[PAGES];

/* Host frames: block 0 and 2 contiguous and aligned, block 1 scattered,
 * block 3 contiguous but across an MTRR boundary (WB then UC). */
static void layout(void)
{
	for (u64 i = 0; i < 512; i++) {
		hpa[i] = 0x40000000 + i * PAGE_SIZE;
		hpa[512 + i] = 0x50000000 + (511 - i) * PAGE_SIZE;
		hpa[1024 + i] = 0x60000000 + i * PAGE_SIZE;
		hpa[1536 + i] = 0x7ff00000 + i * PAGE_SIZE;
	}
}

/* WB below 0x80000000, UC from there (one variable range of 2 GiB). */
static struct mtrr_state mtrrs(void)
{
	struct mtrr_state s;

	memset(&s, 0, sizeof(s));
	s.enabled = true;
	s.default_type = MT_UC;
	s.maxphyaddr = 36;
	s.variable[0].base = 0 | MT_WB;
	s.variable[0].mask = (~(0x80000000ull - 1) & ((1ull << 36) - 1)) | (1ull << 11);
	s.variable_count = 1;
	return s;
}

static u64 leaf(struct ept *e, u64 gpa, enum pt_level *level)
{
	u64 *p = pt_lookup(&ept_format, e->root, gpa, level);

	return p ? *p : 0;
}

TEST(large_pages_where_contiguous_small_elsewhere)
{
	struct mtrr_state m = mtrrs();
	struct ept e = { .alloc_table = alloc_table, .free_table = free_table };
	enum pt_level level;
	u64 l;

	layout();
	CHECK(ept_build(&e, hpa, PAGES, &m, false, true));
	CHECK_EQ(e.small_blocks, 2);
	CHECK_EQ(e.large_blocks, 2);
	l = leaf(&e, 0x1000, &level);
	CHECK_EQ(level, PT_LEVEL_2M);
	CHECK_EQ(l & PTE_ADDR_MASK52, 0x40000000);
	CHECK_EQ((l >> EPT_MT_SHIFT) & 7, MT_WB);
	CHECK_EQ(l & EPT_RWX, EPT_RWX);
	l = leaf(&e, 2 * MiB + 0x3000, &level);   /* scattered block: 4 KiB, its own frame */
	CHECK_EQ(level, PT_LEVEL_4K);
	CHECK_EQ(l & PTE_ADDR_MASK52, 0x50000000 + 508 * PAGE_SIZE);
	l = leaf(&e, 6 * MiB + 0x100000, &level);  /* past the MTRR boundary: UC */
	CHECK_EQ(level, PT_LEVEL_4K);
	CHECK_EQ((l >> EPT_MT_SHIFT) & 7, MT_UC);
	l = leaf(&e, 6 * MiB, &level);
	CHECK_EQ((l >> EPT_MT_SHIFT) & 7, MT_WB);
	CHECK_EQ(leaf(&e, 8 * MiB, &level), 0);     /* nothing past the RAM */
	CHECK_EQ(e.eptp & 0xfff, EPT_MT_WB | (3 << 3) | (1 << 6));
	CHECK_EQ(e.eptp & ~0xfffull, (u64)e.root);
	ept_destroy(&e);
	CHECK_EQ(tables_live, 0);
}

TEST(small_only_maps_every_page_with_4k)
{
	struct mtrr_state m = mtrrs();
	struct ept e = { .alloc_table = alloc_table, .free_table = free_table };
	enum pt_level level;

	layout();
	CHECK(ept_build(&e, hpa, PAGES, &m, true, false));
	CHECK_EQ(e.small_blocks, 4);
	for (u64 p = 0; p < PAGES; p += 97) {
		u64 l = leaf(&e, p * PAGE_SIZE, &level);

		CHECK_EQ(level, PT_LEVEL_4K);
		CHECK_EQ(l & PTE_ADDR_MASK52, hpa[p]);
	}
	CHECK_EQ(e.eptp & (1 << 6), 0);             /* no A/D bits asked for */
	ept_destroy(&e);
	CHECK_EQ(tables_live, 0);
}

/* The CPU using guest page gfn through the EPT: A on every entry of the walk. */
static void use(struct ept *e, u64 gfn)
{
	u64 *t = e->root;

	for (int level = 4; level >= 1; level--) {
		u64 *ep = &t[PT_INDEX(gfn << 12, level)];

		*ep |= EPT_A;
		if (level == 1 || (*ep & EPT_LARGE))
			return;
		t = (u64 *)(uintptr_t)(*ep & PTE_ADDR_MASK52);
	}
}

/*
 * Ageing over a built EPT (scan_pages=2m): a used 2 MiB page becomes 512
 * 4 KiB leaves with the block's frames and MTRR type; a cold one is merged
 * back into the very leaf ept_build() made; the blocks it built small
 * (scattered frames, mixed types) stay as they are; every table is freed.
 */
TEST(ageing_splits_and_merges_built_large_pages)
{
	static u8 buf[PAGES + 64];
	struct mtrr_state m = mtrrs();
	struct ept e = { .alloc_table = alloc_table, .free_table = free_table };
	struct ept_age age;
	struct ept_age_stats st;
	enum pt_level level;
	u64 built[PAGES], l;

	layout();
	CHECK(ept_build(&e, hpa, PAGES, &m, false, true));
	for (u64 p = 0; p < PAGES; p++)
		built[p] = leaf(&e, p * PAGE_SIZE, &level);
	CHECK(ept_age_buffer_size(PAGES) <= sizeof(buf));
	ept_age_init(&age, buf, PAGES, EPT_AGE_AD, 0);
	ept_age_set_split(&age, alloc_table, free_table, NULL, 2);
	for (u64 p = 0; p < PAGES; p += 512)
		use(&e, p + 3);
	CHECK(ept_age_scan(&age, e.root, &st));
	CHECK_EQ(st.splits, 2);  /* blocks 0 and 2; 1 and 3 were 4 KiB already */
	for (u64 p = 0; p < PAGES; p++) {
		l = leaf(&e, p * PAGE_SIZE, &level);
		CHECK_EQ(level, PT_LEVEL_4K);
		CHECK_EQ(l & PTE_ADDR_MASK52, hpa[p]);
		CHECK_EQ(l & ~PTE_ADDR_MASK52, built[p] & ~PTE_ADDR_MASK52 & ~EPT_LARGE);
	}
	use(&e, 1024 + 7);
	ept_age_scan(&age, e.root, &st);
	CHECK_EQ(st.pages_young, 1);
	ept_age_scan(&age, e.root, &st);
	CHECK_EQ(st.merges, 1);  /* block 0: cold for 2 scans */
	ept_age_scan(&age, e.root, &st);
	CHECK_EQ(st.merges, 1);  /* block 2 */
	for (u64 p = 0; p < PAGES; p++)
		CHECK_EQ(leaf(&e, p * PAGE_SIZE, &level), built[p]);
	ept_age_release(&age);
	ept_destroy(&e);
	CHECK_EQ(tables_live, 0);
}

static int budget;

static void *alloc_limited(void *ctx)
{
	return budget-- > 0 ? alloc_table(ctx) : NULL;
}

TEST(allocation_failure_is_reported_and_cleanable)
{
	struct mtrr_state m = mtrrs();
	struct ept e = { .alloc_table = alloc_limited, .free_table = free_table };

	layout();
	budget = 3;   /* root, PDPT, PD: the first 4 KiB block needs a page table more */
	CHECK(!ept_build(&e, hpa, PAGES, &m, true, false));
	ept_destroy(&e);
	CHECK_EQ(tables_live, 0);
	budget = 0;   /* not even the root */
	e = (struct ept){ .alloc_table = alloc_limited, .free_table = free_table };
	CHECK(!ept_build(&e, hpa, PAGES, &m, false, false));
	ept_destroy(&e);
	CHECK_EQ(tables_live, 0);
}

UNIT_MAIN()
