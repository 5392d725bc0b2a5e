/*
 * x86 instruction decoder and emulator for guest page-table writes and MMIO
 * accesses (see emulate.h for the contract). One instruction per call:
 *
 *   decode()   prefixes, opcode, ModRM/SIB/displacement, immediate
 *   execute()  compute the memory operand's linear address, read it, compute
 *              the result and flags on a private copy of the registers, then
 *              write memory (plain write, or cmpxchg for locked operations)
 *   commit     copy the private registers back only when everything succeeded
 *
 * References: SDM Vol. 2A ch. 2 (instruction format), Vol. 2 instruction pages,
 * Vol. 1 3.4.3 (flags), Vol. 3A 3.4 (segmentation).
 */
#include <string.h>

#include "arch/x86/emulate.h"

#define MAX_INSN_LEN 15		/* SDM Vol. 2A 2.3.11: longer is #GP(0) */
#define MAX_CMPXCHG_TRIES 16	/* locked RMW attempts before giving up (RETRY) */

/* What the instruction does with its ModRM "E" operand and its source. */
enum src_kind {
	SRC_NONE,
	SRC_REG,		/* ModRM.reg ("G") */
	SRC_IMM,
};

/* Decoded instruction plus the working copy of the registers. */
struct emu {
	struct x86_emu_ctxt *ctxt;
	struct x86_emu_result *res;
	struct x86_regs regs;		/* committed to ctxt->regs on success */

	u8 bytes[MAX_INSN_LEN];
	unsigned int fetched;		/* bytes[] valid so far */
	unsigned int len;		/* bytes consumed so far */

	/* Prefixes. */
	unsigned int op_size;		/* 1, 2, 4 or 8 after opcode decode */
	unsigned int addr_size;		/* 2, 4 or 8 */
	bool lock;
	bool rep;			/* F2 or F3 (same meaning for stos/movs/lods) */
	bool rex_present;		/* any REX, even 0x40: selects SPL..DIL over AH..BH */
	u8 rex;
	int seg_override;		/* enum x86_seg, or -1 */

	/* Opcode and operands. */
	enum x86_insn_kind kind;
	bool two_byte;			/* 0F xx */
	u8 opcode;
	bool has_modrm;
	u8 mod, reg, rm;		/* reg and rm include REX.R / REX.B */
	bool mem;			/* E operand is memory (else register rm) */
	bool rip_relative;
	u64 ea;				/* effective address (offset in segment) */
	enum x86_seg seg;		/* segment of the memory operand */
	unsigned int e_size;		/* size of the E operand (movzx: 1 or 2) */
	bool g_dest;			/* result goes to ModRM.reg (loads, 02/03 ALU forms) */
	enum src_kind src;
	u64 imm;
	u64 lin;			/* linear address of the E memory operand */
};

static const char *const kind_names[X86_NR_INSN_KINDS] = {
	[X86_INSN_NONE] = "none", [X86_INSN_MOV] = "mov", [X86_INSN_MOVZX] = "movzx",
	[X86_INSN_MOVSX] = "movsx", [X86_INSN_MOVSXD] = "movsxd", [X86_INSN_XCHG] = "xchg",
	[X86_INSN_CMPXCHG] = "cmpxchg", [X86_INSN_CMPXCHG8B] = "cmpxchg8b",
	[X86_INSN_CMPXCHG16B] = "cmpxchg16b", [X86_INSN_XADD] = "xadd",
	[X86_INSN_ADD] = "add", [X86_INSN_OR] = "or", [X86_INSN_ADC] = "adc",
	[X86_INSN_SBB] = "sbb", [X86_INSN_AND] = "and", [X86_INSN_SUB] = "sub",
	[X86_INSN_XOR] = "xor", [X86_INSN_CMP] = "cmp", [X86_INSN_TEST] = "test",
	[X86_INSN_INC] = "inc", [X86_INSN_DEC] = "dec", [X86_INSN_NOT] = "not",
	[X86_INSN_NEG] = "neg", [X86_INSN_BT] = "bt", [X86_INSN_BTS] = "bts",
	[X86_INSN_BTR] = "btr", [X86_INSN_BTC] = "btc", [X86_INSN_STOS] = "stos",
	[X86_INSN_MOVS] = "movs", [X86_INSN_LODS] = "lods",
};

static const char *const reason_names[X86_NR_REASONS] = {
	[X86_REASON_NONE] = "none", [X86_REASON_OPCODE] = "opcode",
	[X86_REASON_MODE] = "mode", [X86_REASON_CALLBACK] = "callback",
	[X86_REASON_CONTENDED] = "contended",
};

const char *x86_insn_kind_name(enum x86_insn_kind kind)
{
	return (unsigned int)kind < X86_NR_INSN_KINDS ? kind_names[kind] : "?";
}

const char *x86_emu_reason_name(enum x86_emu_reason reason)
{
	return (unsigned int)reason < X86_NR_REASONS ? reason_names[reason] : "?";
}

enum x86_cpu_mode x86_mode_from_cs(bool efer_lma, bool cs_l, bool cs_d)
{
	if (efer_lma && cs_l)
		return X86_MODE_64;
	return cs_d ? X86_MODE_32 : X86_MODE_16;
}

/* ---- small helpers ------------------------------------------------------ */

static u64 size_mask(unsigned int size)
{
	return size >= 8 ? ~0ull : BIT(size * 8) - 1;
}

static u64 sign_bit(unsigned int size)
{
	return BIT(size * 8 - 1);
}

static u64 sign_extend(u64 val, unsigned int size)
{
	if (size >= 8)
		return val;
	val &= size_mask(size);
	return (val ^ sign_bit(size)) - sign_bit(size);
}

static u64 load_le(const u8 *p, unsigned int size)
{
	u64 v = 0;

	for (unsigned int i = size; i-- > 0;)
		v = (v << 8) | p[i];
	return v;
}

static void store_le(u8 *p, u64 v, unsigned int size)
{
	for (unsigned int i = 0; i < size; i++, v >>= 8)
		p[i] = (u8)v;
}

static bool is_64bit(const struct emu *e)
{
	return e->ctxt->mode == X86_MODE_64;
}

/* ---- outcomes ------------------------------------------------------------ */

static enum x86_emu_status raise(struct emu *e, u8 vector, u32 error_code)
{
	e->res->fault = (struct x86_fault){
		.vector = vector,
		/* #UD has no error code; #GP/#SS raised here always carry 0. */
		.has_error_code = vector != X86_VEC_UD,
		.error_code = error_code,
	};
	return X86_EMU_EXCEPTION;
}

static enum x86_emu_status unhandled(struct emu *e, enum x86_emu_reason reason)
{
	e->res->reason = reason;
	return X86_EMU_UNHANDLED;
}

static enum x86_emu_status callback_status(struct emu *e, enum x86_cb_status s,
					   const struct x86_fault *fault)
{
	switch (s) {
	case X86_CB_OK:
		return X86_EMU_DONE;
	case X86_CB_FAULT:
		e->res->fault = *fault;
		return X86_EMU_EXCEPTION;
	default:
		return unhandled(e, X86_REASON_CALLBACK);
	}
}

/* ---- registers ------------------------------------------------------------ */

/* Without any REX prefix, byte registers 4-7 are AH, CH, DH, BH (SDM 3.7.2.1). */
static bool is_high_byte(const struct emu *e, unsigned int n, unsigned int size)
{
	return size == 1 && !e->rex_present && n >= 4 && n < 8;
}

static u64 gpr_read(const struct emu *e, unsigned int n, unsigned int size)
{
	if (is_high_byte(e, n, size))
		return (e->regs.gpr[n - 4] >> 8) & 0xff;
	return e->regs.gpr[n] & size_mask(size);
}

/* 8/16-bit writes keep the other bits, 32-bit writes zero-extend (SDM 3.4.1.1). */
static void gpr_write(struct emu *e, unsigned int n, unsigned int size, u64 val)
{
	u64 *r;

	if (is_high_byte(e, n, size)) {
		r = &e->regs.gpr[n - 4];
		*r = (*r & ~0xff00ull) | ((val & 0xff) << 8);
		return;
	}
	r = &e->regs.gpr[n];
	if (size >= 4)
		*r = val & size_mask(size);
	else
		*r = (*r & ~size_mask(size)) | (val & size_mask(size));
}

/* Update a pointer or count register used with address size `asize`. */
static void addr_reg_write(struct emu *e, unsigned int n, unsigned int asize, u64 val)
{
	e->regs.gpr[n] = asize == 2 ? (e->regs.gpr[n] & ~0xffffull) | (val & 0xffff)
				    : val & size_mask(asize);
}

/* ---- flags ---------------------------------------------------------------- */

static u64 parity_flag(u64 res)
{
	u8 b = (u8)res;

	b ^= b >> 4;
	b ^= b >> 2;
	b ^= b >> 1;
	return (b & 1) ? 0 : X86_FLAG_PF;	/* PF set for an even number of ones */
}

static u64 result_flags(u64 res, unsigned int size)
{
	u64 f = parity_flag(res);

	if (!(res & size_mask(size)))
		f |= X86_FLAG_ZF;
	if (res & sign_bit(size))
		f |= X86_FLAG_SF;
	return f;
}

static void set_arith_flags(struct emu *e, u64 flags)
{
	e->regs.rflags = (e->regs.rflags & ~X86_FLAGS_ARITH) | flags;
}

/*
 * The eight ALU operations in opcode order (add or adc sbb and sub xor cmp).
 * Logical ops clear CF and OF and, as Intel and AMD hardware do, AF (the SDM
 * calls AF undefined there).
 */
static u64 alu(struct emu *e, enum x86_insn_kind op, u64 dst, u64 src, unsigned int size)
{
	u64 m = size_mask(size), sb = sign_bit(size);
	u64 carry_in = (e->regs.rflags & X86_FLAG_CF) ? 1 : 0;
	u64 res, f = 0;

	dst &= m;
	src &= m;
	switch (op) {
	case X86_INSN_ADD:
	case X86_INSN_ADC:
		if (op == X86_INSN_ADD)
			carry_in = 0;
		res = (dst + src + carry_in) & m;
		if (res < dst || (carry_in && res == dst))
			f |= X86_FLAG_CF;
		if ((dst ^ res) & (src ^ res) & sb)
			f |= X86_FLAG_OF;
		f |= (dst ^ src ^ res) & X86_FLAG_AF;
		break;
	case X86_INSN_SUB:
	case X86_INSN_SBB:
	case X86_INSN_CMP:
		if (op != X86_INSN_SBB)
			carry_in = 0;
		res = (dst - src - carry_in) & m;
		if (dst < src || (carry_in && dst == src))
			f |= X86_FLAG_CF;
		if ((dst ^ src) & (dst ^ res) & sb)
			f |= X86_FLAG_OF;
		f |= (dst ^ src ^ res) & X86_FLAG_AF;
		break;
	case X86_INSN_AND:
	case X86_INSN_TEST:
		res = dst & src;
		break;
	case X86_INSN_OR:
		res = dst | src;
		break;
	default: /* X86_INSN_XOR */
		res = dst ^ src;
		break;
	}
	set_arith_flags(e, f | result_flags(res, size));
	return res;
}

/* ---- linear addresses and memory ------------------------------------------ */

/* 64-bit mode: bits 63:47 all equal (SDM Vol. 1 3.3.7.1; 4-level paging). */
static bool is_canonical(u64 lin)
{
	return (u64)((s64)(lin << 16) >> 16) == lin;
}

/*
 * Segment offset -> linear address of an access of `len` bytes. Only the
 * 64-bit canonical check is done: outside 64-bit mode the access already
 * passed the hardware's segment checks when it faulted.
 */
static enum x86_emu_status linear(struct emu *e, enum x86_seg seg, u64 offset, u64 len,
				  u64 *lin)
{
	if (is_64bit(e)) {
		u64 base = (seg == X86_SEG_FS || seg == X86_SEG_GS) ? e->ctxt->seg_base[seg] : 0;

		*lin = base + offset;
		if (!is_canonical(*lin) || !is_canonical(*lin + len - 1))
			return raise(e, seg == X86_SEG_SS ? X86_VEC_SS : X86_VEC_GP, 0);
	} else {
		*lin = (e->ctxt->seg_base[seg] + offset) & 0xffffffffull;
	}
	return X86_EMU_DONE;
}

static enum x86_emu_status mem_read(struct emu *e, u64 lin, void *buf, unsigned int len)
{
	struct x86_fault fault = { 0 };

	return callback_status(e, e->ctxt->ops->read(e->ctxt->opaque, lin, buf, len, &fault),
			       &fault);
}

static enum x86_emu_status mem_write(struct emu *e, u64 lin, const void *buf, unsigned int len)
{
	struct x86_fault fault = { 0 };
	enum x86_emu_status st;

	st = callback_status(e, e->ctxt->ops->write(e->ctxt->opaque, lin, buf, len, &fault),
			     &fault);
	if (st == X86_EMU_DONE) {
		e->res->write_linear = lin;
		e->res->bytes_written = len;
	}
	return st;
}

/* *expected is updated with the memory value when the swap did not happen. */
static enum x86_emu_status mem_cmpxchg(struct emu *e, u64 lin, void *expected,
				       const void *desired, unsigned int len, bool *swapped)
{
	struct x86_fault fault = { 0 };
	enum x86_emu_status st;

	*swapped = false;
	st = callback_status(e, e->ctxt->ops->cmpxchg(e->ctxt->opaque, lin, expected, desired,
						      len, swapped, &fault), &fault);
	if (st == X86_EMU_DONE && *swapped) {
		e->res->write_linear = lin;
		e->res->bytes_written = len;
	}
	return st;
}

/* ---- decoding ------------------------------------------------------------- */

/*
 * Fetch lazily, at most up to the end of the current page at a time, so an
 * instruction that ends before a page boundary never touches the next page.
 */
static enum x86_emu_status fetch(struct emu *e, unsigned int n, u64 *val)
{
	if (e->len + n > MAX_INSN_LEN)
		return raise(e, X86_VEC_GP, 0);
	while (e->fetched < e->len + n) {
		u64 ip_mask = e->ctxt->mode == X86_MODE_64 ? ~0ull :
			      e->ctxt->mode == X86_MODE_32 ? 0xffffffffull : 0xffffull;
		u64 lin = e->ctxt->seg_base[X86_SEG_CS] + ((e->regs.rip + e->fetched) & ip_mask);
		unsigned int chunk, to_page_end;
		struct x86_fault fault = { 0 };
		enum x86_emu_status st;

		if (!is_64bit(e))
			lin &= 0xffffffffull;
		to_page_end = PAGE_SIZE - (lin & (PAGE_SIZE - 1));
		chunk = MAX_INSN_LEN - e->fetched;
		if (chunk > to_page_end)
			chunk = to_page_end;
		st = callback_status(e, e->ctxt->ops->fetch(e->ctxt->opaque, lin,
							    e->bytes + e->fetched, chunk,
							    &fault), &fault);
		if (st != X86_EMU_DONE)
			return st;
		e->fetched += chunk;
	}
	*val = load_le(e->bytes + e->len, n);
	e->len += n;
	return X86_EMU_DONE;
}

#define FETCH(e, n, val)						\
	do {								\
		enum x86_emu_status st_ = fetch(e, n, val);		\
		if (st_ != X86_EMU_DONE)				\
			return st_;					\
	} while (0)

static enum x86_emu_status decode_prefixes(struct emu *e, u64 *opcode)
{
	for (;;) {
		u64 b;

		FETCH(e, 1, &b);
		switch (b) {
		case 0x66:
			e->op_size = 1;	/* marker, resolved below */
			break;
		case 0x67:
			e->addr_size = 1;
			break;
		case 0xf0:
			e->lock = true;
			break;
		case 0xf2:
		case 0xf3:
			e->rep = true;
			break;
		case 0x26: case 0x2e: case 0x36: case 0x3e:
			/* ES/CS/SS/DS overrides are ignored in 64-bit mode (SDM 3.3.7.1). */
			if (!is_64bit(e))
				e->seg_override = (int)((b >> 3) & 3);
			break;
		case 0x64: case 0x65:
			e->seg_override = (int)(X86_SEG_FS + (b & 1));
			break;
		default:
			if (is_64bit(e) && (b & 0xf0) == 0x40) {
				e->rex_present = true;
				e->rex = (u8)b;
				continue;	/* a REX must be last: check the next byte */
			}
			*opcode = b;
			return X86_EMU_DONE;
		}
		/* A REX followed by a legacy prefix is ignored (SDM 2.2.1). */
		e->rex_present = false;
		e->rex = 0;
	}
}

static void resolve_sizes(struct emu *e)
{
	bool opsize_prefix = e->op_size == 1, addrsize_prefix = e->addr_size == 1;

	switch (e->ctxt->mode) {
	case X86_MODE_16:
		e->op_size = opsize_prefix ? 4 : 2;
		e->addr_size = addrsize_prefix ? 4 : 2;
		break;
	case X86_MODE_32:
		e->op_size = opsize_prefix ? 2 : 4;
		e->addr_size = addrsize_prefix ? 2 : 4;
		break;
	default:
		e->op_size = (e->rex & 8) ? 8 : opsize_prefix ? 2 : 4;
		e->addr_size = addrsize_prefix ? 4 : 8;
		break;
	}
}

/* 16-bit ModRM forms (SDM Vol. 2A table 2-1). */
static enum x86_emu_status decode_ea16(struct emu *e)
{
	static const s8 base_reg[8] = { X86_RBX, X86_RBX, X86_RBP, X86_RBP, -1, -1, X86_RBP,
					X86_RBX };
	static const s8 index_reg[8] = { X86_RSI, X86_RDI, X86_RSI, X86_RDI, X86_RSI, X86_RDI,
					 -1, -1 };
	unsigned int rm = e->rm & 7;
	u64 disp = 0, ea = 0;

	if (e->mod == 0 && rm == 6) {
		FETCH(e, 2, &disp);
	} else {
		if (base_reg[rm] >= 0)
			ea += e->regs.gpr[base_reg[rm]];
		if (index_reg[rm] >= 0)
			ea += e->regs.gpr[index_reg[rm]];
		if (base_reg[rm] == X86_RBP)
			e->seg = X86_SEG_SS;
		if (e->mod == 1) {
			FETCH(e, 1, &disp);
			disp = sign_extend(disp, 1);
		} else if (e->mod == 2) {
			FETCH(e, 2, &disp);
		}
	}
	e->ea = (ea + disp) & 0xffff;
	return X86_EMU_DONE;
}

/* 32/64-bit ModRM and SIB forms (SDM Vol. 2A tables 2-2, 2-3, 2.2.1.6). */
static enum x86_emu_status decode_ea32(struct emu *e)
{
	u64 disp = 0, ea = 0;
	int base = e->rm;
	unsigned int disp_size = e->mod == 1 ? 1 : e->mod == 2 ? 4 : 0;

	if ((e->rm & 7) == 4) {
		u64 sib;
		unsigned int index;

		FETCH(e, 1, &sib);
		index = ((sib >> 3) & 7) | ((e->rex & 2) << 2);
		base = (int)((sib & 7) | ((e->rex & 1) << 3));
		if (index != X86_RSP)
			ea += e->regs.gpr[index] << (sib >> 6);
		if ((sib & 7) == 5 && e->mod == 0) {
			base = -1;
			disp_size = 4;
		}
	} else if ((e->rm & 7) == 5 && e->mod == 0) {
		base = -1;
		disp_size = 4;
		e->rip_relative = is_64bit(e);
	}
	if (base >= 0) {
		ea += e->regs.gpr[base];
		if (base == X86_RSP || base == X86_RBP)
			e->seg = X86_SEG_SS;
	}
	if (disp_size) {
		FETCH(e, disp_size, &disp);
		disp = sign_extend(disp, disp_size);
	}
	e->ea = ea + disp;	/* masked to the address size once RIP is known */
	return X86_EMU_DONE;
}

static enum x86_emu_status decode_modrm(struct emu *e)
{
	u64 modrm;

	FETCH(e, 1, &modrm);
	e->has_modrm = true;
	e->mod = (u8)(modrm >> 6);
	e->reg = (u8)(((modrm >> 3) & 7) | ((e->rex & 4) << 1));
	e->rm = (u8)((modrm & 7) | ((e->rex & 1) << 3));
	e->mem = e->mod != 3;
	if (!e->mem)
		return X86_EMU_DONE;
	return e->addr_size == 2 ? decode_ea16(e) : decode_ea32(e);
}

/* Immediate of `size` bytes, sign-extended to 64 bits. */
static enum x86_emu_status decode_imm(struct emu *e, unsigned int size)
{
	FETCH(e, size, &e->imm);
	e->imm = sign_extend(e->imm, size);
	e->src = SRC_IMM;
	return X86_EMU_DONE;
}

#define TRY(expr)							\
	do {								\
		enum x86_emu_status st_ = (expr);			\
		if (st_ != X86_EMU_DONE)				\
			return st_;					\
	} while (0)

/* Iz: 16 or 32 bits, a 64-bit operand takes a sign-extended imm32. */
static unsigned int imm_z_size(const struct emu *e)
{
	return e->op_size == 2 ? 2 : 4;
}

/* One-byte opcode map, the subset we emulate (SDM Vol. 2D table A-2). */
static enum x86_emu_status decode_one_byte(struct emu *e)
{
	u8 op = e->opcode;
	unsigned int rx;

	if (op < 0x40 && (op & 7) < 6) {
		/* ALU: 0 Eb,Gb  1 Ev,Gv  2 Gb,Eb  3 Gv,Ev  4 AL,Ib  5 rAX,Iz */
		e->kind = X86_INSN_ADD + (op >> 3);
		if (!(op & 1))
			e->op_size = 1;
		switch (op & 7) {
		case 0: case 1: case 2: case 3:
			e->g_dest = op & 2;
			e->src = SRC_REG;
			return decode_modrm(e);
		default:
			/* Accumulator form: E is rAX, no memory operand. */
			return decode_imm(e, op & 1 ? imm_z_size(e) : 1);
		}
	}
	switch (op) {
	case 0x63:
		if (!is_64bit(e))
			return unhandled(e, X86_REASON_MODE);	/* ARPL */
		e->kind = X86_INSN_MOVSXD;
		e->g_dest = true;
		e->e_size = e->op_size == 8 ? 4 : e->op_size;
		return decode_modrm(e);
	case 0x80: case 0x81: case 0x82: case 0x83:
		if (op == 0x82 && is_64bit(e))
			return raise(e, X86_VEC_UD, 0);
		if (op != 0x81 && op != 0x83)
			e->op_size = 1;
		TRY(decode_modrm(e));
		e->kind = X86_INSN_ADD + (e->reg & 7);
		return decode_imm(e, op == 0x81 ? imm_z_size(e) : 1);
	case 0x84: case 0x85:
		e->kind = X86_INSN_TEST;
		e->src = SRC_REG;
		break;
	case 0x86: case 0x87:
		e->kind = X86_INSN_XCHG;
		e->src = SRC_REG;
		break;
	case 0x88: case 0x89: case 0x8a: case 0x8b:
		e->kind = X86_INSN_MOV;
		e->g_dest = op & 2;
		e->src = SRC_REG;
		break;
	case 0xa0: case 0xa1: case 0xa2: case 0xa3: {
		/* mov with a moffs: E is [moffs], G is the accumulator. */
		u64 offset;

		if (!(op & 1))
			e->op_size = 1;
		e->kind = X86_INSN_MOV;
		e->g_dest = !(op & 2);
		e->src = SRC_REG;
		FETCH(e, e->addr_size, &offset);
		e->mem = true;
		e->ea = offset;
		return X86_EMU_DONE;
	}
	case 0xa4: case 0xa5:
		e->kind = X86_INSN_MOVS;
		break;
	case 0xaa: case 0xab:
		e->kind = X86_INSN_STOS;
		break;
	case 0xac: case 0xad:
		e->kind = X86_INSN_LODS;
		break;
	case 0xc6: case 0xc7:
		if (!(op & 1))
			e->op_size = 1;
		TRY(decode_modrm(e));
		if ((e->reg & 7) != 0)
			return unhandled(e, X86_REASON_OPCODE);
		e->kind = X86_INSN_MOV;
		return decode_imm(e, op & 1 ? imm_z_size(e) : 1);
	case 0xf6: case 0xf7:
		if (!(op & 1))
			e->op_size = 1;
		TRY(decode_modrm(e));
		rx = e->reg & 7;
		/* /1 is an undocumented alias of TEST on Intel and AMD. */
		if (rx == 0 || rx == 1) {
			e->kind = X86_INSN_TEST;
			return decode_imm(e, op & 1 ? imm_z_size(e) : 1);
		}
		if (rx == 2 || rx == 3) {
			e->kind = rx == 2 ? X86_INSN_NOT : X86_INSN_NEG;
			return X86_EMU_DONE;
		}
		return unhandled(e, X86_REASON_OPCODE);	/* mul, imul, div, idiv */
	case 0xfe: case 0xff:
		if (!(op & 1))
			e->op_size = 1;
		TRY(decode_modrm(e));
		rx = e->reg & 7;
		if (rx > 1)
			return unhandled(e, X86_REASON_OPCODE);	/* call, jmp, push */
		e->kind = rx == 0 ? X86_INSN_INC : X86_INSN_DEC;
		return X86_EMU_DONE;
	default:
		return unhandled(e, X86_REASON_OPCODE);
	}
	/* The plain "op E, G" forms above: byte version when the opcode is even. */
	if (!(op & 1))
		e->op_size = 1;
	if (e->kind == X86_INSN_MOVS || e->kind == X86_INSN_STOS || e->kind == X86_INSN_LODS)
		return X86_EMU_DONE;
	return decode_modrm(e);
}

/* Two-byte opcode map 0F xx, the subset we emulate (SDM Vol. 2D table A-3). */
static enum x86_emu_status decode_two_byte(struct emu *e)
{
	static const enum x86_insn_kind bt_kinds[4] = { X86_INSN_BT, X86_INSN_BTS, X86_INSN_BTR,
							X86_INSN_BTC };
	u8 op = e->opcode;

	switch (op) {
	case 0xa3: case 0xab: case 0xb3: case 0xbb:
		e->kind = bt_kinds[(op >> 3) & 3];
		e->src = SRC_REG;
		return decode_modrm(e);
	case 0xba:
		TRY(decode_modrm(e));
		if ((e->reg & 7) < 4)
			return unhandled(e, X86_REASON_OPCODE);
		e->kind = bt_kinds[e->reg & 3];
		return decode_imm(e, 1);
	case 0xb0: case 0xb1:
		e->kind = X86_INSN_CMPXCHG;
		break;
	case 0xc0: case 0xc1:
		e->kind = X86_INSN_XADD;
		break;
	case 0xb6: case 0xb7: case 0xbe: case 0xbf:
		e->kind = op & 8 ? X86_INSN_MOVSX : X86_INSN_MOVZX;
		e->g_dest = true;
		e->e_size = op & 1 ? 2 : 1;
		return decode_modrm(e);
	case 0xc7:
		TRY(decode_modrm(e));
		if ((e->reg & 7) != 1)
			return unhandled(e, X86_REASON_OPCODE);
		if (!e->mem)
			return raise(e, X86_VEC_UD, 0);
		e->kind = (e->rex & 8) ? X86_INSN_CMPXCHG16B : X86_INSN_CMPXCHG8B;
		e->op_size = e->e_size = (e->rex & 8) ? 16 : 8;
		return X86_EMU_DONE;
	default:
		return unhandled(e, X86_REASON_OPCODE);
	}
	if (!(op & 1))
		e->op_size = 1;
	e->src = SRC_REG;
	return decode_modrm(e);
}

/* LOCK is legal only on these, and only with a memory destination (SDM LOCK page). */
static bool lockable(const struct emu *e)
{
	switch (e->kind) {
	case X86_INSN_ADD: case X86_INSN_OR: case X86_INSN_ADC: case X86_INSN_SBB:
	case X86_INSN_AND: case X86_INSN_SUB: case X86_INSN_XOR:
		return e->mem && !e->g_dest;
	case X86_INSN_XCHG: case X86_INSN_CMPXCHG: case X86_INSN_CMPXCHG8B:
	case X86_INSN_CMPXCHG16B: case X86_INSN_XADD: case X86_INSN_INC: case X86_INSN_DEC:
	case X86_INSN_NOT: case X86_INSN_NEG: case X86_INSN_BTS: case X86_INSN_BTR:
	case X86_INSN_BTC:
		return e->mem;
	default:
		return false;
	}
}

static enum x86_emu_status decode(struct emu *e)
{
	u64 b;

	e->seg_override = -1;
	TRY(decode_prefixes(e, &b));
	resolve_sizes(e);
	e->seg = X86_SEG_DS;
	if (b == 0x0f) {
		e->two_byte = true;
		FETCH(e, 1, &b);
	}
	e->opcode = (u8)b;
	TRY(e->two_byte ? decode_two_byte(e) : decode_one_byte(e));
	if (!e->e_size)
		e->e_size = e->op_size;
	if (e->lock && !lockable(e))
		return raise(e, X86_VEC_UD, 0);
	if (e->seg_override >= 0)
		e->seg = (enum x86_seg)e->seg_override;
	if (e->rip_relative)
		e->ea += e->regs.rip + e->len;	/* relative to the next instruction */
	e->ea &= size_mask(e->addr_size);
	return X86_EMU_DONE;
}

/* ---- execution ------------------------------------------------------------ */

/* IP wraps at the code's default operand size outside 64-bit mode. */
static void advance_rip(struct emu *e)
{
	u64 rip = e->regs.rip + e->len;

	if (e->ctxt->mode == X86_MODE_16)
		rip &= 0xffff;
	else if (e->ctxt->mode == X86_MODE_32)
		rip &= 0xffffffffull;
	e->regs.rip = rip;
}

static u64 src_value(const struct emu *e)
{
	return e->src == SRC_IMM ? e->imm : gpr_read(e, e->reg, e->op_size);
}

/*
 * Bit offset of bt/bts/btr/btc. A register offset on a memory operand is a
 * signed bit-string index: it moves the accessed operand-sized word
 * (SDM Vol. 2A BT, "bit base"), so adjust the effective address here.
 */
static u64 bit_offset(struct emu *e)
{
	unsigned int bits = e->op_size * 8, shift = e->op_size == 2 ? 4 : e->op_size == 4 ? 5 : 6;
	u64 offset = e->src == SRC_IMM ? e->imm : gpr_read(e, e->reg, e->op_size);

	if (e->src == SRC_REG && e->mem) {
		/* Arithmetic shift: negative offsets address words below ea. */
		s64 words = (s64)sign_extend(offset, e->op_size) >> shift;

		e->ea = (e->ea + (u64)words * e->op_size) & size_mask(e->addr_size);
	}
	return offset & (bits - 1);
}

/*
 * Compute the instruction from the current value `old` of the E operand:
 * update e->regs (flags, register results) and return true with *new when E
 * must be written.
 */
static bool compute(struct emu *e, u64 old, u64 *new, u64 bit)
{
	unsigned int size = e->op_size;
	u64 acc, res, src = 0, saved_cf;

	if (e->src != SRC_NONE)
		src = src_value(e);
	switch (e->kind) {
	case X86_INSN_MOV:
		if (e->g_dest) {
			gpr_write(e, e->reg, size, old);
			return false;
		}
		*new = src;
		return true;
	case X86_INSN_MOVZX:
		gpr_write(e, e->reg, size, old);
		return false;
	case X86_INSN_MOVSX:
	case X86_INSN_MOVSXD:
		gpr_write(e, e->reg, size, sign_extend(old, e->e_size));
		return false;
	case X86_INSN_ADD: case X86_INSN_OR: case X86_INSN_ADC: case X86_INSN_SBB:
	case X86_INSN_AND: case X86_INSN_SUB: case X86_INSN_XOR: case X86_INSN_CMP:
		if (e->g_dest) {
			res = alu(e, e->kind, gpr_read(e, e->reg, size), old, size);
			if (e->kind != X86_INSN_CMP)
				gpr_write(e, e->reg, size, res);
			return false;
		}
		*new = alu(e, e->kind, old, src, size);
		return e->kind != X86_INSN_CMP;
	case X86_INSN_TEST:
		alu(e, X86_INSN_TEST, old, src, size);
		return false;
	case X86_INSN_INC:
	case X86_INSN_DEC:
		/* INC/DEC leave CF alone (SDM Vol. 2A INC). */
		saved_cf = e->regs.rflags & X86_FLAG_CF;
		*new = alu(e, e->kind == X86_INSN_INC ? X86_INSN_ADD : X86_INSN_SUB, old, 1, size);
		e->regs.rflags = (e->regs.rflags & ~X86_FLAG_CF) | saved_cf;
		return true;
	case X86_INSN_NOT:
		*new = ~old & size_mask(size);
		return true;
	case X86_INSN_NEG:
		/* Same flags as 0 - old: CF = (old != 0). */
		*new = alu(e, X86_INSN_SUB, 0, old, size);
		return true;
	case X86_INSN_XCHG:
		gpr_write(e, e->reg, size, old);
		*new = src;
		return true;
	case X86_INSN_XADD:
		res = alu(e, X86_INSN_ADD, old, src, size);
		gpr_write(e, e->reg, size, old);	/* before E: matters if E == G */
		*new = res;
		return true;
	case X86_INSN_CMPXCHG:
		acc = gpr_read(e, X86_RAX, size);
		alu(e, X86_INSN_CMP, acc, old, size);
		if (acc == old) {
			*new = src;
			return true;
		}
		/*
		 * The SDM says the destination is written back on failure; Intel
		 * hardware leaves a 32-bit register destination's upper half alone,
		 * so we do not write it (and skip the no-op memory write-back).
		 */
		gpr_write(e, X86_RAX, size, old);
		return false;
	default: /* X86_INSN_BT, BTS, BTR, BTC */
		/*
		 * CF = the bit; the other arithmetic flags are left unchanged, as
		 * observed on Intel hardware (the SDM says OF SF AF PF are undefined).
		 */
		e->regs.rflags = (e->regs.rflags & ~X86_FLAG_CF) |
				 ((old >> bit) & 1 ? X86_FLAG_CF : 0);
		if (e->kind == X86_INSN_BTS)
			*new = old | BIT(bit);
		else if (e->kind == X86_INSN_BTR)
			*new = old & ~BIT(bit);
		else
			*new = old ^ BIT(bit);
		return e->kind != X86_INSN_BT;
	}
}

static bool reads_e(const struct emu *e)
{
	return !(e->kind == X86_INSN_MOV && !e->g_dest);
}

/*
 * Instructions with one ModRM (or moffs) operand E. Locked forms, xchg and
 * cmpxchg write memory with the cmpxchg callback against the value they
 * computed from, and recompute if memory changed meanwhile (as the hardware's
 * locked read-modify-write would have seen the newer value).
 */
static enum x86_emu_status exec_e_operand(struct emu *e)
{
	unsigned int size = e->e_size;
	bool atomic = e->mem && (e->lock || e->kind == X86_INSN_XCHG ||
				 e->kind == X86_INSN_CMPXCHG);
	u64 old = 0, new = 0, bit = 0;
	u8 buf[8], desired[8];
	struct x86_regs initial;

	if (e->kind >= X86_INSN_BT && e->kind <= X86_INSN_BTC)
		bit = bit_offset(e);
	if (e->mem) {
		TRY(linear(e, e->seg, e->ea, size, &e->lin));
		e->res->has_mem = true;
		e->res->mem_linear = e->lin;
		e->res->mem_size = (u8)size;
	}
	if (e->kind == X86_INSN_CMPXCHG && e->mem) {
		/* Guess memory == accumulator: one callback in the common case. */
		old = gpr_read(e, X86_RAX, size);
	} else if (reads_e(e)) {
		if (e->mem) {
			TRY(mem_read(e, e->lin, buf, size));
			old = load_le(buf, size);
		} else {
			old = gpr_read(e, e->rm, size);
		}
	}
	initial = e->regs;
	for (unsigned int tries = 0;; tries++) {
		bool swapped;

		if (!compute(e, old, &new, bit))
			return X86_EMU_DONE;
		if (!e->mem) {
			gpr_write(e, e->rm, size, new);
			return X86_EMU_DONE;
		}
		store_le(desired, new, size);
		if (!atomic)
			return mem_write(e, e->lin, desired, size);
		if (tries == MAX_CMPXCHG_TRIES) {
			e->res->reason = X86_REASON_CONTENDED;
			return X86_EMU_RETRY;
		}
		store_le(buf, old, size);
		TRY(mem_cmpxchg(e, e->lin, buf, desired, size, &swapped));
		if (swapped)
			return X86_EMU_DONE;
		old = load_le(buf, size);
		e->regs = initial;
	}
}

/* cmpxchg8b / cmpxchg16b m64/m128 with EDX:EAX / RDX:RAX (SDM Vol. 2A CMPXCHG8B). */
static enum x86_emu_status exec_cmpxchg_double(struct emu *e)
{
	unsigned int size = e->e_size, half = size / 2;
	u8 expected[16], desired[16];
	bool swapped;

	TRY(linear(e, e->seg, e->ea, size, &e->lin));
	e->res->has_mem = true;
	e->res->mem_linear = e->lin;
	e->res->mem_size = (u8)size;
	if (size == 16 && (e->lin & 15))
		return raise(e, X86_VEC_GP, 0);
	store_le(expected, e->regs.gpr[X86_RAX], half);
	store_le(expected + half, e->regs.gpr[X86_RDX], half);
	store_le(desired, e->regs.gpr[X86_RBX], half);
	store_le(desired + half, e->regs.gpr[X86_RCX], half);
	TRY(mem_cmpxchg(e, e->lin, expected, desired, size, &swapped));
	/* Only ZF changes. */
	e->regs.rflags &= ~X86_FLAG_ZF;
	if (swapped) {
		e->regs.rflags |= X86_FLAG_ZF;
	} else {
		e->regs.gpr[X86_RAX] = load_le(expected, half);
		e->regs.gpr[X86_RDX] = load_le(expected + half, half);
	}
	return X86_EMU_DONE;
}

/*
 * How many elements of `size` bytes, starting with the one at `lin` and going
 * up (or down), lie in lin's 4 KiB page. At least 1: a first element that
 * crosses the page end is done alone (the callback splits it).
 */
static u64 elements_in_page(u64 lin, unsigned int size, bool down)
{
	u64 offset = lin & (PAGE_SIZE - 1);

	if (offset + size > PAGE_SIZE)
		return 1;
	return down ? offset / size + 1 : (PAGE_SIZE - offset) / size;
}

/* Same for the pointer register: do not wrap around the address size. */
static u64 elements_before_wrap(u64 ptr, u64 amask, unsigned int size, bool down)
{
	u64 n = down ? ptr / size + 1 : (amask - ptr) / size + 1;

	return n ? n : ~0ull;	/* 0: the whole 64-bit space, no limit */
}

static u64 min_u64(u64 a, u64 b)
{
	return a < b ? a : b;
}

/*
 * stos / movs / lods, with or without rep (SDM Vol. 2B STOS, MOVS, LODS, REP).
 * F2 and F3 both mean "rep" for these (no ZF termination for them).
 */
static enum x86_emu_status exec_string(struct emu *e)
{
	unsigned int size = e->op_size, asize = e->addr_size;
	u64 amask = size_mask(asize);
	bool down = e->regs.rflags & X86_FLAG_DF;
	bool writes = e->kind != X86_INSN_LODS, reads = e->kind != X86_INSN_STOS;
	enum x86_seg src_seg = e->seg_override >= 0 ? (enum x86_seg)e->seg_override : X86_SEG_DS;
	u64 count = e->rep ? e->regs.gpr[X86_RCX] & amask : 1;
	u64 di = e->regs.gpr[X86_RDI] & amask, si = e->regs.gpr[X86_RSI] & amask;
	u64 n, bytes, dst_lin = 0, src_lin = 0, dst_low = 0, src_low = 0, step;
	u8 *buf = e->ctxt->scratch;

	if (count == 0) {
		advance_rip(e);	/* rep with a zero count: nothing but RIP */
		return X86_EMU_DONE;
	}

	/* Element count: bounded by the count, the page(s) and the scratch. */
	n = min_u64(count, X86_EMU_SCRATCH_SIZE / size);
	if (writes) {
		TRY(linear(e, X86_SEG_ES, di, size, &dst_lin));
		n = min_u64(n, elements_in_page(dst_lin, size, down));
		n = min_u64(n, elements_before_wrap(di, amask, size, down));
	}
	if (reads) {
		TRY(linear(e, src_seg, si, size, &src_lin));
		n = min_u64(n, elements_in_page(src_lin, size, down));
		n = min_u64(n, elements_before_wrap(si, amask, size, down));
	}
	bytes = n * size;
	dst_low = down ? dst_lin - (n - 1) * size : dst_lin;
	src_low = down ? src_lin - (n - 1) * size : src_lin;
	/*
	 * movs between overlapping ranges copies element by element on
	 * hardware (e.g. a 1-byte-shifted fill): do one element per call then.
	 */
	if (e->kind == X86_INSN_MOVS && n > 1 && dst_low < src_low + bytes &&
	    src_low < dst_low + bytes) {
		n = 1;
		bytes = size;
		dst_low = dst_lin;
		src_low = src_lin;
	}
	/* Re-check the whole range (the first element was checked above). */
	if (writes)
		TRY(linear(e, X86_SEG_ES, (dst_low - dst_lin + di) & amask, bytes, &dst_low));
	if (reads)
		TRY(linear(e, src_seg, (src_low - src_lin + si) & amask, bytes, &src_low));

	e->res->has_mem = true;
	e->res->mem_linear = writes ? dst_lin : src_lin;
	e->res->mem_size = (u8)size;

	if (reads)
		TRY(mem_read(e, src_low, buf, (unsigned int)bytes));
	if (e->kind == X86_INSN_STOS) {
		for (u64 i = 0; i < n; i++)
			store_le(buf + i * size, e->regs.gpr[X86_RAX], size);
	}
	if (writes)
		TRY(mem_write(e, dst_low, buf, (unsigned int)bytes));
	if (e->kind == X86_INSN_LODS) {
		/* The last element loaded is the lowest one when going down. */
		gpr_write(e, X86_RAX, size, load_le(buf + (down ? 0 : bytes - size), size));
	}

	step = down ? (u64)-(s64)bytes : bytes;
	if (writes)
		addr_reg_write(e, X86_RDI, asize, di + step);
	if (reads)
		addr_reg_write(e, X86_RSI, asize, si + step);
	e->res->reps = n;
	if (e->rep) {
		addr_reg_write(e, X86_RCX, asize, count - n);
		if (count - n)
			return X86_EMU_DONE;	/* RIP stays: the guest resumes the rep */
	}
	advance_rip(e);
	return X86_EMU_DONE;
}

static enum x86_emu_status execute(struct emu *e)
{
	switch (e->kind) {
	case X86_INSN_STOS:
	case X86_INSN_MOVS:
	case X86_INSN_LODS:
		return exec_string(e);
	case X86_INSN_CMPXCHG8B:
	case X86_INSN_CMPXCHG16B:
		TRY(exec_cmpxchg_double(e));
		break;
	default:
		TRY(exec_e_operand(e));
		break;
	}
	advance_rip(e);
	return X86_EMU_DONE;
}

enum x86_emu_status x86_emulate(struct x86_emu_ctxt *ctxt, struct x86_emu_result *res)
{
	struct emu e;
	enum x86_emu_status st;

	memset(res, 0, sizeof(*res));
	memset(&e, 0, sizeof(e));
	e.ctxt = ctxt;
	e.res = res;
	e.regs = ctxt->regs;

	st = decode(&e);
	res->kind = e.kind;
	res->lock = e.lock;
	if (st == X86_EMU_DONE)
		st = execute(&e);
	res->insn_len = (u8)e.len;
	res->status = st;
	if (st != X86_EMU_DONE)
		return st;
	ctxt->regs = e.regs;
	return X86_EMU_DONE;
}
