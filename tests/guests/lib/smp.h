/*
 * Several CPUs in a guest test kernel (lib/smp.c, 64-bit builds): the CPU count from fw_cfg,
 * the APs started by INIT-SIPI-SIPI through the xAPIC to a real-mode trampoline, a stack
 * each, work handed to every CPU, spinlocks, barriers and IPIs. CPU i is the one whose local
 * APIC ID is i (QEMU and umbra number them 0..N-1; smp_init() checks it). printf() and
 * report() may be called from any CPU: a line is never mixed with another CPU's.
 */
#ifndef GUEST_SMP_H
#define GUEST_SMP_H

#define SMP_MAX_CPUS 16
#define SMP_TRAMP_ADDR 0x6000	/* real-mode start page: below 1 MiB, RAM, not used by the
				 * loader (multiboot info at 0x7000 under umbra, 0x9000 QEMU) */
#define SMP_AP_STACK 16384

#ifndef __ASSEMBLER__
#include "libguest.h"

/* fw_cfg (ports 0x510/0x511) key FW_CFG_NB_CPUS: the CPUs the machine has (QEMU -smp N). */
unsigned int fw_cfg_cpu_count(void);
/*
 * Starts the other CPUs (at most want; 0: all fw_cfg reports) one at a time with INIT,
 * STARTUP, STARTUP (SDM Vol. 3A 9.4.4.1), on the current CR3, CR0, CR4, EFER, GDT and IDT,
 * with the local APIC software-enabled and interrupts on; they then wait for work. The
 * APIC page (0xfee00000) must be mapped, and the page at SMP_TRAMP_ADDR identity-mapped.
 * Returns the CPUs now running (the BSP included); one that did not come within a second
 * is reported as a FAIL and left out. Call once, from the BSP.
 */
unsigned int smp_init(unsigned int want);
unsigned int cpu_count(void);
/* This CPU's index: 0 for the BSP, the APIC ID for an AP (from the stack it runs on). */
unsigned int smp_id(void);
/*
 * Runs fn(arg) on every CPU, this one included, and returns when all have finished.
 * APs run it with interrupts on.
 */
void on_cpus(void (*fn)(void *arg), void *arg);

/* Spinlock: xchg, pause while taken. */
struct spinlock {
	volatile u32 taken;
};
void spin_lock(struct spinlock *l);
void spin_unlock(struct spinlock *l);
/* Waits until every running CPU has called it (sense-reversing: reusable at once). */
void smp_barrier(void);

/* A fixed IPI (edge, physical destination) of vector to CPU cpu, or to all but this one. */
void ipi_send(unsigned int cpu, unsigned int vector);
void ipi_send_all_but_self(unsigned int vector);
#endif

#endif
