/* The ACPI S3 sleep of the vCPU and its real-mode wake state (vmx/s3.c). */
#ifndef VMX_S3_H
#define VMX_S3_H

#include "vmx/vmexit.h"

/* The guest's last port write asked for S3 (devices_enter_sleep() said so):
 * the vCPU gets the state it wakes in and sleeps until the wake event. */
enum exit_action realmode_s3_sleep(struct vcpu *v);

#endif
