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
#include "arch/x86/log.h"

/* The host's MTRRs, read once: guest RAM gets the type its host frames have. */
static struct mtrr_state host_mtrrs;
static bool host_mtrrs_read;

static void read_host_mtrrs(void)
{
	static const u32 fixed_msrs[11] = { 0x250, 0x258, 0x259, 0x268, 0x269, 0x26a, 0x26b,
					    0x26c, 0x26d, 0x26e, 0x26f };
	u64 cap, def;

	host_mtrrs_read = true;
	host_mtrrs.maxphyaddr = (u8)cpuid(0x80000008, 0).eax;
	if (!(cpuid(1, 0).edx & (1u << 12))) {  /* no MTRRs: treat everything as WB */
		host_mtrrs.enabled = true;
		host_mtrrs.default_type = MT_WB;
		return;
	}
	cap = rdmsr(MSR_IA32_MTRRCAP);
	def = rdmsr(MSR_IA32_MTRR_DEF_TYPE);
	host_mtrrs.enabled = def & BIT(11);
	host_mtrrs.fixed_enabled = (def & BIT(10)) && (cap & BIT(8));
	host_mtrrs.default_type = (u8)def;
	host_mtrrs.variable_count = (int)(cap & 0xff) < MTRR_MAX_VARIABLE ? (int)(cap & 0xff) :
									   MTRR_MAX_VARIABLE;
	for (int i = 0; i < host_mtrrs.variable_count; i++) {
		host_mtrrs.variable[i].base = rdmsr(0x200 + 2 * i);
		host_mtrrs.variable[i].mask = rdmsr(0x201 + 2 * i);
	}
	for (int m = 0; host_mtrrs.fixed_enabled && m < 11; m++) {
		u64 v = rdmsr(fixed_msrs[m]);

		for (int b = 0; b < 8; b++)
			host_mtrrs.fixed[m * 8 + b] = (u8)(v >> (8 * b));
	}
	pr_info("MTRRs %s: default type %u, %d variable ranges, fixed ranges %s; guest RAM "
		"gets its host frames' types", host_mtrrs.enabled ? "on" : "off",
		host_mtrrs.default_type, host_mtrrs.variable_count,
		host_mtrrs.fixed_enabled ? "on" : "off");
}

const struct mtrr_state *mmu_host_mtrrs(void)
{
	if (!host_mtrrs_read)
		read_host_mtrrs();
	return &host_mtrrs;
}

u32 guest_cpl(void)
{
	return (vmcs_read32(GUEST_SS_AR_BYTES) >> 5) & 3;
}

enum gwalk_status mmu_translate(struct vcpu *v, u64 la, u32 access, u64 *gpa, u32 *pfec)
{
	struct guest *g = v->g;
	struct gwalk_ctx ctx;
	struct gwalk_result r;
	enum gwalk_status st;

	bool ac = vmcs_readn(GUEST_RFLAGS) & RFLAGS_AC;

	if (g->mmu->translate_cached && g->mmu->translate_cached(v, la, access, ac, gpa))
		return GWALK_OK;
	g->mmu->walk_context(v, &ctx);
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

enum x86_cb_status mmu_linear_to_gpa(struct vcpu *v, u64 la, u32 access, u64 *gpa,
				     struct x86_fault *fault, u64 *unassigned)
{
	struct guest *g = v->g;
	u32 pfec = 0;

	*unassigned = ~0ull;
	switch (mmu_translate(v, la, access | (guest_cpl() == 3 ? GACC_USER : 0), gpa, &pfec)) {
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

bool mmu_gpa_copy(struct vcpu *v, u64 gpa, void *buf, unsigned len, bool write)
{
	struct guest *g = v->g;
	u8 *p = guest_gpa_ptr(g, gpa, len);

	if (p && write)
		return mmu_store(g, gpa, buf, len);
	if (p) {
		memcpy(buf, p, len);
		return true;
	}
	return devices_mmio(v, gpa, buf, len, write);
}

enum x86_cb_status mmu_linear_access(struct vcpu *v, u64 la, void *buf, unsigned len, u32 access,
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
		enum x86_cb_status st = mmu_linear_to_gpa(v, at, access, &part[n].gpa, fault,
							  unassigned);

		if (st != X86_CB_OK)
			return st;
		part[n].len = chunk < len - done ? chunk : len - done;
		done += part[n].len;
	}
	for (unsigned i = 0; b && i < n; b += part[i++].len) {
		if (!mmu_gpa_copy(v, part[i].gpa, b, part[i].len, access & GACC_WRITE)) {
			*unassigned = part[i].gpa;
			return X86_CB_UNHANDLED;
		}
	}
	return X86_CB_OK;
}

/* An exit the guest's MMU side never asked for. */
static enum exit_action unexpected(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;

	guest_end(g, 0, "exit %u at RIP %#llx is not expected with %s (hypervisor bug)", e->reason,
		  (unsigned long long)e->guest_rip, g->mmu->name);
	return EXIT_ENDED;
}

enum exit_action mmu_handle_page_fault(struct vcpu *v, struct vmexit *e, u32 pfec)
{
	struct guest *g = v->g;

	return g->mmu->page_fault ? g->mmu->page_fault(v, e, pfec) : unexpected(v, e);
}

enum exit_action mmu_handle_invlpg(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;

	return g->mmu->invlpg ? g->mmu->invlpg(v, e) : unexpected(v, e);
}

enum exit_action mmu_handle_invpcid(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;

	return g->mmu->invpcid ? g->mmu->invpcid(v, e) : unexpected(v, e);
}

enum exit_action mmu_handle_ept_violation(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;

	return g->mmu->ept_violation ? g->mmu->ept_violation(v, e) : unexpected(v, e);
}

enum exit_action mmu_handle_ept_misconfig(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;

	return g->mmu->ept_misconfig ? g->mmu->ept_misconfig(v, e) : unexpected(v, e);
}
