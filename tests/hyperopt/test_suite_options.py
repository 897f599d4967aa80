"""The ``--…-options`` flag both conformance suites (algorithms, executors) read with one
function, and what their commands say about a bad one."""

from __future__ import annotations

import subprocess
import sys

import pytest

from ato.hyperopt.suite_options import json_options


def test_an_object_is_the_options_and_absence_is_none():
    assert json_options('{"n_workers": 2, "nested": {"a": [1, 2.5]}}', "--x-options") == {
        "n_workers": 2, "nested": {"a": [1, 2.5]}}
    assert json_options("{}", "--x-options") == {}
    assert json_options(None, "--x-options") is None
    assert json_options("", "--x-options") is None


@pytest.mark.parametrize("text, message", [
    ("{'single': 1}", r"--my-options is not JSON: .*line 1 column 2"),
    ('{"a": 1,}', r"--my-options is not JSON"),
    ("[1, 2]", r"--my-options must be a JSON object, got '\[1, 2\]'"),
    ("3", r"--my-options must be a JSON object"),
    ('"text"', r"--my-options must be a JSON object"),
])
def test_anything_else_is_one_error_naming_the_flag(text, message):
    with pytest.raises(ValueError, match=message):
        json_options(text, "--my-options")


@pytest.mark.parametrize("module, target", [
    ("ato.hyperopt.conformance", "random"),
    ("ato.hyperopt.executors.conformance", "threads"),
])
@pytest.mark.parametrize("text, message", [
    ("[1]", "--options must be a JSON object, got '[1]'"),
    ("{n: 1}", "--options is not JSON"),
])
def test_both_commands_refuse_bad_options_in_one_line(module, target, text, message):
    proc = subprocess.run([sys.executable, "-m", module, target, "--options", text],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"python -m {module}: error: ")
    assert message in lines[0]


@pytest.mark.parametrize("module, target, text, message", [
    ("ato.hyperopt.executors.conformance", "threads", '{"n_workerz": 2}',
     "executor 'threads' has no option 'n_workerz' (did you mean 'n_workers'?)"),
    ("ato.hyperopt.executors.conformance", "threads", '{"n_workers": 0}',
     "executor 'threads': n_workers must be a positive int, got 0"),
    ("ato.hyperopt.conformance", "random", '{"n_trialz": 3}',
     "random: unknown option 'n_trialz'"),
    ("ato.hyperopt.conformance", "hyperband", '{"halving_rate": 2, "num_min_samples": 1}',
     "hyperband: halving_rate must be between 0 and 1 (exclusive), got 2"),
])
def test_both_commands_refuse_options_the_plugin_refuses_in_one_line(module, target, text,
                                                                     message):
    """The plugin is built once with the options before the suite runs: an option it
    refuses is one line and exit status 2, not the same error in every test."""
    proc = subprocess.run([sys.executable, "-m", module, target, "--options", text],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines == [f"python -m {module}: error: {lines[0].split('error: ', 1)[1]}"]
    assert message in lines[0] and "passed" not in proc.stdout
