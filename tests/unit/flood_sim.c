/*
 * The simulated machine of the flood-detection tests and benchmark (see
 * flood_sim.h).
 */
#include <string.h>

#include "flood_sim.h"

#define FRAMES 512
#define FRAMES_HPA 0x40000000ull
#define RAM_HPA 0x80000000ull
#define KERNEL_PDPT 1
#define KERNEL_PD 2
#define SPACE_BASE 16		/* frames of space s from SPACE_BASE + s * SPACE_FRAMES */
#define SPACE_FRAMES 8

static u8 frames[FRAMES][4096] __attribute__((aligned(4096)));
static bool frame_used[FRAMES];
static u8 ram[FSIM_RAM_PAGES * 4096] __attribute__((aligned(4096)));
static struct guest_mem hostmem;

struct fsim fsim;
static u32 tlb_entries = SIM_TLB_DEFAULT, pde_entries = SIM_PDE_DEFAULT;
static u32 current_space;

void fsim_set_cpu_caches(u32 tlb, u32 pde)
{
	tlb_entries = tlb;
	pde_entries = pde;
}

static void *host_alloc(struct shadow_host *h, u64 *hpa, bool below_4g, bool zero)
{
	(void)h;
	(void)below_4g;
	for (int i = 0; i < FRAMES; i++) {
		if (frame_used[i])
			continue;
		frame_used[i] = true;
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

	(void)h;
	if (i >= FRAMES || !frame_used[i] || page != frames[i]) {
		fsim.errors++;
		return;
	}
	frame_used[i] = false;
	memset(page, 0xa5, 4096);	/* poison: a walk through a freed table fails */
}

static u64 host_gfn_to_hpa(struct shadow_host *h, u64 gfn)
{
	(void)h;
	return gfn < FSIM_RAM_PAGES ? RAM_HPA + gfn * 4096 : SHADOW_NO_RAM;
}

static void host_flush(struct shadow_host *h, struct shadow_vcpu *v, enum shadow_flush what,
		       u64 gva)
{
	(void)v;	/* one vCPU */
	(void)h;
	sim_cpu_flush(&fsim.cpu, what, gva);
}

static void *hostmem_to_hva(struct guest_mem *mem, u64 hfn)
{
	u64 hpa = hfn << 12;

	(void)mem;
	if (hpa >= FRAMES_HPA && hpa < FRAMES_HPA + FRAMES * 4096ull)
		return frame_used[(hpa - FRAMES_HPA) / 4096] ? frames[(hpa - FRAMES_HPA) / 4096]
							     : NULL;
	if (hpa >= RAM_HPA && hpa < RAM_HPA + FSIM_RAM_PAGES * 4096ull)
		return ram + (hpa - RAM_HPA);
	return NULL;
}

static void put(u64 gpa, u64 val)
{
	memcpy(ram + gpa, &val, 8);
}

u64 fsim_load64(u64 gpa)
{
	u64 val;

	memcpy(&val, ram + gpa, 8);
	return val;
}

u64 fsim_pml4(u32 s)
{
	return SPACE_BASE + (u64)s * SPACE_FRAMES;
}

static u64 space_pdpt(u32 s)
{
	return fsim_pml4(s) + 1;
}

static u64 space_pd(u32 s)
{
	return fsim_pml4(s) + 2;
}

u64 fsim_pt(u32 s, u32 t)
{
	return fsim_pml4(s) + 3 + t;
}

u64 fsim_user_gva(u32 t, u32 p)
{
	return FSIM_USER_BASE + ((u64)t << 21) + ((u64)p << 12);
}

u64 fsim_kva(u64 gpa)
{
	return gpa;
}

void fsim_init(bool flood)
{
	memset(frame_used, 0, sizeof(frame_used));
	memset(ram, 0, sizeof(ram));
	memset(&fsim, 0, sizeof(fsim));
	hostmem.gfn_to_hva = hostmem_to_hva;
	sim_cpu_init(&fsim.cpu, &hostmem, tlb_entries, pde_entries);
	fsim.host.alloc_page = host_alloc;
	fsim.host.free_page = host_free;
	fsim.host.gfn_to_hpa = host_gfn_to_hpa;
	fsim.host.flush_tlb = host_flush;
	ref_ram_init(&fsim.ram, ram, FSIM_RAM_PAGES);
	fsim.host.mem = &fsim.ram.mem;
	shadow_init(&fsim.mmu, &fsim.host, 40);
	/* Flood detection judges emulated table writes: keep every table
	 * write-protected (no out-of-sync tables, which the guest writes itself). */
	fsim.mmu.opt.unsync = false;
	shadow_flood_set(&fsim.mmu, flood);
	/* Kernel part: all RAM at linear 0, two 2 MiB pages, supervisor only. */
	put(KERNEL_PDPT * 4096, KERNEL_PD * 4096 | PTE_P | PTE_W);
	put(KERNEL_PD * 4096, 0 | PTE_P | PTE_W | PTE_PS);
	put(KERNEL_PD * 4096 + 8, 0x200000 | PTE_P | PTE_W | PTE_PS);
	for (u32 s = 0; s < FSIM_SPACES; s++) {
		put(fsim_pml4(s) * 4096, KERNEL_PDPT * 4096 | PTE_P | PTE_W);
		put(fsim_pml4(s) * 4096 + 8, space_pdpt(s) * 4096 | FSIM_PTE_FLAGS);
		put(space_pdpt(s) * 4096, space_pd(s) * 4096 | FSIM_PTE_FLAGS);
		for (u32 t = 0; t < FSIM_TABLES; t++)
			put(space_pd(s) * 4096 + 8 * t, fsim_pt(s, t) * 4096 | FSIM_PTE_FLAGS);
	}
	if (!shadow_vcpu_init(&fsim.v, &fsim.mmu) ||
	    shadow_set_mode(&fsim.v, CR0_PG | CR0_WP, CR4_PAE, EFER_LMA | EFER_NXE) !=
	    SHADOW_CR_OK)
		fsim.errors++;
	fsim_switch(0);
}

void fsim_destroy(void)
{
	shadow_vcpu_release(&fsim.v);
	shadow_destroy(&fsim.mmu);
}

void fsim_switch(u32 s)
{
	current_space = s;
	if (shadow_set_cr3(&fsim.v, fsim_pml4(s) * 4096) != SHADOW_CR_OK)
		fsim.errors++;
}

/* INVLPG exits to the hypervisor, which calls the shadow MMU. */
void fsim_invlpg(u64 gva)
{
	shadow_invlpg(&fsim.v, gva);
}

void fsim_flush(void)
{
	fsim_switch(current_space);
}

void fsim_populate(u32 s, u32 n)
{
	for (u32 t = 0; t < FSIM_TABLES; t++)
		for (u32 p = 0; p < n; p++)
			put(fsim_pt(s, t) * 4096 + 8 * p,
			    (FSIM_DATA_FRAME + (s * FSIM_TABLES + t) * 8 + p % 8) * 4096 |
			    FSIM_PTE_FLAGS);
}

static enum gwalk_status cpu_walk(u64 gva, u32 access, struct ref_result *r)
{
	struct gwalk_ctx hw = { .maxphyaddr = 52 };
	bool cached;

	shadow_hw_control_regs(&fsim.v, &hw.cr0, &hw.cr4, &hw.efer);
	hw.cr3 = shadow_root_hpa(&fsim.v);
	return sim_cpu_access(&fsim.cpu, &hw, gva, access, r, &cached);
}

/*
 * Run one guest access to completion: the CPU walks the shadow, a #PF goes
 * to shadow_page_fault(). Returns the guest-physical address, or ~0 after
 * an emulated store (done here) or an error.
 */
static u64 run_access(u64 gva, u32 acc, const void *data, u32 len)
{
	for (int tries = 0; tries < 4; tries++) {
		struct ref_result r;
		struct shadow_fault f;

		switch (cpu_walk(gva, acc, &r)) {
		case GWALK_OK:
			if (!sim_guest_translates_to(&fsim.v.ctx, &fsim.ram.mem, gva, acc,
						     r.gpa - RAM_HPA)) {
				fsim.errors++;
				return ~0ull;
			}
			return r.gpa - RAM_HPA;
		case GWALK_FAULT:
			break;
		default:
			fsim.errors++;
			return ~0ull;
		}
		switch (shadow_page_fault(&fsim.v, gva, acc, false, &f)) {
		case SHADOW_FIXED:
			continue;
		case SHADOW_EMULATE_WRITE:
			fsim.emulated++;
			shadow_guest_write(&fsim.mmu, f.gpa, data, len);
			return ~0ull;
		default:
			fsim.errors++;
			return ~0ull;
		}
	}
	fsim.errors++;
	return ~0ull;
}

void fsim_read(u64 gva)
{
	run_access(gva, GACC_USER, NULL, 0);
}

void fsim_store(u64 gva, const void *data, u32 len, bool user)
{
	u64 gpa = run_access(gva, GACC_WRITE | (user ? GACC_USER : 0), data, len);

	if (gpa != ~0ull)
		memcpy(ram + gpa, data, len);	/* went straight to memory: no exit */
}

void fsim_clear_bit(u64 pte_gpa, u32 bit)
{
	u64 gpa = pte_gpa + bit / 8;
	u8 byte = ram[gpa] & ~(1u << (bit % 8));

	fsim_store(fsim_kva(gpa), &byte, 1, false);
}

void fsim_counts(struct fsim_counts *c)
{
	const struct shadow_stats *st = &fsim.mmu.stats;

	c->emulated = fsim.emulated;
	c->faults = st->faults - fsim.emulated;	/* a store to a table faults, then is emulated */
	c->unshadowed = st->unshadowed_flood + st->unshadowed_pattern;
	c->false_positives = st->unshadow_false_positive;
	c->live_writes = st->flood_live_writes;
	c->checks = st->flood_checks;
	c->kept = st->flood_kept;
	c->deferred = st->flood_deferred;
	c->created = st->pages_created;
	c->errors = fsim.errors + shadow_audit(&fsim.mmu);
}

/* ---- patterns ---------------------------------------------------------- */

#define MAPPED 64		/* present PTEs per table of a populated space */

static u64 pte_gpa(u32 s, u32 t, u32 p)
{
	return fsim_pt(s, t) * 4096 + 8 * p;
}

static void store64(u64 gpa, u64 val)
{
	fsim_store(fsim_kva(gpa), &val, 8, false);
}

/* The running process touches every page it has mapped. */
static void touch_all(void)
{
	for (u32 t = 0; t < FSIM_TABLES; t++)
		for (u32 p = 0; p < 512 && (fsim_load64(space_pd(current_space) * 4096 + 8 * t) & PTE_P);
		     p++)
			if (fsim_load64(pte_gpa(current_space, t, p)) & PTE_P)
				fsim_read(fsim_user_gva(t, p));
}

/* Space 0 runs with MAPPED pages per table: all its tables shadowed. */
static void setup_live(void)
{
	fsim_populate(0, MAPPED);
	touch_all();
}

/* Space 1 ran (shadowed), then the CPU moved to space 0: space 1 is dead. */
static void setup_dead(void)
{
	fsim_populate(1, MAPPED);
	fsim_switch(1);
	touch_all();
	fsim_switch(0);
	setup_live();
}

/* The kernel writes words of data into frame gfn. */
static void write_data(u64 gfn, u32 words)
{
	for (u32 i = 0; i < words; i++)
		store64(gfn * 4096 + 8 * (i % 512), 0xdead0000beef0000ull + i);
}

/* New page tables are cleared with one rep stosq each, then used as data. */
static void run_memset(void)
{
	static const u8 zero[4096];

	for (u32 t = 0; t < FSIM_TABLES; t++) {
		fsim_store(fsim_kva(fsim_pt(1, t) * 4096), zero, 4096, false);
		write_data(fsim_pt(1, t), 64);
	}
}

/* Page ageing: clear A in every PTE with lock andb, the process runs between rounds. */
static void run_clear_bit(void)
{
	for (int round = 0; round < 4; round++) {
		for (u32 t = 0; t < FSIM_TABLES; t++)
			for (u32 p = 0; p < MAPPED; p++)
				fsim_clear_bit(pte_gpa(0, t, p), 5);
		touch_all();
	}
}

/*
 * fork, twice (spaces 2 and 3): write-protect the parent's PTEs (lock btr),
 * copy them to the child, flush the parent's TLB (as Linux's dup_mmap
 * does); the parent runs on between the two.
 */
static void run_fork(void)
{
	for (u32 child = 2; child <= 3; child++) {
		for (u32 t = 0; t < FSIM_TABLES; t++) {
			for (u32 p = 0; p < MAPPED; p++) {
				fsim_clear_bit(pte_gpa(0, t, p), 1);
				store64(pte_gpa(child, t, p), fsim_load64(pte_gpa(0, t, p)));
			}
		}
		fsim_flush();
		touch_all();
	}
}

/*
 * munmap in a running process: two pages of one table zeroed in a row, an
 * INVLPG for each, then the process maps two new pages there and runs on
 * (touching its pages; the new ones fault in). 16 rounds over the 4 tables.
 */
static void run_munmap(void)
{
	for (u32 round = 0; round < 16; round++) {
		u32 t = round % FSIM_TABLES, p = 2 * (round / FSIM_TABLES);

		for (u32 k = 0; k < 2; k++) {
			store64(pte_gpa(0, t, p + k), 0);
			fsim_invlpg(fsim_user_gva(t, p + k));
		}
		for (u32 k = 0; k < 2; k++)
			store64(pte_gpa(0, t, MAPPED + 2 * round + k),
				(FSIM_DATA_FRAME + k) * 4096 | FSIM_PTE_FLAGS);
		touch_all();
	}
}

/* exit: zero the PTEs of a space no CPU runs, unhook its tables, reuse them as data. */
static void run_exit(void)
{
	for (u32 t = 0; t < FSIM_TABLES; t++)
		for (u32 p = 0; p < MAPPED; p++)
			store64(pte_gpa(1, t, p), 0);
	for (u32 t = 0; t < FSIM_TABLES; t++)
		store64(space_pd(1) * 4096 + 8 * t, 0);	/* space 1's PD */
	for (u32 t = 0; t < FSIM_TABLES; t++)
		write_data(fsim_pt(1, t), 64);
	touch_all();
}

/* A table is unhooked without being cleared and its frame filled with data. */
static void setup_unhooked(void)
{
	setup_dead();
	for (u32 t = 0; t < FSIM_TABLES; t++)
		store64(space_pd(1) * 4096 + 8 * t, 0);	/* space 1's PD */
}

static void run_becomes_data(void)
{
	for (u32 t = 0; t < FSIM_TABLES; t++)
		write_data(fsim_pt(1, t), 512);
}

/* A former table used for a counter: many small writes to one place. */
static void run_data_rewrites(void)
{
	for (u32 i = 0; i < 1000; i++) {
		u32 val = i * 2;

		fsim_store(fsim_kva(fsim_pt(1, 0) * 4096 + 0x40), &val, 4, false);
	}
}

/* The kernel maps 16 pages ahead of use (fault-around) in a running space. */
static void run_fault_around(void)
{
	for (u32 t = 0; t < FSIM_TABLES; t++) {
		for (u32 p = MAPPED; p < MAPPED + 64; p++) {
			store64(pte_gpa(0, t, p), (FSIM_DATA_FRAME + p % 8) * 4096 | FSIM_PTE_FLAGS);
			if (p % 16 != 15)
				continue;
			for (u32 q = p - 15; q <= p; q++)
				fsim_read(fsim_user_gva(t, q));
		}
	}
}

/*
 * munmap of a whole table's range in a running process: its 64 PTEs zeroed
 * in a row, the PD entry cleared, the TLB flushed, the frame reused as data.
 * Tables 1 and 3 go this way; the process runs on in tables 0 and 2.
 */
static void run_munmap_all(void)
{
	for (u32 t = 1; t < FSIM_TABLES; t += 2) {
		for (u32 p = 0; p < MAPPED; p++)
			store64(pte_gpa(0, t, p), 0);
		store64(space_pd(0) * 4096 + 8 * t, 0);
		fsim_flush();
		write_data(fsim_pt(0, t), 64);
		touch_all();
	}
}

const struct fsim_pattern fsim_patterns[] = {
	{ "memset table", false, setup_dead, run_memset },
	{ "clear_bit PTEs", true, setup_live, run_clear_bit },
	{ "fork (live parent)", true, setup_live, run_fork },
	{ "exit teardown", false, setup_dead, run_exit },
	{ "table becomes data", false, setup_unhooked, run_becomes_data },
	{ "data rewrites", false, setup_unhooked, run_data_rewrites },
	{ "fault-around (live)", true, setup_live, run_fault_around },
	{ "munmap (live)", true, setup_live, run_munmap },
	{ "munmap whole table", false, setup_live, run_munmap_all },
};

const unsigned fsim_npatterns = sizeof(fsim_patterns) / sizeof(fsim_patterns[0]);

void fsim_run_pattern(const struct fsim_pattern *p, enum fsim_flood mode, struct fsim_counts *c)
{
	struct fsim_counts before;

	fsim_init(mode != FSIM_FLOOD_OFF);
	shadow_flood_count_upkeep(&fsim.mmu, mode == FSIM_FLOOD_COUNT_UPKEEP);
	p->setup();
	fsim_counts(&before);
	p->run();
	fsim_counts(c);
	c->emulated -= before.emulated;
	c->faults -= before.faults;
	c->unshadowed -= before.unshadowed;
	c->false_positives -= before.false_positives;
	c->live_writes -= before.live_writes;
	c->checks -= before.checks;
	c->kept -= before.kept;
	c->deferred -= before.deferred;
	c->created -= before.created;
	fsim_destroy();
}
