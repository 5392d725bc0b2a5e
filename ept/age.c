/*
 * Page ageing over a guest's EPT (see age.h): the hierarchical A-bit scan,
 * the access-tracking fallback with its EPT-violation fast path, and the
 * lazy per-page ages with exact per-age counts behind the working-set
 * estimates. Pure logic: the caller does INVEPT and owns all memory.
 *
 * Age bookkeeping. The age of page gfn is
 *     min(255, age[gfn] + pending 2 MiB + pending 1 GiB + pending 512 GiB)
 * (each byte saturates on its own, which keeps the sum right). Ageing a
 * whole region is one increment of its pending byte; before the scan looks
 * inside a region it "settles" it (adds its pending byte to the 512 parts
 * below), which costs no more than reading the 512 entries it is about to
 * read anyway. count[a] is the number of pages of age a. A scan first shifts
 * count[] as if every page got older; each page the scan then finds used
 * (or leaves unchanged) is moved to its right bucket, one page at a time, so
 * the counts stay exact at a cost proportional to the pages found used.
 */
#include <string.h>

#include "ept/age.h"
#include "mm/pt.h"

/* Per 2 MiB region (s->block): split by ageing, and cold scans since. */
#define BLOCK_SPLIT 0x80
#define BLOCK_COLD 0x7f

/* Guest pages covered by one entry at 'level' (1: 4 KiB ... 4: 512 GiB). */
static u64 span(int level)
{
	return 1ull << (9 * (level - 1));
}

static u8 sat_add(unsigned int a, unsigned int b)
{
	return a + b > EPT_AGE_MAX ? EPT_AGE_MAX : a + b;
}

static u64 min_u64(u64 a, u64 b)
{
	return a < b ? a : b;
}

static u64 regions(u64 pages, int level)
{
	return (pages + span(level) - 1) / span(level);
}

/* Pending byte of the region at 'level' (2..4) that contains gfn. */
static u8 *pending(const struct ept_age *s, int level, u64 gfn)
{
	return &s->pending[level - 2][gfn >> (9 * (level - 1))];
}

/* A tracked leaf: rights moved to the saved bits, so not present. */
static bool is_tracked(u64 e)
{
	return !(e & EPT_RWX) && (e & EPT_AGE_SAVED_RWX);
}

static bool is_mapped(u64 e)
{
	return (e & EPT_RWX) || is_tracked(e);
}

/* Bit 7 is reserved in a PML4E, so only levels 1-3 hold leaves. */
static bool is_leaf(u64 e, int level)
{
	return level == 1 || (level <= 3 && (e & EPT_LARGE));
}

static u64 *child_table(u64 e)
{
	return (u64 *)(uintptr_t)(e & PTE_ADDR_MASK52);
}

u64 ept_age_buffer_size(u64 pages)
{
	u64 size = pages;

	for (int level = 2; level <= 4; level++)
		size += regions(pages, level);
	/* s->split_count, s->block */
	return size + 2 * regions(pages, 3) + regions(pages, 2);
}

void ept_age_init(struct ept_age *s, void *buf, u64 pages, enum ept_age_mode mode,
		  u64 max_track)
{
	u8 *p = buf;

	memset(s, 0, sizeof(*s));
	memset(buf, 0, ept_age_buffer_size(pages));
	s->mode = mode;
	s->pages = pages;
	s->max_track = max_track;
	s->split_count = (u16 *)buf;  /* first: the buffer is 2-byte aligned */
	p += 2 * regions(pages, 3);
	s->age = p;
	p += pages;
	for (int level = 2; level <= 4; level++) {
		s->pending[level - 2] = p;
		p += regions(pages, level);
	}
	s->block = p;
	s->count[0] = pages;
}

void ept_age_set_split(struct ept_age *s, void *(*alloc_table)(void *ctx),
		       void (*free_table)(void *table, void *ctx), void *ctx,
		       unsigned int merge_after)
{
	s->alloc_table = alloc_table;
	s->free_table = free_table;
	s->table_ctx = ctx;
	s->merge_after = merge_after < 1 ? 1 : merge_after > BLOCK_COLD ? BLOCK_COLD : merge_after;
}

void ept_age_release(struct ept_age *s)
{
	while (s->unlinked) {
		u64 *t = s->unlinked;

		s->unlinked = (u64 *)(uintptr_t)t[0];
		s->free_table(t, s->table_ctx);
	}
}

/* Splitting and merging 2 MiB leaves: only with a table allocator. */
static bool splitting(const struct ept_age *s)
{
	return s->alloc_table;
}

/* 512 4 KiB leaves with the 2 MiB leaf e's host run and attributes. */
static u64 *split_table(struct ept_age *s, u64 e)
{
	u64 hpa = e & PTE_ADDR_MASK52, attrs = e & ~PTE_ADDR_MASK52 & ~EPT_LARGE;
	u64 *t = s->alloc_table(s->table_ctx);

	for (int i = 0; t && i < PT_ENTRIES; i++)
		t[i] = (hpa + (u64)i * PAGE_SIZE) | attrs;
	return t;
}

/* Link table t in place of the 2 MiB leaf e at ep, unless the entry changed. */
static bool link_split(struct ept_age *s, u64 *ep, u64 e, u64 *t, u64 gfn)
{
	if (!__atomic_compare_exchange_n(ep, &e, (u64)(uintptr_t)t | ept_format.table_flags,
					 false, __ATOMIC_RELAXED, __ATOMIC_RELAXED)) {
		s->free_table(t, s->table_ctx);
		return false;
	}
	s->block[gfn >> 9] = BLOCK_SPLIT;
	s->split_count[gfn >> 18]++;
	s->split_blocks++;
	return true;
}

/* Every page of the region one scan older, in O(1). */
static void region_age(struct ept_age *s, int level, u64 gfn)
{
	u8 *p;

	if (gfn >= s->pages)
		return;
	p = level == 1 ? &s->age[gfn] : pending(s, level, gfn);
	*p = sat_add(*p, 1);
}

/* Add the region's pending byte to the parts one level below it. */
static void settle(struct ept_age *s, int level, u64 gfn)
{
	u64 end = min_u64(gfn + span(level), s->pages);
	u8 *p, v;

	if (gfn >= s->pages || !*(p = pending(s, level, gfn)))
		return;
	v = *p;
	*p = 0;
	for (u64 c = gfn; c < end; c += span(level - 1)) {
		u8 *q = level == 2 ? &s->age[c] : pending(s, level - 1, c);

		*q = sat_add(*q, v);
	}
}

enum page_op {
	YOUNG_IN_SCAN,  /* used since the last scan; count[] is pre-shifted */
	YOUNG_NOW,      /* tracking fault between scans; count[] is not shifted */
	UNCHANGED,      /* scan learned nothing: undo the pre-shift */
};

/*
 * Apply 'op' to every page of the region (its pending bytes plus 'above',
 * what the levels over it still owe). Returns the number of pages.
 */
static u64 region_apply(struct ept_age *s, int level, u64 gfn, unsigned int above,
			enum page_op op)
{
	u64 end = min_u64(gfn + span(level), s->pages), n = 0;

	if (gfn >= s->pages)
		return 0;
	if (level == 1) {
		u8 old = sat_add(s->age[gfn], above);

		if (op == UNCHANGED) {
			s->count[sat_add(old, 1)]--;
			s->count[old]++;
		} else {
			s->count[op == YOUNG_IN_SCAN ? sat_add(old, 1) : old]--;
			s->count[0]++;
			s->age[gfn] = 0;
		}
		return 1;
	}
	above = sat_add(above, *pending(s, level, gfn));
	if (op != UNCHANGED)
		*pending(s, level, gfn) = 0;
	for (u64 c = gfn; c < end; c += span(level - 1))
		n += region_apply(s, level - 1, c, above, op);
	return n;
}

/* Pre-shift for a scan: count every page as one scan older. */
static void shift_counts(struct ept_age *s)
{
	s->count[EPT_AGE_MAX] += s->count[EPT_AGE_MAX - 1];
	for (int a = EPT_AGE_MAX - 1; a > 0; a--)
		s->count[a] = s->count[a - 1];
	s->count[0] = 0;
}

/* One scan's walk state. */
struct walk {
	struct ept_age *s;
	struct ept_age_stats st;
	u64 end;               /* gfn where the walk stops */
	bool ageing;           /* false: the second, tracking-only walk */
	u64 track_from;        /* leaves below this gfn are not tracked */
	u64 track_left;        /* leaves this scan may still newly track */
	u64 track_end;         /* gfn just after the last newly tracked leaf */
};

static void clear_accessed(struct walk *w, u64 *ep)
{
	/* Atomic: the CPU may set D in a leaf while we clear A. */
	__atomic_fetch_and(ep, ~EPT_A, __ATOMIC_RELAXED);
	w->st.flush_needed = true;
}

/*
 * A 2 MiB leaf found used: 512 4 KiB leaves over the same host run with its
 * attributes (type, IPAT, rights, A and D as they are now: this scan has
 * already taken its A), so the next scans see which pages are used.
 */
static void split_leaf(struct walk *w, u64 *ep, u64 gfn)
{
	struct ept_age *s = w->s;
	u64 e = __atomic_load_n(ep, __ATOMIC_RELAXED);
	u64 *t = split_table(s, e);

	/* No memory: it stays a 2 MiB page, aged as one. If the CPU set D
	 * meanwhile the copy is stale: keep the leaf too. */
	if (!t || !link_split(s, ep, e, t, gfn))
		return;
	w->st.splits++;
	/* Bit 7 and the address changed (SDM 29.4.3.3). */
	w->st.flush_needed = true;
}

/*
 * A block split by ageing, cold for merge_after scans: one 2 MiB leaf again
 * if its 512 leaves still map one aligned run with the same attributes and
 * none has A (D is kept). The table is freed at the next scan: until the
 * INVEPT of this one the CPU may still walk it from a cached PDE.
 */
static void merge_block(struct walk *w, u64 *ep, u64 gfn)
{
	struct ept_age *s = w->s;
	u64 e = __atomic_load_n(ep, __ATOMIC_RELAXED), *t = child_table(e);
	u64 first = __atomic_load_n(&t[0], __ATOMIC_RELAXED);
	u64 base = first & PTE_ADDR_MASK52, attrs = first & ~PTE_ADDR_MASK52 & ~(EPT_A | EPT_D);
	u64 dirty = 0;

	if (base & (LARGE_PAGE_SIZE - 1))
		return;
	for (int i = 0; i < PT_ENTRIES; i++) {
		u64 x = __atomic_load_n(&t[i], __ATOMIC_RELAXED);

		w->st.entries_visited++;
		if ((x & PTE_ADDR_MASK52) != base + (u64)i * PAGE_SIZE || (x & EPT_A) ||
		    (x & ~PTE_ADDR_MASK52 & ~(EPT_A | EPT_D)) != attrs)
			return;
		dirty |= x & EPT_D;
	}
	if (!__atomic_compare_exchange_n(ep, &e, base | attrs | dirty | EPT_LARGE, false,
					 __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		return;
	t[0] = (u64)(uintptr_t)s->unlinked;
	s->unlinked = t;
	s->block[gfn >> 9] = 0;
	s->split_count[gfn >> 18]--;
	s->split_blocks--;
	w->st.merges++;
	/* Bit 7 and the address changed (a tracked leaf: rights went too). */
	w->st.flush_needed = true;
}

/* A split block after this scan: used (stays split) or one more cold scan. */
static void block_scanned(struct walk *w, u64 *ep, u64 gfn, bool used)
{
	struct ept_age *s = w->s;
	u8 *b = &s->block[gfn >> 9];

	if (!splitting(s) || !(*b & BLOCK_SPLIT))
		return;
	if (used) {
		*b = BLOCK_SPLIT;
		return;
	}
	if ((*b & BLOCK_COLD) < BLOCK_COLD)
		(*b)++;
	if ((*b & BLOCK_COLD) >= s->merge_after)
		merge_block(w, ep, gfn);
}

/* Whether the region of the entry at 'level' holds blocks split by ageing. */
static bool split_below(const struct ept_age *s, int level, u64 gfn)
{
	if (!s->split_blocks)
		return false;
	if (level == 2)
		return s->block[gfn >> 9] & BLOCK_SPLIT;
	if (level == 3)
		return s->split_count[gfn >> 18];
	for (u64 g = gfn; g < gfn + span(level) && g < s->pages; g += span(3))
		if (s->split_count[g >> 18])
			return true;
	return false;
}

/*
 * Below an upper entry with A clear nothing was used since the last scan,
 * so each split block there is one scan colder: read only the entries on
 * the way to those blocks (none once every block is merged back).
 */
static void cold_walk(struct walk *w, u64 *table, int level, u64 base)
{
	for (int i = 0; i < PT_ENTRIES; i++) {
		u64 gfn = base + i * span(level);
		u64 e;

		if (gfn >= w->end)
			return;
		if (!split_below(w->s, level, gfn))
			continue;
		w->st.entries_visited++;
		e = __atomic_load_n(&table[i], __ATOMIC_RELAXED);
		if (!(e & EPT_RWX) || is_leaf(e, level))
			continue;
		if (level == 2)
			block_scanned(w, &table[i], gfn, false);
		else
			cold_walk(w, child_table(e), level - 1, gfn);
	}
}

/* EPT_AGE_TRACK: a leaf the guest had to have used to lose its tracking. */
static void track_leaf(struct walk *w, u64 *ep, u64 e, int level, u64 gfn)
{
	u64 tracked = (e & ~EPT_RWX) | ((e & EPT_RWX) << EPT_AGE_SAVED_SHIFT);

	__atomic_store_n(ep, tracked, __ATOMIC_RELAXED);
	w->track_left--;
	w->track_end = gfn + span(level);
	w->st.leaves_tracked++;
	/* Removing rights: the TLB may still hold the old ones (see ept_age_scan). */
	w->st.flush_needed = true;
}

static void visit_leaf(struct walk *w, u64 *ep, u64 e, int level, u64 gfn)
{
	struct ept_age *s = w->s;

	if (s->mode == EPT_AGE_AD) {
		if (e & EPT_A) {
			w->st.pages_young += region_apply(s, level, gfn, 0, YOUNG_IN_SCAN);
			clear_accessed(w, ep);
		} else {
			region_age(s, level, gfn);
		}
		return;
	}
	if (is_tracked(e)) {
		/* Still tracked: no access since it was tracked. */
		if (w->ageing) {
			w->st.leaves_idle++;
			region_age(s, level, gfn);
		}
		return;
	}
	/*
	 * Has its rights: either a tracking fault made its pages age 0 already,
	 * or it was not tracked (cap) and we know nothing. Keep its ages.
	 */
	if (w->ageing)
		region_apply(s, level, gfn, 0, UNCHANGED);
	if (!w->ageing && w->track_left) {
		/* Second walk: it was counted deferred by the first one. */
		w->st.leaves_deferred--;
		track_leaf(w, ep, e, level, gfn);
	} else if (gfn < w->track_from || !w->track_left) {
		w->st.leaves_deferred++;
	} else {
		track_leaf(w, ep, e, level, gfn);
	}
}

/* Walk the entries of 'table' (at 'level', first gfn 'base') below w->end. */
static void walk_table(struct walk *w, u64 *table, int level, u64 base)
{
	struct ept_age *s = w->s;

	for (int i = 0; i < PT_ENTRIES; i++) {
		u64 gfn = base + i * span(level);
		u64 *ep = &table[i];
		u64 e;

		if (gfn >= w->end || (!w->ageing && !w->track_left))
			return;
		w->st.entries_visited++;
		e = __atomic_load_n(ep, __ATOMIC_RELAXED);
		if (!is_mapped(e)) {
			if (w->ageing)
				region_age(s, level, gfn);
		} else if (is_leaf(e, level)) {
			u64 young = w->st.pages_young;

			visit_leaf(w, ep, e, level, gfn);
			if (level == 2 && s->mode == EPT_AGE_AD && splitting(s) &&
			    w->st.pages_young != young)
				split_leaf(w, ep, gfn);
		} else if (s->mode == EPT_AGE_AD && !(e & EPT_A)) {
			/* Nothing below was used since A was cleared (SDM 29.3.5). */
			w->st.subtrees_skipped++;
			region_age(s, level, gfn);
			if (level == 2)
				block_scanned(w, ep, gfn, false);
			else if (split_below(s, level, gfn))
				cold_walk(w, child_table(e), level - 1, gfn);
		} else {
			u64 young = w->st.pages_young, idle = w->st.leaves_idle;

			if (w->ageing)
				settle(s, level, gfn);
			walk_table(w, child_table(e), level - 1, gfn);
			/* Only now: clearing it first would let an access during the
			 * walk hide the subtree from the next scan. */
			if (s->mode == EPT_AGE_AD)
				clear_accessed(w, ep);
			/* Used: a leaf with A, or (tracking) one not still tracked. */
			if (level == 2 && w->ageing)
				block_scanned(w, ep, gfn, s->mode == EPT_AGE_AD ?
						  w->st.pages_young != young :
						  w->st.leaves_idle - idle != PT_ENTRIES);
		}
	}
}

/*
 * Why one INVEPT per pass, and why it is needed at all: the CPU caches
 * EPT translations (guest-physical and combined mappings) and EPT
 * paging-structure entries, and uses them without re-reading memory (SDM
 * 29.4.1-29.4.2). After we clear an A bit, an access through a cached
 * translation sets nothing, and a walk that starts from a cached upper-level
 * entry sets the leaf's A but not the upper ones, so the next scan would skip
 * that subtree and miss the access. Likewise a cached translation keeps the
 * rights a tracked leaf just lost, so no tracking fault would happen. One
 * single-context INVEPT after the whole pass, before the guest runs again,
 * drops all of them at once: every later access walks from the root and sets
 * A at every level (or faults on a tracked leaf). Nothing is lost in between
 * because the guest does not run during the pass. Giving rights back needs no
 * flush: a not-present entry is never cached, so the retried access walks the
 * EPT again.
 */
bool ept_age_scan(struct ept_age *s, u64 *root, struct ept_age_stats *st)
{
	struct walk w = {
		.s = s,
		.end = s->pages,
		.ageing = true,
		.track_from = s->track_cursor,
		.track_left = s->mode == EPT_AGE_TRACK ? s->max_track : 0,
		.track_end = s->track_cursor,
	};

	/* The caller flushed after the last scan: what it unlinked is unused. */
	if (s->unlinked)
		ept_age_release(s);
	shift_counts(s);
	walk_table(&w, root, 4, 0);
	if (s->mode == EPT_AGE_TRACK) {
		/* Budget left: track the leaves below where this pass started. */
		if (w.track_left && s->track_cursor) {
			w.ageing = false;
			w.end = s->track_cursor;
			walk_table(&w, root, 4, 0);
		}
		/* Out of budget: the next pass starts after the last one tracked,
		 * so every leaf gets its turn. */
		s->track_cursor = w.track_left || w.track_end >= s->pages ? 0 : w.track_end;
	}
	w.st.splits += s->fault_splits;
	s->fault_splits = 0;
	w.st.split_blocks = s->split_blocks;
	w.st.tracking_faults = s->faults;
	s->faults = 0;
	s->scans++;
	if (st)
		*st = w.st;
	return w.st.flush_needed;
}

/*
 * A tracked 2 MiB leaf used: split it into 512 tracked 4 KiB leaves and give
 * rights back to the one used, so only that page becomes young and the others
 * are seen used (each by its own fault) only if they are. The entry was not
 * present, so nothing of it is cached and linking the table needs no INVEPT
 * (and the EPT violation invalidated what the CPU had cached for this
 * address, SDM 29.4.3.1).
 */
static bool fault_split(struct ept_age *s, u64 *ep, u64 e, u64 gfn)
{
	u64 base = gfn & ~(u64)(PT_ENTRIES - 1), *t = split_table(s, e), x;

	if (!t)
		return false;
	x = t[gfn - base];
	t[gfn - base] = (x & ~EPT_AGE_SAVED_RWX) | ((x & EPT_AGE_SAVED_RWX) >> EPT_AGE_SAVED_SHIFT);
	if (!link_split(s, ep, e, t, gfn))
		return false;
	/* Per-page ages from here on: push the block's pending age down. */
	settle(s, 2, base);
	s->faults++;
	s->fault_splits++;
	region_apply(s, 1, gfn, 0, YOUNG_NOW);
	return true;
}

bool ept_age_fault(struct ept_age *s, u64 *root, u64 gpa)
{
	u64 gfn = gpa >> PAGE_SHIFT;
	u64 *table = root;

	for (int level = 4; level >= 1; level--) {
		u64 *ep = &table[PT_INDEX(gpa, level)];
		u64 e = __atomic_load_n(ep, __ATOMIC_RELAXED);
		u64 base = gfn & ~(span(level) - 1);

		if (is_tracked(e) && is_leaf(e, level)) {
			u64 rights = (e & EPT_AGE_SAVED_RWX) >> EPT_AGE_SAVED_SHIFT;

			if (level == 2 && splitting(s) && fault_split(s, ep, e, gfn))
				return true;
			__atomic_store_n(ep, (e & ~EPT_AGE_SAVED_RWX) | rights, __ATOMIC_RELAXED);
			s->faults++;
			/* No level above owes this leaf any age: the scan that
			 * tracked it settled them, and a scan ages a mapped table
			 * entry lazily only when A/D bits tell it to. */
			region_apply(s, level, base, 0, YOUNG_NOW);
			return true;
		}
		if (!(e & EPT_RWX) || is_leaf(e, level))
			return false;
		table = child_table(e);
	}
	return false;
}

static void untrack_table(u64 *table, int level)
{
	for (int i = 0; i < PT_ENTRIES; i++) {
		u64 e = table[i];

		if (is_tracked(e) && is_leaf(e, level))
			__atomic_store_n(&table[i], (e & ~EPT_AGE_SAVED_RWX) |
					 ((e & EPT_AGE_SAVED_RWX) >> EPT_AGE_SAVED_SHIFT),
					 __ATOMIC_RELAXED);
		else if ((e & EPT_RWX) && !is_leaf(e, level))
			untrack_table(child_table(e), level - 1);
	}
}

void ept_age_untrack_all(u64 *root)
{
	untrack_table(root, 4);
}

u8 ept_age_page(const struct ept_age *s, u64 gfn)
{
	u8 age = s->age[gfn];

	for (int level = 2; level <= 4; level++)
		age = sat_add(age, *pending(s, level, gfn));
	return age;
}

void ept_age_flatten(struct ept_age *s)
{
	/* Top down, so what a level receives is passed on further. */
	for (int level = 4; level >= 2; level--)
		for (u64 gfn = 0; gfn < s->pages; gfn += span(level))
			settle(s, level, gfn);
}

u64 ept_age_working_set(const struct ept_age *s, unsigned int k)
{
	return age_working_set(s->count, k);
}

void ept_age_histogram(const struct ept_age *s, u64 hist[EPT_AGE_BUCKETS])
{
	age_histogram(s->count, hist);
}
