/*
 * Differential test of arch/x86/emulate.c against the host CPU (64-bit mode).
 *
 * For each case: encode an instruction with random prefixes, registers and a
 * memory operand [base + disp8] pointing into a host buffer, run it natively
 * in an executable stub (prologue loads every GPR but RSP, RFLAGS, xmm0-15
 * and mm0-7 from a state block, epilogue stores them back), then run the
 * emulator on the same initial state with callbacks over the same buffer,
 * and compare memory, registers, RIP and the arithmetic flags the SDM
 * defines for the instruction. Only this test uses inline asm. push, pop,
 * enter and leave run on a stack inside mem[] (the stub parks the host RSP
 * in its own page). Not here, in test_emulate.c instead: what changes RIP
 * (call, ret, jmp, ljmp), what a user process may not do (ltr, loads of
 * segment registers; smsw faults under UMIP).
 */
#include <string.h>
#include <sys/mman.h>

#include "unit.h"
#include "arch/x86/emulate.h"

#if !defined(__x86_64__)
#error "the differential test needs an x86-64 host"
#endif

#define CASES_PER_OP 3000
#define MEM_SIZE 512
#define MEM_OPERAND 256		/* offset of the memory operand in mem[] */
#define CODE_RIP 0x7000ull	/* guest RIP of the instruction for the emulator */
/* Bits 11:0 but IF, which POPF in user mode cannot change. */
#define FLAGS_COMPARED (0xfffull & ~BIT(9))

/* Register block the stub loads and stores (layout used by the asm below). */
struct cpu_state {
	u64 gpr[16];
	u64 rflags;
	u8 xmm[16][16];		/* offset 136 */
	u64 mm[8];		/* offset 392 */
};

/*
 * Stub pieces, assembled here and copied around the instruction under test
 * into an executable page. Only register-relative addressing: relocatable.
 */
__asm__(".pushsection .rodata\n"
	".globl diff_prologue, diff_prologue_end, diff_epilogue, diff_epilogue_end\n"
	"diff_prologue:\n"
	"push %rbx; push %rbp; push %r12; push %r13; push %r14; push %r15\n"
	"push %rdi\n"
	"movdqu 136(%rdi), %xmm0; movdqu 152(%rdi), %xmm1; movdqu 168(%rdi), %xmm2\n"
	"movdqu 184(%rdi), %xmm3; movdqu 200(%rdi), %xmm4; movdqu 216(%rdi), %xmm5\n"
	"movdqu 232(%rdi), %xmm6; movdqu 248(%rdi), %xmm7; movdqu 264(%rdi), %xmm8\n"
	"movdqu 280(%rdi), %xmm9; movdqu 296(%rdi), %xmm10; movdqu 312(%rdi), %xmm11\n"
	"movdqu 328(%rdi), %xmm12; movdqu 344(%rdi), %xmm13; movdqu 360(%rdi), %xmm14\n"
	"movdqu 376(%rdi), %xmm15\n"
	"movq 392(%rdi), %mm0; movq 400(%rdi), %mm1; movq 408(%rdi), %mm2\n"
	"movq 416(%rdi), %mm3; movq 424(%rdi), %mm4; movq 432(%rdi), %mm5\n"
	"movq 440(%rdi), %mm6; movq 448(%rdi), %mm7\n"
	"pushq 128(%rdi); popfq\n"
	"mov 0(%rdi), %rax; mov 8(%rdi), %rcx; mov 16(%rdi), %rdx; mov 24(%rdi), %rbx\n"
	"mov 40(%rdi), %rbp; mov 48(%rdi), %rsi\n"
	"mov 64(%rdi), %r8; mov 72(%rdi), %r9; mov 80(%rdi), %r10; mov 88(%rdi), %r11\n"
	"mov 96(%rdi), %r12; mov 104(%rdi), %r13; mov 112(%rdi), %r14; mov 120(%rdi), %r15\n"
	"mov 56(%rdi), %rdi\n"
	"diff_prologue_end:\n"
	"diff_epilogue:\n"
	"pushfq; cld; push %rax\n"		/* the C ABI wants DF clear */
	"mov 16(%rsp), %rax\n"
	"mov %rcx, 8(%rax); mov %rdx, 16(%rax); mov %rbx, 24(%rax)\n"
	"mov %rbp, 40(%rax); mov %rsi, 48(%rax); mov %rdi, 56(%rax)\n"
	"mov %r8, 64(%rax); mov %r9, 72(%rax); mov %r10, 80(%rax); mov %r11, 88(%rax)\n"
	"mov %r12, 96(%rax); mov %r13, 104(%rax); mov %r14, 112(%rax); mov %r15, 120(%rax)\n"
	"pop %rcx; mov %rcx, 0(%rax)\n"
	"pop %rcx; mov %rcx, 128(%rax)\n"
	"movdqu %xmm0, 136(%rax); movdqu %xmm1, 152(%rax); movdqu %xmm2, 168(%rax)\n"
	"movdqu %xmm3, 184(%rax); movdqu %xmm4, 200(%rax); movdqu %xmm5, 216(%rax)\n"
	"movdqu %xmm6, 232(%rax); movdqu %xmm7, 248(%rax); movdqu %xmm8, 264(%rax)\n"
	"movdqu %xmm9, 280(%rax); movdqu %xmm10, 296(%rax); movdqu %xmm11, 312(%rax)\n"
	"movdqu %xmm12, 328(%rax); movdqu %xmm13, 344(%rax); movdqu %xmm14, 360(%rax)\n"
	"movdqu %xmm15, 376(%rax)\n"
	"movq %mm0, 392(%rax); movq %mm1, 400(%rax); movq %mm2, 408(%rax)\n"
	"movq %mm3, 416(%rax); movq %mm4, 424(%rax); movq %mm5, 432(%rax)\n"
	"movq %mm6, 440(%rax); movq %mm7, 448(%rax); emms\n"
	"pop %rdi\n"
	"pop %r15; pop %r14; pop %r13; pop %r12; pop %rbp; pop %rbx\n"
	"ret\n"
	"diff_epilogue_end:\n"
	/*
	 * Stack instructions run on the state's RSP: the host RSP is parked in
	 * the stub page, which is mapped at STUB_ADDR (below 2 GiB, so absolute
	 * disp32 addressing reaches it), and the guest RSP is put back after.
	 * stk_in goes between the prologue's last two instructions (RDI still
	 * points at the state), stk_out first in the epilogue, stk_save last.
	 */
	"diff_stk_in:\n"
	"mov %rsp, 0x70000ff8; mov 32(%rdi), %rsp\n"
	"diff_stk_in_end:\n"
	"diff_stk_out:\n"
	"mov %rsp, 0x70000ff0; mov 0x70000ff8, %rsp\n"
	"diff_stk_out_end:\n"
	".popsection\n");
extern const u8 diff_prologue[], diff_prologue_end[], diff_epilogue[], diff_epilogue_end[];
extern const u8 diff_stk_in[], diff_stk_in_end[], diff_stk_out[], diff_stk_out_end[];
#define STUB_ADDR 0x70000000ul
#define STUB_GUEST_RSP 0x70000ff0ul

static u8 mem[MEM_SIZE] __attribute__((aligned(64)));
static u8 code[32];
static unsigned int code_len;
static u8 *stub;
static struct cpu_state emu_vregs;	/* the emulator's xmm/mm registers */

_Static_assert(__builtin_offsetof(struct cpu_state, xmm) == 136, "stub layout");
_Static_assert(__builtin_offsetof(struct cpu_state, mm) == 392, "stub layout");

/* ---- emulator callbacks: identity-mapped, only mem[] and code[] exist ------ */

static bool in_mem(u64 lin, unsigned int len)
{
	return lin >= (u64)(uintptr_t)mem && lin + len <= (u64)(uintptr_t)mem + MEM_SIZE;
}

static enum x86_cb_status cb_fault(struct x86_fault *fault, u64 lin)
{
	fault->vector = X86_VEC_PF;
	fault->has_error_code = true;
	fault->address = lin;
	return X86_CB_FAULT;
}

static enum x86_cb_status cb_fetch(void *opaque, u64 lin, void *buf, unsigned int len,
				   struct x86_fault *fault)
{
	(void)opaque;
	if (lin < CODE_RIP || lin + len > CODE_RIP + sizeof(code))
		return cb_fault(fault, lin);
	memcpy(buf, code + (lin - CODE_RIP), len);
	return X86_CB_OK;
}

static enum x86_cb_status cb_read(void *opaque, u64 lin, void *buf, unsigned int len,
				  struct x86_fault *fault)
{
	(void)opaque;
	if (!in_mem(lin, len))
		return cb_fault(fault, lin);
	memcpy(buf, (void *)(uintptr_t)lin, len);
	return X86_CB_OK;
}

static enum x86_cb_status cb_write(void *opaque, u64 lin, const void *buf, unsigned int len,
				   struct x86_fault *fault)
{
	(void)opaque;
	if (!in_mem(lin, len))
		return cb_fault(fault, lin);
	memcpy((void *)(uintptr_t)lin, buf, len);
	return X86_CB_OK;
}

static enum x86_cb_status cb_cmpxchg(void *opaque, u64 lin, void *expected, const void *desired,
				     unsigned int len, bool *swapped, struct x86_fault *fault)
{
	(void)opaque;
	if (!in_mem(lin, len))
		return cb_fault(fault, lin);
	*swapped = !memcmp((void *)(uintptr_t)lin, expected, len);
	if (*swapped)
		memcpy((void *)(uintptr_t)lin, desired, len);
	else
		memcpy(expected, (void *)(uintptr_t)lin, len);
	return X86_CB_OK;
}

static enum x86_cb_status cb_vreg_read(void *opaque, enum x86_vreg kind, unsigned int n,
				       u8 *val)
{
	(void)opaque;
	memcpy(val, kind == X86_VREG_MM ? (void *)&emu_vregs.mm[n] : emu_vregs.xmm[n],
	       kind == X86_VREG_MM ? 8 : 16);
	return X86_CB_OK;
}

static enum x86_cb_status cb_vreg_write(void *opaque, enum x86_vreg kind, unsigned int n,
					const u8 *val)
{
	(void)opaque;
	if (val)	/* NULL: x87 tags only, not compared */
		memcpy(kind == X86_VREG_MM ? (void *)&emu_vregs.mm[n] : emu_vregs.xmm[n], val,
		       kind == X86_VREG_MM ? 8 : 16);
	return X86_CB_OK;
}

static const struct x86_emu_ops diff_ops = {
	.fetch = cb_fetch, .read = cb_read, .write = cb_write, .cmpxchg = cb_cmpxchg,
	.vreg_read = cb_vreg_read, .vreg_write = cb_vreg_write,
};

/* ---- random numbers --------------------------------------------------------- */

static u64 rng_state = 0x9e3779b97f4a7c15ull;

static u64 rnd(void)
{
	/* xorshift64* */
	rng_state ^= rng_state >> 12;
	rng_state ^= rng_state << 25;
	rng_state ^= rng_state >> 27;
	return rng_state * 0x2545f4914f6cdd1dull;
}

static unsigned int rnd_below(unsigned int n)
{
	return (unsigned int)(rnd() % n);
}

/* Values that exercise carries, overflows and sign changes at every size. */
static u64 interesting(void)
{
	static const u64 edges[] = {
		0, 1, 2, 0x7f, 0x80, 0xff, 0x7fff, 0x8000, 0xffff, 0x7fffffff, 0x80000000,
		0xffffffff, 0x7fffffffffffffffull, 0x8000000000000000ull, ~0ull, 0xf, 0x10,
	};

	switch (rnd_below(4)) {
	case 0:
		return edges[rnd_below(ARRAY_SIZE(edges))];
	case 1:
		return edges[rnd_below(ARRAY_SIZE(edges))] + rnd_below(3) - 1;
	default:
		return rnd();
	}
}

/* ---- the instructions under test ------------------------------------------- */

enum {
	F_BYTE = 1 << 0,	/* byte operands */
	F_IMM8 = 1 << 1,
	F_IMMZ = 1 << 2,	/* imm16/imm32 by operand size */
	F_LOCK = 1 << 3,	/* lockable with a memory destination */
	F_MEM_ONLY = 1 << 4,
	F_BITOFF = 1 << 5,	/* ModRM.reg is a bit offset into memory */
	F_ACC = 1 << 6,		/* cmpxchg: make RAX match memory half the time */
	F_CX8 = 1 << 7,		/* cmpxchg8b/16b */
	F_STRING = 1 << 8,	/* stos/movs/lods/cmps/scas: no ModRM, random rep and DF */
	F_DIV = 1 << 9,		/* div/idiv: operands chosen so no #DE is raised */
	F_SHIFT = 1 << 10,	/* shld/shrd: a count the CPUs agree on */
	F_VEC = 1 << 11,	/* SSE/MMX move: ModRM.reg is an xmm (mm with F_MM) */
	F_MM = 1 << 12,
	F_REXW = 1 << 13,	/* F_VEC: with REX.W (movq forms of 6E/7E) */
	F_STACK = 1 << 14,	/* push/pop/leave/enter: RSP (and RBP) point into mem[] */
	F_REG = 1 << 15,	/* F_STACK: register in the opcode's low 3 bits (50+r, 58+r) */
};

struct op_spec {
	const char *name;
	u8 opcode[2];
	unsigned int opcode_len;
	int ext;		/* ModRM.reg opcode extension, or -1 for a register */
	unsigned int flags;
	u64 undef;		/* flags the SDM leaves undefined: not compared */
	u8 mpfx;		/* F_VEC: mandatory prefix 66/F2/F3, or 0 */
};

#define OP1(n, o, x, f) { n, { o, 0 }, 1, x, f, 0, 0 }
#define OP2(n, o, x, f) { n, { 0x0f, o }, 2, x, f, 0, 0 }
#define OP1U(n, o, x, f, u) { n, { o, 0 }, 1, x, f, u, 0 }
#define OP2U(n, o, x, f, u) { n, { 0x0f, o }, 2, x, f, u, 0 }
#define VEC(n, p, o, f) { n, { 0x0f, o }, 2, -1, F_VEC | (f), 0, p }
#define SZAP (X86_FLAG_SF | X86_FLAG_ZF | X86_FLAG_AF | X86_FLAG_PF)
#define CC(n, o, f) OP2(n, o, -1, f)

static const struct op_spec ops[] = {
	OP1("add Eb,Gb", 0x00, -1, F_BYTE | F_LOCK), OP1("add Ev,Gv", 0x01, -1, F_LOCK),
	OP1("add Gb,Eb", 0x02, -1, F_BYTE), OP1("add Gv,Ev", 0x03, -1, 0),
	OP1("or Eb,Gb", 0x08, -1, F_BYTE | F_LOCK), OP1("or Ev,Gv", 0x09, -1, F_LOCK),
	OP1("or Gb,Eb", 0x0a, -1, F_BYTE), OP1("or Gv,Ev", 0x0b, -1, 0),
	OP1("adc Eb,Gb", 0x10, -1, F_BYTE | F_LOCK), OP1("adc Ev,Gv", 0x11, -1, F_LOCK),
	OP1("adc Gb,Eb", 0x12, -1, F_BYTE), OP1("adc Gv,Ev", 0x13, -1, 0),
	OP1("sbb Eb,Gb", 0x18, -1, F_BYTE | F_LOCK), OP1("sbb Ev,Gv", 0x19, -1, F_LOCK),
	OP1("sbb Gb,Eb", 0x1a, -1, F_BYTE), OP1("sbb Gv,Ev", 0x1b, -1, 0),
	OP1("and Eb,Gb", 0x20, -1, F_BYTE | F_LOCK), OP1("and Ev,Gv", 0x21, -1, F_LOCK),
	OP1("and Gb,Eb", 0x22, -1, F_BYTE), OP1("and Gv,Ev", 0x23, -1, 0),
	OP1("sub Eb,Gb", 0x28, -1, F_BYTE | F_LOCK), OP1("sub Ev,Gv", 0x29, -1, F_LOCK),
	OP1("sub Gb,Eb", 0x2a, -1, F_BYTE), OP1("sub Gv,Ev", 0x2b, -1, 0),
	OP1("xor Eb,Gb", 0x30, -1, F_BYTE | F_LOCK), OP1("xor Ev,Gv", 0x31, -1, F_LOCK),
	OP1("xor Gb,Eb", 0x32, -1, F_BYTE), OP1("xor Gv,Ev", 0x33, -1, 0),
	OP1("cmp Eb,Gb", 0x38, -1, F_BYTE), OP1("cmp Ev,Gv", 0x39, -1, 0),
	OP1("cmp Gb,Eb", 0x3a, -1, F_BYTE), OP1("cmp Gv,Ev", 0x3b, -1, 0),
	OP1("add Eb,Ib", 0x80, 0, F_BYTE | F_IMM8 | F_LOCK),
	OP1("or Eb,Ib", 0x80, 1, F_BYTE | F_IMM8 | F_LOCK),
	OP1("adc Eb,Ib", 0x80, 2, F_BYTE | F_IMM8 | F_LOCK),
	OP1("sbb Eb,Ib", 0x80, 3, F_BYTE | F_IMM8 | F_LOCK),
	OP1("and Eb,Ib", 0x80, 4, F_BYTE | F_IMM8 | F_LOCK),
	OP1("sub Eb,Ib", 0x80, 5, F_BYTE | F_IMM8 | F_LOCK),
	OP1("xor Eb,Ib", 0x80, 6, F_BYTE | F_IMM8 | F_LOCK),
	OP1("cmp Eb,Ib", 0x80, 7, F_BYTE | F_IMM8),
	OP1("add Ev,Iz", 0x81, 0, F_IMMZ | F_LOCK), OP1("or Ev,Iz", 0x81, 1, F_IMMZ | F_LOCK),
	OP1("adc Ev,Iz", 0x81, 2, F_IMMZ | F_LOCK), OP1("sbb Ev,Iz", 0x81, 3, F_IMMZ | F_LOCK),
	OP1("and Ev,Iz", 0x81, 4, F_IMMZ | F_LOCK), OP1("sub Ev,Iz", 0x81, 5, F_IMMZ | F_LOCK),
	OP1("xor Ev,Iz", 0x81, 6, F_IMMZ | F_LOCK), OP1("cmp Ev,Iz", 0x81, 7, F_IMMZ),
	OP1("add Ev,Ib", 0x83, 0, F_IMM8 | F_LOCK), OP1("or Ev,Ib", 0x83, 1, F_IMM8 | F_LOCK),
	OP1("adc Ev,Ib", 0x83, 2, F_IMM8 | F_LOCK), OP1("sbb Ev,Ib", 0x83, 3, F_IMM8 | F_LOCK),
	OP1("and Ev,Ib", 0x83, 4, F_IMM8 | F_LOCK), OP1("sub Ev,Ib", 0x83, 5, F_IMM8 | F_LOCK),
	OP1("xor Ev,Ib", 0x83, 6, F_IMM8 | F_LOCK), OP1("cmp Ev,Ib", 0x83, 7, F_IMM8),
	OP1("test Eb,Gb", 0x84, -1, F_BYTE), OP1("test Ev,Gv", 0x85, -1, 0),
	OP1("test Eb,Ib", 0xf6, 0, F_BYTE | F_IMM8), OP1("test Ev,Iz", 0xf7, 0, F_IMMZ),
	OP1("test Eb,Ib /1", 0xf6, 1, F_BYTE | F_IMM8),
	OP1("not Eb", 0xf6, 2, F_BYTE | F_LOCK), OP1("not Ev", 0xf7, 2, F_LOCK),
	OP1("neg Eb", 0xf6, 3, F_BYTE | F_LOCK), OP1("neg Ev", 0xf7, 3, F_LOCK),
	OP1("inc Eb", 0xfe, 0, F_BYTE | F_LOCK), OP1("inc Ev", 0xff, 0, F_LOCK),
	OP1("dec Eb", 0xfe, 1, F_BYTE | F_LOCK), OP1("dec Ev", 0xff, 1, F_LOCK),
	OP1("xchg Eb,Gb", 0x86, -1, F_BYTE), OP1("xchg Ev,Gv", 0x87, -1, 0),
	OP1("mov Eb,Gb", 0x88, -1, F_BYTE), OP1("mov Ev,Gv", 0x89, -1, 0),
	OP1("mov Gb,Eb", 0x8a, -1, F_BYTE), OP1("mov Gv,Ev", 0x8b, -1, 0),
	OP1("mov Eb,Ib", 0xc6, 0, F_BYTE | F_IMM8), OP1("mov Ev,Iz", 0xc7, 0, F_IMMZ),
	OP1("movsxd Gv,Ed", 0x63, -1, 0),
	OP2("cmpxchg Eb,Gb", 0xb0, -1, F_BYTE | F_LOCK | F_ACC),
	OP2("cmpxchg Ev,Gv", 0xb1, -1, F_LOCK | F_ACC),
	OP2("xadd Eb,Gb", 0xc0, -1, F_BYTE | F_LOCK), OP2("xadd Ev,Gv", 0xc1, -1, F_LOCK),
	OP2("bt Ev,Gv", 0xa3, -1, F_BITOFF), OP2("bts Ev,Gv", 0xab, -1, F_BITOFF | F_LOCK),
	OP2("btr Ev,Gv", 0xb3, -1, F_BITOFF | F_LOCK),
	OP2("btc Ev,Gv", 0xbb, -1, F_BITOFF | F_LOCK),
	OP2("bt Ev,Ib", 0xba, 4, F_IMM8), OP2("bts Ev,Ib", 0xba, 5, F_IMM8 | F_LOCK),
	OP2("btr Ev,Ib", 0xba, 6, F_IMM8 | F_LOCK), OP2("btc Ev,Ib", 0xba, 7, F_IMM8 | F_LOCK),
	OP2("movzx Gv,Eb", 0xb6, -1, 0), OP2("movzx Gv,Ew", 0xb7, -1, 0),
	OP2("movsx Gv,Eb", 0xbe, -1, 0), OP2("movsx Gv,Ew", 0xbf, -1, 0),
	OP2("cmpxchg8b/16b", 0xc7, 1, F_MEM_ONLY | F_LOCK | F_CX8),
	OP1("stosb", 0xaa, -1, F_STRING | F_BYTE), OP1("stos", 0xab, -1, F_STRING),
	OP1("movsb", 0xa4, -1, F_STRING | F_BYTE), OP1("movs", 0xa5, -1, F_STRING),
	OP1("lodsb", 0xac, -1, F_STRING | F_BYTE), OP1("lods", 0xad, -1, F_STRING),
	OP1("cmpsb", 0xa6, -1, F_STRING | F_BYTE), OP1("cmps", 0xa7, -1, F_STRING),
	OP1("scasb", 0xae, -1, F_STRING | F_BYTE), OP1("scas", 0xaf, -1, F_STRING),
	OP1U("mul Eb", 0xf6, 4, F_BYTE, SZAP), OP1U("mul Ev", 0xf7, 4, 0, SZAP),
	OP1U("imul Eb", 0xf6, 5, F_BYTE, SZAP), OP1U("imul Ev", 0xf7, 5, 0, SZAP),
	OP1U("div Eb", 0xf6, 6, F_BYTE | F_DIV | F_MEM_ONLY, X86_FLAGS_ARITH),
	OP1U("div Ev", 0xf7, 6, F_DIV | F_MEM_ONLY, X86_FLAGS_ARITH),
	OP1U("idiv Eb", 0xf6, 7, F_BYTE | F_DIV | F_MEM_ONLY, X86_FLAGS_ARITH),
	OP1U("idiv Ev", 0xf7, 7, F_DIV | F_MEM_ONLY, X86_FLAGS_ARITH),
	OP2U("imul Gv,Ev", 0xaf, -1, 0, SZAP),
	OP1U("imul Gv,Ev,Iz", 0x69, -1, F_IMMZ, SZAP), OP1U("imul Gv,Ev,Ib", 0x6b, -1, F_IMM8, SZAP),
	OP2U("bsf Gv,Ev", 0xbc, -1, 0, X86_FLAGS_ARITH & ~X86_FLAG_ZF),
	OP2U("bsr Gv,Ev", 0xbd, -1, 0, X86_FLAGS_ARITH & ~X86_FLAG_ZF),
	OP2U("shld Ev,Gv,Ib", 0xa4, -1, F_IMM8 | F_SHIFT, X86_FLAG_OF | X86_FLAG_AF),
	OP2U("shld Ev,Gv,CL", 0xa5, -1, F_SHIFT, X86_FLAG_OF | X86_FLAG_AF),
	OP2U("shrd Ev,Gv,Ib", 0xac, -1, F_IMM8 | F_SHIFT, X86_FLAG_OF | X86_FLAG_AF),
	OP2U("shrd Ev,Gv,CL", 0xad, -1, F_SHIFT, X86_FLAG_OF | X86_FLAG_AF),
	CC("cmovo", 0x40, 0), CC("cmovno", 0x41, 0), CC("cmovb", 0x42, 0), CC("cmovae", 0x43, 0),
	CC("cmove", 0x44, 0), CC("cmovne", 0x45, 0), CC("cmovbe", 0x46, 0), CC("cmova", 0x47, 0),
	CC("cmovs", 0x48, 0), CC("cmovns", 0x49, 0), CC("cmovp", 0x4a, 0), CC("cmovnp", 0x4b, 0),
	CC("cmovl", 0x4c, 0), CC("cmovge", 0x4d, 0), CC("cmovle", 0x4e, 0), CC("cmovg", 0x4f, 0),
	CC("seto", 0x90, F_BYTE), CC("setno", 0x91, F_BYTE), CC("setb", 0x92, F_BYTE),
	CC("setae", 0x93, F_BYTE), CC("sete", 0x94, F_BYTE), CC("setne", 0x95, F_BYTE),
	CC("setbe", 0x96, F_BYTE), CC("seta", 0x97, F_BYTE), CC("sets", 0x98, F_BYTE),
	CC("setns", 0x99, F_BYTE), CC("setp", 0x9a, F_BYTE), CC("setnp", 0x9b, F_BYTE),
	CC("setl", 0x9c, F_BYTE), CC("setge", 0x9d, F_BYTE), CC("setle", 0x9e, F_BYTE),
	CC("setg", 0x9f, F_BYTE),
	OP1("mov Ev,es", 0x8c, 0, 0), OP1("mov Ev,cs", 0x8c, 1, 0), OP1("mov Ev,ss", 0x8c, 2, 0),
	OP1("mov Ev,ds", 0x8c, 3, 0),
	VEC("movups load", 0, 0x10, 0), VEC("movups store", 0, 0x11, 0),
	VEC("movupd load", 0x66, 0x10, 0), VEC("movupd store", 0x66, 0x11, 0),
	VEC("movss load", 0xf3, 0x10, 0), VEC("movss store", 0xf3, 0x11, 0),
	VEC("movsd load", 0xf2, 0x10, 0), VEC("movsd store", 0xf2, 0x11, 0),
	VEC("movaps load", 0, 0x28, 0), VEC("movaps store", 0, 0x29, 0),
	VEC("movapd load", 0x66, 0x28, 0), VEC("movapd store", 0x66, 0x29, 0),
	VEC("movntps", 0, 0x2b, 0), VEC("movntpd", 0x66, 0x2b, 0),
	VEC("movd mm load", 0, 0x6e, F_MM), VEC("movd mm store", 0, 0x7e, F_MM),
	VEC("movq mm,m64 (6E)", 0, 0x6e, F_MM | F_REXW), VEC("movq m64,mm (7E)", 0, 0x7e, F_MM | F_REXW),
	VEC("movd xmm load", 0x66, 0x6e, 0), VEC("movd xmm store", 0x66, 0x7e, 0),
	VEC("movq xmm,m64 (66 6E)", 0x66, 0x6e, F_REXW), VEC("movq m64,xmm (66 7E)", 0x66, 0x7e, F_REXW),
	VEC("movq mm load", 0, 0x6f, F_MM), VEC("movq mm store", 0, 0x7f, F_MM),
	VEC("movdqa load", 0x66, 0x6f, 0), VEC("movdqa store", 0x66, 0x7f, 0),
	VEC("movdqu load", 0xf3, 0x6f, 0), VEC("movdqu store", 0xf3, 0x7f, 0),
	VEC("movq xmm,m64 (F3 7E)", 0xf3, 0x7e, 0), VEC("movq m64,xmm (66 D6)", 0x66, 0xd6, 0),
	VEC("movntq", 0, 0xe7, F_MM), VEC("movntdq", 0x66, 0xe7, 0),
	OP1("push r", 0x50, -1, F_STACK | F_REG), OP1("pop r", 0x58, -1, F_STACK | F_REG),
	OP1("push Ib", 0x6a, -1, F_STACK | F_IMM8), OP1("push Iz", 0x68, -1, F_STACK | F_IMMZ),
	OP1("push Ev", 0xff, 6, F_STACK | F_MEM_ONLY), OP1("pop Ev", 0x8f, 0, F_STACK | F_MEM_ONLY),
	OP1("leave", 0xc9, -1, F_STACK), OP1("enter Iw, 0", 0xc8, -1, F_STACK),
};

/* Is E a byte operand (AH..BH for registers 4-7 when there is no REX)? */
static bool e_is_byte(const struct op_spec *op)
{
	return (op->flags & F_BYTE) || (op->opcode_len == 2 && (op->opcode[1] == 0xb6 ||
								 op->opcode[1] == 0xbe));
}

/* One random case: encode it and set up the initial state. */
struct diff_case {
	struct cpu_state st;
	u8 mem[MEM_SIZE];
	bool has_mem;
};

static void random_state(struct diff_case *c)
{
	for (unsigned int i = 0; i < 16; i++)
		c->st.gpr[i] = interesting();
	c->st.gpr[X86_RSP] = 0;
	for (unsigned int i = 0; i < 16; i++) {
		u64 v[2] = { rnd(), rnd() };

		memcpy(c->st.xmm[i], v, 16);
	}
	for (unsigned int i = 0; i < 8; i++)
		c->st.mm[i] = rnd();
	/* Arithmetic flags random; DF, TF, AC clear; bit 1 always set. */
	c->st.rflags = 0x2 | (rnd() & X86_FLAGS_ARITH);
	for (unsigned int i = 0; i < MEM_SIZE; i += 8) {
		u64 v = interesting();

		memcpy(c->mem + i, &v, 8);
	}
}

/*
 * String instructions: RSI/RDI in the middle of mem[], at most 15 elements
 * (120 bytes) either way, with or without rep, DF random. Overlapping
 * source and destination included.
 */
static void make_string_case(const struct op_spec *op, struct diff_case *c)
{
	unsigned int n = 0, size = (op->flags & F_BYTE) ? 1 : 2u << rnd_below(3);

	if (size == 2)
		code[n++] = 0x66;
	if (rnd_below(2))
		code[n++] = rnd_below(2) ? 0xf3 : 0xf2;
	if (size == 8)
		code[n++] = 0x48;
	code[n++] = op->opcode[0];
	code_len = n;
	random_state(c);
	if (rnd_below(2))
		c->st.rflags |= X86_FLAG_DF;
	c->st.gpr[X86_RSI] = (u64)(uintptr_t)(mem + 128 + rnd_below(256));
	c->st.gpr[X86_RDI] = (u64)(uintptr_t)(mem + 128 + rnd_below(256));
	c->st.gpr[X86_RCX] = rnd_below(16);
	c->has_mem = true;
}

/*
 * SSE/MMX moves: [mandatory prefix] [REX] 0F op ModRM disp8, always a
 * memory operand at mem + MEM_OPERAND (16-byte aligned, as movaps wants).
 */
static void make_vec_case(const struct op_spec *op, struct diff_case *c)
{
	unsigned int n = 0, g = rnd_below(op->flags & F_MM ? 8 : 16), b;
	u8 rex = (op->flags & F_REXW) ? 0x48 : 0x40;
	s8 disp = (s8)rnd();

	do
		b = rnd_below(16);
	while ((b & 7) == 4);		/* no SIB byte, never RSP */
	if (op->mpfx)
		code[n++] = op->mpfx;
	if (g >= 8)
		rex |= 4;
	if (b >= 8)
		rex |= 1;
	if (rex != 0x40 || rnd_below(4) == 0)
		code[n++] = rex;
	code[n++] = 0x0f;
	code[n++] = op->opcode[1];
	code[n++] = (u8)(0x40 | ((g & 7) << 3) | (b & 7));
	code[n++] = (u8)disp;
	code_len = n;
	random_state(c);
	c->has_mem = true;
	c->st.gpr[b] = (u64)(uintptr_t)(mem + MEM_OPERAND) - (u64)(s64)disp;
}

/*
 * push/pop/leave/enter, 64 or 16 bits (66): RSP in the middle of mem[], RBP
 * too (leave), a memory operand [base + disp8] for push/pop Ev. The stub
 * runs them on that stack.
 */
static void make_stack_case(const struct op_spec *op, struct diff_case *c)
{
	unsigned int n = 0, r = rnd_below(16), b;
	u8 op0 = op->opcode[0];
	s8 disp = (s8)rnd();

	do
		b = rnd_below(16);
	while ((b & 7) == 4 || b == X86_RBP);	/* no SIB; RBP is set below */
	if (rnd_below(3) == 0)
		code[n++] = 0x66;
	if (op->flags & F_REG) {
		if (r >= 8)
			code[n++] = 0x41;
		code[n++] = (u8)(op0 | (r & 7));
	} else {
		if ((op->flags & F_MEM_ONLY) && b >= 8)
			code[n++] = 0x41;
		code[n++] = op0;
	}
	if (op->flags & F_MEM_ONLY) {
		code[n++] = (u8)(0x40 | (op->ext << 3) | (b & 7));
		code[n++] = (u8)disp;
	} else if (op->flags & F_IMM8) {
		code[n++] = (u8)interesting();
	} else if (op->flags & F_IMMZ) {
		u64 imm = interesting();
		unsigned int isz = code[0] == 0x66 ? 2 : 4;

		memcpy(code + n, &imm, isz);
		n += isz;
	} else if (op0 == 0xc8) {
		code[n++] = (u8)rnd();		/* frame size: level 0 only */
		code[n++] = (u8)rnd_below(16);
		code[n++] = 0;
	}
	code_len = n;
	random_state(c);
	c->has_mem = op->flags & F_MEM_ONLY;	/* the ModRM operand; stack slots are not */
	c->st.gpr[X86_RSP] = (u64)(uintptr_t)(mem + 128 + 8 * rnd_below(16));
	c->st.gpr[X86_RBP] = (u64)(uintptr_t)(mem + 128 + 8 * rnd_below(16));
	if (op->flags & F_MEM_ONLY)
		c->st.gpr[b] = (u64)(uintptr_t)(mem + MEM_OPERAND + 64) - (u64)(s64)disp;
}

/* div/idiv: a non-zero divisor and a dividend whose quotient fits (no #DE). */
static void fix_division(const struct op_spec *op, struct diff_case *c, unsigned int size)
{
	u64 m = size == 8 ? ~0ull : (1ull << (size * 8)) - 1, d = 0, *hi;
	bool is_signed = op->ext == 7;

	memcpy(&d, c->mem + MEM_OPERAND, size);
	if (!d || (is_signed && d == m))
		d = 2 + rnd_below(100);		/* not 0, not -1 */
	memcpy(c->mem + MEM_OPERAND, &d, size);
	if (size == 1) {
		u64 al = c->st.gpr[X86_RAX] & 0xff;
		u64 ah = is_signed ? (al & 0x80 ? 0xff : 0) : ((c->st.gpr[X86_RAX] >> 8) & 0xff) % d;

		c->st.gpr[X86_RAX] = (c->st.gpr[X86_RAX] & ~0xffffull) | (ah << 8) | al;
		return;
	}
	hi = &c->st.gpr[X86_RDX];
	if (is_signed)
		*hi = (*hi & ~m) | ((c->st.gpr[X86_RAX] & (m ^ (m >> 1))) ? m : 0);
	else
		*hi = (*hi & ~m) | ((*hi & m) % d);
}

static void make_case(const struct op_spec *op, struct diff_case *c)
{
	unsigned int size, n = 0, g, b = 0;
	bool has_rex, is_mem = (op->flags & F_MEM_ONLY) || rnd_below(4) != 0;
	bool g_high_ok, e_high_ok;
	u8 rex = 0x40, modrm;
	s8 disp = (s8)rnd();

	if (op->flags & F_BYTE)
		size = 1;
	else
		size = (op->flags & F_CX8) ? 8 : 2u << rnd_below(3);	/* 2, 4, 8 */
	if (op->flags & F_CX8 && rnd_below(2))
		size = 16;
	if ((op->flags & F_CX8) && size == 16)
		disp &= ~15;	/* cmpxchg16b needs a 16-byte aligned operand */

	/* Prefixes: LOCK and 66 in random order. */
	bool lock = (op->flags & F_LOCK) && is_mem && rnd_below(2);
	bool opsize = size == 2;

	if (rnd_below(2)) {
		if (lock)
			code[n++] = 0xf0;
		if (opsize)
			code[n++] = 0x66;
	} else {
		if (opsize)
			code[n++] = 0x66;
		if (lock)
			code[n++] = 0xf0;
	}

	if (size == 8 && !(op->flags & F_CX8))
		rex |= 8;
	if (size == 16)
		rex |= 8;
	/* Registers: never RSP (the stub's stack); AH..BH only without REX. */
	has_rex = (rex & 8) || rnd_below(3) == 0;
	g_high_ok = (op->flags & F_BYTE) && !has_rex;
	e_high_ok = e_is_byte(op) && !has_rex;
	for (;;) {
		g = op->ext >= 0 ? (unsigned int)op->ext : rnd_below(16);
		b = rnd_below(16);
		if (op->ext < 0 && g == X86_RSP && !g_high_ok)
			continue;
		if (is_mem && ((b & 7) == 4))
			continue;	/* would need a SIB byte */
		if (!is_mem && b == X86_RSP && !e_high_ok)
			continue;
		if (op->ext < 0 && is_mem && g == b && (op->flags & F_BITOFF))
			continue;
		if ((op->flags & F_CX8) && b <= X86_RBX)
			continue;	/* keep RAX..RBX free for the comparands */
		if ((op->flags & F_DIV) && (b == X86_RAX || b == X86_RDX))
			continue;	/* the dividend is fixed up below */
		if ((op->flags & F_SHIFT) && b == X86_RCX)
			continue;	/* CL is the count */
		if (op->ext < 0 && g >= 8)
			rex |= 4;
		if (b >= 8)
			rex |= 1;
		break;
	}
	if ((rex & 5) || (rex & 8))
		has_rex = true;
	if (has_rex) {
		/* With a REX, 4-7 are SPL..DIL: SPL is out. */
		if ((op->ext < 0 && g == X86_RSP) || (!is_mem && b == X86_RSP)) {
			make_case(op, c);
			return;
		}
		code[n++] = rex;
	}
	memcpy(code + n, op->opcode, op->opcode_len);
	n += op->opcode_len;
	modrm = (u8)(((g & 7) << 3) | (b & 7));
	code[n++] = is_mem ? (u8)(0x40 | modrm) : (u8)(0xc0 | modrm);
	if (is_mem)
		code[n++] = (u8)disp;
	if (op->flags & F_IMM8) {
		code[n++] = (u8)interesting();
		/* 16-bit double shifts by 16..31 differ between Intel and AMD. */
		if ((op->flags & F_SHIFT) && size == 2)
			code[n - 1] = (u8)rnd_below(17);
	} else if (op->flags & F_IMMZ) {
		u64 imm = interesting();
		unsigned int isz = size == 2 ? 2 : 4;

		memcpy(code + n, &imm, isz);
		n += isz;
	}
	code_len = n;

	random_state(c);
	c->has_mem = is_mem;
	if (is_mem)
		c->st.gpr[b] = (u64)(uintptr_t)(mem + MEM_OPERAND) - (u64)(s64)disp;
	if ((op->flags & F_BITOFF) && is_mem)
		c->st.gpr[g] = (u64)(s64)(int)(rnd_below(1024) - 512);
	if ((op->flags & F_ACC) && b != X86_RAX && rnd_below(2)) {
		u64 v;

		memcpy(&v, c->mem + MEM_OPERAND, 8);
		c->st.gpr[X86_RAX] = is_mem ? v : c->st.gpr[b];
	}
	if (op->flags & F_DIV)
		fix_division(op, c, size);
	if ((op->flags & F_SHIFT) && !(op->flags & F_IMM8))
		c->st.gpr[X86_RCX] = (c->st.gpr[X86_RCX] & ~0xffull) |
				     rnd_below(size == 2 ? 17 : 256);
	if ((op->flags & F_CX8) && rnd_below(2)) {
		unsigned int half = size / 2;
		u64 lo = 0, hi = 0, keep = half == 8 ? 0 : 0xffffffff00000000ull;

		memcpy(&lo, c->mem + MEM_OPERAND, half);
		memcpy(&hi, c->mem + MEM_OPERAND + half, half);
		c->st.gpr[X86_RAX] = (c->st.gpr[X86_RAX] & keep) | lo;
		c->st.gpr[X86_RDX] = (c->st.gpr[X86_RDX] & keep) | hi;
	}
}

static void run_native(struct cpu_state *st, bool on_state_stack)
{
	size_t pro = (size_t)(diff_prologue_end - diff_prologue);
	size_t epi = (size_t)(diff_epilogue_end - diff_epilogue);
	size_t in = (size_t)(diff_stk_in_end - diff_stk_in);
	size_t out = (size_t)(diff_stk_out_end - diff_stk_out);
	u8 *p = stub;

	/* The prologue's last instruction (mov 56(%rdi), %rdi) is 4 bytes. */
	memcpy(p, diff_prologue, pro - 4);
	p += pro - 4;
	if (on_state_stack) {
		memcpy(p, diff_stk_in, in);
		p += in;
	}
	memcpy(p, diff_prologue + pro - 4, 4);
	p += 4;
	memcpy(p, code, code_len);
	p += code_len;
	if (on_state_stack) {
		memcpy(p, diff_stk_out, out);
		p += out;
	}
	memcpy(p, diff_epilogue, epi);
	((void (*)(struct cpu_state *))(void *)stub)(st);
	if (on_state_stack)
		st->gpr[X86_RSP] = *(volatile u64 *)STUB_GUEST_RSP;
}

static int failures_reported;

static void report(const struct op_spec *op, const char *what, u64 native, u64 emulated)
{
	if (failures_reported++ >= 20)
		return;
	fprintf(stderr, "  %s: %s native 0x%llx emulated 0x%llx; bytes:", op->name, what,
		(unsigned long long)native, (unsigned long long)emulated);
	for (unsigned int i = 0; i < code_len; i++)
		fprintf(stderr, " %02x", code[i]);
	fprintf(stderr, "\n");
}

/* Returns false if the emulator disagreed with the CPU. */
static bool run_case(const struct op_spec *op)
{
	static struct x86_emu_ctxt ctxt;
	struct diff_case c;
	struct cpu_state native;
	struct x86_emu_result res;
	u8 native_mem[MEM_SIZE];
	bool ok = true;

	memset(code, 0, sizeof(code));
	if (op->flags & F_STRING)
		make_string_case(op, &c);
	else if (op->flags & F_STACK)
		make_stack_case(op, &c);
	else if (op->flags & F_VEC)
		make_vec_case(op, &c);
	else
		make_case(op, &c);

	native = c.st;
	memcpy(mem, c.mem, MEM_SIZE);
	run_native(&native, op->flags & F_STACK);
	memcpy(native_mem, mem, MEM_SIZE);

	memcpy(mem, c.mem, MEM_SIZE);
	memset(&ctxt.regs, 0, sizeof(ctxt.regs));
	memcpy(ctxt.regs.gpr, c.st.gpr, sizeof(c.st.gpr));
	ctxt.regs.rflags = c.st.rflags;
	ctxt.regs.rip = CODE_RIP;
	ctxt.mode = X86_MODE_64;
	memset(ctxt.seg_base, 0, sizeof(ctxt.seg_base));
	memset(&ctxt.sys, 0, sizeof(ctxt.sys));
	__asm__("mov %%es, %0; mov %%cs, %1; mov %%ss, %2; mov %%ds, %3"
		: "=r"(ctxt.sys.sel[X86_SEG_ES]), "=r"(ctxt.sys.sel[X86_SEG_CS]),
		  "=r"(ctxt.sys.sel[X86_SEG_SS]), "=r"(ctxt.sys.sel[X86_SEG_DS]));
	memcpy(emu_vregs.xmm, c.st.xmm, sizeof(c.st.xmm));
	memcpy(emu_vregs.mm, c.st.mm, sizeof(c.st.mm));
	ctxt.ops = &diff_ops;
	/* A rep may take several calls: RIP stays until the count is done. */
	for (unsigned int calls = 0; calls < 64; calls++) {
		if (x86_emulate(&ctxt, &res) != X86_EMU_DONE) {
			report(op, "status", X86_EMU_DONE, res.status);
			return false;
		}
		if (ctxt.regs.rip != CODE_RIP)
			break;
	}
	if (ctxt.regs.rip != CODE_RIP + code_len) {
		report(op, "rip", CODE_RIP + code_len, ctxt.regs.rip);
		ok = false;
	}
	if (res.insn_len != code_len) {
		report(op, "length", code_len, res.insn_len);
		ok = false;
	}
	if (res.has_mem != c.has_mem && !(op->flags & F_STRING)) {
		report(op, "has_mem", c.has_mem, res.has_mem);
		ok = false;
	}
	for (unsigned int i = 0; i < 16; i++) {
		if ((i != X86_RSP || (op->flags & F_STACK)) && native.gpr[i] != ctxt.regs.gpr[i]) {
			char what[16];

			snprintf(what, sizeof(what), "gpr%u", i);
			report(op, what, native.gpr[i], ctxt.regs.gpr[i]);
			ok = false;
		}
	}
	if (((native.rflags ^ ctxt.regs.rflags) & FLAGS_COMPARED & ~op->undef)) {
		report(op, "rflags", native.rflags & FLAGS_COMPARED & ~op->undef,
		       ctxt.regs.rflags & FLAGS_COMPARED & ~op->undef);
		ok = false;
	}
	for (unsigned int i = 0; i < 16; i++) {
		if (memcmp(native.xmm[i], emu_vregs.xmm[i], 16)) {
			u64 a, b;

			memcpy(&a, native.xmm[i], 8);
			memcpy(&b, emu_vregs.xmm[i], 8);
			report(op, "xmm (low half)", a, b);
			ok = false;
		}
	}
	for (unsigned int i = 0; i < 8; i++) {
		if (native.mm[i] != emu_vregs.mm[i]) {
			report(op, "mm", native.mm[i], emu_vregs.mm[i]);
			ok = false;
		}
	}
	for (unsigned int i = 0; i < MEM_SIZE; i += 8) {
		u64 a, b;

		memcpy(&a, native_mem + i, 8);
		memcpy(&b, mem + i, 8);
		if (a != b) {
			char what[24];

			snprintf(what, sizeof(what), "mem+%u", i);
			report(op, what, a, b);
			ok = false;
			break;
		}
	}
	return ok;
}

static void setup_stub(void)
{
	if (stub)
		return;
	stub = mmap((void *)STUB_ADDR, 4096, PROT_READ | PROT_WRITE | PROT_EXEC,
		    MAP_PRIVATE | MAP_ANONYMOUS | MAP_FIXED_NOREPLACE, -1, 0);
	if (stub != (void *)STUB_ADDR) {
		perror("mmap rwx");
		exit(2);
	}
}

/* Sanity check of the harness itself: the stub must run a known instruction. */
TEST(diff_harness_runs_native_add)
{
	struct cpu_state st = { 0 };

	setup_stub();
	/* add rax, rcx */
	code[0] = 0x48;
	code[1] = 0x01;
	code[2] = 0xc8;
	code_len = 3;
	st.gpr[X86_RAX] = 40;
	st.gpr[X86_RCX] = 2;
	st.rflags = 0x2 | X86_FLAG_CF;
	run_native(&st, false);
	CHECK_EQ(st.gpr[X86_RAX], 42);
	CHECK_EQ(st.rflags & X86_FLAG_CF, 0);
}

TEST(diff_against_host_cpu)
{
	setup_stub();
	for (unsigned int i = 0; i < ARRAY_SIZE(ops); i++) {
		unsigned int bad = 0;

		for (unsigned int j = 0; j < CASES_PER_OP; j++)
			bad += !run_case(&ops[i]);
		if (bad)
			fprintf(stderr, "  %s: %u/%u cases differ\n", ops[i].name, bad,
				CASES_PER_OP);
		CHECK_EQ(bad, 0);
	}
}

UNIT_MAIN()
