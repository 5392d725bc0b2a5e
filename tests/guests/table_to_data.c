/*
 * A page table that stops being one: map pages through a fresh page table,
 * use them, unhook the table, then use its frame as plain data and write it
 * many times. Under shadow paging the frame is write-protected while it is
 * shadowed; the flood detector must notice the table is no longer used and
 * give the frame back, so the data writes stop costing exits. The data must
 * read back right in every case. Command line: `writes=N` (default 20000),
 * `expect_flood` (at most 64 exits for the data writes) or `expect_no_flood`
 * (at least one exit per 2 writes: flood=off keeps emulating).
 */
#include "libguest.h"
#include "paging.h"

#define PAGES 16
#define EXIT_EXCEPTION 0  /* basic exit reason: exception (here #PF) */

static long exception_exits(void)
{
	return is_umbra() ? vmcall(HC_STAT, HC_STAT_EXITS(EXIT_EXCEPTION), 0, 0) : 0;
}

int main(void)
{
	unsigned long cr3, base;
	static u64 want[512];
	u64 *data, writes = 20000, frames[PAGES], sum = 0;
	void *pde;
	long before, exits;
	bool ok = true;

	if (!paging_init(PAGING_LONG)) {
		report(false, "paging set up");
		return report_summary();
	}
	cmdline_get_u64("writes", &writes);
	cr3 = read_cr3();
	base = paging_test_base();
	for (int i = 0; i < PAGES; i++) {
		frames[i] = alloc_frame();
		map_page(cr3, base + i * 4096ul, frames[i], PTE_P | PTE_W, LEVEL_PTE);
		*(volatile u64 *)(base + i * 4096ul) = 0x1000u + (u64)i;  /* use the table */
	}
	for (int i = 0; i < PAGES; i++)
		ok &= *(volatile u64 *)(base + i * 4096ul) == 0x1000u + (u64)i;
	report(ok, "%d pages written and read through a new page table", PAGES);

	/* Unhook the table: from now on its frame is just memory. */
	pde = pte_lookup(cr3, base, LEVEL_PDE);
	data = phys_to_virt(pte_addr(pte_get(pde)));
	pte_set(pde, 0);
	flush_tlb();

	before = exception_exits();
	for (u64 n = 0; n < writes; n++) {
		u64 v = 0xdead000000000000ull ^ (n * 0x9e3779b97f4a7c14ull);  /* never present */

		data[n % 512] = v & ~1ull;
		want[n % 512] = v & ~1ull;
	}
	exits = exception_exits() - before;
	for (u64 k = 0; k < 512 && k < writes; k++)
		sum += data[k] != want[k];
	report(sum == 0, "the old table's frame holds the %llu data writes (%llu wrong)",
	       (unsigned long long)writes, (unsigned long long)sum);
	printf("table_to_data: %llu data writes cost %ld page-fault exits\n",
	       (unsigned long long)writes, exits);
	if (cmdline_has("expect_flood"))
		report_umbra(exits <= 64, "flood detection: %ld exits for %llu writes (<= 64)", exits,
			     (unsigned long long)writes);
	if (cmdline_has("expect_no_flood"))
		report_umbra((u64)exits * 2 >= writes,
			     "flood=off: %ld exits for %llu writes (one per write, at least half)",
			     exits, (unsigned long long)writes);
	return report_summary();
}
