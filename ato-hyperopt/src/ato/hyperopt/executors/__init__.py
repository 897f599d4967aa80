"""How a search runs the trials it can run at once: the executor seam.

``get_executor('threads', n_workers=4)``, or a search's ``executor=`` option.  Built in:
``serial`` (the default), ``threads``, ``processes`` (:mod:`.local`), ``torch``
(:mod:`.torch`), ``ray`` (:mod:`.ray`, ``pip install 'ato-hyperopt[ray]'``); third parties
add theirs through the ``ato_register_executors`` hook (docs/plugins.md) and check them
with ``python -m ato.hyperopt.executors.conformance NAME``.
"""

from ato.hyperopt.executors.base import (
    BaseExecutor,
    Executor,
    ExecutorError,
    Outcome,
    TrialError,
    check_executor,
    executor_class,
    get_executor,
    run_one,
)

__all__ = ["BaseExecutor", "Executor", "ExecutorError", "Outcome", "TrialError",
           "check_executor", "executor_class", "get_executor", "run_one"]
