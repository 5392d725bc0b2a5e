/*
 * VM-exit dispatch: one table indexed by basic exit reason (SDM Vol. 3D
 * Appendix C); each handler lives in its subsystem's file.
 */
#ifndef VMX_EXIT_H
#define VMX_EXIT_H

#include "vmx/vmexit.h"

enum exit_action vmx_handle_exit(struct vcpu *v, struct vmexit *e);
/* An exit reason's name, for messages and statistics. */
const char *vmx_exit_reason_name(u32 reason);
/* Record an exit in g's ring of recent exits; print the ring (a guest killed). */
void vmx_record_exit(struct vcpu *v, const struct vmexit *e);
void vmx_print_recent_exits(struct guest *g);

#endif
