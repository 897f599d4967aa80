"""Promoted trials continue: ``__trial__``, ``__resume_budget__`` and ``__checkpoint_dir__``
(ato.hyperopt.trial), the incremental budget the algorithms charge and report, and the
bracket choice of multi_hyperband/bohb when the budget is small."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from fractions import Fraction
from pathlib import Path

import pytest

from ato.adict import ADict
from ato.hyperopt import budgets
from ato.hyperopt.algorithms import (
    ASHA,
    BOHB,
    GridSearch,
    MultiBracketHyperband,
    RandomSearch,
    TPESearch,
)
from ato.hyperopt.base import SearchOptionError
from ato.hyperopt.hyperband import HyperBand
from ato.hyperopt.study import config_hash
from ato.hyperopt.trial import Continuations, checkpoint_root, prepare
from ato.scope import Scope

SPACE = ADict(
    x=ADict(param_type="FLOAT", param_range=(0.0, 1.0), num_samples=9),
    c=ADict(param_type="CATEGORY", categories=["a", "b", "c"]),
)
KEYS = ("__trial__", "__resume_budget__", "__checkpoint_dir__")
ROOT = Path(__file__).resolve().parents[2]


def score(config):
    return config.x + {"a": 0.0, "b": 0.1, "c": 0.2}[config.c]


class Recorder:
    """An objective that keeps what each call saw and 'trains' by appending to a log file
    in its checkpoint directory (one line per epoch, continuing where it stopped)."""

    def __init__(self):
        self.calls = []

    def __call__(self, config):
        self.calls.append({k: config.get(k) for k in (*KEYS, "__budget__", "__bracket__",
                                                       "__num_halved__")})
        if "__checkpoint_dir__" in config:
            log = Path(config.__checkpoint_dir__) / "epochs.txt"
            done = len(log.read_text().splitlines()) if log.exists() else 0
            assert done == config.__resume_budget__, (done, config.__resume_budget__)
            with log.open("a") as f:
                for epoch in range(int(config.__resume_budget__), int(config.__budget__)):
                    f.write(f"{epoch}\n")
        return score(config)


def sqlite_logger(tmp_path, name="t.db"):
    from ato.db_routers.sql.manager import SQLLogger

    config = ADict(experiment=ADict(name="cont", project_name="cont",
                                    sql=ADict(db_path=f"sqlite:///{tmp_path / name}")))
    return SQLLogger(config)


def multi_fidelity(name, tmp_path, **extra):
    common = dict(seed=0, progress=False, min_budget=1, max_budget=9, eta=3,
                  checkpoint_root=tmp_path / "ckpt")
    common.update(extra)
    scope = Scope(enable_override=True)
    if name == "multi_hyperband":
        return MultiBracketHyperband(scope, SPACE, iterations=2, **common)
    if name == "bohb":
        return BOHB(scope, SPACE, iterations=2, **common)
    if name == "asha":
        return ASHA(scope, SPACE, max_trials=30, **common)
    if name == "hyperband":
        common.pop("min_budget"), common.pop("eta")
        common["max_budget"] = 16  # 27 configurations: generations at 1, 2, 4, 8, 16
        return HyperBand(scope, SPACE, halving_rate=0.5, num_min_samples=1, **common)
    raise ValueError(name)


ALGORITHMS = ["multi_hyperband", "bohb", "asha", "hyperband"]


class TestKeys:
    @pytest.mark.parametrize("name", ALGORITHMS)
    def test_every_trial_gets_identity_resume_budget_and_directory(self, name, tmp_path):
        objective = Recorder()
        multi_fidelity(name, tmp_path).main(objective)()
        assert objective.calls
        root = (tmp_path / "ckpt").resolve()
        promoted = 0
        for call in objective.calls:
            trial, resume, directory = (call[k] for k in KEYS)
            chash, _, bracket = trial.partition("-b")
            assert len(chash) == 16 and int(bracket) == (call["__bracket__"] or 0)
            # the call's own directory; the configuration's state is <root>/<study>/<trial>
            assert Path(directory).parent.name == ".attempts"
            assert Path(directory).parent.parent.parent == root
            assert Path(directory).name.startswith(trial + "-")
            assert not Path(directory).exists()  # committed (renamed) or dropped
            assert (Path(directory).parent.parent / trial).is_dir()
            assert 0 <= resume <= call["__budget__"]
            promoted += resume > 0
        assert promoted, "no configuration was ever continued"

    @pytest.mark.parametrize("name", ALGORITHMS)
    def test_a_promoted_configuration_resumes_from_the_budget_it_reached(self, name, tmp_path):
        objective = Recorder()
        multi_fidelity(name, tmp_path).main(objective)()
        reached = {}
        for call in objective.calls:
            trial = call["__trial__"]
            before = reached.get(trial, 0)
            assert call["__resume_budget__"] == min(before, call["__budget__"]), call
            reached[trial] = max(before, call["__budget__"])
        # and the 'training' log in each directory has exactly the epochs reached
        for call in objective.calls:
            trial = call["__trial__"]
            log = Path(call["__checkpoint_dir__"]).parent.parent / trial / "epochs.txt"
            assert log.read_text().splitlines() == [str(e) for e in range(int(reached[trial]))]

    @pytest.mark.parametrize("algorithm", [
        lambda: GridSearch(Scope(enable_override=True), SPACE, max_budget=3, progress=False),
        lambda: RandomSearch(Scope(enable_override=True), SPACE, n_trials=4, progress=False),
        lambda: TPESearch(Scope(enable_override=True), SPACE, n_trials=4, progress=False),
        lambda: HyperBand(Scope(enable_override=True), SPACE, 0.5, 2, progress=False),
    ], ids=["grid", "random", "tpe", "hyperband-without-max_budget"])
    def test_single_fidelity_searches_leave_the_config_alone(self, algorithm):
        objective = Recorder()
        algorithm().main(objective)()
        assert all(call[k] is None for call in objective.calls for k in KEYS)

    def test_an_objective_that_ignores_the_keys_still_works(self, tmp_path):
        hb = multi_fidelity("multi_hyperband", tmp_path)
        result = hb.main(lambda config: score(config))()
        assert result.config.__budget__ == 9 and result.metric == score(result.config)

    def test_the_winner_points_at_its_checkpoint(self, tmp_path):
        objective = Recorder()
        result = multi_fidelity("asha", tmp_path).main(objective)()
        log = Path(result.config.__checkpoint_dir__) / "epochs.txt"
        assert len(log.read_text().splitlines()) == 9

    def test_a_wrong_checkpoint_root_is_one_clear_error(self):
        with pytest.raises(SearchOptionError, match=r"asha: checkpoint_root must be a "
                                                    r"directory path, got 3"):
            ASHA(Scope(), SPACE, max_trials=3, checkpoint_root=3)

    def test_an_unwritable_root_names_the_directory(self, tmp_path):
        blocker = tmp_path / "file"
        blocker.write_text("not a directory")
        # refused when the search is built, before a study or a trial is written
        with pytest.raises(SearchOptionError, match=f"checkpoint_root='{blocker}' cannot hold "
                                                    f"checkpoints: .*{blocker}"):
            ASHA(Scope(enable_override=True), SPACE, max_trials=3, max_budget=9,
                 progress=False, checkpoint_root=blocker)


class TestRoot:
    def test_default_root_is_beside_the_sqlite_file(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)
        (tmp_path / "sub").mkdir()
        logger = sqlite_logger(tmp_path / "sub")
        objective = Recorder()
        asha = ASHA(Scope(enable_override=True), SPACE, max_trials=6, min_budget=1,
                    max_budget=9, tracker=logger, study_id="s1", seed=0, progress=False)
        asha.main(objective)()
        for call in objective.calls:
            directory = Path(call["__checkpoint_dir__"])
            assert directory.parent.parent == (tmp_path / "sub" / "ato-studies" / "s1").resolve()

    def test_rules_for_other_trackers_and_none(self, tmp_path, monkeypatch):
        monkeypatch.chdir(tmp_path)

        class Server:
            url = "postgresql://u@db.example/x"

        assert checkpoint_root(Server()) == (tmp_path / "ato-studies").resolve()
        assert checkpoint_root(Server(), "rel") == (tmp_path / "rel").resolve()
        temporary = checkpoint_root(None, None, "abc")
        assert temporary.is_dir() and temporary.name.startswith("ato-study-abc-")

        class Memory:
            url = "sqlite://"

        assert checkpoint_root(Memory()) == (tmp_path / "ato-studies").resolve()

    def test_identity_is_the_config_hash_and_bracket(self, tmp_path):
        ledger = Continuations("st", ["x", "c"], tmp_path)
        config = ADict(x=0.5, c="a")
        first = prepare(config, ledger, 1, bracket=2)
        assert config.__trial__ == f"{config_hash(config, ['x', 'c'])}-b2"
        assert first.resume_budget == 0 and first.increment == 1
        ledger.complete(first)
        again = prepare(ADict(x=0.5, c="a"), ledger, Fraction(10, 3), bracket=2)
        assert again.resume_budget == 1 and again.increment == Fraction(7, 3)
        other_bracket = prepare(ADict(x=0.5, c="a"), ledger, 3, bracket=0)
        assert other_bracket.resume_budget == 0 and other_bracket.directory != again.directory

    def test_a_failed_evaluation_does_not_count_as_reached(self, tmp_path):
        ledger = Continuations("st", ["x"], tmp_path)
        ledger.complete(prepare(ADict(x=1), ledger, 1))
        ledger.failed(prepare(ADict(x=1), ledger, 3))  # the objective raised
        again = prepare(ADict(x=1), ledger, 3)
        assert again.resume_budget == 1 and again.increment == 2

    def test_a_repeat_in_one_batch_reuses_the_first(self, tmp_path):
        ledger = Continuations("st", ["x"], tmp_path)
        first, repeat = prepare(ADict(x=1), ledger, 3), prepare(ADict(x=1), ledger, 3)
        assert (first.resume_budget, repeat.resume_budget) == (0, 3)
        assert repeat.increment == 0 and repeat.directory == first.directory
        assert ledger.resumed_from(first.trial, 3) == 0  # the first is still charged 3

    def test_bohb_repeats_are_charged_once(self, tmp_path):
        """TPE may propose one configuration twice in a rung: the repeat costs nothing,
        and budget_used is still the sum of what every call was told to train."""
        objective = Recorder()
        result = multi_fidelity("bohb", tmp_path).main(objective)()
        told = sum(budgets.exact(c["__budget__"]) - budgets.exact(c["__resume_budget__"])
                   for c in objective.calls)
        assert budgets.exact(result.budget_used) == told


class TestIncrementalBudget:
    def test_multi_hyperband_charges_increments_exactly(self, tmp_path):
        hb = MultiBracketHyperband(Scope(enable_override=True), SPACE, min_budget=0.1,
                                   max_budget=8.1, eta=3, seed=1, progress=False,
                                   checkpoint_root=tmp_path)
        result = hb.main(score)()
        increments = sum(budgets.exact(c.__budget__) - budgets.exact(c.__resume_budget__)
                         for c in result.logs)
        assert budgets.exact(result.budget_used) == increments
        assert increments == sum(hb.bracket_cost(n, b) for n, b in hb.brackets())
        # bracket s=4: 81 configs at 0.1, 27 go on to 0.3 (+0.2 each), 9 to 0.9 (+0.6)...
        assert hb.bracket_cost(81, Fraction(1, 10)) == (81 * Fraction(1, 10) + 27 * Fraction(2, 10)
                                                        + 9 * Fraction(6, 10) + 3 * Fraction(18, 10)
                                                        + 1 * Fraction(54, 10))

    def test_asha_spends_its_total_budget_in_increments(self, tmp_path):
        asha = ASHA(Scope(enable_override=True), SPACE, min_budget=0.1, max_budget=2.7,
                    eta=3, total_budget=5, seed=0, progress=False, checkpoint_root=tmp_path)
        result = asha.main(score)()
        charged = sum(budgets.exact(c.__budget__) - budgets.exact(c.__resume_budget__)
                      for c in result.logs)
        assert budgets.exact(result.budget_used) == charged <= 5
        assert charged > 5 - Fraction(18, 10)  # nothing else fitted (the dearest step: +1.8)
        # paying full budgets, the same trials would have cost more than allowed
        assert sum(budgets.exact(c.__budget__) for c in result.logs) > 5

    def test_hyperband_reports_budget_used(self, tmp_path):
        hb = HyperBand(Scope(enable_override=True), SPACE, halving_rate=0.5,
                       num_min_samples=1, max_budget=16, progress=False,
                       checkpoint_root=tmp_path)
        objective = Recorder()
        result = hb.main(objective)()
        charged = sum(budgets.exact(c["__budget__"]) - budgets.exact(c["__resume_budget__"])
                      for c in objective.calls)
        assert budgets.exact(result.budget_used) == charged
        assert charged < sum(budgets.exact(c["__budget__"]) for c in objective.calls)

    def test_tracker_runs_carry_resumed_from(self, tmp_path):
        from ato.tracking import open_finder

        logger = sqlite_logger(tmp_path)
        hb = MultiBracketHyperband(Scope(enable_override=True), SPACE, min_budget=1,
                                   max_budget=9, eta=3, tracker=logger, study_id="tags",
                                   seed=0, progress=False)
        result = hb.main(score)()
        finder = open_finder(f"sqlite:///{tmp_path / 't.db'}")
        runs = finder.find_runs(tags=["study:tags"])
        assert len(runs) == result.trials
        for run in runs:
            tags = {t.split(":", 1)[0]: t.split(":", 1)[1] for t in run.tags if ":" in t}
            rung = int(tags["rung"])
            budget = budgets.exact(tags["budget"])
            if rung == 0:
                assert "resumed_from" not in tags
            else:
                assert budgets.exact(tags["resumed_from"]) == budget / 3


class TestSmallBudgets:
    def test_a_budget_below_two_brackets_hedges_between_both_ends(self):
        hb = MultiBracketHyperband(Scope(), SPACE, min_budget=1, max_budget=27, eta=3,
                                   iterations=10, total_budget=4 * 27)
        plan = hb.schedule()
        starts = [b for _, b in plan]
        assert len(plan) > 1 and Fraction(27) in starts and Fraction(1) in starts
        assert sum(hb.bracket_cost(n, b) for n, b in plan) <= 4 * 27
        # the most aggressive bracket alone (27 configurations from 1 epoch) would have
        # taken most of it
        assert hb.bracket_cost(27, Fraction(1)) == 81
        assert dict((b, n) for n, b in plan)[Fraction(1)] < 27
        assert plan == [(2, Fraction(27)), (17, Fraction(1))]  # 54 + 51 of 108

    def test_a_partial_iteration_takes_whole_brackets_then_fills_the_rest(self):
        hb = MultiBracketHyperband(Scope(), SPACE, min_budget=1, max_budget=27, eta=3,
                                   iterations=10, total_budget=9 * 27)
        # 27 from 1 (81), 12 from 3 (78), and 5 of the 6 configurations of the s=1 bracket
        assert hb.schedule() == [(27, Fraction(1)), (12, Fraction(3)), (5, Fraction(9))]

    def test_whole_iterations_first_then_the_rest_shrunk(self):
        hb = MultiBracketHyperband(Scope(), SPACE, min_budget=1, max_budget=27, eta=3,
                                   iterations=10, total_budget=20 * 27)
        whole = hb.brackets()
        full = sum(hb.bracket_cost(n, b) for n, b in whole)
        plan = hb.schedule()
        assert plan[:len(whole)] == whole
        rest = plan[len(whole):]
        assert sum(hb.bracket_cost(n, b) for n, b in rest) <= 20 * 27 - full
        assert all(k <= n for (k, b), (n, b2) in zip(rest, whole))
        assert 20 * 27 - sum(hb.bracket_cost(n, b) for n, b in plan) < 27  # little is left

    def test_bohb_follows_the_same_rule_and_respects_the_total(self, tmp_path):
        objective = Recorder()
        bohb = BOHB(Scope(enable_override=True), SPACE, min_budget=1, max_budget=9, eta=3,
                    iterations=5, total_budget=20, seed=0, progress=False,
                    checkpoint_root=tmp_path)
        result = bohb.main(objective)()
        assert budgets.exact(result.budget_used) <= 20
        assert len({c["__bracket__"] for c in objective.calls}) > 1
        assert any(c["__budget__"] == 9 and c["__num_halved__"] == 0
                   for c in objective.calls), "only the most aggressive bracket ran"

    def test_the_old_rule_is_still_selectable(self):
        class Aggressive(MultiBracketHyperband):
            small_budget_rule = "aggressive"

        hb = Aggressive(Scope(), SPACE, min_budget=1, max_budget=27, eta=3, iterations=10,
                        total_budget=4 * 27)
        assert hb.schedule() == [(27, Fraction(1))]


RESUME_SCRIPT = textwrap.dedent("""
    import json, os, sys
    from pathlib import Path
    from ato.adict import ADict
    from ato.db_routers.sql.manager import SQLLogger
    from ato.hyperopt.algorithms import MultiBracketHyperband
    from ato.scope import Scope
    from ato.scoping.cli import set_argv

    set_argv([])
    db, crash_after, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
    space = ADict(x=ADict(param_type="FLOAT", param_range=(0.0, 1.0), num_samples=5))
    logger = SQLLogger(ADict(experiment=ADict(name="r", project_name="r",
                                              sql=ADict(db_path=f"sqlite:///{db}"))))
    hb = MultiBracketHyperband(Scope(enable_override=True), space, min_budget=1, max_budget=9,
                               eta=3, tracker=logger, study_id="again", seed=3, progress=False,
                               heartbeat_interval=0.2, stale_after=1.0)
    calls = []

    def objective(config):
        if len(calls) == crash_after:
            os._exit(17)  # the process dies mid-study
        state = Path(config.__checkpoint_dir__) / "state.json"
        epochs = json.loads(state.read_text())["epochs"] if state.exists() else 0
        calls.append([config.__trial__, config.__resume_budget__, epochs, config.__budget__])
        state.write_text(json.dumps({"epochs": config.__budget__}))
        return config.x * config.__budget__

    hb.main(objective)()
    Path(out).write_text(json.dumps(calls))
""")


def test_a_resumed_study_in_a_new_process_finds_its_checkpoints(tmp_path):
    script = tmp_path / "study.py"
    script.write_text(RESUME_SCRIPT)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    db, out = tmp_path / "s.db", tmp_path / "calls.json"
    # 10 calls: bracket 0's 9 configurations at 1 epoch, then the first promoted to 3
    crashed = subprocess.run([sys.executable, str(script), str(db), "10", str(out)], cwd=tmp_path,
                             env=env, capture_output=True, text=True, timeout=120)
    assert crashed.returncode == 17, crashed.stderr
    done = subprocess.run([sys.executable, str(script), str(db), "-1", str(out)], cwd=tmp_path,
                          env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    calls = json.loads(out.read_text())
    continued = [c for c in calls if c[1] > 0]
    assert continued, calls
    for _trial, resume, epochs_on_disk, _budget in calls:
        # the checkpoint the first process (or this one) left is at the resume budget
        assert epochs_on_disk == resume
    assert all(Path(tmp_path / "ato-studies" / "again" / c[0]).is_dir() for c in calls)


def _torch_objective(log):
    import torch

    def objective(config):
        torch.manual_seed(0)
        xs = torch.linspace(-1, 1, 64).unsqueeze(1)
        ys = 3 * xs + 0.5
        model = torch.nn.Linear(1, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
        epoch = 0
        path = Path(config.__checkpoint_dir__) / "checkpoint.pt"
        if config.__resume_budget__ and path.exists():
            state = torch.load(path)
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            epoch = state["epoch"]
        losses = []
        for _ in range(epoch, int(config.__budget__)):
            optimizer.zero_grad()
            loss = torch.nn.functional.mse_loss(model(xs), ys)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
        torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                    "epoch": int(config.__budget__)}, path)
        log.append((config.__trial__, config.__resume_budget__, config.__budget__, losses))
        with torch.no_grad():
            return torch.nn.functional.mse_loss(model(xs), ys).item()

    return objective


def test_a_torch_objective_really_resumes(tmp_path):
    pytest.importorskip("torch", reason="torch is needed for the checkpoint example")
    space = ADict(lr=ADict(param_type="FLOAT", param_range=(0.05, 0.2), num_samples=4))
    log = []
    asha = ASHA(Scope(enable_override=True), space, min_budget=1, max_budget=9, eta=3,
                max_trials=20, mode="min", seed=0, progress=False, checkpoint_root=tmp_path)
    result = asha.main(_torch_objective(log))()
    by_trial = {}
    for trial, resume, budget, losses in log:
        by_trial.setdefault(trial, []).append((resume, budget, losses))
    continued = [runs for runs in by_trial.values() if len(runs) > 1 and runs[1][0] > 0]
    assert continued
    for runs in continued:
        (_, b0, first), (r1, b1, second) = runs[0], runs[1]
        assert r1 == b0 and len(second) == b1 - r1  # trained only the increment
        assert second[0] < first[-1]  # the loss goes on down from where it was
    # and continuing 1 -> 3 (-> 9) ends exactly where training that many epochs at once does
    assert result.config.__budget__ > 1 and result.config.__resume_budget__ > 0
    best_lr = result.config.lr
    straight = []
    fresh = ADict(lr=best_lr, __resume_budget__=0, __budget__=result.config.__budget__,
                  __checkpoint_dir__=str(tmp_path / "fresh"), __trial__="fresh")
    Path(fresh.__checkpoint_dir__).mkdir()
    assert _torch_objective(straight)(fresh) == pytest.approx(result.metric, rel=1e-5)
    assert budgets.exact(result.budget_used) == sum(len(x[3]) for x in log)


@pytest.mark.parametrize("name", ["asha", "multi_hyperband"])
def test_a_shared_study_continues_too(name, tmp_path, monkeypatch):
    """With a tracker that coordinates studies and a study_id (a shared study: trials go
    through the coordinator, ASHA proposes under the study lock), promoted trials still
    resume from the budget below and are charged the increment."""
    from ato.tracking import open_finder

    monkeypatch.chdir(tmp_path)
    logger = sqlite_logger(tmp_path)
    if "studies" not in open_finder(f"sqlite:///{tmp_path / 't.db'}").capabilities:
        pytest.skip("the tracker backend does not coordinate studies")
    objective = Recorder()
    algorithm = multi_fidelity(name, tmp_path, tracker=logger, study_id=f"shared-{name}",
                               checkpoint_root=None)
    result = algorithm.main(objective)()
    assert any(call["__resume_budget__"] for call in objective.calls)
    for call in objective.calls:
        assert Path(call["__checkpoint_dir__"]).parent.parent == tmp_path / "ato-studies" / f"shared-{name}"
    charged = sum(budgets.exact(c["__budget__"]) - budgets.exact(c["__resume_budget__"])
                  for c in objective.calls)
    assert budgets.exact(result.budget_used) == charged
    runs = open_finder(f"sqlite:///{tmp_path / 't.db'}").find_runs(tags=[f"study:shared-{name}"])
    assert any(t.startswith("resumed_from:") for r in runs for t in r.tags)
