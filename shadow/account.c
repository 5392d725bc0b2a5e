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

static void count_page(struct shadow_mmu *mmu, int level, s64 delta)
{
	struct shadow_pool *pool = mmu->rc.pool;

	counter_add(&mmu->rc.used, delta);
	counter_add(&mmu->stats.pages_in_use[level], delta);
	if (pool) {
		counter_add(&pool->in_use, delta);
		counter_add(&pool->in_use_level[level], delta);
	}
}

bool account_charge(struct shadow_mmu *mmu, int level)
{
	struct shadow_mmu_reclaim *rc = &mmu->rc;

	if (rc->reserved) {
		rc->reserved--;		/* already charged to the pool */
	} else if (rc->pool) {
		/* Unreserved creation: only within both limits, never reclaiming here
		 * (the caller may hold pointers to pages a reclaim would free). */
		if (counter_load(&rc->used) >= counter_load(&rc->limit) || !account_pool_charge(rc->pool, 1))
			return false;
	}
	count_page(mmu, level, 1);
	return true;
}

void account_uncharge(struct shadow_mmu *mmu, int level)
{
	count_page(mmu, level, -1);
	if (mmu->rc.pool)
		counter_add(&mmu->rc.pool->charged, -1);
}

u64 shadow_pool_pages(const struct shadow_pool *pool, int level)
{
	return level ? counter_load(&pool->in_use_level[level]) : counter_load(&pool->in_use);
}

u64 shadow_mmu_pages(const struct shadow_mmu *mmu, int level)
{
	return level ? counter_load(&mmu->stats.pages_in_use[level]) : counter_load(&mmu->rc.used);
}

u64 shadow_mmu_limit(const struct shadow_mmu *mmu)
{
	return counter_load(&mmu->rc.limit);
}
