/*
 * Multiboot2 information parser (Multiboot2 spec, section 3.6). Pure code:
 * it is also compiled into a host unit test that feeds it malformed input.
 * Every length is checked before use; a bad tag never reads past the
 * information block.
 */
#include <stdio.h>
#include <string.h>
#include "arch/x86/multiboot2.h"

enum {
	TAG_END = 0,
	TAG_CMDLINE = 1,
	TAG_LOADER_NAME = 2,
	TAG_MODULE = 3,
	TAG_BASIC_MEMINFO = 4,
	TAG_MMAP = 6,
	TAG_FRAMEBUFFER = 8,
	TAG_EFI32_SYSTEM_TABLE = 11,
	TAG_EFI64_SYSTEM_TABLE = 12,
	TAG_ACPI_OLD = 14,
	TAG_ACPI_NEW = 15,
	TAG_EFI_MMAP = 17,
	TAG_EFI_BOOT_SERVICES = 18,  /* boot services still running: we never ask for that */
	TAG_LAST_KNOWN = 21,  /* load base address */
};

#define INFO_MAX_SIZE (1u << 20)

struct tag_header {
	u32 type;
	u32 size;
};

static void note(struct boot_info *bi, const char *fmt, unsigned a, unsigned b)
{
	if (bi->note_count < BOOT_MAX_NOTES)
		snprintf(bi->notes[bi->note_count++], BOOT_NOTE_MAX, fmt, a, b);
}

static u32 read_u32(const u8 *p)
{
	u32 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

static u64 read_u64(const u8 *p)
{
	u64 v;

	memcpy(&v, p, sizeof(v));
	return v;
}

enum copy_result { COPIED, UNTERMINATED, TOO_LONG };

/* Copy a string that must be NUL-terminated within 'len' bytes and fit dst
 * whole: a command line cut short would be obeyed wrongly. */
static enum copy_result copy_string(char *dst, size_t dst_len, const u8 *src, size_t len)
{
	const u8 *nul = memchr(src, 0, len);

	if (!nul)
		return UNTERMINATED;
	if ((size_t)(nul - src) >= dst_len)
		return TOO_LONG;
	memcpy(dst, src, (size_t)(nul - src) + 1);
	return COPIED;
}

static void parse_mmap(struct boot_info *bi, const u8 *tag, u32 size)
{
	u32 entry_size, count;

	if (size < 16 || (entry_size = read_u32(tag + 8)) < 24 || entry_size % 8) {
		note(bi, "multiboot2: memory map tag malformed (size %u, entry size %u); ignored",
		     size, size >= 16 ? read_u32(tag + 8) : 0);
		return;
	}
	count = (size - 16) / entry_size;
	for (u32 i = 0; i < count; i++) {
		const u8 *e = tag + 16 + i * entry_size;

		if (bi->mem_count == BOOT_MAX_MEM_REGIONS) {
			note(bi, "multiboot2: memory map has %u entries, only %u used", count,
			     BOOT_MAX_MEM_REGIONS);
			return;
		}
		bi->mem[bi->mem_count++] = (struct mem_region){
			.base = read_u64(e), .length = read_u64(e + 8), .type = read_u32(e + 16),
		};
	}
}

/*
 * UEFI memory types (UEFI spec 2.10, table 7.10) as the E820-style types the
 * frame allocator knows. GRUB has left boot services before entering us, so
 * boot-services memory and the loader's own memory are free RAM (the
 * multiboot2 information and modules inside it are reserved separately).
 */
static u32 efi_type_to_mem_type(u32 efi_type)
{
	enum {
		EFI_LOADER_CODE = 1, EFI_LOADER_DATA = 2, EFI_BOOT_SERVICES_CODE = 3,
		EFI_BOOT_SERVICES_DATA = 4, EFI_CONVENTIONAL = 7, EFI_UNUSABLE = 8,
		EFI_ACPI_RECLAIM = 9, EFI_ACPI_NVS = 10,
	};

	switch (efi_type) {
	case EFI_LOADER_CODE:
	case EFI_LOADER_DATA:
	case EFI_BOOT_SERVICES_CODE:
	case EFI_BOOT_SERVICES_DATA:
	case EFI_CONVENTIONAL:
		return MEM_AVAILABLE;
	case EFI_UNUSABLE:
		return MEM_BAD;
	case EFI_ACPI_RECLAIM:
		return MEM_ACPI_RECLAIMABLE;
	case EFI_ACPI_NVS:
		return MEM_NVS;
	default:  /* runtime services, MMIO, persistent memory... */
		return MEM_RESERVED;
	}
}

/*
 * The EFI memory map (Multiboot2 spec 3.6.11): descriptors of descriptor_size
 * bytes (at least the 40 of EFI_MEMORY_DESCRIPTOR; firmware may add more).
 * Firmware splits RAM into many descriptors, so neighbours of the same
 * mapped type are merged to fit BOOT_MAX_MEM_REGIONS.
 */
static void parse_efi_mmap(struct boot_info *bi, const u8 *tag, u32 size)
{
	u32 desc_size, count;

	if (size < 16 || (desc_size = read_u32(tag + 8)) < 40 || desc_size % 8) {
		note(bi, "multiboot2: EFI memory map tag malformed (size %u, descriptor size %u)",
		     size, size >= 16 ? read_u32(tag + 8) : 0);
		return;
	}
	count = (size - 16) / desc_size;
	for (u32 i = 0; i < count; i++) {
		const u8 *d = tag + 16 + i * desc_size;
		u64 base = read_u64(d + 8), pages = read_u64(d + 24);
		u32 type = efi_type_to_mem_type(read_u32(d));
		struct mem_region *last = bi->mem_count ? &bi->mem[bi->mem_count - 1] : NULL;

		if (pages == 0 || pages > (~base >> PAGE_SHIFT)) {
			note(bi, "multiboot2: EFI memory descriptor %u has an impossible size; "
			     "ignored", i, 0);
			continue;
		}
		if (last && last->type == type && last->base + last->length == base) {
			last->length += pages << PAGE_SHIFT;
			continue;
		}
		if (bi->mem_count == BOOT_MAX_MEM_REGIONS) {
			note(bi, "multiboot2: EFI memory map has %u descriptors; only the first %u "
			     "regions used", count, BOOT_MAX_MEM_REGIONS);
			return;
		}
		bi->mem[bi->mem_count++] = (struct mem_region){
			.base = base, .length = pages << PAGE_SHIFT, .type = type,
		};
	}
	bi->mem_from_efi = bi->mem_count > 0;
}

static void parse_module(struct boot_info *bi, const u8 *tag, u32 size)
{
	struct boot_module *m;
	u32 start, end;

	if (size < 17) {
		note(bi, "multiboot2: module tag too short (%u bytes); refused", size, 0);
		bi->modules_refused++;
		return;
	}
	start = read_u32(tag + 8);
	end = read_u32(tag + 12);
	if (end < start) {
		note(bi, "multiboot2: module with end %#x before start %#x; refused", end, start);
		bi->modules_refused++;
		return;
	}
	if (bi->module_count == BOOT_MAX_MODULES) {
		note(bi, "multiboot2: more than %u modules; module at %#x refused",
		     BOOT_MAX_MODULES, start);
		bi->modules_refused++;
		return;
	}
	m = &bi->modules[bi->module_count];
	switch (copy_string(m->cmdline, sizeof(m->cmdline), tag + 16, size - 16)) {
	case COPIED:
		break;
	case UNTERMINATED:
		note(bi, "multiboot2: module at %#x has an unterminated command line; refused",
		     start, 0);
		bi->modules_refused++;
		return;
	case TOO_LONG:
		note(bi, "multiboot2: module at %#x has a command line longer than %u bytes; refused",
		     start, BOOT_CMDLINE_MAX - 1);
		bi->modules_refused++;
		return;
	}
	m->start = start;
	m->end = end;
	bi->module_count++;
}

static void parse_framebuffer(struct boot_info *bi, const u8 *tag, u32 size)
{
	if (size < 31) {
		note(bi, "multiboot2: framebuffer tag too short (%u bytes); ignored", size, 0);
		return;
	}
	bi->fb = (struct boot_framebuffer){
		.present = true,
		.addr = read_u64(tag + 8),
		.pitch = read_u32(tag + 16),
		.width = read_u32(tag + 20),
		.height = read_u32(tag + 24),
		.bpp = tag[28],
		.type = tag[29],
	};
	/*
	 * Colour layout after the 32-byte common part (GRUB's reserved field is
	 * 16 bits). Without it the sizes stay 0 and fbcon assumes x8r8g8b8.
	 */
	if (bi->fb.type == FB_TYPE_RGB && size >= 38) {
		bi->fb.red_pos = tag[32];
		bi->fb.red_size = tag[33];
		bi->fb.green_pos = tag[34];
		bi->fb.green_size = tag[35];
		bi->fb.blue_pos = tag[36];
		bi->fb.blue_size = tag[37];
	}
}

bool multiboot2_parse(u32 magic, const void *info, u64 phys, struct boot_info *bi,
		      char *err, size_t err_len)
{
	const u8 *base = info;
	u32 total, off, efi_mmap_off = 0;
	bool saw_end = false;

	memset(bi, 0, sizeof(*bi));
	if (magic != MULTIBOOT2_BOOTLOADER_MAGIC) {
		snprintf(err, err_len, "not started by a multiboot2 loader (magic %#x, want %#x)",
			 magic, MULTIBOOT2_BOOTLOADER_MAGIC);
		return false;
	}
	if (!info || (phys & 7)) {
		snprintf(err, err_len, "multiboot2 information at %#llx is not 8-byte aligned",
			 (unsigned long long)phys);
		return false;
	}
	total = read_u32(base);
	if (total < 16 || total > INFO_MAX_SIZE) {
		snprintf(err, err_len, "multiboot2 information size %u is impossible", total);
		return false;
	}
	bi->info_start = phys;
	bi->info_end = phys + total;

	for (off = 8; off + sizeof(struct tag_header) <= total && !saw_end;) {
		const u8 *tag = base + off;
		u32 type = read_u32(tag), size = read_u32(tag + 4);

		if (size < 8 || size > total - off) {
			note(bi, "multiboot2: tag type %u has bad size %u; rest of the list ignored",
			     type, size);
			break;
		}
		switch (type) {
		case TAG_END:
			saw_end = true;
			break;
		case TAG_CMDLINE:
			switch (copy_string(bi->cmdline, sizeof(bi->cmdline), tag + 8, size - 8)) {
			case COPIED:
				break;
			case UNTERMINATED:
				note(bi, "multiboot2: unterminated command line (%u bytes); ignored",
				     size, 0);
				break;
			case TOO_LONG:
				note(bi, "multiboot2: command line longer than %u bytes (%u)",
				     BOOT_CMDLINE_MAX - 1, size - 8);
				bi->cmdline_too_long = true;
				break;
			}
			break;
		case TAG_LOADER_NAME:
			if (copy_string(bi->loader, sizeof(bi->loader), tag + 8, size - 8) == TOO_LONG)
				snprintf(bi->loader, sizeof(bi->loader), "a loader with a long name");
			break;
		case TAG_MODULE:
			parse_module(bi, tag, size);
			break;
		case TAG_MMAP:
			parse_mmap(bi, tag, size);
			break;
		case TAG_FRAMEBUFFER:
			parse_framebuffer(bi, tag, size);
			break;
		case TAG_ACPI_OLD:
		case TAG_ACPI_NEW:
			if (size > 8 && !bi->acpi_rsdp)
				bi->acpi_rsdp = phys + off + 8;
			/* Only this copy is long enough to hold the XSDT address. */
			if (type == TAG_ACPI_NEW && size >= 8 + 36 && !bi->acpi_rsdp_v2)
				bi->acpi_rsdp_v2 = phys + off + 8;
			break;
		case TAG_EFI64_SYSTEM_TABLE:
			if (size >= 16)
				bi->efi_system_table = read_u64(tag + 8);
			break;
		case TAG_EFI32_SYSTEM_TABLE:
			if (size >= 12 && !bi->efi_system_table)
				bi->efi_system_table = read_u32(tag + 8);
			break;
		case TAG_EFI_MMAP:
			efi_mmap_off = off;  /* used only if there is no E820-style map */
			break;
		case TAG_EFI_BOOT_SERVICES:
			note(bi, "multiboot2: loader left EFI boot services running (tag %u); "
			     "they are not used", type, 0);
			break;
		default:
			if (type > TAG_LAST_KNOWN)
				note(bi, "multiboot2: unknown tag type %u (%u bytes) ignored", type,
				     size);
			break;
		}
		off += (size + 7) & ~7u;
	}
	if (!saw_end)
		note(bi, "multiboot2: information has no end tag; parsed %u of %u bytes", off,
		     total);
	if (bi->mem_count == 0 && efi_mmap_off)
		parse_efi_mmap(bi, base + efi_mmap_off, read_u32(base + efi_mmap_off + 4));
	if (bi->mem_count == 0) {
		snprintf(err, err_len, "multiboot2 information has no memory map");
		return false;
	}
	return true;
}
