/*
 * RDMSR/WRMSR exits (no MSR bitmap: every access exits). An allow-list;
 * everything else raises #GP(0), as an absent MSR does on hardware. MSRs
 * with a VMCS guest-state field live there; the syscall family lives in
 * struct guest and in the real MSRs while that guest runs.
 */
#include "vmx/msr.h"
#include "vmx/cr.h"
#include "vmx/event.h"
#include "vmx/tsc.h"
#include "vmx/vmcs.h"
#include "devices/lapic.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"

#define APIC_DEFAULT_BASE 0xfee00000ull
#define APIC_BASE_BSP BIT(8)
#define APIC_BASE_ENABLE BIT(11)

static bool pat_valid(u64 pat)
{
	for (int i = 0; i < 8; i++) {
		u8 t = (u8)(pat >> (i * 8));

		if (t == 2 || t == 3 || t > 7)
			return false;
	}
	return true;
}

static bool read_msr(struct guest *g, u32 msr, u64 *v)
{
	switch (msr) {
	case MSR_EFER: *v = guest_efer(g); return true;
	case MSR_IA32_PAT: *v = vmcs_read64(GUEST_IA32_PAT); return true;
	case MSR_FS_BASE: *v = vmcs_readn(GUEST_FS_BASE); return true;
	case MSR_GS_BASE: *v = vmcs_readn(GUEST_GS_BASE); return true;
	case MSR_IA32_SYSENTER_CS: *v = vmcs_read32(GUEST_SYSENTER_CS); return true;
	case MSR_IA32_SYSENTER_ESP: *v = vmcs_readn(GUEST_SYSENTER_ESP); return true;
	case MSR_IA32_SYSENTER_EIP: *v = vmcs_readn(GUEST_SYSENTER_EIP); return true;
	case MSR_STAR: *v = g->msr.star; return true;
	case MSR_LSTAR: *v = g->msr.lstar; return true;
	case MSR_CSTAR: *v = g->msr.cstar; return true;
	case MSR_SFMASK: *v = g->msr.sfmask; return true;
	case MSR_KERNEL_GS_BASE: *v = rdmsr(MSR_KERNEL_GS_BASE); return true;  /* SWAPGS moves it */
	case MSR_TSC_AUX: *v = g->msr.tsc_aux; return true;
	case MSR_IA32_TSC_ADJUST: *v = g->msr.tsc_adjust; return true;
	case MSR_IA32_TSC: *v = guest_tsc(g); return true;
	case MSR_IA32_MISC_ENABLE: *v = BIT(0) | BIT(11) | BIT(12); return true;
	case MSR_IA32_APIC_BASE:
		*v = APIC_DEFAULT_BASE | APIC_BASE_BSP | (g->dev->lapic.enabled ? APIC_BASE_ENABLE : 0);
		return true;
	case MSR_IA32_TSC_DEADLINE: *v = lapic_read_tsc_deadline(g); return true;
	case MSR_IA32_MTRRCAP: *v = 0; return true;
	case MSR_IA32_MTRR_DEF_TYPE: *v = BIT(11) | 6; return true;  /* enabled, WB */
	case MSR_IA32_PLATFORM_ID: *v = 0; return true;
	case MSR_IA32_UCODE_REV: *v = 0; return true;
	}
	return false;
}

static bool canonical(u64 a)
{
	return (u64)((s64)(a << 16) >> 16) == a;
}

static bool write_msr(struct guest *g, u32 msr, u64 v)
{
	switch (msr) {
	case MSR_EFER: {
		bool gp;

		/* false (guest ended) is noticed by the run loop: it is DONE. */
		guest_write_efer(g, v, &gp);
		return !gp;
	}
	case MSR_IA32_PAT:
		if (!pat_valid(v))
			return false;
		vmcs_write64(GUEST_IA32_PAT, v);
		return true;
	case MSR_FS_BASE:
	case MSR_GS_BASE:
	case MSR_KERNEL_GS_BASE:
	case MSR_LSTAR:
	case MSR_CSTAR:
		if (!canonical(v))
			return false;
		if (msr == MSR_FS_BASE)
			vmcs_writen(GUEST_FS_BASE, v);
		else if (msr == MSR_GS_BASE)
			vmcs_writen(GUEST_GS_BASE, v);
		else if (msr == MSR_KERNEL_GS_BASE)
			g->msr.kernel_gs_base = v;
		else if (msr == MSR_LSTAR)
			g->msr.lstar = v;
		else
			g->msr.cstar = v;
		if (msr != MSR_FS_BASE && msr != MSR_GS_BASE)
			wrmsr(msr, v);
		return true;
	case MSR_IA32_SYSENTER_CS: vmcs_write32(GUEST_SYSENTER_CS, v); return true;
	case MSR_IA32_SYSENTER_ESP: vmcs_writen(GUEST_SYSENTER_ESP, v); return true;
	case MSR_IA32_SYSENTER_EIP: vmcs_writen(GUEST_SYSENTER_EIP, v); return true;
	case MSR_STAR: g->msr.star = v; wrmsr(msr, v); return true;
	case MSR_SFMASK: g->msr.sfmask = v & 0xffffffffull; wrmsr(msr, g->msr.sfmask); return true;
	case MSR_TSC_AUX:
		if (v >> 32)
			return false;
		g->msr.tsc_aux = v;
		wrmsr(msr, v);
		return true;
	case MSR_IA32_TSC:
		guest_set_tsc_offset(g, v - rdtsc());
		return true;
	case MSR_IA32_TSC_DEADLINE:
		lapic_write_tsc_deadline(g, v);
		return true;
	case MSR_IA32_APIC_BASE:
		/* The APIC stays at its default base; x2APIC (bit 10) is not offered. */
		if ((v & ~(APIC_BASE_ENABLE | APIC_BASE_BSP)) != APIC_DEFAULT_BASE)
			return false;
		g->dev->lapic.enabled = v & APIC_BASE_ENABLE;
		return true;
	case MSR_IA32_TSC_ADJUST:
		/* Writing TSC_ADJUST moves the TSC by the same delta (SDM 18.17.3). */
		guest_set_tsc_offset(g, g->tsc_offset + (v - g->msr.tsc_adjust));
		g->msr.tsc_adjust = v;
		return true;
	}
	return false;
}

/* An MSR the platform does not provide: #GP(0) as on hardware, and a line
 * naming it (the first few per guest) so a test kernel's author sees why. */
static enum exit_action refuse_msr(struct guest *g, u32 msr, bool write, u64 v)
{
	if (g->refused_msrs++ < 8)
		log_printf("hv", "%s: %s of MSR %#x%s refused with #GP(0) (not provided)",
			   g->cfg.name, write ? "write" : "read", msr,
			   write && msr == MSR_EFER ? " (reserved bits or LME with paging on)" : "");
	(void)v;
	inject_gp0(g);
	return EXIT_RESUME;
}

enum exit_action handle_rdmsr(struct guest *g, struct vmexit *e)
{
	u32 msr = (u32)g->regs.rcx;
	u64 v;

	if (!read_msr(g, msr, &v))
		return refuse_msr(g, msr, false, 0);
	g->regs.rax = (u32)v;
	g->regs.rdx = v >> 32;
	skip_instruction(e);
	return EXIT_RESUME;
}

enum exit_action handle_wrmsr(struct guest *g, struct vmexit *e)
{
	u32 msr = (u32)g->regs.rcx;
	u64 v = (g->regs.rdx << 32) | (u32)g->regs.rax;

	if (!write_msr(g, msr, v))
		return refuse_msr(g, msr, true, v);
	skip_instruction(e);
	return EXIT_RESUME;
}

void msr_switch(struct guest *from, struct guest *to)
{
	struct guest *g = to;

	if (from)
		from->msr.kernel_gs_base = rdmsr(MSR_KERNEL_GS_BASE);
	wrmsr(MSR_STAR, g->msr.star);
	wrmsr(MSR_LSTAR, g->msr.lstar);
	wrmsr(MSR_CSTAR, g->msr.cstar);
	wrmsr(MSR_SFMASK, g->msr.sfmask);
	wrmsr(MSR_KERNEL_GS_BASE, g->msr.kernel_gs_base);
	if (cpuid(0x80000001, 0).edx & (1u << 27))
		wrmsr(MSR_TSC_AUX, g->msr.tsc_aux);
}
