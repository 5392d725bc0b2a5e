/*
 * Bringing up the application processors (SDM Vol. 3A 9.4 "Multiple-
 * processor (MP) initialization"): their local APIC IDs from the ACPI MADT,
 * then, one at a time, INIT-SIPI-SIPI to a real-mode trampoline below 1 MiB
 * (boot/trampoline.S) that enters long mode and calls ap_main() on a stack of
 * its own. Each AP loads its own GDT and TSS (the IDT is shared), points its
 * GS base at its per-CPU data and parks until the guests are ready
 * (core/run.c then sets its FPU bits, turns VMX on and gives it guests).
 */
#include <string.h>
#include "boot/smp.h"
#include "mm/mm.h"
#include "arch/x86/acpi.h"
#include "arch/x86/cpu.h"
#include "arch/x86/gdt.h"
#include "arch/x86/idt.h"
#include "arch/x86/log.h"
#include "arch/x86/machine.h"
#include "arch/x86/smp.h"
#include "lib/config.h"

#define AP_STACK_PAGES 4
#define AP_PAGES (AP_STACK_PAGES + IST_STACKS_BYTES / PAGE_SIZE)
#define AP_START_TIMEOUT_MS 100

extern const u8 ap_trampoline[], ap_trampoline_end[], ap_tr_cr3[], ap_tr_efer[];
extern u64 ap_boot_cr3, ap_boot_stack, ap_boot_index;
static u64 ap_boot_ist;  /* its IST stacks, above its stack */
extern u8 boot_pml4[];

static u32 ap_alive;

void ap_main(u32 index)
{
	percpu_init(index, host_apic_id());
	gdt_init(index, (u8 (*)[IST_STACK_SIZE])ap_boot_ist);
	idt_load();
	__atomic_store_n(&ap_alive, 1, __ATOMIC_RELEASE);
	smp_park();
	for (;;)
		hlt();
}

/* Copy the trampoline to page and fill in what it loads. */
static void prepare_trampoline(u64 page)
{
	u8 *t = (u8 *)page;
	u32 cr3 = (u32)(u64)boot_pml4, efer = EFER_LME | (u32)(rdmsr(MSR_EFER) & EFER_NXE);

	memcpy(t, ap_trampoline, (size_t)(ap_trampoline_end - ap_trampoline));
	memcpy(t + (ap_tr_cr3 - ap_trampoline), &cr3, 4);
	memcpy(t + (ap_tr_efer - ap_trampoline), &efer, 4);
	ap_boot_cr3 = read_cr3();
}

/* Start the AP with apic_id as CPU index; false if it did not answer. */
static bool start_ap(u32 apic_id, u32 index, u64 page)
{
	u8 *stack = alloc_zeroed_pages(AP_PAGES);
	u64 deadline;

	if (!stack) {
		pr_err("smp: no memory for the stacks of CPU %u", index);
		return false;
	}
	ap_boot_stack = (u64)stack + AP_STACK_PAGES * PAGE_SIZE;
	ap_boot_ist = ap_boot_stack;
	ap_boot_index = index;
	__atomic_store_n(&ap_alive, 0, __ATOMIC_RELEASE);
	if (!host_apic_start_cpu(apic_id, page)) {
		pr_err("smp: the local APIC did not send the start-up IPIs to APIC ID %u", apic_id);
		return false;  /* its stack stays: the AP may still be on its way */
	}
	deadline = rdtsc() + AP_START_TIMEOUT_MS * machine_timing_khz();
	while (!__atomic_load_n(&ap_alive, __ATOMIC_ACQUIRE))
		if (rdtsc() > deadline) {
			pr_err("smp: the CPU with APIC ID %u did not start within %u ms", apic_id,
			       AP_START_TIMEOUT_MS);
			return false;
		}
	return true;
}

void smp_start(const struct boot_info *bi)
{
	char err[160];
	struct acpi_madt madt;
	const u8 *table;
	u32 want = hv_config.cpus ? (u32)hv_config.cpus : SMP_MAX_CPUS, bsp;
	u64 page = mm_low_page();

	host_apic_init();
	bsp = host_apic_id();
	cpu_locals[0].apic_id = bsp;
	table = acpi_find_table(bi->acpi_rsdp, bi->acpi_rsdp_v2, "APIC", machine_acpi_map, NULL,
				err, sizeof(err));
	if (!table || !acpi_parse_madt(table, &madt, err, sizeof(err))) {
		pr_warn("smp: %s; running on the boot CPU only", err);
		return;
	}
	if (want > SMP_MAX_CPUS)
		want = SMP_MAX_CPUS;
	if (madt.count > 1 && want > 1 && !page) {
		pr_warn("smp: no free page below 1 MiB for the start-up code; boot CPU only");
		return;
	}
	if (madt.count > 1 && want > 1)
		prepare_trampoline(page);
	/* Stop at the first CPU that fails: a late one would take the next one's stack. */
	for (int i = 0; i < madt.count && smp_cpu_count() < want; i++) {
		if (madt.apic_id[i] == bsp)
			continue;
		if (madt.apic_id[i] > 0xff) {
			pr_warn("smp: APIC ID %u needs x2APIC start-up, which umbra lacks", madt.apic_id[i]);
			continue;
		}
		if (!start_ap(madt.apic_id[i], smp_cpu_count(), page))
			break;
		smp_cpu_started();
	}
	pr_info("smp: %u CPU(s) of the %d the ACPI MADT lists%s (boot CPU APIC ID %u)",
		smp_cpu_count(), madt.count, hv_config.cpus ? ", as cpus= asks" : "", bsp);
}
