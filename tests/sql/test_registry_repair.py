"""A re-registration repairs the store: a blob this database recorded that is missing, or
whose size differs, is written again (atomically, as a first registration writes it) and
one :class:`RegistryWarning` says so; an intact blob costs no read, and a same-size edit in
place is left to ``ato store verify``.  On SQLite and PostgreSQL, with real files."""

from __future__ import annotations

import os
import time
import warnings

import pytest

import ato.artifacts as artifacts
from ato.db_routers.sql.manager import SQLLogger
from ato.db_routers.sql.registry import Registry
from ato.db_routers.sql.registry.core import RegistryWarning
from tests.sql.registry_support import edit_in_place, registry_env, settle, write  # noqa: F401


@pytest.fixture
def logger(config):
    lg = SQLLogger(config, handle_signals=False)
    lg.run()
    yield lg
    lg.finish()


def damage(blob: str, how: str) -> None:
    """Remove the blob, or change its size keeping it read-only (as stored)."""
    if how == "missing":
        os.unlink(blob)
        return
    os.chmod(blob, 0o644)
    if how == "truncated":
        os.truncate(blob, 3)
    else:  # grown
        with open(blob, "ab") as f:
            f.write(b"tail")
    os.chmod(blob, 0o444)


def touch_later(*paths) -> None:
    """New mtimes, same bytes: the stat cache no longer vouches, the file is hashed."""
    later = time.time_ns() + 5_000_000_000
    for path in paths:
        os.utime(path, ns=(later, later))
    settle()


def registering(call):
    """``(call(), [messages of the RegistryWarnings it raised])``."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = call()
    return result, [str(w.message) for w in caught if issubclass(w.category, RegistryWarning)]


def blob_of(logger, version, path: str | None = None) -> str:
    reg = Registry(logger.url)
    files = reg.files(reg.get(version.name, version.version, kind=version.kind))
    digest = next(f["digest"] for f in files if path is None or f["path"] == path)
    return reg.store().path(digest)


def temp_files(logger) -> list:
    tmp = os.path.join(Registry(logger.url).store().root, "tmp")
    return os.listdir(tmp) if os.path.isdir(tmp) else []


@pytest.mark.parametrize("how", ["missing", "truncated", "grown"])
@pytest.mark.parametrize("path", ["cached", "hashed"])
def test_a_model_file_s_lost_blob_is_written_again_and_said_once(logger, tmp_path, how, path):
    model = write(tmp_path / "best.pt", os.urandom(4096))
    settle()
    first, said = registering(lambda: logger.log_model("net", model))
    assert said == []  # a first store is no repair
    blob = blob_of(logger, first)
    damage(blob, how)
    if path == "hashed":
        touch_later(model)
    again, said = registering(lambda: logger.log_model("net", model))
    assert (again.version, again.created, again.state) == (1, False, "live")
    # a missing blob means a fresh copy, hashed as it is made; a damaged one is replaced
    # from the file the stat cache vouches for
    assert again.hashed_files == (1 if path == "hashed" or how == "missing" else 0)
    assert len(said) == 1
    found = "missing" if how == "missing" else "damaged"
    assert said[0] == (f"model 'net' v1: repaired the store {Registry(logger.url).store().url}: "
                       f"1 {found} blob ({first.digest[:12]}) stored again from {model}")
    with open(blob, "rb") as f:
        assert f.read() == model.read_bytes()
    assert not os.stat(blob).st_mode & 0o222  # read-only, as a first registration leaves it
    assert temp_files(logger) == []
    assert [r["status"] for r in Registry(logger.url).verify()] == ["ok"]
    _, said = registering(lambda: logger.log_model("net", model))
    assert said == []  # repaired once: the next registration has nothing to say


def test_an_intact_blob_is_not_read_again(logger, tmp_path, monkeypatch):
    """The cheap path stays cheap: re-registering an unchanged, cached file hashes neither
    the file nor its blob, and says nothing."""
    model = write(tmp_path / "best.pt", os.urandom(2048))
    settle()
    first = logger.log_model("net", model)
    blob = blob_of(logger, first)
    read = []
    real = artifacts.hash_file
    monkeypatch.setattr(artifacts, "hash_file",
                        lambda p, *a, **k: read.append(os.fspath(p)) or real(p, *a, **k))
    again, said = registering(lambda: logger.log_model("net", model))
    assert (again.version, again.hashed_files, said, read) == (1, 0, [], [])
    assert os.path.isfile(blob)


def test_a_same_size_edit_is_left_to_verify_whose_fix_then_repairs(logger, tmp_path):
    """An edit in place keeping size, mode and times is not seen by a re-registration
    (that would mean reading every blob); ``verify`` finds it, and its fix — remove the
    blob, register the original again — repairs it, with the warning."""
    model = write(tmp_path / "best.pt", b"original weights" * 64)
    settle()
    first = logger.log_model("net", model)
    blob = blob_of(logger, first)
    edit_in_place(blob, b"EDITED")
    _, said = registering(lambda: logger.log_model("net", model))
    assert said == []
    reg = Registry(logger.url)
    (bad,) = reg.verify()
    assert bad["status"] == "modified"
    fix = reg.repair_hint(bad["store"], bad["digest"], bad["status"])
    assert fix.startswith(f"fix: rm -f {blob}; then register the original again (log_model")
    os.unlink(blob)
    _, said = registering(lambda: logger.log_model("net", model))
    assert len(said) == 1 and "1 missing blob" in said[0]
    assert [r["status"] for r in reg.verify()] == ["ok"]


def test_a_lost_blob_whose_original_changed_is_retired_by_delete_and_gc(logger, tmp_path):
    """When the file a lost blob came from was overwritten since (the next checkpoint), the
    fix does not send the user to register it again: it names what changed and how to
    retire the version; after `delete` and gc, verify is clean again."""
    model = write(tmp_path / "last.pt", b"epoch 1" * 64)
    settle()
    first = logger.log_model("net", model)
    write(model, b"epoch 2, longer" * 64)
    settle()
    logger.log_model("net", model)
    os.unlink(blob_of(logger, first))
    reg = Registry(logger.url)
    (bad,) = [r for r in reg.verify() if r["status"] != "ok"]
    fix = reg.repair_hint(bad["store"], bad["digest"], bad["status"])
    assert f"{model}, has another size now" in fix
    db = f"--db {logger.url}"
    assert f"'ato models delete net 1 {db}' and 'ato store gc --delete {db}' retire it" in fix
    reg.delete_versions("net", [1])
    assert [r["digest"] for r in reg.gc(dry_run=False, grace=3600)] == [bad["digest"]]
    assert all(r["status"] == "ok" for r in reg.verify())
    assert [v.state for v in reg.versions("net")] == ["collected", "live"]


@pytest.mark.parametrize("kind", ["model", "dataset"])
def test_a_directory_s_lost_blobs_are_listed_in_one_warning(logger, tmp_path, kind):
    """A directory (a model, or a dataset stored with copy=True): one warning for the
    registration, counting the missing and the damaged blobs; untouched blobs stay."""
    root = tmp_path / "tree"
    for name in ("a.bin", "b.bin", "c.bin", "sub/d.bin"):
        write(root / name, os.urandom(300) + name.encode())
    settle()

    def register():
        if kind == "model":
            return logger.log_model("tree", root)
        return logger.use_dataset("tree", root, copy=True)

    first, said = registering(register)
    assert said == []
    gone, cut = blob_of(logger, first, "a.bin"), blob_of(logger, first, "sub/d.bin")
    kept = blob_of(logger, first, "b.bin")
    kept_inode = os.stat(kept).st_ino
    damage(gone, "missing")
    damage(cut, "truncated")
    again, said = registering(register)
    assert (again.version, again.created) == (1, False)
    assert len(said) == 1
    assert said[0].startswith(f"{kind} 'tree' v1: repaired the store ")
    assert "1 missing blob (" in said[0] and " and 1 damaged blob (" in said[0]
    assert said[0].endswith(f"stored again from {root}")
    assert os.path.getsize(gone) == os.path.getsize(root / "a.bin")
    assert open(cut, "rb").read() == (root / "sub" / "d.bin").read_bytes()
    assert os.stat(kept).st_ino == kept_inode  # an intact blob is not rewritten
    assert all(r["status"] == "ok" for r in Registry(logger.url).verify())


def test_data_recorded_in_place_has_no_blob_to_repair(logger, tmp_path):
    root = tmp_path / "data"
    write(root / "x.csv", b"1,2\n")
    settle()
    first, said = registering(lambda: logger.use_dataset("data", root))
    again, said_again = registering(lambda: logger.use_dataset("data", root))
    assert first.store_url is None and (again.version, said, said_again) == (1, [], [])


def test_content_recorded_under_another_name_is_a_repair_too(logger, tmp_path):
    """The store is shared by every asset: a blob recorded for model ``a`` and since lost
    is a repair when model ``b`` brings the same bytes, even though ``b`` is new."""
    model = write(tmp_path / "w.pt", os.urandom(1024))
    settle()
    first = logger.log_model("a", model)
    damage(blob_of(logger, first), "missing")
    other, said = registering(lambda: logger.log_model("b", model))
    assert (other.version, other.created) == (1, True)
    assert len(said) == 1 and said[0].startswith("model 'b' v1: repaired the store")


def test_a_background_registration_repairs_and_says_so(logger, tmp_path):
    model = write(tmp_path / "best.pt", os.urandom(4096))
    settle()
    first = logger.log_model("net", model)
    blob = blob_of(logger, first)
    damage(blob, "missing")
    touch_later(model)
    again, said = registering(lambda: logger.log_model("net", model, wait=False).result())
    assert (again.version, again.created) == (1, False)
    assert len(said) == 1 and "1 missing blob" in said[0]
    assert open(blob, "rb").read() == model.read_bytes()
