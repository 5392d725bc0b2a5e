/*
 * x86 instruction emulator for the few memory instructions a hypervisor has to
 * finish on the guest's behalf:
 *   - a write to a write-protected guest page table under shadow paging (the
 *     guest kernel updating a PTE: mov, xchg, lock cmpxchg, lock and/or/btr...,
 *     rep stos when a page-table page is cleared);
 *   - an access to an emulated MMIO page (e.g. the xAPIC page).
 *
 * Pure logic: it never touches guest memory itself. It fetches, reads and
 * writes through callbacks that receive *linear* addresses (segmentation
 * applied, paging not), so the caller does the guest page walk, the split of
 * accesses that cross a page boundary and the MMIO dispatch.
 *
 * All-or-nothing: the caller's registers are updated only if every memory
 * callback succeeded; a fault or an unhandled access leaves them untouched.
 * Memory is modified at most once per call (one write, or one cmpxchg that
 * swapped), always as the last memory operation, so a fault never leaves a
 * half-done instruction behind.
 *
 * Instructions (any operand size 1/2/4/8, any addressing form, 16/32/64-bit
 * code; prefixes 66 67 F0 F2 F3 REX and segment overrides):
 *   mov 88-8B C6/0 C7/0 A0-A3, movzx/movsx 0F B6 B7 BE BF, movsxd 63 (64-bit),
 *   xchg 86 87, cmpxchg 0F B0 B1, cmpxchg8b/16b 0F C7/1, xadd 0F C0 C1,
 *   add or adc sbb and sub xor cmp (00-3D, 80-83), inc/dec FE/FF /0 /1,
 *   not/neg F6/F7 /2 /3, test 84 85 F6/F7 /0 (/1), bt bts btr btc
 *   (0F A3 AB B3 BB, 0F BA /4-7), stos AA AB, movs A4 A5, lods AC AD,
 *   cmps A6 A7 and scas AE AF (rep, repe, repne), mul/imul/div/idiv
 *   F6/F7 /4-7, imul 0F AF 69 6B, bsf/bsr 0F BC BD, shld/shrd 0F A4 A5 AC AD,
 *   cmovcc 0F 40-4F, setcc 0F 90-9F, smsw 0F 01 /4, push 50-57 68 6A FF /6,
 *   pop 58-5F 8F /0, ret C3 C2, leave C9, enter C8 (level 0), call/jmp near
 *   FF /2 /4, call/jmp far FF /3 /5 (code segment targets), mov Sreg 8C 8E,
 *   ltr 0F 00 /3.
 * Register-only forms of these are emulated too. SSE/MMX moves, memory forms
 * only (through the vreg callbacks): movups/movupd/movss/movsd 0F 10 11,
 * movaps/movapd 0F 28 29, movntps/pd 0F 2B, movd/movq 0F 6E 7E, movq mm,
 * movdqa, movdqu 0F 6F 7F, movq 66 0F D6, movntq/movntdq 0F E7. Anything
 * else is X86_EMU_UNHANDLED (X86_REASON_OPCODE).
 *
 * Choices where the SDM leaves room (checked against an Intel CPU by
 * tests/unit/test_emulate_diff.c):
 *   - and/or/xor/test clear AF; bt* change only CF (OF SF AF PF unchanged);
 *   - a failed cmpxchg writes nothing back (no memory write, no zero-extension
 *     of a 32-bit register destination), nor does a failed cmpxchg8b/16b;
 *   - memory RMWs with LOCK, xchg and every cmpxchg* use the cmpxchg callback
 *     and recompute if memory changed meanwhile (X86_EMU_RETRY after 16 lost
 *     races); unlocked RMWs use read + write;
 *   - F2 means rep for stos/movs/lods; F2/F3 on other instructions are ignored
 *     (XACQUIRE/XRELEASE hints); F6/F7 /1 is test, as on Intel and AMD;
 *   - rep lods reads the page's elements in one read callback (AL/AX/EAX/RAX
 *     gets the last); rep movs with overlapping source and destination does one
 *     element per call, as the element order then matters; cmps/scas read
 *     element by element (they stop at the first mismatch);
 *   - flags the SDM leaves undefined: bsf/bsr, mul/imul and div/idiv change
 *     only the defined ones (ZF; CF OF; none); shld/shrd leave AF alone and
 *     set OF as for a count of 1; a 16-bit shld/shrd by 17..31 shifts
 *     through dest:src:dest as Intel CPUs do; bsf/bsr of 0 leave the
 *     destination unchanged; F3 0F BC/BD (tzcnt/lzcnt) are not emulated;
 *   - stack width outside 64-bit mode follows sys.ss_big (SS.B); enter with a
 *     nesting level other than 0 and far jumps through gates or TSSs are not
 *     emulated, nor far returns; descriptor-table reads and the accessed/busy
 *     bit updates use sys_copy (implicit supervisor accesses, SDM 4.6).
 * Not done: segment limit/rights checks (the hardware checked the access that
 * faulted), alignment checks (#AC), single-step (#DB when RFLAGS.TF is set:
 * the caller's job), 5-level paging canonical form (4-level assumed).
 *
 * Usage:
 *	struct x86_emu_ctxt *c = <per-vCPU storage, it holds a 4 KiB scratch>;
 *	c->regs = <guest GPRs, RIP, RFLAGS>;
 *	c->mode = x86_mode_from_cs(efer_lma, cs_l, cs_d);
 *	c->seg_base[X86_SEG_DS] = ...;   (all six)
 *	c->ops = &my_ops; c->opaque = vcpu;
 *	switch (x86_emulate(c, &res)) {
 *	case X86_EMU_DONE:      copy c->regs back to the guest; break;
 *	case X86_EMU_EXCEPTION: inject res.fault; break;
 *	case X86_EMU_RETRY:     re-enter the guest, it re-executes the instruction;
 *	case X86_EMU_UNHANDLED: unprotect the page and let the guest retry natively.
 *	}
 */
#ifndef ARCH_X86_EMULATE_H
#define ARCH_X86_EMULATE_H

#include "lib/types.h"

/* General-purpose registers in hardware encoding order (ModRM.reg/rm, SIB). */
enum x86_gpr {
	X86_RAX, X86_RCX, X86_RDX, X86_RBX, X86_RSP, X86_RBP, X86_RSI, X86_RDI,
	X86_R8, X86_R9, X86_R10, X86_R11, X86_R12, X86_R13, X86_R14, X86_R15,
	X86_NR_GPRS
};

struct x86_regs {
	u64 gpr[X86_NR_GPRS];
	u64 rip;
	u64 rflags;
};

/* RFLAGS bits the emulator reads or writes (SDM Vol. 1 3.4.3). */
#define X86_FLAG_CF BIT(0)
#define X86_FLAG_PF BIT(2)
#define X86_FLAG_AF BIT(4)
#define X86_FLAG_ZF BIT(6)
#define X86_FLAG_SF BIT(7)
#define X86_FLAG_DF BIT(10)
#define X86_FLAG_OF BIT(11)
#define X86_FLAGS_ARITH (X86_FLAG_CF | X86_FLAG_PF | X86_FLAG_AF | X86_FLAG_ZF | \
			 X86_FLAG_SF | X86_FLAG_OF)

/* Exception vectors the emulator raises itself (callbacks may report any). */
#define X86_VEC_DE 0
#define X86_VEC_UD 6
#define X86_VEC_TS 10
#define X86_VEC_NP 11
#define X86_VEC_SS 12
#define X86_VEC_GP 13
#define X86_VEC_PF 14

/* Default operand/address size of the code being emulated. */
enum x86_cpu_mode {
	X86_MODE_16,	/* real mode, vm86, or protected mode with CS.D = 0 */
	X86_MODE_32,	/* protected/compatibility mode with CS.D = 1 */
	X86_MODE_64,	/* EFER.LMA = 1 and CS.L = 1 */
};

/* From EFER.LMA and the CS descriptor's L and D bits (SDM Vol. 3A 5.2.1). */
enum x86_cpu_mode x86_mode_from_cs(bool efer_lma, bool cs_l, bool cs_d);

/* Segment registers in encoding order (SDM Vol. 2A 3.1.1.3, Sreg); LDTR and TR for
 * load_seg (the order of the VMCS guest segment fields). */
enum x86_seg {
	X86_SEG_ES, X86_SEG_CS, X86_SEG_SS, X86_SEG_DS, X86_SEG_FS, X86_SEG_GS,
	X86_NR_SEGS,
	X86_SEG_LDTR = X86_NR_SEGS,
	X86_SEG_TR,
};

/* A segment register as loaded from a descriptor. */
struct x86_segment {
	u16 selector;
	u64 base;
	u32 limit;		/* in bytes (granularity applied) */
	u32 ar;			/* VMX access-rights layout: type 3:0, S 4, DPL 6:5, P 7,
				 * AVL 12, L 13, D/B 14, G 15, unusable 16 */
};
#define X86_AR_UNUSABLE BIT(16)

/* Vector registers of the SSE/MMX moves. */
enum x86_vreg {
	X86_VREG_XMM,		/* xmm0-15: 16 bytes */
	X86_VREG_MM,		/* mm0-7: 8 bytes */
};

/* What a callback says about one access. */
enum x86_cb_status {
	X86_CB_OK,
	X86_CB_FAULT,		/* *fault filled: the emulator reports it for injection */
	X86_CB_UNHANDLED,	/* the caller cannot do this access (e.g. unknown MMIO) */
};

/* An exception to inject into the guest. */
struct x86_fault {
	u8 vector;
	bool has_error_code;
	u32 error_code;
	u64 address;		/* #PF: the faulting linear address (CR2) */
};

/*
 * Memory callbacks. `linear` is the linear address of the first byte; an
 * access may cross a page boundary (the callback splits it). Lengths: fetch
 * <= 15, read/write <= 4096 (rep string ops), cmpxchg 1, 2, 4, 8 or 16.
 * All values are little-endian byte arrays.
 */
struct x86_emu_ops {
	enum x86_cb_status (*fetch)(void *opaque, u64 linear, void *buf, unsigned int len,
				    struct x86_fault *fault);
	enum x86_cb_status (*read)(void *opaque, u64 linear, void *buf, unsigned int len,
				   struct x86_fault *fault);
	enum x86_cb_status (*write)(void *opaque, u64 linear, const void *buf,
				    unsigned int len, struct x86_fault *fault);
	/*
	 * Atomically: if memory == *expected, store *desired and set *swapped;
	 * otherwise copy the current memory value into *expected and clear
	 * *swapped. Used for locked read-modify-writes, xchg and cmpxchg*.
	 */
	enum x86_cb_status (*cmpxchg)(void *opaque, u64 linear, void *expected,
				      const void *desired, unsigned int len, bool *swapped,
				      struct x86_fault *fault);
	/*
	 * Optional (NULL: the instructions that need them are UNHANDLED).
	 * sys_copy: an implicit supervisor access (descriptor tables), read or
	 * write. load_seg: put a checked segment (or TR) into the register;
	 * called last, it must not fail for a checked descriptor.
	 * vreg_read/vreg_write: an xmm/mm register (n < 16 / 8), 16 or 8
	 * bytes; any MMX instruction also puts the x87 unit in MMX state
	 * (SDM Vol. 1 9.5.1: TOS = 0, all tags valid), so vreg_write(MM, n,
	 * NULL) means "mm n was read, enter MMX state". Called after every
	 * memory access succeeded.
	 */
	enum x86_cb_status (*sys_copy)(void *opaque, u64 linear, void *buf, unsigned int len,
				       bool write, struct x86_fault *fault);
	enum x86_cb_status (*load_seg)(void *opaque, enum x86_seg seg,
				       const struct x86_segment *s);
	enum x86_cb_status (*vreg_read)(void *opaque, enum x86_vreg kind, unsigned int n,
					u8 *val);
	enum x86_cb_status (*vreg_write)(void *opaque, enum x86_vreg kind, unsigned int n,
					 const u8 *val);
	/* Optional: load CR3 (a task switch to a 32-bit TSS). */
	enum x86_cb_status (*load_cr3)(void *opaque, u64 cr3, struct x86_fault *fault);
};

/* System state a few instructions read (smsw, mov Sreg, ltr, jmp far, stack). */
struct x86_emu_sys {
	u64 cr0;
	u8 cpl;
	bool efer_lma;			/* IA-32e mode (16-byte system descriptors) */
	bool ss_big;			/* SS.B: 32-bit stack outside 64-bit mode */
	u16 sel[X86_NR_SEGS];		/* selectors (mov Ew, Sreg) */
	u64 gdt_base, ldt_base;
	u32 gdt_limit, ldt_limit;	/* ldt_limit 0 with ldt_base 0: no LDT */
};

#define X86_EMU_SCRATCH_SIZE 4096

struct x86_emu_ctxt {
	struct x86_regs regs;		/* in: guest state; out: updated on DONE only */
	enum x86_cpu_mode mode;
	/*
	 * Segment bases. Outside 64-bit mode all six are used (limits and access
	 * rights are not checked: hardware checked them when the access faulted).
	 * In 64-bit mode only FS and GS bases count (SDM Vol. 3A 3.2.4).
	 */
	u64 seg_base[X86_NR_SEGS];
	struct x86_emu_sys sys;
	const struct x86_emu_ops *ops;
	void *opaque;			/* passed to every callback */
	/* Private: buffer for rep stos/movs/lods, here to keep stacks small. */
	u8 scratch[X86_EMU_SCRATCH_SIZE];
};

enum x86_emu_status {
	X86_EMU_DONE,		/* registers updated (RIP too, unless a rep is unfinished) */
	X86_EMU_UNHANDLED,	/* see result.reason; nothing changed */
	X86_EMU_EXCEPTION,	/* inject result.fault; registers unchanged */
	X86_EMU_RETRY,		/* lost a cmpxchg race too often: re-enter the guest */
};

enum x86_emu_reason {
	X86_REASON_NONE,
	X86_REASON_OPCODE,	/* opcode (or ModRM.reg extension) not supported */
	X86_REASON_MODE,	/* opcode means something else in this mode (63 = ARPL) */
	X86_REASON_CALLBACK,	/* a callback returned X86_CB_UNHANDLED */
	X86_REASON_CONTENDED,	/* RETRY: memory kept changing under a locked op */
	X86_NR_REASONS
};

/* Instruction families, for statistics and for the caller's policy. */
enum x86_insn_kind {
	X86_INSN_NONE,		/* not decoded (unhandled opcode or fetch fault) */
	X86_INSN_MOV, X86_INSN_MOVZX, X86_INSN_MOVSX, X86_INSN_MOVSXD,
	X86_INSN_XCHG, X86_INSN_CMPXCHG, X86_INSN_CMPXCHG8B, X86_INSN_CMPXCHG16B,
	X86_INSN_XADD,
	X86_INSN_ADD, X86_INSN_OR, X86_INSN_ADC, X86_INSN_SBB,	/* order = ALU opcode */
	X86_INSN_AND, X86_INSN_SUB, X86_INSN_XOR, X86_INSN_CMP,	/* bits 5:3 */
	X86_INSN_TEST, X86_INSN_INC, X86_INSN_DEC, X86_INSN_NOT, X86_INSN_NEG,
	X86_INSN_BT, X86_INSN_BTS, X86_INSN_BTR, X86_INSN_BTC,
	X86_INSN_STOS, X86_INSN_MOVS, X86_INSN_LODS,
	X86_INSN_CMPS, X86_INSN_SCAS,
	X86_INSN_MUL, X86_INSN_IMUL, X86_INSN_DIV, X86_INSN_IDIV,	/* order = F7 /4-7 */
	X86_INSN_BSF, X86_INSN_BSR, X86_INSN_SHLD, X86_INSN_SHRD,
	X86_INSN_CMOV, X86_INSN_SETCC, X86_INSN_SMSW,
	X86_INSN_PUSH, X86_INSN_POP, X86_INSN_RET, X86_INSN_LEAVE, X86_INSN_ENTER,
	X86_INSN_CALL, X86_INSN_JMP, X86_INSN_JMP_FAR, X86_INSN_CALL_FAR,
	X86_INSN_MOV_SREG, X86_INSN_LTR, X86_INSN_VMOV,
	X86_NR_INSN_KINDS
};

struct x86_emu_result {
	enum x86_emu_status status;
	enum x86_emu_reason reason;	/* UNHANDLED / RETRY */
	struct x86_fault fault;		/* EXCEPTION */
	enum x86_insn_kind kind;
	u8 insn_len;			/* bytes decoded (<= 15), 0 if the fetch failed */
	bool lock;			/* LOCK prefix present */
	bool has_mem;			/* the instruction has a memory operand */
	u64 mem_linear;			/* its linear address (string ops: first dest. element) */
	u8 mem_size;			/* bytes per access (string ops: per element) */
	u64 write_linear;		/* lowest byte written... */
	u32 bytes_written;		/* ...and how many (0: memory not modified) */
	u64 reps;			/* string ops: elements processed by this call */
};

/*
 * Decode and execute the instruction at ctxt->regs.rip. Returns (and stores
 * in res->status) the outcome. On X86_EMU_DONE ctxt->regs holds the new state.
 *
 * rep stos/movs/lods: one call does as many elements as fit, in the page of
 * the first destination element (and of the first source element), clamped
 * to the count register, with one read and/or one write callback for the whole
 * range; if the count is not exhausted RIP stays on the instruction so the
 * guest resumes it natively.
 */
enum x86_emu_status x86_emulate(struct x86_emu_ctxt *ctxt, struct x86_emu_result *res);

/* What starts a task switch: VMX exit qualification bits 31:30 (SDM Vol. 3C Table 28-2). */
enum x86_task_source {
	X86_TASK_CALL,		/* call far to a TSS or task gate */
	X86_TASK_IRET,		/* iret with EFLAGS.NT = 1: back to the previous task */
	X86_TASK_JMP,		/* jmp far to a TSS or task gate */
	X86_TASK_GATE,		/* an interrupt or exception through a task gate in the IDT */
};

struct x86_task_switch {
	u16 selector;			/* in: the new task's TSS */
	enum x86_task_source source;
	bool has_error;			/* an exception with an error code through a task gate: */
	u32 error_code;			/* pushed on the new task's stack */
	struct x86_segment tr;		/* the current task register */
	bool committed;			/* out: the old task was left (see x86_task_switch) */
};

/*
 * Hardware task switch (SDM Vol. 3A 8.3) outside IA-32e mode, 32-bit and 16-bit TSSs.
 * ctxt as for x86_emulate; ctxt->regs.rip is the EIP the old task resumes at (the next
 * instruction for call, jmp, iret and software interrupts; the faulting one for a fault).
 * The old task's registers are saved in its TSS, busy bits and the back link set as the
 * source requires, then TR, CR3 (load_cr3), the registers, LDTR and the segments are loaded
 * from the new TSS through the callbacks, and an error code is pushed.
 * Faults found before the old task is left (the new TSS descriptor: #GP, #NP, #TS) change
 * nothing; later ones (the new task's LDT or segments: #TS, #NP, #SS) are raised in the new
 * task, with t->committed set and ctxt->regs already the new task's. The caller sets CR0.TS,
 * clears DR7's local enables and, for iret, unblocks NMIs. UNHANDLED in IA-32e mode.
 */
enum x86_emu_status x86_task_switch(struct x86_emu_ctxt *ctxt, struct x86_task_switch *t,
				    struct x86_emu_result *res);

/* Short names for logs and statistics ("cmpxchg", "opcode"...). */
const char *x86_insn_kind_name(enum x86_insn_kind kind);
const char *x86_emu_reason_name(enum x86_emu_reason reason);

#endif
