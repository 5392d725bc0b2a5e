#!/bin/sh
# Build newlib's libc.a for the freestanding hypervisor from Debian's
# newlib-source package, once, into $1 (default build/newlib). About 40 s.
#
# Everything is compiled with -mgeneral-regs-only: the hypervisor must never
# touch SSE/x87 state, which belongs to the guests. The few newlib sources
# that need floating point (strtod, ecvt, ...) cannot be built that way; they
# are left out of libc.a and listed in omitted.txt, so a hypervisor that tried
# to use them would fail to link rather than silently use SSE.
set -eu

out=$(realpath -m "${1:-build/newlib}")
tarball=$(ls /usr/src/newlib/newlib-*.tar.xz 2>/dev/null | head -n 1)
if [ -z "$tarball" ]; then
	echo "build-newlib: no newlib source; install Debian's newlib-source package" >&2
	exit 1
fi
if [ -f "$out/lib/libc.a" ] && [ "$out/lib/libc.a" -nt "$tarball" ]; then
	exit 0
fi

work="$out/work"
rm -rf "$work" && mkdir -p "$work/src" "$work/bin" "$work/obj"
tar -xf "$tarball" -C "$work/src" --strip-components=1

# Cross tool names newlib's configure expects, backed by the system tools.
for t in ar as ld nm ranlib objdump objcopy strip readelf; do
	printf '#!/bin/sh\nexec %s "$@"\n' "$t" > "$work/bin/x86_64-elf-$t"
done
cat > "$work/bin/x86_64-elf-gcc" <<WRAP
#!/bin/sh
# Compile with general registers only; a source that needs floating point
# becomes an empty object and is recorded in omitted.txt.
err=\$(gcc "\$@" 2>&1) && { [ -n "\$err" ] && printf '%s\n' "\$err" >&2; exit 0; }
case "\$err" in
*"SSE register"*|*"SSE disabled"*|*"x87"*)
	obj=""; prev=""
	for a in "\$@"; do [ "\$prev" = "-o" ] && obj="\$a"; prev="\$a"; done
	[ -n "\$obj" ] || { printf '%s\n' "\$err" >&2; exit 1; }
	printf '' | gcc -x c -c -o "\$obj" -
	echo "\$obj" >> "$out/omitted.txt"
	exit 0 ;;
esac
printf '%s\n' "\$err" >&2
exit 1
WRAP
cp "$work/bin/x86_64-elf-gcc" "$work/bin/x86_64-elf-cc"
chmod +x "$work/bin"/*
rm -f "$out/omitted.txt"

cd "$work/obj"
PATH="$work/bin:$PATH"
export PATH
../src/configure --target=x86_64-elf --prefix="$out" --disable-multilib \
	--disable-newlib-supplied-syscalls --disable-newlib-io-float \
	--disable-newlib-multithread --enable-newlib-nano-malloc --disable-nls \
	CFLAGS_FOR_TARGET="-O2 -ffreestanding -mno-red-zone -mgeneral-regs-only -fno-pic -fno-pie -fno-stack-protector" \
	> "$out/configure.log" 2>&1
make -j"$(nproc)" all-target-newlib > "$out/build.log" 2>&1 ||
	{ tail -n 30 "$out/build.log" >&2; echo "build-newlib: failed, see $out/build.log" >&2; exit 1; }
make install-target-newlib >> "$out/build.log" 2>&1
mkdir -p "$out/lib" "$out/include"
cp "$out/x86_64-elf/lib/libc.a" "$out/lib/libc.a"
cp -r "$out/x86_64-elf/include/." "$out/include/"
rm -rf "$work"
echo "build-newlib: $out/lib/libc.a ($(wc -l < "$out/omitted.txt" 2>/dev/null || echo 0) float-only objects left out)"
