"""``ato search status`` and ``ato search list`` on a study that real searches ran: the
study's own ``stale_after`` decides ``alive``, a worker that finished shows ``left``, a
mistyped study id gets the nearest known one, and HyperBand's result counts its trials."""

import json
import subprocess
import sys

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.scope import Scope
from tests.hyperopt.test_workers_batch import score, tracker

SPACE = ADict(x=ADict(param_type="INTEGER", param_range=(0, 9), num_samples=10),
              c=ADict(param_type="CATEGORY", categories=["a", "b"]))
pytestmark = pytest.mark.processes


def ato(*args):
    return subprocess.run([sys.executable, "-m", "ato.cli", *args], capture_output=True,
                          text=True)


@pytest.fixture
def db(tmp_path):
    logger = tracker(tmp_path)
    for study, stale in (("lr-sweep-7", 7.5), ("width-sweep", 30.0)):
        get_algorithm("random")(Scope(enable_override=True), SPACE, tracker=logger,
                                study_id=study, n_trials=3, seed=1, stale_after=stale,
                                heartbeat_interval=0.5, progress=False).main(score)()
    return f"sqlite:///{tmp_path / 't.db'}"


def test_status_uses_the_studys_stale_after_and_shows_left_workers(db):
    done = ato("search", "status", "lr-sweep-7", "--db", db, "--json")
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["stale_after"] == 7.5
    (worker,) = status["workers"]
    assert worker["left"] is True and worker["alive"] is False
    table = ato("search", "status", "lr-sweep-7", "--db", db).stdout
    assert [line.split()[3] for line in table.splitlines()
            if line.startswith("  ") and ":" in line and "left" in line] == ["left"]
    given = json.loads(ato("search", "status", "lr-sweep-7", "--db", db, "--json",
                           "--stale-after", "99").stdout)
    assert given["stale_after"] == 99


@pytest.mark.parametrize("typo, hint", [("lr-sweep7", "did you mean 'lr-sweep-7'?"),
                                        ("zzz", "its studies: lr-sweep-7, width-sweep")])
def test_a_mistyped_study_names_the_known_ones(db, typo, hint):
    done = ato("search", "status", typo, "--db", db)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0 and hint in done.stderr, done.stderr


def test_search_list(db, tmp_path):
    done = ato("search", "list", "--db", db)
    assert done.returncode == 0, done.stderr
    rows = [line.split() for line in done.stdout.splitlines()[1:]]
    assert [(r[0], r[1], r[2]) for r in rows] == [("lr-sweep-7", "random", "3"),
                                                  ("width-sweep", "random", "3")]
    listed = json.loads(ato("search", "list", "--db", db, "--json").stdout)
    assert [s["study"] for s in listed] == ["lr-sweep-7", "width-sweep"]
    empty = ato("search", "list", "--db", f"sqlite:///{tmp_path / 'empty.db'}")
    assert empty.returncode == 2 and "no tracker database" in empty.stderr


def test_hyperband_result_counts_its_trials():
    from ato.hyperopt.hyperband import HyperBand

    result = HyperBand(Scope(enable_override=True), SPACE, 0.5, 2,
                       progress=False).main(score)()
    # every evaluation counts (each generation's configs and the winner's final one), not
    # the number of generations
    assert result.trials == sum(len(generation) for generation in result.logs)
    assert result.trials > len(result.logs) > 1


def test_the_best_is_the_best_at_the_largest_budget(tmp_path):
    """ASHA's cheap rung-0 trials often score best; status shows the best at the largest
    budget reached, with its budget and rung."""
    logger = tracker(tmp_path)

    def cheap_looks_good(config):
        return -(config.x - 4) ** 2 + 10.0 / float(config.__budget__)

    search = get_algorithm("asha")(Scope(enable_override=True), SPACE, tracker=logger,
                                   study_id="asha-best", max_trials=9, max_budget=9, eta=3,
                                   seed=2, progress=False)
    result = search.main(cheap_looks_good)()
    url = f"sqlite:///{tmp_path / 't.db'}"
    status = json.loads(ato("search", "status", "asha-best", "--db", url, "--json").stdout)
    best, top = status["best"], max(r["rung"] for r in status["rungs"])
    assert best["rung"] == top > 0 and best["metric"] == pytest.approx(result.metric)
    text = ato("search", "status", "asha-best", "--db", url).stdout
    assert "at the largest budget reached" in text
    assert f"budget {best['budget']}  rung {top}" in text


def test_a_search_without_a_study_id_is_found_through_its_runs(tmp_path):
    """A tracked search with no study_id shares no study: status and list say where its
    trials are, and that command finds them."""
    logger = tracker(tmp_path)
    search = get_algorithm("random")(Scope(enable_override=True), SPACE, tracker=logger,
                                     n_trials=2, seed=1, progress=False)
    search.main(score)()
    url = f"sqlite:///{tmp_path / 't.db'}"
    status = ato("search", "status", search.study_id, "--db", url)
    assert status.returncode == 2
    # the suggested command carries the --db given, so it runs as printed
    suggested = f"ato runs list --db {url} --tags study:{search.study_id}"
    assert suggested in status.stderr, status.stderr
    assert "ato runs list --db" in ato("search", "list", "--db", url).stdout
    runs = ato(*suggested.split()[1:])
    assert runs.returncode == 0 and runs.stdout.count("completed") == 2, runs.stdout


@pytest.mark.parametrize("args, message", [
    (("status", ""), "status: the study id is empty ('')"),
    (("status", "   "), "status: the study id is empty ('   ')"),
    (("requeue", "", "--failed"), "requeue: the study id is empty ('')"),
    (("status", "lr-sweep-7", "--db", ""), "--db is empty: give the tracker URL"),
    (("list", "--db", "  "), "--db is empty: give the tracker URL"),
    (("requeue", "lr-sweep-7", "--failed", "--db", ""), "--db is empty"),
    (("status", "lr-sweep-7", "--db", "sqlite://"), "--db sqlite:// is an in-memory SQLite"),
    (("list", "--db", "sqlite:///:memory:"), "is an in-memory SQLite database"),
])
def test_an_argument_that_names_nothing_is_one_line(args, message, tmp_path):
    """An empty or blank study id, an empty --db, an in-memory --db: one line naming the
    argument, exit status 2, never a traceback and never a file created."""
    done = subprocess.run([sys.executable, "-m", "ato.cli", "search", *args],
                          capture_output=True, text=True, cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert message in done.stderr and done.stderr.strip().count("\n") == 0, done.stderr
    assert "Traceback" not in done.stderr and "'sqlite:///'" not in done.stderr
    assert list(tmp_path.iterdir()) == []


def test_an_empty_study_id_suggests_the_listing_on_the_same_db(db):
    done = ato("search", "status", "", "--db", db)
    assert done.returncode == 2 and f"ato search list --db {db} shows" in done.stderr


def test_a_mistyped_study_suggests_the_listing_on_the_same_db(db):
    done = ato("search", "status", "lr-sweep7", "--db", db)
    assert f"did you mean 'lr-sweep-7'? (ato search list --db {db} shows all 2)" in done.stderr


def test_requeue_on_a_missing_database_creates_none(tmp_path):
    """A mistyped --db used to be created (empty) before the study was looked up."""
    missing = tmp_path / "typo.db"
    done = ato("search", "requeue", "lr-sweep-7", "--failed", "--db", f"sqlite:///{missing}")
    assert done.returncode == 2 and "no tracker database" in done.stderr, done.stderr
    assert not missing.exists()


@pytest.mark.parametrize("algorithm, options", [
    ("multi_hyperband", {"max_budget": 9, "eta": 3}),  # the payload carries __trial__
    ("asha", {"max_budget": 9, "eta": 3, "max_trials": 4}),  # built from config_hash
])
def test_a_running_trial_shows_what_its_objective_sees(tmp_path, algorithm, options):
    """While a trial runs, status shows its worker, budget, rung, searched values, the
    ``__trial__`` its objective got and the checkpoint directory that belongs to it — the
    study's trial key names one evaluation, ``__trial__`` the configuration on every rung."""
    from pathlib import Path

    logger, url = tracker(tmp_path), f"sqlite:///{tmp_path / 't.db'}"
    seen = []

    def objective(config):
        if not seen:  # ask while this trial is the one running
            seen.append((dict(config), ato("search", "status", "live", "--db", url, "--json"),
                         ato("search", "status", "live", "--db", url)))
        return score(config)

    get_algorithm(algorithm)(Scope(enable_override=True), SPACE, tracker=logger,
                             study_id="live", seed=3, progress=False, **options).main(objective)()
    config, as_json, as_text = seen[0]
    assert as_json.returncode == 0 and as_text.returncode == 0, as_json.stderr + as_text.stderr
    (running,) = json.loads(as_json.stdout)["running"]
    trial = config["__trial__"]
    assert running["trial_id"] == trial and running["key"] != trial
    assert running["values"] == {"x": config["x"], "c": config["c"]}
    assert float(running["budget"]) == float(config["__budget__"]) and running["rung"] == 0
    state = Path(running["checkpoint_dir"])
    assert state.name == trial and state.is_dir()
    inside = Path(config["__checkpoint_dir__"])  # the attempt the objective writes in
    assert inside.parent == state.parent / ".attempts" and inside.name.startswith(trial + "-")
    row = next(line.split() for line in as_text.stdout.splitlines()
               if line.startswith(f"  {running['key']} "))
    assert row[1] == running["worker"] and trial in row
    assert f"x={config['x']}" in row and f"c={config['c']}" in row
    assert f"checkpoint dirs: {state.parent}/<__trial__>" in as_text.stdout
    # once done, the best trial's values and directory are in the text too
    best = json.loads(ato("search", "status", "live", "--db", url, "--json").stdout)["best"]
    text = ato("search", "status", "live", "--db", url).stdout
    assert f"  values: x={best['values']['x']} c={best['values']['c']}" in text
    assert f"  __trial__: {best['trial_id']}" in text
    assert f"  checkpoint dir: {best['checkpoint_dir']}" in text
    assert Path(best["checkpoint_dir"]).is_dir()


def test_failed_trials_show_their_values_and_many_are_summarized(tmp_path):
    """The failed table has the searched values; 25 failed trials list the first 20 and
    one summary line (how many more, the most common errors); --all lists every one."""
    logger = tracker(tmp_path)

    def broken(config):
        if config.x % 2:
            raise ValueError("odd x diverges\nsecond line")
        raise KeyError("lrr")

    space = ADict(x=ADict(param_type="INTEGER", param_range=(0, 11), num_samples=12),
                  c=ADict(param_type="CATEGORY", categories=["a", "b"]))
    with pytest.raises(Exception):  # noqa: B017 - every trial fails
        get_algorithm("grid")(Scope(enable_override=True), space, tracker=logger,
                              study_id="broken", fail_fast=0, progress=False).main(broken)()
    db = f"sqlite:///{tmp_path / 't.db'}"
    table = ato("search", "status", "broken", "--db", db).stdout
    failed = table.split("failed:\n")[1].split("\n")
    assert failed[0].split() == ["key", "attempts", "values", "error"]
    rows = [line for line in failed[1:] if line.startswith("  ") and "x=" in line]
    assert len(rows) == 20 and all(" c=" in r for r in rows)
    assert any(r.rstrip().endswith("ValueError: odd x diverges …") for r in rows)
    assert any(r.rstrip().endswith("KeyError: 'lrr'") for r in rows)
    summary = [line for line in failed if "more failed trials" in line]
    assert len(summary) == 1 and "... 0 more" not in summary[0]
    assert "... 0" not in table and "... 0 more" not in table
    assert "... 4 more failed trials" in summary[0] and "--all" in summary[0], summary
    assert "ValueError: odd x diverges … (x12)" in summary[0]
    assert "KeyError: 'lrr' (x12)" in summary[0]
    every = ato("search", "status", "broken", "--db", db, "--all").stdout
    assert len([line for line in every.split("failed:\n")[1].splitlines()
                if line.startswith("  ") and "x=" in line]) == 24
    assert "more failed trials" not in every


def test_a_text_that_is_no_study_id_is_said_so(db):
    done = ato("search", "status", "a/b", "--db", db)
    assert done.returncode == 2
    assert "'a/b' is not a valid study id" in done.stderr, done.stderr
    assert "ato runs list" not in done.stderr
