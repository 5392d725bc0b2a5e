#!/usr/bin/env python3
"""Check the hypervisor's layering from its #include lines (run by `make test`).

Folders are layers, lowest first (LAYERS). Rules, each reported with file and line:
  1. A file includes only headers of its own folder or of folders below it
     (peers on one rank, like shadow/ and ept/, do not include each other).
  2. No include loop between modules (a module is X.c with its X.h): the graph
     of "X.c or X.h includes Y.h" has no cycle.
  3. One header per .c file: a function declared in X.h (or X.c) is defined in
     X.c or X.S, and each prototype is typed once, in one file.
Usage: tools/layers.py [--graph]   (--graph prints the module edges)
Exit status 0 when every rule holds.
"""
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Lowest first. Folders on one line share a rank and may not include each other.
LAYERS = [
    ["lib"],            # types, option parsing, the hypervisor's command line
    ["arch/x86"],       # CPU helpers, descriptors, console, log, panic, multiboot2, emulator
    ["mm"],             # frames, host paging, page-table formats and walker
    ["shadow", "ept"],  # the pure MMU cores
    ["guest"],          # struct guest, its RAM, time and end
    ["devices"],        # device models: no VMX
    ["vmx"],            # VMCS, entry/exit, exit handlers, the EPT/shadow facade
    ["core"],           # loader, images, scheduler, statistics
    ["boot"],           # entry and boot_main
]
RANK = {folder: i for i, row in enumerate(LAYERS) for folder in row}

INCLUDE = re.compile(r'^\s*#\s*include\s+"([^"]+)"')
# A file-scope function prototype (no body), possibly over several lines.
PROTOTYPE = re.compile(
    r'^(?!static\b|typedef\b|#|\s|extern\s+char\b)[A-Za-z_][\w\s\*]*?\b(\w+)\s*\(([^;{}]*?)\)\s*'
    r'(?:__attribute__\s*\(\(.*?\)\)\s*|PRINTF_LIKE\(.*?\)\s*)*;', re.M | re.S)
DEFINITION = re.compile(r'^(?!static\b)[A-Za-z_][\w\s\*]*?\b(\w+)\s*\(([^;{}]*?)\)\s*\{', re.M | re.S)


def folder_of(path):
    d = os.path.dirname(path)
    return d if d in RANK else None


def sources():
    for folder in RANK:
        full = os.path.join(ROOT, folder)
        if not os.path.isdir(full):
            continue
        for name in sorted(os.listdir(full)):
            if name.endswith((".c", ".h", ".S")):
                yield f"{folder}/{name}"


def strip_comments(text):
    text = re.sub(r"/\*.*?\*/", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    return re.sub(r"//[^\n]*", "", text)


def module(path):
    return os.path.splitext(path)[0]


def find_cycles(edges):
    """Strongly connected components with more than one module (Tarjan)."""
    index, low, stack, on, out, counter = {}, {}, [], set(), [], [0]

    def visit(v):
        index[v] = low[v] = counter[0]
        counter[0] += 1
        stack.append(v)
        on.add(v)
        for w in sorted(edges.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(sorted(comp))

    sys.setrecursionlimit(10000)
    for v in sorted(edges):
        if v not in index:
            visit(v)
    return out


def main():
    problems, edges = [], {}
    files = list(sources())
    texts = {f: open(os.path.join(ROOT, f), errors="replace").read() for f in files}
    for f in files:
        rank = RANK[folder_of(f)]
        for n, line in enumerate(texts[f].splitlines(), 1):
            m = INCLUDE.match(line)
            if not m:
                continue
            target = m.group(1)
            tfolder = folder_of(target)
            if tfolder is None:
                problems.append(f"{f}:{n}: includes {target}, which is in no layer")
                continue
            if not os.path.exists(os.path.join(ROOT, target)):
                problems.append(f"{f}:{n}: includes {target}, which does not exist")
            if tfolder != folder_of(f) and RANK[tfolder] >= rank:
                problems.append(f"{f}:{n}: {folder_of(f)}/ includes {target}: "
                                f"{tfolder}/ is not below it")
            if module(target) != module(f):
                edges.setdefault(module(f), set()).add(module(target))
    for cycle in find_cycles(edges):
        problems.append("include loop between modules: " + " -> ".join(cycle))

    # One header per .c file.
    defined = {}
    for f in files:
        if f.endswith(".c"):
            body = strip_comments(texts[f])
            for m in DEFINITION.finditer(body):
                defined.setdefault(m.group(1), set()).add(module(f))
        elif f.endswith(".S"):
            for m in re.finditer(r"^\s*\.globa?l\s+(\w+)", texts[f], re.M):
                defined.setdefault(m.group(1), set()).add(module(f))
    declared = {}
    for f in files:
        if f.endswith(".S"):
            continue
        for m in PROTOTYPE.finditer(strip_comments(texts[f])):
            name, where = m.group(1), defined.get(m.group(1), set())
            declared.setdefault(name, []).append(f)
            if where and module(f) not in where:
                problems.append(f"{f}: declares {name}(), defined in "
                                f"{', '.join(sorted(w + '.c' for w in where))}"
                                + ("" if f.endswith(".h") else ": include its header"))
    for name, where in sorted(declared.items()):
        if len(where) > 1:
            problems.append(f"{name}() is declared in {len(where)} files: {', '.join(where)}")

    if "--graph" in sys.argv:
        for v in sorted(edges):
            print(f"{v} -> {' '.join(sorted(edges[v]))}")
    for p in problems:
        print(p)
    print(f"layers: {len(files)} files in {len(RANK)} folders, "
          f"{sum(len(e) for e in edges.values())} module edges, {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
