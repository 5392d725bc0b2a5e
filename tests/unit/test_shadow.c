/*
 * Tests of the shadow MMU (shadow/shadow.c, shadow/spage.c). A simulated
 * CPU walks the *shadow* tables (the reference MMU run on host-physical
 * memory with the real control registers), takes shadow faults through
 * shadow_page_fault() and retries, and the outcome must equal the reference
 * walk of the guest tables: same frame, rights, faults, error codes and
 * guest A/D bits. Directed tests first, then a randomized differential test.
 */
#include <string.h>

#include "unit.h"
#include "refmmu.h"
#include "shadow/shadow.h"
#include "shadow/spage.h"

#define POOL_PAGES 1024
#define POOL_HPA 0x40000000ull	/* host-physical base of shadow pages (below 4 GiB) */
#define RAM_HPA 0x80000000ull	/* host-physical base of guest RAM */
#define RAM_PAGES 24		/* guest RAM of most tests */
#define RAM_MAX_PAGES 1024	/* room for tests that need a 4 MiB page of RAM */

static u8 pool[POOL_PAGES][4096] __attribute__((aligned(4096)));
static bool pool_used[POOL_PAGES];
static u8 ram_shadow[RAM_MAX_PAGES * 4096] __attribute__((aligned(4096)));
static u8 ram_ref[RAM_MAX_PAGES * 4096] __attribute__((aligned(4096)));
static u64 ram_pages = RAM_PAGES;

struct test_host {
	struct shadow_host host;
	struct ref_ram guest;		/* guest RAM as the shadow MMU sees it */
	struct ref_ram ref;		/* a copy for the reference MMU */
	struct guest_mem hostmem;	/* host-physical memory, for the simulated CPU */
	unsigned budget, in_use;
	unsigned flushes[4];
	u64 last_gva;
};

static struct test_host th;

static void *host_alloc(struct shadow_host *h, u64 *hpa, bool below_4g, bool zero)
{
	struct test_host *t = (struct test_host *)h;

	(void)below_4g;		/* the whole pool is below 4 GiB */
	if (t->in_use >= t->budget)
		return NULL;
	for (int i = 0; i < POOL_PAGES; i++) {
		if (pool_used[i])
			continue;
		pool_used[i] = true;
		t->in_use++;
		/* Garbage where the MMU did not ask for zeros: it must not read it. */
		memset(pool[i], zero ? 0 : 0xa5, 4096);
		*hpa = POOL_HPA + (u64)i * 4096;
		return pool[i];
	}
	return NULL;
}

static void host_free(struct shadow_host *h, void *page, u64 hpa)
{
	struct test_host *t = (struct test_host *)h;
	u64 i = (hpa - POOL_HPA) / 4096;

	CHECK(i < POOL_PAGES && pool_used[i] && page == pool[i]);
	pool_used[i] = false;
	t->in_use--;
	memset(page, 0xa5, 4096);	/* poison: a walk through a freed table fails */
}

static u64 host_gfn_to_hpa(struct shadow_host *h, u64 gfn)
{
	(void)h;
	return gfn < ram_pages ? RAM_HPA + gfn * 4096 : SHADOW_NO_RAM;
}

/* Guest RAM is one aligned run; a test may deny a region (mixed MTRR types, say). */
static u64 large_denied = ~0ull;

static u64 host_gfn_to_hpa_large(struct shadow_host *h, u64 gfn)
{
	(void)h;
	if (gfn + 512 > ram_pages || gfn == large_denied)
		return SHADOW_NO_RAM;
	return RAM_HPA + gfn * 4096;
}

static void host_flush(struct shadow_host *h, struct shadow_vcpu *v, enum shadow_flush what,
		       u64 gva)
{
	struct test_host *t = (struct test_host *)h;

	(void)v;	/* one vCPU */

	t->flushes[what]++;
	t->last_gva = gva;
}

static void *hostmem_to_hva(struct guest_mem *mem, u64 hfn)
{
	u64 hpa = hfn << 12;

	(void)mem;
	if (hpa >= POOL_HPA && hpa < POOL_HPA + POOL_PAGES * 4096ull) {
		u64 i = (hpa - POOL_HPA) / 4096;

		return pool_used[i] ? pool[i] : NULL;
	}
	if (hpa >= RAM_HPA && hpa < RAM_HPA + ram_pages * 4096)
		return ram_shadow + (hpa - RAM_HPA);
	return NULL;
}

static void host_setup_ram(unsigned budget, u64 pages)
{
	ram_pages = pages;
	memset(&th, 0, sizeof(th));
	memset(pool_used, 0, sizeof(pool_used));
	memset(ram_shadow, 0, sizeof(ram_shadow));
	memset(ram_ref, 0, sizeof(ram_ref));
	th.host.alloc_page = host_alloc;
	th.host.free_page = host_free;
	th.host.gfn_to_hpa = host_gfn_to_hpa;
	th.host.gfn_to_hpa_large = host_gfn_to_hpa_large;
	large_denied = ~0ull;
	th.host.flush_tlb = host_flush;
	ref_ram_init(&th.guest, ram_shadow, pages);
	ref_ram_init(&th.ref, ram_ref, pages);
	th.host.mem = &th.guest.mem;
	th.hostmem.gfn_to_hva = hostmem_to_hva;
	th.budget = budget;
}

static void host_setup(unsigned budget)
{
	host_setup_ram(budget, RAM_PAGES);
}

/* ---- the simulated CPU and the comparison ------------------------------ */

enum outcome_kind { OUT_OK, OUT_PF, OUT_GP, OUT_TABLE_NOT_RAM, OUT_BROKEN };

struct outcome {
	enum outcome_kind kind;
	u64 gpa;
	u32 pfec;
};

/* A CPU walk of the shadow tables with the real control registers. */
static enum gwalk_status cpu_walk(struct shadow_vcpu *v, u64 gva, u32 access, bool ac,
				  struct ref_result *r)
{
	struct gwalk_ctx hw = { .maxphyaddr = 52, .rflags_ac = ac };

	shadow_hw_control_regs(v, &hw.cr0, &hw.cr4, &hw.efer);
	hw.cr3 = shadow_root_hpa(v);
	if (!(hw.efer & EFER_LMA) && !gwalk_load_pdptes(&hw, &th.hostmem)) {
		CHECK(!"shadow PDPTEs invalid");	/* VM entry would fail */
		return GWALK_NOT_RAM;
	}
	return ref_translate(&hw, &th.hostmem, gva, access, r);
}

static int cpl_of(u32 access)
{
	return access & (GACC_USER | GACC_IMPLICIT) ? 3 : 0;
}

/* The guest's access as it runs on the shadow tables, with exits. */
static struct outcome shadow_access(struct shadow_vcpu *v, u64 gva, u32 access, bool ac)
{
	struct outcome o = { OUT_BROKEN, 0, 0 };

	for (int tries = 0; tries < 8; tries++) {
		struct ref_result r;
		struct shadow_fault f;
		u32 acc;

		switch (cpu_walk(v, gva, access, ac, &r)) {
		case GWALK_OK:
			if (r.gpa < RAM_HPA || r.gpa >= RAM_HPA + ram_pages * 4096) {
				CHECK(!"spte maps outside guest RAM");
				return o;
			}
			o.kind = OUT_OK;
			o.gpa = r.gpa - RAM_HPA;
			return o;
		case GWALK_NONCANONICAL:
			o.kind = OUT_GP;
			return o;
		case GWALK_NOT_RAM:
			CHECK(!"shadow table points at a non-table page");
			return o;
		case GWALK_FAULT:
			break;
		}
		acc = shadow_access_from_pfec(r.pfec, cpl_of(access));
		CHECK_EQ(acc, access);
		CHECK(!(r.pfec & PFEC_RSVD));
		switch (shadow_page_fault(v, gva, acc, ac, &f)) {
		case SHADOW_FIXED:
			continue;
		case SHADOW_INJECT_PF:
			o.kind = OUT_PF;
			o.pfec = f.pfec;
			return o;
		case SHADOW_INJECT_GP:
			o.kind = OUT_GP;
			return o;
		case SHADOW_EMULATE_WRITE:
			CHECK(access & GACC_WRITE);
			o.kind = OUT_OK;
			o.gpa = f.gpa;
			return o;
		case SHADOW_EMULATE_ACCESS:
			CHECK(!(v->ctx.cr0 & CR0_WP) && (access & GACC_WRITE));
			o.kind = OUT_OK;
			o.gpa = f.gpa;
			return o;
		case SHADOW_NOT_RAM:
			o.kind = f.table ? OUT_TABLE_NOT_RAM : OUT_OK;
			o.gpa = f.gpa;
			return o;
		case SHADOW_NO_MEMORY:
			CHECK(!"out of shadow memory");
			return o;
		}
	}
	CHECK(!"shadow fault loop");
	return o;
}

static struct outcome ref_access(struct shadow_vcpu *v, u64 gva, u32 access, bool ac)
{
	struct gwalk_ctx ctx = v->ctx;
	struct ref_result r;
	struct outcome o = { OUT_OK, 0, 0 };

	ctx.rflags_ac = ac;
	switch (ref_translate(&ctx, &th.ref.mem, gva, access, &r)) {
	case GWALK_OK:
		o.gpa = r.gpa;
		break;
	case GWALK_FAULT:
		o.kind = OUT_PF;
		o.pfec = r.pfec;
		break;
	case GWALK_NONCANONICAL:
		o.kind = OUT_GP;
		break;
	case GWALK_NOT_RAM:
		o.kind = OUT_TABLE_NOT_RAM;
		o.gpa = r.gpa;
		break;
	}
	return o;
}

static bool same_outcome(struct outcome a, struct outcome b)
{
	if (a.kind != b.kind)
		return false;
	if (a.kind == OUT_PF)
		return a.pfec == b.pfec;
	if (a.kind == OUT_OK || a.kind == OUT_TABLE_NOT_RAM)
		return a.gpa == b.gpa;
	return true;
}

static u8 ram_before[RAM_MAX_PAGES * 4096];
static unsigned cached_translations;

/*
 * Differential runs over 4 MiB of RAM (big_ram): guest tables live in the
 * first RAM_PAGES frames and in BIG_TABLES frames at 2 MiB, the only frames
 * stores and A/D bits change, so the comparisons look at those alone.
 */
#define BIG_TABLES 4
#define BIG_BASE (512 * 4096)
static bool big_ram;

static bool ram_equal(const u8 *a, const u8 *b)
{
	if (!big_ram)
		return !memcmp(a, b, ram_pages * 4096);
	return !memcmp(a, b, RAM_PAGES * 4096) &&
	       !memcmp(a + BIG_BASE, b + BIG_BASE, BIG_TABLES * 4096);
}

static void ram_copy(u8 *dst, const u8 *src)
{
	if (!big_ram) {
		memcpy(dst, src, ram_pages * 4096);
		return;
	}
	memcpy(dst, src, RAM_PAGES * 4096);
	memcpy(dst + BIG_BASE, src + BIG_BASE, BIG_TABLES * 4096);
}

/*
 * One access both ways; both RAM copies (A/D bits) must stay equal. Where
 * the shadow tables alone translate it (shadow_translate_cached()), the
 * reference walk must agree and find nothing to set.
 */
static bool compare_access(struct shadow_vcpu *v, u64 gva, u32 access, bool ac)
{
	u64 cached_gpa = 0;
	bool cached = shadow_translate_cached(v, gva, access, ac, &cached_gpa);
	struct outcome s, r;
	bool ok;

	if (cached)
		ram_copy(ram_before, ram_ref);
	r = ref_access(v, gva, access, ac);
	if (cached) {
		cached_translations++;
		CHECK_EQ(r.kind, OUT_OK);
		CHECK_EQ(r.gpa, cached_gpa);
		CHECK(ram_equal(ram_before, ram_ref));
	}
	s = shadow_access(v, gva, access, ac);
	ok = same_outcome(s, r) && ram_equal(ram_shadow, ram_ref);

	if (!ok)
		fprintf(stderr, "  mode %d cr0 %#llx cr4 %#llx gva %#llx access %#x ac %d: shadow "
			"%d/%#llx/%#x ref %d/%#llx/%#x\n", gwalk_mode(&v->ctx),
			(unsigned long long)v->ctx.cr0, (unsigned long long)v->ctx.cr4,
			(unsigned long long)gva, access, ac, s.kind, (unsigned long long)s.gpa,
			s.pfec, r.kind, (unsigned long long)r.gpa, r.pfec);
	CHECK(ok);
	return ok;
}

/*
 * A guest store of len bytes at gpa: emulated through the shadow MMU when
 * it hits a write-protected frame, a plain store otherwise.
 */
static void guest_store(struct shadow_mmu *mmu, u64 gpa, const void *data, u32 len)
{
	bool protected = false;

	for (u64 g = gpa >> 12; g <= (gpa + len - 1) >> 12; g++)
		protected |= shadow_gfn_is_write_protected(mmu, g);
	memcpy(ram_ref + gpa, data, len);
	if (protected)
		shadow_guest_write(mmu, gpa, data, len);
	else
		memcpy(ram_shadow + gpa, data, len);
}

static void store64(struct shadow_mmu *mmu, u64 gpa, u64 val)
{
	guest_store(mmu, gpa, &val, 8);
}

static void store32(struct shadow_mmu *mmu, u64 gpa, u32 val)
{
	guest_store(mmu, gpa, &val, 4);
}

static u64 load64(u64 gpa)
{
	u64 v;

	memcpy(&v, ram_shadow + gpa, 8);
	return v;
}

/* ---- directed tests ---------------------------------------------------- */

static const u32 access_kinds[] = {
	0, GACC_WRITE, GACC_FETCH,
	GACC_USER, GACC_USER | GACC_WRITE, GACC_USER | GACC_FETCH,
	GACC_IMPLICIT, GACC_IMPLICIT | GACC_WRITE,
};

struct fixture {
	struct shadow_mmu mmu;
	struct shadow_vcpu v;
};

static struct fixture fx;

/* Long mode, PML4 at frame 1, PDPT 2, PD 3, PT 4; gva 0x1000 -> frame 10 (RW, U). */
static void long_mode_setup(unsigned budget)
{
	host_setup(budget);
	shadow_init(&fx.mmu, &th.host, 40);
	CHECK(shadow_vcpu_init(&fx.v, &fx.mmu));
	store64(&fx.mmu, 0x1000, 0x2000 | PTE_P | PTE_W | PTE_U);
	store64(&fx.mmu, 0x2000, 0x3000 | PTE_P | PTE_W | PTE_U);
	store64(&fx.mmu, 0x3000, 0x4000 | PTE_P | PTE_W | PTE_U);
	store64(&fx.mmu, 0x4000 + 8, 0xa000 | PTE_P | PTE_W | PTE_U);
	store64(&fx.mmu, 0x4000 + 16, 0x4000 | PTE_P | PTE_W);	/* maps its own PT */
	CHECK_EQ(shadow_set_cr3(&fx.v, 0x1000), SHADOW_CR_OK);	/* still paging off */
	CHECK_EQ(shadow_set_mode(&fx.v, CR0_PG | CR0_WP, CR4_PAE, EFER_LMA | EFER_NXE),
		 SHADOW_CR_OK);
}

static void teardown(void)
{
	shadow_vcpu_release(&fx.v);
	shadow_destroy(&fx.mmu);
	CHECK_EQ(th.in_use, 0);
}

TEST(ad_emulation_long_mode)
{
	long_mode_setup(64);
	/* A read: fault, fixed, guest A bits set on all levels, no D. */
	CHECK(compare_access(&fx.v, 0x1234, GACC_USER, false));
	CHECK(load64(0x1000) & PTE_A);
	CHECK(load64(0x4008) & PTE_A);
	CHECK(!(load64(0x4008) & PTE_D));
	CHECK_EQ(fx.mmu.stats.faults_fixed, 1);
	/* A second read needs no fault. */
	CHECK(compare_access(&fx.v, 0x1238, GACC_USER, false));
	CHECK_EQ(fx.mmu.stats.faults, 1);
	/* The spte is read-only until D: a write faults once and sets D. */
	CHECK(compare_access(&fx.v, 0x1234, GACC_USER | GACC_WRITE, false));
	CHECK(load64(0x4008) & PTE_D);
	CHECK_EQ(fx.mmu.stats.faults, 2);
	CHECK(compare_access(&fx.v, 0x1234, GACC_USER | GACC_WRITE, false));
	CHECK_EQ(fx.mmu.stats.faults, 2);
	CHECK_EQ(shadow_audit(&fx.mmu), 0);
	CHECK_EQ(fx.mmu.stats.pages_in_use[1], 1);
	CHECK_EQ(fx.mmu.stats.pages_in_use[4], 1);
	teardown();
}

/* Guest memory as the MMU sees it, counting the guest frames it looks up. */
static unsigned guest_lookups;

static void *counting_gfn_to_hva(struct guest_mem *mem, u64 gfn)
{
	(void)mem;
	guest_lookups++;
	return th.guest.mem.gfn_to_hva(&th.guest.mem, gfn);
}

static struct guest_mem counting_mem = { counting_gfn_to_hva };

/*
 * A fault under tables already shadowed reads each guest entry once (the
 * walk: four levels) and derives only the missing leaf; without the fast
 * path every level is derived again from guest memory.
 */
TEST(fast_path_reads_each_guest_entry_once)
{
	for (int fast = 1; fast >= 0; fast--) {
		long_mode_setup(64);
		fx.mmu.opt.fastpath = fast;
		fx.mmu.opt.prefetch = false;	/* its reads are counted elsewhere */
		store64(&fx.mmu, 0x4000 + 24, 0xb000 | PTE_P | PTE_W | PTE_U);
		CHECK(compare_access(&fx.v, 0x1234, GACC_USER, false));
		th.host.mem = &counting_mem;
		guest_lookups = 0;
		CHECK(compare_access(&fx.v, 0x3010, GACC_USER, false));
		th.host.mem = &th.guest.mem;
		CHECK_EQ(fx.mmu.stats.faults, 2);
		if (fast)
			CHECK_EQ(guest_lookups, 4);
		else
			CHECK(guest_lookups >= 8);
		CHECK_EQ(shadow_audit(&fx.mmu), 0);
		teardown();
	}
}

/*
 * A write to a guest table through an spte that would allow it but for the
 * write protection is sent to emulation without a guest walk, and the
 * emulator's translation of it comes from the shadow too (fastemul).
 */
TEST(table_write_emulated_without_guest_walk)
{
	for (int fast = 1; fast >= 0; fast--) {
		u64 gpa = 0;

		long_mode_setup(64);
		fx.mmu.opt.fastemul = fast;
		fx.mmu.opt.prefetch = false;
		fx.mmu.opt.unsync = false;	/* emulated, not left writable */
		/* gva 0x2000 maps the page table itself (frame 4), writable and dirty. */
		store64(&fx.mmu, 0x4000 + 16, 0x4000 | PTE_P | PTE_W | PTE_A | PTE_D);
		CHECK(compare_access(&fx.v, 0x2008, GACC_WRITE, false));	/* builds the path */
		CHECK_EQ(fx.mmu.stats.faults_emulate, 1);
		th.host.mem = &counting_mem;
		guest_lookups = 0;
		CHECK(compare_access(&fx.v, 0x2010, GACC_WRITE, false));
		CHECK_EQ(fx.mmu.stats.faults_emulate, 2);
		CHECK_EQ(guest_lookups, fast ? 0 : 4);
		CHECK_EQ(shadow_translate_cached(&fx.v, 0x2010, GACC_WRITE, false, &gpa), true);
		CHECK_EQ(gpa, 0x4010);
		th.host.mem = &th.guest.mem;
		/* A user write is refused by the guest (supervisor page): no shortcut. */
		CHECK(!shadow_translate_cached(&fx.v, 0x2010, GACC_WRITE | GACC_USER, false, &gpa));
		CHECK(compare_access(&fx.v, 0x2010, GACC_WRITE | GACC_USER, false));
		CHECK_EQ(shadow_audit(&fx.mmu), 0);
		teardown();
	}
}

/*
 * Prefetch: the fault that shadows a guest leaf table also fills the sptes
 * of the accessed entries in its aligned group of SHADOW_PREFETCH, with the
 * rights a fault would give (read-only before D), and sets no guest bit;
 * not-accessed or invalid entries still fault, and so do entries of other
 * groups and of a table shadowed before.
 */
TEST(prefetch_fills_accessed_entries_only)
{
	for (int on = 1; on >= 0; on--) {
		long_mode_setup(64);
		fx.mmu.opt.prefetch = on;
		store64(&fx.mmu, 0x4000 + 8 * 8, 0x10000 | PTE_P | PTE_W | PTE_U);
		store64(&fx.mmu, 0x4000 + 8 * 9, 0x11000 | PTE_P | PTE_W | PTE_U | PTE_A);
		store64(&fx.mmu, 0x4000 + 8 * 10, 0x12000 | PTE_P | PTE_W | PTE_U | PTE_A | PTE_D);
		store64(&fx.mmu, 0x4000 + 8 * 11, 0x13000 | PTE_P | PTE_U);	/* A clear */
		store64(&fx.mmu, 0x4000 + 8 * 12, 0x14000 | PTE_P | PTE_A | BIT(45));	/* reserved */
		store64(&fx.mmu, 0x4000 + 8 * 16, 0x15000 | PTE_P | PTE_A);	/* next group */
		CHECK(compare_access(&fx.v, 0x8000, GACC_USER, false));
		CHECK_EQ(fx.mmu.stats.faults, 1);
		CHECK_EQ(fx.mmu.stats.prefetched, on ? 2 : 0);
		CHECK(compare_access(&fx.v, 0x9000, GACC_USER, false));
		CHECK(compare_access(&fx.v, 0xa000, GACC_USER | GACC_WRITE, false));
		CHECK_EQ(fx.mmu.stats.faults, on ? 1 : 3);
		/* Read-only until D: the write faults and sets D. */
		CHECK(compare_access(&fx.v, 0x9000, GACC_USER | GACC_WRITE, false));
		CHECK(load64(0x4000 + 8 * 9) & PTE_D);
		CHECK_EQ(fx.mmu.stats.faults, on ? 2 : 4);
		CHECK(compare_access(&fx.v, 0xb000, GACC_USER, false));
		CHECK(compare_access(&fx.v, 0xc000, 0, false));
		CHECK(compare_access(&fx.v, 0x10000, 0, false));
		CHECK_EQ(fx.mmu.stats.faults, on ? 5 : 7);
		/* Entries written while the table is shadowed are built by the write
		 * when accessed (no fault), else by their own fault. */
		store64(&fx.mmu, 0x4000 + 8 * 20, 0x16000 | PTE_P | PTE_A);
		store64(&fx.mmu, 0x4000 + 8 * 21, 0x17000 | PTE_P);
		CHECK(compare_access(&fx.v, 0x15000, 0, false));
		CHECK(compare_access(&fx.v, 0x14000, 0, false));
		CHECK_EQ(fx.mmu.stats.faults, on ? 6 : 8);
		CHECK_EQ(fx.mmu.stats.prefetched, on ? 2 : 0);
		/* The floor does not move: 4 A/D settings and one injected #PF. */
		CHECK_EQ(fx.mmu.stats.faults_needed, 5);
		CHECK_EQ(shadow_audit(&fx.mmu), 0);
		teardown();
	}
}

/*
 * Out-of-sync leaf tables: a write to a shadowed leaf table leaves it
 * writable (the guest writes it without exits), its shadow may be stale
 * until the guest invalidates: INVLPG brings the address in step, a CR3
 * load the whole table, write-protected again; at most SHADOW_UNSYNC_MAX
 * pages at once.
 */
TEST(unsync_leaf_table_resynced_at_invalidation)
{
	struct shadow_fault f;
	struct ref_result r;

	for (int on = 1; on >= 0; on--) {
		long_mode_setup(64);
		fx.mmu.opt.unsync = on;
		fx.mmu.opt.prefetch = false;
		/* gva 0x2000 maps the page table itself (frame 4), writable and dirty. */
		store64(&fx.mmu, 0x4000 + 16, 0x4000 | PTE_P | PTE_W | PTE_A | PTE_D);
		CHECK(compare_access(&fx.v, 0x1000, GACC_USER, false));
		CHECK(compare_access(&fx.v, 0x2000, 0, false));
		CHECK_EQ(shadow_page_fault(&fx.v, 0x2008, GACC_WRITE, false, &f),
			 on ? SHADOW_FIXED : SHADOW_EMULATE_WRITE);
		CHECK_EQ(shadow_gfn_is_write_protected(&fx.mmu, 4), !on);
		if (!on) {
			teardown();
			continue;
		}
		CHECK_EQ(fx.mmu.stats.unsynced, 1);
		CHECK(compare_access(&fx.v, 0x2008, GACC_WRITE, false));	/* no exit now */
		CHECK_EQ(fx.mmu.stats.faults, 3);
		/* The guest remaps 0x1000 to frame 11 with plain stores; until it
		 * invalidates, the shadow may still give frame 10. */
		store64(&fx.mmu, 0x4008, 0xb000 | PTE_P | PTE_W | PTE_U | PTE_A);
		CHECK_EQ(cpu_walk(&fx.v, 0x1000, GACC_USER, false, &r), GWALK_OK);
		CHECK_EQ(r.gpa, RAM_HPA + 0xa000);
		CHECK(!shadow_translate_cached(&fx.v, 0x1000, GACC_USER, false, &r.gpa));
		/* INVLPG brings that address's spte in step, the table stays writable. */
		shadow_invlpg(&fx.v, 0x1000);
		CHECK(compare_access(&fx.v, 0x1000, GACC_USER, false));
		CHECK_EQ(load64(0x4008) & ~0xfffull, 0xb000);
		CHECK_EQ(fx.mmu.stats.resyncs, 0);
		CHECK(!shadow_gfn_is_write_protected(&fx.mmu, 4));
		CHECK_EQ(shadow_audit(&fx.mmu), 0);

		/* An entry made present, used (its spte built from it) and made
		 * not-present again while out of sync: back to its snapshot value,
		 * yet the resync must drop the spte. */
		store64(&fx.mmu, 0x4000 + 8 * 5, 0xc000 | PTE_P | PTE_W | PTE_A | PTE_D);
		CHECK(compare_access(&fx.v, 0x5000, GACC_WRITE, false));
		store64(&fx.mmu, 0x4000 + 8 * 5, 0);
		CHECK_EQ(shadow_set_cr3(&fx.v, 0x1000), SHADOW_CR_OK);
		CHECK(compare_access(&fx.v, 0x5000, 0, false));	/* #PF, as the guest says */
		CHECK_EQ(shadow_audit(&fx.mmu), 0);
		CHECK_EQ(shadow_page_fault(&fx.v, 0x2010, GACC_WRITE, false, &f), SHADOW_FIXED);

		/* Nine more leaf tables (frames 12-20, PD entries 1-9), each mapped
		 * writable at 0x20000 + 0x1000 * k, each written: eight stay out
		 * of sync, the oldest is resynced to make room. */
		for (u64 k = 0; k < 9; k++) {
			store64(&fx.mmu, 0x3000 + 8 * (k + 1), (12 + k) << 12 | PTE_P | PTE_W | PTE_U);
			store64(&fx.mmu, (12 + k) << 12, 0xa000 | PTE_P | PTE_A);
			store64(&fx.mmu, 0x4000 + 8 * (32 + k), (12 + k) << 12 | PTE_P | PTE_W |
				PTE_A | PTE_D);
			CHECK(compare_access(&fx.v, (k + 1) << 21, 0, false));	/* shadowed */
			CHECK(compare_access(&fx.v, (32 + k) << 12, GACC_WRITE, false));
		}
		CHECK_EQ(fx.mmu.unsync_count, SHADOW_UNSYNC_MAX);
		CHECK_EQ(fx.mmu.stats.unsynced, 11);
		CHECK_EQ(fx.mmu.stats.resyncs, 3);
		CHECK(shadow_gfn_is_write_protected(&fx.mmu, 4));	/* the oldest went first */
		CHECK_EQ(shadow_audit(&fx.mmu), 0);
		/* A CR3 load resyncs them all. */
		CHECK_EQ(shadow_set_cr3(&fx.v, 0x1000), SHADOW_CR_OK);
		CHECK_EQ(fx.mmu.unsync_count, 0);
		for (u64 k = 0; k < 9; k++)
			CHECK(shadow_gfn_is_write_protected(&fx.mmu, 12 + k));
		CHECK_EQ(shadow_audit(&fx.mmu), 0);
		teardown();
	}
}

/* The level-2 shadow page under the long-mode root of long_mode_setup() (PD frame 3). */
static struct shadow_page *shadow_pd(void)
{
	for (struct shadow_page *sp = fx.mmu.oldest; sp; sp = sp->newer)
		if (sp->role.level == 2 && sp->gfn == 3 && !sp->role.direct)
			return sp;
	return NULL;
}

/*
 * A guest 2 MiB page over a region of RAM that holds no guest table is one
 * 2 MiB spte: read-only until the guest PDE's D bit is set (the write that
 * sets it faults), one fault for the whole page. When a frame inside
 * becomes a shadowed table, the 2 MiB spte goes and the next access maps
 * 4 KiB pages, with the table write-protected. Without largepages (or where
 * the host's run does not allow it) the page is splintered.
 */
TEST(large_pages_2m_sptes)
{
	for (int on = 1; on >= 0; on--) {
		struct shadow_page *pd;
		struct shadow_fault f;
		u64 faults;

		host_setup_ram(64, RAM_MAX_PAGES);
		shadow_init(&fx.mmu, &th.host, 40);
		fx.mmu.opt.largepages = on;
		fx.mmu.opt.unsync = false;	/* a table write is emulated, not unsynced */
		CHECK(shadow_vcpu_init(&fx.v, &fx.mmu));
		store64(&fx.mmu, 0x1000, 0x2000 | PTE_P | PTE_W | PTE_U);
		store64(&fx.mmu, 0x2000, 0x3000 | PTE_P | PTE_W | PTE_U);
		/* gva 2 MiB: the guest's 2 MiB page at 2 MiB (frames 512..1023), not accessed. */
		store64(&fx.mmu, 0x3000 + 8, 0x200000 | PTE_P | PTE_W | PTE_U | PTE_PS);
		CHECK_EQ(shadow_set_cr3(&fx.v, 0x1000), SHADOW_CR_OK);
		CHECK_EQ(shadow_set_mode(&fx.v, CR0_PG | CR0_WP, CR4_PAE, EFER_LMA | EFER_NXE),
			 SHADOW_CR_OK);
		CHECK(compare_access(&fx.v, 0x212345, GACC_USER, false));
		CHECK((load64(0x3008) & (PTE_A | PTE_D)) == PTE_A);
		pd = shadow_pd();
		CHECK(pd != NULL);
		CHECK_EQ(!!(pd->spt[1] & PTE_PS), on);
		CHECK_EQ(fx.mmu.stats.large_mapped, (u64)on);
		if (on)	/* read-only before D */
			CHECK_EQ(pd->spt[1] & (PTE_W | PTE_PS | PTE_ADDR_MASK52),
				 PTE_PS | (RAM_HPA + 0x200000));
		/* Elsewhere in the page: no fault with a 2 MiB spte (a splinter faults). */
		faults = fx.mmu.stats.faults;
		CHECK(compare_access(&fx.v, 0x3ff000, GACC_USER, false));
		CHECK_EQ(fx.mmu.stats.faults - faults, (u64)!on);
		/* A write faults once, sets D in the guest PDE, and maps it writable. */
		CHECK(compare_access(&fx.v, 0x300010, GACC_USER | GACC_WRITE, false));
		CHECK(load64(0x3008) & PTE_D);
		if (on)
			CHECK((pd->spt[1] & (PTE_W | PTE_PS)) == (PTE_W | PTE_PS));
		faults = fx.mmu.stats.faults;
		CHECK(compare_access(&fx.v, 0x2ff010, GACC_WRITE, false));
		CHECK_EQ(fx.mmu.stats.faults - faults, (u64)!on);
		CHECK_EQ(shadow_audit(&fx.mmu), 0);
		/* Frame 0x300 (inside the 2 MiB page) becomes a page table: the 2 MiB spte goes. */
		store64(&fx.mmu, 0x3000 + 16, 0x300000 | PTE_P | PTE_W | PTE_U);
		store64(&fx.mmu, 0x300000, 0xa000 | PTE_P | PTE_W | PTE_U);
		CHECK(compare_access(&fx.v, 0x400000, GACC_USER, false));
		CHECK(!(pd->spt[1] & PTE_PS));
		CHECK_EQ(fx.mmu.stats.large_split, (u64)on);
		CHECK_EQ(shadow_audit(&fx.mmu), 0);
		/* A write to it through the guest's 2 MiB page is emulated (write-protected). */
		CHECK(compare_access(&fx.v, 0x300008, GACC_WRITE, false));
		CHECK_EQ(shadow_page_fault(&fx.v, 0x300008, GACC_WRITE, false, &f),
			 SHADOW_EMULATE_WRITE);
		CHECK_EQ(f.gpa, 0x300008);
		CHECK(!(pd->spt[1] & PTE_PS));
		/* Once it is no table, the next fault there maps 2 MiB again. */
		store64(&fx.mmu, 0x3000 + 16, 0);
		guest_store(&fx.mmu, 0x300000, (u8[4096]){ 0 }, 4096);	/* cleared: unshadowed */
		shadow_zap_all(&fx.mmu);
		CHECK(compare_access(&fx.v, 0x300008, GACC_WRITE, false));
		CHECK_EQ(!!(shadow_pd()->spt[1] & PTE_PS), on);
		/* A region the host cannot map with one 2 MiB spte is splintered. */
		store64(&fx.mmu, 0x3000 + 24, 0x200000 | PTE_P | PTE_W | PTE_PS);
		large_denied = 512;
		shadow_zap_all(&fx.mmu);
		CHECK(compare_access(&fx.v, 0x612345, 0, false));
		CHECK(!(shadow_pd()->spt[3] & PTE_PS));
		CHECK_EQ(shadow_audit(&fx.mmu), 0);
		teardown();
	}
}

/*
 * A root no vCPU runs on (kept by the root cache) goes out of sync when
 * written, as a leaf table does; the running root is still emulated. The
 * MOV to CR3 that comes back to it resyncs it first.
 */
TEST(unsync_root_at_rest)
{
	struct shadow_fault f;

	for (int on = 1; on >= 0; on--) {
		long_mode_setup(64);
		fx.mmu.opt.unsync = on;
		fx.mmu.opt.prefetch = false;
		/* gva 0x6000 maps root A (frame 1); root B (frame 5) shares its PDPT. */
		store64(&fx.mmu, 0x4000 + 8 * 6, 0x1000 | PTE_P | PTE_W | PTE_A | PTE_D);
		store64(&fx.mmu, 0x5000, 0x2000 | PTE_P | PTE_W | PTE_U);
		CHECK(compare_access(&fx.v, 0x1000, GACC_USER, false));
		CHECK(compare_access(&fx.v, 0x6000, 0, false));
		/* Root A runs: a write to it is emulated, out of sync or not. */
		CHECK_EQ(shadow_page_fault(&fx.v, 0x6010, GACC_WRITE, false, &f), SHADOW_EMULATE_WRITE);
		CHECK_EQ(shadow_set_cr3(&fx.v, 0x5000), SHADOW_CR_OK);
		CHECK(compare_access(&fx.v, 0x6000, 0, false));
		CHECK_EQ(shadow_page_fault(&fx.v, 0x6008, GACC_WRITE, false, &f),
			 on ? SHADOW_FIXED : SHADOW_EMULATE_WRITE);
		CHECK_EQ(shadow_gfn_is_write_protected(&fx.mmu, 1), !on);
		CHECK_EQ(fx.mmu.stats.unsynced, (u64)on);
		/* The guest links PML4 entry 1 of root A with plain stores, then runs on it. */
		store64(&fx.mmu, 0x1008, 0x2000 | PTE_P | PTE_W | PTE_U);
		CHECK_EQ(shadow_audit(&fx.mmu), 0);
		CHECK_EQ(shadow_set_cr3(&fx.v, 0x1000), SHADOW_CR_OK);
		CHECK(shadow_gfn_is_write_protected(&fx.mmu, 1));
		CHECK_EQ(fx.mmu.stats.resyncs, (u64)on);
		CHECK(compare_access(&fx.v, 0x8000001000ull, GACC_USER, false));
		CHECK(compare_access(&fx.v, 0x8000001000ull, GACC_USER | GACC_WRITE, false));
		/* Cleared while at rest: resynced empty, still write-protected (pinned). */
		CHECK_EQ(shadow_set_cr3(&fx.v, 0x5000), SHADOW_CR_OK);
		CHECK(compare_access(&fx.v, 0x6000, 0, false));
		CHECK_EQ(shadow_page_fault(&fx.v, 0x6000, GACC_WRITE, false, &f),
			 on ? SHADOW_FIXED : SHADOW_EMULATE_WRITE);
		guest_store(&fx.mmu, 0x1000, (u8[4096]){ 0 }, 4096);
		CHECK_EQ(shadow_set_cr3(&fx.v, 0x1000), SHADOW_CR_OK);
		CHECK(shadow_gfn_is_write_protected(&fx.mmu, 1));
		CHECK(compare_access(&fx.v, 0x1000, GACC_USER, false));	/* #PF now */
		CHECK_EQ(shadow_audit(&fx.mmu), 0);
		teardown();
	}
}

TEST(write_protect_and_in_place_update)
{
	long_mode_setup(64);
	fx.mmu.opt.unsync = false;	/* writes to tables are emulated */
	CHECK(compare_access(&fx.v, 0x1000, GACC_USER | GACC_WRITE, false));
	/* The page table maps itself at 0x2000: the mapping must be read-only. */
	CHECK(shadow_gfn_is_write_protected(&fx.mmu, 4));
	CHECK(compare_access(&fx.v, 0x2008, 0, false));
	CHECK(compare_access(&fx.v, 0x2008, GACC_WRITE, false));	/* emulated write */
	{
		struct shadow_fault f;
		u8 clear_w = (u8)((PTE_P | PTE_U | PTE_A | PTE_D) & 0xff);

		CHECK_EQ(shadow_page_fault(&fx.v, 0x2008, GACC_WRITE, false, &f),
			 SHADOW_EMULATE_WRITE);
		CHECK_EQ(f.gpa, 0x4008);
		/* Like clear_bit(_PAGE_RW): a 1-byte store into the PTE. */
		guest_store(&fx.mmu, 0x4008, &clear_w, 1);
	}
	CHECK_EQ(fx.mmu.stats.pages_zapped, 0);
	CHECK(fx.mmu.stats.sptes_updated >= 1);
	CHECK(compare_access(&fx.v, 0x1000, GACC_USER | GACC_WRITE, false));	/* now #PF */
	CHECK(compare_access(&fx.v, 0x1000, GACC_USER, false));
	/* A store crossing two PTEs: the upper half of one, the lower half of the next. */
	{
		u64 pair[2] = { 0xb000 | PTE_P | PTE_U | PTE_A, 0xc000 | PTE_P | PTE_W | PTE_A };
		u8 bytes[16];

		memcpy(bytes, pair, 16);
		guest_store(&fx.mmu, 0x4008, bytes, 4);
		guest_store(&fx.mmu, 0x4008 + 4, bytes + 4, 8);	/* crosses into 0x4010 */
		guest_store(&fx.mmu, 0x4010 + 4, bytes + 12, 4);
	}
	CHECK_EQ(shadow_audit(&fx.mmu), 0);
	CHECK(compare_access(&fx.v, 0x1000, GACC_USER, false));
	CHECK(compare_access(&fx.v, 0x2000, 0, false));
	CHECK_EQ(fx.mmu.stats.pages_zapped, 0);
	teardown();
}

TEST(zeroing_a_table_drops_its_shadow)
{
	static u8 zero[4096];

	static u64 table[512];

	long_mode_setup(64);
	CHECK(compare_access(&fx.v, 0x1000, 0, false));
	CHECK(shadow_gfn_is_write_protected(&fx.mmu, 4));
	/* A whole-page store that is not zero is an update in place. */
	memcpy(table, ram_shadow + 0x4000, 4096);
	table[1] = 0xc000 | PTE_P | PTE_A;
	table[7] = 0xd000 | PTE_P | PTE_W | PTE_A | PTE_D;
	guest_store(&fx.mmu, 0x4000, table, 4096);
	CHECK_EQ(fx.mmu.stats.pages_zapped, 0);
	CHECK(compare_access(&fx.v, 0x1000, 0, false));
	CHECK(compare_access(&fx.v, 0x7000, GACC_WRITE, false));
	CHECK_EQ(shadow_audit(&fx.mmu), 0);
	shadow_guest_write(&fx.mmu, 0x4000, zero, 4096);
	memset(ram_ref + 0x4000, 0, 4096);
	CHECK(!shadow_gfn_is_write_protected(&fx.mmu, 4));
	CHECK_EQ(fx.mmu.stats.pages_zapped, 1);
	CHECK_EQ(fx.mmu.stats.pages_in_use[1], 0);
	CHECK(th.flushes[SHADOW_FLUSH_GUEST] >= 1);
	CHECK(compare_access(&fx.v, 0x1000, 0, false));
	CHECK_EQ(shadow_audit(&fx.mmu), 0);
	teardown();
}

TEST(roots_reused_and_flushes)
{
	long_mode_setup(64);
	/* A second address space at PML4 frame 5 sharing the PDPT. */
	store64(&fx.mmu, 0x5000, 0x2000 | PTE_P | PTE_W | PTE_U);
	CHECK(compare_access(&fx.v, 0x1000, 0, false));
	CHECK_EQ(shadow_set_cr3(&fx.v, 0x5000), SHADOW_CR_OK);
	CHECK(compare_access(&fx.v, 0x1000, 0, false));
	CHECK_EQ(fx.mmu.stats.pages_in_use[3], 2);	/* PDPT shared; + paging-off root */
	CHECK_EQ(shadow_set_cr3(&fx.v, 0x1000), SHADOW_CR_OK);
	CHECK(fx.mmu.stats.roots_reused >= 1);
	CHECK_EQ(th.flushes[SHADOW_FLUSH_VCPU], 4);	/* CR3, mode, 2 CR3 loads without PGE */
	CHECK_EQ(shadow_set_mode(&fx.v, CR0_PG | CR0_WP, CR4_PAE | CR4_PGE,
				 EFER_LMA | EFER_NXE), SHADOW_CR_OK);
	CHECK_EQ(shadow_set_cr3(&fx.v, 0x5000), SHADOW_CR_OK);
	CHECK_EQ(th.flushes[SHADOW_FLUSH_NONGLOBAL], 1);	/* globals survive MOV CR3 */
	shadow_invlpg(&fx.v, 0x1000);
	CHECK_EQ(th.flushes[SHADOW_FLUSH_GVA], 1);
	CHECK_EQ(th.last_gva, 0x1000);
	teardown();
}

TEST(cr0_wp_clear_supervisor_write)
{
	long_mode_setup(64);
	store64(&fx.mmu, 0x4000 + 24, 0xb000 | PTE_P | PTE_U);	/* user, read-only */
	CHECK_EQ(shadow_set_mode(&fx.v, CR0_PG, CR4_PAE | CR4_SMEP, EFER_LMA | EFER_NXE),
		 SHADOW_CR_OK);
	CHECK(compare_access(&fx.v, 0x3000, GACC_WRITE, false));	/* permitted */
	CHECK(compare_access(&fx.v, 0x3000, GACC_FETCH, false));	/* SMEP still applies */
	CHECK(compare_access(&fx.v, 0x3000, GACC_USER | GACC_WRITE, false));
	CHECK(compare_access(&fx.v, 0x3000, GACC_USER, false));
	CHECK(compare_access(&fx.v, 0x3000, GACC_WRITE, false));
	CHECK_EQ(shadow_audit(&fx.mmu), 0);
	/* With SMAP the alias would hide SMAP faults: emulate instead. */
	CHECK_EQ(shadow_set_mode(&fx.v, CR0_PG, CR4_PAE | CR4_SMAP, EFER_LMA | EFER_NXE),
		 SHADOW_CR_OK);
	CHECK(compare_access(&fx.v, 0x3000, GACC_WRITE, true));
	CHECK(compare_access(&fx.v, 0x3000, GACC_WRITE, false));
	CHECK(compare_access(&fx.v, 0x3000, GACC_IMPLICIT, true));
	teardown();
}

/*
 * Every change of CR0.WP, CR4.SMEP, CR4.SMAP and EFER.NXE, one bit at a
 * time (Gray code) and in random jumps, with every access kind after each:
 * the shadow must answer as the reference MMU does. Write aliases made
 * under CR0.WP=0 must not serve a mode with other rules (kvm-unit-tests'
 * smap test: a user page written with WP=0 and SMAP=0 must fault on a
 * supervisor read once SMAP is set).
 */
TEST(control_bit_changes_rederive)
{
	static const u64 gvas[] = { 0x1000, 0x3000, 0x5000, 0x6000, 0x7000 };
	u64 rng = 0x5eed;

	long_mode_setup(64);
	store64(&fx.mmu, 0x4000 + 24, 0xb000 | PTE_P | PTE_U);		/* user, read-only */
	store64(&fx.mmu, 0x4000 + 40, 0xc000 | PTE_P);			/* supervisor, RO */
	store64(&fx.mmu, 0x4000 + 48, 0xd000 | PTE_P | PTE_W | PTE_U | PTE_NX);
	store64(&fx.mmu, 0x4000 + 56, 0xe000 | PTE_P | PTE_W | PTE_NX);	/* supervisor */
	for (int step = 0; step < 96; step++) {
		unsigned bits = step < 32 ? (unsigned)(step ^ (step >> 1)) & 15
					  : (unsigned)ref_rand(&rng) & 15;
		u64 cr0 = CR0_PG | (bits & 1 ? CR0_WP : 0);
		u64 cr4 = CR4_PAE | (bits & 2 ? CR4_SMEP : 0) | (bits & 4 ? CR4_SMAP : 0);
		u64 efer = EFER_LMA | (bits & 8 ? EFER_NXE : 0);

		CHECK_EQ(shadow_set_mode(&fx.v, cr0, cr4, efer), SHADOW_CR_OK);
		for (unsigned g = 0; g < ARRAY_SIZE(gvas); g++)
			for (unsigned k = 0; k < ARRAY_SIZE(access_kinds); k++)
				for (int ac = 0; ac < 2; ac++)
					if (!compare_access(&fx.v, gvas[g], access_kinds[k], ac)) {
						fprintf(stderr, "  step %d\n", step);
						goto out;
					}
		CHECK_EQ(shadow_audit(&fx.mmu), 0);
	}
out:
	teardown();
}

TEST(legacy_32bit_quadrants_and_4m_pages)
{
	host_setup_ram(64, RAM_MAX_PAGES);
	shadow_init(&fx.mmu, &th.host, 36);
	CHECK(shadow_vcpu_init(&fx.v, &fx.mmu));
	/* PD at frame 1: PDE 0x300 (gva 0xc0000000) -> PT frame 2; PDE 0x301 4 MiB at 0. */
	store32(&fx.mmu, 0x1000 + 4 * 0x300, 0x2000 | PTE_P | PTE_W);
	store32(&fx.mmu, 0x1000 + 4 * 0x301, 0x0 | PTE_P | PTE_W | PTE_PS | PTE_U);
	store32(&fx.mmu, 0x2000 + 4 * 0x201, 0x7000 | PTE_P | PTE_W);	/* 2nd half of PT */
	CHECK_EQ(shadow_set_mode(&fx.v, CR0_PG | CR0_WP, CR4_PSE, 0), SHADOW_CR_OK);
	CHECK_EQ(shadow_set_cr3(&fx.v, 0x1000), SHADOW_CR_OK);
	CHECK(compare_access(&fx.v, 0xc0201abc, GACC_WRITE, false));
	CHECK(compare_access(&fx.v, 0xc0401abc, GACC_USER | GACC_WRITE, false));
	CHECK(compare_access(&fx.v, 0xc060a000, GACC_USER | GACC_FETCH, false));
	CHECK(compare_access(&fx.v, 0xc0001000, 0, false));	/* not present */
	CHECK(compare_access(&fx.v, 0x00001000, 0, false));
	/* Rewrite the 4 MiB PDE to a read-only page at 4 MiB (frames beyond RAM). */
	store32(&fx.mmu, 0x1000 + 4 * 0x301, 0x400000 | PTE_P | PTE_PS | PTE_U | PTE_A);
	CHECK(compare_access(&fx.v, 0xc0401abc, GACC_USER, false));
	store32(&fx.mmu, 0x1000 + 4 * 0x301, 0x0 | PTE_P | PTE_PS | PTE_U | PTE_A);
	CHECK(compare_access(&fx.v, 0xc0405abc, GACC_USER | GACC_WRITE, false));
	CHECK(compare_access(&fx.v, 0xc0405abc, GACC_USER, false));
	/* The second 2 MiB half of the 4 MiB page (frames 0x200 on). */
	CHECK(compare_access(&fx.v, 0xc0601abc, GACC_USER, false));
	CHECK(compare_access(&fx.v, 0xc0405abc, GACC_USER, false));
	CHECK_EQ(shadow_audit(&fx.mmu), 0);
	CHECK_EQ(fx.mmu.stats.pages_zapped, 0);
	teardown();
}

TEST(paging_off_and_pae)
{
	host_setup(64);
	shadow_init(&fx.mmu, &th.host, 36);
	CHECK(shadow_vcpu_init(&fx.v, &fx.mmu));
	CHECK(compare_access(&fx.v, 0x3123, GACC_WRITE | GACC_USER, false));
	CHECK(compare_access(&fx.v, 0x100000000ull + 0x3123, GACC_FETCH, false));
	CHECK(compare_access(&fx.v, 0x800000, 0, false));	/* not RAM */
	/* PAE: PDPT at 0x1020 (slot 1 of frame 1), PD frame 2, 2 MiB page at 0. */
	store64(&fx.mmu, 0x1020 + 8 * 3, 0x2000 | PTE_P);
	store64(&fx.mmu, 0x2000 + 8 * 0x1ff, 0x0 | PTE_P | PTE_W | PTE_PS | PTE_NX);
	CHECK_EQ(shadow_set_cr3(&fx.v, 0x1020), SHADOW_CR_OK);
	CHECK_EQ(shadow_set_mode(&fx.v, CR0_PG | CR0_WP, CR4_PAE, EFER_NXE), SHADOW_CR_OK);
	CHECK(compare_access(&fx.v, 0xffe05123, GACC_WRITE, false));
	CHECK(compare_access(&fx.v, 0xffe05123, GACC_FETCH, false));
	/* PDPTE registers are loaded at MOV CR3, not on each walk. */
	store64(&fx.mmu, 0x1020 + 8 * 3, 0);
	CHECK(compare_access(&fx.v, 0xffe06000, GACC_WRITE, false));
	CHECK_EQ(shadow_set_cr3(&fx.v, 0x1020), SHADOW_CR_OK);
	CHECK(compare_access(&fx.v, 0xffe06000, GACC_WRITE, false));	/* now #PF */
	store64(&fx.mmu, 0x1020, PTE_P | PTE_W);	/* reserved bit in a PDPTE */
	CHECK_EQ(shadow_set_cr3(&fx.v, 0x1020), SHADOW_CR_GP);
	CHECK_EQ(shadow_audit(&fx.mmu), 0);
	teardown();
}

TEST(out_of_memory_zaps_all)
{
	long_mode_setup(12);	/* 2 roots + 3 levels (2 pages each) + bookkeeping pages */
	for (u64 gva = 0; gva < 0x4000; gva += 0x1000)
		compare_access(&fx.v, gva, 0, false);
	/* Other rights above: shadows of their own, which do not fit. */
	store64(&fx.mmu, 0x1000 + 8 * 1, 0x2000 | PTE_P | PTE_U);
	CHECK(compare_access(&fx.v, 0x8000001000ull, 0, false));
	CHECK(fx.mmu.stats.zap_all >= 1);
	CHECK_EQ(shadow_audit(&fx.mmu), 0);
	teardown();
}

TEST(audit_catches_corruption)
{
	long_mode_setup(64);
	CHECK(compare_access(&fx.v, 0x2000, 0, false));
	CHECK_EQ(shadow_audit(&fx.mmu), 0);
	/* Make the leaf that maps the write-protected page table writable. */
	for (struct shadow_page *sp = fx.mmu.oldest; sp; sp = sp->newer)
		if (sp->role.level == 1)
			sp->spt[2] |= PTE_W;
	CHECK(shadow_audit(&fx.mmu) > 0);
	teardown();
}

TEST(accessed_hook)
{
	long_mode_setup(64);
	CHECK(compare_access(&fx.v, 0x1000, 0, false));
	for (struct shadow_page *sp = fx.mmu.oldest; sp; sp = sp->newer) {
		if (sp->role.pae_root)	/* the paging-off root was never used */
			continue;
		/* a fault walked through it */
		CHECK(shadow_page_test_and_clear_accessed(&fx.mmu, sp));
		CHECK(!shadow_page_test_and_clear_accessed(&fx.mmu, sp));
	}
	CHECK(compare_access(&fx.v, 0x1000, 0, false));	/* the simulated CPU sets spte A */
	for (struct shadow_page *sp = fx.mmu.oldest; sp; sp = sp->newer)
		if (sp->role.level < 4 && !sp->role.pae_root)
			CHECK(shadow_page_test_and_clear_accessed(&fx.mmu, sp));
	teardown();
}

/* ---- randomized differential test -------------------------------------- */

/* An entry that usually lets a walk go on: translations succeed often enough. */
static u64 benign_entry(u64 *rng)
{
	u64 r = ref_rand(rng);
	u64 e = (ref_rand(rng) % (RAM_PAGES + 1)) << 12;

	if (r % 16)
		e |= PTE_P;
	if ((r >> 4) % 4)
		e |= PTE_W;
	if ((r >> 6) % 4)
		e |= PTE_U;
	if ((r >> 8) % 4)
		e |= PTE_A;
	e |= (r >> 10) & (PTE_D | PTE_G | PTE_PWT);
	if ((r >> 16) % 8 == 0)
		e |= PTE_NX;
	if (big_ram && (r >> 28) % 8 == 0)	/* a table at 2 MiB */
		e = (e & ~PTE_ADDR_MASK52) | BIG_BASE | ((r >> 36) % BIG_TABLES) << 12;
	if ((r >> 20) % 8 == 0) {
		e = (e & ~0x1ff000ull) | PTE_PS;	/* a large page at frame 0 */
		if (big_ram && (r >> 40) % 2)	/* ...or at 2 MiB, where few tables live */
			e = (e & ~PTE_ADDR_MASK52) | BIG_BASE;
	}
	if ((r >> 24) % 64 == 0)
		e |= 1ull << (12 + (r >> 32) % 52);
	return e;
}

static void random_ram(u64 *rng)
{
	for (u64 i = 0; i < RAM_PAGES * 512; i++) {
		u64 e = (i / 512) % 2 ? ref_random_entry(rng, RAM_PAGES) : benign_entry(rng);

		memcpy(ram_shadow + i * 8, &e, 8);
	}
	for (u64 i = 0; big_ram && i < BIG_TABLES * 512; i++) {
		u64 e = benign_entry(rng);

		memcpy(ram_shadow + BIG_BASE + i * 8, &e, 8);
	}
	memcpy(ram_ref, ram_shadow, sizeof(ram_ref));
}

/* A random guest store: PTE-like values or noise, 1..8 bytes or bigger. */
static void random_store(struct shadow_mmu *mmu, u64 *rng)
{
	static u8 buf[4096];
	u64 r = ref_rand(rng);
	u64 gpa = ref_rand(rng) % (RAM_PAGES * 4096);
	u32 len;

	if (r % 64 == 0) {
		len = 4096;
		gpa &= ~0xfffull;
		if (r & 64) {
			memset(buf, 0, len);
		} else {
			for (u32 i = 0; i < len; i += 8) {
				u64 e = benign_entry(rng);

				memcpy(buf + i, &e, 8);
			}
		}
	} else {
		len = r % 8 == 0 ? 9 + (r >> 8) % 56 : 1 + (r >> 8) % 8;
		for (u32 i = 0; i < len; i += 8) {
			u64 e = (r >> 16) % 4 ? benign_entry(rng) : ref_rand(rng);

			memcpy(buf + i, &e, len - i < 8 ? len - i : 8);
		}
		if (gpa + len > RAM_PAGES * 4096)
			gpa = RAM_PAGES * 4096 - len;
	}
	if (big_ram && (r >> 40) % 4 == 0)	/* the tables at 2 MiB */
		gpa = BIG_BASE + gpa % (BIG_TABLES * 4096 - len + 1);
	guest_store(mmu, gpa, buf, len);
}

static void random_mode(struct shadow_vcpu *v, u64 *rng)
{
	u64 r = ref_rand(rng);
	u64 cr0 = CR0_PG | (r & 1 ? CR0_WP : 0);
	u64 cr4 = (r & 2 ? CR4_PSE : 0) | (r & 4 ? CR4_PGE : 0) | (r & 8 ? CR4_SMEP : 0) |
		  (r & 16 ? CR4_SMAP : 0);
	u64 efer = r & 32 ? EFER_NXE : 0;

	if ((r >> 8) % 8 == 0)
		cr0 &= ~CR0_PG;
	else if ((r >> 8) % 8 < 4)
		cr4 |= CR4_PAE, efer |= EFER_LMA;
	else if ((r >> 8) % 8 < 6)
		cr4 |= CR4_PAE;
	shadow_set_mode(v, cr0, cr4, efer);	/* #GP (bad PDPTEs) keeps the old mode */
}

static void random_cr3(struct shadow_vcpu *v, u64 *rng)
{
	u64 r = ref_rand(rng);
	u64 cr3 = (r % RAM_PAGES) << 12 | ((r >> 8) & 0x7f) << 5;

	if (gwalk_mode(&v->ctx) == GWALK_MODE_PAE && (r >> 16) % 4) {
		/* Mostly give the guest a valid PDPT there first. */
		for (int i = 0; i < 4; i++) {
			u64 e = (ref_rand(rng) % (RAM_PAGES + 1)) << 12 |
				(ref_rand(rng) % 4 ? PTE_P : 0);

			store64(v->mmu, (cr3 & 0xfffe0) + 8 * i, e);
		}
	}
	shadow_set_cr3(v, cr3);
}

/* Optimisation switches for a differential run: every combination must be exact. */
#define OPT_FASTPATH 1u
#define OPT_FASTEMUL 2u
#define OPT_PREFETCH 4u
#define OPT_UNSYNC 8u
#define OPT_LARGEPAGES 16u
#define OPT_ALL (OPT_FASTPATH | OPT_FASTEMUL | OPT_PREFETCH | OPT_UNSYNC | OPT_LARGEPAGES)
#define OPT_BIG_RAM 32u	/* not a switch: 4 MiB of RAM with tables at 2 MiB (big_ram) */

static void set_options(struct shadow_mmu *mmu, unsigned opts)
{
	mmu->opt.fastpath = opts & OPT_FASTPATH;
	mmu->opt.fastemul = opts & OPT_FASTEMUL;
	mmu->opt.prefetch = opts & OPT_PREFETCH;
	mmu->opt.unsync = opts & OPT_UNSYNC;
	mmu->opt.largepages = opts & OPT_LARGEPAGES;
}

static void run_differential(u64 seed, unsigned budget, int steps, unsigned opts)
{
	u64 rng = seed;
	int checked = 0, faults_seen = 0;

	big_ram = opts & OPT_BIG_RAM;
	host_setup_ram(budget, big_ram ? RAM_MAX_PAGES : RAM_PAGES);
	random_ram(&rng);
	shadow_init(&fx.mmu, &th.host, (ref_rand(&rng) & 1) ? 36 : 40);
	set_options(&fx.mmu, opts);
	CHECK(shadow_vcpu_init(&fx.v, &fx.mmu));
	for (int step = 0; step < steps; step++) {
		u64 r = ref_rand(&rng);

		switch (r % 16) {
		case 0:
			random_mode(&fx.v, &rng);
			break;
		case 1:
		case 2:
			random_cr3(&fx.v, &rng);
			break;
		case 3:
			shadow_invlpg(&fx.v, ref_rand(&rng));
			break;
		default:
			random_store(&fx.mmu, &rng);
			/*
			 * Out-of-sync tables follow the guest's writes at its next
			 * invalidation (until then a CPU may use stale translations
			 * too): this guest invalidates after every store, or not
			 * at all, and then no table may go out of sync.
			 */
			if (opts & OPT_UNSYNC)
				shadow_invpcid(&fx.v, 2, 0);
			break;
		}
		for (int k = 0; k < 6; k++) {
			u64 gva = ref_rand(&rng);
			u32 access = access_kinds[ref_rand(&rng) % ARRAY_SIZE(access_kinds)];

			if (gva & 1)
				gva = (u64)((s64)(gva << 16) >> 16);
			if (gva & 2)	/* revisit a small set of addresses: warm sptes */
				gva &= 0xc060f000ull | 0xffff800000000000ull;
			if (!compare_access(&fx.v, gva, access, ref_rand(&rng) & 1)) {
				fprintf(stderr, "  seed %#llx step %d\n", (unsigned long long)seed,
					step);
				goto out;
			}
			checked++;
		}
		if (step % 32 == 0 && shadow_audit(&fx.mmu)) {
			fprintf(stderr, "  audit failed: seed %#llx step %d\n",
				(unsigned long long)seed, step);
			CHECK(!"audit");
			goto out;
		}
	}
	faults_seen = (int)fx.mmu.stats.faults;
	CHECK(checked > steps);
	CHECK(faults_seen > steps / 8);
	CHECK(fx.mmu.stats.faults_fixed > 0 && fx.mmu.stats.faults_injected > 0);
	CHECK(fx.mmu.stats.sptes_updated > 0);
	CHECK(cached_translations > 0);
	CHECK(!(opts & OPT_PREFETCH) || fx.mmu.stats.prefetched > 0);
	CHECK(!(opts & OPT_UNSYNC) || fx.mmu.stats.resyncs > 0);
	CHECK((opts & OPT_UNSYNC) || fx.mmu.stats.unsynced == 0);
	/* 2 MiB sptes only with the switch on, and only where RAM has room for one. */
	if ((opts & OPT_LARGEPAGES) && big_ram)
		CHECK(fx.mmu.stats.large_mapped > 0);
	else
		CHECK_EQ(fx.mmu.stats.large_mapped, 0);
out:
	big_ram = false;
	teardown();
}

TEST(random_differential_roomy)
{
	for (u64 seed = 1; seed <= 16; seed++)
		run_differential(seed * 0x9e3779b97f4a7c15ull, 900, 3000, OPT_ALL);
	/* Each switch off alone, and all off. */
	for (unsigned off = 0; off <= OPT_ALL; off++)
		run_differential((off + 17) * 0x9e3779b97f4a7c15ull, 900, 3000, OPT_ALL & ~off);
}

/* 2 MiB of RAM without tables beside the tables: 2 MiB sptes made and split. */
TEST(random_differential_large_pages)
{
	u64 split = 0;

	for (u64 seed = 1; seed <= 12; seed++) {
		run_differential(seed * 0xd6e8feb86659fd93ull, 900, 3000,
				 OPT_BIG_RAM | (seed % 4 ? OPT_ALL : OPT_ALL & ~OPT_LARGEPAGES));
		split += fx.mmu.stats.large_split;
	}
	CHECK(split > 0);
}

TEST(random_differential_tight_memory)
{
	for (u64 seed = 1; seed <= 8; seed++)
		run_differential(seed * 0xc2b2ae3d27d4eb4full, 40, 2000, seed & 1 ? OPT_ALL : 0);
	CHECK(fx.mmu.stats.zap_all > 0);
}

UNIT_MAIN()
