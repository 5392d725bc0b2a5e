/*
 * What the memory virtualization offers the rest of vmx/, the same for EPT
 * and shadow guests: translation with the guest's own paging, stores that
 * keep shadowed guest tables in step, and the exits only one side asks for.
 */
#include <string.h>
#include "vmx/mmu.h"
#include "vmx/vmcs.h"
#include "devices/devices.h"
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

	bool ac = vmcs_readn(GUEST_RFLAGS) & RFLAGS_AC;

	if (g->mmu->translate_cached && g->mmu->translate_cached(g, la, access, ac, gpa))
		return GWALK_OK;
	g->mmu->walk_context(g, &ctx);
	ctx.rflags_ac = ac;
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

enum x86_cb_status mmu_linear_to_gpa(struct guest *g, u64 la, u32 access, u64 *gpa,
				     struct x86_fault *fault, u64 *unassigned)
{
	u32 pfec = 0;

	*unassigned = ~0ull;
	switch (mmu_translate(g, la, access | (guest_cpl() == 3 ? GACC_USER : 0), gpa, &pfec)) {
	case GWALK_OK:
		break;
	case GWALK_FAULT:
		*fault = (struct x86_fault){ .vector = 14, .has_error_code = true,
					     .error_code = pfec, .address = la };
		return X86_CB_FAULT;
	case GWALK_NONCANONICAL:
		*fault = (struct x86_fault){ .vector = 13, .has_error_code = true };
		return X86_CB_FAULT;
	case GWALK_NOT_RAM:  /* the walk itself left RAM */
		return X86_CB_UNHANDLED;
	}
	if (!guest_gpa_ptr(g, *gpa, 1) && !devices_mmio_claimed(*gpa)) {
		*unassigned = *gpa;
		return X86_CB_UNHANDLED;
	}
	return X86_CB_OK;
}

bool mmu_gpa_copy(struct guest *g, u64 gpa, void *buf, unsigned len, bool write)
{
	u8 *p = guest_gpa_ptr(g, gpa, len);

	if (p && write)
		return mmu_store(g, gpa, buf, len);
	if (p) {
		memcpy(buf, p, len);
		return true;
	}
	return devices_mmio(g, gpa, buf, len, write);
}

enum x86_cb_status mmu_linear_access(struct guest *g, u64 la, void *buf, unsigned len, u32 access,
				     struct x86_fault *fault, u64 *unassigned)
{
	struct { u64 gpa; unsigned len; } part[2];
	unsigned n = 0, done = 0;
	u8 *b = buf;

	*unassigned = ~0ull;
	if (len > PAGE_SIZE)  /* at most two pages: part[] */
		return X86_CB_UNHANDLED;
	/* Translate every page first: a fault must leave memory untouched. */
	for (; done < len; n++) {
		u64 at = la + done;
		unsigned chunk = (unsigned)(PAGE_SIZE - (at & (PAGE_SIZE - 1)));
		enum x86_cb_status st = mmu_linear_to_gpa(g, at, access, &part[n].gpa, fault,
							  unassigned);

		if (st != X86_CB_OK)
			return st;
		part[n].len = chunk < len - done ? chunk : len - done;
		done += part[n].len;
	}
	for (unsigned i = 0; b && i < n; b += part[i++].len) {
		if (!mmu_gpa_copy(g, part[i].gpa, b, part[i].len, access & GACC_WRITE)) {
			*unassigned = part[i].gpa;
			return X86_CB_UNHANDLED;
		}
	}
	return X86_CB_OK;
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
