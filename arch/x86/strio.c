/*
 * INS and OUTS after an I/O exit (see arch/x86/strio.h): registers by the
 * address size, segmentation, one element at a time through the callbacks.
 */
#include "arch/x86/strio.h"

#define AR_TYPE_CODE BIT(3)
#define AR_TYPE_EXPAND_DOWN BIT(2)     /* data segments */
#define AR_TYPE_WRITABLE BIT(1)        /* data: writable; code: readable */
#define AR_DB BIT(14)
#define AR_UNUSABLE BIT(16)

static u64 addr_mask(u8 addr_size)
{
	return addr_size >= 8 ? ~0ull : BIT(addr_size * 8) - 1;
}

/* A register written at the address size: 16 bits keep the rest, 32 bits
 * zero-extend (SDM Vol. 1 3.4.1.1). */
static u64 assign(u64 old, u64 val, u8 addr_size)
{
	if (addr_size == 2)
		return (old & ~0xffffull) | (val & 0xffff);
	return val & addr_mask(addr_size);
}

static bool canonical(u64 la)
{
	return (u64)((s64)(la << 16) >> 16) == la;
}

static void segment_fault(const struct x86_strio *s, struct x86_fault *f)
{
	*f = (struct x86_fault){ .vector = s->seg == X86_SEG_SS ? X86_VEC_SS : X86_VEC_GP,
				 .has_error_code = true };
}

/* Segment checks for the element at offset off (SDM Vol. 3A 5.3, 5.4). */
static bool segment_ok(const struct x86_strio *s, u64 off)
{
	u32 type = s->seg_ar & 0xf;
	bool code = type & AR_TYPE_CODE;
	u64 last = off + s->size - 1;

	if (!s->real_mode) {
		if (s->seg_ar & AR_UNUSABLE)
			return false;  /* null selector */
		if (s->in && (code || !(type & AR_TYPE_WRITABLE)))
			return false;  /* INS writes: a writable data segment */
		if (!s->in && code && !(type & AR_TYPE_WRITABLE))
			return false;  /* execute-only code cannot be read */
	}
	if (!code && (type & AR_TYPE_EXPAND_DOWN))
		return off > s->seg_limit && last <= ((s->seg_ar & AR_DB) ? 0xffffffffull : 0xffff);
	return last <= s->seg_limit;
}

static u64 linear(const struct x86_strio *s, u64 off)
{
	/* In 64-bit mode only FS and GS have a base (SDM Vol. 3A 3.2.4). */
	if (s->mode == X86_MODE_64)
		return (s->seg == X86_SEG_FS || s->seg == X86_SEG_GS ? s->seg_base : 0) + off;
	return (u32)(s->seg_base + off);
}

static enum x86_strio_status memory_status(enum x86_cb_status st)
{
	return st == X86_CB_FAULT ? X86_STRIO_FAULT : X86_STRIO_UNHANDLED;
}

enum x86_strio_status x86_strio_run(const struct x86_strio *s, struct x86_strio_regs *r,
				    u64 max_elements, const struct x86_strio_ops *ops,
				    void *opaque, struct x86_fault *fault, u64 *elements)
{
	u64 mask = addr_mask(s->addr_size);
	u64 *index = s->in ? &r->rdi : &r->rsi;
	u64 count = s->rep ? r->rcx & mask : 1;

	*elements = 0;
	while (count) {
		u64 off = *index & mask, la = linear(s, off);
		u32 value = 0;
		enum x86_cb_status st;

		if (*elements == max_elements)
			return X86_STRIO_MORE;
		if (s->mode == X86_MODE_64 ? !canonical(la) || !canonical(la + s->size - 1) :
					     !segment_ok(s, off)) {
			segment_fault(s, fault);
			return X86_STRIO_FAULT;
		}
		if (s->in) {
			st = ops->mem(opaque, la, NULL, s->size, true, fault);
			if (st != X86_CB_OK)
				return memory_status(st);
			if (!ops->port(opaque, s->port, s->size, true, &value))
				return X86_STRIO_STOPPED;
			st = ops->mem(opaque, la, &value, s->size, true, fault);
		} else {
			st = ops->mem(opaque, la, &value, s->size, false, fault);
			if (st == X86_CB_OK && !ops->port(opaque, s->port, s->size, false, &value))
				return X86_STRIO_STOPPED;
		}
		if (st != X86_CB_OK)
			return memory_status(st);
		*index = assign(*index, s->down ? *index - s->size : *index + s->size, s->addr_size);
		if (s->rep)
			r->rcx = assign(r->rcx, r->rcx - 1, s->addr_size);
		count--;
		++*elements;
	}
	return X86_STRIO_DONE;
}

bool x86_strio_decode(const u8 *insn, unsigned int len, enum x86_cpu_mode mode,
		      u8 *addr_size, enum x86_seg *seg)
{
	static const u8 default_size[] = { [X86_MODE_16] = 2, [X86_MODE_32] = 4, [X86_MODE_64] = 8 };
	bool addr_prefix = false;

	*seg = X86_SEG_DS;
	for (unsigned int i = 0; i < len; i++) {
		u8 b = insn[i];

		switch (b) {
		case 0x26: *seg = X86_SEG_ES; continue;
		case 0x2e: *seg = X86_SEG_CS; continue;
		case 0x36: *seg = X86_SEG_SS; continue;
		case 0x3e: *seg = X86_SEG_DS; continue;
		case 0x64: *seg = X86_SEG_FS; continue;
		case 0x65: *seg = X86_SEG_GS; continue;
		case 0x67: addr_prefix = true; continue;
		case 0x66: case 0xf0: case 0xf2: case 0xf3: continue;
		}
		/* REX only right before the opcode (SDM Vol. 2A 2.2.1). */
		if (mode == X86_MODE_64 && (b & 0xf0) == 0x40 && i + 1 < len)
			b = insn[++i];
		if (b < 0x6c || b > 0x6f)
			return false;
		if (b <= 0x6d)
			*seg = X86_SEG_ES;  /* INS: ES, no override (SDM Vol. 2B INS) */
		*addr_size = default_size[mode];
		if (addr_prefix)
			*addr_size = mode == X86_MODE_32 ? 2 : 4;
		return true;
	}
	return false;
}
