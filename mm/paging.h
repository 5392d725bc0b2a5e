/* The hypervisor's own page tables (mm/paging.c). */
#ifndef MM_PAGING_H
#define MM_PAGING_H

#include "lib/types.h"

/* Replace the boot page tables with ones that protect the image. */
void paging_init(void);
/* After paging_init(): identity-map device memory above the RAM map (a framebuffer). */
void paging_map_device(u64 start, u64 end);

#endif
