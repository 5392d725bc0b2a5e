/*
 * A guest's memory virtualization, EPT (vmx/memory.c) or shadow paging
 * (vmx/mmu_shadow.c), as the rest of vmx/ sees it.
 */
#ifndef VMX_MMU_H
#define VMX_MMU_H

#include "vmx/guest.h"
#include "vmx/exit.h"
#include "shadow/shadow.h"

/* ---- control registers as the guest sees them (vmx/cr.c) ----------------- */

/* The single place that changes the guest's CR0, CR4 or EFER: validates
 * nothing (callers do), derives what the CPU really runs with for either
 * MMU, keeps "IA-32e mode guest" in step. false: the guest was ended, or
 * *gp says to inject #GP. */
bool guest_set_control_regs(struct guest *g, u64 cr0, u64 cr4, u64 efer, bool *gp);
u64 guest_cr0(void);
u64 guest_cr4(void);
u64 guest_cr3(struct guest *g);
u64 guest_efer(struct guest *g);

/* ---- guest-linear and guest-physical access (vmx/memory.c) ---------------- */

/* Translate with the guest's own paging; GACC_* access bits. On a fault
 * returns GWALK_FAULT with the #PF error code in *pfec. */
enum gwalk_status guest_translate(struct guest *g, u64 la, u32 access, u64 *gpa, u32 *pfec);
/* Store into guest RAM as the guest would: through the shadow MMU when the
 * frame holds a shadowed guest page table. false outside RAM. */
bool guest_store(struct guest *g, u64 gpa, const void *data, u32 len);

/* ---- shadow paging (vmx/mmu_shadow.c) -------------------------------------- */

bool shadow_guest_init(struct guest *g);
void shadow_guest_destroy(struct guest *g);
bool shadow_guest_set_cr3(struct guest *g, u64 cr3, bool *gp);
bool shadow_guest_set_mode(struct guest *g, u64 cr0, u64 cr4, u64 efer, u64 *real_cr0,
			   u64 *real_cr4, u64 *real_efer, bool *gp);
struct shadow_vcpu *guest_shadow_vcpu(struct guest *g);
bool shadow_guest_write_protected(struct guest *g, u64 gpa);
void shadow_guest_store(struct guest *g, u64 gpa, const void *data, u32 len);
enum exit_action handle_shadow_page_fault(struct guest *g, struct vmexit *e, u32 pfec);
enum exit_action handle_invlpg(struct guest *g, struct vmexit *e);
enum exit_action handle_invpcid(struct guest *g, struct vmexit *e);
/* false: the same instruction already failed this way; end the guest. */
bool shadow_guest_unprotect_and_retry(struct guest *g, u64 rip, u64 gva);
void shadow_guest_report(struct guest *g);
/* The shared pool's figures (a "stats _pool" line), once per run. */
void shadow_pool_report(void);
const struct shadow_stats *guest_shadow_stats(struct guest *g);  /* NULL for EPT guests */
void shadow_guest_counters(struct guest *g, u64 *mmu_ticks, u64 *unprotects);

struct shadow_mmu *guest_shadow_mmu(struct guest *g);
u64 guest_shadow_pages(struct guest *g);  /* shadow page tables it holds now; 0 for EPT */

/* ---- page ageing (vmx/ageing.c), on when the guest has scan_ms=N ------------ */

#define AGEING_WS_COUNT 4          /* working sets over the last 1, 2, 4, 8 scans */
#define AGEING_STAT_WS 0x200       /* HC_STAT ids: 0x200 + k = pages used in the last k scans */
#define AGEING_STAT_SCANS 0x210    /* scans so far */
#define AGEING_STAT_PERIOD 0x211   /* scan period in guest TSC ticks */

bool ageing_init(struct guest *g);
void ageing_destroy(struct guest *g);
/* Guest TSC of the next scan (0: no ageing); scan if it is due. */
u64 ageing_next_event(struct guest *g, u64 now);
void ageing_maybe_scan(struct guest *g, u64 now);
/* EPT access tracking: true if gpa's violation was a tracked page (resume). */
bool ageing_ept_fault(struct guest *g, u64 gpa);
bool ageing_stat(struct guest *g, u64 id, s64 *value);
void ageing_report(struct guest *g);

/* ---- end-of-run statistics (vmx/stats.c) ----------------------------------- */

void stats_print(struct guest *g);

/* ---- instruction emulation (vmx/emulate.c) -------------------------------- */

/* Emulate the instruction at the guest's RIP (its memory accesses go
 * through guest_translate/guest_store); 'why' names the reason in logs. */
enum exit_action emulate_instruction(struct guest *g, struct vmexit *e, const char *why);

#endif
