/*
 * Control registers (exit qualification: SDM Vol. 3C Table 28-3). The guest
 * reads CR0/CR4 through read shadows for the bits the host owns. An EPT guest
 * owns its paging bits and the host only the VMX fixed bits (CR0.NE,
 * CR4.VMXE, SDM 24.8 and A.7-A.8); a shadow guest's every bit is owned, so
 * each change reaches the shadow MMU. Writes that exit are emulated here with
 * the architectural checks, and guest_set_control_regs() is the one place
 * that turns the guest's CR0/CR4/EFER into what the CPU runs with.
 */
#include "vmx/cr.h"
#include "vmx/event.h"
#include "vmx/mmu.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "devices/lapic.h"
#include "arch/x86/cpu.h"

static u64 cr0_real(u64 v, bool unrestricted)
{
	u64 fixed0 = vmx_caps.cr0_fixed0 & ~(unrestricted ? CR0_UNRESTRICTED_FREE : 0);

	return (v | fixed0) & vmx_caps.cr0_fixed1;
}

static u64 cr4_real(u64 v)
{
	return (v | vmx_caps.cr4_fixed0 | CR4_VMXE) & vmx_caps.cr4_fixed1;
}

/* The guest's view: its own bits where it owns them, the read shadow where
 * the host does (SDM 25.6.6). */
static u64 visible(enum vmcs_field real, enum vmcs_field shadow, enum vmcs_field mask)
{
	u64 m = vmcs_read_checked(mask, __func__);

	return (vmcs_read_checked(real, __func__) & ~m) | (vmcs_read_checked(shadow, __func__) & m);
}

u64 guest_cr0(void)
{
	return visible(GUEST_CR0, CR0_READ_SHADOW, CR0_GUEST_HOST_MASK);
}

u64 guest_cr4(void)
{
	return visible(GUEST_CR4, CR4_READ_SHADOW, CR4_GUEST_HOST_MASK);
}

u64 guest_cr3(struct guest *g)
{
	return g->mmu->guest_cr3(g);
}

u64 guest_efer(struct guest *g)
{
	return g->mmu->guest_efer(g);
}

bool guest_set_control_regs(struct guest *g, u64 cr0, u64 cr4, u64 efer, bool *gp)
{
	struct cr_values real;
	u32 entry = vmcs_read32(VM_ENTRY_CONTROLS);

	if (!g->mmu->set_mode(g, cr0, cr4, efer, &real, gp))
		return false;
	if (*gp)
		return true;
	vmcs_writen(CR0_READ_SHADOW, cr0);
	vmcs_writen(CR4_READ_SHADOW, cr4);
	vmcs_writen(GUEST_CR0, cr0_real(real.cr0, g->mmu->unrestricted));
	vmcs_writen(GUEST_CR4, cr4_real(real.cr4));
	vmcs_write64(GUEST_IA32_EFER, real.efer);
	entry = real.efer & EFER_LMA ? entry | ENTRY_IA32E_MODE_GUEST :
				       entry & ~ENTRY_IA32E_MODE_GUEST;
	vmcs_write32(VM_ENTRY_CONTROLS, entry);
	return true;
}

static u64 *gpr(struct guest *g, unsigned n)
{
	return &(&g->regs.rax)[n];  /* struct guest_regs is in encoding order */
}

/* MOV to CR0 (SDM Vol. 3A 2.5 and 10.8.5): LMA follows PG when LME is set. */
static bool mov_to_cr0(struct guest *g, u64 v, bool *gp)
{
	u64 old = guest_cr0(), efer = guest_efer(g), cr4 = guest_cr4();

	*gp = (v >> 32) || ((v & CR0_PG) && !(v & CR0_PE)) || ((v & CR0_NW) && !(v & CR0_CD)) ||
	      ((v & CR0_PG) && !(old & CR0_PG) && (efer & EFER_LME) && !(cr4 & CR4_PAE));
	if (*gp)
		return true;
	if ((v & CR0_PG) && (efer & EFER_LME))
		efer |= EFER_LMA;
	else if (!(v & CR0_PG))
		efer &= ~EFER_LMA;
	return guest_set_control_regs(g, v, cr4, efer, gp);
}

static bool mov_to_cr4(struct guest *g, u64 v, bool *gp)
{
	u64 efer = guest_efer(g);

	/* VMXE is hidden; bits the CPU cannot set are reserved for the guest. */
	*gp = (v & CR4_VMXE) || (v & ~vmx_caps.cr4_fixed1) || (v >> 32) ||
	      ((efer & EFER_LMA) && !(v & CR4_PAE));
	if (*gp)
		return true;
	return guest_set_control_regs(g, guest_cr0(), v, efer, gp);
}

/* EFER from WRMSR: LME may not change while paging is on. */
bool guest_write_efer(struct guest *g, u64 v, bool *gp)
{
	u64 old = guest_efer(g), cr0 = guest_cr0();

	*gp = (v & ~(EFER_SCE | EFER_LME | EFER_NXE | EFER_LMA)) ||
	      (((v ^ old) & EFER_LME) && (cr0 & CR0_PG));
	if (*gp)
		return true;
	v = (v & ~EFER_LMA) | (old & EFER_LMA);
	return guest_set_control_regs(g, cr0, guest_cr4(), v, gp);
}

enum exit_action handle_cr_access(struct guest *g, struct vmexit *e)
{
	unsigned cr = e->qualification & 15, type = (e->qualification >> 4) & 3;
	u64 *r = gpr(g, (e->qualification >> 8) & 15);
	bool alive = true, gp = false;

	switch (type) {
	case 0:  /* MOV to CR */
		if (cr == 0)
			alive = mov_to_cr0(g, *r, &gp);
		else if (cr == 4)
			alive = mov_to_cr4(g, *r, &gp);
		else if (cr == 3)
			alive = g->mmu->set_cr3(g, *r, &gp);
		else if (cr == 8 && !(gp = *r & ~0xfull))  /* CR8 is the APIC TPR (SDM 10.8.6) */
			lapic_set_tpr(g, (u8)*r);
		break;
	case 1:  /* MOV from CR */
		if (cr == 3)
			*r = guest_cr3(g);
		else if (cr == 8)
			*r = lapic_get_tpr(g);
		break;
	case 2:  /* CLTS */
		alive = mov_to_cr0(g, guest_cr0() & ~CR0_TS, &gp);
		break;
	case 3: {  /* LMSW: low 4 bits, and it cannot clear PE */
		u64 src = (e->qualification >> 16) & 0xf, old = guest_cr0();

		alive = mov_to_cr0(g, (old & ~0xeull) | (src & 0xe) | ((old | src) & CR0_PE), &gp);
		break;
	}
	}
	if (!alive)
		return EXIT_ENDED;
	if (gp) {
		inject_gp0(g);
		return EXIT_RESUME;
	}
	skip_instruction(e);
	return EXIT_RESUME;
}
