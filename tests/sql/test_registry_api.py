"""The registry on SQLite and PostgreSQL: dataset and model versions, aliases and their
history, keep=, lineage, ato:// resolution, verify and garbage collection."""

from __future__ import annotations

import os
import time

import pytest

from ato.db_routers.sql.manager import SQLLogger
from ato.db_routers.sql.registry import Registry, RegistryError, resolve
from ato.db_routers.sql.registry.core import RegistryWarning
from tests.sql.conftest import make_config
from tests.sql.registry_support import registry_env, settle, write  # noqa: F401 (fixture)


@pytest.fixture
def logger(config):
    lg = SQLLogger(config, handle_signals=False)
    yield lg
    lg.finish()


@pytest.fixture
def tree(tmp_path):
    root = tmp_path / "cifar"
    for name in ("train/0.bin", "train/1.bin", "test/0.bin", "labels.txt"):
        write(root / name, name.encode() * 50)
    settle()
    return root


class TestDatasets:
    def test_unchanged_data_returns_the_same_version_without_reading(self, logger, tree):
        """Logging the same tree twice makes one version; the second reads no file."""
        logger.run()
        first = logger.use_dataset("cifar10", tree)
        second = logger.use_dataset("cifar10", tree)
        assert (first.version, first.created, first.hashed_files) == (1, True, 4)
        assert (second.version, second.created, second.hashed_files) == (1, False, 0)
        assert first.digest == second.digest and first.file_count == 4
        assert first.store_url is None  # recorded in place, not copied

    def test_changed_data_makes_the_next_version_and_diff_lists_files(self, logger, tree):
        """Adding, removing and editing files makes v2; diff names each file by kind."""
        logger.run()
        logger.use_dataset("cifar10", tree)
        (tree / "test" / "0.bin").unlink()
        write(tree / "train" / "2.bin", b"new")
        write(tree / "labels.txt", b"relabelled")
        settle()
        v2 = logger.use_dataset("cifar10", tree)
        assert (v2.version, v2.created) == (2, True)
        d = Registry(logger.url).diff("cifar10", 1, "v2")
        assert [f["path"] for f in d["added"]] == ["train/2.bin"]
        assert [f["path"] for f in d["removed"]] == ["test/0.bin"]
        assert [c["path"] for c in d["changed"]] == ["labels.txt"]
        assert d["unchanged"] == 2

    def test_reverting_data_returns_the_earlier_version(self, logger, tree):
        """Content identical to v1 is v1 again, not v3."""
        logger.run()
        logger.use_dataset("cifar10", tree)
        original = (tree / "labels.txt").read_bytes()
        write(tree / "labels.txt", b"other")
        settle()
        assert logger.use_dataset("cifar10", tree).version == 2
        write(tree / "labels.txt", original)
        settle()
        assert logger.use_dataset("cifar10", tree).version == 1

    def test_storing_data_first_recorded_in_place(self, logger, tree, tmp_path):
        """copy=True on a version first recorded in place stores its files, same number."""
        import shutil

        logger.run()
        first = logger.use_dataset("cifar10", tree)
        stored = logger.use_dataset("cifar10", tree, copy=True)
        assert (stored.version, stored.created) == (first.version, False)
        assert stored.store_url is not None
        shutil.rmtree(tree)
        assert sorted(os.listdir(resolve("ato://proj/cifar10@v1", db=logger.url))) == [
            "labels.txt", "test", "train"]

    def test_a_single_file_dataset(self, logger, tmp_path):
        """A file's version digest is the SHA-256 of its bytes."""
        import hashlib

        f = write(tmp_path / "data.csv", b"a,b\n1,2\n")
        logger.run()
        v = logger.use_dataset("table", f)
        assert v.digest == hashlib.sha256(b"a,b\n1,2\n").hexdigest() and not v.is_dir

    def test_reference_data_is_recorded_without_reading(self, logger):
        """A remote URI is recorded by reference; a new ETag is a new version."""
        logger.run()
        a = logger.use_dataset("imagenet", "s3://bucket/imagenet/", etag="abc", size=10**12)
        b = logger.use_dataset("imagenet", "s3://bucket/imagenet/", etag="abc", size=10**12)
        c = logger.use_dataset("imagenet", "s3://bucket/imagenet/", etag="def", size=10**12)
        assert (a.version, b.version, c.version) == (1, 1, 2)
        assert a.reference == "s3://bucket/imagenet/" and a.store_url is None
        assert resolve("ato://proj/imagenet@v1", db=logger.url) == "s3://bucket/imagenet/"

    def test_copy_true_stores_the_files(self, logger, tree, tmp_path):
        """copy=True puts every file in the store, so the version survives the source."""
        import shutil

        logger.run()
        v = logger.use_dataset("cifar10", tree, copy=True)
        shutil.rmtree(tree)
        path = resolve("ato://proj/cifar10@latest", db=logger.url)
        assert sorted(os.listdir(path)) == ["labels.txt", "test", "train"]
        assert open(os.path.join(path, "train", "1.bin"), "rb").read() == b"train/1.bin" * 50
        assert v.store_url.endswith("/store")


class TestModels:
    def test_versions_are_numbered_and_identical_files_stored_once(self, config, tmp_path):
        """Two runs logging different checkpoints make v1, v2; a third logging v1's bytes
        gets v1 back, and the store holds two blobs."""
        a = write(tmp_path / "a.pt", os.urandom(5000))
        b = write(tmp_path / "b.pt", os.urandom(5000))
        copy_of_a = write(tmp_path / "c.pt", a.read_bytes())
        numbers = []
        for path in (a, b, copy_of_a):
            with SQLLogger(config, handle_signals=False) as lg:
                numbers.append(lg.log_model("resnet", path, step=10).version)
        assert numbers == [1, 2, 1]
        store = tmp_path / "store"
        blobs = [p for d in os.listdir(store) if len(d) == 2 for p in os.listdir(store / d)]
        assert len(blobs) == 2

    def test_latest_follows_the_newest_version_and_aliases_are_recorded(self, logger, tmp_path):
        """'latest' moves by itself; explicit aliases point where they were given; every
        move is in the history with who and which run."""
        logger.run()
        v1 = logger.log_model("net", write(tmp_path / "1.pt", b"one"), aliases=["champion"])
        v2 = logger.log_model("net", write(tmp_path / "2.pt", b"two"))
        reg = Registry(logger.url)
        assert reg.get("net", "champion").version == v1.version == 1
        assert reg.get("net").version == v2.version == 2
        assert reg.get("net", "latest").aliases == ["latest"]
        history = reg.alias_history("net")
        assert [(h["alias"], h["from"], h["to"]) for h in history] == [
            ("champion", None, 1), ("latest", None, 1), ("latest", 1, 2)]
        assert {h["actor"] for h in history} == {"tester"}
        assert {h["run_id"] for h in history} == {logger.get_current_run_id()}

    def test_moving_and_removing_an_alias_is_history(self, logger, tmp_path):
        """set_alias and delete_alias are recorded from/to, in order."""
        logger.run()
        for i in range(3):
            logger.log_model("net", write(tmp_path / f"{i}.pt", bytes([i]) * 10))
        reg = Registry(logger.url)
        reg.set_alias("net", "champion", 1)
        reg.set_alias("net", "champion", "v3", who="alice")
        reg.set_alias("net", "champion", 3)  # no move, no event
        assert reg.delete_alias("net", "champion") == 3
        assert [(h["from"], h["to"], h["actor"]) for h in reg.alias_history("net", "champion")] == [
            (None, 1, "tester"), (1, 3, "alice"), (3, None, "tester")]
        with pytest.raises(RegistryError, match="model 'net' has no alias 'champion'"):
            reg.delete_alias("net", "champion")

    def test_bad_names_and_references_are_clear_errors(self, logger, tmp_path):
        """Each mistake names what was wrong."""
        logger.run()
        f = write(tmp_path / "m.pt", b"m")
        with pytest.raises(RegistryError, match=r"alias 'v2' looks like a version number"):
            logger.log_model("net", f, aliases=["v2"])
        with pytest.raises(RegistryError, match=r"alias 'has space': use a letter"):
            logger.log_model("net", f, aliases=["has space"])
        with pytest.raises(RegistryError, match=r"model name 'a@b' has '@' \(U\+0040\) at "
                                                r"position 2, which is not allowed: use an ASCII"):
            logger.log_model("a@b", f)
        with pytest.raises(RegistryError, match=r"keep=0 must be a positive integer"):
            logger.log_model("net", f, keep=0)
        logger.log_model("net", f)
        reg = Registry(logger.url)
        with pytest.raises(RegistryError, match=r"model 'net' \(project 'proj'\) has no version 7 "
                                                r"\(versions 1\.\.1; aliases: latest\)"):
            reg.get("net", 7)
        with pytest.raises(RegistryError, match=r"no model named 'nett'"):
            reg.get("nett", kind="model")
        with pytest.raises(RegistryError, match="'latest' moves by itself"):
            reg.set_alias("net", "latest", 1)

    def test_the_same_name_in_two_projects_is_ambiguous_without_a_project(self, db_url, tmp_path):
        """A name registered in two projects needs --project; with it, each is found."""
        f = write(tmp_path / "m.pt", b"m")
        for project in ("a", "b"):
            with SQLLogger(make_config(db_url, project=project), handle_signals=False) as lg:
                lg.log_model("net", f)
        reg = Registry(db_url)
        with pytest.raises(RegistryError, match="'net' is ambiguous"):
            reg.get("net")
        assert reg.get("net", project="b").project == "b"

    def test_keep_last_n_lets_go_of_older_unaliased_checkpoints(self, logger, tmp_path):
        """keep=2 keeps this run's two newest versions, and any older aliased one."""
        logger.run()
        for step in range(5):
            aliases = ["best"] if step == 0 else []
            logger.log_model("ckpt", write(tmp_path / f"{step}.pt", os.urandom(100)),
                             step=step, keep=2, aliases=aliases)
        states = {v.version: v.state for v in Registry(logger.url).versions("ckpt")}
        assert states == {1: "live", 2: "pruned", 3: "pruned", 4: "live", 5: "live"}

    def test_keep_best_n_by_score(self, logger, tmp_path):
        """With a score, keep=2 keeps the two best (mode='min' for a loss), and the
        version 'latest' points at."""
        logger.run()
        for step, loss in enumerate([0.9, 0.2, 0.5, 0.1, 0.7]):
            logger.log_model("ckpt", write(tmp_path / f"{step}.pt", os.urandom(100)),
                             step=step, keep=2, score=loss, mode="min")
        live = {v.score for v in Registry(logger.url).versions("ckpt") if v.state == "live"}
        assert live == {0.1, 0.2, 0.7}

    def test_a_model_directory(self, logger, tmp_path):
        """A directory model resolves to a verified read-only checkout of its files."""
        d = tmp_path / "hf"
        write(d / "config.json", b"{}")
        write(d / "weights" / "model.bin", os.urandom(1000))
        logger.run()
        v = logger.log_model("hf-model", d, aliases=["prod"])
        path = resolve("ato://proj/hf-model@prod", db=logger.url)
        assert v.is_dir and sorted(os.listdir(path)) == ["config.json", "weights"]
        assert (open(os.path.join(path, "weights", "model.bin"), "rb").read()
                == (d / "weights" / "model.bin").read_bytes())


class TestResolve:
    def test_resolves_alias_version_and_latest(self, logger, tmp_path):
        """@alias, @vN, @N and no ref all resolve to the blob of the right version."""
        logger.run()
        logger.log_model("net", write(tmp_path / "1.pt", b"one"), aliases=["champion"])
        logger.log_model("net", write(tmp_path / "2.pt", b"two"))
        read = lambda uri: open(resolve(uri, config=logger.config), "rb").read()  # noqa: E731
        assert read("ato://proj/net@champion") == b"one"
        assert read("ato://proj/net@v2") == b"two"
        assert read("ato://proj/net@1") == b"one"
        assert read("ato://proj/net") == b"two"

    def test_a_modified_blob_is_refused(self, logger, tmp_path):
        """Resolution re-checks the digest: an edited blob is an error, not a silent load."""
        logger.run()
        v = logger.log_model("net", write(tmp_path / "1.pt", b"weights!"))
        blob = Registry(logger.url).resolve("ato://proj/net@latest")
        os.chmod(blob, 0o644)
        write(type(tmp_path)(blob), b"WEIGHTS!")
        with pytest.raises(RegistryError, match=f"blob {v.digest[:12]} in .* was modified"):
            resolve("ato://proj/net@latest", db=logger.url)

    def test_data_recorded_in_place_must_still_match(self, logger, tree):
        """An in-place dataset resolves to its path while unchanged, an error after."""
        logger.run()
        logger.use_dataset("cifar10", tree)
        assert resolve("ato://proj/cifar10@v1", db=logger.url) == str(tree)
        write(tree / "labels.txt", b"changed")
        with pytest.raises(RegistryError, match=r"no longer holds dataset v1"):
            resolve("ato://proj/cifar10@v1", db=logger.url)

    def test_malformed_uri(self, db_url):
        """Something that is not ato://project/name is named in the error."""
        with pytest.raises(RegistryError, match=r"'models:/net' is not an ato:// URI"):
            Registry(db_url).resolve("models:/net")


class TestLineage:
    def test_datasets_runs_and_models_link_both_ways(self, config, tree, tmp_path):
        """Which runs used v1, what produced the champion, what v1 fed downstream."""
        runs = []
        for i in range(3):
            with SQLLogger(config, handle_signals=False) as lg:
                runs.append(lg.get_current_run_id())
                lg.use_dataset("cifar10", tree)
                if i < 2:
                    lg.log_model("net", write(tmp_path / f"{i}.pt", os.urandom(64)),
                                 aliases=["champion"] if i == 1 else [])
        reg = Registry(config.experiment.sql.db_path)
        assert [r["run_id"] for r in reg.runs_using("cifar10", 1)] == runs
        produced = reg.produced_by("net", "champion")
        assert produced["run"]["run_id"] == runs[1]
        assert produced["config"]["lr"] == 0.001
        assert produced["datasets"] == [{"name": "cifar10", "version": 1,
                                         "digest": reg.get("cifar10", 1).digest}]
        down = reg.downstream("cifar10", 1)
        assert [(d["run_id"], d["model"], d["version"]) for d in down] == [
            (runs[0], "net", 1), (runs[1], "net", 2)]
        assert "champion" in down[1]["aliases"]

    def test_a_model_logged_outside_a_run_has_no_producer(self, db_url, tmp_path):
        """Registering without a run is allowed; lineage says so."""
        reg = Registry(db_url)
        reg.log_model("proj", "net", write(tmp_path / "m.pt", b"m"))
        assert reg.produced_by("net")["run"] is None


def test_actor_reads_the_environment_each_time_and_the_login_once(monkeypatch):
    """$ATO_USER wins whenever set; without it user@host is looked up once per process."""
    import getpass

    from ato.db_routers.sql.registry import core

    core._login.cache_clear()
    looked_up = []
    monkeypatch.setattr(getpass, "getuser", lambda: looked_up.append(1) or "alice")
    monkeypatch.delenv("ATO_USER")
    assert [core.actor() for _ in range(3)][0].startswith("alice@") and looked_up == [1]
    monkeypatch.setenv("ATO_USER", "bob")
    assert core.actor() == "bob"
    core._login.cache_clear()


class TestStoreMaintenance:
    def test_verify_detects_modified_and_removed_blobs(self, logger, tmp_path):
        """verify reports each blob's state after one is edited and another deleted."""
        logger.run()
        a = logger.log_model("a", write(tmp_path / "a.pt", b"aaaa"))
        b = logger.log_model("b", write(tmp_path / "b.pt", b"bbbb"))
        c = logger.log_model("c", write(tmp_path / "c.pt", b"cccc"))
        reg = Registry(logger.url)
        store = reg.store()
        os.chmod(store.path(a.digest), 0o644)
        write(type(tmp_path)(store.path(a.digest)), b"AAAA")
        os.unlink(store.path(b.digest))
        status = {r["digest"]: r["status"] for r in reg.verify()}
        assert status == {a.digest: "modified", b.digest: "missing", c.digest: "ok"}

    def test_gc_is_a_dry_run_by_default_and_frees_exactly_what_it_reports(self, logger, tmp_path):
        """Only blobs of let-go, unaliased versions are collectable; the dry run lists them
        and deletes nothing; --delete frees exactly those bytes and marks them collected."""
        logger.run()
        sizes = [100, 200, 300, 400]
        for step, size in enumerate(sizes):
            logger.log_model("ckpt", write(tmp_path / f"{step}.pt", os.urandom(size)),
                             step=step, keep=1, aliases=["first"] if step == 0 else [])
        reg = Registry(logger.url)
        plan = reg.gc()
        assert sorted(r["size"] for r in plan) == [200, 300]
        assert all(reg.store().has(r["digest"]) for r in plan)
        assert reg.du()[reg.store().url]["collectable_bytes"] == 500
        freed = reg.gc(dry_run=False)
        assert sorted(r["size"] for r in freed) == [200, 300]
        assert not any(reg.store().has(r["digest"]) for r in freed)
        states = {v.version: v.state for v in reg.versions("ckpt")}
        assert states == {1: "live", 2: "collected", 3: "collected", 4: "live"}
        assert reg.gc() == []
        assert [r["status"] for r in reg.verify()] == ["ok", "ok"]
        with pytest.raises(RegistryError, match="v2 was collected"):
            reg.set_alias("ckpt", "champion", 2)

    def test_gc_spares_blobs_shared_with_a_kept_version(self, logger, tmp_path):
        """A file held by a live version of another model is not collected."""
        logger.run()
        shared = write(tmp_path / "shared.pt", b"shared bytes")
        logger.log_model("other", shared)
        logger.log_model("ckpt", shared, keep=1)
        logger.log_model("ckpt", write(tmp_path / "new.pt", b"new"), keep=1)
        assert Registry(logger.url).gc() == []

    def test_gc_collects_old_stray_files_but_not_young_ones(self, logger, tmp_path):
        """Blobs no version records (a registration killed before its commit) go after
        the grace period; young ones may belong to a registration under way."""
        logger.run()
        logger.log_model("net", write(tmp_path / "m.pt", b"m"))
        store = Registry(logger.url).store()
        old = store.put(write(tmp_path / "old", b"orphan, old"))
        young = store.put(write(tmp_path / "young", b"orphan, young"))
        past = time.time() - 7200
        os.utime(store.path(old.digest), (past, past))
        plan = Registry(logger.url).gc(dry_run=False)
        assert [(r["digest"], r["reason"]) for r in plan] == [(old.digest, "not recorded")]
        assert store.has(young.digest) and not store.has(old.digest)

    def test_gc_removes_checkouts_of_collected_directory_versions(self, logger, tmp_path):
        """A checkout (hard links) of a let-go directory version would keep its bytes on
        disk: gc removes it with the blobs; the live version's checkout stays."""
        logger.run()
        for i in range(2):
            d = tmp_path / f"m{i}"
            write(d / "w.bin", bytes([i]) * 1000)
            write(d / "config.json", b"{}")
            logger.log_model("dir-model", d, keep=1)
            resolve(f"ato://proj/dir-model@v{i + 1}", db=logger.url)
        reg = Registry(logger.url)
        checkouts = tmp_path / "store" / "checkouts"
        assert len(os.listdir(checkouts)) == 2
        freed = reg.gc(dry_run=False)
        assert sorted((r["reason"], r["size"]) for r in freed) == [
            ("only unkept versions", 1000), ("stale checkout", 0)]
        assert os.listdir(checkouts) == [reg.get("dir-model", 2).digest]
        assert resolve("ato://proj/dir-model@v2", db=logger.url)

    def test_registering_collected_content_revives_it(self, logger, tmp_path):
        """Logging bytes whose version was collected stores them again and makes that
        version live, keeping its number."""
        logger.run()
        first = write(tmp_path / "0.pt", b"zero")
        logger.log_model("ckpt", first, keep=1)
        logger.log_model("ckpt", write(tmp_path / "1.pt", b"one"), keep=1)
        reg = Registry(logger.url)
        reg.gc(dry_run=False)
        again = logger.log_model("ckpt", first)
        assert (again.version, again.state, again.created) == (1, "live", False)
        assert open(resolve("ato://proj/ckpt@v1", db=logger.url), "rb").read() == b"zero"


def test_default_store_is_beside_a_sqlite_file(tmp_path, monkeypatch):
    """Without $ATO_STORE, experiments.db stores blobs in experiments.ato-store/."""
    monkeypatch.delenv("ATO_STORE")
    url = f"sqlite:///{tmp_path / 'experiments.db'}"
    reg = Registry(url)
    v = reg.log_model("proj", "net", write(tmp_path / "m.pt", b"m"))
    assert v.store_url == f"file://{tmp_path / 'experiments.ato-store'}"


def test_a_server_database_needs_an_explicit_store(monkeypatch, tmp_path):
    """PostgreSQL without experiment.sql.store or $ATO_STORE refuses to guess."""
    from ato.db_routers.sql.registry.core import default_store_url

    monkeypatch.delenv("ATO_STORE")
    assert default_store_url("postgresql://u@h/db") is None
    assert default_store_url(f"sqlite:///{tmp_path}/x.db").endswith("/x.ato-store")


ORIGINAL_DDL = """
CREATE TABLE projects (id INTEGER NOT NULL, name VARCHAR NOT NULL, description TEXT,
    created_at DATETIME, PRIMARY KEY (id));
CREATE UNIQUE INDEX ix_projects_name ON projects (name);
CREATE TABLE experiments (id INTEGER NOT NULL, project_id INTEGER NOT NULL, config JSON NOT NULL,
    structural_hash VARCHAR(64), tags JSON, status VARCHAR, start_time DATETIME, end_time DATETIME,
    PRIMARY KEY (id), FOREIGN KEY(project_id) REFERENCES projects (id));
CREATE TABLE metrics (id INTEGER NOT NULL, run_id INTEGER NOT NULL, "key" VARCHAR NOT NULL,
    value FLOAT NOT NULL, step INTEGER NOT NULL, timestamp DATETIME, PRIMARY KEY (id),
    FOREIGN KEY(run_id) REFERENCES experiments (id));
CREATE TABLE artifacts (id INTEGER NOT NULL, run_id INTEGER NOT NULL, path VARCHAR NOT NULL,
    data_type VARCHAR, data_info JSON, PRIMARY KEY (id),
    FOREIGN KEY(run_id) REFERENCES experiments (id));
CREATE TABLE fingerprints (id INTEGER NOT NULL, run_id INTEGER NOT NULL, trace_id VARCHAR NOT NULL,
    trace_type VARCHAR(32) NOT NULL, fingerprint VARCHAR(128) NOT NULL, PRIMARY KEY (id),
    FOREIGN KEY(run_id) REFERENCES experiments (id));
"""


def test_an_original_ato_database_gains_the_registry_and_loses_nothing(tmp_path):
    """A database of the original Ato is upgraded in place: its runs, metrics and
    artifacts stay, and an old run can be linked to a new model version."""
    import sqlite3

    from ato.db_routers.sql.engine import forget_engine

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(ORIGINAL_DDL)
    conn.execute("INSERT INTO projects VALUES (1, 'legacy', NULL, '2025-06-01 10:00:00')")
    conn.execute("INSERT INTO experiments VALUES (1, 1, '{\"lr\": 0.1}', 'h', '[]', "
                 "'completed', '2025-06-01 10:00:00', NULL)")
    conn.execute("INSERT INTO metrics (run_id, key, value, step) VALUES (1, 'acc', 0.5, 0)")
    conn.execute("INSERT INTO artifacts VALUES (1, 1, 'model.pt', 'model', NULL)")
    conn.commit()
    conn.close()
    url = f"sqlite:///{path}"
    try:
        reg = Registry(url)
        v = reg.log_model("legacy", "net", write(tmp_path / "m.pt", b"m"), run_id=1)
        assert reg.produced_by("net")["config"] == {"lr": 0.1}
        assert v.version == 1
        conn = sqlite3.connect(path)
        assert conn.execute("SELECT COUNT(*) FROM metrics").fetchone()[0] == 1
        assert conn.execute("SELECT path FROM artifacts").fetchall() == [("model.pt",)]
        conn.close()
    finally:
        forget_engine(url)


def test_docs_lineage_queries(tmp_path, monkeypatch):
    """The lineage block of docs/models-and-data.md, on a database built to match it:
    cifar10 v3 used by one run, which produced resnet-cls@champion."""
    from pathlib import Path

    from ato.db_routers.sql.engine import forget_engine

    page = (Path(__file__).resolve().parents[2] / "docs" / "models-and-data.md").read_text()
    block = page.split("test_docs_lineage_queries -->\n```python\n", 1)[1].split("```", 1)[0]
    calls = ["reg.runs_using('cifar10', 3)", "reg.produced_by('resnet-cls', 'champion')",
             "reg.downstream('cifar10', 3)", "Registry('sqlite:///experiments.db')"]
    assert all(call in block for call in calls)
    monkeypatch.chdir(tmp_path)
    url = "sqlite:///experiments.db"
    config = make_config(url, project="vision")
    try:
        data = tmp_path / "data"
        for i in range(3):
            write(data / "labels.txt", f"labels {i}".encode())
            settle()
            with SQLLogger(config, handle_signals=False) as lg:
                lg.use_dataset("cifar10", data)
                if i == 2:
                    lg.log_model("resnet-cls", write(tmp_path / "best.pt", b"w"),
                                 aliases=["champion"])
                    run_id = lg.get_current_run_id()
        reg = Registry(url)
        assert [r["run_id"] for r in reg.runs_using("cifar10", 3)] == [run_id]
        produced = reg.produced_by("resnet-cls", "champion")
        assert produced["run"]["run_id"] == run_id and produced["datasets"][0]["version"] == 3
        assert [(d["model"], d["version"]) for d in reg.downstream("cifar10", 3)] == [
            ("resnet-cls", 1)]
    finally:
        forget_engine(url)


class TestCheckouts:
    """A directory version's checkout is read-only, verified by ``ato store verify`` and
    rebuilt from the blobs when damaged."""

    @pytest.fixture
    def checkout(self, logger, tmp_path):
        logger.run()
        d = tmp_path / "dirmodel"
        write(d / "w.bin", b"w" * 300)
        write(d / "sub" / "cfg.json", b"{}")
        settle()
        logger.log_model("dir-model", d)
        return type(tmp_path)(resolve("ato://proj/dir-model", db=logger.url))

    def test_files_and_folders_are_read_only(self, checkout):
        for path in (checkout, checkout / "sub"):
            assert not os.stat(path).st_mode & 0o222
        assert not os.stat(checkout / "w.bin").st_mode & 0o222
        if os.geteuid() != 0:  # root ignores permissions
            with pytest.raises(PermissionError):
                (checkout / "new.txt").write_bytes(b"x")

    @pytest.mark.parametrize("damage", ["remove", "add", "replace"])
    def test_verify_reports_and_resolve_rebuilds_a_damaged_checkout(self, logger, checkout,
                                                                    damage):
        reg = Registry(logger.url)
        assert {(r["what"], r["status"]) for r in reg.verify()} == {("blob", "ok"),
                                                                     ("checkout", "ok")}
        os.chmod(checkout, 0o755)
        if damage == "remove":
            (checkout / "w.bin").unlink()
        elif damage == "add":
            write(checkout / "extra.txt", b"stray")
        else:  # an editor writes a new file in place of the old one
            (checkout / "w.bin").unlink()
            write(checkout / "w.bin", b"edited")
        settle()
        bad = [r for r in reg.verify() if r["status"] != "ok"]
        assert [(r["what"], r["status"]) for r in bad] == [("checkout", "damaged")]
        again = resolve("ato://proj/dir-model", db=logger.url)
        assert again == str(checkout)
        assert (checkout / "w.bin").read_bytes() == b"w" * 300
        assert not (checkout / "extra.txt").exists()
        assert all(r["status"] == "ok" for r in reg.verify())

    def test_gc_removes_a_read_only_stale_checkout(self, logger, checkout, tmp_path):
        d = tmp_path / "dirmodel2"
        write(d / "w.bin", b"v" * 10)
        settle()
        logger.log_model("dir-model", d, keep=1)
        freed = Registry(logger.url).gc(dry_run=False)
        assert "stale checkout" in {r["reason"] for r in freed}
        assert not checkout.exists()


class TestRepairOnRegistration:
    """Registering content whose blob was tampered with stores it again."""

    @pytest.mark.parametrize("damage", ["same size", "appended", "replaced file"])
    def test_a_damaged_blob_is_repaired(self, logger, tmp_path, damage):
        logger.run()
        model = write(tmp_path / "m.pt", b"original weights")
        settle()
        v = logger.log_model("net", model)
        blob = Registry(logger.url).store().path(v.digest)
        if damage == "replaced file":
            os.unlink(blob)
            write(type(tmp_path)(blob), b"something else")
        else:
            os.chmod(blob, 0o644)
            with open(blob, "r+b" if damage == "same size" else "ab") as f:
                f.write(b"X")
        with pytest.warns(RegistryWarning, match=r"1 damaged blob"):
            again = logger.log_model("net", model)
        assert (again.version, again.state, again.created) == (1, "live", False)
        with open(blob, "rb") as f:
            assert f.read() == b"original weights"
        assert not os.stat(blob).st_mode & 0o222
        assert [r["status"] for r in Registry(logger.url).verify()] == ["ok"]

    def test_a_missing_blob_is_stored_again(self, logger, tmp_path):
        logger.run()
        model = write(tmp_path / "m.pt", b"weights")
        v = logger.log_model("net", model)
        blob = Registry(logger.url).store().path(v.digest)
        os.unlink(blob)
        with pytest.warns(RegistryWarning, match=r"1 missing blob"):
            logger.log_model("net", model)
        assert open(blob, "rb").read() == b"weights"


def test_an_alias_protects_a_pruned_version_only_while_it_lasts(logger, tmp_path):
    """Aliasing a let-go version keeps it resolvable and safe from gc without making it
    live; once the alias is removed, gc frees it."""
    logger.run()
    for step in range(3):
        logger.log_model("ckpt", write(tmp_path / f"{step}.pt", os.urandom(50 + step)),
                         step=step, keep=1)
    reg = Registry(logger.url)
    assert reg.set_alias("ckpt", "keeper", 1).state == "pruned"
    assert os.path.isfile(resolve("ato://proj/ckpt@keeper", db=logger.url))
    freed = reg.gc(dry_run=False)
    assert [r["size"] for r in freed] == [51]  # v2 only
    assert reg.get("ckpt", 1).state == "pruned"
    reg.delete_alias("ckpt", "keeper")
    assert [r["size"] for r in reg.gc(dry_run=False)] == [50]
    assert reg.get("ckpt", 1).state == "collected"


class TestUseModel:
    """``use_model``: a run that fine-tunes or evaluates a registered model records it as an
    input, so the lineage of what it produces names the model version it started from."""

    def test_fine_tuning_records_the_base_model_as_an_input(self, config, tmp_path):
        with SQLLogger(config, handle_signals=False) as lg:
            base = lg.log_model("resnet-cls", write(tmp_path / "base.pt", b"base"),
                                aliases=["champion"])
        with SQLLogger(config, handle_signals=False) as lg:
            used = lg.use_model("resnet-cls", "champion")
            assert (used.kind, used.name, used.version, used.digest) == (
                "model", "resnet-cls", 1, base.digest)
            assert used.uri.startswith("ato://") and "kind=model" in used.uri
            tuned = lg.log_model("resnet-ft", write(tmp_path / "ft.pt", b"tuned"))
            tuner = lg.get_current_run_id()
        reg = Registry(config.experiment.sql.db_path)
        produced = reg.produced_by("resnet-ft", tuned.version)
        assert produced["run"]["run_id"] == tuner
        assert [(m["name"], m["version"]) for m in produced["models"]] == [("resnet-cls", 1)]
        assert produced["datasets"] == []  # a model input is not a dataset
        assert [r["run_id"] for r in reg.runs_using("resnet-cls", 1, kind="model")] == [tuner]
        assert [(d["model"], d["version"]) for d in reg.downstream(
            "resnet-cls", "champion", kind="model")] == [("resnet-ft", 1)]
        with pytest.raises(RegistryError, match="'dataset' or a 'model'"):
            reg.runs_using("resnet-cls", 1, kind="checkpoint")
        with pytest.raises(RegistryError, match="no dataset named 'resnet-cls'"):
            reg.runs_using("resnet-cls", 1)  # the default kind stays dataset

    def test_unknown_or_let_go_versions_are_refused_and_nothing_is_linked(self, config,
                                                                           tmp_path):
        ckpt = tmp_path / "step.pt"
        with SQLLogger(config, handle_signals=False) as lg:
            for step in range(3):
                write(ckpt, f"step {step}".encode())
                lg.log_model("ckpt", ckpt, step=step, keep=1)
        with SQLLogger(config, handle_signals=False) as lg:
            lg.run()
            with pytest.raises(RegistryError, match="no alias 'prod'"):
                lg.use_model("ckpt", "prod")
            with pytest.raises(RegistryError, match="v1 is pruned"):
                lg.use_model("ckpt", 1)
            with pytest.raises(RegistryError, match="no model named 'nope'"):
                lg.use_model("nope")
            run_id = lg.get_current_run_id()
            assert lg.use_model("ckpt").version == 3  # latest
        assert [r["run_id"] for r in Registry(config.experiment.sql.db_path).runs_using(
            "ckpt", 3, kind="model")] == [run_id]
        assert Registry(config.experiment.sql.db_path).runs_using("ckpt", 1, kind="model") == []

    def test_models_show_prints_both_directions(self, config, tmp_path):
        import subprocess
        import sys

        with SQLLogger(config, handle_signals=False) as lg:
            lg.log_model("base", write(tmp_path / "b.pt", b"b"))
        with SQLLogger(config, handle_signals=False) as lg:
            lg.use_model("base")
            lg.log_model("tuned", write(tmp_path / "t.pt", b"t"), aliases=["prod"])
            tuner = lg.get_current_run_id()
        url = config.experiment.sql.db_path

        def show(*args):
            r = subprocess.run([sys.executable, "-m", "ato.cli", "models", "show", *args,
                                "--db", url], capture_output=True, text=True, timeout=60)
            assert r.returncode == 0, r.stderr
            return r.stdout

        assert "started from model base v1" in show("tuned", "prod")
        out = show("base", "1")
        assert f"used by 1 run: {tuner}" in out and f"fed model tuned v1 (prod, latest) via run {tuner}" in out


class TestTagsAndDescriptions:
    """Tags and the description of a model or dataset, set after registration (MLflow's
    registered-model tags and description): in the registry, the finder and the CLI."""

    def test_tags_and_description_are_set_read_and_removed(self, config, tmp_path):
        from ato.tracking import open_finder

        url = config.experiment.sql.db_path
        with SQLLogger(config, handle_signals=False) as lg:
            lg.log_model("net", write(tmp_path / "w.pt", b"w"), description="first words")
        reg = Registry(url)
        assert reg.tag("net", ["vision", "production"]) == ["production", "vision"]
        assert reg.tag("net", "production") == ["production", "vision"]  # twice: no change
        assert reg.tag("net", ["vision"], delete=True) == ["production"]
        reg.describe("net", "ResNet-50 on CIFAR-10")
        (asset,) = reg.assets(kind="model")
        assert (asset["tags"], asset["description"]) == (["production"], "ResNet-50 on CIFAR-10")
        (record,) = open_finder(url).registry_assets(kind="model")
        assert record.tags == ("production",) and record.description == "ResNet-50 on CIFAR-10"
        reg.describe("net", None)
        assert reg.assets(kind="model")[0]["description"] is None

    @pytest.mark.parametrize("bad", ["", " lead", "tab\there", "x" * 129, 5, [None]])
    def test_bad_tags_are_refused_naming_them(self, config, tmp_path, bad):
        with SQLLogger(config, handle_signals=False) as lg:
            lg.log_model("net", write(tmp_path / "w.pt", b"w"))
        reg = Registry(config.experiment.sql.db_path)
        with pytest.raises(RegistryError, match="tag"):
            reg.tag("net", bad)
        assert reg.tags("net") == []
        with pytest.raises(RegistryError, match="description must be a str"):
            reg.describe("net", 5)

    def test_cli_tag_and_list(self, config, tmp_path):
        import subprocess
        import sys

        with SQLLogger(config, handle_signals=False) as lg:
            lg.use_dataset("cifar", write(tmp_path / "d.csv", b"1,2"))
        url = config.experiment.sql.db_path

        def ato(*args):
            return subprocess.run([sys.executable, "-m", "ato.cli", "data", *args, "--db", url],
                                  capture_output=True, text=True, timeout=60)

        r = ato("tag", "cifar", "benchmark", "--description", "CIFAR-10, 50k train")
        assert r.returncode == 0 and "tags benchmark; description set" in r.stdout, r.stderr
        listing = ato("list").stdout.splitlines()
        assert listing[0].split()[-1] == "tags" and listing[2].split()[-1] == "benchmark"
        shown = ato("show", "cifar").stdout
        assert "CIFAR-10, 50k train" in shown and "tags: benchmark" in shown
        r = ato("tag", "cifar")
        assert r.returncode == 2 and "give the tags to add" in r.stderr


class TestUseModelAcrossProjects:
    def test_a_run_starts_from_another_projects_model(self, db_url, tmp_path):
        """A run in project 'finetune' uses 'vision''s model with project=; without it the
        error names the project that has it and how to pass it; None, an int and an
        ato:// URI as the name are RegistryErrors naming the rule."""
        vision = SQLLogger(make_config(db_url, "vision"), handle_signals=False)
        vision.run()
        v = vision.log_model("resnet-cls", write(tmp_path / "m.pt", b"w"), aliases=["champion"])
        vision.finish()
        lg = SQLLogger(make_config(db_url, "finetune"), handle_signals=False)
        try:
            run_id = lg.run()
            with pytest.raises(RegistryError, match=r"no model named 'resnet-cls' in project "
                               r"'finetune'.*it exists in project 'vision': pass "
                               r"project='vision'"):
                lg.use_model("resnet-cls", "champion")
            used = lg.use_model("resnet-cls", "champion", project="vision")
            assert used.digest == v.digest and used.project == "vision"
            assert run_id in [u["run_id"] for u in Registry(lg.url).runs_using(
                "resnet-cls", "champion", project="vision", kind="model")]
            for bad, rule in ((None, "has type NoneType: use a str"),
                              (5, "has type int: use a str"),
                              ("ato://vision/resnet-cls@champion",
                               "a URI is not a model name; give the name and project=")):
                with pytest.raises(RegistryError, match=rule):
                    lg.use_model(bad)
        finally:
            lg.finish()
