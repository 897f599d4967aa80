"""The TPE sampler's estimators: multivariate kernels, the split of good from bad,
bandwidths, the prior, option errors, and determinism with a seed."""

import math
import random

import pytest

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.samplers import TPESampler
from ato.scope import Scope

SPACE = ADict(lr=ADict(param_type="FLOAT", param_range=(1e-5, 1e-1), space_type="LOG"),
              model=ADict(param_type="CATEGORY", categories=["small", "large"]))


def interacting(sampler):
    """Good: small with lr ~ 1e-2 and large with lr ~ 1e-4; bad: the crossed pairs.  Each
    parameter alone looks the same in the good and the bad half: only the pairs differ."""
    rng = random.Random(7)
    for _ in range(10):
        for model, good_lr, bad_lr in (("small", -2, -4), ("large", -4, -2)):
            sampler.observe(ADict(lr=10 ** (good_lr + rng.uniform(-0.2, 0.2)), model=model),
                            27, 1.0 + rng.random())
            sampler.observe(ADict(lr=10 ** (bad_lr + rng.uniform(-0.2, 0.2)), model=model),
                            27, 0.0 - rng.random())
    return sampler


def crossed_share(proposals):
    """Of the proposals near lr 1e-2 or 1e-4, the share paired with the wrong model."""
    near = [p for p in proposals if min(abs(math.log10(p["lr"]) + 2),
                                        abs(math.log10(p["lr"]) + 4)) < 0.5]
    crossed = [p for p in near
               if (p["model"] == "small") != (abs(math.log10(p["lr"]) + 2) < 0.5)]
    return len(crossed) / len(near), len(near)


def test_multivariate_kernels_keep_interactions_between_parameters():
    """One product kernel per observation: a proposal takes its learning rate and its
    model from the same good configuration, so the best lr of each model stays paired
    with that model; fitting each parameter alone (the 2011 paper) cannot tell the good
    pairs from the crossed ones."""
    options = dict(gamma=0.5, random_fraction=0.0, min_points=10)
    joint = interacting(TPESampler(SPACE, random.Random(0), "max", **options))
    alone = interacting(TPESampler(SPACE, random.Random(0), "max", multivariate=False,
                                   **options))
    share_joint, n_joint = crossed_share([joint.values() for _ in range(200)])
    share_alone, n_alone = crossed_share([alone.values() for _ in range(200)])
    assert n_joint >= 150 and n_alone >= 100
    assert share_joint <= 0.1
    assert share_alone >= 0.3


@pytest.mark.parametrize(("split", "n", "expected"), [
    ("linear", 100, 15), ("linear", 10, 2), ("sqrt", 100, 3), ("sqrt", 400, 5),
    ("sqrt", 4, 1), ("linear", 1, 1)])
def test_split_sizes_the_good_set(split, n, expected):
    """'linear': ceil(gamma n) (gamma 0.15); 'sqrt': ceil(gamma sqrt(n)) (gamma 0.25),
    which keeps the good set small when hundreds of cheap results arrive; never empty."""
    sampler = TPESampler(SPACE, random.Random(0), "max", split=split,
                         gamma=0.15 if split == "linear" else 0.25, min_points=1)
    for i in range(n):
        sampler.observe(ADict(lr=10 ** (-5 + 4 * i / max(1, n)), model="small"), 3, float(i))
    good, bad = sampler._model_data()
    assert len(good) == expected and len(good) + len(bad) == n
    assert good[0]["lr"] == max(g["lr"] for g in good + bad)  # the best result first


def test_multi_fidelity_algorithms_use_the_sqrt_split_and_tpe_the_linear_one():
    """bohb and asha(sampler='tpe') see many cheap results; plain tpe a few full ones."""
    scope = Scope(enable_override=True)
    opts = dict(max_budget=27, min_budget=1, eta=3, progress=False)
    for sampler in (get_algorithm("bohb")(scope, SPACE, **opts).sampler,
                    get_algorithm("asha")(scope, SPACE, total_budget=270, sampler="tpe",
                                          **opts).sampler,
                    get_algorithm("multi_hyperband")(scope, SPACE, sampler="tpe",
                                                     **opts).sampler):
        assert (sampler.split, sampler.gamma, sampler.multivariate) == ("sqrt", 0.25, True)
    plain = get_algorithm("tpe")(scope, SPACE, n_trials=5, progress=False).sampler
    assert (plain.split, plain.gamma, plain.multivariate) == ("linear", 0.15, True)


def test_bandwidths_are_neighbour_gaps_clipped_and_the_prior_spans_the_range():
    """A kernel's width is the larger gap to its neighbours (the range's ends count as
    neighbours), at least range / min(100, n + 2); the prior kernel sits in the middle
    with the whole range as its width, so no value has zero density."""
    sampler = TPESampler(SPACE, random.Random(0), "max")
    dims = [d for d in sampler.dims if d.name == "lr"]
    lo, hi = dims[0].lo, dims[0].hi
    points = [{"lr": 1e-4}, {"lr": 1e-3}, {"lr": 3e-2}]
    weights, (column,) = sampler._kernels(points, dims)
    x = [math.log(1e-4), math.log(1e-3), math.log(3e-2)]
    width = hi - lo  # the clip, width / 5, is below every gap here
    assert column[0] == (pytest.approx(x[0]), pytest.approx(x[0] - lo))
    assert column[1][1] == pytest.approx(x[2] - x[1])
    assert column[2][1] == pytest.approx(x[2] - x[1])
    assert column[3] == (pytest.approx((lo + hi) / 2), pytest.approx(width))
    assert weights == [1.0, 1.0, 1.0, 1.0]
    crowded = [{"lr": 1e-3 * (1 + i * 1e-6)} for i in range(5)]
    kernels = sampler._kernels(crowded, dims)
    column = kernels[1][0]
    # the inner three are clipped (the magic clip); the outer two reach to the range's ends
    assert all(h == pytest.approx(width / 7) for _, h in column[1:4])
    assert column[0][1] == pytest.approx(math.log(1e-3) - lo)
    far = [math.log(1e-5), math.log(1e-1)]  # the ends of the range, far from every point
    assert all(sampler._log_density([v], dims, kernels) > -50 for v in far)


def test_category_smoothing_spreads_an_observation_over_the_other_categories():
    """Aitchison-Aitken: an observed category keeps 1 - eps + eps/k of its kernel's
    mass, each other category eps/k; the prior is uniform."""
    sampler = TPESampler(SPACE, random.Random(0), "max", category_smoothing=0.2,
                         prior_weight=1.0)
    dims = [d for d in sampler.dims if d.name == "model"]
    kernels = sampler._kernels([{"model": "large"}], dims)
    p_large = math.exp(sampler._log_density([1], dims, kernels))
    p_small = math.exp(sampler._log_density([0], dims, kernels))
    assert p_large == pytest.approx((0.9 + 0.5) / 2) and p_small == pytest.approx((0.1 + 0.5) / 2)


def test_proposals_are_deterministic_with_a_seed_and_inside_the_space():
    """The same seed and the same observations give the same proposals."""
    runs = []
    for _ in range(2):
        sampler = interacting(TPESampler(SPACE, random.Random(3), "max"))
        runs.append([sampler.values() for _ in range(30)])
    assert runs[0] == runs[1]
    assert all(1e-5 <= p["lr"] <= 1e-1 and p["model"] in ("small", "large") for p in runs[0])


@pytest.mark.parametrize(("option", "value", "message"), [
    ("split", "cube", "split must be 'linear' or 'sqrt'"),
    ("gamma", 0.0, r"gamma must be in \(0, 1\]"),
    ("prior_weight", -1.0, "prior_weight must be > 0"),
    ("category_smoothing", 1.0, r"category_smoothing must be in \[0, 1\)"),
    ("n_candidates", 0, "n_candidates must be an int >= 1")])
def test_bad_options_name_the_option(option, value, message):
    with pytest.raises(ValueError, match=message):
        TPESampler(SPACE, random.Random(0), "max", **{option: value})
