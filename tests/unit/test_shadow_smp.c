/*
 * The shadow MMU with two vCPUs of one guest (issue #20, contract in
 * /work/notes/s4/smp-contract.md): one shadow_mmu, two shadow_vcpus, each
 * on its own simulated CPU with a TLB and a PDE cache (sim_cpu.h). The
 * host's flush_tlb sends the local kinds to the asking vCPU's CPU and
 * SHADOW_FLUSH_GUEST to both, synchronously, as vmx/ must.
 *
 * The rule checked (SDM Vol. 3A 4.10.2, 4.10.4): a CPU may use only
 * translations that its paging structures gave at some time since it last
 * invalidated them. Another vCPU acting while the MMU works (it holds the
 * guest's MMU lock) is modelled by a hook in gfn_to_hpa: that vCPU may use
 * only what its TLB or the shadow tables allow at that moment; anything
 * that would fault waits for the lock, so it does nothing.
 */
#include <string.h>

#include "unit.h"
#include "refmmu.h"
#include "sim_cpu.h"
#include "shadow/shadow.h"
#include "shadow/spage.h"

#define POOL_PAGES 256
#define POOL_HPA 0x40000000ull
#define RAM_HPA 0x80000000ull
#define RAM_PAGES 128

/* Guest frames: the 4-level tables, leaf tables, then data. */
#define PML4 1
#define PDPT 2
#define PD 3
#define PT_ID 4			/* identity map of RAM at linear 0: how the guest writes tables */
#define T1 5			/* leaf tables at PD[1], PD[3], PD[4], PD[5] */
#define T2 6
#define T3 7
#define T4 8
#define T5 9			/* a spare leaf table */
#define DATA 64			/* data frames 64..127 */

#define TBL (PTE_P | PTE_W | PTE_A)
#define LEAF (PTE_P | PTE_W | PTE_A | PTE_D)
#define MB2 0x200000ull

static u8 pool[POOL_PAGES][4096] __attribute__((aligned(4096)));
static bool pool_used[POOL_PAGES];
static u8 ram[RAM_PAGES * 4096] __attribute__((aligned(4096)));

static struct {
	struct shadow_host host;
	struct ref_ram ram;
	struct guest_mem hostmem;
	struct shadow_mmu mmu;
	struct shadow_vcpu v[2];
	struct sim_cpu cpu[2];
	u32 local_flushes[2];
	/* Another vCPU acting while the MMU works: called from gfn_to_hpa. */
	void (*hook)(u64 gfn);
	bool hook_done, hook_blocked;
} m;

/* Freed frames are reused last freed first, as from a free list. */
static int freed[POOL_PAGES], nfreed;

static void *host_alloc(struct shadow_host *h, u64 *hpa, bool below_4g, bool zero)
{
	(void)h, (void)below_4g;
	for (int i = 0; i < POOL_PAGES; i++) {
		if (nfreed)
			i = freed[--nfreed];
		if (pool_used[i])
			continue;
		pool_used[i] = true;
		memset(pool[i], zero ? 0 : 0xa5, 4096);
		*hpa = POOL_HPA + (u64)i * 4096;
		return pool[i];
	}
	return NULL;
}

static void host_free(struct shadow_host *h, void *page, u64 hpa)
{
	u64 i = (hpa - POOL_HPA) / 4096;

	(void)h;
	CHECK(i < POOL_PAGES && pool_used[i] && page == pool[i]);
	pool_used[i] = false;
	freed[nfreed++] = (int)i;
	memset(page, 0xa5, 4096);	/* poison: a walk through a freed table leaves RAM */
}

static u64 host_gfn_to_hpa(struct shadow_host *h, u64 gfn)
{
	(void)h;
	if (m.hook && !m.hook_done)
		m.hook(gfn);
	return gfn < RAM_PAGES ? RAM_HPA + gfn * 4096 : SHADOW_NO_RAM;
}

static int vcpu_index(struct shadow_vcpu *v)
{
	return v == &m.v[1];
}

static void host_flush(struct shadow_host *h, struct shadow_vcpu *v, enum shadow_flush what,
		       u64 gva)
{
	(void)h;
	if (what == SHADOW_FLUSH_GUEST) {
		CHECK(v == NULL);
		sim_cpu_flush(&m.cpu[0], what, gva);
		sim_cpu_flush(&m.cpu[1], what, gva);
		return;
	}
	CHECK(v == &m.v[0] || v == &m.v[1]);
	m.local_flushes[vcpu_index(v)]++;
	sim_cpu_flush(&m.cpu[vcpu_index(v)], what, gva);
}

static void *hostmem_to_hva(struct guest_mem *mem, u64 hfn)
{
	u64 hpa = hfn << 12;

	(void)mem;
	if (hpa >= POOL_HPA && hpa < POOL_HPA + POOL_PAGES * 4096ull) {
		return pool[(hpa - POOL_HPA) / 4096];	/* freed ones too: a CPU may walk them */
	}
	if (hpa >= RAM_HPA && hpa < RAM_HPA + RAM_PAGES * 4096ull)
		return ram + (hpa - RAM_HPA);
	return NULL;
}

static void put(u64 gfn, u32 i, u64 val)
{
	memcpy(ram + gfn * 4096 + i * 8, &val, 8);
}

static u64 get(u64 gfn, u32 i)
{
	u64 val;

	memcpy(&val, ram + gfn * 4096 + i * 8, 8);
	return val;
}

/* Linear address of entry i of the guest table in frame gfn (identity map). */
static u64 entry_va(u64 gfn, u32 i)
{
	return gfn * 4096 + i * 8;
}

/*
 * A long-mode guest: PD[0] identity-maps RAM, PD[1], PD[3..5] are T1..T4,
 * whose first 16 entries map data frames DATA + 16 * n + i. Both vCPUs run
 * on the same CR3.
 */
static void setup(void)
{
	static const u64 tables[] = { T1, 0, T2, T3, T4 };

	memset(&m, 0, sizeof(m));
	memset(pool_used, 0, sizeof(pool_used));
	nfreed = 0;
	memset(ram, 0, sizeof(ram));
	m.host.alloc_page = host_alloc;
	m.host.free_page = host_free;
	m.host.gfn_to_hpa = host_gfn_to_hpa;
	m.host.flush_tlb = host_flush;
	ref_ram_init(&m.ram, ram, RAM_PAGES);
	m.host.mem = &m.ram.mem;
	m.hostmem.gfn_to_hva = hostmem_to_hva;
	put(PML4, 0, PDPT << 12 | TBL);
	put(PDPT, 0, PD << 12 | TBL);
	put(PD, 0, PT_ID << 12 | TBL);
	for (u32 g = 0; g < RAM_PAGES; g++)
		put(PT_ID, g, (u64)g << 12 | LEAF);
	for (u32 n = 0; n < 5; n++) {
		if (!tables[n])
			continue;
		put(PD, n + 1, tables[n] << 12 | TBL);
		for (u32 i = 0; i < 16; i++)
			put(tables[n], i, (u64)(DATA + 16 * (n ? n - 1 : 0) + i) << 12 | LEAF);
	}
	shadow_init(&m.mmu, &m.host, 40);
	for (int k = 0; k < 2; k++) {
		sim_cpu_init(&m.cpu[k], &m.hostmem, SIM_TLB_DEFAULT, SIM_PDE_DEFAULT);
		CHECK(shadow_vcpu_init(&m.v[k], &m.mmu));
		CHECK_EQ(shadow_set_cr3(&m.v[k], PML4 << 12), SHADOW_CR_OK);
		CHECK_EQ(shadow_set_mode(&m.v[k], CR0_PG | CR0_WP, CR4_PAE, EFER_LMA | EFER_NXE),
			 SHADOW_CR_OK);
	}
}

static void teardown(void)
{
	CHECK_EQ(shadow_audit(&m.mmu), 0);
	shadow_vcpu_release(&m.v[0]);
	shadow_vcpu_release(&m.v[1]);
	shadow_destroy(&m.mmu);
	for (int i = 0; i < POOL_PAGES; i++)
		CHECK(!pool_used[i]);
}

enum how { DIRECT, EMULATE, GUEST_PF };

/* One try of vCPU k's CPU on its caches and the shadow tables: no MMU call. */
static enum gwalk_status cpu_try(int k, u64 gva, u32 access, u64 *gpa, u32 *pfec)
{
	struct gwalk_ctx hw = { .maxphyaddr = 52 };
	struct ref_result r;
	enum gwalk_status st;
	bool cached;

	shadow_hw_control_regs(&m.v[k], &hw.cr0, &hw.cr4, &hw.efer);
	hw.cr3 = shadow_root_hpa(&m.v[k]);
	st = sim_cpu_access(&m.cpu[k], &hw, gva, access, &r, &cached);
	if (st == GWALK_OK) {
		CHECK(r.gpa >= RAM_HPA && r.gpa < RAM_HPA + RAM_PAGES * 4096ull);
		*gpa = r.gpa - RAM_HPA;
	}
	*pfec = r.pfec;
	return st;
}

/* vCPU k's access with its shadow faults handled, as the exit handler does. */
static enum how cpu_access(int k, u64 gva, u32 access, u64 *gpa)
{
	for (int tries = 0; tries < 8; tries++) {
		struct shadow_fault f;
		u32 pfec;

		switch (cpu_try(k, gva, access, gpa, &pfec)) {
		case GWALK_OK:
			return DIRECT;
		case GWALK_FAULT:
			break;
		default:
			CHECK(!"shadow walk broken");
			return GUEST_PF;
		}
		switch (shadow_page_fault(&m.v[k], gva, shadow_access_from_pfec(pfec, 0), false,
					  &f)) {
		case SHADOW_FIXED:
			continue;
		case SHADOW_EMULATE_WRITE:
			*gpa = f.gpa;
			return EMULATE;
		case SHADOW_INJECT_PF:
			return GUEST_PF;
		default:
			CHECK(!"unexpected shadow fault kind");
			return GUEST_PF;
		}
	}
	CHECK(!"fault loop");
	return GUEST_PF;
}

/* The frame vCPU k reads at gva (~0: #PF). */
static u64 frame(int k, u64 gva)
{
	u64 gpa;

	return cpu_access(k, gva, 0, &gpa) == DIRECT ? gpa >> 12 : ~0ull;
}

/* vCPU k stores val at gva: directly, or emulated through the MMU. */
static void store(int k, u64 gva, u64 val)
{
	u64 gpa;

	switch (cpu_access(k, gva, GACC_WRITE, &gpa)) {
	case DIRECT:
		memcpy(ram + gpa, &val, 8);
		break;
	case EMULATE:
		shadow_guest_write(&m.mmu, gpa, &val, 8);
		break;
	case GUEST_PF:
		CHECK(!"store faulted");
		break;
	}
}

/* Inside the MMU: vCPU k stores only if its CPU lets it without a fault. */
static void store_meanwhile(int k, u64 gva, u64 val)
{
	u64 gpa;
	u32 pfec;

	m.hook_done = true;
	if (cpu_try(k, gva, GACC_WRITE, &gpa, &pfec) == GWALK_OK)
		memcpy(ram + gpa, &val, 8);
	else
		m.hook_blocked = true;	/* it waits for the MMU lock */
}

static void mov_cr3(int k)
{
	CHECK_EQ(shadow_set_cr3(&m.v[k], PML4 << 12), SHADOW_CR_OK);
}

static u64 t1_va(u32 i)
{
	return MB2 + i * 4096ull;
}

/*
 * vCPU 0 changes an entry of a leaf table, which goes out of sync, and has
 * not shot it down yet; then links the table at a new place (PD[2] was not
 * present: no invalidation needed, SDM 4.10.4.3). vCPU 1 had no translation
 * there: through the new path it must see the entry as it is now.
 */
TEST(link_resyncs_unsync_table)
{
	setup();
	for (u32 i = 0; i < 8; i++)
		CHECK_EQ(frame(0, t1_va(i)), DATA + i);
	store(0, entry_va(T1, 1), (u64)(DATA + 40) << 12 | LEAF);
	CHECK_EQ(m.mmu.unsync_count, 1);	/* written directly from here on */
	store(0, entry_va(PD, 2), T1 << 12 | TBL);	/* emulated: the spte links T1 */
	CHECK_EQ(frame(1, 2 * MB2 + 4096), DATA + 40);
	CHECK_EQ(frame(1, 2 * MB2), DATA + 0);
	/* vCPU 0 may still see either; after its INVLPG only the new one. */
	shadow_invlpg(&m.v[0], t1_va(1));
	CHECK_EQ(frame(0, t1_va(1)), DATA + 40);
	teardown();
}

/* The hook: vCPU 0 rewrites T1[8] while vCPU 1's MMU call derives it. */
static void rewrite_t1_8(u64 gfn)
{
	if (gfn == get(T1, 8) >> 12)
		store_meanwhile(0, entry_va(T1, 8), (u64)(DATA + 50) << 12 | LEAF);
}

/*
 * T1 is out of sync. vCPU 1 derives T1[8] (by a fault, or by its INVLPG)
 * while vCPU 0 writes it directly. The guest then invalidates on both
 * (MOV CR3 each): both must see the last value. The resync compares the
 * table with its snapshot: the snapshot must hold what the spte was
 * derived from, not what memory held a moment later.
 */
static void snapshot_race(bool by_invlpg)
{
	setup();
	put(T1, 8, (u64)(DATA + 30) << 12 | LEAF);
	CHECK_EQ(frame(0, t1_va(0)), DATA + 0);
	if (by_invlpg)
		CHECK_EQ(frame(1, t1_va(8)), DATA + 30);
	store(0, entry_va(T1, 3), (u64)(DATA + 33) << 12 | LEAF);	/* out of sync */
	CHECK_EQ(m.mmu.unsync_count, 1);
	if (by_invlpg)
		store(0, entry_va(T1, 8), (u64)(DATA + 31) << 12 | LEAF);
	m.hook = rewrite_t1_8;
	if (by_invlpg)
		shadow_invlpg(&m.v[1], t1_va(8));
	else
		CHECK_EQ(frame(1, t1_va(8)), DATA + 30);
	CHECK(m.hook_done && !m.hook_blocked);	/* the table is writable: it went in */
	m.hook = NULL;
	mov_cr3(0);
	mov_cr3(1);
	CHECK_EQ(frame(1, t1_va(8)), DATA + 50);
	CHECK_EQ(frame(0, t1_va(8)), DATA + 50);
	CHECK_EQ(frame(1, t1_va(3)), DATA + 33);
	teardown();
}

TEST(snapshot_follows_derived_entry_fault)
{
	snapshot_race(false);
}

TEST(snapshot_follows_derived_entry_invlpg)
{
	snapshot_race(true);
}

/*
 * Four tables out of sync: one MOV CR3 resyncs them all with one
 * guest-wide flush (each frame loses W), not one per table; then both
 * vCPUs see every new entry after their own invalidation.
 */
TEST(resync_all_one_guest_flush)
{
	static const u64 t[] = { T1, T2, T3, T4 };
	static const u64 va[] = { MB2, 3 * MB2, 4 * MB2, 5 * MB2 };
	u64 before;

	setup();
	for (int n = 0; n < 4; n++)
		CHECK_EQ(frame(0, va[n] + 4096), DATA + 16 * n + 1);
	for (int n = 0; n < 4; n++)
		store(1, entry_va(t[n], 1), (u64)(DATA + 60 + n) << 12 | LEAF);
	CHECK_EQ(m.mmu.unsync_count, 4);
	before = m.mmu.stats.guest_flushes;
	mov_cr3(0);
	CHECK_EQ(m.mmu.unsync_count, 0);
	CHECK_EQ(m.mmu.stats.guest_flushes - before, 1);
	mov_cr3(1);
	for (int n = 0; n < 4; n++) {
		CHECK_EQ(frame(0, va[n] + 4096), DATA + 60 + n);
		CHECK_EQ(frame(1, va[n] + 4096), DATA + 60 + n);
	}
	teardown();
}

/* The hook: vCPU 1 writes T1[1] while vCPU 0's MOV CR3 resyncs T1. */
static void write_t1_1_during_resync(u64 gfn)
{
	(void)gfn;
	store_meanwhile(1, entry_va(T1, 1), (u64)(DATA + 45) << 12 | LEAF);
}

/*
 * A resync write-protects the frame, flushes every vCPU and only then
 * reads the entries: vCPU 1, which wrote the table through a writable
 * cached translation, cannot slip a write in after the read (it would
 * leave that spte stale with the table counted in sync).
 */
TEST(resync_flushes_before_reading)
{
	setup();
	CHECK_EQ(frame(0, t1_va(1)), DATA + 1);
	CHECK_EQ(frame(0, t1_va(2)), DATA + 2);
	store(1, entry_va(T1, 2), (u64)(DATA + 42) << 12 | LEAF);	/* out of sync */
	CHECK_EQ(m.mmu.unsync_count, 1);
	m.hook = write_t1_1_during_resync;
	mov_cr3(0);
	CHECK(m.hook_done && m.hook_blocked);
	m.hook = NULL;
	/* vCPU 1 gets the lock and does its store, then shoots it down on both. */
	store(1, entry_va(T1, 1), (u64)(DATA + 45) << 12 | LEAF);
	shadow_invlpg(&m.v[1], t1_va(1));
	shadow_invlpg(&m.v[0], t1_va(1));
	CHECK_EQ(frame(0, t1_va(1)), DATA + 45);
	CHECK_EQ(frame(1, t1_va(1)), DATA + 45);
	CHECK_EQ(frame(0, t1_va(2)), DATA + 42);
	teardown();
}

/*
 * A data frame vCPU 1 writes through a cached writable translation becomes
 * a page table on vCPU 0: the write protection must reach vCPU 1's TLB, or
 * its next write to the new table would go around the shadow.
 */
TEST(write_protect_reaches_other_vcpu)
{
	u64 f = DATA + 20;

	setup();
	store(1, f * 4096, 0);
	store(1, f * 4096 + 8, 0);		/* vCPU 1 caches f writable */
	put(f, 0, (u64)(DATA + 21) << 12 | LEAF);
	store(0, entry_va(PD, 6), f << 12 | TBL);
	CHECK_EQ(frame(0, 6 * MB2), DATA + 21);	/* f is now a shadowed table */
	store(1, f * 4096, (u64)(DATA + 22) << 12 | LEAF);	/* remap, then shoot down */
	shadow_invlpg(&m.v[1], 6 * MB2);
	shadow_invlpg(&m.v[0], 6 * MB2);
	CHECK_EQ(frame(0, 6 * MB2), DATA + 22);
	CHECK_EQ(frame(1, 6 * MB2), DATA + 22);
	teardown();
}

/*
 * vCPU 0 tears a leaf table down (clears it) and the MMU frees its shadow
 * and reuses the frame for another table's shadow. vCPU 1 still caches the
 * path (PDE cache) to the freed one, and has not invalidated: at an address
 * it never used it may see the old entry or the cleared one (SDM 4.10.4.1),
 * never an entry of the table that reuses the frame.
 */
TEST(freed_table_leaves_other_vcpu)
{
	static const u8 zero[4096];
	u64 f;

	setup();
	put(T5, 9, (u64)(DATA + 59) << 12 | LEAF);
	CHECK_EQ(frame(1, t1_va(0)), DATA + 0);	/* vCPU 1 caches the path to T1 */
	shadow_guest_write(&m.mmu, T1 * 4096, zero, sizeof(zero));	/* shadows freed */
	store(0, entry_va(PD, 6), T5 << 12 | TBL);
	CHECK_EQ(frame(0, 6 * MB2 + 9 * 4096), DATA + 59);	/* a new shadow table */
	f = frame(1, t1_va(9));
	CHECK(f == DATA + 9 || f == ~0ull);
	/* The guest's shootdown, then T5 at T1's place. */
	shadow_invlpg(&m.v[0], t1_va(0));
	shadow_invlpg(&m.v[1], t1_va(0));
	CHECK_EQ(frame(1, t1_va(9)), ~0ull);
	store(0, entry_va(PD, 1), T5 << 12 | TBL);
	shadow_invlpg(&m.v[0], t1_va(9));
	shadow_invlpg(&m.v[1], t1_va(9));
	CHECK_EQ(frame(1, t1_va(9)), DATA + 59);
	CHECK_EQ(frame(0, t1_va(9)), DATA + 59);
	teardown();
}

/*
 * smp_tlb's table rebuild, on one vCPU: a leaf table is torn down (its PDE cleared, CR3
 * reloaded), its frame cleared and filled anew while unlinked, and linked at another
 * place (PDE without A: not present -> present needs no invalidation). Every entry must
 * read as written now.
 */
TEST(rebuilt_table_at_new_place)
{
	setup();
	for (u32 i = 0; i < 8; i++)
		CHECK_EQ(frame(0, t1_va(i)), DATA + i);
	store(0, entry_va(T1, 3), (u64)(DATA + 33) << 12 | LEAF);	/* out of sync */
	mov_cr3(0);
	store(0, entry_va(PD, 1), 0);			/* torn down */
	mov_cr3(0);
	for (u32 i = 0; i < 512; i++)
		store(0, entry_va(T1, i), 0);
	for (u32 i = 0; i < 8; i++)
		store(0, entry_va(T1, i), (u64)(DATA + 20 + i) << 12 | PTE_P | PTE_W);
	store(0, entry_va(PD, 2), T1 << 12 | PTE_P | PTE_W);
	for (u32 i = 0; i < 8; i++)
		CHECK_EQ(frame(0, 2 * MB2 + i * 4096), DATA + 20 + i);
	teardown();
}

UNIT_MAIN()
