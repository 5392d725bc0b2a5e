#!/usr/bin/env python3
"""Run every test of umbra and print one line per test, then 'N passed, N failed'.

Kinds of test:
  unit/NAME         host unit tests (tests/unit), built with ASan+UBSan
  fuzz/NAME         a short libFuzzer run over a kept corpus (tests/fuzz)
  layers            tools/layers.py: folders are layers, no include loop, one header per .c
  kvm-unit-tests    a subset of the stock suite under EPT and shadow (tools/kut.py --expect)
  NAME              integration tests (tests/integration.py): boot an ISO with the
                    hypervisor and guest kernels in Bochs (or QEMU, by BIOS or by
                    UEFI with OVMF), then judge the exit status, the serial log and,
                    for UEFI runs that ask, the text on a screenshot of the screen.
Tests run on as many workers as there are cores (Bochs is single-threaded).
  --linux           instead: the Linux guest tests (integration.LINUX_TESTS, `make linux`)
Usage: tools/testrun.py [--only SUBSTRING] [--jobs N] [--fuzz-seconds N] [--list] [--linux]
"""
import argparse
import concurrent.futures
import glob
import os
import re
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
OVMF = "/usr/share/ovmf/OVMF.fd"  # Debian's ovmf: firmware and variables in one image
sys.path.insert(0, os.path.join(ROOT, "tests"))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import integration  # noqa: E402  (tests/integration.py: the declarative test list)
import fbshot  # noqa: E402  (tools/fbshot.py: reads the console's text off a screenshot)


class Result:
    def __init__(self, name, ok, detail="", seconds=0.0, log=None):
        self.name, self.ok, self.detail, self.seconds, self.log = name, ok, detail, seconds, log


def unit_name(binary):
    """unit/NAME for test_NAME, unit/bench-NAME for the host benchmark bench_NAME."""
    kind, name = os.path.basename(binary).split("_", 1)
    return "unit/" + ("bench-" if kind == "bench" else "") + name


def run_unit(binary):
    name = unit_name(binary)
    start = time.time()
    p = subprocess.run([binary], capture_output=True, text=True, timeout=600)
    out = p.stdout + p.stderr
    m = re.search(r"^(\d+) passed, (\d+) failed$", p.stdout, re.M)
    counts = f"{m.group(1)} passed, {m.group(2)} failed" if m else "no summary line"
    ok = p.returncode == 0 and m is not None and m.group(2) == "0"
    if name.startswith("unit/bench-"):  # a benchmark: its exit status is the verdict
        counts, ok = "benchmark claims hold" if p.returncode == 0 else "a claim failed", \
            p.returncode == 0
    return Result(name, ok, counts, time.time() - start, None if ok else out)


def run_fuzz(binary, seconds):
    target = os.path.basename(binary)[len("fuzz_"):]
    name = "fuzz/" + target
    corpus = os.path.join(ROOT, "tests", "fuzz", "corpus", target)
    work = os.path.join(BUILD, "fuzz", "work-" + target)
    os.makedirs(work, exist_ok=True)
    start = time.time()
    # New inputs go to a scratch folder; the kept corpus is only read.
    p = subprocess.run([binary, f"-max_total_time={seconds}", "-print_final_stats=1",
                        f"-artifact_prefix={work}/", work, corpus],
                       capture_output=True, text=True, timeout=seconds + 300)
    out = p.stdout + p.stderr
    m = re.search(r"stat::number_of_executed_units:\s*(\d+)", out)
    execs = m.group(1) if m else "?"
    return Result(name, p.returncode == 0, f"{execs} executions in {seconds}s",
                  time.time() - start, None if p.returncode == 0 else out[-4000:])


def run_with_screenshot(cmd, serial, monitor, shot, timeout):
    """Run QEMU until the serial log says the run ended (the hypervisor then halts:
    exit=halt), take a screendump through the monitor and quit. Returns QEMU's exit
    status (0 after the quit, 137 on the time limit) and the screen's text lines."""
    for f in (monitor, shot):
        if os.path.exists(f):
            os.unlink(f)
    proc = subprocess.Popen(cmd + ["-monitor", f"unix:{monitor},server,nowait"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline and proc.poll() is None:
            if os.path.exists(serial) and b"run ended:" in open(serial, "rb").read():
                break
            time.sleep(0.2)
        if proc.poll() is not None or time.time() >= deadline:
            return (proc.returncode if proc.poll() is not None else 137), None
        time.sleep(0.5)  # the console draws the last line after sending it to serial
        with socket.socket(socket.AF_UNIX) as mon:
            mon.connect(monitor)
            mon.sendall(f"screendump {shot}\n".encode())
            for _ in range(50):  # the dump is written before the next command runs
                if os.path.exists(shot) and os.path.getsize(shot) > 0:
                    break
                time.sleep(0.1)
            time.sleep(0.2)
            mon.sendall(b"quit\n")
            proc.wait(timeout=30)
        return proc.returncode, fbshot.screen_text(shot) if os.path.exists(shot) else None
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()


def run_integration(test):
    start = time.time()
    folder = os.path.join(BUILD, "tests", test.name)
    os.makedirs(folder, exist_ok=True)
    iso = os.path.join(folder, "boot.iso")
    serial = os.path.join(folder, "serial.log")
    kernel = os.path.join(BUILD, "umbra.elf")
    modules = []
    for g in test.guests:
        # A kernel in build/ (the Linux guest) is in this run's build folder (BUILD).
        path = (os.path.join(BUILD, g.kernel[len("build/"):]) if g.kernel.startswith("build/")
                else os.path.join(ROOT, g.kernel) if "/" in g.kernel
                else os.path.join(BUILD, "guests", g.kernel))
        if not os.path.exists(path):
            return Result(test.name, False, f"guest kernel {os.path.relpath(path, ROOT)} is missing")
        modules += [path, g.args]
    subprocess.run([os.path.join(ROOT, "tools", "mkiso.sh"), iso, kernel, test.hv_args] + modules,
                   check=True, capture_output=True)
    screen = None
    if test.platform in ("qemu", "qemu-ovmf"):
        cmd = ["qemu-system-x86_64", "-accel", "tcg",
               "-cdrom", iso, "-display", "none", "-no-reboot", "-m", "256",
               "-serial", f"file:{serial}",
               "-device", "isa-debug-exit,iobase=0xf4,iosize=0x04"]
        if test.platform == "qemu-ovmf":
            cmd[1:1] = ["-bios", OVMF]
        if test.cpus > 1:
            cmd += ["-smp", str(test.cpus)]
    else:
        cmd = [os.path.join(ROOT, "tools", "bochs.sh"), iso, serial, str(test.timeout),
               test.cpu, str(test.megs), str(test.cpus)]
    if os.path.exists(serial):
        os.unlink(serial)
    if test.screen_must:
        status, screen = run_with_screenshot(cmd, serial, os.path.join(folder, "monitor.sock"),
                                             os.path.join(folder, "screen.ppm"), test.timeout)
    else:
        if cmd[0] == "qemu-system-x86_64":
            cmd = ["timeout", "-s", "KILL", str(test.timeout)] + cmd
        status = subprocess.run(cmd, capture_output=True, text=True).returncode
    log = open(serial, errors="replace").read() if os.path.exists(serial) else ""
    problems = test.judge(status, log, screen)
    return Result(test.name, not problems, "; ".join(problems) or f"exit {status}",
                  time.time() - start, log[-6000:] if problems else None)


def run_layers():
    """The layering rules of the source tree (tools/layers.py)."""
    start = time.time()
    p = subprocess.run([sys.executable, os.path.join(ROOT, "tools", "layers.py")],
                       capture_output=True, text=True, timeout=120)
    last = p.stdout.strip().splitlines()[-1] if p.stdout.strip() else "no output"
    return Result("layers", p.returncode == 0, last, time.time() - start,
                  None if p.returncode == 0 else p.stdout + p.stderr)


# kvm-unit-tests that make test runs (both modes), each well under a minute in Bochs; the
# long ones (access, vmexit) and the rest run in `make kut`. Non-PASS expectations, each
# with its reason: tests/kut/expected.txt.
KUT_MAKE_TEST = ["cmpxchg8b", "msr", "pmu", "pcid-enabled", "pcid-disabled",
                 "pcid-asymmetric", "xsave", "la57", "smap", "lam", "umip", "tsc_adjust",
                 "tsc", "idt_test", "eventinj", "emulator", "setjmp", "taskswitch",
                 "taskswitch2", "realmode", "s3"]


# The same on the other CPU models of make kut, cheap runs: emulator under EPT without EPT
# A/D bits; emulator, and real mode as virtual-8086 mode (realmode, s3), under shadow paging
# without unrestricted guest.
KUT_MAKE_TEST_CPUS = [("corei7_sandy_bridge_2600k", "ept", ["emulator"]),
                      ("corei5_lynnfield_750", "shadow", ["emulator", "realmode", "s3"])]


def run_kut():
    """The kvm-unit-tests subset above, under EPT and shadow (tools/kut.py --expect)."""
    start = time.time()
    sys.path.insert(0, os.path.join(ROOT, "tools"))
    import kut  # noqa: E402  (where the suite's source is: KUT_TARBALL or ../shared)
    if not os.path.exists(kut.TARBALL):
        # Not a pass: counted apart, and said why (the suite is test input, not in the repo).
        return Result("kvm-unit-tests", None, f"not run: no suite source at {kut.TARBALL} "
                      "(set KUT_TARBALL)", time.time() - start)
    base = [sys.executable, os.path.join(ROOT, "tools", "kut.py"),
            "--expect", os.path.join(ROOT, "tests", "kut", "expected.txt")]
    runs = [base + ["--mode", "both", "--out", os.path.join(BUILD, "kut", "make-test")] +
            KUT_MAKE_TEST]
    for cpu, mode, tests in KUT_MAKE_TEST_CPUS:
        runs.append(base + ["--cpu", cpu, "--mode", mode,
                            "--out", os.path.join(BUILD, "kut", "make-test-" + cpu)] + tests)
    ok, good, total, out = True, 0, 0, ""
    for cmd in runs:  # one after the other: kut.py runs one Bochs at a time
        p = subprocess.run(cmd, capture_output=True, text=True, timeout=3600)
        m = re.search(r"kut: (\d+) of (\d+) runs as expected", p.stdout)
        ok = ok and p.returncode == 0 and m is not None
        if m:
            good, total = good + int(m.group(1)), total + int(m.group(2))
        if p.returncode:
            out += (p.stdout + p.stderr)[-3000:]
    return Result("kvm-unit-tests", ok, f"{good} of {total} runs as expected",
                  time.time() - start, None if ok else out)


def run_bench_smoke():
    """The benchmark harness end to end on a small subset (tools/bench.py --smoke)."""
    start = time.time()
    p = subprocess.run([os.path.join(ROOT, "tools", "bench.py"), "--smoke"],
                       capture_output=True, text=True, timeout=1800)
    rows = [l for l in p.stdout.splitlines()[1:] if l.strip()]
    return Result("bench-smoke", p.returncode == 0 and len(rows) > 0,
                  f"{len(rows)} runs", time.time() - start,
                  None if p.returncode == 0 else p.stdout + p.stderr)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--only", default="")
    ap.add_argument("--jobs", type=int, default=os.cpu_count() or 2)
    ap.add_argument("--fuzz-seconds", type=int, default=int(os.environ.get("FUZZ_SECONDS", "60")))
    ap.add_argument("--list", action="store_true")
    ap.add_argument("--linux", action="store_true")
    args = ap.parse_args()

    if args.linux:
        jobs = [(t.name, run_integration, (t,)) for t in integration.LINUX_TESTS]
        return run_jobs([j for j in jobs if args.only in j[0]], args)
    # The kvm-unit-tests job is one long serial run: first, so that it is not the tail.
    jobs = [("kvm-unit-tests", run_kut, ()), ("layers", run_layers, ())]
    # Only binaries whose source still exists (a stale build/ must not vote). The host
    # benchmarks (bench_*) check their own claims and exit non-zero when one fails.
    for b in sorted(glob.glob(os.path.join(BUILD, "unit", "test_*")) +
                    glob.glob(os.path.join(BUILD, "unit", "bench_*"))):
        if not os.path.exists(os.path.join(ROOT, "tests", "unit", os.path.basename(b) + ".c")):
            continue
        jobs.append((unit_name(b), run_unit, (b,)))
    for b in sorted(glob.glob(os.path.join(BUILD, "fuzz", "fuzz_*"))):
        src = os.path.join(ROOT, "tests", "fuzz", os.path.basename(b) + ".c")
        if args.fuzz_seconds > 0 and os.path.exists(src) and os.access(b, os.X_OK):
            jobs.append(("fuzz/" + os.path.basename(b)[5:], run_fuzz, (b, args.fuzz_seconds)))
    for t in integration.TESTS:
        jobs.append((t.name, run_integration, (t,)))
    jobs.append(("bench-smoke", run_bench_smoke, ()))
    return run_jobs([j for j in jobs if args.only in j[0]], args)


def run_jobs(jobs, args):
    if args.list:
        for j in jobs:
            print(j[0])
        return 0

    passed = failed = skipped = 0
    with concurrent.futures.ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        futures = {pool.submit(fn, *a): name for name, fn, a in jobs}
        for f in concurrent.futures.as_completed(futures):
            try:
                r = f.result()
            except Exception as e:  # a broken test is a failed test, not a crash
                r = Result(futures[f], False, f"runner error: {e!r}")
            verdict = "SKIP" if r.ok is None else "PASS" if r.ok else "FAIL"
            print(f"{verdict} {r.name} ({r.detail}, {r.seconds:.1f}s)", flush=True)
            if r.ok is False and r.log:
                print("  | " + "\n  | ".join(r.log.rstrip().splitlines()[-40:]), flush=True)
            skipped += r.ok is None
            passed += r.ok is True
            failed += r.ok is False
    if skipped:
        print(f"({skipped} not run, counted neither way: see SKIP above)")
    print(f"{passed} passed, {failed} failed")
    return 1 if failed or not jobs else 0


if __name__ == "__main__":
    sys.exit(main())
