/*
 * Simulated machine for the reclaim tests and benchmark (see reclaim_sim.h):
 * host callbacks over a static frame pool, a CPU with a TLB and a PDE cache
 * (sim_cpu.c) and a synthetic workload of hot and cold address spaces.
 */
#include <string.h>

#include "reclaim_sim.h"

#define FRAMES_HPA 0x40000000ull	/* host-physical base of the frame pool */
#define RAM_HPA 0x80000000ull		/* guest g's RAM at RAM_HPA + g * RAM_STRIDE */
#define RAM_STRIDE 0x10000000ull
#define DATA_FRAMES 64			/* frames the workload's leaves map */

static u8 frames[SIM_HOST_FRAMES][4096] __attribute__((aligned(4096)));
static bool frame_used[SIM_HOST_FRAMES];
static u64 last_use[SIM_HOST_FRAMES];	/* LRU oracle: when the table in the frame was last used */
static u64 use_clock;
static u8 ram[SIM_MAX_GUESTS][SIM_RAM_PAGES * 4096] __attribute__((aligned(4096)));
static struct guest_mem hostmem;

struct sim_guest sim_guests[SIM_MAX_GUESTS];
u64 sim_host_frames_used;
static u32 tlb_entries = SIM_TLB_DEFAULT, pde_entries = SIM_PDE_DEFAULT;

void sim_set_cpu_caches(u32 tlb, u32 pde)
{
	tlb_entries = tlb;
	pde_entries = pde;
}

static struct sim_guest *guest_of(struct shadow_host *h)
{
	return (struct sim_guest *)h;	/* host is the first member */
}

static void *host_alloc(struct shadow_host *h, u64 *hpa, bool below_4g, bool zero)
{
	(void)below_4g;		/* the whole pool is below 4 GiB */
	for (int i = 0; i < SIM_HOST_FRAMES; i++) {
		if (frame_used[i])
			continue;
		frame_used[i] = true;
		sim_host_frames_used++;
		guest_of(h)->frames++;
		last_use[i] = ++use_clock;	/* created: in use */
		/* Garbage where the MMU did not ask for zeros: it must not read it. */
		memset(frames[i], zero ? 0 : 0xa5, 4096);
		*hpa = FRAMES_HPA + (u64)i * 4096;
		return frames[i];
	}
	return NULL;
}

static void host_free(struct shadow_host *h, void *page, u64 hpa)
{
	u64 i = (hpa - FRAMES_HPA) / 4096;

	if (i < SIM_HOST_FRAMES && frame_used[i] && page == frames[i]) {
		frame_used[i] = false;
		sim_host_frames_used--;
		guest_of(h)->frames--;
		memset(page, 0xa5, 4096);	/* poison: a walk through a freed table fails */
	}
}

static u64 host_gfn_to_hpa(struct shadow_host *h, u64 gfn)
{
	return gfn < SIM_RAM_PAGES ? guest_of(h)->ram_hpa + gfn * 4096 : SHADOW_NO_RAM;
}

static void host_flush(struct shadow_host *h, struct shadow_vcpu *v, enum shadow_flush what,
		       u64 gva)
{
	(void)v;	/* one vCPU */
	sim_cpu_flush(&guest_of(h)->cpu, what, gva);
}

static void *hostmem_to_hva(struct guest_mem *mem, u64 hfn)
{
	u64 hpa = hfn << 12;

	(void)mem;
	if (hpa >= FRAMES_HPA && hpa < FRAMES_HPA + SIM_HOST_FRAMES * 4096ull) {
		u64 i = (hpa - FRAMES_HPA) / 4096;

		return frame_used[i] ? frames[i] : NULL;
	}
	for (int g = 0; g < SIM_MAX_GUESTS; g++) {
		u64 base = RAM_HPA + g * RAM_STRIDE;

		if (hpa >= base && hpa < base + SIM_RAM_PAGES * 4096ull)
			return ram[g] + (hpa - base);
	}
	return NULL;
}

void sim_reset(void)
{
	memset(frame_used, 0, sizeof(frame_used));
	memset(ram, 0, sizeof(ram));
	memset(sim_guests, 0, sizeof(sim_guests));
	sim_host_frames_used = 0;
	hostmem.gfn_to_hva = hostmem_to_hva;
}

bool sim_prefetch;

bool sim_guest_init(int idx, struct shadow_pool *pool, u64 limit,
		    enum shadow_reclaim_policy policy)
{
	struct sim_guest *g = &sim_guests[idx];

	memset(g, 0, sizeof(*g));
	g->host.alloc_page = host_alloc;
	g->host.free_page = host_free;
	g->host.gfn_to_hpa = host_gfn_to_hpa;
	g->host.flush_tlb = host_flush;
	g->ram_hpa = RAM_HPA + idx * RAM_STRIDE;
	sim_cpu_init(&g->cpu, &hostmem, tlb_entries, pde_entries);
	ref_ram_init(&g->ram, ram[idx], SIM_RAM_PAGES);
	g->host.mem = &g->ram.mem;
	shadow_init(&g->mmu, &g->host, 40);
	/* The reclaim study counts one fault per spte a policy made re-fault:
	 * prefetch off unless sim_prefetch (test_reclaim measures both). */
	g->mmu.opt.prefetch = sim_prefetch;
	g->mmu.opt.unsync = false;	/* table writes are emulated, as the study assumes */
	if (pool && !shadow_pool_attach(pool, &g->mmu, limit, policy))
		return false;
	if (policy == SHADOW_RECLAIM_CALLER)
		g->mmu.rc.pick = sim_lru_pick;
	return shadow_vcpu_init(&g->v, &g->mmu);
}

void sim_guest_destroy(int idx)
{
	shadow_vcpu_release(&sim_guests[idx].v);
	shadow_destroy(&sim_guests[idx].mmu);
}

void sim_store64(struct sim_guest *g, u64 gpa, u64 val)
{
	memcpy(g->ram.bytes + gpa, &val, 8);
}

u64 sim_load64(struct sim_guest *g, u64 gpa)
{
	u64 val;

	memcpy(&val, g->ram.bytes + gpa, 8);
	return val;
}

/* ---- the CPU ----------------------------------------------------------- */

static enum gwalk_status cpu_walk(struct sim_guest *g, u64 gva, u32 access,
				  struct ref_result *r)
{
	struct gwalk_ctx hw = { .maxphyaddr = 52 };
	bool cached;

	shadow_hw_control_regs(&g->v, &hw.cr0, &hw.cr4, &hw.efer);
	hw.cr3 = shadow_root_hpa(&g->v);
	if (!(hw.efer & EFER_LMA) && !gwalk_load_pdptes(&hw, &hostmem))
		return GWALK_NOT_RAM;
	return sim_cpu_access(&g->cpu, &hw, gva, access, r, &cached);
}

static u64 frame_index(u64 hpa)
{
	return (hpa - FRAMES_HPA) / 4096;
}

/*
 * The LRU oracle sees every use, TLB hits included: the tables on gva's
 * shadow path (long mode: root to page table) are stamped as used now.
 */
static void note_use(struct sim_guest *g, u64 gva)
{
	u64 table = shadow_root_hpa(&g->v);

	if (!(g->v.ctx.efer & EFER_LMA))
		return;
	for (int level = 4; level >= 1; level--) {
		u64 i = frame_index(table), spte;

		if (table < FRAMES_HPA || i >= SIM_HOST_FRAMES || !frame_used[i])
			return;
		last_use[i] = ++use_clock;
		spte = ((u64 *)frames[i])[(gva >> (12 + 9 * (level - 1))) & 511];
		if (!(spte & PTE_P))
			return;
		table = spte & 0x000ffffffffff000ull;
	}
}

struct shadow_page *sim_lru_pick(struct shadow_mmu *mmu, u64 *examined)
{
	struct shadow_page *best = NULL;

	for (struct shadow_page *sp = mmu->oldest; sp; sp = sp->newer) {
		(*examined)++;
		if (shadow_page_evictable(mmu, sp) &&
		    (!best || last_use[frame_index(sp->hpa)] < last_use[frame_index(best->hpa)]))
			best = sp;
	}
	return best;
}

enum sim_access sim_access(struct sim_guest *g, u64 gva, u32 access)
{
	enum sim_access result = SIM_ERROR;

	for (int tries = 0; tries < 8; tries++) {
		struct ref_result r;
		struct shadow_fault f;
		enum shadow_fault_kind kind;

		switch (cpu_walk(g, gva, access, &r)) {
		case GWALK_OK:
			if (r.gpa >= g->ram_hpa && r.gpa < g->ram_hpa + SIM_RAM_PAGES * 4096ull &&
			    sim_guest_translates_to(&g->v.ctx, &g->ram.mem, gva, access,
						    r.gpa - g->ram_hpa))
				result = SIM_OK;
			note_use(g, gva);
			goto out;
		case GWALK_FAULT:
			break;
		default:
			goto out;
		}
		kind = shadow_page_fault(&g->v, gva, access, false, &f);
		if (kind == SHADOW_NO_MEMORY) {
			result = SIM_NO_MEMORY;
			goto out;
		}
		if (kind != SHADOW_FIXED)
			goto out;
	}
out:
	/* Every frame the host gave is counted, and the count is within the limit. */
	if (g->frames != shadow_mmu_frames(&g->mmu) ||
	    (g->mmu.rc.pool && g->frames > shadow_mmu_limit(&g->mmu)))
		g->over_limit++;
	return result;
}

/* ---- the workload ------------------------------------------------------ */

/*
 * Guest frames: 1 kernel PDPT, 2 kernel PD, 3.. kernel page tables, the
 * shared user page table, then per space PML4, PDPT, PD and its page
 * tables, then DATA_FRAMES data pages that every leaf maps (never a table,
 * so no access hits a protected frame).
 */
#define USER_FLAGS (PTE_P | PTE_W | PTE_U)

static u32 pages_per_table(const struct sim_workload *w)
{
	return w->pages_per_table ? w->pages_per_table : 8;
}

static u32 space_frames(const struct sim_workload *w)
{
	return 3 + w->tables_per_space;
}

static u64 shared_table(const struct sim_workload *w)
{
	return 3 + w->kernel_tables;
}

static u64 space_base(const struct sim_workload *w, u32 s)
{
	return shared_table(w) + 1 + (u64)s * space_frames(w);
}

static u64 data_base(const struct sim_workload *w)
{
	return space_base(w, w->hot_spaces + w->cold_spaces);
}

u64 sim_space_cr3(const struct sim_workload *w, u32 s)
{
	return space_base(w, s) << 12;
}

u64 sim_user_gva(u32 t, u32 p)
{
	return ((u64)t << 21) | ((u64)p << 12);
}

u64 sim_kernel_gva(u32 t, u32 p)
{
	return 0xffffffffc0000000ull | ((u64)t << 21) | ((u64)p << 12);
}

static void fill_table(struct sim_guest *g, const struct sim_workload *w, u64 frame, u64 salt,
		       u64 flags)
{
	for (u32 p = 0; p < pages_per_table(w); p++) {
		u64 data = data_base(w) + (salt * 7 + p) % DATA_FRAMES;

		sim_store64(g, frame * 4096 + p * 8, data << 12 | flags);
	}
}

void sim_workload_setup(struct sim_guest *g, const struct sim_workload *w)
{
	u32 spaces = w->hot_spaces + w->cold_spaces;

	sim_store64(g, 1 * 4096 + 511 * 8, 2ull << 12 | PTE_P | PTE_W);
	for (u32 t = 0; t < w->kernel_tables; t++) {
		sim_store64(g, 2 * 4096 + t * 8, (3ull + t) << 12 | PTE_P | PTE_W);
		fill_table(g, w, 3 + t, t, USER_FLAGS | PTE_G);	/* global, as kernels map themselves */
	}
	fill_table(g, w, shared_table(w), 5, USER_FLAGS);
	for (u32 s = 0; s < spaces; s++) {
		u64 f = space_base(w, s);

		sim_store64(g, f * 4096, (f + 1) << 12 | USER_FLAGS);
		sim_store64(g, f * 4096 + 511 * 8, 1ull << 12 | PTE_P | PTE_W);	/* kernel */
		sim_store64(g, (f + 1) * 4096, (f + 2) << 12 | USER_FLAGS);
		for (u32 t = 0; t < w->tables_per_space; t++) {
			sim_store64(g, (f + 2) * 4096 + t * 8, (f + 3 + t) << 12 | USER_FLAGS);
			fill_table(g, w, f + 3 + t, s + t, USER_FLAGS);
		}
		if (w->shared_percent)
			sim_store64(g, (f + 2) * 4096 + w->tables_per_space * 8,
				    shared_table(w) << 12 | USER_FLAGS);
	}
	shadow_set_cr3(&g->v, sim_space_cr3(w, 0));
	shadow_set_mode(&g->v, CR0_PG | CR0_WP, CR4_PAE | CR4_PGE, EFER_LMA | EFER_NXE);
}

void sim_workload_run(struct sim_guest *g, const struct sim_workload *w, struct sim_result *r)
{
	struct shadow_stats before = g->mmu.stats;
	u64 rng = w->seed, next_cold = 0;

	memset(r, 0, sizeof(*r));
	for (u32 run = 0; run < w->runs; run++) {
		u64 x = ref_rand(&rng);
		u32 s = w->hot_spaces + (u32)(next_cold % w->cold_spaces);

		if (x % 100 < w->cold_percent)
			next_cold++;
		else
			s = (u32)((x >> 8) % w->hot_spaces);
		if (w->cold_once && next_cold > w->cold_spaces)
			break;	/* out of new spaces */
		if (shadow_set_cr3(&g->v, sim_space_cr3(w, s)) != SHADOW_CR_OK) {
			r->no_memory++;
			continue;
		}
		for (u32 a = 0; a < w->accesses_per_run; a++) {
			u64 y = ref_rand(&rng);
			u32 p = (u32)((y >> 8) % pages_per_table(w));
			u32 access = (y >> 16) % 4 ? 0 : GACC_WRITE;
			u32 kernel = w->kernel_percent ? w->kernel_percent : 25;
			u64 gva = sim_user_gva((u32)((y >> 24) % w->tables_per_space), p);

			if ((y >> 32) % 100 < kernel)
				gva = sim_kernel_gva((u32)((y >> 24) % w->kernel_tables), p);
			else if ((y >> 48) % 100 < w->shared_percent)
				gva = sim_user_gva(w->tables_per_space, p);

			switch (sim_access(g, gva, access)) {
			case SIM_OK:
				break;
			case SIM_NO_MEMORY:
				r->no_memory++;
				break;
			case SIM_ERROR:
				r->errors++;
				break;
			}
		}
	}
	r->errors += shadow_audit(&g->mmu);
	r->faults = g->mmu.stats.faults - before.faults;
	r->created = g->mmu.stats.pages_created - before.pages_created;
	r->zapped = g->mmu.stats.pages_zapped - before.pages_zapped;
	r->evictions = g->mmu.stats.evictions - before.evictions;
	r->examined = g->mmu.stats.evict_examined - before.evict_examined;
}

void sim_workload(const struct sim_workload *w, u64 limit, enum shadow_reclaim_policy policy,
		  struct sim_result *r)
{
	static struct shadow_pool pool;

	sim_reset();
	shadow_pool_init(&pool, 1u << 20);
	if (!sim_guest_init(0, &pool, limit, policy)) {
		memset(r, 0, sizeof(*r));
		r->errors = 1;
		return;
	}
	sim_workload_setup(&sim_guests[0], w);
	sim_workload_run(&sim_guests[0], w, r);
	r->errors += sim_guests[0].over_limit;
	sim_guest_destroy(0);
	r->errors += sim_host_frames_used != 0;
}

/*
 * 8 hot spaces of 3 page tables (6 shadow pages each) sharing a kernel part
 * of 2 page tables (4 pages): a hot set of 52 pages, plus a stream of 64
 * cold spaces taking a quarter of the runs.
 */
const struct sim_workload sim_hotcold_workload = {
	.hot_spaces = 8,
	.cold_spaces = 300,
	.cold_percent = 25,
	.cold_once = true,
	.tables_per_space = 2,
	.pages_per_table = 2,
	.kernel_tables = 2,
	.kernel_percent = 10,
	.shared_percent = 6,
	.accesses_per_run = 18,
	.runs = 1200,
	.seed = 0x082efa98ec4e6c89ull,
};

const struct sim_workload sim_bench_workload = {
	.hot_spaces = 8,
	.cold_spaces = 64,
	.cold_percent = 25,
	.tables_per_space = 3,
	.kernel_tables = 2,
	.accesses_per_run = 24,
	.runs = 3000,
	.seed = 0x2545f4914f6cdd1dull,
};
