#!/bin/sh
# Boot an umbra ISO on the best VMX platform this host has, printing the
# hypervisor's serial console live:
#   - QEMU with KVM when the host is Intel with nested VMX enabled
#     (/dev/kvm usable and kvm_intel's 'nested' parameter on);
#   - otherwise Bochs, whose CPU emulation includes VMX and EPT.
# Exit status: the emulator's (Bochs: 0 pass, 1 fail; QEMU: (code<<1)|1).
#   tools/run.sh ISO [bochs|qemu]
set -u
iso=$1 force=${2:-}
serial=$(dirname "$iso")/run-serial.log
nested=/sys/module/kvm_intel/parameters/nested

why=""
if [ -z "$force" ]; then
	if ! grep -qw vmx /proc/cpuinfo; then
		why="this CPU has no VT-x (no 'vmx' flag in /proc/cpuinfo)"
	elif [ ! -r "$nested" ] || ! grep -qE '^(Y|1)$' "$nested"; then
		why="kvm_intel is not loaded with nested=1"
	elif [ ! -w /dev/kvm ]; then
		why="/dev/kvm is not accessible"
	else
		force=qemu
	fi
fi
if [ "$force" = qemu ]; then
	echo "run: QEMU with KVM (nested VMX available), -cpu host"
	exec qemu-system-x86_64 -accel kvm -cpu host,+vmx -m 1024 -cdrom "$iso" -display none \
		-no-reboot -serial stdio -device isa-debug-exit,iobase=0xf4,iosize=0x04
fi
echo "run: Bochs (VMX+EPT emulation), because $why"
"$(dirname "$0")/bochs.sh" "$iso" "$serial" "${TIMEOUT:-600}" &
pid=$!
sleep 0.2
tail -n +1 --pid=$pid -f "$serial" 2>/dev/null
wait $pid
status=$?
printf "\nrun: Bochs exited with status %s (0 = every guest passed)\n" "$status"
exit $status
