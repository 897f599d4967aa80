"""Model registry and dataset versioning (issue #11's targets), written to
benchmarks/results/registry.json.

    python benchmarks/bench_registry.py [--quick] [--big] [--tools VENV]
                                        [--only hash,register,tree,lineage] [--tree-files N]
                                        [--rounds N]     (--help: what each does)

Files in a temporary directory on the same disk as /tmp, SQLite tracker.  Medians;
comparisons side by side in one run: hashing a 1 GiB file against ``hashlib`` in one
loop and GNU ``sha256sum``; a multi-file dataset hashed by one thread and by one per core;
re-registering an unchanged 1 GiB checkpoint and an unchanged tree of 100k small files;
registering a 1 GiB checkpoint against ``cp`` and ``cp`` + ``fsync`` of it, blocking and in
the background (``log_model(wait=False)``: until it returns — what the training loop
waits for — and until the version is committed), rounds rotated, with the registering
process's peak memory growth either way (``--big`` adds a 10 GiB file when the disk has
room); the three lineage queries over 100k runs.
``--quick`` divides the sizes by 8 (the 100k-file tree by 10); ``--only`` runs some
sections (results then go to ``registry[-quick]-<sections>.json``); ``--tree-files N``
sizes the tree.  Hashing compares every reader side by side (one thread at 256 KiB, 1 MiB
and 4 MiB buffers, the read-ahead thread, the default choice) against the ceiling, SHA-256
of one 256 KiB buffer hot in the CPU cache; the tree reports user and system CPU apart,
and the bare walk, so that its figure can be read as CPU, not as waiting.

Side by side in the same run: ``mlflow`` registering the same checkpoint (``log_artifact``
+ ``register_model`` on a SQLite backend store and a local artifact store) and ``dvc add``
of the same tree (first and unchanged), each run from ``--tools VENV`` (a scratch virtual
environment holding them, default ``$ATO_BENCH_TOOLS``; kept apart so their dependencies
never replace Ato's) and reported as absent when missing.  Wall times on a shared machine
swing with its load; every timing also records the process CPU time where it can, and the
1-minute load average is saved with the results.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import write_results  # noqa: E402

from ato.artifacts import StatCache, _scan, hash_file, snapshot  # noqa: E402
from ato.db_routers.sql.registry import Registry  # noqa: E402

GIB = 1 << 30
SECTIONS = ("hash", "register", "tree", "lineage")


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


def _file_digest(path):
    with open(path, "rb", buffering=0) as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def bench_hash(tmp: Path, size: int, rows: list) -> None:
    """Every way of hashing the same file, interleaved round by round so they share the
    load: Ato with one thread at several buffer sizes, with the read-ahead thread, and as
    it chooses by default; plain hashlib; GNU sha256sum; and SHA-256 of bytes already in
    memory (one 256 KiB buffer, hot in the CPU cache: the ceiling; and a 64 MiB one)."""
    big = _file(tmp / "hash.bin", size)
    _hashlib_plain(big)  # warm the page cache
    hot, cold = os.urandom(256 << 10), bytes(64 << 20)

    def in_memory(buf):
        h = hashlib.sha256()
        for _ in range(size // len(buf)):
            h.update(buf)

    variants = {
        "ceiling": lambda: in_memory(hot),
        "memory 64 MiB": lambda: in_memory(cold),
        "ato default": lambda: hash_file(big),
        "ato 1 thread 256 KiB": lambda: hash_file(big, 256 << 10, reader=False),
        "ato 1 thread 1 MiB": lambda: hash_file(big, 1 << 20, reader=False),
        "ato 1 thread 4 MiB": lambda: hash_file(big, 4 << 20, reader=False),
        "ato read-ahead 256 KiB": lambda: hash_file(big, 256 << 10, reader=True),
        "ato read-ahead 1 MiB": lambda: hash_file(big, 1 << 20, reader=True),
        "hashlib loop": lambda: _hashlib_plain(big),
        "hashlib.file_digest": lambda: _file_digest(big),
    }
    if shutil.which("sha256sum"):
        variants["sha256sum"] = lambda: subprocess.run(["sha256sum", str(big)], check=True,
                                                       capture_output=True)
    samples: dict = {k: [] for k in variants}
    names = list(variants)
    for r in range(len(names) if len(names) > 5 else 5):  # each round starts one later
        for name in names[r % len(names):] + names[:r % len(names)]:
            start = time.perf_counter()
            variants[name]()
            samples[name].append(time.perf_counter() - start)
    rate = {k: size / 1e9 / statistics.median(v) for k, v in samples.items()}
    top = rate["ceiling"]
    rows.append({"measure": f"hash a {size / GIB:g} GiB file from the page cache, GB/s and x the "
                            f"ceiling (SHA-256 of a 256 KiB buffer hot in cache), medians of "
                            f"{len(samples['ceiling'])} interleaved rounds, the order rotated",
                 "value": "; ".join(f"{k} {r:.2f} = x{r / top:.2f}" for k, r in rate.items()),
                 "target": ">= 1.4 GB/s", "ok": rate["ato default"] >= 1.4,
                 "load_average_1min": round(os.getloadavg()[0], 1)})
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


MLFLOW = """
import os, sys, time
import mlflow
from mlflow.tracking import MlflowClient
store, path = sys.argv[1], sys.argv[2]
mlflow.set_tracking_uri("sqlite:///" + os.path.join(store, "mlflow.db"))
exp = mlflow.create_experiment("bench-" + str(time.time_ns()),
                               artifact_location="file://" + os.path.join(store, "artifacts"))
start, cpu = time.perf_counter(), time.process_time()
client = MlflowClient()
with mlflow.start_run(experiment_id=exp) as run:
    mlflow.log_artifact(path, artifact_path="model")
    # MLflow 3's register_model(runs:/...) needs a logged model; a plain file is
    # registered as a model version whose source is the run's artifact directory
    try:
        client.create_registered_model("bench")
    except mlflow.exceptions.MlflowException:
        pass  # registered by an earlier round
    client.create_model_version("bench", f"{run.info.artifact_uri}/model", run.info.run_id)
print(time.perf_counter() - start, time.process_time() - cpu)
"""


def _tool(tools: Path | None, name: str) -> Path | None:
    if tools is None:
        return None
    exe = tools / "bin" / name
    return exe if exe.exists() else None


def _register_rounds(reg, tmp: Path, ckpt: Path, rounds: int, python, has_mlflow) -> dict:
    """Side by side, the order rotated each round, on fresh content every round: ``cp``,
    ``cp`` + ``fsync``, blocking registration, background registration (until
    ``log_model`` returns, and until the version is committed), and mlflow."""
    samples: dict = {k: [] for k in ("cp", "cp + fsync", "register (blocking)",
                                     "background: log_model returns",
                                     "background: version committed", "mlflow")}

    def fresh():
        with open(ckpt, "r+b") as f:  # new content, same size, hot in the page cache
            f.write(os.urandom(16))

    def cp(sync: bool):
        start = time.perf_counter()
        subprocess.run(["cp", str(ckpt), str(tmp / "copy.pt")], check=True)
        if sync:
            subprocess.run(["sync", str(tmp / "copy.pt")], check=True)  # fsync, as we do
        samples["cp + fsync" if sync else "cp"].append(time.perf_counter() - start)
        (tmp / "copy.pt").unlink()

    def blocking():
        fresh()
        start = time.perf_counter()
        v = reg.log_model("bench", "ckpt", ckpt)
        samples["register (blocking)"].append(time.perf_counter() - start)
        reg.store().delete(v.digest)  # keep the disk and the page cache as they were

    def background():
        fresh()
        start = time.perf_counter()
        pending = reg.log_model("bench", "ckpt", ckpt, wait=False)
        samples["background: log_model returns"].append(time.perf_counter() - start)
        v = pending.result()
        samples["background: version committed"].append(time.perf_counter() - start)
        reg.store().delete(v.digest)

    def mlflow():
        out = subprocess.run([str(python), "-c", MLFLOW, str(tmp / "mlflow"), str(ckpt)],
                             check=True, capture_output=True, text=True).stdout
        samples["mlflow"].append(float(out.split()[0]))

    steps = [lambda: cp(False), lambda: cp(True), blocking, background]
    if has_mlflow:
        steps.append(mlflow)
    for r in range(rounds):
        for step in steps[r % len(steps):] + steps[:r % len(steps)]:
            step()
    medians = {k: statistics.median(v) for k, v in samples.items() if v}
    medians["samples"] = {k: [round(x, 3) for x in v] for k, v in samples.items() if v}
    return medians


_MEMORY = ("import os, resource, sys; from ato.db_routers.sql.registry import Registry; "
           "r = Registry(sys.argv[1]); "
           "base = int(open('/proc/self/statm').read().split()[1]) "
           "* os.sysconf('SC_PAGE_SIZE') // 1024; "
           "v = r.log_model('bench', 'mem', sys.argv[2], wait=sys.argv[3] == 'wait'); "
           "v = v if sys.argv[3] == 'wait' else v.result(); "
           "print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - base)")


def bench_register(tmp: Path, size: int, rows: list, big: bool, tools: Path | None,
                   rounds: int = 5) -> None:
    os.environ["ATO_STORE"] = str(tmp / "store")
    url = f"sqlite:///{tmp}/reg.db"
    reg = Registry(url, cache=StatCache(str(tmp / "stat.sqlite")))
    ckpt = _file(tmp / "ckpt.pt", size)
    time.sleep(0.2)  # out of the stat cache's racy window
    python = _tool(tools, "python")
    has_mlflow = python is not None and subprocess.run(
        [str(python), "-c", "import mlflow"], capture_output=True).returncode == 0
    load = os.getloadavg()[0]
    t = _register_rounds(reg, tmp, ckpt, rounds, python, has_mlflow)
    c, cs = t["cp"], t["cp + fsync"]
    r, back, done = (t["register (blocking)"], t["background: log_model returns"],
                     t["background: version committed"])
    label = f"{size / GIB:g} GiB"
    common = {"load_average_1min": [round(load, 1), round(os.getloadavg()[0], 1)],
              "rounds": rounds}
    rows.append({"measure": f"registering a {label} checkpoint: every sample (s), rounds "
                            f"rotated", "value": "see samples", "samples": t["samples"]})
    rows.append({"measure": f"register a new {label} checkpoint, blocking (log_model "
                            f"default wait=True) vs cp (s), medians of {rounds} rotated rounds",
                 "value": f"{r:.2f} vs {c:.2f} = x{r / c:.2f} (vs cp + fsync {cs:.2f} = "
                          f"x{r / cs:.2f})", **common})
    rows.append({"measure": f"register a new {label} checkpoint in the background "
                            f"(log_model(wait=False)): until log_model returns vs cp (s) — "
                            f"the time the training loop is blocked",
                 "value": f"{back:.2f} vs {c:.2f} = x{back / c:.2f}",
                 "target": "<= 1.2x cp", "ok": back / c <= 1.2, **common})
    rows.append({"measure": "the same, until the version is committed (hashed, synced, "
                            "recorded) vs cp + fsync (s)",
                 "value": f"{done:.2f} vs {cs:.2f} = x{done / cs:.2f} (blocking {r:.2f})",
                 **common})
    if has_mlflow:
        m = t["mlflow"]
        rows.append({"measure": f"side by side: mlflow log_artifact + model version of the same "
                                f"{label} checkpoint (s, in-process, imports excluded)",
                     "value": f"{m:.2f} = x{m / c:.2f} cp; Ato blocking x{r / m:.2f}, "
                              f"background x{back / m:.2f} of mlflow "
                              f"(mlflow neither hashes nor fsyncs)"})
    else:
        rows.append({"measure": "side by side: mlflow", "value": "not installed in --tools"})
    time.sleep(0.2)
    reg.log_model("bench", "ckpt", ckpt)  # the stat cache now trusts it
    walls, cpus = [], []
    for _ in range(9):
        start, cpu = time.perf_counter(), time.process_time()
        reg.log_model("bench", "ckpt", ckpt)
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    again = statistics.median(walls)
    rows.append({"measure": f"re-register the unchanged {label} checkpoint",
                 "value": f"{again * 1000:.1f} ms wall, {statistics.median(cpus) * 1000:.1f} ms "
                          f"CPU", "target": "<= 20 ms", "ok": again <= 0.020})
    sizes = [(label, size)]
    if big:
        free = shutil.disk_usage(tmp).free
        if free > 2.5 * 10 * GIB:  # the file, its stored copy, and room to spare
            sizes.append(("10 GiB", 10 * GIB))
        else:
            rows.append({"measure": "peak memory growth registering 10 GiB",
                         "value": f"not measured: {free / GIB:.0f} GiB free on {tmp}, "
                                  f"25 GiB needed"})
    for label_n, n in sizes:
        path = ckpt if n == size else _file(tmp / "huge.pt", n)
        growth = {}
        for mode in ("wait", "background"):
            with open(path, "r+b") as f:
                f.write(os.urandom(16))
            env = dict(os.environ, ATO_CACHE_DIR=str(tmp / "memcache"))
            out = subprocess.run([sys.executable, "-c", _MEMORY, url, str(path), mode],
                                 check=True, capture_output=True, text=True, env=env).stdout
            growth[mode] = int(out.strip()) / 1024
        for blob in list(reg.store().blobs()):
            reg.store().delete(blob.digest)
        worst = max(growth.values())
        rows.append({"measure": f"peak memory growth registering {label_n} (MB), blocking / "
                                f"background",
                     "value": f"{growth['wait']:.1f} / {growth['background']:.1f}",
                     "target": "<= 100 MB", "ok": worst <= 100})
        if path != ckpt:
            path.unlink()
    ckpt.unlink()


def bench_tree(tmp: Path, files: int, rows: list, tools: Path | None) -> None:
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
    walls, users, syss, walk_walls, walk_cpus = [], [], [], [], []
    for _ in range(5):  # the registration and the bare walk, taking turns
        r0, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        reg.use_dataset("bench", "tree", root)
        walls.append(time.perf_counter() - start)
        r1 = resource.getrusage(resource.RUSAGE_SELF)
        users.append(r1.ru_utime - r0.ru_utime)
        syss.append(r1.ru_stime - r0.ru_stime)
        start, cpu = time.perf_counter(), time.process_time()
        _scan(str(root))
        walk_walls.append(time.perf_counter() - start)
        walk_cpus.append(time.process_time() - cpu)
    again, user, sys_ = (statistics.median(x) for x in (walls, users, syss))
    rows.append({"measure": f"re-register an unchanged tree of {files:,} small files",
                 "value": f"{again:.2f} s wall, {user + sys_:.2f} s CPU ({user:.2f} user + "
                          f"{sys_:.2f} system; CPU/wall {(user + sys_) / again:.2f}); the walk "
                          f"alone {statistics.median(walk_walls):.2f} s wall, "
                          f"{statistics.median(walk_cpus):.2f} s CPU (first registration "
                          f"{first:.1f} s)",
                 "target": "<= 1.5 s", "ok": again <= 1.5,
                 "load_average_1min": round(os.getloadavg()[0], 1)})
    dvc = _tool(tools, "dvc")
    if dvc is None:
        rows.append({"measure": "side by side: dvc add", "value": "not installed in --tools"})
    else:
        repo = tmp / "dvcrepo"
        repo.mkdir()
        subprocess.run([str(dvc), "init", "--no-scm", "-q"], cwd=repo, check=True)
        target = repo / "tree"
        os.rename(root, target)
        env = dict(os.environ, DVC_NO_ANALYTICS="1")
        start = time.perf_counter()
        subprocess.run([str(dvc), "add", "-q", str(target)], cwd=repo, check=True, env=env)
        dvc_first = time.perf_counter() - start
        dvc_again = _median(lambda: subprocess.run([str(dvc), "add", "-q", str(target)],
                                                   cwd=repo, check=True, env=env), 2)
        rows.append({"measure": f"side by side: dvc add of the same {files:,}-file tree "
                                f"(first; unchanged, s)",
                     "value": f"{dvc_first:.1f}; {dvc_again:.2f} (Ato: {first:.1f}; "
                              f"{again:.2f})"})
        root = target
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
    from ato.tracking import open_finder

    finder = open_finder(url)
    times = {
        "runs_using": _median(lambda: finder.runs_using("data", 7), 15),
        "produced_by": _median(lambda: finder.produced_by("net", "champion"), 15),
        "downstream": _median(lambda: finder.downstream("data", 7), 15),
        "run_lineage": _median(lambda: finder.run_lineage(runs // 2), 15),
    }
    worst = max(times.values())
    rows.append({"measure": f"the same through the tracker protocol's finder, over {runs:,} "
                            f"runs (ms)",
                 "value": "; ".join(f"{k} {v * 1000:.1f}" for k, v in times.items()),
                 "target": "<= 20 ms", "ok": worst <= 0.020})


def parse_args(argv=None):
    import argparse

    parser = argparse.ArgumentParser(
        prog="bench_registry.py",
        description="Model registry and dataset versioning benchmarks (issue #11); results "
                    "go to benchmarks/results/registry[-quick][-sections].json.")
    parser.add_argument("--quick", action="store_true",
                        help="sizes divided by 8 (the tree by 10), lineage over 10,000 runs")
    parser.add_argument("--big", action="store_true",
                        help="also measure memory registering a 10 GiB file (needs ~25 GiB "
                             "free in /tmp; skipped, and said so, otherwise)")
    parser.add_argument("--tools", metavar="VENV", default=os.environ.get("ATO_BENCH_TOOLS"),
                        help="a virtual environment holding mlflow and dvc for the side-by-side "
                             "rows (default $ATO_BENCH_TOOLS)")
    parser.add_argument("--only", metavar="SECTIONS", default=",".join(SECTIONS),
                        help=f"comma-separated sections among {','.join(SECTIONS)} (default: all)")
    parser.add_argument("--tree-files", type=int, metavar="N",
                        help="files in the tree (default 100,000; 10,000 with --quick)")
    parser.add_argument("--rounds", type=int, default=5, metavar="N",
                        help="rotated rounds of the registering comparison (default 5)")
    args = parser.parse_args(argv)
    only = set(args.only.split(","))
    unknown = only - set(SECTIONS)
    if unknown:
        parser.error(f"--only: unknown section(s) {', '.join(sorted(unknown))}; "
                     f"choose from {','.join(SECTIONS)}")
    if args.rounds < 1 or (args.tree_files is not None and args.tree_files < 1000):
        parser.error("--rounds must be >= 1 and --tree-files >= 1000")
    args.only = only
    return args


def main(argv=None) -> None:
    args = parse_args(argv)
    tools = Path(args.tools) if args.tools else None
    only = args.only
    loads = [os.getloadavg()[0]]
    size = GIB // 8 if args.quick else GIB
    tree_files = args.tree_files or (10_000 if args.quick else 100_000)
    rows: list = []
    with tempfile.TemporaryDirectory(prefix="ato-bench-registry-", dir="/tmp") as d:
        tmp = Path(d)
        os.environ["ATO_CACHE_DIR"] = str(tmp / "cache")
        if "hash" in only:
            bench_hash(tmp, size, rows)
            loads.append(os.getloadavg()[0])
        if "register" in only:
            bench_register(tmp, size, rows, args.big, tools, args.rounds)
            loads.append(os.getloadavg()[0])
        if "tree" in only:
            bench_tree(tmp, tree_files, rows, tools)
            loads.append(os.getloadavg()[0])
        if "lineage" in only:
            bench_lineage(tmp, 10_000 if args.quick else 100_000, rows)
            loads.append(os.getloadavg()[0])
    name = "registry" + ("-quick" if args.quick else "")
    if only != set(SECTIONS):
        name += "-" + "-".join(s for s in SECTIONS if s in only)
    write_results(name, rows,
                  {"load_average_1min": [round(x, 1) for x in loads]})


if __name__ == "__main__":
    main()
