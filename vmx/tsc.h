/* Moving a guest's clock (vmx/tsc.c); reading it is guest_tsc() (guest/guest.h). */
#ifndef VMX_TSC_H
#define VMX_TSC_H

#include "guest/guest.h"

/* guest TSC = host TSC + offset, from now on (the VMCS TSC offset, SDM 26.6.5). */
void guest_set_tsc_offset(struct vcpu *v, u64 offset);

#endif
