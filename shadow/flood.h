/*
 * Flood detection: is a written guest page table still a page table?
 *
 * Every emulated write to a shadowed table costs an exit. A table the guest
 * still uses is worth it (the shadow stays exact and is updated in place);
 * a frame that is being torn down or reused as data is not. The test is
 * use, not guesses (reference notes 5.4): a shadow page counts the writes
 * since it was last used, "used" being a fault walking through it (the
 * count restarts) or the CPU setting A in a parent spte. The first write of
 * a run clears those A bits, and the write ends with a guest-wide flush
 * (spage.c), so no translation cached before it can stand in for a walk;
 * when the count reaches SHADOW_FLOOD_WRITES they are read again. If the
 * CPU has not walked through the table meanwhile, the frame is unshadowed:
 * its shadow pages dropped and write access given back, so the guest's
 * next writes go straight to memory until a fault walks through the frame
 * as a table again.
 *
 * "Meanwhile" has to give a live table its chance: a table the CPU can walk
 * now (under a running root) is not judged until the guest has done more
 * than write tables since the run began (a fault, a CR3 load): munmap
 * zeroes PTEs in a row, and the process walks the table only after it
 * returns. A table under no running root cannot be walked before a CR3
 * load, so waiting would tell nothing: the count (or pattern) decides. A
 * run of zero writes is not made to wait past the point where it has
 * cleared as many entries as the shadow still maps: a mistake then costs at
 * most as many refaults as the exits already paid (the table is most likely
 * being emptied by a munmap of its whole range).
 *
 * Patterns only make the check earlier or skip counting, never overrule it:
 *  - teardown (exit, munmap): PTE-aligned zero writes in a row to one
 *    table are checked after SHADOW_FLOOD_ZERO_RUN writes;
 *  - upkeep of a live table (fork's write protection, clear_bit of A or D,
 *    mprotect, populating empty slots): a write after which every touched
 *    entry is a present mapping of a RAM frame, the same frame if it was
 *    present before, is not counted at all. Data written over a former
 *    table almost never looks like that; a live parent during fork, or a
 *    kernel mapping pages ahead of use (fault-around), writes nothing else.
 * A root in use is never unshadowed, nor a PAE page directory whose root is
 * loaded (PDPTE registers have no A bit to ask).
 */
#ifndef SHADOW_FLOOD_H
#define SHADOW_FLOOD_H

#include "shadow/types.h"

#define SHADOW_FLOOD_WRITES 4	/* writes without use before a table is unshadowed */
#define SHADOW_FLOOD_ZERO_RUN 2	/* zero writes in a row that make the check early */
#define SHADOW_FLOOD_SOON 64	/* re-shadowed within this many faults: a false positive,
				 * unless a parent entry unlinked or relinked it since
				 * (every unshadowed frame is remembered that long) */

/* Flood detection on or off for one guest (guest option flood=on|off). Off by default. */
void shadow_flood_set(struct shadow_mmu *mmu, bool on);
bool shadow_flood_enabled(const struct shadow_mmu *mmu);
/*
 * Count upkeep writes like any other (off by default): the use test alone
 * then decides for live tables too. For measuring that test, which the
 * upkeep shortcut otherwise keeps from ever seeing those writes.
 */
void shadow_flood_count_upkeep(struct shadow_mmu *mmu, bool count);

/*
 * Debug trace (guest option flood_trace=on; off by default): fn gets every
 * event of the detector, in order, to log with the guest's RIP and CR3;
 * NULL turns it off. Costs nothing while off.
 */
enum shadow_flood_what {
	SHADOW_FLOOD_EV_WRITE,		/* detail: enum shadow_flood_write; count: the page's
					 * writes without use after it */
	SHADOW_FLOOD_EV_CHECK,		/* use test of one shadow page: enum shadow_flood_use */
	SHADOW_FLOOD_EV_UNSHADOW,	/* detail: 1 after a zero run, 0 after the count */
	SHADOW_FLOOD_EV_LINK,		/* a directory write unlinked or linked the frame while
					 * it was remembered as unshadowed */
	SHADOW_FLOOD_EV_RESHADOW,	/* detail: enum shadow_flood_reshadow; len: the level */
};
enum shadow_flood_write { SHADOW_FLOOD_UPKEEP, SHADOW_FLOOD_ZERO, SHADOW_FLOOD_OTHER };
enum shadow_flood_use { SHADOW_FLOOD_USED, SHADOW_FLOOD_UNUSED, SHADOW_FLOOD_NO_CHANCE_YET,
			SHADOW_FLOOD_EMPTIED };
enum shadow_flood_reshadow {
	SHADOW_FLOOD_LIVE,	/* within SHADOW_FLOOD_SOON faults, no link change seen */
	SHADOW_FLOOD_REUSED,	/* within, after a link change */
	SHADOW_FLOOD_LATE,	/* later (or never unshadowed): not counted */
};
struct shadow_flood_event {
	u8 what;		/* enum shadow_flood_what */
	u8 detail;
	u16 off, len;		/* a write's page offset and length */
	u32 count;
	u64 gfn;
	u64 faults;		/* stats.faults then */
	u64 events;		/* the guest events flood.c counts (user faults, CR3 loads) */
};
void shadow_flood_trace(struct shadow_mmu *mmu,
			void (*fn)(struct shadow_mmu *mmu, const struct shadow_flood_event *ev));

/*
 * Stop shadowing frame gfn as a table: drop its shadow pages and let the
 * sptes that map it write again (no flush needed: W is only added). False
 * (nothing changed) if a pinned root shadows it. The caller must call
 * sp_commit_zap() or any shadow_* entry point that does, before the freed
 * pages may be reused (shadow_guest_write() does).
 */
bool shadow_unshadow_gfn(struct shadow_mmu *mmu, u64 gfn);

#endif
