/*
 * A simulated machine for the flood-detection tests and benchmark: one
 * long-mode guest on the real shadow MMU, a CPU that walks the shadow tables
 * in host-physical memory, setting spte A bits as hardware does, and caches
 * translations in a TLB and a PDE cache that set no A bit when they answer
 * (sim_cpu.h; the shadow MMU's flush requests, CR3 loads and INVLPGs
 * invalidate them), guest stores that exit to the emulator
 * when they hit a write-protected table (one shadow_guest_write() per store,
 * as vmx/emulate.c does for an instruction, a rep one included), and a
 * guest kernel whose address spaces it builds and tears down.
 *
 * Guest layout: RAM is mapped at linear address 0 by the kernel part (two
 * 2 MiB pages: the kernel writes page tables through it); space s has a
 * PML4, PDPT and PD and FSIM_TABLES page tables for its user part at
 * FSIM_USER_BASE; data frames come from FSIM_DATA_FRAME up.
 */
#ifndef TESTS_UNIT_FLOOD_SIM_H
#define TESTS_UNIT_FLOOD_SIM_H

#include "shadow/shadow.h"
#include "shadow/flood.h"
#include "refmmu.h"
#include "sim_cpu.h"

#define FSIM_RAM_PAGES 1024
#define FSIM_SPACES 8
#define FSIM_TABLES 4			/* user page tables per space */
#define FSIM_USER_BASE 0x8000000000ull	/* PML4 slot 1 */
#define FSIM_DATA_FRAME 256
#define FSIM_PTE_FLAGS (PTE_P | PTE_W | PTE_U)

struct fsim_counts {
	u64 emulated;		/* stores that exited to the emulator (one exit each) */
	u64 faults;		/* other shadow faults (one exit each) */
	u64 unshadowed;		/* frames unshadowed by the detector (both kinds) */
	u64 false_positives;
	u64 live_writes;
	u64 checks, kept, deferred;	/* use tests: made, found use, could not tell yet */
	u64 created;		/* shadow pages created */
	u64 errors;		/* wrong translations, failed audits, unexpected outcomes */
};

struct fsim {
	struct shadow_host host;
	struct ref_ram ram;
	struct shadow_mmu mmu;
	struct shadow_vcpu v;
	struct sim_cpu cpu;
	u64 emulated;
	u64 errors;
};

extern struct fsim fsim;

/* Fresh machine in long mode on space 0's CR3, flood detection on or off. */
void fsim_init(bool flood);
void fsim_destroy(void);
/* Guest frame of space s's PML4, PDPT, PD and user page table t. */
u64 fsim_pml4(u32 s);
u64 fsim_pt(u32 s, u32 t);
/* Linear address of user page p of table t (in any space). */
u64 fsim_user_gva(u32 t, u32 p);
/* Kernel linear address of guest-physical gpa. */
u64 fsim_kva(u64 gpa);
/* Switch to space s (MOV CR3). */
void fsim_switch(u32 s);
/* INVLPG gva; reload CR3 (a full flush of the address space's translations). */
void fsim_invlpg(u64 gva);
void fsim_flush(void);
/* CPU cache sizes of the next fsim_init() (default SIM_TLB_DEFAULT, SIM_PDE_DEFAULT). */
void fsim_set_cpu_caches(u32 tlb_entries, u32 pde_entries);
/* Give space s n present PTEs per table (plain stores: before the space is shadowed). */
void fsim_populate(u32 s, u32 n);
/* A guest load (user) from gva: faults handled, translation checked. */
void fsim_read(u64 gva);
/* A guest store of len bytes at gva (kernel): exits and emulation as the hypervisor does. */
void fsim_store(u64 gva, const void *data, u32 len, bool user);
/* lock andb / btr on a byte of a PTE: clear bit `bit` of the entry at gpa. */
void fsim_clear_bit(u64 pte_gpa, u32 bit);
u64 fsim_load64(u64 gpa);
/* Counters so far; shadow_audit() is run and its problems counted as errors. */
void fsim_counts(struct fsim_counts *c);

#endif

/*
 * The benchmark's patterns (flood_sim.c). setup() builds the situation,
 * run() is what is measured. live: the pattern writes tables of an address
 * space that keeps running, which must never be unshadowed.
 */
struct fsim_pattern {
	const char *name;
	bool live;
	void (*setup)(void);
	void (*run)(void);
};

extern const struct fsim_pattern fsim_patterns[];
extern const unsigned fsim_npatterns;

enum fsim_flood {
	FSIM_FLOOD_OFF,
	FSIM_FLOOD_ON,
	FSIM_FLOOD_COUNT_UPKEEP,	/* on, upkeep writes counted: the use test decides */
};

/* fsim_init(), the flood mode, the pattern; counters of its run() phase only (errors: all). */
void fsim_run_pattern(const struct fsim_pattern *p, enum fsim_flood mode, struct fsim_counts *c);
