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

static void set_segment(enum vmcs_field sel, enum vmcs_field base, enum vmcs_field limit,
			enum vmcs_field ar, u16 s, u32 lim, u32 a)
{
	vmcs_write_checked(sel, s, __func__);
	vmcs_write_checked(base, 0, __func__);
	vmcs_write_checked(limit, lim, __func__);
	vmcs_write_checked(ar, a, __func__);
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

/*
 * Translations tagged with the vCPU's VPID or EPTP stay in a CPU's TLBs
 * after it left (SDM 29.4.3); flushes made while it ran elsewhere or while
 * it waited (tlb_stale) did not reach them. So a vCPU arriving on a CPU
 * other than the one it last ran on flushes its tags there first.
 */
static void flush_on_arrival(struct vcpu *v)
{
	struct guest *g = v->g;
	int cpu = (int)this_cpu_index();

	if (v->last_cpu == cpu && !v->tlb_stale)
		return;
	g->mmu->flush_tlb(v);
	if (vmx_caps.vpid)
		vmx_invvpid_single(v->vpid);
	v->last_cpu = cpu;
	v->tlb_stale = false;
}

void vcpu_flush_guest_tlb(struct guest *g, bool one_address, u64 gva)
{
	struct vcpu *here = this_cpu()->current_vmcs;

	for (int i = 0; i < g->nr_vcpus; i++) {
		struct vcpu *v = &g->vcpu[i];

		/* Only this CPU's TLB can be flushed from here (INVVPID acts on
		 * the executing processor, SDM 30.3); a vCPU whose tags may be
		 * elsewhere flushes on its next entry. */
		if (v == here || v->last_cpu == (int)this_cpu_index()) {
			if (vmx_caps.vpid)
				vmx_invvpid_address(v->vpid, gva, one_address);
		} else {
			v->tlb_stale = true;
		}
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
		u32 reason;
		int rc;
		struct vmexit e;
		enum exit_action action;

		if (g->state == GUEST_DONE)  /* another vCPU ended it */
			return;
		devices_update(v, now + g->tsc_offset);
		/* One vCPU scans: the scan walks the tables the others run on. */
		hidden = v->index ? 0 : ageing_maybe_scan(v, now + g->tsc_offset);
		if (hidden)  /* the scan is the host's work: the guest's clock does not see it */
			guest_set_tsc_offset(v, g->tsc_offset - hidden);
		event_entry(v);
		timer = min_nonzero(devices_next_event(v), ageing_next_event(g, now + g->tsc_offset));
		deadline = min_nonzero(slice_end, timer ? timer - g->tsc_offset : 0);
		ticks = deadline > now ? (deadline - now) >> vmx_caps.preemption_timer_shift : 0;
		vmcs_write32(VMX_PREEMPTION_TIMER_VALUE, ticks > 0xffffffffull ? 0xffffffffu : ticks);

		t_enter = rdtsc();
		rc = vmx_enter(&v->regs, v->launched);
		t_exit = rdtsc();
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
		if (action == EXIT_YIELD || now >= slice_end) {
			/* Its clock stops while it waits, unless another vCPU runs. */
			if (v->state == VCPU_RUNNABLE &&
			    __atomic_load_n(&g->vcpus_running, __ATOMIC_ACQUIRE) == 1)
				g->waiting_since = now;
			return;
		}
	}
}
