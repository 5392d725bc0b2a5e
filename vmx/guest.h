/* Guests: creation from boot modules, scheduling, and the end-of-run report. */
#ifndef VMX_GUEST_H
#define VMX_GUEST_H

#include "boot/bootinfo.h"
#include "arch/x86/machine.h"

/* Load every module as a guest, run them all to completion, report. */
enum run_status guests_run(const struct boot_info *bi);

#endif
