/*
 * Benchmark for shadow-page reclaim: a hot set of 8 address spaces revisited all the time
 * and a stream of cold ones, each created, visited once and abandoned (never destroyed,
 * never used again), with one visit in four going to a cold space. Every space has the same
 * layout, like processes: 4 private pages over two page tables of its own, and a page table
 * of 4 shared pages (the "kernel part" besides the shared identity map) that every space's
 * PDE points to. A visit switches CR3 and makes 16 counter updates on its private pages and
 * one on a shared page, each checked against the model first. Under a shadow-page limit a
 * reclaim policy that keeps the hot spaces' shadow tables (CLOCK) re-faults far less than
 * one that evicts by age (FIFO). Work unit: one visit. Default n=64 cold spaces (256
 * visits).
 */
#include "bench_common.h"

#define HOT_SPACES 8
#define MAX_COLD_SPACES 256
#define HOT_VISITS_PER_COLD 3	/* so 1 visit (and access) in 4 is to a cold space */
#define PRIV_PAGES 4
#define SHARED_PAGES 4
#define TOUCHES 16		/* private counter updates per visit */

struct space {
	unsigned long cr3;
	u64 frames[PRIV_PAGES];
	u64 counters[PRIV_PAGES];	/* model of word 1 of each private page */
	unsigned int id;
};

static struct space hot[HOT_SPACES], cold[MAX_COLD_SPACES];
static u64 shared_frames[SHARED_PAGES], shared_pt;
static u64 shared_counters[HOT_SPACES + MAX_COLD_SPACES];	/* word 1 + id of a page */
static unsigned long base;

/* Two private pages in the first page table, two in the next one. */
static unsigned long priv_va(unsigned int page)
{
	return base + (page / 2) * (2ul << 20) + (page % 2) * PAGE;
}

/* The shared page table sits behind the third PDE. */
static unsigned long shared_va(unsigned int page)
{
	return base + 2 * (2ul << 20) + page * PAGE;
}

static u64 space_tag(unsigned int id, unsigned int page)
{
	return 0x4c0d000000000000ull | (u64)id << 16 | page;
}

static void space_create(struct space *s, unsigned int id)
{
	s->id = id;
	s->cr3 = bench_aspace_new();
	for (unsigned int p = 0; p < PRIV_PAGES; p++) {
		u64 *data;

		s->frames[p] = pool_alloc();
		data = phys_to_virt(s->frames[p]);
		data[0] = space_tag(id, p);
		data[1] = s->counters[p] = 0;
		bench_map(s->cr3, priv_va(p), s->frames[p], PTE_P | PTE_W | PTE_U);
	}
	/* Like a kernel mapping shared with every process: one page table, many PDEs. */
	*bench_entry(s->cr3, shared_va(0), LEVEL_PDE, true) = shared_pt | PTE_P | PTE_W | PTE_U;
}

static void visit(struct space *s, u64 *rng)
{
	unsigned long sva = shared_va(s->id % SHARED_PAGES) + 8 * (1 + s->id);
	u64 v;

	aspace_switch(s->cr3);
	for (unsigned int t = 0; t < TOUCHES; t++) {
		unsigned int p = bench_rng(rng) % PRIV_PAGES;
		u64 tag = bench_read(priv_va(p));

		v = bench_read(priv_va(p) + 8);
		bench_expect(tag == space_tag(s->id, p), "private page tag", tag,
			     space_tag(s->id, p));
		bench_expect(v == s->counters[p], "private counter", v, s->counters[p]);
		bench_write(priv_va(p) + 8, ++s->counters[p]);
		bench_mix(tag ^ v);
	}
	v = bench_read(sva);
	bench_expect(v == shared_counters[s->id], "shared counter", v, shared_counters[s->id]);
	bench_write(sva, ++shared_counters[s->id]);
	bench_mix(v);
}

/* Every counter of a space through the identity map, after the run. */
static void check_space(const struct space *s)
{
	for (unsigned int p = 0; p < PRIV_PAGES; p++) {
		u64 v = ((u64 *)phys_to_virt(s->frames[p]))[1];

		bench_expect(v == s->counters[p], "final private counter", v, s->counters[p]);
		bench_mix(v);
	}
}

int main(void)
{
	unsigned long nr_cold = bench_param("n", 64), visits = 0, created = 0;
	u64 rng = 0x082efa98ec4e6c89ull;

	if (nr_cold > MAX_COLD_SPACES)
		nr_cold = MAX_COLD_SPACES;
	if (!paging_init(PAGING_LONG)) {
		report_skip("4-level paging not available here");
		return report_summary();
	}
	base = paging_test_base();
	shared_pt = pool_alloc_zeroed();
	for (unsigned int k = 0; k < SHARED_PAGES; k++) {
		shared_frames[k] = pool_alloc_zeroed();
		((u64 *)phys_to_virt(shared_pt))[k] = shared_frames[k] | PTE_P | PTE_W | PTE_U;
	}
	for (unsigned int h = 0; h < HOT_SPACES; h++)
		space_create(&hot[h], h);

	bench_begin();
	for (unsigned long c = 0; c < nr_cold; c++) {
		for (unsigned int k = 0; k < HOT_VISITS_PER_COLD; k++, visits++)
			visit(&hot[bench_rng(&rng) % HOT_SPACES], &rng);
		space_create(&cold[c], HOT_SPACES + c);
		created++;
		visit(&cold[c], &rng);
		visits++;
	}
	aspace_switch(aspace_kernel());

	for (unsigned int h = 0; h < HOT_SPACES; h++)
		check_space(&hot[h]);
	for (unsigned long c = 0; c < nr_cold; c++)
		check_space(&cold[c]);
	for (unsigned int id = 0; id < HOT_SPACES + nr_cold; id++) {
		u64 v = ((u64 *)phys_to_virt(shared_frames[id % SHARED_PAGES]))[1 + id];

		bench_expect(v == shared_counters[id], "final shared counter", v,
			     shared_counters[id]);
	}
	printf("bench: hotcold: %u hot spaces, %lu cold, %lu visits, %lu frames\n", HOT_SPACES,
	       created, visits, pool.in_use);
	return bench_end("hotcold", visits);
}
