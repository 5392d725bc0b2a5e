/*
 * Tests of EPT page ageing (ept/age.c). EPTs are built with pt_map over a
 * fake guest RAM (host addresses are never touched); a simulated CPU walks
 * them, sets A at every level it walks (A/D mode) or takes EPT violations on
 * tracked leaves (tracking mode), and keeps a TLB and a cache of level-2
 * paging-structure entries that only a simulated INVEPT empties. A reference
 * model of the ages, written from the definitions, is compared with every
 * page's age, the working sets and the histogram after every scan.
 */
#include <string.h>

#include "unit.h"
#include "ept/age.h"
#include "mm/pt.h"
#include "mm/pte.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define MAX_TABLES 512
#define LEAF_FLAGS (EPT_RWX | (EPT_MT_WB << EPT_MT_SHIFT))
#define HPA_BASE (1ull << 40)  /* fake guest RAM: never dereferenced */

struct sim {
	enum ept_age_mode mode;
	u64 pages;
	u64 *root;
	void *tables[MAX_TABLES];
	int ntables;
	bool alloc_fails;   /* table_alloc returns NULL */
	u64 tables_freed;
	struct ept_age s;
	u8 *buf;
	/* Simulated CPU caches (SDM 29.4): translations and level-2 entries. */
	bool *tlb;          /* per page */
	u64 **pde_cache;    /* per 2 MiB region: the 4 KiB table to start from */
	u64 real_violations;
	/* Reference model. */
	u8 *ref_age;
	bool *ref_used;     /* A/D: leaf used since the last scan */
	bool *ref_tracked;  /* tracking: leaf tracked */
	u64 ref_cursor;
	u64 ref_faults;
	u64 ref_faults_at_scan;  /* ref_faults at the last scan */
};

static struct sim sim;

static void *table_alloc(void *ctx)
{
	struct sim *sm = ctx;
	void *t;

	if (sm->ntables == MAX_TABLES || sm->alloc_fails)
		return NULL;
	t = aligned_alloc(4096, 4096);
	memset(t, 0, 4096);
	sm->tables[sm->ntables++] = t;
	return t;
}

static void table_free(void *table, void *ctx)
{
	struct sim *sm = ctx;

	for (int i = 0; i < sm->ntables; i++) {
		if (sm->tables[i] == table) {
			sm->tables[i] = sm->tables[--sm->ntables];
			sm->tables_freed++;
			free(table);
			return;
		}
	}
	CHECK(!"freed a table that is not allocated");
}

static void sim_setup(u64 pages, enum ept_age_mode mode, u64 max_track)
{
	memset(&sim, 0, sizeof(sim));
	sim.mode = mode;
	sim.pages = pages;
	sim.root = table_alloc(&sim);
	sim.buf = malloc(ept_age_buffer_size(pages));
	memset(sim.buf, 0xa5, ept_age_buffer_size(pages));  /* init must clear it */
	ept_age_init(&sim.s, sim.buf, pages, mode, max_track);
	sim.tlb = calloc(pages, sizeof(bool));
	sim.pde_cache = calloc(pages / 512 + 1, sizeof(u64 *));
	sim.ref_age = calloc(pages, 1);
	sim.ref_used = calloc(pages, sizeof(bool));
	sim.ref_tracked = calloc(pages, sizeof(bool));
}

static void sim_teardown(void)
{
	for (int i = 0; i < sim.ntables; i++)
		free(sim.tables[i]);
	free(sim.buf);
	free(sim.tlb);
	free(sim.pde_cache);
	free(sim.ref_age);
	free(sim.ref_used);
	free(sim.ref_tracked);
}

static void map(u64 gpa, u64 size, enum pt_level level, u64 flags)
{
	CHECK(pt_map(&ept_format, sim.root, gpa, HPA_BASE + gpa, size, flags, level, table_alloc,
		     &sim));
}

static bool entry_mapped(u64 e)
{
	return (e & EPT_RWX) || (e & EPT_AGE_SAVED_RWX);
}

/*
 * The leaf entry for gfn, tracked or not (pt_lookup sees tracked leaves as
 * not present), with the first gfn and page count of what it maps; NULL for
 * a hole, with the hole's extent.
 */
static u64 *sim_leaf(u64 gfn, u64 *first, u64 *npages)
{
	u64 *table = sim.root, gpa = gfn << 12;

	for (int level = 4; level >= 1; level--) {
		u64 *e = &table[PT_INDEX(gpa, level)];
		u64 span = 1ull << (9 * (level - 1));

		*first = gfn & ~(span - 1);
		*npages = span;
		if (!entry_mapped(*e))
			return NULL;
		if (level == 1 || (*e & EPT_LARGE))
			return e;
		table = (u64 *)(uintptr_t)(*e & PTE_ADDR_MASK52);
	}
	return NULL;
}

static void sim_invept(void)
{
	memset(sim.tlb, 0, sim.pages * sizeof(bool));
	memset(sim.pde_cache, 0, (sim.pages / 512 + 1) * sizeof(u64 *));
}

/* A/D mode: the CPU's walk for an access, setting A on every entry used. */
static void cpu_walk_ad(u64 gfn)
{
	u64 gpa = gfn << 12, *table = sim.root;
	int level = 4;

	if (sim.tlb[gfn])
		return;  /* cached translation: no walk, no A bit */
	if (sim.pde_cache[gfn >> 9]) {
		table = sim.pde_cache[gfn >> 9];
		level = 1;  /* walk starts below the cached entries */
	}
	for (; level >= 1; level--) {
		u64 *e = &table[PT_INDEX(gpa, level)];

		CHECK(*e & EPT_RWX);
		*e |= EPT_A;
		if (level == 1 || (*e & EPT_LARGE))
			break;
		table = (u64 *)(uintptr_t)(*e & PTE_ADDR_MASK52);
		if (level == 2)
			sim.pde_cache[gfn >> 9] = table;
	}
	sim.tlb[gfn] = true;
}

/* Tracking mode: walk, and on a not-present leaf take an EPT violation. */
static void cpu_walk_track(u64 gfn)
{
	u64 first, n, *e;

	if (sim.tlb[gfn])
		return;
	for (int tries = 0; tries < 2; tries++) {
		e = sim_leaf(gfn, &first, &n);
		if (e && (*e & EPT_RWX)) {
			sim.tlb[gfn] = true;
			return;
		}
		if (!ept_age_fault(&sim.s, sim.root, gfn << 12)) {
			sim.real_violations++;
			return;
		}
	}
	CHECK(!"tracking fault did not restore the leaf");
}

/* The guest touches gfn; the model records it at leaf granularity. */
static void touch(u64 gfn)
{
	u64 first, n;

	if (!sim_leaf(gfn, &first, &n)) {
		if (sim.mode == EPT_AGE_TRACK)
			cpu_walk_track(gfn);  /* a real violation */
		return;
	}
	if (sim.mode == EPT_AGE_AD) {
		cpu_walk_ad(gfn);
		for (u64 p = first; p < first + n && p < sim.pages; p++)
			sim.ref_used[p] = true;
		return;
	}
	if (sim.ref_tracked[gfn]) {
		sim.ref_faults++;
		/* A tracked 2 MiB leaf split by its fault: only this page is used. */
		if (n == 512 && sim.s.alloc_table && !sim.alloc_fails)
			first = gfn, n = 1;
		for (u64 p = first; p < first + n && p < sim.pages; p++) {
			sim.ref_tracked[p] = false;
			sim.ref_age[p] = 0;
		}
	}
	cpu_walk_track(gfn);
}

/* n touches of random pages in the first hot_blocks 2 MiB blocks (a 64-bit LCG). */
static void touch_hot_blocks(u64 *seed, int hot_blocks, int n)
{
	for (int i = 0; i < n; i++) {
		*seed = *seed * 6364136223846793005ull + 1442695040888963407ull;
		touch(((*seed >> 33) % (u64)hot_blocks) * 512 + (*seed >> 20) % 512);
	}
}

static void touch_range(u64 gfn, u64 count)
{
	for (u64 p = gfn; p < gfn + count; p++)
		touch(p);
}

/*
 * The model of one scan, from the definitions: a page used since the last
 * scan is age 0, a page that cannot have been used (A clear / still
 * tracked / not mapped) is one older, a leaf nobody watched keeps its ages.
 * In tracking mode, untracked leaves are then tracked in gfn order from the
 * cursor, wrapping, at most max_track of them.
 */
static void model_scan(void)
{
	u64 first, n, left = sim.s.max_track, cursor_end = sim.ref_cursor;

	for (u64 p = 0; p < sim.pages; p++) {
		bool mapped = sim_leaf(p, &first, &n) != NULL;
		bool older = sim.mode == EPT_AGE_AD ? !sim.ref_used[p] :
			     !mapped || sim.ref_tracked[p];

		if (sim.mode == EPT_AGE_AD && sim.ref_used[p])
			sim.ref_age[p] = 0;
		else if (older && sim.ref_age[p] < EPT_AGE_MAX)
			sim.ref_age[p]++;
		sim.ref_used[p] = false;
	}
	if (sim.mode != EPT_AGE_TRACK)
		return;
	for (int round = 0; round < 2 && left; round++) {
		u64 from = round ? 0 : sim.ref_cursor, to = round ? sim.ref_cursor : sim.pages;

		for (u64 p = from; p < to && left; p += n) {
			if (!sim_leaf(p, &first, &n) || sim.ref_tracked[p])
				continue;
			for (u64 q = first; q < first + n && q < sim.pages; q++)
				sim.ref_tracked[q] = true;
			left--;
			cursor_end = first + n;
		}
	}
	sim.ref_cursor = left || cursor_end >= sim.pages ? 0 : cursor_end;
}

static u64 model_working_set(unsigned int k)
{
	u64 n = 0;

	for (u64 p = 0; p < sim.pages; p++)
		n += sim.ref_age[p] < k;
	return n;
}

static int bucket_of(unsigned int age)
{
	static const unsigned int lower[EPT_AGE_BUCKETS] = { 0, 1, 2, 4, 8, 16 };
	int b = 0;

	while (b + 1 < EPT_AGE_BUCKETS && age >= lower[b + 1])
		b++;
	return b;
}

/* Every page's age, the working sets and the histogram against the model. */
static void check_model(void)
{
	static const unsigned int ks[] = { 1, 2, 4, 8, 256 };
	u64 hist[EPT_AGE_BUCKETS], ref_hist[EPT_AGE_BUCKETS] = { 0 };
	u64 bad = 0;

	for (u64 p = 0; p < sim.pages; p++) {
		bad += ept_age_page(&sim.s, p) != sim.ref_age[p];
		ref_hist[bucket_of(sim.ref_age[p])]++;
	}
	CHECK_EQ(bad, 0);
	for (unsigned int i = 0; i < ARRAY_SIZE(ks); i++)
		CHECK_EQ(ept_age_working_set(&sim.s, ks[i]), model_working_set(ks[i]));
	ept_age_histogram(&sim.s, hist);
	for (int b = 0; b < EPT_AGE_BUCKETS; b++)
		CHECK_EQ(hist[b], ref_hist[b]);
}

/* Leaves the model has not tracked: what the scan reports as deferred. */
static u64 model_untracked_leaves(void)
{
	u64 first, n, count = 0;

	for (u64 p = 0; p < sim.pages; p += n)
		count += sim_leaf(p, &first, &n) && !sim.ref_tracked[p];
	return count;
}

/* Scan as the hypervisor would (INVEPT if asked), run the model, compare. */
static bool scan(struct ept_age_stats *st)
{
	struct ept_age_stats local, *out = st ? st : &local;
	u64 faults = sim.ref_faults;
	bool flush = ept_age_scan(&sim.s, sim.root, out);

	CHECK_EQ(flush, out->flush_needed);
	if (flush)
		sim_invept();
	model_scan();
	check_model();
	if (sim.mode == EPT_AGE_TRACK) {
		CHECK_EQ(out->leaves_deferred, model_untracked_leaves());
		CHECK_EQ(out->tracking_faults, faults - sim.ref_faults_at_scan);
		sim.ref_faults_at_scan = faults;
	}
	return flush;
}

/*
 * A 64 MiB guest under one PML4E and one PDPTE: 2 MiB regions 0-3 are 4 KiB
 * pages (four tables), region 10 is a hole, the rest are 2 MiB leaves.
 */
#define SMALL_PAGES (64 * MiB / 4096)

static void small_layout(void)
{
	map(0, 8 * MiB, PT_LEVEL_4K, LEAF_FLAGS);
	map(8 * MiB, 12 * MiB, PT_LEVEL_2M, LEAF_FLAGS);
	map(22 * MiB, 42 * MiB, PT_LEVEL_2M, LEAF_FLAGS);
}

TEST(buffer_size_and_init)
{
	/* Ages, pending bytes per 2 MiB / 1 GiB / 512 GiB, a block byte per
	 * 2 MiB and a split count (2 bytes) per 1 GiB. */
	CHECK_EQ(ept_age_buffer_size(0), 0);
	CHECK_EQ(ept_age_buffer_size(1), 1 + 3 + 1 + 2);
	CHECK_EQ(ept_age_buffer_size(512), 512 + 3 + 1 + 2);
	CHECK_EQ(ept_age_buffer_size(513), 513 + 2 + 1 + 1 + 2 + 2);
	CHECK_EQ(ept_age_buffer_size(1ull << 18), (1ull << 18) + 512 + 1 + 1 + 512 + 2);
	sim_setup(SMALL_PAGES, EPT_AGE_AD, 0);
	CHECK_EQ(ept_age_working_set(&sim.s, 1), SMALL_PAGES);
	CHECK_EQ(ept_age_page(&sim.s, SMALL_PAGES - 1), 0);
	sim_teardown();
}

TEST(ad_cold_guest_skips_at_the_root)
{
	struct ept_age_stats st;

	sim_setup(SMALL_PAGES, EPT_AGE_AD, 0);
	small_layout();
	CHECK(!scan(&st));
	CHECK_EQ(st.entries_visited, 1);  /* only root[0] is below 64 MiB */
	CHECK_EQ(st.subtrees_skipped, 1);
	CHECK_EQ(st.pages_young, 0);
	CHECK_EQ(ept_age_working_set(&sim.s, 1), 0);
	CHECK_EQ(ept_age_working_set(&sim.s, 2), SMALL_PAGES);
	sim_teardown();
}

TEST(ad_counts_visits_skips_and_young_pages)
{
	struct ept_age_stats st;

	sim_setup(SMALL_PAGES, EPT_AGE_AD, 0);
	small_layout();
	touch(3);
	touch(1500);             /* 4 KiB table 2 */
	touch(12 * MiB / 4096);  /* the 2 MiB leaf at 12 MiB */
	CHECK(scan(&st));
	/* root[0], PDPTE 0, 32 PDEs, 512 PTEs in each of the 2 used tables. */
	CHECK_EQ(st.entries_visited, 1 + 1 + 32 + 2 * 512);
	CHECK_EQ(st.subtrees_skipped, 2);  /* 4 KiB tables 1 and 3 */
	CHECK_EQ(st.pages_young, 2 + 512);
	/* Every A bit is clear again, at every level. */
	for (int i = 0; i < sim.ntables; i++)
		for (int j = 0; j < 512; j++)
			CHECK(!(((u64 *)sim.tables[i])[j] & EPT_A));

	/* Nothing used since: one skip at the root, no flush. */
	CHECK(!scan(&st));
	CHECK_EQ(st.entries_visited, 1);
	CHECK_EQ(ept_age_page(&sim.s, 3), 1);
	CHECK_EQ(ept_age_page(&sim.s, 4), 2);
	CHECK_EQ(ept_age_page(&sim.s, 12 * MiB / 4096 + 511), 1);
	CHECK_EQ(ept_age_page(&sim.s, 10 * MiB / 4096), 2);  /* the hole ages */
	sim_teardown();
}

TEST(ad_fixed_hot_set)
{
	static const u64 hot[] = { 0, 1, 2, 700, 1500, 2047, 5000, 9000, 16383 };
	struct ept_age_stats st;

	sim_setup(SMALL_PAGES, EPT_AGE_AD, 0);
	small_layout();
	for (int pass = 0; pass < 20; pass++) {
		for (unsigned int i = 0; i < ARRAY_SIZE(hot); i++)
			touch(hot[i]);
		CHECK(scan(&st));
	}
	/* 6 pages in 4 KiB tables, 3 touched 2 MiB leaves. */
	CHECK_EQ(ept_age_working_set(&sim.s, 1), 6 + 3 * 512);
	CHECK_EQ(ept_age_working_set(&sim.s, 8), 6 + 3 * 512);
	CHECK_EQ(ept_age_working_set(&sim.s, 256), SMALL_PAGES);
	CHECK_EQ(st.subtrees_skipped, 0);  /* tables 0..3 each hold a hot page */
	sim_teardown();
}

TEST(ad_moving_window)
{
	sim_setup(SMALL_PAGES, EPT_AGE_AD, 0);
	small_layout();
	/* 300 pages sliding by 100 per interval over the 4 KiB part and on. */
	for (u64 pass = 0; pass < 40; pass++) {
		touch_range(pass * 100, 300);
		scan(NULL);
	}
	sim_teardown();
}

TEST(ad_phase_change)
{
	sim_setup(SMALL_PAGES, EPT_AGE_AD, 0);
	small_layout();
	for (int pass = 0; pass < 6; pass++) {
		touch_range(0, 64);
		touch_range(8 * MiB / 4096, 1);
		scan(NULL);
	}
	CHECK_EQ(ept_age_working_set(&sim.s, 1), 64 + 512);
	for (int pass = 0; pass < 6; pass++) {
		touch_range(1024, 32);
		touch_range(40 * MiB / 4096, 1);
		touch_range(42 * MiB / 4096, 1);
		scan(NULL);
		/* Old phase visible until its pages reach age k. */
		CHECK_EQ(ept_age_working_set(&sim.s, 4), 32 + 1024 + (pass < 3 ? 64 + 512 : 0));
	}
	sim_teardown();
}

TEST(ad_flatten_matches_lazy_ages)
{
	sim_setup(SMALL_PAGES, EPT_AGE_AD, 0);
	small_layout();
	for (int pass = 0; pass < 5; pass++) {
		touch_range(pass * 600, 10);
		scan(NULL);
	}
	scan(NULL);  /* cold passes: ages owed at the root level too */
	scan(NULL);
	ept_age_flatten(&sim.s);
	for (u64 p = 0; p < SMALL_PAGES; p++)
		if (sim.s.age[p] != sim.ref_age[p])
			CHECK_EQ(sim.s.age[p], sim.ref_age[p]);
	check_model();
	scan(NULL);  /* and ageing still works after flattening */
	sim_teardown();
}

TEST(ad_ages_saturate)
{
	sim_setup(SMALL_PAGES, EPT_AGE_AD, 0);
	small_layout();
	touch(5);
	for (int pass = 0; pass < 300; pass++)
		scan(NULL);
	CHECK_EQ(ept_age_page(&sim.s, 5), EPT_AGE_MAX);
	CHECK_EQ(ept_age_working_set(&sim.s, 256), SMALL_PAGES);
	touch(5);
	scan(NULL);
	CHECK_EQ(ept_age_page(&sim.s, 5), 0);
	sim_teardown();
}

/* The ages of a partial last region (pages not a multiple of 512). */
TEST(ad_guest_size_not_2m_aligned)
{
	u64 pages = 3 * 512 + 100;

	sim_setup(pages, EPT_AGE_AD, 0);
	map(0, 4 * MiB, PT_LEVEL_2M, LEAF_FLAGS);
	map(4 * MiB, 100 * 4096, PT_LEVEL_4K, LEAF_FLAGS);
	for (int pass = 0; pass < 4; pass++) {
		touch(pass * 512 + 7);
		scan(NULL);
	}
	sim_teardown();
}

/* A 1 GiB leaf ages and becomes young as 2^18 pages. */
TEST(ad_1g_leaf)
{
	u64 pages = (2 * GiB) / 4096;
	struct ept_age_stats st;

	sim_setup(pages, EPT_AGE_AD, 0);
	map(0, GiB, PT_LEVEL_1G, LEAF_FLAGS);
	map(GiB, GiB, PT_LEVEL_2M, LEAF_FLAGS);
	scan(NULL);
	scan(NULL);
	touch(GiB / 4096 - 1);
	touch(GiB / 4096);
	CHECK(scan(&st));
	CHECK_EQ(st.pages_young, (1ull << 18) + 512);
	CHECK_EQ(st.entries_visited, 1 + 2 + 512);
	sim_teardown();
}

/*
 * Goal 6 of the design notes: a cold 64 GiB guest in 2 MiB leaves with one
 * busy 1 GiB region costs the root entry, 64 PDPTEs and one table of PDEs.
 */
TEST(ad_cold_64g_guest_touches_one_region)
{
	u64 pages = 64 * GiB / 4096;
	struct ept_age_stats st;

	sim_setup(pages, EPT_AGE_AD, 0);
	map(0, 64 * GiB, PT_LEVEL_2M, LEAF_FLAGS);
	touch(5 * GiB / 4096 + 3);
	CHECK(ept_age_scan(&sim.s, sim.root, &st));
	sim_invept();
	CHECK_EQ(st.entries_visited, 1 + 64 + 512);
	CHECK_EQ(st.subtrees_skipped, 63);
	CHECK_EQ(ept_age_working_set(&sim.s, 1), 512);
	CHECK(!ept_age_scan(&sim.s, sim.root, &st));
	CHECK_EQ(st.entries_visited, 1);
	CHECK_EQ(ept_age_page(&sim.s, 5 * GiB / 4096), 1);
	CHECK_EQ(ept_age_page(&sim.s, pages - 1), 2);
	CHECK_EQ(ept_age_working_set(&sim.s, 2), 512);
	sim_teardown();
}

/*
 * Why the scan asks for INVEPT, shown on the simulated CPU: without it a
 * cached translation (TLB) or a cached level-2 entry lets the guest use a
 * page without setting the A bits the next scan looks at.
 */
TEST(ad_skipping_the_flush_loses_accesses)
{
	sim_setup(SMALL_PAGES, EPT_AGE_AD, 0);
	small_layout();
	touch(3);
	CHECK(ept_age_scan(&sim.s, sim.root, NULL));
	/* No INVEPT: page 3 hits the TLB, page 4 starts at the cached PDE. */
	cpu_walk_ad(3);
	cpu_walk_ad(4);
	CHECK(!ept_age_scan(&sim.s, sim.root, NULL));
	CHECK_EQ(ept_age_page(&sim.s, 3), 1);  /* used, but looks idle */
	CHECK_EQ(ept_age_page(&sim.s, 4), 2);  /* its PTE has A, its PDE not */
	CHECK(ept_age_page(&sim.s, 4) != 0);

	/* With the flush both accesses are seen. */
	sim_invept();
	cpu_walk_ad(3);
	cpu_walk_ad(4);
	CHECK(ept_age_scan(&sim.s, sim.root, NULL));
	CHECK_EQ(ept_age_page(&sim.s, 3), 0);
	CHECK_EQ(ept_age_page(&sim.s, 4), 0);
	sim_teardown();
}

/* ---- 2 MiB leaves kept where cold, split where used ---------------------- */

static void split_setup(u64 pages, unsigned int merge_after)
{
	sim_setup(pages, EPT_AGE_AD, 0);
	ept_age_set_split(&sim.s, table_alloc, table_free, &sim, merge_after);
}

/* The level-2 entry over gfn (64 GiB at most: root[0] only). */
static u64 *pde_of(u64 gfn)
{
	u64 *pdpt = (u64 *)(uintptr_t)(sim.root[0] & PTE_ADDR_MASK52);
	u64 *pd = (u64 *)(uintptr_t)(pdpt[(gfn >> 18) & 511] & PTE_ADDR_MASK52);

	return &pd[(gfn >> 9) & 511];
}

static u64 large_leaves(u64 pages)
{
	u64 n = 0;

	for (u64 gfn = 0; gfn < pages; gfn += 512)
		n += entry_mapped(*pde_of(gfn)) && (*pde_of(gfn) & EPT_LARGE);
	return n;
}

#define R12 (12 * MiB / 4096)  /* a 2 MiB leaf of small_layout() */

TEST(split_used_2m_leaf_keeps_cold_ones)
{
	struct ept_age_stats st;
	u64 *pt;

	split_setup(SMALL_PAGES, 4);
	small_layout();
	CHECK_EQ(large_leaves(SMALL_PAGES), 27);
	touch(R12 + 5);
	CHECK(scan(&st));
	CHECK_EQ(st.pages_young, 512);  /* the 2 MiB leaf says no more than that */
	CHECK_EQ(st.splits, 1);
	CHECK_EQ(st.split_blocks, 1);
	CHECK_EQ(large_leaves(SMALL_PAGES), 26);
	/* Same host run, same attributes, A as the scan left it (clear). */
	CHECK(!(*pde_of(R12) & EPT_LARGE));
	CHECK_EQ(*pde_of(R12) & ~PTE_ADDR_MASK52, EPT_RWX);
	pt = (u64 *)(uintptr_t)(*pde_of(R12) & PTE_ADDR_MASK52);
	for (int i = 0; i < 512; i++)
		CHECK_EQ(pt[i], (HPA_BASE + 12 * MiB + i * 4096ull) | LEAF_FLAGS);

	/* Now one page at 4 KiB resolution. */
	touch(R12 + 5);
	CHECK(scan(&st));
	CHECK_EQ(st.pages_young, 1);
	CHECK_EQ(st.splits, 0);
	/* root[0], PDPTE 0, 32 PDEs, the split table. */
	CHECK_EQ(st.entries_visited, 1 + 1 + 32 + 512);
	CHECK_EQ(ept_age_page(&sim.s, R12 + 5), 0);
	CHECK_EQ(ept_age_page(&sim.s, R12 + 6), 1);
	CHECK_EQ(ept_age_page(&sim.s, R12 - 1), 2);
	sim_teardown();
}

TEST(split_block_merges_back_after_cold_scans)
{
	struct ept_age_stats st;
	u64 orig, *pt, freed;

	split_setup(SMALL_PAGES, 4);
	small_layout();
	orig = *pde_of(R12);
	touch(R12 + 5);
	scan(&st);
	CHECK_EQ(st.splits, 1);
	pt = (u64 *)(uintptr_t)(*pde_of(R12) & PTE_ADDR_MASK52);
	/* A use in the third cold scan starts the count again. */
	scan(NULL);
	scan(NULL);
	touch(R12 + 100);
	scan(NULL);
	for (int i = 0; i < 3; i++) {
		scan(&st);
		CHECK_EQ(st.merges, 0);
	}
	pt[7] |= EPT_D;  /* the guest wrote page 7 before the table went cold */
	freed = sim.tables_freed;
	/* The fourth cold scan merges: nothing else changed, yet a flush. */
	CHECK(scan(&st));
	CHECK_EQ(st.merges, 1);
	CHECK_EQ(st.split_blocks, 0);
	CHECK_EQ(*pde_of(R12), orig | EPT_D);
	CHECK_EQ(large_leaves(SMALL_PAGES), 27);
	/* The unlinked table lives until the next scan (after the INVEPT). */
	CHECK_EQ(sim.tables_freed, freed);
	CHECK(!scan(&st));
	CHECK_EQ(sim.tables_freed, freed + 1);
	CHECK_EQ(st.entries_visited, 1);
	/* Ages went on through split and merge. */
	CHECK_EQ(ept_age_page(&sim.s, R12 + 100), 5);
	CHECK_EQ(ept_age_page(&sim.s, R12 + 5), 8);
	sim_teardown();
}

/* A block the EPT maps with 4 KiB pages from the start (fragmented host
 * memory, mixed types) is not ageing's to merge. */
TEST(split_never_merges_a_block_built_small)
{
	struct ept_age_stats st;

	split_setup(SMALL_PAGES, 1);
	small_layout();
	touch(3);
	scan(NULL);
	for (int i = 0; i < 5; i++) {
		scan(&st);
		CHECK_EQ(st.merges, 0);
	}
	CHECK(!(*pde_of(0) & EPT_LARGE));
	sim_teardown();
}

/* A merge needs the leaves to be one aligned run with one set of attributes. */
TEST(split_merge_checks_the_leaves)
{
	struct ept_age_stats st;
	u64 *pt;

	split_setup(SMALL_PAGES, 1);
	small_layout();
	touch(R12);
	scan(NULL);
	pt = (u64 *)(uintptr_t)(*pde_of(R12) & PTE_ADDR_MASK52);
	pt[300] = (pt[300] & ~(EPT_MT_WB << EPT_MT_SHIFT)) | (EPT_MT_UC << EPT_MT_SHIFT);
	scan(&st);
	CHECK_EQ(st.merges, 0);
	pt[300] = (HPA_BASE + 12 * MiB + 301 * 4096ull) | LEAF_FLAGS;
	scan(&st);
	CHECK_EQ(st.merges, 0);
	pt[300] = (HPA_BASE + 12 * MiB + 300 * 4096ull) | LEAF_FLAGS;
	scan(&st);
	CHECK_EQ(st.merges, 1);
	sim_teardown();
}

/* No table to split into: the leaf stays 2 MiB and ages as one. */
TEST(split_without_memory_keeps_the_leaf)
{
	struct ept_age_stats st;

	split_setup(SMALL_PAGES, 4);
	small_layout();
	sim.alloc_fails = true;
	touch(R12 + 5);
	CHECK(scan(&st));
	CHECK_EQ(st.splits, 0);
	CHECK(*pde_of(R12) & EPT_LARGE);
	touch(R12 + 5);
	scan(&st);
	CHECK_EQ(st.pages_young, 512);
	sim_teardown();
}

/*
 * A random guest over 2 MiB leaves, splitting and merging all the time:
 * every page's age against the model (which ages each page at the
 * granularity of the leaf mapping it when used), the same host page behind
 * every gfn, and the entries read per scan: the PDEs plus 512 per split
 * block walked or merged.
 */
TEST(split_random_workload_matches_model)
{
	u64 pages = 32 * MiB / 4096, seed = 7;
	struct ept_age_stats st;
	u64 splits = 0, merges = 0;

	split_setup(pages, 3);
	map(0, 32 * MiB, PT_LEVEL_2M, LEAF_FLAGS);
	for (int pass = 0; pass < 300; pass++) {
		int hot_blocks = pass % 50 < 25 ? 3 : 12;

		touch_hot_blocks(&seed, hot_blocks, 40);
		scan(&st);
		splits += st.splits;
		merges += st.merges;
		CHECK_EQ(large_leaves(pages) + sim.s.split_blocks, 16);
		CHECK(st.entries_visited <= 1 + 1 + 16 + 512 * (st.split_blocks + st.merges));
		for (u64 gfn = 0; gfn < pages; gfn += 97) {
			enum pt_level level;
			u64 *e = pt_lookup(&ept_format, sim.root, gfn << 12, &level);
			u64 span = pt_level_size(level);

			CHECK(e);
			CHECK_EQ((*e & PTE_ADDR_MASK52 & ~(span - 1)) + ((gfn << 12) & (span - 1)),
				 HPA_BASE + (gfn << 12));
		}
	}
	CHECK(splits > 12 && merges > 9);
	sim_teardown();
}

/* Leaves with assorted rights and attributes, to check restores exactly. */
static const u64 track_flags[] = {
	EPT_R | (EPT_MT_WB << EPT_MT_SHIFT),
	EPT_R | EPT_W | (EPT_MT_UC << EPT_MT_SHIFT) | EPT_IPAT,
	EPT_R | EPT_X | (EPT_MT_WB << EPT_MT_SHIFT),
	EPT_X,
	LEAF_FLAGS | EPT_D,
};

/* 16 MiB: 4 KiB pages in [0, 2 MiB) with varied rights, 2 MiB leaves after,
 * a hole at [6, 8) MiB. */
static void track_layout(void)
{
	for (u64 p = 0; p < 512; p++)
		map(p * 4096, 4096, PT_LEVEL_4K, track_flags[p % ARRAY_SIZE(track_flags)]);
	map(2 * MiB, 4 * MiB, PT_LEVEL_2M, LEAF_FLAGS);
	map(8 * MiB, 8 * MiB, PT_LEVEL_2M, track_flags[2]);
}

#define TRACK_PAGES (16 * MiB / 4096)
#define TRACK_LEAVES (512 + 2 + 4)

static void snapshot(u64 *copy)
{
	u64 first, n, *e;

	for (u64 p = 0; p < TRACK_PAGES; p++)
		copy[p] = (e = sim_leaf(p, &first, &n)) ? *e : 0;
}

TEST(track_scan_fault_restore)
{
	static u64 orig[TRACK_PAGES], now[TRACK_PAGES];
	struct ept_age_stats st;
	u64 first, n;

	sim_setup(TRACK_PAGES, EPT_AGE_TRACK, EPT_AGE_NO_LIMIT);
	track_layout();
	snapshot(orig);
	CHECK(scan(&st));
	CHECK_EQ(st.leaves_tracked, TRACK_LEAVES);
	CHECK_EQ(st.leaves_deferred, 0);
	CHECK_EQ(st.tracking_faults, 0);
	/* Every leaf lost its rights, kept them in bits 52-54, kept the rest. */
	snapshot(now);
	for (u64 p = 0; p < TRACK_PAGES; p++) {
		if (!orig[p])
			continue;
		CHECK_EQ(now[p] & EPT_RWX, 0);
		CHECK_EQ(now[p], (orig[p] & ~EPT_RWX) | ((orig[p] & EPT_RWX) << 52));
		CHECK(!pt_lookup(&ept_format, sim.root, p << 12, NULL));
	}

	touch(1);
	touch(1);                      /* second access: no fault */
	touch(3 * MiB / 4096);         /* a 2 MiB leaf */
	touch(7 * MiB / 4096);         /* the hole: a real violation */
	CHECK_EQ(sim.real_violations, 1);
	CHECK_EQ(ept_age_page(&sim.s, 3 * MiB / 4096 - 1), 0);
	CHECK_EQ(sim_leaf(1, &first, &n)[0], orig[1]);  /* rights exactly back */
	CHECK_EQ(sim_leaf(3 * MiB / 4096, &first, &n)[0], orig[3 * MiB / 4096]);
	/* An untracked leaf is a real violation and stays as it is. */
	CHECK(!ept_age_fault(&sim.s, sim.root, 1 << 12));
	CHECK_EQ(sim_leaf(1, &first, &n)[0], orig[1]);
	CHECK(!ept_age_fault(&sim.s, sim.root, 7 * MiB));
	CHECK(!ept_age_fault(&sim.s, sim.root, 64 * GiB));

	CHECK(scan(&st));  /* the two used leaves are tracked again */
	CHECK_EQ(st.tracking_faults, 2);
	CHECK_EQ(st.leaves_tracked, 2);
	CHECK_EQ(st.leaves_idle, TRACK_LEAVES - 2);
	CHECK_EQ(ept_age_page(&sim.s, 2), 1);
	CHECK_EQ(ept_age_page(&sim.s, 1), 0);

	CHECK(!scan(&st));  /* nothing used, nothing to re-track: no flush */
	CHECK_EQ(st.leaves_tracked, 0);

	ept_age_untrack_all(sim.root);
	snapshot(now);
	CHECK_EQ(memcmp(now, orig, sizeof(orig)), 0);
	sim_teardown();
}

TEST(track_rate_limit_and_rotation)
{
	static u64 orig[TRACK_PAGES];
	struct ept_age_stats st;
	u64 tracked_total = 0, cap = 100, first, n;

	sim_setup(TRACK_PAGES, EPT_AGE_TRACK, cap);
	track_layout();
	snapshot(orig);
	CHECK(scan(&st));
	CHECK_EQ(st.leaves_tracked, cap);
	CHECK_EQ(st.leaves_deferred, TRACK_LEAVES - cap);
	/* Leaves past the cap are untouched, bit for bit. */
	for (u64 p = cap; p < TRACK_PAGES; p++)
		if (orig[p] && sim_leaf(p, &first, &n)[0] != orig[p])
			CHECK_EQ(sim_leaf(p, &first, &n)[0], orig[p]);
	tracked_total += st.leaves_tracked;
	/* The guest uses everything all the time: faults per pass <= cap. */
	for (int pass = 0; pass < 12; pass++) {
		touch_range(0, TRACK_PAGES);
		scan(&st);
		CHECK(st.tracking_faults <= cap);
		CHECK(st.leaves_tracked <= cap);
		tracked_total += st.leaves_tracked;
	}
	CHECK_EQ(sim.ref_faults, tracked_total - st.leaves_tracked);
	sim_teardown();
}

/* With a cap, every leaf gets tracked in turn, also after wrapping. */
TEST(track_cursor_wraps_fairly)
{
	struct ept_age_stats st;
	u64 total = 0;

	sim_setup(TRACK_PAGES, EPT_AGE_TRACK, 7);
	track_layout();
	while (total < TRACK_LEAVES) {
		scan(&st);
		CHECK_EQ(st.leaves_tracked, TRACK_LEAVES - total < 7 ? TRACK_LEAVES - total : 7);
		CHECK_EQ(st.leaves_deferred, TRACK_LEAVES - total - st.leaves_tracked);
		total += st.leaves_tracked;
		if (!st.leaves_tracked)
			break;
	}
	CHECK_EQ(total, TRACK_LEAVES);
	/* Now the guest frees leaves all over; the model checks which are
	 * tracked again, from the cursor and wrapping. */
	for (int pass = 0; pass < 60; pass++) {
		touch_range(pass * 37 % 512, 40);
		touch(9 * MiB / 4096);
		scan(&st);
		CHECK(st.leaves_tracked <= 7);
	}
	sim_teardown();
}

TEST(track_moving_window_and_phase_change)
{
	sim_setup(TRACK_PAGES, EPT_AGE_TRACK, EPT_AGE_NO_LIMIT);
	track_layout();
	scan(NULL);
	for (u64 pass = 0; pass < 30; pass++) {
		touch_range(pass * 20 % 600, 50);
		scan(NULL);
	}
	for (int pass = 0; pass < 10; pass++) {
		touch_range(9 * MiB / 4096, 1);
		scan(NULL);
	}
	CHECK_EQ(ept_age_working_set(&sim.s, 1), 512);
	CHECK_EQ(ept_age_working_set(&sim.s, 8), 512);
	sim_teardown();
}

/*
 * A table added under a lazily aged hole: the scan settles the hole's ages
 * into the new leaves, which keep them (nobody watched them) until tracked.
 */
TEST(track_late_mapping_keeps_hole_ages)
{
	sim_setup(TRACK_PAGES, EPT_AGE_TRACK, EPT_AGE_NO_LIMIT);
	map(0, 2 * MiB, PT_LEVEL_2M, LEAF_FLAGS);
	scan(NULL);
	scan(NULL);
	CHECK_EQ(ept_age_page(&sim.s, 512 + 9), 2);
	map(2 * MiB, 2 * MiB, PT_LEVEL_4K, LEAF_FLAGS);
	scan(NULL);  /* tracks the new 4 KiB leaves */
	CHECK_EQ(ept_age_page(&sim.s, 512 + 9), 2);
	touch(512 + 9);
	check_model();
	CHECK_EQ(ept_age_page(&sim.s, 512 + 9), 0);
	CHECK_EQ(ept_age_page(&sim.s, 512 + 10), 2);
	scan(NULL);
	CHECK_EQ(ept_age_page(&sim.s, 512 + 10), 3);
	sim_teardown();
}


/*
 * Tracking (no EPT A/D) over 2 MiB leaves: the fault on a tracked 2 MiB
 * leaf splits it into tracked 4 KiB leaves and gives rights back only to
 * the page used, with no flush; ages stay exact (the model checks every
 * page); a block whose leaves all stayed tracked for merge_after scans is
 * merged back into one tracked 2 MiB leaf (a flush: a present PDE lost its
 * rights and its table), whose next fault splits it again.
 */
TEST(track_split_on_fault_and_merge)
{
	struct ept_age_stats st;
	u64 g = 3 * MiB / 4096, first, n, orig, *e;

	sim_setup(TRACK_PAGES, EPT_AGE_TRACK, EPT_AGE_NO_LIMIT);
	ept_age_set_split(&sim.s, table_alloc, table_free, &sim, 2);
	track_layout();
	orig = *sim_leaf(g, &first, &n);
	CHECK_EQ(n, 512);
	CHECK(scan(&st));
	CHECK_EQ(st.leaves_tracked, TRACK_LEAVES);
	CHECK(!scan(&st));  /* all still tracked: every page age 1 */
	touch(g + 5);
	CHECK_EQ(sim.ref_faults, 1);
	e = sim_leaf(g + 5, &first, &n);
	CHECK_EQ(n, 1);
	CHECK_EQ(*e, (orig & ~PTE_ADDR_MASK52 & ~EPT_LARGE) |
		     ((orig & PTE_ADDR_MASK52) + ((g + 5) & 511) * 4096));
	CHECK_EQ(ept_age_page(&sim.s, g + 5), 0);
	CHECK_EQ(ept_age_page(&sim.s, g + 6), 1);
	touch(g + 6);  /* its own fault */
	CHECK_EQ(sim.ref_faults, 2);
	CHECK(scan(&st));  /* re-tracks the two used leaves */
	CHECK_EQ(st.splits, 1);
	CHECK_EQ(st.tracking_faults, 2);
	CHECK_EQ(st.leaves_tracked, 2);
	/* Cold: the first scan counts one, the second merges. */
	CHECK(!scan(&st));
	CHECK_EQ(st.merges, 0);
	CHECK(scan(&st));
	CHECK_EQ(st.merges, 1);
	/* Tracked, its rights saved. */
	CHECK_EQ(*pde_of(g), (orig & ~EPT_RWX) | ((orig & EPT_RWX) << EPT_AGE_SAVED_SHIFT));
	touch(g + 200);
	CHECK_EQ(sim.ref_faults, 3);
	CHECK(!(*pde_of(g) & EPT_LARGE));
	scan(&st);
	CHECK_EQ(st.splits, 1);
	ept_age_untrack_all(sim.root);
	for (u64 p = 2 * MiB / 4096; p < 6 * MiB / 4096; p++)
		CHECK_EQ(*sim_leaf(p, &first, &n) & EPT_RWX, EPT_RWX);
	sim_teardown();
}

TEST(track_split_random_workload_matches_model)
{
	u64 pages = 32 * MiB / 4096, seed = 11, splits = 0, merges = 0;
	struct ept_age_stats st;

	sim_setup(pages, EPT_AGE_TRACK, 64);
	ept_age_set_split(&sim.s, table_alloc, table_free, &sim, 3);
	map(0, 32 * MiB, PT_LEVEL_2M, LEAF_FLAGS);
	for (int pass = 0; pass < 200; pass++) {
		int hot_blocks = pass % 40 < 20 ? 3 : 12;

		touch_hot_blocks(&seed, hot_blocks, 30);
		scan(&st);
		splits += st.splits;
		merges += st.merges;
		CHECK_EQ(large_leaves(pages) + sim.s.split_blocks, 16);
	}
	CHECK(splits > 12 && merges > 9);
	sim_teardown();
}

UNIT_MAIN()
