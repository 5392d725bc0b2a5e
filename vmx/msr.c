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

void msr_init_guest(struct vcpu *v)
{
	v->msr.misc_enable = MISC_ENABLE_FAST_STRINGS | MISC_ENABLE_RO_VALUE;
	v->msr.mtrr_def_type = MTRR_DEF_ENABLE | MTRR_DEF_TYPE_WB;
}

static bool read_msr(struct vcpu *v, u32 msr, u64 *val)
{
	struct guest *g = v->g;

	switch (msr) {
	case MSR_EFER: *val = guest_efer(v); return true;
	case MSR_IA32_PAT: *val = vmcs_read64(GUEST_IA32_PAT); return true;
	case MSR_FS_BASE: *val = vmcs_readn(GUEST_FS_BASE); return true;
	case MSR_GS_BASE: *val = vmcs_readn(GUEST_GS_BASE); return true;
	case MSR_IA32_SYSENTER_CS: *val = vmcs_read32(GUEST_SYSENTER_CS); return true;
	case MSR_IA32_SYSENTER_ESP: *val = vmcs_readn(GUEST_SYSENTER_ESP); return true;
	case MSR_IA32_SYSENTER_EIP: *val = vmcs_readn(GUEST_SYSENTER_EIP); return true;
	case MSR_STAR: *val = v->msr.star; return true;
	case MSR_LSTAR: *val = v->msr.lstar; return true;
	case MSR_CSTAR: *val = v->msr.cstar; return true;
	case MSR_SFMASK: *val = v->msr.sfmask; return true;
	case MSR_KERNEL_GS_BASE: *val = rdmsr(MSR_KERNEL_GS_BASE); return true;  /* SWAPGS moves it */
	case MSR_TSC_AUX:  /* RDTSCP and RDPID are offered only with "enable RDTSCP" */
		*val = v->msr.tsc_aux;
		return vmx_caps.rdtscp;
	case MSR_IA32_TSC_ADJUST: *val = v->msr.tsc_adjust; return true;
	case MSR_IA32_TSC: *val = guest_tsc(g); return true;
	case MSR_IA32_MISC_ENABLE: *val = v->msr.misc_enable; return true;
	case MSR_IA32_DEBUGCTL: *val = vmcs_read64(GUEST_IA32_DEBUGCTL); return true;
	case MSR_IA32_MCG_CAP: *val = 0; return true;     /* no banks, no MCG_CTL (SDM 15.3.1.1) */
	case MSR_IA32_MCG_STATUS: *val = 0; return true;  /* no machine check in progress */
	case MSR_IA32_APIC_BASE:
		*val = APIC_DEFAULT_BASE | (v->index == 0 ? APIC_BASE_BSP : 0) |
		       (lapic_enabled(v) ? APIC_BASE_ENABLE : 0);
		return true;
	case MSR_IA32_TSC_DEADLINE: *val = lapic_read_tsc_deadline(v); return true;
	case MSR_IA32_MTRRCAP: *val = 0; return true;
	case MSR_IA32_MTRR_DEF_TYPE: *val = v->msr.mtrr_def_type; return true;
	case MSR_IA32_PLATFORM_ID: *val = 0; return true;
	case MSR_IA32_UCODE_REV: *val = 0; return true;
	}
	return false;
}

static bool write_msr(struct vcpu *v, u32 msr, u64 val)
{
	struct guest *g = v->g;

	switch (msr) {
	case MSR_EFER: {
		bool gp;

		/* false (guest ended) is noticed by the run loop: it is DONE. */
		guest_write_efer(v, val, &gp);
		return !gp;
	}
	case MSR_IA32_PAT:
		if (!pat_valid(val))
			return false;
		vmcs_write64(GUEST_IA32_PAT, val);
		return true;
	case MSR_FS_BASE:
	case MSR_GS_BASE:
	case MSR_KERNEL_GS_BASE:
	case MSR_LSTAR:
	case MSR_CSTAR:
		if (!canonical_address(val))
			return false;
		if (msr == MSR_FS_BASE)
			vmcs_writen(GUEST_FS_BASE, val);
		else if (msr == MSR_GS_BASE)
			vmcs_writen(GUEST_GS_BASE, val);
		else if (msr == MSR_KERNEL_GS_BASE)
			v->msr.kernel_gs_base = val;
		else if (msr == MSR_LSTAR)
			v->msr.lstar = val;
		else
			v->msr.cstar = val;
		if (msr != MSR_FS_BASE && msr != MSR_GS_BASE)
			wrmsr(msr, val);
		return true;
	case MSR_IA32_SYSENTER_CS: vmcs_write32(GUEST_SYSENTER_CS, val); return true;
	case MSR_IA32_SYSENTER_ESP:
	case MSR_IA32_SYSENTER_EIP:
		/* #GP for a non-canonical address (SDM Vol. 2B WRMSR), which VM entry
		 * would refuse (SDM 27.3.1.1). */
		if (!canonical_address(val))
			return false;
		vmcs_writen(msr == MSR_IA32_SYSENTER_ESP ? GUEST_SYSENTER_ESP : GUEST_SYSENTER_EIP, val);
		return true;
	case MSR_IA32_DEBUGCTL:
		/* Other bits are reserved here; VM entry checks it (SDM 27.3.1.1). */
		if (val & ~DEBUGCTL_BTF)
			return false;
		vmcs_write64(GUEST_IA32_DEBUGCTL, val);
		return true;
	case MSR_IA32_MISC_ENABLE:
		/* Read-only bits ignore writes; reserved bits #GP. */
		if (val & ~(MISC_ENABLE_RW | MISC_ENABLE_RO))
			return false;
		v->msr.misc_enable = (val & MISC_ENABLE_RW) | MISC_ENABLE_RO_VALUE;
		return true;
	case MSR_IA32_MTRR_DEF_TYPE:
		if (!mtrr_def_type_valid(val))
			return false;
		v->msr.mtrr_def_type = val;
		return true;
	case MSR_IA32_MCG_STATUS:
		return val == 0;
	case MSR_IA32_UCODE_REV:
		/* Software writes 0 and runs CPUID(1) before reading the signature
		 * (SDM Vol. 3A 9.11.7.1, "Determining the Signature"): the write is
		 * part of that protocol and must not fault. The signature read back
		 * stays 0 (no update loaded); KVM ignores guest writes too. */
		return true;
	case MSR_STAR: v->msr.star = val; wrmsr(msr, val); return true;
	case MSR_SFMASK: v->msr.sfmask = val & 0xffffffffull; wrmsr(msr, v->msr.sfmask); return true;
	case MSR_TSC_AUX:
		if (!vmx_caps.rdtscp || (val >> 32))
			return false;
		v->msr.tsc_aux = val;
		wrmsr(msr, val);
		return true;
	case MSR_IA32_TSC:
		guest_set_tsc_offset(v, val - rdtsc());
		return true;
	case MSR_IA32_TSC_DEADLINE:
		lapic_write_tsc_deadline(v, val);
		return true;
	case MSR_IA32_APIC_BASE:
		/* The APIC stays at its default base; x2APIC (bit 10) is not offered. */
		if ((val & ~(APIC_BASE_ENABLE | APIC_BASE_BSP)) != APIC_DEFAULT_BASE)
			return false;
		lapic_set_enabled(v, val & APIC_BASE_ENABLE);
		return true;
	case MSR_IA32_TSC_ADJUST:
		/* Writing TSC_ADJUST moves the TSC by the same delta (SDM 18.17.3). */
		guest_set_tsc_offset(v, g->tsc_offset + (val - v->msr.tsc_adjust));
		v->msr.tsc_adjust = val;
		return true;
	}
	return false;
}

/* An MSR the platform does not provide, or a value the CPU would refuse:
 * #GP(0) as on hardware, and a line saying which (the first few per guest)
 * so a test kernel's author sees why. */
static enum exit_action refuse_msr(struct vcpu *v, u32 msr, bool write, u64 val)
{
	struct guest *g = v->g;
	u64 current;

	if (guest_stat_add(&g->refused_msrs, 1) < 8) {
		if (write && read_msr(v, msr, &current))
			log_printf("hv", "%s: write of %#llx to MSR %#x refused with #GP(0) (reserved "
				   "bits or an invalid value)", g->cfg.name, (unsigned long long)val, msr);
		else
			log_printf("hv", "%s: %s of MSR %#x refused with #GP(0) (not provided)",
				   g->cfg.name, write ? "write" : "read", msr);
	}
	inject_gp0(v);
	return EXIT_RESUME;
}

enum exit_action handle_rdmsr(struct vcpu *v, struct vmexit *e)
{
	u32 msr = (u32)v->regs.rcx;
	u64 val;

	if (!read_msr(v, msr, &val))
		return refuse_msr(v, msr, false, 0);
	v->regs.rax = (u32)val;
	v->regs.rdx = val >> 32;
	skip_instruction(e);
	return EXIT_RESUME;
}

enum exit_action handle_wrmsr(struct vcpu *v, struct vmexit *e)
{
	u32 msr = (u32)v->regs.rcx;
	u64 val = (v->regs.rdx << 32) | (u32)v->regs.rax;

	if (!write_msr(v, msr, val))
		return refuse_msr(v, msr, true, val);
	skip_instruction(e);
	return EXIT_RESUME;
}

/* RDPMC reads a performance counter; umbra offers none (CPUID leaf 0xA is
 * zero), so every index in ECX is invalid: #GP(0), as on a CPU without
 * counters (SDM Vol. 2B RDPMC). CPL > 0 with CR4.PCE = 0 faults before the
 * exit (SDM 26.1.1). */
enum exit_action handle_rdpmc(struct vcpu *v, struct vmexit *e)
{
	(void)e;
	inject_gp0(v);
	return EXIT_RESUME;
}

void msr_switch(struct vcpu *from, struct vcpu *to)
{
	struct vcpu *v = to;

	if (from)
		from->msr.kernel_gs_base = rdmsr(MSR_KERNEL_GS_BASE);
	if (!v)  /* only save: the guest leaves this CPU */
		return;
	wrmsr(MSR_STAR, v->msr.star);
	wrmsr(MSR_LSTAR, v->msr.lstar);
	wrmsr(MSR_CSTAR, v->msr.cstar);
	wrmsr(MSR_SFMASK, v->msr.sfmask);
	wrmsr(MSR_KERNEL_GS_BASE, v->msr.kernel_gs_base);
	if (cpuid(0x80000001, 0).edx & (1u << 27))
		wrmsr(MSR_TSC_AUX, v->msr.tsc_aux);
}
