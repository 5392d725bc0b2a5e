#!/usr/bin/env python3
"""Run the benchmarks of tests/bench.py in Bochs and report deterministic figures.

Writes a table to stdout, build/bench/results.csv and .json, PNG plots (gnuplot) and
BENCHMARKS.md's results section (between the RESULTS markers), from one set of runs.
Usage: tools/bench.py [--smoke] [--no-docs] [--configs A,B] [--workloads X,Y]
(a subset of configurations or workloads never rewrites BENCHMARKS.md)
"""
import argparse
import csv
import json
import os
import re
import shutil
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BUILD = os.environ.get("BUILD", os.path.join(ROOT, "build"))
OUT = os.path.join(BUILD, "bench")
DOCS = os.path.join(ROOT, "docs", "bench")
sys.path.insert(0, os.path.join(ROOT, "tests"))
import bench  # noqa: E402

STATS = re.compile(r"hv: stats (\S+) (\S+)((?: \S+=\d+)+)\s*$")


def parse_stats(log):
    """{guest: {group: {key: int}}} from the hypervisor's stats lines."""
    out = {}
    for line in log.splitlines():
        m = STATS.search(line)
        if not m:
            continue
        group = out.setdefault(m.group(1), {}).setdefault(m.group(2), {})
        for kv in m.group(3).split():
            k, v = kv.split("=")
            group[k] = int(v)
    return out


def run_config(cfg, workloads, timeout=1800):
    folder = os.path.join(OUT, cfg.name)
    os.makedirs(folder, exist_ok=True)
    iso, serial = os.path.join(folder, "boot.iso"), os.path.join(folder, "serial.log")
    modules = []
    for w in workloads:
        opts = f"name={w.name} mmu={cfg.mmu} mem={w.mem} {cfg.guest_opts}".strip()
        modules += [os.path.join(BUILD, "guests", w.kernel), opts + (f" -- {w.args}" if w.args else "")]
    subprocess.run([os.path.join(ROOT, "tools", "mkiso.sh"), iso, os.path.join(BUILD, "umbra.elf"),
                    ("summary=0 " + cfg.hv_args).strip()] + modules, check=True, capture_output=True)
    p = subprocess.run([os.path.join(ROOT, "tools", "bochs.sh"), iso, serial, str(timeout)],
                       capture_output=True)
    log = open(serial, errors="replace").read()
    stats = parse_stats(log)
    checksums = dict(re.findall(r"\] (\S+): BENCH: \S+ work=\d+ checksum=(\S+)", log))
    rows = []
    for w in workloads:
        s = stats.get(w.name, {})
        row = {"workload": w.name, "config": cfg.name,
               "status": s.get("run", {}).get("status", 0),
               "checksum": checksums.get(w.name, "-")}
        for col, group, key, _ in bench.FIGURES:
            row[col] = s.get(group, {}).get(key, 0)
        # Every exit reason, and hypervisor ticks per exit of each (JSON only).
        row["exits_by_reason"] = s.get("exits", {})
        row["ticks_by_reason"] = s.get("ticks", {})
        rows.append(row)
    if p.returncode != 0:
        print(f"bench: {cfg.name}: Bochs exit {p.returncode}; see {serial}", file=sys.stderr)
    return rows


def print_table(rows):
    cols = ["workload", "config", "status", "checksum"] + [f[0] for f in bench.FIGURES]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.rjust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).rjust(widths[c]) for c in cols))


def reclaim_ratios(rows):
    """CLOCK vs FIFO at each limit: shadow faults and pages examined per eviction."""
    lines = []
    for r in rows:
        m = re.fullmatch(r"sh-clock-(\d+)", r["config"])
        fifo = next((f for f in rows if m and f["workload"] == r["workload"]
                     and f["config"] == f"sh-fifo-{m.group(1)}"), None)
        if not fifo or not fifo["shadow_faults"] or not r["evictions"]:
            continue
        lines.append(f"reclaim {r['workload']} limit {m.group(1)}: faults CLOCK/FIFO = "
                     f"{r['shadow_faults']}/{fifo['shadow_faults']} = "
                     f"{r['shadow_faults'] / fifo['shadow_faults']:.2f}; pages examined per "
                     f"eviction CLOCK {r['examined'] / r['evictions']:.2f}, FIFO "
                     f"{fifo['examined'] / max(fifo['evictions'], 1):.2f}")
    return lines


def plot(rows, png_dir):
    """One bar chart per figure: workloads on x, a bar per configuration."""
    if not shutil.which("gnuplot"):
        print("bench: gnuplot not installed; no plots", file=sys.stderr)
        return []
    os.makedirs(png_dir, exist_ok=True)
    configs = sorted({r["config"] for r in rows}, key=[c.name for c in bench.CONFIGS].index)
    workloads = sorted({r["workload"] for r in rows},
                       key=[w.name for w in bench.WORKLOADS].index)
    made = []
    for col, _, _, meaning in bench.FIGURES:
        data = os.path.join(png_dir, f"{col}.dat")
        with open(data, "w") as f:
            f.write("workload " + " ".join(configs) + "\n")
            for w in workloads:
                vals = [next((str(r[col]) for r in rows if r["workload"] == w and r["config"] == c), "0")
                        for c in configs]
                f.write(w + " " + " ".join(vals) + "\n")
        png = os.path.join(png_dir, f"{col}.png")
        script = (f"set terminal png size 640,360; set output '{png}';"
                  f"set title '{meaning}'; set style data histograms; set style fill solid 0.8;"
                  f"set key outside; set yrange [0:*]; set grid y;"
                  "plot " + ", ".join(f"'{data}' using {i + 2}:xtic(1) title '{c}'"
                                      for i, c in enumerate(configs)))
        subprocess.run(["gnuplot", "-e", script], check=True)
        os.remove(data)
        made.append(png)
    return made


def update_docs(rows, pngs, ratios):
    path = os.path.join(ROOT, "BENCHMARKS.md")
    text = open(path).read()
    cols = ["workload", "config"] + [f[0] for f in bench.FIGURES]
    table = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    table += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    plots = [f"![{os.path.basename(p)}](docs/bench/{os.path.basename(p)})" for p in pngs]
    block = "\n".join(["<!-- RESULTS:BEGIN (written by tools/bench.py) -->", ""] + table + [""]
                      + [f"- {r}" for r in ratios] + [""] + plots + ["", "<!-- RESULTS:END -->"])
    text = re.sub(r"<!-- RESULTS:BEGIN.*?RESULTS:END -->", lambda _: block, text, flags=re.S)
    open(path, "w").write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="a short subset, checks the harness")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite BENCHMARKS.md")
    ap.add_argument("--configs", help="comma-separated configuration names (a subset)")
    ap.add_argument("--workloads", help="comma-separated workload names (a subset)")
    args = ap.parse_args()
    configs = [c for c in bench.CONFIGS if not args.smoke or c.name in bench.SMOKE_CONFIGS]
    workloads = [w for w in bench.WORKLOADS if not args.smoke or w.name in bench.SMOKE_WORKLOADS]
    for opt, items in (("configs", configs), ("workloads", workloads)):
        wanted = getattr(args, opt)
        if wanted:
            names = wanted.split(",")
            unknown = set(names) - {i.name for i in items}
            if unknown:
                ap.error(f"unknown {opt}: {', '.join(sorted(unknown))}")
            items[:] = [i for i in items if i.name in names]
            args.no_docs = True
    os.makedirs(OUT, exist_ok=True)
    rows = []
    for cfg in configs:
        rows += run_config(cfg, workloads)
    print_table(rows)
    ratios = reclaim_ratios(rows)
    for line in ratios:
        print(line)
    with open(os.path.join(OUT, "results.csv"), "w", newline="") as f:
        flat = [{k: v for k, v in r.items() if not isinstance(v, dict)} for r in rows]
        w = csv.DictWriter(f, fieldnames=list(flat[0].keys()))
        w.writeheader()
        w.writerows(flat)
    with open(os.path.join(OUT, "results.json"), "w") as f:
        json.dump(rows, f, indent=1)
    failed = [r for r in rows if r["status"] != 1]
    # The same guest work must give the same result under every configuration.
    for w in {r["workload"] for r in rows}:
        sums = {r["checksum"] for r in rows if r["workload"] == w}
        if len(sums) > 1:
            print(f"bench: {w}: checksums differ between configurations: {sorted(sums)}",
                  file=sys.stderr)
            failed.append({"workload": w, "config": "all"})
    if not args.smoke and not args.no_docs:
        pngs = plot(rows, DOCS)
        # Working sets and shadow pages in use over time, from the shadow run with ageing.
        scan_log = os.path.join(OUT, "sh-scan", "serial.log")
        if os.path.exists(scan_log):
            made = subprocess.run([os.path.join(ROOT, "tools", "plot_ageing.py"), scan_log, DOCS],
                                  capture_output=True, text=True)
            pngs += made.stdout.split()
        update_docs(rows, pngs, ratios)
    for r in failed:
        print(f"bench: {r['workload']} under {r['config']} did not finish cleanly", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
