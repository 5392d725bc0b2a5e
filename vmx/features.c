/*
 * The CPU a guest is told it has. CPUID is the host's passed through
 * allow-lists: a feature bit is shown only when umbra backs it, i.e. its
 * instructions run in VMX non-root operation without an exit or control we
 * lack, its MSRs are in vmx/msr.c, its register state is switched by
 * guest/fpu.c and its paging bits are implemented by both MMU sides. A new
 * host feature therefore stays hidden until someone backs it. The CR4, XCR0
 * and EFER bits a guest may set are derived from the same CPUID (SDM Vol. 3A
 * 2.5 and 2.6, Vol. 1 13.3), so CPUID and the checks cannot disagree.
 *
 * Hidden on purpose: the PMU (leaf 0xA, PDCM, RDPMC #GPs), DS/BTS/PEBS,
 * thermal and power MSRs (ACPI, TM, TM2, EIST, leaf 6 but ARAT), MONITOR,
 * VMX/SMX, x2APIC, PKU/PKS, CET, LA57, LAM, LASS, FRED, WAITPKG, AMX, MPX,
 * Intel PT, SGX, XSAVES/XSS, and the speculation-control MSRs.
 */
#include "vmx/features.h"
#include "vmx/vmx.h"
#include "guest/fpu.h"
#include "devices/lapic.h"
#include "arch/x86/machine.h"

#define B(n) (1u << (n))

/* Highest leaves umbra knows how to filter; the host's may be lower. */
#define MAX_BASIC_LEAF 0x1fu
#define MAX_EXT_LEAF 0x80000008u

/* Leaf 1 EDX: FPU, VME, DE, PSE, TSC, MSR, PAE, MCE, CX8, APIC, SEP, MTRR, PGE, MCA,
 * CMOV, PAT, PSE-36, CLFSH, MMX, FXSR, SSE, SSE2, SS. Not PSN, DS, ACPI, HTT, TM, PBE. */
#define L1_EDX (B(0) | B(1) | B(2) | B(3) | B(4) | B(5) | B(6) | B(7) | B(8) | B(9) | B(11) | \
		B(12) | B(13) | B(14) | B(15) | B(16) | B(17) | B(19) | B(23) | B(24) | B(25) | \
		B(26) | B(27))
/* Leaf 1 ECX: SSE3, PCLMULQDQ, SSSE3, FMA, CX16, PCID, SSE4.1, SSE4.2, MOVBE, POPCNT,
 * AES, XSAVE, AVX, F16C, RDRAND (TSC-deadline and the hypervisor bit are added). Not
 * DTES64, MONITOR, DS-CPL, VMX, SMX, EIST, TM2, CNXT-ID, SDBG, xTPR, PDCM, DCA, x2APIC. */
#define L1_ECX (B(0) | B(1) | B(9) | B(12) | B(13) | B(17) | B(19) | B(20) | B(22) | B(23) | \
		B(25) | B(26) | B(28) | B(29) | B(30))
#define L1_ECX_TSC_DEADLINE B(24)   /* the LAPIC model emulates it */
#define L1_ECX_HYPERVISOR B(31)
#define L1_EDX_APIC B(9)
/* Leaf 7.0 EBX: FSGSBASE, BMI1, HLE, AVX2, FDP_EXCPTN_ONLY, SMEP, BMI2, ERMS,
 * RTM, FCS/FDS deprecation, AVX512F/DQ, RDSEED, ADX, SMAP, AVX512_IFMA, CLFLUSHOPT,
 * CLWB, AVX512PF/ER/CD, SHA, AVX512BW/VL (INVPCID added when VMX can enable it;
 * TSC_ADJUST always, vmx/msr.c emulates it). Not SGX, RDT, MPX, Intel PT. */
#define L7_EBX (B(0) | B(3) | B(4) | B(5) | B(6) | B(7) | B(8) | B(9) | B(11) | \
		B(13) | B(16) | B(17) | B(18) | B(19) | B(20) | B(21) | B(23) | B(24) | B(26) | \
		B(27) | B(28) | B(29) | B(30) | B(31))
#define L7_EBX_INVPCID B(10)
#define L7_EBX_TSC_ADJUST B(1)      /* emulated by vmx/msr.c on any host */
/* Leaf 7.0 ECX: PREFETCHWT1, AVX512_VBMI, UMIP, AVX512_VBMI2, GFNI, VAES, VPCLMULQDQ,
 * AVX512_VNNI, AVX512_BITALG, AVX512_VPOPCNTDQ, CLDEMOTE, MOVDIRI, MOVDIR64B (RDPID
 * added with RDTSCP: both need "enable RDTSCP", SDM 26.3). Not PKU/OSPKE, WAITPKG (needs
 * "enable user wait and pause"), CET_SS, TME, LA57, MAWAU, KL, BUS_LOCK_DETECT, ENQCMD,
 * SGX_LC, PKS. */
#define L7_ECX (B(0) | B(1) | B(2) | B(6) | B(8) | B(9) | B(10) | B(11) | B(12) | B(14) | \
		B(25) | B(27) | B(28))
#define L7_ECX_RDPID B(22)
/* Leaf 7.0 EDX: AVX512_4VNNIW/4FMAPS, FSRM, AVX512_VP2INTERSECT, MD_CLEAR,
 * RTM_ALWAYS_ABORT, SERIALIZE, TSXLDTRK, AVX512_FP16. Not UINTR, SRBDS_CTRL, TSX_FORCE_ABORT,
 * HYBRID, PCONFIG, arch LBR, CET_IBT, AMX, and IBRS/STIBP/L1D_FLUSH/ARCH_CAPABILITIES/
 * CORE_CAPABILITIES/SSBD (their MSRs are not provided). */
#define L7_EDX (B(2) | B(3) | B(4) | B(8) | B(10) | B(11) | B(14) | B(16) | B(23))
/* Leaf 7.1 EAX: AVX-VNNI, AVX512_BF16, CMPCCXADD, FZRM, FSRS, FSRC, AVX-IFMA. Not LASS,
 * arch PMU extensions, FRED, LKGS, WRMSRNS, AMX-FP16, HRESET, LAM, MSRLIST. EDX:
 * AVX-VNNI-INT8, AVX-NE-CONVERT, AVX-VNNI-INT16, PREFETCHI (not UIRET, CET_SSS, AVX10, APX). */
#define L7_1_EAX (B(4) | B(5) | B(7) | B(10) | B(11) | B(12) | B(23))
#define L7_1_EDX (B(4) | B(5) | B(10) | B(14))
/* Leaf 0xD.1 EAX: XSAVEOPT, XSAVEC, XGETBV with ECX=1. Not XSAVES (needs "enable
 * XSAVES/XRSTORS" and IA32_XSS) nor XFD. */
#define LD_1_EAX (B(0) | B(1) | B(2))
#define LD_1_EAX_XSAVEC B(1)	/* only where the CPU's is right (guest/fpu.c) */
/* Extended leaves: LAHF/SAHF, LZCNT, PREFETCHW; SYSCALL, NX, 1 GiB pages, LM (RDTSCP
 * added when enabled); invariant TSC; WBNOINVD. */
#define LX1_ECX (B(0) | B(5) | B(8))
#define LX1_EDX (B(11) | B(20) | B(26) | B(29))
#define LX1_EDX_NX B(20)
#define LX1_EDX_RDTSCP B(27)
#define LX1_EDX_LM B(29)
#define LX7_EDX B(8)
#define LX8_EBX B(9)

/* XSAVE components a guest may enable: those guest/fpu.c switches. */
#define XCR0_GUEST FPU_XCR0_SWITCHED

static bool has(u32 reg, u32 bit)
{
	return reg & bit;
}

/* Leaf 0xB/0x1F: one thread in one core (leaf 1 says one logical processor). */
static struct cpuid_regs topology(u32 subleaf)
{
	struct cpuid_regs r = { 0, 0, subleaf & 0xff, 0 };

	if (subleaf <= 1) {
		r.ebx = 1;
		r.ecx |= (subleaf + 1) << 8;  /* level type 1 = SMT, 2 = core */
	}
	return r;
}

/* The size of an XSAVE area holding the components in xcr0 (SDM Vol. 1 13.4):
 * the legacy area and header (576 bytes), then each component at its leaf 0xD
 * offset (standard format, XSAVE), or packed in index order, 64-byte aligned
 * where leaf 0xD.i:ECX[1] says so (compacted format, XSAVEC/XSAVES, 13.4.3). */
static u32 xsave_area_size(u64 xcr0, bool compacted)
{
	u32 size = 576;

	for (u32 i = 2; i < 64; i++) {
		struct cpuid_regs c;

		if (!(xcr0 & (1ull << i)))
			continue;
		c = cpuid(0xd, i);
		if (compacted)
			size = (u32)((c.ecx & B(1)) ? ALIGN_UP(size, 64) : size) + c.eax;
		else if (c.ebx + c.eax > size)
			size = c.ebx + c.eax;
	}
	return size;
}

/* Leaf 0xD, from the host's, limited to the components in XCR0_GUEST. EBX of
 * subleaves 0 and 1 depends on the guest's XCR0: features_cpuid fills it in. */
static struct cpuid_regs xsave_leaf(u32 subleaf)
{
	struct cpuid_regs r = cpuid(0xd, subleaf);
	u64 allowed = features_xcr0_allowed();

	if (subleaf == 0) {
		r.eax = (u32)allowed;
		r.edx = (u32)(allowed >> 32);
		r.ecx = xsave_area_size(allowed, false);  /* every component offered */
	} else if (subleaf == 1) {
		r.eax &= LD_1_EAX & ~(fpu_xsavec_conforms() ? 0 : LD_1_EAX_XSAVEC);
		r.ecx = r.edx = 0;  /* no IA32_XSS components */
	} else if (subleaf >= 64 || !(allowed & (1ull << subleaf))) {
		r = (struct cpuid_regs){ 0, 0, 0, 0 };
	}
	return r;
}

/* The host's leaf, with what umbra does not back taken out. */
static struct cpuid_regs filtered(u32 leaf, u32 subleaf)
{
	struct cpuid_regs r = cpuid(leaf, subleaf), zero = { 0, 0, 0, 0 };

	switch (leaf) {
	case 0:
		r.eax = r.eax < MAX_BASIC_LEAF ? r.eax : MAX_BASIC_LEAF;
		return r;
	case 1:
		r.ebx = (r.ebx & 0x0000ffffu) | (1u << 16);  /* one logical CPU per package */
		r.ecx = (r.ecx & L1_ECX) | L1_ECX_TSC_DEADLINE | L1_ECX_HYPERVISOR;
		r.edx &= L1_EDX;
		return r;
	case 2:     /* cache and TLB descriptors */
	case 0x17:  /* SoC vendor attributes */
	case 0x18:  /* address-translation parameters */
		return r;
	case 4:
		r.eax &= ~((0x3fu << 26) | (0xfffu << 14));  /* one core, one thread per cache */
		return r;
	case 6:
		/* Only ARAT: the emulated APIC timer never stops. No thermal, HWP or
		 * energy-bias MSRs, no APERF/MPERF. */
		return (struct cpuid_regs){ B(2), 0, 0, 0 };
	case 7:
		if (subleaf == 0) {
			r.eax = r.eax < 1 ? r.eax : 1;
			r.ebx &= L7_EBX | (vmx_caps.invpcid ? L7_EBX_INVPCID : 0);
			r.ebx |= L7_EBX_TSC_ADJUST;
			r.ecx &= L7_ECX | (vmx_caps.rdtscp ? L7_ECX_RDPID : 0);
			r.edx &= L7_EDX;
			return r;
		}
		if (subleaf == 1)
			return (struct cpuid_regs){ r.eax & L7_1_EAX, 0, 0, r.edx & L7_1_EDX };
		return zero;
	case 0xb:
	case 0x1f:
		return topology(subleaf);
	case 0xd:
		return has(cpuid(1, 0).ecx, B(26)) ? xsave_leaf(subleaf) : zero;
	case 0x16:
		/* Base frequency: the TSC rate guests will actually observe. */
		if (machine_tsc_khz())
			r.eax = (u32)(machine_tsc_khz() / 1000);
		return r;
	case 0x80000000:
		r.eax = r.eax < MAX_EXT_LEAF ? r.eax : MAX_EXT_LEAF;
		r.ebx = r.ecx = r.edx = 0;
		return r;
	case 0x80000001:
		r.ebx = 0;
		r.ecx &= LX1_ECX;
		r.edx &= LX1_EDX | (vmx_caps.rdtscp ? LX1_EDX_RDTSCP : 0);
		return r;
	case 0x80000002: case 0x80000003: case 0x80000004:  /* brand string */
	case 0x80000005: case 0x80000006:                    /* caches */
		return r;
	case 0x80000007:
		return (struct cpuid_regs){ 0, 0, 0, r.edx & LX7_EDX };
	case 0x80000008:
		/* Linear addresses: 48 bits, as guests never get LA57. */
		return (struct cpuid_regs){ (r.eax & 0xff) | (48u << 8), r.ebx & LX8_EBX, 0, 0 };
	}
	/* Everything else: PSN (3), MONITOR (5), DCA (9), the PMU (0xA), RDT (0xF, 0x10),
	 * SGX (0x12), Intel PT (0x14), the TSC/crystal ratio (0x15: it would contradict the
	 * TSC rate measured, e.g. in Bochs where the TSC counts instructions), Key Locker,
	 * hybrid, PCONFIG, arch LBR, AMX (0x19-0x1E). */
	return zero;
}

/* Out-of-range leaves return the highest basic leaf (SDM Vol. 2A, CPUID). */
static u32 in_range(u32 leaf)
{
	static u32 max_basic, max_ext;  /* the host's do not change */

	if (!max_ext) {
		max_basic = filtered(0, 0).eax;
		max_ext = filtered(0x80000000, 0).eax;
	}
	if ((leaf > max_basic && leaf < 0x80000000) || leaf > max_ext)
		return max_basic;
	return leaf;
}

struct cpuid_regs features_cpuid(const struct vcpu *v, u32 leaf, u32 subleaf)
{
	struct cpuid_regs r;

	leaf = in_range(leaf);
	r = filtered(leaf, subleaf);
	/* Bits the SDM makes depend on the guest's own state. */
	if (leaf == 0 && (v->msr.misc_enable & MISC_ENABLE_LIMIT_CPUID) && r.eax > 2)
		r.eax = 2;  /* IA32_MISC_ENABLE[22]: CPUID.0:EAX reports at most 2 */
	/* Each vCPU its own package: its initial APIC ID is its index (leaf 1
	 * EBX[31:24], leaf 0xB/0x1F EDX, SDM Vol. 3A 9.4.3, 10.4.6). */
	if (leaf == 1)
		r.ebx |= (u32)v->index << 24;
	if (leaf == 0xb || leaf == 0x1f)
		r.edx = (u32)v->index;
	if (leaf == 1 && !lapic_enabled(v))
		r.edx &= ~L1_EDX_APIC;  /* IA32_APIC_BASE[11] = 0 (SDM 10.4.3) */
	if (leaf == 0x80000001 && (v->msr.misc_enable & MISC_ENABLE_XD_DISABLE))
		r.edx &= ~LX1_EDX_NX;   /* IA32_MISC_ENABLE[34] */
	/* Leaf 0xD.0:EBX and 0xD.1:EBX: the XSAVE and XSAVEC area sizes for the guest's
	 * XCR0 (IA32_XSS is always 0 here), computed rather than taken from the CPU
	 * (Bochs reports the standard size in 0xD.1:EBX, which Linux's check of its
	 * XSAVEC buffer against the compacted layout refuses). */
	if (leaf == 0xd && subleaf <= 1 && features_xcr0_allowed())
		r.ebx = xsave_area_size(v->xcr0, subleaf == 1);
	return r;
}

/*
 * CR4 bits tied to a CPUID feature are reserved without it (SDM Vol. 3A 2.5,
 * as KVM's __cr4_reserved_bits); LA57, VMXE, SMXE, PKE, CET, PKS, KL, UINTR,
 * LASS, LAM_SUP, FRED and every undefined bit are never allowed. Also limited
 * to what the CPU can hold in VMX operation (IA32_VMX_CR4_FIXED1).
 */
/*
 * The lazily computed host values above (in_range(), features_cr4_allowed())
 * are built in several steps: compute them on the first CPU before others run
 * guests, so the others only ever read them whole.
 */
void features_init(void)
{
	(void)in_range(0);
	(void)features_cr4_allowed();
}

u64 features_cr4_allowed(void)
{
	static u64 allowed;
	struct cpuid_regs l1, l7;

	if (allowed)
		return allowed;
	l1 = filtered(1, 0);
	l7 = filtered(7, 0);
	allowed = CR4_TSD | CR4_PCE;
	allowed |= has(l1.edx, B(1)) ? CR4_VME | CR4_PVI : 0;
	allowed |= has(l1.edx, B(2)) ? CR4_DE : 0;
	allowed |= has(l1.edx, B(3)) ? CR4_PSE : 0;
	allowed |= has(l1.edx, B(6)) ? CR4_PAE : 0;
	allowed |= has(l1.edx, B(7)) ? CR4_MCE : 0;
	allowed |= has(l1.edx, B(13)) ? CR4_PGE : 0;
	allowed |= has(l1.edx, B(24)) ? CR4_OSFXSR : 0;
	allowed |= has(l1.edx, B(25)) ? CR4_OSXMMEXCPT : 0;
	allowed |= has(l1.ecx, B(17)) ? CR4_PCIDE : 0;
	allowed |= has(l1.ecx, B(26)) ? CR4_OSXSAVE : 0;
	allowed |= has(l7.ebx, B(0)) ? CR4_FSGSBASE : 0;
	allowed |= has(l7.ebx, B(7)) ? CR4_SMEP : 0;
	allowed |= has(l7.ebx, B(20)) ? CR4_SMAP : 0;
	allowed |= has(l7.ecx, B(2)) ? CR4_UMIP : 0;
	allowed &= vmx_caps.cr4_fixed1 & ~CR4_VMXE;
	return allowed;
}

u64 features_xcr0_allowed(void)
{
	struct cpuid_regs xs;

	if (!has(cpuid(1, 0).ecx, B(26)))
		return 0;
	xs = cpuid(0xd, 0);
	return (((u64)xs.edx << 32) | xs.eax) & XCR0_GUEST;
}

u64 features_efer_allowed(const struct vcpu *v)
{
	struct cpuid_regs x = features_cpuid(v, 0x80000001, 0);

	return EFER_SCE | (has(x.edx, LX1_EDX_LM) ? EFER_LME | EFER_LMA : 0) |
	       (has(x.edx, LX1_EDX_NX) ? EFER_NXE : 0);
}

u32 features_maxphyaddr(void)
{
	return filtered(0x80000008, 0).eax & 0xff;
}
