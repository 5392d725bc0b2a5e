/*
 * Events into the guest (SDM Vol. 3C 27.6, 28.2.4): exceptions the
 * hypervisor raises for it, external interrupts from its devices when it
 * can take them (else an interrupt-window exit asks again), events whose
 * delivery an exit cut short, and skipping an emulated instruction.
 */
#include "vmx/event.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "devices/devices.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"

#define INTR_INFO_VALID BIT(31)
#define INTR_TYPE_EXTERNAL (0u << 8)

void skip_instruction(struct vmexit *e)
{
	vmcs_writen(GUEST_RIP, e->guest_rip + e->instruction_len);
	/* Skipping an instruction ends STI / MOV SS blocking (SDM 26.7.1.2). */
	u32 intr = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO);
	if (intr & 3)
		vmcs_write32(GUEST_INTERRUPTIBILITY_INFO, intr & ~3u);
}

void inject_exception(struct guest *g, int vector, bool has_error, u32 error_code)
{
	/* Event injection format, SDM 25.8.3: type 3 = hardware exception. */
	u32 info = (u32)vector | (3u << 8) | (has_error ? BIT(11) : 0) | BIT(31);

	(void)g;
	vmcs_write32(VM_ENTRY_INTR_INFO, info);
	if (has_error)
		vmcs_write32(VM_ENTRY_EXCEPTION_ERROR_CODE, error_code);
}

static void set_cpu_control(u32 bit, bool on)
{
	u32 cpu = vmcs_read32(CPU_BASED_VM_EXEC_CONTROL);
	u32 want = on ? cpu | bit : cpu & ~bit;

	if (want != cpu)
		vmcs_write32(CPU_BASED_VM_EXEC_CONTROL, want);
}

/* An event whose delivery was cut short by the exit is delivered again
 * (SDM 28.2.4, 27.6). */
void reinject_interrupted_event(void)
{
	u32 idt = vmcs_read32(IDT_VECTORING_INFO);

	if (!(idt & INTR_INFO_VALID))
		return;
	vmcs_write32(VM_ENTRY_INTR_INFO, idt & ~(BIT(12)));
	if (idt & BIT(11))
		vmcs_write32(VM_ENTRY_EXCEPTION_ERROR_CODE, vmcs_read32(IDT_VECTORING_ERROR_CODE));
	vmcs_write32(VM_ENTRY_INSTRUCTION_LEN, vmcs_read32(VM_EXIT_INSTRUCTION_LEN));
}

void deliver_pending_interrupt(struct guest *g)
{
	int vector = devices_pending_vector(g);
	bool can_inject;

	if (vector < 0) {
		set_cpu_control(CPU_INTR_WINDOW_EXITING, false);
		return;
	}
	can_inject = !(vmcs_read32(VM_ENTRY_INTR_INFO) & INTR_INFO_VALID) &&
		     (vmcs_readn(GUEST_RFLAGS) & RFLAGS_IF) &&
		     !(vmcs_read32(GUEST_INTERRUPTIBILITY_INFO) & 3);
	if (can_inject) {
		devices_ack(g, vector);
		vmcs_write32(VM_ENTRY_INTR_INFO, (u32)vector | INTR_TYPE_EXTERNAL | INTR_INFO_VALID);
		g->injected_irqs++;
	}
	/* Still something waiting: exit as soon as the guest can take it. */
	set_cpu_control(CPU_INTR_WINDOW_EXITING, !can_inject || devices_pending_vector(g) >= 0);
}

enum exit_action handle_interrupt_window(struct guest *g, struct vmexit *e)
{
	(void)g, (void)e;
	return EXIT_RESUME;  /* delivery happens before the next entry */
}

enum exit_action handle_external_interrupt(struct guest *g, struct vmexit *e)
{
	(void)e;
	/* The host keeps interrupts masked and programs no device, so this is
	 * unexpected; with "acknowledge on exit" it is already consumed. */
	pr_warn("external interrupt vector %u while running %s; dropped",
		vmcs_read32(VM_EXIT_INTR_INFO) & 0xff, g->cfg.name);
	return EXIT_RESUME;
}

enum exit_action handle_hlt(struct guest *g, struct vmexit *e)
{
	skip_instruction(e);
	if (!(vmcs_readn(GUEST_RFLAGS) & RFLAGS_IF)) {
		guest_end(g, 0, "HLT with interrupts disabled at RIP %#llx: the guest can never wake",
			  (unsigned long long)e->guest_rip);
		return EXIT_ENDED;
	}
	if (devices_pending_vector(g) >= 0)
		return EXIT_RESUME;
	g->state = GUEST_HALTED;
	return EXIT_YIELD;
}
