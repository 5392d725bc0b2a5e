/*
 * What the boot loader told us, parsed once from the multiboot2 information
 * (arch/x86/multiboot2.c) into plain structures with copied strings, so nothing
 * later depends on the loader's memory layout.
 */
#ifndef ARCH_X86_MULTIBOOT2_H
#define ARCH_X86_MULTIBOOT2_H

#include "lib/types.h"

#define BOOT_MAX_MEM_REGIONS 64
#define BOOT_MAX_MODULES 64
#define BOOT_CMDLINE_MAX 512
#define BOOT_MAX_NOTES 8
#define BOOT_NOTE_MAX 120

enum mem_type {
	MEM_AVAILABLE = 1,
	MEM_RESERVED = 2,
	MEM_ACPI_RECLAIMABLE = 3,
	MEM_NVS = 4,
	MEM_BAD = 5,
};

struct mem_region {
	u64 base;
	u64 length;
	u32 type;   /* enum mem_type; other values are treated as reserved */
};

struct boot_module {
	u64 start;  /* physical, inclusive */
	u64 end;    /* physical, exclusive */
	char cmdline[BOOT_CMDLINE_MAX];
};

enum fb_type {
	FB_TYPE_INDEXED = 0,
	FB_TYPE_RGB = 1,       /* direct colour: the only kind arch/x86/fbcon.c draws on */
	FB_TYPE_EGA_TEXT = 2,  /* legacy VGA text mode, BIOS only */
};

struct boot_framebuffer {
	bool present;
	u64 addr;
	u32 pitch, width, height;
	u8 bpp, type;
	/* FB_TYPE_RGB only: bit position and width of each colour in a pixel. */
	u8 red_pos, red_size, green_pos, green_size, blue_pos, blue_size;
};

struct boot_info {
	char cmdline[BOOT_CMDLINE_MAX];
	char loader[64];
	struct mem_region mem[BOOT_MAX_MEM_REGIONS];
	int mem_count;
	struct boot_module modules[BOOT_MAX_MODULES];
	int module_count;
	int modules_refused;    /* past BOOT_MAX_MODULES, or a bad command line: the run fails */
	bool cmdline_too_long;  /* the hypervisor's own: it is not obeyed half */
	struct boot_framebuffer fb;
	u64 acpi_rsdp;      /* physical address of a copy of the RSDP, 0 if none */
	u64 acpi_rsdp_v2;   /* the ACPI 2.0+ copy (36 bytes, XSDT address), 0 if none */
	u64 efi_system_table;  /* EFI64 system table (UEFI boot), 0 if none */
	bool mem_from_efi;  /* mem[] was built from the EFI memory map (no E820-style map) */
	u64 info_start;     /* the multiboot2 information itself, to keep it */
	u64 info_end;
	/* Non-fatal findings (unknown tags, truncated lists), printed by main. */
	char notes[BOOT_MAX_NOTES][BOOT_NOTE_MAX];
	int note_count;
};

/*
 * Parse the multiboot2 information at 'info' (its physical address is 'phys').
 * Returns false with a message in err on a fatal problem (bad magic,
 * impossible sizes); problems with single tags become notes instead.
 */
bool multiboot2_parse(u32 magic, const void *info, u64 phys, struct boot_info *bi,
		      char *err, size_t err_len);

#define MULTIBOOT2_BOOTLOADER_MAGIC 0x36d76289u

#endif
