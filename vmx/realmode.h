/* Exceptions of a guest whose real mode runs as virtual-8086 mode (vmx/realmode.c). */
#ifndef VMX_REALMODE_H
#define VMX_REALMODE_H

#include "vmx/vmexit.h"

/* An exception exit while in virtual-8086 mode (#PF excepted): the
 * privileged instructions' #GP are emulated, other exceptions delivered as
 * real mode does. */
enum exit_action realmode_exception(struct vcpu *v, struct vmexit *e, u32 vector, u32 error);

#endif
