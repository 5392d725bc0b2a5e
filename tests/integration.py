"""Integration tests: each boots the hypervisor with some guest kernels and judges the run.

A test names its guests (kernel file in build/guests/ + module command line), the
hypervisor command line, where it runs (Bochs CPU model, QEMU TCG by BIOS, or QEMU TCG
by UEFI with OVMF: "qemu-ovmf"; cpus=N: the machine's CPUs, Bochs `cpu: count=N` or QEMU
-smp N), and what must happen: the run's end ("run ended:
PASS|FAIL|HV-ERROR|NO-VMX" plus the matching exit status), how each guest ends, lines
the serial log must or must not contain, and (screen_must) lines the framebuffer console
must show. A screen test boots with exit=halt: the runner waits for the end of the run,
reads the screen from a QEMU screendump (tools/fbshot.py) and quits QEMU (status 0).
tools/testrun.py runs them; add a test by appending to TESTS.
"""
import re

BOCHS_STATUS = {"PASS": 0, "FAIL": 1, "HV-ERROR": 1, "NO-VMX": 1}
QEMU_STATUS = {"PASS": 1, "FAIL": 3, "HV-ERROR": 5, "NO-VMX": 7}  # (code << 1) | 1


class Guest:
    def __init__(self, kernel, args, expect="pass"):
        """expect: 'pass' (ends with status 1, no FAIL: lines), a regex that the
        hypervisor's 'NAME: ended: ...' line must match (a killed or failing guest),
        or None (the guest is never created: its module is bad on purpose)."""
        self.kernel, self.args, self.expect = kernel, args, expect  # kernel: in build/guests,
        # or a path from the repository root when it contains a '/'.
        m = re.search(r"name=(\S+)", args)
        self.name = m.group(1) if m else None


class Test:
    def __init__(self, name, guests=(), hv_args="", run="PASS", log_must=(), log_must_not=(),
                 platform="bochs", cpu="corei7_skylake_x", megs=512, timeout=240,
                 expect_panic=False, same_digests=(), screen_must=(), cpus=1):
        self.name, self.guests, self.hv_args, self.run = name, list(guests), hv_args, run
        self.screen_must = list(screen_must)
        if self.screen_must and "exit=halt" not in hv_args:
            raise ValueError(f"{name}: a screen test needs exit=halt (QEMU must stay up)")
        self.log_must, self.platform, self.cpu = list(log_must), platform, cpu
        self.log_must_not = ([] if expect_panic else ["PANIC", "EXCEPTION"]) + list(log_must_not)
        self.megs, self.timeout = megs, timeout
        self.cpus = cpus  # Bochs `cpu: count=N`: CPUs of the emulated machine
        # Pairs of guests whose "DIGEST: ..." lines must be identical (same kernel run
        # under two memory virtualizations must observe the same results).
        self.same_digests = list(same_digests)

    def judge(self, status, log, screen=None):
        """Return a list of problems (empty = pass). screen: the console's text lines."""
        problems = []
        if self.screen_must:
            want = 0  # halted, then quit by the runner after the screenshot
        else:
            want = (BOCHS_STATUS if self.platform == "bochs" else QEMU_STATUS)[self.run]
        if status == 137 or status == -9:
            problems.append(f"timed out after {self.timeout}s")
        elif status != want:
            problems.append(f"exit status {status}, expected {want} for {self.run}")
        if not re.search(rf"run ended: {re.escape(self.run)}\b", log):
            m = re.search(r"run ended: (\S+)", log)
            problems.append(f"run ended {m.group(1) if m else 'never'}, expected {self.run}")
        for pat in self.log_must:
            if not re.search(pat, log, re.M):
                problems.append(f"log lacks /{pat}/")
        if self.screen_must and screen is None:
            problems.append("no screenshot taken")
        for pat in self.screen_must if screen is not None else ():
            if not any(re.search(pat, line) for line in screen):
                shown = [l for l in screen if l.strip()][-3:]
                problems.append(f"screen lacks /{pat}/ (last lines: {shown!r})")
        for pat in self.log_must_not:
            m = re.search(pat, log, re.M)
            if m:
                problems.append(f"log has /{pat}/: {log[max(0, m.start() - 60):m.end() + 60]!r}")
        for a, b in self.same_digests:
            da, db = digests(log, a), digests(log, b)
            if not da:
                problems.append(f"guest {a} printed no DIGEST lines")
            elif da != db:
                diff = next((x, y) for x, y in zip(da + [""] * 99, db + [""] * 99) if x != y)
                problems.append(f"digests of {a} and {b} differ: {diff[0]!r} vs {diff[1]!r}")
        for g in self.guests:
            if g.expect is None:
                continue
            ended = re.search(rf"hv: {re.escape(g.name)}: ended: (.*)$", log, re.M)
            if g.expect == "pass":
                if not re.search(rf"summary {re.escape(g.name)}: PASS, status 1\b", log):
                    problems.append(f"guest {g.name} did not pass"
                                    + (f" ({ended.group(1)})" if ended else ""))
                if re.search(rf"\] {re.escape(g.name)}: FAIL", log):
                    problems.append(f"guest {g.name} reported FAIL lines")
            elif not ended or not re.search(g.expect, ended.group(1)):
                problems.append(f"guest {g.name} ended "
                                f"{ended.group(1) if ended else 'never'!r}, expected /{g.expect}/")
        return problems


def digests(log, guest):
    return re.findall(rf"\] {re.escape(guest)}: DIGEST: (.*)$", log, re.M)


def ept(kernel, name, extra="", expect="pass"):
    return Guest(kernel, f"name={name} mmu=ept {extra}".strip(), expect)


def shadow(kernel, name, extra="", expect="pass"):
    return Guest(kernel, f"name={name} mmu=shadow {extra}".strip(), expect)


# --- Linux: Debian's kernel and a busybox initramfs (tools/linux.sh builds them into
# build/linux; `make linux` runs these). The same workload under EPT and under shadow
# paging must print the same digest, the one the build machine computed; a witness runs
# beside them. About 4.6 minutes of Bochs CPU time: first in TESTS so the longest test
# starts first (`make test`); `make linux` runs it alone.
LINUX_CMDLINE = ("console=ttyS0 acpi=off reboot=t io_delay=none panic=-1 "
                 "cryptomgr.notests quiet")


def linux(name, mmu, extra=""):
    """A Linux guest (the vmlinux) and its initrd module."""
    return [Guest("build/linux/vmlinux",
                  f"name={name} mmu={mmu} mem=256M {extra} -- {LINUX_CMDLINE}".replace("  ", " ")),
            Guest("build/linux/initrd.cpio", f"initrd_for={name}", expect=None)]


LINUX_TESTS = [
    Test("linux-ept-and-shadow", megs=1024, timeout=3600, hv_args="guest_timeout_ms=600000",
         guests=linux("linux-ept", "ept") + linux("linux-shadow", "shadow")
         + [ept("hlt_timer.elf", "witness")],
         same_digests=[("linux-ept", "linux-shadow")],
         log_must=[r"hv: linux-ept: Linux vmlinux 6\.1\.\S+, boot protocol 2\.15",
                   r"\] linux-ept: init: workload PASS",
                   r"\] linux-shadow: init: workload PASS"]),
]


TESTS = LINUX_TESTS + [
    # --- foundation: boot, command line, bad input, no VMX ---------------------------
    Test("boot-no-guests", run="HV-ERROR",
         log_must=[r"VMX: EPT yes", r"no guest modules", r"paging: identity map"]),
    Test("bad-hv-option", hv_args="slice_ms=5 colour=red", run="HV-ERROR",
         log_must=[r"unknown option 'colour'; accepted options: slice_ms, guest_timeout_ms"]),
    Test("bad-hv-value", hv_args="slice_ms=0", run="HV-ERROR",
         log_must=[r"option 'slice_ms': value '0' is outside 1\.\.1000"]),
    Test("no-vmx-qemu-tcg", guests=[ept("cpuid.elf", "cpuid", expect=None)], platform="qemu",
         run="NO-VMX", timeout=60, log_must=[r"this CPU has no VMX"]),
    # UEFI (OVMF, TCG: no VMX): GRUB's EFI hand-off, the framebuffer console, a clean end.
    Test("uefi-no-vmx", guests=[ept("cpuid.elf", "cpuid", expect=None)], platform="qemu-ovmf",
         run="NO-VMX", timeout=120,
         log_must=[r"this CPU has no VMX", r"booted by UEFI: EFI system table at 0x",
                   r"console: framebuffer \d+x\d+ and COM1",
                   r"calibrated against ACPI PM timer"]),
    Test("uefi-framebuffer-console", platform="qemu-ovmf", hv_args="exit=halt", run="NO-VMX",
         timeout=120, guests=[ept("cpuid.elf", "cpuid", expect=None)],
         screen_must=[r"^\[ +0\.0+\] hv: console: framebuffer \d+x\d+ and COM1$",
                      r"^\[ +\d+\.\d{6}\] hv: error: this CPU has no VMX \(Intel VT-x\)",
                      r"^\[ +\d+\.\d{6}\] hv: run ended: NO-VMX$"]),
    Test("bad-guest-option", run="FAIL",
         guests=[ept("cpuid.elf", "good"), Guest("cpuid.elf", "name=bad mmu=ept colour=red", None)],
         log_must=[r"unknown option 'colour'; accepted options: name, mem, mmu"]),
    Test("env-module-names-no-guest", run="FAIL",
         guests=[ept("cpuid.elf", "good"), Guest("./README.md", "env_for=nobody", None)],
         log_must=[r"module 1: env_for=nobody names no guest"]),
    Test("malformed-module", run="FAIL",
         guests=[ept("cpuid.elf", "good"), Guest("./linker.ld", "name=text", None)],
         log_must=[r"cannot load module 1: not an ELF file"]),

    # Options are never half-obeyed: a repeated option, a size out of range, or a module
    # line longer than the boot information can hold fail that guest (and the run), loudly.
    Test("guest-options-refused-not-guessed", run="FAIL",
         guests=[ept("cpuid.elf", "good"),
                 Guest("cpuid.elf", "name=twice mem=32M mem=64M", None),
                 Guest("cpuid.elf", "name=small mem=3M", None),
                 Guest("cpuid.elf", "name=fewpages mmu=shadow shadow_pages=64", None),
                 Guest("cpuid.elf", "name=long -- " + "x" * 600, None)],
         log_must=[r"option 'mem' is given twice",
                   r"option 'mem': value '3M' is outside 4M\.\.2G",
                   r"option 'shadow_pages': value '64' is outside 128\.\.",
                   r"command line longer than 511 bytes; refused",
                   r"1 module\(s\) refused by the boot information",
                   r"summary good: PASS"]),

    Test("selftest-page-fault", hv_args="selftest=page-fault", run="HV-ERROR", expect_panic=True,
         log_must_not=["PANIC while panicking"],
         log_must=[r"EXCEPTION 14 \(#PF page fault\) error code 0 in the hypervisor",
                   r"CR2 0000000000000010", r"PANIC: unhandled exception 14"]),
    Test("selftest-write-text", hv_args="selftest=write-text", run="HV-ERROR", expect_panic=True,
         log_must=[r"EXCEPTION 14 \(#PF page fault\) error code 0x3 in the hypervisor"]),
    Test("selftest-nested-panic", hv_args="selftest=nested-panic", run="HV-ERROR",
         expect_panic=True,
         log_must=[r"EXCEPTION 14 \(#PF page fault\)", r"PANIC while panicking; stopping"]),

    # --- VMX core with EPT --------------------------------------------------------------
    Test("cpuid", guests=[ept("cpuid.elf", "cpuid32"), ept("cpuid64.elf", "cpuid64")]),
    Test("msr", guests=[ept("msr.elf", "msr32"), ept("msr64.elf", "msr64")],
         log_must=[r"msr64: read of MSR 0x480 refused with #GP\(0\) \(not provided\)"]),
    # What CPUID advertises works, what it hides is absent; refused MSR values, XCR0 values
    # the CPU would refuse and RDPMC without counters fault in the guest, under both MMUs,
    # beside a witness.
    Test("cpu-features",
         guests=[ept("cpufeat.elf", "feat-ept"), shadow("cpufeat.elf", "feat-shadow"),
                 ept("memtest.elf", "feat-witness", "mem=64M")]),
    # CR0/CR3/CR4 checks, INVLPG/INVPCID corner cases, SMAP after a WP=0 write: the SDM's
    # faults under both MMUs (the exit paths differ), beside a witness.
    Test("control-registers",
         guests=[ept("crcheck.elf", "cr32-ept"), shadow("crcheck.elf", "cr32-shadow"),
                 ept("crcheck64.elf", "cr64-ept"), shadow("crcheck64.elf", "cr64-shadow"),
                 shadow("memtest.elf", "cr-witness", "mem=64M")]),
    # Tiger Lake has PKU, CET, UMIP and RDPID: what umbra does not virtualise (PKU, CET) is
    # hidden and its CR4 bits fault, also under EPT where the CPU itself would take them.
    Test("control-registers-tigerlake", cpu="tigerlake",
         guests=[ept("crcheck64.elf", "tl-cr64-ept"), shadow("crcheck64.elf", "tl-cr64-shadow"),
                 ept("cpufeat.elf", "tl-feat-ept"), shadow("cpufeat.elf", "tl-feat-shadow"),
                 ept("memtest.elf", "tl-witness", "mem=64M")]),
    Test("io", guests=[ept("io.elf", "io32"), ept("io64.elf", "io64")]),
    Test("hlt-timer", guests=[ept("hlt_timer.elf", "timer")]),
    Test("vmcall", guests=[ept("vmcall.elf", "vmcall32"), ept("vmcall64.elf", "vmcall64")]),
    Test("memtest", guests=[ept("memtest.elf", "mem64", "mem=64M")]),
    Test("elf64-entry", guests=[ept("elf64.elf", "elf64")]),
    Test("triple-fault-isolated", run="FAIL",
         guests=[ept("triplefault.elf", "crasher", expect=r"triple fault"),
                 ept("hlt_timer.elf", "survivor")]),
    Test("isolation", run="FAIL", megs=512,
         guests=[ept("isolation.elf", "iso-a", "mem=32M -- pattern=0xa5"),
                 ept("isolation.elf", "iso-b", "mem=32M -- pattern=0x5a probe_oob",
                     expect=r"read of guest-physical 0x2000000 outside its 32 MiB"),
                 ept("memtest.elf", "iso-c", "mem=32M")]),
    # --- shadow paging: the same kernels must pass with the MMU in software -----------
    Test("shadow-basics", guests=[shadow("cpuid.elf", "s-cpuid32"), shadow("cpuid64.elf", "s-cpuid64"),
                                  shadow("msr.elf", "s-msr32"), shadow("msr64.elf", "s-msr64"),
                                  shadow("io.elf", "s-io32"), shadow("io64.elf", "s-io64"),
                                  shadow("vmcall64.elf", "s-vmcall64"), shadow("elf64.elf", "s-elf64")],
         log_must=[r"summary s-cpuid64: shadow: \d+ faults"]),
    # Without unrestricted guest (shadow paging) real mode runs as virtual-8086 mode
    # (vmx/vm86.c), which has only 16-bit code: clearing CR0.PE in 32-bit code ends the
    # guest with a message, not left to run garbage; its neighbour runs on.
    Test("shadow-real-mode-ended", run="FAIL",
         guests=[shadow("triplefault.elf", "s-realmode", "-- realmode",
                        expect=r"CR0.PE cleared with a 32-bit code segment \(D/B set\)"),
                 shadow("hlt_timer.elf", "s-rm-witness")]),
    # A real-mode round trip (tests/guests/rmode.c): INT n, #DE, LIDT, an IRQ waking HLT,
    # IN/OUT and MOV from CR0 in real mode; by the CPU under EPT (unrestricted guest), as
    # virtual-8086 mode under shadow paging (vmx/vm86.c); a witness beside them.
    Test("real-mode-ept-and-shadow",
         guests=[ept("rmode.elf", "rm-ept"), shadow("rmode.elf", "rm-shadow"),
                 shadow("hlt_timer.elf", "rm-witness")]),
    # Big real mode (a 4 GiB limit kept from protected mode): the CPU runs it under EPT;
    # virtual-8086 mode cannot, so the shadow guest ends with that reason, not silently wrong.
    Test("real-mode-big-limits", run="FAIL",
         guests=[ept("rmode.elf", "big-ept", "-- big"),
                 shadow("rmode.elf", "big-shadow", "-- big",
                        expect=r"#GP at 1000:\w+ \([0-9a-f ]+\) is not emulated; an access "
                               r"beyond 64 KiB \(big real mode\) cannot run in virtual-8086"),
                 ept("hlt_timer.elf", "big-witness")]),
    Test("shadow-timer-memtest", guests=[shadow("hlt_timer.elf", "s-timer"),
                                         shadow("memtest.elf", "s-mem", "mem=64M")]),
    Test("shadow-isolation", run="FAIL",
         guests=[shadow("isolation.elf", "s-iso-a", "mem=32M -- pattern=0xa5"),
                 shadow("isolation.elf", "s-iso-b", "mem=32M -- pattern=0x5a probe_oob",
                        expect=r"access to guest-physical 0x2000000 outside its 32 MiB"),
                 ept("isolation.elf", "e-iso-c", "mem=32M -- pattern=0x3c")]),
    # QEMU-style platform: xAPIC and its timers, the emulated MMIO page, under both MMUs.
    Test("platform-apic-mmio-ept", guests=[ept("apic.elf", "apic32"), ept("apic64.elf", "apic64"),
                                           ept("mmio.elf", "mmio32"), ept("mmio64.elf", "mmio64")]),
    Test("platform-devices", guests=[ept("platform.elf", "plat32", "mem=64M"),
                                     ept("platform64.elf", "plat64", "mem=64M"),
                                     shadow("platform64.elf", "s-plat64", "mem=64M")]),
    # kvm-unit-tests' emulator forms on the emulated page (stack, segments, SSE/MMX too),
    # under both MMUs, beside a witness guest.
    Test("emulator-insns", guests=[ept("emu_insns.elf", "emu-ept"),
                                   shadow("emu_insns.elf", "emu-shadow"),
                                   ept("hlt_timer.elf", "witness")]),
    Test("platform-apic-mmio-shadow",
         guests=[shadow("apic.elf", "s-apic32"), shadow("apic64.elf", "s-apic64"),
                 shadow("mmio.elf", "s-mmio32"), shadow("mmio64.elf", "s-mmio64")]),
    # The paging stress kernels must see exactly the same results with either MMU.
    Test("paging-ept-equals-shadow", timeout=400,
         guests=[ept("paging32.elf", "p32-ept"), shadow("paging32.elf", "p32-shadow"),
                 ept("paging_pae.elf", "pae-ept"), shadow("paging_pae.elf", "pae-shadow"),
                 ept("paging64.elf", "p64-ept"), shadow("paging64.elf", "p64-shadow")],
         same_digests=[("p32-ept", "p32-shadow"), ("pae-ept", "pae-shadow"),
                       ("p64-ept", "p64-shadow")],
         # Their large pages are mapped by 2 MiB sptes (largepages=on), split when needed.
         log_must=[r"stats p32-shadow shadow .*large_mapped=[1-9]",
                   r"stats pae-shadow shadow .*large_mapped=[1-9]",
                   r"stats p64-shadow shadow .*large_mapped=[1-9]"]),
    # Shared page tables changed and used at once (tests/guests/smp_tlb.c), one vCPU: the
    # mapper does every phase; the same digests under both MMUs, beside a witness.
    Test("smp-tlb-ept-equals-shadow",
         guests=[ept("smp_tlb.elf", "tlb-ept"), shadow("smp_tlb.elf", "tlb-shadow"),
                 ept("hlt_timer.elf", "witness")],
         same_digests=[("tlb-ept", "tlb-shadow")]),
    Test("mixed-ept-and-shadow", hv_args="slice_ms=3",
         guests=[ept("hlt_timer.elf", "e-timer"), shadow("hlt_timer.elf", "s-timer"),
                 ept("memtest.elf", "e-mem"), shadow("memtest.elf", "s-mem")]),

    # --- page ageing: the guest checks the working sets the scanner reports.
    # Default EPT ageing keeps 2 MiB pages where cold: the guest's upper bounds count a
    # block seen used for the first time as 512 pages ("2m"); blocks are split and merged.
    Test("ageing-ept-ad", guests=[ept("ageing.elf", "age-ept", "scan_ms=5 -- 2m")],
         log_must=[r"stats age-ept ageing scans=\d+ .* splits=[1-9]\d* merges=[1-9]"]),
    # Splits and merges under a guest that checks every byte of its RAM, beside a witness:
    # a 4 KiB leaf on the wrong frame or a lost write would fail memtest.
    Test("ageing-ept-memtest", guests=[ept("memtest.elf", "age-mem", "scan_ms=1"),
                                       ept("hlt_timer.elf", "witness")],
         log_must=[r"stats age-mem ageing .* splits=[1-9]\d* merges=[1-9]"]),
    Test("ageing-ept-memtest-tracking", cpu="corei7_sandy_bridge_2600k",
         guests=[ept("memtest.elf", "age-mem-track", "scan_ms=5"),
                 ept("hlt_timer.elf", "witness")],
         log_must=[r"EPT A/D no", r"stats age-mem-track ageing .* tracking_faults=[1-9]\d* "
                   r"large_pages=\d+ splits=[1-9]\d* merges=[1-9]"]),
    Test("ageing-ept-4k", guests=[ept("ageing.elf", "age-ept4k", "scan_ms=5 scan_pages=4k")],
         log_must=[r"stats age-ept4k ageing scans=\d+ .* large_pages=0 splits=0 merges=0"]),
    # Without EPT A/D the tracking fault on a 2 MiB page splits it and untracks only the
    # page used, so the guest's exact bounds hold.
    Test("ageing-ept-tracking", cpu="corei7_sandy_bridge_2600k",
         guests=[ept("ageing.elf", "age-track", "scan_ms=5")],
         log_must=[r"EPT A/D no",
                   r"stats age-track ageing .* tracking_faults=[1-9]\d* large_pages=\d+ "
                   r"splits=[1-9]\d* merges=[1-9]"]),
    Test("ageing-ept-tracking-4k", cpu="corei7_sandy_bridge_2600k",
         guests=[ept("ageing.elf", "age-track4k", "scan_ms=5 scan_pages=4k")],
         log_must=[r"EPT A/D no", r"stats age-track4k ageing .* tracking_faults=[1-9]\d* "
                   r"large_pages=0 splits=0"]),
    Test("ageing-shadow-and-ept-together",
         guests=[shadow("ageing.elf", "age-shadow", "scan_ms=5"),
                 ept("ageing.elf", "age-ept2", "scan_ms=5 -- 2m")],
         log_must=[r"stats age-shadow ageing scans=\d+"]),
    # A page table that becomes data: the detector gives the frame back (a few exits for
    # two million writes); with flood=off every write is emulated. Data right in all cases.
    # Flood detection judges emulated writes: unsync=off keeps the table write-protected.
    # With unsync (the default) the guest writes the out-of-sync table itself.
    Test("flood-table-becomes-data",
         guests=[ept("table_to_data.elf", "td-ept", "-- writes=2000000 expect_flood"),
                 shadow("table_to_data.elf", "td-flood", "unsync=off -- writes=2000000 expect_flood"),
                 shadow("table_to_data.elf", "td-noflood", "flood=off unsync=off -- expect_no_flood"),
                 shadow("table_to_data.elf", "td-unsync", "flood=off -- writes=2000000 expect_flood")],
         log_must=[r"stats td-flood shadow .*unshadowed_flood=1",
                   r"stats td-unsync shadow .*unsynced=[1-9]"]),
    # Shadow reclaim and flood detection under pressure: still exact.
    Test("shadow-limit-128-clock-and-fifo", timeout=400,
         guests=[shadow("paging64.elf", "lim-clock", "shadow_pages=128"),
                 shadow("paging64.elf", "lim-fifo", "shadow_pages=128 reclaim=fifo"),
                 shadow("paging32.elf", "lim-flood-off", "shadow_pages=128 flood=off")],
         # Never more host frames held at once than the limit.
         log_must=[r"stats lim-clock shadow .*evictions=[1-9]",
                   r"stats lim-(clock|fifo) shadow frames=\d+ host_frames=\d+ "
                   r"host_frames_peak=(\d\d?|1[01]\d|12[0-8]) frames_limit=128 "]),

    # --- hostile guests: each ends alone, with a message; the witness passes ----------
    Test("hostile-page-tables-outside-ram", run="FAIL",
         guests=[ept("hostile_pt.elf", "pt-ept", "-- table_oob",
                     expect=r"outside its 32 MiB of RAM"),
                 shadow("hostile_pt.elf", "pt-shadow", "-- table_oob",
                        expect=r"page-table walk through guest-physical 0x\w+ outside its 32 MiB"),
                 ept("hostile_pt.elf", "cr3-ept", "-- cr3_oob",
                     expect=r"page-table walk through guest-physical 0x42000000 outside its 32 MiB"),
                 shadow("hostile_pt.elf", "cr3-shadow", "-- cr3_oob",
                        expect=r"outside its 32 MiB"),
                 ept("memtest.elf", "witness", "mem=32M")]),
    # Several shadow guests on a pool far too small for them: they take pages from each
    # other (or wait), never fail half way, and the EPT witness is untouched.
    Test("hostile-tiny-shadow-pool", hv_args="shadow_pool=64", timeout=400,
         guests=[shadow("paging64.elf", "pool-a"), shadow("paging64.elf", "pool-b"),
                 shadow("paging_pae.elf", "pool-c"), ept("memtest.elf", "witness")],
         log_must=[r"stats _pool shadow limit=64 .*reclaims=[1-9]"]),

    # --- string I/O: address sizes, faults mid-string, page tables and MMIO, in pieces ---
    Test("string-io", guests=[ept("strio.elf", "sio32"), ept("strio64.elf", "sio64"),
                              shadow("strio.elf", "s-sio32"), shadow("strio64.elf", "s-sio64"),
                              ept("memtest.elf", "witness")]),
    Test("string-io-hostile", run="FAIL",
         guests=[ept("strio64.elf", "huge-ept", "timeout_ms=1500 -- huge",
                     expect=r"still running after 1500 ms .*: \d+ exits in \d+ ms, 100% of them "
                            r"I/O instruction, the last at RIP 0x"),
                 shadow("strio64.elf", "huge-shadow", "timeout_ms=1500 -- huge",
                        expect=r"still running after 1500 ms .*: \d+ exits in \d+ ms, \d+% of "
                               r"them I/O instruction"),
                 ept("strio64.elf", "oob-ept", "-- oob",
                     expect=r"string I/O on port 0x210 at RIP 0x\w+: access to guest-physical "
                            r"0x6000000, which is neither RAM nor a device"),
                 shadow("strio64.elf", "oob-shadow", "-- oob",
                        expect=r"access to guest-physical 0x6000000, which is neither RAM nor"),
                 ept("memtest.elf", "witness-mem"), shadow("hlt_timer.elf", "witness-timer")]),

    # --- time: timer ticks that would coalesce cost no exits; a guest's time limit counts
    # the hypervisor's time for it; an interrupt storm and a spin with IF=0 end alone.
    Test("timers-coalesce",
         guests=[ept("storm.elf", "co-ept", "-- apic_masked apic_cli pit_cli"),
                 shadow("storm.elf", "co-shadow", "-- apic_masked apic_cli pit_cli"),
                 ept("hlt_timer.elf", "witness")]),
    Test("storm-and-spin-end-alone", run="FAIL",
         guests=[ept("storm.elf", "storm-ept", "timeout_ms=1500 -- apic",
                     expect=r"still running after 1500 ms \(its timeout_ms; \d+ ms of it in the "
                            r"hypervisor on its behalf\): interrupt storm: \d+ APIC timer "
                            r"interrupts \(vector 0x50\) in \d+ ms, taken at RIP 0x"),
                 shadow("storm.elf", "storm-shadow", "timeout_ms=1500 -- apic",
                        expect=r"interrupt storm: \d+ APIC timer interrupts"),
                 ept("storm.elf", "spin-ept", "timeout_ms=1000 -- spin",
                     expect=r"still running after 1000 ms .*: running without exits at RIP 0x\w+ "
                            r"with interrupts off"),
                 shadow("storm.elf", "spin-shadow", "timeout_ms=1000 -- spin",
                        expect=r"running without exits at RIP 0x\w+ with interrupts off"),
                 ept("memtest.elf", "witness-mem"), shadow("hlt_timer.elf", "witness-timer")]),

    # --- events: exceptions merged as the CPU does, deliveries an exit cut short redone,
    # single steps over exiting instructions, NMIs; a triple fault ends only its guest.
    Test("events-ept-and-shadow",
         guests=[ept("events.elf", "ev-ept"), shadow("events.elf", "ev-shadow"),
                 ept("hlt_timer.elf", "witness")]),
    Test("events-hostile-end-alone", run="FAIL",
         guests=[ept("events.elf", "tf-ept", "-- triple", expect=r"triple fault"),
                 shadow("events.elf", "tf-shadow", "-- triple",
                        expect=r"triple fault: #PF while delivering #DF"),
                 ept("events.elf", "idt-ept", "-- idt_mmio",
                     expect=r"delivering #UD \(vector 6\) at RIP 0x\w+ needs an emulated MMIO "
                            r"access at guest-physical 0xff0000\w+, which cannot be emulated"),
                 shadow("events.elf", "idt-shadow", "-- idt_mmio",
                        expect=r"delivering #UD \(vector 6\) .* needs an emulated MMIO access"),
                 shadow("hlt_timer.elf", "witness")]),

    # --- other CPU models: what each lacks must be handled or refused clearly ---------
    Test("cpu-sandy-bridge-no-ept-ad", cpu="corei7_sandy_bridge_2600k",
         guests=[ept("cpuid64.elf", "sb-cpuid"), ept("memtest.elf", "sb-mem"),
                 ept("cpufeat.elf", "sb-feat"), ept("crcheck64.elf", "sb-cr64")],
         log_must=[r"EPT yes, EPT A/D no, unrestricted guest yes"]),
    # Core 2 lacks the preemption timer and EFER load/save: refused, one line each.
    Test("cpu-penryn-refused", cpu="core2_penryn_t9600", run="HV-ERROR",
         guests=[Guest("cpuid.elf", "name=p mmu=ept", None)],
         log_must=[r"the CPU lacks VMX-preemption timer \(pin-based control bit 6\)",
                   r"the CPU lacks load IA32_EFER on entry \(VM-entry control bit 15\)"]),
    # Lynnfield has EPT but no unrestricted guest: EPT guests (they start with paging
    # off) are refused, shadow guests run. An older CPU: CPUID and CR4 still agree with
    # what stands behind them (no INVPCID, XSAVE, SMEP/SMAP, host TSC_ADJUST).
    Test("cpu-lynnfield-no-unrestricted", cpu="corei5_lynnfield_750", run="FAIL",
         guests=[Guest("cpuid.elf", "name=l mmu=ept", None), shadow("cpuid64.elf", "l-shadow"),
                 shadow("hlt_timer.elf", "l-timer"), shadow("cpufeat.elf", "l-feat"),
                 shadow("crcheck64.elf", "l-cr64"), shadow("rmode.elf", "l-rmode")],
         log_must=[r"l: mmu=ept needs EPT with unrestricted guest, which this CPU lacks"]),
    Test("entry-failure-kills-one-guest", run="FAIL",
         guests=[ept("cpuid.elf", "broken", "selftest=bad-guest-state",
                     expect=r"VM entry failed: VM-entry failure: guest state"),
                 ept("hlt_timer.elf", "healthy")],
         log_must=[r"broken: VMLAUNCH failed: exit reason 33",
                   r"entry check failed \(SDM 27\.3\.1\.2\): TR must be usable"]),
    # --- Linux boot protocol (core/linux.c): a kernel with a "Linux" note is entered as a
    # vmlinux and checks the protocol's state, zero page, initrd, RTC and 16550A; bad
    # images and initrd lines are refused with their reason; the witness passes.
    Test("linux-boot-protocol", run="FAIL",
         guests=[ept("linuxboot.elf", "lboot-ept", "-- console=ttyS0 linuxboot-check"),
                 Guest("tests/linux/initrd-check.txt", "initrd_for=lboot-ept", None),
                 shadow("linuxboot.elf", "lboot-shadow", "-- console=ttyS0 linuxboot-check"),
                 Guest("tests/linux/initrd-check.txt", "initrd_for=lboot-shadow", None),
                 Guest("tests/linux/truncated.bzImage", "name=cut mmu=ept", None),
                 Guest("cpuid.elf", "name=mb mmu=ept", None),
                 Guest("tests/linux/initrd-check.txt", "initrd_for=mb", None),
                 Guest("tests/linux/initrd-check.txt", "initrd_for=nobody", None),
                 ept("hlt_timer.elf", "witness")],
         log_must=[r"hv: lboot-ept: Linux vmlinux tst, boot protocol 2\.15, kernel 0x100000-",
                   r"cut: cannot load module \d+: bzImage truncated: its header says 2560 bytes "
                   r"of setup and 65536 of kernel, the file has 4096",
                   r"mb: cannot load module \d+: initrd_for= is for Linux kernels, and this is "
                   r"a multiboot ELF image",
                   r"module \d+: initrd_for=nobody names no guest"]),
    Test("round-robin-four", guests=[ept("hlt_timer.elf", "t1"), ept("memtest.elf", "m1"),
                                     ept("cpuid.elf", "c1"), ept("vmcall64.elf", "v1")],
         hv_args="slice_ms=2"),
]

# --- several CPUs (Bochs `cpu: count=N`): the ACPI MADT lists them, umbra starts them
# (INIT-SIPI-SIPI) and runs the guests across them, each on one CPU at a time; the
# summaries still come once and in order ("slices per CPU" says where each guest ran).
# cpus=1 keeps the run on the boot CPU, as on a one-CPU machine.
def smp(name, cpus, like, hv_args=None, log_must=(), **kw):
    """The test called like, on cpus CPUs: the same guests, hypervisor options and checks."""
    base = next(t for t in TESTS if t.name == like)
    return Test(name, cpus=cpus, guests=base.guests, run=base.run, timeout=base.timeout * 2,
                hv_args=base.hv_args if hv_args is None else hv_args,
                same_digests=base.same_digests, log_must=base.log_must + list(log_must), **kw)


def spread(*names):
    """Each named guest ran on two CPUs or more."""
    return [rf"summary {n}: slices per CPU:.* \d+:[1-9]\d*.* \d+:[1-9]" for n in names]


TESTS += [
    smp("smp2-mixed-ept-and-shadow", 2, "mixed-ept-and-shadow",
        log_must=[r"smp: 2 CPU\(s\) of the 2 the ACPI MADT lists"] + spread("e-mem", "s-mem")
        + [r"(?s)summary e-timer: PASS.*summary s-timer: PASS.*summary e-mem: PASS"
           r".*summary s-mem: PASS.*run ended: PASS"]),
    smp("smp4-mixed-ept-and-shadow", 4, "mixed-ept-and-shadow",
        log_must=[r"smp: 4 CPU\(s\) of the 4"] + spread("e-mem", "s-mem")),
    smp("smp4-paging-ept-equals-shadow", 4, "paging-ept-equals-shadow",
        log_must=[r"smp: 4 CPU\(s\) of the 4"] + spread("p64-ept", "p64-shadow")),
    # Global reclaim across guests that run at once: the donor's lock is only tried.
    # Four busy guests on four CPUs may each keep one CPU, so no spread is asked here;
    # a shadow guest moving between CPUs is checked by smp2-mixed-ept-and-shadow (s-mem).
    smp("smp4-tiny-shadow-pool", 4, "hostile-tiny-shadow-pool",
        log_must=[r"smp: 4 CPU\(s\) of the 4"]),
    smp("smp2-shadow-isolation", 2, "shadow-isolation", log_must=[r"smp: 2 CPU\(s\) of the 2"]),
    # Guests killed for storms, spins and triple faults on whichever CPU they run.
    smp("smp4-storm-and-spin-end-alone", 4, "storm-and-spin-end-alone",
        log_must=[r"smp: 4 CPU\(s\) of the 4"]),
    smp("smp4-events-hostile-end-alone", 4, "events-hostile-end-alone",
        log_must=[r"smp: 4 CPU\(s\) of the 4"]),
    # Other firmware (QEMU's SeaBIOS and OVMF tables, its CPUs' start-up): no VMX there,
    # so the started CPUs stay parked and the run ends NO-VMX as on one CPU.
    smp("smp2-no-vmx-qemu-tcg", 2, "no-vmx-qemu-tcg", platform="qemu",
        log_must=[r"smp: 2 CPU\(s\) of the 2 the ACPI MADT lists"]),
    smp("smp4-uefi-no-vmx", 4, "uefi-no-vmx", platform="qemu-ovmf",
        log_must=[r"smp: 4 CPU\(s\) of the 4 the ACPI MADT lists"]),
    smp("smp4-cpus1-stays-on-the-boot-cpu", 4, "mixed-ept-and-shadow", hv_args="slice_ms=3 cpus=1",
        log_must=[r"smp: 1 CPU\(s\) of the 4 the ACPI MADT lists, as cpus= asks"],
        log_must_not=[r"slices per CPU"]),
]

# --- guests with several vCPUs (vcpus=N): the AP starts by INIT-SIPI-SIPI through the
# xAPIC model, NMI IPIs reach it (halted or running on another CPU, then kicked out of the
# guest by a host IPI: "external interrupt" exits), a SIPI to a running vCPU is ignored,
# the BSP survives a self-IPI storm and an illegal vector; on 1 and 2 host CPUs. Real
# mode needs EPT (unrestricted guest): a shadow guest's AP start ends that guest alone.
def smp_ipi(name, mmu=ept, extra="", expect="pass"):
    return mmu("smp_ipi.elf", name, f"vcpus=2 -- cpus=2 {extra}", expect=expect)


TESTS += [
    Test("vcpus2-ipi-one-cpu", guests=[smp_ipi("ipi-spin"), smp_ipi("ipi-halt", extra="ap_halts"),
                                      ept("hlt_timer.elf", "witness")],
         log_must=[r"summary ipi-spin: PASS", r"summary ipi-halt: PASS"]),
    Test("smp2-vcpus2-ipi", cpus=2,
         guests=[smp_ipi("ipi-spin"), smp_ipi("ipi-halt", extra="ap_halts"),
                 shadow("hlt_timer.elf", "s-witness")],
         log_must=[r"smp: 2 CPU\(s\) of the 2", r"summary ipi-spin: exit 1 +external interrupt",
                   r"summary ipi-halt: PASS"]),
    Test("vcpus-fw-cfg-count", guests=[ept("smp_ipi.elf", "one", "-- cpus=1"),
                                       ept("smp_ipi.elf", "three", "vcpus=3 -- cpus=3")]),
    # Hostile: an INIT to the BSP itself (a reset umbra cannot do), a shadow guest's AP
    # start (real mode), too many vCPUs: each ends that guest alone, the witnesses run on.
    Test("vcpus-hostile-end-alone", run="FAIL", cpus=2,
         guests=[smp_ipi("init-self", extra="init_self",
                         expect=r"INIT IPI to the bootstrap processor \(vCPU 0\)"),
                 shadow("smp_ipi.elf", "s-init-self", "-- cpus=1 init_self",
                        expect=r"INIT IPI to the bootstrap processor \(vCPU 0\)"),
                 smp_ipi("s-ap-start", mmu=shadow,
                         expect=r"vCPU 1 got its start-up IPI \(vector 0x8\): it would start "
                                r"in real mode, which is not supported under shadow"),
                 Guest("hlt_timer.elf", "name=too-many vcpus=9", None),
                 ept("hlt_timer.elf", "witness"), shadow("memtest.elf", "s-witness")],
         log_must=[r"option 'vcpus': value '9' is outside 1\.\.8"]),
]
