/* MTRR memory-type lookup (mm/mtrr.c) against hand-computed SDM 13.11 answers. */
#include <string.h>
#include "unit.h"
#include "mm/mtrr.h"

#define MiB (1ull << 20)
#define GiB (1ull << 30)
#define VALID (1ull << 11)

static struct mtrr_state state(u8 def)
{
	struct mtrr_state s;

	memset(&s, 0, sizeof(s));
	s.enabled = true;
	s.default_type = def;
	s.maxphyaddr = 36;
	return s;
}

/* A variable range [base, base+size) of a power-of-two size. */
static void add_range(struct mtrr_state *s, u64 base, u64 size, u8 type)
{
	s->variable[s->variable_count].base = base | type;
	s->variable[s->variable_count].mask = (~(size - 1) & ((1ull << 36) - 1)) | VALID;
	s->variable_count++;
}

TEST(disabled_mtrrs_mean_uncached)
{
	struct mtrr_state s = state(MT_WB);

	s.enabled = false;
	CHECK_EQ(mtrr_type(&s, 0x100000), MT_UC);
}

TEST(default_type_outside_every_range)
{
	struct mtrr_state s = state(MT_WB);

	add_range(&s, 3 * GiB, GiB, MT_UC);
	CHECK_EQ(mtrr_type(&s, 2 * GiB), MT_WB);
	CHECK_EQ(mtrr_type(&s, 3 * GiB + 0x1000), MT_UC);
	CHECK_EQ(mtrr_type(&s, 4 * GiB - 1), MT_UC);
	CHECK_EQ(mtrr_type(&s, 4 * GiB), MT_WB);
}

TEST(invalid_variable_range_is_ignored)
{
	struct mtrr_state s = state(MT_WB);

	add_range(&s, 0, 2 * GiB, MT_UC);
	s.variable[0].mask &= ~VALID;
	CHECK_EQ(mtrr_type(&s, 0x200000), MT_WB);
}

TEST(overlaps_uc_wins_and_wt_beats_wb)
{
	struct mtrr_state s = state(MT_UC);

	add_range(&s, 0, 2 * GiB, MT_WB);
	add_range(&s, 0x40000000, 256 * MiB, MT_UC);
	add_range(&s, 0x60000000, 256 * MiB, MT_WT);
	CHECK_EQ(mtrr_type(&s, 0x10000000), MT_WB);
	CHECK_EQ(mtrr_type(&s, 0x40000000), MT_UC);
	CHECK_EQ(mtrr_type(&s, 0x60001000), MT_WT);
	/* The same WT range listed before the WB one still wins. */
	struct mtrr_state t = state(MT_UC);

	add_range(&t, 0x60000000, 256 * MiB, MT_WT);
	add_range(&t, 0, 2 * GiB, MT_WB);
	CHECK_EQ(mtrr_type(&t, 0x60001000), MT_WT);
}

TEST(fixed_ranges_below_1mib)
{
	struct mtrr_state s = state(MT_UC);

	s.fixed_enabled = true;
	memset(s.fixed, MT_WB, sizeof(s.fixed));
	s.fixed[8 + 8] = MT_UC;     /* 0xa0000-0xa3fff: first 16 KiB range of VGA */
	s.fixed[24 + 0] = MT_WP;    /* 0xc0000-0xc0fff: option ROM */
	add_range(&s, 0, 4 * GiB, MT_WB);
	CHECK_EQ(mtrr_type(&s, 0x7ffff), MT_WB);
	CHECK_EQ(mtrr_type(&s, 0xa0000), MT_UC);
	CHECK_EQ(mtrr_type(&s, 0xa3fff), MT_UC);
	CHECK_EQ(mtrr_type(&s, 0xa4000), MT_WB);
	CHECK_EQ(mtrr_type(&s, 0xc0800), MT_WP);
	CHECK_EQ(mtrr_type(&s, 0xc1000), MT_WB);
	/* Fixed ranges off: the variable ones decide below 1 MiB too. */
	s.fixed_enabled = false;
	CHECK_EQ(mtrr_type(&s, 0xa0000), MT_WB);
}

TEST(range_type_detects_mixed_blocks)
{
	struct mtrr_state s = state(MT_WB);

	add_range(&s, 0x40200000 + 0x1000, 0x1000, MT_UC);  /* one 4 KiB page */
	CHECK_EQ(mtrr_range_type(&s, 0x40000000, 2 * MiB), MT_WB);
	CHECK_EQ(mtrr_range_type(&s, 0x40200000, 2 * MiB), MT_MIXED);
	CHECK_EQ(mtrr_range_type(&s, 0x40201000, 0x1000), MT_UC);
}

UNIT_MAIN()
