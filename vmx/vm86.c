/*
 * Real mode without unrestricted guest (no EPT: shadow paging) VM entry needs CR0.PE
 * and PG set (SDM 26.3.1.1), so real mode runs as virtual-8086 mode, as
 * KVM's enter_rmode does: RFLAGS.VM with IOPL 3 (CLI, STI, PUSHF, POPF,
 * IRET run natively), each segment with base = selector << 4, limit 0xffff
 * and DPL 3 (SDM 27.3.1.2), the identity shadow of paging off, a TR that
 * is never used for a stack switch, and the IDT limit 0, so INT n faults
 * instead of reading the real-mode IVT as gates. Every exception exits:
 * the #GP of the instructions virtual-8086 mode forbids (HLT, IN/OUT,
 * INT n, MOV CR, LGDT/LIDT, LMSW, CLTS) is emulated, and interrupts and
 * exceptions are delivered as real mode does (SDM Vol. 3A 20.1.4: FLAGS,
 * CS, IP pushed, IF/TF/AC cleared, CS:IP from the IVT). Limits of a
 * 16-byte-unaligned or beyond-64-KiB ("big real mode") segment cannot be
 * held: an unaligned base ends the guest when it enters real mode, and an
 * access beyond 64 KiB ends it at the #GP, saying so.
 */
#include "vmx/vm86.h"
#include "vmx/mmu.h"
#include "vmx/vmcs.h"
#include "arch/x86/cpu.h"

#define AR_REAL_CODE 0x9b   /* present, S, execute/read, accessed; 16-bit, byte granular */
#define AR_REAL_DATA 0x93   /* present, S, read/write, accessed */
#define REAL_LIMIT 0xffff

#define AR_DB (1u << 14)      /* default operation size / big */
#define AR_VM86 0xf3        /* present, S, read/write, accessed, DPL 3 (SDM 27.3.1.2) */
#define AR_TSS32_BUSY 0x8b
#define RFLAGS_IOPL (3ull << 12)
#define RFLAGS_RF_BIT (1ull << 16)
#define MAX_INSN 15


static const struct {
	enum vmcs_field sel, base, limit, ar;
	const char *name;
} segs[SEG_COUNT] = {
	{ GUEST_ES_SELECTOR, GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR_BYTES, "ES" },
	{ GUEST_CS_SELECTOR, GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES, "CS" },
	{ GUEST_SS_SELECTOR, GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR_BYTES, "SS" },
	{ GUEST_DS_SELECTOR, GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR_BYTES, "DS" },
	{ GUEST_FS_SELECTOR, GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR_BYTES, "FS" },
	{ GUEST_GS_SELECTOR, GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR_BYTES, "GS" },
};

/* What virtual-8086 mode changes and the guest must get back when it leaves
 * real mode. Per vCPU: each is in real mode or not on its own. */
static struct rmode_state {
	bool vm86;
	u64 iopl;                   /* the guest's RFLAGS.IOPL (the CPU runs with 3) */
	u16 tr_sel;
	u64 tr_base, idtr_base;     /* the guest's IDTR: the CPU's has limit 0 */
	u32 tr_limit, tr_ar, idtr_limit;
	u32 exception_bitmap;
} rmode_of[MAX_GUESTS][GUEST_MAX_VCPUS];

static struct rmode_state *rmode(struct vcpu *v)
{
	return &rmode_of[v->g->id][v->index];
}

bool realmode_vm86(struct vcpu *v)
{
	return rmode(v)->vm86;
}

u64 vm86_seg_base(unsigned s)
{
	return vmcs_read_checked(segs[s].base, __func__);
}

static u64 seg_read(unsigned s, int what)
{
	enum vmcs_field f = what == 0 ? segs[s].sel : what == 1 ? segs[s].base :
			    what == 2 ? segs[s].limit : segs[s].ar;

	return vmcs_read_checked(f, __func__);
}

static void seg_write(unsigned s, u16 sel, u64 base, u32 limit, u32 ar)
{
	vmcs_write_checked(segs[s].sel, sel, __func__);
	vmcs_write_checked(segs[s].base, base, __func__);
	vmcs_write_checked(segs[s].limit, limit, __func__);
	vmcs_write_checked(segs[s].ar, ar, __func__);
}

static bool vm86_enter(struct vcpu *v)
{
	struct rmode_state *st = rmode(v);
	u64 rflags = vmcs_readn(GUEST_RFLAGS);

	/* Virtual-8086 mode runs 16-bit code on a 16-bit stack: real mode left
	 * with a 32-bit CS or SS (D/B set, as after clearing PE without loading
	 * 16-bit segments first) would run differently, so it is refused. */
	if ((seg_read(SEG_CS, 3) | seg_read(SEG_SS, 3)) & AR_DB) {
		guest_end(v->g, 0, "real mode under shadow paging: CR0.PE cleared with a 32-bit %s "
			  "(D/B set) at %04llx:%llx; it runs as virtual-8086 mode, which has only "
			  "16-bit code and stacks", (seg_read(SEG_CS, 3) & AR_DB) ? "code segment" :
			  "stack segment", (unsigned long long)seg_read(SEG_CS, 0),
			  (unsigned long long)vmcs_readn(GUEST_RIP));
		return false;
	}
	/* A segment cache virtual-8086 mode can hold: base = selector << 4.
	 * One left by protected mode with a 16-byte-aligned base below 1 MiB
	 * gets the selector that names it (as KVM's fix_rmode_seg). */
	for (unsigned s = 0; s < SEG_COUNT; s++) {
		u64 base = seg_read(s, 1);
		u16 sel = (u16)seg_read(s, 0);

		if (base != (u64)sel << 4) {
			if ((base & 0xf) || base > 0xffff0) {
				guest_end(v->g, 0, "real mode under shadow paging: %s base %#llx is not "
					  "selector << 4 and no selector names it (virtual-8086 mode "
					  "cannot hold it)", segs[s].name, (unsigned long long)base);
				return false;
			}
			sel = (u16)(base >> 4);
		}
		seg_write(s, sel, (u64)sel << 4, REAL_LIMIT, AR_VM86);
	}
	st->iopl = rflags & RFLAGS_IOPL;
	vmcs_writen(GUEST_RFLAGS, rflags | RFLAGS_VM | RFLAGS_IOPL);
	st->tr_sel = vmcs_read16(GUEST_TR_SELECTOR);
	st->tr_base = vmcs_readn(GUEST_TR_BASE);
	st->tr_limit = vmcs_read32(GUEST_TR_LIMIT);
	st->tr_ar = vmcs_read32(GUEST_TR_AR_BYTES);
	vmcs_write16(GUEST_TR_SELECTOR, 0);
	vmcs_writen(GUEST_TR_BASE, 0);
	vmcs_write32(GUEST_TR_LIMIT, 0x67);
	vmcs_write32(GUEST_TR_AR_BYTES, AR_TSS32_BUSY);
	st->idtr_base = vmcs_readn(GUEST_IDTR_BASE);
	st->idtr_limit = vmcs_read32(GUEST_IDTR_LIMIT);
	vmcs_write32(GUEST_IDTR_LIMIT, 0);
	st->exception_bitmap = vmcs_read32(EXCEPTION_BITMAP);
	vmcs_write32(EXCEPTION_BITMAP, ~0u);
	st->vm86 = true;
	return true;
}

/* Back to protected mode: the segment caches are what real mode leaves
 * (DPL 0, data read/write, code execute/read, 16-bit). */
static void vm86_leave(struct vcpu *v)
{
	struct rmode_state *st = rmode(v);
	u64 rflags = vmcs_readn(GUEST_RFLAGS) & ~(RFLAGS_VM | RFLAGS_IOPL);

	for (unsigned s = 0; s < SEG_COUNT; s++)
		vmcs_write_checked(segs[s].ar, s == SEG_CS ? AR_REAL_CODE : AR_REAL_DATA, __func__);
	vmcs_writen(GUEST_RFLAGS, rflags | st->iopl);
	vmcs_write16(GUEST_TR_SELECTOR, st->tr_sel);
	vmcs_writen(GUEST_TR_BASE, st->tr_base);
	vmcs_write32(GUEST_TR_LIMIT, st->tr_limit);
	vmcs_write32(GUEST_TR_AR_BYTES, st->tr_ar);
	vmcs_writen(GUEST_IDTR_BASE, st->idtr_base);
	vmcs_write32(GUEST_IDTR_LIMIT, st->idtr_limit);
	vmcs_write32(EXCEPTION_BITMAP, st->exception_bitmap);
	st->vm86 = false;
}

bool realmode_sync(struct vcpu *v, u64 cr0)
{
	bool real = !(cr0 & CR0_PE);

	/* The guest's CR4.VME/PVI mean nothing in real mode; on the CPU they would
	 * make INT n and CLI/STI use a TSS this virtual-8086 mode does not have. */
	if (real)
		vmcs_writen(GUEST_CR4, vmcs_readn(GUEST_CR4) & ~(CR4_VME | CR4_PVI));
	if (real == rmode(v)->vm86)
		return true;
	if (real)
		return vm86_enter(v);
	vm86_leave(v);
	return true;
}

/* ---- guest memory, real-mode addressing ---------------------------------------- */

bool vm86_access(struct vcpu *v, u64 la, void *buf, unsigned len, u32 access)
{
	struct x86_fault fault;
	u64 unassigned;

	return mmu_linear_access(v, la & 0xffffffffull, buf, len, access, &fault, &unassigned) ==
	       X86_CB_OK;
}

/* FLAGS as the guest sees them: its IOPL, no VM. */
static u64 visible_rflags(struct vcpu *v)
{
	return (vmcs_readn(GUEST_RFLAGS) & ~(RFLAGS_VM | RFLAGS_IOPL)) | rmode(v)->iopl;
}

/* Push FLAGS, CS, IP and take CS:IP from the IVT (SDM Vol. 3A 20.1.4). */
static bool deliver_vector(struct vcpu *v, unsigned vector, u16 ip)
{
	struct rmode_state *st = rmode(v);
	u16 sp = (u16)vmcs_readn(GUEST_RSP), frame[3], target[2];
	u64 ss = vmcs_readn(GUEST_SS_BASE), rsp = vmcs_readn(GUEST_RSP);
	u64 rflags = vmcs_readn(GUEST_RFLAGS);

	if (vector * 4 + 3 > st->idtr_limit) {
		guest_end(v->g, 0, "real mode: interrupt %u beyond the IVT limit %#x (shutdown)", vector,
			  st->idtr_limit);
		return false;
	}
	frame[0] = ip;
	frame[1] = vmcs_read16(GUEST_CS_SELECTOR);
	frame[2] = (u16)visible_rflags(v);
	if (!vm86_access(v, st->idtr_base + vector * 4, target, 4, GACC_IMPLICIT)) {
		guest_end(v->g, 0, "real mode: IVT entry %u at %#llx is not in RAM", vector,
			  (unsigned long long)(st->idtr_base + vector * 4));
		return false;
	}
	/* Three words; each wraps within the 64 KiB stack segment. */
	for (int i = 2; i >= 0; i--) {
		sp = (u16)(sp - 2);
		if (!vm86_access(v, ss + sp, &frame[i], 2, GACC_WRITE)) {
			guest_end(v->g, 0, "real mode: delivering interrupt %u: stack %#llx not in RAM",
				  vector, (unsigned long long)(ss + sp));
			return false;
		}
	}
	/* Both: exit handlers' RSP is v->regs.rsp (written back before the next
	 * entry), and event_entry() runs after that write-back. */
	v->regs.rsp = (rsp & ~0xffffull) | sp;
	vmcs_writen(GUEST_RSP, v->regs.rsp);
	vmcs_writen(GUEST_RFLAGS, rflags & ~(RFLAGS_IF | RFLAGS_TF | RFLAGS_AC | RFLAGS_RF_BIT));
	seg_write(SEG_CS, target[1], (u64)target[1] << 4, REAL_LIMIT, AR_VM86);
	vmcs_writen(GUEST_RIP, target[0]);
	return true;
}

bool realmode_deliver(struct vcpu *v, struct guest_event *ev)
{
	u16 ip = (u16)vmcs_readn(GUEST_RIP);

	ev->valid = false;
	if (ev->type >= TYPE_SW_INTERRUPT)  /* INT n and the like return after themselves */
		ip = (u16)(ip + ev->insn_len);
	/* Real mode pushes no error code. */
	return deliver_vector(v, ev->vector, ip);
}


void vm86_set_idtr(struct vcpu *v, u64 base, u32 limit)
{
	rmode(v)->idtr_base = base;
	rmode(v)->idtr_limit = limit;
}
