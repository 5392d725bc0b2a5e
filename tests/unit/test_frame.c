/*
 * Tests of the bitmap frame allocator (mm/frame.c): range rounding in
 * add_free/reserve, exact counters, single frames and aligned runs, frame 0
 * never handed out, and a randomized comparison with a one-byte-per-frame
 * model.
 */
#include <string.h>

#include "unit.h"
#include "mm/frame.h"

#define MiB (1ull << 20)
#define POOL_BYTES (64 * MiB)  /* 16384 frames */
#define POOL_FRAMES (POOL_BYTES / PAGE_SIZE)

static u64 storage[POOL_FRAMES / 64];
static struct frame_pool pool;

/* Frames whose bitmap bit is clear, counted the slow way. */
static u64 clear_bits(const struct frame_pool *p)
{
	u64 n = 0;

	for (u64 f = 0; f < p->frame_count; f++)
		n += !(p->bitmap[f / 64] & BIT(f % 64));
	return n;
}

static bool frame_free_in_bitmap(u64 addr)
{
	u64 f = addr / PAGE_SIZE;

	return !(pool.bitmap[f / 64] & BIT(f % 64));
}

static void fresh_pool(void)
{
	frame_pool_init(&pool, storage, POOL_BYTES);
}

TEST(bitmap_size)
{
	CHECK_EQ(frame_bitmap_bytes(0), 0);
	CHECK_EQ(frame_bitmap_bytes(1), 8);
	CHECK_EQ(frame_bitmap_bytes(PAGE_SIZE), 8);
	CHECK_EQ(frame_bitmap_bytes(64 * PAGE_SIZE), 8);
	CHECK_EQ(frame_bitmap_bytes(64 * PAGE_SIZE + 1), 16);
	CHECK_EQ(frame_bitmap_bytes(4ull << 30), (4ull << 30) / PAGE_SIZE / 8);
}

TEST(init_marks_everything_unusable)
{
	memset(storage, 0, sizeof(storage));
	fresh_pool();
	CHECK_EQ(pool.frame_count, POOL_FRAMES);
	CHECK_EQ(frame_pool_free(&pool), 0);
	CHECK_EQ(frame_pool_used(&pool), 0);
	CHECK_EQ(clear_bits(&pool), 0);
	CHECK_EQ(frame_alloc(&pool), 0);
	CHECK_EQ(frame_alloc_run(&pool, 4, PAGE_SIZE), 0);
}

TEST(add_free_takes_whole_frames_only)
{
	fresh_pool();
	frame_pool_add_free(&pool, 0x1800, 0x3000);  /* [0x1800, 0x4800): frames 2, 3 */
	CHECK_EQ(frame_pool_free(&pool), 2);
	CHECK(frame_free_in_bitmap(0x2000) && frame_free_in_bitmap(0x3000));
	CHECK(!frame_free_in_bitmap(0x1000) && !frame_free_in_bitmap(0x4000));
	frame_pool_add_free(&pool, 0x10000, 0xfff);  /* less than a frame */
	frame_pool_add_free(&pool, 0x20001, 0x1000); /* straddles, no whole frame */
	CHECK_EQ(frame_pool_free(&pool), 2);
	/* Adding the same range again does not count it twice. */
	frame_pool_add_free(&pool, 0x2000, 0x2000);
	CHECK_EQ(frame_pool_free(&pool), 2);
	CHECK_EQ(pool.total_frames, 2);
	CHECK_EQ(clear_bits(&pool), 2);
}

TEST(add_free_never_frees_frame_0)
{
	fresh_pool();
	frame_pool_add_free(&pool, 0, 0x9fc00);  /* conventional memory: frames 0..158 */
	CHECK(!frame_free_in_bitmap(0));
	CHECK_EQ(frame_pool_free(&pool), 158);
	for (u64 a; (a = frame_alloc(&pool));)
		CHECK(a >= PAGE_SIZE && a < 0x9f000);
	CHECK_EQ(frame_pool_free(&pool), 0);
	CHECK_EQ(frame_pool_used(&pool), 158);
}

TEST(add_free_clamps_to_the_bitmap)
{
	fresh_pool();
	frame_pool_add_free(&pool, POOL_BYTES - 2 * PAGE_SIZE, 100 * MiB);
	CHECK_EQ(frame_pool_free(&pool), 2);
	frame_pool_add_free(&pool, POOL_BYTES, 4 * MiB);  /* wholly above */
	CHECK_EQ(frame_pool_free(&pool), 2);
	/* A length that wraps around the address space: clamp, not nothing. */
	frame_pool_add_free(&pool, POOL_BYTES - 8 * PAGE_SIZE, ~0ull);
	CHECK_EQ(frame_pool_free(&pool), 8);
	CHECK_EQ(clear_bits(&pool), 8);
}

/* A bogus memory-map entry near the top of the address space frees nothing. */
TEST(add_free_of_a_range_near_2_pow_64_frees_nothing)
{
	fresh_pool();
	frame_pool_add_free(&pool, 0xfffffffffffff800ull, 0x1000);
	CHECK_EQ(frame_pool_free(&pool), 0);
	frame_pool_add_free(&pool, ~0ull - 0x3000, 0x8000);
	CHECK_EQ(frame_pool_free(&pool), 0);
	CHECK_EQ(clear_bits(&pool), 0);
}

TEST(reserve_rounds_outward)
{
	fresh_pool();
	frame_pool_add_free(&pool, 0, MiB);  /* frames 1..255 */
	CHECK_EQ(frame_pool_free(&pool), 255);
	frame_pool_reserve(&pool, 0x10800, 0x1000);  /* touches frames 0x10 and 0x11 */
	CHECK_EQ(frame_pool_free(&pool), 253);
	CHECK_EQ(pool.total_frames, 253);
	CHECK(!frame_free_in_bitmap(0x10000) && !frame_free_in_bitmap(0x11000));
	CHECK(frame_free_in_bitmap(0xf000) && frame_free_in_bitmap(0x12000));
	frame_pool_reserve(&pool, 0x20000, 1);  /* one byte reserves its frame */
	CHECK(!frame_free_in_bitmap(0x20000));
	CHECK_EQ(frame_pool_free(&pool), 252);
	frame_pool_reserve(&pool, 0x30000, 0);  /* empty range reserves nothing */
	CHECK_EQ(frame_pool_free(&pool), 252);
	CHECK_EQ(clear_bits(&pool), 252);
}

TEST(reserve_overlapping_free_ranges)
{
	fresh_pool();
	frame_pool_add_free(&pool, 0x100000, 0x100000);  /* frames 0x100..0x1ff */
	frame_pool_add_free(&pool, 0x300000, 0x100000);  /* frames 0x300..0x3ff */
	CHECK_EQ(frame_pool_free(&pool), 512);
	/* Spans the end of the first, the hole, and the start of the second. */
	frame_pool_reserve(&pool, 0x1f0000, 0x120000);
	CHECK_EQ(frame_pool_free(&pool), 512 - 16 - 16);
	/* Reserving an already reserved or non-RAM range changes nothing. */
	frame_pool_reserve(&pool, 0x1f0000, 0x120000);
	frame_pool_reserve(&pool, 0x200000, 0x100000);
	CHECK_EQ(frame_pool_free(&pool), 480);
	CHECK_EQ(pool.total_frames, 480);
	/* Reserving an allocated frame does not touch the counters. */
	u64 a = frame_alloc(&pool);
	CHECK(a);
	frame_pool_reserve(&pool, a, PAGE_SIZE);
	CHECK_EQ(frame_pool_free(&pool), 479);
	CHECK_EQ(frame_pool_used(&pool), 1);
	CHECK_EQ(clear_bits(&pool), 479);
}

TEST(reserve_clamps_to_the_bitmap)
{
	fresh_pool();
	frame_pool_add_free(&pool, 0, POOL_BYTES);
	frame_pool_reserve(&pool, POOL_BYTES - PAGE_SIZE, 16 * MiB);
	CHECK_EQ(frame_pool_free(&pool), POOL_FRAMES - 2);
	frame_pool_reserve(&pool, 2 * POOL_BYTES, MiB);
	CHECK_EQ(frame_pool_free(&pool), POOL_FRAMES - 2);
	CHECK_EQ(clear_bits(&pool), POOL_FRAMES - 2);
}

/* A reservation whose end wraps must reserve to the top, not nothing. */
TEST(reserve_of_a_wrapping_range_reserves_to_the_top)
{
	fresh_pool();
	frame_pool_add_free(&pool, 0, POOL_BYTES);
	frame_pool_reserve(&pool, POOL_BYTES - 4 * PAGE_SIZE, ~0ull);
	CHECK_EQ(frame_pool_free(&pool), POOL_FRAMES - 1 - 4);
	frame_pool_reserve(&pool, POOL_BYTES / 2, ~0ull - POOL_BYTES / 2 - 10);
	CHECK_EQ(frame_pool_free(&pool), POOL_FRAMES / 2 - 1);
	CHECK_EQ(clear_bits(&pool), POOL_FRAMES / 2 - 1);
}

TEST(single_frames_distinct_until_exhausted)
{
	static bool seen[POOL_FRAMES];
	u64 n = 0, a;

	memset(seen, 0, sizeof(seen));
	fresh_pool();
	frame_pool_add_free(&pool, 0, 4 * MiB);
	frame_pool_reserve(&pool, MiB, MiB);
	CHECK_EQ(frame_pool_free(&pool), 767);
	while ((a = frame_alloc(&pool))) {
		CHECK(a % PAGE_SIZE == 0);
		CHECK(a < MiB || a >= 2 * MiB);
		CHECK(!seen[a / PAGE_SIZE]);
		seen[a / PAGE_SIZE] = true;
		n++;
		CHECK_EQ(frame_pool_free(&pool) + frame_pool_used(&pool), 767);
		CHECK_EQ(frame_pool_used(&pool), n);
	}
	CHECK_EQ(n, 767);
	CHECK_EQ(frame_pool_free(&pool), 0);
	CHECK_EQ(clear_bits(&pool), 0);
}

TEST(runs_aligned_to_4k_and_2m)
{
	u64 a, b, c;

	fresh_pool();
	frame_pool_add_free(&pool, 0, 16 * MiB);
	a = frame_alloc_run(&pool, 512, LARGE_PAGE_SIZE);
	CHECK(a && a % LARGE_PAGE_SIZE == 0);
	CHECK(a >= LARGE_PAGE_SIZE);  /* the first 2 MiB holds frame 0 */
	b = frame_alloc_run(&pool, 3, PAGE_SIZE);
	CHECK(b && (b + 3 * PAGE_SIZE <= a || b >= a + LARGE_PAGE_SIZE));
	c = frame_alloc_run(&pool, 1, 64 * 1024);
	CHECK(c && c % (64 * 1024) == 0);
	CHECK(c != b && c != a);
	for (u64 i = 0; i < 512; i++)
		CHECK(!frame_free_in_bitmap(a + i * PAGE_SIZE));
	CHECK_EQ(frame_pool_used(&pool), 516);
	CHECK_EQ(clear_bits(&pool), frame_pool_free(&pool));
	/* A run of 1 aligned to 2 MiB never lands on frame 0. */
	fresh_pool();
	frame_pool_add_free(&pool, 0, 4 * MiB);
	CHECK_EQ(frame_alloc_run(&pool, 1, LARGE_PAGE_SIZE), LARGE_PAGE_SIZE);
}

TEST(runs_that_do_not_exist_return_0)
{
	fresh_pool();
	/* Plenty of free frames, but a hole in the middle of every 2 MiB block. */
	frame_pool_add_free(&pool, 0, 16 * MiB);
	for (u64 m = 0; m < 16 * MiB; m += LARGE_PAGE_SIZE)
		frame_pool_reserve(&pool, m + 0x100000, 1);
	CHECK_EQ(frame_alloc_run(&pool, 512, LARGE_PAGE_SIZE), 0);
	CHECK_EQ(frame_alloc_run(&pool, 512, PAGE_SIZE), 0);
	CHECK(frame_alloc_run(&pool, 511, PAGE_SIZE));
	/* More than all free frames. */
	CHECK_EQ(frame_alloc_run(&pool, frame_pool_free(&pool) + 1, PAGE_SIZE), 0);
	/* Bad parameters. */
	CHECK_EQ(frame_alloc_run(&pool, 0, PAGE_SIZE), 0);
	CHECK_EQ(frame_alloc_run(&pool, 1, 0), 0);
	CHECK_EQ(frame_alloc_run(&pool, 1, 2048), 0);
	CHECK_EQ(frame_alloc_run(&pool, 1, 3 * PAGE_SIZE), 0);
	CHECK_EQ(frame_pool_used(&pool), 511);
	/* A run ending exactly at the top of the bitmap is found. */
	fresh_pool();
	frame_pool_add_free(&pool, POOL_BYTES - 5 * PAGE_SIZE, 5 * PAGE_SIZE);
	CHECK_EQ(frame_alloc_run(&pool, 5, PAGE_SIZE), POOL_BYTES - 5 * PAGE_SIZE);
	CHECK_EQ(frame_alloc(&pool), 0);
}

TEST(free_then_reallocate)
{
	u64 a, b, c;

	fresh_pool();
	frame_pool_add_free(&pool, 0, 8 * MiB);
	a = frame_alloc(&pool);
	b = frame_alloc(&pool);
	c = frame_alloc(&pool);
	CHECK(a && b && c && a != b && b != c && a != c);
	frame_free_run(&pool, b, 1);
	CHECK(frame_free_in_bitmap(b));
	CHECK_EQ(frame_pool_used(&pool), 2);
	CHECK_EQ(frame_alloc(&pool), b);  /* the hint moves back to freed frames */

	/* A freed 2 MiB run can be allocated again as one run. */
	u64 run = frame_alloc_run(&pool, 512, LARGE_PAGE_SIZE);
	CHECK(run);
	while (frame_alloc(&pool))
		;
	CHECK_EQ(frame_alloc_run(&pool, 512, LARGE_PAGE_SIZE), 0);
	frame_free_run(&pool, run, 512);
	CHECK_EQ(frame_pool_free(&pool), 512);
	CHECK_EQ(frame_alloc_run(&pool, 512, LARGE_PAGE_SIZE), run);
	CHECK_EQ(frame_pool_free(&pool), 0);
	CHECK_EQ(frame_pool_used(&pool), pool.total_frames);
	/* Freeing a free frame twice does not inflate the counter. */
	frame_free_run(&pool, a, 1);
	frame_free_run(&pool, a, 1);
	CHECK_EQ(frame_pool_free(&pool), 1);
}

/* ---- randomized comparison with a simple model ---- */

enum { M_NOT_RAM, M_FREE, M_USED };

#define RFRAMES 2048  /* 8 MiB: small enough to search the model exhaustively */

static u8 model[RFRAMES];
static u64 rng_state = 0x9e3779b97f4a7c15ull;

static u64 rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 7;
	rng_state ^= rng_state << 17;
	return rng_state;
}

static bool model_run_exists(u64 count, u64 step)
{
	for (u64 f = step; f + count <= RFRAMES; f += step) {
		u64 n = 0;

		while (n < count && model[f + n] == M_FREE)
			n++;
		if (n == count)
			return true;
	}
	return false;
}

static void model_check_counters(void)
{
	u64 free = 0, used = 0;

	for (u64 f = 0; f < RFRAMES; f++) {
		free += model[f] == M_FREE;
		used += model[f] == M_USED;
		CHECK_EQ(frame_free_in_bitmap(f * PAGE_SIZE), model[f] == M_FREE);
	}
	CHECK_EQ(frame_pool_free(&pool), free);
	CHECK_EQ(frame_pool_used(&pool), used);
	CHECK_EQ(pool.total_frames, free + used);
}

struct live_run { u64 addr, count; };

TEST(randomized_against_model)
{
	static struct live_run live[4096];

	for (int round = 0; round < 20; round++) {
		int nlive = 0;

		frame_pool_init(&pool, storage, RFRAMES * PAGE_SIZE);
		memset(model, M_NOT_RAM, sizeof(model));
		/* Setup as mm_init does it: RAM ranges, then reservations. */
		for (int i = 0; i < 6; i++) {
			u64 base = rng() % (RFRAMES * PAGE_SIZE + MiB), len = rng() % (3 * MiB);
			u64 first = ALIGN_UP(base, PAGE_SIZE) / PAGE_SIZE;
			u64 end = ALIGN_DOWN(base + len, PAGE_SIZE) / PAGE_SIZE;

			frame_pool_add_free(&pool, base, len);
			for (u64 f = first ? first : 1; f < end && f < RFRAMES; f++)
				model[f] = M_FREE;
		}
		for (int i = 0; i < 4; i++) {
			u64 base = rng() % (RFRAMES * PAGE_SIZE), len = rng() % (512 * 1024);
			u64 first = base / PAGE_SIZE;
			u64 end = ALIGN_UP(base + len, PAGE_SIZE) / PAGE_SIZE;

			frame_pool_reserve(&pool, base, len);
			for (u64 f = first; f < end && f < RFRAMES; f++)
				if (model[f] == M_FREE)
					model[f] = M_NOT_RAM;
		}
		model_check_counters();

		for (int op = 0; op < 600; op++) {
			if (nlive && rng() % 3 == 0) {
				int k = (int)(rng() % (u64)nlive);

				frame_free_run(&pool, live[k].addr, live[k].count);
				for (u64 i = 0; i < live[k].count; i++)
					model[live[k].addr / PAGE_SIZE + i] = M_FREE;
				live[k] = live[--nlive];
			} else {
				static const u64 aligns[] = { PAGE_SIZE, 2 * PAGE_SIZE,
							      16 * PAGE_SIZE, LARGE_PAGE_SIZE };
				u64 align = aligns[rng() % 4];
				u64 count = rng() % 4 ? 1 + rng() % 8 : 1 + rng() % 600;
				u64 a = frame_alloc_run(&pool, count, align);

				if (!a) {
					CHECK(!model_run_exists(count, align / PAGE_SIZE));
					continue;
				}
				CHECK(a % align == 0);
				CHECK(a + count * PAGE_SIZE <= RFRAMES * PAGE_SIZE);
				for (u64 i = 0; i < count; i++) {
					CHECK_EQ(model[a / PAGE_SIZE + i], M_FREE);
					model[a / PAGE_SIZE + i] = M_USED;
				}
				live[nlive++] = (struct live_run){ a, count };
			}
			if (op % 50 == 0)
				model_check_counters();
		}
		model_check_counters();
	}
}

UNIT_MAIN()
