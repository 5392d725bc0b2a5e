/*
 * Shadow page ageing (shadow/age.c): guest accesses on the simulated CPU
 * (which sets A in the sptes it walks) must make exactly the accessed
 * guest-physical pages young, and every other page one scan older.
 */
#include <string.h>
#include "unit.h"
#include "reclaim_sim.h"
#include "shadow/age.h"
#include "shadow/spage.h"

static u32 age_buf[SIM_RAM_PAGES];

static const struct sim_workload small = {
	.hot_spaces = 2, .cold_spaces = 0, .cold_percent = 0, .tables_per_space = 2,
	.kernel_tables = 1, .accesses_per_run = 0, .runs = 0, .seed = 1,
};

/* Guest-physical page of gva in the current address space. */
static u64 gfn_of(struct sim_guest *g, u64 gva)
{
	struct ref_result r;

	CHECK_EQ(ref_translate(&g->v.ctx, &g->ram.mem, gva, 0, &r), GWALK_OK);
	return r.gpa >> 12;
}

/* The incremental counts must equal a recount from the per-page ages. */
static void check_counts(const struct shadow_age *s)
{
	u64 recount[AGE_MAX + 1] = { 0 };

	for (u64 gfn = 0; gfn < s->pages; gfn++)
		recount[shadow_age_page(s, gfn)]++;
	for (int a = 0; a <= AGE_MAX; a++)
		CHECK_EQ(s->count[a], recount[a]);
}

TEST(accessed_pages_are_young_others_age)
{
	struct sim_guest *g = &sim_guests[0];
	struct shadow_age s;
	struct shadow_age_stats st;
	u64 a, b, c, flushes;

	sim_reset();
	CHECK(sim_guest_init(0, NULL, 0, SHADOW_RECLAIM_CLOCK));
	sim_workload_setup(g, &small);
	CHECK_EQ(shadow_set_cr3(&g->v, sim_space_cr3(&small, 0)), SHADOW_CR_OK);
	shadow_age_init(&s, age_buf, SIM_RAM_PAGES);

	CHECK_EQ(sim_access(g, sim_user_gva(0, 1), 0), SIM_OK);
	CHECK_EQ(sim_access(g, sim_user_gva(1, 3), GACC_WRITE), SIM_OK);
	a = gfn_of(g, sim_user_gva(0, 1));
	b = gfn_of(g, sim_user_gva(1, 3));
	flushes = g->cpu.stats.flushes;
	shadow_age_scan(&g->mmu, &s, &st);
	CHECK(st.flushed);	/* A bits were cleared: one flush for the pass */
	CHECK_EQ(g->cpu.stats.flushes, flushes + 1);
	CHECK_EQ(st.pages_young, 2);
	CHECK_EQ(shadow_age_page(&s, a), 0);
	CHECK_EQ(shadow_age_page(&s, b), 0);
	for (u64 gfn = 0; gfn < SIM_RAM_PAGES; gfn++)
		if (gfn != a && gfn != b)
			CHECK_EQ(shadow_age_page(&s, gfn), 1);
	check_counts(&s);

	/* Nothing touched: everything ages, the A bits were cleared by the scan
	 * (none set now: no flush needed). */
	shadow_age_scan(&g->mmu, &s, &st);
	CHECK_EQ(st.pages_young, 0);
	CHECK(!st.flushed);
	CHECK_EQ(shadow_age_page(&s, a), 1);
	CHECK_EQ(age_working_set(s.count, 1), 0);
	CHECK_EQ(age_working_set(s.count, 2), 2);

	/* One page again: its translation was cached before the first scan, but
	 * that scan's flush made the CPU walk again and set A. */
	CHECK_EQ(sim_access(g, sim_user_gva(0, 1), 0), SIM_OK);
	c = gfn_of(g, sim_user_gva(0, 2));
	shadow_age_scan(&g->mmu, &s, &st);
	CHECK_EQ(shadow_age_page(&s, a), 0);
	CHECK_EQ(shadow_age_page(&s, b), 2);
	CHECK_EQ(shadow_age_page(&s, c), 3);   /* mapped but never accessed */
	CHECK_EQ(age_working_set(s.count, 1), 1);
	check_counts(&s);
	sim_guest_destroy(0);
}

TEST(ages_saturate_and_histogram_adds_up)
{
	struct sim_guest *g = &sim_guests[0];
	struct shadow_age s;
	struct shadow_age_stats st;
	u64 hist[AGE_BUCKETS], sum = 0;

	sim_reset();
	CHECK(sim_guest_init(0, NULL, 0, SHADOW_RECLAIM_CLOCK));
	sim_workload_setup(g, &small);
	shadow_age_init(&s, age_buf, SIM_RAM_PAGES);
	for (int i = 0; i < 300; i++) {
		shadow_age_scan(&g->mmu, &s, &st);
		if (i == 253 || i == 254 || i == 255)
			check_counts(&s);
	}
	CHECK_EQ(shadow_age_page(&s, 5), AGE_MAX);
	CHECK_EQ(s.count[AGE_MAX], SIM_RAM_PAGES);
	age_histogram(s.count, hist);
	for (int i = 0; i < AGE_BUCKETS; i++)
		sum += hist[i];
	CHECK_EQ(sum, SIM_RAM_PAGES);
	CHECK_EQ(hist[AGE_BUCKETS - 1], SIM_RAM_PAGES);
	sim_guest_destroy(0);
}

/* The present-spte bitmaps the scan reads are exact. */
static void check_present_bits(struct shadow_mmu *mmu)
{
	for (struct shadow_page *sp = mmu->oldest; sp; sp = sp->newer)
		for (int i = 0; i < PT_ENTRIES; i++)
			CHECK_EQ(!!(sp->present[i / 64] & (1ull << (i % 64))), spte_present(sp->spt[i]));
}

static const struct sim_workload wide = {
	.hot_spaces = 6, .cold_spaces = 0, .cold_percent = 0, .tables_per_space = 3,
	.kernel_tables = 2, .accesses_per_run = 0, .runs = 0, .seed = 1,
};

/*
 * Leaf tables the CPU has not walked since the last scan are skipped: their
 * parent spte's A bit is clear (the last scan cleared it and flushed). Only
 * the present sptes of the walked tables are read.
 */
TEST(unwalked_leaf_tables_are_skipped)
{
	struct sim_guest *g = &sim_guests[0];
	struct shadow_age s;
	struct shadow_age_stats st;
	u64 gfn;

	sim_reset();
	CHECK(sim_guest_init(0, NULL, 0, SHADOW_RECLAIM_CLOCK));
	sim_workload_setup(g, &wide);
	for (u32 sp = 0; sp < wide.hot_spaces; sp++) {
		CHECK_EQ(shadow_set_cr3(&g->v, sim_space_cr3(&wide, sp)), SHADOW_CR_OK);
		for (u32 t = 0; t < wide.tables_per_space; t++)
			for (u32 p = 0; p < 8; p++)
				CHECK_EQ(sim_access(g, sim_user_gva(t, p), 0), SIM_OK);
	}
	shadow_age_init(&s, age_buf, SIM_RAM_PAGES);
	shadow_age_scan(&g->mmu, &s, &st);
	CHECK_EQ(st.tables, 6 * 3 + 0);	/* the kernel's tables were never walked: not shadowed */
	CHECK_EQ(st.tables_scanned, st.tables);
	CHECK_EQ(st.sptes_visited, 6 * 3 * 8);
	check_present_bits(&g->mmu);

	/* One table walked since: one table read, 8 sptes. */
	CHECK_EQ(sim_access(g, sim_user_gva(1, 5), 0), SIM_OK);	/* space 5, cached */
	gfn = gfn_of(g, sim_user_gva(1, 5));
	shadow_age_scan(&g->mmu, &s, &st);
	CHECK_EQ(st.tables_scanned, 1);
	CHECK_EQ(st.sptes_visited, 8);
	CHECK(st.sptes_visited <= 512 * st.tables_scanned);
	CHECK_EQ(shadow_age_page(&s, gfn), 0);
	CHECK_EQ(st.pages_young, 1);

	/* Nothing walked: nothing read but the parent sptes. */
	shadow_age_scan(&g->mmu, &s, &st);
	CHECK_EQ(st.tables_scanned, 0);
	CHECK_EQ(st.sptes_visited, 0);
	CHECK_EQ(shadow_age_page(&s, gfn), 1);
	check_counts(&s);
	sim_guest_destroy(0);
}

/* Reclaim reading (and clearing) the parent A bit first does not hide the walk from ageing. */
TEST(a_walk_seen_by_reclaim_is_kept_for_ageing)
{
	struct sim_guest *g = &sim_guests[0];
	struct shadow_age s;
	struct shadow_age_stats st;
	struct shadow_page *pt;
	u64 gfn;

	sim_reset();
	CHECK(sim_guest_init(0, NULL, 0, SHADOW_RECLAIM_CLOCK));
	sim_workload_setup(g, &small);
	CHECK_EQ(shadow_set_cr3(&g->v, sim_space_cr3(&small, 0)), SHADOW_CR_OK);
	CHECK_EQ(sim_access(g, sim_user_gva(0, 1), 0), SIM_OK);
	shadow_age_init(&s, age_buf, SIM_RAM_PAGES);
	shadow_age_scan(&g->mmu, &s, &st);
	shadow_age_scan(&g->mmu, &s, &st);
	gfn = gfn_of(g, sim_user_gva(0, 1));
	CHECK_EQ(shadow_age_page(&s, gfn), 1);
	CHECK_EQ(sim_access(g, sim_user_gva(0, 1), 0), SIM_OK);
	pt = sp_first_indirect(&g->mmu, (sim_space_cr3(&small, 0) >> 12) + 3);
	CHECK(pt != NULL);
	if (!pt)
		return;
	CHECK(shadow_page_test_and_clear_accessed(&g->mmu, pt));	/* reclaim looks first */
	sp_commit_zap(&g->mmu);
	shadow_age_scan(&g->mmu, &s, &st);
	CHECK_EQ(st.tables_scanned, 1);
	CHECK_EQ(shadow_age_page(&s, gfn), 0);
	sim_guest_destroy(0);
}

/* A random workload: each scan reads at most 512 sptes per leaf table walked since the last. */
TEST(entries_read_are_bounded_by_the_tables_walked)
{
	struct sim_guest *g = &sim_guests[0];
	struct shadow_age s;
	struct shadow_age_stats st;
	u64 rng = 3;

	sim_reset();
	CHECK(sim_guest_init(0, NULL, 0, SHADOW_RECLAIM_CLOCK));
	sim_workload_setup(g, &wide);
	shadow_age_init(&s, age_buf, SIM_RAM_PAGES);
	for (int scan = 0; scan < 40; scan++) {
		bool walked[8][4] = { { false } };
		u32 touched = 0;

		for (int a = 0; a < (scan % 5) * 6; a++) {
			u64 x = ref_rand(&rng);
			u32 sp = (u32)(x % wide.hot_spaces), t = (u32)((x >> 8) % wide.tables_per_space);

			CHECK_EQ(shadow_set_cr3(&g->v, sim_space_cr3(&wide, sp)), SHADOW_CR_OK);
			CHECK_EQ(sim_access(g, sim_user_gva(t, (u32)((x >> 16) % 8)), 0), SIM_OK);
			touched += !walked[sp][t];
			walked[sp][t] = true;
		}
		shadow_age_scan(&g->mmu, &s, &st);
		CHECK(st.tables_scanned <= touched);
		CHECK(st.sptes_visited <= 512 * touched + st.tables);
		check_counts(&s);
	}
	check_present_bits(&g->mmu);
	sim_guest_destroy(0);
}

UNIT_MAIN()
