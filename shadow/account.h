/*
 * Shadow memory accounting, in host frames: every frame the shadow MMU
 * holds for a guest is charged to it and to the guests' struct shadow_pool:
 * a shadow page's table and its per-entry bookkeeping (SHADOW_PAGE_FRAMES),
 * and the bookkeeping pages that hold descriptors, parent lists and the
 * reverse map (charged when taken, uncharged when emptied and freed).
 * Shadow pages are also counted, per level. Counters are atomics that
 * anyone may read in O(1) without a guest lock (shadow_pool_reclaim() picks
 * donors from them). Policy (limits, reservation, eviction) is reclaim.h's.
 */
#ifndef SHADOW_ACCOUNT_H
#define SHADOW_ACCOUNT_H

#include "shadow/types.h"

#define SHADOW_POOL_MAX_GUESTS 32
#define SHADOW_PAGE_FRAMES 2	/* a shadow page: its table and its aux page */

struct shadow_pool {
	/* Atomics: read anywhere without locks. */
	u64 limit;		/* host frames all guests together may hold */
	u64 charged;		/* frames in use plus reserved, all guests */
	u64 in_use;		/* frames in use, all guests */
	u64 pages;		/* shadow pages, all guests */
	u64 in_use_level[SHADOW_MAX_LEVEL + 1];	/* shadow pages per level */
	u64 sum_limits;		/* of the attached guests: their fair shares */
	u64 reclaims;		/* shadow_pool_reclaim() runs */
	u64 reclaimed;		/* pages they freed */
	/*
	 * Lock another guest for a global reclaim. Must not spin: the caller
	 * may hold its own guest's lock (false = busy, another guest is
	 * tried). NULL when guests cannot run concurrently (one CPU).
	 */
	bool (*trylock)(struct shadow_pool *pool, struct shadow_mmu *mmu);
	void (*unlock)(struct shadow_pool *pool, struct shadow_mmu *mmu);
	struct shadow_mmu *guests[SHADOW_POOL_MAX_GUESTS];
};

static inline u64 counter_load(const u64 *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

static inline void counter_add(u64 *p, s64 delta)
{
	__atomic_fetch_add(p, (u64)delta, __ATOMIC_RELAXED);
}

/* Take n frames of the pool, all or none. */
bool account_pool_charge(struct shadow_pool *pool, u64 n);
/* n frames are about to be taken: from the reservation, or charged if within
 * both limits. False: do not take them. */
bool account_charge_frames(struct shadow_mmu *mmu, u64 n);
void account_uncharge_frames(struct shadow_mmu *mmu, u64 n);
/* A page of level is about to be created: its SHADOW_PAGE_FRAMES frames
 * charged as above, the page counted. False: do not create it. */
bool account_charge(struct shadow_mmu *mmu, int level);
/* A page of level is gone (or its creation failed after account_charge()). */
void account_uncharge(struct shadow_mmu *mmu, int level);

/* Lock-free reads. Shadow pages (level 0 means all levels), and frames. */
u64 shadow_pool_pages(const struct shadow_pool *pool, int level);
u64 shadow_pool_frames(const struct shadow_pool *pool);
u64 shadow_mmu_pages(const struct shadow_mmu *mmu, int level);
u64 shadow_mmu_frames(const struct shadow_mmu *mmu);
u64 shadow_mmu_limit(const struct shadow_mmu *mmu);

#endif
