/*
 * Tests of the guest page-table walker (shadow/gwalk.c): known answers from
 * the SDM, an exhaustive rights matrix against the reference MMU, A/D side
 * effects, large pages, reserved bits, and a randomized differential test.
 */
#include <string.h>

#include "unit.h"
#include "refmmu.h"
#include "shadow/gwalk.h"

#define NPAGES 64

static u8 ram_bytes[NPAGES * 4096] __attribute__((aligned(4096)));
static struct ref_ram ram;

/* Builds guest page tables; tables are taken from frame 1 upward. */
struct builder {
	struct gwalk_ctx ctx;
	u64 next_gfn;
};

static u64 rd(u64 gpa, int size)
{
	return size == 4 ? *(u32 *)(ram_bytes + gpa) : *(u64 *)(ram_bytes + gpa);
}

static void wr(u64 gpa, int size, u64 val)
{
	if (size == 4)
		*(u32 *)(ram_bytes + gpa) = (u32)val;
	else
		*(u64 *)(ram_bytes + gpa) = val;
}

static void builder_init(struct builder *b, enum gwalk_mode mode)
{
	memset(ram_bytes, 0, sizeof(ram_bytes));
	ref_ram_init(&ram, ram_bytes, NPAGES);
	memset(b, 0, sizeof(*b));
	b->ctx.maxphyaddr = 40;
	b->ctx.cr0 = mode == GWALK_MODE_OFF ? 0 : CR0_PG | CR0_WP;
	if (mode == GWALK_MODE_32BIT)
		b->ctx.cr4 = CR4_PSE;
	if (mode == GWALK_MODE_PAE || mode == GWALK_MODE_LONG) {
		b->ctx.cr4 = CR4_PAE;
		b->ctx.efer = EFER_NXE;
	}
	if (mode == GWALK_MODE_LONG)
		b->ctx.efer |= EFER_LMA;
	b->ctx.cr3 = 1 << 12;
	b->next_gfn = 2;
}

static u64 entry_gpa(struct builder *b, u64 table, int level, u64 gva)
{
	enum gwalk_mode mode = gwalk_mode(&b->ctx);
	int bits = mode == GWALK_MODE_32BIT ? 10 : 9;
	u64 idx = (gva >> gwalk_level_shift(mode, level)) & ((1u << bits) - 1);

	return table + idx * gwalk_entry_size(mode);
}

/*
 * Map gva to gpa with a leaf at leaf_level. Upper entries get upper_flags
 * (P added); the leaf gets leaf_flags (P not added, PS added for large).
 */
static void map(struct builder *b, u64 gva, u64 gpa, int leaf_level, u64 leaf_flags,
		u64 upper_flags)
{
	enum gwalk_mode mode = gwalk_mode(&b->ctx);
	int size = gwalk_entry_size(mode);
	u64 table = b->ctx.cr3 & ~0xfffull;

	for (int level = gwalk_top_level(mode); level > leaf_level; level--) {
		u64 e = entry_gpa(b, table, level, gva);
		u64 val = rd(e, size);

		if (!(val & PTE_P)) {
			val = (b->next_gfn++ << 12) | PTE_P;
			if (!(mode == GWALK_MODE_PAE && level == 3))
				val |= upper_flags;
			wr(e, size, val);
		}
		table = val & 0xffffffffff000ull;
	}
	if (leaf_level > 1) {
		leaf_flags |= PTE_PS;
		if (mode == GWALK_MODE_32BIT)	/* PSE-36 */
			gpa = (gpa & 0xffc00000) | ((gpa >> 32) << 13);
	}
	wr(entry_gpa(b, table, leaf_level, gva), size, gpa | leaf_flags);
	if (mode == GWALK_MODE_PAE)
		CHECK(gwalk_load_pdptes(&b->ctx, &ram.mem));
}

/* The entry at a level of the path to gva (after map()). */
static u64 path_entry_gpa(struct builder *b, u64 gva, int level)
{
	enum gwalk_mode mode = gwalk_mode(&b->ctx);
	int size = gwalk_entry_size(mode);
	u64 table = b->ctx.cr3 & ~0xfffull;

	for (int l = gwalk_top_level(mode); l > level; l--)
		table = rd(entry_gpa(b, table, l, gva), size) & 0xffffffffff000ull;
	return entry_gpa(b, table, level, gva);
}

static enum gwalk_status walk(struct builder *b, u64 gva, u32 access, struct gwalk_result *r)
{
	return gwalk(&b->ctx, &ram.mem, gva, access, r);
}

static const enum gwalk_mode paging_modes[] = { GWALK_MODE_32BIT, GWALK_MODE_PAE,
						GWALK_MODE_LONG };

TEST(paging_off_is_identity)
{
	struct builder b;
	struct gwalk_result r;

	builder_init(&b, GWALK_MODE_OFF);
	CHECK_EQ(walk(&b, 0x12345678, GACC_WRITE | GACC_USER, &r), GWALK_OK);
	CHECK_EQ(r.gpa, 0x12345678);
	CHECK(r.writable && r.user && !r.nx);
}

TEST(map_4k_every_mode)
{
	for (unsigned m = 0; m < ARRAY_SIZE(paging_modes); m++) {
		struct builder b;
		struct gwalk_result r;
		u64 gva = paging_modes[m] == GWALK_MODE_LONG ? 0xffff800012345678ull : 0xc0345678;

		builder_init(&b, paging_modes[m]);
		map(&b, gva, 0x30000, 1, PTE_P | PTE_W, PTE_W | PTE_U);
		CHECK_EQ(walk(&b, gva, 0, &r), GWALK_OK);
		CHECK_EQ(r.gpa, 0x30678);
		CHECK_EQ(r.page_size, 4096);
		CHECK(r.writable && !r.user);
		CHECK_EQ(r.last_level, 1);
		CHECK_EQ(r.top_level, gwalk_top_level(paging_modes[m]));
		CHECK_EQ(r.pte_gpa[1], path_entry_gpa(&b, gva, 1));
		CHECK_EQ(r.pte[1] & ~0xfffull, 0x30000);
	}
}

TEST(large_pages)
{
	struct builder b;
	struct gwalk_result r;

	builder_init(&b, GWALK_MODE_32BIT);
	map(&b, 0x80000000, 0x1234c00000ull, 2, PTE_P | PTE_W | PTE_PAT_LARGE, PTE_W);
	CHECK_EQ(walk(&b, 0x80123456, 0, &r), GWALK_OK);
	CHECK_EQ(r.gpa, 0x1234d23456ull);	/* PSE-36 high bits */
	CHECK_EQ(r.page_size, 4ull << 20);
	CHECK_EQ(r.pat_index, 4);
	b.ctx.cr4 &= ~CR4_PSE;	/* PS is then ignored: the PDE points at a table */
	CHECK_EQ(walk(&b, 0x80123456, 0, &r), GWALK_NOT_RAM);
	CHECK_EQ(r.gpa, (r.pte[2] & 0xfffff000) + 4 * 0x123);
	CHECK_EQ(r.last_level, 1);

	builder_init(&b, GWALK_MODE_PAE);
	map(&b, 0x40200000, 0x600000, 2, PTE_P | PTE_U, PTE_W | PTE_U);
	CHECK_EQ(walk(&b, 0x40212345, GACC_USER, &r), GWALK_OK);
	CHECK_EQ(r.gpa, 0x612345);
	CHECK_EQ(r.page_size, 2ull << 20);
	CHECK(r.user && !r.writable);

	builder_init(&b, GWALK_MODE_LONG);
	map(&b, 0x7f8040000000ull, 0x40000000, 3, PTE_P | PTE_W | PTE_G, PTE_W);
	map(&b, 0x7f8000200000ull, 0x200000, 2, PTE_P | PTE_W | PTE_G, PTE_W);
	CHECK_EQ(walk(&b, 0x7f8043456789ull, 0, &r), GWALK_OK);
	CHECK_EQ(r.gpa, 0x43456789);
	CHECK_EQ(r.page_size, 1ull << 30);
	CHECK(!r.global);	/* G counts only with CR4.PGE */
	b.ctx.cr4 |= CR4_PGE;
	CHECK_EQ(walk(&b, 0x7f80002fffffull, 0, &r), GWALK_OK);
	CHECK_EQ(r.gpa, 0x2fffff);
	CHECK_EQ(r.page_size, 2ull << 20);
	CHECK(r.global);
}

/* Hand-checked error codes from SDM 4.6/4.7. */
TEST(known_error_codes)
{
	struct builder b;
	struct gwalk_result r;
	const u64 ro_user = 0x400000, rw_sup = 0x401000, nx_page = 0x402000, absent = 0x403000;

	builder_init(&b, GWALK_MODE_LONG);
	map(&b, ro_user, 0x10000, 1, PTE_P | PTE_U, PTE_W | PTE_U);
	map(&b, rw_sup, 0x11000, 1, PTE_P | PTE_W, PTE_W | PTE_U);
	map(&b, nx_page, 0x12000, 1, PTE_P | PTE_U | PTE_NX, PTE_W | PTE_U);
	map(&b, absent, 0x13000, 1, 0, PTE_W | PTE_U);

	CHECK_EQ(walk(&b, ro_user, GACC_USER | GACC_WRITE, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_W | PFEC_U);
	CHECK_EQ(walk(&b, rw_sup, GACC_USER, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_U);
	CHECK_EQ(walk(&b, absent, GACC_WRITE, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_W);
	CHECK_EQ(walk(&b, nx_page, GACC_USER | GACC_FETCH, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_U | PFEC_I);
	CHECK_EQ(walk(&b, absent, GACC_FETCH, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_I);

	/* CR0.WP=0: the supervisor may write a read-only page. */
	CHECK_EQ(walk(&b, ro_user, GACC_WRITE, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_W);
	b.ctx.cr0 &= ~CR0_WP;
	CHECK_EQ(walk(&b, ro_user, GACC_WRITE, &r), GWALK_OK);

	/* SMAP: AC lifts it for explicit accesses only. */
	b.ctx.cr4 |= CR4_SMAP;
	CHECK_EQ(walk(&b, ro_user, 0, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P);
	b.ctx.rflags_ac = true;
	CHECK_EQ(walk(&b, ro_user, 0, &r), GWALK_OK);
	CHECK_EQ(walk(&b, ro_user, GACC_IMPLICIT, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P);
	CHECK_EQ(walk(&b, ro_user, GACC_IMPLICIT | GACC_USER, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P);	/* implicit: U/S=0 in the error code */
	CHECK_EQ(walk(&b, rw_sup, 0, &r), GWALK_OK);

	/* SMEP, and I/D reported without NXE when SMEP is on. */
	b.ctx.cr4 |= CR4_SMEP;
	b.ctx.efer &= ~EFER_NXE;
	map(&b, 0x404000, 0x14000, 1, PTE_P | PTE_U, PTE_W | PTE_U);
	CHECK_EQ(walk(&b, 0x404000, GACC_FETCH, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_I);
	CHECK_EQ(walk(&b, 0x404000, GACC_FETCH | GACC_USER, &r), GWALK_OK);
	/* XD with NXE=0 is a reserved bit. */
	CHECK_EQ(walk(&b, nx_page, 0, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_RSVD);

	/* 32-bit paging without SMEP: no I/D bit ever. */
	builder_init(&b, GWALK_MODE_32BIT);
	CHECK_EQ(walk(&b, 0x1000, GACC_FETCH | GACC_USER, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_U);
}

TEST(upper_level_rights_combine)
{
	struct builder b;
	struct gwalk_result r;

	builder_init(&b, GWALK_MODE_LONG);
	map(&b, 0x1000, 0x10000, 1, PTE_P | PTE_W | PTE_U, PTE_U);	/* upper W=0 */
	CHECK_EQ(walk(&b, 0x1000, GACC_USER | GACC_WRITE, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_W | PFEC_U);
	CHECK(!r.writable && r.user);
	wr(path_entry_gpa(&b, 0x1000, 3), 8, rd(path_entry_gpa(&b, 0x1000, 3), 8) | PTE_NX);
	CHECK_EQ(walk(&b, 0x1000, GACC_USER | GACC_FETCH, &r), GWALK_FAULT);
	CHECK(r.nx);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_U | PFEC_I);
}

TEST(accessed_dirty_bits)
{
	for (unsigned m = 0; m < ARRAY_SIZE(paging_modes); m++) {
		enum gwalk_mode mode = paging_modes[m];
		int size = gwalk_entry_size(mode), top = gwalk_top_level(mode);
		int first_mem = mode == GWALK_MODE_PAE ? 2 : top;	/* PDPTEs have no A */
		struct builder b;
		struct gwalk_result r;

		builder_init(&b, mode);
		map(&b, 0x1000, 0x10000, 1, PTE_P | PTE_U, PTE_W | PTE_U);
		map(&b, 0x2000, 0x11000, 1, 0, PTE_W | PTE_U);

		/* A read sets A on every level and no D. */
		CHECK_EQ(walk(&b, 0x1000, 0, &r), GWALK_OK);
		for (int l = first_mem; l >= 1; l--) {
			CHECK(rd(path_entry_gpa(&b, 0x1000, l), size) & PTE_A);
			CHECK(!(rd(path_entry_gpa(&b, 0x1000, l), size) & PTE_D));
			CHECK(r.pte[l] & PTE_A);
		}
		/* A refused write (read-only, WP=1) sets no D. */
		CHECK_EQ(walk(&b, 0x1000, GACC_WRITE | GACC_USER, &r), GWALK_FAULT);
		CHECK(!(rd(path_entry_gpa(&b, 0x1000, 1), size) & PTE_D));
		/* A permitted write sets D on the leaf only. */
		b.ctx.cr0 &= ~CR0_WP;
		CHECK_EQ(walk(&b, 0x1000, GACC_WRITE, &r), GWALK_OK);
		CHECK(rd(path_entry_gpa(&b, 0x1000, 1), size) & PTE_D);
		CHECK(r.pte[1] & PTE_D);
		CHECK(!(rd(path_entry_gpa(&b, 0x1000, 2), size) & PTE_D));

		/* A not-present leaf: upper levels get A (they were used), leaf not. */
		wr(path_entry_gpa(&b, 0x2000, 2), size,
		   rd(path_entry_gpa(&b, 0x2000, 2), size) & ~PTE_A);
		CHECK_EQ(walk(&b, 0x2000, GACC_WRITE, &r), GWALK_FAULT);
		CHECK(rd(path_entry_gpa(&b, 0x2000, 2), size) & PTE_A);
		CHECK_EQ(rd(path_entry_gpa(&b, 0x2000, 1), size), 0x11000);

		/*
		 * A protection fault: the levels above the leaf were used and get
		 * A; the leaf was not (the access did not happen): unchanged, as
		 * on Intel CPUs and as kvm-unit-tests' access test demands.
		 */
		map(&b, 0x3000, 0x12000, 1, PTE_P, PTE_W | PTE_U);
		for (int l = first_mem; l >= 2; l--)
			wr(path_entry_gpa(&b, 0x3000, l), size,
			   rd(path_entry_gpa(&b, 0x3000, l), size) & ~PTE_A);
		CHECK_EQ(walk(&b, 0x3000, GACC_USER | GACC_WRITE, &r), GWALK_FAULT);
		CHECK_EQ(rd(path_entry_gpa(&b, 0x3000, 1), size), 0x12000 | PTE_P);
		for (int l = first_mem; l >= 2; l--)
			CHECK(rd(path_entry_gpa(&b, 0x3000, l), size) & PTE_A);
		/* Refused by the upper levels' rights alone: the same. */
		map(&b, 0x40400000, 0x13000, 1, PTE_P | PTE_W | PTE_U, PTE_W);
		CHECK_EQ(walk(&b, 0x40400000, GACC_USER, &r), GWALK_FAULT);
		CHECK_EQ(rd(path_entry_gpa(&b, 0x40400000, 1), size),
			 0x13000 | PTE_P | PTE_W | PTE_U);
		/* The same page read by the supervisor: now the leaf gets A. */
		CHECK_EQ(walk(&b, 0x40400000, 0, &r), GWALK_OK);
		CHECK_EQ(rd(path_entry_gpa(&b, 0x40400000, 1), size),
			 0x13000 | PTE_P | PTE_W | PTE_U | PTE_A);
	}
}

TEST(large_page_dirty)
{
	struct builder b;
	struct gwalk_result r;

	builder_init(&b, GWALK_MODE_32BIT);
	map(&b, 0x400000, 0x800000, 2, PTE_P | PTE_W, 0);
	/* A refused user write leaves the large leaf alone: no A, no D. */
	CHECK_EQ(walk(&b, 0x400010, GACC_WRITE | GACC_USER, &r), GWALK_FAULT);
	CHECK_EQ(rd(path_entry_gpa(&b, 0x400000, 2), 4), 0x800000 | PTE_P | PTE_W | PTE_PS);
	CHECK_EQ(walk(&b, 0x400010, GACC_WRITE, &r), GWALK_OK);
	CHECK_EQ(rd(path_entry_gpa(&b, 0x400000, 2), 4), 0x800000 | PTE_P | PTE_W | PTE_PS |
							       PTE_A | PTE_D);
}

TEST(reserved_bits)
{
	struct builder b;
	struct gwalk_result r;

	/* 4-level: address bits above MAXPHYADDR, PS in a PML4E, 2 MiB bits 20:13. */
	builder_init(&b, GWALK_MODE_LONG);
	map(&b, 0x1000, 0x10000, 1, PTE_P, PTE_W);
	CHECK_EQ(walk(&b, 0x1000, 0, &r), GWALK_OK);
	wr(path_entry_gpa(&b, 0x1000, 1), 8, 0x10000 | PTE_P | BIT(45));
	CHECK_EQ(walk(&b, 0x1000, GACC_WRITE, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_W | PFEC_RSVD);
	b.ctx.maxphyaddr = 46;
	CHECK_EQ(walk(&b, 0x1000, 0, &r), GWALK_OK);
	CHECK_EQ(r.gpa, BIT(45) | 0x10000);
	/* bits 62:52 are ignored in 4-level paging */
	wr(path_entry_gpa(&b, 0x1000, 1), 8, 0x10000 | PTE_P | BIT(60));
	CHECK_EQ(walk(&b, 0x1000, 0, &r), GWALK_OK);
	wr(path_entry_gpa(&b, 0x1000, 4), 8, rd(path_entry_gpa(&b, 0x1000, 4), 8) | PTE_PS);
	CHECK_EQ(walk(&b, 0x1000, 0, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_RSVD);
	CHECK_EQ(r.last_level, 4);
	builder_init(&b, GWALK_MODE_LONG);
	map(&b, 0x200000, 0x400000 | BIT(13), 2, PTE_P, PTE_W);
	CHECK_EQ(walk(&b, 0x200000, 0, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_RSVD);
	CHECK(!(rd(path_entry_gpa(&b, 0x200000, 2), 8) & PTE_A));	/* stopping entry */
	CHECK(rd(path_entry_gpa(&b, 0x200000, 3), 8) & PTE_A);		/* used entry */

	/* PAE: bits 62:52 reserved; PDPTE reserved bits refused at load. */
	builder_init(&b, GWALK_MODE_PAE);
	map(&b, 0x1000, 0x10000, 1, PTE_P | BIT(52), PTE_W);
	CHECK_EQ(walk(&b, 0x1000, 0, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_RSVD);
	wr(path_entry_gpa(&b, 0x1000, 1), 8, 0x10000 | PTE_P | BIT(62));
	CHECK_EQ(walk(&b, 0x1000, 0, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_RSVD);
	wr(0x1000, 8, rd(0x1000, 8) | PTE_W);
	CHECK(!gwalk_load_pdptes(&b.ctx, &ram.mem));
	b.ctx.pdpte[0] |= PTE_W;	/* if loaded anyway, the walk reports it */
	CHECK_EQ(walk(&b, 0x1000, 0, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_RSVD);

	/* 32-bit 4 MiB: bit 21, and PSE-36 bits above MAXPHYADDR. */
	builder_init(&b, GWALK_MODE_32BIT);
	b.ctx.maxphyaddr = 36;
	map(&b, 0x400000, 0x800000000ull, 2, PTE_P, 0);	/* bit 35: fits */
	CHECK_EQ(walk(&b, 0x400000, 0, &r), GWALK_OK);
	map(&b, 0x800000, 0x1000000000ull, 2, PTE_P, 0);	/* bit 36: reserved */
	CHECK_EQ(walk(&b, 0x800000, 0, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_RSVD);
	map(&b, 0xc00000, 0x400000, 2, PTE_P, 0);
	wr(path_entry_gpa(&b, 0xc00000, 2), 4, rd(path_entry_gpa(&b, 0xc00000, 2), 4) | BIT(21));
	CHECK_EQ(walk(&b, 0xc00000, 0, &r), GWALK_FAULT);
	CHECK_EQ(r.pfec, PFEC_P | PFEC_RSVD);
}

TEST(not_ram_and_noncanonical)
{
	struct builder b;
	struct gwalk_result r;

	builder_init(&b, GWALK_MODE_LONG);
	map(&b, 0x1000, 0x10000, 1, PTE_P, PTE_W);
	wr(path_entry_gpa(&b, 0x1000, 2), 8, (100ull << 12) | PTE_P);	/* PT not in RAM */
	CHECK_EQ(walk(&b, 0x1000, 0, &r), GWALK_NOT_RAM);
	CHECK_EQ(r.gpa, (100ull << 12) + 8);
	CHECK_EQ(walk(&b, 0x0000800000000000ull, 0, &r), GWALK_NONCANONICAL);
	/* 32-bit modes ignore the upper half of the address */
	builder_init(&b, GWALK_MODE_PAE);
	map(&b, 0x1000, 0x10000, 1, PTE_P, PTE_W);
	CHECK_EQ(walk(&b, 0xabcd000000001000ull, 0, &r), GWALK_OK);
	CHECK_EQ(r.gpa, 0x10000);
}

static bool same_result(const struct gwalk_result *g, const struct ref_result *f)
{
	if (g->status != f->status)
		return false;
	if (g->status == GWALK_FAULT)
		return g->pfec == f->pfec;
	if (g->status == GWALK_NOT_RAM)
		return g->gpa == f->gpa;
	if (g->status == GWALK_OK)
		return g->gpa == f->gpa && g->writable == f->writable && g->user == f->user &&
		       g->nx == f->nx && g->global == f->global && g->page_size == f->page_size &&
		       g->pat_index == f->pat_index;
	return true;
}

static const u32 access_kinds[] = {
	0, GACC_WRITE, GACC_FETCH,
	GACC_USER, GACC_USER | GACC_WRITE, GACC_USER | GACC_FETCH,
	GACC_IMPLICIT, GACC_IMPLICIT | GACC_WRITE,
};

/*
 * Every combination of leaf P/W/U/NX, upper-level W/U/NX, CR0.WP,
 * CR4.SMEP/SMAP, RFLAGS.AC, EFER.NXE and access kind, in every mode:
 * walker and reference agree on outcome, error code and A/D effects.
 */
TEST(rights_matrix_vs_reference)
{
	static u8 copy[NPAGES * 4096];
	int faults = 0, oks = 0;

	for (unsigned m = 0; m < ARRAY_SIZE(paging_modes); m++) {
		for (unsigned combo = 0; combo < (1u << 12); combo++) {
			struct builder b;
			u64 leaf = (combo & 1 ? PTE_P : 0) | (combo & 2 ? PTE_W : 0) |
				   (combo & 4 ? PTE_U : 0) | (combo & 8 ? PTE_NX : 0);
			u64 upper = (combo & 16 ? PTE_W : 0) | (combo & 32 ? PTE_U : 0) |
				    (combo & 64 ? PTE_NX : 0);

			if (paging_modes[m] == GWALK_MODE_32BIT && (combo & (8 | 64)))
				continue;	/* no XD bit in 32-bit entries */
			builder_init(&b, paging_modes[m]);
			if (combo & 128)
				b.ctx.cr0 &= ~CR0_WP;
			b.ctx.cr4 |= (combo & 256 ? CR4_SMEP : 0) | (combo & 512 ? CR4_SMAP : 0);
			b.ctx.rflags_ac = combo & 1024;
			if ((combo & 2048) && paging_modes[m] != GWALK_MODE_32BIT)
				b.ctx.efer &= ~EFER_NXE;
			map(&b, 0x5000, 0x20000, 1, leaf, upper);
			memcpy(copy, ram_bytes, sizeof(copy));
			for (unsigned a = 0; a < ARRAY_SIZE(access_kinds); a++) {
				struct gwalk_result g;
				struct ref_result f;
				struct ref_ram ref_ram;

				ref_ram_init(&ref_ram, copy, NPAGES);
				gwalk(&b.ctx, &ram.mem, 0x5abc, access_kinds[a], &g);
				ref_translate(&b.ctx, &ref_ram.mem, 0x5abc, access_kinds[a], &f);
				if (!same_result(&g, &f))
					fprintf(stderr, "  mode %d combo %#x access %#x: "
						"%d/%#x vs %d/%#x\n", paging_modes[m], combo,
						access_kinds[a], g.status, g.pfec, f.status,
						f.pfec);
				CHECK(same_result(&g, &f));
				CHECK(memcmp(copy, ram_bytes, sizeof(copy)) == 0);
				faults += g.status == GWALK_FAULT;
				oks += g.status == GWALK_OK;
			}
		}
	}
	CHECK(faults > 1000);
	CHECK(oks > 1000);
}

/*
 * Randomized differential test: random table contents (entries biased to
 * point into RAM), random contexts and accesses; the walker and the
 * reference run on separate copies of RAM that must stay identical.
 */
TEST(random_differential)
{
	static u8 copy[NPAGES * 4096];
	const u8 maxphys[] = { 36, 39, 40, 46, 52 };
	u64 rng = 0x9e3779b97f4a7c15ull;
	int outcome[4] = { 0 };
	const u64 pages = 12;	/* tables live in the first pages: dense walks */

	for (int round = 0; round < 400; round++) {
		struct gwalk_ctx ctx = { 0 };
		struct ref_ram ref_ram;
		u64 r = ref_rand(&rng);

		memset(ram_bytes, 0, sizeof(ram_bytes));
		ref_ram_init(&ram, ram_bytes, pages);
		for (u64 i = 0; i < pages * 512; i++) {
			u64 e = ref_random_entry(&rng, pages);

			memcpy(ram_bytes + i * 8, &e, 8);
		}
		memcpy(copy, ram_bytes, sizeof(copy));
		ref_ram_init(&ref_ram, copy, pages);

		ctx.cr0 = CR0_PG | (r & 1 ? CR0_WP : 0);
		ctx.cr4 = (r & 2 ? CR4_PSE : 0) | (r & 4 ? CR4_PGE : 0) | (r & 8 ? CR4_SMEP : 0) |
			  (r & 16 ? CR4_SMAP : 0);
		ctx.efer = r & 32 ? EFER_NXE : 0;
		ctx.rflags_ac = r & 64;
		ctx.maxphyaddr = maxphys[(r >> 8) % ARRAY_SIZE(maxphys)];
		ctx.cr3 = ((r >> 16) % pages) << 12 | (((r >> 24) & 0x7f) << 5);
		switch ((r >> 32) % 4) {
		case 0:
			ctx.cr0 &= ~CR0_PG;
			break;
		case 1:
			break;
		case 2:
			ctx.cr4 |= CR4_PAE;
			for (int i = 0; i < 4; i++) {
				memcpy(&ctx.pdpte[i], ram_bytes + (ctx.cr3 & 0xfffe0) + 8 * i, 8);
				/* mostly valid PDPTEs, as MOV CR3 would demand */
				if (ref_rand(&rng) % 8)
					ctx.pdpte[i] &= PTE_P | PTE_PWT | PTE_PCD | PTE_ADDR_MASK52;
			}
			break;
		case 3:
			ctx.cr4 |= CR4_PAE;
			ctx.efer |= EFER_LMA;
			break;
		}
		for (int i = 0; i < 200; i++) {
			u64 gva = ref_rand(&rng);
			u32 access = access_kinds[ref_rand(&rng) % ARRAY_SIZE(access_kinds)];
			struct gwalk_result g;
			struct ref_result f;

			ctx.rflags_ac = ref_rand(&rng) & 1;
			if (gva & 1)	/* mostly canonical */
				gva = (u64)((s64)(gva << 16) >> 16);
			gwalk(&ctx, &ram.mem, gva, access, &g);
			ref_translate(&ctx, &ref_ram.mem, gva, access, &f);
			if (!same_result(&g, &f))
				fprintf(stderr, "  round %d gva %#llx access %#x: %d/%#x/%#llx vs "
					"%d/%#x/%#llx\n", round, (unsigned long long)gva, access,
					g.status, g.pfec, (unsigned long long)g.gpa, f.status,
					f.pfec, (unsigned long long)f.gpa);
			CHECK(same_result(&g, &f));
			CHECK(memcmp(copy, ram_bytes, sizeof(copy)) == 0);
			outcome[g.status]++;
		}
	}
	/* The generator must exercise every outcome, or the test proves little. */
	CHECK(outcome[GWALK_OK] > 5000);
	CHECK(outcome[GWALK_FAULT] > 5000);
	CHECK(outcome[GWALK_NOT_RAM] > 500);
	CHECK(outcome[GWALK_NONCANONICAL] > 500);
}

UNIT_MAIN()
