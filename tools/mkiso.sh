#!/bin/sh
# Build a GRUB (multiboot2) boot ISO with the hypervisor and guest modules.
#   tools/mkiso.sh OUT.iso KERNEL "HV ARGS" [GUEST.elf "GUEST ARGS"]...
# Each guest becomes a `module2 /guests/<file> <args>` line.
# With Debian's grub-efi-amd64-bin installed the ISO is hybrid: it boots by
# BIOS and by UEFI, from a CD or written raw to a USB stick
# (docs/REAL-HARDWARE.md). Without it, BIOS only.
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
	# UEFI: the framebuffer console needs GOP (or old UGA). BIOS: stay in VGA
	# text mode (the console writes there too; Bochs' display can't show 32 bpp).
	echo 'if [ "$grub_platform" = efi ]; then insmod efi_gop; insmod efi_uga; fi'
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
	# After multiboot2, which sets gfxpayload from the kernel's framebuffer request.
	echo '  if [ "$grub_platform" = pc ]; then set gfxpayload=text; fi'
	echo "  boot"
	echo "}"
} > "$dir/boot/grub/grub.cfg"
[ $# -eq 0 ] || { echo "mkiso: guest '$1' has no argument string" >&2; exit 2; }
# Few modules keep the ISO small and the boot fast (biosdisk and iso9660 are
# in the BIOS core image anyway). A name missing on one platform fails the
# build, so EFI's video drivers come in through all_video (the BIOS side
# installs it but never loads it) and UEFI's partition probing gets the
# partition maps, which exist on both platforms.
modules="normal multiboot2 iso9660 configfile"
if [ -d /usr/lib/grub/x86_64-efi ]; then
	modules="$modules test all_video part_msdos part_gpt part_apple part_acorn part_amiga"
	modules="$modules part_bsd part_dfly part_dvh part_plan part_sun part_sunpc"
fi
grub-mkrescue -o "$out" "$dir" --install-modules="$modules" \
	--locales= --fonts= --themes= >"$log" 2>&1 ||
	{ cat "$log" >&2; exit 1; }
