/* EPT guests: the struct mmu_ops of vmx/mmu_ept.c. */
#ifndef VMX_MMU_EPT_H
#define VMX_MMU_EPT_H

#include "vmx/mmu.h"

extern const struct mmu_ops ept_mmu_ops;

#endif
