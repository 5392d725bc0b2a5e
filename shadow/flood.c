/*
 * Flood detection (see flood.h): counts emulated writes per shadow page
 * since its last use, asks the CPU-set A bits of its parent sptes whether
 * it was used, and unshadows frames that are written but no longer walked.
 * The core calls in through mmu->flood (shadow_guest_write() after each
 * store, sp_create() when a frame becomes a shadowed table again).
 */
#include <string.h>

#include "shadow/flood.h"
#include "shadow/spage.h"

/*
 * Write kinds (enum shadow_flood_write): SHADOW_FLOOD_UPKEEP, entries stay
 * valid mappings of the same frames or fill empty slots (fork's write
 * protection, clear_bit, mprotect, populate); SHADOW_FLOOD_ZERO, whole
 * entries set to zero (teardown, or a cleared data page); SHADOW_FLOOD_OTHER.
 */

/* A frame unshadowed in the last SHADOW_FLOOD_SOON faults (struct shadow_flood). */
struct flood_unshadowed {
	u64 gfn;
	u64 fault;		/* stats.faults when it was unshadowed */
	struct flood_unshadowed *hash_next;
	struct flood_unshadowed *older, *newer;
	bool moved;		/* a parent entry linking it was cleared or changed, or one
				 * now links it, since */
};

static bool all_zero(const u8 *p, u32 len)
{
	for (u32 i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

static u64 entry_frame(u64 entry, u32 size)
{
	return (size == 4 ? entry & 0xfffff000ull : spte_addr(entry)) >> PAGE_SHIFT;
}

/*
 * Guest entry e (size bytes) before and after a write of len bytes at page
 * offset off that is already in memory; old holds the bytes it replaced.
 */
static void entry_before_after(const u8 *page, u32 e, u32 size, u32 off, const u8 *old,
			       u32 len, u64 *before, u64 *after)
{
	u8 bytes[8] = { 0 };

	for (u32 i = 0; i < size; i++)
		bytes[i] = __atomic_load_n(page + e * size + i, __ATOMIC_RELAXED);
	memcpy(after, bytes, 8);
	for (u32 i = 0; i < size; i++) {
		u32 at = e * size + i;

		if (at >= off && at < off + len)
			bytes[i] = old[at - off];
	}
	memcpy(before, bytes, 8);
}

/*
 * What the write did to the entries of the table (size: 4 or 8 bytes per
 * guest entry). Upkeep needs the old bytes, which the core keeps for short
 * writes only: a bulk write is never upkeep. Data written over a former
 * table almost never leaves every touched entry a present mapping of the
 * same frame, or of a RAM frame where the slot was empty.
 */
static enum shadow_flood_write classify(struct shadow_mmu *mmu, u64 gpa, u32 size, const u8 *old,
				const u8 *data, u32 len)
{
	u32 off = gpa & (PAGE_SIZE - 1);
	const u8 *page;

	if (!(off % size) && !(len % size) && all_zero(data, len))
		return SHADOW_FLOOD_ZERO;
	if (!old)
		return SHADOW_FLOOD_OTHER;
	page = mmu->host->mem->gfn_to_hva(mmu->host->mem, gpa >> PAGE_SHIFT);
	for (u32 e = off / size; e <= (off + len - 1) / size; e++) {
		u64 before, after;

		entry_before_after(page, e, size, off, old, len, &before, &after);
		if (!(after & PTE_P) ||
		    mmu->host->gfn_to_hpa(mmu->host, entry_frame(after, size)) == SHADOW_NO_RAM)
			return SHADOW_FLOOD_OTHER;
		if ((before & PTE_P) && entry_frame(before, size) != entry_frame(after, size))
			return SHADOW_FLOOD_OTHER;
	}
	return SHADOW_FLOOD_UPKEEP;
}

/*
 * Has the CPU walked through sp since flood detection last asked? Clears
 * the A bits (the write's sp_commit_zap() flushes, so a later use sets them
 * again); a use seen here is kept for reclaim and ageing too, and one they
 * saw is kept for this (spage.c).
 */
static bool parents_accessed(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	bool used;

	sp_collect_parent_a(mmu, sp);
	used = sp->flood_used;
	sp->flood_used = false;
	return used;
}

/* PAE-format shadows: a page directory hangs from a PDPTE, which has no A bit. */
static bool under_pae_root(const struct shadow_page *sp)
{
	return sp->role.level == 2 && sp->role.guest_mode != GWALK_MODE_LONG &&
	       sp_has_parents(sp);
}

/*
 * Guest activity the shadow MMU sees that a kernel loop writing page tables
 * does not cause: faults taken in user mode, CR3 loads. When this count
 * moves, the guest ran more than that loop, and a live table under the
 * running root has had its chance to be walked. (Kernel faults do not
 * count: fork touches the child's new tables, and the parent has not run.)
 */
static u64 guest_events(const struct shadow_mmu *mmu)
{
	const struct shadow_stats *st = &mmu->stats;

	return st->faults_user + st->roots_created + st->roots_reused;
}

/* Debug trace (shadow_flood_trace()): one event. */
static void trace(struct shadow_mmu *mmu, enum shadow_flood_what what, u64 gfn, u32 detail,
		  u32 count, u32 off, u32 len)
{
	struct shadow_flood_event ev;

	if (!mmu->flood.trace)
		return;
	ev.what = (u8)what;
	ev.detail = (u8)detail;
	ev.off = (u16)off;
	ev.len = (u16)len;
	ev.count = count;
	ev.gfn = gfn;
	ev.faults = mmu->stats.faults;
	ev.events = guest_events(mmu);
	mmu->flood.trace(mmu, &ev);
}

static u32 present_sptes(const struct shadow_page *sp)
{
	u32 n = 0;

	for (int w = 0; w < PT_ENTRIES / 64; w++)
		n += (u32)__builtin_popcountll(sp->present[w]);
	return n;
}

/*
 * Used since its write run began (its A bits cleared and flushed then)?
 * Pinned roots and PAE directories always count as used, and so does a page
 * whose run began at this very write: it was walked (a fault or the emulator
 * went through it: its count restarted), created, or found used since the
 * previous write to it, and the A bits cleared just now cannot say otherwise
 * (Linux's cleanup_highmap() zeroes entries of level2_kernel_pgt through the
 * mapping that very table provides: each write's fault walks it). A table the CPU
 * can walk now (under a running root) is not judged before the guest has
 * done something besides writing tables: a munmap zeroes PTEs in a row
 * and returns to the process, which only then walks the table again.
 */
static enum shadow_flood_use used_since_run(struct shadow_mmu *mmu, struct shadow_page *sp)
{
	bool accessed = parents_accessed(mmu, sp);	/* cleared whatever the answer */

	if (sp->write_flood <= 1 || sp->root_count || under_pae_root(sp) || accessed)
		return SHADOW_FLOOD_USED;
	if (guest_events(mmu) == sp->flood_since && sp_under_running_root(mmu, sp))
		return SHADOW_FLOOD_NO_CHANCE_YET;
	return SHADOW_FLOOD_UNUSED;
}

/* gfn is no longer a shadowed table: sptes that may write it get W back. */
static void unprotect(struct shadow_mmu *mmu, u64 gfn)
{
	if (!sp_first_indirect(mmu, gfn))
		sp_restore_write(mmu, gfn);
}

static struct flood_unshadowed **bucket(struct shadow_flood *f, u64 gfn)
{
	return &f->hash[gfn % SHADOW_FLOOD_HASH];
}

static struct flood_unshadowed *find(struct shadow_flood *f, u64 gfn)
{
	struct flood_unshadowed *u = *bucket(f, gfn);

	while (u && u->gfn != gfn)
		u = u->hash_next;
	return u;
}

static void forget(struct shadow_mmu *mmu, struct flood_unshadowed *u)
{
	struct shadow_flood *f = &mmu->flood;
	struct flood_unshadowed **p = bucket(f, u->gfn);

	while (*p != u)
		p = &(*p)->hash_next;
	*p = u->hash_next;
	if (u->older)
		u->older->newer = u->newer;
	else
		f->oldest = u->newer;
	if (u->newer)
		u->newer->older = u->older;
	else
		f->newest = u->older;
	f->remembered--;
	sp_obj_put(mmu, &f->pool, u);
}

/* Records whose SHADOW_FLOOD_SOON faults have passed tell nothing more: dropped. */
static void expire(struct shadow_mmu *mmu)
{
	struct shadow_flood *f = &mmu->flood;

	while (f->oldest && mmu->stats.faults - f->oldest->fault > SHADOW_FLOOD_SOON)
		forget(mmu, f->oldest);
}

/*
 * Remember that gfn was unshadowed, for as long as a re-shadow would count:
 * every such frame, however many (the count of live tables unshadowed is
 * exact). The record comes from a bookkeeping page charged to the guest;
 * the unshadow has just freed at least one shadow page's frames, so only
 * another guest taking them from a shared pool in between can make it fail,
 * which stats.unshadow_untracked counts.
 */
static void remember(struct shadow_mmu *mmu, u64 gfn)
{
	struct shadow_flood *f = &mmu->flood;
	struct flood_unshadowed *u;

	expire(mmu);
	u = find(f, gfn);	/* not shadowed since: cannot be, but a record is one per frame */
	if (u)
		forget(mmu, u);
	u = sp_obj_get(mmu, &f->pool);
	if (!u) {
		mmu->stats.unshadow_untracked++;
		return;
	}
	u->gfn = gfn;
	u->fault = mmu->stats.faults;
	u->hash_next = *bucket(f, gfn);
	*bucket(f, gfn) = u;
	u->older = f->newest;
	if (f->newest)
		f->newest->newer = u;
	else
		f->oldest = u;
	f->newest = u;
	f->remembered++;
}

static void moved(struct shadow_mmu *mmu, u64 gfn)
{
	struct flood_unshadowed *u = find(&mmu->flood, gfn);

	if (u && !u->moved) {
		u->moved = true;
		trace(mmu, SHADOW_FLOOD_EV_LINK, gfn, 0, 0, 0, 0);
	}
}

/*
 * A write to a directory (a table of tables) that unlinks a recently
 * unshadowed frame from this slot or links one into it: Linux clears the
 * PMD entry before it frees a page table (free_pte_range) and links a new
 * one into a slot; a frame shadowed again after that is a new table in a
 * reused frame, not a live table unshadowed by mistake. Unlinks the shadow
 * MMU does not see (a parent not shadowed, a bulk write) stay false
 * positives: the count of live tables is an upper bound.
 */
static void note_links(struct shadow_mmu *mmu, u64 gpa, u32 size, const u8 *old, u32 len)
{
	u32 off = gpa & (PAGE_SIZE - 1);
	const u8 *page = mmu->host->mem->gfn_to_hva(mmu->host->mem, gpa >> PAGE_SHIFT);

	if (!mmu->flood.remembered || !old || !page || off % size)
		return;
	for (u32 e = off / size; e <= (off + len - 1) / size; e++) {
		u64 before, after;

		entry_before_after(page, e, size, off, old, len, &before, &after);
		if ((before & PTE_P) && (!(after & PTE_P) ||
					 entry_frame(before, size) != entry_frame(after, size)))
			moved(mmu, entry_frame(before, size));
		if ((after & PTE_P) && (!(before & PTE_P) ||
					entry_frame(before, size) != entry_frame(after, size)))
			moved(mmu, entry_frame(after, size));
	}
}

/* Drop gfn's shadow pages (freed at the next sp_commit_zap()) and its write protection. */
static bool unshadow(struct shadow_mmu *mmu, u64 gfn)
{
	struct shadow_page *sp, *next;

	for (sp = sp_first_indirect(mmu, gfn); sp; sp = sp_next_indirect(sp->hash_next, gfn))
		if (sp->root_count)
			return false;	/* a pinned root stays in the hash: still protected */
	for (sp = sp_first_indirect(mmu, gfn); sp; sp = next) {
		next = sp_next_indirect(sp->hash_next, gfn);
		sp_zap(mmu, sp);
	}
	unprotect(mmu, gfn);
	return true;
}

bool shadow_unshadow_gfn(struct shadow_mmu *mmu, u64 gfn)
{
	bool done = unshadow(mmu, gfn);

	sp_commit_zap(mmu);
	return done;
}

/* The current run of zero writes is over: the next one counts from nothing (an
 * upkeep write between two munmaps ends the first one's run). */
static void end_zero_run(struct shadow_flood *f)
{
	f->zero_run = 0;
	f->zero_entries = 0;
}

static void flood_written(struct shadow_mmu *mmu, u64 gpa, const u8 *old, const u8 *data,
			  u32 len)
{
	struct shadow_flood *f = &mmu->flood;
	u64 gfn = gpa >> PAGE_SHIFT;
	struct shadow_page *sp = sp_first_indirect(mmu, gfn);
	bool due = false, zero_due, live = false, wait = false;
	enum shadow_flood_write kind;
	u32 off = gpa & (PAGE_SIZE - 1);

	if (!sp) {
		unprotect(mmu, gfn);	/* a whole-page clear dropped every shadow */
		return;
	}
	if (sp->role.level > 1)
		note_links(mmu, gpa, gwalk_entry_size(sp->role.guest_mode), old, len);
	kind = classify(mmu, gpa, gwalk_entry_size(sp->role.guest_mode), old, data, len);
	if (kind == SHADOW_FLOOD_UPKEEP) {
		mmu->stats.flood_live_writes++;
		end_zero_run(f);
		if (!f->count_upkeep) {
			trace(mmu, SHADOW_FLOOD_EV_WRITE, gfn, kind, sp->write_flood, off, len);
			return;
		}
	}
	if (kind == SHADOW_FLOOD_ZERO && f->zero_gfn == gfn) {
		f->zero_run++;
		f->zero_entries += len / gwalk_entry_size(sp->role.guest_mode);
	} else {
		f->zero_gfn = gfn;
		f->zero_run = kind == SHADOW_FLOOD_ZERO;
		f->zero_entries = kind == SHADOW_FLOOD_ZERO ? len / gwalk_entry_size(sp->role.guest_mode) : 0;
	}
	zero_due = f->zero_run >= SHADOW_FLOOD_ZERO_RUN;
	for (; sp; sp = sp_next_indirect(sp->hash_next, gfn)) {
		/* The first write of a run clears the A bits (and the write ends with a
		 * flush): a later A means use since. */
		if (sp->write_flood++ == 0) {
			/* A run that ended without a verdict: a walk restarted the count. */
			if (sp->flood_run)
				mmu->stats.flood_kept++;
			sp->flood_run = true;
			parents_accessed(mmu, sp);
			sp->flood_since = guest_events(mmu);
		} else if (sp->write_flood >= SHADOW_FLOOD_WRITES || zero_due) {
			due = true;
		}
	}
	trace(mmu, SHADOW_FLOOD_EV_WRITE, gfn, kind, sp_first_indirect(mmu, gfn)->write_flood, off,
	      len);
	if (!due)
		return;
	mmu->stats.flood_checks++;
	for (sp = sp_first_indirect(mmu, gfn); sp; sp = sp_next_indirect(sp->hash_next, gfn)) {
		enum shadow_flood_use use = used_since_run(mmu, sp);

		/* A zero run that has cleared as many entries as the shadow maps: see below. */
		if (use == SHADOW_FLOOD_NO_CHANCE_YET && zero_due &&
		    f->zero_entries >= present_sptes(sp))
			use = SHADOW_FLOOD_EMPTIED;
		trace(mmu, SHADOW_FLOOD_EV_CHECK, gfn, use, sp->write_flood, sp->role.level,
		      present_sptes(sp));
		switch (use) {
		case SHADOW_FLOOD_USED:
			live = true;
			sp->write_flood = 0;
			sp->flood_run = false;
			break;
		case SHADOW_FLOOD_NO_CHANCE_YET:
			wait = true;
			break;
		case SHADOW_FLOOD_EMPTIED:
			/*
			 * A run of zero writes that has already cleared as many entries as
			 * the shadow still maps: unshadowing now costs at most that many
			 * refaults if the table lives on, no more than the exits already
			 * paid; most likely the table is being emptied (munmap of its
			 * whole range, then freed), and the rest of the run goes direct.
			 */
		case SHADOW_FLOOD_UNUSED:
			break;
		}
	}
	if (live) {
		mmu->stats.flood_kept++;	/* per write, whatever the number of shadows */
		end_zero_run(f);
		return;
	}
	if (wait) {
		mmu->stats.flood_deferred++;
		return;
	}
	if (!unshadow(mmu, gfn))
		return;
	if (zero_due)
		mmu->stats.unshadowed_pattern++;
	else
		mmu->stats.unshadowed_flood++;
	trace(mmu, SHADOW_FLOOD_EV_UNSHADOW, gfn, zero_due, 0, 0, 0);
	end_zero_run(f);
	sp_commit_zap(mmu);	/* the frames freed pay for the record */
	remember(mmu, gfn);
}

/* A frame shadowed again within SHADOW_FLOOD_SOON faults of its unshadow was likely live,
 * unless a parent entry unlinked or relinked it meanwhile (note_links()). */
static void flood_shadowed(struct shadow_mmu *mmu, u64 gfn)
{
	struct flood_unshadowed *u;
	enum shadow_flood_reshadow verdict = SHADOW_FLOOD_LATE;

	expire(mmu);
	u = find(&mmu->flood, gfn);
	if (u) {
		verdict = u->moved ? SHADOW_FLOOD_REUSED : SHADOW_FLOOD_LIVE;
		if (u->moved)
			mmu->stats.unshadow_reused++;
		else
			mmu->stats.unshadow_false_positive++;
		forget(mmu, u);
	}
	if (mmu->flood.trace) {
		struct shadow_page *sp = sp_first_indirect(mmu, gfn);

		trace(mmu, SHADOW_FLOOD_EV_RESHADOW, gfn, verdict, 0, 0, sp ? sp->role.level : 0);
	}
}

static void flood_release(struct shadow_mmu *mmu)
{
	struct shadow_flood *f = &mmu->flood;

	while (f->oldest)
		forget(mmu, f->oldest);
}

void shadow_flood_set(struct shadow_mmu *mmu, bool on)
{
	struct shadow_flood *f = &mmu->flood;

	flood_release(mmu);
	memset(f, 0, sizeof(*f));
	sp_obj_pool_init(&f->pool, sizeof(struct flood_unshadowed));
	if (on) {
		f->written = flood_written;
		f->shadowed = flood_shadowed;
		f->release = flood_release;
	}
}

void shadow_flood_trace(struct shadow_mmu *mmu,
			void (*fn)(struct shadow_mmu *mmu, const struct shadow_flood_event *ev))
{
	mmu->flood.trace = fn;
}

void shadow_flood_count_upkeep(struct shadow_mmu *mmu, bool count)
{
	mmu->flood.count_upkeep = count;
}

bool shadow_flood_enabled(const struct shadow_mmu *mmu)
{
	return mmu->flood.written != NULL;
}
