"""The docs' logging sketch (docs/hyperopt.md, "Logging per-epoch metrics from a trial")
on the ``processes`` executor: ``ATO_TEST_URL=... ATO_TEST_START=fork|spawn
[ATO_TEST_STUDY=id] python processes_logging.py``.  The
objective logs through the module-level logger the search records with; under ``spawn``
the child re-imports this module, so its ``logger`` is a fresh one without a run."""

import os

from ato.adict import ADict
from ato.hyperopt import get_algorithm
from ato.hyperopt.executors import get_executor
from ato.scope import Scope
from ato.tracking import open_logger

URL, START = os.environ["ATO_TEST_URL"], os.environ["ATO_TEST_START"]
logger = open_logger(URL, project="search")


def objective(config):
    for epoch in range(config.__resume_budget__, config.__budget__):
        logger.log_metric("train_loss", float(config.x) / (epoch + 1), epoch)
    return float(config.x)


if __name__ == "__main__":
    space = ADict(x=ADict(param_type="FLOAT", param_range=(0, 1)))
    with get_executor("processes", n_workers=3, start_method=START) as executor:
        search = get_algorithm("asha")(Scope(enable_override=True), space, tracker=logger,
                                       study_id=os.environ.get("ATO_TEST_STUDY") or None, max_budget=9, min_budget=1, eta=3,
                                       max_trials=30, seed=1, progress=False,
                                       executor=executor)
        search.main(objective)()
