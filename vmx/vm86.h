/* Real mode without unrestricted guest, run as virtual-8086 mode (vmx/vm86.c). */
#ifndef VMX_VM86_H
#define VMX_VM86_H

#include "vmx/vmexit.h"

enum { SEG_ES, SEG_CS, SEG_SS, SEG_DS, SEG_FS, SEG_GS, SEG_COUNT };

/* Without unrestricted guest: CR0.PE has just been written (guest_set_control_regs):
 * enter or leave virtual-8086 mode. false: the guest was ended (a segment
 * virtual-8086 mode cannot hold). */
bool realmode_sync(struct vcpu *v, u64 cr0);
/* The vCPU runs the guest's real mode as virtual-8086 mode. */
bool realmode_vm86(struct vcpu *v);
/* Deliver ev as real mode does (through the IVT) instead of by VM entry;
 * ev->valid is cleared. false: the guest was ended. */
bool realmode_deliver(struct vcpu *v, struct guest_event *ev);
/* Helpers of the #GP emulation (vmx/realmode.c): a segment's base, guest
 * memory by linear address, the guest's own IDTR (LIDT). */
u64 vm86_seg_base(unsigned seg);
bool vm86_access(struct vcpu *v, u64 la, void *buf, unsigned len, u32 access);
void vm86_set_idtr(struct vcpu *v, u64 base, u32 limit);

#endif
