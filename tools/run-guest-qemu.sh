#!/bin/sh
# Boot one guest test kernel under QEMU (TCG, no VMX needed) the way umbra would run it:
#   tools/run-guest-qemu.sh KERNEL [KERNEL ARGS...]
# Prints the serial log (after QEMU ends) and exits with QEMU's status: (code << 1) | 1 for a
# kernel that exits through isa-debug-exit (1 = all tests passed, 3 = failures), 0 if the VM
# reset or shut down (e.g. a triple fault, with -no-reboot), 124 if it ran longer than
# $GUEST_TIMEOUT seconds (default 60). QEMU's own errors also exit with 1, so a status of 1
# without a "SUMMARY:" line in the log becomes 2. $QEMU overrides the binary, $GUEST_MEM the
# RAM size in MiB (default 32), $GUEST_CPU the CPU model (default: QEMU's own, e.g. "max"),
# $GUEST_SMP the CPU count (-smp N, default 1), $GUEST_QEMU_ARGS adds arguments. The pc-testdev device (port 0xe0 latch, RAM-like MMIO page
# at 0xff000000) is always there, as in kvm-unit-tests; kernels that do not use it never see it.
set -u
if [ $# -lt 1 ]; then
	echo "usage: $0 KERNEL [ARGS...]" >&2
	exit 2
fi
kernel=$1
shift
qemu=${QEMU:-qemu-system-x86_64}
log=$(mktemp "${TMPDIR:-/tmp}/run-guest-qemu.XXXXXX")
trap 'rm -f "$log"' EXIT

# shellcheck disable=SC2086 # GUEST_QEMU_ARGS is a list of words
timeout "${GUEST_TIMEOUT:-60}" "$qemu" -accel tcg ${GUEST_CPU:+-cpu "$GUEST_CPU"} \
	-kernel "$kernel" -append "$*" -display none -no-reboot -serial stdio \
	-device isa-debug-exit,iobase=0xf4,iosize=0x4 -device pc-testdev \
	-m "${GUEST_MEM:-32}" -smp "${GUEST_SMP:-1}" ${GUEST_QEMU_ARGS:-} </dev/null >"$log" 2>&1
status=$?
cat "$log"
if [ "$status" = 1 ] && ! grep -q '^SUMMARY:' "$log"; then
	echo "run-guest-qemu: QEMU exited with 1 but the kernel printed no SUMMARY line" >&2
	exit 2
fi
exit "$status"
