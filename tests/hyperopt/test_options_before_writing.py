"""Mistakes in a search's options are refused when the search is built, before a study is
created or a trial recorded (so a fixed rerun with the same study_id just works); and a
study that never started takes the options of the next search instead of locking its id.
On SQLite and PostgreSQL."""

from __future__ import annotations

import uuid

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.base import SearchOptionError
from ato.hyperopt.workers import StudyMismatchError
from ato.scope import Scope
from tests import databases

db_url = databases.db_url  # the fixture: a SQLite file, then a PostgreSQL database

SPACE = ADict(x=ADict(param_type="FLOAT", param_range=(0, 1)))


def build(url, algorithm="asha", **options):
    from ato.tracking import open_logger

    options = {"max_budget": 9, "progress": False, **options}
    if algorithm == "asha":
        options.setdefault("max_trials", 4)
    return get_algorithm(algorithm)(Scope(enable_override=True), SPACE,
                                    tracker=open_logger(url, project="opts"), **options)


def study_record(url, study):
    from ato.tracking import open_coordinator

    c = open_coordinator(url)
    try:
        return c.get_study(study), c.trials(study)
    finally:
        c.close()


@pytest.mark.parametrize("algorithm, options, message", [
    ("asha", {"total_budget": 0.5}, "asha: total_budget=0.5 is smaller than min_budget=1"),
    ("multi_hyperband", {"total_budget": 2},
     r"multi_hyperband: total_budget=2 is smaller than the cheapest bracket \(9"),
    ("asha", {"checkpoint_root": "/proc/nope"},
     r"asha: checkpoint_root='/proc/nope' cannot hold checkpoints: .*writable directory"),
])
def test_a_wrong_option_writes_nothing_and_the_fixed_rerun_runs(db_url, tmp_path, monkeypatch,
                                                                algorithm, options, message):
    monkeypatch.chdir(tmp_path)
    study = f"opts-{uuid.uuid4().hex[:6]}"
    with pytest.raises(SearchOptionError, match=message):
        build(db_url, algorithm, study_id=study, **options)
    assert study_record(db_url, study) == (None, [])
    fixed = {k: v for k, v in options.items() if k != "checkpoint_root"}
    if "total_budget" in fixed:
        fixed["total_budget"] = 20
    result = build(db_url, algorithm, study_id=study, **fixed).main(lambda config: config.x)()
    assert result.trials


def test_a_checkpoint_root_that_is_a_file_is_named(tmp_path):
    afile = tmp_path / "f"
    afile.write_text("x")
    with pytest.raises(SearchOptionError, match=rf"checkpoint_root='{afile}/ck'.*is a file"):
        get_algorithm("asha")(Scope(enable_override=True), SPACE, max_trials=2, checkpoint_root=afile / "ck")
    root = tmp_path / "new" / "ck"
    get_algorithm("asha")(Scope(enable_override=True), SPACE, max_trials=2, checkpoint_root=root)
    assert root.is_dir() and not list(root.iterdir())  # created, as a trial would; no probe left


def test_a_study_id_too_long_for_a_directory_is_refused(db_url):
    study = "s" * 300
    with pytest.raises(SearchOptionError, match="asha: study_id is 300 bytes long .* at most 255"):
        build(db_url, study_id=study)
    assert study_record(db_url, "s" * 200) == (None, [])


def test_a_study_that_never_started_takes_the_next_searchs_options(db_url, tmp_path,
                                                                   monkeypatch, capfd):
    from ato.tracking import TrialSpec, open_coordinator

    monkeypatch.chdir(tmp_path)
    study = f"unstarted-{uuid.uuid4().hex[:6]}"
    # (max_trials would extend the study: a plan option that is not extensible differs)
    first = build(db_url, study_id=study, max_trials=3, eta=2)
    meta = {"algorithm": "asha", "mode": "max", "seed": first.seed,
            "options": first.plan_options(), "search_space": first.plan_space()}
    c = open_coordinator(db_url)
    try:
        c.create_study(study, meta)  # what a search that stopped before its first trial left
        c.enqueue(study, [TrialSpec("k0", {"x": 1})])
        result = build(db_url, study_id=study, max_trials=5).main(lambda config: config.x)()
        assert result.trials == 5
        assert "never started (no trial claimed, no worker in it)" in capfd.readouterr().err
        assert c.get_study(study)["meta"]["options"]["eta"] == "3"
        assert "k0" not in {s.key for s in c.trials(study)}
        # once a trial was claimed, the study keeps its options
        with pytest.raises(StudyMismatchError, match=r"option 'eta' is 3 there, "
                                                     r"2 here.*was ever claimed"):
            build(db_url, study_id=study, max_trials=3, eta=2).main(lambda config: config.x)()
    finally:
        c.close()
