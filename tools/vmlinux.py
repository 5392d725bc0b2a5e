#!/usr/bin/env python3
"""Extract the vmlinux ELF from a bzImage (what the kernel's own decompressor does,
so a guest can skip ~4.5 G instructions of it).

  tools/vmlinux.py BZIMAGE OUT

The payload is found through the setup header (payload_offset/payload_length,
boot protocol 2.08+) and decompressed (xz or gzip: python's standard library).
OUT is an ELF with the same program headers (PT_LOAD and PT_NOTE) and no section
headers; each segment's trailing zero bytes are left out of the file (p_filesz
shrinks, p_memsz stays), so the memory image loaded from it is byte for byte the
kernel's, while the file is about half the size.
"""
import gzip
import lzma
import struct
import sys


def payload(bz):
    if bz[0x1fe:0x200] != b"\x55\xaa" or bz[0x202:0x206] != b"HdrS":
        sys.exit("not a bzImage")
    version = struct.unpack_from("<H", bz, 0x206)[0]
    if version < 0x208:
        sys.exit(f"boot protocol {version >> 8}.{version & 0xff:02} has no payload fields")
    setup_sects = bz[0x1f1] or 4
    offset, length = struct.unpack_from("<II", bz, 0x248)
    start = (setup_sects + 1) * 512 + offset
    data = bz[start:start + length]
    if data.startswith(b"\xfd7zXZ\x00"):
        d = lzma.LZMADecompressor()
        return d.decompress(data)
    if data.startswith(b"\x1f\x8b"):
        return gzip.decompress(data[:-4])  # the kernel appends the size: not gzip's
    sys.exit(f"payload compression {data[:6].hex()} not handled (xz and gzip are)")


def trimmed_elf(elf):
    if elf[:4] != b"\x7fELF" or elf[4] != 2:
        sys.exit("payload is not an ELF64 vmlinux")
    phoff, = struct.unpack_from("<Q", elf, 32)
    phentsize, phnum = struct.unpack_from("<HH", elf, 54)
    phdrs = [list(struct.unpack_from("<IIQQQQQQ", elf, phoff + i * phentsize))
             for i in range(phnum)]
    header = bytearray(elf[:64])
    struct.pack_into("<QHHH", header, 40, 0, 64, 56, phnum)  # e_shoff, ehsize, phentsize
    struct.pack_into("<HHH", header, 58, 0, 0, 0)            # e_shentsize, shnum, shstrndx
    struct.pack_into("<Q", header, 32, 64)                   # e_phoff
    body = bytearray()
    at = 64 + 56 * phnum
    for ph in phdrs:
        kind, flags, off, vaddr, paddr, filesz, memsz, align = ph
        data = elf[off:off + filesz].rstrip(b"\0") if kind == 1 else elf[off:off + filesz]
        ph[2], ph[5] = at + len(body), len(data)
        body += data
        while len(body) % 8:
            body += b"\0"
    out = bytearray(header)
    for ph in phdrs:
        out += struct.pack("<IIQQQQQQ", *ph)
    return bytes(out + body)


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], "rb") as f:
        elf = payload(f.read())
    with open(sys.argv[2], "wb") as f:
        f.write(trimmed_elf(elf))


if __name__ == "__main__":
    main()
