/*
 * Ring 3 for the paging tests: a GDT with user segments and a TSS (the stack a CPL3 -> CPL0
 * switch lands on), an `int` gate user code may call to come back, and probe(): one access
 * at CPL0 or CPL3 whose #PF is caught with its error code and CR2 (lib/paging.h). Also the
 * hook that passes other page faults to a test's handler (copy-on-write).
 */
#include "paging.h"
#include "usermode.h"

#define TRAP_STACK_SIZE 8192
#define TSS_DESC_TYPE 0x89ull		/* present, DPL0, available 32/64-bit TSS */
#define GATE_DPL3 0x60			/* DPL bits of an IDT gate's type/attribute byte */
#define GATE_ATTR_BYTE 5		/* same offset in 32-bit and 64-bit gates */

#ifdef __x86_64__
#define FRAME_AX(f) ((f)->rax)
struct tss {
	u32 reserved0;
	u64 rsp0, rsp1, rsp2, reserved1, ist[7], reserved2;
	u16 reserved3, iomap_base;
} PACKED;
#define GATE_SIZE 16
#else
#define FRAME_AX(f) ((f)->eax)
struct tss {
	u32 link, esp0, ss0, esp1, ss1, esp2, ss2, cr3, eip, eflags;
	u32 eax, ecx, edx, ebx, esp, ebp, esi, edi, es, cs, ss, ds, fs, gs, ldt;
	u16 trap, iomap_base;
} PACKED;
#define GATE_SIZE 8
#endif
_Static_assert(sizeof(struct tss) == 104, "TSS layout (SDM Vol. 3A 8.2.1, 8.7)");

/* lib/usermode.S */
extern const char __user_text_begin[], __user_text_end[];
extern const char kprobe_read[], kprobe_write[], kprobe_exec[], kprobe_ret[];
extern const char uprobe_read[], uprobe_write[], uprobe_exec[], uprobe_ret[];
unsigned long user_enter(unsigned long stub, unsigned long ax, unsigned long cx,
			 unsigned long user_sp);
void user_leave(unsigned long result) __attribute__((noreturn));

/* Page-sized and page-aligned: nothing else shares the page paging.c makes user-accessible. */
static u8 user_stack[PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static u8 trap_stack[TRAP_STACK_SIZE] __attribute__((aligned(16)));
static struct tss tss __attribute__((aligned(16)));
static u64 gdt[GDT_ENTRIES] __attribute__((aligned(8)));

static volatile struct {
	bool armed, faulted;
	unsigned long fault_ip;		/* the stub's access, or the fetched address */
	unsigned long recovery;
	unsigned long error_code, cr2;
} probe_state;

static bool (*page_fault_handler)(struct intr_frame *frame, unsigned long cr2);

unsigned long user_text_begin(void)
{
	return (unsigned long)__user_text_begin;
}

unsigned long user_text_end(void)
{
	return (unsigned long)__user_text_end;
}

unsigned long user_stack_page(void)
{
	return (unsigned long)user_stack;
}

void set_page_fault_handler(bool (*handler)(struct intr_frame *frame, unsigned long cr2))
{
	page_fault_handler = handler;
}

static bool usermode_exception(struct intr_frame *f)
{
	unsigned long cr2;

	if (f->vector == USER_RETURN_VECTOR && (f->cs & 3) == 3)
		user_leave(FRAME_AX(f));
	if (f->vector != PF_VECTOR)
		return false;
	cr2 = read_cr2();
	/* First the test's handler: a fault it fixes (copy-on-write) is no probe result. */
	if (page_fault_handler && page_fault_handler(f, cr2))
		return true;
	if (probe_state.armed && f->ip == probe_state.fault_ip) {
		probe_state.armed = false;
		probe_state.faulted = true;
		probe_state.error_code = f->error_code;
		probe_state.cr2 = cr2;
		f->ip = probe_state.recovery;
		return true;
	}
	return false;
}

static u64 segment_descriptor(u64 base, u32 limit, u64 type)
{
	return (limit & 0xffff) | ((base & 0xffffff) << 16) | (type << 40) |
	       ((u64)((limit >> 16) & 0xf) << 48) | (((base >> 24) & 0xff) << 56);
}

void usermode_init(void)
{
	struct descriptor_ptr old, p;
	u64 tss_base = (unsigned long)&tss;

	/* Keep the library's null, code32, data and code64 descriptors at their selectors. */
	asm volatile("sgdt %0" : "=m"(old));
	memcpy(gdt, (const void *)old.base, (SEL_CODE64 / 8 + 1) * sizeof(u64));
	gdt[SEL_UCODE32 / 8] = 0x00cffa000000ffffull;	/* DPL3 flat code, D=1 */
	gdt[SEL_UDATA / 8] = 0x00cff2000000ffffull;	/* DPL3 flat data */
	gdt[SEL_UCODE64 / 8] = 0x00affa000000ffffull;	/* DPL3 code, L=1 */
	gdt[SEL_TSS / 8] = segment_descriptor(tss_base, sizeof(tss) - 1, TSS_DESC_TYPE);
	gdt[SEL_TSS / 8 + 1] = tss_base >> 32;	/* 64-bit TSS descriptors are 16 bytes */

#ifdef __x86_64__
	tss.rsp0 = (unsigned long)trap_stack + TRAP_STACK_SIZE;
#else
	tss.esp0 = (unsigned long)trap_stack + TRAP_STACK_SIZE;
	tss.ss0 = SEL_DATA;
#endif
	tss.iomap_base = sizeof(tss);	/* no I/O bitmap: CPL3 port accesses #GP */

	p.limit = sizeof(gdt) - 1;
	p.base = (unsigned long)gdt;
	asm volatile("lgdt %0" : : "m"(p));
	asm volatile("ltr %w0" : : "r"(SEL_TSS));

	/* `int $USER_RETURN_VECTOR` from CPL3 needs a DPL3 gate (SDM Vol. 3A 6.12.1.1). */
	sidt(&p);
	((u8 *)p.base)[USER_RETURN_VECTOR * GATE_SIZE + GATE_ATTR_BYTE] |= GATE_DPL3;
	exception_hook = usermode_exception;
}

static unsigned long kernel_call(unsigned long stub, unsigned long ax, unsigned long cx, bool ac)
{
	if (ac)
		stac();
	asm volatile("call *%[stub]" : "+a"(ax), "+c"(cx) : [stub] "r"(stub) : "memory", "cc");
	if (ac)
		clac();
	return ax;
}

struct probe_result probe(unsigned long va, enum probe_access access, int cpl, bool ac,
			  unsigned long value)
{
	static const char *const kernel_stubs[] = { kprobe_read, kprobe_write, kprobe_exec };
	static const char *const user_stubs[] = { uprobe_read, uprobe_write, uprobe_exec };
	unsigned long stub = (unsigned long)(cpl ? user_stubs : kernel_stubs)[access];
	struct probe_result r = { .faulted = false };
	unsigned long result;

	probe_state.fault_ip = access == PROBE_EXEC ? va : stub;
	probe_state.recovery = (unsigned long)(cpl ? uprobe_ret : kprobe_ret);
	probe_state.faulted = false;
	probe_state.armed = true;
	if (cpl)
		result = user_enter(stub, va, value, user_stack_page() + PAGE_SIZE);
	else
		result = kernel_call(stub, va, value, ac);
	probe_state.armed = false;
	if (probe_state.faulted) {
		r.faulted = true;
		r.error_code = probe_state.error_code;
		r.cr2 = probe_state.cr2;
	} else if (access == PROBE_READ) {
		r.value = result;
	}
	return r;
}
