/*
 * GDT with a 64-bit TSS. The TSS matters for two reasons: its IST stacks
 * let #DF, NMI and #MC run on a known-good stack, and VM exits load the host
 * TR from the VMCS, which must name a usable TSS (SDM Vol. 3C 28.2.3).
 */
#include "arch/x86/gdt.h"
#include "arch/x86/cpu.h"
#include "arch/x86/percpu.h"

struct tss64 {
	u32 reserved0;
	u64 rsp[3];
	u64 reserved1;
	u64 ist[7];
	u64 reserved2;
	u16 reserved3;
	u16 iomap_base;
} PACKED;

/* One of each per CPU: a TSS is busy once loaded (LTR), and each CPU needs
 * its own IST stacks (the boot CPU's here, the others' from their caller). */
static u8 boot_ist_stacks[3][IST_STACK_SIZE] __attribute__((aligned(16)));
static struct tss64 tss_of[SMP_MAX_CPUS];
static u64 gdt_of[SMP_MAX_CPUS][5] __attribute__((aligned(16)));

u64 tss_base(void)
{
	return (u64)&tss_of[this_cpu_index()];
}

u64 gdt_base(void)
{
	return (u64)gdt_of[this_cpu_index()];
}

void gdt_init(u32 cpu, u8 (*ist_stacks)[IST_STACK_SIZE])
{
	struct tss64 *tss = &tss_of[cpu];
	u64 *gdt = gdt_of[cpu];
	u64 base = (u64)tss;
	u64 limit = sizeof(*tss) - 1;
	struct descriptor_ptr ptr = { sizeof(gdt_of[cpu]) - 1, (u64)gdt };

	if (!ist_stacks)
		ist_stacks = boot_ist_stacks;
	for (int i = 0; i < 3; i++)
		tss->ist[i] = (u64)&ist_stacks[i][IST_STACK_SIZE];
	tss->iomap_base = sizeof(*tss);  /* no I/O bitmap */

	gdt[0] = 0;
	gdt[1] = 0x00af9a000000ffffull;  /* 64-bit code, DPL 0 */
	gdt[2] = 0x00cf92000000ffffull;  /* data */
	/* 16-byte available 64-bit TSS descriptor (type 9), SDM Vol. 3A 8.2.3 */
	gdt[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) |
		 ((limit >> 16 & 0xf) << 48) | ((base >> 24 & 0xff) << 56);
	gdt[4] = base >> 32;

	lgdt(&ptr);
	asm volatile("pushq %0; leaq 1f(%%rip), %%rax; pushq %%rax; lretq; 1:"
		     "movw %w1, %%ds; movw %w1, %%es; movw %w1, %%ss"
		     : : "i"(SEL_CODE64), "r"(SEL_DATA) : "rax", "memory");
	ltr(SEL_TSS);
}
