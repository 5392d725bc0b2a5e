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
	u64 max_track;          /* EPT_AGE_TRACK: leaves newly tracked per scan */
	u64 track_cursor;       /* gfn where tracking resumes at the next scan */
	u64 faults;             /* tracking faults since the last scan */
	u64 scans;
};

/* What one scan did. */
struct ept_age_stats {
	u64 entries_visited;    /* EPT entries read */
	u64 subtrees_skipped;   /* non-leaf entries with A clear (EPT_AGE_AD) */
	u64 pages_young;        /* pages used since the previous scan */
	u64 leaves_tracked;     /* EPT_AGE_TRACK: leaves newly tracked */
	u64 leaves_idle;        /* EPT_AGE_TRACK: still tracked, so not used */
	u64 leaves_deferred;    /* EPT_AGE_TRACK: not tracked, cap reached */
	u64 tracking_faults;    /* EPT_AGE_TRACK: faults since the previous scan */
	bool flush_needed;      /* the return value of ept_age_scan() */
};

/* Bytes of the buffer ept_age_init() needs for 'pages' guest pages. */
u64 ept_age_buffer_size(u64 pages);

/*
 * Start ageing gfns [0, pages) with 'buf' (ept_age_buffer_size(pages)
 * bytes, any alignment, owned by the caller). max_track bounds the leaves
 * newly tracked per scan in EPT_AGE_TRACK mode (EPT_AGE_NO_LIMIT: none).
 */
void ept_age_init(struct ept_age *s, void *buf, u64 pages, enum ept_age_mode mode,
		  u64 max_track);

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
