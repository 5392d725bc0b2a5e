#!/bin/sh
# Build the Linux guest from Debian's packages only (issue 17):
#   tools/linux.sh OUTDIR
# OUTDIR/debs     linux-image-amd64's kernel package and busybox-static, fetched once
#                 with `apt-get download` (no root needed) and kept
# OUTDIR/bzImage  the kernel as Debian ships it (/boot/vmlinuz-*)
# OUTDIR/vmlinux  the ELF inside it (tools/vmlinux.py): booting it skips decompression
# OUTDIR/initrd.cpio  busybox-static, tests/linux/init as /init, the workload, and the
#                 digest the workload must print (computed here by running it with
#                 the same busybox binary)
set -eu
out=$1
root=$(cd "$(dirname "$0")/.." && pwd)
mkdir -p "$out/debs"
out=$(cd "$out" && pwd)
cd "$out/debs"
# linux-image-amd64 is a metapackage: its dependency names the kernel package.
kernel_package() {
	apt-cache depends linux-image-amd64 2>/dev/null |
		sed -n 's/^ *Depends: \(linux-image-[0-9].*\)$/\1/p' | head -1
}
kpkg=$(kernel_package)
# A fresh machine may have no package lists yet (root can fetch them).
[ -n "$kpkg" ] || [ "$(id -u)" != 0 ] || { apt-get update -qq && kpkg=$(kernel_package); }
[ -n "$kpkg" ] || { echo "linux.sh: apt-cache knows no linux-image-amd64 (run apt-get update)" >&2; exit 1; }
ls "$kpkg"_*.deb >/dev/null 2>&1 || apt-get download "$kpkg"
ls busybox-static_*.deb >/dev/null 2>&1 || apt-get download busybox-static
rm -rf "$out/pkg" "$out/stage"
mkdir -p "$out/pkg"
dpkg-deb -x "$(ls "$kpkg"_*.deb | head -1)" "$out/pkg"
dpkg-deb -x "$(ls busybox-static_*.deb | head -1)" "$out/pkg"
cp "$(ls "$out"/pkg/boot/vmlinuz-* | head -1)" "$out/bzImage"
python3 "$root/tools/vmlinux.py" "$out/bzImage" "$out/vmlinux"

stage=$out/stage
mkdir -p "$stage/bin" "$stage/dev" "$stage/proc" "$stage/sys" "$stage/tmp"
cp "$out/pkg/bin/busybox" "$stage/bin/busybox"
for applet in $("$stage/bin/busybox" --list); do
	[ "$applet" = busybox ] || ln -s busybox "$stage/bin/$applet"
done
cp "$root/tests/linux/init" "$stage/init"
cp "$root/tests/linux/workload.sh" "$stage/workload.sh"
# The right answer: the same workload with the same busybox, here.
scratch=$(mktemp -d "${TMPDIR:-/tmp}/umbra-linux.XXXXXX")
trap 'rm -rf "$scratch"' EXIT
PATH="$stage/bin" "$stage/bin/sh" "$stage/workload.sh" "$scratch" "$stage/bin/busybox" > "$out/expected.txt"
sha256sum < "$out/expected.txt" | cut -d' ' -f1 > "$stage/expected-digest"
(cd "$stage" && find . | LC_ALL=C sort | cpio -o -H newc -R 0:0 --quiet) > "$out/initrd.cpio"
echo "linux.sh: $kpkg, $(wc -c < "$out/initrd.cpio") bytes of initramfs, digest $(cat "$stage/expected-digest")"
cat "$out/expected.txt"
grep -q "^file 16777216 " "$out/expected.txt" || { echo "linux.sh: the workload's file is not 16 MiB" >&2; exit 1; }
