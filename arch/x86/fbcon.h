/*
 * Text console on the linear framebuffer GRUB sets up (multiboot2 framebuffer
 * tag, direct RGB colour): for machines with a screen and no serial port.
 */
#ifndef ARCH_X86_FBCON_H
#define ARCH_X86_FBCON_H

#include "lib/types.h"
#include "arch/x86/multiboot2.h"

/* The built-in font (arch/x86/font.c, made by tools/mkfont.py): printable ASCII. */
#define FONT_WIDTH 8
#define FONT_HEIGHT 13
#define FONT_FIRST 0x20
#define FONT_LAST 0x7e
extern const u8 font_glyphs[FONT_LAST - FONT_FIRST + 1][FONT_HEIGHT];

/*
 * Start drawing on 'fb' if it is a direct-colour framebuffer of 16, 24 or 32
 * bits per pixel that the current page tables map. Returns false (and draws
 * nothing, ever) otherwise; 'why' then says why.
 */
bool fbcon_init(const struct boot_framebuffer *fb, const char **why);
bool fbcon_active(void);
/* Stop drawing (the screen keeps what it shows). */
void fbcon_stop(void);
/* Append text; '\n' starts a new line, the screen scrolls when full. */
void fbcon_write(const char *s, size_t n);

#endif
