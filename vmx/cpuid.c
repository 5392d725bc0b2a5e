/*
 * CPUID and XSETBV exits. Guests see the CPU of vmx/features.c (the host's
 * CPUID with what umbra does not back taken out), CPUID.1:ECX.OSXSAVE as
 * their own CR4.OSXSAVE, and the umbra leaves at 0x40000000
 * (tests/guests/PLATFORM.md).
 */
#include "vmx/cpuid.h"
#include "vmx/cr.h"
#include "vmx/event.h"
#include "vmx/features.h"
#include "vmx/mmu.h"
#include "arch/x86/cpu.h"

#define HV_LEAF_BASE 0x40000000u
#define HV_LEAF_MAX 0x40000001u
#define HV_INTERFACE_VERSION 1
/* "UmbraUmbraHV" in EBX, ECX, EDX order */
#define HV_SIG_EBX 0x72626d55u  /* "Umbr" */
#define HV_SIG_ECX 0x626d5561u  /* "aUmb" */
#define HV_SIG_EDX 0x56486172u  /* "raHV" */
#define L1_ECX_OSXSAVE (1u << 27)

/* XCR0 components (SDM Vol. 1 13.1). */
#define XCR0_X87 BIT(0)
#define XCR0_SSE BIT(1)
#define XCR0_AVX BIT(2)
#define XCR0_BNDREGS BIT(3)
#define XCR0_BNDCSR BIT(4)
#define XCR0_AVX512 (BIT(5) | BIT(6) | BIT(7))  /* opmask, ZMM_Hi256, Hi16_ZMM */
#define XCR0_TILECFG BIT(17)
#define XCR0_TILEDATA BIT(18)

static struct cpuid_regs guest_cpuid(struct vcpu *v, u32 leaf, u32 subleaf)
{
	struct cpuid_regs r;

	if (leaf >= HV_LEAF_BASE && leaf <= HV_LEAF_BASE + 0xff) {
		r = (struct cpuid_regs){ 0, 0, 0, 0 };
		if (leaf == HV_LEAF_BASE)
			r = (struct cpuid_regs){ HV_LEAF_MAX, HV_SIG_EBX, HV_SIG_ECX, HV_SIG_EDX };
		else if (leaf == HV_LEAF_BASE + 1)
			r.eax = HV_INTERFACE_VERSION;
		return r;
	}
	r = features_cpuid(v, leaf, subleaf);
	if (leaf == 1 && (guest_cr4() & CR4_OSXSAVE))
		r.ecx |= L1_ECX_OSXSAVE;
	return r;
}

enum exit_action handle_cpuid(struct vcpu *v, struct vmexit *e)
{
	struct cpuid_regs r = guest_cpuid(v, (u32)v->regs.rax, (u32)v->regs.rcx);

	v->regs.rax = r.eax;
	v->regs.rbx = r.ebx;
	v->regs.rcx = r.ecx;
	v->regs.rdx = r.edx;
	skip_instruction(e);
	return EXIT_RESUME;
}

/* The XCR0 values XSETBV accepts (SDM Vol. 2C XSETBV, Vol. 1 13.3): x87 always
 * on; AVX needs SSE; MPX's two components together; AVX-512's three together
 * and with AVX; AMX's two together; nothing the guest was not offered. */
static bool xcr0_valid(u64 v, u64 allowed)
{
	return (v & XCR0_X87) && !(v & ~allowed) &&
	       (!(v & XCR0_AVX) || (v & XCR0_SSE)) &&
	       !(v & XCR0_BNDREGS) == !(v & XCR0_BNDCSR) &&
	       (!(v & XCR0_AVX512) || ((v & XCR0_AVX512) == XCR0_AVX512 && (v & XCR0_AVX))) &&
	       !(v & XCR0_TILECFG) == !(v & XCR0_TILEDATA);
}

/* XSETBV always exits. The hypervisor then runs it with the guest's value,
 * so every value the CPU would refuse is refused here first: the host's
 * XSETBV can never fault. */
enum exit_action handle_xsetbv(struct vcpu *v, struct vmexit *e)
{
	u64 value = (v->regs.rdx << 32) | (u32)v->regs.rax;

	if (!(guest_cr4() & CR4_OSXSAVE)) {
		inject_ud(v);
		return EXIT_RESUME;
	}
	if (guest_cpl() != 0 || (u32)v->regs.rcx != 0 ||
	    !xcr0_valid(value, features_xcr0_allowed())) {
		inject_gp0(v);
		return EXIT_RESUME;
	}
	v->xcr0 = value;
	asm volatile("xsetbv" : : "a"((u32)value), "d"((u32)(value >> 32)), "c"(0));
	skip_instruction(e);
	return EXIT_RESUME;
}
