/*
 * Paging as a guest OS uses it, to check the hypervisor's MMU (EPT, or shadow page tables
 * kept in sync by write-protecting guest tables): many address spaces, fork-like
 * copy-on-write from a #PF handler, remap/unmap/protect with INVLPG, page tables cleared
 * with REP STOS and edited with LOCK'ed read-modify-writes, accessed/dirty bits, large pages
 * and the exact #PF error code of every present/write/user/NX/SMEP/SMAP/CR0.WP combination.
 * Only what the SDM guarantees is checked. Each section prints "DIGEST: <section> 0x...", a
 * hash of what it observed, so runs under mmu=ept and mmu=shadow can be compared line by line.
 * Built as paging64 (4-level) from this file, paging32 and paging_pae from the wrappers
 * paging32.c and paging_pae.c, which pick PAGING_TEST_MODE.
 */
#include "paging.h"

#ifndef PAGING_TEST_MODE
#define PAGING_TEST_MODE PAGING_LONG
#endif

/* PAGE_SIZE is 64-bit; virtual addresses are unsigned long. */
#define PAGE ((unsigned long)PAGE_SIZE)
/* Mismatches printed in full per check; the rest are only counted. */
#define PRINTED_MISMATCHES 6

static unsigned long base;		/* paging_test_base() */
static u64 large;			/* bytes of a level-2 leaf: 4 MiB or 2 MiB */
static u32 digest;
static unsigned int mismatches;
static u32 rng_state = 0x2545f491;

/* Each section runs in an address space of its own; the test range starts empty in it. */
static unsigned long section_va(unsigned int slot)
{
	return base + slot * (unsigned long)large;
}

/* xorshift32: the same "random" sequence in every run, so digests compare. */
static u32 rng(void)
{
	rng_state ^= rng_state << 13;
	rng_state ^= rng_state >> 17;
	rng_state ^= rng_state << 5;
	return rng_state;
}

/* FNV-1a over the observations of one section. */
static void digest_begin(void)
{
	digest = 2166136261u;
	mismatches = 0;
}

static void digest_add(u64 v)
{
	for (int i = 0; i < 8; i++, v >>= 8) {
		digest ^= (u8)v;
		digest *= 16777619u;
	}
}

static void digest_end(const char *section)
{
	printf("DIGEST: %s 0x%08x\n", section, digest);
}

/* Counts a mismatch, printing the first few; true if `ok`. */
static bool expect(bool ok, const char *what, u64 got, u64 want)
{
	if (!ok && mismatches++ < PRINTED_MISMATCHES)
		printf("  mismatch: %s: got %#llx, want %#llx\n", what, got, want);
	return ok;
}

static void report_section(const char *what, unsigned int checks)
{
	report(!mismatches, "%s: %u checks, %u mismatches", what, checks, mismatches);
	mismatches = 0;
}

static unsigned long read_word(unsigned long va)
{
	return *(volatile unsigned long *)va;
}

static void write_word(unsigned long va, unsigned long v)
{
	*(volatile unsigned long *)va = v;
}

static void *leaf(unsigned long cr3, unsigned long va)
{
	return pte_lookup(cr3, va, LEVEL_PTE);
}

/* A probe expected to fault with `ec` at va; the error code goes into the digest. */
static bool expect_fault(unsigned long va, enum probe_access access, int cpl,
			 unsigned long ec, const char *what)
{
	struct probe_result r = probe(va, access, cpl, false, 0);

	digest_add(r.faulted ? r.error_code : 0xdead);
	return expect(r.faulted, what, 0, 1) &&
	       expect(r.error_code == ec, what, r.error_code, ec) &&
	       expect(r.cr2 == va, "CR2", r.cr2, va);
}

/* --- Many address spaces ----------------------------------------------------------------- */

#define NR_ASPACES 64
#define AS_PAGES 4
#define AS_ROUNDS 6
#define SHARED_PAGES 3

static u64 as_tag(unsigned int as, unsigned int page)
{
	return 0xa5000000u | as << 8 | page;
}

/*
 * 64 roots map the same virtual pages to frames of their own, and a second range through
 * one page table they all share. Switching CR3 round-robin, each must see its own data, and
 * a change to the shared table must be seen by all.
 */
static void test_aspaces(void)
{
	static unsigned long cr3[NR_ASPACES];
	unsigned long priv = section_va(0), shared = section_va(1);
	u64 shared_frames[SHARED_PAGES], moved = alloc_frame();
	void *shared_pde = NULL;
	unsigned int checks = 0;

	digest_begin();
	for (unsigned int k = 0; k < SHARED_PAGES; k++)
		shared_frames[k] = alloc_frame();
	for (unsigned int i = 0; i < NR_ASPACES; i++) {
		cr3[i] = aspace_new();
		for (unsigned int p = 0; p < AS_PAGES; p++) {
			u64 f = alloc_frame();

			((u32 *)phys_to_virt(f))[0] = as_tag(i, p);
			((u32 *)phys_to_virt(f))[1] = i;		/* round 0's counter */
			map_page(cr3[i], priv + p * PAGE, f, PTE_P | PTE_W, LEVEL_PTE);
		}
		for (unsigned int k = 0; k < SHARED_PAGES; k++)
			map_page(cr3[i], shared + k * PAGE, shared_frames[k], PTE_P | PTE_W,
				 LEVEL_PTE);
		/* From the second space on, point the PDE at the first space's table. */
		if (i == 0)
			shared_pde = pte_lookup(cr3[0], shared, LEVEL_PDE);
		else
			pte_set(pte_lookup(cr3[i], shared, LEVEL_PDE), pte_get(shared_pde));
	}

	for (unsigned int r = 0; r < AS_ROUNDS; r++) {
		for (unsigned int k = 0; k < NR_ASPACES; k++) {
			unsigned int i = (k * 37 + r * 11) % NR_ASPACES;	/* a permutation */
			volatile u32 *counters = (volatile u32 *)shared;

			aspace_switch(cr3[i]);
			for (unsigned int p = 0; p < AS_PAGES; p++) {
				volatile u32 *w = (volatile u32 *)(priv + p * PAGE);

				expect(w[0] == as_tag(i, p), "own page tag", w[0], as_tag(i, p));
				expect(w[1] == r * 0x100 + i, "own counter", w[1], r * 0x100 + i);
				w[1] = (r + 1) * 0x100 + i;
				digest_add(w[0] ^ w[1]);
				checks += 2;
			}
			expect(counters[i] == r, "shared counter", counters[i], r);
			counters[i] = r + 1;
			digest_add(counters[i]);
			checks++;
		}
	}
	report_section("64 address spaces, round-robin CR3 switches", checks);

	/* Remap a page of the shared table, in whichever space is current: all see it. */
	*(u32 *)phys_to_virt(moved) = 0x5ca1ab1e;
	pte_set(pte_lookup(cr3[0], shared + 2 * PAGE, LEVEL_PTE), moved | PTE_P | PTE_W);
	invlpg(shared + 2 * PAGE);
	/* And unmap the last private page of every odd space. */
	for (unsigned int i = 1; i < NR_ASPACES; i += 2)
		pte_set(pte_lookup(cr3[i], priv + (AS_PAGES - 1) * PAGE, LEVEL_PTE), 0);
	flush_tlb();
	checks = 0;
	for (unsigned int i = 0; i < NR_ASPACES; i++) {
		unsigned long last = priv + (AS_PAGES - 1) * PAGE;
		u32 v;

		aspace_switch(cr3[i]);
		v = *(volatile u32 *)(shared + 2 * PAGE);
		expect(v == 0x5ca1ab1e, "remapped shared page", v, 0x5ca1ab1e);
		digest_add(v);
		if (i & 1) {
			expect_fault(last, PROBE_READ, 0, 0, "unmapped private page");
		} else {
			v = *(volatile u32 *)last;
			expect(v == as_tag(i, AS_PAGES - 1), "kept private page", v,
			       as_tag(i, AS_PAGES - 1));
			digest_add(v);
		}
		checks += 2;
	}
	aspace_switch(aspace_kernel());
	report_section("shared table remap and private unmaps seen by each space", checks);
	digest_end("aspaces");
}

/* --- Copy-on-write ----------------------------------------------------------------------- */

#define COW_PAGES 16
#define COW_OPS 400
#define COW_WORDS 16		/* words per page the workload writes */
#define PTE_COW PTE_AVL9

static struct {
	unsigned long va, cr3[2];
	u64 frames[COW_PAGES];		/* the parent's frames, shared after the fork */
	unsigned int refs[COW_PAGES];
	unsigned int faults;
	bool expect_user;
} cow;

static unsigned long cow_pattern(unsigned int page, unsigned int word)
{
	return 0xc0000000ul | page << 16 | word;
}

/* The #PF handler of a fork()ing kernel: a write to a COW page gets its own copy. */
static bool cow_fault(struct intr_frame *f, unsigned long cr2)
{
	unsigned long want_ec = PFEC_P | PFEC_W | (cow.expect_user ? PFEC_U : 0);
	unsigned long va = cr2 & ~(PAGE - 1);
	unsigned int page = (va - cow.va) / PAGE;
	void *e;
	u64 v, pa;

	if (cr2 < cow.va || cr2 >= cow.va + COW_PAGES * PAGE)
		return false;
	e = leaf(read_cr3(), va);
	v = e ? pte_get(e) : 0;
	if (!(v & PTE_P) || !(v & PTE_COW))
		return false;
	expect(f->error_code == want_ec, "COW fault error code", f->error_code, want_ec);
	digest_add(page << 8 | f->error_code);
	cow.faults++;
	pa = pte_addr(v);
	if (pa == cow.frames[page] && cow.refs[page] > 1) {
		u64 copy = alloc_frame();

		memcpy(phys_to_virt(copy), phys_to_virt(pa), PAGE);
		cow.refs[page]--;
		pa = copy;
	}
	pte_set(e, pa | ((v | PTE_W) & ~(PTE_COW | PTE_ADDR_4K)));
	invlpg(va);
	return true;
}

static void test_cow(void)
{
	static unsigned long model[2][COW_PAGES][COW_WORDS];
	static bool written[2][COW_PAGES];
	unsigned int checks = 0, expected_faults = 0;

	digest_begin();
	cow.va = section_va(2);
	cow.cr3[0] = aspace_new();
	cow.cr3[1] = aspace_new();
	aspace_switch(cow.cr3[0]);
	for (unsigned int p = 0; p < COW_PAGES; p++) {
		cow.frames[p] = alloc_frame();
		map_page(cow.cr3[0], cow.va + p * PAGE, cow.frames[p], PTE_P | PTE_W | PTE_U,
			 LEVEL_PTE);
		for (unsigned int w = 0; w < PAGE / sizeof(long); w++)
			write_word(cow.va + p * PAGE + w * sizeof(long), cow_pattern(p, w));
		for (unsigned int w = 0; w < COW_WORDS; w++)
			model[0][p][w] = model[1][p][w] = cow_pattern(p, w);
	}
	/* fork(): both sides read-only and COW-marked on the same frames. */
	for (unsigned int p = 0; p < COW_PAGES; p++) {
		unsigned long va = cow.va + p * PAGE;
		void *e = leaf(cow.cr3[0], va);

		pte_set(e, (pte_get(e) & ~PTE_W) | PTE_COW);
		invlpg(va);
		map_page(cow.cr3[1], va, cow.frames[p], PTE_P | PTE_U | PTE_COW, LEVEL_PTE);
		cow.refs[p] = 2;
	}
	set_page_fault_handler(cow_fault);
	for (unsigned int i = 0; i < COW_OPS; i++) {
		u32 r = rng();
		unsigned int side = r & 1, p = (r >> 1) % COW_PAGES, w = (r >> 8) % COW_WORDS;
		unsigned long va = cow.va + p * PAGE + w * sizeof(long);
		bool user = (r >> 16) % 4 == 0, is_write = (r >> 20) % 2;

		aspace_switch(cow.cr3[side]);
		if (is_write) {
			unsigned long v = 0x51de0000ul | side << 12 | i;

			expected_faults += !written[side][p];
			written[side][p] = true;
			cow.expect_user = user;
			if (user) {
				struct probe_result res = probe(va, PROBE_WRITE, 3, false, v);

				expect(!res.faulted, "user write after COW", res.error_code, 0);
			} else {
				write_word(va, v);
			}
			model[side][p][w] = v;
		} else {
			unsigned long v = user ? probe(va, PROBE_READ, 3, false, 0).value
					       : read_word(va);

			expect(v == model[side][p][w], "COW read", v, model[side][p][w]);
			digest_add(v);
			checks++;
		}
	}
	set_page_fault_handler(NULL);
	expect(cow.faults == expected_faults, "COW faults", cow.faults, expected_faults);
	checks++;

	/* Both sides, every word: their own writes, the pattern elsewhere. */
	for (unsigned int side = 0; side < 2; side++) {
		aspace_switch(cow.cr3[side]);
		for (unsigned int p = 0; p < COW_PAGES; p++) {
			unsigned long pva = cow.va + p * PAGE;
			unsigned int bad = 0;

			for (unsigned int w = 0; w < PAGE / sizeof(long); w++) {
				unsigned long want = w < COW_WORDS ? model[side][p][w]
								   : cow_pattern(p, w);

				bad += read_word(pva + w * sizeof(long)) != want;
			}
			expect(!bad, "words differing from the model", bad, 0);
			digest_add(bad);
			checks++;
		}
	}
	/*
	 * The first write to a page copies it; a later write on the other side finds itself the
	 * only user and keeps the parent's frame. So both sides use it until someone writes,
	 * exactly one after.
	 */
	for (unsigned int p = 0; p < COW_PAGES; p++) {
		unsigned long pva = cow.va + p * PAGE;
		unsigned int users = 0, want = written[0][p] || written[1][p] ? 1 : 2;

		for (unsigned int side = 0; side < 2; side++)
			users += pte_addr(pte_get(leaf(cow.cr3[side], pva))) == cow.frames[p];
		expect(users == want, "sides still on the parent's frame", users, want);
		checks++;
	}
	aspace_switch(aspace_kernel());
	printf("  %u COW faults\n", cow.faults);
	report_section("fork-like copy-on-write from the #PF handler", checks);
	digest_end("cow");
}

/* --- Remap, unmap and protect under load ------------------------------------------------- */

#define LOAD_PAGES 32
#define LOAD_FRAMES 48
#define LOAD_OPS 1500

static struct {
	unsigned long va;
	u64 frames[LOAD_FRAMES];
	unsigned long counter[LOAD_FRAMES];	/* model of each frame's word 1 */
	int map[LOAD_PAGES];			/* frame index, -1 if unmapped */
	bool writable[LOAD_PAGES];
} load;

static unsigned long load_tag(int frame)
{
	return 0x7a000000ul | frame;
}

static void load_set(unsigned int p, int frame, bool writable, bool flush)
{
	unsigned long va = load.va + p * PAGE;

	pte_set(leaf(read_cr3(), va),
		frame < 0 ? 0 : load.frames[frame] | PTE_P | (writable ? PTE_W : 0));
	load.map[p] = frame;
	load.writable[p] = writable;
	if (flush)
		invlpg(va);
}

/* Reads page p (or checks that it faults) and, if writable, bumps its frame's counter. */
static unsigned int load_touch(unsigned int p, bool do_write)
{
	unsigned long va = load.va + p * PAGE;
	int f = load.map[p];

	if (f < 0) {
		expect_fault(va, do_write ? PROBE_WRITE : PROBE_READ, 0,
			     do_write ? PFEC_W : 0, "access to unmapped page");
		return 1;
	}
	unsigned long tag = read_word(va), cnt = read_word(va + sizeof(long));

	expect(tag == load_tag(f), "tag after remap", tag, load_tag(f));
	expect(cnt == load.counter[f], "counter", cnt, load.counter[f]);
	digest_add(tag ^ cnt);
	if (!do_write)
		return 2;
	if (load.writable[p]) {
		write_word(va + sizeof(long), ++load.counter[f]);
	} else {
		struct probe_result r = probe(va + sizeof(long), PROBE_WRITE, 0, false, 0);

		expect(r.faulted && r.error_code == (PFEC_P | PFEC_W), "write to read-only page",
		       r.error_code, PFEC_P | PFEC_W);
		digest_add(r.error_code);
	}
	return 3;
}

static void test_load(void)
{
	unsigned int checks = 0;
	unsigned long cr3 = aspace_new();

	digest_begin();
	load.va = section_va(3);
	aspace_switch(cr3);
	for (int f = 0; f < LOAD_FRAMES; f++) {
		load.frames[f] = alloc_frame();
		*(unsigned long *)phys_to_virt(load.frames[f]) = load_tag(f);
	}
	for (unsigned int p = 0; p < LOAD_PAGES; p++) {
		map_page(cr3, load.va + p * PAGE, load.frames[p], PTE_P | PTE_W, LEVEL_PTE);
		load.map[p] = p;
		load.writable[p] = true;
	}
	for (unsigned int i = 0; i < LOAD_OPS; i++) {
		u32 r = rng();
		unsigned int p = r % LOAD_PAGES, op = (r >> 8) % 8;
		int f = (r >> 12) % LOAD_FRAMES;	/* may alias another page's frame */
		bool w = (r >> 20) & 1;

		switch (op) {
		case 0:		/* remap + INVLPG: the new frame at once */
			load_set(p, f, w, true);
			checks += load_touch(p, false);
			break;
		case 1:		/* unmap + INVLPG: faults at once */
			load_set(p, -1, false, true);
			checks += load_touch(p, false);
			break;
		case 2:		/* read-only + INVLPG: writes fault at once */
		case 3:		/* writable + INVLPG: writes go through at once */
			if (load.map[p] >= 0)
				load_set(p, load.map[p], op == 3, true);
			checks += load_touch(p, true);
			break;
		case 4: {	/* remap without INVLPG: old or new frame, nothing else */
			int old = load.map[p];
			unsigned long va = load.va + p * PAGE, tag;

			if (old < 0)
				break;
			load_set(p, f, true, false);
			tag = read_word(va);
			expect(tag == load_tag(old) || tag == load_tag(f), "stale or new", tag,
			       load_tag(f));
			invlpg(va);
			checks += 1 + load_touch(p, false);
			break;
		}
		default:
			checks += load_touch(p, w);
			break;
		}
		if (i % 256 == 255) {
			flush_tlb();
			for (unsigned int q = 0; q < LOAD_PAGES; q++)
				checks += load_touch(q, false);
		}
	}
	aspace_switch(aspace_kernel());
	report_section("remap/unmap/protect + INVLPG under load", checks);
	digest_end("invlpg");
}

/* --- Page tables written with string instructions ---------------------------------------- */

#define STOS_FRAMES 8

/*
 * Zeroes `count` entries from `first` with one REP STOS (8-byte units in 64-bit builds, 4-byte
 * ones in 32-bit builds), upwards or, with DF=1, downwards from the last unit.
 */
static void rep_stos_entries(void *first, unsigned long count, bool backwards)
{
	unsigned long units = count * pte_size() / sizeof(long);
	unsigned long d = (unsigned long)first;

	if (backwards)
		d += (units - 1) * sizeof(long);
#ifdef __x86_64__
	if (backwards)
		asm volatile("std; rep stosq; cld" : "+D"(d), "+c"(units) : "a"(0ul) : "memory");
	else
		asm volatile("rep stosq" : "+D"(d), "+c"(units) : "a"(0ul) : "memory");
#else
	if (backwards)
		asm volatile("std; rep stosl; cld" : "+D"(d), "+c"(units) : "a"(0) : "memory");
	else
		asm volatile("rep stosl" : "+D"(d), "+c"(units) : "a"(0) : "memory");
#endif
}

static void rep_movs_page(void *dst, const void *src)
{
	unsigned long d = (unsigned long)dst, s = (unsigned long)src;
	unsigned long count = PAGE / sizeof(long);

#ifdef __x86_64__
	asm volatile("rep movsq" : "+D"(d), "+S"(s), "+c"(count) : : "memory");
#else
	asm volatile("rep movsl" : "+D"(d), "+S"(s), "+c"(count) : : "memory");
#endif
}

/* Every page the table maps: #PF in the cleared hole [lo, hi), the right frame elsewhere. */
static unsigned int stos_check(unsigned long va, unsigned int lo, unsigned int hi)
{
	unsigned int n = PAGE / pte_size();

	for (unsigned int i = 0; i < n; i++) {
		unsigned long a = va + i * PAGE;

		if (i < lo || i >= hi) {
			u32 v = *(volatile u32 *)a, want = 0x5705u << 16 | (i % STOS_FRAMES);

			expect(v == want, "mapped through the table", v, want);
			digest_add(v);
		} else {
			expect_fault(a, PROBE_READ, 0, 0, "entry cleared by rep stos");
		}
	}
	return n;
}

static void test_string_ops(void)
{
	unsigned long cr3 = aspace_new(), va = section_va(4);
	unsigned int n = PAGE / pte_size(), checks = 0;
	u64 frames[STOS_FRAMES], templ = alloc_frame(), pt;

	digest_begin();
	for (unsigned int k = 0; k < STOS_FRAMES; k++) {
		frames[k] = alloc_frame();
		*(u32 *)phys_to_virt(frames[k]) = 0x5705u << 16 | k;
	}
	/* A live, empty page table under va; its entries come from a template by rep movs. */
	map_page(cr3, va, frames[0], PTE_P | PTE_W, LEVEL_PTE);
	pt = pte_addr(pte_get(pte_lookup(cr3, va, LEVEL_PDE)));
	for (unsigned int i = 0; i < n; i++)
		pte_set((u8 *)phys_to_virt(templ) + i * pte_size(),
			frames[i % STOS_FRAMES] | PTE_P | PTE_W);
	aspace_switch(cr3);
	rep_movs_page(phys_to_virt(pt), phys_to_virt(templ));
	flush_tlb();
	checks += stos_check(va, 0, 0);
	report_section("page table filled by rep movs", checks);

	/* Middle half cleared, with INVLPG of each page it mapped (no full flush). */
	rep_stos_entries((u8 *)phys_to_virt(pt) + n / 4 * pte_size(), n / 2, false);
	for (unsigned int i = n / 4; i < 3 * n / 4; i++)
		invlpg(va + i * PAGE);
	checks = stos_check(va, n / 4, 3 * n / 4);
	report_section("middle half cleared by rep stos (INVLPG each)", checks);

	/* Refilled, then the upper half cleared backwards (DF=1), then everything. */
	rep_movs_page(phys_to_virt(pt), phys_to_virt(templ));
	flush_tlb();
	rep_stos_entries((u8 *)phys_to_virt(pt) + n / 2 * pte_size(), n / 2, true);
	flush_tlb();
	checks = stos_check(va, n / 2, n);
	rep_stos_entries(phys_to_virt(pt), n, false);
	flush_tlb();
	checks += stos_check(va, 0, n);
	aspace_switch(aspace_kernel());
	report_section("upper half cleared by std; rep stos, then all: every page faults", checks);
	digest_end("repstos");
}

/*
 * A store that starts in a live page directory and ends in an unmapped page faults on the
 * second page and writes neither (an instruction's fault leaves its memory operand
 * unchanged). Under shadow paging the directory is write-protected, so the hypervisor
 * emulates the store and must translate both pages before writing the first.
 */
static void test_crossing_store(void)
{
	unsigned long cr3 = aspace_new(), va = section_va(10), window = va + large / 2;
	unsigned long at = window + PAGE - 2, want_ec = PFEC_W;
	u8 *dir, before[8];
	struct probe_result r;

	map_page(cr3, va, alloc_frame(), PTE_P | PTE_W, LEVEL_PTE);
	dir = (u8 *)((unsigned long)pte_lookup(cr3, va, LEVEL_PDE) & ~(PAGE - 1));
	map_page(cr3, window, (unsigned long)dir, PTE_P | PTE_W, LEVEL_PTE);
	memcpy(before, dir + PAGE - sizeof(before), sizeof(before));
	aspace_switch(cr3);
	expect(*(volatile u32 *)va == 0, "the directory is in use", 1, 0);
	r = probe(at, PROBE_WRITE, 0, false, ~0ul);
	aspace_switch(aspace_kernel());
	expect(r.faulted, "store across into an unmapped page faults", 0, 1);
	expect(r.error_code == want_ec, "error code", r.error_code, want_ec);
	expect(r.cr2 >= window + PAGE && r.cr2 < at + sizeof(long), "CR2 in the second page", r.cr2,
	       window + PAGE);
	expect(!memcmp(before, dir + PAGE - sizeof(before), sizeof(before)),
	       "the directory's last bytes are unchanged", 0, 1);
	report_section("store from a live directory into an unmapped page", 5);
}

/* --- LOCK'ed edits of page-table entries ------------------------------------------------- */

#define LOCK_PAGES 8
#define LOCK_ROUNDS 25

static void lock_btr(void *e, unsigned int bit)
{
	asm volatile("lock btrl %1, %0" : "+m"(*(u32 *)e) : "Ir"(bit) : "memory", "cc");
}

static void lock_bts(void *e, unsigned int bit)
{
	asm volatile("lock btsl %1, %0" : "+m"(*(u32 *)e) : "Ir"(bit) : "memory", "cc");
}

static void lock_andb(void *e, u8 mask)
{
	asm volatile("lock andb %1, %0" : "+m"(*(u8 *)e) : "iq"(mask) : "memory", "cc");
}

static void lock_orb(void *e, u8 bits)
{
	asm volatile("lock orb %1, %0" : "+m"(*(u8 *)e) : "iq"(bits) : "memory", "cc");
}

/* xchg (implicitly locked), the width of an entry: Linux's ptep_get_and_clear(). */
static u64 xchg_entry(void *e, u64 v)
{
	if (pte_size() == 4) {
		u32 x = v;

		asm volatile("xchg %0, %1" : "+r"(x), "+m"(*(u32 *)e) : : "memory");
		return x;
	}
#ifdef __x86_64__
	asm volatile("xchg %0, %1" : "+r"(v), "+m"(*(u64 *)e) : : "memory");
	return v;
#else
	/* PAE from 32-bit code: a cmpxchg8b loop, as Linux's native_ptep_get_and_clear(). */
	u64 old = pte_get(e);

	for (;;) {
		u64 seen = old;

		asm volatile("lock cmpxchg8b %0"
			     : "+m"(*(u64 *)e), "+A"(seen)
			     : "b"((u32)v), "c"((u32)(v >> 32)) : "memory", "cc");
		if (seen == old)
			return old;
		old = seen;
	}
#endif
}

/* lock cmpxchg of a whole entry; returns the value found. */
static u64 cmpxchg_entry(void *e, u64 expected, u64 v)
{
	if (pte_size() == 4) {
		u32 x = expected;

		asm volatile("lock cmpxchgl %2, %1"
			     : "+a"(x), "+m"(*(u32 *)e) : "r"((u32)v) : "memory", "cc");
		return x;
	}
#ifdef __x86_64__
	asm volatile("lock cmpxchgq %2, %1" : "+a"(expected), "+m"(*(u64 *)e) : "r"(v)
		     : "memory", "cc");
	return expected;
#else
	asm volatile("lock cmpxchg8b %0"
		     : "+m"(*(u64 *)e), "+A"(expected)
		     : "b"((u32)v), "c"((u32)(v >> 32)) : "memory", "cc");
	return expected;
#endif
}

static void test_lock_ops(void)
{
	unsigned long cr3 = aspace_new(), va0 = section_va(5);
	unsigned int checks = 0;
	u64 frames[LOCK_PAGES];

	digest_begin();
	aspace_switch(cr3);
	for (unsigned int p = 0; p < LOCK_PAGES; p++) {
		frames[p] = alloc_frame();
		map_page(cr3, va0 + p * PAGE, frames[p], PTE_P | PTE_W, LEVEL_PTE);
	}
	for (unsigned int r = 0; r < LOCK_ROUNDS; r++) {
		for (unsigned int p = 0; p < LOCK_PAGES; p++) {
			unsigned long va = va0 + p * PAGE, v = r * 0x100 + p;
			void *e = leaf(cr3, va);
			u64 old, found;

			write_word(va, v);
			lock_btr(e, 1);				/* clear W */
			invlpg(va);
			expect_fault(va, PROBE_WRITE, 0, PFEC_P | PFEC_W, "write after btr W");
			expect(read_word(va) == v, "read after btr W", read_word(va), v);
			lock_bts(e, 1);				/* set W */
			invlpg(va);
			write_word(va, ++v);
			lock_andb(e, (u8)~PTE_P);		/* clear P */
			invlpg(va);
			expect_fault(va, PROBE_READ, 0, 0, "read after lock and P");
			lock_orb(e, PTE_P);
			invlpg(va);
			expect(read_word(va) == v, "read after lock or P", read_word(va), v);

			/* Get-and-clear: the old entry carries the A and D the CPU set. */
			old = xchg_entry(e, 0);
			invlpg(va);
			expect((old & (PTE_A | PTE_D)) == (PTE_A | PTE_D), "A/D in xchg'd entry",
			       old, old | PTE_A | PTE_D);
			digest_add(old & 0xfff);
			expect_fault(va, PROBE_WRITE, 0, PFEC_W, "write after xchg 0");
			found = cmpxchg_entry(e, 0, old & ~(u64)PTE_D);
			invlpg(va);
			expect(found == 0, "cmpxchg found the cleared entry", found, 0);
			expect(read_word(va) == v, "read after cmpxchg", read_word(va), v);
			write_word(va, ++v);
			expect(pte_get(e) & PTE_D, "D set again after cmpxchg cleared it",
			       pte_get(e), pte_get(e) | PTE_D);
			checks += 9;
		}
	}
	aspace_switch(aspace_kernel());
	report_section("lock btr/bts/and/or, xchg, cmpxchg on live entries + INVLPG", checks);
	digest_end("lockops");
}

/* --- Accessed and dirty bits ------------------------------------------------------------- */

/* A and D of the leaf, and whether every A above it is set (SDM Vol. 3A 4.8). */
static u64 ad_state(unsigned long cr3, unsigned long va, unsigned int level)
{
	u64 v = pte_get(pte_lookup(cr3, va, level)) & (PTE_A | PTE_D);
	bool upper = true;

	for (unsigned int l = level + 1; l <= paging_levels(); l++) {
		if (paging_mode() == PAGING_PAE && l == LEVEL_PDPTE)
			continue;			/* PAE PDPTEs have no A bit */
		upper &= !!(pte_get(pte_lookup(cr3, va, l)) & PTE_A);
	}
	return v | (upper ? PTE_PS : 0);		/* PS stands for "all upper A set" */
}

static void clear_upper_accessed(unsigned long cr3, unsigned long va, unsigned int level)
{
	for (unsigned int l = level + 1; l <= paging_levels(); l++)
		if (!(paging_mode() == PAGING_PAE && l == LEVEL_PDPTE))
			lock_btr(pte_lookup(cr3, va, l), 5);
}

static void check_ad(unsigned long cr3, unsigned long va, unsigned int level, u64 want,
		     const char *what)
{
	u64 got = ad_state(cr3, va, level);

	expect(got == want, what, got, want);
	digest_add(got);
}

static unsigned int test_ad_level(unsigned long cr3, unsigned long va, u64 pa,
				  unsigned int level)
{
	const u64 up = PTE_PS;
	void *e;

	e = map_page(cr3, va, pa, PTE_P | PTE_W | PTE_U, level);
	clear_upper_accessed(cr3, va, level);
	flush_tlb();
	(void)read_word(va);
	check_ad(cr3, va, level, PTE_A | up, "after a read: A set, D clear, upper A set");
	write_word(va, 1);
	check_ad(cr3, va, level, PTE_A | PTE_D | up, "after a write: D set");

	lock_btr(e, 6);
	invlpg(va);
	write_word(va, 2);
	check_ad(cr3, va, level, PTE_A | PTE_D | up, "D cleared + INVLPG, write: D set again");

	pte_set(e, pte_get(e) & ~(PTE_A | PTE_D));
	invlpg(va);
	(void)read_word(va);
	check_ad(cr3, va, level, PTE_A | up, "A/D cleared + INVLPG, read: A only");
	/* The TLB may hold the entry with D=0: the CPU must still set D (SDM Vol. 3A 4.8). */
	write_word(va, 3);
	check_ad(cr3, va, level, PTE_A | PTE_D | up, "then a write without INVLPG: D set");

	/* Faulting accesses set no D (and the CPU never writes a not-present entry). */
	pte_set(e, (pte_get(e) & ~(PTE_W | PTE_D)) | PTE_A);
	invlpg(va);
	expect_fault(va, PROBE_WRITE, 0, PFEC_P | PFEC_W, "write to read-only page");
	expect(!(pte_get(e) & PTE_D), "D after a faulting write", pte_get(e), 0);
	pte_set(e, (pte_get(e) & ~PTE_U) | PTE_W);
	invlpg(va);
	expect_fault(va, PROBE_WRITE, 3, PFEC_P | PFEC_W | PFEC_U, "user write to kernel page");
	expect(!(pte_get(e) & PTE_D), "D after a faulting user write", pte_get(e), 0);

	u64 not_present = (pte_get(e) & ~(PTE_P | PTE_A | PTE_D)) | PTE_AVL9;

	pte_set(e, not_present);
	invlpg(va);
	expect_fault(va, PROBE_READ, 0, 0, "read of a not-present page");
	expect_fault(va, PROBE_WRITE, 3, PFEC_W | PFEC_U, "user write to a not-present page");
	expect(pte_get(e) == not_present, "not-present entry untouched", pte_get(e), not_present);
	pte_set(e, 0);
	invlpg(va);
	return 16;
}

static void test_accessed_dirty(void)
{
	unsigned long cr3 = aspace_new();
	unsigned int checks;

	digest_begin();
	aspace_switch(cr3);
	checks = test_ad_level(cr3, section_va(6), alloc_frame(), LEVEL_PTE);
	report_section("A/D bits, 4 KiB page", checks);
	if (level_can_map(LEVEL_PDE)) {
		checks = test_ad_level(cr3, section_va(7), alloc_frames_aligned(large), LEVEL_PDE);
		report_section("A/D bits, large page (PDE)", checks);
	} else {
		report_skip("A/D bits, large page: no PSE");
	}
	if (level_can_map(LEVEL_PDPTE)) {
		/* A 1 GiB page over RAM at 0: only a scratch frame in it is touched. */
		unsigned long gb = base + (1ul << 30);

		checks = test_ad_level(cr3, gb + alloc_frame(), 0, LEVEL_PDPTE);
		report_section("A/D bits, 1 GiB page (PDPTE)", checks);
	} else {
		report_skip("A/D bits, 1 GiB page: %s", paging_mode() == PAGING_LONG ?
			    "CPU has no 1 GiB pages" : "4-level paging only");
	}
	aspace_switch(aspace_kernel());
	digest_end("accessed-dirty");
}

/* --- Large pages ------------------------------------------------------------------------- */

static u32 piece_tag(unsigned int i)
{
	return 0x1a000000u | i;
}

/* Reads every 4 KiB piece of the large region; writes too, except `ro_piece` must fault. */
static unsigned int large_check(unsigned long va, unsigned int pieces, int ro_piece, bool all_ro)
{
	for (unsigned int i = 0; i < pieces; i++) {
		unsigned long a = va + i * PAGE;
		u32 v = *(volatile u32 *)a;

		expect(v == piece_tag(i), "piece tag", v, piece_tag(i));
		digest_add(v);
		if (all_ro || (int)i == ro_piece)
			expect_fault(a + 8, PROBE_WRITE, 0, PFEC_P | PFEC_W, "read-only piece");
		else
			*(volatile u32 *)(a + 8) = i;
	}
	return pieces;
}

/*
 * A large page written through, split into 4 KiB pages under the same virtual range (one
 * INVLPG anywhere in a large page drops all of it, SDM Vol. 3A 4.10.4.1), merged back
 * read-only, then made writable again with one INVLPG.
 */
static void test_large_pages(void)
{
	unsigned long cr3, va = section_va(9);
	unsigned int pieces = large / PAGE, checks;
	u64 pa, pt;
	void *pde;

	if (!level_can_map(LEVEL_PDE)) {
		report_skip("large pages: CPU has no PSE");
		return;
	}
	digest_begin();
	cr3 = aspace_new();
	pa = alloc_frames_aligned(large);
	pt = alloc_frame();
	aspace_switch(cr3);
	pde = map_page(cr3, va, pa, PTE_P | PTE_W, LEVEL_PDE);
	for (unsigned int i = 0; i < pieces; i++)
		*(volatile u32 *)(va + i * PAGE) = piece_tag(i);
	checks = 0;
	for (unsigned int i = 0; i < pieces; i++) {
		u32 v = *(u32 *)phys_to_virt(pa + i * PAGE);

		expect(v == piece_tag(i), "large page write seen in the frame", v, piece_tag(i));
	}
	checks += pieces + large_check(va, pieces, -1, false);
	report_section("large page: writes land in the right 4 KiB of the frame", checks);

	for (unsigned int i = 0; i < pieces; i++)
		pte_set((u8 *)phys_to_virt(pt) + i * pte_size(),
			(pa + i * PAGE) | PTE_P | (i == 5 ? 0 : PTE_W));
	pte_set(pde, pt | PTE_P | PTE_W | PTE_U);
	invlpg(va + large / 2);
	checks = large_check(va, pieces, 5, false);
	report_section("split into a page table, one INVLPG in the middle", checks);

	/* The split left 4 KiB translations: merging needs an INVLPG for each of them. */
	pte_set(pde, pa | PTE_P | PTE_PS);
	for (unsigned int i = 0; i < pieces; i++)
		invlpg(va + i * PAGE);
	checks = large_check(va, pieces, -1, true);
	pte_set(pde, pte_get(pde) | PTE_W);
	invlpg(va + large - PAGE);
	checks += large_check(va, pieces, -1, false);
	aspace_switch(aspace_kernel());
	report_section("merged back read-only (INVLPG each piece), then writable (one INVLPG)",
		       checks);
	digest_end("large");
}

/* --- #PF error codes --------------------------------------------------------------------- */

#define RET_OPCODE 0xc3

enum where { IN_PTE, IN_PDE, IN_LARGE_LEAF };	/* which entry carries the tested bits */

struct pf_case {
	bool p, w, u, nx;			/* effective rights of the translation */
	enum probe_access access;
	int cpl;
	bool ac, wp, smep, smap;
};

/* Access rights, SDM Vol. 3A 4.6.1; error code, 4.7. */
static bool pf_expected(const struct pf_case *c)
{
	bool smap_blocks = c->smap && !c->ac;

	if (!c->p)
		return true;
	if (c->cpl == 3)
		return !c->u || (c->access == PROBE_WRITE && !c->w) ||
		       (c->access == PROBE_EXEC && c->nx);
	switch (c->access) {
	case PROBE_READ:
		return c->u && smap_blocks;
	case PROBE_WRITE:
		return (c->u && smap_blocks) || (c->wp && !c->w);
	default:
		return c->nx || (c->u && c->smep);
	}
}

static unsigned long pf_error_code(const struct pf_case *c)
{
	return (c->p ? PFEC_P : 0) | (c->access == PROBE_WRITE ? PFEC_W : 0) |
	       (c->cpl == 3 ? PFEC_U : 0) |
	       (c->access == PROBE_EXEC && (c->smep || paging_has_nx()) ? PFEC_I : 0);
}

static u64 rights(const struct pf_case *c)
{
	return (c->p ? PTE_P : 0) | (c->w ? PTE_W : 0) | (c->u ? PTE_U : 0) |
	       (c->nx ? PTE_NX : 0);
}

/* The test page's entries: the rights in `where`, everything allowed in the others. */
struct pf_page {
	unsigned long va;
	void *pde, *pte;
	u64 pt, frame, large_frame;
};

static void pf_set_entries(const struct pf_page *pg, enum where where, const struct pf_case *c)
{
	const u64 all = PTE_P | PTE_W | PTE_U;

	if (where == IN_PTE) {
		pte_set(pg->pde, pg->pt | all);
		pte_set(pg->pte, pg->frame | rights(c));
	} else if (where == IN_PDE) {
		pte_set(pg->pde, pg->pt | rights(c));
		pte_set(pg->pte, pg->frame | all);
	} else {
		pte_set(pg->pde, pg->large_frame | PTE_PS | rights(c));
	}
	invlpg(pg->va);
}

/* One probe against the model; the outcome goes into the digest either way. */
static void pf_check(unsigned long va, enum where where, const struct pf_case *c)
{
	static const char *const where_name[] = { "PTE", "PDE", "large leaf" };
	static const char *const access_name[] = { "read", "write", "fetch" };
	struct probe_result r = probe(va, c->access, c->cpl, c->ac, RET_OPCODE);
	bool fault = pf_expected(c);
	unsigned long ec = pf_error_code(c);

	digest_add(where << 12 | c->p << 11 | c->w << 10 | c->u << 9 | c->nx << 8 |
		   c->access << 4 | c->cpl << 1 | c->ac);
	digest_add(r.faulted ? r.error_code : 0xff);
	if (r.faulted == fault && (!fault || (r.error_code == ec && r.cr2 == va)))
		return;
	if (mismatches++ < PRINTED_MISMATCHES)
		printf("  mismatch: %s P%d W%d U%d NX%d, CPL%d %s%s: %s %#lx CR2 %#lx, "
		       "want %s %#lx\n", where_name[where], c->p, c->w, c->u, c->nx, c->cpl,
		       access_name[c->access], c->ac ? " AC" : "",
		       r.faulted ? "#PF" : "no fault", r.error_code, r.cr2,
		       fault ? "#PF" : "no fault", fault ? ec : 0);
}

/*
 * Every P/W/U/NX combination in each entry, each probed by a read, write and fetch at CPL0
 * and CPL3, plus a CPL0 read and write with EFLAGS.AC=1 if the CPU has SMAP.
 */
static unsigned int pf_run_entries(const struct pf_page *pg, struct pf_case *c)
{
	unsigned int checks = 0;

	for (enum where where = IN_PTE; where <= IN_LARGE_LEAF; where++) {
		if (where == IN_LARGE_LEAF && !level_can_map(LEVEL_PDE))
			continue;
		for (unsigned int bits = 0; bits < 16; bits++) {
			c->p = bits & 1;
			c->w = bits & 2;
			c->u = bits & 4;
			c->nx = bits & 8;
			/* Not present: the other bits do not matter, try one combination. */
			if ((!c->p && bits) || (c->nx && !paging_has_nx()))
				continue;
			pf_set_entries(pg, where, c);
			for (unsigned int k = 0; k < 8; k++) {
				c->access = k % 3;
				c->cpl = k >= 3 && k < 6 ? 3 : 0;
				c->ac = k >= 6;
				if (c->ac && !paging_cpu.smap)
					continue;
				pf_check(pg->va, where, c);
				checks++;
			}
		}
	}
	return checks;
}

static void test_error_codes(void)
{
	unsigned long cr3 = aspace_new();
	struct pf_page pg = { .va = section_va(8), .frame = alloc_frame() };

	digest_begin();
	pg.large_frame = level_can_map(LEVEL_PDE) ? alloc_frames_aligned(large) : 0;
	*(u8 *)phys_to_virt(pg.frame) = RET_OPCODE;
	if (pg.large_frame)
		*(u8 *)phys_to_virt(pg.large_frame) = RET_OPCODE;
	pg.pte = map_page(cr3, pg.va, pg.frame, PTE_P | PTE_W | PTE_U, LEVEL_PTE);
	pg.pde = pte_lookup(cr3, pg.va, LEVEL_PDE);
	pg.pt = pte_addr(pte_get(pg.pde));
	aspace_switch(cr3);
	if (!paging_cpu.smep)
		report_skip("#PF error codes with SMEP: CPU has no SMEP");
	if (!paging_cpu.smap)
		report_skip("#PF error codes with SMAP: CPU has no SMAP");
	if (!paging_has_nx())
		report_skip("#PF error codes with NX: %s", paging_mode() == PAGING_32 ?
			    "32-bit paging has no XD bit" : "CPU has no NX");
	for (unsigned int env = 0; env < 8; env++) {
		struct pf_case c = { .wp = env & 1, .smep = env & 2, .smap = env & 4 };
		unsigned int checks;

		if ((c.smep && !paging_cpu.smep) || (c.smap && !paging_cpu.smap))
			continue;
		set_cr0_wp(c.wp);
		set_smep(c.smep);
		set_smap(c.smap);
		flush_tlb();
		checks = pf_run_entries(&pg, &c);
		report(!mismatches, "#PF error codes, CR0.WP=%d SMEP=%d SMAP=%d: %u checks, %u "
		       "mismatches", c.wp, c.smep, c.smap, checks, mismatches);
		mismatches = 0;
	}
	set_cr0_wp(true);
	set_smep(false);
	set_smap(false);
	aspace_switch(aspace_kernel());
	digest_end("pf-error-codes");
}

int main(void)
{
	if (!paging_init(PAGING_TEST_MODE)) {
		report_skip("%s paging not available here", paging_mode_name(PAGING_TEST_MODE));
		return report_summary();
	}
	base = paging_test_base();
	large = level_page_size(LEVEL_PDE);
	test_aspaces();
	test_cow();
	test_load();
	test_string_ops();
	test_crossing_store();
	test_lock_ops();
	test_accessed_dirty();
	test_large_pages();
	test_error_codes();
	return report_summary();
}
