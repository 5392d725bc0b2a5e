/*
 * libFuzzer target: random bytes as multiboot2 information for
 * multiboot2_parse (arch/x86/multiboot2.c). The parser may trust total_size, so
 * the harness makes it true: the block is copied into a heap buffer of
 * exactly total_size bytes and ASan catches any read past it.
 *
 * Input layout: byte 0 selects the magic and alignment (usually right),
 * bytes 1..4 are the magic used otherwise, the rest is the information
 * block itself (its first u32, total_size, is clamped to the bytes present).
 */
#include <stdlib.h>
#include <string.h>

#include "arch/x86/multiboot2.h"

#define HEADER 5
#define INFO_MAX_SIZE (1u << 20)  /* the parser's own limit */

static void check_string(const char *s, size_t len)
{
	if (!memchr(s, 0, len))
		abort();
}

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct boot_info bi;
	char err[160];
	u32 magic = MULTIBOOT2_BOOTLOADER_MAGIC, total;
	u64 phys = 0x10000;
	size_t len;
	u8 *info;
	bool ok;

	if (size < HEADER)
		return 0;
	if ((data[0] & 7) == 7)
		memcpy(&magic, data + 1, 4);
	if ((data[0] >> 3) == 0x1f)
		phys |= data[1] & 7;
	data += HEADER;
	size -= HEADER;

	/* total_size: no more than the bytes present, except a huge one the
	 * parser must refuse after reading only that field. */
	total = 0;
	memcpy(&total, data, size < 4 ? size : 4);
	len = size;
	if (total <= INFO_MAX_SIZE) {
		if (total > size)
			total = (u32)size;
		len = total;
	}
	info = calloc(1, len < 4 ? 4 : len);
	memcpy(info, data, size < len ? size : len);
	memcpy(info, &total, 4);

	ok = multiboot2_parse(magic, info, phys, &bi, err, sizeof(err));

	if (bi.mem_count < 0 || bi.mem_count > BOOT_MAX_MEM_REGIONS ||
	    bi.module_count < 0 || bi.module_count > BOOT_MAX_MODULES ||
	    bi.note_count < 0 || bi.note_count > BOOT_MAX_NOTES)
		abort();
	if (ok && (bi.mem_count == 0 || bi.info_start != phys || bi.info_end != phys + len ||
		   magic != MULTIBOOT2_BOOTLOADER_MAGIC || (phys & 7)))
		abort();
	if (!ok)
		check_string(err, sizeof(err));
	check_string(bi.cmdline, sizeof(bi.cmdline));
	check_string(bi.loader, sizeof(bi.loader));
	for (int i = 0; i < bi.module_count; i++) {
		check_string(bi.modules[i].cmdline, sizeof(bi.modules[i].cmdline));
		if (bi.modules[i].end < bi.modules[i].start)
			abort();
	}
	for (int i = 0; i < bi.note_count; i++)
		check_string(bi.notes[i], sizeof(bi.notes[i]));
	if (bi.acpi_rsdp && (bi.acpi_rsdp < phys + 16 || bi.acpi_rsdp >= phys + len))
		abort();
	free(info);
	return 0;
}
