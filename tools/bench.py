#!/usr/bin/env python3
"""Run the benchmarks of tests/bench.py in Bochs and report deterministic figures.

Writes a table to stdout, build/bench/results.csv and .json, PNG plots (gnuplot) and
BENCHMARKS.md's result tables (between the RESULTS and LINUX-RESULTS markers).
Usage: tools/bench.py [--smoke] [--no-docs] [--write] [--configs A,B] [--workloads X,Y]
A subset of configurations or workloads rewrites BENCHMARKS.md only with --write, and then
only the rows it ran: the others stay as they were (e.g. `--workloads linux --write`).
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


def guest_file(w, name):
    """A workload's kernel or initrd: build/guests/NAME, or BUILD/PATH for a path."""
    return os.path.join(BUILD, name) if "/" in name else os.path.join(BUILD, "guests", name)


def top_exits(exits, n=4):
    """'i_o_instruction 51322, cpuid 12547, ...': the n most frequent exit reasons."""
    top = sorted(exits.items(), key=lambda kv: (-kv[1], kv[0]))[:n]
    return ", ".join(f"{k} {v}" for k, v in top)


def run_config(cfg, workloads):
    """One boot of the hypervisor with these workloads as guests under cfg."""
    folder = os.path.join(OUT, cfg.name if not workloads[0].alone
                          else f"{cfg.name}-{workloads[0].name}")
    os.makedirs(folder, exist_ok=True)
    iso, serial = os.path.join(folder, "boot.iso"), os.path.join(folder, "serial.log")
    modules, hv_args = [], {"summary=0"} | {w.hv_args for w in workloads if w.hv_args}
    for w in workloads:
        opts = f"name={w.name} mmu={cfg.mmu} mem={w.mem} {cfg.guest_opts}".strip()
        modules += [guest_file(w, w.kernel), opts + (f" -- {w.args}" if w.args else "")]
        if w.initrd:
            modules += [guest_file(w, w.initrd), f"initrd_for={w.name}"]
    subprocess.run([os.path.join(ROOT, "tools", "mkiso.sh"), iso, os.path.join(BUILD, "umbra.elf"),
                    " ".join(sorted(hv_args) + [cfg.hv_args]).strip()] + modules,
                   check=True, capture_output=True)
    megs = max(w.megs for w in workloads)
    p = subprocess.run([os.path.join(ROOT, "tools", "bochs.sh"), iso, serial,
                        str(max(w.timeout for w in workloads)), "corei7_skylake_x", str(megs)],
                       capture_output=True)
    log = open(serial, errors="replace").read()
    stats = parse_stats(log)
    checksums = dict(re.findall(r"\] (\S+): BENCH: \S+ work=\d+ checksum=(\S+)", log))
    checksums.update(re.findall(r"\] (\S+): DIGEST: (\S+)", log))  # the Linux guest's
    rows = []
    for w in workloads:
        s = stats.get(w.name, {})
        row = {"workload": w.name, "config": cfg.name,
               "status": s.get("run", {}).get("status", 0),
               "checksum": checksums.get(w.name, "-")}
        for col, group, key, _ in bench.FIGURES + bench.LINUX_FIGURES:
            row[col] = s.get(group, {}).get(key, 0) if key else 0
        row["top_exits"] = top_exits(s.get("exits", {}))
        row["digest"] = row["checksum"][:12]
        # Every exit reason, and hypervisor ticks per exit of each (JSON only).
        row["exits_by_reason"] = s.get("exits", {})
        row["ticks_by_reason"] = s.get("ticks", {})
        row["shadow_stats"] = s.get("shadow", {})
        rows.append(row)
    if p.returncode != 0:
        print(f"bench: {cfg.name}: Bochs exit {p.returncode}; see {serial}", file=sys.stderr)
    return rows


def boots(configs, workloads):
    """(config, workloads) per boot: the main workloads together, each alone one apart."""
    for cfg in configs:
        together = [w for w in workloads if not w.alone and cfg in bench.configs_of(w)]
        if together:
            yield cfg, together
        for w in workloads:
            if w.alone and cfg in bench.configs_of(w):
                yield cfg, [w]


def print_table(rows):
    cols = ["workload", "config", "status", "checksum"] + [f[0] for f in bench.FIGURES]
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.rjust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).rjust(widths[c]) for c in cols))
    for r in rows:
        if r["workload"] in {w.name for w in bench.WORKLOADS if w.alone}:
            print(f"{r['workload']} {r['config']}: exits {r['top_exits']}")


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
                vals = [next((str(r[col]) if isinstance(r[col], int) else "0"
                              for r in rows if r["workload"] == w and r["config"] == c), "0")
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


TABLES = {"main": "RESULTS", "linux": "LINUX-RESULTS"}


def table_columns(table):
    figures = bench.FIGURES if table == "main" else bench.LINUX_FIGURES
    return ["workload", "config"] + [f[0] for f in figures]


def read_rows(text, table):
    """The rows of a result table in BENCHMARKS.md, as {column: value} (ints where they
    are numbers), by its own header: a column added since is '-' in the old rows."""
    m = re.search(rf"<!-- {TABLES[table]}:BEGIN.*?{TABLES[table]}:END -->", text, flags=re.S)
    lines = [l for l in (m.group(0).splitlines() if m else []) if l.startswith("| ")]
    if not lines:
        return []
    header = [c.strip() for c in lines[0].strip().strip("|").split("|")]
    rows = []
    for line in lines[1:]:
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        row = {c: "-" for c in table_columns(table)}
        row.update({c: int(v) if re.fullmatch(r"-?\d+", v) else v for c, v in zip(header, cells)})
        rows.append(row)
    return rows


def merge(old, new):
    """old rows with those new replaces (same workload and configuration) and new ones
    added, in CONFIGS then WORKLOADS order (run order); rows of workloads or
    configurations that no longer exist are dropped."""
    wl, cf = [w.name for w in bench.WORKLOADS], [c.name for c in bench.CONFIGS]
    keyed = {(r["workload"], r["config"]): r for r in old}
    keyed.update({(r["workload"], r["config"]): r for r in new})
    rows = [r for k, r in keyed.items() if k[0] in wl and k[1] in cf]
    return sorted(rows, key=lambda r: (cf.index(r["config"]), wl.index(r["workload"])))


def write_block(text, table, rows, extra):
    cols = table_columns(table)
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(str(r[c]) for c in cols) + " |" for r in rows]
    name = TABLES[table]
    if f"<!-- {name}:BEGIN" not in text:
        print(f"bench: BENCHMARKS.md has no {name} markers: that table is not written",
              file=sys.stderr)
    block = "\n".join([f"<!-- {name}:BEGIN (written by tools/bench.py) -->", ""] + lines
                      + [""] + extra + [f"<!-- {name}:END -->"])
    return re.sub(rf"<!-- {name}:BEGIN.*?{name}:END -->", lambda _: block, text, flags=re.S)


def update_docs(rows, ran_configs):
    """Rewrite the tables of BENCHMARKS.md that this run has rows for: merged with the rows
    already there, so a partial run replaces only its own rows."""
    path = os.path.join(ROOT, "BENCHMARKS.md")
    text = open(path).read()
    for table in TABLES:
        alone = {w.name for w in bench.WORKLOADS if w.alone}
        new = [r for r in rows if (r["workload"] in alone) == (table != "main")]
        if not new:
            continue
        merged = merge(read_rows(text, table), new)
        extra = [f"- {r}" for r in reclaim_ratios(merged)] + [""]
        if table == "main":
            pngs = plot(merged, DOCS)
            # Working sets and shadow pages over time, from the shadow run with ageing.
            scan_log = os.path.join(OUT, "sh-scan", "serial.log")
            if "sh-scan" in ran_configs and os.path.exists(scan_log):
                made = subprocess.run([os.path.join(ROOT, "tools", "plot_ageing.py"), scan_log,
                                       DOCS], capture_output=True, text=True)
                pngs += made.stdout.split()
            else:  # keep the ageing plots of an earlier run, in their order
                pngs += re.findall(r"!\[(age-\S+?\.png)\]", text)
            extra += [f"![{os.path.basename(p)}](docs/bench/{os.path.basename(p)})"
                      for p in pngs] + [""]
        text = write_block(text, table, merged, extra)
    open(path, "w").write(text)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--smoke", action="store_true", help="a short subset, checks the harness")
    ap.add_argument("--no-docs", action="store_true", help="do not rewrite BENCHMARKS.md")
    ap.add_argument("--write", action="store_true",
                    help="with a subset: rewrite its rows of BENCHMARKS.md, keep the others")
    ap.add_argument("--configs", help="comma-separated configuration names (a subset)")
    ap.add_argument("--workloads", help="comma-separated workload names (a subset)")
    args = ap.parse_args()
    configs = [c for c in bench.CONFIGS if not args.smoke or c.name in bench.SMOKE_CONFIGS]
    workloads = [w for w in bench.WORKLOADS if not args.smoke or w.name in bench.SMOKE_WORKLOADS]
    subset = False
    for opt, items in (("configs", configs), ("workloads", workloads)):
        wanted = getattr(args, opt)
        if wanted:
            names = wanted.split(",")
            unknown = set(names) - {i.name for i in items}
            if unknown:
                ap.error(f"unknown {opt}: {', '.join(sorted(unknown))}")
            items[:] = [i for i in items if i.name in names]
            subset = True
    # The Linux guest exists only after `make linux` (apt-get download): without it the
    # other workloads still run, and its rows in BENCHMARKS.md stay as they are.
    for w in list(workloads):
        missing = [f for f in [w.kernel] + ([w.initrd] if w.initrd else [])
                   if not os.path.exists(guest_file(w, f))]
        if missing:
            print(f"bench: {w.name}: {', '.join(missing)} not built (make linux-guest); "
                  "skipped", file=sys.stderr)
            workloads.remove(w)
    write_docs = not args.smoke and not args.no_docs and (args.write or not subset)
    os.makedirs(OUT, exist_ok=True)
    rows = []
    for cfg, group in boots(configs, workloads):
        print(f"bench: {cfg.name}: {', '.join(w.name for w in group)}", file=sys.stderr)
        rows += run_config(cfg, group)
    if not rows:
        print("bench: nothing to run", file=sys.stderr)
        return 1
    print_table(rows)
    for line in reclaim_ratios(rows):
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
    if write_docs:
        update_docs(rows, {r["config"] for r in rows})
    for r in failed:
        print(f"bench: {r['workload']} under {r['config']} did not finish cleanly", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
