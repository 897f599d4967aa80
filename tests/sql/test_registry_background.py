"""Background registration, ``log_model(..., wait=False)``, on SQLite and PostgreSQL: the
call returns once the file is copied into the store, the copy is what gets hashed and
stored, versions are numbered in call order exactly as blocking registration numbers them,
the run's end waits (a failure ends it ``failed`` and is raised), and ``ato store gc``
never collects a temporary copy a live process still holds."""

from __future__ import annotations

import errno
import hashlib
import os
import signal
import subprocess
import sys
import textwrap
import threading

import pytest

import ato.artifacts as artifacts
from ato.artifacts import LocalStore, StagingError
from ato.db_routers.sql.finder import SQLFinder
from ato.db_routers.sql.manager import SQLLogger
from ato.db_routers.sql.registry import (
    BackgroundRegistrationError,
    PendingVersion,
    Registry,
    RegistryError,
)
from ato.tracking import RegistryVersion
from tests.sql.conftest import make_config
from tests.sql.registry_support import registry_env, settle, write  # noqa: F401 (fixture)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def temp_files(tmp_path) -> list[str]:
    folder = tmp_path / "store" / "tmp"
    return sorted(os.listdir(folder)) if folder.is_dir() else []


@pytest.fixture
def logger(db_url):
    lg = SQLLogger(make_config(db_url), handle_signals=False)
    yield lg
    lg._registrations.clear()  # a test that left failures behind has checked them
    lg.finish()


class TestPendingVersion:
    def test_returns_a_handle_and_stores_the_bytes_of_the_call(self, logger, tmp_path):
        """The checkpoint is overwritten right after the call returns (the next epoch):
        the version holds the bytes it had at the call, hashed from the store's copy."""
        ckpt = write(tmp_path / "last.pt", os.urandom(3 << 20) + b"epoch 1")
        first = ckpt.read_bytes()
        logger.run()
        pending = logger.log_model("net", ckpt, step=1, wait=False)
        assert isinstance(pending, PendingVersion)
        write(ckpt, b"epoch 2, another size")
        version = pending.result(timeout=60)
        assert pending.done() and pending.exception() is None
        assert isinstance(version, RegistryVersion)
        assert (version.version, version.step, version.digest) == (1, 1, sha(first))
        reg = Registry(logger.url)
        assert open(reg.store().path(version.digest), "rb").read() == first
        assert reg.get("net", 1).source == str(ckpt)
        assert temp_files(tmp_path) == []

    def test_registry_level_handle_gives_the_version(self, db_url, tmp_path):
        """``Registry.log_model(wait=False)`` hands back the registry's own ``Version``."""
        reg = Registry(db_url)
        pending = reg.log_model("proj", "net", write(tmp_path / "m.pt", b"weights"), wait=False)
        v = pending.result(timeout=60)
        assert (v.name, v.version, v.created, v.hashed_files) == ("net", 1, True, 1)
        assert "log_model('net'" in repr(pending) and "done" in repr(pending)

    def test_versions_follow_the_call_order_like_blocking_ones(self, db_url, tmp_path):
        """The same sequence of checkpoints (keep=2, an alias on the second, one repeat)
        registered blocking and in the background ends in the same versions, states and
        aliases: one code path."""
        outcome = {}
        for wait in (True, False):
            reg = Registry(db_url)
            lg = SQLLogger(make_config(db_url, project=f"p{wait}"), handle_signals=False)
            run = lg.run()
            handles = []
            for i, data in enumerate([b"a" * 100, b"b" * (9 << 20), b"c" * 100, b"a" * 100]):
                path = write(tmp_path / f"{wait}" / "ckpt.pt", data)
                handles.append(lg.log_model("net", path, step=i, keep=2, wait=wait,
                                            aliases=["second"] if i == 1 else []))
            lg.finish()
            if not wait:
                assert all(h.done() for h in handles)  # the run's end waited for them
                handles = [h.result() for h in handles]
            assert [h.version for h in handles] == [1, 2, 3, 1]
            outcome[wait] = [(v.version, v.digest, v.state, tuple(v.aliases), v.run_id == run)
                             for v in reg.versions("net", project=f"p{wait}")]
        assert outcome[True] == outcome[False]
        assert [s for _, _, s, _, _ in outcome[False]] == ["pruned", "live", "live"]

    def test_unchanged_file_is_not_read_again(self, logger, tmp_path):
        """A background registration remembers the file in the stat cache: registering it
        again (either way) reads nothing and returns the same version."""
        ckpt = write(tmp_path / "best.pt", os.urandom(1 << 20))
        settle()
        logger.run()
        first = logger.log_model("net", ckpt, wait=False).result(timeout=60)
        again = logger.log_model("net", ckpt, wait=False).result(timeout=60)
        blocking = logger.log_model("net", ckpt)
        assert (first.hashed_files, again.hashed_files, blocking.hashed_files) == (1, 0, 0)
        assert again.version == blocking.version == 1 and not again.created

    def test_directories_register_in_the_background_too(self, logger, tmp_path):
        """A directory is hashed and stored at the call; its record commits behind."""
        write(tmp_path / "model" / "weights.bin", b"w" * 1000)
        write(tmp_path / "model" / "config.json", b"{}")
        logger.run()
        v = logger.log_model("net", tmp_path / "model", wait=False).result(timeout=60)
        assert (v.is_dir, v.file_count, v.version) == (True, 2, 1)

    def test_bad_arguments_and_missing_files_fail_at_the_call(self, logger, tmp_path):
        """Nothing is queued for input that cannot work: the error comes at once."""
        logger.run()
        with pytest.raises(RegistryError, match="keep=0"):
            logger.log_model("net", write(tmp_path / "m.pt", b"x"), keep=0, wait=False)
        with pytest.raises(FileNotFoundError, match="missing.pt"):
            logger.log_model("net", tmp_path / "missing.pt", wait=False)
        assert temp_files(tmp_path) == []


class TestFailures:
    def test_a_copy_that_fails_raises_at_the_call_and_leaves_nothing(self, logger, tmp_path,
                                                                     monkeypatch):
        """An I/O error while copying is raised by log_model itself; no temporary file and
        no version remain, and the run's end has nothing to report."""
        def broken(*args):
            raise OSError(errno.EIO, "Input/output error")

        monkeypatch.setattr(artifacts.os, "copy_file_range", broken, raising=False)
        logger.run()
        with pytest.raises(OSError, match="Input/output"):
            logger.log_model("net", write(tmp_path / "m.pt", os.urandom(1000)), wait=False)
        assert temp_files(tmp_path) == []
        with pytest.raises(RegistryError):
            Registry(logger.url).versions("net")

    def test_a_background_failure_is_re_raised_and_fails_the_run(self, logger, tmp_path,
                                                                 monkeypatch, capsys):
        """Recording fails behind the caller: ``result()`` re-raises that error, and
        ``finish()`` records the run ``failed`` with the reason, prints it, then raises."""
        def no_database(self, *args, **kwargs):
            raise RuntimeError("database went away")

        monkeypatch.setattr(Registry, "_record", no_database)
        run = logger.run()
        pending = logger.log_model("net", write(tmp_path / "m.pt", b"weights"), wait=False)
        with pytest.raises(RuntimeError, match="database went away"):
            pending.result(timeout=60)
        with pytest.raises(BackgroundRegistrationError, match="database went away") as info:
            logger.finish()
        assert [p.name for p, _ in info.value.failures] == ["net"]
        row = SQLFinder(logger.config).find_run(run)
        assert row.status == "failed"
        assert "log_model('net'" in row.error and "database went away" in row.error
        assert "failed in the background" in capsys.readouterr().err

    def test_with_block_raises_unless_it_has_its_own_error(self, db_url, tmp_path,
                                                         monkeypatch):
        """A ``with`` block that ended normally raises the background failure; one that
        ended with its own exception keeps that exception (the run records both)."""
        monkeypatch.setattr(Registry, "_record", lambda *a, **k: 1 / 0)
        ckpt = write(tmp_path / "m.pt", b"weights")
        with pytest.raises(BackgroundRegistrationError, match="ZeroDivisionError"):
            with SQLLogger(make_config(db_url), handle_signals=False) as lg:
                lg.log_model("net", ckpt, wait=False)
        with pytest.raises(KeyError):
            with SQLLogger(make_config(db_url), handle_signals=False) as lg:
                run = lg.get_current_run_id()
                lg.log_model("net", ckpt, wait=False)
                raise KeyError("body")
        row = SQLFinder(make_config(db_url)).find_run(run)
        assert row.status == "failed" and "body" in row.error and "ZeroDivision" in row.error


class TestStaging:
    def test_the_hash_follows_the_copy_chunk_by_chunk(self, tmp_path, monkeypatch):
        """commit() started before copy() hashes each chunk as the kernel copies it and
        ends with the digest of every byte."""
        monkeypatch.setattr(artifacts, "STAGE_CHUNK", 1 << 20)
        data = os.urandom((5 << 20) + 123)
        store = LocalStore(tmp_path / "store")
        staged = store.stage(write(tmp_path / "big.bin", data))
        out = []
        worker = threading.Thread(target=lambda: out.append(staged.commit()))
        worker.start()
        assert staged.copy() == len(data)
        worker.join(60)
        assert out == [artifacts.Blob(sha(data), len(data))]
        assert open(store.path(sha(data)), "rb").read() == data
        assert staged.source_unchanged and os.listdir(tmp_path / "store" / "tmp") == []

    def test_a_kernel_that_cannot_copy_uses_a_buffer(self, tmp_path, monkeypatch):
        """EXDEV (another file system on an old kernel) switches to a buffered copy."""
        def cross_device(*args):
            raise OSError(errno.EXDEV, "Invalid cross-device link")

        monkeypatch.setattr(artifacts.os, "copy_file_range", cross_device, raising=False)
        data = os.urandom(3 << 20)
        store = LocalStore(tmp_path / "store")
        staged = store.stage(write(tmp_path / "a.bin", data))
        staged.copy()
        assert staged.commit() == artifacts.Blob(sha(data), len(data))

    def test_a_failed_copy_makes_commit_raise(self, tmp_path, monkeypatch):
        """After copy() raised, commit() raises StagingError naming the file, and the
        temporary file is gone."""
        def broken(*args):
            raise OSError(errno.EIO, "Input/output error")

        store = LocalStore(tmp_path / "store")
        staged = store.stage(write(tmp_path / "a.bin", b"x" * 100))
        monkeypatch.setattr(artifacts.os, "copy_file_range", broken, raising=False)
        with pytest.raises(OSError, match="Input/output"):
            staged.copy()
        with pytest.raises(StagingError, match="a.bin"):
            staged.commit()
        assert os.listdir(tmp_path / "store" / "tmp") == []

    def test_an_identical_blob_is_kept_once(self, tmp_path):
        """Staging content already stored drops the copy (deduplication)."""
        store = LocalStore(tmp_path / "store")
        data = os.urandom(10_000)
        for name in ("a", "b"):
            staged = store.stage(write(tmp_path / name, data))
            staged.copy()
            staged.commit()
        assert [b.digest for b in store.blobs()] == [sha(data)]


HOLDER = textwrap.dedent("""
    import sys, time
    from ato.artifacts import LocalStore
    staged = LocalStore(sys.argv[1]).stage(sys.argv[2])
    staged.copy()
    print("copied", flush=True)
    time.sleep(120)   # hashing would happen now; the test kills us first
""")


class TestGarbageCollection:
    @pytest.mark.processes
    def test_gc_spares_a_held_copy_and_takes_it_once_its_process_is_killed(self, tmp_path):
        """A temporary copy that a live process holds is spared by gc even with no grace
        and an old mtime; after ``kill -9`` the same file is collected."""
        store = LocalStore(tmp_path / "store")
        source = write(tmp_path / "ckpt.pt", os.urandom(1 << 20))
        env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(),
                                                           os.environ.get("PYTHONPATH", "")]))
        p = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path / "store"),
                              str(source)], stdout=subprocess.PIPE, text=True, env=env)
        try:
            assert p.stdout.readline().strip() == "copied"
            (name,) = os.listdir(tmp_path / "store" / "tmp")
            os.utime(tmp_path / "store" / "tmp" / name, (1, 1))  # as old as can be
            assert store.clean_temp(0, dry_run=False) == []
            assert os.listdir(tmp_path / "store" / "tmp") == [name]
        finally:
            os.kill(p.pid, signal.SIGKILL)
            p.wait(30)
            p.stdout.close()
        assert [b.digest for b in store.clean_temp(0, dry_run=False)] == [name]
        assert os.listdir(tmp_path / "store" / "tmp") == []

    def test_registry_gc_reports_an_orphaned_copy(self, db_url, tmp_path):
        """``Registry.gc`` lists an unlocked temporary file older than the grace period."""
        reg = Registry(db_url)
        reg.log_model("proj", "net", write(tmp_path / "m.pt", b"weights"))
        orphan = write(tmp_path / "store" / "tmp" / "123-456-789", b"partial")
        os.utime(orphan, (1, 1))
        plan = reg.gc(dry_run=True)
        assert [(i["digest"], i["size"], i["reason"]) for i in plan] == [
            ("123-456-789", 7, "temporary file")]
        reg.gc(dry_run=False)
        assert not orphan.exists()


EXITER = textwrap.dedent("""
    import os, sys
    from ato.adict import ADict
    from ato.db_routers.sql.manager import SQLLogger
    from ato.db_routers.sql.registry import Registry

    url, path, fail = sys.argv[1], sys.argv[2], sys.argv[3] == "fail"
    if fail:
        Registry._record = lambda *a, **k: 1 / 0
    lg = SQLLogger(ADict(experiment={"project_name": "proj", "sql": {"db_path": url}}))
    print(lg.run(), flush=True)
    lg.log_model("net", path, wait=False)
    # the script ends here, without finish(): the interpreter's exit must wait
""")


@pytest.mark.processes
@pytest.mark.parametrize("outcome", ["ok", "fail"])
def test_interpreter_exit_waits_for_background_registrations(db_url, tmp_path, outcome):
    """A script that ends right after ``log_model(wait=False)`` still records the version
    and ends its run ``completed``; when the background step fails, the run ends
    ``failed`` with the reason and stderr says so."""
    ckpt = write(tmp_path / "m.pt", os.urandom(12 << 20))
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(),
                                                       os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", EXITER, db_url, str(ckpt), outcome],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    run = int(done.stdout.split()[0])
    row = SQLFinder(make_config(db_url)).find_run(run)
    if outcome == "ok":
        assert row.status == "completed"
        v = Registry(db_url).get("net", project="proj")
        assert v.digest == sha(ckpt.read_bytes()) and v.run_id == run
    else:
        assert row.status == "failed" and "ZeroDivisionError" in row.error
        assert "failed in the background" in done.stderr
    assert temp_files(tmp_path) == []


def test_assets_reads_through_the_finder_query(db_url, tmp_path):
    """Registry.assets answers as the finder's registry_assets, as dicts; a bad kind is a
    RegistryError."""
    reg = Registry(db_url)
    reg.log_model("proj", "net", write(tmp_path / "m.pt", b"w"), aliases=["best"])
    reg.use_dataset("proj", "data", write(tmp_path / "d.csv", b"1,2"))
    assert reg.assets(kind="model") == [
        {"project": "proj", "kind": "model", "name": "net", "description": None,
         "versions": 1, "latest": 1, "size": 1, "aliases": {"best": 1, "latest": 1}, "tags": []}]
    assert [a["name"] for a in reg.assets()] == ["data", "net"]
    assert reg.assets(project="other") == []
    with pytest.raises(RegistryError, match="kind 'models'"):
        reg.assets(kind="models")


DROPPER = textwrap.dedent("""
    import sys
    from ato.db_routers.sql.registry import Registry

    Registry._record = lambda *a, **k: 1 / 0
    Registry(sys.argv[1]).log_model("proj", "net", sys.argv[2], wait=False)  # handle dropped
""")


@pytest.mark.processes
def test_a_dropped_handle_that_failed_is_reported_at_exit(tmp_path):
    """A failed background registration that nobody asked about is printed when the
    interpreter exits, even though its handle was dropped."""
    ckpt = write(tmp_path / "m.pt", b"weights")
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([os.getcwd(),
                                                       os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run([sys.executable, "-c", DROPPER, f"sqlite:///{tmp_path}/r.db",
                           str(ckpt)], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "log_model('net'" in done.stderr and "ZeroDivisionError" in done.stderr
    assert "was not recorded" in done.stderr


def test_wait_pending_returns_the_failures(db_url, tmp_path, monkeypatch):
    """wait_pending() waits for every background registration and lists the failed ones
    (nothing raised); a successful one is not kept."""
    from ato.db_routers.sql.registry import wait_pending

    reg = Registry(db_url)
    ok = reg.log_model("proj", "good", write(tmp_path / "a.pt", b"a"), wait=False)
    assert ok.result(timeout=60).version == 1  # before recording breaks below
    monkeypatch.setattr(Registry, "_record", lambda *a, **k: 1 / 0)
    bad = reg.log_model("proj", "bad", write(tmp_path / "b.pt", b"b"), wait=False)
    failed = [(p.name, type(e)) for p, e in wait_pending(timeout=60) if p in (ok, bad)]
    assert failed == [("bad", ZeroDivisionError)]
    assert isinstance(bad.exception(), ZeroDivisionError)
