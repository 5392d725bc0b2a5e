#!/usr/bin/env python3
"""Read the framebuffer console's text back from a screenshot.

    tools/fbshot.py SCREEN.ppm      prints the text found on the screen

arch/x86/fbcon.c draws each character of arch/x86/font.c in an 8x13 cell from the
top-left corner, light on a black background. Cutting a screenshot into those cells
and looking each cell's bitmap up among the font's glyphs gives the text back
exactly; a cell that matches no glyph reads as '\\x7f' (so a test can tell a
garbled screen from a blank one). Used by tests/integration.py on QEMU's
`screendump` (binary PPM) of UEFI runs.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
FONT_C = os.path.join(ROOT, "arch", "x86", "font.c")
FONT_WIDTH, FONT_FIRST = 8, 0x20
UNKNOWN = "\x7f"


def load_font(path=FONT_C):
    """Glyph rows (tuple of ints) -> character, from the C array."""
    rows = re.findall(r"^\t\{([0-9a-fx, ]+)\},", open(path).read(), re.M)
    glyphs = {}
    for i, r in enumerate(rows):
        glyphs.setdefault(tuple(int(v, 16) for v in r.split(",")), chr(FONT_FIRST + i))
    height = len(next(iter(glyphs)))
    return glyphs, height


def read_ppm(path):
    """(width, height, bytes of RGB triples) of a binary P6 PPM with maxval 255."""
    data = open(path, "rb").read()
    fields, pos = [], 0
    while len(fields) < 4:
        while data[pos:pos + 1].isspace():
            pos += 1
        if data[pos:pos + 1] == b"#":
            pos = data.index(b"\n", pos)
            continue
        end = pos
        while not data[end:end + 1].isspace():
            end += 1
        fields.append(data[pos:end])
        pos = end
    if fields[0] != b"P6" or fields[3] != b"255":
        raise ValueError(f"{path}: not a binary 8-bit PPM")
    width, height = int(fields[1]), int(fields[2])
    return width, height, data[pos + 1:pos + 1 + width * height * 3]


def screen_text(path, font=None):
    """The screen as a list of text lines (trailing blanks stripped)."""
    glyphs, fh = font or load_font()
    width, height, rgb = read_ppm(path)
    lit = [any(rgb[i:i + 3]) for i in range(0, len(rgb), 3)]
    lines = []
    for top in range(0, height - fh + 1, fh):
        line = []
        for left in range(0, width - FONT_WIDTH + 1, FONT_WIDTH):
            cell = []
            for y in range(top, top + fh):
                bits, base = 0, y * width + left
                for x in range(FONT_WIDTH):
                    bits = bits << 1 | lit[base + x]
                cell.append(bits)
            line.append(glyphs.get(tuple(cell), UNKNOWN))
        lines.append("".join(line).rstrip())
    return lines


if __name__ == "__main__":
    print("\n".join(screen_text(sys.argv[1])).rstrip())
