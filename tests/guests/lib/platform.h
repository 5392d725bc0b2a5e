/*
 * Helpers for the PC platform pieces that QEMU-style test kernels (kvm-unit-tests' x86
 * platform) use beyond libguest.h: the local xAPIC at 0xfee00000 with interrupt vectors
 * 48-255 for it (lib/lapic.c, lib/lapic_isr.S) and the TSC rate measured against PIT channel 2
 * (lib/tsc.c). Kernels include it after libguest.h.
 */
#ifndef GUEST_PLATFORM_H
#define GUEST_PLATFORM_H

#include "libguest.h"

/* --- Local xAPIC (SDM Vol. 3A 11.4), lib/lapic.c -------------------------------------------- */

#define APIC_DEFAULT_BASE 0xfee00000ul
#define MSR_IA32_TSC_DEADLINE 0x6e0
#define APIC_BASE_BSP BIT(8)
#define APIC_BASE_ENABLE BIT(11)

/* Register offsets in the APIC page (SDM Vol. 3A table 11-1). */
#define APIC_ID 0x20
#define APIC_VERSION 0x30
#define APIC_TPR 0x80
#define APIC_PPR 0xa0
#define APIC_EOI 0xb0
#define APIC_SVR 0xf0
#define APIC_ISR 0x100		/* 8 registers of 32 bits, 16 bytes apart */
#define APIC_IRR 0x200
#define APIC_ESR 0x280
#define APIC_ICR_LOW 0x300
#define APIC_ICR_HIGH 0x310
#define APIC_LVT_TIMER 0x320
#define APIC_LVT_LINT0 0x350
#define APIC_LVT_ERROR 0x370
#define APIC_TIMER_INITIAL 0x380
#define APIC_TIMER_CURRENT 0x390
#define APIC_TIMER_DIVIDE 0x3e0

#define APIC_SVR_ENABLE BIT(8)
#define APIC_LVT_MASKED BIT(16)
#define APIC_TIMER_ONESHOT (0u << 17)
#define APIC_TIMER_PERIODIC (1u << 17)
#define APIC_TIMER_TSC_DEADLINE (2u << 17)
#define APIC_TIMER_DIVIDE_1 0xb
#define APIC_ICR_BUSY BIT(12)		/* delivery status: send pending */
#define APIC_ICR_DEST_SELF (1u << 18)	/* destination shorthands, bits 19:18 */
#define APIC_ICR_DEST_ALL_INCL_SELF (2u << 18)

u32 apic_read(u32 reg);
void apic_write(u32 reg, u32 val);
/* True if `vector`'s bit is set in the ISR (base APIC_ISR) or IRR (base APIC_IRR). */
bool apic_vector_bit(u32 base, unsigned int vector);
void apic_eoi(void);

/*
 * Replaces the library's 48-entry IDT with a 256-entry one: the same gates for vectors 0-47
 * (exceptions, PIC IRQs), and for 48-255 stubs that call the handler set for that vector
 * (interrupt gates: IF=0 inside). Handlers send their own EOI. A vector without a handler is
 * counted in apic_unhandled and printed. Call once, with IF=0.
 */
void apic_vectors_init(void);
void apic_set_handler(unsigned int vector, void (*fn)(unsigned int vector));
extern volatile unsigned int apic_unhandled;
#define APIC_FIRST_VECTOR 48

/* --- TSC rate: lib/tsc.c -------------------------------------------------------------------- */

/*
 * TSC ticks per second, measured on the first call against a 10 ms one-shot count of PIT
 * channel 2 (gate and output on port 0x61, as Linux calibrates), the lowest of three tries;
 * 0 if the PIT output never rose.
 */
u64 tsc_hz(void);
/* Forgets the measured rate: the next tsc_hz() measures again. */
void tsc_recalibrate(void);
/* TSC ticks in `us` microseconds at tsc_hz() (us < 4e9 / 1e6 * 1e3, i.e. a few seconds). */
u64 tsc_us(u32 us);
/* Microseconds in `ticks` TSC ticks at tsc_hz() (0 if the rate is unknown). */
u64 tsc_to_us(u64 ticks);

#endif
