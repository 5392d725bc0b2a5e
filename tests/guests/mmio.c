/*
 * The test device of the platform contract (kvm-unit-tests' pc-testdev, see
 * tests/guests/README.md): the 4 KiB page at 0xff000000 that behaves like RAM although every
 * access to it is emulated by the hypervisor, and the port 0xe0 latch. Each memory-operand
 * instruction the hypervisor's emulator must know (MOV, MOVZX/MOVSX, XCHG, XADD, CMPXCHG,
 * CMPXCHG8B/16B, the ALU group with register and immediate sources, TEST, INC/DEC/NOT/NEG,
 * BT/BTS/BTR/BTC, LODS/STOS/MOVS with REP and DF=1) runs once on RAM and once on the page:
 * memory around the operand, registers and defined flags must come out the same. Built 32-bit
 * (mmio) and 64-bit (mmio64, adding 8-byte operands, MOVSXD and CMPXCHG16B).
 */
#include "libguest.h"

#define TESTDEV_MMIO 0xff000000ul
#define TESTDEV_PORT 0xe0
#define WINDOW 32		/* bytes compared around each operand */

/* Arithmetic flags (SDM Vol. 1 3.4.3.1); each op masks those it leaves undefined/unchanged. */
#define F_CF 0x001
#define F_PF 0x004
#define F_AF 0x010
#define F_ZF 0x040
#define F_SF 0x080
#define F_OF 0x800
#define F_ARITH (F_CF | F_PF | F_AF | F_ZF | F_SF | F_OF)
#define F_LOGIC (F_ARITH & ~F_AF)	/* AND/OR/XOR/TEST: AF undefined */
#define F_INCDEC (F_ARITH & ~F_CF)	/* INC/DEC leave CF alone */

static volatile u8 *const mmio = (volatile u8 *)TESTDEV_MMIO;
static u8 ram[4096] __attribute__((aligned(16)));

/* Register operands of one instruction: r = its register operand, a = RAX (CMPXCHG). */
struct op_regs {
	unsigned long r, a;
};

typedef unsigned long (*op_fn)(volatile void *m, struct op_regs *regs);

/*
 * One instruction on the memory operand m; returns RFLAGS after it. `insn` names the operands
 * %[m] (memory, `type`-sized), %[r] (a general register) and %[a] (RAX).
 */
#define OP(name, type, insn)                                                   \
	static unsigned long name(volatile void *m, struct op_regs *regs)      \
	{                                                                      \
		unsigned long flags;                                           \
                                                                               \
		asm volatile(insn "\n\tpushf\n\tpop %[f]"                      \
			     : [m] "+m"(*(volatile type *)m), [r] "+q"(regs->r), \
			       [a] "+a"(regs->a), [f] "=&r"(flags)             \
			     : : "cc", "memory");                              \
		return flags;                                                  \
	}

/* Every instruction form, for one operand size: suffix s, type t, register modifier R. */
#define OPS_ALL_SIZES(s, t, R)                                                 \
	OP(mov_st_##s, t, "mov" #s " %" R "[r], %[m]")                        \
	OP(mov_ld_##s, t, "mov" #s " %[m], %" R "[r]")                        \
	OP(mov_imm_##s, t, "mov" #s " $0x5a, %[m]")                           \
	OP(add_##s, t, "add" #s " %" R "[r], %[m]")                           \
	OP(or_##s, t, "or" #s " %" R "[r], %[m]")                             \
	OP(adc_##s, t, "stc; adc" #s " %" R "[r], %[m]")                      \
	OP(sbb_##s, t, "stc; sbb" #s " %" R "[r], %[m]")                      \
	OP(and_##s, t, "and" #s " %" R "[r], %[m]")                           \
	OP(sub_##s, t, "sub" #s " %" R "[r], %[m]")                           \
	OP(xor_##s, t, "xor" #s " %" R "[r], %[m]")                           \
	OP(cmp_##s, t, "cmp" #s " %" R "[r], %[m]")                           \
	OP(add_ld_##s, t, "add" #s " %[m], %" R "[r]")                        \
	OP(sub_ld_##s, t, "sub" #s " %[m], %" R "[r]")                        \
	OP(add_imm_##s, t, "add" #s " $0x71, %[m]")                           \
	OP(and_imm_##s, t, "and" #s " $-0x3c, %[m]")                          \
	OP(cmp_imm_##s, t, "cmp" #s " $0x55, %[m]")                           \
	OP(test_##s, t, "test" #s " %" R "[r], %[m]")                         \
	OP(test_imm_##s, t, "test" #s " $0x41, %[m]")                         \
	OP(inc_##s, t, "inc" #s " %[m]")                                      \
	OP(dec_##s, t, "dec" #s " %[m]")                                      \
	OP(not_##s, t, "not" #s " %[m]")                                      \
	OP(neg_##s, t, "neg" #s " %[m]")                                      \
	OP(xchg_##s, t, "xchg" #s " %" R "[r], %[m]")                         \
	OP(xadd_##s, t, "lock xadd" #s " %" R "[r], %[m]")                    \
	OP(lock_or_##s, t, "lock or" #s " %" R "[r], %[m]")                   \
	OP(cmpxchg_##s, t, "lock cmpxchg" #s " %" R "[r], %[m]")

/* BT family: no byte form; register bit offsets may reach outside the operand. */
#define OPS_BT(s, t, R)                                                        \
	OP(bt_imm_##s, t, "bt" #s " $3, %[m]")                                \
	OP(bts_imm_##s, t, "bts" #s " $13, %[m]")                             \
	OP(btr_imm_##s, t, "btr" #s " $1, %[m]")                              \
	OP(btc_imm_##s, t, "btc" #s " $7, %[m]")                              \
	OP(bt_##s, t, "bt" #s " %" R "[r], %[m]")                             \
	OP(bts_##s, t, "bts" #s " %" R "[r], %[m]")                           \
	OP(btr_##s, t, "btr" #s " %" R "[r], %[m]")                           \
	OP(btc_##s, t, "btc" #s " %" R "[r], %[m]")

OPS_ALL_SIZES(b, u8, "b")
OPS_ALL_SIZES(w, u16, "w")
OPS_ALL_SIZES(l, u32, "k")
OPS_BT(w, u16, "w")
OPS_BT(l, u32, "k")
OP(movzbl, u8, "movzbl %[m], %k[r]")
OP(movsbl, u8, "movsbl %[m], %k[r]")
OP(movzwl, u16, "movzwl %[m], %k[r]")
OP(movswl, u16, "movswl %[m], %k[r]")
OP(movsbw, u8, "movsbw %[m], %w[r]")
#ifdef __x86_64__
OPS_ALL_SIZES(q, u64, "q")
OPS_BT(q, u64, "q")
OP(movzbq, u8, "movzbq %[m], %q[r]")
OP(movsbq, u8, "movsbq %[m], %q[r]")
OP(movswq, u16, "movswq %[m], %q[r]")
OP(movslq, u32, "movslq %[m], %q[r]")
OP(mov_simm_q, u64, "movq $-0x12345678, %[m]")
#endif

/* How to set up one instruction's registers. */
enum reg_setup {
	REG_PATTERN,		/* r and a: fixed patterns */
	REG_AX_MATCHES,		/* a = the operand (CMPXCHG succeeds) */
	REG_BIT_FAR,		/* r = bit offset 37: BT* past a 16/32-bit operand */
	REG_BIT_NEG,		/* r = bit offset -5: BT* before the operand */
};

struct op_case {
	const char *name;
	op_fn fn;
	unsigned int size;
	unsigned long flags_mask;
	enum reg_setup setup;
};

#define CASES_ALL_SIZES(s, n)                                                  \
	{ "mov r->m", mov_st_##s, n, 0, REG_PATTERN },                         \
	{ "mov m->r", mov_ld_##s, n, 0, REG_PATTERN },                         \
	{ "mov imm->m", mov_imm_##s, n, 0, REG_PATTERN },                      \
	{ "add", add_##s, n, F_ARITH, REG_PATTERN },                           \
	{ "or", or_##s, n, F_LOGIC, REG_PATTERN },                             \
	{ "adc", adc_##s, n, F_ARITH, REG_PATTERN },                           \
	{ "sbb", sbb_##s, n, F_ARITH, REG_PATTERN },                           \
	{ "and", and_##s, n, F_LOGIC, REG_PATTERN },                           \
	{ "sub", sub_##s, n, F_ARITH, REG_PATTERN },                           \
	{ "xor", xor_##s, n, F_LOGIC, REG_PATTERN },                           \
	{ "cmp", cmp_##s, n, F_ARITH, REG_PATTERN },                           \
	{ "add m->r", add_ld_##s, n, F_ARITH, REG_PATTERN },                   \
	{ "sub m->r", sub_ld_##s, n, F_ARITH, REG_PATTERN },                   \
	{ "add imm", add_imm_##s, n, F_ARITH, REG_PATTERN },                   \
	{ "and imm", and_imm_##s, n, F_LOGIC, REG_PATTERN },                   \
	{ "cmp imm", cmp_imm_##s, n, F_ARITH, REG_PATTERN },                   \
	{ "test", test_##s, n, F_LOGIC, REG_PATTERN },                         \
	{ "test imm", test_imm_##s, n, F_LOGIC, REG_PATTERN },                 \
	{ "inc", inc_##s, n, F_INCDEC, REG_PATTERN },                          \
	{ "dec", dec_##s, n, F_INCDEC, REG_PATTERN },                          \
	{ "not", not_##s, n, 0, REG_PATTERN },                                 \
	{ "neg", neg_##s, n, F_ARITH, REG_PATTERN },                           \
	{ "xchg", xchg_##s, n, 0, REG_PATTERN },                               \
	{ "lock xadd", xadd_##s, n, F_ARITH, REG_PATTERN },                    \
	{ "lock or", lock_or_##s, n, F_LOGIC, REG_PATTERN },                   \
	{ "cmpxchg (fails)", cmpxchg_##s, n, F_ARITH, REG_PATTERN },           \
	{ "cmpxchg (succeeds)", cmpxchg_##s, n, F_ARITH, REG_AX_MATCHES }

/* BT* with a register offset: only CF is defined (SDM Vol. 2A BT). */
#define CASES_BT(s, n)                                                         \
	{ "bt imm", bt_imm_##s, n, F_CF, REG_PATTERN },                        \
	{ "bts imm", bts_imm_##s, n, F_CF, REG_PATTERN },                      \
	{ "btr imm", btr_imm_##s, n, F_CF, REG_PATTERN },                      \
	{ "btc imm", btc_imm_##s, n, F_CF, REG_PATTERN },                      \
	{ "bt r, bit 37", bt_##s, n, F_CF, REG_BIT_FAR },                      \
	{ "bts r, bit 37", bts_##s, n, F_CF, REG_BIT_FAR },                    \
	{ "btr r, bit 37", btr_##s, n, F_CF, REG_BIT_FAR },                    \
	{ "btc r, bit -5", btc_##s, n, F_CF, REG_BIT_NEG },                    \
	{ "bts r, bit -5", bts_##s, n, F_CF, REG_BIT_NEG }

static const struct op_case cases[] = {
	CASES_ALL_SIZES(b, 1),
	CASES_ALL_SIZES(w, 2),
	CASES_ALL_SIZES(l, 4),
	CASES_BT(w, 2),
	CASES_BT(l, 4),
	{ "movzx byte", movzbl, 1, 0, REG_PATTERN },
	{ "movsx byte", movsbl, 1, 0, REG_PATTERN },
	{ "movzx word", movzwl, 2, 0, REG_PATTERN },
	{ "movsx word", movswl, 2, 0, REG_PATTERN },
	{ "movsx byte->word", movsbw, 1, 0, REG_PATTERN },
#ifdef __x86_64__
	CASES_ALL_SIZES(q, 8),
	CASES_BT(q, 8),
	{ "movzx byte->q", movzbq, 1, 0, REG_PATTERN },
	{ "movsx byte->q", movsbq, 1, 0, REG_PATTERN },
	{ "movsx word->q", movswq, 2, 0, REG_PATTERN },
	{ "movsxd", movslq, 4, 0, REG_PATTERN },
	{ "mov sign-extended imm32", mov_simm_q, 8, 0, REG_PATTERN },
#endif
};

/* Byte i of a window: values with high bits set, so MOVSX and SF matter. */
static u8 window_byte(unsigned int seed, unsigned int i)
{
	return (u8)((i + seed) * 0x3b + 0x91);
}

/* Fills the same WINDOW bytes at offset `win` of RAM and the MMIO page (dwords on MMIO). */
static void window_fill(unsigned int win, unsigned int seed)
{
	for (unsigned int i = 0; i < WINDOW; i++)
		ram[win + i] = window_byte(seed, i);
	for (unsigned int i = 0; i < WINDOW; i += 4) {
		u32 v;

		memcpy(&v, &ram[win + i], 4);
		*(volatile u32 *)(mmio + win + i) = v;
	}
}

static bool window_equal(unsigned int win)
{
	for (unsigned int i = 0; i < WINDOW; i += 4) {
		u32 v = *(volatile u32 *)(mmio + win + i);

		if (memcmp(&v, &ram[win + i], 4))
			return false;
	}
	return true;
}

static void window_print(unsigned int win)
{
	printf("  RAM :");
	for (unsigned int i = 0; i < WINDOW; i++)
		printf(" %02x", ram[win + i]);
	printf("\n  MMIO:");
	for (unsigned int i = 0; i < WINDOW; i++)
		printf(" %02x", mmio[win + i]);
	printf("\n");
}

static struct op_regs regs_for(const struct op_case *c, unsigned int off)
{
	struct op_regs r = { (unsigned long)0x8586878889fa7b7cull,
			     (unsigned long)0x1122334455667788ull };

	switch (c->setup) {
	case REG_PATTERN:
		break;
	case REG_AX_MATCHES:
		r.a = 0;
		memcpy(&r.a, &ram[off], c->size);
		break;
	case REG_BIT_FAR:
		r.r = 37;
		break;
	case REG_BIT_NEG:
		r.r = (unsigned long)-5l;
		break;
	}
	return r;
}

/* The case on RAM and on MMIO at operand offset `off` in the window at `win`. */
static bool run_case(const struct op_case *c, unsigned int win, unsigned int off)
{
	struct op_regs on_ram, on_mmio;
	unsigned long f_ram, f_mmio;
	bool same;

	window_fill(win, off);
	on_ram = regs_for(c, win + off);
	on_mmio = on_ram;
	f_ram = c->fn(&ram[win + off], &on_ram) & c->flags_mask;
	f_mmio = c->fn(mmio + win + off, &on_mmio) & c->flags_mask;
	same = window_equal(win) && on_ram.r == on_mmio.r && on_ram.a == on_mmio.a &&
	       f_ram == f_mmio;
	if (!same) {
		printf("%s, %u bytes at +%#x: regs %#lx/%#lx vs %#lx/%#lx, flags %#lx vs %#lx\n",
		       c->name, c->size, win + off, on_ram.r, on_ram.a, on_mmio.r, on_mmio.a,
		       f_ram, f_mmio);
		window_print(win);
	}
	return same;
}

/* Every case aligned and misaligned, each in its own part of the page. */
static void check_instructions(void)
{
	unsigned int failed_aligned = 0, failed_misaligned = 0;

	for (unsigned int i = 0; i < ARRAY_SIZE(cases); i++) {
		unsigned int win = (i * 2 * WINDOW) % 4096;

		failed_aligned += !run_case(&cases[i], win, 8);
		failed_misaligned += !run_case(&cases[i], (win + WINDOW) % 4096, 8 + 3);
	}
	report(!failed_aligned, "%u instruction forms on naturally aligned MMIO operands act as on "
	       "RAM (%u differ)", (unsigned int)ARRAY_SIZE(cases), failed_aligned);
	report(!failed_misaligned, "the same at a misaligned offset (+3) (%u differ)",
	       failed_misaligned);
}

/* Plain loads and stores of each width at offsets across the page, read back bytewise too. */
static void check_widths(void)
{
	static const unsigned int offsets[] = { 0, 1, 2, 3, 5, 7, 0x7fd, 0xffc, 0xfff };
	unsigned int bad = 0;

	for (unsigned int w = 1; w <= sizeof(long); w *= 2) {
		for (unsigned int i = 0; i < ARRAY_SIZE(offsets); i++) {
			unsigned int off = offsets[i];
			u64 val = 0xf1e2d3c4b5a69788ull ^ ((u64)off << 8) ^ w, back = 0;
			volatile u8 *p = mmio + off;
			bool ok = true;

			if (off + w > 4096)
				off = 4096 - w, p = mmio + off;
			switch (w) {
			case 1: *p = (u8)val; back = *p; break;
			case 2: *(volatile u16 *)p = (u16)val; back = *(volatile u16 *)p; break;
			case 4: *(volatile u32 *)p = (u32)val; back = *(volatile u32 *)p; break;
			case 8: *(volatile unsigned long *)p = (unsigned long)val;
				back = *(volatile unsigned long *)p; break;
			}
			if (w < 8)
				val &= (1ull << (8 * w)) - 1;
			for (unsigned int b = 0; b < w; b++)
				ok = ok && p[b] == (u8)(val >> (8 * b));
			if (back != val || !ok) {
				printf("width %u at +%#x: wrote %#llx, read %#llx\n", w, off, val,
				       back);
				bad++;
			}
		}
	}
	report(!bad, "MOV stores and loads of 1 to %u bytes at 9 offsets (misaligned, page "
	       "end) read back, bytes little-endian", (unsigned int)sizeof(long));

	/* MOV with an absolute address: the A0-A3 "moffs" encodings. */
	u32 moffs = 0;

	*(volatile u32 *)(mmio + 0x10) = 0;
#ifdef __x86_64__
	asm volatile("movabs %%eax, 0xff000010\n\tmovabs 0xff000010, %%eax"
		     : "=a"(moffs) : "a"(0xc0ffee11u) : "memory");
#else
	asm volatile("movl %%eax, 0xff000010\n\tmovl 0xff000010, %%eax"
		     : "=a"(moffs) : "a"(0xc0ffee11u) : "memory");
#endif
	report(moffs == 0xc0ffee11u && *(volatile u32 *)(mmio + 0x10) == 0xc0ffee11u,
	       "MOV to/from an absolute address (moffs form)");
}

static bool cmpxchg8b(volatile void *m, u64 *expected, u64 new)
{
	u32 lo = (u32)*expected, hi = (u32)(*expected >> 32);
	bool ok;

	asm volatile("lock cmpxchg8b %[m]\n\tsetz %[ok]"
		     : [m] "+m"(*(volatile u64 *)m), "+a"(lo), "+d"(hi), [ok] "=q"(ok)
		     : "b"((u32)new), "c"((u32)(new >> 32)) : "cc", "memory");
	*expected = ((u64)hi << 32) | lo;
	return ok;
}

static void check_cmpxchg8b(void)
{
	volatile u64 *m = (volatile u64 *)(mmio + 0x808);
	u64 expected = 0x0123456789abcdefull, seen = 1;
	bool hit, miss;

	*(volatile u32 *)(mmio + 0x808) = 0x89abcdef;
	*(volatile u32 *)(mmio + 0x80c) = 0x01234567;
	hit = cmpxchg8b(m, &expected, 0xfedcba9876543210ull);
	miss = cmpxchg8b(m, &seen, 0x1111);
	report(hit && !miss && seen == 0xfedcba9876543210ull &&
	       *(volatile u32 *)(mmio + 0x808) == 0x76543210 &&
	       *(volatile u32 *)(mmio + 0x80c) == 0xfedcba98,
	       "CMPXCHG8B: swaps when equal, loads EDX:EAX when not");
}

#ifdef __x86_64__
static void check_cmpxchg16b(void)
{
	volatile u64 *m = (volatile u64 *)(mmio + 0x820);	/* must be 16-byte aligned */
	u64 lo = 0x1111111122222222ull, hi = 0x3333333344444444ull;
	bool ok;

	if (!(cpuid(1, 0).ecx & BIT(13))) {
		report_skip("CMPXCHG16B: CPUID.1:ECX.CX16[13] clear");
		return;
	}
	m[0] = lo;
	m[1] = hi;
	asm volatile("lock cmpxchg16b %[m]\n\tsetz %[ok]"
		     : [m] "+m"(*m), "+a"(lo), "+d"(hi), [ok] "=q"(ok)
		     : "b"(0x5555ull), "c"(0x6666ull) : "cc", "memory");
	report(ok && m[0] == 0x5555 && m[1] == 0x6666, "CMPXCHG16B: swaps when equal");
	lo = hi = 0;
	asm volatile("lock cmpxchg16b %[m]\n\tsetz %[ok]"
		     : [m] "+m"(*m), "+a"(lo), "+d"(hi), [ok] "=q"(ok)
		     : "b"(1ull), "c"(2ull) : "cc", "memory");
	report(!ok && lo == 0x5555 && hi == 0x6666 && m[0] == 0x5555,
	       "CMPXCHG16B: loads RDX:RAX when not equal, memory unchanged");
}
#else
static void check_cmpxchg16b(void)
{
	report_skip("CMPXCHG16B: 64-bit only (mmio64)");
}
#endif

static bool mmio_equals_ram(unsigned int mmio_off, const u8 *expect, unsigned int len)
{
	for (unsigned int i = 0; i < len; i++)
		if (mmio[mmio_off + i] != expect[i])
			return false;
	return true;
}

/* REP MOVS/STOS/LODS with the page as source, destination or both; and DF=1. */
static void check_strings(void)
{
	static u8 src[128], back[128];
	unsigned long si, di, cx, ax;

	for (unsigned int i = 0; i < sizeof(src); i++)
		src[i] = (u8)(i * 7 + 3);

	si = (unsigned long)src, di = (unsigned long)(mmio + 0x403), cx = 61;
	asm volatile("rep movsb" : "+S"(si), "+D"(di), "+c"(cx) : : "memory");
	report(cx == 0 && di == (unsigned long)(mmio + 0x403 + 61) && mmio_equals_ram(0x403, src, 61),
	       "rep movsb RAM -> MMIO, 61 bytes to a misaligned offset");

	si = (unsigned long)(mmio + 0x403), di = (unsigned long)back, cx = 61;
	memset(back, 0, sizeof(back));
	asm volatile("rep movsb" : "+S"(si), "+D"(di), "+c"(cx) : : "memory");
	report(cx == 0 && si == (unsigned long)(mmio + 0x403 + 61) && !memcmp(back, src, 61) &&
	       back[61] == 0, "rep movsb MMIO -> RAM, 61 bytes");

	si = (unsigned long)src, di = (unsigned long)(mmio + 0x480), cx = 32;
	asm volatile("rep movsl" : "+S"(si), "+D"(di), "+c"(cx) : : "memory");
	si = (unsigned long)(mmio + 0x480), di = (unsigned long)(mmio + 0x500), cx = 64;
	asm volatile("rep movsw" : "+S"(si), "+D"(di), "+c"(cx) : : "memory");
	report(cx == 0 && mmio_equals_ram(0x480, src, 128) && mmio_equals_ram(0x500, src, 128),
	       "rep movsl RAM -> MMIO, then rep movsw MMIO -> MMIO, 128 bytes");
#ifdef __x86_64__
	si = (unsigned long)src, di = (unsigned long)(mmio + 0x588), cx = 16;
	asm volatile("rep movsq" : "+S"(si), "+D"(di), "+c"(cx) : : "memory");
	report(cx == 0 && mmio_equals_ram(0x588, src, 128), "rep movsq RAM -> MMIO, 16 quadwords");
#endif

	di = (unsigned long)(mmio + 0x701), cx = 50, ax = 0xa5;
	asm volatile("rep stosb" : "+D"(di), "+c"(cx) : "a"(ax) : "memory");
	memset(back, 0xa5, 50);
	report(cx == 0 && mmio_equals_ram(0x701, back, 50), "rep stosb to MMIO, 50 bytes");
	di = (unsigned long)(mmio + 0x740), cx = 10;
	asm volatile("rep stosl" : "+D"(di), "+c"(cx) : "a"(0xdeadbeefu) : "memory");
	report(cx == 0 && *(volatile u32 *)(mmio + 0x740) == 0xdeadbeef &&
	       *(volatile u32 *)(mmio + 0x764) == 0xdeadbeef &&
	       *(volatile u32 *)(mmio + 0x768) != 0xdeadbeef, "rep stosl to MMIO, 10 dwords");

	si = (unsigned long)(mmio + 0x740), ax = 0;
	asm volatile("lodsb" : "+S"(si), "+a"(ax) : : "memory");
	report(ax == 0xef && si == (unsigned long)(mmio + 0x741), "lodsb from MMIO");
	si = (unsigned long)(mmio + 0x480), cx = 4, ax = 0;
	asm volatile("rep lodsl" : "+S"(si), "+c"(cx), "+a"(ax) : : "memory");
	report(cx == 0 && ax == *(volatile u32 *)(mmio + 0x48c), "rep lodsl from MMIO keeps the last");

	/* DF=1: addresses go down from the last element. Interrupts are off throughout. */
	si = (unsigned long)(src + 12), di = (unsigned long)(mmio + 0x90c), cx = 13;
	asm volatile("std; rep movsb; cld" : "+S"(si), "+D"(di), "+c"(cx) : : "memory");
	report(cx == 0 && di == (unsigned long)(mmio + 0x8ff) && mmio_equals_ram(0x900, src, 13),
	       "std; rep movsb RAM -> MMIO copies backwards");
}

/* Port 0xe0 latch: returns what was last written, at each width and with string I/O. */
static void check_port_latch(void)
{
	static const u8 bytes[] = { 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88, 0x99 };
	static const u32 dwords[] = { 0x01020304, 0xa0b0c0d0, 0x5ca1ab1e };
	u8 in8[8];
	u32 in32[4];
	unsigned long si, di, cx;
	bool all;

	outl(TESTDEV_PORT, 0x12345678);
	report(inl(TESTDEV_PORT) == 0x12345678, "port 0xe0: outl then inl returns it");
	outw(TESTDEV_PORT, 0xbeef);
	report(inw(TESTDEV_PORT) == 0xbeef, "port 0xe0: outw then inw returns it");
	outb(TESTDEV_PORT, 0x5a);
	report(inb(TESTDEV_PORT) == 0x5a, "port 0xe0: outb then inb returns it");

	si = (unsigned long)bytes, cx = sizeof(bytes);
	asm volatile("rep outsb" : "+S"(si), "+c"(cx) : "d"(TESTDEV_PORT) : "memory");
	report(cx == 0 && inb(TESTDEV_PORT) == 0x99, "port 0xe0: rep outsb latches the last byte");
	di = (unsigned long)in8, cx = sizeof(in8);
	memset(in8, 0, sizeof(in8));
	asm volatile("rep insb" : "+D"(di), "+c"(cx) : "d"(TESTDEV_PORT) : "memory");
	all = cx == 0;
	for (unsigned int i = 0; i < sizeof(in8); i++)
		all = all && in8[i] == 0x99;
	report(all, "port 0xe0: rep insb reads the latch 8 times");

	si = (unsigned long)dwords, cx = ARRAY_SIZE(dwords);
	asm volatile("rep outsl" : "+S"(si), "+c"(cx) : "d"(TESTDEV_PORT) : "memory");
	di = (unsigned long)in32, cx = ARRAY_SIZE(in32);
	asm volatile("rep insl" : "+D"(di), "+c"(cx) : "d"(TESTDEV_PORT) : "memory");
	all = true;
	for (unsigned int i = 0; i < ARRAY_SIZE(in32); i++)
		all = all && in32[i] == 0x5ca1ab1e;
	report(all, "port 0xe0: rep outsl then rep insl return the last dword");
}

int main(void)
{
	check_port_latch();
	check_widths();
	check_instructions();
	check_cmpxchg8b();
	check_cmpxchg16b();
	check_strings();
	return report_summary();
}
