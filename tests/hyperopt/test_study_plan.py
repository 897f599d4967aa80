"""Workers of one shared study must plan the same search: every option that changes the
plan (the algorithm's constructor options, the whole search space, normalised) is compared
when a worker joins, and each difference is named with both values; options that only
change how a worker runs (progress, executor, heartbeats, retries, threads, checkpoint
root) do not matter."""

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.base import SearchOptionError
from ato.hyperopt.workers import StudyMismatchError
from ato.scope import Scope
from tests.hyperopt.test_workers_batch import score, tracker

SPACE = ADict(x=ADict(param_type="INTEGER", param_range=(0, 11), num_samples=12),
              c=ADict(param_type="CATEGORY", categories=["a", "b"]))


def join(logger, algorithm, space=SPACE, **options):
    options.setdefault("progress", False)
    search = get_algorithm(algorithm)(Scope(enable_override=True), space, tracker=logger,
                                      study_id="plan", **options)
    search.main(score)()
    return search


def space(**changes):
    out = ADict({k: ADict(v) for k, v in SPACE.items()})
    for name, spec in changes.items():
        out[name] = ADict(spec)
    return out


CASES = [
    # (algorithm, first worker's options, second worker's options, the phrases expected)
    ("asha", dict(max_trials=6, max_budget=9, eta=3), dict(max_trials=6, max_budget=9, eta=2),
     ["option 'eta' is 3 there, 2 here"]),
    # (max_trials, total_budget, n_trials and iterations without a total budget only extend
    # a study: tests/hyperopt/test_extend_study.py)
    ("asha", dict(max_trials=6, max_budget=9, min_budget=1),
     dict(max_trials=8, max_budget=27, min_budget=3),
     ["option 'max_budget' is 9 there, 27 here", "option 'min_budget' is 1 there, 3 here"]),
    ("random", dict(n_trials=4, batch_size=2), dict(n_trials=5, batch_size=3),
     ["option 'batch_size' is 2 there, 3 here"]),
    ("multi_hyperband", dict(max_budget=9, total_budget=30), dict(max_budget=9, total_budget=40),
     ["option 'total_budget' is 30 there, 40 here"]),
    ("multi_hyperband", dict(max_budget=9, iterations=1, total_budget=30),
     dict(max_budget=9, iterations=2, total_budget=30),
     ["option 'iterations' is 1 there, 2 here"]),
]


@pytest.mark.parametrize("algorithm, first, second, phrases", CASES)
def test_a_different_plan_is_refused_naming_each_option(tmp_path, algorithm, first, second,
                                                        phrases):
    logger = tracker(tmp_path)
    join(logger, algorithm, seed=1, **first)
    with pytest.raises(StudyMismatchError) as caught:
        join(logger, algorithm, seed=1, **second)
    for phrase in phrases:
        assert phrase in str(caught.value), str(caught.value)


@pytest.mark.parametrize("changed, phrase", [
    (dict(x=dict(param_type="INTEGER", param_range=(0, 20), num_samples=12)),
     "search space entry 'x' is {'num_samples': 12, 'param_range': [0, 11], "),
    # numbers as written, not as the exact text the study compares
    (dict(x=dict(param_type="FLOAT", param_range=(1e-4, 0.1), num_samples=8)),
     "'num_samples': 8, 'param_range': [0.0001, 0.1]"),
    (dict(c=dict(param_type="CATEGORY", categories=["a", "b", "z"])),
     "'categories': ['a', 'b', 'z']"),
    (dict(y=dict(param_type="CATEGORY", categories=[1])), "search space entry 'y' is '(not given)'"),
])
def test_a_different_search_space_is_refused(tmp_path, changed, phrase):
    logger = tracker(tmp_path)
    join(logger, "random", seed=1, n_trials=3)
    with pytest.raises(StudyMismatchError, match="was started by another search") as caught:
        join(logger, "random", space(**changed), seed=1, n_trials=3)
    assert phrase in str(caught.value)


def test_equal_numbers_in_another_spelling_agree(tmp_path):
    logger = tracker(tmp_path)
    join(logger, "asha", seed=1, max_trials=4, max_budget=9, eta=3)
    join(logger, "asha", seed=1, max_trials=4, max_budget=9.0, eta=3.0)
    float_space = space(x=dict(param_type="INTEGER", param_range=(0.0, 11.0), num_samples=12))
    join(logger, "asha", float_space, seed=1, max_trials=4, max_budget=9, eta=3)


def test_options_that_do_not_change_the_plan_do_not_matter(tmp_path):
    logger = tracker(tmp_path)
    join(logger, "asha", seed=1, max_trials=4, max_budget=9)
    join(logger, "asha", seed=1, max_trials=4, max_budget=9, progress=True, executor="serial",
         heartbeat_interval=0.5, stale_after=7, retries=2, n_workers=2,
         checkpoint_root=tmp_path / "elsewhere", catch=(ValueError,))


def test_a_missing_seed_says_it_was_derived_from_the_study_id(tmp_path):
    logger = tracker(tmp_path)
    join(logger, "random", seed=5, n_trials=3)
    with pytest.raises(StudyMismatchError, match=r"seed is 5 there, \d+ here \(here no seed "
                                                 r"was given, so it was derived from the "
                                                 r"study_id; pass seed=5\)"):
        join(logger, "random", n_trials=3)


def test_an_option_given_as_its_default_is_no_difference(tmp_path):
    logger = tracker(tmp_path)
    join(logger, "multi_hyperband", seed=1, max_budget=9)
    join(logger, "multi_hyperband", seed=1, max_budget=9, sampler="random", iterations=1)
    with pytest.raises(StudyMismatchError) as caught:
        join(logger, "multi_hyperband", seed=1, max_budget=9, sampler="tpe")
    assert "option 'sampler' is 'random' there, 'tpe' here" in str(caught.value)
    other = tracker(tmp_path / "bohb")
    join(other, "bohb", seed=1, max_budget=9)
    join(other, "bohb", seed=1, max_budget=9, sampler="tpe", iterations=1)
    # tpe names its own default: a study started without it records 'tpe'
    third = tracker(tmp_path / "tpe")
    join(third, "tpe", seed=1, n_trials=4, batch_size=2)
    join(third, "tpe", seed=1, n_trials=4, batch_size=2, sampler="tpe")
    with pytest.raises(SearchOptionError, match="^tpe: sampler is always 'tpe', not 'random'"):
        join(third, "tpe", seed=1, n_trials=4, batch_size=2, sampler="random")


def test_joining_with_another_algorithm_names_only_real_differences(tmp_path):
    logger = tracker(tmp_path)
    join(logger, "multi_hyperband", seed=1, max_budget=9)
    with pytest.raises(StudyMismatchError) as caught:
        join(logger, "bohb", seed=1, max_budget=9)
    message = str(caught.value)
    assert "algorithm is 'multi_hyperband' there, 'bohb' here" in message
    assert "'iterations'" not in message  # 1 on both sides
    # an option only one algorithm has is not listed beside the algorithm's difference
    with pytest.raises(StudyMismatchError) as caught:
        join(logger, "asha", seed=1, max_budget=9, max_trials=6)
    assert "(not given)" not in str(caught.value), str(caught.value)
    assert "algorithm is 'multi_hyperband' there, 'asha' here" in str(caught.value)
    assert "option 'sampler' is 'random' there, 'tpe' here" in message


def scoped(**defaults):
    scope = Scope(enable_override=True)

    @scope.observe(default=True)
    def base(cfg):
        cfg.dropout = 0.1
        cfg.model = ADict(depth=4, name="resnet")
        cfg.update(defaults)

    scope.apply([])
    return scope


def join_scoped(logger, scope, **options):
    search = get_algorithm("random")(scope, SPACE, tracker=logger, study_id="plan",
                                     n_trials=3, seed=1, progress=False, **options)
    return search.main(score)()


def test_another_base_config_is_refused_naming_the_key(tmp_path):
    logger = tracker(tmp_path)
    join_scoped(logger, scoped())
    join_scoped(logger, scoped(dropout=0.10))  # the same value spelled otherwise
    for changes, phrase in [
            (dict(dropout=0.3), "base config key 'dropout' is 0.1 there, 0.3 here"),
            (dict(model=ADict(depth=5, name="resnet")), "base config key 'model.depth' is 4 "
                                                        "there, 5 here"),
            (dict(model=ADict(depth=4, name="vit")), "'model.name' is \"resnet\" there, "
                                                     "\"vit\" here"),
            (dict(extra=1), "base config key 'extra' is (not given) there, 1 here")]:
        with pytest.raises(StudyMismatchError) as caught:
            join_scoped(logger, scoped(**changes))
        assert phrase in str(caught.value), str(caught.value)


def test_the_searched_keys_of_the_base_config_do_not_matter(tmp_path):
    logger = tracker(tmp_path)
    join_scoped(logger, scoped(x=0))
    join_scoped(logger, scoped(x=7, c="z"))


def test_workers_with_other_checkpoint_roots_are_warned(tmp_path):
    logger = tracker(tmp_path)
    options = dict(seed=1, max_budget=9)
    join(logger, "multi_hyperband", checkpoint_root=str(tmp_path / "a"), **options)
    with pytest.warns(RuntimeWarning, match="cannot continue each other's configurations"):
        join(logger, "multi_hyperband", checkpoint_root=str(tmp_path / "b"), **options)
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        join(logger, "multi_hyperband", checkpoint_root=str(tmp_path / "a"), **options)
