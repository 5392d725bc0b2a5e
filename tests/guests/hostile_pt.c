/*
 * Hostile paging structures (project issue #16): page tables that point outside the
 * guest's RAM. The guest must be ended with a message naming the address, under EPT (an
 * EPT violation during the CPU's own walk) and under shadow paging (the shadow MMU's walk),
 * while the other guests run on. Command line, one attack per run:
 *   table_oob  a PML4 entry whose PDPT lies 1 GiB past the end of RAM; read through it
 *   cr3_oob    MOV to CR3 of a PML4 1 GiB past the end of RAM
 * Each prints "HOSTILE: <attack> at 0x..." first; if the guest survives the attack, FAIL.
 */
#include "libguest.h"

#define PTE_P (1ull << 0)
#define PTE_W (1ull << 1)
#define TARGET_VA (1ull << 39)      /* PML4 entry 1: nothing of the kernel lives there */

static u64 past_ram(void)
{
	return (ram_end() + (1ull << 30)) & ~0xfffull;
}

static void table_oob(void)
{
	u64 *pml4 = (u64 *)(read_cr3() & ~0xfffull);
	u64 table = past_ram();

	printf("HOSTILE: table_oob at %#llx\n", table);
	pml4[1] = table | PTE_P | PTE_W;
	asm volatile("invlpg (%0)" : : "r"(TARGET_VA) : "memory");
	u64 v = *(volatile u64 *)TARGET_VA;
	report(false, "a walk through a PDPT at %#llx ends the guest (it read %#llx)", table, v);
}

static void cr3_oob(void)
{
	u64 root = past_ram();

	printf("HOSTILE: cr3_oob at %#llx\n", root);
	write_cr3(root);
	report(false, "running on a PML4 at %#llx ends the guest", root);
}

int main(void)
{
	if (!ram_end()) {
		report(false, "the loader gave the RAM size");
		return report_summary();
	}
	if (cmdline_has("table_oob"))
		table_oob();
	else if (cmdline_has("cr3_oob"))
		cr3_oob();
	else
		report(false, "an attack is named on the command line (table_oob, cr3_oob)");
	return report_summary();
}
