"""A project folder moved with its SQLite database and the store beside it (``mv /tmp/p
/tmp/p-moved``) keeps every version; reporting commands never write into a store."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys

import pytest

from ato.db_routers.sql.engine import forget_engine
from ato.db_routers.sql.registry import Registry, RegistryError, resolve
from ato.db_routers.sql.registry.core import known_databases
from tests.sql.registry_support import registry_env, settle, write  # noqa: F401 (fixture)


def ato(*args, cwd=None, env=None):
    env = {**os.environ, **(env or {})}
    env.pop("ATO_STORE", None)
    return subprocess.run([sys.executable, "-m", "ato.cli", *args], capture_output=True,
                          text=True, timeout=120, cwd=cwd, env=env)


def tree(root):
    """Every path under ``root``, relative."""
    return sorted(os.path.relpath(os.path.join(base, n), root)
                  for base, dirs, files in os.walk(root) for n in dirs + files)


@pytest.fixture
def project(tmp_path, monkeypatch):
    """``tmp/p``: ``c.db`` with its default store ``c.ato-store`` beside it, holding a
    stored dataset directory ``dsc`` (checked out) and a model ``net``."""
    monkeypatch.delenv("ATO_STORE")
    p = tmp_path / "p"
    url = f"sqlite:///{p / 'c.db'}"
    write(p / "data" / "a.txt", b"a" * 10)
    write(p / "data" / "b.txt", b"b" * 20)
    write(p / "m.pt", b"weights")
    settle()
    reg = Registry(url)
    reg.use_dataset("p", "dsc", p / "data", copy=True)
    reg.log_model("p", "net", p / "m.pt")
    resolve("ato://p/dsc", db=url)
    forget_engine(url)
    return p


def test_a_moved_project_resolves_and_verifies(project, tmp_path):
    """resolve, verify, du and gc find the store beside the database where it now is
    (it said 'blob … is missing from file:///tmp/p/c.ato-store', verify reported every
    blob MISSING and advised deleting), and none of them re-creates the old path."""
    moved = tmp_path / "p-moved"
    os.rename(project, moved)
    url = f"sqlite:///{moved / 'c.db'}"
    checkout = resolve("ato://p/dsc", db=url)
    assert checkout.startswith(str(moved / "c.ato-store")) and \
        sorted(os.listdir(checkout)) == ["a.txt", "b.txt"]
    assert open(resolve("ato://p/net", db=url), "rb").read() == b"weights"
    before = tree(moved)
    proc = ato("store", "verify", "--db", url)
    assert proc.returncode == 0 and "3 blobs and 1 checkout checked" in proc.stdout, \
        proc.stdout + proc.stderr
    for args in (("du",), ("gc",), ("verify", "--quick")):
        proc = ato("store", *args, "--db", url)
        assert proc.returncode == 0 and not proc.stderr, (args, proc.stdout + proc.stderr)
    assert tree(moved) == before, "a reporting command wrote into the store"
    du = ato("store", "du", "--db", url).stdout
    assert f"file://{moved / 'c.ato-store'}" in du
    # the store lists the database at its old place: that entry is this database, moved
    proc = ato("store", "gc", "--delete", "--grace", "0", "--db", url)
    assert proc.returncode == 0 and "freed 0 B (0 bytes) in 0 files" in proc.stdout, \
        proc.stdout + proc.stderr
    assert not project.exists(), "a command re-created the old store"
    forget_engine(url)


def test_registering_after_the_move_keeps_one_store(project, tmp_path):
    """A version registered after the move goes to the moved store under the name the
    earlier ones were recorded by, so gc --delete (grace 0) never takes the new blob for
    one no version records, and the old entry of the database in the store's list is
    not taken for another database that is gone."""
    moved = tmp_path / "p-moved"
    os.rename(project, moved)
    url = f"sqlite:///{moved / 'c.db'}"
    reg = Registry(url)
    v = reg.log_model("p", "net", write(moved / "m2.pt", b"weights 2"))
    assert v.store_url == f"file://{project / 'c.ato-store'}"
    assert reg.store().has(v.digest) and os.path.isfile(
        os.path.join(moved, "c.ato-store", v.digest[:2], v.digest[2:]))
    assert reg.gc(dry_run=False, grace=0) == []
    assert all(r["status"] == "ok" for r in reg.verify())
    assert open(resolve("ato://p/net", db=url), "rb").read() == b"weights 2"
    assert not project.exists()
    forget_engine(url)


def test_a_store_nowhere_to_be_found_is_one_problem_not_a_deletion(project, tmp_path):
    """The database moved without its store: verify says the store is missing and where it
    looked, exit 1, and advises no 'delete'; gc --delete deletes nothing and marks nothing
    collected."""
    moved = tmp_path / "elsewhere"
    moved.mkdir()
    for name in os.listdir(project):
        if name.startswith("c.db"):  # its -wal and -shm too
            shutil.move(str(project / name), moved / name)
    shutil.move(str(project / "c.ato-store"), tmp_path / "archive")
    url = f"sqlite:///{moved / 'c.db'}"
    os.mkdir(moved / "c.ato-store")  # an empty default store beside it: no blobs there
    os.mkdir(moved / "c.ato-store" / "tmp")
    proc = ato("store", "verify", "--db", url)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"store {project / 'c.ato-store'} is missing" in proc.stdout
    assert "MISSING   store" in proc.stdout and "3 recorded blobs not checked" in proc.stdout
    for advice in (" delete ", "--delete", "rm -f"):
        assert advice not in proc.stdout, proc.stdout
    assert "--store DIR" in proc.stdout
    proc = ato("store", "gc", "--delete", "--grace", "0", "--db", url)
    assert proc.returncode == 2 and "gc deletes nothing" in proc.stderr, proc.stderr
    with pytest.raises(RegistryError, match=f"store {project / 'c.ato-store'} is missing"):
        resolve("ato://p/net", db=url)
    assert {v.state for v in Registry(url, engine=None).versions("net")} == {"live"}
    # pointed at where it is now, every blob is found (the store lists the database at
    # its old place, which cannot be told from another database that is gone)
    proc = ato("store", "verify", "--db", url, "--store", str(tmp_path / "archive"))
    assert "3 blobs and 1 checkout checked" in proc.stdout, proc.stdout + proc.stderr
    assert "MISSING" not in proc.stdout and f"UNREADABLE database sqlite:///{project}" \
        in proc.stdout, proc.stdout
    forget_engine(url)


def test_reporting_never_enrols_a_database(project, tmp_path):
    """`ato store du/verify/gc` on a throwaway copy of the database left it listed by the
    store, and once the copy was deleted gc --delete of the real one refused until
    --forget-db: only registering enrols a database."""
    url = f"sqlite:///{project / 'c.db'}"
    store = Registry(url).store()
    listed = known_databases(store)
    copy = project / "copy.db"
    with sqlite3.connect(project / "c.db") as src, sqlite3.connect(copy) as dst:
        src.backup(dst)
    src.close()
    dst.close()
    curl = f"sqlite:///{copy}"
    for args in (("du",), ("verify",), ("verify", "--quick"), ("gc",)):
        proc = ato("store", *args, "--db", curl, "--store", str(project / "c.ato-store"))
        assert proc.returncode == 0, (args, proc.stdout + proc.stderr)
    assert known_databases(store) == listed
    copy.unlink()
    proc = ato("store", "gc", "--delete", "--db", url)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    forget_engine(url)
    forget_engine(curl)


@pytest.mark.parametrize("content", ["empty", "files"])
def test_store_option_on_a_directory_that_is_not_a_store(project, tmp_path, content):
    """`--store DIR` on an existing directory that is no store got a `databases/` folder
    written into it: refused by every reporting command, nothing written."""
    url = f"sqlite:///{project / 'c.db'}"
    other = tmp_path / "notes"
    other.mkdir()
    if content == "files":
        write(other / "todo.txt", b"x")
    before = tree(other)
    for args in (("du",), ("verify",), ("gc",)):
        proc = ato("store", *args, "--db", url, "--store", str(other))
        assert proc.returncode == 2, (args, proc.stdout + proc.stderr)
        assert f"{other} is not an artifact store" in proc.stderr and \
            proc.stderr.count("\n") == 1, proc.stderr
    assert tree(other) == before
    forget_engine(url)


def test_a_server_database_uses_the_stores_its_versions_recorded(db_url, tmp_path,
                                                                  monkeypatch):
    """Without --store or $ATO_STORE a PostgreSQL database reports on the stores its
    versions were recorded in (as the docs say); with none recorded it fails, naming what
    to set."""
    if db_url.startswith("sqlite"):
        pytest.skip("a SQLite file always has its default store")
    reg = Registry(db_url)
    proc = ato("store", "du", "--db", db_url)
    assert proc.returncode == 2 and "no artifact store" in proc.stderr, proc.stderr
    reg.log_model("p", "net", write(tmp_path / "m.pt", b"weights"))
    monkeypatch.delenv("ATO_STORE")
    for args in (("du",), ("verify",), ("gc",)):
        proc = ato("store", *args, "--db", db_url)
        assert proc.returncode == 0, (args, proc.stdout + proc.stderr)
    assert str(tmp_path / "store") in ato("store", "du", "--db", db_url).stdout


def copied_away(project, copy):
    """``cp -r project copy``, a new version of ``net`` registered in the copy (its versions
    then record two store names for one store), ``rm -r project``: ``(copy, its URL)``."""
    shutil.copytree(project, copy)
    url = f"sqlite:///{copy / 'c.db'}"
    write(copy / "n.pt", b"new weights")
    settle()
    Registry(url).log_model("p", "net", copy / "n.pt")
    forget_engine(url)
    shutil.rmtree(project)
    return copy, url


def test_gc_never_frees_a_blob_a_live_version_holds_after_a_copy(project, tmp_path):
    """``cp -r`` of a project, a registration in the copy, ``rm -r`` of the original and
    the gc the error itself suggests (``--forget-db`` the original, ``--delete``): every
    live version still resolves.  gc once listed the copy's blobs '(not recorded)' (its
    versions recorded the original's store name) and freed them."""
    copy, url = copied_away(project, tmp_path / "copy")
    gone = f"sqlite:///{project / 'c.db'}"
    dry = ato("store", "gc", "--forget-db", gone, "--grace", "0", "--db", url)
    assert dry.returncode == 0, dry.stderr
    assert "not recorded" not in dry.stdout, dry.stdout
    done = ato("store", "gc", "--forget-db", gone, "--delete",
               "--grace", "0", "--db", url)
    assert done.returncode == 0, done.stderr
    assert "not recorded" not in done.stdout and "only unkept" not in done.stdout, done.stdout
    for ref in ("v1", "v2"):
        assert os.path.isfile(resolve(f"ato://p/net@{ref}", db=url))
    assert os.path.isdir(resolve("ato://p/dsc", db=url))
    verify = ato("store", "verify", "--db", url)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    forget_engine(url)


def test_a_copied_project_is_one_store_and_knows_its_old_entry(project, tmp_path):
    """``cp -r p p2``, a registration in p2, ``rm -r p``: the versions record two store
    names for p2's one store.  du shows it once (bytes once, named where it is now, listing
    both names); the copied database's entry at the old place is itself (as for a move),
    so verify exits 0 and gc --delete runs; --forget-db names the store it edits."""
    import json

    copy, url = copied_away(project, tmp_path / "p2")
    here = f"file://{copy / 'c.ato-store'}"
    du = ato("store", "du", "--json", "--db", url)
    assert du.returncode == 0, du.stderr
    data = json.loads(du.stdout)
    assert list(data) == [here], data
    assert sorted(data[here]["names"]) == sorted([here, f"file://{project / 'c.ato-store'}"])
    on_disk = sum(os.path.getsize(os.path.join(b, f))
                  for b, _d, fs in os.walk(copy / "c.ato-store") for f in fs
                  if len(f) > 20 and "checkouts" not in b and "databases" not in b)
    assert data[here]["bytes_on_disk"] == on_disk
    text = ato("store", "du", "--db", url).stdout
    assert text.count(here) == 1 and "also recorded as" in text, text
    verify = ato("store", "verify", "--db", url)
    assert verify.returncode == 0 and "UNREADABLE" not in verify.stdout, \
        verify.stdout + verify.stderr
    gc = ato("store", "gc", "--delete", "--grace", "0", "--db", url)
    assert gc.returncode == 0 and "freed 0 B" in gc.stdout, gc.stdout + gc.stderr
    gone = f"sqlite:///{project / 'c.db'}"
    forget = ato("store", "gc", "--forget-db", gone, "--db", url)
    assert forget.returncode == 0, forget.stderr
    assert f"would forget database {gone} in {here}" in forget.stdout, forget.stdout
    for ref in ("v1", "v2"):
        assert os.path.isfile(resolve(f"ato://p/net@{ref}", db=url))
    assert os.path.isdir(resolve("ato://p/dsc", db=url))
    forget_engine(url)


@pytest.mark.parametrize("how", ["default", "ATO_STORE"])
def test_a_store_moved_away_is_named_missing_not_never_stored(project, tmp_path, how):
    """The store the versions were recorded in is moved away (the default one beside the
    database, or one $ATO_STORE names, $ATO_STORE unchanged): verify, du and gc name that
    store MISSING and how to point at it; verify exits 1, du and gc 2.  They said 'no
    artifact store at …: … nothing was ever stored there'."""
    url = f"sqlite:///{project / 'c.db'}"
    env = {}
    store = project / "c.ato-store"
    if how == "ATO_STORE":
        store = tmp_path / "shared"
        reg = Registry(url, store=str(store))
        reg.log_model("p", "other", write(project / "o.pt", b"other weights"))
        forget_engine(url)
        env = {"ATO_STORE": str(store)}
    shutil.move(str(store), tmp_path / "x")

    def run(*args):
        full = {**os.environ, **env}
        if not env:
            full.pop("ATO_STORE", None)
        return subprocess.run([sys.executable, "-m", "ato.cli", "store", *args, "--db", url],
                              capture_output=True, text=True, timeout=120, env=full)

    proc = run("verify")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert f"MISSING   store {store} is missing" in proc.stdout, proc.stdout
    assert "--store DIR or $ATO_STORE" in proc.stdout
    assert "nothing was ever stored" not in proc.stdout + proc.stderr
    for cmd in ("du", "gc"):
        proc = run(cmd)
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert f"MISSING store {store} is missing" in proc.stderr, proc.stderr
        assert "nothing was ever stored" not in proc.stderr
    forget_engine(url)
