/*
 * What the memory virtualization offers the rest of vmx/, the same for EPT
 * and shadow guests: translation with the guest's own paging, stores that
 * keep shadowed guest tables in step, and the exits only one side asks for.
 */
#include <string.h>
#include "vmx/mmu.h"
#include "vmx/vmcs.h"
#include "guest/memory.h"
#include "arch/x86/cpu.h"

u32 guest_cpl(void)
{
	return (vmcs_read32(GUEST_SS_AR_BYTES) >> 5) & 3;
}

enum gwalk_status mmu_translate(struct guest *g, u64 la, u32 access, u64 *gpa, u32 *pfec)
{
	struct gwalk_ctx ctx;
	struct gwalk_result r;
	enum gwalk_status st;

	g->mmu->walk_context(g, &ctx);
	ctx.rflags_ac = vmcs_readn(GUEST_RFLAGS) & RFLAGS_AC;
	st = gwalk(&ctx, &g->mem.walker, la, access, &r);
	if (st == GWALK_OK)
		*gpa = r.gpa;
	else if (st == GWALK_FAULT)
		*pfec = r.pfec;
	return st;
}

bool mmu_store(struct guest *g, u64 gpa, const void *data, u32 len)
{
	if (!guest_gpa_ptr(g, gpa, len))
		return false;
	g->mmu->store(g, gpa, data, len);
	return true;
}

/* An exit the guest's MMU side never asked for. */
static enum exit_action unexpected(struct guest *g, struct vmexit *e)
{
	guest_end(g, 0, "exit %u at RIP %#llx is not expected with %s (hypervisor bug)", e->reason,
		  (unsigned long long)e->guest_rip, g->mmu->name);
	return EXIT_ENDED;
}

enum exit_action mmu_handle_page_fault(struct guest *g, struct vmexit *e, u32 pfec)
{
	return g->mmu->page_fault ? g->mmu->page_fault(g, e, pfec) : unexpected(g, e);
}

enum exit_action mmu_handle_invlpg(struct guest *g, struct vmexit *e)
{
	return g->mmu->invlpg ? g->mmu->invlpg(g, e) : unexpected(g, e);
}

enum exit_action mmu_handle_invpcid(struct guest *g, struct vmexit *e)
{
	return g->mmu->invpcid ? g->mmu->invpcid(g, e) : unexpected(g, e);
}

enum exit_action mmu_handle_ept_violation(struct guest *g, struct vmexit *e)
{
	return g->mmu->ept_violation ? g->mmu->ept_violation(g, e) : unexpected(g, e);
}

enum exit_action mmu_handle_ept_misconfig(struct guest *g, struct vmexit *e)
{
	return g->mmu->ept_misconfig ? g->mmu->ept_misconfig(g, e) : unexpected(g, e);
}
