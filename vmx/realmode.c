/*
 * The #GP exits of a guest whose real mode runs as virtual-8086 mode
 * (vmx/vm86.c): the instructions virtual-8086 mode forbids and real mode
 * allows are emulated (HLT, IN/OUT, INT n/INT3/INTO, MOV to and from CR0,
 * CR3, CR4 and DR0-DR7, CLTS, LMSW, LGDT/LIDT, INVD/WBINVD); other exceptions are
 * delivered as real mode delivers them.
 */
#include "vmx/realmode.h"
#include "vmx/cr.h"
#include "vmx/event.h"
#include "vmx/io.h"
#include "vmx/s3.h"
#include "vmx/vm86.h"
#include "vmx/vmcs.h"
#include "devices/devices.h"
#include "arch/x86/cpu.h"
#include "arch/x86/emulate.h"

#define MAX_INSN 15

struct rm_insn {
	u8 bytes[MAX_INSN];
	unsigned len, pos;
	bool op32, addr32;
	int seg;      /* override, -1 none */
};

static bool next_byte(struct rm_insn *in, u8 *b)
{
	if (in->pos >= in->len)
		return false;
	*b = in->bytes[in->pos++];
	return true;
}

static u64 gpr_get(struct vcpu *v, unsigned r)
{
	return (&v->regs.rax)[r];
}

/* The linear address of a ModRM memory operand (SDM Vol. 2A 2.1.5, Tables
 * 2-1 and 2-2), from the bytes after the ModRM byte. false: malformed. */
static bool modrm_address(struct vcpu *v, struct rm_insn *in, u8 modrm, u64 *la)
{
	unsigned mod = modrm >> 6, rm = modrm & 7;
	int seg = SEG_DS;
	u64 ea = 0;
	u8 b;

	if (!in->addr32) {
		static const signed char base[8] = { 3, 3, 5, 5, 6, 7, 5, 3 };   /* BX BX BP BP SI DI BP BX */
		static const signed char index[8] = { 6, 7, 6, 7, -1, -1, -1, -1 };

		if (mod == 0 && rm == 6) {
			u8 lo, hi;

			if (!next_byte(in, &lo) || !next_byte(in, &hi))
				return false;
			ea = lo | (u16)hi << 8;
		} else {
			ea = gpr_get(v, (unsigned)base[rm]);
			if (index[rm] >= 0)
				ea += gpr_get(v, (unsigned)index[rm]);
			if (base[rm] == 5)
				seg = SEG_SS;
		}
		if (mod == 1) {
			if (!next_byte(in, &b))
				return false;
			ea += (u64)(s64)(s8)b;
		} else if (mod == 2) {
			u8 lo, hi;

			if (!next_byte(in, &lo) || !next_byte(in, &hi))
				return false;
			ea += (u16)(lo | hi << 8);
		}
		ea &= 0xffff;
	} else {
		u32 disp = 0;
		unsigned dlen = mod == 1 ? 1 : mod == 2 ? 4 : 0;

		if (rm == 4) {
			u8 sib;
			unsigned sbase, sindex;

			if (!next_byte(in, &sib))
				return false;
			sbase = sib & 7, sindex = (sib >> 3) & 7;
			if (sindex != 4)
				ea += gpr_get(v, sindex) << (sib >> 6);
			if (sbase == 5 && mod == 0)
				dlen = 4;
			else
				ea += gpr_get(v, sbase), seg = (sbase == 4 || sbase == 5) ? SEG_SS : seg;
		} else if (rm == 5 && mod == 0) {
			dlen = 4;
		} else {
			ea += gpr_get(v, rm);
			if (rm == 5)
				seg = SEG_SS;
		}
		for (unsigned i = 0; i < dlen; i++) {
			if (!next_byte(in, &b))
				return false;
			disp |= (u32)b << (8 * i);
		}
		ea += dlen == 1 ? (u64)(s64)(s8)disp : disp;
		ea &= 0xffffffffull;
	}
	if (in->seg >= 0)
		seg = in->seg;
	*la = vm86_seg_base((unsigned)seg) + ea;
	return true;
}

static struct vmexit fake_exit(struct vmexit *e, unsigned len, u64 qualification)
{
	struct vmexit f = *e;

	f.instruction_len = len;
	f.qualification = qualification;
	return f;
}

static enum exit_action emulate_in_out(struct vcpu *v, struct vmexit *e, struct rm_insn *in,
				       u8 op)
{
	unsigned size = (op & 1) ? (in->op32 ? 4 : 2) : 1;
	bool is_in = !(op & 2);
	u16 port = (u16)v->regs.rdx;
	u32 value;
	u8 imm;
	enum exit_action a;
	struct vmexit f;

	if (op < 0xe8) {  /* E4-E7: the port is an immediate byte */
		if (!next_byte(in, &imm))
			return EXIT_ENDED;
		port = imm;
	}
	value = (u32)v->regs.rax;
	a = io_one(v, port, size, is_in, &value);
	if (a != EXIT_RESUME)
		return a;
	if (is_in) {
		u64 mask = size == 4 ? 0xffffffffull : (1ull << (8 * size)) - 1;

		v->regs.rax = size == 4 ? value : (v->regs.rax & ~mask) | (value & mask);
	}
	f = fake_exit(e, in->pos, 0);
	skip_instruction(&f);
	if (!is_in && devices_enter_sleep(v->g))
		return realmode_s3_sleep(v);
	return EXIT_RESUME;
}

/* 0F 01 /2 /3: LGDT, LIDT m16&24 (or m16&32 with a 32-bit operand). */
static enum exit_action emulate_lgdt_lidt(struct vcpu *v, struct vmexit *e, struct rm_insn *in,
					  u8 modrm)
{
	u8 desc[6];
	u64 la, base;
	u16 limit;
	struct vmexit f;

	if ((modrm >> 6) == 3 || !modrm_address(v, in, modrm, &la)) {
		inject_ud(v);
		return EXIT_RESUME;
	}
	if (!vm86_access(v, la, desc, 6, 0)) {
		guest_end(v->g, 0, "real mode: LGDT/LIDT operand at %#llx is not in RAM",
			  (unsigned long long)la);
		return EXIT_ENDED;
	}
	limit = (u16)(desc[0] | desc[1] << 8);
	base = desc[2] | (u32)desc[3] << 8 | (u32)desc[4] << 16 | (in->op32 ? (u32)desc[5] << 24 : 0);
	if (((modrm >> 3) & 7) == 2) {
		vmcs_writen(GUEST_GDTR_BASE, base);
		vmcs_write32(GUEST_GDTR_LIMIT, limit);
	} else {
		vm86_set_idtr(v, base, limit);
	}
	f = fake_exit(e, in->pos, 0);
	skip_instruction(&f);
	return EXIT_RESUME;
}

/* MOV to and from DR0-DR7 (0F 21, 0F 23): ModRM.mod is ignored, the operand is
 * a 32-bit register (SDM Vol. 2B MOV DR). DR0-3 and DR6 are the CPU's own
 * while the guest runs, DR7 lives in the VMCS. */
static bool emulate_mov_dr(struct vcpu *v, u8 op, u8 modrm)
{
	unsigned dr = (modrm >> 3) & 7;
	u64 *r = &(&v->regs.rax)[modrm & 7], val = *r & 0xffffffffull;

	if ((dr == 4 || dr == 5) && (guest_cr4() & CR4_DE))
		return false;
	dr = dr == 4 ? 6 : dr == 5 ? 7 : dr;
	if (op == 0x23) {
		switch (dr) {
		case 0: write_dr0(val); break;
		case 1: write_dr1(val); break;
		case 2: write_dr2(val); break;
		case 3: write_dr3(val); break;
		case 6: write_dr6(val | 0xffff0ff0ull); break;
		default: vmcs_writen(GUEST_DR7, val | 0x400); break;
		}
		return true;
	}
	switch (dr) {
	case 0: *r = read_dr0(); break;
	case 1: *r = read_dr1(); break;
	case 2: *r = read_dr2(); break;
	case 3: *r = read_dr3(); break;
	case 6: *r = read_dr6() & 0xffffffffull; break;
	default: *r = vmcs_readn(GUEST_DR7) & 0xffffffffull; break;
	}
	return true;
}

/* The 0F instructions; *ours false: none of them (a #GP of the guest's own). */
static enum exit_action emulate_0f(struct vcpu *v, struct vmexit *e, struct rm_insn *in,
				   bool *ours)
{
	u8 op, modrm;
	struct vmexit f;

	if (!next_byte(in, &op))
		return EXIT_ENDED;
	switch (op) {
	case 0x06:  /* CLTS */
		f = fake_exit(e, in->pos, 2u << 4);
		return handle_cr_access(v, &f);
	case 0x08: case 0x09:  /* INVD, WBINVD: guest memory is coherent already */
		f = fake_exit(e, in->pos, 0);
		skip_instruction(&f);
		return EXIT_RESUME;
	case 0x20: case 0x22:  /* MOV r32, CRn / MOV CRn, r32: always 32-bit registers */
		if (!next_byte(in, &modrm))
			return EXIT_ENDED;
		if (op == 0x20 && (((modrm >> 3) & 7) == 0 || ((modrm >> 3) & 7) == 4)) {
			(&v->regs.rax)[modrm & 7] = ((modrm >> 3) & 7) == 0 ? guest_cr0() & 0xffffffffull :
								      guest_cr4() & 0xffffffffull;
			f = fake_exit(e, in->pos, 0);
			skip_instruction(&f);
			return EXIT_RESUME;
		}
		f = fake_exit(e, in->pos, ((modrm >> 3) & 7) | (op == 0x20 ? 1u : 0u) << 4 |
					     (u64)(modrm & 7) << 8);
		return handle_cr_access(v, &f);
	case 0x21: case 0x23:
		if (!next_byte(in, &modrm))
			return EXIT_ENDED;
		if (!emulate_mov_dr(v, op, modrm)) {
			inject_ud(v);
			return EXIT_RESUME;
		}
		f = fake_exit(e, in->pos, 0);
		skip_instruction(&f);
		return EXIT_RESUME;
	case 0x01:
		if (!next_byte(in, &modrm))
			return EXIT_ENDED;
		if (((modrm >> 3) & 7) == 2 || ((modrm >> 3) & 7) == 3)
			return emulate_lgdt_lidt(v, e, in, modrm);
		if (((modrm >> 3) & 7) == 6) {  /* LMSW r/m16 */
			u16 src;
			u64 la;

			if ((modrm >> 6) == 3) {
				src = (u16)gpr_get(v, modrm & 7);
			} else if (!modrm_address(v, in, modrm, &la) || !vm86_access(v, la, &src, 2, 0)) {
				guest_end(v->g, 0, "real mode: LMSW operand not in RAM");
				return EXIT_ENDED;
			}
			f = fake_exit(e, in->pos, 3u << 4 | (u64)src << 16);
			return handle_cr_access(v, &f);
		}
		break;
	}
	*ours = false;
	return EXIT_ENDED;
}

static enum exit_action realmode_gp(struct vcpu *v, struct vmexit *e)
{
	struct rm_insn in = { .seg = -1 };
	u64 cs = vmcs_readn(GUEST_CS_BASE), ip = vmcs_readn(GUEST_RIP) & 0xffff;
	enum exit_action a = EXIT_ENDED;
	bool ours = true;
	struct guest_event ev;
	u8 op;

	while (in.len < MAX_INSN && vm86_access(v, cs + ((ip + in.len) & 0xffff), &in.bytes[in.len], 1,
					   GACC_FETCH))
		in.len++;
	for (;;) {
		if (!next_byte(&in, &op))
			goto unknown;
		if (op == 0x66) in.op32 = !in.op32;
		else if (op == 0x67) in.addr32 = !in.addr32;
		else if (op == 0x26) in.seg = SEG_ES;
		else if (op == 0x2e) in.seg = SEG_CS;
		else if (op == 0x36) in.seg = SEG_SS;
		else if (op == 0x3e) in.seg = SEG_DS;
		else if (op == 0x64) in.seg = SEG_FS;
		else if (op == 0x65) in.seg = SEG_GS;
		else if (op != 0xf2 && op != 0xf3 && op != 0xf0) break;
	}
	switch (op) {
	case 0xf4: {  /* HLT */
		struct vmexit f = fake_exit(e, in.pos, 0);

		a = handle_hlt(v, &f);
		break;
	}
	case 0xe4: case 0xe5: case 0xe6: case 0xe7:
	case 0xec: case 0xed: case 0xee: case 0xef:
		a = emulate_in_out(v, e, &in, op);
		break;
	case 0xcd: case 0xcc: case 0xce: {  /* INT n, INT3, INTO: through the IVT */
		u8 n = 3;

		if (op == 0xcd && !next_byte(&in, &n))
			goto unknown;
		if (op == 0xce) {
			n = 4;
			if (!(vmcs_readn(GUEST_RFLAGS) & X86_FLAG_OF)) {
				struct vmexit f = fake_exit(e, in.pos, 0);

				skip_instruction(&f);
				a = EXIT_RESUME;
				break;
			}
		}
		ev = (struct guest_event){ .valid = true, .type = TYPE_SW_INTERRUPT, .vector = n,
					   .insn_len = in.pos };
		a = realmode_deliver(v, &ev) ? EXIT_RESUME : EXIT_ENDED;
		break;
	}
	case 0x0f:
		a = emulate_0f(v, e, &in, &ours);
		break;
	default:
		ours = false;
		break;
	}
	if (ours)
		return a;
unknown:
	guest_end(v->g, 0, "real mode under shadow paging: #GP at %04x:%04llx (%02x %02x %02x %02x) "
		  "is not emulated; an access beyond 64 KiB (big real mode) cannot run in "
		  "virtual-8086 mode", vmcs_read16(GUEST_CS_SELECTOR), (unsigned long long)ip,
		  in.bytes[0], in.bytes[1], in.bytes[2], in.bytes[3]);
	return EXIT_ENDED;
}

enum exit_action realmode_exception(struct vcpu *v, struct vmexit *e, u32 vector, u32 error)
{
	struct guest_event ev = { .valid = true, .type = TYPE_HW_EXCEPTION, .vector = (u8)vector };

	(void)error;
	/* INT n faults while the CPU delivers it (the IDT limit is 0), so the
	 * exit reports that delivery as cut short: it is emulated here instead. */
	v->event.valid = false;
	v->delivering = false;
	if (vector == 13)
		return realmode_gp(v, e);
	/* A #DB exit leaves DR6 alone and reports its bits in the qualification
	 * (SDM 28.2.1): the guest's handler reads them from DR6. */
	if (vector == 1)
		write_dr6(read_dr6() | (e->qualification & 0x600f));
	/* Faults restart their instruction, traps (#DB single step, #BP, #OF)
	 * return after it: GUEST_RIP is either, as the exit left it. */
	return realmode_deliver(v, &ev) ? EXIT_RESUME : EXIT_ENDED;
}
