"""One worker of a shared ASHA study whose objective 'trains' by appending one line per
epoch to ``epochs.txt`` in ``__checkpoint_dir__`` (started by test_checkpoint_attempts.py).

``python ckpt_worker.py URL STUDY LOGDIR ROOT`` — each call appends ``start <trial>
<budget> <resume>`` and ``end <trial> <budget>`` to ``LOGDIR/<pid>.log``, and ``bad ...``
when the checkpoint it was given does not hold exactly ``__resume_budget__`` epochs.
"""

import os
import sys
import time
from pathlib import Path

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.scope import Scope
from ato.tracking import open_logger

SPACE = ADict(x=ADict(param_type="INTEGER", param_range=(0, 8), num_samples=9))


def main() -> None:
    url, study, logdir, root = sys.argv[1:5]
    log = Path(logdir) / f"{os.getpid()}.log"

    def note(line: str) -> None:
        with log.open("a") as f:
            f.write(line + "\n")

    def objective(config):
        trial, budget, resume = config.__trial__, int(config.__budget__), int(config.__resume_budget__)
        epochs = Path(config.__checkpoint_dir__) / "epochs.txt"
        done = len(epochs.read_text().splitlines()) if epochs.exists() else 0
        note(f"start {trial} {budget} {resume}")
        if done != resume:
            note(f"bad {trial} {budget} resume={resume} checkpoint={done}")
        for epoch in range(resume, budget):
            time.sleep(0.04)
            with epochs.open("a") as f:
                f.write(f"{epoch}\n")
        note(f"end {trial} {budget}")
        return -abs(config.x - 5) + budget / 100

    search = get_algorithm("asha")(
        Scope(), SPACE, tracker=open_logger(url, project="ckpt"), study_id=study,
        max_trials=9, min_budget=1, max_budget=9, eta=3, seed=0, progress=False,
        heartbeat_interval=0.1, stale_after=1.0, retries=1, checkpoint_root=root)
    Scope.set_argv(sys.argv[5:])  # the positional arguments above are not the Scope's
    result = search.main(objective)()
    print(result.config.__trial__, result.config.__budget__, flush=True)


if __name__ == "__main__":
    main()
