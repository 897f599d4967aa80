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
