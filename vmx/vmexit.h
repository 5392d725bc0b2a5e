/*
 * What a VM exit handler gets and returns: the basic exit reasons (SDM Vol.
 * 3D Appendix C), the exit's fields, and what the run loop does next.
 */
#ifndef VMX_VMEXIT_H
#define VMX_VMEXIT_H

#include "guest/guest.h"

enum exit_reason {
	EXIT_REASON_EXCEPTION_NMI = 0,
	EXIT_REASON_EXTERNAL_INTERRUPT = 1,
	EXIT_REASON_TRIPLE_FAULT = 2,
	EXIT_REASON_INIT = 3,
	EXIT_REASON_SIPI = 4,
	EXIT_REASON_INTERRUPT_WINDOW = 7,
	EXIT_REASON_NMI_WINDOW = 8,
	EXIT_REASON_TASK_SWITCH = 9,
	EXIT_REASON_CPUID = 10,
	EXIT_REASON_GETSEC = 11,
	EXIT_REASON_HLT = 12,
	EXIT_REASON_INVD = 13,
	EXIT_REASON_INVLPG = 14,
	EXIT_REASON_RDPMC = 15,
	EXIT_REASON_RDTSC = 16,
	EXIT_REASON_VMCALL = 18,
	EXIT_REASON_VMCLEAR = 19,
	EXIT_REASON_VMLAUNCH = 20,
	EXIT_REASON_VMPTRLD = 21,
	EXIT_REASON_VMPTRST = 22,
	EXIT_REASON_VMREAD = 23,
	EXIT_REASON_VMRESUME = 24,
	EXIT_REASON_VMWRITE = 25,
	EXIT_REASON_VMXOFF = 26,
	EXIT_REASON_VMXON = 27,
	EXIT_REASON_CR_ACCESS = 28,
	EXIT_REASON_DR_ACCESS = 29,
	EXIT_REASON_IO = 30,
	EXIT_REASON_RDMSR = 31,
	EXIT_REASON_WRMSR = 32,
	EXIT_REASON_ENTRY_FAIL_GUEST = 33,
	EXIT_REASON_ENTRY_FAIL_MSR = 34,
	EXIT_REASON_MWAIT = 36,
	EXIT_REASON_MTF = 37,
	EXIT_REASON_MONITOR = 39,
	EXIT_REASON_PAUSE = 40,
	EXIT_REASON_ENTRY_FAIL_MC = 41,
	EXIT_REASON_TPR_BELOW = 43,
	EXIT_REASON_APIC_ACCESS = 44,
	EXIT_REASON_GDTR_IDTR = 46,
	EXIT_REASON_LDTR_TR = 47,
	EXIT_REASON_EPT_VIOLATION = 48,
	EXIT_REASON_EPT_MISCONFIG = 49,
	EXIT_REASON_INVEPT = 50,
	EXIT_REASON_RDTSCP = 51,
	EXIT_REASON_PREEMPTION_TIMER = 52,
	EXIT_REASON_INVVPID = 53,
	EXIT_REASON_WBINVD = 54,
	EXIT_REASON_XSETBV = 55,
	EXIT_REASON_RDRAND = 57,
	EXIT_REASON_INVPCID = 58,
	EXIT_REASON_VMFUNC = 59,
	EXIT_REASON_RDSEED = 61,
	EXIT_REASON_XSAVES = 63,
	EXIT_REASON_XRSTORS = 64,
};

#define EXIT_REASON_FAILED_ENTRY BIT(31)

struct vmexit {
	u32 reason;          /* basic exit reason, bits 15:0 */
	u64 qualification;
	u32 instruction_len;
	u64 guest_rip;
	u64 tsc;             /* host TSC at the exit (handlers split their ticks by outcome) */
};

/* Interruption types (SDM Table 25-17). */
#define TYPE_EXTERNAL 0
#define TYPE_NMI 2
#define TYPE_HW_EXCEPTION 3
#define TYPE_SW_INTERRUPT 4
#define TYPE_PRIV_SW_EXCEPTION 5
#define TYPE_SW_EXCEPTION 6

/* What the run loop does after a handler. */
enum exit_action {
	EXIT_RESUME,   /* re-enter this guest */
	EXIT_YIELD,    /* switch to another guest (halted or slice over) */
	EXIT_ENDED,    /* the guest is done (guest_end was called) */
};

typedef enum exit_action (*exit_handler)(struct vcpu *v, struct vmexit *e);

#endif
