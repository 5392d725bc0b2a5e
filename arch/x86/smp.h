/*
 * The CPUs: per-CPU data (percpu.h) and the host's local APIC, used only to
 * start the application processors with INIT-SIPI-SIPI (SDM Vol. 3A 9.4.4
 * "MP initialization", 11.6 for the ICR). boot/smp.c drives the bring-up.
 */
#ifndef ARCH_X86_SMP_H
#define ARCH_X86_SMP_H

#include "arch/x86/percpu.h"

/* Point this CPU's GS base at cpu_locals[index]. */
void percpu_init(u32 index, u32 apic_id);
/* CPUs started so far (the boot CPU included): cpu_locals[0..n-1] are in use. */
u32 smp_cpu_count(void);
/* Count one more CPU as started (boot/smp.c, once the AP answered). */
void smp_cpu_started(void);

/* An AP that started waits here for the work smp_release_aps() gives it, runs
 * it and returns. */
void smp_park(void);
/* Give every parked AP fn to run (once). */
void smp_release_aps(void (*fn)(void));

/* The host local APIC (xAPIC MMIO or x2APIC MSRs, as the firmware left it). */
void host_apic_init(void);
u32 host_apic_id(void);
/*
 * Kicks between CPUs: a fixed IPI with HOST_KICK_VECTOR. The host runs with
 * interrupts masked, so it is only ever taken in VMX non-root operation, as
 * an external-interrupt VM exit (acknowledged on exit): its point is the exit.
 * host_apic_enable() on each CPU first; the exit handler sends the EOI.
 */
#define HOST_KICK_VECTOR 0xf2
void host_apic_enable(void);
bool host_apic_send_fixed(u32 apic_id, u8 vector);
void host_apic_eoi(void);
/* INIT, SIPI, SIPI to apic_id with the SDM's delays; the AP then runs real-mode
 * code at page sipi_page (below 1 MiB). False if an IPI was not accepted. */
bool host_apic_start_cpu(u32 apic_id, u64 sipi_page);

#endif
