"""Entry point of ato-hyperopt: the built-in search algorithms, through the same hook a
third-party algorithm uses."""

from ato.plugins import hookimpl


@hookimpl
def ato_register_search_algorithms():
    from ato.hyperopt.algorithms import ASHA, GridSearch, MultiBracketHyperband, RandomSearch
    from ato.hyperopt.hyperband import HyperBand

    return [HyperBand, GridSearch, RandomSearch, MultiBracketHyperband, ASHA]
