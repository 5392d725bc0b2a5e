/*
 * Shared page tables under concurrent use (issue #20): every CPU of the guest runs on one
 * CR3 while, phase by phase, one CPU (the mapper, in turn) remaps, unmaps, write-protects
 * and maps again pages the others keep reading, tears leaf tables down and builds new ones
 * (their frames freed and reused, as tables and as data), remaps, splits and merges a 2 MiB
 * page, and writes many entries of one leaf table (a shadow MMU leaves it out of sync). It
 * invalidates as an OS does: INVLPG on itself, then an IPI to all the others whose handler
 * invalidates the same addresses (or reloads CR3 after a change above the leaves), and waits
 * for every acknowledgement. After that shootdown (a barrier), every CPU checks every test
 * address against the mapper's model: a translation older than the shootdown is a FAIL
 * (SDM Vol. 3A 4.10.4, 4.10.5).
 *
 * The result does not depend on timing: the operations depend on the phase number only, the
 * others' writes during a phase are idempotent (same value each time) and go to their own
 * pages, their reads of pages in flux only look at words every frame of the test holds alike
 * (a read of the wrong frame is still caught), and a fault there is allowed (the page may be
 * going away). So the DIGEST lines are the same under QEMU TCG, EPT and shadow paging, for
 * any number of CPUs (the private-page digest aside: it covers every CPU's pages).
 * `cpus=N` on the command line: expect exactly N CPUs.
 */
#include "libguest.h"
#include "paging.h"
#include "platform.h"
#include "smp.h"

#define PHASES 48
#define OPS 20			/* entry changes per ordinary phase */
#define VEC_SHOOT 0x50
#define SHOOT_MAX 64		/* more addresses: the receivers reload CR3 */

#define MB2 0x200000ul
#define SHARED_TABLES 4		/* slots 0-3: leaf tables with private and victim pages */
#define PRIV_PER_CPU 8		/* per shared table, entries cpu * 8 .. cpu * 8 + 7 */
#define VICTIM_FIRST 128	/* shared tables: victim entries 128 .. 128 + VICTIMS - 1 */
#define VICTIMS 32
#define TABLE_SLOT 4		/* slots 4, 5: victim-only tables, torn down and rebuilt */
#define TABLE_SLOTS 2
#define LARGE_SLOT 8		/* slot 8: a 2 MiB page, remapped, split and merged */
#define LARGE_FRAMES 3
#define VFRAMES 160		/* victim data frames (grows with recycled table frames) */
#define VFRAMES_MAX 200

#define NVA (SHARED_TABLES * VICTIMS + TABLE_SLOTS * VICTIMS)	/* 4 KiB victim addresses */
#define LARGE_CHECKS 4

/* Words of every test frame: 0 its id, 1 the write target (always WCONST), 2..5 PAYLOAD. */
#define WCONST 0x5717e5717e000001ull
#define PAYLOAD(k) (0x9a71d0ad00000000ull | (k))
#define ID_VICTIM(i) (0x1d00000000ull | (i))
#define ID_LARGE(f, sub) (0x1a00000000ull | (f) << 12 | (sub))

#define LEAF (PTE_P | PTE_W)

static unsigned long base, cr3;
static u64 vframes[VFRAMES_MAX];
static unsigned int nvframes;
static u64 lframes[LARGE_FRAMES];
static u64 *pde[16];		/* PDEs of the test slots */
static u64 *shared_pt[SHARED_TABLES];
static u64 table_frame[TABLE_SLOTS];	/* 0: torn down */
static u64 recycled[16];
static unsigned int nrecycled;

/* The mapper's model of every victim address: frame id (0: not mapped), writable. */
static u64 model_id[NVA];
static bool model_w[NVA];
static unsigned int large_frame;	/* index into lframes */
static bool large_split;
static u64 large_table;

static volatile u32 phase_done;
static volatile unsigned long shoot_va[SHOOT_MAX];
static volatile u32 shoot_n, shoot_acks;

/* Counted by every CPU, checked at the end. */
enum { R_SHARED, R_TABLES, R_LARGE, REGIONS };
enum { K_FRAME, K_PRESENT, K_MISSING, K_WRITE, K_WRITE_FAULT, KINDS };
static volatile u32 bad[REGIONS][KINDS], bad_payload, bad_private, checks[REGIONS];
static volatile u64 verify_digest[SMP_MAX_CPUS];
static u64 ops_done[8];		/* remap, unmap, protect, unprotect, teardown, build, reuse, large */

static u64 mix(u64 h, u64 x)
{
	return (h ^ x) * 0x100000001b3ull;
}

static u64 rnd(u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* ---- accesses that may fault: the #PF handler resumes after them ---------------------- */

struct try_result {
	u64 val, fault;		/* fault: 0, or the #PF error code | 1 << 32 */
};

struct try_result try_read(unsigned long va);
struct try_result try_write(unsigned long va, u64 val);
extern const char try_read_insn[], try_read_done[], try_write_insn[], try_write_done[];
asm(".text\n"
    ".global try_read, try_write, try_read_insn, try_read_done, try_write_insn, try_write_done\n"
    "try_read:\n"
    "	xor %edx, %edx\n"
    "try_read_insn:\n"
    "	mov (%rdi), %rax\n"
    "try_read_done:\n"
    "	ret\n"
    "try_write:\n"
    "	xor %edx, %edx\n"
    "	xor %eax, %eax\n"
    "try_write_insn:\n"
    "	mov %rsi, (%rdi)\n"
    "try_write_done:\n"
    "	ret\n");

static bool on_page_fault(struct intr_frame *f, unsigned long cr2)
{
	(void)cr2;
	if (f->ip == (unsigned long)try_read_insn)
		f->ip = (unsigned long)try_read_done;
	else if (f->ip == (unsigned long)try_write_insn)
		f->ip = (unsigned long)try_write_done;
	else
		return false;
	f->rax = 0;
	f->rdx = f->error_code | 1ull << 32;
	return true;
}

/* ---- layout ------------------------------------------------------------------------------- */

static unsigned long slot_va(unsigned int slot, unsigned int i)
{
	return base + slot * MB2 + (unsigned long)i * PAGE_SIZE;
}

/* Victim address n: shared tables first, then the table slots. */
static unsigned long victim_va(unsigned int n)
{
	if (n < SHARED_TABLES * VICTIMS)
		return slot_va(n / VICTIMS, VICTIM_FIRST + n % VICTIMS);
	n -= SHARED_TABLES * VICTIMS;
	return slot_va(TABLE_SLOT + n / VICTIMS, n % VICTIMS);
}

static volatile u64 *victim_pte(unsigned int n)
{
	if (n < SHARED_TABLES * VICTIMS)
		return &shared_pt[n / VICTIMS][VICTIM_FIRST + n % VICTIMS];
	n -= SHARED_TABLES * VICTIMS;
	return (u64 *)phys_to_virt(table_frame[n / VICTIMS]) + n % VICTIMS;
}

static void frame_init(u64 pa, u64 id)
{
	volatile u64 *w = phys_to_virt(pa);

	w[0] = id;
	w[1] = WCONST;
	for (int k = 2; k < 6; k++)
		w[k] = PAYLOAD(k);
}

static unsigned long private_va(unsigned int cpu, unsigned int t, unsigned int k)
{
	return slot_va(t, cpu * PRIV_PER_CPU + k);
}

static void setup(void)
{
	u64 s = 0x5eed;

	base = paging_test_base();
	cr3 = read_cr3();
	for (unsigned int i = 0; i < VFRAMES; i++) {
		vframes[i] = alloc_frame();
		frame_init(vframes[i], ID_VICTIM(i));
	}
	nvframes = VFRAMES;
	for (unsigned int f = 0; f < LARGE_FRAMES; f++) {
		lframes[f] = alloc_frames_aligned(MB2);
		for (unsigned int sub = 0; sub < 512; sub++)
			frame_init(lframes[f] + sub * PAGE_SIZE, ID_LARGE(f, sub));
	}
	for (unsigned int t = 0; t < SHARED_TABLES; t++) {
		for (unsigned int c = 0; c < SMP_MAX_CPUS; c++)
			for (unsigned int k = 0; k < PRIV_PER_CPU; k++)
				map_page(cr3, private_va(c, t, k), alloc_frame(), LEAF, LEVEL_PTE);
		shared_pt[t] = pte_lookup(cr3, slot_va(t, 0), LEVEL_PTE);
		pde[t] = pte_lookup(cr3, slot_va(t, 0), LEVEL_PDE);
	}
	for (unsigned int n = 0; n < NVA; n++) {
		unsigned int f = rnd(&s) % nvframes;

		if (n >= SHARED_TABLES * VICTIMS && n % VICTIMS == 0) {
			unsigned int ts = (n - SHARED_TABLES * VICTIMS) / VICTIMS;

			map_page(cr3, victim_va(n), vframes[f], LEAF, LEVEL_PTE);
			pde[TABLE_SLOT + ts] = pte_lookup(cr3, victim_va(n), LEVEL_PDE);
			table_frame[ts] = pte_addr(*pde[TABLE_SLOT + ts]);
		}
		*victim_pte(n) = vframes[f] | LEAF;
		model_id[n] = ID_VICTIM(f);
		model_w[n] = true;
	}
	map_page(cr3, slot_va(LARGE_SLOT, 0), lframes[0], LEAF, LEVEL_PDE);
	pde[LARGE_SLOT] = pte_lookup(cr3, slot_va(LARGE_SLOT, 0), LEVEL_PDE);
	flush_tlb();
}

/* ---- the mapper ----------------------------------------------------------------------- */

static void on_shoot(unsigned int vector)
{
	u32 n = shoot_n;

	(void)vector;
	if (n > SHOOT_MAX)
		write_cr3(read_cr3());
	else
		for (u32 i = 0; i < n; i++)
			invlpg(shoot_va[i]);
	__atomic_add_fetch(&shoot_acks, 1, __ATOMIC_RELEASE);
	apic_eoi();
}

static u32 nshoot;

static void shoot_add(unsigned long va)
{
	if (nshoot < SHOOT_MAX)
		shoot_va[nshoot] = va;
	nshoot++;
}

/* INVLPG here (CR3 reload after a change above the leaves), then on every other CPU. */
static void shootdown(bool all)
{
	if (all)
		nshoot = SHOOT_MAX + 1;
	if (nshoot > SHOOT_MAX)
		write_cr3(read_cr3());
	else
		for (u32 i = 0; i < nshoot; i++)
			invlpg(shoot_va[i]);
	if (cpu_count() > 1) {
		shoot_n = nshoot;
		__atomic_store_n(&shoot_acks, 0, __ATOMIC_SEQ_CST);
		ipi_send_all_but_self(VEC_SHOOT);
		while (__atomic_load_n(&shoot_acks, __ATOMIC_ACQUIRE) != cpu_count() - 1)
			pause();
	}
	nshoot = 0;
}

/* One leaf change; most go to one table so that it is written often. */
static void leaf_op(u64 *s, unsigned int table)
{
	unsigned int n = rnd(s) % 5 ? table * VICTIMS + rnd(s) % VICTIMS : rnd(s) % NVA;
	volatile u64 *pte;
	unsigned int op = rnd(s) % 8, f = rnd(s) % nvframes;

	if (n >= SHARED_TABLES * VICTIMS && !table_frame[(n - SHARED_TABLES * VICTIMS) / VICTIMS])
		return;		/* its table is torn down */
	pte = victim_pte(n);
	switch (op) {
	case 0: case 1: case 2:		/* remap (W as the model has it) */
		*pte = vframes[f] | PTE_P | (model_w[n] ? PTE_W : 0);
		model_id[n] = ID_VICTIM(f);
		ops_done[0]++;
		break;
	case 3:				/* unmap */
		*pte = 0;
		model_id[n] = 0;
		ops_done[1]++;
		break;
	case 4: case 5:			/* write-protect (A/D the CPU sets are kept) */
		__atomic_fetch_and(pte, ~PTE_W, __ATOMIC_SEQ_CST);
		model_w[n] = false;
		ops_done[2]++;
		break;
	default:			/* writable again, mapped if it was not */
		if (!model_id[n]) {
			*pte = vframes[f] | LEAF;
			model_id[n] = ID_VICTIM(f);
		} else {
			__atomic_fetch_or(pte, PTE_W, __ATOMIC_SEQ_CST);
		}
		model_w[n] = true;
		ops_done[3]++;
		return;		/* more rights: no invalidation needed (SDM 4.10.4.3) */
	}
	shoot_add(victim_va(n));
}

/* Tear table slot ts down (its frame recycled), or build it again from a recycled frame. */
static void table_op(u64 *s, unsigned int ts)
{
	unsigned int first = SHARED_TABLES * VICTIMS + ts * VICTIMS;

	if (table_frame[ts]) {
		*pde[TABLE_SLOT + ts] = 0;
		for (unsigned int i = 0; i < VICTIMS; i++)
			model_id[first + i] = 0;
		shootdown(true);
		recycled[nrecycled++] = table_frame[ts];
		table_frame[ts] = 0;
		ops_done[4]++;
		if (nrecycled > 1 && nvframes < VFRAMES_MAX) {
			/* The oldest recycled table frame becomes a data frame. */
			u64 pa = recycled[0];

			for (unsigned int i = 1; i < nrecycled; i++)
				recycled[i - 1] = recycled[i];
			nrecycled--;
			frame_init(pa, ID_VICTIM(nvframes));
			vframes[nvframes++] = pa;
			ops_done[6]++;
		}
		return;
	}
	table_frame[ts] = nrecycled ? recycled[--nrecycled] : alloc_frame();
	memset(phys_to_virt(table_frame[ts]), 0, PAGE_SIZE);
	for (unsigned int i = 0; i < VICTIMS; i++) {
		unsigned int f = rnd(s) % nvframes;

		((volatile u64 *)phys_to_virt(table_frame[ts]))[i] = vframes[f] | LEAF;
		model_id[first + i] = ID_VICTIM(f);
		model_w[first + i] = true;
	}
	/* Not present -> present: no invalidation (SDM 4.10.4.3); the others must see it. */
	*pde[TABLE_SLOT + ts] = table_frame[ts] | PTE_P | PTE_W;
	ops_done[5]++;
}

/* The 2 MiB page: remap it, split it into a leaf table, or merge it back. */
static void large_op(u64 *s)
{
	unsigned int op = rnd(s) % 3;

	if (large_split) {		/* merge: the leaf table is freed and recycled */
		*pde[LARGE_SLOT] = lframes[large_frame] | PTE_P | PTE_W | PTE_PS;
		shootdown(true);
		recycled[nrecycled++] = large_table;
		large_split = false;
	} else if (op == 0 && nrecycled) {	/* split over the same frames */
		volatile u64 *t;

		large_table = recycled[--nrecycled];
		t = phys_to_virt(large_table);
		for (unsigned int sub = 0; sub < 512; sub++)
			t[sub] = (lframes[large_frame] + sub * PAGE_SIZE) | LEAF;
		*pde[LARGE_SLOT] = large_table | PTE_P | PTE_W;
		shootdown(true);
		large_split = true;
	} else {
		large_frame = (large_frame + 1 + rnd(s) % (LARGE_FRAMES - 1)) % LARGE_FRAMES;
		*pde[LARGE_SLOT] = lframes[large_frame] | PTE_P | PTE_W | PTE_PS;
		shootdown(true);
	}
	ops_done[7]++;
}

static void mapper(unsigned int p)
{
	u64 s = 0x9e3779b97f4a7c15ull * (p + 1);

	if (p % 4 == 3) {
		table_op(&s, (p / 4) % TABLE_SLOTS);
	} else if (p % 4 == 1) {
		large_op(&s);
	} else {
		for (unsigned int i = 0; i < OPS; i++)
			leaf_op(&s, p % (SHARED_TABLES + TABLE_SLOTS));
		shootdown(false);
	}
	__atomic_store_n(&phase_done, p + 1, __ATOMIC_RELEASE);
}

/* ---- the others during a phase, and everyone after it ---------------------------------- */

static u64 private_value(unsigned int cpu, unsigned int p, unsigned int k)
{
	return (u64)cpu << 48 | (u64)p << 16 | k;
}

/* What CPU me wrote last to private page k: in the last phase it was not the mapper. */
static u64 last_private_value(unsigned int me, unsigned int n, unsigned int k)
{
	for (unsigned int p = PHASES; p-- > 0;)
		if (p % n != me)
			return private_value(me, p, k);
	return 0;	/* alone: never a user, the frame is as alloc_frame() left it */
}

static void user(unsigned int me, unsigned int p)
{
	u64 s = 0xc0ffee + me * 7919 + p;

	/* Every private page once (their final contents must not depend on timing), then on
	 * until the mapper is done, the same value again each time. */
	for (u32 i = 0; i < SHARED_TABLES * PRIV_PER_CPU ||
			__atomic_load_n(&phase_done, __ATOMIC_ACQUIRE) != p + 1; i++) {
		unsigned int k = i % (SHARED_TABLES * PRIV_PER_CPU);
		unsigned int n = rnd(&s) % (NVA + 1), w = 2 + rnd(&s) % 4;
		unsigned long va = n < NVA ? victim_va(n)
					   : slot_va(LARGE_SLOT, rnd(&s) % 512);
		struct try_result r;

		/* Idempotent: the same value every time in this phase. */
		*(volatile u64 *)private_va(me, k / PRIV_PER_CPU, k % PRIV_PER_CPU) =
			private_value(me, p, k);
		r = try_read(va + w * 8);
		if (!r.fault && r.val != PAYLOAD(w))
			__atomic_add_fetch(&bad_payload, 1, __ATOMIC_RELAXED);
		if (i % 4 == 0)		/* writes too; WCONST is there already */
			try_write(va + 8, WCONST);
	}
}

static u64 check(unsigned int region, unsigned long va, u64 id, bool writable, u64 h)
{
	struct try_result r = try_read(va), w;

	__atomic_add_fetch(&checks[region], 1, __ATOMIC_RELAXED);
	h = mix(h, r.fault ? r.fault : r.val);
	if (!id) {
		if (!r.fault)
			__atomic_add_fetch(&bad[region][K_PRESENT], 1, __ATOMIC_RELAXED);
		else if (r.fault != (1ull << 32))	/* not present, read, supervisor */
			__atomic_add_fetch(&bad[region][K_MISSING], 1, __ATOMIC_RELAXED);
		return h;
	}
	if (r.fault)
		__atomic_add_fetch(&bad[region][K_MISSING], 1, __ATOMIC_RELAXED);
	else if (r.val != id)
		__atomic_add_fetch(&bad[region][K_FRAME], 1, __ATOMIC_RELAXED);
	w = try_write(va + 8, WCONST);
	h = mix(h, w.fault);
	if (!writable && !w.fault)
		__atomic_add_fetch(&bad[region][K_WRITE], 1, __ATOMIC_RELAXED);
	else if (writable ? w.fault != 0 : w.fault != ((1ull << 32) | PFEC_P | PFEC_W))
		__atomic_add_fetch(&bad[region][K_WRITE_FAULT], 1, __ATOMIC_RELAXED);
	return h;
}

static const unsigned int large_subs[LARGE_CHECKS] = { 0, 1, 255, 511 };

static u64 verify(u64 h)
{
	for (unsigned int n = 0; n < NVA; n++)
		h = check(n < SHARED_TABLES * VICTIMS ? R_SHARED : R_TABLES, victim_va(n),
			  model_id[n], model_w[n], h);
	for (unsigned int i = 0; i < LARGE_CHECKS; i++)
		h = check(R_LARGE, slot_va(LARGE_SLOT, large_subs[i]),
			  ID_LARGE(large_frame, large_subs[i]), true, h);
	return h;
}

static void stress(void *arg)
{
	unsigned int me = smp_id(), n = cpu_count();
	u64 h = 0xcbf29ce484222325ull;

	(void)arg;
	sti();
	for (unsigned int p = 0; p < PHASES; p++) {
		smp_barrier();
		if (me == p % n)
			mapper(p);
		else
			user(me, p);
		smp_barrier();		/* the shootdown is complete */
		h = verify(h);
		smp_barrier();
	}
	verify_digest[me] = h;
	for (unsigned int k = 0; k < SHARED_TABLES * PRIV_PER_CPU; k++)
		if (*(volatile u64 *)private_va(me, k / PRIV_PER_CPU, k % PRIV_PER_CPU) !=
		    last_private_value(me, n, k))
			__atomic_add_fetch(&bad_private, 1, __ATOMIC_RELAXED);
	cli();
}

int main(void)
{
	static const char *const region_name[REGIONS] = {
		"shared leaf tables", "rebuilt leaf tables", "2 MiB page",
	};
	unsigned int n, want = 0;
	u64 v, h;
	bool same = true;

	pic_init();
	apic_vectors_init();
	apic_write(APIC_SVR, APIC_SVR_ENABLE | 0xff);
	apic_set_handler(VEC_SHOOT, on_shoot);
	if (!paging_init(PAGING_LONG))
		return report_summary();
	map_page(read_cr3(), APIC_DEFAULT_BASE, APIC_DEFAULT_BASE, PTE_P | PTE_W | PTE_PCD,
		 LEVEL_PTE);
	set_page_fault_handler(on_page_fault);
	if (cmdline_get_u64("cpus", &v))
		want = (unsigned int)v;
	setup();
	n = smp_init(0);
	if (want)
		report(n == want, "%u CPUs running", want);
	on_cpus(stress, NULL);
	for (unsigned int c = 1; c < n; c++)
		same &= verify_digest[c] == verify_digest[0];
	report(same, "every CPU saw the same translations after each shootdown");
	for (unsigned int r = 0; r < REGIONS; r++) {
		report(!bad[r][K_FRAME], "%s: no stale frame after the shootdown (%u checks)",
		       region_name[r], checks[r]);
		report(!bad[r][K_PRESENT], "%s: unmapped pages fault", region_name[r]);
		report(!bad[r][K_MISSING], "%s: mapped pages do not fault (%u wrong)",
		       region_name[r], bad[r][K_MISSING]);
		report(!bad[r][K_WRITE], "%s: write-protected pages refuse writes (%u stale)",
		       region_name[r], bad[r][K_WRITE]);
		report(!bad[r][K_WRITE_FAULT], "%s: writable pages take writes, read-only ones "
		       "fault with P|W", region_name[r]);
	}
	report(!bad_payload, "reads during the changes only ever reach test frames (%u wrong)",
	       bad_payload);
	report(!bad_private, "private pages hold each CPU's last values");
	printf("smp_tlb: %u CPUs, %u phases: %llu remaps, %llu unmaps, %llu protects, "
	       "%llu unprotects, %llu table teardowns, %llu builds, %llu frames reused as data, "
	       "%llu 2 MiB changes\n", n, PHASES, ops_done[0], ops_done[1], ops_done[2],
	       ops_done[3], ops_done[4], ops_done[5], ops_done[6], ops_done[7]);
	printf("DIGEST: verify %#llx\n", verify_digest[0]);
	h = 0xcbf29ce484222325ull;
	for (unsigned int i = 0; i < nvframes; i++)
		for (int k = 0; k < 6; k++)
			h = mix(h, ((volatile u64 *)phys_to_virt(vframes[i]))[k]);
	printf("DIGEST: frames %#llx\n", h);
	h = 0xcbf29ce484222325ull;
	for (unsigned int c = 0; c < n; c++)
		for (unsigned int k = 0; k < SHARED_TABLES * PRIV_PER_CPU; k++)
			h = mix(h, *(volatile u64 *)private_va(c, k / PRIV_PER_CPU,
							      k % PRIV_PER_CPU));
	printf("DIGEST: private-%u %#llx\n", n, h);
	return report_summary();
}
