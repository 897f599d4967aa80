"""Real processes: 16 registering at once get gap-free versions and no duplicate blobs, on
SQLite and PostgreSQL; ``kill -9`` in the middle of registrations leaves only complete
versions."""

from __future__ import annotations

import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from ato.db_routers.sql.registry import Registry

# real worker processes: run by `nox -s tests` after the quick run (docs/contributing.md)
pytestmark = pytest.mark.processes

WORKER = textwrap.dedent("""
    import json, os, sys, time
    from ato.adict import ADict
    from ato.db_routers.sql.manager import SQLLogger

    url, work, idx, wait = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4] == "wait"
    config = ADict(experiment={"project_name": "proj", "sql": {"db_path": url}})
    deadline = time.time() + 60
    while not os.path.exists(os.path.join(work, "go")) and time.time() < deadline:
        time.sleep(0.005)
    with SQLLogger(config, handle_signals=False) as lg:
        own = lg.log_model("model", os.path.join(work, f"own{idx}.pt"), aliases=[f"w{idx}"],
                           wait=wait)
        shared = lg.log_model("shared", os.path.join(work, "shared.pt"), wait=wait)
        data = lg.use_dataset("data", os.path.join(work, "data"))
    if not wait:  # the with block waited for both
        own, shared = own.result(timeout=0), shared.result(timeout=0)
    print(json.dumps([own.version, shared.version, data.version]))
""")

LOOPER = textwrap.dedent("""
    import hashlib, os, sys
    from ato.adict import ADict
    from ato.db_routers.sql.manager import SQLLogger

    url, work, wait = sys.argv[1], sys.argv[2], sys.argv[3] == "wait"
    config = ADict(experiment={"project_name": "proj", "sql": {"db_path": url}})
    lg = SQLLogger(config, handle_signals=False)
    lg.run()
    print("ready", flush=True)
    i = 0
    while True:
        path = os.path.join(work, f"ckpt{os.getpid()}-{i}.pt")
        data = os.urandom(8 << 20)
        with open(path, "wb") as f:
            f.write(data)
        v = lg.log_model("big", path, step=i, aliases=["champion"] if i % 2 else [], wait=wait)
        if not wait:  # the checkpoint is written over at once: the copy was made
            with open(path, "wb") as f:
                f.write(os.urandom(8 << 20))
            # then the digest of what log_model was given, atomically: a .sha present (the
            # kill may land anywhere) means the checkpoint was already written over
            with open(path + ".sha.tmp", "w") as f:
                f.write(hashlib.sha256(data).hexdigest())
            os.replace(path + ".sha.tmp", path + ".sha")
            v = v.result()
        print(v.version, flush=True)
        i += 1
""")


@pytest.fixture
def env(tmp_path):
    e = dict(os.environ)
    e["ATO_STORE"] = str(tmp_path / "store")
    e["ATO_CACHE_DIR"] = str(tmp_path / "cache")
    e["PYTHONPATH"] = os.pathsep.join([os.getcwd(), e.get("PYTHONPATH", "")])
    return e


def _blobs(root) -> list[str]:
    if not os.path.isdir(root):
        return []
    return sorted(d + f for d in os.listdir(root) if len(d) == 2
                  for f in os.listdir(os.path.join(root, d)))


@pytest.mark.parametrize("mode", ["wait", "background"])
def test_sixteen_processes_register_at_once(db_url, tmp_path, env, monkeypatch, mode):
    """16 processes on a fresh database, registering blocking or in the background
    (``wait=False``): 0 errors, model versions 1..16 with no gap, one version of the shared
    file and of the dataset, and exactly 17 blobs."""
    work = tmp_path / "work"
    (work / "data" / "sub").mkdir(parents=True)
    (work / "data" / "a.txt").write_bytes(b"a" * 1000)
    (work / "data" / "sub" / "b.txt").write_bytes(b"b" * 1000)
    (work / "shared.pt").write_bytes(os.urandom(100_000))
    for i in range(16):
        (work / f"own{i}.pt").write_bytes(os.urandom(50_000) + bytes([i]))
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    procs = [subprocess.Popen([sys.executable, str(script), db_url, str(work), str(i), mode],
                              env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(16)]
    time.sleep(0.5)
    (work / "go").touch()
    results = []
    for p in procs:
        out, err = p.communicate(timeout=240)
        assert p.returncode == 0, err
        results.append(json.loads(out.strip().splitlines()[-1]))
    assert sorted(r[0] for r in results) == list(range(1, 17))
    assert {r[1] for r in results} == {1} and {r[2] for r in results} == {1}
    store = tmp_path / "store"
    assert len(_blobs(store)) == 17
    assert os.listdir(store / "tmp") == []
    monkeypatch.setenv("ATO_STORE", str(store))
    reg = Registry(db_url)
    assert len(reg.verify()) == 17 and {r["status"] for r in reg.verify()} == {"ok"}
    own = reg.versions("model")
    assert [v.version for v in own] == list(range(1, 17))
    # each process's alias points at the version it was given
    by_alias = {a: v.version for v in own for a in v.aliases if a.startswith("w")}
    assert len(by_alias) == 16
    assert len(reg.runs_using("data", 1)) == 16


@pytest.mark.parametrize("mode", ["wait", "background"])
def test_kill_9_leaves_no_partial_version(db_url, tmp_path, env, monkeypatch, mode):
    """A process registering 8 MiB checkpoints in a loop (blocking, or ``wait=False`` and
    the checkpoint overwritten at once) is killed with SIGKILL at random moments, five
    times, each next process continuing the same model: every recorded version has its
    complete blob, numbers have no gap, and gc then removes only what no version holds —
    including temporary copies the killed processes were hashing."""
    work = tmp_path / "work"
    work.mkdir()
    script = tmp_path / "looper.py"
    script.write_text(LOOPER)
    rng = random.Random(11)
    for _round in range(5):
        p = subprocess.Popen([sys.executable, str(script), db_url, str(work), mode], env=env,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        assert p.stdout.readline().strip() == "ready", p.stderr.read()
        p.stdout.readline()  # at least one version per round
        time.sleep(rng.uniform(0.0, 0.6))
        os.kill(p.pid, signal.SIGKILL)
        p.wait(timeout=30)
        p.stdout.close()
        p.stderr.close()
    monkeypatch.setenv("ATO_STORE", str(tmp_path / "store"))
    reg = Registry(db_url)
    versions = reg.versions("big")
    assert [v.version for v in versions] == list(range(1, len(versions) + 1))
    assert len(versions) >= 5
    for v in versions:
        assert reg.store().verify(v.digest, v.size) == "ok", f"v{v.version} is incomplete"
    assert {r["status"] for r in reg.verify()} == {"ok"}
    recorded = {v.digest for v in versions}
    reg.gc(dry_run=False, grace=0)
    assert set(_blobs(tmp_path / "store")) == recorded
    assert os.listdir(tmp_path / "store" / "tmp") == []
    last = versions[-1]
    if mode == "wait":
        assert open(reg.resolve(f"ato://proj/big@v{last.version}"), "rb").read() == open(
            last.source, "rb").read()
    else:  # each version holds the bytes its checkpoint had when log_model was called
        called = [v for v in versions if os.path.exists(v.source + ".sha")]
        assert len(called) >= len(versions) - 5
        for v in called:
            assert open(v.source + ".sha").read() == v.digest != hashlib.sha256(
                open(v.source, "rb").read()).hexdigest()
        assert reg.resolve(f"ato://proj/big@v{last.version}") == reg.store().path(last.digest)
