/*
 * Guest kernel images: ELF32/ELF64 with or without a multiboot (v1)
 * header. Pure parsing (host unit-tested with malformed input): every
 * offset and size is checked against the module before use.
 */
#ifndef CORE_IMAGE_H
#define CORE_IMAGE_H

#include "lib/types.h"

#define IMAGE_MAX_SEGMENTS 16

enum image_format {
	IMAGE_MULTIBOOT,  /* multiboot v1 header: 32-bit protected mode, paging off */
	IMAGE_ELF64,      /* plain ELF64: long mode with an identity map */
	IMAGE_ELF32,      /* plain ELF32: 32-bit protected mode, paging off */
};

struct image_segment {
	u64 file_offset, file_size;
	u64 paddr, mem_size;
};

struct guest_image {
	enum image_format format;
	u64 entry;
	struct image_segment seg[IMAGE_MAX_SEGMENTS];
	int seg_count;
	u64 lowest, highest;  /* physical range the segments cover */
};

bool image_parse(const u8 *data, u64 size, struct guest_image *img, char *err, size_t err_len);
const char *image_format_name(enum image_format f);

#endif
