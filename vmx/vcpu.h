/* VMCS set-up and running one guest (vmx/vcpu.c). */
#ifndef VMX_VCPU_H
#define VMX_VCPU_H

#include "vmx/guest.h"

/* How the loader wants the guest to start. */
struct guest_boot_state {
	bool long_mode;     /* 64-bit mode with paging (ELF64), else 32-bit, paging off */
	u64 rip, rax, rbx, rdi, cr3;
};

bool vcpu_create(struct guest *g, const struct guest_boot_state *s);
void vcpu_destroy(struct guest *g);
/* Run g until its slice ends, it halts or it ends. */
void vcpu_run_slice(struct guest *g, u64 slice_tsc);
/* The CR0/CR4 bits the host owns for this guest (vmx/cr.c). */
u64 cr0_host_owned(struct guest *g);
u64 cr4_host_owned(struct guest *g);
/* EFER written by the guest (vmx/cr.c); false: the guest was ended. */
bool guest_write_efer(struct guest *g, u64 v, bool *gp);

#endif
