/*
 * libFuzzer target: random bytes as a Linux kernel module for the boot protocol's
 * parser (core/bzimage.c), as the loader calls it: a bzImage if it says so, else an ELF
 * with a "Linux" note. libFuzzer's exact-size buffer lets ASan catch any read past the
 * module. An accepted kernel must have its code inside the file, an entry inside what it
 * loads, and a zero page built from it without reading past the file either.
 */
#include <stdlib.h>
#include <string.h>

#include "core/bzimage.h"

static u8 page[LINUX_ZERO_PAGE_SIZE];

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct e820_entry map[] = { { 0x100000, 0x7f00000, E820_RAM } };
	struct linux_boot_layout l = { 0x8000, 0x7000000, 0x1000, map, 1 };
	struct linux_kernel k;
	struct guest_image img, *elf = NULL;
	char err[200];

	if (!linux_is_bzimage(data, size)) {
		if (!linux_is_vmlinux(data, size) || !image_parse(data, size, &img, err, sizeof(err)))
			return 0;
		elf = &img;
	}
	if (!linux_parse(data, size, elf, &k, err, sizeof(err))) {
		if (!memchr(err, 0, sizeof(err)) || !err[0])
			abort();
		return 0;
	}
	if (k.protocol < LINUX_MIN_PROTOCOL || k.end < k.load_addr ||
	    k.entry < k.load_addr || !memchr(k.release, 0, sizeof(k.release)))
		abort();
	if (!elf && (k.code_offset > size || k.code_size > size - k.code_offset ||
		     k.header_end > k.code_offset || k.load_addr % 4096))
		abort();
	linux_zero_page(data, &k, &l, page);
	if (page[0x1e8] != 1 || memcmp(page + 0x202, "HdrS", 4))
		abort();
	return 0;
}
