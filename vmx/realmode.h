/* Real-mode vCPU state: the ACPI S3 sleep and its real-mode wake (vmx/realmode.c). */
#ifndef VMX_REALMODE_H
#define VMX_REALMODE_H

#include "vmx/vmexit.h"

/* The guest's last port write asked for S3 (devices_enter_sleep() said so):
 * the vCPU gets the state it wakes in and sleeps until the wake event. */
enum exit_action realmode_s3_sleep(struct vcpu *v);

#endif
