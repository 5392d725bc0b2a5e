/*
 * Tests of the Linux boot protocol's data (core/bzimage.c): bzImage headers
 * built in memory as boot.rst lays them out, every way one can be too old,
 * truncated or lying, vmlinux recognition by its "Linux" ELF note, and the
 * zero page a 64-bit entry gets. Inputs are exact-size heap copies so ASan
 * catches any read past the module.
 */
#include <stdlib.h>
#include <string.h>

#include "unit.h"
#include "core/bzimage.h"

#define SETUP_SECTS 4
#define CODE_OFFSET ((SETUP_SECTS + 1) * 512)
#define CODE_BYTES 0x1000

static u8 bz[CODE_OFFSET + CODE_BYTES];
static char err[256];

static void put(u8 *p, u64 v, int bytes) { memcpy(p, &v, (size_t)bytes); }
static u64 get(const u8 *p, int bytes) { u64 v = 0; memcpy(&v, p, (size_t)bytes); return v; }

/* A protocol 2.15 bzImage with a 64-bit entry, as Debian's 6.1 kernel has. */
static void bz_init(void)
{
	memset(bz, 0, sizeof(bz));
	bz[0x1f1] = SETUP_SECTS;
	put(bz + 0x1f4, CODE_BYTES / 16, 4);      /* syssize */
	put(bz + 0x1fe, 0xaa55, 2);
	bz[0x200] = 0xeb;                         /* jmp over the header ... */
	bz[0x201] = 0x6a;                         /* ... which ends at 0x26c */
	memcpy(bz + 0x202, "HdrS", 4);
	put(bz + 0x206, 0x020f, 2);
	put(bz + 0x20e, 0x300 - 0x200, 2);        /* kernel_version string at 0x300 */
	strcpy((char *)bz + 0x300, "6.1.0-test (builder@host) #1");
	bz[0x211] = 0x01;                         /* LOADED_HIGH */
	put(bz + 0x22c, 0x7fffffff, 4);           /* initrd_addr_max */
	put(bz + 0x236, 0x7f, 2);                 /* xloadflags: KERNEL_64 and more */
	put(bz + 0x238, 2047, 4);                 /* cmdline_size */
	put(bz + 0x258, 0x1000000, 8);            /* pref_address */
	put(bz + 0x260, 0x3f98000, 4);            /* init_size */
}

static bool parse_bz(u64 size, struct linux_kernel *k)
{
	u8 *copy = malloc(size);
	bool ok;

	memcpy(copy, bz, size);
	err[0] = 0;
	ok = linux_is_bzimage(copy, size) && linux_parse(copy, size, NULL, k, err, sizeof(err));
	free(copy);
	return ok;
}

TEST(bzimage_64bit_entry)
{
	struct linux_kernel k;

	bz_init();
	CHECK(parse_bz(sizeof(bz), &k));
	CHECK_EQ(k.kind, LINUX_BZIMAGE);
	CHECK_EQ(k.protocol, 0x020f);
	CHECK_EQ(k.code_offset, CODE_OFFSET);
	CHECK_EQ(k.code_size, CODE_BYTES);
	CHECK_EQ(k.load_addr, 0x1000000);
	CHECK_EQ(k.entry, 0x1000200);             /* 64-bit entry: start + 0x200 */
	CHECK_EQ(k.end, 0x1000000 + 0x3f98000);   /* init_size, not the file's size */
	CHECK_EQ(k.initrd_max, 0x80000000ull);
	CHECK_EQ(k.cmdline_max, 2047);
	CHECK(!strcmp(k.release, "6.1.0-test"));
}

TEST(setup_sects_zero_means_four)
{
	struct linux_kernel k;

	bz_init();
	bz[0x1f1] = 0;
	CHECK(parse_bz(sizeof(bz), &k));
	CHECK_EQ(k.code_offset, 5 * 512);
}

TEST(not_a_bzimage)
{
	bz_init();
	memcpy(bz + 0x202, "HdrX", 4);
	CHECK(!linux_is_bzimage(bz, sizeof(bz)));
	bz_init();
	put(bz + 0x1fe, 0x55aa, 2);
	CHECK(!linux_is_bzimage(bz, sizeof(bz)));
	bz_init();
	CHECK(!linux_is_bzimage(bz, 0x280));      /* too short to hold the header */
}

TEST(old_protocol_refused)
{
	struct linux_kernel k;

	bz_init();
	put(bz + 0x206, 0x020b, 2);
	CHECK(!parse_bz(sizeof(bz), &k));
	CHECK(strstr(err, "boot protocol 2.11 is older than 2.12"));
}

TEST(no_64bit_entry_refused)
{
	struct linux_kernel k;

	bz_init();
	put(bz + 0x236, 0x7e, 2);
	CHECK(!parse_bz(sizeof(bz), &k));
	CHECK(strstr(err, "no 64-bit entry point"));
}

TEST(truncated_kernel_refused)
{
	struct linux_kernel k;

	bz_init();
	CHECK(!parse_bz(sizeof(bz) - 16, &k));
	CHECK(strstr(err, "bzImage truncated"));
	bz_init();
	CHECK(!parse_bz(CODE_OFFSET - 1, &k));    /* setup sectors cut */
	CHECK(strstr(err, "bzImage truncated"));
	bz_init();
	put(bz + 0x1f4, 0x10000000, 4);           /* syssize far past the file */
	CHECK(!parse_bz(sizeof(bz), &k));
	CHECK(strstr(err, "bzImage truncated"));
}

TEST(header_past_its_room_refused)
{
	struct linux_kernel k;

	bz_init();
	bz[0x201] = 0xff;                         /* header would end at 0x301 */
	CHECK(!parse_bz(sizeof(bz), &k));
	CHECK(strstr(err, "setup header claims to end at 0x301"));
}

TEST(unaligned_or_high_load_address_refused)
{
	struct linux_kernel k;

	bz_init();
	put(bz + 0x258, 0x1000010, 8);
	CHECK(!parse_bz(sizeof(bz), &k));
	bz_init();
	put(bz + 0x258, 0x100000000ull, 8);
	CHECK(!parse_bz(sizeof(bz), &k));
	CHECK(strstr(err, "not a page below 4 GiB"));
}

TEST(version_string_outside_setup_ignored)
{
	struct linux_kernel k;

	bz_init();
	put(bz + 0x20e, 0xfff0, 2);               /* points past the setup sectors */
	CHECK(parse_bz(sizeof(bz), &k));
	CHECK_EQ(k.release[0], 0);
}

TEST(zero_page_from_bzimage)
{
	static u8 page[LINUX_ZERO_PAGE_SIZE];
	struct e820_entry map[] = { { 0, 0x9fc00, E820_RAM }, { 0x100000, 0xff00000, E820_RAM } };
	struct linux_boot_layout l = { .cmdline_gpa = 0x8000, .initrd_gpa = 0xfe00000,
				       .initrd_size = 0x123456, .e820 = map, .e820_count = 2 };
	struct linux_kernel k;

	bz_init();
	CHECK(parse_bz(sizeof(bz), &k));
	memset(page, 0xcc, sizeof(page));
	linux_zero_page(bz, &k, &l, page);
	CHECK_EQ(get(page + 0x202, 4), get(bz + 0x202, 4));  /* header copied from the image */
	CHECK_EQ(get(page + 0x206, 2), 0x020f);
	CHECK_EQ(get(page + 0x260, 4), 0x3f98000);
	CHECK_EQ(page[0x26c], 0);                 /* nothing past the header's end */
	CHECK_EQ(page[0x210], 0xff);              /* type_of_loader: undefined */
	CHECK_EQ(page[0x211] & 1, 1);
	CHECK_EQ(get(page + 0x228, 4), 0x8000);   /* cmd_line_ptr */
	CHECK_EQ(get(page + 0x0c8, 4), 0);
	CHECK_EQ(get(page + 0x218, 4), 0xfe00000);
	CHECK_EQ(get(page + 0x21c, 4), 0x123456);
	CHECK_EQ(page[0x1e8], 2);                 /* e820_entries */
	CHECK_EQ(get(page + 0x2d0 + 20, 8), 0x100000);
	CHECK_EQ(get(page + 0x2d0 + 28, 8), 0xff00000);
	CHECK_EQ(get(page + 0x2d0 + 36, 4), E820_RAM);
	CHECK_EQ(page[0x100], 0);                 /* the rest is zero */
}

/* ---- vmlinux: an ELF64 with a PT_LOAD and a PT_NOTE holding notes ---- */

static u8 elf[0x2000];

static void note(u8 *at, const char *name, u32 type, const char *desc)
{
	u32 n = (u32)strlen(name) + 1, d = (u32)strlen(desc) + 1;

	put(at, n, 4);
	put(at + 4, d, 4);
	put(at + 8, type, 4);
	memcpy(at + 12, name, n);
	memcpy(at + 12 + ((n + 3) & ~3u), desc, d);
}

static void elf_init(const char *owner)
{
	memset(elf, 0, sizeof(elf));
	memcpy(elf, "\x7f" "ELF", 4);
	elf[4] = 2, elf[5] = 1, elf[6] = 1;
	put(elf + 16, 2, 2);
	put(elf + 18, 62, 2);
	put(elf + 24, 0x1000000, 8);              /* entry: physical startup_64 */
	put(elf + 32, 64, 8);
	put(elf + 54, 56, 2);
	put(elf + 56, 2, 2);
	/* PT_LOAD: 0x100 bytes at file 0x1000 to 0x1000000, 0x3a00000 in memory */
	put(elf + 64, 1, 4);
	put(elf + 64 + 8, 0x1000, 8);
	put(elf + 64 + 24, 0x1000000, 8);
	put(elf + 64 + 32, 0x100, 8);
	put(elf + 64 + 40, 0x3a00000, 8);
	/* PT_NOTE at file 0x200: a Xen note, then the owner's build-salt note */
	put(elf + 120, 4, 4);
	put(elf + 120 + 8, 0x200, 8);
	put(elf + 120 + 32, 0x40, 8);
	note(elf + 0x200, "Xen", 6, "linux");
	note(elf + 0x218, owner, 0x100, "6.1.0-57-amd64");
}

static bool parse_elf(u64 size, struct linux_kernel *k)
{
	struct guest_image img;
	u8 *copy = malloc(size);
	bool ok;

	memcpy(copy, elf, size);
	err[0] = 0;
	ok = image_parse(copy, size, &img, err, sizeof(err)) && linux_is_vmlinux(copy, size) &&
	     linux_parse(copy, size, &img, k, err, sizeof(err));
	free(copy);
	return ok;
}

TEST(vmlinux_found_by_its_note)
{
	struct linux_kernel k;

	elf_init("Linux");
	CHECK(parse_elf(sizeof(elf), &k));
	CHECK_EQ(k.kind, LINUX_VMLINUX);
	CHECK_EQ(k.entry, 0x1000000);
	CHECK_EQ(k.load_addr, 0x1000000);
	CHECK_EQ(k.end, 0x4a00000);
	CHECK(!strcmp(k.release, "6.1.0-57-amd64"));
}

TEST(elf_without_linux_note_is_not_linux)
{
	elf_init("Linus");
	CHECK(!linux_is_vmlinux(elf, sizeof(elf)));
}

TEST(note_segment_past_the_file_is_not_linux)
{
	elf_init("Linux");
	CHECK(!linux_is_vmlinux(elf, 0x230));     /* the note is cut */
	elf_init("Linux");
	put(elf + 0x218, 0xfffffff0u, 4);         /* namesz lies */
	CHECK(!linux_is_vmlinux(elf, sizeof(elf)));
}

TEST(vmlinux_entry_outside_its_segments_refused)
{
	struct linux_kernel k;

	elf_init("Linux");
	put(elf + 24, 0x800000, 8);
	CHECK(!parse_elf(sizeof(elf), &k));
	CHECK(strstr(err, "entry 0x800000 lies outside"));
}

TEST(zero_page_for_vmlinux_has_a_header)
{
	static u8 page[LINUX_ZERO_PAGE_SIZE];
	struct e820_entry map[] = { { 0x100000, 0xff00000, E820_RAM } };
	struct linux_boot_layout l = { .cmdline_gpa = 0x8000, .e820 = map, .e820_count = 1 };
	struct linux_kernel k;

	elf_init("Linux");
	CHECK(parse_elf(sizeof(elf), &k));
	linux_zero_page(elf, &k, &l, page);
	CHECK_EQ(get(page + 0x1fe, 2), 0xaa55);
	CHECK(!memcmp(page + 0x202, "HdrS", 4));
	CHECK_EQ(get(page + 0x206, 2), 0x020f);
	CHECK_EQ(get(page + 0x228, 4), 0x8000);
	CHECK_EQ(get(page + 0x218, 4), 0);        /* no initrd */
	CHECK_EQ(get(page + 0x21c, 4), 0);
	CHECK_EQ(page[0x1e8], 1);
}

UNIT_MAIN()
