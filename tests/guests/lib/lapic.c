/*
 * The local xAPIC for test kernels (SDM Vol. 3A ch. 11): register access at the default base
 * 0xfee00000 (identity-mapped in both widths) and interrupt vectors 48-255, which the
 * library's 48-entry IDT does not have. The IDT here starts as a copy of the library's, so
 * exceptions and PIC IRQs keep working exactly as before.
 */
#include "platform.h"
#include "internal.h"

#define NR_VECTORS 256

/* Gate descriptors, as in lib/trap.c (SDM Vol. 3A 6.11 and 6.14.1). */
#ifdef __x86_64__
struct apic_gate {
	u16 offset_low, selector;
	u8 ist, type_attr;
	u16 offset_mid;
	u32 offset_high, reserved;
} PACKED;
#else
struct apic_gate {
	u16 offset_low, selector;
	u8 zero, type_attr;
	u16 offset_high;
} PACKED;
#endif
#define GATE_INTERRUPT 0x8e	/* present, DPL 0, interrupt gate */

/* lib/lapic_isr.S: one 16-byte stub per vector from APIC_FIRST_VECTOR, in order. */
extern const char apic_isr_stubs[];
#define APIC_STUB_SIZE 16

static struct apic_gate idt256[NR_VECTORS] __attribute__((aligned(16)));
static void (*handlers[NR_VECTORS])(unsigned int vector);
volatile unsigned int apic_unhandled;

static volatile u32 *apic_reg(u32 reg)
{
	return (volatile u32 *)(APIC_DEFAULT_BASE + reg);
}

u32 apic_read(u32 reg)
{
	return *apic_reg(reg);
}

void apic_write(u32 reg, u32 val)
{
	*apic_reg(reg) = val;
}

bool apic_vector_bit(u32 base, unsigned int vector)
{
	return apic_read(base + (vector / 32) * 16) & (1u << (vector % 32));
}

void apic_eoi(void)
{
	apic_write(APIC_EOI, 0);
}

void apic_vectors_init(void)
{
	struct descriptor_ptr old, p = { .limit = sizeof(idt256) - 1,
					 .base = (unsigned long)idt256 };
	u16 cs;

	sidt(&old);
	memcpy(idt256, (const void *)old.base, old.limit + 1);
	asm volatile("mov %%cs, %0" : "=r"(cs));
	for (unsigned int v = APIC_FIRST_VECTOR; v < NR_VECTORS; v++) {
		unsigned long stub = (unsigned long)apic_isr_stubs +
				     (v - APIC_FIRST_VECTOR) * APIC_STUB_SIZE;
		struct apic_gate *g = &idt256[v];

		g->offset_low = stub & 0xffff;
		g->selector = cs;
		g->type_attr = GATE_INTERRUPT;
#ifdef __x86_64__
		g->offset_mid = (stub >> 16) & 0xffff;
		g->offset_high = (u64)stub >> 32;
#else
		g->offset_high = stub >> 16;
#endif
	}
	lidt(&p);
}

void apic_set_handler(unsigned int vector, void (*fn)(unsigned int vector))
{
	handlers[vector] = fn;
}

void apic_vector_dispatch(unsigned long vector);

/* Called by lib/lapic_isr.S with IF=0. */
void apic_vector_dispatch(unsigned long vector)
{
	if (handlers[vector]) {
		handlers[vector](vector);
		return;
	}
	apic_unhandled++;
	printf("apic: unexpected interrupt, vector %lu\n", vector);
	apic_eoi();
}
