/*
 * Unit tests of arch/x86/emulate.c: decoding (prefixes, addressing forms in
 * 16/32/64-bit modes), each instruction family, rep string ops with page
 * clamping, locked operations, and the all-or-nothing rule when a callback
 * faults. Instruction semantics (results and flags) are also checked against
 * the real CPU by test_emulate_diff.c.
 */
#include <string.h>

#include "unit.h"
#include "arch/x86/emulate.h"
#include "mm/pte.h"

/* Fake guest: data pages at DATA_BASE, code pages at CODE_BASE (linear). */
#define DATA_BASE 0x10000ull
#define DATA_PAGES 4
#define CODE_BASE 0x40000ull
#define CODE_PAGES 2
#define NO_PAGE (~0ull)

static u8 data[DATA_PAGES * PAGE_SIZE];
static u8 code[CODE_PAGES * PAGE_SIZE];

/* Callback log and knobs. */
static struct {
	unsigned int fetches, reads, writes, cmpxchgs;
	u64 write_lin;
	unsigned int write_len, max_fetch_len;
	u64 fault_page;		/* data accesses touching this page fault (#PF) */
	u64 fault_write_page;	/* same, for writes and cmpxchg only */
	u64 fault_fetch_page;
	bool unhandled;		/* data accesses return X86_CB_UNHANDLED */
	unsigned int interfere;	/* cmpxchg: change memory first, this many times */
	unsigned int sys_reads, sys_writes, seg_loads, vreg_reads, vreg_writes, mmx_touches;
	struct x86_segment seg[X86_SEG_TR + 1];	/* what load_seg received */
	u64 cr3;				/* what load_cr3 received */
	unsigned int cr3_loads;
	u8 xmm[16][16];
	u8 mm[8][8];
} fk;

static struct x86_emu_ctxt ctx;
static struct x86_emu_result res;

static bool touches(u64 lin, unsigned int len, u64 page)
{
	return page != NO_PAGE && (lin >> 12) <= (page >> 12) &&
	       ((lin + len - 1) >> 12) >= (page >> 12);
}

static u8 *data_ptr(u64 lin, unsigned int len)
{
	if (lin < DATA_BASE || lin + len > DATA_BASE + sizeof(data))
		return NULL;
	return data + (lin - DATA_BASE);
}

static enum x86_cb_status page_fault(struct x86_fault *f, u64 lin, u32 ec)
{
	f->vector = X86_VEC_PF;
	f->has_error_code = true;
	f->error_code = ec;
	f->address = lin;
	return X86_CB_FAULT;
}

static enum x86_cb_status fk_fetch(void *opaque, u64 lin, void *buf, unsigned int len,
				   struct x86_fault *f)
{
	CHECK(opaque == &fk);
	fk.fetches++;
	if (len > fk.max_fetch_len)
		fk.max_fetch_len = len;
	if (touches(lin, len, fk.fault_fetch_page))
		return page_fault(f, lin, PFEC_I);
	if (lin < CODE_BASE || lin + len > CODE_BASE + sizeof(code))
		return page_fault(f, lin, PFEC_I);
	memcpy(buf, code + (lin - CODE_BASE), len);
	return X86_CB_OK;
}

static enum x86_cb_status fk_data_check(u64 lin, unsigned int len, u32 ec, struct x86_fault *f)
{
	if (fk.unhandled)
		return X86_CB_UNHANDLED;
	if ((ec & PFEC_W) && touches(lin, len, fk.fault_write_page))
		return page_fault(f, lin, ec);
	if (touches(lin, len, fk.fault_page) || !data_ptr(lin, len))
		return page_fault(f, lin, ec);
	return X86_CB_OK;
}

static enum x86_cb_status fk_read(void *opaque, u64 lin, void *buf, unsigned int len,
				  struct x86_fault *f)
{
	enum x86_cb_status st = fk_data_check(lin, len, 0, f);

	(void)opaque;
	fk.reads++;
	if (st == X86_CB_OK)
		memcpy(buf, data_ptr(lin, len), len);
	return st;
}

static enum x86_cb_status fk_write(void *opaque, u64 lin, const void *buf, unsigned int len,
				   struct x86_fault *f)
{
	enum x86_cb_status st = fk_data_check(lin, len, PFEC_W, f);

	(void)opaque;
	fk.writes++;
	if (st == X86_CB_OK) {
		memcpy(data_ptr(lin, len), buf, len);
		fk.write_lin = lin;
		fk.write_len = len;
	}
	return st;
}

static enum x86_cb_status fk_cmpxchg(void *opaque, u64 lin, void *expected, const void *desired,
				     unsigned int len, bool *swapped, struct x86_fault *f)
{
	enum x86_cb_status st = fk_data_check(lin, len, PFEC_W, f);
	u8 *p;

	(void)opaque;
	fk.cmpxchgs++;
	if (st != X86_CB_OK)
		return st;
	p = data_ptr(lin, len);
	if (fk.interfere) {
		fk.interfere--;
		p[0] ^= 0x40;	/* another vCPU got there first */
	}
	*swapped = !memcmp(p, expected, len);
	if (*swapped)
		memcpy(p, desired, len);
	else
		memcpy(expected, p, len);
	return X86_CB_OK;
}

/* Descriptor tables live in the data pages too (supervisor: no fault knobs). */
static enum x86_cb_status fk_sys_copy(void *opaque, u64 lin, void *buf, unsigned int len,
				      bool write, struct x86_fault *f)
{
	(void)opaque;
	if (!data_ptr(lin, len))
		return page_fault(f, lin, write ? PFEC_W : 0);
	if (write) {
		fk.sys_writes++;
		memcpy(data_ptr(lin, len), buf, len);
	} else {
		fk.sys_reads++;
		memcpy(buf, data_ptr(lin, len), len);
	}
	return X86_CB_OK;
}

static enum x86_cb_status fk_load_seg(void *opaque, enum x86_seg seg, const struct x86_segment *sg)
{
	(void)opaque;
	fk.seg_loads++;
	fk.seg[seg] = *sg;
	return X86_CB_OK;
}

static enum x86_cb_status fk_vreg_read(void *opaque, enum x86_vreg kind, unsigned int n, u8 *val)
{
	(void)opaque;
	fk.vreg_reads++;
	memcpy(val, kind == X86_VREG_MM ? fk.mm[n] : fk.xmm[n], kind == X86_VREG_MM ? 8 : 16);
	return X86_CB_OK;
}

static enum x86_cb_status fk_vreg_write(void *opaque, enum x86_vreg kind, unsigned int n,
					const u8 *val)
{
	(void)opaque;
	if (!val) {
		CHECK_EQ(kind, X86_VREG_MM);
		fk.mmx_touches++;
		return X86_CB_OK;
	}
	fk.vreg_writes++;
	memcpy(kind == X86_VREG_MM ? fk.mm[n] : fk.xmm[n], val, kind == X86_VREG_MM ? 8 : 16);
	return X86_CB_OK;
}

static enum x86_cb_status fk_load_cr3(void *opaque, u64 cr3, struct x86_fault *f)
{
	(void)opaque, (void)f;
	fk.cr3_loads++;
	fk.cr3 = cr3;
	return X86_CB_OK;
}

static const struct x86_emu_ops fk_ops = {
	.fetch = fk_fetch, .read = fk_read, .write = fk_write, .cmpxchg = fk_cmpxchg,
	.sys_copy = fk_sys_copy, .load_seg = fk_load_seg,
	.vreg_read = fk_vreg_read, .vreg_write = fk_vreg_write, .load_cr3 = fk_load_cr3,
};

static void setup(enum x86_cpu_mode mode)
{
	memset(&fk, 0, sizeof(fk));
	fk.fault_page = NO_PAGE;
	fk.fault_write_page = NO_PAGE;
	fk.fault_fetch_page = NO_PAGE;
	memset(data, 0, sizeof(data));
	memset(code, 0xcc, sizeof(code));
	memset(&ctx.regs, 0, sizeof(ctx.regs));
	memset(ctx.seg_base, 0, sizeof(ctx.seg_base));
	memset(&ctx.sys, 0, sizeof(ctx.sys));
	ctx.sys.efer_lma = mode == X86_MODE_64;
	ctx.regs.rflags = 0x2;
	ctx.mode = mode;
	ctx.ops = &fk_ops;
	ctx.opaque = &fk;
	/* 16-bit code: IP is 16 bits, so put the code at CS.base. */
	if (mode == X86_MODE_16)
		ctx.seg_base[X86_SEG_CS] = CODE_BASE;
	ctx.regs.rip = mode == X86_MODE_16 ? 0 : CODE_BASE;
}

/* Place the instruction at RIP (+ offset into the code pages) and emulate it. */
static enum x86_emu_status run_at(u64 offset, const u8 *bytes, unsigned int len)
{
	ctx.regs.rip += offset;
	memcpy(code + (ctx.seg_base[X86_SEG_CS] + ctx.regs.rip - CODE_BASE), bytes, len);
	return x86_emulate(&ctx, &res);
}

#define BYTES(...) (const u8[]){ __VA_ARGS__ }, sizeof((const u8[]){ __VA_ARGS__ })
#define RUN(...) run_at(0, BYTES(__VA_ARGS__))

static u64 peek(u64 lin, unsigned int size)
{
	u64 v = 0;

	memcpy(&v, data_ptr(lin, size), size);
	return v;
}

static void poke(u64 lin, u64 v, unsigned int size)
{
	memcpy(data_ptr(lin, size), &v, size);
}

#define R(n) ctx.regs.gpr[X86_##n]
#define CHECK_DONE(len)							\
	do {								\
		CHECK_EQ(res.status, X86_EMU_DONE);			\
		CHECK_EQ(res.insn_len, len);				\
	} while (0)

/* ---- modes and basic moves ------------------------------------------------ */

TEST(mode_from_cs)
{
	CHECK_EQ(x86_mode_from_cs(true, true, false), X86_MODE_64);
	CHECK_EQ(x86_mode_from_cs(true, false, true), X86_MODE_32);	/* compat mode */
	CHECK_EQ(x86_mode_from_cs(true, false, false), X86_MODE_16);
	CHECK_EQ(x86_mode_from_cs(false, true, true), X86_MODE_32);	/* L ignored w/o LMA */
	CHECK_EQ(x86_mode_from_cs(false, false, false), X86_MODE_16);
}

TEST(mov_store_pte_64)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE + 0x18;
	R(RAX) = 0x8000000012345067ull;
	CHECK_EQ(RUN(0x48, 0x89, 0x03), X86_EMU_DONE);		/* mov [rbx], rax */
	CHECK_DONE(3);
	CHECK_EQ(peek(DATA_BASE + 0x18, 8), 0x8000000012345067ull);
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 3);
	CHECK_EQ(res.kind, X86_INSN_MOV);
	CHECK(res.has_mem);
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x18);
	CHECK_EQ(res.mem_size, 8);
	CHECK_EQ(res.write_linear, DATA_BASE + 0x18);
	CHECK_EQ(res.bytes_written, 8);
	CHECK_EQ(fk.writes, 1);
	CHECK_EQ(fk.reads, 0);
	CHECK_EQ(fk.cmpxchgs, 0);
}

TEST(mov_load_rip_relative_zero_extends)
{
	setup(X86_MODE_64);
	R(RAX) = ~0ull;
	poke(DATA_BASE + 0x20, 0xfee00030, 4);
	/* mov eax, [rip + disp32]; next RIP = CODE_BASE + 6 */
	u32 disp = (u32)(DATA_BASE + 0x20 - (CODE_BASE + 6));

	CHECK_EQ(RUN(0x8b, 0x05, (u8)disp, (u8)(disp >> 8), (u8)(disp >> 16),
		     (u8)(disp >> 24)), X86_EMU_DONE);
	CHECK_DONE(6);
	CHECK_EQ(R(RAX), 0xfee00030);
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x20);
	CHECK_EQ(res.bytes_written, 0);
}

TEST(mov_byte_high_registers_and_rex)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	R(RCX) = 0xaabb;
	R(RBP) = 0x11;
	CHECK_EQ(RUN(0x88, 0x2b), X86_EMU_DONE);		/* mov [rbx], ch */
	CHECK_EQ(peek(DATA_BASE, 1), 0xaa);
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	R(RCX) = 0xaabb;
	R(RBP) = 0x11;
	CHECK_EQ(RUN(0x40, 0x88, 0x2b), X86_EMU_DONE);		/* mov [rbx], bpl */
	CHECK_EQ(peek(DATA_BASE, 1), 0x11);
	/* mov ah, [rbx]: only bits 15:8 change */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	R(RAX) = 0x1111111111111111ull;
	poke(DATA_BASE, 0x5a, 1);
	CHECK_EQ(RUN(0x8a, 0x23), X86_EMU_DONE);
	CHECK_EQ(R(RAX), 0x1111111111115a11ull);
}

TEST(mov_immediates_and_sizes)
{
	setup(X86_MODE_64);
	R(RDI) = DATA_BASE + 8;
	poke(DATA_BASE + 8, ~0ull, 8);
	/* mov qword [rdi], -2 (imm32 sign-extended) */
	CHECK_EQ(RUN(0x48, 0xc7, 0x07, 0xfe, 0xff, 0xff, 0xff), X86_EMU_DONE);
	CHECK_DONE(7);
	CHECK_EQ(peek(DATA_BASE + 8, 8), 0xfffffffffffffffeull);
	/* mov word [rdi], 0x1234 */
	setup(X86_MODE_64);
	R(RDI) = DATA_BASE + 8;
	poke(DATA_BASE + 8, ~0ull, 8);
	CHECK_EQ(RUN(0x66, 0xc7, 0x07, 0x34, 0x12), X86_EMU_DONE);
	CHECK_DONE(5);
	CHECK_EQ(peek(DATA_BASE + 8, 8), 0xffffffffffff1234ull);
	CHECK_EQ(res.mem_size, 2);
	/* mov byte [rdi+1], 0x77 */
	CHECK_EQ(RUN(0xc6, 0x47, 0x01, 0x77), X86_EMU_DONE);
	CHECK_EQ(peek(DATA_BASE + 8, 8), 0xffffffffffff7734ull);
}

TEST(mov_moffs_forms)
{
	setup(X86_MODE_64);
	R(RAX) = 0x0102030405060708ull;
	/* mov [moffs64], rax */
	CHECK_EQ(RUN(0x48, 0xa3, 0x40, 0x00, 0x01, 0, 0, 0, 0, 0), X86_EMU_DONE);
	CHECK_DONE(10);
	CHECK_EQ(peek(DATA_BASE + 0x40, 8), 0x0102030405060708ull);
	/* mov al, [moffs32] with 67 */
	setup(X86_MODE_64);
	poke(DATA_BASE + 0x41, 0x99, 1);
	CHECK_EQ(RUN(0x67, 0xa0, 0x41, 0x00, 0x01, 0x00), X86_EMU_DONE);
	CHECK_DONE(6);
	CHECK_EQ(R(RAX), 0x99);
	/* 32-bit mode: mov [moffs32], eax with a DS base */
	setup(X86_MODE_32);
	ctx.seg_base[X86_SEG_DS] = DATA_BASE;
	R(RAX) = 0xcafef00d;
	CHECK_EQ(RUN(0xa3, 0x10, 0, 0, 0), X86_EMU_DONE);
	CHECK_DONE(5);
	CHECK_EQ(peek(DATA_BASE + 0x10, 4), 0xcafef00d);
	/* 16-bit mode: mov ax, [moffs16] */
	setup(X86_MODE_16);
	ctx.seg_base[X86_SEG_DS] = DATA_BASE;
	poke(DATA_BASE + 0x22, 0xbeef, 2);
	CHECK_EQ(RUN(0xa1, 0x22, 0x00), X86_EMU_DONE);
	CHECK_DONE(3);
	CHECK_EQ(R(RAX), 0xbeef);
}

TEST(movzx_movsx_movsxd)
{
	setup(X86_MODE_64);
	R(RSI) = DATA_BASE;
	poke(DATA_BASE, 0x8081, 2);
	R(RAX) = ~0ull;
	CHECK_EQ(RUN(0x0f, 0xb6, 0x06), X86_EMU_DONE);		/* movzx eax, byte [rsi] */
	CHECK_EQ(R(RAX), 0x81);
	setup(X86_MODE_64);
	R(RSI) = DATA_BASE;
	poke(DATA_BASE, 0x8081, 2);
	CHECK_EQ(RUN(0x48, 0x0f, 0xbf, 0x06), X86_EMU_DONE);	/* movsx rax, word [rsi] */
	CHECK_EQ(R(RAX), 0xffffffffffff8081ull);
	CHECK_EQ(res.kind, X86_INSN_MOVSX);
	CHECK_EQ(res.mem_size, 2);
	setup(X86_MODE_64);
	R(RSI) = DATA_BASE;
	poke(DATA_BASE, 0x80000000, 4);
	CHECK_EQ(RUN(0x48, 0x63, 0x06), X86_EMU_DONE);		/* movsxd rax, [rsi] */
	CHECK_EQ(R(RAX), 0xffffffff80000000ull);
	CHECK_EQ(res.kind, X86_INSN_MOVSXD);
	/* 63 is ARPL outside 64-bit mode: not ours. */
	setup(X86_MODE_32);
	CHECK_EQ(RUN(0x63, 0x06), X86_EMU_UNHANDLED);
	CHECK_EQ(res.reason, X86_REASON_MODE);
}

/* ---- addressing forms ------------------------------------------------------- */

TEST(addressing_sib_64)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	R(RSI) = 3;
	R(RAX) = 0x42;
	/* mov [rbx + rsi*8 + 0x100], al */
	CHECK_EQ(RUN(0x88, 0x84, 0xf3, 0x00, 0x01, 0x00, 0x00), X86_EMU_DONE);
	CHECK_DONE(7);
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x118);
	/* mov [r12 + r13*2 - 8], al: REX.X and REX.B, base 4 / index 5 extended */
	setup(X86_MODE_64);
	R(R12) = DATA_BASE + 0x200;
	R(R13) = 0x10;
	CHECK_EQ(RUN(0x43, 0x88, 0x44, 0x6c, 0xf8), X86_EMU_DONE);
	CHECK_DONE(5);
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x200 + 0x20 - 8);
	/* mov [disp32 + rcx*4] (SIB base 5, mod 0: no base) */
	setup(X86_MODE_64);
	R(RCX) = 2;
	CHECK_EQ(RUN(0x88, 0x04, 0x8d, 0x00, 0x00, 0x01, 0x00), X86_EMU_DONE);
	CHECK_EQ(res.mem_linear, DATA_BASE + 8);
	/* SIB index 4 = none: mov [rsp + 0x10] */
	setup(X86_MODE_64);
	R(RSP) = DATA_BASE + 0x300;
	R(RDX) = 7;
	CHECK_EQ(RUN(0x88, 0x54, 0x24, 0x10), X86_EMU_DONE);
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x310);
	CHECK_EQ(peek(DATA_BASE + 0x310, 1), 7);
	/* [r13] needs mod 1: mov [r13 + 0], al; mod 0 rm 5 with REX.B is still RIP-relative */
	setup(X86_MODE_64);
	R(R13) = DATA_BASE + 0x40;
	CHECK_EQ(RUN(0x41, 0x88, 0x45, 0x00), X86_EMU_DONE);
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x40);
	setup(X86_MODE_64);
	R(R13) = 0;
	CHECK_EQ(RUN(0x41, 0x88, 0x05, 0x00, 0x00, 0x00, 0x00), X86_EMU_EXCEPTION);
	CHECK_EQ(res.mem_linear, CODE_BASE + 7);	/* [rip+0]: not a data page */
	CHECK_EQ(res.fault.address, CODE_BASE + 7);
}

TEST(addressing_67_in_64bit_truncates)
{
	setup(X86_MODE_64);
	R(RBX) = 0xffffffff00000000ull | DATA_BASE;
	R(RAX) = 0x55;
	CHECK_EQ(RUN(0x67, 0x88, 0x03), X86_EMU_DONE);		/* mov [ebx], al */
	CHECK_EQ(res.mem_linear, DATA_BASE);
	CHECK_EQ(peek(DATA_BASE, 1), 0x55);
}

TEST(addressing_fs_gs_in_64bit)
{
	setup(X86_MODE_64);
	ctx.seg_base[X86_SEG_GS] = DATA_BASE + 0x1000;
	ctx.seg_base[X86_SEG_DS] = 0x12345000;		/* ignored in 64-bit mode */
	ctx.seg_base[X86_SEG_ES] = 0x12345000;
	R(RAX) = 0x66;
	CHECK_EQ(RUN(0x65, 0x88, 0x04, 0x25, 0x08, 0, 0, 0), X86_EMU_DONE);	/* mov gs:[8], al */
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x1008);
	setup(X86_MODE_64);
	ctx.seg_base[X86_SEG_DS] = 0x12345000;
	R(RBX) = DATA_BASE;
	CHECK_EQ(RUN(0x26, 0x88, 0x03), X86_EMU_DONE);		/* es: ignored */
	CHECK_EQ(res.mem_linear, DATA_BASE);
}

TEST(addressing_32bit_segments)
{
	setup(X86_MODE_32);
	ctx.seg_base[X86_SEG_DS] = DATA_BASE;
	ctx.seg_base[X86_SEG_SS] = DATA_BASE + 0x1000;
	ctx.seg_base[X86_SEG_ES] = DATA_BASE + 0x2000;
	R(RCX) = 0x100;
	R(RDX) = 0x89abcdef;
	/* mov [ecx+4], edx: the high half of a PAE PTE */
	CHECK_EQ(RUN(0x89, 0x51, 0x04), X86_EMU_DONE);
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x104);
	CHECK_EQ(peek(DATA_BASE + 0x104, 4), 0x89abcdef);
	R(RBP) = 0x10;
	CHECK_EQ(RUN(0x89, 0x55, 0x00), X86_EMU_DONE);		/* [ebp]: SS */
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x1010);
	R(RSP) = 0x20;
	CHECK_EQ(RUN(0x89, 0x14, 0x24), X86_EMU_DONE);		/* [esp]: SS */
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x1020);
	CHECK_EQ(RUN(0x26, 0x89, 0x55, 0x00), X86_EMU_DONE);	/* es:[ebp] */
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x2010);
	/* Offsets wrap at 4 GiB: ecx = -0x100 + disp 0x200 with DS base */
	R(RCX) = 0xffffff00;
	CHECK_EQ(RUN(0x89, 0x91, 0x00, 0x02, 0x00, 0x00), X86_EMU_DONE);
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x100);
	/* Linear addresses wrap at 4 GiB too */
	ctx.seg_base[X86_SEG_DS] = 0xffff0000ull;
	R(RCX) = 0x10000 + DATA_BASE;
	CHECK_EQ(RUN(0x89, 0x11), X86_EMU_DONE);
	CHECK_EQ(res.mem_linear, DATA_BASE);
	/* 16-bit operand with 66 */
	ctx.seg_base[X86_SEG_DS] = DATA_BASE;
	R(RCX) = 0x300;
	CHECK_EQ(RUN(0x66, 0x89, 0x11), X86_EMU_DONE);
	CHECK_EQ(res.mem_size, 2);
	CHECK_EQ(peek(DATA_BASE + 0x300, 4), 0xcdef);
}

TEST(addressing_16bit_forms)
{
	static const struct {
		u8 modrm;
		u64 offset;		/* expected, with bx=0x100 si=0x20 di=0x4 bp=0x30 */
		bool ss;
	} forms[] = {
		{ 0x00, 0x120, false }, { 0x01, 0x104, false }, { 0x02, 0x50, true },
		{ 0x03, 0x34, true }, { 0x04, 0x20, false }, { 0x05, 0x4, false },
		{ 0x07, 0x100, false },
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(forms); i++) {
		setup(X86_MODE_16);
		ctx.seg_base[X86_SEG_DS] = DATA_BASE;
		ctx.seg_base[X86_SEG_SS] = DATA_BASE + 0x1000;
		R(RBX) = 0x100;
		R(RSI) = 0x20;
		R(RDI) = 0x4;
		R(RBP) = 0x30;
		CHECK_EQ(RUN(0x89, forms[i].modrm), X86_EMU_DONE);	/* mov [..], ax */
		CHECK_DONE(2);
		CHECK_EQ(res.mem_linear, DATA_BASE + forms[i].offset + (forms[i].ss ? 0x1000 : 0));
		CHECK_EQ(res.mem_size, 2);
		CHECK_EQ(ctx.regs.rip, 2);
	}
	setup(X86_MODE_16);
	ctx.seg_base[X86_SEG_DS] = DATA_BASE;
	ctx.seg_base[X86_SEG_SS] = DATA_BASE + 0x1000;
	CHECK_EQ(RUN(0x89, 0x06, 0x34, 0x12), X86_EMU_DONE);	/* [disp16] */
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x1234);
	R(RBP) = 0x10;
	CHECK_EQ(RUN(0x89, 0x46, 0xf0), X86_EMU_DONE);		/* [bp-0x10]: SS */
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x1000);
	R(RBX) = 0xfff0;
	CHECK_EQ(RUN(0x89, 0x87, 0x20, 0x00), X86_EMU_DONE);	/* [bx+0x20] wraps at 64K */
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x10);
	/* 66: 32-bit operand; 67: 32-bit addressing */
	R(RAX) = 0x11223344;
	R(RBX) = 0x8;
	CHECK_EQ(RUN(0x66, 0x89, 0x07), X86_EMU_DONE);
	CHECK_EQ(res.mem_size, 4);
	CHECK_EQ(peek(DATA_BASE + 8, 4), 0x11223344);
	ctx.seg_base[X86_SEG_DS] = 0;
	R(RAX) = DATA_BASE + 0x40;				/* > 0xffff */
	CHECK_EQ(RUN(0x67, 0x88, 0x00), X86_EMU_DONE);		/* mov [eax], al */
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x40);
}

/* ---- prefixes and limits ---------------------------------------------------- */

TEST(prefix_rules)
{
	/* A REX followed by a legacy prefix is ignored: 48 66 89 03 stores 16 bits. */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	R(RAX) = ~0ull;
	CHECK_EQ(RUN(0x48, 0x66, 0x89, 0x03), X86_EMU_DONE);
	CHECK_EQ(res.mem_size, 2);
	/* REX.W wins over 66 */
	CHECK_EQ(RUN(0x66, 0x48, 0x89, 0x03), X86_EMU_DONE);
	CHECK_EQ(res.mem_size, 8);
	/* F3 on a non-string instruction is ignored (e.g. XRELEASE) */
	CHECK_EQ(RUN(0xf3, 0x89, 0x03), X86_EMU_DONE);
	CHECK_EQ(res.mem_size, 4);
	/* 15 bytes is fine, 16 is #GP(0) */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	CHECK_EQ(RUN(0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
		     0x89, 0x43, 0x01), X86_EMU_DONE);
	CHECK_DONE(15);
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	CHECK_EQ(RUN(0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
		     0x66, 0x89, 0x43, 0x01), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_GP);
	CHECK_EQ(res.fault.error_code, 0);
	CHECK_EQ(ctx.regs.rip, CODE_BASE);
	CHECK_EQ(fk.writes, 0);
}

TEST(lock_rules)
{
	static const struct {
		u8 bytes[6];
		unsigned int len;
		enum x86_emu_status expect;
	} cases[] = {
		{ { 0xf0, 0x89, 0x03 }, 3, X86_EMU_EXCEPTION },		/* lock mov */
		{ { 0xf0, 0x01, 0xd8 }, 3, X86_EMU_EXCEPTION },		/* lock add eax, ebx */
		{ { 0xf0, 0x03, 0x03 }, 3, X86_EMU_EXCEPTION },		/* lock add eax, [rbx] */
		{ { 0xf0, 0x39, 0x03 }, 3, X86_EMU_EXCEPTION },		/* lock cmp */
		{ { 0xf0, 0x85, 0x03 }, 3, X86_EMU_EXCEPTION },		/* lock test */
		{ { 0xf0, 0x0f, 0xa3, 0x03 }, 4, X86_EMU_EXCEPTION },	/* lock bt */
		{ { 0xf0, 0x05, 1, 0, 0, 0 }, 6, X86_EMU_EXCEPTION },	/* lock add eax, imm */
		{ { 0xf0, 0xab }, 2, X86_EMU_EXCEPTION },		/* lock stos */
		{ { 0xf0, 0x01, 0x03 }, 3, X86_EMU_DONE },		/* lock add [rbx], eax */
		{ { 0xf0, 0x0f, 0xab, 0x03 }, 4, X86_EMU_DONE },	/* lock bts */
		{ { 0xf0, 0xf7, 0x13 }, 3, X86_EMU_DONE },		/* lock not */
	};

	for (unsigned int i = 0; i < ARRAY_SIZE(cases); i++) {
		setup(X86_MODE_64);
		R(RBX) = DATA_BASE;
		R(RDI) = DATA_BASE;
		CHECK_EQ(run_at(0, cases[i].bytes, cases[i].len), cases[i].expect);
		if (cases[i].expect == X86_EMU_EXCEPTION) {
			CHECK_EQ(res.fault.vector, X86_VEC_UD);
			CHECK(!res.fault.has_error_code);
			CHECK_EQ(fk.reads + fk.writes + fk.cmpxchgs, 0);
			CHECK_EQ(ctx.regs.rip, CODE_BASE);
		} else {
			CHECK(res.lock);
			CHECK_EQ(fk.writes, 0);		/* locked: cmpxchg only */
			CHECK_EQ(fk.cmpxchgs, 1);
		}
	}
}

TEST(unsupported_and_invalid)
{
	setup(X86_MODE_64);
	CHECK_EQ(RUN(0x0f, 0x0b), X86_EMU_UNHANDLED);			/* ud2 */
	CHECK_EQ(res.reason, X86_REASON_OPCODE);
	CHECK_EQ(res.kind, X86_INSN_NONE);
	CHECK_EQ(RUN(0x90), X86_EMU_UNHANDLED);				/* nop */
	CHECK_EQ(res.reason, X86_REASON_OPCODE);
	CHECK_EQ(res.insn_len, 1);
	CHECK_EQ(RUN(0xc5, 0xf8, 0x77), X86_EMU_UNHANDLED);		/* vzeroupper (VEX) */
	CHECK_EQ(RUN(0x0f, 0x38, 0xf0, 0x03), X86_EMU_UNHANDLED);	/* movbe */
	CHECK_EQ(RUN(0xca, 0x08, 0x00), X86_EMU_UNHANDLED);		/* retf 8 */
	CHECK_EQ(RUN(0xf3, 0x0f, 0xbc, 0x03), X86_EMU_UNHANDLED);	/* tzcnt */
	CHECK_EQ(RUN(0xc8, 0x10, 0x00, 0x01), X86_EMU_UNHANDLED);	/* enter 16, 1 */
	CHECK_EQ(RUN(0x0f, 0x01, 0x13), X86_EMU_UNHANDLED);		/* lgdt [rbx] */
	CHECK_EQ(RUN(0x0f, 0x28, 0xc1), X86_EMU_UNHANDLED);		/* movaps xmm0, xmm1 */
	CHECK_EQ(RUN(0xff, 0x3b), X86_EMU_EXCEPTION);			/* FF /7 */
	CHECK_EQ(res.fault.vector, X86_VEC_UD);
	CHECK_EQ(RUN(0x8e, 0x0b), X86_EMU_EXCEPTION);			/* mov cs, [rbx] */
	CHECK_EQ(res.fault.vector, X86_VEC_UD);
	CHECK_EQ(RUN(0xf0, 0x0f, 0xaf, 0x03), X86_EMU_EXCEPTION);	/* lock imul */
	CHECK_EQ(res.fault.vector, X86_VEC_UD);
	CHECK_EQ(RUN(0xc7, 0x4b, 0x00, 0, 0, 0, 0), X86_EMU_UNHANDLED);	/* C7 /1 */
	CHECK_EQ(RUN(0x0f, 0xba, 0x1b, 0x01), X86_EMU_UNHANDLED);	/* 0F BA /4..7 only */
	CHECK_EQ(RUN(0x0f, 0xc7, 0x33), X86_EMU_UNHANDLED);		/* vmptrld */
	CHECK_EQ(RUN(0x82, 0x03, 0x01), X86_EMU_EXCEPTION);		/* 82: #UD in 64-bit */
	CHECK_EQ(res.fault.vector, X86_VEC_UD);
	CHECK_EQ(RUN(0x0f, 0xc7, 0xc9), X86_EMU_EXCEPTION);		/* cmpxchg8b ecx */
	CHECK_EQ(res.fault.vector, X86_VEC_UD);
	CHECK_EQ(ctx.regs.rip, CODE_BASE);
	/* 40-4F are inc/dec reg outside 64-bit mode, not REX */
	setup(X86_MODE_32);
	CHECK_EQ(RUN(0x40), X86_EMU_UNHANDLED);
	/* 82 is an alias of 80 in 32-bit mode */
	setup(X86_MODE_32);
	R(RBX) = DATA_BASE;
	CHECK_EQ(RUN(0x82, 0x03, 0x05), X86_EMU_DONE);			/* add byte [ebx], 5 */
	CHECK_EQ(peek(DATA_BASE, 1), 5);
	CHECK_EQ(res.kind, X86_INSN_ADD);
	/* names for statistics */
	CHECK(!strcmp(x86_insn_kind_name(X86_INSN_CMPXCHG16B), "cmpxchg16b"));
	CHECK(!strcmp(x86_insn_kind_name(X86_INSN_LODS), "lods"));
	CHECK(!strcmp(x86_insn_kind_name(X86_NR_INSN_KINDS), "?"));
	CHECK(!strcmp(x86_emu_reason_name(X86_REASON_CALLBACK), "callback"));
	for (int k = 0; k < X86_NR_INSN_KINDS; k++)
		CHECK(x86_insn_kind_name(k) != NULL && strcmp(x86_insn_kind_name(k), "?"));
}

TEST(non_canonical_address)
{
	setup(X86_MODE_64);
	R(RBX) = 0x0000800000000000ull;
	CHECK_EQ(RUN(0x89, 0x03), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_GP);
	CHECK(res.fault.has_error_code);
	CHECK_EQ(res.fault.error_code, 0);
	R(RBP) = 0x0000800000000000ull;
	CHECK_EQ(RUN(0x89, 0x45, 0x00), X86_EMU_EXCEPTION);		/* [rbp]: #SS */
	CHECK_EQ(res.fault.vector, X86_VEC_SS);
	/* the last byte matters too */
	R(RBX) = 0x00007ffffffffffcull;
	CHECK_EQ(RUN(0x48, 0x89, 0x03), X86_EMU_EXCEPTION);
	CHECK_EQ(fk.writes, 0);
	R(RBX) = 0xffff800000000000ull;		/* canonical: reaches the callback */
	CHECK_EQ(RUN(0x89, 0x03), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_PF);
	CHECK_EQ(fk.writes, 1);
}

/* ---- fetch ------------------------------------------------------------------ */

TEST(fetch_stops_at_page_end_and_crosses_when_needed)
{
	/* An instruction ending exactly at the page end must not touch the next page. */
	setup(X86_MODE_64);
	fk.fault_fetch_page = CODE_BASE + PAGE_SIZE;
	R(RBX) = DATA_BASE;
	CHECK_EQ(run_at(PAGE_SIZE - 3, BYTES(0x48, 0x89, 0x03)), X86_EMU_DONE);
	CHECK_EQ(fk.fetches, 1);
	CHECK_EQ(fk.max_fetch_len, 3);
	/* The same instruction across the boundary: two fetches, or the fault. */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	CHECK_EQ(run_at(PAGE_SIZE - 2, BYTES(0x48, 0x89, 0x03)), X86_EMU_DONE);
	CHECK_DONE(3);
	CHECK_EQ(fk.fetches, 2);
	CHECK_EQ(peek(DATA_BASE, 8), 0);
	setup(X86_MODE_64);
	fk.fault_fetch_page = CODE_BASE + PAGE_SIZE;
	R(RBX) = DATA_BASE;
	struct x86_regs before = ctx.regs;

	CHECK_EQ(run_at(PAGE_SIZE - 2, BYTES(0x48, 0x89, 0x03)), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_PF);
	CHECK_EQ(res.fault.address, CODE_BASE + PAGE_SIZE);
	CHECK_EQ(res.fault.error_code, PFEC_I);
	before.rip += PAGE_SIZE - 2;
	CHECK(!memcmp(&before, &ctx.regs, sizeof(before)));
	CHECK_EQ(fk.writes, 0);
}

/* ---- faults leave everything untouched ---------------------------------------- */

TEST(write_fault_leaves_state)
{
	setup(X86_MODE_64);
	fk.fault_page = DATA_BASE;
	R(RBX) = DATA_BASE;
	R(RCX) = 5;
	poke(DATA_BASE, 10, 4);
	struct x86_regs before = ctx.regs;

	/* xadd [rbx], ecx: would change ecx and flags */
	CHECK_EQ(RUN(0x0f, 0xc1, 0x0b), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_PF);
	CHECK_EQ(res.fault.address, DATA_BASE);
	CHECK_EQ(res.fault.error_code, 0);		/* the read faulted first */
	CHECK_EQ(res.bytes_written, 0);
	CHECK_EQ(res.kind, X86_INSN_XADD);
	CHECK(!memcmp(&before, &ctx.regs, sizeof(before)));
	/* Read succeeds, write faults: still nothing committed. */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE + PAGE_SIZE - 2;		/* crosses into the faulting page */
	fk.fault_write_page = DATA_BASE + PAGE_SIZE;
	R(RCX) = 5;
	ctx.regs.rflags |= X86_FLAG_ZF;
	before = ctx.regs;
	CHECK_EQ(RUN(0x01, 0x0b), X86_EMU_EXCEPTION);	/* add [rbx], ecx */
	CHECK_EQ(fk.reads, 1);
	CHECK_EQ(res.fault.error_code, PFEC_W);
	CHECK_EQ(res.fault.address, DATA_BASE + PAGE_SIZE - 2);
	CHECK(!memcmp(&before, &ctx.regs, sizeof(before)));
	fk.fault_write_page = NO_PAGE;
	CHECK_EQ(RUN(0x01, 0x0b), X86_EMU_DONE);
	CHECK_EQ(peek(DATA_BASE + PAGE_SIZE - 2, 4), 5);
	ctx.regs = before;
	fk.fault_write_page = DATA_BASE + PAGE_SIZE;
	CHECK_EQ(RUN(0xc7, 0x03, 1, 0, 0, 0), X86_EMU_EXCEPTION);	/* mov dword [rbx], 1 */
	CHECK_EQ(res.fault.error_code, PFEC_W);
	CHECK(!memcmp(&before, &ctx.regs, sizeof(before)));
	CHECK_EQ(peek(DATA_BASE + PAGE_SIZE - 2, 4), 5);
}

TEST(callback_unhandled)
{
	setup(X86_MODE_64);
	fk.unhandled = true;
	R(RBX) = DATA_BASE;
	struct x86_regs before = ctx.regs;

	CHECK_EQ(RUN(0x8b, 0x03), X86_EMU_UNHANDLED);
	CHECK_EQ(res.reason, X86_REASON_CALLBACK);
	CHECK_EQ(res.kind, X86_INSN_MOV);
	CHECK(!memcmp(&before, &ctx.regs, sizeof(before)));
}

/* ---- read-modify-write, xchg, cmpxchg ---------------------------------------- */

TEST(alu_rmw_and_flags)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 0xffffffff, 4);
	CHECK_EQ(RUN(0x83, 0x03, 0x01), X86_EMU_DONE);		/* add dword [rbx], 1 */
	CHECK_EQ(peek(DATA_BASE, 8), 0);
	CHECK_EQ(ctx.regs.rflags & X86_FLAGS_ARITH,
		 X86_FLAG_CF | X86_FLAG_ZF | X86_FLAG_AF | X86_FLAG_PF);
	CHECK_EQ(RUN(0x80, 0x2b, 0x01), X86_EMU_DONE);		/* sub byte [rbx], 1 */
	CHECK_EQ(peek(DATA_BASE, 1), 0xff);
	CHECK_EQ(ctx.regs.rflags & X86_FLAGS_ARITH,
		 X86_FLAG_CF | X86_FLAG_SF | X86_FLAG_AF | X86_FLAG_PF);
	/* cmp and test do not write */
	fk.writes = 0;
	CHECK_EQ(RUN(0x80, 0x3b, 0xff), X86_EMU_DONE);		/* cmp byte [rbx], 0xff */
	CHECK(ctx.regs.rflags & X86_FLAG_ZF);
	CHECK_EQ(RUN(0xf6, 0x03, 0x80), X86_EMU_DONE);		/* test byte [rbx], 0x80 */
	CHECK_EQ(fk.writes, 0);
	CHECK_EQ(res.bytes_written, 0);
	CHECK_EQ(res.kind, X86_INSN_TEST);
	/* inc keeps CF, dec, not, neg */
	ctx.regs.rflags |= X86_FLAG_CF;
	CHECK_EQ(RUN(0xfe, 0x03), X86_EMU_DONE);		/* inc byte [rbx] */
	CHECK_EQ(peek(DATA_BASE, 1), 0);
	CHECK(ctx.regs.rflags & X86_FLAG_CF);
	CHECK(ctx.regs.rflags & X86_FLAG_ZF);
	CHECK_EQ(RUN(0x48, 0xff, 0x0b), X86_EMU_DONE);		/* dec qword [rbx] */
	CHECK_EQ(peek(DATA_BASE, 8), ~0ull);
	poke(DATA_BASE, 0xff, 8);
	CHECK_EQ(RUN(0x48, 0xf7, 0x13), X86_EMU_DONE);		/* not qword [rbx] */
	CHECK_EQ(peek(DATA_BASE, 8), 0xffffffffffffff00ull);
	CHECK_EQ(RUN(0x66, 0xf7, 0x1b), X86_EMU_DONE);		/* neg word [rbx] */
	CHECK_EQ(peek(DATA_BASE, 8), 0xffffffffffff0100ull);
	CHECK(ctx.regs.rflags & X86_FLAG_CF);
	/* and/or on a PTE: clear the accessed bit, set the dirty bit */
	poke(DATA_BASE, 0x1067, 8);
	CHECK_EQ(RUN(0x48, 0x83, 0x23, 0xdf), X86_EMU_DONE);	/* and qword [rbx], ~0x20 */
	CHECK_EQ(peek(DATA_BASE, 8), 0x1047);
	CHECK_EQ(res.kind, X86_INSN_AND);
	CHECK_EQ(RUN(0x80, 0x0b, 0x40), X86_EMU_DONE);		/* or byte [rbx], 0x40 */
	CHECK_EQ(peek(DATA_BASE, 8), 0x1047);
	CHECK_EQ(res.kind, X86_INSN_OR);
	/* Register-only accumulator form: add eax, imm32 */
	R(RAX) = 0xffffffff00000001ull;
	CHECK_EQ(RUN(0x05, 0xff, 0xff, 0xff, 0xff), X86_EMU_DONE);
	CHECK_EQ(R(RAX), 0);
	CHECK(!res.has_mem);
	/* byte forms: add [rbx], al / xor al, [rbx] */
	poke(DATA_BASE, 0x0f, 8);
	R(RAX) = 0x1f1;
	CHECK_EQ(RUN(0x00, 0x03), X86_EMU_DONE);
	CHECK_EQ(peek(DATA_BASE, 8), 0x00);
	CHECK_EQ(ctx.regs.rflags & X86_FLAGS_ARITH,
		 X86_FLAG_CF | X86_FLAG_ZF | X86_FLAG_AF | X86_FLAG_PF);
	poke(DATA_BASE, 0x80, 1);
	CHECK_EQ(RUN(0x32, 0x03), X86_EMU_DONE);
	CHECK_EQ(R(RAX), 0x171);
	CHECK_EQ(ctx.regs.rflags & X86_FLAGS_ARITH, X86_FLAG_PF);	/* 0x71: four ones */
	/* adc/sbb use the carry in */
	poke(DATA_BASE, 5, 4);
	R(RCX) = 1;
	ctx.regs.rflags |= X86_FLAG_CF;
	CHECK_EQ(RUN(0x19, 0x0b), X86_EMU_DONE);		/* sbb [rbx], ecx */
	CHECK_EQ(peek(DATA_BASE, 4), 3);
	ctx.regs.rflags |= X86_FLAG_CF;
	CHECK_EQ(RUN(0x13, 0x0b), X86_EMU_DONE);		/* adc ecx, [rbx] */
	CHECK_EQ(R(RCX), 5);
}

TEST(xchg_and_xadd)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE + 8;
	poke(DATA_BASE + 8, 0x1111, 8);
	R(RAX) = 0x2222;
	CHECK_EQ(RUN(0x48, 0x87, 0x03), X86_EMU_DONE);		/* xchg [rbx], rax */
	CHECK_EQ(R(RAX), 0x1111);
	CHECK_EQ(peek(DATA_BASE + 8, 8), 0x2222);
	CHECK_EQ(fk.reads, 1);
	CHECK_EQ(fk.cmpxchgs, 1);		/* xchg is always locked */
	CHECK_EQ(fk.writes, 0);
	CHECK_EQ(res.kind, X86_INSN_XCHG);
	CHECK_EQ(res.bytes_written, 8);
	CHECK_EQ(res.write_linear, DATA_BASE + 8);
	R(RCX) = 3;
	CHECK_EQ(RUN(0xf0, 0x48, 0x0f, 0xc1, 0x0b), X86_EMU_DONE);	/* lock xadd [rbx], rcx */
	CHECK_EQ(R(RCX), 0x2222);
	CHECK_EQ(peek(DATA_BASE + 8, 8), 0x2225);
}

TEST(cmpxchg_success_failure_and_races)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 0x1000, 8);
	R(RAX) = 0x1000;
	R(RCX) = 0x2007;
	/* lock cmpxchg [rbx], rcx: one callback, no read */
	CHECK_EQ(RUN(0xf0, 0x48, 0x0f, 0xb1, 0x0b), X86_EMU_DONE);
	CHECK_EQ(peek(DATA_BASE, 8), 0x2007);
	CHECK(ctx.regs.rflags & X86_FLAG_ZF);
	CHECK_EQ(fk.reads, 0);
	CHECK_EQ(fk.cmpxchgs, 1);
	CHECK_EQ(res.bytes_written, 8);
	/* Failure: RAX gets memory, ZF clear, nothing written. */
	CHECK_EQ(RUN(0xf0, 0x48, 0x0f, 0xb1, 0x0b), X86_EMU_DONE);
	CHECK_EQ(R(RAX), 0x2007);
	CHECK(!(ctx.regs.rflags & X86_FLAG_ZF));
	CHECK_EQ(res.bytes_written, 0);
	CHECK_EQ(peek(DATA_BASE, 8), 0x2007);
	/* Non-locked cmpxchg is atomic too (cmpxchg callback). */
	fk.cmpxchgs = 0;
	R(RAX) = 0x2007;
	R(RCX) = 0x3;
	CHECK_EQ(RUN(0x0f, 0xb0, 0x0b), X86_EMU_DONE);		/* cmpxchg [rbx], cl */
	CHECK_EQ(peek(DATA_BASE, 8), 0x2003);
	CHECK_EQ(fk.cmpxchgs, 1);
}

TEST(locked_rmw_recomputes_after_lost_race)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 0x01, 8);
	fk.interfere = 1;	/* memory becomes 0x41 between our read and cmpxchg */
	CHECK_EQ(RUN(0xf0, 0x48, 0x83, 0x0b, 0x02), X86_EMU_DONE);	/* lock or qword [rbx], 2 */
	CHECK_EQ(peek(DATA_BASE, 8), 0x43);
	CHECK_EQ(fk.cmpxchgs, 2);
	/* Flags come from the value that was really combined. */
	CHECK(!(ctx.regs.rflags & X86_FLAG_ZF));
	/* A retry starts again from the original flags (adc's carry in). */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 0x01, 8);
	ctx.regs.rflags |= X86_FLAG_CF;
	fk.interfere = 1;
	CHECK_EQ(RUN(0xf0, 0x83, 0x13, 0x01), X86_EMU_DONE);	/* lock adc dword [rbx], 1 */
	CHECK_EQ(peek(DATA_BASE, 8), 0x43);
	/* lock btr: CF is the bit as seen by the successful attempt */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 0x00, 8);
	fk.interfere = 1;	/* bit 6 appears */
	/* lock btr dword [rbx], 6 */
	CHECK_EQ(RUN(0xf0, 0x0f, 0xba, 0x33, 0x06), X86_EMU_DONE);
	CHECK(ctx.regs.rflags & X86_FLAG_CF);
	CHECK_EQ(peek(DATA_BASE, 8), 0);
	/* Endless contention: RETRY, nothing committed. */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	fk.interfere = 1000;
	struct x86_regs before = ctx.regs;

	CHECK_EQ(RUN(0xf0, 0xff, 0x03), X86_EMU_RETRY);		/* lock inc dword [rbx] */
	CHECK_EQ(res.reason, X86_REASON_CONTENDED);
	CHECK(!memcmp(&before, &ctx.regs, sizeof(before)));
}

TEST(cmpxchg8b_and_16b)
{
	/* 32-bit PAE guest: lock cmpxchg8b [esi] */
	setup(X86_MODE_32);
	R(RSI) = DATA_BASE + 8;
	poke(DATA_BASE + 8, 0x0000000100002063ull, 8);
	R(RAX) = 0x00002063;
	R(RDX) = 0x1;
	R(RBX) = 0x00003067;
	R(RCX) = 0x80000000;
	CHECK_EQ(RUN(0xf0, 0x0f, 0xc7, 0x0e), X86_EMU_DONE);
	CHECK_EQ(peek(DATA_BASE + 8, 8), 0x8000000000003067ull);
	CHECK(ctx.regs.rflags & X86_FLAG_ZF);
	CHECK_EQ(res.kind, X86_INSN_CMPXCHG8B);
	CHECK_EQ(res.mem_size, 8);
	CHECK_EQ(res.bytes_written, 8);
	ctx.regs.rflags |= X86_FLAG_CF;
	CHECK_EQ(RUN(0xf0, 0x0f, 0xc7, 0x0e), X86_EMU_DONE);	/* now fails */
	CHECK(!(ctx.regs.rflags & X86_FLAG_ZF));
	CHECK(ctx.regs.rflags & X86_FLAG_CF);			/* only ZF changes */
	CHECK_EQ(R(RAX), 0x3067);
	CHECK_EQ(R(RDX), 0x80000000);
	CHECK_EQ(res.bytes_written, 0);
	/* cmpxchg16b: aligned works, misaligned is #GP(0) */
	setup(X86_MODE_64);
	R(RDI) = DATA_BASE + 0x10;
	poke(DATA_BASE + 0x10, 1, 8);
	poke(DATA_BASE + 0x18, 2, 8);
	R(RAX) = 1;
	R(RDX) = 2;
	R(RBX) = 3;
	R(RCX) = 4;
	CHECK_EQ(RUN(0xf0, 0x48, 0x0f, 0xc7, 0x0f), X86_EMU_DONE);
	CHECK_EQ(peek(DATA_BASE + 0x10, 8), 3);
	CHECK_EQ(peek(DATA_BASE + 0x18, 8), 4);
	CHECK_EQ(res.kind, X86_INSN_CMPXCHG16B);
	CHECK_EQ(res.mem_size, 16);
	R(RDI) = DATA_BASE + 0x18;
	CHECK_EQ(RUN(0x48, 0x0f, 0xc7, 0x0f), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_GP);
	CHECK_EQ(fk.cmpxchgs, 1);
}

TEST(bt_bit_string_offsets)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE + 0x100;
	R(RAX) = 100;		/* dword 3, bit 4 */
	CHECK_EQ(RUN(0x0f, 0xab, 0x03), X86_EMU_DONE);		/* bts [rbx], eax */
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x10c);
	CHECK_EQ(res.mem_size, 4);
	CHECK_EQ(peek(DATA_BASE + 0x10c, 4), 0x10);
	CHECK(!(ctx.regs.rflags & X86_FLAG_CF));
	R(RAX) = (u64)-1;	/* bit 31 of the dword below */
	CHECK_EQ(RUN(0x0f, 0xab, 0x03), X86_EMU_DONE);
	CHECK_EQ(res.mem_linear, DATA_BASE + 0xfc);
	CHECK_EQ(peek(DATA_BASE + 0xfc, 4), 0x80000000);
	R(RAX) = (u64)-65;	/* 64-bit: qword -2, bit 63 */
	CHECK_EQ(RUN(0x48, 0x0f, 0xbb, 0x03), X86_EMU_DONE);	/* btc [rbx], rax */
	CHECK_EQ(res.mem_linear, DATA_BASE + 0xf0);
	CHECK_EQ(peek(DATA_BASE + 0xf0, 8), 0x8000000000000000ull);
	/* 16-bit offsets are sign-extended from 16 bits */
	R(RAX) = 0xffff;	/* -1: word below, bit 15 */
	CHECK_EQ(RUN(0x66, 0x0f, 0xb3, 0x03), X86_EMU_DONE);	/* btr [rbx], ax */
	CHECK_EQ(res.mem_linear, DATA_BASE + 0xfe);
	CHECK(ctx.regs.rflags & X86_FLAG_CF);			/* it was bit 31 of 0xfc */
	CHECK_EQ(peek(DATA_BASE + 0xfc, 4), 0);
	/* Immediate offsets wrap inside the operand */
	poke(DATA_BASE + 0x100, 0, 8);
	CHECK_EQ(RUN(0x0f, 0xba, 0x2b, 0x21), X86_EMU_DONE);	/* bts dword [rbx], 33 */
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x100);
	CHECK_EQ(peek(DATA_BASE + 0x100, 4), 2);
	fk.writes = 0;
	CHECK_EQ(RUN(0x0f, 0xa3, 0x03), X86_EMU_DONE);		/* bt: read only */
	CHECK_EQ(fk.writes, 0);
	CHECK_EQ(res.kind, X86_INSN_BT);
}

/* ---- string instructions ----------------------------------------------------- */

TEST(rep_stosq_clears_page_in_one_call)
{
	setup(X86_MODE_64);
	memset(data + PAGE_SIZE, 0xab, PAGE_SIZE);
	R(RDI) = DATA_BASE + PAGE_SIZE;
	R(RCX) = 512;
	R(RAX) = 0;
	CHECK_EQ(RUN(0xf3, 0x48, 0xab), X86_EMU_DONE);
	CHECK_DONE(3);
	CHECK_EQ(fk.writes, 1);
	CHECK_EQ(fk.write_len, 4096);
	CHECK_EQ(fk.write_lin, DATA_BASE + PAGE_SIZE);
	for (unsigned int i = 0; i < PAGE_SIZE; i++)
		if (data[PAGE_SIZE + i])
			CHECK_EQ(data[PAGE_SIZE + i], 0);
	CHECK_EQ(R(RCX), 0);
	CHECK_EQ(R(RDI), DATA_BASE + 2 * PAGE_SIZE);
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 3);
	CHECK_EQ(res.kind, X86_INSN_STOS);
	CHECK_EQ(res.reps, 512);
	CHECK_EQ(res.bytes_written, 4096);
	CHECK_EQ(res.mem_size, 8);
	CHECK_EQ(peek(DATA_BASE + 2 * PAGE_SIZE, 1), 0);	/* next page untouched (was 0) */
	CHECK_EQ(peek(DATA_BASE + PAGE_SIZE - 1, 1), 0);
}

TEST(rep_stos_clamps_to_page_and_count)
{
	setup(X86_MODE_64);
	R(RDI) = DATA_BASE + 0xff8;
	R(RCX) = 10;
	R(RAX) = 0x1122334455667788ull;
	CHECK_EQ(RUN(0xf3, 0x48, 0xab), X86_EMU_DONE);
	CHECK_EQ(res.reps, 1);
	CHECK_EQ(R(RCX), 9);
	CHECK_EQ(R(RDI), DATA_BASE + 0x1000);
	CHECK_EQ(ctx.regs.rip, CODE_BASE);		/* not finished: guest resumes it */
	CHECK_EQ(RUN(0xf3, 0x48, 0xab), X86_EMU_DONE);	/* the rest fits in the next page */
	CHECK_EQ(res.reps, 9);
	CHECK_EQ(R(RCX), 0);
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 3);
	CHECK_EQ(peek(DATA_BASE + 0x1040, 8), 0x1122334455667788ull);
	CHECK_EQ(peek(DATA_BASE + 0x1048, 8), 0);
	/* Count smaller than the page room */
	setup(X86_MODE_64);
	R(RDI) = DATA_BASE + 0x10;
	R(RCX) = 3;
	R(RAX) = 0xab;
	CHECK_EQ(RUN(0xf3, 0xaa), X86_EMU_DONE);		/* rep stosb */
	CHECK_EQ(fk.write_len, 3);
	CHECK_EQ(peek(DATA_BASE + 0x10, 4), 0xababab);
	/* Zero count: no access, RIP moves on */
	setup(X86_MODE_64);
	CHECK_EQ(RUN(0xf3, 0xab), X86_EMU_DONE);
	CHECK_EQ(fk.writes, 0);
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 2);
	CHECK(!res.has_mem);
	/* An element crossing the page end is done alone, in one crossing write */
	setup(X86_MODE_64);
	R(RDI) = DATA_BASE + 0xffc;
	R(RCX) = 4;
	R(RAX) = ~0ull;
	CHECK_EQ(RUN(0xf3, 0x48, 0xab), X86_EMU_DONE);
	CHECK_EQ(res.reps, 1);
	CHECK_EQ(fk.write_lin, DATA_BASE + 0xffc);
	CHECK_EQ(fk.write_len, 8);
}

TEST(rep_stos_backwards)
{
	setup(X86_MODE_64);
	ctx.regs.rflags |= X86_FLAG_DF;
	R(RDI) = DATA_BASE + PAGE_SIZE + 0x10;
	R(RCX) = 100;
	R(RAX) = 0xdeadbeef;
	CHECK_EQ(RUN(0xf3, 0xab), X86_EMU_DONE);		/* rep stosd, downwards */
	CHECK_EQ(res.reps, 5);				/* 0x10, 0xc, 0x8, 0x4, 0x0 */
	CHECK_EQ(fk.write_lin, DATA_BASE + PAGE_SIZE);
	CHECK_EQ(fk.write_len, 20);
	CHECK_EQ(res.write_linear, DATA_BASE + PAGE_SIZE);
	CHECK_EQ(res.mem_linear, DATA_BASE + PAGE_SIZE + 0x10);
	CHECK_EQ(R(RDI), DATA_BASE + PAGE_SIZE - 4);
	CHECK_EQ(R(RCX), 95);
	CHECK_EQ(ctx.regs.rip, CODE_BASE);
	CHECK_EQ(peek(DATA_BASE + PAGE_SIZE + 0x10, 4), 0xdeadbeef);
	CHECK_EQ(peek(DATA_BASE + PAGE_SIZE + 0x14, 4), 0);
	CHECK_EQ(peek(DATA_BASE + PAGE_SIZE - 4, 4), 0);
	/* non-rep stosw backwards */
	setup(X86_MODE_64);
	ctx.regs.rflags |= X86_FLAG_DF;
	R(RDI) = DATA_BASE + 0x20;
	R(RCX) = 7;
	R(RAX) = 0x1234;
	CHECK_EQ(RUN(0x66, 0xab), X86_EMU_DONE);
	CHECK_EQ(R(RDI), DATA_BASE + 0x1e);
	CHECK_EQ(R(RCX), 7);
	CHECK_EQ(peek(DATA_BASE + 0x20, 2), 0x1234);
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 2);
}

TEST(rep_movs_clamps_to_both_pages)
{
	setup(X86_MODE_64);
	for (unsigned int i = 0; i < PAGE_SIZE; i++)
		data[i] = (u8)i;
	R(RSI) = DATA_BASE + 0xf00;			/* 0x100 bytes left in its page */
	R(RDI) = DATA_BASE + 2 * PAGE_SIZE;
	R(RCX) = 0x1000;
	CHECK_EQ(RUN(0xf3, 0xa4), X86_EMU_DONE);	/* rep movsb */
	CHECK_EQ(res.kind, X86_INSN_MOVS);
	CHECK_EQ(res.reps, 0x100);
	CHECK_EQ(fk.reads, 1);
	CHECK_EQ(fk.writes, 1);
	CHECK_EQ(R(RCX), 0xf00);
	CHECK_EQ(R(RSI), DATA_BASE + 0x1000);
	CHECK_EQ(R(RDI), DATA_BASE + 2 * PAGE_SIZE + 0x100);
	CHECK_EQ(ctx.regs.rip, CODE_BASE);
	CHECK_EQ(peek(DATA_BASE + 2 * PAGE_SIZE + 0xff, 1), 0xff);
	CHECK_EQ(peek(DATA_BASE + 2 * PAGE_SIZE, 1), 0x00);
	/* Backwards, movsd */
	setup(X86_MODE_64);
	poke(DATA_BASE + 0x8, 0x0807060504030201ull, 8);
	ctx.regs.rflags |= X86_FLAG_DF;
	R(RSI) = DATA_BASE + 0xc;
	R(RDI) = DATA_BASE + PAGE_SIZE + 0x4;
	R(RCX) = 2;
	CHECK_EQ(RUN(0xf3, 0xa5), X86_EMU_DONE);
	CHECK_EQ(res.reps, 2);
	CHECK_EQ(peek(DATA_BASE + PAGE_SIZE, 8), 0x0807060504030201ull);
	CHECK_EQ(R(RSI), DATA_BASE + 0x4);
	CHECK_EQ(R(RDI), DATA_BASE + PAGE_SIZE - 4);
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 2);
	/* Overlapping ranges: one element per call, like the hardware's order */
	setup(X86_MODE_64);
	poke(DATA_BASE, 0x5a, 1);
	R(RSI) = DATA_BASE;
	R(RDI) = DATA_BASE + 1;
	R(RCX) = 8;
	for (int i = 0; i < 8; i++)
		CHECK_EQ(RUN(0xf3, 0xa4), X86_EMU_DONE);
	CHECK_EQ(R(RCX), 0);
	CHECK_EQ(peek(DATA_BASE, 8), 0x5a5a5a5a5a5a5a5aull);
	CHECK_EQ(peek(DATA_BASE + 8, 1), 0x5a);
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 2);
}

TEST(movs_segments)
{
	/* Source segment can be overridden (FS in 64-bit), destination is ES. */
	setup(X86_MODE_64);
	ctx.seg_base[X86_SEG_FS] = DATA_BASE + PAGE_SIZE;
	poke(DATA_BASE + PAGE_SIZE + 0x8, 0xfeedface, 4);
	R(RSI) = 0x8;
	R(RDI) = DATA_BASE + 0x40;
	CHECK_EQ(RUN(0x64, 0xa5), X86_EMU_DONE);		/* movsd fs:[rsi] -> [rdi] */
	CHECK_EQ(peek(DATA_BASE + 0x40, 4), 0xfeedface);
	CHECK_EQ(R(RSI), 0xc);
	/* 32-bit: ES base for the destination, DS for the source */
	setup(X86_MODE_32);
	ctx.seg_base[X86_SEG_ES] = DATA_BASE + 2 * PAGE_SIZE;
	ctx.seg_base[X86_SEG_DS] = DATA_BASE;
	poke(DATA_BASE + 0x10, 0x77, 1);
	R(RSI) = 0x10;
	R(RDI) = 0x20;
	CHECK_EQ(RUN(0x26, 0xa4), X86_EMU_DONE);		/* es: applies to the source */
	CHECK_EQ(peek(DATA_BASE + 2 * PAGE_SIZE + 0x20, 1), 0);
	CHECK_EQ(res.mem_linear, DATA_BASE + 2 * PAGE_SIZE + 0x20);
	setup(X86_MODE_32);
	ctx.seg_base[X86_SEG_ES] = DATA_BASE + 2 * PAGE_SIZE;
	ctx.seg_base[X86_SEG_DS] = DATA_BASE;
	poke(DATA_BASE + 0x10, 0x77, 1);
	R(RSI) = 0x10;
	R(RDI) = 0x20;
	CHECK_EQ(RUN(0xa4), X86_EMU_DONE);
	CHECK_EQ(peek(DATA_BASE + 2 * PAGE_SIZE + 0x20, 1), 0x77);
}

TEST(string_address_sizes)
{
	/* 67 in 64-bit mode: ECX/EDI, written back zero-extended */
	setup(X86_MODE_64);
	R(RDI) = 0xffffffff00000000ull | (DATA_BASE + 0x100);
	R(RCX) = 0xffffffff00000004ull;
	CHECK_EQ(RUN(0x67, 0xf3, 0xaa), X86_EMU_DONE);
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x100);
	CHECK_EQ(R(RCX), 0);
	CHECK_EQ(R(RDI), DATA_BASE + 0x104);
	/* 16-bit mode: CX/DI, upper bits preserved, DI wraps at 64K (clamped) */
	setup(X86_MODE_16);
	ctx.seg_base[X86_SEG_ES] = DATA_BASE - 0xfff0;
	R(RDI) = 0xabcd0000ull | 0xfff0;
	R(RCX) = 0x12340000ull | 0x20;
	R(RAX) = 0x99;
	CHECK_EQ(RUN(0xf3, 0xaa), X86_EMU_DONE);
	CHECK_EQ(res.reps, 0x10);			/* stops at DI = 0xffff */
	CHECK_EQ(R(RDI), 0xabcd0000ull);
	CHECK_EQ(R(RCX), 0x12340010ull);
	CHECK_EQ(ctx.regs.rip, 0);
	CHECK_EQ(peek(DATA_BASE + 0xf, 1), 0x99);
	CHECK_EQ(peek(DATA_BASE + 0x10, 1), 0);
	/* 32-bit mode, 67: 16-bit addressing for stos */
	setup(X86_MODE_32);
	R(RDI) = 0x10000 + 0x20;
	ctx.seg_base[X86_SEG_ES] = DATA_BASE;
	CHECK_EQ(RUN(0x67, 0xab), X86_EMU_DONE);
	CHECK_EQ(res.mem_linear, DATA_BASE + 0x20);
	CHECK_EQ(R(RDI), 0x10024);
}

TEST(lods_reads_mmio)
{
	setup(X86_MODE_64);
	poke(DATA_BASE + 0x300, 0x11223344, 4);
	R(RSI) = DATA_BASE + 0x300;
	R(RAX) = ~0ull;
	CHECK_EQ(RUN(0xad), X86_EMU_DONE);			/* lodsd */
	CHECK_EQ(R(RAX), 0x11223344);
	CHECK_EQ(R(RSI), DATA_BASE + 0x304);
	CHECK_EQ(res.kind, X86_INSN_LODS);
	CHECK_EQ(res.bytes_written, 0);
	CHECK_EQ(fk.writes, 0);
	/* rep lodsb: the last byte loaded stays in AL */
	setup(X86_MODE_64);
	for (unsigned int i = 0; i < 16; i++)
		data[i] = (u8)(0xa0 + i);
	R(RSI) = DATA_BASE;
	R(RCX) = 16;
	R(RAX) = 0x1200;
	CHECK_EQ(RUN(0xf3, 0xac), X86_EMU_DONE);
	CHECK_EQ(R(RAX), 0x12af);
	CHECK_EQ(R(RCX), 0);
	CHECK_EQ(fk.reads, 1);
	setup(X86_MODE_64);
	for (unsigned int i = 0; i < 16; i++)
		data[i] = (u8)(0xa0 + i);
	ctx.regs.rflags |= X86_FLAG_DF;
	R(RSI) = DATA_BASE + 15;
	R(RCX) = 16;
	CHECK_EQ(RUN(0xf3, 0xac), X86_EMU_DONE);
	CHECK_EQ(R(RAX), 0xa0);
	CHECK_EQ(R(RSI), DATA_BASE - 1);
}

TEST(rep_faults_leave_state)
{
	setup(X86_MODE_64);
	fk.fault_page = DATA_BASE + PAGE_SIZE;
	R(RSI) = DATA_BASE;
	R(RDI) = DATA_BASE + PAGE_SIZE;
	R(RCX) = 64;
	struct x86_regs before = ctx.regs;

	CHECK_EQ(RUN(0xf3, 0x48, 0xa5), X86_EMU_EXCEPTION);	/* write faults */
	CHECK_EQ(res.fault.vector, X86_VEC_PF);
	CHECK_EQ(res.fault.error_code, PFEC_W);
	CHECK_EQ(res.bytes_written, 0);
	CHECK(!memcmp(&before, &ctx.regs, sizeof(before)));
	fk.fault_page = DATA_BASE;
	CHECK_EQ(RUN(0xf3, 0x48, 0xa5), X86_EMU_EXCEPTION);	/* read faults */
	CHECK_EQ(fk.writes, 1);					/* only the first attempt */
	CHECK(!memcmp(&before, &ctx.regs, sizeof(before)));
	/* Non-canonical destination: #GP, no callback */
	setup(X86_MODE_64);
	R(RDI) = 0x0000800000000000ull - 8;
	R(RCX) = 4;
	CHECK_EQ(RUN(0xf3, 0x48, 0xab), X86_EMU_EXCEPTION);	/* last qword below the hole */
	CHECK_EQ(res.fault.vector, X86_VEC_PF);			/* from the callback */
	CHECK_EQ(fk.write_len, 0);
	CHECK_EQ(fk.writes, 1);
	R(RDI) = 0x0000800000000000ull;
	CHECK_EQ(RUN(0xf3, 0x48, 0xab), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_GP);
	CHECK_EQ(fk.writes, 1);
}

/* ---- cmps / scas ----------------------------------------------------------- */

TEST(repe_cmps_stops_at_difference)
{
	setup(X86_MODE_64);
	for (int i = 0; i < 200; i++) {
		poke(DATA_BASE + i, (u64)(i < 100 ? i : i + 1), 1);
		poke(DATA_BASE + 0x1000 + i, (u64)i, 1);
	}
	R(RSI) = DATA_BASE;
	R(RDI) = DATA_BASE + 0x1000;
	R(RCX) = 130;
	CHECK_EQ(RUN(0xf3, 0xa6), X86_EMU_DONE);		/* repe cmpsb */
	/* Elements 0..100 compared, the 101st differs: stop, RIP moves on. */
	CHECK_EQ(R(RCX), 29);
	CHECK_EQ(R(RSI), DATA_BASE + 101);
	CHECK_EQ(R(RDI), DATA_BASE + 0x1000 + 101);
	CHECK(!(ctx.regs.rflags & X86_FLAG_ZF));
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 2);
	CHECK_EQ(fk.reads, 2 * 101);				/* one read per element */
	CHECK_EQ(fk.writes, 0);
	CHECK_EQ(res.kind, X86_INSN_CMPS);
	/* All equal (count runs out): ZF set, RIP moves on. */
	setup(X86_MODE_64);
	R(RSI) = DATA_BASE;
	R(RDI) = DATA_BASE + 0x1000;
	R(RCX) = 7;
	CHECK_EQ(RUN(0xf3, 0xa7), X86_EMU_DONE);		/* repe cmpsd */
	CHECK_EQ(R(RCX), 0);
	CHECK_EQ(R(RSI), DATA_BASE + 28);
	CHECK(ctx.regs.rflags & X86_FLAG_ZF);
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 2);
	/* More than the page holds: RIP stays, the guest resumes the rep. */
	setup(X86_MODE_64);
	R(RSI) = DATA_BASE + PAGE_SIZE - 8;
	R(RDI) = DATA_BASE + 0x2000;
	R(RCX) = 100;
	CHECK_EQ(RUN(0xf3, 0x48, 0xa7), X86_EMU_DONE);		/* repe cmpsq */
	CHECK_EQ(R(RCX), 99);
	CHECK_EQ(ctx.regs.rip, CODE_BASE);
	/* rep with count 0: nothing read, flags kept. */
	setup(X86_MODE_64);
	ctx.regs.rflags |= X86_FLAG_CF;
	CHECK_EQ(RUN(0xf3, 0xa6), X86_EMU_DONE);
	CHECK_EQ(fk.reads, 0);
	CHECK_EQ(ctx.regs.rflags, 0x2 | X86_FLAG_CF);
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 2);
}

TEST(scas_and_repne_scas)
{
	setup(X86_MODE_64);
	poke(DATA_BASE, 0x77665544332211ull, 8);
	R(RDI) = DATA_BASE;
	R(RAX) = 0xff2211;
	CHECK_EQ(RUN(0x66, 0xaf), X86_EMU_DONE);		/* scasw: match */
	CHECK(ctx.regs.rflags & X86_FLAG_ZF);
	CHECK_EQ(R(RDI), DATA_BASE + 2);
	R(RAX) = 3;
	CHECK_EQ(run_at(2, BYTES(0x48, 0xaf)), X86_EMU_DONE);	/* scasq: mismatch */
	CHECK(!(ctx.regs.rflags & X86_FLAG_ZF));
	CHECK_EQ(R(RDI), DATA_BASE + 10);
	/* repne scasb finds 0x55 at offset 4, DF=1 going down from 6. */
	setup(X86_MODE_64);
	poke(DATA_BASE, 0x77665544332211ull, 8);
	ctx.regs.rflags |= X86_FLAG_DF;
	R(RDI) = DATA_BASE + 6;
	R(RAX) = 0x55;
	R(RCX) = 50;
	CHECK_EQ(RUN(0xf2, 0xae), X86_EMU_DONE);
	CHECK(ctx.regs.rflags & X86_FLAG_ZF);
	CHECK_EQ(R(RDI), DATA_BASE + 3);
	CHECK_EQ(R(RCX), 47);
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 2);
	/* A fault on the first element: exception, nothing changes. */
	setup(X86_MODE_64);
	fk.fault_page = DATA_BASE;
	R(RDI) = DATA_BASE;
	CHECK_EQ(RUN(0xae), X86_EMU_EXCEPTION);
	CHECK_EQ(R(RDI), DATA_BASE);
}

/* ---- multiply, divide, bit scans, double shifts ---------------------------- */

TEST(mul_imul_div_idiv)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 0x3333333333333333ull, 8);
	R(RAX) = 0x1111111111111111ull;
	R(RDX) = 0x2222222222222222ull;
	CHECK_EQ(RUN(0xf6, 0x23), X86_EMU_DONE);		/* mul byte [rbx] */
	CHECK_EQ(R(RAX), 0x1111111111110363ull);
	CHECK_EQ(R(RDX), 0x2222222222222222ull);
	CHECK(ctx.regs.rflags & X86_FLAG_CF);
	R(RAX) = 0x1111111111111111ull;
	CHECK_EQ(run_at(2, BYTES(0x48, 0xf7, 0x23)), X86_EMU_DONE);	/* mul qword [rbx] */
	CHECK_EQ(R(RAX), 0x2fc962fc962fc963ull);
	CHECK_EQ(R(RDX), 0x369d0369d0369d0ull);
	/* imul one operand: -2 * 3 fits, so CF = OF = 0; RDX = sign. */
	setup(X86_MODE_64);
	R(RAX) = (u64)-2;
	R(RCX) = 3;
	ctx.regs.rflags |= X86_FLAG_CF | X86_FLAG_OF;
	CHECK_EQ(RUN(0x48, 0xf7, 0xe9), X86_EMU_DONE);		/* imul rcx */
	CHECK_EQ(R(RAX), (u64)-6);
	CHECK_EQ(R(RDX), ~0ull);
	CHECK(!(ctx.regs.rflags & (X86_FLAG_CF | X86_FLAG_OF)));
	/* imul r, r/m, imm (kvm-unit-tests' values) */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 0x1234567812345678ull, 8);
	R(RAX) = 0x8765432187654321ull;
	CHECK_EQ(RUN(0x66, 0x6b, 0x03, 51), X86_EMU_DONE);	/* imul ax, [rbx], 51 */
	CHECK_EQ(R(RAX), 0x87654321876539e8ull);
	CHECK_EQ(run_at(4, BYTES(0x48, 0x69, 0x03, 0x37, 0x01, 0, 0)), X86_EMU_DONE);
	CHECK_EQ(R(RAX), 0x1d950bde1d950bc8ull);		/* imul rax, [rbx], 311 */
	poke(DATA_BASE, 51, 8);
	R(RAX) = 0x1234567812345678ull;
	CHECK_EQ(run_at(7, BYTES(0x0f, 0xaf, 0x03)), X86_EMU_DONE);	/* imul eax, [rbx] */
	CHECK_EQ(R(RAX), 0xa06d39e8);
	CHECK(ctx.regs.rflags & X86_FLAG_OF);
	/* div qword [rbx] (kvm-unit-tests' values) */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 987654321098765ull, 8);
	R(RAX) = 123456789012345ull;
	R(RDX) = 123456789012345ull;
	CHECK_EQ(RUN(0x48, 0xf7, 0x33), X86_EMU_DONE);
	CHECK_EQ(R(RAX), 0x1ffffffb1b963b33ull);
	CHECK_EQ(R(RDX), 0x273ba4384ede2ull);
	/* #DE: divide by zero, and a quotient too big; registers unchanged. */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	R(RAX) = 1;
	R(RDX) = 2;
	CHECK_EQ(RUN(0x48, 0xf7, 0x33), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_DE);
	CHECK(!res.fault.has_error_code);
	CHECK_EQ(R(RAX), 1);
	poke(DATA_BASE, 2, 8);
	CHECK_EQ(RUN(0x48, 0xf7, 0x33), X86_EMU_EXCEPTION);	/* 2:1 / 2 needs 65 bits */
	CHECK_EQ(RUN(0xf7, 0x33), X86_EMU_EXCEPTION);		/* 2:1 / 2 in 32 bits too */
	/* idiv: -7 / 2 = -3 rem -1; INT64_MIN / -1 overflows. */
	setup(X86_MODE_64);
	R(RAX) = (u64)-7;
	R(RDX) = ~0ull;
	R(RCX) = 2;
	CHECK_EQ(RUN(0x48, 0xf7, 0xf9), X86_EMU_DONE);		/* idiv rcx */
	CHECK_EQ(R(RAX), (u64)-3);
	CHECK_EQ(R(RDX), (u64)-1);
	R(RAX) = 1ull << 63;
	R(RDX) = ~0ull;
	R(RCX) = ~0ull;
	CHECK_EQ(RUN(0x48, 0xf7, 0xf9), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_DE);
	R(RAX) = 0x80;			/* idiv cl: AX = 128 / -1 = -128 fits AL */
	R(RCX) = 0xff;
	CHECK_EQ(RUN(0xf6, 0xf9), X86_EMU_DONE);
	CHECK_EQ(R(RAX) & 0xffff, 0x0080);
	R(RAX) = 0xff80;		/* -128 / -1 = 128: too big for AL */
	CHECK_EQ(RUN(0xf6, 0xf9), X86_EMU_EXCEPTION);
	R(RAX) = 0xff81;		/* -127 / -1 = 127 */
	CHECK_EQ(RUN(0xf6, 0xf9), X86_EMU_DONE);
	CHECK_EQ(R(RAX) & 0xffff, 0x007f);
}

TEST(bsf_bsr)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 0xc00000000000ull, 8);
	CHECK_EQ(RUN(0x48, 0x0f, 0xbc, 0x03), X86_EMU_DONE);	/* bsf rax, [rbx] */
	CHECK_EQ(R(RAX), 46);
	CHECK(!(ctx.regs.rflags & X86_FLAG_ZF));
	CHECK_EQ(RUN(0x48, 0x0f, 0xbd, 0x03), X86_EMU_DONE);	/* bsr */
	CHECK_EQ(R(RAX), 47);
	CHECK_EQ(RUN(0x66, 0x0f, 0xbc, 0x03), X86_EMU_DONE);	/* bsf ax, word 0 */
	CHECK(ctx.regs.rflags & X86_FLAG_ZF);
	CHECK_EQ(R(RAX), 47);					/* unchanged */
	CHECK_EQ(res.kind, X86_INSN_BSF);
}

TEST(shld_shrd)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 0x12345678, 4);
	R(RDX) = 0xaaaaaaaa;
	R(RCX) = 3;
	CHECK_EQ(RUN(0x0f, 0xa5, 0x13), X86_EMU_DONE);		/* shld [rbx], edx, cl */
	CHECK_EQ(peek(DATA_BASE, 4), (0x12345678u << 3) | 5);
	poke(DATA_BASE, 0x12345678, 4);
	R(RDX) = 0x55555555;
	CHECK_EQ(run_at(3, BYTES(0x0f, 0xac, 0x13, 0x03)), X86_EMU_DONE);	/* shrd ..., 3 */
	CHECK_EQ(peek(DATA_BASE, 4), (0x12345678u >> 3) | (5u << 29));
	CHECK(!(ctx.regs.rflags & X86_FLAG_CF));		/* bit 2 of 0x...78 */
	/* Count 0 (after masking): no write, flags kept. */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	R(RCX) = 32;
	ctx.regs.rflags |= X86_FLAG_CF;
	CHECK_EQ(RUN(0x0f, 0xa5, 0x13), X86_EMU_DONE);
	CHECK_EQ(fk.writes, 0);
	CHECK_EQ(ctx.regs.rflags, 0x2 | X86_FLAG_CF);
	/* 16-bit by 20: through dest:src:dest as on Intel; CF = last bit out. */
	setup(X86_MODE_64);
	R(RAX) = 0x1234;
	R(RDX) = 0xabcd;
	CHECK_EQ(RUN(0x66, 0x0f, 0xa4, 0xd0, 20), X86_EMU_DONE);	/* shld ax, dx, 20 */
	CHECK_EQ(R(RAX), 0xbcd1);
	CHECK(!(ctx.regs.rflags & X86_FLAG_CF));
	/* Count 1: OF = sign change. */
	setup(X86_MODE_64);
	R(RAX) = 0x40000000;
	R(RDX) = 0;
	CHECK_EQ(RUN(0x0f, 0xa4, 0xd0, 1), X86_EMU_DONE);
	CHECK_EQ(R(RAX), 0x80000000);
	CHECK(ctx.regs.rflags & X86_FLAG_OF);
	CHECK(ctx.regs.rflags & X86_FLAG_SF);
}

TEST(cmov_setcc_smsw)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 0xabcdef12, 4);
	R(RAX) = 0x1234567812345678ull;
	ctx.regs.rflags |= X86_FLAG_ZF;
	CHECK_EQ(RUN(0x0f, 0x45, 0x03), X86_EMU_DONE);		/* cmovne eax, [rbx]: false */
	CHECK_EQ(R(RAX), 0x12345678);				/* still zero-extended */
	CHECK_EQ(fk.reads, 1);					/* and memory read */
	CHECK_EQ(RUN(0x0f, 0x44, 0x03), X86_EMU_DONE);		/* cmove: true */
	CHECK_EQ(R(RAX), 0xabcdef12);
	CHECK_EQ(RUN(0x0f, 0x94, 0x03), X86_EMU_DONE);		/* sete [rbx] */
	CHECK_EQ(peek(DATA_BASE, 4), 0xabcdef01);
	CHECK_EQ(RUN(0x0f, 0x9c, 0x03), X86_EMU_DONE);		/* setl: SF == OF */
	CHECK_EQ(peek(DATA_BASE, 1), 0);
	/* smsw: 16 bits to memory, 16/32/64 to a register. */
	setup(X86_MODE_64);
	ctx.sys.cr0 = 0x80050033;
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, ~0ull, 8);
	CHECK_EQ(RUN(0x0f, 0x01, 0x23), X86_EMU_DONE);		/* smsw [rbx] */
	CHECK_EQ(peek(DATA_BASE, 8), 0xffffffffffff0033ull);
	R(RAX) = 0x1234567890abcdefull;
	CHECK_EQ(RUN(0x66, 0x0f, 0x01, 0xe0), X86_EMU_DONE);	/* smsw ax */
	CHECK_EQ(R(RAX), 0x1234567890ab0033ull);
	CHECK_EQ(RUN(0x0f, 0x01, 0xe0), X86_EMU_DONE);		/* smsw eax */
	CHECK_EQ(R(RAX), 0x80050033);
	R(RAX) = ~0ull;
	CHECK_EQ(RUN(0x48, 0x0f, 0x01, 0xe0), X86_EMU_DONE);	/* smsw rax */
	CHECK_EQ(R(RAX), 0x80050033);
	CHECK_EQ(res.kind, X86_INSN_SMSW);
}

/* ---- the stack and branches ------------------------------------------------ */

TEST(push_pop_forms)
{
	u64 top = DATA_BASE + PAGE_SIZE;

	setup(X86_MODE_64);
	R(RSP) = top;
	R(RBX) = DATA_BASE + 0x800;
	poke(DATA_BASE + 0x800, 0x123456789abcdefull, 8);
	CHECK_EQ(RUN(0x6a, 0xf9), X86_EMU_DONE);			/* push -7 */
	CHECK_EQ(peek(top - 8, 8), (u64)-7);
	CHECK_EQ(R(RSP), top - 8);
	CHECK_EQ(run_at(2, BYTES(0x68, 0x0d, 0x1c, 0x94, 0xff)), X86_EMU_DONE);	/* push imm32 */
	CHECK_EQ(peek(top - 16, 8), (u64)-7070707);
	CHECK_EQ(run_at(5, BYTES(0xff, 0x33)), X86_EMU_DONE);		/* push [rbx] */
	CHECK_EQ(peek(top - 24, 8), 0x123456789abcdefull);
	CHECK_EQ(run_at(2, BYTES(0x54)), X86_EMU_DONE);			/* push rsp: old value */
	CHECK_EQ(peek(top - 32, 8), top - 24);
	CHECK_EQ(res.kind, X86_INSN_PUSH);
	CHECK_EQ(run_at(1, BYTES(0x41, 0x58)), X86_EMU_DONE);		/* pop r8 */
	CHECK_EQ(R(R8), top - 24);
	CHECK_EQ(R(RSP), top - 24);
	/* pop [rsp+8]: the address uses the incremented RSP (SDM POP). */
	CHECK_EQ(run_at(2, BYTES(0x8f, 0x44, 0x24, 0x08)), X86_EMU_DONE);
	CHECK_EQ(R(RSP), top - 16);
	CHECK_EQ(peek(top - 8, 8), 0x123456789abcdefull);
	CHECK_EQ(fk.writes, 5);
	/* pushw [rbx] / popw cx with 66 */
	CHECK_EQ(run_at(4, BYTES(0x66, 0xff, 0x33)), X86_EMU_DONE);
	CHECK_EQ(R(RSP), top - 18);
	CHECK_EQ(run_at(3, BYTES(0x66, 0x59)), X86_EMU_DONE);
	CHECK_EQ(R(RCX) & 0xffff, 0xcdef);
	CHECK_EQ(R(RSP), top - 16);
	/* A write fault: RSP unchanged. */
	fk.fault_write_page = DATA_BASE;
	CHECK_EQ(run_at(2, BYTES(0x6a, 0x01)), X86_EMU_EXCEPTION);
	CHECK_EQ(R(RSP), top - 16);
	/* 32-bit code with a 16-bit stack (SS.B = 0): SP wraps, ESP's top half kept. */
	setup(X86_MODE_32);
	R(RSP) = 0x12340000;
	ctx.seg_base[X86_SEG_SS] = DATA_BASE - 0xf000;
	R(RAX) = 0xdeadbeef;
	CHECK_EQ(RUN(0x50), X86_EMU_DONE);				/* push eax */
	CHECK_EQ(R(RSP), 0x1234fffc);
	CHECK_EQ(fk.write_lin, DATA_BASE + 0xffc);
}

TEST(ret_leave_enter_call_jmp)
{
	u64 top = DATA_BASE + PAGE_SIZE;

	setup(X86_MODE_64);
	R(RSP) = top - 8;
	poke(top - 8, CODE_BASE + 0x100, 8);
	CHECK_EQ(RUN(0xc3), X86_EMU_DONE);				/* ret */
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 0x100);
	CHECK_EQ(R(RSP), top);
	setup(X86_MODE_64);
	R(RSP) = top - 8;
	poke(top - 8, CODE_BASE + 0x100, 8);
	CHECK_EQ(RUN(0xc2, 0x10, 0x00), X86_EMU_DONE);		/* ret 16 */
	CHECK_EQ(R(RSP), top + 16);
	/* ret to a non-canonical address: #GP(0), nothing changes. */
	setup(X86_MODE_64);
	R(RSP) = top - 8;
	poke(top - 8, 0x8000000000000000ull, 8);
	CHECK_EQ(RUN(0xc3), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_GP);
	CHECK_EQ(R(RSP), top - 8);
	/* leave: RSP = RBP, pop RBP */
	setup(X86_MODE_64);
	R(RBP) = top - 8;
	poke(top - 8, 0x778899, 8);
	CHECK_EQ(RUN(0xc9), X86_EMU_DONE);
	CHECK_EQ(R(RSP), top);
	CHECK_EQ(R(RBP), 0x778899);
	/* enter 0x1238, 0 */
	setup(X86_MODE_64);
	R(RSP) = top;
	R(RBP) = 0xaa55aa55bb66bb66ull;
	CHECK_EQ(RUN(0xc8, 0x38, 0x12, 0x00), X86_EMU_DONE);
	CHECK_EQ(R(RSP), top - 8 - 0x1238);
	CHECK_EQ(R(RBP), top - 8);
	CHECK_EQ(peek(top - 8, 8), 0xaa55aa55bb66bb66ull);
	CHECK_EQ(res.kind, X86_INSN_ENTER);
	/* call [rbx]: pushes the next RIP, jumps */
	setup(X86_MODE_64);
	R(RSP) = top;
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, CODE_BASE + 0x40, 8);
	CHECK_EQ(RUN(0xff, 0x13), X86_EMU_DONE);
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 0x40);
	CHECK_EQ(peek(top - 8, 8), CODE_BASE + 2);
	/* jmp [rbx] to a non-canonical target: #GP(0) (kvm-unit-tests) */
	poke(DATA_BASE, 0xaaaa000000000000ull, 8);
	CHECK_EQ(RUN(0xff, 0x23), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_GP);
	CHECK_EQ(res.fault.error_code, 0);
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 0x40);
	poke(DATA_BASE, CODE_BASE + 0x80, 8);
	CHECK_EQ(RUN(0x66, 0xff, 0x23), X86_EMU_DONE);		/* 66 is ignored (Intel) */
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 0x80);
}

/* ---- segments --------------------------------------------------------------- */

#define GDT (DATA_BASE + 2 * PAGE_SIZE)

static void gdt_setup(void)
{
	ctx.sys.gdt_base = GDT;
	ctx.sys.gdt_limit = 0x7f;
	poke(GDT + 0x08, 0x00af9b000000ffffull, 8);	/* 64-bit code, accessed */
	poke(GDT + 0x10, 0x00cf92000000ffffull, 8);	/* data, not accessed */
	poke(GDT + 0x18, 0x00cf72000000ffffull, 8);	/* data, not present */
	poke(GDT + 0x20, 0x00008940a0000067ull, 8);	/* available 64-bit TSS, base 0x120040a000 */
	poke(GDT + 0x28, 0x12ull, 8);
	poke(GDT + 0x30, 0x00cffa000000ffffull, 8);	/* DPL 3 code, 32-bit */
}

TEST(ltr_sets_busy)
{
	setup(X86_MODE_64);
	gdt_setup();
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 0x20, 2);
	CHECK_EQ(RUN(0x0f, 0x00, 0x1b), X86_EMU_DONE);		/* ltr [rbx] */
	CHECK_EQ(peek(GDT + 0x20, 8), 0x00008b40a0000067ull);	/* busy in the GDT */
	CHECK_EQ(fk.seg[X86_SEG_TR].selector, 0x20);
	CHECK_EQ(fk.seg[X86_SEG_TR].base, 0x120040a000ull);
	CHECK_EQ(fk.seg[X86_SEG_TR].limit, 0x67);
	CHECK_EQ(fk.seg[X86_SEG_TR].ar, 0x8b);
	CHECK_EQ(res.kind, X86_INSN_LTR);
	/* Busy now: #GP(selector), nothing loaded. */
	fk.seg_loads = 0;
	CHECK_EQ(RUN(0x0f, 0x00, 0x1b), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_GP);
	CHECK_EQ(res.fault.error_code, 0x20);
	CHECK_EQ(fk.seg_loads, 0);
	/* Not a TSS, null, CPL 3. */
	poke(DATA_BASE, 0x10, 2);
	CHECK_EQ(RUN(0x0f, 0x00, 0x1b), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.error_code, 0x10);
	poke(DATA_BASE, 0x3, 2);
	CHECK_EQ(RUN(0x0f, 0x00, 0x1b), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.error_code, 0);
	ctx.sys.cpl = 3;
	poke(DATA_BASE, 0x20, 2);
	CHECK_EQ(RUN(0x0f, 0x00, 0x1b), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.error_code, 0);
	CHECK_EQ(fk.seg_loads, 0);
	/* Beyond the GDT limit. */
	ctx.sys.cpl = 0;
	poke(DATA_BASE, 0x80, 2);
	CHECK_EQ(RUN(0x0f, 0x00, 0x1b), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.error_code, 0x80);
}

TEST(mov_sreg_loads_and_stores)
{
	setup(X86_MODE_64);
	gdt_setup();
	R(RBX) = DATA_BASE;
	/* Null SS at CPL 0 with RPL 0: allowed in 64-bit mode, unusable. */
	poke(DATA_BASE, 0, 2);
	CHECK_EQ(RUN(0x8e, 0x13), X86_EMU_DONE);		/* mov ss, [rbx] */
	CHECK_EQ(fk.seg[X86_SEG_SS].selector, 0);
	CHECK(fk.seg[X86_SEG_SS].ar & X86_AR_UNUSABLE);
	CHECK_EQ(res.kind, X86_INSN_MOV_SREG);
	/* Null SS with RPL 3 != CPL: #GP(0); non-null with RPL 3: #GP(sel). */
	fk.seg_loads = 0;
	poke(DATA_BASE, 3, 2);
	CHECK_EQ(RUN(0x8e, 0x13), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_GP);
	CHECK_EQ(res.fault.error_code, 0);
	poke(DATA_BASE, 0x13, 2);
	CHECK_EQ(RUN(0x8e, 0x13), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.error_code, 0x10);
	CHECK_EQ(fk.seg_loads, 0);
	/* A data segment into DS: accessed bit set in the GDT and in AR. */
	poke(DATA_BASE, 0x10, 2);
	CHECK_EQ(RUN(0x8e, 0x1b), X86_EMU_DONE);		/* mov ds, [rbx] */
	CHECK_EQ(fk.seg[X86_SEG_DS].ar, 0xc093);
	CHECK_EQ(fk.seg[X86_SEG_DS].limit, 0xffffffff);
	CHECK_EQ(peek(GDT + 0x10, 8), 0x00cf93000000ffffull);
	/* Not present: #NP(sel) for DS, #SS(sel) for SS. */
	poke(DATA_BASE, 0x18, 2);
	CHECK_EQ(RUN(0x8e, 0x1b), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_NP);
	CHECK_EQ(res.fault.error_code, 0x18);
	/* A code segment into SS: #GP(sel). */
	poke(DATA_BASE, 0x08, 2);
	CHECK_EQ(RUN(0x8e, 0x13), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.error_code, 0x08);
	/* mov [rbx], cs: 16 bits; mov eax, ds: zero-extended. */
	ctx.sys.sel[X86_SEG_CS] = 0x08;
	ctx.sys.sel[X86_SEG_DS] = 0x10;
	poke(DATA_BASE, ~0ull, 8);
	CHECK_EQ(RUN(0x66, 0x8c, 0x0b), X86_EMU_DONE);
	CHECK_EQ(peek(DATA_BASE, 8), 0xffffffffffff0008ull);
	R(RAX) = ~0ull;
	CHECK_EQ(RUN(0x8c, 0xd8), X86_EMU_DONE);
	CHECK_EQ(R(RAX), 0x10);
}

TEST(far_jump_through_memory)
{
	setup(X86_MODE_64);
	gdt_setup();
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, CODE_BASE + 0x200, 8);
	poke(DATA_BASE + 8, 0x08, 2);
	CHECK_EQ(RUN(0x48, 0xff, 0x2b), X86_EMU_DONE);		/* rex64 ljmp *[rbx] */
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 0x200);
	CHECK_EQ(fk.seg[X86_SEG_CS].selector, 0x08);
	CHECK_EQ(fk.seg[X86_SEG_CS].ar, 0xa09b);
	CHECK_EQ(res.kind, X86_INSN_JMP_FAR);
	/* To a data segment: #GP(sel); non-canonical: #GP(0); DPL 3 code: #GP(sel). */
	fk.seg_loads = 0;
	poke(DATA_BASE + 8, 0x10, 2);
	CHECK_EQ(RUN(0x48, 0xff, 0x2b), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.error_code, 0x10);
	poke(DATA_BASE + 8, 0x08, 2);
	poke(DATA_BASE, 0x0000800000000000ull, 8);
	CHECK_EQ(RUN(0x48, 0xff, 0x2b), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.error_code, 0);
	poke(DATA_BASE + 8, 0x33, 2);
	CHECK_EQ(RUN(0x48, 0xff, 0x2b), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.error_code, 0x30);
	CHECK_EQ(fk.seg_loads, 0);
	/* m16:32 to the 32-bit code segment at CPL 3: offset within the limit. */
	ctx.sys.cpl = 3;
	poke(DATA_BASE, 0x1000, 4);
	poke(DATA_BASE + 4, 0x33, 2);
	CHECK_EQ(RUN(0xff, 0x2b), X86_EMU_DONE);
	CHECK_EQ(ctx.regs.rip, 0x1000);
	CHECK_EQ(fk.seg[X86_SEG_CS].selector, 0x33);
	CHECK_EQ(fk.seg[X86_SEG_CS].ar & 0x6000, 0x4000);	/* D=1, L=0 */
}

TEST(far_call_through_memory)
{
	u64 top = DATA_BASE + PAGE_SIZE;

	setup(X86_MODE_64);
	gdt_setup();
	ctx.sys.sel[X86_SEG_CS] = 0x08;
	R(RSP) = top;
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, CODE_BASE + 0x300, 8);
	poke(DATA_BASE + 8, 0x08, 2);
	CHECK_EQ(RUN(0x48, 0xff, 0x1b), X86_EMU_DONE);		/* rex64 lcall *[rbx] */
	CHECK_EQ(ctx.regs.rip, CODE_BASE + 0x300);
	CHECK_EQ(R(RSP), top - 16);
	CHECK_EQ(peek(top - 16, 8), CODE_BASE + 3);		/* return RIP */
	CHECK_EQ(peek(top - 8, 8), 0x08);			/* CS, zero-extended */
	CHECK_EQ(fk.writes, 1);					/* one write for both */
	CHECK_EQ(fk.seg[X86_SEG_CS].selector, 0x08);
	CHECK_EQ(res.kind, X86_INSN_CALL_FAR);
	/* The push faults: nothing loaded, the GDT untouched (no accessed bit). */
	setup(X86_MODE_64);
	gdt_setup();
	poke(GDT + 0x30, 0x00cff8000000ffffull, 8);	/* DPL 3 code, not accessed */
	ctx.sys.cpl = 3;
	R(RSP) = top;
	R(RBX) = DATA_BASE;
	poke(DATA_BASE, 0x1000, 4);
	poke(DATA_BASE + 4, 0x33, 2);
	fk.fault_write_page = DATA_BASE;
	CHECK_EQ(RUN(0xff, 0x1b), X86_EMU_EXCEPTION);		/* lcall m16:32 */
	CHECK_EQ(res.fault.vector, X86_VEC_PF);
	CHECK_EQ(fk.seg_loads, 0);
	CHECK_EQ(peek(GDT + 0x30, 8), 0x00cff8000000ffffull);
	CHECK_EQ(R(RSP), top);
	/* Without the fault: 4-byte slots, CS.RPL = CPL, accessed bit set. */
	fk.fault_write_page = NO_PAGE;
	CHECK_EQ(RUN(0xff, 0x1b), X86_EMU_DONE);
	CHECK_EQ(R(RSP), top - 8);
	CHECK_EQ(peek(top - 8, 4), CODE_BASE + 2);
	CHECK_EQ(peek(top - 4, 4), 0);				/* sys.sel[CS] was 0 here */
	CHECK_EQ(fk.seg[X86_SEG_CS].selector, 0x33);
	CHECK_EQ(peek(GDT + 0x30, 8), 0x00cff9000000ffffull);
}

/* ---- SSE / MMX moves --------------------------------------------------------- */

TEST(sse_mmx_moves)
{
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE + 0x100;
	for (int i = 0; i < 16; i++)
		fk.xmm[9][i] = (u8)(0xa0 + i);
	/* movdqu [rbx], xmm9 then movdqu xmm2, [rbx] */
	CHECK_EQ(RUN(0xf3, 0x44, 0x0f, 0x7f, 0x0b), X86_EMU_DONE);
	CHECK(!memcmp(data_ptr(DATA_BASE + 0x100, 16), fk.xmm[9], 16));
	CHECK_EQ(res.kind, X86_INSN_VMOV);
	CHECK_EQ(run_at(5, BYTES(0xf3, 0x0f, 0x6f, 0x13)), X86_EMU_DONE);
	CHECK(!memcmp(fk.xmm[2], fk.xmm[9], 16));
	/* movaps needs 16-byte alignment: #GP(0), no callback. */
	R(RBX) = DATA_BASE + 0x108;
	fk.vreg_reads = fk.vreg_writes = 0;
	CHECK_EQ(RUN(0x0f, 0x29, 0x0b), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_GP);
	CHECK_EQ(fk.vreg_reads + fk.vreg_writes, 0);
	CHECK_EQ(RUN(0x0f, 0x11, 0x0b), X86_EMU_DONE);		/* movups: fine */
	CHECK_EQ(fk.write_len, 16);
	/* movss xmm1, [rbx]: 4 bytes, the rest of xmm1 zeroed. */
	memset(fk.xmm[1], 0xee, 16);
	poke(DATA_BASE + 0x108, 0x11223344, 4);
	CHECK_EQ(RUN(0xf3, 0x0f, 0x10, 0x0b), X86_EMU_DONE);
	CHECK_EQ(fk.xmm[1][0], 0x44);
	CHECK_EQ(fk.xmm[1][4], 0);
	CHECK_EQ(fk.xmm[1][15], 0);
	/* movq [rbx], mm3: 8 bytes, then MMX state; movd mm3, [rbx]: zero-extended */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	memcpy(fk.mm[3], "\x08\x07\x06\x05\x04\x03\x02\x01", 8);
	CHECK_EQ(RUN(0x0f, 0x7f, 0x1b), X86_EMU_DONE);
	CHECK_EQ(peek(DATA_BASE, 8), 0x0102030405060708ull);
	CHECK_EQ(fk.mmx_touches, 1);
	CHECK_EQ(RUN(0x0f, 0x6e, 0x1b), X86_EMU_DONE);
	CHECK_EQ(fk.mm[3][0], 0x08);
	CHECK_EQ(fk.mm[3][4], 0);
	/* A faulting store changes no register state (no MMX state either). */
	fk.fault_write_page = DATA_BASE;
	CHECK_EQ(RUN(0x0f, 0x7f, 0x1b), X86_EMU_EXCEPTION);
	CHECK_EQ(fk.mmx_touches, 1);
	/* movq [rbx], xmm4 (66 0F D6) and movq xmm5, [rbx] (F3 0F 7E) */
	setup(X86_MODE_64);
	R(RBX) = DATA_BASE;
	memset(fk.xmm[4], 0x5a, 16);
	memset(fk.xmm[5], 0xff, 16);
	CHECK_EQ(RUN(0x66, 0x0f, 0xd6, 0x23), X86_EMU_DONE);
	CHECK_EQ(fk.write_len, 8);
	CHECK_EQ(RUN(0xf3, 0x0f, 0x7e, 0x2b), X86_EMU_DONE);
	CHECK_EQ(fk.xmm[5][7], 0x5a);
	CHECK_EQ(fk.xmm[5][8], 0);
}

/* ---- hardware task switch (SDM Vol. 3A 8.3) -------------------------------------- */

#define TSS_A (DATA_BASE + 3 * PAGE_SIZE)	/* the running task, TR = 0x38 */
#define TSS_B (TSS_A + 0x100)			/* the other, selector 0x40 */

/* A 32-bit TSS descriptor: base, limit 0x67, type 9 (available) or 11 (busy). */
static u64 tss_desc(u64 base, unsigned int type)
{
	return 0x67 | (base & 0xffffff) << 16 | (u64)(0x80 | type) << 40 |
	       (base >> 24) << 56;
}

static void task_setup(struct x86_task_switch *t, enum x86_task_source source)
{
	setup(X86_MODE_32);
	gdt_setup();
	ctx.sys.cpl = 0;
	ctx.sys.ss_big = true;
	poke(GDT + 0x38, tss_desc(TSS_A, 11), 8);
	poke(GDT + 0x40, tss_desc(TSS_B, 9), 8);
	poke(GDT + 0x48, 0x00cf9b000000ffffull, 8);	/* 32-bit code, DPL 0 */
	poke(GDT + 0x50, 0x00cf93000000ffffull, 8);	/* data, DPL 0 */
	poke(GDT + 0x58, 0x00cf9f000000ffffull, 8);	/* conforming code, DPL 0 */
	poke(GDT + 0x60, 0x00cff3000000ffffull, 8);	/* data, DPL 3 */
	ctx.sys.gdt_limit = 0x7f;
	for (unsigned int i = 0; i < X86_NR_SEGS; i++)
		ctx.sys.sel[i] = i == X86_SEG_CS ? 0x48 : 0x50;
	for (unsigned int i = 0; i < 8; i++)
		ctx.regs.gpr[i] = 0x1000 + i;
	ctx.regs.rip = 0x401234;
	ctx.regs.rflags = 0x202;
	/* Task B: its registers, flat segments, an LDT-less task. */
	poke(TSS_B + 0x1c, 0x7000, 4);			/* CR3 */
	poke(TSS_B + 0x20, 0x405000, 4);		/* EIP */
	poke(TSS_B + 0x24, 0x2, 4);			/* EFLAGS */
	for (unsigned int i = 0; i < 8; i++)
		poke(TSS_B + 0x28 + 4 * i, 0x2000 + i, 4);
	poke(TSS_B + 0x38, DATA_BASE + 0x800, 4);	/* ESP */
	for (unsigned int i = 0; i < 6; i++)
		poke(TSS_B + 0x48 + 4 * i, i == X86_SEG_CS ? 0x48 : 0x50, 2);
	*t = (struct x86_task_switch){
		.selector = 0x40, .source = source,
		.tr = { .selector = 0x38, .base = TSS_A, .limit = 0x67, .ar = 0x8b },
	};
	fk.sys_writes = 0;
}

TEST(task_switch_call_and_iret)
{
	struct x86_task_switch t;

	task_setup(&t, X86_TASK_CALL);
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_DONE);
	CHECK(t.committed);
	/* The old task saved: EIP, EFLAGS, GPRs, selectors; still busy (call). */
	CHECK_EQ(peek(TSS_A + 0x20, 4), 0x401234);
	CHECK_EQ(peek(TSS_A + 0x24, 4), 0x202);
	CHECK_EQ(peek(TSS_A + 0x28 + 4 * X86_RBX, 4), 0x1003);
	CHECK_EQ(peek(TSS_A + 0x4c, 2), 0x48);
	CHECK_EQ(peek(GDT + 0x38, 8), tss_desc(TSS_A, 11));
	/* The new one: back link, busy, loaded with NT set; TR, CR3, CS, SS. */
	CHECK_EQ(peek(TSS_B, 2), 0x38);
	CHECK_EQ(peek(GDT + 0x40, 8), tss_desc(TSS_B, 11));
	CHECK_EQ(ctx.regs.rip, 0x405000);
	CHECK_EQ(ctx.regs.rflags, 0x4002);
	CHECK_EQ(R(RCX), 0x2001);
	CHECK_EQ(fk.seg[X86_SEG_TR].selector, 0x40);
	CHECK_EQ(fk.seg[X86_SEG_TR].ar, 0x8b);
	CHECK_EQ(fk.cr3, 0x7000);
	CHECK_EQ(fk.seg[X86_SEG_CS].selector, 0x48);
	CHECK_EQ(fk.seg[X86_SEG_SS].ar & 0xff, 0x93);	/* accessed set on the load */
	CHECK_EQ(fk.seg[X86_SEG_LDTR].ar, X86_AR_UNUSABLE);

	/* iret from B (NT set) back to A: B available again, A's state back, NT clear in
	 * B's saved EFLAGS. */
	t = (struct x86_task_switch){
		.selector = 0x38, .source = X86_TASK_IRET,
		.tr = { .selector = 0x40, .base = TSS_B, .limit = 0x67, .ar = 0x8b },
	};
	ctx.regs.rip = 0x405010;
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_DONE);
	CHECK_EQ(peek(GDT + 0x40, 8), tss_desc(TSS_B, 9));
	CHECK_EQ(peek(TSS_B + 0x20, 4), 0x405010);
	CHECK_EQ(peek(TSS_B + 0x24, 4), 0x2);
	CHECK_EQ(ctx.regs.rip, 0x401234);
	CHECK_EQ(ctx.regs.rflags, 0x202);
	CHECK_EQ(R(RBX), 0x1003);
	CHECK_EQ(fk.seg[X86_SEG_TR].selector, 0x38);
}

TEST(task_switch_gate_pushes_error_code)
{
	struct x86_task_switch t;

	task_setup(&t, X86_TASK_GATE);
	t.has_error = true;
	t.error_code = 0x1234;
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_DONE);
	CHECK_EQ(R(RSP), DATA_BASE + 0x800 - 4);
	CHECK_EQ(peek(DATA_BASE + 0x800 - 4, 4), 0x1234);
	CHECK_EQ(peek(TSS_B, 2), 0x38);			/* nested: back link and NT */
	CHECK(ctx.regs.rflags & BIT(14));
	/* jmp: no back link, no NT, the old task available again. */
	task_setup(&t, X86_TASK_JMP);
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_DONE);
	CHECK_EQ(peek(TSS_B, 2), 0);
	CHECK(!(ctx.regs.rflags & BIT(14)));
	CHECK_EQ(peek(GDT + 0x38, 8), tss_desc(TSS_A, 9));
}

TEST(task_switch_faults)
{
	struct x86_task_switch t;

	/* Before the commit point: nothing written, nothing loaded. */
	task_setup(&t, X86_TASK_CALL);
	poke(GDT + 0x40, tss_desc(TSS_B, 11), 8);	/* busy: #GP(sel) */
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_GP);
	CHECK_EQ(res.fault.error_code, 0x40);
	CHECK(!t.committed);
	CHECK_EQ(fk.sys_writes, 0);
	CHECK_EQ(fk.seg_loads, 0);
	t.source = X86_TASK_IRET;			/* iret wants it busy: fine */
	poke(GDT + 0x40, tss_desc(TSS_B, 9), 8);	/* and available is #TS for iret */
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_TS);
	task_setup(&t, X86_TASK_CALL);
	poke(GDT + 0x40, tss_desc(TSS_B, 9) & ~BIT(47), 8);	/* not present: #NP */
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_NP);
	poke(GDT + 0x40, tss_desc(TSS_B, 9) - 0x10, 8);	/* limit 0x57: #TS */
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_TS);
	poke(GDT + 0x40, 0x00cf93000000ffffull, 8);	/* not a TSS: #GP */
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.vector, X86_VEC_GP);
	t.selector = 0x44;				/* TI = 1: #GP */
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.error_code, 0x44);
	CHECK_EQ(fk.sys_writes, 0);
	/* After it: a data selector for CS is #TS(sel) in the new task. */
	task_setup(&t, X86_TASK_CALL);
	poke(TSS_B + 0x4c, 0x50, 2);
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_EXCEPTION);
	CHECK(t.committed);
	CHECK_EQ(res.fault.vector, X86_VEC_TS);
	CHECK_EQ(res.fault.error_code, 0x50);
	CHECK_EQ(ctx.regs.rip, 0x405000);
	/* SS with RPL 3 under a CPL 0 CS: #TS. */
	task_setup(&t, X86_TASK_CALL);
	poke(TSS_B + 0x50, 0x63, 2);
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_EXCEPTION);
	CHECK_EQ(res.fault.error_code, 0x60);
	/* IA-32e mode: no task switches. */
	task_setup(&t, X86_TASK_CALL);
	ctx.sys.efer_lma = true;
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_UNHANDLED);
	CHECK_EQ(res.reason, X86_REASON_MODE);
}

TEST(task_switch_conforming_and_vm86)
{
	struct x86_task_switch t;

	/* A conforming DPL 0 code segment at RPL 3: the new task runs at CPL 3. */
	task_setup(&t, X86_TASK_CALL);
	poke(TSS_B + 0x4c, 0x5b, 2);
	for (unsigned int i = 0; i < 6; i++)
		if (i != X86_SEG_CS)
			poke(TSS_B + 0x48 + 4 * i, 0x63, 2);
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_DONE);
	CHECK_EQ(fk.seg[X86_SEG_CS].selector, 0x5b);
	CHECK_EQ(fk.seg[X86_SEG_SS].selector, 0x63);
	CHECK_EQ(ctx.sys.cpl, 3);
	/* EFLAGS.VM: real-mode style segments (base = selector * 16, AR 0xf3). */
	task_setup(&t, X86_TASK_IRET);
	poke(GDT + 0x40, tss_desc(TSS_B, 11), 8);
	poke(TSS_B + 0x24, 0x20002, 4);
	poke(TSS_B + 0x4c, 0x4200, 2);
	poke(TSS_B + 0x54, 0x1234, 2);
	CHECK_EQ(x86_task_switch(&ctx, &t, &res), X86_EMU_DONE);
	CHECK_EQ(fk.seg[X86_SEG_CS].base, 0x42000);
	CHECK_EQ(fk.seg[X86_SEG_DS].base, 0x12340);
	CHECK_EQ(fk.seg[X86_SEG_DS].ar, 0xf3);
	CHECK_EQ(fk.seg[X86_SEG_DS].limit, 0xffff);
	CHECK_EQ(ctx.regs.rflags, 0x20002);
}

UNIT_MAIN()
