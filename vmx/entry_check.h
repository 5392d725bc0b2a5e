/* A software VM-entry checker that names the SDM rule a failed entry broke (vmx/entry_check.c). */
#ifndef VMX_ENTRY_CHECK_H
#define VMX_ENTRY_CHECK_H

#include "lib/types.h"

/* Check the current VMCS's guest state (SDM 27.3.1); prints each violation, returns their count. */
int vmx_check_guest_state(void);

#endif
