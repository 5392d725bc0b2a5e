/*
 * Global reclaim with many guests and several CPUs (issue 20, item 5), on
 * the simulated machine of reclaim_sim.c and the real shadow/ code. N guests
 * share a pool too small for their hot sets; CPUs are modelled by the guests
 * that hold their locks: in each slice one guest runs here and the C-1 guests
 * after it in turn run on the other CPUs, so the pool's trylock refuses them,
 * as vmx/mmu_shadow.c's does for a guest running elsewhere.
 *
 * Prints per N and C: reclaims, evictions, trylocks, locks taken and refused
 * per reclaim, and the locks the O(1) counters took for 10,000 queries.
 * Exits non-zero if a translation was wrong, a lock was taken on a running
 * guest or on the reclaiming guest itself, a lock was not released, a lock
 * bought less than one eviction on average, a running guest lost pages, or
 * a count query took a lock. (A reclaim may lock the same donor again in a
 * later round of its loop: each round takes only down to the donor's fair
 * share, so a lock is paid per batch of evictions, never per page looked at.)
 */
#include <stdio.h>
#include <string.h>

#include "reclaim_sim.h"

#define SLICES 1200
#define RUNS_PER_SLICE 3
#define POOL_FRAMES_PER_GUEST 64	/* hot set: about 104 frames each */
#define QUERIES 10000

static struct shadow_pool pool;
static bool running[SIM_MAX_GUESTS];	/* on another CPU: its lock is held there */
static int self = -1;			/* the guest this CPU runs */
static struct {
	u64 trylocks, taken, refused, unlocks, bad_self;
} c;

static int index_of(struct shadow_mmu *mmu)
{
	return (int)((struct sim_guest *)mmu->host - sim_guests);
}

static bool bench_trylock(struct shadow_pool *p, struct shadow_mmu *mmu)
{
	int i = index_of(mmu);

	c.trylocks++;
	c.bad_self += i == self;
	if (running[i]) {
		c.refused++;
		return false;
	}
	(void)p;
	c.taken++;
	return true;
}

static void bench_unlock(struct shadow_pool *p, struct shadow_mmu *mmu)
{
	(void)p;
	(void)mmu;
	c.unlocks++;
}

/* Frames held by the guests running elsewhere: a reclaim must not take any. */
static u64 running_frames(int n)
{
	u64 sum = 0;

	for (int i = 0; i < n; i++)
		if (running[i])
			sum += shadow_mmu_frames(&sim_guests[i].mmu);
	return sum;
}

static int run(int guests, int cpus)
{
	struct sim_workload w = sim_bench_workload;
	struct sim_result r;
	u64 errors = 0, no_memory = 0, evictions = 0, reclaims, lost = 0, query_locks, sum = 0;
	int bad = 0;

	sim_reset();
	memset(&c, 0, sizeof(c));
	shadow_pool_init(&pool, (u64)guests * POOL_FRAMES_PER_GUEST);
	pool.trylock = bench_trylock;
	pool.unlock = bench_unlock;
	for (int i = 0; i < guests; i++) {
		if (!sim_guest_init(i, &pool, 512, SHADOW_RECLAIM_CLOCK)) {
			printf("  FAIL: guest %d not attached\n", i);
			return 1;
		}
		sim_workload_setup(&sim_guests[i], &w);
	}
	w.runs = RUNS_PER_SLICE;
	for (int k = 0; k < SLICES; k++) {
		u64 before;

		self = k % guests;
		memset(running, 0, sizeof(running));
		for (int j = 1; j < cpus; j++)
			running[(self + j) % guests] = true;
		before = running_frames(guests);
		w.seed = sim_bench_workload.seed + (u64)k;
		sim_workload_run(&sim_guests[self], &w, &r);
		errors += r.errors;
		no_memory += r.no_memory;
		lost += before > running_frames(guests) ? before - running_frames(guests) : 0;
	}
	self = -1;
	memset(running, 0, sizeof(running));
	for (int i = 0; i < guests; i++) {
		evictions += sim_guests[i].mmu.stats.evictions;
		errors += sim_guests[i].over_limit;
	}
	reclaims = counter_load(&pool.reclaims);
	/* The counters every reclaim chooses donors from, and the report reads. */
	query_locks = c.trylocks;
	for (int q = 0; q < QUERIES; q++)
		sum += shadow_pool_frames(&pool) + shadow_mmu_frames(&sim_guests[q % guests].mmu);
	query_locks = c.trylocks - query_locks;
	printf("%6d %4d %8llu %9llu %9.2f %9.2f %9.2f %9.2f %8llu %6llu\n", guests, cpus,
	       (unsigned long long)reclaims, (unsigned long long)evictions,
	       reclaims ? (double)c.trylocks / reclaims : 0, reclaims ? (double)c.taken / reclaims : 0,
	       reclaims ? (double)c.refused / reclaims : 0,
	       c.taken ? (double)evictions / c.taken : 0, (unsigned long long)no_memory,
	       (unsigned long long)query_locks);
	for (int i = 0; i < guests; i++)
		sim_guest_destroy(i);
	(void)sum;
	if (errors || sim_host_frames_used) {
		printf("  FAIL: %llu wrong translations or frames left over\n",
		       (unsigned long long)errors);
		bad = 1;
	}
	if (c.bad_self || c.taken != c.unlocks || evictions < c.taken) {
		printf("  FAIL: locks: %llu on itself, %llu taken vs %llu released, %llu evictions\n",
		       (unsigned long long)c.bad_self, (unsigned long long)c.taken,
		       (unsigned long long)c.unlocks, (unsigned long long)evictions);
		bad = 1;
	}
	if (lost) {
		printf("  FAIL: guests running elsewhere lost %llu frames\n", (unsigned long long)lost);
		bad = 1;
	}
	if (query_locks) {
		printf("  FAIL: count queries took %llu locks\n", (unsigned long long)query_locks);
		bad = 1;
	}
	if (!reclaims) {
		printf("  FAIL: no global reclaim happened: the pool is not short\n");
		bad = 1;
	}
	return bad;
}

int main(void)
{
	static const int guests[] = { 4, 8, 16 };
	static const int cpus[] = { 1, 2, 4 };
	int bad = 0;

	printf("global reclaim: guests x CPUs, pool %u frames per guest, %u slices of %u runs\n",
	       POOL_FRAMES_PER_GUEST, SLICES, RUNS_PER_SLICE);
	printf("%6s %4s %8s %9s %9s %9s %9s %9s %8s %6s\n", "guests", "cpus", "reclaims",
	       "evictions", "try/recl", "lock/recl", "busy/recl", "evict/lock", "waits",
	       "q-lock");
	for (unsigned g = 0; g < sizeof(guests) / sizeof(guests[0]); g++)
		for (unsigned k = 0; k < sizeof(cpus) / sizeof(cpus[0]); k++)
			bad |= run(guests[g], cpus[k]);
	printf("%s\n", bad ? "FAIL" : "PASS: every lock paired, never a running guest's or "
	       "its own, at least one eviction per lock; counting takes no lock");
	return bad;
}
