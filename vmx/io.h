/* Port I/O exits, passed on to the device models (vmx/io.c). */
#ifndef VMX_IO_H
#define VMX_IO_H

#include "vmx/vmexit.h"

enum exit_action handle_io(struct vcpu *v, struct vmexit *e);

#endif
