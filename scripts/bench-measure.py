#!/usr/bin/env python3
"""Runs a command N times (sequentially) and prints the median wall time, the mean CPU
time (user+sys, from wait4's rusage of that child alone) and the peak RSS.
Exits 1 if any run exited non-zero. Used by scripts/bench.sh.

usage: bench-measure.py N COMMAND [ARGS...]
"""
import os, subprocess, sys, time

n, cmd = int(sys.argv[1]), sys.argv[2:]
wall, cpu, rss, bad = [], [], [], 0
for _ in range(n):
    t = time.perf_counter()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, ru = os.wait4(p.pid, 0)
    wall.append((time.perf_counter() - t) * 1000)
    cpu.append((ru.ru_utime + ru.ru_stime) * 1000)
    rss.append(ru.ru_maxrss)
    bad += os.waitstatus_to_exitcode(status) != 0
wall.sort()
print(f"wall_ms={wall[n // 2]:.1f} cpu_ms={sum(cpu) / n:.2f} peak_rss_kb={max(rss)} runs={n} failed_runs={bad}")
sys.exit(1 if bad else 0)
