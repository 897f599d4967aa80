"""Entry point of ato-hyperopt: the built-in search algorithms and executors, through the
same hooks a third party uses."""

from ato.plugins import hookimpl


@hookimpl
def ato_register_search_algorithms():
    from ato.hyperopt.algorithms import (
        ASHA,
        BOHB,
        GridSearch,
        MultiBracketHyperband,
        RandomSearch,
        TPESearch,
    )
    from ato.hyperopt.hyperband import HyperBand

    return [HyperBand, GridSearch, RandomSearch, TPESearch, MultiBracketHyperband, BOHB, ASHA]


@hookimpl
def ato_register_commands():
    from ato.hyperopt.commands import SearchCommand

    return SearchCommand


@hookimpl
def ato_register_executors():
    # Registered whether or not torch / Ray are installed: choosing one that is missing
    # says what to install instead of "unknown executor".
    from ato.hyperopt.executors.local import ProcessesExecutor, SerialExecutor, ThreadsExecutor
    from ato.hyperopt.executors.ray import RayExecutor
    from ato.hyperopt.executors.torch import TorchExecutor

    return [SerialExecutor, ThreadsExecutor, ProcessesExecutor, TorchExecutor, RayExecutor]
