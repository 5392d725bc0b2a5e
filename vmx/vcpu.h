/* One guest's vCPU on VMX: its VMCS, and running it for a time slice (vmx/vcpu.c). */
#ifndef VMX_VCPU_H
#define VMX_VCPU_H

#include "vmx/vmexit.h"

/* How the loader wants the guest to start. */
struct guest_boot_state {
	bool long_mode;     /* 64-bit mode with paging (ELF64), else 32-bit, paging off */
	u64 rip, rax, rbx, rsi, rdi, cr3;
	/* A GDT the loader wrote and the selectors to load from it (Linux's
	 * boot protocol wants CS 0x10, DS 0x18); 0: GDTR 0 and CS 0x08, DS 0x10. */
	u64 gdt_base;
	u16 gdt_limit, cs, ds;
};

/* After the guest's memory virtualization (g->mmu) is set up. */
bool vcpu_create(struct guest *g, const struct guest_boot_state *s);
void vcpu_destroy(struct guest *g);
/* Run g until its slice ends, it halts or it ends. */
void vcpu_run_slice(struct guest *g, u64 slice_tsc);
/* g leaves this CPU (VMCLEAR): any CPU may run it next. */
void vcpu_put(struct guest *g);

#endif
