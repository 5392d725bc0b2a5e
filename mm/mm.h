/* Hypervisor memory set-up: frame pool, own page tables, heap. */
#ifndef MM_MM_H
#define MM_MM_H

#include "boot/bootinfo.h"

/* Linker-script symbols (linker.ld). */
extern char __image_start[], __text_end[], __rodata_end[], __bss_start[], __image_end[];

void mm_init(const struct boot_info *bi);
/* Replace the boot page tables with ones that protect the image. */
void paging_init(void);
/* Highest physical address of usable RAM, page-aligned. */
u64 mm_ram_top(void);
void mm_print_summary(void);

#endif
