/*
 * Events into the guest (SDM Vol. 3C 27.2.4, 27.6; Vol. 3A 6.15). One
 * pending event per guest (g->event) is written into the VM-entry
 * interruption field just before each entry:
 *   - after an exit, an event whose delivery the exit cut short (IDT-vectoring
 *     information) becomes the pending event, to be delivered again;
 *   - an exception the hypervisor raises is merged with it by the rules of
 *     SDM Table 6-5 (contributory or page fault during a page fault or a
 *     contributory exception: #DF; during #DF: triple fault);
 *   - with nothing pending, an NMI, then the devices' highest interrupt, is
 *     injected when the guest can take it, else a window exit asks again.
 * A single-step trap (RFLAGS.TF) over an instruction the hypervisor completed
 * is left in the pending debug exceptions, where the CPU delivers it. The
 * rules themselves (classes, faults) are in arch/x86/exception.c.
 */
#include "vmx/event.h"
#include "vmx/vm86.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "devices/devices.h"
#include "devices/lapic.h"
#include "arch/x86/cpu.h"
#include "arch/x86/exception.h"
#include "arch/x86/log.h"
#include "arch/x86/smp.h"

#define INTR_INFO_VALID BIT(31)
#define INTR_INFO_HAS_ERROR BIT(11)
#define INTR_INFO_NMI_UNBLOCKED BIT(12)   /* by IRET, before a fault (SDM 28.2.3) */
#define INTR_TYPE(info) (((info) >> 8) & 7)


/* Interruptibility state (SDM Table 25-3). */
#define BLOCKING_STI BIT(0)
#define BLOCKING_MOV_SS BIT(1)
#define BLOCKING_NMI BIT(3)

/* Pending debug exceptions (SDM Table 25-4): B0-B3, enabled breakpoint, BS. */
#define PENDING_DBG_TRAPS (0xfull | BIT(12) | BIT(14))
#define PENDING_DBG_BS BIT(14)
#define DEBUGCTL_BTF BIT(1)
#define RFLAGS_RF BIT(16)

/* ---- exceptions ------------------------------------------------------------- */

static const char *const exception_names[32] = {
	"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "#MF(9)", "#TS",
	"#NP", "#SS", "#GP", "#PF", "#15", "#MF", "#AC", "#MC", "#XM", "#VE", "#CP",
};

static const char *event_name(const struct guest_event *ev)
{
	if (ev->type == TYPE_EXTERNAL)
		return "an external interrupt";
	if (ev->type == TYPE_NMI)
		return "an NMI";
	if (ev->type == TYPE_SW_INTERRUPT)
		return "a software interrupt";
	return ev->vector < 32 && exception_names[ev->vector] ? exception_names[ev->vector] :
								 "an exception";
}

void inject_exception(struct vcpu *v, int vector, bool has_error, u32 error_code)
{
	struct guest *g = v->g;
	struct guest_event new = {
		.valid = true, .type = TYPE_HW_EXCEPTION, .vector = (u8)vector,
		.has_error = has_error, .error_code = error_code,
	};
	struct guest_event *old = &v->event;

	/* A hardware exception while delivering an event: SDM Table 6-5. */
	switch (!old->valid ? X86_DELIVER_SECOND :
		x86_exception_combine(old->type == TYPE_HW_EXCEPTION, old->vector, new.vector)) {
	case X86_SHUTDOWN:
		guest_end(g, 0, "triple fault: %s while delivering #DF at RIP %#llx",
			  event_name(&new), (unsigned long long)vmcs_readn(GUEST_RIP));
		return;
	case X86_DOUBLE_FAULT:
		new = (struct guest_event){ .valid = true, .type = TYPE_HW_EXCEPTION,
					    .vector = X86_VEC_DF, .has_error = true };
		break;
	case X86_DELIVER_SECOND:  /* a faulting first one recurs when its instruction restarts */
		break;
	}
	*old = new;
}

/* ---- after an exit ------------------------------------------------------------ */

void event_exit(struct vcpu *v, const struct vmexit *e)
{
	u32 idt = vmcs_read32(IDT_VECTORING_INFO);
	bool iret_unblocked = false;

	/* Every VM exit clears the entry interruption field's valid bit (SDM 27.2.1). */
	v->event.valid = false;
	v->delivering = idt & INTR_INFO_VALID;
	if (v->delivering) {
		/* Delivered again from the start (SDM 28.2.4, 27.6.1.1). */
		v->event = (struct guest_event){
			.valid = true, .type = (u8)INTR_TYPE(idt), .vector = (u8)idt,
			.has_error = idt & INTR_INFO_HAS_ERROR,
			.error_code = idt & INTR_INFO_HAS_ERROR ?
				      vmcs_read32(IDT_VECTORING_ERROR_CODE) : 0,
			.insn_len = vmcs_read32(VM_EXIT_INSTRUCTION_LEN),
		};
		if (v->event.type == TYPE_NMI)  /* not blocked until delivered */
			vmcs_write32(GUEST_INTERRUPTIBILITY_INFO,
				     vmcs_read32(GUEST_INTERRUPTIBILITY_INFO) & ~BLOCKING_NMI);
		return;
	}
	/* A fault in an IRET that had unblocked virtual NMIs: the IRET runs again,
	 * so NMIs are blocked again until it completes (SDM 28.2.3; Table 28-7
	 * bit 12 for EPT violations). */
	if (!vmx_caps.virtual_nmis)
		return;
	if (e->reason == EXIT_REASON_EXCEPTION_NMI) {
		u32 info = vmcs_read32(VM_EXIT_INTR_INFO);

		iret_unblocked = (info & INTR_INFO_NMI_UNBLOCKED) && (info & 0xff) != X86_VEC_DF;
	} else if (e->reason == EXIT_REASON_EPT_VIOLATION) {
		iret_unblocked = e->qualification & BIT(12);
	}
	if (iret_unblocked)
		vmcs_write32(GUEST_INTERRUPTIBILITY_INFO,
			     vmcs_read32(GUEST_INTERRUPTIBILITY_INFO) | BLOCKING_NMI);
}

enum exit_action event_delivery_unemulatable(struct vcpu *v, struct vmexit *e, u64 gpa,
					     const char *what)
{
	struct guest *g = v->g;

	guest_end(g, 0, "delivering %s (vector %u) at RIP %#llx needs %s at guest-physical %#llx, "
		  "which cannot be emulated", event_name(&v->event), v->event.vector,
		  (unsigned long long)e->guest_rip, what, (unsigned long long)gpa);
	return EXIT_ENDED;
}

/* ---- instructions the hypervisor completed ----------------------------------------- */

static bool debug_trap_pending(void)
{
	return vmcs_readn(GUEST_PENDING_DBG_EXCEPTIONS) & PENDING_DBG_TRAPS;
}

void single_step_trap(void)
{
	/* Single-step: a #DB trap after the instruction, unless BTF makes TF
	 * step branches only (SDM 18.3.1.4, 18.4.3). */
	if ((vmcs_readn(GUEST_RFLAGS) & RFLAGS_TF) &&
	    !(vmcs_read64(GUEST_IA32_DEBUGCTL) & DEBUGCTL_BTF))
		vmcs_writen(GUEST_PENDING_DBG_EXCEPTIONS,
			    vmcs_readn(GUEST_PENDING_DBG_EXCEPTIONS) | PENDING_DBG_BS);
}

void end_interrupt_shadow(void)
{
	/* STI / MOV SS blocking lasts one instruction (SDM 26.7.1.2, 6.8.3). */
	u32 intr = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO);

	if (intr & (BLOCKING_STI | BLOCKING_MOV_SS))
		vmcs_write32(GUEST_INTERRUPTIBILITY_INFO,
			     intr & ~(BLOCKING_STI | BLOCKING_MOV_SS));
}

void skip_instruction(struct vmexit *e)
{
	vmcs_writen(GUEST_RIP, e->guest_rip + e->instruction_len);
	end_interrupt_shadow();
	single_step_trap();
}

/* ---- task switches ---------------------------------------------------------------- */

bool event_task_gate(struct vcpu *v, u32 *skip, bool *has_error, u32 *error_code)
{
	if (!v->delivering || !v->event.valid)
		return false;
	*skip = v->event.type >= TYPE_SW_INTERRUPT ? v->event.insn_len : 0;
	*has_error = v->event.has_error;
	*error_code = v->event.error_code;
	return true;
}

void event_task_switched(struct vcpu *v, bool iret)
{
	u32 intr = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO) & ~(BLOCKING_STI | BLOCKING_MOV_SS);

	if (v->delivering && v->event.valid && v->event.type == TYPE_NMI)
		intr |= BLOCKING_NMI;
	else if (iret)
		intr &= ~BLOCKING_NMI;
	if (!vmx_caps.virtual_nmis)
		intr &= ~BLOCKING_NMI;
	vmcs_write32(GUEST_INTERRUPTIBILITY_INFO, intr);
	v->event.valid = false;
	v->delivering = false;
}

/* ---- before an entry ------------------------------------------------------------ */

static void set_cpu_control(u32 bit, bool on)
{
	u32 cpu = vmcs_read32(CPU_BASED_VM_EXEC_CONTROL);
	u32 want = on ? cpu | bit : cpu & ~bit;

	if (want != cpu)
		vmcs_write32(CPU_BASED_VM_EXEC_CONTROL, want);
}

static void write_entry_event(const struct guest_event *ev)
{
	vmcs_write32(VM_ENTRY_INTR_INFO, (u32)ev->vector | (u32)ev->type << 8 |
		     (ev->has_error ? INTR_INFO_HAS_ERROR : 0) | INTR_INFO_VALID);
	if (ev->has_error)
		vmcs_write32(VM_ENTRY_EXCEPTION_ERROR_CODE, ev->error_code);
	if (ev->type >= TYPE_SW_INTERRUPT)
		vmcs_write32(VM_ENTRY_INSTRUCTION_LEN, ev->insn_len);
	/* Fault-class exceptions restart their instruction: RF in the RFLAGS
	 * image they push (SDM 6.5, 18.3.1.1). */
	if (ev->type == TYPE_HW_EXCEPTION && x86_exception_is_fault(ev->vector))
		vmcs_writen(GUEST_RFLAGS, vmcs_readn(GUEST_RFLAGS) | RFLAGS_RF);
}

/* The event goes in by VM entry; a vCPU whose real mode runs as
 * virtual-8086 mode gets it as real mode delivers it (vmx/realmode.c). */
static void entry_event(struct vcpu *v)
{
	if (realmode_vm86(v))
		realmode_deliver(v, &v->event);
	else
		write_entry_event(&v->event);
}

void event_entry(struct vcpu *v)
{
	struct guest *g = v->g;
	u32 intr = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO);
	/* A pending single-step or data-breakpoint trap comes before NMIs and
	 * interrupts, and an injected one of those would discard it (SDM 27.7.3). */
	bool traps = debug_trap_pending();
	bool injected = v->event.valid;
	int vector;

	if (injected) {
		entry_event(v);
	} else if (vmx_caps.virtual_nmis && devices_nmi_pending(v)) {
		/* Blocked by a previous NMI until its IRET, and by MOV SS; some
		 * CPUs also block NMIs after STI (SDM 26.3.1.5, 6.8.3). */
		if (!traps && !(intr & (BLOCKING_STI | BLOCKING_MOV_SS | BLOCKING_NMI))) {
			devices_nmi_ack(v);
			v->event = (struct guest_event){ .valid = true, .type = TYPE_NMI, .vector = 2 };
			entry_event(v);
			injected = true;
		}
	}
	if (vmx_caps.virtual_nmis)  /* an NMI still waiting: exit when it can be taken */
		set_cpu_control(CPU_NMI_WINDOW_EXITING, devices_nmi_pending(v));

	vector = devices_pending_vector(v);
	if (vector >= 0 && !injected && !traps && (vmcs_readn(GUEST_RFLAGS) & RFLAGS_IF) &&
	    !(intr & (BLOCKING_STI | BLOCKING_MOV_SS))) {
		devices_ack(v, vector);
		v->event = (struct guest_event){ .valid = true, .type = TYPE_EXTERNAL,
						 .vector = (u8)vector };
		entry_event(v);
		guest_stat_add(&g->injected_irqs, 1);
		v->last_irq_vector = (u8)vector;
		v->last_irq_rip = vmcs_readn(GUEST_RIP);
		vector = devices_pending_vector(v);
	}
	/* Still something waiting: exit as soon as the guest can take it. */
	set_cpu_control(CPU_INTR_WINDOW_EXITING, vector >= 0);
}

static bool event_wakes_guest(struct vcpu *v)
{
	if (lapic_start_pending(v))
		return true;
	return devices_pending_vector(v) >= 0 || debug_trap_pending() ||
	       (vmx_caps.virtual_nmis && devices_nmi_pending(v));
}

/* ---- exits ------------------------------------------------------------------------ */

enum exit_action handle_interrupt_window(struct vcpu *v, struct vmexit *e)
{
	(void)v, (void)e;
	return EXIT_RESUME;  /* delivery happens before the next entry */
}

enum exit_action handle_external_interrupt(struct vcpu *v, struct vmexit *e)
{
	u32 vector = vmcs_read32(VM_EXIT_INTR_INFO) & 0xff;

	/* Another CPU kicked this one (core/run.c): the exit was the point; the
	 * run loop looks at what changed before the next entry. */
	(void)e;
	if (vector == HOST_KICK_VECTOR) {
		host_apic_eoi();
		return EXIT_RESUME;
	}
	/* The host keeps interrupts masked and programs no device, so this is
	 * unexpected; with "acknowledge on exit" it is already consumed. */
	pr_warn("external interrupt vector %u while running %s; dropped", vector, v->g->cfg.name);
	return EXIT_RESUME;
}

enum exit_action handle_hlt(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;

	skip_instruction(e);
	/* Something to deliver now (a pending interrupt, NMI or single-step
	 * trap): the guest does not sleep. */
	if (event_wakes_guest(v))
		return EXIT_RESUME;
	/* With interrupts off only an NMI, INIT or SIPI wakes it: another vCPU
	 * may send one; a guest's only vCPU can never wake. */
	v->halted_if_off = !(vmcs_readn(GUEST_RFLAGS) & RFLAGS_IF);
	if (v->halted_if_off && g->nr_vcpus == 1) {
		guest_end(g, 0, "HLT with interrupts disabled at RIP %#llx: the guest can never wake",
			  (unsigned long long)e->guest_rip);
		return EXIT_ENDED;
	}
	v->state = VCPU_HALTED;
	return EXIT_YIELD;
}
