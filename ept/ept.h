/*
 * Building an EPT (SDM Vol. 3C 29.3) over a guest's RAM: 2 MiB pages where
 * a 2 MiB block of guest RAM is one aligned host run of one memory type,
 * 4 KiB pages otherwise, each leaf with the type its host frames have in
 * the host's MTRRs. Anything not mapped is not the guest's: an access there
 * is an EPT violation. Pure logic (host unit-tested); tables come from the
 * caller's allocator and the caller flushes (INVEPT) after changes.
 */
#ifndef EPT_EPT_H
#define EPT_EPT_H

#include "lib/types.h"
#include "mm/mtrr.h"

struct ept {
	u64 *root;          /* PML4, pointer == physical address */
	u64 eptp;           /* EPT pointer for the VMCS (SDM 25.6.11) */
	void *(*alloc_table)(void *ctx);   /* a zeroed 4 KiB table, or NULL */
	void (*free_table)(void *table, void *ctx);
	void *ctx;
	u64 small_blocks;   /* 2 MiB blocks mapped with 4 KiB pages */
	u64 large_blocks;   /* 2 MiB blocks mapped with one 2 MiB page */
};

/*
 * Map guest-physical [0, pages * 4 KiB) onto page_hpa[]. small_only: map
 * everything with 4 KiB pages (page ageing wants an A bit per page);
 * ad: the CPU keeps EPT A/D bits (EPTP bit 6). e->alloc_table, free_table
 * and ctx must be set. False when a table could not be allocated (call
 * ept_destroy() anyway).
 */
bool ept_build(struct ept *e, const u64 *page_hpa, u64 pages, const struct mtrr_state *mtrrs,
	       bool small_only, bool ad);
void ept_destroy(struct ept *e);

#endif
