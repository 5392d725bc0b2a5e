/*
 * Linux x86 boot protocol, the pure part (Documentation/arch/x86/boot.rst):
 * recognising a kernel (a bzImage, or the vmlinux ELF inside one), reading
 * its setup header, and building the zero page (struct boot_params) a
 * 64-bit entry expects. Every offset is checked against the file first;
 * host unit-tested with malformed input (tests/unit/test_bzimage.c).
 */
#ifndef CORE_BZIMAGE_H
#define CORE_BZIMAGE_H

#include "core/image.h"

#define LINUX_ZERO_PAGE_SIZE 4096
#define LINUX_E820_MAX 128
#define LINUX_MIN_PROTOCOL 0x020c  /* 2.12: xloadflags, the 64-bit entry */
#define E820_RAM 1
#define E820_RESERVED 2

enum linux_kind { LINUX_BZIMAGE, LINUX_VMLINUX };

struct linux_kernel {
	enum linux_kind kind;
	u16 protocol;          /* boot protocol version, 0x020f = 2.15 */
	u64 code_offset, code_size;  /* bzImage: the protected-mode kernel in the file */
	u64 load_addr;         /* where the kernel goes in guest-physical memory */
	u64 end;               /* end of the memory it needs there (init_size) */
	u64 entry;             /* guest-physical 64-bit entry point */
	u64 initrd_max;        /* the initrd must end at or below this */
	u32 cmdline_max;       /* command-line bytes, NUL excluded */
	u32 header_end;        /* bzImage: the setup header is bytes 0x1f1..header_end */
	char release[65];      /* kernel version string, or the vmlinux build note */
};

struct e820_entry {
	u64 addr, size;
	u32 type;
} PACKED;

/* Where the loader put what the zero page points at. */
struct linux_boot_layout {
	u64 cmdline_gpa;
	u64 initrd_gpa, initrd_size;  /* size 0: no initrd */
	const struct e820_entry *e820;
	int e820_count;
};

/* A bzImage: boot sector flag 0xaa55 and "HdrS" (then linux_parse tells
 * whether it is usable). */
bool linux_is_bzimage(const u8 *data, u64 size);
/* An ELF file with a "Linux" note: the kernel's own vmlinux. */
bool linux_is_vmlinux(const u8 *data, u64 size);
/* elf: the parsed ELF for a vmlinux, NULL for a bzImage. */
bool linux_parse(const u8 *data, u64 size, const struct guest_image *elf,
		 struct linux_kernel *k, char *err, size_t err_len);
/* Fill page (LINUX_ZERO_PAGE_SIZE bytes) with the kernel's boot_params. */
void linux_zero_page(const u8 *data, const struct linux_kernel *k,
		     const struct linux_boot_layout *l, u8 *page);

#endif
