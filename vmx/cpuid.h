/* CPUID and XSETBV exits: what the guest is told the CPU has (vmx/cpuid.c). */
#ifndef VMX_CPUID_H
#define VMX_CPUID_H

#include "vmx/vmexit.h"

enum exit_action handle_cpuid(struct vcpu *v, struct vmexit *e);
enum exit_action handle_xsetbv(struct vcpu *v, struct vmexit *e);

#endif
