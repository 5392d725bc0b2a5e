/*
 * Flood-detection benchmark: guest page-table write patterns (memset of a
 * table, clear_bit, fork, exit, a table that becomes data, a data page
 * rewritten, fault-around) on the real shadow MMU with the simulated CPU of
 * tests/unit/flood_sim.c (its TLB and PDE cache hide accessed bits), flood detection on and off. Prints per pattern the
 * emulated writes, shadow faults, exits (their sum), frames unshadowed and
 * false positives. Exits non-zero if a translation was wrong, a live table
 * was unshadowed, or the detector does not cut exits by half where a dead
 * table or a data page is written.
 */
#include <stdio.h>

#include "flood_sim.h"

static unsigned long long ull(u64 v)
{
	return (unsigned long long)v;
}

int main(void)
{
	int bad = 0;

	printf("%-20s | %27s | %36s\n", "", "flood=off", "flood=on");
	printf("%-20s | %8s %8s %9s | %8s %8s %9s %4s %3s\n", "pattern", "emulated", "faults",
	       "exits", "emulated", "faults", "exits", "unsh", "fp");
	for (unsigned i = 0; i < fsim_npatterns; i++) {
		const struct fsim_pattern *p = &fsim_patterns[i];
		struct fsim_counts off, on;

		fsim_run_pattern(p, false, &off);
		fsim_run_pattern(p, true, &on);
		printf("%-20s | %8llu %8llu %9llu | %8llu %8llu %9llu %4llu %3llu\n", p->name,
		       ull(off.emulated), ull(off.faults), ull(off.emulated + off.faults),
		       ull(on.emulated), ull(on.faults), ull(on.emulated + on.faults),
		       ull(on.unshadowed), ull(on.false_positives));
		if (off.errors || on.errors) {
			printf("  FAIL: %llu/%llu errors (off/on)\n", ull(off.errors), ull(on.errors));
			bad = 1;
		}
		if (off.unshadowed) {
			printf("  FAIL: flood=off unshadowed\n");
			bad = 1;
		}
		if (p->live && (on.unshadowed || on.false_positives)) {
			printf("  FAIL: a live table was unshadowed\n");
			bad = 1;
		}
		if (p->live && on.emulated + on.faults > off.emulated + off.faults) {
			printf("  FAIL: the detector costs exits on a live table\n");
			bad = 1;
		}
		if (!p->live && 2 * (on.emulated + on.faults) > off.emulated + off.faults) {
			printf("  FAIL: the detector does not halve the exits\n");
			bad = 1;
		}
	}
	return bad;
}
