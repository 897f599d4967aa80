"""docs/hyperopt.md "A SLURM array": the ``search.py`` block, taken from the page as
written, runs as three real worker processes of one study (its own ``--study``/``--db``
options beside a Scope assignment), and every worker prints the same result."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

DOC = Path(__file__).resolve().parents[2] / "docs" / "hyperopt.md"
pytestmark = pytest.mark.processes


def script() -> str:
    text = DOC.read_text()
    blocks = re.findall(r"```python\n(# search\.py\n.*?)```", text, flags=re.S)
    assert len(blocks) == 1, "docs/hyperopt.md should hold one '# search.py' block"
    return blocks[0]


def test_the_slurm_script_runs_as_written(tmp_path):
    from ato.tracking import open_finder

    (tmp_path / "search.py").write_text(script())
    url = f"sqlite:///{tmp_path / 'experiments.db'}"
    command = [sys.executable, "search.py", "--study", "lr-sweep-7", "--db", url,
               "--max-budget", "9", "dropout=0.2"]
    procs = [subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONWARNINGS": "ignore"})
             for _ in range(3)]
    outs = [p.communicate(timeout=240) for p in procs]
    for p, (_out, err) in zip(procs, outs):
        assert p.returncode == 0, err
    results = {out.strip().splitlines()[-1] for out, _ in outs}
    assert len(results) == 1, results  # the same result in every task
    runs = open_finder(url).find_runs(tags=["study:lr-sweep-7"])
    assert runs and all(r.config.dropout == 0.2 for r in runs)  # the Scope got dropout=0.2
    keys = [next(t for t in r.tags if t.startswith("trial:")) for r in runs]
    assert len(keys) == len(set(keys))  # each trial once, whichever task ran it


def test_without_set_argv_the_scope_refuses_the_scripts_options(tmp_path):
    (tmp_path / "search.py").write_text(script().replace("Scope.set_argv(rest)", "pass"))
    done = subprocess.run([sys.executable, "search.py", "--study", "s", "--db",
                           f"sqlite:///{tmp_path / 'x.db'}", "--max-budget", "3"],
                          cwd=tmp_path, capture_output=True, text=True)
    assert done.returncode == 2 and "--study" in done.stderr
