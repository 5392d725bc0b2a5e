/*
 * Tests of the multiboot2 information parser (arch/x86/multiboot2.c). Each test
 * builds an information block (Multiboot2 spec 3.6) in a scratch buffer and
 * hands the parser a copy allocated with exactly total_size bytes, so ASan
 * reports any read past the block.
 */
#include <string.h>

#include "unit.h"
#include "arch/x86/multiboot2.h"

#define PHYS 0x10000ull  /* the "physical address" passed with each block */

enum {
	T_END = 0, T_CMDLINE = 1, T_LOADER = 2, T_MODULE = 3, T_BASIC_MEM = 4,
	T_MMAP = 6, T_FB = 8, T_EFI32 = 11, T_EFI64 = 12, T_ACPI_OLD = 14, T_ACPI_NEW = 15,
	T_EFI_MMAP = 17, T_EFI_BS = 18,
};

struct mb2 {
	u8 buf[16384];
	u32 len;
};

static void put32(u8 *p, u32 v) { memcpy(p, &v, 4); }
static void put64(u8 *p, u64 v) { memcpy(p, &v, 8); }

static void mb_init(struct mb2 *b)
{
	memset(b, 0, sizeof(*b));
	b->len = 8;  /* total_size and reserved, filled by mb_finish */
}

/* Append a tag whose header claims 'size' bytes but carries 'n' payload bytes. */
static void mb_tag_sized(struct mb2 *b, u32 type, u32 size, const void *payload, u32 n)
{
	put32(b->buf + b->len, type);
	put32(b->buf + b->len + 4, size);
	if (n)
		memcpy(b->buf + b->len + 8, payload, n);
	b->len += 8 + n;
	b->len = (b->len + 7) & ~7u;
}

static void mb_tag(struct mb2 *b, u32 type, const void *payload, u32 n)
{
	mb_tag_sized(b, type, 8 + n, payload, n);
}

static void mb_string(struct mb2 *b, u32 type, const char *s)
{
	mb_tag(b, type, s, (u32)strlen(s) + 1);
}

static void mb_module(struct mb2 *b, u32 start, u32 end, const char *cmdline)
{
	u8 p[600];

	put32(p, start);
	put32(p + 4, end);
	strcpy((char *)p + 8, cmdline);
	mb_tag(b, T_MODULE, p, 8 + (u32)strlen(cmdline) + 1);
}

struct region { u64 base, length; u32 type; };

/* A memory map tag with the given entry size (>= 24 puts real entries in). */
static void mb_mmap(struct mb2 *b, u32 entry_size, const struct region *r, int n)
{
	static u8 p[8 + 128 * 40];

	memset(p, 0, sizeof(p));
	put32(p, entry_size);
	put32(p + 4, 0);  /* entry_version */
	for (int i = 0; i < n && entry_size >= 24; i++) {
		put64(p + 8 + i * entry_size, r[i].base);
		put64(p + 8 + i * entry_size + 8, r[i].length);
		put32(p + 8 + i * entry_size + 16, r[i].type);
	}
	mb_tag(b, T_MMAP, p, 8 + (u32)n * entry_size);
}

static const struct region ram[] = {
	{ 0, 0x9fc00, MEM_AVAILABLE },
	{ 0x100000, 0x7ff00000, MEM_AVAILABLE },
	{ 0xfffc0000, 0x40000, MEM_RESERVED },
};

static void mb_default_mmap(struct mb2 *b)
{
	mb_mmap(b, 24, ram, 3);
}

static void mb_finish(struct mb2 *b, bool end_tag)
{
	if (end_tag)
		mb_tag(b, T_END, NULL, 0);
	put32(b->buf, b->len);
}

/* Run the parser on an exact-size heap copy of the first 'len' bytes. */
static bool parse_len(const struct mb2 *b, u32 len, u32 magic, u64 phys, struct boot_info *bi,
		      char *err)
{
	u8 *copy = malloc(len);
	bool ok;

	memcpy(copy, b->buf, len);
	err[0] = 0;
	ok = multiboot2_parse(magic, copy, phys, bi, err, 200);
	free(copy);
	return ok;
}

static bool parse(const struct mb2 *b, struct boot_info *bi, char *err)
{
	return parse_len(b, b->len, MULTIBOOT2_BOOTLOADER_MAGIC, PHYS, bi, err);
}

static bool has_note(const struct boot_info *bi, const char *needle)
{
	for (int i = 0; i < bi->note_count; i++)
		if (strstr(bi->notes[i], needle))
			return true;
	return false;
}

static struct mb2 b;
static struct boot_info bi;
static char err[200];

TEST(full_information_parsed)
{
	u8 fb[24] = { 0 }, rsdp[20] = { 'R', 'S', 'D', ' ' };

	mb_init(&b);
	mb_string(&b, T_CMDLINE, "log=debug serial=0x3f8");
	mb_string(&b, T_LOADER, "GRUB 2.06");
	mb_module(&b, 0x200000, 0x280000, "guest.elf name=a mmu=ept");
	mb_module(&b, 0x280000, 0x280000, "");
	mb_default_mmap(&b);
	put64(fb, 0xfd000000);
	put32(fb + 8, 4096);
	put32(fb + 12, 1024);
	put32(fb + 16, 768);
	fb[20] = 32;
	fb[21] = 1;
	mb_tag(&b, T_FB, fb, sizeof(fb));
	mb_tag(&b, T_ACPI_NEW, rsdp, sizeof(rsdp));
	mb_finish(&b, true);

	CHECK(parse(&b, &bi, err));
	CHECK(!strcmp(bi.cmdline, "log=debug serial=0x3f8"));
	CHECK(!strcmp(bi.loader, "GRUB 2.06"));
	CHECK_EQ(bi.module_count, 2);
	CHECK_EQ(bi.modules[0].start, 0x200000);
	CHECK_EQ(bi.modules[0].end, 0x280000);
	CHECK(!strcmp(bi.modules[0].cmdline, "guest.elf name=a mmu=ept"));
	CHECK_EQ(bi.modules[1].start, bi.modules[1].end);
	CHECK(!strcmp(bi.modules[1].cmdline, ""));
	CHECK_EQ(bi.mem_count, 3);
	for (int i = 0; i < 3; i++) {
		CHECK_EQ(bi.mem[i].base, ram[i].base);
		CHECK_EQ(bi.mem[i].length, ram[i].length);
		CHECK_EQ(bi.mem[i].type, ram[i].type);
	}
	CHECK(bi.fb.present);
	CHECK_EQ(bi.fb.addr, 0xfd000000);
	CHECK_EQ(bi.fb.pitch, 4096);
	CHECK_EQ(bi.fb.width, 1024);
	CHECK_EQ(bi.fb.height, 768);
	CHECK_EQ(bi.fb.bpp, 32);
	CHECK_EQ(bi.fb.type, 1);
	CHECK(bi.acpi_rsdp > PHYS && bi.acpi_rsdp < PHYS + b.len);
	CHECK(!memcmp(b.buf + (bi.acpi_rsdp - PHYS), "RSD ", 4));
	CHECK_EQ(bi.info_start, PHYS);
	CHECK_EQ(bi.info_end, PHYS + b.len);
	CHECK_EQ(bi.note_count, 0);
}

TEST(minimal_information_with_only_a_memory_map)
{
	mb_init(&b);
	mb_default_mmap(&b);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.mem_count, 3);
	CHECK_EQ(bi.module_count, 0);
	CHECK(!bi.fb.present);
	CHECK_EQ(bi.acpi_rsdp, 0);
	CHECK_EQ(bi.cmdline[0], 0);
	CHECK_EQ(bi.note_count, 0);
}

TEST(wrong_magic_rejected)
{
	mb_init(&b);
	mb_default_mmap(&b);
	mb_finish(&b, true);
	CHECK(!parse_len(&b, b.len, 0x2badb002, PHYS, &bi, err));
	CHECK(strstr(err, "magic"));
	CHECK(!parse_len(&b, b.len, 0, PHYS, &bi, err));
	CHECK(!parse_len(&b, b.len, MULTIBOOT2_BOOTLOADER_MAGIC ^ 1, PHYS, &bi, err));
}

TEST(misaligned_or_null_information_rejected)
{
	mb_init(&b);
	mb_default_mmap(&b);
	mb_finish(&b, true);
	for (u64 off = 1; off < 8; off++) {
		CHECK(!parse_len(&b, b.len, MULTIBOOT2_BOOTLOADER_MAGIC, PHYS + off, &bi, err));
		CHECK(strstr(err, "aligned"));
	}
	CHECK(!multiboot2_parse(MULTIBOOT2_BOOTLOADER_MAGIC, NULL, 0, &bi, err, sizeof(err)));
}

TEST(impossible_total_size_rejected)
{
	static const u32 sizes[] = { 0, 8, 15, (1u << 20) + 8, 0xfffffff8u };

	for (unsigned i = 0; i < ARRAY_SIZE(sizes); i++) {
		mb_init(&b);
		mb_finish(&b, true);  /* 16 bytes really present */
		put32(b.buf, sizes[i]);
		CHECK(!parse_len(&b, 16, MULTIBOOT2_BOOTLOADER_MAGIC, PHYS, &bi, err));
		CHECK(strstr(err, "size"));
	}
}

TEST(no_memory_map_is_fatal)
{
	mb_init(&b);
	mb_string(&b, T_CMDLINE, "x");
	mb_finish(&b, true);
	CHECK(!parse(&b, &bi, err));
	CHECK(strstr(err, "memory map"));

	mb_init(&b);
	mb_finish(&b, true);  /* just the 16-byte minimum */
	CHECK_EQ(b.len, 16);
	CHECK(!parse(&b, &bi, err));
	CHECK(strstr(err, "memory map"));
}

TEST(tag_size_below_header_stops_the_list)
{
	for (u32 size = 0; size < 8; size++) {
		mb_init(&b);
		mb_default_mmap(&b);
		mb_tag_sized(&b, T_CMDLINE, size, "ab\0\0\0\0\0", 8);
		mb_string(&b, T_LOADER, "after");
		mb_finish(&b, true);
		CHECK(parse(&b, &bi, err));
		CHECK(has_note(&bi, "bad size"));
		CHECK(has_note(&bi, "no end tag"));
		CHECK_EQ(bi.cmdline[0], 0);
		CHECK_EQ(bi.loader[0], 0);  /* the rest of the list was not trusted */
	}
	/* Before the memory map, the same problem leaves no map: fatal. */
	mb_init(&b);
	mb_tag_sized(&b, T_CMDLINE, 4, "ab\0\0\0\0\0", 8);
	mb_default_mmap(&b);
	mb_finish(&b, true);
	CHECK(!parse(&b, &bi, err));
}

TEST(tag_size_past_the_end_stops_the_list)
{
	mb_init(&b);
	mb_default_mmap(&b);
	mb_tag_sized(&b, T_CMDLINE, 4096, "abc\0\0\0\0", 8);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK(has_note(&bi, "bad size"));
	CHECK_EQ(bi.cmdline[0], 0);

	/* A memory map tag claiming more bytes than the block holds. */
	mb_init(&b);
	mb_default_mmap(&b);
	put32(b.buf + 8 + 4, 8 + 8 + 24 * 3 + 8);  /* one entry more than present */
	mb_finish(&b, false);
	CHECK(!parse(&b, &bi, err));
	CHECK(has_note(&bi, "bad size"));

	/* An end tag whose size runs past total_size. */
	mb_init(&b);
	mb_default_mmap(&b);
	mb_tag_sized(&b, T_END, 16, NULL, 0);
	mb_finish(&b, false);
	CHECK(parse(&b, &bi, err));
	CHECK(has_note(&bi, "bad size"));
}

TEST(missing_end_tag_is_a_note)
{
	mb_init(&b);
	mb_default_mmap(&b);
	mb_string(&b, T_CMDLINE, "a=b");
	mb_finish(&b, false);
	CHECK(parse(&b, &bi, err));
	CHECK(!strcmp(bi.cmdline, "a=b"));
	CHECK_EQ(bi.note_count, 1);
	CHECK(has_note(&bi, "no end tag"));

	/* total_size leaving 4 stray bytes after the last tag: no header fits. */
	mb_init(&b);
	mb_default_mmap(&b);
	b.len += 4;
	mb_finish(&b, false);
	CHECK(parse(&b, &bi, err));
	CHECK(has_note(&bi, "no end tag"));
}

TEST(tags_after_the_end_tag_are_ignored)
{
	mb_init(&b);
	mb_default_mmap(&b);
	mb_tag(&b, T_END, NULL, 0);
	mb_string(&b, T_CMDLINE, "late");
	mb_module(&b, 0x1000, 0x2000, "late");
	mb_finish(&b, false);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.cmdline[0], 0);
	CHECK_EQ(bi.module_count, 0);
	CHECK_EQ(bi.note_count, 0);
}

TEST(unterminated_strings_ignored)
{
	mb_init(&b);
	mb_default_mmap(&b);
	mb_tag(&b, T_CMDLINE, "abcdefgh", 8);  /* no NUL inside the tag */
	mb_tag(&b, T_LOADER, "GRUBGRUB", 8);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.cmdline[0], 0);
	CHECK_EQ(bi.loader[0], 0);
	CHECK(has_note(&bi, "unterminated command line"));

	/* Empty payload: nothing to terminate either. */
	mb_init(&b);
	mb_default_mmap(&b);
	mb_tag(&b, T_CMDLINE, NULL, 0);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK(has_note(&bi, "unterminated command line"));
}

TEST(long_strings_refused_not_cut)
{
	char s[2000];

	memset(s, 'x', sizeof(s) - 1);
	s[sizeof(s) - 1] = 0;
	mb_init(&b);
	mb_default_mmap(&b);
	mb_string(&b, T_CMDLINE, s);
	mb_string(&b, T_LOADER, s);
	mb_module(&b, 0, 0x1000, s + sizeof(s) - 590);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK(bi.cmdline_too_long);             /* boot_main refuses to run half of it */
	CHECK(has_note(&bi, "command line longer than 511 bytes"));
	CHECK(!strcmp(bi.loader, "a loader with a long name"));
	CHECK_EQ(bi.module_count, 0);           /* a module's options cut short: refused */
	CHECK_EQ(bi.modules_refused, 1);

	/* Exactly 511 bytes still fit. */
	mb_init(&b);
	mb_default_mmap(&b);
	mb_string(&b, T_CMDLINE, s + sizeof(s) - BOOT_CMDLINE_MAX);
	mb_module(&b, 0, 0x1000, s + sizeof(s) - BOOT_CMDLINE_MAX);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK(!bi.cmdline_too_long);
	CHECK_EQ(strlen(bi.cmdline), BOOT_CMDLINE_MAX - 1);
	CHECK_EQ(bi.module_count, 1);
	CHECK_EQ(bi.modules_refused, 0);
}

TEST(bad_modules_ignored)
{
	u8 p[8] = { 0 };

	mb_init(&b);
	mb_default_mmap(&b);
	mb_module(&b, 0x300000, 0x2fffff, "backwards");
	mb_tag(&b, T_MODULE, p, 8);  /* no room for the string */
	mb_tag(&b, T_MODULE, "\0\0\x40\0\0\0\x50\0name", 12);  /* unterminated */
	mb_module(&b, 0x600000, 0x700000, "good");
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.module_count, 1);
	CHECK_EQ(bi.modules[0].start, 0x600000);
	CHECK(!strcmp(bi.modules[0].cmdline, "good"));
	CHECK(has_note(&bi, "before start"));
	CHECK(has_note(&bi, "too short"));
	CHECK(has_note(&bi, "unterminated"));
	CHECK_EQ(bi.note_count, 3);
	CHECK_EQ(bi.modules_refused, 3);        /* the run fails rather than lose them */
}

TEST(too_many_modules_keeps_the_first)
{
	mb_init(&b);
	mb_default_mmap(&b);
	for (u32 i = 0; i < BOOT_MAX_MODULES + 3; i++) {
		char name[16];

		snprintf(name, sizeof(name), "m%u", i);
		mb_module(&b, 0x1000000 + i * 0x1000, 0x1001000 + i * 0x1000, name);
	}
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.module_count, BOOT_MAX_MODULES);
	CHECK(!strcmp(bi.modules[BOOT_MAX_MODULES - 1].cmdline, "m63"));
	CHECK_EQ(bi.note_count, 3);
	CHECK(has_note(&bi, "more than 64 modules"));
	CHECK_EQ(bi.modules_refused, 3);
}

TEST(too_many_regions_keeps_the_first)
{
	struct region r[BOOT_MAX_MEM_REGIONS + 16];

	for (unsigned i = 0; i < ARRAY_SIZE(r); i++)
		r[i] = (struct region){ i * 0x10000ull, 0x8000, MEM_AVAILABLE };
	mb_init(&b);
	mb_mmap(&b, 24, r, ARRAY_SIZE(r));
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.mem_count, BOOT_MAX_MEM_REGIONS);
	CHECK_EQ(bi.mem[BOOT_MAX_MEM_REGIONS - 1].base, (BOOT_MAX_MEM_REGIONS - 1) * 0x10000ull);
	CHECK(has_note(&bi, "only 64 used"));

	/* The limit holds across several memory map tags too. */
	mb_init(&b);
	mb_mmap(&b, 24, r, 40);
	mb_mmap(&b, 24, r + 40, 40);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.mem_count, BOOT_MAX_MEM_REGIONS);
	CHECK_EQ(bi.mem[63].base, r[63].base);
	CHECK_EQ(bi.note_count, 1);
}

TEST(malformed_memory_maps_ignored)
{
	static const u32 bad_entry_sizes[] = { 0, 8, 16, 20, 23, 25, 28, 36 };

	for (unsigned i = 0; i < ARRAY_SIZE(bad_entry_sizes); i++) {
		mb_init(&b);
		mb_mmap(&b, bad_entry_sizes[i], ram, 3);
		mb_finish(&b, true);
		CHECK(!parse(&b, &bi, err));
		CHECK(has_note(&bi, "memory map tag malformed"));
		CHECK_EQ(bi.mem_count, 0);
	}
	/* A tag too short for entry_size/entry_version. */
	mb_init(&b);
	mb_tag(&b, T_MMAP, "\x18\0\0\0", 4);
	mb_finish(&b, true);
	CHECK(!parse(&b, &bi, err));
	CHECK(has_note(&bi, "memory map tag malformed"));
	/* A bad map does not hide a good one after it. */
	mb_init(&b);
	mb_mmap(&b, 12, ram, 3);
	mb_default_mmap(&b);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.mem_count, 3);
}

TEST(memory_map_entry_size_is_the_stride)
{
	/* A future, longer entry format: 32-byte entries, first 24 bytes as today. */
	mb_init(&b);
	mb_mmap(&b, 32, ram, 3);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.mem_count, 3);
	CHECK_EQ(bi.mem[2].base, ram[2].base);
	CHECK_EQ(bi.mem[2].type, MEM_RESERVED);

	/* A trailing partial entry is not read. */
	mb_init(&b);
	mb_mmap(&b, 24, ram, 3);
	put32(b.buf + 8 + 4, 8 + 8 + 24 * 2 + 16);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.mem_count, 2);
}

TEST(unknown_tags_noted_not_fatal)
{
	mb_init(&b);
	mb_tag(&b, 22, "abcd", 4);
	mb_tag(&b, 0xffffffffu, NULL, 0);
	mb_tag(&b, T_BASIC_MEM, "\x80\x02\0\0\0\0\x01\0", 8);  /* known, unused: quiet */
	mb_tag(&b, 21, "\0\0\x10\0", 4);
	mb_default_mmap(&b);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.mem_count, 3);
	CHECK_EQ(bi.note_count, 2);
	CHECK(has_note(&bi, "unknown tag type 22"));
	CHECK(has_note(&bi, "unknown tag type 4294967295"));
}

TEST(notes_are_capped)
{
	mb_init(&b);
	for (int i = 0; i < 3 * BOOT_MAX_NOTES; i++)
		mb_tag(&b, 100 + i, NULL, 0);
	mb_default_mmap(&b);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.note_count, BOOT_MAX_NOTES);
	CHECK_EQ(bi.mem_count, 3);
	for (int i = 0; i < BOOT_MAX_NOTES; i++)
		CHECK(strlen(bi.notes[i]) < BOOT_NOTE_MAX);
}

TEST(short_framebuffer_and_empty_acpi_ignored)
{
	u8 fb[24] = { 0 }, rsdp_old[20] = { 'o' }, rsdp_new[36] = { 'n' };

	mb_init(&b);
	mb_default_mmap(&b);
	mb_tag(&b, T_FB, fb, 22);  /* 30 bytes: one short */
	mb_tag(&b, T_ACPI_NEW, NULL, 0);
	mb_tag(&b, T_ACPI_OLD, rsdp_old, sizeof(rsdp_old));
	mb_tag(&b, T_ACPI_NEW, rsdp_new, sizeof(rsdp_new));
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK(!bi.fb.present);
	CHECK(has_note(&bi, "framebuffer tag too short"));
	/* The first non-empty ACPI tag wins. */
	CHECK(bi.acpi_rsdp);
	CHECK_EQ(b.buf[bi.acpi_rsdp - PHYS], 'o');
}

TEST(odd_tag_sizes_padded_to_8)
{
	mb_init(&b);
	mb_string(&b, T_CMDLINE, "abc");     /* 12-byte tag, 4 bytes padding */
	mb_string(&b, T_LOADER, "lo");       /* 11-byte tag */
	mb_default_mmap(&b);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK(!strcmp(bi.cmdline, "abc"));
	CHECK(!strcmp(bi.loader, "lo"));
	CHECK_EQ(bi.mem_count, 3);
	CHECK_EQ(bi.note_count, 0);
}

/* Every truncation of a full block, with total_size adjusted, stays inside it. */
TEST(every_truncation_stays_in_bounds)
{
	struct mb2 full;

	mb_init(&full);
	mb_string(&full, T_CMDLINE, "log=debug");
	mb_module(&full, 0x200000, 0x280000, "guest");
	mb_default_mmap(&full);
	mb_tag(&full, T_FB, "0123456789abcdefghijklmnop", 26);
	mb_tag(&full, T_ACPI_NEW, "RSD PTR ", 8);
	mb_finish(&full, true);
	for (u32 len = 16; len <= full.len; len++) {
		bool ok;

		b = full;
		put32(b.buf, len);
		ok = parse_len(&b, len, MULTIBOOT2_BOOTLOADER_MAGIC, PHYS, &bi, err);
		CHECK(bi.mem_count <= 3 && bi.module_count <= 1);
		CHECK(ok == (bi.mem_count > 0));
	}
}

/* Random corruption of a valid block: never a read outside it (ASan). */
TEST(random_corruption_stays_in_bounds)
{
	struct mb2 full;
	unsigned seed = 12345;

	mb_init(&full);
	mb_string(&full, T_CMDLINE, "log=debug");
	mb_module(&full, 0x200000, 0x280000, "guest");
	mb_default_mmap(&full);
	mb_tag(&full, T_FB, "0123456789abcdefghijklmnop", 26);
	mb_finish(&full, true);
	for (int iter = 0; iter < 20000; iter++) {
		b = full;
		for (int k = 0; k < 1 + iter % 6; k++) {
			seed = seed * 1103515245u + 12345u;
			u32 pos = 8 + (seed >> 8) % (full.len - 8);

			seed = seed * 1103515245u + 12345u;
			b.buf[pos] = (u8)(seed >> 16);
		}
		parse(&b, &bi, err);
		CHECK(bi.note_count <= BOOT_MAX_NOTES);
		CHECK(bi.mem_count <= BOOT_MAX_MEM_REGIONS);
		CHECK(bi.module_count <= BOOT_MAX_MODULES);
		CHECK(memchr(bi.cmdline, 0, sizeof(bi.cmdline)));
	}
}

/* --- UEFI hand-off: EFI memory map, system table, framebuffer colours ------- */

struct efi_desc { u32 type; u64 base, pages; };

/* An EFI memory map tag (Multiboot2 3.6.11) with descriptors 'stride' bytes apart. */
static void mb_efi_mmap(struct mb2 *b, u32 stride, const struct efi_desc *d, int n)
{
	static u8 p[8 + 128 * 64];

	memset(p, 0xee, sizeof(p));  /* padding and virtual addresses must be ignored */
	put32(p, stride);
	put32(p + 4, 1);  /* descriptor_version */
	for (int i = 0; i < n; i++) {
		u8 *e = p + 8 + i * stride;

		put32(e, d[i].type);
		put64(e + 8, d[i].base);
		put64(e + 24, d[i].pages);
		put64(e + 32, 0xf);  /* attributes */
	}
	mb_tag(b, T_EFI_MMAP, p, 8 + (u32)n * stride);
}

/* A typical OVMF map: loader, boot-services and free RAM interleaved. */
static const struct efi_desc ovmf_map[] = {
	{ 3, 0x0, 1 },           /* boot services code */
	{ 7, 0x1000, 0x9f },     /* conventional */
	{ 0, 0xa0000, 0x60 },    /* reserved (legacy VGA, BIOS) */
	{ 2, 0x100000, 0x700 },  /* loader data (our image, modules) */
	{ 7, 0x800000, 0x8 },
	{ 10, 0x808000, 0x8 },   /* ACPI NVS */
	{ 4, 0x810000, 0x7000 }, /* boot services data */
	{ 9, 0x7810000, 0x10 },  /* ACPI reclaim */
	{ 6, 0x7820000, 0x20 },  /* runtime services data */
	{ 8, 0x7840000, 0x1 },   /* unusable */
	{ 11, 0xffc00000, 0x400 },  /* MMIO (flash) */
	{ 14, 0x100000000ull, 0x100 },  /* persistent memory: not ours to use */
};

TEST(efi_memory_map_types_mapped_and_neighbours_merged)
{
	static const struct region want[] = {
		{ 0x0, 0xa0000, MEM_AVAILABLE },
		{ 0xa0000, 0x60000, MEM_RESERVED },
		{ 0x100000, 0x708000, MEM_AVAILABLE },
		{ 0x808000, 0x8000, MEM_NVS },
		{ 0x810000, 0x7000000, MEM_AVAILABLE },
		{ 0x7810000, 0x10000, MEM_ACPI_RECLAIMABLE },
		{ 0x7820000, 0x20000, MEM_RESERVED },
		{ 0x7840000, 0x1000, MEM_BAD },
		{ 0xffc00000, 0x500000, MEM_RESERVED },  /* MMIO + persistent memory */
	};

	mb_init(&b);
	mb_efi_mmap(&b, 48, ovmf_map, ARRAY_SIZE(ovmf_map));
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK(bi.mem_from_efi);
	CHECK_EQ(bi.mem_count, (int)ARRAY_SIZE(want));
	for (int i = 0; i < bi.mem_count && i < (int)ARRAY_SIZE(want); i++) {
		CHECK_EQ(bi.mem[i].base, want[i].base);
		CHECK_EQ(bi.mem[i].length, want[i].length);
		CHECK_EQ(bi.mem[i].type, want[i].type);
	}
	CHECK_EQ(bi.note_count, 0);
}

TEST(efi_descriptor_size_is_the_stride)
{
	mb_init(&b);
	mb_efi_mmap(&b, 40, ovmf_map, 2);  /* the bare EFI_MEMORY_DESCRIPTOR */
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.mem_count, 1);
	CHECK_EQ(bi.mem[0].length, 0xa0000);

	mb_init(&b);
	mb_efi_mmap(&b, 64, ovmf_map, 3);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.mem_count, 2);
	CHECK_EQ(bi.mem[1].base, 0xa0000);
}

TEST(e820_style_map_preferred_over_efi_map)
{
	/* GRUB gives both; the EFI one comes first here and must still lose. */
	mb_init(&b);
	mb_efi_mmap(&b, 48, ovmf_map, ARRAY_SIZE(ovmf_map));
	mb_default_mmap(&b);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK(!bi.mem_from_efi);
	CHECK_EQ(bi.mem_count, 3);
	CHECK_EQ(bi.mem[1].base, ram[1].base);
}

TEST(malformed_efi_memory_maps)
{
	static const struct efi_desc bad[] = {
		{ 7, 0x100000, 0 },                        /* empty */
		{ 7, 0xfffffffffffff000ull, 2 },           /* wraps past 2^64 */
		{ 7, 0x1000, 0x10000000000000ull },        /* 2^52 pages: wraps */
		{ 7, 0x200000, 0x100 },                    /* the one good descriptor */
	};

	mb_init(&b);
	mb_efi_mmap(&b, 36, ovmf_map, 2);  /* shorter than a descriptor */
	mb_finish(&b, true);
	CHECK(!parse(&b, &bi, err));
	CHECK(strstr(err, "no memory map"));
	CHECK(has_note(&bi, "EFI memory map tag malformed"));

	mb_init(&b);
	mb_efi_mmap(&b, 44, ovmf_map, 2);  /* not a multiple of 8 */
	mb_finish(&b, true);
	CHECK(!parse(&b, &bi, err));

	mb_init(&b);
	mb_tag(&b, T_EFI_MMAP, "\x30\0\0", 4);  /* too short for its own header */
	mb_finish(&b, true);
	CHECK(!parse(&b, &bi, err));

	mb_init(&b);
	mb_efi_mmap(&b, 48, bad, ARRAY_SIZE(bad));
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.mem_count, 1);
	CHECK_EQ(bi.mem[0].base, 0x200000);
	CHECK_EQ(bi.mem[0].length, 0x100000);
	CHECK(has_note(&bi, "EFI memory descriptor 1 has an impossible size"));
}

TEST(efi_map_longer_than_the_region_list_keeps_the_first)
{
	static struct efi_desc many[100];

	/* Alternating types never merge. */
	for (int i = 0; i < 100; i++)
		many[i] = (struct efi_desc){ i % 2 ? 7 : 0, 0x1000ull * i, 1 };
	mb_init(&b);
	mb_efi_mmap(&b, 48, many, 100);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.mem_count, BOOT_MAX_MEM_REGIONS);
	CHECK_EQ(bi.mem[BOOT_MAX_MEM_REGIONS - 1].base, 0x1000ull * (BOOT_MAX_MEM_REGIONS - 1));
	CHECK(has_note(&bi, "EFI memory map has 100 descriptors"));
}

TEST(efi_system_table_and_acpi2_rsdp)
{
	u8 st64[8], st32[4], rsdp_old[20] = { 'o' }, rsdp_new[36] = { 'n' };

	put64(st64, 0x7f9e8018ull);
	put32(st32, 0x1234);
	mb_init(&b);
	mb_default_mmap(&b);
	mb_tag(&b, T_EFI32, st32, 4);
	mb_tag(&b, T_EFI64, st64, 8);
	mb_tag(&b, T_ACPI_OLD, rsdp_old, sizeof(rsdp_old));
	mb_tag(&b, T_ACPI_NEW, rsdp_new, 20);  /* too short for an ACPI 2.0 RSDP */
	mb_tag(&b, T_ACPI_NEW, rsdp_new, sizeof(rsdp_new));
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.efi_system_table, 0x7f9e8018ull);
	CHECK_EQ(b.buf[bi.acpi_rsdp - PHYS], 'o');
	CHECK(bi.acpi_rsdp_v2 > bi.acpi_rsdp);
	CHECK_EQ(b.buf[bi.acpi_rsdp_v2 - PHYS], 'n');
	CHECK_EQ(b.buf[bi.acpi_rsdp_v2 - PHYS - 4], 8 + 36);  /* the full-size copy */
	CHECK_EQ(bi.note_count, 0);

	/* A 32-bit table alone is kept; boot services left running are noted. */
	mb_init(&b);
	mb_default_mmap(&b);
	mb_tag(&b, T_EFI32, st32, 4);
	mb_tag(&b, T_EFI_BS, NULL, 0);
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.efi_system_table, 0x1234);
	CHECK(!bi.acpi_rsdp_v2);
	CHECK(has_note(&bi, "EFI boot services running"));
}

TEST(framebuffer_colour_layout)
{
	u8 fb[30] = { 0 };

	put64(fb, 0x80000000ull);
	put32(fb + 8, 3200);
	put32(fb + 12, 800);
	put32(fb + 16, 600);
	fb[20] = 32;
	fb[21] = FB_TYPE_RGB;
	fb[24] = 16, fb[25] = 8, fb[26] = 8, fb[27] = 8, fb[28] = 0, fb[29] = 8;
	mb_init(&b);
	mb_default_mmap(&b);
	mb_tag(&b, T_FB, fb, sizeof(fb));
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.fb.type, FB_TYPE_RGB);
	CHECK_EQ(bi.fb.red_pos, 16);
	CHECK_EQ(bi.fb.red_size, 8);
	CHECK_EQ(bi.fb.green_pos, 8);
	CHECK_EQ(bi.fb.green_size, 8);
	CHECK_EQ(bi.fb.blue_pos, 0);
	CHECK_EQ(bi.fb.blue_size, 8);

	/* EGA text (BIOS): the colour bytes are a palette description, not read. */
	fb[21] = FB_TYPE_EGA_TEXT;
	mb_init(&b);
	mb_default_mmap(&b);
	mb_tag(&b, T_FB, fb, sizeof(fb));
	mb_finish(&b, true);
	CHECK(parse(&b, &bi, err));
	CHECK_EQ(bi.fb.type, FB_TYPE_EGA_TEXT);
	CHECK_EQ(bi.fb.red_size, 0);
}

UNIT_MAIN()
