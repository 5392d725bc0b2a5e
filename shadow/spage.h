/*
 * Internal to shadow/: shadow page bookkeeping shared by spage.c (pages,
 * hash, reverse map, zapping) and shadow.c (faults, guest writes, roots).
 */
#ifndef SHADOW_SPAGE_H
#define SHADOW_SPAGE_H

#include "shadow/types.h"

#define LIST_NODE_SPTES 14

/* A list of spte pointers, in nodes of 14 (parents of a page, reverse map of a gfn). */
struct spte_list_node {
	struct spte_list_node *next;
	u32 count;
	u64 *spte[LIST_NODE_SPTES];
};

/*
 * Reverse-map hash entry: the leaf sptes that map gfn. A 2 MiB region has
 * its own entry (key large_key()): the 2 MiB sptes that map it, and how
 * many of its frames hold shadowed guest tables (opt.largepages); it lives
 * while either is not zero.
 */
struct rmap_head {
	u64 gfn;
	struct rmap_head *next;
	struct spte_list list;
	u32 tables;
};

#define LARGE_FRAMES 512	/* 4 KiB frames of a 2 MiB spte */
#define LARGE_KEY BIT(63)	/* no gfn has it (MAXPHYADDR <= 52) */

/* The reverse-map key of the 2 MiB region holding gfn. */
static inline u64 large_key(u64 gfn)
{
	return (gfn & ~(u64)(LARGE_FRAMES - 1)) | LARGE_KEY;
}

/* Non-leaf spte: everything allowed here, rights live in the leaf. */
#define SPTE_TABLE_BITS (PTE_P | PTE_W | PTE_U)
/*
 * Software bit of a leaf spte (bits 11:9 are ignored by the CPU in PAE and
 * 4-level PTEs, SDM Vol. 3A 4.4.2 and 4.5): the guest may write through it
 * once its frame is no longer a shadowed table. Write protection clears W
 * and keeps this, so unshadowing a frame can give W back without a fault.
 */
#define SPTE_SW_WRITABLE BIT(11)
/* A PAE PDPTE may only have P, PWT, PCD and the address (SDM 4.4.1). */
#define SPTE_PDPTE_BITS PTE_P

static inline bool spte_present(u64 spte)
{
	return spte & PTE_P;
}

static inline u64 spte_addr(u64 spte)
{
	return spte & PTE_ADDR_MASK52;
}

/* Sptes of a level-1 page are leaves; others point at shadow pages (but see below). */
static inline bool sp_is_leaf_table(const struct shadow_page *sp)
{
	return sp->role.level == 1;
}

/* A 2 MiB spte: a leaf in a level-2 page (PS, SDM 4.5.4); aux holds its first gfn. */
static inline bool spte_is_large(const struct shadow_page *sp, u64 spte)
{
	return sp->role.level == 2 && (spte & PTE_PS);
}

static inline bool spte_is_leaf(const struct shadow_page *sp, u64 spte)
{
	return sp_is_leaf_table(sp) || spte_is_large(sp, spte);
}

/* The reverse-map key of leaf spte i of sp (present). */
static inline u64 spte_rmap_key(const struct shadow_page *sp, int i)
{
	return spte_is_large(sp, sp->spt[i]) ? large_key(sp->aux[i]) : sp->aux[i];
}

/* Shadow pages for guest tables (the ones that write-protect their frame). */
static inline bool sp_is_indirect(const struct shadow_page *sp)
{
	return !sp->role.direct;
}

struct shadow_page *sp_find(struct shadow_mmu *mmu, u64 gfn, union shadow_role role);
/* A new empty shadow page (write-protecting gfn if indirect), or NULL. */
struct shadow_page *sp_create(struct shadow_mmu *mmu, u64 gfn, union shadow_role role);
/* First/next indirect page shadowing gfn. */
struct shadow_page *sp_first_indirect(struct shadow_mmu *mmu, u64 gfn);
struct shadow_page *sp_next_indirect(struct shadow_page *sp, u64 gfn);

/*
 * Is gfn a guest table the guest may not write directly: shadowed, and not
 * out of sync? (All shadows of a frame go out of sync together.)
 */
static inline bool sp_gfn_protected(struct shadow_mmu *mmu, u64 gfn)
{
	struct shadow_page *sp = sp_first_indirect(mmu, gfn);

	return sp && !sp->unsync;
}

/*
 * opt.largepages: may a 2 MiB spte map the region of gfn: no frame in it
 * holds a shadowed guest table (the host's own conditions apart).
 */
bool sp_large_allowed(struct shadow_mmu *mmu, u64 gfn);
/* Shadowed-table frames counted in gfn's region (the audit checks the count). */
u32 sp_large_tables(struct shadow_mmu *mmu, u64 gfn);

/* gfn holds a shadowed table again: remove write access to it (flushes if any). */
void sp_write_protect_gfn(struct shadow_mmu *mmu, u64 gfn);
/* The same without the flush: true if an spte lost W (sp_flush_guest() owed
 * before the protection may be relied on). Lets a caller protect several
 * frames under one flush. */
bool sp_remove_write(struct shadow_mmu *mmu, u64 gfn);
/* One guest-wide flush (every vCPU, synchronous: shadow_host.flush_tlb). */
void sp_flush_guest(struct shadow_mmu *mmu);
/* gfn may be written directly: sptes that may write it get W back. */
void sp_restore_write(struct shadow_mmu *mmu, u64 gfn);
/*
 * The out-of-sync list (mmu->unsync): add sp at the tail with a snapshot
 * (a charged frame, a copy of guest table page; false: no memory), find
 * its snapshot, or take it off (flag and list), the snapshot handed back
 * in *snap for sp_snap_free() (NULL: free it at once).
 */
bool sp_unsync_add(struct shadow_mmu *mmu, struct shadow_page *sp, const void *page);
const u8 *sp_unsync_snap(struct shadow_mmu *mmu, const struct shadow_page *sp);
void sp_unsync_del(struct shadow_mmu *mmu, struct shadow_page *sp, struct shadow_snap *snap);
void sp_snap_free(struct shadow_mmu *mmu, struct shadow_snap *snap);

/* Replace spte i of sp, keeping the reverse map and parent lists exact. */
void sp_set_spte(struct shadow_mmu *mmu, struct shadow_page *sp, int i, u64 spte,
		 u64 leaf_gfn, struct shadow_page *child);
/* Unlink sp from its parents and children; freed by sp_commit_zap(). */
void sp_zap(struct shadow_mmu *mmu, struct shadow_page *sp);
/*
 * One guest-wide flush, if anything needs it, then free the zapped pages.
 * The same flush makes cleared A bits count (sp_test_clear_a()): every
 * entry point ends with it, so a pass that clears many costs one flush.
 */
void sp_commit_zap(struct shadow_mmu *mmu);
/*
 * Clear A in an spte; true if it was set. A translation or paging-structure
 * cache entry made through an spte with A set may live on and set no A bit
 * when used (SDM 4.10.2, 4.10.3), so until the next flush a clear A
 * would not mean "unused": clearing a set bit asks sp_commit_zap() for one.
 */
bool sp_test_clear_a(struct shadow_mmu *mmu, u64 *spte);

/* Move sp to the tail of reclaim list `list` (SHADOW_RC_NONE: off every list). */
void sp_rc_move(struct shadow_mmu *mmu, struct shadow_page *sp, enum shadow_rc_lists list);

void sp_pin(struct shadow_page *sp);
void sp_unpin(struct shadow_page *sp);

/* The shadow page whose table holds spte (NULL if none). */
struct shadow_page *sp_of_spte(struct shadow_mmu *mmu, const u64 *spte);
bool sp_in_root_cache(const struct shadow_mmu *mmu, const struct shadow_page *sp);
/* A vCPU runs on this root: pinned beyond the root cache's own pin. */
bool sp_root_running(const struct shadow_mmu *mmu, const struct shadow_page *sp);
/*
 * Can the CPU walk sp now: is it a running root, or linked below one? A
 * table that is not can only be walked after a CR3 load (or through a
 * paging-structure cache entry the guest has yet to flush).
 */
bool sp_under_running_root(struct shadow_mmu *mmu, struct shadow_page *sp);

/* Reverse map: calls fn on every spte that maps gfn. */
void rmap_for_each(struct shadow_mmu *mmu, u64 gfn, void (*fn)(struct shadow_mmu *, u64 *, void *),
		   void *arg);
unsigned rmap_count(struct shadow_mmu *mmu, u64 gfn, const u64 *spte);
unsigned parents_count(const struct shadow_page *sp, const u64 *spte);
void sp_for_each_parent(struct shadow_page *sp, void (*fn)(u64 *spte, void *arg), void *arg);
bool sp_has_parents(const struct shadow_page *sp);

/*
 * Hooks for a reclaim / ageing policy (shadow/reclaim.c, flood.c and tests use them):
 * walk pages oldest first with sp->newer from mmu->oldest, ask whether a
 * page was used since the last call (software bit or the CPU-set A bit of
 * any parent spte, both cleared; the caller's entry point ends with
 * sp_commit_zap(), whose flush makes the next use set A again), and zap one page (its subtree stays
 * cached; a zapped pinned root is only emptied). The software bit is set
 * when a fault walks the page, when it is loaded as a root, and when a
 * parent spte with A set is dropped (so the CPU's use is not forgotten).
 */
bool shadow_page_test_and_clear_accessed(struct shadow_mmu *mmu, struct shadow_page *sp);
/*
 * Test and clear the A bits of sp's parent sptes (flushed by the entry
 * point's sp_commit_zap()). A use found is recorded for every reader:
 * reclaim's accessed bit, ageing's age_used and flood detection's
 * flood_used; each reader then takes and clears its own bit, so none hides
 * a use from another.
 */
void sp_collect_parent_a(struct shadow_mmu *mmu, struct shadow_page *sp);
void shadow_zap_page(struct shadow_mmu *mmu, struct shadow_page *sp);

void sp_init_pools(struct shadow_mmu *mmu);
/*
 * Fixed-size objects (zeroed) from the guest's bookkeeping pages, whose
 * frames are charged to it (flood.c keeps its records there). sp_obj_get()
 * returns NULL when no frame can be had within the limits.
 */
void sp_obj_pool_init(struct obj_pool *pool, size_t size);
void *sp_obj_get(struct shadow_mmu *mmu, struct obj_pool *pool);
void sp_obj_put(struct shadow_mmu *mmu, struct obj_pool *pool, void *obj);
void sp_free_all(struct shadow_mmu *mmu);

#endif
