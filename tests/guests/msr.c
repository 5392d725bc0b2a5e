/*
 * MSR access as the platform contract allows it (tests/guests/PLATFORM.md, "MSRs allowed"):
 * allowed MSRs keep what is written (and, where the CPU uses them, act on it), read-only ones
 * read without faulting, and anything else raises #GP(0). Built 32-bit (msr) and 64-bit
 * (msr64, which adds FS/GS_BASE, KERNEL_GS_BASE and SWAPGS).
 */
#include "libguest.h"

#define EXT_EDX_NX BIT(20)
#define EXT_EDX_RDTSCP BIT(27)
#define LEAF7_EBX_TSC_ADJUST BIT(1)
#define TSC_JUMP (1ull << 40)
/* Generous: a few seconds of TSC at several GHz (this is not a timing test). */
#define TSC_SLACK (1ull << 36)

static void check_round_trip(u32 msr, const char *name, u64 value)
{
	u64 old, got = 0;
	bool write_faulted, read_faulted;

	if (rdmsr_safe(msr, &old)) {
		report(false, "%s: rdmsr does not fault", name);
		return;
	}
	write_faulted = wrmsr_safe(msr, value);
	read_faulted = rdmsr_safe(msr, &got);
	wrmsr_safe(msr, old);
	report(!write_faulted && !read_faulted && got == value,
	       "%s: wrote %#llx, read %#llx%s", name, value, got,
	       write_faulted ? " (wrmsr faulted)" : read_faulted ? " (rdmsr faulted)" : "");
}

static void check_efer(void)
{
	u64 efer = rdmsr(MSR_EFER), with, without;

	if (!(cpuid(0x80000001, 0).edx & EXT_EDX_NX)) {
		report_skip("EFER.NXE toggling: CPU has no NX");
		return;
	}
	wrmsr(MSR_EFER, efer | EFER_NXE);
	with = rdmsr(MSR_EFER);
	wrmsr(MSR_EFER, efer & ~EFER_NXE);
	without = rdmsr(MSR_EFER);
	wrmsr(MSR_EFER, efer);
	report((with & EFER_NXE) && !(without & EFER_NXE), "EFER.NXE set then cleared");
	/* In long mode LME/LMA must survive the writes; outside, they stay clear. */
	u64 mode_bits = EFER_LME | EFER_LMA;

	report((with & mode_bits) == (efer & mode_bits) &&
	       (without & mode_bits) == (efer & mode_bits) &&
	       (rdmsr(MSR_EFER) & mode_bits) == (sizeof(long) == 8 ? mode_bits : 0),
	       "EFER.LME/LMA unchanged by NXE writes (EFER %#llx)", efer);
}

static void check_syscall_msrs(void)
{
	check_round_trip(MSR_STAR, "STAR", 0x0023001000000000ull);
	check_round_trip(MSR_LSTAR, "LSTAR", 0xffffffff81234560ull);
	check_round_trip(MSR_CSTAR, "CSTAR", 0xffffffff81234570ull);
	check_round_trip(MSR_SFMASK, "SFMASK", 0x47700);
	check_round_trip(MSR_IA32_SYSENTER_CS, "SYSENTER_CS", 0x10);
	check_round_trip(MSR_IA32_SYSENTER_ESP, "SYSENTER_ESP", 0x12345670);
	check_round_trip(MSR_IA32_SYSENTER_EIP, "SYSENTER_EIP", 0x89abcde0);
}

#ifdef __x86_64__
static u64 read_gs0(void)
{
	u64 v;

	asm volatile("mov %%gs:0, %0" : "=r"(v));
	return v;
}

static u64 read_fs0(void)
{
	u64 v;

	asm volatile("mov %%fs:0, %0" : "=r"(v));
	return v;
}

/* The segment base MSRs are the real bases in 64-bit mode (SDM Vol. 3A 3.4.4). */
static void check_segment_bases(void)
{
	static u64 fs_word = 0x1111111111111111ull, gs_word = 0x2222222222222222ull;
	static u64 kernel_gs_word = 0x3333333333333333ull;
	u64 gs_base, kernel_gs_base;

	check_round_trip(MSR_FS_BASE, "FS_BASE", 0x7fff12345000ull);
	check_round_trip(MSR_GS_BASE, "GS_BASE", 0xffff800012345000ull);
	check_round_trip(MSR_KERNEL_GS_BASE, "KERNEL_GS_BASE", 0xffff800054321000ull);

	wrmsr(MSR_FS_BASE, (unsigned long)&fs_word);
	wrmsr(MSR_GS_BASE, (unsigned long)&gs_word);
	wrmsr(MSR_KERNEL_GS_BASE, (unsigned long)&kernel_gs_word);
	report(read_fs0() == fs_word, "FS_BASE is the base of %%fs");
	report(read_gs0() == gs_word, "GS_BASE is the base of %%gs");
	asm volatile("swapgs" ::: "memory");
	gs_base = rdmsr(MSR_GS_BASE);
	kernel_gs_base = rdmsr(MSR_KERNEL_GS_BASE);
	report(read_gs0() == kernel_gs_word && gs_base == (unsigned long)&kernel_gs_word &&
	       kernel_gs_base == (unsigned long)&gs_word,
	       "SWAPGS exchanges GS_BASE and KERNEL_GS_BASE");
	asm volatile("swapgs" ::: "memory");
	wrmsr(MSR_FS_BASE, 0);
	wrmsr(MSR_GS_BASE, 0);
	wrmsr(MSR_KERNEL_GS_BASE, 0);
}
#endif

static void check_pat(void)
{
	u64 pat = rdmsr(MSR_IA32_PAT);

	printf("PAT %#llx\n", pat);
	/* Entries 1 and 5 become WC (1) instead of their usual WT: valid memory types only. */
	u64 wc_in_1_and_5 = (pat & ~0x0000000700000700ull) | 0x0000000100000100ull;

	check_round_trip(MSR_IA32_PAT, "PAT", wc_in_1_and_5);
}

static bool tsc_near(u64 target)
{
	u64 now = rdtsc();

	return now >= target && now - target < TSC_SLACK;
}

static void check_tsc(void)
{
	u64 target = rdtsc() + TSC_JUMP, prev, msr_value, after;
	bool monotonic = true;

	wrmsr(MSR_IA32_TSC, target);
	report_umbra(tsc_near(target), "TSC write moves RDTSC forward by 2^40");

	prev = rdtsc();
	for (int i = 0; i < 1000; i++) {
		u64 now = rdtsc();

		if (now < prev)
			monotonic = false;
		prev = now;
	}
	report(monotonic, "RDTSC monotonic over 1000 reads");

	msr_value = rdmsr(MSR_IA32_TSC);
	after = rdtsc();
	report_umbra(msr_value >= prev && msr_value <= after,
		     "RDMSR(TSC) %#llx is between two RDTSCs", msr_value);

	/* Back to roughly where it was: TSC writes may also go backwards. */
	target = rdtsc() - TSC_JUMP;
	wrmsr(MSR_IA32_TSC, target);
	report_umbra(tsc_near(target), "TSC write moves RDTSC back by 2^40");
}

static void check_tsc_aux(void)
{
	u32 aux;

	if (!(cpuid(0x80000001, 0).edx & EXT_EDX_RDTSCP)) {
		report_skip("TSC_AUX: CPU has no RDTSCP");
		return;
	}
	check_round_trip(MSR_TSC_AUX, "TSC_AUX", 0x42);
	wrmsr(MSR_TSC_AUX, 0x42);
	asm volatile("rdtscp" : "=c"(aux) : : "eax", "edx");
	report(aux == 0x42, "RDTSCP returns TSC_AUX (%#x)", aux);
}

/* Writing TSC_ADJUST moves the TSC by the same amount (SDM Vol. 3B 18.17.3). */
static void check_tsc_adjust(void)
{
	u64 adjust, before, after;

	if (cpuid(0, 0).eax < 7 || !(cpuid(7, 0).ebx & LEAF7_EBX_TSC_ADJUST)) {
		report_skip("TSC_ADJUST: CPU has no IA32_TSC_ADJUST");
		return;
	}
	adjust = rdmsr(MSR_IA32_TSC_ADJUST);
	before = rdtsc();
	wrmsr(MSR_IA32_TSC_ADJUST, adjust + TSC_JUMP);
	after = rdtsc();
	report(rdmsr(MSR_IA32_TSC_ADJUST) == adjust + TSC_JUMP, "TSC_ADJUST keeps a written value");
	wrmsr(MSR_IA32_TSC_ADJUST, adjust);
	report(after - before >= TSC_JUMP && after - before < TSC_JUMP + TSC_SLACK,
	       "TSC_ADJUST += 2^40 moves RDTSC forward by 2^40");
}

static void check_readable(u32 msr, const char *name)
{
	u64 v;
	bool faulted = rdmsr_safe(msr, &v);

	report(!faulted, "%s (%#x) readable: %#llx", name, msr, v);
}

static void check_read_only_msrs(void)
{
	u64 ucode_rev;
	bool write_faulted;

	check_readable(MSR_IA32_MISC_ENABLE, "MISC_ENABLE");
	check_readable(MSR_IA32_APIC_BASE, "APIC_BASE");
	check_readable(MSR_IA32_MTRRCAP, "MTRRcap");
	check_readable(MSR_IA32_MTRR_DEF_TYPE, "MTRRdefType");
	check_readable(MSR_IA32_PLATFORM_ID, "PLATFORM_ID");
	check_readable(MSR_IA32_UCODE_REV, "UCODE_REV");
	/* The microcode signature protocol (SDM Vol. 3A 9.11.7.1): write 0, CPUID(1),
	 * read. Linux's early_init_intel does exactly this; the write must not fault. */
	write_faulted = wrmsr_safe(MSR_IA32_UCODE_REV, 0);
	cpuid(1, 0);
	report(!write_faulted && !rdmsr_safe(MSR_IA32_UCODE_REV, &ucode_rev),
	       "UCODE_REV: write 0, CPUID(1), read (signature %#llx)", ucode_rev >> 32);
	if (is_umbra())
		report(!rdmsr_safe(MSR_IA32_UCODE_REV, &ucode_rev) && ucode_rev == 0,
		       "umbra: UCODE_REV reads 0");
	else
		report_skip("umbra: UCODE_REV reads 0 (not under umbra)");
}

/* Denied accesses must raise #GP(0). */
static void check_denied(u32 msr, bool write)
{
	u64 v = 0;
	bool faulted = write ? wrmsr_safe(msr, 0) : rdmsr_safe(msr, &v);
	const char *what = write ? "wrmsr" : "rdmsr";

	if (faulted) {
		report(last_exception.error_code == 0, "%s %#x raises #GP(%lu)", what, msr,
		       last_exception.error_code);
	} else {
		report_umbra(false, "%s %#x raises #GP (returned normally, value %#llx)", what,
			     msr, v);
	}
}

int main(void)
{
	check_efer();
	check_syscall_msrs();
#ifdef __x86_64__
	check_segment_bases();
#endif
	check_pat();
	check_tsc();
	check_tsc_aux();
	check_tsc_adjust();
	check_read_only_msrs();
	check_denied(MSR_IA32_VMX_BASIC, false);
	check_denied(MSR_IA32_FEATURE_CONTROL, true);
	check_denied(0x12345678, false);
	check_denied(0x12345678, true);
	return report_summary();
}
