/*
 * Page tables for the paging test kernels (see paging.h): a bump allocator over the largest
 * free RAM range, the three entry formats behind one level-numbered walk, an identity map of
 * RAM shared by every address space, and the switch into paging.
 */
#include "paging.h"

/*
 * The identity map stops where the test range starts (1 GiB in 32-bit and PAE paging) and
 * at 4 GiB in 4-level paging; frames are only handed out below it.
 */
#define IDENTITY_LIMIT_32 (1ull << 30)
#define IDENTITY_LIMIT_64 (4ull << 30)
#define TEST_BASE_32 0x40000000ul
#define PAE_PDPT_SIZE 32		/* 4 entries; CR3 bits 31:5 (SDM Vol. 3A 4.4.1) */

#define CPUID1_EDX_PSE BIT(3)
#define CPUID1_EDX_PAE BIT(6)
#define CPUID7_EBX_SMEP BIT(7)
#define CPUID7_EBX_SMAP BIT(20)
#define EXT_EDX_NX BIT(20)
#define EXT_EDX_GBPAGES BIT(26)

struct paging_cpu paging_cpu;
static enum paging_mode mode;
static unsigned long kernel_cr3;
/* Free RAM: 4 KiB frames come from the bottom, aligned large runs from the top. */
static u64 free_lo, free_hi;
static u64 pdpt_page;			/* PAE: page the next PDPTs are carved from */
static unsigned int pdpt_used;

static void fatal(const char *what)
{
	report(false, "paging library: %s", what);
	exit(report_summary());
}

/* rep stosl: fast enough for 4 MiB frames even in a slow emulator. */
static void zero_frames(u64 pa, u64 size)
{
	unsigned long dst = (unsigned long)pa, count = (unsigned long)(size / 4);

	asm volatile("rep stosl" : "+D"(dst), "+c"(count) : "a"(0) : "memory");
}

u64 alloc_frame(void)
{
	u64 pa = free_lo;

	if (free_hi - free_lo < PAGE_SIZE)
		fatal("out of free RAM for frames");
	free_lo += PAGE_SIZE;
	zero_frames(pa, PAGE_SIZE);
	return pa;
}

u64 alloc_frames_aligned(u64 size)
{
	u64 pa;

	if (free_hi < size || ALIGN_DOWN(free_hi - size, size) < free_lo)
		fatal("out of free RAM for an aligned run");
	pa = ALIGN_DOWN(free_hi - size, size);
	free_hi = pa;
	zero_frames(pa, size);
	return pa;
}

static void pick_largest(u64 start, u64 end, void *ctx)
{
	u64 *best = ctx;

	if (end - start > best[1] - best[0]) {
		best[0] = start;
		best[1] = end;
	}
}

static void detect_cpu(void)
{
	struct cpuid_regs r = cpuid(1, 0);

	paging_cpu.pse = r.edx & CPUID1_EDX_PSE;
	paging_cpu.pae = r.edx & CPUID1_EDX_PAE;
	if (cpuid(0, 0).eax >= 7) {
		r = cpuid(7, 0);
		paging_cpu.smep = r.ebx & CPUID7_EBX_SMEP;
		paging_cpu.smap = r.ebx & CPUID7_EBX_SMAP;
	}
	if (cpuid(0x80000000, 0).eax >= 0x80000001) {
		r = cpuid(0x80000001, 0);
		paging_cpu.nx = r.edx & EXT_EDX_NX;
		paging_cpu.gbpages = r.edx & EXT_EDX_GBPAGES;
	}
}

enum paging_mode paging_mode(void)
{
	return mode;
}

const char *paging_mode_name(enum paging_mode m)
{
	return m == PAGING_32 ? "32-bit" : m == PAGING_PAE ? "PAE" : "4-level";
}

unsigned int paging_levels(void)
{
	return mode == PAGING_32 ? 2 : mode == PAGING_PAE ? 3 : 4;
}

unsigned int pte_size(void)
{
	return mode == PAGING_32 ? 4 : 8;
}

/* 32-bit paging translates 10 address bits per level, PAE and 4-level paging 9. */
static unsigned int level_shift(unsigned int level)
{
	return 12 + (mode == PAGING_32 ? 10 : 9) * (level - 1);
}

static unsigned int level_index(unsigned long va, unsigned int level)
{
	unsigned int bits = mode == PAGING_32 ? 10 : 9;

	return ((u64)va >> level_shift(level)) & ((1u << bits) - 1);
}

u64 level_page_size(unsigned int level)
{
	return 1ull << level_shift(level);
}

bool level_can_map(unsigned int level)
{
	if (level == LEVEL_PTE)
		return true;
	if (level == LEVEL_PDE)
		return mode != PAGING_32 || paging_cpu.pse;
	return level == LEVEL_PDPTE && mode == PAGING_LONG && paging_cpu.gbpages;
}

bool paging_has_nx(void)
{
	return mode != PAGING_32 && paging_cpu.nx;
}

unsigned long paging_test_base(void)
{
#ifdef __x86_64__
	return 1ul << 39;
#else
	return TEST_BASE_32;
#endif
}

unsigned long aspace_kernel(void)
{
	return kernel_cr3;
}

u64 pte_get(const void *entry)
{
	if (mode == PAGING_32)
		return *(const volatile u32 *)entry;
#ifdef __x86_64__
	return *(const volatile u64 *)entry;
#else
	const volatile u32 *half = entry;
	u32 lo = half[0], hi = half[1];

	return ((u64)hi << 32) | lo;
#endif
}

void pte_set(void *entry, u64 val)
{
	if (mode == PAGING_32) {
		*(volatile u32 *)entry = val;
		return;
	}
#ifdef __x86_64__
	*(volatile u64 *)entry = val;
#else
	/* Two stores; high half first like Linux's PAE set_pte(), so P comes last. */
	volatile u32 *half = entry;

	half[1] = val >> 32;
	half[0] = (u32)val;
#endif
}

u64 pte_addr(u64 entry)
{
	return entry & PTE_ADDR_4K;
}

static u64 root_table(unsigned long cr3)
{
	return mode == PAGING_PAE ? cr3 & ~(unsigned long)(PAE_PDPT_SIZE - 1) : cr3 & ~0xffful;
}

static void *entry_ptr(u64 table, unsigned long va, unsigned int level)
{
	return (u8 *)phys_to_virt(table) + level_index(va, level) * pte_size();
}

/* A PDPTE in PAE paging has no R/W, U/S or A bit: they are reserved (SDM Vol. 3A 4.4.1). */
static u64 table_entry_flags(unsigned int level)
{
	return mode == PAGING_PAE && level == LEVEL_PDPTE ? PTE_P : PTE_P | PTE_W | PTE_U;
}

static bool is_large_leaf(u64 entry, unsigned int level)
{
	return level > LEVEL_PTE && !(mode == PAGING_PAE && level == LEVEL_PDPTE) &&
	       (entry & PTE_PS);
}

void *map_page(unsigned long cr3, unsigned long va, u64 pa, u64 flags, unsigned int level)
{
	u64 table = root_table(cr3);
	bool new_pdpte = false;

	for (unsigned int l = paging_levels(); l > level; l--) {
		void *e = entry_ptr(table, va, l);
		u64 v = pte_get(e);

		if (!(v & PTE_P)) {
			table = alloc_frame();
			pte_set(e, table | table_entry_flags(l));
			new_pdpte |= mode == PAGING_PAE && l == LEVEL_PDPTE;
		} else if (is_large_leaf(v, l)) {
			return NULL;
		} else {
			table = pte_addr(v);
		}
	}
	void *leaf = entry_ptr(table, va, level);

	pte_set(leaf, pa | flags | (level > LEVEL_PTE ? PTE_PS : 0));
	/* PDPTEs are only read on a CR3 load (SDM Vol. 3A 4.4.1). */
	if (new_pdpte && read_cr0() & CR0_PG && read_cr3() == cr3)
		write_cr3(cr3);
	return leaf;
}

void *pte_lookup(unsigned long cr3, unsigned long va, unsigned int level)
{
	u64 table = root_table(cr3);

	for (unsigned int l = paging_levels(); l > level; l--) {
		u64 v = pte_get(entry_ptr(table, va, l));

		if (!(v & PTE_P) || is_large_leaf(v, l))
			return NULL;
		table = pte_addr(v);
	}
	return entry_ptr(table, va, level);
}

static unsigned long new_root(void)
{
	if (mode != PAGING_PAE)
		return alloc_frame();
	if (!pdpt_page || pdpt_used == PAGE_SIZE / PAE_PDPT_SIZE) {
		pdpt_page = alloc_frame();
		pdpt_used = 0;
	}
	return pdpt_page + PAE_PDPT_SIZE * pdpt_used++;
}

/* Copies the top-level entries below the test range: the identity map's tables are shared. */
unsigned long aspace_new(void)
{
	unsigned int top = paging_levels();
	unsigned long cr3 = new_root();
	unsigned int shared = level_index(paging_test_base(), top);

	for (unsigned int i = 0; i < shared; i++) {
		unsigned long va = (unsigned long)((u64)i << level_shift(top));

		pte_set(entry_ptr(root_table(cr3), va, top),
			pte_get(entry_ptr(root_table(kernel_cr3), va, top)));
	}
	return cr3;
}

static bool is_user_page(u64 pa)
{
	return (pa >= user_text_begin() && pa < user_text_end()) || pa == user_stack_page();
}

static bool range_has_user_page(u64 start, u64 end)
{
	return (user_text_begin() < end && user_text_end() > start) ||
	       (user_stack_page() >= start && user_stack_page() < end);
}

/* Supervisor-only RAM, large pages where possible, 4 KiB pages around the user pages. */
static void build_identity_map(u64 end)
{
	u64 large = level_page_size(LEVEL_PDE);

	for (u64 pa = 0; pa < end;) {
		if (level_can_map(LEVEL_PDE) && pa % large == 0 && pa + large <= end &&
		    !range_has_user_page(pa, pa + large)) {
			map_page(kernel_cr3, pa, pa, PTE_P | PTE_W, LEVEL_PDE);
			pa += large;
		} else {
			map_page(kernel_cr3, pa, pa,
				 PTE_P | PTE_W | (is_user_page(pa) ? PTE_U : 0), LEVEL_PTE);
			pa += PAGE_SIZE;
		}
	}
}

static bool mode_supported(enum paging_mode m)
{
#ifdef __x86_64__
	if (m != PAGING_LONG) {
		printf("paging: %s paging needs a 32-bit build\n", paging_mode_name(m));
		return false;
	}
#else
	if (m == PAGING_LONG) {
		printf("paging: 4-level paging needs a 64-bit build\n");
		return false;
	}
	if (m == PAGING_PAE && !paging_cpu.pae) {
		printf("paging: CPU has no PAE\n");
		return false;
	}
#endif
	return true;
}

bool paging_init(enum paging_mode m)
{
	u64 best[2] = { 0, 0 };
	u64 limit = m == PAGING_LONG ? IDENTITY_LIMIT_64 : IDENTITY_LIMIT_32;
	u64 end = ram_end() < limit ? ram_end() : limit;

	detect_cpu();
	if (!mode_supported(m))
		return false;
	mode = m;
	for_each_free_ram(MIB, end, pick_largest, best);
	free_lo = ALIGN_UP(best[0], PAGE_SIZE);
	free_hi = ALIGN_DOWN(best[1], PAGE_SIZE);
	if (free_hi <= free_lo)
		fatal("no free RAM");

	kernel_cr3 = new_root();
	build_identity_map(ALIGN_UP(end, PAGE_SIZE));
	if (mode != PAGING_32 && paging_cpu.nx)
		wrmsr(MSR_EFER, rdmsr(MSR_EFER) | EFER_NXE);
#ifndef __x86_64__
	write_cr4(read_cr4() | (mode == PAGING_PAE ? CR4_PAE : paging_cpu.pse ? CR4_PSE : 0));
#endif
	write_cr3(kernel_cr3);
	write_cr0(read_cr0() | CR0_PG | CR0_WP);
	usermode_init();
	printf("paging: %s mode, free frames %#llx-%#llx, PSE %d NX %d SMEP %d SMAP %d 1G %d\n",
	       paging_mode_name(mode), free_lo, free_hi, paging_cpu.pse, paging_has_nx(),
	       paging_cpu.smep, paging_cpu.smap, level_can_map(LEVEL_PDPTE));
	return true;
}

void set_cr0_wp(bool on)
{
	write_cr0(on ? read_cr0() | CR0_WP : read_cr0() & ~CR0_WP);
}

static bool set_cr4_bit(unsigned long bit, bool supported, bool on)
{
	if (!supported)
		return false;
	write_cr4(on ? read_cr4() | bit : read_cr4() & ~bit);
	return true;
}

bool set_smep(bool on)
{
	return set_cr4_bit(CR4_SMEP, paging_cpu.smep, on);
}

bool set_smap(bool on)
{
	return set_cr4_bit(CR4_SMAP, paging_cpu.smap, on);
}
