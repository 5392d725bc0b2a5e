/*
 * libFuzzer target for arch/x86/emulate.c: random instruction bytes, registers,
 * mode and callback behaviour over a small fake memory. Checks that the
 * emulator never crashes (ASan/UBSan), only passes callbacks sane lengths,
 * decodes at most 15 bytes, never changes registers or memory when it does not
 * return DONE, writes memory at most once, reports the bytes it wrote, and gives
 * the same answer when run twice on the same state.
 *
 * Input layout (shorter inputs are zero-padded):
 *   [0]      bits 0-1: mode (value % 3: 16, 32, 64-bit); bit 7: the faulting
 *            page below faults on writes only (reads succeed)
 *   [1..2]   RFLAGS low 16 bits (arithmetic flags and DF are used)
 *   [3]      bits 0-2: data page that faults, unless bit 3; bit 4: data
 *            callbacks return UNHANDLED; bits 5-6: cmpxchg races to lose;
 *            bit 7: place the instruction 8 bytes before a page end
 *   [4..9]   segment bases ES CS SS DS FS GS, in units of 256 bytes
 *   [10..41] 16 registers, each a sign-extended 16-bit value (so that most
 *            addresses land in the fake memory at linear 0..0x7fff)
 *   [42..]   instruction bytes (up to 32)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "arch/x86/emulate.h"

#define HEADER 42
#define DATA_PAGES 8
#define CODE_BASE 0x10000ull
#define CODE_SIZE (2 * PAGE_SIZE)
#define NO_PAGE (~0ull)

static u8 data[DATA_PAGES * PAGE_SIZE];
static u8 code[CODE_SIZE];

static struct {
	u64 fault_page;
	bool fault_writes_only;
	bool unhandled;
	unsigned int races;
	unsigned int writes_done;	/* successful write/cmpxchg-with-swap callbacks */
	unsigned int bytes_done;
} fz;

#define REQUIRE(c)							\
	do {								\
		if (!(c))						\
			__builtin_trap();				\
	} while (0)

static enum x86_cb_status pf(struct x86_fault *f, u64 lin, u32 ec)
{
	f->vector = X86_VEC_PF;
	f->has_error_code = true;
	f->error_code = ec;
	f->address = lin;
	return X86_CB_FAULT;
}

static enum x86_cb_status fz_fetch(void *opaque, u64 lin, void *buf, unsigned int len,
				   struct x86_fault *f)
{
	(void)opaque;
	REQUIRE(len >= 1 && len <= 15);
	if (lin < CODE_BASE || lin + len > CODE_BASE + CODE_SIZE)
		return pf(f, lin, 0x10);
	memcpy(buf, code + (lin - CODE_BASE), len);
	return X86_CB_OK;
}

/* Returns the host pointer, or NULL after filling *f / setting *st. */
static u8 *fz_data(u64 lin, unsigned int len, u32 ec, struct x86_fault *f,
		   enum x86_cb_status *st)
{
	REQUIRE(len >= 1 && len <= X86_EMU_SCRATCH_SIZE);
	if (fz.unhandled) {
		*st = X86_CB_UNHANDLED;
		return NULL;
	}
	if (lin >= sizeof(data) || len > sizeof(data) - lin ||
	    (fz.fault_page != NO_PAGE && (ec || !fz.fault_writes_only) &&
	     (lin >> 12) <= fz.fault_page && ((lin + len - 1) >> 12) >= fz.fault_page)) {
		*st = pf(f, lin, ec);
		return NULL;
	}
	*st = X86_CB_OK;
	return data + lin;
}

static enum x86_cb_status fz_read(void *opaque, u64 lin, void *buf, unsigned int len,
				  struct x86_fault *f)
{
	enum x86_cb_status st;
	u8 *p = fz_data(lin, len, 0, f, &st);

	(void)opaque;
	if (p)
		memcpy(buf, p, len);
	return st;
}

static enum x86_cb_status fz_write(void *opaque, u64 lin, const void *buf, unsigned int len,
				   struct x86_fault *f)
{
	enum x86_cb_status st;
	u8 *p = fz_data(lin, len, 2, f, &st);

	(void)opaque;
	if (p) {
		memcpy(p, buf, len);
		fz.writes_done++;
		fz.bytes_done += len;
	}
	return st;
}

static enum x86_cb_status fz_cmpxchg(void *opaque, u64 lin, void *expected, const void *desired,
				     unsigned int len, bool *swapped, struct x86_fault *f)
{
	enum x86_cb_status st;
	u8 *p;

	(void)opaque;
	REQUIRE(len == 1 || len == 2 || len == 4 || len == 8 || len == 16);
	p = fz_data(lin, len, 2, f, &st);
	if (!p)
		return st;
	if (fz.races) {
		fz.races--;
		p[0] ^= 1;	/* another vCPU wrote meanwhile */
	}
	*swapped = !memcmp(p, expected, len);
	if (*swapped) {
		memcpy(p, desired, len);
		fz.writes_done++;
		fz.bytes_done += len;
	} else {
		memcpy(expected, p, len);
	}
	return X86_CB_OK;
}

/* Descriptor tables in the same fake memory; the accessed/busy bit is a write. */
static enum x86_cb_status fz_sys_copy(void *opaque, u64 lin, void *buf, unsigned int len,
				      bool write, struct x86_fault *f)
{
	enum x86_cb_status st;
	u8 *p = fz_data(lin, len, write ? 2 : 0, f, &st);

	(void)opaque;
	REQUIRE(len == 1 || len == 8 || len == 16);
	if (!p)
		return st;
	if (write) {
		memcpy(p, buf, len);
		fz.writes_done++;
	} else {
		memcpy(buf, p, len);
	}
	return X86_CB_OK;
}

static u8 vregs[16][16];

static enum x86_cb_status fz_load_seg(void *opaque, enum x86_seg seg, const struct x86_segment *sg)
{
	(void)opaque;
	REQUIRE(seg <= X86_SEG_TR);
	REQUIRE(!(sg->ar & ~(0xf0ffu | X86_AR_UNUSABLE)));
	return X86_CB_OK;
}

static enum x86_cb_status fz_vreg_read(void *opaque, enum x86_vreg kind, unsigned int n, u8 *val)
{
	(void)opaque;
	REQUIRE(n < (kind == X86_VREG_MM ? 8u : 16u));
	memcpy(val, vregs[n], kind == X86_VREG_MM ? 8 : 16);
	return X86_CB_OK;
}

static enum x86_cb_status fz_vreg_write(void *opaque, enum x86_vreg kind, unsigned int n,
					const u8 *val)
{
	(void)opaque;
	REQUIRE(n < (kind == X86_VREG_MM ? 8u : 16u));
	REQUIRE(val || kind == X86_VREG_MM);
	return X86_CB_OK;
}

static const struct x86_emu_ops fz_ops = {
	.fetch = fz_fetch, .read = fz_read, .write = fz_write, .cmpxchg = fz_cmpxchg,
	.sys_copy = fz_sys_copy, .load_seg = fz_load_seg,
	.vreg_read = fz_vreg_read, .vreg_write = fz_vreg_write,
};

static struct x86_emu_ctxt ctx;
static u8 data_before[sizeof(data)];
static u8 data_after[sizeof(data)];

static void setup(const u8 *in)
{
	static const enum x86_cpu_mode modes[3] = { X86_MODE_16, X86_MODE_32, X86_MODE_64 };
	u64 offset = (in[3] & 0x80) ? PAGE_SIZE - 8 : 0;

	fz.fault_page = (in[3] & 8) ? NO_PAGE : (in[3] & 7);
	fz.fault_writes_only = in[0] & 0x80;
	fz.unhandled = in[3] & 0x10;
	fz.races = (in[3] >> 5) & 3;
	fz.writes_done = 0;
	fz.bytes_done = 0;

	memset(&ctx.regs, 0, sizeof(ctx.regs));
	ctx.mode = modes[(in[0] & 3) % 3];
	ctx.regs.rflags = 0x2 | ((in[1] | (u64)in[2] << 8) & (X86_FLAGS_ARITH | X86_FLAG_DF));
	for (int s = 0; s < X86_NR_SEGS; s++)
		ctx.seg_base[s] = (u64)in[4 + s] << 8;
	for (int r = 0; r < X86_NR_GPRS; r++)
		ctx.regs.gpr[r] = (u64)(s64)(s16)(in[10 + 2 * r] | in[11 + 2 * r] << 8);
	/* Code at CODE_BASE (+offset): via RIP, or via CS.base in 16-bit mode. */
	if (ctx.mode == X86_MODE_16) {
		ctx.seg_base[X86_SEG_CS] = CODE_BASE;
		ctx.regs.rip = offset;
	} else {
		ctx.seg_base[X86_SEG_CS] = 0;
		ctx.regs.rip = CODE_BASE + offset;
	}
	/* System state: CPL, mode bits and a GDT somewhere in the fake memory. */
	memset(&ctx.sys, 0, sizeof(ctx.sys));
	ctx.sys.cpl = (in[0] >> 2) & 3;
	ctx.sys.efer_lma = ctx.mode == X86_MODE_64 || (in[0] & 0x10);
	ctx.sys.ss_big = in[0] & 0x20;
	ctx.sys.cr0 = 0x80000011 | ((u64)in[1] << 16);
	ctx.sys.gdt_base = (u64)in[4] << 4;
	ctx.sys.gdt_limit = (u32)in[5] << 3 | 7;
	for (int s = 0; s < X86_NR_SEGS; s++)
		ctx.sys.sel[s] = (u16)(in[10 + s] << 3);
	ctx.ops = &fz_ops;
	ctx.opaque = NULL;
}

/* Field by field: padding bytes may differ. */
static bool same_result(const struct x86_emu_result *a, const struct x86_emu_result *b)
{
	return a->status == b->status && a->reason == b->reason &&
	       a->fault.vector == b->fault.vector &&
	       a->fault.has_error_code == b->fault.has_error_code &&
	       a->fault.error_code == b->fault.error_code &&
	       a->fault.address == b->fault.address && a->kind == b->kind &&
	       a->insn_len == b->insn_len && a->lock == b->lock && a->has_mem == b->has_mem &&
	       a->mem_linear == b->mem_linear && a->mem_size == b->mem_size &&
	       a->write_linear == b->write_linear && a->bytes_written == b->bytes_written &&
	       a->reps == b->reps;
}

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *input, size_t size)
{
	u8 in[HEADER + 32] = { 0 };
	struct x86_regs regs_in, regs_out;
	struct x86_emu_result res1, res2;
	enum x86_emu_status st;
	unsigned int writes1, bytes1;

	memcpy(in, input, size < sizeof(in) ? size : sizeof(in));
	memset(code, 0, sizeof(code));
	setup(in);
	memcpy(code + (ctx.seg_base[X86_SEG_CS] + ctx.regs.rip - CODE_BASE), in + HEADER, 32);
	/* Data: a fixed pattern so that results are reproducible. */
	for (size_t i = 0; i < sizeof(data); i++)
		data[i] = (u8)(i * 7 + (i >> 8));
	memcpy(data_before, data, sizeof(data));

	regs_in = ctx.regs;
	st = x86_emulate(&ctx, &res1);
	REQUIRE(st == res1.status);
	REQUIRE(res1.insn_len <= 15);
	REQUIRE(fz.writes_done <= 1);
	if (st == X86_EMU_DONE) {
		REQUIRE(res1.insn_len >= 1);
		REQUIRE(res1.bytes_written == fz.bytes_done);
		REQUIRE(res1.kind != X86_INSN_NONE);
	} else {
		/* All-or-nothing: no register and no memory change. */
		REQUIRE(!memcmp(&regs_in, &ctx.regs, sizeof(regs_in)));
		REQUIRE(fz.writes_done == 0);
		REQUIRE(!memcmp(data_before, data, sizeof(data)));
		REQUIRE(res1.bytes_written == 0);
	}
	if (st == X86_EMU_UNHANDLED || st == X86_EMU_RETRY)
		REQUIRE(res1.reason != X86_REASON_NONE);
	REQUIRE(x86_insn_kind_name(res1.kind)[0] != '?');
	REQUIRE(x86_emu_reason_name(res1.reason)[0] != '?');
	regs_out = ctx.regs;
	writes1 = fz.writes_done;
	bytes1 = fz.bytes_done;
	memcpy(data_after, data, sizeof(data));

	/* Same state again: same answer. */
	memcpy(data, data_before, sizeof(data));
	setup(in);
	REQUIRE(x86_emulate(&ctx, &res2) == st);
	REQUIRE(same_result(&res1, &res2));
	REQUIRE(!memcmp(&regs_out, &ctx.regs, sizeof(regs_out)));
	REQUIRE(!memcmp(data_after, data, sizeof(data)));
	REQUIRE(fz.writes_done == writes1 && fz.bytes_done == bytes1);
	return 0;
}
