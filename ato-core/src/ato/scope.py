"""Scope and MultiScope: configs built from views, the command line and lazy views.

The implementation lives in :mod:`ato.scoping`; this module is the stable import path.
"""

from ato.scoping.multiscope import MultiScope
from ato.scoping.scope import Scope

__all__ = ["Scope", "MultiScope"]
