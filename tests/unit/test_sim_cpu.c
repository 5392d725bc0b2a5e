/*
 * The simulated CPU's caches (tests/unit/sim_cpu.c), which the reclaim,
 * flood and ageing claims are measured on: what sets an A bit and what
 * does not, and which flush drops what (SDM Vol. 3A 4.10).
 */
#include <string.h>

#include "unit.h"
#include "sim_cpu.h"

/* Host memory of 16 frames: PML4 at 1, PDPT 2, PD 3, page tables 4 and 5, data from 8. */
static u8 mem[16][4096] __attribute__((aligned(4096)));
static struct ref_ram ram;
static struct sim_cpu cpu;
static struct gwalk_ctx hw;

static u64 *ent(u64 frame, u64 i)
{
	return (u64 *)mem[frame] + i;
}

#define TBL (PTE_P | PTE_W | PTE_U)

static void setup(u32 tlb, u32 pde)
{
	memset(mem, 0, sizeof(mem));
	ref_ram_init(&ram, &mem[0][0], 16);
	*ent(1, 0) = 2 << 12 | TBL;
	*ent(2, 0) = 3 << 12 | TBL;
	*ent(3, 0) = 4 << 12 | TBL;	/* 0 - 2 MiB */
	*ent(3, 1) = 5 << 12 | TBL;	/* 2 - 4 MiB */
	for (u64 i = 0; i < 4; i++) {
		*ent(4, i) = (8 + i) << 12 | TBL;
		*ent(5, i) = (12 + i) << 12 | TBL | (i == 3 ? PTE_G : 0);
	}
	memset(&hw, 0, sizeof(hw));
	hw.cr0 = CR0_PG | CR0_WP;
	hw.cr3 = 1 << 12;
	hw.cr4 = CR4_PAE | CR4_PGE;
	hw.efer = EFER_LMA | EFER_NXE;
	hw.maxphyaddr = 52;
	sim_cpu_init(&cpu, &ram.mem, tlb, pde);
}

static enum gwalk_status access(u64 gva, u32 acc, bool *cached)
{
	struct ref_result r;
	enum gwalk_status st = sim_cpu_access(&cpu, &hw, gva, acc, &r, cached);

	if (st == GWALK_OK)
		CHECK_EQ(r.gpa >> 12, ((gva >> 21) ? 12 : 8) + ((gva >> 12) & 511));
	return st;
}

static void clear_a(void)
{
	for (u64 f = 1; f <= 5; f++)
		for (u64 i = 0; i < 4; i++)
			*ent(f, i) &= ~PTE_A;
}

TEST(tlb_hit_sets_no_accessed_bit)
{
	bool cached;

	setup(64, 32);
	CHECK_EQ(access(0x1000, 0, &cached), GWALK_OK);
	CHECK(!cached);
	CHECK((*ent(3, 0) & PTE_A) && (*ent(4, 1) & PTE_A));
	clear_a();
	CHECK_EQ(access(0x1000, 0, &cached), GWALK_OK);
	CHECK(cached);
	CHECK(!(*ent(3, 0) & PTE_A) && !(*ent(4, 1) & PTE_A));
}

TEST(pde_cache_hit_sets_the_leaf_bit_only)
{
	bool cached;

	setup(64, 32);
	CHECK_EQ(access(0x1000, 0, &cached), GWALK_OK);
	clear_a();
	CHECK_EQ(access(0x2000, 0, &cached), GWALK_OK);	/* another page, same page table */
	CHECK(!cached);
	CHECK(*ent(4, 2) & PTE_A);
	CHECK(!(*ent(3, 0) & PTE_A));	/* the PDE spte stays clear */
	CHECK_EQ(cpu.stats.pde_hits, 1);
}

TEST(no_caches_walks_every_time)
{
	bool cached;

	setup(0, 0);
	CHECK_EQ(access(0x1000, 0, &cached), GWALK_OK);
	clear_a();
	CHECK_EQ(access(0x1000, 0, &cached), GWALK_OK);
	CHECK(!cached);
	CHECK((*ent(3, 0) & PTE_A) && (*ent(4, 1) & PTE_A));
}

TEST(invlpg_drops_the_page_and_all_pde_entries)
{
	bool cached;

	setup(64, 32);
	CHECK_EQ(access(0x1000, 0, &cached), GWALK_OK);
	CHECK_EQ(access(0x3000, 0, &cached), GWALK_OK);
	clear_a();
	sim_cpu_flush(&cpu, SHADOW_FLUSH_GVA, 0x1000);
	CHECK_EQ(access(0x3000, 0, &cached), GWALK_OK);	/* other page: still cached */
	CHECK(cached);
	CHECK_EQ(access(0x1000, 0, &cached), GWALK_OK);	/* full walk: no PDE entry left */
	CHECK(!cached);
	CHECK(*ent(3, 0) & PTE_A);
}

TEST(cr3_load_keeps_global_translations)
{
	bool cached;

	setup(64, 32);
	CHECK_EQ(access(0x203000, 0, &cached), GWALK_OK);	/* global */
	CHECK_EQ(access(0x202000, 0, &cached), GWALK_OK);
	sim_cpu_flush(&cpu, SHADOW_FLUSH_NONGLOBAL, 0);
	CHECK_EQ(access(0x203000, 0, &cached), GWALK_OK);
	CHECK(cached);
	CHECK_EQ(access(0x202000, 0, &cached), GWALK_OK);
	CHECK(!cached);
	sim_cpu_flush(&cpu, SHADOW_FLUSH_GUEST, 0);
	CHECK_EQ(access(0x203000, 0, &cached), GWALK_OK);
	CHECK(!cached);
}

TEST(write_through_a_clean_entry_walks_to_set_dirty)
{
	bool cached;

	setup(64, 32);
	CHECK_EQ(access(0x1000, 0, &cached), GWALK_OK);
	CHECK(!(*ent(4, 1) & PTE_D));
	CHECK_EQ(access(0x1000, GACC_WRITE, &cached), GWALK_OK);
	CHECK(!cached);
	CHECK(*ent(4, 1) & PTE_D);
	CHECK_EQ(access(0x1000, GACC_WRITE, &cached), GWALK_OK);
	CHECK(cached);
}

/* R/W 0 -> 1 without a flush: one spurious #PF, which drops the entry (SDM 4.10.4.3). */
TEST(stale_rights_fault_and_the_fault_drops_the_entry)
{
	bool cached;

	setup(64, 32);
	*ent(4, 1) &= ~PTE_W;
	CHECK_EQ(access(0x1000, 0, &cached), GWALK_OK);
	*ent(4, 1) |= PTE_W;
	CHECK_EQ(access(0x1000, GACC_WRITE, &cached), GWALK_FAULT);
	CHECK_EQ(cpu.stats.faults, 1);
	CHECK_EQ(access(0x1000, GACC_WRITE, &cached), GWALK_OK);
	CHECK(!cached);
}

TEST(bounded_lru_replacement)
{
	bool cached;

	setup(2, 32);
	CHECK_EQ(access(0x1000, 0, &cached), GWALK_OK);
	CHECK_EQ(access(0x2000, 0, &cached), GWALK_OK);
	CHECK_EQ(access(0x1000, 0, &cached), GWALK_OK);	/* 0x2000 is now the oldest */
	CHECK(cached);
	CHECK_EQ(access(0x3000, 0, &cached), GWALK_OK);	/* replaces 0x2000 */
	CHECK_EQ(access(0x1000, 0, &cached), GWALK_OK);
	CHECK(cached);
	CHECK_EQ(access(0x2000, 0, &cached), GWALK_OK);
	CHECK(!cached);
}

TEST(guest_check_reads_only)
{
	setup(64, 32);
	CHECK(sim_guest_translates_to(&hw, &ram.mem, 0x1000, GACC_WRITE, 9 << 12));
	CHECK(!(*ent(4, 1) & (PTE_A | PTE_D)));
	CHECK(!(*ent(3, 0) & PTE_A));
	CHECK(!sim_guest_translates_to(&hw, &ram.mem, 0x1000, 0, 10 << 12));
}

UNIT_MAIN()
