"""Shared fixtures: a clean Scope registry and command line per test, and a runner for
example scripts as real subprocesses."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# A test run started in the background of a non-interactive shell (`cmd &`, nohup, some CI
# runners) inherits SIGINT *ignored*, and every subprocess would inherit that too, so the
# tests of how a process ends on Ctrl-C would see a process that never gets it. Handled
# here, the disposition resets to the default in each child at exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _clean_scopes():
    from ato.scope import Scope
    from ato.scoping.cli import set_argv

    Scope.initialize_registry()
    set_argv([])  # in-process tests never see pytest's own arguments
    yield
    Scope.initialize_registry()


def run_script(script, *args, cwd=None, env=None, check=False, timeout=120):
    """Run a Python script in a fresh interpreter; returns the CompletedProcess."""
    full_env = dict(os.environ)
    full_env.update(env or {})
    full_env.setdefault("PYTHONIOENCODING", "utf-8")
    proc = subprocess.run(
        [sys.executable, str(script), *args], cwd=cwd, env=full_env, capture_output=True,
        text=True, timeout=timeout,
    )
    if check and proc.returncode != 0:
        raise AssertionError(f"{script} {args} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


@pytest.fixture
def run():
    return run_script
