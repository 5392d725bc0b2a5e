/*
 * Reference MMU (see refmmu.h): one function per paging mode, each written
 * straight from the SDM tables, with no sharing of format tricks with the
 * real walker. Clarity over speed.
 */
#include <string.h>

#include "refmmu.h"

/* What stopped a walk, or 0. */
enum { REF_GO = 0, REF_NOT_PRESENT, REF_RESERVED, REF_NOT_RAM };

struct ref_walk {
	const struct gwalk_ctx *ctx;
	struct guest_mem *mem;
	u64 gva;
	u32 access;
	struct ref_result *out;
	bool w, u, nx;		/* combined rights so far */
};

static u64 mask_bits(int hi, int lo)
{
	u64 m = 0;

	for (int b = lo; b <= hi; b++)
		m |= 1ull << b;
	return m;
}

static bool nxe(const struct gwalk_ctx *ctx)
{
	return ctx->efer & EFER_NXE;
}

/* Pointer to a guest entry, or NULL if its page is not RAM. */
static void *entry_ptr(struct ref_walk *w, u64 gpa)
{
	u8 *page = w->mem->gfn_to_hva(w->mem, gpa >> 12);

	if (!page) {
		w->out->gpa = gpa;
		return NULL;
	}
	return page + (gpa & 0xfff);
}

/* Fold in the rights of the leaf; its A bit waits for the permission check. */
static void leaf64(struct ref_walk *w, u64 *e)
{
	w->w = w->w && (*e & PTE_W);
	w->u = w->u && (*e & PTE_U);
	if (nxe(w->ctx) && (*e & PTE_NX))
		w->nx = true;
}

static void leaf32(struct ref_walk *w, u32 *e)
{
	w->w = w->w && (*e & PTE_W);
	w->u = w->u && (*e & PTE_U);
}

/* Account one paging-structure entry above the leaf: rights, then A. */
static void use64(struct ref_walk *w, u64 *e)
{
	leaf64(w, e);
	*e |= PTE_A;
}

static void use32(struct ref_walk *w, u32 *e)
{
	leaf32(w, e);
	*e |= PTE_A;
}

/* Reserved bits common to PAE/4-level PDEs, PTEs and 4-level upper entries. */
static u64 rsvd_pae(const struct gwalk_ctx *ctx)
{
	return mask_bits(62, ctx->maxphyaddr) | (nxe(ctx) ? 0 : PTE_NX);
}

static u64 rsvd_long(const struct gwalk_ctx *ctx)
{
	return mask_bits(51, ctx->maxphyaddr) | (nxe(ctx) ? 0 : PTE_NX);
}

static int walk_32bit(struct ref_walk *w, u32 **leaf, u64 *gpa, u64 *size, bool *big)
{
	u32 va = (u32)w->gva;
	u32 *pde = entry_ptr(w, (w->ctx->cr3 & 0xfffff000) + 4 * (va >> 22));
	u32 *pte;

	if (!pde)
		return REF_NOT_RAM;
	if (!(*pde & PTE_P))
		return REF_NOT_PRESENT;
	if ((*pde & PTE_PS) && (w->ctx->cr4 & CR4_PSE)) {
		/* 4 MiB page; PSE-36 puts physical bits 39:32 in PDE bits 20:13. */
		int phys = w->ctx->maxphyaddr > 40 ? 40 : w->ctx->maxphyaddr;
		u64 high = (*pde >> 13) & 0xff;

		if (*pde & (1u << 21))
			return REF_RESERVED;
		if (phys < 40 && (high >> (phys - 32)))
			return REF_RESERVED;
		leaf32(w, pde);
		*leaf = pde;
		*big = true;
		*size = 4ull << 20;
		*gpa = (*pde & 0xffc00000u) + (high << 32) + (va & 0x3fffff);
		return REF_GO;
	}
	use32(w, pde);
	pte = entry_ptr(w, (*pde & 0xfffff000) + 4 * ((va >> 12) & 0x3ff));
	if (!pte)
		return REF_NOT_RAM;
	if (!(*pte & PTE_P))
		return REF_NOT_PRESENT;
	leaf32(w, pte);
	*leaf = pte;
	*big = false;
	*size = 4096;
	*gpa = (*pte & 0xfffff000) + (va & 0xfff);
	return REF_GO;
}

static int walk_pae(struct ref_walk *w, u64 **leaf, u64 *gpa, u64 *size, bool *big)
{
	u32 va = (u32)w->gva;
	u64 pdpte = w->ctx->pdpte[va >> 30];
	u64 *pde, *pte;

	if (!(pdpte & PTE_P))
		return REF_NOT_PRESENT;
	if (pdpte & (mask_bits(2, 1) | mask_bits(8, 5) | mask_bits(63, w->ctx->maxphyaddr)))
		return REF_RESERVED;
	pde = entry_ptr(w, (pdpte & mask_bits(51, 12)) + 8 * ((va >> 21) & 511));
	if (!pde)
		return REF_NOT_RAM;
	if (!(*pde & PTE_P))
		return REF_NOT_PRESENT;
	if (*pde & PTE_PS) {
		if (*pde & (rsvd_pae(w->ctx) | mask_bits(20, 13)))
			return REF_RESERVED;
		leaf64(w, pde);
		*leaf = pde;
		*big = true;
		*size = 2ull << 20;
		*gpa = (*pde & mask_bits(51, 21)) + (va & 0x1fffff);
		return REF_GO;
	}
	if (*pde & rsvd_pae(w->ctx))
		return REF_RESERVED;
	use64(w, pde);
	pte = entry_ptr(w, (*pde & mask_bits(51, 12)) + 8 * ((va >> 12) & 511));
	if (!pte)
		return REF_NOT_RAM;
	if (!(*pte & PTE_P))
		return REF_NOT_PRESENT;
	if (*pte & rsvd_pae(w->ctx))
		return REF_RESERVED;
	leaf64(w, pte);
	*leaf = pte;
	*big = false;
	*size = 4096;
	*gpa = (*pte & mask_bits(51, 12)) + (va & 0xfff);
	return REF_GO;
}

static int walk_long(struct ref_walk *w, u64 **leaf, u64 *gpa, u64 *size, bool *big)
{
	u64 va = w->gva;
	u64 rsvd = rsvd_long(w->ctx);
	u64 *pml4e, *pdpte, *pde, *pte;

	pml4e = entry_ptr(w, (w->ctx->cr3 & mask_bits(w->ctx->maxphyaddr - 1, 12)) +
				     8 * ((va >> 39) & 511));
	if (!pml4e)
		return REF_NOT_RAM;
	if (!(*pml4e & PTE_P))
		return REF_NOT_PRESENT;
	if (*pml4e & (rsvd | PTE_PS))
		return REF_RESERVED;
	use64(w, pml4e);

	pdpte = entry_ptr(w, (*pml4e & mask_bits(51, 12)) + 8 * ((va >> 30) & 511));
	if (!pdpte)
		return REF_NOT_RAM;
	if (!(*pdpte & PTE_P))
		return REF_NOT_PRESENT;
	if (*pdpte & PTE_PS) {
		if (*pdpte & (rsvd | mask_bits(29, 13)))
			return REF_RESERVED;
		leaf64(w, pdpte);
		*leaf = pdpte;
		*big = true;
		*size = 1ull << 30;
		*gpa = (*pdpte & mask_bits(51, 30)) + (va & mask_bits(29, 0));
		return REF_GO;
	}
	if (*pdpte & rsvd)
		return REF_RESERVED;
	use64(w, pdpte);

	pde = entry_ptr(w, (*pdpte & mask_bits(51, 12)) + 8 * ((va >> 21) & 511));
	if (!pde)
		return REF_NOT_RAM;
	if (!(*pde & PTE_P))
		return REF_NOT_PRESENT;
	if (*pde & PTE_PS) {
		if (*pde & (rsvd | mask_bits(20, 13)))
			return REF_RESERVED;
		leaf64(w, pde);
		*leaf = pde;
		*big = true;
		*size = 2ull << 20;
		*gpa = (*pde & mask_bits(51, 21)) + (va & mask_bits(20, 0));
		return REF_GO;
	}
	if (*pde & rsvd)
		return REF_RESERVED;
	use64(w, pde);

	pte = entry_ptr(w, (*pde & mask_bits(51, 12)) + 8 * ((va >> 12) & 511));
	if (!pte)
		return REF_NOT_RAM;
	if (!(*pte & PTE_P))
		return REF_NOT_PRESENT;
	if (*pte & rsvd)
		return REF_RESERVED;
	leaf64(w, pte);
	*leaf = pte;
	*big = false;
	*size = 4096;
	*gpa = (*pte & mask_bits(51, 12)) + (va & 0xfff);
	return REF_GO;
}

/* SDM 4.6, written as the manual lists the cases. */
bool ref_allowed(const struct gwalk_ctx *ctx, u32 access, bool w, bool u, bool nx)
{
	bool is_write = access & GACC_WRITE;
	bool is_fetch = access & GACC_FETCH;
	bool implicit = access & GACC_IMPLICIT;
	bool cpl3 = (access & GACC_USER) && !implicit;
	bool wp = ctx->cr0 & CR0_WP;
	bool smep = ctx->cr4 & CR4_SMEP;
	bool smap = ctx->cr4 & CR4_SMAP;

	if (cpl3) {
		if (!u)
			return false;		/* user accesses only reach user pages */
		if (is_fetch)
			return !nx;
		if (is_write)
			return w;
		return true;
	}
	/* supervisor-mode access */
	if (is_fetch) {
		if (nx)
			return false;
		if (u && smep)
			return false;
		return true;
	}
	if (u && smap) {
		if (implicit)
			return false;
		if (!ctx->rflags_ac)
			return false;
	}
	if (is_write && wp && !w)
		return false;
	return true;
}

u32 ref_pfec(const struct gwalk_ctx *ctx, u32 access, bool present, bool rsvd)
{
	u32 e = 0;
	bool nx_on = (ctx->cr4 & CR4_PAE) && nxe(ctx);

	if (present)
		e |= PFEC_P;
	if (rsvd)
		e |= PFEC_RSVD;
	if (access & GACC_WRITE)
		e |= PFEC_W;
	if ((access & GACC_USER) && !(access & GACC_IMPLICIT))
		e |= PFEC_U;
	if ((access & GACC_FETCH) && ((ctx->cr4 & CR4_SMEP) || nx_on))
		e |= PFEC_I;
	return e;
}

enum gwalk_status ref_translate(const struct gwalk_ctx *ctx, struct guest_mem *mem, u64 gva,
				u32 access, struct ref_result *out)
{
	struct ref_walk w = { ctx, mem, gva, access, out, true, true, false };
	void *leaf = NULL;
	u64 leaf_val, gpa = 0, size = 0;
	bool big = false, is32 = false;
	int r;

	memset(out, 0, sizeof(*out));
	if (!(ctx->cr0 & CR0_PG)) {
		out->status = GWALK_OK;
		out->gpa = gva & 0xffffffffull;
		out->page_size = 4096;
		out->writable = out->user = true;
		return GWALK_OK;
	}
	if (!(ctx->cr4 & CR4_PAE)) {
		is32 = true;
		r = walk_32bit(&w, (u32 **)&leaf, &gpa, &size, &big);
	} else if (!(ctx->efer & EFER_LMA)) {
		r = walk_pae(&w, (u64 **)&leaf, &gpa, &size, &big);
	} else {
		u64 top = gva >> 47;

		if (top != 0 && top != 0x1ffff) {
			out->status = GWALK_NONCANONICAL;
			return GWALK_NONCANONICAL;
		}
		r = walk_long(&w, (u64 **)&leaf, &gpa, &size, &big);
	}
	if (r == REF_NOT_RAM) {
		out->status = GWALK_NOT_RAM;
		return GWALK_NOT_RAM;
	}
	if (r != REF_GO) {
		out->status = GWALK_FAULT;
		out->pfec = ref_pfec(ctx, access, r == REF_RESERVED, r == REF_RESERVED);
		return GWALK_FAULT;
	}
	leaf_val = is32 ? *(u32 *)leaf : *(u64 *)leaf;
	out->gpa = gpa;
	out->page_size = size;
	out->writable = w.w;
	out->user = w.u;
	out->nx = w.nx;
	out->global = (leaf_val & PTE_G) && (ctx->cr4 & CR4_PGE);
	out->pat_index = (leaf_val & PTE_PWT ? 1 : 0) | (leaf_val & PTE_PCD ? 2 : 0) |
			 ((big ? leaf_val & PTE_PAT_LARGE : leaf_val & PTE_PAT4K) ? 4 : 0);
	if (!ref_allowed(ctx, access, w.w, w.u, w.nx)) {
		out->status = GWALK_FAULT;
		out->pfec = ref_pfec(ctx, access, true, false);
		return GWALK_FAULT;
	}
	/* The leaf is used only by a permitted access: A, and D on a write. */
	if (is32)
		*(u32 *)leaf |= PTE_A | (access & GACC_WRITE ? PTE_D : 0);
	else
		*(u64 *)leaf |= PTE_A | (access & GACC_WRITE ? PTE_D : 0);
	out->status = GWALK_OK;
	return GWALK_OK;
}

static void *ref_ram_gfn_to_hva(struct guest_mem *mem, u64 gfn)
{
	struct ref_ram *ram = (struct ref_ram *)mem;

	return gfn < ram->npages ? ram->bytes + gfn * 4096 : NULL;
}

void ref_ram_init(struct ref_ram *ram, u8 *bytes, u64 npages)
{
	ram->mem.gfn_to_hva = ref_ram_gfn_to_hva;
	ram->bytes = bytes;
	ram->npages = npages;
}

u64 ref_rand(u64 *state)
{
	u64 x = *state;

	x ^= x >> 12;
	x ^= x << 25;
	x ^= x >> 27;
	*state = x;
	return x * 0x2545f4914f6cdd1dull;
}

u64 ref_random_entry(u64 *rng, u64 ram_pages)
{
	u64 r = ref_rand(rng);
	u64 e = (ref_rand(rng) % (ram_pages + 2)) << 12;	/* +2: sometimes not RAM */

	if (r % 8)
		e |= PTE_P;
	e |= (r >> 8) & (PTE_W | PTE_U | PTE_PWT | PTE_PCD | PTE_A | PTE_D | PTE_G);
	if ((r >> 16) % 4 == 0)
		e |= PTE_PS;
	if ((r >> 20) % 4 == 0)
		e |= PTE_NX;
	if ((r >> 24) % 8 == 0)
		e |= 1ull << (12 + (r >> 32) % 52);	/* a reserved or high bit */
	return e;
}
