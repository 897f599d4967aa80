"""What the registry refuses or says about its inputs: paths that are not regular files
or directories, names, aliases, scores, re-registered content, a server database without
a store, and the CLI output of ``show``, ``du`` and ``verify`` (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
import os
import socket
import subprocess
import sys
import threading
import time
import warnings

import pytest
from sqlalchemy import create_engine, text

from ato.db_routers.sql.manager import SQLLogger
from ato.db_routers.sql.registry import Registry, RegistryError
from ato.db_routers.sql.registry.core import RegistryWarning
from tests.sql.conftest import make_config
from tests.sql.registry_support import edit_in_place, registry_env, settle, write  # noqa: F401 (fixture)


def ato(*args, db=None, env=None):
    cmd = [sys.executable, "-m", "ato.cli", *args]
    if db is not None:
        cmd += ["--db", db]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, **(env or {})))


@pytest.fixture
def logger(config):
    lg = SQLLogger(config, handle_signals=False)
    yield lg
    lg.finish()


def _bounded(call):
    """Run ``call`` in a thread; fail (instead of hanging the suite) past 20 s."""
    out: dict = {}

    def target():
        try:
            out["value"] = call()
        except BaseException as e:  # noqa: BLE001 (reported below)
            out["error"] = e

    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(20)
    assert not t.is_alive(), "the registration blocked"
    return out


class TestSpecialPaths:
    def test_fifo_socket_device_and_link_loop_are_refused_before_opening(self, logger,
                                                                          tmp_path):
        logger.run()
        fifo = tmp_path / "fifo"
        os.mkfifo(fifo)
        sock_path = tmp_path / "s.sock"
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(sock_path))
        loop = tmp_path / "loop"
        os.symlink(loop, loop)
        try:
            for path, kind in ((fifo, "a FIFO"), (sock_path, "a socket"),
                               ("/dev/null", "a character device"),
                               (loop, "a symbolic link loop")):
                for wait in (True, False):
                    out = _bounded(lambda p=path, w=wait: logger.log_model("m", p, wait=w))
                    err = out.get("error")
                    assert isinstance(err, RegistryError), (path, out)
                    assert str(path) in str(err) and kind in str(err)
        finally:
            sock.close()
        assert "m" not in [a["name"] for a in Registry(logger.url).assets()]  # no 0-byte one

    def test_inside_a_directory_too(self, logger, tmp_path):
        logger.run()
        write(tmp_path / "d" / "ok.bin", b"x")
        os.mkfifo(tmp_path / "d" / "sub-pipe")
        out = _bounded(lambda: logger.use_dataset("d", tmp_path / "d", copy=True))
        assert isinstance(out.get("error"), RegistryError)
        assert "sub-pipe: a FIFO" in str(out["error"])
        os.remove(tmp_path / "d" / "sub-pipe")
        os.symlink(tmp_path / "d" / "gone", tmp_path / "d" / "dangling")
        with pytest.raises(RegistryError, match="dangling: a dangling symbolic link"):
            logger.use_dataset("d", tmp_path / "d")


class TestNamesAliasesScores:
    @pytest.mark.parametrize("name", ["bad name/x", "a/b", "x@y", "", " lead", "-dash",
                                      "tab\tx", "é", "x" * 129])
    def test_bad_names_are_refused_naming_the_rule(self, logger, tmp_path, name):
        logger.run()
        f = write(tmp_path / "m.pt", b"m")
        with pytest.raises(RegistryError, match=r"use an ASCII letter or digit \(A-Z, a-z, "
                                                r"0-9\), then ASCII letters"):
            logger.log_model(name, f)
        with pytest.raises(RegistryError, match=r"dataset name .*use an ASCII letter or digit"):
            logger.use_dataset(name, f)

    def test_good_names_and_old_bad_records_stay_readable(self, logger, tmp_path):
        logger.run()
        f = write(tmp_path / "m.pt", b"m")
        for name in ("resnet-50", "v2.1_final", "7b", "X" * 128):
            assert logger.log_model(name, f).version == 1
        engine = create_engine(logger.url)
        with engine.begin() as conn:  # a record made before the rule existed
            conn.execute(text("UPDATE registry_assets SET name = 'old name/x' "
                              "WHERE name = '7b'"))
        engine.dispose()
        reg = Registry(logger.url)
        assert reg.get("old name/x", kind="model").version == 1
        assert os.path.isfile(reg.resolve("ato://proj/old name/x@v1?kind=model"))

    def test_latest_alias_is_refused_at_registration_like_the_cli(self, logger, tmp_path):
        logger.run()
        f = write(tmp_path / "m.pt", b"m")
        with pytest.raises(RegistryError, match="alias 'latest' moves by itself"):
            logger.log_model("m", f, aliases=["latest"])
        with pytest.raises(RegistryError, match="alias 'latest' moves by itself"):
            logger.use_dataset("d", f, aliases="latest")
        with pytest.raises(RegistryError, match="alias 'latest' moves by itself"):
            logger.use_reference("r", "s3://b/k", etag="e", aliases=["latest"])
        with pytest.raises(RegistryError, match="alias 'has space'"):
            logger.use_reference("r", "s3://b/k", etag="e", aliases=["has space"])

    @pytest.mark.parametrize("score", ["high", b"1", True, math.nan, math.inf, -math.inf,
                                       [1.0], object()])
    def test_bad_scores_are_registry_errors(self, logger, tmp_path, score):
        logger.run()
        f = write(tmp_path / "m.pt", b"m")
        with pytest.raises(RegistryError, match=r"must be a finite number"):
            logger.log_model("m", f, score=score)

    @pytest.mark.parametrize("call, message", [
        (lambda lg, f: lg.log_model("m", f, description=5),
         r"model 'm': description=5 must be a str or None \(got int\)"),
        (lambda lg, f: lg.log_model("m", f, wait="no"),
         r"model 'm': wait='no' must be True or False \(got str\)"),
        (lambda lg, f: lg.use_dataset("d", f, copy="yes"),
         r"dataset 'd': copy='yes' must be True or False \(got str\)"),
        (lambda lg, f: lg.use_dataset("d", f, description=b"x"),
         r"description=b'x' must be a str or None \(got bytes\)"),
    ])
    def test_loose_argument_types_are_refused_naming_them(self, logger, tmp_path, call,
                                                          message):
        """description must be text, wait and copy booleans: 5, 'no' and 'yes' were
        accepted silently (a truthy 'no' even waited)."""
        logger.run()
        f = write(tmp_path / "m.pt", b"m")
        with pytest.raises(RegistryError, match=message):
            call(logger, f)
        assert Registry(logger.url).assets() == []  # nothing recorded

    def test_numpy_and_int_scores_are_stored_as_floats(self, logger, tmp_path):
        np = pytest.importorskip("numpy")
        logger.run()
        assert logger.log_model("m", write(tmp_path / "a.pt", b"a"), score=3).score == 3.0
        assert logger.log_model("m", write(tmp_path / "b.pt", b"b"),
                                score=np.float32(0.5)).score == 0.5

    def test_existing_content_warns_about_what_was_not_applied(self, logger, tmp_path):
        logger.run()
        f = write(tmp_path / "m.pt", b"m")
        logger.log_model("m", f, score=0.9, step=1, meta={"a": 1})
        with pytest.warns(RegistryWarning, match=r"already v1; not applied: score=0\.5 "
                                                 r"\(v1 has 0\.9\), step=2 \(v1 has 1\), meta"):
            again = logger.log_model("m", f, score=0.5, step=2, meta={"a": 2})
        assert (again.created, again.score, again.step, again.meta) == (False, 0.9, 1, {"a": 1})
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # the same values, or none: nothing to say
            logger.log_model("m", f, score=0.9, step=1, meta={"a": 1})
            logger.log_model("m", f)


class TestCli:
    @pytest.fixture
    def populated(self, db_url, tmp_path):
        config = make_config(db_url)
        with SQLLogger(config, handle_signals=False) as lg:
            lg.use_dataset("cifar10", write(tmp_path / "data.bin", b"d" * 10))
            lg.log_model("net", write(tmp_path / "1.pt", b"1"), score=0.25)
            lg.log_model("net", write(tmp_path / "2.pt", b"2"))
            lg.log_model("plain", write(tmp_path / "3.pt", b"3"))
        Registry(db_url).set_alias("net", "best", 1)
        engine = create_engine(db_url)
        with engine.begin() as conn:
            conn.execute(text("UPDATE registry_assets SET description = 'hi'"))
        engine.dispose()
        return db_url

    def test_show_has_a_gap_after_description_and_a_score_column(self, populated):
        r = ato("models", "show", "net", "2", db=populated)
        assert r.returncode == 0, r.stderr
        assert "description hi" in r.stdout and "descriptionhi" not in r.stdout
        r = ato("models", "show", "net", db=populated)
        header = r.stdout.splitlines()[2].split()
        assert header[:7] == ["version", "digest", "size", "files", "run", "step", "score"]
        rows = {line.split()[0]: line for line in r.stdout.splitlines()[4:]}
        assert " 0.25 " in rows["v1"]
        r = ato("models", "show", "plain", db=populated)
        assert "score" not in r.stdout.splitlines()[2]

    def test_wrong_kind_names_the_other_one(self, populated):
        r = ato("models", "show", "cifar10", db=populated)
        assert r.returncode == 2
        assert "a dataset named 'cifar10' exists: ato data show cifar10" in r.stderr
        r = ato("data", "show", "net", db=populated)
        assert "a model named 'net' exists: ato models show net" in r.stderr
        with pytest.raises(RegistryError, match="a model named 'net' exists"):
            Registry(populated).runs_using("net")
        r = ato("models", "show", "nothing", db=populated)
        assert "exists" not in r.stderr and "no model named 'nothing'" in r.stderr


def test_server_database_without_store_says_so(db_url, tmp_path, monkeypatch):
    """verify, du and gc on a database with no store must not answer '0 problems'."""
    if db_url.startswith("sqlite"):
        pytest.skip("a SQLite database always has the store beside its file")
    monkeypatch.delenv("ATO_STORE")
    SQLLogger(make_config(db_url), handle_signals=False).finish()
    for action in ("verify", "du", "gc"):
        r = ato("store", action, db=db_url)
        assert r.returncode == 2, (action, r.stdout, r.stderr)
        assert "no artifact store for" in r.stderr and "$ATO_STORE" in r.stderr


def test_du_shows_bytes_held_by_other_databases(tmp_path):
    store = tmp_path / "store"
    env = {"ATO_STORE": str(store)}
    urls = [f"sqlite:///{tmp_path / n}.db" for n in ("a", "b")]
    for url, data in zip(urls, (b"a" * 1000, b"b" * 3000)):
        with SQLLogger(make_config(url), handle_signals=False) as lg:
            lg.log_model("m", write(tmp_path / f"{data[:1].decode()}.pt", data))
    r = ato("store", "du", db=urls[0], env=env)
    assert r.returncode == 0, r.stderr
    header, _, row = r.stdout.splitlines()[:3]
    assert "held by other databases" in header
    assert "1000 B" in row and "2.9 KiB" in row


def test_verify_prints_the_fix_and_the_fix_repairs(tmp_path):
    store = tmp_path / "store"
    url = f"sqlite:///{tmp_path / 'a.db'}"
    env = {"ATO_STORE": str(store)}
    src = write(tmp_path / "m.pt", b"original" * 100)
    settle()
    with SQLLogger(make_config(url), handle_signals=False) as lg:
        v = lg.log_model("m", src)
    blob = store / v.digest[:2] / v.digest[2:]
    edit_in_place(blob, b"EDITED")
    r = ato("store", "verify", db=url, env=env)
    assert r.returncode == 1
    assert f"fix: rm -f {blob}; then register the original again" in r.stdout
    assert f"{src}" in r.stdout and "ato://proj/m@v1" in r.stdout
    os.remove(blob)  # the fix, step by step
    with SQLLogger(make_config(url), handle_signals=False) as lg:
        with pytest.warns(RegistryWarning, match=r"model 'm' v1: repaired the store .*: 1 "
                                                 r"missing blob"):
            assert lg.log_model("m", src).created is False
    assert ato("store", "verify", db=url, env=env).returncode == 0


def _store_files(tmp_path) -> list[str]:
    """Files in the test's store besides the list of databases: blobs, temporary copies."""
    root = tmp_path / "store"
    return sorted(os.path.relpath(os.path.join(base, f), root)
                  for base, _dirs, files in os.walk(root) for f in files
                  if os.path.relpath(base, root).split(os.sep)[0] != "databases")


class TestStepAndMeta:
    @pytest.mark.parametrize("step", ["x", "3", 1.5, 3.0, True, [1], 2**31, -(2**31) - 1])
    def test_bad_steps_are_refused_before_anything_is_stored(self, logger, tmp_path, step):
        logger.run()
        f = write(tmp_path / "ck.pt", b"checkpoint")
        for wait in (True, False):
            with pytest.raises(RegistryError, match=r"model 'm': step=.* must be an integer|"
                                                    r"model 'm': step=.* is out of range"):
                logger.log_model("m", f, step=step, wait=wait)
        assert _store_files(tmp_path) == []  # refused before the copy
        assert "m" not in [a["name"] for a in Registry(logger.url).assets()]

    def test_numpy_integer_steps_are_stored_as_ints(self, logger, tmp_path):
        np = pytest.importorskip("numpy")
        logger.run()
        v = logger.log_model("m", write(tmp_path / "a.pt", b"a"), step=np.int64(7))
        assert v.step == 7 and type(v.step) is int
        again = Registry(logger.url).get("m", 1)
        assert again.step == 7 and type(again.step) is int

    @pytest.mark.parametrize("meta, where", [
        ({"x": object()}, r"meta\['x'\] has type object"),
        ({1: 2}, r"meta\[1\] has a key of type int"),
        ("notadict", r"meta='notadict' must be a dict"),
        ([("a", 1)], r"meta=\[\('a', 1\)\] must be a dict"),
        ({"a": [1, {2: 3}]}, r"meta\['a'\]\[1\]\[2\] has a key of type int"),
        ({"a": {"b": {1, 2}}}, r"meta\['a'\]\['b'\] has type set"),
        ({"b": b"bytes"}, r"meta\['b'\] has type bytes"),
        ({"c": 1j}, r"meta\['c'\] has type complex"),
    ])
    def test_meta_that_is_not_json_is_refused_naming_the_key(self, logger, tmp_path, meta,
                                                             where):
        logger.run()
        f = write(tmp_path / "ck.pt", b"checkpoint")
        with pytest.raises(RegistryError, match=r"model 'm': " + where):
            logger.log_model("m", f, meta=meta)
        with pytest.raises(RegistryError, match=r"dataset 'd': " + where):
            logger.use_dataset("d", f, meta=meta, copy=True)
        with pytest.raises(RegistryError, match=r"dataset 'r': " + where):
            logger.use_reference("r", "s3://b/k", etag="e", meta=meta)
        assert _store_files(tmp_path) == []
        assert Registry(logger.url).assets() == []

    def test_a_cyclic_meta_is_refused(self, logger, tmp_path):
        logger.run()
        meta: dict = {}
        meta["me"] = meta
        with pytest.raises(RegistryError, match=r"meta\['me'\]\['me'\].* nests deeper"):
            logger.log_model("m", write(tmp_path / "ck.pt", b"c"), meta=meta)

    def test_numpy_scalars_and_tuples_become_json_numbers_and_lists(self, logger, tmp_path):
        np = pytest.importorskip("numpy")
        logger.run()
        meta = {"a": np.float32(0.5), "n": np.int64(3), "ok": np.bool_(True),
                "t": (1, np.float64(2.5)), "deep": {"x": [None, "s", False]}}
        v = logger.log_model("m", write(tmp_path / "ck.pt", b"c"), meta=meta)
        expected = {"a": 0.5, "n": 3, "ok": True, "t": [1, 2.5],
                    "deep": {"x": [None, "s", False]}}
        for got in (v.meta, Registry(logger.url).get("m", 1).meta):
            assert got == expected
            assert type(got["a"]) is float and type(got["n"]) is int
            assert type(got["ok"]) is bool


class TestReferences:
    @pytest.mark.parametrize("options, message", [
        ({"size": -5}, r"size=-5 must be a number of bytes \(an int >= 0\)"),
        ({"size": "big"}, r"size='big' must be a number of bytes .*got str"),
        ({"size": 1.5}, r"size=1.5 must be a number of bytes"),
        ({"size": True}, r"size=True must be a number of bytes"),
        ({"etag": 5}, r"etag=5 must be a str or None"),
        ({"etag": b"e"}, r"etag=b'e' must be a str or None"),
    ])
    def test_bad_size_or_etag_is_a_registry_error_naming_it(self, logger, options, message):
        logger.run()
        with pytest.raises(RegistryError, match=r"dataset 'r': " + message):
            logger.use_reference("r", "s3://b/k", **options)
        with pytest.raises(RegistryError, match=r"dataset 'r': " + message):
            logger.use_dataset("r", "s3://b/k", **options)
        assert Registry(logger.url).assets() == []

    def test_neither_etag_nor_size_warns_that_every_use_is_the_same_version(self, logger):
        np = pytest.importorskip("numpy")
        logger.run()
        with pytest.warns(RegistryWarning, match=r"neither etag nor size: every use records "
                                                 r"the same version") as caught:
            logger.use_reference("r", "s3://b/k")
        assert caught[0].filename == __file__
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert logger.use_reference("r", "s3://b/k", etag="e").version == 2
            assert logger.use_reference("r", "s3://b/k", size=np.int64(0)).size == 0

    def test_a_size_not_declared_shows_as_a_dash(self, db_url, tmp_path):
        config = make_config(db_url)
        with SQLLogger(config, handle_signals=False) as lg:
            lg.use_reference("undeclared", "s3://b/u", etag="e")
            lg.use_reference("declared", "s3://b/d", size=2048)
            lg.use_dataset("local", write(tmp_path / "empty.bin", b""))
        r = ato("data", "show", "undeclared", db=db_url)
        assert r.returncode == 0, r.stderr
        row = r.stdout.splitlines()[3].split()
        assert row[:5] == ["v1", "ref", "s3://b/u", "-", "0"], r.stdout
        r = ato("data", "show", "declared", db=db_url)
        assert "2.0 KiB" in r.stdout.splitlines()[3]
        r = ato("data", "list", db=db_url)
        sizes = {line.split()[1]: line.split()[4] for line in r.stdout.splitlines()[2:-1]}
        assert sizes == {"declared": "2.0", "local": "0", "undeclared": "-"}, r.stdout


class TestLocalPaths:
    def test_a_uri_given_as_a_model_path_says_log_model_takes_a_local_path(self, logger,
                                                                           tmp_path):
        logger.run()
        for path in ("s3://b/m.pt", "https://host/m.pt", "s3:/b/m.pt"):
            with pytest.raises(RegistryError, match=r"model 'm': .* looks like a URI.* "
                                                    r"log_model takes a local path"):
                logger.log_model("m", path)
        assert _store_files(tmp_path) == []

    def test_a_malformed_uri_given_as_a_dataset_points_at_references(self, logger):
        logger.run()
        with pytest.raises(RegistryError, match=r"dataset 'r': 's3:/bad' looks like a URI "
                                                r"\(a malformed one.*use_reference"):
            logger.use_dataset("r", "s3:/bad")
        reg = Registry(logger.url)
        with pytest.raises(RegistryError, match=r"'s3://b/k' looks like a URI, but "
                                                r"use_dataset takes a local path.*use_reference"):
            reg.use_dataset("proj", "r", "s3://b/k")  # the registry itself: no routing
        assert reg.assets() == []

    def test_a_file_looking_like_a_uri_is_given_with_dot_slash(self, logger, tmp_path,
                                                               monkeypatch):
        logger.run()
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "s3:" / "bad", b"local")
        assert logger.use_dataset("r", "./s3:/bad").source == str(tmp_path / "s3:" / "bad")

    def test_an_empty_path_is_an_error_not_the_current_directory(self, logger, tmp_path,
                                                                 monkeypatch):
        logger.run()
        monkeypatch.chdir(tmp_path)
        for call in (lambda: logger.use_dataset("x", ""),
                     lambda: logger.use_dataset("x", "", copy=True),
                     lambda: logger.log_model("x", "")):
            with pytest.raises(RegistryError, match=r"'x': the path is empty"):
                call()
        assert _store_files(tmp_path) == []
        assert Registry(logger.url).assets() == []

    def test_file_urls_are_absolute_local_paths(self, logger, tmp_path, monkeypatch):
        logger.run()
        monkeypatch.chdir(tmp_path)
        f = write(tmp_path / "dd" / "my data.bin", b"d")
        write(tmp_path / "dd" / "other.bin", b"o")
        v = logger.use_dataset("d", f"file://{tmp_path}/dd/my%20data.bin")
        assert v.source == str(f)
        assert logger.log_model("m", f"file://localhost{f}").source == str(f)
        for bad in ("file://dd", "file://host/x", "FILE://dd/x"):
            with pytest.raises(RegistryError, match=r"is not a local file URL"):
                logger.use_dataset("d", bad)
        assert Registry(logger.url).get("d").version == 1

    def test_etag_or_size_with_a_local_path_is_refused(self, logger, tmp_path):
        logger.run()
        f = write(tmp_path / "data.bin", b"d")
        with pytest.raises(RegistryError, match=r"dataset 'd': etag='e', size=3 describe "
                                                r"remote data"):
            logger.use_dataset("d", f, etag="e", size=3)

    def test_a_directory_holding_the_store_or_the_database_is_refused(self, logger, tmp_path,
                                                                      db_url, monkeypatch):
        logger.run()
        monkeypatch.chdir(tmp_path)
        write(tmp_path / "data.bin", b"d")
        for path in (".", tmp_path, f"file://{tmp_path}"):
            with pytest.raises(RegistryError, match=rf"dataset 'all': {tmp_path} holds the "
                                                    rf"artifact store \({tmp_path / 'store'}\)"):
                logger.use_dataset("all", path)
        with pytest.raises(RegistryError, match=r"model 'all': .* holds the artifact store"):
            logger.log_model("all", tmp_path)
        if db_url.startswith("sqlite"):
            elsewhere = tmp_path.parent / f"{tmp_path.name}-store"
            reg = Registry(db_url, store=str(elsewhere))
            with pytest.raises(RegistryError, match=rf"holds the database \({tmp_path}/"
                                                    rf"experiments\.db\)"):
                reg.use_dataset("proj", "all", tmp_path, copy=True)
            assert not os.path.exists(elsewhere)  # refused before the store was opened
        assert _store_files(tmp_path) == []
        assert Registry(logger.url).assets() == []


class TestFileNames:
    @pytest.fixture
    def undecodable(self, tmp_path):
        d = tmp_path / "d"
        write(d / "ok.bin", b"ok")
        name = os.fsdecode(b"bad\xff\xfename.bin")
        with open(os.path.join(d, name), "wb") as f:
            f.write(b"bad")
        return d

    def test_undecodable_names_are_a_registry_error_naming_them(self, logger, tmp_path,
                                                                undecodable):
        logger.run()
        shown = rf"{undecodable}/bad\\xff\\xfename\.bin"
        for call in (lambda: logger.use_dataset("d", undecodable),
                     lambda: logger.use_dataset("d", undecodable, copy=True),
                     lambda: logger.log_model("d", undecodable)):
            with pytest.raises(RegistryError, match=rf"'d': 1 file name not valid UTF-8: "
                                                    rf"'{shown}'"):
                call()
        with pytest.raises(RegistryError, match=rf"model 'm': 1 file name not valid UTF-8: "
                                                rf"'{shown}'"):
            logger.log_model("m", os.path.join(undecodable, os.fsdecode(b"bad\xff\xfename.bin")))
        with pytest.raises(RegistryError, match=r"not valid UTF-8"):
            logger.use_dataset("b", os.fsencode(undecodable) + b"/bad\xff\xfename.bin")
        assert _store_files(tmp_path) == []
        assert Registry(logger.url).assets() == []

    def test_control_characters_in_names_are_shown_escaped(self, db_url, tmp_path):
        d = tmp_path / "d"
        write(d / "plain.bin", b"p")
        write(d / "line\nbreak.bin", b"1")
        config = make_config(db_url)
        with SQLLogger(config, handle_signals=False) as lg:
            lg.use_dataset("d", d)
            write(d / "tab\there.bin", b"2")
            write(d / "line\nbreak.bin", b"changed")
            lg.use_dataset("d", d)
        r = ato("data", "show", "d", "1", db=db_url)
        assert r.returncode == 0, r.stderr
        assert "'line\\nbreak.bin'" in r.stdout and "line\nbreak" not in r.stdout
        r = ato("data", "diff", "d", "1", "2", db=db_url)
        assert r.returncode == 0, r.stderr
        assert r.stdout.splitlines()[1:] == ["+ 'tab\\there.bin'  (1 B)",
                                             "M 'line\\nbreak.bin'  (1 B -> 7 B)"]
        r = ato("data", "diff", "d", "1", "2", "--json", db=db_url)  # the real name
        assert "line\\nbreak.bin" in r.stdout


class _Writer:
    """A thread appending a byte to ``path`` as fast as it can, from its first write
    (``started``) until :meth:`stop`: it yields the GIL after each write but never sleeps,
    so on a loaded machine it still writes while the file is hashed (sleeping a
    millisecond between writes, it could miss a whole hash when woken late)."""

    def __init__(self, path):
        self.path, self.started, self._stop = path, threading.Event(), threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        with open(self.path, "ab", buffering=0) as f:
            while not self._stop.is_set():
                f.write(b"w")
                self.started.set()
                time.sleep(0)

    def __enter__(self):
        self.thread.start()
        self.started.wait(5)
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join(5)


class TestChangedWhileHashing:
    """Recording in place (no copy) reads the file where it is: one written meanwhile must
    not be recorded with a digest of bytes that never existed together."""

    @staticmethod
    def sparse(path, size=64 << 20):
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(path, "wb") as f:
            f.truncate(size)  # read as zeros at memory speed, takes no disk
        return path

    @pytest.mark.parametrize("as_dir", [False, True], ids=["file", "directory"])
    def test_a_file_written_during_hashing_is_refused_naming_it(self, logger, tmp_path,
                                                                as_dir):
        logger.run()
        big = self.sparse(tmp_path / "data" / "big.bin")
        write(tmp_path / "data" / "small.bin", b"s")
        with _Writer(big):
            with pytest.raises(RegistryError, match=rf"dataset 'd': {big}: changed while it "
                                                    rf"was being hashed"):
                logger.use_dataset("d", big.parent if as_dir else big)
        assert Registry(logger.url).assets() == []
        # written completely: recorded, with the size it has now
        v = logger.use_dataset("d", big.parent if as_dir else big)
        assert v.size == os.path.getsize(big) + (1 if as_dir else 0)


def _next_line() -> int:
    """The number of the line after the caller's."""
    return sys._getframe(1).f_lineno + 1


class TestWarningLocation:
    """A RegistryWarning names the user's line that called the registry — through the
    logger's wrappers, the registry itself, and wait=False (at ``result()``) — not ato's."""

    def test_warnings_point_at_the_callers_line(self, logger, tmp_path):
        logger.run()
        f = write(tmp_path / "m.pt", b"m")
        logger.log_model("m", f, score=0.9)
        logger.use_dataset("d", f, meta={"a": 1})
        reg = Registry(logger.url)
        seen = []
        with pytest.warns(RegistryWarning) as caught:
            seen.append(_next_line())
            logger.log_model("m", f, score=0.5)
            pending = logger.log_model("m", f, score=0.5, wait=False)
            seen.append(_next_line())
            pending.result()
            seen.append(_next_line())
            reg.log_model("proj", "m", f, score=0.5)
            seen.append(_next_line())
            logger.use_dataset("d", f, meta={"a": 2})
            seen.append(_next_line())
            reg.use_dataset("proj", "d", f, meta={"a": 2})
            seen.append(_next_line())
            logger.use_reference("r", "s3://b/k")
        assert [(w.filename, w.lineno) for w in caught] == [(__file__, n) for n in seen]


@pytest.mark.parametrize("kind", ["model", "dataset"])
def test_a_missing_path_names_the_model_or_dataset(logger, tmp_path, kind):
    from ato.artifacts import MissingPathError

    missing = tmp_path / "nope.pt"
    register = logger.log_model if kind == "model" else logger.use_dataset
    with pytest.raises(MissingPathError, match=f"{kind} 'net': {missing}: no such file"):
        register("net", missing)
