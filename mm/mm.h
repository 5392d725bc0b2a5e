/* Hypervisor memory set-up: frame pool, own page tables, heap. */
#ifndef MM_MM_H
#define MM_MM_H

#include "boot/bootinfo.h"

/* Linker-script symbols (linker.ld). */
extern char __image_start[], __text_end[], __rodata_end[], __bss_start[], __image_end[];

void mm_init(const struct boot_info *bi);
/* Replace the boot page tables with ones that protect the image. */
void paging_init(void);
/* boot/entry.S identity-maps this much; paging_init() at least as much. */
#define BOOT_IDENTITY_MAP_END (4ull << 30)
/* After paging_init(): identity-map device memory above the RAM map (a framebuffer). */
void paging_map_device(u64 start, u64 end);
/* Highest physical address of usable RAM, page-aligned. */
u64 mm_ram_top(void);
void mm_print_summary(void);

#endif
