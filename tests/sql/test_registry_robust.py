"""Registering datasets and models robustly: a stat cache that cannot be used, Ctrl-C
while registering, operating-system errors that name what was registered, and symbolic
links to directories inside a dataset."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import warnings

import pytest

from ato.artifacts import StatCache
from ato.db_routers.sql.registry import Registry, RegistryError
from ato.db_routers.sql.registry.core import RegistryWarning
from tests.sql.registry_support import registry_env, settle, write  # noqa: F401 (fixture)


def _registry(tmp_path) -> Registry:
    return Registry(f"sqlite:///{tmp_path / 'reg.db'}")


# --------------------------------------------------------------------------- 1. stat cache
def _unusable_cache_dirs(tmp_path):
    regular = write(tmp_path / "a-file", b"not a directory")
    return {"under /proc": "/proc/nope", "a regular file": str(regular),
            "below a regular file": str(regular / "sub")}


@pytest.mark.parametrize("case", ["under /proc", "a regular file", "below a regular file"])
def test_uncreatable_cache_dir_registers_without_cache_and_warns_once(tmp_path, monkeypatch,
                                                                       case):
    where = _unusable_cache_dirs(tmp_path)[case]
    monkeypatch.setenv("ATO_CACHE_DIR", where)
    write(tmp_path / "d" / "a", b"a")
    write(tmp_path / "f.bin", b"f" * 10)
    reg = _registry(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        v1 = reg.use_dataset("p", "d", tmp_path / "d")
        v2 = reg.log_model("p", "m", tmp_path / "f.bin")
        again = reg.use_dataset("p", "d", tmp_path / "d")
    assert (v1.version, v2.version, again.created) == (1, 1, False)
    about = [w for w in caught if issubclass(w.category, RegistryWarning)
             and "stat cache" in str(w.message)]
    assert len(about) == 1, [str(w.message) for w in caught]
    text = str(about[0].message)
    assert where in text and "$ATO_CACHE_DIR" in text and "Error" in text
    # the directory the user set is named as set, not as the default
    assert f"$ATO_CACHE_DIR is set to {where!r}: set it to a writable directory, or unset " \
        f"it to use the default" in text and f"(default {where})" not in text, text
    assert about[0].filename == __file__  # names the caller's line


def test_home_on_read_only_file_system_registers(tmp_path, monkeypatch):
    monkeypatch.delenv("ATO_CACHE_DIR")
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    monkeypatch.setenv("HOME", "/proc/nohome")
    write(tmp_path / "d" / "a", b"a")
    with pytest.warns(RegistryWarning, match=r"/proc/nohome/\.cache/ato.*\$ATO_CACHE_DIR is not "
                      r"set, so the default /proc/nohome/\.cache/ato is used: set \$ATO_CACHE_DIR"
                      r" to a writable directory"):
        assert _registry(tmp_path).use_dataset("p", "d", tmp_path / "d").version == 1


def test_corrupt_cache_file_registers(tmp_path, monkeypatch):
    cache = tmp_path / "garbage-cache"
    write(cache / "statcache.sqlite", os.urandom(4096))
    monkeypatch.setenv("ATO_CACHE_DIR", str(cache))
    write(tmp_path / "d" / "a", b"a")
    with pytest.warns(RegistryWarning, match="not a database"):
        v = _registry(tmp_path).use_dataset("p", "d", tmp_path / "d")
    assert v.file_count == 1


def test_locked_cache_file_registers(tmp_path, monkeypatch):
    import ato.artifacts as artifacts

    monkeypatch.setattr(artifacts, "CACHE_BUSY_S", 0.2)
    cache = tmp_path / "locked-cache"
    cache.mkdir()
    holder = sqlite3.connect(cache / "statcache.sqlite", isolation_level=None)
    holder.execute("CREATE TABLE other (a)")
    holder.execute("BEGIN EXCLUSIVE")  # another process holding it for good
    try:
        monkeypatch.setenv("ATO_CACHE_DIR", str(cache))
        write(tmp_path / "f.bin", b"x" * 100)
        with pytest.warns(RegistryWarning, match="locked"):
            v = _registry(tmp_path).log_model("p", "m", tmp_path / "f.bin")
        assert v.version == 1
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def _world_readable_dir(tmp_path):
    """A directory every user can reach (pytest's own tmp dirs are private to root)."""
    import pathlib
    import tempfile

    top = pathlib.Path(tempfile.mkdtemp(prefix="ato-perm-"))
    os.chmod(top, 0o755)
    (tmp_path / "cleanup").write_text(str(top))
    return top


@pytest.fixture(autouse=True)
def _remove_world_readable(tmp_path):
    yield
    marker = tmp_path / "cleanup"
    if marker.exists():
        import shutil

        shutil.rmtree(marker.read_text(), ignore_errors=True)


def test_read_only_cache_file_registers(tmp_path):
    """As a user who may not write the cache file (root may write anything: the child
    process drops to nobody)."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    top = _world_readable_dir(tmp_path)
    cache = top / "ro-cache"
    StatCache(str(cache / "statcache.sqlite")).tree_row("/")
    os.chmod(cache / "statcache.sqlite", 0o444)
    work = top / "work"
    write(work / "d" / "a", b"a")
    for p in (work, work / "d", work / "d" / "a"):
        os.chown(p, 65534, 65534)
    code = f"""
import os, warnings
os.environ.update(ATO_CACHE_DIR={str(cache)!r}, ATO_STORE={str(work / 'store')!r})
import array, hashlib, queue, sqlite3, concurrent.futures.thread  # the interpreter's files are root's
from ato.db_routers.sql.registry import Registry, RegistryError
reg = Registry({f"sqlite:///{work / 'reg.db'}"!r})
reg.versions  # opened as root, used as nobody
for f in os.listdir({str(work)!r}):
    os.chown(os.path.join({str(work)!r}, f), 65534, 65534)
os.setgid(65534); os.setuid(65534)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    v = reg.use_dataset("p", "d", {str(work / 'd')!r})
print(v.version, v.file_count)
print(*[str(w.message) for w in caught], sep="\\n")
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=120, cwd=str(work))
    assert out.returncode == 0, out.stderr
    first, *warned = out.stdout.splitlines()
    assert first == "1 1"
    assert len([w for w in warned if "stat cache" in w and "readonly" in w]) == 1, warned


# --------------------------------------------------------------------------- 3. OS errors
def _as_nobody(tmp_path, setup, body: str):
    """Run ``body`` (Python, with ``reg`` a Registry on ``top/reg.db``, ``top`` the
    directory and ``RegistryError`` imported) as the user nobody, after ``setup(top)`` ran
    as root; returns the completed process.  Root reads and writes anything, so permission
    errors are only seen by another user."""
    if os.geteuid() != 0:
        pytest.skip("needs root to drop to another user")
    top = _world_readable_dir(tmp_path)
    setup(top)
    code = f"""
import os, sys
top = {str(top)!r}
os.environ.update(ATO_CACHE_DIR=os.path.join(top, "cache"))
import array, hashlib, queue, sqlite3, concurrent.futures.thread, shlex, urllib.parse
from ato.db_routers.sql.registry import Registry, RegistryError
reg = Registry("sqlite:///" + os.path.join(top, "reg.db"))
reg.versions
os.chown(os.path.join(top, "reg.db"), 65534, 65534)
os.chown(top, 65534, 65534)
os.setgid(65534); os.setuid(65534)
try:
{chr(10).join('    ' + line for line in body.strip().splitlines())}
except RegistryError as e:
    print("RegistryError:", e)
"""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, cwd=str(top), env=dict(os.environ, ATO_STORE=str(top / "store")))


def test_unreadable_file_in_dataset_names_dataset_and_file(tmp_path):
    def setup(top):
        write(top / "ds" / "ok", b"ok")
        write(top / "ds" / "secret", b"s")
        os.chmod(top / "ds" / "secret", 0)

    out = _as_nobody(tmp_path, setup, "reg.use_dataset('p', 'ds', os.path.join(top, 'ds'))")
    assert out.returncode == 0, out.stderr
    assert "RegistryError: dataset 'ds': cannot read" in out.stdout, out.stdout
    assert "/ds/secret" in out.stdout and "Permission denied" in out.stdout


def test_read_only_store_names_the_store_and_the_setting(tmp_path):
    def setup(top):
        (top / "store").mkdir()  # root's, read-only for others
        write(top / "m.bin", b"m" * 100)
        write(top / "tree" / "a", b"a")
        os.chmod(top / "m.bin", 0o644)

    out = _as_nobody(tmp_path, setup, """
try:
    reg.log_model('p', 'm', os.path.join(top, 'm.bin'))
except RegistryError as e:
    print("RegistryError:", e)
reg.log_model('p', 'tree', os.path.join(top, 'tree'))
""")
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert len(lines) == 2, out.stdout
    for line, name in zip(lines, ("m", "tree")):
        assert line.startswith(f"RegistryError: model {name!r}: the artifact store file://"), line
        assert "cannot be written (Permission denied" in line
        assert "experiment.sql.store" in line and "$ATO_STORE" in line


def test_empty_directory_is_a_registry_error_naming_the_dataset(tmp_path):
    (tmp_path / "empty").mkdir()
    with pytest.raises(RegistryError, match=r"dataset 'e': .*empty: the directory holds no "):
        _registry(tmp_path).use_dataset("p", "e", tmp_path / "empty")
    with pytest.raises(RegistryError, match=r"model 'e': .*empty: the directory holds no "):
        _registry(tmp_path).log_model("p", "e", tmp_path / "empty")


# --------------------------------------------------------------------------- 4. symbolic links
def test_links_to_directories_are_followed(tmp_path):
    """``train -> /mnt/disk2/train``: the data behind the link is recorded (and resolving
    the version in place checks it through the same link)."""
    write(tmp_path / "d4" / "q", b"q")
    write(tmp_path / "real" / "r1", b"r1")
    write(tmp_path / "real" / "sub" / "r2", b"r2")
    os.symlink("../real", tmp_path / "d4" / "linked")
    reg = _registry(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # nothing skipped, nothing to say
        v = reg.use_dataset("p", "d4", tmp_path / "d4")
    assert v.file_count == 3
    assert [f["path"] for f in reg.files(v)] == ["linked/r1", "linked/sub/r2", "q"]
    settle()
    assert not reg.use_dataset("p", "d4", tmp_path / "d4").created
    write(tmp_path / "real" / "sub" / "r2", b"changed")
    assert reg.use_dataset("p", "d4", tmp_path / "d4").version == 2
    assert reg.resolve("ato://p/d4@v2") == str(tmp_path / "d4")


def test_links_making_cycles_or_duplicates_are_skipped_with_a_warning(tmp_path):
    write(tmp_path / "d5" / "a", b"a")
    write(tmp_path / "d5" / "sub" / "b", b"b")
    os.symlink(".", tmp_path / "d5" / "self")
    os.symlink("..", tmp_path / "d5" / "sub" / "up")
    os.symlink("sub", tmp_path / "d5" / "again")
    with pytest.warns(RegistryWarning) as caught:
        v = _registry(tmp_path).use_dataset("p", "d5", tmp_path / "d5")
    assert v.file_count == 2
    said = sorted(str(w.message) for w in caught if "symbolic link" in str(w.message))
    assert len(said) == 3, said
    root = str(tmp_path / "d5")
    assert said[0].startswith(f"dataset 'd5': skipped the symbolic link {root}/again -> "
                              f"{root}/sub: the same directory as sub/")
    assert f"{root}/self -> {root}: a link to its own ancestor (a cycle)" in said[1]
    assert f"{root}/sub/up -> {root}: a link to its own ancestor (a cycle)" in said[2]
    assert all(w.filename == __file__ for w in caught)


def test_walk_files_follows_links_to_directories(tmp_path):
    from ato.artifacts import walk_files

    write(tmp_path / "d" / "a", b"a")
    write(tmp_path / "elsewhere" / "b", b"b")
    os.symlink(tmp_path / "elsewhere", tmp_path / "d" / "link")
    os.symlink(tmp_path / "d", tmp_path / "d" / "loop")
    skipped: list = []
    assert [rel for rel, _, _ in walk_files(str(tmp_path / "d"), skipped)] == ["a", "link/b"]
    assert [s[0] for s in skipped] == ["loop"]


def test_logger_registry_calls_have_their_protocol_parameters():
    """An editor shows the real keyword parameters (no ``**options``), the same as the
    tracker protocol's."""
    import inspect

    from ato.db_routers.sql.manager import SQLLogger
    from ato.tracking.registry import RegistryLogger

    for call in ("use_dataset", "use_reference", "use_model", "log_model"):
        mine = inspect.signature(getattr(SQLLogger, call)).parameters
        theirs = inspect.signature(getattr(RegistryLogger, call)).parameters
        assert not any(p.kind is p.VAR_KEYWORD for p in mine.values()), call
        assert set(theirs) <= set(mine), (call, set(theirs) - set(mine))
        for name, p in theirs.items():
            if name != "self":
                assert mine[name].default == p.default, (call, name)
    assert {"etag", "size", "copy", "meta"} <= set(
        inspect.signature(SQLLogger.use_dataset).parameters)


# --------------------------------------------------------------------------- 2. Ctrl-C
_HOLD_DB = """
import sqlite3, threading, time
def hold_database(path, seconds):
    '''Another writer holding the database: the registration's record waits for it.'''
    holder = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    holder.execute("BEGIN IMMEDIATE")
    def release():
        time.sleep(seconds)
        holder.execute("ROLLBACK")
    threading.Thread(target=release, daemon=True).start()
"""


def _child(tmp_path, code: str) -> subprocess.Popen:
    script = tmp_path / "child.py"
    script.write_text(_HOLD_DB + code)
    return subprocess.Popen([sys.executable, str(script)], cwd=str(tmp_path), text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))


def _recorded(tmp_path) -> list:
    conn = sqlite3.connect(tmp_path / "reg.db")
    try:
        return conn.execute("SELECT version FROM registry_versions").fetchall()
    finally:
        conn.close()


def _temporary_files(tmp_path) -> list:
    tmp = tmp_path / "store" / "tmp"
    return sorted(os.listdir(tmp)) if tmp.is_dir() else []


@pytest.mark.processes
def test_ctrl_c_during_a_blocking_registration_records_nothing(tmp_path):
    """log_model(wait=True) interrupted before it returns: the background step (here
    waiting for the database) is cancelled — no version, no temporary file left."""
    import signal
    import time

    write(tmp_path / "big.pt", os.urandom(1 << 20) * 64)
    child = _child(tmp_path, f"""
from ato.db_routers.sql.registry import Registry
reg = Registry("sqlite:///{tmp_path / 'reg.db'}")
hold_database("{tmp_path / 'reg.db'}", 4)
print("ready", flush=True)
try:
    reg.log_model("p", "m", "big.pt")
    print("returned")
except KeyboardInterrupt:
    print("interrupted")
""")
    assert child.stdout.readline() == "ready\n"
    time.sleep(1.5)
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=120)
    assert out == "interrupted\n", (out, err)
    assert child.returncode == 0, err
    assert _recorded(tmp_path) == []
    assert _temporary_files(tmp_path) == []


@pytest.mark.processes
def test_ctrl_c_twice_abandons_pending_background_registrations(tmp_path):
    """log_model(wait=False), then Ctrl-C: the run's end says it waits for the pending
    registration; a second Ctrl-C abandons it — nothing recorded, no temporary file."""
    import signal
    import threading
    import time

    write(tmp_path / "big.pt", os.urandom(1 << 20) * 16)
    child = _child(tmp_path, f"""
from ato.tracking import open_logger
logger = open_logger("sqlite:///{tmp_path / 'reg.db'}", project="p")
logger.run()
hold_database("{tmp_path / 'reg.db'}", 6)
logger.log_model("m", "big.pt", wait=False)
print("ready", flush=True)
time.sleep(60)
""")
    assert child.stdout.readline() == "ready\n"
    lines: list = []
    reader = threading.Thread(target=lambda: lines.extend(child.stderr), daemon=True)
    reader.start()
    child.send_signal(signal.SIGINT)
    deadline = time.monotonic() + 30
    while not any("waiting for" in line for line in lines) and time.monotonic() < deadline:
        time.sleep(0.05)
    child.send_signal(signal.SIGINT)
    child.wait(timeout=120)
    reader.join(timeout=10)
    text = "".join(lines)
    assert "ato: run 1: waiting for 1 pending registration(s) (Ctrl-C again to abandon)" in text
    assert "ato: run 1: abandoned 1 pending registration(s): nothing recorded for them" in text
    assert child.returncode != 0  # KeyboardInterrupt
    assert _recorded(tmp_path) == []
    assert _temporary_files(tmp_path) == []
    conn = sqlite3.connect(tmp_path / "reg.db")
    assert conn.execute("SELECT status FROM experiments").fetchall() == [("killed",)]
    conn.close()


@pytest.mark.processes
def test_ctrl_c_during_store_verify_is_one_line(tmp_path):
    """A verify thread stuck in a blob (here a FIFO put in place of an empty blob, which
    never ends) does not hold the interrupt: one line, status 130, no traceback."""
    import signal
    import time

    reg = _registry(tmp_path)
    write(tmp_path / "empty.bin", b"")
    write(tmp_path / "full.bin", b"x" * 1000)
    stuck = reg.log_model("p", "empty", tmp_path / "empty.bin")
    reg.log_model("p", "full", tmp_path / "full.bin")
    blob = reg.store().path(stuck.digest)
    os.chmod(blob, 0o644)
    os.unlink(blob)
    os.mkfifo(blob)
    child = subprocess.Popen([sys.executable, "-m", "ato.cli", "store", "verify", "--db",
                              f"sqlite:///{tmp_path / 'reg.db'}"], text=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    time.sleep(4)  # started, one thread blocked reading the FIFO
    assert child.poll() is None
    child.send_signal(signal.SIGINT)
    out, err = child.communicate(timeout=60)
    assert child.returncode == 130, err
    assert err == "ato store verify: interrupted before every blob was checked (nothing changed)\n"


def test_cancelled_staged_copy_places_nothing(tmp_path):
    import threading

    from ato.artifacts import LocalStore, StagingError

    store = LocalStore(tmp_path / "store")
    write(tmp_path / "f.bin", os.urandom(3 << 20))
    staged = store.stage(tmp_path / "f.bin")
    staged.copy()
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(StagingError, match="cancelled"):
        staged.commit(buffer_size=1 << 20, cancel=cancel)
    assert os.listdir(tmp_path / "store" / "tmp") == [] and list(store.blobs()) == []


@pytest.mark.processes
@pytest.mark.parametrize("with_logger", [True, False])
def test_exit_says_it_waits_for_pending_registrations(tmp_path, with_logger):
    """A script that ends with a registration still running is not held silently: the
    wait is announced, then the registration completes and is recorded."""
    write(tmp_path / "m.pt", b"m" * 1000)
    if with_logger:
        body = f"""
from ato.tracking import open_logger
logger = open_logger("sqlite:///{tmp_path / 'reg.db'}", project="p")
logger.run()
hold_database("{tmp_path / 'reg.db'}", 2)
logger.log_model("m", "m.pt", wait=False)
"""
    else:
        body = f"""
from ato.db_routers.sql.registry import Registry
reg = Registry("sqlite:///{tmp_path / 'reg.db'}")
hold_database("{tmp_path / 'reg.db'}", 2)
reg.log_model("p", "m", "m.pt", wait=False)
"""
    child = _child(tmp_path, body)
    out, err = child.communicate(timeout=120)
    assert child.returncode == 0, err
    assert "waiting for 1 pending registration(s) (Ctrl-C to abandon)" in err
    assert _recorded(tmp_path) == [(1,)]
