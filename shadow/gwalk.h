/*
 * Guest page-table walker: translates a guest-virtual address the way the
 * CPU would (SDM Vol. 3A chapter 4) by reading the guest's own paging
 * structures, checks access rights, reports the exact #PF error code and
 * sets guest accessed/dirty bits. Used by the shadow MMU fault path and by
 * the instruction emulator. Pure logic: host-testable and freestanding.
 */
#ifndef SHADOW_GWALK_H
#define SHADOW_GWALK_H

#include "lib/types.h"
#include "mm/pte.h"

/* Control-register and EFER bits the walker reads (same values as arch/x86/cpu.h). */
#ifndef CR0_WP
#define CR0_WP BIT(16)
#endif
#ifndef CR0_PG
#define CR0_PG BIT(31)
#endif
#ifndef CR4_PSE
#define CR4_PSE BIT(4)
#endif
#ifndef CR4_PAE
#define CR4_PAE BIT(5)
#endif
#ifndef CR4_PGE
#define CR4_PGE BIT(7)
#endif
#ifndef CR4_SMEP
#define CR4_SMEP BIT(20)
#endif
#ifndef CR4_SMAP
#define CR4_SMAP BIT(21)
#endif
#ifndef EFER_LMA
#define EFER_LMA BIT(10)
#endif
#ifndef EFER_NXE
#define EFER_NXE BIT(11)
#endif

/*
 * Guest memory as the walker sees it: the host address of guest frame gfn
 * (a whole 4 KiB page), or NULL when the frame is not RAM (MMIO, hole).
 * Embed it in a bigger struct to carry private state.
 */
struct guest_mem {
	void *(*gfn_to_hva)(struct guest_mem *mem, u64 gfn);
};

/* The guest state that decides how an address is translated. */
struct gwalk_ctx {
	u64 cr0, cr3, cr4, efer;
	bool rflags_ac;		/* RFLAGS.AC: lifts SMAP for explicit supervisor accesses */
	u8 maxphyaddr;		/* guest MAXPHYADDR (CPUID 0x80000008), 32..52 */
	/*
	 * PAE paging only: the four PDPTE registers. The CPU loads them on
	 * MOV to CR3/CR0/CR4 and not on each walk (SDM 4.4.1), so they live
	 * here; fill them with gwalk_load_pdptes().
	 */
	u64 pdpte[4];
};

enum gwalk_mode {
	GWALK_MODE_OFF,		/* CR0.PG=0: linear = physical (32-bit) */
	GWALK_MODE_32BIT,	/* 2 levels of 4-byte entries, 4 MiB pages with CR4.PSE */
	GWALK_MODE_PAE,		/* PDPTE registers + 2 levels of 8-byte entries */
	GWALK_MODE_LONG,	/* 4 levels of 8-byte entries */
};

/*
 * Access kinds. The first three bits are the #PF error-code bits of the
 * same meaning, so a hardware error code can be passed as is.
 */
#define GACC_WRITE	PFEC_W		/* data write (otherwise a read) */
#define GACC_USER	PFEC_U		/* CPL 3 explicit access */
#define GACC_FETCH	PFEC_I		/* instruction fetch */
#define GACC_IMPLICIT	BIT(31)		/* implicit supervisor access (GDT, IDT, TSS...):
					 * SMAP applies regardless of RFLAGS.AC (SDM 4.6) */

enum gwalk_status {
	GWALK_OK,		/* translated and permitted */
	GWALK_FAULT,		/* #PF with result.pfec */
	GWALK_NOT_RAM,		/* a paging structure is not in RAM: result.gpa is the entry */
	GWALK_NONCANONICAL,	/* long mode, non-canonical address: #GP, not #PF */
};

#define GWALK_MAX_LEVELS 4

struct gwalk_result {
	enum gwalk_status status;
	u32 pfec;		/* GWALK_FAULT: the #PF error code */
	u64 gpa;		/* GWALK_OK: the translation; GWALK_NOT_RAM: the entry's gpa */
	u8 top_level;		/* first level read (0 when paging is off) */
	u8 last_level;		/* last level read: the leaf, or where the walk stopped */
	u64 page_size;		/* GWALK_OK: 4 KiB, 2 MiB, 4 MiB or 1 GiB */
	bool writable, user, nx; /* rights combined over all levels (SDM 4.6) */
	bool global;		/* leaf G bit, and CR4.PGE=1 */
	u8 pat_index;		/* leaf PAT:PCD:PWT, index into IA32_PAT */
	bool set_ad;		/* the walk set an A or D bit in a guest entry */
	/* Per level (index = level, 1 = PTE): the entry read, including any
	 * A/D bit this walk set, and its guest-physical address. */
	u64 pte[GWALK_MAX_LEVELS + 1];
	u64 pte_gpa[GWALK_MAX_LEVELS + 1];
};

enum gwalk_mode gwalk_mode(const struct gwalk_ctx *ctx);

/*
 * Translate gva for an access (GACC_* bits). Sets A bits on the
 * paging-structure entries the walk goes through, and A (D on a write) on
 * the leaf of a permitted access only, atomically in guest memory (see
 * gwalk.c for the exact rule). Returns result->status.
 */
enum gwalk_status gwalk(const struct gwalk_ctx *ctx, struct guest_mem *mem, u64 gva,
			u32 access, struct gwalk_result *result);

/*
 * PAE paging: load ctx->pdpte[] from the 32-byte table at CR3, as MOV to
 * CR3 does. Returns false (the caller injects #GP(0)) when a present PDPTE
 * sets a reserved bit or the table is not RAM (SDM 4.4.1).
 */
bool gwalk_load_pdptes(struct gwalk_ctx *ctx, struct guest_mem *mem);

/*
 * Helpers that decode one guest entry with the rules of ctx's mode, for
 * code that reads guest tables without a full walk (the shadow MMU).
 * level is 1..top; for PAE, level 3 means a PDPTE register.
 */
bool gwalk_entry_is_large(const struct gwalk_ctx *ctx, int level, u64 pte);
u64 gwalk_entry_rsvd_mask(const struct gwalk_ctx *ctx, int level, bool large);
u64 gwalk_entry_addr(const struct gwalk_ctx *ctx, int level, u64 pte, bool large);
/* Whether ctx's paging permits access given the rights combined over a walk (SDM 4.6). */
bool gwalk_access_permitted(const struct gwalk_ctx *ctx, u32 access, bool writable, bool user,
			    bool nx);
int gwalk_top_level(enum gwalk_mode mode);
int gwalk_entry_size(enum gwalk_mode mode);
/* log2 of the bytes one entry at this level maps. */
int gwalk_level_shift(enum gwalk_mode mode, int level);

#endif
