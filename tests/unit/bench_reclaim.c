/*
 * Reclaim benchmark: synthetic workloads (tests/unit/reclaim_sim.c: hot
 * address spaces sharing a global kernel part, plus a stream of cold ones
 * taking 25, 10 or 5% of the runs) on the real shadow MMU and a CPU whose
 * TLB and PDE cache hide accessed bits (sim_cpu.h), under FIFO, CLOCK and
 * an LRU oracle that sees every use, at limits of 64 and 128 shadow pages,
 * and once without a limit. Avoidable faults are those above the run
 * without eviction. Prints faults, evictions, pages examined per eviction,
 * each policy's faults over FIFO's and the share of FIFO's avoidable
 * faults it removes. Exits non-zero if a translation was wrong, or CLOCK
 * examines more than its ration (the limit + 2.75 pages per eviction), or
 * on the hot set + cold stream more than 3 per eviction, is more than 0.05
 * (in faults over FIFO's) worse than the LRU oracle, or on the hot set +
 * cold stream removes less than 60% of FIFO's avoidable faults.
 */
#include <stdio.h>

#include "reclaim_sim.h"

#define NO_LIMIT 8192

/*
 * A limit of n shadow pages in host frames: two each, and the bookkeeping
 * pages this workload needs for that many (measured: about 1 in 10).
 */
static u64 frames(u64 pages)
{
	return pages * SHADOW_PAGE_FRAMES + pages / 8;
}

static const char *name(enum shadow_reclaim_policy p)
{
	return p == SHADOW_RECLAIM_CALLER ? "lru" : shadow_reclaim_policy_name(p);
}

/* One workload at 25, 10 and 5% cold; claim_removed: hold CLOCK to the 60% too. */
static int run(const char *title, const struct sim_workload *work, bool claim_removed)
{
	static const u32 cold[] = { 25, 10, 5 };
	static const u64 limits[] = { 64, 128 };	/* shadow pages' worth of frames */
	static const enum shadow_reclaim_policy policies[] = {
		SHADOW_RECLAIM_FIFO, SHADOW_RECLAIM_CLOCK, SHADOW_RECLAIM_CALLER,
	};
	int bad = 0;

	printf("\n%s: %u hot spaces x %u page tables of %u pages%s + a global kernel part "
	       "(%u tables), cold spaces%s, %u runs of %u accesses\n", title, work->hot_spaces,
	       work->tables_per_space, work->pages_per_table ? work->pages_per_table : 8,
	       work->shared_percent ? " + a shared one" : "", work->kernel_tables,
	       work->cold_once ? " used once" : " revisited in turn", work->runs,
	       work->accesses_per_run);
	printf("%5s %5s %-6s %8s %9s %10s %8s %8s\n", "cold%", "limit", "policy", "faults",
	       "evictions", "exam/evict", "x/fifo", "removed");
	for (unsigned c = 0; c < sizeof(cold) / sizeof(cold[0]); c++) {
		struct sim_workload w = *work;
		struct sim_result base;

		w.cold_percent = cold[c];
		sim_workload(&w, NO_LIMIT, SHADOW_RECLAIM_CLOCK, &base);
		printf("%5u %5s %-6s %8llu %9llu\n", cold[c], "none", "-",
		       (unsigned long long)base.faults, (unsigned long long)base.evictions);
		bad |= base.errors || base.no_memory || base.evictions;
		for (unsigned l = 0; l < 2; l++) {
			struct sim_result r[3];
			double ratio[3], removed[3];

			for (unsigned p = 0; p < 3; p++) {
				struct sim_result *x = &r[p];

				sim_workload(&w, frames(limits[l]), policies[p], x);
				ratio[p] = (double)x->faults / r[0].faults;
				removed[p] = r[0].faults > base.faults ?
					     ((double)r[0].faults - (double)x->faults) /
					     ((double)r[0].faults - (double)base.faults) : 0;
				printf("%5u %5llu %-6s %8llu %9llu %10.2f %8.2f %7.0f%%\n", cold[c],
				       (unsigned long long)limits[l], name(policies[p]),
				       (unsigned long long)x->faults,
				       (unsigned long long)x->evictions,
				       x->evictions ? (double)x->examined / x->evictions : 0.0,
				       ratio[p], 100 * removed[p]);
				if (x->errors || x->no_memory) {
					printf("  FAIL: %llu errors, %llu refused faults\n",
					       (unsigned long long)x->errors,
					       (unsigned long long)x->no_memory);
					bad = 1;
				}
			}
			/* The ration: the limit + 2.75 looks per eviction (SHADOW_SCAN_RATE). */
			if (4 * r[1].examined > 4 * frames(limits[l]) / SHADOW_PAGE_FRAMES +
						SHADOW_SCAN_RATE * r[1].evictions ||
			    (claim_removed && r[1].examined > 3 * r[1].evictions)) {
				printf("  FAIL: clock examines more than 3 pages per eviction\n");
				bad = 1;
			}
			if (claim_removed && removed[1] < 0.60) {
				printf("  FAIL: clock removes less than 60%% of fifo's avoidable faults\n");
				bad = 1;
			}
			if (ratio[1] > ratio[2] + 0.05) {
				printf("  FAIL: clock is more than 0.05 from the lru oracle\n");
				bad = 1;
			}
		}
	}
	return bad;
}

int main(void)
{
	int bad;

	printf("CPU: %u-entry TLB, %u-entry PDE cache; avoidable faults: above the run without "
	       "a limit\n", SIM_TLB_DEFAULT, SIM_PDE_DEFAULT);
	bad = run("hot set + cold stream (hotcold's shape)", &sim_hotcold_workload, true);
	/* The tests' workload: a 52-page hot set that barely fits 64, cold spaces
	 * coming back; 60% is beyond even the oracle at 25% cold: not claimed. */
	bad |= run("dense hot set", &sim_bench_workload, false);
	return bad;
}
