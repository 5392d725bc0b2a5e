/*
 * String I/O (REP INS/OUTS) at its edges, as the SDM defines it (Vol. 2B INS, OUTS, REP;
 * tests/guests/PLATFORM.md "Devices"). Built 32-bit (strio, with an addr16 prefix) and 64-bit
 * (strio64, with addr32), on 2- and 4-level paging from lib/paging.c:
 *   - the address size picks the count (CX/ECX/RCX) and the index (DI/EDI/RDI), which wrap at
 *     it; 16-bit writes keep the upper bits, 32-bit writes zero-extend;
 *   - elements across a page boundary, in both directions, from and to the port 0xe0 latch;
 *   - into and out of the emulated MMIO page at 0xff000000;
 *   - a #PF in the middle: CR2, error code, and the count and index registers exactly at the
 *     faulting element (both directions, a straddling element, OUTS);
 *   - INS into a live page-table entry: after INVLPG the new translation is used (a shadow
 *     MMU must see the write);
 *   - interrupts arrive during a long REP INSB, at the instruction (it runs in pieces);
 *   - 64-bit: a segment override (FS) on OUTS; IN EAX zero-extends into RAX.
 * Hostile cases (64-bit, command line): `huge` runs REP INSB with RCX = 2^39 over a 512 GiB
 * range aliased onto one page: it never ends, the hypervisor must end it at its time limit;
 * `oob` runs REP INSB into guest-physical memory past its RAM: the guest must be ended.
 */
#include "libguest.h"
#include "paging.h"
#include "platform.h"

#define SPARE_PORT 0x210        /* unassigned: reads all-ones */
#define LATCH_PORT 0xe0         /* pc-testdev: a 32-bit latch */
#define MMIO_PAGE 0xff000000ul  /* pc-testdev: RAM-like MMIO */
#define TIMER_VECTOR 0x60
#define LONG_STRING (64u << 10)

static u8 page_pair[2 * PAGE_SIZE] __attribute__((aligned(PAGE_SIZE)));
static u8 long_buf[LONG_STRING];

static bool all_bytes(const volatile u8 *p, size_t n, u8 v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

/* ---- count and index by address size -------------------------------------------------- */

static void check_address_size(void)
{
#ifdef __x86_64__
	u8 buf[8] = { 0 };
	unsigned long di = (unsigned long)buf, cx = (1ul << 32) + 4;

	asm volatile("addr32 rep insb" : "+D"(di), "+c"(cx) : "d"(SPARE_PORT) : "memory");
	report(all_bytes(buf, 4, 0xff) && all_bytes(buf + 4, 4, 0) && cx == 0 &&
	       di == (unsigned long)buf + 4,
	       "addr32 REP INSB with RCX = 2^32 + 4: ECX counts, 4 bytes, RCX %#lx, RDI +4", cx);
#else
	/* addr16: CX counts and DI wraps at 64 KiB, the upper halves stay. Address 0 through
	 * the identity map (hidden from the compiler, which assumes nothing lives there). */
	volatile u8 *low;
	u8 saved[4];
	unsigned long di = 0x1234fffe, cx = 0x10003;

	asm("" : "=r"(low) : "0"(0ul));
	memcpy(saved, (const u8 *)low + 0xfffe, 2);
	memcpy(saved + 2, (const u8 *)low, 2);
	low[0xfffe] = low[0xffff] = low[0] = low[1] = 0;
	asm volatile("addr16 rep insb" : "+D"(di), "+c"(cx) : "d"(SPARE_PORT) : "memory");
	report(low[0xfffe] == 0xff && low[0xffff] == 0xff && low[0] == 0xff && low[1] == 0 &&
	       cx == 0x10000 && di == 0x12340001,
	       "addr16 REP INSB with ECX = 0x10003, EDI = 0x1234fffe: CX counts 3, DI wraps to 1, "
	       "upper halves kept (ECX %#lx, EDI %#lx)", cx, di);
	memcpy((u8 *)low + 0xfffe, saved, 2);
	memcpy((u8 *)low, saved + 2, 2);
#endif
}

/* ---- elements across pages; DF -------------------------------------------------------- */

static void check_straddling(void)
{
	u8 *edge = page_pair + PAGE_SIZE;
	unsigned long di, si, cx;

	memset(page_pair, 0, sizeof(page_pair));
	outl(LATCH_PORT, 0x44332211);
	di = (unsigned long)(edge - 2), cx = 2;
	asm volatile("rep insl" : "+D"(di), "+c"(cx) : "d"(LATCH_PORT) : "memory");
	report(edge[-3] == 0 && edge[-2] == 0x11 && edge[-1] == 0x22 && edge[0] == 0x33 &&
	       edge[1] == 0x44 && edge[2] == 0x11 && edge[5] == 0x44 && edge[6] == 0 && cx == 0,
	       "REP INSL across a page boundary: each element whole, little-endian");

	memcpy(edge - 1, "\xa1\xb2\xc3\xd4", 4);
	si = (unsigned long)(edge - 1), cx = 1;
	asm volatile("rep outsl" : "+S"(si), "+c"(cx) : "d"(LATCH_PORT) : "memory");
	report(inl(LATCH_PORT) == 0xd4c3b2a1, "REP OUTSL of an element across a page boundary");

	/* DF=1: downwards across the boundary, word elements. */
	memset(page_pair, 0, sizeof(page_pair));
	di = (unsigned long)(edge + 2), cx = 3;
	asm volatile("std; rep insw; cld" : "+D"(di), "+c"(cx) : "d"(SPARE_PORT) : "memory");
	report(all_bytes(edge - 2, 6, 0xff) && edge[-3] == 0 && edge[4] == 0 &&
	       di == (unsigned long)(edge - 4) && cx == 0,
	       "REP INSW with DF=1 across a page boundary, downwards");
}

/* ---- the emulated MMIO page ------------------------------------------------------------ */

static void check_mmio(void)
{
	volatile u32 *page = (volatile u32 *)MMIO_PAGE;
	unsigned long di = MMIO_PAGE + 0x10, si, cx = 4;

	page[4] = page[5] = page[6] = page[7] = page[8] = 0;
	outl(LATCH_PORT, 0xcafef00d);
	asm volatile("rep insl" : "+D"(di), "+c"(cx) : "d"(LATCH_PORT) : "memory");
	report(page[4] == 0xcafef00d && page[7] == 0xcafef00d && page[8] == 0 && cx == 0,
	       "REP INSL into the emulated MMIO page");
	page[9] = 0x600dbeef;
	outl(LATCH_PORT, 0);
	si = MMIO_PAGE + 0x24, cx = 1;
	asm volatile("rep outsl" : "+S"(si), "+c"(cx) : "d"(LATCH_PORT) : "memory");
	report(inl(LATCH_PORT) == 0x600dbeef && si == MMIO_PAGE + 0x28,
	       "REP OUTSL from the emulated MMIO page");
}

/* ---- faults in the middle -------------------------------------------------------------- */

static unsigned long test_page(unsigned int n)
{
	return paging_test_base() + n * PAGE_SIZE;
}

static void map_test_page(unsigned int n, bool present)
{
	void *pte = map_page(read_cr3(), test_page(n), alloc_frame(), PTE_P | PTE_W, LEVEL_PTE);

	if (!present)
		pte_set(pte, 0);
	invlpg(test_page(n));
}

static bool fault_is(unsigned long cr2, unsigned long error_code)
{
	bool ok = exception_caught() && last_exception.error_code == error_code &&
		  read_cr2() == cr2;

	if (!ok)
		printf("fault: caught %d, error code %#lx, CR2 %#lx (expected %#lx, %#lx)\n",
		       last_exception.vector, last_exception.error_code, read_cr2(), error_code, cr2);
	return ok;
}

static void check_faults(void)
{
	/* Pages 0 and 2 present, 1 and 3 not. */
	unsigned long p0 = test_page(0), p1 = test_page(1), p2 = test_page(2), p3 = test_page(3);
	unsigned long di, si, cx;

	map_test_page(0, true);
	map_test_page(1, false);
	map_test_page(2, true);
	map_test_page(3, false);

	di = p1 - 3, cx = 10;
	expect_exception(PF_VECTOR);
	asm volatile(ASM_TRY("1f") "rep insb\n1:" : "+D"(di), "+c"(cx) : "d"(SPARE_PORT) : "memory");
	report(fault_is(p1, PFEC_W) && cx == 7 && di == p1 && all_bytes((u8 *)p1 - 3, 3, 0xff),
	       "REP INSB into a not-present page: #PF(W) at its first byte, RCX 7, RDI at it");

	di = p2 + 2, cx = 10;
	expect_exception(PF_VECTOR);
	asm volatile("std\n\t" ASM_TRY("1f") "rep insb\n1: cld"
		     : "+D"(di), "+c"(cx) : "d"(SPARE_PORT) : "memory");
	report(fault_is(p2 - 1, PFEC_W) && cx == 7 && di == p2 - 1 && all_bytes((u8 *)p2, 3, 0xff),
	       "... with DF=1, downwards into it: #PF at its last byte, RCX 7");

	memset((void *)(p3 - 8), 0, 8);
	di = p3 - 6, cx = 3;
	expect_exception(PF_VECTOR);
	asm volatile(ASM_TRY("1f") "rep insl\n1:" : "+D"(di), "+c"(cx) : "d"(SPARE_PORT) : "memory");
	report(fault_is(p3, PFEC_W) && cx == 2 && di == p3 - 2 &&
	       all_bytes((u8 *)p3 - 6, 4, 0xff) && all_bytes((u8 *)p3 - 2, 2, 0),
	       "REP INSL whose element straddles into it: #PF at the page, nothing of that element "
	       "written");

	si = p1 - 2, cx = 5;
	expect_exception(PF_VECTOR);
	asm volatile(ASM_TRY("1f") "rep outsb\n1:" : "+S"(si), "+c"(cx) : "d"(SPARE_PORT) : "memory");
	report(fault_is(p1, 0) && cx == 3 && si == p1,
	       "REP OUTSB from it: #PF (read) at its first byte, RCX 3, RSI at it");
	(void)p0;
}

/* ---- INS into a live page-table entry ---------------------------------------------------- */

static void check_page_table_write(void)
{
	unsigned long va = test_page(8);
	u64 a = alloc_frame(), b = alloc_frame();
	void *pte = map_page(read_cr3(), va, a, PTE_P | PTE_W, LEVEL_PTE);
	unsigned long di = (unsigned long)pte, cx = 1;

	invlpg(va);
	*(volatile u32 *)phys_to_virt(a) = 0xaaaaaaaa;
	*(volatile u32 *)phys_to_virt(b) = 0xbbbbbbbb;
	report(*(volatile u32 *)va == 0xaaaaaaaa, "a test page maps frame A");
	/* The entry's low 32 bits from the latch: frame B, present, writable. */
	outl(LATCH_PORT, (u32)b | PTE_P | PTE_W);
	asm volatile("rep insl" : "+D"(di), "+c"(cx) : "d"(LATCH_PORT) : "memory");
	invlpg(va);
	report(pte_addr(pte_get(pte)) == b && *(volatile u32 *)va == 0xbbbbbbbb,
	       "REP INSL into its page-table entry, then INVLPG: it maps frame B");
}

/* ---- interrupts during a long REP INSB ---------------------------------------------------- */

volatile unsigned int rip_stub_count, rip_stub_at_rep;
void rip_stub(void);

/* Counts interrupts and those taken at the REP INSB, then EOI. */
#ifdef __x86_64__
asm(".text\n"
    "rip_stub:\n\t"
    "push %rax\n\t"
    "incl rip_stub_count(%rip)\n\t"
    "lea long_rep(%rip), %rax\n\t"
    "cmp %rax, 8(%rsp)\n\t"
    "jne 1f\n\t"
    "incl rip_stub_at_rep(%rip)\n"
    "1:\n\t"
    "mov $0xfee000b0, %rax\n\t"
    "movl $0, (%rax)\n\t"
    "pop %rax\n\t"
    "iretq\n");
#else
asm(".text\n"
    "rip_stub:\n\t"
    "incl rip_stub_count\n\t"
    "cmpl $long_rep, (%esp)\n\t"
    "jne 1f\n\t"
    "incl rip_stub_at_rep\n"
    "1:\n\t"
    "movl $0, 0xfee000b0\n\t"
    "iret\n");
#endif

static void set_gate(unsigned int vector, void (*handler)(void))
{
	struct descriptor_ptr idt;
	u8 *g;
	unsigned long h = (unsigned long)handler;

	sidt(&idt);
#ifdef __x86_64__
	g = (u8 *)idt.base + vector * 16;
	*(u16 *)(g + 6) = (h >> 16) & 0xffff;
	*(u32 *)(g + 8) = (u32)(h >> 32);
#else
	g = (u8 *)idt.base + vector * 8;
	*(u16 *)(g + 6) = (h >> 16) & 0xffff;
#endif
	*(u16 *)g = h & 0xffff;
}

static void check_interrupted_string(void)
{
	unsigned long di = (unsigned long)long_buf, cx = LONG_STRING;

	set_gate(TIMER_VECTOR, rip_stub);
	rip_stub_count = rip_stub_at_rep = 0;
	memset(long_buf, 0, sizeof(long_buf));
	apic_write(APIC_TIMER_DIVIDE, APIC_TIMER_DIVIDE_1);
	apic_write(APIC_LVT_TIMER, TIMER_VECTOR | APIC_TIMER_PERIODIC);
	apic_write(APIC_TIMER_INITIAL, 50000);
	asm volatile("sti\n"
		     "long_rep: rep insb\n\t"
		     "cli" : "+D"(di), "+c"(cx) : "d"(SPARE_PORT) : "memory");
	apic_write(APIC_TIMER_INITIAL, 0);
	report(cx == 0 && all_bytes(long_buf, sizeof(long_buf), 0xff),
	       "REP INSB of 64 KiB with a timer running: every byte");
	report_umbra(rip_stub_at_rep > 0,
		     "... and %u of %u timer interrupts came in the middle of it", rip_stub_at_rep,
		     rip_stub_count);
}

/* ---- 64-bit only ------------------------------------------------------------------------- */

#ifdef __x86_64__
static void check_long_mode(void)
{
	static u32 words[2] = { 0x11111111, 0x5eed5eed };
	unsigned long si = 0x1000 + 4, cx = 1, rax;

	wrmsr(MSR_FS_BASE, (unsigned long)words - 0x1000);
	outl(LATCH_PORT, 0);
	asm volatile("rep outsl %%fs:(%%rsi), (%%dx)" : "+S"(si), "+c"(cx) : "d"(LATCH_PORT)
		     : "memory");
	wrmsr(MSR_FS_BASE, 0);
	report(inl(LATCH_PORT) == 0x5eed5eed && si == 0x1000 + 8,
	       "REP OUTSL with an FS override reads FS:RSI");

	outl(LATCH_PORT, 0x87654321);
	asm volatile("mov $-1, %%rax; inl %%dx, %%eax" : "=a"(rax) : "d"(LATCH_PORT));
	report(rax == 0x87654321, "IN EAX zero-extends into RAX (%#lx)", rax);
}

/* 512 GiB of linear addresses, all on one page (PML4 entry 2). */
static unsigned long aliased_range(void)
{
	u64 frame = alloc_frame(), pt = alloc_frame(), pd = alloc_frame(), pdpt = alloc_frame();
	u64 *root = phys_to_virt(read_cr3() & ~0xffful);

	for (int i = 0; i < 512; i++) {
		((u64 *)phys_to_virt(pt))[i] = frame | PTE_P | PTE_W;
		((u64 *)phys_to_virt(pd))[i] = pt | PTE_P | PTE_W;
		((u64 *)phys_to_virt(pdpt))[i] = pd | PTE_P | PTE_W;
	}
	root[2] = pdpt | PTE_P | PTE_W;
	flush_tlb();
	return 2ul << 39;
}

static void hostile(void)
{
	if (cmdline_has("huge")) {
		unsigned long di = aliased_range(), cx = 1ul << 39;

		printf("STRIO: REP INSB with RCX = 2^39 over 512 GiB aliased onto one page\n");
		asm volatile("rep insb" : "+D"(di), "+c"(cx) : "d"(SPARE_PORT) : "memory");
		report(false, "a REP INSB of 2^39 bytes finished");
	}
	if (cmdline_has("oob")) {
		unsigned long di = ram_end() + (64ul << 20), cx = 16;

		map_page(read_cr3(), di, di, PTE_P | PTE_W, LEVEL_PTE);
		printf("STRIO: REP INSB into guest-physical %#lx, past RAM\n", di);
		asm volatile("rep insb" : "+D"(di), "+c"(cx) : "d"(SPARE_PORT) : "memory");
		report(false, "REP INSB past RAM returned");
	}
}
#endif

int main(void)
{
#ifdef __x86_64__
	if (!paging_init(PAGING_LONG))
		return report_summary();
	hostile();
#else
	if (!paging_init(PAGING_32))
		return report_summary();
#endif
	/* Devices are not RAM: the identity map of RAM lacks them. */
	map_page(read_cr3(), APIC_DEFAULT_BASE, APIC_DEFAULT_BASE, PTE_P | PTE_W | PTE_PCD,
		 LEVEL_PTE);
	map_page(read_cr3(), MMIO_PAGE, MMIO_PAGE, PTE_P | PTE_W | PTE_PCD, LEVEL_PTE);
	pic_init();  /* every 8259 line masked: only the APIC timer interrupts */
	apic_vectors_init();
	apic_write(APIC_SVR, APIC_SVR_ENABLE | 0xff);

	check_address_size();
	check_straddling();
	check_mmio();
	check_faults();
	check_page_table_write();
	check_interrupted_string();
#ifdef __x86_64__
	check_long_mode();
#endif
	return report_summary();
}
