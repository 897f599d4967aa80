"""Helpers shared by the benchmark scripts: medians, subprocess timing, result files."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"


def median_time(fn, repeat: int = 7, number: int = 1) -> float:
    """Median seconds per call of ``fn`` over ``repeat`` rounds of ``number`` calls."""
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        samples.append((time.perf_counter() - start) / number)
    return statistics.median(samples)


def interleaved(fns: dict, repeat: int = 7, number: int = 1) -> dict:
    """Median seconds per call of each function, measured in alternation so that a noisy
    neighbour affects all of them alike."""
    samples = {name: [] for name in fns}
    for _ in range(repeat):
        for name, fn in fns.items():
            start = time.perf_counter()
            for _ in range(number):
                fn()
            samples[name].append((time.perf_counter() - start) / number)
    return {name: statistics.median(s) for name, s in samples.items()}


def process_time(args: list[str], repeat: int = 15, env=None) -> float:
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        subprocess.run(args, check=True, capture_output=True, env=env)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def processes_interleaved(commands: dict, repeat: int = 15) -> dict:
    samples = {name: [] for name in commands}
    for _ in range(repeat):
        for name, args in commands.items():
            start = time.perf_counter()
            subprocess.run(args, check=True, capture_output=True)
            samples[name].append(time.perf_counter() - start)
    return {name: statistics.median(s) for name, s in samples.items()}


def write_results(name: str, rows: list[dict], extra: dict | None = None) -> Path:
    """Write ``benchmarks/results/<name>.json`` and print a table."""
    RESULTS.mkdir(exist_ok=True)
    data = {"benchmark": name, "python": sys.version.split()[0], "machine": platform.machine(),
            "cpus": os.cpu_count(), "when": time.strftime("%Y-%m-%d %H:%M:%S"), "rows": rows,
            **(extra or {})}
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2))
    width = max(len(r["measure"]) for r in rows)
    print(f"== {name} (medians; ratios measured side by side in one run)")
    for r in rows:
        target = f"   target {r['target']}" if r.get("target") else ""
        verdict = "" if r.get("ok") is None else ("   OK" if r["ok"] else "   MISSED")
        print(f"{r['measure']:<{width}}  {r['value']}{target}{verdict}")
    print(f"-> {path}")
    return path
