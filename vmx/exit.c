/*
 * The exit table: basic exit reason -> handler, plus the handlers too small
 * to deserve a file (triple fault, INIT, VMX instructions, cache
 * instructions, exceptions). Unknown reasons end the guest, not the machine.
 */
#include "vmx/exit.h"
#include "vmx/realmode.h"
#include "vmx/vm86.h"
#include "vmx/cpuid.h"
#include "vmx/cr.h"
#include "vmx/emulate.h"
#include "vmx/event.h"
#include "vmx/hypercall.h"
#include "vmx/io.h"
#include "vmx/mmu.h"
#include "vmx/msr.h"
#include "vmx/vmcs.h"
#include "arch/x86/log.h"

static enum exit_action handle_preemption_timer(struct vcpu *v, struct vmexit *e)
{
	(void)v, (void)e;
	return EXIT_RESUME;  /* the run loop decides whether the slice is over */
}

static enum exit_action handle_triple_fault(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;

	guest_end(g, 0, "triple fault at RIP %#llx", (unsigned long long)e->guest_rip);
	return EXIT_ENDED;
}

static enum exit_action handle_init(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;

	(void)e;
	guest_end(g, 0, "INIT signal (the guest reset itself)");
	return EXIT_ENDED;
}

/* VMX is hidden from guests: its instructions raise #UD (SDM 31.3 semantics
 * when CR4.VMXE reads 0). */
static enum exit_action handle_vmx_instruction(struct vcpu *v, struct vmexit *e)
{
	(void)e;
	inject_ud(v);
	return EXIT_RESUME;
}

static enum exit_action handle_cache_instruction(struct vcpu *v, struct vmexit *e)
{
	(void)v;
	skip_instruction(e);  /* INVD/WBINVD: guest memory is coherent already */
	return EXIT_RESUME;
}

static enum exit_action handle_exception_nmi(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;
	u32 info = vmcs_read32(VM_EXIT_INTR_INFO);
	u32 type = (info >> 8) & 7, vector = info & 0xff;

	if (type == 2) {  /* NMI: the host's (we do not virtualise NMIs yet) */
		pr_warn("NMI while running guest %s; ignored", g->cfg.name);
		return EXIT_RESUME;
	}
	if (vector == 14)
		return mmu_handle_page_fault(v, e, vmcs_read32(VM_EXIT_INTR_ERROR_CODE));
	if (realmode_vm86(v))
		return realmode_exception(v, e, vector, vmcs_read32(VM_EXIT_INTR_ERROR_CODE));
	guest_end(g, 0, "unexpected exception %u exit at RIP %#llx", vector,
		  (unsigned long long)e->guest_rip);
	return EXIT_ENDED;
}

static enum exit_action handle_unsupported(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;

	guest_end(g, 0, "unsupported VM exit %u (%s) at RIP %#llx", e->reason,
		  vmx_exit_reason_name(e->reason), (unsigned long long)e->guest_rip);
	return EXIT_ENDED;
}

static const struct {
	const char *name;
	exit_handler handler;
} exit_table[EXIT_REASON_COUNT] = {
	[EXIT_REASON_EXCEPTION_NMI] = { "exception or NMI", handle_exception_nmi },
	[EXIT_REASON_EXTERNAL_INTERRUPT] = { "external interrupt", handle_external_interrupt },
	[EXIT_REASON_TRIPLE_FAULT] = { "triple fault", handle_triple_fault },
	[EXIT_REASON_INIT] = { "INIT", handle_init },
	[EXIT_REASON_SIPI] = { "SIPI", NULL },
	[EXIT_REASON_INTERRUPT_WINDOW] = { "interrupt window", handle_interrupt_window },
	[EXIT_REASON_NMI_WINDOW] = { "NMI window", handle_interrupt_window },
	[EXIT_REASON_TASK_SWITCH] = { "task switch", handle_task_switch },
	[EXIT_REASON_CPUID] = { "CPUID", handle_cpuid },
	[EXIT_REASON_GETSEC] = { "GETSEC", handle_vmx_instruction },
	[EXIT_REASON_HLT] = { "HLT", handle_hlt },
	[EXIT_REASON_INVD] = { "INVD", handle_cache_instruction },
	[EXIT_REASON_INVLPG] = { "INVLPG", mmu_handle_invlpg },
	[EXIT_REASON_RDPMC] = { "RDPMC", handle_rdpmc },
	[EXIT_REASON_RDTSC] = { "RDTSC", NULL },
	[EXIT_REASON_VMCALL] = { "VMCALL", handle_vmcall },
	[EXIT_REASON_VMCLEAR] = { "VMCLEAR", handle_vmx_instruction },
	[EXIT_REASON_VMLAUNCH] = { "VMLAUNCH", handle_vmx_instruction },
	[EXIT_REASON_VMPTRLD] = { "VMPTRLD", handle_vmx_instruction },
	[EXIT_REASON_VMPTRST] = { "VMPTRST", handle_vmx_instruction },
	[EXIT_REASON_VMREAD] = { "VMREAD", handle_vmx_instruction },
	[EXIT_REASON_VMRESUME] = { "VMRESUME", handle_vmx_instruction },
	[EXIT_REASON_VMWRITE] = { "VMWRITE", handle_vmx_instruction },
	[EXIT_REASON_VMXOFF] = { "VMXOFF", handle_vmx_instruction },
	[EXIT_REASON_VMXON] = { "VMXON", handle_vmx_instruction },
	[EXIT_REASON_CR_ACCESS] = { "CR access", handle_cr_access },
	[EXIT_REASON_DR_ACCESS] = { "DR access", NULL },
	[EXIT_REASON_IO] = { "I/O instruction", handle_io },
	[EXIT_REASON_RDMSR] = { "RDMSR", handle_rdmsr },
	[EXIT_REASON_WRMSR] = { "WRMSR", handle_wrmsr },
	[EXIT_REASON_ENTRY_FAIL_GUEST] = { "VM-entry failure: guest state", NULL },
	[EXIT_REASON_ENTRY_FAIL_MSR] = { "VM-entry failure: MSR loading", NULL },
	[EXIT_REASON_MWAIT] = { "MWAIT", handle_vmx_instruction },
	[EXIT_REASON_MTF] = { "monitor trap flag", NULL },
	[EXIT_REASON_MONITOR] = { "MONITOR", handle_vmx_instruction },
	[EXIT_REASON_PAUSE] = { "PAUSE", NULL },
	[EXIT_REASON_ENTRY_FAIL_MC] = { "VM-entry failure: machine check", NULL },
	[EXIT_REASON_TPR_BELOW] = { "TPR below threshold", NULL },
	[EXIT_REASON_APIC_ACCESS] = { "APIC access", NULL },
	[EXIT_REASON_GDTR_IDTR] = { "GDTR/IDTR access", NULL },
	[EXIT_REASON_LDTR_TR] = { "LDTR/TR access", NULL },
	[EXIT_REASON_EPT_VIOLATION] = { "EPT violation", mmu_handle_ept_violation },
	[EXIT_REASON_EPT_MISCONFIG] = { "EPT misconfiguration", mmu_handle_ept_misconfig },
	[EXIT_REASON_INVEPT] = { "INVEPT", handle_vmx_instruction },
	[EXIT_REASON_RDTSCP] = { "RDTSCP", NULL },
	[EXIT_REASON_PREEMPTION_TIMER] = { "preemption timer", handle_preemption_timer },
	[EXIT_REASON_INVVPID] = { "INVVPID", handle_vmx_instruction },
	[EXIT_REASON_WBINVD] = { "WBINVD", handle_cache_instruction },
	[EXIT_REASON_XSETBV] = { "XSETBV", handle_xsetbv },
	[EXIT_REASON_RDRAND] = { "RDRAND", NULL },
	[EXIT_REASON_INVPCID] = { "INVPCID", mmu_handle_invpcid },
	[EXIT_REASON_VMFUNC] = { "VMFUNC", handle_vmx_instruction },
	[EXIT_REASON_RDSEED] = { "RDSEED", NULL },
	[EXIT_REASON_XSAVES] = { "XSAVES", NULL },
	[EXIT_REASON_XRSTORS] = { "XRSTORS", NULL },
};

const char *vmx_exit_reason_name(u32 reason)
{
	if (reason < EXIT_REASON_COUNT && exit_table[reason].name)
		return exit_table[reason].name;
	return "unknown";
}

enum exit_action vmx_handle_exit(struct vcpu *v, struct vmexit *e)
{
	if (e->reason >= EXIT_REASON_COUNT || !exit_table[e->reason].handler)
		return handle_unsupported(v, e);
	return exit_table[e->reason].handler(v, e);
}

void vmx_record_exit(struct vcpu *v, const struct vmexit *e)
{
	struct guest *g = v->g;

	if (e->reason < EXIT_REASON_COUNT)
		guest_stat_add(&g->exit_count[e->reason], 1);
	g->recent_exits[__atomic_fetch_add(&g->recent_next, 1, __ATOMIC_RELAXED) % EXIT_HISTORY] =
		(typeof(g->recent_exits[0])){ e->reason, e->qualification, e->guest_rip, v->index };
}

void vmx_print_recent_exits(struct guest *g)
{
	u32 n = g->recent_next < EXIT_HISTORY ? g->recent_next : EXIT_HISTORY;

	for (u32 i = g->recent_next - n; i < g->recent_next; i++) {
		typeof(g->recent_exits[0]) *x = &g->recent_exits[i % EXIT_HISTORY];

		console_printf("  exit -%u: %-20s qual %#llx rip %#llx\n", g->recent_next - i,
			       vmx_exit_reason_name(x->reason), (unsigned long long)x->qualification,
			       (unsigned long long)x->rip);
	}
}
