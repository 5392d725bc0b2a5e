/*
 * VMX bring-up, capabilities and the control words (SDM Vol. 3C ch. 24-26,
 * Appendix A). Control words are computed once, at vmx_init(), from the
 * capability MSRs and the named "wanted" masks below.
 */
#ifndef VMX_VMX_H
#define VMX_VMX_H

#include "lib/types.h"

/* Pin-based controls (SDM 25.6.1) */
#define PIN_EXTINT_EXITING BIT(0)
#define PIN_NMI_EXITING BIT(3)
#define PIN_VIRTUAL_NMIS BIT(5)
#define PIN_PREEMPTION_TIMER BIT(6)

/* Primary processor-based controls (SDM 25.6.2) */
#define CPU_INTR_WINDOW_EXITING BIT(2)
#define CPU_USE_TSC_OFFSETTING BIT(3)
#define CPU_HLT_EXITING BIT(7)
#define CPU_INVLPG_EXITING BIT(9)
#define CPU_MWAIT_EXITING BIT(10)
#define CPU_RDPMC_EXITING BIT(11)
#define CPU_RDTSC_EXITING BIT(12)
#define CPU_CR3_LOAD_EXITING BIT(15)
#define CPU_CR3_STORE_EXITING BIT(16)
#define CPU_CR8_LOAD_EXITING BIT(19)
#define CPU_CR8_STORE_EXITING BIT(20)
#define CPU_TPR_SHADOW BIT(21)
#define CPU_NMI_WINDOW_EXITING BIT(22)
#define CPU_MOV_DR_EXITING BIT(23)
#define CPU_UNCOND_IO_EXITING BIT(24)
#define CPU_USE_IO_BITMAPS BIT(25)
#define CPU_MONITOR_TRAP_FLAG BIT(27)
#define CPU_USE_MSR_BITMAPS BIT(28)
#define CPU_MONITOR_EXITING BIT(29)
#define CPU_PAUSE_EXITING BIT(30)
#define CPU_SECONDARY_CONTROLS BIT(31)

/* Secondary processor-based controls (SDM 25.6.2) */
#define SEC_VIRTUALIZE_APIC BIT(0)
#define SEC_ENABLE_EPT BIT(1)
#define SEC_DESC_TABLE_EXITING BIT(2)
#define SEC_ENABLE_RDTSCP BIT(3)
#define SEC_ENABLE_VPID BIT(5)
#define SEC_WBINVD_EXITING BIT(6)
#define SEC_UNRESTRICTED_GUEST BIT(7)
#define SEC_ENABLE_INVPCID BIT(12)
#define SEC_ENABLE_PML BIT(17)

/* VM-exit controls (SDM 25.7.1) */
#define EXIT_SAVE_DEBUG_CONTROLS BIT(2)
#define EXIT_HOST_ADDR_SPACE_SIZE BIT(9)
#define EXIT_ACK_INTR_ON_EXIT BIT(15)
#define EXIT_SAVE_IA32_PAT BIT(18)
#define EXIT_LOAD_IA32_PAT BIT(19)
#define EXIT_SAVE_IA32_EFER BIT(20)
#define EXIT_LOAD_IA32_EFER BIT(21)
#define EXIT_SAVE_PREEMPTION_TIMER BIT(22)

/* VM-entry controls (SDM 25.8.1) */
#define ENTRY_LOAD_DEBUG_CONTROLS BIT(2)
#define ENTRY_IA32E_MODE_GUEST BIT(9)
#define ENTRY_LOAD_IA32_PAT BIT(14)
#define ENTRY_LOAD_IA32_EFER BIT(15)

/* IA32_VMX_EPT_VPID_CAP (SDM A.10) */
#define EPT_CAP_WB BIT(14)
#define EPT_CAP_2MB_PAGES BIT(16)
#define EPT_CAP_INVEPT BIT(20)
#define EPT_CAP_AD_BITS BIT(21)
#define EPT_CAP_INVEPT_SINGLE BIT(25)
#define EPT_CAP_INVEPT_ALL BIT(26)
#define VPID_CAP_INVVPID BIT(32)
#define VPID_CAP_INVVPID_SINGLE BIT(41)
#define VPID_CAP_INVVPID_ALL BIT(42)
#define EPT_CAP_WALK_LENGTH_4 BIT(6)

/* One set of control words: the base that every guest gets. */
struct vmx_controls {
	u32 pin, cpu, secondary, exit, entry;
};

struct vmx_caps {
	u32 revision_id;
	struct vmx_controls base;   /* required + wanted-and-available bits */
	/* Bits per-guest code may flip, each known to be settable/clearable. */
	u32 cpu_may_set, cpu_may_clear, sec_may_set, sec_may_clear, entry_may_set,
	    entry_may_clear;
	u64 ept_vpid_cap;
	bool ept, ept_ad, unrestricted, vpid, invpcid, rdtscp;
	bool virtual_nmis;          /* virtual NMIs and NMI-window exiting: guest NMIs */
	bool ins_outs_info;         /* INS/OUTS exits give instruction information (A.1 bit 54) */
	u32 preemption_timer_shift;  /* timer ticks = TSC >> shift (A.6) */
	u64 cr0_fixed0, cr0_fixed1, cr4_fixed0, cr4_fixed1;
};

extern struct vmx_caps vmx_caps;

/* Check, enable and enter VMX operation. false + message if impossible. */
bool vmx_init(void);
/* VMX on another CPU after vmx_init() on the first: false (and why, logged) if
 * it lacks VMX or its capabilities differ. */
bool vmx_init_cpu(void);
void vmx_print_capabilities(void);

/* TLB invalidation with checked results. */
bool vmx_invept_single(u64 eptp);
bool vmx_invvpid_single(u16 vpid);
/* Flush gva (or, when the CPU cannot flush one address, all) of vpid. */
bool vmx_invvpid_address(u16 vpid, u64 gva, bool one_address);

#endif
