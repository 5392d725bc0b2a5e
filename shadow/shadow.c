/*
 * Shadow MMU core: derives each spte from the guest tables (one function,
 * derive(), used by the fault path, the in-place update of emulated guest
 * writes and the audit, so they cannot disagree), handles shadow faults,
 * emulated guest page-table writes, CR3/mode changes and TLB flushes.
 * Bookkeeping (hash, reverse map, zapping) is in spage.c.
 */
#include <string.h>

#include "shadow/shadow.h"
#include "shadow/reclaim.h"
#include "shadow/spage.h"

#ifndef CR0_NW
#define CR0_NW BIT(29)
#endif
#ifndef CR0_CD
#define CR0_CD BIT(30)
#endif
#ifndef CR4_PCIDE
#define CR4_PCIDE BIT(17)
#endif
#ifndef CR4_PKE
#define CR4_PKE BIT(22)
#endif

/* ---- deriving an spte from the guest tables ---------------------------- */

enum derived_kind {
	DERIVED_NONE,	/* not present: the guest entry is absent, not accessed or invalid */
	DERIVED_LEAF,	/* maps frame gfn with rights access and attributes attr */
	DERIVED_CHILD,	/* points at the shadow page (gfn, role) */
};

struct derived {
	enum derived_kind kind;
	u64 gfn;
	union shadow_role role;
	u8 access;	/* SHADOW_ACC_* of a leaf */
	u64 attr;	/* PWT, PCD, PAT, G of a leaf */
	bool large;	/* a 2 MiB leaf at level 2 (opt.largepages), gfn its first frame */
	u64 pte;	/* the guest entry it was derived from (indirect pages) */
};

/* How derive() decides. */
#define DERIVE_ALIAS 1u	/* a CR0.WP=0 supervisor write alias (leaf_access()) */
#define DERIVE_SPLIT 2u	/* 4 KiB splinters for a guest large page, never a 2 MiB leaf */

/* The walker context equivalent to the mode bits a role records. */
static struct gwalk_ctx role_ctx(const struct shadow_mmu *mmu, union shadow_role role)
{
	struct gwalk_ctx ctx = { .maxphyaddr = mmu->maxphyaddr };

	if (role.guest_mode == GWALK_MODE_OFF)
		return ctx;
	ctx.cr0 = CR0_PG | (role.cr0_wp ? CR0_WP : 0);
	if (role.guest_mode == GWALK_MODE_32BIT) {
		ctx.cr4 = role.cr4_pse ? CR4_PSE : 0;
		return ctx;
	}
	ctx.cr4 = CR4_PAE;
	ctx.efer = (role.efer_nx ? EFER_NXE : 0) |
		   (role.guest_mode == GWALK_MODE_LONG ? EFER_LMA : 0);
	return ctx;
}

/* The entry decoding of role's paging mode (computed the first time it is asked for). */
static const struct shadow_decode *role_decode(struct shadow_mmu *mmu, union shadow_role role)
{
	struct shadow_decode *dec = &mmu->decode[role.guest_mode | role.efer_nx << 2 |
						 role.cr4_pse << 3];

	if (dec->valid)
		return dec;
	dec->ctx = role_ctx(mmu, role);
	for (int level = 1; level <= gwalk_top_level(role.guest_mode); level++) {
		dec->rsvd[level][0] = gwalk_entry_rsvd_mask(&dec->ctx, level, false);
		if (level > 1 && gwalk_entry_is_large(&dec->ctx, level, PTE_PS)) {
			dec->large_levels |= BIT(level);
			dec->rsvd[level][1] = gwalk_entry_rsvd_mask(&dec->ctx, level, true);
		}
	}
	dec->valid = true;
	return dec;
}

static union shadow_role direct_role(int level, u8 access, u8 pat, bool global)
{
	union shadow_role role = { .word = 0 };

	role.level = level;
	role.direct = 1;
	role.access = access;
	role.pat = pat;
	role.global = global;
	return role;
}

static u64 pat_attr(u8 pat_index, bool large)
{
	return (pat_index & 1 ? PTE_PWT : 0) | (pat_index & 2 ? PTE_PCD : 0) |
	       (pat_index & 4 ? (large ? PTE_PAT_LARGE : PTE_PAT4K) : 0);
}

/*
 * May the guest frames [gfn, gfn + 512) be one 2 MiB spte: the switch is
 * on, the host backs them with one aligned run of one memory type, and no
 * frame among them is a shadowed table (it must stay write-protected; one
 * that becomes one later splits the spte, spage.c).
 */
static bool large_ok(struct shadow_mmu *mmu, u64 gfn, unsigned flags)
{
	return mmu->opt.largepages && !(flags & DERIVE_SPLIT) && mmu->host->gfn_to_hpa_large &&
	       !(gfn & (LARGE_FRAMES - 1)) && sp_large_allowed(mmu, gfn) &&
	       mmu->host->gfn_to_hpa_large(mmu->host, gfn) != SHADOW_NO_RAM;
}

/* A 2 MiB leaf: rights and attributes as the 4 KiB leaves of its splinter would have. */
static void derive_large(struct derived *d, u64 gfn, u8 access, u8 pat, bool global)
{
	d->kind = DERIVED_LEAF;
	d->large = true;
	d->gfn = gfn;
	d->access = access;
	d->attr = pat_attr(pat, true) | (global ? PTE_G : 0);
}

static u8 entry_pat_index(u64 pte, bool large)
{
	return ((pte >> 3) & 3) | ((pte & (large ? PTE_PAT_LARGE : PTE_PAT4K)) ? 4 : 0);
}

static u8 entry_access(const struct gwalk_ctx *ctx, u64 pte)
{
	u8 acc = SHADOW_ACC_X;

	if (pte & PTE_W)
		acc |= SHADOW_ACC_W;
	if (pte & PTE_U)
		acc |= SHADOW_ACC_U;
	if ((ctx->efer & EFER_NXE) && (pte & PTE_NX))
		acc &= ~SHADOW_ACC_X;
	return acc;
}

/*
 * Rights of a leaf spte. Read-only until the guest D bit is set (A/D
 * emulation). The alias serves a CR0.WP=0 supervisor write to a read-only
 * page: writable but supervisor-only, so user accesses still fault, and not
 * executable where the guest page is a user page and SMEP would refuse a
 * supervisor fetch from it (KVM's smep_andnot_wp).
 */
static u8 leaf_access(union shadow_role role, u8 acc, bool dirty, bool alias)
{
	if (alias) {
		u8 alias_acc = SHADOW_ACC_W | (acc & SHADOW_ACC_X);

		if ((acc & SHADOW_ACC_U) && role.smep_andnot_wp)
			alias_acc &= ~SHADOW_ACC_X;
		return alias_acc;
	}
	return dirty ? acc : acc & ~SHADOW_ACC_W;
}

/* One 4-byte guest entry covers two PAE shadow entries at this level. */
static bool guest_entry_split(union shadow_role role)
{
	return role.guest_mode == GWALK_MODE_32BIT && role.level == 2;
}

/* A guest table as the entries behind one shadow page's sptes. */
struct table_view {
	const u8 *page;		/* host mapping of the guest frame, NULL: not RAM */
	u64 base;		/* guest entry of spte 0, times 2 when split */
	bool split, small;	/* two sptes per guest entry; 4-byte entries */
};

static void table_view(struct shadow_mmu *mmu, const struct shadow_page *sp,
		       struct table_view *t)
{
	t->page = mmu->host->mem->gfn_to_hva(mmu->host->mem, sp->gfn);
	t->base = (u64)sp->role.quadrant * PT_ENTRIES;
	t->split = guest_entry_split(sp->role);
	t->small = sp->role.guest_mode == GWALK_MODE_32BIT;
}

/* The guest entry behind spte i. */
static inline u64 view_entry(const struct table_view *t, int i)
{
	u64 idx = (t->base + (u64)i) >> t->split;

	if (t->small)
		return __atomic_load_n((const u32 *)t->page + idx, __ATOMIC_RELAXED);
	return __atomic_load_n((const u64 *)t->page + idx, __ATOMIC_RELAXED);
}

static void derive_pae_root(const struct shadow_page *sp, int i, struct derived *d)
{
	union shadow_role child = sp->role;

	child.pae_root = 0;
	child.root_slot = 0;
	child.level = 2;
	switch (sp->role.guest_mode) {
	case GWALK_MODE_OFF:	/* identity map of the low 4 GiB, 1 GiB per entry */
		d->role = direct_role(2, SHADOW_ACC_ALL, 0, false);
		d->gfn = (u64)i << 18;
		break;
	case GWALK_MODE_32BIT:	/* quarter i of the guest page directory */
		child.direct = 0;
		child.quadrant = i;
		d->role = child;
		d->gfn = sp->gfn;
		break;
	default:		/* PAE: the PDPTE register, validated when loaded */
		if (!(sp->pdpte[i] & PTE_P))
			return;
		child.direct = 0;
		d->role = child;
		d->gfn = spte_addr(sp->pdpte[i]) >> PAGE_SHIFT;
		break;
	}
	d->kind = DERIVED_CHILD;
}

static void derive_direct(struct shadow_mmu *mmu, const struct shadow_page *sp, int i,
			  unsigned flags, struct derived *d)
{
	int level = sp->role.level;

	if (level == 1) {
		d->kind = DERIVED_LEAF;
		d->gfn = sp->gfn + i;
		d->access = sp->role.access;
		d->attr = pat_attr(sp->role.pat, false) | (sp->role.global ? PTE_G : 0);
		return;
	}
	d->kind = DERIVED_CHILD;
	d->role = sp->role;
	d->role.level = level - 1;
	d->gfn = sp->gfn + ((u64)i << (9 * (level - 1)));
	/* 2 MiB of a guest 1 GiB page, or of the paging-off identity map. */
	if (level == 2 && large_ok(mmu, d->gfn, flags))
		derive_large(d, d->gfn, sp->role.access, sp->role.pat, sp->role.global);
}

/*
 * Spte i of an out-of-sync sp was just derived afresh from guest entry pte:
 * its snapshot entry records that value, not a new read of guest memory.
 * Other vCPUs write out-of-sync tables directly meanwhile; a newer value
 * recorded here would make the resync skip the stale spte.
 */
static void snap_follow(struct shadow_mmu *mmu, struct shadow_page *sp, int i, u64 pte)
{
	struct table_view t;
	u64 idx;
	u8 *snap;

	table_view(mmu, sp, &t);
	if (!t.page)
		return;
	idx = (t.base + (u64)i) >> t.split;
	snap = (u8 *)sp_unsync_snap(mmu, sp);
	if (t.small) {
		u32 small = (u32)pte;

		memcpy(snap + idx * 4, &small, 4);
	} else {
		memcpy(snap + idx * 8, &pte, 8);
	}
}

/* Guest entry i of sp's table as it is in guest memory now. */
static u64 guest_entry(struct shadow_mmu *mmu, const struct shadow_page *sp, int i, bool *ok)
{
	struct table_view t;

	table_view(mmu, sp, &t);
	*ok = t.page != NULL;
	return t.page ? view_entry(&t, i) : 0;
}

/* Spte i of an indirect page from pte, the guest entry behind it. */
static void derive_guest(struct shadow_mmu *mmu, const struct shadow_page *sp, int i,
			 unsigned flags, u64 pte, struct derived *d)
{
	bool alias = flags & DERIVE_ALIAS;
	union shadow_role role = sp->role;
	const struct shadow_decode *dec;
	const struct gwalk_ctx *ctx;
	int level = role.level;
	bool split = guest_entry_split(role), large;
	u8 acc;

	d->pte = pte;
	if (!(pte & PTE_P) || !(pte & PTE_A))
		return;
	dec = role_decode(mmu, role);
	ctx = &dec->ctx;
	large = (pte & PTE_PS) && (dec->large_levels & BIT(level));
	if (pte & dec->rsvd[level][large])
		return;
	acc = role.access & entry_access(ctx, pte);
	if (level == 1) {
		d->kind = DERIVED_LEAF;
		d->gfn = gwalk_entry_addr(ctx, level, pte, false) >> PAGE_SHIFT;
		d->access = leaf_access(role, acc, pte & PTE_D, alias);
		d->attr = pat_attr(entry_pat_index(pte, false), false) | (pte & PTE_G);
		return;
	}
	d->kind = DERIVED_CHILD;
	if (large) {
		/* This spte maps part (i & 1) of a 4 MiB page: one 2 MiB leaf, or a splinter. */
		u8 leaf_acc = leaf_access(role, acc, pte & PTE_D, alias);

		d->gfn = (gwalk_entry_addr(ctx, level, pte, true) >> PAGE_SHIFT) +
			 (split ? (u64)(i & 1) * PT_ENTRIES : 0);
		if (level == 2 && large_ok(mmu, d->gfn, flags)) {
			derive_large(d, d->gfn, leaf_acc, entry_pat_index(pte, true), pte & PTE_G);
			return;
		}
		d->role = direct_role(level - 1, leaf_acc, entry_pat_index(pte, true), pte & PTE_G);
		return;
	}
	d->gfn = gwalk_entry_addr(ctx, level, pte, false) >> PAGE_SHIFT;
	d->role = role;
	d->role.level = level - 1;
	d->role.access = acc;
	d->role.quadrant = split ? (i & 1) : 0;	/* half of a 4 MiB guest page table */
}

static void derive(struct shadow_mmu *mmu, const struct shadow_page *sp, int i, unsigned flags,
		   struct derived *d)
{
	memset(d, 0, sizeof(*d));
	if (sp->role.pae_root)
		derive_pae_root(sp, i, d);
	else if (sp->role.direct)
		derive_direct(mmu, sp, i, flags, d);
	else {
		bool ok;
		u64 pte = guest_entry(mmu, sp, i, &ok);

		if (ok)
			derive_guest(mmu, sp, i, flags, pte, d);
	}
}

/* The leaf spte for d, or 0 when the frame is not RAM. */
static u64 make_leaf(struct shadow_mmu *mmu, const struct derived *d)
{
	u64 hpa = d->large ? mmu->host->gfn_to_hpa_large(mmu->host, d->gfn) :
			     mmu->host->gfn_to_hpa(mmu->host, d->gfn);
	u64 spte;

	if (hpa == SHADOW_NO_RAM)
		return 0;
	if (d->large) {
		/* No frame inside is a shadowed table (large_ok()): W as the rights say. */
		spte = hpa | PTE_P | PTE_A | PTE_PS | d->attr;
		if (d->access & SHADOW_ACC_W)
			spte |= PTE_W | PTE_D | SPTE_SW_WRITABLE;
	} else {
		spte = hpa | PTE_P | PTE_A | d->attr;
		if (d->access & SHADOW_ACC_W)
			spte |= SPTE_SW_WRITABLE;	/* W comes back when the frame is unshadowed */
		if ((d->access & SHADOW_ACC_W) && !sp_gfn_protected(mmu, d->gfn))
			spte |= PTE_W | PTE_D;
	}
	if (d->access & SHADOW_ACC_U)
		spte |= PTE_U;
	if (!(d->access & SHADOW_ACC_X))
		spte |= PTE_NX;
	return spte;
}

static u64 table_spte(const struct shadow_page *sp, const struct shadow_page *child)
{
	return child->hpa | (sp->role.pae_root ? SPTE_PDPTE_BITS : SPTE_TABLE_BITS);
}

static bool all_zero(const u8 *p, u32 len)
{
	u32 i = 0;

	for (u64 w; i + 8 <= len; i += 8) {	/* a word at a time: whole pages come here */
		memcpy(&w, p + i, 8);
		if (w)
			return false;
	}
	for (; i < len; i++)
		if (p[i])
			return false;
	return true;
}

enum apply_result { APPLIED, ABSENT, NO_MEMORY };

static void resync_gfn(struct shadow_mmu *mmu, u64 gfn);	/* out-of-sync tables, below */

/*
 * Make spte i of sp what d says. With create, a missing child page is
 * built; without, the spte is left not present until a fault needs it.
 */
static enum apply_result apply(struct shadow_mmu *mmu, struct shadow_page *sp, int i,
			       const struct derived *d, bool create, struct shadow_page **childp,
			       bool *created)
{
	struct shadow_page *child;
	u64 spte;

	*childp = NULL;
	*created = false;
	switch (d->kind) {
	case DERIVED_NONE:
		sp_set_spte(mmu, sp, i, 0, 0, NULL);
		return ABSENT;
	case DERIVED_LEAF:
		spte = make_leaf(mmu, d);
		sp_set_spte(mmu, sp, i, spte, d->gfn, NULL);
		if (!spte)
			return ABSENT;
		return spte_present(sp->spt[i]) ? APPLIED : NO_MEMORY;
	case DERIVED_CHILD:
		break;
	}
	child = sp_find(mmu, d->gfn, d->role);
	if (child && child->unsync &&
	    (!spte_present(sp->spt[i]) || sp->aux[i] != (u64)(uintptr_t)child)) {
		/*
		 * Linked into a new path: a vCPU walking it may hold only
		 * translations valid now (SDM 4.10.4), but the sptes may lag the
		 * guest writes not yet invalidated elsewhere (KVM syncs an unsync
		 * page it links too). Zapped if the guest cleared it meanwhile.
		 */
		resync_gfn(mmu, d->gfn);
		child = sp_find(mmu, d->gfn, d->role);
	}
	if (!child && create) {
		resync_gfn(mmu, d->gfn);	/* a frame shadowed twice is write-protected */
		child = sp_create(mmu, d->gfn, d->role);
		if (!child)
			return NO_MEMORY;
		*created = true;
	}
	if (!child) {
		sp_set_spte(mmu, sp, i, 0, 0, NULL);
		return ABSENT;
	}
	sp_set_spte(mmu, sp, i, table_spte(sp, child), 0, child);
	if (!spte_present(sp->spt[i]))
		return NO_MEMORY;
	*childp = child;
	return APPLIED;
}

static bool same_derived(const struct derived *a, const struct derived *b)
{
	return a->kind == b->kind && a->gfn == b->gfn && a->role.word == b->role.word &&
	       a->access == b->access && a->attr == b->attr && a->large == b->large;
}

/* ---- the fault path ---------------------------------------------------- */

static int spte_index(const struct shadow_page *sp, u64 gva)
{
	if (sp->role.pae_root)
		return (gva >> 30) & 3;
	return (gva >> (PAGE_SHIFT + 9 * (sp->role.level - 1))) & (PT_ENTRIES - 1);
}

/*
 * Prefetch (opt.prefetch): after a fault filled a leaf spte, fill empty
 * sptes [first, first + count) of the same table whose guest entries are
 * present with A set already (KVM's rule; a splinter of a guest large page
 * has only such entries): derive() decides each one as a fault would, and
 * the guest sees nothing, since prefetching sets no guest A or D bit. A
 * prefetched spte has A clear: ageing and reclaim see it unused until the
 * CPU uses it.
 */
static void prefetch(struct shadow_mmu *mmu, struct shadow_page *sp, int first, int count)
{
	struct table_view t = { 0 };

	if (!sp->role.direct) {
		table_view(mmu, sp, &t);	/* the table's frame is looked up once */
		if (!t.page)
			return;
	}
	for (int j = first; j < first + count; j++) {
		struct derived d;
		u64 spte, pte;

		if (spte_present(sp->spt[j]))
			continue;
		if (t.page) {
			pte = view_entry(&t, j);
			if ((pte & (PTE_P | PTE_A)) != (PTE_P | PTE_A))
				continue;	/* the common case, checked before derive() */
			memset(&d, 0, sizeof(d));
			derive_guest(mmu, sp, j, 0, pte, &d);
		} else {
			derive(mmu, sp, j, 0, &d);
		}
		if (d.kind != DERIVED_LEAF)
			continue;
		spte = make_leaf(mmu, &d);
		if (!spte)
			continue;
		sp_set_spte(mmu, sp, j, spte & ~PTE_A, d.gfn, NULL);
		mmu->stats.prefetched += spte_present(sp->spt[j]);
	}
}

/*
 * Build the shadow path for gva from the guest tables, which the walk just
 * found valid with A (and D) set. ABSENT means the guest tables changed
 * meanwhile: the guest will simply fault again.
 *
 * Fast path (opt.fastpath): a present upper spte is in sync with the guest
 * (the invariant in shadow.h), so the path is followed down to the first
 * missing spte and only the levels from there are derived, from the entries
 * the walk read (walk->pte[level]: shadow and guest levels are numbered
 * alike in every mode) instead of reading them again. Two exceptions: the
 * link to the splinter of a guest large page is derived again (its rights
 * follow the guest D bit and the alias), and below a table this fault has
 * just write-protected, entries are read afresh (another vCPU may have
 * written it before the protection). Without the fast path every level is
 * derived from guest memory.
 */
static enum apply_result install(struct shadow_vcpu *v, u64 gva, bool alias,
				 const struct gwalk_result *walk)
{
	struct shadow_mmu *mmu = v->mmu;
	struct shadow_page *sp = v->root;
	bool fast = mmu->opt.fastpath, fresh = !fast, leaf_created = false;
	unsigned flags = alias ? DERIVE_ALIAS : 0;

	if (gwalk_mode(&v->ctx) != GWALK_MODE_LONG)
		gva &= 0xffffffffull;
	for (;;) {
		int i = spte_index(sp, gva);
		struct derived d, again;
		struct shadow_page *child;
		enum apply_result r;
		bool created;

		sp->accessed = true;
		sp->write_flood = 0;	/* flood.c: a walk is a use, the write count restarts */
		if (fast && !spte_is_leaf(sp, sp->spt[i]) && spte_present(sp->spt[i])) {
			child = (struct shadow_page *)(uintptr_t)sp->aux[i];
			if (sp->role.direct || !child->role.direct) {
				sp = child;
				continue;
			}
		}
		if (fresh || sp->role.direct) {
			derive(mmu, sp, i, flags, &d);
		} else {
			memset(&d, 0, sizeof(d));
			derive_guest(mmu, sp, i, flags, walk->pte[sp->role.level], &d);
		}
		r = apply(mmu, sp, i, &d, true, &child, &created);
		if (sp->unsync)
			snap_follow(mmu, sp, i, d.pte);
		if (r == APPLIED && d.kind == DERIVED_LEAF && mmu->opt.prefetch) {
			/*
			 * Which neighbours, from measurements (BENCHMARKS.md): the
			 * aligned group, in a splinter (all valid) and in a guest table
			 * this fault shadowed (again, after reclaim, or a fork's copied
			 * entries: many accessed). Looking elsewhere cost randwalk's
			 * faults more than its few hits saved; looking at a whole new
			 * table cost fork and hotcold more than it saved.
			 */
			if (sp->role.direct || leaf_created)
				prefetch(mmu, sp, i & ~(SHADOW_PREFETCH - 1), SHADOW_PREFETCH);
		}
		if (r != APPLIED || d.kind == DERIVED_LEAF)
			return r;
		leaf_created = created && child->role.level == 1;
		if (fast && !created) {
			sp = child;
			continue;
		}
		/*
		 * A new child write-protected its guest table just now; an entry
		 * read before that may have been changed by another vCPU.
		 */
		derive(mmu, sp, i, flags, &again);
		if (!same_derived(&d, &again))
			return apply(mmu, sp, i, &again, false, &child, &created) == NO_MEMORY ?
			       NO_MEMORY : ABSENT;
		fresh = true;
		sp = child;
	}
}

/*
 * The invariant makes the shadow a cache of the guest walk: an spte is
 * present only where the guest entry has A set (at every level), a leaf
 * spte carries the rights combined over the guest walk, and it may be
 * written (W, or SPTE_SW_WRITABLE where we write-protected a guest table)
 * only where the guest leaf has D set. So an access the CPU would permit on
 * the shadow, write protection aside, the guest walk permits and leaves
 * unchanged. The control registers are the real ones the guest runs with.
 */
static bool translate_cached(struct shadow_vcpu *v, u64 gva, u32 access, bool rflags_ac,
			     bool use, u64 *gpa)
{
	struct gwalk_ctx hw = { .rflags_ac = rflags_ac };
	struct shadow_page *sp = v->root;
	u64 spte;
	int i;

	if (gwalk_mode(&v->ctx) != GWALK_MODE_LONG)
		gva &= 0xffffffffull;
	else if ((u64)((s64)(gva << 16) >> 16) != gva)
		return false;
	for (;;) {
		i = spte_index(sp, gva);
		spte = __atomic_load_n(&sp->spt[i], __ATOMIC_RELAXED);
		if (!spte_present(spte))
			return false;
		if (use) {	/* as install() marks the pages a fault walks */
			sp->accessed = true;
			sp->write_flood = 0;
		}
		if (spte_is_leaf(sp, spte))
			break;
		sp = (struct shadow_page *)(uintptr_t)sp->aux[i];
	}
	if (sp->unsync)
		return false;	/* its sptes may be stale */
	if ((access & GACC_WRITE) && !(spte & (PTE_W | SPTE_SW_WRITABLE)))
		return false;	/* most write faults: D clear, or read-only for the guest */
	shadow_hw_control_regs(v, &hw.cr0, &hw.cr4, &hw.efer);
	if (!gwalk_access_permitted(&hw, access, spte & (PTE_W | SPTE_SW_WRITABLE), spte & PTE_U,
				    spte & PTE_NX))
		return false;
	*gpa = (sp->aux[i] << PAGE_SHIFT) +
	       (gva & ((spte_is_large(sp, spte) ? LARGE_PAGE_SIZE : PAGE_SIZE) - 1));
	return true;
}

bool shadow_translate_cached(struct shadow_vcpu *v, u64 gva, u32 access, bool rflags_ac,
			     u64 *gpa)
{
	return translate_cached(v, gva, access, rflags_ac, false, gpa);
}

/* ---- out-of-sync leaf tables ------------------------------------------- */

/* A shadow page taken off the unsync list, with its snapshot, to re-derive. */
struct resync {
	struct shadow_page *sp;
	struct shadow_snap snap;
};

/*
 * First half of bringing gfn's shadows back in sync (opt.unsync): they
 * leave the unsync list into r (their count returned) and the frame is
 * write-protected (*flush: a guest-wide flush is owed before its entries
 * may be read: another vCPU may still write through a cached writable
 * translation). A frame the guest cleared while out of sync (a torn-down
 * table) has its shadows zapped instead, as an emulated clear of the whole
 * page would (*zapped: sp_commit_zap() owed).
 */
static u32 resync_begin(struct shadow_mmu *mmu, u64 gfn, struct resync *r, bool *flush,
			bool *zapped)
{
	struct shadow_page *first = sp_first_indirect(mmu, gfn), *sp, *next;
	const u8 *page;
	u32 n = 0;

	/* The ones out of sync (all of the frame's, but after a failed unsync). */
	for (sp = first; sp; sp = sp_next_indirect(sp->hash_next, gfn)) {
		if (sp->unsync) {
			r[n].sp = sp;
			sp_unsync_del(mmu, sp, &r[n++].snap);
		}
	}
	if (!n)
		return 0;
	mmu->stats.resyncs++;
	page = mmu->host->mem->gfn_to_hva(mmu->host->mem, gfn);
	if (page && all_zero(page, PAGE_SIZE)) {
		for (sp = first; sp; sp = next) {
			next = sp_next_indirect(sp->hash_next, gfn);
			sp_zap(mmu, sp);
		}
		/* A pinned root stays, emptied: still a table, written only through
		 * us (the zap's flush covers its protection too). */
		if (sp_first_indirect(mmu, gfn))
			sp_remove_write(mmu, gfn);
		while (n)
			sp_snap_free(mmu, &r[--n].snap);
		*zapped = true;
		return 0;
	}
	*flush |= sp_remove_write(mmu, gfn);
	return n;
}

/*
 * Second half, after the flush: re-derive the entries that differ from what
 * the sptes reflect (the snapshots), then free the snapshots.
 */
static void resync_finish(struct shadow_mmu *mmu, bool flush, bool zapped, struct resync *r,
			  u32 n)
{
	if (zapped)
		sp_commit_zap(mmu);	/* its flush covers the protection too */
	else if (flush)
		sp_flush_guest(mmu);
	for (u32 k = 0; k < n; k++) {
		struct shadow_page *sp = r[k].sp;
		struct table_view now, then;

		table_view(mmu, sp, &now);
		then = now;
		then.page = r[k].snap.page;
		for (int i = 0; now.page && i < PT_ENTRIES; i++) {
			struct derived d;
			struct shadow_page *child;
			bool created;

			if (view_entry(&now, i) == view_entry(&then, i))
				continue;
			derive(mmu, sp, i, 0, &d);
			apply(mmu, sp, i, &d, false, &child, &created);
		}
		sp_snap_free(mmu, &r[k].snap);
	}
}

static void resync_gfn(struct shadow_mmu *mmu, u64 gfn)
{
	struct resync r[SHADOW_UNSYNC_MAX];
	bool flush = false, zapped = false;
	u32 n = resync_begin(mmu, gfn, r, &flush, &zapped);

	resync_finish(mmu, flush, zapped, r, n);
}

/*
 * The guest invalidates translations wholesale (MOV CR3, INVPCID of a
 * context or all, a paging mode change): what it wrote to out-of-sync
 * tables may take effect only now (SDM 4.10.4), so every one is brought
 * back in sync, on any vCPU's invalidation (the list is the guest's). All
 * frames are protected first, so one guest-wide flush serves them all.
 */
static void resync_all(struct shadow_mmu *mmu)
{
	struct resync r[SHADOW_UNSYNC_MAX];
	bool flush = false, zapped = false;
	u32 n = 0;

	while (mmu->unsync_count)
		n += resync_begin(mmu, mmu->unsync[0]->gfn, r + n, &flush, &zapped);
	resync_finish(mmu, flush, zapped, r, n);
}

/*
 * INVLPG (or INVPCID of one address): only gva's translation must follow
 * the guest tables now; other entries of out-of-sync tables may stay stale
 * as TLB entries for other addresses may (SDM 4.10.4.1). Upper levels are
 * never out of sync.
 */
static void sync_gva(struct shadow_vcpu *v, u64 gva)
{
	struct shadow_page *sp = v->root;
	int i;

	if (!v->mmu->unsync_count)
		return;
	if (gwalk_mode(&v->ctx) != GWALK_MODE_LONG)
		gva &= 0xffffffffull;
	for (;;) {
		i = spte_index(sp, gva);
		if (sp_is_leaf_table(sp))
			break;
		if (!spte_present(sp->spt[i]) || spte_is_large(sp, sp->spt[i]))
			return;
		sp = (struct shadow_page *)(uintptr_t)sp->aux[i];
	}
	if (sp->unsync) {
		struct derived d;
		struct shadow_page *child;
		bool created;

		derive(v->mmu, sp, i, 0, &d);
		apply(v->mmu, sp, i, &d, false, &child, &created);
		snap_follow(v->mmu, sp, i, d.pte);
	}
}

/*
 * A long-mode root that no vCPU runs on (kept by the root cache, or not
 * pinned at all): no CPU can walk it, nor use what it cached from it, since
 * the MOV to CR3 that left it flushed the non-global translations and the
 * paging-structure caches (SDM 4.10.4.1), and none comes back to it but by
 * a MOV to CR3, which resyncs every out-of-sync table first.
 */
static bool root_at_rest(struct shadow_mmu *mmu, const struct shadow_page *sp)
{
	return sp->role.level == 4 && !sp_root_running(mmu, sp);
}

/*
 * A write to a shadowed guest leaf table (opt.unsync): leave it writable
 * instead of emulating this and the writes that follow, as KVM does for 4K
 * tables. Only leaf tables and roots at rest (a fork builds or clears the
 * root of a process that is not running), at most SHADOW_UNSYNC_MAX pages
 * (the oldest is resynced to make room). Its sptes may then be stale: a
 * CPU may also use stale translations until the guest invalidates them,
 * and a fault walks the guest tables anyway.
 */
static bool try_unsync(struct shadow_mmu *mmu, u64 gfn)
{
	struct shadow_page *sp;
	const u8 *page;
	u32 n = 0;

	if (!mmu->opt.unsync)
		return false;
	for (sp = sp_first_indirect(mmu, gfn); sp; sp = sp_next_indirect(sp->hash_next, gfn)) {
		if (!(sp_is_leaf_table(sp) && !sp->root_count) && !root_at_rest(mmu, sp))
			return false;
		n++;
	}
	if (!n || n > SHADOW_UNSYNC_MAX)
		return false;
	while (mmu->unsync_count + n > SHADOW_UNSYNC_MAX)
		resync_gfn(mmu, mmu->unsync[0]->gfn);
	page = mmu->host->mem->gfn_to_hva(mmu->host->mem, gfn);
	for (sp = sp_first_indirect(mmu, gfn); sp; sp = sp_next_indirect(sp->hash_next, gfn)) {
		if (!page || !sp_unsync_add(mmu, sp, page)) {
			resync_gfn(mmu, gfn);	/* no memory for a snapshot: emulate */
			return false;
		}
	}
	sp_restore_write(mmu, gfn);
	mmu->stats.unsynced++;
	return true;
}

static enum shadow_fault_kind fault_done(struct shadow_mmu *mmu, struct shadow_fault *out,
					 enum shadow_fault_kind kind);

/* A write to a write-protected guest table at out->gpa: unsync it, or emulate. */
static enum shadow_fault_kind table_write(struct shadow_mmu *mmu, struct shadow_fault *out)
{
	if (try_unsync(mmu, out->gpa >> PAGE_SHIFT)) {
		mmu->stats.faults_needed++;	/* the frame had to be unprotected */
		return fault_done(mmu, out, SHADOW_FIXED);	/* the guest writes it itself */
	}
	return fault_done(mmu, out, SHADOW_EMULATE_WRITE);
}

static enum shadow_fault_kind fault_done(struct shadow_mmu *mmu, struct shadow_fault *out,
					 enum shadow_fault_kind kind)
{
	out->kind = kind;
	switch (kind) {
	case SHADOW_FIXED:
		mmu->stats.faults_fixed++;
		break;
	case SHADOW_INJECT_PF:
	case SHADOW_INJECT_GP:
		mmu->stats.faults_injected++;
		mmu->stats.faults_needed++;
		break;
	case SHADOW_EMULATE_WRITE:
	case SHADOW_EMULATE_ACCESS:
		mmu->stats.faults_emulate++;
		mmu->stats.faults_needed++;
		break;
	case SHADOW_NOT_RAM:
		mmu->stats.faults_not_ram++;
		mmu->stats.faults_needed++;	/* MMIO is emulated whatever the shadow */
		break;
	case SHADOW_NO_MEMORY:
		break;
	}
	return kind;
}

enum shadow_fault_kind shadow_page_fault(struct shadow_vcpu *v, u64 gva, u32 access,
					 bool rflags_ac, struct shadow_fault *out)
{
	struct shadow_mmu *mmu = v->mmu;
	struct gwalk_ctx ctx = v->ctx;
	struct gwalk_result walk;
	bool is_write = access & GACC_WRITE, is_table, alias = false;
	enum apply_result r;

	mmu->stats.faults++;
	mmu->stats.faults_user += !!(access & GACC_USER);
	memset(out, 0, sizeof(*out));
	/*
	 * A write to a guest table through an spte that would allow it but for
	 * our write protection: nothing to walk or build, emulate it at once.
	 */
	if ((access & GACC_WRITE) && mmu->opt.fastemul &&
	    translate_cached(v, gva, access, rflags_ac, true, &out->gpa) &&
	    sp_gfn_protected(mmu, out->gpa >> PAGE_SHIFT))
		return table_write(mmu, out);
	ctx.rflags_ac = rflags_ac;
	switch (gwalk(&ctx, mmu->host->mem, gva, access, &walk)) {
	case GWALK_OK:
		break;
	case GWALK_FAULT:
		out->pfec = walk.pfec;
		return fault_done(mmu, out, SHADOW_INJECT_PF);
	case GWALK_NONCANONICAL:
		return fault_done(mmu, out, SHADOW_INJECT_GP);
	case GWALK_NOT_RAM:
		out->gpa = walk.gpa;
		out->table = true;
		return fault_done(mmu, out, SHADOW_NOT_RAM);
	}
	out->gpa = walk.gpa;
	if (mmu->host->gfn_to_hpa(mmu->host, walk.gpa >> PAGE_SHIFT) == SHADOW_NO_RAM)
		return fault_done(mmu, out, SHADOW_NOT_RAM);
	is_table = is_write && sp_gfn_protected(mmu, walk.gpa >> PAGE_SHIFT);
	if (is_write && !is_table && !walk.writable) {
		/*
		 * Permitted although read-only: a supervisor write with CR0.WP=0.
		 * A supervisor-only alias of a user page would let later AC=0
		 * reads through under SMAP: emulate that write instead.
		 */
		if (walk.user && v->root->role.smap_andnot_wp)
			return fault_done(mmu, out, SHADOW_EMULATE_ACCESS);
		alias = true;
	}
	/*
	 * Within the limits, the pages install() may create (one per level
	 * below the root) are reserved first: it cannot then fail half way.
	 */
	if (!shadow_reserve(mmu, v->root->role.level - 1))
		return fault_done(mmu, out, SHADOW_NO_MEMORY);
	r = install(v, gva, alias, &walk);
	if (r == NO_MEMORY) {
		shadow_zap_all(mmu);	/* the host itself is out of frames */
		r = install(v, gva, alias, &walk);
	}
	shadow_unreserve(mmu);
	if (r == NO_MEMORY)
		return fault_done(mmu, out, SHADOW_NO_MEMORY);
	sp_commit_zap(mmu);
	/* Only a fault can set a guest A/D bit when the guest accesses: this one had to be. */
	if (!is_table && walk.set_ad)
		mmu->stats.faults_needed++;
	return is_table ? table_write(mmu, out) : fault_done(mmu, out, SHADOW_FIXED);
}

/* ---- emulated guest writes --------------------------------------------- */


/* Store as the guest instruction would: naturally aligned stores stay atomic. */
static void store_guest(u8 *dst, const u8 *src, u32 len)
{
	u64 v = 0;

	if ((len == 8 || len == 4 || len == 2) && !((uintptr_t)dst & (len - 1))) {
		memcpy(&v, src, len);
		if (len == 8)
			__atomic_store_n((u64 *)dst, v, __ATOMIC_RELAXED);
		else if (len == 4)
			__atomic_store_n((u32 *)dst, (u32)v, __ATOMIC_RELAXED);
		else
			__atomic_store_n((u16 *)dst, (u16)v, __ATOMIC_RELAXED);
		return;
	}
	memcpy(dst, src, len);
}

/* Re-derive the sptes of sp that shadow guest bytes [off, off + len). */
static void update_written_sptes(struct shadow_mmu *mmu, struct shadow_page *sp, u32 off,
				 u32 len)
{
	int size = gwalk_entry_size(sp->role.guest_mode);
	bool split = guest_entry_split(sp->role);
	s64 base = (s64)sp->role.quadrant * PT_ENTRIES;

	for (s64 g = off / size; g <= (s64)(off + len - 1) / size; g++) {
		for (s64 s = (g << split) - base; s < ((g + 1) << split) - base; s++) {
			struct derived d;
			struct shadow_page *child;
			bool created;

			if (s < 0 || s >= PT_ENTRIES)
				continue;
			derive(mmu, sp, (int)s, 0, &d);
			apply(mmu, sp, (int)s, &d, false, &child, &created);
			mmu->stats.sptes_updated++;
		}
	}
}

static void guest_write_page(struct shadow_mmu *mmu, u64 gpa, const u8 *data, u32 len)
{
	u64 gfn = gpa >> PAGE_SHIFT;
	u8 *page = mmu->host->mem->gfn_to_hva(mmu->host->mem, gfn);
	struct shadow_page *sp = sp_first_indirect(mmu, gfn), *next;
	u8 old[SHADOW_FLOOD_OLD_MAX], *dst;

	if (!page)
		return;
	dst = page + (gpa & (PAGE_SIZE - 1));
	/* The flood detector tells upkeep of live entries from other writes by the old bytes. */
	if (sp && mmu->flood.written && len <= sizeof(old))
		memcpy(old, dst, len);
	store_guest(dst, data, len);
	if (!sp || sp->unsync)
		return;	/* not a table, or out of sync: resynced at the next invalidation */
	if (len == PAGE_SIZE && all_zero(data, len)) {
		/* The guest cleared the whole table: drop its shadows at once. */
		for (; sp; sp = next) {
			next = sp_next_indirect(sp->hash_next, gfn);
			sp_zap(mmu, sp);
		}
	} else {
		for (; sp; sp = sp_next_indirect(sp->hash_next, gfn))
			update_written_sptes(mmu, sp, gpa & (PAGE_SIZE - 1), len);
	}
	/* Flood detection (flood.c) counts the write and may unshadow the frame. */
	if (mmu->flood.written)
		mmu->flood.written(mmu, gpa, len <= sizeof(old) ? old : NULL, data, len);
}

void shadow_guest_write(struct shadow_mmu *mmu, u64 gpa, const void *data, u32 len)
{
	const u8 *p = data;

	mmu->stats.guest_writes++;
	while (len) {
		u32 chunk = PAGE_SIZE - (gpa & (PAGE_SIZE - 1));

		if (chunk > len)
			chunk = len;
		guest_write_page(mmu, gpa, p, chunk);
		gpa += chunk;
		p += chunk;
		len -= chunk;
	}
	sp_commit_zap(mmu);
}

bool shadow_gfn_is_write_protected(struct shadow_mmu *mmu, u64 gfn)
{
	return sp_gfn_protected(mmu, gfn);
}

/* ---- roots, control registers, flushes --------------------------------- */

/* Role bits common to every page built for the vCPU's current mode. */
static union shadow_role vcpu_role(const struct shadow_vcpu *v)
{
	union shadow_role role = { .word = 0 };
	enum gwalk_mode mode = gwalk_mode(&v->ctx);
	bool wp = v->ctx.cr0 & CR0_WP;

	role.guest_mode = mode;
	role.access = SHADOW_ACC_ALL;
	if (mode == GWALK_MODE_OFF)
		return role;
	/*
	 * Hardware runs with CR0.WP=1 and the guest's SMEP/SMAP (see
	 * shadow_hw_control_regs): what WP=0 permits is served by write
	 * aliases, whose rights depend on SMEP and SMAP. So a change of any
	 * of WP, SMEP-with-WP=0 or SMAP-with-WP=0 selects other shadow pages
	 * (as KVM's role does): an alias never outlives the mode it was made
	 * for.
	 */
	role.cr0_wp = wp;
	role.smep_andnot_wp = !wp && (v->ctx.cr4 & CR4_SMEP);
	role.smap_andnot_wp = !wp && (v->ctx.cr4 & CR4_SMAP);
	if (mode == GWALK_MODE_32BIT)
		role.cr4_pse = !!(v->ctx.cr4 & CR4_PSE);
	else
		role.efer_nx = !!(v->ctx.efer & EFER_NXE);
	return role;
}

static union shadow_role root_role(const struct shadow_vcpu *v, u64 *gfn)
{
	union shadow_role role = vcpu_role(v);
	u64 cr3 = v->ctx.cr3;

	if (role.guest_mode == GWALK_MODE_LONG) {
		role.level = 4;
		*gfn = (cr3 & PTE_ADDR_MASK(v->ctx.maxphyaddr)) >> PAGE_SHIFT;
		return role;
	}
	/* PAE-format shadow: a 4-entry PDPT that shadows no guest table itself. */
	role.level = 3;
	role.pae_root = 1;
	role.direct = 1;
	*gfn = 0;
	if (role.guest_mode == GWALK_MODE_32BIT)
		*gfn = (cr3 & 0xfffff000ull) >> PAGE_SHIFT;
	if (role.guest_mode == GWALK_MODE_PAE) {
		*gfn = (cr3 & 0xffffffe0ull) >> PAGE_SHIFT;
		role.root_slot = (cr3 >> 5) & 0x7f;
	}
	return role;
}

/* Keep the most recently used roots pinned so address-space switches reuse them. */
static void root_cache_touch(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	int pos = SHADOW_ROOT_CACHE - 1;

	for (int i = 0; i < SHADOW_ROOT_CACHE; i++) {
		if (mmu->root_cache[i] == sp) {
			pos = i;
			break;
		}
	}
	if (mmu->root_cache[pos] != sp) {
		if (mmu->root_cache[pos])
			sp_unpin(mmu->root_cache[pos]);
		sp_pin(sp);
	}
	memmove(&mmu->root_cache[1], &mmu->root_cache[0], pos * sizeof(mmu->root_cache[0]));
	mmu->root_cache[0] = sp;
}

static bool load_root(struct shadow_vcpu *v)
{
	struct shadow_mmu *mmu = v->mmu;
	u64 gfn;
	union shadow_role role = root_role(v, &gfn);
	struct shadow_page *sp = sp_find(mmu, gfn, role);

	if (sp) {
		mmu->stats.roots_reused++;
	} else {
		if (!shadow_reserve(mmu, 1))	/* may evict: before anything changes */
			return false;
		resync_gfn(mmu, gfn);
		sp = sp_create(mmu, gfn, role);
		if (!sp) {
			shadow_zap_all(mmu);
			sp = sp_create(mmu, gfn, role);
		}
		shadow_unreserve(mmu);
		if (!sp)
			return false;
		mmu->stats.roots_created++;
	}
	sp->accessed = true;	/* reclaim: a CR3 load uses the root */
	if (role.guest_mode == GWALK_MODE_PAE) {
		/* Entries follow the PDPTE registers loaded with this CR3. */
		for (int i = 0; i < 4; i++) {
			if (sp->pdpte[i] != v->ctx.pdpte[i]) {
				sp->pdpte[i] = v->ctx.pdpte[i];
				sp_set_spte(mmu, sp, i, 0, 0, NULL);
			}
		}
	}
	sp_pin(sp);
	if (v->root)
		sp_unpin(v->root);
	v->root = sp;
	root_cache_touch(mmu, sp);
	sp_commit_zap(mmu);
	return true;
}

enum shadow_cr_result shadow_set_cr3(struct shadow_vcpu *v, u64 cr3)
{
	struct gwalk_ctx old = v->ctx;

	resync_all(v->mmu);
	v->ctx.cr3 = cr3 & ~BIT(63);
	if (gwalk_mode(&v->ctx) == GWALK_MODE_PAE &&
	    !gwalk_load_pdptes(&v->ctx, v->mmu->host->mem)) {
		v->ctx = old;
		return SHADOW_CR_GP;
	}
	if (!load_root(v)) {
		v->ctx = old;
		return SHADOW_CR_NO_MEMORY;
	}
	/* MOV CR3 drops non-global translations (SDM 4.10.4.1); PCIDs are not kept. */
	v->mmu->host->flush_tlb(v->mmu->host, v, (v->ctx.cr4 & CR4_PGE) ? SHADOW_FLUSH_NONGLOBAL
									 : SHADOW_FLUSH_VCPU, 0);
	return SHADOW_CR_OK;
}

enum shadow_cr_result shadow_set_mode(struct shadow_vcpu *v, u64 cr0, u64 cr4, u64 efer)
{
	struct gwalk_ctx old = v->ctx;
	enum gwalk_mode mode;

	resync_all(v->mmu);
	v->ctx.cr0 = cr0;
	v->ctx.cr4 = cr4;
	v->ctx.efer = efer;
	mode = gwalk_mode(&v->ctx);
	/* PAE: these MOV to CR0/CR4 reload the PDPTE registers (SDM 4.4.1). */
	if (mode == GWALK_MODE_PAE &&
	    (mode != gwalk_mode(&old) || ((cr0 ^ old.cr0) & (CR0_PG | CR0_CD | CR0_NW)) ||
	     ((cr4 ^ old.cr4) & (CR4_PAE | CR4_PGE | CR4_PSE | CR4_SMEP))) &&
	    !gwalk_load_pdptes(&v->ctx, v->mmu->host->mem)) {
		v->ctx = old;
		return SHADOW_CR_GP;
	}
	if (!load_root(v)) {
		v->ctx = old;
		return SHADOW_CR_NO_MEMORY;
	}
	v->mmu->host->flush_tlb(v->mmu->host, v, SHADOW_FLUSH_VCPU, 0);
	return SHADOW_CR_OK;
}

u64 shadow_root_hpa(const struct shadow_vcpu *v)
{
	return v->root->hpa;
}

void shadow_hw_control_regs(const struct shadow_vcpu *v, u64 *cr0, u64 *cr4, u64 *efer)
{
	*cr0 = v->ctx.cr0 | CR0_PG | CR0_WP;
	*cr4 = (v->ctx.cr4 | CR4_PAE) & ~(CR4_PSE | CR4_PCIDE | CR4_PKE);
	if (!(v->ctx.cr0 & CR0_PG))
		*cr4 &= ~(CR4_SMEP | CR4_SMAP);
	*efer = v->ctx.efer | EFER_NXE;
}

void shadow_invlpg(struct shadow_vcpu *v, u64 gva)
{
	/* Only out-of-sync tables may be stale; then the real TLB needs the flush. */
	sync_gva(v, gva);
	v->mmu->host->flush_tlb(v->mmu->host, v, SHADOW_FLUSH_GVA, gva);
}

void shadow_invpcid(struct shadow_vcpu *v, int type, u64 gva)
{
	struct shadow_host *host = v->mmu->host;

	if (type == 0)
		sync_gva(v, gva);
	else
		resync_all(v->mmu);
	switch (type) {
	case 0:		/* one address */
		host->flush_tlb(host, v, SHADOW_FLUSH_GVA, gva);
		break;
	case 2:		/* everything, globals included */
		host->flush_tlb(host, v, SHADOW_FLUSH_VCPU, 0);
		break;
	default:	/* 1: one PCID, 3: all PCIDs; globals kept either way */
		host->flush_tlb(host, v, SHADOW_FLUSH_NONGLOBAL, 0);
		break;
	}
}

/* ---- setup, teardown, reclaim hooks ------------------------------------ */

void shadow_init(struct shadow_mmu *mmu, struct shadow_host *host, u8 maxphyaddr)
{
	memset(mmu, 0, sizeof(*mmu));
	mmu->opt.fastpath = true;
	mmu->opt.fastemul = true;
	mmu->opt.prefetch = true;
	mmu->opt.unsync = true;
	mmu->opt.largepages = host->gfn_to_hpa_large != NULL;	/* else nothing to count */
	mmu->host = host;
	mmu->maxphyaddr = maxphyaddr;
	sp_init_pools(mmu);
}

void shadow_destroy(struct shadow_mmu *mmu)
{
	memset(mmu->root_cache, 0, sizeof(mmu->root_cache));
	if (mmu->flood.release)	/* flood.c's records live in bookkeeping pages */
		mmu->flood.release(mmu);
	sp_free_all(mmu);
	shadow_pool_detach(mmu);
}

bool shadow_vcpu_init(struct shadow_vcpu *v, struct shadow_mmu *mmu)
{
	memset(v, 0, sizeof(*v));
	v->mmu = mmu;
	v->ctx.maxphyaddr = mmu->maxphyaddr;
	return load_root(v);
}

void shadow_vcpu_release(struct shadow_vcpu *v)
{
	if (v->root)
		sp_unpin(v->root);
	v->root = NULL;
}

void shadow_zap_all(struct shadow_mmu *mmu)
{
	struct shadow_page *sp, *next;

	mmu->stats.zap_all++;
	/* Cached roots go too; only the roots vCPUs run on stay (emptied). */
	for (int i = 0; i < SHADOW_ROOT_CACHE; i++) {
		if (mmu->root_cache[i])
			sp_unpin(mmu->root_cache[i]);
		mmu->root_cache[i] = NULL;
	}
	sp = mmu->oldest;
	for (; sp; sp = next) {
		next = sp->newer;
		sp_zap(mmu, sp);
	}
	sp_commit_zap(mmu);
}

/* ---- audit ------------------------------------------------------------- */

/*
 * An existing spte may be stricter than derived: no W before it was
 * un-protected or dirty (nor SPTE_SW_WRITABLE, if built before the guest D
 * bit was set through another shadow of the same table). A and D are the
 * CPU's to set.
 */
static bool leaf_matches(u64 spte, u64 want)
{
	return spte == want || spte == (want & ~PTE_W) ||
	       spte == (want & ~(PTE_W | SPTE_SW_WRITABLE));
}

static bool leaf_ok(struct shadow_mmu *mmu, const struct shadow_page *sp, int i, u64 spte)
{
	struct derived d;
	u64 want;

	spte &= ~(PTE_A | PTE_D);
	derive(mmu, sp, i, 0, &d);
	if (d.kind != DERIVED_LEAF)
		return false;
	want = make_leaf(mmu, &d) & ~(PTE_A | PTE_D);
	if (leaf_matches(spte, want))
		return sp->aux[i] == d.gfn;
	if (!sp->role.cr0_wp) {
		derive(mmu, sp, i, DERIVE_ALIAS, &d);
		want = make_leaf(mmu, &d) & ~(PTE_A | PTE_D);
		return leaf_matches(spte, want) && sp->aux[i] == d.gfn;
	}
	return false;
}

/* A link of sp: to a live child that lists it; and, but out of sync, the one derived. */
static bool child_ok(struct shadow_mmu *mmu, const struct shadow_page *sp, int i, u64 spte)
{
	struct shadow_page *child = (struct shadow_page *)(uintptr_t)sp->aux[i];
	struct derived d, alias;
	union shadow_role stricter;

	if (!child || child->zapped || (spte & ~PTE_A) != table_spte(sp, child) ||
	    parents_count(child, &sp->spt[i]) != 1)
		return false;
	if (sp->unsync)
		return true;	/* a root at rest: stale until resynced */
	/* A guest large page may be a splinter even where a 2 MiB spte could map it. */
	derive(mmu, sp, i, DERIVE_SPLIT, &d);
	derive(mmu, sp, i, DERIVE_SPLIT | DERIVE_ALIAS, &alias);
	if (d.kind != DERIVED_CHILD || child->gfn != d.gfn)
		return false;
	stricter = d.role;
	stricter.access &= ~SHADOW_ACC_W;	/* splinter built before the guest D bit */
	return child->role.word == d.role.word || child->role.word == stricter.word ||
	       (!sp->role.cr0_wp && child->role.word == alias.role.word);
}

static void count_rmap_entry(struct shadow_mmu *mmu, u64 *spte, void *arg)
{
	(void)mmu;
	(void)spte;
	(*(unsigned *)arg)++;
}

/* The shadowed-table frames of the region whose reverse-map key is key, counted afresh. */
static u32 region_tables(struct shadow_mmu *mmu, u64 key)
{
	u32 n = 0;

	for (u64 gfn = key & ~LARGE_KEY; gfn < (key & ~LARGE_KEY) + LARGE_FRAMES; gfn++)
		n += sp_first_indirect(mmu, gfn) != NULL;
	return n;
}

unsigned shadow_audit(struct shadow_mmu *mmu)
{
	unsigned problems = 0, leaves = 0, rmapped = 0, links = 0, parents = 0;
	u64 table_frames = 0, counted = 0;

	for (struct shadow_page *sp = mmu->oldest; sp; sp = sp->newer) {
		for (int i = 0; i < PT_ENTRIES; i++) {
			u64 spte = sp->spt[i];

			/* The present bitmap (spage.c) is exact: zapping relies on it. */
			problems += spte_present(spte) != !!(sp->present[i / 64] & (1ull << (i % 64)));
			if (!spte_present(spte))
				continue;
			if (!spte_is_leaf(sp, spte)) {
				problems += !child_ok(mmu, sp, i, spte);
				links++;
				continue;
			}
			leaves++;
			problems += !sp->unsync && !leaf_ok(mmu, sp, i, spte);	/* stale allowed */
			problems += rmap_count(mmu, spte_rmap_key(sp, i), &sp->spt[i]) != 1;
			if (spte_is_large(sp, spte))	/* no table inside, write-protected or not */
				problems += !mmu->opt.largepages || sp_large_tables(mmu, sp->aux[i]);
			else
				problems += (spte & PTE_W) && sp_gfn_protected(mmu, sp->aux[i]);
		}
		parents += parents_count(sp, NULL);
		table_frames += sp_is_indirect(sp) && sp == sp_first_indirect(mmu, sp->gfn);
	}
	/* Parent lists hold exactly the present upper sptes checked above. */
	problems += parents != links;
	/* The reverse map holds nothing but the present leaves counted above. */
	for (int b = 0; b < SHADOW_RMAP_HASH; b++) {
		for (struct rmap_head *h = mmu->rmap_hash[b]; h; h = h->next) {
			rmap_for_each(mmu, h->gfn, count_rmap_entry, &rmapped);
			if (h->gfn & LARGE_KEY) {
				problems += h->tables != region_tables(mmu, h->gfn);
				counted += h->tables;
			}
		}
	}
	problems += rmapped != leaves;
	/* With 2 MiB sptes, every region counts its table frames exactly. */
	problems += mmu->opt.largepages ? counted != table_frames : counted != 0;
	return problems;
}
