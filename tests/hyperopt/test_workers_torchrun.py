"""A real ``torchrun --nproc-per-node 2`` (gloo, CPU) of algorithms other than
DistributedHyperBand: the ranks divide the trials through torch.distributed (no tracker:
the default executor inside a process group is ``torch``) or through the tracker's study
coordinator (a shared study: each rank is a worker), and every rank returns the
single-process result."""

from __future__ import annotations

import json
import socket
import sys
import uuid
from collections import Counter

import pytest

from tests.hyperopt.test_workers import FAST, WORKER, Workers, assert_clean, runs_of, single_process

# real worker processes: run by `nox -s tests` after the quick run (docs/contributing.md)
pytestmark = pytest.mark.processes

pytest.importorskip("torch")


def torchrun(nproc: int) -> list[str]:
    with socket.socket() as s:  # a free port for the rendezvous
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return [sys.executable, "-m", "torch.distributed.run", f"--nproc-per-node={nproc}",
            "--master-addr=127.0.0.1", f"--master-port={port}", str(WORKER)]


def lines_by_rank(outputs) -> list[dict]:
    return [r for _, lines, _ in outputs for r in lines]


def test_torchrun_divides_a_random_search_through_torch_distributed(tmp_path):
    """Without a tracker, the two ranks split each batch (strided) through the torch
    executor: together they make exactly the single process's calls, each rank a share, and
    both ranks print the single-process result."""
    options = {"n_trials": 12, "max_budget": 9, "seed": 4}
    workers = Workers(tmp_path, "", [{"algorithm": "random", "study": None,
                                      "options": options}])
    job = json.loads(workers.job.read_text())
    workers.job.write_text(json.dumps({**job, "init_process_group": True}))
    workers.start(1, torchrun(2))
    outputs = assert_clean(workers.finish(timeout=300), expected_ok=1)
    results = lines_by_rank(outputs)
    calls, winner, metric = single_process("random", options, None)
    assert len(results) == 2 and {(r["x"], r["c"], r["metric"]) for r in results} == \
        {(*winner, metric)}
    assert workers.calls("end") == calls
    per_rank = [sum(1 for line in f.read_text().splitlines() if line.startswith("end"))
                for f in workers.log.glob("*.log")]
    assert sorted(per_rank) == [6, 6]


def test_torchrun_ranks_are_workers_of_a_shared_study(tmp_path):
    """With a tracker that coordinates studies, each rank is a worker of the shared study:
    a multi_hyperband study runs every trial once, recorded once, and both ranks return the
    single-process result."""
    study = f"torchrun-{uuid.uuid4().hex[:6]}"
    url = f"sqlite:///{tmp_path / 'study.db'}"
    options = {"max_budget": 9, "min_budget": 1, "eta": 3, "seed": 8, **FAST}
    workers = Workers(tmp_path, url, [{"algorithm": "multi_hyperband", "study": study,
                                       "options": options}])
    job = json.loads(workers.job.read_text())
    workers.job.write_text(json.dumps({**job, "init_process_group": True}))
    workers.start(1, torchrun(2))
    outputs = assert_clean(workers.finish(timeout=300), expected_ok=1)
    calls, winner, metric = single_process("multi_hyperband", options, study)
    assert {(r["x"], r["c"], r["metric"]) for r in lines_by_rank(outputs)} == \
        {(*winner, metric)}
    assert workers.calls("end") == calls
    runs = runs_of(url, study)
    assert len(runs) == sum(calls.values())
    assert len(Counter(p.stem for p in workers.log.glob("*.log"))) == 2  # both ranks worked


def test_torchrun_divides_asha_without_a_tracker(tmp_path):
    """ASHA has no batches of its own; inside a process group it plans as many jobs as
    there are ranks (what that many free workers would take), runs them as one batch split
    over the ranks, and records them in plan order: both ranks share the trials evenly,
    the plan's 14 trials run, and both return the same result."""
    options = {"max_budget": 9, "min_budget": 1, "eta": 3, "max_trials": 14, "seed": 5}
    workers = Workers(tmp_path, "", [{"algorithm": "asha", "study": None, "options": options}])
    job = json.loads(workers.job.read_text())
    workers.job.write_text(json.dumps({**job, "init_process_group": True}))
    workers.start(1, torchrun(2))
    outputs = assert_clean(workers.finish(timeout=300), expected_ok=1)
    results = lines_by_rank(outputs)
    assert len(results) == 2 and len({(r["x"], r["c"], r["metric"]) for r in results}) == 1
    calls = workers.calls("end")
    assert sum(calls.values()) == 14  # (a small space: a configuration may be drawn twice)
    assert any(json.loads(ident)[4] > 0 for ident in calls)  # something was promoted
    per_rank = [sum(1 for line in f.read_text().splitlines() if line.startswith("end"))
                for f in workers.log.glob("*.log")]
    assert sorted(per_rank) == [7, 7]
