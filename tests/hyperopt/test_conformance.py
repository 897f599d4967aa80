"""Every search algorithm Ato ships, and the example plugin's, passes the behavioural
suite of ato.hyperopt.conformance; the suite catches broken algorithms; it runs with one
command."""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ato.hyperopt.algorithms import (
    ASHA,
    BOHB,
    GridSearch,
    MultiBracketHyperband,
    RandomSearch,
    TPESearch,
)
from ato.hyperopt.conformance import AlgorithmConformance
from ato.hyperopt.hyperband import DistributedHyperBand, HyperBand

ROOT = Path(__file__).resolve().parents[2]
COORDINATE = ROOT / "examples/ato-example-plugin/src/ato_example_plugin/coordinate.py"


def _coordinate_search():
    spec = importlib.util.spec_from_file_location("ato_example_coordinate", COORDINATE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.CoordinateSearch


class TestHyperBand(AlgorithmConformance):
    algorithm = HyperBand


class TestHyperBandWithBudgets(AlgorithmConformance):
    algorithm = HyperBand
    options = {"halving_rate": 0.3, "num_min_samples": 3, "max_budget": 100}


class TestDistributedHyperBandOneRank(AlgorithmConformance):
    algorithm = DistributedHyperBand


class TestGrid(AlgorithmConformance):
    algorithm = GridSearch


class TestRandom(AlgorithmConformance):
    algorithm = RandomSearch


class TestTPE(AlgorithmConformance):
    algorithm = TPESearch


class TestMultiBracketHyperband(AlgorithmConformance):
    algorithm = MultiBracketHyperband


class TestMultiBracketHyperbandFractionalBudgets(AlgorithmConformance):
    algorithm = MultiBracketHyperband
    options = {"min_budget": 0.1, "max_budget": 8.1, "eta": 3, "iterations": 1,
               "total_budget": 40}


class TestBOHB(AlgorithmConformance):
    algorithm = BOHB


class TestASHA(AlgorithmConformance):
    algorithm = ASHA


class TestASHATotalBudget(AlgorithmConformance):
    algorithm = ASHA
    options = {"min_budget": 1, "max_budget": 27, "eta": 3, "total_budget": 120}


class TestExamplePluginCoordinate(AlgorithmConformance):
    algorithm = _coordinate_search()


def run_suite(*args, env=None):
    return subprocess.run([sys.executable, "-m", "ato.hyperopt.conformance", *args],
                          capture_output=True, text=True, timeout=300, cwd=ROOT,
                          env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})


def test_one_command_runs_the_suite_on_an_installed_algorithm():
    """`python -m ato.hyperopt.conformance grid` runs the whole suite and passes."""
    proc = run_suite("grid")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "10 passed" in proc.stdout


def test_one_command_takes_a_class_and_options():
    """module:Class and --options JSON; the suite fails (exit 1) on broken algorithms and
    names what broke."""
    proc = run_suite("tests.hyperopt.broken_algorithms:OverBudget", "--options",
                     '{"n_trials": 4}')
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "FAILED" in proc.stdout and "::test_respects_its_budget" in proc.stdout
    assert "1 failed, 9 passed" in proc.stdout
    assert "AssertionError: budget 2 > max_budget 1" in proc.stdout  # options replace the defaults


BROKEN = {
    "LeaksScope": {"test_builds_on_the_scope_and_restores_it",
                   "test_an_objective_error_propagates"},
    "Unseeded": {"test_same_seed_same_search", "test_min_mode_mirrors_max_mode",
                 "test_resumes_a_crashed_study"},
    "SwallowsErrors": {"test_an_objective_error_propagates"},
    "IgnoresMode": {"test_min_mode_mirrors_max_mode", "test_catch_keeps_searching"},
    "ReturnsATuple": {"test_returns_a_config_it_evaluated", "test_respects_its_budget",
                      "test_builds_on_the_scope_and_restores_it", "test_same_seed_same_search",
                      "test_min_mode_mirrors_max_mode", "test_records_every_trial",
                      "test_resumes_a_crashed_study", "test_catch_keeps_searching",
                      "test_a_shared_study_records_a_failed_trial_and_goes_on"},
}


def test_the_suite_catches_broken_algorithms(tmp_path):
    """Each kind of broken algorithm, subclassed into the suite as a third party does,
    fails exactly the checks about its fault."""
    module = tmp_path / "test_broken.py"
    module.write_text("from ato.hyperopt.conformance import AlgorithmConformance\n"
                      "from tests.hyperopt import broken_algorithms as b\n"
                      + "".join(f"class Test{name}(AlgorithmConformance):\n"
                                f"    algorithm = b.{name}\n" for name in BROKEN))
    proc = subprocess.run([sys.executable, "-m", "pytest", str(module), "-p", "no:cacheprovider",
                           "--rootdir", str(tmp_path)],
                          capture_output=True, text=True, timeout=600, cwd=tmp_path,
                          env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert proc.returncode == 1, proc.stdout + proc.stderr
    failed = {}
    for line in proc.stdout.splitlines():
        if line.startswith("FAILED"):
            cls, test = line.split()[1].split("::")[-2:]
            failed.setdefault(cls[len("Test"):], set()).add(test)
    assert failed == BROKEN, proc.stdout


def test_an_unknown_algorithm_is_a_clear_error():
    """A name no plugin provides, or a class that cannot be imported, fails naming it."""
    from ato.hyperopt.conformance import resolve_algorithm

    with pytest.raises(LookupError, match="no installed plugin provides 'no-such-search'"):
        resolve_algorithm("no-such-search")
    with pytest.raises(LookupError, match="cannot import the algorithm 'tests.hyperopt.nope:X'"):
        resolve_algorithm("tests.hyperopt.nope:X")
    assert resolve_algorithm("asha") is ASHA and resolve_algorithm(ASHA) is ASHA


def test_the_suite_imports_without_pytest():
    """Tools that import every module (the subset checks) can import it without pytest;
    the command then says what to install."""
    code = ("import sys; sys.modules['pytest'] = None\n"
            "import ato.hyperopt.conformance as c\n"
            "assert c.pytest is None and c.AlgorithmConformance\n"
            "sys.exit(c.main(['grid']))\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "the suite runs under pytest; pip install pytest" in proc.stderr


@pytest.mark.parametrize("spec, message", [
    ("nope:Nope", "cannot import the algorithm 'nope:Nope'"),
    ("exhaustiv", "no installed plugin provides 'exhaustiv'"),
])
def test_one_command_names_an_algorithm_it_cannot_find_in_one_line(spec, message):
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "ato.hyperopt.conformance", spec],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and message in lines[0], proc.stderr
