/*
 * CPUID as the platform contract describes it (tests/guests/PLATFORM.md, "CPU"): a sane
 * vendor string and leaf ranges everywhere; under umbra also VMX hidden, the hypervisor bit,
 * leaf 0x40000000 signature and max leaf, and leaf 0x40000001 interface version.
 */
#include "libguest.h"

#define LEAF1_ECX_VMX BIT(5)
#define LEAF1_ECX_HYPERVISOR BIT(31)
#define EXT_EDX_LM BIT(29)
#define HV_LEAF_BASE 0x40000000
#define UMBRA_INTERFACE_VERSION 1

static bool printable_vendor(const struct cpuid_regs *r)
{
	u32 words[3] = { r->ebx, r->edx, r->ecx };
	const char *s = (const char *)words;

	for (int i = 0; i < 12; i++)
		if (s[i] < 0x20 || s[i] > 0x7e)
			return false;
	return true;
}

static bool same_regs(struct cpuid_regs a, struct cpuid_regs b)
{
	return a.eax == b.eax && a.ebx == b.ebx && a.ecx == b.ecx && a.edx == b.edx;
}

static void check_vendor_and_ranges(void)
{
	struct cpuid_regs leaf0 = cpuid(0, 0);
	u32 vendor[4] = { leaf0.ebx, leaf0.edx, leaf0.ecx, 0 };
	u32 max_ext = cpuid(0x80000000, 0).eax;

	printf("vendor \"%s\", max basic leaf %#x, max extended leaf %#x\n",
	       (const char *)vendor, leaf0.eax, max_ext);
	report(printable_vendor(&leaf0), "vendor string is 12 printable characters");
	report(leaf0.eax >= 1 && leaf0.eax < 0x100, "max basic leaf %#x in [1, 0xff]", leaf0.eax);
	report(max_ext >= 0x80000001 && max_ext <= 0x800000ff,
	       "max extended leaf %#x in [0x80000001, 0x800000ff]", max_ext);
	report(same_regs(leaf0, cpuid(0, 0)), "leaf 0 is the same twice");

	struct cpuid_regs ext1 = cpuid(0x80000001, 0);

	/* We got here through long mode (64-bit build) or the CPU offers it to a 64-bit OS. */
	if (sizeof(long) == 8)
		report(ext1.edx & EXT_EDX_LM, "long mode bit set while running in long mode");

	/* Intel: leaves above the maximum return the highest basic leaf (SDM Vol. 2A CPUID). */
	if (!memcmp(vendor, "GenuineIntel", 12))
		report(same_regs(cpuid(leaf0.eax + 1, 0), cpuid(leaf0.eax, 0)),
		       "leaf max+1 returns leaf max (Intel rule)");
	else
		report_skip("leaf max+1 returns leaf max: only an Intel rule");
}

static void check_umbra_leaves(void)
{
	struct cpuid_regs leaf1 = cpuid(1, 0);

	if (!is_umbra()) {
		struct cpuid_regs other = cpuid(HV_LEAF_BASE, 0);
		u32 other_sig[4] = { other.ebx, other.ecx, other.edx, 0 };

		printf("not umbra: leaf 1 ECX %#x, leaf 0x40000000 EAX %#x \"%s\"\n",
		       leaf1.ecx, other.eax, (const char *)other_sig);
		report_skip("umbra: VMX hidden (not under umbra)");
		report_skip("umbra: hypervisor leaves (not under umbra)");
		return;
	}
	struct cpuid_regs hv = cpuid(HV_LEAF_BASE, 0);
	u32 sig[4] = { hv.ebx, hv.ecx, hv.edx, 0 };

	report(!(leaf1.ecx & LEAF1_ECX_VMX), "umbra: leaf 1 ECX.VMX clear");
	report(leaf1.ecx & LEAF1_ECX_HYPERVISOR, "umbra: leaf 1 ECX.hypervisor set");
	report(!memcmp(sig, "UmbraUmbraHV", 12), "umbra: signature \"%s\"", (const char *)sig);
	report(hv.eax == HV_LEAF_BASE + 1, "umbra: max hypervisor leaf %#x", hv.eax);
	report(cpuid(HV_LEAF_BASE + 1, 0).eax == UMBRA_INTERFACE_VERSION,
	       "umbra: interface version %u", cpuid(HV_LEAF_BASE + 1, 0).eax);
	report(cpuid(0, 0).eax < HV_LEAF_BASE, "umbra: hypervisor leaves outside the basic range");
}

int main(void)
{
	check_vendor_and_ranges();
	check_umbra_leaves();
	return report_summary();
}
