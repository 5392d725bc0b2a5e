#!/bin/sh
# Boots every multiboot guest kernel under QEMU TCG with tools/run-guest-qemu.sh and checks
# its exit status: 1 (exit(0), all passed) for test kernels, 0 (the VM shut down) for
# triplefault. elf64 is skipped: QEMU's -kernel cannot load a plain ELF64.
#   tests/guests/run-all-qemu.sh [BUILD_DIR]     (default: build; run `make guests` first)
# Logs go to BUILD_DIR/guests/qemu-logs/<kernel>.log; exit status 1 if any kernel misbehaved.
set -u
build=${1:-build}
root=$(cd "$(dirname "$0")/../.." && pwd)
logs=$build/guests/qemu-logs
mkdir -p "$logs"
failed=0

run() {	# run KERNEL EXPECTED_STATUS ARGS...   ($cpu: QEMU CPU model, $mem: MiB, $smp: CPUs)
	name=$1 expected=$2
	shift 2
	log=$name${smp:+-smp$smp}
	GUEST_CPU=${cpu:-} GUEST_MEM=${mem:-32} GUEST_SMP=${smp:-1} \
		"$root/tools/run-guest-qemu.sh" "$build/guests/$name.elf" "$@" >"$logs/$log.log" 2>&1
	status=$?
	if [ "$status" = "$expected" ]; then
		verdict=ok
	else
		verdict=WRONG
		failed=1
	fi
	printf '%-12s status %-3s (expected %s) %-5s %s\n' "$log" "$status" "$expected" \
		"$verdict" "$(grep '^SUMMARY:' "$logs/$log.log")"
}

for k in cpuid cpuid64 msr msr64 io io64 hlt_timer vmcall vmcall64 memtest; do
	run "$k" 1
done
run isolation 1 pattern=0xa5 wait=20
run triplefault 0
run events 1
run strio 1
run strio64 1
run storm 1 apic_masked apic_cli pit_cli
# The QEMU-style platform kernels, on the command line kvm-unit-tests uses (-cpu max -m 64).
cpu=max mem=64
for k in apic apic64 mmio mmio64 platform platform64; do
	run "$k" 1
done
# The paging kernels with SMEP, SMAP, NX and 1 GiB pages, which QEMU's default CPU lacks.
cpu=max mem=32
for k in paging32 paging_pae paging64; do
	run "$k" 1
done
# Several CPUs (lib/smp.c): 1, 2 and 4 of them.
cpu= mem=32
for smp in 1 2 4; do
	run smp_basic 1 cpus=$smp
	run smp_tlb 1 cpus=$smp
done
smp=
exit $failed
