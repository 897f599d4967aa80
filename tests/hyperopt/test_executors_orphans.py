"""A ``processes`` pool child exits soon after its parent is killed (SIGKILL, the OOM
killer) instead of finishing its trial for nobody (real processes)."""

import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

pytestmark = pytest.mark.processes

PARENT = textwrap.dedent("""
    import os, sys, time
    from ato.hyperopt.executors import get_executor

    def trial(i, out=sys.argv[1]):
        with open(os.path.join(out, f"{os.getpid()}.pid"), "w") as f:
            f.write(str(os.getpid()))
        time.sleep(60)
        return i

    with get_executor("processes", n_workers=2) as ex:
        ex.map(trial, [0, 1])
""")


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie waiting for its new parent (PID 1) to reap it is gone too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][0] != "Z"
    except OSError:
        return True


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_pool_children_exit_when_their_parent_is_killed(tmp_path):
    parent = subprocess.Popen([sys.executable, "-c", PARENT, str(tmp_path)])
    deadline = time.monotonic() + 30
    while len(list(tmp_path.glob("*.pid"))) < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    children = [int(p.read_text()) for p in tmp_path.glob("*.pid")]
    assert len(children) == 2
    parent.send_signal(signal.SIGKILL)
    parent.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(alive(pid) for pid in children) and time.monotonic() < deadline:
        time.sleep(0.1)
    left = [pid for pid in children if alive(pid)]
    for pid in left:  # do not leave them behind when the test fails
        os.kill(pid, signal.SIGKILL)
    assert not left, f"pool children {left} outlived their killed parent"
