/* Port I/O exits, passed on to the device models (vmx/io.c). */
#ifndef VMX_IO_H
#define VMX_IO_H

#include "vmx/vmexit.h"

/* One port access as the guest's IN or OUT makes it (isa-debug-exit, the
 * device models, unassigned ports); *value holds or receives the data. */
enum exit_action io_one(struct vcpu *v, u16 port, unsigned size, bool in, u32 *value);
enum exit_action handle_io(struct vcpu *v, struct vmexit *e);

#endif
