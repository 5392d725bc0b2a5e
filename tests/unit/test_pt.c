/*
 * Tests of the generic 4-level page-table builder (mm/pt.c) in both entry
 * formats. Tables come from aligned_alloc (pointer == "physical address",
 * as in the identity-mapped hypervisor); every allocation is tracked so the
 * tests can count tables, fail an allocation on purpose, and check that
 * pt_free_tables releases exactly what was allocated.
 */
#include <string.h>

#include "unit.h"
#include "mm/pt.h"
#include "mm/pte.h"

#define MAX_TABLES 256
#define GiB (1ull << 30)
#define MiB (1ull << 20)

struct table_pool {
	void *live[MAX_TABLES];
	int live_count;
	int allocs, frees;
	int fail_after;  /* allocations allowed before returning NULL; -1: never fail */
	bool bad_free;   /* free_fn got something that is not a live table */
};

static struct table_pool tp;

static void *table_alloc(void *ctx)
{
	struct table_pool *p = ctx;
	void *t;

	if (p->fail_after == 0 || p->live_count == MAX_TABLES)
		return NULL;
	if (p->fail_after > 0)
		p->fail_after--;
	t = aligned_alloc(4096, 4096);
	memset(t, 0, 4096);
	p->live[p->live_count++] = t;
	p->allocs++;
	return t;
}

static void table_free(void *table, void *ctx)
{
	struct table_pool *p = ctx;

	for (int i = 0; i < p->live_count; i++) {
		if (p->live[i] == table) {
			p->live[i] = p->live[--p->live_count];
			p->frees++;
			free(table);
			return;
		}
	}
	p->bad_free = true;
}

static u64 *root;

static void setup(void)
{
	memset(&tp, 0, sizeof(tp));
	tp.fail_after = -1;
	root = aligned_alloc(4096, 4096);
	memset(root, 0, 4096);
}

/* Free everything and check nothing leaked or was freed twice. */
static void teardown(const struct pt_format *fmt)
{
	pt_free_tables(fmt, root, table_free, &tp);
	CHECK(!tp.bad_free);
	CHECK_EQ(tp.live_count, 0);
	CHECK_EQ(tp.frees, tp.allocs);
	free(root);
}

static bool map(const struct pt_format *fmt, u64 va, u64 pa, u64 size, u64 flags,
		enum pt_level level)
{
	return pt_map(fmt, root, va, pa, size, flags, level, table_alloc, &tp);
}

/* The leaf for va must be at 'level' and equal 'want'. */
static void check_leaf(const struct pt_format *fmt, u64 va, enum pt_level want_level, u64 want)
{
	enum pt_level level = 0;
	u64 *e = pt_lookup(fmt, root, va, &level);

	CHECK(e != NULL);
	if (!e)
		return;
	CHECK_EQ(level, want_level);
	CHECK_EQ(*e, want);
}

#define HOST_RW (PTE_P | PTE_W | PTE_NX)
#define EPT_WB (EPT_RWX | (EPT_MT_WB << EPT_MT_SHIFT))

TEST(level_sizes)
{
	CHECK_EQ(pt_level_size(PT_LEVEL_4K), 4096);
	CHECK_EQ(pt_level_size(PT_LEVEL_2M), 2 * MiB);
	CHECK_EQ(pt_level_size(PT_LEVEL_1G), GiB);
}

TEST(map_4k_range_host)
{
	setup();
	CHECK(map(&host_pt_format, 0x400000, 0x10000000, 16 * 4096, HOST_RW, PT_LEVEL_4K));
	CHECK_EQ(tp.allocs, 3);  /* PDPT, PD, PT */
	for (u64 i = 0; i < 16; i++)
		check_leaf(&host_pt_format, 0x400000 + i * 4096 + 0x123, PT_LEVEL_4K,
			   (0x10000000 + i * 4096) | HOST_RW);
	CHECK(!pt_lookup(&host_pt_format, root, 0x400000 - 4096, NULL));
	CHECK(!pt_lookup(&host_pt_format, root, 0x400000 + 16 * 4096, NULL));
	CHECK(!pt_lookup(&host_pt_format, root, 0x40400000, NULL));  /* another PD entry */
	CHECK(!pt_lookup(&host_pt_format, root, 1ull << 39, NULL));   /* another PML4 entry */
	/* Table entries carry only the format's table flags. */
	CHECK_EQ(root[0] & ~PTE_ADDR_MASK52, PTE_P | PTE_W);
	teardown(&host_pt_format);
}

TEST(map_2m_range_ept)
{
	setup();
	CHECK(map(&ept_format, 0, 0x80000000, 8 * MiB, EPT_WB, PT_LEVEL_2M));
	CHECK_EQ(tp.allocs, 2);  /* PDPT, PD */
	for (u64 va = 0; va < 8 * MiB; va += 0x7f000)
		check_leaf(&ept_format, va, PT_LEVEL_2M,
			   (0x80000000 + ALIGN_DOWN(va, 2 * MiB)) | EPT_WB | EPT_LARGE);
	CHECK(!pt_lookup(&ept_format, root, 8 * MiB, NULL));
	CHECK_EQ(root[0] & ~PTE_ADDR_MASK52, EPT_RWX);
	teardown(&ept_format);
}

TEST(map_1g_and_high_addresses)
{
	setup();
	/* The last 1 GiB of the 48-bit space and one in the middle. */
	CHECK(map(&host_pt_format, (1ull << 48) - GiB, 5 * GiB, GiB, HOST_RW, PT_LEVEL_1G));
	CHECK(map(&host_pt_format, 300 * GiB, 0, 2 * GiB, PTE_P, PT_LEVEL_1G));
	check_leaf(&host_pt_format, (1ull << 48) - 1, PT_LEVEL_1G, 5 * GiB | HOST_RW | PTE_PS);
	check_leaf(&host_pt_format, 301 * GiB + 12345, PT_LEVEL_1G, GiB | PTE_P | PTE_PS);
	CHECK_EQ(tp.allocs, 2);  /* one PDPT each */
	teardown(&host_pt_format);
}

TEST(empty_range_maps_nothing)
{
	setup();
	CHECK(map(&ept_format, 0x200000, 0x200000, 0, EPT_WB, PT_LEVEL_2M));
	CHECK_EQ(tp.allocs, 0);
	CHECK(!pt_lookup(&ept_format, root, 0x200000, NULL));
	teardown(&ept_format);
}

TEST(misaligned_requests_fail)
{
	setup();
	CHECK(!map(&host_pt_format, 0x1001, 0x2000, 4096, HOST_RW, PT_LEVEL_4K));
	CHECK(!map(&host_pt_format, 0x1000, 0x2800, 4096, HOST_RW, PT_LEVEL_4K));
	CHECK(!map(&host_pt_format, 0x1000, 0x2000, 4095, HOST_RW, PT_LEVEL_4K));
	CHECK(!map(&ept_format, 0x201000, 0x200000, 2 * MiB, EPT_WB, PT_LEVEL_2M));
	CHECK(!map(&ept_format, 0x200000, 0x201000, 2 * MiB, EPT_WB, PT_LEVEL_2M));
	CHECK(!map(&ept_format, 0x200000, 0x200000, 3 * MiB, EPT_WB, PT_LEVEL_2M));
	CHECK(!map(&ept_format, GiB, GiB + 2 * MiB, GiB, EPT_WB, PT_LEVEL_1G));
	CHECK_EQ(tp.allocs, 0);  /* refused before touching anything */
	teardown(&ept_format);
}

static void check_split_2m(const struct pt_format *fmt, u64 flags_2m, u64 flags_4k_expected,
			   u64 new_flags)
{
	const u64 va = 0x40200000, pa = 0x7fe00000, hole = va + 0x5000;

	setup();
	CHECK(map(fmt, va, pa, 2 * MiB, flags_2m, PT_LEVEL_2M));
	int before = tp.allocs;

	CHECK(map(fmt, hole, 0x9000, 4096, new_flags, PT_LEVEL_4K));
	CHECK_EQ(tp.allocs, before + 1);  /* just the new PT */
	check_leaf(fmt, hole, PT_LEVEL_4K, 0x9000 | new_flags);
	for (u64 i = 0; i < 512; i++) {
		if (va + i * 4096 != hole)
			check_leaf(fmt, va + i * 4096, PT_LEVEL_4K,
				   (pa + i * 4096) | flags_4k_expected);
	}
	/* Neighbouring 2 MiB regions are untouched. */
	CHECK(!pt_lookup(fmt, root, va - 1, NULL));
	CHECK(!pt_lookup(fmt, root, va + 2 * MiB, NULL));
	teardown(fmt);
}

TEST(split_2m_preserves_other_511_host)
{
	u64 f = PTE_P | PTE_W | PTE_U | PTE_PCD | PTE_A | PTE_D | PTE_G | PTE_NX;

	/* PS marks the 2 MiB leaf; in a 4 KiB PTE the same bit would be PAT. */
	check_split_2m(&host_pt_format, f, f, PTE_P);
}

TEST(split_2m_preserves_other_511_ept)
{
	u64 f = EPT_R | EPT_X | (EPT_MT_WB << EPT_MT_SHIFT) | EPT_IPAT | EPT_A | EPT_D;

	check_split_2m(&ept_format, f, f, EPT_WB);
}

TEST(split_1g_into_2m_then_4k)
{
	setup();
	CHECK(map(&ept_format, GiB, 4 * GiB, GiB, EPT_WB, PT_LEVEL_1G));
	CHECK_EQ(tp.allocs, 1);
	/* 2 MiB inside: the 1 GiB leaf becomes 512 2 MiB leaves. */
	CHECK(map(&ept_format, GiB + 10 * 2 * MiB, 0x200000, 2 * MiB, EPT_R, PT_LEVEL_2M));
	CHECK_EQ(tp.allocs, 2);
	check_leaf(&ept_format, GiB + 20 * MiB, PT_LEVEL_2M, 0x200000 | EPT_R | EPT_LARGE);
	for (u64 i = 0; i < 512; i += 37)
		if (i != 10)
			check_leaf(&ept_format, GiB + i * 2 * MiB + 0x1234, PT_LEVEL_2M,
				   (4 * GiB + i * 2 * MiB) | EPT_WB | EPT_LARGE);
	/* 4 KiB inside a 2 MiB leaf that came from the split. */
	CHECK(map(&ept_format, GiB + 2 * MiB + 0x3000, 0x5000, 4096, EPT_RWX, PT_LEVEL_4K));
	CHECK_EQ(tp.allocs, 3);
	check_leaf(&ept_format, GiB + 2 * MiB + 0x3000, PT_LEVEL_4K, 0x5000 | EPT_RWX);
	check_leaf(&ept_format, GiB + 2 * MiB + 0x4000, PT_LEVEL_4K,
		   (4 * GiB + 2 * MiB + 0x4000) | EPT_WB);
	teardown(&ept_format);

	/* A 4 KiB map straight into a 1 GiB leaf splits twice. */
	setup();
	CHECK(map(&host_pt_format, 0, 0, GiB, HOST_RW, PT_LEVEL_1G));
	CHECK(map(&host_pt_format, 0x1000, 0, 4096, PTE_P, PT_LEVEL_4K));
	CHECK_EQ(tp.allocs, 3);
	check_leaf(&host_pt_format, 0x1000, PT_LEVEL_4K, PTE_P);
	check_leaf(&host_pt_format, 0x2000, PT_LEVEL_4K, 0x2000 | HOST_RW);
	check_leaf(&host_pt_format, 0x200000, PT_LEVEL_2M, 0x200000 | HOST_RW | PTE_PS);
	check_leaf(&host_pt_format, GiB - 1, PT_LEVEL_2M, (GiB - 2 * MiB) | HOST_RW | PTE_PS);
	teardown(&host_pt_format);
}

TEST(remap_overwrites_leaf)
{
	setup();
	CHECK(map(&host_pt_format, 0x5000, 0x5000, 4096, HOST_RW, PT_LEVEL_4K));
	CHECK(map(&host_pt_format, 0x5000, 0x8000, 4096, PTE_P, PT_LEVEL_4K));
	CHECK_EQ(tp.allocs, 3);
	check_leaf(&host_pt_format, 0x5000, PT_LEVEL_4K, 0x8000 | PTE_P);
	teardown(&host_pt_format);
}

TEST(large_leaf_over_a_table_is_refused)
{
	setup();
	CHECK(map(&host_pt_format, 0x201000, 0x201000, 4096, HOST_RW, PT_LEVEL_4K));
	/* The 2 MiB slot holds a page table now: replacing it would leak it. */
	CHECK(!map(&host_pt_format, 0x200000, 0x200000, 2 * MiB, HOST_RW, PT_LEVEL_2M));
	check_leaf(&host_pt_format, 0x201000, PT_LEVEL_4K, 0x201000 | HOST_RW);
	teardown(&host_pt_format);
}

TEST(split_keeps_pat_of_a_large_host_leaf)
{
	setup();
	/* PAT of a 2 MiB leaf is bit 12 (not an address bit); a 4 KiB PTE has it in bit 7. */
	CHECK(map(&host_pt_format, 0, 0x400000, 2 * MiB, HOST_RW | PTE_PAT_LARGE, PT_LEVEL_2M));
	CHECK(map(&host_pt_format, 0x1000, 0x9000, 4096, PTE_P, PT_LEVEL_4K));
	check_leaf(&host_pt_format, 0x0000, PT_LEVEL_4K, 0x400000 | HOST_RW | PTE_PAT4K);
	check_leaf(&host_pt_format, 0x2000, PT_LEVEL_4K, 0x402000 | HOST_RW | PTE_PAT4K);
	teardown(&host_pt_format);
}

TEST(allocation_failure_returns_false)
{
	/* Each of the three table allocations failing in turn. */
	for (int allowed = 0; allowed < 3; allowed++) {
		setup();
		tp.fail_after = allowed;
		CHECK(!map(&host_pt_format, 0x400000, 0x400000, 4096, HOST_RW, PT_LEVEL_4K));
		CHECK_EQ(tp.allocs, allowed);
		CHECK(!pt_lookup(&host_pt_format, root, 0x400000, NULL));
		teardown(&host_pt_format);  /* partial tables are still reachable */
	}
	/* Running out in the middle of a range: the first part stays mapped. */
	setup();
	tp.fail_after = 3;
	CHECK(!map(&ept_format, 2 * MiB - 4096, 0, 2 * 4096, EPT_WB, PT_LEVEL_4K));
	check_leaf(&ept_format, 2 * MiB - 4096, PT_LEVEL_4K, EPT_WB);
	CHECK(!pt_lookup(&ept_format, root, 2 * MiB, NULL));
	teardown(&ept_format);
}

TEST(failed_split_keeps_the_large_leaf)
{
	setup();
	CHECK(map(&ept_format, 0x200000, 0x600000, 2 * MiB, EPT_WB, PT_LEVEL_2M));
	tp.fail_after = 0;
	CHECK(!map(&ept_format, 0x201000, 0x1000, 4096, EPT_R, PT_LEVEL_4K));
	check_leaf(&ept_format, 0x201000, PT_LEVEL_2M, 0x600000 | EPT_WB | EPT_LARGE);
	teardown(&ept_format);
}

TEST(free_releases_every_table)
{
	setup();
	/* Tables under several PML4, PDPT and PD entries, plus split leaves. */
	CHECK(map(&host_pt_format, 0, 0, 4 * GiB, HOST_RW, PT_LEVEL_2M));
	CHECK(map(&host_pt_format, 0x1000, 0x1000, 0x1ff000, PTE_P, PT_LEVEL_4K));
	CHECK(map(&host_pt_format, 3 * GiB + 0x3000, 0, 4096, PTE_P, PT_LEVEL_4K));
	CHECK(map(&host_pt_format, 1ull << 39, 0, 2 * GiB, HOST_RW, PT_LEVEL_1G));
	CHECK(map(&host_pt_format, (1ull << 39) + 0x200000, 0, 4096, PTE_P, PT_LEVEL_4K));
	CHECK(map(&host_pt_format, 200ull << 39, 0, 4096, PTE_P, PT_LEVEL_4K));
	/* 1 + 4 PDs, 2 split PTs, 1 PDPT, 1 split PD + 1 split PT, 3 tables. */
	CHECK_EQ(tp.allocs, 13);
	CHECK_EQ(tp.live_count, 13);
	teardown(&host_pt_format);
	CHECK_EQ(tp.frees, 13);

	/* Only 2 MiB leaves: no PT is freed, leaf addresses are never passed on. */
	setup();
	CHECK(map(&ept_format, 0, 0, 64 * MiB, EPT_WB, PT_LEVEL_2M));
	CHECK_EQ(tp.allocs, 2);
	teardown(&ept_format);

	/* An empty root frees nothing. */
	setup();
	teardown(&ept_format);
	CHECK_EQ(tp.frees, 0);
}

/* A 4 KiB EPT leaf may carry bit 7 (ignored there): still a leaf, never a table. */
TEST(level_1_entries_are_always_leaves)
{
	setup();
	CHECK(map(&ept_format, 0x3000, 0x3000, 4096, EPT_RWX | EPT_LARGE, PT_LEVEL_4K));
	check_leaf(&ept_format, 0x3000, PT_LEVEL_4K, 0x3000 | EPT_RWX | EPT_LARGE);
	teardown(&ept_format);
	/* Host 4 KiB leaf with PAT (bit 7, same as PS). */
	setup();
	CHECK(map(&host_pt_format, 0x3000, 0x3000, 4096, PTE_P | PTE_PAT4K, PT_LEVEL_4K));
	check_leaf(&host_pt_format, 0x3000, PT_LEVEL_4K, 0x3000 | PTE_P | PTE_PAT4K);
	teardown(&host_pt_format);
}

UNIT_MAIN()
