"""Exact budgets (issue 8 §5): no float drift, one representation per budget, exact
comparisons, and the multi-bracket winner chosen among every full-budget trial."""

from __future__ import annotations

import math
from decimal import Decimal
from fractions import Fraction

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from ato.adict import ADict
from ato.hyperopt import budgets
from ato.hyperopt.algorithms import ASHA, MultiBracketHyperband
from ato.hyperopt.base import SearchOptionError
from ato.hyperopt.hyperband import HyperBand
from ato.scope import Scope

SPACE = ADict(x=ADict(param_type="FLOAT", param_range=(0.0, 1.0)),
              c=ADict(param_type="CATEGORY", categories=["a", "b", "c"]))


def objective(config):
    return -(config.x - 0.3) ** 2 + {"a": 0, "b": 0.01, "c": 0.02}[config.c]


class TestExact:
    @pytest.mark.parametrize("value, expected", [
        (3, Fraction(3)), (729.0, Fraction(729)), (0.1, Fraction(1, 10)),
        (8.1, Fraction(81, 10)), (Decimal("2.7"), Fraction(27, 10)),
        ("10/9", Fraction(10, 9)), (" 0.125 ", Fraction(1, 8)), (Fraction(1, 3), Fraction(1, 3)),
        (1 / 3, Fraction(1, 3)), (2 / 3, Fraction(2, 3)), (10 / 9, Fraction(10, 9)),
        (1 / 7, Fraction(1, 7)), (10 / 3, Fraction(10, 3)), (0.3333, Fraction(3333, 10000)),
        (0.1 + 0.2, Fraction(repr(0.1 + 0.2))),
    ])
    def test_reads_budgets_as_written(self, value, expected):
        """Floats are the simple fraction they round from (1/3 is one third), else read
        through their shortest repr (0.1 is one tenth)."""
        assert budgets.exact(value) == expected

    @pytest.mark.parametrize("value, error, message", [
        (True, TypeError, "budget must be a number, got True"),
        (None, TypeError, "budget must be a number, got None"),
        (math.inf, ValueError, "budget must be finite, got inf"),
        (math.nan, ValueError, "budget must be finite, got nan"),
        ("ten", ValueError, "budget must be a number such as 9, 0.1 or 10/9, got 'ten'"),
        ([1], TypeError, r"budget must be a number, got \[1\] \(list\)"),
    ])
    def test_refuses_what_is_not_a_number(self, value, error, message):
        with pytest.raises(error, match=f"^{message}$"):
            budgets.exact(value)

    @pytest.mark.parametrize("budget, text, plain", [
        (Fraction(729), "729", 729), (Fraction(81, 10), "8.1", 8.1),
        (Fraction(1, 8), "0.125", 0.125), (Fraction(10, 9), "10/9", 10 / 9),
        (Fraction(3, 100000), "0.00003", 3e-05), (Fraction(-1, 4), "-0.25", -0.25),
    ])
    def test_text_and_plain(self, budget, text, plain):
        """One text per budget (a tag), one number per budget (the objective's)."""
        assert budgets.text(budget) == text and budgets.exact(text) == budget
        assert budgets.plain(budget) == plain and type(budgets.plain(budget)) is type(plain)


class TestTheIssueCases:
    def test_3_to_729(self):
        """(3, 729, 3) → 3, 9, 27, 81, 243, 729 exactly, everywhere."""
        expected = [3, 9, 27, 81, 243, 729]
        assert budgets.rungs(3, 729, 3) == expected
        assert ASHA(Scope(enable_override=True), SPACE, min_budget=3, max_budget=729, eta=3, max_trials=5).budgets \
            == expected
        hb = MultiBracketHyperband(Scope(enable_override=True), SPACE, min_budget=3, max_budget=729, eta=3)
        assert [b for _, b in hb.brackets()] == expected
        assert all(type(budgets.plain(b)) is int for b in expected)

    def test_tenths(self):
        """(0.1, 8.1, 3) → 0.1, 0.3, 0.9, 2.7, 8.1 exactly; the objective gets those floats."""
        expected = [Fraction(1, 10), Fraction(3, 10), Fraction(9, 10), Fraction(27, 10),
                    Fraction(81, 10)]
        assert budgets.rungs(0.1, 8.1, 3) == expected
        seen = set()
        asha = ASHA(Scope(enable_override=True), SPACE, min_budget=0.1, max_budget=8.1, eta=3, max_trials=300,
                    seed=0, progress=False)
        result = asha.main(lambda config: seen.add(config.__budget__) or objective(config))()
        assert seen == {0.1, 0.3, 0.9, 2.7, 8.1}
        assert result.config.__budget__ == 8.1

    def test_multi_bracket_winner_is_the_best_full_budget_trial_of_any_bracket(self):
        """Every full-budget trial carries the same 729, and the winner is the best of all
        of them — here one from the first bracket, not the last."""
        def f(config):  # later brackets are worse, so the best 729-trial is an early one
            return objective(config) - config.__bracket__

        hb = MultiBracketHyperband(Scope(enable_override=True), SPACE, min_budget=3, max_budget=729, eta=3, seed=4,
                                   progress=False)
        result = hb.main(f)()
        full = [c for c in result.logs if c.__budget__ == 729]
        assert {type(c.__budget__) for c in result.logs} == {int}
        assert {repr(c.__budget__) for c in full} == {"729"}
        assert len({c.__bracket__ for c in full}) == 6  # every bracket reaches 729
        assert result.metric == max(c.__metric__ for c in full)
        assert result.config.__bracket__ == 0 and result.config.__budget__ == 729

    def test_budget_used_is_exact(self):
        """budget_used sums exact budgets: 0.1 + 0.3 + ... never drifts."""
        asha = ASHA(Scope(enable_override=True), SPACE, min_budget=0.1, max_budget=8.1, eta=3, total_budget=12.1,
                    seed=0, progress=False)
        result = asha.main(objective)()
        # a promotion continues its configuration: it costs budget - resume budget
        exact_sum = sum(budgets.exact(c.__budget__) - budgets.exact(c.__resume_budget__)
                        for c in result.logs)
        assert budgets.exact(result.budget_used) == exact_sum <= Fraction(121, 10)


# ---------------------------------------------------------------------- properties
decimal_budgets = st.builds(lambda n, d: Fraction(n, 10 ** d),
                            st.integers(1, 10_000), st.integers(0, 4))
etas = st.sampled_from([2, 3, 4, 5, Fraction(3, 2), Fraction(5, 2), 1.5, 2.5, 10])


@settings(max_examples=300, deadline=None)
@given(low=decimal_budgets, eta=etas, k=st.integers(0, 7))
def test_aligned_schedules_are_exact(low, eta, k):
    """max = min * eta**k: the rungs end exactly at max, each eta times the previous, and
    the multi-bracket brackets start at max * eta**-s for s = k .. 0."""
    e = budgets.exact(eta)
    high = low * e ** k
    # hand the search the floats a user would type
    low_in, high_in = budgets.plain(low), budgets.plain(high)
    assume(budgets.exact(low_in) == low and budgets.exact(high_in) == high)  # short decimals
    rungs = budgets.rungs(low_in, high_in, eta)
    assert rungs == [low * e ** i for i in range(k + 1)]
    assert rungs[-1] == high and rungs[0] == low
    hb = MultiBracketHyperband(Scope(enable_override=True), SPACE, min_budget=low_in,
                               max_budget=high_in, eta=eta)
    assert hb.s_max == k
    assert [b for _, b in hb.brackets()] == [high / e ** s for s in range(k, -1, -1)]


@settings(max_examples=300, deadline=None)
@given(low=decimal_budgets, high=decimal_budgets, eta=etas)
def test_any_schedule_stays_within_its_bounds(low, high, eta):
    """For any (min, max, eta): the rungs are min * eta**i, the last within max and the
    next beyond it; bracket budgets never fall below min; costs and comparisons exact."""
    low, high = min(low, high), max(low, high)
    e = budgets.exact(eta)
    rungs = budgets.rungs(low, high, eta)
    assert rungs[0] == low and rungs[-1] <= high < rungs[-1] * e
    assert all(b2 == b1 * e for b1, b2 in zip(rungs, rungs[1:]))
    hb = MultiBracketHyperband(Scope(enable_override=True), SPACE, min_budget=low,
                               max_budget=high, eta=eta)
    starts = [b for _, b in hb.brackets()]
    assert starts[-1] == high and all(low <= b <= high for b in starts)
    assert starts[0] / e < low
    for n, b in hb.brackets():
        assert isinstance(hb.bracket_cost(n, b), Fraction)


@settings(max_examples=500, deadline=None)
@given(budget=st.fractions(min_value=Fraction(1, 10 ** 6), max_value=10 ** 6,
                           max_denominator=10 ** 6))
def test_text_round_trips_and_plain_is_nearest(budget):
    """text() reads back to the same budget; plain() is the int, or the nearest float."""
    assert budgets.exact(budgets.text(budget)) == budget
    value = budgets.plain(budget)
    if budget.denominator == 1:
        assert type(value) is int and value == budget
    else:
        assert value == float(budget)


@settings(max_examples=300, deadline=None)
@given(value=st.decimals(min_value=Decimal("0.001"), max_value=Decimal("100000"), places=3))
def test_a_typed_decimal_float_is_that_decimal(value):
    """A budget typed as a float literal (e.g. 8.1) means that decimal exactly, and the
    objective gets back the very same float."""
    typed = float(value)
    assert budgets.exact(typed) == Fraction(repr(typed))
    assert budgets.plain(budgets.exact(typed)) == typed


class TestOptions:
    def test_budget_options_are_checked(self):
        """Budgets that are not positive numbers, or min above max, are refused."""
        with pytest.raises(SearchOptionError, match="^asha: min_budget must be <= max_budget, "
                                                    "got min_budget=10, max_budget=9$"):
            ASHA(Scope(enable_override=True), SPACE, min_budget=10, max_budget=9, max_trials=3)
        with pytest.raises(SearchOptionError, match="^multi_hyperband: eta must be > 1, got 1$"):
            MultiBracketHyperband(Scope(enable_override=True), SPACE, eta=1)
        with pytest.raises(SearchOptionError, match="^asha: total_budget must be > 0, got 0$"):
            ASHA(Scope(enable_override=True), SPACE, total_budget=0)

    def test_a_total_budget_below_every_bracket_is_an_error(self):
        """Nothing fits: say so when the search is built (before a study is written),
        instead of returning an empty result."""
        with pytest.raises(SearchOptionError, match=r"total_budget=5 is smaller than the "
                                                    r"cheapest bracket \(9: one configuration at max_budget\)"):
            MultiBracketHyperband(Scope(enable_override=True), SPACE, min_budget=1, max_budget=9,
                                  eta=3, total_budget=5, progress=False)

    def test_hyperband_generation_budgets(self):
        """HyperBand's budgets: max_budget * halving_rate**(last - k), exact."""
        space = ADict(x=ADict(param_type="INTEGER", param_range=(1, 300), num_samples=300))
        hb = HyperBand(Scope(), space, 0.3, 4, max_budget=100000)
        assert [hb.budget_of(k) for k in range(4)] == [2700, 9000, 30000, 100000]
        assert hb.compute_optimized_initial_training_steps(100000) == [2700, 9000, 30001, 100000]


@pytest.mark.parametrize("rate", [1 / 3, "1/3", Fraction(1, 3), " 1/3 "])
def test_a_one_third_halving_rate_gives_exact_budgets(rate):
    """halving_rate=1/3 (a float, a string or a Fraction) is one third: with max_budget=9
    the objective gets the budgets 1, 3 and 9 (ints, never 0.9999999999999998), budget_used
    is exactly 63 (not 62.99999999999999), and the plan reads the same."""
    space = ADict(x=ADict(param_type="INTEGER", param_range=(1, 27), num_samples=27))
    seen = []

    def run(config):
        seen.append(config.__budget__)
        return config.x

    scope = Scope(enable_override=True)

    @scope.observe(default=True)
    def config(cfg):
        cfg.x = 1

    hb = HyperBand(scope, space, rate, 1, max_budget=9, progress=False)
    assert hb.halving_rate == Fraction(1, 3)
    assert hb.plan_options()["halving_rate"] == "1/3"
    result = hb.main(run)()
    assert sorted(set(seen)) == [1, 3, 9] and all(type(b) is int for b in seen)
    assert [seen.count(b) for b in (1, 3)] == [27, 9]
    assert result.budget_used == 63 and type(result.budget_used) is int


@pytest.mark.parametrize("rate, message", [
    ("1/0", "hyperband: halving_rate must be a number such as 9, 0.1 or 10/9, got '1/0'"),
    ("a third", "hyperband: halving_rate must be a number such as 9, 0.1 or 10/9, got "
                "'a third'"),
    ("3/2", "hyperband: halving_rate must be between 0 and 1 (exclusive), got '3/2'"),
    (float("nan"), "hyperband: halving_rate must be finite, got nan"),
])
def test_a_halving_rate_that_is_not_a_fraction_in_0_1_is_refused(rate, message):
    """A rate that does not read as a number between 0 and 1 is one SearchOptionError."""
    with pytest.raises(SearchOptionError) as info:
        HyperBand(Scope(), SPACE, rate, 1)
    assert str(info.value) == message


def test_a_float_eta_is_the_fraction_it_denotes():
    """eta=10/3 typed as a float is ten thirds: the rungs are exact multiples of it."""
    asha = ASHA(Scope(enable_override=True), SPACE, min_budget=0.9, max_budget=10, eta=10 / 3,
                max_trials=3)
    assert asha.eta == Fraction(10, 3)
    assert asha.budgets == [Fraction(9, 10), 3, 10]
