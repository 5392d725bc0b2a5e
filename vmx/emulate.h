/* The x86 emulator (arch/x86/emulate.c) run on a guest (vmx/emulate.c). */
#ifndef VMX_EMULATE_H
#define VMX_EMULATE_H

#include "vmx/vmexit.h"

/* Emulate the instruction at the guest's RIP (its memory accesses go
 * through mmu_translate/mmu_store and the devices' MMIO); 'why' names the
 * reason in logs. */
enum exit_action emulate_instruction(struct guest *g, struct vmexit *e, const char *why);

#endif
