"""The torch executor on a real 2-process gloo group: each rank runs its share, every rank
gets every outcome in item order, an error on one rank reaches the other as an outcome,
nothing hangs.  Run as a script, this file is one rank (the tests start two)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest

# real worker processes: run by `nox -s tests` after the quick run (docs/contributing.md)
pytestmark = pytest.mark.processes

torch = pytest.importorskip("torch", reason="the torch executor needs pip install "
                                            "'ato-hyperopt[torch]'")

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]


# --------------------------------------------------------------------------- one rank
def who(i):
    import torch.distributed as dist

    return [i, dist.get_rank()]


def fail_on_three(i):
    if i == 3:
        raise ValueError(f"item {i} is cursed")
    return i


def rank_main() -> None:
    import torch.distributed as dist

    from ato.hyperopt.executors import ExecutorError, get_executor
    from ato.hyperopt.executors.torch import TorchExecutor

    dist.init_process_group("gloo", init_method=f"file://{os.environ['ATO_TEST_STORE']}",
                            rank=int(os.environ["RANK"]), world_size=int(os.environ["WORLD_SIZE"]))
    rank = dist.get_rank()
    out: dict = {"rank": rank}
    executor = get_executor("torch")
    out["slots"] = executor.slots
    out["strided"] = [o.value for o in executor.map(who, range(7))]
    out["contiguous"] = [o.value for o in TorchExecutor(split="contiguous").map(who, range(7))]
    sub = dist.new_group([0, 1])
    out["subgroup"] = [o.value for o in TorchExecutor(group=sub).map(who, range(3))]
    real_backend = dist.get_backend
    dist.get_backend = lambda group=None: "nccl"  # as under NCCL: outcomes over a gloo group
    try:
        nccl_like = TorchExecutor()
    finally:
        dist.get_backend = real_backend
    out["gather_group"] = nccl_like._gather_group is not None
    out["over_gloo"] = [o.value for o in nccl_like.map(who, range(3))]
    out["errors"] = [[o.ok, o.error, type(o.exception).__name__]
                     for o in executor.map(fail_on_three, range(6))]
    out["unsendable"] = [[o.ok, o.error] for o in executor.map(
        lambda i: (lambda: i) if i == 1 else i, range(3))]
    try:
        executor.map(abs, range(3 + rank))
        out["mismatch"] = "no error"
    except ExecutorError as e:
        out["mismatch"] = str(e)

    def interrupt_on_rank_one(i):
        if i == 1:
            raise KeyboardInterrupt
        return i

    try:
        outcomes = executor.map(interrupt_on_rank_one, range(4))
        out["interrupt"] = [[o.ok, o.error] for o in outcomes]
    except KeyboardInterrupt:
        out["interrupt"] = "KeyboardInterrupt raised"
    handle = executor.submit(fail_on_three, 3)
    done, outcome = executor.wait_any([handle])
    out["submit"] = [done is handle, outcome.error]
    executor.close()
    executor.close()
    out["group_kept"] = dist.is_initialized()
    print(json.dumps(out), flush=True)
    dist.barrier()
    dist.destroy_process_group()


# --------------------------------------------------------------------------- the tests
def launch(tmp_path, world: int = 2) -> list[dict]:
    procs = []
    for rank in range(world):
        env = {**os.environ, "RANK": str(rank), "WORLD_SIZE": str(world),
               "ATO_TEST_STORE": str(tmp_path / "store")}
        procs.append(subprocess.Popen([sys.executable, str(HERE)], env=env, text=True,
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE))
    results = []
    for proc in procs:
        try:
            stdout, stderr = proc.communicate(timeout=180)
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            pytest.fail("a rank hung")
        assert proc.returncode == 0, stderr[-3000:]
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    return results


@pytest.fixture(scope="module")
def ranks(tmp_path_factory):
    return launch(tmp_path_factory.mktemp("torch-executor"))


def test_each_rank_runs_its_share_and_gets_every_outcome(ranks):
    zero, one = ranks
    assert zero["slots"] == one["slots"] == 2
    assert zero["strided"] == one["strided"] == [[i, i % 2] for i in range(7)]
    assert zero["contiguous"] == one["contiguous"] == [[i, int(i >= 4)] for i in range(7)]
    assert zero["subgroup"] == one["subgroup"] == [[0, 0], [1, 1], [2, 0]]


def test_outcomes_of_an_nccl_group_travel_over_a_gloo_group_of_the_same_ranks(ranks):
    for rank in ranks:
        assert rank["gather_group"] is True
        assert rank["over_gloo"] == [[0, 0], [1, 1], [2, 0]]


def test_an_error_on_one_rank_is_an_outcome_on_every_rank(ranks):
    zero, one = ranks  # item 3 runs on rank 1 (strided)
    expected = [[True, None, "NoneType"]] * 6
    expected[3] = [False, "ValueError: item 3 is cursed", "ValueError"]
    assert one["errors"] == expected           # the live exception where it happened
    expected[3] = [False, "ValueError: item 3 is cursed", "NoneType"]
    assert zero["errors"] == expected


def test_a_value_that_cannot_travel_fails_its_trial_everywhere(ranks):
    for rank in ranks:
        assert rank["unsendable"][0] == [True, None] and rank["unsendable"][2] == [True, None]
        ok, error = rank["unsendable"][1]
        assert not ok and error.startswith("the value of item 1 cannot be sent to the other "
                                           "ranks")


def test_ranks_passing_different_batches_all_get_the_error(ranks):
    for rank in ranks:
        assert rank["mismatch"] == ("executor 'torch': the ranks called map() with different "
                                    "numbers of items (rank 0: 3, rank 1: 4); every rank must "
                                    "pass the same batch")


def test_an_interrupted_rank_still_gathers_then_raises(ranks):
    zero, one = ranks
    assert one["interrupt"] == "KeyboardInterrupt raised"
    assert zero["interrupt"] == [
        [True, None], [False, "KeyboardInterrupt"], [True, None],
        [False, "not run: rank 1 was interrupted by KeyboardInterrupt"]]


def test_submit_runs_on_the_calling_rank_and_close_keeps_the_callers_group(ranks):
    for rank in ranks:
        assert rank["submit"] == [True, "ValueError: item 3 is cursed"]
        assert rank["group_kept"] is True


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_conformance_suite_passes_under_torchrun():
    """``torchrun -m ato.hyperopt.executors.conformance torch``: the executor joins the
    group torchrun describes, on every rank."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
         "--master-port", str(free_port()), "-m", "ato.hyperopt.executors.conformance",
         "torch"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=ROOT,
        start_new_session=True)  # its own process group: a hang kills the ranks too
    try:
        stdout, stderr = proc.communicate(timeout=240)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        stdout, stderr = proc.communicate()
        pytest.fail(f"torchrun hung: {(stdout + stderr)[-3000:]}")
    assert proc.returncode == 0, (stdout + stderr)[-4000:]
    assert stdout.count("8 passed, 1 skipped") == 2, stdout[-2000:]


def test_without_a_group_the_error_says_how_to_get_one(monkeypatch):
    from ato.hyperopt.executors import ExecutorError, get_executor

    monkeypatch.delenv("WORLD_SIZE", raising=False)
    with pytest.raises(ExecutorError, match=r"needs an initialised torch.distributed process "
                                            r"group: start the script with torchrun"):
        get_executor("torch")


def test_a_bad_split_is_named():
    from ato.hyperopt.executors import ExecutorError, get_executor

    with pytest.raises(ExecutorError, match="split must be one of strided, contiguous, got "
                                            "'random'"):
        get_executor("torch", split="random")


def test_shares():
    from ato.hyperopt.executors.torch import shares

    assert shares(5, 2) == [[0, 2, 4], [1, 3]]
    assert shares(5, 2, "contiguous") == [[0, 1, 2], [3, 4]]
    assert shares(1, 3) == [[0], [], []]
    assert shares(1, 3, "contiguous") == [[0], [], []]
    assert shares(0, 2) == [[], []]


if __name__ == "__main__":
    rank_main()
