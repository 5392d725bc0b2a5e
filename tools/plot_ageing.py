#!/usr/bin/env python3
"""Plot page ageing from a run's serial log (the hypervisor's "age" lines).

For every guest with scan_ms=N: working sets over time (pages used in the last
1, 2, 4 and 8 scans) and, for shadow-paged guests, shadow page tables in use.
Usage: tools/plot_ageing.py SERIAL_LOG [OUT_DIR]   (writes OUT_DIR/age-GUEST.png)
"""
import os
import re
import subprocess
import sys

LINE = re.compile(r"hv: age (\S+) scan=(\d+) t_ms=(\d+) ws1=(\d+) ws2=(\d+) ws4=(\d+) ws8=(\d+)"
                  r".* sp=(\d+)")


def main():
    if len(sys.argv) < 2:
        print(__doc__.strip(), file=sys.stderr)
        return 2
    log, out = sys.argv[1], sys.argv[2] if len(sys.argv) > 2 else "."
    series = {}
    for line in open(log, errors="replace"):
        m = LINE.search(line)
        if m:
            # Pages start young: until 8 scans have passed, ws8 counts the whole guest.
            if int(m.group(2)) > 8:
                series.setdefault(m.group(1), []).append([int(x) for x in m.groups()[2:]])
    if not series:
        print(f"{log}: no 'age' lines (was scan_ms set?)", file=sys.stderr)
        return 1
    os.makedirs(out, exist_ok=True)
    for guest, rows in series.items():
        data = os.path.join(out, f"age-{guest}.dat")
        with open(data, "w") as f:
            f.writelines(" ".join(map(str, r)) + "\n" for r in rows)
        png = os.path.join(out, f"age-{guest}.png")
        shadow = any(r[5] for r in rows)
        plots = [f"'{data}' using 1:{c} with lines title 'pages used in last {k} scans'"
                 for c, k in ((2, 1), (3, 2), (4, 4), (5, 8))]
        if shadow:
            plots.append(f"'{data}' using 1:6 axes x1y2 with lines dt 2 title 'shadow pages in use'")
        script = (f"set terminal png size 800,400; set output '{png}';"
                  f"set title 'guest {guest}: referenced pages over time';"
                  "set xlabel 'guest time (ms)'; set ylabel 'pages'; set key outside; set grid;"
                  + ("set y2label 'shadow pages'; set y2tics;" if shadow else "")
                  + "plot " + ", ".join(plots))
        subprocess.run(["gnuplot", "-e", script], check=True)
        os.remove(data)
        print(png)
    return 0


if __name__ == "__main__":
    sys.exit(main())
