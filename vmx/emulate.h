/* The x86 emulator (arch/x86/emulate.c) run on a guest (vmx/emulate.c). */
#ifndef VMX_EMULATE_H
#define VMX_EMULATE_H

#include "vmx/vmexit.h"
#include "arch/x86/emulate.h"

/* Emulate the instruction at the guest's RIP (its memory accesses go
 * through mmu_translate/mmu_store and the devices' MMIO); 'why' names the
 * reason in logs. */
enum exit_action emulate_instruction(struct vcpu *v, struct vmexit *e, const char *why);
/* This CPU's emulation context, before it runs guests (the boot CPU has one). */
bool emulate_init_cpu(void);

/* Task-switch exit (every task switch exits, SDM Vol. 3C 26.2): the switch of SDM Vol. 3A
 * 8.3 done by arch/x86/emulate.c on the guest. */
enum exit_action handle_task_switch(struct vcpu *v, struct vmexit *e);

#endif
