/*
 * A simulated machine for reclaim tests and the reclaim benchmark: guests
 * with their own RAM and shadow MMU, one host frame pool, and per guest a
 * CPU (sim_cpu.h) that walks the shadow tables in host-physical memory,
 * setting A bits as hardware does, and caches translations in a TLB and a
 * PDE cache, which set no A bit when they answer; the shadow MMU's flush
 * requests, CR3 loads and INVLPGs invalidate them. It takes shadow faults
 * and checks every translation against the guest tables.
 */
#ifndef TESTS_UNIT_RECLAIM_SIM_H
#define TESTS_UNIT_RECLAIM_SIM_H

#include "shadow/shadow.h"
#include "shadow/reclaim.h"
#include "refmmu.h"
#include "sim_cpu.h"

#ifndef SIM_MAX_GUESTS  /* the SMP reclaim benchmark builds with more */
#define SIM_MAX_GUESTS 3
#endif
#define SIM_RAM_PAGES 2048	/* per guest */
#define SIM_HOST_FRAMES 8192	/* shared by all guests' shadow and bookkeeping pages */

struct sim_guest {
	struct shadow_host host;
	struct ref_ram ram;
	struct shadow_mmu mmu;
	struct shadow_vcpu v;
	struct sim_cpu cpu;
	u64 ram_hpa;		/* host-physical base of its RAM */
	u64 frames;		/* host frames it holds (tables and bookkeeping) */
	u64 over_limit;		/* accesses after which it held more frames than its limit,
				 * or other than its shadow MMU counts */
};

/* The guest-memory layout of struct sim_workload. */
struct sim_workload {
	u32 hot_spaces;		/* address spaces that run again and again */
	u32 cold_spaces;	/* a stream of address spaces run in turn: cold */
	u32 cold_percent;	/* share of runs that take the next cold space */
	bool cold_once;		/* each cold run takes a new space (cold_spaces >= cold runs) */
	u32 tables_per_space;	/* user page tables of each space */
	u32 pages_per_table;	/* pages mapped (and touched) in each (0: 8) */
	u32 kernel_tables;	/* page tables of the global kernel part all spaces share */
	u32 kernel_percent;	/* share of accesses to the kernel part (0: 25) */
	u32 shared_percent;	/* share of user accesses to one user page table that every
				 * space links after its own (like hotcold's; 0: none) */
	u32 accesses_per_run;	/* after each CR3 load */
	u32 runs;
	u64 seed;
};

struct sim_result {
	u64 faults, created, zapped, evictions, examined;
	u64 no_memory;		/* accesses refused with SHADOW_NO_MEMORY */
	u64 errors;		/* wrong translations, broken walks, failed audits */
};

enum sim_access {
	SIM_OK,
	SIM_NO_MEMORY,		/* the fault was refused: the guest must wait */
	SIM_ERROR,
};

extern struct sim_guest sim_guests[SIM_MAX_GUESTS];
extern u64 sim_host_frames_used;

/* Fresh machine: every guest's RAM zeroed, no frame in use, CPU caches of
 * the sizes last set with sim_set_cpu_caches() (default SIM_TLB_DEFAULT and
 * SIM_PDE_DEFAULT entries). */
void sim_reset(void);
void sim_set_cpu_caches(u32 tlb_entries, u32 pde_entries);
/* Guest idx: shadow_init(), attach to pool (if not NULL) with limit and policy,
 * vCPU with paging off. */
/* Guests made by sim_guest_init() prefetch (struct shadow_options): off by default. */
extern bool sim_prefetch;
bool sim_guest_init(int idx, struct shadow_pool *pool, u64 limit,
		    enum shadow_reclaim_policy policy);
void sim_guest_destroy(int idx);
/*
 * Policy SHADOW_RECLAIM_CALLER in the simulation: evict the least recently
 * used page, every use counted (the TLB's too), as no A bit can tell.
 */
struct shadow_page *sim_lru_pick(struct shadow_mmu *mmu, u64 *examined);
/* A guest access to gva (GACC_* bits) on the shadow tables, faults handled. */
enum sim_access sim_access(struct sim_guest *g, u64 gva, u32 access);
/* 64-bit guest store/load in guest RAM (plain, for setting up tables). */
void sim_store64(struct sim_guest *g, u64 gpa, u64 val);
u64 sim_load64(struct sim_guest *g, u64 gpa);

/* Build w's address spaces in a guest's RAM and switch it to long mode. */
void sim_workload_setup(struct sim_guest *g, const struct sim_workload *w);
/* CR3 value of space s (hot spaces first, then cold ones). */
u64 sim_space_cr3(const struct sim_workload *w, u32 s);
/* A user address in space s: table t, page p; a kernel address: table t, page p. */
u64 sim_user_gva(u32 t, u32 p);
u64 sim_kernel_gva(u32 t, u32 p);
/* Run the workload (after setup) on guest g; counts are this run's only. */
void sim_workload_run(struct sim_guest *g, const struct sim_workload *w, struct sim_result *r);
/* Setup and run on a fresh machine with one guest at limit under policy. */
void sim_workload(const struct sim_workload *w, u64 limit, enum shadow_reclaim_policy policy,
		  struct sim_result *r);

/* The workload of the reclaim tests: hot set of about 52 shadow pages. */
extern const struct sim_workload sim_bench_workload;
/*
 * The benchmark's hot set + cold stream, shaped like the hotcold guest:
 * 8 hot spaces of 2 page tables with 2 pages each plus a page table they
 * all share, a global kernel part, and one run in 4 on a new space never
 * seen again.
 */
extern const struct sim_workload sim_hotcold_workload;

#endif
