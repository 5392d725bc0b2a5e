/*
 * The instructions kvm-unit-tests' `emulator` test makes the hypervisor emulate, with their
 * memory operand (or their stack) on the test device's page at 0xff000000, which behaves like
 * RAM although every access to it is emulated (tests/guests/README.md): cmps/scas with
 * repe/repne, mul/imul/div (#DE), bsf/bsr, shld/shrd, cmov/setcc, smsw, push/pop/call/ret/
 * leave/enter with RSP on the page, jmp through a non-canonical pointer (#GP), ljmp and
 * lcall m16:64, mov to SS (null and refused selectors), mov from CS, ltr (busy bit), SSE
 * and MMX moves.
 * 64-bit only (emu_insns).
 */
#include "libguest.h"

#define MMIO 0xff000000ul
#define DE_VECTOR 0
#define GP_VECTOR 13

static u8 *const page = (u8 *)MMIO;
static u8 ram[4096] __attribute__((aligned(16)));

static void test_cmps_scas(void)
{
	u8 *m1 = page, *m2 = page + 1024;
	unsigned long rsi, rdi, rcx, rax;

	for (int i = 0; i < 200; i++) {
		m1[i] = (u8)(i < 100 ? i : i + 1);
		m2[i] = ram[i] = (u8)i;
	}
	/* MMIO against RAM, then MMIO against MMIO: the 101st byte differs. */
	for (int k = 0; k < 2; k++) {
		u8 *other = k ? m2 : ram;

		rsi = (unsigned long)m1;
		rdi = (unsigned long)other;
		rcx = 130;
		asm volatile("cld; repe cmpsb" : "+S"(rsi), "+D"(rdi), "+c"(rcx) : : "cc", "memory");
		report(rcx == 29 && rsi == (unsigned long)m1 + 101 &&
		       rdi == (unsigned long)other + 101, "repe cmpsb stops at the difference (%s)",
		       k ? "MMIO/MMIO" : "MMIO/RAM");
		rsi = (unsigned long)m1;
		rdi = (unsigned long)other;
		rcx = 16;
		asm volatile("cld; repe cmpsq" : "+S"(rsi), "+D"(rdi), "+c"(rcx) : : "cc", "memory");
		report(rcx == 3 && rsi == (unsigned long)m1 + 104, "repe cmpsq (%s)",
		       k ? "MMIO/MMIO" : "MMIO/RAM");
	}
	rdi = (unsigned long)m2;
	rcx = 200;
	rax = 150;
	asm volatile("cld; repne scasb" : "+D"(rdi), "+c"(rcx) : "a"(rax) : "cc", "memory");
	report(rdi == (unsigned long)m2 + 151 && rcx == 49, "repne scasb finds a byte");
}

static void test_mul_div(void)
{
	u64 *m = (u64 *)page;
	unsigned long a, d;

	*m = 0x3333333333333333ull;
	a = 0x1111111111111111ull;
	d = 0x2222222222222222ull;
	asm volatile("mulq %2" : "+a"(a), "+d"(d) : "m"(*m));
	report(a == 0x2fc962fc962fc963ull && d == 0x369d0369d0369d0ull, "mulq mem");
	*m = 987654321098765ull;
	a = d = 123456789012345ull;
	asm volatile("divq %2" : "+a"(a), "+d"(d) : "m"(*m));
	report(a == 0x1ffffffb1b963b33ull && d == 0x273ba4384ede2ull, "divq mem");
	*m = 0;
	a = 1;
	d = 2;
	expect_exception(DE_VECTOR);
	asm volatile(ASM_TRY("1f") "divq %2\n1:" : "+a"(a), "+d"(d) : "m"(*m));
	report(exception_caught() && a == 1 && d == 2, "divq by zero: #DE, registers kept");
	*m = 0x1234567812345678ull;
	asm volatile("imulq $311, %1, %0" : "=r"(a) : "m"(*m));
	report(a == 0x1d950bde1d950bc8ull, "imul r64, mem, imm32");
	*m = 51;
	a = 0x1234567812345678ull;
	asm volatile("imull %1, %k0" : "+r"(a) : "m"(*m));
	report(a == 0xa06d39e8, "imul r32, mem");
}

static void test_bits(void)
{
	u64 *m = (u64 *)page;
	u32 *m32 = (u32 *)(page + 64);
	unsigned long r = 77;
	u8 z;

	*m = 0xc00000000000ull;
	asm volatile("bsfq %1, %0" : "=r"(r) : "m"(*m));
	report(r == 46, "bsf mem");
	asm volatile("bsrq %1, %0" : "=r"(r) : "m"(*m));
	report(r == 47, "bsr mem");
	*m = 0;
	asm volatile("bsfq %2, %0; setz %1" : "+r"(r), "=q"(z) : "m"(*m));
	report(z && r == 47, "bsf of zero: ZF, destination unchanged");
	*m32 = 0x12345678;
	asm volatile("shld %%cl, %1, %0" : "+m"(*m32) : "r"(0xaaaaaaaau), "c"(3));
	report(*m32 == ((0x12345678u << 3) | 5), "shld mem, r, cl");
	*m32 = 0x12345678;
	asm volatile("shrd $3, %1, %0" : "+m"(*m32) : "r"(0x55555555u));
	report(*m32 == ((0x12345678u >> 3) | (5u << 29)), "shrd mem, r, imm");
	*m32 = 0xabcdef12;
	r = 0x1234567812345678ull;
	asm volatile("cmp %k0, %k0; cmovnel %1, %k0" : "+r"(r) : "m"(*m32) : "cc");
	report(r == 0x12345678, "cmovne (false) from mem zero-extends");
	page[80] = 0x55;
	asm volatile("cmp %1, %1; sete %0" : "=m"(page[80]) : "r"(r) : "cc");
	report(page[80] == 1, "sete mem");
}

static void test_smsw(void)
{
	u64 *m = (u64 *)(page + 128);
	unsigned long cr0;

	asm volatile("mov %%cr0, %0" : "=r"(cr0));
	*m = ~0ull;
	asm volatile("smsw %0" : "+m"(*(u16 *)m));
	report((u16)*m == (u16)cr0 && (*m >> 16) == 0xffffffffffffull, "smsw mem: 16 bits only");
}

/* With RSP on the page: no exception may come (its frame would go there too). */
static void test_stack(void)
{
	unsigned long *top = (unsigned long *)(page + 2048), tmp, newtop, val = 0x123456789abcdefull;
	unsigned long rsp, rbp;

	asm volatile("mov %%rsp, %[tmp]\n\t"
		     "mov %[top], %%rsp\n\t"
		     "pushq $-7\n\t"
		     "pushq %[reg]\n\t"
		     "pushq (%[mem])\n\t"
		     "mov %%rsp, %[newtop]\n\t"
		     "mov %[tmp], %%rsp"
		     : [tmp] "=&r"(tmp), [newtop] "=r"(newtop)
		     : [top] "r"(top), [reg] "r"(-17l), [mem] "r"(&val)
		     : "memory");
	report(top[-1] == -7ul && top[-2] == -17ul && top[-3] == val &&
	       newtop == (unsigned long)(top - 3), "push imm, reg, mem onto MMIO");
	ram[0] = 0;
	asm volatile("mov %%rsp, %[tmp]\n\t"
		     "mov %[top], %%rsp\n\t"
		     "pushq %[v]\n\t"
		     "popq (%[dst])\n\t"
		     "lea 1f(%%rip), %%rax\n\t"
		     "push %%rax\n\t"
		     "ret\n\t"
		     "2: jmp 2b\n\t"
		     "1: mov %[tmp], %%rsp"
		     : [tmp] "=&r"(tmp)
		     : [top] "r"(top), [v] "r"(val), [dst] "r"(ram)
		     : "memory", "rax");
	report(*(unsigned long *)ram == val, "pop mem from MMIO, ret through MMIO");
	top[-1] = 0x778899;
	rbp = (unsigned long)(top - 1);
	asm volatile("mov %%rsp, %[tmp]\n\t"
		     "xchg %%rbp, %[rbp]\n\t"
		     "leave\n\t"
		     "mov %%rsp, %[rsp]\n\t"
		     "xchg %%rbp, %[rbp]\n\t"
		     "mov %[tmp], %%rsp"
		     : [tmp] "=&r"(tmp), [rsp] "=&r"(rsp), [rbp] "+r"(rbp) : : "memory");
	report(rsp == (unsigned long)top && rbp == 0x778899, "leave from MMIO");
	rbp = 0xaa55aa55bb66bb66ull;
	asm volatile("mov %%rsp, %[tmp]\n\t"
		     "mov %[top], %%rsp\n\t"
		     "xchg %%rbp, %[rbp]\n\t"
		     "enter $0x38, $0\n\t"
		     "mov %%rsp, %[rsp]\n\t"
		     "xchg %%rbp, %[rbp]\n\t"
		     "mov %[tmp], %%rsp"
		     : [tmp] "=&r"(tmp), [rsp] "=&r"(rsp), [rbp] "+r"(rbp)
		     : [top] "r"(top) : "memory");
	report(rsp == (unsigned long)top - 8 - 0x38 && rbp == (unsigned long)top - 8 &&
	       top[-1] == 0xaa55aa55bb66bb66ull, "enter onto MMIO");
}

static void test_branches(void)
{
	u64 *m = (u64 *)(page + 256);
	static volatile int landed;	/* not on the stack: lcall moves RSP */

	*m = 0xaaaa000000000000ull;	/* not canonical */
	expect_exception(GP_VECTOR);
	asm volatile(ASM_TRY("1f") "jmp *%0\n1:" : : "m"(*m));
	report(exception_caught() && last_exception.error_code == 0,
	       "jmp through MMIO to a non-canonical address: #GP(0)");
	/* ljmp m16:64 back to the same code segment, the selector stored from CS. */
	asm volatile("lea 1f(%%rip), %%rax\n\t"
		     "mov %%rax, (%[p])\n\t"
		     "data16 mov %%cs, 8(%[p])\n\t"
		     "rex64 ljmp *(%[p])\n\t"
		     "movl $0, %[l]\n\t"
		     "1: movl $1, %[l]"
		     : [l] "+m"(landed) : [p] "r"(m) : "rax", "memory");
	report(landed == 1, "ljmp m16:64 from MMIO");
	/* lcall m16:64 pushes RIP and CS (here onto the RAM stack); lretq comes back. */
	asm volatile("lea 2f(%%rip), %%rax\n\t"
		     "mov %%rax, (%[p])\n\t"
		     "data16 mov %%cs, 8(%[p])\n\t"
		     "rex64 lcall *(%[p])\n\t"
		     "jmp 3f\n\t"
		     "2: movl $2, %[l]\n\t"
		     "lretq\n\t"
		     "3:"
		     : [l] "+m"(landed) : [p] "r"(m) : "rax", "memory");
	report(landed == 2, "lcall m16:64 from MMIO, lretq back");
	report(*(u16 *)(page + 264) == SEL_CODE64, "mov mem, cs to MMIO");
}

static void test_segments(void)
{
	static u64 gdt[8] __attribute__((aligned(16)));
	static u8 tss[104] __attribute__((aligned(16)));
	struct __attribute__((packed)) { u16 limit; u64 base; } old, desc;
	volatile u16 *m = (volatile u16 *)(page + 512);
	unsigned long tb = (unsigned long)tss;
	u16 ss, tr;

	/* mov ss, mem: null with RPL = CPL is allowed in 64-bit mode; the others #GP. */
	*m = 0;
	asm volatile("mov %0, %%ss" : : "m"(*m));
	asm volatile("mov %%ss, %0" : "=r"(ss));
	report(ss == 0, "mov ss, null from MMIO");
	*m = 3;
	expect_exception(GP_VECTOR);
	asm volatile(ASM_TRY("1f") "mov %0, %%ss\n1:" : : "m"(*m));
	report(exception_caught() && last_exception.error_code == 0, "mov ss, null RPL 3: #GP(0)");
	*m = SEL_DATA | 3;
	expect_exception(GP_VECTOR);
	asm volatile(ASM_TRY("1f") "mov %0, %%ss\n1:" : : "m"(*m));
	report(exception_caught() && last_exception.error_code == SEL_DATA,
	       "mov ss, RPL 3 != CPL: #GP(selector)");
	asm volatile("mov %0, %%ss" : : "r"((u16)SEL_DATA));

	/* ltr from MMIO: an available 64-bit TSS becomes busy in the GDT. */
	asm volatile("sgdt %0" : "=m"(old));
	memcpy(gdt, (void *)old.base, old.limit + 1);
	gdt[4] = 0x0000890000000000ull | (sizeof(tss) - 1) | ((tb & 0xffffff) << 16) |
		 ((tb >> 24) & 0xff) << 56;
	gdt[5] = tb >> 32;
	desc.limit = sizeof(gdt) - 1;
	desc.base = (u64)gdt;
	asm volatile("lgdt %0" : : "m"(desc));
	*m = 0x20;
	asm volatile("ltr %0" : : "m"(*m) : "memory");	/* the CPU writes the GDT */
	asm volatile("str %0" : "=r"(tr));
	report(tr == 0x20 && ((gdt[4] >> 40) & 0xf) == 0xb,
	       "ltr from MMIO marks the TSS busy (TR %#x, type %#x)", tr,
	       (unsigned)(gdt[4] >> 40) & 0xf);
}

static void test_sse_mmx(void)
{
	u32 *m = (u32 *)(page + 1024 + 512);
	u32 out[4] __attribute__((aligned(16)));
	unsigned long cr0, cr4;
	u64 v = 0x0102030405060708ull, w = 0;

	asm volatile("mov %%cr0, %0" : "=r"(cr0));
	asm volatile("mov %0, %%cr0" : : "r"(cr0 & ~0xcul));		/* EM, TS off */
	asm volatile("mov %%cr4, %0" : "=r"(cr4));
	asm volatile("mov %0, %%cr4" : : "r"(cr4 | 0x600ul));		/* OSFXSR, OSXMMEXCPT */
	for (int i = 0; i < 4; i++)
		out[i] = 0x11111111u * (u32)(i + 1);
	asm volatile("movdqu %1, %%xmm3\n\t"
		     "movdqu %%xmm3, %0" : "=m"(*(u32(*)[4])m) : "m"(out) : "memory");
	report(m[0] == out[0] && m[3] == out[3], "movdqu xmm to MMIO");
	m[0] = 5;
	m[1] = 6;
	m[2] = 7;
	m[3] = 8;
	asm volatile("movaps %1, %%xmm5\n\t"
		     "movups %%xmm5, %0" : "=m"(out) : "m"(*(u32(*)[4])m) : "memory");
	report(out[0] == 5 && out[3] == 8, "movaps from MMIO");
	asm volatile("movq %1, %%mm1\n\t"
		     "movq %%mm1, %0\n\t"
		     "movq %0, %%mm2\n\t"
		     "movq %%mm2, %1\n\t"
		     "emms" : "+m"(*(u64 *)m), "+m"(v) : : "memory");
	w = *(u64 *)m;
	report(w == 0x0102030405060708ull && v == w, "movq mm to and from MMIO");
}

int main(void)
{
	if (!is_umbra()) {
		report_skip("umbra's emulated MMIO page: not under umbra");
		return report_summary();
	}
	test_cmps_scas();
	test_mul_div();
	test_bits();
	test_smsw();
	test_stack();
	test_branches();
	test_segments();
	test_sse_mmx();
	return report_summary();
}
