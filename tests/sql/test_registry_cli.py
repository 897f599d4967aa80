"""``ato models``, ``ato data`` and ``ato store`` as real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from ato.db_routers.sql.manager import SQLLogger
from tests.sql.conftest import PG_URL, make_config
from tests.sql.registry_support import ACTOR, edit_in_place, registry_env, settle, write  # noqa: F401 (fixture)


def ato(*args, db=None, env=None):
    cmd = [sys.executable, "-m", "ato.cli", *args]
    if db is not None:
        cmd += ["--db", db]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ) if env is None else env)


@pytest.fixture
def populated(db_url, tmp_path):
    """Two runs over dataset 'cifar' (v1, then v2 with one file changed, one added), each
    logging a 'resnet' version; v1 is 'champion'."""
    data = tmp_path / "cifar"
    write(data / "a.bin", b"a" * 100)
    write(data / "b.bin", b"b" * 100)
    settle()
    config = make_config(db_url)
    with SQLLogger(config, handle_signals=False) as lg:
        lg.use_dataset("cifar", data)
        lg.log_model("resnet", write(tmp_path / "1.pt", b"one" * 100), step=5,
                     aliases=["champion"])
    write(data / "b.bin", b"B" * 100)
    write(data / "c.bin", b"c" * 7)
    with SQLLogger(config, handle_signals=False) as lg:
        lg.use_dataset("cifar", data)
        lg.log_model("resnet", write(tmp_path / "2.pt", b"two" * 100), step=9)
    return db_url


def test_models_list_and_show(populated):
    """list prints each model with its aliases; show prints versions, then one version
    with the run and dataset that produced it."""
    r = ato("models", "list", db=populated)
    assert r.returncode == 0, r.stderr
    assert "resnet" in r.stdout and "champion=v1, latest=v2" in r.stdout
    r = ato("models", "show", "resnet", db=populated)
    assert r.returncode == 0, r.stderr
    lines = [line.split()[0] for line in r.stdout.splitlines()[3:]]
    assert lines == ["v1", "v2"]
    r = ato("models", "show", "resnet", "champion", db=populated)
    assert "ato://proj/resnet@v1?kind=model  (model, live)" in r.stdout
    assert "produced by run 1" in r.stdout and "used dataset cifar v1" in r.stdout
    data = json.loads(ato("models", "show", "resnet", "v2", "--json", db=populated).stdout)
    assert data["version"] == 2 and data["step"] == 9
    assert data["lineage"]["datasets"][0]["version"] == 2


def test_models_alias_and_history(populated):
    """alias moves champion to v2 and history shows both moves with their author."""
    r = ato("models", "alias", "resnet", "champion", "2", db=populated)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("resnet@champion -> v2")
    rows = json.loads(ato("models", "history", "resnet", "champion", "--json", db=populated).stdout)
    assert [(h["from"], h["to"], h["actor"]) for h in rows] == [(None, 1, ACTOR),
                                                                 (1, 2, ACTOR)]
    r = ato("models", "alias", "resnet", "champion", "--delete", db=populated)
    assert "removed alias champion (was v2)" in r.stdout


def test_data_show_and_diff(populated):
    """diff lists the added and changed files; show lists the runs that used a version."""
    r = ato("data", "diff", "cifar", "1", "2", db=populated)
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "dataset cifar v1 -> v2: 1 added, 0 removed, 1 changed, 1 unchanged",
        "+ c.bin  (7 B)",
        "M b.bin  (100 B -> 100 B)"]
    r = ato("data", "show", "cifar", "1", db=populated)
    assert "used by 1 run: 1" in r.stdout and "fed model resnet v1 (champion)" in r.stdout


def test_store_verify_du_gc(populated, tmp_path):
    """verify is clean; a blob edited in place (size, permissions and times kept) is
    MODIFIED for the full check, which --quick says it does not look for; a removed blob
    is MISSING for both; gc is a dry run unless --delete."""
    r = ato("store", "verify", db=populated)
    assert r.returncode == 0
    assert r.stdout.strip() == "2 blobs checked (full: every blob re-hashed), 0 problems"
    r = ato("store", "gc", db=populated)
    assert r.stdout.strip() == ("would free 0 B (0 bytes) in 0 files; dry run, pass --delete "
                                "to remove them")
    store = tmp_path / "store"
    edited, victim = sorted(store / d / f for d in os.listdir(store) if len(d) == 2
                            for f in os.listdir(store / d))
    edit_in_place(edited, b"\xff")
    r = ato("store", "verify", db=populated)
    assert r.returncode == 1
    assert f"MODIFIED  {edited.parent.name}{edited.name}" in r.stdout
    assert f"held by {populated.split(':')[0]}:" in r.stdout and "1 problem" in r.stdout
    r = ato("store", "verify", "--quick", db=populated)
    assert r.returncode == 0 and r.stdout.strip() == (
        "2 blobs checked (quick: sizes only, bytes changed in place are not detected), "
        "0 problems")
    victim.unlink()
    r = ato("store", "verify", "--quick", "--json", db=populated)
    report = json.loads(r.stdout)
    assert r.returncode == 1 and report["mode"] == "quick"
    assert [(p["status"], p["digest"]) for p in report["problems"]] == [
        ("missing", victim.parent.name + victim.name)]
    r = ato("store", "du", "--json", db=populated)
    usage = json.loads(r.stdout)
    assert list(usage.values())[0]["blobs_on_disk"] == 1


def test_history_of_an_unknown_alias_is_an_error(populated):
    """A typo is not an empty history: an alias never set is one line naming it and the
    aliases the model has had; one that was removed still shows its moves."""
    r = ato("models", "history", "resnet", "champoin", db=populated)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.strip() == ("ato models: error: model 'resnet' (project 'proj') never had "
                                "an alias 'champoin' (its aliases, past and present: "
                                "champion, latest)")
    assert ato("models", "alias", "resnet", "champion", "--delete", db=populated).returncode == 0
    rows = json.loads(ato("models", "history", "resnet", "champion", "--json",
                          db=populated).stdout)
    assert [(h["from"], h["to"]) for h in rows] == [(None, 1), (1, None)]
    r = ato("models", "history", "resnet", "champoin", db=populated)
    assert "(its aliases, past and present: champion, latest)" in r.stderr


def test_errors_are_one_line(populated, tmp_path):
    """Unknown names and versions, and a missing database file, are one clean line with
    exit status 2."""
    r = ato("models", "show", "nope", db=populated)
    assert r.returncode == 2 and r.stderr.startswith("ato models: error: no model named 'nope'")
    r = ato("models", "show", "resnet", "9", db=populated)
    assert "has no version 9 (versions 1..2; aliases: champion, latest)" in r.stderr
    r = ato("models", "alias", "resnet", "v1", "1", db=populated)
    assert "alias 'v1' looks like a version number" in r.stderr
    missing = tmp_path / "typo.db"
    r = ato("data", "list", db=f"sqlite:///{missing}")
    assert r.returncode == 2 and f"no tracker database at {missing}" in r.stderr
    assert not missing.exists()


def test_a_closed_pipe_ends_quietly(populated):
    """`ato … | head`: no BrokenPipeError traceback, for any command writing much."""
    for args in (["models", "show", "resnet"], ["store", "gc", "--json"],
                 ["data", "show", "cifar", "1"]):
        proc = subprocess.Popen([sys.executable, "-m", "ato.cli", *args, "--db", populated],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                env=dict(os.environ))
        proc.stdout.close()  # the reader (head) went away before ato wrote anything
        err = proc.stderr.read().decode()
        proc.wait(timeout=120)
        assert "Traceback" not in err and "BrokenPipe" not in err, err
        assert proc.returncode in (0, 141)


def test_references_show_and_diff(db_url, tmp_path):
    """A reference's show has aligned rows and its declared size without a file count;
    diff says a reference has no file list."""
    from ato.db_routers.sql.registry import Registry

    reg = Registry(db_url)
    reg.use_reference("vision", "imagenet", "s3://bucket/imagenet/", size=148_000_000_000)
    r = ato("data", "show", "imagenet", "1", db=db_url)
    assert r.returncode == 0, r.stderr
    rows = {line.split()[0]: line for line in r.stdout.splitlines()[1:] if line.strip()}
    starts = {line.index(line.split(None, 1)[1]) for k, line in rows.items()
              if k in ("digest", "reference", "size", "source", "stored", "aliases")}
    assert len(starts) == 1, r.stdout
    assert "137.8 GiB (as declared; a reference has no file list)" in rows["size"]
    assert "0 files" not in r.stdout
    r = ato("data", "diff", "imagenet", "1", "1", db=db_url)
    assert r.returncode == 2 and "a reference has no file list to compare" in r.stderr


def test_models_show_prints_the_description(db_url, tmp_path):
    from ato.db_routers.sql.registry import Registry

    Registry(db_url).log_model("p", "net", write(tmp_path / "m.pt", b"m"),
                               description="ResNet-50, ImageNet init")
    for args in (("net",), ("net", "1")):
        r = ato("models", "show", *args, db=db_url)
        assert r.returncode == 0 and "ResNet-50, ImageNet init" in r.stdout, r.stderr



def test_json_output_is_strict_with_non_finite_meta(db_url, tmp_path):
    """A meta holding NaN/inf prints as ``ato runs --json`` prints them (strict JSON,
    {"$numberDouble": …}), never a NaN token a strict parser refuses."""
    with SQLLogger(make_config(db_url), handle_signals=False) as lg:
        lg.log_model("odd", write(tmp_path / "w.pt", b"w" * 10),
                     meta={"loss": float("nan"), "range": [float("-inf"), 1.0]})
    r = ato("models", "show", "odd", "v1", "--json", db=db_url)
    assert r.returncode == 0, r.stderr

    def refuse(token):
        raise ValueError(f"non-strict JSON token {token}")

    meta = json.loads(r.stdout, parse_constant=refuse)["meta"]
    assert meta == {"loss": {"$numberDouble": "NaN"},
                    "range": [{"$numberDouble": "-Infinity"}, 1.0]}


@pytest.mark.processes  # many CLI subprocesses: seconds
def test_models_delete_lets_versions_go_and_gc_frees_them(populated, tmp_path):
    """`ato models delete` marks versions pruned (all or nothing; an alias other than
    'latest' protects its version, named in the error), moves 'latest' back to the newest
    version left, and the next gc frees their files; the records and lineage stay."""
    with SQLLogger(make_config(populated), handle_signals=False) as lg:
        lg.log_model("resnet", write(tmp_path / "3.pt", b"three" * 100), step=12)
    r = ato("models", "delete", "resnet", "3", "champion", db=populated)
    assert r.returncode == 2
    assert "model 'resnet' v1 is aliased champion" in r.stderr
    assert "ato models alias resnet champion --delete" in r.stderr
    states = [v["state"] for v in json.loads(ato("models", "show", "resnet", "--json",
                                                  db=populated).stdout)]
    assert states == ["live", "live", "live"]  # nothing was deleted
    r = ato("models", "delete", "resnet", "v3", "latest", db=populated)
    assert r.returncode == 0, r.stderr
    assert "deleted model resnet v3" in r.stdout and "ato store gc --delete" in r.stdout
    r = ato("models", "list", db=populated)
    assert "champion=v1, latest=v2" in r.stdout
    history = json.loads(ato("models", "history", "resnet", "latest", "--json",
                             db=populated).stdout)
    assert (history[-1]["from"], history[-1]["to"]) == (3, 2)
    r = ato("models", "delete", "resnet", "3", db=populated)
    assert r.returncode == 0 and "v3 was already pruned" in r.stdout
    gc = ato("store", "gc", "--delete", "--json", db=populated)
    assert gc.returncode == 0, gc.stderr
    freed = json.loads(gc.stdout)
    assert [item["size"] for item in freed["items"] if item["reason"] == "only unkept versions"] \
        == [500]
    shown = json.loads(ato("models", "show", "resnet", "3", "--json", db=populated).stdout)
    assert shown["state"] == "collected" and shown["lineage"]["run"]["run_id"] == 3
    # every version gone: 'latest' is removed, and naming none says why
    ato("models", "alias", "resnet", "champion", "--delete", db=populated)
    assert ato("models", "delete", "resnet", "1", "2", db=populated).returncode == 0
    r = ato("models", "show", "resnet", "latest", db=populated)
    assert r.returncode == 2 and "has no live version" in r.stderr
    assert ato("store", "verify", db=populated).returncode == 0


def test_data_delete_and_unknown_versions(populated):
    r = ato("data", "delete", "cifar", "1", db=populated)
    assert r.returncode == 0 and "deleted dataset cifar v1" in r.stdout
    r = ato("data", "delete", "cifar", "7", db=populated)
    assert r.returncode == 2 and "has no version 7" in r.stderr
    r = ato("data", "show", "cifar", "--json", db=populated)
    assert [v["state"] for v in json.loads(r.stdout)] == ["pruned", "live"]


def test_runs_show_lists_what_a_run_used_and_produced(populated):
    r = ato("runs", "show", "1", db=populated)
    assert r.returncode == 0, r.stderr
    rows = [line.split()[:4] for line in r.stdout.splitlines()
            if line.startswith(("input ", "output "))]
    assert rows == [["input", "dataset", "cifar", "v1"], ["output", "model", "resnet", "v1"]]
    data = json.loads(ato("runs", "show", "2", "--json", db=populated).stdout)
    assert [(v["name"], v["version"]) for v in data["inputs"]] == [("cifar", 2)]
    assert [v["uri"] for v in data["outputs"]] == ["ato://proj/resnet@v2?kind=model"]


#: Every action of ``ato models``, ``ato data`` and ``ato store``.
ACTIONS = [["models", "list"], ["models", "show", "net"], ["models", "show", "net", "1"],
           ["models", "alias", "net", "champion", "1"], ["models", "history", "net"],
           ["data", "list"], ["data", "show", "cifar"], ["data", "diff", "cifar", "1", "2"],
           ["store", "verify"], ["store", "du"], ["store", "gc"], ["store", "gc", "--delete"]]


def _tree(path):
    return sorted(str(p.relative_to(path)) for p in path.rglob("*"))


def assert_cannot_open(r, action, *expected):
    """One line on stderr, as ``ato runs`` prints it, exit status 2, nothing on stdout."""
    assert r.returncode == 2, (action, r.returncode, r.stderr)
    assert r.stdout == "" and "Traceback" not in r.stderr, (action, r.stderr)
    assert len(r.stderr.strip().splitlines()) == 1, (action, r.stderr)
    assert r.stderr.startswith(f"ato {action[0]}: error: "), (action, r.stderr)
    for text in expected:
        assert text in r.stderr, (action, r.stderr)


@pytest.mark.parametrize("case", ["text file", "directory", "missing file"])
@pytest.mark.processes  # many CLI subprocesses: seconds
def test_an_unopenable_sqlite_database_is_one_line(tmp_path, case):
    """A text file named like a database, a directory, or a mistyped path: every action
    prints one line naming the path and the reason, exits 2 (never 0), and creates or
    changes nothing — no database, no store."""
    work = tmp_path / "work"
    work.mkdir()
    path = work / "experiments.db"
    if case == "text file":
        path.write_text("these are my notes\n" * 100)
        expected = ("cannot open the tracker database", str(path), "file is not a database")
    elif case == "directory":
        path.mkdir()
        expected = (f"no tracker database at {path}", "a directory, not a database file")
    else:
        expected = (f"no tracker database at {path}", "no such file",
                    "reading never creates one")
    before = _tree(tmp_path)
    for action in ACTIONS:
        r = ato(*action, db=f"sqlite:///{path}")
        assert_cannot_open(r, action, *expected)
    assert _tree(tmp_path) == before
    if case == "text file":
        assert path.read_text() == "these are my notes\n" * 100
    r = ato("runs", "list", db=f"sqlite:///{path}")  # the same line as `ato runs`
    assert_cannot_open(r, ["runs"], *expected)


@pytest.mark.parametrize("case, reason", [
    ("missing database", 'database "ato_no_such_db" does not exist'),
    ("unknown role", 'role "ato_no_such_role" does not exist'),
    ("no server", "Connection refused"),
])
@pytest.mark.processes  # many CLI subprocesses: seconds
def test_an_unopenable_postgresql_database_is_one_line(tmp_path, case, reason):
    """A PostgreSQL database that does not exist, a role that does not exist, a port no
    server listens on: every action prints the server's reason in one line, exit 2."""
    from sqlalchemy.engine import make_url

    from tests.databases import require_postgres

    require_postgres()
    url = make_url(PG_URL)
    url = {"missing database": url.set(database="ato_no_such_db"),
           "unknown role": url.set(username="ato_no_such_role"),
           "no server": url.set(port=1)}[case].render_as_string(hide_password=True)
    for action in ACTIONS:
        r = ato(*action, db=url)
        assert_cannot_open(r, action, "cannot open the tracker database", reason)
    assert not (tmp_path / "store").exists()
    from ato.db_routers.sql.engine import TrackerUnavailableError, forget_engine
    from ato.db_routers.sql.registry import Registry

    with pytest.raises(TrackerUnavailableError, match=reason):  # the API says the same
        Registry(url)
    forget_engine(url)


@pytest.mark.processes  # many CLI subprocesses: seconds
def test_a_store_that_does_not_exist_is_an_error(populated, tmp_path):
    """verify, du and gc on a mistyped --store or $ATO_STORE (or a file) name the path,
    exit 2 and create nothing; so does the default store beside a SQLite file nothing
    was ever stored in."""
    typo = tmp_path / "stroe"
    actions = [["store", "verify"], ["store", "du"], ["store", "gc"],
               ["store", "gc", "--delete"], ["store", "gc", "--forget-db", populated]]
    for action in actions:
        r = ato(*action, "--store", str(typo), db=populated)
        assert_cannot_open(r, action, f"no artifact store at {typo} (no such directory)",
                           "--store")
        env = {**os.environ, "ATO_STORE": str(typo)}
        r = ato(*action, db=populated, env=env)
        assert_cannot_open(r, action, f"no artifact store at {typo} (no such directory)",
                           "$ATO_STORE")
    assert not typo.exists()
    afile = write(tmp_path / "notes.txt", b"notes")
    r = ato("store", "du", "--store", str(afile), db=populated)
    assert_cannot_open(r, ["store"], f"no artifact store at {afile} (not a directory)")
    assert afile.read_bytes() == b"notes"
    if populated.startswith("sqlite"):  # the default store: beside a SQLite file only
        from ato.db_routers.sql.registry import Registry

        url = f"sqlite:///{tmp_path / 'plain.db'}"
        Registry(url).use_dataset("p", "d", write(tmp_path / "d.csv", b"1,2"))  # in place
        env = {k: v for k, v in os.environ.items() if k != "ATO_STORE"}
        r = ato("store", "du", db=url, env=env)
        assert_cannot_open(r, ["store"], f"no artifact store at {tmp_path / 'plain.ato-store'}",
                           "the default store beside")
        assert not (tmp_path / "plain.ato-store").exists()


def test_gc_forget_db_is_a_dry_run_without_delete(tmp_path):
    """--forget-db without --delete says what it would forget, lists what gc would then
    free, and changes nothing: the store still lists the database; --delete forgets it."""
    from ato.db_routers.sql.engine import forget_engine
    from ato.db_routers.sql.registry import Registry
    from ato.db_routers.sql.registry.core import known_databases

    a_url, b_url = (f"sqlite:///{tmp_path / n}" for n in ("a.db", "b.db"))
    Registry(a_url).log_model("p", "mine", write(tmp_path / "a.pt", b"mine"))
    theirs = Registry(b_url).log_model("p", "theirs", write(tmp_path / "b.pt", b"theirs"))
    store = Registry(a_url).store()
    (tmp_path / "b.db").unlink()  # gone for good
    forget_engine(b_url)
    listed = known_databases(store)
    assert listed == [a_url, b_url]
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "store").rglob("*")}
    for extra in ([], ["--json"]):
        r = ato("store", "gc", "--forget-db", b_url, "--grace", "0", *extra, db=a_url)
        assert r.returncode == 0, r.stderr
        if extra:
            report = json.loads(r.stdout)
            assert report["dry_run"] is True and report["forget"] == [b_url]
            assert [i["digest"] for i in report["items"]] == [theirs.digest]
        else:
            assert f"would forget database {b_url} in file://{tmp_path / 'store'}" in r.stdout
            assert f"would remove {theirs.digest}" in r.stdout
        assert known_databases(store) == listed
        assert {p: p.stat().st_mtime_ns for p in (tmp_path / "store").rglob("*")} == before
    r = ato("store", "gc", "--forget-db", b_url, "--grace", "0", "--delete", db=a_url)
    assert r.returncode == 0, r.stderr
    assert f"forgot database {b_url}" in r.stdout and f"remove {theirs.digest}" in r.stdout
    assert known_databases(store) == [a_url] and not store.has(theirs.digest)
    r = ato("store", "gc", "--forget-db", b_url, db=a_url)  # no longer listed
    assert r.returncode == 2 and "lists no such database (it lists " in r.stderr
    forget_engine(a_url)


def test_du_and_gc_show_temporary_files(populated, tmp_path):
    """What killed registrations left in <store>/tmp/ is seen: du counts every temporary
    byte; gc lists the old ones and says, in one line, how many it spares because they are
    younger than --grace or held by a running process."""
    import fcntl

    tmp = tmp_path / "store" / "tmp"
    write(tmp / "1-1-1", b"y" * 3000)  # young: a registration may be writing it
    old = write(tmp / "2-2-2", b"o" * 5000)
    held = write(tmp / "3-3-3", b"h" * 700)
    for path in (old, held):
        os.utime(path, (time.time() - 7200,) * 2)
    usage = json.loads(ato("store", "du", "--json", db=populated).stdout)
    (store_url,) = usage
    assert (usage[store_url]["temporary_files"], usage[store_url]["temporary_bytes"]) == (3, 8700)
    r = ato("store", "du", db=populated)
    header, _rule, row = r.stdout.splitlines()
    assert header.split()[-1] == "temporary" and row.endswith("8.5 KiB")
    with open(held, "rb") as f:
        fcntl.flock(f, fcntl.LOCK_EX)  # a live writer: this process
        r = ato("store", "gc", db=populated)
        assert r.returncode == 0, r.stderr
        assert "would remove 2-2-2  4.9 KiB  (temporary file)" in r.stdout
        assert r.stdout.splitlines()[-1] == (
            f"not listed in {tmp_path / 'store'}/tmp: 1 temporary file (2.9 KiB) younger than "
            f"--grace 3600 s (a registration may still be writing them; a smaller --grace "
            f"lists those no running process holds); 1 older temporary file (700 B) held by "
            f"a running process")
        report = json.loads(ato("store", "gc", "--json", db=populated).stdout)
        assert report["spared_temporary"] == {store_url: {
            "younger_than_grace": {"files": 1, "bytes": 3000},
            "in_use": {"files": 1, "bytes": 700}}}
        r = ato("store", "gc", "--delete", db=populated)
        assert r.returncode == 0, r.stderr
        assert "remove 2-2-2" in r.stdout and "1 temporary file (2.9 KiB) younger" in r.stdout
    assert sorted(os.listdir(tmp)) == ["1-1-1", "3-3-3"]
    r = ato("store", "gc", "--grace", "0", "--delete", db=populated)
    assert "remove 1-1-1" in r.stdout and "remove 3-3-3" in r.stdout
    assert "not listed" not in r.stdout and os.listdir(tmp) == []


def test_reading_actions_never_write_the_database(tmp_path):
    """list, show, history and diff read through a read-only connection: a database with
    no tracker tables (an empty file, another program's) stays byte for byte as it was,
    and is refused as no tracker database (as ato runs and the dashboard refuse it), never
    read as an empty registry."""
    import hashlib
    import sqlite3

    empty = tmp_path / "empty.db"
    empty.touch()
    old = tmp_path / "old.db"
    with sqlite3.connect(old) as conn:
        conn.execute("CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT, "
                     "description TEXT, created_at TIMESTAMP)")
    for path in (empty, old):
        before = hashlib.sha256(path.read_bytes()).hexdigest()
        db = f"sqlite:///{path}"
        for action in (["models", "list"], ["models", "show", "net"],
                       ["models", "history", "net"], ["data", "diff", "cifar", "1", "2"]):
            r = ato(*action, db=db)
            assert r.returncode == 2 and "holds no Ato tracker tables" in r.stderr, (action, r.stderr)
            assert "Traceback" not in r.stderr
        assert hashlib.sha256(path.read_bytes()).hexdigest() == before


def test_control_characters_in_project_names_are_escaped(tmp_path):
    """A project named with a tab: 'ato models list' escapes it (as file names are: the
    columns stay aligned) and the --project hints quote it so it shows and still runs."""
    from ato.db_routers.sql.registry import Registry

    url = f"sqlite:///{tmp_path / 'c.db'}"
    reg = Registry(url, store=str(tmp_path / "store"))
    reg.log_model("tab\tx", "net", write(tmp_path / "a.pt", b"a"))
    reg.log_model("plain", "net", write(tmp_path / "b.pt", b"b"))
    out = ato("models", "list", db=url)
    assert out.returncode == 0 and "\t" not in out.stdout, out.stdout
    assert "'tab\\tx'" in out.stdout, out.stdout
    widths = {len(line.split("  net")[0]) for line in out.stdout.splitlines() if "  net" in line}
    assert len(widths) == 1, out.stdout  # aligned
    amb = ato("models", "show", "net", db=url)
    assert amb.returncode == 2 and "\t" not in amb.stderr, amb.stderr
    assert "--project $'tab\\tx'" in amb.stderr, amb.stderr
    again = ato("models", "show", "net", "--project", "tab\tx", db=url)
    assert again.returncode == 0, again.stderr
    assert "(project 'tab\\tx')" in again.stdout and "\t" not in again.stdout, again.stdout
