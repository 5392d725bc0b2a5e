#!/usr/bin/env python3
"""Run the stock kvm-unit-tests x86 suite as umbra guests in Bochs (docs/KUT.md).

Builds the suite once from its source tarball into build/kut/ (an x86_64 tree, and an
i386 tree for the 32-bit-only tests), reads x86/unittests.cfg, and boots each selected
1-CPU test kernel as the only guest of an umbra run in Bochs, under EPT and/or shadow
paging (`mem=128M mmu=MODE -- ARGS`). One Bochs at a time. Prints one line per
(test, mode), totals per mode and the most common causes of non-passes, and writes
build/kut/results.json.

Statuses: PASS (guest exit status 1), FAIL (3: some report() failed), SKIP (77: every
report() skipped), ABORT (127: the test aborted, e.g. an unhandled exception; or the
hypervisor ended the guest, or would not load it), TIMEOUT (Bochs killed at the time limit, or the
hypervisor's guest_timeout_ms), HV-PANIC (the hypervisor panicked, or the run never
reached a verdict). Only PASS counts as a pass.

Usage: tools/kut.py [TEST|GROUP|GLOB[:ARGS]]... [--mode ept|shadow|both] [--timeout S]
                    [--list] [--long] [--all] [--cpu MODEL]
Exit status: 0 when every test run passed or skipped, 1 otherwise, 2 on a setup error.
"""
import argparse
import fcntl
import fnmatch
import hashlib
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import tarfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
KUT = os.path.join(BUILD, "kut")
# The suite is test input, never part of the repository: by default the tarball beside the
# checkout (../shared/kvm-unit-tests/), or KUT_TARBALL.
TARBALL = os.environ.get("KUT_TARBALL", os.path.normpath(os.path.join(
    ROOT, "..", "shared", "kvm-unit-tests", "kvm-unit-tests-1da1819e.tar.gz")))
KERNEL = os.path.join(BUILD, "umbra.elf")
MEM = "128M"  # access writes at 32/33 MiB, smap/pku reserve 32 MiB and more
MAX_VCPUS = 8  # umbra's vcpus=N limit: an entry's -smp N becomes vcpus=N
HOST_CPUS = 1  # Bochs CPUs (--host-cpus): the guest's vCPUs time-share them
# The hypervisor's own limit is set out of the way (its maximum, an hour of guest time):
# the wall-clock --timeout decides, the same way for every test.
HV_ARGS = "guest_timeout_ms=3600000"
DEFAULT_TIMEOUT = 300
# Bochs CPU model (tools/bochs.sh). Runs on another model are keyed MODE@MODEL in results and
# in the expected-results file. SECOND_CPU has EPT without A/D bits, NO_UG_CPU has no
# unrestricted guest, so umbra runs only shadow guests on it (../shared/platform/bochs.md).
DEFAULT_CPU = "corei7_skylake_x"
SECOND_CPU = "corei7_sandy_bridge_2600k"
NO_UG_CPU = "corei5_lynnfield_750"

# Tests that take very long in Bochs (each Bochs instruction is a TSC tick; a VM exit
# costs ~5 us of wall time). Per test: a longer time limit per mode, and whether the
# test is left out of the default selection (named explicitly, or --long, runs it).
#   access: 1.9 M permutations; ~1 min under EPT (1.43 G guest TSC, 3.4 K exits), ~10 min
#           under shadow paging (10.6 G guest TSC, 4.85 M exits), where nearly every
#           permutation faults into the shadow MMU. Both modes run by default.
#   sieve:  three sieves up to 100 M; 4-9 min per mode with the host's load (300 s was
#           too short on a loaded machine).
#   vmexit_*: each sub-test loops until 2^30 guest TSC cycles have passed, ~250 s per
#           sub-test. vmexit_cpuid (the plainest exit) stays in the default set as the
#           representative; the other seven measure other exits the same way.
LONG = {
    "access": {"timeout": {"ept": 600, "shadow": 1500}, "default": {"ept", "shadow"},
               "why": "1.9 M permutations: ~1 min under EPT, ~10 min under shadow"},
    "sieve": {"timeout": {"ept": 900, "shadow": 900}, "default": {"ept", "shadow"},
              "why": "sieves up to 100 M three times: 4-9 min of Bochs per mode"},
    "vmexit_cpuid": {"timeout": {"ept": 600, "shadow": 600}, "default": {"ept", "shadow"},
                     "why": "loops for 2^30 TSC cycles (~250 s)"},
}
for _sub in ("vmcall", "mov_from_cr8", "mov_to_cr8", "inl_pmtimer", "ple_round_robin",
             "tscdeadline", "tscdeadline_immed"):
    LONG["vmexit_" + _sub] = {"timeout": {"ept": 600, "shadow": 600}, "default": set(),
                              "why": "loops for 2^30 TSC cycles (~250 s); vmexit_cpuid "
                                     "represents the group by default"}

STATUS_ORDER = ["PASS", "FAIL", "SKIP", "ABORT", "TIMEOUT", "HV-PANIC"]


def log(msg):
    print(msg, flush=True)


# --------------------------------------------------------------------------------------
# Building the suite (once per tarball and architecture, cached under build/kut/)
# --------------------------------------------------------------------------------------
def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def suite_tree(arch, jobs):
    """Path of the built tree for arch (x86_64 or i386); builds it if needed."""
    tree = os.path.join(KUT, "src-" + arch)
    stamp = os.path.join(tree, ".umbra-kut-built")
    want = f"{os.path.basename(TARBALL)} {sha256(TARBALL)} --arch={arch}\n"
    if os.path.exists(stamp) and open(stamp).read() == want:
        return tree
    log(f"kut: building kvm-unit-tests ({arch}) from {TARBALL} into {os.path.relpath(tree)}")
    start = time.time()
    shutil.rmtree(tree, ignore_errors=True)
    tmp = tree + ".tmp"
    shutil.rmtree(tmp, ignore_errors=True)
    os.makedirs(tmp)
    with tarfile.open(TARBALL) as t:
        t.extractall(tmp)
    tops = os.listdir(tmp)
    if len(tops) != 1:
        raise RuntimeError(f"{TARBALL}: expected one top-level folder, found {tops}")
    os.rename(os.path.join(tmp, tops[0]), tree)
    os.rmdir(tmp)
    out = os.path.join(KUT, f"build-{arch}.log")
    with open(out, "w") as f:
        for cmd in (["./configure", f"--arch={arch}"], ["make", f"-j{jobs}"]):
            if subprocess.run(cmd, cwd=tree, stdout=f, stderr=subprocess.STDOUT).returncode:
                raise RuntimeError(f"{' '.join(cmd)} failed in {tree}; see {out}")
    with open(stamp, "w") as f:
        f.write(want)
    log(f"kut: built {len([n for n in os.listdir(os.path.join(tree, 'x86')) if n.endswith('.flat')])}"
        f" test kernels ({arch}) in {time.time() - start:.0f}s")
    return tree


def cfg_tree(jobs):
    """unittests.cfg comes from the x86_64 tree (the same file in both)."""
    return suite_tree("x86_64", jobs)


# --------------------------------------------------------------------------------------
# x86/unittests.cfg
# --------------------------------------------------------------------------------------
class Entry:
    def __init__(self, name):
        self.name, self.file, self.smp, self.args, self.arch = name, "", "1", "", ""
        self.groups, self.params, self.accel, self.check = [], "", "", ""

    @property
    def ncpus(self):
        try:
            return int(self.smp)
        except ValueError:  # an expression such as $MAX_SMP: more than one
            return 99

    @property
    def tree_arch(self):
        return "i386" if self.arch == "i386" else "x86_64"


def unquote(v):
    v = v.strip()
    if len(v) >= 2 and v[0] == v[-1] and v[0] in "'\"":
        return v[1:-1]
    return v


def parse_cfg(path):
    """Entries of unittests.cfg in file order. test_args, or (older files) the -append
    and -smp of extra_params/qemu_params, give the arguments and the CPU count."""
    entries, cur, lines = [], None, open(path).read().splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].strip()
        i += 1
        if not line or line.startswith("#"):
            continue
        m = re.match(r"^\[(.*)\]$", line)
        if m:
            cur = Entry(m.group(1))
            entries.append(cur)
            continue
        m = re.match(r"^(\w+)\s*=\s*(.*)$", line)
        if not m or cur is None:
            continue
        key, val = m.group(1), m.group(2)
        if val.startswith('"""'):  # multi-line value
            val = val[3:]
            while '"""' not in val and i < len(lines):
                val += " " + lines[i].strip()
                i += 1
            val = val.split('"""')[0]
        if key == "file":
            cur.file = val.strip()
        elif key == "smp":
            cur.smp = val.strip()
        elif key == "test_args":
            cur.args = unquote(val)
        elif key in ("extra_params", "qemu_params"):
            cur.params = val
            a = re.search(r"-append\s+('[^']*'|\"[^\"]*\"|\S+)", val)
            if a and not cur.args:
                cur.args = unquote(a.group(1))
            s = re.search(r"-smp\s+(\S+)", val)
            if s:
                cur.smp = s.group(1).split(",")[0]
        elif key == "arch":
            cur.arch = val.strip()
        elif key == "groups":
            cur.groups = val.split()
        elif key == "accel":
            cur.accel = val.strip()
        elif key == "check":
            cur.check = val.strip()
    return entries


def read_expected(path):
    """{(test, mode): (status, why)} from an expected-results file: one line per run that
    is not a PASS, 'TEST MODE STATUS  why...'; '#' starts a comment line. A run not listed
    is expected to PASS."""
    out = {}
    for n, line in enumerate(open(path), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        parts = line.split(None, 3)
        if len(parts) < 4 or parts[1].split("@")[0] not in ("ept", "shadow") or \
                parts[2] not in STATUS_ORDER:
            raise SystemExit(f"kut: {path}:{n}: want 'TEST ept|shadow[@MODEL] STATUS why', "
                             f"got {line!r}")
        out[(parts[0], parts[1])] = (parts[2], parts[3])
    return out


def compare_expected(results, expected):
    """Lines for every run whose status differs from the expected one (empty: all as expected)."""
    out = []
    for r in results:
        want, why = expected.get((r.test, r.key), ("PASS", ""))
        if r.status != want:
            out.append(f"{r.test} {r.key}: {r.status}, expected {want}"
                       + (f" ({why})" if why else "") + (f": {r.cause}" if r.cause else ""))
    return out


def select(entries, selectors, with_long, with_all, quick=False):
    """(entry, display name, args, modes-or-None) to run. No selectors: every 1-CPU entry except the
    'nodefault' group and the long ones (LONG), as run_tests.sh does without -a.
    A selector is a test name, a group name or a glob, optionally NAME:ARGS to replace
    the arguments (e.g. 'vmx:vmx_cr_test'); named tests run whatever their group."""
    one_cpu = [e for e in entries if e.ncpus == 1]  # the default suite stays 1-CPU
    if not selectors:
        picked = []
        for e in one_cpu:
            if "nodefault" in e.groups and not with_all:
                continue
            modes = None
            if e.name in LONG and quick:
                continue
            if e.name in LONG and not with_long:
                modes = LONG[e.name]["default"]
                if not modes:
                    continue
            picked.append((e, e.name, e.args, modes))
        return picked
    picked, seen = [], set()
    for sel in selectors:
        name, _, args = sel.partition(":")
        hits = [e for e in entries if e.name == name] or \
               [e for e in entries if name in e.groups] or \
               [e for e in entries if fnmatch.fnmatchcase(e.name, name)]
        if not hits:
            raise SystemExit(f"kut: no test, group or pattern '{name}' in unittests.cfg "
                             f"(tools/kut.py --list shows them)")
        files = set()
        for e in hits:
            if not 1 <= e.ncpus <= MAX_VCPUS:
                if e.name == name:
                    log(f"kut: {e.name} needs {e.smp} CPUs; umbra guests have at most "
                        f"{MAX_VCPUS}: not run")
                continue
            if ":" in sel:  # new arguments: once per kernel file
                if e.file not in files:
                    files.add(e.file)
                    stem = os.path.splitext(e.file)[0]
                    label = sel if len({h.file for h in hits}) == 1 else f"{stem}:{args}"
                    if label not in seen:
                        seen.add(label)
                        picked.append((e, label, args, None))
            elif e.name not in seen:
                seen.add(e.name)
                picked.append((e, e.name, e.args, None))
    return picked


# --------------------------------------------------------------------------------------
# One run: ISO (tools/mkiso.sh), Bochs (tools/bochs.sh), then the serial log judged
# --------------------------------------------------------------------------------------
def mode_key(mode, cpu):
    """'ept' on the default CPU model, 'ept@MODEL' on another."""
    return mode if cpu == DEFAULT_CPU else f"{mode}@{cpu}"


class Result:
    def __init__(self, test, mode, args, cpu=DEFAULT_CPU):
        self.test, self.mode, self.args, self.cpu = test, mode, args, cpu
        self.key = mode_key(mode, cpu)
        self.status, self.detail, self.cause = "HV-PANIC", "", ""
        self.exit_status = None
        self.fail_count, self.fail_lines, self.hv_notes = None, [], []
        self.ended, self.summary, self.seconds, self.folder = "", "", 0.0, ""
        # From the hypervisor's 'stats NAME run' line: VM exits, and the guest's own TSC
        # ticks (Bochs: instructions), which unlike seconds do not depend on host load.
        self.exits, self.guest_tsc = None, None

    def json(self):
        return {k: getattr(self, k) for k in
                ("test", "mode", "cpu", "args", "status", "exit_status", "detail", "cause",
                 "fail_count", "fail_lines", "hv_notes", "ended", "summary", "seconds",
                 "exits", "guest_tsc", "folder")}


def guest_name(entry):
    """argv[0] of the test, and its name in the log: the kernel's name (QEMU passes the
    kernel path; the hypervisor allows 23 characters)."""
    n = re.sub(r"[^A-Za-z0-9_.-]", "_", os.path.splitext(os.path.basename(entry.file))[0])
    return n[:23] or "kut"


def normalize(s):
    """A cause without addresses, so equal causes group together."""
    s = re.sub(r"\b(RIP|rip|ip|at) (0x)?[0-9a-fA-F]{4,}\b", r"\1 ...", s)
    s = re.sub(r"guest-physical 0x[0-9a-f]+", "guest-physical ...", s)
    return s


def insn_at(elf, addr):
    """The instruction at addr in the test's ELF as objdump spells it ('' if unknown)."""
    try:
        p = subprocess.run(["objdump", "-d", "--no-show-raw-insn", f"--start-address={addr:#x}",
                            f"--stop-address={addr + 16:#x}", elf],
                           capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return ""
    for line in p.stdout.splitlines():
        m = re.match(rf"\s*{addr:x}:\s+(.*)$", line)
        if m:
            return " ".join(m.group(1).split())
    return ""


def mnemonic(insn):
    """'repz cmpsb %es:(%rdi),%ds:(%rsi)' -> 'repz cmpsb': what groups equal causes."""
    words = insn.split()
    if len(words) > 1 and words[0] in ("rep", "repz", "repe", "repnz", "repne", "lock",
                                       "data16", "addr32", "rex.W"):
        return " ".join(words[:2])
    return words[0] if words else ""


def judge(r, name, bochs_status, log_text, timeout, elf=None):
    q = re.escape(name)
    guest_lines = re.findall(rf"^\[[ \d.]+\] {q}: (.*)$", log_text, re.M)
    notes = [l for l in re.findall(rf"^\[[ \d.]+\] hv: {q}: (.*)$", log_text, re.M)
             if not re.match(r"(ended:|.* image, entry )", l)]
    r.hv_notes = notes[:12]
    m = re.search(rf"^\[[ \d.]+\] hv: {q}: ended: (.*) \(status (\d+)\)$", log_text, re.M)
    if m:
        r.ended, r.exit_status = m.group(1), int(m.group(2))
    st = re.search(rf"hv: stats {q} run .*\bexits=(\d+) guest_tsc=(\d+)", log_text)
    if st:
        r.exits, r.guest_tsc = int(st.group(1)), int(st.group(2))
    s = re.search(r"^SUMMARY: (.*)$", "\n".join(guest_lines), re.M)
    r.summary = s.group(1) if s else ""
    r.fail_lines = [l for l in guest_lines if l.startswith("FAIL")]
    f = re.search(r"(\d+) unexpected failures", r.summary)
    r.fail_count = int(f.group(1)) if f else len(r.fail_lines)
    panic = re.search(r"^\[[ \d.]+\] hv: (PANIC.*|run ended: HV-ERROR.*)$", log_text, re.M)
    # The hypervisor's last remark (e.g. an MSR it refused) is the likely trigger.
    last_note = notes[-1] if notes else ""
    # What the test said when it gave up: an unhandled exception, an assertion, abort().
    said = next((l for l in guest_lines if re.search(
        r"Unhandled exception|Assertion|assert|abort|panic|Unexpected|unexpected", l)), "")

    load = re.search(rf"^\[[ \d.]+\] hv: error: {q}: (.*)$", log_text, re.M)

    if panic:
        r.status, r.detail = "HV-PANIC", panic.group(1)
        r.cause = "hypervisor: " + normalize(panic.group(1))
    elif r.exit_status == 1:
        r.status, r.detail = "PASS", r.summary or "exit status 1"
    elif r.exit_status == 3:
        r.status = "FAIL"
        r.detail = f"{r.fail_count} failed" + (f" ({r.summary})" if r.summary else "") + \
            "".join(f"; {l}" for l in r.fail_lines[:3])
        r.cause = "FAIL: " + (r.fail_lines[0][5:].strip() if r.fail_lines else "?")
    elif r.exit_status == 77:
        r.status, r.detail = "SKIP", r.summary or "exit status 77"
    elif r.exit_status is not None and re.search(r"guest_timeout_ms", r.ended):
        r.status, r.detail = "TIMEOUT", "hypervisor: " + r.ended
        r.cause = "timeout"
    elif r.exit_status is not None:
        # 127: the test aborted itself; 0: the hypervisor ended it; anything else: odd.
        r.status = "ABORT"
        if r.exit_status == 0:
            r.detail = "hypervisor ended it: " + r.ended
            r.cause = "hypervisor: " + normalize(r.ended)
            rip = re.search(r"RIP (0x[0-9a-f]+)", r.ended)
            insn = insn_at(elf, int(rip.group(1), 16)) if rip and elf else ""
            if insn:
                r.detail += f" [{insn}]"
                if "emulate" in r.ended:
                    r.cause += f" [{mnemonic(insn)}]"
        else:
            r.detail = f"exit status {r.exit_status}" + (f": {said}" if said else "")
            r.cause = (normalize(said) if said else f"exit status {r.exit_status}")
            # An unhandled exception: name the instruction, and for RDMSR/WRMSR the MSR
            # (ECX of the register dump) with the hypervisor's line about it.
            x = re.search(r"Unhandled exception (\d+) (#\w+)\S* at ip ([0-9a-f]+)", said)
            insn = insn_at(elf, int(x.group(3), 16)) if x and elf else ""
            if x and insn:
                r.detail += f" [{insn}]"
                r.cause = f"{x.group(2)} on {mnemonic(insn)}"
                rcx = re.search(r"\brcx=([0-9a-f]+)", "\n".join(guest_lines))
                if mnemonic(insn) in ("wrmsr", "rdmsr") and rcx:
                    msr = int(rcx.group(1), 16) & 0xffffffff
                    r.cause += f" of MSR {msr:#x}"
                    note = next((n for n in notes if f"MSR {msr:#x} " in n), "")
                    if note:
                        r.detail += f"; hv: {note}"
                        r.cause = "hv: " + note
            elif last_note:
                r.detail += f"; hv (last): {last_note}"
        if r.summary:
            r.detail += f" (after {r.summary})"
    elif load:  # the hypervisor refused the image or its options: never ran
        r.status, r.detail = "ABORT", "hypervisor did not start it: " + load.group(1)
        r.cause = "hypervisor: " + normalize(re.sub(r"0x[0-9a-f]+-0x[0-9a-f]+", "...",
                                                    load.group(1)))
    elif bochs_status in (137, -9):
        r.status = "TIMEOUT"
        last = guest_lines[-1] if guest_lines else "no output"
        r.detail = f"killed after {timeout}s; last line: {last}"
        r.cause = "timeout"
    else:
        last = log_text.strip().splitlines()[-1] if log_text.strip() else "empty serial log"
        r.status = "HV-PANIC"
        r.detail = f"no verdict (Bochs exit {bochs_status}); last line: {last}"
        r.cause = "no verdict from the hypervisor"


def kill_tree(pid, keep_root=False):
    """SIGKILL pid's descendants (bochs.sh -> timeout, in its own process group ->
    bochs), and pid too unless keep_root: only the processes this run started."""
    children = {}
    for d in os.listdir("/proc"):
        try:
            with open(f"/proc/{d}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(d))
        except (ValueError, OSError, IndexError):
            continue
    todo, tree = [pid], []
    while todo:
        p = todo.pop()
        tree.append(p)
        todo += children.get(p, [])
    for p in reversed(tree[1:] if keep_root else tree):
        try:
            os.kill(p, signal.SIGKILL)
        except OSError:
            pass


# KVM module parameters that unittests.cfg 'check' lines require and that are off by
# default: opt-in KVM features with no counterpart in umbra. run_tests.sh skips an entry
# whose check is not met, and so does kut.py for these. Other checks (enable_pmu=Y,
# ignore_msrs=N: KVM's defaults) are taken as met.
KVM_OPT_IN = ("enable_vmware_backdoor", "allow_smaller_maxphyaddr")


def opt_in_check(entry):
    return any(f"/{p}=" in entry.check for p in KVM_OPT_IN)


def unmet_check(entry, tname, args, mode, cpu):
    """A SKIP for an entry whose check names a KVM opt-in parameter (KVM_OPT_IN)."""
    r = Result(tname, mode, args, cpu)
    r.status = "SKIP"
    r.detail = f"unittests.cfg check {entry.check} not met (a KVM opt-in module parameter, " \
               "off by default; no counterpart in umbra)"
    return r


def run_one(entry, tname, args, mode, timeout, tree, keep_iso, kernel_elf, out, hv_args, cpu):
    name = guest_name(entry)
    r = Result(tname, mode, args, cpu)
    folder = os.path.join(out, "runs", r.key, re.sub(r"[^A-Za-z0-9_.-]", "_", tname))
    r.folder = os.path.relpath(folder, ROOT)
    shutil.rmtree(folder, ignore_errors=True)
    os.makedirs(folder)
    kernel = os.path.join(tree, "x86", entry.file)
    vcpus = f" vcpus={entry.ncpus}" if entry.ncpus > 1 else ""
    guest = f"name={name} mem={MEM} mmu={mode}{vcpus}" + (f" -- {args}" if args else "")
    if len(guest) > 500:  # BOOT_CMDLINE_MAX (512) with the module path
        r.status, r.detail = "ABORT", f"module command line too long ({len(guest)} chars)"
        r.cause = "command line too long for umbra"
        return r
    if not os.path.exists(kernel):
        r.status, r.detail, r.cause = "ABORT", f"{kernel} was not built", "not built"
        return r
    iso, serial = os.path.join(folder, "boot.iso"), os.path.join(folder, "serial.log")
    start = time.time()
    p = subprocess.run([os.path.join(ROOT, "tools", "mkiso.sh"), iso, kernel_elf, hv_args,
                        kernel, guest], capture_output=True, text=True)
    if p.returncode:
        raise RuntimeError(f"mkiso.sh failed: {p.stderr.strip()}")
    bochs = subprocess.Popen([os.path.join(ROOT, "tools", "bochs.sh"), iso, serial,
                              str(timeout), cpu, "512", str(HOST_CPUS)],
                             stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL)
    try:
        status = bochs.wait()
    finally:  # interrupted: take this run's Bochs down with us, not leave it running
        if bochs.poll() is None:
            kill_tree(bochs.pid, keep_root=True)  # bochs.sh then cleans up after itself
            try:
                bochs.wait(timeout=15)
            except subprocess.TimeoutExpired:
                kill_tree(bochs.pid)
    r.seconds = round(time.time() - start, 1)
    if not keep_iso:
        os.unlink(iso)
    text = open(serial, errors="replace").read() if os.path.exists(serial) else ""
    judge(r, name, status, text, timeout, os.path.splitext(kernel)[0] + ".elf")
    return r


# --------------------------------------------------------------------------------------
def main():
    ap = argparse.ArgumentParser(
        description="kvm-unit-tests (x86) as umbra guests in Bochs; see docs/KUT.md",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="Selectors: a test name from x86/unittests.cfg (access), a group (vmexit), "
               "a glob (pcid-*), optionally with ':ARGS' replacing the test's arguments "
               "(vmx:vmx_cr_test). Named tests always run, long or nodefault ones too.")
    ap.add_argument("tests", nargs="*", help="tests to run (default: the 1-CPU suite)")
    ap.add_argument("--mode", choices=["ept", "shadow", "both"], default="both")
    ap.add_argument("--timeout", type=int, default=DEFAULT_TIMEOUT,
                    help=f"seconds per Bochs run (default {DEFAULT_TIMEOUT}; long tests "
                         "get at least their own limit)")
    ap.add_argument("--list", action="store_true", help="list the tests and exit")
    ap.add_argument("--long", action="store_true",
                    help="also run the long tests left out by default (access under "
                         "shadow, the vmexit sub-tests besides cpuid)")
    ap.add_argument("--all", action="store_true", help="also run 'nodefault' tests")
    ap.add_argument("--quick", action="store_true",
                    help="leave out every long test (access, vmexit_*): what make test runs")
    ap.add_argument("--expect", metavar="FILE",
                    help="expected results (tests/kut/expected.txt): exit 0 only if every "
                         "run ends as that file says (a run not listed must PASS)")
    ap.add_argument("--jobs", type=int, default=2, help="make -j for the suite build (2)")
    ap.add_argument("--kernel", default=KERNEL,
                    help="hypervisor image to boot (default build/umbra.elf)")
    ap.add_argument("--out", default=KUT,
                    help="where runs/MODE/TEST/ and results.json go (default build/kut)")
    ap.add_argument("--hv-args", default="",
                    help="more hypervisor options, e.g. 'log=debug' or 'guest_timeout_ms="
                         "200000' (a guest-time limit: the hypervisor then names the last "
                         "exits of a guest it ends)")
    ap.add_argument("--cpu", default=DEFAULT_CPU, metavar="MODEL",
                    help=f"Bochs CPU model (default {DEFAULT_CPU}); results are keyed "
                         f"MODE@MODEL on another model. make kut also runs access and "
                         f"emulator on {SECOND_CPU} (EPT without A/D bits) and emulator on "
                         f"{NO_UG_CPU} (no unrestricted guest: shadow only)")
    ap.add_argument("--keep-iso", action="store_true", help="keep each run's boot.iso")
    ap.add_argument("--host-cpus", type=int, default=1, metavar="N",
                    help="Bochs CPUs (default 1): an SMP entry's vCPUs run on N host CPUs")
    args = ap.parse_args()
    global HOST_CPUS
    HOST_CPUS = args.host_cpus
    # SIGTERM ends the run like Ctrl-C: the current Bochs is killed, results so far kept.
    signal.signal(signal.SIGTERM, signal.default_int_handler)

    os.makedirs(KUT, exist_ok=True)
    if not os.path.exists(TARBALL):
        log(f"kut: {TARBALL} not found (set KUT_TARBALL)")
        return 2
    lock = open(os.path.join(KUT, ".lock"), "w")
    try:  # one kut run (hence one Bochs) at a time per build folder
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        log(f"kut: another tools/kut.py is running on {KUT}")
        return 2
    try:
        tree64 = cfg_tree(max(1, min(args.jobs, 2)))
    except (RuntimeError, OSError) as e:
        log(f"kut: {e}")
        return 2
    entries = parse_cfg(os.path.join(tree64, "x86", "unittests.cfg"))
    picked = select(entries, args.tests, args.long, args.all, args.quick)
    expected = read_expected(args.expect) if args.expect else None
    modes = ["ept", "shadow"] if args.mode == "both" else [args.mode]

    if args.list and args.tests:
        for e, tname, targs, _ in picked:
            print(f"* {tname:42} {'i386 ' if e.tree_arch == 'i386' else ''}{e.file}"
                  + (f" -- {targs}" if targs else ""))
        return 0
    if args.list:
        chosen = {e.name for e, _, _, _ in picked}
        for e in entries:
            notes = []
            if e.ncpus != 1:
                notes.append(f"smp={e.smp}: vcpus={e.smp}, by name only" if e.ncpus <= MAX_VCPUS
                             else f"smp={e.smp}: not run (more than {MAX_VCPUS} vCPUs)")
            if "nodefault" in e.groups:
                notes.append("nodefault (--all)")
            if e.name in LONG:
                d = LONG[e.name]
                notes.append("long: " + d["why"] + "; default modes: " +
                             (",".join(sorted(d["default"])) or "none (--long)"))
            mark = "*" if e.name in chosen else " "
            tree = "i386 " if e.tree_arch == "i386" else ""
            print(f"{mark} {e.name:42} {tree}{e.file}"
                  + (f" -- {e.args}" if e.args else "") + ("   [" + "; ".join(notes) + "]"
                                                           if notes else ""))
        print(f"({len(chosen)} selected, marked *)")
        return 0
    if not os.path.exists(args.kernel):
        log(f"kut: {args.kernel} is missing (make {os.path.relpath(args.kernel, ROOT)})")
        return 2

    hv_args = args.hv_args if "guest_timeout_ms=" in args.hv_args else \
        (HV_ARGS + " " + args.hv_args).strip()
    trees = {"x86_64": tree64}
    results, t0 = [], time.time()
    os.makedirs(args.out, exist_ok=True)
    out_json = os.path.join(args.out, "results.json")
    meta = {"tarball": os.path.basename(TARBALL), "hv_args": hv_args, "mem": MEM,
            "kernel": os.path.relpath(args.kernel, ROOT),
            "umbra_commit": subprocess.run(["git", "-C", ROOT, "describe", "--always",
                                            "--dirty"], capture_output=True,
                                           text=True).stdout.strip(),
            "started": time.strftime("%Y-%m-%d %H:%M:%S"), "modes": modes, "cpu": args.cpu,
            "selection": args.tests or "default"}
    log(f"kut: {len(picked)} tests x {modes}, umbra {meta['umbra_commit']}, "
        f"logs in {os.path.relpath(os.path.join(args.out, 'runs'), ROOT)}/MODE/TEST/")
    for e, tname, targs, only_modes in picked:
        try:
            tree = trees.get(e.tree_arch) or trees.setdefault(
                e.tree_arch, suite_tree(e.tree_arch, max(1, min(args.jobs, 2))))
        except (RuntimeError, OSError) as err:
            log(f"kut: {err}")
            return 2
        for mode in modes:
            if only_modes is not None and mode not in only_modes:
                continue
            limit = max(args.timeout, LONG.get(e.name, {}).get("timeout", {}).get(mode, 0))
            if opt_in_check(e):
                r = unmet_check(e, tname, targs, mode, args.cpu)
            else:
                r = run_one(e, tname, targs, mode, limit, tree, args.keep_iso, args.kernel,
                            args.out, hv_args, args.cpu)
            results.append(r)
            log(f"{r.status:8} {tname:34} {r.key:6} {r.seconds:6.1f}s  {r.detail}")
            with open(out_json, "w") as f:
                json.dump({"meta": meta, "results": [x.json() for x in results]}, f, indent=1)

    elapsed = time.time() - t0
    log("")
    totals = {}
    for mode in [mode_key(m, args.cpu) for m in modes]:
        rs = [r for r in results if r.key == mode]
        counts = {s: sum(r.status == s for r in rs) for s in STATUS_ORDER}
        secs = sum(r.seconds for r in rs)
        totals[mode] = dict(counts, runs=len(rs), seconds=round(secs, 1))
        log(f"{mode:6}: " + ", ".join(f"{counts[s]} {s}" for s in STATUS_ORDER)
            + f"  ({len(rs)} runs, {secs:.0f}s)")
    causes = {}
    for r in results:
        if r.status not in ("PASS", "SKIP"):
            causes.setdefault(r.cause or r.status, []).append(f"{r.test}/{r.key}")
    if causes:
        log("\nmost common causes (runs blocked):")
        for c, who in sorted(causes.items(), key=lambda kv: -len(kv[1]))[:15]:
            log(f"  {len(who):3}  {c}")
    meta["seconds"] = round(elapsed, 1)
    with open(out_json, "w") as f:
        json.dump({"meta": meta, "totals": totals,
                   "causes": {c: w for c, w in sorted(causes.items(), key=lambda kv: -len(kv[1]))},
                   "results": [x.json() for x in results]}, f, indent=1)
    log(f"\nkut: {len(results)} runs in {elapsed:.0f}s; {os.path.relpath(out_json, ROOT)}")
    if expected is not None:
        diff = compare_expected(results, expected)
        for line in diff:
            log(f"unexpected: {line}")
        log(f"kut: {len(results) - len(diff)} of {len(results)} runs as expected "
            f"({os.path.relpath(args.expect, ROOT)})")
        return 1 if diff else 0
    return 0 if all(r.status in ("PASS", "SKIP") for r in results) else 1


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        log("kut: interrupted (its Bochs killed); results so far in results.json")
        sys.exit(130)
