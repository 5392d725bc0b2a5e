/*
 * Shadow page accounting (see account.h): exact atomic counters per guest,
 * per level and for the pool, charged when spage.c creates a page and
 * uncharged when it frees one. Below spage.c and reclaim.c: it only counts.
 */
#include "shadow/account.h"

/* Take n pages of the pool, all or none. */
bool account_pool_charge(struct shadow_pool *pool, u64 n)
{
	u64 old = counter_load(&pool->charged);

	do {
		if (old + n > counter_load(&pool->limit))
			return false;
	} while (!__atomic_compare_exchange_n(&pool->charged, &old, old + n, false,
					      __ATOMIC_RELAXED, __ATOMIC_RELAXED));
	return true;
}

static void count_frames(struct shadow_mmu *mmu, s64 delta)
{
	counter_add(&mmu->rc.used, delta);
	if (mmu->rc.pool)
		counter_add(&mmu->rc.pool->in_use, delta);
}

static void count_page(struct shadow_mmu *mmu, int level, s64 delta)
{
	struct shadow_pool *pool = mmu->rc.pool;

	counter_add(&mmu->rc.pages, delta);
	counter_add(&mmu->stats.pages_in_use[level], delta);
	if (pool) {
		counter_add(&pool->pages, delta);
		counter_add(&pool->in_use_level[level], delta);
	}
}

bool account_charge_frames(struct shadow_mmu *mmu, u64 n)
{
	struct shadow_mmu_reclaim *rc = &mmu->rc;
	u64 from_reserve = rc->reserved < n ? rc->reserved : n, more = n - from_reserve;

	/* Beyond the reservation: only within both limits, never reclaiming here
	 * (the caller may hold pointers to pages a reclaim would free). */
	if (more && rc->pool &&
	    (counter_load(&rc->used) + rc->reserved + more > counter_load(&rc->limit) ||
	     !account_pool_charge(rc->pool, more)))
		return false;
	rc->reserved -= from_reserve;	/* already charged to the pool */
	count_frames(mmu, (s64)n);
	return true;
}

void account_uncharge_frames(struct shadow_mmu *mmu, u64 n)
{
	count_frames(mmu, -(s64)n);
	if (mmu->rc.pool)
		counter_add(&mmu->rc.pool->charged, -(s64)n);
}

bool account_charge(struct shadow_mmu *mmu, int level)
{
	if (!account_charge_frames(mmu, SHADOW_PAGE_FRAMES))
		return false;
	count_page(mmu, level, 1);
	return true;
}

void account_uncharge(struct shadow_mmu *mmu, int level)
{
	count_page(mmu, level, -1);
	account_uncharge_frames(mmu, SHADOW_PAGE_FRAMES);
}

u64 shadow_pool_pages(const struct shadow_pool *pool, int level)
{
	return level ? counter_load(&pool->in_use_level[level]) : counter_load(&pool->pages);
}

u64 shadow_pool_frames(const struct shadow_pool *pool)
{
	return counter_load(&pool->in_use);
}

u64 shadow_mmu_pages(const struct shadow_mmu *mmu, int level)
{
	return level ? counter_load(&mmu->stats.pages_in_use[level]) : counter_load(&mmu->rc.pages);
}

u64 shadow_mmu_frames(const struct shadow_mmu *mmu)
{
	return counter_load(&mmu->rc.used);
}

u64 shadow_mmu_limit(const struct shadow_mmu *mmu)
{
	return counter_load(&mmu->rc.limit);
}
