/*
 * Reclaim benchmark: the same synthetic workload (tests/unit/reclaim_sim.c:
 * hot address spaces sharing a global kernel part, plus a stream of cold
 * ones) on the real shadow MMU and a CPU whose TLB and PDE cache hide
 * accessed bits (sim_cpu.h), under CLOCK and FIFO, at limits of 64 and 128 shadow
 * pages. Prints shadow faults, pages created and zapped, pages examined per
 * eviction, and CLOCK/FIFO faults. Exits non-zero if CLOCK does not fault
 * clearly less (at least 15% fewer faults than FIFO), examines more than 4
 * pages per eviction on average, or any translation was wrong.
 */
#include <stdio.h>

#include "reclaim_sim.h"

int main(void)
{
	static const u64 limits[] = { 64, 128 };
	static const enum shadow_reclaim_policy policies[] = {
		SHADOW_RECLAIM_FIFO, SHADOW_RECLAIM_CLOCK,
	};
	const struct sim_workload *w = &sim_bench_workload;
	int bad = 0;

	printf("workload: %u hot spaces x %u page tables + shared kernel (%u tables), "
	       "%u cold spaces taking %u%% of %u runs, %u accesses per run\n",
	       w->hot_spaces, w->tables_per_space, w->kernel_tables, w->cold_spaces,
	       w->cold_percent, w->runs, w->accesses_per_run);
	printf("%-6s %5s %8s %8s %8s %9s %10s %11s\n", "policy", "limit", "faults", "created",
	       "zapped", "evictions", "exam/evict", "clock/fifo");
	for (unsigned l = 0; l < 2; l++) {
		struct sim_result r[2];

		for (unsigned p = 0; p < 2; p++) {
			struct sim_result *x = &r[p];

			sim_workload(w, limits[l], policies[p], x);
			printf("%-6s %5llu %8llu %8llu %8llu %9llu %10.2f",
			       shadow_reclaim_policy_name(policies[p]),
			       (unsigned long long)limits[l], (unsigned long long)x->faults,
			       (unsigned long long)x->created, (unsigned long long)x->zapped,
			       (unsigned long long)x->evictions,
			       x->evictions ? (double)x->examined / x->evictions : 0.0);
			if (p == 1)
				printf(" %11.2f", (double)r[1].faults / r[0].faults);
			printf("\n");
			if (x->errors || x->no_memory) {
				printf("  %llu errors, %llu refused faults\n",
				       (unsigned long long)x->errors,
				       (unsigned long long)x->no_memory);
				bad = 1;
			}
		}
		if (r[1].faults * 100 > r[0].faults * 85) {
			printf("  FAIL: clock does not fault clearly less than fifo\n");
			bad = 1;
		}
		if (r[1].examined > 4 * r[1].evictions) {
			printf("  FAIL: clock examines too many pages per eviction\n");
			bad = 1;
		}
	}
	return bad;
}
