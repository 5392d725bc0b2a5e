/*
 * The CPU of the simulated machines (reclaim_sim.c, flood_sim.c): it walks
 * the shadow tables in host-physical memory as hardware does, and caches
 * what it walked, as hardware may (SDM Vol. 3A 4.10):
 *
 *  - a TLB of translations (page number -> frame, combined rights, dirty,
 *    global). A hit sets no A bit anywhere; a write through a clean entry
 *    walks again to set D (SDM 4.8);
 *  - a PDE cache (linear bits 47:21 -> page table address and the rights of
 *    the entries above it, SDM 4.10.3.1). A TLB miss that hits it reads the
 *    PTE only: A is set in the leaf spte, not in the PDE spte above it, the
 *    very bit shadow reclaim and flood detection read. Entries are made
 *    only from entries with A already set (SDM 4.10.3.1), so a cleared A bit
 *    stays clear until a flush forces a full walk.
 *
 * Both are fully associative with LRU replacement: that hides the most A
 * bits for a given size, the hard case for software that reads them.
 * Invalidation follows SDM 4.10.4.1: INVLPG drops the address's TLB entry
 * (global or not) and every PDE-cache entry; MOV CR3 drops non-global TLB
 * entries and every PDE-cache entry; a full flush drops everything; a #PF
 * drops the entries used for the faulting address. Sizes of 0 give a CPU
 * with no caches (every access walks and sets A, the old model).
 *
 * Translations with CR4.SMEP or CR4.SMAP set are not cached (the rules are
 * not modelled here): they always walk.
 */
#ifndef TESTS_UNIT_SIM_CPU_H
#define TESTS_UNIT_SIM_CPU_H

#include "shadow/types.h"
#include "refmmu.h"

#define SIM_TLB_MAX 1536
#define SIM_PDE_MAX 64

/* Sizes of a current core: a 1536-entry second-level TLB, a 32-entry PDE cache. */
#define SIM_TLB_DEFAULT 1536
#define SIM_PDE_DEFAULT 32

/*
 * One cache: up to size entries keyed by a tag (linear page number, or
 * bits 47:21), found through a hash, replaced least recently used first.
 */
#define SIM_CACHE_HASH 512

struct sim_cache_entry {
	u64 tag;		/* key + 1 (0: empty) */
	u64 addr;		/* TLB: the frame; PDE cache: the page table */
	bool w, u, nx;		/* combined rights (PDE cache: of the entries above the PTE) */
	bool dirty, global;	/* TLB only */
	s32 hash_next;		/* chain of the bucket, -1 ends */
	s32 older, newer;	/* LRU list, -1 ends */
};

struct sim_cache {
	u32 size;
	s32 oldest, newest;
	s32 free;		/* unused entries, chained through hash_next */
	s32 bucket[SIM_CACHE_HASH];
	struct sim_cache_entry e[SIM_TLB_MAX];
};

struct sim_cpu_stats {
	u64 accesses, tlb_hits, pde_hits, walks, faults;
	u64 flushes;		/* full or non-global */
	u64 invlpgs;
};

struct sim_cpu {
	struct guest_mem *mem;	/* host-physical memory */
	struct sim_cache tlb, pde;
	struct sim_cpu_stats stats;
};

void sim_cpu_init(struct sim_cpu *cpu, struct guest_mem *hostmem, u32 tlb_size, u32 pde_size);

/*
 * An access to gva with the paging registers hw (CR3 = the shadow root):
 * GWALK_OK with the frame in r->gpa, GWALK_FAULT (a #PF the hypervisor
 * takes), or GWALK_NOT_RAM. *cached: the TLB answered (no walk, no A set).
 */
enum gwalk_status sim_cpu_access(struct sim_cpu *cpu, const struct gwalk_ctx *hw, u64 gva,
				 u32 access, struct ref_result *r, bool *cached);

/* A flush request of the shadow MMU (shadow_host.flush_tlb). */
void sim_cpu_flush(struct sim_cpu *cpu, enum shadow_flush what, u64 gva);

/*
 * Does the guest's own page-table walk (ctx on guest memory mem) allow the
 * access and give gpa? Reads only: no A or D bit of the guest is set, so
 * checking a translation the TLB served does not hide what the CPU did not
 * do.
 */
bool sim_guest_translates_to(const struct gwalk_ctx *ctx, struct guest_mem *mem, u64 gva,
			     u32 access, u64 gpa);

#endif
