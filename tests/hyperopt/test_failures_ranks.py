"""A trial that fails on one rank of a torch.distributed search is matched against
``catch=`` by type on every rank (the other ranks have only its outcome, not the live
exception), so the ranks agree: all return the same result, or all raise."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.processes

pytest.importorskip("torch")
WORKER = Path(__file__).with_name("catch_worker.py")


def launch(tmp_path, mode, catch):
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", PYTHONWARNINGS="ignore",
                   ATO_TEST_STORE=str(tmp_path / "store"), ATO_TEST_MODE=mode,
                   ATO_TEST_CATCH=catch)
        procs.append(subprocess.Popen([sys.executable, str(WORKER)], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    outs = []
    for p in procs:
        out, err = p.communicate(timeout=120)
        assert p.returncode == 0, err
        outs.append(json.loads(out.strip().splitlines()[-1]))
    return outs


@pytest.mark.parametrize("mode,catch", [("nan", "none"), ("decode", "decode"),
                                        ("decode", "value")])
def test_ranks_agree_on_a_caught_failure(tmp_path, mode, catch):
    a, b = launch(tmp_path, mode, catch)
    assert "error" not in a and "error" not in b, (a, b)
    assert (a["metric"], a["x"]) == (b["metric"], b["x"])
    assert a["metric"] == a["metric"]  # a trial of rank 0 won, not a failed one


def test_ranks_agree_on_an_uncaught_failure(tmp_path):
    a, b = launch(tmp_path, "decode", "other")
    assert "error" in a and "error" in b, (a, b)
