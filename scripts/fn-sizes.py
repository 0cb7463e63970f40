#!/usr/bin/env python3
"""The largest functions in src/ by line count (issue 10's before/after figure).

Usage: python3 scripts/fn-sizes.py [N]   (default 15)

A function runs from its `fn` line to the line that closes its body; brace
matching skips strings, chars and comments well enough for this crate. Functions
inside `#[cfg(test)]` modules and `tests.rs` files are left out: the figure is
about the code that runs, not its tests.
"""
import os, re, sys

FN = re.compile(r'^\s*(pub(\([a-z]+\))?\s+)?(const\s+)?(async\s+)?(unsafe\s+)?fn\s+([A-Za-z0-9_]+)')

def strip(line):
    out, i, q = [], 0, None
    while i < len(line):
        c = line[i]
        if q:
            if c == '\\':
                i += 2; continue
            if c == q:
                q = None
            i += 1; continue
        if line.startswith('//', i):
            break
        if c == '"':
            q = '"'
        elif c == "'" and re.match(r"'(\\.|[^\\'])'", line[i:]):
            i += len(re.match(r"'(\\.|[^\\'])'", line[i:]).group(0)); continue
        else:
            out.append(c)
        i += 1
    return ''.join(out)

def sizes(path):
    lines = open(path, encoding='utf-8').read().split('\n')
    res, i, test_from = [], 0, None
    for n, l in enumerate(lines):
        if l.startswith('#[cfg(test)]'):
            test_from = n; break
    end = test_from if test_from is not None else len(lines)
    while i < end:
        m = FN.match(lines[i])
        if not m:
            i += 1; continue
        depth, started, j = 0, False, i
        while j < end:
            s = strip(lines[j])
            if not started and ';' in s and '{' not in s:
                break
            for c in s:
                if c == '{': depth += 1; started = True
                elif c == '}': depth -= 1
            if started and depth <= 0:
                break
            j += 1
        if started:
            res.append((j - i + 1, f"{path}:{i+1}", m.group(6)))
        i += 1
    return res

allf = []
for root, _, files in os.walk('src'):
    for f in files:
        if f.endswith('.rs') and f != 'tests.rs':
            allf += sizes(os.path.join(root, f))
allf.sort(reverse=True)
n = int(sys.argv[1]) if len(sys.argv) > 1 else 15
for size, where, name in allf[:n]:
    print(f"{size:5d}  {name:32s} {where}")
print(f"functions: {len(allf)}, over 80 lines: {sum(1 for s in allf if s[0] > 80)}, over 120: {sum(1 for s in allf if s[0] > 120)}")
