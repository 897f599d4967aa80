"""docs/migrating-from-openmmlab.md runs as written: its ``# file:`` blocks are written
into a folder, its ``>>>`` sessions run there with doctest, and any other code block must
say why it is not runnable (``<!-- not runnable: reason -->`` just above it)."""

from __future__ import annotations

import doctest
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "migrating-from-openmmlab.md"
BLOCK = re.compile(r"(?P<before>[^\n]*)\n```(?P<lang>\w*)\n(?P<body>.*?)```", re.DOTALL)


def blocks():
    for match in BLOCK.finditer(PAGE.read_text()):
        yield match["before"], match["lang"], match["body"]


def test_every_block_runs_or_says_why_not():
    """Each code block is a file, a session, or marked not runnable with a reason."""
    for before, lang, body in blocks():
        runnable = body.startswith("# file: ") or lang == "pycon"
        marked = re.fullmatch(r"<!-- not runnable: .+ -->", before.strip())
        assert runnable or marked, f"code block without '# file:' or '>>>':\n{body}"


def test_sessions_run(tmp_path, monkeypatch):
    """Every >>> session of the page gives the output the page shows."""
    monkeypatch.chdir(tmp_path)
    sessions = []
    for _, lang, body in blocks():
        if body.startswith("# file: "):
            name = body.split("\n", 1)[0].removeprefix("# file: ").strip()
            (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
            (tmp_path / name).write_text(body.split("\n", 1)[1])
        elif lang == "pycon":
            sessions.append(body)
    assert len(sessions) >= 4
    parser, globs = doctest.DocTestParser(), {}
    runner = doctest.DocTestRunner(optionflags=doctest.ELLIPSIS)
    for number, text in enumerate(sessions):
        test = parser.get_doctest(text, globs, f"session {number}", str(PAGE), 0)
        runner.run(test, clear_globs=False)
        globs = test.globs
    assert runner.summarize(verbose=False).failed == 0
