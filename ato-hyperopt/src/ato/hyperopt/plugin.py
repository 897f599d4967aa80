"""Entry point of ato-hyperopt: the built-in search algorithms, through the same hook a
third-party algorithm uses."""

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
