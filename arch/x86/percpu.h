/*
 * Per-CPU data: one struct cpu_local per CPU, reached through the GS base
 * (%gs:0 holds its own address), which VM exits restore from the VMCS
 * host-state area (HOST_GS_BASE, SDM Vol. 3C 28.5.2). Index 0 is the boot
 * CPU; application processors follow in the order they started
 * (arch/x86/smp.c). Fields above arch/x86 are opaque pointers their layer owns.
 */
#ifndef ARCH_X86_PERCPU_H
#define ARCH_X86_PERCPU_H

#include "lib/types.h"

#define SMP_MAX_CPUS 16

struct cpu_local {
	struct cpu_local *self;  /* at %gs:0 */
	u32 index;               /* position in cpu_locals[] */
	u32 apic_id;
	void *vmxon_region;      /* vmx/vmx.c */
	void *current_vmcs;      /* vmx/vcpu.c: the vCPU whose VMCS is current here */
	void *loaded_vcpu;       /* core/run.c: whose FPU, MSR and debug registers are loaded */
};

extern struct cpu_local cpu_locals[SMP_MAX_CPUS];

static inline struct cpu_local *this_cpu(void)
{
	struct cpu_local *c;

	asm volatile("mov %%gs:0, %0" : "=r"(c));
	return c;
}

static inline u32 this_cpu_index(void)
{
	u32 i;

	asm volatile("movl %%gs:%c1, %0" : "=r"(i) : "i"(__builtin_offsetof(struct cpu_local, index)));
	return i;
}

#endif
