/*
 * Tests of shadow page accounting and reclaim (shadow/reclaim.c) on the
 * simulated machine of reclaim_sim.c: every translation the simulated CPU
 * makes is checked against the guest tables, and the audit must pass.
 */
#include <string.h>

#include "unit.h"
#include "reclaim_sim.h"
#include "shadow/spage.h"

static struct shadow_pool pool;

/* A small version of the benchmark workload. */
static struct sim_workload small_workload(u32 runs, u64 seed)
{
	struct sim_workload w = sim_bench_workload;

	w.runs = runs;
	w.seed = seed;
	return w;
}

static u64 list_pages(struct shadow_mmu *mmu, int level)
{
	u64 n = 0;

	for (struct shadow_page *sp = mmu->oldest; sp; sp = sp->newer)
		n += !level || sp->role.level == level;
	return n;
}

/*
 * A pass that clears every page's accessed state, ended as an entry point
 * ends it; CLOCK's probation pages count as looked at once (armed).
 */
static void clear_all_accessed(struct shadow_mmu *mmu)
{
	for (struct shadow_page *sp = mmu->oldest; sp; sp = sp->newer) {
		shadow_page_test_and_clear_accessed(mmu, sp);
		sp->rc_armed = mmu->rc.pass;	/* armed by the pass so far */
	}
	sp_commit_zap(mmu);
}

/* Run space s on guest g: all its page tables and the kernel's. */
static void touch_space(struct sim_guest *g, const struct sim_workload *w, u32 s)
{
	CHECK_EQ(shadow_set_cr3(&g->v, sim_space_cr3(w, s)), SHADOW_CR_OK);
	for (u32 t = 0; t < w->tables_per_space; t++)
		CHECK_EQ(sim_access(g, sim_user_gva(t, 1), 0), SIM_OK);
	for (u32 t = 0; t < w->kernel_tables; t++)
		CHECK_EQ(sim_access(g, sim_kernel_gva(t, 2), GACC_WRITE), SIM_OK);
}

/* One guest on a roomy pool, long mode, spaces 0..n-1 run once each. */
static struct sim_guest *guest_with_spaces(const struct sim_workload *w, u32 n, u64 limit,
					   enum shadow_reclaim_policy policy)
{
	struct sim_guest *g = &sim_guests[0];

	sim_reset();
	shadow_pool_init(&pool, 1u << 20);
	CHECK(sim_guest_init(0, &pool, limit, policy));
	sim_workload_setup(g, w);
	for (u32 s = 0; s < n; s++)
		touch_space(g, w, s);
	return g;
}

static void destroy_all(int guests)
{
	for (int i = 0; i < guests; i++) {
		CHECK_EQ(shadow_audit(&sim_guests[i].mmu), 0);
		sim_guest_destroy(i);
	}
	CHECK_EQ(sim_host_frames_used, 0);
	CHECK_EQ(shadow_pool_pages(&pool, 0), 0);
	CHECK_EQ(shadow_pool_frames(&pool), 0);
	CHECK_EQ(pool.charged, 0);
	CHECK_EQ(pool.sum_limits, 0);
}

TEST(default_and_minimum_limits)
{
	CHECK_EQ(shadow_default_limit(16384), 655);	/* 64 MiB: 4% in frames */
	CHECK_EQ(shadow_default_limit(1000), SHADOW_MIN_FRAMES);
	sim_reset();
	shadow_pool_init(&pool, 1000);
	CHECK(sim_guest_init(0, &pool, 10, SHADOW_RECLAIM_CLOCK));
	CHECK_EQ(shadow_mmu_limit(&sim_guests[0].mmu), SHADOW_MIN_FRAMES);
	CHECK_EQ(pool.sum_limits, SHADOW_MIN_FRAMES);
	destroy_all(1);
}

TEST(clock_faults_clearly_less_than_fifo)
{
	static const u64 limits[] = { 160, 256 };	/* frames: 64 and 112 pages and bookkeeping */

	for (int i = 0; i < 2; i++) {
		struct sim_result clock, fifo;

		sim_workload(&sim_bench_workload, limits[i], SHADOW_RECLAIM_CLOCK, &clock);
		sim_workload(&sim_bench_workload, limits[i], SHADOW_RECLAIM_FIFO, &fifo);
		CHECK_EQ(clock.errors + fifo.errors, 0);
		CHECK_EQ(clock.no_memory + fifo.no_memory, 0);
		CHECK(clock.evictions > 0 && fifo.evictions > 0);
		CHECK(clock.faults * 100 <= fifo.faults * 60);	/* 40% fewer at least */
		CHECK(4 * clock.examined <= 4 * limits[i] / SHADOW_PAGE_FRAMES +
		      SHADOW_SCAN_RATE * clock.evictions);	/* the ration */
		CHECK(fifo.examined <= 2 * fifo.evictions);
	}
}

/*
 * With prefetch on, a re-shadowed table brings back its accessed
 * neighbours: both policies re-fault less (measured: CLOCK 11,993 ->
 * 5,631, FIFO 27,682 -> 8,664 at 160 frames) and CLOCK still wins.
 */
TEST(prefetch_cuts_refaults_under_both_policies)
{
	static const u64 limit = 160;
	struct sim_result off[2], on[2];

	for (int p = 0; p < 2; p++) {
		enum shadow_reclaim_policy policy = p ? SHADOW_RECLAIM_FIFO : SHADOW_RECLAIM_CLOCK;

		sim_prefetch = false;
		sim_workload(&sim_bench_workload, limit, policy, &off[p]);
		sim_prefetch = true;
		sim_workload(&sim_bench_workload, limit, policy, &on[p]);
		sim_prefetch = false;
		CHECK_EQ(on[p].errors, 0);
		CHECK(on[p].faults * 100 <= off[p].faults * 70);
	}
	CHECK(on[0].faults < on[1].faults);
}

TEST(accounting_is_exact_and_lock_free_readable)
{
	struct sim_workload w = small_workload(300, 7);
	struct sim_result r;
	u64 sum = 0, frames = 0, sum_level[SHADOW_MAX_LEVEL + 1] = { 0 };

	sim_reset();
	shadow_pool_init(&pool, 1u << 20);
	for (int i = 0; i < 2; i++) {
		CHECK(sim_guest_init(i, &pool, 128 + 80 * i, SHADOW_RECLAIM_CLOCK));
		sim_workload_setup(&sim_guests[i], &w);
		sim_workload_run(&sim_guests[i], &w, &r);
		CHECK_EQ(r.errors, 0);
		CHECK(r.evictions > 0);
	}
	for (int i = 0; i < 2; i++) {
		struct shadow_mmu *mmu = &sim_guests[i].mmu;

		CHECK_EQ(shadow_mmu_pages(mmu, 0), list_pages(mmu, 0));
		/* Frames: every one the host gave, tables and bookkeeping, within the limit. */
		CHECK_EQ(shadow_mmu_frames(mmu), sim_guests[i].frames);
		CHECK(shadow_mmu_frames(mmu) <= shadow_mmu_limit(mmu));
		CHECK(shadow_mmu_frames(mmu) > SHADOW_PAGE_FRAMES * shadow_mmu_pages(mmu, 0));
		CHECK_EQ(sim_guests[i].over_limit, 0);
		CHECK_EQ(mmu->rc.reserved, 0);	/* released after each fault */
		sum += shadow_mmu_pages(mmu, 0);
		frames += shadow_mmu_frames(mmu);
		for (int level = 1; level <= SHADOW_MAX_LEVEL; level++) {
			CHECK_EQ(shadow_mmu_pages(mmu, level), list_pages(mmu, level));
			sum_level[level] += shadow_mmu_pages(mmu, level);
		}
	}
	CHECK_EQ(shadow_pool_pages(&pool, 0), sum);
	CHECK_EQ(shadow_pool_frames(&pool), frames);
	CHECK_EQ(pool.charged, frames);
	for (int level = 1; level <= SHADOW_MAX_LEVEL; level++)
		CHECK_EQ(shadow_pool_pages(&pool, level), sum_level[level]);
	destroy_all(2);
}

TEST(clock_keeps_the_used_pages)
{
	struct sim_workload w = small_workload(0, 1);
	struct sim_guest *g = guest_with_spaces(&w, 4, 512, SHADOW_RECLAIM_CLOCK);
	u64 before = shadow_mmu_pages(&g->mmu, 0), cold;
	u64 hot_gfn = sim_space_cr3(&w, 0) >> 12;

	clear_all_accessed(&g->mmu);
	touch_space(g, &w, 0);	/* used again: its 6 pages and the kernel's 4 */
	/* Everything else is cold: spaces 1-3 (6 pages each), the paging-off root. */
	cold = before - 10;
	CHECK_EQ(cold, 19);
	CHECK_EQ(shadow_evict(&g->mmu, cold), cold);
	CHECK_EQ(shadow_mmu_pages(&g->mmu, 0), 10);
	for (u64 f = hot_gfn; f < hot_gfn + 6; f++)
		CHECK(sp_first_indirect(&g->mmu, f) != NULL);
	for (u64 f = 1; f < 5; f++)	/* the kernel's PDPT, PD and page tables */
		CHECK(sp_first_indirect(&g->mmu, f) != NULL);
	CHECK(g->mmu.stats.evict_examined <= 3 * g->mmu.stats.evictions);
	/* All hot now: evictions still happen, examining a bounded number. */
	for (struct shadow_page *sp = g->mmu.oldest; sp; sp = sp->newer)
		sp->accessed = true;
	before = g->mmu.stats.evict_examined;
	CHECK_EQ(shadow_evict(&g->mmu, 1), 1);
	CHECK(g->mmu.stats.evict_examined - before <= SHADOW_SCAN_MAX);
	CHECK_EQ(shadow_mmu_pages(&g->mmu, 1), 4);	/* a leaf went, not a directory */
	touch_space(g, &w, 0);
	destroy_all(1);
}

/*
 * The kernel's pages are global: after the first walk the CPU serves them
 * from its TLB, across CR3 loads, and sets no A bit. An eviction pass
 * clears the A bits it reads and ends with one flush, so the kernel's next
 * use walks and shows; without the flush its tables would look cold.
 */
TEST(eviction_pass_flushes_once_so_cached_use_shows)
{
	struct sim_workload w = small_workload(0, 1);
	struct sim_guest *g = guest_with_spaces(&w, 4, 512, SHADOW_RECLAIM_CLOCK);
	struct shadow_page *kpt = sp_first_indirect(&g->mmu, 3);	/* a kernel page table */
	u64 flushes = g->cpu.stats.flushes, accessed_flushes = g->mmu.stats.accessed_flushes;

	CHECK(kpt != NULL);
	if (!kpt)
		return;
	clear_all_accessed(&g->mmu);	/* as a pass does: A cleared, one flush */
	CHECK_EQ(g->cpu.stats.flushes, flushes + 1);
	CHECK_EQ(g->mmu.stats.accessed_flushes, accessed_flushes + 1);
	CHECK_EQ(sim_access(g, sim_kernel_gva(0, 2), 0), SIM_OK);
	CHECK(shadow_page_test_and_clear_accessed(&g->mmu, kpt));
	/* Evicting several pages at once: one flush for the whole pass. */
	sp_rc_move(&g->mmu, kpt, SHADOW_RC_HOT);	/* not a candidate: its A stays clear */
	flushes = g->cpu.stats.flushes;
	CHECK_EQ(shadow_evict(&g->mmu, 5), 5);
	CHECK_EQ(g->cpu.stats.flushes, flushes + 1);
	/* Cached now (global), yet the pass's flush makes the next use walk. */
	CHECK_EQ(sim_access(g, sim_kernel_gva(0, 2), 0), SIM_OK);
	CHECK(shadow_page_test_and_clear_accessed(&g->mmu, kpt));
	sp_commit_zap(&g->mmu);
	destroy_all(1);
}

TEST(clock_takes_a_cold_leaf_before_a_cold_directory)
{
	struct sim_workload w = small_workload(0, 1);
	struct sim_guest *g = guest_with_spaces(&w, 2, 512, SHADOW_RECLAIM_CLOCK);
	struct shadow_rc_queue *leaves = &g->mmu.rc.lists[SHADOW_RC_PROB_LEAF];
	struct shadow_rc_queue *dirs = &g->mmu.rc.lists[SHADOW_RC_PROB_DIR];
	struct shadow_page *dir, *leaf, *next;

	clear_all_accessed(&g->mmu);
	for (struct shadow_page *sp = dirs->head; sp; sp = next) {
		next = sp->rc_next;
		if (sp->root_count)	/* roots: cached or running, not the point here */
			sp_rc_move(&g->mmu, sp, SHADOW_RC_HOT);
	}
	dir = dirs->head;
	leaf = leaves->head;
	/* The oldest directory joined probation before the oldest leaf, but not
	 * limit/SHADOW_LEAF_FIRST_DIV joins before: the leaf goes first. */
	CHECK(dir && leaf && dir->rc_seq < leaf->rc_seq);
	CHECK(!dir->root_count);
	CHECK_EQ(shadow_evict(&g->mmu, 1), 1);
	CHECK(leaf->zapped);
	CHECK(!dir->zapped);
	/* A directory that has waited long enough goes before a younger leaf. */
	leaves->head->rc_seq = dirs->head->rc_seq + 512 / SHADOW_LEAF_FIRST_DIV + 1;
	dir = dirs->head;
	leaf = leaves->head;
	CHECK_EQ(shadow_evict(&g->mmu, 1), 1);
	CHECK(dir->zapped);
	CHECK(!leaf->zapped);
	touch_space(g, &w, 0);
	touch_space(g, &w, 1);
	destroy_all(1);
}

/*
 * Probation: a page's first look only arms it (the walk that created it
 * set A), and no verdict comes in the pass that armed it (the guest has not
 * run since); at a later pass, used since arming, it is promoted to HOT;
 * not used, it goes.
 */
TEST(clock_arms_new_pages_then_judges_them_a_pass_later)
{
	struct sim_workload w = small_workload(0, 1);
	struct sim_guest *g = guest_with_spaces(&w, 2, 512, SHADOW_RECLAIM_CLOCK);
	u64 pt0 = (sim_space_cr3(&w, 0) >> 12) + 3, pt1 = (sim_space_cr3(&w, 1) >> 12) + 3;
	struct shadow_page *a = sp_first_indirect(&g->mmu, pt0);
	struct shadow_page *b = sp_first_indirect(&g->mmu, pt1);
	u64 examined = g->mmu.stats.evict_examined;

	CHECK(a && b && !a->rc_armed && !b->rc_armed);
	if (!a || !b)
		return;
	/* a and b the oldest leaves on probation, every other page used. */
	sp_rc_move(&g->mmu, b, SHADOW_RC_HOT);
	sp_rc_move(&g->mmu, a, SHADOW_RC_HOT);
	sp_rc_move(&g->mmu, b, SHADOW_RC_PROB_LEAF);
	sp_rc_move(&g->mmu, a, SHADOW_RC_PROB_LEAF);
	for (struct shadow_page *sp = g->mmu.oldest; sp; sp = sp->newer)
		if (sp != a && sp != b)
			sp->rc_armed = g->mmu.rc.pass, sp->accessed = true;
	CHECK_EQ(shadow_evict(&g->mmu, 1), 1);
	CHECK(!a->zapped && !b->zapped);	/* armed in that pass: no verdict yet */
	CHECK(a->rc_armed && b->rc_armed);
	CHECK(g->mmu.stats.evict_examined - examined <= SHADOW_SCAN_MAX);
	/* The guest runs on: space 1's table is walked, space 0's is not. */
	CHECK_EQ(shadow_set_cr3(&g->v, sim_space_cr3(&w, 1)), SHADOW_CR_OK);
	CHECK_EQ(sim_access(g, sim_user_gva(0, 1), 0), SIM_OK);
	CHECK_EQ(shadow_evict(&g->mmu, 1), 1);
	CHECK(sp_first_indirect(&g->mmu, pt0) == NULL);	/* a went */
	CHECK(sp_first_indirect(&g->mmu, pt1) == b && b->rc_list == SHADOW_RC_HOT);
	destroy_all(1);
}

/* A stream of address spaces run once does not push out a hot one. */
TEST(clock_keeps_a_hot_space_through_a_cold_stream)
{
	struct sim_workload w = small_workload(0, 1);
	struct sim_guest *g = guest_with_spaces(&w, 1, 128, SHADOW_RECLAIM_CLOCK);
	u64 hot = sim_space_cr3(&w, 0) >> 12, created;

	for (u32 s = 8; s < 8 + 40; s++) {	/* 40 spaces of 6 pages, once each */
		touch_space(g, &w, s);
		touch_space(g, &w, 0);
	}
	created = g->mmu.stats.pages_created;
	touch_space(g, &w, 0);
	CHECK_EQ(g->mmu.stats.pages_created, created);	/* nothing of space 0 was lost */
	for (u64 f = hot; f < hot + 6; f++)
		CHECK(sp_first_indirect(&g->mmu, f) != NULL);
	CHECK(g->mmu.stats.evictions > 150);
	CHECK(4 * g->mmu.stats.evict_examined <=
	      4 * 128 / SHADOW_PAGE_FRAMES + SHADOW_SCAN_RATE * g->mmu.stats.evictions);
	destroy_all(1);
}

TEST(evicting_a_directory_keeps_its_children_and_their_use)
{
	struct sim_workload w = small_workload(0, 1);
	struct sim_guest *g = guest_with_spaces(&w, 1, 512, SHADOW_RECLAIM_CLOCK);
	u64 pd_gfn = (sim_space_cr3(&w, 0) >> 12) + 2;
	struct shadow_page *pd = sp_first_indirect(&g->mmu, pd_gfn);
	struct shadow_page *pt = sp_first_indirect(&g->mmu, pd_gfn + 1);
	u64 created;

	CHECK(pd && pt);
	if (!pd || !pt)
		return;
	/* The CPU walked PD -> PT: the link's A bit is set; forget the software bit. */
	CHECK(pd->spt[0] & PTE_A);
	pt->accessed = false;
	shadow_zap_page(&g->mmu, pd);
	CHECK(pt->accessed);	/* passed on from the dropped link */
	CHECK_EQ(parents_count(pt, NULL), 0);
	CHECK_EQ(shadow_audit(&g->mmu), 0);
	CHECK_EQ(shadow_mmu_pages(&g->mmu, 0), list_pages(&g->mmu, 0));
	/* The next fault rebuilds the directory only and relinks the cached table. */
	created = g->mmu.stats.pages_created;
	CHECK_EQ(sim_access(g, sim_user_gva(0, 3), 0), SIM_OK);
	CHECK_EQ(g->mmu.stats.pages_created, created + 1);
	CHECK_EQ(parents_count(pt, NULL), 1);
	destroy_all(1);
}

TEST(running_roots_are_never_evicted)
{
	struct sim_workload w = small_workload(0, 1);
	struct sim_guest *g = guest_with_spaces(&w, 3, 512, SHADOW_RECLAIM_CLOCK);
	struct shadow_page *root = g->v.root;
	u64 before = shadow_mmu_pages(&g->mmu, 0);

	CHECK_EQ(shadow_evict(&g->mmu, 1000), before - 1);
	CHECK_EQ(shadow_mmu_pages(&g->mmu, 0), 1);
	CHECK(g->v.root == root && !root->zapped && g->mmu.oldest == root);
	touch_space(g, &w, 2);
	touch_space(g, &w, 0);
	destroy_all(1);
}

/* PAE: PDPT at frame 0x10, PDs 0x11-0x14, page tables 0x15-0x18, data 0x20. */
TEST(pae_root_and_its_directories_stay_while_running)
{
	struct sim_guest *g = &sim_guests[0];

	sim_reset();
	shadow_pool_init(&pool, 1u << 20);
	CHECK(sim_guest_init(0, &pool, 64, SHADOW_RECLAIM_CLOCK));
	for (u64 i = 0; i < 4; i++) {
		sim_store64(g, 0x10000 + i * 8, (0x11 + i) << 12 | PTE_P);
		sim_store64(g, (0x11 + i) << 12, (0x15 + i) << 12 | PTE_P | PTE_W);
		sim_store64(g, (0x15 + i) << 12, 0x20000 | PTE_P | PTE_W);
	}
	CHECK_EQ(shadow_set_cr3(&g->v, 0x10000), SHADOW_CR_OK);
	CHECK_EQ(shadow_set_mode(&g->v, CR0_PG | CR0_WP, CR4_PAE, 0), SHADOW_CR_OK);
	for (u64 i = 0; i < 4; i++)
		CHECK_EQ(sim_access(g, i << 30, GACC_WRITE), SIM_OK);
	CHECK_EQ(shadow_mmu_pages(&g->mmu, 0), 10);	/* + the paging-off root */
	clear_all_accessed(&g->mmu);
	CHECK_EQ(shadow_evict(&g->mmu, 1000), 5);
	CHECK_EQ(shadow_mmu_pages(&g->mmu, 2), 4);
	CHECK_EQ(shadow_mmu_pages(&g->mmu, 3), 1);
	for (u64 i = 0; i < 4; i++)
		CHECK_EQ(sim_access(g, i << 30 | 0x123, 0), SIM_OK);
	destroy_all(1);
}

TEST(fifo_evicts_the_oldest_created)
{
	struct sim_workload w = small_workload(0, 1);
	struct sim_guest *g = guest_with_spaces(&w, 2, 512, SHADOW_RECLAIM_FIFO);
	struct shadow_page *oldest = g->mmu.oldest, *second = oldest->newer;

	/* The paging-off root, cached but not running: it may go. */
	CHECK(oldest->role.pae_root && oldest != g->v.root);
	for (struct shadow_page *sp = g->mmu.oldest; sp; sp = sp->newer)
		sp->accessed = true;	/* FIFO does not care */
	CHECK_EQ(shadow_evict(&g->mmu, 1), 1);
	CHECK_EQ(g->mmu.oldest, second);
	CHECK_EQ(g->mmu.stats.evict_examined, 1);
	for (int i = 0; i < SHADOW_ROOT_CACHE; i++)
		CHECK(g->mmu.root_cache[i] != oldest);
	touch_space(g, &w, 1);
	destroy_all(1);
}

TEST(lower_limit_evicts_at_once)
{
	struct sim_workload w = small_workload(0, 1);
	struct sim_guest *g = guest_with_spaces(&w, 16, 512, SHADOW_RECLAIM_CLOCK);

	CHECK(shadow_mmu_pages(&g->mmu, 0) > 90);
	shadow_set_limit(&g->mmu, 1);
	CHECK_EQ(shadow_mmu_limit(&g->mmu), SHADOW_MIN_FRAMES);
	CHECK_EQ(pool.sum_limits, SHADOW_MIN_FRAMES);
	CHECK(shadow_mmu_frames(&g->mmu) <= SHADOW_MIN_FRAMES);
	CHECK_EQ(shadow_mmu_frames(&g->mmu), g->frames);
	touch_space(g, &w, 3);
	CHECK(shadow_mmu_frames(&g->mmu) <= SHADOW_MIN_FRAMES);
	CHECK_EQ(g->over_limit, 0);
	destroy_all(1);
}

/*
 * Guest page-table writes while pages come and go: leaves of hot spaces are
 * remapped (emulated through the shadow MMU when the table is shadowed)
 * between runs; every access is still checked against the guest tables.
 */
TEST(guest_table_writes_during_reclaim)
{
	struct sim_workload w = small_workload(0, 1);
	struct sim_guest *g = guest_with_spaces(&w, 8, 128, SHADOW_RECLAIM_CLOCK);
	u64 rng = 11, sptes_updated = g->mmu.stats.sptes_updated;

	for (int run = 0; run < 400; run++) {
		u64 x = ref_rand(&rng);
		u32 s = (u32)(x % 24);	/* 8 spaces again and again, 16 more now and then */
		u64 pt = (sim_space_cr3(&w, s) >> 12) + 3 + (x >> 8) % w.tables_per_space;
		u64 gpa = pt * 4096 + ((x >> 16) % 8) * 8;
		u64 pte = (0x300 + (x >> 24) % 64) << 12 | PTE_P | PTE_W | PTE_U;

		if (shadow_gfn_is_write_protected(&g->mmu, pt))
			shadow_guest_write(&g->mmu, gpa, &pte, 8);
		else
			sim_store64(g, gpa, pte);
		CHECK_EQ(shadow_set_cr3(&g->v, sim_space_cr3(&w, s)), SHADOW_CR_OK);
		for (int a = 0; a < 8; a++) {
			u64 y = ref_rand(&rng);

			CHECK_EQ(sim_access(g, sim_user_gva((u32)(y % w.tables_per_space),
							    (u32)((y >> 8) % 8)),
					    (y >> 16) & 1 ? GACC_WRITE : 0), SIM_OK);
		}
		if (run % 50 == 0)
			CHECK_EQ(shadow_audit(&g->mmu), 0);
	}
	CHECK(g->mmu.stats.evictions > 0);
	CHECK(g->mmu.stats.sptes_updated > sptes_updated);
	CHECK_EQ(g->over_limit, 0);
	destroy_all(1);
}

/* ---- the pool and global reclaim --------------------------------------- */

static bool busy[SIM_MAX_GUESTS];
static unsigned locked[SIM_MAX_GUESTS];

static bool sim_trylock(struct shadow_pool *p, struct shadow_mmu *mmu)
{
	int i = (int)((struct sim_guest *)mmu->host - sim_guests);

	(void)p;
	if (busy[i])
		return false;
	locked[i]++;
	return true;
}

static void sim_unlock(struct shadow_pool *p, struct shadow_mmu *mmu)
{
	(void)p;
	(void)mmu;
}

static void pool_setup(u64 limit)
{
	sim_reset();
	shadow_pool_init(&pool, limit);
	pool.trylock = sim_trylock;
	pool.unlock = sim_unlock;
	memset(busy, 0, sizeof(busy));
	memset(locked, 0, sizeof(locked));
}

TEST(global_reclaim_takes_from_the_guest_above_its_share)
{
	struct sim_workload w = small_workload(400, 3);
	struct sim_result r;

	/* Fair shares of a 384-frame pool: 128 each. */
	pool_setup(384);
	for (int i = 0; i < 3; i++) {
		CHECK(sim_guest_init(i, &pool, 512, SHADOW_RECLAIM_CLOCK));
		sim_workload_setup(&sim_guests[i], &w);
	}
	sim_workload_run(&sim_guests[0], &w, &r);	/* fills the pool alone */
	CHECK_EQ(r.errors + r.no_memory, 0);
	CHECK(shadow_pool_frames(&pool) >= 384 - 3 * SHADOW_PAGE_FRAMES - SHADOW_BOOKKEEPING_FRAMES - 20);
	CHECK(pool.charged <= 384);
	/* Guest 2 runs a little: it is below its share, guest 0 far above. */
	touch_space(&sim_guests[2], &w, 0);
	touch_space(&sim_guests[2], &w, 1);
	CHECK(pool.reclaims > 0);
	CHECK(locked[0] > 0);
	CHECK_EQ(locked[1], 0);		/* the counters said it had nothing to give */
	CHECK_EQ(sim_guests[1].mmu.stats.evictions, 0);
	CHECK_EQ(sim_guests[2].mmu.stats.evictions, 0);
	/* Guest 1 runs the whole workload: now both big guests give. */
	sim_workload_run(&sim_guests[1], &w, &r);
	CHECK_EQ(r.errors + r.no_memory, 0);
	CHECK(shadow_pool_frames(&pool) <= 384);
	CHECK(shadow_mmu_frames(&sim_guests[0].mmu) < 256);
	CHECK(shadow_mmu_frames(&sim_guests[1].mmu) > 80);
	CHECK_EQ(pool.charged, shadow_pool_frames(&pool));
	destroy_all(3);
}

TEST(pool_exhausted_fault_waits_and_changes_nothing)
{
	struct sim_workload w = small_workload(200, 5);
	struct sim_result r;
	struct sim_guest *a = &sim_guests[0], *b = &sim_guests[1];
	u64 used_b;

	pool_setup(256);
	CHECK(sim_guest_init(0, &pool, 512, SHADOW_RECLAIM_CLOCK));
	CHECK(sim_guest_init(1, &pool, 512, SHADOW_RECLAIM_CLOCK));
	sim_workload_setup(a, &w);
	sim_workload_setup(b, &w);
	sim_workload_run(a, &w, &r);
	CHECK_EQ(r.errors + r.no_memory, 0);
	CHECK(pool.charged > 200);
	/* Guest 1 keeps only its running root; the pool is full; guest 0 is busy
	 * on another CPU: guest 1 has to wait. */
	CHECK_EQ(shadow_evict(&b->mmu, 100), 1);
	__atomic_store_n(&pool.limit, pool.charged, __ATOMIC_RELAXED);
	busy[0] = true;
	used_b = shadow_mmu_frames(&b->mmu);
	CHECK_EQ(shadow_set_cr3(&b->v, sim_space_cr3(&w, 5)), SHADOW_CR_NO_MEMORY);
	CHECK_EQ(sim_access(b, sim_user_gva(0, 0), 0), SIM_NO_MEMORY);
	CHECK_EQ(shadow_mmu_frames(&b->mmu), used_b);
	CHECK_EQ(b->mmu.rc.reserved, 0);
	CHECK(b->mmu.stats.reserve_failures >= 2);
	CHECK_EQ(pool.charged, shadow_pool_frames(&pool));
	CHECK_EQ(shadow_audit(&b->mmu), 0);
	busy[0] = false;
	CHECK_EQ(sim_access(b, sim_user_gva(0, 0), 0), SIM_OK);
	touch_space(b, &w, 5);
	destroy_all(2);
}

UNIT_MAIN()
