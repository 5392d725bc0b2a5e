/* ELF and multiboot v1 image parsing (see image.h; ELF: System V gABI,
 * multiboot: Multiboot Specification 0.6.96 section 3.1). */
#include <stdio.h>
#include <string.h>
#include "core/image.h"

#define MB1_HEADER_MAGIC 0x1badb002u
#define MB1_SEARCH_BYTES 8192
#define MB1_AOUT_KLUDGE BIT(16)
#define PT_LOAD 1
#define EM_386 3
#define EM_X86_64 62

static bool find_multiboot_header(const u8 *data, u64 size, char *err, size_t err_len,
				  bool *found)
{
	u64 limit = size < MB1_SEARCH_BYTES ? size : MB1_SEARCH_BYTES;

	*found = false;
	for (u64 off = 0; off + 12 <= limit; off += 4) {
		u32 magic = (u32)le_load(data + off, 4), flags = (u32)le_load(data + off + 4, 4);
		u32 sum = (u32)le_load(data + off + 8, 4);

		if (magic != MB1_HEADER_MAGIC)
			continue;
		if ((u32)(magic + flags + sum) != 0) {
			snprintf(err, err_len, "multiboot header at offset %#llx has a bad checksum",
				 (unsigned long long)off);
			return false;
		}
		if (flags & MB1_AOUT_KLUDGE) {
			snprintf(err, err_len, "multiboot a.out kludge (flag 16) is not supported; "
				 "link the kernel as ELF");
			return false;
		}
		*found = true;
		return true;
	}
	return true;
}

bool image_parse(const u8 *data, u64 size, struct guest_image *img, char *err, size_t err_len)
{
	bool is64, has_mb;
	u64 phoff, phentsize, phnum;

	memset(img, 0, sizeof(*img));
	if (size < 52 || memcmp(data, "\x7f" "ELF", 4)) {
		snprintf(err, err_len, "not an ELF file (%llu bytes)", (unsigned long long)size);
		return false;
	}
	if (data[4] != 1 && data[4] != 2) {
		snprintf(err, err_len, "ELF class %u is neither 32 nor 64-bit", data[4]);
		return false;
	}
	is64 = data[4] == 2;
	if (data[5] != 1) {
		snprintf(err, err_len, "ELF file is not little-endian");
		return false;
	}
	if (is64 && size < 64) {
		snprintf(err, err_len, "ELF64 header truncated");
		return false;
	}
	if (le_load(data + 18, 2) != (is64 ? EM_X86_64 : EM_386)) {
		snprintf(err, err_len, "ELF machine %llu is not x86", (unsigned long long)le_load(data + 18, 2));
		return false;
	}
	img->entry = is64 ? le_load(data + 24, 8) : le_load(data + 24, 4);
	phoff = is64 ? le_load(data + 32, 8) : le_load(data + 28, 4);
	phentsize = le_load(data + (is64 ? 54 : 42), 2);
	phnum = le_load(data + (is64 ? 56 : 44), 2);
	if (phentsize < (is64 ? 56u : 32u) || phnum == 0 || phoff > size ||
	    phnum * phentsize > size - phoff) {
		snprintf(err, err_len, "ELF program headers out of bounds (offset %#llx, %llu x %llu)",
			 (unsigned long long)phoff, (unsigned long long)phnum,
			 (unsigned long long)phentsize);
		return false;
	}
	img->lowest = ~0ull;
	for (u64 i = 0; i < phnum; i++) {
		const u8 *ph = data + phoff + i * phentsize;
		struct image_segment s;

		if (le_load(ph, 4) != PT_LOAD)
			continue;
		if (is64)
			s = (struct image_segment){ le_load(ph + 8, 8), le_load(ph + 32, 8), le_load(ph + 24, 8),
						    le_load(ph + 40, 8) };
		else
			s = (struct image_segment){ le_load(ph + 4, 4), le_load(ph + 16, 4), le_load(ph + 12, 4),
						    le_load(ph + 20, 4) };
		if (s.file_size > s.mem_size || s.file_offset > size ||
		    s.file_size > size - s.file_offset || s.paddr + s.mem_size < s.paddr) {
			snprintf(err, err_len, "ELF segment %llu is out of bounds or inconsistent",
				 (unsigned long long)i);
			return false;
		}
		if (img->seg_count == IMAGE_MAX_SEGMENTS) {
			snprintf(err, err_len, "more than %d loadable segments", IMAGE_MAX_SEGMENTS);
			return false;
		}
		img->seg[img->seg_count++] = s;
		if (s.paddr < img->lowest)
			img->lowest = s.paddr;
		if (s.paddr + s.mem_size > img->highest)
			img->highest = s.paddr + s.mem_size;
	}
	if (!img->seg_count) {
		snprintf(err, err_len, "ELF file has no loadable segment");
		return false;
	}
	if (!find_multiboot_header(data, size, err, err_len, &has_mb))
		return false;
	img->format = has_mb ? IMAGE_MULTIBOOT : is64 ? IMAGE_ELF64 : IMAGE_ELF32;
	if (has_mb && is64 && img->entry >> 32) {
		snprintf(err, err_len, "multiboot kernel entry %#llx is above 4 GiB",
			 (unsigned long long)img->entry);
		return false;
	}
	return true;
}

const char *image_format_name(enum image_format f)
{
	return f == IMAGE_MULTIBOOT ? "multiboot ELF" : f == IMAGE_ELF64 ? "ELF64" : "ELF32";
}
