"""``ato search status``: run as a user would (a real subprocess), on both databases."""

from __future__ import annotations

import json
import math
import subprocess
import sys

from ato.tracking import TrialSpec, open_coordinator


def ato(*args):
    proc = subprocess.run([sys.executable, "-m", "ato.cli", *args], capture_output=True,
                          text=True, timeout=120)
    return proc.returncode, proc.stdout, proc.stderr


def make_study(url, study="asha-7", mode="min"):
    """Seven trials of one bracket over three rungs: 3 done (one +inf), 1 failed,
    1 running on node-1, 2 queued."""
    c = open_coordinator(url)
    c.create_study(study, {"mode": mode, "algorithm": "asha", "metric": "loss"})
    c.join(study, "w1", "node-1", 4242)
    c.enqueue(study, [TrialSpec(f"t{i}", {"bracket": 0, "rung": i // 3, "lr": 10.0 ** -i})
                      for i in range(7)])
    for metric in (0.5, math.inf, 0.2):
        assert c.report(c.claim(study, "w1"), "completed", metric=metric)
    assert c.report(c.claim(study, "w1"), "failed", error="ValueError: bad lr")
    c.claim(study, "w1")
    return c


def test_status_table(db_url):
    make_study(db_url)
    code, out, err = ato("search", "status", "asha-7", "--db", db_url)
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("study asha-7") and "algorithm asha" in lines[0]
    assert lines[1] == "trials: 3 done, 1 running, 2 queued, 1 failed (7 in all)"
    # the same names as --json: `key` (the evaluation, the run's trial: tag), `__trial__`
    assert lines[2] == "best so far (min): 0.2  key t2  worker w1"
    header = lines[lines.index("running:") + 1].split()
    assert header[0] == "key" and lines[lines.index("failed:") + 1].split()[0] == "key"
    assert header[-5:] == ["attempt", "budget", "rung", "__trial__", "values"]
    running = lines[lines.index("running:") + 2].split()
    # key worker host since(date time) attempt budget rung __trial__ values
    assert running[:3] == ["t4", "w1", "node-1"] and running[5:] == ["1", "-", "1", "-", "-"]
    assert "ValueError: bad lr" in out
    rungs = lines[lines.index("rungs:") + 1:lines.index("workers:")]
    assert [r.split() for r in rungs[1:]] == [["0", "0", "3", "0", "0", "0", "3"],
                                              ["0", "1", "0", "1", "1", "1", "3"],
                                              ["0", "2", "0", "0", "1", "0", "1"]]
    assert "node-1" in lines[-1] and "yes" in lines[-1]


def test_the_documented_status_is_what_it_prints(tmp_path, monkeypatch):
    """docs/tracking.md's `ato search status` block is the command's output for the same
    study, line for line (times masked)."""
    import re
    from pathlib import Path

    page = (Path(__file__).resolve().parents[2] / "docs" / "tracking.md").read_text()
    block = page.split("test_the_documented_status_is_what_it_prints -->\n```console\n", 1)[1]
    command, *shown = block.split("```", 1)[0].splitlines()
    assert command == "$ ato search status asha-7 --db sqlite:///experiments.db"
    monkeypatch.chdir(tmp_path)
    make_study("sqlite:///experiments.db")
    code, out, err = ato(*command.split()[2:])
    assert code == 0, err

    def masked(lines):
        return [re.sub(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", "<time>", line).rstrip()
                for line in lines]

    assert masked(out.splitlines()) == masked(shown)


def test_status_json_and_mode_max(db_url):
    """--json is strict JSON (+inf as a marker); with mode max the +inf trial is best."""
    make_study(db_url, "maxed", mode="max")
    code, out, err = ato("search", "status", "maxed", "--db", db_url, "--json")
    assert code == 0, err
    data = json.loads(out)  # strict: the parser would refuse an Infinity token
    assert data["counts"] == {"completed": 3, "running": 1, "queued": 2, "failed": 1,
                              "total": 7}
    assert data["best"]["key"] == "t1"
    assert data["best"]["metric"] == {"$numberDouble": "Infinity"}
    assert data["mode"] == "max" and data["meta"]["metric"] == "loss"
    assert [(r["key"], r["worker"], r["host"], r["attempt"]) for r in data["running"]] == [
        ("t4", "w1", "node-1", 1)]
    assert data["queued"] == 2 and data["failed"][0]["error"] == "ValueError: bad lr"
    assert {(r["bracket"], r["rung"], r["total"]) for r in data["rungs"]} == {
        (0, 0, 3), (0, 1, 3), (0, 2, 1)}
    assert data["workers"][0]["pid"] == 4242 and data["workers"][0]["alive"] is True


def test_missing_study_is_one_line_exit_2(db_url):
    make_study(db_url)
    code, out, err = ato("search", "status", "no-such-study", "--db", db_url)
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "no study 'no-such-study'" in err


def test_missing_database_is_one_line_exit_2_and_not_created(tmp_path):
    path = tmp_path / "absent.db"
    code, out, err = ato("search", "status", "s", "--db", f"sqlite:///{path}")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "no tracker database" in err
    assert not path.exists()


def test_unreachable_postgresql_is_one_line_exit_2():
    code, out, err = ato("search", "status", "s", "--db",
                         "postgresql://nobody:secret@127.0.0.1:1/none")
    assert code == 2 and out == ""
    assert err.strip().count("\n") == 0 and "cannot open the tracker database" in err
    assert "secret" not in err


def test_database_without_studies_says_so(tmp_path):
    """A tracker database that has runs but never held a study: the study is missing,
    and the database is not migrated by looking."""
    from ato.db_routers.sql.manager import SQLLogger
    from tests.sql.conftest import make_config

    url = f"sqlite:///{tmp_path / 'runs.db'}"
    logger = SQLLogger(make_config(url))
    logger.run()
    logger.finish()
    code, _, err = ato("search", "status", "s", "--db", url)
    assert code == 2 and "no study 's'" in err


def test_bad_stale_after_names_the_option(tmp_path):
    code, _, err = ato("search", "status", "s", "--db", f"sqlite:///{tmp_path}/x.db",
                       "--stale-after", "-3")
    assert code == 2 and "--stale-after" in err and "'-3'" in err
