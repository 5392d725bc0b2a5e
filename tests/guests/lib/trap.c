/*
 * IDT setup and the C side of every interrupt: PIC IRQs go to lib/irq.c; an exception the
 * test announced with expect_exception() at an ASM_TRY site resumes at its recovery label;
 * any other exception is printed and ends the kernel as a failure.
 */
#include "internal.h"

/* Gate descriptors (SDM Vol. 3A 6.11 and 6.14.1). */
#ifdef __x86_64__
struct idt_gate {
	u16 offset_low, selector;
	u8 ist, type_attr;
	u16 offset_mid;
	u32 offset_high, reserved;
} PACKED;
#define SEL_CODE SEL_CODE64
#else
struct idt_gate {
	u16 offset_low, selector;
	u8 zero, type_attr;
	u16 offset_high;
} PACKED;
#define SEL_CODE SEL_CODE32
#endif

/* Present, DPL 0, 32/64-bit interrupt gate (IF cleared on entry). */
#define GATE_INTERRUPT 0x8e

/* One entry per ASM_TRY: a faulting instruction and where to resume after it. */
struct ex_table_entry {
	unsigned long fault_ip, recovery_ip;
};

extern const unsigned long isr_stub_table[NR_IDT_VECTORS];
extern const struct ex_table_entry __ex_table_start[], __ex_table_end[];

static struct idt_gate idt[NR_IDT_VECTORS] __attribute__((aligned(16)));
static volatile int armed_vector = -1;
volatile struct exception_record last_exception = { .vector = -1 };
bool (*exception_hook)(struct intr_frame *frame);

static void set_gate(unsigned int vector, unsigned long handler)
{
	struct idt_gate *g = &idt[vector];

	g->offset_low = handler & 0xffff;
	g->selector = SEL_CODE;
	g->type_attr = GATE_INTERRUPT;
#ifdef __x86_64__
	g->offset_mid = (handler >> 16) & 0xffff;
	g->offset_high = (u64)handler >> 32;
#else
	g->offset_high = handler >> 16;
#endif
}

void trap_init(void)
{
	struct descriptor_ptr p = { .limit = sizeof(idt) - 1, .base = (unsigned long)idt };

	for (unsigned int v = 0; v < NR_IDT_VECTORS; v++)
		set_gate(v, isr_stub_table[v]);
	lidt(&p);
}

void expect_exception(int vector)
{
	last_exception.vector = -1;
	armed_vector = vector;
	asm volatile("" ::: "memory");
}

bool exception_caught(void)
{
	asm volatile("" ::: "memory");
	armed_vector = -1;
	return last_exception.vector != -1;
}

static unsigned long find_recovery(unsigned long ip)
{
	for (const struct ex_table_entry *e = __ex_table_start; e < __ex_table_end; e++)
		if (e->fault_ip == ip)
			return e->recovery_ip;
	return 0;
}

static const char *exception_name(unsigned long vector)
{
	static const char *const names[] = {
		"#DE", "#DB", "NMI", "#BP", "#OF", "#BR", "#UD", "#NM", "#DF", "CSO",
		"#TS", "#NP", "#SS", "#GP", "#PF", "reserved", "#MF", "#AC", "#MC", "#XM",
		"#VE", "#CP",
	};

	return vector < ARRAY_SIZE(names) ? names[vector] : "reserved";
}

static void __attribute__((noreturn)) unexpected_exception(struct intr_frame *f)
{
	printf("EXCEPTION: vector %lu (%s), error code %#lx, %s %#lx",
	       f->vector, exception_name(f->vector), f->error_code,
	       sizeof(long) == 8 ? "RIP" : "EIP", f->ip);
	if (f->vector == PF_VECTOR)
		printf(", CR2 %#lx", read_cr2());
	printf("\n");
	if (armed_vector == (int)f->vector)
		printf("(expected, but that instruction has no ASM_TRY recovery address)\n");
	report(false, "unexpected exception %s", exception_name(f->vector));
	exit(report_summary());
}

void interrupt_dispatch(struct intr_frame *f)
{
	if (f->vector >= IRQ_VECTOR_BASE) {
		irq_dispatch(f->vector - IRQ_VECTOR_BASE);
		return;
	}
	if (exception_hook && exception_hook(f))
		return;
	if (armed_vector == (int)f->vector || (armed_vector == ANY_VECTOR && f->vector < 32)) {
		unsigned long recovery = find_recovery(f->ip);

		if (recovery) {
			last_exception.error_code = f->error_code;
			last_exception.ip = f->ip;
			last_exception.vector = f->vector;
			armed_vector = -1;	/* one exception per expect_exception() */
			f->ip = recovery;
			return;
		}
	}
	unexpected_exception(f);
}
