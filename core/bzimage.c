/*
 * The Linux boot protocol's data (see bzimage.h). Offsets are those of
 * struct boot_params and struct setup_header (boot.rst, "THE REAL-MODE
 * KERNEL HEADER" and zero-page.rst).
 */
#include <stdio.h>
#include <string.h>
#include "core/bzimage.h"

/* struct boot_params */
#define BP_EXT_RAMDISK_IMAGE 0x0c0
#define BP_EXT_RAMDISK_SIZE 0x0c4
#define BP_EXT_CMD_LINE_PTR 0x0c8
#define BP_E820_ENTRIES 0x1e8
#define BP_HDR 0x1f1
#define BP_HDR_LIMIT 0x290     /* the header area ends where edd_mbr_sig_buffer starts */
#define BP_E820_TABLE 0x2d0
/* struct setup_header, as offsets in the file and in boot_params */
#define HDR_SETUP_SECTS 0x1f1
#define HDR_SYSSIZE 0x1f4
#define HDR_BOOT_FLAG 0x1fe
#define HDR_JUMP 0x200
#define HDR_MAGIC 0x202
#define HDR_VERSION 0x206
#define HDR_KERNEL_VERSION 0x20e
#define HDR_TYPE_OF_LOADER 0x210
#define HDR_LOADFLAGS 0x211
#define HDR_RAMDISK_IMAGE 0x218
#define HDR_RAMDISK_SIZE 0x21c
#define HDR_CMD_LINE_PTR 0x228
#define HDR_INITRD_ADDR_MAX 0x22c
#define HDR_XLOADFLAGS 0x236
#define HDR_CMDLINE_SIZE 0x238
#define HDR_PREF_ADDRESS 0x258
#define HDR_INIT_SIZE 0x260
#define LOADED_HIGH 0x01
#define XLF_KERNEL_64 0x01
#define LOADER_UNDEFINED 0xff  /* type_of_loader: a loader with no assigned id */
#define ENTRY_64_OFFSET 0x200  /* the 64-bit entry is 0x200 past the 32-bit one */
#define VMLINUX_PROTOCOL 0x020f
#define VMLINUX_CMDLINE_MAX 2047
#define PT_NOTE 4
#define LINUX_ELFNOTE_BUILD_SALT 0x100

bool linux_is_bzimage(const u8 *data, u64 size)
{
	return size >= BP_HDR_LIMIT && le_load(data + HDR_BOOT_FLAG, 2) == 0xaa55 &&
	       !memcmp(data + HDR_MAGIC, "HdrS", 4);
}

/*
 * Walk the ELF's PT_NOTE segments for a note owned by "Linux"; copy a
 * build-salt note's text into release. Bounds-checked like image_parse().
 */
static bool find_linux_note(const u8 *data, u64 size, char *release, size_t release_len)
{
	bool found = false;

	if (size < 64 || memcmp(data, "\x7f" "ELF", 4) || data[4] != 2)
		return false;
	u64 phoff = le_load(data + 32, 8), phentsize = le_load(data + 54, 2), phnum = le_load(data + 56, 2);

	if (phentsize < 56 || phoff > size || phnum * phentsize > size - phoff)
		return false;
	for (u64 i = 0; i < phnum; i++) {
		const u8 *ph = data + phoff + i * phentsize;
		u64 off = le_load(ph + 8, 8), len = le_load(ph + 32, 8);

		if (le_load(ph, 4) != PT_NOTE || off > size || len > size - off)
			continue;
		for (u64 at = 0; at + 12 <= len;) {
			const u8 *n = data + off + at;
			u64 namesz = le_load(n, 4), descsz = le_load(n + 4, 4), type = le_load(n + 8, 4);
			u64 desc_at = 12 + ALIGN_UP(namesz, 4);

			if (namesz > len || descsz > len || desc_at + ALIGN_UP(descsz, 4) > len - at)
				break;
			if (namesz == 6 && !memcmp(n + 12, "Linux", 6)) {
				found = true;
				if (type == LINUX_ELFNOTE_BUILD_SALT && release_len)
					snprintf(release, release_len, "%.*s", (int)descsz, n + desc_at);
			}
			at += desc_at + ALIGN_UP(descsz, 4);
		}
	}
	return found;
}

bool linux_is_vmlinux(const u8 *data, u64 size)
{
	return find_linux_note(data, size, NULL, 0);
}

static bool parse_bzimage(const u8 *data, u64 size, struct linux_kernel *k, char *err,
			  size_t err_len)
{
	u32 setup_sects = data[HDR_SETUP_SECTS] ? data[HDR_SETUP_SECTS] : 4;
	u64 init_size, version_at;

	k->kind = LINUX_BZIMAGE;
	k->protocol = (u16)le_load(data + HDR_VERSION, 2);
	if (k->protocol < LINUX_MIN_PROTOCOL) {
		snprintf(err, err_len, "bzImage boot protocol %u.%02u is older than 2.12, which "
			 "brought the 64-bit entry", k->protocol >> 8, k->protocol & 0xff);
		return false;
	}
	k->header_end = HDR_JUMP + 2 + data[HDR_JUMP + 1];
	k->code_offset = (u64)(setup_sects + 1) * 512;
	k->code_size = le_load(data + HDR_SYSSIZE, 4) * 16;
	if (k->header_end > BP_HDR_LIMIT || k->header_end > k->code_offset) {
		snprintf(err, err_len, "bzImage setup header claims to end at %#x, past its room",
			 k->header_end);
		return false;
	}
	if (k->code_offset > size || k->code_size == 0 || k->code_size > size - k->code_offset) {
		snprintf(err, err_len, "bzImage truncated: its header says %llu bytes of setup and "
			 "%llu of kernel, the file has %llu", (unsigned long long)k->code_offset,
			 (unsigned long long)k->code_size, (unsigned long long)size);
		return false;
	}
	if (!(data[HDR_XLOADFLAGS] & XLF_KERNEL_64) || !(data[HDR_LOADFLAGS] & LOADED_HIGH)) {
		snprintf(err, err_len, "bzImage has no 64-bit entry point (xloadflags %#x, "
			 "loadflags %#x)", data[HDR_XLOADFLAGS], data[HDR_LOADFLAGS]);
		return false;
	}
	/* Loaded at its preferred address, which is kernel_alignment-aligned:
	 * the decompressor then works in place. */
	k->load_addr = le_load(data + HDR_PREF_ADDRESS, 8);
	init_size = le_load(data + HDR_INIT_SIZE, 4);
	k->end = k->load_addr + (init_size > k->code_size ? init_size : k->code_size);
	k->entry = k->load_addr + ENTRY_64_OFFSET;
	k->initrd_max = le_load(data + HDR_INITRD_ADDR_MAX, 4) + 1ull;
	k->cmdline_max = (u32)le_load(data + HDR_CMDLINE_SIZE, 4);
	if (k->load_addr >> 32 || k->load_addr % 4096) {
		snprintf(err, err_len, "bzImage prefers to load at %#llx, not a page below 4 GiB",
			 (unsigned long long)k->load_addr);
		return false;
	}
	version_at = le_load(data + HDR_KERNEL_VERSION, 2);
	if (version_at && version_at + 0x200 < k->code_offset)
		snprintf(k->release, sizeof(k->release), "%.*s",
			 (int)strnlen((const char *)data + version_at + 0x200,
				      k->code_offset - version_at - 0x200),
			 (const char *)data + version_at + 0x200);
	k->release[strcspn(k->release, " ")] = 0;
	return true;
}

bool linux_parse(const u8 *data, u64 size, const struct guest_image *elf,
		 struct linux_kernel *k, char *err, size_t err_len)
{
	memset(k, 0, sizeof(*k));
	if (!elf)
		return parse_bzimage(data, size, k, err, err_len);
	if (elf->format != IMAGE_ELF64 || !find_linux_note(data, size, k->release,
							    sizeof(k->release))) {
		snprintf(err, err_len, "not a 64-bit Linux vmlinux (no \"Linux\" ELF note)");
		return false;
	}
	/* The decompressor's hand-over to vmlinux is the 64-bit protocol's state. */
	k->kind = LINUX_VMLINUX;
	k->protocol = VMLINUX_PROTOCOL;
	k->load_addr = elf->lowest;
	k->end = elf->highest;
	k->entry = elf->entry;
	k->initrd_max = 1ull << 32;
	k->cmdline_max = VMLINUX_CMDLINE_MAX;
	if (k->entry < elf->lowest || k->entry >= elf->highest) {
		snprintf(err, err_len, "vmlinux entry %#llx lies outside its segments",
			 (unsigned long long)k->entry);
		return false;
	}
	return true;
}

void linux_zero_page(const u8 *data, const struct linux_kernel *k,
		     const struct linux_boot_layout *l, u8 *page)
{
	int n = l->e820_count < LINUX_E820_MAX ? l->e820_count : LINUX_E820_MAX;

	memset(page, 0, LINUX_ZERO_PAGE_SIZE);
	if (k->kind == LINUX_BZIMAGE) {
		/* The header is copied from the image, then the loader's fields set. */
		memcpy(page + BP_HDR, data + BP_HDR, k->header_end - BP_HDR);
	} else {
		le_store(page + HDR_BOOT_FLAG, 0xaa55, 2);
		memcpy(page + HDR_MAGIC, "HdrS", 4);
		le_store(page + HDR_VERSION, k->protocol, 2);
		le_store(page + HDR_XLOADFLAGS, XLF_KERNEL_64, 2);
		le_store(page + HDR_CMDLINE_SIZE, k->cmdline_max, 4);
		le_store(page + HDR_INITRD_ADDR_MAX, k->initrd_max - 1, 4);
	}
	page[HDR_TYPE_OF_LOADER] = LOADER_UNDEFINED;
	page[HDR_LOADFLAGS] |= LOADED_HIGH;
	le_store(page + HDR_CMD_LINE_PTR, (u32)l->cmdline_gpa, 4);
	le_store(page + BP_EXT_CMD_LINE_PTR, (u32)(l->cmdline_gpa >> 32), 4);
	le_store(page + HDR_RAMDISK_IMAGE, (u32)l->initrd_gpa, 4);
	le_store(page + HDR_RAMDISK_SIZE, (u32)l->initrd_size, 4);
	le_store(page + BP_EXT_RAMDISK_IMAGE, (u32)(l->initrd_gpa >> 32), 4);
	le_store(page + BP_EXT_RAMDISK_SIZE, (u32)(l->initrd_size >> 32), 4);
	page[BP_E820_ENTRIES] = (u8)n;
	memcpy(page + BP_E820_TABLE, l->e820, (size_t)n * sizeof(*l->e820));
}
