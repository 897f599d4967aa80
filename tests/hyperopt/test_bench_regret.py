"""The regret benchmark's verdicts (benchmarks/bench_regret.py): a gap the seeds cannot
resolve is a tie, not a loss; the script itself runs in `nox -s bench_regret`."""

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
bench_regret = pytest.importorskip("bench_regret")


def entry(values):
    import statistics

    return {"regrets": values, "median": statistics.median(values)}


def test_the_gap_interval_brackets_the_gap_and_is_reproducible():
    ours, theirs = [0.01 * i for i in range(1, 22)], [0.01 * i + 0.02 for i in range(1, 22)]
    low, high = bench_regret.gap_interval(ours, theirs)
    assert low <= -0.02 <= high and low < high
    assert bench_regret.gap_interval(ours, theirs) == (low, high)


@pytest.mark.parametrize("ours, theirs, expected", [
    ([1.0, 2.0, 3.0], [1.0, 2.0, 3.0], "below"),            # equal medians
    ([1.0, 2.1, 3.0, 0.5, 4.0], [1.0, 2.0, 3.0, 0.4, 4.1], "tie"),  # above, within noise
    ([5.0 + 0.01 * i for i in range(21)], [1.0 + 0.01 * i for i in range(21)], "above"),
])
def test_verdicts(ours, theirs, expected):
    assert bench_regret.verdict(entry(ours), entry(theirs)) == expected
