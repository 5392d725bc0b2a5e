"""Benchmark definitions for tools/bench.py (`make bench`).

A workload is a guest kernel doing a fixed amount of guest work (not a fixed time).
A configuration is how the hypervisor virtualises its memory (EPT or shadow paging, and
the shadow MMU's policies). Every workload runs under every configuration; all
workloads of one configuration share one boot (they are separate guests, and each
guest's figures are its own: its clock stops while others run).

Figures come from the hypervisor's `stats` lines and are deterministic in Bochs, whose
TSC counts instructions: exits by reason, shadow faults, emulated writes, shadow pages
created/zapped, guest TSC ticks to finish, hypervisor ticks per exit kind.
"""


from integration import LINUX_CMDLINE


class Workload:
    """kernel: a file in build/guests, or a path under the build folder when it has a '/'.
    A workload with an initrd, its own configs, Bochs memory or hypervisor arguments (the
    Linux guest) boots alone; its rows go to the table named by `table`."""
    def __init__(self, name, kernel, args="", mem="32M", what="", initrd=None, configs=None,
                 megs=512, hv_args="", timeout=1800, table="main"):
        self.name, self.kernel, self.args, self.mem, self.what = name, kernel, args, mem, what
        self.initrd, self.configs, self.megs, self.hv_args = initrd, configs, megs, hv_args
        self.timeout, self.table = timeout, table

    @property
    def alone(self):
        return self.table != "main"


class Config:
    """default: part of every workload's runs (a workload with its own configs lists it)."""
    def __init__(self, name, mmu, guest_opts="", hv_args="", what="", default=True):
        self.name, self.mmu, self.guest_opts, self.hv_args, self.what = (
            name, mmu, guest_opts, hv_args, what)
        self.default = default


# Shadow limit (host frames) for the Linux reclaim rows: small enough that CLOCK and FIFO
# evict (the default, 4% of 256 MiB, never does), chosen from measurement (BENCHMARKS.md).
LINUX_LIMIT = 256


WORKLOADS = [
    Workload("compute", "bench_compute.elf",
             what="integer hash over a 4 KiB buffer, 110M instructions, no paging changes "
                  "(baseline: EPT and shadow should be equal)"),
    Workload("fork", "bench_fork.elf",
             what="128 fork/run/exit cycles: new root sharing the kernel half, 32-page COW "
                  "image, COW and demand-zero faults, tables cleared with REP STOS and reused"),
    Workload("randwalk", "bench_randwalk.elf",
             what="32768 random accesses over 64 MiB of 4 KiB mappings (8 MiB of frames, "
                  "aliased): large working set, TLB and shadow-table misses"),
    Workload("churn", "bench_churn.elf",
             what="160 mmap/munmap rounds of 1-191 pages at random addresses: new page "
                  "tables, unmap by INVLPG, REP STOS or XCHG, empty tables freed"),
    Workload("hotcold", "bench_hotcold.elf",
             what="8 hot address spaces revisited plus 64 cold ones used once, 1 visit in 4 "
                  "cold (the shadow reclaim study's workload)"),
    Workload("timer", "hlt_timer.elf",
             what="halts waiting for PIT interrupts (exit-bound, almost no memory traffic)"),
    # `make linux` builds it (tools/linux.sh); the same run as the linux-ept-and-shadow
    # test. Its guest time is 1.8-7 G instructions: guest_timeout_ms covers 50 MHz ticks.
    Workload("linux", "linux/vmlinux", args=LINUX_CMDLINE, mem="256M",
             initrd="linux/initrd.cpio", megs=1024, hv_args="guest_timeout_ms=900000",
             timeout=3600, table="linux",
             configs=["ept", "shadow", "sh-flood-off", f"sh-clock-{LINUX_LIMIT}",
                      f"sh-fifo-{LINUX_LIMIT}"],
             what="Debian's 6.1 kernel (vmlinux) and a busybox initramfs whose /init runs "
                  "tests/linux/workload.sh: 200 fork+exec, a 16 MiB tmpfs file written, "
                  "copied and checksummed, four processes churning 1 MiB mappings; its "
                  "digest must be the build machine's"),
]

CONFIGS = [
    Config("ept", "ept", what="hardware EPT (with A/D bits on this CPU model)"),
    Config("shadow", "shadow", what="shadow page tables: CLOCK reclaim, flood detection on, "
                                     "default limit (frames: 4% of guest pages, >= 128)"),
    Config("sh-flood-off", "shadow", "flood=off", what="shadow, flood detection off"),
    Config("ept-scan", "ept", "scan_ms=5",
           what="EPT with page ageing every 5 ms (EPT A/D scan; 2 MiB pages kept where cold)"),
    Config("ept-scan-4k", "ept", "scan_ms=5 scan_pages=4k",
           what="EPT with page ageing every 5 ms over 4 KiB EPT pages everywhere"),
    Config("sh-fastpath-off", "shadow", "fastpath=off",
           what="shadow, fault fast path off: every level of the path derived again"),
    Config("sh-fastemul-off", "shadow", "fastemul=off",
           what="shadow, emulated table writes with guest walks (fault and emulator)"),
    Config("sh-prefetch-off", "shadow", "prefetch=off",
           what="shadow, no prefetch: each spte filled by its own fault"),
    Config("sh-unsync-off", "shadow", "unsync=off",
           what="shadow, every write to a shadowed guest table emulated (no out-of-sync tables)"),
    Config("sh-large-off", "shadow", "largepages=off",
           what="shadow, no 2 MiB sptes: guest large pages always splintered into 4 KiB sptes"),
    Config("sh-scan", "shadow", "scan_ms=5", what="shadow with page ageing every 5 ms (rmap scan)"),
    # Limits are host frames: 144 and 288 are 64 and 128 shadow pages' worth (two frames
    # each, and an eighth more for bookkeeping pages).
    Config("sh-clock-144", "shadow", "shadow_pages=144",
           what="shadow, CLOCK reclaim, limit 144 frames (64 shadow pages)"),
    Config("sh-fifo-144", "shadow", "shadow_pages=144 reclaim=fifo",
           what="shadow, FIFO reclaim (KVM's), limit 144 frames"),
    Config("sh-clock-288", "shadow", "shadow_pages=288",
           what="shadow, CLOCK reclaim, limit 288 frames (128 shadow pages)"),
    Config("sh-fifo-288", "shadow", "shadow_pages=288 reclaim=fifo",
           what="shadow, FIFO reclaim, limit 288 frames"),
    Config("sh-clock-1152", "shadow", "shadow_pages=1152",
           what="shadow, CLOCK reclaim, limit 1152 frames (512 shadow pages)"),
    Config("sh-fifo-1152", "shadow", "shadow_pages=1152 reclaim=fifo",
           what="shadow, FIFO reclaim, limit 1152 frames"),
    Config(f"sh-clock-{LINUX_LIMIT}", "shadow", f"shadow_pages={LINUX_LIMIT}", default=False,
           what=f"shadow, CLOCK reclaim, limit {LINUX_LIMIT} frames (the Linux guest)"),
    Config(f"sh-fifo-{LINUX_LIMIT}", "shadow", f"shadow_pages={LINUX_LIMIT} reclaim=fifo",
           default=False,
           what=f"shadow, FIFO reclaim, limit {LINUX_LIMIT} frames (the Linux guest)"),
]


def configs_of(workload):
    """The configurations a workload runs under, in CONFIGS order."""
    names = workload.configs or [c.name for c in CONFIGS if c.default]
    return [c for c in CONFIGS if c.name in names]

# The Linux table: (column, stats group, key, meaning); "top_exits" is the most frequent
# exit reasons, from the exits group; "digest" the guest's DIGEST line.
LINUX_FIGURES = [
    ("guest_tsc", "run", "guest_tsc", "guest time in Bochs instructions (50 MHz TSC ticks)"),
    ("exits", "run", "exits", "VM exits"),
    ("top_exits", "exits", None, "the four most frequent exit reasons"),
    ("shadow_faults", "shadow", "faults", "shadow page faults handled"),
    ("emulated_writes", "shadow", "guest_writes", "emulated writes to guest page tables"),
    ("sp_created", "shadow", "pages_created", "shadow pages created"),
    ("unshadowed", "shadow", "unshadowed_flood", "tables unshadowed by flood detection"),
    ("unsh_pattern", "shadow", "unshadowed_pattern", "tables unshadowed by a zero-write run"),
    ("unsh_fp", "shadow", "unshadow_false_positive",
     "unshadowed frames shadowed again within 64 faults, no parent entry changed: live"),
    ("unsh_reused", "shadow", "unshadow_reused",
     "...shadowed again soon after a parent entry unlinked or relinked them: reused"),
    ("flood_kept", "shadow", "flood_kept", "flood checks that found the table used"),
    ("evictions", "shadow", "evictions", "shadow pages evicted by reclaim"),
    ("examined", "shadow", "evict_examined", "pages examined by reclaim"),
    ("digest", None, None, "the workload's digest, first 12 digits (the same everywhere)"),
]

# `make test` runs this subset as a smoke test of the harness itself.
SMOKE_WORKLOADS = ["hotcold"]
SMOKE_CONFIGS = ["ept", "shadow"]

# Figures reported per run: (column, stats group, key, meaning).
FIGURES = [
    ("guest_tsc", "run", "guest_tsc", "guest TSC ticks from first entry to exit (guest time)"),
    ("exits", "run", "exits", "VM exits"),
    ("pf_exits", "exits", "exception_or_nmi", "exception exits (shadow: #PF)"),
    ("io_exits", "exits", "i_o_instruction", "I/O instruction exits"),
    ("shadow_faults", "shadow", "faults", "shadow page faults handled"),
    ("pf_floor", "shadow", "faults_needed",
     "shadow faults no shadow could avoid: set a guest A/D bit, injected, emulated"),
    ("emulated_writes", "shadow", "guest_writes", "emulated writes to guest page tables"),
    ("prefetched", "shadow", "prefetched", "sptes filled by prefetch (not by their own fault)"),
    ("unsynced", "shadow", "unsynced", "guest leaf tables left writable (out of sync)"),
    ("resyncs", "shadow", "resyncs", "out-of-sync tables brought back in sync"),
    ("large", "shadow", "large_mapped", "2 MiB sptes installed (largepages=on)"),
    ("large_split", "shadow", "large_split",
     "2 MiB sptes dropped because a frame inside became a shadowed guest table"),
    ("sp_created", "shadow", "pages_created", "shadow pages created"),
    ("sp_zapped", "shadow", "pages_zapped", "shadow pages zapped"),
    ("evictions", "shadow", "evictions", "shadow pages evicted by reclaim"),
    ("examined", "shadow", "evict_examined", "pages examined by reclaim (all evictions)"),
    ("unshadowed", "shadow", "unshadowed_flood", "guest tables unshadowed by flood detection"),
    ("unsh_pattern", "shadow", "unshadowed_pattern",
     "guest tables unshadowed early by a run of zero writes"),
    ("unsh_fp", "shadow", "unshadow_false_positive",
     "unshadowed tables shadowed again within 64 faults (likely live)"),
    ("mmu_ticks", "shadow", "mmu_ticks", "hypervisor ticks inside the shadow MMU"),
    ("pf_ticks", "ticks", "exception_or_nmi", "average hypervisor ticks per #PF exit"),
    ("fix_ticks", "shadow", "pf_fixed_ticks",
     "average hypervisor ticks per #PF exit fixed in the shadow (no emulation)"),
    ("emu_ticks", "shadow", "pf_emulated_ticks",
     "average hypervisor ticks per #PF exit that emulated a guest page-table write"),
    ("scans", "ageing", "scans", "page-ageing scans (scan_ms=5)"),
    ("scan_ticks", "ageing", "ticks_per_scan", "hypervisor ticks per ageing scan"),
    ("scan_visited", "ageing", "visited_per_scan", "EPT entries or sptes read per ageing scan"),
    ("scan_large", "ageing", "large_pages", "2 MiB EPT pages left after the last ageing scan"),
    ("scan_splits", "ageing", "splits", "2 MiB EPT pages split by ageing (used)"),
    ("scan_merges", "ageing", "merges", "split 2 MiB blocks merged back by ageing (cold)"),
]
