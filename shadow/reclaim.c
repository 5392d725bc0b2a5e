/*
 * Shadow page reclaim (see reclaim.h): reservation before a fault; the
 * CLOCK and FIFO eviction policies; global reclaim from the guest furthest
 * above its fair share.
 *
 * Why CLOCK over parent sptes: the CPU sets A in the shadow entry that
 * points at a table every time it walks through it, so "was this table
 * used since the last look?" costs a read of its parent sptes (usually
 * one), not of its 512 entries, and needs no fault (reference notes 5.1).
 * A paging-structure cache may let the CPU skip setting A for a while, so a
 * hot table can look cold: that costs a refault, never correctness.
 */
#include <string.h>

#include "shadow/reclaim.h"
#include "shadow/spage.h"
#include "shadow/account.h"

const char *shadow_reclaim_policy_name(enum shadow_reclaim_policy policy)
{
	return policy == SHADOW_RECLAIM_FIFO ? "fifo" : "clock";
}

/* ---- what may not be evicted ------------------------------------------- */

struct pae_parent_check {
	const struct shadow_mmu *mmu;
	bool in_use;
};

static void check_pae_parent(u64 *spte, void *arg)
{
	struct pae_parent_check *c = arg;

	for (int i = 0; i < SHADOW_ROOT_CACHE; i++) {
		const struct shadow_page *root = c->mmu->root_cache[i];

		if (root && root->role.pae_root && spte >= root->spt &&
		    spte < root->spt + PT_ENTRIES && sp_root_running(c->mmu, root))
			c->in_use = true;
	}
}

/*
 * Never evict a root a vCPU runs on (zapping it only empties it), nor a
 * page directory under a running PAE root: PDPTEs have no A bit (SDM
 * 4.4.1), so those four tables are part of the root (as in Xen).
 */
static bool pinned(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	struct pae_parent_check c = { mmu, false };

	if (sp_root_running(mmu, sp))
		return true;
	if (sp->role.level == 2)
		sp_for_each_parent(sp, check_pae_parent, &c);
	return c.in_use;
}

/* ---- policies ---------------------------------------------------------- */

/* The page after sp in creation order, wrapping around: the CLOCK face. */
static struct shadow_page *clock_next(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	return sp && sp->newer ? sp->newer : mmu->oldest;
}

/*
 * Second chance: examine pages from the hand, testing and clearing each
 * one's accessed state, and take the first cold one. When both are cold a
 * leaf table goes before a directory (losing a directory unlinks all its
 * children until faults relink them): after a cold directory the scan
 * looks SHADOW_LEAF_LOOKAHEAD pages further for a cold leaf, and if it
 * finds one the directory is only deferred to the next eviction. Looking
 * further would slow down every eviction and speed up the hand, which
 * costs hot pages their second chance (measured: tests/unit/bench_reclaim).
 * At most SHADOW_SCAN_MAX pages are examined: if all are hot, the first
 * hot leaf (else directory) goes anyway.
 */
static struct shadow_page *pick_clock(struct shadow_mmu *mmu, u64 *examined)
{
	struct shadow_page *sp = mmu->rc.hand ? mmu->rc.hand : mmu->oldest;
	struct shadow_page *cold_dir = mmu->rc.deferred, *hot_leaf = NULL, *hot_dir = NULL;
	u64 budget = counter_load(&mmu->rc.used), lookahead = SHADOW_LEAF_LOOKAHEAD;

	mmu->rc.deferred = NULL;
	if (cold_dir) {
		(*examined)++;
		if (!pinned(mmu, cold_dir) && !shadow_page_test_and_clear_accessed(mmu, cold_dir))
			return cold_dir;
		cold_dir = NULL;	/* used meanwhile: it stays */
	}
	if (budget > SHADOW_SCAN_MAX)
		budget = SHADOW_SCAN_MAX;
	for (; sp && budget && !(cold_dir && !lookahead--); budget--) {
		struct shadow_page *cur = sp;
		bool leaf = sp_is_leaf_table(cur), used;

		(*examined)++;
		sp = clock_next(mmu, cur);
		mmu->rc.hand = sp;
		if (pinned(mmu, cur))
			continue;
		used = shadow_page_test_and_clear_accessed(mmu, cur);
		if (!used && leaf) {
			mmu->rc.deferred = cold_dir;
			return cur;
		}
		if (!used && !cold_dir)
			cold_dir = cur;
		if (used && leaf && !hot_leaf)
			hot_leaf = cur;
		if (used && !leaf && !hot_dir)
			hot_dir = cur;
	}
	if (cold_dir) {
		/*
		 * Resume right after it: the page looked ahead at is seen again
		 * next time. It is usually the next directory of the same dead
		 * address space; the benchmark faults ~6% less this way.
		 */
		mmu->rc.hand = clock_next(mmu, cold_dir);
		return cold_dir;
	}
	return hot_leaf ? hot_leaf : hot_dir;
}

/* KVM's order: the oldest page that may go. */
static struct shadow_page *pick_fifo(struct shadow_mmu *mmu, u64 *examined)
{
	for (struct shadow_page *sp = mmu->oldest; sp; sp = sp->newer) {
		(*examined)++;
		if (!pinned(mmu, sp))
			return sp;
	}
	return NULL;
}

/* Unpin a cached (not running) root so that zapping it frees it. */
static void root_cache_drop(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	for (int i = 0; i < SHADOW_ROOT_CACHE; i++) {
		if (mmu->root_cache[i] != sp)
			continue;
		memmove(&mmu->root_cache[i], &mmu->root_cache[i + 1],
			(SHADOW_ROOT_CACHE - 1 - i) * sizeof(mmu->root_cache[0]));
		mmu->root_cache[SHADOW_ROOT_CACHE - 1] = NULL;
		sp_unpin(sp);
		return;
	}
}

u64 shadow_evict(struct shadow_mmu *mmu, u64 pages)
{
	u64 done = 0;

	while (done < pages) {
		u64 examined = 0;
		struct shadow_page *sp = mmu->rc.policy == SHADOW_RECLAIM_FIFO ?
					 pick_fifo(mmu, &examined) : pick_clock(mmu, &examined);

		mmu->stats.evict_examined += examined;
		if (!sp)
			break;
		/*
		 * sp_zap() unlinks the page from its parents and its children; a
		 * child keeps its own shadow (a later fault relinks it) and, if the
		 * dropped link had A set, counts as recently used (spage.c).
		 */
		root_cache_drop(mmu, sp);
		sp_zap(mmu, sp);
		mmu->stats.evictions++;
		done++;
	}
	sp_commit_zap(mmu);	/* one guest-wide flush for the batch */
	return done;
}

/* ---- reservation ------------------------------------------------------- */

bool shadow_reserve(struct shadow_mmu *mmu, u32 pages)
{
	struct shadow_mmu_reclaim *rc = &mmu->rc;
	u64 need, limit = counter_load(&rc->limit);

	if (!rc->pool || rc->reserved >= pages)
		return true;
	need = pages - rc->reserved;
	if (counter_load(&rc->used) + rc->reserved + need > limit)
		shadow_evict(mmu, counter_load(&rc->used) + rc->reserved + need - limit);
	if (counter_load(&rc->used) + rc->reserved + need > limit)
		goto fail;	/* everything left is pinned */
	if (!account_pool_charge(rc->pool, need)) {
		shadow_pool_reclaim(rc->pool, need + SHADOW_RECLAIM_BATCH, mmu);
		if (!account_pool_charge(rc->pool, need))
			goto fail;	/* other guests busy or pinned: wait */
	}
	rc->reserved += need;
	return true;
fail:
	mmu->stats.reserve_failures++;
	return false;
}

void shadow_unreserve(struct shadow_mmu *mmu)
{
	if (mmu->rc.pool && mmu->rc.reserved)
		counter_add(&mmu->rc.pool->charged, -(s64)mmu->rc.reserved);
	mmu->rc.reserved = 0;
}

/* ---- the pool and global reclaim --------------------------------------- */

void shadow_pool_init(struct shadow_pool *pool, u64 limit)
{
	memset(pool, 0, sizeof(*pool));
	pool->limit = limit;
}

u64 shadow_default_limit(u64 ram_pages)
{
	u64 pages = ram_pages * SHADOW_DEFAULT_PERMILLE / 1000;

	return pages < SHADOW_MIN_PAGES ? SHADOW_MIN_PAGES : pages;
}

static u64 clamp_limit(u64 limit)
{
	return limit < SHADOW_MIN_PAGES ? SHADOW_MIN_PAGES : limit;
}

bool shadow_pool_attach(struct shadow_pool *pool, struct shadow_mmu *mmu, u64 limit,
			enum shadow_reclaim_policy policy)
{
	int slot = -1;

	for (int i = 0; i < SHADOW_POOL_MAX_GUESTS && slot < 0; i++)
		if (!pool->guests[i])
			slot = i;
	if (slot < 0 || mmu->rc.pool)
		return false;
	mmu->rc.limit = clamp_limit(limit);
	mmu->rc.policy = policy;
	mmu->rc.pool = pool;
	/* Pages made before attaching are charged now, even above the limit. */
	counter_add(&pool->charged, (s64)mmu->rc.used);
	counter_add(&pool->in_use, (s64)mmu->rc.used);
	for (int level = 1; level <= SHADOW_MAX_LEVEL; level++)
		counter_add(&pool->in_use_level[level], (s64)mmu->stats.pages_in_use[level]);
	counter_add(&pool->sum_limits, (s64)mmu->rc.limit);
	__atomic_store_n(&pool->guests[slot], mmu, __ATOMIC_RELEASE);
	return true;
}

void shadow_pool_detach(struct shadow_mmu *mmu)
{
	struct shadow_pool *pool = mmu->rc.pool;

	if (!pool)
		return;
	shadow_unreserve(mmu);
	for (int i = 0; i < SHADOW_POOL_MAX_GUESTS; i++)
		if (pool->guests[i] == mmu)
			__atomic_store_n(&pool->guests[i], NULL, __ATOMIC_RELEASE);
	counter_add(&pool->sum_limits, -(s64)mmu->rc.limit);
	counter_add(&pool->charged, -(s64)mmu->rc.used);
	counter_add(&pool->in_use, -(s64)mmu->rc.used);
	for (int level = 1; level <= SHADOW_MAX_LEVEL; level++)
		counter_add(&pool->in_use_level[level], -(s64)mmu->stats.pages_in_use[level]);
	mmu->rc.pool = NULL;
}

void shadow_set_limit(struct shadow_mmu *mmu, u64 limit)
{
	u64 old = mmu->rc.limit, used;

	limit = clamp_limit(limit);
	__atomic_store_n(&mmu->rc.limit, limit, __ATOMIC_RELAXED);
	if (mmu->rc.pool)
		counter_add(&mmu->rc.pool->sum_limits, (s64)limit - (s64)old);
	used = counter_load(&mmu->rc.used);
	if (used > limit)
		shadow_evict(mmu, used - limit);
}

/*
 * How far a guest is above its fair share: the pool limit split in
 * proportion to the guests' limits. Only O(1) counters are read.
 */
static s64 excess(const struct shadow_pool *pool, const struct shadow_mmu *mmu)
{
	u64 sum = counter_load(&pool->sum_limits);
	u64 share = sum ? counter_load(&pool->limit) * counter_load(&mmu->rc.limit) / sum : 0;

	return (s64)counter_load(&mmu->rc.used) - (s64)share;
}

u64 shadow_pool_reclaim(struct shadow_pool *pool, u64 pages, struct shadow_mmu *self)
{
	u32 skip = 0;	/* guests found busy or with nothing to give */
	u64 freed = 0;

	while (freed < pages) {
		struct shadow_mmu *donor = NULL;
		s64 best = 0;
		int slot = -1;
		u64 take, got;

		for (int i = 0; i < SHADOW_POOL_MAX_GUESTS; i++) {
			struct shadow_mmu *mmu = __atomic_load_n(&pool->guests[i],
								 __ATOMIC_ACQUIRE);
			s64 e;

			if (!mmu || (skip & (1u << i)) || !counter_load(&mmu->rc.used))
				continue;
			e = excess(pool, mmu);
			if (!donor || e > best) {
				donor = mmu;
				best = e;
				slot = i;
			}
		}
		if (!donor)
			break;
		if (donor != self && pool->trylock && !pool->trylock(pool, donor)) {
			skip |= 1u << slot;
			continue;
		}
		/* No further below its share than needed: at least one page each round. */
		take = pages - freed;
		if (best > 0 && (u64)best < take)
			take = (u64)best;
		if (best <= 0)
			take = 1;
		got = shadow_evict(donor, take);
		if (donor != self && pool->unlock)
			pool->unlock(pool, donor);
		if (!got)
			skip |= 1u << slot;
		freed += got;
	}
	counter_add(&pool->reclaims, 1);
	counter_add(&pool->reclaimed, (s64)freed);
	return freed;
}
