"""One artifact store shared by several databases (docs: one store for a team): the store
lists every database recording into it, and gc/du spare what any of them references."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from ato.db_routers.sql.engine import forget_engine
from ato.db_routers.sql.registry import Registry, RegistryError, resolve
from ato.db_routers.sql.registry.core import known_databases, public_url
from tests.sql.conftest import make_config
from tests.sql.registry_support import edit_in_place, registry_env, settle, write  # noqa: F401 (fixture)


def _log_kept(url, files, keep=1):
    """Log ``files`` as versions of model 'ckpt' from one run with ``keep``."""
    from ato.db_routers.sql.manager import SQLLogger

    with SQLLogger(make_config(url), handle_signals=False) as lg:
        for step, path in enumerate(files):
            lg.log_model("ckpt", path, step=step, keep=keep)


def _age_store(store, seconds=7200):
    """Make every blob look old, so that unrecorded ones would be past gc's grace."""
    past = time.time() - seconds
    for blob in store.blobs():
        os.utime(store.path(blob.digest), (past, past))


@pytest.fixture
def other(tmp_path):
    """A second SQLite database (another team member's) writing into the same store: an
    aliased model, a live directory model with a checkout, and a model let go by keep=."""
    url = f"sqlite:///{tmp_path / 'b' / 'theirs.db'}"
    os.makedirs(tmp_path / "b")
    reg = Registry(url)
    net = reg.log_model("vision", "net", write(tmp_path / "b1.pt", b"theirs, champion"),
                        aliases=["champion"])
    d = tmp_path / "bdir"
    write(d / "w.bin", b"w" * 500)
    write(d / "cfg.json", b"{}")
    settle()
    tree = reg.log_model("vision", "tree", d)
    checkout = resolve("ato://vision/tree@latest", db=url)
    yield url, net, tree, checkout
    forget_engine(url)


def test_gc_spares_what_another_database_references(db_url, other, tmp_path):
    """From database A (SQLite or PostgreSQL), gc frees A's own let-go blobs only: B's
    aliased blob, B's directory blobs and B's checkout are neither offered nor removed,
    even when older than the grace period."""
    b_url, net, tree, checkout = other
    _log_kept(db_url, [write(tmp_path / f"a{i}.pt", os.urandom(64 + i)) for i in range(3)])
    a = Registry(db_url)
    store = a.store()
    assert set(known_databases(store)) == {public_url(db_url), public_url(b_url)}
    _age_store(store)
    plan = a.gc()
    assert sorted(r["reason"] for r in plan) == ["only unkept versions"] * 2
    freed = a.gc(dry_run=False, grace=0)
    assert {r["digest"] for r in freed} == {r["digest"] for r in plan}
    assert store.has(net.digest)
    assert os.path.isdir(checkout) and os.listdir(checkout)
    b = Registry(b_url)
    # B's verify checks the store: its own 3 blobs, A's kept one, its checkout
    assert [(r["what"], r["status"]) for r in b.verify()] == [("blob", "ok")] * 4 + [
        ("checkout", "ok")]
    assert open(resolve("ato://vision/net@champion", db=b_url), "rb").read() == \
        b"theirs, champion"
    usage = a.du()[store.url]
    assert usage["collectable_bytes"] == 0 and len(usage["databases"]) == 2


def test_verify_checks_the_blobs_of_every_database_sharing_the_store(db_url, other, tmp_path):
    """From A (SQLite or PostgreSQL), verify re-hashes B's blobs too and names who holds
    each: a blob of B edited in place (size, permissions, times kept) is 'modified, held by
    B', one both hold names both, and a removed one of A is 'missing'.  The quick check
    (sizes only) finds the removal, not the edit."""
    b_url, net, _tree, _checkout = other
    a = Registry(db_url)
    mine = a.log_model("p", "mine", write(tmp_path / "mine.pt", b"only in A"))
    both = a.log_model("p", "same", write(tmp_path / "same.pt", b"theirs, champion"))
    store = a.store()
    edit_in_place(store.path(both.digest), b"T")
    os.unlink(store.path(mine.digest))
    rows = {r["digest"]: r for r in a.verify() if r["what"] == "blob"}
    assert len(rows) == 4  # mine, the shared one, B's two files of 'tree'
    theirs = public_url(b_url)
    assert (rows[both.digest]["status"], sorted(rows[both.digest]["databases"])) == (
        "modified", sorted([public_url(db_url), theirs]))
    assert (rows[mine.digest]["status"], rows[mine.digest]["databases"]) == (
        "missing", [public_url(db_url)])
    assert {r["status"] for d, r in rows.items() if d not in (both.digest, mine.digest)} == {"ok"}
    quick = {r["digest"]: r["status"] for r in a.verify(quick=True) if r["what"] == "blob"}
    assert quick[mine.digest] == "missing" and quick[both.digest] == "ok"
    # from B, the store's damage looks the same: B's own blob is modified, A's is missing
    from_b = {r["digest"]: r["status"] for r in Registry(b_url).verify() if r["what"] == "blob"}
    assert (from_b[net.digest], from_b[mine.digest]) == ("modified", "missing")


def test_verify_reports_an_unreadable_database_and_checks_the_rest(other, tmp_path):
    """A database listed by the store that cannot be opened is one 'unreadable' problem
    naming it (its blobs unchecked); the blobs of the others are still checked."""
    b_url, _net, _tree, _checkout = other
    a_url = f"sqlite:///{tmp_path / 'a.db'}"
    a = Registry(a_url)
    mine = a.log_model("p", "m", write(tmp_path / "a.pt", b"mine"))
    os.rename(tmp_path / "b" / "theirs.db", tmp_path / "b" / "moved.db")
    forget_engine(b_url)
    rows = a.verify()
    assert [(r["what"], r["digest"], r["status"]) for r in rows] == [
        ("blob", mine.digest, "ok"), ("database", None, "unreadable")]
    assert rows[1]["database"] == public_url(b_url) and "no tracker database" in rows[1]["reason"]
    r = subprocess.run([sys.executable, "-m", "ato.cli", "store", "verify", "--db", a_url],
                       capture_output=True, text=True, timeout=120, env=dict(os.environ))
    assert r.returncode == 1 and f"UNREADABLE database {public_url(b_url)}" in r.stdout
    forget_engine(a_url)


def test_gc_spares_a_blob_both_databases_hold(other, tmp_path):
    """A blob A let go of but B still holds keeps its bytes on disk."""
    b_url, net, _tree, _checkout = other
    a_url = f"sqlite:///{tmp_path / 'a.db'}"
    _log_kept(a_url, [write(tmp_path / "same.pt", b"theirs, champion"),
                      write(tmp_path / "new.pt", b"new")])
    a = Registry(a_url)
    assert [v.state for v in a.versions("ckpt")] == ["pruned", "live"]
    assert a.gc(dry_run=False, grace=0) == []
    assert a.store().has(net.digest)
    forget_engine(a_url)


def test_an_unreachable_database_stops_gc_until_forgotten(other, tmp_path):
    """When a database listed by the store cannot be opened, gc refuses, naming it and
    --forget-db, and du counts what does not depend on it (the rest unknown, saying why);
    once forgotten, its blobs are unrecorded files like any other."""
    b_url, net, _tree, _checkout = other
    a_url = f"sqlite:///{tmp_path / 'a.db'}"
    a = Registry(a_url)
    a.log_model("p", "m", write(tmp_path / "a.pt", b"mine"))
    store = a.store()
    _age_store(store)
    os.rename(tmp_path / "b" / "theirs.db", tmp_path / "b" / "moved.db")
    forget_engine(b_url)
    with pytest.raises(RegistryError) as err:
        a.gc(dry_run=False, grace=0)
    message = str(err.value)
    assert public_url(b_url) in message and f"--forget-db {public_url(b_url)}" in message
    assert store.has(net.digest)
    (usage,) = a.du().values()
    assert usage["collectable_bytes"] is None and usage["other_bytes"] is None
    assert "cannot be opened" in usage["unreadable"] and usage["live_bytes"] == len(b"mine")
    env = dict(os.environ)
    r = subprocess.run([sys.executable, "-m", "ato.cli", "store", "du", "--db", a_url],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0 and "'collectable' unknown" in r.stdout, r.stderr
    cli = [sys.executable, "-m", "ato.cli", "store", "gc", "--db", a_url]
    r = subprocess.run(cli, capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "--forget-db" in r.stderr and "Traceback" not in r.stderr
    r = subprocess.run(cli + ["--forget-db", public_url(b_url), "--grace", "0"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert f"would remove {net.digest}" in r.stdout and "(not recorded)" in r.stdout
    assert f"would forget database {public_url(b_url)}" in r.stdout
    assert sorted(known_databases(store)) == sorted([public_url(a_url), public_url(b_url)])
    r = subprocess.run(cli + ["--forget-db", public_url(b_url), "--grace", "0", "--delete"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 0, r.stderr
    assert f"forgot database {public_url(b_url)}" in r.stdout
    assert f"remove {net.digest}" in r.stdout and not store.has(net.digest)
    assert known_databases(store) == [public_url(a_url)]
    r = subprocess.run(cli + ["--forget-db", "sqlite:////nowhere.db"],
                       capture_output=True, text=True, timeout=120, env=env)
    assert r.returncode == 2 and "lists no such database" in r.stderr
    forget_engine(a_url)


def test_the_list_holds_urls_without_passwords_and_absolute_paths(tmp_path, monkeypatch):
    """A password never reaches the store; a relative SQLite path is recorded absolute,
    once, however many registries open the store."""
    assert public_url("postgresql://u:secret@h:5432/db") == "postgresql://u@h:5432/db"
    monkeypatch.chdir(tmp_path)
    for _ in range(2):
        reg = Registry("sqlite:///rel.db")
        reg.log_model("p", "m", write(tmp_path / "m.pt", b"m"))
    assert known_databases(reg.store()) == [f"sqlite:///{tmp_path / 'rel.db'}"]
    assert len(os.listdir(tmp_path / "store" / "databases")) == 1
    forget_engine("sqlite:///rel.db")


def test_negative_grace_is_refused(tmp_path):
    """gc's grace period is a duration: -5 is an error, not 'everything'."""
    url = f"sqlite:///{tmp_path / 'a.db'}"
    with pytest.raises(RegistryError, match="grace=-5"):
        Registry(url).gc(grace=-5)
    r = subprocess.run([sys.executable, "-m", "ato.cli", "store", "gc", "--grace", "-5",
                        "--db", url], capture_output=True, text=True, timeout=120,
                       env=dict(os.environ))
    assert r.returncode == 2 and "--grace -5" in r.stderr
    forget_engine(url)
