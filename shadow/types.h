/*
 * The shadow MMU's data structures, shared by every file of shadow/ and by
 * its callers; the entry points are in shadow/shadow.h (faults, CR writes,
 * guest stores), shadow/reclaim.h (limits and eviction), shadow/flood.h and
 * shadow/age.h.
 */
#ifndef SHADOW_TYPES_H
#define SHADOW_TYPES_H

#include "lib/types.h"
#include "shadow/gwalk.h"

#define SHADOW_NO_RAM (~0ull)	/* gfn_to_hpa(): the frame is not guest RAM */
#define SHADOW_MAX_LEVEL 4
#define SHADOW_ROOT_CACHE 8	/* roots kept pinned per guest, most recently used */
#define SHADOW_PAGE_HASH 512	/* buckets of the (gfn, role) -> shadow page hash */
#define SHADOW_RMAP_HASH 1024	/* buckets of the gfn -> sptes reverse map */
#define SHADOW_PREFETCH 8	/* splinters: sptes a fault fills together (aligned group) */
#define SHADOW_UNSYNC_MAX 8	/* shadow pages out of sync at once (oldest resynced first) */

struct shadow_vcpu;

enum shadow_flush {
	SHADOW_FLUSH_GVA,	/* vCPU v only: one linear address, global or not (INVLPG) */
	SHADOW_FLUSH_NONGLOBAL,	/* vCPU v only: all but global translations */
	SHADOW_FLUSH_VCPU,	/* vCPU v only: everything */
	SHADOW_FLUSH_GUEST,	/* every vCPU of the guest (v NULL), TLBs and paging-
				 * structure caches, synchronous: on return no vCPU runs
				 * on translations from before the call (each in guest
				 * mode was kicked out and waited for; each flushes before
				 * it enters again). Sent before shadow tables are freed,
				 * after sptes lose write access (then guest entries are
				 * read) and after A bits are cleared */
};

/*
 * What the hypervisor provides. Embed it in a larger struct for private
 * state. Calls are made with the caller's per-guest lock held.
 */
struct shadow_host {
	/* A 4 KiB page, zeroed if zero (otherwise the MMU writes every byte
	 * before it reads it): returns its address, *hpa its host-physical
	 * address (below 4 GiB if below_4g: PAE-format roots live in a 32-bit
	 * CR3). NULL when the guest's budget is used up: the MMU then drops
	 * all its pages and retries once. Also used for bookkeeping pages. */
	void *(*alloc_page)(struct shadow_host *host, u64 *hpa, bool below_4g, bool zero);
	void (*free_page)(struct shadow_host *host, void *page, u64 hpa);
	/* Host-physical address of guest frame gfn, or SHADOW_NO_RAM. */
	u64 (*gfn_to_hpa)(struct shadow_host *host, u64 gfn);
	/* Host-physical address of the run backing guest frames [gfn, gfn + 512)
	 * (gfn 512-aligned) when one 2 MiB spte may map them: RAM, contiguous and
	 * 2 MiB-aligned on the host, one memory type over it (SDM 13.11.9);
	 * SHADOW_NO_RAM otherwise. NULL: never (no 2 MiB sptes). */
	u64 (*gfn_to_hpa_large)(struct shadow_host *host, u64 gfn);
	/* v: the vCPU whose instruction asks (it runs this call on its own
	 * CPU), NULL with SHADOW_FLUSH_GUEST. */
	void (*flush_tlb)(struct shadow_host *host, struct shadow_vcpu *v, enum shadow_flush what,
			  u64 gva);
	/* Guest RAM as the hypervisor sees it (for guest tables). */
	struct guest_mem *mem;
};

struct shadow_stats {
	u64 faults;		/* shadow_page_fault() calls */
	u64 faults_fixed;	/* ...that installed a translation */
	u64 faults_injected;	/* ...that were guest #PF (or #GP) */
	u64 faults_emulate;	/* ...that need an emulated access (see below) */
	u64 faults_not_ram;	/* ...that reached MMIO or a hole */
	u64 faults_needed;	/* ...that no shadow could have avoided: the guest walk set
				 * an A or D bit, the fault was the guest's (injected), or
				 * it wrote a write-protected guest table (emulated) */
	u64 faults_user;	/* ...taken by user-mode accesses (flood.c: the guest ran
				 * more than the kernel loop writing a table) */
	u64 guest_writes;	/* shadow_guest_write() calls */
	u64 sptes_updated;	/* sptes rewritten in place by guest writes */
	u64 prefetched;		/* sptes filled by prefetch, not by their own fault */
	u64 large_mapped;	/* 2 MiB sptes installed (opt.largepages) */
	u64 large_split;	/* ...dropped because a frame inside became a shadowed table */
	u64 unsynced;		/* guest leaf tables and roots at rest left writable (out of sync) */
	u64 resyncs;		/* ...brought back in sync (write-protected, re-derived) */
	u64 pages_created;
	u64 pages_zapped;
	u64 roots_reused;	/* CR3 loads that found their root already built */
	u64 roots_created;
	u64 write_protects;	/* sptes that lost W because their frame became a table */
	u64 zap_all;		/* shadow_zap_all() runs (also on allocation failure) */
	u64 pages_in_use[SHADOW_MAX_LEVEL + 1];	/* shadow pages now, per level; updated
						 * atomically, readable without the lock */
	/* Reclaim (shadow/reclaim.c): pages evicted to stay within the limits, pages
	 * the policy examined to choose them, faults refused for lack of pages. */
	u64 evictions;
	u64 evict_examined;
	u64 reserve_failures;
	/* Flood detection (shadow/flood.c): use tests made on written pages, frames
	 * unshadowed by the write count or by a pattern (a run of zero writes),
	 * frames shadowed again soon after (likely wrong guesses), and writes taken
	 * as upkeep of a live table, not counted (flags of a present mapping
	 * changed, an empty slot filled: fork, ageing, mprotect, fault-around). */
	u64 flood_checks;
	u64 flood_kept;		/* write runs that ended on a use of the table: its A bits
				 * found set, or a fault walking through it */
	u64 flood_deferred;	/* ...that could not tell yet: the table is under a running
				 * root and the guest has done nothing else since */
	u64 unshadowed_flood;
	u64 unshadowed_pattern;
	u64 unshadow_false_positive;	/* with no parent entry changed meanwhile: live */
	u64 unshadow_reused;	/* shadowed again soon, but after a parent entry unlinked or
				 * newly linked it: the guest freed the table and reused the
				 * frame as a new one, which the unshadow did not foresee */
	u64 unshadow_untracked;	/* unshadows left unrecorded (no bookkeeping frame could be
				 * had): 0 for the two counts above to be exact */
	u64 flood_live_writes;
	/* Guest-wide flushes asked for because A bits the CPU had set were cleared
	 * (reclaim, flood and ageing passes; spage.c batches them). */
	u64 accessed_flushes;
	u64 guest_flushes;	/* SHADOW_FLUSH_GUEST requests, all causes (sp_flush_guest()) */
};

/* Which parts of a translation a shadow page depends on (its lookup key with gfn). */
union shadow_role {
	u32 word;
	struct {
		u32 level : 3;		/* 1 = page table ... 4 = PML4 */
		u32 guest_mode : 2;	/* enum gwalk_mode of the guest table */
		u32 direct : 1;		/* no guest table behind it: identity, large page,
					 * PAE root */
		u32 quadrant : 2;	/* 32-bit guests: which part of the guest table */
		u32 access : 3;		/* SHADOW_ACC_*: rights above (or, direct, of the leaves) */
		u32 cr0_wp : 1;
		u32 efer_nx : 1;
		u32 cr4_pse : 1;
		u32 smep_andnot_wp : 1;
		u32 smap_andnot_wp : 1;	/* CR4.SMAP with CR0.WP=0: no write alias of a
					 * user page (it would hide SMAP faults), and no
					 * page shared with SMAP=0, where there may be one */
		u32 pat : 3;		/* direct leaves: PAT:PCD:PWT of the guest large page */
		u32 global : 1;		/* direct leaves: G of the guest large page */
		u32 pae_root : 1;	/* the 4-entry PDPT of a PAE-format shadow */
		u32 root_slot : 7;	/* PAE guest root: CR3 bits 11:5 */
	};
};

#define SHADOW_ACC_W 1u
#define SHADOW_ACC_U 2u
#define SHADOW_ACC_X 4u
#define SHADOW_ACC_ALL 7u

struct spte_list_node;
struct rmap_head;
/* Sptes pointing at a page, or mapping a gfn: most often one, held inline. */
struct spte_list {
	u64 *single;
	struct spte_list_node *head;	/* the others, 14 per node */
};

/* Descriptor of one shadow page table. */
struct shadow_page {
	u64 gfn;		/* guest table frame, or first frame a direct page maps */
	union shadow_role role;
	u64 *spt;		/* the 512 sptes the CPU walks */
	u64 hpa;
	u64 *aux;		/* per spte: gfn of a leaf, or the child's descriptor */
	u64 aux_hpa;
	struct shadow_page *hash_next;
	struct shadow_page *owner_next;	/* chain of the spt -> descriptor hash */
	struct shadow_page *rc_prev, *rc_next;	/* its reclaim list (rc_list) */
	u8 rc_list;		/* enum shadow_rc_lists */
	u64 rc_seq;		/* when it joined that list (rc.seq) */
	u64 rc_armed;		/* CLOCK: pass that cleared its A bits on probation (0: none) */
	struct shadow_page *older, *newer;	/* all pages in creation order */
	struct spte_list parents;	/* sptes that point at this page */
	u32 root_count;		/* pins: a vCPU's current root or the root cache */
	u32 write_flood;	/* guest writes since it was last seen used (flood.c) */
	u64 flood_since;	/* flood.c: guest events when its write run began */
	bool flood_run;		/* flood.c: a write run began and has had no verdict */
	bool accessed;		/* software reference bit, set when a fault walks it */
	/* A parent spte's A bit is read by three users, each clearing it: a use
	 * one of them sees is kept for the others here (sp_collect_parent_a()). */
	bool age_used, flood_used;
	u64 present[PT_ENTRIES / 64];	/* which sptes are present (spage.c) */
	bool zapped;
	bool unsync;		/* leaf table or root at rest the guest writes directly: its
				 * sptes may be stale until resync (shadow.c), on mmu->unsync[] */
	u64 created;		/* creation sequence number */
	u64 pdpte[4];		/* PAE guest roots: the PDPTEs the entries were built from */
};

struct shadow_pool;
struct shadow_mmu;

/* CLOCK's lists (reclaim.c): on probation, leaves apart; proven in use. */
enum shadow_rc_lists {
	SHADOW_RC_NONE,
	SHADOW_RC_PROB_LEAF,
	SHADOW_RC_PROB_DIR,
	SHADOW_RC_HOT,
	SHADOW_RC_LISTS
};

struct shadow_rc_queue {
	struct shadow_page *head, *tail;	/* oldest first */
	u64 count;
};

/*
 * One guest's share of a struct shadow_pool (API in shadow/reclaim.h).
 * used and limit are atomics that anyone may read without the guest lock;
 * everything else belongs to the guest lock.
 */
struct shadow_mmu_reclaim {
	struct shadow_pool *pool;	/* NULL: no limit (frames are still counted) */
	u64 used;		/* host frames of this guest's shadow MMU */
	u64 pages;		/* its shadow pages */
	u64 limit;		/* shadow_pages=N: host frames */
	u64 reserved;		/* frames charged to the pool, not yet taken */
	u32 policy;		/* enum shadow_reclaim_policy */
	struct shadow_rc_queue lists[SHADOW_RC_LISTS];	/* every page is on one (spage.c) */
	struct shadow_page *hand;	/* CLOCK: next page of the HOT list to examine */
	u64 seq;		/* list joins so far */
	u64 pass;		/* CLOCK: eviction passes so far */
	s32 credit;		/* CLOCK: looks it may still take (reclaim.c) */
	/* SHADOW_RECLAIM_CALLER: the next victim (NULL: none), pages examined added */
	struct shadow_page *(*pick)(struct shadow_mmu *mmu, u64 *examined);
};

struct shadow_mmu;

#define SHADOW_FLOOD_HASH 64	/* buckets of flood.c's unshadowed-frame records */

struct flood_unshadowed;
struct shadow_flood_event;
struct pool_page;

/* Fixed-size objects carved from bookkeeping pages (spage.c). */
struct obj_pool {
	u32 size;
	struct pool_page *partial;	/* its pages with a free object */
};

/*
 * Flood detector state (shadow/flood.c). The core calls it through these
 * hooks, NULL while detection is off (flood=off), so builds without flood.c
 * link unchanged.
 */
struct shadow_flood {
	/* After an emulated store of len bytes at gpa inside one page that holds a
	 * shadowed table (or did until this store cleared it all); old: the bytes
	 * before, when len <= SHADOW_FLOOD_OLD_MAX, else NULL. */
	void (*written)(struct shadow_mmu *mmu, u64 gpa, const u8 *old, const u8 *data,
			u32 len);
	/* gfn has just become a shadowed table again. */
	void (*shadowed)(struct shadow_mmu *mmu, u64 gfn);
	/* shadow_destroy(): give back the records' bookkeeping pages. */
	void (*release)(struct shadow_mmu *mmu);
	/* Debug trace (shadow_flood_trace(), off by default): every event of the
	 * detector, for the caller to log with the guest's state. */
	void (*trace)(struct shadow_mmu *mmu, const struct shadow_flood_event *ev);
	bool count_upkeep;	/* count upkeep writes too: the use test alone decides
				 * (shadow_flood_count_upkeep(), for measurement) */
	u64 zero_gfn;		/* the frame the current run of zero writes goes to */
	u32 zero_run;		/* its length */
	u32 zero_entries;	/* guest entries it zeroed */
	/* Every frame unshadowed in the last SHADOW_FLOOD_SOON faults (exactly: a
	 * record each, in charged bookkeeping pages, dropped when it is shadowed
	 * again or when the window has passed), by gfn and oldest first. */
	struct obj_pool pool;
	struct flood_unshadowed *hash[SHADOW_FLOOD_HASH];
	struct flood_unshadowed *oldest, *newest;
	u64 remembered;		/* records held now */
};

#define SHADOW_FLOOD_OLD_MAX 16

/*
 * Optimisation switches (guest options fastpath=, fastemul=, prefetch=, unsync=,
 * largepages=), all on by default; off gives the plain algorithm each one
 * shortcuts, for measurement and as a reference. None changes what the guest can observe.
 */
struct shadow_options {
	bool fastpath;	/* faults descend the sptes already present and derive the rest
			 * from the entries the guest walk read */
	bool fastemul;	/* emulated table writes: the fault and the emulator translate
			 * through the shadow tables where they tell, no guest walk */
	bool prefetch;	/* a fault also fills neighbours whose guest entries are
			 * accessed already (shadow.c says which) */
	bool unsync;	/* a written guest leaf table (or root at rest) is left writable
			 * (out of sync) until the guest's next TLB invalidation */
	bool largepages;	/* a guest 2 MiB (or larger) page is shadowed by 2 MiB sptes
				 * where host->gfn_to_hpa_large() allows and no frame inside
				 * is a shadowed table; set before the first root is built */
};

/*
 * How guest entries decode under one paging mode as a role records it
 * (guest_mode, efer_nx, cr4_pse): derived once per MMU (shadow.c), so
 * deriving an spte does not rebuild a walker context and its masks.
 */
struct shadow_decode {
	bool valid;
	u8 large_levels;	/* BIT(level): PS there maps a page */
	struct gwalk_ctx ctx;	/* the walker context of the mode */
	u64 rsvd[SHADOW_MAX_LEVEL + 1][2];	/* reserved bits by level, [large] */
};

#define SHADOW_DECODES 16	/* guest_mode (2 bits), efer_nx, cr4_pse */

struct shadow_mmu {
	struct shadow_host *host;
	u8 maxphyaddr;
	struct shadow_stats stats;
	struct shadow_page *page_hash[SHADOW_PAGE_HASH];
	struct shadow_page *owner_hash[SHADOW_PAGE_HASH];	/* by spt page: whose spte is it */
	struct rmap_head *rmap_hash[SHADOW_RMAP_HASH];
	struct shadow_page *oldest, *newest;
	struct shadow_page *root_cache[SHADOW_ROOT_CACHE];
	struct shadow_page *zap_pending;	/* unlinked, freed after a guest-wide flush */
	bool flush_pending;	/* A bits were cleared: flush before relying on them */
	struct obj_pool page_pool, node_pool, rmap_pool;
	struct pool_page *pool_pages;	/* all bookkeeping pages */
	u64 seq;
	struct shadow_mmu_reclaim rc;
	struct shadow_flood flood;
	struct shadow_options opt;
	struct shadow_page *unsync[SHADOW_UNSYNC_MAX];	/* out of sync, oldest first */
	struct shadow_snap {	/* ...and its snapshot: the guest table as its sptes reflect it */
		u8 *page;
		u64 hpa;
	} unsync_snap[SHADOW_UNSYNC_MAX];
	u32 unsync_count;
	struct shadow_decode decode[SHADOW_DECODES];
};

struct shadow_vcpu {
	struct shadow_mmu *mmu;
	struct gwalk_ctx ctx;	/* guest CR0/CR3/CR4/EFER, MAXPHYADDR, PDPTE registers */
	struct shadow_page *root;
};

enum shadow_fault_kind {
	SHADOW_FIXED,		/* shadow updated: resume the guest */
	SHADOW_INJECT_PF,	/* inject #PF(pfec), CR2 = gva */
	SHADOW_INJECT_GP,	/* non-canonical address: inject #GP(0) */
	SHADOW_EMULATE_WRITE,	/* write to a write-protected guest page table at gpa:
				 * emulate the instruction, store via shadow_guest_write() */
	SHADOW_EMULATE_ACCESS,	/* permitted but not expressible in the shadow (CR0.WP=0
				 * supervisor write to a read-only user page with SMAP
				 * on): emulate the instruction with gpa */
	SHADOW_NOT_RAM,		/* gpa is not RAM: MMIO emulation (table: a guest paging
				 * structure itself is not RAM) */
	SHADOW_NO_MEMORY,	/* no shadow page could be had: nothing reclaimable
				 * within the guest's limit or the pool (nothing
				 * changed: let the guest wait and retry, or stop it),
				 * or the host had no frame even after zap-all */
};

struct shadow_fault {
	enum shadow_fault_kind kind;
	u32 pfec;	/* SHADOW_INJECT_PF */
	u64 gpa;	/* SHADOW_EMULATE_*, SHADOW_NOT_RAM */
	bool table;	/* SHADOW_NOT_RAM: gpa is a guest paging entry, not data */
};

#endif
