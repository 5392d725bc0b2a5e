/*
 * Running arch/x86/emulate.c on a guest: its memory callbacks translate
 * guest-linear addresses with the guest's own paging (vmx/mmu.c) and
 * store through mmu_store(), so a write to a shadowed guest page table
 * updates the shadow in place. Faults found on the way are injected as the
 * CPU would have raised them.
 */
#include <string.h>
#include "vmx/emulate.h"
#include "vmx/cr.h"
#include "vmx/event.h"
#include "vmx/mmu.h"
#include "vmx/vmcs.h"
#include "devices/devices.h"
#include "guest/fpu.h"
#include "guest/memory.h"
#include "mm/mm.h"
#include "arch/x86/emulate.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "arch/x86/log.h"

_Static_assert(X86_NR_INSN_KINDS <= GUEST_INSN_KINDS, "guest.emulated[] too small");

/* Per CPU: the emulator's context (it holds a 4 KiB buffer) and what the
 * callbacks note about the instruction being emulated. The boot CPU's is
 * here, the others' come from emulate_init_cpu(). */
struct emu_cpu {
	struct x86_emu_ctxt ctxt;
	u64 unassigned_gpa;       /* where the last unhandled access went, for the log */
	bool loaded_ss;           /* the instruction loaded SS: MOV-SS blocking follows */
	bool cr3_ended;           /* a task switch's CR3 load ended the guest */
};
static struct emu_cpu boot_emu;
static struct emu_cpu *emu_of[SMP_MAX_CPUS] = { &boot_emu };

static struct emu_cpu *this_emu(void)
{
	return emu_of[this_cpu_index()];
}

bool emulate_init_cpu(void)
{
	u64 pages = ALIGN_UP(sizeof(struct emu_cpu), PAGE_SIZE) / PAGE_SIZE;

	if (!emu_of[this_cpu_index()])
		emu_of[this_cpu_index()] = alloc_zeroed_pages(pages);
	return emu_of[this_cpu_index()] != NULL;
}

/*
 * Copy between a guest-linear range and buf through the MMU (vmx/mmu.c): every page is
 * translated before any byte moves, so a fault leaves memory as it was.
 */
static enum x86_cb_status linear_copy(struct vcpu *v, u64 la, void *buf, unsigned len,
				      u32 access, struct x86_fault *fault)
{
	u64 unassigned;
	enum x86_cb_status st = mmu_linear_access(v, la, buf, len, access, fault, &unassigned);

	if (st == X86_CB_UNHANDLED)
		this_emu()->unassigned_gpa = unassigned;
	return st;
}

static enum x86_cb_status cb_fetch(void *opaque, u64 la, void *buf, unsigned len,
				   struct x86_fault *fault)
{
	return linear_copy(opaque, la, buf, len, GACC_FETCH, fault);
}

static enum x86_cb_status cb_read(void *opaque, u64 la, void *buf, unsigned len,
				  struct x86_fault *fault)
{
	return linear_copy(opaque, la, buf, len, 0, fault);
}

static enum x86_cb_status cb_write(void *opaque, u64 la, const void *buf, unsigned len,
				   struct x86_fault *fault)
{
	return linear_copy(opaque, la, (void *)buf, len, GACC_WRITE, fault);
}

/* One vCPU per guest and the guest is stopped while we run, so compare and
 * store need no atomic instruction; the store still goes through the MMU. */
static enum x86_cb_status cb_cmpxchg(void *opaque, u64 la, void *expected, const void *desired,
				     unsigned len, bool *swapped, struct x86_fault *fault)
{
	u8 current[16];
	enum x86_cb_status st = linear_copy(opaque, la, current, len, 0, fault);

	if (st != X86_CB_OK)
		return st;
	*swapped = !memcmp(current, expected, len);
	if (!*swapped) {
		memcpy(expected, current, len);
		return X86_CB_OK;
	}
	return linear_copy(opaque, la, (void *)desired, len, GACC_WRITE, fault);
}

/* Descriptor tables: implicit supervisor accesses whatever the CPL (SDM 4.6). */
static enum x86_cb_status cb_sys_copy(void *opaque, u64 la, void *buf, unsigned len, bool write,
				      struct x86_fault *fault)
{
	return linear_copy(opaque, la, buf, len, GACC_IMPLICIT | (write ? GACC_WRITE : 0), fault);
}

/* VMCS fields of segment register n (ES..GS = 0..5, LDTR 6, TR 7): SDM Vol. 3D B.1.2. */
static enum x86_cb_status cb_load_seg(void *opaque, enum x86_seg seg, const struct x86_segment *s)
{
	unsigned n = (unsigned)seg;

	(void)opaque;
	vmcs_write_checked((enum vmcs_field)(GUEST_ES_SELECTOR + 2 * n), s->selector, __func__);
	vmcs_write_checked((enum vmcs_field)(GUEST_ES_BASE + 2 * n), s->base, __func__);
	vmcs_write_checked((enum vmcs_field)(GUEST_ES_LIMIT + 2 * n), s->limit, __func__);
	vmcs_write_checked((enum vmcs_field)(GUEST_ES_AR_BYTES + 2 * n), s->ar, __func__);
	if (seg == X86_SEG_SS)
		this_emu()->loaded_ss = true;
	return X86_CB_OK;
}

/* FXSAVE image layout (SDM Vol. 1 table 10-2). */
#define FX_FSW 2
#define FX_FTW 4
#define FX_MM(n) (32 + 16 * (n))
#define FX_XMM(n) (160 + 16 * (n))

static enum x86_cb_status cb_vreg_read(void *opaque, enum x86_vreg kind, unsigned n, u8 *val)
{
	u8 fx_area[512] __attribute__((aligned(16)));  /* FXSAVE image */

	(void)opaque;
	fpu_live_save(fx_area);
	if (kind == X86_VREG_MM)
		memcpy(val, fx_area + FX_MM(n), 8);
	else
		memcpy(val, fx_area + FX_XMM(n), 16);
	return X86_CB_OK;
}

static enum x86_cb_status cb_vreg_write(void *opaque, enum x86_vreg kind, unsigned n,
					const u8 *val)
{
	u8 fx_area[512] __attribute__((aligned(16)));  /* FXSAVE image */

	(void)opaque;
	fpu_live_save(fx_area);
	if (kind == X86_VREG_MM) {
		/* MMX state: TOS = 0, every tag valid; a written mm register's
		 * exponent field becomes all ones (SDM Vol. 1 9.5.1). */
		fx_area[FX_FSW + 1] &= (u8)~0x38;
		fx_area[FX_FTW] = 0xff;
		if (val) {
			memcpy(fx_area + FX_MM(n), val, 8);
			fx_area[FX_MM(n) + 8] = 0xff;
			fx_area[FX_MM(n) + 9] = 0xff;
		}
	} else {
		memcpy(fx_area + FX_XMM(n), val, 16);
	}
	fpu_live_load(fx_area);
	return X86_CB_OK;
}

/* CR3 from a 32-bit TSS: as MOV to CR3 (the MMU takes the new root). */
static enum x86_cb_status cb_load_cr3(void *opaque, u64 cr3, struct x86_fault *fault)
{
	struct vcpu *v = opaque;
	bool gp = false;

	if (!v->g->mmu->set_cr3(v, cr3, &gp)) {
		this_emu()->cr3_ended = true;
		return X86_CB_UNHANDLED;
	}
	if (gp) {
		*fault = (struct x86_fault){ .vector = 13, .has_error_code = true };
		return X86_CB_FAULT;
	}
	return X86_CB_OK;
}

static const struct x86_emu_ops guest_ops = {
	.fetch = cb_fetch,
	.read = cb_read,
	.write = cb_write,
	.cmpxchg = cb_cmpxchg,
	.sys_copy = cb_sys_copy,
	.load_seg = cb_load_seg,
	.vreg_read = cb_vreg_read,
	.vreg_write = cb_vreg_write,
	.load_cr3 = cb_load_cr3,
};

/* A fault the emulated instruction raised, delivered as the CPU would (#PF sets CR2). */
static void inject_emulated_fault(struct vcpu *v, const struct x86_fault *f)
{
	if (f->vector == 14)
		v->regs.cr2 = f->address;
	inject_exception(v, f->vector, f->has_error_code, f->error_code);
}

static void load_context(struct vcpu *v)
{
	static const enum vmcs_field bases[X86_NR_SEGS] = {
		GUEST_ES_BASE, GUEST_CS_BASE, GUEST_SS_BASE,
		GUEST_DS_BASE, GUEST_FS_BASE, GUEST_GS_BASE,
	};
	struct x86_emu_ctxt *emu = &this_emu()->ctxt;
	u32 cs = vmcs_read32(GUEST_CS_AR_BYTES);

	memcpy(emu->regs.gpr, &v->regs.rax, sizeof(emu->regs.gpr));
	emu->regs.rip = vmcs_readn(GUEST_RIP);
	emu->regs.rflags = vmcs_readn(GUEST_RFLAGS);
	emu->mode = x86_mode_from_cs(guest_efer(v) & EFER_LMA, cs & BIT(13), cs & BIT(14));
	for (int s = 0; s < X86_NR_SEGS; s++) {
		emu->seg_base[s] = vmcs_read_checked(bases[s], __func__);
		emu->sys.sel[s] = (u16)vmcs_read_checked((enum vmcs_field)(GUEST_ES_SELECTOR + 2 * s),
							 __func__);
	}
	emu->sys.cr0 = guest_cr0();
	emu->sys.cpl = (u8)guest_cpl();
	emu->sys.efer_lma = guest_efer(v) & EFER_LMA;
	emu->sys.ss_big = vmcs_read32(GUEST_SS_AR_BYTES) & BIT(14);
	emu->sys.gdt_base = vmcs_readn(GUEST_GDTR_BASE);
	emu->sys.gdt_limit = vmcs_read32(GUEST_GDTR_LIMIT);
	/* An unusable LDTR: no LDT (selectors with TI=1 then #GP). */
	emu->sys.ldt_base = 0;
	emu->sys.ldt_limit = 0;
	if (!(vmcs_read32(GUEST_LDTR_AR_BYTES) & X86_AR_UNUSABLE)) {
		emu->sys.ldt_base = vmcs_readn(GUEST_LDTR_BASE);
		emu->sys.ldt_limit = vmcs_read32(GUEST_LDTR_LIMIT);
	}
	emu->ops = &guest_ops;
	emu->opaque = v;
}

enum exit_action emulate_instruction(struct vcpu *v, struct vmexit *e, const char *why)
{
	struct guest *g = v->g;
	struct x86_emu_result res;
	struct emu_cpu *ec = this_emu();

	load_context(v);
	ec->unassigned_gpa = ~0ull;
	ec->loaded_ss = false;
	switch (x86_emulate(&ec->ctxt, &res)) {
	case X86_EMU_DONE: {
		/* Finishing an instruction ends STI/MOV-SS blocking; loading SS
		 * starts MOV-SS blocking (SDM Vol. 3C 25.4.2, table 25-3). */
		u32 intr = vmcs_read32(GUEST_INTERRUPTIBILITY_INFO) & ~3u;

		memcpy(&v->regs.rax, ec->ctxt.regs.gpr, sizeof(ec->ctxt.regs.gpr));
		vmcs_writen(GUEST_RIP, ec->ctxt.regs.rip);
		vmcs_writen(GUEST_RFLAGS, ec->ctxt.regs.rflags);
		vmcs_write32(GUEST_INTERRUPTIBILITY_INFO, intr | (ec->loaded_ss ? 2u : 0));
		if (res.kind < X86_NR_INSN_KINDS)
			guest_stat_add(&g->emulated[res.kind], 1);
		return EXIT_RESUME;
	}
	case X86_EMU_EXCEPTION:
		inject_emulated_fault(v, &res.fault);
		return EXIT_RESUME;
	case X86_EMU_RETRY:
		return EXIT_RESUME;
	case X86_EMU_UNHANDLED:
		if (g->mmu->unprotect_and_retry &&
		    g->mmu->unprotect_and_retry(g, e->guest_rip, e->qualification))
			return EXIT_RESUME;
		break;
	}
	if (ec->unassigned_gpa != ~0ull)
		guest_end(g, 0, "access to guest-physical %#llx, which is neither RAM nor a device, "
			  "at RIP %#llx", (unsigned long long)ec->unassigned_gpa,
			  (unsigned long long)e->guest_rip);
	else
		guest_end(g, 0, "cannot emulate the instruction at RIP %#llx (%s) to %s%s",
			  (unsigned long long)e->guest_rip, x86_emu_reason_name(res.reason), why,
			  g->mmu->unemulatable_note);
	return EXIT_ENDED;
}

#define DR7_LOCAL_ENABLES 0x155ull  /* L0-L3 and LE: cleared by a task switch (SDM 18.2.4) */

enum exit_action handle_task_switch(struct vcpu *v, struct vmexit *e)
{
	struct guest *g = v->g;
	struct x86_task_switch t = {
		.selector = (u16)e->qualification,
		.source = (enum x86_task_source)((e->qualification >> 30) & 3),
	};
	struct emu_cpu *ec = this_emu();
	struct x86_emu_ctxt *emu = &ec->ctxt;
	struct x86_emu_result res;
	u32 skip = e->instruction_len;
	bool gp = false;

	load_context(v);
	if (t.source == X86_TASK_GATE && !event_task_gate(v, &skip, &t.has_error, &t.error_code))
		skip = 0;
	/* The old task resumes after the instruction (call, jmp, iret, INT n), or at the
	 * interrupted or faulting one. */
	emu->regs.rip = e->guest_rip + skip;
	if (emu->mode != X86_MODE_32)
		emu->regs.rip &= 0xffff;
	t.tr = (struct x86_segment){
		.selector = vmcs_read16(GUEST_TR_SELECTOR), .base = vmcs_readn(GUEST_TR_BASE),
		.limit = vmcs_read32(GUEST_TR_LIMIT), .ar = vmcs_read32(GUEST_TR_AR_BYTES),
	};
	ec->cr3_ended = false;
	x86_task_switch(emu, &t, &res);
	if (ec->cr3_ended)
		return EXIT_ENDED;
	if (t.committed) {
		memcpy(&v->regs.rax, emu->regs.gpr, sizeof(emu->regs.gpr));
		vmcs_writen(GUEST_RIP, emu->regs.rip);
		vmcs_writen(GUEST_RFLAGS, emu->regs.rflags);
		vmcs_writen(GUEST_DR7, vmcs_readn(GUEST_DR7) & ~DR7_LOCAL_ENABLES);
		event_task_switched(v, t.source == X86_TASK_IRET);
		/* CR0.TS = 1 after every task switch (SDM 2.5). */
		if (!guest_set_control_regs(v, guest_cr0() | CR0_TS, guest_cr4(), guest_efer(v), &gp))
			return EXIT_ENDED;
	}
	switch (res.status) {
	case X86_EMU_DONE:
		return EXIT_RESUME;
	case X86_EMU_EXCEPTION:
		inject_emulated_fault(v, &res.fault);
		return EXIT_RESUME;
	default:
		break;
	}
	guest_end(g, 0, "task switch to TSS %#x at RIP %#llx cannot be emulated (%s)%s",
		  t.selector, (unsigned long long)e->guest_rip, x86_emu_reason_name(res.reason),
		  res.reason == X86_REASON_MODE ? ": task switches in IA-32e mode" : "");
	return EXIT_ENDED;
}
