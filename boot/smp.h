/* Starting the application processors (boot/smp.c). */
#ifndef BOOT_SMP_H
#define BOOT_SMP_H

#include "arch/x86/multiboot2.h"

/* Start the CPUs the ACPI MADT lists, up to cpus=N; they wait in smp_park().
 * Falls back to the boot CPU alone, saying why, when tables or CPUs fail. */
void smp_start(const struct boot_info *bi);
/* The C entry of an AP (boot/trampoline.S). */
void ap_main(u32 index);

#endif
