/*
 * Shadow memory limits and reclaim. Every host frame a guest's shadow MMU
 * holds (its shadow pages, two frames each, and the bookkeeping pages of
 * descriptors, parent lists and reverse map) is charged to one struct
 * shadow_pool (a global limit, shadow_pool=N) and to the guest's own limit
 * (shadow_pages=N), both in frames (account.h). Counters are exact atomics,
 * readable in O(1) without any guest's lock. A fault first reserves its
 * worst case, evicting this guest's least recently used pages when it is at
 * its limit, or taking frames from the guest that can spare them most when
 * the pool is short; then the fault cannot fail half way.
 *
 * Policies: CLOCK (default; "used" = the A bits the CPU sets in the parent
 * sptes, tested and cleared at scan time, plus a software bit) and FIFO by
 * creation (KVM's historical behaviour, kept as the baseline).
 *
 * Locking: functions taking an mmu need that guest's lock, as every shadow_*
 * call does; shadow_pool_reclaim() takes other guests' locks through the
 * pool's trylock callback. Attach and detach change the pool's guest list:
 * callers make sure no reclaim runs meanwhile (guest creation/teardown).
 */
#ifndef SHADOW_RECLAIM_H
#define SHADOW_RECLAIM_H

#include "shadow/account.h"

enum shadow_reclaim_policy {
	SHADOW_RECLAIM_CLOCK,	/* probation, then second chance, from parent-spte A bits;
				 * leaves first */
	SHADOW_RECLAIM_FIFO,	/* oldest created first (reclaim=fifo) */
	SHADOW_RECLAIM_CALLER,	/* rc.pick chooses (tests: an LRU oracle that sees every use) */
};

#define SHADOW_MIN_FRAMES 128	/* smallest per-guest limit: KVM's minimum of 64 shadow pages */
#define SHADOW_DEFAULT_PERMILLE 40	/* default limit: 4% of guest RAM in frames, i.e. KVM's 2%
					 * of shadow pages at two frames each */
#define SHADOW_BOOKKEEPING_FRAMES 3	/* reserved per fault: a new descriptor, parent-list
					 * and reverse-map page at worst */
#define SHADOW_SCAN_RATE 11	/* CLOCK: looks per eviction, in quarters (2.75) */
#define SHADOW_SCAN_MAX 16	/* CLOCK: pages examined at most for one eviction */
#define SHADOW_PROBATION_SHARE 4	/* CLOCK: 1/4 of the limit is kept for probation */
#define SHADOW_LEAF_FIRST_DIV 4	/* CLOCK: a leaf before a directory up to limit/4 joins older */
#define SHADOW_RECLAIM_BATCH 16	/* extra frames a global reclaim frees, to amortise it */


/* An empty pool of limit frames; set trylock/unlock afterwards if needed. */
void shadow_pool_init(struct shadow_pool *pool, u64 limit);
/* Default shadow_pages (frames) for a guest of ram_pages 4 KiB pages. */
u64 shadow_default_limit(u64 ram_pages);
/*
 * Charge mmu's frames to pool from now on, with a limit in frames (raised
 * to SHADOW_MIN_FRAMES) and a policy. Call after shadow_init(), before
 * shadow_vcpu_init(). False if the pool has no room for another guest.
 * shadow_destroy() detaches the guest.
 */
bool shadow_pool_attach(struct shadow_pool *pool, struct shadow_mmu *mmu, u64 limit,
			enum shadow_reclaim_policy policy);
void shadow_pool_detach(struct shadow_mmu *mmu);
/* Change a guest's limit (raised to SHADOW_MIN_FRAMES); evicts down to it at once. */
void shadow_set_limit(struct shadow_mmu *mmu, u64 limit);

/*
 * Make sure pages shadow pages (and their bookkeeping) can be created
 * without failing: evicts from
 * this guest while it is at its limit, runs shadow_pool_reclaim() when the
 * pool is short. False when that cannot be done now (nothing changed; the
 * guest should wait for pages or be stopped). shadow_page_fault() and CR3
 * loads call it themselves; shadow_unreserve() gives back what is left.
 */
bool shadow_reserve(struct shadow_mmu *mmu, u32 pages);
void shadow_unreserve(struct shadow_mmu *mmu);

/* Evict up to pages of this guest with its policy; returns how many went. */
u64 shadow_evict(struct shadow_mmu *mmu, u64 pages);
/*
 * Global reclaim (a shrinker): free frames from the guests furthest above
 * their fair share of the pool (pool limit split in proportion to their
 * limits), chosen from the O(1) counters; only the donors are locked and
 * scanned. self is the guest whose lock the caller holds (or NULL).
 * Returns the frames freed.
 */
u64 shadow_pool_reclaim(struct shadow_pool *pool, u64 frames, struct shadow_mmu *self);

const char *shadow_reclaim_policy_name(enum shadow_reclaim_policy policy);

/* May sp be evicted now (not a running root, nor a directory under a running PAE root)? */
bool shadow_page_evictable(struct shadow_mmu *mmu, struct shadow_page *sp);

#endif
