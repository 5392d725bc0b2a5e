/*
 * Tests of the framebuffer console (arch/x86/fbcon.c) on a framebuffer in
 * host memory: the text is read back from the pixels by matching each cell
 * against the font, as tools/fbshot.py does with QEMU screenshots.
 */
#include <string.h>

#include "unit.h"
#include "arch/x86/fbcon.h"

#define COLS 10
#define ROWS 4
#define PAD 12         /* bytes past each line's pixels: must never be written */
#define CANARY 0x5a

static u8 mem[(COLS * FONT_WIDTH * 4 + PAD) * ROWS * FONT_HEIGHT + 64];

static struct boot_framebuffer rgb_fb(u8 bpp)
{
	memset(mem, CANARY, sizeof(mem));
	return (struct boot_framebuffer){
		.present = true, .addr = (u64)(uintptr_t)mem, .type = FB_TYPE_RGB, .bpp = bpp,
		.width = COLS * FONT_WIDTH, .height = ROWS * FONT_HEIGHT,
		.pitch = COLS * FONT_WIDTH * (bpp / 8) + PAD,
		.red_pos = 16, .red_size = 8, .green_pos = 8, .green_size = 8, .blue_size = 8,
	};
}

/* The character drawn in a cell ('\x7f' if no glyph matches). */
static char cell_char(const struct boot_framebuffer *fb, u32 row, u32 col)
{
	u8 rows[FONT_HEIGHT] = { 0 };
	u32 bytes = fb->bpp / 8;

	for (u32 y = 0; y < FONT_HEIGHT; y++)
		for (u32 x = 0; x < FONT_WIDTH; x++) {
			const u8 *px = mem + (row * FONT_HEIGHT + y) * fb->pitch +
				       (col * FONT_WIDTH + x) * bytes;
			u32 v = 0;

			memcpy(&v, px, bytes);
			if (v)
				rows[y] |= 0x80 >> x;
		}
	for (int c = FONT_FIRST; c <= FONT_LAST; c++)
		if (!memcmp(rows, font_glyphs[c - FONT_FIRST], FONT_HEIGHT))
			return (char)c;
	return 0x7f;
}

/* Row 'row' of the screen as text, trailing blanks removed. */
static const char *screen_line(const struct boot_framebuffer *fb, u32 row)
{
	static char line[COLS + 1];
	int n = 0;

	for (u32 c = 0; c < COLS; c++)
		line[n++] = cell_char(fb, row, c);
	while (n && line[n - 1] == ' ')
		n--;
	line[n] = 0;
	return line;
}

static bool padding_untouched(const struct boot_framebuffer *fb)
{
	for (u32 y = 0; y < fb->height; y++)
		for (u32 i = fb->width * (fb->bpp / 8); i < fb->pitch; i++)
			if (mem[y * fb->pitch + i] != CANARY)
				return false;
	return mem[fb->height * fb->pitch] == CANARY;
}

static void write_str(const char *s)
{
	fbcon_write(s, strlen(s));
}

TEST(text_drawn_in_cells_and_screen_cleared)
{
	struct boot_framebuffer fb = rgb_fb(32);
	const char *why = NULL;
	u32 white;

	CHECK(fbcon_init(&fb, &why));
	CHECK(fbcon_active());
	write_str("hv: ok\n[1.5] x");
	CHECK(!strcmp(screen_line(&fb, 0), "hv: ok"));
	CHECK(!strcmp(screen_line(&fb, 1), "[1.5] x"));
	CHECK(!strcmp(screen_line(&fb, 2), ""));  /* the canary bytes were cleared */
	CHECK(padding_untouched(&fb));
	/* '!' has its stem in column 3 on row 2: white in x8r8g8b8. */
	write_str("\n!");
	memcpy(&white, mem + (2 * FONT_HEIGHT + 2) * fb.pitch + 3 * 4, 4);
	CHECK_EQ(white, 0xffffff);
}

TEST(long_lines_wrap_and_tabs_expand)
{
	struct boot_framebuffer fb = rgb_fb(32);
	const char *why;

	CHECK(fbcon_init(&fb, &why));
	write_str("0123456789abc\na\tb\r-");
	CHECK(!strcmp(screen_line(&fb, 0), "0123456789"));
	CHECK(!strcmp(screen_line(&fb, 1), "abc"));
	CHECK(!strcmp(screen_line(&fb, 2), "-       b"));
}

TEST(full_screen_scrolls_and_keeps_the_latest_lines)
{
	struct boot_framebuffer fb = rgb_fb(32);
	const char *why;

	CHECK(fbcon_init(&fb, &why));
	write_str("l1\nl2\nl3\nl4\nl5\nl6");
	/* Four rows scroll one at a time: l3..l6 remain, l6 on the last row. */
	CHECK(!strcmp(screen_line(&fb, 0), "l3"));
	CHECK(!strcmp(screen_line(&fb, 1), "l4"));
	CHECK(!strcmp(screen_line(&fb, 2), "l5"));
	CHECK(!strcmp(screen_line(&fb, 3), "l6"));
	CHECK(padding_untouched(&fb));
	for (int i = 0; i < 50; i++)
		write_str("\nline");
	CHECK(!strcmp(screen_line(&fb, 3), "line"));
	CHECK(padding_untouched(&fb));
}

TEST(non_ascii_drawn_as_question_mark)
{
	struct boot_framebuffer fb = rgb_fb(32);
	const char *why;

	CHECK(fbcon_init(&fb, &why));
	write_str("a\x01\xe9z");
	CHECK(!strcmp(screen_line(&fb, 0), "a??z"));
}

TEST(colour_depths_and_layouts)
{
	struct boot_framebuffer fb = rgb_fb(16);
	const char *why;
	u32 px = 0;

	/* 16 bpp with no layout given: r5g6b5, white is 0xffff. */
	fb.red_size = fb.green_size = fb.blue_size = 0;
	CHECK(fbcon_init(&fb, &why));
	write_str("!");
	CHECK(!strcmp(screen_line(&fb, 0), "!"));
	memcpy(&px, mem + 2 * fb.pitch + 3 * 2, 2);
	CHECK_EQ(px, 0xffff);
	CHECK(padding_untouched(&fb));

	fb = rgb_fb(24);
	fb.red_size = 6, fb.green_size = 6, fb.blue_size = 6;  /* 18-bit panel layout */
	CHECK(fbcon_init(&fb, &why));
	write_str("!");
	px = 0;
	memcpy(&px, mem + 2 * fb.pitch + 3 * 3, 3);
	CHECK_EQ(px, (0x3fu << 16) | (0x3fu << 8) | 0x3f);
	CHECK(!strcmp(screen_line(&fb, 0), "!"));
	CHECK(padding_untouched(&fb));
}

TEST(vga_text_mode_stores_character_and_attribute)
{
	struct boot_framebuffer fb = {
		.present = true, .addr = (u64)(uintptr_t)mem, .type = FB_TYPE_EGA_TEXT,
		.width = 8, .height = 2, .pitch = 16, .bpp = 16,
	};
	const char *why;
	u16 cell;

	memset(mem, CANARY, sizeof(mem));
	CHECK(fbcon_init(&fb, &why));
	write_str("ab\ncd\nef");
	memcpy(&cell, mem, 2);
	CHECK_EQ(cell, 0x0700 | 'c');  /* scrolled: "cd" is on the first row */
	memcpy(&cell, mem + 16 + 2, 2);
	CHECK_EQ(cell, 0x0700 | 'f');
	memcpy(&cell, mem + 16 + 4, 2);
	CHECK_EQ(cell, 0x0700 | ' ');
	CHECK_EQ(mem[32], CANARY);
}

TEST(unusable_framebuffers_refused)
{
	struct boot_framebuffer fb = rgb_fb(32);
	const char *why = NULL;

	fb.present = false;
	CHECK(!fbcon_init(&fb, &why));
	CHECK(why && strstr(why, "no framebuffer"));
	fb = rgb_fb(32);
	fb.type = FB_TYPE_INDEXED;
	CHECK(!fbcon_init(&fb, &why));
	CHECK(strstr(why, "palette"));
	fb = rgb_fb(8);
	CHECK(!fbcon_init(&fb, &why));
	CHECK(strstr(why, "bits per pixel"));
	fb = rgb_fb(32);
	fb.pitch = fb.width * 4 - 1;
	CHECK(!fbcon_init(&fb, &why));
	CHECK(strstr(why, "geometry"));
	fb = rgb_fb(32);
	fb.height = FONT_HEIGHT - 1;
	CHECK(!fbcon_init(&fb, &why));
	fb = rgb_fb(32);
	fb.addr = ~0ull - 100;
	CHECK(!fbcon_init(&fb, &why));
	CHECK(strstr(why, "geometry"));
	/* A refused framebuffer is never written, even after a good one. */
	fb = rgb_fb(32);
	CHECK(fbcon_init(&fb, &why));
	fb = rgb_fb(32);
	fb.type = FB_TYPE_INDEXED;
	CHECK(!fbcon_init(&fb, &why));
	CHECK(!fbcon_active());
	write_str("x");
	CHECK_EQ(mem[0], CANARY);
}

UNIT_MAIN()
