/* Guests from start to finish (core/run.c). */
#ifndef CORE_RUN_H
#define CORE_RUN_H

#include "arch/x86/machine.h"
#include "arch/x86/multiboot2.h"

/* Bring up VMX, load every module as a guest, run them all to completion
 * round-robin, print the per-guest report; the run's outcome. */
enum run_status guests_run(const struct boot_info *bi);

#endif
