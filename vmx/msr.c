/*
 * RDMSR/WRMSR exits (no MSR bitmap: every access exits). An allow-list;
 * everything else raises #GP(0), as an absent MSR does on hardware. It backs
 * what vmx/features.c advertises, and nothing it hides (no PMU, DS, thermal
 * or speculation-control MSRs). MSRs with a VMCS guest-state field live
 * there, and a write is checked as VM entry will check it (SDM 27.3.1), so a
 * guest can never make its next entry fail; the syscall family lives in
 * struct guest and in the real MSRs while that guest runs.
 */
#include "vmx/msr.h"
#include "vmx/cr.h"
#include "vmx/event.h"
#include "vmx/tsc.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "devices/lapic.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"

#define APIC_DEFAULT_BASE 0xfee00000ull
#define APIC_BASE_BSP BIT(8)
#define APIC_BASE_ENABLE BIT(11)

/* IA32_MISC_ENABLE (SDM Vol. 4 Table 2-2): the read-only bits say no PMU, no
 * BTS, no PEBS. The writable bits are stored and read back, as KVM does:
 * fast strings (no effect here), automatic thermal control, EIST, MONITOR
 * FSM and xTPR disable (no effect: those features are hidden), limit CPUID
 * and XD disable (vmx/features.c honours both). Other bits are reserved. */
#define MISC_ENABLE_RO (MISC_ENABLE_EMON | MISC_ENABLE_BTS_UNAVAILABLE | \
			MISC_ENABLE_PEBS_UNAVAILABLE)
#define MISC_ENABLE_RO_VALUE (MISC_ENABLE_BTS_UNAVAILABLE | MISC_ENABLE_PEBS_UNAVAILABLE)
#define MISC_ENABLE_RW (MISC_ENABLE_FAST_STRINGS | BIT(3) | BIT(16) | BIT(18) | \
			MISC_ENABLE_LIMIT_CPUID | BIT(23) | MISC_ENABLE_XD_DISABLE)
/* IA32_MTRR_DEF_TYPE with IA32_MTRRCAP = 0 (no variable or fixed ranges, no
 * WC): the enable bit E and a default type UC, WT, WP or WB (SDM 11.11.2.1). */
#define MTRR_DEF_ENABLE BIT(11)
#define MTRR_DEF_TYPE_WB 6
/* IA32_DEBUGCTL: only BTF (single-step on branches) works without LBR and
 * PMU support; the CPU runs it from the VMCS field. */
#define DEBUGCTL_BTF BIT(1)

static bool pat_valid(u64 pat)
{
	for (int i = 0; i < 8; i++) {
		u8 t = (u8)(pat >> (i * 8));

		if (t == 2 || t == 3 || t > 7)
			return false;
	}
	return true;
}

static bool mtrr_def_type_valid(u64 v)
{
	u8 type = (u8)v;

	return !(v & ~(MTRR_DEF_ENABLE | 0xffull)) &&
	       (type == 0 || type == 4 || type == 5 || type == MTRR_DEF_TYPE_WB);
}

void msr_init_guest(struct guest *g)
{
	g->msr.misc_enable = MISC_ENABLE_FAST_STRINGS | MISC_ENABLE_RO_VALUE;
	g->msr.mtrr_def_type = MTRR_DEF_ENABLE | MTRR_DEF_TYPE_WB;
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
	case MSR_TSC_AUX:  /* RDTSCP and RDPID are offered only with "enable RDTSCP" */
		*v = g->msr.tsc_aux;
		return vmx_caps.rdtscp;
	case MSR_IA32_TSC_ADJUST: *v = g->msr.tsc_adjust; return true;
	case MSR_IA32_TSC: *v = guest_tsc(g); return true;
	case MSR_IA32_MISC_ENABLE: *v = g->msr.misc_enable; return true;
	case MSR_IA32_DEBUGCTL: *v = vmcs_read64(GUEST_IA32_DEBUGCTL); return true;
	case MSR_IA32_MCG_CAP: *v = 0; return true;     /* no banks, no MCG_CTL (SDM 15.3.1.1) */
	case MSR_IA32_MCG_STATUS: *v = 0; return true;  /* no machine check in progress */
	case MSR_IA32_APIC_BASE:
		*v = APIC_DEFAULT_BASE | APIC_BASE_BSP | (g->dev->lapic.enabled ? APIC_BASE_ENABLE : 0);
		return true;
	case MSR_IA32_TSC_DEADLINE: *v = lapic_read_tsc_deadline(g); return true;
	case MSR_IA32_MTRRCAP: *v = 0; return true;
	case MSR_IA32_MTRR_DEF_TYPE: *v = g->msr.mtrr_def_type; return true;
	case MSR_IA32_PLATFORM_ID: *v = 0; return true;
	case MSR_IA32_UCODE_REV: *v = 0; return true;
	}
	return false;
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
		if (!canonical_address(v))
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
	case MSR_IA32_SYSENTER_ESP:
	case MSR_IA32_SYSENTER_EIP:
		/* #GP for a non-canonical address (SDM Vol. 2B WRMSR), which VM entry
		 * would refuse (SDM 27.3.1.1). */
		if (!canonical_address(v))
			return false;
		vmcs_writen(msr == MSR_IA32_SYSENTER_ESP ? GUEST_SYSENTER_ESP : GUEST_SYSENTER_EIP, v);
		return true;
	case MSR_IA32_DEBUGCTL:
		/* Other bits are reserved here; VM entry checks it (SDM 27.3.1.1). */
		if (v & ~DEBUGCTL_BTF)
			return false;
		vmcs_write64(GUEST_IA32_DEBUGCTL, v);
		return true;
	case MSR_IA32_MISC_ENABLE:
		/* Read-only bits ignore writes; reserved bits #GP. */
		if (v & ~(MISC_ENABLE_RW | MISC_ENABLE_RO))
			return false;
		g->msr.misc_enable = (v & MISC_ENABLE_RW) | MISC_ENABLE_RO_VALUE;
		return true;
	case MSR_IA32_MTRR_DEF_TYPE:
		if (!mtrr_def_type_valid(v))
			return false;
		g->msr.mtrr_def_type = v;
		return true;
	case MSR_IA32_MCG_STATUS:
		return v == 0;
	case MSR_IA32_UCODE_REV:
		/* Software writes 0 and runs CPUID(1) before reading the signature
		 * (SDM Vol. 3A 9.11.7.1, "Determining the Signature"): the write is
		 * part of that protocol and must not fault. The signature read back
		 * stays 0 (no update loaded); KVM ignores guest writes too. */
		return true;
	case MSR_STAR: g->msr.star = v; wrmsr(msr, v); return true;
	case MSR_SFMASK: g->msr.sfmask = v & 0xffffffffull; wrmsr(msr, g->msr.sfmask); return true;
	case MSR_TSC_AUX:
		if (!vmx_caps.rdtscp || (v >> 32))
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

/* An MSR the platform does not provide, or a value the CPU would refuse:
 * #GP(0) as on hardware, and a line saying which (the first few per guest)
 * so a test kernel's author sees why. */
static enum exit_action refuse_msr(struct guest *g, u32 msr, bool write, u64 v)
{
	u64 current;

	if (g->refused_msrs++ < 8) {
		if (write && read_msr(g, msr, &current))
			log_printf("hv", "%s: write of %#llx to MSR %#x refused with #GP(0) (reserved "
				   "bits or an invalid value)", g->cfg.name, (unsigned long long)v, msr);
		else
			log_printf("hv", "%s: %s of MSR %#x refused with #GP(0) (not provided)",
				   g->cfg.name, write ? "write" : "read", msr);
	}
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

/* RDPMC reads a performance counter; umbra offers none (CPUID leaf 0xA is
 * zero), so every index in ECX is invalid: #GP(0), as on a CPU without
 * counters (SDM Vol. 2B RDPMC). CPL > 0 with CR4.PCE = 0 faults before the
 * exit (SDM 26.1.1). */
enum exit_action handle_rdpmc(struct guest *g, struct vmexit *e)
{
	(void)e;
	inject_gp0(g);
	return EXIT_RESUME;
}

void msr_switch(struct guest *from, struct guest *to)
{
	struct guest *g = to;

	if (from)
		from->msr.kernel_gs_base = rdmsr(MSR_KERNEL_GS_BASE);
	if (!g)  /* only save: the guest leaves this CPU */
		return;
	wrmsr(MSR_STAR, g->msr.star);
	wrmsr(MSR_LSTAR, g->msr.lstar);
	wrmsr(MSR_CSTAR, g->msr.cstar);
	wrmsr(MSR_SFMASK, g->msr.sfmask);
	wrmsr(MSR_KERNEL_GS_BASE, g->msr.kernel_gs_base);
	if (cpuid(0x80000001, 0).edx & (1u << 27))
		wrmsr(MSR_TSC_AUX, g->msr.tsc_aux);
}
