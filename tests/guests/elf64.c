/*
 * The plain ELF64 boot path (tests/guests/PLATFORM.md, "ELF64 without a multiboot header"):
 * entered in long mode by the loader itself, so this checks the state it promises: paging
 * and long mode on, the identity map of the first 4 GiB with 2 MiB pages, and RDI pointing
 * at a multiboot info block with sane sizes. QEMU cannot boot it (its -kernel wants ELF32).
 */
#include "libguest.h"

#define GIB (1ull << 30)
#define PTE_PRESENT BIT(0)
#define PTE_PS BIT(7)
#define PTE_ADDR_MASK 0x000ffffffffff000ull
#define PDE_2M_ADDR_MASK 0x000fffffffe00000ull

static const u64 *table(u64 entry)
{
	return (const u64 *)(unsigned long)(entry & PTE_ADDR_MASK);
}

static bool page_inside_image(u64 addr)
{
	return addr + PAGE_SIZE > image_start() && addr < image_end();
}

static void check_cpu_state(void)
{
	u64 efer = rdmsr(MSR_EFER);

	report((read_cr0() & (CR0_PG | CR0_PE)) == (CR0_PG | CR0_PE), "CR0.PG and CR0.PE set");
	report(read_cr4() & CR4_PAE, "CR4.PAE set");
	report((efer & (EFER_LME | EFER_LMA)) == (EFER_LME | EFER_LMA),
	       "EFER.LME and EFER.LMA set (EFER %#llx)", efer);
}

/* Every 2 MiB page of the first 4 GiB maps to itself (SDM Vol. 3A 4.5, 2-MByte pages). */
static void check_identity_map(void)
{
	u64 cr3 = read_cr3(), wrong = 0, tables_in_image = 0;
	const u64 *pml4 = table(cr3);
	const u64 *pdpt = table(pml4[0]);

	if (!(pml4[0] & PTE_PRESENT)) {
		report(false, "PML4[0] present (CR3 %#llx)", cr3);
		return;
	}
	tables_in_image += page_inside_image(cr3 & PTE_ADDR_MASK);
	tables_in_image += page_inside_image(pml4[0] & PTE_ADDR_MASK);
	for (unsigned int i = 0; i < 4; i++) {
		if (!(pdpt[i] & PTE_PRESENT) || (pdpt[i] & PTE_PS)) {
			wrong += 512;
			continue;
		}
		const u64 *pd = table(pdpt[i]);

		tables_in_image += page_inside_image(pdpt[i] & PTE_ADDR_MASK);
		for (unsigned int j = 0; j < 512; j++) {
			u64 expected = i * GIB + ((u64)j << 21);

			if (!(pd[j] & PTE_PRESENT) || !(pd[j] & PTE_PS) ||
			    (pd[j] & PDE_2M_ADDR_MASK) != expected)
				wrong++;
		}
	}
	report(wrong == 0, "first 4 GiB identity-mapped with 2 MiB pages (%llu of 2048 wrong)",
	       wrong);
	report(tables_in_image == 0, "the loader's page tables lie outside the kernel image");
}

static void check_multiboot_info(void)
{
	const struct multiboot_info *mbi = mb_info();
	u32 want = MB_INFO_MEM | MB_INFO_CMDLINE | MB_INFO_MMAP;
	unsigned long addr = (unsigned long)mbi;

	if (!mbi) {
		report(false, "RDI points at a multiboot info block");
		return;
	}
	printf("multiboot info at %#lx, flags %#x, mem_lower %u KiB, mem_upper %u KiB\n",
	       addr, mbi->flags, mbi->mem_lower, mbi->mem_upper);
	report((mbi->flags & want) == want, "info flags %#x have MEM, CMDLINE and MMAP",
	       mbi->flags);
	report(addr >= PAGE_SIZE && addr + sizeof(*mbi) <= MIB,
	       "info block below 1 MiB and not in page 0");
	/*
	 * The contract says 640; PCs (and QEMU, and umbra's loader, whose map ends conventional
	 * memory at 0x9fc00) report 639. Either is a sane value; anything else is not.
	 */
	report(mbi->mem_lower == 640 || mbi->mem_lower == 639, "mem_lower is %u KiB (640 or 639)",
	       mbi->mem_lower);
	report(ram_end() >= 2 * MIB && ram_end() <= 4 * GIB && ram_end() > image_end(),
	       "mem_upper %u KiB: RAM end %#llx holds the image and is below 4 GiB",
	       mbi->mem_upper, ram_end());
	report(cmdline()[0] != '\0', "command line \"%s\" is not empty", cmdline());
}

int main(void)
{
	check_cpu_state();
	check_identity_map();
	check_multiboot_info();
	return report_summary();
}
