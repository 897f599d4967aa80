"""A multi-fidelity search leaves checkpoint directories only for configurations whose
evaluation completed: an objective that fails leaves nothing under the checkpoint root
(the SLURM example with a typo left 305 directories and 143 lock files), alone or in a
shared study."""

from __future__ import annotations

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.scope import Scope
from ato.tracking import open_logger

SPACE = ADict(x=ADict(param_type="FLOAT", param_range=(0.0, 1.0), num_samples=6))


def search(tmp_path, study_id, **options):
    return get_algorithm("multi_hyperband")(
        Scope(enable_override=True), SPACE,
        tracker=open_logger(f"sqlite:///{tmp_path / 't.db'}", project="ck"),
        study_id=study_id, max_budget=9, eta=3, seed=1, progress=False, fail_fast=0,
        checkpoint_root=tmp_path / "root", **options)


@pytest.mark.parametrize("study_id", [None, "typo"], ids=["alone", "shared"])
def test_a_failing_objective_leaves_no_directories(tmp_path, study_id):
    def typo(config):
        return config.lrr

    with pytest.raises(Exception):  # noqa: B017 - AttributeError alone, none shared
        search(tmp_path, study_id, catch=(AttributeError,)).main(typo)()
    assert list((tmp_path / "root").rglob("*")) == []


def test_a_completed_configuration_keeps_only_its_state(tmp_path):
    """An objective that writes nothing: each configuration that completed keeps its
    directory, holding only the budget it reached (what a promotion resumes from); those
    that failed leave none."""
    seen = {}

    def half(config):
        seen[config.__trial__] = config.x
        if config.x > 0.5:
            raise ValueError("diverged")
        return -config.x

    search(tmp_path, "half").main(half)()
    study = tmp_path / "root" / "half"
    states = {p.name for p in study.iterdir() if p.name != ".attempts"}
    assert states == {t for t, x in seen.items() if x <= 0.5}
    assert all({f.name for f in (study / s).iterdir()} == {".ato-state"} for s in states)
    # no attempt directory and no liveness file is left; lock files only for states
    left = {p.name for p in (study / ".attempts").iterdir()}
    assert left <= {f"{s}.lock" for s in states}, left
