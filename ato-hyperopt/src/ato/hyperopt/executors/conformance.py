"""The behavioural suite every search executor should pass, shipped as a pytest plugin.

One command runs it against an installed executor (by ``PLUGIN_NAME``) or a class
(``module:Class``)::

    python -m ato.hyperopt.executors.conformance threads
    python -m ato.hyperopt.executors.conformance mypkg.exec:MyExecutor --options '{"n": 2}'

(the same as ``pytest -p ato.hyperopt.executors.conformance --pyargs
ato.hyperopt.executors.conformance --ato-executor NAME [--ato-executor-options JSON]``;
further arguments go to pytest).  For ``torch``, start it under ``torchrun``: every rank
runs the suite and the executor joins the group torchrun describes.  Or, in a test module
of your own::

    from ato.hyperopt.executors.conformance import ExecutorConformance

    class TestMyExecutor(ExecutorConformance):
        executor = MyExecutor
        options = {"n": 2}

It checks that an executor: has every member of the protocol and a positive ``slots``;
returns one outcome per item *in item order* even when later items finish first; turns an
objective's exception into ``Outcome(ok=False, error='ValueError: ...')`` without
stopping the other items; hands each item to the objective intact and brings each value
back; runs closures; can be used again with another function; lets ``submit`` and
``wait_any`` return every handle exactly once with its outcome, and ``wait_any`` return a
finished handle rather than wait for an earlier one (when it runs two trials at once);
and closes twice without error.  Options come from ``--ato-executor-options``, the test
class's ``options`` or the class's ``CONFORMANCE_OPTIONS``, in that order.  The functions
it runs are module-level here, so they reach worker processes and remote machines by
reference (the workers need Ato installed; the ``wait_any`` test passes a file path, so
the workers must see the test's temporary directory).
"""

from __future__ import annotations

import importlib
import sys

try:
    import pytest

    fixture = pytest.fixture
except ImportError:  # importable without pytest (tools import every module); runs under it
    pytest = None

    def fixture(function=None, **_options):
        return function if function is not None else (lambda f: f)

from ato.hyperopt.executors.base import Outcome, check_executor, get_executor

# The trials live in their own module so that they pickle by reference under its real name
# (pytest may import this file under another one when it collects it).
from ato.hyperopt.executors.trials import (
    echo,
    fail_on_odd,
    make_adder,
    pid_and_double,
    square_late_first,
    wait_for_gate,
)
from ato.hyperopt.suite_options import run_suite, spec_from_command_line, spec_of

__all__ = ["ExecutorConformance", "resolve_executor", "main"]

def resolve_executor(spec):
    """A class from a class, a ``PLUGIN_NAME`` or ``'module:Class'``."""
    if isinstance(spec, type):
        return spec
    if not isinstance(spec, str) or not spec:
        raise TypeError(f"the executor must be a class, a PLUGIN_NAME or 'module:Class', got "
                        f"{spec!r}")
    if ":" in spec:
        module, _, name = spec.partition(":")
        try:
            return getattr(importlib.import_module(module), name)
        except (ImportError, AttributeError) as e:
            raise LookupError(f"cannot import the executor {spec!r}: {e}") from None
    from ato.hyperopt.executors.base import executor_class

    return executor_class(spec)


class ExecutorConformance:
    """Subclass it with ``executor`` (a class, a ``PLUGIN_NAME`` or ``'module:Class'``)
    and ``options`` (constructor keywords)."""

    executor = None
    options: dict | None = None

    @fixture
    def spec(self, request):
        """``(executor class, options)``."""
        return spec_of(resolve_executor, self.executor, self.options)

    @fixture
    def make(self, spec):
        """``make()``: a new executor, closed after the test."""
        made = []

        def build():
            executor = get_executor(spec[0], **spec[1])
            made.append(executor)
            return executor

        yield build
        for executor in made:
            executor.close()

    # ------------------------------------------------------------------ the suite
    def test_has_the_protocol(self, make):
        """Every member of the protocol; ``name`` a string; ``slots`` a positive int."""
        executor = make()
        check_executor(executor)
        assert isinstance(executor.name, str) and executor.name

    def test_map_keeps_item_order(self, make):
        """Outcomes come in item order although the last items finish first."""
        executor = make()
        n = 2 * executor.slots + 3
        outcomes = executor.map(square_late_first, [(n, i) for i in range(n)])
        assert [type(o) for o in outcomes] == [Outcome] * n
        assert [(o.ok, o.value) for o in outcomes] == [(True, i * i) for i in range(n)]

    def test_map_of_no_items(self, make):
        assert make().map(echo, []) == []

    def test_errors_are_outcomes(self, make):
        """An objective's exception is that item's failed outcome; the rest still run."""
        executor = make()
        outcomes = executor.map(fail_on_odd, range(7))
        for i, outcome in enumerate(outcomes):
            if i % 2:
                assert not outcome.ok and outcome.value is None, outcome
                assert outcome.error == f"ValueError: odd item {i}", outcome
                assert outcome.exception is None or isinstance(outcome.exception, ValueError)
            else:
                assert outcome.ok and outcome.value == -i and outcome.error is None, outcome

    def test_items_and_values_travel_intact(self, make):
        from ato.adict import ADict

        items = [{"lr": 1e-3, "layers": [64, 32], "name": "résumé", "none": None},
                 ADict(model=ADict(depth=3), __budget__=9), (1, 2.5, "x"), 2 ** 70]
        outcomes = make().map(echo, items)
        assert [o.value for o in outcomes] == items
        assert type(outcomes[1].value) is ADict

    def test_runs_closures_and_several_functions(self, make):
        """An objective is a closure in practice; one executor serves many functions."""
        executor = make()
        assert [o.value for o in executor.map(make_adder(10), range(4))] == [10, 11, 12, 13]
        assert [o.value for o in executor.map(make_adder(20), range(4))] == [20, 21, 22, 23]
        assert [o.value[1] for o in executor.map(pid_and_double, range(3))] == [0, 2, 4]

    def test_submit_and_wait_any(self, make):
        """Each handle comes back once, with its own outcome (errors included)."""
        executor = make()
        handles = {executor.submit(fail_on_odd, i): i for i in range(5)}
        seen = {}
        while handles:
            handle, outcome = executor.wait_any(list(handles))
            assert any(handle is h for h in handles), "wait_any returned a foreign handle"
            i = handles.pop(handle)
            seen[i] = outcome
        assert sorted(seen) == list(range(5))
        assert [seen[i].ok for i in range(5)] == [True, False, True, False, True]
        assert seen[3].error == "ValueError: odd item 3"
        assert [seen[i].value for i in (0, 2, 4)] == [0, -2, -4]

    def test_wait_any_returns_a_finished_trial(self, make, tmp_path):
        """With two trials running, the one that finishes returns first, even when it
        comes later in ``handles``."""
        executor = make()
        if getattr(executor, "submit_slots", executor.slots) < 2:
            pytest.skip("the executor runs one submitted trial at a time")
        gate = str(tmp_path / "gate")
        slow = executor.submit(wait_for_gate, gate)
        fast = executor.submit(echo, "fast")
        handle, outcome = executor.wait_any([slow, fast])
        open(gate, "w").close()
        assert handle is fast and outcome.value == "fast"
        handle, outcome = executor.wait_any([slow])
        assert handle is slow and outcome.ok and outcome.value == "opened", outcome

    def test_close_twice(self, make):
        executor = make()
        executor.map(echo, [1])
        executor.close()
        executor.close()


def pytest_addoption(parser) -> None:
    group = parser.getgroup("ato-executors", "ato search-executor conformance")
    group.addoption("--ato-executor", default=None,
                    help="the executor to check: a PLUGIN_NAME or module:Class")
    group.addoption("--ato-executor-options", default=None,
                    help="JSON object of constructor options")


class TestExecutor(ExecutorConformance):
    """The suite for ``--ato-executor`` (collected when this module is given to pytest)."""

    @fixture
    def spec(self, request):
        return spec_from_command_line(request, resolve_executor, "--ato-executor",
                                      "--ato-executor-options")


def main(argv=None) -> int:
    """``python -m ato.hyperopt.executors.conformance EXECUTOR [--options JSON] [pytest
    args]``."""
    return run_suite("ato.hyperopt.executors.conformance", "search executor", "threads",
                     resolve_executor, "--ato-executor", "--ato-executor-options", argv,
                     build=lambda cls, options: get_executor(cls, **options).close())


if __name__ == "__main__":
    sys.exit(main())
