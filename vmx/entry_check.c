/*
 * A software check of the guest-state rules VM entry enforces (SDM Vol. 3C
 * 27.3.1), run after a VM entry fails with "invalid guest state" so the log
 * names the rule instead of just the exit reason. It covers the rules that
 * this hypervisor's own state handling can break; Bochs' log (VMENTER FAIL)
 * and the SDM remain the full list.
 */
#include "vmx/entry_check.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"

#define AR_TYPE(ar) ((ar) & 15)
#define AR_S BIT(4)
#define AR_DPL(ar) (((ar) >> 5) & 3)
#define AR_P BIT(7)
#define AR_L BIT(13)
#define AR_DB BIT(14)
#define AR_UNUSABLE BIT(16)

static int failures;

static void rule(bool ok, const char *sdm, const char *what)
{
	if (ok)
		return;
	failures++;
	console_printf("  entry check failed (SDM %s): %s\n", sdm, what);
}

int vmx_check_guest_state(void)
{
	u64 cr0 = vmcs_readn(GUEST_CR0), cr4 = vmcs_readn(GUEST_CR4);
	u64 efer = vmcs_read64(GUEST_IA32_EFER), rflags = vmcs_readn(GUEST_RFLAGS);
	u32 sec = vmcs_read32(SECONDARY_VM_EXEC_CONTROL), entry = vmcs_read32(VM_ENTRY_CONTROLS);
	bool unrestricted = (vmcs_read32(CPU_BASED_VM_EXEC_CONTROL) & CPU_SECONDARY_CONTROLS) &&
			    (sec & SEC_UNRESTRICTED_GUEST);
	bool ia32e = entry & ENTRY_IA32E_MODE_GUEST;
	u64 fixed0 = vmx_caps.cr0_fixed0 & ~(unrestricted ? (CR0_PE | CR0_PG) : 0);
	u32 cs = vmcs_read32(GUEST_CS_AR_BYTES), ss = vmcs_read32(GUEST_SS_AR_BYTES);
	u32 tr = vmcs_read32(GUEST_TR_AR_BYTES);

	failures = 0;
	rule((cr0 & fixed0) == fixed0 && !(cr0 & ~vmx_caps.cr0_fixed1), "27.3.1.1",
	     "CR0 must respect IA32_VMX_CR0_FIXED0/1");
	rule(!(cr0 & CR0_PG) || (cr0 & CR0_PE), "27.3.1.1", "CR0.PG=1 requires CR0.PE=1");
	rule((cr4 & vmx_caps.cr4_fixed0) == vmx_caps.cr4_fixed0 && !(cr4 & ~vmx_caps.cr4_fixed1),
	     "27.3.1.1", "CR4 must respect IA32_VMX_CR4_FIXED0/1");
	rule(!ia32e || ((cr0 & CR0_PG) && (cr4 & CR4_PAE)), "27.3.1.1",
	     "an IA-32e mode guest needs CR0.PG=1 and CR4.PAE=1");
	rule(!(entry & ENTRY_LOAD_IA32_EFER) ||
	     (!!(efer & EFER_LMA) == ia32e && (!(cr0 & CR0_PG) || !!(efer & EFER_LME) == ia32e)),
	     "27.3.1.1", "EFER.LMA (and LME with paging) must equal 'IA-32e mode guest'");
	rule((rflags & RFLAGS_FIXED) && !(rflags & 0xffffffffffc08028ull), "27.3.1.4",
	     "RFLAGS reserved bits: bit 1 set, bits 3, 5, 15, 22-63 clear");
	rule(!(rflags & RFLAGS_VM) || !ia32e, "27.3.1.4", "RFLAGS.VM must be 0 in IA-32e mode");
	rule(!(tr & AR_UNUSABLE) && (AR_TYPE(tr) == 11 || (!ia32e && AR_TYPE(tr) == 3)) &&
	     !(tr & AR_S) && (tr & AR_P), "27.3.1.2",
	     "TR must be usable, present, a busy TSS (type 11; 3 allowed outside IA-32e mode)");
	rule(!(cs & AR_UNUSABLE) && (cs & AR_S) && (cs & AR_P) && (AR_TYPE(cs) & 8), "27.3.1.2",
	     "CS must be a usable, present code segment");
	rule(!ia32e || !(cs & AR_L) || !(cs & AR_DB), "27.3.1.2",
	     "in IA-32e mode CS.L=1 requires CS.D=0");
	rule((ss & AR_UNUSABLE) || AR_DPL(ss) == (unrestricted ? AR_DPL(ss) : AR_DPL(cs)),
	     "27.3.1.2", "SS.DPL must equal CS.DPL (without unrestricted guest)");
	rule(vmcs_read32(GUEST_ACTIVITY_STATE) <= 3, "27.3.1.5", "activity state must be 0-3");
	rule(vmcs_read64(VMCS_LINK_POINTER) == ~0ull, "27.3.1.5",
	     "VMCS link pointer must be all-ones without VMCS shadowing");
	if (!failures)
		console_printf("  (none of the checked guest-state rules failed)\n");
	return failures;
}
