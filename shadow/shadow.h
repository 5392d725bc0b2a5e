/*
 * Software shadow MMU: keeps shadow page tables that the real CPU walks
 * while the guest believes it walks its own (SDM Vol. 3A ch. 4 semantics,
 * checked against tests/unit/refmmu.c). Pure logic behind struct
 * shadow_host; the VMX exit handlers call the entry points below.
 *
 * Shadow format: 4-level for long-mode guests; PAE for 32-bit, PAE and
 * paging-off guests (a 32-bit guest table is shadowed by 2 or 4 PAE tables,
 * a "quadrant" each; paging-off runs on a direct identity map). A guest large
 * page (and the identity map) is mapped by 2 MiB sptes where the host run
 * allows and no frame inside is a shadowed table (opt.largepages), else by
 * shadow 4 KiB tables ("direct" pages, splinters).
 *
 * Invariants (what makes it exact):
 *  - Shadow tables are always in sync with guest tables: every guest frame
 *    that holds a shadowed guest table is write-protected in the shadow
 *    (through the reverse map), and guest writes to it are emulated through
 *    shadow_guest_write(), which rewrites the affected sptes in place.
 *    So INVLPG, MOV CR3 and INVPCID only need the real TLB flushed.
 *  - A/D emulation: an spte is present only if the guest entry has A=1, and
 *    a leaf spte (4 KiB or 2 MiB) is writable only if the guest leaf has D=1. The guest A/D
 *    bits are set by the fault path with the walker's rules (gwalk.c).
 *  - Rights: upper sptes allow everything; each leaf spte carries the rights
 *    combined over the guest walk, so a shadow page's role includes the
 *    rights accumulated above it (as KVM's role.access).
 *
 * Concurrency: one shadow_mmu per guest; callers serialise all calls on it
 * (one lock per guest). Guest vCPUs may run meanwhile: guest memory is
 * accessed with atomics and the fault path re-checks guest entries after
 * write-protecting a table.
 */
#ifndef SHADOW_SHADOW_H
#define SHADOW_SHADOW_H

#include "shadow/types.h"

/* Set up an empty MMU for one guest; mmu memory belongs to the caller. */
void shadow_init(struct shadow_mmu *mmu, struct shadow_host *host, u8 maxphyaddr);
/* Free every shadow page; vCPUs must have been released with shadow_vcpu_release(). */
void shadow_destroy(struct shadow_mmu *mmu);

/* A vCPU starts with paging off (CR0=CR4=EFER=0). */
bool shadow_vcpu_init(struct shadow_vcpu *v, struct shadow_mmu *mmu);
void shadow_vcpu_release(struct shadow_vcpu *v);

enum shadow_cr_result {
	SHADOW_CR_OK,
	SHADOW_CR_GP,		/* inject #GP(0): PAE PDPTEs with reserved bits (SDM 4.4.1) */
	SHADOW_CR_NO_MEMORY,	/* no root page even after zap-all */
};

/*
 * Guest MOV to CR3 (bit 63, the PCID no-flush bit, is ignored: we flush
 * anyway). Flushes the vCPU's non-global translations. On failure the old
 * CR3 and root stay.
 */
enum shadow_cr_result shadow_set_cr3(struct shadow_vcpu *v, u64 cr3);
/*
 * Guest writes to CR0, CR4 or EFER, already validated by the caller, with
 * EFER.LMA already computed (LME && PG). Flushes the vCPU's TLB.
 */
enum shadow_cr_result shadow_set_mode(struct shadow_vcpu *v, u64 cr0, u64 cr4, u64 efer);
/* Host-physical address to load into the real CR3 (VMCS GUEST_CR3). */
u64 shadow_root_hpa(const struct shadow_vcpu *v);
/*
 * The real CR0/CR4/EFER the guest must run with on these shadow tables,
 * from the guest's values: PG, WP and PAE set; PSE, PCIDE, PKE clear; SMEP,
 * SMAP kept only while guest paging is on; EFER.NXE set. The CR0/CR4 read
 * shadows and EFER reads must show the guest's own values.
 */
void shadow_hw_control_regs(const struct shadow_vcpu *v, u64 *cr0, u64 *cr4, u64 *efer);
void shadow_invlpg(struct shadow_vcpu *v, u64 gva);
/* INVPCID types 0-3 (SDM INVPCID): flushed without PCID tagging. */
void shadow_invpcid(struct shadow_vcpu *v, int type, u64 gva);

/*
 * A #PF taken while the guest ran on the shadow tables. access uses the
 * GACC_* bits (see shadow_access_from_pfec()); rflags_ac is the guest's.
 */
enum shadow_fault_kind shadow_page_fault(struct shadow_vcpu *v, u64 gva, u32 access,
					 bool rflags_ac, struct shadow_fault *out);

/*
 * Translate gva for access (GACC_* bits) from the shadow tables alone,
 * without a guest walk, where they suffice: a present shadow leaf whose
 * rights permit the access (write protection of a guest table frame not
 * counted). The guest walk would then permit it too and find nothing to
 * set. false: they do not tell; walk the guest tables.
 */
bool shadow_translate_cached(struct shadow_vcpu *v, u64 gva, u32 access, bool rflags_ac,
			     u64 *gpa);

/*
 * GACC_* bits from a hardware #PF error code: the same W/U/I bits, and a
 * supervisor access at CPL 3 must be implicit (SDM 4.6).
 */
static inline u32 shadow_access_from_pfec(u32 pfec, int cpl)
{
	u32 access = pfec & (PFEC_W | PFEC_U | PFEC_I);

	if (!(pfec & PFEC_U) && cpl == 3)
		access |= GACC_IMPLICIT;
	return access;
}

/*
 * An emulated guest store of len bytes (any size, any alignment, may cross
 * guest entries and pages) to guest-physical gpa: writes guest memory and
 * rewrites the sptes that shadow the written entries. A write of a whole
 * page of zeros drops the shadow pages of that frame instead. With flood
 * detection on (shadow/flood.h), a frame written but no longer used as a
 * table is unshadowed here, and the guest writes it directly afterwards.
 */
void shadow_guest_write(struct shadow_mmu *mmu, u64 gpa, const void *data, u32 len);
/* True while gfn holds a shadowed guest table (guest stores to it must be emulated). */
bool shadow_gfn_is_write_protected(struct shadow_mmu *mmu, u64 gfn);

/* Drop every shadow page (pinned roots are emptied, not freed). */
void shadow_zap_all(struct shadow_mmu *mmu);

/*
 * Consistency check for tests and debugging: every present spte matches
 * what the guest tables say, reverse and parent maps are exact, no
 * writable spte maps a write-protected frame. Returns the problem count.
 */
unsigned shadow_audit(struct shadow_mmu *mmu);

#endif
