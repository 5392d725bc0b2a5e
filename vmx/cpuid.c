/*
 * CPUID and XSETBV exits. Guests see the host's CPUID with what we do not
 * virtualise taken out (VMX, SMX, x2APIC, PDCM, MONITOR, LA57, INVPCID or
 * RDTSCP when not enabled), the hypervisor bit set, the TSC frequency as
 * measured, and the umbra leaves at 0x40000000 (tests/guests/PLATFORM.md).
 */
#include "vmx/cpuid.h"
#include "vmx/cr.h"
#include "vmx/event.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "arch/x86/cpu.h"
#include "arch/x86/machine.h"

#define HV_LEAF_BASE 0x40000000u
#define HV_LEAF_MAX 0x40000001u
#define HV_INTERFACE_VERSION 1
/* "UmbraUmbraHV" in EBX, ECX, EDX order */
#define HV_SIG_EBX 0x72626d55u  /* "Umbr" */
#define HV_SIG_ECX 0x626d5561u  /* "aUmb" */
#define HV_SIG_EDX 0x56486172u  /* "raHV" */

static struct cpuid_regs guest_cpuid(u32 leaf, u32 subleaf)
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
	/* Out-of-range leaves return the highest basic leaf (SDM Vol. 2A, CPUID),
	 * which then gets the same filtering as when asked for directly. */
	u32 max_basic = cpuid(0, 0).eax, max_ext = cpuid(0x80000000, 0).eax;

	if ((leaf > max_basic && leaf < 0x80000000) || leaf > max_ext)
		leaf = max_basic;
	r = cpuid(leaf, subleaf);
	switch (leaf) {
	case 1:
		r.ecx &= ~((1u << 5) | (1u << 6) | (1u << 21) | (1u << 15) | (1u << 3) |
			   (1u << 27));
		r.ecx |= (1u << 31) | (1u << 24);  /* hypervisor; TSC-deadline timer (emulated) */
		if (guest_cr4() & CR4_OSXSAVE)
			r.ecx |= 1u << 27;  /* OSXSAVE mirrors the guest's CR4 */
		r.ebx &= 0x0000ffffu;   /* one logical CPU, APIC ID 0 */
		r.ebx |= 1u << 16;
		r.edx &= ~(1u << 28);   /* no HTT */
		break;
	case 7:
		if (subleaf == 0) {
			if (!vmx_caps.invpcid)
				r.ebx &= ~(1u << 10);
			r.ecx &= ~(1u << 16);  /* LA57: no 5-level paging */
		}
		break;
	case 0x15:
		/* The TSC/crystal ratio would contradict the TSC we measured (it does
		 * in Bochs, where the TSC counts instructions): not enumerated. */
		r = (struct cpuid_regs){ 0, 0, 0, 0 };
		break;
	case 0x16:
		/* Base frequency: the TSC rate guests will actually observe. */
		if (machine_tsc_khz())
			r.eax = (u32)(machine_tsc_khz() / 1000);
		break;
	case 0x80000001:
		if (!vmx_caps.rdtscp)
			r.edx &= ~(1u << 27);
		break;
	}
	return r;
}

enum exit_action handle_cpuid(struct guest *g, struct vmexit *e)
{
	struct cpuid_regs r = guest_cpuid((u32)g->regs.rax, (u32)g->regs.rcx);

	g->regs.rax = r.eax;
	g->regs.rbx = r.ebx;
	g->regs.rcx = r.ecx;
	g->regs.rdx = r.edx;
	skip_instruction(e);
	return EXIT_RESUME;
}

/* XSETBV (SDM Vol. 1 13.3): validate against what the host supports. */
enum exit_action handle_xsetbv(struct guest *g, struct vmexit *e)
{
	u64 value = (g->regs.rdx << 32) | (u32)g->regs.rax;
	struct cpuid_regs xs = cpuid(0xd, 0);
	u64 supported = ((u64)xs.edx << 32) | xs.eax;

	if (!(guest_cr4() & CR4_OSXSAVE)) {
		inject_ud(g);
		return EXIT_RESUME;
	}
	if ((u32)g->regs.rcx != 0 || !(value & 1) || (value & ~supported) ||
	    ((value & 4) && !(value & 2))) {
		inject_gp0(g);
		return EXIT_RESUME;
	}
	g->xcr0 = value;
	asm volatile("xsetbv" : : "a"((u32)value), "d"((u32)(value >> 32)), "c"(0));
	skip_instruction(e);
	return EXIT_RESUME;
}
