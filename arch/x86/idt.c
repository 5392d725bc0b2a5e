/*
 * IDT and the exception handler. An exception in the hypervisor is a bug:
 * print everything needed to find it (vector, error code, RIP, CR2, GPRs),
 * then panic. Stub code lives in isr.S, 16 bytes per vector.
 */
#include "arch/x86/idt.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"
#include "arch/x86/panic.h"

#define STUB_SIZE 16
#define SPURIOUS_STUB 32
#define IST_DOUBLE_FAULT 1
#define IST_NMI 2
#define IST_MACHINE_CHECK 3

struct idt_gate {
	u16 offset_low;
	u16 selector;
	u8 ist;
	u8 type_attr;
	u16 offset_mid;
	u32 offset_high;
	u32 reserved;
} PACKED;

extern const u8 isr_stub_table[];
static struct idt_gate idt[256] __attribute__((aligned(16)));

static const char *const exception_names[32] = {
	"#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow",
	"#BR bound", "#UD invalid opcode", "#NM no math", "#DF double fault",
	"coprocessor overrun", "#TS invalid TSS", "#NP not present", "#SS stack fault",
	"#GP general protection", "#PF page fault", "reserved 15", "#MF x87 error",
	"#AC alignment check", "#MC machine check", "#XM SIMD error", "#VE virtualization",
	"#CP control protection",
};

static void set_gate(int vec, const void *handler, int ist)
{
	u64 addr = (u64)handler;

	idt[vec] = (struct idt_gate){
		.offset_low = addr & 0xffff,
		.selector = SEL_CODE64,
		.ist = (u8)ist,
		.type_attr = 0x8e,  /* present, DPL 0, 64-bit interrupt gate */
		.offset_mid = (addr >> 16) & 0xffff,
		.offset_high = (u32)(addr >> 32),
	};
}

void idt_init(void)
{
	for (int v = 0; v < 256; v++) {
		int stub = v < 32 ? v : SPURIOUS_STUB;
		int ist = v == 8 ? IST_DOUBLE_FAULT : v == 2 ? IST_NMI : v == 18 ? IST_MACHINE_CHECK : 0;

		set_gate(v, isr_stub_table + stub * STUB_SIZE, ist);
	}
	idt_load();
}

/* All CPUs share the IDT; each TSS has its own IST stacks. */
void idt_load(void)
{
	struct descriptor_ptr ptr = { sizeof(idt) - 1, (u64)idt };

	lidt(&ptr);
}

void exception_dispatch(struct trap_frame *f);

void exception_dispatch(struct trap_frame *f)
{
	const char *name = f->vector < 32 && exception_names[f->vector] ?
				   exception_names[f->vector] : "unexpected interrupt";

	log_printf("hv", "EXCEPTION %llu (%s) error code %#llx in the hypervisor",
		   (unsigned long long)f->vector, name, (unsigned long long)f->error_code);
	console_printf("  RIP %016llx CS %04llx RFLAGS %016llx RSP %016llx CR2 %016llx\n",
		       (unsigned long long)f->rip, (unsigned long long)f->cs,
		       (unsigned long long)f->rflags, (unsigned long long)f->rsp,
		       (unsigned long long)read_cr2());
	console_printf("  RAX %016llx RBX %016llx RCX %016llx RDX %016llx\n",
		       (unsigned long long)f->rax, (unsigned long long)f->rbx,
		       (unsigned long long)f->rcx, (unsigned long long)f->rdx);
	console_printf("  RSI %016llx RDI %016llx RBP %016llx R8  %016llx\n",
		       (unsigned long long)f->rsi, (unsigned long long)f->rdi,
		       (unsigned long long)f->rbp, (unsigned long long)f->r8);
	console_printf("  R9  %016llx R10 %016llx R11 %016llx R12 %016llx\n",
		       (unsigned long long)f->r9, (unsigned long long)f->r10,
		       (unsigned long long)f->r11, (unsigned long long)f->r12);
	console_printf("  R13 %016llx R14 %016llx R15 %016llx CR3 %016llx\n",
		       (unsigned long long)f->r13, (unsigned long long)f->r14,
		       (unsigned long long)f->r15, (unsigned long long)read_cr3());
	panic("unhandled exception %llu at RIP %#llx", (unsigned long long)f->vector,
	      (unsigned long long)f->rip);
}
