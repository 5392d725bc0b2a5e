/*
 * Guest-physical memory. RAM comes from the frame allocator in 2 MiB
 * blocks where possible (so the EPT can use 2 MiB pages) and 4 KiB frames
 * otherwise; it is zeroed, so a guest never sees what was there before.
 * The EPT maps exactly the guest's RAM: any other access is an EPT
 * violation, which ends the guest with the address it touched.
 */
#include <string.h>
#include "vmx/memory.h"
#include "vmx/mmu.h"
#include "vmx/exit.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "mm/mm.h"
#include "mm/pt.h"
#include "mm/pte.h"
#include "mm/mtrr.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"

#define PAGES_PER_2M 512

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
		"gets its host frames' types in the EPT", host_mtrrs.enabled ? "on" : "off",
		host_mtrrs.default_type, host_mtrrs.variable_count,
		host_mtrrs.fixed_enabled ? "on" : "off");
}

static u64 ept_leaf(u8 type)
{
	return EPT_RWX | ((u64)type << EPT_MT_SHIFT);
}

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

/* Fill page_hpa for one 2 MiB block: one aligned run, or single frames. */
static bool alloc_block(struct guest_memory *m, u64 first_page, bool *contiguous)
{
	u64 run = frame_alloc_run(&host_frames, PAGES_PER_2M, LARGE_PAGE_SIZE);

	*contiguous = run != 0;
	for (u64 i = 0; i < PAGES_PER_2M; i++) {
		u64 pa = run ? run + i * PAGE_SIZE : frame_alloc(&host_frames);

		if (!pa)
			return false;
		memset((void *)pa, 0, PAGE_SIZE);
		m->page_hpa[first_page + i] = pa;
	}
	return true;
}

static void *walker_gfn_to_hva(struct guest_mem *mem, u64 gfn)
{
	struct guest *g = (struct guest *)((u8 *)mem - offsetof(struct guest, walker_mem));

	return guest_gpa_ptr(g, gfn << PAGE_SHIFT, PAGE_SIZE);
}

bool guest_memory_init(struct guest *g)
{
	struct guest_memory *m = &g->mem;
	u64 pages = g->cfg.mem / PAGE_SIZE;
	u64 small_blocks = 0;

	if (!host_mtrrs_read)
		read_host_mtrrs();

	m->size = g->cfg.mem;
	g->walker_mem.gfn_to_hva = walker_gfn_to_hva;
	m->page_hpa = alloc_zeroed_pages(ALIGN_UP(pages * sizeof(u64), PAGE_SIZE) / PAGE_SIZE);
	m->ept_root = alloc_zeroed_pages(1);
	if (!m->page_hpa || !m->ept_root)
		return false;
	for (u64 p = 0; p < pages; p += PAGES_PER_2M) {
		bool contiguous;
		u64 gpa = p * PAGE_SIZE;
		bool ok;

		if (!alloc_block(m, p, &contiguous))
			return false;
		/* One 2 MiB page when the host block is contiguous and of one
		 * memory type; else 4 KiB pages, each with its frame's type. */
		u8 type = contiguous ? mtrr_range_type(&host_mtrrs, m->page_hpa[p],
						       LARGE_PAGE_SIZE) : MT_MIXED;

		/* Ageing wants an accessed bit per 4 KiB page. */
		if (g->cfg.scan_ms)
			type = MT_MIXED;

		if (type != MT_MIXED) {
			ok = pt_map(&ept_format, m->ept_root, gpa, m->page_hpa[p], LARGE_PAGE_SIZE,
				    ept_leaf(type), PT_LEVEL_2M, ept_table_alloc, NULL);
		} else {
			small_blocks++;
			ok = true;
			for (u64 i = 0; i < PAGES_PER_2M && ok; i++)
				ok = pt_map(&ept_format, m->ept_root, gpa + i * PAGE_SIZE,
					    m->page_hpa[p + i], PAGE_SIZE,
					    ept_leaf(mtrr_type(&host_mtrrs, m->page_hpa[p + i])),
					    PT_LEVEL_4K, ept_table_alloc, NULL);
		}
		if (!ok)
			return false;
	}
	/* EPTP (SDM 25.6.11): WB paging structures, 4-level walk, A/D if present. */
	m->eptp = (u64)m->ept_root | EPT_MT_WB | (3ull << 3) | (vmx_caps.ept_ad ? BIT(6) : 0);
	if (small_blocks)
		pr_info("%s: %llu of %llu 2 MiB blocks mapped with 4 KiB pages (ageing, fragmented "
			"memory or mixed memory types)",
			g->cfg.name, (unsigned long long)small_blocks,
			(unsigned long long)(pages / PAGES_PER_2M));
	return true;
}

void guest_memory_free(struct guest *g)
{
	struct guest_memory *m = &g->mem;
	u64 pages = m->size / PAGE_SIZE;

	if (m->page_hpa) {
		for (u64 p = 0; p < pages; p++)
			if (m->page_hpa[p])
				frame_free_run(&host_frames, m->page_hpa[p], 1);
		free_pages(m->page_hpa, ALIGN_UP(pages * sizeof(u64), PAGE_SIZE) / PAGE_SIZE);
		m->page_hpa = NULL;
	}
	if (m->ept_root) {
		pt_free_tables(&ept_format, m->ept_root, ept_table_free, NULL);
		free_pages(m->ept_root, 1);
		m->ept_root = NULL;
	}
}

void *guest_gpa_ptr(struct guest *g, u64 gpa, u64 len)
{
	if (gpa >= g->mem.size || len > PAGE_SIZE - (gpa & (PAGE_SIZE - 1)))
		return NULL;
	return (void *)(g->mem.page_hpa[gpa / PAGE_SIZE] + (gpa & (PAGE_SIZE - 1)));
}

bool guest_copy_to(struct guest *g, u64 gpa, const void *src, u64 len)
{
	const u8 *s = src;

	while (len) {
		u64 chunk = PAGE_SIZE - (gpa & (PAGE_SIZE - 1));
		u8 *d;

		if (chunk > len)
			chunk = len;
		d = guest_gpa_ptr(g, gpa, chunk);
		if (!d)
			return false;
		memcpy(d, s, chunk);
		gpa += chunk;
		s += chunk;
		len -= chunk;
	}
	return true;
}


/*
 * The walker's view of the guest: for a shadow guest the MMU core keeps
 * the guest's own CR0/CR3/CR4/EFER and PDPTEs; for an EPT guest they are
 * in the VMCS (the PDPTE fields are valid in PAE mode, SDM 28.3.4).
 */
static void walker_context(struct guest *g, struct gwalk_ctx *ctx)
{
	if (g->shadow) {
		*ctx = guest_shadow_vcpu(g)->ctx;
	} else {
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
	ctx->rflags_ac = vmcs_readn(GUEST_RFLAGS) & RFLAGS_AC;
}

enum gwalk_status guest_translate(struct guest *g, u64 la, u32 access, u64 *gpa, u32 *pfec)
{
	struct gwalk_ctx ctx;
	struct gwalk_result r;
	enum gwalk_status st;

	walker_context(g, &ctx);
	st = gwalk(&ctx, &g->walker_mem, la, access, &r);
	if (st == GWALK_OK)
		*gpa = r.gpa;
	else if (st == GWALK_FAULT)
		*pfec = r.pfec;
	return st;
}

bool guest_linear_to_gpa(struct guest *g, u64 la, bool write, u64 *gpa)
{
	u32 cpl = (vmcs_read32(GUEST_SS_AR_BYTES) >> 5) & 3, pfec;

	return guest_translate(g, la, (write ? GACC_WRITE : 0) | (cpl == 3 ? GACC_USER : 0), gpa,
			       &pfec) == GWALK_OK;
}

bool guest_store(struct guest *g, u64 gpa, const void *data, u32 len)
{
	void *p = guest_gpa_ptr(g, gpa, len);

	if (!p)
		return false;
	if (shadow_guest_write_protected(g, gpa))
		shadow_guest_store(g, gpa, data, len);
	else
		memcpy(p, data, len);
	return true;
}

/* Exit qualification of an EPT violation (SDM Vol. 3C Table 28-7). */
enum exit_action handle_ept_violation(struct guest *g, struct vmexit *e)
{
	u64 gpa = vmcs_read64(GUEST_PHYSICAL_ADDRESS);

	if (ageing_ept_fault(g, gpa))
		return EXIT_RESUME;  /* a page access tracking had taken away: back, young */
	if (mmio_claimed(gpa) && !(e->qualification & BIT(2)))
		return emulate_instruction(g, e, "access emulated MMIO");

	const char *kind = e->qualification & BIT(1) ? "write" :
			   e->qualification & BIT(2) ? "instruction fetch" : "read";

	guest_end(g, 0, "%s of guest-physical %#llx outside its %llu MiB of RAM at RIP %#llx",
		  kind, (unsigned long long)gpa, (unsigned long long)(g->mem.size >> 20),
		  (unsigned long long)e->guest_rip);
	return EXIT_ENDED;
}

enum exit_action handle_ept_misconfig(struct guest *g, struct vmexit *e)
{
	(void)e;
	guest_end(g, 0, "EPT misconfiguration at guest-physical %#llx (hypervisor bug)",
		  (unsigned long long)vmcs_read64(GUEST_PHYSICAL_ADDRESS));
	return EXIT_ENDED;
}
