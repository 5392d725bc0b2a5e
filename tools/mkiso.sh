#!/bin/sh
# Build a GRUB (multiboot2) boot ISO with the hypervisor and guest modules.
#   tools/mkiso.sh OUT.iso KERNEL "HV ARGS" [GUEST.elf "GUEST ARGS"]...
# Each guest becomes a `module2 /guests/<file> <args>` line.
set -eu
[ $# -ge 3 ] || { echo "usage: $0 OUT.iso KERNEL 'HV ARGS' [GUEST 'ARGS']..." >&2; exit 2; }
out=$1 kernel=$2 hvargs=$3
shift 3
dir=$(mktemp -d "${TMPDIR:-/tmp}/umbra-iso.XXXXXX")
log=$(mktemp "${TMPDIR:-/tmp}/umbra-mkrescue.XXXXXX")
trap 'rm -rf "$dir" "$log"' EXIT
mkdir -p "$dir/boot/grub" "$dir/guests"
cp "$kernel" "$dir/boot/umbra.elf"
{
	echo "set timeout=0"
	echo "set default=0"
	echo "menuentry umbra {"
	echo "  multiboot2 /boot/umbra.elf $hvargs"
	n=0
	while [ $# -ge 2 ]; do
		n=$((n + 1))
		name="$n-$(basename "$1")"
		cp "$1" "$dir/guests/$name"
		echo "  module2 /guests/$name $2"
		shift 2
	done
	echo "  boot"
	echo "}"
} > "$dir/boot/grub/grub.cfg"
[ $# -eq 0 ] || { echo "mkiso: guest '$1' has no argument string" >&2; exit 2; }
# BIOS GRUB only: the module list below exists for i386-pc, and another installed
# platform (grub-efi-amd64-bin) would make grub-mkrescue look for it there too.
grub-mkrescue -d /usr/lib/grub/i386-pc -o "$out" "$dir" \
	--install-modules="normal multiboot2 iso9660 biosdisk configfile" \
	--locales= --fonts= --themes= >"$log" 2>&1 ||
	{ cat "$log" >&2; exit 1; }
