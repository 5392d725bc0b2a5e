/*
 * Tests of the guest image parser (core/image.c): ELF32/ELF64 images with and
 * without a multiboot v1 header, built in memory, and every way the headers
 * can lie. The parser always gets an exact-size heap copy so ASan reports a
 * read past the module.
 */
#include <string.h>

#include "unit.h"
#include "core/image.h"

#define MB1_MAGIC 0x1badb002u
#define PT_LOAD 1
#define PT_NOTE 4
#define PT_GNU_STACK 0x6474e551u
#define EM_386 3
#define EM_X86_64 62
#define IMAGE_BYTES 0x3000

struct elf {
	u8 buf[0x12000];
	u64 size;
	bool is64;
	u64 phoff;
	u32 phentsize;
};

static void put(u8 *p, u64 v, int bytes) { memcpy(p, &v, (size_t)bytes); }
static u64 get(const u8 *p, int bytes) { u64 v = 0; memcpy(&v, p, (size_t)bytes); return v; }

/* An ELF header with no program headers yet; they go right after it. */
static void elf_init(struct elf *e, bool is64, u64 entry)
{
	memset(e, 0, sizeof(*e));
	e->is64 = is64;
	e->size = IMAGE_BYTES;
	e->phoff = is64 ? 64 : 52;
	e->phentsize = is64 ? 56 : 32;
	memcpy(e->buf, "\x7f" "ELF", 4);
	e->buf[4] = is64 ? 2 : 1;  /* EI_CLASS */
	e->buf[5] = 1;             /* EI_DATA: little-endian */
	e->buf[6] = 1;             /* EI_VERSION */
	put(e->buf + 16, 2, 2);    /* ET_EXEC */
	put(e->buf + 18, is64 ? EM_X86_64 : EM_386, 2);
	put(e->buf + 20, 1, 4);
	if (is64) {
		put(e->buf + 24, entry, 8);
		put(e->buf + 32, e->phoff, 8);
		put(e->buf + 52, 64, 2);
		put(e->buf + 54, e->phentsize, 2);
	} else {
		put(e->buf + 24, entry, 4);
		put(e->buf + 28, e->phoff, 4);
		put(e->buf + 40, 52, 2);
		put(e->buf + 42, e->phentsize, 2);
	}
}

static u64 phnum_offset(const struct elf *e) { return e->is64 ? 56 : 44; }

static void elf_phdr(struct elf *e, u32 type, u64 offset, u64 paddr, u64 file_size,
		     u64 mem_size)
{
	u64 n = get(e->buf + phnum_offset(e), 2);
	u8 *ph = e->buf + e->phoff + n * e->phentsize;

	put(ph, type, 4);
	if (e->is64) {
		put(ph + 8, offset, 8);
		put(ph + 16, paddr + 0xffffffff80000000ull, 8);  /* vaddr: must be unused */
		put(ph + 24, paddr, 8);
		put(ph + 32, file_size, 8);
		put(ph + 40, mem_size, 8);
	} else {
		put(ph + 4, offset, 4);
		put(ph + 8, paddr + 0xc0000000u, 4);
		put(ph + 12, paddr, 4);
		put(ph + 16, file_size, 4);
		put(ph + 20, mem_size, 4);
	}
	put(e->buf + phnum_offset(e), n + 1, 2);
}

static void mb_header(struct elf *e, u64 off, u32 flags, bool good_checksum)
{
	put(e->buf + off, MB1_MAGIC, 4);
	put(e->buf + off + 4, flags, 4);
	put(e->buf + off + 8, -(MB1_MAGIC + flags) + (good_checksum ? 0 : 1), 4);
}

/* The usual two-segment kernel: text at 1 MiB (with bss), data at 2 MiB. */
static void elf_standard(struct elf *e, bool is64, u64 entry, bool multiboot)
{
	elf_init(e, is64, entry);
	elf_phdr(e, PT_LOAD, 0x1000, 0x100000, 0x1000, 0x2000);
	elf_phdr(e, PT_GNU_STACK, 0, 0, 0, 0);
	elf_phdr(e, PT_LOAD, 0x2000, 0x200000, 0x800, 0x800);
	if (multiboot)
		mb_header(e, 0x1000, 0x3, true);
}

static struct guest_image img;
static char err[200];

static bool parse_len(const struct elf *e, u64 size)
{
	u8 *copy = malloc(size ? size : 1);
	bool ok;

	memcpy(copy, e->buf, size);
	err[0] = 0;
	ok = image_parse(copy, size, &img, err, sizeof(err));
	free(copy);
	return ok;
}

static bool parse(const struct elf *e)
{
	return parse_len(e, e->size);
}

static struct elf e;

static void check_standard_segments(void)
{
	CHECK_EQ(img.seg_count, 2);
	CHECK_EQ(img.seg[0].file_offset, 0x1000);
	CHECK_EQ(img.seg[0].file_size, 0x1000);
	CHECK_EQ(img.seg[0].paddr, 0x100000);
	CHECK_EQ(img.seg[0].mem_size, 0x2000);
	CHECK_EQ(img.seg[1].file_offset, 0x2000);
	CHECK_EQ(img.seg[1].paddr, 0x200000);
	CHECK_EQ(img.lowest, 0x100000);
	CHECK_EQ(img.highest, 0x200800);
}

TEST(elf32_multiboot)
{
	elf_standard(&e, false, 0x10000c, true);
	CHECK(parse(&e));
	CHECK_EQ(img.format, IMAGE_MULTIBOOT);
	CHECK_EQ(img.entry, 0x10000c);
	check_standard_segments();
	CHECK(!strcmp(image_format_name(img.format), "multiboot ELF"));
}

TEST(elf64_multiboot)
{
	elf_standard(&e, true, 0x100020, true);
	CHECK(parse(&e));
	CHECK_EQ(img.format, IMAGE_MULTIBOOT);
	CHECK_EQ(img.entry, 0x100020);
	check_standard_segments();
	/* The highest entry a 32-bit multiboot start can reach. */
	elf_standard(&e, true, 0xffffffffull, true);
	CHECK(parse(&e));
}

TEST(plain_elf64)
{
	elf_standard(&e, true, 0x100000, false);
	CHECK(parse(&e));
	CHECK_EQ(img.format, IMAGE_ELF64);
	CHECK_EQ(img.entry, 0x100000);
	check_standard_segments();
	CHECK(!strcmp(image_format_name(img.format), "ELF64"));
	/* Without multiboot, a 64-bit entry point is fine. */
	elf_standard(&e, true, 0x123456789ull, false);
	CHECK(parse(&e));
	CHECK_EQ(img.entry, 0x123456789ull);
}

TEST(plain_elf32)
{
	elf_standard(&e, false, 0x100000, false);
	CHECK(parse(&e));
	CHECK_EQ(img.format, IMAGE_ELF32);
	check_standard_segments();
	CHECK(!strcmp(image_format_name(img.format), "ELF32"));
}

TEST(segment_order_and_bounds)
{
	/* Lowest/highest do not depend on the order of the headers. */
	elf_init(&e, true, 0x400000);
	elf_phdr(&e, PT_LOAD, 0x2000, 0x800000, 0x100, 0x3000);
	elf_phdr(&e, PT_NOTE, 0x100, 0, 0x20, 0x20);
	elf_phdr(&e, PT_LOAD, 0x1000, 0x400000, 0x1000, 0x1000);
	elf_phdr(&e, PT_LOAD, 0x1000, 0x600000, 0, 0x10000);  /* all bss */
	CHECK(parse(&e));
	CHECK_EQ(img.seg_count, 3);
	CHECK_EQ(img.lowest, 0x400000);
	CHECK_EQ(img.highest, 0x803000);
	/* A segment ending exactly at the end of the file is in bounds. */
	elf_init(&e, false, 0x100000);
	elf_phdr(&e, PT_LOAD, 0x1000, 0x100000, IMAGE_BYTES - 0x1000, IMAGE_BYTES);
	CHECK(parse(&e));
}

TEST(short_files_rejected)
{
	elf_standard(&e, false, 0x100000, false);
	for (u64 size = 0; size < 52; size++) {
		CHECK(!parse_len(&e, size));
		CHECK(strstr(err, "not an ELF file"));
	}
	elf_standard(&e, true, 0x100000, false);
	for (u64 size = 52; size < 64; size++) {
		CHECK(!parse_len(&e, size));
		CHECK(!strcmp(err, "ELF64 header truncated"));
	}
}

TEST(bad_identification_rejected)
{
	elf_standard(&e, true, 0x100000, false);
	e.buf[0] = 0x7e;
	CHECK(!parse(&e));
	CHECK(strstr(err, "not an ELF file"));

	for (int cls = 0; cls < 256; cls += 3) {  /* 0, 3, ...: neither 1 nor 2 */
		elf_standard(&e, true, 0x100000, false);
		e.buf[4] = (u8)cls;
		CHECK(!parse(&e));
		CHECK(strstr(err, "ELF class"));
	}
	elf_standard(&e, true, 0x100000, false);
	e.buf[5] = 2;  /* big-endian */
	CHECK(!parse(&e));
	CHECK(strstr(err, "little-endian"));
	e.buf[5] = 0;
	CHECK(!parse(&e));
}

TEST(wrong_machine_rejected)
{
	elf_standard(&e, true, 0x100000, false);
	put(e.buf + 18, EM_386, 2);  /* ELF64 must be x86-64 */
	CHECK(!parse(&e));
	CHECK(strstr(err, "ELF machine 3 is not x86"));
	elf_standard(&e, false, 0x100000, false);
	put(e.buf + 18, EM_X86_64, 2);  /* ELF32 must be i386 */
	CHECK(!parse(&e));
	put(e.buf + 18, 40, 2);  /* ARM */
	CHECK(!parse(&e));
	CHECK(strstr(err, "ELF machine 40"));
}

TEST(program_headers_out_of_bounds)
{
	/* Table runs one byte past the end of the file. */
	elf_standard(&e, true, 0x100000, false);
	put(e.buf + 32, IMAGE_BYTES - 3 * 56 + 1, 8);
	CHECK(!parse(&e));
	CHECK(strstr(err, "program headers out of bounds"));
	/* Exactly at the end is fine (the headers there are zero: not PT_LOAD). */
	put(e.buf + 32, IMAGE_BYTES - 3 * 56, 8);
	CHECK(!parse(&e));
	CHECK(strstr(err, "no loadable segment"));
	/* Offset beyond the file, and a huge one that would wrap. */
	put(e.buf + 32, IMAGE_BYTES + 8, 8);
	CHECK(!parse(&e));
	put(e.buf + 32, ~0ull - 8, 8);
	CHECK(!parse(&e));
	CHECK(strstr(err, "out of bounds"));
	/* ELF32: the same through the 32-bit field. */
	elf_standard(&e, false, 0x100000, false);
	put(e.buf + 28, 0xfffffff0u, 4);
	CHECK(!parse(&e));
	CHECK(strstr(err, "out of bounds"));
	/* Many entries of the largest size. */
	elf_standard(&e, true, 0x100000, false);
	put(e.buf + 54, 0xffff, 2);
	put(e.buf + 56, 0xffff, 2);
	CHECK(!parse(&e));
}

TEST(program_header_entry_size_and_count)
{
	elf_standard(&e, true, 0x100000, false);
	put(e.buf + 54, 55, 2);  /* smaller than an Elf64_Phdr */
	CHECK(!parse(&e));
	CHECK(strstr(err, "out of bounds"));
	elf_standard(&e, false, 0x100000, false);
	put(e.buf + 42, 31, 2);
	CHECK(!parse(&e));
	put(e.buf + 42, 0, 2);
	CHECK(!parse(&e));
	elf_standard(&e, false, 0x100000, false);
	put(e.buf + 44, 0, 2);  /* no program headers at all */
	CHECK(!parse(&e));
	CHECK(strstr(err, "out of bounds"));
	/* A larger entry size than the standard is followed as the stride. */
	elf_init(&e, true, 0x100000);
	e.phentsize = 64;
	put(e.buf + 54, 64, 2);
	elf_phdr(&e, PT_LOAD, 0x1000, 0x100000, 0x10, 0x10);
	elf_phdr(&e, PT_LOAD, 0x1000, 0x300000, 0x10, 0x10);
	CHECK(parse(&e));
	CHECK_EQ(img.seg_count, 2);
	CHECK_EQ(img.seg[1].paddr, 0x300000);
}

TEST(inconsistent_segments_rejected)
{
	struct { u64 offset, paddr, file_size, mem_size; } bad64[] = {
		{ 0x1000, 0x100000, 0x1001, 0x1000 },           /* file_size > mem_size */
		{ 0x1000, 0x100000, IMAGE_BYTES - 0x1000 + 1, 0x10000 },  /* past the end */
		{ IMAGE_BYTES + 1, 0x100000, 0, 0x1000 },       /* offset beyond the file */
		{ ~0ull - 0xf, 0x100000, 0x20, 0x20 },          /* offset + size wraps */
		{ 0x1000, 0x100000, ~0ull, ~0ull },             /* huge size */
		{ 0x1000, ~0ull - 0xfff, 0x10, 0x2000 },        /* paddr + mem_size wraps */
		{ 0x1000, ~0ull - 0xfff, 0, 0x1000 },           /* ... to exactly 2^64 */
	};

	for (unsigned i = 0; i < ARRAY_SIZE(bad64); i++) {
		elf_init(&e, true, 0x100000);
		elf_phdr(&e, PT_LOAD, 0x1000, 0x100000, 0x10, 0x10);
		elf_phdr(&e, PT_LOAD, bad64[i].offset, bad64[i].paddr, bad64[i].file_size,
			 bad64[i].mem_size);
		CHECK(!parse(&e));
		CHECK(!strcmp(err, "ELF segment 1 is out of bounds or inconsistent"));
	}
	/* ELF32 fields are 32-bit: the same checks through them. */
	elf_init(&e, false, 0x100000);
	elf_phdr(&e, PT_LOAD, 0x1000, 0x100000, 0x2000, 0x1000);
	CHECK(!parse(&e));
	elf_init(&e, false, 0x100000);
	elf_phdr(&e, PT_LOAD, 0xfffffff0u, 0x100000, 0x20, 0x20);
	CHECK(!parse(&e));
	/* A 32-bit paddr + mem_size above 4 GiB does not wrap in 64 bits: accepted. */
	elf_init(&e, false, 0x100000);
	elf_phdr(&e, PT_LOAD, 0x1000, 0xfffff000u, 0x10, 0x2000);
	CHECK(parse(&e));
	CHECK_EQ(img.highest, 0x100001000ull);
}

TEST(no_loadable_segment_rejected)
{
	elf_init(&e, true, 0x100000);
	elf_phdr(&e, PT_NOTE, 0x1000, 0, 0x10, 0x10);
	elf_phdr(&e, PT_GNU_STACK, 0, 0, 0, 0);
	mb_header(&e, 0x1000, 0, true);
	CHECK(!parse(&e));
	CHECK(!strcmp(err, "ELF file has no loadable segment"));
}

TEST(segment_limit)
{
	elf_init(&e, false, 0x100000);
	for (int i = 0; i < IMAGE_MAX_SEGMENTS; i++)
		elf_phdr(&e, PT_LOAD, 0x1000, 0x100000 + i * 0x10000ull, 0x100, 0x100);
	CHECK(parse(&e));
	CHECK_EQ(img.seg_count, IMAGE_MAX_SEGMENTS);
	CHECK_EQ(img.highest, 0x100000 + 15 * 0x10000 + 0x100);
	elf_phdr(&e, PT_NOTE, 0, 0, 0, 0);  /* non-loadable ones do not count */
	CHECK(parse(&e));
	elf_phdr(&e, PT_LOAD, 0x1000, 0x800000, 0x100, 0x100);
	CHECK(!parse(&e));
	CHECK(!strcmp(err, "more than 16 loadable segments"));
}

TEST(multiboot_header_checks)
{
	elf_standard(&e, false, 0x100000, false);
	mb_header(&e, 0x1000, 0x3, false);
	CHECK(!parse(&e));
	CHECK(!strcmp(err, "multiboot header at offset 0x1000 has a bad checksum"));

	elf_standard(&e, false, 0x100000, false);
	mb_header(&e, 0x1000, 0x10003, true);  /* a.out kludge */
	CHECK(!parse(&e));
	CHECK(strstr(err, "a.out kludge"));

	elf_standard(&e, true, 0x100000000ull, true);
	CHECK(!parse(&e));
	CHECK(!strcmp(err, "multiboot kernel entry 0x100000000 is above 4 GiB"));
}

TEST(multiboot_header_placement)
{
	/* Must be 4-byte aligned and wholly inside the first 8192 bytes. */
	static const struct { u64 off; bool found; } cases[] = {
		{ 0x100, true }, { 0x102, false }, { 8192 - 12, true }, { 8192 - 8, false },
		{ 8192, false }, { 0x2400, false },
	};

	for (unsigned i = 0; i < ARRAY_SIZE(cases); i++) {
		elf_standard(&e, false, 0x100000, false);
		e.size = 0x3000;
		mb_header(&e, cases[i].off, 0, true);
		CHECK(parse(&e));
		CHECK_EQ(img.format, cases[i].found ? IMAGE_MULTIBOOT : IMAGE_ELF32);
	}
	/* A file shorter than 8 KiB is searched to its end, not beyond. */
	elf_init(&e, false, 0x100000);
	elf_phdr(&e, PT_LOAD, 0x100, 0x100000, 0x100, 0x100);
	e.size = 0x20c;
	mb_header(&e, 0x200, 0, true);
	CHECK(parse(&e));
	CHECK_EQ(img.format, IMAGE_MULTIBOOT);
	e.size = 0x20b;
	CHECK(parse(&e));
	CHECK_EQ(img.format, IMAGE_ELF32);
}

/* Every truncation of a valid image: either parsed or refused, never out of bounds. */
TEST(every_truncation_stays_in_bounds)
{
	for (int kind = 0; kind < 2; kind++) {
		elf_standard(&e, kind, 0x100000, true);
		for (u64 size = 0; size <= IMAGE_BYTES; size++) {
			bool ok = parse_len(&e, size);

			/* Segment 2 ends at 0x2800: anything shorter is refused. */
			CHECK(ok == (size >= 0x2800));
		}
	}
}

TEST(random_corruption_stays_in_bounds)
{
	static struct elf base;
	unsigned seed = 777;

	for (int iter = 0; iter < 20000; iter++) {
		int kind = iter & 1;

		elf_standard(&base, kind, 0x100000, iter & 2);
		e = base;
		for (int k = 0; k < 1 + iter % 5; k++) {
			u64 pos;

			seed = seed * 1103515245u + 12345u;
			pos = (seed >> 8) % (iter & 4 ? 0x100 : 0x1010);
			seed = seed * 1103515245u + 12345u;
			e.buf[pos] = (u8)(seed >> 16);
		}
		if (parse(&e)) {
			CHECK(img.seg_count >= 1 && img.seg_count <= IMAGE_MAX_SEGMENTS);
			for (int i = 0; i < img.seg_count; i++) {
				CHECK(img.seg[i].file_size <= img.seg[i].mem_size);
				CHECK(img.seg[i].file_offset + img.seg[i].file_size <= e.size);
				CHECK(img.seg[i].paddr >= img.lowest);
				CHECK(img.seg[i].paddr + img.seg[i].mem_size <= img.highest);
			}
		}
	}
}

UNIT_MAIN()
