/*
 * A guest's memory virtualization behind one interface: EPT
 * (vmx/mmu_ept.c) or shadow page tables (vmx/mmu_shadow.c, over the MMU
 * core in shadow/). Each side fills a struct mmu_ops; core/run.c picks one
 * per guest from its mmu= option. Nothing outside the two sides asks which
 * one a guest has: the rest of the hypervisor calls g->mmu or the helpers
 * below (vmx/mmu.c), which are the same for both.
 */
#ifndef VMX_MMU_H
#define VMX_MMU_H

#include "vmx/vmexit.h"
#include "shadow/gwalk.h"
#include "arch/x86/emulate.h"
#include "mm/mtrr.h"

/* The control registers as the CPU runs them (what the guest set may differ). */
struct cr_values {
	u64 cr0, cr4, efer;
};

/* What one ageing scan found (vmx/ageing.c prints it). */
struct mmu_age_scan {
	const u64 *count;       /* per guest page: scans since it was last seen used */
	u64 visited, skipped, young, faults;
	u64 splits, merges;     /* EPT: 2 MiB pages split / merged back by this scan */
	u64 large;              /* EPT: 2 MiB pages mapping guest RAM after it */
	bool flush;             /* A bits were cleared: flush before they count again */
};

/* A key=value figure for the per-guest statistics (core/stats.c). */
typedef void (*mmu_stat_fn)(void *ctx, const char *key, u64 value);

struct mmu_ops {
	const char *name;       /* "EPT" or "shadow", in logs */
	bool uses_ept;          /* reported by HC_CAPS and the statistics */
	bool unrestricted;      /* the guest owns CR0.PE/PG (unrestricted guest, SDM 26.3.1.1) */

	/* Set up after the guest's RAM exists, before its vCPU; false: cannot
	 * (a message says why). destroy() undoes whatever init() did. */
	bool (*init)(struct guest *g);
	void (*destroy)(struct guest *g);
	/* VMCS set-up: the exits this side needs, EPTP. */
	void (*setup_vmcs)(struct vcpu *v, u32 *cpu_controls, u32 *secondary_controls,
			   u32 *exception_bitmap);
	/* Forget every cached translation of this guest (TLB, paging-structure caches). */
	void (*flush_tlb)(struct vcpu *v);

	/* CR0/CR4 bits the host owns (guest/host masks, SDM 25.6.6). */
	u64 (*cr0_host_owned)(void);
	u64 (*cr4_host_owned)(void);
	/* The guest's own CR3 and EFER. */
	u64 (*guest_cr3)(struct vcpu *v);
	u64 (*guest_efer)(struct vcpu *v);
	/* MOV to CR3; and CR0/CR4/EFER after the architectural checks, with
	 * real set to what the CPU must run with. false: the guest was ended,
	 * or (set_cr3 only, the guest still alive) it must take the instruction
	 * again after other guests ran; *gp: inject #GP(0) instead. */
	bool (*set_cr3)(struct vcpu *v, u64 cr3, bool *gp);
	bool (*set_mode)(struct vcpu *v, u64 cr0, u64 cr4, u64 efer, struct cr_values *real,
			 bool *gp);

	/* How the guest's linear addresses translate now (its paging mode). */
	void (*walk_context)(struct vcpu *v, struct gwalk_ctx *ctx);
	/* Optional: translate la for access without a guest walk where the MMU's
	 * own tables already tell (exactly what the walk would give, and no A/D
	 * bit left to set); false: walk the guest tables. */
	bool (*translate_cached)(struct vcpu *v, u64 la, u32 access, bool rflags_ac, u64 *gpa);
	/* A store into guest RAM at gpa (one page) as the guest would make it. */
	void (*store)(struct guest *g, u64 gpa, const void *data, u32 len);
	/* The instruction at rip (touching gva) could not be emulated: make the
	 * guest able to run it itself. false (or NULL): nothing more can be done,
	 * and the message ending the guest adds unemulatable_note. */
	bool (*unprotect_and_retry)(struct guest *g, u64 rip, u64 gva);
	const char *unemulatable_note;

	/* Exits only this side asks for (NULL: it never does). */
	enum exit_action (*page_fault)(struct vcpu *v, struct vmexit *e, u32 pfec);
	exit_handler invlpg, invpcid, ept_violation, ept_misconfig;

	/* Page ageing (vmx/ageing.c): bytes of per-page state, then scans. */
	u64 (*age_buffer_size)(u64 pages);
	void (*age_init)(struct guest *g, void *buf, u64 pages);
	void (*age_scan)(struct guest *g, struct mmu_age_scan *scan);
	void (*age_destroy)(struct guest *g);

	/* Figures: key=value statistics, a summary line, once per run for all guests. */
	void (*stats)(struct guest *g, mmu_stat_fn add, void *ctx);
	void (*summary)(struct guest *g);
	void (*run_report)(void);
	/* Page tables it keeps for the guest now (shadow pages; 0 for EPT). */
	u64 (*pages)(struct guest *g);
};

/* ---- the same for both sides (vmx/mmu.c) ---------------------------------- */

/* Translate a guest-linear address with the guest's own paging; GACC_*
 * access bits. On a fault returns GWALK_FAULT with the #PF error code. */
enum gwalk_status mmu_translate(struct vcpu *v, u64 la, u32 access, u64 *gpa, u32 *pfec);
/* Store into guest RAM as the guest would: a shadowed guest page table
 * stays in step. false outside RAM. len must not cross a page. */
bool mmu_store(struct guest *g, u64 gpa, const void *data, u32 len);
/*
 * Guest-linear memory as the guest's own instruction sees it at its CPL
 * (access: GACC_WRITE, GACC_FETCH or 0): through its paging, into RAM
 * (stores via mmu_store(), so shadowed tables stay in step) or the
 * devices' MMIO. A fault comes back as the #PF (CR2 in address) or #GP to
 * raise; UNHANDLED: *unassigned is the guest-physical address that is
 * neither RAM nor a device, or ~0 if the page walk itself left RAM.
 */
enum x86_cb_status mmu_linear_to_gpa(struct vcpu *v, u64 la, u32 access, u64 *gpa,
				     struct x86_fault *fault, u64 *unassigned);
/* Copy to or from guest-physical gpa (one page at most): RAM or MMIO; false: neither. */
bool mmu_gpa_copy(struct vcpu *v, u64 gpa, void *buf, unsigned len, bool write);
/* len (<= PAGE_SIZE) bytes at la, split at a page boundary; every page is
 * translated before anything is copied, so a fault changes nothing. buf
 * NULL: translate only. */
enum x86_cb_status mmu_linear_access(struct vcpu *v, u64 la, void *buf, unsigned len, u32 access,
				     struct x86_fault *fault, u64 *unassigned);
/* The host's MTRRs (read once): the memory type of each host frame (SDM 13.11). */
const struct mtrr_state *mmu_host_mtrrs(void);
/* The guest's CPL (from SS.DPL, SDM 5.5). */
u32 guest_cpl(void);

/* Exit handlers, passed on to the side that asked for the exit. */
enum exit_action mmu_handle_page_fault(struct vcpu *v, struct vmexit *e, u32 pfec);
enum exit_action mmu_handle_invlpg(struct vcpu *v, struct vmexit *e);
enum exit_action mmu_handle_invpcid(struct vcpu *v, struct vmexit *e);
enum exit_action mmu_handle_ept_violation(struct vcpu *v, struct vmexit *e);
enum exit_action mmu_handle_ept_misconfig(struct vcpu *v, struct vmexit *e);

#endif
