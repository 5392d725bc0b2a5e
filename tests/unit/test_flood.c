/*
 * Tests of flood detection (shadow/flood.c) and of the in-place update of
 * partial writes it must keep, on the simulated machine of flood_sim.c: a
 * CPU walking the shadow tables, whose every translation is checked against
 * the guest tables, and shadow_audit() after each test.
 */
#include <string.h>

#include "unit.h"
#include "flood_sim.h"
#include "shadow/account.h"
#include "shadow/spage.h"

static u64 pte_gpa(u32 s, u32 t, u32 p)
{
	return fsim_pt(s, t) * 4096 + 8 * p;
}

static void store64(u64 gpa, u64 val)
{
	fsim_store(fsim_kva(gpa), &val, 8, false);
}

/* The shadow page of space 0's table t (long mode, full rights), or NULL. */
static struct shadow_page *table_sp(u64 gfn)
{
	return sp_first_indirect(&fsim.mmu, gfn);
}

/* Space 0 running with n pages mapped in each table, all touched. */
static void live_space(bool flood, u32 n)
{
	fsim_init(flood);
	fsim_populate(0, n);
	for (u32 t = 0; t < FSIM_TABLES; t++)
		for (u32 p = 0; p < n; p++)
			fsim_read(fsim_user_gva(t, p));
}

static void check_clean(void)
{
	struct fsim_counts c;

	fsim_counts(&c);
	CHECK_EQ(c.errors, 0);
	fsim_destroy();
}

/* The spte that maps user page p of table t. */
static u64 leaf_spte(u32 t, u32 p)
{
	return table_sp(fsim_pt(0, t))->spt[p];
}

TEST(byte_write_updates_one_spte_in_place)
{
	for (int flood = 0; flood < 2; flood++) {
		struct shadow_page *sp;
		u64 zapped;

		live_space(flood, 8);
		fsim_store(fsim_user_gva(0, 3), "x", 1, true);	/* guest D set: spte writable */
		CHECK(leaf_spte(0, 3) & PTE_W);
		sp = table_sp(fsim_pt(0, 0));
		zapped = fsim.mmu.stats.pages_zapped;
		for (int i = 0; i < 10; i++)	/* clear_bit(_PAGE_BIT_RW): lock andb */
			fsim_clear_bit(pte_gpa(0, 0, 3), 1);
		CHECK(table_sp(fsim_pt(0, 0)) == sp);
		CHECK_EQ(fsim.mmu.stats.pages_zapped, zapped);
		CHECK(!(leaf_spte(0, 3) & PTE_W));
		CHECK(spte_present(leaf_spte(0, 2)) && spte_present(leaf_spte(0, 4)));
		CHECK_EQ(fsim.mmu.stats.unshadowed_flood + fsim.mmu.stats.unshadowed_pattern, 0);
		check_clean();
	}
}

TEST(write_crossing_two_entries_updates_both)
{
	for (int flood = 0; flood < 2; flood++) {
		struct shadow_page *sp;
		u16 two;

		live_space(flood, 8);
		sp = table_sp(fsim_pt(0, 0));
		/* 2 bytes across entries 4 and 5: the top byte of 4 and the low byte of 5.
		 * Entry 5 loses P: its spte must go, entry 4's stays. */
		two = (u16)((fsim_load64(pte_gpa(0, 0, 4)) >> 56) |
			    ((fsim_load64(pte_gpa(0, 0, 5)) & 0xfe) << 8));
		fsim_store(fsim_kva(pte_gpa(0, 0, 4) + 7), &two, 2, false);
		CHECK(spte_present(leaf_spte(0, 4)));
		CHECK(!spte_present(leaf_spte(0, 5)));
		CHECK(table_sp(fsim_pt(0, 0)) == sp);
		CHECK_EQ(fsim.mmu.stats.pages_zapped, 0);
		check_clean();
	}
}

TEST(whole_page_clear_is_one_exit_and_gives_write_back)
{
	static const u8 zero[4096];

	live_space(true, 8);
	fsim_switch(1);		/* space 0 is no longer running */
	CHECK(shadow_gfn_is_write_protected(&fsim.mmu, fsim_pt(0, 2)));
	fsim_store(fsim_kva(fsim_pt(0, 2) * 4096), zero, 4096, false);
	CHECK_EQ(fsim.emulated, 1);
	CHECK(!shadow_gfn_is_write_protected(&fsim.mmu, fsim_pt(0, 2)));
	u64 faults = fsim.mmu.stats.faults;
	store64(fsim_pt(0, 2) * 4096 + 8, 42);	/* straight to memory */
	CHECK_EQ(fsim.mmu.stats.faults, faults);
	CHECK_EQ(fsim.emulated, 1);
	check_clean();
}

TEST(unused_table_written_is_unshadowed_and_then_written_directly)
{
	live_space(true, 8);
	fsim_switch(1);
	for (u32 i = 0; i < SHADOW_FLOOD_WRITES; i++)
		store64(pte_gpa(0, 1, 100 + i), 0x123456789ull << 12 | 1);	/* data, not PTEs */
	CHECK_EQ(fsim.emulated, SHADOW_FLOOD_WRITES);
	CHECK_EQ(fsim.mmu.stats.unshadowed_flood, 1);
	CHECK(!shadow_gfn_is_write_protected(&fsim.mmu, fsim_pt(0, 1)));
	u64 faults = fsim.mmu.stats.faults;
	for (u32 i = 0; i < 100; i++)
		store64(pte_gpa(0, 1, 200 + i), i);
	CHECK_EQ(fsim.emulated, SHADOW_FLOOD_WRITES);
	CHECK_EQ(fsim.mmu.stats.faults, faults);
	check_clean();
}

TEST(flood_off_never_unshadows)
{
	live_space(false, 8);
	fsim_switch(1);
	for (u32 i = 0; i < 100; i++)
		store64(pte_gpa(0, 1, 100 + i), 0x123456789ull << 12 | 1);
	CHECK_EQ(fsim.emulated, 100);
	CHECK(shadow_gfn_is_write_protected(&fsim.mmu, fsim_pt(0, 1)));
	check_clean();
}

TEST(table_in_use_between_writes_keeps_its_shadow)
{
	live_space(true, 8);
	/* Writes the detector counts (a present entry changes frame), each followed by
	 * a use of the table by the CPU that does not fault. */
	for (u32 i = 0; i < 50; i++) {
		store64(pte_gpa(0, 0, 100), (u64)(FSIM_DATA_FRAME + i % 4) * 4096 | FSIM_PTE_FLAGS);
		store64(pte_gpa(0, 0, 101), (u64)(FSIM_DATA_FRAME + i % 5) * 4096 | FSIM_PTE_FLAGS);
		fsim_read(fsim_user_gva(0, 1));
	}
	CHECK_EQ(fsim.emulated, 100);
	CHECK(fsim.mmu.stats.flood_checks > 0);
	CHECK_EQ(fsim.mmu.stats.unshadowed_flood + fsim.mmu.stats.unshadowed_pattern, 0);
	CHECK(shadow_gfn_is_write_protected(&fsim.mmu, fsim_pt(0, 0)));
	check_clean();
}

TEST(zero_run_unshadows_early)
{
	live_space(true, 8);
	fsim_switch(1);
	for (u32 p = 0; p < 8; p++)
		store64(pte_gpa(0, 3, p), 0);
	CHECK_EQ(fsim.emulated, SHADOW_FLOOD_ZERO_RUN);
	CHECK_EQ(fsim.mmu.stats.unshadowed_pattern, 1);
	check_clean();
}

TEST(zero_run_on_a_running_table_is_kept)
{
	live_space(true, 64);
	/* munmap in a running process: each zeroed page is followed by use of the table. */
	for (u32 p = 0; p < 32; p++) {
		store64(pte_gpa(0, 3, p), 0);
		fsim_read(fsim_user_gva(3, 63));
	}
	CHECK_EQ(fsim.emulated, 32);
	CHECK_EQ(fsim.mmu.stats.unshadowed_pattern + fsim.mmu.stats.unshadowed_flood, 0);
	check_clean();
}

/* munmap of two pages: zeroed in a row, INVLPG each, then the process runs on. */
TEST(munmap_in_a_running_process_is_kept)
{
	live_space(true, 64);
	for (u32 round = 0; round < 8; round++) {
		for (u32 k = 0; k < 2; k++) {
			store64(pte_gpa(0, 3, 2 * round + k), 0);
			fsim_invlpg(fsim_user_gva(3, 2 * round + k));
		}
		fsim_flush();	/* the process is scheduled again */
		for (u32 p = 2 * round + 2; p < 64; p++)
			fsim_read(fsim_user_gva(3, p));
	}
	CHECK_EQ(fsim.emulated, 16);
	CHECK(fsim.mmu.stats.flood_checks > 0);
	CHECK(fsim.mmu.stats.flood_kept > 0);	/* the use test ran and saw the walks */
	CHECK_EQ(fsim.mmu.stats.unshadowed_pattern + fsim.mmu.stats.unshadowed_flood, 0);
	check_clean();
}

/*
 * Zero writes in a row to a running table wait for the guest to run, but
 * only until they have cleared as many entries as the shadow still maps.
 */
TEST(zero_run_waits_only_until_it_has_cleared_as_many_as_remain)
{
	live_space(true, 64);
	for (u32 p = 0; p < 31; p++)
		store64(pte_gpa(0, 3, p), 0);
	CHECK_EQ(fsim.mmu.stats.unshadowed_pattern, 0);	/* 31 cleared, 33 mapped */
	store64(pte_gpa(0, 3, 31), 0);
	CHECK_EQ(fsim.mmu.stats.unshadowed_pattern, 1);	/* 32 cleared, 32 mapped */
	CHECK_EQ(fsim.emulated, 32);
	store64(pte_gpa(0, 3, 32), 0);	/* the rest goes straight to memory */
	CHECK_EQ(fsim.emulated, 32);
	check_clean();
}

/*
 * A table under the running root is not judged while the guest does
 * nothing but write it; once the guest has run on (here a CR3 load), its A
 * bits decide: walked since the run began, kept; not walked, unshadowed.
 */
TEST(running_table_is_judged_only_after_the_guest_ran)
{
	for (int walk = 0; walk < 2; walk++) {
		live_space(true, 8);
		for (u32 i = 0; i < 3 * SHADOW_FLOOD_WRITES; i++)
			store64(pte_gpa(0, 1, 100 + i), 0x123456789ull << 12 | 1);
		CHECK_EQ(fsim.mmu.stats.unshadowed_flood, 0);
		CHECK(fsim.mmu.stats.flood_deferred > 0);
		fsim_flush();
		if (walk)
			fsim_read(fsim_user_gva(1, 0));	/* the first write's flush: this walks */
		store64(pte_gpa(0, 1, 200), 0x123456789ull << 12 | 1);
		CHECK_EQ(fsim.mmu.stats.unshadowed_flood, walk ? 0u : 1u);
		CHECK_EQ(fsim.mmu.stats.flood_kept, walk ? 1u : 0u);
		check_clean();
	}
}

/* With upkeep counted, the use test alone keeps a live table whose PTEs are aged. */
TEST(counted_upkeep_on_a_live_table_is_kept_by_the_use_test)
{
	live_space(true, 64);
	shadow_flood_count_upkeep(&fsim.mmu, true);
	for (int round = 0; round < 3; round++) {
		for (u32 p = 0; p < 64; p++)
			fsim_clear_bit(pte_gpa(0, 0, p), 5);	/* the kernel ages its PTEs */
		fsim_flush();
		for (u32 p = 0; p < 64; p++)
			fsim_read(fsim_user_gva(0, p));
	}
	CHECK(fsim.mmu.stats.flood_kept >= 2);
	CHECK_EQ(fsim.mmu.stats.unshadowed_pattern + fsim.mmu.stats.unshadowed_flood, 0);
	check_clean();
}

TEST(upkeep_writes_are_not_counted)
{
	live_space(true, 64);
	fsim_switch(1);		/* not even running: fork, mprotect, ageing still mean a table */
	for (u32 p = 0; p < 64; p++) {
		fsim_clear_bit(pte_gpa(0, 0, p), 1);			/* write-protect */
		store64(pte_gpa(0, 0, p), fsim_load64(pte_gpa(0, 0, p)) | PTE_W);	/* mprotect */
		store64(pte_gpa(0, 0, 100 + p), 0x30000 | FSIM_PTE_FLAGS);	/* populate */
	}
	CHECK_EQ(fsim.mmu.stats.flood_live_writes, 192);
	CHECK_EQ(fsim.mmu.stats.flood_checks, 0);
	CHECK(shadow_gfn_is_write_protected(&fsim.mmu, fsim_pt(0, 0)));
	check_clean();
}

TEST(roots_are_never_unshadowed)
{
	live_space(true, 8);
	fsim_switch(1);
	fsim_switch(0);		/* space 1's root stays cached: no parent, no walk */
	for (u32 i = 0; i < 20; i++)
		store64(fsim_pml4(1) * 4096 + 8 * (300 + i), 0x777777777ull << 12 | 1);
	CHECK(fsim.mmu.stats.flood_checks > 0);
	CHECK(shadow_gfn_is_write_protected(&fsim.mmu, fsim_pml4(1)));
	CHECK_EQ(fsim.mmu.stats.unshadowed_flood, 0);
	check_clean();
}

TEST(reshadow_soon_after_unshadow_is_a_false_positive)
{
	live_space(true, 8);
	store64(pte_gpa(0, 1, 100), 0x123456789ull << 12 | 1);
	fsim_flush();	/* the guest ran on (a CR3 load), not through table 1 */
	for (u32 i = 1; i < SHADOW_FLOOD_WRITES; i++)
		store64(pte_gpa(0, 1, 100 + i), 0x123456789ull << 12 | 1);
	CHECK_EQ(fsim.mmu.stats.unshadowed_flood, 1);
	CHECK_EQ(fsim.mmu.stats.unshadow_false_positive, 0);
	fsim_read(fsim_user_gva(1, 0));	/* the process runs on: the table comes back */
	CHECK(shadow_gfn_is_write_protected(&fsim.mmu, fsim_pt(0, 1)));
	CHECK_EQ(fsim.mmu.stats.unshadow_false_positive, 1);
	check_clean();
}

/*
 * A table the write itself is translated through is in use: Linux's
 * cleanup_highmap() zeroes entries of level2_kernel_pgt through the kernel
 * mapping that very table provides. Here the kernel page directory (which
 * maps all RAM, itself included) has a second shadow from a CR0.WP=0 episode
 * that is not running and counts the writes; the running one is walked by
 * each write's fault. The zero run used to judge the running one "not
 * walked yet" and, having cleared as many entries as it maps, unshadow the
 * frame: shadowed again at the next access, a live table (as on the Linux
 * guest at boot, the one live re-shadow of the run).
 */
TEST(table_walked_by_its_own_writes_is_used)
{
	u64 pdpt, pd, data = FSIM_DATA_FRAME * 4096ull, one = 1;

	fsim_init(true);
	pdpt = (fsim_load64(fsim_pml4(0) * 4096) & ~0xfffull) >> 12;
	pd = (fsim_load64(pdpt * 4096) & ~0xfffull) >> 12;
	CHECK_EQ(shadow_set_mode(&fsim.v, CR0_PG, CR4_PAE, EFER_LMA | EFER_NXE), SHADOW_CR_OK);
	fsim_store(fsim_kva(data), &one, 8, false);	/* a shadow of pd with CR0.WP=0 */
	CHECK_EQ(shadow_set_mode(&fsim.v, CR0_PG | CR0_WP, CR4_PAE, EFER_LMA | EFER_NXE),
		 SHADOW_CR_OK);
	fsim_store(fsim_kva(data), &one, 8, false);
	CHECK(table_sp(pd) && sp_next_indirect(table_sp(pd)->hash_next, pd));	/* two shadows */
	for (u32 e = 10; e < 20; e++)
		store64(pd * 4096 + 8 * e, 0);
	CHECK(fsim.mmu.stats.flood_checks > 0);
	CHECK_EQ(fsim.mmu.stats.unshadowed_pattern + fsim.mmu.stats.unshadowed_flood, 0);
	fsim_store(fsim_kva(data), &one, 8, false);
	CHECK_EQ(fsim.mmu.stats.unshadow_false_positive, 0);
	check_clean();
}

/*
 * Every frame unshadowed is remembered for SHADOW_FLOOD_SOON faults, not only
 * the last few: twelve tables of three processes that are not running are
 * torn down (two zero writes each) one after another, then the processes run
 * again through all twelve. Each comes back within the window with no
 * directory write: twelve live tables unshadowed (a memory of the last 8
 * frames counted 8). The records are charged bookkeeping, given back.
 */
TEST(every_unshadowed_frame_is_remembered)
{
	const u32 spaces = 3, tables = spaces * FSIM_TABLES;

	fsim_init(true);
	for (u32 s = 1; s <= spaces; s++) {
		fsim_populate(s, 8);
		fsim_switch(s);
		for (u32 t = 0; t < FSIM_TABLES; t++)
			fsim_read(fsim_user_gva(t, 0));
	}
	fsim_switch(0);
	u64 faults = fsim.mmu.stats.faults;
	for (u32 s = 1; s <= spaces; s++)
		for (u32 t = 0; t < FSIM_TABLES; t++)
			for (u32 p = 0; p < SHADOW_FLOOD_ZERO_RUN; p++)
				store64(pte_gpa(s, t, p), 0);
	CHECK_EQ(fsim.mmu.stats.unshadowed_pattern, tables);
	CHECK(tables > 8);
	CHECK_EQ(fsim.mmu.flood.remembered, tables);
	CHECK(shadow_mmu_frames(&fsim.mmu) > 0);
	for (u32 s = 1; s <= spaces; s++) {
		fsim_switch(s);
		for (u32 t = 0; t < FSIM_TABLES; t++)
			fsim_read(fsim_user_gva(t, 2));
	}
	CHECK(fsim.mmu.stats.faults - faults <= SHADOW_FLOOD_SOON);
	CHECK_EQ(fsim.mmu.stats.unshadow_false_positive, tables);
	CHECK_EQ(fsim.mmu.stats.unshadow_reused + fsim.mmu.stats.unshadow_untracked, 0);
	CHECK_EQ(fsim.mmu.flood.remembered, 0);
	check_clean();
	CHECK_EQ(shadow_mmu_frames(&fsim.mmu), 0);	/* every bookkeeping page given back */
}

/* A frame shadowed again after the window is not counted, and its record is gone. */
TEST(unshadowed_frames_are_forgotten_after_the_window)
{
	fsim_init(true);
	fsim_populate(1, 8);
	fsim_switch(1);
	fsim_read(fsim_user_gva(0, 0));
	fsim_switch(0);
	for (u32 p = 0; p < SHADOW_FLOOD_ZERO_RUN; p++)
		store64(pte_gpa(1, 0, p), 0);
	CHECK_EQ(fsim.mmu.stats.unshadowed_pattern, 1);
	CHECK_EQ(fsim.mmu.flood.remembered, 1);
	for (u32 i = 0; i <= SHADOW_FLOOD_SOON; i++)
		fsim_flush();		/* CR3 loads, no faults: still inside */
	fsim_populate(0, 40);
	for (u32 p = 0; p <= SHADOW_FLOOD_SOON; p++)	/* faults: the window passes */
		fsim_read(fsim_user_gva(p / 32, p % 32 + 8));
	fsim_switch(1);
	fsim_read(fsim_user_gva(0, 2));
	CHECK(shadow_gfn_is_write_protected(&fsim.mmu, fsim_pt(1, 0)));
	CHECK_EQ(fsim.mmu.stats.unshadow_false_positive, 0);
	CHECK_EQ(fsim.mmu.flood.remembered, 0);
	check_clean();
	CHECK_EQ(shadow_mmu_frames(&fsim.mmu), 0);
}

/* Linux frees a page table after clearing its PMD entry and hands the frame out again as a
 * new table: shadowing it again then is reuse, not a live table unshadowed by mistake. */
TEST(reshadow_after_unlink_and_relink_is_reuse)
{
	u64 pd_entry = (fsim_pml4(0) + 2) * 4096 + 8 * 1;	/* space 0's PD, slot of table 1 */

	live_space(true, 8);
	store64(pte_gpa(0, 1, 100), 0x123456789ull << 12 | 1);
	fsim_flush();
	for (u32 i = 1; i < SHADOW_FLOOD_WRITES; i++)
		store64(pte_gpa(0, 1, 100 + i), 0x123456789ull << 12 | 1);
	CHECK_EQ(fsim.mmu.stats.unshadowed_flood, 1);
	store64(pd_entry, 0);				/* unlinked: freed */
	store64(pd_entry, fsim_pt(0, 1) * 4096 | FSIM_PTE_FLAGS);	/* linked again: new */
	fsim_read(fsim_user_gva(1, 0));
	CHECK(shadow_gfn_is_write_protected(&fsim.mmu, fsim_pt(0, 1)));
	CHECK_EQ(fsim.mmu.stats.unshadow_false_positive, 0);
	CHECK_EQ(fsim.mmu.stats.unshadow_reused, 1);
	check_clean();
}

/* munmap of two pages and mmap again, over and over, in a table the process keeps using:
 * each run of two zero writes is judged alone, never by the entries earlier runs cleared. */
TEST(zero_runs_separated_by_refills_do_not_add_up)
{
	live_space(true, 64);
	for (u32 i = 0; i < 48; i++) {
		u32 p = (i * 2) % 64;

		store64(pte_gpa(0, 1, p), 0);
		store64(pte_gpa(0, 1, p + 1), 0);
		fsim_invlpg(fsim_user_gva(1, p));
		fsim_invlpg(fsim_user_gva(1, p + 1));
		store64(pte_gpa(0, 1, p), (FSIM_DATA_FRAME + 1) * 4096 | FSIM_PTE_FLAGS);
		store64(pte_gpa(0, 1, p + 1), (FSIM_DATA_FRAME + 2) * 4096 | FSIM_PTE_FLAGS);
		fsim_read(fsim_user_gva(1, p));
		fsim_read(fsim_user_gva(1, p + 1));
	}
	CHECK_EQ(fsim.mmu.stats.unshadowed_pattern + fsim.mmu.stats.unshadowed_flood, 0);
	CHECK(shadow_gfn_is_write_protected(&fsim.mmu, fsim_pt(0, 1)));
	check_clean();
}

TEST(flood_checks_leave_reclaim_its_reference_bit)
{
	struct shadow_page *sp;

	live_space(true, 8);
	sp = table_sp(fsim_pt(0, 2));
	shadow_page_test_and_clear_accessed(&fsim.mmu, sp);
	sp_commit_zap(&fsim.mmu);	/* the flush that ends a pass */
	fsim_read(fsim_user_gva(2, 0));	/* the CPU walks it: parent A set */
	store64(pte_gpa(0, 2, 100), 0x123456789ull << 12 | 1);	/* flood clears A */
	CHECK(shadow_page_test_and_clear_accessed(&fsim.mmu, sp));
	check_clean();
}

TEST(unshadow_gfn_api)
{
	live_space(true, 8);
	CHECK(!shadow_unshadow_gfn(&fsim.mmu, fsim_pml4(0)));	/* the running root */
	CHECK(shadow_unshadow_gfn(&fsim.mmu, fsim_pt(0, 0)));
	CHECK(!shadow_gfn_is_write_protected(&fsim.mmu, fsim_pt(0, 0)));
	fsim_read(fsim_user_gva(0, 5));
	CHECK(shadow_gfn_is_write_protected(&fsim.mmu, fsim_pt(0, 0)));
	CHECK(shadow_flood_enabled(&fsim.mmu));
	shadow_flood_set(&fsim.mmu, false);
	CHECK(!shadow_flood_enabled(&fsim.mmu));
	check_clean();
}

TEST(benchmark_patterns)
{
	for (unsigned i = 0; i < fsim_npatterns; i++) {
		const struct fsim_pattern *p = &fsim_patterns[i];
		struct fsim_counts off, on;

		fsim_run_pattern(p, FSIM_FLOOD_OFF, &off);
		fsim_run_pattern(p, FSIM_FLOOD_ON, &on);
		CHECK_EQ(off.errors + on.errors, 0);
		CHECK_EQ(off.unshadowed, 0);
		if (p->live) {
			struct fsim_counts counted;

			fsim_run_pattern(p, FSIM_FLOOD_COUNT_UPKEEP, &counted);
			CHECK_EQ(on.unshadowed + on.false_positives, 0);
			CHECK_EQ(counted.unshadowed + counted.false_positives + counted.errors, 0);
			CHECK(counted.kept > 0);
			CHECK_EQ(on.emulated + on.faults, off.emulated + off.faults);
		} else {
			CHECK(on.unshadowed > 0 || on.faults < off.faults);
			CHECK(2 * (on.emulated + on.faults) <= off.emulated + off.faults);
		}
	}
}

UNIT_MAIN()
