/*
 * Shadow page bookkeeping: descriptors and their (gfn, role) hash, the
 * reverse map gfn -> leaf sptes (to write-protect guest tables), parent
 * lists (sptes pointing at a page), creation-order list, zapping. All
 * memory comes from shadow_host pages: small objects are carved from
 * bookkeeping pages by fixed-size pools.
 */
#include <string.h>

#include "shadow/account.h"
#include "shadow/spage.h"

/* ---- fixed-size object pools ------------------------------------------ */

/*
 * A bookkeeping page starts with this header, objects after it. Its
 * frame is charged to the guest (account.c) while the page is held, and
 * given back as soon as its last object is freed, so evicting shadow pages
 * also frees the bookkeeping they used.
 */
struct pool_page {
	struct pool_page *next, *prev;	/* all bookkeeping pages of the guest */
	struct pool_page *next_partial, *prev_partial;	/* its pool's pages with a free object */
	u64 hpa;
	void *free;			/* free objects in this page */
	u32 live;			/* objects in use */
	bool partial;
};

static void partial_add(struct obj_pool *pool, struct pool_page *page)
{
	page->prev_partial = NULL;
	page->next_partial = pool->partial;
	if (pool->partial)
		pool->partial->prev_partial = page;
	pool->partial = page;
	page->partial = true;
}

static void partial_remove(struct obj_pool *pool, struct pool_page *page)
{
	if (page->prev_partial)
		page->prev_partial->next_partial = page->next_partial;
	else
		pool->partial = page->next_partial;
	if (page->next_partial)
		page->next_partial->prev_partial = page->prev_partial;
	page->partial = false;
}

static struct pool_page *pool_grow(struct shadow_mmu *mmu, struct obj_pool *pool)
{
	struct pool_page *page;
	u64 hpa;
	u8 *mem;

	if (!account_charge_frames(mmu, 1))
		return NULL;
	mem = mmu->host->alloc_page(mmu->host, &hpa, false, false);	/* objects are cleared */
	if (!mem) {
		account_uncharge_frames(mmu, 1);
		return NULL;
	}
	page = (struct pool_page *)mem;
	memset(page, 0, sizeof(*page));
	page->hpa = hpa;
	/* Objects start after the header, at a multiple of their size. */
	for (u32 off = (u32)((sizeof(*page) + pool->size - 1) / pool->size * pool->size);
	     off + pool->size <= PAGE_SIZE; off += pool->size) {
		*(void **)(mem + off) = page->free;
		page->free = mem + off;
	}
	page->next = mmu->pool_pages;
	if (mmu->pool_pages)
		mmu->pool_pages->prev = page;
	mmu->pool_pages = page;
	partial_add(pool, page);
	return page;
}

static void *pool_get(struct shadow_mmu *mmu, struct obj_pool *pool)
{
	struct pool_page *page = pool->partial ? pool->partial : pool_grow(mmu, pool);
	void *obj;

	if (!page)
		return NULL;
	obj = page->free;
	page->free = *(void **)obj;
	page->live++;
	if (!page->free)
		partial_remove(pool, page);
	memset(obj, 0, pool->size);
	return obj;
}

static void pool_put(struct shadow_mmu *mmu, struct obj_pool *pool, void *obj)
{
	struct pool_page *page = (struct pool_page *)((uintptr_t)obj & ~(uintptr_t)(PAGE_SIZE - 1));

	*(void **)obj = page->free;
	page->free = obj;
	page->live--;
	if (!page->partial)
		partial_add(pool, page);
	if (page->live)
		return;
	partial_remove(pool, page);
	if (page->prev)
		page->prev->next = page->next;
	else
		mmu->pool_pages = page->next;
	if (page->next)
		page->next->prev = page->prev;
	mmu->host->free_page(mmu->host, page, page->hpa);
	account_uncharge_frames(mmu, 1);
}

static u32 pool_size(size_t size)
{
	return (u32)ALIGN_UP(size, 16);
}

void sp_obj_pool_init(struct obj_pool *pool, size_t size)
{
	pool->size = pool_size(size);
}

void *sp_obj_get(struct shadow_mmu *mmu, struct obj_pool *pool)
{
	return pool_get(mmu, pool);
}

void sp_obj_put(struct shadow_mmu *mmu, struct obj_pool *pool, void *obj)
{
	pool_put(mmu, pool, obj);
}

void sp_init_pools(struct shadow_mmu *mmu)
{
	mmu->page_pool.size = pool_size(sizeof(struct shadow_page));
	mmu->node_pool.size = pool_size(sizeof(struct spte_list_node));
	mmu->rmap_pool.size = pool_size(sizeof(struct rmap_head));
}

/* ---- spte lists (parents, reverse map) --------------------------------- */

static bool list_add(struct shadow_mmu *mmu, struct spte_list *list, u64 *spte)
{
	struct spte_list_node *node = list->head;

	if (!list->single) {
		list->single = spte;
		return true;
	}
	if (!node || node->count == LIST_NODE_SPTES) {
		node = pool_get(mmu, &mmu->node_pool);
		if (!node)
			return false;
		node->next = list->head;
		list->head = node;
	}
	node->spte[node->count++] = spte;
	return true;
}

/* Remove spte; the hole is filled with the last entry of the head node. */
static void list_remove(struct shadow_mmu *mmu, struct spte_list *list, u64 *spte)
{
	struct spte_list_node *head = list->head;

	if (list->single == spte) {
		/* The inline slot takes an entry of the head node, if any. */
		list->single = head ? head->spte[--head->count] : NULL;
		if (head && !head->count) {
			list->head = head->next;
			pool_put(mmu, &mmu->node_pool, head);
		}
		return;
	}

	for (struct spte_list_node *n = head; n; n = n->next) {
		for (u32 i = 0; i < n->count; i++) {
			if (n->spte[i] != spte)
				continue;
			n->spte[i] = head->spte[--head->count];
			if (!head->count) {
				list->head = head->next;
				pool_put(mmu, &mmu->node_pool, head);
			}
			return;
		}
	}
}

static bool list_empty(const struct spte_list *list)
{
	return !list->single;	/* list_remove() keeps the inline slot filled first */
}

static void list_for_each(const struct spte_list *list, void (*fn)(u64 *spte, void *arg), void *arg)
{
	if (list->single)
		fn(list->single, arg);
	for (struct spte_list_node *n = list->head; n; n = n->next)
		for (u32 i = 0; i < n->count; i++)
			fn(n->spte[i], arg);
}

static unsigned list_count(const struct spte_list *list, const u64 *spte)
{
	unsigned found = list->single && (!spte || list->single == spte);

	for (struct spte_list_node *n = list->head; n; n = n->next)
		for (u32 i = 0; i < n->count; i++)
			found += !spte || n->spte[i] == spte;
	return found;
}

/* ---- reverse map ------------------------------------------------------- */

static u32 hash_gfn(u64 gfn, u32 buckets)
{
	return (u32)((gfn * 0x9e3779b97f4a7c15ull) >> 40) % buckets;
}

static struct rmap_head **rmap_slot(struct shadow_mmu *mmu, u64 gfn)
{
	struct rmap_head **slot = &mmu->rmap_hash[hash_gfn(gfn, SHADOW_RMAP_HASH)];

	while (*slot && (*slot)->gfn != gfn)
		slot = &(*slot)->next;
	return slot;
}

static bool rmap_add(struct shadow_mmu *mmu, u64 gfn, u64 *spte)
{
	struct rmap_head **slot = rmap_slot(mmu, gfn);

	if (!*slot) {
		struct rmap_head *head = pool_get(mmu, &mmu->rmap_pool);

		if (!head)
			return false;
		head->gfn = gfn;
		*slot = head;
	}
	if (list_add(mmu, &(*slot)->list, spte))
		return true;
	if (list_empty(&(*slot)->list) && !(*slot)->tables) {
		struct rmap_head *empty = *slot;

		*slot = empty->next;
		pool_put(mmu, &mmu->rmap_pool, empty);
	}
	return false;
}

static void rmap_remove(struct shadow_mmu *mmu, u64 gfn, u64 *spte)
{
	struct rmap_head **slot = rmap_slot(mmu, gfn);
	struct rmap_head *head = *slot;

	if (!head)
		return;
	list_remove(mmu, &head->list, spte);
	if (list_empty(&head->list) && !head->tables) {
		*slot = head->next;
		pool_put(mmu, &mmu->rmap_pool, head);
	}
}

/* ---- 2 MiB regions (opt.largepages) ------------------------------------ */

/* gfn's frame now holds a shadowed table: count it in its region. false: no memory. */
static bool region_add_table(struct shadow_mmu *mmu, u64 gfn)
{
	struct rmap_head **slot = rmap_slot(mmu, large_key(gfn));

	if (!*slot) {
		struct rmap_head *head = pool_get(mmu, &mmu->rmap_pool);

		if (!head)
			return false;
		head->gfn = large_key(gfn);
		*slot = head;
	}
	(*slot)->tables++;
	return true;
}

/* ...and no longer does (its last shadow page is gone). */
static void region_del_table(struct shadow_mmu *mmu, u64 gfn)
{
	struct rmap_head **slot = rmap_slot(mmu, large_key(gfn));
	struct rmap_head *head = *slot;

	if (--head->tables || !list_empty(&head->list))
		return;
	*slot = head->next;
	pool_put(mmu, &mmu->rmap_pool, head);
}

/*
 * A frame of gfn's region has just become a shadowed table: the 2 MiB
 * sptes mapping the region would let the guest write it, so they go (the
 * next access faults and maps 4 KiB pages, the table's write-protected),
 * and so do translations cached from them.
 */
static void region_split(struct shadow_mmu *mmu, u64 gfn)
{
	struct rmap_head *head = *rmap_slot(mmu, large_key(gfn));
	bool any = false;

	while (head->list.single) {
		u64 *spte = head->list.single;
		struct shadow_page *owner = sp_of_spte(mmu, spte);

		sp_set_spte(mmu, owner, (int)(spte - owner->spt), 0, 0, NULL);
		mmu->stats.large_split++;
		any = true;
	}
	if (any)
		sp_flush_guest(mmu);
}

bool sp_large_allowed(struct shadow_mmu *mmu, u64 gfn)
{
	return !sp_large_tables(mmu, gfn);
}

u32 sp_large_tables(struct shadow_mmu *mmu, u64 gfn)
{
	struct rmap_head *head = *rmap_slot(mmu, large_key(gfn));

	return head ? head->tables : 0;
}

void rmap_for_each(struct shadow_mmu *mmu, u64 gfn, void (*fn)(struct shadow_mmu *, u64 *, void *),
		   void *arg)
{
	struct rmap_head *head = *rmap_slot(mmu, gfn);

	if (!head)
		return;
	if (head->list.single)
		fn(mmu, head->list.single, arg);
	for (struct spte_list_node *n = head->list.head; n; n = n->next)
		for (u32 i = 0; i < n->count; i++)
			fn(mmu, n->spte[i], arg);
}

unsigned rmap_count(struct shadow_mmu *mmu, u64 gfn, const u64 *spte)
{
	struct rmap_head *head = *rmap_slot(mmu, gfn);

	return head ? list_count(&head->list, spte) : 0;
}

unsigned parents_count(const struct shadow_page *sp, const u64 *spte)
{
	return list_count(&sp->parents, spte);
}

void sp_for_each_parent(struct shadow_page *sp, void (*fn)(u64 *spte, void *arg), void *arg)
{
	list_for_each(&sp->parents, fn, arg);
}

bool sp_has_parents(const struct shadow_page *sp)
{
	return !list_empty(&sp->parents);
}

/* ---- shadow pages ------------------------------------------------------ */

static struct shadow_page **page_bucket(struct shadow_mmu *mmu, u64 gfn)
{
	return &mmu->page_hash[hash_gfn(gfn, SHADOW_PAGE_HASH)];
}

static struct shadow_page **owner_bucket(struct shadow_mmu *mmu, const u64 *spt)
{
	return &mmu->owner_hash[hash_gfn((uintptr_t)spt >> PAGE_SHIFT, SHADOW_PAGE_HASH)];
}

struct shadow_page *sp_of_spte(struct shadow_mmu *mmu, const u64 *spte)
{
	const u64 *spt = (const u64 *)((uintptr_t)spte & ~(uintptr_t)(PAGE_SIZE - 1));

	for (struct shadow_page *sp = *owner_bucket(mmu, spt); sp; sp = sp->owner_next)
		if (sp->spt == spt)
			return sp;
	return NULL;
}

bool sp_in_root_cache(const struct shadow_mmu *mmu, const struct shadow_page *sp)
{
	for (int i = 0; i < SHADOW_ROOT_CACHE; i++)
		if (mmu->root_cache[i] == sp)
			return true;
	return false;
}

bool sp_root_running(const struct shadow_mmu *mmu, const struct shadow_page *sp)
{
	return sp->root_count > (u32)sp_in_root_cache(mmu, sp);
}

struct reach {
	struct shadow_mmu *mmu;
	int depth;
	bool found;
};

static void reach_parent(u64 *spte, void *arg)
{
	struct reach *r = arg;
	struct shadow_page *owner = r->found ? NULL : sp_of_spte(r->mmu, spte);

	if (!owner)
		return;
	if (sp_root_running(r->mmu, owner)) {
		r->found = true;
	} else if (r->depth < SHADOW_MAX_LEVEL) {
		r->depth++;
		sp_for_each_parent(owner, reach_parent, r);
		r->depth--;
	}
}

bool sp_under_running_root(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	struct reach r = { mmu, 0, sp_root_running(mmu, sp) };

	if (!r.found)
		sp_for_each_parent(sp, reach_parent, &r);
	return r.found;
}

struct shadow_page *sp_find(struct shadow_mmu *mmu, u64 gfn, union shadow_role role)
{
	for (struct shadow_page *sp = *page_bucket(mmu, gfn); sp; sp = sp->hash_next)
		if (sp->gfn == gfn && sp->role.word == role.word)
			return sp;
	return NULL;
}

struct shadow_page *sp_next_indirect(struct shadow_page *sp, u64 gfn)
{
	for (; sp; sp = sp->hash_next)
		if (sp->gfn == gfn && sp_is_indirect(sp))
			return sp;
	return NULL;
}

struct shadow_page *sp_first_indirect(struct shadow_mmu *mmu, u64 gfn)
{
	return sp_next_indirect(*page_bucket(mmu, gfn), gfn);
}

static void remove_write_access(struct shadow_mmu *mmu, u64 *spte, void *changed)
{
	u64 old = __atomic_load_n(spte, __ATOMIC_RELAXED);

	if (old & PTE_W) {
		__atomic_store_n(spte, old & ~PTE_W, __ATOMIC_RELAXED);
		mmu->stats.write_protects++;
		*(bool *)changed = true;
	}
}

bool sp_remove_write(struct shadow_mmu *mmu, u64 gfn)
{
	bool changed = false;

	rmap_for_each(mmu, gfn, remove_write_access, &changed);
	return changed;
}

/* gfn now holds a shadowed guest table: no spte may let the guest write it. */
void sp_write_protect_gfn(struct shadow_mmu *mmu, u64 gfn)
{
	if (sp_remove_write(mmu, gfn))
		sp_flush_guest(mmu);
}

void sp_flush_guest(struct shadow_mmu *mmu)
{
	mmu->flush_pending = false;	/* cleared A bits count from here on */
	mmu->stats.guest_flushes++;
	mmu->host->flush_tlb(mmu->host, NULL, SHADOW_FLUSH_GUEST, 0);
}

static void restore_write(struct shadow_mmu *mmu, u64 *spte, void *arg)
{
	u64 old = __atomic_load_n(spte, __ATOMIC_RELAXED);

	(void)mmu;
	(void)arg;
	/* D with W, as make_leaf() does: SPTE_SW_WRITABLE implies the guest D bit. */
	if ((old & SPTE_SW_WRITABLE) && !(old & PTE_W))
		__atomic_fetch_or(spte, PTE_W | PTE_D, __ATOMIC_RELAXED);
}

void sp_restore_write(struct shadow_mmu *mmu, u64 gfn)
{
	rmap_for_each(mmu, gfn, restore_write, NULL);
}

bool sp_unsync_add(struct shadow_mmu *mmu, struct shadow_page *sp, const void *page)
{
	struct shadow_snap *snap = &mmu->unsync_snap[mmu->unsync_count];

	if (!account_charge_frames(mmu, 1))
		return false;
	snap->page = mmu->host->alloc_page(mmu->host, &snap->hpa, false, false);
	if (!snap->page) {
		account_uncharge_frames(mmu, 1);
		return false;
	}
	memcpy(snap->page, page, PAGE_SIZE);
	sp->unsync = true;
	mmu->unsync[mmu->unsync_count++] = sp;
	return true;
}

static u32 unsync_index(const struct shadow_mmu *mmu, const struct shadow_page *sp)
{
	u32 i = 0;

	while (mmu->unsync[i] != sp)
		i++;
	return i;
}

const u8 *sp_unsync_snap(struct shadow_mmu *mmu, const struct shadow_page *sp)
{
	return mmu->unsync_snap[unsync_index(mmu, sp)].page;
}

void sp_snap_free(struct shadow_mmu *mmu, struct shadow_snap *snap)
{
	mmu->host->free_page(mmu->host, snap->page, snap->hpa);
	account_uncharge_frames(mmu, 1);
	snap->page = NULL;
}

void sp_unsync_del(struct shadow_mmu *mmu, struct shadow_page *sp, struct shadow_snap *snap)
{
	u32 i, rest;
	struct shadow_snap mine;

	if (!sp->unsync)
		return;
	sp->unsync = false;
	i = unsync_index(mmu, sp);
	mine = mmu->unsync_snap[i];
	rest = mmu->unsync_count - i - 1;
	memmove(&mmu->unsync[i], &mmu->unsync[i + 1], rest * sizeof(mmu->unsync[0]));
	memmove(&mmu->unsync_snap[i], &mmu->unsync_snap[i + 1], rest * sizeof(mine));
	mmu->unsync_count--;
	if (snap)
		*snap = mine;
	else
		sp_snap_free(mmu, &mine);
}

struct shadow_page *sp_create(struct shadow_mmu *mmu, u64 gfn, union shadow_role role)
{
	struct shadow_page *sp = pool_get(mmu, &mmu->page_pool);
	struct shadow_page **bucket = page_bucket(mmu, gfn);
	bool first_indirect;

	if (!sp)
		return NULL;
	if (!account_charge(mmu, role.level)) {	/* over a limit: see reclaim.c */
		pool_put(mmu, &mmu->page_pool, sp);
		return NULL;
	}
	first_indirect = !role.direct && !sp_first_indirect(mmu, gfn);
	/* Zeroed once, by the host; aux is read only behind a present spte. */
	sp->spt = mmu->host->alloc_page(mmu->host, &sp->hpa, role.pae_root, true);
	sp->aux = mmu->host->alloc_page(mmu->host, &sp->aux_hpa, false, false);
	if (!sp->spt || !sp->aux ||
	    (first_indirect && mmu->opt.largepages && !region_add_table(mmu, gfn))) {
		if (sp->spt)
			mmu->host->free_page(mmu->host, sp->spt, sp->hpa);
		if (sp->aux)
			mmu->host->free_page(mmu->host, sp->aux, sp->aux_hpa);
		pool_put(mmu, &mmu->page_pool, sp);
		account_uncharge(mmu, role.level);
		return NULL;
	}
	sp->gfn = gfn;
	sp->role = role;
	sp->created = mmu->seq++;
	sp->hash_next = *bucket;
	*bucket = sp;
	sp->owner_next = *owner_bucket(mmu, sp->spt);
	*owner_bucket(mmu, sp->spt) = sp;
	sp->older = mmu->newest;
	if (mmu->newest)
		mmu->newest->newer = sp;
	else
		mmu->oldest = sp;
	mmu->newest = sp;
	sp_rc_move(mmu, sp, role.level == 1 ? SHADOW_RC_PROB_LEAF : SHADOW_RC_PROB_DIR);
	mmu->stats.pages_created++;
	if (first_indirect) {
		if (mmu->opt.largepages)
			region_split(mmu, gfn);
		sp_write_protect_gfn(mmu, gfn);
		if (mmu->flood.shadowed)	/* flood.c: was unshadowing it a mistake? */
			mmu->flood.shadowed(mmu, gfn);
	}
	return sp;
}

static void drop_spte(struct shadow_mmu *mmu, struct shadow_page *sp, int i)
{
	if (!spte_present(sp->spt[i]))
		return;
	if (spte_is_leaf(sp, sp->spt[i])) {
		rmap_remove(mmu, spte_rmap_key(sp, i), &sp->spt[i]);
	} else {
		struct shadow_page *child = (struct shadow_page *)(uintptr_t)sp->aux[i];

		/* The CPU used this link since it was last looked at: keep that. */
		if (__atomic_load_n(&sp->spt[i], __ATOMIC_RELAXED) & PTE_A)
			child->accessed = child->age_used = child->flood_used = true;
		list_remove(mmu, &child->parents, &sp->spt[i]);
	}
	sp->aux[i] = 0;
}

void sp_set_spte(struct shadow_mmu *mmu, struct shadow_page *sp, int i, u64 spte,
		 u64 leaf_gfn, struct shadow_page *child)
{
	bool linked = true, leaf = spte_is_leaf(sp, spte);

	if (sp->spt[i] == spte)
		return;
	/* Same frame or child, other bits (rights, A/D): the lists stay as they are. */
	if (spte_present(spte) && spte_present(sp->spt[i]) &&
	    leaf == spte_is_leaf(sp, sp->spt[i]) &&
	    sp->aux[i] == (leaf ? leaf_gfn : (u64)(uintptr_t)child)) {
		__atomic_store_n(&sp->spt[i], spte, __ATOMIC_RELAXED);
		return;
	}
	drop_spte(mmu, sp, i);
	if (spte_present(spte)) {
		if (leaf) {
			linked = rmap_add(mmu, spte_is_large(sp, spte) ? large_key(leaf_gfn) : leaf_gfn,
					  &sp->spt[i]);
			sp->aux[i] = leaf_gfn;
		} else {
			linked = list_add(mmu, &child->parents, &sp->spt[i]);
			sp->aux[i] = (u64)(uintptr_t)child;
		}
	}
	/* Out of bookkeeping memory: leave it not present, a fault retries. */
	__atomic_store_n(&sp->spt[i], linked ? spte : 0, __ATOMIC_RELAXED);
	mmu->stats.large_mapped += linked && spte_is_large(sp, spte);
	if (linked && spte_present(spte))
		sp->present[i / 64] |= 1ull << (i % 64);
	else
		sp->present[i / 64] &= ~(1ull << (i % 64));
}

void sp_rc_move(struct shadow_mmu *mmu, struct shadow_page *sp, enum shadow_rc_lists list)
{
	struct shadow_rc_queue *from = &mmu->rc.lists[sp->rc_list], *to = &mmu->rc.lists[list];

	if (sp->rc_list != SHADOW_RC_NONE) {
		if (mmu->rc.hand == sp)		/* the CLOCK hand moves on (reclaim.c) */
			mmu->rc.hand = sp->rc_next;
		if (sp->rc_prev)
			sp->rc_prev->rc_next = sp->rc_next;
		else
			from->head = sp->rc_next;
		if (sp->rc_next)
			sp->rc_next->rc_prev = sp->rc_prev;
		else
			from->tail = sp->rc_prev;
		from->count--;
	}
	sp->rc_prev = sp->rc_next = NULL;
	sp->rc_list = list;
	sp->rc_seq = ++mmu->rc.seq;
	if (list == SHADOW_RC_NONE)
		return;
	sp->rc_prev = to->tail;
	if (to->tail)
		to->tail->rc_next = sp;
	else
		to->head = sp;
	to->tail = sp;
	to->count++;
}

void sp_pin(struct shadow_page *sp)
{
	sp->root_count++;
}

void sp_unpin(struct shadow_page *sp)
{
	sp->root_count--;
}

static void unlink_parent(u64 *spte, void *arg)
{
	struct shadow_page *owner = sp_of_spte(arg, spte);
	int i = (int)(spte - (owner ? owner->spt : spte));

	__atomic_store_n(spte, 0, __ATOMIC_RELAXED);
	if (owner)
		owner->present[i / 64] &= ~(1ull << (i % 64));
}

void sp_zap(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	struct shadow_page **slot;

	if (sp->zapped)
		return;
	sp_unsync_del(mmu, sp, NULL);	/* its frame keeps whatever W its mappings have */
	/* The owners of parent sptes keep a stale aux entry, ignored while not present. */
	sp_for_each_parent(sp, unlink_parent, mmu);
	sp->parents.single = NULL;
	while (sp->parents.head) {
		struct spte_list_node *n = sp->parents.head;

		sp->parents.head = n->next;
		pool_put(mmu, &mmu->node_pool, n);
	}
	/* Only the present sptes: most pages have few. */
	for (int w = 0; w < PT_ENTRIES / 64; w++)
		while (sp->present[w])
			sp_set_spte(mmu, sp, w * 64 + __builtin_ctzll(sp->present[w]), 0, 0, NULL);
	if (sp->root_count)
		return;	/* a root in use stays, empty; faults refill it */

	for (slot = page_bucket(mmu, sp->gfn); *slot != sp; slot = &(*slot)->hash_next)
		;
	*slot = sp->hash_next;
	if (sp_is_indirect(sp) && mmu->opt.largepages && !sp_first_indirect(mmu, sp->gfn))
		region_del_table(mmu, sp->gfn);
	for (slot = owner_bucket(mmu, sp->spt); *slot != sp; slot = &(*slot)->owner_next)
		;
	*slot = sp->owner_next;
	if (sp->older)
		sp->older->newer = sp->newer;
	else
		mmu->oldest = sp->newer;
	if (sp->newer)
		sp->newer->older = sp->older;
	else
		mmu->newest = sp->older;
	sp_rc_move(mmu, sp, SHADOW_RC_NONE);
	sp->zapped = true;
	sp->hash_next = mmu->zap_pending;
	mmu->zap_pending = sp;
	account_uncharge(mmu, sp->role.level);
}

bool sp_test_clear_a(struct shadow_mmu *mmu, u64 *spte)
{
	bool was = __atomic_fetch_and(spte, ~PTE_A, __ATOMIC_RELAXED) & PTE_A;

	if (was)
		mmu->flush_pending = true;
	return was;
}

void sp_commit_zap(struct shadow_mmu *mmu)
{
	if (!mmu->zap_pending && !mmu->flush_pending)
		return;
	/* No CPU may still walk or cache the pages once they are reused, nor use
	 * a cached translation instead of setting a cleared A bit again. */
	if (mmu->flush_pending && !mmu->zap_pending)
		mmu->stats.accessed_flushes++;
	sp_flush_guest(mmu);
	while (mmu->zap_pending) {
		struct shadow_page *sp = mmu->zap_pending;

		mmu->zap_pending = sp->hash_next;
		mmu->host->free_page(mmu->host, sp->spt, sp->hpa);
		mmu->host->free_page(mmu->host, sp->aux, sp->aux_hpa);
		pool_put(mmu, &mmu->page_pool, sp);
		mmu->stats.pages_zapped++;
	}
}

void sp_free_all(struct shadow_mmu *mmu)
{
	for (struct shadow_page *sp = mmu->oldest; sp; sp = sp->newer)
		sp->root_count = 0;
	while (mmu->oldest)
		sp_zap(mmu, mmu->oldest);
	sp_commit_zap(mmu);
	/* Every object is free now, so every bookkeeping page has been given back. */
}

void shadow_zap_page(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	sp_zap(mmu, sp);
	sp_commit_zap(mmu);
}

struct clear_a {
	struct shadow_mmu *mmu;
	bool used;
};

static void test_clear_parent_a(u64 *spte, void *arg)
{
	struct clear_a *c = arg;

	if (sp_test_clear_a(c->mmu, spte))
		c->used = true;
}

void sp_collect_parent_a(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	struct clear_a c = { mmu, false };

	sp_for_each_parent(sp, test_clear_parent_a, &c);
	if (c.used)
		sp->accessed = sp->age_used = sp->flood_used = true;
}

bool shadow_page_test_and_clear_accessed(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	bool used;

	sp_collect_parent_a(mmu, sp);
	used = sp->accessed;
	sp->accessed = false;
	if (used)
		sp->write_flood = 0;	/* flood.c: a use restarts the write count */
	return used;
}
