/*
 * Shared parts of the benchmark kernels (tests/guests/bench_*.c, run by tools/bench.py): a
 * recycling frame pool on top of the paging library's bump allocator, 4-level address spaces
 * built from it and torn down again, a fixed-seed PRNG, a checksum of what the guest
 * observed, a consistency counter, and the final "BENCH: <name> work=N checksum=0x..." line.
 * Every kernel does a fixed amount of work (optionally scaled by `n=` on its command line),
 * so the checksum is the same under every hypervisor configuration.
 */
#ifndef GUEST_BENCH_COMMON_H
#define GUEST_BENCH_COMMON_H

#include "paging.h"

#define PAGE ((unsigned long)PAGE_SIZE)
#define PT_ENTRIES 512
/* Mismatches printed in full; the rest are only counted. */
#define BENCH_PRINTED_MISMATCHES 6

static struct {
	u64 checksum;
	unsigned long checks, mismatches;
	u64 tsc_start;
} bench = { .checksum = 0xcbf29ce484222325ull };

/* xorshift64*: one fixed sequence per seed, the same in every run. */
static inline u64 bench_rng(u64 *state)
{
	*state ^= *state >> 12;
	*state ^= *state << 25;
	*state ^= *state >> 27;
	return *state * 0x2545f4914f6cdd1dull;
}

/* FNV-1a (64-bit) over what the guest read: proves the work was done, and done the same. */
static inline void bench_mix(u64 v)
{
	for (int i = 0; i < 8; i++, v >>= 8) {
		bench.checksum ^= (u8)v;
		bench.checksum *= 0x100000001b3ull;
	}
}

/* A read-back check: counts a mismatch (printing the first few); true if `ok`. */
static inline bool bench_expect(bool ok, const char *what, u64 got, u64 want)
{
	bench.checks++;
	if (!ok && bench.mismatches++ < BENCH_PRINTED_MISMATCHES)
		printf("  mismatch: %s: got %#llx, want %#llx\n", what, got, want);
	return ok;
}

/* `key=` from the command line (e.g. n=, the amount of work), else the default. */
static inline unsigned long bench_param(const char *key, unsigned long dflt)
{
	u64 v;

	return cmdline_get_u64(key, &v) && v ? (unsigned long)v : dflt;
}

static inline void bench_begin(void)
{
	bench.tsc_start = rdtsc();
}

/*
 * The one result line tools/bench.py and a human read, after the consistency verdict.
 * With `tsc` on the command line the guest's TSC ticks are printed too (under QEMU with
 * `-icount shift=0` they count instructions); off by default to keep port I/O out.
 */
static inline int bench_end(const char *name, unsigned long work)
{
	u64 ticks = rdtsc() - bench.tsc_start;

	report(!bench.mismatches, "%s: %lu read-back checks, %lu mismatches", name, bench.checks,
	       bench.mismatches);
	if (cmdline_has("tsc"))
		printf("bench: %s tsc=%llu\n", name, ticks);
	printf("BENCH: %s work=%lu checksum=%#llx\n", name, work, bench.checksum);
	return report_summary();
}

/* --- Frame pool ------------------------------------------------------------------------- */

/*
 * Freed frames are kept on two lists linked through their first word: zeroed ones (page
 * tables cleared at teardown) for new tables, and dirty ones (data) for data pages, so a
 * table is zeroed once, as an OS's allocator would. New frames come from alloc_frame().
 */
static struct {
	u64 zeroed, dirty;		/* list heads, 0 = empty */
	unsigned long in_use, peak;
} pool;

static inline void clear_page(void *p)
{
	unsigned long count = PAGE / 8;

	asm volatile("rep stosq" : "+D"(p), "+c"(count) : "a"(0ul) : "memory");
}

static inline void copy_page(void *dst, const void *src)
{
	unsigned long count = PAGE / 8;

	asm volatile("rep movsq" : "+D"(dst), "+S"(src), "+c"(count) : : "memory");
}

static inline u64 pool_pop(u64 *head)
{
	u64 pa = *head;

	if (pa) {
		u64 *f = phys_to_virt(pa);

		*head = f[0];
		f[0] = 0;
	}
	return pa;
}

static inline void pool_count(void)
{
	if (++pool.in_use > pool.peak)
		pool.peak = pool.in_use;
}

/* A zeroed frame, for a page table or a demand-zero page. */
static inline u64 pool_alloc_zeroed(void)
{
	u64 pa = pool_pop(&pool.zeroed);

	if (!pa) {
		pa = pool_pop(&pool.dirty);
		if (pa)
			clear_page(phys_to_virt(pa));
		else
			pa = alloc_frame();
	}
	pool_count();
	return pa;
}

/* A frame with any contents, for data the caller overwrites. */
static inline u64 pool_alloc(void)
{
	u64 pa = pool_pop(&pool.dirty);

	if (!pa)
		pa = pool_pop(&pool.zeroed);
	if (!pa)
		pa = alloc_frame();
	pool_count();
	return pa;
}

/* `zeroed`: the caller cleared it (all but the link word this writes). */
static inline void pool_free(u64 pa, bool zeroed)
{
	u64 *head = zeroed ? &pool.zeroed : &pool.dirty;

	*(u64 *)phys_to_virt(pa) = *head;
	*head = pa;
	pool.in_use--;
}

/* --- 4-level address spaces from the pool ------------------------------------------------ */

static inline unsigned int pt_index(unsigned long va, unsigned int level)
{
	return (va >> (12 + 9 * (level - 1))) & (PT_ENTRIES - 1);
}

static inline u64 *table_at(u64 entry)
{
	return phys_to_virt(entry & PTE_ADDR_4K);
}

/* PML4 entries below this one are the kernel half (the identity map), shared by all. */
static inline unsigned int user_half_start(void)
{
	return pt_index(paging_test_base(), LEVEL_PML4E);
}

/* A root sharing the kernel half with every other address space, like fork()'s new mm. */
static inline unsigned long bench_aspace_new(void)
{
	u64 root = pool_alloc_zeroed();
	u64 *kernel = table_at(aspace_kernel()), *mine = phys_to_virt(root);

	for (unsigned int i = 0; i < user_half_start(); i++)
		mine[i] = kernel[i];
	return (unsigned long)root;
}

/* The entry at `level` for va, creating the tables above it from the pool (or NULL if !create). */
static inline u64 *bench_entry(unsigned long cr3, unsigned long va, unsigned int level,
			       bool create)
{
	u64 *table = table_at(cr3);

	for (unsigned int l = LEVEL_PML4E; l > level; l--) {
		u64 *e = &table[pt_index(va, l)];

		if (!(*e & PTE_P)) {
			if (!create)
				return NULL;
			*e = pool_alloc_zeroed() | PTE_P | PTE_W | PTE_U;
		}
		table = table_at(*e);
	}
	return &table[pt_index(va, level)];
}

static inline u64 *bench_pte(unsigned long cr3, unsigned long va, bool create)
{
	return bench_entry(cr3, va, LEVEL_PTE, create);
}

static inline u64 *bench_map(unsigned long cr3, unsigned long va, u64 pa, u64 flags)
{
	u64 *pte = bench_pte(cr3, va, true);

	*pte = pa | flags;
	return pte;
}

/*
 * Frees the table `entry` points to, whose entries are at `level`, and everything under it:
 * calls drop_leaf for every present PTE (the caller frees or unshares the frame), clears
 * each table with REP STOS as an exiting process's kernel does, and returns it zeroed.
 */
static inline void bench_free_tables(u64 entry, unsigned int level, void (*drop_leaf)(u64 pte))
{
	u64 *table = table_at(entry);

	for (unsigned int i = 0; i < PT_ENTRIES; i++) {
		if (!(table[i] & PTE_P))
			continue;
		if (level > LEVEL_PTE)
			bench_free_tables(table[i], level - 1, drop_leaf);
		else if (drop_leaf)
			drop_leaf(table[i]);
	}
	clear_page(table);
	pool_free(entry & PTE_ADDR_4K, true);
}

/*
 * Tears down an address space that is not the current one (so no TLB entry of it
 * survives: there is no PCID): the user half's tables and the root go back to the pool.
 */
static inline void bench_aspace_destroy(unsigned long cr3, void (*drop_leaf)(u64 pte))
{
	u64 *root = table_at(cr3);

	for (unsigned int i = user_half_start(); i < PT_ENTRIES; i++) {
		if (root[i] & PTE_P)
			bench_free_tables(root[i], LEVEL_PDPTE, drop_leaf);
	}
	clear_page(root);
	pool_free(cr3 & PTE_ADDR_4K, true);
}

static inline u64 bench_read(unsigned long va)
{
	return *(volatile u64 *)va;
}

static inline void bench_write(unsigned long va, u64 v)
{
	*(volatile u64 *)va = v;
}

#endif
