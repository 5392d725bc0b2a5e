/*
 * Guest paging library for the paging test kernels (tests/guests/paging*.c): page tables in
 * the three x86 formats (32-bit 2-level, PAE, 4-level; SDM Vol. 3A 4.3-4.5) built in free
 * RAM, many address spaces sharing one identity map of RAM, map/unmap of test pages, A/D and
 * permission bits, CR0.WP/SMEP/SMAP control, and "probes": a read, write or instruction fetch
 * at CPL0 or CPL3 that may page-fault, reporting the error code and CR2 (lib/usermode.c).
 */
#ifndef GUEST_PAGING_H
#define GUEST_PAGING_H

#include "libguest.h"

enum paging_mode {
	PAGING_32,	/* 2-level, 4 KiB and (with CR4.PSE) 4 MiB pages; 32-bit builds */
	PAGING_PAE,	/* 3-level, PDPTEs loaded with CR3, 2 MiB pages; 32-bit builds */
	PAGING_LONG,	/* 4-level, 2 MiB and (if CPUID says so) 1 GiB pages; 64-bit builds */
};

/* Paging-structure entry bits (SDM Vol. 3A tables 4-4 to 4-20). */
#define PTE_P BIT(0)
#define PTE_W BIT(1)
#define PTE_U BIT(2)
#define PTE_PWT BIT(3)
#define PTE_PCD BIT(4)
#define PTE_A BIT(5)
#define PTE_D BIT(6)
#define PTE_PS BIT(7)		/* in a PDE or PDPTE: the entry maps a large page */
#define PTE_AVL9 BIT(9)		/* ignored by the CPU, free for software */
#define PTE_NX BIT(63)		/* PAE and 4-level only, with EFER.NXE */
#define PTE_ADDR_4K 0x000ffffffffff000ull

/* #PF error code (SDM Vol. 3A 4.7). */
#define PFEC_P BIT(0)
#define PFEC_W BIT(1)
#define PFEC_U BIT(2)
#define PFEC_RSVD BIT(3)
#define PFEC_I BIT(4)

#define CR0_WP BIT(16)
#define CR4_PSE BIT(4)
#define CR4_SMEP BIT(20)
#define CR4_SMAP BIT(21)
#define RFLAGS_AC BIT(18)

/* Entry levels, as in the SDM's names: 1 = PTE, 2 = PDE, 3 = PDPTE, 4 = PML4E. */
#define LEVEL_PTE 1
#define LEVEL_PDE 2
#define LEVEL_PDPTE 3
#define LEVEL_PML4E 4

/* What the CPU offers (CPUID), filled by paging_init(). */
struct paging_cpu {
	bool pse, pae, nx, smep, smap, gbpages;
};
extern struct paging_cpu paging_cpu;

/*
 * Detects features, builds the identity map of RAM (kernel pages supervisor-only, the user
 * stub text and stack user-accessible), turns paging on in `mode` (32-bit builds) or switches
 * to it (64-bit builds), sets CR0.WP and EFER.NXE (if NX exists, PAE and 4-level) and sets up
 * ring 3 (usermode_init()). Returns false, having printed why, if the CPU or build cannot
 * do `mode`. Call once.
 */
bool paging_init(enum paging_mode mode);
enum paging_mode paging_mode(void);
const char *paging_mode_name(enum paging_mode mode);
/* Number of levels (2, 3, 4), size of an entry (4 or 8 bytes). */
unsigned int paging_levels(void);
unsigned int pte_size(void);
/* NX usable: the CPU has it and the mode has an XD bit (PAE, 4-level); EFER.NXE is set. */
bool paging_has_nx(void);
/* Bytes mapped by one entry at `level` (4 KiB, 4 MiB or 2 MiB, 1 GiB, ...). */
u64 level_page_size(unsigned int level);
/* True if a leaf may sit at `level`: 1 always, 2 with PSE/PAE/4-level, 3 with 1 GiB pages. */
bool level_can_map(unsigned int level);
/*
 * Start of the virtual range the tests play with, outside the identity map and mapped by
 * top-level entries of its own in every address space: 1 GiB in 32-bit and PAE paging
 * (PDE 256, PDPTE 1), 512 GiB in 4-level paging (PML4E 1).
 */
unsigned long paging_test_base(void);

/* Frames: zeroed 4 KiB frames, and naturally aligned zeroed runs (large-page frames). */
u64 alloc_frame(void);
u64 alloc_frames_aligned(u64 size);
static inline void *phys_to_virt(u64 pa) { return (void *)(unsigned long)pa; }

/*
 * A new address space: a root sharing the identity map's tables with every other one, and
 * nothing in the test range. Returns its CR3 value (PAE: a 32-byte PDPT, several per page).
 */
unsigned long aspace_new(void);
/* The address space paging_init() switched to. */
unsigned long aspace_kernel(void);
static inline void aspace_switch(unsigned long cr3) { write_cr3(cr3); }

/*
 * Maps `va` to `pa` with a leaf at `level` (`flags` include PTE_P; PTE_PS is added above
 * level 1), creating missing tables with P|W|U (P only for PAE PDPTEs). Returns the leaf
 * entry, or NULL if a large leaf already covers va above `level`. No TLB flush.
 */
void *map_page(unsigned long cr3, unsigned long va, u64 pa, u64 flags, unsigned int level);
/* The entry at `level` on the walk for va, or NULL if the walk ends above it. */
void *pte_lookup(unsigned long cr3, unsigned long va, unsigned int level);
/* Reads and writes an entry of the current format (4 or 8 bytes; PAE: high half first). */
u64 pte_get(const void *entry);
void pte_set(void *entry, u64 val);
/* Frame address of an entry at `level` (large leaves: the large frame). */
u64 pte_addr(u64 entry);

static inline void invlpg(unsigned long va)
{
	asm volatile("invlpg (%0)" : : "r"(va) : "memory");
}

/* MOV to CR3 with the same value: flushes every (non-global) translation. */
static inline void flush_tlb(void) { write_cr3(read_cr3()); }

/* Control bits; the SMEP/SMAP setters return false (and change nothing) without CPUID support. */
void set_cr0_wp(bool on);
bool set_smep(bool on);
bool set_smap(bool on);
static inline void stac(void) { asm volatile("stac" ::: "memory", "cc"); }
static inline void clac(void) { asm volatile("clac" ::: "memory", "cc"); }

/* --- Ring 3 and probes: lib/usermode.c, lib/usermode.S -------------------------------------- */

/* GDT with ring-3 segments and a TSS, the return gate; called by paging_init(). */
void usermode_init(void);
/* The pages that must be user-accessible in every address space. */
unsigned long user_text_begin(void);
unsigned long user_text_end(void);
unsigned long user_stack_page(void);

enum probe_access { PROBE_READ, PROBE_WRITE, PROBE_EXEC };

struct probe_result {
	bool faulted;
	unsigned long error_code, cr2;
	unsigned long value;		/* what a successful read returned */
};

/*
 * One access to `va` at CPL `cpl` (0 or 3): a word read, a write of `value`, or a call to va
 * (which must hold a RET, 0xc3, for the call to come back). A #PF at exactly that access is
 * caught and recorded; any other exception is the library's usual unexpected one. With `ac`
 * a CPL0 access runs with EFLAGS.AC=1 (STAC; needs SMAP).
 */
struct probe_result probe(unsigned long va, enum probe_access access, int cpl, bool ac,
			  unsigned long value);

/*
 * A #PF handler for faults other than probes (e.g. copy-on-write): returns true if it fixed
 * the cause, and the faulting instruction is restarted; false makes it an unexpected
 * exception. NULL removes it.
 */
void set_page_fault_handler(bool (*handler)(struct intr_frame *frame, unsigned long cr2));

#endif
