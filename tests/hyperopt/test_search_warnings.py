"""Every warning a search issues points at the user's line that called into Ato (where
``warnings`` shows the file and the source line), never at Ato's own code."""

from __future__ import annotations

import warnings

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.scope import Scope
from tests.hyperopt.test_workers_batch import tracker

SPACE = ADict(x=ADict(param_type="FLOAT", param_range=(0, 1)))


def only_warning(record, match: str):
    (warning,) = [w for w in record if match in str(w.message)]
    assert warning.filename == __file__, (warning.filename, warning.lineno)
    return warning


def test_retries_alone_warns_at_the_users_line():
    search = get_algorithm("random")(Scope(enable_override=True), SPACE, n_trials=2,
                                     retries=2, progress=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        search.main(lambda config: config.x)()
    only_warning(record, "retries=2 applies to a shared study only")


def test_fail_fast_alone_warns_at_the_users_line_as_retries_does():
    search = get_algorithm("random")(Scope(enable_override=True), SPACE, n_trials=2,
                                     fail_fast=3, progress=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        search.main(lambda config: config.x)()
    only_warning(record, "fail_fast=3 applies to a shared study only")
    # the default (not given) and fail_fast=0 say nothing
    for options in ({}, {"fail_fast": 0}):
        search = get_algorithm("random")(Scope(enable_override=True), SPACE, n_trials=2,
                                         progress=False, **options)
        with warnings.catch_warnings(record=True) as record:
            warnings.simplefilter("always")
            search.main(lambda config: config.x)()
        assert not [w for w in record if "fail_fast" in str(w.message)], options


def test_torchrun_without_a_group_warns_at_the_users_line(monkeypatch):
    monkeypatch.setenv("WORLD_SIZE", "2")
    search = get_algorithm("random")(Scope(enable_override=True), SPACE, n_trials=2,
                                     progress=False)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        search.main(lambda config: config.x)()
    only_warning(record, "no torch.distributed process group is initialised")


def test_another_checkpoint_root_warns_at_the_users_line(tmp_path):
    logger = tracker(tmp_path)
    options = {"study_id": "roots", "max_budget": 3, "min_budget": 1, "eta": 3,
               "max_trials": 3, "seed": 1, "progress": False}
    get_algorithm("asha")(Scope(enable_override=True), SPACE, tracker=logger,
                          checkpoint_root=tmp_path / "a", **options).main(
        lambda config: config.x)()
    second = get_algorithm("asha")(Scope(enable_override=True), SPACE, tracker=logger,
                                   checkpoint_root=tmp_path / "b", **options)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        second.main(lambda config: config.x)()
    only_warning(record, "this worker keeps checkpoints under")
