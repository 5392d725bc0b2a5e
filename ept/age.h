/*
 * Host-side page ageing over a guest's EPT: each scan learns which guest
 * pages were used since the previous scan, without the guest's help.
 *
 * Two ways of learning "used":
 *  - EPT_AGE_AD: EPTP bit 6 is set, so the CPU sets the A bit (bit 8) of
 *    every EPT entry it uses, at every level (SDM 29.3.5). A non-leaf entry
 *    with A clear proves that nothing below it was used since we cleared it,
 *    so the scan skips the whole subtree.
 *  - EPT_AGE_TRACK: no A/D bits. The scan "tracks" leaves: it saves their
 *    R/W/X rights in ignored bits and removes them, so the next access is an
 *    EPT violation, which ept_age_fault() turns back into a retry.
 *
 * Ages are one byte per 4 KiB guest page (scans since last seen used,
 * saturating at EPT_AGE_MAX; pages start at 0 at init). To skip a subtree in
 * O(1) the ages are kept lazily: a pending byte per 2 MiB, 1 GiB and
 * 512 GiB region is added to every page below it (ept_age_page() does the
 * sum, ept_age_flatten() pushes everything down). A count of pages per age
 * is kept exact as the scan goes, so working sets and histograms cost
 * O(256), not O(pages).
 *
 * 2 MiB leaves (after ept_age_set_split()): a cold region keeps its 2 MiB
 * EPT page, aged as 512 pages at once. EPT_AGE_AD: a 2 MiB leaf the scan
 * finds used (A set: all 512 pages young) is split into 512 4 KiB leaves
 * (same host run, same attributes, the A bit as it is then), so later scans
 * see which of its pages are used. EPT_AGE_TRACK: the tracking fault on a
 * 2 MiB leaf splits it into 512 tracked 4 KiB leaves and untracks only the
 * page used, so ages stay exact. A block split that way is merged back into
 * one 2 MiB leaf once no 4 KiB leaf of it was used for merge_after scans in
 * a row. A split by the scan and every merge change bit 7 and the address of
 * a PDE, after which SDM 29.4.3.3 asks for INVEPT: the scan returns true. A table a merge unlinks may still
 * be in the paging-structure caches until that INVEPT, so it is freed by the
 * next scan (or ept_age_release()), never by the scan that unlinked it.
 *
 * Calling rules (the hypervisor's side):
 *  - ept_age_scan() from the scan timer while no vCPU of the guest runs;
 *    if it returns true, do one INVEPT (single-context, this EPTP) before the
 *    guest runs again (why: see ept_age_scan() in age.c).
 *  - EPT_AGE_TRACK only: ept_age_fault() first thing in the EPT-violation
 *    handler; true means "tracking fault, resume the guest" (no flush).
 *  - A tracked leaf has R/W/X clear, so pt_lookup()/pt_map() see it as not
 *    present: call ept_age_untrack_all() before changing the EPT's mappings
 *    or leaving tracking mode. Scan and fault for one guest must not run
 *    concurrently with each other (they update the same ages).
 */
#ifndef EPT_AGE_H
#define EPT_AGE_H

#include "lib/types.h"
#include "mm/age_count.h"
#include "mm/pte.h"

#define EPT_AGE_MAX AGE_MAX

/*
 * Where a tracked leaf keeps its rights: R/W/X move to bits 52-54. In EPT
 * leaf entries (SDM 29.3.2, the formats of entries mapping 1 GiB, 2 MiB and
 * 4 KiB pages) bits 56:52 are ignored whatever the VM-execution controls,
 * whereas 57, 58, 60, 61 and 63 gain meanings with optional controls
 * (guest-paging verification, paging-write, shadow stacks, SPP, #VE). KVM
 * uses bits 54-56 the same way.
 * With R/W/X clear the entry is not present (bit 10 would count too with
 * mode-based execute control, which umbra does not enable).
 */
#define EPT_AGE_SAVED_SHIFT 52
#define EPT_AGE_SAVED_RWX (EPT_RWX << EPT_AGE_SAVED_SHIFT)

enum ept_age_mode { EPT_AGE_AD, EPT_AGE_TRACK };

/* No cap on leaves newly tracked per scan. */
#define EPT_AGE_NO_LIMIT (~0ull)

/* Age histogram buckets: 0, 1, 2-3, 4-7, 8-15, 16 and more. */
#define EPT_AGE_BUCKETS AGE_BUCKETS

struct ept_age {
	enum ept_age_mode mode;
	u64 pages;              /* guest pages: gfn 0 .. pages-1 are aged */
	u8 *age;                /* [pages]: per-page part of the age */
	u8 *pending[3];         /* per 2 MiB, 1 GiB, 512 GiB region: added below */
	u64 count[EPT_AGE_MAX + 1];  /* pages of each age, exact */
	/* EPT_AGE_TRACK: leaves newly tracked per scan. The 511 tracked leaves a
	 * fault split leaves behind are not counted: between two scans they cost
	 * at most the faults the block's 4 KiB pages would cost under scan_pages=4k. */
	u64 max_track;
	u64 track_cursor;       /* gfn where tracking resumes at the next scan */
	u64 faults;             /* tracking faults since the last scan */
	u64 scans;
	/* Splitting 2 MiB leaves (ept_age_set_split; EPT_AGE_AD only). */
	u8 *block;              /* per 2 MiB region: BLOCK_SPLIT | cold scans */
	u16 *split_count;       /* per 1 GiB region: blocks split by ageing */
	void *(*alloc_table)(void *ctx);   /* a zeroed 4 KiB table, or NULL */
	void (*free_table)(void *table, void *ctx);
	void *table_ctx;
	unsigned int merge_after;          /* cold scans before a merge */
	u64 *unlinked;          /* tables merges unlinked, freed at the next scan */
	u64 split_blocks;       /* 2 MiB regions split by ageing now */
	u64 fault_splits;       /* EPT_AGE_TRACK: splits by faults since the last scan */
};

/* Cold scans in a row after which a split 2 MiB block is merged back. */
#define EPT_AGE_MERGE_SCANS 16

/* What one scan did. */
struct ept_age_stats {
	u64 entries_visited;    /* EPT entries read */
	u64 subtrees_skipped;   /* non-leaf entries with A clear (EPT_AGE_AD) */
	u64 pages_young;        /* pages used since the previous scan */
	u64 leaves_tracked;     /* EPT_AGE_TRACK: leaves newly tracked */
	u64 leaves_idle;        /* EPT_AGE_TRACK: still tracked, so not used */
	u64 leaves_deferred;    /* EPT_AGE_TRACK: not tracked, cap reached */
	u64 tracking_faults;    /* EPT_AGE_TRACK: faults since the previous scan */
	u64 splits;             /* 2 MiB leaves split into 4 KiB leaves */
	u64 merges;             /* split blocks merged back into 2 MiB leaves */
	u64 split_blocks;       /* 2 MiB regions split by ageing after the scan */
	bool flush_needed;      /* the return value of ept_age_scan() */
};

/* Bytes of the buffer ept_age_init() needs for 'pages' guest pages. */
u64 ept_age_buffer_size(u64 pages);

/*
 * Start ageing gfns [0, pages) with 'buf' (ept_age_buffer_size(pages)
 * bytes, 2-byte aligned, owned by the caller). max_track bounds the leaves
 * newly tracked per scan in EPT_AGE_TRACK mode (EPT_AGE_NO_LIMIT: none).
 */
void ept_age_init(struct ept_age *s, void *buf, u64 pages, enum ept_age_mode mode,
		  u64 max_track);

/*
 * Split used 2 MiB leaves and merge blocks back after
 * merge_after (>= 1) cold scans, with tables from alloc_table (a failed
 * allocation leaves the 2 MiB leaf as it is) given back through free_table.
 */
void ept_age_set_split(struct ept_age *s, void *(*alloc_table)(void *ctx),
		       void (*free_table)(void *table, void *ctx), void *ctx,
		       unsigned int merge_after);

/* Free the tables merges unlinked; only after the INVEPT of their scan. */
void ept_age_release(struct ept_age *s);

/*
 * One ageing pass over the 4-level EPT at 'root' (pointer == physical
 * address, as built by pt_map with ept_format). Every page gets one scan
 * older, or age 0 if it was used. Returns true if the caller must INVEPT
 * once before the guest runs again. 'st' may be NULL.
 */
bool ept_age_scan(struct ept_age *s, u64 *root, struct ept_age_stats *st);

/*
 * EPT-violation fast path (EPT_AGE_TRACK): if the leaf mapping 'gpa' is
 * tracked, give its rights back, make its pages age 0 and return true (the
 * guest just retries the access; no flush needed). Otherwise return false:
 * a real violation.
 */
bool ept_age_fault(struct ept_age *s, u64 *root, u64 gpa);

/* Give every tracked leaf its rights back (no flush needed). */
void ept_age_untrack_all(u64 *root);

/* The age of one page (gfn < pages). */
u8 ept_age_page(const struct ept_age *s, u64 gfn);

/* Push all pending ages down, so s->age[gfn] is exactly each page's age. */
void ept_age_flatten(struct ept_age *s);

/* Pages with age < k: used in the last k scan intervals (k <= 256). */
u64 ept_age_working_set(const struct ept_age *s, unsigned int k);

/* hist[b]: pages whose age is in bucket b (0, 1, 2-3, 4-7, 8-15, 16+). */
void ept_age_histogram(const struct ept_age *s, u64 hist[EPT_AGE_BUCKETS]);

#endif
