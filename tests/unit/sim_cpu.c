/* The simulated CPU with a TLB and a PDE cache (see sim_cpu.h). */
#include <string.h>

#include "sim_cpu.h"

#define ADDR_MASK 0x000ffffffffff000ull

/* ---- one fully associative LRU cache ---------------------------------- */

static void cache_init(struct sim_cache *c, u32 size)
{
	memset(c, 0, sizeof(*c));
	c->size = size;
	c->oldest = c->newest = -1;
	for (int i = 0; i < SIM_CACHE_HASH; i++)
		c->bucket[i] = -1;
	c->free = -1;
	for (s32 i = (s32)size - 1; i >= 0; i--) {
		c->e[i].hash_next = c->free;
		c->free = i;
	}
}

static u32 cache_hash(u64 key)
{
	return (u32)((key * 0x9e3779b97f4a7c15ull) >> 40) % SIM_CACHE_HASH;
}

static void lru_unlink(struct sim_cache *c, s32 i)
{
	struct sim_cache_entry *e = &c->e[i];

	if (e->older >= 0)
		c->e[e->older].newer = e->newer;
	else if (c->oldest == i)
		c->oldest = e->newer;
	if (e->newer >= 0)
		c->e[e->newer].older = e->older;
	else if (c->newest == i)
		c->newest = e->older;
	e->older = e->newer = -1;
}

static void lru_push(struct sim_cache *c, s32 i)
{
	struct sim_cache_entry *e = &c->e[i];

	e->older = c->newest;
	e->newer = -1;
	if (c->newest >= 0)
		c->e[c->newest].newer = i;
	else
		c->oldest = i;
	c->newest = i;
}

static void cache_drop(struct sim_cache *c, s32 i)
{
	struct sim_cache_entry *e = &c->e[i];
	s32 *slot = &c->bucket[cache_hash(e->tag - 1)];

	while (*slot != i)
		slot = &c->e[*slot].hash_next;
	*slot = e->hash_next;
	lru_unlink(c, i);
	e->tag = 0;
	e->hash_next = c->free;
	c->free = i;
}

static struct sim_cache_entry *cache_find(struct sim_cache *c, u64 key)
{
	for (s32 i = c->bucket[cache_hash(key)]; i >= 0; i = c->e[i].hash_next) {
		if (c->e[i].tag == key + 1) {
			lru_unlink(c, i);
			lru_push(c, i);
			return &c->e[i];
		}
	}
	return NULL;
}

/* A slot for key (replacing its old entry, or the least recently used one). */
static struct sim_cache_entry *cache_fill(struct sim_cache *c, u64 key)
{
	struct sim_cache_entry *e = cache_find(c, key);
	s32 i;

	if (e)
		return e;
	if (c->free < 0)
		cache_drop(c, c->oldest);
	i = c->free;
	c->free = c->e[i].hash_next;
	e = &c->e[i];
	memset(e, 0, sizeof(*e));
	e->tag = key + 1;
	e->hash_next = c->bucket[cache_hash(key)];
	c->bucket[cache_hash(key)] = i;
	e->older = e->newer = -1;
	lru_push(c, i);
	return e;
}

static void cache_drop_key(struct sim_cache *c, u64 key)
{
	struct sim_cache_entry *e = c->size ? cache_find(c, key) : NULL;

	if (e)
		cache_drop(c, (s32)(e - c->e));
}

static void cache_flush(struct sim_cache *c, bool keep_global)
{
	for (u32 i = 0; i < c->size; i++)
		if (c->e[i].tag && !(keep_global && c->e[i].global))
			cache_drop(c, (s32)i);
}

/* ---- the CPU ------------------------------------------------------------ */

void sim_cpu_init(struct sim_cpu *cpu, struct guest_mem *hostmem, u32 tlb_size, u32 pde_size)
{
	memset(&cpu->stats, 0, sizeof(cpu->stats));
	cpu->mem = hostmem;
	cache_init(&cpu->tlb, tlb_size < SIM_TLB_MAX ? tlb_size : SIM_TLB_MAX);
	cache_init(&cpu->pde, pde_size < SIM_PDE_MAX ? pde_size : SIM_PDE_MAX);
}

void sim_cpu_flush(struct sim_cpu *cpu, enum shadow_flush what, u64 gva)
{
	switch (what) {
	case SHADOW_FLUSH_GVA:	/* INVLPG: the page, global or not, and all PDE-cache entries */
		cpu->stats.invlpgs++;
		cache_drop_key(&cpu->tlb, gva >> 12);
		cache_flush(&cpu->pde, false);
		break;
	case SHADOW_FLUSH_NONGLOBAL:
		cpu->stats.flushes++;
		cache_flush(&cpu->tlb, true);
		cache_flush(&cpu->pde, false);
		break;
	case SHADOW_FLUSH_VCPU:
	case SHADOW_FLUSH_GUEST:
		cpu->stats.flushes++;
		cache_flush(&cpu->tlb, false);
		cache_flush(&cpu->pde, false);
		break;
	}
}

static u64 *entry(struct sim_cpu *cpu, u64 table, u64 index)
{
	u8 *page = cpu->mem->gfn_to_hva(cpu->mem, (table & ADDR_MASK) >> 12);

	return page ? (u64 *)page + index : NULL;
}

/*
 * The PDE used for gva, read without setting anything (after a walk that
 * set the A bits), with the rights of it and the entries above it; false if
 * there is none to cache (a large page, or not present).
 */
static bool read_pde(struct sim_cpu *cpu, const struct gwalk_ctx *hw, u64 gva, u64 *pde,
		     bool *w, bool *u, bool *nx)
{
	u64 *e, upper[2];
	int n = 0;

	*w = *u = true;
	*nx = false;
	if (hw->efer & EFER_LMA) {
		e = entry(cpu, hw->cr3, (gva >> 39) & 511);
		if (!e || !(*e & PTE_P))
			return false;
		upper[n++] = *e;
		e = entry(cpu, *e, (gva >> 30) & 511);
		if (!e || !(*e & PTE_P) || (*e & PTE_PS))
			return false;
		upper[n++] = *e;
		e = entry(cpu, *e, (gva >> 21) & 511);
	} else {	/* PAE: PDPTE registers carry no rights */
		u64 pdpte = hw->pdpte[(gva >> 30) & 3];

		if (!(pdpte & PTE_P))
			return false;
		e = entry(cpu, pdpte, (gva >> 21) & 511);
	}
	if (!e || !(*e & PTE_P) || (*e & PTE_PS) || !(*e & PTE_A))
		return false;
	*pde = *e;
	for (int i = 0; i < n; i++) {
		*w = *w && (upper[i] & PTE_W);
		*u = *u && (upper[i] & PTE_U);
		*nx = *nx || (upper[i] & PTE_NX);
	}
	*w = *w && (*pde & PTE_W);
	*u = *u && (*pde & PTE_U);
	*nx = *nx || (*pde & PTE_NX);
	return true;
}

static void fill_tlb(struct sim_cpu *cpu, u64 gva, u64 pte, const struct ref_result *r)
{
	struct sim_cache_entry *t;

	if (!cpu->tlb.size)
		return;
	t = cache_fill(&cpu->tlb, gva >> 12);
	t->addr = r->gpa & ~0xfffull;
	t->w = r->writable;
	t->u = r->user;
	t->nx = r->nx;
	t->dirty = pte & PTE_D;
	t->global = r->global;
}

/* A #PF drops what was cached for the faulting address (SDM 4.10.4.1). */
static enum gwalk_status fault(struct sim_cpu *cpu, const struct gwalk_ctx *hw, u64 gva,
			       u32 access, bool present, struct ref_result *r)
{
	cache_drop_key(&cpu->tlb, gva >> 12);
	cache_drop_key(&cpu->pde, gva >> 21);
	memset(r, 0, sizeof(*r));
	r->status = GWALK_FAULT;
	r->pfec = ref_pfec(hw, access, present, false);
	cpu->stats.faults++;
	return GWALK_FAULT;
}

/* The rest of a walk from a PDE-cache entry: the PTE only. */
static enum gwalk_status walk_from_pde(struct sim_cpu *cpu, const struct gwalk_ctx *hw, u64 gva,
				       u32 access, const struct sim_cache_entry *p,
				       struct ref_result *r)
{
	u64 *pte = entry(cpu, p->addr, (gva >> 12) & 511), v;
	bool w, u, nx;

	if (!pte) {
		memset(r, 0, sizeof(*r));
		r->status = GWALK_NOT_RAM;
		return GWALK_NOT_RAM;
	}
	v = *pte;
	if (!(v & PTE_P))
		return fault(cpu, hw, gva, access, false, r);
	w = p->w && (v & PTE_W);
	u = p->u && (v & PTE_U);
	nx = p->nx || (v & PTE_NX);
	if (!ref_allowed(hw, access, w, u, nx))
		return fault(cpu, hw, gva, access, true, r);
	*pte = v | PTE_A | (access & GACC_WRITE ? PTE_D : 0);
	memset(r, 0, sizeof(*r));
	r->status = GWALK_OK;
	r->gpa = (v & ADDR_MASK) | (gva & 0xfff);
	r->page_size = 4096;
	r->writable = w;
	r->user = u;
	r->nx = nx;
	r->global = (v & PTE_G) && (hw->cr4 & CR4_PGE);
	fill_tlb(cpu, gva, *pte, r);
	return GWALK_OK;
}

enum gwalk_status sim_cpu_access(struct sim_cpu *cpu, const struct gwalk_ctx *hw, u64 gva,
				 u32 access, struct ref_result *r, bool *cached)
{
	bool cacheable = !(hw->cr4 & (CR4_SMEP | CR4_SMAP)) && (hw->cr4 & CR4_PAE);
	struct sim_cache_entry *t, *p;
	enum gwalk_status st;
	u64 pde, *pte;

	if (!(hw->efer & EFER_LMA))
		gva &= 0xffffffffull;
	cpu->stats.accesses++;
	*cached = false;
	t = cacheable && cpu->tlb.size ? cache_find(&cpu->tlb, gva >> 12) : NULL;
	if (t) {
		if (!ref_allowed(hw, access, t->w, t->u, t->nx))
			return fault(cpu, hw, gva, access, true, r);
		/* A write through a clean entry walks to set D (SDM 4.8). */
		if (!(access & GACC_WRITE) || t->dirty) {
			memset(r, 0, sizeof(*r));
			r->status = GWALK_OK;
			r->gpa = t->addr | (gva & 0xfff);
			r->page_size = 4096;
			r->writable = t->w;
			r->user = t->u;
			r->nx = t->nx;
			r->global = t->global;
			cpu->stats.tlb_hits++;
			*cached = true;
			return GWALK_OK;
		}
	}
	p = cacheable && cpu->pde.size ? cache_find(&cpu->pde, gva >> 21) : NULL;
	if (p) {
		cpu->stats.pde_hits++;
		return walk_from_pde(cpu, hw, gva, access, p, r);
	}
	cpu->stats.walks++;
	st = ref_translate(hw, cpu->mem, gva, access, r);
	if (st == GWALK_FAULT)
		return fault(cpu, hw, gva, access, r->pfec & PFEC_P, r);
	if (st != GWALK_OK || !cacheable)
		return st;
	{
		bool w, u, nx;

		if (read_pde(cpu, hw, gva, &pde, &w, &u, &nx)) {
			if (cpu->pde.size) {
				p = cache_fill(&cpu->pde, gva >> 21);
				p->addr = pde & ADDR_MASK;
				p->w = w;
				p->u = u;
				p->nx = nx;
			}
			pte = entry(cpu, pde, (gva >> 12) & 511);
			if (pte && r->page_size == 4096)
				fill_tlb(cpu, gva, *pte, r);
		}
	}
	return st;
}

/* ---- a read-only view of guest memory ----------------------------------- */

#define RO_SCRATCH 8	/* more than the tables of one walk */

struct ro_mem {
	struct guest_mem mem;
	struct guest_mem *real;
	u32 next;
	u8 page[RO_SCRATCH][4096] __attribute__((aligned(4096)));
};

/* A copy of the page: what the walk writes (A, D) goes nowhere. */
static void *ro_gfn_to_hva(struct guest_mem *mem, u64 gfn)
{
	struct ro_mem *ro = (struct ro_mem *)mem;
	u8 *src = ro->real->gfn_to_hva(ro->real, gfn), *dst;

	if (!src)
		return NULL;
	dst = ro->page[ro->next++ % RO_SCRATCH];
	memcpy(dst, src, 4096);
	return dst;
}

bool sim_guest_translates_to(const struct gwalk_ctx *ctx, struct guest_mem *mem, u64 gva,
			     u32 access, u64 gpa)
{
	static struct ro_mem ro;
	struct ref_result r;

	ro.mem.gfn_to_hva = ro_gfn_to_hva;
	ro.real = mem;
	return ref_translate(ctx, &ro.mem, gva, access, &r) == GWALK_OK && r.gpa == gpa;
}
