/*
 * Page ageing (umbra's scan_ms=N, vmx/ageing.c): every N ms of guest time the hypervisor reads
 * and clears the accessed bits of this guest's memory and keeps an age per 4 KiB guest page
 * (scans since last access). HC_STAT 0x200 + k returns the pages of age < k at the last scan,
 * the working set over the last k scans. This kernel makes known access patterns in a fresh
 * region of RAM (the arena) and checks the reported working sets against them: a quiet
 * baseline (the kernel's own pages, B), a fixed hot set, a window sliding half its size per
 * scan, and a phase change from a big set to a small one.
 *
 * The guest cannot see when a scan happens, so it polls the scan count after every chunk of
 * CHUNK_PAGES page writes and keeps, per chunk, the counts seen before and after its last two
 * visits. An access made while the count was c is seen by scan c + 1, so at scan S ws(k)
 * holds the pages accessed while the count was in [S - k, S - 1]. For each reading that gives
 * the arena pages surely (a visit inside that range) and possibly (a visit overlapping it)
 * counted; the reported figure must lie within [surely + B - tol, possibly + B + tol], tol =
 * 32 pages + 10 % of possibly. When each sweep fits in a scan period, as intended, surely =
 * possibly (e.g. exactly 512 for the hot set).
 *
 * With the argument "2m" (umbra's default EPT ageing, scan_pages=2m) a 2 MiB block used for
 * the first time since it was last cold is seen as one: all its 512 pages count as used at
 * that scan, and at 4 KiB from then on. The upper bound then counts every 2 MiB block that
 * holds a possibly touched page as 512 pages; the lower bound stays as it is (a used page
 * must never look unused).
 *
 * Guest time (RDTSC) only bounds the run: after 200 scan periods' worth of TSC the scanner
 * counts as stuck (FAIL). Outside umbra, or with ageing off (HC_STAT answers -22), every
 * check is a SKIP.
 */
#include "libguest.h"

/* HC_STAT ids (vmx/mmu.h AGEING_STAT_*). */
#define STAT_WS(k) (0x200ul + (k))
#define STAT_SCANS 0x210ul
#define STAT_PERIOD 0x211ul

#define PAGE 4096ul
#define CHUNK_PAGES 32		/* page writes between two polls of the scan count */

#define HOT_PAGES 512
#define WIN_PAGES 256
#define WIN_STEP (WIN_PAGES / 2)
#define WIN_REGION_PAGES 2048
#define WIN_POSITIONS ((WIN_REGION_PAGES - WIN_PAGES) / WIN_STEP + 1)
#define WIN_PERIODS 4
#define SET_A_PAGES 512
#define SET_B_PAGES 128

/* Arena layout, in pages: every pattern on pages of its own, all multiples of a chunk. */
#define HOT_FIRST 0
#define WIN_FIRST (HOT_FIRST + HOT_PAGES)
#define SET_A_FIRST (WIN_FIRST + WIN_REGION_PAGES)
#define SET_B_FIRST (SET_A_FIRST + SET_A_PAGES)
#define ARENA_PAGES (SET_B_FIRST + SET_B_PAGES)
#define ARENA_CHUNKS (ARENA_PAGES / CHUNK_PAGES)

#define QUIET_SCANS 3		/* scans of the quiet phase before B is read */
#define PATTERN_SCANS 3		/* scans each fixed set is used for */
/* Pages start at age 0 (ept/age.h): after 8 scans the untouched ones have left ws(8). */
#define WARMUP_SCANS 8
/* Access tracking takes several scans to track all of RAM: wait up to this many for ws(8). */
#define WARMUP_MAX_SCANS 24
#define BUDGET_PERIODS 200
#define BASELINE_MAX 64
#define TOL_PAGES 32
#define TOL_PERCENT 10

#define NWS 4
static const unsigned int ws_k[NWS] = { 1, 2, 4, 8 };

/* One consistent set of HC_STAT figures, and what the arena visits predict for it. */
struct reading {
	long ws[NWS];
	u64 scans;
	unsigned long surely[NWS], possibly[NWS];	/* arena pages in ws(k) */
	unsigned long blocks[NWS];	/* "2m": pages of 2 MiB blocks possibly touched */
};

/* Scan counts polled just before and just after a visit of a chunk, plus 1 (0: never). */
struct visit {
	u32 before1, after1;
};

static struct {
	struct visit last, prev;
} chunks[ARENA_CHUNKS];

static unsigned long arena;
static u64 scans_seen;		/* scan count at the last poll */
static u64 deadline;		/* guest TSC after which the scanner counts as stuck */
static bool stuck;
static long baseline;
static bool blocks_2m;		/* argument "2m": see the top */

static long stat(unsigned long id)
{
	return vmcall(HC_STAT, id, 0, 0);
}

/* Updates scans_seen; false (for good) once the scan count fails or the budget is spent. */
static bool poll_scans(void)
{
	long s = stat(STAT_SCANS);

	if (s < 0 || rdtsc() > deadline)
		stuck = true;
	else
		scans_seen = (u64)s;
	return !stuck;
}

/* One word written in each page of the chunk, then the scan count polled. */
static void visit_chunk(unsigned int chunk)
{
	volatile u64 *page = (volatile u64 *)(arena + chunk * CHUNK_PAGES * PAGE);
	u64 before = scans_seen;

	for (unsigned int i = 0; i < CHUNK_PAGES; i++)
		page[i * (PAGE / sizeof(u64))] = before + i;
	poll_scans();	/* vmcall() clobbers memory: the writes are done before it */
	chunks[chunk].prev = chunks[chunk].last;
	chunks[chunk].last = (struct visit){ (u32)before + 1, (u32)scans_seen + 1 };
}

/* Visits the `count` chunks from page `first` round and round until the scan count is `until`. */
static bool sweep_until(unsigned int first, unsigned int count, u64 until)
{
	unsigned int first_chunk = first / CHUNK_PAGES, n = count / CHUNK_PAGES;

	for (unsigned int i = 0; scans_seen < until && !stuck; i = (i + 1) % n)
		visit_chunk(first_chunk + i);
	return !stuck;
}

/*
 * Arena pages accessed while the scan count was in [from, to]: *surely (a visit lies inside)
 * and *possibly (a visit overlaps). Only the last two visits of a chunk are kept: enough
 * right after a pattern stopped, when at most the final visit ends after `to`.
 */
static void touched_between(u64 from, u64 to, unsigned long *surely, unsigned long *possibly,
			    unsigned long *blocks)
{
	unsigned long last_block = ~0ul;

	*surely = *possibly = *blocks = 0;
	for (unsigned int c = 0; c < ARENA_CHUNKS; c++) {
		const struct visit *v[2] = { &chunks[c].last, &chunks[c].prev };
		bool in = false, overlaps = false;

		for (int i = 0; i < 2; i++) {
			if (!v[i]->before1)
				continue;
			u64 before = v[i]->before1 - 1, after = v[i]->after1 - 1;

			in |= before >= from && after <= to;
			overlaps |= before <= to && after >= from;
		}
		*surely += in ? CHUNK_PAGES : 0;
		*possibly += overlaps ? CHUNK_PAGES : 0;
		/* Chunks go up in address: a new block is one not seen just before. */
		if (overlaps && (arena + c * CHUNK_PAGES * PAGE) >> 21 != last_block) {
			last_block = (arena + c * CHUNK_PAGES * PAGE) >> 21;
			*blocks += 512;
		}
	}
}

/*
 * Arena pages surely accessed while the count was in [S - k_old, S - k_new - 1] and not
 * possibly in [S - k_new, S - 1]: each has k_new <= age < k_old at scan S, so
 * ws(k_old) - ws(k_new) is at least this (the kernel's own pages cancel out).
 */
static unsigned long only_older(u64 s, unsigned int k_new, unsigned int k_old)
{
	unsigned long n = 0;

	for (unsigned int c = 0; c < ARENA_CHUNKS; c++) {
		const struct visit *v[2] = { &chunks[c].last, &chunks[c].prev };
		bool older = false, recent = false;

		for (int i = 0; i < 2; i++) {
			if (!v[i]->before1)
				continue;
			u64 before = v[i]->before1 - 1, after = v[i]->after1 - 1;

			older |= before + k_old >= s && after + k_new + 1 <= s;
			recent |= before <= s - 1 && after + k_new >= s;
		}
		n += older && !recent ? CHUNK_PAGES : 0;
	}
	return n;
}

/* Reads ws(1, 2, 4, 8) between two equal scan counts; false if HC_STAT refused or kept moving. */
static bool read_ws(struct reading *r)
{
	for (int attempt = 0; attempt < 4; attempt++) {
		long s = stat(STAT_SCANS), s_after;
		bool ok = s >= 0;

		for (int i = 0; i < NWS; i++) {
			r->ws[i] = stat(STAT_WS(ws_k[i]));
			ok = ok && r->ws[i] >= 0;
		}
		s_after = stat(STAT_SCANS);
		if (!ok)
			break;
		if (s != s_after)
			continue;
		r->scans = scans_seen = (u64)s;
		for (int i = 0; i < NWS; i++)
			touched_between(r->scans - ws_k[i], r->scans - 1, &r->surely[i],
					&r->possibly[i], &r->blocks[i]);
		return true;
	}
	printf("ageing: no consistent ws(1/2/4/8) from HC_STAT (scan count %llu)\n", scans_seen);
	stuck = true;
	return false;
}

static void print_reading(const char *phase, const struct reading *r)
{
	printf("AGEING: %s ws1=%ld ws2=%ld ws4=%ld ws8=%ld scans=%llu\n", phase, r->ws[0],
	       r->ws[1], r->ws[2], r->ws[3], r->scans);
	printf("AGEING: %s arena pages touched: ws1 %lu..%lu ws2 %lu..%lu ws4 %lu..%lu "
	       "ws8 %lu..%lu\n", phase, r->surely[0], r->possibly[0], r->surely[1],
	       r->possibly[1], r->surely[2], r->possibly[2], r->surely[3], r->possibly[3]);
}

/* Each ws(k) from index `from` within the arena prediction + B, give or take tol. */
static void check_reading(const char *phase, const struct reading *r, int from)
{
	report(r->ws[0] <= r->ws[1] && r->ws[1] <= r->ws[2] && r->ws[2] <= r->ws[3],
	       "%s: ws1 <= ws2 <= ws4 <= ws8", phase);
	for (int i = from; i < NWS; i++) {
		long tol = TOL_PAGES + (long)r->possibly[i] * TOL_PERCENT / 100;
		long lo = (long)r->surely[i] + baseline - tol;
		long hi = (long)(blocks_2m ? r->blocks[i] : r->possibly[i]) + baseline + tol;

		if (lo < 0)
			lo = 0;
		report(r->ws[i] >= lo && r->ws[i] <= hi,
		       "%s: ws%u=%ld in [%ld, %ld] (%lu..%lu touched + B=%ld, tol %ld)", phase,
		       ws_k[i], r->ws[i], lo, hi, r->surely[i], r->possibly[i], baseline, tol);
	}
}

/*
 * ws(k_old) > ws(k_new) by at least the arena pages only used in the older scans, less 10 %;
 * a SKIP when the timing left no such page.
 */
static void check_older(const char *phase, const struct reading *r, int i_new, int i_old)
{
	unsigned long older = only_older(r->scans, ws_k[i_new], ws_k[i_old]);
	long need = (long)(older - older * TOL_PERCENT / 100);

	if (!older) {
		report_skip("%s: ws%u > ws%u: timing left no page used only in the older scans",
			    phase, ws_k[i_old], ws_k[i_new]);
		return;
	}
	report(r->ws[i_old] - r->ws[i_new] >= need && r->ws[i_old] > r->ws[i_new],
	       "%s: ws%u - ws%u = %ld >= %ld (%lu pages used only in scans %llu..%llu, less %d%%)",
	       phase, ws_k[i_old], ws_k[i_new], r->ws[i_old] - r->ws[i_new], need, older,
	       r->scans - ws_k[i_old], r->scans - ws_k[i_new] - 1, TOL_PERCENT);
}

/*
 * Spins touching nothing but its own loop until QUIET_SCANS more scans are done, boot's
 * pages have aged out of ws(8) (or WARMUP_MAX_SCANS passed), then B = ws(1).
 */
static bool phase_baseline(void)
{
	struct reading r;
	u64 start;

	if (!poll_scans())
		return false;
	start = scans_seen;
	for (;;) {
		u64 seen = scans_seen;

		while (scans_seen == seen) {
			if (!poll_scans())
				return false;
			pause();
		}
		if (scans_seen < start + QUIET_SCANS || scans_seen < WARMUP_SCANS)
			continue;
		if (!read_ws(&r))
			return false;
		if (r.ws[3] <= r.ws[0] + TOL_PAGES || scans_seen >= start + WARMUP_MAX_SCANS)
			break;
	}
	baseline = r.ws[0];
	print_reading("baseline", &r);
	report(baseline >= 1 && baseline < BASELINE_MAX,
	       "baseline: B = ws1 = %ld pages of the kernel's own, in [1, %d)", baseline,
	       BASELINE_MAX);
	check_reading("baseline", &r, 1);	/* ws1 is B itself */
	return true;
}

/* The same HOT_PAGES pages over and over for PATTERN_SCANS more scans. */
static bool phase_hot(void)
{
	struct reading r;

	if (!poll_scans() || !sweep_until(HOT_FIRST, HOT_PAGES, scans_seen + PATTERN_SCANS) ||
	    !read_ws(&r))
		return false;
	print_reading("hot", &r);
	check_reading("hot", &r, 0);
	return true;
}

/*
 * A window of WIN_PAGES moving WIN_STEP pages further at every new scan, for WIN_PERIODS
 * scans. ws1 covers about one position (up to a chunk of the previous one: the move is seen
 * at the next poll); ws8 the earlier positions and the hot set too.
 */
static bool phase_window(void)
{
	struct reading r;
	u64 start, until, pos_scan;
	unsigned int i = 0, n = WIN_PAGES / CHUNK_PAGES;

	if (!poll_scans())
		return false;
	start = pos_scan = scans_seen;
	until = start + WIN_PERIODS;
	while (scans_seen < until && !stuck) {
		unsigned int pos = (unsigned int)((scans_seen - start) % WIN_POSITIONS);

		if (scans_seen != pos_scan) {
			pos_scan = scans_seen;
			i = 0;	/* a new position: start at its first chunk */
		}
		visit_chunk((WIN_FIRST + pos * WIN_STEP) / CHUNK_PAGES + i);
		i = (i + 1) % n;
	}
	if (stuck || !read_ws(&r))
		return false;
	print_reading("window", &r);
	check_reading("window", &r, 0);
	check_older("window", &r, 0, 3);
	return true;
}

/*
 * Set A for PATTERN_SCANS scans, then the disjoint, smaller set B for PATTERN_SCANS scans,
 * with nothing printed in between so that A is still within ws4 at the end.
 */
static bool phase_change(void)
{
	struct reading ra, rb;

	if (!poll_scans() || !sweep_until(SET_A_FIRST, SET_A_PAGES, scans_seen + PATTERN_SCANS) ||
	    !read_ws(&ra) ||
	    !sweep_until(SET_B_FIRST, SET_B_PAGES, scans_seen + PATTERN_SCANS) || !read_ws(&rb))
		return false;
	print_reading("phase-A", &ra);
	check_reading("phase-A", &ra, 0);
	print_reading("phase-B", &rb);
	check_reading("phase-B", &rb, 0);
	report(rb.ws[2] >= SET_B_PAGES + baseline, "phase-B: ws4=%ld >= %d + B=%ld", rb.ws[2],
	       SET_B_PAGES, baseline);
	check_older("phase-B", &rb, 1, 2);
	return true;
}

static const char *const phase_names[] = { "baseline", "hot", "window", "phase change" };

static void skip_all(void)
{
	for (unsigned int i = 0; i < sizeof(phase_names) / sizeof(phase_names[0]); i++)
		report_skip("ageing: %s", phase_names[i]);
}

/* The first free RAM range that holds the arena. */
static void find_arena(u64 start, u64 end, void *ctx)
{
	(void)ctx;
	if (!arena && end - start >= ARENA_PAGES * PAGE)
		arena = (unsigned long)start;
}

int main(void)
{
	bool (*const phases[])(void) = { phase_baseline, phase_hot, phase_window, phase_change };
	long scans, period;
	u64 first_scans;

	if (!is_umbra()) {
		printf("ageing: not under umbra\n");
		skip_all();
		return report_summary();
	}
	scans = stat(STAT_SCANS);
	if (scans < 0) {
		printf("ageing: HC_STAT %#lx = %ld: ageing off (start the guest with scan_ms=N)\n",
		       STAT_SCANS, scans);
		skip_all();
		return report_summary();
	}
	first_scans = (u64)scans;
	blocks_2m = cmdline_has("2m");
	period = stat(STAT_PERIOD);
	/* 2^40 ticks is minutes at any TSC rate: larger cannot be a scan_ms period. */
	report(period > 0 && period < (1l << 40), "scan period %ld guest TSC ticks", period);
	for_each_free_ram(1ul << 20, ram_end(), find_arena, NULL);
	report(arena, "arena of %d pages (%d KiB) in free RAM: %#lx", ARENA_PAGES,
	       ARENA_PAGES * 4, arena);
	if (period <= 0 || period >= (1l << 40) || !arena)
		return report_summary();
	printf("AGEING: period=%ld ticks, tolerance %d pages + %d%%, chunk %d pages, give up after "
	       "%d periods\n", period, TOL_PAGES, TOL_PERCENT, CHUNK_PAGES, BUDGET_PERIODS);

	deadline = rdtsc() + BUDGET_PERIODS * (u64)period;
	for (unsigned int i = 0; i < sizeof(phases) / sizeof(phases[0]); i++) {
		if (phases[i]())
			continue;
		report(false, "ageing: %s: scanner stuck or HC_STAT failing (scan count %llu, "
		       "%d periods' worth of TSC)", phase_names[i], scans_seen, BUDGET_PERIODS);
		break;
	}
	printf("AGEING: done scans=%llu (%llu during this kernel)\n", scans_seen,
	       scans_seen - first_scans);
	return report_summary();
}
