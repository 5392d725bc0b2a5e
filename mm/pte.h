/*
 * x86 paging-structure entry formats, described once (SDM Vol. 3A 4.3-4.5,
 * EPT: 29.3.2). Shared by the host page tables (mm/), the EPT (ept/), the
 * guest walker and the shadow MMU (shadow/). Pure definitions: no code.
 */
#ifndef MM_PTE_H
#define MM_PTE_H

#include "lib/types.h"

/* Ordinary x86 paging entries (32-bit, PAE and 4-level share the low bits). */
#define PTE_P    BIT(0)   /* present */
#define PTE_W    BIT(1)   /* read/write */
#define PTE_U    BIT(2)   /* user/supervisor */
#define PTE_PWT  BIT(3)
#define PTE_PCD  BIT(4)
#define PTE_A    BIT(5)   /* accessed */
#define PTE_D    BIT(6)   /* dirty (leaf only) */
#define PTE_PS   BIT(7)   /* page size (PDE/PDPTE); PAT in a 4 KiB PTE */
#define PTE_PAT4K BIT(7)
#define PTE_G    BIT(8)   /* global (leaf only) */
#define PTE_PAT_LARGE BIT(12)  /* PAT bit of a 2/4 MiB or 1 GiB leaf */
#define PTE_NX   BIT(63)  /* execute-disable (PAE and 4-level, with EFER.NXE) */

/* Address bits of a 64-bit entry, for a given MAXPHYADDR. */
#define PTE_ADDR_MASK(maxphy) ((BIT(maxphy) - 1) & ~0xfffull)
#define PTE_ADDR_MASK52 0x000ffffffffff000ull

/* #PF error code bits (SDM 4.7). */
#define PFEC_P    BIT(0)  /* 0: not present, 1: protection violation */
#define PFEC_W    BIT(1)  /* write access */
#define PFEC_U    BIT(2)  /* user-mode access */
#define PFEC_RSVD BIT(3)  /* reserved bit set in a paging entry */
#define PFEC_I    BIT(4)  /* instruction fetch */
#define PFEC_PK   BIT(5)

/* EPT entries (SDM 29.3.2). */
#define EPT_R     BIT(0)
#define EPT_W     BIT(1)
#define EPT_X     BIT(2)
#define EPT_RWX   (EPT_R | EPT_W | EPT_X)
#define EPT_MT_SHIFT 3            /* memory type, leaf only */
#define EPT_MT_UC 0ull
#define EPT_MT_WB 6ull
#define EPT_IPAT  BIT(6)          /* ignore guest PAT, leaf only */
#define EPT_LARGE BIT(7)          /* 2 MiB / 1 GiB leaf */
#define EPT_A     BIT(8)          /* accessed (with EPTP A/D enable) */
#define EPT_D     BIT(9)          /* dirty, leaf only */

#define PT_ENTRIES 512
#define PT_INDEX(addr, level) (((addr) >> (12 + 9 * ((level) - 1))) & 0x1ff)

#endif
