/*
 * Memory bring-up from the boot information: build the frame pool from the
 * memory map, keeping out what must survive (the first MiB with BIOS data,
 * the hypervisor image, the multiboot information and the guest modules),
 * then carve out the heap that newlib's malloc grows into.
 */
#include <string.h>
#include "mm/mm.h"
#include "mm/frame.h"
#include "arch/x86/log.h"
#include "arch/x86/spinlock.h"
#include "arch/x86/panic.h"

#define LOW_MEMORY_END 0x100000ull
#define BOOT_MAPPED_END (4ull << 30)   /* what boot/entry.S identity-maps */
#define HEAP_SIZE (4ull << 20)
#define MAX_RESERVED (BOOT_MAX_MODULES + 4)

struct range {
	u64 start, end;
};

struct frame_pool host_frames;
/* The pool's bitmap and counters are one structure all CPUs allocate from:
 * one lock, held only for the bitmap search or update (zeroing is outside). */
static spinlock_t frames_lock;
static u64 ram_top;
static u8 *heap_start, *heap_end, *heap_brk;
static u64 low_page;

u64 mm_ram_top(void)
{
	return ram_top;
}

static int collect_reserved(const struct boot_info *bi, struct range *r)
{
	int n = 0;

	r[n++] = (struct range){ 0, LOW_MEMORY_END };
	r[n++] = (struct range){ (u64)__image_start, ALIGN_UP((u64)__image_end, PAGE_SIZE) };
	r[n++] = (struct range){ ALIGN_DOWN(bi->info_start, PAGE_SIZE),
				 ALIGN_UP(bi->info_end, PAGE_SIZE) };
	for (int i = 0; i < bi->module_count; i++)
		r[n++] = (struct range){ ALIGN_DOWN(bi->modules[i].start, PAGE_SIZE),
					 ALIGN_UP(bi->modules[i].end, PAGE_SIZE) };
	return n;
}

/* Lowest page-aligned [start, start+size) in available RAM below 'limit'
 * that avoids every reserved range; 0 if none. */
static u64 find_free_range(const struct boot_info *bi, const struct range *res, int nres,
			   u64 size, u64 limit)
{
	for (int i = 0; i < bi->mem_count; i++) {
		const struct mem_region *m = &bi->mem[i];
		u64 start = ALIGN_UP(m->base, PAGE_SIZE), end = m->base + m->length;
		bool moved = true;

		if (m->type != MEM_AVAILABLE)
			continue;
		if (end > limit)
			end = limit;
		while (moved && start + size <= end) {
			moved = false;
			for (int j = 0; j < nres; j++) {
				if (start < res[j].end && res[j].start < start + size) {
					start = ALIGN_UP(res[j].end, PAGE_SIZE);
					moved = true;
				}
			}
		}
		if (start + size <= end)
			return start;
	}
	return 0;
}

void mm_init(const struct boot_info *bi)
{
	struct range res[MAX_RESERVED];
	int nres = collect_reserved(bi, res);
	u64 bitmap_bytes, bitmap_at, heap_at;

	for (int i = 0; i < bi->mem_count; i++) {
		const struct mem_region *m = &bi->mem[i];

		if (m->type == MEM_AVAILABLE && m->base + m->length > ram_top)
			ram_top = ALIGN_DOWN(m->base + m->length, PAGE_SIZE);
	}
	bitmap_bytes = ALIGN_UP(frame_bitmap_bytes(ram_top), PAGE_SIZE);
	bitmap_at = find_free_range(bi, res, nres, bitmap_bytes, BOOT_MAPPED_END);
	if (!bitmap_at)
		panic("no room below 4 GiB for the %llu-byte frame bitmap",
		      (unsigned long long)bitmap_bytes);

	frame_pool_init(&host_frames, (u64 *)bitmap_at, ram_top);
	for (int i = 0; i < bi->mem_count; i++)
		if (bi->mem[i].type == MEM_AVAILABLE)
			frame_pool_add_free(&host_frames, bi->mem[i].base, bi->mem[i].length);
	for (int i = 0; i < nres; i++)
		frame_pool_reserve(&host_frames, res[i].start, res[i].end - res[i].start);
	frame_pool_reserve(&host_frames, bitmap_at, bitmap_bytes);

	/* A page below 1 MiB for the APs' real-mode start (boot/smp.c): RAM the
	 * boot information does not use, never page 0. */
	res[0] = (struct range){ 0, PAGE_SIZE };
	low_page = find_free_range(bi, res, nres, PAGE_SIZE, LOW_MEMORY_END);

	heap_at = frame_alloc_run(&host_frames, HEAP_SIZE / PAGE_SIZE, PAGE_SIZE);
	if (!heap_at || heap_at + HEAP_SIZE > BOOT_MAPPED_END)
		panic("cannot allocate the %llu MiB heap", (unsigned long long)(HEAP_SIZE >> 20));
	heap_start = heap_brk = (u8 *)heap_at;
	heap_end = heap_start + HEAP_SIZE;
}

u64 mm_low_page(void)
{
	return low_page;
}

void mm_print_summary(void)
{
	pr_info("memory: RAM top %llu MiB, %llu frames free, %llu used, heap %llu KiB used",
		(unsigned long long)(ram_top >> 20),
		(unsigned long long)frame_pool_free(&host_frames),
		(unsigned long long)frame_pool_used(&host_frames),
		(unsigned long long)((heap_brk - heap_start) >> 10));
}

u64 host_frame_alloc(u64 count, u64 align)
{
	u64 pa;

	spin_lock(&frames_lock);
	pa = frame_alloc_run(&host_frames, count, align);
	spin_unlock(&frames_lock);
	return pa;
}

void host_frame_free(u64 pa, u64 count)
{
	spin_lock(&frames_lock);
	frame_free_run(&host_frames, pa, count);
	spin_unlock(&frames_lock);
}

void *alloc_zeroed_pages(u64 count)
{
	u64 pa = host_frame_alloc(count, PAGE_SIZE);

	if (!pa)
		return NULL;
	memset((void *)pa, 0, count * PAGE_SIZE);
	return (void *)pa;
}

void free_pages(void *p, u64 count)
{
	host_frame_free((u64)p, count);
}

/* newlib's malloc grows the heap through sbrk (mm/newlib_glue.c). */
void *heap_sbrk(long incr)
{
	u8 *old = heap_brk;

	if (incr < 0 || heap_brk + incr > heap_end)
		return NULL;
	heap_brk += incr;
	return old;
}
