"""Model registry and dataset versioning (issue #11's targets), written to
benchmarks/results/registry.json.

    python benchmarks/bench_registry.py [--quick] [--big]

Files in a temporary directory on the same disk as /tmp, SQLite tracker.  Medians;
comparisons side by side in one run: hashing a 1 GiB file against ``hashlib`` in one
loop and GNU ``sha256sum``; a multi-file dataset hashed by one thread and by one per core;
re-registering an unchanged 1 GiB checkpoint and an unchanged tree of 100k small files;
registering a 1 GiB checkpoint against ``cp`` of it, with the registering process's peak
memory growth (``--big`` adds a 10 GiB file); the three lineage queries over 100k runs.
``--quick`` divides the sizes by 8 (the 100k-file tree by 10).  ``mlflow`` and ``dvc`` are
measured side by side when installed and reported as absent otherwise.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results  # noqa: E402

from ato.artifacts import StatCache, hash_file, snapshot  # noqa: E402
from ato.db_routers.sql.registry import Registry  # noqa: E402

GIB = 1 << 30


def _file(path: Path, size: int) -> Path:
    block = os.urandom(1 << 20)
    with open(path, "wb") as f:
        for i in range(size // len(block)):
            f.write(block[:-8] + i.to_bytes(8, "little"))  # no two blocks alike
    return path


def _median(fn, repeat):
    samples = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - start)
    return statistics.median(samples)


def _hashlib_plain(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def bench_hash(tmp: Path, size: int, rows: list) -> None:
    big = _file(tmp / "hash.bin", size)
    _hashlib_plain(big)  # warm the page cache
    samples = {"ato": [], "hashlib": [], "sha256sum": []}
    have_sum = shutil.which("sha256sum") is not None
    for _ in range(5):
        for name in samples:
            start = time.perf_counter()
            if name == "ato":
                hash_file(big)
            elif name == "hashlib":
                _hashlib_plain(big)
            elif have_sum:
                subprocess.run(["sha256sum", str(big)], check=True, capture_output=True)
            else:
                continue
            samples[name].append(time.perf_counter() - start)
    rate = {k: size / 1e9 / statistics.median(v) for k, v in samples.items() if v}
    rows.append({"measure": f"hash a {size / GIB:g} GiB file, GB/s (hashlib loop; sha256sum)",
                 "value": f"{rate['ato']:.2f} ({rate['hashlib']:.2f}; "
                          f"{rate.get('sha256sum', 0):.2f})",
                 "target": ">= 1.4 GB/s", "ok": rate["ato"] >= 1.4})
    big.unlink()
    # a multi-file dataset: 8 files, one thread vs one per core
    parts = tmp / "parts"
    parts.mkdir()
    for i in range(8):
        _file(parts / f"{i}.bin", size // 8)
    snapshot(parts, None)
    one = _median(lambda: snapshot(parts, None, workers=1), 3)
    cores = _median(lambda: snapshot(parts, None, workers=os.cpu_count()), 3)
    rows.append({"measure": f"hash 8 files of {size / 8 / GIB:g} GiB, 1 thread vs "
                            f"{os.cpu_count()} (GB/s)",
                 "value": f"{size / 1e9 / one:.2f} vs {size / 1e9 / cores:.2f} "
                          f"= x{one / cores:.2f}"})
    shutil.rmtree(parts)


def bench_register(tmp: Path, size: int, rows: list, big: bool) -> None:
    os.environ["ATO_STORE"] = str(tmp / "store")
    url = f"sqlite:///{tmp}/reg.db"
    reg = Registry(url, cache=StatCache(str(tmp / "stat.sqlite")))
    ckpt = _file(tmp / "ckpt.pt", size)
    time.sleep(0.2)  # out of the stat cache's racy window
    # registering a new checkpoint vs cp (each round a different file: fresh content)
    reg_times, cp_times, cp_sync_times = [], [], []
    for i in range(3):
        with open(ckpt, "r+b") as f:  # new content, same size
            f.write(os.urandom(16))
        start = time.perf_counter()
        subprocess.run(["cp", str(ckpt), str(tmp / f"copy{i}.pt")], check=True)
        cp_times.append(time.perf_counter() - start)
        (tmp / f"copy{i}.pt").unlink()
        start = time.perf_counter()
        subprocess.run(["cp", str(ckpt), str(tmp / f"copy{i}.pt")], check=True)
        subprocess.run(["sync", str(tmp / f"copy{i}.pt")], check=True)  # fsync, as we do
        cp_sync_times.append(time.perf_counter() - start)
        (tmp / f"copy{i}.pt").unlink()
        start = time.perf_counter()
        reg.log_model("bench", "ckpt", ckpt)
        reg_times.append(time.perf_counter() - start)
    r, c = statistics.median(reg_times), statistics.median(cp_times)
    cs = statistics.median(cp_sync_times)
    rows.append({"measure": f"register a new {size / GIB:g} GiB checkpoint vs cp (s)",
                 "value": f"{r:.2f} vs {c:.2f} = x{r / c:.2f} (vs cp + fsync {cs:.2f} = "
                          f"x{r / cs:.2f})",
                 "target": "<= 1.2x cp", "ok": r / c <= 1.2})
    time.sleep(0.2)
    reg.log_model("bench", "ckpt", ckpt)  # the stat cache now trusts it
    again = _median(lambda: reg.log_model("bench", "ckpt", ckpt), 7)
    rows.append({"measure": f"re-register the unchanged {size / GIB:g} GiB checkpoint",
                 "value": f"{again * 1000:.1f} ms", "target": "<= 20 ms", "ok": again <= 0.020})
    for label, n in [(f"{size / GIB:g} GiB", size)] + ([("10 GiB", 10 * GIB)] if big else []):
        path = ckpt if n == size else _file(tmp / "huge.pt", n)
        code = ("import os, resource, sys; from ato.db_routers.sql.registry import Registry; "
                "r = Registry(sys.argv[1]); "
                "base = int(open('/proc/self/statm').read().split()[1]) "
                "* os.sysconf('SC_PAGE_SIZE') // 1024; "
                "r.log_model('bench', 'mem', sys.argv[2]); "
                "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)")
        with open(path, "r+b") as f:
            f.write(os.urandom(16))
        env = dict(os.environ, ATO_CACHE_DIR=str(tmp / "memcache"))
        out = subprocess.run([sys.executable, "-c", code, url, str(path)], check=True,
                             capture_output=True, text=True, env=env).stdout
        growth_mb = int(out.strip()) / 1024
        rows.append({"measure": f"peak memory growth registering {label} (MB)",
                     "value": f"{growth_mb:.1f}", "target": "<= 100 MB", "ok": growth_mb <= 100})
        if path != ckpt:
            path.unlink()
    ckpt.unlink()


def bench_tree(tmp: Path, files: int, rows: list) -> None:
    url = f"sqlite:///{tmp}/tree.db"
    reg = Registry(url, cache=StatCache(str(tmp / "stat-tree.sqlite")))
    root = tmp / "tree"
    per_dir = 1000
    for d in range(files // per_dir):
        sub = root / f"d{d:03d}"
        sub.mkdir(parents=True)
        for i in range(per_dir):
            (sub / f"{i:04d}.txt").write_bytes(f"{d}/{i}\n".encode() * 8)
    time.sleep(0.2)
    start = time.perf_counter()
    reg.use_dataset("bench", "tree", root)
    first = time.perf_counter() - start
    again = _median(lambda: reg.use_dataset("bench", "tree", root), 5)
    rows.append({"measure": f"re-register an unchanged tree of {files:,} small files",
                 "value": f"{again:.2f} s (first registration {first:.1f} s)",
                 "target": "<= 1.5 s", "ok": again <= 1.5})
    shutil.rmtree(root)


def bench_lineage(tmp: Path, runs: int, rows: list) -> None:
    url = f"sqlite:///{tmp}/lineage.db"
    reg = Registry(url)
    conn = reg.engine.raw_connection()
    cur = conn.cursor()
    stamp = "2026-01-01 00:00:00.000000"
    cur.execute("BEGIN")
    cur.execute("INSERT INTO projects (id, name, created_at) VALUES (1, 'p', ?)", (stamp,))
    cur.executemany("INSERT INTO experiments (id, project_id, config, tags, status, start_time) "
                    "VALUES (?, 1, ?, '[]', 'completed', ?)",
                    [(i, json.dumps({"lr": i / runs, "seed": i}), stamp) for i in range(1, runs + 1)])
    cur.execute("INSERT INTO registry_assets (id, project_id, kind, name, tags) "
                "VALUES (1, 1, 'dataset', 'data', '[]'), (2, 1, 'model', 'net', '[]')")
    n_data = runs // 100
    cur.executemany("INSERT INTO registry_versions (id, asset_id, version, digest, size, "
                    "file_count, is_dir, state, created_at) VALUES (?, 1, ?, ?, 1, 1, 0, "
                    "'live', ?)", [(i, i, f"{i:064x}", stamp) for i in range(1, n_data + 1)])
    cur.executemany("INSERT INTO registry_versions (id, asset_id, version, digest, size, "
                    "file_count, is_dir, run_id, state, created_at) VALUES (?, 2, ?, ?, 1, 1, 0, "
                    "?, 'live', ?)",
                    [(n_data + i, i, f"{n_data + i:064x}", i, stamp) for i in range(1, runs + 1)])
    cur.executemany("INSERT INTO registry_links (run_id, version_id, role, at) VALUES (?, ?, ?, ?)",
                    [(i, 1 + i % n_data, "input", stamp) for i in range(1, runs + 1)]
                    + [(i, n_data + i, "output", stamp) for i in range(1, runs + 1)])
    cur.execute("INSERT INTO registry_aliases (asset_id, alias, version_id) VALUES (2, 'champion', ?)",
                (n_data + runs // 2,))
    cur.execute("COMMIT")
    conn.close()
    times = {
        "runs using data v7": _median(lambda: reg.runs_using("data", 7), 15),
        "what produced net@champion": _median(lambda: reg.produced_by("net", "champion"), 15),
        "what data v7 fed": _median(lambda: reg.downstream("data", 7), 15),
    }
    worst = max(times.values())
    rows.append({"measure": f"lineage queries over {runs:,} runs (ms)",
                 "value": "; ".join(f"{k} {v * 1000:.1f}" for k, v in times.items()),
                 "target": "<= 20 ms", "ok": worst <= 0.020})


def bench_others(rows: list) -> None:
    for tool in ("mlflow", "dvc"):
        present = shutil.which(tool) is not None
        rows.append({"measure": f"side by side: {tool}",
                     "value": "installed but not measured" if present else
                     "not installed on this machine (not measured)"})


def main() -> None:
    quick = "--quick" in sys.argv
    big = "--big" in sys.argv
    size = GIB // 8 if quick else GIB
    rows: list = []
    with tempfile.TemporaryDirectory(prefix="ato-bench-registry-", dir="/tmp") as d:
        tmp = Path(d)
        os.environ["ATO_CACHE_DIR"] = str(tmp / "cache")
        bench_hash(tmp, size, rows)
        bench_register(tmp, size, rows, big)
        bench_tree(tmp, 10_000 if quick else 100_000, rows)
        bench_lineage(tmp, 10_000 if quick else 100_000, rows)
    bench_others(rows)
    load = os.getloadavg()[0]
    write_results("registry" + ("-quick" if quick else ""), rows,
                  {"load_average_1min": round(load, 1)})


if __name__ == "__main__":
    main()
