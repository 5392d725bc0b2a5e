/*
 * A guest's vCPUs: building each one's VMCS (SDM Vol. 3C ch. 25, checks in
 * ch. 27) and running it for a time slice. The VMX-preemption timer
 * (SDM 26.5.1) bounds each entry by the earliest of: the end of the slice
 * and the guest's next timer event; its time limit is checked after each
 * exit (vmx/watchdog.c).
 */
#include <string.h>
#include "vmx/vcpu.h"
#include "vmx/ageing.h"
#include "vmx/cr.h"
#include "vmx/entry.h"
#include "vmx/entry_check.h"
#include "vmx/event.h"
#include "vmx/exit.h"
#include "vmx/mmu.h"
#include "vmx/tsc.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "vmx/watchdog.h"
#include "devices/devices.h"
#include "devices/lapic.h"
#include "mm/mm.h"
#include "arch/x86/cpu.h"
#include "arch/x86/gdt.h"
#include "arch/x86/percpu.h"
#include "arch/x86/log.h"
#include "lib/config.h"

#define AR_UNUSABLE BIT(16)
#define AR_CODE32 0xc09b   /* G, D, P, S, execute/read, accessed */
#define AR_CODE64 0xa09b   /* G, L, P, S, execute/read, accessed */
#define AR_DATA 0xc093     /* G, D/B, P, S, read/write, accessed */
#define AR_TSS32_BUSY 0x008b
#define AR_REAL_CODE 0x009b  /* P, S, execute/read, accessed; 16-bit */
#define AR_REAL_DATA 0x0093  /* P, S, read/write, accessed; 16-bit */
#define CR0_RESET 0x60000010ull  /* CD, NW, ET (SDM Vol. 3A Table 9-1) */
#define DEFAULT_PAT 0x0007040600070406ull

/* What differs between CPUs: the GS base (per-CPU data), TR and GDTR. */
static void setup_host_cpu_state(struct vcpu *v)
{
	vmcs_writen(HOST_GS_BASE, (u64)this_cpu());
	vmcs_writen(HOST_TR_BASE, tss_base());
	vmcs_writen(HOST_GDTR_BASE, gdt_base());
	v->host_cpu = (int)this_cpu_index();
}

static void setup_host_state(struct vcpu *v)
{
	struct descriptor_ptr idtr;

	sidt(&idtr);
	vmcs_writen(HOST_CR0, read_cr0());
	vmcs_writen(HOST_CR3, read_cr3());
	vmcs_writen(HOST_CR4, read_cr4());
	vmcs_write16(HOST_CS_SELECTOR, SEL_CODE64);
	vmcs_write16(HOST_SS_SELECTOR, SEL_DATA);
	vmcs_write16(HOST_DS_SELECTOR, SEL_DATA);
	vmcs_write16(HOST_ES_SELECTOR, SEL_DATA);
	vmcs_write16(HOST_FS_SELECTOR, 0);
	vmcs_write16(HOST_GS_SELECTOR, 0);
	vmcs_write16(HOST_TR_SELECTOR, SEL_TSS);
	vmcs_writen(HOST_FS_BASE, 0);
	vmcs_writen(HOST_IDTR_BASE, idtr.base);
	setup_host_cpu_state(v);
	vmcs_write32(HOST_IA32_SYSENTER_CS, 0);
	vmcs_writen(HOST_IA32_SYSENTER_ESP, 0);
	vmcs_writen(HOST_IA32_SYSENTER_EIP, 0);
	vmcs_write64(HOST_IA32_EFER, rdmsr(MSR_EFER));
	if (vmx_caps.base.exit & EXIT_LOAD_IA32_PAT)
		vmcs_write64(HOST_IA32_PAT, rdmsr(MSR_IA32_PAT));
	vmcs_writen(HOST_RIP, (u64)vmx_exit_entry);
}

static void setup_controls(struct vcpu *v)
{
	struct guest *g = v->g;
	const struct vmx_controls *c = &vmx_caps.base;
	u32 cpu = c->cpu | CPU_USE_TSC_OFFSETTING;
	u32 sec = c->secondary;
	u32 exception_bitmap = 0;

	g->mmu->setup_vmcs(v, &cpu, &sec, &exception_bitmap);
	vmcs_write32(PIN_BASED_VM_EXEC_CONTROL, c->pin);
	vmcs_write32(CPU_BASED_VM_EXEC_CONTROL, cpu);
	vmcs_write32(SECONDARY_VM_EXEC_CONTROL, sec);
	vmcs_write32(VM_EXIT_CONTROLS, c->exit);
	vmcs_write32(VM_ENTRY_CONTROLS, c->entry);
	vmcs_write32(EXCEPTION_BITMAP, exception_bitmap);
	vmcs_write32(PAGE_FAULT_ERROR_CODE_MASK, 0);
	vmcs_write32(PAGE_FAULT_ERROR_CODE_MATCH, 0);
	vmcs_write32(CR3_TARGET_COUNT, 0);
	vmcs_write32(VM_EXIT_MSR_STORE_COUNT, 0);
	vmcs_write32(VM_EXIT_MSR_LOAD_COUNT, 0);
	vmcs_write32(VM_ENTRY_MSR_LOAD_COUNT, 0);
	vmcs_write32(VM_ENTRY_INTR_INFO, 0);
	vmcs_write64(TSC_OFFSET, g->tsc_offset);
	if (vmx_caps.vpid)
		vmcs_write16(VPID, v->vpid);
	vmcs_writen(CR0_GUEST_HOST_MASK, g->mmu->cr0_host_owned());
	vmcs_writen(CR4_GUEST_HOST_MASK, g->mmu->cr4_host_owned());
	vmcs_write64(VMCS_LINK_POINTER, ~0ull);
}

static void set_segment_at(enum vmcs_field sel, enum vmcs_field base, enum vmcs_field limit,
			   enum vmcs_field ar, u16 s, u64 b, u32 lim, u32 a)
{
	vmcs_write_checked(sel, s, __func__);
	vmcs_write_checked(base, b, __func__);
	vmcs_write_checked(limit, lim, __func__);
	vmcs_write_checked(ar, a, __func__);
}

static void set_segment(enum vmcs_field sel, enum vmcs_field base, enum vmcs_field limit,
			enum vmcs_field ar, u16 s, u32 lim, u32 a)
{
	set_segment_at(sel, base, limit, ar, s, 0, lim, a);
}

static bool setup_guest_state(struct vcpu *v, const struct guest_boot_state *s)
{
	struct guest *g = v->g;
	u64 cr0 = CR0_PE | CR0_ET | (s->long_mode ? CR0_PG | CR0_WP : 0);
	u64 cr4 = s->long_mode ? CR4_PAE : 0;
	u64 efer = s->long_mode ? EFER_LME | EFER_LMA : 0;
	u16 cs = s->cs ? s->cs : 0x08, ds = s->ds ? s->ds : 0x10;
	bool gp = false;

	/* CR3 first: a shadow guest's mode switch builds the root from it. */
	if (!g->mmu->set_cr3(v, s->cr3, &gp))
		return false;
	if (gp || !guest_set_control_regs(v, cr0, cr4, efer, &gp) || gp)
		return false;
	vmcs_write64(GUEST_IA32_PAT, DEFAULT_PAT);
	vmcs_write64(GUEST_IA32_DEBUGCTL, 0);
	vmcs_writen(GUEST_DR7, 0x400);

	set_segment(GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES, cs,
		    0xffffffff, s->long_mode ? AR_CODE64 : AR_CODE32);
	set_segment(GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR_BYTES, ds,
		    0xffffffff, AR_DATA);
	set_segment(GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR_BYTES, ds,
		    0xffffffff, AR_DATA);
	set_segment(GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR_BYTES, ds,
		    0xffffffff, AR_DATA);
	set_segment(GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR_BYTES, ds,
		    0xffffffff, AR_DATA);
	set_segment(GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR_BYTES, ds,
		    0xffffffff, AR_DATA);
	set_segment(GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR_BYTES,
		    0, 0, AR_UNUSABLE);
	set_segment(GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR_BYTES, 0,
		    0x67, AR_TSS32_BUSY);
	vmcs_writen(GUEST_GDTR_BASE, s->gdt_base);
	vmcs_write32(GUEST_GDTR_LIMIT, s->gdt_limit);
	vmcs_writen(GUEST_IDTR_BASE, 0);
	vmcs_write32(GUEST_IDTR_LIMIT, 0x3ff);

	vmcs_writen(GUEST_RIP, s->rip);
	vmcs_writen(GUEST_RSP, 0);
	vmcs_writen(GUEST_RFLAGS, RFLAGS_FIXED);
	vmcs_write32(GUEST_INTERRUPTIBILITY_INFO, 0);
	vmcs_write32(GUEST_ACTIVITY_STATE, 0);
	vmcs_writen(GUEST_PENDING_DBG_EXCEPTIONS, 0);
	vmcs_write32(GUEST_SYSENTER_CS, 0);
	vmcs_writen(GUEST_SYSENTER_ESP, 0);
	vmcs_writen(GUEST_SYSENTER_EIP, 0);

	memset(&v->regs, 0, sizeof(v->regs));
	v->regs.rax = s->rax;
	v->regs.rbx = s->rbx;
	v->regs.rsi = s->rsi;
	v->regs.rdi = s->rdi;
	return true;
}

/*
 * An AP's start-up IPI (SDM Vol. 3A 9.4.4.1, state after INIT as Table 9-1):
 * real mode at CS = vector << 8, IP 0, every other segment at 0 with a 64 KiB
 * limit, paging and protection off, interrupts off. Under shadow paging
 * real mode ends the guest (the MMU side says why). false: it was ended.
 */
static bool start_at_sipi(struct vcpu *v, u8 vector)
{
	struct guest *g = v->g;
	static const enum vmcs_field data[][4] = {
		{ GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR_BYTES },
		{ GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR_BYTES },
		{ GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR_BYTES },
		{ GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR_BYTES },
		{ GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR_BYTES },
	};
	bool gp = false;

	/* Real mode needs unrestricted guest, which needs EPT (SDM 26.2.1.1). */
	if (!g->mmu->unrestricted) {
		guest_end(g, 0, "vCPU %d got its start-up IPI (vector %#x): it would start in real "
			  "mode, which is not supported under %s", v->index, vector, g->mmu->name);
		return false;
	}
	if (!g->mmu->set_cr3(v, 0, &gp) || !guest_set_control_regs(v, CR0_RESET, 0, 0, &gp))
		return false;
	if (gp) {
		guest_end(g, 0, "vCPU %d: no real-mode state to start it in", v->index);
		return false;
	}
	set_segment_at(GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES,
		       (u16)(vector << 8), (u64)vector << 12, 0xffff, AR_REAL_CODE);
	for (size_t i = 0; i < ARRAY_SIZE(data); i++)
		set_segment(data[i][0], data[i][1], data[i][2], data[i][3], 0, 0xffff, AR_REAL_DATA);
	set_segment(GUEST_LDTR_SELECTOR, GUEST_LDTR_BASE, GUEST_LDTR_LIMIT, GUEST_LDTR_AR_BYTES,
		    0, 0xffff, 0x0082);
	set_segment(GUEST_TR_SELECTOR, GUEST_TR_BASE, GUEST_TR_LIMIT, GUEST_TR_AR_BYTES, 0,
		    0xffff, AR_TSS32_BUSY);
	vmcs_writen(GUEST_GDTR_BASE, 0);
	vmcs_write32(GUEST_GDTR_LIMIT, 0xffff);
	vmcs_writen(GUEST_IDTR_BASE, 0);
	vmcs_write32(GUEST_IDTR_LIMIT, 0xffff);
	vmcs_writen(GUEST_RIP, 0);
	vmcs_writen(GUEST_RFLAGS, RFLAGS_FIXED);
	vmcs_writen(GUEST_DR7, 0x400);
	vmcs_write64(GUEST_IA32_DEBUGCTL, 0);
	vmcs_write32(GUEST_INTERRUPTIBILITY_INFO, 0);
	vmcs_write32(GUEST_ACTIVITY_STATE, 0);
	vmcs_writen(GUEST_PENDING_DBG_EXCEPTIONS, 0);
	vmcs_write32(VM_ENTRY_INTR_INFO, 0);
	memset(&v->regs, 0, sizeof(v->regs));
	v->event.valid = false;
	v->delivering = false;
	return true;
}

/*
 * INIT and SIPI sent to v through the APIC model (SDM 9.4.4, 11.6.1). An
 * INIT puts an AP back to waiting for a SIPI; the bootstrap processor would
 * start over at the reset vector, firmware umbra does not have, so the
 * guest ends. A waiting AP starts at its SIPI. false: v must not run now.
 */
static bool take_init_sipi(struct vcpu *v)
{
	int vector;

	if (lapic_take_init(v)) {
		if (v->index == 0) {
			guest_end(v->g, 0, "INIT IPI to the bootstrap processor (vCPU 0) at RIP %#llx: "
				  "a reset, and umbra has no firmware to restart it in",
				  (unsigned long long)vmcs_readn(GUEST_RIP));
			return false;
		}
		v->state = VCPU_WAIT_SIPI;
		v->event.valid = false;
		v->delivering = false;
	}
	if (v->state != VCPU_WAIT_SIPI)
		return true;
	vector = lapic_take_sipi(v);
	if (vector < 0 || !start_at_sipi(v, (u8)vector))
		return false;
	v->state = VCPU_RUNNABLE;
	return true;
}

/* Each CPU has its own current VMCS (SDM 25.1). */
static void make_current(struct vcpu *v)
{
	struct cpu_local *c = this_cpu();

	if (c->current_vmcs == v)
		return;
	vmx_vmptrld((u64)v->vmcs, __func__);
	c->current_vmcs = v;
	if (v->host_cpu != (int)c->index)
		setup_host_cpu_state(v);
}

bool vcpu_create(struct vcpu *v, const struct guest_boot_state *s)
{
	struct guest *g = v->g;

	v->vmcs = alloc_zeroed_pages(1);
	if (!v->vmcs)
		return false;
	memcpy(v->vmcs, &vmx_caps.revision_id, 4);
	vmx_vmclear((u64)v->vmcs, __func__);
	this_cpu()->current_vmcs = NULL;
	make_current(v);
	setup_controls(v);
	setup_host_state(v);
	v->last_cpu = (int)this_cpu_index();
	if (!setup_guest_state(v, s))
		return false;
	/* Nothing cached for this EPT or VPID may survive from earlier users of
	 * the same frames or tag (SDM 29.4.3). */
	g->mmu->flush_tlb(v);
	if (vmx_caps.vpid)
		vmx_invvpid_single(v->vpid);
	if (g->cfg.selftest)
		vmcs_write32(GUEST_TR_AR_BYTES, AR_UNUSABLE);  /* TR may never be unusable */
	return true;
}

/*
 * The guest leaves this CPU for good (another CPU may run it next):
 * VMCLEAR writes its VMCS back to memory and makes it launchable again, as
 * SDM 25.11.1 requires before another CPU loads it.
 */
void vcpu_put(struct vcpu *v)
{
	vmx_vmclear((u64)v->vmcs, __func__);
	if (this_cpu()->current_vmcs == v)
		this_cpu()->current_vmcs = NULL;
	v->launched = false;
}

/* Flush v's tags on this CPU: its VPID (linear and combined mappings) and,
 * for EPT, its EPTP (guest-physical mappings). */
static void flush_here(struct vcpu *v)
{
	v->g->mmu->flush_tlb(v);
	if (vmx_caps.vpid)
		vmx_invvpid_single(v->vpid);
}

/*
 * Translations tagged with the vCPU's VPID or EPTP stay in a CPU's TLBs
 * after it left (SDM 29.4.3); flushes made while it ran elsewhere (its
 * requests, vcpu_flush_guest_tlb) did not reach them. So a vCPU arriving on
 * a CPU other than the one it last ran on flushes its tags there first.
 */
static void flush_on_arrival(struct vcpu *v)
{
	int cpu = (int)this_cpu_index();

	if (v->last_cpu == cpu)
		return;
	flush_here(v);
	v->last_cpu = cpu;
}

/* The vCPU of g whose VMCS is current on this CPU (the one whose exit is
 * being handled here), or NULL. */
static struct vcpu *local_vcpu(struct guest *g)
{
	struct vcpu *v = this_cpu()->current_vmcs;

	return v && v->g == g ? v : NULL;
}

void vcpu_flush_local_tlb(struct guest *g, bool one_address, u64 gva)
{
	struct vcpu *v = local_vcpu(g);

	if (!v) {  /* not from one of its exits: it must reach every vCPU */
		vcpu_flush_guest_tlb(g);
		return;
	}
	if (vmx_caps.vpid)
		vmx_invvpid_address(v->vpid, gva, one_address);
}

/*
 * Every vCPU of g flushes its tags before its next VM entry, and none still
 * runs with translations from before the call when it returns: INVVPID and
 * INVEPT act only on the CPU that executes them (SDM 30.3), so each vCPU
 * gets a request, and one in VMX non-root operation on another CPU a kick
 * (a host IPI: an external-interrupt exit), which the caller waits for. As
 * KVM's kvm_flush_remote_tlbs. No deadlock: a kicked vCPU leaves guest mode
 * in hardware and says so before it takes any lock the caller may hold.
 */
void vcpu_flush_guest_tlb(struct guest *g)
{
	struct vcpu *here = local_vcpu(g);
	u32 seen[GUEST_MAX_VCPUS];

	for (int i = 0; i < g->nr_vcpus; i++)
		__atomic_or_fetch(&g->vcpu[i].requests, VCPU_REQ_TLB_FLUSH, __ATOMIC_SEQ_CST);
	for (int i = 0; i < g->nr_vcpus; i++) {
		struct vcpu *w = &g->vcpu[i];

		seen[i] = __atomic_load_n(&w->entries, __ATOMIC_ACQUIRE);
		if (w != here && __atomic_load_n(&w->mode, __ATOMIC_SEQ_CST) == VCPU_IN_GUEST &&
		    g->kick)
			g->kick(w);
	}
	for (int i = 0; i < g->nr_vcpus; i++) {
		struct vcpu *w = &g->vcpu[i];

		while (w != here && __atomic_load_n(&w->mode, __ATOMIC_ACQUIRE) == VCPU_IN_GUEST &&
		       __atomic_load_n(&w->entries, __ATOMIC_ACQUIRE) == seen[i])
			pause();
	}
	if (g->nr_vcpus > 1)
		guest_stat_add(&g->remote_flushes, 1);
}

/*
 * Just before VM entry (interrupts are off in the host throughout): say the
 * vCPU is in guest mode, then look for requests; one set before the store is
 * seen here, one set after it finds the vCPU in guest mode and kicks it.
 */
static void enter_guest_mode(struct vcpu *v)
{
	for (;;) {
		__atomic_store_n(&v->mode, VCPU_IN_GUEST, __ATOMIC_SEQ_CST);
		if (!__atomic_load_n(&v->requests, __ATOMIC_SEQ_CST))
			return;
		__atomic_store_n(&v->mode, VCPU_OUTSIDE_GUEST, __ATOMIC_SEQ_CST);
		if (__atomic_exchange_n(&v->requests, 0, __ATOMIC_ACQ_REL) & VCPU_REQ_TLB_FLUSH)
			flush_here(v);
	}
}

void vcpu_destroy(struct vcpu *v)
{
	if (!v->vmcs)
		return;
	vmx_vmclear((u64)v->vmcs, __func__);
	if (this_cpu()->current_vmcs == v)
		this_cpu()->current_vmcs = NULL;
	free_pages(v->vmcs, 1);
	v->vmcs = NULL;
}

/* ---- entry failures ---------------------------------------------------- */

static void report_entry_failure(struct vcpu *v, int vmfail, u32 reason)
{
	struct guest *g = v->g;
	const char *insn = v->launched ? "VMRESUME" : "VMLAUNCH";

	if (vmfail) {
		u32 err = vmfail == 2 ? vmcs_read32(VM_INSTRUCTION_ERROR) : 0;

		log_printf("hv", "%s: %s failed: %s, VM-instruction error %u (%s)", g->cfg.name, insn,
			   vmfail == 2 ? "VMfailValid" : "VMfailInvalid", err,
			   err == 7 ? "invalid control fields" : err == 8 ? "invalid host state" :
			   "see SDM 31.4");
	} else {
		log_printf("hv", "%s: %s failed: exit reason %u (%s), qualification %#llx", g->cfg.name,
			   insn, reason & 0xffff, vmx_exit_reason_name(reason & 0xffff),
			   (unsigned long long)vmcs_readn(EXIT_QUALIFICATION));
	}
	console_printf("  controls: pin %#x cpu %#x sec %#x entry %#x exit %#x\n",
		       vmcs_read32(PIN_BASED_VM_EXEC_CONTROL),
		       vmcs_read32(CPU_BASED_VM_EXEC_CONTROL),
		       vmcs_read32(SECONDARY_VM_EXEC_CONTROL), vmcs_read32(VM_ENTRY_CONTROLS),
		       vmcs_read32(VM_EXIT_CONTROLS));
	console_printf("  guest: CR0 %#llx CR3 %#llx CR4 %#llx EFER %#llx RIP %#llx RFLAGS %#llx\n",
		       (unsigned long long)vmcs_readn(GUEST_CR0),
		       (unsigned long long)vmcs_readn(GUEST_CR3),
		       (unsigned long long)vmcs_readn(GUEST_CR4),
		       (unsigned long long)vmcs_read64(GUEST_IA32_EFER),
		       (unsigned long long)vmcs_readn(GUEST_RIP),
		       (unsigned long long)vmcs_readn(GUEST_RFLAGS));
	console_printf("  guest: CS AR %#x SS AR %#x TR AR %#x activity %u interruptibility %#x "
		       "entry event %#x\n",
		       vmcs_read32(GUEST_CS_AR_BYTES), vmcs_read32(GUEST_SS_AR_BYTES),
		       vmcs_read32(GUEST_TR_AR_BYTES), vmcs_read32(GUEST_ACTIVITY_STATE),
		       vmcs_read32(GUEST_INTERRUPTIBILITY_INFO), vmcs_read32(VM_ENTRY_INTR_INFO));
	if (!vmfail && (reason & 0xffff) == EXIT_REASON_ENTRY_FAIL_GUEST)
		vmx_check_guest_state();
	if (machine_platform() == PLATFORM_BOCHS)
		console_printf("  (Bochs' own log also names the failing check: 'VMENTER FAIL')\n");
}

/* ---- the run loop --------------------------------------------------------- */

/*
 * A guest that turns paging on or off without an exit changes EFER.LMA in
 * hardware; the "IA-32e mode guest" entry control must follow it (SDM
 * 27.3.1.1 checks they match when EFER is loaded on entry).
 */
static void sync_long_mode(void)
{
	bool lma = vmcs_read64(GUEST_IA32_EFER) & EFER_LMA;
	u32 entry = vmcs_read32(VM_ENTRY_CONTROLS);

	if (lma != !!(entry & ENTRY_IA32E_MODE_GUEST))
		vmcs_write32(VM_ENTRY_CONTROLS, entry ^ ENTRY_IA32E_MODE_GUEST);
}

static u64 min_nonzero(u64 a, u64 b)
{
	return !a ? b : !b ? a : a < b ? a : b;
}

void vcpu_run_slice(struct vcpu *v, u64 slice_tsc)
{
	struct guest *g = v->g;
	u64 accounted = rdtsc(), slice_end = accounted + slice_tsc;

	u64 waited;

	make_current(v);
	flush_on_arrival(v);
	if ((v->state == VCPU_WAIT_SIPI || lapic_start_pending(v)) && !take_init_sipi(v))
		return;
	/* Time spent waiting for the CPU (no vCPU of the guest had one) is hidden
	 * from the guest's clock; the first vCPU to run takes it off. */
	waited = __atomic_exchange_n(&g->waiting_since, 0, __ATOMIC_ACQ_REL);
	if (waited)
		g->tsc_offset -= rdtsc() - waited;
	vmcs_write64(TSC_OFFSET, g->tsc_offset);
	if (!g->entered) {
		g->guest_tsc_start = guest_tsc(g);
		g->entered = true;  /* a failed first entry ends the guest */
	}
	vmcs_writen(GUEST_RSP, v->regs.rsp);
	for (;;) {
		u64 now = rdtsc(), deadline, timer, ticks, t_enter, t_exit, hidden;
		bool flush = false;
		u32 reason;
		int rc;
		struct vmexit e;
		enum exit_action action;

		if (g->state == GUEST_DONE)  /* another vCPU ended it */
			return;
		if (lapic_start_pending(v) && !take_init_sipi(v))
			return;
		devices_update(v, now + g->tsc_offset);
		/* One vCPU scans: the scan walks the tables the others run on. */
		hidden = v->index ? 0 : ageing_maybe_scan(v, now + g->tsc_offset, &flush);
		if (flush)  /* A bits cleared: on every CPU that runs the guest */
			vcpu_flush_guest_tlb(g);
		if (hidden)  /* the scan is the host's work: the guest's clock does not see it */
			guest_set_tsc_offset(v, g->tsc_offset - hidden);
		event_entry(v);
		timer = min_nonzero(devices_next_event(v), ageing_next_event(g, now + g->tsc_offset));
		deadline = min_nonzero(slice_end, timer ? timer - g->tsc_offset : 0);
		ticks = deadline > now ? (deadline - now) >> vmx_caps.preemption_timer_shift : 0;
		vmcs_write32(VMX_PREEMPTION_TIMER_VALUE, ticks > 0xffffffffull ? 0xffffffffu : ticks);

		enter_guest_mode(v);
		t_enter = rdtsc();
		rc = vmx_enter(&v->regs, v->launched);
		t_exit = rdtsc();
		__atomic_add_fetch(&v->entries, 1, __ATOMIC_RELEASE);
		__atomic_store_n(&v->mode, VCPU_OUTSIDE_GUEST, __ATOMIC_RELEASE);
		guest_stat_add(&g->run_tsc, t_exit - t_enter);
		if (rc) {
			report_entry_failure(v, rc, 0);
			guest_end(g, 0, "VM entry failed (VMfail)");
			return;
		}
		reason = vmcs_read32(VM_EXIT_REASON);
		if (reason & EXIT_REASON_FAILED_ENTRY) {
			report_entry_failure(v, 0, reason);
			guest_end(g, 0, "VM entry failed: %s", vmx_exit_reason_name(reason & 0xffff));
			return;
		}
		v->launched = true;
		v->regs.rsp = vmcs_readn(GUEST_RSP);
		sync_long_mode();
		e = (struct vmexit){
			.reason = reason & 0xffff,
			.qualification = vmcs_readn(EXIT_QUALIFICATION),
			.instruction_len = vmcs_read32(VM_EXIT_INSTRUCTION_LEN),
			.guest_rip = vmcs_readn(GUEST_RIP),
			.tsc = t_exit,
		};
		event_exit(v, &e);
		vmx_record_exit(v, &e);
		if (hv_config.log_level == LOG_DEBUG)
			log_printf(g->cfg.name, "exit %u (%s) qual %#llx rip %#llx", e.reason,
				   vmx_exit_reason_name(e.reason), (unsigned long long)e.qualification,
				   (unsigned long long)e.guest_rip);
		action = vmx_handle_exit(v, &e);
		now = rdtsc();
		if (e.reason < EXIT_REASON_COUNT)
			guest_stat_add(&g->exit_tsc[e.reason], now - t_exit);
		/* Everything since the last look was spent on this guest. */
		watchdog_account(g, now - accounted);
		accounted = now;
		if (action == EXIT_ENDED || g->state == GUEST_DONE || watchdog_expired(v))
			return;
		vmcs_writen(GUEST_RSP, v->regs.rsp);
		if (v->yield_soon) {
			v->yield_soon = false;
			action = EXIT_YIELD;
		}
		if (action == EXIT_YIELD || now >= slice_end) {
			/* Its clock stops while it waits, unless another vCPU runs. */
			if (v->state == VCPU_RUNNABLE &&
			    __atomic_load_n(&g->vcpus_running, __ATOMIC_ACQUIRE) == 1)
				g->waiting_since = now;
			return;
		}
	}
}
