/* Shadow-paging guests: the struct mmu_ops of vmx/mmu_shadow.c. */
#ifndef VMX_MMU_SHADOW_H
#define VMX_MMU_SHADOW_H

#include "vmx/mmu.h"

extern const struct mmu_ops shadow_mmu_ops;

#endif
