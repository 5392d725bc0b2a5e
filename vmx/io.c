/*
 * Port I/O exits (unconditional I/O exiting). The exit qualification
 * (SDM Vol. 3C Table 28-5) gives port, size, direction and string/rep;
 * the device layer's port map (devices/devices.c) routes them. Unassigned ports read
 * all-ones and ignore writes, and are counted.
 *
 * INS/OUTS run in arch/x86/strio.c: address size and segment from the
 * VM-exit instruction information (SDM 28.2.5, Table 28-8) where the CPU
 * gives it, else from the instruction's prefixes; memory as the guest's own
 * accesses (vmx/mmu.c: its paging, shadowed tables kept in step, emulated
 * MMIO); at most a page of data per exit, the guest resuming at the same
 * instruction until its count is done.
 */
#include "vmx/io.h"
#include "vmx/cr.h"
#include "vmx/event.h"
#include "vmx/mmu.h"
#include "vmx/s3.h"
#include "vmx/vmcs.h"
#include "vmx/vmx.h"
#include "devices/devices.h"
#include "arch/x86/cpu.h"
#include "arch/x86/log.h"
#include "arch/x86/strio.h"

#define DEBUG_EXIT_PORT 0xf4
#define MAX_INSN_LEN 15

static enum exit_action port_out_debug_exit(struct vcpu *v, u32 value)
{
	struct guest *g = v->g;

	guest_end(g, (value << 1) | 1, "debug-exit port written with %#x", value);
	return EXIT_ENDED;
}

/* One element of an I/O instruction; false ends the guest. */
enum exit_action io_one(struct vcpu *v, u16 port, unsigned size, bool in, u32 *value)
{
	struct guest *g = v->g;

	if (!in && port == DEBUG_EXIT_PORT)
		return port_out_debug_exit(v, *value & (size == 4 ? ~0u : (1u << (8 * size)) - 1));
	if (!devices_port_io(v, port, size, in, value)) {
		if (guest_stat_add(&g->unhandled_io, 1) < 8)
			log_printf("hv", "%s: unassigned port %#x %s (%u bytes): %s", g->cfg.name, port,
				   in ? "read" : "written", size, in ? "reads all-ones" : "ignored");
		if (in)
			*value = size == 4 ? ~0u : (1u << (8 * size)) - 1;
	}
	return EXIT_RESUME;
}

/* ---- INS/OUTS ------------------------------------------------------------------ */

/* One string instruction's run in this exit. The page of the last element is
 * remembered, as a TLB would: one walk per page, not per element. */
struct strio_ctx {
	struct vcpu *v;
	u32 access;
	u64 page_la, page_gpa;  /* page_la ~0: nothing remembered */
	u64 unassigned;         /* the guest-physical address no one answered */
};

static enum x86_cb_status strio_mem(void *opaque, u64 la, void *buf, unsigned len, bool write,
				    struct x86_fault *fault)
{
	struct strio_ctx *c = opaque;
	u64 page = la & ~(u64)(PAGE_SIZE - 1), off = la & (PAGE_SIZE - 1);
	enum x86_cb_status st;

	if (off + len > PAGE_SIZE)  /* across two pages: rare, the general path */
		return mmu_linear_access(c->v, la, buf, len, c->access, fault, &c->unassigned);
	if (page != c->page_la) {
		st = mmu_linear_to_gpa(c->v, la, c->access, &c->page_gpa, fault, &c->unassigned);
		if (st != X86_CB_OK)
			return st;
		c->page_la = page;
		c->page_gpa &= ~(u64)(PAGE_SIZE - 1);
	}
	if (buf && !mmu_gpa_copy(c->v, c->page_gpa | off, buf, len, write)) {
		c->unassigned = c->page_gpa | off;
		return X86_CB_UNHANDLED;
	}
	return X86_CB_OK;
}

static bool strio_port(void *opaque, u16 port, unsigned size, bool in, u32 *value)
{
	return io_one(((struct strio_ctx *)opaque)->v, port, size, in, value) == EXIT_RESUME;
}

static const struct x86_strio_ops strio_ops = { .mem = strio_mem, .port = strio_port };

static const struct {
	enum vmcs_field base, limit, ar;
} seg_fields[X86_NR_SEGS] = {
	[X86_SEG_ES] = { GUEST_ES_BASE, GUEST_ES_LIMIT, GUEST_ES_AR_BYTES },
	[X86_SEG_CS] = { GUEST_CS_BASE, GUEST_CS_LIMIT, GUEST_CS_AR_BYTES },
	[X86_SEG_SS] = { GUEST_SS_BASE, GUEST_SS_LIMIT, GUEST_SS_AR_BYTES },
	[X86_SEG_DS] = { GUEST_DS_BASE, GUEST_DS_LIMIT, GUEST_DS_AR_BYTES },
	[X86_SEG_FS] = { GUEST_FS_BASE, GUEST_FS_LIMIT, GUEST_FS_AR_BYTES },
	[X86_SEG_GS] = { GUEST_GS_BASE, GUEST_GS_LIMIT, GUEST_GS_AR_BYTES },
};

/*
 * Address size and segment: the instruction information (bits 9:7 address
 * size 16/32/64, bits 17:15 the segment, OUTS only), else the prefixes.
 * false: the guest was ended or a fault injected.
 */
static bool string_operands(struct vcpu *v, struct vmexit *e, struct x86_strio *s)
{
	struct guest *g = v->g;
	u8 insn[MAX_INSN_LEN];
	struct x86_fault fault;
	u64 unassigned;
	u32 info;

	if (vmx_caps.ins_outs_info) {
		info = vmcs_read32(VMX_INSTRUCTION_INFO);
		s->addr_size = (u8)(2u << ((info >> 7) & 7));
		s->seg = s->in ? X86_SEG_ES : (enum x86_seg)((info >> 15) & 7);
		if (s->addr_size <= 8 && s->seg < X86_NR_SEGS)
			return true;
		guest_end(g, 0, "I/O exit with instruction information %#x at RIP %#llx "
			  "(hypervisor bug)", info, (unsigned long long)e->guest_rip);
		return false;
	}
	switch (mmu_linear_access(v, vmcs_readn(GUEST_CS_BASE) + e->guest_rip, insn,
				  e->instruction_len, GACC_FETCH, &fault, &unassigned)) {
	case X86_CB_OK:
		if (x86_strio_decode(insn, e->instruction_len, s->mode, &s->addr_size, &s->seg))
			return true;
		break;
	case X86_CB_FAULT:  /* the code changed under us: the guest sees the fault */
		if (fault.vector == 14)
			v->regs.cr2 = fault.address;
		inject_exception(v, fault.vector, fault.has_error_code, fault.error_code);
		return false;
	case X86_CB_UNHANDLED:
		break;
	}
	guest_end(g, 0, "cannot read the string I/O instruction at RIP %#llx",
		  (unsigned long long)e->guest_rip);
	return false;
}

static enum exit_action string_io(struct vcpu *v, struct vmexit *e, u16 port, unsigned size,
				  bool in, bool rep)
{
	struct guest *g = v->g;
	u64 rflags = vmcs_readn(GUEST_RFLAGS), elements;
	u32 cs_ar = vmcs_read32(GUEST_CS_AR_BYTES);
	struct x86_strio s = {
		.port = port, .size = (u8)size, .in = in, .rep = rep, .down = rflags & RFLAGS_DF,
		.mode = x86_mode_from_cs(guest_efer(v) & EFER_LMA, cs_ar & BIT(13), cs_ar & BIT(14)),
		.real_mode = !(guest_cr0() & CR0_PE) || (rflags & RFLAGS_VM),
	};
	struct x86_strio_regs r = { v->regs.rcx, v->regs.rsi, v->regs.rdi };
	struct strio_ctx ctx = { .v = v, .access = in ? GACC_WRITE : 0, .page_la = ~0ull };
	struct x86_fault fault;
	enum x86_strio_status st;

	if (!string_operands(v, e, &s))
		return g->state == GUEST_DONE ? EXIT_ENDED : EXIT_RESUME;
	s.seg_base = vmcs_read_checked(seg_fields[s.seg].base, __func__);
	s.seg_limit = (u32)vmcs_read_checked(seg_fields[s.seg].limit, __func__);
	s.seg_ar = (u32)vmcs_read_checked(seg_fields[s.seg].ar, __func__);
	/* A page of data per exit; one element under single-step, which traps
	 * after each iteration (SDM 18.3.1.4). */
	st = x86_strio_run(&s, &r, rflags & RFLAGS_TF ? 1 : PAGE_SIZE / size, &strio_ops, &ctx,
			   &fault, &elements);
	v->regs.rcx = r.rcx;
	v->regs.rsi = r.rsi;
	v->regs.rdi = r.rdi;
	switch (st) {
	case X86_STRIO_DONE:
		skip_instruction(e);
		return EXIT_RESUME;
	case X86_STRIO_MORE:  /* RIP stays: the guest runs the rest */
		end_interrupt_shadow();
		single_step_trap();
		return EXIT_RESUME;
	case X86_STRIO_FAULT:
		if (fault.vector == 14)
			v->regs.cr2 = fault.address;
		inject_exception(v, fault.vector, fault.has_error_code, fault.error_code);
		return EXIT_RESUME;
	case X86_STRIO_UNHANDLED:
		if (ctx.unassigned == ~0ull)
			guest_end(g, 0, "string I/O on port %#x at RIP %#llx: the page walk for its "
				  "memory operand leaves RAM", port, (unsigned long long)e->guest_rip);
		else
			guest_end(g, 0, "string I/O on port %#x at RIP %#llx: access to guest-physical "
				  "%#llx, which is neither RAM nor a device", port,
				  (unsigned long long)e->guest_rip,
				  (unsigned long long)ctx.unassigned);
		return EXIT_ENDED;
	case X86_STRIO_STOPPED:
		break;
	}
	return EXIT_ENDED;
}

enum exit_action handle_io(struct vcpu *v, struct vmexit *e)
{
	unsigned size = (unsigned)(e->qualification & 7) + 1;
	bool in = e->qualification & BIT(3), string = e->qualification & BIT(4);
	bool rep = e->qualification & BIT(5);
	u16 port = (u16)(e->qualification >> 16);
	u64 mask = size == 4 ? 0xffffffffull : (1ull << (8 * size)) - 1;
	u32 value = (u32)(v->regs.rax & mask);
	enum exit_action a;

	if (string)
		return string_io(v, e, port, size, in, rep);
	a = io_one(v, port, size, in, &value);
	if (a != EXIT_RESUME)
		return a;
	/* IN EAX zero-extends into RAX, like any 32-bit register write. */
	if (in)
		v->regs.rax = size == 4 ? value : (v->regs.rax & ~mask) | (value & mask);
	skip_instruction(e);
	if (!in && devices_enter_sleep(v->g))  /* SLP_EN for S3 (devices/acpi_pm.c) */
		return realmode_s3_sleep(v);
	return EXIT_RESUME;
}
