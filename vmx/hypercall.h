/* VMCALL hypercalls (ABI in tests/guests/PLATFORM.md; vmx/hypercall.c). */
#ifndef VMX_HYPERCALL_H
#define VMX_HYPERCALL_H

#include "vmx/vmexit.h"

enum exit_action handle_vmcall(struct vcpu *v, struct vmexit *e);

#endif
