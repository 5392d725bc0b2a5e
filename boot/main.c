/*
 * boot_main(): the C entry point, called once from boot/entry.S in long
 * mode. Order matters: console first (so every later failure is visible),
 * then exceptions, then memory, then VMX and the guests.
 */
#include <stdio.h>
#include "arch/x86/multiboot2.h"
#include "lib/config.h"
#include "arch/x86/cpu.h"
#include "arch/x86/gdt.h"
#include "arch/x86/idt.h"
#include "arch/x86/fbcon.h"
#include "arch/x86/machine.h"
#include "arch/x86/serial.h"
#include "mm/mm.h"
#include "mm/paging.h"
#include "arch/x86/log.h"
#include "core/run.h"
#include "boot/smp.h"
#include "arch/x86/smp.h"
#include "arch/x86/panic.h"

static struct boot_info boot_info;

void boot_main(u32 magic, u32 info_phys);

static void print_line(const char *line)
{
	log_printf("hv", "%s", line);
}

static void NORETURN fail_boot(const char *what, const char *detail)
{
	pr_err("%s: %s", what, detail);
	log_printf("hv", "run ended: HV-ERROR (%s)", what);
	machine_exit(RUN_HV_ERROR);
}

static void print_boot_info(const struct boot_info *bi)
{
	pr_info("umbra hypervisor, loaded by %s, command line '%s'",
		bi->loader[0] ? bi->loader : "an unnamed loader", bi->cmdline);
	for (int i = 0; i < bi->note_count; i++)
		pr_warn("%s", bi->notes[i]);
	for (int i = 0; i < bi->mem_count; i++)
		pr_info("memory map: 0x%012llx-0x%012llx type %u",
			(unsigned long long)bi->mem[i].base,
			(unsigned long long)(bi->mem[i].base + bi->mem[i].length),
			bi->mem[i].type);
	for (int i = 0; i < bi->module_count; i++)
		pr_info("module %d: %#llx-%#llx '%s'", i, (unsigned long long)bi->modules[i].start,
			(unsigned long long)bi->modules[i].end, bi->modules[i].cmdline);
	if (bi->efi_system_table)
		pr_info("booted by UEFI: EFI system table at %#llx",
			(unsigned long long)bi->efi_system_table);
	if (bi->mem_from_efi)
		pr_info("memory map: from the EFI memory map (no E820-style map given)");
	if (bi->fb.present)
		pr_info("framebuffer: %ux%u, %u bpp at %#llx", bi->fb.width, bi->fb.height,
			bi->fb.bpp, (unsigned long long)bi->fb.addr);
}

/*
 * The framebuffer console, as early as its memory is mapped: entry.S maps
 * the low 4 GiB, and paging_init() maps a framebuffer above that.
 */
static void start_fbcon(const struct boot_framebuffer *fb, bool paging_done)
{
	const char *why = NULL;
	bool high = fb->addr + (u64)fb->pitch * fb->height > BOOT_IDENTITY_MAP_END;

	if (fbcon_active() || (high && !paging_done))
		return;
	if (high && fb->present)
		paging_map_device(fb->addr, fb->addr + (u64)fb->pitch * fb->height);
	if (fbcon_init(fb, &why))
		pr_info("console: %s %ux%u%s", fb->type == FB_TYPE_EGA_TEXT ? "VGA text" :
			"framebuffer", fb->width, fb->height,
			serial_present() ? " and COM1" : " (no serial port found)");
	else if (paging_done)
		pr_info("console: %s (%s)", serial_present() ? "COM1 only" : "none found",
			why);
}

/* Deliberate faults that prove the exception, protection and panic paths. */
static void run_selftest(enum hv_selftest t)
{
	static volatile u64 unmapped = 0x10;  /* volatile: hide the constant from gcc */
	volatile u8 *p;

	switch (t) {
	case SELFTEST_NONE:
		return;
	case SELFTEST_PAGE_FAULT:
		pr_info("selftest: reading address 0x10 (page 0 is not mapped)");
		p = (volatile u8 *)unmapped;
		(void)*p;
		break;
	case SELFTEST_WRITE_TEXT:
		pr_info("selftest: writing to the hypervisor's own code at %p", (void *)boot_main);
		p = (volatile u8 *)(u64)boot_main;
		*p = 0xcc;
		break;
	case SELFTEST_NESTED_PANIC:
		/* The panic message itself faults: the second panic must still end the run. */
		panic("selftest: %s", (const char *)(unmapped - 8));
	}
	panic("selftest %u did not fault", t);
}

void boot_main(u32 magic, u32 info_phys)
{
	char err[512];
	enum run_status status;

	percpu_init(0, 0);  /* first: the console's lock asks which CPU this is */
	serial_init();
	machine_detect();
	gdt_init(0, NULL);
	idt_init();

	if (!multiboot2_parse(magic, (const void *)(u64)info_phys, info_phys, &boot_info, err,
			      sizeof(err)))
		fail_boot("bad boot information", err);
	start_fbcon(&boot_info.fb, false);
	machine_calibrate_tsc(boot_info.acpi_rsdp, boot_info.acpi_rsdp_v2);
	print_boot_info(&boot_info);
	pr_info("platform: %s, TSC %llu kHz (calibrated against %s)", machine_platform_name(),
		(unsigned long long)machine_tsc_khz(), machine_tsc_source());
	if (boot_info.cmdline_too_long)
		fail_boot("bad command line", "longer than the 511 bytes it may have");
	if (!hv_config_parse(boot_info.cmdline, err, sizeof(err))) {
		pr_err("command line: %s", err);
		hv_config_describe(print_line);
		fail_boot("bad command line", err);
	}
	/* Under Bochs every character drawn costs its terminal display a redraw,
	 * which slowed busy runs ~20x; COM1 is the console there. */
	if (hv_config.screen == SCREEN_OFF ||
	    (hv_config.screen == SCREEN_AUTO && machine_platform() == PLATFORM_BOCHS))
		fbcon_stop();
	if (hv_config.exit_method != EXIT_AUTO)
		machine_force_platform(hv_config.exit_method == EXIT_QEMU ? PLATFORM_QEMU :
				       hv_config.exit_method == EXIT_BOCHS ? PLATFORM_BOCHS :
				       PLATFORM_BARE);

	mm_init(&boot_info);
	paging_init();
	if (hv_config.screen == SCREEN_ON ||
	    (hv_config.screen == SCREEN_AUTO && machine_platform() != PLATFORM_BOCHS))
		start_fbcon(&boot_info.fb, true);
	mm_print_summary();
	smp_start(&boot_info);

	run_selftest(hv_config.selftest);
	status = guests_run(&boot_info);
	log_printf("hv", "run ended: %s", status == RUN_PASS ? "PASS" :
		   status == RUN_GUEST_FAILED ? "FAIL" :
		   status == RUN_NO_VMX ? "NO-VMX" : "HV-ERROR");
	machine_exit(status);
}
