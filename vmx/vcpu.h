/* A guest's vCPUs on VMX: their VMCSs, and running one for a time slice (vmx/vcpu.c). */
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
bool vcpu_create(struct vcpu *v, const struct guest_boot_state *s);
void vcpu_destroy(struct vcpu *v);
/* Run v until its slice ends, it halts or its guest ends. */
void vcpu_run_slice(struct vcpu *v, u64 slice_tsc);
/* The vCPU of g handling an exit on this CPU flushes its own tag (one
 * address, or all): its INVLPG, MOV CR3, paging-mode change. */
void vcpu_flush_local_tlb(struct guest *g, bool one_address, u64 gva);
/* Every vCPU of g, wherever it runs: synchronous (kicks and waits for those
 * in guest mode on other CPUs); for translations that lost rights or tables
 * that are freed, EPT entries changed by ageing. */
void vcpu_flush_guest_tlb(struct guest *g);
/* v leaves this CPU (VMCLEAR): any CPU may run it next. */
void vcpu_put(struct vcpu *v);

#endif
