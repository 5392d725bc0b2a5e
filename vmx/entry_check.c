/*
 * A software check of the guest-state rules VM entry enforces (SDM Vol. 3C
 * 27.3.1), run after a VM entry fails with "invalid guest state" so the log
 * names the rule instead of just the exit reason. The rules themselves are
 * vmx/entry_rules.c; this reads them their fields from the current VMCS.
 */
#include "vmx/entry_check.h"
#include "vmx/entry_rules.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"

static void print_failure(void *ctx, const char *sdm, const char *what)
{
	(void)ctx;
	console_printf("  entry check failed (SDM %s): %s\n", sdm, what);
}

int vmx_check_guest_state(void)
{
	u32 sec = vmcs_read32(SECONDARY_VM_EXEC_CONTROL);
	struct entry_state s = {
		.cr0 = vmcs_readn(GUEST_CR0),
		.cr3 = vmcs_readn(GUEST_CR3),
		.cr4 = vmcs_readn(GUEST_CR4),
		.efer = vmcs_read64(GUEST_IA32_EFER),
		.rflags = vmcs_readn(GUEST_RFLAGS),
		.dr7 = vmcs_readn(GUEST_DR7),
		.debugctl = vmcs_read64(GUEST_IA32_DEBUGCTL),
		.pat = vmcs_read64(GUEST_IA32_PAT),
		.cr0_fixed0 = vmx_caps.cr0_fixed0,
		.cr0_fixed1 = vmx_caps.cr0_fixed1,
		.cr4_fixed0 = vmx_caps.cr4_fixed0,
		.cr4_fixed1 = vmx_caps.cr4_fixed1,
		.maxphyaddr = cpuid(0x80000008, 0).eax & 0xff,
		.entry_controls = vmcs_read32(VM_ENTRY_CONTROLS),
		.unrestricted = (vmcs_read32(CPU_BASED_VM_EXEC_CONTROL) & CPU_SECONDARY_CONTROLS) &&
				(sec & SEC_UNRESTRICTED_GUEST),
		.cs_ar = vmcs_read32(GUEST_CS_AR_BYTES),
		.ss_ar = vmcs_read32(GUEST_SS_AR_BYTES),
		.tr_ar = vmcs_read32(GUEST_TR_AR_BYTES),
		.ldtr_ar = vmcs_read32(GUEST_LDTR_AR_BYTES),
		.fs_base = vmcs_readn(GUEST_FS_BASE),
		.gs_base = vmcs_readn(GUEST_GS_BASE),
		.tr_base = vmcs_readn(GUEST_TR_BASE),
		.ldtr_base = vmcs_readn(GUEST_LDTR_BASE),
		.gdtr_base = vmcs_readn(GUEST_GDTR_BASE),
		.idtr_base = vmcs_readn(GUEST_IDTR_BASE),
		.sysenter_esp = vmcs_readn(GUEST_SYSENTER_ESP),
		.sysenter_eip = vmcs_readn(GUEST_SYSENTER_EIP),
		.activity = vmcs_read32(GUEST_ACTIVITY_STATE),
		.link_pointer = vmcs_read64(VMCS_LINK_POINTER),
	};
	int failures = entry_rules_check(&s, print_failure, NULL);

	if (!failures)
		console_printf("  (none of the checked guest-state rules failed)\n");
	return failures;
}
