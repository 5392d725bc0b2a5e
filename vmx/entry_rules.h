/*
 * The guest-state rules VM entry enforces (SDM Vol. 3C 27.3.1), as pure code
 * over a snapshot of the fields (vmx/entry_rules.c): vmx/entry_check.c fills
 * it from the VMCS after an entry failed, host tests from made-up states.
 */
#ifndef VMX_ENTRY_RULES_H
#define VMX_ENTRY_RULES_H

#include "lib/types.h"

struct entry_state {
	u64 cr0, cr3, cr4, efer, rflags, dr7, debugctl, pat;
	u64 cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;  /* IA32_VMX_CR*_FIXED* */
	u32 maxphyaddr;
	u32 entry_controls;
	bool unrestricted;      /* "unrestricted guest" in effect */
	u32 cs_ar, ss_ar, tr_ar, ldtr_ar;
	u64 fs_base, gs_base, tr_base, ldtr_base, gdtr_base, idtr_base;
	u64 sysenter_esp, sysenter_eip;
	u32 activity;
	u64 link_pointer;
};

/* Called once per broken rule: the SDM section and what the rule says. */
typedef void (*entry_rule_fail)(void *ctx, const char *sdm, const char *what);

/* Returns the number of broken rules. */
int entry_rules_check(const struct entry_state *s, entry_rule_fail fail, void *ctx);

#endif
