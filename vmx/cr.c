/*
 * Control-register exits (exit qualification: SDM Vol. 3C Table 28-3).
 * The guest reads CR0/CR4 through read shadows; the bits the host must own
 * (VMX fixed bits such as CR0.NE and CR4.VMXE, SDM 24.8 and A.7-A.8) are in
 * the guest/host masks, so writes that touch them exit and are emulated
 * here with full architectural checks.
 */
#include "vmx/exit.h"
#include "vmx/vcpu.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "arch/x86/cpu.h"

/* With unrestricted guest, PE and PG are the guest's own (SDM 26.3.1.1). */
#define CR0_UNRESTRICTED_FREE (CR0_PE | CR0_PG)

u64 cr0_host_owned(void)
{
	return ((vmx_caps.cr0_fixed0 & ~CR0_UNRESTRICTED_FREE) | ~vmx_caps.cr0_fixed1) &
	       0xffffffffull;
}

u64 cr4_host_owned(void)
{
	return (vmx_caps.cr4_fixed0 | ~vmx_caps.cr4_fixed1 | CR4_VMXE) & 0xffffffffull;
}

u64 cr0_guest_to_real(u64 v)
{
	return (v | (vmx_caps.cr0_fixed0 & ~CR0_UNRESTRICTED_FREE)) & vmx_caps.cr0_fixed1;
}

u64 cr4_guest_to_real(u64 v)
{
	return (v | vmx_caps.cr4_fixed0 | CR4_VMXE) & vmx_caps.cr4_fixed1;
}

static u64 *gpr(struct guest *g, unsigned n)
{
	return &(&g->regs.rax)[n];  /* struct guest_regs is in encoding order */
}

static void set_long_mode_active(bool on)
{
	u64 efer = vmcs_read64(GUEST_IA32_EFER);
	u32 entry = vmcs_read32(VM_ENTRY_CONTROLS);

	efer = on ? efer | EFER_LMA : efer & ~EFER_LMA;
	entry = on ? entry | ENTRY_IA32E_MODE_GUEST : entry & ~ENTRY_IA32E_MODE_GUEST;
	vmcs_write64(GUEST_IA32_EFER, efer);
	vmcs_write32(VM_ENTRY_CONTROLS, entry);
}

/* MOV to CR0 (SDM Vol. 3A 2.5 and 10.8.5): false means #GP. */
static bool guest_write_cr0(u64 v)
{
	u64 old = vmcs_readn(CR0_READ_SHADOW);
	u64 efer = vmcs_read64(GUEST_IA32_EFER);

	if ((v >> 32) || ((v & CR0_PG) && !(v & CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)))
		return false;
	if ((v & CR0_PG) && !(old & CR0_PG) && (efer & EFER_LME)) {
		if (!(vmcs_readn(CR4_READ_SHADOW) & CR4_PAE))
			return false;
		set_long_mode_active(true);
	} else if (!(v & CR0_PG) && (old & CR0_PG) && (efer & EFER_LMA)) {
		set_long_mode_active(false);
	}
	vmcs_writen(CR0_READ_SHADOW, v);
	vmcs_writen(GUEST_CR0, cr0_guest_to_real(v));
	return true;
}

static bool guest_write_cr4(u64 v)
{
	u64 efer = vmcs_read64(GUEST_IA32_EFER);

	/* VMXE is hidden; bits the CPU cannot set are reserved for the guest. */
	if ((v & CR4_VMXE) || (v & ~vmx_caps.cr4_fixed1) || (v >> 32))
		return false;
	if ((efer & EFER_LMA) && !(v & CR4_PAE))
		return false;
	vmcs_writen(CR4_READ_SHADOW, v);
	vmcs_writen(GUEST_CR4, cr4_guest_to_real(v));
	return true;
}

enum exit_action handle_cr_access(struct guest *g, struct vmexit *e)
{
	unsigned cr = e->qualification & 15, type = (e->qualification >> 4) & 3;
	unsigned reg = (e->qualification >> 8) & 15;
	u64 *r = gpr(g, reg);
	bool ok = true;

	switch (type) {
	case 0:  /* MOV to CR */
		if (cr == 0)
			ok = guest_write_cr0(*r);
		else if (cr == 4)
			ok = guest_write_cr4(*r);
		else if (cr == 3)
			vmcs_writen(GUEST_CR3, *r);
		else if (cr == 8)
			ok = !(*r & ~0xfull);  /* TPR: no interrupt priorities modelled */
		break;
	case 1:  /* MOV from CR */
		if (cr == 3)
			*r = vmcs_readn(GUEST_CR3);
		else if (cr == 8)
			*r = 0;
		break;
	case 2:  /* CLTS */
		ok = guest_write_cr0(vmcs_readn(CR0_READ_SHADOW) & ~CR0_TS);
		break;
	case 3: {  /* LMSW: low 4 bits, and it cannot clear PE */
		u64 src = (e->qualification >> 16) & 0xf, old = vmcs_readn(CR0_READ_SHADOW);

		ok = guest_write_cr0((old & ~0xeull) | (src & 0xe) | ((old | src) & CR0_PE));
		break;
	}
	}
	if (!ok) {
		inject_gp0(g);
		return EXIT_RESUME;
	}
	skip_instruction(e);
	return EXIT_RESUME;
}
