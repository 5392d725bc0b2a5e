/*
 * Event delivery as the CPU does it (SDM Vol. 3A ch. 6, Vol. 3C 27.2.4, 27.6), through
 * exceptions the hypervisor raises, instructions it completes and deliveries an exit cuts
 * short. 64-bit, 4-level paging from lib/paging.c; the same results are expected under EPT
 * (the CPU delivers) and shadow paging (the hypervisor sees a #PF in the middle):
 *   - RF is set in the RFLAGS image of faults (#GP from WRMSR and RDMSR, #UD from VMXON and
 *     UD2, #PF), clear for the INT3 trap (SDM 6.5, 18.3.1.1; kvm-unit-tests idt_test);
 *   - a single step (TF) over an instruction that exits (CPUID, IN, OUT, RDMSR, WBINVD, HLT)
 *     traps after it, with DR6.BS (SDM 18.3.1.4; kvm-unit-tests debug); REP INSB traps after
 *     each iteration;
 *   - NMIs sent through the ICR to self (shorthand self, physical own ID) arrive with IF=0,
 *     once; one sent inside the handler waits for its IRET (kvm-unit-tests eventinj);
 *   - INT3, #UD, #GP with its error code, an APIC interrupt and an NMI are delivered exactly
 *     once through an IDT and a stack that were mapped just before (a shadow MMU has not seen
 *     them: the delivery faults in the hypervisor and is redone);
 *   - an interrupt whose delivery pushes onto a page that is also a live page table arrives
 *     once, before the instruction it interrupted, which runs once;
 *   - a #PF while delivering a #PF (the IDT entry of #PF on a not-present page) is a #DF
 *     with error code 0 and CR2 at that entry (SDM Table 6-5).
 * QEMU's TCG sets no RF in fault frames and loses single-step traps around a HLT that an
 * interrupt ends: those checks are umbra's (report_umbra). With `triple` on the command line: the #DF entry is on that page too: a triple fault must
 * end this guest (and nothing after it may run).
 */
#include "libguest.h"
#include "paging.h"
#include "platform.h"

#define RFLAGS_TF BIT(8)
#define RFLAGS_RF BIT(16)
#define DR6_BS BIT(14)
#define NMI_VECTOR 2
#define IPI_VECTOR 0x40          /* counted by a plain APIC handler */
#define RIP_VECTOR 0x41          /* through rip_stub: records the interrupted RIP */
#define TIMER_VECTOR 0x42
#define ICR_FIXED 0x0000
#define ICR_NMI 0x0400
#define ICR_ASSERT 0x4000
#define BAD_SELECTOR 0x78        /* past the library's GDT: #GP(0x78) */
#define MMIO_PAGE 0xff000000ul   /* pc-testdev's RAM-like MMIO page */

struct gate64 {
	u16 offset_low, selector;
	u8 ist, type_attr;
	u16 offset_mid;
	u32 offset_high, reserved;
} PACKED;

static struct descriptor_ptr kernel_idt;

/* ---- what the handlers saw ------------------------------------------------------------ */

static volatile struct {
	unsigned long count, ip, flags, error_code, cr2;
} seen[32];
#define MAX_DB 16
static volatile unsigned long db_ip[MAX_DB], db_dr6[MAX_DB];
static volatile unsigned int db_count;
static volatile unsigned int nmi_count, nmi_seen_inside;
static volatile bool nmi_nest;
static volatile unsigned int ipi_count, timer_count;
static volatile unsigned long df_resume;   /* where a #DF continues */
static volatile unsigned long df_idt_page; /* the page to map back */

/* lib-side records of rip_stub (below). */
volatile unsigned long rip_stub_ip;
volatile unsigned int rip_stub_count;

static unsigned long read_dr6(void)
{
	unsigned long v;

	asm volatile("mov %%dr6, %0" : "=r"(v));
	return v;
}

static void write_dr6(unsigned long v)
{
	asm volatile("mov %0, %%dr6" : : "r"(v));
}

static void send_ipi(u32 icr_low, u32 dest)
{
	apic_write(APIC_ICR_HIGH, dest << 24);
	apic_write(APIC_ICR_LOW, icr_low);
}

/* A few exits' worth of time: I/O to an unassigned port. */
static void io_delay(unsigned int n)
{
	while (n--)
		inb(0x80);
}

static void *pte_of(unsigned long va)
{
	return pte_lookup(read_cr3(), va, LEVEL_PTE);
}

static void set_present(unsigned long va, bool present)
{
	u64 *pte = pte_of(va);

	pte_set(pte, present ? pte_get(pte) | PTE_P : pte_get(pte) & ~PTE_P);
	invlpg(va);
}

static void nmi_handler(void)
{
	nmi_count++;
	if (nmi_nest && nmi_count == 1) {
		/* Physical destination = our own APIC ID, as kvm-unit-tests sends it. */
		send_ipi(ICR_NMI | ICR_ASSERT, apic_read(APIC_ID) >> 24);
		io_delay(20);
		nmi_seen_inside = nmi_count;  /* blocked until our IRET */
	}
}

static bool hook(struct intr_frame *f)
{
	unsigned long v = f->vector;

	seen[v].count++;
	seen[v].ip = f->ip;
	seen[v].flags = f->flags;
	seen[v].error_code = f->error_code;
	if (v == PF_VECTOR || v == DF_VECTOR)
		seen[v].cr2 = read_cr2();
	switch (v) {
	case DB_VECTOR:
		if (db_count < MAX_DB) {
			db_ip[db_count] = f->ip;
			db_dr6[db_count] = read_dr6();
		}
		db_count++;
		write_dr6(0);
		return true;
	case NMI_VECTOR:
		nmi_handler();
		return true;
	case BP_VECTOR:
		return true;  /* a trap: resume after INT3 */
	case DF_VECTOR:
		/* An abort: its saved RIP means nothing (SDM 6.15). Put the IDT back
		 * and continue where the test said. */
		if (!df_resume)
			return false;
		set_present(df_idt_page, true);
		lidt(&kernel_idt);
		f->ip = df_resume;
		df_resume = 0;
		return true;
	}
	return false;  /* the library: ASM_TRY recovery, or an unexpected exception */
}

static void count_ipi(unsigned int vector)
{
	(void)vector;
	ipi_count++;
	apic_eoi();
}

static void count_timer(unsigned int vector)
{
	(void)vector;
	timer_count++;
	apic_eoi();
}

/* An interrupt gate to a handler of our own (the library's IDT stays otherwise as is). */
static void set_gate(struct descriptor_ptr *idt, unsigned int vector, void (*handler)(void))
{
	struct gate64 *g = (struct gate64 *)idt->base + vector;
	unsigned long h = (unsigned long)handler;

	g->offset_low = h & 0xffff;
	g->offset_mid = (h >> 16) & 0xffff;
	g->offset_high = h >> 32;
}

/* Records the RIP an interrupt was taken at, then EOI. */
void rip_stub(void);
asm(".text\n"
    "rip_stub:\n\t"
    "push %rax\n\t"
    "mov 8(%rsp), %rax\n\t"
    "mov %rax, rip_stub_ip(%rip)\n\t"
    "incl rip_stub_count(%rip)\n\t"
    "mov $0xfee000b0, %rax\n\t"
    "movl $0, (%rax)\n\t"
    "pop %rax\n\t"
    "iretq\n");

/* ---- RF in the frames of faults ------------------------------------------------------- */

static void check_rf(void)
{
	unsigned long region = 0, va = paging_test_base() + 0x300000;

	expect_exception(GP_VECTOR);
	asm volatile(ASM_TRY("1f") "wrmsr\n1:" : : "c"(MSR_IA32_FEATURE_CONTROL), "a"(0), "d"(0));
	report_umbra(exception_caught() && (seen[GP_VECTOR].flags & RFLAGS_RF),
		     "#GP from WRMSR of IA32_FEATURE_CONTROL: RF set in the pushed RFLAGS");

	expect_exception(GP_VECTOR);
	asm volatile(ASM_TRY("1f") "rdmsr\n1:" : : "c"(MSR_IA32_VMX_BASIC) : "rax", "rdx");
	report_umbra(exception_caught() && (seen[GP_VECTOR].flags & RFLAGS_RF),
		     "#GP from RDMSR of IA32_VMX_BASIC (no VMX in CPUID): RF set");

	expect_exception(UD_VECTOR);
	asm volatile(ASM_TRY("1f") "vmxon (%0)\n1:" : : "r"(&region) : "memory");
	report_umbra(exception_caught() && (seen[UD_VECTOR].flags & RFLAGS_RF),
		     "#UD from VMXON: RF set");

	expect_exception(UD_VECTOR);
	asm volatile(ASM_TRY("1f") "ud2\n1:");
	report_umbra(exception_caught() && (seen[UD_VECTOR].flags & RFLAGS_RF), "#UD from UD2: RF set");

	expect_exception(PF_VECTOR);
	asm volatile(ASM_TRY("1f") "mov (%0), %%al\n1:" : : "r"(va) : "rax");
	report_umbra(exception_caught() && (seen[PF_VECTOR].flags & RFLAGS_RF) &&
		     seen[PF_VECTOR].cr2 == va && seen[PF_VECTOR].error_code == 0,
		     "#PF reading a not-present page: RF set, CR2 and error code 0");

	seen[BP_VECTOR].count = 0;
	asm volatile("int3");
	report(seen[BP_VECTOR].count == 1 && !(seen[BP_VECTOR].flags & RFLAGS_RF),
	       "INT3 is a trap: RF clear");
}

/* ---- single-step over instructions that exit -------------------------------------------- */

extern const char ss_1[], ss_2[], ss_3[], ss_4[], ss_5[], ss_6[], ss_7[], ss_8[], ss_9[], ss_10[];
extern const char hs_1[], hs_2[], hs_3[], hs_4[], hs_5[], hs_6[];
extern const char rs_1[], rs_2[], rs_3[], rs_4[], rs_5[];

static bool db_list_is(const char *const *want, unsigned int n, const char *what)
{
	bool ok = db_count == n;

	for (unsigned int i = 0; ok && i < n; i++)
		ok = db_ip[i] == (unsigned long)want[i] && (db_dr6[i] & DR6_BS);
	if (!ok) {
		printf("%s: %u #DB (expected %u):", what, db_count, n);
		for (unsigned int i = 0; i < db_count && i < MAX_DB; i++)
			printf(" %#lx/%#lx", db_ip[i], db_dr6[i]);
		printf("\n");
	}
	return ok;
}

static void __attribute__((noipa)) step_exits(void)
{
	static const char *const want[] = { ss_1, ss_2, ss_3, ss_4, ss_5, ss_6, ss_7, ss_8, ss_9,
					    ss_10 };

	db_count = 0;
	write_dr6(0);
	asm volatile("mov $0x10, %%esi\n\t"
		     "xor %%eax, %%eax\n\t"
		     "pushf\n\t"
		     "orq $0x100, (%%rsp)\n\t"
		     "popf\n\t"                 /* TF from the next instruction on */
		     "cpuid\n"
		     "ss_1: mov $0x3fd, %%edx\n"
		     "ss_2: inb %%dx, %%al\n"
		     "ss_3: outl %%eax, $0xe0\n"
		     "ss_4: mov %%esi, %%ecx\n"
		     "ss_5: rdmsr\n"
		     "ss_6: wbinvd\n"
		     "ss_7: pushf\n"
		     "ss_8: andq $~0x100, (%%rsp)\n"
		     "ss_9: popf\n"
		     "ss_10:"
		     : : : "rax", "rbx", "rcx", "rdx", "rsi", "memory", "cc");
	report(db_list_is(want, ARRAY_SIZE(want), "step over exits"),
	       "single-step over CPUID, IN, OUT, RDMSR, WBINVD: a #DB with DR6.BS after each");
}

static void __attribute__((noipa)) step_hlt(void)
{
	static const char *const want[] = { hs_1, hs_2, hs_3, hs_4, hs_5, hs_6 };

	/* A one-shot timer wakes the HLT where the CPU really sleeps. */
	apic_write(APIC_LVT_TIMER, TIMER_VECTOR | APIC_TIMER_ONESHOT);
	apic_write(APIC_TIMER_DIVIDE, APIC_TIMER_DIVIDE_1);
	apic_write(APIC_TIMER_INITIAL, 100000);
	db_count = 0;
	write_dr6(0);
	asm volatile("pushf\n\t"
		     "orq $0x100, (%%rsp)\n\t"
		     "popf\n\t"
		     "sti\n"
		     "hs_1: hlt\n"
		     "hs_2: cli\n"
		     "hs_3: pushf\n"
		     "hs_4: andq $~0x100, (%%rsp)\n"
		     "hs_5: popf\n"
		     "hs_6:" : : : "memory", "cc");
	report_umbra(db_list_is(want, ARRAY_SIZE(want), "step over HLT"),
		     "single-step over STI;HLT: a #DB after HLT");
	sti();
	while (!timer_count)
		pause();
	cli();
}

static void __attribute__((noipa)) step_rep_ins(void)
{
	static const char *const want[] = { rs_1, rs_1, rs_1, rs_2, rs_3, rs_4, rs_5 };
	u8 buf[4] = { 0 };
	unsigned long di = (unsigned long)buf, cx = 3;

	db_count = 0;
	write_dr6(0);
	asm volatile("pushf\n\t"
		     "orq $0x100, (%%rsp)\n\t"
		     "popf\n\t"
		     "nop\n"
		     "rs_1: rep insb\n"
		     "rs_2: pushf\n"
		     "rs_3: andq $~0x100, (%%rsp)\n"
		     "rs_4: popf\n"
		     "rs_5:" : "+D"(di), "+c"(cx) : "d"(0x210) : "memory", "cc");
	report_umbra(db_list_is(want, ARRAY_SIZE(want), "step over REP INSB") && cx == 0 &&
		     buf[2] == 0xff && buf[3] == 0,
		     "single-step over REP INSB x3: a #DB after each iteration");
}

/* ---- NMIs ----------------------------------------------------------------------------- */

static void check_nmi(void)
{
	cli();
	nmi_count = 0;
	send_ipi(ICR_NMI | ICR_ASSERT | APIC_ICR_DEST_SELF, 0);
	io_delay(4);
	report(nmi_count == 1, "NMI to self (shorthand) with IF=0: delivered (%u)", nmi_count);
	io_delay(20);
	report(nmi_count == 1, "... exactly once");

	nmi_count = 0;
	send_ipi(ICR_NMI | ICR_ASSERT | APIC_ICR_DEST_ALL_INCL_SELF, 0);
	io_delay(4);
	report(nmi_count == 1, "NMI to all including self: delivered once (%u)", nmi_count);

	nmi_count = 0;
	nmi_nest = true;
	send_ipi(ICR_NMI | ICR_ASSERT, apic_read(APIC_ID) >> 24);
	io_delay(20);
	nmi_nest = false;
	report(nmi_seen_inside == 1 && nmi_count == 2,
	       "NMI sent inside the NMI handler waits for its IRET, then arrives (%u inside, %u)",
	       nmi_seen_inside, nmi_count);
}

/* ---- delivery through mappings made just before ----------------------------------------- */

/* An IDT copy and a stack in a page table of their own, linked last (a shadow MMU knows
 * nothing of them). Returns the window's address: IDT at +0, stack below +2 pages. */
static unsigned long fresh_window(unsigned int round)
{
	unsigned long va = paging_test_base() + (unsigned long)(round + 8) * (2ul << 20);
	u64 pt = alloc_frame(), idt = alloc_frame(), stack = alloc_frame();
	u64 *ptes = phys_to_virt(pt);

	memcpy(phys_to_virt(idt), (void *)kernel_idt.base, kernel_idt.limit + 1);
	ptes[0] = idt | PTE_P | PTE_W;
	ptes[1] = stack | PTE_P | PTE_W;
	/* A throwaway mapping creates the page directory; then our table goes in. */
	map_page(read_cr3(), va + 0x100000, alloc_frame(), PTE_P | PTE_W, LEVEL_PTE);
	pte_set(pte_lookup(read_cr3(), va, LEVEL_PDE), pt | PTE_P | PTE_W);
	flush_tlb();
	return va;
}

enum fresh_event { EV_INT3, EV_UD, EV_GP, EV_IPI, EV_NMI, EV_COUNT };
static const char *const fresh_names[] = { "INT3", "#UD (UD2)", "#GP(0x78) (MOV DS)",
					   "an APIC interrupt", "an NMI" };

static void __attribute__((noipa)) raise_on_stack(enum fresh_event ev, unsigned long stack)
{
	unsigned long saved;

	switch (ev) {
	case EV_INT3:
		asm volatile("mov %%rsp, %0; mov %1, %%rsp; int3; mov %0, %%rsp"
			     : "=&r"(saved) : "r"(stack) : "memory");
		break;
	case EV_UD:
		expect_exception(UD_VECTOR);
		asm volatile("mov %%rsp, %0; mov %1, %%rsp\n\t" ASM_TRY("1f") "ud2\n"
			     "1: mov %0, %%rsp" : "=&r"(saved) : "r"(stack) : "memory");
		exception_caught();
		break;
	case EV_GP:
		expect_exception(GP_VECTOR);
		asm volatile("mov %%rsp, %0; mov %1, %%rsp\n\t" ASM_TRY("1f") "mov %w2, %%ds\n"
			     "1: mov %0, %%rsp" : "=&r"(saved) : "r"(stack), "r"(BAD_SELECTOR)
			     : "memory");
		exception_caught();
		break;
	case EV_IPI:  /* pending with IF=0, taken after the NOP on this stack */
		send_ipi(ICR_FIXED | ICR_ASSERT | APIC_ICR_DEST_SELF | IPI_VECTOR, 0);
		asm volatile("mov %%rsp, %0; mov %1, %%rsp; sti; nop; cli; mov %0, %%rsp"
			     : "=&r"(saved) : "r"(stack) : "memory");
		break;
	case EV_NMI:  /* the ICR write in the same block: the NMI comes on this stack */
		asm volatile("mov %%rsp, %0; mov %1, %%rsp; movl $0, (%2); movl %4, (%3);"
			     "mov %0, %%rsp"
			     : "=&r"(saved)
			     : "r"(stack), "r"(APIC_DEFAULT_BASE + APIC_ICR_HIGH),
			       "r"(APIC_DEFAULT_BASE + APIC_ICR_LOW),
			       "r"(ICR_NMI | ICR_ASSERT | APIC_ICR_DEST_SELF)
			     : "memory");
		break;
	case EV_COUNT:
		break;
	}
}

static void check_fresh_mappings(void)
{
	for (int ev = 0; ev < EV_COUNT; ev++) {
		unsigned long va = fresh_window((unsigned int)ev);
		struct descriptor_ptr idt = { .limit = kernel_idt.limit, .base = va };
		unsigned int before_ud = seen[UD_VECTOR].count, before_gp = seen[GP_VECTOR].count;
		unsigned int before_bp = seen[BP_VECTOR].count;
		bool ok;

		ipi_count = 0;
		nmi_count = 0;
		cli();
		lidt(&idt);
		raise_on_stack((enum fresh_event)ev, va + 2 * PAGE_SIZE - 64);
		lidt(&kernel_idt);
		switch (ev) {
		case EV_INT3: ok = seen[BP_VECTOR].count == before_bp + 1; break;
		case EV_UD: ok = seen[UD_VECTOR].count == before_ud + 1; break;
		case EV_GP:
			ok = seen[GP_VECTOR].count == before_gp + 1 &&
			     seen[GP_VECTOR].error_code == BAD_SELECTOR;
			break;
		case EV_IPI: ok = ipi_count == 1; break;
		default: ok = nmi_count == 1; break;
		}
		report(ok, "%s through an IDT and a stack mapped just before: delivered once",
		       fresh_names[ev]);
	}
}

/* ---- an interrupt pushed onto a live page table ------------------------------------------ */

extern const char pt_incl[];

static void __attribute__((noipa)) check_stack_in_page_table(void)
{
	unsigned long va = paging_test_base() + 0x400000, saved;
	volatile unsigned int counter = 0;
	u64 table;
	unsigned long stack;

	map_page(read_cr3(), va, alloc_frame(), PTE_P | PTE_W, LEVEL_PTE);
	table = pte_addr(pte_get(pte_lookup(read_cr3(), va, LEVEL_PDE)));
	(void)*(volatile u8 *)va;        /* the table is in use: a shadow MMU protects it */
	stack = (unsigned long)phys_to_virt(table) + PAGE_SIZE - 64;
	rip_stub_count = 0;
	cli();
	send_ipi(ICR_FIXED | ICR_ASSERT | APIC_ICR_DEST_SELF | RIP_VECTOR, 0);
	/* Taken after the NOP (STI shadow), so before INCL. */
	asm volatile("mov %%rsp, %0\n\t"
		     "mov %1, %%rsp\n\t"
		     "sti\n\t"
		     "nop\n"
		     "pt_incl: incl (%2)\n\t"
		     "cli\n\t"
		     "mov %0, %%rsp"
		     : "=&r"(saved) : "r"(stack), "r"(&counter) : "memory");
	report(rip_stub_count == 1 && rip_stub_ip == (unsigned long)pt_incl && counter == 1,
	       "interrupt pushed onto a live page table: taken once (%u) at the INCL (RIP %#lx, "
	       "expected %p), which ran once (%u)", rip_stub_count, rip_stub_ip, pt_incl,
	       counter);
	/* The page is still a working table. */
	*(volatile u8 *)va = 0x5a;
	report(*(volatile u8 *)va == 0x5a, "... and that table still maps its page");
}

/* ---- #PF during #PF delivery: #DF, or a triple fault ------------------------------------- */

/*
 * An IDT copy across two pages, the second not present: entries from `first_missing` on
 * live there. A #PF then faults reading its gate.
 */
static unsigned long split_idt(unsigned int first_missing)
{
	unsigned long va = paging_test_base() + 0x600000;
	u64 a = alloc_frame(), b = alloc_frame();
	unsigned long base = va + PAGE_SIZE - first_missing * sizeof(struct gate64);

	map_page(read_cr3(), va, a, PTE_P | PTE_W, LEVEL_PTE);
	map_page(read_cr3(), va + PAGE_SIZE, b, PTE_P | PTE_W, LEVEL_PTE);
	flush_tlb();
	memcpy((void *)base, (void *)kernel_idt.base, kernel_idt.limit + 1);
	set_present(va + PAGE_SIZE, false);
	df_idt_page = va + PAGE_SIZE;
	return base;
}

static void __attribute__((noipa)) check_double_fault(bool triple)
{
	unsigned long unmapped = paging_test_base() + 0x700000;
	struct descriptor_ptr idt = { .limit = kernel_idt.limit };
	unsigned int pf_before = seen[PF_VECTOR].count;

	idt.base = split_idt(triple ? DF_VECTOR : PF_VECTOR);
	seen[DF_VECTOR].count = 0;
	if (triple)
		printf("EVENTS: #DF gate on a not-present page too: the next fault is a triple fault\n");
	cli();
	lidt(&idt);
	/* The #DF handler continues at 1: (a local label: this block may be duplicated). */
	asm volatile("lea 1f(%%rip), %%rax\n\t"
		     "mov %%rax, %0\n\t"
		     "mov (%1), %%al\n"
		     "1:" : "=m"(df_resume) : "r"(unmapped) : "rax", "memory");
	lidt(&kernel_idt);
	if (triple) {
		report(false, "the guest ran on after a triple fault");
		return;
	}
	report(seen[DF_VECTOR].count == 1 && seen[DF_VECTOR].error_code == 0 &&
	       seen[DF_VECTOR].cr2 == df_idt_page && seen[PF_VECTOR].count == pf_before,
	       "#PF while delivering #PF (its gate not present): #DF once (%lu), error code %#lx, "
	       "CR2 %#lx (expected %#lx)", seen[DF_VECTOR].count, seen[DF_VECTOR].error_code,
	       seen[DF_VECTOR].cr2, df_idt_page);
}

/* The first gates in emulated MMIO: a delivery through them cannot be emulated. */
static void idt_in_mmio(void)
{
	struct descriptor_ptr idt = { .limit = 8 * sizeof(struct gate64) - 1, .base = MMIO_PAGE };

	map_page(read_cr3(), MMIO_PAGE, MMIO_PAGE, PTE_P | PTE_W | PTE_PCD, LEVEL_PTE);
	memcpy((void *)MMIO_PAGE, (void *)kernel_idt.base, idt.limit + 1);
	printf("EVENTS: the IDT in the emulated MMIO page, then UD2\n");
	lidt(&idt);
	asm volatile("ud2");
	lidt(&kernel_idt);
	report(false, "the guest ran on after UD2 through an IDT in MMIO");
}

int main(void)
{
	bool triple = cmdline_has("triple");

	if (!paging_init(PAGING_LONG))
		return report_summary();
	/* The APIC page is not RAM: the identity map of RAM lacks it. */
	map_page(read_cr3(), APIC_DEFAULT_BASE, APIC_DEFAULT_BASE, PTE_P | PTE_W | PTE_PCD,
		 LEVEL_PTE);
	pic_init();  /* every 8259 line masked: a BIOS's PIT tick must not come in */
	apic_vectors_init();
	sidt(&kernel_idt);
	set_gate(&kernel_idt, RIP_VECTOR, rip_stub);
	apic_set_handler(IPI_VECTOR, count_ipi);
	apic_set_handler(TIMER_VECTOR, count_timer);
	apic_write(APIC_SVR, APIC_SVR_ENABLE | 0xff);
	exception_hook = hook;

	if (triple) {
		check_double_fault(true);
		return report_summary();
	}
	if (cmdline_has("idt_mmio")) {
		idt_in_mmio();
		return report_summary();
	}
	check_rf();
	step_exits();
	step_hlt();
	step_rep_ins();
	check_nmi();
	check_fresh_mappings();
	check_stack_in_page_table();
	check_double_fault(false);
	return report_summary();
}
