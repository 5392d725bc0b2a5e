/*
 * VMCALL hypercalls (ABI in tests/guests/PLATFORM.md): RAX = function,
 * RBX/RCX/RDX = arguments, result in RAX. 32-bit guests use the low halves.
 * Only ring 0 may call; other rings get -EPERM.
 */
#include "vmx/hypercall.h"
#include "vmx/ageing.h"
#include "vmx/cr.h"
#include "vmx/event.h"
#include "vmx/mmu.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "devices/uart.h"
#include "guest/memory.h"

enum hypercall {
	HC_PING = 0,
	HC_PUTS = 1,
	HC_EXIT = 2,
	HC_STAT = 3,
	HC_CAPS = 4,
};

/* HC_CAPS feature bits: what the CPU offers and what this guest gets. */
#define CAPS_EPT BIT(0)
#define CAPS_EPT_AD BIT(1)
#define CAPS_UNRESTRICTED BIT(2)
#define CAPS_VPID BIT(3)
#define CAPS_INVPCID BIT(4)
#define CAPS_PREEMPTION_TIMER BIT(5)
#define CAPS_GUEST_USES_EPT BIT(6)

#define HC_PING_MAGIC 0x554d4252u  /* 'UMBR' */
#define HC_VERSION 1
#define HC_PUTS_MAX 4096
#define HC_STAT_EXIT_BASE 0x100
#define HC_EPERM 1
#define HC_EINVAL 22
#define HC_ENOSYS 38

static s64 hc_puts(struct vcpu *v, u64 gpa, u64 len)
{
	struct guest *g = v->g;

	if (len > HC_PUTS_MAX)
		return -HC_EINVAL;
	for (u64 i = 0; i < len; i++) {
		const char *c = guest_gpa_ptr(g, gpa + i, 1);

		if (!c)
			return -HC_EINVAL;
		console_guest_putc(g, *c);
	}
	return 0;
}

enum exit_action handle_vmcall(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;
	u64 mask = guest_in_64bit_mode(v) ? ~0ull : 0xffffffffull;
	u64 fn = v->regs.rax & mask, a = v->regs.rbx & mask, b = v->regs.rcx & mask;
	u32 cpl = guest_cpl();
	s64 ret;

	skip_instruction(e);
	if (cpl != 0) {
		v->regs.rax = (u64)(s64)-HC_EPERM & mask;
		return EXIT_RESUME;
	}
	switch (fn) {
	case HC_PING:
		ret = HC_PING_MAGIC;
		v->regs.rbx = HC_VERSION;
		break;
	case HC_PUTS:
		ret = hc_puts(v, a, b);
		break;
	case HC_EXIT:
		guest_end(g, (u32)((a << 1) | 1), "hypercall exit(%llu)", (unsigned long long)a);
		return EXIT_ENDED;
	case HC_CAPS:
		/* The VMX capability report (also printed at boot): features in RAX,
		 * the control words in use in RBX (pin | cpu << 32), RCX (secondary |
		 * exit << 32) and RDX (entry). */
		ret = (s64)((vmx_caps.ept ? CAPS_EPT : 0) | (vmx_caps.ept_ad ? CAPS_EPT_AD : 0) |
			    (vmx_caps.unrestricted ? CAPS_UNRESTRICTED : 0) |
			    (vmx_caps.vpid ? CAPS_VPID : 0) | (vmx_caps.invpcid ? CAPS_INVPCID : 0) |
			    CAPS_PREEMPTION_TIMER | (g->mmu->uses_ept ? CAPS_GUEST_USES_EPT : 0));
		v->regs.rbx = (vmcs_read32(PIN_BASED_VM_EXEC_CONTROL) |
			       (u64)vmcs_read32(CPU_BASED_VM_EXEC_CONTROL) << 32) & mask;
		v->regs.rcx = (vmcs_read32(SECONDARY_VM_EXEC_CONTROL) |
			       (u64)vmcs_read32(VM_EXIT_CONTROLS) << 32) & mask;
		v->regs.rdx = vmcs_read32(VM_ENTRY_CONTROLS) & mask;
		break;
	case HC_STAT:
		if (a >= HC_STAT_EXIT_BASE && a < HC_STAT_EXIT_BASE + EXIT_REASON_COUNT)
			ret = (s64)g->exit_count[a - HC_STAT_EXIT_BASE];
		else if (!ageing_stat(g, a, &ret))
			ret = -HC_EINVAL;
		break;
	default:
		ret = -HC_ENOSYS;
		break;
	}
	v->regs.rax = (u64)ret & mask;
	return EXIT_RESUME;
}
