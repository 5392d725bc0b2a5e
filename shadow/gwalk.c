/*
 * Guest page-table walker (SDM Vol. 3A 4.3-4.8). Each paging mode is
 * described as data (struct gwalk_format) and one loop walks all of them.
 *
 * Accessed/dirty rule (SDM 4.8: "whenever the processor uses a
 * paging-structure entry as part of linear-address translation, it sets the
 * accessed flag"): every paging-structure entry above the leaf gets A=1 as
 * the walk goes down, before the next level is read, so a walk that later
 * stops on a not-present or reserved entry, or on a protection fault, leaves
 * A=1 on the levels above the leaf. The leaf (PTE, or the PDE/PDPTE of a
 * large page) is used only by an access that is permitted: it gets A, and D
 * on a write, only then, as Intel CPUs do (kvm-unit-tests' access test checks
 * that a faulting access leaves the leaf unchanged). The entry that stops a
 * walk is not used and is left alone. Bits are set with compare-exchange on
 * guest memory; if another agent changed the entry in between, the walk
 * restarts. The PAE PDPTE registers have no A bit.
 */
#include <string.h>

#include "shadow/gwalk.h"

struct gwalk_format {
	u8 top_level;		/* first level of the walk */
	u8 entry_size;		/* bytes per entry: 4 or 8 */
	u8 index_bits;		/* address bits each level translates: 10 or 9 */
	u8 large_levels;	/* bit n set: a PS=1 entry at level n maps a page */
	bool ps_needs_pse;	/* 32-bit: PS is honoured only with CR4.PSE (else ignored) */
	bool pdpte_regs;	/* PAE: the top level comes from the PDPTE registers */
	bool high_rsvd;		/* PAE: bits 62:52 are reserved rather than ignored */
	bool va32;		/* linear addresses are 32 bits */
};

static const struct gwalk_format formats[] = {
	[GWALK_MODE_32BIT] = {
		.top_level = 2, .entry_size = 4, .index_bits = 10,
		.large_levels = BIT(2), .ps_needs_pse = true, .va32 = true,
	},
	[GWALK_MODE_PAE] = {
		.top_level = 3, .entry_size = 8, .index_bits = 9,
		.large_levels = BIT(2), .pdpte_regs = true, .high_rsvd = true, .va32 = true,
	},
	[GWALK_MODE_LONG] = {
		.top_level = 4, .entry_size = 8, .index_bits = 9,
		.large_levels = BIT(2) | BIT(3),
	},
};

/* Bits hi..lo set; empty when lo > hi. */
static u64 bit_range(int hi, int lo)
{
	if (lo > hi)
		return 0;
	return (~0ull >> (63 - hi)) & (~0ull << lo);
}

enum gwalk_mode gwalk_mode(const struct gwalk_ctx *ctx)
{
	if (!(ctx->cr0 & CR0_PG))
		return GWALK_MODE_OFF;
	if (!(ctx->cr4 & CR4_PAE))
		return GWALK_MODE_32BIT;
	return (ctx->efer & EFER_LMA) ? GWALK_MODE_LONG : GWALK_MODE_PAE;
}

int gwalk_top_level(enum gwalk_mode mode)
{
	return mode == GWALK_MODE_OFF ? 0 : formats[mode].top_level;
}

int gwalk_entry_size(enum gwalk_mode mode)
{
	return mode == GWALK_MODE_OFF ? 8 : formats[mode].entry_size;
}

int gwalk_level_shift(enum gwalk_mode mode, int level)
{
	int bits = mode == GWALK_MODE_32BIT ? 10 : 9;

	return PAGE_SHIFT + bits * (level - 1);
}

/* Reserved bits of a PAE PDPTE register (SDM 4.4.1, table 4-8). */
static u64 pdpte_rsvd_mask(const struct gwalk_ctx *ctx)
{
	return bit_range(2, 1) | bit_range(8, 5) | bit_range(63, ctx->maxphyaddr);
}

static bool is_pdpte_reg(const struct gwalk_format *fmt, int level)
{
	return fmt->pdpte_regs && level == fmt->top_level;
}

/*
 * Reserved bits of a paging entry that are the same at every level of a
 * walk: computed once per walk (the walk is the fault path's main cost).
 */
static u64 rsvd_common(const struct gwalk_ctx *ctx, const struct gwalk_format *fmt)
{
	u64 mask;

	if (fmt->entry_size == 4)
		return 0;
	/* PAE and 4-level (SDM 4.4.2, 4.5.4): address bits above MAXPHYADDR. */
	mask = bit_range(51, ctx->maxphyaddr);
	if (fmt->high_rsvd)
		mask |= bit_range(62, 52);
	if (!(ctx->efer & EFER_NXE))
		mask |= PTE_NX;
	return mask;
}

static inline u64 rsvd_mask(const struct gwalk_ctx *ctx, const struct gwalk_format *fmt,
			    u64 common, int level, bool large)
{
	if (is_pdpte_reg(fmt, level))
		return pdpte_rsvd_mask(ctx);
	if (fmt->entry_size == 4) {
		/*
		 * 32-bit paging (SDM 4.3): only a 4 MiB PDE has reserved bits:
		 * bit 21, and the PSE-36 bits 20:13 that would hold physical
		 * address bits at or above min(MAXPHYADDR, 40).
		 */
		int phys = ctx->maxphyaddr < 40 ? ctx->maxphyaddr : 40;

		return large ? BIT(21) | bit_range(20, 13 + phys - 32) : 0;
	}
	if (large)	/* address bits below the page size, above the PAT bit */
		return common | bit_range(PAGE_SHIFT + fmt->index_bits * (level - 1) - 1, 13);
	if (level > 1 && !(fmt->large_levels & BIT(level)))
		return common | PTE_PS;	/* PS must be 0 where no page can be mapped (PML4E) */
	return common;
}

u64 gwalk_entry_rsvd_mask(const struct gwalk_ctx *ctx, int level, bool large)
{
	const struct gwalk_format *fmt = &formats[gwalk_mode(ctx)];

	return rsvd_mask(ctx, fmt, rsvd_common(ctx, fmt), level, large);
}

static inline bool entry_is_large(const struct gwalk_ctx *ctx, const struct gwalk_format *fmt,
				  int level, u64 pte)
{
	if (level == 1 || !(fmt->large_levels & BIT(level)) || !(pte & PTE_PS))
		return false;
	return !fmt->ps_needs_pse || (ctx->cr4 & CR4_PSE);
}

bool gwalk_entry_is_large(const struct gwalk_ctx *ctx, int level, u64 pte)
{
	return entry_is_large(ctx, &formats[gwalk_mode(ctx)], level, pte);
}

static inline u64 entry_addr(const struct gwalk_format *fmt, int level, u64 pte, bool large)
{
	u64 addr;

	if (fmt->entry_size == 4) {
		if (!large)
			return pte & 0xfffff000ull;
		/* PSE-36: bits 20:13 of a 4 MiB PDE are physical bits 39:32. */
		return (pte & 0xffc00000ull) | (((pte >> 13) & 0xff) << 32);
	}
	addr = pte & PTE_ADDR_MASK52;
	if (large)
		addr &= ~((1ull << (PAGE_SHIFT + fmt->index_bits * (level - 1))) - 1);
	return addr;
}

u64 gwalk_entry_addr(const struct gwalk_ctx *ctx, int level, u64 pte, bool large)
{
	return entry_addr(&formats[gwalk_mode(ctx)], level, pte, large);
}

bool gwalk_load_pdptes(struct gwalk_ctx *ctx, struct guest_mem *mem)
{
	u64 base = ctx->cr3 & 0xffffffe0ull;
	u64 *table = mem->gfn_to_hva(mem, base >> PAGE_SHIFT);

	if (!table)
		return false;
	for (int i = 0; i < 4; i++) {
		u64 pdpte = __atomic_load_n(&table[(base & 0xfff) / 8 + i], __ATOMIC_RELAXED);

		if ((pdpte & PTE_P) && (pdpte & pdpte_rsvd_mask(ctx)))
			return false;
		ctx->pdpte[i] = pdpte;
	}
	return true;
}

/*
 * Access rights (SDM 4.6) given the rights combined over all levels.
 * Supervisor accesses: SMEP forbids fetches from user pages; SMAP forbids
 * data accesses to user pages unless RFLAGS.AC=1 on an explicit access;
 * CR0.WP=1 makes read-only pages read-only for the supervisor too.
 */
bool gwalk_access_permitted(const struct gwalk_ctx *ctx, u32 access, bool writable, bool user,
			    bool nx)
{
	bool implicit = access & GACC_IMPLICIT;
	bool user_mode = (access & GACC_USER) && !implicit;

	if (access & GACC_FETCH) {
		if (nx)
			return false;
		if (user_mode)
			return user;
		return !(user && (ctx->cr4 & CR4_SMEP));
	}
	if (user_mode)
		return user && (writable || !(access & GACC_WRITE));
	if (user && (ctx->cr4 & CR4_SMAP) && (implicit || !ctx->rflags_ac))
		return false;
	return writable || !(access & GACC_WRITE) || !(ctx->cr0 & CR0_WP);
}

/* The #PF error code of a fault (SDM 4.7). */
static u32 fault_code(const struct gwalk_ctx *ctx, u32 access, u32 cause)
{
	u32 pfec = cause;

	if (access & GACC_WRITE)
		pfec |= PFEC_W;
	if ((access & GACC_USER) && !(access & GACC_IMPLICIT))
		pfec |= PFEC_U;
	/* I/D is reported only when fetches can be refused by paging. */
	if ((access & GACC_FETCH) &&
	    ((ctx->cr4 & CR4_SMEP) || ((ctx->cr4 & CR4_PAE) && (ctx->efer & EFER_NXE))))
		pfec |= PFEC_I;
	return pfec;
}

static u64 load_entry(const void *p, int size)
{
	if (size == 4)
		return __atomic_load_n((const u32 *)p, __ATOMIC_RELAXED);
	return __atomic_load_n((const u64 *)p, __ATOMIC_RELAXED);
}

/* Set bits in a guest entry if it still holds old; false if it changed. */
static bool set_entry_bits(void *p, int size, u64 old, u64 bits)
{
	if (size == 4) {
		u32 expect = (u32)old;

		return __atomic_compare_exchange_n((u32 *)p, &expect, (u32)(old | bits), false,
						   __ATOMIC_SEQ_CST, __ATOMIC_RELAXED);
	}
	return __atomic_compare_exchange_n((u64 *)p, &old, old | bits, false, __ATOMIC_SEQ_CST,
					   __ATOMIC_RELAXED);
}

static enum gwalk_status walk_off(u64 gva, struct gwalk_result *res)
{
	res->status = GWALK_OK;
	res->gpa = gva & 0xffffffffull;
	res->page_size = PAGE_SIZE;
	res->writable = res->user = true;
	return GWALK_OK;
}

static enum gwalk_status walk_fault(const struct gwalk_ctx *ctx, u32 access, u32 cause,
				    struct gwalk_result *res)
{
	res->status = GWALK_FAULT;
	res->pfec = fault_code(ctx, access, cause);
	return GWALK_FAULT;
}

/* Address of the table the walk starts in. */
static u64 root_table(const struct gwalk_ctx *ctx, const struct gwalk_format *fmt)
{
	if (fmt->entry_size == 4)
		return ctx->cr3 & 0xfffff000ull;
	if (fmt->pdpte_regs)
		return ctx->cr3 & 0xffffffe0ull;
	return ctx->cr3 & PTE_ADDR_MASK(ctx->maxphyaddr);
}

enum gwalk_status gwalk(const struct gwalk_ctx *ctx, struct guest_mem *mem, u64 gva,
			u32 access, struct gwalk_result *res)
{
	enum gwalk_mode mode = gwalk_mode(ctx);
	const struct gwalk_format *fmt = &formats[mode];
	bool writable, user, nx, large;
	u64 table, pte = 0, leaf_bits, common;
	int level;
	void *leaf_p;

	if (mode == GWALK_MODE_OFF) {
		memset(res, 0, sizeof(*res));
		return walk_off(gva, res);
	}
	if (fmt->va32) {
		gva &= 0xffffffffull;
	} else if ((u64)((s64)(gva << 16) >> 16) != gva) {
		memset(res, 0, sizeof(*res));
		res->status = GWALK_NONCANONICAL;
		return GWALK_NONCANONICAL;
	}
	common = rsvd_common(ctx, fmt);

restart:
	memset(res, 0, sizeof(*res));
	writable = user = true;
	nx = false;
	large = false;
	leaf_p = NULL;
	table = root_table(ctx, fmt);
	res->top_level = fmt->top_level;
	for (level = fmt->top_level;; level--) {
		u64 idx = (gva >> (PAGE_SHIFT + fmt->index_bits * (level - 1))) &
			  ((1ull << fmt->index_bits) - 1);
		u64 pte_gpa = table + idx * fmt->entry_size;
		void *p = NULL;

		res->last_level = level;
		res->pte_gpa[level] = pte_gpa;
		if (is_pdpte_reg(fmt, level)) {
			pte = ctx->pdpte[idx & 3];
		} else {
			u8 *page = mem->gfn_to_hva(mem, pte_gpa >> PAGE_SHIFT);

			if (!page) {
				res->status = GWALK_NOT_RAM;
				res->gpa = pte_gpa;
				return GWALK_NOT_RAM;
			}
			p = page + (pte_gpa & 0xfff);
			pte = load_entry(p, fmt->entry_size);
		}
		res->pte[level] = pte;
		if (!(pte & PTE_P))
			return walk_fault(ctx, access, 0, res);
		large = entry_is_large(ctx, fmt, level, pte);
		if (pte & rsvd_mask(ctx, fmt, common, level, large))
			return walk_fault(ctx, access, PFEC_P | PFEC_RSVD, res);
		if (p) {
			writable &= !!(pte & PTE_W);
			user &= !!(pte & PTE_U);
			nx |= (ctx->efer & EFER_NXE) && (pte & PTE_NX);
		}
		if (level == 1 || large) {
			leaf_p = p;
			break;
		}
		if (p && !(pte & PTE_A)) {
			if (!set_entry_bits(p, fmt->entry_size, pte, PTE_A))
				goto restart;
			pte |= PTE_A;
			res->pte[level] = pte;
			res->set_ad = true;
		}
		table = entry_addr(fmt, level, pte, false);
	}

	res->writable = writable;
	res->user = user;
	res->nx = nx;
	res->page_size = 1ull << (PAGE_SHIFT + fmt->index_bits * (level - 1));
	res->gpa = entry_addr(fmt, level, pte, large) | (gva & (res->page_size - 1));
	res->global = (pte & PTE_G) && (ctx->cr4 & CR4_PGE);
	res->pat_index = ((pte >> 3) & 3) | (!!(pte & (large ? PTE_PAT_LARGE : PTE_PAT4K)) << 2);
	if (!gwalk_access_permitted(ctx, access, writable, user, nx))
		return walk_fault(ctx, access, PFEC_P, res);
	leaf_bits = (PTE_A | ((access & GACC_WRITE) ? PTE_D : 0)) & ~pte;
	if (leaf_bits) {
		if (!set_entry_bits(leaf_p, fmt->entry_size, pte, leaf_bits))
			goto restart;
		res->pte[level] = pte | leaf_bits;
		res->set_ad = true;
	}
	res->status = GWALK_OK;
	return GWALK_OK;
}
