/*
 * Flood-detection benchmark: guest page-table write patterns (memset of a
 * table, clear_bit, fork, exit, a table that becomes data, a data page
 * rewritten, fault-around) on the real shadow MMU with the simulated CPU of
 * tests/unit/flood_sim.c (its TLB and PDE cache hide accessed bits), flood detection on and off. Prints per pattern the
 * emulated writes, shadow faults, exits (their sum), frames unshadowed,
 * false positives and the use tests made (found used, not judged yet).
 * Live patterns run a third time with upkeep writes counted, so that the
 * use test (A bits under the simulated TLB) decides, not the content
 * shortcut. Exits non-zero if a translation was wrong, a live table was
 * unshadowed in either mode, the use test never found a live table used,
 * or the detector does not cut exits by half where a dead table or a data
 * page is written.
 */
#include <stdio.h>

#include "flood_sim.h"

static unsigned long long ull(u64 v)
{
	return (unsigned long long)v;
}

static void row(const char *name, const char *mode, const struct fsim_counts *c)
{
	printf("%-20s %-7s | %8llu %8llu %9llu | %4llu %3llu | %6llu %5llu %5llu\n", name, mode,
	       ull(c->emulated), ull(c->faults), ull(c->emulated + c->faults), ull(c->unshadowed),
	       ull(c->false_positives), ull(c->checks), ull(c->kept), ull(c->deferred));
}

static bool check(bool ok, const char *what)
{
	if (!ok)
		printf("  FAIL: %s\n", what);
	return ok;
}

int main(void)
{
	int bad = 0;

	printf("modes: off; on; counted = on with upkeep writes counted (the use test decides)\n");
	printf("%-20s %-7s | %8s %8s %9s | %4s %3s | %6s %5s %5s\n", "pattern", "mode", "emulated",
	       "faults", "exits", "unsh", "fp", "checks", "kept", "wait");
	for (unsigned i = 0; i < fsim_npatterns; i++) {
		const struct fsim_pattern *p = &fsim_patterns[i];
		struct fsim_counts off, on, counted;
		u64 off_exits, on_exits;

		fsim_run_pattern(p, FSIM_FLOOD_OFF, &off);
		fsim_run_pattern(p, FSIM_FLOOD_ON, &on);
		row(p->name, "off", &off);
		row("", "on", &on);
		off_exits = off.emulated + off.faults;
		on_exits = on.emulated + on.faults;
		bad |= !check(!off.errors && !on.errors, "a wrong translation or a failed audit");
		bad |= !check(!off.unshadowed, "flood=off unshadowed");
		if (!p->live) {
			bad |= !check(2 * on_exits <= off_exits, "the detector does not halve the exits");
			continue;
		}
		fsim_run_pattern(p, FSIM_FLOOD_COUNT_UPKEEP, &counted);
		row("", "counted", &counted);
		bad |= !check(!counted.errors, "a wrong translation or a failed audit (counted)");
		bad |= !check(!on.unshadowed && !on.false_positives && !counted.unshadowed &&
			      !counted.false_positives, "a live table was unshadowed");
		bad |= !check(counted.kept > 0, "the use test never found the live table used");
		bad |= !check(on_exits <= off_exits, "the detector costs exits on a live table");
	}
	return bad;
}
