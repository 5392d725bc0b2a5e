/*
 * VMX bring-up (SDM Vol. 3C 24.6-24.8): CPUID and IA32_FEATURE_CONTROL
 * checks, CR0/CR4 fixed bits, the VMXON region, and the control words,
 * computed once from the (TRUE) capability MSRs (SDM A.3-A.5).
 */
#include <string.h>
#include "vmx/vmx.h"
#include "vmx/vmx_asm.h"
#include "vmx/vmcs.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"
#include "mm/mm.h"
#include "arch/x86/log.h"
#include "arch/x86/panic.h"

struct vmx_caps vmx_caps;

/*
 * What the hypervisor needs (required) and what it uses when present
 * (wanted). Bits that per-guest set-up toggles are listed separately and
 * only checked for being possible.
 */
#define PIN_REQUIRED (PIN_EXTINT_EXITING | PIN_NMI_EXITING | PIN_PREEMPTION_TIMER)
#define PIN_WANTED PIN_VIRTUAL_NMIS
#define CPU_REQUIRED (CPU_HLT_EXITING | CPU_UNCOND_IO_EXITING | CPU_MWAIT_EXITING | \
		      CPU_MONITOR_EXITING | CPU_RDPMC_EXITING | CPU_CR8_LOAD_EXITING | \
		      CPU_CR8_STORE_EXITING | CPU_SECONDARY_CONTROLS)
#define CPU_WANTED 0u
#define CPU_PER_GUEST (CPU_INTR_WINDOW_EXITING | CPU_INVLPG_EXITING | CPU_CR3_LOAD_EXITING | \
		       CPU_CR3_STORE_EXITING | CPU_NMI_WINDOW_EXITING)
#define SEC_REQUIRED 0u
#define SEC_WANTED (SEC_ENABLE_VPID | SEC_ENABLE_RDTSCP | SEC_WBINVD_EXITING | \
		    SEC_ENABLE_INVPCID)
#define SEC_PER_GUEST (SEC_ENABLE_EPT | SEC_UNRESTRICTED_GUEST)
#define EXIT_REQUIRED (EXIT_HOST_ADDR_SPACE_SIZE | EXIT_SAVE_IA32_EFER | EXIT_LOAD_IA32_EFER | \
		       EXIT_ACK_INTR_ON_EXIT)
#define EXIT_WANTED (EXIT_SAVE_IA32_PAT | EXIT_LOAD_IA32_PAT)
#define ENTRY_REQUIRED ENTRY_LOAD_IA32_EFER
#define ENTRY_WANTED ENTRY_LOAD_IA32_PAT
#define ENTRY_PER_GUEST ENTRY_IA32E_MODE_GUEST

enum control_word { CTL_PIN, CTL_CPU, CTL_SECONDARY, CTL_EXIT, CTL_ENTRY };

struct control_name {
	enum control_word word;
	u32 bit;
	const char *name;
};

/* Names for the one-line "missing feature" messages (required bits only). */
static const struct control_name control_names[] = {
	{ CTL_PIN, PIN_EXTINT_EXITING, "external-interrupt exiting" },
	{ CTL_PIN, PIN_NMI_EXITING, "NMI exiting" },
	{ CTL_PIN, PIN_PREEMPTION_TIMER, "VMX-preemption timer" },
	{ CTL_CPU, CPU_HLT_EXITING, "HLT exiting" },
	{ CTL_CPU, CPU_UNCOND_IO_EXITING, "unconditional I/O exiting" },
	{ CTL_CPU, CPU_MWAIT_EXITING, "MWAIT exiting" },
	{ CTL_CPU, CPU_MONITOR_EXITING, "MONITOR exiting" },
	{ CTL_CPU, CPU_RDPMC_EXITING, "RDPMC exiting" },
	{ CTL_CPU, CPU_CR8_LOAD_EXITING, "CR8-load exiting" },
	{ CTL_CPU, CPU_CR8_STORE_EXITING, "CR8-store exiting" },
	{ CTL_CPU, CPU_SECONDARY_CONTROLS, "secondary controls" },
	{ CTL_EXIT, EXIT_HOST_ADDR_SPACE_SIZE, "64-bit host" },
	{ CTL_EXIT, EXIT_SAVE_IA32_EFER, "save IA32_EFER on exit" },
	{ CTL_EXIT, EXIT_LOAD_IA32_EFER, "load IA32_EFER on exit" },
	{ CTL_EXIT, EXIT_ACK_INTR_ON_EXIT, "acknowledge interrupt on exit" },
	{ CTL_ENTRY, ENTRY_LOAD_IA32_EFER, "load IA32_EFER on entry" },
};

static const char *control_name(enum control_word word, u32 bit)
{
	for (size_t i = 0; i < ARRAY_SIZE(control_names); i++)
		if (control_names[i].word == word && control_names[i].bit == bit)
			return control_names[i].name;
	return "control";
}

/*
 * A capability MSR holds allowed-0 settings in bits 31:0 (1 = must be 1)
 * and allowed-1 settings in bits 63:32 (0 = must be 0), SDM A.3.1.
 */
static bool adjust_controls(enum control_word word, const char *what, u32 msr, u32 required,
			    u32 wanted, u32 *out, bool *ok)
{
	u64 cap = rdmsr(msr);
	u32 must_be_one = (u32)cap, may_be_one = (u32)(cap >> 32);
	u32 missing = required & ~may_be_one;

	for (int b = 0; b < 32; b++)
		if (missing & (1u << b)) {
			pr_err("VMX: the CPU lacks %s (%s control bit %d)",
			       control_name(word, 1u << b), what, b);
			*ok = false;
		}
	*out = ((required | wanted) & may_be_one) | must_be_one;
	return !missing;
}

static u32 ctl_msr(u32 true_msr, u32 legacy_msr, bool has_true)
{
	return has_true ? true_msr : legacy_msr;
}

static bool check_feature_control(void)
{
	u64 fc = rdmsr(MSR_IA32_FEATURE_CONTROL);

	if (fc & FEATURE_CONTROL_LOCKED) {
		if (!(fc & FEATURE_CONTROL_VMX_OUTSIDE_SMX)) {
			pr_err("VMX is disabled by the firmware (IA32_FEATURE_CONTROL=%#llx is locked "
			       "without 'VMX outside SMX'); enable VT-x in the firmware setup",
			       (unsigned long long)fc);
			return false;
		}
		return true;
	}
	/* Unlocked: enable VMX outside SMX and lock, as firmware should have. */
	wrmsr(MSR_IA32_FEATURE_CONTROL,
	      fc | FEATURE_CONTROL_VMX_OUTSIDE_SMX | FEATURE_CONTROL_LOCKED);
	return true;
}

static bool compute_controls(struct vmx_caps *caps)
{
	u64 basic = rdmsr(MSR_IA32_VMX_BASIC);
	bool has_true = basic & BIT(55), ok = true;
	struct vmx_controls *c = &caps->base;
	u64 cap;

	caps->revision_id = (u32)basic & 0x7fffffff;
	caps->ins_outs_info = basic & BIT(54);
	adjust_controls(CTL_PIN, "pin-based", ctl_msr(MSR_IA32_VMX_TRUE_PINBASED_CTLS,
					     MSR_IA32_VMX_PINBASED_CTLS, has_true),
			PIN_REQUIRED, PIN_WANTED, &c->pin, &ok);
	adjust_controls(CTL_CPU, "processor-based", ctl_msr(MSR_IA32_VMX_TRUE_PROCBASED_CTLS,
						   MSR_IA32_VMX_PROCBASED_CTLS, has_true),
			CPU_REQUIRED, CPU_WANTED, &c->cpu, &ok);
	adjust_controls(CTL_EXIT, "VM-exit", ctl_msr(MSR_IA32_VMX_TRUE_EXIT_CTLS, MSR_IA32_VMX_EXIT_CTLS,
					   has_true),
			EXIT_REQUIRED, EXIT_WANTED, &c->exit, &ok);
	adjust_controls(CTL_ENTRY, "VM-entry", ctl_msr(MSR_IA32_VMX_TRUE_ENTRY_CTLS, MSR_IA32_VMX_ENTRY_CTLS,
					    has_true),
			ENTRY_REQUIRED, ENTRY_WANTED, &c->entry, &ok);
	if (!ok)
		return false;
	adjust_controls(CTL_SECONDARY, "secondary", MSR_IA32_VMX_PROCBASED_CTLS2, SEC_REQUIRED, SEC_WANTED,
			&c->secondary, &ok);

	cap = rdmsr(ctl_msr(MSR_IA32_VMX_TRUE_PROCBASED_CTLS, MSR_IA32_VMX_PROCBASED_CTLS,
			    has_true));
	caps->cpu_may_set = (u32)(cap >> 32) & CPU_PER_GUEST;
	caps->cpu_may_clear = ~(u32)cap & CPU_PER_GUEST;
	cap = rdmsr(MSR_IA32_VMX_PROCBASED_CTLS2);
	caps->sec_may_set = (u32)(cap >> 32) & SEC_PER_GUEST;
	caps->sec_may_clear = ~(u32)cap & SEC_PER_GUEST;
	cap = rdmsr(ctl_msr(MSR_IA32_VMX_TRUE_ENTRY_CTLS, MSR_IA32_VMX_ENTRY_CTLS, has_true));
	caps->entry_may_set = (u32)(cap >> 32) & ENTRY_PER_GUEST;
	caps->entry_may_clear = ~(u32)cap & ENTRY_PER_GUEST;
	if (!(caps->cpu_may_set & CPU_INTR_WINDOW_EXITING) ||
	    !(caps->entry_may_set & ENTRY_IA32E_MODE_GUEST)) {
		pr_err("VMX: the CPU lacks interrupt-window exiting or 64-bit guests");
		return false;
	}

	/* Guest NMIs need virtual-NMI blocking and NMI-window exits (SDM 25.6.1, 26.7.6). */
	caps->virtual_nmis = (c->pin & PIN_VIRTUAL_NMIS) &&
				(caps->cpu_may_set & CPU_NMI_WINDOW_EXITING);
	if (!caps->virtual_nmis)
		c->pin &= ~PIN_VIRTUAL_NMIS;

	caps->ept_vpid_cap = rdmsr(MSR_IA32_VMX_EPT_VPID_CAP);
	caps->ept = (caps->sec_may_set & SEC_ENABLE_EPT) &&
		       (caps->ept_vpid_cap & EPT_CAP_WALK_LENGTH_4) &&
		       (caps->ept_vpid_cap & EPT_CAP_WB) &&
		       (caps->ept_vpid_cap & EPT_CAP_INVEPT_SINGLE);
	caps->ept_ad = caps->ept && (caps->ept_vpid_cap & EPT_CAP_AD_BITS);
	caps->unrestricted = caps->ept && (caps->sec_may_set & SEC_UNRESTRICTED_GUEST);
	caps->vpid = (c->secondary & SEC_ENABLE_VPID) &&
			(caps->ept_vpid_cap & VPID_CAP_INVVPID_SINGLE);
	if (!caps->vpid)
		c->secondary &= ~SEC_ENABLE_VPID;
	caps->invpcid = c->secondary & SEC_ENABLE_INVPCID;
	caps->rdtscp = c->secondary & SEC_ENABLE_RDTSCP;
	caps->preemption_timer_shift = rdmsr(MSR_IA32_VMX_MISC) & 0x1f;
	caps->cr0_fixed0 = rdmsr(MSR_IA32_VMX_CR0_FIXED0);
	caps->cr0_fixed1 = rdmsr(MSR_IA32_VMX_CR0_FIXED1);
	caps->cr4_fixed0 = rdmsr(MSR_IA32_VMX_CR4_FIXED0);
	caps->cr4_fixed1 = rdmsr(MSR_IA32_VMX_CR4_FIXED1);
	return true;
}

/* VMX operation on this CPU: CR0/CR4 fixed bits and VMXON (SDM 24.7-24.8). */
static bool vmxon_this_cpu(void)
{
	u64 cr0, cr4;
	u8 *region;
	enum vmx_status st;

	/* CR0/CR4 must satisfy the fixed bits in VMX operation (SDM 24.8, A.7-A.8).
	 * Caches on: a firmware may leave CD and NW set (Bochs' BIOS does), and
	 * VM entry never loads them (SDM 27.3.2.1), so guests would inherit them. */
	cr0 = ((read_cr0() & ~(CR0_CD | CR0_NW)) | vmx_caps.cr0_fixed0) & vmx_caps.cr0_fixed1;
	cr4 = (read_cr4() | CR4_VMXE | vmx_caps.cr4_fixed0) & vmx_caps.cr4_fixed1;
	write_cr0(cr0);
	write_cr4(cr4);

	region = alloc_zeroed_pages(1);  /* one VMXON region per CPU (SDM 25.11.5) */
	if (!region) {
		pr_err("CPU %u: no memory for the VMXON region", this_cpu_index());
		return false;
	}
	memcpy(region, &vmx_caps.revision_id, 4);
	st = vmxon_raw((u64)region);
	if (st != VMX_OK) {
		pr_err("CPU %u: VMXON failed (status %d); CR0=%#llx CR4=%#llx", this_cpu_index(), st,
		       (unsigned long long)cr0, (unsigned long long)cr4);
		free_pages(region, 1);
		return false;
	}
	this_cpu()->vmxon_region = region;
	return true;
}

bool vmx_init(void)
{
	if (!(cpuid(1, 0).ecx & (1u << 5))) {
		pr_err("this CPU has no VMX (Intel VT-x): CPUID.1:ECX[5] is 0; cannot run guests");
		return false;
	}
	if (!check_feature_control() || !compute_controls(&vmx_caps))
		return false;
	return vmxon_this_cpu();
}

/*
 * Another CPU: the same checks, and the same capabilities as the first, as
 * every guest's VMCS was built from those and may run on any CPU.
 */
bool vmx_init_cpu(void)
{
	static struct vmx_caps caps_of[SMP_MAX_CPUS];  /* not on the stack: it is large */
	struct vmx_caps *caps = &caps_of[this_cpu_index()];

	if (!(cpuid(1, 0).ecx & (1u << 5))) {
		pr_err("CPU %u has no VMX; it runs no guests", this_cpu_index());
		return false;
	}
	if (!check_feature_control() || !compute_controls(caps))
		return false;
	if (memcmp(caps, &vmx_caps, sizeof(*caps))) {
		pr_err("CPU %u: its VMX capabilities differ from CPU 0's; it runs no guests",
		       this_cpu_index());
		return false;
	}
	return vmxon_this_cpu();
}

void vmx_print_capabilities(void)
{
	const struct vmx_controls *c = &vmx_caps.base;

	pr_info("VMX: revision %#x, pin %#x cpu %#x secondary %#x exit %#x entry %#x",
		vmx_caps.revision_id, c->pin, c->cpu, c->secondary, c->exit, c->entry);
	pr_info("VMX: EPT %s, EPT A/D %s, unrestricted guest %s, VPID %s, INVPCID %s, "
		"preemption timer rate TSC/%u",
		vmx_caps.ept ? "yes" : "no", vmx_caps.ept_ad ? "yes" : "no",
		vmx_caps.unrestricted ? "yes" : "no", vmx_caps.vpid ? "yes" : "no",
		vmx_caps.invpcid ? "yes" : "no", 1u << vmx_caps.preemption_timer_shift);
	pr_info("VMX: virtual NMIs %s (guest NMIs %s), INS/OUTS exit information %s",
		vmx_caps.virtual_nmis ? "yes" : "no",
		vmx_caps.virtual_nmis ? "delivered" : "dropped",
		vmx_caps.ins_outs_info ? "yes" : "no (prefixes decoded)");
}

bool vmx_invept_single(u64 eptp)
{
	struct invept_desc d = { eptp, 0 };
	enum vmx_status st = invept_raw(1, &d);

	if (st != VMX_OK)
		vmx_instruction_failed("INVEPT", "single-context", st, __func__);
	return true;
}

bool vmx_invvpid_single(u16 vpid)
{
	return vmx_invvpid_address(vpid, 0, false);
}

bool vmx_invvpid_address(u16 vpid, u64 gva, bool one_address)
{
	struct invvpid_desc d = { vpid, gva };
	/* Type 0 needs the individual-address capability (SDM A.10) and fails on a
	 * non-canonical address (SDM Vol. 3C INVVPID; e.g. a guest's INVLPG of one,
	 * a no-op on the CPU); else type 1, which flushes more, never less. */
	bool individual = one_address && (vmx_caps.ept_vpid_cap & BIT(40)) &&
			  canonical_address(gva);
	enum vmx_status st = invvpid_raw(individual ? 0 : 1, &d);

	if (st != VMX_OK)
		vmx_instruction_failed("INVVPID", individual ? "individual-address" :
				       "single-context", st, __func__);
	return true;
}
