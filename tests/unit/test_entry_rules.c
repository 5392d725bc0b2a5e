/*
 * The software VM-entry checker's rules (vmx/entry_rules.c) on made-up guest
 * states: a state like the one vmx/vcpu.c builds for a 64-bit guest breaks
 * none; breaking one field breaks exactly the rule that names it, with its
 * SDM section (27.3.1.x).
 */
#include <string.h>
#include "unit.h"
#include "vmx/entry_rules.h"
#include "vmx/vmx.h"
#include "arch/x86/cpu.h"

#define NONCANONICAL 0x8000000000000000ull

struct seen {
	int count;
	char sdm[16];
	char what[160];
};

static void record(void *ctx, const char *sdm, const char *what)
{
	struct seen *s = ctx;

	s->count++;
	snprintf(s->sdm, sizeof(s->sdm), "%s", sdm);
	snprintf(s->what, sizeof(s->what), "%s", what);
}

/* A 64-bit guest as umbra starts one, with Bochs' fixed bits. */
static struct entry_state good(void)
{
	return (struct entry_state){
		.cr0 = CR0_PE | CR0_ET | CR0_NE | CR0_PG | CR0_WP,
		.cr3 = 0x10b000,
		.cr4 = CR4_PAE | CR4_VMXE,
		.efer = EFER_LME | EFER_LMA,
		.rflags = RFLAGS_FIXED,
		.dr7 = 0x400,
		.pat = 0x0007040600070406ull,
		.cr0_fixed0 = CR0_PE | CR0_NE | CR0_PG,
		.cr0_fixed1 = 0xffffffff,
		.cr4_fixed0 = CR4_VMXE,
		.cr4_fixed1 = 0x3727ff,
		.maxphyaddr = 40,
		.entry_controls = ENTRY_LOAD_DEBUG_CONTROLS | ENTRY_IA32E_MODE_GUEST |
				  ENTRY_LOAD_IA32_PAT | ENTRY_LOAD_IA32_EFER,
		.unrestricted = true,
		.cs_ar = 0xa09b,
		.ss_ar = 0xc093,
		.tr_ar = 0x008b,
		.ldtr_ar = BIT(16),
		.gdtr_base = 0x1000,
		.sysenter_esp = 0xffff800000001000ull,
		.sysenter_eip = 0xffffffff81000000ull,
		.link_pointer = ~0ull,
	};
}

static struct seen check(const struct entry_state *s)
{
	struct seen seen;

	memset(&seen, 0, sizeof(seen));
	CHECK_EQ(entry_rules_check(s, record, &seen), seen.count);
	return seen;
}

/* Exactly one rule broken, in section sdm, its text containing word. */
static void expect_one(const struct entry_state *s, const char *sdm, const char *word)
{
	struct seen seen = check(s);

	CHECK_EQ(seen.count, 1);
	CHECK(strcmp(seen.sdm, sdm) == 0);
	CHECK(strstr(seen.what, word) != NULL);
}

TEST(good_state_breaks_nothing)
{
	struct entry_state s = good();

	CHECK_EQ(check(&s).count, 0);
}

TEST(sysenter_must_be_canonical)
{
	struct entry_state s = good();

	s.sysenter_eip = NONCANONICAL;
	expect_one(&s, "27.3.1.1", "SYSENTER_ESP and IA32_SYSENTER_EIP must be canonical");
	s = good();
	s.sysenter_esp = 0x0000800000000000ull;
	expect_one(&s, "27.3.1.1", "SYSENTER");
}

TEST(pat_entries_must_be_valid_when_loaded)
{
	struct entry_state s = good();

	s.pat = 0x0007040600070402ull;
	expect_one(&s, "27.3.1.1", "IA32_PAT");
	s.entry_controls &= ~ENTRY_LOAD_IA32_PAT;
	CHECK_EQ(check(&s).count, 0);
}

TEST(efer_reserved_bits)
{
	struct entry_state s = good();

	s.efer |= BIT(1);
	expect_one(&s, "27.3.1.1", "IA32_EFER reserved bits");
}

TEST(debugctl_and_dr7_when_debug_controls_load)
{
	struct entry_state s = good();

	s.debugctl = BIT(3);
	expect_one(&s, "27.3.1.1", "IA32_DEBUGCTL");
	s.debugctl = BIT(1);  /* BTF */
	CHECK_EQ(check(&s).count, 0);
	s.dr7 = 1ull << 32;
	expect_one(&s, "27.3.1.1", "DR7");
}

TEST(cr4_and_cr3)
{
	struct entry_state s = good();

	s.cr3 |= 1ull << 40;
	expect_one(&s, "27.3.1.1", "CR3");
	s = good();
	s.cr4 |= CR4_PKE;  /* not in this CPU's CR4_FIXED1 */
	expect_one(&s, "27.3.1.1", "CR4 must respect");
	s = good();
	s.entry_controls &= ~ENTRY_IA32E_MODE_GUEST;
	s.efer = 0;
	s.cs_ar = 0xc09b;
	s.cr4 |= CR4_PCIDE;
	expect_one(&s, "27.3.1.1", "PCIDE");
}

TEST(segment_and_table_bases_canonical)
{
	struct entry_state s = good();

	s.fs_base = NONCANONICAL;
	expect_one(&s, "27.3.1.2", "base addresses must be canonical");
	s = good();
	s.ldtr_base = NONCANONICAL;  /* unusable LDTR: its base does not count */
	CHECK_EQ(check(&s).count, 0);
	s.ldtr_ar = 0x82;
	expect_one(&s, "27.3.1.2", "LDTR");
	s = good();
	s.idtr_base = NONCANONICAL;
	expect_one(&s, "27.3.1.3", "GDTR and IDTR");
}

TEST(earlier_rules_still_named)
{
	struct entry_state s = good();

	s.tr_ar = BIT(16);
	expect_one(&s, "27.3.1.2", "TR must be usable");
	s = good();
	s.link_pointer = 0;
	expect_one(&s, "27.3.1.5", "link pointer");
	s = good();
	s.rflags |= BIT(3);
	expect_one(&s, "27.3.1.4", "RFLAGS reserved");
}

UNIT_MAIN()
