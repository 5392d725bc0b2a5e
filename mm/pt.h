/*
 * A 4-level page-table builder for 64-bit entry formats, shared by the
 * hypervisor's own page tables (mm/paging.c) and the EPT (ept/ept.c). The
 * format differences (which bits make an entry present, how a large page is
 * marked, what a table pointer carries) are data in struct pt_format.
 * Table memory is addressed through identity mapping (pointer == physical).
 */
#ifndef MM_PT_H
#define MM_PT_H

#include "lib/types.h"

struct pt_format {
	const char *name;
	u64 present_mask;   /* any of these bits set = entry present */
	u64 table_flags;    /* bits of an entry pointing to a lower table */
	u64 large_flag;     /* marks a 2 MiB / 1 GiB leaf */
	u64 addr_mask;      /* physical address bits of an entry */
	/* The PAT bit moves between a large leaf and a 4 KiB one (host format:
	 * bit 12 vs bit 7, SDM 4.5); 0 where the format has no such bit. */
	u64 large_pat, small_pat;
};

extern const struct pt_format host_pt_format;
extern const struct pt_format ept_format;

/* Returns a zeroed 4 KiB table (pointer == physical address), or NULL. */
typedef void *(*pt_alloc_fn)(void *ctx);

enum pt_level { PT_LEVEL_4K = 1, PT_LEVEL_2M = 2, PT_LEVEL_1G = 3 };

/*
 * Map [va, va+size) to [pa, pa+size) with leaf entries 'leaf_flags', using
 * pages of 'level' (addresses and size must be aligned to it). Existing
 * large leaves in the way are split. Returns false if allocation failed, or
 * if a large leaf would replace an existing lower table (unsupported: its
 * tables would leak).
 */
bool pt_map(const struct pt_format *fmt, u64 *root, u64 va, u64 pa, u64 size,
	    u64 leaf_flags, enum pt_level level, pt_alloc_fn alloc, void *ctx);

/* The leaf entry mapping va and its level, or NULL if not mapped. */
u64 *pt_lookup(const struct pt_format *fmt, u64 *root, u64 va, enum pt_level *level);

/* Free every table below root (not root itself), calling free_fn per table. */
void pt_free_tables(const struct pt_format *fmt, u64 *root, void (*free_fn)(void *table, void *ctx),
		    void *ctx);

static inline u64 pt_level_size(enum pt_level level)
{
	return 1ull << (12 + 9 * (level - 1));
}

#endif
