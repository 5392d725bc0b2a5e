/*
 * INS and OUTS, the string forms of port I/O (SDM Vol. 2B INS, OUTS, REP),
 * as a hypervisor finishes them after an I/O exit. Pure logic over callbacks
 * (like arch/x86/emulate.c), so host tests run it:
 *   - the count is CX, ECX or RCX and the index SI/DI, ESI/EDI or RSI/RDI by
 *     the address size, and they wrap at it (a 16-bit write keeps the upper
 *     bits, a 32-bit one zero-extends, as for any register write);
 *   - INS writes ES:DI (no override), OUTS reads DS:SI or the override's
 *     segment; outside 64-bit mode the segment's limit and rights are checked
 *     (#GP(0), #SS(0) for SS), in 64-bit mode only FS and GS have a base and
 *     the address must be canonical;
 *   - an element may cross a page: the memory callback takes it whole; INS
 *     asks first whether the write can be made, then reads the port, so a
 *     fault loses no input;
 *   - at most max_elements per call: with count left, the caller resumes the
 *     guest at the same instruction, which runs on (interrupts, the scheduler
 *     and single-step traps get their turn between calls); a fault leaves the
 *     count and index registers as they were at the faulting element.
 */
#ifndef ARCH_X86_STRIO_H
#define ARCH_X86_STRIO_H

#include "arch/x86/emulate.h"

struct x86_strio {
	u16 port;
	u8 size;                /* bytes per element: 1, 2 or 4 */
	bool in, rep, down;     /* INS (else OUTS); REP prefix; RFLAGS.DF */
	u8 addr_size;           /* 2, 4 or 8 bytes */
	enum x86_cpu_mode mode;
	bool real_mode;         /* real or virtual-8086 mode: no access-rights checks */
	enum x86_seg seg;       /* ES for INS; DS or the override for OUTS */
	u64 seg_base;
	u32 seg_limit;          /* in bytes (granularity applied) */
	u32 seg_ar;             /* access rights as VMX keeps them (SDM Table 25-2):
				 * type 3:0, S 4, P 7, D/B 14, unusable 16 */
};

/* The count, source and destination registers, in and out. */
struct x86_strio_regs {
	u64 rcx, rsi, rdi;
};

struct x86_strio_ops {
	/*
	 * One element at `linear` (len bytes, possibly across a page). INS calls
	 * it first with buf NULL (may this write be made? nothing is written),
	 * then with the data; OUTS reads into buf.
	 */
	enum x86_cb_status (*mem)(void *opaque, u64 linear, void *buf, unsigned int len,
				  bool write, struct x86_fault *fault);
	/* One port access; false: stop here (the guest was ended). */
	bool (*port)(void *opaque, u16 port, unsigned int size, bool in, u32 *value);
};

enum x86_strio_status {
	X86_STRIO_DONE,         /* no count left (or no REP): skip the instruction */
	X86_STRIO_MORE,         /* max_elements done, count left: re-execute it */
	X86_STRIO_FAULT,        /* *fault to raise; registers at the faulting element */
	X86_STRIO_UNHANDLED,    /* the memory callback could not make an access */
	X86_STRIO_STOPPED,      /* the port callback said stop */
};

/* Run up to max_elements (>= 1) iterations; *elements says how many were done. */
enum x86_strio_status x86_strio_run(const struct x86_strio *s, struct x86_strio_regs *r,
				    u64 max_elements, const struct x86_strio_ops *ops,
				    void *opaque, struct x86_fault *fault, u64 *elements);

/*
 * The address size and segment of INS/OUTS from its bytes (prefixes 26 2E
 * 36 3E 64 65 66 67 F0 F2 F3, REX in 64-bit mode, then 6C-6F), for CPUs
 * whose I/O exits give no instruction information. false: not INS/OUTS.
 */
bool x86_strio_decode(const u8 *insn, unsigned int len, enum x86_cpu_mode mode,
		      u8 *addr_size, enum x86_seg *seg);

#endif
