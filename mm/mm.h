/* Hypervisor memory set-up: frame pool, own page tables, heap. */
#ifndef MM_MM_H
#define MM_MM_H

#include "arch/x86/multiboot2.h"
#include "mm/frame.h"

/* Linker-script symbols (linker.ld). */
extern char __image_start[], __text_end[], __rodata_end[], __bss_start[], __image_end[];

void mm_init(const struct boot_info *bi);
/* boot/entry.S identity-maps this much; paging_init() at least as much. */
#define BOOT_IDENTITY_MAP_END (4ull << 30)
/* Highest physical address of usable RAM, page-aligned. */
u64 mm_ram_top(void);
void mm_print_summary(void);
/* A free page of RAM below 1 MiB, outside the frame pool (the first MiB is
 * never handed out), for starting other CPUs; 0 if there is none. */
u64 mm_low_page(void);

/* The host's frames (mm/mm.c). Other CPUs allocate too: take and give frames
 * through the functions below, which lock the pool, never frame_* directly. */
extern struct frame_pool host_frames;
/* count contiguous frames aligned to align bytes, not zeroed; 0 when there is
 * no such run. */
u64 host_frame_alloc(u64 count, u64 align);
void host_frame_free(u64 pa, u64 count);
/* Zeroed allocations from host_frames; they panic when memory runs out only
 * in the *_or_panic forms, used during boot. */
void *alloc_zeroed_pages(u64 count);
void free_pages(void *p, u64 count);
/* Grow the heap newlib's malloc uses (for mm/newlib_glue.c): NULL when it is full. */
void *heap_sbrk(long incr);

#endif
