/*
 * Framebuffer text console. Characters are kept in a text buffer and drawn
 * cell by cell with the built-in 8x13 font (or, when a BIOS loader left VGA
 * text mode, stored as character/attribute words); only writes reach the
 * framebuffer, since reading video memory is very slow on real hardware
 * (it is mapped uncached or write-combining by the firmware's MTRRs).
 * When the screen is full it scrolls a quarter of a screen at once, so the
 * cost of redrawing everything is paid once per many lines.
 */
#include <string.h>
#include "arch/x86/fbcon.h"

#define MAX_COLS 256   /* a 2048-pixel-wide screen; wider ones use the left part */
#define MAX_ROWS 128
#define TAB_WIDTH 8

#define VGA_TEXT_ATTR 0x07  /* light grey on black */

static struct {
	bool active;
	bool vga_text;         /* FB_TYPE_EGA_TEXT: cells are u16 char/attribute */
	u8 *base;
	u32 pitch, bytes_per_pixel;
	u32 cols, rows;        /* text grid */
	u32 col, row;          /* cursor */
	u32 fg, bg;            /* pixel values in the framebuffer's format */
	char text[MAX_ROWS][MAX_COLS];
} con;

static void draw_cell(u32 row, u32 col);

/* 8-bit intensities packed at the framebuffer's colour positions. */
static u32 pack_colour(const struct boot_framebuffer *fb, u8 r, u8 g, u8 b)
{
	u8 rp = fb->red_pos, rs = fb->red_size, gp = fb->green_pos, gs = fb->green_size;
	u8 bp = fb->blue_pos, bs = fb->blue_size;

	if (!rs || !gs || !bs) {  /* loader gave no layout: the usual ones */
		bool rgb565 = fb->bpp == 16;

		rp = rgb565 ? 11 : 16, gp = rgb565 ? 5 : 8, bp = 0;
		rs = rgb565 ? 5 : 8, gs = rgb565 ? 6 : 8, bs = rgb565 ? 5 : 8;
	}
	return ((u32)(r >> (8 - (rs > 8 ? 8 : rs))) << rp) |
	       ((u32)(g >> (8 - (gs > 8 ? 8 : gs))) << gp) |
	       ((u32)(b >> (8 - (bs > 8 ? 8 : bs))) << bp);
}

bool fbcon_init(const struct boot_framebuffer *fb, const char **why)
{
	u64 size;

	con.active = con.vga_text = false;
	if (!fb->present) {
		*why = "the loader set no framebuffer";
		return false;
	}
	if (fb->type == FB_TYPE_EGA_TEXT) {
		con.vga_text = true;
		con.bytes_per_pixel = 2;
		if (!fb->addr || !fb->width || !fb->height ||
		    fb->pitch < (u64)fb->width * 2) {
			*why = "the VGA text mode geometry is impossible";
			return false;
		}
		con.base = (u8 *)fb->addr;
		con.pitch = fb->pitch;
		con.cols = fb->width < MAX_COLS ? fb->width : MAX_COLS;
		con.rows = fb->height < MAX_ROWS ? fb->height : MAX_ROWS;
		goto clear;
	}
	if (fb->type != FB_TYPE_RGB) {
		*why = "the framebuffer uses a palette";
		return false;
	}
	if (fb->bpp != 16 && fb->bpp != 24 && fb->bpp != 32) {
		*why = "unsupported bits per pixel";
		return false;
	}
	con.bytes_per_pixel = fb->bpp / 8;
	size = (u64)fb->pitch * fb->height;
	if (!fb->addr || fb->width < FONT_WIDTH || fb->height < FONT_HEIGHT ||
	    fb->pitch < (u64)fb->width * con.bytes_per_pixel || fb->addr + size < fb->addr) {
		*why = "the framebuffer geometry is impossible";
		return false;
	}
	con.base = (u8 *)fb->addr;
	con.pitch = fb->pitch;
	con.cols = fb->width / FONT_WIDTH < MAX_COLS ? fb->width / FONT_WIDTH : MAX_COLS;
	con.rows = fb->height / FONT_HEIGHT < MAX_ROWS ? fb->height / FONT_HEIGHT : MAX_ROWS;
	con.fg = pack_colour(fb, 0xff, 0xff, 0xff);
	con.bg = pack_colour(fb, 0, 0, 0);
	/* Clear the whole screen once: GRUB's or the firmware's text is still there. */
	for (u32 y = 0; y < fb->height; y++)
		for (u32 x = 0; x < fb->width; x++)
			memcpy(con.base + (u64)y * con.pitch + x * con.bytes_per_pixel, &con.bg,
			       con.bytes_per_pixel);
clear:
	memset(con.text, ' ', sizeof(con.text));
	con.col = con.row = 0;
	con.active = true;
	if (con.vga_text)
		for (u32 r = 0; r < con.rows; r++)
			for (u32 c = 0; c < con.cols; c++)
				draw_cell(r, c);
	return true;
}

void fbcon_stop(void)
{
	con.active = false;
}

bool fbcon_active(void)
{
	return con.active;
}

static void draw_cell(u32 row, u32 col)
{
	u8 c = (u8)con.text[row][col];
	const u8 *glyph = font_glyphs[(c >= FONT_FIRST && c <= FONT_LAST ? c : '?') - FONT_FIRST];
	u8 *line = con.base + (u64)row * FONT_HEIGHT * con.pitch +
		   (u64)col * FONT_WIDTH * con.bytes_per_pixel;

	if (con.vga_text) {
		u16 cell = (u16)(VGA_TEXT_ATTR << 8 | c);

		memcpy(con.base + (u64)row * con.pitch + col * 2, &cell, 2);
		return;
	}
	for (u32 y = 0; y < FONT_HEIGHT; y++, line += con.pitch) {
		u8 *px = line;

		for (u32 x = 0; x < FONT_WIDTH; x++, px += con.bytes_per_pixel) {
			u32 v = glyph[y] & (0x80 >> x) ? con.fg : con.bg;

			/* Little-endian: the low bytes of v are the pixel at any depth. */
			memcpy(px, &v, con.bytes_per_pixel);
		}
	}
}

static void scroll(void)
{
	u32 step = con.rows / 4 ? con.rows / 4 : 1;

	memmove(con.text[0], con.text[step], (size_t)(con.rows - step) * MAX_COLS);
	memset(con.text[con.rows - step], ' ', (size_t)step * MAX_COLS);
	for (u32 r = 0; r < con.rows; r++)
		for (u32 c = 0; c < con.cols; c++)
			draw_cell(r, c);
	con.row = con.rows - step;
}

static void newline(void)
{
	con.col = 0;
	if (++con.row == con.rows)
		scroll();
}

static void put_char(char c)
{
	if (c == '\n') {
		newline();
		return;
	}
	if (c == '\r') {
		con.col = 0;
		return;
	}
	if (c == '\t') {
		do
			put_char(' ');
		while (con.col % TAB_WIDTH);
		return;
	}
	if (con.col == con.cols)
		newline();
	con.text[con.row][con.col] = c;
	draw_cell(con.row, con.col++);
}

void fbcon_write(const char *s, size_t n)
{
	if (!con.active)
		return;
	for (size_t i = 0; i < n; i++)
		put_char(s[i]);
}
