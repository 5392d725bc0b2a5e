/* Guest RAM: allocation, and access by guest-physical address (guest/memory.c). */
#ifndef GUEST_MEMORY_H
#define GUEST_MEMORY_H

#include "guest/guest.h"

/* Allocate and zero g->cfg.mem bytes of RAM (2 MiB runs where the host has them). */
bool guest_memory_init(struct guest *g);
void guest_memory_free(struct guest *g);
/* Host-physical address of the aligned 2 MiB host run backing the 512 guest
 * frames from gfn (512-aligned, inside RAM), or 0 when they are not one run. */
u64 guest_memory_run_2m(struct guest *g, u64 gfn);
/* Guest-physical to host pointer for RAM, NULL outside RAM. len must not
 * cross a 4 KiB page. */
void *guest_gpa_ptr(struct guest *g, u64 gpa, u64 len);
/* Copy into guest-physical memory (the loader, firmware tables); false if
 * outside RAM. Not for guest page tables once the guest runs: see mmu_store(). */
bool guest_copy_to(struct guest *g, u64 gpa, const void *src, u64 len);

#endif
