#!/bin/sh
# Boot an ISO in Bochs (VMX + EPT emulation), headless, serial to a file.
#   tools/bochs.sh ISO SERIAL_LOG [TIMEOUT_S] [CPU_MODEL] [MEGS] [CPUS]
# Exit status: Bochs' own (0 = hypervisor reported PASS via the magic
# breakpoint, 1 = failure/shutdown), 137 if killed by the timeout.
set -u
iso=$1 serial=$2 timeout=${3:-300} model=${4:-corei7_skylake_x} megs=${5:-512} cpus=${6:-1}
dir=$(mktemp -d "${TMPDIR:-/tmp}/umbra-bochs.XXXXXX")
trap 'rm -rf "$dir"' EXIT
cat > "$dir/bochsrc" <<RC
config_interface: textconfig
display_library: term
megs: $megs
cpu: model=$model, count=$cpus, ips=50000000, reset_on_triple_fault=0, ignore_bad_msrs=1
romimage: file=/usr/share/bochs/BIOS-bochs-latest, options=fastboot
vgaromimage: file=/usr/share/vgabios/vgabios.bin
ata0: enabled=1, ioaddr1=0x1f0, ioaddr2=0x3f0, irq=14
ata0-master: type=cdrom, path=$(realpath "$iso"), status=inserted
boot: cdrom
com1: enabled=1, mode=file, dev=$(realpath -m "$serial")
port_e9_hack: enabled=1
magic_break: enabled=1
speaker: enabled=0
sound: waveoutdrv=dummy, waveindrv=dummy, midioutdrv=dummy
log: $dir/bochs.log
panic: action=fatal
error: action=report
info: action=report
debug: action=ignore
RC
printf 'continue\nquit\n' > "$dir/dbg.rc"
: > "$serial"
# Bochs' term display opens a pseudo-terminal of its own (even when it has a
# terminal) and writes to its master side; nobody reads the other side, so
# after some minutes the buffer is full and Bochs blocks in write() for good
# (long runs such as kvm-unit-tests' access stopped after ~7 minutes). The
# drainer below finds that pseudo-terminal, makes it raw without echo and
# reads it until Bochs ends.
drain_pty() {
	for _ in $(seq 100); do
		for b in $(pgrep -P "$1" 2>/dev/null); do
			for fd in /proc/"$b"/fd/*; do
				[ "$(readlink "$fd" 2>/dev/null)" = /dev/ptmx ] || continue
				n=$(sed -n 's/^tty-index:[[:space:]]*//p' /proc/"$b"/fdinfo/"${fd##*/}")
				[ -n "$n" ] || continue
				stty -F /dev/pts/"$n" raw -echo 2>/dev/null
				exec cat /dev/pts/"$n" >/dev/null 2>&1
			done
		done
		sleep 0.1
	done
}
TERM=xterm timeout -s KILL "$timeout" bochs -q -f "$dir/bochsrc" -rc "$dir/dbg.rc" \
	</dev/null >"$dir/stdout" 2>&1 &
bochs_pid=$!
drain_pty "$bochs_pid" &
drain_pid=$!
wait "$bochs_pid"
status=$?
kill "$drain_pid" 2>/dev/null
wait "$drain_pid" 2>/dev/null
# Keep Bochs' own log next to the serial log: it spells out VM-entry failures.
cp "$dir/bochs.log" "${serial%.*}.bochs.log" 2>/dev/null
# Bochs' terminal output: it holds the port 0xe9 mirror, which is not buffered
# like the COM1 file and so shows the very last lines of a killed run.
cp "$dir/stdout" "${serial%.*}.stdout" 2>/dev/null
exit $status
