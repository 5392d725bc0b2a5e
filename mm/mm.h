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

/* The host's frames (mm/mm.c). */
extern struct frame_pool host_frames;
/* Zeroed allocations from host_frames; they panic when memory runs out only
 * in the *_or_panic forms, used during boot. */
void *alloc_zeroed_pages(u64 count);
void free_pages(void *p, u64 count);
/* Grow the heap newlib's malloc uses (for mm/newlib_glue.c): NULL when it is full. */
void *heap_sbrk(long incr);

#endif
