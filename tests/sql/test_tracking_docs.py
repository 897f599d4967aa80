"""docs/tracking.md runs as written: its unmarked Python blocks, in order, as one script in
a fresh interpreter and an empty directory (the convention of docs/contributing.md's
checker), and every other block carries a marker with a reason."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

PAGE = Path(__file__).resolve().parents[2] / "docs" / "tracking.md"
MARKER = re.compile(r"^<!--\s*(not-run|file|slow|checked-by):\s*\S.*-->\s*$")


def _blocks():
    lines = PAGE.read_text().splitlines()
    i = 0
    while i < len(lines):
        if lines[i].startswith("```"):
            start, lang = i, lines[i][3:].strip()
            i += 1
            body = []
            while not lines[i].startswith("```"):
                body.append(lines[i])
                i += 1
            marker = MARKER.match(lines[start - 1]) if start else None
            yield start + 1, lang, "\n".join(body), marker
        i += 1


def test_every_block_runs_or_is_marked():
    for line, lang, _, marker in _blocks():
        assert lang == "python" or marker, f"docs/tracking.md:{line}: mark this {lang!r} block"


def test_python_blocks_run(tmp_path):
    script = "\n".join(body for _, lang, body, marker in _blocks()
                       if lang == "python" and not marker)
    proc = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, capture_output=True,
                          text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
