"""Ato's consumers of the tracker — ``ato runs`` and a search's trial resume — call the
tracker protocol and nothing else: here they run against a backend whose objects expose
*only* the protocol's members (any other attribute fails the test) and return plain
protocol records."""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from ato.plugins import hookimpl
from ato.tracking import REQUIRED_FINDER_MEMBERS, REQUIRED_LOGGER_MEMBERS, Run, open_logger

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE_SRC = ROOT / "examples/ato-example-plugin/src"
FINDER_MEMBERS = {"url", "capabilities", "stale_after", *REQUIRED_FINDER_MEMBERS,
                  "get_artifacts", "get_fingerprints", "get_metric_series",
                  "get_metric_points_since"}
LOGGER_MEMBERS = {"url", "project_name", "config", *REQUIRED_LOGGER_MEMBERS}


def _plain(value):
    """Backend results with every extra stripped: subclasses become protocol records."""
    if isinstance(value, Run):
        return Run(**{f.name: getattr(value, f.name) for f in dataclasses.fields(Run)})
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


class Strict:
    """Exposes only ``allowed`` members of ``inner`` and records every use."""

    def __init__(self, inner, allowed, used):
        self._inner, self._allowed, self._used = inner, allowed, used

    def __getattr__(self, name):
        if name not in self._allowed:
            raise AssertionError(f"a consumer used {name!r}, which is not in the protocol")
        self._used.add(name)
        value = getattr(self._inner, name)
        if not callable(value):
            return value
        return lambda *args, **kwargs: _plain(value(*args, **kwargs))

    def __enter__(self):
        self._used.add("__enter__")
        self._inner.__enter__()
        return self

    def __exit__(self, *exc):
        self._used.add("__exit__")
        return self._inner.__exit__(*exc)


USED: set = set()


class StrictTracker:
    """``strict://dir``: the jsonl example backend seen through the protocol only."""

    PLUGIN_NAME = "strict"
    schemes = ("strict",)

    @classmethod
    def logger(cls, config, **options):
        from ato_example_plugin.jsonl_tracker import JSONLinesLogger

        return Strict(JSONLinesLogger(config, **options), LOGGER_MEMBERS, USED)

    @classmethod
    def finder(cls, config, **options):
        from ato_example_plugin.jsonl_tracker import JSONLinesFinder

        return Strict(JSONLinesFinder(config, **options), FINDER_MEMBERS, USED)


class StrictPlugin:
    @hookimpl
    def ato_register_trackers(self):
        return StrictTracker


@pytest.fixture
def strict_url(tmp_path):
    from ato.plugins import manager

    sys.path.insert(0, str(EXAMPLE_SRC))
    pm = manager.plugin_manager()
    pm.register(StrictPlugin(), name="strict-test")
    manager._registries.clear()
    USED.clear()
    try:
        yield f"strict://{tmp_path}/runs"
    finally:
        pm.unregister(name="strict-test")
        manager._registries.clear()
        sys.path.remove(str(EXAMPLE_SRC))


def _log(url, project, config, metrics, tags=(), artifacts=()):
    logger = open_logger(url, project=project)
    run_id = logger.run(tags=list(tags), config=config)
    with logger:  # keeps the open run, ends it completed
        for key, value, step in metrics:
            logger.log_metric(key, value, step)
        for path in artifacts:
            logger.log_artifact(run_id, path, data_type="model", metadata={"epoch": 1})
    return run_id


def _ato(capsys, *argv) -> str:
    from ato.cli import main

    assert main(list(argv)) == 0
    return capsys.readouterr().out


class TestAtoRuns:
    def test_every_subcommand_works_through_the_protocol_only(self, strict_url, capsys):
        a = _log(strict_url, "p", {"lr": 0.001, "model": "resnet"},
                 [("loss", 0.9, 0), ("loss", 0.2, 1)], artifacts=["ckpt.pt"])
        b = _log(strict_url, "p", {"lr": 0.1, "model": "vit"},
                 [("loss", 0.5, 0), ("loss", 0.4, 1)])
        out = _ato(capsys, "runs", "list", "--db", strict_url, "--project", "p",
                   "--metrics", "loss", "--mode", "min", "--where", "lr < 0.01")
        assert "\n1 run\n" in out and "0.2" in out
        rows = json.loads(_ato(capsys, "runs", "list", "--db", strict_url, "--metrics", "loss",
                               "--json"))
        assert [r["id"] for r in rows] == [a, b]
        assert rows[1]["metrics"]["loss"] == {"latest": 0.4, "latest_step": 1, "min": 0.4,
                                              "max": 0.5, "steps": 2}
        shown = json.loads(_ato(capsys, "runs", "show", str(a), "--db", strict_url, "--json"))
        assert shown["config"] == {"lr": 0.001, "model": "resnet"}
        assert shown["artifacts"] == [{"path": "ckpt.pt", "data_type": "model",
                                       "metadata": {"epoch": 1}}]
        assert "ckpt.pt" in _ato(capsys, "runs", "show", str(a), "--db", strict_url)
        best = _ato(capsys, "runs", "best", "--db", strict_url, "--project", "p",
                    "--metric", "loss", "--mode", "min")
        assert f"best run for loss (min): {a}" in best
        diff = json.loads(_ato(capsys, "runs", "diff", str(a), str(b), "--db", strict_url,
                               "--json"))
        assert diff["config"] == {"lr": [0.001, 0.1], "model": ["resnet", "vit"]}
        assert diff["metrics"]["loss"]["min"] == [0.2, 0.4]
        assert {"find_runs", "find_run", "get_metric_summaries", "metric_keys",
                "find_best_run", "get_artifacts", "get_fingerprints"} <= USED

    def test_a_backend_without_optional_capabilities_degrades_in_one_line(self, strict_url,
                                                                         capsys, monkeypatch):
        from ato_example_plugin.jsonl_tracker import JSONLinesFinder

        monkeypatch.setattr(JSONLinesFinder, "capabilities", frozenset())
        run_id = _log(strict_url, "p", {"lr": 0.1}, [("loss", 1.0, 0)], artifacts=["x.pt"])
        out = _ato(capsys, "runs", "show", str(run_id), "--db", strict_url)
        assert "(artifacts and fingerprints: not kept by the 'strict' tracker backend)" in out
        from ato.cli import main

        assert main(["runs", "list", "--db", strict_url, "--where", "lr < 1"]) == 2
        err = capsys.readouterr().err
        assert "the 'strict' tracker backend" in err and "'where' capability" in err
        assert "Traceback" not in err

    def test_unknown_run_is_one_clear_error(self, strict_url, capsys):
        from ato.cli import main

        _log(strict_url, "p", {"lr": 0.1}, [])
        assert main(["runs", "show", "99", "--db", strict_url]) == 2
        assert f"no run with id 99 in {strict_url}" in capsys.readouterr().err


class TestStudyResume:
    def test_a_search_records_and_resumes_through_the_protocol(self, strict_url):
        """HyperBand records every trial on the protocol-only backend, and the same study
        id resumes from it without calling the objective again."""
        from ato.adict import ADict
        from ato.hyperopt.hyperband import HyperBand
        from ato.scope import Scope

        space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 7), num_samples=8))
        calls = []

        def objective(config):
            calls.append(config.x)
            return -(config.x - 3) ** 2

        first = HyperBand(Scope(), space, 0.5, 1, tracker=open_logger(strict_url,
                                                                      project="search"),
                          study_id="s1", progress=False).main(objective)()
        assert first.config.x == 3 and calls
        USED.clear()
        calls.clear()
        again = HyperBand(Scope(enable_override=True), space, 0.5, 1,
                          tracker=open_logger(strict_url, project="search"), study_id="s1",
                          progress=False).main(objective)()
        assert again.config.x == 3 and calls == []
        assert {"find_runs", "get_metric_history"} <= USED


def _python(*parts: str, cwd) -> subprocess.CompletedProcess:
    code = "\n".join(textwrap.dedent(part) for part in parts)
    return subprocess.run([sys.executable, "-c", code], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


REGISTER = f"""
    import sys
    sys.path.insert(0, {str(EXAMPLE_SRC)!r})
    import ato_example_plugin.plugin as plugin
    from ato.plugins import manager
    manager.plugin_manager().register(plugin, name="example-test")
    manager._registries.clear()
"""


class TestPluginBackendWithoutSQL:
    def test_ato_runs_lists_jsonl_runs(self, tmp_path):
        """``ato runs`` over the example JSON Lines backend, in a process of its own."""
        proc = _python(REGISTER, """
            from ato.tracking import open_logger
            from ato.cli import main
            with open_logger("jsonl://runs", project="demo") as log:
                log.log_metric("acc", 0.75, 3)
            sys.exit(main(["runs", "list", "--db", "jsonl://runs", "--metrics", "acc"]))
        """, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert "demo" in proc.stdout and "0.75" in proc.stdout and "1 run" in proc.stdout

    def test_no_sqlalchemy_and_no_ato_sql_needed(self, tmp_path):
        """With SQLAlchemy and ato-sql made unimportable, a plugin backend still logs, is
        queried through ato.tracking, and resumes a study."""
        proc = _python("""
            import importlib.abc, sys

            class Block(importlib.abc.MetaPathFinder):
                def find_spec(self, name, path=None, target=None):
                    if name.split(".")[0] == "sqlalchemy" or name.startswith("ato.db_routers"):
                        raise ModuleNotFoundError(f"No module named {name!r}")
                    return None

            sys.meta_path.insert(0, Block())
        """, REGISTER, """
            from ato.adict import ADict
            from ato.hyperopt.hyperband import HyperBand
            from ato.scope import Scope
            from ato.tracking import open_finder, open_logger

            with open_logger("jsonl://runs", project="p") as log:
                log.log_metrics({"loss": 0.5}, step=1)
            finder = open_finder("jsonl://runs")
            run = finder.find_runs("p")[0]
            assert finder.get_metric_summaries([run.id])[run.id]["loss"].last == 0.5
            space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 3), num_samples=4))
            calls = []

            def objective(config):
                calls.append(config.x)
                return float(config.x)

            counts = []
            for scope in (Scope(), Scope(enable_override=True)):
                HyperBand(scope, space, 0.5, 1, tracker=open_logger("jsonl://runs",
                                                                   project="s"),
                          study_id="study", progress=False).main(objective)()
                counts.append(len(calls))
            assert counts[0] > 0 and counts[1] == counts[0]  # the second reused every trial
            assert finder.find_runs("s", tags=["study:study"])
            assert not any(m.startswith(("sqlalchemy", "ato.db_routers")) for m in sys.modules)
            print("ok")
        """, cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip().endswith("ok")


class TestArguments:
    def test_status_list_and_bad_values_are_argparse_errors(self, strict_url, capsys):
        from ato.cli import main

        ids = {s: _log(strict_url, "p", {"i": s}, []) for s in ("completed",)}
        logger = open_logger(strict_url, project="p")
        failed = logger.run(config={"i": "failed"})
        logger.finish("failed")
        rows = json.loads(_ato(capsys, "runs", "list", "--db", strict_url, "--status",
                               "failed,completed", "--json"))
        assert sorted(r["id"] for r in rows) == sorted([ids["completed"], failed])
        for bad, message in ((["--status", "done"], "'done' is not a status"),
                             (["--status", "failed,nope"], "'nope' is not a status"),
                             (["--limit", "-1"], "'-1' is not a whole number"),
                             (["--last", "x"], "'x' is not a whole number")):
            with pytest.raises(SystemExit) as exit_info:
                main(["runs", "list", "--db", strict_url, *bad])
            assert exit_info.value.code == 2
            err = capsys.readouterr().err
            assert message in err and "Traceback" not in err
