/*
 * CPUID against what stands behind it (tests/guests/PLATFORM.md, "CPUID" and "MSRs"): every
 * feature CPUID advertises works, and under umbra every one it hides is really absent.
 *  - MSR-backed features: advertised => the MSR reads; hidden (umbra) => #GP(0). No PMU
 *    under umbra: leaf 0xA zero, PDCM clear, RDPMC #GP(0) (not #UD), the counter MSRs #GP,
 *    IA32_MISC_ENABLE says "no PMU, no BTS, no PEBS".
 *  - IA32_MISC_ENABLE: never #GPs on read; fast strings writable; limit-CPUID and XD-disable
 *    act on CPUID; read-only bits keep their value, reserved bits #GP (umbra).
 *  - CPUID.1:EDX.APIC follows IA32_APIC_BASE[11]; MCA, MTRR, DEBUGCTL as far as CPUID
 *    promises them.
 *  - MSRs that VM entry loads from the VMCS (SYSENTER_ESP/EIP, FS/GS base, PAT, EFER,
 *    DEBUGCTL): a value the CPU would refuse is #GP(0) in the guest, and the guest runs on.
 *  - XSETBV: exactly the SDM's rules (x87 on, AVX needs SSE, AVX-512 all or none and with
 *    AVX, MPX both or none, only offered bits, ECX = 0); CPUID leaf 0xD agrees with XCR0:
 *    0xD.0:EBX and 0xD.1:EBX are the XSAVE and XSAVEC sizes, exactly what they write.
 *  - Leaves 7, 0xB, 0xD, 0x14, 0x80000008 as umbra promises them; RDPID, RDTSCP, INVPCID,
 *    FSGSBASE run when advertised.
 * 64-bit only (canonical addresses matter).
 */
#include "libguest.h"

#define EAX 0
#define EBX 1
#define ECX 2
#define EDX 3

#define CR4_FSGSBASE BIT(16)
#define CR4_OSXSAVE BIT(18)
#define MSR_IA32_DEBUGCTL 0x1d9
#define MSR_PERFEVTSEL0 0x186
#define MSR_PMC0 0xc1
#define MSR_DS_AREA 0x600
#define MSR_MCG_CAP 0x179
#define MSR_MCG_STATUS 0x17a
#define MSR_MCG_CTL 0x17b
#define MSR_MC0_CTL 0x400
#define MSR_MTRR_PHYSBASE0 0x200
#define MSR_MTRR_FIX64K 0x250
#define NONCANONICAL 0x8000000000000000ull

static u32 reg(struct cpuid_regs r, int which)
{
	return which == EAX ? r.eax : which == EBX ? r.ebx : which == ECX ? r.ecx : r.edx;
}

static bool cpu_has(u32 leaf, u32 subleaf, int which, int bit)
{
	u32 max = cpuid(leaf & 0x80000000u, 0).eax;

	return leaf <= max && (reg(cpuid(leaf, subleaf), which) >> bit) & 1;
}

/* --- CPUID feature <-> MSR ----------------------------------------------------------------- */

static const struct {
	const char *name;
	u32 leaf, subleaf;
	int reg, bit;
	u32 msr;
} msr_features[] = {
	{ "DS (DS_AREA)", 1, 0, EDX, 21, MSR_DS_AREA },
	{ "ACPI (THERM_STATUS)", 1, 0, EDX, 22, 0x19c },
	{ "TM (THERM_INTERRUPT)", 1, 0, EDX, 29, 0x19b },
	{ "EIST (PERF_STATUS)", 1, 0, ECX, 7, 0x198 },
	{ "SDBG (DEBUG_INTERFACE)", 1, 0, ECX, 11, 0xc80 },
	{ "PDCM (PERF_CAPABILITIES)", 1, 0, ECX, 15, 0x345 },
	{ "DCA (PLATFORM_DCA_CAP)", 1, 0, ECX, 18, 0x1f8 },
	{ "DTS (leaf 6, THERM_STATUS)", 6, 0, EAX, 0, 0x19c },
	{ "HWP (leaf 6, PM_ENABLE)", 6, 0, EAX, 7, 0x770 },
	{ "APERF/MPERF (leaf 6, APERF)", 6, 0, ECX, 0, 0xe8 },
	{ "APERF/MPERF (leaf 6, MPERF)", 6, 0, ECX, 0, 0xe7 },
	{ "energy-performance bias (leaf 6)", 6, 0, ECX, 3, 0x1b0 },
	{ "RDT monitoring (QM_EVTSEL)", 7, 0, EBX, 12, 0xc8d },
	{ "MPX (BNDCFGS)", 7, 0, EBX, 14, 0xd90 },
	{ "Intel PT (RTIT_CTL)", 7, 0, EBX, 25, 0x570 },
	{ "WAITPKG (UMWAIT_CONTROL)", 7, 0, ECX, 5, 0xe1 },
	{ "CET shadow stacks (S_CET)", 7, 0, ECX, 7, 0x6a2 },
	{ "TME (TME_CAPABILITY)", 7, 0, ECX, 13, 0x982 },
	{ "ENQCMD (PASID)", 7, 0, ECX, 29, 0xd93 },
	{ "PKS (PKRS)", 7, 0, ECX, 31, 0x6e1 },
	{ "UINTR (UINTR_RR)", 7, 0, EDX, 5, 0x985 },
	{ "arch LBR (LBR_CTL)", 7, 0, EDX, 19, 0x14ce },
	{ "CET IBT (S_CET)", 7, 0, EDX, 20, 0x6a2 },
	{ "IBRS/IBPB (SPEC_CTRL)", 7, 0, EDX, 26, 0x48 },
	{ "ARCH_CAPABILITIES", 7, 0, EDX, 29, 0x10a },
	{ "CORE_CAPABILITIES", 7, 0, EDX, 30, 0xcf },
	{ "SSBD (SPEC_CTRL)", 7, 0, EDX, 31, 0x48 },
	{ "HRESET (HRESET_ENABLE)", 7, 1, EAX, 22, 0x17da },
	{ "XSAVES (XSS)", 0xd, 1, EAX, 3, 0xda0 },
	{ "XFD (XFD)", 0xd, 1, EAX, 4, 0x1c4 },
	{ "SEP (SYSENTER_CS)", 1, 0, EDX, 11, 0x174 },
	{ "MTRR (MTRRCAP)", 1, 0, EDX, 12, 0xfe },
	{ "MCA (MCG_CAP)", 1, 0, EDX, 14, MSR_MCG_CAP },
	{ "PAT", 1, 0, EDX, 16, 0x277 },
	{ "TSC-deadline", 1, 0, ECX, 24, 0x6e0 },
	{ "TSC_ADJUST", 7, 0, EBX, 1, 0x3b },
	{ "RDTSCP (TSC_AUX)", 0x80000001, 0, EDX, 27, 0xc0000103 },
};

static void check_msr_features(void)
{
	for (unsigned i = 0; i < ARRAY_SIZE(msr_features); i++) {
		u64 v;
		bool adv = cpu_has(msr_features[i].leaf, msr_features[i].subleaf,
				   msr_features[i].reg, msr_features[i].bit);
		bool gp = rdmsr_safe(msr_features[i].msr, &v);

		if (adv)
			report(!gp, "%s advertised: MSR %#x reads", msr_features[i].name,
			       msr_features[i].msr);
		else
			report_umbra(gp, "%s hidden: MSR %#x raises #GP", msr_features[i].name,
				     msr_features[i].msr);
	}
}

/* --- the PMU, DS, IA32_MISC_ENABLE ---------------------------------------------------------- */

static int rdpmc_vector(u32 counter)
{
	u32 lo, hi;

	return ASM_TRY_VECTOR(ASM_TRY("1f") "rdpmc\n1:" : "=a"(lo), "=d"(hi) : "c"(counter));
}

static void check_pmu(void)
{
	struct cpuid_regs a = cpuid(0, 0).eax >= 0xa ? cpuid(0xa, 0) : (struct cpuid_regs){ 0 };
	u32 version = a.eax & 0xff, counters = (a.eax >> 8) & 0xff;
	u64 v;

	report_umbra(!a.eax && !a.ebx && !a.ecx && !a.edx, "no PMU: CPUID leaf 0xA is all zero");
	report_umbra(!cpu_has(1, 0, ECX, 15), "no PMU: PDCM clear");
	report(!!(rdmsr(MSR_IA32_MISC_ENABLE) & BIT(7)) == (version > 0),
	       "MISC_ENABLE[7] (performance monitoring available) matches leaf 0xA version %u",
	       version);
	if (counters) {
		report(!wrmsr_safe(MSR_PERFEVTSEL0, 0) && !rdmsr_safe(MSR_PMC0, &v),
		       "%u counters advertised: PERFEVTSEL0 and PMC0 work", counters);
		report(rdpmc_vector(0) == NO_EXCEPTION, "RDPMC of counter 0 runs");
		return;
	}
	report(wrmsr_safe(MSR_PERFEVTSEL0, 0), "no counters: WRMSR PERFEVTSEL0 raises #GP");
	report(rdmsr_safe(MSR_PMC0, &v), "no counters: RDMSR PMC0 raises #GP");
	report(rdpmc_vector(0) == GP_VECTOR, "no counters: RDPMC(0) raises #GP, not #UD");
	report(rdpmc_vector(BIT(30)) == GP_VECTOR, "no counters: RDPMC(fixed 0) raises #GP");
}

static void check_ds(void)
{
	u64 misc = rdmsr(MSR_IA32_MISC_ENABLE);

	if (cpu_has(1, 0, EDX, 21)) {
		report_skip("DS advertised: BTS/PEBS availability is the CPU's");
		return;
	}
	report_umbra(!cpu_has(1, 0, ECX, 2) && !cpu_has(1, 0, ECX, 4),
		     "no DS: DTES64 and DS-CPL clear too");
	report((misc & BIT(11)) && (misc & BIT(12)),
	       "no DS: MISC_ENABLE says BTS and PEBS unavailable (%#llx)", misc);
}

static void check_misc_enable(void)
{
	u64 orig, v = 0, fast_off = 0;
	u32 max_basic = cpuid(0, 0).eax, limited;
	bool nx = cpu_has(0x80000001, 0, EDX, 20), nx_off;

	report(!rdmsr_safe(MSR_IA32_MISC_ENABLE, &orig), "MISC_ENABLE reads (%#llx)", orig);
	report(!wrmsr_safe(MSR_IA32_MISC_ENABLE, orig) && rdmsr(MSR_IA32_MISC_ENABLE) == orig,
	       "MISC_ENABLE: writing back what was read");
	report(!wrmsr_safe(MSR_IA32_MISC_ENABLE, orig & ~BIT(0)) &&
	       !rdmsr_safe(MSR_IA32_MISC_ENABLE, &fast_off) && !(fast_off & BIT(0)) &&
	       !wrmsr_safe(MSR_IA32_MISC_ENABLE, orig | BIT(0)) &&
	       (rdmsr(MSR_IA32_MISC_ENABLE) & BIT(0)),
	       "MISC_ENABLE: fast strings off and on again");
	wrmsr_safe(MSR_IA32_MISC_ENABLE, orig);

	/* Limit CPUID Maxval (bit 22): leaf 0 reports at most 2. */
	if (!wrmsr_safe(MSR_IA32_MISC_ENABLE, orig | BIT(22))) {
		limited = cpuid(0, 0).eax;
		wrmsr_safe(MSR_IA32_MISC_ENABLE, orig);
		report_umbra(limited == (max_basic > 2 ? 2 : max_basic) && cpuid(0, 0).eax == max_basic,
			     "MISC_ENABLE[22]: CPUID.0:EAX %#x while set, %#x after", limited,
			     cpuid(0, 0).eax);
	} else {
		report_umbra(false, "MISC_ENABLE[22] (limit CPUID) is writable");
	}
	/* XD Bit Disable (bit 34): CPUID stops advertising NX. */
	if (nx && !wrmsr_safe(MSR_IA32_MISC_ENABLE, orig | BIT(34))) {
		nx_off = !cpu_has(0x80000001, 0, EDX, 20);
		wrmsr_safe(MSR_IA32_MISC_ENABLE, orig);
		report_umbra(nx_off && cpu_has(0x80000001, 0, EDX, 20),
			     "MISC_ENABLE[34]: NX hidden while set, back after");
	} else if (nx) {
		report_umbra(false, "MISC_ENABLE[34] (XD disable) is writable");
	}
	/* The bits KVM's tests write (kvm-unit-tests x86/msr.c) read back. */
	v = (orig & (BIT(7) | BIT(11) | BIT(12))) | 0x400c50809ull;
	report_umbra(!wrmsr_safe(MSR_IA32_MISC_ENABLE, v) && rdmsr(MSR_IA32_MISC_ENABLE) == v,
		     "MISC_ENABLE: writable bits 0, 3, 16, 18, 22, 23, 34 read back");
	wrmsr_safe(MSR_IA32_MISC_ENABLE, orig);
	report_umbra(!wrmsr_safe(MSR_IA32_MISC_ENABLE, orig ^ (BIT(7) | BIT(11) | BIT(12))) &&
		     rdmsr(MSR_IA32_MISC_ENABLE) == orig,
		     "MISC_ENABLE: writes to the read-only bits 7, 11, 12 are ignored");
	report_umbra(wrmsr_safe(MSR_IA32_MISC_ENABLE, orig | BIT(1)) &&
		     wrmsr_safe(MSR_IA32_MISC_ENABLE, orig | BIT(40)),
		     "MISC_ENABLE: reserved bits 1 and 40 raise #GP");
	wrmsr_safe(MSR_IA32_MISC_ENABLE, orig);
}

/* CPUID.1:EDX.APIC reads 0 while IA32_APIC_BASE[11] is clear (SDM Vol. 3A 10.4.3). */
static void check_apic_bit(void)
{
	u64 base = rdmsr(MSR_IA32_APIC_BASE);
	bool on = cpu_has(1, 0, EDX, 9), off;

	if (!(base & BIT(11))) {
		report_skip("APIC globally disabled at start");
		return;
	}
	wrmsr(MSR_IA32_APIC_BASE, base & ~BIT(11));
	off = cpu_has(1, 0, EDX, 9);
	wrmsr(MSR_IA32_APIC_BASE, base);
	report(on && !off && cpu_has(1, 0, EDX, 9),
	       "CPUID.1:EDX.APIC follows IA32_APIC_BASE[11] (on, off, on again)");
}

/* --- MCA, MTRRs, DEBUGCTL -------------------------------------------------------------------- */

static void check_mca(void)
{
	u64 cap, status, v;
	u32 banks;

	if (!cpu_has(1, 0, EDX, 14)) {
		report_skip("MCA not advertised");
		return;
	}
	report(!rdmsr_safe(MSR_MCG_CAP, &cap) && !rdmsr_safe(MSR_MCG_STATUS, &status),
	       "MCA: MCG_CAP (%#llx) and MCG_STATUS read", cap);
	report(!wrmsr_safe(MSR_MCG_STATUS, 0), "MCA: MCG_STATUS takes 0");
	banks = cap & 0xff;
	if (!(cap & BIT(8)))
		report_umbra(rdmsr_safe(MSR_MCG_CTL, &v), "MCA: no MCG_CTL_P, MCG_CTL raises #GP");
	for (u32 i = 0; i < banks && i < 32; i++)
		report(!rdmsr_safe(MSR_MC0_CTL + 4 * i, &v), "MCA: bank %u MCi_CTL reads", i);
	report_umbra(rdmsr_safe(MSR_MC0_CTL + 4 * banks, &v),
		     "MCA: MC%u_CTL beyond the %u banks raises #GP", banks, banks);
}

static void check_mtrr(void)
{
	u64 cap, def, v;
	bool ok;

	if (!cpu_has(1, 0, EDX, 12)) {
		report_skip("MTRRs not advertised");
		return;
	}
	cap = rdmsr(MSR_IA32_MTRRCAP);
	def = rdmsr(MSR_IA32_MTRR_DEF_TYPE);
	ok = !wrmsr_safe(MSR_IA32_MTRR_DEF_TYPE, BIT(11) | 0) &&
	     rdmsr(MSR_IA32_MTRR_DEF_TYPE) == (BIT(11) | 0) &&
	     !wrmsr_safe(MSR_IA32_MTRR_DEF_TYPE, def) && rdmsr(MSR_IA32_MTRR_DEF_TYPE) == def;
	report(ok, "MTRR: MTRRdefType takes E|UC and back (%#llx)", def);
	report(wrmsr_safe(MSR_IA32_MTRR_DEF_TYPE, BIT(11) | 2) &&
	       wrmsr_safe(MSR_IA32_MTRR_DEF_TYPE, BIT(11) | BIT(12) | 6),
	       "MTRR: MTRRdefType with type 2 or reserved bit 12 raises #GP");
	if (!(cap & 0xff))
		report_umbra(rdmsr_safe(MSR_MTRR_PHYSBASE0, &v),
			     "MTRR: no variable ranges, PHYSBASE0 raises #GP");
	if (!(cap & BIT(8)))
		report_umbra(rdmsr_safe(MSR_MTRR_FIX64K, &v),
			     "MTRR: no fixed ranges, MTRRfix64K_00000 raises #GP");
}

static void check_debugctl(void)
{
	u64 v = ~0ull;

	report(!rdmsr_safe(MSR_IA32_DEBUGCTL, &v), "DEBUGCTL reads (%#llx)", v);
	report(!wrmsr_safe(MSR_IA32_DEBUGCTL, BIT(1)) && rdmsr(MSR_IA32_DEBUGCTL) == BIT(1) &&
	       !wrmsr_safe(MSR_IA32_DEBUGCTL, 0) && rdmsr(MSR_IA32_DEBUGCTL) == 0,
	       "DEBUGCTL.BTF set and cleared");
	report(wrmsr_safe(MSR_IA32_DEBUGCTL, BIT(3)), "DEBUGCTL reserved bit 3 raises #GP");
	report_umbra(wrmsr_safe(MSR_IA32_DEBUGCTL, BIT(0)), "DEBUGCTL.LBR (no LBRs) raises #GP");
}

/* --- MSRs VM entry loads: bad values fault in the guest ------------------------------------- */

static void check_refused(u32 msr, const char *name, u64 bad)
{
	u64 before = rdmsr(msr);

	report(wrmsr_safe(msr, bad) && rdmsr(msr) == before,
	       "%s: writing %#llx raises #GP, value kept", name, bad);
}

static void check_vmcs_loaded_msrs(void)
{
	static const struct {
		u32 msr;
		const char *name;
	} addr_msrs[] = {
		{ MSR_IA32_SYSENTER_ESP, "SYSENTER_ESP" }, { MSR_IA32_SYSENTER_EIP, "SYSENTER_EIP" },
		{ MSR_FS_BASE, "FS_BASE" }, { MSR_GS_BASE, "GS_BASE" },
		{ MSR_KERNEL_GS_BASE, "KERNEL_GS_BASE" }, { MSR_LSTAR, "LSTAR" },
		{ MSR_CSTAR, "CSTAR" },
	};
	u64 high = 0xffff800000001000ull;

	for (unsigned i = 0; i < ARRAY_SIZE(addr_msrs); i++) {
		u64 old = rdmsr(addr_msrs[i].msr);

		check_refused(addr_msrs[i].msr, addr_msrs[i].name, NONCANONICAL);
		check_refused(addr_msrs[i].msr, addr_msrs[i].name, 0x0000800000000000ull);
		report(!wrmsr_safe(addr_msrs[i].msr, high) && rdmsr(addr_msrs[i].msr) == high,
		       "%s: canonical %#llx accepted", addr_msrs[i].name, high);
		wrmsr(addr_msrs[i].msr, old);
	}
	check_refused(MSR_IA32_PAT, "PAT", 0x0007040600070402ull);   /* type 2 */
	check_refused(MSR_IA32_PAT, "PAT", 0x0007040600070408ull);   /* type 8 */
	check_refused(MSR_EFER, "EFER", rdmsr(MSR_EFER) | BIT(1));   /* reserved */
	check_refused(MSR_EFER, "EFER", rdmsr(MSR_EFER) | BIT(13));  /* AMD's LMSLE */
	check_refused(MSR_IA32_DEBUGCTL, "DEBUGCTL", BIT(2));
	/* A CPUID exit and entry after all of them: a VM entry failure would end us here. */
	report(cpuid(0, 0).eax != 0, "still running after the refused writes");
}

/* --- XSETBV and leaf 0xD ------------------------------------------------------------------- */

static int xsetbv_vector(u32 xcr, u64 v)
{
	return ASM_TRY_VECTOR(ASM_TRY("1f") "xsetbv\n1:"
			      : : "c"(xcr), "a"((u32)v), "d"((u32)(v >> 32)) : "memory");
}

static u64 xgetbv0(void)
{
	u32 lo, hi;

	asm volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
	return ((u64)hi << 32) | lo;
}

/* SDM Vol. 2C XSETBV: the values that do not #GP. */
static bool xcr0_architectural(u64 v, u64 supported)
{
	u64 avx512 = 0xe0;

	if (!(v & 1) || (v & ~supported))
		return false;
	if ((v & 4) && !(v & 2))
		return false;
	if (!!(v & 8) != !!(v & 16))
		return false;
	if ((v & avx512) && ((v & avx512) != avx512 || !(v & 4)))
		return false;
	return !!(v & BIT(17)) == !!(v & BIT(18));
}

/* The XSAVE area size for XCR0 = v, from the component offsets and sizes. */
static u32 xsave_size(u64 v)
{
	u32 size = 576;

	for (u32 i = 2; i < 63; i++) {
		struct cpuid_regs c;

		if (!(v & BIT(i)))
			continue;
		c = cpuid(0xd, i);
		if (c.ebx + c.eax > size)
			size = c.ebx + c.eax;
	}
	return size;
}

/* The same for XSAVEC's compacted format (SDM Vol. 1 13.4.3): the components packed in
 * index order after the 576-byte legacy area and header, each 64-byte aligned when leaf
 * 0xD.i:ECX[1] says so. */
static u32 xsavec_size(u64 v)
{
	u32 size = 576;

	for (u32 i = 2; i < 63; i++) {
		struct cpuid_regs c;

		if (!(v & BIT(i)))
			continue;
		c = cpuid(0xd, i);
		if (c.ecx & 2)
			size = (size + 63) & ~63u;
		size += c.eax;
	}
	return size;
}

static u8 xsave_area[4096] __attribute__((aligned(64)));

/* XSAVE (standard) or XSAVEC (compacted) of every component in XCR0 into an area filled
 * with 0xcc; returns the offset just past the last byte written. */
static u32 xsave_written(bool compacted)
{
	u32 end = 0;

	memset(xsave_area, 0xcc, sizeof(xsave_area));
	if (compacted)
		asm volatile("xsavec64 (%0)" : : "r"(xsave_area), "a"(~0u), "d"(~0u) : "memory");
	else
		asm volatile("xsave64 (%0)" : : "r"(xsave_area), "a"(~0u), "d"(~0u) : "memory");
	for (u32 i = 0; i < sizeof(xsave_area); i++)
		if (xsave_area[i] != 0xcc)
			end = i + 1;
	return end;
}

/* What XSAVE and XSAVEC actually write, against leaf 0xD.0:EBX and 0xD.1:EBX (Linux
 * sizes its XSAVEC buffer from 0xD.1:EBX and checks it against the layout; a wrong
 * size is its "XSAVE consistency problem" warning). The highest component is put out of
 * its init state with all-ones in its last register (ZMM31 for Hi16_ZMM, the upper half
 * of YMM15 for AVX), so the area's last 16 bytes are written with ones. */
static void check_xsave_writes(u64 supported)
{
	bool xsavec = cpu_has(0xd, 1, EAX, 1);
	u32 size0, size1, end;

	if (supported & BIT(7))
		asm volatile("vpternlogd $0xff, %%zmm31, %%zmm31, %%zmm31" : : : "memory");
	else if (supported & BIT(2))
		/* VCMPPS TRUE (AVX): VPCMPEQD on ymm needs AVX2, which Sandy Bridge lacks. */
		asm volatile("vcmpps $0xf, %%ymm15, %%ymm15, %%ymm15" : : : "memory");
	else {
		report_skip("XSAVE writes: neither AVX nor AVX-512 offered");
		return;
	}
	size0 = cpuid(0xd, 0).ebx;
	end = xsave_written(false);
	report(end == size0, "XSAVE of XCR0 %#llx writes %u bytes: leaf 0xD.0:EBX is %u",
	       supported, end, size0);
	if (!xsavec) {
		report_skip("XSAVEC not advertised");
		return;
	}
	size1 = cpuid(0xd, 1).ebx;
	end = xsave_written(true);
	/* Exactly: umbra offers XSAVEC only where the CPU's follows the SDM (Bochs 2.7's
	 * starts the extended components at 160 instead of 576 and ends 160 bytes early). */
	report(end == size1 && size1 == xsavec_size(supported),
	       "XSAVEC of XCR0 %#llx writes %u bytes: leaf 0xD.1:EBX is %u, the compacted "
	       "layout's size %u", supported, end, size1, xsavec_size(supported));
}

static void check_xsave(void)
{
	static const u64 candidates[] = {
		0, 1, 2, 3, 5, 7, 0x27, 0x47, 0x87, 0x67, 0xc7, 0xe3, 0xe5, 0xe7, 0x9, 0x11, 0x19,
		0x1b, 0x1f, 0x207, 0x107, 0x807, 0x20007, 0x40007, 0x60007, BIT(62) | 7,
		BIT(63) | 7,
	};
	struct cpuid_regs d0;
	u64 supported, orig;
	bool all_ok = true;

	if (!cpu_has(1, 0, ECX, 26)) {
		report_skip("XSAVE not advertised");
		return;
	}
	write_cr4(read_cr4() | CR4_OSXSAVE);
	report(cpu_has(1, 0, ECX, 27), "CPUID.1:ECX.OSXSAVE follows CR4.OSXSAVE=1");
	d0 = cpuid(0xd, 0);
	supported = ((u64)d0.edx << 32) | d0.eax;
	orig = xgetbv0();
	report_umbra(!(supported & ~0xe7ull), "XCR0 offered %#llx: no MPX, PKRU, AMX", supported);
	for (u32 i = 2; i < 32; i++) {
		struct cpuid_regs c = cpuid(0xd, i);

		if (!!(supported & BIT(i)) != (c.eax != 0)) {
			report(false, "leaf 0xD.%u: size %u but XCR0 bit %s", i, c.eax,
			       supported & BIT(i) ? "offered" : "not offered");
			all_ok = false;
		}
	}
	report(all_ok, "leaf 0xD: a size for exactly the offered components");
	report(d0.ecx == xsave_size(supported), "leaf 0xD.0:ECX %u = area for all offered (%u)",
	       d0.ecx, xsave_size(supported));
	for (unsigned i = 0; i < ARRAY_SIZE(candidates); i++) {
		u64 v = candidates[i];
		bool valid = xcr0_architectural(v, supported);
		int vec = xsetbv_vector(0, v);

		if (valid)
			report(vec == NO_EXCEPTION && xgetbv0() == v &&
			       cpuid(0xd, 0).ebx == xsave_size(v) &&
			       (!cpu_has(0xd, 1, EAX, 1) || cpuid(0xd, 1).ebx == xsavec_size(v)),
			       "XSETBV %#llx accepted, XGETBV and leaf 0xD.0:EBX (%u), 0xD.1:EBX "
			       "(%u) agree", v, cpuid(0xd, 0).ebx, cpuid(0xd, 1).ebx);
		else
			report(vec == GP_VECTOR && xgetbv0() != v,
			       "XSETBV %#llx raises #GP (vector %d)", v, vec);
	}
	if (xsetbv_vector(0, supported) == NO_EXCEPTION)
		check_xsave_writes(supported);
	report(xsetbv_vector(1, 1) == GP_VECTOR && xsetbv_vector(0xffffffffu, 7) == GP_VECTOR,
	       "XSETBV with ECX=1 or 0xffffffff raises #GP");
	report(xsetbv_vector(0, orig) == NO_EXCEPTION && xgetbv0() == orig,
	       "XCR0 %#llx restored", orig);
	report_umbra(!cpu_has(0xd, 1, EAX, 3) && !cpuid(0xd, 1).ecx && !cpuid(0xd, 1).edx,
		     "XSAVES and IA32_XSS components not offered");
}

/* --- leaves and instructions --------------------------------------------------------------- */

static void check_hidden_bits(void)
{
	static const struct {
		const char *name;
		u32 leaf, subleaf;
		int reg, bit;
	} hidden[] = {
		{ "DTES64", 1, 0, ECX, 2 }, { "MONITOR", 1, 0, ECX, 3 }, { "DS-CPL", 1, 0, ECX, 4 },
		{ "VMX", 1, 0, ECX, 5 }, { "SMX", 1, 0, ECX, 6 }, { "EIST", 1, 0, ECX, 7 },
		{ "TM2", 1, 0, ECX, 8 }, { "xTPR", 1, 0, ECX, 14 }, { "PDCM", 1, 0, ECX, 15 },
		{ "x2APIC", 1, 0, ECX, 21 }, { "DS", 1, 0, EDX, 21 }, { "ACPI", 1, 0, EDX, 22 },
		{ "HTT", 1, 0, EDX, 28 }, { "TM", 1, 0, EDX, 29 }, { "PBE", 1, 0, EDX, 31 },
		{ "MPX", 7, 0, EBX, 14 }, { "Intel PT", 7, 0, EBX, 25 }, { "PKU", 7, 0, ECX, 3 },
		{ "OSPKE", 7, 0, ECX, 4 }, { "WAITPKG", 7, 0, ECX, 5 }, { "CET_SS", 7, 0, ECX, 7 },
		{ "LA57", 7, 0, ECX, 16 }, { "KL", 7, 0, ECX, 23 }, { "PKS", 7, 0, ECX, 31 },
		{ "UINTR", 7, 0, EDX, 5 }, { "HYBRID", 7, 0, EDX, 15 }, { "CET_IBT", 7, 0, EDX, 20 },
		{ "AMX-TILE", 7, 0, EDX, 24 }, { "LASS", 7, 1, EAX, 6 }, { "FRED", 7, 1, EAX, 17 },
		{ "LAM", 7, 1, EAX, 26 },
	};

	for (unsigned i = 0; i < ARRAY_SIZE(hidden); i++)
		report_umbra(!cpu_has(hidden[i].leaf, hidden[i].subleaf, hidden[i].reg, hidden[i].bit),
			     "%s hidden", hidden[i].name);
	report_umbra(cpuid(0, 0).eax < 0x14 || !(cpuid(0x14, 0).eax | cpuid(0x14, 0).ebx),
		     "leaf 0x14 (Intel PT) empty");
	report_umbra(cpuid(0, 0).eax < 6 || cpuid(6, 0).eax == BIT(2),
		     "leaf 6: only ARAT (%#x)", cpuid(6, 0).eax);
}

static void check_topology(void)
{
	struct cpuid_regs b0 = cpuid(0xb, 0), b1 = cpuid(0xb, 1), b2 = cpuid(0xb, 2);

	if (cpuid(0, 0).eax < 0xb) {
		report_skip("no leaf 0xB");
		return;
	}
	report_umbra(((cpuid(1, 0).ebx >> 16) & 0xff) == 1, "leaf 1: one logical processor");
	report_umbra((b0.ebx & 0xffff) == 1 && ((b0.ecx >> 8) & 0xff) == 1 && (b0.eax & 0x1f) == 0,
		     "leaf 0xB.0: SMT level with one thread (%#x %#x %#x)", b0.eax, b0.ebx, b0.ecx);
	report_umbra((b1.ebx & 0xffff) == 1 && ((b1.ecx >> 8) & 0xff) == 2,
		     "leaf 0xB.1: core level with one processor (%#x %#x)", b1.ebx, b1.ecx);
	report_umbra(((b2.ecx >> 8) & 0xff) == 0, "leaf 0xB.2: invalid level, the end");
	report(b0.edx == (cpuid(1, 0).ebx >> 24), "leaf 0xB x2APIC ID %u = leaf 1 APIC ID", b0.edx);
}

static void check_instructions(void)
{
	u32 lo, hi, aux;
	u64 desc[2] = { 0, 0 }, fs;
	int vec;

	report(((cpuid(0x80000008, 0).eax >> 8) & 0xff) == (cpu_has(7, 0, ECX, 16) ? 57 : 48),
	       "CPUID.80000008H: %u-bit linear addresses with LA57 %s",
	       (cpuid(0x80000008, 0).eax >> 8) & 0xff, cpu_has(7, 0, ECX, 16) ? "on" : "off");
	if (cpu_has(0x80000001, 0, EDX, 27)) {
		vec = ASM_TRY_VECTOR(ASM_TRY("1f") "rdtscp\n1:" : "=a"(lo), "=d"(hi), "=c"(aux));
		report(vec == NO_EXCEPTION, "RDTSCP advertised and runs");
	}
	if (cpu_has(7, 0, ECX, 22)) {
		u64 pid;

		vec = ASM_TRY_VECTOR(ASM_TRY("1f") "rdpid %0\n1:" : "=r"(pid));
		report(vec == NO_EXCEPTION, "RDPID advertised and runs");
	}
	if (cpu_has(7, 0, EBX, 10)) {
		vec = ASM_TRY_VECTOR(ASM_TRY("1f") "invpcid %0, %1\n1:" : : "m"(desc), "r"(2ul)
				     : "memory");
		report(vec == NO_EXCEPTION, "INVPCID advertised: type 2 runs");
	}
	if (cpu_has(7, 0, EBX, 0)) {
		write_cr4(read_cr4() | CR4_FSGSBASE);
		vec = ASM_TRY_VECTOR(ASM_TRY("1f") "rdfsbase %0\n1:" : "=r"(fs));
		report(vec == NO_EXCEPTION && fs == rdmsr(MSR_FS_BASE),
		       "FSGSBASE advertised: RDFSBASE runs and reads FS_BASE");
		write_cr4(read_cr4() & ~CR4_FSGSBASE);
	}
}

int main(void)
{
	check_msr_features();
	check_pmu();
	check_ds();
	check_misc_enable();
	check_apic_bit();
	check_mca();
	check_mtrr();
	check_debugctl();
	check_vmcs_loaded_msrs();
	check_xsave();
	check_hidden_bits();
	check_topology();
	check_instructions();
	return report_summary();
}
