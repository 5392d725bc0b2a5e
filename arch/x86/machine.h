/* Ending the run: a status the test runner can read in Bochs and QEMU. */
#ifndef ARCH_X86_MACHINE_H
#define ARCH_X86_MACHINE_H

#include "lib/types.h"

/*
 * Run outcomes. Under QEMU with isa-debug-exit at 0xf4 the process exits
 * with (code << 1) | 1; under Bochs PASS exits 0 and everything else 1.
 */
enum run_status {
	RUN_PASS = 0,          /* every guest exited with status 1 (success) */
	RUN_GUEST_FAILED = 1,  /* some guest failed, crashed or was killed */
	RUN_HV_ERROR = 2,      /* panic, bad command line or bad module */
	RUN_NO_VMX = 3,        /* the CPU cannot run guests */
};

enum platform {
	PLATFORM_BARE,         /* real hardware: halt at the end */
	PLATFORM_BOCHS,        /* port 0xe9 hack, no hypervisor CPUID bit */
	PLATFORM_QEMU,         /* running under QEMU/KVM (hypervisor CPUID bit) */
};

void machine_detect(void);
/* Override detection (command line exit=...). */
void machine_force_platform(enum platform p);
enum platform machine_platform(void);
const char *machine_platform_name(void);
void NORETURN machine_exit(enum run_status status);
/* TSC frequency in kHz, 0 if no reference timer was found. */
u64 machine_tsc_khz(void);
/* The TSC rate to convert times with: calibrated, or 1 GHz assumed when no
 * timer was there to calibrate against. */
u64 machine_timing_khz(void);
/*
 * Calibrate the TSC against the ACPI PM timer of the FADT reached from the
 * loader's RSDP copies (physical addresses, 0 if none), else PIT channel 2.
 */
void machine_calibrate_tsc(u64 acpi_rsdp, u64 acpi_rsdp_v2);
/* An acpi_map_fn (arch/x86/acpi.h) for the tables in the identity-mapped low 4 GiB. */
const u8 *machine_acpi_map(u64 phys, u64 len, void *ctx);
/* Which timer machine_calibrate_tsc() used, for the log. */
const char *machine_tsc_source(void);

#endif
