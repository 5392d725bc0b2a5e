/*
 * A guest: its vCPUs, its memory, its devices and its statistics, as every
 * layer above sees it. Guests come from GRUB modules (core/loader.c), run
 * round-robin (core/run.c) on VMX (vmx/vcpu.c) and end with a status the
 * final report prints. Devices (devices/) and the memory virtualization
 * (vmx/mmu.h: EPT or shadow) keep their state behind the pointers below.
 */
#ifndef GUEST_GUEST_H
#define GUEST_GUEST_H

#include "arch/x86/multiboot2.h"
#include "arch/x86/machine.h"
#include "arch/x86/percpu.h"
#include "arch/x86/spinlock.h"
#include "shadow/gwalk.h"

#define GUEST_NAME_MAX 24
#define MAX_GUESTS BOOT_MAX_MODULES
#define EXIT_REASON_COUNT 70   /* VM exit statistics, by basic exit reason */
#define EXIT_HISTORY 8
#define GUEST_INSN_KINDS 64   /* >= X86_NR_INSN_KINDS (checked in vmx/emulate.c) */

struct guest_devices;
struct mmu_ops;

/* GPRs in hardware encoding order (the emulator indexes them), then CR2.
 * RSP lives in the VMCS; its slot here is synchronised around emulation. */
struct guest_regs {
	u64 rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi;
	u64 r8, r9, r10, r11, r12, r13, r14, r15;
	u64 cr2;
};

enum guest_mmu { MMU_EPT, MMU_SHADOW };

struct guest_config {
	char name[GUEST_NAME_MAX];
	u64 mem;              /* bytes of guest RAM */
	unsigned mmu;         /* enum guest_mmu */
	char args[BOOT_CMDLINE_MAX];  /* passed to the guest's own command line */
	unsigned selftest;    /* 1: start with invalid guest state (tests entry failures) */
	u64 shadow_pages;     /* mmu=shadow: its limit of shadow page tables (0: from mem) */
	unsigned reclaim;     /* mmu=shadow: enum shadow_reclaim_policy */
	u64 scan_ms;          /* page-ageing scan period in ms of guest time, 0 = off */
	unsigned scan_pages;  /* mmu=ept ageing: 0 2m (split where used), 1 4k everywhere */
	unsigned flood;       /* mmu=shadow: write-flood detector, 0 on, 1 off */
	unsigned flood_trace; /* mmu=shadow: flood detector debug trace, 0 off, 1 on */
	unsigned fastpath;    /* mmu=shadow: fault fast path (struct shadow_options), 0 on, 1 off */
	unsigned fastemul;    /* mmu=shadow: emulator translations from the shadow, 0 on, 1 off */
	unsigned prefetch;    /* mmu=shadow: prefetch of accessed neighbours, 0 on, 1 off */
	unsigned unsync;      /* mmu=shadow: out-of-sync leaf tables, 0 on, 1 off */
	unsigned largepages;  /* mmu=shadow: 2 MiB sptes for guest large pages, 0 on, 1 off */
	u64 timeout_ms;       /* end it after this much time (0: the hypervisor's guest_timeout_ms) */
	u64 vcpus;            /* virtual CPUs, 1..GUEST_MAX_VCPUS */
};

/* Guest RAM (guest/memory.c): zeroed frames, 2 MiB runs where possible. */
struct guest_memory {
	u64 size;         /* bytes, a multiple of 2 MiB */
	u64 *page_hpa;    /* host-physical address of each 4 KiB guest page */
	struct guest_mem walker;  /* the page-table walker's view of it */
};

/*
 * An event for the next VM entry (vmx/event.c): one whose delivery an exit
 * cut short, an exception the hypervisor raises, or what the two merge into
 * (SDM 6.15). type and vector are as in the VM-entry interruption field.
 */
struct guest_event {
	bool valid;
	u8 type, vector;
	bool has_error;
	u32 error_code;
	u32 insn_len;         /* software interrupts and exceptions: to re-execute */
};

enum guest_state {
	GUEST_LIVE,
	GUEST_DONE,
};

#define GUEST_MAX_VCPUS 8   /* xAPIC flat logical destinations name 8 CPUs (SDM 11.6.2.2) */

#define VCPU_OUTSIDE_GUEST 0
#define VCPU_IN_GUEST 1
#define VCPU_REQ_TLB_FLUSH BIT(0)   /* flush its TLB tags (VPID and EPTP) before entering */

enum vcpu_state {
	VCPU_RUNNABLE,
	VCPU_HALTED,     /* HLT with interrupts enabled: waits for its next event */
	VCPU_WAIT_SIPI,  /* an AP before its start-up IPI, or after an INIT (SDM 9.4.4) */
};

/*
 * One virtual CPU of a guest: its VMCS and everything a real CPU keeps per
 * logical processor (registers, FPU, MSRs, the event being delivered, its
 * local APIC, which is g->dev's lapic[index]). index is also its APIC ID;
 * vCPU 0 is the bootstrap processor. Each vCPU is scheduled on its own
 * (core/run.c), so two vCPUs of a guest may run at once on two CPUs.
 */
struct vcpu {
	struct guest *g;
	int index;
	enum vcpu_state state;   /* changed by whoever holds lock (below) */
	bool halted_if_off;      /* VCPU_HALTED with RFLAGS.IF = 0: an interrupt does not wake it */
	bool yield_soon;         /* it woke a sibling that waits for a CPU: give up the rest of its slice */

	u8 *vmcs;
	bool launched;        /* VMRESUME next; VMCLEAR (vcpu_put) clears it */
	u16 vpid;

	/*
	 * Several CPUs. lock: held by the CPU that runs the vCPU for its whole
	 * slice. running_on: that CPU, -1 when none (core/run.c, under its
	 * run-queue lock). host_cpu: whose host state its VMCS holds; last_cpu:
	 * where its TLB tags may live (vmx/vcpu.c).
	 */
	spinlock_t lock;
	int running_on;
	int host_cpu, last_cpu;
	/*
	 * Remote TLB shootdown (vmx/vcpu.c, KVM's request protocol): mode says
	 * whether it is in VMX non-root operation now (VCPU_IN_GUEST), entries
	 * counts its VM entries, requests holds VCPU_REQ_* bits another CPU set
	 * and it handles before its next entry.
	 */
	u32 mode, requests, entries;
	struct guest_regs regs;
	u8 *fpu_state;        /* XSAVE/FXSAVE area, switched with the vCPU */
	u64 dr[4], dr6;       /* debug registers VM entry/exit do not switch */
	u64 xcr0;
	/* MSRs the hypervisor never uses itself: loaded for whichever vCPU runs
	 * (vmx/msr.c). Others live in VMCS guest-state fields. */
	struct {
		u64 star, lstar, cstar, sfmask, kernel_gs_base, tsc_aux, tsc_adjust;
		u64 misc_enable, mtrr_def_type;  /* emulated only (msr_init_guest) */
	} msr;

	/* Events (vmx/event.c). delivering: the last exit interrupted the delivery
	 * of an event (IDT-vectoring information valid), which is in event. */
	struct guest_event event;
	bool delivering;
	u8 last_irq_vector;
	u64 last_irq_rip;     /* where the last external interrupt was injected */
};

struct guest {
	int id;
	struct guest_config cfg;
	enum guest_state state;
	/* End of life: exit status as isa-debug-exit reports it ((code<<1)|1),
	 * or 0 when killed, with the reason. */
	u32 exit_status;
	char end_reason[256];
	bool ending;          /* guest_end() has begun (its vCPUs stop at their next exit) */
	/* Called once by guest_end(), set by whoever runs the guest (core/run.c):
	 * flushes its console, says why it ended and prints its last exits. */
	void (*on_end)(struct guest *g);
	/* Set by core/run.c too: v has something new to look at (an interrupt,
	 * INIT or SIPI, its guest's end, a TLB flush): a sleeping v is woken
	 * and one running on another CPU is made to exit at once. */
	void (*kick)(struct vcpu *v);

	int nr_vcpus;         /* vcpu[0..nr_vcpus-1] are in use (cfg.vcpus) */
	struct vcpu vcpu[GUEST_MAX_VCPUS];
	bool entered;         /* a vCPU has run at least once */
	/* The device models (all but each vCPU's local APIC state, which is
	 * also behind it) are shared: dev_lock serialises every access to them
	 * (devices/devices.c). stat_lock: the figures below, which vCPUs
	 * running at once add to. */
	spinlock_t dev_lock, stat_lock;

	struct guest_memory mem;
	/* Memory virtualization: EPT (vmx/mmu_ept.c) or shadow paging
	 * (vmx/mmu_shadow.c), chosen from cfg.mmu; data is the side's own. */
	const struct mmu_ops *mmu;
	void *mmu_data;
	struct guest_ageing *ageing;  /* scan_ms=N: page ageing state (vmx/ageing.c) */

	struct guest_devices *dev;  /* device models (devices/devices.c) */

	/*
	 * Time. A guest's clock (its TSC, and the PIT that counts on it) stops
	 * while it is runnable but none of its vCPUs has a CPU, so each guest
	 * sees the machine as if it had it alone; it runs on while the guest
	 * halts. guest TSC = host TSC + tsc_offset (the VMCS TSC offset of
	 * every vCPU). vcpus_running: how many have a CPU now (core/run.c).
	 */
	u64 tsc_offset;
	u64 waiting_since;    /* host TSC when it became runnable but not running */
	int vcpus_running;
	u64 run_tsc;          /* host ticks spent in the guest */
	u64 used_tsc;         /* ... and in the hypervisor on its behalf: what its time limit counts */

	/* What it did lately, to say so if its time runs out (vmx/watchdog.c): figures
	 * at the start of the current window of used time, and the last full window. */
	struct guest_window {
		u64 used_tsc, run_tsc, irqs, exits[EXIT_REASON_COUNT];
	} window_start, last_window;
	u64 guest_tsc_start, guest_tsc_end;  /* its clock at first entry and at its end */

	/* The last exits, printed when the guest is killed (newest last). */
	struct {
		u32 reason;
		u64 qualification, rip;
		int vcpu;
	} recent_exits[EXIT_HISTORY];
	u32 recent_next;

	/* Statistics read by the final report, hypercalls and benchmarks. */
	u64 exit_count[EXIT_REASON_COUNT];
	u64 exit_tsc[EXIT_REASON_COUNT];  /* hypervisor ticks spent per exit reason */
	u64 emulated[GUEST_INSN_KINDS];  /* emulated instructions by kind */
	u64 unhandled_io;
	u64 refused_msrs;
	u64 slices_on[SMP_MAX_CPUS];  /* time slices its vCPUs got on each CPU (core/run.c) */
	u64 remote_flushes;   /* guest-wide TLB flushes with several vCPUs (vmx/vcpu.c) */
	u64 injected_irqs;
};

/* Add to one of a guest's figures: its vCPUs may count at once on two CPUs. */
static inline u64 guest_stat_add(u64 *figure, u64 n)
{
	return __atomic_fetch_add(figure, n, __ATOMIC_RELAXED);
}

/* End a guest: it is not run again. exit_status 0 means killed. */
void guest_end(struct guest *g, u32 exit_status, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* The guest's TSC now: its clock (host TSC + tsc_offset). */
u64 guest_tsc(const struct guest *g);

#endif
