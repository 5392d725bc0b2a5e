/*
 * Benchmark: a random walk over a large working set. 64 MiB of virtual space (16384 pages,
 * 32 page tables) is mapped with 4 KiB pages onto 2048 frames (8 MiB), each frame aliased by
 * 8 pages; a fixed-seed PRNG picks the page of every access, which reads the frame's tag
 * and one alias's counter and, every other time, bumps its own alias's counter. Far more
 * translations than a TLB or a few shadow page tables hold: this measures the cost of a
 * miss (EPT: a 2-D walk; shadow: a shadow fault when the entry is not built yet). At the end
 * every counter is checked through the identity map. Work unit: one access. Default
 * n=32768 accesses.
 */
#include "bench_common.h"

#define WALK_PAGES 16384	/* 64 MiB */
#define WALK_FRAMES 2048
#define ALIASES (WALK_PAGES / WALK_FRAMES)

static unsigned long walk_va;
static u64 frames[WALK_FRAMES];
static u32 counters[WALK_FRAMES][ALIASES];	/* the model of word 1 + alias of each frame */
static u8 touched[WALK_PAGES / 8];		/* pages accessed: first touches, for the log */

static u64 frame_tag(unsigned int f)
{
	return 0xf4a3e00000000000ull | f;
}

int main(void)
{
	unsigned long n = bench_param("n", 32768), cr3;
	u64 rng = 0x243f6a8885a308d3ull;
	unsigned long bad = 0, distinct = 0;

	if (!paging_init(PAGING_LONG)) {
		report_skip("4-level paging not available here");
		return report_summary();
	}
	walk_va = paging_test_base();
	cr3 = bench_aspace_new();
	for (unsigned int f = 0; f < WALK_FRAMES; f++) {
		frames[f] = pool_alloc_zeroed();
		*(u64 *)phys_to_virt(frames[f]) = frame_tag(f);
	}
	/* Page p uses frame p % WALK_FRAMES, as alias p / WALK_FRAMES. */
	for (unsigned int p = 0; p < WALK_PAGES; p++)
		bench_map(cr3, walk_va + p * PAGE, frames[p % WALK_FRAMES],
			  PTE_P | PTE_W | PTE_U);
	aspace_switch(cr3);

	bench_begin();
	for (unsigned long i = 0; i < n; i++) {
		u64 r = bench_rng(&rng);
		unsigned int p = r % WALK_PAGES, f = p % WALK_FRAMES, alias = p / WALK_FRAMES;
		unsigned int other = (r >> 32) % ALIASES;
		unsigned long va = walk_va + p * PAGE;
		u64 tag = bench_read(va), cnt = bench_read(va + 8 * (1 + other));

		distinct += !(touched[p / 8] & 1u << p % 8);
		touched[p / 8] |= 1u << p % 8;
		bench_expect(tag == frame_tag(f), "frame tag", tag, frame_tag(f));
		bench_expect(cnt == counters[f][other], "alias counter", cnt, counters[f][other]);
		bench_mix(tag ^ cnt << 20 ^ p);
		if (r >> 63)
			bench_write(va + 8 * (1 + alias), ++counters[f][alias]);
	}
	aspace_switch(aspace_kernel());

	/* Every write landed in the right frame: all counters through the identity map. */
	for (unsigned int f = 0; f < WALK_FRAMES; f++) {
		u64 *data = phys_to_virt(frames[f]);

		for (unsigned int a = 0; a < ALIASES; a++) {
			bad += data[1 + a] != counters[f][a];
			bench_mix(data[1 + a]);
		}
	}
	bench_expect(!bad, "counters differing from the model at the end", bad, 0);
	printf("bench: randwalk: %lu distinct pages of %u touched\n", distinct, WALK_PAGES);
	return bench_end("randwalk", n);
}
