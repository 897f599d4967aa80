"""The trials :mod:`ato.hyperopt.executors.conformance` runs: module-level functions, so
they reach worker processes and remote machines by reference."""

from __future__ import annotations

import os
import time

#: How long a gated trial waits for its gate before giving up (seconds).
GATE_TIMEOUT = 60.0


def square_late_first(item):
    """``i * i``, the earlier items slower (``(n, i)`` items): results come back in the
    reverse order of the items."""
    n, i = item
    time.sleep(0.02 * (n - i))
    return i * i


def fail_on_odd(i):
    if i % 2:
        raise ValueError(f"odd item {i}")
    return -i


def echo(item):
    return item


def pid_and_double(i):
    return os.getpid(), 2 * i


def wait_for_gate(path):
    """Return ``'opened'`` once ``path`` exists (at most :data:`GATE_TIMEOUT` s)."""
    deadline = time.monotonic() + GATE_TIMEOUT
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise TimeoutError(f"the gate {path} was never opened")
        time.sleep(0.01)
    return "opened"


def make_adder(k):
    def add(i):
        return i + k

    return add
