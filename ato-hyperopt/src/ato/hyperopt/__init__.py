"""Hyperparameter search: the seed's HyperBand, grid, random, multi-bracket Hyperband and
ASHA, all registered as plugins; ``DistributedHyperBand`` over ``torch.distributed``."""

from ato.plugins.manager import search_algorithm as get_algorithm

__all__ = ["get_algorithm"]
