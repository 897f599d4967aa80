"""docs/hyperopt.md runs as written: its unmarked Python blocks run in order as one script
(the convention of docs/contributing.md), every `print(...)  # value` prints that value,
and every other block carries a marker with a reason or the test that checks it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PAGE = ROOT / "docs" / "hyperopt.md"
MARKER = re.compile(r"^<!--\s*([a-z-]+):\s*(.*?)\s*-->\s*$")
PRINTED = re.compile(r"^print\(.*\)\s+# (.+)$")


def blocks():
    """(line of the opening fence, language, text, marker, argument) of each block."""
    lines = PAGE.read_text().splitlines()
    out, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        lang, start = lines[i][3:].strip(), i
        end = lines.index("```", i + 1)
        above = MARKER.match(lines[start - 1]) if start else None
        out.append((start + 1, lang, "\n".join(lines[start + 1:end]) + "\n",
                    above.group(1) if above else None, above.group(2) if above else ""))
        i = end + 1
    return out


def test_every_block_runs_or_is_marked():
    """Unmarked blocks are Python; markers give a reason or an existing test."""
    found = blocks()
    assert len(found) >= 9
    for line, lang, _, marker, argument in found:
        where = f"docs/hyperopt.md:{line}"
        if marker is None:
            assert lang == "python", f"{where}: a ```{lang} block must be marked"
        elif marker == "not-run":
            assert len(argument.split()) >= 2, f"{where}: not-run needs a reason"
        else:
            assert marker == "checked-by", f"{where}: unexpected marker {marker!r}"
            path, _, name = argument.partition("::")
            assert re.search(rf"^def {re.escape(name)}\(", (ROOT / path).read_text(), re.M), \
                f"{where}: {argument} does not exist"


def test_python_blocks_run_and_print_what_they_say(tmp_path):
    """The page's Python, as one script in an empty directory; each commented print is
    checked against its output line."""
    script, expected = [], []
    for line, lang, text, marker, _ in blocks():
        if lang != "python" or marker is not None:
            continue
        script.append(f"# --- docs/hyperopt.md:{line}")
        for source in text.splitlines():
            script.append(source)
            printed = PRINTED.match(source)
            if printed:
                expected.append(printed.group(1).strip())
            else:
                assert not source.startswith("print("), f"uncommented print: {source}"
    (tmp_path / "page.py").write_text("\n".join(script) + "\n")
    proc = subprocess.run([sys.executable, "page.py"], cwd=tmp_path, capture_output=True,
                          text=True, timeout=600,
                          env={**os.environ, "PYTHONIOENCODING": "utf-8"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.splitlines() == expected


def test_every_process_group_example_destroys_its_group():
    """A gloo/NCCL group alive when Python exits can abort a torchrun rank after it printed
    its results (``terminate called without an active exception``, SIGABRT): every example
    that starts a group ends it with ``dist.destroy_process_group()``."""
    starting = [(line, text) for line, lang, text, _, _ in blocks()
                if lang == "python" and "init_process_group(" in text]
    assert len(starting) >= 2
    for line, text in starting:
        body = [s for s in text.splitlines() if s.strip() and not s.lstrip().startswith("#")]
        assert "destroy_process_group()" in body[-1], \
            f"docs/hyperopt.md:{line}: ends with {body[-1]!r}, not dist.destroy_process_group()"
