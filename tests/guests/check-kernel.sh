#!/bin/sh
# Build-time sanity check of a guest kernel's boot format (tests/guests/PLATFORM.md):
#   check-kernel.sh multiboot KERNEL  ELF32 with a valid multiboot v1 header in the first 8 KiB
#   check-kernel.sh elf64 KERNEL      ELF64 x86-64 without one (entered directly in long mode)
# A kernel that fails this would not boot, or boot the wrong way, so the build stops here.
set -eu
kind=$1 kernel=$2

elf_class=$(od -An -tu1 -j4 -N1 "$kernel" | tr -d ' ')	# e_ident[EI_CLASS]: 1 = 32, 2 = 64

# Offset of the first 4-byte aligned 0x1BADB002 whose next two words complete the checksum.
header_offset() {
	od -An -v -tu4 -w4 -N8192 "$kernel" | awk '
		{ w[NR - 1] = $1 }
		END {
			for (i = 0; i + 2 < NR; i++)
				if (w[i] == 464367618 &&	# 0x1BADB002
				    (w[i] + w[i + 1] + w[i + 2]) % 4294967296 == 0) {
					print i * 4; exit
				}
		}'
}

case $kind in
multiboot)
	[ "$elf_class" = 1 ] || { echo "$kernel: not ELF32 (class $elf_class)" >&2; exit 1; }
	[ -n "$(header_offset)" ] || { echo "$kernel: no multiboot header in 8 KiB" >&2; exit 1; }
	;;
elf64)
	[ "$elf_class" = 2 ] || { echo "$kernel: not ELF64 (class $elf_class)" >&2; exit 1; }
	[ -z "$(header_offset)" ] || { echo "$kernel: has a multiboot header" >&2; exit 1; }
	;;
*)
	echo "usage: $0 multiboot|elf64 KERNEL" >&2
	exit 2
	;;
esac
