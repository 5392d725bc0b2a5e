/*
 * Control registers (exit qualification: SDM Vol. 3C Table 28-3). The guest
 * reads CR0/CR4 through read shadows for the bits the host owns. An EPT guest
 * owns its paging bits and the host the VMX fixed bits (CR0.NE, CR4.VMXE, SDM
 * 24.8 and A.7-A.8), CR0.ET and every CR4 bit the guest may not set (so that
 * setting one exits and faults); a shadow guest's every bit is owned, so
 * each change reaches the shadow MMU. Writes that exit are emulated here with
 * the architectural checks, and guest_set_control_regs() is the one place
 * that turns the guest's CR0/CR4/EFER into what the CPU runs with.
 */
#include "vmx/cr.h"
#include "vmx/event.h"
#include "vmx/features.h"
#include "vmx/mmu.h"
#include "vmx/vm86.h"
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

u64 guest_cr3(struct vcpu *v)
{
	struct guest *g = v->g;

	return g->mmu->guest_cr3(v);
}

u64 guest_efer(struct vcpu *v)
{
	struct guest *g = v->g;

	return g->mmu->guest_efer(v);
}

bool guest_set_control_regs(struct vcpu *v, u64 cr0, u64 cr4, u64 efer, bool *gp)
{
	struct guest *g = v->g;
	struct cr_values real;
	u32 entry = vmcs_read32(VM_ENTRY_CONTROLS);

	if (!g->mmu->set_mode(v, cr0, cr4, efer, &real, gp))
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
	/* Without unrestricted guest real mode runs as virtual-8086 mode. */
	return g->mmu->unrestricted || realmode_sync(v, cr0);
}

#define AR_L BIT(13)
/* CR0 bits defined on Intel 64; the others are reserved and read as 0. */
#define CR0_DEFINED (CR0_PE | CR0_MP | CR0_EM | CR0_TS | CR0_ET | CR0_NE | CR0_WP | CR0_AM | \
		     CR0_NW | CR0_CD | CR0_PG)
#define CR3_PCID_NOFLUSH BIT(63)
#define CR3_PCID 0xfffull

static bool cs_long(void)
{
	return vmcs_read32(GUEST_CS_AR_BYTES) & AR_L;
}

bool guest_in_64bit_mode(struct vcpu *v)
{
	return (guest_efer(v) & EFER_LMA) && cs_long();
}

static u64 *gpr(struct vcpu *v, unsigned n)
{
	return &(&v->regs.rax)[n];  /* struct guest_regs is in encoding order */
}

/*
 * MOV to CR0 (SDM Vol. 2B MOV CR, Vol. 3A 2.5 and 10.8.5): #GP for bits
 * 63:32, PG without PE, NW without CD, paging on with LME but without PAE or
 * from a 64-bit code segment, paging off in 64-bit mode or with PCIDE. ET is
 * fixed to 1 and reserved bits 31:0 read as 0, as on the CPU. LMA follows PG
 * when LME is set.
 */
static bool mov_to_cr0(struct vcpu *v, u64 val, bool *gp)
{
	u64 old = guest_cr0(), efer = guest_efer(v), cr4 = guest_cr4();
	bool paging_on = (val & CR0_PG) && !(old & CR0_PG);

	*gp = (val >> 32) || ((val & CR0_PG) && !(val & CR0_PE)) || ((val & CR0_NW) && !(val & CR0_CD)) ||
	      (paging_on && (efer & EFER_LME) && (!(cr4 & CR4_PAE) || cs_long())) ||
	      (!(val & CR0_PG) && (guest_in_64bit_mode(v) || (cr4 & CR4_PCIDE)));
	if (*gp)
		return true;
	val = (val & CR0_DEFINED) | CR0_ET;
	if ((val & CR0_PG) && (efer & EFER_LME))
		efer |= EFER_LMA;
	else if (!(val & CR0_PG))
		efer &= ~EFER_LMA;
	return guest_set_control_regs(v, val, cr4, efer, gp);
}

/*
 * MOV to CR4: #GP for a bit the guest's CPUID does not back
 * (features_cr4_allowed: LA57, PKE, CET, VMXE, ... never), PAE off in IA-32e
 * mode, PCIDE on outside IA-32e mode or with CR3[11:0] != 0 (SDM Vol. 2B
 * MOV CR, Vol. 3A 4.10.1).
 */
static bool mov_to_cr4(struct vcpu *v, u64 val, bool *gp)
{
	u64 efer = guest_efer(v), old = guest_cr4();

	*gp = (val & ~features_cr4_allowed()) || ((efer & EFER_LMA) && !(val & CR4_PAE)) ||
	      ((val & CR4_PCIDE) && !(old & CR4_PCIDE) &&
	       (!(efer & EFER_LMA) || (guest_cr3(v) & CR3_PCID)));
	if (*gp)
		return true;
	return guest_set_control_regs(v, guest_cr0(), val, efer, gp);
}

/*
 * MOV to CR3 (SDM Vol. 3A 4.5, 4.10.4.1): in IA-32e mode bits 63:MAXPHYADDR
 * are reserved (#GP), except bit 63 with CR4.PCIDE=1, which asks not to
 * flush and is not stored. Outside it the operand is 32 bits and has none.
 */
static bool mov_to_cr3(struct vcpu *v, u64 val, bool *gp)
{
	struct guest *g = v->g;

	if ((guest_efer(v) & EFER_LMA) && (guest_cr4() & CR4_PCIDE))
		val &= ~CR3_PCID_NOFLUSH;
	*gp = (guest_efer(v) & EFER_LMA) && (val >> features_maxphyaddr());
	if (*gp)
		return true;
	return g->mmu->set_cr3(v, val, gp);
}

/* EFER from WRMSR: bits the guest's CPUID does not back are reserved; LME
 * may not change while paging is on. */
bool guest_write_efer(struct vcpu *v, u64 val, bool *gp)
{
	u64 old = guest_efer(v), cr0 = guest_cr0();

	*gp = (val & ~features_efer_allowed(v)) ||
	      (((val ^ old) & EFER_LME) && (cr0 & CR0_PG));
	if (*gp)
		return true;
	val = (val & ~EFER_LMA) | (old & EFER_LMA);
	return guest_set_control_regs(v, cr0, guest_cr4(), val, gp);
}

enum exit_action handle_cr_access(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;
	unsigned cr = e->qualification & 15, type = (e->qualification >> 4) & 3;
	u64 *r = gpr(v, (e->qualification >> 8) & 15);
	/* Outside 64-bit mode the operand is 32 bits and a MOV from CR writes 32
	 * bits, which zero-extend into the register (SDM Vol. 1 3.4.1.1). */
	u64 width = guest_in_64bit_mode(v) ? ~0ull : 0xffffffffull, val = *r & width;
	bool alive = true, gp = false;

	switch (type) {
	case 0:  /* MOV to CR */
		if (cr == 0)
			alive = mov_to_cr0(v, val, &gp);
		else if (cr == 4)
			alive = mov_to_cr4(v, val, &gp);
		else if (cr == 3)
			alive = mov_to_cr3(v, val, &gp);
		else if (cr == 8 && !(gp = val & ~0xfull))  /* CR8 is the APIC TPR (SDM 10.8.6) */
			lapic_set_tpr(v, (u8)val);
		break;
	case 1:  /* MOV from CR */
		if (cr == 3)
			*r = guest_cr3(v) & width;
		else if (cr == 8)
			*r = lapic_get_tpr(v);
		break;
	case 2:  /* CLTS */
		alive = mov_to_cr0(v, guest_cr0() & ~CR0_TS, &gp);
		break;
	case 3: {  /* LMSW: low 4 bits, and it cannot clear PE */
		u64 src = (e->qualification >> 16) & 0xf, old = guest_cr0();

		alive = mov_to_cr0(v, (old & ~0xeull) | (src & 0xe) | ((old | src) & CR0_PE), &gp);
		break;
	}
	}
	if (!alive)  /* still alive: retry (the MMU waits for memory) */
		return g->state == GUEST_DONE ? EXIT_ENDED : EXIT_YIELD;
	if (gp) {
		inject_gp0(v);
		return EXIT_RESUME;
	}
	skip_instruction(e);
	return EXIT_RESUME;
}
