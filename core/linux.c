/*
 * A Linux kernel as a guest, entered at its 64-bit entry as boot.rst's
 * "64-bit BOOT PROTOCOL" says: long mode, paging on with the kernel, zero
 * page and command line identity-mapped, a GDT with a flat code segment at
 * __BOOT_CS (0x10) and data at __BOOT_DS (0x18) loaded in CS and DS/ES/SS,
 * interrupts off, RSI = the zero page. A vmlinux is entered the same way
 * at its ELF entry (startup_64), the state the decompressor hands it.
 *
 * Low memory, all below 1 MiB (which Linux keeps reserved):
 *   0x7000 zero page, 0x8000 command line, 0x8800 GDT;
 * the kernel at its load address, the initrd at the top of RAM.
 */
#include <stdio.h>
#include <string.h>
#include "core/linux.h"
#include "guest/memory.h"
#include "arch/x86/log.h"

#define ZERO_PAGE_GPA 0x7000ull
#define CMDLINE_GPA 0x8000ull
#define CMDLINE_ROOM 0x800ull
#define GDT_GPA 0x8800ull
#define BOOT_CS 0x10
#define BOOT_DS 0x18
#define LOW_RAM_END 0x9fc00ull       /* conventional memory ends at the EBDA */
#define BIOS_AREA 0xe0000ull         /* firmware area (the ACPI tables live here) */
#define HIGH_RAM 0x100000ull

/* Flat descriptors: null, unused, 64-bit code (L, P, execute/read), data (G, D/B, P, read/write). */
static const u64 boot_gdt[] = { 0, 0, 0x00af9b000000ffffull, 0x00cf93000000ffffull };

static bool place_initrd(struct guest *g, const struct linux_kernel *k,
			 const struct boot_module *initrd, struct linux_boot_layout *l,
			 char *err, size_t err_len)
{
	u64 size = initrd->end - initrd->start;
	u64 top = g->mem.size < k->initrd_max ? g->mem.size : k->initrd_max;

	if (!size) {
		snprintf(err, err_len, "its initrd module is empty");
		return false;
	}
	if (size > top || ALIGN_DOWN(top - size, PAGE_SIZE) < k->end) {
		snprintf(err, err_len, "initrd of %llu KiB does not fit between the kernel's end "
			 "%#llx and %#llx (raise mem=)", (unsigned long long)(size >> 10),
			 (unsigned long long)k->end, (unsigned long long)top);
		return false;
	}
	l->initrd_gpa = ALIGN_DOWN(top - size, PAGE_SIZE);
	l->initrd_size = size;
	return guest_copy_to(g, l->initrd_gpa, (const void *)initrd->start, size);
}

bool linux_load(struct guest *g, const u8 *data, u64 size, const struct guest_image *elf,
		const struct boot_module *initrd, struct guest_boot_state *bs, char *err,
		size_t err_len)
{
	static u8 zero_page[LINUX_ZERO_PAGE_SIZE];
	const struct e820_entry e820[] = {
		{ 0, LOW_RAM_END, E820_RAM },
		{ LOW_RAM_END, 0xa0000ull - LOW_RAM_END, E820_RESERVED },
		{ BIOS_AREA, HIGH_RAM - BIOS_AREA, E820_RESERVED },
		{ HIGH_RAM, g->mem.size - HIGH_RAM, E820_RAM },
	};
	struct linux_boot_layout l = { .cmdline_gpa = CMDLINE_GPA, .e820 = e820,
				       .e820_count = (int)ARRAY_SIZE(e820) };
	size_t cmdline_len = strlen(g->cfg.args);
	struct linux_kernel k;

	if (!linux_parse(data, size, elf, &k, err, err_len))
		return false;
	if (k.end > g->mem.size || k.load_addr < HIGH_RAM) {
		snprintf(err, err_len, "the kernel needs %#llx-%#llx, beyond the guest's %llu MiB "
			 "(raise mem=)", (unsigned long long)k.load_addr, (unsigned long long)k.end,
			 (unsigned long long)(g->mem.size >> 20));
		return false;
	}
	if (cmdline_len > k.cmdline_max || cmdline_len >= CMDLINE_ROOM) {
		snprintf(err, err_len, "command line of %zu bytes is longer than the kernel's %u",
			 cmdline_len, k.cmdline_max);
		return false;
	}
	if (!elf && !guest_copy_to(g, k.load_addr, data + k.code_offset, k.code_size)) {
		snprintf(err, err_len, "kernel does not fit in guest RAM");
		return false;
	}
	if (initrd && !place_initrd(g, &k, initrd, &l, err, err_len))
		return false;
	linux_zero_page(data, &k, &l, zero_page);
	if (!guest_copy_to(g, ZERO_PAGE_GPA, zero_page, sizeof(zero_page)) ||
	    !guest_copy_to(g, CMDLINE_GPA, g->cfg.args, cmdline_len + 1) ||
	    !guest_copy_to(g, GDT_GPA, boot_gdt, sizeof(boot_gdt))) {
		snprintf(err, err_len, "guest RAM too small for the boot parameters");
		return false;
	}
	memset(bs, 0, sizeof(*bs));
	bs->long_mode = true;
	bs->rip = k.entry;
	bs->rsi = ZERO_PAGE_GPA;
	bs->gdt_base = GDT_GPA;
	bs->gdt_limit = sizeof(boot_gdt) - 1;
	bs->cs = BOOT_CS;
	bs->ds = BOOT_DS;
	log_printf("hv", "%s: Linux %s %s, boot protocol %u.%02u, kernel %#llx-%#llx, entry %#llx, "
		   "initrd %llu KiB at %#llx", g->cfg.name, k.kind == LINUX_BZIMAGE ? "bzImage" : "vmlinux",
		   k.release[0] ? k.release : "(no version)", k.protocol >> 8, k.protocol & 0xff,
		   (unsigned long long)k.load_addr, (unsigned long long)k.end,
		   (unsigned long long)k.entry, (unsigned long long)(l.initrd_size >> 10),
		   (unsigned long long)l.initrd_gpa);
	return true;
}
