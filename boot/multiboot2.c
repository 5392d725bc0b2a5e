/*
 * Multiboot2 information parser (Multiboot2 spec, section 3.6). Pure code:
 * it is also compiled into a host unit test that feeds it malformed input.
 * Every length is checked before use; a bad tag never reads past the
 * information block.
 */
#include <stdio.h>
#include <string.h>
#include "boot/bootinfo.h"

enum {
	TAG_END = 0,
	TAG_CMDLINE = 1,
	TAG_LOADER_NAME = 2,
	TAG_MODULE = 3,
	TAG_BASIC_MEMINFO = 4,
	TAG_MMAP = 6,
	TAG_FRAMEBUFFER = 8,
	TAG_ACPI_OLD = 14,
	TAG_ACPI_NEW = 15,
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

/* Copy a string that must be NUL-terminated within 'len' bytes. */
static bool copy_string(char *dst, size_t dst_len, const u8 *src, size_t len)
{
	const u8 *nul = memchr(src, 0, len);

	if (!nul)
		return false;
	snprintf(dst, dst_len, "%s", (const char *)src);
	return true;
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

static void parse_module(struct boot_info *bi, const u8 *tag, u32 size)
{
	struct boot_module *m;
	u32 start, end;

	if (size < 17) {
		note(bi, "multiboot2: module tag too short (%u bytes); ignored", size, 0);
		return;
	}
	start = read_u32(tag + 8);
	end = read_u32(tag + 12);
	if (end < start) {
		note(bi, "multiboot2: module with end %#x before start %#x; ignored", end, start);
		return;
	}
	if (bi->module_count == BOOT_MAX_MODULES) {
		note(bi, "multiboot2: more than %u modules; module at %#x ignored",
		     BOOT_MAX_MODULES, start);
		return;
	}
	m = &bi->modules[bi->module_count];
	if (!copy_string(m->cmdline, sizeof(m->cmdline), tag + 16, size - 16)) {
		note(bi, "multiboot2: module at %#x has an unterminated command line; ignored",
		     start, 0);
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
}

bool multiboot2_parse(u32 magic, const void *info, u64 phys, struct boot_info *bi,
		      char *err, size_t err_len)
{
	const u8 *base = info;
	u32 total, off;
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
			if (!copy_string(bi->cmdline, sizeof(bi->cmdline), tag + 8, size - 8))
				note(bi, "multiboot2: unterminated command line (%u bytes); ignored",
				     size, 0);
			break;
		case TAG_LOADER_NAME:
			copy_string(bi->loader, sizeof(bi->loader), tag + 8, size - 8);
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
	if (bi->mem_count == 0) {
		snprintf(err, err_len, "multiboot2 information has no memory map");
		return false;
	}
	return true;
}
