/*
 * libFuzzer target: random bytes as a guest kernel module for image_parse
 * (core/image.c). libFuzzer hands over an exact-size buffer, so ASan catches
 * any read past the module. An accepted image must describe segments that
 * lie inside the file and inside [lowest, highest).
 */
#include <stdlib.h>
#include <string.h>

#include "core/image.h"

int LLVMFuzzerTestOneInput(const u8 *data, size_t size)
{
	struct guest_image img;
	char err[160];

	if (!image_parse(data, size, &img, err, sizeof(err))) {
		if (!memchr(err, 0, sizeof(err)) || !err[0])
			abort();
		return 0;
	}
	if (img.seg_count < 1 || img.seg_count > IMAGE_MAX_SEGMENTS)
		abort();
	if (img.format == IMAGE_MULTIBOOT && (img.entry >> 32))
		abort();
	if (!image_format_name(img.format))
		abort();
	for (int i = 0; i < img.seg_count; i++) {
		const struct image_segment *s = &img.seg[i];

		if (s->file_size > s->mem_size || s->file_offset > size ||
		    s->file_size > size - s->file_offset)
			abort();
		if (s->paddr + s->mem_size < s->paddr || s->paddr < img.lowest ||
		    s->paddr + s->mem_size > img.highest)
			abort();
	}
	return 0;
}
