#!/bin/sh
# Boot one guest test kernel under QEMU (TCG, no VMX needed) the way umbra would run it:
#   tools/run-guest-qemu.sh KERNEL [KERNEL ARGS...]
# The serial log goes to stdout. Exit status is QEMU's: (code << 1) | 1 for a kernel that
# exits through isa-debug-exit (1 = all tests passed, 3 = failures), 0 if the VM reset or shut
# down (e.g. a triple fault, with -no-reboot), 124 if it ran longer than $GUEST_TIMEOUT
# seconds (default 60). $QEMU overrides the binary, $GUEST_MEM the RAM size (default 32).
set -u
if [ $# -lt 1 ]; then
	echo "usage: $0 KERNEL [ARGS...]" >&2
	exit 2
fi
kernel=$1
shift
qemu=${QEMU:-qemu-system-x86_64}

timeout "${GUEST_TIMEOUT:-60}" "$qemu" -accel tcg -kernel "$kernel" -append "$*" \
	-display none -no-reboot -serial stdio \
	-device isa-debug-exit,iobase=0xf4,iosize=0x4 -m "${GUEST_MEM:-32}" </dev/null
