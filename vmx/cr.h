/* Control registers as the guest sees them, and MOV CR exits (vmx/cr.c). */
#ifndef VMX_CR_H
#define VMX_CR_H

#include "vmx/vmexit.h"

/* With unrestricted guest, CR0.PE and PG are the guest's own (SDM 26.3.1.1). */
#define CR0_UNRESTRICTED_FREE (CR0_PE | CR0_PG)

/* The single place that changes the guest's CR0, CR4 or EFER: validates
 * nothing (callers do), asks the guest's MMU side what the CPU really runs
 * with, keeps "IA-32e mode guest" in step. false: the guest was ended, or
 * *gp says to inject #GP. */
bool guest_set_control_regs(struct vcpu *v, u64 cr0, u64 cr4, u64 efer, bool *gp);
/* The guest's own values (read shadows where the host owns bits). */
u64 guest_cr0(void);
u64 guest_cr4(void);
u64 guest_cr3(struct vcpu *v);
u64 guest_efer(struct vcpu *v);
/* IA-32e mode with a 64-bit code segment (CS.L=1). */
bool guest_in_64bit_mode(struct vcpu *v);
/* EFER written by the guest (WRMSR); false: the guest was ended. */
bool guest_write_efer(struct vcpu *v, u64 val, bool *gp);

enum exit_action handle_cr_access(struct vcpu *v, struct vmexit *e);

#endif
