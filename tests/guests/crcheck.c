/*
 * Control registers and TLB instructions as the SDM defines them, the same under EPT and
 * shadow paging (tests/guests/PLATFORM.md, "Control registers"). Built 32-bit (crcheck:
 * protected mode, paging off) and 64-bit (crcheck64: long mode).
 *  - CR4: each bit tied to a CPUID feature can be set only when CPUID has it (LA57, PKE,
 *    CET, VMXE, ... under umbra never), reserved bits #GP; PCIDE only in IA-32e mode with
 *    CR3[11:0] = 0.
 *  - CR0: ET reads 1, reserved bits 31:0 read 0, bits 63:32 #GP, PG without PE and NW
 *    without CD #GP; in 64-bit mode clearing PG #GP, and with PCIDE too.
 *  - CR3 (64-bit): bits at and above MAXPHYADDR #GP, bit 63 too unless PCIDE (no-flush,
 *    not stored).
 *  - INVLPG of a non-canonical address is a no-op; INVPCID's descriptor at a non-canonical
 *    address #GP(0) (#SS(0) through RBP), a non-canonical type-0 address, a bad type,
 *    reserved bits, a PCID without PCIDE #GP(0); a descriptor across a page boundary works.
 *  - A CR0.WP=0 supervisor write to a read-only user page while SMAP is off does not let a
 *    later SMAP-on supervisor read of that page through.
 */
#include "libguest.h"
#include "paging.h"

#define EAX 0
#define EBX 1
#define ECX 2
#define EDX 3
#define ALWAYS -1

#define CR0_ET BIT(4)
#define CR0_NW BIT(29)
#define CR0_CD BIT(30)
#define CR4_PCIDE BIT(17)
#define CR4_LA57 BIT(12)
#define NONCANONICAL 0x8000000000000000ull
#define IS_64 (sizeof(long) == 8)

static bool cpu_has(u32 leaf, u32 subleaf, int which, int bit)
{
	struct cpuid_regs r;
	u32 v;

	if (which == ALWAYS)
		return true;
	if (leaf > cpuid(leaf & 0x80000000u, 0).eax)
		return false;
	r = cpuid(leaf, subleaf);
	v = which == EAX ? r.eax : which == EBX ? r.ebx : which == ECX ? r.ecx : r.edx;
	return (v >> bit) & 1;
}

static int cr0_write(unsigned long v)
{
	return ASM_TRY_VECTOR(ASM_TRY("1f") "mov %0, %%cr0\n1:" : : "r"(v) : "memory");
}

static int cr4_write(unsigned long v)
{
	return ASM_TRY_VECTOR(ASM_TRY("1f") "mov %0, %%cr4\n1:" : : "r"(v) : "memory");
}

/* --- CR4 ------------------------------------------------------------------------------------- */

/* toggle: safe to set and clear again here (no paging or CR0.WP prerequisites). */
static const struct {
	int bit;
	const char *name;
	u32 leaf, subleaf;
	int reg, fbit;
	bool toggle;
} cr4_bits[] = {
	{ 0, "VME", 1, 0, EDX, 1, true }, { 1, "PVI", 1, 0, EDX, 1, true },
	{ 2, "TSD", 1, 0, EDX, 4, true }, { 3, "DE", 1, 0, EDX, 2, true },
	{ 4, "PSE", 1, 0, EDX, 3, true }, { 6, "MCE", 1, 0, EDX, 7, true },
	{ 7, "PGE", 1, 0, EDX, 13, true }, { 8, "PCE", 0, 0, ALWAYS, 0, true },
	{ 9, "OSFXSR", 1, 0, EDX, 24, true }, { 10, "OSXMMEXCPT", 1, 0, EDX, 25, true },
	{ 11, "UMIP", 7, 0, ECX, 2, true }, { 12, "LA57", 7, 0, ECX, 16, false },
	{ 13, "VMXE", 1, 0, ECX, 5, false }, { 14, "SMXE", 1, 0, ECX, 6, false },
	{ 16, "FSGSBASE", 7, 0, EBX, 0, true }, { 18, "OSXSAVE", 1, 0, ECX, 26, true },
	{ 19, "KL", 7, 0, ECX, 23, false }, { 20, "SMEP", 7, 0, EBX, 7, false },
	{ 21, "SMAP", 7, 0, EBX, 20, false }, { 22, "PKE", 7, 0, ECX, 3, false },
	{ 23, "CET", 7, 0, ECX, 7, false }, { 24, "PKS", 7, 0, ECX, 31, false },
	{ 25, "UINTR", 7, 0, EDX, 5, false }, { 27, "LASS", 7, 1, EAX, 6, false },
	{ 28, "LAM_SUP", 7, 1, EAX, 26, false }, { 32, "FRED", 7, 1, EAX, 17, false },
};

static void check_cr4_bits(void)
{
	unsigned long cr4 = read_cr4();
	int width = IS_64 ? 64 : 32;

	for (int bit = 0; bit < width; bit++) {
		unsigned long b = 1ul << bit;
		const char *name = "reserved";
		bool adv = false, toggle = false;
		int vec;

		if (bit == 5 || bit == 17 || (cr4 & b))
			continue;  /* PAE and PCIDE: below; set ones stay set */
		for (unsigned i = 0; i < ARRAY_SIZE(cr4_bits); i++) {
			if (cr4_bits[i].bit != bit)
				continue;
			name = cr4_bits[i].name;
			adv = cpu_has(cr4_bits[i].leaf, cr4_bits[i].subleaf, cr4_bits[i].reg,
				      cr4_bits[i].fbit);
			if (bit == 23)  /* CET: shadow stacks or IBT */
				adv = adv || cpu_has(7, 0, EDX, 20);
			toggle = cr4_bits[i].toggle;
		}
		if (IS_64 && bit == 12)
			adv = false;  /* LA57 cannot change in IA-32e mode */
		if (!adv) {
			vec = cr4_write(cr4 | b);
			report(vec == GP_VECTOR && read_cr4() == cr4,
			       "CR4.%s (bit %d) not offered: setting it raises #GP (vector %d)", name,
			       bit, vec);
		} else if (toggle) {
			vec = cr4_write(cr4 | b);
			report(vec == NO_EXCEPTION && read_cr4() == (cr4 | b) &&
			       cr4_write(cr4) == NO_EXCEPTION && read_cr4() == cr4,
			       "CR4.%s (bit %d) offered: set, read back, cleared", name, bit);
		}
	}
	report_umbra(!cpu_has(7, 0, ECX, 16) && !cpu_has(7, 0, ECX, 3) && !cpu_has(7, 0, ECX, 7) &&
		     !cpu_has(7, 0, EDX, 20),
		     "CPUID hides LA57, PKU, CET shadow stacks and IBT");
	if (IS_64)
		report(cr4_write(cr4 & ~CR4_PAE) == GP_VECTOR && read_cr4() == cr4,
		       "CR4.PAE cleared in IA-32e mode raises #GP");
	if (!IS_64 && cpu_has(1, 0, ECX, 17))
		report(cr4_write(cr4 | CR4_PCIDE) == GP_VECTOR && read_cr4() == cr4,
		       "CR4.PCIDE outside IA-32e mode raises #GP");
}

/* --- CR0 ------------------------------------------------------------------------------------- */

static void check_cr0(void)
{
	unsigned long cr0 = read_cr0();
	int vec;

	report((cr0 & CR0_ET) && cr0_write(cr0 & ~CR0_ET) == NO_EXCEPTION && (read_cr0() & CR0_ET),
	       "CR0.ET reads 1, also after writing 0");
	vec = cr0_write(cr0 | BIT(6) | BIT(17));
	report(vec == NO_EXCEPTION && !(read_cr0() & (BIT(6) | BIT(17))),
	       "CR0 reserved bits 6 and 17: no #GP, read as 0 (vector %d, CR0 %#lx)", vec,
	       read_cr0());
	cr0_write(cr0);
	report(cr0_write((cr0 | CR0_NW) & ~CR0_CD) == GP_VECTOR && read_cr0() == cr0,
	       "CR0.NW without CD raises #GP");
#ifdef __x86_64__
	report(cr0_write(cr0 | BIT(32)) == GP_VECTOR && cr0_write(cr0 | BIT(63)) == GP_VECTOR &&
	       read_cr0() == cr0, "CR0 bits 32 and 63 raise #GP");
	report(cr0_write(cr0 & ~CR0_PG) == GP_VECTOR && read_cr0() == cr0,
	       "clearing CR0.PG in 64-bit mode raises #GP");
#else
	report(cr0_write((cr0 & ~CR0_PE) | CR0_PG) == GP_VECTOR && read_cr0() == cr0,
	       "CR0.PG without PE raises #GP");
#endif
}

/* --- CR3 and PCIDE (64-bit) ------------------------------------------------------------------- */

#ifdef __x86_64__
static int cr3_write(unsigned long v)
{
	return ASM_TRY_VECTOR(ASM_TRY("1f") "mov %0, %%cr3\n1:" : : "r"(v) : "memory");
}

static void check_cr3(void)
{
	unsigned long cr3 = read_cr3();
	u32 maxphy = cpuid(0x80000008, 0).eax & 0xff;

	report(cr3_write(cr3 | (1ul << maxphy)) == GP_VECTOR && read_cr3() == cr3,
	       "CR3 bit %u (MAXPHYADDR) raises #GP", maxphy);
	report(cr3_write(cr3 | BIT(62)) == GP_VECTOR && read_cr3() == cr3,
	       "CR3 bit 62 raises #GP");
	report(cr3_write(cr3 | BIT(63)) == GP_VECTOR && read_cr3() == cr3,
	       "CR3 bit 63 without PCIDE raises #GP");
}

static void check_pcid(void)
{
	unsigned long cr0 = read_cr0(), cr3 = read_cr3(), cr4 = read_cr4();

	if (!cpu_has(1, 0, ECX, 17)) {
		report(cr4_write(cr4 | CR4_PCIDE) == GP_VECTOR, "PCID not offered: CR4.PCIDE #GP");
		return;
	}
	report(!(cr3 & 0xfff), "CR3[11:0] = 0 to start with (%#lx)", cr3);
	write_cr3(cr3 | 1);
	report(cr4_write(cr4 | CR4_PCIDE) == GP_VECTOR && read_cr4() == cr4,
	       "CR4.PCIDE with CR3[11:0] = 1 raises #GP");
	write_cr3(cr3);
	report(cr4_write(cr4 | CR4_PCIDE) == NO_EXCEPTION && (read_cr4() & CR4_PCIDE),
	       "CR4.PCIDE with CR3[11:0] = 0 is set");
	report(cr0_write(cr0 & ~CR0_PG) == GP_VECTOR && read_cr0() == cr0,
	       "clearing CR0.PG with PCIDE raises #GP");
	report(cr3_write(cr3 | 5) == NO_EXCEPTION && read_cr3() == (cr3 | 5),
	       "PCIDE: CR3 takes PCID 5");
	report(cr3_write(cr3 | BIT(63)) == NO_EXCEPTION && read_cr3() == cr3,
	       "PCIDE: CR3 bit 63 (no flush) accepted, not stored");
	report(cr3_write(cr3 | BIT(62)) == GP_VECTOR && read_cr3() == cr3,
	       "PCIDE: CR3 bit 62 still raises #GP");
	report(cr4_write(cr4) == NO_EXCEPTION && read_cr4() == cr4, "CR4.PCIDE cleared");
}

/* --- INVLPG and INVPCID (64-bit) ----------------------------------------------------------------- */

struct invpcid_desc {
	u64 pcid, addr;
};

static int invpcid_at(unsigned long type, const void *desc)
{
	return ASM_TRY_VECTOR(ASM_TRY("1f") "invpcid (%0), %1\n1:"
			      : : "r"(desc), "r"(type) : "memory");
}

/* Through RBP: the SS segment. */
static int invpcid_via_rbp(unsigned long type, unsigned long addr)
{
	return ASM_TRY_VECTOR("push %%rbp\n\tmov %%rsi, %%rbp\n\t" ASM_TRY("1f")
			      "invpcid (%%rbp), %%rcx\n1:\tpop %%rbp"
			      : : "S"(addr), "c"(type) : "memory");
}

static u8 page_pair[2 * 4096] __attribute__((aligned(4096)));

static void check_tlb_instructions(void)
{
	struct invpcid_desc d = { 0, 0 }, *across = (void *)(page_pair + 4096 - 8);
	int vec;

	vec = ASM_TRY_VECTOR(ASM_TRY("1f") "invlpg (%0)\n1:" : : "r"(NONCANONICAL) : "memory");
	report(vec == NO_EXCEPTION, "INVLPG of non-canonical %#llx: no fault (vector %d)",
	       NONCANONICAL, vec);
	vec = ASM_TRY_VECTOR(ASM_TRY("1f") "invlpg (%0)\n1:" : : "r"(0x0000900000000000ull)
			     : "memory");
	report(vec == NO_EXCEPTION, "INVLPG of non-canonical 0x900000000000: no fault");
	if (!cpu_has(7, 0, EBX, 10)) {
		report(invpcid_at(2, &d) == UD_VECTOR, "INVPCID not offered: #UD");
		return;
	}
	for (unsigned long type = 0; type < 4; type++)
		report(invpcid_at(type, &d) == NO_EXCEPTION, "INVPCID type %lu, PCID 0 runs", type);
	vec = invpcid_at(2, (void *)(NONCANONICAL + 0x1000));
	report(vec == GP_VECTOR && last_exception.error_code == 0,
	       "INVPCID descriptor at a non-canonical address: #GP(0) (vector %d)", vec);
	vec = invpcid_at(2, (void *)0x00007ffffffffff8ull);
	report(vec == GP_VECTOR, "INVPCID descriptor crossing out of the canonical range: #GP (%d)",
	       vec);
	vec = invpcid_via_rbp(2, NONCANONICAL + 0x1000);
	report(vec == SS_VECTOR && last_exception.error_code == 0,
	       "INVPCID descriptor at a non-canonical address through RBP: #SS(0) (vector %d)", vec);
	d.addr = NONCANONICAL;
	report(invpcid_at(0, &d) == GP_VECTOR, "INVPCID type 0 of a non-canonical address: #GP");
	report(invpcid_at(2, &d) == NO_EXCEPTION, "INVPCID type 2 ignores the address");
	d.addr = 0;
	report(invpcid_at(4, &d) == GP_VECTOR, "INVPCID type 4: #GP");
	d.pcid = BIT(12);
	report(invpcid_at(2, &d) == GP_VECTOR, "INVPCID descriptor bit 12 (reserved): #GP");
	d.pcid = 1;
	report(invpcid_at(0, &d) == GP_VECTOR && invpcid_at(1, &d) == GP_VECTOR,
	       "INVPCID types 0 and 1 with PCID 1 while CR4.PCIDE=0: #GP");
	report(invpcid_at(3, &d) == NO_EXCEPTION, "INVPCID type 3 ignores the PCID");
	*across = (struct invpcid_desc){ 0, 0x1000 };
	report(invpcid_at(0, across) == NO_EXCEPTION, "INVPCID descriptor across a page boundary");
	across->addr = NONCANONICAL;
	report(invpcid_at(0, across) == GP_VECTOR,
	       "INVPCID descriptor across a page boundary: its second page is read too");
}
#endif

/* --- SMAP after a CR0.WP=0 write ------------------------------------------------------------ */

static void check_smap_after_wp0_write(void)
{
	unsigned long va;
	u64 frame;
	struct probe_result w, r;

	if (!paging_init(IS_64 ? PAGING_LONG : PAGING_32))
		return;
	if (!paging_cpu.smap) {
		report_skip("no SMAP");
		return;
	}
	va = paging_test_base();
	frame = alloc_frame();
	map_page(aspace_kernel(), va, frame, PTE_P | PTE_U, LEVEL_PTE);  /* user, read-only */
	flush_tlb();
	set_smap(false);
	set_cr0_wp(false);
	w = probe(va, PROBE_WRITE, 0, false, 0x99);
	set_smap(true);
	flush_tlb();
	r = probe(va, PROBE_READ, 0, false, 0);
	set_cr0_wp(true);
	set_smap(false);
	report(!w.faulted && *(volatile u32 *)phys_to_virt(frame) == 0x99,
	       "CR0.WP=0: supervisor write to a read-only user page allowed");
	report(r.faulted && r.error_code == PFEC_P && r.cr2 == va,
	       "then SMAP on: supervisor read of that page faults (error %#lx)", r.error_code);
}

int main(void)
{
	check_cr4_bits();
	check_cr0();
#ifdef __x86_64__
	check_cr3();
	check_pcid();
	check_tlb_instructions();
#endif
	check_smap_after_wp0_write();
	return report_summary();
}
