/*
 * The CPU a guest is told it has (vmx/features.c): CPUID, and the CR4, XCR0
 * and EFER bits that follow from it, so that what CPUID advertises, what the
 * control-register checks accept and what the EPT guest/host masks let a
 * guest set without an exit are one decision.
 */
#ifndef VMX_FEATURES_H
#define VMX_FEATURES_H

#include "guest/guest.h"
#include "arch/x86/cpu.h"

/* CPUID as guest g sees it, except CPUID.1:ECX.OSXSAVE, which mirrors the
 * guest's CR4 (vmx/cpuid.c adds it). */
struct cpuid_regs features_cpuid(const struct vcpu *v, u32 leaf, u32 subleaf);
/* CR4 bits a guest may set: the rest are reserved to it (#GP). */
u64 features_cr4_allowed(void);
/* Compute the host values the functions here cache, before other CPUs run guests. */
void features_init(void);
/* XCR0 bits a guest may enable with XSETBV. */
u64 features_xcr0_allowed(void);
/* EFER bits guest g may set with WRMSR. */
u64 features_efer_allowed(const struct vcpu *v);
/* The guest's MAXPHYADDR (CPUID.80000008H:EAX[7:0]). */
u32 features_maxphyaddr(void);

#endif
