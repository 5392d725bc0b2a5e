/*
 * Shadow page reclaim (see reclaim.h): reservation before a fault; the
 * CLOCK and FIFO eviction policies; global reclaim from the guest furthest
 * above its fair share.
 *
 * Why CLOCK over parent sptes: the CPU sets A in the shadow entry that
 * points at a table every time it walks through it, so "was this table
 * used since the last look?" costs a read of its parent sptes (usually
 * one), not of its 512 entries, and needs no fault (reference notes 5.1).
 * A translation or paging-structure cache entry made before A was cleared
 * sets no A when used (SDM 4.10), so every pass ends with a flush
 * (spage.c); a table used only through entries cached since then looks
 * cold until the next pass: that costs a refault, never correctness.
 */
#include <string.h>

#include "shadow/reclaim.h"
#include "shadow/spage.h"
#include "shadow/account.h"

const char *shadow_reclaim_policy_name(enum shadow_reclaim_policy policy)
{
	switch (policy) {
	case SHADOW_RECLAIM_FIFO:
		return "fifo";
	case SHADOW_RECLAIM_CALLER:
		return "caller";
	default:
		return "clock";
	}
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

bool shadow_page_evictable(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	return !pinned(mmu, sp);
}

/* ---- policies ---------------------------------------------------------- */

/*
 * CLOCK with a probation (reference notes 5.1, in the manner of 2Q and
 * CLOCK-Pro). "Used" is the A bit the CPU sets in a page's parent sptes, or
 * the software bit set when a fault walks the page, both tested and
 * cleared by shadow_page_test_and_clear_accessed(); each pass ends with a
 * flush (sp_commit_zap()), so the next use sets A again.
 *
 *  - A new page joins probation (leaves and directories on lists of their
 *    own), oldest first. The walk that created it set its A bit, which says
 *    nothing about reuse: its first look only clears it ("arms" the page)
 *    and sends it to the back. At its next look, a page used since it was
 *    armed is promoted to the HOT list; one not used is evicted.
 *  - The HOT list is a CLOCK: when it holds more than its share (all but
 *    1/SHADOW_PROBATION_SHARE of the limit), its hand clears the A bits of
 *    used pages (second chance) and demotes the first unused one to
 *    probation (armed: its A bits were just cleared).
 *  - Leaves first: a leaf is looked at before a directory, unless the
 *    directory joined probation limit/SHADOW_LEAF_FIRST_DIV joins earlier
 *    (losing a directory unlinks its children until faults relink them;
 *    waiting longer would keep dead directories while live leaves go).
 *
 * A stream of pages used once (processes that run and are gone) thus only
 * passes through probation, while a hot set stays. Looks are rationed (see
 * pick_clock()); with none found cold, the oldest probation page goes.
 */
static bool clock_examine(struct shadow_mmu *mmu, struct shadow_page *sp, u64 *examined)
{
	(*examined)++;
	return shadow_page_test_and_clear_accessed(mmu, sp);
}

static enum shadow_rc_lists probation(const struct shadow_page *sp)
{
	return sp_is_leaf_table(sp) ? SHADOW_RC_PROB_LEAF : SHADOW_RC_PROB_DIR;
}

/* HOT list over its share: the hand demotes one unused page (false: none found in budget). */
static bool clock_demote(struct shadow_mmu *mmu, u64 *examined, u32 *budget)
{
	struct shadow_rc_queue *hot = &mmu->rc.lists[SHADOW_RC_HOT];

	while (*budget && hot->count) {
		struct shadow_page *sp = mmu->rc.hand ? mmu->rc.hand : hot->head;

		(*budget)--;
		mmu->rc.hand = sp->rc_next;
		if (pinned(mmu, sp) || clock_examine(mmu, sp, examined))
			continue;
		sp->rc_armed = mmu->rc.pass;	/* its A bits were just cleared */
		sp_rc_move(mmu, sp, probation(sp));
		return true;
	}
	return false;
}

/* One look at the oldest page of a probation list: true if it is to go. */
static bool clock_probe(struct shadow_mmu *mmu, struct shadow_page *sp, u64 *examined)
{
	bool used;

	if (pinned(mmu, sp)) {
		/* A running root, or a directory under a running PAE root: in use. */
		sp_rc_move(mmu, sp, SHADOW_RC_HOT);
		return false;
	}
	if (sp->rc_armed == mmu->rc.pass) {
		/* Armed in this very pass: the guest has not run since, no verdict. */
		sp_rc_move(mmu, sp, sp->rc_list);
		return false;
	}
	used = clock_examine(mmu, sp, examined);
	if (!sp->rc_armed) {
		sp->rc_armed = mmu->rc.pass;	/* the creating walk's A bit is gone now */
		sp_rc_move(mmu, sp, sp->rc_list);
		return false;
	}
	if (!used)
		return true;
	sp->rc_armed = 0;
	sp_rc_move(mmu, sp, SHADOW_RC_HOT);
	return false;
}

static struct shadow_page *pick_clock(struct shadow_mmu *mmu, u64 *examined)
{
	struct shadow_rc_queue *lists = mmu->rc.lists;
	u64 limit = counter_load(&mmu->rc.limit) / SHADOW_PAGE_FRAMES;	/* in pages */
	u64 hot_max = limit - limit / SHADOW_PROBATION_SHARE;
	u64 leaf_first = limit / SHADOW_LEAF_FIRST_DIV;
	u64 before = *examined;
	struct shadow_page *victim = NULL;
	u32 budget;

	/*
	 * SHADOW_SCAN_RATE quarters of a look per eviction, saved up to one look
	 * per page of the limit (the first pass has every page to arm), at most
	 * SHADOW_SCAN_MAX for one eviction: looks <= limit + 2.75 x evictions,
	 * so <= 3 per eviction on average once 4 x limit pages have gone.
	 */
	mmu->rc.credit += SHADOW_SCAN_RATE;	/* in quarters of a look */
	if (mmu->rc.credit > 4 * (s32)limit)
		mmu->rc.credit = 4 * (s32)limit;
	budget = mmu->rc.credit > 0 ? (u32)mmu->rc.credit / 4 : 0;
	if (budget > SHADOW_SCAN_MAX)
		budget = SHADOW_SCAN_MAX;
	while (budget) {
		struct shadow_page *leaf = lists[SHADOW_RC_PROB_LEAF].head;
		struct shadow_page *dir = lists[SHADOW_RC_PROB_DIR].head;
		bool dir_first = dir && (!leaf || dir->rc_seq + leaf_first < leaf->rc_seq);
		bool looked = false;

		if (lists[SHADOW_RC_HOT].count > hot_max && clock_demote(mmu, examined, &budget))
			continue;
		if (!budget)
			break;
		for (int k = 0; k < 2 && budget; k++) {
			struct shadow_page *sp = (k == 0) == dir_first ? dir : leaf;

			if (!sp)
				continue;
			budget--;
			looked = true;
			if (clock_probe(mmu, sp, examined)) {
				victim = sp;
				goto out;
			}
		}
		if (!looked && !clock_demote(mmu, examined, &budget))
			break;
	}
	/*
	 * Nothing cold within the budget: the oldest probation page armed before
	 * this pass (leaves first), else the HOT page under the hand, else any on
	 * probation. Pages not judged yet are the newest: ones the faulting
	 * instruction may have just built and still needs (taking them first can
	 * livelock it, each of its accesses evicting the other's path).
	 */
	for (int pass = 0; pass < 3 && !victim; pass++) {
		for (int l = SHADOW_RC_PROB_LEAF; l <= SHADOW_RC_HOT && !victim; l++) {
			struct shadow_page *start = lists[l].head;

			if ((pass == 1) != (l == SHADOW_RC_HOT))
				continue;
			if (l == SHADOW_RC_HOT && mmu->rc.hand)
				start = mmu->rc.hand;
			for (struct shadow_page *sp = start; sp && !victim; sp = sp->rc_next)
				if (!pinned(mmu, sp) && (pass != 0 || (sp->rc_armed &&
								      sp->rc_armed != mmu->rc.pass)))
					victim = sp;
			for (struct shadow_page *sp = lists[l].head; sp != start && !victim;
			     sp = sp->rc_next)
				if (!pinned(mmu, sp))
					victim = sp;
		}
	}
out:
	mmu->rc.credit -= 4 * (s32)(*examined - before);
	return victim;
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

	mmu->rc.pass++;	/* CLOCK: pages armed from now on are judged in a later pass */

	while (done < pages) {
		u64 examined = 0;
		struct shadow_page *sp;

		switch (mmu->rc.policy) {
		case SHADOW_RECLAIM_FIFO:
			sp = pick_fifo(mmu, &examined);
			break;
		case SHADOW_RECLAIM_CALLER:
			sp = mmu->rc.pick ? mmu->rc.pick(mmu, &examined) : NULL;
			break;
		default:
			sp = pick_clock(mmu, &examined);
			break;
		}

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
	sp_commit_zap(mmu);	/* one guest-wide flush for the batch (and the cleared A bits) */
	return done;
}

/*
 * Evict until `frames` host frames are given back (a page gives back its
 * SHADOW_PAGE_FRAMES, and the bookkeeping pages it emptied) or nothing more
 * can go. Returns the frames given back.
 */
static u64 evict_frames(struct shadow_mmu *mmu, u64 frames)
{
	u64 freed = 0;

	while (freed < frames) {
		u64 before = counter_load(&mmu->rc.used);

		if (!shadow_evict(mmu, (frames - freed + SHADOW_PAGE_FRAMES - 1) / SHADOW_PAGE_FRAMES) ||
		    counter_load(&mmu->rc.used) >= before)
			break;
		freed += before - counter_load(&mmu->rc.used);
	}
	return freed;
}

/* ---- reservation ------------------------------------------------------- */

bool shadow_reserve(struct shadow_mmu *mmu, u32 pages)
{
	struct shadow_mmu_reclaim *rc = &mmu->rc;
	u64 need, limit = counter_load(&rc->limit);
	u64 frames = (u64)pages * SHADOW_PAGE_FRAMES + SHADOW_BOOKKEEPING_FRAMES;

	if (!rc->pool || rc->reserved >= frames)
		return true;
	need = frames - rc->reserved;
	if (counter_load(&rc->used) + rc->reserved + need > limit)
		evict_frames(mmu, counter_load(&rc->used) + rc->reserved + need - limit);
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
	u64 frames = ram_pages * SHADOW_DEFAULT_PERMILLE / 1000;

	return frames < SHADOW_MIN_FRAMES ? SHADOW_MIN_FRAMES : frames;
}

static u64 clamp_limit(u64 limit)
{
	return limit < SHADOW_MIN_FRAMES ? SHADOW_MIN_FRAMES : limit;
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
	/* CLOCK: one look for each page made before the first eviction. */
	mmu->rc.credit = 4 * (s32)(mmu->rc.limit / SHADOW_PAGE_FRAMES);
	mmu->rc.pass = 1;	/* rc_armed 0 means "not armed" */
	mmu->rc.pool = pool;
	/* Frames taken before attaching are charged now, even above the limit. */
	counter_add(&pool->charged, (s64)mmu->rc.used);
	counter_add(&pool->in_use, (s64)mmu->rc.used);
	counter_add(&pool->pages, (s64)mmu->rc.pages);
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
	counter_add(&pool->pages, -(s64)mmu->rc.pages);
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
		evict_frames(mmu, used - limit);
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

u64 shadow_pool_reclaim(struct shadow_pool *pool, u64 frames, struct shadow_mmu *self)
{
	u32 skip = 0;	/* guests found busy or with nothing to give */
	u64 freed = 0;

	while (freed < frames) {
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
		take = frames - freed;
		if (best > 0 && (u64)best < take)
			take = (u64)best;
		if (best <= 0)
			take = 1;
		got = evict_frames(donor, take);
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
