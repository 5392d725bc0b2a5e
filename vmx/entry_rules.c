/*
 * Guest-state rules of VM entry (SDM Vol. 3C 27.3.1), the ones this
 * hypervisor's own state handling or a guest's values could break; Bochs'
 * log (VMENTER FAIL) and the SDM remain the full list. Pure: no VMCS access,
 * so host tests can break each rule on purpose.
 */
#include "vmx/entry_rules.h"
#include "vmx/vmx.h"
#include "arch/x86/cpu.h"

#define AR_TYPE(ar) ((ar) & 15)
#define AR_S BIT(4)
#define AR_DPL(ar) (((ar) >> 5) & 3)
#define AR_P BIT(7)
#define AR_L BIT(13)
#define AR_DB BIT(14)
#define AR_UNUSABLE BIT(16)
#define EFER_DEFINED (EFER_SCE | EFER_LME | EFER_LMA | EFER_NXE)
/* IA32_DEBUGCTL bits 5:2 and 63:16 are reserved (SDM Vol. 4 Table 2-2). */
#define DEBUGCTL_RESERVED 0xffffffffffff003cull

struct run {
	entry_rule_fail fail;
	void *ctx;
	int failures;
};

static void rule(struct run *r, bool ok, const char *sdm, const char *what)
{
	if (ok)
		return;
	r->failures++;
	r->fail(r->ctx, sdm, what);
}

static bool pat_valid(u64 pat)
{
	for (int i = 0; i < 8; i++) {
		u8 t = (u8)(pat >> (8 * i));

		if (t == 2 || t == 3 || t > 7)
			return false;
	}
	return true;
}

/* 27.3.1.1: control registers, debug registers and MSRs. */
static void check_registers(struct run *r, const struct entry_state *s)
{
	u64 fixed0 = s->cr0_fixed0 & ~(s->unrestricted ? (CR0_PE | CR0_PG) : 0);
	bool ia32e = s->entry_controls & ENTRY_IA32E_MODE_GUEST;

	rule(r, (s->cr0 & fixed0) == fixed0 && !(s->cr0 & ~s->cr0_fixed1), "27.3.1.1",
	     "CR0 must respect IA32_VMX_CR0_FIXED0/1");
	rule(r, !(s->cr0 & CR0_PG) || (s->cr0 & CR0_PE), "27.3.1.1", "CR0.PG=1 requires CR0.PE=1");
	rule(r, (s->cr4 & s->cr4_fixed0) == s->cr4_fixed0 && !(s->cr4 & ~s->cr4_fixed1),
	     "27.3.1.1", "CR4 must respect IA32_VMX_CR4_FIXED0/1");
	rule(r, !ia32e || ((s->cr0 & CR0_PG) && (s->cr4 & CR4_PAE)), "27.3.1.1",
	     "an IA-32e mode guest needs CR0.PG=1 and CR4.PAE=1");
	rule(r, ia32e || !(s->cr4 & CR4_PCIDE), "27.3.1.1",
	     "CR4.PCIDE must be 0 outside IA-32e mode");
	rule(r, !(s->cr3 >> s->maxphyaddr), "27.3.1.1",
	     "CR3 bits beyond the physical-address width must be 0");
	if (s->entry_controls & ENTRY_LOAD_DEBUG_CONTROLS) {
		rule(r, !(s->debugctl & DEBUGCTL_RESERVED), "27.3.1.1",
		     "IA32_DEBUGCTL reserved bits must be 0");
		rule(r, !(s->dr7 >> 32), "27.3.1.1", "DR7 bits 63:32 must be 0");
	}
	rule(r, canonical_address(s->sysenter_esp) && canonical_address(s->sysenter_eip),
	     "27.3.1.1", "IA32_SYSENTER_ESP and IA32_SYSENTER_EIP must be canonical");
	rule(r, !(s->entry_controls & ENTRY_LOAD_IA32_PAT) || pat_valid(s->pat), "27.3.1.1",
	     "IA32_PAT: each entry must be a valid memory type (0, 1, 4, 5, 6, 7)");
	rule(r, !(s->entry_controls & ENTRY_LOAD_IA32_EFER) || !(s->efer & ~EFER_DEFINED),
	     "27.3.1.1", "IA32_EFER reserved bits must be 0");
	rule(r, !(s->entry_controls & ENTRY_LOAD_IA32_EFER) ||
	     (!!(s->efer & EFER_LMA) == ia32e &&
	      (!(s->cr0 & CR0_PG) || !!(s->efer & EFER_LME) == ia32e)),
	     "27.3.1.1", "EFER.LMA (and LME with paging) must equal 'IA-32e mode guest'");
}

/* 27.3.1.2 and 27.3.1.3: segments and descriptor-table registers. */
static void check_segments(struct run *r, const struct entry_state *s)
{
	bool ia32e = s->entry_controls & ENTRY_IA32E_MODE_GUEST;
	u32 cs = s->cs_ar, ss = s->ss_ar, tr = s->tr_ar;

	rule(r, !(tr & AR_UNUSABLE) && (AR_TYPE(tr) == 11 || (!ia32e && AR_TYPE(tr) == 3)) &&
	     !(tr & AR_S) && (tr & AR_P), "27.3.1.2",
	     "TR must be usable, present, a busy TSS (type 11; 3 allowed outside IA-32e mode)");
	rule(r, !(cs & AR_UNUSABLE) && (cs & AR_S) && (cs & AR_P) && (AR_TYPE(cs) & 8), "27.3.1.2",
	     "CS must be a usable, present code segment");
	rule(r, !ia32e || !(cs & AR_L) || !(cs & AR_DB), "27.3.1.2",
	     "in IA-32e mode CS.L=1 requires CS.D=0");
	rule(r, (ss & AR_UNUSABLE) || s->unrestricted || AR_DPL(ss) == AR_DPL(cs), "27.3.1.2",
	     "SS.DPL must equal CS.DPL (without unrestricted guest)");
	rule(r, canonical_address(s->tr_base) && canonical_address(s->fs_base) &&
	     canonical_address(s->gs_base) &&
	     ((s->ldtr_ar & AR_UNUSABLE) || canonical_address(s->ldtr_base)), "27.3.1.2",
	     "TR, FS, GS (and a usable LDTR) base addresses must be canonical");
	rule(r, canonical_address(s->gdtr_base) && canonical_address(s->idtr_base), "27.3.1.3",
	     "GDTR and IDTR base addresses must be canonical");
}

int entry_rules_check(const struct entry_state *s, entry_rule_fail fail, void *ctx)
{
	struct run r = { fail, ctx, 0 };

	check_registers(&r, s);
	check_segments(&r, s);
	rule(&r, (s->rflags & RFLAGS_FIXED) && !(s->rflags & 0xffffffffffc08028ull), "27.3.1.4",
	     "RFLAGS reserved bits: bit 1 set, bits 3, 5, 15, 22-63 clear");
	rule(&r, !(s->rflags & RFLAGS_VM) || !(s->entry_controls & ENTRY_IA32E_MODE_GUEST),
	     "27.3.1.4", "RFLAGS.VM must be 0 in IA-32e mode");
	rule(&r, s->activity <= 3, "27.3.1.5", "activity state must be 0-3");
	rule(&r, s->link_pointer == ~0ull, "27.3.1.5",
	     "VMCS link pointer must be all-ones without VMCS shadowing");
	return r.failures;
}
