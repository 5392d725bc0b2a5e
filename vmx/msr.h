/* RDMSR/WRMSR/RDPMC exits, and the MSRs switched with the guest (vmx/msr.c). */
#ifndef VMX_MSR_H
#define VMX_MSR_H

#include "vmx/vmexit.h"

/* The emulated MSRs' reset values. */
void msr_init_guest(struct vcpu *v);
enum exit_action handle_rdmsr(struct vcpu *v, struct vmexit *e);
enum exit_action handle_wrmsr(struct vcpu *v, struct vmexit *e);
/* RDPMC: there are no performance counters. */
enum exit_action handle_rdpmc(struct vcpu *v, struct vmexit *e);
/* On a guest switch: keep what the outgoing guest may have changed without
 * an exit (SWAPGS rewrites KERNEL_GS_BASE), then load the incoming one's
 * (to NULL: only keep, the guest leaves this CPU). */
void msr_switch(struct vcpu *from, struct vcpu *to);

#endif
