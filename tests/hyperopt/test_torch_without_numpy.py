"""A distributed search in an environment without numpy (torch's wheels do not install
it; torch.distributed's object collectives need it on the receiving ranks) is refused
when it is built, on every rank, with what to install — never a failure inside torch on
one rank and a lost connection on the other."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch.distributed")

pytestmark = pytest.mark.processes

ROOT = Path(__file__).resolve().parents[2]
WORKER = Path(__file__).with_name("nonumpy_worker.py")


def test_a_distributed_search_without_numpy_says_what_to_install(tmp_path):
    algorithm = "random"
    procs = []
    for rank in range(2):
        env = dict(os.environ, RANK=str(rank), WORLD_SIZE="2", PYTHONPATH=str(ROOT),
                   ATO_TEST_STORE=str(tmp_path / "store"), ATO_TEST_ALGORITHM=algorithm)
        procs.append(subprocess.Popen([sys.executable, str(WORKER)], env=env, text=True,
                                      cwd=tmp_path, stdout=subprocess.PIPE,
                                      stderr=subprocess.PIPE))
    for proc in procs:
        _, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 1, stderr
        last = stderr.strip().splitlines()[-1]
        assert last.endswith(f"ato.hyperopt.base.SearchOptionError: {algorithm}: distributed "
                        f"search needs numpy: pip install 'ato-hyperopt[torch]'"), stderr
        assert "broadcast_object" not in stderr and "Connection closed" not in stderr, stderr
