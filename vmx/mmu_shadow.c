/*
 * Shadow paging, VMX side: the glue between VM exits and the MMU core in
 * shadow/. A shadow guest runs without EPT on tables the core builds; the
 * hypervisor owns every CR0/CR4 bit and intercepts CR3, INVLPG and #PF, so
 * each paging event reaches the core at one call site:
 *   MOV CR0/CR4, WRMSR EFER  -> shadow_set_mode    (vmx/cr.c guest_set_control_regs)
 *   MOV to CR3               -> shadow_set_cr3
 *   INVLPG, INVPCID          -> shadow_invlpg, shadow_invpcid
 *   #PF                      -> shadow_page_fault, then inject, or emulate
 *                               the write to a protected guest table.
 */
#include <string.h>
#include "vmx/mmu_shadow.h"
#include "vmx/cr.h"
#include "vmx/emulate.h"
#include "vmx/flood_trace.h"
#include "vmx/event.h"
#include "vmx/vmcs.h"
#include "vmx/vcpu.h"
#include "vmx/vmx.h"
#include "devices/devices.h"
#include "guest/memory.h"
#include "shadow/age.h"
#include "shadow/flood.h"
#include "shadow/reclaim.h"
#include "shadow/shadow.h"
#include "mm/mm.h"
#include "arch/x86/cpu.h"
#include "arch/x86/smp.h"
#include "arch/x86/log.h"
#include "lib/config.h"

struct guest_shadow {
	struct shadow_host host;
	struct guest *g;
	spinlock_t lock;        /* every call into the core (shadow/shadow.h) */
	struct shadow_mmu mmu;
	struct shadow_vcpu vcpu[GUEST_MAX_VCPUS];  /* one per vCPU: its CR3, mode and root */
	struct shadow_age age;  /* scan_ms=N */
	u8 *large_run;        /* per 2 MiB block of RAM: 1 if one 2 MiB spte may map it */
	u64 large_run_pages;
	u64 pages_allocated;
	u64 pages_peak;       /* most host frames it held at once */
	u64 mmu_tsc;          /* host ticks spent inside the shadow MMU core */
	u64 unprotects;       /* instructions we could not emulate: shadows dropped */
	u64 last_unprotect_rip, last_unprotect_gva;
	u32 no_memory_retries;
	/* #PF exits by outcome, and their hypervisor ticks from the exit to the
	 * handler's end: a fault fixed in the shadow, a guest table write emulated. */
	u64 pf_fixed, pf_fixed_ticks, pf_emulated, pf_emulated_ticks;
};

/* Time a call into the MMU core: the statistics report where ticks go. */
/* Time a call into the MMU core, under the guest's MMU lock: its vCPUs
 * fault, load CR3 and write tables at once on several CPUs. */
#define TIMED(s, call)                                  \
	({                                              \
		spin_lock(&(s)->lock);                  \
		u64 t0_ = rdtsc();                      \
		__auto_type r_ = (call);                \
		(s)->mmu_tsc += rdtsc() - t0_;          \
		spin_unlock(&(s)->lock);                \
		r_;                                     \
	})

#define shadow_of(h) ((struct guest_shadow *)((u8 *)(h) - offsetof(struct guest_shadow, host)))

/* The host frames of all guests' shadow MMUs (tables and bookkeeping) come from
 * one pool with a global limit (shadow_pool=N); each guest also has its own
 * (shadow_pages=N), both in frames. On one CPU, one guest runs at a time, so
 * reclaim needs no cross-guest locking (trylock NULL). With several, the
 * donor's guest lock (struct guest) is tried: a guest running on another CPU
 * is busy (its hardware walks those tables), and is never waited for. */
static struct shadow_pool pool;
static bool pool_ready;

#define mmu_shadow_of(m) ((struct guest_shadow *)((u8 *)(m) - offsetof(struct guest_shadow, mmu)))

/* The donor's MMU lock, never waited for; its vCPUs may run meanwhile: the
 * core's guest-wide flush before it frees their tables kicks them out of the
 * guest and waits (vcpu_flush_guest_tlb). */
static bool pool_trylock(struct shadow_pool *p, struct shadow_mmu *mmu)
{
	(void)p;
	return spin_trylock(&mmu_shadow_of(mmu)->lock);
}

static void pool_unlock(struct shadow_pool *p, struct shadow_mmu *mmu)
{
	(void)p;
	spin_unlock(&mmu_shadow_of(mmu)->lock);
}

/* A fault that found no shadow page even after reclaim waits for other guests to
 * free some; this many retries in a row without progress end it. */
#define NO_MEMORY_RETRIES 1000
#define BELOW_4G (4ull << 30)

/* REP STOSQ: the CPU's own fast string store (SDM Vol. 1 7.3.9.3), one instruction. */
static void zero_page(void *page)
{
	u64 count = PAGE_SIZE / 8;

	__asm__ volatile("rep stosq" : "+D"(page), "+c"(count) : "a"(0ull) : "memory");
}

static void *host_alloc_page(struct shadow_host *h, u64 *hpa, bool below_4g, bool zero)
{
	u64 pa = host_frame_alloc(1, PAGE_SIZE);

	if (!pa)
		return NULL;
	if (below_4g && pa >= BELOW_4G) {
		/* PAE roots live in a 32-bit CR3; the pool hands out low frames first. */
		host_frame_free(pa, 1);
		return NULL;
	}
	if (zero)
		zero_page((void *)pa);
	if (++shadow_of(h)->pages_allocated > shadow_of(h)->pages_peak)
		shadow_of(h)->pages_peak = shadow_of(h)->pages_allocated;
	*hpa = pa;
	return (void *)pa;
}

static void host_free_page(struct shadow_host *h, void *page, u64 hpa)
{
	(void)page;
	shadow_of(h)->pages_allocated--;
	host_frame_free(hpa, 1);
}

/*
 * 2 MiB sptes: a block of guest RAM that is one aligned host run (guest/memory.c
 * allocates runs where it can) of one host memory type; a 2 MiB page over
 * mixed types is undefined (SDM 13.11.9). Decided once per block.
 */
static void find_large_runs(struct guest_shadow *s)
{
	u64 blocks = s->g->mem.size / LARGE_PAGE_SIZE;

	s->large_run_pages = ALIGN_UP(blocks, PAGE_SIZE) / PAGE_SIZE;
	s->large_run = alloc_zeroed_pages(s->large_run_pages);
	for (u64 b = 0; s->large_run && b < blocks; b++) {
		u64 hpa = guest_memory_run_2m(s->g, b * (LARGE_PAGE_SIZE / PAGE_SIZE));

		s->large_run[b] = hpa && mtrr_range_type(mmu_host_mtrrs(), hpa, LARGE_PAGE_SIZE) !=
					 MT_MIXED;
	}
}

static u64 host_gfn_to_hpa_large(struct shadow_host *h, u64 gfn)
{
	struct guest_shadow *s = shadow_of(h);
	u64 block = gfn / (LARGE_PAGE_SIZE / PAGE_SIZE);

	if (!s->large_run || block >= s->g->mem.size / LARGE_PAGE_SIZE || !s->large_run[block])
		return SHADOW_NO_RAM;
	return s->g->mem.page_hpa[gfn];
}

static struct guest_shadow *shadow_of_guest(struct guest *g)
{
	return g->mmu_data;
}

/* The MMU core's view of one vCPU: its CR3, paging mode and root. */
static struct shadow_vcpu *svcpu(struct vcpu *v)
{
	return &shadow_of_guest(v->g)->vcpu[v->index];
}

static u64 host_gfn_to_hpa(struct shadow_host *h, u64 gfn)
{
	struct guest *g = shadow_of(h)->g;

	return gfn < g->mem.size / PAGE_SIZE ? g->mem.page_hpa[gfn] : SHADOW_NO_RAM;
}

/*
 * Without VPID every VM entry and exit flushes the guest's linear
 * translations (SDM 29.4.3.1); with VPID (one per vCPU) the tag is flushed
 * explicitly: the exiting vCPU's own for its INVLPG, MOV CR3 or mode change,
 * every vCPU's, wherever it runs, when sptes lose rights or tables are freed.
 */
static void host_flush_tlb(struct shadow_host *h, struct shadow_vcpu *v, enum shadow_flush what,
			   u64 gva)
{
	(void)v;  /* the local kinds concern the vCPU whose exit this is */
	if (what == SHADOW_FLUSH_GUEST)
		vcpu_flush_guest_tlb(shadow_of(h)->g);
	else
		vcpu_flush_local_tlb(shadow_of(h)->g, what == SHADOW_FLUSH_GVA, gva);
}

static bool init_vcpus(struct guest_shadow *s, int n)
{
	for (int i = 0; i < n; i++)
		if (!shadow_vcpu_init(&s->vcpu[i], &s->mmu))
			return false;
	return true;
}

/* Every vCPU the core knows (a failed init leaves the others empty). */
static void release_vcpus(struct guest_shadow *s)
{
	for (int i = 0; i < GUEST_MAX_VCPUS; i++)
		if (s->vcpu[i].mmu)
			shadow_vcpu_release(&s->vcpu[i]);
}

static bool shadow_guest_init(struct guest *g)
{
	u64 pages = ALIGN_UP(sizeof(struct guest_shadow), PAGE_SIZE) / PAGE_SIZE;
	struct guest_shadow *s = alloc_zeroed_pages(pages);

	if (!s) {
		pr_err("%s: no memory for the shadow MMU", g->cfg.name);
		return false;
	}
	s->g = g;
	s->host = (struct shadow_host){
		.alloc_page = host_alloc_page,
		.free_page = host_free_page,
		.gfn_to_hpa = host_gfn_to_hpa,
		.gfn_to_hpa_large = host_gfn_to_hpa_large,
		.flush_tlb = host_flush_tlb,
		.mem = &g->mem.walker,
	};
	find_large_runs(s);
	shadow_init(&s->mmu, &s->host, (u8)cpuid(0x80000008, 0).eax);
	/* Switches before the first root is built (largepages counts tables from it on).
	 * Page ageing reads the A bits of 4 KiB sptes only: no 2 MiB ones with it. */
	shadow_flood_set(&s->mmu, g->cfg.flood == 0);
	s->mmu.opt.fastpath = g->cfg.fastpath == 0;
	s->mmu.opt.fastemul = g->cfg.fastemul == 0;
	s->mmu.opt.prefetch = g->cfg.prefetch == 0;
	s->mmu.opt.unsync = g->cfg.unsync == 0;
	s->mmu.opt.largepages = g->cfg.largepages == 0 && !g->cfg.scan_ms;
	if (!pool_ready) {
		shadow_pool_init(&pool, hv_config.shadow_pool);
		if (smp_cpu_count() > 1) {
			pool.trylock = pool_trylock;
			pool.unlock = pool_unlock;
		}
		pool_ready = true;
	}
	g->mmu_data = s;
	if (!shadow_pool_attach(&pool, &s->mmu, g->cfg.shadow_pages ? g->cfg.shadow_pages :
				shadow_default_limit(g->mem.size / PAGE_SIZE),
				(enum shadow_reclaim_policy)g->cfg.reclaim) ||
	    !init_vcpus(s, g->nr_vcpus)) {
		release_vcpus(s);
		shadow_destroy(&s->mmu);
		if (s->large_run)
			free_pages(s->large_run, s->large_run_pages);
		g->mmu_data = NULL;
		free_pages(s, pages);
		pr_err("%s: no memory for the shadow MMU", g->cfg.name);
		return false;
	}
	if (g->cfg.flood_trace && g->cfg.flood == 0)
		flood_trace_start(g, &s->mmu);
	return true;
}

static void shadow_guest_destroy(struct guest *g)
{
	struct guest_shadow *s = shadow_of_guest(g);

	if (!s)
		return;
	flood_trace_stop(g, &s->mmu);
	release_vcpus(s);
	shadow_destroy(&s->mmu);
	if (s->large_run)
		free_pages(s->large_run, s->large_run_pages);
	free_pages(s, ALIGN_UP(sizeof(*s), PAGE_SIZE) / PAGE_SIZE);
	g->mmu_data = NULL;
}

static u64 shadow_guest_pages(struct guest *g)
{
	return shadow_mmu_pages(&shadow_of_guest(g)->mmu, 0);
}

/* Every paging event exits; #PF is the only exception we intercept. */
static void shadow_setup_vmcs(struct vcpu *v, u32 *cpu, u32 *sec, u32 *exception_bitmap)
{
	(void)v, (void)sec;
	/* With INVLPG exiting, INVPCID exits too when enabled (SDM 26.1.3). */
	*cpu |= CPU_INVLPG_EXITING | CPU_CR3_LOAD_EXITING | CPU_CR3_STORE_EXITING;
	*exception_bitmap = BIT(14);
}

/* Without VPID every VM entry and exit flushes the guest's translations. */
static void shadow_flush_tlb(struct vcpu *v)
{
	if (vmx_caps.vpid)
		vmx_invvpid_single(v->vpid);
}

#define ALL_LOW_BITS 0xffffffffull

/* Every CR0/CR4 bit: each change must reach the shadow MMU. */
static u64 shadow_host_owned(void)
{
	return ALL_LOW_BITS;
}

static u64 shadow_guest_cr3(struct vcpu *v)
{
	return svcpu(v)->ctx.cr3;
}

static u64 shadow_guest_efer(struct vcpu *v)
{
	return svcpu(v)->ctx.efer;
}

/* The MMU core keeps the guest's own CR0/CR3/CR4/EFER and PDPTEs. */
static void shadow_walk_context(struct vcpu *v, struct gwalk_ctx *ctx)
{
	*ctx = svcpu(v)->ctx;
}

/* fastemul=on: the shadow tables translate for the emulator where they can. */
static bool shadow_translate(struct vcpu *v, u64 la, u32 access, bool rflags_ac, u64 *gpa)
{
	struct guest_shadow *s = shadow_of_guest(v->g);
	bool found;

	if (!s->mmu.opt.fastemul)
		return false;
	/* Under the lock: it follows pages another vCPU's fault may free. */
	spin_lock(&s->lock);
	found = shadow_translate_cached(svcpu(v), la, access, rflags_ac, gpa);
	spin_unlock(&s->lock);
	return found;
}

static void shadow_guest_store(struct guest *g, u64 gpa, const void *data, u32 len)
{
	struct guest_shadow *s = shadow_of_guest(g);
	u64 t0;

	spin_lock(&s->lock);
	t0 = rdtsc();
	if (!shadow_gfn_is_write_protected(&s->mmu, gpa >> PAGE_SHIFT)) {
		memcpy(guest_gpa_ptr(g, gpa, len), data, len);
		spin_unlock(&s->lock);
		return;
	}
	shadow_guest_write(&s->mmu, gpa, data, len);
	s->mmu_tsc += rdtsc() - t0;
	spin_unlock(&s->lock);
}

/*
 * The emulator could not finish a write to a protected guest table. Drop
 * every shadow page (which removes the write protection) and let the guest
 * run the instruction itself; the tables are re-shadowed on demand. If the
 * same instruction comes back for the same address, the guest is looping
 * on something we cannot handle: end it instead of retrying forever.
 */
static bool shadow_guest_unprotect_and_retry(struct guest *g, u64 rip, u64 gva)
{
	struct guest_shadow *s = shadow_of_guest(g);

	if (s->last_unprotect_rip == rip && s->last_unprotect_gva == gva)
		return false;
	s->last_unprotect_rip = rip;
	s->last_unprotect_gva = gva;
	s->unprotects++;
	TIMED(s, (shadow_zap_all(&s->mmu), 0));
	return true;
}

static void load_root(struct vcpu *v)
{
	vmcs_writen(GUEST_CR3, shadow_root_hpa(svcpu(v)));
}

/*
 * With several CPUs a reclaim only tries the other guests' locks, and a guest
 * running elsewhere holds its pages for the rest of its slice: no memory may
 * be only for now. The running guest then takes the MOV to CR3 again after
 * a yield, as a fault waits for pages (wait_for_shadow_pages); on one CPU
 * every other guest could be reclaimed from, so it is final.
 */
static bool shadow_guest_set_cr3(struct vcpu *v, u64 cr3, bool *gp)
{
	struct guest *g = v->g;
	struct guest_shadow *s = shadow_of_guest(g);
	enum shadow_cr_result r = TIMED(s, shadow_set_cr3(svcpu(v), cr3));

	*gp = r == SHADOW_CR_GP;
	if (r == SHADOW_CR_NO_MEMORY) {
		if (smp_cpu_count() > 1 && g->entered &&
		    ++s->no_memory_retries < NO_MEMORY_RETRIES)
			return false;  /* alive: retried after a yield */
		guest_end(g, 0, "out of memory for shadow page tables (CR3 load)");
		return false;
	}
	if (r == SHADOW_CR_OK)
		load_root(v);
	return true;
}

static bool shadow_guest_set_mode(struct vcpu *v, u64 cr0, u64 cr4, u64 efer,
				  struct cr_values *real, bool *gp)
{
	struct guest *g = v->g;
	struct guest_shadow *s = shadow_of_guest(g);
	enum shadow_cr_result r;

	/* The CPU runs a shadow guest paged, hence in protected mode: real mode (CR0.PE=0,
	 * paging off here as with PE=1) runs as virtual-8086 mode (vmx/realmode.c). */
	r = TIMED(s, shadow_set_mode(svcpu(v), cr0, cr4, efer));
	*gp = r == SHADOW_CR_GP;
	if (r == SHADOW_CR_NO_MEMORY) {
		guest_end(g, 0, "out of memory for shadow page tables (paging mode change)");
		return false;
	}
	if (r != SHADOW_CR_OK)
		return true;
	shadow_hw_control_regs(svcpu(v), &real->cr0, &real->cr4, &real->efer);
	/* The CPU always pages a shadow guest, so EFER.LME must already equal
	 * LMA (SDM 27.3.1.1) while the guest's LME waits for PG. */
	real->efer = (real->efer & ~EFER_LME) | (real->efer & EFER_LMA ? EFER_LME : 0);
	load_root(v);
	return true;
}

static enum exit_action shadow_handle_invlpg(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;
	struct guest_shadow *s = shadow_of_guest(g);

	TIMED(s, (shadow_invlpg(svcpu(v), e->qualification), 0));
	skip_instruction(e);
	return EXIT_RESUME;
}

/*
 * INVPCID's 16-byte descriptor at linear address la, read as the CPU would
 * (SDM Vol. 2A INVPCID): in 64-bit mode a non-canonical address is #GP(0),
 * or #SS(0) through SS, never a #PF; then the guest's paging decides. false:
 * an exception was injected, or the guest was ended (*action says which).
 */
static bool read_invpcid_desc(struct vcpu *v, u64 la, bool stack, u64 desc[2],
			      enum exit_action *action)
{
	struct guest *g = v->g;
	u8 *out = (u8 *)desc;

	*action = EXIT_RESUME;
	if (guest_in_64bit_mode(v) && (!canonical_address(la) || !canonical_address(la + 15))) {
		inject_exception(v, stack ? 12 : 13, true, 0);
		return false;
	}
	for (u32 done = 0, chunk; done < 16; done += chunk) {
		u64 a = la + done, gpa = 0;
		u32 pfec = 0;
		enum gwalk_status st = mmu_translate(v, a, 0, &gpa, &pfec);
		u8 *p;

		chunk = (u32)(PAGE_SIZE - (a & (PAGE_SIZE - 1)));
		chunk = chunk < 16 - done ? chunk : 16 - done;
		if (st == GWALK_FAULT) {
			v->regs.cr2 = a;
			inject_exception(v, 14, true, pfec);
			return false;
		}
		if (st == GWALK_NONCANONICAL) {  /* IA-32e mode from a 32-bit segment */
			inject_gp0(v);
			return false;
		}
		p = st == GWALK_OK ? guest_gpa_ptr(g, gpa, chunk) : NULL;
		if (!p) {
			guest_end(g, 0, "INVPCID descriptor at %#llx: %s guest-physical %#llx outside "
				  "its RAM", (unsigned long long)a, st == GWALK_OK ? "in" :
				  "page-table walk through", (unsigned long long)gpa);
			*action = EXIT_ENDED;
			return false;
		}
		memcpy(out + done, p, chunk);
	}
	return true;
}

/*
 * INVPCID exits when INVLPG exiting is on (SDM Vol. 3C 26.1.3). Operands
 * from the instruction-information field (SDM Table 28-14 layout shared with
 * INVEPT/INVVPID): the type in a register, a 16-byte descriptor in memory.
 * CPL > 0 faults before the exit (SDM 26.1.1).
 */
static enum exit_action shadow_handle_invpcid(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;
	struct guest_shadow *s = shadow_of_guest(g);
	u32 info = vmcs_read32(VMX_INSTRUCTION_INFO);
	static const enum vmcs_field seg_base[] = { GUEST_ES_BASE, GUEST_CS_BASE, GUEST_SS_BASE,
						    GUEST_DS_BASE, GUEST_FS_BASE, GUEST_GS_BASE };
	static const u64 addr_mask[] = { 0xffff, 0xffffffff, ~0ull };
	bool long64 = guest_in_64bit_mode(v);
	u64 *gpr = &v->regs.rax, type = gpr[(info >> 28) & 15], addr = e->qualification;
	unsigned addr_size = (info >> 7) & 7, seg = (info >> 15) & 7;
	u64 desc[2];
	enum exit_action action;

	if (seg > 5 || addr_size > 2) {
		guest_end(g, 0, "unexpected INVPCID exit (hypervisor bug)");
		return EXIT_ENDED;
	}
	if (!(info & BIT(27)))
		addr += gpr[(info >> 23) & 15];
	if (!(info & BIT(22)))
		addr += gpr[(info >> 18) & 15] << (info & 3);
	addr &= addr_mask[addr_size];
	/* 64-bit mode uses only the FS and GS bases; otherwise addresses are 32 bits. */
	if (!long64 || seg >= 4)
		addr += vmcs_read_checked(seg_base[seg], __func__);
	if (!long64) {
		addr &= 0xffffffffull;
		type &= 0xffffffffull;
	}
	if (!read_invpcid_desc(v, addr, seg == 2, desc, &action))
		return action;
	/* #GP(0): bad type, reserved descriptor bits, non-canonical address
	 * for type 0, a PCID other than 0 while CR4.PCIDE=0 (SDM INVPCID). */
	if (type > 3 || (desc[0] >> 12) || (type == 0 && !canonical_address(desc[1])) ||
	    (type <= 1 && (desc[0] & 0xfff) && !(svcpu(v)->ctx.cr4 & CR4_PCIDE))) {
		inject_gp0(v);
		return EXIT_RESUME;
	}
	TIMED(s, (shadow_invpcid(svcpu(v), (int)type, desc[1]), 0));
	skip_instruction(e);
	return EXIT_RESUME;
}

/*
 * Nothing could be reclaimed for this fault (every page pinned, or the pool
 * full with nothing to spare elsewhere). Nothing has changed: let the other
 * guests run and take the fault again; give up only without progress.
 */
static enum exit_action wait_for_shadow_pages(struct vcpu *v)
{
	struct guest *g = v->g;
	struct guest_shadow *s = shadow_of_guest(g);

	if (++s->no_memory_retries < NO_MEMORY_RETRIES)
		return EXIT_YIELD;
	guest_end(g, 0, "no shadow page table could be had after %u tries: it holds %llu frames "
		  "of its limit %llu, the pool %llu of %llu", NO_MEMORY_RETRIES,
		  (unsigned long long)shadow_mmu_frames(&s->mmu),
		  (unsigned long long)shadow_mmu_limit(&s->mmu),
		  (unsigned long long)shadow_pool_frames(&pool),
		  (unsigned long long)pool.limit);
	return EXIT_ENDED;
}

static void shadow_pool_report(void)
{
	if (!pool_ready)
		return;
	log_printf("hv", "stats _pool shadow limit=%llu in_use=%llu pages=%llu l1=%llu l2=%llu "
		   "l3=%llu l4=%llu reclaims=%llu reclaimed=%llu", (unsigned long long)pool.limit,
		   (unsigned long long)shadow_pool_frames(&pool),
		   (unsigned long long)shadow_pool_pages(&pool, 0),
		   (unsigned long long)shadow_pool_pages(&pool, 1),
		   (unsigned long long)shadow_pool_pages(&pool, 2),
		   (unsigned long long)shadow_pool_pages(&pool, 3),
		   (unsigned long long)shadow_pool_pages(&pool, 4),
		   (unsigned long long)pool.reclaims, (unsigned long long)pool.reclaimed);
}

/*
 * A #PF while the guest ran on the shadow tables. Every outcome but "no
 * shadow page" is progress: the run of retries waiting for pages restarts.
 */
static enum exit_action handle_page_fault(struct vcpu *v, struct vmexit *e, u32 pfec,
					  enum shadow_fault_kind *kindp);

static enum exit_action shadow_handle_page_fault(struct vcpu *v, struct vmexit *e, u32 pfec)
{
	struct guest *g = v->g;
	struct guest_shadow *s = shadow_of_guest(g);
	enum shadow_fault_kind kind = SHADOW_NO_MEMORY;
	enum exit_action action = handle_page_fault(v, e, pfec, &kind);

	if (kind == SHADOW_FIXED) {
		s->pf_fixed++;
		s->pf_fixed_ticks += rdtsc() - e->tsc;
	} else if (kind == SHADOW_EMULATE_WRITE) {
		s->pf_emulated++;
		s->pf_emulated_ticks += rdtsc() - e->tsc;
	}
	return action;
}

static enum exit_action handle_page_fault(struct vcpu *v, struct vmexit *e, u32 pfec,
					  enum shadow_fault_kind *kindp)
{
	struct guest *g = v->g;
	struct guest_shadow *s = shadow_of_guest(g);
	struct shadow_fault f;
	bool ac = vmcs_readn(GUEST_RFLAGS) & RFLAGS_AC;
	u64 gva = e->qualification;
	enum shadow_fault_kind kind = TIMED(s, shadow_page_fault(svcpu(v), gva,
					shadow_access_from_pfec(pfec, (int)guest_cpl()), ac, &f));

	*kindp = kind;
	if (kind != SHADOW_NO_MEMORY)
		s->no_memory_retries = 0;
	switch (kind) {
	case SHADOW_FIXED:
		return EXIT_RESUME;
	case SHADOW_INJECT_PF:
		v->regs.cr2 = gva;
		inject_exception(v, 14, true, f.pfec);
		return EXIT_RESUME;
	case SHADOW_INJECT_GP:
		inject_gp0(v);
		return EXIT_RESUME;
	case SHADOW_EMULATE_WRITE:
		/* Event delivery wrote to a guest page table (a stack that is also a
		 * table): it cannot be emulated; stop shadowing the frame and let
		 * the CPU deliver the event again (SDM 27.2.4). */
		if (v->delivering && TIMED(s, shadow_unshadow_gfn(&s->mmu, f.gpa >> PAGE_SHIFT)))
			return EXIT_RESUME;
		/* fall through */
	case SHADOW_EMULATE_ACCESS:
		if (v->delivering)
			return event_delivery_unemulatable(v, e, f.gpa, kind == SHADOW_EMULATE_WRITE ?
							   "a write to its root page table" :
							   "an access the shadow cannot express");
		return emulate_instruction(v, e, f.kind == SHADOW_EMULATE_WRITE ?
					   "write to a guest page table" : "access the shadow "
					   "cannot express");
	case SHADOW_NOT_RAM:
		if (!f.table && devices_mmio_claimed(f.gpa) && !(pfec & PFEC_I))
			return v->delivering ?
			       event_delivery_unemulatable(v, e, f.gpa, "an emulated MMIO access") :
			       emulate_instruction(v, e, "access emulated MMIO");
		guest_end(g, 0, "%s guest-physical %#llx outside its %llu MiB of RAM (address %#llx, "
			  "RIP %#llx)", f.table ? "page-table walk through" : "access to",
			  (unsigned long long)f.gpa, (unsigned long long)(g->mem.size >> 20),
			  (unsigned long long)gva, (unsigned long long)e->guest_rip);
		return EXIT_ENDED;
	case SHADOW_NO_MEMORY:
		return wait_for_shadow_pages(v);
	}
	return EXIT_RESUME;
}

/* ---- page ageing (shadow/age.c: the leaf tables walked since the last scan) ---- */

static void shadow_age_start(struct guest *g, void *buf, u64 pages)
{
	shadow_age_init(&shadow_of_guest(g)->age, buf, pages);
}

static void shadow_age_run(struct guest *g, struct mmu_age_scan *scan)
{
	struct guest_shadow *s = shadow_of_guest(g);
	struct shadow_age_stats st;

	spin_lock(&s->lock);
	shadow_age_scan(&s->mmu, &s->age, &st);	/* flushes through host_flush_tlb */
	spin_unlock(&s->lock);
	scan->flush = false;
	/* Entries read: the leaf sptes, and a parent spte per leaf table. */
	scan->visited = st.sptes_visited + st.tables;
	scan->skipped = st.tables - st.tables_scanned;	/* leaf tables not walked since */
	scan->young = st.pages_young;
	scan->faults = 0;
	scan->count = s->age.count;
}

static void shadow_age_stop(struct guest *g)
{
	(void)g;
}

/* ---- figures -------------------------------------------------------------------- */

static void shadow_stats(struct guest *g, mmu_stat_fn add, void *ctx)
{
	struct guest_shadow *s = shadow_of_guest(g);
	const struct shadow_stats *st = &s->mmu.stats;

	add(ctx, "frames", shadow_mmu_frames(&s->mmu));
	add(ctx, "host_frames", s->pages_allocated);
	add(ctx, "host_frames_peak", s->pages_peak);
	add(ctx, "frames_limit", shadow_mmu_limit(&s->mmu));
	add(ctx, "faults", st->faults);
	add(ctx, "faults_fixed", st->faults_fixed);
	add(ctx, "faults_injected", st->faults_injected);
	add(ctx, "faults_emulate", st->faults_emulate);
	add(ctx, "faults_needed", st->faults_needed);
	add(ctx, "guest_writes", st->guest_writes);
	add(ctx, "sptes_updated", st->sptes_updated);
	add(ctx, "prefetched", st->prefetched);
	add(ctx, "large_mapped", st->large_mapped);
	add(ctx, "large_split", st->large_split);
	add(ctx, "unsynced", st->unsynced);
	add(ctx, "resyncs", st->resyncs);
	add(ctx, "pages_created", st->pages_created);
	add(ctx, "pages_zapped", st->pages_zapped);
	add(ctx, "roots_created", st->roots_created);
	add(ctx, "roots_reused", st->roots_reused);
	add(ctx, "zap_all", st->zap_all);
	add(ctx, "evictions", st->evictions);
	add(ctx, "evict_examined", st->evict_examined);
	add(ctx, "reserve_failures", st->reserve_failures);
	add(ctx, "faults_user", st->faults_user);
	add(ctx, "accessed_flushes", st->accessed_flushes);
	add(ctx, "flood_checks", st->flood_checks);
	add(ctx, "flood_kept", st->flood_kept);
	add(ctx, "flood_deferred", st->flood_deferred);
	add(ctx, "unshadowed_flood", st->unshadowed_flood);
	add(ctx, "unshadowed_pattern", st->unshadowed_pattern);
	add(ctx, "unshadow_false_positive", st->unshadow_false_positive);
	add(ctx, "unshadow_reused", st->unshadow_reused);
	add(ctx, "unshadow_untracked", st->unshadow_untracked);
	add(ctx, "unprotects", s->unprotects);
	add(ctx, "mmu_ticks", s->mmu_tsc);
	add(ctx, "pf_fixed_ticks", s->pf_fixed ? s->pf_fixed_ticks / s->pf_fixed : 0);
	add(ctx, "pf_emulated_ticks", s->pf_emulated ? s->pf_emulated_ticks / s->pf_emulated : 0);
}

static void shadow_summary(struct guest *g)
{
	struct guest_shadow *s = shadow_of_guest(g);
	const struct shadow_stats *st = &s->mmu.stats;

	log_printf("hv", "summary %s: shadow: %llu faults (%llu fixed, %llu injected, %llu "
		   "emulated), %llu guest table writes (%llu sptes updated), pages created %llu "
		   "zapped %llu, roots created %llu reused %llu, %llu host pages now, "
		   "%llu unprotects, %llu ticks in the MMU; %s reclaim: limit %llu, %llu evictions "
		   "(%llu pages examined)",
		   g->cfg.name, (unsigned long long)st->faults, (unsigned long long)st->faults_fixed,
		   (unsigned long long)st->faults_injected, (unsigned long long)st->faults_emulate,
		   (unsigned long long)st->guest_writes, (unsigned long long)st->sptes_updated,
		   (unsigned long long)st->pages_created, (unsigned long long)st->pages_zapped,
		   (unsigned long long)st->roots_created, (unsigned long long)st->roots_reused,
		   (unsigned long long)s->pages_allocated,
		   (unsigned long long)s->unprotects,
		   (unsigned long long)s->mmu_tsc,
		   shadow_reclaim_policy_name((enum shadow_reclaim_policy)g->cfg.reclaim),
		   (unsigned long long)shadow_mmu_limit(&s->mmu),
		   (unsigned long long)st->evictions, (unsigned long long)st->evict_examined);
}

const struct mmu_ops shadow_mmu_ops = {
	.name = "shadow",
	.uses_ept = false,
	.unrestricted = false,
	.init = shadow_guest_init,
	.destroy = shadow_guest_destroy,
	.setup_vmcs = shadow_setup_vmcs,
	.flush_tlb = shadow_flush_tlb,
	.cr0_host_owned = shadow_host_owned,
	.cr4_host_owned = shadow_host_owned,
	.guest_cr3 = shadow_guest_cr3,
	.guest_efer = shadow_guest_efer,
	.set_cr3 = shadow_guest_set_cr3,
	.set_mode = shadow_guest_set_mode,
	.walk_context = shadow_walk_context,
	.translate_cached = shadow_translate,
	.store = shadow_guest_store,
	.unprotect_and_retry = shadow_guest_unprotect_and_retry,
	.unemulatable_note = ", even after dropping its shadows",
	.page_fault = shadow_handle_page_fault,
	.invlpg = shadow_handle_invlpg,
	.invpcid = shadow_handle_invpcid,
	.age_buffer_size = shadow_age_buffer_size,
	.age_init = shadow_age_start,
	.age_scan = shadow_age_run,
	.age_destroy = shadow_age_stop,
	.stats = shadow_stats,
	.summary = shadow_summary,
	.run_report = shadow_pool_report,
	.pages = shadow_guest_pages,
};
