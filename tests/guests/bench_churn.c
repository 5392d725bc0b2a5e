/*
 * Benchmark: page-table churn, like a process doing mmap/munmap. Each round maps a region of
 * varying size (1-32 pages, one round in 8: 64-191) at a random page of a 64 MiB window
 * (page tables created as needed), writes and reads back every page, then unmaps it one of
 * three ways: PTE by PTE with INVLPG each, REP STOS over the PTEs then a CR3 reload, or
 * XCHG per PTE (Linux's ptep_get_and_clear) then a CR3 reload; page tables left empty are
 * freed (PDE cleared, CR3 reloaded). A read of the region's first page must then fault.
 * Eight resident pages scattered over the window stay mapped throughout and are checked
 * every round, so a zap or flush of the wrong entry shows. Work unit: one page mapped,
 * touched and unmapped. Default n=160 rounds.
 */
#include "bench_common.h"

#define WINDOW_PAGES 16384	/* 64 MiB: 32 page tables */
#define SMALL_MAX 32
#define LARGE_MIN 64
#define LARGE_SPAN 128
#define NR_RESIDENT 8

static const unsigned int resident_page[NR_RESIDENT] = {
	0, 1, 511, 512, 3000, 7777, 12345, WINDOW_PAGES - 1
};
static u64 resident_value[NR_RESIDENT];
static unsigned long window_va, cr3;

enum unmap_style { UNMAP_INVLPG, UNMAP_REP_STOS, UNMAP_XCHG, NR_UNMAP_STYLES };

static int resident_index(unsigned int page)
{
	for (int i = 0; i < NR_RESIDENT; i++) {
		if (resident_page[i] == page)
			return i;
	}
	return -1;
}

static unsigned long page_va(unsigned int page)
{
	return window_va + page * PAGE;
}

static u64 region_tag(unsigned long round, unsigned int page)
{
	return 0xc4a1ull << 48 | (u64)round << 20 | page;
}

/* Bumps and checks every resident page's counter: none was unmapped or remapped. */
static void check_resident(void)
{
	for (int i = 0; i < NR_RESIDENT; i++) {
		unsigned long va = page_va(resident_page[i]);
		u64 v = bench_read(va);

		bench_expect(v == resident_value[i], "resident page", v, resident_value[i]);
		bench_write(va, ++resident_value[i]);
	}
}

/* Writes a tag to two words of every page of [first, first + count), reads them back. */
static void touch_region(unsigned long round, unsigned int first, unsigned int count)
{
	for (unsigned int p = first; p < first + count; p++) {
		if (resident_index(p) >= 0)
			continue;
		bench_write(page_va(p), region_tag(round, p));
		bench_write(page_va(p) + 8 * (1 + p % 511), ~region_tag(round, p));
	}
	for (unsigned int p = first; p < first + count; p++) {
		u64 a, b;

		if (resident_index(p) >= 0)
			continue;
		a = bench_read(page_va(p));
		b = bench_read(page_va(p) + 8 * (1 + p % 511));
		bench_expect(a == region_tag(round, p), "region word 0", a, region_tag(round, p));
		bench_expect(b == ~region_tag(round, p), "region word", b, ~region_tag(round, p));
		bench_mix(a + b * 3);
	}
}

/*
 * Clears the region's PTEs (never a resident page's) in the given style, collecting the
 * frames in `frames`; returns how many. They are freed once no TLB entry can reach them.
 */
static unsigned int unmap_region(unsigned int first, unsigned int count,
				 enum unmap_style style, u64 *frames)
{
	unsigned int p = first, nr = 0;

	while (p < first + count) {
		/* A run of non-resident pages inside one page table. */
		unsigned int end = p + 1;
		u64 *pte;

		if (resident_index(p) >= 0) {
			p++;
			continue;
		}
		while (end < first + count && resident_index(end) < 0 && end % PT_ENTRIES)
			end++;
		pte = bench_pte(cr3, page_va(p), false);
		for (unsigned int k = 0; k < end - p; k++)
			frames[nr++] = pte[k] & PTE_ADDR_4K;
		if (style == UNMAP_REP_STOS) {
			unsigned long len = end - p;

			asm volatile("rep stosq" : "+D"(pte), "+c"(len) : "a"(0ul) : "memory");
		} else {
			for (unsigned int k = 0; k < end - p; k++) {
				u64 old = 0;

				if (style == UNMAP_XCHG) {
					asm volatile("xchg %0, %1" : "+r"(old), "+m"(pte[k]));
				} else {
					pte[k] = 0;
					invlpg(page_va(p + k));
				}
			}
		}
		p = end;
	}
	return nr;
}

/* Frees the page tables of pages [first, last] that map nothing any more; true if any. */
static bool free_empty_tables(unsigned int first, unsigned int last)
{
	bool freed = false;

	for (unsigned int t = first / PT_ENTRIES; t <= last / PT_ENTRIES; t++) {
		u64 *pde = bench_entry(cr3, page_va(t * PT_ENTRIES), LEVEL_PDE, false);
		u64 *pt = table_at(*pde);
		bool empty = true;

		for (unsigned int i = 0; i < PT_ENTRIES && empty; i++)
			empty = !(pt[i] & PTE_P);
		if (!empty)
			continue;
		pool_free(*pde & PTE_ADDR_4K, true);
		*pde = 0;
		freed = true;
	}
	return freed;
}

int main(void)
{
	unsigned long n = bench_param("n", 160), work = 0, tables_freed = 0, base_frames;
	u64 rng = 0x13198a2e03707344ull;

	if (!paging_init(PAGING_LONG)) {
		report_skip("4-level paging not available here");
		return report_summary();
	}
	window_va = paging_test_base();
	cr3 = bench_aspace_new();
	for (int i = 0; i < NR_RESIDENT; i++) {
		resident_value[i] = 0x4e51000000000000ull | i << 16;
		bench_map(cr3, page_va(resident_page[i]), pool_alloc(), PTE_P | PTE_W | PTE_U);
	}
	aspace_switch(cr3);
	for (int i = 0; i < NR_RESIDENT; i++)
		bench_write(page_va(resident_page[i]), resident_value[i]);
	base_frames = pool.in_use;

	bench_begin();
	for (unsigned long round = 0; round < n; round++) {
		u64 r = bench_rng(&rng);
		bool large = round % 8 == 7;
		unsigned int count = large ? LARGE_MIN + r % LARGE_SPAN : 1 + r % SMALL_MAX;
		unsigned int first = (r >> 16) % (WINDOW_PAGES - count);
		enum unmap_style style = round % NR_UNMAP_STYLES;
		static u64 frames[LARGE_MIN + LARGE_SPAN];
		unsigned int nr_frames;
		struct probe_result probed;

		for (unsigned int p = first; p < first + count; p++) {
			if (resident_index(p) < 0)
				bench_map(cr3, page_va(p), pool_alloc(), PTE_P | PTE_W | PTE_U);
		}
		touch_region(round, first, count);
		nr_frames = unmap_region(first, count, style, frames);
		if (free_empty_tables(first, first + count - 1)) {
			tables_freed++;
			flush_tlb();	/* also drops paging-structure caches (SDM 4.10.4.1) */
		} else if (style != UNMAP_INVLPG) {
			flush_tlb();
		}
		for (unsigned int k = 0; k < nr_frames; k++)
			pool_free(frames[k], false);
		check_resident();
		if (resident_index(first) < 0) {
			probed = probe(page_va(first), PROBE_READ, 0, false, 0);
			if (bench_expect(probed.faulted, "read of an unmapped page faults", 0, 1))
				bench_expect(probed.error_code == 0, "its #PF error code",
					     probed.error_code, 0);
		}
		work += nr_frames;
	}
	aspace_switch(aspace_kernel());
	bench_expect(pool.in_use == base_frames, "frames in use after all unmaps", pool.in_use,
		     base_frames);
	printf("bench: churn: %lu rounds, %lu pages, %lu times page tables freed, peak %lu "
	       "frames\n", n, work, tables_freed, pool.peak);
	return bench_end("churn", work);
}
