"""``ato://project/name@ref`` as a config value: a Scope's build resolves it to the
verified local path (SQLite and PostgreSQL), through the tracker protocol's
``finder.resolve``; errors name the key and the URI; ``manual`` shows it unresolved."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from ato.adict import ADict
from ato.db_routers.sql.manager import SQLLogger
from ato.scope import Scope
from ato.tracking import RegistryError, open_finder
from ato.tracking.uris import ConfigURIError, resolve_config_uris, resolve_uri
from tests.sql.conftest import make_config


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.setenv("ATO_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("ATO_STORE", str(tmp_path / "store"))
    monkeypatch.delenv("ATO_DB", raising=False)


@pytest.fixture
def models(db_url, tmp_path):
    """Two versions of model ``net`` (v1 ``champion``) and dataset ``rows`` in project
    ``proj``; returns the URL."""
    logger = SQLLogger(make_config(db_url), handle_signals=False)
    logger.run()
    for i, alias in ((1, ["champion"]), (2, [])):
        path = tmp_path / f"w{i}.pt"
        path.write_bytes(f"weights {i}".encode())
        logger.log_model("net", path, aliases=alias)
    data = tmp_path / "rows.csv"
    data.write_text("a,b\n")
    logger.use_dataset("rows", data, copy=True)
    logger.finish()
    return db_url


def _scope(**values):
    scope = Scope(config=dict(values))
    return scope


def _read(path):
    with open(path, "rb") as f:
        return f.read()


class TestConfigValues:
    def test_views_and_cli_values_resolve_to_verified_paths(self, models):
        """A view's value and a CLI assignment both become the blob's path."""
        scope = Scope(config={"experiment": {"sql": {"db_path": models}}})

        @scope.observe(default=True)
        def defaults(cfg):
            cfg.model = ADict(init="ato://proj/net@champion", name="resnet")
            cfg.data = "ato://proj/rows"

        config = scope.apply([])
        assert _read(config.model.init) == b"weights 1"
        assert _read(config.data) == b"a,b\n" and config.model.name == "resnet"
        config = scope.apply(["model.init=%ato://proj/net@v2%"])
        assert _read(config.model.init) == b"weights 2"
        assert "ato:// URI ato://proj/net@v2" in scope.explain("model.init")

    def test_lists_and_the_ato_db_fallback(self, models, monkeypatch):
        """Without a tracker in the config, ``$ATO_DB`` is used; list items resolve too."""
        monkeypatch.setenv("ATO_DB", models)
        config = _scope(inits=["ato://proj/net@1", "plain", "ato://proj/net"]).apply([])
        assert [_read(config.inits[0]), config.inits[1], _read(config.inits[2])] == [
            b"weights 1", "plain", b"weights 2"]

    def test_config_tracker_wins_over_ato_db(self, models, monkeypatch, tmp_path):
        monkeypatch.setenv("ATO_DB", f"sqlite:///{tmp_path / 'elsewhere.db'}")
        config = _scope(experiment={"sql": {"db_path": models}},
                        init="ato://proj/net@champion").apply([])
        assert _read(config.init) == b"weights 1"

    @pytest.mark.parametrize("value, message", [
        ("ato://proj/net@prod", "has no alias 'prod'"),
        ("ato://proj/nothing", "no model or dataset named 'nothing'"),
        ("ato://proj/net@v9", "has no version 9"),
        ("ato://net", "not an ato:// URI"),
    ])
    def test_errors_name_the_key_and_the_uri(self, models, value, message):
        scope = _scope(experiment={"sql": {"db_path": models}}, train={"init": value})
        with pytest.raises(ConfigURIError) as info:
            scope.apply([])
        text = str(info.value)
        assert text.startswith(f"config key 'train.init': {value}: ") and message in text

    def test_no_tracker_is_one_error(self):
        with pytest.raises(ConfigURIError, match=r"'init': ato://p/m@x: no tracker .*ATO_DB"):
            _scope(init="ato://p/m@x").apply([])

    def test_a_modified_blob_is_refused(self, models):
        path = resolve_uri("ato://proj/net@champion", tracker=models)
        os.chmod(path, 0o644)
        with open(path, "ab") as f:
            f.write(b"tampered")
        with pytest.raises(ConfigURIError, match=r"'w': ato://proj/net@champion: .*modified"):
            _scope(experiment={"sql": {"db_path": models}}, w="ato://proj/net@champion"
                   ).apply([])

    def test_resolve_config_uris_reports_what_it_did(self, models):
        config = ADict(experiment={"sql": {"db_path": models}}, a={"b": "ato://proj/rows@v1"},
                       c="ato-not-a-uri://x")
        done = resolve_config_uris(config)
        assert list(done) == ["a.b"] and done["a.b"][0] == "ato://proj/rows@v1"
        assert config.a.b == done["a.b"][1] and config.c == "ato-not-a-uri://x"

    def test_the_finder_resolves(self, models, tmp_path):
        """``finder.resolve`` is the protocol member the Scope uses (on the finder's
        read-only engine); an empty tracker names what is missing."""
        finder = open_finder(models)
        assert _read(finder.resolve("ato://proj/net@champion")) == b"weights 1"
        assert finder.resolve("ato://proj/net@1", verify=False) == finder.resolve(
            "ato://proj/net@champion")
        empty = f"sqlite:///{tmp_path / 'empty.db'}"
        SQLLogger(make_config(empty), handle_signals=False).finish()
        with pytest.raises(RegistryError, match="no model or dataset named 'net'"):
            open_finder(empty).resolve("ato://proj/net@champion")


SCRIPT = """
import sys
from ato.scope import Scope

scope = Scope(config={"experiment": {"sql": {"db_path": sys.argv.pop(1)}}})

@scope.observe(default=True)
def defaults(cfg):
    cfg.init = "ato://proj/net@champion"

@scope
def main(cfg):
    print(open(cfg.init, "rb").read().decode())
    print("tracking imported:", "ato.tracking" in sys.modules)

main()
"""


class TestProcess:
    def _run(self, tmp_path, *args):
        script = tmp_path / "train.py"
        script.write_text(textwrap.dedent(SCRIPT))
        return subprocess.run([sys.executable, str(script), *args], capture_output=True,
                              text=True, timeout=120, cwd=tmp_path, env=dict(os.environ))

    def test_a_script_gets_the_path_and_manual_shows_the_uri(self, models, tmp_path):
        out = self._run(tmp_path, models)
        assert out.returncode == 0, out.stderr
        assert out.stdout.splitlines()[0] == "weights 1"
        manual = self._run(tmp_path, "sqlite:////nonexistent/dir/x.db", "manual", "--why", "init")
        assert manual.returncode == 0, manual.stderr
        assert "ato://proj/net@champion" in manual.stdout  # unresolved, no database needed

    def test_a_bad_alias_is_one_line_and_exit_status_2(self, models, tmp_path):
        out = self._run(tmp_path, models, "init=%ato://proj/net@gone%")
        assert out.returncode == 2 and out.stdout == ""
        assert out.stderr.count("\n") == 1, out.stderr
        assert "config key 'init': ato://proj/net@gone:" in out.stderr
        assert "has no alias 'gone'" in out.stderr

    def test_a_config_without_uris_does_not_import_the_tracker(self, tmp_path):
        script = tmp_path / "plain.py"
        script.write_text("import sys\nfrom ato.scope import Scope\n"
                          "cfg = Scope(config={'lr': 0.1, 'p': ['ato:', 'x']}).apply([])\n"
                          "print(cfg.lr, 'ato.tracking' in sys.modules)\n")
        out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True,
                             timeout=60)
        assert out.stdout.split() == ["0.1", "False"], out.stderr


def test_a_pre_registry_database_is_read_without_writing(tmp_path):
    """The original Ato's database (no registry tables): the finder answers the registry
    queries as empty, names what is missing, and creates nothing."""
    import sqlite3

    from ato.tracking import Lineage
    from tests.sql.test_oracle_database import ORACLE_DDL

    path = tmp_path / "old.db"
    conn = sqlite3.connect(path)
    conn.executescript(ORACLE_DDL)
    conn.close()
    finder = open_finder(f"sqlite:///{path}")
    assert finder.supports("registry")
    assert finder.registry_assets() == [] and finder.run_lineage(1) == Lineage(1)
    with pytest.raises(RegistryError, match="no registry yet"):
        finder.registry_versions("net")
    with pytest.raises(RegistryError, match="holds no models or datasets"):
        finder.resolve("ato://p/net@v1")
    tables = {r[0] for r in sqlite3.connect(path).execute("SELECT name FROM sqlite_master")}
    assert not any(t.startswith("registry_") for t in tables) and "ato_schema" not in tables


class TestNamingTheKind:
    """A model and a dataset may share a name in one project: ``?kind=`` names which."""

    @pytest.fixture
    def twins(self, db_url, tmp_path):
        with SQLLogger(make_config(db_url), handle_signals=False) as logger:
            model = tmp_path / "twin.pt"
            model.write_bytes(b"the model")
            logger.log_model("twin", model, aliases=["gold"])
            data = tmp_path / "twin.csv"
            data.write_text("the,data\n")
            logger.use_dataset("twin", data, copy=True)
        with SQLLogger(make_config(db_url, project="other"), handle_signals=False) as logger:
            logger.log_model("net", model)
            logger.log_model("twin", model)
        return db_url

    def test_kind_picks_the_asset_and_old_uris_still_work(self, twins):
        assert _read(resolve_uri("ato://proj/twin@gold?kind=model", twins)) == b"the model"
        assert _read(resolve_uri("ato://proj/twin?kind=dataset", twins)) == b"the,data\n"
        assert _read(resolve_uri("ato://proj/twin@1?kind=dataset", twins)) == b"the,data\n"
        assert _read(resolve_uri("ato://other/net@latest", twins)) == b"the model"
        config = _scope(experiment={"sql": {"db_path": twins}},
                        m="ato://proj/twin@v1?kind=model").apply([])
        assert _read(config.m) == b"the model"

    def test_an_ambiguous_uri_says_exactly_how_to_name_the_kind(self, twins):
        with pytest.raises(ConfigURIError) as info:
            resolve_uri("ato://proj/twin@1", twins)
        assert ("name the kind, ato://proj/twin@1?kind=dataset or ato://proj/twin@1?kind=model"
                in str(info.value))

    @pytest.mark.parametrize("uri, message", [
        ("ato://proj/twin?kind=modle", "kind='modle' must be 'model' or 'dataset'"),
        ("ato://proj/twin?kind=dataset&x=1", "not an ato:// URI"),
        ("ato://proj/twin@gold?kind=dataset", "has no alias 'gold'"),
    ])
    def test_a_bad_kind_is_named(self, twins, uri, message):
        with pytest.raises(ConfigURIError, match=message.replace("(", r"\(")):
            resolve_uri(uri, twins)

    def test_the_cli_names_the_project_option_when_the_kind_is_given(self, twins):
        r = subprocess.run([sys.executable, "-m", "ato.cli", "models", "show", "twin", "--db",
                            twins], capture_output=True, text=True, timeout=120,
                           env=dict(os.environ))
        assert r.returncode == 2
        assert "name the project: --project other or --project proj" in r.stderr
        assert "kind" not in r.stderr.split("ambiguous", 1)[1].split(":", 1)[1]

    def test_runs_using_and_get_follow_one_rule(self, twins):
        """An operation that implies a kind looks among that kind; ``get`` without one
        refuses and names the choices."""
        from ato.db_routers.sql.registry import Registry
        from ato.db_routers.sql.registry.queries import AmbiguousNameError

        reg = Registry(twins)
        assert [r["run_id"] for r in reg.runs_using("twin", project="proj")] == [1]
        assert [r.run_id for r in open_finder(twins).runs_using("twin", project="proj")] == [1]
        with pytest.raises(AmbiguousNameError) as info:
            reg.get("twin", project="proj")
        assert "name the kind: kind='dataset' or kind='model'" in str(info.value)
        with pytest.raises(AmbiguousNameError, match="name the project: project='other' or "
                                                     "project='proj'; name the kind"):
            reg.get("twin")


class TestNesting:
    """URIs at any depth of mappings, lists and tuples are resolved; containers keep their
    types; error text names the key once and the URI once."""

    def test_mappings_inside_lists_inside_mappings(self, models):
        config = _scope(experiment={"sql": {"db_path": models}},
                        v=[{"x": "ato://proj/net@1", "k": 3}, ["ato://proj/rows", "plain"]],
                        deep={"a": [{"b": [{"c": "ato://proj/net@champion"}]}]}).apply([])
        assert _read(config.v[0]["x"]) == b"weights 1" and config.v[0]["k"] == 3
        assert _read(config.v[1][0]) == b"a,b\n" and config.v[1][1] == "plain"
        assert _read(config.deep.a[0]["b"][0]["c"]) == b"weights 1"

    def test_tuples_and_named_tuples_keep_their_type(self, models):
        from collections import namedtuple

        Pair = namedtuple("Pair", "weights name")
        config = {"experiment": {"sql": {"db_path": models}},
                  "t": ("ato://proj/net@1", "x"), "p": Pair("ato://proj/net@2", "n"),
                  "m": [{"y": ("ato://proj/rows",)}]}
        done = resolve_config_uris(config)
        assert type(config["t"]) is tuple and _read(config["t"][0]) == b"weights 1"
        assert type(config["p"]) is Pair and _read(config["p"].weights) == b"weights 2"
        assert type(config["m"][0]["y"]) is tuple and _read(config["m"][0]["y"][0]) == b"a,b\n"
        assert sorted(done) == ["m[0].y[0]", "p[0]", "t[0]"]

    def test_an_error_deep_inside_names_the_path(self, models):
        scope = _scope(experiment={"sql": {"db_path": models}},
                       v=[{"x": "ato://proj/net@prod"}])
        with pytest.raises(ConfigURIError) as info:
            scope.apply([])
        text = str(info.value)
        assert text.startswith("config key 'v[0].x': ato://proj/net@prod: ")
        assert text.count("ato://proj/net@prod") == 1

    def test_the_uri_is_printed_once(self, models, tmp_path):
        """A backend error that names the URI itself is not prefixed twice; resolve_uri()
        shows no made-up key."""
        with SQLLogger(make_config(models), handle_signals=False) as lg:
            data = tmp_path / "inplace.csv"
            data.write_text("1\n")
            lg.use_dataset("inplace", data)
        data.write_text("2\n")
        with pytest.raises(ConfigURIError) as info:
            _scope(experiment={"sql": {"db_path": models}}, init="ato://proj/inplace@1"
                   ).apply([])
        text = str(info.value)
        assert text.startswith("config key 'init': ato://proj/inplace@1: ")
        assert text.count("ato://proj/inplace@1") == 1 and "no longer holds" in text
        with pytest.raises(ConfigURIError) as info:
            resolve_uri("ato://proj/inplace@1", models)
        assert str(info.value).startswith("ato://proj/inplace@1: ") and "<argument>" not in \
            str(info.value) and str(info.value).count("ato://proj/inplace@1") == 1
