/*
 * Benchmark: a shell running short commands. Each iteration fork()s a small process from a
 * "shell" address space (a new root sharing the kernel half, the shell's 32-page image
 * mapped copy-on-write in both), the shell updates its state (a COW copy), the child reads
 * some of the image, writes a few pages (COW copies), fills fresh heap and stack pages
 * (demand-zero faults), then exits: its tables are cleared with REP STOS and every frame
 * goes back to the pool, to be reused by the next child. Stresses what a shadow MMU finds
 * hardest: short-lived roots, tables reused as data and data reused as tables, write-protect
 * faults. Work unit: one process run. Default n=128.
 */
#include "bench_common.h"

#define IMAGE_PAGES 32		/* text + data, shared copy-on-write */
#define CHILD_READS 16		/* image pages a child reads */
#define CHILD_WRITES 8		/* image writes a child does (pages may repeat) */
#define HEAP_PAGES 4
#define STACK_PAGES 2
#define PTE_COW PTE_AVL9
#define MAX_FRAMES 16384	/* refcounts for the first 64 MiB of RAM */

static unsigned long image_va, heap_va, stack_va;
static u16 refs[MAX_FRAMES];
static u64 parent_word1[IMAGE_PAGES];	/* what the shell last wrote to word 1 of each page */
static u64 child_word1[IMAGE_PAGES];	/* the same at the last fork(): what the child sees */
static unsigned long faults_cow, faults_copy, faults_zero;

static u64 image_pattern(unsigned int page, unsigned int word)
{
	return ((u64)page << 32 | word) ^ 0x5e11000000000000ull;
}

static u16 *frame_refs(u64 pa)
{
	u64 i = pa / PAGE_SIZE;

	if (i >= MAX_FRAMES) {
		report(false, "frame %#llx beyond the refcount table", pa);
		exit(report_summary());
	}
	return &refs[i];
}

static bool in_range(unsigned long va, unsigned long start, unsigned int pages)
{
	return va >= start && va < start + pages * PAGE;
}

/*
 * The kernel's #PF handler: a write to a COW page copies it if it is still shared, else
 * just makes it writable again; a heap or stack page gets a zeroed frame on first touch.
 */
static bool fork_fault(struct intr_frame *f, unsigned long cr2)
{
	unsigned long va = cr2 & ~(PAGE - 1);
	u64 *pte = bench_pte(read_cr3(), va, false);
	u64 pa;

	if (pte && (*pte & PTE_P)) {
		if (!(*pte & PTE_COW) || !(f->error_code & PFEC_W))
			return false;
		pa = *pte & PTE_ADDR_4K;
		faults_cow++;
		if (*frame_refs(pa) > 1) {
			u64 copy = pool_alloc();

			copy_page(phys_to_virt(copy), phys_to_virt(pa));
			(*frame_refs(pa))--;
			*frame_refs(copy) = 1;
			pa = copy;
			faults_copy++;
		}
		*pte = pa | PTE_P | PTE_W | PTE_U;
		invlpg(va);
		return true;
	}
	if (!in_range(va, heap_va, HEAP_PAGES) && !in_range(va, stack_va, STACK_PAGES))
		return false;
	pa = pool_alloc_zeroed();
	*frame_refs(pa) = 1;
	bench_map(read_cr3(), va, pa, PTE_P | PTE_W | PTE_U);
	faults_zero++;
	return true;
}

static void drop_frame(u64 pte)
{
	u64 pa = pte & PTE_ADDR_4K;

	if (!--*frame_refs(pa))
		pool_free(pa, false);
}

/* fork(): both sides read-only and COW-marked on the shell's frames. */
static unsigned long fork_image(unsigned long shell)
{
	unsigned long child = bench_aspace_new();

	for (unsigned int p = 0; p < IMAGE_PAGES; p++) {
		unsigned long va = image_va + p * PAGE;
		u64 *pte = bench_pte(shell, va, false);
		u64 pa = *pte & PTE_ADDR_4K;

		*pte = (*pte & ~PTE_W) | PTE_COW;
		bench_map(child, va, pa, PTE_P | PTE_U | PTE_COW);
		(*frame_refs(pa))++;
	}
	flush_tlb();		/* the shell's own entries just lost W */
	return child;
}

/* The child's life: read the image, write some of it, use a fresh heap and stack. */
static void run_child(u64 *rng, unsigned long iter)
{
	u64 written[CHILD_WRITES];
	unsigned int written_page[CHILD_WRITES];

	for (unsigned int k = 0; k < CHILD_READS; k++) {
		unsigned int p = (iter * 7 + k * 3) % IMAGE_PAGES, w = 2 + bench_rng(rng) % 500;
		unsigned long va = image_va + p * PAGE;
		u64 w0 = bench_read(va), w1 = bench_read(va + 8), wr = bench_read(va + w * 8);

		bench_expect(w0 == image_pattern(p, 0), "child reads image word 0", w0,
			     image_pattern(p, 0));
		bench_expect(w1 == child_word1[p], "child sees the image as forked", w1,
			     child_word1[p]);
		bench_expect(wr == image_pattern(p, w), "child reads image", wr,
			     image_pattern(p, w));
		bench_mix(w1 ^ wr);
	}
	for (unsigned int k = 0; k < CHILD_WRITES; k++) {
		unsigned int p = bench_rng(rng) % IMAGE_PAGES;

		written_page[k] = p;
		written[k] = iter << 16 | k;
		bench_write(image_va + p * PAGE + 16 + k * 8, written[k]);
	}
	for (unsigned int k = 0; k < CHILD_WRITES; k++) {
		unsigned long va = image_va + written_page[k] * PAGE;
		u64 v = bench_read(va + 16 + k * 8), w0 = bench_read(va);

		/* A later write to the same page and slot cannot happen: slots are per k. */
		bench_expect(v == written[k], "child's own write", v, written[k]);
		bench_expect(w0 == image_pattern(written_page[k], 0), "copied page", w0,
			     image_pattern(written_page[k], 0));
	}
	for (unsigned int k = 0; k < HEAP_PAGES + STACK_PAGES; k++) {
		unsigned long va = k < HEAP_PAGES ? heap_va + k * PAGE
						  : stack_va + (k - HEAP_PAGES) * PAGE;
		u64 v = iter * 0x100 + k;

		bench_write(va + 8 * (k + 1), v);
		bench_expect(bench_read(va) == 0, "demand-zero page", bench_read(va), 0);
		bench_expect(bench_read(va + 8 * (k + 1)) == v, "heap/stack write",
			     bench_read(va + 8 * (k + 1)), v);
		bench_mix(v);
	}
}

/* After the child is gone, the shell's image must hold none of its writes. */
static void check_shell_image(unsigned long iter)
{
	for (unsigned int k = 0; k < CHILD_WRITES; k++) {
		unsigned int p = (iter + k * 5) % IMAGE_PAGES;
		u64 v = bench_read(image_va + p * PAGE + 16 + k * 8);

		bench_expect(v == image_pattern(p, 2 + k), "shell image after the child", v,
			     image_pattern(p, 2 + k));
	}
}

int main(void)
{
	unsigned long n = bench_param("n", 128), shell, shell_frames;
	u64 rng = 0x0f0e0d0c0b0a0908ull;

	if (!paging_init(PAGING_LONG)) {
		report_skip("4-level paging not available here");
		return report_summary();
	}
	image_va = paging_test_base();
	heap_va = image_va + (2ul << 20);			/* the next page table */
	stack_va = image_va + (1ul << 39) - STACK_PAGES * PAGE;	/* the last PDPTE */

	shell = bench_aspace_new();
	for (unsigned int p = 0; p < IMAGE_PAGES; p++) {
		u64 pa = pool_alloc();
		u64 *data = phys_to_virt(pa);

		for (unsigned int w = 0; w < PAGE / 8; w++)
			data[w] = image_pattern(p, w);
		parent_word1[p] = data[1];
		*frame_refs(pa) = 1;
		bench_map(shell, image_va + p * PAGE, pa, PTE_P | PTE_W | PTE_U);
	}
	shell_frames = pool.in_use;
	aspace_switch(shell);
	set_page_fault_handler(fork_fault);

	bench_begin();
	for (unsigned long i = 0; i < n; i++) {
		unsigned long child = fork_image(shell);
		unsigned int p = i % IMAGE_PAGES;

		/* The shell updates its state before the child runs: a COW copy. */
		memcpy(child_word1, parent_word1, sizeof(child_word1));
		parent_word1[p] = 0x5e1100000000ull | i;
		bench_write(image_va + p * PAGE + 8, parent_word1[p]);
		aspace_switch(child);
		run_child(&rng, i);
		aspace_switch(shell);
		bench_aspace_destroy(child, drop_frame);
		check_shell_image(i);
	}
	set_page_fault_handler(NULL);

	/* Every child frame and table is back in the pool; the shell owns each image frame. */
	bench_expect(pool.in_use == shell_frames, "frames in use after all exits", pool.in_use,
		     shell_frames);
	for (unsigned int p = 0; p < IMAGE_PAGES; p++) {
		u64 pa = *bench_pte(shell, image_va + p * PAGE, false) & PTE_ADDR_4K;

		bench_expect(*frame_refs(pa) == 1, "shell frame refcount", *frame_refs(pa), 1);
		bench_mix(bench_read(image_va + p * PAGE + 8));
	}
	aspace_switch(aspace_kernel());
	printf("bench: fork: %lu COW faults (%lu copies), %lu demand-zero faults, peak %lu "
	       "frames\n", faults_cow, faults_copy, faults_zero, pool.peak);
	return bench_end("fork", n);
}
