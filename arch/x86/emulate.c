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
	u8 last_rep;			/* the last of F2/F3: repne/repe, SSE prefix */
	bool p66;			/* 66 seen (SSE mandatory prefix) */
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
	u64 imm2;			/* enter: the nesting level */
	u64 lin;			/* linear address of the E memory operand */
	bool ea_rsp_base;		/* RSP is the base of ea (pop m adjusts it) */
	unsigned int gpr;		/* push/pop r: the register */
	u8 cc;				/* cmovcc/setcc: the condition */
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
	[X86_INSN_MOVS] = "movs", [X86_INSN_LODS] = "lods", [X86_INSN_CMPS] = "cmps",
	[X86_INSN_SCAS] = "scas", [X86_INSN_MUL] = "mul", [X86_INSN_IMUL] = "imul",
	[X86_INSN_DIV] = "div", [X86_INSN_IDIV] = "idiv", [X86_INSN_BSF] = "bsf",
	[X86_INSN_BSR] = "bsr", [X86_INSN_SHLD] = "shld", [X86_INSN_SHRD] = "shrd",
	[X86_INSN_CMOV] = "cmov", [X86_INSN_SETCC] = "setcc", [X86_INSN_SMSW] = "smsw",
	[X86_INSN_PUSH] = "push", [X86_INSN_POP] = "pop", [X86_INSN_RET] = "ret",
	[X86_INSN_LEAVE] = "leave", [X86_INSN_ENTER] = "enter", [X86_INSN_CALL] = "call",
	[X86_INSN_JMP] = "jmp", [X86_INSN_JMP_FAR] = "ljmp", [X86_INSN_CALL_FAR] = "lcall",
	[X86_INSN_MOV_SREG] = "mov-sreg",
	[X86_INSN_LTR] = "ltr", [X86_INSN_VMOV] = "sse-mov",
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

/* x86 is little-endian: the usual sizes are plain loads and stores. */
static u64 load_le(const u8 *p, unsigned int size)
{
	u64 v = 0;

	switch (size) {
	case 8:
		memcpy(&v, p, 8);
		return v;
	case 4:
		memcpy(&v, p, 4);
		return v;
	case 2:
		memcpy(&v, p, 2);
		return v;
	}
	for (unsigned int i = size; i-- > 0;)
		v = (v << 8) | p[i];
	return v;
}

static void store_le(u8 *p, u64 v, unsigned int size)
{
	switch (size) {
	case 8:
		memcpy(p, &v, 8);
		return;
	case 4:
		memcpy(p, &v, 4);
		return;
	case 2:
		memcpy(p, &v, 2);
		return;
	}
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
		/* #DE and #UD have no error code (SDM Vol. 3A table 6-1). */
		.has_error_code = vector != X86_VEC_UD && vector != X86_VEC_DE,
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
			e->p66 = true;
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
			e->last_rep = (u8)b;
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
		e->ea_rsp_base = base == X86_RSP;
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

/* push/pop/enter/leave: 64 bits in 64-bit mode unless 66 says 16 (SDM Vol. 1 6.2.5). */
static unsigned int stack_op_size(const struct emu *e)
{
	if (is_64bit(e))
		return e->p66 ? 2 : 8;
	return e->op_size;
}

/* Near call/jmp/ret: always 64 bits in 64-bit mode on Intel (66 is ignored). */
static unsigned int near_op_size(const struct emu *e)
{
	return is_64bit(e) ? 8 : e->op_size;
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
	case 0x50: case 0x51: case 0x52: case 0x53: case 0x54: case 0x55: case 0x56: case 0x57:
	case 0x58: case 0x59: case 0x5a: case 0x5b: case 0x5c: case 0x5d: case 0x5e: case 0x5f:
		e->kind = op < 0x58 ? X86_INSN_PUSH : X86_INSN_POP;
		e->gpr = (op & 7) | ((e->rex & 1) << 3);
		e->op_size = stack_op_size(e);
		return X86_EMU_DONE;
	case 0x68: case 0x6a:
		e->kind = X86_INSN_PUSH;
		e->op_size = stack_op_size(e);
		return decode_imm(e, op == 0x6a ? 1 : imm_z_size(e));
	case 0x69: case 0x6b:
		e->kind = X86_INSN_IMUL;
		e->g_dest = true;
		TRY(decode_modrm(e));
		return decode_imm(e, op == 0x6b ? 1 : imm_z_size(e));
	case 0x8c: case 0x8e:
		TRY(decode_modrm(e));
		/* No seventh or eighth segment register, and mov to CS is #UD. */
		if ((e->reg & 7) > 5 || (op == 0x8e && (e->reg & 7) == X86_SEG_CS))
			return raise(e, X86_VEC_UD, 0);
		e->kind = X86_INSN_MOV_SREG;
		e->g_dest = op == 0x8e;
		if (e->mem || op == 0x8e)
			e->op_size = 2;	/* a memory operand is always 16 bits */
		return X86_EMU_DONE;
	case 0x8f:
		e->op_size = stack_op_size(e);
		TRY(decode_modrm(e));
		if ((e->reg & 7) != 0)
			return unhandled(e, X86_REASON_OPCODE);
		e->kind = X86_INSN_POP;
		return X86_EMU_DONE;
	case 0xa6: case 0xa7:
		e->kind = X86_INSN_CMPS;
		break;
	case 0xae: case 0xaf:
		e->kind = X86_INSN_SCAS;
		break;
	case 0xc2: case 0xc3:
		e->kind = X86_INSN_RET;
		e->op_size = near_op_size(e);
		if (op == 0xc2)
			FETCH(e, 2, &e->imm);
		return X86_EMU_DONE;
	case 0xc8:
		e->kind = X86_INSN_ENTER;
		e->op_size = stack_op_size(e);
		FETCH(e, 2, &e->imm);
		FETCH(e, 1, &e->imm2);
		return X86_EMU_DONE;
	case 0xc9:
		e->kind = X86_INSN_LEAVE;
		e->op_size = stack_op_size(e);
		return X86_EMU_DONE;
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
		e->kind = X86_INSN_MUL + (rx - 4);	/* mul, imul, div, idiv: rAX (rDX) */
		return X86_EMU_DONE;
	case 0xfe: case 0xff:
		if (!(op & 1))
			e->op_size = 1;
		TRY(decode_modrm(e));
		rx = e->reg & 7;
		if (rx <= 1) {
			e->kind = rx == 0 ? X86_INSN_INC : X86_INSN_DEC;
			return X86_EMU_DONE;
		}
		if (op == 0xfe || rx == 7)
			return raise(e, X86_VEC_UD, 0);
		switch (rx) {
		case 2: case 4:
			e->kind = rx == 2 ? X86_INSN_CALL : X86_INSN_JMP;
			e->op_size = near_op_size(e);
			return X86_EMU_DONE;
		case 3: case 5:
			if (!e->mem)
				return raise(e, X86_VEC_UD, 0);
			/* m16:16/32/64 by operand size */
			e->kind = rx == 3 ? X86_INSN_CALL_FAR : X86_INSN_JMP_FAR;
			return X86_EMU_DONE;
		case 6:
			e->kind = X86_INSN_PUSH;
			e->op_size = stack_op_size(e);
			return X86_EMU_DONE;
		default:
			return unhandled(e, X86_REASON_OPCODE);
		}
	default:
		return unhandled(e, X86_REASON_OPCODE);
	}
	/* The plain "op E, G" forms above: byte version when the opcode is even. */
	if (!(op & 1))
		e->op_size = 1;
	if (e->kind == X86_INSN_MOVS || e->kind == X86_INSN_STOS || e->kind == X86_INSN_LODS ||
	    e->kind == X86_INSN_CMPS || e->kind == X86_INSN_SCAS)
		return X86_EMU_DONE;
	return decode_modrm(e);
}

/* Two-byte opcode map 0F xx, the subset we emulate (SDM Vol. 2D table A-3). */
static enum x86_emu_status decode_two_byte(struct emu *e)
{
	static const enum x86_insn_kind bt_kinds[4] = { X86_INSN_BT, X86_INSN_BTS, X86_INSN_BTR,
							X86_INSN_BTC };
	u8 op = e->opcode;

	if ((op & 0xf0) == 0x40 || (op & 0xf0) == 0x90) {
		/* cmovcc Gv, Ev (always reads E) / setcc Eb */
		e->kind = (op & 0xf0) == 0x40 ? X86_INSN_CMOV : X86_INSN_SETCC;
		e->cc = op & 15;
		e->g_dest = e->kind == X86_INSN_CMOV;
		if (e->kind == X86_INSN_SETCC)
			e->op_size = 1;
		return decode_modrm(e);
	}
	switch (op) {
	case 0x00:
		TRY(decode_modrm(e));
		if ((e->reg & 7) != 3)
			return unhandled(e, X86_REASON_OPCODE);	/* sldt, str, lldt, verr... */
		e->kind = X86_INSN_LTR;
		e->op_size = 2;
		return X86_EMU_DONE;
	case 0x01:
		TRY(decode_modrm(e));
		if ((e->reg & 7) != 4)
			return unhandled(e, X86_REASON_OPCODE);	/* lgdt, lmsw, invlpg... */
		e->kind = X86_INSN_SMSW;
		if (e->mem)
			e->op_size = 2;	/* to memory: always 16 bits */
		return X86_EMU_DONE;
	case 0x10: case 0x11: case 0x28: case 0x29: case 0x2b: case 0x6e: case 0x6f:
	case 0x7e: case 0x7f: case 0xd6: case 0xe7:
		TRY(decode_modrm(e));
		if (!e->mem)
			return unhandled(e, X86_REASON_OPCODE);	/* register forms do not exit */
		e->kind = X86_INSN_VMOV;
		return X86_EMU_DONE;
	case 0xa4: case 0xa5: case 0xac: case 0xad:
		e->kind = op < 0xa8 ? X86_INSN_SHLD : X86_INSN_SHRD;
		TRY(decode_modrm(e));
		if (!(op & 1))
			TRY(decode_imm(e, 1));	/* count in imm; odd opcodes: CL */
		e->src = SRC_REG;
		return X86_EMU_DONE;
	case 0xaf:
		e->kind = X86_INSN_IMUL;
		e->g_dest = true;
		return decode_modrm(e);
	case 0xbc: case 0xbd:
		if (e->last_rep == 0xf3)
			return unhandled(e, X86_REASON_OPCODE);	/* tzcnt/lzcnt */
		e->kind = op == 0xbc ? X86_INSN_BSF : X86_INSN_BSR;
		e->g_dest = true;
		return decode_modrm(e);
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

/* Condition code cc of jcc/setcc/cmovcc (SDM Vol. 2D table B-1). */
static bool condition(const struct emu *e, unsigned int cc)
{
	u64 f = e->regs.rflags;
	bool cf = f & X86_FLAG_CF, zf = f & X86_FLAG_ZF, sf = f & X86_FLAG_SF;
	bool of = f & X86_FLAG_OF, pf = f & X86_FLAG_PF, r;

	switch (cc >> 1) {
	case 0: r = of; break;
	case 1: r = cf; break;
	case 2: r = zf; break;
	case 3: r = cf || zf; break;
	case 4: r = sf; break;
	case 5: r = pf; break;
	case 6: r = sf != of; break;
	default: r = zf || sf != of; break;
	}
	return (cc & 1) ? !r : r;
}

/* CF and OF together (mul, imul: "the result did not fit"). */
static void set_cf_of(struct emu *e, bool on)
{
	e->regs.rflags &= ~(X86_FLAG_CF | X86_FLAG_OF);
	if (on)
		e->regs.rflags |= X86_FLAG_CF | X86_FLAG_OF;
}

/* Signed a * b truncated to size; *overflow when the truncation lost bits. */
static u64 imul_trunc(u64 a, u64 b, unsigned int size, bool *overflow)
{
	if (size == 8) {
		__int128 p = (__int128)(s64)a * (s64)b;

		*overflow = p != (__int128)(s64)p;
		return (u64)p;
	}
	s64 p = (s64)sign_extend(a, size) * (s64)sign_extend(b, size);

	*overflow = (u64)p != sign_extend((u64)p, size);
	return (u64)p & size_mask(size);
}

/*
 * shld/shrd of dst by cnt (1..31, or 1..63 for 64 bits) filling from src.
 * 16-bit operands shift through dest:src:dest, so counts 17..31 give
 * what Intel CPUs give (the SDM: undefined). CF = the last bit out.
 */
static u64 double_shift(bool left, u64 dst, u64 src, unsigned int cnt, unsigned int size,
			bool *cf)
{
	unsigned int bits = size * 8;

	if (size == 2) {
		u64 w = (dst << 32) | (src << 16) | dst;

		*cf = left ? (w >> (48 - cnt)) & 1 : (w >> (cnt - 1)) & 1;
		return (left ? w >> (32 - cnt) : w >> cnt) & 0xffff;
	}
	if (left) {
		*cf = (dst >> (bits - cnt)) & 1;
		return ((dst << cnt) | (src >> (bits - cnt))) & size_mask(size);
	}
	*cf = (dst >> (cnt - 1)) & 1;
	return ((dst >> cnt) | (src << (bits - cnt))) & size_mask(size);
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
	case X86_INSN_BSF:
	case X86_INSN_BSR:
		/* ZF = (source == 0), the destination then unchanged; other flags kept. */
		e->regs.rflags &= ~X86_FLAG_ZF;
		if (!(old & size_mask(size))) {
			e->regs.rflags |= X86_FLAG_ZF;
			return false;
		}
		res = e->kind == X86_INSN_BSF ? (u64)__builtin_ctzll(old & size_mask(size))
					      : (u64)(63 - __builtin_clzll(old & size_mask(size)));
		gpr_write(e, e->reg, size, res);
		return false;
	case X86_INSN_IMUL: {	/* 0F AF, 69, 6B: G = E * (G or imm), truncated */
		bool of;

		res = imul_trunc(old, e->src == SRC_IMM ? e->imm : gpr_read(e, e->reg, size),
				 size, &of);
		set_cf_of(e, of);
		gpr_write(e, e->reg, size, res);
		return false;
	}
	case X86_INSN_SHLD:
	case X86_INSN_SHRD: {
		unsigned int cnt = (unsigned int)((e->opcode & 1) ? e->regs.gpr[X86_RCX] : e->imm) &
				   (size == 8 ? 63 : 31);
		bool cf;
		u64 f;

		if (!cnt) {
			/* Flags and memory untouched; a 32-bit register is still
			 * written, so zero-extended (as the CPUs do). */
			*new = old;
			return !e->mem && size == 4;
		}
		res = double_shift(e->kind == X86_INSN_SHLD, old & size_mask(size),
				   gpr_read(e, e->reg, size), cnt, size, &cf);
		/* OF: sign change (defined for a count of 1); AF left alone. */
		f = result_flags(res, size) | (cf ? X86_FLAG_CF : 0) |
		    (((res ^ old) & sign_bit(size)) ? X86_FLAG_OF : 0);
		e->regs.rflags = (e->regs.rflags & ~(X86_FLAGS_ARITH & ~X86_FLAG_AF)) | f;
		*new = res;
		return true;
	}
	case X86_INSN_CMOV:
		/* A 32-bit cmov zero-extends its destination even when false (SDM CMOVcc). */
		gpr_write(e, e->reg, size, condition(e, e->cc) ? old : gpr_read(e, e->reg, size));
		return false;
	case X86_INSN_SETCC:
		*new = condition(e, e->cc);
		return true;
	case X86_INSN_SMSW:
		*new = e->ctxt->sys.cr0;	/* a memory or 16-bit destination takes bits 15:0 */
		return true;
	case X86_INSN_MOV_SREG:	/* mov Ev, Sreg: a register destination is zero-extended */
		*new = e->ctxt->sys.sel[e->reg & 7];
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
	switch (e->kind) {
	case X86_INSN_MOV:
	case X86_INSN_MOV_SREG:
		return e->g_dest;
	case X86_INSN_SETCC:
	case X86_INSN_SMSW:
		return false;
	default:
		return true;
	}
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
		/* One element, then copies doubling in size: a page in log2(n) steps. */
		store_le(buf, e->regs.gpr[X86_RAX], size);
		for (u64 done = size; done < bytes; done *= 2)
			memcpy(buf + done, buf, done < bytes - done ? done : bytes - done);
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

/* ---- cmps / scas ---------------------------------------------------------- */

/*
 * cmps / scas with rep, repe (F3) or repne (F2) (SDM Vol. 2A CMPS, SCAS).
 * Element by element, each read through its own callback (a device sees
 * exactly the reads the instruction makes), within the first elements'
 * pages. A read that fails after the first element ends the call with
 * the progress made and RIP on the instruction: the guest re-executes it.
 */
static enum x86_emu_status exec_cmps_scas(struct emu *e)
{
	unsigned int size = e->op_size, asize = e->addr_size;
	u64 amask = size_mask(asize), step = e->regs.rflags & X86_FLAG_DF ? (u64)-(s64)size : size;
	bool down = e->regs.rflags & X86_FLAG_DF, cmps = e->kind == X86_INSN_CMPS;
	enum x86_seg src_seg = e->seg_override >= 0 ? (enum x86_seg)e->seg_override : X86_SEG_DS;
	u64 count = e->rep ? e->regs.gpr[X86_RCX] & amask : 1;
	u64 di = e->regs.gpr[X86_RDI] & amask, si = e->regs.gpr[X86_RSI] & amask;
	u64 n, done = 0, lin;
	bool stop = false;

	if (count == 0) {
		advance_rip(e);
		return X86_EMU_DONE;
	}
	TRY(linear(e, X86_SEG_ES, di, size, &lin));
	e->res->has_mem = true;
	e->res->mem_linear = lin;
	e->res->mem_size = (u8)size;
	n = min_u64(count, elements_in_page(lin, size, down));
	n = min_u64(n, elements_before_wrap(di, amask, size, down));
	if (cmps) {
		TRY(linear(e, src_seg, si, size, &lin));
		n = min_u64(n, elements_in_page(lin, size, down));
		n = min_u64(n, elements_before_wrap(si, amask, size, down));
	}
	for (; done < n && !stop; done++) {
		u64 a, b, off = done * step;
		u8 buf[8];
		enum x86_emu_status st = X86_EMU_DONE;

		if (cmps) {
			st = linear(e, src_seg, (si + off) & amask, size, &lin);
			if (st == X86_EMU_DONE)
				st = mem_read(e, lin, buf, size);
			a = load_le(buf, size);
		} else {
			a = gpr_read(e, X86_RAX, size);
		}
		if (st == X86_EMU_DONE)
			st = linear(e, X86_SEG_ES, (di + off) & amask, size, &lin);
		if (st == X86_EMU_DONE)
			st = mem_read(e, lin, buf, size);
		if (st != X86_EMU_DONE) {
			if (!done)
				return st;
			break;
		}
		b = load_le(buf, size);
		alu(e, X86_INSN_CMP, a, b, size);
		/* repe stops on a difference, repne on equality. */
		if (e->rep)
			stop = (e->last_rep == 0xf3) != !!(e->regs.rflags & X86_FLAG_ZF);
	}
	addr_reg_write(e, X86_RDI, asize, di + done * step);
	if (cmps)
		addr_reg_write(e, X86_RSI, asize, si + done * step);
	e->res->reps = done;
	if (e->rep) {
		addr_reg_write(e, X86_RCX, asize, count - done);
		if (count - done && !stop)
			return X86_EMU_DONE;	/* RIP stays: the guest resumes the rep */
	}
	advance_rip(e);
	return X86_EMU_DONE;
}

/* ---- mul / imul / div / idiv with rAX (rDX) ---------------------------- */

/* The E operand's value (memory or register), of `size` bytes. */
static enum x86_emu_status read_e(struct emu *e, unsigned int size, u64 *val)
{
	u8 buf[8];

	if (!e->mem) {
		*val = gpr_read(e, e->rm, size);
		return X86_EMU_DONE;
	}
	TRY(linear(e, e->seg, e->ea, size, &e->lin));
	e->res->has_mem = true;
	e->res->mem_linear = e->lin;
	e->res->mem_size = (u8)size;
	TRY(mem_read(e, e->lin, buf, size));
	*val = load_le(buf, size);
	return X86_EMU_DONE;
}

/* hi:lo / d, unsigned; false when d is 0 or the quotient needs more than 64 bits. */
static bool udiv128(u64 hi, u64 lo, u64 d, u64 *q, u64 *r)
{
	u64 rem = hi, quo = 0;

	if (!d || hi >= d)
		return false;
	for (int i = 63; i >= 0; i--) {
		u64 carry = rem >> 63;

		rem = (rem << 1) | ((lo >> i) & 1);
		if (carry || rem >= d) {
			rem -= d;
			quo |= 1ull << i;
		}
	}
	*q = quo;
	*r = rem;
	return true;
}

/* 64-bit div/idiv of rDX:rAX; false is #DE. */
static bool divide64(bool is_signed, u64 hi, u64 lo, u64 d, u64 *q, u64 *r)
{
	bool neg_n = is_signed && (s64)hi < 0, neg_d = is_signed && (s64)d < 0;

	if (!is_signed)
		return udiv128(hi, lo, d, q, r);
	if (neg_n) {	/* |hi:lo| */
		lo = ~lo + 1;
		hi = ~hi + (lo == 0);
	}
	if (neg_d)
		d = -d;
	if (!udiv128(hi, lo, d, q, r))
		return false;
	if (neg_n != neg_d) {
		if (*q > 1ull << 63)
			return false;
		*q = -*q;
	} else if (*q >= 1ull << 63) {
		return false;
	}
	if (neg_n)
		*r = -*r;
	return true;
}

/* Smaller sizes: the double-width dividend fits 64 bits; false is #DE. */
static bool divide_small(bool is_signed, u64 n, u64 d, unsigned int size, u64 *q, u64 *r)
{
	u64 m = size_mask(size);

	if (!(d & m))
		return false;
	if (!is_signed) {
		*q = n / (d & m);
		*r = n % (d & m);
		return *q <= m;
	}
	s64 sn = (s64)sign_extend(n, size * 2), sd = (s64)sign_extend(d, size), sq;

	sq = sn / sd;	/* |sn| < 2^63 here: no C overflow */
	*r = (u64)(sn % sd) & m;
	if (sq < -(s64)(sign_bit(size)) || sq > (s64)(sign_bit(size) - 1))
		return false;
	*q = (u64)sq & m;
	return true;
}

/* F6/F7 /4-7 (SDM Vol. 2A MUL, IMUL, Vol. 2A DIV, IDIV). Undefined flags kept. */
static enum x86_emu_status exec_muldiv(struct emu *e)
{
	unsigned int size = e->op_size, bits = size * 8;
	u64 src, a = gpr_read(e, X86_RAX, size), d = size == 1 ? 0 : gpr_read(e, X86_RDX, size);
	u64 lo, hi, q, r;
	bool of, ok, is_signed = e->kind == X86_INSN_IMUL || e->kind == X86_INSN_IDIV;

	TRY(read_e(e, size, &src));
	if (e->kind == X86_INSN_MUL || e->kind == X86_INSN_IMUL) {
		if (size == 8) {
			unsigned __int128 p = is_signed ? (unsigned __int128)((__int128)(s64)a * (s64)src)
							: (unsigned __int128)a * src;

			lo = (u64)p;
			hi = (u64)(p >> 64);
			of = is_signed ? hi != (u64)((s64)lo >> 63) : hi != 0;
		} else {
			u64 p = is_signed ? (u64)((s64)sign_extend(a, size) * (s64)sign_extend(src, size))
					  : a * src;

			lo = p & size_mask(size);
			hi = (p >> bits) & size_mask(size);
			of = is_signed ? p != sign_extend(lo, size) : hi != 0;
		}
		set_cf_of(e, of);
	} else {
		if (size == 8)
			ok = divide64(is_signed, d, a, src, &q, &r);
		else
			ok = divide_small(is_signed, size == 1 ? gpr_read(e, X86_RAX, 2) : (d << bits) | a,
					  src, size, &q, &r);
		if (!ok)
			return raise(e, X86_VEC_DE, 0);
		lo = q;
		hi = r;
	}
	if (size == 1) {	/* AX = AH:AL */
		gpr_write(e, X86_RAX, 2, (hi << 8) | lo);
	} else {
		gpr_write(e, X86_RAX, size, lo);
		gpr_write(e, X86_RDX, size, hi);
	}
	return X86_EMU_DONE;
}

/* ---- the stack and near branches ---------------------------------------- */

/* Stack pointer width: RSP in 64-bit mode, else ESP or SP by SS.B. */
static unsigned int stack_size(const struct emu *e)
{
	return is_64bit(e) ? 8 : e->ctxt->sys.ss_big ? 4 : 2;
}

static enum x86_emu_status stack_read(struct emu *e, u64 sp, unsigned int size, u64 *val)
{
	u8 buf[8];
	u64 lin;

	TRY(linear(e, X86_SEG_SS, sp & size_mask(stack_size(e)), size, &lin));
	TRY(mem_read(e, lin, buf, size));
	*val = load_le(buf, size);
	return X86_EMU_DONE;
}

/* Push val (the instruction's only memory write, so it comes last). */
static enum x86_emu_status push_value(struct emu *e, u64 val, unsigned int size)
{
	unsigned int ssize = stack_size(e);
	u64 sp = (e->regs.gpr[X86_RSP] - size) & size_mask(ssize), lin;
	u8 buf[8];

	TRY(linear(e, X86_SEG_SS, sp, size, &lin));
	store_le(buf, val, size);
	TRY(mem_write(e, lin, buf, size));
	addr_reg_write(e, X86_RSP, ssize, sp);
	return X86_EMU_DONE;
}

/* The address of the next instruction, wrapped as IP wraps. */
static u64 next_rip(const struct emu *e)
{
	u64 rip = e->regs.rip + e->len;

	return e->ctxt->mode == X86_MODE_64 ? rip : rip & size_mask(e->ctxt->mode == X86_MODE_32 ?
								    4 : 2);
}

/* push, pop, enter, leave (SDM Vol. 2B PUSH, POP, ENTER, LEAVE). */
static enum x86_emu_status exec_stack(struct emu *e)
{
	unsigned int size = e->op_size, ssize = stack_size(e);
	u64 val, sp = e->regs.gpr[X86_RSP];

	switch (e->kind) {
	case X86_INSN_PUSH:
		if (e->src == SRC_IMM)
			val = e->imm;
		else if (e->has_modrm)
			TRY(read_e(e, size, &val));	/* push [rsp+x]: address before the push */
		else
			val = gpr_read(e, e->gpr, size);	/* push rsp: the old value */
		return push_value(e, val, size);
	case X86_INSN_POP:
		TRY(stack_read(e, sp, size, &val));
		addr_reg_write(e, X86_RSP, ssize, sp + size);
		if (!e->has_modrm) {
			gpr_write(e, e->gpr, size, val);	/* pop rsp: the value wins */
			return X86_EMU_DONE;
		}
		if (!e->mem) {
			gpr_write(e, e->rm, size, val);
			return X86_EMU_DONE;
		}
		/* pop [rsp+x] addresses with the incremented RSP (SDM POP). */
		if (e->ea_rsp_base)
			e->ea = (e->ea + size) & size_mask(e->addr_size);
		TRY(linear(e, e->seg, e->ea, size, &e->lin));
		e->res->has_mem = true;
		e->res->mem_linear = e->lin;
		e->res->mem_size = (u8)size;
		{
			u8 buf[8];

			store_le(buf, val, size);
			return mem_write(e, e->lin, buf, size);
		}
	case X86_INSN_LEAVE:
		sp = e->regs.gpr[X86_RBP] & size_mask(ssize);
		TRY(stack_read(e, sp, size, &val));
		addr_reg_write(e, X86_RSP, ssize, sp + size);
		gpr_write(e, X86_RBP, size, val);
		return X86_EMU_DONE;
	default: /* X86_INSN_ENTER */
		if (e->imm2 & 31)
			return unhandled(e, X86_REASON_OPCODE);	/* nested frames */
		TRY(push_value(e, gpr_read(e, X86_RBP, size), size));
		val = e->regs.gpr[X86_RSP];
		gpr_write(e, X86_RBP, size, val);
		addr_reg_write(e, X86_RSP, ssize, val - (e->imm & 0xffff));
		return X86_EMU_DONE;
	}
}

/* A near branch target: #GP(0) if not canonical in 64-bit mode. */
static enum x86_emu_status set_rip(struct emu *e, u64 target, unsigned int size)
{
	if (is_64bit(e)) {
		if (!is_canonical(target))
			return raise(e, X86_VEC_GP, 0);
		e->regs.rip = target;
	} else {
		e->regs.rip = target & size_mask(size);
	}
	return X86_EMU_DONE;
}

/* ---- segments: mov Sreg, ltr, jmp far ------------------------------------ */

#define DESC_S BIT(44)
#define DESC_P BIT(47)
#define DESC_L BIT(53)
#define DESC_DB BIT(54)
#define DESC_G BIT(55)

static unsigned int desc_type(u64 d)
{
	return (unsigned int)(d >> 40) & 15;
}

static unsigned int desc_dpl(u64 d)
{
	return (unsigned int)(d >> 45) & 3;
}

/* #GP/#NP/#SS with a selector error code (SDM Vol. 3A 6.13). */
static enum x86_emu_status raise_sel(struct emu *e, u8 vector, u16 sel)
{
	return raise(e, vector, sel & 0xfffc);
}

/* Read the 8 (or, with hi, 16) byte descriptor of sel from the GDT or LDT. */
static enum x86_emu_status read_desc(struct emu *e, u16 sel, u64 *d, u64 *hi, u64 *lin)
{
	const struct x86_emu_sys *sys = &e->ctxt->sys;
	bool ldt = sel & 4;
	u64 base = ldt ? sys->ldt_base : sys->gdt_base, idx = sel & ~7u;
	u32 limit = ldt ? sys->ldt_limit : sys->gdt_limit;
	unsigned int len = hi ? 16 : 8;
	struct x86_fault fault = { 0 };
	u8 buf[16];

	if (!e->ctxt->ops->sys_copy)
		return unhandled(e, X86_REASON_CALLBACK);
	if ((ldt && !sys->ldt_limit && !sys->ldt_base) || idx + len - 1 > limit)
		return raise_sel(e, X86_VEC_GP, sel);
	*lin = is_64bit(e) ? base + idx : (base + idx) & 0xffffffffull;
	TRY(callback_status(e, e->ctxt->ops->sys_copy(e->ctxt->opaque, *lin, buf, len, false,
						      &fault), &fault));
	*d = load_le(buf, 8);
	if (hi)
		*hi = load_le(buf + 8, 8);
	return X86_EMU_DONE;
}

/* Set type bits (accessed, busy) in a descriptor as the CPU does on a load. */
static enum x86_emu_status set_desc_type(struct emu *e, u64 lin, u64 *d, unsigned int bits)
{
	struct x86_fault fault = { 0 };
	u8 b;

	if ((desc_type(*d) & bits) == bits)
		return X86_EMU_DONE;
	*d |= (u64)bits << 40;
	b = (u8)(*d >> 40);
	return callback_status(e, e->ctxt->ops->sys_copy(e->ctxt->opaque, lin + 5, &b, 1, true,
							 &fault), &fault);
}

static struct x86_segment desc_segment(u16 sel, u64 d, u64 hi)
{
	struct x86_segment s = { .selector = sel };

	s.base = ((d >> 16) & 0xffffff) | ((d >> 32) & 0xff000000) | (hi & 0xffffffff) << 32;
	s.limit = (u32)((d & 0xffff) | ((d >> 32) & 0xf0000));
	if (d & DESC_G)
		s.limit = (s.limit << 12) | 0xfff;
	s.ar = (u32)(d >> 40) & 0xf0ff;
	return s;
}

static enum x86_emu_status load_seg(struct emu *e, enum x86_seg seg, const struct x86_segment *s)
{
	if (!e->ctxt->ops->load_seg)
		return unhandled(e, X86_REASON_CALLBACK);
	return e->ctxt->ops->load_seg(e->ctxt->opaque, seg, s) == X86_CB_OK ?
	       X86_EMU_DONE : unhandled(e, X86_REASON_CALLBACK);
}

/* mov Sreg, Ew (SDM Vol. 2B MOV, "Operation" for segment register loads). */
static enum x86_emu_status exec_mov_to_sreg(struct emu *e)
{
	enum x86_seg seg = (enum x86_seg)(e->reg & 7);
	unsigned int cpl = e->ctxt->sys.cpl, rpl, type, dpl;
	u64 val, d, lin;
	u16 sel;

	TRY(read_e(e, 2, &val));
	sel = (u16)val;
	rpl = sel & 3;
	if (!(sel & ~3u)) {
		/* Null: SS only in 64-bit mode below CPL 3 with RPL = CPL. */
		struct x86_segment null = { .selector = sel, .ar = X86_AR_UNUSABLE };

		if (seg == X86_SEG_SS) {
			if (!is_64bit(e) || cpl == 3 || rpl != cpl)
				return raise(e, X86_VEC_GP, 0);
			null.ar |= rpl << 5;	/* SS.DPL = CPL (VM entry checks it) */
		}
		return load_seg(e, seg, &null);
	}
	TRY(read_desc(e, sel, &d, NULL, &lin));
	type = desc_type(d);
	dpl = desc_dpl(d);
	if (seg == X86_SEG_SS) {
		/* A writable data segment at exactly CPL. */
		if (rpl != cpl || !(d & DESC_S) || (type & 8) || !(type & 2) || dpl != cpl)
			return raise_sel(e, X86_VEC_GP, sel);
		if (!(d & DESC_P))
			return raise_sel(e, X86_VEC_SS, sel);
	} else {
		/* Data or readable code; privilege unless conforming code. */
		if (!(d & DESC_S) || ((type & 8) && !(type & 2)))
			return raise_sel(e, X86_VEC_GP, sel);
		if ((!(type & 8) || !(type & 4)) && (rpl > dpl || cpl > dpl))
			return raise_sel(e, X86_VEC_GP, sel);
		if (!(d & DESC_P))
			return raise_sel(e, X86_VEC_NP, sel);
	}
	TRY(set_desc_type(e, lin, &d, 1));
	struct x86_segment s = desc_segment(sel, d, 0);
	return load_seg(e, seg, &s);
}

/* ltr r/m16 (SDM Vol. 2A LTR): an available TSS, marked busy in the GDT. */
static enum x86_emu_status exec_ltr(struct emu *e)
{
	bool lma = e->ctxt->sys.efer_lma;
	u64 val, d, hi = 0, lin;
	u16 sel;

	if (e->ctxt->sys.cpl)
		return raise(e, X86_VEC_GP, 0);
	TRY(read_e(e, 2, &val));
	sel = (u16)val;
	if (!(sel & ~3u))
		return raise(e, X86_VEC_GP, 0);
	if (sel & 4)
		return raise_sel(e, X86_VEC_GP, sel);
	TRY(read_desc(e, sel, &d, lma ? &hi : NULL, &lin));
	/* Available 32/64-bit TSS (type 9), or a 16-bit one (1) outside IA-32e mode. */
	if ((d & DESC_S) || (desc_type(d) != 9 && (lma || desc_type(d) != 1)) ||
	    (lma && ((hi >> 40) & 0x1f)))
		return raise_sel(e, X86_VEC_GP, sel);
	if (!(d & DESC_P))
		return raise_sel(e, X86_VEC_NP, sel);
	struct x86_segment s = desc_segment(sel, d, hi);
	if (lma && !is_canonical(s.base))
		return raise_sel(e, X86_VEC_GP, sel);
	TRY(set_desc_type(e, lin, &d, 2));	/* busy */
	s.ar |= 2;
	return load_seg(e, X86_SEG_TR, &s);
}

/*
 * jmp/call far m16:16/32/64 to a code segment at the same privilege (SDM Vol.
 * 2A JMP and CALL, "far jump/call to a conforming or nonconforming code
 * segment"): check the target, then, for call, push CS and the return
 * address (one write), then set the accessed bit and load CS.
 */
static enum x86_emu_status far_transfer(struct emu *e, u16 sel, u64 offset, bool call)
{
	unsigned int cpl = e->ctxt->sys.cpl, type, dpl, size = e->op_size;
	bool to64;
	u64 d, lin;

	if (!(sel & ~3u))
		return raise(e, X86_VEC_GP, 0);
	TRY(read_desc(e, sel, &d, NULL, &lin));
	type = desc_type(d);
	dpl = desc_dpl(d);
	if (!(d & DESC_S))
		return unhandled(e, X86_REASON_OPCODE);	/* call gate, TSS, task gate */
	if (!(type & 8))
		return raise_sel(e, X86_VEC_GP, sel);	/* a data segment */
	if ((type & 4) ? dpl > cpl : ((sel & 3) > cpl || dpl != cpl))
		return raise_sel(e, X86_VEC_GP, sel);
	if (!(d & DESC_P))
		return raise_sel(e, X86_VEC_NP, sel);
	if (e->ctxt->sys.efer_lma && (d & DESC_L) && (d & DESC_DB))
		return raise_sel(e, X86_VEC_GP, sel);
	to64 = e->ctxt->sys.efer_lma && (d & DESC_L);
	struct x86_segment s = desc_segment((u16)((sel & ~3u) | cpl), d, 0);
	if (to64) {
		if (!is_canonical(offset))
			return raise(e, X86_VEC_GP, 0);
	} else {
		offset &= size == 2 ? 0xffff : 0xffffffffull;
		if (offset > s.limit)
			return raise(e, X86_VEC_GP, 0);
	}
	if (call) {
		/* [new RSP] = return RIP, [new RSP + size] = CS (zero-extended). */
		unsigned int ssize = stack_size(e);
		u64 sp = (e->regs.gpr[X86_RSP] - 2 * size) & size_mask(ssize), slin;
		u8 buf[16];

		TRY(linear(e, X86_SEG_SS, sp, 2 * size, &slin));
		store_le(buf, next_rip(e), size);
		store_le(buf + size, e->ctxt->sys.sel[X86_SEG_CS], size);
		TRY(mem_write(e, slin, buf, 2 * size));
		addr_reg_write(e, X86_RSP, ssize, sp);
	}
	TRY(set_desc_type(e, lin, &d, 1));
	s.ar |= 1;
	TRY(load_seg(e, X86_SEG_CS, &s));
	e->regs.rip = offset;
	return X86_EMU_DONE;
}

/* ---- hardware task switch (SDM Vol. 3A 8.3) ------------------------------------ */

#define RFLAGS_NT BIT(14)
#define RFLAGS_VM BIT(17)

/* Where the fields are in a 32-bit and a 16-bit TSS (SDM Vol. 3A 8.2.1, 8.6). */
struct tss_layout {
	unsigned int size;		/* bytes read and written back */
	unsigned int min_limit;		/* a smaller TSS limit is #TS */
	unsigned int width;		/* EIP, EFLAGS, GPRs: 4 or 2 bytes */
	unsigned int cr3, ip, flags, gpr, seg, nsegs, ldt;
};

static const struct tss_layout tss32 = {
	.size = 0x68, .min_limit = 0x67, .width = 4,
	.cr3 = 0x1c, .ip = 0x20, .flags = 0x24, .gpr = 0x28, .seg = 0x48, .nsegs = 6, .ldt = 0x60,
};
static const struct tss_layout tss16 = {  /* no CR3, FS or GS */
	.size = 0x2c, .min_limit = 0x2b, .width = 2,
	.cr3 = 0, .ip = 0x0e, .flags = 0x10, .gpr = 0x12, .seg = 0x22, .nsegs = 4, .ldt = 0x2a,
};

static enum x86_emu_status sys_rw(struct emu *e, u64 lin, void *buf, unsigned int len,
				  bool write)
{
	struct x86_fault fault = { 0 };

	return callback_status(e, e->ctxt->ops->sys_copy(e->ctxt->opaque, lin & 0xffffffffull,
							 buf, len, write, &fault), &fault);
}

/* A selector of the new task, checked as SDM Vol. 3A 8.3 step 13 (Table 8-2): faults are
 * #TS with the selector, #NP or #SS when not present. */
/* read_desc for the new task's selectors: beyond the table's limit is #TS, not #GP. */
static enum x86_emu_status task_read_desc(struct emu *e, u16 sel, u64 *d, u64 *lin)
{
	enum x86_emu_status st = read_desc(e, sel, d, NULL, lin);

	if (st == X86_EMU_EXCEPTION && e->res->fault.vector == X86_VEC_GP)
		return raise_sel(e, X86_VEC_TS, sel);
	return st;
}

static enum x86_emu_status task_load_seg(struct emu *e, enum x86_seg seg, u16 sel,
					 unsigned int cpl)
{
	unsigned int rpl = sel & 3, type, dpl;
	struct x86_segment s;
	u64 d, lin;

	if (!(sel & ~3u)) {
		if (seg == X86_SEG_CS || seg == X86_SEG_SS)
			return raise_sel(e, X86_VEC_TS, sel);
		s = (struct x86_segment){ .selector = sel, .ar = X86_AR_UNUSABLE };
		return load_seg(e, seg, &s);
	}
	TRY(task_read_desc(e, sel, &d, &lin));
	type = desc_type(d);
	dpl = desc_dpl(d);
	if (!(d & DESC_S))
		return raise_sel(e, X86_VEC_TS, sel);
	if (seg == X86_SEG_CS) {
		/* Code; nonconforming: DPL = RPL, conforming: DPL <= RPL (the new CPL). */
		if (!(type & 8) || ((type & 4) ? dpl > rpl : dpl != rpl))
			return raise_sel(e, X86_VEC_TS, sel);
	} else if (seg == X86_SEG_SS) {
		if ((type & 8) || !(type & 2) || rpl != cpl || dpl != cpl)
			return raise_sel(e, X86_VEC_TS, sel);
	} else if (((type & 8) && !(type & 2)) ||
		   ((!(type & 8) || !(type & 4)) && (dpl < cpl || dpl < rpl))) {
		return raise_sel(e, X86_VEC_TS, sel);
	}
	if (!(d & DESC_P))
		return raise_sel(e, seg == X86_SEG_SS ? X86_VEC_SS : X86_VEC_NP, sel);
	TRY(set_desc_type(e, lin, &d, 1));
	s = desc_segment(sel, d, 0);
	TRY(load_seg(e, seg, &s));
	e->ctxt->seg_base[seg] = s.base;
	if (seg == X86_SEG_CS)
		e->ctxt->mode = x86_mode_from_cs(false, false, s.ar & BIT(14));
	if (seg == X86_SEG_SS)
		e->ctxt->sys.ss_big = s.ar & BIT(14);
	return X86_EMU_DONE;
}

/* The new task's LDT: null, or an LDT descriptor in the GDT (else #TS). */
static enum x86_emu_status task_load_ldt(struct emu *e, u16 sel)
{
	struct x86_emu_sys *sys = &e->ctxt->sys;
	struct x86_segment s = { .selector = sel, .ar = X86_AR_UNUSABLE };
	u64 d, lin;

	sys->ldt_base = 0;
	sys->ldt_limit = 0;
	if (sel & ~3u) {
		if (sel & 4)
			return raise_sel(e, X86_VEC_TS, sel);
		TRY(task_read_desc(e, sel, &d, &lin));
		if ((d & DESC_S) || desc_type(d) != 2 || !(d & DESC_P))
			return raise_sel(e, X86_VEC_TS, sel);
		s = desc_segment(sel, d, 0);
		sys->ldt_base = s.base;
		sys->ldt_limit = s.limit;
	}
	return load_seg(e, X86_SEG_LDTR, &s);
}

/* Load the new task's state from its TSS image (after the commit point). */
static enum x86_emu_status task_enter(struct emu *e, const struct tss_layout *l, const u8 *tss,
				      struct x86_task_switch *t)
{
	struct x86_emu_ctxt *c = e->ctxt;
	u16 sel[X86_NR_SEGS];
	unsigned int cpl;

	for (unsigned int i = 0; i < X86_NR_SEGS; i++)
		sel[i] = i < l->nsegs ? (u16)load_le(tss + l->seg + l->width * i, 2) :
					c->sys.sel[i];
	e->regs.rip = load_le(tss + l->ip, l->width);
	e->regs.rflags = load_le(tss + l->flags, l->width) | 2;
	if (t->source == X86_TASK_CALL || t->source == X86_TASK_GATE)
		e->regs.rflags |= RFLAGS_NT;
	for (unsigned int i = 0; i < 8; i++)
		e->regs.gpr[i] = load_le(tss + l->gpr + l->width * i, l->width);
	if (l->cr3 && c->ops->load_cr3) {
		struct x86_fault fault = { 0 };

		TRY(callback_status(e, c->ops->load_cr3(c->opaque, load_le(tss + l->cr3, 4),
							&fault), &fault));
	}
	TRY(task_load_ldt(e, (u16)load_le(tss + l->ldt, 2)));
	if (e->regs.rflags & RFLAGS_VM) {
		/* Virtual-8086 task: base = selector * 16, 64 KiB, CPL 3 (SDM 20.2.1). */
		for (unsigned int i = 0; i < X86_NR_SEGS; i++) {
			struct x86_segment s = { .selector = sel[i], .base = (u64)sel[i] << 4,
						 .limit = 0xffff, .ar = 0xf3 };

			TRY(load_seg(e, (enum x86_seg)i, &s));
			c->seg_base[i] = s.base;
		}
		c->sys.ss_big = false;
		c->mode = X86_MODE_16;
	} else {
		static const enum x86_seg order[X86_NR_SEGS] = {
			X86_SEG_CS, X86_SEG_SS, X86_SEG_DS, X86_SEG_ES, X86_SEG_FS, X86_SEG_GS,
		};

		cpl = sel[X86_SEG_CS] & 3;
		for (unsigned int i = 0; i < X86_NR_SEGS; i++) {
			if (order[i] >= l->nsegs)
				continue;	/* a 16-bit TSS leaves FS and GS alone */
			TRY(task_load_seg(e, order[i], sel[order[i]], cpl));
		}
		c->sys.cpl = (u8)cpl;
	}
	return X86_EMU_DONE;
}

static enum x86_emu_status task_switch(struct emu *e, struct x86_task_switch *t)
{
	struct x86_emu_ctxt *ctxt = e->ctxt;
	const struct tss_layout *nl, *ol;
	u8 new_tss[0x68], old_tss[0x68], b;
	u16 sel = t->selector;
	unsigned int type, cpl = ctxt->sys.cpl;
	struct x86_segment ns;
	u64 d, lin, od, olin, flags;

	if (ctxt->sys.efer_lma)		/* no task switching in IA-32e mode (SDM 8.7) */
		return unhandled(e, X86_REASON_MODE);

	/* The new TSS descriptor: in the GDT, a TSS, busy only for iret (SDM 8.3 steps 1-4). */
	if (sel & 4)
		return raise_sel(e, X86_VEC_GP, sel);
	TRY(read_desc(e, sel, &d, NULL, &lin));
	type = desc_type(d);
	if ((d & DESC_S) || (type & 5) != 1)	/* 16/32-bit TSS, available or busy */
		return raise_sel(e, X86_VEC_GP, sel);
	if (t->source == X86_TASK_IRET ? !(type & 2) : (type & 2))
		return raise_sel(e, t->source == X86_TASK_IRET ? X86_VEC_TS : X86_VEC_GP, sel);
	if ((t->source == X86_TASK_CALL || t->source == X86_TASK_JMP) &&
	    (desc_dpl(d) < cpl || desc_dpl(d) < (sel & 3u)))
		return raise_sel(e, X86_VEC_GP, sel);
	if (!(d & DESC_P))
		return raise_sel(e, X86_VEC_NP, sel);
	nl = (type & 8) ? &tss32 : &tss16;
	ns = desc_segment(sel, d, 0);
	if (ns.limit < nl->min_limit)
		return raise_sel(e, X86_VEC_TS, sel);

	/* Save the old task (step 8): EIP, EFLAGS (NT cleared by iret), GPRs, selectors. */
	ol = (t->tr.ar & 8) ? &tss32 : &tss16;
	TRY(sys_rw(e, t->tr.base, old_tss, ol->size, false));
	flags = e->regs.rflags & ~(t->source == X86_TASK_IRET ? RFLAGS_NT : 0);
	store_le(old_tss + ol->ip, e->regs.rip, ol->width);
	store_le(old_tss + ol->flags, flags, ol->width);
	for (unsigned int i = 0; i < 8; i++)
		store_le(old_tss + ol->gpr + ol->width * i, e->regs.gpr[i], ol->width);
	for (unsigned int i = 0; i < ol->nsegs; i++)
		store_le(old_tss + ol->seg + ol->width * i, ctxt->sys.sel[i], 2);
	TRY(sys_rw(e, t->tr.base + ol->ip, old_tss + ol->ip, ol->ldt - ol->ip, true));
	TRY(sys_rw(e, ns.base, new_tss, nl->size, false));

	/* Busy bits and the back link (steps 5, 7, 9). */
	if (t->source == X86_TASK_JMP || t->source == X86_TASK_IRET) {
		TRY(read_desc(e, t->tr.selector, &od, NULL, &olin));
		b = (u8)(od >> 40) & (u8)~2;
		TRY(sys_rw(e, olin + 5, &b, 1, true));
	}
	if (t->source == X86_TASK_CALL || t->source == X86_TASK_GATE) {
		store_le(new_tss, t->tr.selector, 2);
		TRY(sys_rw(e, ns.base, new_tss, 2, true));
	}
	if (t->source != X86_TASK_IRET)
		TRY(set_desc_type(e, lin, &d, 2));

	/* Commit point (step 10): TR, then the new task's state; faults from here on
	 * are the new task's. */
	t->committed = true;
	ns.ar |= 2;
	TRY(load_seg(e, X86_SEG_TR, &ns));
	TRY(task_enter(e, nl, new_tss, t));
	if (t->has_error)
		TRY(push_value(e, t->error_code, nl->width));
	return X86_EMU_DONE;
}

/* An empty result and a working copy of the registers, committed only on success. */
static void emu_start(struct emu *e, struct x86_emu_ctxt *ctxt, struct x86_emu_result *res)
{
	memset(res, 0, sizeof(*res));
	memset(e, 0, sizeof(*e));
	e->ctxt = ctxt;
	e->res = res;
	e->regs = ctxt->regs;
}

enum x86_emu_status x86_task_switch(struct x86_emu_ctxt *ctxt, struct x86_task_switch *t,
				    struct x86_emu_result *res)
{
	struct emu e;

	emu_start(&e, ctxt, res);
	t->committed = false;
	res->status = task_switch(&e, t);
	if (t->committed)
		ctxt->regs = e.regs;
	return res->status;
}

/* ret, call/jmp near indirect, jmp far: they set RIP themselves. */
static enum x86_emu_status exec_branch(struct emu *e)
{
	unsigned int size = e->op_size;
	u64 target, sel;

	switch (e->kind) {
	case X86_INSN_RET: {
		u64 sp = e->regs.gpr[X86_RSP];

		TRY(stack_read(e, sp, size, &target));
		TRY(set_rip(e, target, size));
		addr_reg_write(e, X86_RSP, stack_size(e), sp + size + (e->imm & 0xffff));
		return X86_EMU_DONE;
	}
	case X86_INSN_JMP_FAR:
	case X86_INSN_CALL_FAR:
		TRY(read_e(e, size, &target));
		TRY(linear(e, e->seg, (e->ea + size) & size_mask(e->addr_size), 2, &e->lin));
		{
			u8 buf[2];

			TRY(mem_read(e, e->lin, buf, 2));
			sel = load_le(buf, 2);
		}
		return far_transfer(e, (u16)sel, target, e->kind == X86_INSN_CALL_FAR);
	default: /* X86_INSN_CALL, X86_INSN_JMP */
		TRY(read_e(e, size, &target));
		if (e->kind == X86_INSN_CALL) {
			u64 ret = next_rip(e);

			TRY(set_rip(e, target, size));
			return push_value(e, ret, size);
		}
		return set_rip(e, target, size);
	}
}

/* ---- SSE / MMX moves ----------------------------------------------------- */

/*
 * Memory forms of the SSE/MMX moves (SDM Vol. 2 MOVUPS ... MOVNTQ): which
 * register file, how many bytes, which way, and the 16-byte alignment the
 * aligned forms demand (#GP(0)). Loads of fewer bytes than the register
 * zero the rest (movss/movsd/movd/movq from memory).
 */
static enum x86_emu_status exec_vmove(struct emu *e)
{
	const struct x86_emu_ops *ops = e->ctxt->ops;
	u8 op = e->opcode, pfx = e->last_rep ? e->last_rep : e->p66 ? 0x66 : 0;
	enum x86_vreg kind = X86_VREG_XMM;
	unsigned int len = 16, n;
	bool store = false, aligned = false;
	u8 val[16] = { 0 };

	switch (op) {
	case 0x10: case 0x11:	/* movups/movupd, movss (F3), movsd (F2) */
		store = op & 1;
		len = pfx == 0xf3 ? 4 : pfx == 0xf2 ? 8 : 16;
		break;
	case 0x28: case 0x29: case 0x2b:	/* movaps/movapd, movntps/movntpd */
		if (pfx == 0xf2 || pfx == 0xf3)
			return unhandled(e, X86_REASON_OPCODE);	/* cvtsi2ss... */
		store = op != 0x28;
		aligned = true;
		break;
	case 0x6e: case 0x7e:
		if (op == 0x7e && pfx == 0xf3) {	/* movq xmm, m64 */
			len = 8;
			break;
		}
		if (pfx == 0xf2 || pfx == 0xf3)
			return unhandled(e, X86_REASON_OPCODE);
		kind = pfx == 0x66 ? X86_VREG_XMM : X86_VREG_MM;	/* movd/movq */
		len = (e->rex & 8) ? 8 : 4;
		store = op == 0x7e;
		break;
	case 0x6f: case 0x7f:	/* movq mm, movdqa (66), movdqu (F3) */
		store = op == 0x7f;
		if (pfx == 0xf2)
			return unhandled(e, X86_REASON_OPCODE);
		if (!pfx) {
			kind = X86_VREG_MM;
			len = 8;
		}
		aligned = pfx == 0x66;
		break;
	case 0xd6:		/* movq m64, xmm */
		if (pfx != 0x66)
			return unhandled(e, X86_REASON_OPCODE);
		len = 8;
		store = true;
		break;
	default:		/* 0xe7: movntq, movntdq (66) */
		if (pfx == 0xf2 || pfx == 0xf3)
			return unhandled(e, X86_REASON_OPCODE);
		store = true;
		if (!pfx) {
			kind = X86_VREG_MM;
			len = 8;
		}
		aligned = pfx == 0x66;
		break;
	}
	if (!ops->vreg_read || !ops->vreg_write)
		return unhandled(e, X86_REASON_CALLBACK);
	n = kind == X86_VREG_MM ? (e->reg & 7u) : e->reg;
	TRY(linear(e, e->seg, e->ea, len, &e->lin));
	e->res->has_mem = true;
	e->res->mem_linear = e->lin;
	e->res->mem_size = (u8)len;
	if (aligned && (e->lin & 15))
		return raise(e, X86_VEC_GP, 0);
	if (store) {
		if (ops->vreg_read(e->ctxt->opaque, kind, n, val) != X86_CB_OK)
			return unhandled(e, X86_REASON_CALLBACK);
		TRY(mem_write(e, e->lin, val, len));
		if (kind == X86_VREG_MM)
			ops->vreg_write(e->ctxt->opaque, kind, n, NULL);	/* MMX state */
		return X86_EMU_DONE;
	}
	TRY(mem_read(e, e->lin, val, len));
	if (ops->vreg_write(e->ctxt->opaque, kind, n, val) != X86_CB_OK)
		return unhandled(e, X86_REASON_CALLBACK);
	return X86_EMU_DONE;
}

static enum x86_emu_status execute(struct emu *e)
{
	switch (e->kind) {
	case X86_INSN_STOS:
	case X86_INSN_MOVS:
	case X86_INSN_LODS:
		return exec_string(e);
	case X86_INSN_CMPS:
	case X86_INSN_SCAS:
		return exec_cmps_scas(e);
	case X86_INSN_RET:
	case X86_INSN_CALL:
	case X86_INSN_JMP:
	case X86_INSN_JMP_FAR:
	case X86_INSN_CALL_FAR:
		return exec_branch(e);
	case X86_INSN_CMPXCHG8B:
	case X86_INSN_CMPXCHG16B:
		TRY(exec_cmpxchg_double(e));
		break;
	case X86_INSN_MUL:
	case X86_INSN_IMUL:
	case X86_INSN_DIV:
	case X86_INSN_IDIV:
		TRY(e->g_dest ? exec_e_operand(e) : exec_muldiv(e));
		break;
	case X86_INSN_PUSH:
	case X86_INSN_POP:
	case X86_INSN_ENTER:
	case X86_INSN_LEAVE:
		TRY(exec_stack(e));
		break;
	case X86_INSN_MOV_SREG:
		TRY(e->g_dest ? exec_mov_to_sreg(e) : exec_e_operand(e));
		break;
	case X86_INSN_LTR:
		TRY(exec_ltr(e));
		break;
	case X86_INSN_VMOV:
		TRY(exec_vmove(e));
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

	emu_start(&e, ctxt, res);

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
