/*
 * EPT guests (SDM Vol. 3C ch. 29): the CPU walks the guest's own page
 * tables, then the EPT that ept/ept.c builds over its RAM. The guest owns
 * its paging entirely (unrestricted guest, no CR3 or #PF exits); the
 * hypervisor sees only EPT violations: emulated MMIO, page-ageing access
 * tracking, or an access outside the guest's RAM, which ends it.
 */
#include <stdlib.h>
#include <string.h>
#include "vmx/mmu_ept.h"
#include "vmx/cr.h"
#include "vmx/emulate.h"
#include "vmx/event.h"
#include "vmx/features.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "ept/age.h"
#include "ept/ept.h"
#include "devices/devices.h"
#include "guest/memory.h"
#include "mm/mm.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"

struct guest_ept {
	struct ept ept;
	struct ept_age age;     /* scan_ms=N */
};

static struct guest_ept *ept_of(struct guest *g)
{
	return g->mmu_data;
}

/* ---- building -------------------------------------------------------------- */

static void *ept_table_alloc(void *ctx)
{
	(void)ctx;
	return alloc_zeroed_pages(1);
}

static void ept_table_free(void *table, void *ctx)
{
	(void)ctx;
	free_pages(table, 1);
}

static bool small_ept_pages(struct guest *g)
{
	return g->cfg.scan_ms && g->cfg.scan_pages == 1;
}

static bool ept_init(struct guest *g)
{
	struct guest_ept *p;
	u64 pages = g->mem.size / PAGE_SIZE;

	if (!vmx_caps.ept || !vmx_caps.unrestricted) {
		pr_err("%s: mmu=ept needs EPT with unrestricted guest, which this CPU lacks",
		       g->cfg.name);
		return false;
	}
	p = calloc(1, sizeof(*p));
	if (!p)
		return false;
	g->mmu_data = p;
	p->ept = (struct ept){ .alloc_table = ept_table_alloc, .free_table = ept_table_free };
	/* Ageing wants an accessed bit or a tracking fault per 4 KiB page: it
	 * splits 2 MiB pages where used (ept/age.h), or with scan_pages=4k gets
	 * 4 KiB pages from the start. */
	if (!ept_build(&p->ept, g->mem.page_hpa, pages, mmu_host_mtrrs(), small_ept_pages(g),
		       vmx_caps.ept_ad)) {
		pr_err("%s: not enough host memory for its EPT", g->cfg.name);
		return false;
	}
	if (p->ept.small_blocks)
		pr_info("%s: %llu of %llu 2 MiB blocks mapped with 4 KiB pages (ageing, fragmented "
			"memory or mixed memory types)",
			g->cfg.name, (unsigned long long)p->ept.small_blocks,
			(unsigned long long)(pages / 512));
	return true;
}

static void ept_destroy_guest(struct guest *g)
{
	struct guest_ept *p = ept_of(g);

	if (!p)
		return;
	ept_destroy(&p->ept);
	free(p);
	g->mmu_data = NULL;
}

static void ept_setup_vmcs(struct vcpu *v, u32 *cpu, u32 *sec, u32 *exception_bitmap)
{
	struct guest *g = v->g;

	/* EPT guests need no CR3 exits; drop them where the CPU allows it. */
	*cpu &= ~(vmx_caps.cpu_may_clear & (CPU_CR3_LOAD_EXITING | CPU_CR3_STORE_EXITING));
	*sec |= SEC_ENABLE_EPT | SEC_UNRESTRICTED_GUEST;
	*exception_bitmap = 0;
	vmcs_write64(EPT_POINTER, ept_of(g)->ept.eptp);
}

static void ept_flush_tlb(struct vcpu *v)
{
	struct guest *g = v->g;

	vmx_invept_single(ept_of(g)->ept.eptp);
}

/* ---- control registers ------------------------------------------------------- */

#define ALL_LOW_BITS 0xffffffffull

/* The fixed bits, and ET: fixed to 1 for the guest (vmx/cr.c) whatever the CPU does. */
static u64 ept_cr0_host_owned(void)
{
	return ((vmx_caps.cr0_fixed0 & ~CR0_UNRESTRICTED_FREE) | ~vmx_caps.cr0_fixed1 | CR0_ET) &
	       ALL_LOW_BITS;
}

/* Every bit the guest may not set, all 64 (LA57, PKE, CET, ... on a CPU that
 * has them): setting one exits, and vmx/cr.c injects #GP. */
static u64 ept_cr4_host_owned(void)
{
	return vmx_caps.cr4_fixed0 | CR4_VMXE | ~features_cr4_allowed();
}

static u64 ept_guest_cr3(struct vcpu *v)
{
	(void)v;
	return vmcs_readn(GUEST_CR3);
}

static u64 ept_guest_efer(struct vcpu *v)
{
	(void)v;
	return vmcs_read64(GUEST_IA32_EFER);
}

static bool ept_set_cr3(struct vcpu *v, u64 cr3, bool *gp)
{
	(void)v;
	*gp = false;
	vmcs_writen(GUEST_CR3, cr3);
	return true;
}

/*
 * Entering PAE paging through an emulated MOV to CR0/CR4: the CPU would
 * load the four PDPTEs now (SDM 4.4.1); with EPT, VM entry takes them from
 * the VMCS (SDM 27.3.2.4), so load them there. false means #GP.
 */
static bool load_pae_pdptes(struct vcpu *v, u64 cr0, u64 cr4, u64 efer)
{
	struct guest *g = v->g;
	struct gwalk_ctx ctx = { .cr0 = cr0, .cr3 = vmcs_readn(GUEST_CR3), .cr4 = cr4,
				 .efer = efer, .maxphyaddr = (u8)cpuid(0x80000008, 0).eax };
	static const enum vmcs_field fields[4] = { GUEST_PDPTE0, GUEST_PDPTE1, GUEST_PDPTE2,
						   GUEST_PDPTE3 };

	if (!(cr0 & CR0_PG) || !(cr4 & CR4_PAE) || (efer & EFER_LMA))
		return true;
	if (!gwalk_load_pdptes(&ctx, &g->mem.walker))
		return false;
	for (int i = 0; i < 4; i++)
		vmcs_write_checked(fields[i], ctx.pdpte[i], __func__);
	return true;
}

/* The CPU runs what the guest set: its paging is its own. */
static bool ept_set_mode(struct vcpu *v, u64 cr0, u64 cr4, u64 efer, struct cr_values *real,
			 bool *gp)
{
	*gp = !load_pae_pdptes(v, cr0, cr4, efer);
	*real = (struct cr_values){ cr0, cr4, efer };
	return true;
}

/* ---- guest memory ------------------------------------------------------------- */

/* The guest's paging state is in the VMCS (the PDPTE fields are valid in PAE
 * mode, SDM 28.3.4). */
static void ept_walk_context(struct vcpu *v, struct gwalk_ctx *ctx)
{
	(void)v;
	*ctx = (struct gwalk_ctx){
		.cr0 = guest_cr0(),
		.cr3 = vmcs_readn(GUEST_CR3),
		.cr4 = guest_cr4(),
		.efer = vmcs_read64(GUEST_IA32_EFER),
		.maxphyaddr = (u8)cpuid(0x80000008, 0).eax,
		.pdpte = { vmcs_read64(GUEST_PDPTE0), vmcs_read64(GUEST_PDPTE1),
			   vmcs_read64(GUEST_PDPTE2), vmcs_read64(GUEST_PDPTE3) },
	};
}

static void ept_store(struct guest *g, u64 gpa, const void *data, u32 len)
{
	memcpy(guest_gpa_ptr(g, gpa, len), data, len);
}

/* ---- exits ---------------------------------------------------------------------- */

/* Exit qualification of an EPT violation (SDM Vol. 3C Table 28-7). */
static enum exit_action ept_violation(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;
	u64 gpa = vmcs_read64(GUEST_PHYSICAL_ADDRESS);

	if (g->ageing && ept_age_fault(&ept_of(g)->age, ept_of(g)->ept.root, gpa))
		return EXIT_RESUME;  /* a page access tracking had taken away: back, young */
	if (devices_mmio_claimed(gpa) && !(e->qualification & BIT(2)))
		return v->delivering ? event_delivery_unemulatable(v, e, gpa, "an emulated MMIO access") :
				       emulate_instruction(v, e, "access emulated MMIO");

	/* Bits 7-8: the linear address is valid, and the access was to it, not to a
	 * paging structure of the guest's walk (SDM Table 28-7). */
	bool walk = (e->qualification & BIT(7)) && !(e->qualification & BIT(8));
	const char *kind = walk ? "page-table walk through" :
			   e->qualification & BIT(1) ? "write of" :
			   e->qualification & BIT(2) ? "instruction fetch of" : "read of";

	guest_end(g, 0, "%s guest-physical %#llx outside its %llu MiB of RAM at RIP %#llx",
		  kind, (unsigned long long)gpa, (unsigned long long)(g->mem.size >> 20),
		  (unsigned long long)e->guest_rip);
	return EXIT_ENDED;
}

static enum exit_action ept_misconfig(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;

	(void)e;
	guest_end(g, 0, "EPT misconfiguration at guest-physical %#llx (hypervisor bug)",
		  (unsigned long long)vmcs_read64(GUEST_PHYSICAL_ADDRESS));
	return EXIT_ENDED;
}

/* ---- page ageing (ept/age.c) ----------------------------------------------------- */

/* Access tracking (no EPT A/D): leaves newly tracked per scan at most, which
 * bounds the tracking faults a scan can cause. */
#define TRACK_PER_SCAN 2048

static void ept_age_start(struct guest *g, void *buf, u64 pages)
{
	struct guest_ept *p = ept_of(g);

	ept_age_init(&p->age, buf, pages, vmx_caps.ept_ad ? EPT_AGE_AD : EPT_AGE_TRACK,
		     TRACK_PER_SCAN);
	if (!small_ept_pages(g))
		ept_age_set_split(&p->age, ept_table_alloc, ept_table_free, NULL,
				  EPT_AGE_MERGE_SCANS);
}

static void ept_age_run(struct guest *g, struct mmu_age_scan *scan)
{
	struct guest_ept *p = ept_of(g);
	struct ept_age_stats st;

	scan->flush = ept_age_scan(&p->age, p->ept.root, &st);
	scan->visited = st.entries_visited;
	scan->skipped = st.subtrees_skipped;
	scan->young = st.pages_young;
	scan->faults = st.tracking_faults;
	scan->splits = st.splits;
	scan->merges = st.merges;
	scan->large = p->ept.large_blocks - st.split_blocks;
	scan->count = p->age.count;
}

static void ept_age_stop(struct guest *g)
{
	if (!ept_of(g))
		return;
	/* Tables the last scan's merges unlinked: its INVEPT is done (or the
	 * EPT goes away with the guest). */
	ept_age_release(&ept_of(g)->age);
	if (ept_of(g)->ept.root)
		ept_age_untrack_all(ept_of(g)->ept.root);
}

static u64 no_pages(struct guest *g)
{
	(void)g;
	return 0;
}

const struct mmu_ops ept_mmu_ops = {
	.name = "EPT",
	.uses_ept = true,
	.unrestricted = true,
	.init = ept_init,
	.destroy = ept_destroy_guest,
	.setup_vmcs = ept_setup_vmcs,
	.flush_tlb = ept_flush_tlb,
	.cr0_host_owned = ept_cr0_host_owned,
	.cr4_host_owned = ept_cr4_host_owned,
	.guest_cr3 = ept_guest_cr3,
	.guest_efer = ept_guest_efer,
	.set_cr3 = ept_set_cr3,
	.set_mode = ept_set_mode,
	.walk_context = ept_walk_context,
	.store = ept_store,
	.unemulatable_note = "",
	.ept_violation = ept_violation,
	.ept_misconfig = ept_misconfig,
	.age_buffer_size = ept_age_buffer_size,
	.age_init = ept_age_start,
	.age_scan = ept_age_run,
	.age_destroy = ept_age_stop,
	.pages = no_pages,
};
